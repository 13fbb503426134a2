// End to end on a few dozen synthetic images: a run writes every artefact, a run stopped after its
// first epoch (or in the middle of one) and resumed ends with the same bits as one that was not, and
// `evaluate` on the checkpoint reproduces the run's accuracy.

import { fileURLToPath } from "node:url";
import { deepStrictEqual, equal, match, notDeepStrictEqual, ok, rejects } from "node:assert/strict";
import { existsSync } from "node:fs";
import { loadSafetensors } from "../lib/io/safetensors.ts";
import { type TunedEntry, tuningFile } from "../lib/gpu/tuner.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { convTaskKey, gpuCandidates, kernelName } from "../lib/nn/conv2d/conv2d.ts";
import { writeTinyDataset } from "./tiny_data.ts";
import { MDA_RUN_FIGURES, tempDir, writeTuningFile } from "./util.ts";
import { parseRunArgs, UsageError } from "../experiments/cli.ts";
import { parseReportArgs, writeReport } from "../experiments/report.ts";
import { CLAIM_FILE, runPlan } from "../experiments/run.ts";
import { evaluateCheckpoint } from "../experiments/evaluate.ts";
import { experiment as quickExperiment } from "../experiments/fashion_mda_quick.ts";

const TEST = 24;

const tmp = await tempDir("mda-experiment-test-");
const data = `${tmp}/data`;
await writeTinyDataset(data);
const args = (out: string, ...extra: string[]) => [
  "fashion_mda_quick",
  "--data",
  data,
  "--out",
  out,
  "--batch-size",
  "16",
  "--epochs",
  "2",
  ...extra,
];

async function tensorsOf(path: string) {
  const { tensors } = await loadSafetensors(path);
  return tensors.map((t) => ({
    name: t.name,
    bytes: Array.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
  }));
}

let oneEpochModel: Promise<{ name: string; bytes: number[] }[]> | undefined;

/**
 * Run options under which the device goes away behind the run's back (as a driver reset takes it) at the
 * run's `step`-th step (counted across epochs: the tiny data has 3 steps an epoch).
 */
async function losingDeviceAt(step: number) {
  const gpu = await getGpu();
  let steps = 0;
  return {
    quiet: true,
    noFigures: true,
    shouldStop: () => {
      if (++steps === step) gpu.device.destroy();
      return false;
    },
  };
}

/**
 * `--resume` on `out`, a 1-epoch run stopped before its first checkpoint, finishes it to the model of a
 * 1-epoch run never stopped (trained once, for every test that asks).
 */
async function assertRestartEndsWhole(out: string): Promise<void> {
  oneEpochModel ??= runPlan(parseRunArgs(args(`${tmp}/one-epoch-whole`, "--epochs", "1")), {
    quiet: true,
    noFigures: true,
  }).then(() => tensorsOf(`${tmp}/one-epoch-whole/model.safetensors`));
  const whole = await oneEpochModel; // trained before the restart: one run on the device at a time
  const [r] = await runPlan(parseRunArgs(args(out, "--epochs", "1", "--resume")), {
    quiet: true,
    noFigures: true,
  });
  equal(r.status, "finished");
  deepStrictEqual(await tensorsOf(`${out}/model.safetensors`), whole);
}

