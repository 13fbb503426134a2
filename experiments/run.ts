// `deno task experiment NAME [flags]`: trains a pinned experiment, writing into its run folder
// history.jsonl, metrics.json, model.safetensors, resume.safetensors, manifest.json and the figures.
// Every write is a temporary file renamed into place, so an interrupted run never leaves a half file.

import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { type FashionMnist, loadFashionMnist } from "../lib/data/fashion.ts";
import { DeviceSplit, FASHION_NORMALIZE } from "../lib/data/device.ts";
import { describeAdapter, exitAfterRelease, type Gpu } from "../lib/gpu/device.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { GpuFaultError } from "../lib/gpu/fault.ts";
import { createFileWhole, writeFileAtomic, writeJsonAtomic } from "../lib/io/atomic.ts";
import { loadSafetensors } from "../lib/io/safetensors.ts";
import { Model } from "../lib/model.ts";
import { batchNormKernelName, CHUNK_ELEMENTS } from "../lib/nn/batchnorm.ts";
import { type BatchNormChoices, batchNormChoices, tuneBatchNormLayers } from "../lib/nn/batchnorm_tune.ts";
import { type ConvChoices, tuneConvLayers } from "../lib/nn/conv2d/tune.ts";
import type { Layer } from "../lib/nn/layer.ts";
import type { TunerOptions } from "../lib/gpu/tuner.ts";
import {
  loadResume,
  RESUME_FORMAT,
  resumeProgress,
  type ResumeState,
  saveResume,
  writeCheckpoints,
} from "../lib/train/checkpoint.ts";
import { formatDuration, type PlanPlace, Progress } from "../lib/train/progress.ts";
import {
  historyRow,
  LabelOutOfRangeError,
  NonFiniteLossError,
  type StepProgress,
  Trainer,
} from "../lib/train/trainer.ts";
import type { EvalMetrics, HistoryRow } from "../lib/types.ts";
import {
  checkPlanPaths,
  exitWithError,
  planFromFlags,
  RUN_SPEC,
  runHelp,
  type RunPlan,
  type RunRequest,
  UsageError,
} from "./cli.ts";
import { EXPERIMENTS, modelConfigOf } from "./config.ts";
import { checkOutputDir, parseFlags } from "./flags.ts";
import { readJson } from "../lib/io/json.ts";
import { configurationDifferences, configurationOf, requestConfiguration } from "./run_config.ts";
import { liveProcess, type ProcessId, thisProcess } from "../lib/io/process.ts";
import { readHistory, writeResultsIndex, writeRunPage } from "./pages.ts";
import { writePdfsBeside, writeRunFigures } from "./figures.ts";
import { seedSpread } from "./seed_spread.ts";

export interface RunOptions {
  quiet?: boolean;
  /** Tests: stop (as if killed) once this many epochs are complete. */
  stopAfterEpochs?: number;
  /** Set by the SIGINT handler: stop after the current step with a resumable checkpoint. */
  shouldStop?: () => boolean;
  /** Skip figures and the run page (tests of the training loop). */
  noFigures?: boolean;
  /**
   * Tests: tune the BatchNorms as on a GPU (mode "hardware") with their own tuning file. (The conv
   * candidates are GPU-sized kernels, minutes to compile on llvmpipe: tests tune those in tuner_test.)
   */
  batchNormTuning?: Pick<TunerOptions, "mode" | "cache">;
  /** Tests: the same for the convolutions (with a tuning file that answers every shape: nothing is timed). */
  convTuning?: Pick<TunerOptions, "mode" | "cache">;
  /** With --retune: the shapes re-timed already, shared by the runs of one plan (TunerOptions.retimed). */
  retimed?: Set<string>;
  /** In a multi-run experiment (set by runPlan): this run's place and the epochs its later runs have left. */
  place?: Omit<PlanPlace, "imagesAfter"> & { epochsAfter: number };
}

export interface RunResult {
  /** "stopped" with an empty history: a stop came between runs, and this one did not start. */
  status: "finished" | "stopped";
  history: HistoryRow[];
  metrics?: Record<string, unknown>;
  out: string;
}

const file = (out: string, name: string) => `${out}/${name}`;

/**
 * The pid of another process on this machine that is training the run of this manifest now, if there is
 * one. Two processes writing one folder interleave their checkpoints and histories, and a run in its first
 * epoch looks like one killed there. The manifest names its process; the same pid with the same start time
 * on the same boot is that process (a pid alone may have been reused). Where /proc is missing, or on another
 * host, nothing can be told and nothing is refused.
 */
