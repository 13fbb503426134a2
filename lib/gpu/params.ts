// The model's state in a few flat GPU buffers: trainable parameters, their gradients and Adam's two
// moments share one layout, so Adam is a single dispatch over the whole model. Each parameter starts on
// a 256-byte boundary (the largest minStorageBufferOffsetAlignment of any adapter) so that a layer can
// bind exactly its own slice; the padding holds zeros and stays zero under Adam.
//
// Non-trainable state (BatchNorm running statistics) lives in its own small buffers; integer counters
// (num_batches_tracked) live on the CPU, since only the CPU decides when a training step happens.

import type { Gpu } from "./device.ts";
import { createBuffer, type ReadRegion, readRegions, Tensor } from "./tensor.ts";

const ALIGN_ELEMENTS = 64; // 256 bytes of f32

export interface ParamView {
  name: string;
  shape: number[];
  /** Element offset into the flat buffers. */
  offset: number;
  size: number;
}

/** One entry of the PyTorch state_dict, in registration (= PyTorch module) order. */
export type StateEntry =
  | { kind: "param"; name: string; shape: number[]; view: ParamView }
  | { kind: "state"; name: string; shape: number[]; tensor: Tensor }
  | { kind: "counter"; name: string; shape: number[]; counter: Counter };

export interface Counter {
  value: number;
}

/** A tensor of the state_dict on the CPU: f32 data, or an int64 counter. */
export interface HostTensor {
  name: string;
  dtype: "F32" | "I64";
  shape: number[];
  data: Float32Array | BigInt64Array;
}

/** A model's tensors read back at one moment; `m` and `v` (Adam's moments) are empty unless asked for. */
export interface ParamSnapshot {
  tensors: HostTensor[];
  m: Float32Array;
  v: Float32Array;
}

export class ParamStore {
  readonly entries: StateEntry[] = [];
  private views: ParamView[] = [];
  private inits: Float32Array[] = [];
  private total = 0;
  params?: GPUBuffer;
  grads?: GPUBuffer;
  /** Adam's first and second moments, same layout as params. */
  m?: GPUBuffer;
  v?: GPUBuffer;

  constructor(readonly gpu: Gpu) {}

  /** Registers a trainable parameter with its initial values (before `finalize`). */
  add(name: string, shape: number[], init: Float32Array): ParamView {
    if (this.params) throw new Error(`ParamStore: add(${name}) after finalize()`);
    const size = shape.reduce((a, b) => a * b, 1);
    if (init.length !== size) {
      throw new Error(`ParamStore: ${name} init has ${init.length} values, shape ${shape}`);
    }
    const view: ParamView = { name, shape, offset: this.total, size };
    this.total += Math.ceil(size / ALIGN_ELEMENTS) * ALIGN_ELEMENTS;
    this.views.push(view);
    this.inits.push(init);
    this.entries.push({ kind: "param", name, shape, view });
    return view;
  }

  /** Registers non-trainable f32 state (e.g. running_mean) in its own buffer, uploaded now. */
  addState(name: string, shape: number[], init: Float32Array): Tensor {
    const buffer = createBuffer(this.gpu, init.byteLength, name);
    this.gpu.device.queue.writeBuffer(buffer, 0, init as Float32Array<ArrayBuffer>);
    const tensor = new Tensor(buffer, shape);
    this.entries.push({ kind: "state", name, shape, tensor });
    return tensor;
  }

  /** Registers an int64 scalar counter (PyTorch's 0-d num_batches_tracked). */
  addCounter(name: string): Counter {
    const counter = { value: 0 };
    this.entries.push({ kind: "counter", name, shape: [], counter });
    return counter;
  }

  /** Allocates the flat buffers and uploads the initial values. Gradients and moments start at zero. */
  finalize(): void {
    const bytes = Math.max(this.total, ALIGN_ELEMENTS) * 4;
    this.params = createBuffer(this.gpu, bytes, "params");
    this.grads = createBuffer(this.gpu, bytes, "grads");
    this.m = createBuffer(this.gpu, bytes, "adam.m");
    this.v = createBuffer(this.gpu, bytes, "adam.v");
    const flat = new Float32Array(bytes / 4);
    this.views.forEach((v, i) => flat.set(this.inits[i], v.offset));
    this.gpu.device.queue.writeBuffer(this.params, 0, flat);
    const zeros = new Float32Array(bytes / 4);
    for (const b of [this.grads, this.m, this.v]) this.gpu.device.queue.writeBuffer(b, 0, zeros);
    this.inits = [];
  }

  /** Number of f32 slots in the flat buffers (including alignment padding). */
  get flatLength(): number {
    return Math.max(this.total, ALIGN_ELEMENTS);
  }

  /** Number of trainable scalars (without padding). */
  get parameterCount(): number {
    return this.views.reduce((a, v) => a + v.size, 0);
  }

