// A small autotuner shared by every layer: for one piece of work (a layer pass at one shape), time a
// handful of kernel variants on the device and keep the fastest.
//
// - Software adapters (llvmpipe, lavapipe) keep the kernels tuned for them by hand: nothing is timed.
// - Hardware adapters: the first time a shape is seen, every candidate runs once on the same real-size
//   inputs (this also compiles it) and its output is compared with the reference candidate's (the first
//   in the list); a mismatch means a race or a miscompile, so that variant is dropped and the log says
//   so. The survivors are timed in rounds, one sample of each per round (GPU timestamp queries where the
//   adapter has them, each sample repeating a short run up to ten times; else the wall clock around ten
//   runs and one wait); the last round's outputs are compared again. The fastest median wins, unless an
//   earlier candidate in the list is within 3 % of it (TIE_MARGIN): near-ties do not flip between runs.
// - The choice is cached per adapter and work key (a TuningStore), so later runs on the same machine skip
//   the timing: in Deno a JSON file outside the repository ($XDG_CACHE_HOME/webgpu-mda/tuning.json, else
//   ~/.cache/webgpu-mda/tuning.json), in a browser the page's localStorage. Each entry keeps every
//   candidate's time (and why any was dropped): a table of how the variants fare on that adapter, and
//   the list the choice was made among, so a candidate added by a later version is timed, not ignored,
//   and a run offered fewer candidates (--no-winograd) takes the fastest of its own from the kept times.
// - Each candidate runs inside error scopes: its own error (a shader the driver rejects) drops it. A
//   candidate that loses the device ends the tuning (fault.ts) and is marked in the cache entry, so the
//   next run, on a new device, leaves it out.
// - A forced choice (from a run's resume state) wins over everything: a resumed or repeated run uses the
//   same kernels, so it gives the same bits.

import { writeFileAtomic } from "../io/atomic.ts";
import { type Gpu, TREATED_AS_GPU } from "./device.ts";
import { GpuFaultError, LOST_DEVICE } from "./fault.ts";
import { GpuTimer, Recorder } from "./recorder.ts";
import { readRegions, type Tensor, tensorRegion } from "./tensor.ts";

export const TUNING_FORMAT = "webgpu-mda-tuning/2";

/**
 * Runs per timed sample without timestamp queries, back to back: each sample is timed around one wait,
 * and Deno's waits cost >= ~10 ms (platform.md), spread over ten runs. Also the most runs a sample takes
 * with timestamps (see MIN_SAMPLE_MS).
 */
const WALL_CLOCK_RUNS = 10;

/**
 * Fault injection for the tests of what follows a lost device (tools/device/rehearse --as-gpu): with
 * DNLL_LOSE_DEVICE_AT="<task key> | <candidate>" in Deno's environment, the tuner destroys its device behind
 * the code's back (as a driver reset takes it) when it is about to run that candidate for that task.
 */
const loseDeviceAt = typeof Deno !== "undefined" ? Deno.env.get("DNLL_LOSE_DEVICE_AT") : undefined;

/** The errors a candidate's run is scoped for (see Tuner.run). */
const ERROR_SCOPES: GPUErrorFilter[] = ["validation", "out-of-memory", "internal"];

/**
 * With timestamp queries a sample repeats a run until it lasts about this long (at most WALL_CLOCK_RUNS
 * runs): a browser rounds timestamps to 100 us (Chrome, for privacy), about what one small conv pass takes
 * on a fast GPU, while a slow candidate is timed once a sample, so tuning stays short.
 */
const MIN_SAMPLE_MS = 1;

/** One piece of work to tune. */
export interface TuneTask {
  /** What is tuned, shapes included, e.g. "conv2d forward n=256 ci=64 co=64 h=28 w=28". */
  key: string;
  /** Candidate kernel names, the reference first. */
  candidates: string[];
  /** Records one run of candidate `name`. */
  record(name: string, rec: Recorder): void;
  /**
   * The tensors a run writes: compared with the reference's, within rounding. A task's inputs must keep
   * every output within rounding of the reference's for a correct candidate: no value at a kink such as a
   * ReLU's, where another summation order may take the other branch (lib/nn/batchnorm_tune.ts: tuningInput).
   */
  outputs(): Tensor[];
}

