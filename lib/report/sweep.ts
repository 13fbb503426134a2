// Aggregation of the lambda sweep (dnll.md §5): per lambda, the mean and the POPULATION standard deviation
// (divide by n, as the paper reports) over seeds of final test accuracy, 15-bin ECE and sigma = exp(s/2);
// a Markdown table beside the paper's numbers, and the three sweep panels.

import { sweepFigure, type SweepPoint } from "../plot/sweep.ts";
import { PAPER_CITATION, PAPER_FASHION_SWEEP, type PaperValue } from "./paper.ts";

export interface SweepRun {
  lambda: number;
  seed: number;
  test_accuracy: number;
  /** 15-bin ECE, a fraction. */
  test_ece15: number;
  sigma: number;
}

export interface Stat {
  mean: number;
  /** Population standard deviation (divide by n). */
  std: number;
}

export interface SweepRow {
  lambda: number;
  /** log10(lambda), rounded to 1e-9 so 10^-2.5 reads -2.5. */
  logLambda: number;
  n: number;
  seeds: number[];
  accuracy: Stat;
  ece15: Stat;
  sigma: Stat;
}

export type SweepMetric = "accuracy" | "ece15" | "sigma";

/** What the paper states, in the shape of PAPER_FASHION_SWEEP (another dataset could supply its own). */
export interface PaperSweep {
  accuracy?: readonly PaperValue[];
  accuracyRange?: { lo: number; hi: number };
  ece15?: readonly PaperValue[];
  ece15Range?: { lo: number; hi: number };
  sigma?: readonly PaperValue[];
}

/**
 * Mean and standard deviation, two-pass so a constant column has std exactly 0: the population one by default
 * (the paper's sweep), the sample one with `ddof` 1 (the seeds report).
 */
export function meanStd(values: readonly number[], ddof: 0 | 1 = 0): Stat {
  if (values.length === 0) throw new Error("meanStd: no values");
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const variance = values.reduce((s, v) => s + (v - mean) * (v - mean), 0) / (values.length - ddof);
  return { mean, std: Math.sqrt(variance) };
}

function roundLog(lambda: number): number {
  return Math.round(Math.log10(lambda) * 1e9) / 1e9;
}

/** Groups runs by lambda (equal to 1e-9 relative, so 10 ** -2.5 and 0.0031622776601683794 meet). */
export function aggregateSweep(runs: SweepRun[]): SweepRow[] {
  runs.forEach((r, i) => {
    if (!(Number.isFinite(r.lambda) && r.lambda > 0)) {
      throw new Error(`aggregateSweep: runs[${i}].lambda = ${r.lambda}, expected a positive number`);
    }
    for (const key of ["seed", "test_accuracy", "test_ece15", "sigma"] as const) {
      if (!Number.isFinite(r[key])) {
        throw new Error(`aggregateSweep: runs[${i}].${key} = ${r[key]}, expected a finite number`);
      }
    }
  });
  const sorted = runs.map((r, i) => ({ r, i })).sort((a, b) =>
    a.r.lambda - b.r.lambda || a.r.seed - b.r.seed
  );
  const groups: SweepRun[][] = [];
  for (const { r } of sorted) {
    const last = groups[groups.length - 1];
    if (last && Math.abs(r.lambda - last[0].lambda) <= 1e-9 * last[0].lambda) last.push(r);
    else groups.push([r]);
  }
  return groups.map((g) => {
    const seeds = g.map((r) => r.seed);
    const dup = seeds.find((s, i) => seeds.indexOf(s) !== i);
    if (dup !== undefined) {
      throw new Error(
        `aggregateSweep: seed ${dup} appears twice at lambda ${g[0].lambda}, expected one run per seed`,
      );
    }
    return {
      lambda: g[0].lambda,
      logLambda: roundLog(g[0].lambda),
      n: g.length,
      seeds,
      accuracy: meanStd(g.map((r) => r.test_accuracy)),
      ece15: meanStd(g.map((r) => r.test_ece15)),
      sigma: meanStd(g.map((r) => r.sigma)),
    };
  });
}

/** Scale a metric is shown at: ECE as a percentage, the others as they are. */
function displayScale(metric: SweepMetric): number {
  return metric === "ece15" ? 100 : 1;
}

/** A metric of the aggregate as figure points (ECE x100). */
export function sweepPoints(agg: SweepRow[], metric: SweepMetric): SweepPoint[] {
  const k = displayScale(metric);
  return agg.map((row) => ({
    logLambda: row.logLambda,
    mean: row[metric].mean * k,
    std: row[metric].std * k,
  }));
}

/** The paper's values of a metric as figure points (ECE x100). */
export function paperPoints(metric: SweepMetric, paper: PaperSweep = PAPER_FASHION_SWEEP): SweepPoint[] {
  const k = displayScale(metric);
  return (paper[metric] ?? []).map((p) => ({
    logLambda: roundLog(p.lambda),
    mean: p.mean * k,
    ...(p.std !== undefined ? { std: p.std * k } : {}),
  }));
}

