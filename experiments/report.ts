// deno-lint-ignore-file no-explicit-any
// `deno task report NAME [--out DIR] [--pdf]`: summarises a multi-run experiment from whatever runs in its
// folder have finished. Comparison experiments get side-by-side reliability diagrams, confidence
// histograms and PCA embeddings with a table beside the paper, and both runs' test accuracy and ECE per
// epoch; sweeps get mean and population std per lambda, the three panels and a table beside the paper; a
// single-run experiment over --seeds gets each seed's final numbers with their mean, standard deviation,
// minimum and maximum, and the seeds' test accuracy and ECE curves; a comparison over --seeds gets a
// comparison page per seed (seed-N/README.md), every run's numbers with their distribution over the seeds
// and the per-seed differences, the reliability diagrams of all seeds' test predictions pooled, and the
// test accuracy and ECE curves (a colour per head, a line per seed). With --pdf each figure also as a PDF.

import { writeFileAtomic } from "../lib/io/atomic.ts";
import {
  confidenceHistogramFigure,
  latentFigure,
  reliabilityFigure,
  runsCurveFigure,
  sideBySide,
} from "../lib/plot/mod.ts";
import {
  type ComparisonSeedRun,
  comparisonSeedsTable,
  poolReliability,
} from "../lib/report/comparison_seeds.ts";
import {
  aggregateSweep,
  PAPER_FASHION_LDA_VS_SOFTMAX,
  PAPER_FASHION_SWEEP,
  type SeedRun,
  seedsTable,
  sweepFigures,
  type SweepRun,
  sweepTable,
} from "../lib/report/mod.ts";
import type { ConfidenceHistogram, LatentSnapshot, Reliability } from "../lib/types.ts";
import { exitWithError, experimentsHelp } from "./cli.ts";
import {
  checkNotSeedsFolder,
  checkOutputDir,
  checkPositionals,
  type CommandSpec,
  helpText,
  type ParsedFlags,
  parseFlags,
  seedsFlag,
  stringFlag,
  UsageError,
} from "./flags.ts";
import { type ExperimentConfig, EXPERIMENTS, seedsExperiment, seedsRefusal } from "./config.ts";
import { readJson } from "../lib/io/json.ts";
import { configurationDifferences, configurationOf } from "./run_config.ts";
import { readHistory, writeResultsIndex } from "./pages.ts";
import { writePdfsBeside } from "./figures.ts";

interface FinishedRun {
  id: string;
  label: string;
  dir: string;
  // JSON read back from the run folder (shapes written by experiments/run.ts).
  metrics: Record<string, any>;
  manifest: Record<string, any>;
}

/**
 * The finished runs in `out`, which must be runs of one configuration apart from what each run sets for
 * itself (its variant's values: a lambda, a seed): a table's mean over runs trained for other epochs, on
 * a data subset or from another checkpoint would mean nothing, and nothing on the page would show it.
 */
async function finishedRuns(exp: ExperimentConfig, out: string): Promise<FinishedRun[]> {
  const runs: FinishedRun[] = [];
  const free = new Set((exp.runs ?? []).flatMap((v) => Object.keys(v.overrides)));
  for (const v of exp.runs ?? []) {
    const dir = `${out}/${v.id}`;
    const manifest = await readJson(`${dir}/manifest.json`);
    const metrics = await readJson(`${dir}/metrics.json`);
    if (manifest?.status === "finished" && metrics) {
      runs.push({ id: v.id, label: v.label, dir, metrics, manifest });
    }
  }
  const [first, ...rest] = runs;
  for (const r of rest) {
    const differences = configurationDifferences(
      configurationOf(first.manifest),
      configurationOf(r.manifest),
      free,
    );
    if (differences.length > 0) {
      throw new UsageError(
        `${out}: its finished runs are not all of one configuration: ${r.id} differs from ${first.id} in ` +
          `${differences.join(", ")}; a report pools runs of one configuration only: continue the odd ` +
          `runs to match (--resume --epochs N), or move them out of the folder`,
      );
    }
  }
  return runs;
}

const pct = (x: number) => (100 * x).toFixed(2);

/**
 * A line naming the values that flags set over the experiment's pinned ones in its finished runs (e.g.
 * `--epochs 15`), since the description above it gives the pinned values; none when no flag did. Not the
 * seed where the page shows it already (`seedShown`: a table over seeds, a seed's page of one).
 */
