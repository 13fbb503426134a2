// Softmax baseline head (Linear + cross-entropy) on the GPU against the float64 reference, whose
// gradients are checked by finite differences.

import { deepStrictEqual, ok, throws } from "node:assert/strict";
import { getGpu } from "../lib/gpu/device.ts";
import { ParamStore } from "../lib/gpu/params.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readTensorsF32, upload, write } from "../lib/gpu/tensor.ts";
import { headSummary, headTrainStep, trueClassResponsibilities } from "../lib/mda/head.ts";
import { CrossEntropyLoss, DNLLLoss, EM_DNLLLoss } from "../lib/mda/loss.ts";
import { SoftmaxHead } from "../lib/mda/softmax.ts";
import { REDUCTION_VARIANTS, type ReductionVariant } from "../lib/gpu/reduction.ts";
import { uniformInit } from "../lib/nn/init.ts";
import { TestRng as Rng } from "./util.ts"; // seeds mix in DNLL_TEST_SEED
import {
  crossEntropyValue,
  linearCeErrorScale,
  linearCeGrads,
  linearForward,
  type LinearRefParams,
} from "./reference/heads.ts";
import { assertClose, finiteDifference, randn, randu } from "./util.ts";

function randomParams(rng: Rng, C: number, D: number, scale = 1): LinearRefParams {
  return {
    C,
    D,
    weight: Float64Array.from(randu(rng, C * D, -scale, scale)),
    bias: Float64Array.from(randu(rng, C, -1, 1)),
  };
}

function randomBatch(rng: Rng, C: number, D: number, N: number): { z: Float64Array; y: number[] } {
  return { z: Float64Array.from(randn(rng, N * D, 2)), y: Array.from({ length: N }, () => rng.int(C)) };
}

/** One training step plus logits and responsibilities, with the given reduction variant (default: adapter). */
async function gpuStep(p: LinearRefParams, z: ArrayLike<number>, y: number[], variant?: ReductionVariant) {
  const gpu = await getGpu();
  const N = y.length;
  const store = new ParamStore(gpu);
  const head = new SoftmaxHead(store, p.C, p.D, new Rng(1), { variant });
  if (variant) deepStrictEqual(head.variant, variant);
  store.finalize();
  write(gpu, store.param(head.weight), Float32Array.from(p.weight));
  write(gpu, store.param(head.bias), Float32Array.from(p.bias));
  const zT = upload(gpu, Float32Array.from(z), [N, p.D]);
  const yT = upload(gpu, Uint32Array.from(y), [N]);
  const statsT = upload(gpu, new Float32Array(9).fill(-7), [9]);
  const rec = new Recorder(gpu);
  const logitsT = head.logits(rec, zT);
  const dzT = headTrainStep(rec, head, new CrossEntropyLoss(), zT, yT, statsT, 2);
  const respT = trueClassResponsibilities(rec, head, zT, yT);
  rec.submit();
  // One wait for all (each costs ~10 ms in Deno; the device kit runs these tests on a GPU, twice).
  const [logits, dz, dweight, dbias, stats, resp] = await readTensorsF32(gpu, [
    logitsT,
    dzT,
    store.grad(head.weight),
    store.grad(head.bias),
    statsT,
    respT,
  ]);
  rec.destroy();
  return { logits, dz, dweight, dbias, stats, resp };
}

const SHAPES = [
  { N: 1, C: 3, D: 2 },
  { N: 3, C: 10, D: 9 },
  { N: 3, C: 100, D: 9 },
  { N: 70, C: 100, D: 99 },
  // Several samples per lane of the tree variant's 64-lane workgroups, the last round partial.
  { N: 201, C: 4, D: 3 },
];

Deno.test("softmax reference: gradients match finite differences", () => {
  const rng = new Rng(31);
  for (const { N, C, D } of SHAPES.slice(0, 3)) {
    const p = randomParams(rng, C, D);
    const { z, y } = randomBatch(rng, C, D, N);
    const ref = linearCeGrads(p, z, y);
    const value = () => crossEntropyValue(linearForward(p, z, N), y, C);
    const tol = { rtol: 1e-6, atol: 1e-8 };
    assertClose(ref.dweight, finiteDifference(value, p.weight), { ...tol, what: "dweight" });
    assertClose(ref.dbias, finiteDifference(value, p.bias), { ...tol, what: "dbias" });
    const fdZ = finiteDifference((zz) => crossEntropyValue(linearForward(p, zz, N), y, C), z);
    assertClose(ref.dz, fdZ, { ...tol, what: "dz" });
  }
});

