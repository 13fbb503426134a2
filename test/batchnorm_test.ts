import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { getGpu } from "../lib/gpu/device.ts";
import { ParamStore } from "../lib/gpu/params.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readF32, readTensorsF32, upload, write } from "../lib/gpu/tensor.ts";
import { BatchNorm2d, type BatchNormOptions } from "../lib/nn/batchnorm.ts";
import { TestRng as Rng } from "./util.ts"; // seeds mix in DNLL_TEST_SEED
import { batchNormBackward, batchNormForward, type Shape4 } from "./reference/layers.ts";
import { assertClose, dot, finiteDifference, randn, randu } from "./util.ts";

// Odd spatial sizes (7x7 and 5x7 put plane boundaries inside vec4s), H*W < 4, batches 1 and 3, and
// N*C not a multiple of 4 (a partial last quad).
const SHAPES: Shape4[] = [[1, 3, 5, 7], [3, 5, 7, 7], [2, 4, 6, 6], [3, 2, 1, 3], [4, 3, 1, 1], [3, 6, 2, 2]];

/** Shapes whose channels hold more values than the tree variant's 256 lanes: lanes loop. */
const LONG: Shape4[] = [[5, 3, 9, 13], [7, 2, 16, 16], [13, 2, 5, 11]];

/**
 * Both kernel variants, whatever this adapter picks by default (lib/gpu/reduction.ts). The tree variant
 * runs with its default chunks (4096 values: one chunk per channel here, 1792 values in the largest, so
 * each lane walks up to 7 elements across sample boundaries), with chunks of about 300 values (channels
 * in 2 to 4 chunks of 330 to 512 values, the last one partial: lanes loop and chunks fold) and of about
 * 60 values (up to 7 chunks of one or a few samples, most smaller than a workgroup).
 */
const VARIANTS: { label: string; opts: BatchNormOptions; shapes: Shape4[] }[] = [
  { label: "serial", opts: { variant: "serial" }, shapes: [...SHAPES, ...LONG] },
  { label: "tree", opts: { variant: "tree" }, shapes: [...SHAPES, ...LONG] },
  { label: "tree, 300-value chunks", opts: { variant: "tree", chunkElements: 300 }, shapes: LONG },
  {
    label: "tree, 60-value chunks",
    opts: { variant: "tree", chunkElements: 60 },
    shapes: [...SHAPES, ...LONG, [9, 3, 3, 5]],
  },
];

async function setup(channels: number, relu: boolean, seed: number, opts: BatchNormOptions = {}) {
  const gpu = await getGpu();
  const store = new ParamStore(gpu);
  const bn = new BatchNorm2d(store, "bn", channels, { ...opts, relu });
  store.finalize();
  const rng = new Rng(seed);
  const gamma = randu(rng, channels, 0.5, 1.5);
  const beta = randu(rng, channels, -0.5, 0.5);
  write(gpu, store.param(bn.weight), gamma);
  write(gpu, store.param(bn.bias), beta);
  return { gpu, store, bn, rng, gamma, beta };
}

/** x with a per-channel offset much larger than its spread, to exercise the variance's accuracy. */
function offsetInput(rng: Rng, [n, c, h, w]: Shape4): Float32Array {
  const x = randn(rng, n * c * h * w);
  const offsets = randu(rng, c, -20, 20);
  for (let k = 0; k < x.length; k++) x[k] += offsets[Math.floor(k / (h * w)) % c];
  return x;
}

Deno.test("batchnorm: registers PyTorch state_dict names in order with PyTorch's initial values", async () => {
  const gpu = await getGpu();
  const store = new ParamStore(gpu);
  new BatchNorm2d(store, "encoder.features.1", 3);
  store.finalize();
  const host = await store.toHost();
  assertEquals(host.map((t) => t.name), [
    "encoder.features.1.weight",
    "encoder.features.1.bias",
    "encoder.features.1.running_mean",
    "encoder.features.1.running_var",
    "encoder.features.1.num_batches_tracked",
  ]);
  assertEquals([...host[0].data], [1, 1, 1]);
  assertEquals([...host[1].data], [0, 0, 0]);
  assertEquals([...host[2].data], [0, 0, 0]);
  assertEquals([...host[3].data], [1, 1, 1]);
  assertEquals(host[4].dtype, "I64");
  assertEquals(host[4].data[0], 0n);
});

