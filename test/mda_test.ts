// MDA head + EM-DNLL / DNLL on the GPU against dnll.md's test vector and the float64 reference
// (test/reference/heads.ts), whose gradients are in turn checked by finite differences.

import { deepStrictEqual, ok, throws } from "node:assert/strict";
import { getGpu } from "../lib/gpu/device.ts";
import { ParamStore } from "../lib/gpu/params.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readF32, readTensorsF32, Tensor, upload, write } from "../lib/gpu/tensor.ts";
import { headSummary, headTrainStep, trueClassResponsibilities } from "../lib/mda/head.ts";
import {
  createLoss,
  CrossEntropyLoss,
  DNLLLoss,
  EM_DNLLLoss,
  type Loss,
  type LossKind,
} from "../lib/mda/loss.ts";
import { initMixtureMeans, MDAHead } from "../lib/mda/mda.ts";
import { REDUCTION_VARIANTS, type ReductionVariant } from "../lib/gpu/reduction.ts";
import { TestRng as Rng } from "./util.ts"; // seeds mix in DNLL_TEST_SEED
import {
  emDnllValue,
  mdaErrorScale,
  mdaForward,
  mdaGrads,
  type MdaRefParams,
  trueClassRho,
} from "./reference/heads.ts";
import { assertClose, finiteDifference, randn, randu } from "./util.ts";

const SPEC = {
  C: 3,
  K: 2,
  D: 2,
  lambda: 0.1,
  mu: [1, .5, 1.5, -.5, -1, 1, -2, 0, 0, -1.5, .5, -2.5],
  logCov: [0, -.5, .3, 0, -.2, .4],
  mix: [0, .5, -.3, .2, .1, -.1],
  prior: [0, .2, -.1],
  z: [.9, .2, -1.2, .7, .3, -2, 0, 0],
  y: [0, 1, 2, 1],
  delta: [
    -1.2809402979,
    -3.6422147564,
    -3.5942111932,
    -4.5308153036,
    -1.4173487930,
    -5.2458265397,
    -3.9207442222,
    -5.4214547108,
    -1.4389454448,
    -2.2401460772,
    -2.4650423290,
    -2.8288954441,
  ],
  dnll: 1.6781142341592457,
  emDnll: 2.344585864309776,
  dz: [-.15271624, .13328898, .09656002, .07368767, .04928053, -.07045645, .30876000, -.11525306],
  dmu: [
    .00778403,
    .02914002,
    .13761720,
    -.16460037,
    -.09615548,
    .13537616,
    -.30285154,
    -.09748605,
    -.05914650,
    .10283891,
    .01086797,
    -.02653579,
  ],
  dprior: [.07143258, -.11111844, .03968586],
  dmix: [-.00806365, .00806365, -.07070992, .07070992, -.02774091, .02774091],
  dlogCov: [.09550973, .04460787, .13961914, -.03495340, .13017028, .07427665],
};

function specParams(): MdaRefParams {
  return {
    C: SPEC.C,
    K: SPEC.K,
    D: SPEC.D,
    mu: Float64Array.from(SPEC.mu),
    prior: Float64Array.from(SPEC.prior),
    mix: Float64Array.from(SPEC.mix),
    logCov: Float64Array.from(SPEC.logCov),
  };
}

/** Random parameters (rounded to f32, so the GPU and the reference see the same numbers). */
function randomParams(rng: Rng, C: number, K: number, D: number): MdaRefParams {
  const f = (a: Float32Array) => Float64Array.from(a);
  return {
    C,
    K,
    D,
    mu: f(randn(rng, C * K * D, 1.5)),
    prior: f(randu(rng, C, -1, 1)),
    mix: f(randu(rng, C * K, -1, 1)),
    logCov: f(randu(rng, C * K, -0.7, 0.7)),
  };
}

