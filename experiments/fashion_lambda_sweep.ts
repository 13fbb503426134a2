// The paper's lambda sweep of Deep LDA + DNLL on Fashion-MNIST (dnll.md section 5): 9 values of lambda
// from 1e-3 to 10 (half-decade steps) x 5 seeds, with RandomCrop(28, padding 4) and
// Normalize(0.2860, 0.3530), D = 9, 100 epochs. Each run is independent: `--shard i/n` runs every n-th
// run so several machines share the sweep; `deno task report fashion_lambda_sweep` aggregates whatever
// runs have finished (mean and population std per lambda, beside the paper's numbers).
//
// Pinned: changing any value below means a new version (bump `version` and say what changed here).
// Version history:
//   1 - the paper's grid; seeds 1-5 chosen by us (the paper gives none).

import type { ExperimentConfig, RunVariant } from "./config.ts";

export const SWEEP_LOG10_LAMBDAS = [-3, -2.5, -2, -1.5, -1, -0.5, 0, 0.5, 1];
export const SWEEP_SEEDS = [1, 2, 3, 4, 5];

/** One run per (lambda, seed), lambda by lambda: sub-folders log10lambda_E_seed_S. */
export function sweepRuns(log10Lambdas: readonly number[], seeds: readonly number[]): RunVariant[] {
  return log10Lambdas.flatMap((e) =>
    seeds.map((seed) => ({
      id: `log10lambda_${e}_seed_${seed}`,
      label: `lambda=10^${e}, seed ${seed}`,
      overrides: { lambda: Number((10 ** e).toPrecision(12)), seed },
    }))
  );
}

export const experiment: ExperimentConfig = {
  name: "fashion_lambda_sweep",
  version: 1,
  description:
    "Deep LDA + DNLL lambda sweep (9 lambdas x 5 seeds), crop + normalize augmentation, 100 epochs",
  pinned: {
    widths: [64, 64, 128, 128, 256, 256],
    latentDim: 9,
    components: 1,
    head: "lda",
    loss: "dnll",
    lambda: 0.01,
    muInit: "independent",
    epochs: 100,
    batchSize: 256,
    testBatchSize: 1024,
    lr: 1e-3,
    seed: 1,
    augment: true,
  },
  runs: sweepRuns(SWEEP_LOG10_LAMBDAS, SWEEP_SEEDS),
  report: "sweep",
};
