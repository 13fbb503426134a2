// The two reduction variants of lib/gpu/reduction.ts (BatchNorm, global pool, projection, heads) inside a
// whole model: each kernel is tested against its float64 reference in its own test file; here a few
// training steps with every layer on the "tree" kernels must give the "serial" kernels' losses, and the
// adapter decides the default.

import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { randomSplit } from "../lib/data/device.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { defaultReductionVariant, type ReductionVariant, reductionVariant } from "../lib/gpu/reduction.ts";
import { readF32, Workspace } from "../lib/gpu/tensor.ts";
import { STATS_PER_STEP } from "../lib/mda/head.ts";
import { Model, type ModelConfig, notebookModelConfig } from "../lib/model.ts";
import { BatchNorm2d } from "../lib/nn/batchnorm.ts";
import { ParamStore } from "../lib/gpu/params.ts";
import { TestRng as Rng } from "./util.ts"; // seeds mix in DNLL_TEST_SEED
import { assertClose } from "./util.ts";

Deno.test("reductions: serial on software adapters, tree on GPUs; a bad name is refused", async () => {
  const gpu = await getGpu();
  assertEquals(defaultReductionVariant(gpu), gpu.report.isSoftware ? "serial" : "tree");
  assertEquals(reductionVariant(gpu, undefined, "x"), defaultReductionVariant(gpu));
  assertEquals(reductionVariant(gpu, "tree", "x"), "tree");
  assertEquals(
    new Model(gpu, notebookModelConfig([4, 4, 4, 4, 4, 4], 1)).reductions,
    defaultReductionVariant(gpu),
  );
  assertThrows(
    () => new BatchNorm2d(new ParamStore(gpu), "bn", 3, { variant: "wide" as ReductionVariant }),
    /BatchNorm2d bn: reduction variant must be one of serial, tree, got wide/,
  );
});

const HEADS: [string, Partial<ModelConfig>][] = [
  ["mda", {}],
  ["lda", { head: "lda", components: 1, loss: "dnll" }],
  ["softmax", { head: "softmax", components: 1, loss: "ce" }],
];

for (const [name, head] of HEADS) {
  Deno.test(`reductions (${name} head): 3 training steps on the tree kernels give the serial kernels' losses`, async () => {
    const gpu = await getGpu();
    // Batch 13 of 28x28 images: the tree BatchNorm's first layers cut each channel into chunks of 6, 6 and
    // 1 samples (4096 values a chunk); the heads' 64-lane workgroups hold fewer samples than lanes.
    const batch = 13;
    const losses = async (reductions: ReductionVariant): Promise<number[]> => {
      const model = new Model(gpu, { ...notebookModelConfig([4, 5, 8, 6, 9, 7], 3), ...head }, {
        reductions,
      });
      assertEquals(model.reductions, reductions);
      const split = randomSplit(gpu, batch, new Rng(4));
      const stats = new Workspace(gpu, "stats").tensor("stats", [3 * STATS_PER_STEP]);
      const rec = new Recorder(gpu);
      for (let step = 0; step < 3; step++) {
        const { x, labels } = split.gather(rec, 0, batch);
        model.trainStep(rec, x, labels, stats, step);
      }
      await rec.finish();
      rec.destroy();
      const s = await readF32(gpu, stats);
      return [0, 1, 2].map((step) => s[step * STATS_PER_STEP]);
    };
    // Different summation orders: the losses agree to rounding, step after step (Adam in between).
    const tree = await losses("tree");
    assertClose(tree, await losses("serial"), { rtol: 1e-4, atol: 1e-5, what: "losses of 3 steps" });
    // Fixed order: the tree kernels give the same bits again.
    assertEquals(await losses("tree"), tree);
  });
}