function liveTrainer(manifest: Record<string, unknown> | undefined): number | undefined {
  if (manifest?.status !== "running") return undefined;
  return liveProcess(manifest.process as Partial<ProcessId> | undefined);
}

/** The error for a folder another process on this machine is training now. */
function trainedNow(out: string, pid: number, how: string): UsageError {
  return new UsageError(
    `${out} is being trained now by process ${pid} on this machine (${how}); ` +
      `wait for it to end, or stop it first (Ctrl-C there, or kill ${pid})`,
  );
}

/** Throws if another process on this machine is training the run in `out` now (liveTrainer). */
function refuseLive(out: string, manifest: Record<string, unknown> | undefined): void {
  const trainer = liveTrainer(manifest);
  if (trainer !== undefined) throw trainedNow(out, trainer, "its manifest says running");
}

/** The file by which a process claims a run folder while it trains the run in it (claimRunFolder). */
export const CLAIM_FILE = ".trainer.json";

/**
 * Claims the run folder `out` for this process, before the data is read and the kernels tuned: until the
 * first manifest names its trainer (seconds on a CPU, a minute of tuning on a GPU), a second process started
 * on the same folder would pass every check and the two would interleave their checkpoints. The claim is a
 * file naming this process, created whole or not at all; one whose process is gone (killed, a power cut, a
 * reboot) or cannot be told (another host) is taken over, as the manifest's is. Returns the release, for
 * every way the run ends: the claim removed, and the folder too where the claim created it and nothing
 * else came into it (a run that failed before writing anything).
 */
async function claimRunFolder(out: string): Promise<() => Promise<void>> {
  const created = !existsSync(out);
  await Deno.mkdir(out, { recursive: true });
  const claim = file(out, CLAIM_FILE);
  const text = JSON.stringify(thisProcess()) + "\n";
  try {
    if (!(await createFileWhole(claim, text))) {
      const owner = await readJson(claim) as Partial<ProcessId> | undefined;
      const pid = liveProcess(owner);
      if (pid !== undefined) throw trainedNow(out, pid, `its claim ${claim} names it`);
      await Deno.remove(claim).catch(() => {}); // its process is gone
      if (!(await createFileWhole(claim, text))) {
        throw new UsageError(`${out} was claimed by another process starting at the same moment`);
      }
    }
  } catch (e) {
    if (created) await Deno.remove(out).catch(() => {});
    throw e;
  }
  return async () => {
    await Deno.remove(claim).catch(() => {});
    if (created) await Deno.remove(out).catch(() => {}); // only where empty
  };
}

/**
 * Refuses to clobber a finished or resumable run unless --resume says to continue it. Returns whether
 * --resume continues a checkpoint or starts again a run that was killed (SIGKILL, a power cut, a
 * scheduler) before its first checkpoint, which left a manifest and nothing else: without this, such a
 * folder could be neither resumed nor restarted, and a sweep requeued after it would fail forever.
 */
async function checkOutDir(req: RunRequest): Promise<"resume" | "start"> {
  const manifest = await readJson(file(req.out, "manifest.json"));
  refuseLive(req.out, manifest);
  const hasResume = existsSync(file(req.out, "resume.safetensors"));
  const killedBeforeCheckpoint = manifest !== undefined && manifest.status !== "finished" && !hasResume &&
    !["model.safetensors", "history.jsonl"].some((f) => existsSync(file(req.out, f)));
  if (!req.resume) {
    if (manifest?.status === "finished") {
      throw new UsageError(
        `${req.out} already holds a finished run of ${manifest.experiment_name ?? "an experiment"}; ` +
          `use --out DIR for a new run (or --resume to continue it)`,
      );
    }
    if (killedBeforeCheckpoint) {
      throw new UsageError(
        `${req.out} holds a run that stopped before its first checkpoint; start it again with --resume, ` +
          `or use --out DIR`,
      );
    }
    if (hasResume || manifest) {
      throw new UsageError(`${req.out} holds an unfinished run; continue it with --resume, or use --out DIR`);
    }
    return "start";
  }
  if (!hasResume && !killedBeforeCheckpoint) {
    throw new UsageError(`--resume: ${req.out}/resume.safetensors not found (nothing to resume)`);
  }
  if (!manifest) throw new UsageError(`--resume: ${req.out}/manifest.json is missing or unreadable`);
  if (manifest.experiment_name !== req.experiment.name) {
    throw new UsageError(
      `--resume: ${req.out} holds a run of ${manifest.experiment_name}, not ${req.experiment.name}`,
    );
  }
  if (hasResume) {
    // epochs may differ (a run may be extended), but not end before where the run stands: nothing would
    // train, and the run would be marked finished with the checkpoint's model, history and metrics apart.
    const { epochsDone, stepInEpoch } = await resumeProgress(file(req.out, "resume.safetensors"));
    const least = stepInEpoch > 0 ? epochsDone + 1 : epochsDone;
    if (req.hyper.epochs < least) {
      throw new UsageError(
        `--resume: the run in ${req.out} has trained ${epochsDone} epoch${epochsDone === 1 ? "" : "s"}` +
          (stepInEpoch > 0 ? ` and ${stepInEpoch} steps of epoch ${epochsDone + 1}` : "") +
          `, past the ${req.hyper.epochs} asked for; give --epochs ${least} or more`,
      );
    }
  }
  const before = manifest.hyperparameters as Record<string, { value: unknown }>;
  for (const [key, value] of Object.entries(req.hyper)) {
    const old = before?.[key]?.value;
    if (key === "epochs") continue; // a finished or running run may be extended
    if (JSON.stringify(old) !== JSON.stringify(value)) {
      throw new UsageError(
        `--resume: ${key} is ${JSON.stringify(value)} but the run in ${req.out} used ${JSON.stringify(old)}`,
      );
    }
  }
  return hasResume ? "resume" : "start";
}

