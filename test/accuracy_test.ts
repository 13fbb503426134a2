// The worst-accuracy probe (lib/gpu/accuracy.ts): the rewritten exp, log and sqrt move their results by
// the WGSL spec's whole error bound, in the mode's direction; float divisions move by 1 to 2 ULP, integer
// ones not at all; and nothing else changes.
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { type AccuracyMode, accuracyMode, withAccuracy } from "../lib/gpu/accuracy.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readF32, upload } from "../lib/gpu/tensor.ts";

/** A probe kernel's bindings (n inputs xs, outputs ys) and the start of its main, one invocation per input. */
const PROBE_MAIN = `
@group(0) @binding(0) var<uniform> n: u32;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read_write> ys: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= n) { return; }
`;

const PROBE = `${PROBE_MAIN}
  ys[i] = exp(xs[i]);
  ys[n + i] = log(xs[i]);
  ys[2u * n + i] = sqrt(xs[i]);
}
`;

/** One unit in the last place of the f32 nearest y. */
function ulp(y: number): number {
  const e = Math.floor(Math.log2(Math.abs(Math.fround(y))));
  return 2 ** (Math.max(e, -126) - 23);
}

/** Runs a probe kernel (PROBE_MAIN's bindings) rewritten for the mode; `outputs` per x. */
async function run(probe: string, mode: AccuracyMode, xs: number[], outputs: number): Promise<Float32Array> {
  const gpu = await getGpu();
  const code = withAccuracy(probe, mode);
  const pipeline = gpu.device.createComputePipeline({
    layout: "auto",
    compute: { module: gpu.device.createShaderModule({ code }), entryPoint: "main" },
  });
  const x = upload(gpu, Float32Array.from(xs), [xs.length]);
  const y = upload(gpu, new Float32Array(outputs * xs.length), [outputs * xs.length]);
  const rec = new Recorder(gpu);
  rec.dispatch(pipeline, [xs.length], [x, y], [Math.ceil(xs.length / 64)]);
  rec.submit();
  const out = await readF32(gpu, y);
  rec.destroy();
  x.buffer.destroy();
  y.buffer.destroy();
  return out;
}

Deno.test("accuracy probe: exp, log and sqrt move by the WGSL spec's whole bound, in the mode's direction", async () => {
  // Arguments of both signs for exp (the bound grows with |x|), both sides of log's [0.5, 2] interval (an
  // absolute bound inside, 3 ULP outside), both directions in the mixed mode.
  const xs = [0.7, 1, 1.5, 3, 0.01, 20, 85.5, 7.25, 1e-3, 2.5, 0.3, 0.55].map(Math.fround);
  const n = xs.length;
  const exact = await run(PROBE, "exact", xs, 3);
  for (const mode of ["worst-up", "worst-down", "worst-mixed"] as const) {
    const got = await run(PROBE, mode, xs, 3);
    xs.forEach((x, i) => {
      const scaled = Math.fround(x * 1024);
      const sign = mode === "worst-up"
        ? 1
        : mode === "worst-down"
        ? -1
        : scaled - Math.floor(scaled) < 0.5
        ? 1
        : -1;
      const cases: [string, number, number][] = [
        ["exp", Math.exp(x), (3 + 2 * Math.abs(x)) * ulp(Math.exp(x))],
        ["log", Math.log(x), x >= 0.5 && x <= 2 ? 2 ** -21 : 3 * ulp(Math.log(x))],
        ["sqrt", Math.sqrt(x), 4.5 * ulp(Math.sqrt(x))],
      ];
      cases.forEach(([name, want, bound], f) => {
        const base = exact[f * n + i], moved = got[f * n + i];
        // The move is the bound (one rounding of the sum aside), in the mode's direction; log(1) = 0 has
        // no ULP of its own, so there the absolute bound is the whole move.
        const tolerance = ulp(moved) + ulp(base);
        assert(
          Math.abs(moved - base - sign * bound) <= tolerance,
          `${mode} ${name}(${x}): ${moved}, unprobed ${base}, expected a move of ${sign * bound}`,
        );
        // ... and the probed value still lies within the spec's bound of the exact result (plus the
        // adapter's own error, within 3 ULP of a correctly rounded result on Mesa).
        assert(
          Math.abs(moved - want) <= bound + 3 * ulp(want) + tolerance,
          `${mode} ${name}(${x}) vs ${want}: moved ${moved} base ${base} bound ${bound} ulp ${ulp(want)}`,
        );
      });
    });
  }
});

