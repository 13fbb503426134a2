// One epoch of fashion_mda_quick's model from the same initial weights and the same batch order in
// our engine and in PyTorch (tools/pytorch/same_init_epoch.py), to tell implementation differences from
// seed luck:  deno run -A tools/same_init_epoch.ts [SEED]   (needs Debian's python3-torch and the data set)
// Measured 2026-11-29 on the 2-core CPU machine, seed 20260101: mean epoch loss 4.0324 (ours) vs 4.0309
// (PyTorch), test accuracy after the epoch 0.5577 vs 0.5693 (the trajectories drift apart only through
// float rounding, e.g. ReLU masks at y ~ 0).

import { fileURLToPath } from "node:url";
import { DeviceSplit } from "../lib/data/device.ts";
import { loadFashionMnist } from "../lib/data/fashion.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readF32, Workspace } from "../lib/gpu/tensor.ts";
import { STATS_PER_STEP } from "../lib/mda/head.ts";
import { Trainer } from "../lib/train/trainer.ts";
import { writeDraws } from "./export_draws.ts";
const seed = Number(Deno.args[0] ?? 20260101);
const dir = await Deno.makeTempDir({ prefix: "same-init-" });
const gpu = await getGpu();
const data = await loadFashionMnist({ log: () => {} });
const train = new DeviceSplit(gpu, data.train), test = new DeviceSplit(gpu, data.test);
const { model, orders: [order] } = await writeDraws(gpu, dir, seed, 1, [16, 16, 32, 32, 64, 64]);
train.setOrder(order);
const K = 234;
const ws = new Workspace(gpu, "e");
const stats = ws.tensor("s", [STATS_PER_STEP * K]);
const rec = new Recorder(gpu);
for (let k = 0; k < K; k++) {
  const { x, labels } = train.gather(rec, k * 256, 256);
  model.trainStep(rec, x, labels, stats, k);
  rec.submit();
  if (k % 20 === 0) await gpu.device.queue.onSubmittedWorkDone();
}
await rec.finish();
const s = await readF32(gpu, stats);
const trainer = new Trainer(gpu, model, undefined, test, data.test.labels, {
  batchSize: 256,
  seed: 0,
  augment: false,
});
const m = await trainer.evaluate();
const ours = Array.from({ length: K }, (_, k) => s[STATS_PER_STEP * k]);
const script = fileURLToPath(new URL("./pytorch/same_init_epoch.py", import.meta.url));
const out = await new Deno.Command("/usr/bin/python3", { args: [script, dir], stdout: "piped" }).output();
const torch = JSON.parse(new TextDecoder().decode(out.stdout));
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
console.log(`mean epoch loss: ours ${mean(ours).toFixed(4)}, PyTorch ${mean(torch.losses).toFixed(4)}`);
console.log(`test accuracy after the epoch: ours ${m.accuracy}, PyTorch ${torch.test_acc}`);
