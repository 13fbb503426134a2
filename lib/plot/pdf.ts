// SVG -> PDF for the figures: a vector PDF of the same drawing, for papers typeset with LaTeX (pdflatex takes
// PDF figures, not SVG). Not a general SVG renderer: it draws the subset our figures are made of (Observable
// Plot's marks inside lib/plot/svg.ts's layout) and stops with an error naming anything else, so that a new
// kind of mark is added here on purpose instead of going missing from the PDF.
//
// Elements: svg (the page, and nested viewports, clipped to their box), g, rect, line, circle, path (M L H V
// C Z, absolute and relative), text (one run of characters; subscript digits drawn smaller and lower),
// title (the document's title). Presentation attributes, inherited as in SVG: fill, stroke, stroke-width,
// fill-opacity, stroke-opacity, stroke-linecap, stroke-linejoin, stroke-dasharray, color (currentColor),
// font-size, font-weight, text-anchor, paint-order; transform: translate, scale, rotate.
//
// Text is set in the standard Helvetica and Helvetica-Bold that every PDF viewer has (the figures ask for
// "Helvetica, Arial, sans-serif"), Greek letters in the standard Symbol font; the glyph widths that place
// text by its text-anchor are the fonts' published metrics (pdf_fonts.ts). 1 SVG px is 0.75 pt (96 px to
// the inch), so a figure keeps its size. The same SVG gives the same bytes: no date is written.

import { DOMParser } from "linkedom";
import { type FontName, pdfString, runsWidth, textRuns } from "./pdf_fonts.ts";

/** The name of a figure's PDF beside its SVG (`--pdf`): X.svg -> X.pdf. */
export function pdfFileOf(svgFile: string): string {
  return svgFile.replace(/\.svg$/, ".pdf");
}

/** PDF points per SVG px. */
const PT_PER_PX = 0.75;

// --- Attributes --------------------------------------------------------------------------------------------

/** A number in the content stream: at most 3 decimals, no exponent, no "-0". */
function n(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`svgToPdf: a coordinate is not finite (${v})`);
  const r = Math.round(v * 1000) / 1000;
  return r === 0 ? "0" : String(r); // -0 too
}

const NAMED_COLORS: Record<string, [number, number, number]> = { black: [0, 0, 0], white: [1, 1, 1] };

/** "r g b" in 0..1 from #rgb, #rrggbb or a named colour; undefined for "none". */
function color(value: string, current: string, where: string): [number, number, number] | undefined {
  const v = value.trim().toLowerCase();
  if (v === "none") return undefined;
  if (v === "currentcolor") return color(current, "black", where);
  if (NAMED_COLORS[v]) return NAMED_COLORS[v];
  let m = /^#([0-9a-f])([0-9a-f])([0-9a-f])$/.exec(v);
  if (m) return [m[1], m[2], m[3]].map((h) => parseInt(h + h, 16) / 255) as [number, number, number];
  m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/.exec(v);
  if (m) return [m[1], m[2], m[3]].map((h) => parseInt(h, 16) / 255) as [number, number, number];
  throw new Error(`svgToPdf: unsupported colour "${value}" ${where}`);
}

/** A length: a number of px, or of em (relative to the font size). */
function length(value: string, fontSize: number, where: string): number {
  const m = /^\s*(-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)\s*(em|px)?\s*$/i.exec(value);
  if (!m) throw new Error(`svgToPdf: unsupported length "${value}" ${where}`);
  return Number(m[1]) * (m[2]?.toLowerCase() === "em" ? fontSize : 1);
}