Deno.test("experiment: a tiny run writes every artefact", async () => {
  const out = `${tmp}/full`;
  const [r] = await runPlan(parseRunArgs(args(out, "--pdf")), { quiet: true });
  equal(r.status, "finished");
  for (
    const f of [
      "history.jsonl",
      "metrics.json",
      "model.safetensors",
      "resume.safetensors",
      "manifest.json",
      "README.md",
      ...MDA_RUN_FIGURES,
      // --pdf: each figure also as a PDF (lib/plot/pdf.ts).
      ...MDA_RUN_FIGURES.map((f) => f.replace(/\.svg$/, ".pdf")),
    ]
  ) ok(existsSync(`${out}/${f}`), `missing ${f}`);
  ok(
    (await Deno.readTextFile(`${out}/README.md`)).includes("([PDF](accuracy.pdf))"),
    "the page links the PDFs",
  );
  const history = (await Deno.readTextFile(`${out}/history.jsonl`).catch(() => "")).trim().split("\n").map((
    l,
  ) => JSON.parse(l));
  equal(history.length, 2);
  for (
    const key of [
      "epoch",
      "train_loss",
      "train_accuracy",
      "test_accuracy",
      "test_nll",
      "test_ece",
      "seconds",
      "eval_seconds",
    ]
  ) {
    ok(Number.isFinite(history[1][key]), `history ${key}`);
  }
  const manifest = JSON.parse(await Deno.readTextFile(`${out}/manifest.json`));
  equal(manifest.status, "finished");
  equal(manifest.experiment_name, "fashion_mda_quick");
  equal(manifest.experiment_version, quickExperiment.version);
  equal(manifest.hyperparameters.epochs.source, "flag");
  equal(manifest.hyperparameters.lr.source, "pinned");
  equal(manifest.data.verified, false);
  ok(manifest.adapter.description);
  // The conv kernels of all six layers are recorded, in the manifest and in the resume state alike.
  equal(Object.keys(manifest.conv_kernels).length, 6);
  for (const c of Object.values(manifest.conv_kernels) as Record<string, string>[]) {
    for (const pass of ["forward", "inputGrad", "weightGrad"]) ok(/^\w+\(\w+=\d+/.test(c[pass]), c[pass]);
  }
  // The six BatchNorms' kernels too: the model's (serial) on a software adapter, tuned on a GPU.
  const bnLayers = [1, 4, 8, 11, 15, 18].map((i) => `encoder.features.${i}`);
  deepStrictEqual(Object.keys(manifest.batchnorm_kernels), bnLayers);
  for (const k of Object.values(manifest.batchnorm_kernels) as string[]) {
    ok(manifest.adapter.isSoftware ? k === "serial" : /^(serial|tree\(chunk=\d+\))$/.test(k), k);
  }
  // The other reduction kernels follow the adapter (lib/gpu/reduction.ts).
  equal(manifest.reduction_kernels, manifest.adapter.isSoftware ? "serial" : "tree");
  const { metadata } = await loadSafetensors(`${out}/resume.safetensors`);
  deepStrictEqual(JSON.parse(metadata.state).convKernels, manifest.conv_kernels);
  deepStrictEqual(JSON.parse(metadata.state).batchNormKernels, manifest.batchnorm_kernels);
  const metrics = JSON.parse(await Deno.readTextFile(`${out}/metrics.json`));
  equal(metrics.final.test_accuracy, history[1].test_accuracy);
  // evaluate reproduces the run's final accuracy from the checkpoint alone
  const m = await evaluateCheckpoint(
    { checkpoint: `${out}/model.safetensors`, dataDir: data, json: false },
    () => {},
  );
  equal(m.n, TEST);
  equal(m.accuracy, metrics.final.test_accuracy);
  equal(m.nll, metrics.final.test_nll);
  // --init starts from a checkpoint; one of another architecture is refused naming the tensor
  const [fromInit] = await runPlan(
    parseRunArgs(args(`${tmp}/init`, "--epochs", "1", "--init", `${out}/model.safetensors`)),
    { quiet: true, noFigures: true },
  );
  equal(fromInit.status, "finished");
  await rejects(
    runPlan(parseRunArgs(args(`${tmp}/init3`, "--latent-dim", "3", "--init", `${out}/model.safetensors`)), {
      quiet: true,
    }),
    /encoder\.proj\.weight has shape \[2,64\], expected \[3,64\]/,
  );
  ok(!existsSync(`${tmp}/init3`), "a refused --init wrote its output folder");
  // a finished run is not overwritten
  await rejects(
    runPlan(parseRunArgs(args(out)), { quiet: true }),
    (e: Error) => e instanceof UsageError && /finished run/.test(e.message),
  );
});

Deno.test("experiment: stopped after epoch 1 or mid-epoch, resumed, same bits as uninterrupted", async () => {
  const a = `${tmp}/a`, b = `${tmp}/b`, c = `${tmp}/c`;
  await runPlan(parseRunArgs(args(a)), { quiet: true, noFigures: true });
  const [first] = await runPlan(parseRunArgs(args(b)), { quiet: true, noFigures: true, stopAfterEpochs: 1 });
  equal(first.status, "stopped");
  await runPlan(parseRunArgs(args(b, "--resume")), { quiet: true, noFigures: true });
  deepStrictEqual(await tensorsOf(`${b}/model.safetensors`), await tensorsOf(`${a}/model.safetensors`));
  // Ctrl-C in the middle of epoch 2 (after 1 of its 3 steps)
  let steps = 0;
  const [stopped] = await runPlan(parseRunArgs(args(c)), {
    quiet: true,
    noFigures: true,
    shouldStop: () => ++steps > 4,
  });
  equal(stopped.status, "stopped");
  // --resume may extend a run, not end it before where it stands (it would be marked finished untrained).
  const manifestBefore = await Deno.readTextFile(`${c}/manifest.json`);
  await rejects(
    runPlan(parseRunArgs(args(c, "--resume", "--epochs", "1")), { quiet: true, noFigures: true }),
    (e: Error) =>
      e instanceof UsageError &&
      e.message ===
        `--resume: the run in ${c} has trained 1 epoch and 1 steps of epoch 2, past the 1 asked ` +
          "for; give --epochs 2 or more",
  );
  equal(await Deno.readTextFile(`${c}/manifest.json`), manifestBefore);
  await rejects(
    runPlan(parseRunArgs(args(b, "--resume", "--epochs", "1")), { quiet: true, noFigures: true }),
    /^Error: --resume: the run in .*\/b has trained 2 epochs, past the 1 asked for; give --epochs 2 or more$/,
  );
  await runPlan(parseRunArgs(args(c, "--resume")), { quiet: true, noFigures: true });
  deepStrictEqual(await tensorsOf(`${c}/model.safetensors`), await tensorsOf(`${a}/model.safetensors`));
  // The epoch stopped and resumed counts its time before the stop too: the history's seconds add up to the
  // run's training time in its manifest (and so metrics.json's wall_seconds, their sum, to the manifest's).
  const seconds = (await Deno.readTextFile(`${c}/history.jsonl`)).trim().split("\n")
    .map((l) => JSON.parse(l).seconds as number);
  const wall = JSON.parse(await Deno.readTextFile(`${c}/manifest.json`)).wall_seconds;
  ok(Math.abs(seconds[0] + seconds[1] - wall) <= 1e-9 * wall, `${seconds} against ${wall}`);
  const hist = (d: string) =>
    Deno.readTextFile(`${d}/history.jsonl`).then((t) =>
      t.trim().split("\n").map((l) => {
        const { seconds: _, eval_seconds: _e, ...rest } = JSON.parse(l);
        return rest;
      })
    );
  deepStrictEqual(await hist(c), await hist(a));
});

Deno.test("experiment: a run killed before its first checkpoint is refused without --resume and started again with it, to the bits of a run never stopped", async () => {
  const killed = `${tmp}/killed`;
  // What SIGKILL in the first epoch leaves: the manifest written at the start ("running"), nothing else.
  await rejects(
    runPlan(parseRunArgs(args(killed, "--epochs", "1")), {
      quiet: true,
      noFigures: true,
      shouldStop: () => {
        throw new Error("killed");
      },
    }),
    /killed/,
  );
  deepStrictEqual([...Deno.readDirSync(killed)].map((e) => e.name), ["manifest.json"]);
  await rejects(
    runPlan(parseRunArgs(args(killed, "--epochs", "1")), { quiet: true }),
    (e: Error) =>
      e instanceof UsageError &&
      e.message === `${killed} holds a run that stopped before its first checkpoint; start it again with ` +
          "--resume, or use --out DIR",
  );
  // --resume still checks that the folder holds this experiment with these hyperparameters.
  await rejects(
    runPlan(parseRunArgs(args(killed, "--epochs", "1", "--lr", "0.5", "--resume")), { quiet: true }),
    /--resume: lr is 0.5 but the run in .* used/,
  );
  await assertRestartEndsWhole(killed);
  equal(
    JSON.parse(await Deno.readTextFile(`${killed}/manifest.json`)).resumed,
    0,
    "a fresh start, not a resume",
  );
});

Deno.test("experiment: a run killed before its first checkpoint and started again keeps the kernels it recorded (--kernels-from's)", async () => {
  const kill = {
    quiet: true,
    noFigures: true,
    shouldStop: () => {
      throw new Error("killed");
    },
  };
  // Another run's manifest whose BatchNorm kernels are not what tuning gives here.
  const source = `${tmp}/kernels-source`;
  await rejects(runPlan(parseRunArgs(args(source, "--epochs", "1")), kill), /killed/);
  const recorded = JSON.parse(await Deno.readTextFile(`${source}/manifest.json`));
  const swapped = Object.fromEntries(
    Object.entries(recorded.batchnorm_kernels as Record<string, string>).map(([l, k]) => [
      l,
      k === "serial" ? "tree(chunk=1024)" : "serial",
    ]),
  );
  await Deno.writeTextFile(
    `${tmp}/kernels-swapped.json`,
    JSON.stringify({ ...recorded, batchnorm_kernels: swapped }),
  );
  const out = `${tmp}/killed-kernels-from`;
  await rejects(
    runPlan(parseRunArgs(args(out, "--epochs", "1", "--kernels-from", `${tmp}/kernels-swapped.json`)), kill),
    /killed/,
  );
  // --resume cannot name --kernels-from again (a resumed run keeps its own): the restart reads them back.
  const [r] = await runPlan(parseRunArgs(args(out, "--epochs", "1", "--resume")), {
    quiet: true,
    noFigures: true,
  });
  equal(r.status, "finished");
  const manifest = JSON.parse(await Deno.readTextFile(`${out}/manifest.json`));
  deepStrictEqual(manifest.batchnorm_kernels, swapped);
  deepStrictEqual(manifest.conv_kernels, recorded.conv_kernels);
  equal(manifest.kernels_from, `${tmp}/kernels-swapped.json`);
  equal(manifest.resumed, 0, "a fresh start, not a resume");
});

/**
 * Starts `deno task experiment` on the tiny data for 1000 epochs into `out`; once its first progress line
 * is out, calls `whileTraining` (with the child's pid) and sends `signal`; returns the exit code, stderr and
 * whether the signal was sent.
 */
async function signalledRun(
  out: string,
  signal: Deno.Signal,
  whileTraining: (pid: number) => Promise<void> = async () => {},
): Promise<{ code: number; stderr: string; sent: boolean }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "experiments/run.ts", ...args(out, "--epochs", "1000")],
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    env: { NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const decoder = new TextDecoder();
  let sent = false;
  try {
    for await (const chunk of child.stderr) {
      stderr += decoder.decode(chunk, { stream: true });
      if (!sent && /epoch 1\/1000 step/.test(stderr)) {
        sent = true;
        try {
          await whileTraining(child.pid);
        } finally {
          child.kill(signal);
        }
      }
    }
  } catch (e) {
    await child.status; // the child was signalled above: let it end before the test fails
    throw e;
  } finally {
    if (!sent) child.kill("SIGKILL");
  }
  return { code: (await child.status).code, stderr, sent };
}

