// Records dispatches into one command encoder and submits them together.
//
// Binding convention for every kernel in lib/shaders: when a dispatch has uniform parameters they are
// `@group(0) @binding(0) var<uniform> p: Params;` and the buffers follow at bindings 1, 2, ...; without
// parameters the buffers start at binding 0. Parameters are packed into one uniform "arena" per
// recorder and written with a single writeBuffer at submit, so a whole training step (or many) costs one
// submit and no per-dispatch buffer creation.

import type { Gpu } from "./device.ts";
import { type ReadRegion, readRegions, Tensor } from "./tensor.ts";

export type Bindable = Tensor | GPUBuffer | GPUBufferBinding;

/** Uniform parameters: plain numbers are u32; use `f32(x)` / `i32(x)` for other types. */
export type Param = number | { f32: number } | { i32: number };

export const f32 = (x: number): Param => ({ f32: x });
export const i32 = (x: number): Param => ({ i32: x });

const SLOT_BYTES = 256; // >= minUniformBufferOffsetAlignment on every adapter
export const ARENA_SLOTS = 4096;
/** Bind groups a recorder keeps (a training step makes 74 to 292); past this the cache starts over. */
const BIND_GROUP_CACHE = 4096;

const objectIds = new WeakMap<object, number>();
let nextObjectId = 0;
/** A number per object, never reused (a key part for objects that have no identity of their own). */
function objectId(o: object): number {
  let id = objectIds.get(o);
  if (id === undefined) objectIds.set(o, id = nextObjectId++);
  return id;
}

/** Workgroup counts for a 1-D launch over `n` items, folded into y when x would exceed 65535. */
export function grid1d(n: number, workgroupSize: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(n / workgroupSize));
  if (groups <= 65535) return [groups, 1, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y, 1];
}

export class Recorder {
  private encoder: GPUCommandEncoder;
  private pass: GPUComputePassEncoder | undefined;
  /** The label of the timed section being recorded (Recorder.timed), if any. */
  private timedLabel: string | undefined;
  private arena: GPUBuffer;
  private staging = new ArrayBuffer(SLOT_BYTES * ARENA_SLOTS);
  private stagingU32 = new Uint32Array(this.staging);
  private stagingF32 = new Float32Array(this.staging);
  private stagingI32 = new Int32Array(this.staging);
  private slots = 0;
  private timer: GpuTimer | undefined;
  private bindGroups = new Map<string, GPUBindGroup>();
  /** Dispatches recorded since construction (for benchmarks and sanity checks). */
  dispatches = 0;
  /** Compute passes begun since construction: dispatches share a pass until a copy, a clear, a timed
   * section or a submit ends it. */
  passes = 0;
  /** Bind groups created since construction; the others came from the cache (see bindGroup). */
  bindGroupsCreated = 0;

