// Conv2d kernel benchmark: forward, input gradient and weight gradient of the notebook's six
// convolutions at one batch size, for each kernel variant (lib/nn/conv2d/kernels.ts): on a hardware
// adapter every tuner candidate, marked "(chosen)" where the tuner (lib/gpu/tuner.ts) picked it; on a
// software adapter only the hand-tuned kernel unless --variants all. Wall time is measured around `await rec.finish()` (best of
// `repeats` after a warm-up, which also compiles the shaders); GPU timestamps are reported too when the
// adapter has them. The machine may be shared, so compare variants back to back and trust the best-of.
//
//   deno run -A bench/conv2d_bench.ts [--batch 256] [--repeats 3] [--widths 64,64,128,128,256,256]
//     [--layers 0,1] [--variants chosen|all] [--no-winograd]

import {
  checkPositionals,
  type CommandSpec,
  intFlag,
  type ParsedFlags,
  parseOrExit,
  stringFlag,
  UsageError,
} from "../experiments/flags.ts";
import { describeAdapter, getGpuOrExit, type Gpu } from "../lib/gpu/device.ts";
import { ParamStore } from "../lib/gpu/params.ts";
import { GpuTimer, Recorder } from "../lib/gpu/recorder.ts";
import { type Tensor, upload } from "../lib/gpu/tensor.ts";
import { Conv2d, type ConvPass, convTaskFlops, gpuCandidates, kernelName } from "../lib/nn/conv2d/conv2d.ts";
import { tuneConvLayers } from "../lib/nn/conv2d/tune.ts";
import { Rng } from "../lib/rng.ts";
import { parseBenchArgs, WIDTHS_FLAG } from "./cli.ts";

export interface ConvBenchRow {
  /** The pass and the variant, e.g. "forward igemm_tiled(bm=64,...)", plus " (chosen)" for the tuner's pick. */
  kernel: string;
  pass: ConvPass;
  variant: string;
  chosen: boolean;
  shape: string;
  ms: number;
  gflops: number;
  /** GPU timestamp time of the same work, when the adapter has timestamp queries. */
  gpuMs?: number;
}

export interface ConvBenchOptions {
  batch: number;
  /** Output channels of the six convolutions (the notebook's: 64,64,128,128,256,256). */
  widths?: number[];
  repeats: number;
  /** Only these layer indices (0-based); all by default. */
  layers?: number[];
  /** "all": every tuner candidate even on a software adapter (slow there). Default: see the header. */
  variants?: "chosen" | "all";
  /** false: no Winograd kernels, neither tuned nor timed (--no-winograd). Default true. */
  winograd?: boolean;
}

const SPATIAL = [28, 28, 14, 14, 7, 7];

async function timeIt(
  gpu: Gpu,
  repeats: number,
  label: string,
  body: (rec: Recorder) => void,
): Promise<[number, number?]> {
  let best = Infinity;
  let bestGpu: number | undefined;
  for (let r = 0; r <= repeats; r++) {
    const rec = new Recorder(gpu);
    const timer = GpuTimer.available(gpu) ? new GpuTimer(gpu, 4) : undefined;
    if (timer) rec.attachTimer(timer);
    rec.timed(label, () => body(rec));
    const t0 = performance.now();
    await rec.finish();
    const ms = performance.now() - t0;
    const gpuMs = timer ? (await timer.read()).get(label) : undefined;
    rec.destroy();
    if (r === 0) continue; // warm-up: compiles pipelines, allocates workspaces
    if (ms < best) {
      best = ms;
      bestGpu = gpuMs;
    }
  }
  return [best, bestGpu];
}

export async function benchConv2d(gpu: Gpu, opts: ConvBenchOptions): Promise<ConvBenchRow[]> {
  const widths = opts.widths ?? [64, 64, 128, 128, 256, 256];
  if (widths.length !== 6) throw new Error(`widths must list 6 channel counts, got ${widths.length}`);
  const rows: ConvBenchRow[] = [];
  const rng = new Rng(1);
  for (let i = 0; i < 6; i++) {
    if (opts.layers && !opts.layers.includes(i)) continue;
    const cin = i === 0 ? 1 : widths[i - 1], cout = widths[i], hw = SPATIAL[i], n = opts.batch;
    const store = new ParamStore(gpu);
    const conv = new Conv2d(store, `conv${i}`, cin, cout, rng);
    store.finalize();
    const x: Tensor = upload(gpu, Float32Array.from({ length: n * cin * hw * hw }, () => rng.normal()), [
      n,
      cin,
      hw,
      hw,
    ]);
    const dy: Tensor = upload(gpu, Float32Array.from({ length: n * cout * hw * hw }, () => rng.normal()), [
      n,
      cout,
      hw,
      hw,
    ]);
    const shape = `${cin}->${cout} @${hw}x${hw}`;
    const flops = convTaskFlops({ pass: "forward", n, ci: cin, co: cout, h: hw, w: hw });
    // The tuner's choice for this layer (timed on a hardware adapter unless cached; hand-tuned on software).
    const winograd = opts.winograd ?? true;
    const { choices } = await tuneConvLayers(gpu, [conv], [n, cin, hw, hw], {
      firstInputGrad: i > 0,
      winograd,
    });
    const chosen = choices[conv.name];
    const all = opts.variants === "all" || !gpu.report.isSoftware;
    const passes: [ConvPass, (rec: Recorder) => void][] = [
      ["forward", (rec) => void conv.forward(rec, x, true)],
      ["weightGrad", (rec) => conv.backwardParams(rec, dy)],
    ];
    if (i > 0) passes.push(["inputGrad", (rec) => void conv.backwardInput(rec, dy)]);
    const tuned = conv.kernels;
    // The forward also saves x for the backward passes timed after it.
    for (const [pass, body] of passes) {
      const candidates = gpuCandidates(pass, cin, gpu.limits.maxComputeWorkgroupStorageSize, winograd);
      const names = all ? candidates.map(kernelName) : [];
      if (!names.includes(chosen[pass])) names.unshift(chosen[pass]);
      for (const variant of names) {
        const k = [...candidates, tuned[pass]].find((c) => kernelName(c) === variant)!;
        conv.setKernels({ ...tuned, [pass]: k });
        const [ms, gpuMs] = await timeIt(gpu, opts.repeats, pass, body);
        const isChosen = variant === chosen[pass];
        rows.push({
          kernel: `${pass} ${variant}${isChosen ? " (chosen)" : ""}`,
          pass,
          variant,
          chosen: isChosen,
          shape,
          ms,
          gflops: flops / ms / 1e6,
          gpuMs,
        });
      }
      conv.setKernels(tuned);
    }
    x.buffer.destroy();
    dy.buffer.destroy();
  }
  return rows;
}

