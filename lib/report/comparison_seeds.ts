// A comparison repeated over seeds (`deno task experiment fashion_lda_vs_softmax --seeds 1-5`): each seed
// trains every run of the comparison, and the question "is the LDA head better calibrated than softmax?"
// is answered by the distribution over seeds and by the per-seed differences, not by one pair of runs.

import type { Reliability } from "../types.ts";
import { type FinalMetrics, meanCI95, METRIC_COLUMNS, seedStat } from "./seeds.ts";

/** One finished run of one seed. */
export interface ComparisonSeedRun extends FinalMetrics {
  seed: number;
  /** The comparison's run id, e.g. "lda". */
  variant: string;
  /** Link target of the run's page, e.g. "seed-3/lda/README.md". */
  page: string;
}

/** A signed difference with an explicit "+", so that the sign reads at a glance. */
function signed(format: (v: number) => string): (v: number) => string {
  return (v) => (v >= 0 ? "+" : "") + format(v);
}

/**
 * The Markdown summary: every finished run by seed; each run's mean ± standard deviation (n - 1) and range
 * over its seeds; and, for a comparison of two runs, the second minus the first seed by seed (on the same
 * seed the two share their data order and encoder initialisation, so the difference is the heads' and
 * losses'), with its mean ± standard deviation and how many seeds each way.
 */
export function comparisonSeedsTable(
  runs: readonly ComparisonSeedRun[],
  variants: readonly { id: string; label: string }[],
  seeds: readonly number[],
): string {
  if (runs.length === 0) return `No run has finished yet (${seeds.length} seeds planned).`;
  const label = (id: string) => variants.find((v) => v.id === id)?.label ?? id;
  const order = (r: ComparisonSeedRun) => variants.findIndex((v) => v.id === r.variant);
  const sorted = [...runs].sort((a, b) => a.seed - b.seed || order(a) - order(b));
  const head = METRIC_COLUMNS.map((c) => c.head).join(" | ");
  const lines = [
    `| Seed | Run | ${head} |`,
    `|---:|---|${METRIC_COLUMNS.map(() => "---:").join("|")}|`,
    ...sorted.map((r) =>
      `| [${r.seed}](seed-${r.seed}/README.md) | [${label(r.variant)}](${r.page}) | ${
        METRIC_COLUMNS.map((c) => c.format(r[c.key])).join(" | ")
      } |`
    ),
    "",
    `Over the seeds (mean ± standard deviation, n - 1; then the range):`,
    "",
    `| Run | Seeds | ${head} |`,
    `|---|---:|${METRIC_COLUMNS.map(() => "---:").join("|")}|`,
  ];
  for (const v of variants) {
    const own = sorted.filter((r) => r.variant === v.id);
    if (own.length === 0) continue;
    const stats = METRIC_COLUMNS.map((c) => seedStat(own.map((r) => r[c.key])));
    lines.push(
      `| ${v.label} | ${own.length} | ${
        stats.map((s, i) => `${METRIC_COLUMNS[i].format(s.mean)} ± ${METRIC_COLUMNS[i].format(s.std)}`).join(
          " | ",
        )
      } |`,
      `| | | ${
        stats.map((s, i) => `${METRIC_COLUMNS[i].format(s.min)} – ${METRIC_COLUMNS[i].format(s.max)}`).join(
          " | ",
        )
      } |`,
    );
  }
  if (variants.length === 2) lines.push("", ...pairedDifferences(sorted, variants));
  return lines.join("\n");
}

