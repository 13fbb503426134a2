// Several runs' learning curves on one plot (the results server's comparison page, the reports): one line
// per run of one history.jsonl column, coloured in tab10 order by run or by group of runs (a head over
// seeds), with the same axes and style as the single-run figures.

import * as Plot from "@observablehq/plot";
import type { HistoryRow } from "../types.ts";
import { categoryColor, composeFigure, flatDomain, type LegendItem, plotPart } from "./svg.ts";

const WIDTH = 680;
const HEIGHT = 400;
const MARGINS = { marginLeft: 74, marginRight: 24, marginTop: 16, marginBottom: 46 };

export type CurveKey = "test_accuracy" | "train_accuracy" | "train_loss" | "test_nll" | "test_ece";

export const CURVE_LABELS: Record<CurveKey, string> = {
  test_accuracy: "Test accuracy",
  train_accuracy: "Train accuracy",
  train_loss: "Mean train loss",
  test_nll: "Test NLL",
  test_ece: "Test ECE ×100 (10 bins)",
};

/** What a column is multiplied by on the plot (ECE ×100, as the tables and the paper give it). */
const CURVE_SCALE: Partial<Record<CurveKey, number>> = { test_ece: 100 };

export interface RunCurve {
  label: string;
  history: HistoryRow[];
  /**
   * Runs of one group (e.g. one head over several seeds) share a colour and one legend entry, the group's
   * name; without groups every run has its own colour and entry.
   */
  group?: string;
}

/** One column of several runs' histories against the epoch. */
export function runsCurveFigure(
  runs: RunCurve[],
  key: CurveKey,
  title = `${CURVE_LABELS[key]} per epoch`,
): string {
  // Legend entries in order of first appearance; colourOf[i] is run i's entry's colour.
  const entries: string[] = [];
  const colourOf = runs.map((r) => {
    const entry = r.group ?? r.label;
    if (!entries.includes(entry)) entries.push(entry);
    return categoryColor(entries.indexOf(entry));
  });
  const legend: LegendItem[] = entries.map((label, i) => ({ label, color: categoryColor(i), kind: "line" }));
  const scale = CURVE_SCALE[key] ?? 1;
  const rows = runs.map((r) =>
    r.history.filter((h) => Number.isFinite(h.epoch) && Number.isFinite(h[key]))
      .map((h) => ({ ...h, [key]: scale * h[key] }))
  );
  const all = rows.flat();
  const last = Math.max(1, ...all.map((r) => r.epoch));
  const markers = Math.max(0, ...rows.map((r) => r.length)) <= 30;
  const marks: Plot.Markish[] = [Plot.frame({ stroke: "#bbb" })];
  rows.forEach((r, i) => {
    marks.push(
      Plot.line(r, {
        x: "epoch",
        y: key,
        stroke: colourOf[i],
        strokeWidth: 2,
        ariaDescription: runs[i].label,
      }),
    );
    if (markers) marks.push(Plot.dot(r, { x: "epoch", y: key, fill: colourOf[i], r: 3 }));
  });
  if (all.length === 0) {
    marks.push(Plot.text(["No completed epoch yet"], { frameAnchor: "middle", fontSize: 14 }));
  }
  const part = plotPart({
    width: WIDTH,
    height: HEIGHT,
    ...MARGINS,
    grid: all.length > 0,
    x: {
      domain: [all.length ? Math.min(...all.map((r) => r.epoch)) : 0, last],
      label: "Epoch",
      labelAnchor: "center",
      labelArrow: "none",
      ticks: Math.min(10, Math.max(1, last - 1)),
      tickFormat: (d: number) => (Number.isInteger(d) ? String(d) : ""),
    },
    y: {
      ...(all.length ? { nice: true, ...flatDomain(all.map((r) => r[key])) } : { domain: [0, 1], ticks: [] }),
      label: CURVE_LABELS[key],
      labelAnchor: "center",
      labelArrow: "none",
      labelOffset: 58,
    },
    marks,
  });
  return composeFigure({ title, legend, parts: [part] });
}
