// Example images per mixture component (dnll.md §1 (b), (c), generalised): one row per (class, component),
// each 28x28 image drawn as vector shapes in matplotlib's "gray" colour map (0 black, 255 white), as the
// notebook's imshow(cmap="gray") shows them. No raster library: an image is a black square plus one path per
// grey level, each path a union of horizontal runs of equal pixels. Grey values are quantised to `levels`
// steps (32 by default: indistinguishable at this size, and it keeps a 20-row figure around 100 kB).

import type { ComponentExamples } from "../types.ts";
import { composeFigure, esc, FONT_SIZE, num, type Part, textWidth } from "./svg.ts";

const SIDE = 28;
const GAP = 6;
const LABEL_HEIGHT = 22;
const ROW_GAP = 10;

function hexGray(value: number): string {
  const h = Math.round(value).toString(16).padStart(2, "0");
  return `#${h}${h}${h}`;
}

/** One image as an SVG group in pixel units (the caller scales it). */
export function imageGroup(pixels: ArrayLike<number>, levels: number): string {
  const runs = new Map<number, string[]>();
  for (let y = 0; y < SIDE; y++) {
    let x = 0;
    while (x < SIDE) {
      const level = Math.round((Math.min(255, Math.max(0, pixels[y * SIDE + x])) * (levels - 1)) / 255);
      let end = x + 1;
      while (end < SIDE) {
        const next = Math.round((Math.min(255, Math.max(0, pixels[y * SIDE + end])) * (levels - 1)) / 255);
        if (next !== level) break;
        end++;
      }
      if (level > 0) {
        if (!runs.has(level)) runs.set(level, []);
        runs.get(level)!.push(`M${x} ${y}h${end - x}v1h-${end - x}z`);
      }
      x = end;
    }
  }
  const paths = [...runs.keys()].sort((a, b) => a - b).map((level) =>
    `<path fill="${hexGray((level * 255) / (levels - 1))}" d="${runs.get(level)!.join("")}"/>`
  );
  return `<rect width="${SIDE}" height="${SIDE}" fill="black"/>${paths.join("")}`;
}

export interface ComponentExamplesOptions {
  /** Screen pixels per image pixel (default 3, or 2 when a row holds more than 7 images). */
  scale?: number;
  /** Number of grey levels, 2..256 (default 32). */
  levels?: number;
  /** Line under the title (default: how the images were chosen, as in the notebook). */
  subtitle?: string;
}

/** A standalone SVG with one labelled row of example images per (class, component). */
export function componentExamplesFigure(
  ex: ComponentExamples,
  title = "Examples per mixture component",
  options: ComponentExamplesOptions = {},
): string {
  const { rows, classNames } = ex;
  if (rows.length === 0) throw new Error("componentExamplesFigure: rows is empty, expected at least one row");
  const levels = options.levels ?? 32;
  if (!(Number.isInteger(levels) && levels >= 2 && levels <= 256)) {
    throw new Error(`componentExamplesFigure: levels = ${levels}, expected an integer in [2, 256]`);
  }
  rows.forEach((row, r) => {
    if (!(Number.isInteger(row.classIndex) && row.classIndex >= 0 && row.classIndex < classNames.length)) {
      throw new Error(
        `componentExamplesFigure: rows[${r}].classIndex = ${row.classIndex}, expected an integer in [0, ${classNames.length})`,
      );
    }
    row.images.forEach((img, i) => {
      if (img.length !== SIDE * SIDE) {
        throw new Error(
          `componentExamplesFigure: rows[${r}].images[${i}] has ${img.length} pixels, expected 784`,
        );
      }
    });
  });
  const maxImages = Math.max(1, ...rows.map((r) => r.images.length));
  const scale = options.scale ?? (maxImages <= 7 ? 3 : 2);
  const size = SIDE * scale;

  const labels = rows.map((row) =>
    `${classNames[row.classIndex]} — component ${row.component} (weight ${row.weight.toFixed(2)})`
  );
  const width = Math.ceil(Math.max(maxImages * (size + GAP) - GAP, ...labels.map((l) => textWidth(l, 13))));
  const out: string[] = [];
  let y = 0;
  rows.forEach((row, r) => {
    const cells: string[] = [];
    cells.push(
      `<text aria-label="row label" x="0" y="${y + 15}" font-size="13" font-weight="bold">${
        esc(labels[r])
      }</text>`,
    );
    const top = y + LABEL_HEIGHT;
    if (row.images.length === 0) {
      cells.push(
        `<text x="0" y="${top + 20}" font-size="${FONT_SIZE}" fill="#555">(no examples found)</text>`,
      );
    }
    row.images.forEach((img, i) => {
      cells.push(
        `<g aria-label="example image" transform="translate(${i * (size + GAP)},${top}) scale(${
          num(scale)
        })" ` +
          `shape-rendering="crispEdges">${imageGroup(img, levels)}</g>`,
      );
    });
    out.push(`<g aria-label="component row">${cells.join("")}</g>`);
    y = top + (row.images.length ? size : 30) + ROW_GAP;
  });
  const height = y - ROW_GAP;
  const part: Part = {
    svg: `<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${out.join("")}</svg>`,
    width,
    height,
  };
  return composeFigure({
    title,
    subtitle: options.subtitle ??
      "Training images assigned to each component (highest responsibility within their true class)",
    parts: [part],
    minWidth: 640,
  });
}