Deno.test("experiment: a run that another process is training now is refused, naming that process", async () => {
  const out = `${tmp}/live/seed-1`; // seed 1's run of `--seeds 1-2 --out ${tmp}/live`, below
  const reused = `${tmp}/live-pid-reused`, claimed = `${tmp}/live-claimed`;
  const { sent } = await signalledRun(out, "SIGTERM", async (pid) => {
    const manifest = JSON.parse(await Deno.readTextFile(`${out}/manifest.json`));
    equal(manifest.process.pid, pid);
    // The same pid with another start time is another process (pids are reused): not refused, and a
    // folder with no checkpoint starts again (here stopped at once).
    await Deno.mkdir(reused);
    manifest.process.start += 1;
    await Deno.writeTextFile(`${reused}/manifest.json`, JSON.stringify(manifest));
    const [other] = await runPlan(parseRunArgs(args(reused, "--epochs", "1000", "--resume")), {
      quiet: true,
      shouldStop: () => true,
    });
    equal(other.status, "stopped");
    // As a run of a multi-run experiment, the live run is named, not called unfinished.
    await rejects(
      runPlan(parseRunArgs(args(`${tmp}/live`, "--seeds", "1-2")), { quiet: true, shouldStop: () => true }),
      new RegExp(`^Error: ${out} is being trained now by process ${pid} on this machine`),
    );
    // The live run's folder holds its claim, made before its data and tuning, which names it.
    const claim = JSON.parse(await Deno.readTextFile(`${out}/${CLAIM_FILE}`));
    deepStrictEqual(claim, { ...manifest.process, start: manifest.process.start - 1 }); // (moved on above)
    const refused = (folder: string, how: string) => (e: Error) =>
      e instanceof UsageError &&
      e.message === `${folder} is being trained now by process ${pid} on this machine (${how}); ` +
          `wait for it to end, or stop it first (Ctrl-C there, or kill ${pid})`;
    for (const extra of [["--resume"], []]) {
      // Stopped at its first step if it is not refused, so that a failure here fails fast.
      await rejects(
        runPlan(parseRunArgs(args(out, "--epochs", "1000", ...extra)), {
          quiet: true,
          shouldStop: () => true,
        }),
        refused(out, "its manifest says running"),
      );
    }
    // A folder claimed by a live process before its first manifest (its data and tuning under way) is
    // refused as well, and left as it was.
    await Deno.mkdir(claimed);
    await Deno.writeTextFile(`${claimed}/${CLAIM_FILE}`, JSON.stringify(claim));
    await rejects(
      runPlan(parseRunArgs(args(claimed, "--epochs", "1000")), { quiet: true, shouldStop: () => true }),
      refused(claimed, `its claim ${claimed}/${CLAIM_FILE} names it`),
    );
    deepStrictEqual([...Deno.readDirSync(claimed)].map((e) => e.name), [CLAIM_FILE]);
  });
  ok(sent);
  ok(!existsSync(`${out}/${CLAIM_FILE}`), "the stopped run left its claim");
  // Its process gone, a claim is taken over, and released when the run ends.
  const [taken] = await runPlan(parseRunArgs(args(claimed, "--epochs", "1000")), {
    quiet: true,
    shouldStop: () => true,
  });
  equal(taken.status, "stopped");
  ok(existsSync(`${claimed}/resume.safetensors`) && !existsSync(`${claimed}/${CLAIM_FILE}`));
  // Once that process has ended, the same --resume continues its checkpoint (to the end of the epoch it
  // was stopped in: how far it got depends on how fast this machine trains).
  const done = (await Deno.readTextFile(`${out}/history.jsonl`)).trim().split("\n").filter(Boolean).length;
  const [r] = await runPlan(parseRunArgs(args(out, "--epochs", `${done + 1}`, "--resume")), {
    quiet: true,
    noFigures: true,
  });
  equal(r.status, "finished");
});

