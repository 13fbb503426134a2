// Times the encoder's non-convolution layers and Adam at the notebook's shapes (dnll.md §1): forward and
// backward of each, GPU time from timestamp queries when the adapter has them (wall clock otherwise).
// These passes are memory-bound, so each row also gives the bytes it must move and the rate. Two
// yardsticks come first: the driver's buffer copy (wall clock) and `relu forward`, a plain
// read-one-vec4-write-one-vec4 kernel, i.e. a memcpy written in WGSL. BatchNorm, the global pool, the
// projection and the MDA head run both reduction variants (lib/gpu/reduction.ts), the adapter's own
// marked "(chosen)"; on a hardware adapter BatchNorm runs every candidate of its tuner
// (lib/nn/batchnorm_tune.ts: the tree at several chunk sizes), the tuner's pick marked "(chosen)".
//
//   deno run -A bench/layers_bench.ts [--batch 256] [--repeats 5]

import { checkPositionals, type CommandSpec, intFlag, parseOrExit } from "../experiments/flags.ts";
import { describeAdapter, getGpuOrExit, type Gpu } from "../lib/gpu/device.ts";
import { ParamStore } from "../lib/gpu/params.ts";
import { GpuTimer, Recorder } from "../lib/gpu/recorder.ts";
import { type Tensor, upload } from "../lib/gpu/tensor.ts";
import { Adam } from "../lib/nn/adam.ts";
import { GlobalAvgPool } from "../lib/nn/avgpool.ts";
import { BatchNorm2d, batchNormKernelName, CHUNK_ELEMENTS } from "../lib/nn/batchnorm.ts";
import { batchNormCandidates, tuneBatchNormLayers } from "../lib/nn/batchnorm_tune.ts";
import type { Layer } from "../lib/nn/layer.ts";
import { Linear } from "../lib/nn/linear.ts";
import { MaxPool2d } from "../lib/nn/maxpool.ts";
import { ReLU } from "../lib/nn/relu.ts";
import { Rng } from "../lib/rng.ts";
import { defaultReductionVariant, REDUCTION_VARIANTS, type ReductionVariant } from "../lib/gpu/reduction.ts";
import { MDAHead } from "../lib/mda/mda.ts";
import { EM_DNLLLoss } from "../lib/mda/loss.ts";
import { headTrainStep, STATS_PER_STEP } from "../lib/mda/head.ts";

export interface LayerTiming {
  kernel: string;
  shape: string;
  /** Median over the repeats, milliseconds. */
  ms: number;
  /** Fastest repeat (the machine is shared: the minimum is the least disturbed). */
  minMs: number;
  /** Bytes the pass must read and write, divided by the median time. */
  gbps?: number;
}

/** Adam's parameter count in the notebook's model (encoder with D = 2, MDA head with C = 10, K = 2). */
const ADAM_PARAMETERS = 1_150_000;

