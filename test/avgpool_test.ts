import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { getGpu } from "../lib/gpu/device.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readTensorsF32, upload } from "../lib/gpu/tensor.ts";
import { GlobalAvgPool } from "../lib/nn/avgpool.ts";
import { REDUCTION_VARIANTS } from "../lib/gpu/reduction.ts";
import { TestRng as Rng } from "./util.ts"; // seeds mix in DNLL_TEST_SEED
import { avgPoolBackward, avgPoolForward, type Shape4 } from "./reference/layers.ts";
import { assertClose, dot, finiteDifference, randn, toF64 } from "./util.ts";

// 7x7 and 5x7 put plane boundaries inside vec4s; H*W < 4; N*C not a multiple of 4; batches 1 and 3.
// (The tree variant's workgroups hold 64 planes forward and 256 values backward: [3, 5, 7, 7] and
// [5, 29, 3, 3] leave the last ones partial.)
const SHAPES: Shape4[] = [
  [1, 3, 5, 7],
  [3, 5, 7, 7],
  [3, 2, 1, 3],
  [2, 3, 2, 2],
  [1, 1, 1, 1],
  [3, 7, 4, 4],
  [5, 29, 3, 3],
];

for (const variant of REDUCTION_VARIANTS) {
  Deno.test(`avgpool (${variant}): forward and backward match float64`, async () => {
    const gpu = await getGpu();
    const rng = new Rng(31);
    for (const shape of SHAPES) {
      const [n, c, h, w] = shape;
      const pool = new GlobalAvgPool("gap", { variant });
      assertEquals(pool.variant(gpu), variant);
      const rec = new Recorder(gpu);
      const x = randn(rng, n * c * h * w);
      const dy = randn(rng, n * c);
      const y = pool.forward(rec, upload(gpu, x, shape), true);
      const dx = pool.backward(rec, upload(gpu, dy, [n, c]), true)!;
      rec.submit();
      const [yv, dxv] = await readTensorsF32(gpu, [y, dx]);
      assertEquals(y.shape, [n, c]);
      assertClose(yv, avgPoolForward(x, shape), {
        rtol: 1e-5,
        atol: 1e-6,
        what: `[${shape}] y`,
      });
      assertClose(dxv, avgPoolBackward(dy, shape), {
        rtol: 1e-6,
        atol: 0,
        what: `[${shape}] dx`,
      });
    }
  });

  Deno.test(`avgpool (${variant}): deterministic, same inputs give the same bits`, async () => {
    const gpu = await getGpu();
    const x = randn(new Rng(4), 3 * 6 * 7 * 7);
    const outs: Float32Array[] = [];
    for (let r = 0; r < 2; r++) {
      const pool = new GlobalAvgPool("gap", { variant });
      const rec = new Recorder(gpu);
      const y = pool.forward(rec, upload(gpu, x, [3, 6, 7, 7]), true);
      const dx = pool.backward(rec, upload(gpu, x.subarray(0, 18), [3, 6]), true)!;
      rec.submit();
      outs.push(...await readTensorsF32(gpu, [y, dx]));
    }
    assertEquals(outs[2], outs[0]);
    assertEquals(outs[3], outs[1]);
  });
}

Deno.test("avgpool: float64 backward matches finite differences", () => {
  const rng = new Rng(2);
  const shape: Shape4 = [3, 2, 3, 5];
  const x = toF64(randn(rng, 90));
  const w = randn(rng, 6);
  const fd = finiteDifference((v) => dot(avgPoolForward(v, shape), w), x, 1e-6);
  assertClose(avgPoolBackward(w, shape), fd, { rtol: 1e-6, atol: 1e-9, what: "fd dx" });
});