/** An SVG transform list as one PDF matrix [a b c d e f]. */
function transformMatrix(value: string, where: string): number[] {
  let m = [1, 0, 0, 1, 0, 0];
  const re = /\s*(translate|scale|rotate)\s*\(([^)]*)\)\s*,?/gy;
  let at = 0;
  for (let t = re.exec(value); t; t = re.exec(value)) {
    at = re.lastIndex;
    const a = t[2].trim().split(/[\s,]+/).map(Number);
    if (a.some((x) => !Number.isFinite(x))) throw new Error(`svgToPdf: bad transform "${value}" ${where}`);
    let step: number[];
    if (t[1] === "translate") step = [1, 0, 0, 1, a[0], a[1] ?? 0];
    else if (t[1] === "scale") step = [a[0], 0, 0, a[1] ?? a[0], 0, 0];
    else {
      const r = a[0] * Math.PI / 180, c = Math.cos(r), s = Math.sin(r);
      const [cx, cy] = [a[1] ?? 0, a[2] ?? 0];
      step = [c, s, -s, c, cx - c * cx + s * cy, cy - s * cx - c * cy];
    }
    m = multiply(step, m);
  }
  if (value.slice(at).trim() !== "") throw new Error(`svgToPdf: unsupported transform "${value}" ${where}`);
  return m;
}

/** The matrix that applies `inner` first, then `outer` (PDF's row-vector convention). */
function multiply(inner: number[], outer: number[]): number[] {
  const [a, b, c, d, e, f] = inner, [A, B, C, D, E, F] = outer;
  return [a * A + b * C, a * B + b * D, c * A + d * C, c * B + d * D, e * A + f * C + E, e * B + f * D + F];
}

interface Style {
  fill: string;
  stroke: string;
  strokeWidth: number;
  fillOpacity: number;
  strokeOpacity: number;
  lineCap: number;
  lineJoin: number;
  dash: number[];
  color: string;
  fontSize: number;
  bold: boolean;
  anchor: "start" | "middle" | "end";
  strokeFirst: boolean;
}

const ROOT_STYLE: Style = {
  fill: "black",
  stroke: "none",
  strokeWidth: 1,
  fillOpacity: 1,
  strokeOpacity: 1,
  lineCap: 0,
  lineJoin: 0,
  dash: [],
  color: "black",
  fontSize: 16,
  bold: false,
  anchor: "start",
  strokeFirst: false,
};

// Attributes that change nothing in a PDF: accessibility, the font family (always Helvetica here),
// rendering hints.
const IGNORED = new Set([
  "xmlns",
  "aria-label",
  "aria-description",
  "aria-hidden",
  "role",
  "font-family",
  "font-variant",
  "shape-rendering",
]);

// Geometry attributes, read by each element itself.
const GEOMETRY: Record<string, readonly string[]> = {
  svg: ["x", "y", "width", "height", "viewBox"],
  g: [],
  rect: ["x", "y", "width", "height"],
  line: ["x1", "y1", "x2", "y2"],
  circle: ["cx", "cy", "r"],
  path: ["d"],
  text: ["x", "y", "dx", "dy"],
  title: [],
};

interface Element {
  tagName: string;
  attributes: ArrayLike<{ name: string; value: string }>;
  childNodes: ArrayLike<Element & { nodeType: number }>;
  textContent: string;
  getAttribute(name: string): string | null;
}