/** Latents near random components (some far away), so the responsibilities and penalty both matter. */
function randomBatch(rng: Rng, p: MdaRefParams, N: number): { z: Float64Array; y: number[] } {
  const z = new Float64Array(N * p.D);
  const y: number[] = [];
  for (let n = 0; n < N; n++) {
    const ck = rng.int(p.C * p.K);
    for (let d = 0; d < p.D; d++) z[n * p.D + d] = Math.fround(p.mu[ck * p.D + d] + rng.normal() * 0.8);
    y.push(rng.int(3) === 0 ? rng.int(p.C) : Math.floor(ck / p.K));
  }
  return { z, y };
}

interface GpuStep {
  logits: Float32Array;
  dz: Float32Array;
  dmu: Float32Array;
  dprior: Float32Array;
  dmix: Float32Array;
  dlogCov: Float32Array;
  stats: Float32Array;
  resp: Float32Array;
}

/**
 * One headTrainStep (stats slot 1 of 3) plus logits and responsibilities, all in one submit, with the
 * given reduction variant (default: the adapter's).
 */
async function gpuStep(
  p: MdaRefParams,
  z: ArrayLike<number>,
  y: number[],
  loss: Loss,
  variant?: ReductionVariant,
): Promise<GpuStep> {
  const gpu = await getGpu();
  const N = y.length;
  const store = new ParamStore(gpu);
  const head = new MDAHead(store, p.C, p.D, p.K, new Rng(1), { variant });
  if (variant) deepStrictEqual(head.variant, variant);
  store.finalize();
  write(gpu, store.param(head.mu), Float32Array.from(p.mu));
  write(gpu, store.param(head.priorLogits), Float32Array.from(p.prior));
  write(gpu, store.param(head.mixtureLogits), Float32Array.from(p.mix));
  write(gpu, store.param(head.logCov), Float32Array.from(p.logCov));
  const zT = upload(gpu, Float32Array.from(z), [N, p.D]);
  const yT = upload(gpu, Uint32Array.from(y), [N]);
  const statsT = upload(gpu, new Float32Array(9).fill(-7), [9]);
  const rec = new Recorder(gpu);
  const logitsT = head.logits(rec, zT);
  const respT = trueClassResponsibilities(rec, head, zT, yT);
  const dzT = headTrainStep(rec, head, loss, zT, yT, statsT, 1);
  rec.submit();
  // One wait for all (each costs ~10 ms in Deno; the device kit runs these tests on a GPU, twice).
  const [logits, dz, dmu, dprior, dmix, dlogCov, stats, resp] = await readTensorsF32(gpu, [
    logitsT,
    dzT,
    store.grad(head.mu),
    store.grad(head.priorLogits),
    store.grad(head.mixtureLogits),
    store.grad(head.logCov),
    statsT,
    respT,
  ]);
  rec.destroy();
  return { logits, dz, dmu, dprior, dmix, dlogCov, stats, resp };
}

/** GPU step against the float64 reference. */
function compareWithReference(
  g: GpuStep,
  p: MdaRefParams,
  z: Float64Array,
  y: number[],
  lambda: number,
  em: boolean,
  tol: { rtol: number; atol: number },
  conditioned = false,
) {
  const ref = mdaGrads(p, z, y, lambda);
  const f = mdaForward(p, z, y.length);
  // With `conditioned`, each element's tolerance also allows for the f32 rounding that far components
  // make unavoidable (mdaErrorScale); without it, the fixed tolerance alone.
  const s = conditioned ? mdaErrorScale(p, z, y, lambda) : undefined;
  assertClose(g.logits, f.delta, { ...tol, what: "delta", condition: s?.delta });
  assertClose(g.dz, ref.dz, { ...tol, what: "dz", condition: s?.dz });
  assertClose(g.dmu, ref.dmu, { ...tol, what: "dmu", condition: s?.dmu });
  assertClose(g.dprior, ref.dprior, { ...tol, what: "dprior_logits", condition: s?.dprior });
  assertClose(g.dmix, ref.dmix, { ...tol, what: "dmixture_logits", condition: s?.dmix });
  assertClose(g.dlogCov, ref.dlogCov, { ...tol, what: "dlog_cov", condition: s?.dlogCov });
  assertClose([g.stats[3]], [em ? ref.emDnll : ref.dnll], {
    ...tol,
    what: "batch loss",
    condition: s ? [s.loss] : undefined,
  });
  // Slot 1 of 3 is [loss, correct, labels out of range]; the other slots are untouched.
  deepStrictEqual([...g.stats.subarray(0, 3), g.stats[4], g.stats[5], ...g.stats.subarray(6)], [
    -7,
    -7,
    -7,
    ref.correct,
    0,
    -7,
    -7,
    -7,
  ]);
  assertClose(g.resp, trueClassRho(p, z, y), {
    ...tol,
    what: "true-class responsibilities",
    condition: s?.resp,
  });
}

