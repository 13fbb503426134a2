// The GPU batch gather (lib/shaders/gather.wgsl via DeviceSplit) against the float64 reference of
// torchvision's RandomCrop + ToTensor + Normalize, and against PyTorch's float32 rounding bit for bit.

import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { batchRanges, cropOffsets, epochOrder } from "../lib/data/batches.ts";
import { DeviceSplit, FASHION_NORMALIZE, pixelTable } from "../lib/data/device.ts";
import type { SplitData } from "../lib/data/fashion.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readF32, readRegions, readU32, Tensor, tensorRegion, upload } from "../lib/gpu/tensor.ts";
import { TestRng as Rng } from "./util.ts"; // seeds mix in DNLL_TEST_SEED
import { referenceBatch } from "./reference/data.ts";
import { assertClose } from "./util.ts";

/** A split of random bytes; rows/cols other than 28 exercise the kernel's general addressing. */
function randomSplit(rng: Rng, count: number, rows = 28, cols = 28): SplitData {
  const images = new Uint8Array(count * rows * cols);
  for (let i = 0; i < images.length; i++) images[i] = rng.int(256);
  // Make the extremes appear for sure.
  images[0] = 0;
  images[1] = 255;
  const labels = Uint8Array.from({ length: count }, () => rng.int(10));
  return { images, labels, count, rows, cols } as unknown as SplitData;
}

async function checkEpoch(
  split: SplitData,
  batchSize: number,
  opts: { seed: number; crop?: boolean; normalize?: { mean: number; std: number }; capacity?: number },
): Promise<void> {
  const gpu = await getGpu();
  const rng = new Rng(opts.seed);
  const order = epochOrder(rng, split.count);
  const crop = opts.crop ? cropOffsets(rng, split.count) : undefined;
  const device = new DeviceSplit(gpu, split, { normalize: opts.normalize, capacity: opts.capacity });
  device.setOrder(order, crop);
  const table = pixelTable(opts.normalize);
  try {
    // Every batch of the epoch is gathered in one submit; each is copied out before the next gather
    // overwrites the shared batch buffer, which also checks that recorded order is execution order.
    const rec = new Recorder(gpu);
    const copies: { x: Tensor; labels: Tensor; start: number; size: number }[] = [];
    for (const { start, size } of batchRanges(split.count, batchSize)) {
      const batch = device.gather(rec, start, size);
      assertEquals(batch.x.shape, [size, 1, split.rows, split.cols]);
      assertEquals(batch.labels.shape, [size]);
      const x = upload(gpu, new Float32Array(batch.x.size), batch.x.shape);
      const labels = upload(gpu, new Uint32Array(size), [size]);
      rec.copy(batch.x, x);
      rec.copy(batch.labels, labels);
      copies.push({ x, labels, start, size });
    }
    rec.submit();
    // Every batch's copies in one wait (each costs ~10 ms in Deno; the device kit runs these tests twice).
    const read = await readRegions(gpu, copies.flatMap((c) => [tensorRegion(c.x), tensorRegion(c.labels)]));
    rec.destroy();
    for (const [i, { x, labels, start, size }] of copies.entries()) {
      const got = new Float32Array(read[2 * i]);
      const gotLabels = new Uint32Array(read[2 * i + 1]);
      const ref = referenceBatch(split.images, split.labels, split.rows, split.cols, order, start, size, {
        crop,
        normalize: opts.normalize,
      });
      const what = `batch at ${start} (size ${size}, crop ${Boolean(crop)}, normalize ${
        Boolean(opts.normalize)
      })`;
      assertEquals(Array.from(gotLabels), ref.labels, `${what}: labels`);
      assertClose(got, ref.x, { rtol: 1e-6, atol: 1e-6, what });
      // PyTorch's float32 rounding, bit for bit: the byte each reference pixel came from, through the table.
      const bytes = ref.x.map((v) => {
        const scaled = opts.normalize ? v * opts.normalize.std + opts.normalize.mean : v;
        return Math.round(scaled * 255);
      });
      assertEquals(Array.from(got), Array.from(bytes, (b) => table[b]), `${what}: float32 bits`);
      x.buffer.destroy();
      labels.buffer.destroy();
    }
  } finally {
    device.destroy();
  }
}

Deno.test("gather: plain /255, epoch of 37 images in batches of 16 (last of 5)", async () => {
  await checkEpoch(randomSplit(new Rng(1), 37), 16, { seed: 11 });
});

Deno.test("gather: batch sizes 1 and 3", async () => {
  const split = randomSplit(new Rng(2), 7);
  await checkEpoch(split, 1, { seed: 12 });
  await checkEpoch(split, 3, { seed: 13, crop: true, normalize: FASHION_NORMALIZE });
});

Deno.test("gather: RandomCrop(padding 4) with zero padding and Normalize(0.2860, 0.3530)", async () => {
  await checkEpoch(randomSplit(new Rng(3), 29), 8, { seed: 14, crop: true, normalize: FASHION_NORMALIZE });
  await checkEpoch(randomSplit(new Rng(4), 10), 4, { seed: 15, crop: true });
});

