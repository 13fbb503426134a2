// A single-run experiment (fashion_mda_quick by default, ?experiment=fashion_mda for the notebook's 100
// epochs on a GPU) trained in a browser tab, with the same lib/ code and the same WGSL as
// `deno task experiment` (bundled by web/build.ts into web/dist/train.js). The data comes from ../data/
// beside the page's folder (/data/ of `deno task serve`; OUT/data/ of a static site written by
// `deno task build:site OUT`, web/site.ts), is checked by SHA-256 here, and is kept in the browser's
// Cache Storage once checked, so a reload does not download it again. Loss and accuracy are drawn after
// every epoch with the figures' own code (lib/plot/training.ts); the checkpoint is offered as safetensors
// that `deno task evaluate` accepts.
//
// After every epoch, the last one too, the run's resume checkpoint (the same bytes as a run folder's
// resume.safetensors) is kept in the browser's Cache Storage under the run's settings: a tab closed or
// reloaded mid-run continues from the last whole epoch, with the same bits as a run never stopped. A finished
// run stays kept: its figures and download come after the training and may fail or be closed before they are
// saved (a lost GPU, a tab crash, a reload), and hours of training must not be lost to that. A later visit
// with the same settings restores it, trains nothing, and draws the figures and the checkpoint from it again
// (the same bytes). Only ?fresh=1 with those settings drops it (and trains again); runs of other settings
// leave it alone, so a look at the quick experiment costs no 100-epoch run. A kept run takes the size of its
// resume checkpoint (13 MB for the notebook's model) until then.
//
// The conv and BatchNorm kernels are chosen as `deno task experiment` chooses them: on a GPU each layer
// shape's candidates are timed once (lib/gpu/tuner.ts) and the choice is kept in the site's localStorage,
// so later visits start at once; a software adapter keeps the kernels tuned for it.
//
// Query parameters (all optional; each overrides the pinned value for this run, as the CLI flags do):
//   experiment (a single-run experiment's name), epochs, batch-size, train-limit, test-limit, seed,
//   data (base URL of the files, relative to the page or absolute; default ../data/),
//   report (a URL: when given, the page POSTs its results and checkpoint there; used by the test),
//   fresh=1 (drop the run of the same settings kept in this browser, finished or not, and train it again;
//   taken out of the address bar once done, so that a reload continues the new run),
//   tune-batchnorm=always (time the BatchNorm kernels even on a software adapter, where the GPU-sized conv
//   candidates would take minutes: a check of the tuner and its storage in a browser without a GPU),
//   retune=1 (time the kernels again even where this browser kept a choice, as `--retune` does: a browser
//   does not tell the driver version, so an update of it is not seen otherwise),
//   winograd=0 (leave the Winograd conv kernels out of the tuning, as `--no-winograd` does; a resumed run
//   keeps the kernels it started with).

/// <reference lib="dom" />

// First: before Observable Plot loads, so the tab draws the bytes a run folder's files hold (see the file).
import { restoreDevicePixelRatio } from "../lib/serve/plot_offset.ts";
import { type ExperimentConfig, EXPERIMENTS, modelConfigOf } from "../experiments/config.ts";
import { DeviceSplit, FASHION_NORMALIZE } from "../lib/data/device.ts";
import {
  FASHION_CLASS_COUNT,
  FASHION_FILES,
  FASHION_SHA256,
  type FashionFile,
  sha256Hex,
} from "../lib/data/fashion.ts";
import { DataError, type IdxImages, type IdxLabels, isGzip, parseIdx } from "../lib/data/idx.ts";
import { describeAdapter, getGpu, NoAdapterError } from "../lib/gpu/device.ts";
import { GpuFaultError } from "../lib/gpu/fault.ts";
import { defaultTuningStore, type TuneResult } from "../lib/gpu/tuner.ts";
import { decodeSafetensors, encodeSafetensors } from "../lib/io/safetensors.ts";
import { Model } from "../lib/model.ts";
import { tuneBatchNormLayers } from "../lib/nn/batchnorm_tune.ts";
import { tuneConvLayers } from "../lib/nn/conv2d/tune.ts";
import { accuracyFigure, lossFigure } from "../lib/plot/training.ts";
import { computeFigureData, LATENT_POINTS } from "../experiments/figure_data.ts";
import { runFigureSvgs } from "../experiments/run_figures.ts";
import { encodeResume, restoreResume, RESUME_FORMAT, type ResumeState } from "../lib/train/checkpoint.ts";
import { SpeedWindow } from "../lib/train/progress.ts";
import { historyRow, Trainer } from "../lib/train/trainer.ts";
import type { EvalMetrics, HistoryRow } from "../lib/types.ts";
import { formatSeconds, intParam, pageSwitches, runFraction, split, withoutParam } from "./page.ts";

