// Data shapes shared by the heads' metrics (lib/mda), the runner (experiments/) and the figures
// (lib/plot). Plain JSON-able objects, so a run folder can be re-plotted without the GPU.
// Convention: accuracies, confidences and ECE are fractions in [0, 1]; figures and tables show ECE x100.

export const FASHION_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
] as const;

/** One bin of a reliability diagram. Empty bins have count 0 and accuracy = confidence = 0. */
export interface ReliabilityBin {
  lo: number;
  hi: number;
  count: number;
  accuracy: number;
  confidence: number;
}

export interface Reliability {
  /** "right" = intervals (lo, hi] (reliability diagrams, 10 bins); "left" = [lo, hi) (lambda sweep, 15 bins). */
  closed: "right" | "left";
  bins: ReliabilityBin[];
  /** Expected calibration error, a fraction: sum over non-empty bins of (n_b / N) |acc_b - conf_b|. */
  ece: number;
}

/** 20-bin histogram of confidence, each sample weighted 1/N (fractions sum to 1). */
export interface ConfidenceHistogram {
  bins: { lo: number; hi: number; fraction: number }[];
  meanConfidence: number;
  accuracy: number;
}

export interface EvalMetrics {
  n: number;
  accuracy: number;
  /** Mean negative log-likelihood of the true class under softmax(logits). */
  nll: number;
  /** Brier score: mean over samples of sum_c (p_c - [c == y])^2. */
  brier: number;
  ece10: number;
  ece15: number;
  reliability10: Reliability;
  reliability15: Reliability;
  histogram: ConfidenceHistogram;
}

/** One line of history.jsonl. */
export interface HistoryRow {
  epoch: number;
  train_loss: number;
  train_accuracy: number;
  test_accuracy: number;
  test_nll: number;
  /** 10-bin ECE, a fraction. */
  test_ece: number;
  /** 15-bin ECE ([lo, hi) bins, the lambda sweep's convention), a fraction. */
  test_ece15?: number;
  test_brier?: number;
  /** Wall time of the epoch: training plus evaluation. */
  seconds: number;
  /** The evaluation's part of `seconds` (absent in runs from before it was recorded). */
  eval_seconds?: number;
}

/** What the latent-space figure needs (dnll.md section 1 (a)). */
export interface LatentSnapshot {
  /** Latent dimension D of `z` and `means`. */
  dim: number;
  /** Embeddings, row-major [n, dim]. */
  z: number[];
  labels: number[];
  /** Component means, row-major [C, K, dim] (K = 1 for LDA; absent for softmax). */
  means?: number[];
  /** Mixture weights [C, K] (all 1 for K = 1). */
  weights?: number[];
  components: number;
  classNames: string[];
}

/** Example images per mixture component (dnll.md section 1 (b), (c)). */
export interface ComponentExamples {
  rows: {
    classIndex: number;
    component: number;
    weight: number;
    /** 28x28 uint8 images, row-major, as plain arrays of 784 numbers. */
    images: number[][];
  }[];
  classNames: string[];
}