export interface TuneResult {
  key: string;
  choice: string;
  /** software: no tuning; forced: from the caller (resume); cache: from the tuning file; timed: measured. */
  source: "software" | "forced" | "cache" | "timed";
  /** Median milliseconds of each timed candidate. */
  ms?: Record<string, number>;
  /** Candidates dropped because their output differed from the reference's, with the reason. */
  dropped?: Record<string, string>;
}

export interface TunerOptions {
  /** "auto": from the adapter report; "hardware" forces tuning (tests on a software adapter). */
  mode?: "auto" | "hardware" | "software";
  /** Where choices are kept between runs; null: nowhere. Default: defaultTuningStore(). */
  cache?: TuningStore | null;
  /** Timed runs per candidate (after the checked warm-up run). */
  repeats?: number;
  /** Time with the wall clock even where the adapter has timestamp queries (tests of that path). */
  wallClock?: boolean;
  /** With timestamps, how long a sample should last (default MIN_SAMPLE_MS; tests set the extremes). */
  minSampleMs?: number;
  /**
   * Time every piece of work again even where the cache has a choice (the new timing replaces the kept
   * one): for timings taken on a busy GPU, or after a driver update that the cache key cannot see (a
   * browser does not tell the driver). A key in `retimed` is taken from the cache as usual.
   */
  retime?: boolean;
  /**
   * The keys re-timed already, added to as this tuner times: tuners of one command share it, so that the
   * runs of a sweep re-time each shape once, not each run. Default: this tuner's own.
   */
  retimed?: Set<string>;
  log?: (line: string) => void;
}

/** Where the tuning cache (a TUNING_FORMAT JSON text) is kept between runs. */
export interface TuningStore {
  /** For messages: a path, or which browser storage. */
  readonly where: string;
  /** The stored text; undefined when nothing is stored yet. */
  read(): Promise<string | undefined>;
  write(text: string): Promise<void>;
}

/** A file (written to a temporary file, then renamed; its folder is created when missing). */
export function tuningFile(path: string): TuningStore {
  return {
    where: path,
    async read() {
      try {
        return await Deno.readTextFile(path);
      } catch {
        return undefined; // no file yet
      }
    },
    async write(text: string) {
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
      await writeFileAtomic(path, text);
    },
  };
}

/** The localStorage key of the browser's tuning cache. */
export const TUNING_STORAGE_KEY = "webgpu-mda-tuning";

/** A browser's Web Storage (localStorage: kept per site across reloads and restarts). */
export function webStorageTuning(storage: Pick<Storage, "getItem" | "setItem">): TuningStore {
  return {
    where: `localStorage["${TUNING_STORAGE_KEY}"]`,
    read: () => Promise.resolve(storage.getItem(TUNING_STORAGE_KEY) ?? undefined),
    write: (text: string) => Promise.resolve(storage.setItem(TUNING_STORAGE_KEY, text)),
  };
}

/** $XDG_CACHE_HOME/webgpu-mda/tuning.json, else ~/.cache/webgpu-mda/tuning.json (null without either). */
export function defaultTuningFile(): string | null {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const home = Deno.env.get("HOME");
  const dir = xdg ? xdg : home ? `${home}/.cache` : undefined;
  return dir ? `${dir}/webgpu-mda/tuning.json` : null;
}

/** In Deno the default tuning file; in a browser its localStorage; else (or where denied) none. */
export function defaultTuningStore(): TuningStore | null {
  if ("Deno" in globalThis) {
    const path = defaultTuningFile();
    return path ? tuningFile(path) : null;
  }
  try {
    // Reading localStorage throws where the page may not store anything (opaque origins, some privacy modes).
    if (globalThis.localStorage) return webStorageTuning(globalThis.localStorage);
  } catch {
    // no storage: tune every time
  }
  return null;
}

