import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { getGpu } from "../lib/gpu/device.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readF32, readTensorsF32, readU32, type Tensor, upload } from "../lib/gpu/tensor.ts";
import { MaxPool2d } from "../lib/nn/maxpool.ts";
import { TestRng as Rng } from "./util.ts"; // seeds mix in DNLL_TEST_SEED
import { maxPoolBackward, maxPoolForward, type Shape4 } from "./reference/layers.ts";
import { assertClose, dot, finiteDifference, randn, toF64 } from "./util.ts";

// Even and odd H; W % 4 == 0, 2 and odd (the three kernel variants); rows of more than 16 outputs (two
// code words); batches 1 and 3.
const SHAPES: Shape4[] = [
  [1, 3, 5, 7],
  [3, 2, 6, 4],
  [3, 4, 7, 6],
  [2, 3, 4, 5],
  [1, 1, 2, 2],
  [3, 5, 14, 14],
  [2, 3, 5, 8],
  [1, 2, 4, 36],
  [1, 2, 3, 34],
  [1, 1, 2, 35],
];

/** The saved window positions, unpacked from 2 bits per output, 16 outputs per word. */
async function unpackCodes(pool: MaxPool2d, outputs: number, ow: number): Promise<Uint32Array> {
  const codes = (pool as unknown as { saved: { codes: Tensor } }).saved.codes;
  const words = await readU32(await getGpu(), codes);
  const perRow = codes.shape[1];
  return Uint32Array.from({ length: outputs }, (_, o) => {
    const r = Math.floor(o / ow), j = o % ow;
    return (words[r * perRow + Math.floor(j / 16)] >>> (2 * (j % 16))) & 3;
  });
}

Deno.test("maxpool: forward, argmax and backward match float64 on even and odd sizes", async () => {
  const gpu = await getGpu();
  const rng = new Rng(21);
  for (const shape of SHAPES) {
    const [n, c, h, w] = shape;
    const pool = new MaxPool2d("pool");
    const rec = new Recorder(gpu);
    // A larger first call fills the reused dx buffer with non-zeros, so the test sees whether the rows
    // and columns that odd sizes leave out are really written as zeros.
    const bigShape: Shape4 = [n, c, h + 2, w + 2];
    const bigSize = bigShape.reduce((a, b) => a * b);
    pool.forward(rec, upload(gpu, randn(rng, bigSize), bigShape), true);
    const [, boh, bow] = pool.outputShape([c, h + 2, w + 2]);
    pool.backward(rec, upload(gpu, new Float32Array(n * c * boh * bow).fill(1), [n, c, boh, bow]), true);

    const x = randn(rng, n * c * h * w);
    const ref = maxPoolForward(x, shape);
    const dy = randn(rng, ref.y.length);
    const y = pool.forward(rec, upload(gpu, x, shape), true);
    const dx = pool.backward(rec, upload(gpu, dy, y.shape), true)!;
    rec.submit();
    const [yv, dxv] = await readTensorsF32(gpu, [y, dx]);
    assertEquals(y.shape, [n, c, Math.floor(h / 2), Math.floor(w / 2)]);
    assertClose(yv, ref.y, { rtol: 0, atol: 0, what: `[${shape}] y` });
    assertEquals(await unpackCodes(pool, ref.y.length, Math.floor(w / 2)), ref.argmax);
    assertClose(dxv, maxPoolBackward(x, dy, shape), {
      rtol: 0,
      atol: 0,
      what: `[${shape}] dx`,
    });
  }
});

Deno.test("maxpool: ties go to the first maximum in row-major window order", async () => {
  const gpu = await getGpu();
  // Four 2x2 windows side by side (H 2, W 8): all equal; [1 2 / 2 0]; [0 1 / 3 3]; [-1 -1 / -1 5].
  const x = Float32Array.of(
    4,
    4,
    1,
    2,
    0,
    1,
    -1,
    -1,
    4,
    4,
    2,
    0,
    3,
    3,
    -1,
    5,
  );
  // W 8, 10 and 9 take the vec4, vec2 and scalar kernels; the columns past 8 are zeros: one more
  // all-equal window for W 10, a column no window covers for W 9.
  for (const w of [8, 10, 9]) {
    const xs = new Float32Array(2 * w);
    for (let r = 0; r < 2; r++) xs.set(x.subarray(8 * r, 8 * r + 8), w * r);
    const ow = Math.floor(w / 2);
    const pool = new MaxPool2d("pool");
    const rec = new Recorder(gpu);
    const y = pool.forward(rec, upload(gpu, xs, [1, 1, 2, w]), true);
    const dx = pool.backward(
      rec,
      upload(gpu, Float32Array.of(1, 2, 3, 4, 5).subarray(0, ow), [1, 1, 1, ow]),
      true,
    )!;
    await rec.finish();
    assertEquals([...await readF32(gpu, y)], [4, 2, 3, 5, 0].slice(0, ow));
    const expected = new Float32Array(2 * w);
    expected[0] = 1; // window 0: first of four equal values
    expected[3] = 2; // window 1: top-right 2 beats the equal bottom-left 2
    expected[w + 4] = 3; // window 2: bottom-left 3 beats the equal bottom-right 3
    expected[w + 7] = 4;
    if (ow === 5) expected[8] = 5; // window 4: first of four zeros
    assertEquals([...await readF32(gpu, dx)], [...expected]);
  }
});

Deno.test("maxpool: float64 backward matches finite differences away from ties", () => {
  const rng = new Rng(5);
  const shape: Shape4 = [2, 2, 5, 4];
  const x = toF64(randn(rng, 80));
  const { y } = maxPoolForward(x, shape);
  const w = randn(rng, y.length);
  const fd = finiteDifference((v) => dot(maxPoolForward(v, shape).y, w), x, 1e-6);
  assertClose(maxPoolBackward(x, w, shape), fd, { rtol: 1e-6, atol: 1e-8, what: "fd dx" });
});

Deno.test("maxpool: deterministic, and bad input is refused with a clear message", async () => {
  const gpu = await getGpu();
  const x = randn(new Rng(9), 3 * 4 * 6 * 6);
  const outs: Float32Array[] = [];
  for (let r = 0; r < 2; r++) {
    const pool = new MaxPool2d("pool");
    const rec = new Recorder(gpu);
    const y = pool.forward(rec, upload(gpu, x, [3, 4, 6, 6]), true);
    const dx = pool.backward(rec, y, true)!;
    await rec.finish();
    outs.push(await readF32(gpu, dx));
  }
  assertEquals(outs[1], outs[0]);
  let msg = "";
  try {
    new MaxPool2d("p").forward(new Recorder(gpu), upload(gpu, new Float32Array(3), [1, 3, 1, 1]), true);
  } catch (e) {
    msg = (e as Error).message;
  }
  assert(msg.includes("H, W >= 2"), msg);
});