Deno.test("experiment: SIGTERM and SIGINT stop the command after the current step with a checkpoint, exit 143 and 130", async () => {
  for (const [signal, code, name] of [["SIGTERM", 143, "SIGTERM"], ["SIGINT", 130, "Ctrl-C"]] as const) {
    const out = `${tmp}/signal-${signal}`;
    const { code: exit, stderr, sent } = await signalledRun(out, signal);
    ok(sent, `no progress line: ${stderr}`);
    equal(exit, code, `${signal}: exit ${exit}; ${stderr}`);
    match(stderr, new RegExp(`${name}: stopping after the current step \\(${name} again to quit at once\\)`));
    equal(JSON.parse(await Deno.readTextFile(`${out}/manifest.json`)).status, "stopped");
    ok(existsSync(`${out}/resume.safetensors`), `${signal}: no checkpoint`);
  }
});

Deno.test("experiment: a GPU lost in epoch 2 stops the run in one line; epoch 1's checkpoint is intact and --resume ends with the bits of a run never stopped", async () => {
  const whole = `${tmp}/lost-whole`, epoch1 = `${tmp}/lost-epoch1`, lost = `${tmp}/lost`;
  await runPlan(parseRunArgs(args(whole)), { quiet: true, noFigures: true });
  await runPlan(parseRunArgs(args(epoch1)), { quiet: true, noFigures: true, stopAfterEpochs: 1 });
  // 40 images in batches of 16: 3 steps an epoch; the device goes away before epoch 2's second step,
  // behind the run's back (as a driver reset takes it).
  await rejects(
    runPlan(parseRunArgs(args(lost)), await losingDeviceAt(5)),
    (e: Error) => {
      match(
        e.message,
        new RegExp(
          "^the GPU device was lost \\(destroyed[^)]*\\); nothing computed since can be read back; " +
            `noticed at epoch 2, step [23] of 3; the checkpoint of epoch 1 in ${lost} is intact: continue with --resume$`,
        ),
      );
      return true;
    },
  );
  const manifest = JSON.parse(await Deno.readTextFile(`${lost}/manifest.json`));
  equal(manifest.status, "failed");
  match(manifest.error, /^the GPU device was lost/);
  deepStrictEqual(
    await tensorsOf(`${lost}/resume.safetensors`),
    await tensorsOf(`${epoch1}/resume.safetensors`),
  );
  deepStrictEqual(
    await tensorsOf(`${lost}/model.safetensors`),
    await tensorsOf(`${epoch1}/model.safetensors`),
  );
  // On a new device (getGpu replaces the lost one), --resume finishes the run as if nothing had happened.
  const [resumed] = await runPlan(parseRunArgs(args(lost, "--resume")), { quiet: true, noFigures: true });
  equal(resumed.status, "finished");
  deepStrictEqual(
    await tensorsOf(`${lost}/model.safetensors`),
    await tensorsOf(`${whole}/model.safetensors`),
  );
});

Deno.test("experiment: a GPU lost in the first epoch says nothing was saved; --resume starts the run again, to the bits of a run never stopped", async () => {
  const lost = `${tmp}/lost1`;
  await rejects(
    runPlan(parseRunArgs(args(lost, "--epochs", "1")), await losingDeviceAt(2)),
    /; no epoch had finished, so nothing was saved: start it again with --resume$/,
  );
  equal(JSON.parse(await Deno.readTextFile(`${lost}/manifest.json`)).status, "failed");
  await assertRestartEndsWhole(lost);
});

