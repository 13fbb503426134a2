// The epoch loop: shuffled batches gathered on the GPU, one recorded training step each, loss and
// accuracy kept on the GPU (one readback per epoch), and evaluation from one readback of all logits.

import type { DeviceSplit } from "../data/device.ts";
import { batchRanges, cropOffsets, epochOrder } from "../data/batches.ts";
import type { Gpu } from "../gpu/device.ts";
import { Recorder } from "../gpu/recorder.ts";
import { readBytes, type ReadRegion, readRegions, Tensor, Workspace } from "../gpu/tensor.ts";
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
}

/** The history.jsonl row of a whole epoch: its training stats, the evaluation after it, and its times. */
export function historyRow(
  epoch: number,
  result: EpochResult,
  m: EvalMetrics,
  seconds: number,
  evalSeconds: number,
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
    eval_seconds: evalSeconds,
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

/** The stream a seed's epoch shuffles come from (one `epochOrder` per epoch, in order). */
export function shuffleStream(seed: number): Rng {
  return new Rng(seed).fork(10);
}

export class Trainer {
  private orderRng: Rng;
  private cropRng: Rng;
  private ws: Workspace;

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
   */
  async trainEpoch(
    epoch: number,
    opts: {
      startStep?: number;
      priorStats?: number[];
      onProgress?: (p: StepProgress) => void;
      shouldStop?: () => boolean;
      /** GPU data to read back with the epoch's stats, once the epoch is whole (a checkpoint's tensors:
       * ParamStore.snapshot), in the same wait; returned as `read`. */
      read?: readonly ReadRegion[];
    } = {},
  ): Promise<EpochResult> {
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
    // Waits on the GPU now and then, for progress and Ctrl-C, without draining its queue (pacer.ts).
    const pacer = new QueuePacer(() => this.gpu.device.queue.onSubmittedWorkDone(), startStep);
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
      images += size;
      // The epoch's first step drains the queue; its last is drained by the readback below.
      report(await pacer.submitted(step + 1, images, step === startStep));
    }
    // One readback (one wait) for the stats and whatever the caller reads with them; it waits for the
    // last steps too. Then the pacer's last marks, reached by now, report the epoch's end.
    rec.submit();
    const [statsBytes, ...read] = await readRegions(this.gpu, [
      { buffer: stats.buffer, offset: 0, bytes: 4 * STATS_PER_STEP * ranges.length },
      ...(interrupted ? [] : opts.read ?? []),
    ]);
    rec.destroy();
    if (step > startStep) report(await pacer.submitted(step, images, true));
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
    };
  }

  /** Eval-mode logits [n, C] for the first `n` images of a split in file order (one readback). */
  async logits(split: DeviceSplit, n = split.count): Promise<Float32Array> {
    return await this.collect(split, n, this.model.config.numClasses, (rec, x) => this.model.logits(rec, x));
  }

  /** Eval-mode embeddings [n, D] for the first `n` images of a split in file order (one readback). */
  async embeddings(split: DeviceSplit, n: number): Promise<Float32Array> {
    return await this.collect(split, n, this.model.config.latentDim, (rec, x) => this.model.embed(rec, x));
  }

  private async collect(
    split: DeviceSplit,
    n: number,
    width: number,
    f: (rec: Recorder, x: Tensor) => Tensor,
  ): Promise<Float32Array> {
    split.setOrder(identity(split.count));
    const out = this.ws.tensor(`collect${width}`, [n, width]);
    const rec = new Recorder(this.gpu);
    for (let start = 0; start < n; start += EVAL_CHUNK) {
      const size = Math.min(EVAL_CHUNK, n - start);
      const { x } = split.gather(rec, start, size);
      const y = f(rec, x);
      rec.copy(y, new Tensor(out.buffer, [size, width], start * width * 4), size * width * 4);
      rec.submit();
    }
    // The readback waits for the chunks: no separate wait before it (each costs >= ~10 ms in Deno).
    const bytes = await readBytes(this.gpu, out.buffer, 0, n * width * 4);
    rec.destroy();
    return new Float32Array(bytes);
  }

  async evaluate(): Promise<EvalMetrics> {
    const C = this.model.config.numClasses;
    const logits = await this.logits(this.test);
    return evaluateLogits(logits, this.testLabels.subarray(0, this.test.count), C);
  }

  destroy(): void {
    this.ws.destroy();
  }
}

const identities = new Map<number, Uint32Array>();
function identity(n: number): Uint32Array {
  let a = identities.get(n);
  if (!a) identities.set(n, a = Uint32Array.from({ length: n }, (_, i) => i));
  return a;
}
