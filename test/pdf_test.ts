// SVG -> PDF (lib/plot/pdf.ts): every kind of figure we draw converts, the file's structure is sound (each
// cross-reference offset lands on its object), the drawing operators are the SVG's geometry, text sits where
// its anchor says, and what cannot be drawn is a one-line error naming it. Where poppler-utils is installed
// (CI installs it), poppler reads every PDF, finds every text of its SVG in it and renders it; where
// fonts-urw-base35 is (CI again), the glyph widths are checked against its metric-compatible fonts' AFM files.

import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { svgToPdf } from "../lib/plot/pdf.ts";
import { textWidth } from "../lib/plot/pdf_fonts.ts";
import { reliabilityFigure, sideBySide } from "../lib/plot/mod.ts";
import { aggregateSweep, sweepFigures } from "../lib/report/mod.ts";

const RUN = "results/fashion_mda_quick";

/** Every kind of figure: the committed run's six, a comparison's side-by-side panels and a sweep's three. */
async function allFigures(): Promise<Record<string, string>> {
  const figures: Record<string, string> = {};
  for (const f of ["accuracy", "loss", "latent", "components", "reliability", "confidence"]) {
    figures[f] = await Deno.readTextFile(`${RUN}/${f}.svg`);
  }
  const metrics = JSON.parse(await Deno.readTextFile(`${RUN}/metrics.json`));
  const rel = reliabilityFigure(metrics.reliability10, "LDA: reliability");
  figures.side_by_side = sideBySide([rel, rel], ["LDA", "softmax"], { title: "Reliability diagrams" });
  const sweep = sweepFigures(aggregateSweep([
    { lambda: 0.1, seed: 0, test_accuracy: 0.93, test_ece15: 0.04, sigma: 0.5 },
    { lambda: 0.1, seed: 1, test_accuracy: 0.95, test_ece15: 0.05, sigma: 0.7 },
    { lambda: 1, seed: 0, test_accuracy: 0.91, test_ece15: 0.02, sigma: 0.8 },
    { lambda: 10, seed: 0, test_accuracy: 0.9, test_ece15: 0.01, sigma: 0.9 },
  ]));
  for (const [k, svg] of Object.entries(sweep)) figures[`sweep_${k}`] = svg;
  return figures;
}

const latin1 = (bytes: Uint8Array) => Array.from(bytes, (b) => String.fromCharCode(b)).join("");

/** The PDF's structure: header, every xref offset on its "N 0 obj", startxref on the xref, the trailer. */
function checkStructure(pdf: Uint8Array, name: string): void {
  const text = latin1(pdf);
  assert(text.startsWith("%PDF-1.4\n"), `${name}: header`);
  assert(text.endsWith("%%EOF\n"), `${name}: end`);
  const startxref = Number(/startxref\n(\d+)\n%%EOF\n$/.exec(text)?.[1]);
  assertEquals(text.slice(startxref, startxref + 5), "xref\n", `${name}: startxref`);
  const [, count] = /^xref\n0 (\d+)\n/.exec(text.slice(startxref))!.map(Number);
  const entries = text.slice(startxref).split("\n").slice(3, 2 + count);
  assertEquals(entries.length, count - 1);
  entries.forEach((e, i) => {
    const offset = Number(e.slice(0, 10));
    assertEquals(
      text.slice(offset, offset + `${i + 1} 0 obj`.length),
      `${i + 1} 0 obj`,
      `${name}: object ${i + 1}`,
    );
  });
  assert(new RegExp(`trailer\\n<< /Size ${count} /Root 1 0 R /Info 6 0 R >>`).test(text), `${name}: trailer`);
}

/** The page's content stream, inflated. */
async function contentOf(pdf: Uint8Array): Promise<string> {
  const text = latin1(pdf);
  const start = text.indexOf("stream\n", text.indexOf("5 0 obj")) + "stream\n".length;
  const length = Number(/5 0 obj\n<< \/Length (\d+)/.exec(text)![1]);
  const stream = new Blob([pdf.slice(start, start + length)]).stream()
    .pipeThrough(new DecompressionStream("deflate"));
  return new TextDecoder("latin1").decode(await new Response(stream).arrayBuffer());
}

Deno.test("pdf: every kind of figure converts to a sound PDF of the same size, the same bytes every time", async () => {
  for (const [name, svg] of Object.entries(await allFigures())) {
    const pdf = await svgToPdf(svg);
    checkStructure(pdf, name);
    const [w, h] = [/width="([\d.]+)"/, /height="([\d.]+)"/].map((re) => Number(re.exec(svg)![1]));
    assert(latin1(pdf).includes(`/MediaBox [0 0 ${w * 0.75} ${h * 0.75}]`), `${name}: page size`);
    assertEquals(await svgToPdf(svg), pdf, `${name}: deterministic`);
  }
});

