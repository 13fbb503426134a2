// The classifier-head interface of the project: how a training loop or an experiment talks to the MDA
// head (the notebook's), the LDA head (the paper's) and the softmax baseline without knowing which one
// it has, so an experiment swaps heads by name (see `createHead` in mod.ts).
//
// A head is built on a ParamStore before `store.finalize()`; it registers its parameters under PyTorch
// state_dict names (`head.mu`, ...) in one consecutive run, which lets every kernel bind them as one span
// of the flat parameter / gradient buffers. After finalize:
//
// - `head.logits(rec, z)` records the logits delta [N,C] for z [N,D] (eval and plotting). The tensor is
//   the head's scratch, overwritten by the next call; pass `out` to write somewhere that lasts (e.g. a
//   view of a test-set-sized buffer, so the whole evaluation needs ONE readback).
// - `headTrainStep(rec, head, loss, z, labels, stats, slot)` records forward + loss + backward: the
//   head's parameter gradients are overwritten with the batch mean, dL/dz [N,D] is returned for the
//   encoder, and stats[3*slot], stats[3*slot+1], stats[3*slot+2] (STATS_PER_STEP values per step)
//   receive the batch's mean loss, its number of correct argmax predictions and its number of labels out
//   of range [0, C), on the GPU, without a readback. Allowed pairs: MDA or LDA head with EM_DNLLLoss
//   or DNLLLoss; softmax head with CrossEntropyLoss.
// - `trueClassResponsibilities(rec, head, z, labels)` gives r [N,K] within each sample's true class
//   (the component a sample belongs to is argmax_k, see `argmaxRows`).
// - `headSummary(head, await store.toHost())` gives mixture weights, variances, means, class priors
//   and, for LDA, sigma = exp(s/2), on the CPU.
//
// Every kernel launch is a handful of dispatches per step (never one per class), parameter gradients
// are fixed-order sums over the batch (deterministic), and nothing here reads back from the GPU.

import type { Gpu } from "../gpu/device.ts";
import { loadWgsl, pipeline } from "../gpu/pipelines.ts";
import { type ReductionVariant, reductionVariant, withTreeSum } from "../gpu/reduction.ts";
import { grid1d, type Param, type Recorder } from "../gpu/recorder.ts";
import type { HostTensor, ParamStore, ParamView } from "../gpu/params.ts";
import { Tensor, upload, Workspace } from "../gpu/tensor.ts";
import type { Loss } from "./loss.ts";

export type HeadKind = "mda" | "lda" | "softmax";

/**
 * Values per training step in a stats buffer: [mean loss, correct predictions, labels out of range].
 * The last is a count, not a NaN poison: WGSL forbids constant NaN and lets compilers assume none occurs.
 */
export const STATS_PER_STEP = 3;

export interface Head {
  readonly kind: HeadKind;
  /** State-dict prefix of the parameters (default "head"). */
  readonly name: string;
  readonly numClasses: number;
  readonly latentDim: number;
  /** Mixture components per class: K for MDA, 1 for LDA and softmax. */
  readonly components: number;
  /** Records the eval/forward logits (delta) for z [N,D] -> [N,C]. */
  logits(rec: Recorder, z: Tensor, out?: Tensor): Tensor;
  /** Use `headTrainStep`, which checks the head/loss pair first. */
  recordTrainStep(rec: Recorder, loss: Loss, z: Tensor, labels: Tensor, stats: Tensor, slot: number): Tensor;
  /** Use `trueClassResponsibilities`. */
  recordResponsibilities(rec: Recorder, z: Tensor, labels: Tensor): Tensor;
  /** Use `headSummary`. */
  summarize(host: HostTensor[]): HeadSummary;
}

export interface HeadSummary {
  /** Mixture weights softmax(mixture_logits) [C*K] (ones for LDA, empty for softmax). */
  weights: number[];
  /** Component variances exp(log_cov) [C*K] (LDA: the shared variance for every class; empty for softmax). */
  variances: number[];
  /** Component means [C*K*D] (empty for softmax). */
  means: number[];
  /** Class priors softmax(prior_logits) [C] (empty for softmax). */
  priors: number[];
  /** LDA only: sigma = exp(s/2), the shared standard deviation. */
  sigma?: number;
}

/**
 * One training step of the head: records the forward, the loss and the backward for z [N,D] and labels
 * (u32 [N]); overwrites the head's parameter gradients with the batch mean and returns dL/dz [N,D] (the
 * head's scratch: valid until its next step). Also writes, without any readback, stats[3*slot] = the
 * batch's mean reported loss, stats[3*slot+1] = the number of correct argmax predictions and
 * stats[3*slot+2] = the number of labels outside [0, C) (f32 counts; see STATS_PER_STEP).
 * Throws when the head/loss pair is not allowed (softmax head + DNLL, generative head + CE).
 */
