// The tuner's logic on the CPU: "hardware" mode is forced on the software adapter, the candidates are
// cheap register-block conv kernels, and a deliberately wrong candidate stands for a racy or
// miscompiled variant.
import { deepStrictEqual as assertEquals, ok as assert, rejects as assertRejects } from "node:assert/strict";
import { getGpu } from "../lib/gpu/device.ts";
import { ParamStore } from "../lib/gpu/params.ts";
import { GpuTimer } from "../lib/gpu/recorder.ts";
import {
  adapterKey,
  cachedChoice,
  chooseFastest,
  compareOutputs,
  TIE_MARGIN,
  Tuner,
  type TuneTask,
  TUNING_FORMAT,
  tuningFile,
} from "../lib/gpu/tuner.ts";
import { Conv2d, convTaskKey, gpuCandidates, kernelName, softwareKernels } from "../lib/nn/conv2d/conv2d.ts";
import { applyConvChoices, convChoices, tuneConvLayers } from "../lib/nn/conv2d/tune.ts";
import { Rng } from "../lib/rng.ts";
import { convTuneTask } from "./conv_tune_task.ts";
import { tempDir, writeTuningFile } from "./util.ts";

async function tempCache(): Promise<string> {
  return `${await tempDir("mda-tuner-test-")}/cache/tuning.json`;
}

Deno.test("tuner: a candidate that leaves its output unwritten is dropped; a reference that does ends the tuning", async () => {
  const gpu = await getGpu();
  const tuner = new Tuner(gpu, { mode: "hardware", cache: tuningFile(await tempCache()), repeats: 2 });
  // "idle" runs nothing after the reference, whose correct output is still in the buffer.
  const { task } = await convTuneTask(["reference", "idle", "other"]);
  const r = await tuner.choose(task, "x");
  assertEquals(Object.keys(r.dropped!), ["idle"]);
  assert(/^output 1 of 1: element 0 is NaN, reference /.test(r.dropped!.idle), r.dropped!.idle);
  await assertRejects(
    () => tuner.choose({ ...task, key: `${task.key} (idle reference)`, candidates: ["idle", "other"] }, "x"),
    /^Error: tuner: the reference kernel idle for .* \(idle reference\) left output 1 of 1 unwritten or not finite: element 0 is NaN$/,
  );
});

Deno.test("tuner: hardware mode times the candidates, drops a wrong one, caches the choice", async () => {
  const gpu = await getGpu();
  const cacheFile = await tempCache();
  const lines: string[] = [];
  const tuner = new Tuner(gpu, {
    mode: "hardware",
    cache: tuningFile(cacheFile),
    repeats: 2,
    log: (l) => lines.push(l),
  });
  const { task } = await convTuneTask(["reference", "broken", "other"]);
  const first = await tuner.choose(task, "software-choice");
  assertEquals(first.source, "timed");
  assertEquals(Object.keys(first.dropped!), ["broken"]);
  assert(/^output 1 of 1: element \d+ is 0, reference/.test(first.dropped!.broken), first.dropped!.broken);
  assertEquals(Object.keys(first.ms!).sort(), ["other", "reference"]);
  assert(["other", "reference"].includes(first.choice));
  assert(lines.some((l) => l.startsWith(`tuner: dropped broken for ${task.key}`)), lines.join("\n"));
  const file = JSON.parse(await Deno.readTextFile(cacheFile));
  // The entry keeps every candidate's time and why one was dropped.
  assertEquals(file, {
    format: TUNING_FORMAT,
    adapters: {
      [adapterKey(gpu)]: { [task.key]: { choice: first.choice, ms: first.ms, dropped: first.dropped } },
    },
  });

  // A second tuner (a later run) reads the cache and times nothing; a forced choice wins over it.
  const again = await new Tuner(gpu, {
    mode: "hardware",
    cache: tuningFile(cacheFile),
    log: (l) => lines.push(l),
  }).choose(
    task,
    "x",
  );
  assertEquals([again.source, again.choice], ["cache", first.choice]);
  const forced = await tuner.choose(task, "x", "other");
  assertEquals([forced.source, forced.choice], ["forced", "other"]);
  // Fewer candidates than the entry saw (--no-winograd, a variant removed): the fastest of them by the kept
  // times, nothing timed, the entry unchanged; only dropped ones left: timed again.
  const other = first.choice === "reference" ? "other" : "reference";
  const fewer = await tuner.choose({ ...task, candidates: [other] }, "x");
  assertEquals([fewer.source, fewer.choice], ["cache", other]);
  assertEquals(JSON.parse(await Deno.readTextFile(cacheFile)), file);
  const onlyDropped = await tuner.choose({ ...task, candidates: ["broken"] }, "x");
  assertEquals([onlyDropped.source, onlyDropped.choice], ["timed", "broken"]);
  // ... as that run's reference it was checked against nothing: it stays dropped for the runs that check it.
  const kept = JSON.parse(await Deno.readTextFile(cacheFile)).adapters[adapterKey(gpu)][task.key];
  assertEquals([kept.choice, kept.ms, kept.dropped], [first.choice, first.ms, first.dropped]);
  // A shape whose candidates include one the entry never saw (a later version's new variant) is timed again.
  const seen = await tuner.choose(task, "x");
  assertEquals(seen.source, "cache");
  const added = await tuner.choose({ ...task, candidates: [...task.candidates, "added"] }, "x");
  assertEquals(added.source, "timed");
  assert(added.ms!.added !== undefined, "the new candidate was timed");
});

