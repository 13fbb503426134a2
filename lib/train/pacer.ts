// How the training loop waits on the GPU. It must wait now and then: progress and Ctrl-C should reflect
// work done, not work queued, and wgpu frees finished command buffers only while a wait polls the device
// (platform.md). But a wait that drains the queue leaves the GPU idle until Deno's wait wakes up (it
// polls, then sleeps 10 ms) and the next step is recorded: up to ~10 ms each time, 2% of the time at a
// wait every 500 ms, and more on a fast GPU.
//
// So the loop marks the queue (onSubmittedWorkDone for everything submitted so far) and waits for the
// previous mark, never the newest: while that wait wakes up, the GPU still has the steps since then to
// run. Marks are spaced by measured throughput to about `targetMs` of work each, so the queue holds about
// two of them, however much faster the host records steps than the GPU runs them (spacing by host time
// alone would let a fast host queue seconds of GPU work between waits). Until a rate is known (the first
// epoch's first step, which also compiles, is drained, so its time is its own), or when steps are slow, a
// mark is due at least every 2 * targetMs of host time. A later epoch starts from the rate the last one
// measured (`stepsPerMark`) and drains nothing: the queue is empty then anyway (the trainer's one
// readback at an epoch's end waited for everything), and a drain would idle the GPU once more.

/** A mark the GPU has passed: progress to report. */
export interface Reached {
  /** Steps done (counting a resumed epoch's earlier steps). */
  step: number;
  images: number;
  /** performance.now() when the loop saw it reached. */
  at: number;
}

interface Mark {
  done: PromiseLike<unknown>;
  step: number;
  images: number;
}

export class QueuePacer {
  private pending: Mark | undefined;
  private lastSeen: Reached;
  private lastMarkStep: number;
  private lastMarkAt: number;
  /** Steps per mark from the last measured rate; Infinity until one is measured. */
  private stepsPerMark: number;
  private targetMs: number;
  private clock: () => number;

  /**
   * `markQueue` resolves once the GPU has run everything submitted before the call
   * (`device.queue.onSubmittedWorkDone`); `startStep` steps were done before the loop began. Options:
   * `targetMs` of GPU work per mark (250), the `clock` (performance.now), and `stepsPerMark`, the
   * spacing an earlier pacer measured (`spacing`) on the same work (Infinity: none).
   */
  constructor(
    private markQueue: () => PromiseLike<unknown>,
    startStep: number,
    opts: { targetMs?: number; clock?: () => number; stepsPerMark?: number } = {},
  ) {
    this.targetMs = opts.targetMs ?? 250;
    this.clock = opts.clock ?? (() => performance.now());
    this.stepsPerMark = opts.stepsPerMark ?? Infinity;
    const now = this.clock();
    this.lastSeen = { step: startStep, images: 0, at: now };
    this.lastMarkStep = startStep;
    this.lastMarkAt = now;
  }

  /** Steps the next mark is spaced by (Infinity before a rate is known; for tests and logs). */
  get spacing(): number {
    return this.stepsPerMark;
  }

  /**
   * Call after submitting a step, with the steps and images done once it has run. `drain`: wait for the
   * whole queue (the first epoch's first step, and the epoch's end, so that no wait outlives the loop).
   * Returns the marks reached by this call's wait, oldest first (none when no wait was due).
   */
  async submitted(step: number, images: number, drain: boolean): Promise<Reached[]> {
    const due = drain || step - this.lastMarkStep >= this.stepsPerMark ||
      this.clock() - this.lastMarkAt > 2 * this.targetMs;
    if (!due || step === this.lastSeen.step) return []; // nothing new to wait for
    const mark: Mark = { done: this.markQueue(), step, images };
    this.lastMarkStep = step;
    this.lastMarkAt = this.clock();
    const reached: Reached[] = [];
    if (this.pending) reached.push(await this.reach(this.pending));
    this.pending = undefined;
    if (drain) reached.push(await this.reach(mark));
    else this.pending = mark;
    return reached;
  }

  private async reach(mark: Mark): Promise<Reached> {
    await mark.done;
    const seen: Reached = { step: mark.step, images: mark.images, at: this.clock() };
    const steps = seen.step - this.lastSeen.step, ms = seen.at - this.lastSeen.at;
    if (steps > 0) this.stepsPerMark = Math.max(1, Math.round((this.targetMs * steps) / Math.max(ms, 1e-3)));
    this.lastSeen = seen;
    return seen;
  }
}
