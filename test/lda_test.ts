// LDA head (one variance shared by all classes) + DNLL on the GPU against the float64 reference, whose
// gradients are checked by finite differences.

import { deepStrictEqual, ok, throws } from "node:assert/strict";
import { getGpu } from "../lib/gpu/device.ts";
import { ParamStore } from "../lib/gpu/params.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readTensorsF32, upload, write } from "../lib/gpu/tensor.ts";
import { headSummary, headTrainStep, trueClassResponsibilities } from "../lib/mda/head.ts";
import { CrossEntropyLoss, DNLLLoss, EM_DNLLLoss, type Loss } from "../lib/mda/loss.ts";
import { LDAHead } from "../lib/mda/lda.ts";
import { REDUCTION_VARIANTS, type ReductionVariant } from "../lib/gpu/reduction.ts";
import { TestRng as Rng } from "./util.ts"; // seeds mix in DNLL_TEST_SEED
import { dnllValue, ldaErrorScale, ldaForward, ldaGrads, type LdaRefParams } from "./reference/heads.ts";
import { assertClose, finiteDifference, randn, randu } from "./util.ts";

function randomParams(rng: Rng, C: number, D: number): LdaRefParams {
  return {
    C,
    D,
    mu: Float64Array.from(randn(rng, C * D, 1.5)),
    prior: Float64Array.from(randu(rng, C, -1, 1)),
    logCov: Math.fround(rng.range(-0.7, 0.7)),
  };
}

function randomBatch(rng: Rng, p: LdaRefParams, N: number): { z: Float64Array; y: number[] } {
  const z = new Float64Array(N * p.D);
  const y: number[] = [];
  for (let n = 0; n < N; n++) {
    const c = rng.int(p.C);
    for (let d = 0; d < p.D; d++) z[n * p.D + d] = Math.fround(p.mu[c * p.D + d] + rng.normal() * 0.8);
    y.push(rng.int(3) === 0 ? rng.int(p.C) : c);
  }
  return { z, y };
}

interface GpuStep {
  logits: Float32Array;
  dz: Float32Array;
  dmu: Float32Array;
  dprior: Float32Array;
  dlogCov: Float32Array;
  stats: Float32Array;
  resp: Float32Array;
}

/** One training step plus logits and responsibilities, with the given reduction variant (default: adapter). */
async function gpuStep(
  p: LdaRefParams,
  z: ArrayLike<number>,
  y: number[],
  loss: Loss,
  variant?: ReductionVariant,
): Promise<GpuStep> {
  const gpu = await getGpu();
  const N = y.length;
  const store = new ParamStore(gpu);
  const head = new LDAHead(store, p.C, p.D, new Rng(1), { variant });
  if (variant) deepStrictEqual(head.variant, variant);
  store.finalize();
  write(gpu, store.param(head.mu), Float32Array.from(p.mu));
  write(gpu, store.param(head.priorLogits), Float32Array.from(p.prior));
  write(gpu, store.param(head.logCov), Float32Array.of(p.logCov));
  const zT = upload(gpu, Float32Array.from(z), [N, p.D]);
  const yT = upload(gpu, Uint32Array.from(y), [N]);
  const statsT = upload(gpu, new Float32Array(6).fill(-7), [6]);
  const rec = new Recorder(gpu);
  const logitsT = head.logits(rec, zT);
  const dzT = headTrainStep(rec, head, loss, zT, yT, statsT, 0);
  const respT = trueClassResponsibilities(rec, head, zT, yT);
  rec.submit();
  // One wait for all (each costs ~10 ms in Deno; the device kit runs these tests on a GPU, twice).
  const [logits, dz, dmu, dprior, dlogCov, stats, resp] = await readTensorsF32(gpu, [
    logitsT,
    dzT,
    store.grad(head.mu),
    store.grad(head.priorLogits),
    store.grad(head.logCov),
    statsT,
    respT,
  ]);
  rec.destroy();
  return { logits, dz, dmu, dprior, dlogCov, stats, resp };
}

const SHAPES = [
  { N: 1, C: 3, D: 2 },
  { N: 3, C: 10, D: 9 },
  { N: 3, C: 100, D: 9 },
  { N: 70, C: 100, D: 99 },
  // Several samples per lane of the tree variant's 64-lane workgroups, the last round partial.
  { N: 201, C: 4, D: 3 },
];

Deno.test("lda reference: gradients match finite differences", () => {
  const rng = new Rng(21);
  for (const { N, C, D } of SHAPES.slice(0, 3)) {
    const p = randomParams(rng, C, D);
    const { z, y } = randomBatch(rng, p, N);
    const lambda = 0.2;
    const ref = ldaGrads(p, z, y, lambda);
    const value = () => dnllValue(ldaForward(p, z, N).delta, y, C, lambda);
    const tol = { rtol: 1e-6, atol: 1e-8, what: "" };
    assertClose(ref.dmu, finiteDifference(value, p.mu), { ...tol, what: "dmu" });
    assertClose(ref.dprior, finiteDifference(value, p.prior), { ...tol, what: "dprior" });
    const s = Float64Array.of(p.logCov);
    const fdS = finiteDifference(
      (x) => dnllValue(ldaForward({ ...p, logCov: x[0] }, z, N).delta, y, C, lambda),
      s,
    );
    assertClose([ref.dlogCov], fdS, { ...tol, what: "dlog_cov" });
    const fdZ = finiteDifference((zz) => dnllValue(ldaForward(p, zz, N).delta, y, C, lambda), z);
    assertClose(ref.dz, fdZ, { ...tol, what: "dz" });
  }
});

