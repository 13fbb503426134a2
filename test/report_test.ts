// Markdown pages and the lambda-sweep aggregation: population statistics by hand, paper numbers exactly as
// the spec states them, and pages that survive a run still in progress.

import { deepStrictEqual as assertEquals, ok as assert, throws as assertThrows } from "node:assert/strict";
import {
  aggregateSweep,
  formatDuration,
  formatLambda,
  keyNumbers,
  PAPER_FASHION_SWEEP,
  paperPoints,
  resultsIndex,
  runPage,
  sweepFigures,
  sweepPoints,
  sweepTable,
} from "../lib/report/mod.ts";
import { meanCI95, seedsTable, seedStat, studentT975 } from "../lib/report/seeds.ts";
import type { HistoryRow } from "../lib/types.ts";
import { assertClose } from "./util.ts";

const RUNS = [
  // lambda 0.1: three seeds; accuracies 0.93, 0.94, 0.95 -> mean 0.94, population std sqrt(2/3) * 0.01.
  { lambda: 0.1, seed: 2, test_accuracy: 0.95, test_ece15: 0.04, sigma: 0.6 },
  { lambda: 0.1, seed: 0, test_accuracy: 0.93, test_ece15: 0.04, sigma: 0.5 },
  { lambda: 0.1, seed: 1, test_accuracy: 0.94, test_ece15: 0.04, sigma: 0.7 },
  // lambda 10^-2.5 written two ways: the same group. Accuracies 0.92, 0.94 -> 0.93 +- 0.01.
  { lambda: 10 ** -2.5, seed: 0, test_accuracy: 0.92, test_ece15: 0.03, sigma: 0.4 },
  { lambda: 0.0031622776601683794, seed: 1, test_accuracy: 0.94, test_ece15: 0.05, sigma: 0.4 },
  // lambda 1e-3: one seed, std 0.
  { lambda: 1e-3, seed: 4, test_accuracy: 0.9394, test_ece15: 0.036, sigma: 0.345 },
];

Deno.test("report: aggregateSweep gives per-lambda means and POPULATION standard deviations, sorted", () => {
  const agg = aggregateSweep(RUNS);
  assertEquals(agg.map((r) => r.n), [1, 2, 3]);
  assertEquals(agg.map((r) => r.logLambda), [-3, -2.5, -1]);
  assertEquals(agg.map((r) => r.seeds), [[4], [0, 1], [0, 1, 2]]);
  const [a, b, c] = agg;
  assertEquals([a.accuracy.mean, a.accuracy.std, a.sigma.std], [0.9394, 0, 0]);
  assertClose([b.accuracy.mean, b.accuracy.std, b.ece15.mean, b.ece15.std], [0.93, 0.01, 0.04, 0.01], {
    atol: 1e-15,
    what: "lambda 10^-2.5",
  });
  assertClose([c.accuracy.mean, c.accuracy.std], [0.94, 0.01 * Math.sqrt(2 / 3)], {
    atol: 1e-15,
    what: "accuracy 0.1",
  });
  assertClose([c.sigma.mean, c.sigma.std], [0.6, 0.1 * Math.sqrt(2 / 3)], { atol: 1e-15, what: "sigma 0.1" });
  assertEquals(c.ece15.std, 0, "a constant column has std exactly 0");
  // Order of the input does not matter.
  assertEquals(aggregateSweep([...RUNS].reverse()), agg);
  assertEquals(aggregateSweep([]), []);
});

Deno.test("report: aggregateSweep names bad input", () => {
  assertThrows(
    () => aggregateSweep([{ ...RUNS[0], lambda: 0 }]),
    /runs\[0\]\.lambda = 0, expected a positive number/,
  );
  assertThrows(() => aggregateSweep([{ ...RUNS[0], sigma: NaN }]), /runs\[0\]\.sigma = NaN/);
  assertThrows(() => aggregateSweep([RUNS[0], { ...RUNS[0] }]), /seed 2 appears twice at lambda 0.1/);
});

Deno.test("report: the paper's numbers are exactly the spec's", () => {
  const p = PAPER_FASHION_SWEEP;
  assertEquals(p.accuracy, [
    { lambda: 1e-3, mean: 0.9394, std: 0.0006 },
    { lambda: 0.1, mean: 0.9341, std: 0.0030 },
    { lambda: 1, mean: 0.9380, std: 0.0009 },
  ]);
  assertEquals(p.sigma, [{ lambda: 1e-3, mean: 0.345 }, { lambda: 10, mean: 0.906 }]);
  assertEquals(p.ece15Range, { lo: 0.036, hi: 0.041 });
  assertEquals(p.lambdas.length, 9);
  assertClose(p.lambdas, [1e-3, 10 ** -2.5, 1e-2, 10 ** -1.5, 0.1, 10 ** -0.5, 1, 10 ** 0.5, 10], {
    rtol: 1e-15,
  });
  // Figures show ECE x100; the paper gives ECE only as a range, so there are no per-lambda ECE points.
  assertEquals(paperPoints("ece15"), []);
  assertEquals(paperPoints("sigma"), [{ logLambda: -3, mean: 0.345 }, { logLambda: 1, mean: 0.906 }]);
  const ece = sweepPoints(aggregateSweep(RUNS), "ece15");
  assertClose(ece.map((q) => q.mean), [3.6, 4, 4], { rtol: 1e-12, what: "ECE x100" });
});