Deno.test("experiment: a resumed run keeps its recorded BatchNorm kernels, whatever the tuning file says now", async () => {
  const d = `${tmp}/d`, e = `${tmp}/e`;
  const cacheFile = `${tmp}/tuning/tuning.json`;
  const opts = {
    quiet: true,
    noFigures: true,
    batchNormTuning: { mode: "hardware" as const, cache: tuningFile(cacheFile) },
  };
  const manifestOf = async (dir: string) => JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
  const [first] = await runPlan(parseRunArgs(args(d)), { ...opts, stopAfterEpochs: 1 });
  equal(first.status, "stopped");
  const recorded: Record<string, string> = (await manifestOf(d)).batchnorm_kernels;
  equal(Object.keys(recorded).length, 6);
  // The tuning file now names another candidate for every shape (as if a later timing had disagreed).
  const swap = (k: string) => k === "serial" ? "tree(chunk=1024)" : "serial";
  const cache = JSON.parse(await Deno.readTextFile(cacheFile));
  for (const entries of Object.values(cache.adapters) as Record<string, TunedEntry>[]) {
    for (const entry of Object.values(entries)) entry.choice = swap(entry.choice);
  }
  await Deno.writeTextFile(cacheFile, JSON.stringify(cache));
  await runPlan(parseRunArgs(args(d, "--resume")), opts);
  const resumed = await manifestOf(d);
  equal(resumed.status, "finished");
  deepStrictEqual(resumed.batchnorm_kernels, recorded);
  const { metadata } = await loadSafetensors(`${d}/resume.safetensors`);
  deepStrictEqual(JSON.parse(metadata.state).batchNormKernels, recorded);
  // A new run takes the tuning file's choices: the resumed one kept its own on purpose.
  await runPlan(parseRunArgs(args(e, "--epochs", "1")), opts);
  deepStrictEqual(
    (await manifestOf(e)).batchnorm_kernels,
    Object.fromEntries(Object.entries(recorded).map(([layer, k]) => [layer, swap(k)])),
  );
});

Deno.test("experiment: --retune times the kernels again where the tuning file has them, and keeps the new times", async () => {
  const cacheFile = `${tmp}/tuning-retune/tuning.json`;
  const opts = {
    quiet: true,
    noFigures: true,
    batchNormTuning: { mode: "hardware" as const, cache: tuningFile(cacheFile) },
  };
  const timings = async () => {
    const cache = JSON.parse(await Deno.readTextFile(cacheFile));
    return Object.values(cache.adapters).flatMap((e) => Object.values(e as Record<string, TunedEntry>))
      .map((e) => e.ms);
  };
  await runPlan(parseRunArgs(args(`${tmp}/retune1`, "--epochs", "1")), opts);
  const first = await timings();
  ok(first.length > 0, "the first run timed the BatchNorms");
  // Without --retune a run takes the file's choices: the times stay.
  await runPlan(parseRunArgs(args(`${tmp}/retune2`, "--epochs", "1")), opts);
  deepStrictEqual(await timings(), first);
  // With it every shape is timed again (no two timings of real runs give the same floats).
  const retimed = new Set<string>(); // shared by a plan's runs: runPlan fills it as its tuners time
  await runPlan(parseRunArgs(args(`${tmp}/retune3`, "--epochs", "1", "--retune")), { ...opts, retimed });
  equal(retimed.size, first.length, "every shape re-timed once");
  const again = await timings();
  equal(again.length, first.length);
  again.forEach((ms, i) =>
    ok(JSON.stringify(ms) !== JSON.stringify(first[i]), `shape ${i} was not timed again`)
  );
});

Deno.test("experiment: --no-winograd runs direct convolutions where the tuning file has a Winograd kernel fastest", async () => {
  const gpu = await getGpu();
  const cacheFile = `${tmp}/tuning-winograd/tuning.json`;
  // A tuning file of a GPU on which a Winograd kernel was the fastest for every pass that has one, and the
  // direct candidates tied (so the fastest of them is the reference, which compiles fast on llvmpipe).
  const { widths } = quickExperiment.pinned;
  const entries: Record<string, TunedEntry> = {};
  const maxBytes = gpu.limits.maxComputeWorkgroupStorageSize;
  widths.forEach((co, i) => {
    const ci = i === 0 ? 1 : widths[i - 1], hw = [28, 28, 14, 14, 7, 7][i];
    for (const pass of ["forward", "inputGrad", "weightGrad"] as const) {
      const names = gpuCandidates(pass, ci, maxBytes).map(kernelName);
      const fast = names.find((n) => n.includes("winograd"));
      const ms = Object.fromEntries(names.map((n) => [n, n === fast ? 0.5 : 1]));
      entries[convTaskKey({ pass, n: 16, ci, co, h: hw, w: hw })] = { choice: fast ?? names[0], ms };
    }
  });
  await writeTuningFile(cacheFile, gpu, entries);
  const before = await Deno.readTextFile(cacheFile);
  const out = `${tmp}/no-winograd`;
  const [r] = await runPlan(parseRunArgs(args(out, "--epochs", "1", "--no-winograd")), {
    quiet: true,
    noFigures: true,
    convTuning: { mode: "hardware", cache: tuningFile(cacheFile) },
  });
  equal(r.status, "finished");
  const kernels = JSON.parse(await Deno.readTextFile(`${out}/manifest.json`)).conv_kernels;
  const names: string[] = Object.values(kernels).flatMap((k) => Object.values(k as Record<string, string>));
  equal(names.length, 18);
  deepStrictEqual(names.filter((n) => n.includes("winograd")), []);
  ok(names.some((n) => n.startsWith("register_block")), names.join(" "));
  equal(await Deno.readTextFile(cacheFile), before, "chosen from the kept times: nothing timed or written");
});

