// One split of the data set resident on the GPU: the uint8 images packed 4 per word (uploaded once), the
// labels, and the epoch's order. Each batch is gathered on the GPU (lib/shaders/gather.wgsl), so a
// training step never waits for the CPU to prepare data.

import type { Gpu } from "../gpu/device.ts";
import { loadWgsl, pipeline } from "../gpu/pipelines.ts";
import { grid1d, type Recorder } from "../gpu/recorder.ts";
import { createBuffer, Tensor, upload } from "../gpu/tensor.ts";
import { CROP_PADDING } from "./batches.ts";
import type { SplitData } from "./fashion.ts";
import type { Rng } from "../rng.ts";

const WORKGROUP = 64;
const MAX_IMAGES = 1 << 24; // the order word keeps 24 bits for the image index
const DEFAULT_CAPACITY = 1024;

export interface Normalize {
  mean: number;
  std: number;
}

/** The paper's sweep: Normalize(0.2860, 0.3530) on Fashion-MNIST. */
export const FASHION_NORMALIZE: Normalize = { mean: 0.2860, std: 0.3530 };

/**
 * The value of each pixel byte, rounded as PyTorch rounds on the CPU: ToTensor's x / 255 in float32,
 * then Normalize's (x - mean) / std with float32 mean and std. (Each float32 operation computed in
 * float64 and rounded once is correctly rounded, so Math.fround reproduces it exactly.)
 */
export function pixelTable(normalize?: Normalize): Float32Array {
  const table = new Float32Array(256);
  const mean = normalize ? Math.fround(normalize.mean) : 0;
  const std = normalize ? Math.fround(normalize.std) : 1;
  for (let b = 0; b < 256; b++) {
    const scaled = Math.fround(b / 255);
    table[b] = normalize ? Math.fround(Math.fround(scaled - mean) / std) : scaled;
  }
  return table;
}

export interface DeviceSplitOptions {
  /** Normalize after /255 (training and test splits alike); default none. */
  normalize?: Normalize;
  /** Batch rows allocated up front (default 1024); a larger gather reallocates. */
  capacity?: number;
}

export class DeviceSplit {
  readonly count: number;
  readonly rows: number;
  readonly cols: number;
  /** uint8 pixels packed 4 per u32 word. */
  readonly images: Tensor;
  /** Labels as u32 [count]. */
  readonly labels: Tensor;
  private order: Tensor;
  private table: Tensor;
  private cropping = false;
  private capacity: number;
  private x: GPUBuffer;
  private batchLabels: GPUBuffer;
  private code: string;

  constructor(private gpu: Gpu, split: SplitData, opts: DeviceSplitOptions = {}) {
    const { count, rows, cols } = split;
    const pixels = rows * cols;
    if (!Number.isSafeInteger(count) || count < 1 || count > MAX_IMAGES) {
      throw new Error(`DeviceSplit: count must be 1..${MAX_IMAGES}, got ${count}`);
    }
    if (pixels % 4 !== 0) {
      throw new Error(`DeviceSplit: ${rows}x${cols} pixels per image is not a multiple of 4`);
    }
    if (split.images.length !== count * pixels || split.labels.length !== count) {
      throw new Error(
        `DeviceSplit: ${split.images.length} pixels and ${split.labels.length} labels for ${count} images of ${rows}x${cols}`,
      );
    }
    if (opts.normalize && !(opts.normalize.std > 0)) {
      throw new Error(`DeviceSplit: normalize std must be positive, got ${opts.normalize.std}`);
    }
    this.count = count;
    this.rows = rows;
    this.cols = cols;
    this.code = loadWgsl(import.meta.url, "../shaders/gather.wgsl");

    const imageBuffer = createBuffer(gpu, split.images.byteLength, "data.images");
    gpu.device.queue.writeBuffer(imageBuffer, 0, split.images as Uint8Array<ArrayBuffer>);
    this.images = new Tensor(imageBuffer, [split.images.byteLength / 4]);
    this.labels = upload(gpu, Uint32Array.from(split.labels), [count], "data.labels");
    this.order = upload(gpu, Uint32Array.from({ length: count }, (_, i) => i), [count], "data.order");
    this.table = upload(gpu, pixelTable(opts.normalize), [256], "data.table");

    this.capacity = Math.min(count, Math.max(1, opts.capacity ?? DEFAULT_CAPACITY));
    this.x = createBuffer(gpu, this.capacity * pixels * 4, "data.x");
    this.batchLabels = createBuffer(gpu, this.capacity * 4, "data.batchLabels");
  }

