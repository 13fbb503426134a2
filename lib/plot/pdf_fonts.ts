// The fonts of the figures' PDFs (lib/plot/pdf.ts): the standard Helvetica, Helvetica-Bold and Symbol that
// every PDF viewer has, so nothing is embedded. What a text needs from them: which font and byte draws each
// character, and how wide it is (Adobe's published metrics, in 1/1000 em; test/pdf_test.ts checks them
// against URW's metric-compatible AFM files), so that text sits where its SVG text-anchor puts it.

// Helvetica and Helvetica-Bold advance widths of the printable ASCII characters 32..126, in 1/1000 em.
// deno-fmt-ignore
const HELVETICA_ASCII = [
  278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556,
  556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667,
  556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556,
  556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722,
  500, 500, 500, 334, 260, 334, 584,
];
// deno-fmt-ignore
const HELVETICA_BOLD_ASCII = [
  278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556,
  556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722,
  611, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, 333, 556,
  611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778,
  556, 556, 500, 389, 280, 389, 584,
];

/**
 * The characters beyond ASCII that the figures use, by code point: the byte in the fonts' encoding (WinAnsi,
 * and 127 remapped to /minus: d3's tick labels write negative numbers with U+2212) and the width in regular
 * and bold.
 */
const HELVETICA_EXTRA: Record<number, { byte: number; width: number; bold: number }> = {
  0x2212: { byte: 127, width: 584, bold: 584 }, // minus sign
  0x2013: { byte: 0x96, width: 556, bold: 556 }, // en dash
  0x2014: { byte: 0x97, width: 1000, bold: 1000 }, // em dash
  0x00a7: { byte: 0xa7, width: 556, bold: 556 }, // section sign
  0x00b0: { byte: 0xb0, width: 400, bold: 400 }, // degree sign
  0x00b1: { byte: 0xb1, width: 584, bold: 584 }, // plus-minus
  0x00b7: { byte: 0xb7, width: 278, bold: 278 }, // middle dot
  0x00d7: { byte: 0xd7, width: 584, bold: 584 }, // multiplication sign
  0x00a0: { byte: 0x20, width: 278, bold: 278 }, // no-break space, drawn as a space
};

/** Greek letters from the Symbol font: its byte and width. */
const SYMBOL: Record<number, { byte: number; width: number }> = {
  0x03bb: { byte: 0x6c, width: 549 }, // lambda
  0x03c3: { byte: 0x73, width: 603 }, // sigma
  0x03bc: { byte: 0x6d, width: 576 }, // mu
  0x03c0: { byte: 0x70, width: 549 }, // pi
};

export type FontName = "F1" | "F2" | "F3"; // Helvetica, Helvetica-Bold, Symbol

/** Subscript digits (U+2080..2089, e.g. "log₁₀"): the font's digits at this size, this far below the line. */
const SUBSCRIPT = { scale: 0.7, rise: -0.2 };

/**
 * A run of characters in one font at one size: the bytes to show, its width in 1/1000 of the text's font
 * size, and its size and baseline shift relative to the text's (subscripts).
 */
export interface TextRun {
  font: FontName;
  bytes: number[];
  width: number;
  scale: number;
  rise: number;
}

/** A text split into runs of one font and size each. */
export function textRuns(text: string, bold: boolean): TextRun[] {
  const runs: TextRun[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    let font: FontName, byte: number, width: number, scale = 1, rise = 0;
    if (cp >= 0x2080 && cp <= 0x2089) {
      font = bold ? "F2" : "F1";
      byte = 0x30 + cp - 0x2080;
      ({ scale, rise } = SUBSCRIPT);
      width = 556 * scale; // the digits are 556 wide in both weights
    } else if (cp >= 32 && cp <= 126) {
      font = bold ? "F2" : "F1";
      byte = cp;
      width = (bold ? HELVETICA_BOLD_ASCII : HELVETICA_ASCII)[cp - 32];
    } else if (HELVETICA_EXTRA[cp]) {
      font = bold ? "F2" : "F1";
      byte = HELVETICA_EXTRA[cp].byte;
      width = bold ? HELVETICA_EXTRA[cp].bold : HELVETICA_EXTRA[cp].width;
    } else if (SYMBOL[cp]) {
      font = "F3";
      ({ byte, width } = SYMBOL[cp]);
    } else {
      throw new Error(
        `svgToPdf: no font here for the character "${ch}" (U+${
          cp.toString(16).toUpperCase().padStart(4, "0")
        }) in the text "${text}"; add it to lib/plot/pdf.ts`,
      );
    }
    const last = runs[runs.length - 1];
    if (last && last.font === font && last.scale === scale) {
      last.bytes.push(byte);
      last.width += width;
    } else runs.push({ font, bytes: [byte], width, scale, rise });
  }
  return runs;
}

/** The advance width of a text in 1/1000 of its font size, as the PDF will set it (subscripts included). */
export function textWidth(text: string, bold: boolean): number {
  return runsWidth(textRuns(text, bold));
}

/** The width of runs already cut, in 1/1000 of the text's font size. */
export function runsWidth(runs: readonly TextRun[]): number {
  return runs.reduce((a, r) => a + r.width, 0);
}

/** A PDF string literal of these bytes (bytes above 126 and the delimiters escaped). */
export function pdfString(bytes: number[]): string {
  let s = "(";
  for (const b of bytes) {
    if (b === 0x28 || b === 0x29 || b === 0x5c) s += "\\" + String.fromCharCode(b);
    else if (b < 32 || b > 126) s += "\\" + b.toString(8).padStart(3, "0");
    else s += String.fromCharCode(b);
  }
  return s + ")";
}