Deno.test("mda reference: reproduces the spec's test vector in float64", () => {
  const p = specParams();
  const ref = mdaGrads(p, SPEC.z, SPEC.y, SPEC.lambda);
  const tol = { rtol: 1e-7, atol: 1e-9 };
  assertClose(mdaForward(p, SPEC.z, 4).delta, SPEC.delta, { ...tol, what: "delta" });
  assertClose([ref.dnll, ref.emDnll], [SPEC.dnll, SPEC.emDnll], { rtol: 1e-12, atol: 0, what: "losses" });
  assertClose([emDnllValue(p, SPEC.z, SPEC.y, SPEC.lambda)], [SPEC.emDnll], {
    rtol: 1e-12,
    atol: 0,
    what: "EM from Q",
  });
  // The spec prints 8 decimals: compare to half a unit in the last place.
  const printed = { rtol: 0, atol: 5e-9 };
  assertClose(ref.dz, SPEC.dz, { ...printed, what: "dz" });
  assertClose(ref.dmu, SPEC.dmu, { ...printed, what: "dmu" });
  assertClose(ref.dprior, SPEC.dprior, { ...printed, what: "dprior" });
  assertClose(ref.dmix, SPEC.dmix, { ...printed, what: "dmix" });
  assertClose(ref.dlogCov, SPEC.dlogCov, { ...printed, what: "dlog_cov" });
});

for (const variant of REDUCTION_VARIANTS) {
  Deno.test(`mda gpu (${variant}): the spec's test vector in float32, both losses`, async () => {
    const p = specParams();
    const tol = { rtol: 1e-5, atol: 1e-6 };
    for (const loss of [new EM_DNLLLoss(SPEC.lambda), new DNLLLoss(SPEC.lambda)]) {
      const g = await gpuStep(p, SPEC.z, SPEC.y, loss, variant);
      assertClose(g.logits, SPEC.delta, { ...tol, what: "delta" });
      assertClose([g.stats[3]], [loss.name === "em-dnll" ? SPEC.emDnll : SPEC.dnll], {
        ...tol,
        what: loss.name,
      });
      assertClose(g.dz, SPEC.dz, { ...tol, what: "dz" });
      assertClose(g.dmu, SPEC.dmu, { ...tol, what: "dmu" });
      assertClose(g.dprior, SPEC.dprior, { ...tol, what: "dprior_logits" });
      assertClose(g.dmix, SPEC.dmix, { ...tol, what: "dmixture_logits" });
      assertClose(g.dlogCov, SPEC.dlogCov, { ...tol, what: "dlog_cov" });
      deepStrictEqual(g.stats[4], 3); // the last sample (z = 0, y = 1) is closest to class 0
      deepStrictEqual(g.stats[5], 0); // no label out of range
    }
  });

  Deno.test(`mda gpu (${variant}): labels out of range are counted in the stats, the loss stays finite`, async () => {
    const p = specParams();
    // The spec has C = 3 classes: labels 3 and 7 are out of range, both losses must count them.
    const y = [SPEC.y[0], 3, SPEC.y[2], 7];
    for (const loss of [new EM_DNLLLoss(SPEC.lambda), new DNLLLoss(SPEC.lambda)]) {
      const g = await gpuStep(p, SPEC.z, y, loss, variant);
      deepStrictEqual(g.stats[5], 2, `${loss.name}: out-of-range labels counted`);
      ok(Number.isFinite(g.stats[3]), `${loss.name}: loss ${g.stats[3]} is finite`);
    }
  });
}

