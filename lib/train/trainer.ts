// The epoch loop: shuffled batches gathered on the GPU, one recorded training step each, loss and
// accuracy kept on the GPU (one readback per epoch), and evaluation from one readback of all logits.

import type { DeviceSplit } from "../data/device.ts";
import { batchRanges, cropOffsets, epochOrder } from "../data/batches.ts";
import type { Gpu } from "../gpu/device.ts";
import { asDeviceFault, throwIfFaulted } from "../gpu/fault.ts";
import { GpuStopwatch, Recorder } from "../gpu/recorder.ts";
import { type ReadRegion, readRegions, Tensor, Workspace } from "../gpu/tensor.ts";
import { STATS_PER_STEP } from "../mda/head.ts";
import { evaluateLogits } from "../mda/metrics.ts";
import type { Model } from "../model.ts";
import { Rng, type RngState } from "../rng.ts";
import { QueuePacer, type Reached } from "./pacer.ts";
import type { EvalMetrics, HistoryRow } from "../types.ts";

/** The largest batch the encoder runs at once; evaluation of bigger batches is chunked (same result). */
export const EVAL_CHUNK = 256;

export interface TrainOptions {
  batchSize: number;
  /** Seed of the data-order (and augmentation) streams. */
  seed: number;
  augment: boolean;
}

export interface StepProgress {
  epoch: number;
  step: number;
  steps: number;
  images: number;
  seconds: number;
}

/** Where the data streams stand at the start of an epoch: enough to replay that epoch exactly. */
export interface DataStreamState {
  order: RngState;
  crop: RngState;
}

export interface EpochResult {
  /** Sample-weighted mean of the batch losses, as the notebook prints it. */
  trainLoss: number;
  trainAccuracy: number;
  stepsDone: number;
  /** True when stopped early by `shouldStop` (the epoch is incomplete). */
  interrupted: boolean;
  /** Per-step [loss, correct] pairs of the steps done so far (for a mid-epoch checkpoint; the label
   * counts are checked, all zero, and not kept). */
  stats: number[];
  /** The bytes of the `read` regions, in order (undefined when interrupted). */
  read?: ArrayBuffer[];
  /** With `evaluate`, the test split's metrics after the whole epoch (undefined when interrupted). */
  evaluation?: EvalMetrics;
  /** The evaluation's GPU time in seconds (timestamp queries: undefined where the adapter has none). */
  evalSeconds?: number;
}

/** The history.jsonl row of a whole epoch: its training stats, the evaluation after it, and its times. */
export function historyRow(
  epoch: number,
  result: EpochResult,
  m: EvalMetrics,
  seconds: number,
  evalSeconds: number | undefined,
): HistoryRow {
  return {
    epoch,
    train_loss: result.trainLoss,
    train_accuracy: result.trainAccuracy,
    test_accuracy: m.accuracy,
    test_nll: m.nll,
    test_ece: m.ece10,
    test_ece15: m.ece15,
    test_brier: m.brier,
    seconds,
    ...(evalSeconds === undefined ? {} : { eval_seconds: evalSeconds }),
  };
}

export class NonFiniteLossError extends Error {
  constructor(readonly epoch: number, readonly step: number, value: number) {
    super(
      `training loss became ${value} at epoch ${epoch}, step ${step}; stopping (the last checkpoint is intact)`,
    );
  }
}

export class LabelOutOfRangeError extends Error {
  constructor(readonly epoch: number, readonly step: number, readonly count: number, numClasses: number) {
    super(
      `${count} label${count === 1 ? "" : "s"} outside 0..${
        numClasses - 1
      } in the batch of epoch ${epoch}, step ${step}; stopping (the last checkpoint is intact)`,
    );
  }
}

/** Where a device fault was noticed, for its error (the fault itself may be a few steps older). */
function noticedAt(epoch: number, step: number, steps: number): string {
  return step ? `noticed at epoch ${epoch}, step ${step} of ${steps}` : `noticed as epoch ${epoch} began`;
}

/** What the eval-mode network gives per image (`width` values) and how it is recorded. */
interface Collected {
  width: number;
  f: (rec: Recorder, x: Tensor) => Tensor;
}

/** The stream a seed's epoch shuffles come from (one `epochOrder` per epoch, in order). */
export function shuffleStream(seed: number): Rng {
  return new Rng(seed).fork(10);
}

export interface EpochOptions {
  startStep?: number;
  priorStats?: number[];
  onProgress?: (p: StepProgress) => void;
  shouldStop?: () => boolean;
  /** GPU data to read back with the epoch's stats, once the epoch is whole (a checkpoint's tensors:
   * ParamStore.snapshot), in the same wait; returned as `read`. */
  read?: readonly ReadRegion[];
  /** Evaluate on the test split once the epoch is whole, queued behind its last step and read back
   * in the same wait (`evaluation`, as `evaluate()` would give it). */
  evaluate?: boolean;
}

