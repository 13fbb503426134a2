// The page side of `deno task bench:implementations --browser`: the notebook model's training step
// (the same code as bench/bench.ts's step: synthetic images, one warm-up step, then timed steps) in a
// browser tab, posting { adapter, train_step_ms, ... } to /report. Query: batch, widths, steps.

import { randomSplit } from "../lib/data/device.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { Workspace } from "../lib/gpu/tensor.ts";
import { STATS_PER_STEP } from "../lib/mda/head.ts";
import { Model, notebookModelConfig } from "../lib/model.ts";
import { convChoices } from "../lib/nn/conv2d/tune.ts";
import { NOTEBOOK_WIDTHS } from "../lib/nn/encoder.ts";
import { Rng } from "../lib/rng.ts";
import { describeError } from "../test/browser/describe_error.ts";

async function main(): Promise<unknown> {
  const q = new URLSearchParams(location.search);
  const batch = Number(q.get("batch") ?? 256);
  const steps = Number(q.get("steps") ?? 1);
  const widths = q.get("widths")?.split(",").map(Number) ?? NOTEBOOK_WIDTHS;
  const gpu = await getGpu();
  const split = randomSplit(gpu, batch, new Rng(7));
  const model = new Model(gpu, notebookModelConfig(widths, 1));
  const stats = new Workspace(gpu, "bench").tensor("stats", [STATS_PER_STEP]);
  const rec = new Recorder(gpu);
  const times: number[] = [];
  let warmup = 0;
  for (let s = 0; s < steps + 1; s++) {
    const t0 = performance.now();
    const { x, labels } = split.gather(rec, 0, batch);
    model.trainStep(rec, x, labels, stats, 0);
    await rec.finish();
    // The first step compiles the pipelines: a warm-up, reported apart.
    if (s > 0) times.push(performance.now() - t0);
    else warmup = performance.now() - t0;
  }
  return {
    adapter: gpu.report.description,
    implementation: gpu.report.implementation,
    backend: gpu.report.backend,
    feature_level: gpu.report.featureLevel,
    train_step_ms: times.reduce((a, b) => a + b, 0) / times.length,
    train_step_ms_each: times,
    warmup_step_ms: warmup,
    conv_kernels: convChoices(model.encoder.layers),
  };
}

main().then(
  (r) => fetch("/report", { method: "POST", body: JSON.stringify(r) }),
  (e) => fetch("/report", { method: "POST", body: JSON.stringify({ error: describeError(e) }) }),
);