Deno.test("tuner: a run timing some candidates keeps the entry's other times, and chooses among its own", async () => {
  const gpu = await getGpu();
  const cacheFile = await tempCache();
  const { task } = await convTuneTask(["reference", "other"]);
  const keyed = { ...task, key: `${task.key} (subset test)` };
  // An earlier run timed "winograd" fastest, dropped "racy", and never saw "other".
  const earlier = {
    choice: "winograd",
    ms: { reference: 9, winograd: 0.001 },
    dropped: { racy: "output ..." },
  };
  await writeTuningFile(cacheFile, gpu, { [keyed.key]: earlier });
  const options = { mode: "hardware" as const, cache: tuningFile(cacheFile), repeats: 1, log: () => {} };
  // "other" is new to the entry: both are timed, and the choice is among them (not the kept "winograd").
  const timed = await new Tuner(gpu, options).choose(keyed, "x");
  assertEquals(timed.source, "timed");
  assertEquals(Object.keys(timed.ms!), ["reference", "other"]);
  const stored = JSON.parse(await Deno.readTextFile(cacheFile)).adapters[adapterKey(gpu)][keyed.key];
  assertEquals(stored, {
    choice: "winograd", // the entry's fastest of all it has seen
    ms: { reference: timed.ms!.reference, winograd: 0.001, other: timed.ms!.other },
    dropped: { racy: "output ..." },
  });
  // The next run offering the same two takes its choice from the kept times, without timing.
  const again = await new Tuner(gpu, options).choose(keyed, "x");
  assertEquals([again.source, again.choice], ["cache", timed.choice]);
  // One offering all three gets the kept fastest.
  const all = await new Tuner(gpu, options).choose({
    ...keyed,
    candidates: ["reference", "other", "winograd"],
  }, "x");
  assertEquals([all.source, all.choice], ["cache", "winograd"]);
});

Deno.test("tuner: retime times a cached choice again and keeps the new times; tuners sharing `retimed` do it once", async () => {
  const gpu = await getGpu();
  const cacheFile = await tempCache();
  const { task } = await convTuneTask(["reference", "other"]);
  const keyed = { ...task, key: `${task.key} (retime test)` };
  // The cache file of an earlier process: an entry this process never timed.
  const earlier = { choice: "other", ms: { reference: 9, other: 1 } };
  await writeTuningFile(cacheFile, gpu, { [keyed.key]: earlier });
  const options = { mode: "hardware" as const, cache: tuningFile(cacheFile), repeats: 1, log: () => {} };
  assertEquals((await new Tuner(gpu, options).choose(keyed, "x")).source, "cache");
  const redone = await new Tuner(gpu, { ...options, retime: true }).choose(keyed, "x");
  assertEquals(redone.source, "timed");
  const stored = JSON.parse(await Deno.readTextFile(cacheFile)).adapters[adapterKey(gpu)][keyed.key];
  assertEquals(stored.ms, redone.ms, "the new timing replaced the kept one");
  // Tuners sharing `retimed` (the runs of one sweep) time it once: the first again, the next from the cache.
  const retimed = new Set<string>();
  const shared = { ...options, retime: true, retimed };
  assertEquals((await new Tuner(gpu, shared).choose(keyed, "x")).source, "timed");
  assertEquals((await new Tuner(gpu, shared).choose(keyed, "x")).source, "cache");
  assertEquals(retimed.size, 1);
});