/** The element's style: its parent's with its own presentation attributes applied. */
function styleOf(el: Element, parent: Style, where: string): Style {
  const s = { ...parent };
  const tag = el.tagName.toLowerCase();
  for (const { name, value } of Array.from(el.attributes)) {
    if (IGNORED.has(name) || GEOMETRY[tag]?.includes(name) || name === "transform") continue;
    const num = () => {
      const v = Number(value);
      if (!Number.isFinite(v)) throw new Error(`svgToPdf: ${name}="${value}" is not a number ${where}`);
      return v;
    };
    switch (name) {
      case "fill":
        s.fill = value;
        break;
      case "stroke":
        s.stroke = value;
        break;
      case "color":
        s.color = value;
        break;
      case "stroke-width":
        s.strokeWidth = num();
        break;
      case "fill-opacity":
        s.fillOpacity = num();
        break;
      case "stroke-opacity":
        s.strokeOpacity = num();
        break;
      case "stroke-linecap": {
        const caps: Record<string, number> = { butt: 0, round: 1, square: 2 };
        if (caps[value] === undefined) throw new Error(`svgToPdf: stroke-linecap="${value}" ${where}`);
        s.lineCap = caps[value];
        break;
      }
      case "stroke-linejoin": {
        const joins: Record<string, number> = { miter: 0, round: 1, bevel: 2 };
        if (joins[value] === undefined) throw new Error(`svgToPdf: stroke-linejoin="${value}" ${where}`);
        s.lineJoin = joins[value];
        break;
      }
      case "stroke-dasharray":
        s.dash = value === "none" ? [] : value.trim().split(/[\s,]+/).map(Number);
        if (s.dash.some((x) => !(x >= 0))) throw new Error(`svgToPdf: stroke-dasharray="${value}" ${where}`);
        break;
      case "font-size":
        s.fontSize = length(value, parent.fontSize, where);
        break;
      case "font-weight":
        if (!["bold", "normal", "700", "400"].includes(value)) {
          throw new Error(`svgToPdf: font-weight="${value}" ${where}`);
        }
        s.bold = value === "bold" || value === "700";
        break;
      case "text-anchor":
        if (value !== "start" && value !== "middle" && value !== "end") {
          throw new Error(`svgToPdf: text-anchor="${value}" ${where}`);
        }
        s.anchor = value;
        break;
      case "paint-order":
        s.strokeFirst = value.trim().startsWith("stroke");
        break;
      default:
        throw new Error(`svgToPdf: unsupported attribute ${name}="${value}" ${where}`);
    }
  }
  return s;
}

// --- Geometry ----------------------------------------------------------------------------------------------

/** Path data (M L H V C Z, absolute and relative) as PDF path operators. */
function pathOps(d: string, where: string): string {
  const tokens = d.match(/[A-Za-z]|-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?/g) ?? [];
  const out: string[] = [];
  let i = 0, cmd = "", x = 0, y = 0, sx = 0, sy = 0;
  const next = () => {
    const v = Number(tokens[i++]);
    if (!Number.isFinite(v)) throw new Error(`svgToPdf: bad path data "${d.slice(0, 60)}" ${where}`);
    return v;
  };
  while (i < tokens.length) {
    if (/[A-Za-z]/.test(tokens[i])) cmd = tokens[i++];
    else if (cmd === "M") cmd = "L"; // coordinates after a moveto are linetos
    else if (cmd === "m") cmd = "l";
    else if (cmd === "" || cmd === "Z" || cmd === "z") {
      throw new Error(`svgToPdf: bad path data "${d.slice(0, 60)}" ${where}`);
    }
    const rel = cmd === cmd.toLowerCase();
    switch (cmd.toUpperCase()) {
      case "M":
      case "L": {
        const [px, py] = [next(), next()];
        [x, y] = rel ? [x + px, y + py] : [px, py];
        if (cmd.toUpperCase() === "M") [sx, sy] = [x, y];
        out.push(`${n(x)} ${n(y)} ${cmd.toUpperCase() === "M" ? "m" : "l"}`);
        break;
      }
      case "H":
        x = rel ? x + next() : next();
        out.push(`${n(x)} ${n(y)} l`);
        break;
      case "V":
        y = rel ? y + next() : next();
        out.push(`${n(x)} ${n(y)} l`);
        break;
      case "C": {
        const p = [next(), next(), next(), next(), next(), next()];
        if (rel) { for (let k = 0; k < 6; k += 2) [p[k], p[k + 1]] = [p[k] + x, p[k + 1] + y]; }
        out.push(`${p.map(n).join(" ")} c`);
        [x, y] = [p[4], p[5]];
        break;
      }
      case "Z":
        out.push("h");
        [x, y] = [sx, sy];
        break;
      default:
        throw new Error(`svgToPdf: unsupported path command "${cmd}" ${where}`);
    }
  }
  return out.join(" ");
}

