// Calibration and accuracy metrics against hand-computed cases, including confidences exactly on a bin
// edge (and one ulp below it) under both conventions.

import { deepStrictEqual, throws } from "node:assert/strict";
import { binIndex, confidenceHistogram, evaluateLogits, reliability } from "../lib/mda/metrics.ts";
import { assertClose } from "./util.ts";

const BELOW_09 = 0.8999999999999999; // the double just below 0.9; times 10 it rounds to 9.0

Deno.test("metrics: bin edges, (lo, hi] against [lo, hi)", () => {
  const cases: [number, number, number, number][] = [
    // x, bins, bin with (lo, hi], bin with [lo, hi)
    [0.3, 10, 2, 3],
    [0.25, 10, 2, 2],
    [0.9, 10, 8, 9],
    [BELOW_09, 10, 8, 8],
    [1, 10, 9, 9],
    [0, 10, 0, 0],
    [0.1, 10, 0, 1],
    [0.4, 15, 5, 6], // 6/15
    [2 / 3, 15, 9, 10], // 10/15
    [14 / 15, 15, 13, 14],
    [0.45, 20, 8, 9],
    [0.44999999999999996, 20, 8, 8],
  ];
  for (const [x, bins, right, left] of cases) {
    deepStrictEqual(
      [binIndex(x, bins, "right"), binIndex(x, bins, "left")],
      [right, left],
      `x = ${x}, ${bins} bins`,
    );
  }
});

Deno.test("metrics: reliability and ECE by hand, both conventions", () => {
  const conf = [0.3, 0.25, 0.95, 1.0];
  const correct = [true, false, true, true];
  const right = reliability(conf, correct, 10, "right");
  // (0.2, 0.3]: {0.3 right, 0.25 wrong}; (0.9, 1]: {0.95, 1.0}, both right.
  deepStrictEqual(right.bins.map((b) => b.count), [0, 0, 2, 0, 0, 0, 0, 0, 0, 2]);
  assertClose([right.bins[2].accuracy, right.bins[2].confidence], [0.5, 0.275], { what: "bin 2" });
  assertClose([right.bins[9].accuracy, right.bins[9].confidence], [1, 0.975], { what: "bin 9" });
  deepStrictEqual([right.bins[0].accuracy, right.bins[0].confidence, right.bins[4].lo, right.bins[4].hi], [
    0,
    0,
    0.4,
    0.5,
  ]);
  assertClose([right.ece], [(2 / 4) * 0.225 + (2 / 4) * 0.025], { rtol: 1e-12, what: "ECE (lo, hi]" });
  deepStrictEqual(right.closed, "right");

  const left = reliability(conf, correct.map(Number), 10, "left");
  // [0.3, 0.4): {0.3 right}; [0.2, 0.3): {0.25 wrong}; [0.9, 1] (1 joins the last bin): {0.95, 1.0}.
  deepStrictEqual(left.bins.map((b) => b.count), [0, 0, 1, 1, 0, 0, 0, 0, 0, 2]);
  assertClose([left.ece], [0.25 * 0.25 + 0.25 * 0.7 + 0.5 * 0.025], { rtol: 1e-12, what: "ECE [lo, hi)" });

  // 15 bins with a confidence on the edge 6/15 = 0.4.
  const r15 = reliability([0.4, 0.5], [false, true], 15, "left");
  deepStrictEqual([r15.bins[6].count, r15.bins[7].count, r15.bins.length], [1, 1, 15]);
  assertClose([r15.ece], [0.5 * 0.4 + 0.5 * 0.5], { rtol: 1e-12, what: "ECE 15" });
  const r15r = reliability([0.4], [false], 15, "right");
  deepStrictEqual(r15r.bins[5].count, 1);
  // A perfectly calibrated set has ECE 0.
  deepStrictEqual(reliability([0.5, 0.5, 1, 1], [1, 0, 1, 1], 10, "right").ece, 0);
});

Deno.test("metrics: confidence histogram by hand", () => {
  const h = confidenceHistogram([0.3, 0.25, 0.95, 1.0, 0.3], [1, 0, 1, 1, 0]);
  deepStrictEqual(h.bins.length, 20);
  const expected = new Array(20).fill(0);
  expected[5] = 0.2; // 0.25 in [0.25, 0.3)
  expected[6] = 0.4; // 0.3 twice in [0.3, 0.35)
  expected[19] = 0.4; // 0.95 and 1.0 in [0.95, 1]
  deepStrictEqual(h.bins.map((b) => b.fraction), expected);
  deepStrictEqual([h.bins[19].lo, h.bins[19].hi], [0.95, 1]);
  assertClose([h.meanConfidence, h.accuracy], [2.8 / 5, 0.6], {
    rtol: 1e-12,
    what: "mean confidence, accuracy",
  });
});

Deno.test("metrics: evaluateLogits by hand (accuracy, NLL, Brier, ECE)", () => {
  const logits = Float32Array.of(
    0,
    1,
    -1, // y = 1: correct
    2,
    0,
    0, // y = 1: wrong (predicts 0)
    5,
    5,
    0, // y = 1: tie -> first maximum (0) -> wrong
  );
  const labels = [1, 1, 1];
  const m = evaluateLogits(logits, labels, 3);
  const soft = (row: number[]) => {
    const e = row.map(Math.exp);
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
  const rows = [[0, 1, -1], [2, 0, 0], [5, 5, 0]].map(soft);
  const conf = rows.map((p) => Math.max(...p));
  const nll = -rows.reduce((s, p) => s + Math.log(p[1]), 0) / 3;
  const brier = rows.reduce((s, p) => s + p[0] ** 2 + (p[1] - 1) ** 2 + p[2] ** 2, 0) / 3;
  deepStrictEqual(m.n, 3);
  assertClose([m.accuracy, m.nll, m.brier], [1 / 3, nll, brier], {
    rtol: 1e-12,
    what: "accuracy, nll, brier",
  });
  // conf = 0.665 (right), 0.787 (wrong), 0.497 (wrong): three different 10-bins and 15-bins.
  const ece = (Math.abs(1 - conf[0]) + conf[1] + conf[2]) / 3;
  assertClose([m.ece10, m.ece15], [ece, ece], { rtol: 1e-12, what: "ece10, ece15" });
  deepStrictEqual([m.reliability10.closed, m.reliability15.closed, m.reliability15.bins.length], [
    "right",
    "left",
    15,
  ]);
  assertClose([m.histogram.meanConfidence], [(conf[0] + conf[1] + conf[2]) / 3], {
    rtol: 1e-12,
    what: "mean conf",
  });
  // Huge logits stay finite.
  const big = evaluateLogits(Float32Array.of(1e30, -1e30, 0), [1], 3);
  deepStrictEqual([big.accuracy, big.nll, big.brier, big.ece10], [0, 2 * Math.fround(1e30), 2, 1]);
});

Deno.test("metrics: clear errors", () => {
  throws(() => evaluateLogits(new Float32Array(5), [0, 1], 3), /5 logits for 2 labels and 3 classes/);
  throws(() => evaluateLogits(new Float32Array(6), [0, 3], 3), /label 1 is 3, expected 0..2/);
  throws(() => reliability([0.5], [1, 0], 10, "right"), /1 confidences but 2 correctness flags/);
  throws(() => reliability([1.5], [1], 10, "left"), /confidence 0 is 1.5/);
  throws(() => reliability([0.5], [1], 0, "left"), /bins must be a positive integer/);
});