/**
 * The adapter part of a cache key: a choice is only valid for the same device, WebGPU implementation (wgpu,
 * Dawn, a browser: each compiles the WGSL its own way), backend and driver version (a driver update may
 * change which kernel is fastest, so it is timed again; browsers do not tell the driver: "unknown"). An
 * adapter that hides its name (in a browser) adds the hash of its limits and features instead.
 */
export function adapterKey(gpu: Gpu): string {
  const r = gpu.report;
  const fields = [r.description, r.vendor, r.architecture, r.implementation, r.backend, r.driver];
  return [
    ...fields,
    ...(r.fingerprint ? [r.fingerprint] : []),
    ...(r.treatedAsGpu ? [TREATED_AS_GPU] : []),
  ]
    .join(" | ");
}

/**
 * Where two outputs disagree beyond rounding (different summation orders): |a - b| must stay within
 * 1e-3 relative plus 1e-4 of the reference's largest magnitude. Returns undefined when they agree.
 */
export function compareOutputs(got: Float32Array, want: Float32Array): string | undefined {
  if (got.length !== want.length) return `length ${got.length}, reference ${want.length}`;
  let scale = 0;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  const atol = 1e-4 * scale;
  for (let i = 0; i < got.length; i++) {
    const a = got[i], b = want[i];
    if (!(Math.abs(a - b) <= atol + 1e-3 * Math.abs(b))) return `element ${i} is ${a}, reference ${b}`;
  }
  return undefined;
}

/**
 * Which output of a run (of the task's list) differs from the reference's, e.g. "output 2 of 4: element
 * 6798501 is ...", or undefined when all agree within rounding.
 */
function firstDifference(got: Float32Array[], want: Float32Array[]): string | undefined {
  for (const [i, g] of got.entries()) {
    const w = compareOutputs(g, want[i] ?? new Float32Array());
    if (w !== undefined) return `output ${i + 1} of ${got.length}: ${w}`;
  }
  return undefined;
}

/**
 * How much faster a later candidate must be to win: within it, the earlier in the list (the reference
 * first) is taken. Medians of a few samples differ by a percent or two between runs of the same kernel,
 * so without a margin near-ties would flip between machines and timings, and with them a run's kernels
 * (and its bits).
 */
export const TIE_MARGIN = 0.03;

/**
 * The candidate a set of median times chooses: the first in `order` within TIE_MARGIN of the fastest time.
 * Names in `ms` missing from `order` come after it, in `ms`'s order.
 */
export function chooseFastest(ms: Record<string, number>, order: readonly string[]): string {
  const names = [
    ...order.filter((n) => ms[n] !== undefined),
    ...Object.keys(ms).filter((n) => !order.includes(n)),
  ];
  if (names.length === 0) throw new Error("tuner: no timed candidate to choose among");
  const fastest = Math.min(...names.map((n) => ms[n]));
  return names.find((n) => ms[n] <= fastest * (1 + TIE_MARGIN))!;
}

/** One tuned piece of work in the cache: the choice and what it was chosen among. */
export interface TunedEntry {
  choice: string;
  /** Median ms of each candidate timed. */
  ms: Record<string, number>;
  /** Candidates dropped (output differed from the reference's, or failed), with the reason. */
  dropped?: Record<string, string>;
}

type CacheFile = { format: string; adapters: Record<string, Record<string, TunedEntry>> };

/**
 * The kept choice for `candidates`, or undefined when the entry does not answer for them: it must have seen
 * every one (timed or dropped). Its choice when that is a candidate; else (a run offered fewer candidates
 * than the entry saw: `--no-winograd`, or a variant a later version removed) the one the kept times choose
 * among them, as when timing (chooseFastest). A candidate the entry never saw (a later version's new
 * variant) has them all timed again.
 */
