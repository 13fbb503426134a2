// What a configuration reaches across seeds, read from the seed study's runs of our engine
// (results/seed_study/engine-SEED/{manifest,metrics}.json), so that a finished run's one number is shown
// beside the distribution it is one draw of. Runs count when they are of the same experiment with every
// hyperparameter but the seed equal to this run's; they are grouped by the backend they ran on, because
// "same bits" holds per backend (README) and so does a seed's result.

import type { AdapterReport } from "../lib/gpu/device.ts";
import type { RunRequest } from "./cli.ts";
import { readJson } from "./pages.ts";

const STUDY = new URL("../results/seed_study/", import.meta.url);

export interface SeedStats {
  backend: string;
  n: number;
  mean: number;
  min: number;
  max: number;
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

/** Per backend, the final test accuracy of the study's runs of this configuration (any seed). */
export async function seedStudyStats(
  name: string,
  hyper: Record<string, unknown>,
  studyDir: URL = STUDY,
): Promise<SeedStats[]> {
  const byBackend = new Map<string, number[]>();
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(studyDir)];
  } catch {
    return [];
  }
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  for (const e of entries) {
    if (!e.isDirectory || !e.name.startsWith("engine-")) continue;
    const manifest = await readJson(new URL(`${e.name}/manifest.json`, studyDir).pathname);
    const metrics = await readJson(new URL(`${e.name}/metrics.json`, studyDir).pathname);
    const acc = (metrics?.final as Record<string, unknown> | undefined)?.test_accuracy;
    if (!manifest || manifest.status !== "finished" || typeof acc !== "number") continue;
    if (manifest.experiment_name !== name) continue;
    const theirs = manifest.hyperparameters as Record<string, { value: unknown }> | undefined;
    const matches = Object.entries(hyper).every(([k, v]) => k === "seed" || same(theirs?.[k]?.value, v));
    if (!matches) continue;
    const backend = studyBackend(manifest.adapter as Record<string, unknown> | undefined);
    byBackend.set(backend, [...(byBackend.get(backend) ?? []), acc]);
  }
  return [...byBackend].sort(([a], [b]) => a.localeCompare(b)).map(([backend, xs]) => ({
    backend,
    n: xs.length,
    mean: xs.reduce((a, b) => a + b, 0) / xs.length,
    min: Math.min(...xs),
    max: Math.max(...xs),
  }));
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
    `${s.n} seeds on ${s.backend}: mean ${s.mean.toFixed(3)}, range ${s.min.toFixed(3)}-${s.max.toFixed(3)}`
  );
  const sameBackend = stats.some((s) => s.backend === backend);
  return `test accuracy across seeds (results/seed_study): ${own}${parts.join("; ")}` +
    (sameBackend ? "" : ` (none on ${backend}: its bits differ, its spread is not measured)`);
}

export async function seedSpread(req: RunRequest, report: AdapterReport): Promise<string | undefined> {
  const stats = await seedStudyStats(req.experiment.name, req.hyper as unknown as Record<string, unknown>);
  const history = await readJson(`${req.out}/metrics.json`);
  const acc = (history?.final as Record<string, unknown> | undefined)?.test_accuracy;
  return formatSeedSpread(stats, report.backend, req.hyper.seed, typeof acc === "number" ? acc : undefined);
}