export function headTrainStep(
  rec: Recorder,
  head: Head,
  loss: Loss,
  z: Tensor,
  labels: Tensor,
  stats: Tensor,
  slot: number,
): Tensor {
  if (head.kind === "softmax" && loss.generative) {
    throw new Error(`the softmax head trains with CrossEntropyLoss, not ${loss.name}`);
  }
  if (head.kind !== "softmax" && !loss.generative) {
    throw new Error(`the ${head.kind} head trains with EM_DNLLLoss or DNLLLoss, not ${loss.name}`);
  }
  if (!Number.isInteger(slot) || slot < 0 || STATS_PER_STEP * (slot + 1) > stats.size) {
    throw new Error(
      `stats slot ${slot} does not fit stats of ${stats.size} values (needs ${STATS_PER_STEP}*(slot+1))`,
    );
  }
  return head.recordTrainStep(rec, loss, z, labels, stats, slot);
}

/** Responsibilities within the true class [N,K] (for K = 1: ones). The head's scratch. */
export function trueClassResponsibilities(rec: Recorder, head: Head, z: Tensor, labels: Tensor): Tensor {
  return head.recordResponsibilities(rec, z, labels);
}

/** Host-side summary of a head's parameters from a ParamStore.toHost() result. */
export function headSummary(head: Head, host: HostTensor[]): HeadSummary {
  return head.summarize(host);
}

/** Row-wise argmax (first maximum) of a [rows, cols] array: e.g. each sample's component from r [N,K]. */
export function argmaxRows(values: ArrayLike<number>, cols: number): number[] {
  const rows = Math.floor(values.length / cols);
  const out = new Array<number>(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (values[r * cols + c] > values[r * cols + best]) best = c;
    out[r] = best;
  }
  return out;
}

/** Options every head takes. */
export interface HeadOptions {
  /** State-dict prefix (default "head"). */
  name?: string;
  /**
   * Kernel of the parameter gradients' sums over the batch: "serial" (`*_reduce`: one invocation per
   * gradient element) or "tree" (`*_reduce_tree`: one workgroup per element); default: serial on software
   * adapters, tree on GPUs (lib/gpu/reduction.ts).
   */
  variant?: ReductionVariant;
}

/** Invocations per workgroup of the heads' kernels that give each element (sample, class, ...) one. */
export const HEAD_WG = 64;

/**
 * What the three heads share: the name and reduction variant their options give, their scratch tensors,
 * the kernels of their shader file, and the evaluation logits, one dispatch of `logitsEntry` over the
 * parameter span. A head registers its parameters in its constructor and sets `span` to cover them.
 */
export abstract class HeadBase implements Head {
  readonly name: string;
  readonly variant: ReductionVariant;
  abstract readonly components: number;
  protected abstract readonly span: ParamSpan;
  /** The entry point of `logits`: bindings (span, z [N,D], logits [N,C]), one invocation per logit. */
  protected abstract readonly logitsEntry: string;
  protected readonly ws: Workspace;
  protected readonly kernels: Kernels;

  constructor(
    readonly kind: HeadKind,
    readonly store: ParamStore,
    readonly numClasses: number,
    readonly latentDim: number,
    shaderFile: string,
    opts: HeadOptions,
  ) {
    checkSizes(kind, { C: numClasses, D: latentDim });
    this.name = opts.name ?? "head";
    this.variant = reductionVariant(store.gpu, opts.variant, `${kind} head ${this.name}`);
    this.ws = new Workspace(store.gpu, this.name);
    this.kernels = new Kernels(store.gpu, headModule(shaderFile));
  }

  /** The uniforms of the head's kernels for a batch of n (the evaluation's: no loss, slot 0). */
  protected abstract uniforms(n: number): Param[];

  logits(rec: Recorder, z: Tensor, out?: Tensor): Tensor {
    const n = checkBatch(this, z);
    const logits = out ?? this.ws.tensor("logits", [n, this.numClasses]);
    checkLogitsOut(this.store.gpu, this, n, logits);
    rec.dispatch(
      this.kernels.get(this.logitsEntry),
      this.uniforms(n),
      [this.span.params(), z, logits],
      grid1d(n * this.numClasses, HEAD_WG),
    );
    return logits;
  }

  abstract recordTrainStep(
    rec: Recorder,
    loss: Loss,
    z: Tensor,
    labels: Tensor,
    stats: Tensor,
    slot: number,
  ): Tensor;
  abstract recordResponsibilities(rec: Recorder, z: Tensor, labels: Tensor): Tensor;
  abstract summarize(host: HostTensor[]): HeadSummary;
}