Deno.test("report: sweepTable sets each lambda beside the paper's value where there is one", () => {
  const table = sweepTable(aggregateSweep(RUNS), PAPER_FASHION_SWEEP);
  const lines = table.split("\n");
  assert(lines[0].startsWith("| λ | log₁₀ λ | seeds | Test accuracy, mean ± std | Test accuracy, paper |"));
  const rows = lines.filter((l) => /^\| [\d.]+ \|/.test(l));
  assertEquals(rows.length, 3);
  assertEquals(
    rows[0],
    "| 0.001 | -3 | 1 | 0.9394 ± 0.0000 | 0.9394 ± 0.0006 | 3.60 ± 0.00 | 0.345 ± 0.000 | 0.345 |",
  );
  assertEquals(rows[1], "| 0.00316 | -2.5 | 2 | 0.9300 ± 0.0100 | — | 4.00 ± 1.00 | 0.400 ± 0.000 | — |");
  assert(
    rows[2].startsWith(
      "| 0.1 | -1 | 3 | 0.9400 ± 0.0082 | 0.9341 ± 0.0030 | 4.00 ± 0.00 | 0.600 ± 0.082 | — |",
    ),
  );
  assert(table.includes("ECE 3.6–4.1 % at every λ"));
  assert(table.includes("test accuracy 0.934–0.940 at every λ"));
  // Without the paper: only our columns.
  const ours = sweepTable(aggregateSweep(RUNS));
  assert(!ours.includes("paper"));
  assertEquals(formatLambda(10 ** 0.5), "3.16");
  assertEquals(formatLambda(10), "10");
});

Deno.test("report: sweepFigures draws the three panels", () => {
  const figs = sweepFigures(aggregateSweep(RUNS));
  for (const svg of [figs.accuracy, figs.ece15, figs.sigma]) {
    assert(svg.startsWith("<?xml") && svg.includes('xmlns="http://www.w3.org/2000/svg"'));
  }
  assert(figs.accuracy.includes("mean ± 2 std") && figs.sigma.includes("mean ± 1 std"));
});

function history(n: number): HistoryRow[] {
  return Array.from({ length: n }, (_, i) => ({
    epoch: i + 1,
    train_loss: 1 / (i + 1),
    train_accuracy: 0.9 + i * 0.001,
    test_accuracy: i === 3 ? 0.95 : 0.9,
    test_nll: 0.3,
    test_ece: 0.0321,
    seconds: 30,
  }));
}

const METRICS = {
  n: 10000,
  accuracy: 0.9186,
  nll: 0.31234,
  brier: 0.12345,
  ece10: 0.03215,
  ece15: 0.0409,
};
const MANIFEST = {
  config: { epochs: 10, lambda: 0.1 },
  adapter: { description: "llvmpipe (LLVM 15.0.6, 256 bits)" },
  wall_seconds: 3725,
};

Deno.test("report: runPage shows key numbers, figures and the history", () => {
  const md = runPage({
    name: "fashion_mda | D=2",
    metrics: METRICS,
    manifest: MANIFEST,
    history: history(10),
    figures: [{ file: "accuracy.svg", caption: "Train and test accuracy" }, {
      file: "latent space.svg",
      caption: "Latent",
    }],
  });
  assert(md.startsWith("# fashion_mda | D=2\n\nFinished: 10 of 10 epochs."));
  for (
    const line of [
      "| Final test accuracy | 0.9186 |",
      "| Best test accuracy | 0.9500 (epoch 4) |",
      "| Test NLL | 0.3123 |",
      "| Test ECE ×100 (10 bins) | 3.21 |",
      "| Test ECE ×100 (15 bins) | 4.09 |",
      "| Test Brier score | 0.1235 |",
      "| Wall time | 1 h 02 min |",
      "| Adapter | llvmpipe (LLVM 15.0.6, 256 bits) |",
      "![Train and test accuracy](accuracy.svg)",
      "![Latent](latent%20space.svg)",
      "| 4 | 0.2500 | 0.9030 | 0.9500 | 0.3000 | 3.21 | 30.0 |",
      "<details><summary>manifest.json</summary>",
    ]
  ) {
    assert(md.includes(line), `missing: ${line}\n${md}`);
  }
  assertEquals(md.split("\n").filter((l) => /^\| \d+ \|/.test(l)).length, 10);
});