/** A circle as four cubic Bézier quarter arcs. */
function circleOps(cx: number, cy: number, r: number): string {
  const k = 0.5522847498307936 * r;
  return [
    `${n(cx + r)} ${n(cy)} m`,
    `${n(cx + r)} ${n(cy + k)} ${n(cx + k)} ${n(cy + r)} ${n(cx)} ${n(cy + r)} c`,
    `${n(cx - k)} ${n(cy + r)} ${n(cx - r)} ${n(cy + k)} ${n(cx - r)} ${n(cy)} c`,
    `${n(cx - r)} ${n(cy - k)} ${n(cx - k)} ${n(cy - r)} ${n(cx)} ${n(cy - r)} c`,
    `${n(cx + k)} ${n(cy - r)} ${n(cx + r)} ${n(cy - k)} ${n(cx + r)} ${n(cy)} c h`,
  ].join(" ");
}

// --- Drawing -----------------------------------------------------------------------------------------------

class Page {
  readonly ops: string[] = [];
  /** ExtGState names by "fill-opacity stroke-opacity". */
  readonly alphas = new Map<string, string>();
  readonly fonts = new Set<FontName>();
  title = "";

  /**
   * Colours, line style and opacity for painting with `s`; returns the operator that paints a shape so, and
   * whether there is a fill and a stroke.
   */
  paint(s: Style, where: string): { op: string; fill: boolean; stroke: boolean } {
    const fill = color(s.fill, s.color, where), stroke = color(s.stroke, s.color, where);
    const ops: string[] = [];
    if (fill) ops.push(`${fill.map(n).join(" ")} rg`);
    if (stroke) {
      ops.push(`${stroke.map(n).join(" ")} RG`, `${n(s.strokeWidth)} w`, `${s.lineCap} J`, `${s.lineJoin} j`);
      if (s.dash.length) ops.push(`[${s.dash.map(n).join(" ")}] 0 d`);
    }
    const fa = fill ? s.fillOpacity : 1, sa = stroke ? s.strokeOpacity : 1;
    if (fa !== 1 || sa !== 1) {
      const key = `${n(fa)} ${n(sa)}`;
      if (!this.alphas.has(key)) this.alphas.set(key, `A${this.alphas.size}`);
      ops.push(`/${this.alphas.get(key)} gs`);
    }
    this.ops.push(...ops);
    const op = fill && stroke ? "B" : fill ? "f" : stroke ? "S" : "n";
    return { op, fill: fill !== undefined, stroke: stroke !== undefined };
  }

  draw(el: Element, parent: Style, path: string): void {
    const tag = el.tagName.toLowerCase();
    const where = `at ${path}`;
    if (!(tag in GEOMETRY)) throw new Error(`svgToPdf: unsupported element <${tag}> ${where}`);
    if (tag === "title") {
      if (!this.title) this.title = el.textContent.trim();
      return;
    }
    const s = styleOf(el, parent, where);
    const attr = (name: string, fallback?: number) => {
      const v = el.getAttribute(name);
      if (v === null) {
        if (fallback === undefined) throw new Error(`svgToPdf: <${tag}> without ${name} ${where}`);
        return fallback;
      }
      return length(v, s.fontSize, where);
    };
    this.ops.push("q");
    const transform = el.getAttribute("transform");
    if (transform) this.ops.push(`${transformMatrix(transform, where).map(n).join(" ")} cm`);
    switch (tag) {
      case "svg": {
        // A nested viewport: its box at (x, y), the viewBox scaled into it, and what lies outside clipped.
        const [x, y, w, h] = [attr("x", 0), attr("y", 0), attr("width"), attr("height")];
        const vb = (el.getAttribute("viewBox") ?? `0 0 ${w} ${h}`).trim().split(/[\s,]+/).map(Number);
        if (vb.length !== 4 || vb.some((v) => !Number.isFinite(v)) || !(vb[2] > 0 && vb[3] > 0)) {
          throw new Error(`svgToPdf: bad viewBox "${el.getAttribute("viewBox")}" ${where}`);
        }
        this.ops.push(
          `${n(w / vb[2])} 0 0 ${n(h / vb[3])} ${n(x - vb[0] * w / vb[2])} ${n(y - vb[1] * h / vb[3])} cm`,
          `${n(vb[0])} ${n(vb[1])} ${n(vb[2])} ${n(vb[3])} re W n`,
        );
        this.children(el, s, path);
        break;
      }
      case "g":
        this.children(el, s, path);
        break;
      case "rect": {
        const { op } = this.paint(s, where);
        this.ops.push(
          `${n(attr("x", 0))} ${n(attr("y", 0))} ${n(attr("width"))} ${n(attr("height"))} re ${op}`,
        );
        break;
      }
      case "line": {
        const { op } = this.paint({ ...s, fill: "none" }, where);
        const [x1, y1, x2, y2] = [attr("x1", 0), attr("y1", 0), attr("x2", 0), attr("y2", 0)];
        this.ops.push(`${n(x1)} ${n(y1)} m ${n(x2)} ${n(y2)} l ${op}`);
        break;
      }
      case "circle": {
        const { op } = this.paint(s, where);
        this.ops.push(`${circleOps(attr("cx", 0), attr("cy", 0), attr("r"))} ${op}`);
        break;
      }
      case "path": {
        const d = el.getAttribute("d");
        if (!d) break; // an empty path draws nothing
        const { op } = this.paint(s, where);
        this.ops.push(`${pathOps(d, where)} ${op}`);
        break;
      }
      case "text":
        this.text(el, s, where, attr);
        break;
    }
    this.ops.push("Q");
  }

