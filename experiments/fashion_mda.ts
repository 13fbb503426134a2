// The notebook exactly (dnll.md section 1): 6-layer CNN, MDAHead(C=10, D=2, K=2), EM-DNLL with
// lambda 0.1, Adam 1e-3, batch 256, 100 epochs, no augmentation.
//
// Pinned: changing any value below means a new version (bump `version` and say what changed here).
// Version history:
//   1 - the notebook's configuration.

import type { ExperimentConfig } from "./config.ts";

export const experiment: ExperimentConfig = {
  name: "fashion_mda",
  version: 1,
  description: "The notebook: Deep MDA (D=2, K=2) with EM-DNLL (lambda 0.1) on Fashion-MNIST, 100 epochs",
  pinned: {
    widths: [64, 64, 128, 128, 256, 256],
    latentDim: 2,
    components: 2,
    head: "mda",
    loss: "em_dnll",
    lambda: 0.1,
    muInit: "independent",
    epochs: 100,
    batchSize: 256,
    testBatchSize: 1024,
    lr: 1e-3,
    seed: 20260101,
    augment: false,
  },
};
