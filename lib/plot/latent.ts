// The notebook's latent-space scatter (dnll.md §1 (a)): train embeddings coloured by class, every mixture
// component mean as a filled X in its class colour with a dark outline, labelled with its mixture weight
// when that weight is at least 0.05.
//
// Latent dimension: D = 2 is drawn as is (axes z1, z2). D >= 3 (the paper's D = 9) is projected, points and
// means alike, onto the first two principal axes of the points (float64 PCA, lib/plot/pca.ts). D = 1 puts
// z on the x axis and the class on the y axis, one row per class, without jitter, so each row shows the
// exact 1-D distribution of that class and the means sit on their class's row.
// For D >= 2 both axes share one scale (a circle in latent space is a circle on paper), because the MDA
// components are isotropic Gaussians and their shape is the point of the figure.

import * as Plot from "@observablehq/plot";
import type { LatentSnapshot } from "../types.ts";
import { fitPca, projectPca } from "./pca.ts";
import { categoryColor, composeFigure, type LegendItem, plotPart, textWidth, xMarkerCorners } from "./svg.ts";

/** Mixture weights below this are not labelled (and such means may fall outside the view). */
export const WEIGHT_LABEL_MIN = 0.05;

const WIDTH = 680;
const MARGIN = { marginLeft: 60, marginRight: 20, marginTop: 14, marginBottom: 46 };

interface Point {
  x: number;
  y: number;
  label: number;
}

interface Mean {
  x: number;
  y: number;
  color: string;
  weight: number | undefined;
}

/** Draws matplotlib's "X" marker as a Plot symbol: a filled cross whose half-size follows the dot radius. */
const X_SYMBOL = {
  draw(
    context: { moveTo(x: number, y: number): void; lineTo(x: number, y: number): void; closePath(): void },
    size: number,
  ) {
    const corners = xMarkerCorners(Math.sqrt(size / Math.PI) * 1.1);
    context.moveTo(corners[0][0], corners[0][1]);
    for (const [x, y] of corners.slice(1)) context.lineTo(x, y);
    context.closePath();
  },
};

function validate(s: LatentSnapshot): { n: number; classes: number } {
  const { dim, z, labels, classNames } = s;
  if (!(Number.isInteger(dim) && dim >= 1)) {
    throw new Error(`latentFigure: dim = ${dim}, expected an integer >= 1`);
  }
  const n = labels.length;
  if (z.length !== n * dim) {
    throw new Error(`latentFigure: z has ${z.length} values, expected labels.length * dim = ${n} * ${dim}`);
  }
  const classes = classNames.length;
  if (classes === 0) throw new Error("latentFigure: classNames is empty");
  const bad = labels.findIndex((y) => !(Number.isInteger(y) && y >= 0 && y < classes));
  if (bad >= 0) {
    throw new Error(`latentFigure: labels[${bad}] = ${labels[bad]}, expected an integer in [0, ${classes})`);
  }
  if (s.means) {
    const K = s.components;
    if (!(Number.isInteger(K) && K >= 1)) {
      throw new Error(`latentFigure: components = ${K}, expected an integer >= 1`);
    }
    if (s.means.length !== classes * K * dim) {
      throw new Error(
        `latentFigure: means has ${s.means.length} values, expected classes * components * dim = ${
          classes * K * dim
        }`,
      );
    }
    if (s.weights && s.weights.length !== classes * K) {
      throw new Error(
        `latentFigure: weights has ${s.weights.length} values, expected classes * components = ${
          classes * K
        }`,
      );
    }
  }
  return { n, classes };
}

/** Domain [lo, hi] of the values, padded by `pad` of the span (a single value gets a unit span). */
function paddedExtent(values: number[], pad: number): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!(hi >= lo)) return [-1, 1];
  const span = hi - lo || 1;
  return [lo - pad * span, hi + pad * span];
}

/** Grows the narrower domain so one unit has the same length on both axes; returns the inner height. */
function equalAspect(xd: [number, number], yd: [number, number], innerWidth: number): number {
  const xs = xd[1] - xd[0], ys = yd[1] - yd[0];
  const ratio = Math.min(1.1, Math.max(0.6, ys / xs));
  if (ys / xs < ratio) {
    const grow = (xs * ratio - ys) / 2;
    yd[0] -= grow;
    yd[1] += grow;
  } else if (ys / xs > ratio) {
    const grow = (ys / ratio - xs) / 2;
    xd[0] -= grow;
    xd[1] += grow;
  }
  return innerWidth * ratio;
}

/**
 * The latent scatter as a standalone SVG. Points are drawn class by class in label order, as the notebook's
 * `plt.scatter` loop does (a later class lies over an earlier one, translucent), one group per class
 * carrying its colour and opacity, so each point is a bare `<circle>` with coordinates rounded to 0.01 px:
 * 10 000 points take about 0.4 MB.
 */
