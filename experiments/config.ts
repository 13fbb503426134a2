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
  /**
   * How `deno task report NAME` summarises the runs ("seeds": a single-run experiment over --seeds;
   * "comparison-seeds": a comparison over --seeds).
   */
  report?: "comparison" | "sweep" | "seeds" | "comparison-seeds";
  /** Set by seedsExperiment: the seeds, and the variants each seed runs (a comparison's own runs). */
  overSeeds?: { seeds: number[]; variants?: RunVariant[] };
}

import { experiment as fashionMda } from "./fashion_mda.ts";
import { experiment as fashionMdaQuick } from "./fashion_mda_quick.ts";
import { experiment as fashionLdaVsSoftmax } from "./fashion_lda_vs_softmax.ts";
import { experiment as fashionLambdaSweep } from "./fashion_lambda_sweep.ts";
import { experiment as fashionLdaVsSoftmaxQuick } from "./fashion_lda_vs_softmax_quick.ts";
import { experiment as fashionLambdaSweepQuick } from "./fashion_lambda_sweep_quick.ts";

export const EXPERIMENTS: Record<string, ExperimentConfig> = Object.fromEntries(
  [
    fashionMda,
    fashionMdaQuick,
    fashionLdaVsSoftmax,
    fashionLdaVsSoftmaxQuick,
    fashionLambdaSweep,
    fashionLambdaSweepQuick,
  ].map((
    e,
  ) => [e.name, e]),
);

/**
 * Why `--seeds` cannot repeat this experiment over seeds, or undefined when it can: a sweep sets each run's
 * seed itself.
 */
export function seedsRefusal(e: ExperimentConfig): string | undefined {
  const seeded = e.runs?.filter((v) => v.overrides.seed !== undefined) ?? [];
  if (seeded.length === 0) return undefined;
  const seeds = [...new Set(seeded.map((v) => v.overrides.seed))].join(", ");
  return `--seeds: ${e.name} sets each run's seed itself (its runs cover seeds ${seeds})`;
}

/**
 * An experiment repeated over seeds (`--seeds`), every other pinned value kept. A single-run experiment
 * runs once per seed, in sub-folders seed-N, summarised by the seeds report (lib/report/seeds.ts); a
 * comparison runs all its variants once per seed, in seed-N/ID, each seed-N folder a comparison of its own,
 * summarised over the seeds by the comparison-seeds report.
 */
export function seedsExperiment(e: ExperimentConfig, seeds: readonly number[]): ExperimentConfig {
  const refusal = seedsRefusal(e);
  if (refusal) throw new Error(refusal);
  if (!e.runs) {
    return {
      ...e,
      runs: seeds.map((seed) => ({ id: `seed-${seed}`, label: `seed ${seed}`, overrides: { seed } })),
      report: "seeds",
      overSeeds: { seeds: [...seeds] },
    };
  }
  const variants = e.runs;
  return {
    ...e,
    runs: seeds.flatMap((seed) =>
      variants.map((v) => ({
        id: `seed-${seed}/${v.id}`,
        label: `${v.label}, seed ${seed}`,
        overrides: { ...v.overrides, seed },
      }))
    ),
    report: "comparison-seeds",
    overSeeds: { seeds: [...seeds], variants },
  };
}