Deno.test("experiment: a stop asked for after a run's last step keeps the next run from starting", async () => {
  const out = `${tmp}/seeds-stopped`;
  // Ctrl-C while seed 1 writes its last files: seed 2 must not load, tune and leave a folder behind.
  const stop = () => existsSync(`${out}/seed-1/metrics.json`);
  const plan = parseRunArgs(args(out, "--epochs", "1", "--seeds", "1-2"));
  const stopped = await runPlan(plan, { quiet: true, noFigures: true, shouldStop: stop });
  deepStrictEqual(stopped.map((r) => [r.status, r.out, r.history.length]), [
    ["finished", `${out}/seed-1`, 1],
    ["stopped", `${out}/seed-2`, 0],
  ]);
  ok(!existsSync(`${out}/seed-2`), "the run after the stop started");
  const resumed = await runPlan(parseRunArgs(args(out, "--epochs", "1", "--seeds", "1-2", "--resume")), {
    quiet: true,
    noFigures: true,
  });
  deepStrictEqual(resumed.map((r) => [r.status, r.out]), [["finished", `${out}/seed-2`]]);

  // Finished runs of another configuration than the command's are refused before any run trains (the
  // folder's report would pool them); only more epochs with --resume extends them.
  const history = async () =>
    await Promise.all(
      [1, 2].map(async (s) => (await Deno.readTextFile(`${out}/seed-${s}/history.jsonl`)).length),
    );
  const before = await history();
  for (
    const [extra, says] of [
      [
        ["--epochs", "2"],
        "epochs 1, not 2; continue the experiment with --resume to extend it to 2 epochs, or use --out DIR",
      ],
      [
        ["--epochs", "1", "--lr", "0.01", "--resume"],
        "lr 0.001, not 0.01; use --out DIR for runs of this configuration",
      ],
    ]
  ) {
    await rejects(
      runPlan(parseRunArgs(args(out, "--seeds", "1-2", ...extra)), { quiet: true, noFigures: true }),
      (e: Error) =>
        e instanceof UsageError &&
        e.message ===
          `${out}/seed-1 holds a finished run of another configuration than this command's: ${says}`,
    );
  }
  deepStrictEqual(await history(), before);
  const extended = await runPlan(parseRunArgs(args(out, "--epochs", "2", "--seeds", "1-2", "--resume")), {
    quiet: true,
    noFigures: true,
  });
  deepStrictEqual(extended.map((r) => [r.status, r.history.length]), [["finished", 2], ["finished", 2]]);
});

Deno.test("experiment: --seeds runs one run per seed and reports the seeds' distribution; report redraws it", async () => {
  const out = `${tmp}/seeds`;
  const results = await runPlan(parseRunArgs(args(out, "--epochs", "1", "--seeds", "3,1")), { quiet: true });
  deepStrictEqual(results.map((r) => r.status), ["finished", "finished"]);
  const accuracy: number[] = [];
  for (const seed of [1, 3]) {
    const manifest = JSON.parse(await Deno.readTextFile(`${out}/seed-${seed}/manifest.json`));
    deepStrictEqual(manifest.hyperparameters.seed, { value: seed, source: "flag" });
    equal(manifest.run_label, `seed ${seed}`);
    accuracy.push(
      JSON.parse(await Deno.readTextFile(`${out}/seed-${seed}/metrics.json`)).final.test_accuracy,
    );
  }
  // Different seeds, different models (the accuracies of a tiny model on a few images may still tie).
  notDeepStrictEqual(
    await tensorsOf(`${out}/seed-1/model.safetensors`),
    await tensorsOf(`${out}/seed-3/model.safetensors`),
  );
  const md = await Deno.readTextFile(`${out}/README.md`);
  ok(md.startsWith("# fashion_mda_quick (version 2), 2 seeds\n"), md.slice(0, 80));
  ok(md.includes(`| [1](seed-1/README.md) | ${accuracy[0].toFixed(4)} |`), md);
  ok(md.includes(`| [3](seed-3/README.md) | ${accuracy[1].toFixed(4)} |`), md);
  const mean = (accuracy[0] + accuracy[1]) / 2;
  const std = Math.abs(accuracy[0] - accuracy[1]) / Math.SQRT2; // sample std of two values
  ok(md.includes(`| **mean** | ${mean.toFixed(4)} |`), md);
  ok(md.includes(`| **std** | ${std.toFixed(4)} |`), md);
  ok(md.includes(`Test accuracy over 2 of 2 seeds: ${mean.toFixed(4)} ± ${std.toFixed(4)}`), md);
  for (const f of ["seeds_test_accuracy.svg", "seeds_test_ece.svg"]) {
    ok(md.includes(`](${f})`) && existsSync(`${out}/${f}`), f);
  }
  // `deno task report NAME --seeds LIST --out DIR` writes the same page from the run folders.
  const report = parseReportArgs(["fashion_mda_quick", "--seeds", "1,3", "--out", out]);
  await Deno.remove(`${out}/README.md`);
  await writeReport(report.experiment, report.out, { quiet: true });
  equal(await Deno.readTextFile(`${out}/README.md`), md);
});