/** Reference gradients against central differences of the DNLL value and of EM-DNLL with r frozen. */
function checkReferenceByFiniteDifferences(
  p: MdaRefParams,
  z: Float64Array,
  y: number[],
  lambda: number,
  maxChecks: number,
  rng: Rng,
) {
  const ref = mdaGrads(p, z, y, lambda);
  const frozen = trueClassRho(p, z, y);
  const pick = (n: number) =>
    n <= maxChecks ? undefined : Array.from({ length: maxChecks }, () => rng.int(n));
  const tol = { rtol: 1e-6, atol: 1e-8 };
  const fields = [["mu", "dmu"], ["prior", "dprior"], ["mix", "dmix"], ["logCov", "dlogCov"]] as const;
  for (const [field, grad] of fields) {
    const x = p[field];
    const idx = pick(x.length);
    const sub = (a: ArrayLike<number>) => (idx ?? [...Array(a.length).keys()]).map((i) => a[i]);
    const fdDnll = finiteDifference(() => mdaGrads(p, z, y, lambda).dnll, x, 1e-6, idx);
    assertClose(sub(ref[grad]), sub(fdDnll), { ...tol, what: `${grad} vs FD of DNLL` });
    const fdEm = finiteDifference(() => emDnllValue(p, z, y, lambda, frozen), x, 1e-6, idx);
    assertClose(sub(ref[grad]), sub(fdEm), { ...tol, what: `${grad} vs FD of EM-DNLL (r frozen)` });
  }
  const idx = pick(z.length);
  const sub = (a: ArrayLike<number>) => (idx ?? [...Array(a.length).keys()]).map((i) => a[i]);
  const fdz = finiteDifference((zz) => mdaGrads(p, zz, y, lambda).dnll, z, 1e-6, idx);
  assertClose(sub(ref.dz), sub(fdz), { ...tol, what: "dz vs FD" });
}

const SHAPES = [
  { N: 1, C: 3, K: 2, D: 2 },
  { N: 3, C: 4, K: 1, D: 3 },
  { N: 3, C: 5, K: 5, D: 9 },
  { N: 1, C: 100, K: 2, D: 9 },
  { N: 70, C: 100, K: 5, D: 9 },
  // Several samples per lane of the tree variant's 64-lane workgroups, the last round partial.
  { N: 201, C: 3, K: 2, D: 2 },
];

Deno.test("mda reference: gradients match finite differences (K=1, K=5, D=9, C=100, batch 1 and 3)", () => {
  const rng = new Rng(11);
  for (const { N, C, K, D } of SHAPES.slice(0, 4)) {
    const p = randomParams(rng, C, K, D);
    const { z, y } = randomBatch(rng, p, N);
    checkReferenceByFiniteDifferences(p, z, y, 0.3, 40, rng);
  }
});

for (const variant of REDUCTION_VARIANTS) {
  Deno.test(`mda gpu (${variant}): matches the reference at many shapes, both losses`, async () => {
    const rng = new Rng(12);
    for (const { N, C, K, D } of SHAPES) {
      const p = randomParams(rng, C, K, D);
      const { z, y } = randomBatch(rng, p, N);
      for (const loss of [new EM_DNLLLoss(0.3), new DNLLLoss(0.3)]) {
        const g = await gpuStep(p, z, y, loss, variant);
        // Random components put some samples far away (a of 50 and more): conditioned tolerances.
        compareWithReference(
          g,
          p,
          z,
          y,
          loss.lambda,
          loss.name === "em-dnll",
          { rtol: 1e-5, atol: 1e-6 },
          true,
        );
      }
    }
  });

  Deno.test(`mda gpu (${variant}): samples far from every component stay finite (stable log-sum-exp)`, async () => {
    const rng = new Rng(13);
    const p = randomParams(rng, 4, 3, 2);
    // |z - mu|^2 ~ 1e8 with v ~ 1: a ~ -5e7, so exp(a) underflows for every component of every class.
    const z = Float64Array.from([3e3, -1e4, 7e3, 7e3, 0.5, -0.5]);
    const y = [2, 0, 1];
    const g = await gpuStep(p, z, y, new EM_DNLLLoss(0.1), variant);
    for (const [what, a] of Object.entries(g)) {
      ok((a as Float32Array).every(Number.isFinite), `${what} has a non-finite value: ${a}`);
    }
    ok(g.logits[0] < -1e6, `delta should be very negative, got ${g.logits[0]}`);
    compareWithReference(g, p, z, y, 0.1, true, { rtol: 1e-5, atol: 1e-6 });
  });

  Deno.test(`mda gpu (${variant}): same inputs give the same bits`, async () => {
    const rng = new Rng(14);
    const p = randomParams(rng, 10, 2, 2);
    const { z, y } = randomBatch(rng, p, 100);
    const a = await gpuStep(p, z, y, new EM_DNLLLoss(0.1), variant);
    const b = await gpuStep(p, z, y, new EM_DNLLLoss(0.1), variant);
    deepStrictEqual(a, b);
  });
}

