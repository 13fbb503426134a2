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

export class Progress {
  private tty = Deno.stderr.isTerminal();
  private lastPlain = 0;
  private enc = new TextEncoder();

  constructor(private totalEpochs: number, private quiet = false) {}

  /** `remainingImages` counts the training images left in the whole run after this step. */
  step(p: StepProgress, remainingImages: number, lastLoss?: number): void {
    if (this.quiet) return;
    const rate = p.images / Math.max(p.seconds, 1e-9);
    const eta = remainingImages / rate;
    const line = `epoch ${p.epoch}/${this.totalEpochs} step ${p.step}/${p.steps}` +
      (lastLoss !== undefined ? ` loss ${lastLoss.toFixed(4)}` : "") +
      ` ${rate.toFixed(0)} img/s ETA ${formatDuration(eta)}`;
    if (this.tty) {
      Deno.stderr.writeSync(this.enc.encode(`\r\x1b[2K${line}`));
    } else {
      const now = performance.now();
      if (now - this.lastPlain > 5000 || p.step === p.steps) {
        this.lastPlain = now;
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
