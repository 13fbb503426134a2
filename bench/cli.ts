// Flags of `deno task bench` (bench/bench.ts), parsed and checked before the GPU is touched.

import {
  type CommandSpec,
  type FlagSpec,
  intFlag,
  type ParsedFlags,
  parseFlags,
  stringFlag,
  UsageError,
} from "../experiments/flags.ts";
import { NOTEBOOK_WIDTHS } from "../lib/nn/encoder.ts";

export interface BenchArgs {
  json: boolean;
  batch: number;
  /** Timed steps; undefined: the adapter's default (bench.ts). */
  steps: number | undefined;
  widths: number[];
  kernels: boolean;
  /** Time every conv variant the tuner considers, also on a software adapter. */
  allVariants: boolean;
  /** Whether the tuner may choose Winograd conv kernels (--no-winograd: direct convolutions only). */
  winograd: boolean;
  torch: boolean;
  /** Time the training step on every WebGPU implementation and backend instead (bench/implementations.ts). */
  implementations: boolean;
  /** With implementations: headless Chromium too. */
  browser: boolean;
}

/** --widths, as every bench takes it (checked by parseBenchArgs). */
export const WIDTHS_FLAG: FlagSpec = {
  name: "widths",
  kind: "string",
  value: "A,B,C,D,E,F",
  meaning: "the six encoder widths (the convolutions' output channels)",
  default: NOTEBOOK_WIDTHS.join(","),
};

export const BENCH_SPEC: CommandSpec = {
  name: "bench",
  summary: "Times each WGSL kernel (GFLOP/s or GB/s, forward and backward) and one full training step of " +
    "the notebook's model (encoder + MDA head + EM-DNLL + Adam) on synthetic images; when python3 imports " +
    "PyTorch, the same step in PyTorch in the same run, and the ratio.",
  positionals: [],
  flags: [
    {
      name: "json",
      kind: "boolean",
      meaning: "print one JSON object (adapter, train_step_ms, ...) last on stdout",
      default: "off",
    },
    { name: "batch", kind: "int", value: "N", meaning: "batch size, 1 to 256", default: "256" },
    {
      name: "steps",
      kind: "int",
      value: "N",
      meaning: "training steps timed back to back after one warm-up step",
      default: "3 on a software adapter, 50 on a GPU",
    },
    WIDTHS_FLAG,
    { name: "no-kernels", kind: "boolean", meaning: "skip the per-kernel timings", default: "off" },
    {
      name: "all-variants",
      kind: "boolean",
      meaning: "time every conv kernel variant the tuner considers, also on a software adapter (slow " +
        "there; a hardware adapter times them all anyway), the tuner's choice marked (chosen)",
      default: "off",
    },
    {
      name: "no-winograd",
      kind: "boolean",
      meaning: "on a GPU, leave the Winograd conv kernels out of the tuning and the tables (direct " +
        "convolutions only, as `deno task experiment --no-winograd` runs them)",
      default: "the tuner may choose them",
    },
    { name: "no-torch", kind: "boolean", meaning: "skip the PyTorch reference step", default: "off" },
    {
      name: "implementations",
      kind: "boolean",
      meaning: "instead, time the training step on every WebGPU implementation and backend this machine " +
        "offers (wgpu GL, wgpu Vulkan, Dawn), one subprocess each, in one run (bench/implementations.ts; " +
        "takes --batch, --steps, --widths, --json, --browser)",
      default: "off",
    },
    {
      name: "browser",
      kind: "boolean",
      meaning: "with --implementations: in headless Chromium too",
      default: "off",
    },
  ],
  examples: [
    "deno task bench --json",
    "deno task bench --no-kernels --widths 16,16,32,32,64,64 --steps 5",
    "deno task bench --implementations --browser --batch 256 --steps 1",
  ],
};

export function parseBenchArgs(args: string[]): BenchArgs {
  return benchFromFlags(parseFlags(BENCH_SPEC, args));
}

export function benchFromFlags(p: ParsedFlags): BenchArgs {
  if (p.positionals.length) {
    throw new UsageError(`bench takes no arguments besides flags, got: ${p.positionals.join(" ")}`);
  }
  const rawWidths = stringFlag(p, "widths");
  let widths = [...NOTEBOOK_WIDTHS];
  if (rawWidths !== undefined) {
    const parts = rawWidths.split(",");
    widths = parts.map(Number);
    if (parts.length !== 6 || parts.some((s) => !/^\d+$/.test(s.trim())) || widths.some((w) => w < 1)) {
      throw new UsageError(`--widths expects 6 positive integers separated by commas, got "${rawWidths}"`);
    }
  }
  if (p.values.browser === true && p.values.implementations !== true) {
    throw new UsageError(
      "--browser goes with --implementations (the step in headless Chromium beside the others)",
    );
  }
  if (p.values["no-winograd"] === true && p.values.implementations === true) {
    throw new UsageError(
      "--no-winograd does not go with --implementations (which times each implementation's own choice)",
    );
  }
  return {
    json: p.values.json === true,
    batch: intFlag(p, "batch", 1, 256) ?? 256,
    steps: intFlag(p, "steps", 1),
    widths,
    kernels: p.values["no-kernels"] !== true,
    allVariants: p.values["all-variants"] === true,
    winograd: p.values["no-winograd"] !== true,
    torch: p.values["no-torch"] !== true,
    implementations: p.values.implementations === true,
    browser: p.values.browser === true,
  };
}
