// The figures of a run as SVG strings, from the data the run saved: a pure function of JSON-able data with
// no file system or GPU, shared by the runner (experiments/figures.ts), `deno task figures` and the results
// server's pages (bundled for the browser), so all three draw the same bytes.

import { decodeBase64, encodeBase64 } from "../lib/io/base64.ts";
import {
  accuracyFigure,
  componentExamplesFigure,
  confidenceHistogramFigure,
  latentFigure,
  lossFigure,
  reliabilityFigure,
} from "../lib/plot/mod.ts";
import type {
  ComponentExamples,
  ConfidenceHistogram,
  HistoryRow,
  LatentSnapshot,
  Reliability,
} from "../lib/types.ts";

export interface FigureFile {
  file: string;
  caption: string;
}

/** What the figures of a run are drawn from: all of it is saved in the run folder (see readSavedFigureData). */
export interface SavedFigureData {
  /** The experiment's name, as in manifest.json: the figures' titles start with it. */
  name: string;
  history: HistoryRow[];
  /** latent.json */
  latent?: LatentSnapshot;
  /** components.json (MDA heads with K > 1) */
  components?: ComponentExamples;
  /** metrics.json's reliability10 and confidence_histogram (the final evaluation). */
  reliability10?: Reliability;
  histogram?: ConfidenceHistogram;
}

/** components.json: the examples' pixels as base64 of 784 bytes per image (a third of a JSON number list). */
export interface ComponentsFile {
  classNames: string[];
  rows: { classIndex: number; component: number; weight: number; images: string[] }[];
}

export function encodeComponents(e: ComponentExamples): ComponentsFile {
  return {
    classNames: e.classNames,
    rows: e.rows.map((r) => ({
      ...r,
      images: r.images.map((px) => encodeBase64(Uint8Array.from(px))),
    })),
  };
}

export function decodeComponents(f: ComponentsFile, path: string): ComponentExamples {
  return {
    classNames: f.classNames,
    rows: f.rows.map((r) => ({
      ...r,
      images: r.images.map((b64, i) => {
        const px = decodeBase64(b64);
        if (px.length !== 784) {
          throw new Error(
            `${path}: image ${i} of class ${r.classIndex} has ${px.length} pixels, expected 784`,
          );
        }
        return Array.from(px);
      }),
    })),
  };
}

/** The two learning curves, from the history alone (what a page redraws as each epoch lands). */
export function curveFigureSvgs(name: string, history: HistoryRow[]): (FigureFile & { svg: string })[] {
  return [
    {
      file: "accuracy.svg",
      caption: "Train and test accuracy",
      svg: accuracyFigure(history, `${name}: accuracy per epoch`),
    },
    {
      file: "loss.svg",
      caption: "Mean train loss (as reported)",
      svg: lossFigure(history, `${name}: train loss per epoch`),
    },
  ];
}

/** Every figure the data allows, in the order of the run's page. */
export function runFigureSvgs(data: SavedFigureData): (FigureFile & { svg: string })[] {
  const figures = curveFigureSvgs(data.name, data.history);
  const add = (file: string, svg: string, caption: string) => figures.push({ file, caption, svg });
  const name = data.name;
  if (data.latent) {
    const snapshot = data.latent;
    add(
      "latent.svg",
      latentFigure(snapshot, `${name}: train embeddings (${snapshot.labels.length} images)`),
      snapshot.dim > 2 ? "Train embeddings, PCA to 2-D" : "Train embeddings and component means",
    );
  }
  if (data.components) {
    add(
      "components.svg",
      componentExamplesFigure(data.components, `${name}: examples per mixture component`),
      "Training images assigned to each component (highest responsibility within the true class)",
    );
  }
  if (data.reliability10) {
    add(
      "reliability.svg",
      reliabilityFigure(data.reliability10, `${name}: reliability (10 bins)`),
      "Reliability diagram, 10 right-closed bins",
    );
  }
  if (data.histogram) {
    add(
      "confidence.svg",
      confidenceHistogramFigure(data.histogram, `${name}: confidence histogram`),
      "Confidence histogram, 20 bins",
    );
  }
  return figures;
}
