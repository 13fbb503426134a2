// `deno task figures RUN_DIR [--out DIR] [--pdf]`: redraws every figure of a run and its page (README.md) from
// what the run saved (history.jsonl, metrics.json, manifest.json, latent.json, components.json), with no GPU
// and no training: a run made on a remote GPU is drawn on a laptop. The bytes are those the run drew itself.
// With --pdf each figure also as a vector PDF beside its SVG (lib/plot/pdf.ts), for LaTeX.

import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { writeJsonAtomic } from "../lib/io/atomic.ts";
import { exitWithError } from "./cli.ts";
import { drawRunFigures, type FigureFile, readSavedFigureData, writePdfsBeside } from "./figures.ts";
import {
  checkInputDir,
  checkOutputDir,
  checkPositionals,
  type CommandSpec,
  type ParsedFlags,
  parseOrExit,
  stringFlag,
  UsageError,
} from "./flags.ts";
import { readJson } from "../lib/io/json.ts";
import { writeResultsIndex, writeRunPage } from "./pages.ts";

export const FIGURES_SPEC: CommandSpec = {
  name: "figures",
  summary: "Redraws every figure of a run and its page (README.md) from the files the run saved " +
    "(history.jsonl, metrics.json, manifest.json, latent.json, components.json): no GPU, no training.",
  positionals: [{
    name: "RUN_DIR",
    meaning: "a run folder (one with a manifest.json), e.g. results/fashion_mda",
  }],
  flags: [
    {
      name: "out",
      kind: "path",
      value: "DIR",
      meaning: "write the figures, figures.json and README.md here instead (created)",
      default: "RUN_DIR",
    },
    {
      name: "pdf",
      kind: "boolean",
      meaning: "also write each figure as a vector PDF beside its SVG (X.svg -> X.pdf), for pdflatex",
      default: "SVG only",
    },
  ],
  examples: [
    "deno task figures results/fashion_mda_quick",
    "deno task figures results/fashion_mda --pdf",
    "deno task figures results/fashion_mda --out /tmp/page",
  ],
};

export interface FiguresRequest {
  runDir: string;
  out: string;
  /** Also X.pdf beside each X.svg. */
  pdf?: boolean;
}

export function figuresFromFlags(p: ParsedFlags): FiguresRequest {
  checkPositionals(FIGURES_SPEC, p);
  const runDir = p.positionals[0];
  if (runDir.trim() === "") throw new UsageError("RUN_DIR needs a path, got an empty string");
  checkInputDir("RUN_DIR", runDir, "a run folder");
  if (!existsSync(`${runDir}/manifest.json`)) {
    throw new UsageError(
      `RUN_DIR ${runDir}: no manifest.json, so not a run folder ` +
        `(a multi-run experiment's folder is summarised by \`deno task report NAME\`)`,
    );
  }
  const out = stringFlag(p, "out", "path") ?? runDir;
  checkOutputDir("--out", out);
  return { runDir, out, pdf: p.values.pdf === true };
}

/**
 * Redraws the run's figures and page into req.out; returns the figures drawn, the PDFs written (--pdf) and
 * notes on what was not drawn.
 */
export async function redrawRun(
  req: FiguresRequest,
): Promise<{ figures: FigureFile[]; pdfs: string[]; notes: string[] }> {
  const data = await readSavedFigureData(req.runDir);
  const notes: string[] = [];
  const inPlace = resolve(req.out) === resolve(req.runDir);
  await Deno.mkdir(req.out, { recursive: true });
  // A run from before components.json was saved keeps the components.svg it drew (in place only).
  const before = ((await readJson(`${req.runDir}/figures.json`)) ?? []) as unknown as FigureFile[];
  const oldComponents = Array.isArray(before) ? before.find((f) => f.file === "components.svg") : undefined;
  if (!data.components && oldComponents) {
    notes.push(
      inPlace
        ? "components.svg kept as the run drew it: the run saved no components.json (runs save it since this command exists)"
        : "components.svg not drawn: the run saved no components.json",
    );
  }
  if (!data.latent) notes.push("latent.svg not drawn: no latent.json (the run has not finished)");
  if (!data.reliability10) {
    notes.push("reliability.svg, confidence.svg not drawn: no metrics.json (the run has not finished)");
  }
  const figures = await drawRunFigures(req.out, data);
  if (!data.components && oldComponents && inPlace) {
    // Keep it listed where it was, after latent.svg, so the page still shows it.
    const at = figures.findIndex((f) => f.file === "latent.svg") + 1;
    figures.splice(at, 0, oldComponents);
    await writeJsonAtomic(`${req.out}/figures.json`, figures);
  }
  // The PDFs first: the page links those it finds.
  const pdfs = req.pdf ? await writePdfsBeside(req.out, figures.map((f) => f.file)) : [];
  await writeRunPage(req.runDir, req.out);
  if (inPlace) await writeResultsIndex(req.runDir);
  return { figures, pdfs, notes };
}

if (import.meta.main) {
  const req = parseOrExit(FIGURES_SPEC, Deno.args, figuresFromFlags);
  try {
    const { figures, pdfs, notes } = await redrawRun(req);
    for (const n of notes) console.error(`note: ${n}`);
    console.error(`${req.out}: ${[...figures.map((f) => f.file), ...pdfs].join(", ")}, README.md`);
  } catch (e) {
    exitWithError(e);
  }
}
