// Markdown pages: a run folder's README.md (key numbers, history, figures) and results/README.md (one line
// per run). metrics.json and manifest.json are read tolerantly: a run still in progress has no metrics yet,
// and a field can sit under any of the names listed in KEY_NUMBER_SOURCES (flat EvalMetrics, "test_"
// prefixed, or nested under "test"), so the pages keep working while the runner's files evolve.

import { pdfFileOf } from "../plot/pdf.ts";
import type { HistoryRow } from "../types.ts";

export interface RunPageInput {
  name: string;
  metrics?: object | null;
  manifest?: object | null;
  history?: HistoryRow[];
  figures?: { file: string; caption: string }[];
  /** Figures (by SVG file name) that also have a PDF beside them (--pdf): the page links it. */
  pdfs?: ReadonlySet<string>;
}

export interface IndexEntry {
  /** The run folder, relative to results/. */
  dir: string;
  name: string;
  metrics?: object | null;
  manifest?: object | null;
  /** False when the folder keeps only the run's data (no README.md): the index links the folder. */
  hasPage?: boolean;
  /** The run's history.jsonl: a running run's wall time so far is the sum of its epochs. */
  history?: HistoryRow[];
}

/** A folder of results/ with a README.md but no run of its own (a sweep's report, a study). */
export interface IndexPage {
  dir: string;
  title: string;
}

/** The numbers both pages show; undefined where no source has them. */
export interface KeyNumbers {
  finalTestAccuracy?: number;
  bestTestAccuracy?: number;
  bestEpoch?: number;
  finalTrainAccuracy?: number;
  nll?: number;
  ece10?: number;
  ece15?: number;
  brier?: number;
  sigma?: number;
  wallSeconds?: number;
  /** True when wallSeconds is the sum of the history's epoch times rather than a measured total. */
  wallFromHistory?: boolean;
  adapter?: string;
  epochsDone: number;
  epochsPlanned?: number;
  /** The manifest's own status word ("running", "finished", "failed"), when it has one. */
  status?: string;
  finished: boolean;
}

/** Where each number is looked for, first match wins: dotted paths into metrics.json / manifest.json. */
export const KEY_NUMBER_SOURCES = {
  accuracy: ["accuracy", "test_accuracy", "test.accuracy", "final.test_accuracy", "final_test_accuracy"],
  bestAccuracy: ["best_test_accuracy", "best.test_accuracy.value", "best.test_accuracy", "bestTestAccuracy"],
  nll: ["nll", "test_nll", "test.nll", "final.test_nll"],
  ece10: ["ece10", "test_ece10", "test.ece10", "test_ece", "ece", "final.test_ece", "final.test_ece10"],
  ece15: ["ece15", "test_ece15", "test.ece15", "final.test_ece15"],
  brier: ["brier", "test_brier", "test.brier", "final.test_brier"],
  sigma: ["sigma", "final.sigma", "test.sigma", "head.sigma"],
  wallSeconds: [
    "wall_seconds",
    "wallSeconds",
    "wall_time_s",
    "wall_time_seconds",
    "elapsed_seconds",
    "timing.wall_seconds",
  ],
  adapter: [
    "adapter.description",
    "adapter",
    "gpu.description",
    "gpu.adapter",
    "device.description",
    "device",
  ],
  epochs: ["hyperparameters.epochs.value", "hyperparameters.epochs", "config.epochs", "epochs"],
  status: ["status", "state"],
} as const;

