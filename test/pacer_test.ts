// The training loop's waits (lib/train/pacer.ts) against a simulated GPU and clock: the host records a
// step in `hostMs`, the GPU runs one in `gpuMs`, and a wait that is not yet satisfied wakes up to 10 ms
// late (Deno polls, then sleeps 10 ms). Checked: a fast host keeps the GPU busy (no idle gap after the
// first step) and the queue short, a slow GPU is waited on every step, a slow host never waits in vain,
// and progress comes in order and ends at the last step.

import { deepStrictEqual, ok } from "node:assert/strict";
import { QueuePacer, type Reached } from "../lib/train/pacer.ts";

const POLL_MS = 10;

/** A wait on the simulated GPU: awaiting it (then()) advances the clock to when it would wake up. */
class SimulatedWait implements PromiseLike<void> {
  constructor(private wake: () => void) {}
  then<A = void, B = never>(
    onDone?: ((v: void) => A | PromiseLike<A>) | null,
    onError?: ((e: unknown) => B | PromiseLike<B>) | null,
  ): PromiseLike<A | B> {
    this.wake();
    return Promise.resolve().then(onDone, onError);
  }
}

interface Simulation {
  /** Progress of each epoch, in order. */
  epochs: Reached[][];
  /** The first epoch's progress. */
  reached: Reached[];
  /** GPU idle time after the first step (waiting for the host to submit). */
  gpuIdleMs: number;
  /** The most GPU work (ms) queued at any submit. */
  maxQueuedMs: number;
  waits: number;
}

/**
 * `epochs` epochs of `steps` steps, as the trainer runs them: the first epoch's first step drains, each
 * epoch ends in a drain (the trainer's readback), and each later epoch's pacer starts from the spacing
 * the last one measured.
 */
async function simulate(
  steps: number,
  hostMs: number,
  gpuMs: number,
  targetMs = 250,
  epochs = 1,
): Promise<Simulation> {
  let now = 0;
  const finish: number[] = []; // finish[k]: when the GPU is done with step k+1 (counting every epoch)
  let gpuIdleMs = 0, maxQueuedMs = 0, waits = 0;
  const markQueue = (): PromiseLike<void> => {
    const upTo = finish.length;
    return new SimulatedWait(() => {
      waits++;
      const done = upTo === 0 ? 0 : finish[upTo - 1];
      if (done > now) now = done + POLL_MS;
    });
  };
  const all: Reached[][] = [];
  let stepsPerMark = Infinity;
  for (let e = 0; e < epochs; e++) {
    const pacer = new QueuePacer(markQueue, 0, { targetMs, clock: () => now, stepsPerMark });
    const reached: Reached[] = [];
    for (let s = 0; s < steps; s++) {
      now += hostMs;
      const prev = finish.length ? finish[finish.length - 1] : now;
      if (finish.length > 0 && now > prev) gpuIdleMs += now - prev;
      finish.push(Math.max(prev, now) + gpuMs);
      maxQueuedMs = Math.max(maxQueuedMs, finish[finish.length - 1] - now);
      const drain = (s === 0 && pacer.spacing === Infinity) || s === steps - 1;
      reached.push(...await pacer.submitted(s + 1, (s + 1) * 4, drain));
    }
    stepsPerMark = pacer.spacing;
    all.push(reached);
  }
  return { epochs: all, reached: all[0], gpuIdleMs, maxQueuedMs, waits };
}

/** Progress in order, ending at the last step; from the first step on when `firstStep` (a drained one). */
function inOrder(r: Reached[], steps: number, firstStep = true): void {
  for (let i = 1; i < r.length; i++) {
    ok(r[i].step > r[i - 1].step && r[i].at >= r[i - 1].at, "progress order");
  }
  if (firstStep) deepStrictEqual(r[0].step, 1, "the first step is reported");
  deepStrictEqual(r[r.length - 1].step, steps, "the last step is reported");
  for (const x of r) deepStrictEqual(x.images, x.step * 4);
}