Deno.test("tuner: without timestamp queries, samples of back-to-back runs on the wall clock", async () => {
  const gpu = await getGpu();
  const lines: string[] = [];
  const tuner = new Tuner(gpu, {
    mode: "hardware",
    cache: null,
    repeats: 2,
    wallClock: true,
    log: (l) => lines.push(l),
  });
  const { task } = await convTuneTask(["reference", "broken", "other"]);
  let records = 0;
  const counted: TuneTask = { ...task, record: (name, rec) => (records++, task.record(name, rec)) };
  const r = await tuner.choose(counted, "x");
  assertEquals([r.source, Object.keys(r.dropped!)], ["timed", ["broken"]]);
  for (const ms of Object.values(r.ms!)) assert(ms > 0 && Number.isFinite(ms), `${ms}`);
  // 1 checked run each for reference, broken and other, then 2 samples of 10 runs for the two kept.
  assertEquals(records, 3 + 2 * 2 * 10);
});

Deno.test("tuner: with timestamps a sample repeats a short run, up to ten times, and a long one not", async () => {
  const gpu = await getGpu();
  if (!GpuTimer.available(gpu)) return; // the wall-clock path is the test above
  const { task } = await convTuneTask(["reference", "other"]);
  for (const [minSampleMs, runs] of [[0, 1], [1e9, 10]]) {
    const tuner = new Tuner(gpu, { mode: "hardware", cache: null, repeats: 3, minSampleMs, log: () => {} });
    let records = 0;
    const counted: TuneTask = { ...task, record: (name, rec) => (records++, task.record(name, rec)) };
    const r = await tuner.choose(counted, "x");
    for (const ms of Object.values(r.ms!)) assert(ms > 0 && Number.isFinite(ms), `${ms}`);
    // Per candidate: the checked run (its timestamp sizes the samples), then 3 samples of `runs`.
    assertEquals(records, 2 * (1 + 3 * runs), `minSampleMs ${minSampleMs}`);
  }
});

Deno.test("tuner: every candidate is checked, then timed in rounds of one sample each", async () => {
  const gpu = await getGpu();
  const { task } = await convTuneTask(["reference", "other"]);
  const order: string[] = [];
  const logged: TuneTask = { ...task, record: (name, rec) => (order.push(name), task.record(name, rec)) };
  const tuner = new Tuner(gpu, { mode: "hardware", cache: null, repeats: 2, wallClock: true, log: () => {} });
  await tuner.choose(logged, "x");
  const runs = (name: string) => Array(10).fill(name);
  assertEquals(order, [
    "reference",
    "other",
    ...runs("reference"),
    ...runs("other"),
    ...runs("reference"),
    ...runs("other"),
  ]);
});

Deno.test("tuner: a later candidate wins only by more than the margin; the kept times choose alike", () => {
  const order = ["reference", "other", "third"];
  assertEquals(TIE_MARGIN, 0.03);
  assertEquals(chooseFastest({ reference: 1.02, other: 1 }, order), "reference");
  assertEquals(chooseFastest({ reference: 1.04, other: 1 }, order), "other");
  assertEquals(chooseFastest({ reference: 1.1, other: 1.01, third: 1 }, order), "other");
  assertEquals(chooseFastest({ third: 1, other: 1.5 }, order), "third");
  assertEquals(chooseFastest({ unlisted: 1, reference: 1.5 }, order), "unlisted");
  // A run offered fewer candidates than the entry saw chooses among them by the same rule.
  const entry = { choice: "winograd", ms: { reference: 1.02, other: 1, winograd: 0.5 } };
  assertEquals(cachedChoice(entry, ["reference", "other"]), "reference");
  assertEquals(cachedChoice(entry, ["other", "reference"]), "other");
});

Deno.test("tuner: a candidate whose timed runs give another output is dropped; a reference whose do ends the tuning", async () => {
  const gpu = await getGpu();
  const { task } = await convTuneTask(["reference", "flaky", "other"]);
  // "flaky" is right on its checked run, wrong on every run after it (a race that needs back-to-back runs).
  let flakyRuns = 0;
  const flaky = (candidates: string[]): TuneTask => ({
    ...task,
    candidates,
    record: (name, rec) =>
      task.record(name === "flaky" ? (flakyRuns++ === 0 ? "reference" : "broken") : name, rec),
  });
  for (const wallClock of GpuTimer.available(gpu) ? [true, false] : [true]) {
    const lines: string[] = [];
    const tuner = new Tuner(gpu, {
      mode: "hardware",
      cache: null,
      repeats: 2,
      wallClock,
      log: (l) => lines.push(l),
    });
    flakyRuns = 0;
    const r = await tuner.choose(flaky(["reference", "flaky", "other"]), "x");
    assertEquals(Object.keys(r.ms!), ["reference", "other"], `wallClock ${wallClock}`);
    assert(
      /^after its timed runs, output 1 of 1: element \d+ is 0, reference /.test(r.dropped!.flaky),
      r.dropped!.flaky,
    );
    assert(lines.some((l) => l.startsWith(`tuner: dropped flaky for ${task.key}: after its timed runs`)));
    flakyRuns = 0;
    await assertRejects(
      () => tuner.choose(flaky(["flaky", "other"]), "x"),
      /^Error: tuner: the reference kernel flaky for .* gave another output when run again \(output 1 of 1: element \d+ is 0, reference [^)]*\): a race or a miscompile on this adapter$/,
    );
  }
});

