// A small autotuner shared by every layer: for one piece of work (a layer pass at one shape), time a
// handful of kernel variants on the device and keep the fastest.
//
// - Software adapters (llvmpipe, lavapipe) keep the kernels tuned for them by hand: nothing is timed.
// - Hardware adapters: the first time a shape is seen, every candidate runs once on the same real-size
//   inputs (this also compiles it) and its output is compared with the reference candidate's (the first
//   in the list); a mismatch means a race or a miscompile, so that variant is dropped and the log says
//   so. The survivors are timed (GPU timestamp queries where the adapter has them, else wall clock
//   around ten runs submitted back to back), and the fastest median wins.
// - The choice is cached per adapter and work key in a JSON file outside the repository
//   ($XDG_CACHE_HOME/webgpu-mda/tuning.json, else ~/.cache/webgpu-mda/tuning.json), so later runs on
//   the same machine skip the timing.
// - A forced choice (from a run's resume state) wins over everything: a resumed or repeated run uses the
//   same kernels, so it gives the same bits.

import { writeJsonAtomic } from "../io/atomic.ts";
import type { Gpu } from "./device.ts";
import { GpuTimer, Recorder } from "./recorder.ts";
import { readF32, type Tensor } from "./tensor.ts";

export const TUNING_FORMAT = "webgpu-mda-tuning/1";

/** Runs per timed sample where the adapter has no timestamp queries (see Tuner.median). */
const WALL_CLOCK_RUNS = 10;

/** One piece of work to tune. */
export interface TuneTask {
  /** What is tuned, shapes included, e.g. "conv2d forward n=256 ci=64 co=64 h=28 w=28". */
  key: string;
  /** Candidate kernel names, the reference first. */
  candidates: string[];
  /** Records one run of candidate `name`. */
  record(name: string, rec: Recorder): void;
  /** The tensors a run writes: compared with the reference's. */
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
  /** The tuning file; null: no file. Default: defaultTuningFile(). */
  cacheFile?: string | null;
  /** Timed runs per candidate (after the checked warm-up run). */
  repeats?: number;
  /** Time with the wall clock even where the adapter has timestamp queries (tests of that path). */
  wallClock?: boolean;
  log?: (line: string) => void;
}

/** $XDG_CACHE_HOME/webgpu-mda/tuning.json, else ~/.cache/webgpu-mda/tuning.json (null without either). */
export function defaultTuningFile(): string | null {
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  const home = Deno.env.get("HOME");
  const dir = xdg ? xdg : home ? `${home}/.cache` : undefined;
  return dir ? `${dir}/webgpu-mda/tuning.json` : null;
}

