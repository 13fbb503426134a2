// A device that stops working stops the work with one line (lib/gpu/fault.ts): a device lost in the
// middle of an epoch, an error no error scope caught, and the tuner's candidates, whose own errors drop
// them while a lost device ends the tuning (and the candidate is left out of the next). The loss is real:
// the device is destroyed behind the code's back, which WebGPU reports as a loss, as it does a driver reset.
// Each test ends with a new device. (A run that loses its device: test/experiment_test.ts; a browser's GPU
// process crashing under the training page: test/web_train_test.ts.)

import { deepStrictEqual, equal, match, ok, rejects } from "node:assert/strict";
import { DeviceSplit } from "../lib/data/device.ts";
import { getGpu, releaseGpu } from "../lib/gpu/device.ts";
import { describeFault, deviceFault, GpuFaultError, LOST_DEVICE } from "../lib/gpu/fault.ts";
import { readF32, upload } from "../lib/gpu/tensor.ts";
import { adapterKey, Tuner, tuningFile } from "../lib/gpu/tuner.ts";
import { Model, notebookModelConfig } from "../lib/model.ts";
import { Rng } from "../lib/rng.ts";
import { Trainer } from "../lib/train/trainer.ts";
import { convTuneTask } from "./conv_tune_task.ts";
import { tempDir } from "./util.ts";

Deno.test("fault: each kind of fault is one line saying what happened and what helps", () => {
  const line = (kind: "lost" | "out-of-memory" | "validation" | "internal", later = 0) =>
    describeFault({ kind, message: "the words", later });
  equal(line("lost"), "the GPU device was lost (the words); nothing computed since can be read back");
  equal(line("out-of-memory"), "the GPU ran out of memory (the words); a smaller batch size needs less");
  equal(
    line("validation", 2),
    "WebGPU reported a validation error, a bug in webgpu-mda (the words; 2 more errors after it); please report it",
  );
  equal(
    line("internal", 1),
    "WebGPU reported an internal error of the driver or its shader compiler (the words; 1 more error after it)",
  );
  equal(
    new GpuFaultError({ kind: "lost", message: "m", later: 0 }, "at step 3").message,
    `${line("lost").replace("the words", "m")}; at step 3`,
  );
});

Deno.test("fault: a device lost in the middle of an epoch stops training with the loss and where it was noticed", async () => {
  const gpu = await getGpu();
  const rng = new Rng(4);
  const count = 12;
  const images = new Uint8Array(count * 784).map(() => rng.int(256));
  const labels = Uint8Array.from({ length: count }, (_, i) => i % 4);
  const split = new DeviceSplit(gpu, { images, labels, count, rows: 28, cols: 28 });
  const model = new Model(gpu, { ...notebookModelConfig([4, 4, 8, 8, 8, 8], 5), numClasses: 4 });
  const trainer = new Trainer(gpu, model, split, split, labels, { batchSize: 2, seed: 1, augment: false });
  let calls = 0;
  await rejects(
    trainer.trainEpoch(1, {
      evaluate: true,
      // Called before each step: the device goes away before the third.
      shouldStop: () => {
        if (++calls === 3) gpu.device.destroy();
        return false;
      },
    }),
    (e: Error) => {
      ok(e instanceof GpuFaultError, String(e));
      match(
        e.message,
        /^the GPU device was lost \(destroyed[^)]*\); nothing computed since can be read back; noticed at epoch 1, step [3-6] of 6$/,
      );
      return true;
    },
  );
  equal(deviceFault(gpu.device)?.kind, "lost");
  // The next caller gets a working device.
  const fresh = await getGpu();
  ok(fresh.device !== gpu.device, "getGpu() still hands out the lost device");
  deepStrictEqual(Array.from(await readF32(fresh, upload(fresh, new Float32Array([1, 2]), [2]))), [1, 2]);
  await releaseGpu();
});

Deno.test("fault: an error no scope caught fails the next readback with it, not with the garbage after it", async () => {
  const gpu = await getGpu();
  const t = upload(gpu, new Float32Array([3, 4]), [2]);
  // A buffer WebGPU refuses (MAP_READ with STORAGE): a validation error, as a bug of ours would raise.
  gpu.device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
  await rejects(readF32(gpu, t), (e: Error) => {
    ok(e instanceof GpuFaultError, String(e));
    match(e.message, /^WebGPU reported a validation error, a bug in webgpu-mda \(.+\); please report it$/);
    return true;
  });
  await releaseGpu();
});