  /**
   * Uploads an epoch's order (and optional crop offsets, 2 per position: see cropOffsets) in one
   * writeBuffer. The order starts as 0..count-1. Queue writes land before later submits, so submit the
   * previous epoch's recorded batches before calling this.
   */
  setOrder(order: Uint32Array, crop?: Uint8Array): void {
    if (order.length !== this.count) {
      throw new Error(`setOrder: order has ${order.length} entries, expected ${this.count}`);
    }
    if (crop && crop.length !== 2 * this.count) {
      throw new Error(`setOrder: crop has ${crop.length} offsets, expected 2 per image (${2 * this.count})`);
    }
    const packed = new Uint32Array(this.count);
    for (let i = 0; i < this.count; i++) {
      const image = order[i];
      if (image >= this.count) throw new Error(`setOrder: order[${i}] = ${image} is not below ${this.count}`);
      let entry = image;
      if (crop) {
        const dy = crop[2 * i], dx = crop[2 * i + 1];
        if (dy > 2 * CROP_PADDING || dx > 2 * CROP_PADDING) {
          throw new Error(
            `setOrder: crop offsets (${dy}, ${dx}) of position ${i} exceed ${2 * CROP_PADDING}`,
          );
        }
        entry |= (dy << 24) | (dx << 28);
      }
      packed[i] = entry >>> 0;
    }
    this.gpu.device.queue.writeBuffer(this.order.buffer, 0, packed);
    this.cropping = crop !== undefined;
  }

  /**
   * Records a gather of positions [start, start+size) of the current order: x [size,1,rows,cols] f32,
   * labels u32 [size]. Both live in buffers this split reuses: the next gather recorded overwrites them
   * when it runs, so consume a batch (record its forward) before recording the next gather.
   */
  gather(rec: Recorder, start: number, size: number): { x: Tensor; labels: Tensor } {
    if (
      !Number.isSafeInteger(start) || !Number.isSafeInteger(size) || start < 0 || size < 1 ||
      start + size > this.count
    ) {
      throw new Error(`gather: rows [${start}, ${start + size}) are not within the ${this.count} images`);
    }
    const pixels = this.rows * this.cols;
    if (size > this.capacity) {
      // The old buffers may still be bound by recorded, unsubmitted work: drop them, never destroy them.
      this.capacity = size;
      this.x = createBuffer(this.gpu, size * pixels * 4, "data.x");
      this.batchLabels = createBuffer(this.gpu, size * 4, "data.batchLabels");
    }
    const x = new Tensor(this.x, [size, 1, this.rows, this.cols]);
    const labels = new Tensor(this.batchLabels, [size]);
    const words = (size * pixels) / 4;
    rec.dispatch(
      pipeline(this.gpu, { code: this.code, entryPoint: "gather" }),
      [words, start, this.rows, this.cols, CROP_PADDING, this.cropping ? 1 : 0],
      [this.images, this.labels, this.order, this.table, x, labels],
      grid1d(words, WORKGROUP),
    );
    return { x, labels };
  }

  destroy(): void {
    for (const t of [this.images, this.labels, this.order, this.table]) t.buffer.destroy();
    this.x.destroy();
    this.batchLabels.destroy();
  }
}

/**
 * A split of `count` random 28x28 images (pixels uniform 0..255 from `rng`, drawn first), labels from
 * `labelOf(i)`, in file order: for benchmarks and tests, where the values do not matter but the
 * shapes and the work do.
 */
export function randomSplit(
  gpu: Gpu,
  count: number,
  rng: Rng,
  labelOf: (i: number) => number = () => rng.int(10),
): DeviceSplit {
  const images = new Uint8Array(count * 784);
  for (let i = 0; i < images.length; i++) images[i] = rng.int(256);
  const labels = Uint8Array.from({ length: count }, (_, i) => labelOf(i));
  const split = new DeviceSplit(gpu, { images, labels, count, rows: 28, cols: 28 });
  split.setOrder(Uint32Array.from({ length: count }, (_, i) => i));
  return split;
}