function sameLambda(a: number, b: number): boolean {
  return Math.abs(Math.log10(a) - Math.log10(b)) < 1e-6;
}

/** Lambda as a short decimal: 0.001, 0.00316, 0.316, 3.16, 10. */
export function formatLambda(lambda: number): string {
  return String(Number(lambda.toPrecision(3)));
}

function pm(stat: { mean: number; std?: number }, digits: number, scale = 1): string {
  const mean = (stat.mean * scale).toFixed(digits);
  return stat.std === undefined ? mean : `${mean} ± ${(stat.std * scale).toFixed(digits)}`;
}

const DIGITS: Record<SweepMetric, number> = { accuracy: 4, ece15: 2, sigma: 3 };

/**
 * The aggregate as a Markdown table; with `paper`, each metric gets a paper column where the spec gives a
 * value at that lambda, and the ranges the paper states for all lambdas follow the table as notes.
 */
export function sweepTable(agg: SweepRow[], paper?: PaperSweep): string {
  const metrics: { key: SweepMetric; head: string }[] = [
    { key: "accuracy", head: "Test accuracy" },
    { key: "ece15", head: "ECE ×100 (15 bins)" },
    { key: "sigma", head: "σ = exp(s/2)" },
  ];
  const withPaper = (key: SweepMetric) => paper !== undefined && (paper[key]?.length ?? 0) > 0;
  const header = ["λ", "log₁₀ λ", "seeds"];
  for (const m of metrics) {
    header.push(`${m.head}, mean ± std`);
    if (withPaper(m.key)) header.push(`${m.head}, paper`);
  }
  const lines = [
    `| ${header.join(" | ")} |`,
    `|${header.map((_, i) => (i < 3 ? "---" : "---:")).join("|")}|`,
  ];
  for (const row of agg) {
    const cells = [formatLambda(row.lambda), String(row.logLambda), String(row.n)];
    for (const m of metrics) {
      cells.push(pm(row[m.key], DIGITS[m.key], displayScale(m.key)));
      if (withPaper(m.key)) {
        const value = paper![m.key]!.find((p) => sameLambda(p.lambda, row.lambda));
        cells.push(value ? pm(value, DIGITS[m.key], displayScale(m.key)) : "—");
      }
    }
    lines.push(`| ${cells.join(" | ")} |`);
  }
  const notes: string[] = [];
  notes.push("Mean ± population standard deviation (divided by n) over seeds.");
  if (paper) {
    notes.push(`Paper: ${PAPER_CITATION}; "—" in a paper column: no value on record for that λ.`);
    if (paper.accuracyRange) {
      notes.push(
        `Paper: test accuracy ${paper.accuracyRange.lo.toFixed(3)}–${
          paper.accuracyRange.hi.toFixed(3)
        } at every λ.`,
      );
    }
    if (paper.ece15Range) {
      notes.push(
        `Paper: ECE ${(paper.ece15Range.lo * 100).toFixed(1)}–${
          (paper.ece15Range.hi * 100).toFixed(1)
        } % at every λ.`,
      );
    }
  }
  return lines.join("\n") + "\n\n" + notes.map((n) => `- ${n}`).join("\n") + "\n";
}

/** The paper's three panels: accuracy (+-2 std), ECE x100 and sigma (+-1 std), with the paper's values. */
export function sweepFigures(
  agg: SweepRow[],
  paper: PaperSweep | undefined = PAPER_FASHION_SWEEP,
  dataset = "Fashion-MNIST",
): { accuracy: string; ece15: string; sigma: string } {
  const seeds = agg.length ? Math.max(...agg.map((r) => r.n)) : 0;
  const label = `This reproduction (${seeds} seed${seeds === 1 ? "" : "s"})`;
  const range = (r: { lo: number; hi: number } | undefined, k: number) =>
    r ? { lo: r.lo * k, hi: r.hi * k, label: "Paper: range over λ" } : undefined;
  return {
    accuracy: sweepFigure(sweepPoints(agg, "accuracy"), {
      ylabel: "Test accuracy",
      band: 2,
      title: `${dataset}: test accuracy against λ`,
      label,
      paper: paper ? paperPoints("accuracy", paper) : undefined,
      paperRange: range(paper?.accuracyRange, 1),
    }),
    ece15: sweepFigure(sweepPoints(agg, "ece15"), {
      ylabel: "ECE ×100 (15 bins)",
      band: 1,
      title: `${dataset}: calibration error against λ`,
      label,
      paper: paper ? paperPoints("ece15", paper) : undefined,
      paperRange: range(paper?.ece15Range, 100),
    }),
    sigma: sweepFigure(sweepPoints(agg, "sigma"), {
      ylabel: "σ = exp(s/2)",
      band: 1,
      title: `${dataset}: learned σ against λ`,
      label,
      paper: paper ? paperPoints("sigma", paper) : undefined,
    }),
  };
}