Deno.test("tuner: samples whose timestamps give no time are left out; with none left, the wall clock times", async () => {
  const gpu = await getGpu();
  if (!GpuTimer.available(gpu)) return;
  // A section whose end is not after its begin has no time (NaN), not a negative or zero one.
  const timer = new GpuTimer(gpu, 3);
  for (const label of ["forward", "backward", "forward"]) timer.writesFor(label);
  const ms = timer.decode(BigUint64Array.of(5n, 2_000_005n, 10n, 10n, 7n, 3n).buffer);
  timer.destroy();
  assertEquals([ms.get("forward"), ms.get("backward")], [NaN, NaN]);
  const one = new GpuTimer(gpu, 1);
  one.writesFor("run");
  assertEquals(one.decode(BigUint64Array.of(5n, 2_000_005n).buffer).get("run"), 2);
  one.destroy();
  // Every sample without a time: the tuner says so and times the candidates on the wall clock instead.
  const decode = GpuTimer.prototype.decode;
  GpuTimer.prototype.decode = function (bytes: ArrayBuffer) {
    return new Map([...decode.call(this, bytes).keys()].map((label) => [label, NaN]));
  };
  try {
    const lines: string[] = [];
    const { task } = await convTuneTask(["reference", "other"]);
    const r = await new Tuner(gpu, { mode: "hardware", cache: null, repeats: 2, log: (l) => lines.push(l) })
      .choose(task, "x");
    for (const t of Object.values(r.ms!)) assert(t > 0 && Number.isFinite(t), `${t}`);
    assert(
      lines.some((l) =>
        l === `tuner: other for ${task.key}: no GPU timestamp gave a time; timed on the wall clock`
      ),
      lines.join("\n"),
    );
  } finally {
    GpuTimer.prototype.decode = decode;
  }
});

Deno.test("tuner: software mode keeps the hand-tuned choice and writes no cache", async () => {
  const gpu = await getGpu();
  const cacheFile = await tempCache();
  const { task } = await convTuneTask(["reference", "other"]);
  const r = await new Tuner(gpu, { mode: "software", cache: tuningFile(cacheFile) }).choose(task, "other");
  assertEquals([r.source, r.choice], ["software", "other"]);
  assert(!(await Deno.stat(cacheFile).then(() => true, () => false)));
});

