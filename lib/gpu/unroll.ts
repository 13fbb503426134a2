// Loop unrolling for WGSL, done before the shader reaches the driver.
//
// Why: Deno compiles every shader with wgpu's runtime checks. On the SPIR-V path (Vulkan: lavapipe on a
// CPU, NVIDIA's driver on a GPU) naga clamps every dynamic array index and adds a counter to every loop;
// the GLSL path (OpenGL) does neither. A register block written as a private array walked by short
// loops then stops being unrolled by Mesa (the extra counter hides the trip count), the arrays go to
// memory and every access is clamped and gathered. Measured on this 2-core machine with llvmpipe
// (16 vec4 accumulators, 16x16 block): GL 6.5 GFLOP/s either way; Vulkan 0.7 GFLOP/s with loops and
// private arrays, 5.7 GFLOP/s straight-line; compile 13 s against 1.3 s. With every register-block loop
// unrolled here, all private-array indices are constants: naga checks nothing, Mesa keeps registers.
//
// Syntax: a loop preceded by the comment `/* unroll */` on the same line,
//   /* unroll */ for (var r = 0u; r < R4; r++) { ... }
// where the bound is an integer expression of literals and `const NAME: u32 = <n>u;` declarations of the
// same source. Each copy of the body is wrapped in braces (its `let`s stay local) with the counter
// replaced by a literal. The source without the preprocessor is valid WGSL computing the same values in
// the same order, so unrolling changes no bits.

const MARKER = "/* unroll */";
const HEADER =
  /^\/\* unroll \*\/\s*for\s*\(\s*var\s+(\w+)\s*=\s*(\d+)u\s*;\s*\1\s*<(?!=)\s*([^;]+);\s*\1\+\+\s*\)\s*\{/;

/**
 * The `const NAME: u32 = <expr>;` declarations of a WGSL source whose value is a literal or an
 * expression of the constants declared above it (e.g. `const LOADS: u32 = BM * BK / WG;`).
 */
export function u32Constants(code: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of code.matchAll(/^const\s+(\w+)\s*:\s*u32\s*=\s*([^;]+);/gm)) {
    try {
      out.set(m[1], evalBound(m[2], out));
    } catch {
      // Not an expression of known constants (e.g. a call): such a name cannot bound an unrolled loop.
    }
  }
  return out;
}

/** Evaluates + - * / ( ) over u32 literals and known constants; throws on anything else. */
export function evalBound(expr: string, consts: Map<string, number>): number {
  const tokens = expr.match(/\d+u?|\w+|[-+*/()]|\S/g) ?? [];
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`unroll: cannot evaluate loop bound "${expr.trim()}": ${why}`);
  };
  const primary = (): number => {
    const t = tokens[i++];
    if (t === undefined) return fail("unexpected end");
    if (t === "(") {
      const v = sum();
      if (tokens[i++] !== ")") fail("missing )");
      return v;
    }
    if (/^\d+u?$/.test(t)) return Number(t.replace("u", ""));
    if (/^\w+$/.test(t)) return consts.get(t) ?? fail(`${t} is not a u32 const of this shader`);
    return fail(`unexpected "${t}"`);
  };
  const product = (): number => {
    let v = primary();
    while (tokens[i] === "*" || tokens[i] === "/") {
      const op = tokens[i++];
      const r = primary();
      v = op === "*" ? v * r : Math.floor(v / r);
    }
    return v;
  };
  const sum = (): number => {
    let v = product();
    while (tokens[i] === "+" || tokens[i] === "-") {
      const op = tokens[i++];
      const r = product();
      v = op === "+" ? v + r : v - r;
    }
    return v;
  };
  const v = sum();
  if (i !== tokens.length) fail(`unexpected "${tokens[i]}"`);
  return v;
}

/** Index just past the `}` matching the `{` at `open`. */
function matchBrace(code: string, open: number): number {
  let depth = 0;
  for (let k = open; k < code.length; k++) {
    const ch = code[k];
    if (ch === "/" && code[k + 1] === "/") {
      k = code.indexOf("\n", k);
      if (k < 0) break;
    } else if (ch === "{") depth++;
    else if (ch === "}" && --depth === 0) return k + 1;
  }
  throw new Error("unroll: unbalanced braces after an unroll marker");
}

/** Index of the first marker outside a `//` comment, or -1. */
function findMarker(code: string): number {
  for (let at = code.indexOf(MARKER); at >= 0; at = code.indexOf(MARKER, at + 1)) {
    const lineStart = code.lastIndexOf("\n", at) + 1;
    if (!code.slice(lineStart, at).includes("//")) return at;
  }
  return -1;
}

/** Expands every `/* unroll *\/ for` loop of `code` (nested ones included). */
export function unrollLoops(code: string, maxCopies = 1 << 16): string {
  const consts = u32Constants(code);
  let out = code;
  let copies = 0;
  for (;;) {
    const at = findMarker(out);
    if (at < 0) return out;
    const head = HEADER.exec(out.slice(at));
    if (!head) {
      const line = out.slice(at, out.indexOf("\n", at));
      throw new Error(`unroll: expected "${MARKER} for (var i = <n>u; i < BOUND; i++) {", got "${line}"`);
    }
    const [text, name, from, boundExpr] = head;
    const open = at + text.length - 1;
    const end = matchBrace(out, open);
    const body = out.slice(open + 1, end - 1);
    const to = evalBound(boundExpr, consts);
    const counter = new RegExp(`\\b${name}\\b`, "g");
    const parts: string[] = [];
    for (let k = Number(from); k < to; k++) parts.push(`{${body.replace(counter, `${k}u`)}}`);
    copies += parts.length;
    if (copies > maxCopies) throw new Error(`unroll: more than ${maxCopies} copies; is a bound wrong?`);
    out = out.slice(0, at) + parts.join("\n") + out.slice(end);
  }
}