Deno.test("report: runPage of a long history shows its last rows; of a fresh run, dashes", () => {
  const long = runPage({ name: "long", metrics: METRICS, manifest: {}, history: history(100), figures: [] });
  const rows = long.split("\n").filter((l) => /^\| \d+ \|/.test(l));
  assertEquals(rows.length, 20);
  assert(rows[0].startsWith("| 81 |") && rows[19].startsWith("| 100 |"));
  assert(long.includes("Last 20 of 100 epochs"));
  // No wall time recorded: the sum of epoch times, said so.
  assert(long.includes("| Wall time | 50 min 00 s (sum of epoch times) |"));

  const fresh = runPage({
    name: "fresh",
    metrics: {},
    manifest: { config: { epochs: 100 } },
    history: [],
    figures: [],
  });
  assert(fresh.includes("In progress: no epoch completed yet."));
  assert(fresh.includes("| Final test accuracy | — |") && fresh.includes("| Adapter | — |"));
  assert(fresh.includes("No completed epoch yet."));

  // Mid-run: numbers come from the history; metrics nested under "test" are found too.
  const mid = runPage({ name: "mid", metrics: {}, manifest: MANIFEST, history: history(3) });
  assert(mid.includes("In progress: 3 of 10 epochs completed."));
  assert(mid.includes("| Final test accuracy | 0.9000 |"));
  const nested = keyNumbers({ test: { accuracy: 0.5, ece15: 0.02 } }, { adapter: "NVIDIA H100" });
  assertEquals([nested.finalTestAccuracy, nested.ece15, nested.adapter, nested.finished], [
    0.5,
    0.02,
    "NVIDIA H100",
    true,
  ]);
  runPage({ name: "bare", metrics: null, manifest: null, history: undefined, figures: undefined });
});

Deno.test("report: resultsIndex links every run and escapes table cells", () => {
  const md = resultsIndex([
    { dir: "fashion_mda/", name: "Fashion MDA", metrics: METRICS, manifest: MANIFEST },
    { dir: "sweep lda", name: "a|b", manifest: { status: "running" } },
  ]);
  const rows = md.split("\n").filter((l) => l.startsWith("| ["));
  assertEquals(rows, [
    "| [Fashion MDA](fashion_mda/README.md) | finished | 0.9186 | — | 3.21 | 4.09 | 1 h 02 min | llvmpipe (LLVM 15.0.6, 256 bits) |",
    "| [a\\|b](sweep%20lda/README.md) | running | — | — | — | — | — | — |",
  ]);
  assert(resultsIndex([]).includes("No runs yet."));
  // A running run's manifest holds its wall time at the start (0): the epochs done so far count instead.
  const running = resultsIndex([
    { dir: "r", name: "r", manifest: { status: "running", wall_seconds: 0 }, history: history(3) },
    // Resumed after 100 s, no epoch since: the manifest's time stands.
    { dir: "s", name: "s", manifest: { status: "running", wall_seconds: 100 }, history: history(3) },
    // A finished run's own total stands (its epochs leave out the set-up).
    {
      dir: "f",
      name: "f",
      metrics: METRICS,
      manifest: { ...MANIFEST, wall_seconds: 95 },
      history: history(3),
    },
  ]).split("\n").filter((l) => l.startsWith("| ["));
  assertEquals(running.map((l) => l.split(" | ")[6]), ["1 min 30 s", "1 min 40 s", "1 min 35 s"]);
});

Deno.test("report: resultsIndex links a data-only run's folder and lists report pages first", () => {
  const md = resultsIndex(
    [{ dir: "seed_study/engine-2", name: "seed_study/engine-2", manifest: MANIFEST, hasPage: false }],
    "Results",
    [{ dir: "seed_study", title: "Seed study [quick]" }],
  );
  const lines = md.split("\n");
  assert(lines.includes("- [Seed study quick](seed_study/README.md)"), md);
  assert(md.indexOf("Seed study") < md.indexOf("| Run |"), md);
  assert(lines.some((l) => l.startsWith("| [seed_study/engine-2](seed_study/engine-2/) |")), md);
});

Deno.test("report: durations read naturally", () => {
  assertEquals(
    [
      formatDuration(42.25),
      formatDuration(125),
      formatDuration(3725),
      formatDuration(undefined),
      formatDuration(-1),
    ],
    ["42.3 s", "2 min 05 s", "1 h 02 min", "—", "—"],
  );
});

