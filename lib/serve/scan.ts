// What the results server shows, read from a results folder without writing anything: every run folder
// (one with a manifest.json) with its key numbers, every report page (a folder with a README.md and no
// manifest), and one run's data for its page.

import { join } from "node:path";
import { processGone, type ProcessId } from "../io/process.ts";
import type { HistoryRow } from "../types.ts";
import { KILLED } from "./common.ts";

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

export interface RunSummary {
  /** The run folder relative to the results root, with "/" separators. */
  dir: string;
  name: string;
  /** The manifest's status, or KILLED where it says "running" and its process is known to have ended. */
  status: string;
  epochsDone: number;
  epochsTotal?: number;
  finalTestAccuracy?: number;
  bestTestAccuracy?: number;
  lastTrainLoss?: number;
  /** Seconds left at the mean epoch time so far (runs in progress only). */
  etaSeconds?: number;
  adapter?: string;
  softwareAdapter?: boolean;
  /** When history.jsonl or manifest.json last changed (ms since the epoch). */
  updated?: number;
  /** The training process the manifest names: an open event stream looks whether it is still alive. */
  process?: Partial<ProcessId>;
}

export interface ReportSummary {
  dir: string;
  title: string;
}

async function readJsonFile(path: string): Promise<Json | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return undefined;
  }
}

/**
 * history.jsonl's complete lines: a line still being appended (no newline yet, or not yet valid JSON) is
 * left for the next read.
 */
export function parseHistory(text: string): HistoryRow[] {
  const rows: HistoryRow[] = [];
  const end = text.lastIndexOf("\n");
  for (const line of text.slice(0, end + 1).split("\n")) {
    if (!line.trim()) continue;
    try {
      rows.push(JSON.parse(line));
    } catch {
      break;
    }
  }
  return rows;
}

export async function readHistoryFile(dir: string): Promise<HistoryRow[]> {
  try {
    return parseHistory(await Deno.readTextFile(join(dir, "history.jsonl")));
  } catch {
    return [];
  }
}

async function mtime(path: string): Promise<number | undefined> {
  try {
    return (await Deno.stat(path)).mtime?.getTime();
  } catch {
    return undefined;
  }
}

export function runName(manifest: Json | undefined, dir: string): string {
  if (!manifest) return dir;
  return manifest.run_label
    ? `${manifest.experiment_name} / ${manifest.run_label}`
    : manifest.experiment_name ?? dir;
}

/** A run's files as its pages use them. */
export interface RunFiles {
  manifest?: Json;
  history: HistoryRow[];
  /** metrics.json, only where it is the final evaluation of the run as it stands (readRun). */
  metrics?: Json;
}

/**
 * A run's manifest, history and metrics. A finished run resumed for more epochs keeps its old metrics.json
 * while it trains again: that file is the run's final evaluation only where the run is finished and the
 * file counts as many epochs as the history has lines. The manifest is read first: the trainer writes it
 * "finished" after the other two.
 */
export async function readRun(abs: string): Promise<RunFiles> {
  const manifest = await readJsonFile(join(abs, "manifest.json"));
  const history = await readHistoryFile(abs);
  const metrics = await readJsonFile(join(abs, "metrics.json"));
  const current = manifest?.status === "finished" && metrics?.epochs === history.length;
  return { manifest, history, metrics: current ? metrics : undefined };
}

/** Key numbers of one run folder (absolute path `abs`, shown as `dir`), from `files` when already read. */
export async function summarizeRun(abs: string, dir: string, files?: RunFiles): Promise<RunSummary> {
  const { manifest, metrics, history } = files ?? await readRun(abs);
  const last = history[history.length - 1];
  const total = manifest?.hyperparameters?.epochs?.value as number | undefined;
  const owner = manifest?.process as Partial<ProcessId> | undefined;
  let status = (manifest?.status as string) ?? "unknown";
  if (status === "running" && processGone(owner)) status = KILLED;
  let best: number | undefined;
  for (const r of history) {
    if (Number.isFinite(r.test_accuracy) && !(r.test_accuracy <= (best ?? -1))) best = r.test_accuracy;
  }
  let etaSeconds: number | undefined;
  if (status === "running" && total !== undefined && history.length) {
    const mean = history.reduce((a, r) => a + r.seconds, 0) / history.length;
    etaSeconds = Math.max(0, (total - last.epoch) * mean);
  }
  const updated = Math.max(
    (await mtime(join(abs, "history.jsonl"))) ?? 0,
    (await mtime(join(abs, "manifest.json"))) ?? 0,
  );
  return {
    dir,
    name: runName(manifest, dir),
    status,
    epochsDone: last?.epoch ?? 0,
    epochsTotal: total,
    finalTestAccuracy: metrics?.final?.test_accuracy ?? last?.test_accuracy,
    bestTestAccuracy: best,
    lastTrainLoss: last?.train_loss,
    etaSeconds,
    adapter: manifest?.adapter?.description,
    softwareAdapter: manifest?.adapter?.isSoftware,
    updated: updated || undefined,
    process: owner,
  };
}

/** Every run and report page below root (symlinks and hidden folders are not followed), sorted. */
export async function scanResults(root: string): Promise<{ runs: RunSummary[]; reports: ReportSummary[] }> {
  const runs: RunSummary[] = [];
  const reports: ReportSummary[] = [];
  const walk = async (rel: string[], depth: number) => {
    const abs = join(root, ...rel);
    const entries: Deno.DirEntry[] = [];
    try {
      for await (const e of Deno.readDir(abs)) entries.push(e);
    } catch {
      return;
    }
    const names = new Set(entries.map((e) => e.name));
    const dir = rel.join("/");
    if (rel.length && names.has("manifest.json")) {
      runs.push(await summarizeRun(abs, dir));
      return;
    }
    if (rel.length && names.has("README.md")) {
      const heading = (await Deno.readTextFile(join(abs, "README.md")).catch(() => "")).match(/^# (.+)$/m);
      reports.push({ dir, title: heading ? heading[1] : dir });
    }
    if (depth >= 4) return;
    for (const e of entries) {
      if (e.isDirectory && !e.name.startsWith(".")) await walk([...rel, e.name], depth + 1);
    }
  };
  await walk([], 0);
  const order = (a: { dir: string }, b: { dir: string }) =>
    a.dir.localeCompare(b.dir, "en", { numeric: true });
  return { runs: runs.sort(order), reports: reports.sort(order) };
}

/** Everything a run's page draws: the same files `deno task figures` reads. */
export async function runData(abs: string, dir: string): Promise<Json> {
  const files = await readRun(abs);
  return {
    dir,
    summary: await summarizeRun(abs, dir, files),
    ...files,
    latent: await readJsonFile(join(abs, "latent.json")),
    components: await readJsonFile(join(abs, "components.json")),
    figures: await readJsonFile(join(abs, "figures.json")),
  };
}