/**
 * The ReLU's gradient passes where the kernel's own output is positive. An output within rounding of 0 may
 * be positive in f32 and not in float64 (or the reverse), so the backward references take the kernel's
 * outputs as their gate (BatchNormOptions.reluOutput) once this has checked that the two agree everywhere
 * else.
 */
function assertSameReluGate(kernelOutput: Float32Array, preActivation: Float64Array, what: string) {
  for (let k = 0; k < kernelOutput.length; k++) {
    assert(
      (kernelOutput[k] > 0) === (preActivation[k] > 0) || Math.abs(preActivation[k]) <= 1e-5,
      `${what} relu gate ${k}: kernel output ${kernelOutput[k]}, float64 pre-activation ${preActivation[k]}`,
    );
  }
}

for (const relu of [false, true]) {
  for (const { label, opts: variant, shapes } of VARIANTS) {
    const name = `batchnorm${relu ? "+relu" : ""} (${label})`;
    Deno.test(`${name}: train forward, running stats and backward match float64`, async () => {
      for (const [si, shape] of shapes.entries()) {
        const [n, c, h, w] = shape;
        const { gpu, store, bn, rng, gamma, beta } = await setup(c, relu, 100 + si, variant);
        assertEquals(bn.variant, variant.variant);
        const x = offsetInput(rng, shape);
        const dy = randn(rng, x.length);
        const xt = upload(gpu, x, shape);
        const dyt = upload(gpu, dy, shape);
        const rec = new Recorder(gpu);
        const y = bn.forward(rec, xt, true);
        const dx = bn.backward(rec, dyt, true)!;
        rec.submit();
        // One wait for all (each costs ~10 ms in Deno; the device kit runs these tests on a GPU, twice).
        const [gpuY, runningMean, runningVar, gpuDx, dgamma, dbeta] = await readTensorsF32(gpu, [
          y,
          bn.runningMean,
          bn.runningVar,
          dx,
          store.grad(bn.weight),
          store.grad(bn.bias),
        ]);
        const opts = {
          training: true,
          runningMean: new Float64Array(c),
          runningVar: new Float64Array(c).fill(1),
          relu,
        };
        const ref = batchNormForward(x, shape, gamma, beta, opts);
        const what = `[${shape}]`;
        // The inputs sit up to 20 standard deviations off zero: x - mean in f32 carries errors of about
        // ulp(20) = 2e-6 times invstd, hence atol 1e-5 (centred inputs pass at 1e-6, see the eval test).
        assertClose(gpuY, ref.y, { rtol: 1e-4, atol: 1e-5, what: `${what} y` });
        if (relu) {
          assertSameReluGate(gpuY, batchNormForward(x, shape, gamma, beta, { ...opts, relu: false }).y, what);
        }
        const refB = batchNormBackward(x, dy, shape, gamma, beta, {
          ...opts,
          reluOutput: relu ? gpuY : undefined,
        });
        assertClose(runningMean, ref.runningMean, {
          rtol: 1e-5,
          atol: 1e-6,
          what: `${what} running_mean`,
        });
        assertClose(runningVar, ref.runningVar, {
          rtol: 1e-4,
          atol: 1e-6,
          what: `${what} running_var`,
        });
        // dx, like dgamma, carries the f32 mean's error times invstd (refB.dxCondition): with four values a
        // channel, 6 off zero and 0.07 apart (invstd 15), that alone is ~1e-4 (seen with a random seed).
        assertClose(gpuDx, refB.dx, {
          rtol: 1e-4,
          atol: 1e-5,
          condition: refB.dxCondition,
          what: `${what} dx`,
        });
        // dgamma sums n*h*w terms of |g xhat| ~ 1 that may cancel to near 0: its error scales with their
        // sizes (refB.dgammaCondition), not with the result.
        assertClose(dgamma, refB.dgamma, {
          rtol: 1e-4,
          atol: 1e-5,
          condition: refB.dgammaCondition,
          what: `${what} dgamma`,
        });
        assertClose(dbeta, refB.dbeta, {
          rtol: 1e-4,
          atol: 1e-5,
          what: `${what} dbeta`,
        });
        assertEquals(bn.numBatchesTracked.value, 1);
        // A tensor of n*h*w values per channel; a single one cannot be normalised (PyTorch refuses too).
        assert(n * h * w > 1);
      }
    });

    Deno.test(`${name}: eval forward and backward use the running statistics`, async () => {
      for (const [si, shape] of [[1, 3, 5, 7], [3, 5, 7, 7]].entries() as Iterable<[number, Shape4]>) {
        const c = shape[1];
        const { gpu, store, bn, rng, gamma, beta } = await setup(c, relu, 200 + si, variant);
        const runningMean = randu(rng, c, -1, 1), runningVar = randu(rng, c, 0.5, 2);
        write(gpu, bn.runningMean, runningMean);
        write(gpu, bn.runningVar, runningVar);
        const x = randn(rng, shape.reduce((a, b) => a * b));
        const dy = randn(rng, x.length);
        const rec = new Recorder(gpu);
        const y = bn.forward(rec, upload(gpu, x, shape), false);
        const dx = bn.backward(rec, upload(gpu, dy, shape), true)!;
        rec.submit();
        const [gpuY, gpuDx, dgamma, dbeta, meanAfter] = await readTensorsF32(gpu, [
          y,
          dx,
          store.grad(bn.weight),
          store.grad(bn.bias),
          bn.runningMean,
        ]);
        const opts = { training: false, runningMean, runningVar, relu };
        const ref = batchNormForward(x, shape, gamma, beta, opts);
        assertClose(gpuY, ref.y, { rtol: 1e-5, atol: 1e-6, what: "eval y" });
        if (relu) {
          assertSameReluGate(
            gpuY,
            batchNormForward(x, shape, gamma, beta, { ...opts, relu: false }).y,
            "eval",
          );
        }
        const refB = batchNormBackward(x, dy, shape, gamma, beta, {
          ...opts,
          reluOutput: relu ? gpuY : undefined,
        });
        assertClose(gpuDx, refB.dx, { rtol: 1e-5, atol: 1e-6, what: "eval dx" });
        assertClose(dgamma, refB.dgamma, {
          rtol: 1e-4,
          atol: 1e-5,
          what: "eval dgamma",
        });
        assertClose(dbeta, refB.dbeta, {
          rtol: 1e-4,
          atol: 1e-5,
          what: "eval dbeta",
        });
        assertClose(meanAfter, runningMean, {
          rtol: 0,
          atol: 0,
          what: "running_mean untouched",
        });
        assertEquals(bn.numBatchesTracked.value, 0);
      }
    });
  }
}

