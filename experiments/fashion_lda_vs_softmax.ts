// The paper's comparison (dnll.md section 5): Deep LDA trained with DNLL (lambda 0.01, D = C-1 = 9)
// against the same encoder with a softmax head and cross-entropy; 100 epochs, Adam defaults, batch 256.
// `deno task report fashion_lda_vs_softmax` draws both reliability diagrams and confidence histograms
// side by side, both PCA embeddings, and the accuracy / NLL / ECE table (paper: ECE 2.98 vs 5.05).
//
// Pinned: changing any value below means a new version (bump `version` and say what changed here).
// Version history:
//   1 - the paper's configuration; seed chosen by us (the paper gives none).

import type { ExperimentConfig } from "./config.ts";

export const experiment: ExperimentConfig = {
  name: "fashion_lda_vs_softmax",
  version: 1,
  description: "Deep LDA + DNLL (lambda 0.01, D=9) against softmax + cross-entropy, 100 epochs",
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
    seed: 20260102,
    augment: false,
  },
  runs: [
    { id: "lda", label: "LDA + DNLL", overrides: { head: "lda", loss: "dnll", lambda: 0.01 } },
    { id: "softmax", label: "Softmax + CE", overrides: { head: "softmax", loss: "ce" } },
  ],
  report: "comparison",
};
