// The paper's lambda sweep (fashion_lambda_sweep) sized for a machine without a GPU: encoder widths
// 16-16-32-32-64-64, 2 epochs, three values of lambda (10^-3, 10^-1 and 10, the two ends of the paper's
// grid and its middle, where the paper states numbers) x seeds 1-3; everything else as
// fashion_lambda_sweep (Deep LDA + DNLL, D = 9, RandomCrop(28, padding 4) + Normalize). Nine runs of about
// 4 minutes each on a 2-core machine with the software adapter. Two epochs of a narrow encoder are not
// the paper's 100 of the full one: this checks the sweep's pipeline and shows the direction lambda moves
// the learned scale sigma = exp(s/2) early in training, not the paper's final numbers.
//
// Pinned: changing any value below means a new version (bump `version` and say what changed here).
// Version history:
//   1 - narrow encoder, 2 epochs, lambda 10^-3, 10^-1, 10, seeds 1-3.

import type { ExperimentConfig } from "./config.ts";
import { experiment as full, sweepRuns } from "./fashion_lambda_sweep.ts";

export const experiment: ExperimentConfig = {
  name: "fashion_lambda_sweep_quick",
  version: 1,
  description:
    "Quick Deep LDA + DNLL lambda sweep (lambda 10^-3, 10^-1, 10 x 3 seeds), crop + normalize, widths 16-16-32-32-64-64, 2 epochs",
  pinned: { ...full.pinned, widths: [16, 16, 32, 32, 64, 64], epochs: 2 },
  runs: sweepRuns([-3, -1, 1], [1, 2, 3]),
  report: "sweep",
};