Deno.test("tuner: a corrupt cache file is ignored, said so, and rewritten", async () => {
  const gpu = await getGpu();
  const cacheFile = await tempCache();
  await Deno.mkdir(cacheFile.slice(0, cacheFile.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(cacheFile, "{not json");
  const lines: string[] = [];
  const { task } = await convTuneTask(["reference"]);
  const r = await new Tuner(gpu, {
    mode: "hardware",
    cache: tuningFile(cacheFile),
    repeats: 1,
    log: (l) => lines.push(l),
  })
    .choose(task, "x");
  assertEquals([r.source, r.choice], ["timed", "reference"]);
  assert(lines.some((l) => l.includes(`not a ${TUNING_FORMAT} file`)), lines.join("\n"));
  assertEquals(JSON.parse(await Deno.readTextFile(cacheFile)).format, TUNING_FORMAT);
});

Deno.test("tuner: output comparison allows rounding, not wrong values", () => {
  const want = Float32Array.from([1, -2, 1000, 0]);
  assertEquals(compareOutputs(Float32Array.from([1.0005, -2.001, 1000.5, 0.05]), want), undefined);
  assertEquals(
    compareOutputs(Float32Array.from([1, -2, 1000, 0.2]), want),
    "element 3 is 0.20000000298023224, reference 0",
  );
  assertEquals(compareOutputs(Float32Array.from([NaN, -2, 1000, 0]), want), "element 0 is NaN, reference 1");
  assertEquals(compareOutputs(new Float32Array(3), want), "length 3, reference 4");
});

Deno.test("tuner: recorded conv choices are applied back (a resumed run's forced kernels)", async () => {
  const gpu = await getGpu();
  const store = new ParamStore(gpu);
  const rng = new Rng(2);
  const layers = [new Conv2d(store, "a", 1, 4, rng), new Conv2d(store, "b", 4, 6, rng)];
  store.finalize();
  // Software adapter, no forced choice: the hand-tuned kernels, nothing timed.
  const soft = await tuneConvLayers(gpu, layers, [2, 1, 6, 6], { mode: "software", cache: null });
  assertEquals(soft.results, []);
  assertEquals(soft.choices.a.weightGrad, kernelName(softwareKernels(1).weightGrad));
  const forced = structuredClone(soft.choices);
  forced.b.forward = "igemm_tiled(bm=16,bn=8,bk=4,tm=2,tn=2)";
  forced.a.weightGrad = "wgrad_splitk(bm=16,bn=8,bk=4,tm=2,tn=2,stages=1,groups=4)";
  const r = await tuneConvLayers(gpu, layers, [2, 1, 6, 6], { mode: "hardware", cache: null, forced });
  assertEquals(r.choices, forced);
  assertEquals(convChoices(layers), forced);
  const missing = { a: forced.a };
  try {
    applyConvChoices(layers, missing);
    assert(false, "expected an error");
  } catch (e) {
    assertEquals((e as Error).message, "recorded conv kernels have no entry for layer b");
  }
});

Deno.test("tuner: conv tuning covers every pass but the first layer's input gradient, which no encoder computes", async () => {
  const gpu = await getGpu();
  const store = new ParamStore(gpu);
  const rng = new Rng(3);
  const layers = [new Conv2d(store, "a", 1, 4, rng), new Conv2d(store, "b", 4, 6, rng)];
  store.finalize();
  // A cache that answers every task there could be (each candidate "timed"), so nothing runs: the results
  // say which tasks were asked for, and the adapter's workgroup-memory limit filters the same list here.
  const maxBytes = gpu.limits.maxComputeWorkgroupStorageSize;
  const keys = new Map<string, string[]>();
  for (const [c, co] of [[1, 4], [4, 6]]) {
    for (const pass of ["forward", "inputGrad", "weightGrad"] as const) {
      keys.set(
        convTaskKey({ pass, n: 2, ci: c, co, h: 6, w: 6 }),
        gpuCandidates(pass, c, maxBytes).map(kernelName),
      );
    }
  }
  const entries = Object.fromEntries(
    [...keys].map((
      [key, names],
    ) => [key, { choice: names[0], ms: Object.fromEntries(names.map((n) => [n, 1])) }]),
  );
  const cacheFile = await tempCache();
  await writeTuningFile(cacheFile, gpu, entries);
  const options = { mode: "hardware" as const, cache: tuningFile(cacheFile), log: () => {} };
  const asked = async (opts = {}) =>
    (await tuneConvLayers(gpu, layers, [2, 1, 6, 6], { ...options, ...opts })).results.map((r) => {
      assertEquals(r.source, "cache");
      return r.key;
    });
  const all = [...keys.keys()];
  assertEquals(await asked(), all.filter((k) => k !== "conv2d inputGrad n=2 ci=1 co=4 h=6 w=6"));
  assertEquals(await asked({ firstInputGrad: true }), all);

  // Where a Winograd kernel was timed fastest, a run takes it, and with `winograd: false` (--no-winograd)
  // the fastest direct kernel from the same entry, without timing anything.
  const winograd = (name: string) => name.includes("winograd");
  const secondFastest = new Map<string, string>();
  for (const [key, names] of keys) {
    const fast = names.find(winograd);
    if (!fast) continue;
    const direct = names.filter((n) => !winograd(n));
    secondFastest.set(key, direct[direct.length - 1]);
    entries[key].ms[fast] = 0.5;
    entries[key].ms[direct[direct.length - 1]] = 0.75;
    entries[key].choice = fast;
  }
  assertEquals(secondFastest.size, 4, "the 1-channel layer has no Winograd forward or weight gradient");
  await writeTuningFile(cacheFile, gpu, entries);
  const chosen = async (opts = {}) =>
    new Map(
      (await tuneConvLayers(gpu, layers, [2, 1, 6, 6], { ...options, firstInputGrad: true, ...opts })).results
        .map((r) => {
          assertEquals(r.source, "cache");
          return [r.key, r.choice];
        }),
    );
  const withWinograd = await chosen();
  for (const [key, name] of withWinograd) {
    assertEquals(winograd(name), secondFastest.has(key), `${key}: ${name}`);
  }
  const direct = await chosen({ winograd: false });
  for (const [key, name] of direct) {
    assertEquals(name, secondFastest.get(key) ?? keys.get(key)![0], key);
  }
  assertEquals(Object.values(convChoices(layers)).flatMap(Object.values).filter(winograd), []);
});
