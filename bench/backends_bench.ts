// The notebook model's training step on each of Mesa's two WebGPU backends, measured in one run: GL
// (llvmpipe) and Vulkan (lavapipe) run the same kernels through different shader compilers (naga's GLSL
// and SPIR-V paths). Each round runs `bench/bench.ts --json` once per backend, in a subprocess with
// DENO_WEBGPU_BACKEND set, alternating the order; the machine may be shared, so the ratio is reported
// per round and its spread over the rounds.
//
//   deno run -A bench/backends_bench.ts [--rounds 2] [--steps 2] [--batch 256] [--torch]

import { fileURLToPath } from "node:url";
import {
  checkPositionals,
  type CommandSpec,
  intFlag,
  parseOrExit,
  stringFlag,
} from "../experiments/flags.ts";
import { parseBenchArgs } from "./cli.ts";

const SPEC: CommandSpec = {
  name: "backends_bench",
  invocation: "deno run -A bench/backends_bench.ts",
  summary: "Times the notebook model's training step on Mesa's GL (llvmpipe) and Vulkan (lavapipe) " +
    "backends in one run (bench/bench.ts --json per backend and round, order alternated): Vulkan / GL.",
  positionals: [],
  flags: [
    { name: "rounds", kind: "int", value: "N", meaning: "rounds, each timing both backends", default: "2" },
    { name: "steps", kind: "int", value: "N", meaning: "timed steps per bench.ts run", default: "2" },
    { name: "batch", kind: "int", value: "N", meaning: "batch size, 1 to 256", default: "256" },
    { name: "torch", kind: "boolean", meaning: "also time the step in PyTorch, once", default: "off" },
  ],
  examples: ["deno run -A bench/backends_bench.ts --rounds 3 --steps 1"],
};

const flags = parseOrExit(SPEC, Deno.args, (p) => {
  checkPositionals(SPEC, p);
  // --steps and --batch go on to bench/bench.ts: its own checks run here, before the first subprocess.
  const { steps, batch } = parseBenchArgs([
    "--steps",
    stringFlag(p, "steps") ?? "2",
    "--batch",
    stringFlag(p, "batch") ?? "256",
  ]);
  return { rounds: intFlag(p, "rounds", 1) ?? 2, steps: steps!, batch, torch: p.values.torch === true };
});
const { rounds } = flags;
const script = fileURLToPath(new URL("./bench.ts", import.meta.url));

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
    String(flags.steps),
    "--batch",
    String(flags.batch),
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
    const res = await step(backend, flags.torch && torchMs === null);
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
  `notebook step, batch ${flags.batch}: Vulkan / GL = ${mean.toFixed(2)} (mean of ${rounds} rounds, ` +
    `spread ${lo.toFixed(2)}-${hi.toFixed(2)})` +
    (torchMs === null ? "" : `; PyTorch step ${torchMs.toFixed(0)} ms`),
);
console.log(
  JSON.stringify({
    batch: flags.batch,
    rounds: rows,
    ratio_mean: mean,
    torch_train_step_ms: torchMs,
  }),
);