Deno.test("pdf: shapes, colours, opacity, dashes, transforms and anchored text become the same PDF operators", async () => {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100" viewBox="0 0 200 100"
    font-size="12" fill="black"><title>t</title>
    <rect x="10" y="20" width="30" height="40" fill="#ff0000" stroke="#00f" stroke-width="2"/>
    <line x1="1" y1="2" x2="3" y2="4" stroke="currentColor" color="#808080" stroke-dasharray="7,4"/>
    <g transform="translate(5,6) scale(2)" fill-opacity="0.5"><circle cx="0" cy="0" r="1"/></g>
    <path d="M0,0h1v1h-1z" fill="none" stroke="black" stroke-linecap="round"/>
    <text x="100" y="50" text-anchor="middle">
      Hi </text>
    <text x="100" y="70" text-anchor="end" dy="0.5em" font-weight="bold">λ−1</text>
    <svg x="10" y="10" width="50" height="20" viewBox="0 0 100 40"><rect width="1" height="1"/></svg>
  </svg>`;
  const ops = await contentOf(await svgToPdf(svg));
  // The page: y flipped, px to pt.
  assert(ops.startsWith("0.75 0 0 -0.75 0 75 cm\n"), ops.slice(0, 40));
  assert(ops.includes("1 0 0 rg\n0 0 1 RG\n2 w\n0 J\n0 j\n10 20 30 40 re B"), "rect: fill and stroke");
  assert(
    ops.includes("0.502 0.502 0.502 RG\n1 w\n0 J\n0 j\n[7 4] 0 d\n1 2 m 3 4 l S"),
    "line: currentColor, dash",
  );
  assert(ops.includes("2 0 0 2 5 6 cm"), "transform: translate then scale");
  assert(ops.includes("/A0 gs\n1 0 m 1 0.552 0.552 1 0 1 c"), "circle: Bezier quarters, fill opacity");
  assert(ops.includes("0 0 m 1 0 l 1 1 l 0 1 l h S"), "path: relative h, v, close");
  // "Hi" in 12 px Helvetica is (722 + 222) / 1000 * 12 = 11.328 px wide: centred, it starts at 94.336.
  assert(ops.includes("BT 0 Tr 1 0 0 -1 94.336 50 Tm /F1 12 Tf (Hi) Tj ET"), "middle-anchored text");
  // Bold "λ−1": lambda from Symbol (549), minus (584) and "1" (556) from Helvetica-Bold; ends at x = 100.
  const width = (549 + 584 + 556) * 12 / 1000;
  assert(
    ops.includes(
      `BT 0 Tr 1 0 0 -1 ${
        Math.round((100 - width) * 1000) / 1000
      } 76 Tm /F3 12 Tf (l) Tj /F2 12 Tf (\\1771) Tj ET`,
    ),
    "end-anchored text in two fonts, dy in em",
  );
  assert(ops.includes("0.5 0 0 0.5 10 10 cm\n0 0 100 40 re W n"), "nested viewport: scaled and clipped");
});

Deno.test("pdf: what it cannot draw is one line naming it", async () => {
  const wrap = (body: string) =>
    `<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" viewBox="0 0 10 10">${body}</svg>`;
  const cases: [string, RegExp][] = [
    [wrap(`<ellipse rx="1" ry="2"/>`), /^svgToPdf: unsupported element <ellipse> at svg > ellipse\[0\]$/],
    [
      wrap(`<rect width="1" height="1" filter="url(#f)"/>`),
      /^svgToPdf: unsupported attribute filter="url\(#f\)"/,
    ],
    [wrap(`<path d="M0,0A1,1 0 0 1 2,2"/>`), /^svgToPdf: unsupported path command "A" at svg > path\[0\]$/],
    [wrap(`<text>∑ x</text>`), /^svgToPdf: no font here for the character "∑" \(U\+2211\) in the text "∑ x"/],
    [wrap(`<rect width="1" height="1" fill="rgb(1,2,3)"/>`), /^svgToPdf: unsupported colour "rgb\(1,2,3\)"/],
    [wrap(`<g transform="skewX(3)"/>`), /^svgToPdf: unsupported transform "skewX\(3\)"/],
    [`<svg xmlns="http://www.w3.org/2000/svg"/>`, /^svgToPdf: the root <svg> needs width and height/],
  ];
  for (const [svg, re] of cases) {
    await rejects(svgToPdf(svg), (e: Error) => re.test(e.message) && !e.message.includes("\n"), svg);
  }
});

const hasPoppler = await new Deno.Command("pdftotext", { args: ["-v"], stderr: "null" }).output()
  .then(() => true, () => false);