const SPEC: CommandSpec = {
  name: "conv2d_bench",
  invocation: "deno run -A bench/conv2d_bench.ts",
  summary: "Times forward, input gradient and weight gradient of the notebook's six convolutions per " +
    "kernel variant (best of the repeats after a warm-up), the tuner's choice marked (chosen). GFLOP/s " +
    "counts a direct convolution's 2*N*H*W*CI*CO*9 flops for every variant (the Winograd ones compute the " +
    "same result with fewer).",
  positionals: [],
  flags: [
    { name: "batch", kind: "int", value: "N", meaning: "batch size", default: "256" },
    { name: "repeats", kind: "int", value: "N", meaning: "timed runs per kernel (best kept)", default: "3" },
    WIDTHS_FLAG,
    {
      name: "layers",
      kind: "string",
      value: "I,J,..",
      meaning: "only these layers (0 to 5)",
      default: "all",
    },
    {
      name: "variants",
      kind: "string",
      value: "chosen|all",
      meaning: "all: every tuner candidate, also on a software adapter (a hardware adapter times them all)",
      default: "chosen",
    },
    {
      name: "no-winograd",
      kind: "boolean",
      meaning: "leave the Winograd kernels out (of the tuning and of --variants all)",
      default: "off",
    },
  ],
  examples: ["deno run -A bench/conv2d_bench.ts --variants all --layers 0,1 --batch 64"],
};

function convBenchFromFlags(p: ParsedFlags): ConvBenchOptions {
  checkPositionals(SPEC, p);
  const variants = stringFlag(p, "variants") ?? "chosen";
  if (variants !== "chosen" && variants !== "all") {
    throw new UsageError(`--variants must be chosen or all, got ${variants}`);
  }
  const rawWidths = stringFlag(p, "widths");
  const rawLayers = stringFlag(p, "layers");
  if (rawLayers !== undefined && rawLayers.split(",").some((s) => !/^\s*[0-5]\s*$/.test(s))) {
    throw new UsageError(`--layers expects indices from 0 to 5 separated by commas, got "${rawLayers}"`);
  }
  return {
    batch: intFlag(p, "batch", 1) ?? 256,
    repeats: intFlag(p, "repeats", 1) ?? 3,
    // The same six widths as bench.ts's --widths: its check.
    widths: rawWidths === undefined ? undefined : parseBenchArgs(["--widths", rawWidths]).widths,
    layers: rawLayers?.split(",").map(Number),
    variants,
    winograd: p.values["no-winograd"] !== true,
  };
}

if (import.meta.main) {
  const opts = parseOrExit(SPEC, Deno.args, convBenchFromFlags);
  const gpu = await getGpuOrExit();
  const { batch, repeats } = opts;
  console.log(
    `adapter: ${describeAdapter(gpu.report)}; batch ${batch}; best of ${repeats}; GFLOP/s: a direct ` +
      `convolution's flops (Winograd variants do fewer)`,
  );
  const rows = await benchConv2d(gpu, opts);
  console.log(
    `${"pass and variant".padEnd(60)} ${"shape".padEnd(18)} ${"ms".padStart(9)} ${"GFLOP/s".padStart(8)} ${
      "gpu ms".padStart(9)
    }`,
  );
  for (const r of rows) {
    console.log(
      `${r.kernel.padEnd(60)} ${r.shape.padEnd(18)} ${r.ms.toFixed(1).padStart(9)} ${
        r.gflops.toFixed(1).padStart(8)
      } ${(r.gpuMs?.toFixed(1) ?? "-").padStart(9)}`,
    );
  }
  const picked = rows.filter((r) => r.chosen);
  const total = picked.reduce((a, r) => a + r.ms, 0);
  const flops = picked.reduce((a, r) => a + r.gflops * r.ms * 1e6, 0);
  console.log(
    `one training step of these convolutions (chosen kernels): ${total.toFixed(0)} ms, ${
      (flops / total / 1e6).toFixed(1)
    } GFLOP/s overall`,
  );
}