  constructor(readonly gpu: Gpu) {
    this.encoder = gpu.device.createCommandEncoder();
    this.arena = gpu.device.createBuffer({
      size: SLOT_BYTES * ARENA_SLOTS,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: "uniform arena",
    });
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.pass) {
      this.pass = this.encoder.beginComputePass();
      this.passes++;
    }
    return this.pass;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = undefined;
  }

  /**
   * Records one dispatch. `params` become binding 0 (uniform) when given; `buffers` follow in order.
   */
  dispatch(
    pipeline: GPUComputePipeline,
    params: readonly Param[] | undefined,
    buffers: readonly Bindable[],
    workgroups: readonly number[],
  ): void {
    if (workgroups.some((w) => w === 0)) return; // empty launch: nothing to do
    const entries: GPUBufferBinding[] = [];
    if (params) {
      if (this.slots === ARENA_SLOTS) this.flushArena();
      const base = (this.slots * SLOT_BYTES) / 4;
      if (params.length * 4 > SLOT_BYTES) throw new Error(`too many uniform parameters (${params.length})`);
      params.forEach((v, i) => {
        if (typeof v === "number") this.stagingU32[base + i] = v >>> 0;
        else if ("f32" in v) this.stagingF32[base + i] = v.f32;
        else this.stagingI32[base + i] = v.i32;
      });
      const size = Math.max(16, Math.ceil((params.length * 4) / 16) * 16);
      entries.push({ buffer: this.arena, offset: this.slots * SLOT_BYTES, size });
      this.slots++;
    }
    for (const b of buffers) {
      if (b instanceof Tensor) entries.push(b.binding());
      else if ("buffer" in b && !("mapState" in b)) entries.push(b as GPUBufferBinding);
      else entries.push({ buffer: b as GPUBuffer });
    }
    const bindGroup = this.bindGroup(pipeline, entries);
    const pass = this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(workgroups[0], workgroups[1] ?? 1, workgroups[2] ?? 1);
    this.dispatches++;
  }

  /**
   * The bind group of `entries` (bindings 0, 1, ...) for `pipeline`, made once per recorder. Creating one
   * costs the host about 15 us (most of a dispatch's recording); training records the same dispatches
   * with the same buffers every step, and the uniform slots restart at every submit, so after the first
   * step every dispatch finds its group here. Buffers are told apart by identity, so a buffer created in
   * place of a destroyed one never matches the old group.
   */
  private bindGroup(pipeline: GPUComputePipeline, entries: GPUBufferBinding[]): GPUBindGroup {
    let key = `${objectId(pipeline)}`;
    for (const e of entries) key += `|${objectId(e.buffer)}:${e.offset ?? 0}:${e.size ?? "all"}`;
    let group = this.bindGroups.get(key);
    if (!group) {
      if (this.bindGroups.size >= BIND_GROUP_CACHE) this.bindGroups.clear(); // bound the memory held
      group = this.gpu.device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: entries.map((resource, binding) => ({ binding, resource })),
      });
      this.bindGroups.set(key, group);
      this.bindGroupsCreated++;
    }
    return group;
  }

  copy(src: Tensor, dst: Tensor, bytes = src.byteLength): void {
    this.endPass();
    this.encoder.copyBufferToBuffer(src.buffer, src.offset, dst.buffer, dst.offset, Math.ceil(bytes / 4) * 4);
  }

  /** Fills a tensor with zero bytes. */
  clear(t: Tensor): void {
    this.endPass();
    this.encoder.clearBuffer(t.buffer, t.offset, Math.ceil(t.byteLength / 4) * 4);
  }

  /**
   * Runs `body` inside its own compute pass, timed with timestamp queries (see GpuTimer). Without a timer
   * attached, `body` records into the current pass: a pass costs the GPU more than a dispatch (tens of us
   * each in some WebGPU trainers, gpu-kernels.md), and training marks every layer as a timed section.
   */
  timed(label: string, body: () => void): void {
    if (!this.timer) {
      body();
      return;
    }
    this.beginTimedPass(label);
    this.timedLabel = label;
    try {
      body();
    } finally {
      this.timedLabel = undefined;
    }
    this.endPass();
  }

  private beginTimedPass(label: string): void {
    this.endPass();
    const writes = this.timer!.writesFor(label);
    if (writes) {
      this.pass = this.encoder.beginComputePass({ timestampWrites: writes });
      this.passes++;
    }
  }

  /**
   * The uniform arena is full: submit and reuse it. Inside a timed section the rest of the section goes on
   * in a new pass timed under the same label (GpuTimer sums a label's sections), so it is timed whole.
   */
  private flushArena(): void {
    this.submit();
    if (this.timedLabel !== undefined) this.beginTimedPass(this.timedLabel);
  }

  /**
   * An empty compute pass that writes timestamp `index` of `querySet` at its end, that is once all work
   * queued before it has finished (GpuStopwatch).
   */
  timestampPass(querySet: GPUQuerySet, index: number): void {
    this.endPass();
    this.encoder.beginComputePass({ timestampWrites: { querySet, endOfPassWriteIndex: index } }).end();
    this.passes++;
  }

  /** Resolves the first `count` timestamps of `querySet` into `buffer` (QUERY_RESOLVE usage) at offset 0. */
  resolveTimestamps(querySet: GPUQuerySet, count: number, buffer: GPUBuffer): void {
    this.endPass();
    this.encoder.resolveQuerySet(querySet, 0, count, buffer, 0);
  }

  attachTimer(timer: GpuTimer): void {
    this.timer = timer;
  }

  /** Submits everything recorded so far (uniforms first) and starts a fresh encoder. */
  submit(): void {
    this.endPass();
    if (this.slots > 0) {
      this.gpu.device.queue.writeBuffer(this.arena, 0, this.staging, 0, this.slots * SLOT_BYTES);
      this.slots = 0;
    }
    this.timer?.resolve(this.encoder);
    this.gpu.device.queue.submit([this.encoder.finish()]);
    this.encoder = this.gpu.device.createCommandEncoder();
  }

  /** Submits and waits until the GPU has finished (costs >= ~10 ms in Deno: not per step). */
  async finish(): Promise<void> {
    this.submit();
    await this.gpu.device.queue.onSubmittedWorkDone();
  }

  destroy(): void {
    this.arena.destroy();
  }
}