Deno.test("gather: crop offsets at the extremes 0 and 8 shift the image by 4 pixels", async () => {
  const gpu = await getGpu();
  const split = randomSplit(new Rng(5), 4);
  const order = Uint32Array.from([3, 0, 2, 1]);
  const crop = Uint8Array.from([0, 0, 8, 8, 0, 8, 4, 4]);
  const device = new DeviceSplit(gpu, split);
  device.setOrder(order, crop);
  const rec = new Recorder(gpu);
  const { x } = device.gather(rec, 0, 4);
  await rec.finish();
  rec.destroy();
  const got = await readF32(gpu, x);
  const ref = referenceBatch(split.images, split.labels, 28, 28, order, 0, 4, { crop });
  assertClose(got, ref.x, { rtol: 1e-6, atol: 1e-6, what: "extreme crops" });
  // Offset (0, 0): output (y, x) is input (y - 4, x - 4), so the first 4 rows and columns are padding.
  assertEquals(got[0], 0);
  assertEquals(got[4 * 28 + 4], Math.fround(split.images[3 * 784] / 255));
  // Offset (4, 4) is the identity.
  assertEquals(
    Array.from(got.subarray(3 * 784, 4 * 784)),
    Array.from(split.images.subarray(784, 2 * 784), (b) => Math.fround(b / 255)),
  );
  device.destroy();
});

Deno.test("gather: rows*cols a multiple of 4 but cols not (6x10), and a batch past the initial capacity", async () => {
  await checkEpoch(randomSplit(new Rng(6), 9, 6, 10), 5, { seed: 16, capacity: 2 });
  await checkEpoch(randomSplit(new Rng(7), 9, 6, 10), 4, {
    seed: 17,
    crop: true,
    normalize: FASHION_NORMALIZE,
  });
});

Deno.test("gather: the default order is 0..count-1 and setOrder without crop turns cropping off", async () => {
  const gpu = await getGpu();
  const split = randomSplit(new Rng(8), 5);
  const device = new DeviceSplit(gpu, split);
  const identity = Uint32Array.from([0, 1, 2, 3, 4]);
  const expect = (order: Uint32Array) => referenceBatch(split.images, split.labels, 28, 28, order, 0, 5).x;
  let rec = new Recorder(gpu);
  let batch = device.gather(rec, 0, 5);
  await rec.finish();
  assertClose(await readF32(gpu, batch.x), expect(identity), { what: "default order" });
  assertEquals(Array.from(await readU32(gpu, batch.labels)), Array.from(split.labels));
  device.setOrder(Uint32Array.from([4, 3, 2, 1, 0]), new Uint8Array(10).fill(1));
  device.setOrder(identity);
  rec = new Recorder(gpu);
  batch = device.gather(rec, 0, 5);
  await rec.finish();
  assertClose(await readF32(gpu, batch.x), expect(identity), { what: "crop turned off" });
  rec.destroy();
  device.destroy();
});

Deno.test("gather: bad orders, offsets and ranges are refused with one clear line", async () => {
  const gpu = await getGpu();
  const device = new DeviceSplit(gpu, randomSplit(new Rng(9), 4));
  assertThrows(() => device.setOrder(new Uint32Array(3)), /order has 3 entries, expected 4/);
  assertThrows(() => device.setOrder(Uint32Array.from([0, 1, 2, 4])), /order\[3\] = 4 is not below 4/);
  assertThrows(() => device.setOrder(new Uint32Array(4), new Uint8Array(7)), /crop has 7 offsets/);
  assertThrows(() => device.setOrder(new Uint32Array(4), new Uint8Array(8).fill(9)), /exceed 8/);
  const rec = new Recorder(gpu);
  assertThrows(() => device.gather(rec, 2, 3), /rows \[2, 5\) are not within the 4 images/);
  assertThrows(() => device.gather(rec, 0, 0), /not within/);
  rec.destroy();
  device.destroy();
});

Deno.test("gather: timing of a 256-image batch from 60000 resident images", async () => {
  const gpu = await getGpu();
  const split = randomSplit(new Rng(10), 60000);
  const device = new DeviceSplit(gpu, split, { normalize: FASHION_NORMALIZE });
  const rng = new Rng(18);
  const order = epochOrder(rng, split.count), crop = cropOffsets(rng, split.count);
  device.setOrder(order, crop);
  const rec = new Recorder(gpu);
  device.gather(rec, 0, 256);
  await rec.finish(); // compile and warm up
  const steps = 20;
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) device.gather(rec, s * 256, 256);
  await rec.finish();
  const ms = (performance.now() - t0) / steps;
  console.log(
    `gather 256x28x28 with crop+normalize: ${ms.toFixed(2)} ms per batch (${gpu.report.description})`,
  );
  // The buffer holds the last batch of the loop: check it against the reference.
  const { x } = device.gather(rec, (steps - 1) * 256, 256);
  await rec.finish();
  rec.destroy();
  const ref = referenceBatch(split.images, split.labels, 28, 28, order, (steps - 1) * 256, 256, {
    crop,
    normalize: FASHION_NORMALIZE,
  });
  assertClose(await readF32(gpu, x), ref.x, { rtol: 1e-6, atol: 1e-6, what: "timed batch" });
  device.destroy();
});
