// The division part of the worst-accuracy test mode (accuracy.ts): every `x / y` in a shader whose
// operands are floats is moved by up to the WGSL spec's bound for f32 division, 2.5 ULP of the exact
// quotient, so 2 ULP of a correctly rounded one (Mesa's are; NVIDIA's divide through an approximate
// reciprocal and a multiply).
//
// The rewrite cannot know the operands' types without type-checking the shader, and most of our divisions
// are integer index arithmetic, which must stay exact. So every quotient q becomes one expression built
// only from operations that take floats, integers and their vectors alike:
//
//   d = q / 1073741824 / 4 * 512      a float q times 2^-23 (one ULP of q, up to twice that); an
//                                     integer q (below 2^32 in magnitude) truncates to 0 on the way
//   up:   q + d                       |q| grows by 1 to 2 ULP (inf and NaN stay as they are)
//   down: select(q - d, q, d == q)    |q| shrinks by 1 to 2 ULP (inf, where d == q, stays inf)
//
// worst-mixed takes up and down in turn, division by division in the order they appear (deterministic).
// The quotient's extent comes from a small scan of the tokens: the right operand is one unary expression
// (`f32(p.n)`, `(a + b)`, `v[i].x`, `-x`), the left one the multiplicative chain before the `/` (`a * b` in
// `a * b / c`). Divisions inside attributes (`@workgroup_size(...)`) and inside a type's template
// (`array<f32, BM * BK / WG>`) are integers by WGSL's rules and are left alone; `/=` is refused (rewrite
// it as `x = x / y`), so that no division is left unprobed without saying so.

export type DivisionMode = "worst-up" | "worst-down" | "worst-mixed";

interface Token {
  /** The white space before the token (kept, so the rewritten text stays readable). */
  pre: string;
  text: string;
  kind: "ident" | "number" | "punct" | "expr";
}

const TOKEN = new RegExp(
  [
    String.raw`(?<ident>[A-Za-z_][A-Za-z0-9_]*)`,
    // Hexadecimal and decimal literals, with exponents and the i/u/f/h suffixes.
    String
      .raw`(?<number>0[xX][0-9a-fA-F]*\.?[0-9a-fA-F]*(?:[pP][+-]?[0-9]+)?[iufh]?|(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?[iufh]?)`,
    // Longest operators first; `>>` is two tokens, so that `vec4<vec4<f32>>` closes two templates.
    String
      .raw`(?<punct><<=|>>=|->|<=|>=|==|!=|&&|\|\||<<|\+=|-=|\*=|\/=|%=|&=|\|=|\^=|\+\+|--|[^\sA-Za-z0-9_])`,
  ].join("|"),
  "y",
);

function tokenize(text: string): { tokens: Token[]; tail: string } {
  const tokens: Token[] = [];
  let at = 0;
  for (;;) {
    const space = /\s*/y;
    space.lastIndex = at;
    const pre = space.exec(text)![0];
    at += pre.length;
    if (at >= text.length) return { tokens, tail: pre };
    TOKEN.lastIndex = at;
    const m = TOKEN.exec(text);
    if (!m) throw new Error(`accuracy probe: cannot read the shader at "${text.slice(at, at + 20)}"`);
    const kind = m.groups!.ident !== undefined
      ? "ident"
      : m.groups!.number !== undefined
      ? "number"
      : "punct";
    tokens.push({ pre, text: m[0], kind });
    at += m[0].length;
  }
}

const KEYWORDS = new Set([
  "return",
  "let",
  "var",
  "const",
  "override",
  "if",
  "else",
  "for",
  "while",
  "loop",
  "switch",
  "case",
  "default",
  "break",
  "continue",
  "continuing",
  "discard",
  "fn",
  "struct",
  "alias",
]);
/** Identifiers that take a template list (`vec4<f32>(...)`, `bitcast<u32>(...)`). */
const TEMPLATED = /^(vec[234]|mat[234]x[234]|array|bitcast|ptr|atomic|texture_\w+)$/;
const PREFIX = new Set(["-", "!", "~", "*", "&"]);
const OPEN: Record<string, string> = { "(": ")", "[": "]" };

