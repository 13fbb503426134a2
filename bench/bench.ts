// `deno task bench [--json] [--batch N] [--steps N] [--widths a,b,c,d,e,f] [--no-kernels] [--all-variants]
//  [--no-winograd] [--no-torch] [--implementations [--browser]]` (flags and their defaults: bench/cli.ts, or --help)
//
// --implementations hands over to bench/implementations.ts: the training step on every WebGPU
// implementation and backend this machine offers, one subprocess each, in one run.
//
// Measures each kernel (GFLOP/s or GB/s, forward and backward; conv variants with the tuner's choice marked
// "(chosen)", both reduction variants with the adapter's marked) and one full training step of the
// notebook's model (encoder + MDA head + EM-DNLL + Adam) at batch 256 on synthetic images. When
// PyTorch is importable by python3, the same step is timed in PyTorch in the same run and the ratio is
// reported. With --json the last line of stdout is one JSON object with at least `adapter` and
// `train_step_ms` (the timed steps' mean, run back to back after a warm-up as in training).

import { fileURLToPath } from "node:url";
import { randomSplit } from "../lib/data/device.ts";
import { describeAdapter, getGpuOrExit } from "../lib/gpu/device.ts";
import { pipelineBuildStats } from "../lib/gpu/pipelines.ts";
import { GpuTimer, Recorder } from "../lib/gpu/recorder.ts";
import { readF32, Workspace } from "../lib/gpu/tensor.ts";
import { STATS_PER_STEP } from "../lib/mda/head.ts";
import { Model, notebookModelConfig } from "../lib/model.ts";
import { tuneBatchNormLayers } from "../lib/nn/batchnorm_tune.ts";
import { tuneConvLayers } from "../lib/nn/conv2d/tune.ts";
import { Rng } from "../lib/rng.ts";
import { benchConv2d } from "./conv2d_bench.ts";
import { benchLayers } from "./layers_bench.ts";
import { findTorchPython } from "../tools/pytorch/python.ts";
import { parseOrExit } from "../experiments/flags.ts";
import { exitWithError } from "../experiments/cli.ts";
import { BENCH_SPEC, benchFromFlags } from "./cli.ts";

interface KernelResult {
  kernel: string;
  shape: string;
  ms: number;
  gflops?: number;
  gbps?: number;
}

const args = parseOrExit(BENCH_SPEC, Deno.args, benchFromFlags);
// What fails later (a lost device, named by lib/gpu/fault.ts; bad data) is one line and exit 1, as in the
// other commands, rather than a stack: a failed top-level await arrives here.
globalThis.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  exitWithError(e.reason);
});
if (args.implementations) {
  // Each implementation and backend in its own process (the implementation is chosen per process).
  const pass = ["--batch", String(args.batch), "--widths", args.widths.join(",")];
  if (Deno.args.includes("--steps")) pass.push("--steps", String(args.steps));
  if (args.json) pass.push("--json");
  if (args.browser) pass.push("--browser");
  const script = fileURLToPath(new URL("./implementations.ts", import.meta.url));
  const child = new Deno.Command(Deno.execPath(), { args: ["run", "-A", script, ...pass] }).spawn();
  Deno.exit((await child.status).code);
}
const { batch, widths } = args;
const values = { json: args.json, "no-kernels": !args.kernels, "no-torch": !args.torch };

const gpu = await getGpuOrExit();
const log = (s: string) => console.error(s);
log(`adapter: ${describeAdapter(gpu.report)}`);
// Enough steps on a GPU that the one wait at the end (>= ~10 ms in Deno) is a small part of the total.
const timedSteps = args.steps ?? (gpu.report.isSoftware ? 3 : 50);

const kernels: KernelResult[] = [];
if (!values["no-kernels"]) {
  kernels.push(
    ...await benchConv2d(gpu, {
      batch,
      widths,
      repeats: 2,
      variants: args.allVariants ? "all" : "chosen",
      winograd: args.winograd,
    }),
  );
  kernels.push(...await benchLayers(gpu, { batch, repeats: 2 }));
  for (const k of kernels) {
    const rate = k.gflops !== undefined
      ? `${k.gflops.toFixed(2)} GFLOP/s`
      : k.gbps !== undefined
      ? `${k.gbps.toFixed(2)} GB/s`
      : "";
    log(`${k.kernel.padEnd(60)} ${k.shape.padEnd(26)} ${k.ms.toFixed(2).padStart(10)} ms  ${rate}`);
  }
}

