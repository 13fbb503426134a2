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
 * same speed is the best guess). `remainingImages` counts the run's training images after this step.
 */
export function progressLine(
  p: StepProgress,
  totalEpochs: number,
  remainingImages: number,
  place?: PlanPlace,
): string {
  const rate = p.images / Math.max(p.seconds, 1e-9);
  return (place ? `run ${place.index}/${place.count} ` : "") +
    `epoch ${p.epoch}/${totalEpochs} step ${p.step}/${p.steps} ${rate.toFixed(0)} img/s ` +
    `ETA ${formatDuration(remainingImages / rate)}` +
    (place && place.imagesAfter > 0
      ? ` (all runs ${formatDuration((remainingImages + place.imagesAfter) / rate)})`
      : "");
}

export class Progress {
  private tty = Deno.stderr.isTerminal();
  private lastPlain = 0;
  private lastPlainAt = "";
  private enc = new TextEncoder();

  /** Set in a multi-run experiment once the run knows its training images. */
  place?: PlanPlace;

  constructor(private totalEpochs: number, private quiet = false) {}

  /** `remainingImages` counts the training images left in the whole run after this step. */
  step(p: StepProgress, remainingImages: number): void {
    if (this.quiet) return;
    const line = progressLine(p, this.totalEpochs, remainingImages, this.place);
    if (this.tty) {
      Deno.stderr.writeSync(this.enc.encode(`\r\x1b[2K${line}`));
    } else {
      // An epoch's last step can be reported twice (its own mark, then the epoch's end): one line.
      const at = `${p.epoch}/${p.step}`;
      const now = performance.now();
      if (at !== this.lastPlainAt && (now - this.lastPlain > 5000 || p.step === p.steps)) {
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