for (const variant of REDUCTION_VARIANTS) {
  Deno.test(`softmax gpu (${variant}): matches the reference at many shapes`, async () => {
    const rng = new Rng(32);
    for (const { N, C, D } of SHAPES) {
      const p = randomParams(rng, C, D);
      const { z, y } = randomBatch(rng, C, D, N);
      const g = await gpuStep(p, z, y, variant);
      const ref = linearCeGrads(p, z, y);
      const tol = { rtol: 1e-5, atol: 1e-6 };
      // A float32 dot product of D terms errs in proportion to sum |w z|, not to its (possibly cancelling)
      // result: scale the absolute tolerance by the largest such sum.
      let sumAbs = 1;
      for (let n = 0; n < N; n++) {
        for (let c = 0; c < C; c++) {
          let s = Math.abs(p.bias[c]);
          for (let d = 0; d < D; d++) s += Math.abs(p.weight[c * D + d] * z[n * D + d]);
          sumAbs = Math.max(sumAbs, s);
        }
      }
      assertClose(g.logits, linearForward(p, z, N), { rtol: 1e-5, atol: 1e-6 * sumAbs, what: "logits" });
      assertClose(g.dz, ref.dz, { ...tol, what: "dz" });
      assertClose(g.dweight, ref.dweight, { ...tol, what: "dweight" });
      assertClose(g.dbias, ref.dbias, { ...tol, what: "dbias" });
      assertClose([g.stats[6]], [ref.loss], { ...tol, what: "batch loss" });
      // Slot 2 of 3 is [loss, correct, labels out of range]; the other slots are untouched.
      deepStrictEqual([...g.stats.subarray(0, 6), g.stats[7], g.stats[8]], [
        -7,
        -7,
        -7,
        -7,
        -7,
        -7,
        ref.correct,
        0,
      ]);
      deepStrictEqual(Array.from(g.resp), new Array(N).fill(1));
    }
  });

  Deno.test(`softmax gpu (${variant}): huge logits stay finite (log-sum-exp)`, async () => {
    const rng = new Rng(33);
    const p = randomParams(rng, 4, 3, 1);
    const z = Float64Array.from([300, -200, 500, 1e3, 1e3, -1e3]);
    const y = [0, 3];
    const g = await gpuStep(p, z, y, variant);
    for (const [what, a] of Object.entries(g)) ok(a.every(Number.isFinite), `${what}: ${a}`);
    const ref = linearCeGrads(p, z, y);
    // Logits in the hundreds: their f32 rounding, times z in the thousands, sets the error (see
    // linearCeErrorScale); a fixed relative tolerance held only for some draws of the weights.
    const scale = linearCeErrorScale(p, z, y);
    const tol = { rtol: 1e-5, atol: 1e-6 };
    assertClose([g.stats[6]], [ref.loss], { ...tol, condition: [scale.loss], what: "batch loss" });
    assertClose(g.dweight, ref.dweight, { ...tol, condition: scale.dweight, what: "dweight" });
    assertClose(g.dbias, ref.dbias, { ...tol, condition: scale.dbias, what: "dbias" });
    assertClose(g.dz, ref.dz, { ...tol, condition: scale.dz, what: "dz" });
  });

  Deno.test(`softmax gpu (${variant}): labels out of range are counted in the stats, the loss stays finite`, async () => {
    const rng = new Rng(34);
    const p = randomParams(rng, 4, 3, 1);
    const { z } = randomBatch(rng, 4, 3, 3);
    const g = await gpuStep(p, z, [4, 2, 1000], variant);
    deepStrictEqual(g.stats[8], 2);
    ok(Number.isFinite(g.stats[6]), `loss ${g.stats[6]}`);
  });

  Deno.test(`softmax gpu (${variant}): same inputs give the same bits`, async () => {
    const rng = new Rng(35);
    const p = randomParams(rng, 10, 9);
    const { z, y } = randomBatch(rng, 10, 9, 150);
    const a = await gpuStep(p, z, y, variant);
    const b = await gpuStep(p, z, y, variant);
    deepStrictEqual(a, b);
  });
}

Deno.test("softmax: PyTorch Linear names, shapes and init; wrong losses refused", async () => {
  const gpu = await getGpu();
  const store = new ParamStore(gpu);
  const head = new SoftmaxHead(store, 10, 9, new Rng(7), { name: "cls" });
  deepStrictEqual(store.entries.map((e) => [e.name, e.shape]), [["cls.weight", [10, 9]], ["cls.bias", [10]]]);
  deepStrictEqual([head.kind, head.numClasses, head.latentDim, head.components], ["softmax", 10, 9, 1]);
  store.finalize();
  const host = await store.toHost();
  const rng = new Rng(7);
  deepStrictEqual(host[0].data, uniformInit(rng, 90, 1 / 3));
  deepStrictEqual(host[1].data, uniformInit(rng, 10, 1 / 3));
  deepStrictEqual(headSummary(head, host), { weights: [], variances: [], means: [], priors: [] });
  const rec = new Recorder(gpu);
  const z = upload(gpu, new Float32Array(18), [2, 9]);
  const y = upload(gpu, new Uint32Array(2), [2]);
  const stats = upload(gpu, new Float32Array(2), [2]);
  throws(
    () => headTrainStep(rec, head, new DNLLLoss(0.1), z, y, stats, 0),
    /softmax head trains with CrossEntropyLoss, not dnll/,
  );
  throws(() => headTrainStep(rec, head, new EM_DNLLLoss(0.1), z, y, stats, 0), /not em-dnll/);
  rec.destroy();
});