// One full training step on synthetic images (values do not change the work done).
const split = randomSplit(gpu, batch, new Rng(7));
const model = new Model(gpu, notebookModelConfig(widths, 1));
// The step runs the conv kernels a training run would use (tuned on hardware, hand-tuned on software).
const { choices: convKernels } = await tuneConvLayers(gpu, model.encoder.layers, [batch, 1, 28, 28], {
  log,
  winograd: args.winograd,
});
for (const [layer, c] of Object.entries(convKernels)) {
  log(`conv kernels ${layer}: forward ${c.forward}, input grad ${c.inputGrad}, weight grad ${c.weightGrad}`);
}
const { choices: batchNormKernels } = await tuneBatchNormLayers(
  gpu,
  model.encoder.layers,
  [batch, 1, 28, 28],
  {
    log,
  },
);
log(`BatchNorm kernels: ${Object.entries(batchNormKernels).map(([l, k]) => `${l} ${k}`).join(", ")}`);
log(`reduction kernels (pooling, projection, head): ${model.reductions}`);
const ws = new Workspace(gpu, "bench");
const stats = ws.tensor("stats", [STATS_PER_STEP]);
const rec = new Recorder(gpu);
// The warm-up step compiles every pipeline; it is waited for on its own.
let t0 = performance.now();
const record = () => {
  const { x, labels: y } = split.gather(rec, 0, batch);
  model.trainStep(rec, x, y, stats, 0);
};
record();
await rec.finish();
const warmupMs = performance.now() - t0;
log(`train step (warm-up): ${warmupMs.toFixed(1)} ms`);
// Pipelines built so far: the tuners' candidates and the step's own (the warm-up builds what is left).
const builds = pipelineBuildStats(gpu);
log(
  `pipelines: ${builds.count} built, ${(builds.totalMs / 1000).toFixed(2)} s of host time in all; slowest ` +
    `${builds.slowestMs.toFixed(0)} ms (${builds.slowest})`,
);
// The timed steps run as in training (lib/train/trainer.ts): each submitted as soon as it is recorded,
// one wait after the last, so the GPU never idles between steps and the wait's poll interval is paid
// once. The host's share, recording a step (the submit left out), is timed on its own: a GPU step
// faster than that would leave the GPU waiting on the host.
const recordTimes: number[] = [];
const dispatchesBefore = rec.dispatches, passesBefore = rec.passes;
t0 = performance.now();
for (let s = 0; s < timedSteps; s++) {
  const r0 = performance.now();
  record();
  recordTimes.push(performance.now() - r0);
  rec.submit();
}
await gpu.device.queue.onSubmittedWorkDone();
const trainStepMs = (performance.now() - t0) / timedSteps;
// A lost device finishes its "steps" at once: read the last step's stats back (outside the timed span), so
// that such a time is an error naming the loss (lib/gpu/fault.ts), never a step time.
await readF32(gpu, stats);
log(`train step: ${trainStepMs.toFixed(1)} ms each, ${timedSteps} steps back to back`);
const recordStepMs = recordTimes.reduce((a, b) => a + b, 0) / timedSteps;
const dispatchesPerStep = (rec.dispatches - dispatchesBefore) / timedSteps;
const passesPerStep = (rec.passes - passesBefore) / timedSteps;
log(
  `host: recording a step takes ${recordStepMs.toFixed(2)} ms ` +
    `(${dispatchesPerStep} dispatches in ${passesPerStep} compute pass${passesPerStep === 1 ? "" : "es"})`,
);