Deno.test("mda: state_dict names, shapes and both mu initialisations", async () => {
  const gpu = await getGpu();
  const store = new ParamStore(gpu);
  const head = new MDAHead(store, 10, 2, 2, new Rng(3));
  deepStrictEqual(
    store.entries.map((e) => [e.name, e.shape]),
    [["head.mu", [10, 2, 2]], ["head.prior_logits", [10]], ["head.mixture_logits", [10, 2]], [
      "head.log_cov",
      [10, 2],
    ]],
  );
  deepStrictEqual([head.kind, head.numClasses, head.latentDim, head.components], ["mda", 10, 2, 2]);
  store.finalize();
  const host = await store.toHost();
  deepStrictEqual(host[0].data, initMixtureMeans(new Rng(3), 10, 2, 2, "independent"));
  for (const t of host.slice(1)) {
    ok((t.data as Float32Array).every((v) => v === 0), `${t.name} starts at zero`);
  }
  const summary = headSummary(head, host);
  deepStrictEqual(summary.weights, new Array(20).fill(0.5));
  deepStrictEqual(summary.variances, new Array(20).fill(1));
  deepStrictEqual(summary.priors, new Array(10).fill(0.1));
  deepStrictEqual(summary.means, Array.from(host[0].data as Float32Array));
  ok(summary.sigma === undefined);

  // Spreads: independent entries have std 6/sqrt(2D); class-noise components sit 0.6/sqrt(2D) apart.
  const C = 400, K = 3, D = 8, std = 6 / Math.sqrt(2 * D);
  const ind = initMixtureMeans(new Rng(5), C, K, D, "independent");
  const rms = Math.sqrt(ind.reduce((s, v) => s + v * v, 0) / ind.length);
  ok(Math.abs(rms / std - 1) < 0.03, `independent: rms ${rms}, expected ${std}`);
  const cn = initMixtureMeans(new Rng(5), C, K, D, "class-noise");
  let within = 0, classRms = 0;
  for (let c = 0; c < C; c++) {
    for (let d = 0; d < D; d++) {
      const m = (cn[(c * K) * D + d] + cn[(c * K + 1) * D + d] + cn[(c * K + 2) * D + d]) / 3;
      classRms += m * m / (C * D);
      for (let k = 0; k < K; k++) within += (cn[(c * K + k) * D + d] - m) ** 2 / (C * D * (K - 1));
    }
  }
  ok(
    Math.abs(Math.sqrt(within) / (0.1 * std) - 1) < 0.05,
    `class-noise: component spread ${Math.sqrt(within)}`,
  );
  ok(Math.abs(Math.sqrt(classRms) / std - 1) < 0.05, `class-noise: class spread ${Math.sqrt(classRms)}`);
  const named = new MDAHead(new ParamStore(gpu), 3, 2, 1, new Rng(1), { name: "clf", muInit: "class-noise" });
  deepStrictEqual(named.mu.name, "clf.mu");
});

