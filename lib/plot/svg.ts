// SVG plumbing shared by every figure. Observable Plot draws the axes and marks of each panel; this file
// turns Plot's output into a bare <svg> fragment (a "Part"), and lays out title, legend and parts inside one
// root <svg>. Plot's own legends and titles come back wrapped in an HTML <figure>, which is not an image
// file, so figures never ask Plot for them and draw their legend with `composeFigure` instead.

import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";

export const FONT_FAMILY = "Helvetica, Arial, sans-serif";
/** Tick labels, axis labels and legend text: readable when a 680 px wide figure is printed at column width. */
export const FONT_SIZE = 12;
export const TITLE_SIZE = 16;

/** Matplotlib's tab10, the palette of the notebook's figures, so classes keep their familiar colours. */
export const TAB10 = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
] as const;

export function categoryColor(index: number): string {
  return TAB10[((index % TAB10.length) + TAB10.length) % TAB10.length];
}

/** Escapes text for an XML attribute value or text node. */
export function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A number for an SVG attribute: at most `digits` decimals, no "-0", no exponent for tiny values. */
export function num(value: number, digits = 2): string {
  const scale = 10 ** digits;
  const rounded = Math.round(value * scale) / scale;
  return Object.is(rounded, -0) ? "0" : String(rounded);
}

/**
 * A bare `<svg width height viewBox>` fragment with its size, placed into a figure by `composeFigure`.
 * `caption` (optional) is drawn above the part.
 */
export interface Part {
  svg: string;
  width: number;
  height: number;
  caption?: string;
}

// The few DOM members used here: Deno's type library has no DOM, and linkedom's node types are not exported.
interface DomElement {
  tagName: string;
  outerHTML: string;
  attributes: ArrayLike<{ name: string; value: string }>;
  querySelectorAll(selector: string): ArrayLike<DomElement>;
  getAttribute(name: string): string | null;
  setAttribute(name: string, value: string): void;
  removeAttribute(name: string): void;
  remove(): void;
}

// Attributes that hold coordinates; every other attribute (and all text) is left exactly as Plot wrote it.
const GEOMETRY_ATTRIBUTES = new Set([
  "x",
  "y",
  "x1",
  "y1",
  "x2",
  "y2",
  "cx",
  "cy",
  "r",
  "width",
  "height",
  "d",
  "points",
  "transform",
  "dx",
  "dy",
]);
const NUMBER = /-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?/gi;

/** Plot writes coordinates with 15 digits; two decimals of a pixel keep 10 000-point scatters small. */
function roundGeometry(root: DomElement): void {
  const elements = [root, ...Array.from(root.querySelectorAll("*"))];
  for (const element of elements) {
    for (const attribute of Array.from(element.attributes)) {
      if (!GEOMETRY_ATTRIBUTES.has(attribute.name)) continue;
      // "0.71em" and "100%" keep their units: only the numeric run is rewritten.
      const rounded = attribute.value.replace(NUMBER, (s: string) => num(Number(s)));
      if (rounded !== attribute.value) element.setAttribute(attribute.name, rounded);
    }
  }
}

/** Renders Plot options to a Part (no legend, no title: those belong to `composeFigure`). */
export function plotPart(options: Plot.PlotOptions, caption?: string): Part {
  const { document } = parseHTML("<html><body></body></html>") as unknown as { document: unknown };
  const node = Plot.plot({ ...options, document } as Plot.PlotOptions) as unknown as DomElement;
  const tag = node.tagName.toLowerCase();
  if (tag !== "svg") {
    throw new Error(
      `plotPart: Plot returned <${tag}>, expected <svg> (ask composeFigure for titles and legends)`,
    );
  }
  // The <style> block only sets the page background and `white-space: pre` in browsers; the figure paints
  // its own white background, and the class would collide when two Plot panels share one file.
  for (const style of Array.from(node.querySelectorAll("style"))) style.remove();
  node.removeAttribute("class");
  node.setAttribute("font-size", String(FONT_SIZE));
  node.setAttribute("font-family", FONT_FAMILY);
  roundGeometry(node);
  const width = Number(node.getAttribute("width"));
  const height = Number(node.getAttribute("height"));
  if (!(width > 0 && height > 0)) {
    throw new Error(`plotPart: Plot returned an svg of size ${width}x${height}`);
  }
  return { svg: node.outerHTML, width, height, caption };
}

/** Turns a standalone SVG file (from any figure function) back into a Part, for side-by-side layouts. */
export function partFromSvg(svg: string, caption?: string): Part {
  const body = svg.replace(/^\s*<\?xml[^>]*\?>\s*/, "");
  const open = /^<svg\b[^>]*>/.exec(body);
  if (!open) throw new Error(`partFromSvg: expected an <svg> document, got "${body.slice(0, 40)}"`);
  const width = Number(/\swidth="([\d.]+)"/.exec(open[0])?.[1]);
  const height = Number(/\sheight="([\d.]+)"/.exec(open[0])?.[1]);
  if (!(width > 0 && height > 0)) {
    throw new Error(
      `partFromSvg: the root <svg> needs numeric width and height, got ${open[0].slice(0, 120)}`,
    );
  }
  return { svg: body, width, height, caption };
}