  param(view: ParamView): Tensor {
    return this.slice(this.params, view);
  }

  grad(view: ParamView): Tensor {
    return this.slice(this.grads, view);
  }

  private slice(buffer: GPUBuffer | undefined, view: ParamView): Tensor {
    if (!buffer) throw new Error(`ParamStore: ${view.name} used before finalize()`);
    return new Tensor(buffer, view.shape, view.offset * 4);
  }

  /** Reads every state_dict tensor back to the CPU (one readback for all of them). */
  async toHost(): Promise<HostTensor[]> {
    const snap = this.snapshot(false);
    return snap.decode(await readRegions(this.gpu, snap.regions)).tensors;
  }

  /** The state_dict tensors and Adam's two flat moment buffers, all in one readback (resume checkpoints). */
  async toHostWithMoments(): Promise<ParamSnapshot> {
    const snap = this.snapshot(true);
    return snap.decode(await readRegions(this.gpu, snap.regions));
  }

  /**
   * What a readback of the state_dict (and, `withMoments`, Adam's moments) copies, and how its bytes become
   * tensors: for a caller that reads them in the same readback as other data (the trainer, at the end of an
   * epoch), since every readback waits at least ~10 ms in Deno.
   */
  snapshot(withMoments: boolean): {
    regions: ReadRegion[];
    decode(buffers: readonly ArrayBuffer[]): ParamSnapshot;
  } {
    const whole = (buffer: GPUBuffer | undefined): ReadRegion => {
      if (!buffer) throw new Error("ParamStore: read back before finalize()");
      return { buffer, offset: 0, bytes: this.flatLength * 4 };
    };
    const regions = [whole(this.params)];
    for (const e of this.entries) {
      if (e.kind === "state") {
        regions.push({ buffer: e.tensor.buffer, offset: e.tensor.offset, bytes: e.tensor.byteLength });
      }
    }
    if (withMoments) regions.push(whole(this.m), whole(this.v));
    const decode = (buffers: readonly ArrayBuffer[]): ParamSnapshot => {
      if (buffers.length !== regions.length) {
        throw new Error(`ParamStore: ${buffers.length} buffers for a snapshot of ${regions.length} regions`);
      }
      const data = buffers.map((b) => new Float32Array(b));
      const flat = data[0];
      let next = 1;
      const tensors: HostTensor[] = [];
      for (const e of this.entries) {
        if (e.kind === "param") {
          tensors.push({
            name: e.name,
            dtype: "F32",
            shape: e.shape,
            data: flat.slice(e.view.offset, e.view.offset + e.view.size),
          });
        } else if (e.kind === "state") {
          tensors.push({ name: e.name, dtype: "F32", shape: e.shape, data: data[next++] });
        } else {
          // Counted on the host as steps are recorded; the readback has waited for all of them.
          tensors.push({
            name: e.name,
            dtype: "I64",
            shape: [],
            data: BigInt64Array.of(BigInt(e.counter.value)),
          });
        }
      }
      const [m, v] = withMoments ? data.slice(next) : [new Float32Array(0), new Float32Array(0)];
      return { tensors, m, v };
    };
    return { regions, decode };
  }

  /**
   * Loads tensors by name. Every entry of the model must be present with its exact shape and dtype;
   * the error names the first one that is missing or wrong.
   */
  fromHost(tensors: HostTensor[], source = "checkpoint"): void {
    const byName = new Map(tensors.map((t) => [t.name, t]));
    for (const e of this.entries) {
      const t = byName.get(e.name);
      if (!t) throw new Error(`${source}: missing tensor ${e.name}`);
      const want = e.kind === "counter" ? "I64" : "F32";
      if (t.dtype !== want) throw new Error(`${source}: ${e.name} has dtype ${t.dtype}, expected ${want}`);
      if (t.shape.join(",") !== e.shape.join(",")) {
        throw new Error(`${source}: ${e.name} has shape [${t.shape}], expected [${e.shape}]`);
      }
    }
    const known = new Set(this.entries.map((e) => e.name));
    for (const t of tensors) {
      if (!known.has(t.name)) throw new Error(`${source}: unexpected tensor ${t.name}`);
    }
    for (const e of this.entries) {
      const t = byName.get(e.name)!;
      if (e.kind === "param") {
        this.gpu.device.queue.writeBuffer(
          this.params!,
          e.view.offset * 4,
          t.data as Float32Array<ArrayBuffer>,
        );
      } else if (e.kind === "state") {
        this.gpu.device.queue.writeBuffer(
          e.tensor.buffer,
          e.tensor.offset,
          t.data as Float32Array<ArrayBuffer>,
        );
      } else {
        e.counter.value = Number((t.data as BigInt64Array)[0]);
      }
    }
  }
}
