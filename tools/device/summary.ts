// `deno run -A tools/device/summary.ts STATE_DIR EXPERIMENT [--json FILE] [--markdown FILE]`: the device
// kit's closing table,
// read from what tools/device/run.sh left in its state folder: adapter, kernel test passes, one training
// step on both sides, epochs done, seconds per epoch on both sides, test accuracy. Missing pieces print as
// "-" (a step that did not run), never as a number.

import { checkPositionals, type CommandSpec, parseOrExit, stringFlag } from "../../experiments/flags.ts";
import { LOST_DEVICE } from "../../lib/gpu/fault.ts";
import { writeFileAtomic, writeJsonAtomic } from "../../lib/io/atomic.ts";
import { convTaskFlops, parseConvTaskKey } from "../../lib/nn/conv2d/kernels.ts";

const SPEC: CommandSpec = {
  name: "summary",
  invocation: "deno run -A tools/device/summary.ts",
  summary: "The device kit's closing table from what tools/device/run.sh left in its state folder; a step " +
    'that did not run prints "-".',
  positionals: [
    { name: "STATE_DIR", meaning: "run.sh's state folder" },
    { name: "EXPERIMENT", meaning: "the experiment run.sh trained, e.g. fashion_mda" },
  ],
  flags: [
    { name: "json", kind: "path", value: "FILE", meaning: "also write the table as JSON" },
    {
      name: "markdown",
      kind: "path",
      value: "FILE",
      meaning: "also write it as a README section (Markdown tables, every conv shape's chosen kernels)",
    },
  ],
  examples: [
    "deno run -A tools/device/summary.ts /var/tmp/dnll-kit fashion_mda --json /tmp/summary.json " +
    "--markdown /tmp/summary.md",
  ],
};

const { state, experiment, json, markdown } = parseOrExit(SPEC, Deno.args, (p) => {
  checkPositionals(SPEC, p);
  const [state, experiment] = p.positionals;
  return {
    state,
    experiment,
    json: stringFlag(p, "json", "path"),
    markdown: stringFlag(p, "markdown", "path"),
  };
});

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}
function readJson(path: string): Record<string, unknown> | undefined {
  const text = readText(path);
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}
/** Mean of the epoch times, leaving out the first when there are more (it compiles pipelines / warms up). */
function perEpoch(seconds: number[]): number | undefined {
  const xs = seconds.length > 1 ? seconds.slice(1) : seconds;
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined;
}
const fmt = (v: number | undefined, digits: number, unit = "") =>
  v === undefined || !Number.isFinite(v) ? "-" : `${v.toFixed(digits)}${unit}`;
/** A rate or ratio: `digits` decimals, but two significant digits below 1 (a CPU rehearsal's TFLOP/s). */
const fmtRate = (v: number | undefined, digits: number, unit = "") =>
  v !== undefined && v > 0 && v < 1 ? `${v.toPrecision(2)}${unit}` : fmt(v, digits, unit);

const adapter = readJson(`${state}/steps/adapter.json`)?.report as
  | { description: string; backend: string; isSoftware: boolean }
  | undefined;
const testPasses = (readText(`${state}/steps/tests/results.txt`) ?? "").trim().split("\n").filter(Boolean)
  .map((line) => Object.fromEntries(line.split(/ (?=\w+=)/).map((kv) => kv.split(/=(.*)/s).slice(0, 2))));
const bench = readJson(`${state}/steps/bench/bench.json`);
// The step with direct convolutions only (--no-winograd): run.sh times it where the tuner chose Winograd.
const benchDirect = readJson(`${state}/steps/bench/bench_no_winograd.json`);
const torchFp32 = readJson(`${state}/steps/bench/torch_fp32.json`);
const torchDefault = readJson(`${state}/steps/bench/torch_default.json`);