/** Whether token t ends an operand (so a following `-` or `*` is binary). */
function endsOperand(t: Token | undefined): boolean {
  if (!t) return false;
  if (t.kind === "ident") return !KEYWORDS.has(t.text);
  return t.kind === "number" || t.kind === "expr" || t.text === ")" || t.text === "]";
}

/** Index of the bracket closing the one at i (same kind), scanning right. */
function closing(ts: Token[], i: number): number {
  const open = ts[i].text, close = OPEN[open];
  for (let depth = 0, k = i; k < ts.length; k++) {
    if (ts[k].text === open) depth++;
    else if (ts[k].text === close && --depth === 0) return k;
  }
  throw new Error(`accuracy probe: unbalanced "${open}" in a shader`);
}

/** Index of the bracket opening the one at i, scanning left. */
function opening(ts: Token[], i: number): number {
  const close = ts[i].text, open = close === ")" ? "(" : "[";
  for (let depth = 0, k = i; k >= 0; k--) {
    if (ts[k].text === close) depth++;
    else if (ts[k].text === open && --depth === 0) return k;
  }
  throw new Error(`accuracy probe: unbalanced "${close}" in a shader`);
}

/** Index of the `>` closing the template list whose `<` is at i. */
function templateEnd(ts: Token[], i: number): number {
  for (let depth = 0, k = i; k < ts.length; k++) {
    if (ts[k].text === "<") depth++;
    else if (ts[k].text === ">" && --depth === 0) return k;
    else if (ts[k].text in OPEN) k = closing(ts, k);
  }
  throw new Error(`accuracy probe: unclosed template list in a shader`);
}

/** Index of the `<` opening the template list whose `>` is at i; -1 where there is none (a comparison). */
function templateStart(ts: Token[], i: number): number {
  for (let depth = 0, k = i; k >= 0; k--) {
    if (ts[k].text === ">") depth++;
    else if (ts[k].text === "<" && --depth === 0) return k;
    else if (ts[k].text === ")" || ts[k].text === "]") k = opening(ts, k);
    else if ([";", "{", "}", "(", "[", ","].includes(ts[k].text) && depth === 1) return -1;
  }
  return -1;
}

/** End (exclusive) of the unary expression starting at i: the right operand of a division. */
function unaryEnd(ts: Token[], i: number): number {
  let k = i;
  while (ts[k] && PREFIX.has(ts[k].text)) k++;
  const t = ts[k];
  if (!t) throw new Error("accuracy probe: a division without a right operand");
  if (t.text === "(") k = closing(ts, k) + 1;
  else if (t.kind === "ident") {
    k++;
    if (TEMPLATED.test(t.text) && ts[k]?.text === "<") k = templateEnd(ts, k) + 1;
    if (ts[k]?.text === "(") k = closing(ts, k) + 1;
  } else if (t.kind === "number" || t.kind === "expr") k++;
  else throw new Error(`accuracy probe: unexpected "${t.text}" after a division`);
  for (;;) {
    if (ts[k]?.text === "[") k = closing(ts, k) + 1;
    else if (ts[k]?.text === "." && ts[k + 1]?.kind === "ident") k += 2;
    else return k;
  }
}

