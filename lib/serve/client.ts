// deno-lint-ignore-file no-explicit-any
// The results pages' script, bundled for the browser by lib/serve/bundle.ts (Observable Plot and the
// project's figure functions included, nothing fetched from the network). A run's page draws every figure
// from the run's data with the functions that wrote its SVG files, so the page shows the same figures;
// while the run is going, server-sent events bring each new line of history.jsonl and the learning curves,
// epoch, ETA and adapter update without a reload. The comparison page lays several runs' curves on one plot.
// Pages follow runs through one event stream (follow.ts), none for a run that is over.

import { restoreDevicePixelRatio } from "./plot_offset.ts"; // first: before Plot loads (see the file)
import { curveFigureSvgs, decodeComponents, runFigureSvgs } from "../../experiments/run_figures.ts";
import { type CurveKey, runsCurveFigure } from "../plot/compare.ts";
import type { HistoryRow } from "../types.ts";
import { encodePath, formatSeconds, isFinal, statusNote } from "./common.ts";
import { followRuns } from "./follow.ts";

restoreDevicePixelRatio();
const doc: any = (globalThis as any).document;

/** The figure's container on the page, created (in order) when the page did not list it. */
function figureBox(file: string, caption: string): any {
  let fig = doc.getElementById(`fig-${file}`);
  if (!fig) {
    fig = doc.createElement("figure");
    fig.id = `fig-${file}`;
    fig.innerHTML = `<div class="svg"></div><figcaption></figcaption>`;
    fig.querySelector("figcaption").textContent = caption;
    doc.getElementById("figures").appendChild(fig);
  }
  return fig;
}

/** Every SVG string the page drew, by file name: the browser test compares them with the saved files. */
const drawn: Record<string, string> = ((globalThis as any).mdaFigures = {});

function show(file: string, caption: string, svg: string): void {
  drawn[file] = svg;
  const box = figureBox(file, caption).querySelector(".svg");
  box.innerHTML = svg;
  box.dataset.drawn = "page"; // drawn here, not the saved file
}

function statusLine(summary: any): { text: string; cls: string } {
  const parts = [`status ${summary.status}`];
  parts.push(
    `epoch ${summary.epochsDone}${summary.epochsTotal !== undefined ? ` of ${summary.epochsTotal}` : ""}`,
  );
  if (summary.status === "running") {
    parts.push(
      summary.etaSeconds !== undefined
        ? `ETA ${formatSeconds(summary.etaSeconds)}`
        : "ETA after the first epoch",
    );
  }
  if (summary.bestTestAccuracy !== undefined) {
    parts.push(`best test accuracy ${summary.bestTestAccuracy.toFixed(4)}`);
  }
  if (summary.adapter) {
    parts.push(`adapter ${summary.adapter}${summary.softwareAdapter ? " (software)" : ""}`);
  }
  const note = statusNote(summary.status);
  if (note) parts.push(note);
  return { text: parts.join(" · "), cls: `status-${summary.status}` };
}

function setStatus(summary: any): void {
  const el = doc.getElementById("status");
  const { text, cls } = statusLine(summary);
  el.textContent = text;
  el.className = cls;
  el.dataset.epochsDone = String(summary.epochsDone);
  el.dataset.status = summary.status;
  doc.title = `${summary.name} · epoch ${summary.epochsDone} · ${summary.status}`;
}

async function getJson(url: string): Promise<any> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return await res.json();
}

async function runPage(main: any): Promise<void> {
  const dir: string = main.dataset.dir;
  const api = `/api/run/${encodePath(dir)}`;
  let data = await getJson(api);
  const name = () => data.manifest?.experiment_name ?? dir;
  const drawAll = () => {
    const figures = runFigureSvgs({
      name: name(),
      history: data.history,
      latent: data.latent ?? undefined,
      components: data.components ? decodeComponents(data.components, `${dir}/components.json`) : undefined,
      reliability10: data.metrics?.reliability10,
      histogram: data.metrics?.confidence_histogram,
    });
    for (const f of figures) show(f.file, f.caption, f.svg);
    setStatus(data.summary);
  };
  drawAll();
  let lastStatus = data.summary.status;
  if (isFinal(lastStatus)) return;
  followRuns([dir], async (update) => {
    data.history = update.history;
    data.summary = update.summary;
    if (update.summary.status !== lastStatus && update.summary.status === "finished") {
      data = await getJson(api); // the final evaluation's figures exist now
      drawAll();
    } else {
      for (const f of curveFigureSvgs(name(), data.history)) show(f.file, f.caption, f.svg);
      setStatus(data.summary);
    }
    lastStatus = update.summary.status;
  });
}

const CURVES: [CurveKey, string][] = [
  ["test_accuracy", "Test accuracy of each run"],
  ["train_accuracy", "Train accuracy of each run"],
  ["train_loss", "Mean train loss of each run (each run's own loss)"],
  ["test_ece", "Test ECE ×100 (10 bins) of each run"],
];

async function comparePage(main: any): Promise<void> {
  const dirs: string[] = JSON.parse(main.dataset.runs);
  if (!dirs.length) return;
  const runs = new Map<string, { label: string; history: HistoryRow[]; summary: any }>();
  for (const dir of dirs) {
    const d = await getJson(`/api/run/${encodePath(dir)}?curves=1`);
    runs.set(dir, { label: dir, history: d.history, summary: d.summary });
  }
  const draw = () => {
    const list = dirs.map((d) => runs.get(d)!);
    for (const [key, caption] of CURVES) show(`${key}.svg`, caption, runsCurveFigure(list, key));
    const el = doc.getElementById("status");
    el.textContent = list.map((r) => `${r.label}: ${statusLine(r.summary).text}`).join(" | ");
    el.dataset.epochsDone = list.map((r) => r.summary.epochsDone).join(",");
  };
  draw();
  followRuns(dirs.filter((d) => !isFinal(runs.get(d)!.summary.status)), (update) => {
    const r = runs.get(update.dir)!;
    r.history = update.history;
    r.summary = update.summary;
    draw();
  });
}

const main = doc.querySelector("main[data-page]");
const start = main?.dataset.page === "run"
  ? runPage
  : main?.dataset.page === "compare"
  ? comparePage
  : undefined;
start?.(main).catch((e: Error) => {
  const el = doc.getElementById("status");
  if (el) el.textContent = `error: ${e.message}`;
  console.error(e);
});