async function gitCommit(): Promise<string> {
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "HEAD"],
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return "unknown";
    const commit = new TextDecoder().decode(out.stdout).trim();
    const dirty = await new Deno.Command("git", {
      args: ["status", "--porcelain", "--untracked-files=no"],
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(dirty.stdout).trim() ? `${commit}-dirty` : commit;
  } catch {
    return "unknown";
  }
}

function buildManifest(
  req: RunRequest,
  gpu: Gpu,
  data: FashionMnist,
  commit: string,
  extra: Record<string, unknown>,
): Record<string, unknown> {
  return {
    experiment_name: req.experiment.name,
    experiment_version: req.experiment.version,
    run_id: req.variant?.id ?? null,
    run_label: req.variant?.label ?? null,
    description: req.experiment.description,
    hyperparameters: Object.fromEntries(
      Object.entries(req.hyper).map(([k, v]) => [k, { value: v, source: req.sources[k] ?? "flag" }]),
    ),
    seed: req.hyper.seed,
    init: req.init ?? null,
    kernels_from: req.kernelsFrom ?? null,
    git_commit: commit,
    deno_version: Deno.version.deno,
    // Which process writes the folder (liveTrainer); a resumed run names its own.
    process: thisProcess(),
    adapter: gpu.report,
    data: {
      dir: data.dir,
      verified: data.verified,
      train_images: data.train.count,
      test_images: data.test.count,
      files: data.files.map((f) => ({ ...f, status: f.verified ? "verified" : "unverified" })),
    },
    ...extra,
  };
}

/**
 * The conv and BatchNorm kernels a run recorded in its manifest.json (--kernels-from). A run from before
 * BatchNorm kernels were recorded ran the variant of its `reduction_kernels` at the default chunk.
 */
async function recordedKernels(
  path: string,
  layers: readonly Layer[],
): Promise<{ conv: ConvChoices; batchNorm: BatchNormChoices }> {
  const manifest = await readJson(path);
  const isRecord = (v: unknown): v is Record<string, never> => typeof v === "object" && v !== null;
  if (!manifest || !isRecord(manifest.conv_kernels)) {
    throw new UsageError(`--kernels-from ${path}: no conv_kernels in it (expected a run's manifest.json)`);
  }
  let batchNorm = manifest.batchnorm_kernels as BatchNormChoices | undefined;
  if (!isRecord(batchNorm)) {
    const variant = manifest.reduction_kernels === "tree" ? "tree" : "serial";
    const name = batchNormKernelName({ variant, chunkElements: CHUNK_ELEMENTS });
    batchNorm = Object.fromEntries(Object.keys(batchNormChoices(layers)).map((layer) => [layer, name]));
  }
  return { conv: manifest.conv_kernels as ConvChoices, batchNorm };
}

export async function runExperiment(request: RunRequest, opts: RunOptions = {}): Promise<RunResult> {
  checkOutputDir("--out", request.out);
  await checkOutDir(request); // bad flags are refused before anything is written
  const release = await claimRunFolder(request.out);
  try {
    return await runClaimed(request, opts);
  } finally {
    await release();
  }
}