Deno.test("batchnorm: float64 backward matches finite differences through the batch statistics", () => {
  const rng = new Rng(7);
  for (const relu of [false, true]) {
    for (const shape of [[3, 2, 3, 3], [1, 3, 2, 5]] as Shape4[]) {
      const [n, c, h, w] = shape;
      const x = Float64Array.from(randn(rng, n * c * h * w));
      const gamma: Float64Array = Float64Array.from(randu(rng, c, 0.5, 1.5));
      const beta: Float64Array = Float64Array.from(randu(rng, c, -0.3, 0.3));
      const weights = randn(rng, x.length);
      const opts = {
        training: true,
        runningMean: new Float64Array(c),
        runningVar: new Float64Array(c),
        relu,
      };
      const loss = (xv: Float64Array, g: Float64Array = gamma, b: Float64Array = beta) =>
        dot(batchNormForward(xv, shape, g, b, opts).y, weights);
      const ref = batchNormBackward(x, weights, shape, gamma, beta, opts);
      assertClose(ref.dx, finiteDifference((v) => loss(v), x, 1e-6), {
        rtol: 1e-5,
        atol: 1e-7,
        what: "fd dx",
      });
      assertClose(ref.dgamma, finiteDifference((g) => loss(x, g), gamma, 1e-6), {
        rtol: 1e-5,
        atol: 1e-7,
        what: "fd dgamma",
      });
      assertClose(ref.dbeta, finiteDifference((b) => loss(x, gamma, b), beta, 1e-6), {
        rtol: 1e-5,
        atol: 1e-7,
        what: "fd dbeta",
      });
    }
  }
});