export function cachedChoice(
  entry: TunedEntry | undefined,
  candidates: readonly string[],
): string | undefined {
  if (!entry || typeof entry !== "object") return undefined;
  const ms = entry.ms ?? {}, dropped = entry.dropped ?? {};
  if (!candidates.every((c) => ms[c] !== undefined || dropped[c] !== undefined)) return undefined;
  if (candidates.includes(entry.choice)) return entry.choice;
  const timed = Object.fromEntries(candidates.filter((c) => ms[c] !== undefined).map((c) => [c, ms[c]]));
  return Object.keys(timed).length ? chooseFastest(timed, candidates) : undefined;
}

/**
 * A new timing merged into the kept entry: each candidate's latest time or reason for being dropped, so a
 * run that timed only some candidates (`--no-winograd`) keeps the others' times for the runs that offer
 * them. A candidate dropped before stays dropped unless this timing checked it: as the `reference` it was
 * compared with nothing. The entry's choice is the one its times choose, in the order of this
 * timing's `candidates` (then the entry's others).
 */
function mergeEntry(
  kept: TunedEntry | undefined,
  timed: TuneResult,
  candidates: readonly string[],
): TunedEntry {
  const reference = candidates[0];
  const ms: Record<string, number> = {}, dropped: Record<string, string> = {};
  for (const [name, t] of Object.entries(kept?.ms ?? {})) if (!timed.dropped?.[name]) ms[name] = t;
  for (const [name, why] of Object.entries(kept?.dropped ?? {})) {
    if (timed.ms![name] === undefined || name === reference) dropped[name] = why;
  }
  for (const [name, t] of Object.entries(timed.ms!)) if (dropped[name] === undefined) ms[name] = t;
  Object.assign(dropped, timed.dropped);
  const choice = Object.keys(ms).length ? chooseFastest(ms, candidates) : timed.choice;
  return { choice, ms, ...(Object.keys(dropped).length ? { dropped } : {}) };
}

export class Tuner {
  readonly hardware: boolean;
  private cache: TuningStore | null;
  private repeats: number;
  private timestamps: boolean;
  private minSampleMs: number;
  private retime: boolean;
  private retimed: Set<string>;
  private log: (line: string) => void;

  constructor(readonly gpu: Gpu, opts: TunerOptions = {}) {
    const mode = opts.mode ?? "auto";
    this.hardware = mode === "hardware" || (mode === "auto" && !gpu.report.isSoftware);
    this.cache = opts.cache === undefined ? defaultTuningStore() : opts.cache;
    this.repeats = opts.repeats ?? 5;
    this.timestamps = !opts.wallClock && GpuTimer.available(gpu);
    this.minSampleMs = opts.minSampleMs ?? MIN_SAMPLE_MS;
    this.retime = opts.retime ?? false;
    this.retimed = opts.retimed ?? new Set();
    this.log = opts.log ?? ((line) => console.error(line));
  }

  /**
   * The kernel for `task`: `forced` when given, `softwareChoice` on a software adapter, else the cached
   * or the fastest correct candidate.
   */
  async choose(task: TuneTask, softwareChoice: string, forced?: string): Promise<TuneResult> {
    if (task.candidates.length === 0) throw new Error(`tuner: no candidates for ${task.key}`);
    if (forced !== undefined) return { key: task.key, choice: forced, source: "forced" };
    if (!this.hardware) return { key: task.key, choice: softwareChoice, source: "software" };
    const adapter = adapterKey(this.gpu);
    const where = `${adapter} | ${task.key}`;
    const trusted = !this.retime || this.retimed.has(where);
    const kept = (await this.readCache())?.adapters[adapter]?.[task.key];
    const cached = trusted ? cachedChoice(kept, task.candidates) : undefined;
    if (cached !== undefined) return { key: task.key, choice: cached, source: "cache" };
    const result = await this.time(task, kept);
    this.retimed.add(where);
    await this.writeCache(task.key, mergeEntry(kept, result, task.candidates));
    return result;
  }