export class Trainer {
  private orderRng: Rng;
  private cropRng: Rng;
  private ws: Workspace;
  /** The progress pacer's spacing measured in the last epoch (Infinity before one has run). */
  private stepsPerMark = Infinity;
  /** Times each epoch's evaluation on the GPU (undefined without timestamp queries). */
  private readonly evalClock: GpuStopwatch | undefined;

  constructor(
    readonly gpu: Gpu,
    readonly model: Model,
    /** Undefined for evaluation-only use (deno task evaluate). */
    readonly train: DeviceSplit | undefined,
    readonly test: DeviceSplit,
    readonly testLabels: Uint8Array,
    readonly options: TrainOptions,
  ) {
    this.orderRng = shuffleStream(options.seed);
    this.cropRng = new Rng(options.seed).fork(11);
    this.ws = new Workspace(gpu, "trainer");
    this.evalClock = GpuStopwatch.available(gpu) ? new GpuStopwatch(gpu) : undefined;
  }

  private get trainSplit(): DeviceSplit {
    if (!this.train) throw new Error("this trainer was built for evaluation only (no training split)");
    return this.train;
  }

  get stepsPerEpoch(): number {
    return batchRanges(this.trainSplit.count, this.options.batchSize).length;
  }

  streamState(): DataStreamState {
    return { order: this.orderRng.getState(), crop: this.cropRng.getState() };
  }

  setStreamState(s: DataStreamState): void {
    this.orderRng.setState(s.order);
    this.cropRng.setState(s.crop);
  }

  /**
   * Trains one epoch from `startStep` (non-zero when resuming inside an epoch, with the earlier steps'
   * stats in `priorStats`). The data streams must stand at this epoch's start; they advance past it.
   * A device that fails (lost, or an error no scope caught: fault.ts) ends it with a GpuFaultError that says
   * where it was noticed; nothing of the epoch is returned.
   */
  async trainEpoch(epoch: number, opts: EpochOptions = {}): Promise<EpochResult> {
    const at = { step: opts.startStep ?? 0 };
    try {
      return await this.runEpoch(epoch, opts, at);
    } catch (e) {
      if (e instanceof NonFiniteLossError || e instanceof LabelOutOfRangeError) throw e; // read back whole
      // Whatever failed on a device with a fault (a lost device fails calls with words that do not say so,
      // differently in each implementation) is that fault, with where it was noticed (fault.ts).
      throw await asDeviceFault(e, this.gpu.device, noticedAt(epoch, at.step, this.stepsPerEpoch));
    }
  }

  /** trainEpoch's work; `at.step` follows the steps submitted, for an error's message. */
  private async runEpoch(epoch: number, opts: EpochOptions, at: { step: number }): Promise<EpochResult> {
    const { batchSize, augment } = this.options;
    const train = this.trainSplit;
    const ranges = batchRanges(train.count, batchSize);
    const order = epochOrder(this.orderRng, train.count);
    train.setOrder(order, augment ? cropOffsets(this.cropRng, train.count) : undefined);

    const startStep = opts.startStep ?? 0;
    // STATS_PER_STEP values per step on the GPU: [mean loss, correct, labels out of range]. The earlier
    // steps' [loss, correct] pairs of a resumed epoch go back in with a count of 0 (they were checked).
    const stats = this.ws.tensor("stats", [STATS_PER_STEP * ranges.length]);
    const prior = new Float32Array(STATS_PER_STEP * ranges.length);
    for (let s = 0; s < startStep && opts.priorStats; s++) {
      prior[STATS_PER_STEP * s] = opts.priorStats[2 * s];
      prior[STATS_PER_STEP * s + 1] = opts.priorStats[2 * s + 1];
    }
    this.gpu.device.queue.writeBuffer(stats.buffer, 0, prior);

    const rec = new Recorder(this.gpu);
    const t0 = performance.now();
    // Waits on the GPU now and then, for progress and Ctrl-C, without draining its queue (pacer.ts). The
    // rate measured in the previous epoch spaces the marks from the first step on, so only the first
    // epoch of a process drains its first step (which also compiles the pipelines).
    const pacer = new QueuePacer(() => this.gpu.device.queue.onSubmittedWorkDone(), startStep, {
      stepsPerMark: this.stepsPerMark,
    });
    const report = (reached: Reached[]) => {
      for (const r of reached) {
        opts.onProgress?.({
          epoch,
          step: r.step,
          steps: ranges.length,
          images: r.images,
          seconds: (r.at - t0) / 1000,
        });
      }
    };
    let step = startStep;
    let images = 0;
    let interrupted = false;
    for (; step < ranges.length; step++) {
      if (opts.shouldStop?.()) {
        interrupted = true;
        break;
      }
      const { start, size } = ranges[step];
      const { x, labels } = train.gather(rec, start, size);
      this.model.trainStep(rec, x, labels, stats, step);
      rec.submit();
      at.step = step + 1;
      images += size;
      report(await pacer.submitted(step + 1, images, step === startStep && pacer.spacing === Infinity));
      // A lost device drops the steps without a word (fault.ts): stop at the first sign of it.
      throwIfFaulted(this.gpu.device);
    }
    // The epoch's end is one wait: the last mark (when the steps are done, for progress) is taken now and
    // not awaited; the evaluation is queued behind the steps, between the two timestamps of its GPU time;
    // one readback brings the stats, the evaluation's logits and time, and whatever the caller reads with
    // them. Each wait idles the GPU until Deno's poll wakes up and the host records more work.
    const lastMark = step > startStep ? pacer.submitted(step, images, true) : Promise.resolve([]);
    const evaluate = opts.evaluate && !interrupted;
    const clock = evaluate ? this.evalClock : undefined;
    if (clock) clock.start(rec);
    const logits = evaluate ? this.recordCollect(rec, this.test, this.test.count, this.logitsOf) : undefined;
    if (clock) clock.stop(rec);
    rec.submit();
    lastMark.then(undefined, () => {}); // awaited below; a failed readback must not leave it unhandled
    const [statsBytes, ...read] = await readRegions(this.gpu, [
      { buffer: stats.buffer, offset: 0, bytes: 4 * STATS_PER_STEP * ranges.length },
      ...(logits ? [logits] : []),
      ...(clock ? [clock.region()] : []),
      ...(interrupted ? [] : opts.read ?? []),
    ]);
    const logitsBytes = logits ? read.shift()! : undefined;
    const clockBytes = clock ? read.shift()! : undefined;
    rec.destroy();
    const reached = await lastMark;
    report(reached);
    this.stepsPerMark = pacer.spacing;
    const values = new Float32Array(statsBytes);
    let lossSum = 0, correct = 0, n = 0;
    const pairs: number[] = [];
    for (let s = 0; s < step; s++) {
      const [loss, right, badLabels] = values.subarray(STATS_PER_STEP * s, STATS_PER_STEP * (s + 1));
      if (badLabels !== 0) {
        throw new LabelOutOfRangeError(epoch, s + 1, badLabels, this.model.config.numClasses);
      }
      if (!Number.isFinite(loss)) throw new NonFiniteLossError(epoch, s + 1, loss);
      lossSum += loss * ranges[s].size;
      correct += right;
      n += ranges[s].size;
      pairs.push(loss, right);
    }
    return {
      trainLoss: n ? lossSum / n : NaN,
      trainAccuracy: n ? correct / n : NaN,
      stepsDone: step,
      interrupted,
      stats: pairs,
      read: interrupted ? undefined : read,
      evaluation: logitsBytes ? this.metrics(new Float32Array(logitsBytes)) : undefined,
      evalSeconds: clockBytes ? clock!.seconds(clockBytes) : undefined,
    };
  }