/** The second run minus the first, seed by seed, over the seeds where both finished. */
function pairedDifferences(
  runs: readonly ComparisonSeedRun[],
  variants: readonly { id: string; label: string }[],
): string[] {
  const [a, b] = variants;
  const pairs: { seed: number; first: ComparisonSeedRun; second: ComparisonSeedRun }[] = [];
  for (const first of runs.filter((r) => r.variant === a.id)) {
    const second = runs.find((r) => r.variant === b.id && r.seed === first.seed);
    if (second) pairs.push({ seed: first.seed, first, second });
  }
  if (pairs.length === 0) return [`No seed has both ${a.label} and ${b.label} finished yet.`];
  const diffs = METRIC_COLUMNS.map((c) => pairs.map((p) => p.second[c.key] - p.first[c.key]));
  const stats = diffs.map((d) => seedStat(d));
  const lines = [
    `${b.label} minus ${a.label}, seed by seed:`,
    "",
    `| Seed | ${METRIC_COLUMNS.map((c) => c.head).join(" | ")} |`,
    `|---:|${METRIC_COLUMNS.map(() => "---:").join("|")}|`,
    ...pairs.map((p, j) =>
      `| ${p.seed} | ${METRIC_COLUMNS.map((c, i) => signed(c.format)(diffs[i][j])).join(" | ")} |`
    ),
    `| **mean ± std** | ${
      stats.map((s, i) => `${signed(METRIC_COLUMNS[i].format)(s.mean)} ± ${METRIC_COLUMNS[i].format(s.std)}`)
        .join(" | ")
    } |`,
  ];
  if (pairs.length >= 2) {
    // An interval that holds 0 says these seeds cannot tell the two runs apart on that metric.
    lines.push(
      `| **95 % CI of the mean** | ${
        stats.map((s, i) => {
          const ci = meanCI95(s)!, f = signed(METRIC_COLUMNS[i].format);
          return `${f(ci.lo)} to ${f(ci.hi)}`;
        }).join(" | ")
      } |`,
    );
  }
  lines.push("");
  const ece = diffs[METRIC_COLUMNS.findIndex((c) => c.key === "test_ece")];
  const acc = diffs[METRIC_COLUMNS.findIndex((c) => c.key === "test_accuracy")];
  const count = (d: number[], f: (x: number) => boolean) => d.filter(f).length;
  const ties = (d: number[]) => {
    const n = count(d, (x) => x === 0);
    return n === 0 ? "" : `, ${n} tie${n === 1 ? "" : "s"}`;
  };
  const lowerEce = `${count(ece, (x) => x > 0)} of ${pairs.length} seeds`;
  const higherAcc = `${count(acc, (x) => x < 0)}`;
  lines.push(
    `${a.label} had the lower ECE (10 bins) in ${lowerEce} (${b.label} in ${count(ece, (x) => x < 0)}` +
      `${ties(ece)}), the higher test accuracy in ${higherAcc} (${b.label} in ${count(acc, (x) => x > 0)}` +
      `${ties(acc)}).` + (pairs.length < 2 ? " One seed is no distribution: run more." : ""),
  );
  return lines;
}

/**
 * Several runs' reliability diagrams over the same bins pooled into one, as if their test predictions were
 * one set: counts add, and each bin's accuracy and confidence are the count-weighted means.
 */
export function poolReliability(rs: readonly Reliability[]): Reliability {
  if (rs.length === 0) throw new Error("poolReliability: no reliability diagrams");
  const first = rs[0];
  rs.forEach((r, i) => {
    const same = r.closed === first.closed && r.bins.length === first.bins.length &&
      r.bins.every((b, j) => b.lo === first.bins[j].lo && b.hi === first.bins[j].hi);
    if (!same) throw new Error(`poolReliability: diagram ${i} has other bins than diagram 0`);
  });
  const bins = first.bins.map((b, j) => {
    const count = rs.reduce((s, r) => s + r.bins[j].count, 0);
    // An empty bin reads 0, as lib/mda/metrics.ts writes it.
    const weighted = (key: "accuracy" | "confidence") =>
      count === 0 ? 0 : rs.reduce((s, r) => s + r.bins[j].count * r.bins[j][key], 0) / count;
    return { lo: b.lo, hi: b.hi, count, accuracy: weighted("accuracy"), confidence: weighted("confidence") };
  });
  const total = bins.reduce((s, b) => s + b.count, 0);
  const ece = bins.reduce((s, b) => s + (b.count / total) * Math.abs(b.accuracy - b.confidence), 0);
  return { closed: first.closed, bins, ece };
}