const WEBGPU_HELP =
  "This browser offers no WebGPU. Use Chrome or Edge 113 or later (on Linux start it with " +
  "--enable-unsafe-webgpu --enable-features=Vulkan, or enable chrome://flags/#enable-unsafe-webgpu), " +
  "Safari 26 or later, or Firefox 141 or later on Windows (elsewhere set dom.webgpu.enabled in about:config; " +
  "Firefox 140 ESR has no WebGPU in its release build, 153 ESR has).";
const CACHE = "fashion-mnist-checked";

const $ = (id: string) => document.getElementById(id)!;
const params = new URLSearchParams(location.search);

function status(text: string): void {
  $("status").textContent = text;
}

function fail(message: string): never {
  $("error").textContent = `error: ${message}`;
  $("error").hidden = false;
  throw new PageError(message);
}

class PageError extends Error {}

/** The decompressed, checksum-checked bytes of one data file (from Cache Storage when already checked). */
async function dataFile(base: string, name: FashionFile): Promise<Uint8Array> {
  const cache = "caches" in globalThis ? await caches.open(CACHE) : undefined;
  // The checksum goes in the query, not a fragment: Cache Storage ignores fragments when it matches, so only
  // the query keeps bytes checked against another checksum from being taken as checked against this one.
  const key = `${base}${name}?sha256=${FASHION_SHA256[name]}`;
  const cached = await cache?.match(key);
  if (cached) return new Uint8Array(await cached.arrayBuffer());
  let res: Response | undefined;
  const tried: string[] = [];
  for (const url of [`${base}${name}.gz`, `${base}${name}`]) {
    tried.push(url);
    try {
      res = await fetch(url);
    } catch (e) {
      fail(`${url}: ${e instanceof Error ? e.message : e} (is the server running? deno task serve)`);
    }
    if (res.ok) break;
  }
  if (!res?.ok) {
    fail(
      `data file ${name} not found (tried ${tried.join(", ")}: HTTP ${res?.status}); ` +
        "serve the page with deno task serve (it serves Fashion-MNIST under /data/), or host a site " +
        "written by deno task build:site, which holds the files",
    );
  }
  status(`downloading ${name}`);
  let bytes = new Uint8Array(await res.arrayBuffer());
  if (isGzip(bytes)) {
    try {
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    } catch (e) {
      fail(`${res.url}: corrupt gzip data (${e instanceof Error ? e.message : e})`);
    }
  }
  const hash = await sha256Hex(bytes);
  if (hash !== FASHION_SHA256[name]) {
    fail(
      `${res.url}: SHA-256 ${hash} is not the official ${name}'s ${FASHION_SHA256[name]} (corrupted file?)`,
    );
  }
  await cache?.put(key, new Response(bytes));
  return bytes;
}

/** One line on where the kernels came from, from what the tuner did for each choice (a layer pass). */
function kernelSummary(results: TuneResult[], where: string | undefined): string {
  const count = (source: TuneResult["source"]) => results.filter((r) => r.source === source).length;
  const timed = count("timed"), cached = count("cache");
  if (results.length === 0) return "kernels: this adapter's defaults (a software adapter: nothing timed)";
  const parts = [];
  if (timed) parts.push(`${timed} kernel choice${timed === 1 ? "" : "s"} timed now`);
  if (cached) parts.push(`${cached} from an earlier visit's timing`);
  return `kernels: ${parts.join(", ")}${where ? ` (kept in ${where})` : ""}`;
}

const RUNS = "webgpu-mda-runs";

/** Where an unfinished run's resume checkpoint is kept: one entry per experiment version and settings. */
function runKey(experiment: ExperimentConfig, settings: Record<string, number | undefined>): string {
  const q = new URLSearchParams({ version: String(experiment.version) });
  for (const [k, v] of Object.entries(settings)) q.set(k, v === undefined ? "all" : String(v));
  return new URL(`/${RUNS}/${experiment.name}?${q}`, location.href).href;
}