  /** Eval-mode logits [n, C] for the first `n` images of a split in file order (one readback). */
  async logits(split: DeviceSplit, n = split.count): Promise<Float32Array> {
    return await this.collect(split, n, this.logitsOf);
  }

  /** Eval-mode embeddings [n, D] for the first `n` images of a split in file order (one readback). */
  async embeddings(split: DeviceSplit, n: number): Promise<Float32Array> {
    return await this.collect(split, n, this.embeddingsOf);
  }

  private get logitsOf(): Collected {
    return { width: this.model.config.numClasses, f: (rec, x) => this.model.logits(rec, x) };
  }

  private get embeddingsOf(): Collected {
    return { width: this.model.config.latentDim, f: (rec, x) => this.model.embed(rec, x) };
  }

  private async collect(split: DeviceSplit, n: number, what: Collected): Promise<Float32Array> {
    const rec = new Recorder(this.gpu);
    const region = this.recordCollect(rec, split, n, what);
    rec.submit();
    // The readback waits for the chunks: no separate wait before it (each costs >= ~10 ms in Deno).
    const [bytes] = await readRegions(this.gpu, [region]);
    rec.destroy();
    return new Float32Array(bytes);
  }

  /** Records `what` of the first `n` images of a split, chunk by chunk; returns where the rows land. */
  private recordCollect(rec: Recorder, split: DeviceSplit, n: number, what: Collected): ReadRegion {
    const { width, f } = what;
    split.setOrder(identity(split.count));
    const out = this.ws.tensor(`collect${width}`, [n, width]);
    for (let start = 0; start < n; start += EVAL_CHUNK) {
      const size = Math.min(EVAL_CHUNK, n - start);
      const { x } = split.gather(rec, start, size);
      const y = f(rec, x);
      rec.copy(y, new Tensor(out.buffer, [size, width], start * width * 4), size * width * 4);
      rec.submit();
    }
    return { buffer: out.buffer, offset: 0, bytes: n * width * 4 };
  }

  private metrics(logits: Float32Array): EvalMetrics {
    return evaluateLogits(logits, this.testLabels.subarray(0, this.test.count), this.model.config.numClasses);
  }

  async evaluate(): Promise<EvalMetrics> {
    return this.metrics(await this.logits(this.test));
  }

  destroy(): void {
    this.ws.destroy();
    this.evalClock?.destroy();
  }
}

const identities = new Map<number, Uint32Array>();
function identity(n: number): Uint32Array {
  let a = identities.get(n);
  if (!a) identities.set(n, a = Uint32Array.from({ length: n }, (_, i) => i));
  return a;
}