/** Start of the unary expression ending at i (inclusive). */
function unaryStart(ts: Token[], i: number): number {
  let k = i;
  for (;;) { // postfix: [index] and .member
    if (ts[k]?.text === "]") k = opening(ts, k) - 1;
    else if (ts[k]?.kind === "ident" && ts[k - 1]?.text === ".") k -= 2;
    else break;
  }
  const t = ts[k];
  if (!t) throw new Error("accuracy probe: a division without a left operand");
  if (t.text === ")") {
    k = opening(ts, k) - 1; // a parenthesised expression, or a call's arguments
    const lt = ts[k]?.text === ">" ? templateStart(ts, k) : -1;
    if (lt > 0 && ts[lt - 1].kind === "ident" && TEMPLATED.test(ts[lt - 1].text)) k = lt - 2;
    else if (ts[k]?.kind === "ident" && !KEYWORDS.has(ts[k].text)) k--;
  } else if (t.kind === "ident" || t.kind === "number" || t.kind === "expr") k--;
  else throw new Error(`accuracy probe: unexpected "${t.text}" before a division`);
  // Prefix operators, where they are unary (not preceded by an operand).
  while (ts[k] && PREFIX.has(ts[k].text) && !endsOperand(ts[k - 1])) k--;
  return k + 1;
}

/** Start of the left operand of the division at i: the multiplicative chain before it. */
function leftStart(ts: Token[], i: number): number {
  let start = unaryStart(ts, i - 1);
  while (["*", "/", "%"].includes(ts[start - 1]?.text) && endsOperand(ts[start - 2])) {
    start = unaryStart(ts, start - 2);
  }
  return start;
}

const render = (ts: Token[]) => ts.map((t) => t.pre + t.text).join("");

/** Token ranges [from, to) where divisions are integers by WGSL's rules: attributes and type templates. */
function integerOnly(ts: Token[]): boolean[] {
  const skip = new Array<boolean>(ts.length).fill(false);
  for (let i = 0; i < ts.length; i++) {
    let to = -1;
    if (ts[i].text === "@" && ts[i + 1]?.kind === "ident" && ts[i + 2]?.text === "(") to = closing(ts, i + 2);
    // A template list outside expressions: after a type name not followed by a call (`array<f32, N / 4>`).
    else if (ts[i].kind === "ident" && TEMPLATED.test(ts[i].text) && ts[i + 1]?.text === "<") {
      const end = templateEnd(ts, i + 1);
      if (ts[end + 1]?.text !== "(") to = end;
    }
    for (let k = i; k <= to; k++) skip[k] = true;
  }
  return skip;
}

/** `text` (comments already removed) with every division's quotient moved as the mode says. */
export function withWorstDivisions(text: string, mode: DivisionMode): string {
  if (!text.includes("/")) return text;
  const { tokens, tail } = tokenize(text);
  if (tokens.some((t) => t.text === "/=")) {
    throw new Error("accuracy probe: `/=` in a shader is not rewritten; write it as x = x / y");
  }
  const counter = { n: 0 };
  return render(rewrite(tokens, integerOnly(tokens), mode, counter)) + tail;
}

function rewrite(ts: Token[], skip: boolean[], mode: DivisionMode, counter: { n: number }): Token[] {
  ts = [...ts];
  skip = [...skip];
  for (let i = 0; i < ts.length; i++) {
    if (ts[i].text !== "/" || skip[i]) continue;
    const from = leftStart(ts, i), to = unaryEnd(ts, i + 1);
    // The right operand may hold divisions of its own (inside brackets); the left one holds none at its
    // own level (this is the leftmost division left), and those inside its brackets were done already.
    const right = rewrite(ts.slice(i + 1, to), skip.slice(i + 1, to), mode, counter);
    const left = render(ts.slice(from, i)).trimStart();
    const q = `(${left}${ts[i].pre}/${render(right)})`;
    const d = `(${q} / 1073741824 / 4 * 512)`;
    const up = mode === "worst-up" || (mode === "worst-mixed" && counter.n % 2 === 0);
    counter.n++;
    const moved = up ? `(${q} + ${d})` : `select(${q} - ${d}, ${q}, ${d} == ${q})`;
    ts.splice(from, to - from, { pre: ts[from].pre, text: moved, kind: "expr" });
    skip.splice(from, to - from, false);
    i = from;
  }
  return ts;
}
