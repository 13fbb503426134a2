// Progress on stderr: one updating line on a terminal, plain lines (at most every few seconds) when not.

import type { StepProgress } from "./trainer.ts";

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0
    ? `${h}h${String(m).padStart(2, "0")}m`
    : m > 0
    ? `${m}m${String(r).padStart(2, "0")}s`
    : `${r}s`;
}

/** A run's place in a multi-run experiment (a comparison, a sweep, --seeds). */
export interface PlanPlace {
  /** This run's position among the experiment's runs (from 1), and their number. */
  index: number;
  count: number;
  /** Training images the experiment's later unfinished runs have still to see. */
  imagesAfter: number;
}

/**
 * One progress line: where the run is, its speed, the time left of the run at that speed and, in a
 * multi-run experiment, of all its runs (the later runs train the same encoder on the same images, so the
 * same speed is the best guess). `remainingImages` counts the run's training images after this step;
 * `rate` is the speed in images/s (default: the epoch's average so far; NaN: not known yet).
 */
export function progressLine(
  p: StepProgress,
  totalEpochs: number,
  remainingImages: number,
  place?: PlanPlace,
  rate = p.images / Math.max(p.seconds, 1e-9),
): string {
  return (place ? `run ${place.index}/${place.count} ` : "") +
    `epoch ${p.epoch}/${totalEpochs} step ${p.step}/${p.steps} ` +
    (Number.isFinite(rate) ? `${rate.toFixed(0)} img/s ` : "") +
    `ETA ${formatDuration(remainingImages / rate)}` +
    (place && place.imagesAfter > 0
      ? ` (all runs ${formatDuration((remainingImages + place.imagesAfter) / rate)})`
      : "");
}

/**
 * The training speed of the last `windowSeconds`: the images trained between the oldest report in the
 * window and the newest, over the time between them. Not the epoch's average, which counts the run's first
 * steps (they build the pipelines: on a CPU the first line said "ETA 42h34m" for a 25-minute run) and any
 * pause (a suspended process, a machine asleep) until the epoch ends. NaN until two reports are in.
 */
export class SpeedWindow {
  private samples: { images: number; at: number }[] = [];

  constructor(private windowSeconds = 60) {}

  /**
   * Adds a report, `images` trained so far in the run (any fixed offset cancels) at `at` seconds, and
   * returns the speed in img/s.
   */
  add(images: number, at: number): number {
    this.samples.push({ images, at });
    // Keep the reports of the window, and always the one before the newest.
    while (this.samples.length > 2 && this.samples[1].at <= at - this.windowSeconds) this.samples.shift();
    const first = this.samples[0];
    return this.samples.length < 2 || at <= first.at ? NaN : (images - first.images) / (at - first.at);
  }
}

export class Progress {
  private tty = Deno.stderr.isTerminal();
  private lastPlain = -Infinity; // seconds, on this.clock
  private lastPlainAt = "";
  private enc = new TextEncoder();

  /** Set in a multi-run experiment once the run knows its training images. */
  place?: PlanPlace;

  private speed = new SpeedWindow();

  constructor(
    private totalEpochs: number,
    private quiet = false,
    private clock = () => performance.now() / 1000,
  ) {}

  /**
   * `remainingImages` counts the training images left in the whole run after this step, so that the
   * speed is measured across epochs (a run's total is fixed).
   */
  step(p: StepProgress, remainingImages: number): void {
    if (this.quiet) return;
    const now = this.clock();
    // The run's images left shrink by each step's images: their negative grows as a count of trained ones.
    const rate = this.speed.add(-remainingImages, now);
    const line = progressLine(p, this.totalEpochs, remainingImages, this.place, rate);
    if (this.tty) {
      Deno.stderr.writeSync(this.enc.encode(`\r\x1b[2K${line}`));
    } else {
      // An epoch's last step can be reported twice (its own mark, then the epoch's end): one line.
      const at = `${p.epoch}/${p.step}`;
      if (at !== this.lastPlainAt && (now - this.lastPlain > 5 || p.step === p.steps)) {
        this.lastPlain = now;
        this.lastPlainAt = at;
        console.error(line);
      }
    }
  }

  /** A whole line (ends the updating line on a terminal). */
  line(text: string): void {
    if (this.quiet) return;
    if (this.tty) Deno.stderr.writeSync(this.enc.encode(`\r\x1b[2K`));
    console.error(text);
  }
}