const runDir = `${state}/results/${experiment}`;
const manifest = readJson(`${runDir}/manifest.json`);
const history = (readText(`${runDir}/history.jsonl`) ?? "").trim().split("\n").filter(Boolean)
  .map((l) =>
    JSON.parse(l) as { epoch: number; seconds: number; eval_seconds?: number; test_accuracy: number }
  );
const pinnedEpochs = (manifest?.hyperparameters as Record<string, { value: unknown }> | undefined)?.epochs
  ?.value;

// PyTorch's notebook prints one line per epoch: "[MDA 01] train loss=... | test acc=0.8123 (4.2 s)".
const notebookLog = readText(`${state}/steps/pytorch/notebook.log`) ?? "";
const torchEpochs = [...notebookLog.matchAll(/^\[MDA (\d+)\].*test acc=([0-9.]+) \(([0-9.]+) s\)/gm)]
  .map((m) => ({ epoch: +m[1], test_accuracy: +m[2], seconds: +m[3] }));

// The tuner's cache (lib/gpu/tuner.ts, format 2): per adapter and shape, the choice and every candidate's
// median ms, the reference (the long-tested kernel every other is checked against) first.
type Tuned = { choice: string; ms: Record<string, number>; dropped?: Record<string, string> };
const tuningFile = readJson(`${state}/steps/tuning.json`) as
  | { adapters?: Record<string, Record<string, Tuned>> }
  | undefined;
const tuned = Object.values(tuningFile?.adapters ?? {}).flatMap((shapes) => Object.values(shapes))
  .filter((e) => e && typeof e.choice === "string" && typeof e.ms === "object");
