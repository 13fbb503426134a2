// Experiment files pin every hyperparameter and the seed; flags may override any of them for one run,
// and the manifest records which values came from where.

import type { HeadKind, LossKind, ModelConfig } from "../lib/model.ts";

export interface Hyperparameters {
  widths: number[];
  latentDim: number;
  components: number;
  head: HeadKind;
  loss: LossKind;
  lambda: number;
  muInit: "independent" | "class-noise";
  epochs: number;
  batchSize: number;
  /** Test-time batch size of the notebook (evaluation is chunked on the GPU; results do not depend on it). */
  testBatchSize: number;
  lr: number;
  seed: number;
  /** The paper's sweep augmentation: RandomCrop(28, padding 4) + Normalize(0.2860, 0.3530). */
  augment: boolean;
  trainLimit?: number;
  testLimit?: number;
}

/** The model a run of these hyperparameters trains (Fashion-MNIST: 10 classes). */
export function modelConfigOf(h: Hyperparameters, numClasses = 10): ModelConfig {
  return {
    widths: h.widths,
    latentDim: h.latentDim,
    head: h.head,
    components: h.components,
    loss: h.loss,
    lambda: h.lambda,
    muInit: h.muInit,
    lr: h.lr,
    numClasses,
    seed: h.seed,
  };
}

/** One run of a multi-run experiment: the pinned values with a few overridden. */
export interface RunVariant {
  /** Sub-folder of the experiment's output folder. */
  id: string;
  label: string;
  overrides: Partial<Hyperparameters>;
}

export interface ExperimentConfig {
  name: string;
  version: number;
  description: string;
  pinned: Hyperparameters;
  /** Multi-run experiments (comparisons, sweeps): each variant is an independent run. */
  runs?: RunVariant[];
  /** How `deno task report NAME` summarises the runs ("seeds": a single-run experiment over --seeds). */
  report?: "comparison" | "sweep" | "seeds";
}

import { experiment as fashionMda } from "./fashion_mda.ts";
import { experiment as fashionMdaQuick } from "./fashion_mda_quick.ts";
import { experiment as fashionLdaVsSoftmax } from "./fashion_lda_vs_softmax.ts";
import { experiment as fashionLambdaSweep } from "./fashion_lambda_sweep.ts";

export const EXPERIMENTS: Record<string, ExperimentConfig> = Object.fromEntries(
  [fashionMda, fashionMdaQuick, fashionLdaVsSoftmax, fashionLambdaSweep].map((e) => [e.name, e]),
);

/**
 * A single-run experiment repeated over seeds (`--seeds`): one run per seed, in sub-folders seed-N, every
 * other pinned value kept, summarised by the seeds report (lib/report/seeds.ts).
 */
export function seedsExperiment(e: ExperimentConfig, seeds: readonly number[]): ExperimentConfig {
  if (e.runs) throw new Error(`${e.name} runs its own variants; seeds apply to single-run experiments`);
  return {
    ...e,
    runs: seeds.map((seed) => ({ id: `seed-${seed}`, label: `seed ${seed}`, overrides: { seed } })),
    report: "seeds",
  };
}