function flagOverrides(exp: ExperimentConfig, runs: FinishedRun[], seedShown: boolean): string[] {
  const values = new Map<string, Set<string>>();
  for (const r of runs) {
    for (const [key, h] of Object.entries(r.manifest.hyperparameters ?? {}) as [string, any][]) {
      if (h?.source !== "flag" || (key === "seed" && seedShown)) continue;
      if (!values.has(key)) values.set(key, new Set());
      values.get(key)!.add(JSON.stringify(h.value));
    }
  }
  if (values.size === 0) return [];
  const pinned: Record<string, unknown> = { ...exp.pinned };
  const parts = [...values].map(([key, set]) =>
    `${key} ${[...set].join(", ")}` + (key in pinned ? ` (pinned ${JSON.stringify(pinned[key])})` : "")
  );
  return [`Set by flags over the pinned values: ${parts.join("; ")}.`, ""];
}

export async function writeReport(
  exp: ExperimentConfig,
  out: string,
  /** `seed`: this is one seed's page of a comparison over seeds (OUT/seed-N), which names its seed. */
  opts: { quiet?: boolean; pdf?: boolean; seed?: number } = {},
): Promise<string> {
  const runs = await finishedRuns(exp, out);
  await Deno.mkdir(out, { recursive: true });
  const total = exp.runs?.length ?? 0;
  const seedCount = exp.overSeeds ? `, ${exp.overSeeds.seeds.length} seeds` : "";
  const lines = [
    `# ${exp.name} (version ${exp.version})${opts.seed !== undefined ? `, seed ${opts.seed}` : seedCount}`,
    "",
    exp.description,
    "",
    // A seed's page names its seed in the heading, a table over seeds in its rows.
    ...flagOverrides(exp, runs, opts.seed !== undefined || exp.overSeeds !== undefined),
    `${runs.length} of ${total} runs finished.`,
    "",
  ];
  let section: ReportSection;
  if (exp.report === "comparison") section = await comparison(runs);
  else if (exp.report === "sweep") section = sweep(runs);
  else if (exp.report === "seeds") section = await seeds(runs, total);
  else if (exp.report === "comparison-seeds") section = await comparisonSeeds(exp, runs, out, opts.pdf);
  else throw new Error(`${exp.name} is a single-run experiment: its run folder's README.md is its report`);
  for (const [file, svg] of Object.entries(section.figures)) await writeFileAtomic(`${out}/${file}`, svg);
  await writeFileAtomic(`${out}/README.md`, [...lines, ...section.lines].join("\n") + "\n");
  if (opts.pdf) await writePdfsBeside(out, Object.keys(section.figures));
  // A report under results/ is listed in results/README.md, as a run is when it finishes (a seed's page is
  // reached from its experiment's).
  if (opts.seed === undefined) await writeResultsIndex(out);
  if (!opts.quiet) console.error(`report: ${out}/README.md (${runs.length}/${total} runs)`);
  return `${out}/README.md`;
}

/** A report's Markdown after its heading, and its figures: SVG text by file name. */
interface ReportSection {
  lines: string[];
  figures: Record<string, string>;
}