  private children(el: Element, s: Style, path: string): void {
    let k = 0;
    for (const child of Array.from(el.childNodes)) {
      if (child.nodeType === 1) this.draw(child, s, `${path} > ${child.tagName.toLowerCase()}[${k++}]`);
      else if (child.nodeType === 3 && child.textContent.trim() !== "") {
        throw new Error(`svgToPdf: text outside a <text> element at ${path}`);
      }
    }
  }

  private text(
    el: Element,
    s: Style,
    where: string,
    attr: (name: string, fallback?: number) => number,
  ): void {
    for (const child of Array.from(el.childNodes)) {
      if (child.nodeType === 1) throw new Error(`svgToPdf: <${child.tagName}> inside <text> ${where}`);
    }
    // SVG's default white-space handling: newlines dropped, tabs as spaces, runs of spaces as one, trimmed.
    const content = el.textContent.replace(/\r?\n/g, "").replace(/\t/g, " ").replace(/ +/g, " ").trim();
    if (content === "") return;
    const runs = textRuns(content, s.bold);
    const width = runsWidth(runs) * s.fontSize / 1000;
    const x = attr("x", 0) + attr("dx", 0) -
      (s.anchor === "middle" ? width / 2 : s.anchor === "end" ? width : 0);
    const y = attr("y", 0) + attr("dy", 0);
    // The page's y axis points down (SVG's): the text matrix flips the glyphs back upright.
    const show = (mode: number) => {
      const parts = [`BT ${mode} Tr 1 0 0 -1 ${n(x)} ${n(y)} Tm`];
      for (const r of runs) {
        this.fonts.add(r.font);
        const rise = r.rise ? ` ${n(r.rise * s.fontSize)} Ts` : "";
        parts.push(
          `/${r.font} ${n(s.fontSize * r.scale)} Tf${rise} ${pdfString(r.bytes)} Tj${rise ? " 0 Ts" : ""}`,
        );
      }
      this.ops.push(parts.join(" ") + " ET");
    };
    const { fill, stroke } = this.paint(s, where);
    // paint-order="stroke": the outline under the letters (a halo); otherwise fill, then stroke.
    if (stroke && s.strokeFirst) show(1);
    if (fill) show(0);
    if (stroke && !s.strokeFirst) show(1);
  }
}

// --- The file ----------------------------------------------------------------------------------------------