for (const variant of REDUCTION_VARIANTS) {
  Deno.test(`lda gpu (${variant}): matches the reference at many shapes`, async () => {
    const rng = new Rng(22);
    for (const { N, C, D } of SHAPES) {
      const p = randomParams(rng, C, D);
      const { z, y } = randomBatch(rng, p, N);
      for (const loss of [new DNLLLoss(0.2), new EM_DNLLLoss(0.2)]) {
        const g = await gpuStep(p, z, y, loss, variant);
        const ref = ldaGrads(p, z, y, loss.lambda);
        const tol = { rtol: 1e-5, atol: 1e-6 };
        // Random means put some samples far from some classes: each element's tolerance also allows for
        // the f32 rounding that makes unavoidable (ldaErrorScale).
        const s = ldaErrorScale(p, z, y, loss.lambda);
        assertClose(g.logits, ldaForward(p, z, N).delta, { ...tol, what: "delta", condition: s.delta });
        assertClose(g.dz, ref.dz, { ...tol, what: "dz", condition: s.dz });
        assertClose(g.dmu, ref.dmu, { ...tol, what: "dmu", condition: s.dmu });
        assertClose(g.dprior, ref.dprior, { ...tol, what: "dprior_logits", condition: s.dprior });
        assertClose(g.dlogCov, [ref.dlogCov], { ...tol, what: "dlog_cov", condition: [s.dlogCov] });
        // One component per class: EM-DNLL equals DNLL, and the responsibilities are ones.
        assertClose([g.stats[0]], [ref.dnll], { ...tol, what: "batch loss", condition: [s.loss] });
        deepStrictEqual(Array.from(g.stats.subarray(1)), [ref.correct, 0, -7, -7, -7]);
        deepStrictEqual(Array.from(g.resp), new Array(N).fill(1));
      }
    }
  });

  Deno.test(`lda gpu (${variant}): samples far from every class stay finite`, async () => {
    const rng = new Rng(23);
    const p = randomParams(rng, 5, 3);
    const z = Float64Array.from([3e3, -1e4, 7e3, 0.1, 0.2, 0.3]);
    const y = [4, 0];
    const g = await gpuStep(p, z, y, new DNLLLoss(0.1), variant);
    for (const [what, a] of Object.entries(g)) {
      ok((a as Float32Array).every(Number.isFinite), `${what}: ${a}`);
    }
    const ref = ldaGrads(p, z, y, 0.1);
    assertClose(g.dmu, ref.dmu, { rtol: 1e-5, atol: 1e-6, what: "dmu" });
    assertClose(g.dlogCov, [ref.dlogCov], { rtol: 1e-5, atol: 1e-6, what: "dlog_cov" });
  });

  Deno.test(`lda gpu (${variant}): labels out of range are counted in the stats, the loss stays finite`, async () => {
    const rng = new Rng(24);
    const p = randomParams(rng, 4, 3);
    const { z } = randomBatch(rng, p, 5);
    const g = await gpuStep(p, z, [0, 4, 1, 9, 3], new DNLLLoss(0.1), variant);
    deepStrictEqual(g.stats[2], 2);
    ok(Number.isFinite(g.stats[0]), `loss ${g.stats[0]}`);
  });

  Deno.test(`lda gpu (${variant}): same inputs give the same bits`, async () => {
    const rng = new Rng(25);
    const p = randomParams(rng, 10, 2);
    const { z, y } = randomBatch(rng, p, 150);
    const a = await gpuStep(p, z, y, new DNLLLoss(0.1), variant);
    const b = await gpuStep(p, z, y, new DNLLLoss(0.1), variant);
    deepStrictEqual(a, b);
  });
}

Deno.test("lda: state_dict names and shapes, summary with sigma, errors", async () => {
  const gpu = await getGpu();
  const store = new ParamStore(gpu);
  const head = new LDAHead(store, 10, 9, new Rng(4));
  deepStrictEqual(
    store.entries.map((e) => [e.name, e.shape]),
    [["head.mu", [10, 9]], ["head.prior_logits", [10]], ["head.log_cov", []]],
  );
  deepStrictEqual([head.kind, head.numClasses, head.latentDim, head.components], ["lda", 10, 9, 1]);
  store.finalize();
  write(gpu, store.param(head.logCov), Float32Array.of(Math.log(0.25)));
  const host = await store.toHost();
  const mu = host[0].data as Float32Array;
  const std = Math.sqrt(mu.reduce((s, v) => s + v * v, 0) / mu.length);
  ok(std > 0.5 && std < 2, `mu std ${std}, expected about ${6 / Math.sqrt(18)}`);
  const summary = headSummary(head, host);
  assertClose([summary.sigma!], [0.5], { rtol: 1e-6, what: "sigma" });
  assertClose(summary.variances, new Array(10).fill(0.25), { rtol: 1e-6, what: "variances" });
  deepStrictEqual(summary.weights, new Array(10).fill(1));
  deepStrictEqual(summary.means, Array.from(mu));

  const rec = new Recorder(gpu);
  const z = upload(gpu, new Float32Array(18), [2, 9]);
  const y = upload(gpu, new Uint32Array(2), [2]);
  const stats = upload(gpu, new Float32Array(3), [3]);
  throws(
    () => headTrainStep(rec, head, new CrossEntropyLoss(), z, y, stats, 0),
    /lda head trains with EM_DNLLLoss or DNLLLoss/,
  );
  throws(
    () => headTrainStep(rec, head, new DNLLLoss(0.1), z.reshape([9, 2]), y, stats, 0),
    /expected \[N, 9\]/,
  );
  rec.destroy();
});