/** The comparison's table and side-by-side figures. */
async function comparison(runs: FinishedRun[]): Promise<ReportSection> {
  const lines: string[] = [];
  const figures: Record<string, string> = {};
  if (runs.length === 0) return { lines: ["No run has finished yet."], figures };
  const paper = PAPER_FASHION_LDA_VS_SOFTMAX.ece10 as Record<string, number>;
  lines.push(
    "| Run | Test accuracy | Test NLL | ECE ×100 (10 bins) | ECE ×100 (15 bins) | Brier | Paper ECE ×100 |",
    "|---|---:|---:|---:|---:|---:|---:|",
  );
  for (const r of runs) {
    const f = r.metrics.final;
    lines.push(
      `| [${r.label}](${r.id}/README.md) | ${f.test_accuracy.toFixed(4)} | ${f.test_nll.toFixed(4)} | ` +
        `${pct(f.test_ece)} | ${pct(f.test_ece15)} | ${f.test_brier.toFixed(4)} | ` +
        `${paper[r.id] !== undefined ? pct(paper[r.id]) : "—"} |`,
    );
  }
  lines.push("");
  const labels = runs.map((r) => r.label);
  const rel = runs.map((r) =>
    reliabilityFigure(r.metrics.reliability10 as Reliability, `${r.label}: reliability`)
  );
  figures["reliability.svg"] = sideBySide(rel, labels, { title: "Reliability diagrams (10 bins)" });
  const hist = runs.map((r) =>
    confidenceHistogramFigure(r.metrics.confidence_histogram as ConfidenceHistogram, `${r.label}: confidence`)
  );
  figures["confidence.svg"] = sideBySide(hist, labels, { title: "Confidence histograms" });
  // A run may lack its latent.json (trained without figures): each panel keeps its own run's title.
  const latents: string[] = [];
  const latentLabels: string[] = [];
  for (const r of runs) {
    const snap = (await readJson(`${r.dir}/latent.json`)) as LatentSnapshot | undefined;
    if (!snap) continue;
    latents.push(latentFigure(snap, `${r.label}: train embeddings`));
    latentLabels.push(r.label);
  }
  if (latents.length) {
    figures["latent.svg"] = sideBySide(latents, latentLabels, { title: "Train embeddings (PCA to 2-D)" });
  }
  // The paper compares the heads at the end of training; how calibration moves over training says whether
  // a comparison after few epochs can be read as the paper's.
  const curves = [];
  for (const r of runs) curves.push({ label: r.label, history: await readHistory(r.dir) });
  figures["test_accuracy.svg"] = runsCurveFigure(curves, "test_accuracy");
  figures["test_ece.svg"] = runsCurveFigure(curves, "test_ece");
  lines.push(
    "![Reliability diagrams](reliability.svg)",
    "",
    "![Confidence histograms](confidence.svg)",
    "",
    ...(latents.length ? ["![Train embeddings](latent.svg)", ""] : []),
    "![Test accuracy per epoch](test_accuracy.svg)",
    "",
    "![Test ECE per epoch](test_ece.svg)",
    "",
  );
  return { lines, figures };
}

/**
 * A comparison over seeds: each seed's own comparison page (seed-N/README.md, with its side-by-side
 * figures), then the table over the seeds, the pooled reliability diagrams and every run's test accuracy
 * and ECE per epoch.
 */
async function comparisonSeeds(
  exp: ExperimentConfig,
  runs: FinishedRun[],
  out: string,
  pdf?: boolean,
): Promise<ReportSection> {
  const { seeds, variants } = exp.overSeeds!;
  const comparison: ExperimentConfig = { ...exp, runs: variants, report: "comparison", overSeeds: undefined };
  const rows: ComparisonSeedRun[] = [];
  for (const seed of seeds) {
    const own = runs.filter((r) => r.id.startsWith(`seed-${seed}/`));
    if (own.length === 0) continue;
    await writeReport(comparison, `${out}/seed-${seed}`, { quiet: true, pdf, seed });
    for (const r of own) {
      const f = r.metrics.final;
      rows.push({
        seed,
        variant: r.id.slice(`seed-${seed}/`.length),
        page: `${r.id}/README.md`,
        test_accuracy: f.test_accuracy,
        test_nll: f.test_nll,
        test_ece: f.test_ece,
        test_ece15: f.test_ece15,
        test_brier: f.test_brier,
      });
    }
  }
  const lines = [comparisonSeedsTable(rows, variants!, seeds)];
  const figures: Record<string, string> = {};
  if (runs.length === 0) return { lines, figures };
  const paper = PAPER_FASHION_LDA_VS_SOFTMAX.ece10 as Record<string, number>;
  const quoted = variants!.filter((v) => paper[v.id] !== undefined);
  if (quoted.length) {
    lines.push(
      "",
      `The paper's one run of each (100 epochs, widths 64-64-128-128-256-256): ECE ×100 (10 bins) ` +
        quoted.map((v) => `${pct(paper[v.id])} (${v.label})`).join(", ") + ".",
    );
  }
  const pooled = variants!.flatMap((v) => {
    const own = runs.filter((r) => r.id.endsWith(`/${v.id}`));
    if (own.length === 0) return [];
    const r = poolReliability(own.map((o) => o.metrics.reliability10 as Reliability));
    return [{ label: `${v.label}, ${own.length} seed${own.length === 1 ? "" : "s"} pooled`, reliability: r }];
  });
  figures["reliability_pooled.svg"] = sideBySide(
    pooled.map((p) => reliabilityFigure(p.reliability, `${p.label}: reliability`)),
    pooled.map((p) => p.label),
    { title: "Reliability diagrams (10 bins), all seeds' test predictions pooled" },
  );
  // One colour per head, one line per seed: the heads' spreads over seeds side by side.
  const curves = [];
  for (const r of runs) {
    const variant = variants!.find((v) => r.id.endsWith(`/${v.id}`));
    curves.push({ label: r.label, group: variant?.label ?? r.label, history: await readHistory(r.dir) });
  }
  const seedCount = new Set(rows.map((r) => r.seed)).size;
  const perSeed = `one line per seed (${seedCount} seed${seedCount === 1 ? "" : "s"})`;
  figures["seeds_test_accuracy.svg"] = runsCurveFigure(
    curves,
    "test_accuracy",
    `Test accuracy per epoch, ${perSeed}`,
  );
  figures["seeds_test_ece.svg"] = runsCurveFigure(
    curves,
    "test_ece",
    `Test ECE ×100 (10 bins) per epoch, ${perSeed}`,
  );
  lines.push(
    "",
    "![Reliability diagrams, seeds pooled](reliability_pooled.svg)",
    "",
    "![Test accuracy per epoch, one line per run](seeds_test_accuracy.svg)",
    "",
    "![Test ECE per epoch, one line per run](seeds_test_ece.svg)",
    "",
    `Each seed's own comparison (side-by-side reliability diagrams, confidence histograms, embeddings): ` +
      seeds.filter((s) => rows.some((r) => r.seed === s)).map((s) => `[seed ${s}](seed-${s}/README.md)`)
        .join(", ") +
      ".",
  );
  return { lines, figures };
}

