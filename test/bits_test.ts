// "Same bits" (README): the same experiment, seed and flags on the same adapter, backend and driver version
// give identical bits on any machine. This test holds three training steps of a tiny MDA model (EM-DNLL, the
// quick experiment's loss) on synthetic images against bits stored in test/expected/bits.json, keyed by
// backend | adapter | driver. Any change of summation order in any kernel, forward or backward, changes the
// loss of step 2 or 3 or the parameters' hash, so such a change is seen, and made, on purpose.
//
// To update deliberately (a kernel's order of summation changed on purpose, or a new backend/driver):
//   DNLL_UPDATE_BITS=1 deno test -A test/bits_test.ts
// then commit test/expected/bits.json with the reason in the commit message.

import { deepStrictEqual } from "node:assert/strict";
import { DeviceSplit } from "../lib/data/device.ts";
import { bitsKey, getGpu } from "../lib/gpu/device.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readF32, Workspace } from "../lib/gpu/tensor.ts";
import { STATS_PER_STEP } from "../lib/mda/head.ts";
import { Model } from "../lib/model.ts";
import { Rng } from "../lib/rng.ts";

const EXPECTED = new URL("./expected/bits.json", import.meta.url);
const N = 16, STEPS = 3;

interface Bits {
  /** Per step, the batch's mean loss as float32 bits (hex) and as a number for people. */
  loss_hex: string[];
  loss: number[];
  /** SHA-256 of every parameter (the flat float32 store) after the last step. */
  params_sha256: string;
}

const hex = (x: number) => {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, x);
  return b.getUint32(0).toString(16).padStart(8, "0");
};

async function threeSteps(): Promise<Bits> {
  const gpu = await getGpu();
  const rng = new Rng(2026);
  // Class-dependent stripes plus noise, so the loss moves in three steps.
  const images = new Uint8Array(N * 784);
  const labels = new Uint8Array(N);
  for (let i = 0; i < N; i++) {
    labels[i] = i % 4;
    for (let p = 0; p < 784; p++) {
      const row = Math.floor(p / 28);
      images[i * 784 + p] = Math.min(255, (Math.abs(row - 4 - labels[i] * 6) < 3 ? 180 : 10) + rng.int(60));
    }
  }
  const split = new DeviceSplit(gpu, { images, labels, count: N, rows: 28, cols: 28 });
  split.setOrder(Uint32Array.from({ length: N }, (_, i) => (i * 5) % N));
  const model = new Model(gpu, {
    widths: [4, 4, 8, 8, 8, 8],
    latentDim: 2,
    head: "mda",
    components: 2,
    loss: "em_dnll",
    lambda: 0.1,
    muInit: "independent",
    lr: 0.01,
    numClasses: 4,
    seed: 7,
  });
  const ws = new Workspace(gpu, "bits");
  const stats = ws.tensor("stats", [STATS_PER_STEP * STEPS]);
  const rec = new Recorder(gpu);
  for (let s = 0; s < STEPS; s++) {
    const { x, labels: y } = split.gather(rec, 0, N);
    model.trainStep(rec, x, y, stats, s);
    rec.submit();
  }
  await rec.finish();
  const log = await readF32(gpu, stats);
  const host = await model.store.toHost();
  const flat = new Uint8Array(host.reduce((n, t) => n + t.data.byteLength, 0));
  let at = 0;
  for (const t of host) {
    flat.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", flat));
  const loss = Array.from({ length: STEPS }, (_, s) => log[STATS_PER_STEP * s]);
  ws.destroy();
  split.destroy();
  return {
    loss_hex: loss.map(hex),
    loss,
    params_sha256: [...digest].map((b) => b.toString(16).padStart(2, "0")).join(""),
  };
}

Deno.test("bits: three training steps give the stored bits for this backend, adapter and driver", async () => {
  const gpu = await getGpu();
  const key = bitsKey(gpu.report);
  const got = await threeSteps();
  // Two runs in one process first: a race or an unordered reduction would show here on any adapter.
  const again = await threeSteps();
  deepStrictEqual(again, got, "two runs of the same three steps differ: a kernel is not deterministic");

  let stored: Record<string, Bits> = {};
  try {
    stored = JSON.parse(await Deno.readTextFile(EXPECTED));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (Deno.env.get("DNLL_UPDATE_BITS") === "1") {
    stored[key] = got;
    const sorted = Object.fromEntries(Object.entries(stored).sort(([a], [b]) => a.localeCompare(b)));
    await Deno.writeTextFile(EXPECTED, JSON.stringify(sorted, null, 2) + "\n");
    console.log(`bits: stored the bits for "${key}" in test/expected/bits.json; commit it with the reason`);
    return;
  }
  const want = stored[key];
  if (!want) {
    console.log(
      `bits: no stored bits for "${key}": comparison skipped (stored: ${Object.keys(stored).join("; ")}). ` +
        `To add them: DNLL_UPDATE_BITS=1 deno test -A test/bits_test.ts`,
    );
    return;
  }
  deepStrictEqual(
    got,
    want,
    `the bits of three training steps changed on "${key}". If a kernel's order of summation was changed ` +
      `on purpose, store the new bits with DNLL_UPDATE_BITS=1 deno test -A test/bits_test.ts and give the ` +
      `reason in the commit; otherwise a change made runs on this backend give other numbers than before`,
  );
});
