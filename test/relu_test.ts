import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { getGpu } from "../lib/gpu/device.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readF32, upload } from "../lib/gpu/tensor.ts";
import { ReLU } from "../lib/nn/relu.ts";
import { TestRng as Rng } from "./util.ts"; // seeds mix in DNLL_TEST_SEED
import { reluBackward, reluForward } from "./reference/layers.ts";
import { assertClose, dot, finiteDifference, randn, toF64 } from "./util.ts";

Deno.test("relu: forward and backward match float64, sizes not multiples of 4, batches 1 and 3", async () => {
  const gpu = await getGpu();
  const rng = new Rng(11);
  for (const shape of [[1, 3, 5, 7], [3, 5, 7, 7], [3, 2, 2, 2], [1, 1, 1, 1], [3, 10]]) {
    const n = shape.reduce((a, b) => a * b);
    const x = randn(rng, n);
    const dy = randn(rng, n);
    const relu = new ReLU("relu");
    const rec = new Recorder(gpu);
    const y = relu.forward(rec, upload(gpu, x, shape), true);
    const dx = relu.backward(rec, upload(gpu, dy, shape), true)!;
    await rec.finish();
    assertEquals(y.shape, shape);
    assertClose(await readF32(gpu, y), reluForward(x), { rtol: 0, atol: 0, what: `[${shape}] y` });
    assertClose(await readF32(gpu, dx), reluBackward(reluForward(x), dy), {
      rtol: 0,
      atol: 0,
      what: `[${shape}] dx`,
    });
  }
});

Deno.test("relu: the gradient at exactly 0 is 0 (PyTorch: passes only where the output > 0)", async () => {
  const gpu = await getGpu();
  const relu = new ReLU("relu");
  const rec = new Recorder(gpu);
  relu.forward(rec, upload(gpu, Float32Array.of(0, -0, 1e-30, -1e-30, 2), [5]), true);
  const dx = relu.backward(rec, upload(gpu, Float32Array.of(1, 1, 1, 1, 1), [5]), true)!;
  await rec.finish();
  assertEquals([...await readF32(gpu, dx)], [0, 0, 1, 0, 1]);
});

Deno.test("relu: float64 backward matches finite differences away from 0", () => {
  const rng = new Rng(3);
  const x = toF64(randn(rng, 40)).map((v) => (Math.abs(v) < 1e-3 ? v + 0.01 : v));
  const w = randn(rng, 40);
  const fd = finiteDifference((v) => dot(reluForward(v), w), x, 1e-6);
  assertClose(reluBackward(reluForward(x), w), fd, { rtol: 1e-6, atol: 1e-8, what: "fd dx" });
});