for (const { label, opts: variant } of VARIANTS) {
  Deno.test(`batchnorm (${label}): running statistics over 3 training batches, then eval mode, by hand`, async () => {
    const { gpu, store, bn } = await setup(1, false, 1, variant);
    write(gpu, store.param(bn.weight), Float32Array.of(1)); // gamma 1, beta 0: plain normalisation
    write(gpu, store.param(bn.bias), Float32Array.of(0));
    const shape: Shape4 = [2, 1, 1, 2];
    const batches = [[1, 2, 3, 4], [-2, 0, 0, 2], [10, 10, 10, 10]];
    // means: 2.5, 0, 10. Unbiased variances: (2.25+.25+.25+2.25)/3 = 5/3; (4+0+0+4)/3 = 8/3; 0.
    let rm = 0, rv = 1;
    for (const [mean, uvar] of [[2.5, 5 / 3], [0, 8 / 3], [10, 0]]) {
      rm = 0.9 * rm + 0.1 * mean;
      rv = 0.9 * rv + 0.1 * uvar;
    }
    // rm = 0.9 * (0.9 * 0.25) + 1 = 1.2025; rv = 0.9 * (0.9 * (0.9 + 1/6) + 4/15) = 1.10399999...
    assertClose([rm, rv], [1.2025, 0.9 * (0.9 * (0.9 + 1 / 6) + 4 / 15)], {
      rtol: 1e-12,
      what: "hand values",
    });
    const rec = new Recorder(gpu);
    for (const b of batches) bn.forward(rec, upload(gpu, Float32Array.from(b), shape), true);
    await rec.finish();
    assertEquals(bn.numBatchesTracked.value, 3);
    assertClose(await readF32(gpu, bn.runningMean), [rm], { rtol: 1e-6, what: "running_mean" });
    assertClose(await readF32(gpu, bn.runningVar), [rv], { rtol: 1e-6, what: "running_var" });
    const x = Float32Array.of(0, 1, 2, 3);
    const y = bn.forward(rec, upload(gpu, x, shape), false);
    await rec.finish();
    assertEquals(bn.numBatchesTracked.value, 3);
    assertClose(await readF32(gpu, y), [...x].map((v) => (v - rm) / Math.sqrt(rv + 1e-5)), {
      rtol: 1e-6,
      what: "eval y",
    });
    assertClose(await readF32(gpu, bn.runningMean), [rm], { rtol: 1e-6, what: "eval leaves running_mean" });
  });

  Deno.test(`batchnorm+relu (${label}): deterministic, same inputs give the same bits`, async () => {
    const shape: Shape4 = [5, 6, 7, 7];
    const runs: Float32Array[][] = [];
    for (let r = 0; r < 2; r++) {
      const { gpu, store, bn, rng } = await setup(6, true, 5, variant);
      const x = offsetInput(rng, shape);
      const dy = randn(rng, x.length);
      const rec = new Recorder(gpu);
      const y = bn.forward(rec, upload(gpu, x, shape), true);
      const dx = bn.backward(rec, upload(gpu, dy, shape), true)!;
      rec.submit();
      runs.push(await readTensorsF32(gpu, [y, dx, store.grad(bn.weight), bn.runningVar]));
    }
    for (let i = 0; i < runs[0].length; i++) assertEquals(runs[1][i], runs[0][i]);
  });
}

Deno.test("batchnorm: bad input is refused with a clear message", async () => {
  const { gpu, bn } = await setup(3, false, 1);
  const rec = new Recorder(gpu);
  let msg = "";
  try {
    bn.forward(rec, upload(gpu, new Float32Array(8), [2, 4, 1, 1]), true);
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(msg.includes("expected [N, 3, H, W]"), msg);
  msg = "";
  try {
    bn.forward(rec, upload(gpu, new Float32Array(3), [1, 3, 1, 1]), true);
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(msg.includes("more than 1 value per channel"), msg);
});