/** Checks z [N,D] and labels [N] against a head; returns N. */
export function checkBatch(head: Head, z: Tensor, labels?: Tensor): number {
  if (z.shape.length !== 2 || z.shape[1] !== head.latentDim || z.shape[0] < 1) {
    throw new Error(
      `${head.kind} head: z has shape [${z.shape}], expected [N, ${head.latentDim}] with N >= 1`,
    );
  }
  const n = z.shape[0];
  if (labels && labels.size !== n) {
    throw new Error(`${head.kind} head: labels have ${labels.size} values for a batch of ${n}`);
  }
  return n;
}

/** Checks an `out` tensor for the logits [N,C]: its size, and an offset WebGPU can bind. */
export function checkLogitsOut(gpu: Gpu, head: Head, n: number, out: Tensor): void {
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  if (out.offset % align !== 0) {
    throw new Error(
      `${head.kind} head: logits out starts at byte ${out.offset}, not a multiple of ${align} ` +
        `(bind an aligned view, or copy the head's own logits with rec.copy)`,
    );
  }
  if (out.size !== n * head.numClasses) {
    throw new Error(`${head.kind} head: logits out has ${out.size} values, expected ${n}*${head.numClasses}`);
  }
}

/** Checks head sizes at construction. */
export function checkSizes(kind: HeadKind, sizes: Record<string, number>): void {
  for (const [key, value] of Object.entries(sizes)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new Error(`${kind} head: ${key} must be a positive integer, got ${value}`);
    }
  }
}

/**
 * A head's parameters as one span of the flat buffers: they were registered one after another, so the
 * span from the first to the end of the last covers exactly them (plus alignment padding, never read).
 */
export class ParamSpan {
  private readonly first: ParamView;
  private readonly length: number;

  constructor(private readonly store: ParamStore, private readonly views: ParamView[]) {
    for (let i = 1; i < views.length; i++) {
      if (views[i].offset < views[i - 1].offset + views[i - 1].size) {
        throw new Error(`ParamSpan: ${views[i].name} is not after ${views[i - 1].name} in the flat buffer`);
      }
    }
    this.first = views[0];
    const last = views[views.length - 1];
    this.length = last.offset + last.size - this.first.offset;
  }

  /** Element offset of a view inside the span (the `*_at` uniforms of the kernels). */
  at(view: ParamView): number {
    return view.offset - this.first.offset;
  }

  params(): Tensor {
    return this.slice(this.store.params);
  }

  grads(): Tensor {
    return this.slice(this.store.grads);
  }

  private slice(buffer: GPUBuffer | undefined): Tensor {
    if (!buffer) {
      throw new Error(`${this.first.name}: the ParamStore is not finalized (call store.finalize() first)`);
    }
    return new Tensor(buffer, [this.length], this.first.offset * 4);
  }
}

/** A host tensor by name, with a clear error when the state_dict lacks it. */
export function hostTensor(host: HostTensor[], name: string): Float32Array {
  const t = host.find((h) => h.name === name);
  if (!t) throw new Error(`state_dict has no tensor ${name}`);
  if (t.dtype !== "F32") throw new Error(`state_dict tensor ${name} has dtype ${t.dtype}, expected F32`);
  return t.data as Float32Array;
}

export function softmaxRow(x: ArrayLike<number>): number[] {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]);
  const e = Array.from(x, (v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/**
 * A head's shader file (lib/shaders/NAME) with the snippets its reduce kernels call appended:
 * head_stats.wgsl (the batch's stats from the per-sample rows) and tree_sum.wgsl (withTreeSum).
 */
export function headModule(file: string): string {
  // The same string object every call, so that the pipeline cache finds it without hashing it again.
  let code = headModules.get(file);
  if (code === undefined) {
    const own = loadWgsl(import.meta.url, `../shaders/${file}`);
    code = withTreeSum(`${own}\n${loadWgsl(import.meta.url, "../shaders/head_stats.wgsl")}`);
    headModules.set(file, code);
  }
  return code;
}

const headModules = new Map<string, string>();

/** The compiled entry points of one shader file, looked up once per head. */
export class Kernels {
  private cache = new Map<string, GPUComputePipeline>();

  constructor(private readonly gpu: Gpu, private readonly code: string) {}

  get(entryPoint: string): GPUComputePipeline {
    let p = this.cache.get(entryPoint);
    if (!p) this.cache.set(entryPoint, p = pipeline(this.gpu, { code: this.code, entryPoint }));
    return p;
  }
}

/**
 * A column of ones [N,1] (the responsibilities of one-component heads). Written once from the CPU and
 * never by a kernel; a larger batch gets a new buffer (the old one may still be referenced by recorded
 * commands, so it is left to the garbage collector).
 */
export class OnesColumn {
  private ones?: Tensor;

  constructor(private readonly gpu: Gpu) {}

  get(n: number): Tensor {
    if (!this.ones || this.ones.size < n) this.ones = upload(this.gpu, new Float32Array(n).fill(1), [n, 1]);
    return new Tensor(this.ones.buffer, [n, 1]);
  }
}
