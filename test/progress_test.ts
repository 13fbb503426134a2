// The progress line of a training run, and what a multi-run experiment's later runs have left to train
// (the "all runs" ETA).

import { equal } from "node:assert/strict";
import { writeJsonAtomic } from "../lib/io/atomic.ts";
import { Progress, progressLine, SpeedWindow } from "../lib/train/progress.ts";
import { epochsLeft } from "../experiments/run.ts";
import { tempDir } from "./util.ts";

/** The lines fn prints with console.error (where Progress writes when stderr is not a terminal). */
function stderrLines(fn: () => void): string[] {
  const printed: string[] = [];
  const original = console.error;
  console.error = (...a: unknown[]) => printed.push(a.join(" "));
  try {
    fn();
  } finally {
    console.error = original;
  }
  return printed;
}

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
  // --resume with more epochs extends a finished run (its history has its epochs): those count.
  await Deno.writeTextFile(`${dir}/done/history.jsonl`, '{"epoch":1}\n{"epoch":2}\n');
  equal(await epochsLeft([{ ...run("done", 5), resume: true }, { ...run("done", 5), resume: false }]), 3);
  equal(await epochsLeft([]), 0);
});

Deno.test({
  name: "progress: an epoch's last step reported twice prints one line (stderr not a terminal)",
  ignore: Deno.stderr.isTerminal(),
  fn: () => {
    const printed = stderrLines(() => {
      const progress = new Progress(15);
      const last = { ...STEP, step: 235, images: 60000, seconds: 94 };
      progress.step(last, 0);
      progress.step(last, 0);
      progress.step({ ...last, epoch: 3 }, 0);
    });
    equal(printed.length, 2, printed.join("\n"));
  },
});

Deno.test("progress: the speed is the last minute's, not the epoch's average (pipeline builds, pauses)", () => {
  const speed = new SpeedWindow(60);
  equal(speed.add(256, 40), NaN, "one report: no speed yet");
  equal(Math.round(speed.add(256 + 1024, 41.6)), 640, "the first step's 40 s (pipelines built) do not count");
  // 10 minutes at 640 img/s, a report every 0.4 s.
  let images = 256 + 1024, at = 41.6;
  for (let i = 0; i < 1500; i++) equal(Math.round(speed.add(images += 256, at += 0.4)), 640);
  // Suspended for 20 minutes: the report after the pause sees it, then it leaves the window within 60 s.
  equal(Math.round(speed.add(images += 256, at += 1200)), 0);
  for (let i = 0; i < 150; i++) speed.add(images += 256, at += 0.4);
  equal(Math.round(speed.add(images += 256, at += 0.4)), 640);
});

Deno.test({
  name: "progress: the first line of a run has no speed and no ETA; the next ones the speed since",
  ignore: Deno.stderr.isTerminal(),
  fn: () => {
    let now = 0;
    const printed = stderrLines(() => {
      const progress = new Progress(15, false, () => now);
      const first = { epoch: 1, step: 1, steps: 235, images: 256, seconds: 40 };
      now = 40; // step 1 built the pipelines
      progress.step(first, 60000 * 15 - 256);
      now = 50; // 25 steps of 0.4 s later (640 img/s)
      progress.step({ ...first, step: 26, images: 26 * 256, seconds: 50 }, 60000 * 15 - 26 * 256);
    });
    equal(printed[0], "epoch 1/15 step 1/235 ETA ?");
    equal(printed[1], "epoch 1/15 step 26/235 640 img/s ETA 23m16s");
  },
});