Deno.test({
  name: "pdf: poppler reads every figure, finds every text of its SVG where the SVG puts it, and renders it",
  ignore: !hasPoppler,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "pdf_test_" });
    try {
      for (const [name, svg] of Object.entries(await allFigures())) {
        const file = `${dir}/${name}.pdf`;
        await Deno.writeFile(file, await svgToPdf(svg));
        const text = await new Deno.Command("pdftotext", { args: ["-raw", file, "-"], stderr: "piped" })
          .output();
        assertEquals(new TextDecoder().decode(text.stderr), "", `${name}: pdftotext complained`);
        const got = new TextDecoder().decode(text.stdout).replace(/\s+/g, " ");
        const texts = [...svg.matchAll(/<text[^>]*>([^<]+)<\/text>/g)].map((m) =>
          m[1].replaceAll("&amp;", "&").replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll(
            "&quot;",
            '"',
          )
        );
        assert(texts.length > 0, name);
        for (const t of texts) {
          // poppler writes the minus sign as "-" or U+2212 depending on its version, subscripts as plain
          // digits, and may split a word where the font size changes: compare without these differences.
          const norm = (s: string) =>
            s.replace(/\u2212/g, "-").replace(/[\u2080-\u2089]/g, (d) => String(d.charCodeAt(0) - 0x2080))
              .replace(/\s+/g, "");
          assert(norm(got).includes(norm(t)), `${name}: "${t}" not found in the PDF's text`);
        }
        // The title: its left edge is where the SVG puts it (x = 14 px = 10.5 pt from the left).
        const bbox = await new Deno.Command("pdftotext", { args: ["-bbox", file, "-"] }).output();
        const first = /<word xMin="([\d.]+)" yMin="([\d.]+)"/.exec(new TextDecoder().decode(bbox.stdout));
        assert(first && Math.abs(Number(first[1]) - 10.5) < 0.5, `${name}: first word at ${first?.[1]}`);
        const png = await new Deno.Command("pdftoppm", {
          args: ["-r", "20", "-png", "-singlefile", file, `${dir}/${name}`],
          stderr: "piped",
        }).output();
        assertEquals([png.code, new TextDecoder().decode(png.stderr)], [0, ""], `${name}: pdftoppm`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// WinAnsi's glyph names of the printable ASCII characters 32..126.
// deno-fmt-ignore
const ASCII_GLYPHS = [
  "space", "exclam", "quotedbl", "numbersign", "dollar", "percent", "ampersand", "quotesingle", "parenleft",
  "parenright", "asterisk", "plus", "comma", "hyphen", "period", "slash", "zero", "one", "two", "three", "four",
  "five", "six", "seven", "eight", "nine", "colon", "semicolon", "less", "equal", "greater", "question", "at",
  ..."ABCDEFGHIJKLMNOPQRSTUVWXYZ", "bracketleft", "backslash", "bracketright", "asciicircum", "underscore",
  "grave", ..."abcdefghijklmnopqrstuvwxyz", "braceleft", "bar", "braceright", "asciitilde",
];
const EXTRA_GLYPHS: Record<string, string> = {
  "\u2212": "minus",
  "–": "endash",
  "—": "emdash",
  "§": "section",
  "°": "degree",
  "±": "plusminus",
  "·": "periodcentered",
  "×": "multiply",
  "\u00a0": "space",
};
const SYMBOL_GLYPHS: Record<string, string> = { "λ": "lambda", "σ": "sigma", "μ": "mu", "π": "pi" };

const URW = "/usr/share/fonts/type1/urw-base35";

/** Glyph name -> advance width from an AFM file. */
async function afmWidths(file: string): Promise<Map<string, number>> {
  const widths = new Map<string, number>();
  for (const m of (await Deno.readTextFile(file)).matchAll(/^C -?\d+ ; WX (\d+) ; N (\S+)/gm)) {
    widths.set(m[2], Number(m[1]));
  }
  return widths;
}

Deno.test({
  name:
    "pdf: the glyph widths that place text are Helvetica's and Symbol's (URW's metric-compatible AFM files)",
  ignore: !(await Deno.stat(`${URW}/NimbusSans-Regular.afm`).then(() => true, () => false)),
  async fn() {
    assertEquals(ASCII_GLYPHS.length, 95);
    for (const [bold, file] of [[false, "NimbusSans-Regular"], [true, "NimbusSans-Bold"]] as const) {
      const afm = await afmWidths(`${URW}/${file}.afm`);
      ASCII_GLYPHS.forEach((glyph, i) => {
        assertEquals(textWidth(String.fromCharCode(32 + i), bold), afm.get(glyph), `${file} ${glyph}`);
      });
      for (const [ch, glyph] of Object.entries(EXTRA_GLYPHS)) {
        assertEquals(textWidth(ch, bold), afm.get(glyph), `${file} ${glyph}`);
      }
    }
    const symbol = await afmWidths(`${URW}/StandardSymbolsPS.afm`);
    for (const [ch, glyph] of Object.entries(SYMBOL_GLYPHS)) {
      assertEquals(textWidth(ch, true), symbol.get(glyph), glyph);
    }
  },
});
