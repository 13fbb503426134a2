// A results folder for the server's tests, written by the test (no GPU, no training): one finished run
// whose SVG files are drawn from its saved data by the runner's own figure function, one run in progress
// (two epochs of ten), a report page, and a secret file plus symlinks outside the folder.

import { encodeComponents, runFigureSvgs } from "../experiments/run_figures.ts";
import { evaluateLogits } from "../lib/mda/metrics.ts";
import { Rng } from "../lib/rng.ts";
import { FASHION_CLASSES, type HistoryRow, type LatentSnapshot } from "../lib/types.ts";
import { ok } from "node:assert/strict";
import { bundleClient } from "../lib/serve/bundle.ts";
import { startServer } from "../lib/serve/server.ts";
import { tempDir } from "./util.ts";

export const SECRET = "secret-outside-the-results-folder";

/** One epoch's line; `better` lifts the accuracies (the finished run), so compared curves stay apart. */
export function historyRow(epoch: number, better = 0): HistoryRow {
  return {
    epoch,
    train_loss: 2 / epoch - better,
    train_accuracy: 0.5 + 0.04 * epoch + better,
    test_accuracy: 0.48 + 0.04 * epoch + better,
    test_nll: 1 / epoch,
    test_ece: 0.05,
    test_ece15: 0.05,
    test_brier: 0.3,
    seconds: 30,
  };
}

const line = (r: HistoryRow) => JSON.stringify(r) + "\n";

function manifest(status: string, epochs: number, extra: Record<string, unknown> = {}) {
  return {
    ...extra,
    experiment_name: "fashion_mda_quick",
    experiment_version: 2,
    description: "a test run",
    status,
    hyperparameters: { epochs: { value: epochs, source: "flag" }, lr: { value: 0.001, source: "pinned" } },
    adapter: { description: "Test adapter (llvmpipe)", isSoftware: true, backend: "vulkan" },
  };
}

/**
 * A run folder as the trainer leaves it: its manifest (`status`, `epochs` planned, `extra` fields such as
 * its process) and one history line for each of `epochsDone`.
 */
export async function writeRun(
  dir: string,
  status: string,
  epochs: number,
  epochsDone: number,
  extra: Record<string, unknown> = {},
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/manifest.json`, JSON.stringify(manifest(status, epochs, extra)));
  const rows = Array.from({ length: epochsDone }, (_, i) => line(historyRow(i + 1)));
  await Deno.writeTextFile(`${dir}/history.jsonl`, rows.join(""));
}

/** Writes the fixture under a new temp folder; returns its paths. */
export async function makeResults(): Promise<
  { base: string; root: string; finished: string; running: string }
> {
  const base = await tempDir("mda-serve-test-");
  const root = `${base}/results`;
  const finished = `${root}/done_run`, running = `${root}/sweep/live run`;
  await Deno.mkdir(finished, { recursive: true });
  await Deno.mkdir(`${base}/outside`);
  await Deno.writeTextFile(`${base}/outside/secret.txt`, SECRET);
  await Deno.writeTextFile(`${base}/secret.txt`, SECRET);
  await Deno.symlink(`${base}/outside`, `${root}/link_dir`);
  await Deno.symlink(`${base}/outside/secret.txt`, `${root}/link_file.txt`);

  // The finished run: history, metrics with the final evaluation, latent.json, components.json, and the
  // SVG files drawn from exactly that data.
  const rng = new Rng(5);
  const n = 300;
  const logits = Float32Array.from({ length: n * 10 }, () => rng.normal() * 3);
  const labels = Array.from({ length: n }, () => rng.int(10));
  const ev = evaluateLogits(logits, labels, 10);
  const history = [1, 2, 3].map((e) => historyRow(e, 0.05));
  const latent: LatentSnapshot = {
    dim: 2,
    z: Array.from({ length: 2 * n }, () => Math.round(rng.normal() * 1e4) / 1e4),
    labels,
    means: Array.from({ length: 40 }, () => rng.normal()),
    weights: Array.from({ length: 20 }, () => 0.5),
    components: 2,
    classNames: [...FASHION_CLASSES],
  };
  const components = {
    classNames: [...FASHION_CLASSES],
    rows: [0, 1].map((k) => ({
      classIndex: 2,
      component: k,
      weight: 0.5,
      images: [0, 1, 2].map(() => Array.from({ length: 784 }, () => rng.int(256))),
    })),
  };
  await Deno.writeTextFile(`${finished}/manifest.json`, JSON.stringify(manifest("finished", 3)));
  await Deno.writeTextFile(`${finished}/history.jsonl`, history.map(line).join(""));
  const metrics = {
    epochs: history.length,
    final: { test_accuracy: history[2].test_accuracy, test_nll: 0.5 },
    reliability10: ev.reliability10,
    confidence_histogram: ev.histogram,
  };
  await Deno.writeTextFile(`${finished}/metrics.json`, JSON.stringify(metrics));
  await Deno.writeTextFile(`${finished}/latent.json`, JSON.stringify(latent));
  await Deno.writeTextFile(`${finished}/components.json`, JSON.stringify(encodeComponents(components)));
  const figures = runFigureSvgs(JSON.parse(JSON.stringify({
    name: "fashion_mda_quick",
    history,
    latent,
    components,
    reliability10: ev.reliability10,
    histogram: ev.histogram,
  })));
  for (const f of figures) await Deno.writeTextFile(`${finished}/${f.file}`, f.svg);
  await Deno.writeTextFile(
    `${finished}/figures.json`,
    JSON.stringify(figures.map(({ file, caption }) => ({ file, caption }))),
  );

  // A run in progress (a space in its folder name on purpose).
  await writeRun(running, "running", 10, 2);

  // A report page linking to its run.
  await Deno.writeTextFile(
    `${root}/sweep/README.md`,
    "# A test sweep\n\n| Run | acc |\n|---|---:|\n| [live](live%20run/README.md) | 0.5 |\n\n![fig](fig.svg)\n",
  );
  await Deno.writeTextFile(`${root}/sweep/fig.svg`, figures[0].svg);
  return { base, root, finished, running };
}

/** Appends one epoch's line to a run's history.jsonl (as a run would, one line per epoch). */
export async function appendEpoch(runDir: string, epoch: number): Promise<void> {
  await Deno.writeTextFile(`${runDir}/history.jsonl`, line(historyRow(epoch)), { append: true });
}

/** Every file below dir with its size and modification time: equal before and after means nothing written. */
export async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      const st = await Deno.lstat(p);
      out.push(`${p} ${st.size} ${st.mtime?.getTime()}`);
      if (e.isDirectory) await walk(p);
    }
  };
  await walk(dir);
  return out.sort();
}

/**
 * The results server over `root` with the real page script (bundled here), on a free loopback port, for the
 * tests that open its pages in a browser; `url` is its address, `stop` ends it.
 */
export async function serveResults(
  root: string,
): Promise<{ url: string; openStreams: () => number; stop: () => Promise<void> }> {
  const client = await bundleClient();
  ok(client.js, `the page script did not bundle: ${client.error}`);
  const ac = new AbortController();
  let port = 0;
  const { server, results } = startServer({ root, client, pollMs: 100 }, {
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen: (a) => port = a.port,
  });
  return {
    url: `http://127.0.0.1:${port}`,
    openStreams: () => results.openStreams,
    stop: async () => {
      ac.abort();
      await server.finished;
    },
  };
}
