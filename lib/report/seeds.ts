// One configuration over several seeds (`deno task experiment NAME --seeds 1-5`): a result that depends on the
// seed is reported as its distribution, each seed's final numbers beside their mean, standard deviation,
// minimum and maximum.

import { meanStd } from "./sweep.ts";

/** The final numbers a run is summarised by over seeds (its metrics.json "final"; ECE as fractions). */
export interface FinalMetrics {
  test_accuracy: number;
  test_nll: number;
  test_ece: number;
  test_ece15: number;
  test_brier: number;
}

/** The columns of every table over seeds, one per final metric, ECE x100 as the paper gives it. */
export const METRIC_COLUMNS: { key: keyof FinalMetrics; head: string; format: (v: number) => string }[] = [
  { key: "test_accuracy", head: "Test accuracy", format: (v) => v.toFixed(4) },
  { key: "test_nll", head: "Test NLL", format: (v) => v.toFixed(4) },
  { key: "test_ece", head: "ECE ×100 (10 bins)", format: (v) => (100 * v).toFixed(2) },
  { key: "test_ece15", head: "ECE ×100 (15 bins)", format: (v) => (100 * v).toFixed(2) },
  { key: "test_brier", head: "Brier", format: (v) => v.toFixed(4) },
];

/** What one finished seed's run ended with. */
export interface SeedRun extends FinalMetrics {
  seed: number;
  /** Link target of the run's page, e.g. "seed-3/README.md". */
  page: string;
  epochs: number;
}

/** A metric over the seeds: the standard deviation is the sample one (n - 1), 0 for a single seed. */
export interface SeedStat {
  n: number;
  mean: number;
  std: number;
  min: number;
  max: number;
}

/** The 0.975 quantile of Student's t for 1 to 30 degrees of freedom (scipy.stats.t.ppf, 4 decimals). */
const T975 = [
  12.7062,
  4.3027,
  3.1824,
  2.7764,
  2.5706,
  2.4469,
  2.3646,
  2.3060,
  2.2622,
  2.2281,
  2.2010,
  2.1788,
  2.1604,
  2.1448,
  2.1314,
  2.1199,
  2.1098,
  2.1009,
  2.0930,
  2.0860,
  2.0796,
  2.0739,
  2.0687,
  2.0639,
  2.0595,
  2.0555,
  2.0518,
  2.0484,
  2.0452,
  2.0423,
];

/**
 * The 0.975 quantile of Student's t with `df` degrees of freedom (the half-width factor of a two-sided 95 %
 * interval): the table up to 30, past it the Cornish-Fisher series in 1/df (Abramowitz and Stegun 26.7.5),
 * within 1e-4 there.
 */
export function studentT975(df: number): number {
  if (!(Number.isInteger(df) && df >= 1)) {
    throw new Error(`studentT975: df = ${df}, expected an integer >= 1`);
  }
  if (df <= T975.length) return T975[df - 1];
  const z = 1.959963984540054;
  const g1 = (z ** 3 + z) / 4;
  const g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96;
  const g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384;
  const g4 = (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160;
  return z + g1 / df + g2 / df ** 2 + g3 / df ** 3 + g4 / df ** 4;
}

/**
 * The two-sided 95 % confidence interval of the mean of the values `s` summarises (Student's t, n - 1
 * degrees of freedom): how far the seeds' mean may be from the mean over all seeds; undefined for fewer
 * than two values.
 */
export function meanCI95(s: SeedStat): { lo: number; hi: number } | undefined {
  if (s.n < 2) return undefined;
  const half = studentT975(s.n - 1) * s.std / Math.sqrt(s.n);
  return { lo: s.mean - half, hi: s.mean + half };
}

/** Mean, sample standard deviation (two-pass), minimum and maximum of a metric over the seeds. */
export function seedStat(values: readonly number[]): SeedStat {
  if (values.length === 0) throw new Error("seedStat: no values");
  const n = values.length;
  const { mean, std } = meanStd(values, n > 1 ? 1 : 0); // one seed: std 0, not 0/0
  return { n, mean, std, min: Math.min(...values), max: Math.max(...values) };
}

/**
 * The Markdown table: one row per seed (in seed order), then the mean, standard deviation, minimum and
 * maximum of each column over them, and a sentence with the test accuracy's distribution.
 */
export function seedsTable(runs: readonly SeedRun[], planned: number): string {
  if (runs.length === 0) return `No seed's run has finished yet (${planned} planned).`;
  const sorted = [...runs].sort((a, b) => a.seed - b.seed);
  const stats = METRIC_COLUMNS.map((c) => seedStat(sorted.map((r) => r[c.key])));
  const lines = [
    `| Seed | ${METRIC_COLUMNS.map((c) => c.head).join(" | ")} | Epochs |`,
    `|---:|${METRIC_COLUMNS.map(() => "---:").join("|")}|---:|`,
    ...sorted.map((r) =>
      `| [${r.seed}](${r.page}) | ${
        METRIC_COLUMNS.map((c) => c.format(r[c.key])).join(" | ")
      } | ${r.epochs} |`
    ),
    ...(["mean", "std", "min", "max"] as const).map((row) =>
      `| **${row}** | ${stats.map((s, i) => METRIC_COLUMNS[i].format(s[row])).join(" | ")} | |`
    ),
  ];
  const acc = stats[0];
  const ci = meanCI95(acc);
  lines.push(
    "",
    `Test accuracy over ${acc.n} of ${planned} seeds: ${acc.mean.toFixed(4)} ± ${acc.std.toFixed(4)} ` +
      `(mean ± standard deviation, n - 1), from ${acc.min.toFixed(4)} to ${acc.max.toFixed(4)}` +
      (ci ? `; 95 % confidence interval of the mean ${ci.lo.toFixed(4)} to ${ci.hi.toFixed(4)}.` : ".") +
      (acc.n < 2 ? " One seed is no distribution: run more." : ""),
  );
  return lines.join("\n");
}