export async function benchLayers(
  gpu: Gpu,
  { batch = 256, repeats = 5 }: { batch?: number; repeats?: number } = {},
): Promise<LayerTiming[]> {
  const rng = new Rng(1234);
  const results: LayerTiming[] = [];
  const timeIt = async (
    kernel: string,
    shape: string,
    bytes: number | undefined,
    body: (rec: Recorder) => void,
  ) => {
    const rec = new Recorder(gpu);
    body(rec); // warm-up: compiles pipelines and grows workspaces
    await rec.finish();
    const times: number[] = [];
    if (GpuTimer.available(gpu)) {
      const timer = new GpuTimer(gpu, repeats);
      rec.attachTimer(timer);
      for (let r = 0; r < repeats; r++) rec.timed(`${r}`, () => body(rec));
      await rec.finish();
      const t = await timer.read();
      for (let r = 0; r < repeats; r++) times.push(t.get(`${r}`)!);
    } else {
      for (let r = 0; r < repeats; r++) {
        const t0 = performance.now();
        body(rec);
        await rec.finish();
        times.push(performance.now() - t0);
      }
    }
    rec.destroy();
    times.sort((a, b) => a - b);
    const ms = times[Math.floor(times.length / 2)];
    results.push({
      kernel,
      shape,
      ms,
      minMs: times[0],
      gbps: bytes === undefined ? undefined : bytes / ms / 1e6,
    });
  };
  const inputs: GPUBuffer[] = [];
  const randomTensor = (shape: number[]): Tensor => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = rng.normal();
    const t = upload(gpu, data, shape);
    inputs.push(t.buffer);
    return t;
  };
  const forwardBackward = async (
    layer: Layer,
    label: string,
    inShape: number[],
    fwdBytes: (elements: number) => number,
    bwdBytes: (elements: number) => number,
  ) => {
    const x = randomTensor(inShape);
    const n = x.size;
    const shape = inShape.join("x");
    let y: Tensor | undefined;
    await timeIt(`${label} forward`, shape, fwdBytes(n), (rec) => {
      y = layer.forward(rec, x, true);
    });
    const dy = randomTensor([...y!.shape]);
    await timeIt(`${label} backward`, shape, bwdBytes(n), (rec) => layer.backward(rec, dy, true));
  };

  const f = 4; // bytes per f32
  {
    // The driver's own copy cannot be timed with compute-pass timestamps: wall clock over many copies in
    // one submit (the ~10 ms wait for completion is spread over them).
    const a = randomTensor([batch, 64, 28, 28]), b = randomTensor([batch, 64, 28, 28]);
    const copies = Math.max(20, repeats);
    const rec = new Recorder(gpu);
    rec.copy(a, b);
    await rec.finish();
    const t0 = performance.now();
    for (let i = 0; i < copies; i++) rec.copy(a, b);
    await rec.finish();
    const ms = (performance.now() - t0) / copies;
    rec.destroy();
    const bytes = 2 * a.byteLength;
    results.push({
      kernel: "memcpy (buffer copy)",
      shape: a.shape.join("x"),
      ms,
      minMs: ms,
      gbps: bytes / ms / 1e6,
    });
  }
  await forwardBackward(new ReLU("relu"), "relu", [batch, 64, 28, 28], (n) => 2 * n * f, (n) => 3 * n * f);
  // Each reduction variant, the adapter's default marked.
  const chosen = defaultReductionVariant(gpu);
  const variantLabel = (v: ReductionVariant) => `${v}${v === chosen ? " (chosen)" : ""}`;
  // BatchNorm: on a hardware adapter every tuner candidate (the tree at each chunk size), the tuner's
  // pick marked; on a software adapter, which tunes nothing, both variants at the default chunk.
  for (const [c, hw] of [[64, 28], [128, 14], [256, 7]]) {
    const shape = [batch, c, hw, hw];
    const pick = new BatchNorm2d(new ParamStore(gpu), `bn${c}`, c, { relu: true });
    const { choices } = await tuneBatchNormLayers(gpu, [pick], shape, { log: () => {} });
    const kernels = gpu.report.isSoftware
      ? REDUCTION_VARIANTS.map((variant) => ({ variant, chunkElements: CHUNK_ELEMENTS }))
      : batchNormCandidates(batch, hw * hw);
    for (const kernel of kernels) {
      const store = new ParamStore(gpu);
      const bn = new BatchNorm2d(store, `bn${c}`, c, { relu: true, ...kernel });
      store.finalize();
      const name = batchNormKernelName(kernel);
      // Forward reads x twice (moments, normalise) and writes y; backward reads x and dy twice, writes dx.
      await forwardBackward(
        bn,
        `batchnorm+relu ${name}${name === choices[pick.name] ? " (chosen)" : ""}`,
        shape,
        (n) => 3 * n * f,
        (n) => 5 * n * f,
      );
    }
  }
  for (const [c, hw] of [[64, 28], [128, 14]]) {
    // Forward reads x and writes y (a quarter of x) plus the packed window codes (2 bits per output,
    // whole words per row); backward reads dy and the codes, writes dx.
    const codeBytes = (n: number) => (n / (hw * hw)) * (hw / 2) * Math.ceil(hw / 2 / 16) * 4;
    await forwardBackward(
      new MaxPool2d("pool"),
      "maxpool",
      [batch, c, hw, hw],
      (n) => 1.25 * n * f + codeBytes(n),
      (n) => 1.25 * n * f + codeBytes(n),
    );
  }
  for (const variant of REDUCTION_VARIANTS) {
    await forwardBackward(
      new GlobalAvgPool("gap", { variant }),
      `avgpool ${variantLabel(variant)}`,
      [batch, 256, 7, 7],
      (n) => n * f,
      (n) => n * f,
    );
  }
  for (const variant of REDUCTION_VARIANTS) {
    const store = new ParamStore(gpu);
    const linear = new Linear(store, "proj", 256, 2, rng, { variant });
    store.finalize();
    await forwardBackward(
      linear,
      `linear 256->2 ${variantLabel(variant)}`,
      [batch, 256],
      (n) => n * f,
      (n) => 2 * n * f,
    );
  }
  for (const variant of REDUCTION_VARIANTS) {
    // The notebook's head (C = 10, K = 2, D = 2): forward, loss, dL/dz and the parameter gradients.
    const store = new ParamStore(gpu);
    const head = new MDAHead(store, 10, 2, 2, rng, { variant });
    store.finalize();
    const z = randomTensor([batch, 2]);
    const labels = upload(gpu, Uint32Array.from({ length: batch }, (_, i) => i % 10), [batch]);
    const stats = upload(gpu, new Float32Array(STATS_PER_STEP), [STATS_PER_STEP]);
    inputs.push(labels.buffer, stats.buffer);
    const loss = new EM_DNLLLoss(0.1);
    await timeIt(
      `mda head step ${variantLabel(variant)}`,
      `${batch}x2`,
      undefined,
      (rec) => void headTrainStep(rec, head, loss, z, labels, stats, 0),
    );
  }
  {
    const store = new ParamStore(gpu);
    store.add("all", [ADAM_PARAMETERS], new Float32Array(ADAM_PARAMETERS));
    store.finalize();
    const adam = new Adam(store);
    // Reads params, grads, m, v; writes params, m, v.
    await timeIt(
      "adam step",
      `${ADAM_PARAMETERS} params`,
      7 * store.flatLength * f,
      (rec) => adam.record(rec),
    );
  }
  for (const b of inputs) b.destroy();
  return results;
}