async function report(path: string, body: BodyInit): Promise<void> {
  const url = params.get("report");
  if (url) await fetch(`${url}${path}`, { method: "POST", body });
}

/** The experiment named by ?experiment= (default fashion_mda_quick); multi-run experiments are the CLI's. */
function chosenExperiment(): ExperimentConfig {
  const name = params.get("experiment") ?? "fashion_mda_quick";
  const single = Object.values(EXPERIMENTS).filter((e) => !e.runs).map((e) => e.name);
  if (!single.includes(name)) fail(`?experiment= must be one of ${single.join(", ")}, got "${name}"`);
  return EXPERIMENTS[name];
}

async function main(): Promise<void> {
  restoreDevicePixelRatio();
  const experiment = chosenExperiment();
  document.title = `Train ${experiment.name} in this tab`;
  $("title").textContent = experiment.description;
  if (!("gpu" in navigator) || !navigator.gpu) fail(WEBGPU_HELP);
  const pinned = experiment.pinned;
  const epochs = intParam(params, "epochs", pinned.epochs)!;
  const batchSize = intParam(params, "batch-size", pinned.batchSize)!;
  const trainLimit = intParam(params, "train-limit", undefined);
  const testLimit = intParam(params, "test-limit", undefined);
  const seed = intParam(params, "seed", pinned.seed, 0)!;
  // Resolved against the page, so a site hosted under any path finds the data beside it.
  const base = new URL(params.get("data") ?? "../data/", location.href).href;
  const { tuneBatchNorm, retune, noWinograd, fresh } = pageSwitches(params);
  let gpu;
  status("asking for a WebGPU adapter");
  try {
    gpu = await getGpu();
  } catch (e) {
    if (e instanceof NoAdapterError) fail(`${WEBGPU_HELP} (navigator.gpu is there, but it gave no adapter)`);
    // A browser that has navigator.gpu but refuses an adapter: Firefox 140 ESR with dom.webgpu.enabled says
    // "NotSupportedError: WebGPU is not yet available in Release or late Beta builds."
    if (e instanceof DOMException && e.name === "NotSupportedError") {
      fail(`${WEBGPU_HELP} (navigator.gpu is there, but it refused an adapter: ${e.name}: ${e.message})`);
    }
    throw e;
  }

  const files: Partial<Record<FashionFile, IdxImages | IdxLabels>> = {};
  for (const name of FASHION_FILES) {
    status(`loading ${name}`);
    try {
      files[name] = parseIdx(await dataFile(base, name), name);
    } catch (e) {
      if (e instanceof DataError) fail(e.message);
      throw e;
    }
  }
  const train = split(
    files["train-images-idx3-ubyte"] as IdxImages,
    files["train-labels-idx1-ubyte"] as IdxLabels,
    trainLimit,
    "train-limit",
    `${base}train-images-idx3-ubyte`,
  );
  const test = split(
    files["t10k-images-idx3-ubyte"] as IdxImages,
    files["t10k-labels-idx1-ubyte"] as IdxLabels,
    testLimit,
    "test-limit",
    `${base}t10k-images-idx3-ubyte`,
  );

  const config = modelConfigOf({ ...pinned, seed }, FASHION_CLASS_COUNT);
  const model = new Model(gpu, config);
  // A run of the same settings kept by an earlier visit: continue it, or show it again when it is finished.
  const runs = "caches" in globalThis ? await caches.open(RUNS) : undefined;
  // (The seed joins the key only when it is not the pinned one, so runs kept before ?seed= existed are found.)
  const key = runKey(experiment, {
    epochs,
    batchSize,
    trainLimit: train.count,
    testLimit: test.count,
    ...(seed !== pinned.seed ? { seed } : {}),
  });
  if (fresh) {
    await runs?.delete(key);
    // Honoured once: a reload, which this page advises after a lost GPU, must continue the new run.
    const url = location.pathname + withoutParam(location.search, "fresh") + location.hash;
    globalThis.history.replaceState(globalThis.history.state, "", url);
  }
  const stored = await runs?.match(key);
  let resumed: ResumeState | undefined;
  if (stored) {
    const where = "this browser's checkpoint of the run";
    try {
      resumed = restoreResume(
        decodeSafetensors(new Uint8Array(await stored.arrayBuffer()), where),
        model,
        where,
      );
    } catch (e) {
      fail(`${e instanceof Error ? e.message : e}; start the run over with ?fresh=1`);
    }
  }
  status(
    "choosing kernels for this adapter (on a GPU: each layer shape timed once, then kept in this browser)",
  );
  const tuningLog: string[] = [];
  const log = (line: string) => {
    tuningLog.push(line);
    console.log(line);
  };
  const inputShape = [batchSize, 1, 28, 28];
  const tuning = { log, retime: retune };
  // A resumed run keeps the kernels it started with, so it gives the bits of a run never stopped.
  const conv = await tuneConvLayers(gpu, model.encoder.layers, inputShape, {
    ...tuning,
    winograd: !noWinograd,
    forced: resumed?.convKernels,
  });
  const batchNorm = await tuneBatchNormLayers(gpu, model.encoder.layers, inputShape, {
    ...tuning,
    forced: resumed?.batchNormKernels,
    ...(tuneBatchNorm ? { mode: "hardware" as const } : {}),
  });
  const tuned = [...conv.results, ...batchNorm.results];
  const kernels = {
    conv: conv.choices,
    batchNorm: batchNorm.choices,
    sources: Object.fromEntries(
      ["timed", "cache"].map((s) => [s, tuned.filter((r) => r.source === s).length]),
    ),
    log: tuningLog,
  };
  $("kernels").textContent = resumed
    ? "kernels: those the run started with (resumed)"
    : kernelSummary(tuned, defaultTuningStore()?.where);
  // As `deno task experiment`: the sweep's augmentation comes with its normalisation.
  const normalize = pinned.augment ? FASHION_NORMALIZE : undefined;
  const trainSplit = new DeviceSplit(gpu, train, { normalize });
  const testSplit = new DeviceSplit(gpu, test, { normalize });
  const trainer = new Trainer(gpu, model, trainSplit, testSplit, test.labels, {
    batchSize,
    seed,
    augment: pinned.augment,
  });
  $("adapter").textContent =
    `${experiment.name} v${experiment.version}: ${model.store.parameterCount} parameters, ` +
    `${train.count} train / ${test.count} test images, batch ${batchSize}, seed ${seed}, adapter ${
      describeAdapter(gpu.report)
    }`;

  if (resumed) trainer.setStreamState(resumed.streams);
  const history: HistoryRow[] = [...resumed?.history ?? []];
  const draw = () => {
    $("loss").innerHTML = lossFigure(history);
    $("accuracy").innerHTML = accuracyFigure(history);
  };
  draw();
  const first = (resumed?.epochsDone ?? 0) + 1;
  const finished = first > epochs;
  const kept = "kept in this browser; ?fresh=1 trains it again";
  if (finished) status(`finished in an earlier visit (${kept}): drawing its figures again`);
  else if (resumed) status(`resuming after epoch ${first - 1} (kept in this browser; ?fresh=1 starts over)`);
  const bar = $("bar") as HTMLProgressElement;
  bar.value = runFraction(first, epochs, 0, train.count);
  const total = (epochs - first + 1) * train.count;
  const t0 = performance.now();
  let firstStepLoss: number | undefined;
  let trainedSeconds = resumed?.elapsed ?? 0;
  const snapshot = model.store.snapshot(true);
  // The last minute's speed: the run's average would count the pipelines' build and a tab left in the
  // background (which the browser throttles) for the rest of the run.
  const speed = new SpeedWindow();
  let lastEval: EvalMetrics | undefined;
  for (let epoch = first; epoch <= epochs; epoch++) {
    const e0 = performance.now();
    let result;
    try {
      result = await trainer.trainEpoch(epoch, {
        read: runs ? snapshot.regions : undefined,
        evaluate: true,
        onProgress: (p) => {
          const images = Math.min(train.count, p.step * batchSize);
          // The speed and the time left are this visit's; the bar counts the epochs of earlier ones too.
          const done = (epoch - first) * train.count + images;
          const elapsed = (performance.now() - t0) / 1000;
          bar.value = runFraction(epoch, epochs, images, train.count);
          const rate = speed.add(done, elapsed);
          status(
            `epoch ${epoch}/${epochs}, step ${p.step}/${p.steps}: ` +
              (Number.isFinite(rate)
                ? `${rate.toFixed(1)} images/s, about ${formatSeconds((total - done) / rate)} left`
                : "timing the first steps"),
          );
        },
      });
    } catch (e) {
      // A GPU lost mid-run (a driver reset, the browser's GPU process restarting): the epochs kept in this
      // browser are the run's state, and a reload continues from them on a new device.
      if (!(e instanceof GpuFaultError)) throw e;
      const from = runs && (epoch > first || resumed)
        ? `after epoch ${epoch - 1}`
        : "from its start (no epoch was kept)";
      fail(`${e.message}; reload the page to continue the run ${from}`);
    }
    if (epoch === 1) firstStepLoss = result.stats[0];
    lastEval = result.evaluation!;
    history.push(historyRow(epoch, result, lastEval, (performance.now() - e0) / 1000, result.evalSeconds));
    draw();
    trainedSeconds += history[history.length - 1].seconds;
    if (runs) {
      const state: ResumeState = {
        format: RESUME_FORMAT,
        epochsDone: epoch,
        stepInEpoch: 0,
        adamStep: model.adam.step,
        streams: trainer.streamState(),
        stats: [],
        history,
        elapsed: trainedSeconds,
        convKernels: kernels.conv,
        batchNormKernels: kernels.batchNorm,
      };
      await runs.put(key, new Response(encodeResume(snapshot.decode(result.read!), state) as BodyInit));
      await report("/epoch", JSON.stringify({ epoch }));
    }
  }
  bar.value = 1;
  const last = history[history.length - 1];

  // Every figure of the run, drawn as `deno task experiment` draws them into a run folder.
  status(`drawing the figures (embeddings of ${Math.min(LATENT_POINTS, train.count)} training images)`);
  lastEval ??= await trainer.evaluate();
  const { saved } = await computeFigureData(experiment.name, model, trainer, train, history, lastEval);
  const figures = runFigureSvgs(saved);
  $("loss").hidden = $("accuracy").hidden = true;
  for (const f of figures) {
    const div = document.createElement("figure");
    div.className = "figure";
    div.innerHTML = f.svg;
    const caption = document.createElement("figcaption");
    const save = document.createElement("a");
    save.href = URL.createObjectURL(new Blob([f.svg], { type: "image/svg+xml" }));
    save.download = `${experiment.name}-${f.file}`;
    save.textContent = f.file;
    caption.append(`${f.caption} `, save);
    div.append(caption);
    $("figures").append(div);
  }
  const accuracy = `test accuracy ${last.test_accuracy.toFixed(4)}`;
  status(
    finished
      ? `finished in an earlier visit (${kept}): ${accuracy}`
      : `done in ${formatSeconds((performance.now() - t0) / 1000)}: ${accuracy}`,
  );

  const checkpoint = encodeSafetensors(await model.store.toHost(), {
    experiment: experiment.name,
    version: String(experiment.version),
    epochs: String(epochs),
    trained_in: "browser",
    adapter: describeAdapter(gpu.report),
    conv_kernels: JSON.stringify(kernels.conv),
    batchnorm_kernels: JSON.stringify(kernels.batchNorm),
  });
  const link = $("download") as HTMLAnchorElement;
  link.href = URL.createObjectURL(
    new Blob([checkpoint as Uint8Array<ArrayBuffer>], { type: "application/octet-stream" }),
  );
  link.download = `${experiment.name}.safetensors`;
  link.hidden = false;
  await report("/checkpoint", checkpoint as Uint8Array<ArrayBuffer>);
  await report(
    "/result",
    JSON.stringify({
      firstStepLoss,
      history,
      adapter: gpu.report,
      kernels,
      resumedAfter: first - 1,
      figureData: saved,
      figures: figures.map((f) => ({ file: f.file, caption: f.caption, svg: f.svg })),
    }),
  );
}

main().catch(async (e) => {
  if (!(e instanceof PageError)) {
    // A GPU lost outside training (while the tuner times a candidate: it is left out from then on).
    const retry = e instanceof GpuFaultError ? "; reload the page to try again" : "";
    $("error").textContent = `error: ${e instanceof Error ? e.message : e}${retry}`;
    $("error").hidden = false;
  }
  await report("/error", $("error").textContent ?? String(e));
});