/**
 * The GPU's time for a stretch of queued work, from two timestamp queries: `start` and `stop` each record
 * an empty pass whose timestamp is written once all work queued before it has finished, so the span is the
 * work recorded between them, however the backend runs it. A host clock cannot tell this: wgpu's GL backend
 * runs each submission inside queue.submit, so on GL llvmpipe the work is done before any wait begins.
 * Only where the adapter has "timestamp-query" (`available`).
 */
export class GpuStopwatch {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuf: GPUBuffer;

  constructor(gpu: Gpu) {
    this.querySet = gpu.device.createQuerySet({ type: "timestamp", count: 2 });
    this.resolveBuf = gpu.device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
  }

  static available(gpu: Gpu): boolean {
    return gpu.report.timestampQuery;
  }

  start(rec: Recorder): void {
    rec.timestampPass(this.querySet, 0);
  }

  stop(rec: Recorder): void {
    rec.timestampPass(this.querySet, 1);
    rec.resolveTimestamps(this.querySet, 2, this.resolveBuf);
  }

  /** Where the two resolved timestamps are, to read them in one wait with other regions (readRegions). */
  region(): ReadRegion {
    return { buffer: this.resolveBuf, offset: 0, bytes: 16 };
  }

  /** Seconds from start to stop, from the bytes of `region()`; undefined if the GPU's clock ran backwards. */
  seconds(bytes: ArrayBuffer): number | undefined {
    const [t0, t1] = new BigUint64Array(bytes);
    return t1 >= t0 ? Number(t1 - t0) / 1e9 : undefined;
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolveBuf.destroy();
  }
}

/**
 * GPU-side timing with timestamp queries: each `Recorder.timed(label, ...)` section gets a begin and an
 * end timestamp; `read()` returns milliseconds per label (summed over repeats). Benchmarks only.
 */
export class GpuTimer {
  private querySet: GPUQuerySet;
  private resolveBuf: GPUBuffer;
  private labels: string[] = [];
  private resolved = 0;

  constructor(private gpu: Gpu, private capacity = 256) {
    this.querySet = gpu.device.createQuerySet({ type: "timestamp", count: capacity * 2 });
    this.resolveBuf = gpu.device.createBuffer({
      size: capacity * 16,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
  }

  static available(gpu: Gpu): boolean {
    return gpu.report.timestampQuery;
  }

  writesFor(label: string): GPUComputePassTimestampWrites | undefined {
    if (this.labels.length >= this.capacity) return undefined;
    const i = this.labels.length;
    this.labels.push(label);
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  resolve(encoder: GPUCommandEncoder): void {
    const n = this.labels.length;
    if (n > this.resolved) {
      // All of them, from offset 0: WebGPU resolves only to offsets that are multiples of 256 bytes, which
      // the sections of a later submit would not start at; those of earlier submits keep their values.
      encoder.resolveQuerySet(this.querySet, 0, 2 * n, this.resolveBuf, 0);
      this.resolved = n;
    }
  }

  /**
   * Milliseconds per label, summed over every section recorded with that label. One wait, which also
   * waits for the work submitted before it (no need to wait for that first).
   */
  async read(): Promise<Map<string, number>> {
    if (this.labels.length === 0) return new Map();
    const [bytes] = await readRegions(this.gpu, [this.region()]);
    return this.decode(bytes);
  }

  /** Where the resolved timestamps are, to read them in one wait with other regions (readRegions). */
  region(): ReadRegion {
    return { buffer: this.resolveBuf, offset: 0, bytes: this.labels.length * 16 };
  }

  /**
   * Milliseconds per label from the bytes of `region()`. A section whose end is not after its begin (a
   * clock that ran backwards, a query left unwritten) makes its label NaN: no time, rather than a wrong one
   * that a tuner would take for the fastest.
   */
  decode(bytes: ArrayBuffer): Map<string, number> {
    const out = new Map<string, number>();
    const t = new BigUint64Array(bytes);
    for (let i = 0; i < this.labels.length; i++) {
      const ms = t[2 * i + 1] > t[2 * i] ? Number(t[2 * i + 1] - t[2 * i]) / 1e6 : NaN;
      out.set(this.labels[i], (out.get(this.labels[i]) ?? 0) + ms);
    }
    return out;
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolveBuf.destroy();
  }
}