// Divisions of every kind our kernels write: f32, vec4<f32>, a chain, a product over a quotient, under a
// unary minus, inside a call's argument, by a call; u32, i32 and vector index arithmetic (must stay exact,
// also where a truncation is at stake); a module-scope const and an array size; and the edge cases inf,
// -inf, 0 and NaN. Each f32 result is one output; the integer ones are stored as f32 (exact: < 2^24).
const DIVISION_PROBE = `
const HALF_TILE: u32 = 64u / 2u;
var<private> scratch: array<f32, HALF_TILE / 4u>;
${PROBE_MAIN}  let x = xs[i];
  let y = xs[(i + 1u) % n];
  let z = xs[(i + 2u) % n];
  let o = 16u * i;
  ys[o] = x / y;
  let v = vec4<f32>(x, y, z, 1.0) / vec4<f32>(y, z, x, 3.0);
  ys[o + 1u] = v.x;
  ys[o + 2u] = v.w;
  ys[o + 3u] = x / y / z;
  ys[o + 4u] = x * z / y;
  ys[o + 5u] = -x / y;
  ys[o + 6u] = x / f32(i + 3u);
  ys[o + 7u] = max(x / max(y, 0.5), 0.0);
  let k = 1000003u + 7919u * i;
  ys[o + 8u] = f32(k / 7u % 65536u);
  ys[o + 9u] = f32((-i32(k) / 13) % 65536);
  ys[o + 10u] = f32(vec2<u32>(k, k / 2u).y / 3u % 65536u);
  ys[o + 11u] = f32(i32(HALF_TILE / 5u) + i32(k % 1000u) - i32(k % 977u) * 3 / 7);
  ys[o + 12u] = 1.0 / (x - x);
  ys[o + 13u] = -1.0 / (y - y);
  ys[o + 14u] = (x - x) / y;
  ys[o + 15u] = (x - x) / (y - y);
  scratch[i % 8u] = x;
}
`;

Deno.test("accuracy probe: float divisions move by 1 to 2 ULP in the mode's direction, integer ones not at all", async () => {
  const xs = [0.7, 1, 1.5, 3, 0.01, 20, 85.5, 7.25, 1e-3, 2.5, 0.3, 0.55, 1e5, 3e-5].map(Math.fround);
  const n = xs.length;
  const exact = await run(DIVISION_PROBE, "exact", xs, 16);
  // The float outputs (no exp, log or sqrt among them: those move too in these modes).
  const floats: [number, string][] = [
    [0, "x / y"],
    [1, "v.x"],
    [2, "v.w"],
    [3, "x / y / z"],
    [4, "x * z / y"],
    [5, "-x / y"],
    [6, "x / f32(i + 3)"],
    [7, "max(x / max(y, 0.5), 0)"],
  ];
  // Up and down are of the magnitude: |q| grows or shrinks.
  const rel = (a: number, b: number) => (Math.abs(a) - Math.abs(b)) / Math.abs(b);
  for (const mode of ["worst-up", "worst-down", "worst-mixed"] as const) {
    const got = await run(DIVISION_PROBE, mode, xs, 16);
    const directions = new Set<number>();
    for (let i = 0; i < n; i++) {
      const at = (k: number) => [got[16 * i + k], exact[16 * i + k]];
      for (const [k, what] of floats) {
        const [moved, base] = at(k);
        // One ULP is 2^-24 to 2^-23 of |q|: a move of 1 to 2 ULP is 2^-24..2^-22 of it. x / y / z is two
        // divisions: up to twice that, and in the mixed mode (one up, one down) anything in between.
        const r = rel(moved, base);
        if (k === 3) {
          const chained = mode === "worst-mixed" ? Math.abs(r) : (mode === "worst-up" ? r : -r);
          assert(chained >= (mode === "worst-mixed" ? 0 : 2 ** -24) && chained <= 2 ** -21 + 2 ** -24, what);
          continue;
        }
        // The mixed mode moves each division one way, up and down in turn in the order they are written.
        const sign = mode === "worst-up" ? 1 : mode === "worst-down" ? -1 : Math.sign(r);
        directions.add(sign);
        assert(
          sign * r >= 2 ** -24 && sign * r <= 2 ** -22 + 2 ** -24,
          `${mode} ${what} at x=${xs[i]}: ${moved}, unprobed ${base} (${r / 2 ** -23} x 2^-23)`,
        );
      }
      // Integer arithmetic: the same bits.
      for (const k of [8, 9, 10, 11]) assertEquals(at(k)[0], at(k)[1], `${mode} integer output ${k}`);
      // inf, -inf, 0 and NaN stay what they are.
      assertEquals(got[16 * i + 12], Infinity);
      assertEquals(got[16 * i + 13], -Infinity);
      assertEquals(got[16 * i + 14], 0);
      assert(Number.isNaN(got[16 * i + 15]));
    }
    assertEquals([...directions].sort(), mode === "worst-mixed" ? [-1, 1] : [mode === "worst-up" ? 1 : -1]);
  }
  // The integer outputs are what they should be, probed or not.
  assertEquals(exact[8], Math.floor(1000003 / 7) % 65536);
  assertEquals(exact[11], 6 + (1000003 % 1000) - Math.trunc(((1000003 % 977) * 3) / 7));
});