/** The sweep's table beside the paper and its three panels. */
function sweep(runs: FinishedRun[]): ReportSection {
  const points: SweepRun[] = [];
  for (const r of runs) {
    const f = r.metrics.final;
    if (typeof r.metrics.sigma !== "number") continue; // sigma exists for the LDA head only
    points.push({
      lambda: r.manifest.hyperparameters.lambda.value,
      seed: r.manifest.hyperparameters.seed.value,
      test_accuracy: f.test_accuracy,
      test_ece15: f.test_ece15,
      sigma: r.metrics.sigma,
    });
  }
  if (points.length === 0) return { lines: ["No run has finished yet."], figures: {} };
  const agg = aggregateSweep(points);
  const figures = Object.fromEntries(
    Object.entries(sweepFigures(agg)).map(([k, svg]) => [`sweep_${k}.svg`, svg]),
  );
  return {
    lines: [
      sweepTable(agg, PAPER_FASHION_SWEEP),
      "",
      "![Accuracy against lambda](sweep_accuracy.svg)",
      "",
      "![ECE against lambda](sweep_ece15.svg)",
      "",
      "![sigma against lambda](sweep_sigma.svg)",
    ],
    figures,
  };
}

/** The seeds' table and their test accuracy and ECE curves. */
async function seeds(runs: FinishedRun[], planned: number): Promise<ReportSection> {
  const rows: SeedRun[] = runs.map((r) => ({
    seed: r.manifest.hyperparameters.seed.value,
    page: `${r.id}/README.md`,
    test_accuracy: r.metrics.final.test_accuracy,
    test_nll: r.metrics.final.test_nll,
    test_ece: r.metrics.final.test_ece,
    test_ece15: r.metrics.final.test_ece15,
    test_brier: r.metrics.final.test_brier,
    epochs: r.metrics.epochs,
  }));
  if (runs.length === 0) return { lines: [seedsTable(rows, planned)], figures: {} };
  // Past tab10's ten colours, one colour for all seeds (a legend of repeated colours names nothing).
  const group = runs.length > 10 ? `${runs.length} seeds` : undefined;
  const curves = [];
  for (const r of runs) curves.push({ label: r.label, group, history: await readHistory(r.dir) });
  return {
    lines: [
      seedsTable(rows, planned),
      "",
      "![Test accuracy per epoch, one line per seed](seeds_test_accuracy.svg)",
      "",
      "![Test ECE per epoch, one line per seed](seeds_test_ece.svg)",
    ],
    figures: {
      "seeds_test_accuracy.svg": runsCurveFigure(
        curves,
        "test_accuracy",
        `Test accuracy per epoch, ${runs.length} seeds`,
      ),
      "seeds_test_ece.svg": runsCurveFigure(
        curves,
        "test_ece",
        `Test ECE ×100 (10 bins) per epoch, ${runs.length} seeds`,
      ),
    },
  };
}