  /**
   * One run of a candidate: its outputs, and with timestamp queries its GPU time (which sizes the timed
   * samples), read back in one wait (each costs ~10 ms in Deno; a tuning run makes hundreds).
   */
  private async run(task: TuneTask, name: string): Promise<{ outputs: Float32Array[]; ms?: number }> {
    // A candidate's own errors (a shader its compiler rejects, a pipeline over a limit, memory it cannot
    // have) are caught here and drop it; uncaught, they would count as a fault of the device (fault.ts).
    const device = this.gpu.device;
    for (const scope of ERROR_SCOPES) device.pushErrorScope(scope);
    // Popped in reverse order of the pushes, also when the run threw (a lost device: that error wins).
    const popAll = () => Promise.all(ERROR_SCOPES.map(() => device.popErrorScope().catch(() => null)));
    let result;
    try {
      result = await this.runUnscoped(task, name);
    } catch (e) {
      await popAll();
      throw e;
    }
    const error = (await popAll()).find((e) => e);
    if (error) throw new Error(`${error.constructor.name}: ${error.message.trim().split("\n")[0]}`);
    return result;
  }

  private async runUnscoped(task: TuneTask, name: string): Promise<{ outputs: Float32Array[]; ms?: number }> {
    if (loseDeviceAt === `${task.key} | ${name}`) this.gpu.device.destroy(); // fault injection (see below)
    const rec = new Recorder(this.gpu);
    const timer = this.timestamps ? new GpuTimer(this.gpu, 1) : undefined;
    try {
      if (timer) {
        rec.attachTimer(timer);
        rec.timed("run", () => task.record(name, rec));
      } else task.record(name, rec);
      const outputs = task.outputs();
      // Every output starts as NaN (written before the submit, so before the candidate runs): one that
      // leaves some unwritten (a dropped store, a tile-edge or grid bug) then differs from the reference,
      // where it would pass on the values an earlier candidate left in the same buffers.
      for (const t of outputs) {
        this.gpu.device.queue.writeBuffer(t.buffer, t.offset, new Float32Array(t.size).fill(NaN));
      }
      rec.submit();
      const regions = outputs.map(tensorRegion);
      const bytes = await readRegions(this.gpu, timer ? [...regions, timer.region()] : regions);
      return {
        outputs: outputs.map((_, i) => new Float32Array(bytes[i])),
        ms: timer?.decode(bytes[outputs.length]).get("run"),
      };
    } finally {
      rec.destroy();
      timer?.destroy();
    }
  }

