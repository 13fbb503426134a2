// Conv2d kernel benchmark: forward, input gradient and weight gradient of the notebook's six
// convolutions at one batch size. Wall time is measured around `await rec.finish()` (best of
// `repeats` after a warm-up, which also compiles the shaders); GPU timestamps are reported too when the
// adapter has them. The machine may be shared, so compare variants back to back and trust the best-of.
//
//   deno run -A bench/conv2d_bench.ts [--batch 256] [--repeats 3] [--widths 64,64,128,128,256,256]

import { parseArgs } from "node:util";
import { describeAdapter, getGpuOrExit, type Gpu } from "../lib/gpu/device.ts";
import { ParamStore } from "../lib/gpu/params.ts";
import { GpuTimer, Recorder } from "../lib/gpu/recorder.ts";
import { type Tensor, upload } from "../lib/gpu/tensor.ts";
import { Conv2d } from "../lib/nn/conv2d/conv2d.ts";
import { Rng } from "../lib/rng.ts";

export interface ConvBenchRow {
  kernel: string;
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
    const flops = 2 * n * hw * hw * cin * cout * 9;
    const kernels: [string, (rec: Recorder) => void][] = [
      ["forward", (rec) => void conv.forward(rec, x, true)],
      ["backward-weight", (rec) => conv.backwardParams(rec, dy)],
    ];
    if (i > 0) kernels.push(["backward-input", (rec) => void conv.backwardInput(rec, dy)]);
    // The forward also saves x for the backward passes timed after it.
    for (const [kernel, body] of kernels) {
      const [ms, gpuMs] = await timeIt(gpu, opts.repeats, kernel, body);
      rows.push({ kernel, shape, ms, gflops: flops / ms / 1e6, gpuMs });
    }
    x.buffer.destroy();
    dy.buffer.destroy();
  }
  return rows;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      batch: { type: "string", default: "256" },
      repeats: { type: "string", default: "3" },
      widths: { type: "string" },
      layers: { type: "string" },
    },
  });
  const gpu = await getGpuOrExit();
  const batch = Number(values.batch), repeats = Number(values.repeats);
  console.log(`adapter: ${describeAdapter(gpu.report)}; batch ${batch}; best of ${repeats}`);
  const rows = await benchConv2d(gpu, {
    batch,
    repeats,
    widths: values.widths?.split(",").map(Number),
    layers: values.layers?.split(",").map(Number),
  });
  console.log(
    `${"kernel".padEnd(16)} ${"shape".padEnd(18)} ${"ms".padStart(9)} ${"GFLOP/s".padStart(8)} ${
      "gpu ms".padStart(9)
    }`,
  );
  for (const r of rows) {
    console.log(
      `${r.kernel.padEnd(16)} ${r.shape.padEnd(18)} ${r.ms.toFixed(1).padStart(9)} ${
        r.gflops.toFixed(1).padStart(8)
      } ${(r.gpuMs?.toFixed(1) ?? "-").padStart(9)}`,
    );
  }
  const total = rows.reduce((a, r) => a + r.ms, 0);
  const flops = rows.reduce((a, r) => a + r.gflops * r.ms * 1e6, 0);
  console.log(
    `one training step of these convolutions: ${total.toFixed(0)} ms, ${
      (flops / total / 1e6).toFixed(1)
    } GFLOP/s overall`,
  );
}