/** runExperiment in a folder claimed for this process. */
async function runClaimed(request: RunRequest, opts: RunOptions): Promise<RunResult> {
  // Looked at again under the claim: another process may have written the folder since the first look.
  // A --resume with no checkpoint to continue starts the run again (nothing was saved, nothing is lost).
  const restart = (await checkOutDir(request)) === "start" && request.resume;
  const req = restart ? { ...request, resume: false } : request;
  const h = req.hyper;
  if (req.init && !existsSync(req.init)) throw new UsageError(`--init: ${req.init} not found`);

  const progress = new Progress(h.epochs, opts.quiet);
  // The run's first line says what produces its bits: adapter, backend (and why), driver, CPU.
  const gpu = await getGpu();
  progress.line(`adapter: ${describeAdapter(gpu.report)}`);
  if (restart) {
    progress.line(`${req.out} stopped before its first checkpoint: starting it from the beginning`);
  }
  const data = await loadFashionMnist({
    dataDir: req.dataDir,
    trainLimit: h.trainLimit,
    testLimit: h.testLimit,
    log: (l) => progress.line(l),
  });
  if (opts.place) {
    const { index, count, epochsAfter } = opts.place;
    progress.place = { index, count, imagesAfter: epochsAfter * data.train.count };
  }

  const model = new Model(gpu, modelConfigOf(h));
  if (req.init && !req.resume) {
    const { tensors } = await loadSafetensors(req.init);
    model.store.fromHost(tensors, req.init);
  }
  const normalize = h.augment ? FASHION_NORMALIZE : undefined;
  const train = new DeviceSplit(gpu, data.train, { normalize });
  const test = new DeviceSplit(gpu, data.test, { normalize });
  const trainer = new Trainer(gpu, model, train, test, data.test.labels, {
    batchSize: h.batchSize,
    seed: h.seed,
    augment: h.augment,
  });

  let state: ResumeState;
  if (req.resume) {
    state = await loadResume(file(req.out, "resume.safetensors"), model);
    trainer.setStreamState(state.streams);
    progress.line(
      `resuming ${req.out} after epoch ${state.epochsDone}` +
        (state.stepInEpoch ? `, step ${state.stepInEpoch}` : ""),
    );
  } else {
    state = {
      format: RESUME_FORMAT,
      epochsDone: 0,
      stepInEpoch: 0,
      adamStep: 0,
      streams: trainer.streamState(),
      stats: [],
      history: [],
      elapsed: 0,
    };
  }

  // Conv and BatchNorm kernels: timed once per adapter and shape on a GPU (lib/gpu/tuner.ts), the
  // hand-tuned ones on a software adapter; a resumed run reuses the recorded choice, so it gives the
  // same bits. (A run resumed from before BatchNorms were tuned has none recorded: on the software
  // adapters it ran on, "tuning" keeps the model's kernels, the ones it used.)
  // --kernels-from takes another run's recorded kernels instead, so a run on another machine with the
  // same adapter reproduces that run's bits (the tuner's timing could choose differently there).
  const inputShape = [h.batchSize, 1, 28, 28];
  const log = (l: string) => progress.line(l);
  const layers = model.encoder.layers;
  // (A run of a sweep resumed with --kernels-from keeps its own: the flag is for the runs that start.)
  // A run started again after a kill before its first checkpoint runs what its manifest recorded, as a
  // resumed one does (--kernels-from's kernels, say, which --resume cannot name again): the same bits.
  const ownManifest = file(req.out, "manifest.json");
  const oldManifest = req.resume || restart ? await readJson(ownManifest) : undefined;
  const kernelsFrom = restart && oldManifest?.conv_kernels
    ? ownManifest
    : req.kernelsFrom && !req.resume
    ? req.kernelsFrom
    : undefined;
  const recorded = kernelsFrom ? await recordedKernels(kernelsFrom, layers) : undefined;
  try {
    const tuning = { retime: req.retune, retimed: opts.retimed, log };
    state.convKernels = (await tuneConvLayers(gpu, layers, inputShape, {
      ...opts.convTuning,
      ...tuning,
      winograd: req.winograd,
      forced: state.convKernels ?? recorded?.conv,
    })).choices;
    state.batchNormKernels = (await tuneBatchNormLayers(gpu, layers, inputShape, {
      ...opts.batchNormTuning,
      ...tuning,
      forced: state.batchNormKernels ?? recorded?.batchNorm,
    })).choices;
  } catch (e) {
    // A manifest of another architecture names other layers: say which flag brought it in.
    if (recorded) throw new UsageError(`--kernels-from ${kernelsFrom}: ${(e as Error).message}`);
    throw e;
  }
  if (recorded) progress.line(`kernels: as recorded in ${kernelsFrom} (not tuned)`);

  await Deno.mkdir(req.out, { recursive: true });
  const commit = await gitCommit();
  // A run started again is a fresh start (its time, resumed 0) with the kernels it first had.
  const started = (!restart && oldManifest?.started as string) || new Date().toISOString();
  const manifest = (status: string, extra: Record<string, unknown> = {}) =>
    buildManifest(req, gpu, data, commit, {
      status,
      started,
      resumed: restart ? 0 : ((oldManifest?.resumed as number) ?? -1) + 1,
      // A resumed run runs the kernels it started with: where they came from is the first start's record.
      ...(oldManifest ? { kernels_from: oldManifest.kernels_from ?? null } : {}),
      wall_seconds: state.elapsed,
      conv_kernels: state.convKernels,
      batchnorm_kernels: state.batchNormKernels,
      // Pooling, projection and head reductions: "serial" on software adapters, "tree" on GPUs.
      reduction_kernels: model.reductions,
      ...extra,
    });
  await writeJsonAtomic(file(req.out, "manifest.json"), manifest("running"));
  progress.line(
    `${req.experiment.name} v${req.experiment.version}: ${model.store.parameterCount} parameters, ` +
      `${data.train.count} train / ${data.test.count} test images`,
  );

  const steps = trainer.stepsPerEpoch;
  let warned = false;
  const warnSlow = (run: number, after: number) => {
    const name = req.experiment.name;
    const quicker = EXPERIMENTS[`${name}_quick`]
      ? `for a quick run use: deno task experiment ${name}_quick`
      : "--epochs N trains fewer epochs";
    progress.line(
      `warning: on this software adapter (${gpu.report.description}) the run needs about ` +
        `${formatDuration(run)}` +
        (after > 0 ? ` and the experiment's later runs about ${formatDuration(after)} more` : "") +
        `; ${quicker}`,
    );
  };
  let lastEval: EvalMetrics | undefined;
  const writeHistory = (history: HistoryRow[]) =>
    writeFileAtomic(file(req.out, "history.jsonl"), history.map((r) => JSON.stringify(r) + "\n").join(""));
  // An epoch's files are written while the next epoch trains (the GPU need not wait for the disk). Each
  // epoch's writes start after the previous epoch's have ended, and anything else written (a stop, a
  // failure, the end) waits for them first, so the files on disk always move forward whole.
  let epochWrites: Promise<void> = Promise.resolve();
  // What the writes cost the run is the time it waited for them (their own duration overlaps training).
  const writes = { epochs: 0, waited: 0 };
  const settleWrites = async () => {
    const t0 = performance.now();
    await epochWrites;
    writes.waited += (performance.now() - t0) / 1000;
  };
  const writesLine = () => {
    if (writes.epochs === 0) return;
    progress.line(
      `checkpoints and history: ${writes.epochs} epoch${writes.epochs === 1 ? "" : "s"} written while ` +
        `training went on; the run waited ${writes.waited.toFixed(2)} s for them in all`,
    );
  };

  const snapshot = model.store.snapshot(true);
  for (let epoch = state.epochsDone + 1; epoch <= h.epochs; epoch++) {
    const epochStart = performance.now();
    // An epoch resumed mid-way counts the time it trained before the stop too.
    const secondsBefore = state.stepInEpoch > 0 ? state.epochSeconds ?? 0 : 0;
    const streamsAtStart = trainer.streamState();
    let firstStep: StepProgress | undefined; // the epoch's first reported step
    let result;
    try {
      result = await trainer.trainEpoch(epoch, {
        startStep: state.stepInEpoch,
        priorStats: state.stats,
        shouldStop: opts.shouldStop,
        // The evaluation and the checkpoints' tensors come back with the epoch's stats, in one wait.
        read: snapshot.regions,
        evaluate: true,
        onProgress: (p) => {
          const remaining = (h.epochs - epoch) * data.train.count + (data.train.count - p.step * h.batchSize);
          progress.step(p, Math.max(0, remaining));
          // The first steps of a run build its pipelines (seconds on a CPU): time the steps after them.
          firstStep ??= p;
          const timed = p.step - firstStep.step;
          if (!warned && timed >= 3 && gpu.report.isSoftware) {
            warned = true;
            const perStep = (p.seconds - firstStep.seconds) / timed;
            const left = h.epochs * steps - (epoch - 1) * steps - p.step;
            const stepsAfter = (opts.place?.epochsAfter ?? 0) * steps;
            if (perStep * (left + stepsAfter) > 3600) warnSlow(perStep * left, perStep * stepsAfter);
          }
        },
      });
    } catch (e) {
      // The last epoch's writes end first. Should they have failed too, this epoch's error is still the
      // one the run ends with (the manifest says it); the write's is printed beside it.
      const writeFailure = await settleWrites().then(() => undefined, (w: Error) => w);
      if (writeFailure) {
        progress.line(
          `error: the files of epoch ${state.epochsDone} were not written: ${writeFailure.message}`,
        );
      }
      if (e instanceof NonFiniteLossError || e instanceof LabelOutOfRangeError) {
        await writeJsonAtomic(file(req.out, "manifest.json"), manifest("failed", { error: e.message }));
      }
      if (e instanceof GpuFaultError) {
        // Nothing of this epoch can be read back; what the last epoch (or stop) wrote is the run's state.
        const at = state.stepInEpoch
          ? `epoch ${state.epochsDone + 1}, step ${state.stepInEpoch}`
          : `epoch ${state.epochsDone}`;
        const kept = writeFailure
          ? `the files of ${at} were not written (above): --resume continues from what ${req.out} holds`
          : existsSync(file(req.out, "resume.safetensors"))
          ? `the checkpoint of ${at} in ${req.out} is intact: continue with --resume`
          : `no epoch had finished, so nothing was saved: start it again with --resume`;
        const error = new GpuFaultError(e.fault, e.where ? `${e.where}; ${kept}` : kept);
        await writeJsonAtomic(file(req.out, "manifest.json"), manifest("failed", { error: error.message }));
        throw error;
      }
      throw e;
    }
    const trainSeconds = (performance.now() - epochStart) / 1000;
    if (result.interrupted) {
      state = {
        ...state,
        stepInEpoch: result.stepsDone,
        adamStep: model.adam.step,
        streams: streamsAtStart,
        stats: result.stats,
        elapsed: state.elapsed + trainSeconds,
        epochSeconds: secondsBefore + trainSeconds,
      };
      await settleWrites();
      writesLine();
      await saveResume(file(req.out, "resume.safetensors"), model, state);
      await writeJsonAtomic(file(req.out, "manifest.json"), manifest("stopped"));
      progress.line(`stopped at epoch ${epoch}, step ${result.stepsDone}; continue with --resume`);
      return { status: "stopped", history: state.history, out: req.out };
    }
    lastEval = result.evaluation!;
    const evalSeconds = result.evalSeconds;
    const secondsNow = (performance.now() - epochStart) / 1000;
    const seconds = secondsBefore + secondsNow;
    const row = historyRow(epoch, result, lastEval, seconds, evalSeconds);
    state = {
      ...state,
      epochsDone: epoch,
      stepInEpoch: 0,
      adamStep: model.adam.step,
      streams: trainer.streamState(),
      stats: [],
      history: [...state.history, row],
      elapsed: state.elapsed + secondsNow,
      epochSeconds: undefined,
    };
    progress.line(
      `[${req.experiment.name} ${String(epoch).padStart(2, "0")}] train loss=${row.train_loss.toFixed(4)} ` +
        `acc=${row.train_accuracy.toFixed(4)} | test acc=${row.test_accuracy.toFixed(4)} ` +
        `nll=${row.test_nll.toFixed(4)} ece=${(100 * row.test_ece).toFixed(2)}% (${seconds.toFixed(1)} s` +
        `${evalSeconds === undefined ? "" : `; eval ${evalSeconds.toFixed(2)} s`})`,
    );
    // The previous epoch's files are written by now (they take milliseconds; an epoch takes seconds): a
    // write that failed stops the run here, one epoch late at most.
    await settleWrites();
    // Order matters for --resume: the resume checkpoint is the source of truth, the rest follows it.
    const tensors = snapshot.decode(result.read!), saved = state;
    writes.epochs++;
    epochWrites = (async () => {
      await writeCheckpoints(
        { resume: file(req.out, "resume.safetensors"), model: file(req.out, "model.safetensors") },
        tensors,
        saved,
        { experiment: req.experiment.name, epoch: `${epoch}` },
      );
      await writeHistory(saved.history);
    })();
    epochWrites.catch(() => {}); // awaited above at the next epoch's end, or before anything else is written
    if (opts.stopAfterEpochs !== undefined && epoch >= opts.stopAfterEpochs && epoch < h.epochs) {
      await settleWrites();
      writesLine();
      await writeJsonAtomic(file(req.out, "manifest.json"), manifest("stopped"));
      return { status: "stopped", history: state.history, out: req.out };
    }
  }

  await settleWrites();
  writesLine();
  lastEval ??= await trainer.evaluate();
  const metrics = summarize(state.history, lastEval);
  if (!opts.noFigures) {
    const figures = await writeRunFigures(req, model, trainer, data, state.history, lastEval);
    Object.assign(metrics, figures.metrics);
    if (req.pdf) await writePdfsBeside(req.out, figures.figures.map((f) => f.file));
  }
  await writeJsonAtomic(file(req.out, "metrics.json"), metrics);
  await writeJsonAtomic(
    file(req.out, "manifest.json"),
    manifest("finished", { finished: new Date().toISOString() }),
  );
  if (!opts.noFigures) {
    await writeRunPage(req.out);
    await writeResultsIndex(req.out);
  }
  trainer.destroy();
  const spread = await seedSpread(req, gpu.report);
  if (spread) progress.line(spread);
  return { status: "finished", history: state.history, metrics, out: req.out };
}

