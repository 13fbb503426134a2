// Rounding error of Winograd's minimal filtering in float32, no GPU: one 4x4 block of outputs of a 3x3
// convolution over C channels computed three ways with every operation rounded to float32 (Math.fround):
// the direct sum, F(2x2, 3x3) (four 2x2 tiles, what lib/nn/conv2d/conv2d_winograd_f2x2.wgsl computes) and
// F(4x4, 3x3) (one tile), each against the float64 result. The figures behind the choice of F(2x2) (as
// accurate as the direct sum) over F(4x4) (4x fewer multiply-adds than direct, 10x the error): README,
// "Conv kernels". Inputs uniform in [-1, 1), weights scaled by 1/sqrt(9 C) as Kaiming's bound does.
//
//   deno run bench/winograd_error.ts [--channels 9,64,256] [--draws 20]

import {
  checkPositionals,
  type CommandSpec,
  intFlag,
  type ParsedFlags,
  parseOrExit,
  stringFlag,
  UsageError,
} from "../experiments/flags.ts";
import { Rng } from "../lib/rng.ts";

type Matrix = number[][];
const f32 = Math.fround;

// F(2x2, 3x3): Y = A^T [(G g G^T) * (B^T d B)] A over 4x4 patches.
const BT2 = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]];
const G2 = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]];
const AT2 = [[1, 1, 1, 0], [0, 1, -1, -1]];
// F(4x4, 3x3) (points 0, +-1, +-2, infinity) over 6x6 patches; G's sixths and twelfths rounded to f32.
const BT4 = [
  [4, 0, -5, 0, 1, 0],
  [0, -4, -4, 1, 1, 0],
  [0, 4, -4, -1, 1, 0],
  [0, -2, -1, 2, 1, 0],
  [0, 2, -1, -2, 1, 0],
  [0, 4, 0, -5, 0, 1],
];
const G4 = [
  [1 / 4, 0, 0],
  [-1 / 6, -1 / 6, -1 / 6],
  [-1 / 6, 1 / 6, -1 / 6],
  [1 / 24, 1 / 12, 1 / 6],
  [1 / 24, -1 / 12, 1 / 6],
  [0, 0, 1],
].map((row) => row.map(f32));
const AT4 = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]];

/** a b with every product and partial sum rounded to f32. */
function mulF32(a: Matrix, b: Matrix): Matrix {
  return a.map((row) =>
    b[0].map((_, j) => {
      let s = 0;
      for (let k = 0; k < b.length; k++) s = f32(s + f32(row[k] * b[k][j]));
      return s;
    })
  );
}

const transpose = (a: Matrix): Matrix => a[0].map((_, j) => a.map((row) => row[j]));

/** The output block of a Winograd F(m x m, 3x3) tile: A^T [sum_c U[c] * V[c]] A, all in f32. */
function winogradTile(bt: Matrix, g: Matrix, at: Matrix, patches: Matrix[], weights: Matrix[]): Matrix {
  const n = bt.length;
  const acc: Matrix = Array.from({ length: n }, () => new Array(n).fill(0));
  for (let c = 0; c < patches.length; c++) {
    const v = mulF32(mulF32(bt, patches[c]), transpose(bt));
    const u = mulF32(mulF32(g, weights[c]), transpose(g));
    for (let a = 0; a < n; a++) {
      for (let b = 0; b < n; b++) acc[a][b] = f32(acc[a][b] + f32(u[a][b] * v[a][b]));
    }
  }
  return mulF32(mulF32(at, acc), transpose(at));
}

/** Largest absolute error of each method on one random 4x4 block over `channels` channels. */
function draw(rng: Rng, channels: number): { direct: number; f2: number; f4: number } {
  const bound = 1 / Math.sqrt(9 * channels);
  const d = Array.from(
    { length: channels },
    () => Array.from({ length: 6 }, () => Array.from({ length: 6 }, () => f32(rng.uniform() * 2 - 1))),
  );
  const w = Array.from(
    { length: channels },
    () =>
      Array.from({ length: 3 }, () => Array.from({ length: 3 }, () => f32((rng.uniform() * 2 - 1) * bound))),
  );
  const exact = (i: number, j: number, round: boolean) => {
    let s = 0;
    for (let c = 0; c < channels; c++) {
      for (let u = 0; u < 3; u++) {
        for (let v = 0; v < 3; v++) {
          s = round ? f32(s + f32(w[c][u][v] * d[c][i + u][j + v])) : s + w[c][u][v] * d[c][i + u][j + v];
        }
      }
    }
    return s;
  };
  let direct = 0, f2 = 0, f4 = 0;
  const tile4 = winogradTile(BT4, G4, AT4, d, w);
  for (let ty = 0; ty < 2; ty++) {
    for (let tx = 0; tx < 2; tx++) {
      const patches = d.map((p) => p.slice(2 * ty, 2 * ty + 4).map((row) => row.slice(2 * tx, 2 * tx + 4)));
      const tile2 = winogradTile(BT2, G2, AT2, patches, w);
      for (let i = 0; i < 2; i++) {
        for (let j = 0; j < 2; j++) {
          const [y, x] = [2 * ty + i, 2 * tx + j];
          const want = exact(y, x, false);
          direct = Math.max(direct, Math.abs(exact(y, x, true) - want));
          f2 = Math.max(f2, Math.abs(tile2[i][j] - want));
          f4 = Math.max(f4, Math.abs(tile4[y][x] - want));
        }
      }
    }
  }
  return { direct, f2, f4 };
}

const SPEC: CommandSpec = {
  name: "winograd_error",
  invocation: "deno run bench/winograd_error.ts",
  summary: "Largest float32 rounding error of one 4x4 output block of a 3x3 convolution (inputs in " +
    "[-1, 1), Kaiming-scaled weights) computed directly, by Winograd F(2x2, 3x3) and by F(4x4, 3x3), " +
    "against float64, over random draws; no GPU.",
  positionals: [],
  flags: [
    {
      name: "channels",
      kind: "string",
      value: "C,C,..",
      meaning: "input channel counts",
      default: "9,64,256",
    },
    { name: "draws", kind: "int", value: "N", meaning: "random blocks per channel count", default: "20" },
  ],
  examples: ["deno run bench/winograd_error.ts --channels 64 --draws 100"],
};

function fromFlags(p: ParsedFlags): { channels: number[]; draws: number } {
  checkPositionals(SPEC, p);
  const text = stringFlag(p, "channels") ?? "9,64,256";
  const channels = text.split(",").map(Number);
  if (channels.some((c) => !Number.isInteger(c) || c < 1)) {
    throw new UsageError(`--channels expects positive integers separated by commas, got "${text}"`);
  }
  return { channels, draws: intFlag(p, "draws", 1) ?? 20 };
}

const { channels, draws } = parseOrExit(SPEC, Deno.args, fromFlags);
const rng = new Rng(20261201);
console.log(`largest absolute error against float64 over ${draws} draws (|y| is about 1)`);
for (const c of channels) {
  const rows = Array.from({ length: draws }, () => draw(rng, c));
  const worst = (k: "direct" | "f2" | "f4") => Math.max(...rows.map((r) => r[k])).toExponential(2);
  console.log(
    `${c} channels: direct ${worst("direct")}, F(2x2, 3x3) ${worst("f2")}, F(4x4, 3x3) ${worst("f4")}`,
  );
}
