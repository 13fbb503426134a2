// The paper's comparison (fashion_lda_vs_softmax) sized for a machine without a GPU: encoder widths
// 16-16-32-32-64-64 and 3 epochs; everything else as fashion_lda_vs_softmax (LDA + DNLL at lambda 0.01,
// D = 9, against softmax + cross-entropy). Two runs of about 6 minutes each on a 2-core machine with the
// software adapter. Three epochs of a narrow encoder are not the paper's 100 of the full one: this checks
// the comparison's pipeline and shows where the two heads stand early in training; run it over seeds
// (`--seeds 1-3`) before reading anything into one pair.
//
// Pinned: changing any value below means a new version (bump `version` and say what changed here).
// Version history:
//   1 - narrow encoder, 3 epochs, seed 1.

import type { ExperimentConfig } from "./config.ts";
import { experiment as full } from "./fashion_lda_vs_softmax.ts";

export const experiment: ExperimentConfig = {
  name: "fashion_lda_vs_softmax_quick",
  version: 1,
  description:
    "Quick Deep LDA + DNLL (lambda 0.01, D=9) against softmax + cross-entropy, widths 16-16-32-32-64-64, 3 epochs",
  pinned: { ...full.pinned, widths: [16, 16, 32, 32, 64, 64], epochs: 3, seed: 1 },
  runs: full.runs,
  report: "comparison",
};
