// GPU buffers with a shape, uploads, readbacks and per-layer workspaces.
//
// A Tensor is a view: a GPUBuffer, a byte offset and a shape. Activations own their buffer; parameters
// are views into the flat parameter buffer (see params.ts). A buffer may be larger than the view (it
// was allocated for the largest batch), so kernels take sizes from their uniform parameters, never from
// arrayLength().

import type { Gpu } from "./device.ts";
import { asDeviceFault, throwIfFaulted } from "./fault.ts";

/**
 * A storage buffer that copies go in and out of. A function, not a module constant: in a browser without
 * WebGPU, GPUBufferUsage does not exist, and reading it as a module loads would stop the training page
 * before it can say so.
 */
export function storageUsage(): number {
  return GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
}

export class Tensor {
  constructor(
    readonly buffer: GPUBuffer,
    readonly shape: readonly number[],
    /** Byte offset of element 0 in `buffer`. */
    readonly offset = 0,
    /** Bytes per element (4 for f32/u32/i32). */
    readonly elementBytes = 4,
  ) {}

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get byteLength(): number {
    return this.size * this.elementBytes;
  }

  /** Binding of exactly this view, rounded up to 4 bytes (WebGPU needs a multiple of 4). */
  binding(): GPUBufferBinding {
    const size = Math.max(4, Math.ceil(this.byteLength / 4) * 4);
    return { buffer: this.buffer, offset: this.offset, size };
  }

  /** Same storage, another shape of the same size (e.g. [N,C,1,1] -> [N,C]). */
  reshape(shape: readonly number[]): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== this.size) throw new Error(`reshape: ${this.shape} has ${this.size} elements, not ${n}`);
    return new Tensor(this.buffer, shape, this.offset, this.elementBytes);
  }
}

export function createBuffer(gpu: Gpu, bytes: number, label?: string, usage = storageUsage()): GPUBuffer {
  const size = Math.max(16, Math.ceil(bytes / 16) * 16);
  if (size > gpu.limits.maxBufferSize) {
    throw new Error(
      `buffer ${
        label ?? ""
      } of ${bytes} bytes exceeds this adapter's maxBufferSize ${gpu.limits.maxBufferSize}`,
    );
  }
  return gpu.device.createBuffer({ size, usage, label });
}

/** A new tensor holding `data` (f32, u32 or i32 elements). */
export function upload(
  gpu: Gpu,
  data: Float32Array | Uint32Array | Int32Array,
  shape: readonly number[] = [data.length],
  label?: string,
): Tensor {
  const buffer = createBuffer(gpu, data.byteLength, label);
  if (data.byteLength > 0) gpu.device.queue.writeBuffer(buffer, 0, data as BufferSource); // 0 bytes panics Deno
  return new Tensor(buffer, shape);
}

/** Overwrites a tensor's contents from the CPU (queued; ordered before later submits). */
export function write(gpu: Gpu, t: Tensor, data: Float32Array | Uint32Array | Int32Array): void {
  if (data.byteLength > t.byteLength) throw new Error(`write: ${data.byteLength} bytes into ${t.byteLength}`);
  gpu.device.queue.writeBuffer(t.buffer, t.offset, data as BufferSource);
}

/** A range of a buffer to read back (offset a multiple of 4). */
export interface ReadRegion {
  buffer: GPUBuffer;
  offset: number;
  bytes: number;
}

/**
 * Copies several ranges back to the CPU through one staging buffer and one wait. Each wait costs at least
 * ~10 ms in Deno (mapAsync polls then sleeps), so read what belongs together at once, once per epoch,
 * never per step.
 */
export async function readRegions(gpu: Gpu, regions: readonly ReadRegion[]): Promise<ArrayBuffer[]> {
  const starts: number[] = [];
  let total = 0;
  for (const r of regions) {
    starts.push(total);
    total += Math.ceil(r.bytes / 4) * 4;
  }
  const staging = gpu.device.createBuffer({
    size: Math.max(4, total),
    usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
  });
  const enc = gpu.device.createCommandEncoder();
  regions.forEach((r, i) => {
    if (r.bytes > 0) {
      enc.copyBufferToBuffer(r.buffer, r.offset, staging, starts[i], Math.ceil(r.bytes / 4) * 4);
    }
  });
  gpu.device.queue.submit([enc.finish()]);
  try {
    await staging.mapAsync(GPUMapMode.READ);
    // What a faulty device gives back is nothing to train on or to save (fault.ts); a lost device also
    // fails the map itself, with words that do not say so.
    throwIfFaulted(gpu.device);
  } catch (e) {
    staging.destroy();
    throw await asDeviceFault(e, gpu.device);
  }
  const all = staging.getMappedRange();
  const out = regions.map((r, i) => all.slice(starts[i], starts[i] + r.bytes));
  staging.unmap();
  staging.destroy();
  return out;
}

/** Copies `bytes` from `buffer` at `offset` back to the CPU (one wait: see readRegions). */
export async function readBytes(
  gpu: Gpu,
  buffer: GPUBuffer,
  offset: number,
  bytes: number,
): Promise<ArrayBuffer> {
  const [out] = await readRegions(gpu, [{ buffer, offset, bytes }]);
  return out;
}

/** Where a tensor's values are, to read them with others in one wait (readRegions). */
export function tensorRegion(t: Tensor): ReadRegion {
  return { buffer: t.buffer, offset: t.offset, bytes: t.byteLength };
}

/** Several tensors' values in one wait (readRegions), in order. */
export async function readTensorsF32(gpu: Gpu, tensors: readonly Tensor[]): Promise<Float32Array[]> {
  const bytes = await readRegions(gpu, tensors.map(tensorRegion));
  return bytes.map((b) => new Float32Array(b));
}

export async function readF32(gpu: Gpu, t: Tensor): Promise<Float32Array> {
  return new Float32Array(await readBytes(gpu, t.buffer, t.offset, t.byteLength));
}

export async function readU32(gpu: Gpu, t: Tensor): Promise<Uint32Array> {
  return new Uint32Array(await readBytes(gpu, t.buffer, t.offset, t.byteLength));
}

export async function readI32(gpu: Gpu, t: Tensor): Promise<Int32Array> {
  return new Int32Array(await readBytes(gpu, t.buffer, t.offset, t.byteLength));
}

/**
 * Named scratch tensors of one layer, grown on demand and reused from step to step. A layer asks for
 * `ws.tensor("out", [N, C, H, W])` every forward; the buffer is only reallocated when a larger batch
 * arrives, so a training run allocates once.
 */
export class Workspace {
  private buffers = new Map<string, GPUBuffer>();

  constructor(private gpu: Gpu, private label = "workspace") {}

  tensor(key: string, shape: readonly number[], elementBytes = 4): Tensor {
    const bytes = Math.max(4, shape.reduce((a, b) => a * b, 1) * elementBytes);
    let buf = this.buffers.get(key);
    if (!buf || buf.size < bytes) {
      // The old buffer is not destroyed here: commands recorded but not yet submitted may still use
      // it. Dropping the reference lets it be collected once the GPU is done with it.
      buf = createBuffer(this.gpu, bytes, `${this.label}.${key}`);
      this.buffers.set(key, buf);
    }
    return new Tensor(buf, shape, 0, elementBytes);
  }

  destroy(): void {
    for (const b of this.buffers.values()) b.destroy();
    this.buffers.clear();
  }
}
