// A short training run of the MDA head alone (no encoder) with EM-DNLL and Adam on a synthetic 2-D
// mixture: it must recover the component means, mixture weights, variances and class priors.
//
// The means start within 1.5 of the truth (random offsets): from the default init a component often
// lands far from every cluster, gets no responsibility and dies while its sibling stretches over both
// clusters (a local optimum of MDA itself, also seen in a float64 run of the reference gradients), and
// this test is about the GPU training loop, not about escaping local optima.

import { ok } from "node:assert/strict";
import { getGpu } from "../lib/gpu/device.ts";
import { ParamStore } from "../lib/gpu/params.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readF32, Tensor, upload, write } from "../lib/gpu/tensor.ts";
import { headSummary, headTrainStep, STATS_PER_STEP } from "../lib/mda/head.ts";
import { EM_DNLLLoss } from "../lib/mda/loss.ts";
import { MDAHead } from "../lib/mda/mda.ts";
import { Adam } from "../lib/nn/adam.ts";
import { Rng } from "../lib/rng.ts";

const C = 2, K = 2, D = 2;
const CENTERS = [[-4, 0], [0, 4], [4, 0], [0, -4]]; // [c][k] flattened: class 0 = first two
const WEIGHTS = [0.7, 0.3, 0.4, 0.6];
const CLASS0 = 0.6; // class frequencies 0.6 / 0.4
const STD = 0.5; // every component: variance 0.25

Deno.test("mda train: EM-DNLL + Adam recovers a 2-D mixture's means, weights, variances and priors", async () => {
  const gpu = await getGpu();
  const rng = new Rng(2);
  const steps = 400, N = 256;
  // Every batch up front, so the whole run records without a CPU round trip; each batch view starts on
  // a 256-byte boundary (N * D * 4 = 2048 and N * 4 = 1024 bytes per batch).
  const zAll = new Float32Array(steps * N * D);
  const yAll = new Uint32Array(steps * N);
  for (let i = 0; i < steps * N; i++) {
    const c = rng.uniform() < CLASS0 ? 0 : 1;
    const k = rng.uniform() < WEIGHTS[c * K] ? 0 : 1;
    for (let d = 0; d < D; d++) zAll[i * D + d] = CENTERS[c * K + k][d] + STD * rng.normal();
    yAll[i] = c;
  }
  const zBuf = upload(gpu, zAll, [steps * N, D]);
  const yBuf = upload(gpu, yAll, [steps * N]);

  const store = new ParamStore(gpu);
  const head = new MDAHead(store, C, D, K, rng);
  store.finalize();
  write(gpu, store.param(head.mu), Float32Array.from(CENTERS.flat(), (x) => x + rng.range(-1.5, 1.5)));
  const adam = new Adam(store, { lr: 0.05 });
  const loss = new EM_DNLLLoss(0.1);
  const stats = upload(gpu, new Float32Array(STATS_PER_STEP * steps), [STATS_PER_STEP * steps]);

  const rec = new Recorder(gpu);
  for (let s = 0; s < steps; s++) {
    const z = new Tensor(zBuf.buffer, [N, D], s * N * D * 4);
    const y = new Tensor(yBuf.buffer, [N], s * N * 4);
    headTrainStep(rec, head, loss, z, y, stats, s);
    adam.record(rec);
    if (s % 50 === 49) rec.submit();
  }
  await rec.finish();
  rec.destroy();

  const st = await readF32(gpu, stats);
  const at = STATS_PER_STEP * (steps - 1);
  const first = st[0], last = st[at];
  ok(last < first - 1, `loss fell from ${first} to ${last}`);
  ok(st[at + 1] >= N - 2, `final batch accuracy ${st[at + 1]} / ${N}`);

  const s = headSummary(head, await store.toHost());
  for (let ck = 0; ck < C * K; ck++) {
    const err = Math.hypot(s.means[ck * D] - CENTERS[ck][0], s.means[ck * D + 1] - CENTERS[ck][1]);
    ok(
      err < 0.2,
      `component ${ck}: mean (${s.means.slice(ck * D, ck * D + D)}) is ${err} from ${CENTERS[ck]}`,
    );
    ok(
      Math.abs(s.weights[ck] - WEIGHTS[ck]) < 0.06,
      `component ${ck}: weight ${s.weights[ck]}, truth ${WEIGHTS[ck]}`,
    );
    ok(
      Math.abs(s.variances[ck] / (STD * STD) - 1) < 0.25,
      `component ${ck}: variance ${s.variances[ck]}, truth 0.25`,
    );
  }
  ok(Math.abs(s.priors[0] - CLASS0) < 0.06, `class priors ${s.priors}, truth ${CLASS0}, ${1 - CLASS0}`);
});