Deno.test("experiment: a comparison over --seeds runs the pair per seed as --seed would; report redraws it", async () => {
  const out = `${tmp}/comparison-seeds`;
  const cmp = (dir: string, ...extra: string[]) =>
    [...args(dir, "--epochs", "1", ...extra)].map((a) =>
      a === "fashion_mda_quick" ? "fashion_lda_vs_softmax_quick" : a
    );
  const results = await runPlan(parseRunArgs(cmp(out, "--seeds", "2,1")), { quiet: true });
  deepStrictEqual(results.map((r) => r.status), ["finished", "finished", "finished", "finished"]);
  const final: Record<string, number> = {};
  for (const seed of [1, 2]) {
    for (const [id, label] of [["lda", "LDA + DNLL"], ["softmax", "Softmax + CE"]]) {
      const dir = `${out}/seed-${seed}/${id}`;
      const manifest = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
      deepStrictEqual(manifest.hyperparameters.seed, { value: seed, source: "flag" });
      equal(manifest.hyperparameters.head.value, id);
      equal(manifest.run_id, `seed-${seed}/${id}`);
      equal(manifest.run_label, `${label}, seed ${seed}`);
      final[`${seed}/${id}`] = JSON.parse(await Deno.readTextFile(`${dir}/metrics.json`)).final.test_accuracy;
    }
    // Each seed's folder is a comparison of its own, with its side-by-side figures.
    const page = await Deno.readTextFile(`${out}/seed-${seed}/README.md`);
    ok(page.startsWith(`# fashion_lda_vs_softmax_quick (version 1), seed ${seed}\n`), page.slice(0, 80));
    ok(page.includes(`| [LDA + DNLL](lda/README.md) | ${final[`${seed}/lda`].toFixed(4)} |`), page);
    for (const f of ["reliability.svg", "confidence.svg", "test_accuracy.svg", "test_ece.svg"]) {
      ok(existsSync(`${out}/seed-${seed}/${f}`), f);
    }
  }
  // The seed-1 LDA run is the run `--seed 1` of the comparison makes: the same bits.
  const single = `${tmp}/comparison-seed-1`;
  await runPlan(parseRunArgs(cmp(single, "--seed", "1", "--shard", "1/2")), { quiet: true, noFigures: true });
  deepStrictEqual(
    await tensorsOf(`${single}/lda/model.safetensors`),
    await tensorsOf(`${out}/seed-1/lda/model.safetensors`),
  );
  const md = await Deno.readTextFile(`${out}/README.md`);
  ok(md.startsWith("# fashion_lda_vs_softmax_quick (version 1), 2 seeds\n"), md.slice(0, 80));
  ok(md.includes("4 of 4 runs finished."), md);
  ok(
    md.includes(
      `| [1](seed-1/README.md) | [Softmax + CE](seed-1/softmax/README.md) | ${
        final["1/softmax"].toFixed(4)
      } |`,
    ),
    md,
  );
  ok(md.includes("Softmax + CE minus LDA + DNLL, seed by seed:"), md);
  ok(/LDA \+ DNLL had the lower ECE \(10 bins\) in [012] of 2 seeds/.test(md), md);
  for (const f of ["reliability_pooled.svg", "seeds_test_accuracy.svg", "seeds_test_ece.svg"]) {
    ok(existsSync(`${out}/${f}`), f);
  }
  // The curves: a colour and legend entry per head, a line per run.
  const eceCurves = await Deno.readTextFile(`${out}/seeds_test_ece.svg`);
  ok(eceCurves.includes("one line per seed (2 seeds)"), "ECE curves' title");
  ok(eceCurves.includes(">LDA + DNLL<") && eceCurves.includes(">Softmax + CE<"), "legend entries per head");
  for (const run of ["LDA + DNLL, seed 1", "Softmax + CE, seed 2"]) {
    ok(eceCurves.includes(`aria-description="${run}"`), run);
  }
  const pooled = await Deno.readTextFile(`${out}/reliability_pooled.svg`);
  equal((pooled.match(/LDA \+ DNLL, 2 seeds pooled/g) ?? []).length > 0, true, "LDA's panel");
  equal((pooled.match(/Softmax \+ CE, 2 seeds pooled/g) ?? []).length > 0, true, "softmax's panel");
  // `deno task report NAME --seeds LIST --out DIR` writes the same pages from the run folders.
  const report = parseReportArgs(["fashion_lda_vs_softmax_quick", "--seeds", "1,2", "--out", out]);
  const seedPage = await Deno.readTextFile(`${out}/seed-1/README.md`);
  await Deno.remove(`${out}/README.md`);
  await Deno.remove(`${out}/seed-1/README.md`);
  await writeReport(report.experiment, report.out, { quiet: true });
  equal(await Deno.readTextFile(`${out}/README.md`), md);
  equal(await Deno.readTextFile(`${out}/seed-1/README.md`), seedPage);
});

Deno.test("experiment: --kernels-from reruns another run's kernels, not the tuner's, and gets its bits", async () => {
  const f = `${tmp}/f`, g = `${tmp}/g`;
  const cacheFile = `${tmp}/tuning-f/tuning.json`;
  const opts = {
    quiet: true,
    noFigures: true,
    batchNormTuning: { mode: "hardware" as const, cache: tuningFile(cacheFile) },
  };
  const manifestOf = async (dir: string) => JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
  await runPlan(parseRunArgs(args(f, "--epochs", "1")), opts);
  const first = await manifestOf(f);
  // Another machine would time the candidates anew and might choose others: here, its tuning file does.
  const cache = JSON.parse(await Deno.readTextFile(cacheFile));
  for (const entries of Object.values(cache.adapters) as Record<string, TunedEntry>[]) {
    for (const entry of Object.values(entries)) {
      entry.choice = entry.choice === "serial" ? "tree(chunk=1024)" : "serial";
    }
  }
  await Deno.writeTextFile(cacheFile, JSON.stringify(cache));
  await runPlan(parseRunArgs(args(g, "--epochs", "1", "--kernels-from", `${f}/manifest.json`)), opts);
  const second = await manifestOf(g);
  deepStrictEqual(second.batchnorm_kernels, first.batchnorm_kernels);
  deepStrictEqual(second.conv_kernels, first.conv_kernels);
  equal(second.kernels_from, `${f}/manifest.json`);
  deepStrictEqual(await tensorsOf(`${g}/model.safetensors`), await tensorsOf(`${f}/model.safetensors`));
  // A file that is not a run's manifest, or one of another architecture, is refused naming the flag.
  await Deno.writeTextFile(`${tmp}/not-a-manifest.json`, "{}");
  await rejects(
    runPlan(parseRunArgs(args(`${tmp}/h`, "--kernels-from", `${tmp}/not-a-manifest.json`)), opts),
    (e: Error) =>
      e instanceof UsageError &&
      /^--kernels-from .*not-a-manifest.json: no conv_kernels in it/.test(e.message),
  );
  const other = {
    ...first,
    conv_kernels: { "encoder.features.0": first.conv_kernels["encoder.features.0"] },
  };
  await Deno.writeTextFile(`${tmp}/other.json`, JSON.stringify(other));
  await rejects(
    runPlan(parseRunArgs(args(`${tmp}/i`, "--kernels-from", `${tmp}/other.json`)), opts),
    (e: Error) =>
      e instanceof UsageError &&
      /^--kernels-from .*other.json: recorded conv kernels have no entry for layer encoder.features.3$/.test(
        e.message,
      ),
  );
  ok(!existsSync(`${tmp}/h`) && !existsSync(`${tmp}/i`), "a refused --kernels-from wrote its output folder");

  // A sweep resumed with --kernels-from (tools/device/sweep.sbatch on many nodes): a run not begun yet
  // starts with the recorded kernels; a run already begun keeps its own, whatever the flag now names.
  const sweep = (manifest: string) =>
    parseRunArgs([
      "fashion_lambda_sweep",
      "--shard",
      "1/45",
      "--data",
      data,
      "--out",
      `${tmp}/sweep`,
      "--batch-size",
      "16",
      "--epochs",
      "2",
      "--resume",
      "--kernels-from",
      manifest,
    ]);
  const [started] = await runPlan(sweep(`${f}/manifest.json`), { ...opts, stopAfterEpochs: 1 });
  equal(started.status, "stopped");
  const begun = await manifestOf(started.out);
  deepStrictEqual(begun.batchnorm_kernels, first.batchnorm_kernels);
  equal(begun.kernels_from, `${f}/manifest.json`);
  const swapped = {
    ...first,
    batchnorm_kernels: Object.fromEntries(
      Object.entries(first.batchnorm_kernels as Record<string, string>).map(([l, k]) => [
        l,
        k === "serial" ? "tree(chunk=1024)" : "serial",
      ]),
    ),
  };
  await Deno.writeTextFile(`${tmp}/swapped.json`, JSON.stringify(swapped));
  const [resumed] = await runPlan(sweep(`${tmp}/swapped.json`), opts);
  equal(resumed.status, "finished");
  // evaluate scales the inputs as the sweep trained them (Normalize, read from the manifest beside the
  // checkpoint; without it, from the experiment in the checkpoint's metadata), so it gives the run's metrics.
  const final = JSON.parse(await Deno.readTextFile(`${resumed.out}/metrics.json`)).final;
  await Deno.copyFile(`${resumed.out}/model.safetensors`, `${tmp}/sweep_model.safetensors`);
  for (const checkpoint of [`${resumed.out}/model.safetensors`, `${tmp}/sweep_model.safetensors`]) {
    const m = await evaluateCheckpoint({ checkpoint, dataDir: data, json: false }, () => {});
    equal(m.accuracy, final.test_accuracy, checkpoint);
    equal(m.nll, final.test_nll, checkpoint);
  }
  const raw = await evaluateCheckpoint(
    { checkpoint: `${tmp}/sweep_model.safetensors`, dataDir: data, normalize: "none", json: false },
    () => {},
  );
  ok(raw.nll !== final.test_nll, "--normalize none scored the sweep's model on other inputs");
  const after = await manifestOf(started.out);
  deepStrictEqual(after.batchnorm_kernels, first.batchnorm_kernels);
  equal(after.kernels_from, `${f}/manifest.json`, "the resumed run's record of where its kernels came from");
});