function summarize(history: HistoryRow[], last: EvalMetrics): Record<string, unknown> {
  const final = history[history.length - 1];
  const best = (key: keyof HistoryRow, higher: boolean) => {
    let bestRow = history[0];
    for (const r of history) {
      const v = r[key] as number, b = bestRow[key] as number;
      if (higher ? v > b : v < b) bestRow = r;
    }
    return { value: bestRow[key], epoch: bestRow.epoch };
  };
  return {
    epochs: history.length,
    final: {
      test_accuracy: last.accuracy,
      test_nll: last.nll,
      test_ece: last.ece10,
      test_ece15: last.ece15,
      test_brier: last.brier,
      train_loss: final?.train_loss,
      train_accuracy: final?.train_accuracy,
    },
    best: {
      test_accuracy: best("test_accuracy", true),
      test_nll: best("test_nll", false),
      test_ece: best("test_ece", false),
      test_ece15: best("test_ece15", false),
      test_brier: best("test_brier", false),
    },
    n_test: last.n,
    reliability10: last.reliability10,
    reliability15: last.reliability15,
    confidence_histogram: last.histogram,
    wall_seconds: history.reduce((a, r) => a + r.seconds, 0),
  };
}

/**
 * The epochs that runs have left to train (none for a finished run, but what --resume extends it by; a
 * started one's done epochs off).
 */
