// The notebook model's training step on each of Mesa's two WebGPU backends, measured in one run: GL
// (llvmpipe) and Vulkan (lavapipe) run the same kernels through different shader compilers (naga's GLSL
// and SPIR-V paths). Each round runs `bench/bench.ts --json` once per backend, in a subprocess with
// DENO_WEBGPU_BACKEND set, alternating the order; the machine may be shared, so the ratio is reported
// per round and its spread over the rounds.
//
//   deno run -A bench/backends_bench.ts [--rounds 2] [--steps 2] [--batch 256] [--torch]

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "2" },
    steps: { type: "string", default: "2" },
    batch: { type: "string", default: "256" },
    torch: { type: "boolean" },
  },
});
for (const key of ["rounds", "steps", "batch"] as const) {
  const v = Number(values[key]);
  if (!Number.isInteger(v) || v < 1) {
    console.error(`error: --${key} must be a positive integer, got ${values[key]}`);
    Deno.exit(2);
  }
}
const rounds = Number(values.rounds);
const script = new URL("./bench.ts", import.meta.url).pathname;

interface StepResult {
  adapter: string;
  train_step_ms: number;
  torch_train_step_ms: number | null;
}

async function step(backend: string, withTorch: boolean): Promise<StepResult> {
  const args = [
    "run",
    "-A",
    script,
    "--json",
    "--no-kernels",
    "--steps",
    values.steps!,
    "--batch",
    values.batch!,
  ];
  if (!withTorch) args.push("--no-torch");
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    env: { DENO_WEBGPU_BACKEND: backend },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-5).join("\n");
    throw new Error(`bench.ts on backend ${backend} failed:\n${err}`);
  }
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

const ratios: number[] = [];
const rows: { round: number; gl: number; vulkan: number; ratio: number }[] = [];
let torchMs: number | null = null;
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? ["gl", "vulkan"] : ["vulkan", "gl"];
  const ms: Record<string, number> = {};
  for (const backend of order) {
    const res = await step(backend, Boolean(values.torch) && torchMs === null);
    if (res.torch_train_step_ms !== null) torchMs = res.torch_train_step_ms;
    ms[backend] = res.train_step_ms;
    console.error(
      `round ${r + 1}: ${backend.padEnd(6)} ${res.adapter}: step ${res.train_step_ms.toFixed(0)} ms`,
    );
  }
  const ratio = ms.vulkan / ms.gl;
  ratios.push(ratio);
  rows.push({ round: r + 1, gl: ms.gl, vulkan: ms.vulkan, ratio });
  console.error(`round ${r + 1}: Vulkan / GL = ${ratio.toFixed(2)}`);
}
const lo = Math.min(...ratios), hi = Math.max(...ratios);
const mean = ratios.reduce((a, b) => a + b, 0) / ratios.length;
console.log(
  `notebook step, batch ${values.batch}: Vulkan / GL = ${mean.toFixed(2)} (mean of ${rounds} rounds, ` +
    `spread ${lo.toFixed(2)}-${hi.toFixed(2)})` +
    (torchMs === null ? "" : `; PyTorch step ${torchMs.toFixed(0)} ms`),
);
console.log(
  JSON.stringify({
    batch: Number(values.batch),
    rounds: rows,
    ratio_mean: mean,
    torch_train_step_ms: torchMs,
  }),
);