Deno.test("experiment: an epoch's files are written while the next trains; a failed write stops the run", async () => {
  // The files of epoch 1 are written during epoch 2; model.safetensors cannot be (a directory holds its
  // name, so the rename fails even for root): the run must stop with that error, not train on silently.
  const out = `${tmp}/blocked`;
  await Deno.mkdir(`${out}/model.safetensors/x`, { recursive: true });
  await rejects(
    runPlan(parseRunArgs(args(out, "--epochs", "3")), { quiet: true, noFigures: true }),
    (e: Error) => /model\.safetensors/.test(e.message),
  );
  const manifest = JSON.parse(await Deno.readTextFile(`${out}/manifest.json`));
  equal(manifest.status, "running", "the run did not go on to finish");
  // resume.safetensors (written first) holds epoch 1, whole; the history was not written after the failure.
  const { metadata } = await loadSafetensors(`${out}/resume.safetensors`);
  equal(JSON.parse(metadata.state).epochsDone, 1);
  ok(!existsSync(`${out}/history.jsonl`));

  // The same failed write, and the GPU lost in epoch 2 before it is noticed: the run ends with the GPU's
  // error (the manifest says failed), and does not claim epoch 1's checkpoint whole.
  const lost = `${tmp}/blocked-and-lost`;
  await Deno.mkdir(`${lost}/model.safetensors/x`, { recursive: true });
  await rejects(
    runPlan(parseRunArgs(args(lost, "--epochs", "3")), await losingDeviceAt(5)),
    (e: Error) => {
      match(
        e.message,
        /^the GPU device was lost .*; the files of epoch 1 were not written \(above\): --resume /,
      );
      return true;
    },
  );
  equal(JSON.parse(await Deno.readTextFile(`${lost}/manifest.json`)).status, "failed");
});

Deno.test("experiment: bad inputs fail before anything is written", async () => {
  const out = `${tmp}/never`;
  await rejects(runPlan(parseRunArgs(args(out, "--resume")), { quiet: true }), /nothing to resume/);
  await rejects(
    runPlan(parseRunArgs(args(out, "--init", `${tmp}/missing.safetensors`)), { quiet: true }),
    /not found/,
  );
  await rejects(
    runPlan(parseRunArgs([...args(out), "--data", `${tmp}/nodata`]), { quiet: true }),
    /nodata/,
  );
  ok(!existsSync(out), "the output folder was created by a failing run");
});

Deno.test("experiment: a non-finite loss stops the run naming epoch and step, keeping the last checkpoint", async () => {
  const out = `${tmp}/diverged`;
  // Epoch 1 trains normally and is checkpointed; then a lambda beyond float32's range makes the loss infinite.
  await runPlan(parseRunArgs(args(out)), { quiet: true, noFigures: true, stopAfterEpochs: 1 });
  const before = await Deno.readFile(`${out}/resume.safetensors`);
  const manifest = JSON.parse(await Deno.readTextFile(`${out}/manifest.json`));
  manifest.hyperparameters.lambda.value = 1e39;
  await Deno.writeTextFile(`${out}/manifest.json`, JSON.stringify(manifest));
  await rejects(
    runPlan(parseRunArgs(args(out, "--resume", "--lambda", "1e39")), { quiet: true, noFigures: true }),
    /training loss became (Infinity|NaN) at epoch 2, step 1/,
  );
  deepStrictEqual(await Deno.readFile(`${out}/resume.safetensors`), before);
  equal(JSON.parse(await Deno.readTextFile(`${out}/manifest.json`)).status, "failed");
});
