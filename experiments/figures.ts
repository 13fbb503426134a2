// The figures of one finished run, drawn from data the run produced and saved in its folder: accuracy and
// loss curves from history.jsonl, the latent scatter (latent.json) and component examples (components.json)
// from eval-mode embeddings of the first 10 000 training images, and the calibration figures from the final
// evaluation (metrics.json). `deno task figures RUN_DIR` redraws them all from those files alone.

import { basename } from "node:path";
import type { FashionMnist } from "../lib/data/fashion.ts";
import { writeFileAtomic, writeJsonAtomic } from "../lib/io/atomic.ts";
import { headSummary } from "../lib/mda/mod.ts";
import type { Model } from "../lib/model.ts";
import {
  type ComponentsFile,
  decodeComponents,
  encodeComponents,
  type FigureFile,
  runFigureSvgs,
  type SavedFigureData,
} from "./run_figures.ts";
import type { Trainer } from "../lib/train/trainer.ts";
import {
  type ComponentExamples,
  type ConfidenceHistogram,
  type EvalMetrics,
  FASHION_CLASSES,
  type HistoryRow,
  type LatentSnapshot,
  type Reliability,
} from "../lib/types.ts";
import type { RunRequest } from "./cli.ts";
import { readHistory, readJson } from "./pages.ts";

export type { FigureFile, SavedFigureData };

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
 * Draws every figure of a run from its saved data into `out`, and writes figures.json (the list the run's
 * page shows). `deno task figures RUN_DIR` and the results server draw the same bytes from the run folder.
 */
export async function drawRunFigures(out: string, data: SavedFigureData): Promise<FigureFile[]> {
  const figures: FigureFile[] = [];
  for (const f of runFigureSvgs(data)) {
    await writeFileAtomic(`${out}/${f.file}`, f.svg);
    figures.push({ file: f.file, caption: f.caption });
  }
  await writeJsonAtomic(`${out}/figures.json`, figures);
  return figures;
}

/** Reads what drawRunFigures needs from a run folder; what a run did not save is left undefined. */
export async function readSavedFigureData(dir: string): Promise<SavedFigureData> {
  const manifest = await readJson(`${dir}/manifest.json`);
  const metrics = await readJson(`${dir}/metrics.json`);
  const latent = await readJson(`${dir}/latent.json`);
  const components = await readJson(`${dir}/components.json`);
  return {
    name: (manifest?.experiment_name as string) ?? basename(dir),
    history: await readHistory(dir),
    latent: latent as unknown as LatentSnapshot | undefined,
    components: components
      ? decodeComponents(components as unknown as ComponentsFile, `${dir}/components.json`)
      : undefined,
    reliability10: metrics?.reliability10 as Reliability | undefined,
    histogram: metrics?.confidence_histogram as ConfidenceHistogram | undefined,
  };
}

/**
 * The figures of a finished run: computes (on the GPU) and saves the data the figures need (latent.json,
 * components.json), then draws them from that data exactly as `deno task figures` would.
 */
export async function writeRunFigures(
  req: RunRequest,
  model: Model,
  trainer: Trainer,
  data: FashionMnist,
  history: HistoryRow[],
  last: EvalMetrics,
): Promise<{ figures: FigureFile[]; metrics: Record<string, unknown> }> {
  const out = req.out;
  const D = model.config.latentDim, K = model.head.components, C = model.config.numClasses;
  const n = Math.min(LATENT_POINTS, data.train.count);
  const z = await trainer.embeddings(trainer.train!, n);
  const labels = Array.from(data.train.labels.subarray(0, n));
  const summary = headSummary(model.head, await model.store.toHost());
  const snapshot: LatentSnapshot = {
    dim: D,
    z: Array.from(z, (v) => Math.round(v * 1e4) / 1e4),
    labels,
    means: model.head.kind === "softmax" ? undefined : summary.means,
    weights: model.head.kind === "softmax" ? undefined : summary.weights,
    components: K,
    classNames: [...FASHION_CLASSES],
  };
  await writeJsonAtomic(`${out}/latent.json`, snapshot);

  let examples: ComponentExamples | undefined;
  if (model.head.kind === "mda" && K > 1) {
    const comp = assignComponents(z, labels, D, K, summary.means, summary.weights, summary.variances);
    const rows = exampleRows(summary.weights, C, K).map(([c, k]) => {
      const images: number[][] = [];
      for (let i = 0; i < n && images.length < EXAMPLES_PER_COMPONENT; i++) {
        if (labels[i] === c && comp[i] === k) {
          images.push(Array.from(data.train.images.subarray(i * 784, i * 784 + 784)));
        }
      }
      return { classIndex: c, component: k, weight: summary.weights[c * K + k], images };
    });
    examples = { rows, classNames: [...FASHION_CLASSES] };
    await writeJsonAtomic(`${out}/components.json`, encodeComponents(examples));
  }

  // Drawn from the JSON round trip of what was saved, so the redraw gives the same bytes by construction.
  const saved: SavedFigureData = JSON.parse(JSON.stringify({
    name: req.experiment.name,
    history,
    latent: snapshot,
    components: examples,
    reliability10: last.reliability10,
    histogram: last.histogram,
  }));
  const figures = await drawRunFigures(out, saved);
  const metrics: Record<string, unknown> = {
    mixture_weights: summary.weights,
    variances: summary.variances,
  };
  if (summary.sigma !== undefined) metrics.sigma = summary.sigma;
  return { figures, metrics };
}