Deno.test("pacer: a host faster than the GPU never lets it idle, and the queue stays near two marks", async () => {
  // H200-like: 1 ms to record a step, 10 ms to run it; 2000 steps (20 s of GPU work).
  const sim = await simulate(2000, 1, 10);
  inOrder(sim.reached, 2000);
  // The one gap: the first step drains the queue (its wait wakes up late), then the second is recorded.
  deepStrictEqual(sim.gpuIdleMs, POLL_MS + 1, "GPU idle time");
  ok(sim.maxQueuedMs <= 3 * 250, `queued up to ${sim.maxQueuedMs} ms of GPU work`);
  // About one report per 250 ms of GPU work.
  ok(sim.reached.length >= 60 && sim.reached.length <= 100, `${sim.reached.length} reports in 20 s`);
});

Deno.test("pacer: a draining wait would idle the GPU (the cost the pacer removes)", async () => {
  // The same loop with every mark drained, as the trainer did before: the GPU idles at every wait.
  let now = 0, idle = 0, last = 0;
  for (let s = 0; s < 200; s++) {
    now += 1;
    if (now > last && s > 0) idle += now - last;
    last = Math.max(last, now) + 10;
    if (s % 25 === 24) now = last + POLL_MS; // drain
  }
  deepStrictEqual(idle, 7 * (POLL_MS + 1), "a late wake-up and a recording at each of 7 waits");
  // The pacer: only the epoch's first step drains.
  const sim = await simulate(200, 1, 10);
  deepStrictEqual(sim.gpuIdleMs, POLL_MS + 1, "the pacer's GPU idle time");
});

Deno.test("pacer: a later epoch starts from the last one's rate, so the GPU idles once per epoch, at its end", async () => {
  // Three H200-like epochs: the first step of the first epoch drains (it compiles; its time is its own),
  // every epoch ends in the trainer's readback; nothing else waits for an empty queue.
  const sim = await simulate(235, 1, 10, 250, 3);
  sim.epochs.forEach((reached, e) => inOrder(reached, 235, e === 0));
  // Progress still comes about every 250 ms of GPU work from a later epoch's start.
  ok(sim.epochs[1][0].step <= 30, `epoch 2's first report at step ${sim.epochs[1][0].step}`);
  deepStrictEqual(sim.gpuIdleMs, 3 * (POLL_MS + 1), "the first step's drain and two epoch ends");
  ok(sim.maxQueuedMs <= 3 * 250, `queued up to ${sim.maxQueuedMs} ms of GPU work`);
});

Deno.test("pacer: a GPU far slower than the host (llvmpipe) is waited on at every step", async () => {
  // 7 ms to record, 5 s to run: one mark a step, at most two steps queued.
  const sim = await simulate(12, 7, 5000);
  inOrder(sim.reached, 12);
  deepStrictEqual(sim.reached.map((r) => r.step), Array.from({ length: 12 }, (_, i) => i + 1));
  ok(sim.maxQueuedMs <= 2 * 5000, `queued up to ${sim.maxQueuedMs} ms`);
});

Deno.test("pacer: a host slower than the GPU reports at least every 2 x target and ends at the last step", async () => {
  const sim = await simulate(300, 5, 1, 100);
  inOrder(sim.reached, 300);
  for (let i = 1; i < sim.reached.length; i++) {
    ok(sim.reached[i].at - sim.reached[i - 1].at <= 2 * 100 + 2 * 5 + POLL_MS, "a report gap");
  }
});

Deno.test("pacer: a resumed epoch counts from its start step", async () => {
  let now = 0;
  const marks: number[] = [];
  const pacer = new QueuePacer(
    () => {
      marks.push(now);
      return Promise.resolve();
    },
    40,
    { clock: () => now },
  );
  now += 5;
  const first = await pacer.submitted(41, 4, true);
  deepStrictEqual(first.map((r) => r.step), [41]);
  // One step in 5 ms: 50 steps make 250 ms.
  deepStrictEqual(pacer.spacing, 50);
});

Deno.test("pacer: a drain right after a drain waits for nothing and reports nothing twice", async () => {
  let marks = 0;
  const pacer = new QueuePacer(() => {
    marks++;
    return Promise.resolve();
  }, 0);
  deepStrictEqual((await pacer.submitted(1, 4, true)).map((r) => r.step), [1]);
  deepStrictEqual(await pacer.submitted(1, 4, true), []);
  deepStrictEqual(marks, 1);
});
