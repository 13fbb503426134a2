// What the figures of a finished run are drawn from, computed from the trained model and its data: train
// embeddings for the latent scatter, the images each mixture component claims, the final evaluation's
// calibration. No file system here: the runner saves it to the run folder (experiments/figures.ts) and the
// browser page (web/train.ts) draws it in the tab, both through runFigureSvgs, so both draw the same way.

import { headSummary } from "../lib/mda/mod.ts";
import type { Model } from "../lib/model.ts";
import type { Trainer } from "../lib/train/trainer.ts";
import {
  type ComponentExamples,
  type EvalMetrics,
  FASHION_CLASSES,
  type HistoryRow,
  type LatentSnapshot,
} from "../lib/types.ts";
import type { SavedFigureData } from "./run_figures.ts";

export const LATENT_POINTS = 10_000;
const EXAMPLES_PER_COMPONENT = 7;
const MIN_WEIGHT = 0.05;

/**
 * Which image belongs to which component: for each image, argmax over k of the responsibility within
 * its true class, log w[y,k] - 0.5 (|z - mu[y,k]|^2 / v[y,k] + D log v[y,k]) (dnll.md section 3),
 * computed in float64 from the head's parameters.
 */
export function assignComponents(
  z: Float32Array,
  labels: ArrayLike<number>,
  D: number,
  K: number,
  means: number[],
  weights: number[],
  variances: number[],
): Int32Array {
  const n = labels.length;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    let best = -Infinity, bestK = 0;
    for (let k = 0; k < K; k++) {
      const base = (y * K + k) * D;
      let m2 = 0;
      for (let d = 0; d < D; d++) m2 += (z[i * D + d] - means[base + d]) ** 2;
      const v = variances[y * K + k];
      const a = Math.log(weights[y * K + k]) - 0.5 * (m2 / v + D * Math.log(v));
      if (a > best) {
        best = a;
        bestK = k;
      }
    }
    out[i] = bestK;
  }
  return out;
}

/** The (class, component) rows to show: every component of classes whose weakest weighs >= 0.05, plus
 * the notebook's two cases (Pullover's least-weighted component, every component of Ankle boot). */
export function exampleRows(weights: number[], C: number, K: number): [number, number][] {
  const rows = new Set<string>();
  const pullover = FASHION_CLASSES.indexOf("Pullover"), boot = FASHION_CLASSES.indexOf("Ankle boot");
  for (let c = 0; c < C; c++) {
    const w = weights.slice(c * K, c * K + K);
    const weakest = w.indexOf(Math.min(...w));
    if (Math.min(...w) >= MIN_WEIGHT || c === boot) { for (let k = 0; k < K; k++) rows.add(`${c},${k}`); }
    if (c === pullover) rows.add(`${c},${weakest}`);
  }
  return [...rows].map((s) => s.split(",").map(Number) as [number, number])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
}

/**
 * The figure data of a finished run (the JSON round trip of what a run folder saves, so a redraw from the
 * files gives the same bytes), and the head's summary for metrics.json. `train` is the training split on
 * the host, in file order; the embeddings come from `trainer.train` on the GPU.
 */
export async function computeFigureData(
  name: string,
  model: Model,
  trainer: Trainer,
  train: { images: Uint8Array; labels: Uint8Array; count: number },
  history: HistoryRow[],
  last: EvalMetrics,
): Promise<{ saved: SavedFigureData; metrics: Record<string, unknown> }> {
  const D = model.config.latentDim, K = model.head.components, C = model.config.numClasses;
  const n = Math.min(LATENT_POINTS, train.count);
  const z = await trainer.embeddings(trainer.train!, n);
  const labels = Array.from(train.labels.subarray(0, n));
  const summary = headSummary(model.head, await model.store.toHost());
  const latent: LatentSnapshot = {
    dim: D,
    z: Array.from(z, (v) => Math.round(v * 1e4) / 1e4),
    labels,
    means: model.head.kind === "softmax" ? undefined : summary.means,
    weights: model.head.kind === "softmax" ? undefined : summary.weights,
    components: K,
    classNames: [...FASHION_CLASSES],
  };
  let components: ComponentExamples | undefined;
  if (model.head.kind === "mda" && K > 1) {
    const comp = assignComponents(z, labels, D, K, summary.means, summary.weights, summary.variances);
    const rows = exampleRows(summary.weights, C, K).map(([c, k]) => {
      const images: number[][] = [];
      for (let i = 0; i < n && images.length < EXAMPLES_PER_COMPONENT; i++) {
        if (labels[i] === c && comp[i] === k) {
          images.push(Array.from(train.images.subarray(i * 784, i * 784 + 784)));
        }
      }
      return { classIndex: c, component: k, weight: summary.weights[c * K + k], images };
    });
    components = { rows, classNames: [...FASHION_CLASSES] };
  }
  const saved: SavedFigureData = JSON.parse(JSON.stringify({
    name,
    history,
    latent,
    components,
    reliability10: last.reliability10,
    histogram: last.histogram,
  }));
  const metrics: Record<string, unknown> = { mixture_weights: summary.weights, variances: summary.variances };
  if (summary.sigma !== undefined) metrics.sigma = summary.sigma;
  return { saved, metrics };
}