/** How a legend entry's key is drawn. */
export type LegendKind = "swatch" | "line" | "dashed" | "dot" | "diamond" | "x";

export interface LegendItem {
  label: string;
  color: string;
  kind?: LegendKind;
  /** Fill opacity of a swatch (a translucent bar in the figure is a translucent key in the legend). */
  opacity?: number;
  /** Outline colour of a swatch or marker. */
  stroke?: string;
}

const PAD = 14;
const KEY_WIDTH = 18;
const LEGEND_ROW = 20;

/** A generous estimate of a text's width: overestimating only costs a little whitespace. */
export function textWidth(text: string, fontSize = FONT_SIZE): number {
  return [...text].length * fontSize * 0.6;
}

function legendKey(item: LegendItem, x: number, yMid: number): string {
  const c = esc(item.color);
  const stroke = esc(item.stroke ?? item.color);
  switch (item.kind ?? "swatch") {
    case "line":
      return `<line x1="${x}" y1="${yMid}" x2="${
        x + KEY_WIDTH
      }" y2="${yMid}" stroke="${c}" stroke-width="2.5"/>`;
    case "dashed":
      return `<line x1="${x}" y1="${yMid}" x2="${
        x + KEY_WIDTH
      }" y2="${yMid}" stroke="${c}" stroke-width="2" ` +
        `stroke-dasharray="4,3"/>`;
    case "dot":
      return `<circle cx="${x + KEY_WIDTH / 2}" cy="${yMid}" r="5" fill="${c}" stroke="${stroke}"/>`;
    case "diamond": {
      const cx = x + KEY_WIDTH / 2, r = 6;
      return `<path d="M${cx},${yMid - r}L${cx + r * 0.7},${yMid}L${cx},${yMid + r}L${
        cx - r * 0.7
      },${yMid}Z" ` +
        `fill="${c}" stroke="${stroke}" stroke-width="1.5"/>`;
    }
    case "x":
      return `<path d="${xMarkerPath(x + KEY_WIDTH / 2, yMid, 6)}" fill="${c}" stroke="${stroke}"/>`;
    default:
      return `<rect x="${x + 2}" y="${yMid - 6}" width="${KEY_WIDTH - 4}" height="12" fill="${c}" ` +
        `fill-opacity="${item.opacity ?? 1}" stroke="${stroke}"/>`;
  }
}

/**
 * The filled "X" marker of matplotlib (a cross of two bars), centred on (cx, cy), half-size r: an outline
 * in a dark colour keeps it visible on top of points of its own colour.
 */
export function xMarkerPath(cx: number, cy: number, r: number): string {
  return "M" + xMarkerCorners(r).map(([px, py]) => `${num(cx + px)},${num(cy + py)}`).join("L") + "Z";
}

/** The twelve corners of the "X" marker of half-size r around (0, 0), in drawing order. */
export function xMarkerCorners(r: number): [number, number][] {
  const t = r * 0.36; // half the bar thickness, measured along an axis
  return [
    [0, -t],
    [r - t, -r],
    [r, -r + t],
    [t, 0],
    [r, r - t],
    [r - t, r],
    [0, t],
    [-r + t, r],
    [-r, r - t],
    [-t, 0],
    [-r, -r + t],
    [-r + t, -r],
  ];
}

/** Places the legend items in rows that wrap at `width`; returns the markup and the height used. */
function layoutLegend(items: LegendItem[], left: number, top: number, width: number) {
  let x = left, row = 0;
  const out: string[] = [];
  for (const item of items) {
    const w = KEY_WIDTH + 6 + textWidth(item.label) + 18;
    if (x > left && x + w > left + width) {
      x = left;
      row++;
    }
    const yMid = top + row * LEGEND_ROW + LEGEND_ROW / 2;
    out.push(
      `<g aria-label="legend item">${legendKey(item, x, yMid)}<text x="${
        num(x + KEY_WIDTH + 6)
      }" y="${yMid}" ` +
        `dy="0.35em">${esc(item.label)}</text></g>`,
    );
    x += w;
  }
  return { markup: out.join(""), height: items.length ? (row + 1) * LEGEND_ROW : 0 };
}

export interface FigureLayout {
  title: string;
  subtitle?: string;
  legend?: LegendItem[];
  parts: Part[];
  /** Parts per row (default: all in one row). */
  columns?: number;
  /** A line of small print under the parts (e.g. what was left out of the view). */
  footnote?: string;
  /** Minimum width of the whole figure. */
  minWidth?: number;
}