Deno.test("accuracy probe: exact mode and shaders without these calls are left as they are; a bad mode is one line", () => {
  const code = "fn f(x: f32) -> f32 { return x * 2.0; } // no exp( here? there is one in this comment";
  assertEquals(withAccuracy(code, "exact"), code);
  const plain = "fn f(x: f32) -> f32 { return my_exp(x) + catalog(x); }";
  assertEquals(withAccuracy(plain, "worst-up"), plain);
  assert(withAccuracy(PROBE, "worst-up").includes("ys[i] = select(exp(xs[i]), exp(xs[i]) + 1.0 * "));
  // Divisions: in expressions rewritten, in attributes and array sizes (integers by WGSL's rules) not,
  // and a compound division refused rather than left unprobed.
  assertEquals(
    withAccuracy("fn f(a: f32, b: f32) -> f32 { return -a * b / (a + b); }", "worst-up"),
    "fn f(a: f32, b: f32) -> f32 { return ((-a * b / (a + b)) + ((-a * b / (a + b)) / 1073741824 / 4 * 512)); }",
  );
  // The quotient's extent: the multiplicative chain on the left (not past + or a binary -), one unary
  // expression on the right.
  assertEquals(
    withAccuracy("let q = w - x * y / z[i].x * u + v;", "worst-up"),
    "let q = w - ((x * y / z[i].x) + ((x * y / z[i].x) / 1073741824 / 4 * 512)) * u + v;",
  );
  const sized = "var<workgroup> t: array<f32, BM * BK / WG>;\n@compute @workgroup_size(WG / 2) fn f() {}";
  assertEquals(withAccuracy(sized, "worst-down"), sized);
  throws(
    () => withAccuracy("fn f() { var a = 1.0; a /= 3.0; }", "worst-mixed"),
    /`\/=` in a shader is not rewritten/,
  );
  const saved = Deno.env.get("DNLL_WGSL_ACCURACY");
  try {
    Deno.env.set("DNLL_WGSL_ACCURACY", "worst-mixed");
    assertEquals(accuracyMode(), "worst-mixed");
    Deno.env.set("DNLL_WGSL_ACCURACY", "worst");
    throws(
      () => accuracyMode(),
      /^Error: DNLL_WGSL_ACCURACY: expected one of exact, worst-up, worst-down, worst-mixed, got "worst"$/,
    );
  } finally {
    if (saved === undefined) Deno.env.delete("DNLL_WGSL_ACCURACY");
    else Deno.env.set("DNLL_WGSL_ACCURACY", saved);
  }
});