const REPORTED = Object.keys(EXPERIMENTS).filter((k) => EXPERIMENTS[k].report);

export const REPORT_SPEC: CommandSpec = {
  name: "report",
  summary: "Summarises a multi-run experiment from whatever of its runs have finished: a README.md with a " +
    "table beside the paper's numbers, and side-by-side figures, in the experiment's folder.",
  positionals: [{ name: "NAME", meaning: `the experiment: ${REPORTED.join(" or ")}` }],
  flags: [
    {
      name: "out",
      kind: "path",
      value: "DIR",
      meaning:
        "the experiment's folder, holding one sub-folder per run; the report is written here (created)",
      default: "results/NAME",
    },
    {
      name: "seeds",
      kind: "string",
      value: "LIST",
      meaning: "an experiment run with `deno task experiment NAME --seeds LIST`: summarise its seeds",
      default: "NAME's own runs",
    },
    {
      name: "pdf",
      kind: "boolean",
      meaning: "also write each figure as a vector PDF beside its SVG (X.svg -> X.pdf), for pdflatex",
      default: "SVG only",
    },
  ],
  examples: [
    "deno task report fashion_lambda_sweep",
    "deno task report fashion_mda --seeds 1-5",
    "deno task report fashion_lda_vs_softmax_quick --seeds 1-3",
    "deno task report fashion_lambda_sweep --pdf",
    "deno task report fashion_lda_vs_softmax --out /tmp/cmp",
  ],
};

export function reportHelp(): string {
  return helpText({
    ...REPORT_SPEC,
    notes: [experimentsHelp((e) => e.report !== undefined, "experiments with a report (NAME):")],
  });
}

/** Parses and checks `deno task report` arguments (throws UsageError). */
export function parseReportArgs(
  args: string[],
): { experiment: ExperimentConfig; out: string; pdf: boolean; help: boolean } {
  const p = parseFlags(REPORT_SPEC, args);
  if (p.help) return { experiment: EXPERIMENTS[REPORTED[0]], out: "", pdf: false, help: true };
  return reportFromFlags(p);
}

function reportFromFlags(p: ParsedFlags) {
  checkPositionals(REPORT_SPEC, p);
  const name = p.positionals[0];
  const named = EXPERIMENTS[name];
  const seeds = seedsFlag(p);
  if (named && seeds) {
    const refusal = seedsRefusal(named);
    if (refusal) throw new UsageError(refusal);
    const out = stringFlag(p, "out", "path") ?? `results/${name}_seeds`;
    checkOutputDir("--out", out);
    return { experiment: seedsExperiment(named, seeds), out, pdf: p.values.pdf === true, help: false };
  }
  const experiment = named;
  if (!experiment) throw new UsageError(`unknown experiment "${name}" (reported: ${REPORTED.join(", ")})`);
  if (!experiment.report) {
    throw new UsageError(
      `${name} is a single-run experiment: its run folder's README.md is its report ` +
        `(report takes ${REPORTED.join(" or ")}, or NAME --seeds LIST for a run over seeds; ` +
        `\`deno task figures RUN_DIR\` redraws a run's page)`,
    );
  }
  const out = stringFlag(p, "out", "path") ?? `results/${name}`;
  checkOutputDir("--out", out);
  checkNotSeedsFolder("--out", out);
  return { experiment, out, pdf: p.values.pdf === true, help: false };
}

if (import.meta.main) {
  let args;
  try {
    args = parseReportArgs(Deno.args);
  } catch (e) {
    exitWithError(e);
  }
  if (args.help) {
    console.log(reportHelp());
    Deno.exit(0);
  }
  try {
    await writeReport(args.experiment, args.out, { pdf: args.pdf });
  } catch (e) {
    exitWithError(e);
  }
}
