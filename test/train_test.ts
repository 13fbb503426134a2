// The engine end to end without the experiment runner: a tiny encoder overfits a handful of images
// (softmax head + cross-entropy, and the MDA head + EM-DNLL), and two runs of one seed give the same bits.

import { deepStrictEqual, equal, ok, rejects } from "node:assert/strict";
import { DeviceSplit } from "../lib/data/device.ts";
import { getGpu, type Gpu } from "../lib/gpu/device.ts";
import { GpuStopwatch, Recorder } from "../lib/gpu/recorder.ts";
import { readF32, Workspace } from "../lib/gpu/tensor.ts";
import { STATS_PER_STEP } from "../lib/mda/head.ts";
import { Model, type ModelConfig } from "../lib/model.ts";
import { Rng } from "../lib/rng.ts";
import { epochOrder } from "../lib/data/batches.ts";
import { LabelOutOfRangeError, shuffleStream, type StepProgress, Trainer } from "../lib/train/trainer.ts";
import { encodeResume, restoreResume, RESUME_FORMAT, type ResumeState } from "../lib/train/checkpoint.ts";
import { decodeSafetensors } from "../lib/io/safetensors.ts";

const N = 8;

/** A tiny encoder (widths 4-4-8-8-8-8) with the softmax head over 4 classes, unless `config` says else. */
function tinyModel(gpu: Gpu, config: Partial<ModelConfig> = {}): Model {
  return new Model(gpu, {
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
}

async function train(config: Partial<ModelConfig>, steps: number) {
  const gpu = await getGpu();
  const rng = new Rng(11);
  const images = new Uint8Array(N * 784).map(() => rng.int(256));
  const labels = Uint8Array.from({ length: N }, (_, i) => i % 4);
  const split = new DeviceSplit(gpu, { images, labels, count: N, rows: 28, cols: 28 });
  split.setOrder(Uint32Array.from({ length: N }, (_, i) => i));
  const model = tinyModel(gpu, config);
  const ws = new Workspace(gpu, "test");
  const stats = ws.tensor("stats", [STATS_PER_STEP * steps]);
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
  const at = STATS_PER_STEP * 59;
  const first = log[0], last = log[at];
  ok(last < 0.2 * first, `loss ${first} -> ${last}`);
  ok(log[at + 1] === N, `correct ${log[at + 1]} of ${N}`);
});

Deno.test("train: the MDA head with EM-DNLL learns the same 8 images", async () => {
  const { log } = await train({ head: "mda", components: 2, loss: "em_dnll", latentDim: 2 }, 80);
  const at = STATS_PER_STEP * 79;
  ok(log[at] < log[0] - 1, `loss ${log[0]} -> ${log[at]}`);
  ok(log[at + 1] >= N - 1, `correct ${log[at + 1]} of ${N}`);
});

Deno.test("train: two runs of one seed give identical bits", async () => {
  const a = await train({}, 5), b = await train({}, 5);
  deepStrictEqual(Array.from(a.log), Array.from(b.log));
  deepStrictEqual(a.host, b.host);
});

Deno.test("train: a label out of range stops the epoch naming the batch (epoch and step)", async () => {
  const gpu = await getGpu();
  const rng = new Rng(12);
  const count = 3 * N;
  const images = new Uint8Array(count * 784).map(() => rng.int(256));
  // Four classes; the second batch of the epoch (samples N..2N-1 in file order) holds labels 4 and 9.
  const labels = Uint8Array.from({ length: count }, (_, i) => i % 4);
  labels[N + 2] = 4;
  labels[N + 5] = 9;
  const split = new DeviceSplit(gpu, { images, labels, count, rows: 28, cols: 28 });
  const model = tinyModel(gpu, { latentDim: 2, head: "mda", components: 2, loss: "em_dnll" });
  const trainer = new Trainer(gpu, model, split, split, labels, { batchSize: N, seed: 1, augment: false });
  // Batches follow the shuffled order: find the step whose batch holds the bad samples.
  const order = epochOrder(shuffleStream(1), count);
  const bad = new Set<number>();
  for (let s = 0; s < 3; s++) {
    for (const i of order.subarray(s * N, (s + 1) * N)) if (labels[i] >= 4) bad.add(s + 1);
  }
  await rejects(trainer.trainEpoch(1), (e: Error) => {
    ok(e instanceof LabelOutOfRangeError, `${e}`);
    const first = Math.min(...bad);
    const expected = [...order.subarray((first - 1) * N, first * N)].filter((i) => labels[i] >= 4).length;
    equal(
      e.message,
      `${expected} label${
        expected === 1 ? "" : "s"
      } outside 0..3 in the batch of epoch 1, step ${first}; stopping (the last checkpoint is intact)`,
    );
    return true;
  });
  trainer.destroy();
});

Deno.test("train: progress comes in step order, with the images done, and ends at the epoch's last step; a stop is reported where it stopped", async () => {
  const gpu = await getGpu();
  const rng = new Rng(13);
  const count = 12;
  const images = new Uint8Array(count * 784).map(() => rng.int(256));
  const labels = Uint8Array.from({ length: count }, (_, i) => i % 4);
  const split = new DeviceSplit(gpu, { images, labels, count, rows: 28, cols: 28 });
  const model = tinyModel(gpu, { latentDim: 2 });
  const trainer = new Trainer(gpu, model, split, split, labels, { batchSize: 2, seed: 1, augment: false });
  const seen: StepProgress[] = [];
  const whole = await trainer.trainEpoch(1, { onProgress: (p) => seen.push(p) });
  equal(whole.stepsDone, 6);
  equal(seen[0].step, 1, "the first step is reported");
  equal(seen[seen.length - 1].step, 6, "the last step is reported");
  for (let i = 0; i < seen.length; i++) {
    equal(seen[i].images, 2 * seen[i].step);
    equal(seen[i].steps, 6);
    if (i > 0) ok(seen[i].step > seen[i - 1].step && seen[i].seconds >= seen[i - 1].seconds, "in order");
  }
  // Stopped after three steps of epoch 2: the last report is step 3, and no wait is left pending.
  seen.length = 0;
  let calls = 0;
  const part = await trainer.trainEpoch(2, {
    onProgress: (p) => seen.push(p),
    shouldStop: () => ++calls > 3,
  });
  ok(part.interrupted);
  equal(part.stepsDone, 3);
  equal(seen[seen.length - 1].step, 3);
  trainer.destroy();
});

Deno.test("train: an epoch's evaluation and snapshot come back in the epoch's one readback, equal to evaluate() after it", async () => {
  const gpu = await getGpu();
  const rng = new Rng(17);
  const images = (count: number) => new Uint8Array(count * 784).map(() => rng.int(256));
  const labels = (count: number) => Uint8Array.from({ length: count }, (_, i) => (i * 3) % 4);
  const train = new DeviceSplit(gpu, {
    images: images(12),
    labels: labels(12),
    count: 12,
    rows: 28,
    cols: 28,
  });
  const testLabels = labels(10);
  const test = new DeviceSplit(gpu, {
    images: images(10),
    labels: testLabels,
    count: 10,
    rows: 28,
    cols: 28,
  });
  const model = tinyModel(gpu, { latentDim: 2 });
  const trainer = new Trainer(gpu, model, train, test, testLabels, { batchSize: 4, seed: 2, augment: false });
  const snapshot = model.store.snapshot(true);
  // Every wait for data from the GPU is a mapAsync.
  const mapAsync = GPUBuffer.prototype.mapAsync;
  let maps = 0;
  GPUBuffer.prototype.mapAsync = function (this: GPUBuffer, ...args: Parameters<GPUBuffer["mapAsync"]>) {
    maps++;
    return mapAsync.apply(this, args);
  };
  let result;
  try {
    result = await trainer.trainEpoch(1, { evaluate: true, read: snapshot.regions });
  } finally {
    GPUBuffer.prototype.mapAsync = mapAsync;
  }
  equal(maps, 1, "one readback for the stats, the evaluation and the snapshot");
  deepStrictEqual(result.evaluation, await trainer.evaluate());
  // The evaluation's GPU time, from timestamps; none without them (test/gpu_test.ts checks the stopwatch).
  if (GpuStopwatch.available(gpu)) {
    ok(result.evalSeconds! > 0 && Number.isFinite(result.evalSeconds!), `evalSeconds ${result.evalSeconds}`);
  } else equal(result.evalSeconds, undefined);
  deepStrictEqual(snapshot.decode(result.read!), await model.store.toHostWithMoments());
  // A stopped epoch is not evaluated.
  const part = await trainer.trainEpoch(2, { evaluate: true, shouldStop: () => true });
  ok(part.interrupted && part.evaluation === undefined && part.evalSeconds === undefined);
  trainer.destroy();
});

Deno.test("train: a resume checkpoint with a broken state or moments fails naming the file and field, before anything is loaded", async () => {
  const gpu = await getGpu();
  const model = tinyModel(gpu);
  const good: ResumeState = {
    format: RESUME_FORMAT,
    epochsDone: 1,
    stepInEpoch: 0,
    adamStep: 3,
    streams: { order: 1 } as unknown as ResumeState["streams"],
    stats: [],
    history: [{ epoch: 1 } as ResumeState["history"][number]],
    elapsed: 2,
  };
  // Another model's checkpoint (another seed): a refused one must leave this model's values as they were.
  const other = tinyModel(gpu, { seed: 6 });
  const decoded = decodeSafetensors(encodeResume(await other.store.toHostWithMoments(), good), "r");
  const before = await model.store.toHostWithMoments();
  const refused = (checkpoint: typeof decoded, re: RegExp) => {
    let message = "";
    try {
      restoreResume(checkpoint, model, "r.safetensors");
    } catch (e) {
      message = (e as Error).message;
    }
    ok(re.test(message), message);
  };
  const withState = (state: string) => ({ ...decoded, metadata: { ...decoded.metadata, state } });
  const cases: [string, RegExp][] = [
    ["{not json", /^r\.safetensors: its resume state is not valid JSON \(/],
    ["[1]", /^r\.safetensors: its resume state is not a JSON object$/],
    [
      JSON.stringify({ ...good, epochsDone: -1 }),
      /^r\.safetensors: resume state field epochsDone is -1, expected an integer >= 0$/,
    ],
    [
      JSON.stringify({ ...good, adamStep: undefined }),
      /field adamStep is missing, expected an integer >= 0$/,
    ],
    [
      JSON.stringify({ ...good, history: [] }),
      /field history is \[\], expected a list of epochsDone = 1 rows$/,
    ],
    [JSON.stringify({ ...good, streams: null }), /field streams is null, expected an object$/],
  ];
  for (const [state, re] of cases) refused(withState(state), re);
  // Moments of another type are refused before the parameters are written to the GPU.
  const i64 = decoded.tensors.map((t) =>
    t.name === "optimizer.exp_avg"
      ? { ...t, dtype: "I64" as const, data: new BigInt64Array(t.data.length) }
      : t
  );
  refused(
    { ...decoded, tensors: i64 },
    /^r\.safetensors: optimizer\.exp_avg missing or of the wrong size or type \(expected F32 \[\d+\]\)$/,
  );
  deepStrictEqual(await model.store.toHostWithMoments(), before);
  // The checkpoint itself restores, state and all.
  deepStrictEqual(restoreResume(decoded, model, "r.safetensors"), good);
  deepStrictEqual(
    (await model.store.toHost()).map((t) => t.data),
    (await other.store.toHost()).map((t) => t.data),
  );
});
