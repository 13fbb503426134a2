// BatchNorm kernel tuning (lib/nn/batchnorm_tune.ts) on the CPU: "hardware" mode is forced on the software
// adapter, on shapes small enough to time in a test but with batches long enough for several chunk sizes.
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { getGpu } from "../lib/gpu/device.ts";
import { ParamStore } from "../lib/gpu/params.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readF32, upload } from "../lib/gpu/tensor.ts";
import { BatchNorm2d, batchNormKernelName, parseBatchNormKernel, treeChunking } from "../lib/nn/batchnorm.ts";
import {
  applyBatchNormChoices,
  batchNormCandidates,
  batchNormChoices,
  tuneBatchNormLayers,
  TUNING_INPUT_GAP,
  tuningInput,
} from "../lib/nn/batchnorm_tune.ts";
import { Conv2d } from "../lib/nn/conv2d/conv2d.ts";
import { MaxPool2d } from "../lib/nn/maxpool.ts";
import { Rng } from "../lib/rng.ts";

Deno.test("batchnorm tune: kernel names parse back into the same kernel; bad names are refused", () => {
  for (const name of ["serial", "tree(chunk=1)", "tree(chunk=4096)", "tree(chunk=16384)"]) {
    assertEquals(batchNormKernelName(parseBatchNormKernel(name)), name);
  }
  assertEquals(parseBatchNormKernel("tree(chunk=300)"), { variant: "tree", chunkElements: 300 });
  for (const bad of ["tree", "tree(chunk=0)", "tree(chunk=-4)", "tree(chunk=4.5)", "Serial", "tree(n=4)"]) {
    throws(
      () => parseBatchNormKernel(bad),
      { message: `BatchNorm kernel "${bad}": expected serial or tree(chunk=N) with N >= 1` },
    );
  }
});

Deno.test("batchnorm tune: candidates are serial first, then chunk sizes that cut the batch differently", () => {
  const names = (n: number, hw: number) => batchNormCandidates(n, hw).map(batchNormKernelName);
  // Notebook shapes at batch 256: 28x28 planes give 2, 6 and 21 samples per chunk; 7x7, 21, 84 and 256.
  assertEquals(names(256, 784), ["serial", "tree(chunk=1024)", "tree(chunk=4096)", "tree(chunk=16384)"]);
  assertEquals(names(256, 49), ["serial", "tree(chunk=1024)", "tree(chunk=4096)", "tree(chunk=16384)"]);
  assertEquals(treeChunking(256, 784, 1024), { chunk: 2, chunks: 128 });
  assertEquals(treeChunking(256, 49, 16384), { chunk: 256, chunks: 1 });
  // A small batch: 4096 and 16384 both take the whole batch of 24 as one chunk; 1024 takes 11 samples.
  assertEquals(names(24, 100), ["serial", "tree(chunk=1024)", "tree(chunk=4096)"]);
  assertEquals(names(3, 49), ["serial", "tree(chunk=1024)"]);
});

Deno.test("batchnorm tune: its inputs keep every value TUNING_INPUT_GAP off its channel's mean, so no ReLU gate is in doubt", async () => {
  // Odd and even counts per channel (3 x 1 x 3 = 9, 1 x 7 x 7 = 49, 2 x 5 x 5 = 50, 6 x 1 x 1 = 6).
  const gpu = await getGpu();
  for (const [i, shape] of [[3, 2, 1, 3], [1, 3, 7, 7], [2, 4, 5, 5], [6, 2, 1, 1]].entries()) {
    const [n, c, h, w] = shape;
    const x = tuningInput(new Rng(40 + i), shape);
    assertEquals(x, tuningInput(new Rng(40 + i), shape)); // seeded
    // What the gates see: the normalised values (gamma 1, beta 0, no ReLU), each at least GAP over its
    // channel's standard deviation from zero.
    const store = new ParamStore(gpu);
    const bn = new BatchNorm2d(store, "bn", c, { relu: false, variant: "serial" });
    store.finalize();
    const rec = new Recorder(gpu);
    const yt = bn.forward(rec, upload(gpu, x, shape), true);
    rec.submit();
    const y = await readF32(gpu, yt);
    for (let ch = 0; ch < c; ch++) {
      let sum = 0, sumSquares = 0, nearest = Infinity; // the sums exact: a few dozen f32 values in f64
      for (let s = 0; s < n; s++) {
        for (let p = 0; p < h * w; p++) {
          const at = (s * c + ch) * h * w + p;
          sum += x[at];
          sumSquares += x[at] * x[at];
          nearest = Math.min(nearest, Math.abs(y[at]));
          assert(Math.abs(x[at]) >= TUNING_INPUT_GAP * (1 - 2 ** -23), `[${shape}] channel ${ch}: ${x[at]}`);
        }
      }
      assertEquals(sum, 0, `[${shape}] channel ${ch}: mean ${sum / (n * h * w)}`);
      const bound = 0.999 * TUNING_INPUT_GAP / Math.sqrt(sumSquares / (n * h * w) + 1e-5);
      assert(
        nearest >= bound,
        `[${shape}] channel ${ch}: a normalised value ${nearest} from zero, < ${bound}`,
      );
    }
  }
});

