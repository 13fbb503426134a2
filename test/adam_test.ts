import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { getGpu } from "../lib/gpu/device.ts";
import { ParamStore } from "../lib/gpu/params.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readBytes, readF32, readRegions, write } from "../lib/gpu/tensor.ts";
import { Adam } from "../lib/nn/adam.ts";
import { TestRng as Rng } from "./util.ts"; // seeds mix in DNLL_TEST_SEED
import { adamStep } from "./reference/layers.ts";
import { assertClose, randn } from "./util.ts";

async function twoParams(rng: Rng) {
  const gpu = await getGpu();
  const store = new ParamStore(gpu);
  const a = store.add("a", [5], randn(rng, 5));
  const b = store.add("b", [7, 10], randn(rng, 70)); // 70 > 64: the flat buffer has padding after both
  store.finalize();
  return { gpu, store, views: [a, b] };
}

Deno.test("adam: 3 steps match a float64 sequence with bias correction, one dispatch each", async () => {
  for (const opts of [{}, { lr: 0.01, beta1: 0.8, beta2: 0.99, eps: 1e-6 }]) {
    const rng = new Rng(51);
    const { gpu, store, views } = await twoParams(rng);
    const adam = new Adam(store, opts);
    const host = await store.toHost();
    const refs = host.map((t) => ({
      param: Float64Array.from(t.data as Float32Array),
      m: new Float64Array(t.data.length),
      v: new Float64Array(t.data.length),
      step: 0,
    }));
    const beta1 = opts.beta1 ?? 0.9;
    const largestGradient = views.map(() => 0);
    for (let step = 1; step <= 3; step++) {
      const rec = new Recorder(gpu);
      views.forEach((view, i) => {
        // Gradients of mixed scale, including exact zeros.
        const g = randn(rng, view.size, step === 2 ? 1e-3 : 1);
        g[0] = 0;
        for (const x of g) largestGradient[i] = Math.max(largestGradient[i], Math.abs(x));
        write(gpu, store.grad(view), g);
        adamStep(refs[i], g, opts);
      });
      adam.record(rec);
      assertEquals(rec.dispatches, 1);
      rec.submit();
      assertEquals(adam.step, step);
      // Each view's parameters and moments in one wait (each costs ~10 ms in Deno).
      const read = await readRegions(
        gpu,
        views.flatMap((view) =>
          [store.params!, store.m!, store.v!].map((buffer) => ({
            buffer,
            offset: view.offset * 4,
            bytes: view.size * 4,
          }))
        ),
      );
      for (const [i, view] of views.entries()) {
        const what = `step ${step} ${view.name}`;
        assertClose(new Float32Array(read[3 * i]), refs[i].param, { rtol: 1e-6, atol: 1e-7, what });
        const m = new Float32Array(read[3 * i + 1]);
        // m sums terms of size up to (1 - beta1) max|g| (about 0.35 for a 3.5-sigma gradient), each rounded
        // to f32, and may cancel to a much smaller value: its error is absolute, up to a couple of ulps of the
        // largest term (an ulp of x is at most 2^-23 x), whatever the element's own size.
        const termUlp = 2 ** -23 * (1 - beta1) * largestGradient[i];
        assertClose(m, refs[i].m, { rtol: 1e-6, atol: 2 * termUlp, what: `${what} m` });
        const v = new Float32Array(read[3 * i + 2]);
        assertClose(v, refs[i].v, { rtol: 1e-6, atol: 1e-12, what: `${what} v` });
      }
    }
    // The alignment padding stays zero.
    const flat = new Float32Array(await readBytes(gpu, store.params!, 0, store.flatLength * 4));
    assert(flat.subarray(5, 64).every((v) => v === 0) && flat.subarray(64 + 70).every((v) => v === 0));
  }
});

Deno.test("adam: a constant gradient moves each parameter by lr per step (bias correction, by hand)", async () => {
  // With g constant, the corrected moments are exactly g and g^2, so each step is lr * g / (|g| + eps).
  const gpu = await getGpu();
  const store = new ParamStore(gpu);
  const p = store.add("p", [2], Float32Array.of(1, -1));
  store.finalize();
  write(gpu, store.grad(p), Float32Array.of(2, -0.5));
  const adam = new Adam(store);
  const rec = new Recorder(gpu);
  for (let i = 0; i < 3; i++) adam.record(rec);
  await rec.finish();
  assertClose(await readF32(gpu, store.param(p)), [1 - 3e-3, -1 + 3e-3], { rtol: 1e-6, what: "params" });
});

Deno.test("adam: deterministic, and bad options are refused", async () => {
  const outs: Float32Array[] = [];
  for (let r = 0; r < 2; r++) {
    const rng = new Rng(3);
    const { gpu, store, views } = await twoParams(rng);
    for (const v of views) write(gpu, store.grad(v), randn(rng, v.size));
    const adam = new Adam(store);
    const rec = new Recorder(gpu);
    adam.record(rec);
    adam.record(rec);
    await rec.finish();
    outs.push(new Float32Array(await readBytes(gpu, store.params!, 0, store.flatLength * 4)));
  }
  assertEquals(outs[1], outs[0]);
  const store = new ParamStore(await getGpu());
  let msg = "";
  try {
    new Adam(store, { beta2: 1 });
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(msg.includes("beta2 must be in [0, 1), got 1"), msg);
});
