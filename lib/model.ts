// The whole trainable model: encoder + head + loss + Adam over one ParamStore, and the training step
// as one sequence of recorded dispatches (no readback).

import type { Gpu } from "./gpu/device.ts";
import { ParamStore } from "./gpu/params.ts";
import type { Recorder } from "./gpu/recorder.ts";
import type { Tensor } from "./gpu/tensor.ts";
import { createHead, createLoss, headTrainStep } from "./mda/mod.ts";
import type { Head, HeadKind, Loss, LossKind } from "./mda/mod.ts";
import { Adam } from "./nn/adam.ts";
import { Encoder } from "./nn/encoder.ts";
import { Rng } from "./rng.ts";
import { defaultReductionVariant, type ReductionVariant } from "./gpu/reduction.ts";

export interface ModelOptions {
  /**
   * Kernel variant of every BatchNorm, pooling, projection and head reduction (lib/gpu/reduction.ts);
   * default: serial on software adapters, tree on GPUs. Tests and benchmarks force one. The BatchNorms
   * start with it; a run on a GPU then tunes their kernels per layer (lib/nn/batchnorm_tune.ts).
   */
  reductions?: ReductionVariant;
}

export type { HeadKind, LossKind };

export interface ModelConfig {
  widths: number[];
  latentDim: number;
  head: HeadKind;
  /** Mixture components per class (MDA only; 1 otherwise). */
  components: number;
  loss: LossKind;
  /** DNLL / EM-DNLL penalty weight (ignored by cross-entropy). */
  lambda: number;
  muInit: "independent" | "class-noise";
  lr: number;
  numClasses: number;
  /** Seed of the initialisation stream. */
  seed: number;
}

/**
 * The notebook's Deep MDA (D=2, K=2 components, EM-DNLL with lambda 0.1, Adam 1e-3, independent
 * mixture means) with the given encoder widths: the model of fashion_mda, fashion_mda_quick, the bench
 * and the PyTorch comparisons.
 */
export function notebookModelConfig(widths: number[], seed: number): ModelConfig {
  return {
    widths,
    latentDim: 2,
    head: "mda",
    components: 2,
    loss: "em_dnll",
    lambda: 0.1,
    muInit: "independent",
    lr: 1e-3,
    numClasses: 10,
    seed,
  };
}

export class Model {
  readonly store: ParamStore;
  readonly encoder: Encoder;
  readonly head: Head;
  readonly loss: Loss;
  readonly adam: Adam;
  /** The reduction kernels' variant of every layer and the head (what a run's manifest records). */
  readonly reductions: ReductionVariant;

  constructor(readonly gpu: Gpu, readonly config: ModelConfig, opts: ModelOptions = {}) {
    checkPairing(config.head, config.loss);
    this.store = new ParamStore(gpu);
    this.reductions = opts.reductions ?? defaultReductionVariant(gpu);
    const variant = this.reductions;
    const rng = new Rng(config.seed);
    // Separate streams for encoder and head, so that changing the head leaves the encoder's init alone.
    this.encoder = new Encoder(
      this.store,
      { widths: config.widths, latentDim: config.latentDim },
      rng.fork(1),
      "encoder",
      { reductions: variant },
    );
    const headRng = rng.fork(2);
    this.head = createHead(this.store, {
      kind: config.head,
      classes: config.numClasses,
      dim: config.latentDim,
      components: config.components,
      muInit: config.muInit,
      variant,
    }, headRng);
    this.loss = createLoss(config.loss, config.lambda);
    this.store.finalize();
    this.adam = new Adam(this.store, { lr: config.lr });
  }

  /**
   * One optimisation step on x [N,1,28,28], labels u32 [N]: forward in train mode, loss, backward, Adam.
   * The batch's mean loss, correct count and out-of-range label count land in stats[3*slot ..3*slot+2]
   * (STATS_PER_STEP, lib/mda/head.ts).
   */
  trainStep(rec: Recorder, x: Tensor, labels: Tensor, stats: Tensor, slot: number): void {
    const z = this.encoder.forward(rec, x, true);
    // Timed sections (each encoder layer marks its own) only where a bench attaches a timer to `rec`.
    let dz!: Tensor;
    rec.timed("head and loss", () => dz = headTrainStep(rec, this.head, this.loss, z, labels, stats, slot));
    this.encoder.backward(rec, dz);
    rec.timed("Adam", () => this.adam.record(rec));
  }

  /** Eval-mode embeddings z [N, D]. */
  embed(rec: Recorder, x: Tensor): Tensor {
    return this.encoder.forward(rec, x, false);
  }

  /** Eval-mode logits [N, C] (delta for the generative heads). */
  logits(rec: Recorder, x: Tensor): Tensor {
    return this.head.logits(rec, this.embed(rec, x));
  }
}

export function checkPairing(head: HeadKind, loss: LossKind): void {
  if (head === "softmax" && loss !== "ce") {
    throw new Error(`the softmax head trains with loss "ce", not "${loss}"`);
  }
  if (head !== "softmax" && loss === "ce") {
    throw new Error(`the ${head} head trains with "dnll" or "em_dnll", not "ce"`);
  }
  if (head === "lda" && loss === "em_dnll") {
    throw new Error(`the lda head has one component: use loss "dnll"`);
  }
}