/** conv 1->4, BN+ReLU, maxpool, conv 4->6, BN+ReLU, on a batch of 24 10x10 images. */
async function smallEncoder() {
  const gpu = await getGpu();
  const store = new ParamStore(gpu);
  const rng = new Rng(5);
  const bn1 = new BatchNorm2d(store, "bn1", 4, { relu: true, variant: "serial" });
  const bn2 = new BatchNorm2d(store, "bn2", 6, { relu: true, variant: "serial" });
  const layers = [
    new Conv2d(store, "c1", 1, 4, rng),
    bn1,
    new MaxPool2d("pool"),
    new Conv2d(store, "c2", 4, 6, rng),
    bn2,
  ];
  store.finalize();
  return { gpu, layers, bn1, bn2, inputShape: [24, 1, 10, 10] };
}

Deno.test("batchnorm tune: hardware mode times every candidate per layer and leaves the model's state alone", async () => {
  const { gpu, layers, bn1, bn2, inputShape } = await smallEncoder();
  const before = [await readF32(gpu, bn1.runningMean), await readF32(gpu, bn2.runningVar)];
  const lines: string[] = [];
  const { choices, results } = await tuneBatchNormLayers(gpu, layers, inputShape, {
    mode: "hardware",
    cache: null,
    repeats: 1,
    log: (l) => lines.push(l),
  });
  assertEquals(results.map((r) => r.key), [
    "batchnorm2d train step n=24 c=4 h=10 w=10 relu=1",
    "batchnorm2d train step n=24 c=6 h=5 w=5 relu=1",
  ]);
  // 10x10 planes: 1024 and 4096 cut the batch differently; 5x5: 1024 (41 samples) is the whole batch too.
  assertEquals(Object.keys(results[0].ms!).sort(), ["serial", "tree(chunk=1024)", "tree(chunk=4096)"]);
  assertEquals(Object.keys(results[1].ms!).sort(), ["serial", "tree(chunk=1024)"]);
  for (const r of results) {
    assertEquals([r.source, r.dropped], ["timed", {}]); // every tree kernel agrees with the serial one
    assert(lines.some((l) => l.startsWith(`tuner: ${r.key}: ${r.choice}`)), lines.join("\n"));
  }
  // The layers run the choice, and the choices are what a manifest records.
  assertEquals(choices, { bn1: results[0].choice, bn2: results[1].choice });
  assertEquals(batchNormChoices(layers), choices);
  assertEquals(batchNormKernelName(bn1.kernels), results[0].choice);
  // Timing ran on scratch layers: the model's running statistics are untouched.
  assertEquals([await readF32(gpu, bn1.runningMean), await readF32(gpu, bn2.runningVar)], before);
  assertEquals([bn1.numBatchesTracked.value, bn2.numBatchesTracked.value], [0, 0]);
});

Deno.test("batchnorm tune: software mode keeps the model's kernels; forced choices are applied back", async () => {
  const { gpu, layers, bn1, bn2, inputShape } = await smallEncoder();
  const soft = await tuneBatchNormLayers(gpu, layers, inputShape, { mode: "software", cache: null });
  assertEquals(soft, { choices: { bn1: "serial", bn2: "serial" }, results: [] });
  // A resumed run's choices win, whatever the adapter.
  const forced = { bn1: "tree(chunk=1024)", bn2: "serial" };
  const r = await tuneBatchNormLayers(gpu, layers, inputShape, { mode: "hardware", cache: null, forced });
  assertEquals(r, { choices: forced, results: [] });
  assertEquals([bn1.kernels, bn2.kernels], [
    { variant: "tree", chunkElements: 1024 },
    { variant: "serial", chunkElements: 4096 },
  ]);
  throws(() => applyBatchNormChoices(layers, { bn1: "serial" }), {
    message: "recorded BatchNorm kernels have no entry for layer bn2",
  });
  throws(() => applyBatchNormChoices(layers, { bn1: "serial", bn2: "tree(chunk=0)" }), {
    message: `BatchNorm kernel "tree(chunk=0)": expected serial or tree(chunk=N) with N >= 1`,
  });
});