Deno.test("fault: out of memory (as WebGPU reports it, an event no scope caught) stops the next readback naming it", async () => {
  const gpu = await getGpu();
  const t = upload(gpu, new Float32Array([5]), [1]);
  // Mesa's adapters take whatever is asked of them lazily, so the event is dispatched as the device would.
  gpu.device.dispatchEvent(
    new GPUUncapturedErrorEvent("uncapturederror", { error: new GPUOutOfMemoryError("a 3 GiB buffer") }),
  );
  equal(deviceFault(gpu.device)?.kind, "out-of-memory");
  await rejects(readF32(gpu, t), (e: Error) => {
    equal(e.message, "the GPU ran out of memory (a 3 GiB buffer); a smaller batch size needs less");
    return true;
  });
  await releaseGpu();
});

Deno.test("fault: the tuner drops a candidate that raises an error; one that loses the device stops the tuning, named, and the next run skips it", async () => {
  const cacheFile = `${await tempDir("mda-fault-test-")}/tuning.json`;
  const lines: string[] = [];
  const options = {
    mode: "hardware" as const,
    cache: tuningFile(cacheFile),
    repeats: 1,
    log: (l: string) => lines.push(l),
  };
  let gpu = await getGpu();
  // "invalid" raises a validation error while it is recorded (as a shader its compiler rejects would).
  const { task: invalid } = await convTuneTask(["reference", "invalid", "other"], (name) => {
    if (name === "invalid") {
      gpu.device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
    }
  });
  const result = await new Tuner(gpu, options).choose(invalid, "x");
  equal(result.source, "timed");
  deepStrictEqual(Object.keys(result.dropped!), ["invalid"]);
  match(result.dropped!.invalid, /^failed: GPUValidationError: /);
  ok(
    lines.some((l) => l.startsWith(`tuner: dropped invalid for ${invalid.key}: failed: GPUValidationError`)),
    lines.join("\n"),
  );
  equal(deviceFault(gpu.device), undefined, "the candidate's error counted as the device's");

  // "invalid" now loses the device: the tuning stops and says where; the tuning file remembers the
  // candidate, so that a later run, on a new device, leaves it out. Its loss came while the candidates
  // were checked, before any was timed: the entry has no times.
  await Deno.remove(cacheFile);
  gpu = await getGpu();
  const { task: losing } = await convTuneTask(["reference", "invalid", "other"], (name) => {
    if (name === "invalid") gpu.device.destroy();
  });
  await rejects(new Tuner(gpu, options).choose(losing, "x"), (e: Error) => {
    ok(e instanceof GpuFaultError, String(e));
    match(
      e.message,
      new RegExp(
        `^the GPU device was lost \\(destroyed[^)]*\\); nothing computed since can be read back; while the tuner ran invalid for ${losing.key}$`,
      ),
    );
    return true;
  });
  const entry = () => JSON.parse(Deno.readTextFileSync(cacheFile)).adapters[adapterKey(gpu)][losing.key];
  const partial = entry();
  deepStrictEqual(partial.ms, {});
  match(partial.dropped.invalid, new RegExp(`^${LOST_DEVICE} \\(destroyed`));
  const lost = gpu;
  gpu = await getGpu();
  ok(gpu.device !== lost.device, "the lost device was handed out again");
  lines.length = 0;
  const { task: relosing } = await convTuneTask(["reference", "invalid", "other"], (name) => {
    if (name === "invalid") gpu.device.destroy();
  });
  const again = await new Tuner(gpu, options).choose(relosing, "x");
  equal(again.source, "timed");
  deepStrictEqual(Object.keys(again.ms!).sort(), ["other", "reference"]);
  equal(again.dropped!.invalid, partial.dropped.invalid);
  ok(
    lines.some((l) => l.startsWith(`tuner: skipped invalid for ${losing.key}: ${LOST_DEVICE}`)),
    lines.join("\n"),
  );
  equal(deviceFault(gpu.device), undefined);
  deepStrictEqual(entry(), { choice: again.choice, ms: again.ms, dropped: again.dropped });

  // Timed on the wall clock (an adapter without timestamp queries), a loss during a candidate's samples, after
  // its checked run, is that candidate's too.
  await Deno.remove(cacheFile);
  gpu = await getGpu();
  let recordings = 0;
  const { task: losingLater } = await convTuneTask(["reference", "other"], (name) => {
    if (name === "other" && ++recordings === 2) gpu.device.destroy();
  });
  await rejects(new Tuner(gpu, { ...options, wallClock: true }).choose(losingLater, "x"), (e: Error) => {
    match(e.message, /^the GPU device was lost .*; while the tuner ran other for /);
    return true;
  });
  match(entry().dropped.other, new RegExp(`^${LOST_DEVICE} `));
  await releaseGpu();
});
