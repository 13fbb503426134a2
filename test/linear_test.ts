import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { getGpu } from "../lib/gpu/device.ts";
import { ParamStore } from "../lib/gpu/params.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readTensorsF32, upload } from "../lib/gpu/tensor.ts";
import { uniformInit } from "../lib/nn/init.ts";
import { Linear } from "../lib/nn/linear.ts";
import { REDUCTION_VARIANTS } from "../lib/gpu/reduction.ts";
import { TestRng as Rng } from "./util.ts"; // seeds mix in DNLL_TEST_SEED
import { linearBackward, linearForward } from "./reference/layers.ts";
import { assertClose, dot, finiteDifference, randn, toF64 } from "./util.ts";

Deno.test("linear: PyTorch names, shapes and initialisation (weight drawn first)", async () => {
  const gpu = await getGpu();
  const store = new ParamStore(gpu);
  new Linear(store, "encoder.proj", 256, 2, new Rng(8));
  store.finalize();
  const host = await store.toHost();
  assertEquals(host.map((t) => [t.name, t.shape]), [["encoder.proj.weight", [2, 256]], ["encoder.proj.bias", [
    2,
  ]]]);
  const rng = new Rng(8);
  assertEquals(host[0].data, uniformInit(rng, 512, 1 / 16));
  assertEquals(host[1].data, uniformInit(rng, 2, 1 / 16));
});

for (const variant of REDUCTION_VARIANTS) {
  Deno.test(`linear (${variant}): forward and backward match float64 (batches 1 and 3, odd sizes, the 256 -> 2 projection)`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(41);
    // Batch 201: several samples per lane of the tree variant's 64-lane workgroups, the last round partial.
    for (
      const [n, inF, outF] of [[1, 5, 3], [3, 7, 2], [3, 256, 2], [2, 1, 1], [256, 256, 2], [201, 13, 3]]
    ) {
      const store = new ParamStore(gpu);
      const layer = new Linear(store, "fc", inF, outF, rng, { variant });
      assertEquals(layer.variant, variant);
      store.finalize();
      const [weight, bias] = (await store.toHost()).map((t) => t.data as Float32Array);
      const x = randn(rng, n * inF);
      const dy = randn(rng, n * outF);
      const rec = new Recorder(gpu);
      const y = layer.forward(rec, upload(gpu, x, [n, inF]), true);
      const dx = layer.backward(rec, upload(gpu, dy, [n, outF]), true)!;
      rec.submit();
      // One wait for all four (each costs ~10 ms in Deno; the device kit runs these tests on a GPU, twice).
      const [yv, dxv, dweight, dbias] = await readTensorsF32(gpu, [
        y,
        dx,
        store.grad(layer.weight),
        store.grad(layer.bias),
      ]);
      const what = `n ${n}, ${inF} -> ${outF}`;
      const ref = linearBackward(x, weight, dy, n, inF, outF);
      assertClose(yv, linearForward(x, weight, bias, n, inF, outF), {
        rtol: 1e-5,
        atol: 1e-6,
        what: `${what} y`,
      });
      assertClose(dxv, ref.dx, { rtol: 1e-5, atol: 1e-6, what: `${what} dx` });
      // dW and db are sums over the batch (256 terms at n 256) that may cancel to a small value: their f32
      // error is absolute, a small multiple of eps times the sum of the terms' sizes, not of the result's.
      let weightTermSum = 0, biasTermSum = 0;
      for (let o = 0; o < outF; o++) {
        let b = 0;
        for (let s = 0; s < n; s++) b += Math.abs(dy[s * outF + o]);
        biasTermSum = Math.max(biasTermSum, b);
        for (let i = 0; i < inF; i++) {
          let w = 0;
          for (let s = 0; s < n; s++) w += Math.abs(dy[s * outF + o] * x[s * inF + i]);
          weightTermSum = Math.max(weightTermSum, w);
        }
      }
      assertClose(dweight, ref.dweight, {
        rtol: 1e-5,
        atol: 1e-6 * weightTermSum,
        what: `${what} dW`,
      });
      assertClose(dbias, ref.dbias, {
        rtol: 1e-5,
        atol: 1e-6 * biasTermSum,
        what: `${what} db`,
      });
    }
  });
}

Deno.test("linear: float64 backward matches finite differences", () => {
  const rng = new Rng(6);
  const [n, inF, outF] = [3, 4, 2];
  const x = toF64(randn(rng, n * inF)),
    weight = toF64(randn(rng, outF * inF)),
    bias = toF64(randn(rng, outF));
  const w = randn(rng, n * outF);
  const ref = linearBackward(x, weight, w, n, inF, outF);
  const loss = (xv: Float64Array, wv: Float64Array, bv: Float64Array) =>
    dot(linearForward(xv, wv, bv, n, inF, outF), w);
  assertClose(ref.dx, finiteDifference((v) => loss(v, weight, bias), x), {
    rtol: 1e-6,
    atol: 1e-8,
    what: "fd dx",
  });
  assertClose(ref.dweight, finiteDifference((v) => loss(x, v, bias), weight), {
    rtol: 1e-6,
    atol: 1e-8,
    what: "fd dW",
  });
  assertClose(ref.dbias, finiteDifference((v) => loss(x, weight, v), bias), {
    rtol: 1e-6,
    atol: 1e-8,
    what: "fd db",
  });
});

for (const variant of REDUCTION_VARIANTS) {
  Deno.test(`linear (${variant}): deterministic, same inputs give the same bits`, async () => {
    const gpu = await getGpu();
    const outs: Float32Array[] = [];
    for (let r = 0; r < 2; r++) {
      const store = new ParamStore(gpu);
      const layer = new Linear(store, "fc", 256, 2, new Rng(1), { variant });
      store.finalize();
      const rng = new Rng(2);
      const rec = new Recorder(gpu);
      layer.forward(rec, upload(gpu, randn(rng, 256 * 256), [256, 256]), true);
      layer.backward(rec, upload(gpu, randn(rng, 512), [256, 2]), false);
      rec.submit();
      outs.push(...await readTensorsF32(gpu, [store.grad(layer.weight), store.grad(layer.bias)]));
    }
    assertEquals(outs[2], outs[0]);
    assertEquals(outs[3], outs[1]);
  });
}
