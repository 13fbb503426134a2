// README.md of a run folder and the index of results/, both rebuilt from what is on disk.

import { basename, dirname, relative } from "node:path";
import { existsSync } from "node:fs";
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { readJson } from "../lib/io/json.ts";
import { pdfFileOf } from "../lib/plot/pdf.ts";
import { type IndexEntry, type IndexPage, resultsIndex, runPage } from "../lib/report/mod.ts";
import type { HistoryRow } from "../lib/types.ts";

export async function readHistory(dir: string): Promise<HistoryRow[]> {
  try {
    const text = await Deno.readTextFile(`${dir}/history.jsonl`);
    return text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

/** Writes dir's README.md (or outDir's, when the page is drawn elsewhere) from the files in dir. */
export async function writeRunPage(dir: string, outDir = dir): Promise<void> {
  const manifest = await readJson(`${dir}/manifest.json`);
  const metrics = await readJson(`${dir}/metrics.json`);
  const figures = (await readJson(`${outDir}/figures.json`)) as unknown as
    | { file: string; caption: string }[]
    | undefined;
  const name = manifest?.run_id
    ? `${manifest.experiment_name} / ${manifest.run_label}`
    : (manifest?.experiment_name as string) ?? dir.split("/").pop()!;
  // Figures drawn with --pdf link their PDF too.
  const pdfs = new Set(
    (figures ?? []).map((f) => f.file).filter((f) => existsSync(`${outDir}/${pdfFileOf(f)}`)),
  );
  const page = runPage({
    name,
    manifest,
    metrics,
    history: await readHistory(dir),
    figures: figures ?? [],
    pdfs,
  });
  await writeFileAtomic(`${outDir}/README.md`, page);
}

/**
 * Rebuilds results/README.md from every run folder below it, when the run lives under a folder named
 * "results" (a run written elsewhere with --out leaves no index behind).
 */
export async function writeResultsIndex(runDir: string): Promise<void> {
  let root = dirname(runDir.replace(/\/+$/, ""));
  while (basename(root) !== "results") {
    const up = dirname(root);
    if (up === root) return;
    root = up;
  }
  const runs: IndexEntry[] = [];
  const pages: IndexPage[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isDirectory) continue;
      const sub = `${dir}/${e.name}`;
      if (existsSync(`${sub}/manifest.json`)) {
        const manifest = await readJson(`${sub}/manifest.json`);
        runs.push({
          dir: relative(root, sub),
          name: relative(root, sub),
          manifest,
          metrics: await readJson(`${sub}/metrics.json`),
          hasPage: existsSync(`${sub}/README.md`),
          history: await readHistory(sub),
        });
      } else {
        if (existsSync(`${sub}/README.md`)) {
          const heading = (await Deno.readTextFile(`${sub}/README.md`)).match(/^# (.+)$/m);
          pages.push({ dir: relative(root, sub), title: heading ? heading[1] : relative(root, sub) });
        }
        await walk(sub); // multi-run experiments keep their runs one level down
      }
    }
  };
  await walk(root);
  runs.sort((a, b) => a.dir.localeCompare(b.dir, "en", { numeric: true }));
  pages.sort((a, b) => a.dir.localeCompare(b.dir));
  await writeFileAtomic(`${root}/README.md`, resultsIndex(runs, "Results", pages));
}