export async function epochsLeft(
  runs: readonly { out: string; hyper: { epochs: number }; resume?: boolean }[],
): Promise<number> {
  let left = 0;
  for (const r of runs) {
    const manifest = await readJson(file(r.out, "manifest.json"));
    // A finished run has none left, unless --resume extends it (runPlan).
    if (manifest?.status === "finished" && !r.resume) continue;
    left += Math.max(0, r.hyper.epochs - (manifest ? (await readHistory(r.out)).length : 0));
  }
  return left;
}

/**
 * A finished run of a multi-run plan against the run this command asks for: undefined where they are one
 * configuration (the run is skipped); where --resume asks for more epochs and nothing else differs, the
 * line saying it is extended. Anything else is refused before any run trains: the folder would end with
 * runs of two configurations, which its report would pool (report.ts refuses them too).
 */
function checkFinishedRun(req: RunRequest, manifest: Record<string, unknown>): string | undefined {
  const theirs = configurationOf(manifest);
  const ours = requestConfiguration(req);
  const differences = configurationDifferences(ours, theirs);
  if (differences.length === 0) return undefined;
  const done = theirs.hyper.epochs as number;
  const onlyEpochs = configurationDifferences(ours, theirs, new Set(["epochs"])).length === 0;
  if (onlyEpochs && req.resume && req.hyper.epochs > done) {
    return `finished after ${done} epochs: extended to ${req.hyper.epochs}`;
  }
  throw new UsageError(
    `${req.out} holds a finished run of another configuration than this command's: ${
      differences.join(", ")
    }` +
      (onlyEpochs && req.hyper.epochs > done
        ? `; continue the experiment with --resume to extend it to ${req.hyper.epochs} epochs, or use --out DIR`
        : "; use --out DIR for runs of this configuration"),
  );
}