  /**
   * Checks and times every candidate of `task` against the reference (the first). `kept`: the tuning
   * file's entry for the task, whose candidates that lost the device are not run again.
   *
   * Every candidate is checked first, then timed in rounds, one sample of each per round: a drift of the
   * GPU's clocks while the task is timed (a boost that ends, another process) then weighs on every
   * candidate alike instead of on whichever came last. The last round reads back each candidate's output
   * of its timed runs and compares it again (a race that shows only under back-to-back runs).
   */
  private async time(task: TuneTask, kept: TunedEntry | undefined): Promise<TuneResult> {
    const [reference] = task.candidates;
    const dropped: Record<string, string> = {};
    const samples: Record<string, number[]> = {};
    const drop = (name: string, why: string) => {
      dropped[name] = why;
      delete samples[name];
      this.log(`tuner: dropped ${name} for ${task.key}: ${why}`);
    };
    // A candidate that loses the device would lose it again in every run: the tuning file remembers it, so
    // the next run, on a new device, leaves it out. The reference cannot be left out.
    const guarded = async (name: string, body: () => Promise<void>) => {
      try {
        await body();
      } catch (e) {
        if (!(e instanceof GpuFaultError)) throw e;
        if (name !== reference && e.fault.kind === "lost") {
          dropped[name] = `${LOST_DEVICE} (${e.fault.message})`;
          const partial: TuneResult = { key: task.key, choice: reference, source: "timed", ms: {}, dropped };
          await this.writeCache(task.key, mergeEntry(kept, partial, task.candidates));
        }
        throw new GpuFaultError(e.fault, `while the tuner ran ${name} for ${task.key}`);
      }
    };

    let want: Float32Array[] = [];
    const runs: Record<string, number> = {}; // runs per timed sample
    for (const name of task.candidates) {
      const lostBefore = kept?.dropped?.[name];
      if (name !== reference && lostBefore?.startsWith(LOST_DEVICE)) {
        dropped[name] = lostBefore;
        this.log(`tuner: skipped ${name} for ${task.key}: ${lostBefore} (in an earlier run)`);
        continue;
      }
      await guarded(name, async () => {
        const checked = await this.check(task, name, reference, want);
        if (name === reference) want = checked.got.outputs;
        if (checked.dropped) return drop(name, checked.dropped);
        samples[name] = [];
        runs[name] = this.runsPerSample(checked.got.ms);
      });
    }

    // One timed sample of `name` into `times`; the last round's outputs are compared again.
    const timeOnce = (name: string, runs: number, timestamps: boolean, last: boolean, times: number[]) =>
      guarded(name, async () => {
        const s = await this.sample(task, name, runs, timestamps, last);
        times.push(s.ms);
        if (last) this.recheck(task, name, reference, s.outputs!, want, drop);
      });

    for (let round = 0; round < this.repeats; round++) {
      const last = round === this.repeats - 1;
      for (const name of task.candidates) {
        if (samples[name]) await timeOnce(name, runs[name], this.timestamps, last, samples[name]);
      }
    }

    const ms: Record<string, number> = {};
    for (const name of task.candidates) {
      if (!samples[name]) continue;
      // A sample without a time (NaN: its timestamps ran backwards, GpuTimer.decode) is left out.
      const times = samples[name].filter((t) => t > 0);
      if (times.length === 0) {
        this.log(`tuner: ${name} for ${task.key}: no GPU timestamp gave a time; timed on the wall clock`);
        for (let r = 0; r < this.repeats; r++) {
          await timeOnce(name, WALL_CLOCK_RUNS, false, r === this.repeats - 1, times);
        }
        if (!samples[name]) continue; // dropped by the recheck
      }
      times.sort((a, b) => a - b);
      ms[name] = times[Math.floor(times.length / 2)];
    }
    const choice = chooseFastest(ms, task.candidates);
    this.log(
      `tuner: ${task.key}: ${choice} (${ms[choice].toFixed(3)} ms; reference ${ms[reference].toFixed(3)} ms)`,
    );
    return { key: task.key, choice, source: "timed", ms, dropped };
  }

  /**
   * The outputs of a candidate's timed runs against the reference's checked ones: a candidate that differs
   * now is dropped; the reference itself differing from its own first run ends the tuning (its outputs are
   * what every candidate was held to).
   */
  private recheck(
    task: TuneTask,
    name: string,
    reference: string,
    got: Float32Array[],
    want: Float32Array[],
    drop: (name: string, why: string) => void,
  ): void {
    const differs = firstDifference(got, want);
    if (differs === undefined) return;
    if (name === reference) {
      throw new Error(
        `tuner: the reference kernel ${reference} for ${task.key} gave another output when run again ` +
          `(${differs}): a race or a miscompile on this adapter`,
      );
    }
    drop(name, `after its timed runs, ${differs}`);
  }

  /**
   * One checked run of candidate `name`: its output against the reference's (`want`; the reference's own
   * run when `name` is the reference), and why it is dropped, if it is: an output that differs, or an error
   * of its own (Tuner.run's scopes). The reference's error ends the tuning.
   */
  private async check(
    task: TuneTask,
    name: string,
    reference: string,
    want: Float32Array[],
  ): Promise<{ got: { outputs: Float32Array[]; ms?: number }; dropped?: string }> {
    let got;
    try {
      got = await this.run(task, name);
    } catch (e) {
      if (e instanceof GpuFaultError) throw e;
      const message = (e as Error).message;
      if (name === reference) {
        throw new Error(`tuner: the reference kernel ${reference} for ${task.key} failed: ${message}`);
      }
      return { got: { outputs: [] }, dropped: `failed: ${message}` };
    }
    if (name === reference) {
      // Its outputs are what every candidate is held to: each must be written, and finite.
      for (const [i, out] of got.outputs.entries()) {
        const at = out.findIndex((v) => !Number.isFinite(v));
        if (at >= 0) {
          throw new Error(
            `tuner: the reference kernel ${reference} for ${task.key} left output ${i + 1} of ` +
              `${got.outputs.length} unwritten or not finite: element ${at} is ${out[at]}`,
          );
        }
      }
      return { got };
    }
    return { got, dropped: firstDifference(got.outputs, want) };
  }

