// The notebook's pipeline sized for a machine without a GPU: encoder widths 16-16-32-32-64-64 and 2
// epochs; everything else as fashion_mda. Must finish within 15 minutes on a 2-core machine with the
// software adapter and reach at least 60% test accuracy.
//
// Pinned: changing any value below means a new version (bump `version` and say what changed here).
// Version history:
//   1 - narrow encoder, 2 epochs.

import type { ExperimentConfig } from "./config.ts";

export const experiment: ExperimentConfig = {
  name: "fashion_mda_quick",
  version: 1,
  description: "Quick Deep MDA (widths 16-16-32-32-64-64, D=2, K=2, EM-DNLL lambda 0.1), 2 epochs",
  pinned: {
    widths: [16, 16, 32, 32, 64, 64],
    latentDim: 2,
    components: 2,
    head: "mda",
    loss: "em_dnll",
    lambda: 0.1,
    muInit: "independent",
    epochs: 2,
    batchSize: 256,
    testBatchSize: 1024,
    lr: 1e-3,
    seed: 20260101,
    augment: false,
  },
};
