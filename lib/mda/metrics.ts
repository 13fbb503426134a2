// Accuracy and calibration metrics (dnll.md section 5), in float64 on the CPU from ONE readback of the
// whole evaluation's logits [N,C]. Confidence = max softmax(logits), correct = [argmax == y] (first
// maximum, as torch.argmax).
//
// Bin conventions: "right" = (lo, hi] (reliability diagrams, 10 bins): a confidence exactly on an edge
// belongs to the bin below it; "left" = [lo, hi) (the lambda sweep, 15 bins): it belongs to the bin above.
// Edges are the float64 values b / bins, compared exactly. A confidence of 1 has no bin above it in the
// "left" convention and goes to the last bin (as does 0 in the "right" one, where softmax never gets).

import type { ConfidenceHistogram, EvalMetrics, Reliability, ReliabilityBin } from "../types.ts";

/** Bin index of x in [0, 1] among `bins` equal-width bins, edges b / bins compared exactly. */
export function binIndex(x: number, bins: number, closed: "right" | "left"): number {
  let b = Math.min(bins - 1, Math.max(0, Math.floor(x * bins)));
  // x * bins can round across an edge; settle the bin with exact comparisons against the edges.
  if (closed === "right") {
    while (b > 0 && x <= b / bins) b--;
    while (b < bins - 1 && x > (b + 1) / bins) b++;
  } else {
    while (b > 0 && x < b / bins) b--;
    while (b < bins - 1 && x >= (b + 1) / bins) b++;
  }
  return b;
}

function checkPairs(conf: ArrayLike<number>, correct: ArrayLike<unknown>): void {
  if (conf.length !== correct.length) {
    throw new Error(`calibration: ${conf.length} confidences but ${correct.length} correctness flags`);
  }
  if (conf.length === 0) throw new Error("calibration: no samples");
  for (let i = 0; i < conf.length; i++) {
    if (!(conf[i] >= 0 && conf[i] <= 1)) {
      throw new Error(`calibration: confidence ${i} is ${conf[i]}, expected [0, 1]`);
    }
  }
}

/** Per-bin accuracy, confidence and count, and the ECE (a fraction) over non-empty bins. */
export function reliability(
  conf: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  bins: number,
  closed: "right" | "left",
): Reliability {
  if (!Number.isInteger(bins) || bins < 1) {
    throw new Error(`reliability: bins must be a positive integer, got ${bins}`);
  }
  if (closed !== "right" && closed !== "left") {
    throw new Error(`reliability: closed must be "right" or "left", got ${closed}`);
  }
  checkPairs(conf, correct);
  const count = new Array<number>(bins).fill(0);
  const hits = new Array<number>(bins).fill(0);
  const confSum = new Array<number>(bins).fill(0);
  for (let i = 0; i < conf.length; i++) {
    const b = binIndex(conf[i], bins, closed);
    count[b]++;
    hits[b] += correct[i] ? 1 : 0;
    confSum[b] += conf[i];
  }
  const n = conf.length;
  let ece = 0;
  const out: ReliabilityBin[] = [];
  for (let b = 0; b < bins; b++) {
    const accuracy = count[b] ? hits[b] / count[b] : 0;
    const confidence = count[b] ? confSum[b] / count[b] : 0;
    if (count[b]) ece += (count[b] / n) * Math.abs(accuracy - confidence);
    out.push({ lo: b / bins, hi: (b + 1) / bins, count: count[b], accuracy, confidence });
  }
  return { closed, bins: out, ece };
}

/** Histogram of confidence, each sample weighted 1/N, bins [lo, hi) with the last one closed. */
export function confidenceHistogram(
  conf: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  bins = 20,
): ConfidenceHistogram {
  if (!Number.isInteger(bins) || bins < 1) {
    throw new Error(`confidenceHistogram: bins must be a positive integer, got ${bins}`);
  }
  checkPairs(conf, correct);
  const n = conf.length;
  const count = new Array<number>(bins).fill(0);
  let confSum = 0;
  let hits = 0;
  for (let i = 0; i < n; i++) {
    count[binIndex(conf[i], bins, "left")]++;
    confSum += conf[i];
    hits += correct[i] ? 1 : 0;
  }
  return {
    bins: count.map((k, b) => ({ lo: b / bins, hi: (b + 1) / bins, fraction: k / n })),
    meanConfidence: confSum / n,
    accuracy: hits / n,
  };
}

/** Accuracy, mean NLL, Brier score, ECE (10 bins (lo,hi] and 15 bins [lo,hi)) and the histogram. */
export function evaluateLogits(logits: Float32Array, labels: ArrayLike<number>, C: number): EvalMetrics {
  const n = labels.length;
  if (!Number.isInteger(C) || C < 1) {
    throw new Error(`evaluateLogits: C must be a positive integer, got ${C}`);
  }
  if (logits.length !== n * C) {
    throw new Error(
      `evaluateLogits: ${logits.length} logits for ${n} labels and ${C} classes (expected ${n * C})`,
    );
  }
  if (n === 0) throw new Error("evaluateLogits: no samples");
  const conf = new Float64Array(n);
  const correct = new Uint8Array(n);
  const p = new Float64Array(C);
  let nll = 0;
  let brier = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= C) {
      throw new Error(`evaluateLogits: label ${i} is ${y}, expected 0..${C - 1}`);
    }
    const row = logits.subarray(i * C, (i + 1) * C);
    let best = 0;
    for (let c = 1; c < C; c++) if (row[c] > row[best]) best = c;
    let s = 0;
    for (let c = 0; c < C; c++) s += p[c] = Math.exp(row[c] - row[best]);
    for (let c = 0; c < C; c++) {
      p[c] /= s;
      brier += (p[c] - (c === y ? 1 : 0)) ** 2;
    }
    nll += row[best] + Math.log(s) - row[y];
    conf[i] = p[best];
    correct[i] = best === y ? 1 : 0;
  }
  const reliability10 = reliability(conf, correct, 10, "right");
  const reliability15 = reliability(conf, correct, 15, "left");
  const histogram = confidenceHistogram(conf, correct, 20);
  return {
    n,
    accuracy: histogram.accuracy,
    nll: nll / n,
    brier: brier / n,
    ece10: reliability10.ece,
    ece15: reliability15.ece,
    reliability10,
    reliability15,
    histogram,
  };
}
