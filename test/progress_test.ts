// The progress line of a training run, and what a multi-run experiment's later runs have left to train
// (the "all runs" ETA).

import { equal } from "node:assert/strict";
import { writeJsonAtomic } from "../lib/io/atomic.ts";
import { Progress, progressLine } from "../lib/train/progress.ts";
import { epochsLeft } from "../experiments/run.ts";
import { tempDir } from "./util.ts";

const STEP = { epoch: 2, step: 10, steps: 235, images: 2560, seconds: 4 }; // 640 img/s

Deno.test("progress: a run's line has its epoch, step, speed and ETA", () => {
  equal(progressLine(STEP, 15, 640 * 125), "epoch 2/15 step 10/235 640 img/s ETA 2m05s");
});

Deno.test("progress: in a multi-run experiment, the run's place and the ETA of all runs", () => {
  const place = { index: 2, count: 4, imagesAfter: 640 * 3600 };
  equal(
    progressLine(STEP, 15, 640 * 125, place),
    "run 2/4 epoch 2/15 step 10/235 640 img/s ETA 2m05s (all runs 1h02m)",
  );
  // The last run: nothing after it, no second ETA.
  equal(
    progressLine(STEP, 15, 640 * 125, { ...place, index: 4, imagesAfter: 0 }),
    "run 4/4 epoch 2/15 step 10/235 640 img/s ETA 2m05s",
  );
});

Deno.test("progress: later runs' epochs left: a finished run none, a started one less its done epochs", async () => {
  const dir = await tempDir("progress-test-");
  const run = (name: string, epochs = 10) => ({ out: `${dir}/${name}`, hyper: { epochs } });
  await Deno.mkdir(`${dir}/done`);
  await writeJsonAtomic(`${dir}/done/manifest.json`, { status: "finished" });
  await Deno.mkdir(`${dir}/started`);
  await writeJsonAtomic(`${dir}/started/manifest.json`, { status: "stopped" });
  await Deno.writeTextFile(`${dir}/started/history.jsonl`, '{"epoch":1}\n{"epoch":2}\n{"epoch":3}\n');
  equal(await epochsLeft([run("done"), run("started"), run("fresh", 7)]), 0 + 7 + 7);
  equal(await epochsLeft([]), 0);
});

Deno.test({
  name: "progress: an epoch's last step reported twice prints one line (stderr not a terminal)",
  ignore: Deno.stderr.isTerminal(),
  fn: () => {
    const printed: unknown[] = [];
    const original = console.error;
    console.error = (...a: unknown[]) => printed.push(a.join(" "));
    try {
      const progress = new Progress(15);
      const last = { ...STEP, step: 235, images: 60000, seconds: 94 };
      progress.step(last, 0);
      progress.step(last, 0);
      progress.step({ ...last, epoch: 3 }, 0);
    } finally {
      console.error = original;
    }
    equal(printed.length, 2, printed.join("\n"));
  },
});
