// The paper's lambda-sweep panels (dnll.md §5): a metric's mean over seeds against log10(lambda), with a
// band of +- band * std (accuracy: 2 std, ECE and sigma: 1 std), optionally beside the paper's values.

import * as Plot from "@observablehq/plot";
import { composeFigure, type LegendItem, plotPart, TAB10 } from "./svg.ts";

export interface SweepPoint {
  logLambda: number;
  mean: number;
  /** Population standard deviation over seeds; absent when the source gives none. */
  std?: number;
}

export interface SweepFigureOptions {
  ylabel: string;
  /** Half-width of the band in standard deviations. */
  band: 1 | 2;
  title?: string;
  /** Legend name of the main series (default "This reproduction"). */
  label?: string;
  /** The paper's values at the lambdas it reports. */
  paper?: SweepPoint[];
  /** A range the paper states for every lambda (e.g. "ECE 3.6-4.1 %"), drawn as a grey horizontal band. */
  paperRange?: { lo: number; hi: number; label?: string };
  /** Digits of the y tick labels (default chosen by Plot). */
  yTickFormat?: string;
}

const WIDTH = 640;
const HEIGHT = 400;
const SERIES_COLOR = TAB10[0];
const PAPER_COLOR = "#111";
const RANGE_COLOR = "#888";

/** "-2.5" with a true minus sign, as log-lambda tick labels. */
function formatLog(x: number): string {
  const s = Number.isInteger(x) ? String(x) : x.toFixed(1);
  return s.replace("-", "\u2212");
}

function checkPoints(what: string, points: SweepPoint[]): void {
  points.forEach((p, i) => {
    if (!Number.isFinite(p.logLambda) || !Number.isFinite(p.mean)) {
      throw new Error(
        `sweepFigure: ${what}[${i}] = {logLambda: ${p.logLambda}, mean: ${p.mean}}, expected finite numbers`,
      );
    }
    if (p.std !== undefined && !(p.std >= 0)) {
      throw new Error(`sweepFigure: ${what}[${i}].std = ${p.std}, expected a number >= 0`);
    }
  });
}

/** One sweep panel as a standalone SVG. */
export function sweepFigure(points: SweepPoint[], options: SweepFigureOptions): string {
  const { ylabel, band } = options;
  if (band !== 1 && band !== 2) throw new Error(`sweepFigure: band = ${band}, expected 1 or 2`);
  checkPoints("points", points);
  const paper = options.paper ?? [];
  checkPoints("paper", paper);
  const rows = [...points].sort((a, b) => a.logLambda - b.logLambda).map((p) => ({
    ...p,
    lo: p.mean - band * (p.std ?? 0),
    hi: p.mean + band * (p.std ?? 0),
  }));
  const paperRows = [...paper].sort((a, b) => a.logLambda - b.logLambda).map((p) => ({
    ...p,
    lo: p.mean - band * (p.std ?? 0),
    hi: p.mean + band * (p.std ?? 0),
  }));
  const xs = [...rows, ...paperRows].map((p) => p.logLambda);
  const xMin = xs.length ? Math.min(...xs) : -3, xMax = xs.length ? Math.max(...xs) : 1;
  const xPad = Math.max(0.25, 0.04 * (xMax - xMin));
  const xDomain = [xMin - xPad, xMax + xPad];
  const ticks = [...new Set(xs)].sort((a, b) => a - b);

  const marks: Plot.Markish[] = [Plot.frame({ stroke: "#bbb" })];
  if (options.paperRange) {
    const { lo, hi } = options.paperRange;
    marks.push(
      Plot.rect([{ lo, hi }], {
        x1: xDomain[0],
        x2: xDomain[1],
        y1: "lo",
        y2: "hi",
        fill: RANGE_COLOR,
        fillOpacity: 0.18,
        ariaDescription: "paper range",
      }),
    );
  }
  marks.push(
    Plot.areaY(rows, {
      x: "logLambda",
      y1: "lo",
      y2: "hi",
      fill: SERIES_COLOR,
      fillOpacity: 0.2,
      ariaDescription: "band",
    }),
    Plot.line(rows, {
      x: "logLambda",
      y: "mean",
      stroke: SERIES_COLOR,
      strokeWidth: 2,
      ariaDescription: "mean line",
    }),
    Plot.dot(rows, { x: "logLambda", y: "mean", fill: SERIES_COLOR, r: 4, ariaDescription: "mean" }),
  );
  if (paperRows.length) {
    marks.push(
      Plot.ruleX(paperRows.filter((p) => p.std !== undefined), {
        x: "logLambda",
        y1: "lo",
        y2: "hi",
        stroke: PAPER_COLOR,
        strokeWidth: 1.5,
        ariaDescription: "paper error bar",
      }),
      Plot.dot(paperRows, {
        x: "logLambda",
        y: "mean",
        symbol: "diamond",
        r: 5,
        fill: "white",
        stroke: PAPER_COLOR,
        strokeWidth: 1.5,
        ariaDescription: "paper",
      }),
    );
  }

  const part = plotPart({
    width: WIDTH,
    height: HEIGHT,
    marginLeft: 78,
    marginRight: 20,
    marginTop: 14,
    marginBottom: 46,
    grid: true,
    x: {
      domain: xDomain,
      ticks,
      tickFormat: formatLog,
      label: "log\u2081\u2080 \u03bb",
      labelAnchor: "center",
      labelArrow: "none",
    },
    y: {
      label: ylabel,
      labelAnchor: "center",
      labelArrow: "none",
      labelOffset: 62,
      nice: true,
      ...(options.yTickFormat ? { tickFormat: options.yTickFormat } : {}),
    },
    marks,
  });
  const legend: LegendItem[] = [
    {
      label: `${options.label ?? "This reproduction"}: mean \u00b1 ${band} std`,
      color: SERIES_COLOR,
      opacity: 0.35,
    },
  ];
  if (paperRows.length) {
    legend.push({
      label: paperRows.some((p) => p.std !== undefined) ? `Paper: mean \u00b1 ${band} std` : "Paper",
      color: "white",
      stroke: PAPER_COLOR,
      kind: "diamond",
    });
  }
  if (options.paperRange) {
    legend.push({
      label: options.paperRange.label ?? "Paper: range over \u03bb",
      color: RANGE_COLOR,
      opacity: 0.3,
    });
  }
  return composeFigure({ title: options.title ?? `${ylabel} against \u03bb`, legend, parts: [part] });
}