/** One standalone SVG document: white background, title, optional subtitle and legend, parts in a grid. */
export function composeFigure(layout: FigureLayout): string {
  const { parts } = layout;
  if (parts.length === 0) throw new Error("composeFigure: expected at least one part");
  const columns = Math.max(1, Math.min(layout.columns ?? parts.length, parts.length));
  const gap = 16;
  const captionHeight = parts.some((p) => p.caption) ? 22 : 0;
  const colWidths: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const col = i % columns;
    colWidths[col] = Math.max(colWidths[col] ?? 0, parts[i].width);
  }
  const rowHeights: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const row = Math.floor(i / columns);
    rowHeights[row] = Math.max(rowHeights[row] ?? 0, parts[i].height + captionHeight);
  }
  const gridWidth = colWidths.reduce((a, b) => a + b, 0) + gap * (columns - 1);
  const titleWidth = textWidth(layout.title, TITLE_SIZE) * 0.95;
  const width = Math.ceil(Math.max(gridWidth + 2 * PAD, titleWidth + 2 * PAD, layout.minWidth ?? 0));

  const out: string[] = [];
  let y = PAD + TITLE_SIZE;
  out.push(
    `<text aria-label="title" x="${PAD}" y="${y}" font-size="${TITLE_SIZE}" font-weight="bold">` +
      `${esc(layout.title)}</text>`,
  );
  if (layout.subtitle) {
    y += FONT_SIZE + 8;
    out.push(`<text aria-label="subtitle" x="${PAD}" y="${y}" fill="#444">${esc(layout.subtitle)}</text>`);
  }
  y += 8;
  if (layout.legend?.length) {
    const legend = layoutLegend(layout.legend, PAD, y, width - 2 * PAD);
    out.push(`<g aria-label="legend">${legend.markup}</g>`);
    y += legend.height + 4;
  }
  // Grids narrower than the figure are centred, so a single panel does not hug the left edge.
  const left = Math.max(PAD, (width - gridWidth) / 2);
  let rowTop = y;
  for (let r = 0; r < rowHeights.length; r++) {
    let x = left;
    for (let c = 0; c < columns; c++) {
      const i = r * columns + c;
      if (i >= parts.length) break;
      const part = parts[i];
      if (part.caption) {
        out.push(
          `<text aria-label="panel caption" x="${num(x + part.width / 2)}" y="${num(rowTop + 15)}" ` +
            `text-anchor="middle" font-weight="bold">${esc(part.caption)}</text>`,
        );
      }
      out.push(placePart(part, x, rowTop + captionHeight));
      x += colWidths[c] + gap;
    }
    rowTop += rowHeights[r] + (r + 1 < rowHeights.length ? gap : 0);
  }
  let height = rowTop + PAD / 2;
  if (layout.footnote) {
    height += FONT_SIZE;
    out.push(
      `<text aria-label="footnote" x="${PAD}" y="${num(height - 2)}" font-size="11" fill="#444">` +
        `${esc(layout.footnote)}</text>`,
    );
    height += PAD / 2;
  }
  height = Math.ceil(height);
  return `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="${FONT_FAMILY}" font-size="${FONT_SIZE}" color="black" ` +
    `fill="black"><title>${esc(layout.title)}</title>` +
    `<rect aria-label="background" width="${width}" height="${height}" fill="white"/>` +
    out.join("") + `</svg>\n`;
}

/** Nests a part at (x, y): a nested <svg> keeps its own viewBox, so parts need no coordinate rewriting. */
function placePart(part: Part, x: number, y: number): string {
  const open = /^<svg\b([^>]*)>/.exec(part.svg);
  if (!open) throw new Error(`composeFigure: a part must start with <svg, got "${part.svg.slice(0, 30)}"`);
  // A position the part already carries would be a duplicate attribute: the placement replaces it.
  const attributes = open[1].replace(/\s(?:x|y)="[^"]*"/g, "");
  return `<svg x="${num(x)}" y="${num(y)}"${attributes}>` + part.svg.slice(open[0].length);
}

/** Several figures in one file, each keeping its own title and legend (e.g. LDA next to softmax). */
export function sideBySide(
  svgs: string[],
  titles: string[] = [],
  options: { title?: string; columns?: number } = {},
): string {
  if (svgs.length === 0) throw new Error("sideBySide: expected at least one svg");
  const parts = svgs.map((svg, i) => partFromSvg(svg, titles[i]));
  return composeFigure({
    title: options.title ?? (titles.filter(Boolean).join(" vs ") || "Comparison"),
    parts,
    columns: options.columns,
  });
}

/**
 * Where every value is the same (one epoch, or runs that tied), a domain around it: Plot would otherwise
 * make a zero-height scale with one long unrounded tick label.
 */
export function flatDomain(values: number[]): { domain?: [number, number] } {
  const lo = Math.min(...values), hi = Math.max(...values);
  if (lo !== hi) return {};
  const pad = Math.max(Math.abs(lo) * 0.05, 0.01);
  return { domain: [lo - pad, hi + pad] };
}