Deno.test("report: runPage reads the runner's nested metrics.json and boxed hyperparameters", () => {
  const metrics = {
    epochs: 3,
    final: { test_accuracy: 0.91, test_nll: 0.25, test_ece: 0.012, test_ece15: 0.0134, test_brier: 0.14 },
    best: { test_accuracy: { value: 0.92, epoch: 2 } },
    wall_seconds: 95,
  };
  const manifest = {
    status: "finished",
    hyperparameters: { epochs: { value: 3, source: "config" }, widths: { value: [16, 32], source: "flag" } },
    adapter: { description: "NVIDIA H100 80GB HBM3", isSoftware: false },
    wall_seconds: 97.5,
  };
  const rows = history(3).map((r) => ({ ...r, test_ece15: 0.02, test_brier: 0.15 }));
  const md = runPage({ name: "quick", metrics, manifest, history: rows });
  for (
    const line of [
      "Status: finished; 3 of 3 epochs completed.",
      "| Final test accuracy | 0.9100 |",
      "| Test ECE ×100 (15 bins) | 1.34 |",
      "| Test Brier score | 0.1400 |",
      "| Wall time | 1 min 38 s |",
      "| Adapter | NVIDIA H100 80GB HBM3 |",
      "| Epoch | Train loss | Train acc. | Test acc. | Test NLL | Test ECE ×100 (10 bins) | Test ECE ×100 (15 bins) | " +
      "Test Brier | Seconds |",
      "| 1 | 1.0000 | 0.9000 | 0.9000 | 0.3000 | 3.21 | 2.00 | 0.1500 | 30.0 |",
      "| epochs | 3 | config |",
      "| widths | [16,32] | flag |",
    ]
  ) {
    assert(md.includes(line), `missing: ${line}\n${md}`);
  }
  const k = keyNumbers(metrics, manifest);
  assertEquals([k.finished, k.epochsPlanned, k.bestTestAccuracy], [true, 3, 0.92]);
});

Deno.test("report: seeds' statistics use the sample standard deviation; one seed is said to be no distribution", () => {
  const s = seedStat([0.9, 0.92, 0.94]);
  assertClose([s.mean, s.std, s.min, s.max], [0.92, 0.02, 0.9, 0.94], {
    rtol: 1e-12,
    atol: 1e-15,
    what: "stat",
  });
  assertEquals(seedStat([0.5]), { n: 1, mean: 0.5, std: 0, min: 0.5, max: 0.5 });
  const run = (seed: number, acc: number) => ({
    seed,
    page: `seed-${seed}/README.md`,
    test_accuracy: acc,
    test_nll: 0.3,
    test_ece: 0.034,
    test_ece15: 0.012,
    test_brier: 0.1,
    epochs: 100,
  });
  const table = seedsTable([run(7, 0.94), run(2, 0.9), run(5, 0.92)], 4);
  const lines = table.split("\n");
  assertEquals(
    lines[2],
    "| [2](seed-2/README.md) | 0.9000 | 0.3000 | 3.40 | 1.20 | 0.1000 | 100 |",
    "seed order",
  );
  assertEquals(lines[5], "| **mean** | 0.9200 | 0.3000 | 3.40 | 1.20 | 0.1000 | |");
  assertEquals(lines[6], "| **std** | 0.0200 | 0.0000 | 0.00 | 0.00 | 0.0000 | |");
  assert(
    table.endsWith(
      "Test accuracy over 3 of 4 seeds: 0.9200 ± 0.0200 (mean ± standard deviation, n - 1), from 0.9000 to 0.9400; " +
        "95 % confidence interval of the mean 0.8703 to 0.9697.",
    ),
  );
  assert(seedsTable([run(1, 0.9)], 2).endsWith("One seed is no distribution: run more."));
  assertEquals(seedsTable([], 3), "No seed's run has finished yet (3 planned).");
});

Deno.test("studentT975 and meanCI95: Student's t quantiles (scipy's) and the interval of a mean", () => {
  // scipy.stats.t.ppf(0.975, df): the table, then the series past 30.
  for (
    const [df, q] of [[1, 12.7062], [3, 3.1824], [30, 2.0423], [31, 2.0395], [40, 2.0211], [120, 1.9799]]
  ) {
    assert(Math.abs(studentT975(df) - q) < 1e-4, `df ${df}: ${studentT975(df)} against ${q}`);
  }
  assert(Math.abs(studentT975(1e6) - 1.96) < 1e-4);
  // 1, 2, 3: mean 2, std 1, 2 df: 2 ± 4.3027 / sqrt(3).
  const ci = meanCI95(seedStat([1, 2, 3]))!;
  assert(
    Math.abs(ci.lo - (2 - 4.3027 / Math.sqrt(3))) < 1e-12 &&
      Math.abs(ci.hi - (2 + 4.3027 / Math.sqrt(3))) < 1e-12,
  );
  assertEquals(meanCI95(seedStat([5])), undefined);
});