/** Runs every run of a plan in order; in a multi-run experiment, finished runs are skipped or extended. */
export async function runPlan(plan: RunPlan, options: RunOptions = {}): Promise<RunResult[]> {
  // --retune re-times each shape once for the whole plan (a sweep's runs share their shapes).
  const opts = { ...options, retimed: options.retimed ?? new Set<string>() };
  const results: RunResult[] = [];
  const multi = plan.experiment.runs !== undefined;
  // Finished runs of another configuration are refused before any run trains (checkFinishedRun).
  for (const req of multi ? plan.runs : []) {
    const manifest = await readJson(file(req.out, "manifest.json"));
    if (manifest?.status === "finished") checkFinishedRun(req, manifest);
  }
  for (const [i, req] of plan.runs.entries()) {
    // A stop asked for after a run's last step (while it drew its figures): the next run does not start.
    if (results.length > 0 && opts.shouldStop?.()) {
      if (!opts.quiet) console.error(`stopped before ${req.out}: continue the experiment with --resume`);
      results.push({ status: "stopped", history: [], out: req.out });
      return results;
    }
    const place = multi
      ? { index: i + 1, count: plan.runs.length, epochsAfter: await epochsLeft(plan.runs.slice(i + 1)) }
      : undefined;
    if (multi) {
      const manifest = await readJson(file(req.out, "manifest.json"));
      refuseLive(req.out, manifest);
      const extend = manifest?.status === "finished" ? checkFinishedRun(req, manifest) : undefined;
      if (manifest?.status === "finished" && !extend) {
        if (!opts.quiet) console.error(`${req.out}: finished already, skipped`);
        continue;
      }
      if (manifest && !req.resume) {
        throw new UsageError(`${req.out} holds an unfinished run; continue the experiment with --resume`);
      }
      if (!manifest && req.resume) {
        results.push(await runExperiment({ ...req, resume: false }, { ...opts, place })); // not started: start it
        if (results[results.length - 1].status === "stopped") return results;
        continue;
      }
      if (!opts.quiet) {
        console.error(
          `run ${i + 1}/${plan.runs.length} ${req.variant!.label}${
            extend ? `: ${extend}` : ""
          } -> ${req.out}`,
        );
      }
    }
    const r = await runExperiment(req, { ...opts, place });
    results.push(r);
    if (r.status === "stopped") return results;
  }
  if (multi && !opts.noFigures) {
    const { writeReport } = await import("./report.ts");
    try {
      await writeReport(plan.experiment, plan.out, { quiet: opts.quiet, pdf: plan.runs[0]?.pdf });
    } catch (e) {
      // Runs of another configuration in the folder (another shard's): this command's runs are whole.
      if (!(e instanceof UsageError)) throw e;
      console.error(`report not written: ${e.message}`);
    }
  }
  return results;
}