Deno.test("losses by the configs' names (createLoss, as Model builds them)", () => {
  const emDnll = createLoss("em_dnll", 0.1);
  ok(emDnll instanceof EM_DNLLLoss && emDnll.lambda === 0.1);
  const dnll = createLoss("dnll", 0.01);
  ok(dnll instanceof DNLLLoss && dnll.lambda === 0.01);
  ok(createLoss("ce", 0.1) instanceof CrossEntropyLoss);
  throws(
    () => createLoss("em-dnll" as LossKind, 0.1),
    /unknown loss "em-dnll": expected "em_dnll", "dnll" or "ce"/,
  );
  throws(() => createLoss("dnll", -1), /lambda must be a finite number >= 0, got -1/);
});

Deno.test("mda: clear errors for bad pairs, shapes and sizes", async () => {
  const gpu = await getGpu();
  const store = new ParamStore(gpu);
  const head = new MDAHead(store, 3, 2, 2, new Rng(1));
  store.finalize();
  const rec = new Recorder(gpu);
  const z = upload(gpu, new Float32Array(8), [4, 2]);
  const y = upload(gpu, new Uint32Array(4), [4]);
  const stats = upload(gpu, new Float32Array(3), [3]);
  throws(
    () => headTrainStep(rec, head, new CrossEntropyLoss(), z, y, stats, 0),
    /mda head trains with EM_DNLLLoss or DNLLLoss/,
  );
  throws(
    () => headTrainStep(rec, head, new DNLLLoss(0.1), z, y, upload(gpu, new Float32Array(2), [2]), 0),
    /stats slot 0 does not fit stats of 2 values \(needs 3\*\(slot\+1\)\)/,
  );
  throws(() => headTrainStep(rec, head, new DNLLLoss(0.1), z, y, stats, 1), /stats slot 1/);
  throws(() => head.logits(rec, z.reshape([2, 4])), /z has shape \[2,4\], expected \[N, 2\]/);
  throws(
    () => headTrainStep(rec, head, new DNLLLoss(0.1), z, upload(gpu, new Uint32Array(3), [3]), stats, 0),
    /labels have 3 values/,
  );
  throws(() => new MDAHead(new ParamStore(gpu), 3, 0, 2, new Rng(1)), /D must be a positive integer, got 0/);
  throws(
    () => new MDAHead(new ParamStore(gpu), 3, 2, 2, new Rng(1), { muInit: "x" as "independent" }),
    /muInit/,
  );
  throws(() => new DNLLLoss(-1), /lambda must be a finite number >= 0, got -1/);
  throws(() => new MDAHead(new ParamStore(gpu), 3, 2, 2, new Rng(1)).logits(rec, z), /not finalized/);
  rec.destroy();
});

Deno.test("mda gpu: logits of several batches into one buffer through `out` (one readback)", async () => {
  const gpu = await getGpu();
  const rng = new Rng(15);
  const p = randomParams(rng, 3, 2, 4);
  const { z } = randomBatch(rng, p, 128);
  const store = new ParamStore(gpu);
  const head = new MDAHead(store, 3, 4, 2, new Rng(1));
  store.finalize();
  write(gpu, store.param(head.mu), Float32Array.from(p.mu));
  write(gpu, store.param(head.priorLogits), Float32Array.from(p.prior));
  write(gpu, store.param(head.mixtureLogits), Float32Array.from(p.mix));
  write(gpu, store.param(head.logCov), Float32Array.from(p.logCov));
  const all = upload(gpu, new Float32Array(128 * 3), [128, 3]);
  const rec = new Recorder(gpu);
  for (const start of [0, 64]) {
    const zPart = upload(gpu, Float32Array.from(z.subarray(start * 4, (start + 64) * 4)), [64, 4]);
    head.logits(rec, zPart, new Tensor(all.buffer, [64, 3], start * 3 * 4));
  }
  throws(
    () => head.logits(rec, upload(gpu, new Float32Array(4), [1, 4]), new Tensor(all.buffer, [1, 3], 12)),
    /starts at byte 12/,
  );
  throws(
    () => head.logits(rec, upload(gpu, new Float32Array(4), [1, 4]), all),
    /logits out has 384 values, expected 1\*3/,
  );
  await rec.finish();
  rec.destroy();
  assertClose(await readF32(gpu, all), mdaForward(p, z, 128).delta, {
    rtol: 1e-5,
    atol: 1e-6,
    what: "delta",
  });
});
