// Calibration figures (dnll.md §5): the reliability diagram (per-bin accuracy, the gap to the bin's mean
// confidence, the diagonal, the ECE) and the confidence histogram (20 bins, with the mean confidence and
// the accuracy as vertical lines), in the layout of Guo et al. that the paper uses.

import * as Plot from "@observablehq/plot";
import type { ConfidenceHistogram, Reliability } from "../types.ts";
import { composeFigure, type LegendItem, plotPart, TAB10 } from "./svg.ts";

const WIDTH = 560;
const HEIGHT = 460;
const MARGIN = { marginLeft: 64, marginRight: 20, marginTop: 14, marginBottom: 46 };
const AXIS = { labelAnchor: "center", labelArrow: "none" } as const;

const ACCURACY_COLOR = TAB10[0];
const ACCURACY_OUTLINE = "#0b3c5d";
const GAP_COLOR = TAB10[3];
const GAP_OPACITY = 0.3;

/** The ECE as the figures and tables print it: a percentage with two decimals. */
export function formatEce(ece: number): string {
  return `ECE = ${(ece * 100).toFixed(2)}%`;
}

function checkBins(what: string, bins: { lo: number; hi: number }[]): void {
  if (bins.length === 0) throw new Error(`${what}: no bins, expected at least one`);
  bins.forEach((b, i) => {
    if (!(b.lo < b.hi)) {
      throw new Error(`${what}: bin ${i} has lo = ${b.lo} >= hi = ${b.hi}, expected lo < hi`);
    }
  });
}

/** Reliability diagram; empty bins draw nothing (their accuracy and confidence are undefined). */
export function reliabilityFigure(r: Reliability, title = "Reliability diagram"): string {
  checkBins("reliabilityFigure", r.bins);
  const filled = r.bins.filter((b) => b.count > 0);
  const total = r.bins.reduce((s, b) => s + b.count, 0);
  const interval = r.closed === "right" ? "(lo, hi]" : "[lo, hi)";
  const part = plotPart({
    width: WIDTH,
    height: HEIGHT,
    ...MARGIN,
    grid: true,
    x: { domain: [0, 1], label: "Confidence", ...AXIS },
    y: { domain: [0, 1], label: "Accuracy", ...AXIS },
    marks: [
      Plot.frame({ stroke: "#bbb" }),
      Plot.rect(filled, {
        x1: "lo",
        x2: "hi",
        y1: 0,
        y2: "accuracy",
        fill: ACCURACY_COLOR,
        stroke: ACCURACY_OUTLINE,
        strokeWidth: 0.8,
        ariaDescription: "accuracy bar",
      }),
      Plot.rect(filled, {
        x1: "lo",
        x2: "hi",
        y1: "accuracy",
        y2: "confidence",
        fill: GAP_COLOR,
        fillOpacity: GAP_OPACITY,
        stroke: GAP_COLOR,
        strokeWidth: 1,
        ariaDescription: "gap bar",
      }),
      Plot.line([[0, 0], [1, 1]], {
        stroke: "#444",
        strokeWidth: 1.5,
        strokeDasharray: "6,4",
        ariaDescription: "diagonal",
      }),
      Plot.text([formatEce(r.ece)], {
        frameAnchor: "top-left",
        dx: 12,
        dy: 14,
        textAnchor: "start",
        fontSize: 16,
        fontWeight: "bold",
        fill: "black",
        stroke: "white",
        strokeWidth: 4,
        ariaDescription: "ece",
      }),
    ],
  });
  const legend: LegendItem[] = [
    { label: "Accuracy", color: ACCURACY_COLOR, stroke: ACCURACY_OUTLINE },
    { label: "Gap to mean confidence", color: GAP_COLOR, opacity: GAP_OPACITY },
    { label: "Perfect calibration", color: "#444", kind: "dashed" },
  ];
  return composeFigure({
    title,
    subtitle: `${r.bins.length} equal-width bins ${interval}, ${total.toLocaleString("en-US")} samples`,
    legend,
    parts: [part],
  });
}

/** Histogram of confidence (fractions of the samples), with the mean confidence and the accuracy marked. */
export function confidenceHistogramFigure(h: ConfidenceHistogram, title = "Confidence histogram"): string {
  checkBins("confidenceHistogramFigure", h.bins);
  const meanColor = GAP_COLOR;
  const accuracyColor = "#111";
  const part = plotPart({
    width: WIDTH,
    height: HEIGHT,
    ...MARGIN,
    grid: true,
    x: { domain: [0, 1], label: "Confidence", ...AXIS },
    y: {
      label: "Fraction of samples",
      ...AXIS,
      nice: true,
      domain: [0, Math.max(0.05, ...h.bins.map((b) => b.fraction))],
    },
    marks: [
      Plot.frame({ stroke: "#bbb" }),
      Plot.rect(h.bins, {
        x1: "lo",
        x2: "hi",
        y1: 0,
        y2: "fraction",
        fill: ACCURACY_COLOR,
        stroke: "white",
        strokeWidth: 0.8,
        ariaDescription: "histogram bar",
      }),
      Plot.ruleX([h.meanConfidence], {
        stroke: meanColor,
        strokeWidth: 2.5,
        strokeDasharray: "7,4",
        ariaDescription: "mean confidence",
      }),
      Plot.ruleX([h.accuracy], { stroke: accuracyColor, strokeWidth: 2.5, ariaDescription: "accuracy" }),
    ],
  });
  const legend: LegendItem[] = [
    { label: "Fraction of samples", color: ACCURACY_COLOR },
    { label: `Mean confidence = ${h.meanConfidence.toFixed(3)}`, color: meanColor, kind: "dashed" },
    { label: `Accuracy = ${h.accuracy.toFixed(3)}`, color: accuracyColor, kind: "line" },
  ];
  return composeFigure({ title, subtitle: `${h.bins.length} equal-width bins`, legend, parts: [part] });
}
