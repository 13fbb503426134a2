// What a configuration reaches across seeds, read from the runs of our engine kept under results/: the seed
// studies' (results/seed_study*/engine-SEED: one folder per configuration studied, e.g. seed_study at 2
// epochs, seed_study_10_epochs) and those of `deno task experiment NAME --seeds` (results/*_seeds/seed-N,
// or seed-N/ID for a comparison's runs), so that a finished run's one number is shown beside the
// distribution it is one draw of. Runs count when they are of the same experiment with every
// hyperparameter but the seed equal to this run's; they are grouped by the backend they ran on, because
// "same bits" holds per backend (README) and so does a seed's result. So a seed counts once per backend
// (the first folder in name order), and this run's own seed not at all: another folder's run of it is the
// same draw, not another one.

import { fileURLToPath } from "node:url";
import type { AdapterReport } from "../lib/gpu/device.ts";
import type { RunRequest } from "./cli.ts";
import { readJson } from "../lib/io/json.ts";
import {
  configurationDifferences,
  configurationOf,
  requestConfiguration,
  type RunConfiguration,
} from "./run_config.ts";

/** What runs of a seed study may differ in. */
const SEED = new Set(["seed"]);

const RESULTS = new URL("../results/", import.meta.url);

export interface SeedStats {
  backend: string;
  n: number;
  mean: number;
  min: number;
  max: number;
  /** The study folders (under results/) these runs are in. */
  folders: string[];
}

/**
 * Backend a study run was made on. Manifests written before the backend was recorded say "default": those
 * runs (2026-11-29) were made on a machine whose only WebGPU adapter was GL llvmpipe (its first epoch was
 * reproduced to the bit through GL later, see results/seed_study/README.md).
 */
function studyBackend(adapter: Record<string, unknown> | undefined): string {
  const b = adapter?.backend;
  return typeof b === "string" && b !== "default" ? b : "gl";
}

/** The folders of runs over seeds in resultsDir: every folder named seed_study* or *_seeds, sorted. */
function studyFolders(resultsDir: URL): string[] {
  try {
    return [...Deno.readDirSync(resultsDir)]
      .filter((e) => e.isDirectory && (e.name.startsWith("seed_study") || e.name.endsWith("_seeds")))
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

/**
 * The run folders of one study folder: engine-SEED (a seed study), seed-N (a single-run experiment over
 * --seeds) and seed-N/ID (a comparison over --seeds).
 */
function runFolders(studyDir: URL): URL[] {
  const dirs = (at: URL) => [...Deno.readDirSync(at)].filter((e) => e.isDirectory).map((e) => e.name);
  return dirs(studyDir).flatMap((name) => {
    const dir = new URL(`${name}/`, studyDir);
    if (name.startsWith("engine-")) return [dir];
    if (!name.startsWith("seed-")) return [];
    try {
      Deno.statSync(new URL("manifest.json", dir));
      return [dir];
    } catch {
      return dirs(dir).map((id) => new URL(`${id}/`, dir));
    }
  });
}

/**
 * Per backend, the final test accuracy of the kept runs of this configuration (run_config.ts: all but the
 * seed alike), one per seed, other than its own seed; also leaving out the run in `ownDir` (a run of
 * --seeds is itself in a folder read here).
 */
export async function seedStudyStats(
  config: RunConfiguration,
  resultsDir: URL = RESULTS,
  ownDir?: string,
): Promise<SeedStats[]> {
  const byBackend = new Map<string, Map<unknown, { accuracy: number; folder: string }>>();
  const own = ownDir === undefined ? undefined : realPath(ownDir);
  for (const folder of studyFolders(resultsDir)) {
    for (const dir of runFolders(new URL(`${folder}/`, resultsDir))) {
      if (own !== undefined && realPath(fileURLToPath(dir)) === own) continue;
      const run = await studyRun(dir, config);
      if (run === undefined || run.seed === config.hyper.seed) continue;
      const seeds = byBackend.get(run.backend) ?? new Map();
      if (!seeds.has(run.seed)) seeds.set(run.seed, { accuracy: run.accuracy, folder });
      byBackend.set(run.backend, seeds);
    }
  }
  return [...byBackend].sort(([a], [b]) => a.localeCompare(b)).map(([backend, seeds]) => {
    const runs = [...seeds.values()];
    const xs = runs.map((r) => r.accuracy);
    return {
      backend,
      n: xs.length,
      mean: xs.reduce((a, b) => a + b, 0) / xs.length,
      min: Math.min(...xs),
      max: Math.max(...xs),
      folders: [...new Set(runs.map((r) => r.folder))].sort(),
    };
  });
}

/** The folder's canonical path, or the path as given when it does not exist. */
function realPath(path: string): string {
  try {
    return Deno.realPathSync(path);
  } catch {
    return path;
  }
}

/** A run folder's backend and accuracy when it is a finished engine run of this configuration. */
async function studyRun(
  dir: URL,
  config: RunConfiguration,
): Promise<{ backend: string; seed: unknown; accuracy: number } | undefined> {
  const manifest = await readJson(fileURLToPath(new URL("manifest.json", dir)));
  const metrics = await readJson(fileURLToPath(new URL("metrics.json", dir)));
  const accuracy = (metrics?.final as Record<string, unknown> | undefined)?.test_accuracy;
  if (!manifest || manifest.status !== "finished" || typeof accuracy !== "number") return undefined;
  const theirs = configurationOf(manifest);
  if (configurationDifferences(config, theirs, SEED).length > 0) return undefined;
  const backend = studyBackend(manifest.adapter as Record<string, unknown> | undefined);
  return { backend, seed: theirs.hyper.seed, accuracy };
}

/** The line printed at the end of a run: its own accuracy beside the study's spread, or undefined. */
export function formatSeedSpread(
  stats: SeedStats[],
  backend: string,
  seed: unknown,
  accuracy: number | undefined,
): string | undefined {
  if (stats.length === 0) return undefined;
  const own = accuracy === undefined ? "" : `this run (seed ${seed}, ${backend}): ${accuracy.toFixed(4)}; `;
  const parts = stats.map((s) =>
    `${s.n} other seed${s.n === 1 ? "" : "s"} on ${s.backend}: mean ${s.mean.toFixed(3)}, range ${
      s.min.toFixed(3)
    }-${s.max.toFixed(3)}`
  );
  const sameBackend = stats.some((s) => s.backend === backend);
  const folders = [...new Set(stats.flatMap((s) => s.folders))].map((f) => `results/${f}`).join(", ");
  return `test accuracy across seeds (${folders}): ${own}${parts.join("; ")}` +
    (sameBackend ? "" : ` (none on ${backend}: its bits differ, its spread is not measured)`);
}

export async function seedSpread(req: RunRequest, report: AdapterReport): Promise<string | undefined> {
  const stats = await seedStudyStats(requestConfiguration(req), RESULTS, req.out);
  const history = await readJson(`${req.out}/metrics.json`);
  const acc = (history?.final as Record<string, unknown> | undefined)?.test_accuracy;
  return formatSeedSpread(stats, report.backend, req.hyper.seed, typeof acc === "number" ? acc : undefined);
}
