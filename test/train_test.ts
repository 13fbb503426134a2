// The engine end to end without the experiment runner: a tiny encoder overfits a handful of images
// (softmax head + cross-entropy, and the MDA head + EM-DNLL), and two runs of one seed give the same bits.

import { deepStrictEqual, ok } from "node:assert/strict";
import { DeviceSplit } from "../lib/data/device.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readF32, Workspace } from "../lib/gpu/tensor.ts";
import { Model, type ModelConfig } from "../lib/model.ts";
import { Rng } from "../lib/rng.ts";

const N = 8;

async function train(config: Partial<ModelConfig>, steps: number) {
  const gpu = await getGpu();
  const rng = new Rng(11);
  const images = new Uint8Array(N * 784).map(() => rng.int(256));
  const labels = Uint8Array.from({ length: N }, (_, i) => i % 4);
  const split = new DeviceSplit(gpu, { images, labels, count: N, rows: 28, cols: 28 });
  split.setOrder(Uint32Array.from({ length: N }, (_, i) => i));
  const model = new Model(gpu, {
    widths: [4, 4, 8, 8, 8, 8],
    latentDim: 3,
    head: "softmax",
    components: 1,
    loss: "ce",
    lambda: 0.1,
    muInit: "independent",
    lr: 0.01,
    numClasses: 4,
    seed: 5,
    ...config,
  });
  const ws = new Workspace(gpu, "test");
  const stats = ws.tensor("stats", [2 * steps]);
  const rec = new Recorder(gpu);
  for (let s = 0; s < steps; s++) {
    const { x, labels: y } = split.gather(rec, 0, N);
    model.trainStep(rec, x, y, stats, s);
    rec.submit();
  }
  await rec.finish();
  const log = await readF32(gpu, stats);
  const host = await model.store.toHost();
  return { log, host };
}

Deno.test("train: a tiny encoder with the softmax head overfits 8 images", async () => {
  const { log } = await train({}, 60);
  const first = log[0], last = log[2 * 59];
  ok(last < 0.2 * first, `loss ${first} -> ${last}`);
  ok(log[2 * 59 + 1] === N, `correct ${log[2 * 59 + 1]} of ${N}`);
});

Deno.test("train: the MDA head with EM-DNLL learns the same 8 images", async () => {
  const { log } = await train({ head: "mda", components: 2, loss: "em_dnll", latentDim: 2 }, 80);
  ok(log[2 * 79] < log[0] - 1, `loss ${log[0]} -> ${log[2 * 79]}`);
  ok(log[2 * 79 + 1] >= N - 1, `correct ${log[2 * 79 + 1]} of ${N}`);
});

Deno.test("train: two runs of one seed give identical bits", async () => {
  const a = await train({}, 5), b = await train({}, 5);
  deepStrictEqual(Array.from(a.log), Array.from(b.log));
  deepStrictEqual(a.host, b.host);
});
