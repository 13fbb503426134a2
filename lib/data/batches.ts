// The CPU side of an epoch: the shuffled order, the batch boundaries and the random-crop offsets, all
// from our seeded PRNG so that a seed gives the same epochs on every machine. They are uploaded once
// per epoch (DeviceSplit.setOrder); the batches themselves are built on the GPU.

import type { Rng } from "../rng.ts";

/** Padding of RandomCrop(28, padding 4): the crop's offset is 0..2*CROP_PADDING in each axis. */
export const CROP_PADDING = 4;

/** A random permutation of 0..count-1 (an epoch's order, like DataLoader(shuffle=True)). */
export function epochOrder(rng: Rng, count: number): Uint32Array {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new Error(`epochOrder: count must be >= 0, got ${count}`);
  }
  return rng.permutation(count);
}

/**
 * Consecutive batches covering 0..count-1; the last one keeps the remainder (DataLoader without
 * drop_last): 60000 / 256 gives 234 batches of 256 and one of 96.
 */
export function batchRanges(count: number, batchSize: number): { start: number; size: number }[] {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new Error(`batchRanges: count must be >= 0, got ${count}`);
  }
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new Error(`batchRanges: batch size must be a positive integer, got ${batchSize}`);
  }
  const out: { start: number; size: number }[] = [];
  for (let start = 0; start < count; start += batchSize) {
    out.push({ start, size: Math.min(batchSize, count - start) });
  }
  return out;
}

/**
 * RandomCrop offsets for one epoch: 2 per position of the epoch's order, [row offset, column offset],
 * each uniform in 0..2*CROP_PADDING (torchvision's randint(0, 36 - 28 + 1)). Entry i belongs to the i-th
 * image of the order, not to image i, so the GPU reads both with one index.
 */
export function cropOffsets(rng: Rng, count: number): Uint8Array {
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new Error(`cropOffsets: count must be >= 0, got ${count}`);
  }
  const out = new Uint8Array(2 * count);
  for (let i = 0; i < out.length; i++) out[i] = rng.int(2 * CROP_PADDING + 1);
  return out;
}