export function formatTable(rows: LayerTiming[]): string {
  const lines = [
    `${"kernel".padEnd(44)}${"shape".padEnd(18)}${"median ms".padStart(10)}${"min ms".padStart(10)}${
      "GB/s".padStart(8)
    }`,
  ];
  for (const r of rows) {
    lines.push(
      r.kernel.padEnd(44) + r.shape.padEnd(18) + r.ms.toFixed(2).padStart(10) +
        r.minMs.toFixed(2).padStart(10) +
        (r.gbps === undefined ? "" : r.gbps.toFixed(2)).padStart(8),
    );
  }
  return lines.join("\n");
}

const SPEC: CommandSpec = {
  name: "layers_bench",
  invocation: "deno run -A bench/layers_bench.ts",
  summary: "Times the encoder's non-convolution layers and Adam at the notebook's shapes, forward and " +
    "backward, with the bytes each must move and the rate; a buffer copy and relu forward as yardsticks.",
  positionals: [],
  flags: [
    { name: "batch", kind: "int", value: "N", meaning: "batch size", default: "256" },
    {
      name: "repeats",
      kind: "int",
      value: "N",
      meaning: "timed runs per layer (the median kept)",
      default: "5",
    },
  ],
  examples: ["deno run -A bench/layers_bench.ts --repeats 3"],
};

if (import.meta.main) {
  const { batch, repeats } = parseOrExit(SPEC, Deno.args, (p) => {
    checkPositionals(SPEC, p);
    return { batch: intFlag(p, "batch", 1) ?? 256, repeats: intFlag(p, "repeats", 1) ?? 5 };
  });
  const gpu = await getGpuOrExit();
  console.log(`${describeAdapter(gpu.report)}; batch ${batch}, ${repeats} repeats`);
  console.log(formatTable(await benchLayers(gpu, { batch, repeats })));
}
