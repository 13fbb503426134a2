// The GPU path at the notebook's real shapes, on any adapter: the tuner checks every conv and BatchNorm
// candidate against its reference candidate at each layer shape of the notebook model (widths 64-64-128-
// 128-256-256) at batch 256 (one timed sample each, so a CPU gets through it), then two training steps run
// on the chosen kernels. The rehearsal (tools/device/rehearse --as-gpu) runs the GPU path at batch 4, where
// grids, buffer sizes and the chance of a value at a ReLU's kink are all small; this is the size the H200
// runs. On the CPU, as a GPU, then the software path for comparison (about half an hour, then 20 s):
//
//   DNLL_TREAT_AS_GPU=1 DENO_WEBGPU_BACKEND=vulkan deno run -A tools/gpu_path_check.ts /tmp/gpu.json
//   DENO_WEBGPU_BACKEND=vulkan deno run -A tools/gpu_path_check.ts /tmp/soft.json /tmp/gpu.json
//
// It writes the adapter, the kernels and the two steps' losses to OUT.json; given a second file it prints
// both runs' losses side by side. `--head lda` or `--head softmax` puts the paper's other heads on the same
// encoder (D = 9; LDA with DNLL at lambda 0.01, softmax with cross-entropy) instead of the notebook's MDA.
// Candidates the tuner drops are in its log lines ("tuner: dropped ...").
// Measured 2026-12-02, lavapipe treated as a GPU: no candidate dropped at any shape (after the BatchNorm
// tuning inputs were kept off the ReLU's kink: lib/nn/batchnorm_tune.ts), step losses 8.284210205078125 and
// 7.52429723739624 against the software path's 8.284210205078125 and 7.524383068084717.

import { randomSplit } from "../lib/data/device.ts";
import { describeAdapter, getGpuOrExit } from "../lib/gpu/device.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readF32, Workspace } from "../lib/gpu/tensor.ts";
import { STATS_PER_STEP } from "../lib/mda/head.ts";
import { Model, type ModelConfig, notebookModelConfig } from "../lib/model.ts";
import { writeJsonAtomic } from "../lib/io/atomic.ts";
import { type BatchNormChoices, tuneBatchNormLayers } from "../lib/nn/batchnorm_tune.ts";
import { type ConvChoices, tuneConvLayers } from "../lib/nn/conv2d/tune.ts";
import { NOTEBOOK_WIDTHS } from "../lib/nn/encoder.ts";
import { Rng } from "../lib/rng.ts";

interface CheckResult {
  adapter: string;
  conv: ConvChoices;
  batchnorm: BatchNormChoices;
  reductions: string;
  /** Per step: mean loss and correct count (the step's stats). */
  steps: { loss: number; correct: number }[];
}

const HEADS: Record<string, Partial<ModelConfig>> = {
  mda: {},
  lda: { head: "lda", components: 1, loss: "dnll", lambda: 0.01, latentDim: 9 },
  softmax: { head: "softmax", components: 1, loss: "ce", latentDim: 9 },
};
const args = [...Deno.args];
const headAt = args.indexOf("--head");
const head = headAt >= 0 ? args.splice(headAt, 2)[1] : "mda";
const [out, against] = args;
if (head === undefined || !Object.hasOwn(HEADS, head)) {
  console.error(
    `error: --head must be one of ${Object.keys(HEADS).join(", ")}, got ${
      head === undefined ? "nothing" : JSON.stringify(head)
    }`,
  );
  Deno.exit(2);
}
if (!out || args.length > 2) {
  console.error(
    "usage: deno run -A tools/gpu_path_check.ts [--head mda|lda|softmax] OUT.json [OTHER_RUN.json]",
  );
  Deno.exit(2);
}
// Read before the half hour of tuning: a file that cannot be read is one line now, not a lost run.
let other: CheckResult | undefined;
try {
  other = against ? JSON.parse(Deno.readTextFileSync(against)) : undefined;
} catch (e) {
  console.error(`error: ${against}: expected a JSON file this tool wrote (${(e as Error).message})`);
  Deno.exit(2);
}
const batch = 256, steps = 2;
const gpu = await getGpuOrExit();
const log = (s: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
log(`adapter: ${describeAdapter(gpu.report)}`);
const split = randomSplit(gpu, batch, new Rng(7));
const model = new Model(gpu, { ...notebookModelConfig(NOTEBOOK_WIDTHS, 1), ...HEADS[head] });
const input = [batch, 1, 28, 28];
const { choices: conv } = await tuneConvLayers(gpu, model.encoder.layers, input, { log, repeats: 1 });
const { choices: batchnorm } = await tuneBatchNormLayers(gpu, model.encoder.layers, input, {
  log,
  repeats: 1,
});
const stats = new Workspace(gpu, "check").tensor("stats", [steps * STATS_PER_STEP]);
for (let s = 0; s < steps; s++) {
  const rec = new Recorder(gpu);
  const t0 = performance.now();
  const { x, labels } = split.gather(rec, 0, batch);
  model.trainStep(rec, x, labels, stats, s);
  await rec.finish();
  log(`step ${s}: ${(performance.now() - t0).toFixed(0)} ms`);
}
const values = await readF32(gpu, stats);
const result: CheckResult = {
  adapter: describeAdapter(gpu.report),
  conv,
  batchnorm,
  reductions: model.reductions,
  steps: Array.from({ length: steps }, (_, s) => ({
    loss: values[STATS_PER_STEP * s],
    correct: values[STATS_PER_STEP * s + 1],
  })),
};
await writeJsonAtomic(out, result);
for (const [s, { loss, correct }] of result.steps.entries()) {
  const then = other?.steps[s];
  const beside = then
    ? `; other run ${then.loss} (relative difference ${
      (Math.abs(loss - then.loss) / then.loss).toExponential(1)
    }), ` +
      `${then.correct} correct`
    : "";
  log(`step ${s}: loss ${loss}, ${correct} correct${beside}`);
}