if (import.meta.main) {
  let stop = false;
  let plan: RunPlan;
  try {
    const parsed = parseFlags(RUN_SPEC, Deno.args);
    if (parsed.help) {
      console.log(runHelp());
      Deno.exit(0);
    }
    plan = planFromFlags(parsed);
    checkPlanPaths(plan);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`error: ${e.message}`);
    Deno.exit(2);
  }
  // SIGTERM is Ctrl-C's twin: `kill`, `timeout`, Slurm's scancel and preemption, and a container's stop
  // send it, and each deserves the checkpoint that Ctrl-C leaves. The exit status is 128 + the signal's
  // number, as a shell reports a process the signal killed. (Deno has no SIGTERM listener on Windows.)
  const signals: [Deno.Signal, number, string][] = [["SIGINT", 130, "Ctrl-C"]];
  if (Deno.build.os !== "windows") signals.push(["SIGTERM", 143, "SIGTERM"]);
  let exitCode = 130;
  const listeners = signals.map(([signal, code, name]) => {
    const onSignal = () => {
      if (stop) Deno.exit(code); // a second signal: leave now (the last checkpoint is intact)
      stop = true;
      exitCode = code;
      console.error(`\n${name}: stopping after the current step (${name} again to quit at once)...`);
    };
    Deno.addSignalListener(signal, onSignal);
    return () => Deno.removeSignalListener(signal, onSignal);
  });
  try {
    const results = await runPlan(plan, { shouldStop: () => stop });
    for (const remove of listeners) remove();
    if (results.some((r) => r.status === "stopped")) await exitAfterRelease(exitCode);
    console.error(`done: ${plan.out}`);
  } catch (e) {
    exitWithError(e);
  }
}
