// A test mode that makes our WGSL run with the least accurate transcendental functions the WGSL spec
// allows, to show that the tests' tolerances (and the kernels' numerics) hold on any conformant
// implementation, not only on Mesa's, whose exp, log and sqrt are close to correctly rounded.
//
// A GPU's are not: NVIDIA's exp goes through ex2.approx after a multiply by log2(e), whose rounding grows
// with |x|, and its log through lg2.approx with an absolute error near 1. The WGSL spec bounds them
// (section "Floating Point Accuracy", f32):
//   exp(x)   3 + 2|x| ULP
//   log(x)   absolute error 2^-21 for x in [0.5, 2], else 3 ULP
//   sqrt(x)  inherited from 1 / inverseSqrt(x): inverseSqrt's 2 ULP, then the division's 2.5 ULP: 4.5 ULP
//   x / y    2.5 ULP (for |y| in [2^-126, 2^126])
// With DNLL_WGSL_ACCURACY=worst-up, worst-down or worst-mixed (tests only, Deno only), every call of exp,
// log and sqrt in a shader is replaced by an expression that moves the adapter's result by that whole
// bound: up, down, or either way by the argument's digits (deterministic); every float division's quotient
// moves by 1 to 2 ULP of a correctly rounded one, up, down, or each way in turn (accuracy_division.ts, which
// says why not by exactly the bound). The other operations WGSL needs correctly rounded or nearly so are
// left alone.
//
//   DNLL_WGSL_ACCURACY=worst-mixed deno test -A test/mda_test.ts

import { withWorstDivisions } from "./accuracy_division.ts";

export type AccuracyMode = "exact" | "worst-up" | "worst-down" | "worst-mixed";

const MODES: readonly AccuracyMode[] = ["exact", "worst-up", "worst-down", "worst-mixed"];

/** The mode from DNLL_WGSL_ACCURACY ("exact" when unset, and always outside Deno); throws on a bad value. */
export function accuracyMode(): AccuracyMode {
  if (typeof Deno === "undefined") return "exact";
  let v: string | undefined;
  try {
    v = Deno.env.get("DNLL_WGSL_ACCURACY");
  } catch {
    return "exact"; // no --allow-env: not a test run
  }
  if (v === undefined || v === "") return "exact";
  if (!(MODES as readonly string[]).includes(v)) {
    throw new Error(`DNLL_WGSL_ACCURACY: expected one of ${MODES.join(", ")}, got "${v}"`);
  }
  return v as AccuracyMode;
}

/**
 * The least accurate `name(arg)` the mode allows, as one WGSL expression that works for f32 and for its
 * vectors alike (WGSL has no overloading, and the kernels call these on vec4s too): only builtins that take
 * both, and an argument repeated rather than bound to a name. `arg` is already rewritten.
 */
function worst(name: string, arg: string, mode: Exclude<AccuracyMode, "exact">): string {
  const t = `(${arg})`;
  const y = `${name}${t}`;
  const one = `(${t} * 0.0 + 1.0)`;
  // One ULP of y: 2^exponent of |y| (halved where log2 rounded up to the next power of two) times 2^-23;
  // 0 for 0.
  const pow2 = `exp2(floor(log2(abs(${y}))))`;
  const ulp = `(select(${pow2}, ${pow2} * 0.5, ${pow2} > abs(${y})) * 1.1920928955078125e-7)`;
  const bound = name === "exp"
    ? `(3.0 + 2.0 * min(abs(${t}), ${one} * 1.0e4)) * ${ulp}` // |x| capped: exp(-1e30) is 0, and inf * 0 NaN
    : name === "log"
    ? `select(3.0 * ${ulp}, ${one} * 4.76837158203125e-7, (${t} >= ${one} * 0.5) & (${t} <= ${one} * 2.0))`
    : `4.5 * ${ulp}`;
  const sign = mode === "worst-up"
    ? "1.0"
    : mode === "worst-down"
    ? "-1.0"
    : `select(-${one}, ${one}, fract(${t} * 1024.0) < ${one} * 0.5)`;
  // inf and NaN stay as they are (inf * 0 is NaN, and no comparison with NaN holds).
  return `select(${y}, ${y} + ${sign} * ${bound}, abs(${y}) < abs(${y}) * 0.0 + 3.4e38)`;
}

const CALL = /\b(exp|log|sqrt)\(/g;

/**
 * `code` with every division, and every call of exp, log and sqrt, replaced by the mode's least accurate
 * version (see the header); the same text for "exact" and for code with neither. Comments are dropped
 * first (they mention these functions, and hold slashes).
 */
export function withAccuracy(code: string, mode: AccuracyMode): string {
  if (mode === "exact") return code;
  const text = code.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/[^\n]*/g, "");
  if (!text.match(CALL) && !text.includes("/")) return code;
  return rewrite(withWorstDivisions(text, mode), mode);
}

function rewrite(text: string, mode: Exclude<AccuracyMode, "exact">): string {
  let out = "", at = 0;
  for (const m of text.matchAll(CALL)) {
    if (m.index! < at) continue; // inside an argument rewritten already
    const open = m.index! + m[0].length - 1;
    let depth = 0, close = open;
    for (; close < text.length; close++) {
      if (text[close] === "(") depth++;
      else if (text[close] === ")" && --depth === 0) break;
    }
    if (close >= text.length) throw new Error(`accuracy probe: unbalanced ${m[1]}( in a shader`);
    out += text.slice(at, m.index) + worst(m[1], rewrite(text.slice(open + 1, close), mode), mode);
    at = close + 1;
  }
  return out + text.slice(at);
}
