// Learning curves from history.jsonl: accuracy (train and test) and train loss per epoch (dnll.md §1 (d)).

import * as Plot from "@observablehq/plot";
import type { HistoryRow } from "../types.ts";
import { composeFigure, flatDomain, type LegendItem, type Part, plotPart, TAB10 } from "./svg.ts";

const WIDTH = 680;
const HEIGHT = 400;
const MARGINS = { marginLeft: 74, marginRight: 24, marginTop: 16, marginBottom: 46 };

const TRAIN_COLOR = TAB10[0];
const TEST_COLOR = TAB10[1];

/** The panel drawn when there is nothing to plot yet (a run that has not finished an epoch). */
function emptyPart(message: string, ylabel: string): Part {
  return plotPart({
    width: WIDTH,
    height: HEIGHT,
    ...MARGINS,
    x: { domain: [0, 1], label: "Epoch", labelAnchor: "center", labelArrow: "none", ticks: [] },
    y: { domain: [0, 1], label: ylabel, labelAnchor: "center", labelArrow: "none", ticks: [] },
    marks: [Plot.frame({ stroke: "#999" }), Plot.text([message], { frameAnchor: "middle", fontSize: 14 })],
  });
}

function finiteRows(history: HistoryRow[], key: keyof HistoryRow) {
  return history.filter((r) => Number.isFinite(r.epoch) && Number.isFinite(r[key]));
}

/** Lines with a marker at every epoch while the epochs are few enough for markers to stay apart. */
function series(rows: HistoryRow[], key: keyof HistoryRow, color: string, label: string, markers: boolean) {
  const marks: Plot.Markish[] = [
    Plot.line(rows, { x: "epoch", y: key, stroke: color, strokeWidth: 2, ariaDescription: label }),
  ];
  if (markers) {
    marks.push(Plot.dot(rows, { x: "epoch", y: key, fill: color, r: 3, ariaDescription: `${label} marker` }));
  }
  return marks;
}

function epochAxis(rows: HistoryRow[]): Plot.ScaleOptions {
  const last = Math.max(1, ...rows.map((r) => r.epoch));
  return {
    domain: [rows.length ? Math.min(...rows.map((r) => r.epoch)) : 0, last],
    label: "Epoch",
    labelAnchor: "center",
    labelArrow: "none",
    // Epochs are whole numbers: no "1.5" ticks on a 3-epoch run.
    ticks: Math.min(10, Math.max(1, last - 1)),
    tickFormat: (d: number) => (Number.isInteger(d) ? String(d) : ""),
  };
}

/** Train and test accuracy per epoch, with the final and best test accuracy in the subtitle. */
export function accuracyFigure(history: HistoryRow[], title = "Accuracy per epoch"): string {
  const train = finiteRows(history, "train_accuracy");
  const test = finiteRows(history, "test_accuracy");
  const legend: LegendItem[] = [
    { label: "Train accuracy", color: TRAIN_COLOR, kind: "line" },
    { label: "Test accuracy", color: TEST_COLOR, kind: "line" },
  ];
  if (train.length + test.length === 0) {
    return composeFigure({ title, legend, parts: [emptyPart("No completed epoch yet", "Accuracy")] });
  }
  const markers = Math.max(train.length, test.length) <= 30;
  let subtitle: string | undefined;
  if (test.length) {
    const best = test.reduce((a, b) => (b.test_accuracy > a.test_accuracy ? b : a));
    const final = test[test.length - 1];
    subtitle = `Final test accuracy ${final.test_accuracy.toFixed(4)} (epoch ${final.epoch}); ` +
      `best ${best.test_accuracy.toFixed(4)} (epoch ${best.epoch})`;
  }
  const part = plotPart({
    width: WIDTH,
    height: HEIGHT,
    ...MARGINS,
    grid: true,
    x: epochAxis([...train, ...test]),
    y: {
      label: "Accuracy",
      labelAnchor: "center",
      labelArrow: "none",
      labelOffset: 58,
      nice: true,
      ...flatDomain([...train.map((r) => r.train_accuracy), ...test.map((r) => r.test_accuracy)]),
    },
    marks: [
      Plot.frame({ stroke: "#bbb" }),
      ...series(train, "train_accuracy", TRAIN_COLOR, "train accuracy", markers),
      ...series(test, "test_accuracy", TEST_COLOR, "test accuracy", markers),
    ],
  });
  return composeFigure({ title, subtitle, legend, parts: [part] });
}

/** Mean train loss per epoch (the loss the run optimised, e.g. EM-DNLL; it can be negative). */
export function lossFigure(
  history: HistoryRow[],
  title = "Train loss per epoch",
  ylabel = "Mean train loss",
): string {
  const rows = finiteRows(history, "train_loss");
  const legend: LegendItem[] = [{ label: "Train loss", color: TRAIN_COLOR, kind: "line" }];
  if (rows.length === 0) {
    return composeFigure({ title, legend, parts: [emptyPart("No completed epoch yet", ylabel)] });
  }
  const final = rows[rows.length - 1];
  const part = plotPart({
    width: WIDTH,
    height: HEIGHT,
    ...MARGINS,
    grid: true,
    x: epochAxis(rows),
    y: {
      label: ylabel,
      labelAnchor: "center",
      labelArrow: "none",
      labelOffset: 58,
      nice: true,
      ...flatDomain(rows.map((r) => r.train_loss)),
    },
    marks: [
      Plot.frame({ stroke: "#bbb" }),
      ...series(rows, "train_loss", TRAIN_COLOR, "train loss", rows.length <= 30),
    ],
  });
  return composeFigure({
    title,
    subtitle: `Final train loss ${final.train_loss.toFixed(4)} (epoch ${final.epoch})`,
    legend,
    parts: [part],
  });
}