// Where one step's GPU time goes, from timestamp queries around the batch gather, each encoder layer's
// forward and backward, the head with its loss, and Adam: every dispatch of the step is in one of them.
const layerMs: Record<string, number> = {};
const layerKindMs: Record<string, number> = {};
if (GpuTimer.available(gpu)) {
  const timer = new GpuTimer(gpu);
  const timedRec = new Recorder(gpu);
  timedRec.attachTimer(timer);
  let batchData!: ReturnType<typeof split.gather>;
  timedRec.timed("batch gather", () => batchData = split.gather(timedRec, 0, batch));
  model.trainStep(timedRec, batchData.x, batchData.labels, stats, 0);
  await timedRec.finish();
  for (const [label, ms] of await timer.read()) layerMs[label] = ms;
  // The same by kind of layer (Conv2d, BatchNorm2d, ...), forward and backward together, beside the
  // step's other parts (batch gather, head and loss, Adam): where the step goes.
  const layerLabels = new Set<string>();
  for (const layer of model.encoder.layers) {
    const kind = layer.constructor.name;
    const [fwd, bwd] = [`${layer.name} forward`, `${layer.name} backward`];
    layerLabels.add(fwd).add(bwd);
    layerKindMs[kind] = (layerKindMs[kind] ?? 0) + (layerMs[fwd] ?? 0) + (layerMs[bwd] ?? 0);
  }
  for (const [label, ms] of Object.entries(layerMs)) if (!layerLabels.has(label)) layerKindMs[label] = ms;
  const total = Object.values(layerMs).reduce((a, b) => a + b, 0);
  for (const [label, ms] of Object.entries(layerMs)) {
    log(
      `  ${label.padEnd(36)} ${ms.toFixed(2).padStart(10)} ms  ${(100 * ms / total).toFixed(1).padStart(5)}%`,
    );
  }
  log(`  ${"one step, timed on the GPU by part".padEnd(36)} ${total.toFixed(2).padStart(10)} ms`);
}
const flops = 6 * model.encoder.forwardMacs() * batch; // forward 2*MACs, backward twice that
log(
  `train step (batch ${batch}, widths ${widths.join("-")}): ${trainStepMs.toFixed(1)} ms, ` +
    `${(flops / trainStepMs / 1e6).toFixed(2)} GFLOP/s effective, ${model.store.parameterCount} parameters`,
);

// PyTorch's step on this machine, measured in the same run, when python3 can import torch.
let torch: { torch: string; threads: number; train_step_ms: number } | undefined;
if (!values["no-torch"]) torch = await torchStep(batch, widths);
if (torch) {
  log(
    `PyTorch ${torch.torch} (${torch.threads} threads) step: ${
      torch.train_step_ms.toFixed(1)
    } ms; ratio ours/PyTorch = ${(trainStepMs / torch.train_step_ms).toFixed(2)}`,
  );
} else if (values["no-torch"]) log("PyTorch reference: skipped (--no-torch)");
else {log(
    "PyTorch reference: not available here (no python3 that imports torch; apt-get install python3-torch)",
  );}

if (values.json) {
  console.log(JSON.stringify({
    adapter: gpu.report.description,
    backend: gpu.report.backend,
    implementation: gpu.report.implementation,
    feature_level: gpu.report.featureLevel,
    software: gpu.report.isSoftware,
    batch,
    widths,
    winograd: args.winograd,
    train_step_ms: trainStepMs,
    timed_steps: timedSteps,
    warmup_step_ms: warmupMs,
    pipeline_builds: builds,
    record_step_ms: recordStepMs,
    dispatches_per_step: dispatchesPerStep,
    passes_per_step: passesPerStep,
    train_step_gflops: flops / trainStepMs / 1e6,
    // One step's GPU time per timed part: each encoder layer's forward and backward, "batch gather",
    // "head and loss" and "Adam"; and the same with the layers summed by kind (Conv2d, BatchNorm2d, ...).
    train_step_layer_ms: layerMs,
    train_step_layer_kind_ms: layerKindMs,
    conv_kernels: convKernels,
    batchnorm_kernels: batchNormKernels,
    reduction_kernels: model.reductions,
    torch_train_step_ms: torch?.train_step_ms ?? null,
    torch_version: torch?.torch ?? null,
    ratio_vs_torch: torch ? trainStepMs / torch.train_step_ms : null,
    kernels,
  }));
}

async function torchStep(
  batch: number,
  widths: number[],
): Promise<{ torch: string; threads: number; train_step_ms: number } | undefined> {
  const script = fileURLToPath(new URL("../tools/pytorch/step_bench.py", import.meta.url));
  const python = findTorchPython();
  if (!python) return undefined;
  const out = await new Deno.Command(python, {
    args: [
      script,
      "--batch",
      String(batch),
      "--widths",
      widths.join(","),
      "--steps",
      String(Math.max(3, timedSteps)),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.success) {
    const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
    return JSON.parse(lines[lines.length - 1]);
  }
  return undefined;
}