export function latentFigure(s: LatentSnapshot, title = "Latent space of the training embeddings"): string {
  const { n, classes } = validate(s);
  const { dim, z, labels, classNames } = s;
  const K = s.components;
  const means: Mean[] = [];
  let xLabel = "z1", yLabel = "z2", subtitle = `${n.toLocaleString("en-US")} embeddings`;
  let points: Point[];

  if (dim >= 2) {
    let xy: ArrayLike<number>, meanXy: ArrayLike<number> | undefined;
    if (dim === 2) {
      xy = z;
      meanXy = s.means;
    } else {
      const pca = fitPca(z, n, dim, 2);
      xy = projectPca(pca, z);
      meanXy = s.means ? projectPca(pca, s.means) : undefined;
      const pct = (v: number) => pca.totalVariance > 0 ? ((100 * v) / pca.totalVariance).toFixed(1) : "0.0";
      xLabel = `PC1 (${pct(pca.variances[0])}% of variance)`;
      yLabel = `PC2 (${pct(pca.variances[1])}% of variance)`;
      subtitle += `, ${dim}-D, projected on the first two principal axes of the embeddings`;
    }
    points = labels.map((label, i) => ({ x: xy[2 * i], y: xy[2 * i + 1], label }));
    if (meanXy) {
      for (let i = 0; i < classes * K; i++) {
        means.push({
          x: meanXy[2 * i],
          y: meanXy[2 * i + 1],
          color: categoryColor(Math.floor(i / K)),
          weight: s.weights?.[i],
        });
      }
    }
  } else {
    xLabel = "z";
    yLabel = "Class";
    subtitle += ", 1-D: one row per class";
    points = labels.map((label, i) => ({ x: z[i], y: label, label }));
    if (s.means) {
      for (let i = 0; i < classes * K; i++) {
        const c = Math.floor(i / K);
        means.push({ x: s.means[i], y: c, color: categoryColor(c), weight: s.weights?.[i] });
      }
    }
  }

  // The view covers every point and every mean that carries weight; a nearly empty component far away
  // would otherwise shrink the clusters to a dot.
  const important = means.filter((m) => m.weight === undefined || m.weight >= WEIGHT_LABEL_MIN);
  const xd = paddedExtent([...points.map((p) => p.x), ...important.map((m) => m.x)], 0.04);
  let yd: [number, number] = [0, 0];
  const innerWidth = WIDTH - MARGIN.marginLeft - MARGIN.marginRight;
  let innerHeight: number;
  let marginLeft = MARGIN.marginLeft;
  if (dim >= 2) {
    yd = paddedExtent([...points.map((p) => p.y), ...important.map((m) => m.y)], 0.04);
    innerHeight = equalAspect(xd, yd, innerWidth);
  } else {
    innerHeight = Math.max(200, 34 * classes);
    marginLeft = Math.ceil(Math.max(...classNames.map((c) => textWidth(c)))) + 18;
  }
  const inView = (m: Mean) => m.x >= xd[0] && m.x <= xd[1] && (dim < 2 || (m.y >= yd[0] && m.y <= yd[1]));
  const shown = means.filter(inView);
  const hidden = means.length - shown.length;
  // K = 1 heads (LDA) have every weight equal to 1: a label would say nothing.
  const labelled = K > 1 ? shown.filter((m) => m.weight !== undefined && m.weight >= WEIGHT_LABEL_MIN) : [];

  const axis = { labelAnchor: "center", labelArrow: "none" } as const;
  const part = plotPart({
    width: WIDTH,
    height: Math.round(innerHeight + MARGIN.marginTop + MARGIN.marginBottom),
    ...MARGIN,
    marginLeft,
    color: { type: "identity" },
    x: { domain: xd, label: xLabel, ...axis, ticks: 8 },
    y: dim >= 2 ? { domain: yd, label: yLabel, ...axis, labelOffset: 46, ticks: 8 } : {
      type: "point",
      domain: classNames.map((_, c) => c),
      tickFormat: (c: number) => classNames[c],
      label: null,
      padding: 0.5,
    },
    grid: true,
    marks: [
      Plot.frame({ stroke: "#bbb" }),
      ...classNames.map((_, c) =>
        Plot.dot(points.filter((p) => p.label === c), {
          x: "x",
          y: "y",
          fill: categoryColor(c),
          r: 1.6,
          fillOpacity: 0.55,
          ariaDescription: "embedding",
        })
      ),
      Plot.dot(shown, {
        x: "x",
        y: "y",
        fill: "color",
        r: 7,
        symbol: X_SYMBOL as unknown as Plot.SymbolType,
        stroke: "#111",
        strokeWidth: 1,
        ariaDescription: "component mean",
      }),
      Plot.text(labelled, {
        x: "x",
        y: "y",
        text: (m: Mean) => (m.weight as number).toFixed(2),
        dx: 9,
        dy: -9,
        textAnchor: "start",
        fontSize: 12,
        fill: "black",
        stroke: "white",
        strokeWidth: 3,
        ariaDescription: "component weight",
      }),
    ],
  });

  const legend: LegendItem[] = classNames.map((name, c) => ({
    label: name,
    color: categoryColor(c),
    kind: "dot",
  }));
  if (means.length) {
    legend.push({
      label: K > 1 ? "Component mean (label: mixture weight)" : "Class mean",
      color: "#bbb",
      stroke: "#111",
      kind: "x",
    });
  }
  const footnote = hidden > 0
    ? `${hidden} component mean${hidden > 1 ? "s" : ""} with mixture weight < ${WEIGHT_LABEL_MIN} ` +
      `${hidden > 1 ? "lie" : "lies"} outside the view.`
    : undefined;
  return composeFigure({ title, subtitle, legend, parts: [part], footnote });
}
