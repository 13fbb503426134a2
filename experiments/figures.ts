// The figures of one finished run, drawn from data the run produced and saved in its folder: accuracy and
// loss curves from history.jsonl, the latent scatter (latent.json) and component examples (components.json)
// from eval-mode embeddings of the first 10 000 training images, and the calibration figures from the final
// evaluation (metrics.json). `deno task figures RUN_DIR` redraws them all from those files alone.

import { basename } from "node:path";
import type { FashionMnist } from "../lib/data/fashion.ts";
import { writeFileAtomic, writeJsonAtomic } from "../lib/io/atomic.ts";
import { pdfFileOf, svgToPdf } from "../lib/plot/pdf.ts";
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
import type {
  ConfidenceHistogram,
  EvalMetrics,
  HistoryRow,
  LatentSnapshot,
  Reliability,
} from "../lib/types.ts";
import type { RunRequest } from "./cli.ts";
import { computeFigureData } from "./figure_data.ts";
import { readJson } from "../lib/io/json.ts";
import { readHistory } from "./pages.ts";

export type { FigureFile, SavedFigureData };

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

/**
 * Writes X.pdf beside each X.svg of `svgFiles` in `dir` (lib/plot/pdf.ts: the same drawing as a vector PDF,
 * for papers typeset with pdflatex); returns the PDFs' names. Each is written to a temporary file, then
 * renamed, so a failure leaves the folder as it was but for the PDFs already done.
 */
export async function writePdfsBeside(dir: string, svgFiles: readonly string[]): Promise<string[]> {
  const pdfs: string[] = [];
  for (const svg of svgFiles) {
    const pdf = pdfFileOf(svg);
    try {
      await writeFileAtomic(`${dir}/${pdf}`, await svgToPdf(await Deno.readTextFile(`${dir}/${svg}`)));
    } catch (e) {
      throw new Error(`${dir}/${svg}: ${(e as Error).message}`);
    }
    pdfs.push(pdf);
  }
  return pdfs;
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
  const { saved, metrics } = await computeFigureData(
    req.experiment.name,
    model,
    trainer,
    data.train,
    history,
    last,
  );
  await writeJsonAtomic(`${req.out}/latent.json`, saved.latent);
  if (saved.components) {
    await writeJsonAtomic(`${req.out}/components.json`, encodeComponents(saved.components));
  }
  return { figures: await drawRunFigures(req.out, saved), metrics };
}