/** The adapter part of a cache key: a choice is only valid for the same device and backend. */
export function adapterKey(gpu: Gpu): string {
  const r = gpu.report;
  return [r.description, r.vendor, r.architecture, r.backend].join(" | ");
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

type CacheFile = { format: string; adapters: Record<string, Record<string, string>> };

export class Tuner {
  readonly hardware: boolean;
  private cacheFile: string | null;
  private repeats: number;
  private timestamps: boolean;
  private log: (line: string) => void;

  constructor(readonly gpu: Gpu, opts: TunerOptions = {}) {
    const mode = opts.mode ?? "auto";
    this.hardware = mode === "hardware" || (mode === "auto" && !gpu.report.isSoftware);
    this.cacheFile = opts.cacheFile === undefined ? defaultTuningFile() : opts.cacheFile;
    this.repeats = opts.repeats ?? 5;
    this.timestamps = !opts.wallClock && GpuTimer.available(gpu);
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
    const cached = (await this.readCache())?.adapters[adapterKey(this.gpu)]?.[task.key];
    if (cached !== undefined && task.candidates.includes(cached)) {
      return { key: task.key, choice: cached, source: "cache" };
    }
    const result = await this.time(task);
    await this.writeCache(task.key, result.choice);
    return result;
  }

  private async run(task: TuneTask, name: string): Promise<Float32Array[]> {
    const rec = new Recorder(this.gpu);
    try {
      task.record(name, rec);
      await rec.finish();
    } finally {
      rec.destroy();
    }
    return await Promise.all(task.outputs().map((t) => readF32(this.gpu, t)));
  }

  private async time(task: TuneTask): Promise<TuneResult> {
    const [reference] = task.candidates;
    const want = await this.run(task, reference);
    const dropped: Record<string, string> = {};
    const ms: Record<string, number> = {};
    for (const name of task.candidates) {
      if (name !== reference) {
        let why: string | undefined;
        try {
          const got = await this.run(task, name);
          why = got.map((g, i) => compareOutputs(g, want[i])).find((w) => w !== undefined);
          if (why) why = `output ${why}`;
        } catch (e) {
          why = `failed: ${(e as Error).message}`;
        }
        if (why) {
          dropped[name] = why;
          this.log(`tuner: dropped ${name} for ${task.key}: ${why}`);
          continue;
        }
      }
      ms[name] = await this.median(task, name);
    }
    let choice = reference;
    for (const [name, t] of Object.entries(ms)) if (t < ms[choice]) choice = name;
    this.log(
      `tuner: ${task.key}: ${choice} (${ms[choice].toFixed(3)} ms; reference ${ms[reference].toFixed(3)} ms)`,
    );
    return { key: task.key, choice, source: "timed", ms, dropped };
  }

  /** Median time of `repeats` runs, each its own timed pass (without timestamps: see below). */
  private async median(task: TuneTask, name: string): Promise<number> {
    const times: number[] = [];
    const rec = new Recorder(this.gpu);
    try {
      if (this.timestamps) {
        const timer = new GpuTimer(this.gpu, this.repeats);
        rec.attachTimer(timer);
        for (let r = 0; r < this.repeats; r++) rec.timed(`${r}`, () => task.record(name, rec));
        await rec.finish();
        const t = await timer.read();
        for (let r = 0; r < this.repeats; r++) times.push(t.get(`${r}`)!);
      } else {
        // Wall clock: each sample is WALL_CLOCK_RUNS runs submitted back to back and one wait, so that
        // Deno's poll interval (>= ~10 ms a wait, platform.md) is a tenth of a run's share, not all of it.
        for (let r = 0; r < this.repeats; r++) {
          const t0 = performance.now();
          for (let i = 0; i < WALL_CLOCK_RUNS; i++) {
            task.record(name, rec);
            rec.submit();
          }
          await this.gpu.device.queue.onSubmittedWorkDone();
          times.push((performance.now() - t0) / WALL_CLOCK_RUNS);
        }
      }
    } finally {
      rec.destroy();
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  }

  private async readCache(): Promise<CacheFile | undefined> {
    if (!this.cacheFile) return undefined;
    let text: string;
    try {
      text = await Deno.readTextFile(this.cacheFile);
    } catch {
      return undefined; // no file yet
    }
    try {
      const c = JSON.parse(text) as CacheFile;
      if (c.format === TUNING_FORMAT && typeof c.adapters === "object") return c;
    } catch {
      // fall through
    }
    this.log(`tuner: ignoring ${this.cacheFile}: not a ${TUNING_FORMAT} file (it will be rewritten)`);
    return undefined;
  }

  private async writeCache(key: string, choice: string): Promise<void> {
    if (!this.cacheFile) return;
    const c = (await this.readCache()) ?? { format: TUNING_FORMAT, adapters: {} };
    const adapter = adapterKey(this.gpu);
    c.adapters[adapter] = { ...c.adapters[adapter], [key]: choice };
    try {
      await Deno.mkdir(this.cacheFile.slice(0, this.cacheFile.lastIndexOf("/")), { recursive: true });
      await writeJsonAtomic(this.cacheFile, c);
    } catch (e) {
      // The cache only saves time: a read-only home must not stop a run.
      this.log(`tuner: could not write ${this.cacheFile}: ${(e as Error).message}`);
    }
  }
}