  /**
   * Runs per timed sample: with timestamps, enough for MIN_SAMPLE_MS by `one`, the GPU time of the checked
   * run (at most WALL_CLOCK_RUNS); on the wall clock WALL_CLOCK_RUNS.
   */
  private runsPerSample(one = 0): number {
    if (!this.timestamps) return WALL_CLOCK_RUNS;
    return Math.min(WALL_CLOCK_RUNS, Math.max(1, Math.ceil(this.minSampleMs / (one > 0 ? one : 1e-6))));
  }

  /**
   * One timed sample of `runs` runs recorded back to back: milliseconds per run (NaN where the timestamps
   * gave no time), and with `readOutputs` the outputs the last run left, read back in the same wait. On the
   * wall clock the time is taken around one wait for the runs, before the outputs are read.
   */
  private async sample(
    task: TuneTask,
    name: string,
    runs: number,
    timestamps: boolean,
    readOutputs: boolean,
  ): Promise<{ ms: number; outputs?: Float32Array[] }> {
    const rec = new Recorder(this.gpu);
    const timer = timestamps ? new GpuTimer(this.gpu, 1) : undefined;
    try {
      let ms = NaN;
      if (timer) {
        rec.attachTimer(timer);
        rec.timed("sample", () => {
          for (let i = 0; i < runs; i++) task.record(name, rec);
        });
        rec.submit();
      } else {
        const t0 = performance.now();
        for (let i = 0; i < runs; i++) task.record(name, rec);
        await rec.finish();
        ms = (performance.now() - t0) / runs;
      }
      // Waits on a lost device end at once, and the loss may be reported later still: a readback fails on
      // it, so such times never reach the cache and the loss is this candidate's. Every last round reads.
      const regions = readOutputs ? task.outputs().map(tensorRegion) : [];
      if (timer) regions.push(timer.region());
      const bytes = regions.length ? await readRegions(this.gpu, regions) : [];
      if (timer) ms = timer.decode(bytes.pop()!).get("sample")! / runs;
      return { ms, outputs: readOutputs ? bytes.map((b) => new Float32Array(b)) : undefined };
    } finally {
      rec.destroy();
      timer?.destroy();
    }
  }

  private async readCache(): Promise<CacheFile | undefined> {
    const text = await this.cache?.read();
    if (text === undefined) return undefined;
    try {
      const c = JSON.parse(text) as CacheFile;
      if (c.format === TUNING_FORMAT && typeof c.adapters === "object") return c;
    } catch {
      // fall through
    }
    this.log(`tuner: ignoring ${this.cache!.where}: not a ${TUNING_FORMAT} file (it will be rewritten)`);
    return undefined;
  }

  private async writeCache(key: string, entry: TunedEntry): Promise<void> {
    if (!this.cache) return;
    const c = (await this.readCache()) ?? { format: TUNING_FORMAT, adapters: {} };
    const adapter = adapterKey(this.gpu);
    c.adapters[adapter] = { ...c.adapters[adapter], [key]: entry };
    try {
      await this.cache.write(JSON.stringify(c, null, 2) + "\n");
    } catch (e) {
      // The cache only saves time: a read-only home or a full storage quota must not stop a run.
      this.log(`tuner: could not write ${this.cache.where}: ${(e as Error).message}`);
    }
  }
}
