// The worst-accuracy probe (lib/gpu/accuracy.ts): the rewritten exp, log and sqrt move their results by
// the WGSL spec's whole error bound, in the mode's direction, and nothing else changes.
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { type AccuracyMode, accuracyMode, withAccuracy } from "../lib/gpu/accuracy.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readF32, upload } from "../lib/gpu/tensor.ts";

const PROBE = `
@group(0) @binding(0) var<uniform> n: u32;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read_write> ys: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= n) { return; }
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

async function run(mode: AccuracyMode, xs: number[]): Promise<Float32Array> {
  const gpu = await getGpu();
  const code = withAccuracy(PROBE, mode);
  const pipeline = gpu.device.createComputePipeline({
    layout: "auto",
    compute: { module: gpu.device.createShaderModule({ code }), entryPoint: "main" },
  });
  const x = upload(gpu, Float32Array.from(xs), [xs.length]);
  const y = upload(gpu, new Float32Array(3 * xs.length), [3 * xs.length]);
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
  const exact = await run("exact", xs);
  for (const mode of ["worst-up", "worst-down", "worst-mixed"] as const) {
    const got = await run(mode, xs);
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

Deno.test("accuracy probe: exact mode and shaders without these calls are left as they are; a bad mode is one line", () => {
  const code = "fn f(x: f32) -> f32 { return x * 2.0; } // no exp( here? there is one in this comment";
  assertEquals(withAccuracy(code, "exact"), code);
  const plain = "fn f(x: f32) -> f32 { return my_exp(x) + catalog(x); }";
  assertEquals(withAccuracy(plain, "worst-up"), plain);
  assert(withAccuracy(PROBE, "worst-up").includes("ys[i] = select(exp(xs[i]), exp(xs[i]) + 1.0 * "));
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