const families: Record<string, number> = {};
for (const e of tuned) {
  const family = e.choice.replace(/\(.*$/, "");
  families[family] = (families[family] ?? 0) + 1;
}
// How much faster than its reference each choice ran, as a median over the shapes.
const gains = tuned.map((e) => Object.values(e.ms)[0] / e.ms[e.choice]).filter(Number.isFinite)
  .sort((a, b) => a - b);
const droppedCount = tuned.reduce((n, e) => n + Object.keys(e.dropped ?? {}).length, 0);
// Why candidates were dropped (lib/gpu/tuner.ts): an output that differed from the reference's (a race or a
// miscompile on this GPU), an error of their own (e.g. a shader the driver's compiler rejects), or a lost
// device (the tuning stopped there; later runs skip the candidate).
const dropReason = (why: string) =>
  why.startsWith(LOST_DEVICE) ? "lost the device" : why.startsWith("failed") ? "an error" : "output differed";
const droppedBy: Record<string, number> = {};
for (const e of tuned) {
  for (const why of Object.values(e.dropped ?? {})) {
    droppedBy[dropReason(why)] = (droppedBy[dropReason(why)] ?? 0) + 1;
  }
}
const tuner = {
  shapes: tuned.length,
  choices_by_family: families,
  reference_over_choice_median: gains.length ? gains[Math.floor(gains.length / 2)] : null,
  dropped: droppedCount,
  dropped_by_reason: droppedBy,
};

// The tuner's conv entries (keys as lib/nn/conv2d/tune.ts writes them), with their layer shape's label.
const PASSES = ["forward", "inputGrad", "weightGrad"];
const convEntries = Object.values(tuningFile?.adapters ?? {}).flatMap((shapes) => Object.entries(shapes))
  .flatMap(([key, entry]) => {
    const task = parseConvTaskKey(key);
    return task ? [{ task, entry, shape: `${task.ci}->${task.co} @${task.h}x${task.w} n=${task.n}` }] : [];
  });
/** "pass lowest-highest" of a value over the layer shapes, for each pass that has one. */
function rangesByPass<T extends { pass: string }>(
  rows: T[],
  value: (r: T) => number,
  digits: number,
  unit = "",
) {
  return PASSES.map((pass) => {
    const r = rows.filter((c) => c.pass === pass).map(value);
    return r.length
      ? `${pass} ${fmtRate(Math.min(...r), digits)}-${fmtRate(Math.max(...r), digits, unit)}`
      : undefined;
  }).filter((x) => x !== undefined);
}

// What the chosen conv kernels reach per layer shape and pass: the number to hold against the GPU's fp32
// peak, and where a slow step's time goes.
const convRates = convEntries.flatMap(({ task, entry, shape }) => {
  const ms = entry?.ms?.[entry.choice];
  if (typeof ms !== "number" || !(ms > 0)) return [];
  return [{ pass: task.pass, shape, kernel: entry.choice, ms, tflops: convTaskFlops(task) / (ms * 1e9) }];
});
const ratesByPass = rangesByPass(convRates, (c) => c.tflops, 1);

// Winograd (2.25x fewer multiply-adds, 4x the activations through memory) against the direct GEMMs, per
// conv shape and pass: the best direct candidate's ms over the best Winograd candidate's (> 1: Winograd
// is faster), whichever the tuner chose.
const isWinograd = (kernel: string) => /^(wgrad_)?winograd_/.test(kernel);
const winogradGains = convEntries.flatMap(({ task, entry, shape }) => {
  const times = Object.entries(entry?.ms ?? {}).filter(([, ms]) => typeof ms === "number" && ms > 0);
  const best = (winograd: boolean) =>
    Math.min(...times.filter(([k]) => isWinograd(k) === winograd).map(([, ms]) => ms));
  const [direct, winograd] = [best(false), best(true)];
  if (!Number.isFinite(direct) || !Number.isFinite(winograd)) return [];
  return [{ pass: task.pass, shape, direct_over_winograd: direct / winograd }];
});
const winogradByPass = rangesByPass(winogradGains, (c) => c.direct_over_winograd, 2, "x");

const ours = bench?.train_step_ms as number | undefined;
const oursDirect = benchDirect?.train_step_ms as number | undefined;
// Where one step's GPU time goes (bench.ts: timestamps around each encoder layer, summed by kind, and
// around the batch gather, the head with its loss, and Adam), largest first.
const kindEntries = Object.entries((bench?.train_step_layer_kind_ms ?? {}) as Record<string, number>)
  .filter(([, ms]) => typeof ms === "number").sort((a, b) => b[1] - a[1]);
const stepPartsMs = kindEntries.reduce((a, [, ms]) => a + ms, 0);
const builds = bench?.pipeline_builds as
  | { count: number; totalMs: number; slowestMs: number; slowest: string }
  | undefined;
const t32 = torchFp32?.train_step_ms as number | undefined;
const tdef = torchDefault?.train_step_ms as number | undefined;
const lastOurs = history[history.length - 1];
const lastTorch = torchEpochs[torchEpochs.length - 1];

const summary = {
  adapter: adapter ?? null,
  kernel_tests: testPasses,
  train_step_ms: {
    ours: ours ?? null,
    ours_no_winograd: oursDirect ?? null,
    batch: bench?.batch ?? null,
    widths: bench?.widths ?? null,
    pytorch_fp32_tf32_off: t32 ?? null,
    pytorch_defaults: tdef ?? null,
    pytorch_device: torchFp32?.device ?? torchDefault?.device ?? null,
    pytorch_version: torchFp32?.torch ?? torchDefault?.torch ?? null,
    // The host's time to record one of our steps: near `ours`, the GPU waits on the host.
    ours_host_record: bench?.record_step_ms ?? null,
    ours_dispatches: bench?.dispatches_per_step ?? null,
    ours_passes: bench?.passes_per_step ?? null,
    // Pipelines the bench built (tuners' candidates and the step's): host time, compile included.
    ours_pipeline_builds: bench?.pipeline_builds ?? null,
  },
  experiment: {
    name: experiment,
    status: manifest?.status ?? null,
    // Why a failed run stopped (a diverged loss, a lost device: the run's one line).
    error: manifest?.error ?? null,
    epochs_done: history.length,
    epochs_pinned: pinnedEpochs ?? null,
    seconds_per_epoch: perEpoch(history.map((r) => r.seconds)) ?? null,
    eval_seconds_per_epoch: history.length && history.every((r) => r.eval_seconds !== undefined)
      ? perEpoch(history.map((r) => r.eval_seconds!))!
      : null,
    test_accuracy: lastOurs?.test_accuracy ?? null,
  },
  tuner,
  conv_tflops: convRates,
  winograd_over_direct: winogradGains,
  pytorch_notebook: {
    epochs_done: torchEpochs.length,
    seconds_per_epoch: perEpoch(torchEpochs.map((r) => r.seconds)) ?? null,
    test_accuracy: lastTorch?.test_accuracy ?? null,
  },
};

const rows: [string, string][] = [
  [
    "adapter",
    adapter
      ? `${adapter.description} (backend ${adapter.backend}${adapter.isSoftware ? ", software" : ""})`
      : "-",
  ],
  [
    "kernel tests",
    testPasses.length
      ? testPasses.map((p) => `pass ${p.pass}: ${p.summary} (seed ${p.seed})`).join("; ")
      : "-",
  ],
  [
    `train step ms${bench ? `, batch ${bench.batch}` : ""}`,
    `ours ${fmt(ours, 1)} | PyTorch fp32, TF32 off ${fmt(t32, 1)} | PyTorch defaults ${fmt(tdef, 1)}` +
    (ours && t32 ? ` | ours/PyTorch fp32 ${fmt(ours / t32, 2, "x")}` : ""),
  ],
  [
    "train step ms, no Winograd",
    oursDirect === undefined
      ? "- (timed only where the tuner chose Winograd kernels)"
      : `${fmt(oursDirect, 1)} (direct convolutions only)` +
        (ours ? `: ${fmt(oursDirect / ours, 2, "x")} the tuned step's time` : ""),
  ],
  [
    "one step's GPU time by part",
    kindEntries.length
      ? `${kindEntries.map(([kind, ms]) => `${kind} ${fmt(ms, 2)} ms`).join(", ")}; ${
        fmt(stepPartsMs, 2)
      } ms ` +
        "in all (one step with timestamps around each part, a compute pass each" +
        (ours !== undefined ? `; the untimed steps' mean ${fmt(ours, 2)} ms)` : ")")
      : "-",
  ],
  [
    "host: recording a step",
    bench?.record_step_ms === undefined
      ? "-"
      : `${fmt(bench.record_step_ms as number, 2)} ms, ${bench.dispatches_per_step} dispatches` +
        (bench.passes_per_step === undefined
          ? ""
          : ` in ${bench.passes_per_step} compute pass${bench.passes_per_step === 1 ? "" : "es"}`),
  ],
  [
    "pipelines built (bench)",
    builds
      ? `${builds.count} in ${fmt(builds.totalMs / 1000, 2)} s; slowest ${fmt(builds.slowestMs, 0)} ms ` +
        `(${builds.slowest})`
      : "-",
  ],
  [
    "tuner",
    tuned.length
      ? `${tuned.length} shapes: ${Object.entries(families).map(([f, n]) => `${f} ${n}`).join(", ")}; ` +
        `choice ${fmt(tuner.reference_over_choice_median ?? undefined, 2, "x")} faster than the reference ` +
        `(median); ${droppedCount} candidate${droppedCount === 1 ? "" : "s"} dropped` +
        (droppedCount
          ? ` (${
            Object.entries(droppedBy).map(([why, n]) => `${why} ${n}`).join(", ")
          }: see steps.tar.xz tuning.json)`
          : "")
      : "-",
  ],
  [
    "conv TFLOP/s, tuner's choice",
    ratesByPass.length
      ? `${ratesByPass.join(", ")} (over the layer shapes; summary.json has each; a direct ` +
        `convolution's flops, which Winograd kernels reach with fewer)`
      : "-",
  ],
  [
    "Winograd: best direct kernel's ms / best Winograd's",
    winogradByPass.length
      ? `${winogradByPass.join(", ")} (over the layer shapes; > 1: Winograd faster)`
      : "-",
  ],
  [
    `epochs done (${experiment})`,
    `${history.length}${pinnedEpochs ? ` of ${pinnedEpochs}` : ""}, status ${manifest?.status ?? "-"}` +
    (typeof manifest?.error === "string" ? ` (${manifest.error})` : "") +
    ` | PyTorch notebook ${torchEpochs.length}`,
  ],
  [
    "seconds per epoch",
    `ours ${fmt(summary.experiment.seconds_per_epoch ?? undefined, 1)}` +
    (summary.experiment.eval_seconds_per_epoch === null
      ? ""
      : ` (eval ${fmt(summary.experiment.eval_seconds_per_epoch, 2)})`) +
    ` | PyTorch ${
      fmt(summary.pytorch_notebook.seconds_per_epoch ?? undefined, 1)
    } (first epoch left out when more)`,
  ],
  [
    // The issue's target is the whole run: start-up comes on top (log.txt); checkpoints overlap training.
    `${pinnedEpochs ?? "-"} epochs at that rate`,
    typeof pinnedEpochs === "number" && summary.experiment.seconds_per_epoch !== null
      ? `ours ${fmt((pinnedEpochs * summary.experiment.seconds_per_epoch) / 60, 1)} min` +
        (summary.pytorch_notebook.seconds_per_epoch !== null
          ? ` | PyTorch ${fmt((pinnedEpochs * summary.pytorch_notebook.seconds_per_epoch) / 60, 1)} min`
          : "")
      : "-",
  ],
  [
    "test accuracy, last epoch",
    `ours ${fmt(lastOurs?.test_accuracy, 4)}${lastOurs ? ` (epoch ${lastOurs.epoch})` : ""} | PyTorch ` +
    `${fmt(lastTorch?.test_accuracy, 4)}${lastTorch ? ` (epoch ${lastTorch.epoch})` : ""}`,
  ],
];
console.log("device kit summary");
for (const [k, v] of rows) console.log(`  ${k.padEnd(28)} ${v}`);
if (json) await writeJsonAtomic(json, summary);
if (markdown) await writeFileAtomic(markdown, markdownSection());

/**
 * The same facts as a README section: the table above, then each conv layer shape's chosen kernels with
 * their ms and TFLOP/s (from tuning.json), so that recording a device run is a copy, not a transcription.
 */
function markdownSection(): string {
  const cell = (v: string) => v.replaceAll("|", "\\|");
  const lines = [
    `### Device kit on ${adapter ? `${adapter.description} (${adapter.backend})` : "an unknown adapter"}`,
    "",
    `From \`tools/device/summary.ts\` (${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC).`,
    "",
    "| what | measured |",
    "| --- | --- |",
    ...rows.map(([k, v]) => `| ${cell(k)} | ${cell(v)} |`),
  ];
  if (convRates.length) {
    const shapes = [...new Set(convRates.map((c) => c.shape))];
    lines.push(
      "",
      "Conv kernels the tuner chose on this GPU (ms of one pass, TFLOP/s counting a direct convolution's " +
        "2 N H W CI CO 9 flops, which the Winograd kernels compute with fewer multiply-adds):",
      "",
      `| layer shape | ${PASSES.join(" | ")} |`,
      `| --- | ${PASSES.map(() => "---").join(" | ")} |`,
      ...shapes.map((shape) =>
        `| ${shape} | ${
          PASSES.map((pass) => {
            const c = convRates.find((r) => r.shape === shape && r.pass === pass);
            return c ? `\`${c.kernel}\` ${fmt(c.ms, 3)} ms, ${fmtRate(c.tflops, 1)}` : "-";
          }).join(" | ")
        } |`
      ),
    );
  }
  return lines.join("\n") + "\n";
}