function at(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const key of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function firstNumber(sources: unknown[], paths: readonly string[]): number | undefined {
  for (const src of sources) {
    for (const path of paths) {
      const v = at(src, path);
      if (typeof v === "number" && Number.isFinite(v)) return v;
    }
  }
  return undefined;
}

function firstString(sources: unknown[], paths: readonly string[]): string | undefined {
  for (const src of sources) {
    for (const path of paths) {
      const v = at(src, path);
      if (typeof v === "string" && v.trim()) return v.trim();
    }
  }
  return undefined;
}

function finite(x: unknown): x is number {
  return typeof x === "number" && Number.isFinite(x);
}

/** Gathers the key numbers of a run from metrics, manifest and history, in that order of trust. */
export function keyNumbers(
  metrics: object | null | undefined,
  manifest: object | null | undefined,
  historyOrUndefined?: HistoryRow[],
): KeyNumbers {
  const history = historyOrUndefined ?? [];
  const S = KEY_NUMBER_SOURCES;
  const m = [metrics], mm = [manifest, metrics];
  const last = history[history.length - 1];
  const tested = history.filter((r) => finite(r.test_accuracy));
  const best = tested.length
    ? tested.reduce((a, b) => (b.test_accuracy > a.test_accuracy ? b : a))
    : undefined;
  const status = firstString([manifest], S.status);
  let wallSeconds = firstNumber(mm, S.wallSeconds);
  let wallFromHistory = false;
  if (history.some((r) => finite(r.seconds))) {
    const epochs = history.reduce((s, r) => s + (finite(r.seconds) ? r.seconds : 0), 0);
    // A running run's manifest holds its time at the (re)start; its history has every epoch since.
    if (wallSeconds === undefined || (status === "running" && epochs > wallSeconds)) {
      wallSeconds = epochs;
      wallFromHistory = true;
    }
  }
  const finalTestAccuracy = firstNumber(m, S.accuracy) ??
    (finite(last?.test_accuracy) ? last.test_accuracy : undefined);
  const epochsPlanned = firstNumber([manifest], S.epochs);
  const epochsDone = history.length;
  const hasMetrics = firstNumber(m, S.accuracy) !== undefined;
  return {
    finalTestAccuracy,
    bestTestAccuracy: best?.test_accuracy ?? firstNumber(m, S.bestAccuracy),
    bestEpoch: best?.epoch,
    finalTrainAccuracy: finite(last?.train_accuracy) ? last.train_accuracy : undefined,
    nll: firstNumber(m, S.nll) ?? (finite(last?.test_nll) ? last.test_nll : undefined),
    ece10: firstNumber(m, S.ece10) ?? (finite(last?.test_ece) ? last.test_ece : undefined),
    ece15: firstNumber(m, S.ece15) ?? (finite(last?.test_ece15) ? last.test_ece15 : undefined),
    brier: firstNumber(m, S.brier) ?? (finite(last?.test_brier) ? last.test_brier : undefined),
    sigma: firstNumber(m, S.sigma),
    wallSeconds,
    wallFromHistory,
    adapter: firstString(mm, S.adapter),
    epochsDone,
    epochsPlanned,
    status,
    // Without a history (the results index) final metrics alone mean the run finished.
    finished: hasMetrics &&
      (epochsPlanned === undefined || historyOrUndefined === undefined || epochsDone >= epochsPlanned),
  };
}

const DASH = "—";

export function fixed(x: number | undefined, digits: number): string {
  return finite(x) ? x.toFixed(digits) : DASH;
}

/** ECE fraction shown x100 with two decimals, as in the paper. */
export function ece100(x: number | undefined): string {
  return finite(x) ? (x * 100).toFixed(2) : DASH;
}

/** 42.3 s, 12 min 05 s, 3 h 07 min. */
export function formatDuration(seconds: number | undefined): string {
  if (!finite(seconds) || seconds < 0) return DASH;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  const minutes = Math.round(s / 60);
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** Text safe inside a Markdown table cell. */
export function cell(text: string): string {
  return text.replace(/\r?\n/g, " ").replace(/\|/g, "\\|");
}

/** A relative link target: spaces and other specials percent-encoded, slashes kept. */
function href(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

function statusLine(k: KeyNumbers): string {
  const planned = k.epochsPlanned !== undefined ? ` of ${k.epochsPlanned}` : "";
  if (k.status) return `Status: ${k.status}; ${k.epochsDone}${planned} epochs completed.`;
  if (k.finished) return `Finished: ${k.epochsDone}${planned} epochs.`;
  if (k.epochsDone === 0) return "In progress: no epoch completed yet.";
  return `In progress: ${k.epochsDone}${planned} epochs completed.`;
}

const HISTORY_TAIL = 20;

function historyTable(history: HistoryRow[]): string {
  // The 15-bin ECE and the Brier score are optional in history.jsonl: columns only when some row has them.
  const has15 = history.some((r) => finite(r.test_ece15));
  const hasBrier = history.some((r) => finite(r.test_brier));
  const heads = ["Epoch", "Train loss", "Train acc.", "Test acc.", "Test NLL", "Test ECE ×100 (10 bins)"];
  if (has15) heads.push("Test ECE ×100 (15 bins)");
  if (hasBrier) heads.push("Test Brier");
  heads.push("Seconds");
  const rows = history.length > HISTORY_TAIL + 5 ? history.slice(-HISTORY_TAIL) : history;
  const body = rows.map((r) => {
    const cells = [
      finite(r.epoch) ? String(r.epoch) : DASH,
      fixed(r.train_loss, 4),
      fixed(r.train_accuracy, 4),
      fixed(r.test_accuracy, 4),
      fixed(r.test_nll, 4),
      ece100(r.test_ece),
    ];
    if (has15) cells.push(ece100(r.test_ece15));
    if (hasBrier) cells.push(fixed(r.test_brier, 4));
    cells.push(fixed(r.seconds, 1));
    return `| ${cells.join(" | ")} |`;
  });
  const note = rows.length < history.length
    ? `\nLast ${rows.length} of ${history.length} epochs; the full history is in \`history.jsonl\`.\n`
    : "";
  return `| ${heads.join(" | ")} |\n|${heads.map(() => "---:").join("|")}|\n${body.join("\n")}\n${note}`;
}

/** The manifest's hyperparameters ({name: value} or {name: {value, source}}) as a table, if it has any. */
function hyperparameterTable(manifest: object | null | undefined): string | undefined {
  const hp = at(manifest, "hyperparameters") ?? at(manifest, "config");
  if (hp === null || typeof hp !== "object" || Array.isArray(hp)) return undefined;
  const entries = Object.entries(hp as Record<string, unknown>);
  if (entries.length === 0) return undefined;
  const show = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v) ?? DASH);
  const rows = entries.map(([name, v]) => {
    const boxed = v !== null && typeof v === "object" && "value" in v;
    const value = boxed ? (v as { value: unknown }).value : v;
    const source = boxed ? (v as { source?: unknown }).source : undefined;
    return `| ${cell(name)} | ${cell(show(value))} | ${cell(source === undefined ? "" : show(source))} |`;
  });
  return ["| Hyperparameter | Value | Source |", "|---|---|---|", ...rows].join("\n") + "\n";
}

/** The Markdown of a run folder's README.md. */
export function runPage(run: RunPageInput): string {
  const history = run.history ?? [];
  const k = keyNumbers(run.metrics, run.manifest, history);
  const out: string[] = [`# ${run.name}`, "", statusLine(k), "", "## Key numbers", ""];
  const best = finite(k.bestTestAccuracy)
    ? `${k.bestTestAccuracy.toFixed(4)}${k.bestEpoch !== undefined ? ` (epoch ${k.bestEpoch})` : ""}`
    : DASH;
  const rows: [string, string][] = [
    ["Final test accuracy", fixed(k.finalTestAccuracy, 4)],
    ["Best test accuracy", best],
    ["Final train accuracy", fixed(k.finalTrainAccuracy, 4)],
    ["Test NLL", fixed(k.nll, 4)],
    ["Test ECE ×100 (10 bins)", ece100(k.ece10)],
    ["Test ECE ×100 (15 bins)", ece100(k.ece15)],
    ["Test Brier score", fixed(k.brier, 4)],
  ];
  if (k.sigma !== undefined) rows.push(["σ = exp(s/2)", fixed(k.sigma, 4)]);
  rows.push(
    ["Wall time", formatDuration(k.wallSeconds) + (k.wallFromHistory ? " (sum of epoch times)" : "")],
    ["Adapter", k.adapter ?? DASH],
  );
  out.push("| | |", "|---|---:|", ...rows.map(([a, b]) => `| ${cell(a)} | ${cell(b)} |`), "");

  if (run.figures?.length) {
    out.push("## Figures", "");
    for (const f of run.figures) {
      const alt = f.caption.replace(/[[\]]/g, "");
      const pdf = run.pdfs?.has(f.file) ? ` ([PDF](${href(pdfFileOf(f.file))}))` : "";
      out.push(`![${alt}](${href(f.file)})`, "", `*${f.caption.replace(/\*/g, "\\*")}*${pdf}`, "");
    }
  }

  out.push("## History", "");
  out.push(history.length ? historyTable(history) : "No completed epoch yet.\n");

  const hyper = hyperparameterTable(run.manifest);
  if (hyper) out.push("## Configuration", "", hyper);

  if (run.manifest && Object.keys(run.manifest).length) {
    out.push(
      "## Manifest",
      "",
      "<details><summary>manifest.json</summary>",
      "",
      "```json",
      JSON.stringify(run.manifest, null, 2),
      "```",
      "",
      "</details>",
      "",
    );
  }
  return out.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd() + "\n";
}

/** A Markdown link to `file` in the results folder `dir` (the folder itself when `file` is ""). */
function folderLink(text: string, dir: string, file: string): string {
  return `[${cell(text).replace(/[[\]]/g, "")}](${href(dir.replace(/\/+$/, ""))}/${file})`;
}

/** The Markdown of results/README.md: one row per run, linking to its folder's README. */
export function resultsIndex(runs: IndexEntry[], title = "Results", pages: IndexPage[] = []): string {
  const out = [`# ${title}`, ""];
  if (pages.length > 0) {
    out.push("Reports and studies:", "");
    for (const p of pages) out.push(`- ${folderLink(p.title, p.dir, "README.md")}`);
    out.push("");
  }
  if (runs.length === 0) {
    out.push("No runs yet.");
    return out.join("\n") + "\n";
  }
  out.push(
    "| Run | Status | Test accuracy | Best test accuracy | ECE ×100 (10 bins) | ECE ×100 (15 bins) | Wall time | Adapter |",
    "|---|---|---:|---:|---:|---:|---:|---|",
  );
  for (const run of runs) {
    const k = keyNumbers(run.metrics, run.manifest, run.history);
    const link = folderLink(run.name, run.dir, run.hasPage === false ? "" : "README.md");
    out.push(
      `| ${link} | ${cell(k.status ?? (k.finished ? "finished" : "in progress"))} | ${
        fixed(k.finalTestAccuracy, 4)
      } | ` +
        `${fixed(k.bestTestAccuracy, 4)} | ${ece100(k.ece10)} | ${ece100(k.ece15)} | ${
          formatDuration(k.wallSeconds)
        } | ` +
        `${cell(k.adapter ?? DASH)} |`,
    );
  }
  out.push("", "ECE is the expected calibration error over equal-width confidence bins, shown ×100.");
  return out.join("\n") + "\n";
}