async function deflate(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const FONT_OBJECTS: Record<FontName, string> = {
  F1: "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding 4 0 R >>",
  F2: "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding 4 0 R >>",
  F3: "<< /Type /Font /Subtype /Type1 /BaseFont /Symbol >>",
};

/** A PDF text string for the document information (ASCII; anything else replaced by "?"). */
function infoString(text: string): string {
  return pdfString(Array.from(text, (ch) => {
    const cp = ch.codePointAt(0)!;
    return cp >= 32 && cp <= 126 ? cp : 63;
  }));
}

/**
 * One standalone SVG figure (as lib/plot writes them) as the bytes of a one-page vector PDF of the same size.
 * Throws a one-line error naming the element, attribute, value or character it cannot draw.
 */
export async function svgToPdf(svg: string): Promise<Uint8Array> {
  const doc = new DOMParser().parseFromString(svg, "image/svg+xml") as unknown as {
    documentElement: Element;
  };
  const root = doc.documentElement;
  if (!root || root.tagName.toLowerCase() !== "svg") {
    throw new Error("svgToPdf: the document is not an <svg>");
  }
  const width = Number(root.getAttribute("width")), height = Number(root.getAttribute("height"));
  if (!(width > 0 && height > 0)) {
    throw new Error(`svgToPdf: the root <svg> needs width and height in px, got ${width} x ${height}`);
  }
  const page = new Page();
  // PDF's origin is the bottom left corner and its unit the point: flip y and scale px to pt once.
  page.ops.push(`${PT_PER_PX} 0 0 ${-PT_PER_PX} 0 ${n(height * PT_PER_PX)} cm`);
  page.draw(root, ROOT_STYLE, "svg");
  const content = await deflate(new TextEncoder().encode(page.ops.join("\n")));

  // Objects: 1 catalog, 2 pages, 3 page, 4 the fonts' encoding, 5 the content, 6 the info, then fonts and
  // opacity states.
  const objects: string[] = [];
  const add = (o: string) => objects.push(o);
  const fonts = [...page.fonts].sort().map((f) => `/${f} ${add(FONT_OBJECTS[f]) + 6} 0 R`);
  const alphas = [...page.alphas].map(([key, name]) => {
    const [fa, sa] = key.split(" ");
    return `/${name} ${add(`<< /Type /ExtGState /ca ${fa} /CA ${sa} >>`) + 6} 0 R`;
  });
  const fixed: (string | Uint8Array<ArrayBuffer>)[] = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${n(width * PT_PER_PX)} ${n(height * PT_PER_PX)}] ` +
    `/Resources << /Font << ${fonts.join(" ")} >> /ExtGState << ${alphas.join(" ")} >> >> /Contents 5 0 R >>`,
    "<< /Type /Encoding /BaseEncoding /WinAnsiEncoding /Differences [127 /minus] >>",
    content,
    `<< /Title ${infoString(page.title)} /Producer (webgpu-mda lib/plot/pdf.ts) >>`,
  ];
  const all = [...fixed, ...objects];
  const enc = new TextEncoder();
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let size = 0;
  const put = (b: Uint8Array<ArrayBuffer> | string) => {
    const bytes = typeof b === "string" ? enc.encode(b) : b;
    chunks.push(bytes);
    size += bytes.length;
  };
  // The header, and a comment of bytes above 127 that tells transfer tools the file is binary.
  put("%PDF-1.4\n%");
  put(new Uint8Array([0xe2, 0xe3, 0xcf, 0xd3, 0x0a]));
  const offsets: number[] = [];
  all.forEach((o, i) => {
    offsets.push(size);
    if (typeof o === "string") put(`${i + 1} 0 obj\n${o}\nendobj\n`);
    else {
      put(`${i + 1} 0 obj\n<< /Length ${o.length} /Filter /FlateDecode >>\nstream\n`);
      put(o);
      put("\nendstream\nendobj\n");
    }
  });
  const xref = size;
  put(`xref\n0 ${all.length + 1}\n0000000000 65535 f \n`);
  for (const off of offsets) put(`${String(off).padStart(10, "0")} 00000 n \n`);
  put(`trailer\n<< /Size ${all.length + 1} /Root 1 0 R /Info 6 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  return new Uint8Array(await new Blob(chunks).arrayBuffer());
}
