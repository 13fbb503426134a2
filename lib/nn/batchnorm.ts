// BatchNorm2d (PyTorch semantics, dnll.md §2), optionally fused with the ReLU that follows it.
//
// Train mode normalises with the batch mean and biased variance over (N, H, W) and updates the running
// statistics with the unbiased variance; eval mode normalises with the running statistics. The kernels
// and how they cut the work are described in lib/shaders/batchnorm.wgsl. A forward records 3 dispatches
// in train mode (plane moments, per-channel fold, normalise) and 2 in eval mode; a backward records 3
// (plane gradient sums, per-channel fold writing dgamma and dbeta, input gradient), 2 without dx.
//
// Saved for backward: the input x (kept alive by the layer before, which owns it) and the per-channel
// (mean, invstd, scale, beta). The fused ReLU's mask is recomputed from x, so y need not survive.
//
// Two kernel variants (lib/gpu/reduction.ts) with the same dispatch structure: "serial" (batchnorm.wgsl,
// one invocation per 4 planes, for llvmpipe and lavapipe) and "tree" (batchnorm_tree.wgsl, per-(chunk,
// channel) workgroup reductions and one vec4 per invocation, for GPUs). Which one a layer runs, and the
// tree's chunk size, is a `BatchNormKernel`: the model's default at first, then on a GPU what
// lib/nn/batchnorm_tune.ts timed fastest for the layer's shape (recorded in a run's manifest and resume
// state by its name, e.g. `tree(chunk=4096)`).

import type { Gpu } from "../gpu/device.ts";
import type { Counter, ParamStore, ParamView } from "../gpu/params.ts";
import { loadWgsl, pipeline } from "../gpu/pipelines.ts";
import { f32, grid1d, type Recorder } from "../gpu/recorder.ts";
import { type Tensor, Workspace } from "../gpu/tensor.ts";
import { type ReductionVariant, reductionVariant, withTreeSum } from "../gpu/reduction.ts";
import type { Layer } from "./layer.ts";
import { vec4Binding } from "./relu.ts";

const WG = 64;
/** Workgroup size of batchnorm_tree.wgsl's reductions and element-wise passes. */
const TREE_WG = 256;
/** Values per workgroup the tree variant aims for (at least; whole samples): 16+ per invocation. */
export const CHUNK_ELEMENTS = 4096;

/** The kernels a BatchNorm2d runs: the variant and, for the tree, the values per workgroup it aims for. */
export interface BatchNormKernel {
  variant: ReductionVariant;
  /** Tree variant: chunks of whole samples, at least this many values (ignored by the serial variant). */
  chunkElements: number;
}

/** `serial` or `tree(chunk=N)`: what the tuner caches and a run records; parses back with parseBatchNormKernel. */
export function batchNormKernelName(k: BatchNormKernel): string {
  return k.variant === "serial" ? "serial" : `tree(chunk=${k.chunkElements})`;
}

/** The kernel a name stands for; throws naming the name and the expected forms. */
export function parseBatchNormKernel(name: string): BatchNormKernel {
  if (name === "serial") return { variant: "serial", chunkElements: CHUNK_ELEMENTS };
  const m = /^tree\(chunk=([1-9][0-9]*)\)$/.exec(name);
  if (!m) throw new Error(`BatchNorm kernel "${name}": expected serial or tree(chunk=N) with N >= 1`);
  return { variant: "tree", chunkElements: Number(m[1]) };
}

/**
 * How the tree variant cuts each channel of an [n, C, H, W] input (hw = H*W values a sample): `chunk`
 * whole samples per workgroup, at least `chunkElements` values where the batch allows, `chunks` per channel.
 */
export function treeChunking(
  n: number,
  hw: number,
  chunkElements: number,
): { chunk: number; chunks: number } {
  const chunk = Math.min(n, Math.max(1, Math.ceil(chunkElements / hw)));
  return { chunk, chunks: Math.ceil(n / chunk) };
}

export interface BatchNormOptions {
  /** Fuse the ReLU that follows (default false). */
  relu?: boolean;
  /** Kernel variant; default: serial on software adapters, tree on GPUs (lib/gpu/reduction.ts). */
  variant?: ReductionVariant;
  /** Tree variant: chunks of whole samples, at least this many values (default 4096; tests make it small). */
  chunkElements?: number;
}

export class BatchNorm2d implements Layer {
  readonly weight: ParamView;
  readonly bias: ParamView;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly numBatchesTracked: Counter;
  readonly relu: boolean;
  private kernel: BatchNormKernel;
  readonly eps = 1e-5;
  readonly momentum = 0.1;
  private ws: Workspace;
  private saved?: { x: Tensor; batchStats: boolean };

  constructor(
    private store: ParamStore,
    readonly name: string,
    readonly channels: number,
    opts: BatchNormOptions = {},
  ) {
    if (!Number.isInteger(channels) || channels < 1) {
      throw new Error(`BatchNorm2d ${name}: channels must be a positive integer, got ${channels}`);
    }
    this.relu = opts.relu ?? false;
    this.kernel = this.checkKernel({
      variant: reductionVariant(store.gpu, opts.variant, `BatchNorm2d ${name}`),
      chunkElements: opts.chunkElements ?? CHUNK_ELEMENTS,
    });
    this.weight = store.add(`${name}.weight`, [channels], new Float32Array(channels).fill(1));
    this.bias = store.add(`${name}.bias`, [channels], new Float32Array(channels));
    this.runningMean = store.addState(`${name}.running_mean`, [channels], new Float32Array(channels));
    this.runningVar = store.addState(`${name}.running_var`, [channels], new Float32Array(channels).fill(1));
    this.numBatchesTracked = store.addCounter(`${name}.num_batches_tracked`);
    this.ws = new Workspace(store.gpu, name);
  }

  get variant(): ReductionVariant {
    return this.kernel.variant;
  }

  get chunkElements(): number {
    return this.kernel.chunkElements;
  }

  /** The kernels this layer runs (a copy). */
  get kernels(): BatchNormKernel {
    return { ...this.kernel };
  }

  /** Runs `k` from the next recorded pass on (a tuner's or a resumed run's choice). */
  setKernels(k: BatchNormKernel): void {
    this.kernel = this.checkKernel({ ...k });
  }

  /** Frees the workspace buffers (a scratch layer's, after tuning); a later pass allocates them anew. */
  releaseWorkspace(): void {
    this.ws.destroy();
  }

  private checkKernel(k: BatchNormKernel): BatchNormKernel {
    reductionVariant(this.store.gpu, k.variant, `BatchNorm2d ${this.name}`);
    if (!Number.isInteger(k.chunkElements) || k.chunkElements < 1) {
      throw new Error(
        `BatchNorm2d ${this.name}: chunkElements must be a positive integer, got ${k.chunkElements}`,
      );
    }
    return k;
  }

  outputShape(inShape: readonly number[]): number[] {
    if (inShape.length !== 3 || inShape[0] !== this.channels) {
      throw new Error(
        `BatchNorm2d ${this.name}: input shape [${inShape}], expected [${this.channels}, H, W]`,
      );
    }
    return [...inShape];
  }

  forward(rec: Recorder, x: Tensor, training: boolean): Tensor {
    const [n, c, h, w] = this.checkInput(x, "input");
    const gpu = this.store.gpu;
    const hw = h * w;
    const planes = n * c;
    if (training && n * hw < 2) {
      throw new Error(
        `BatchNorm2d ${this.name}: training needs more than 1 value per channel, got input [${x.shape}]`,
      );
    }
    const stats = this.ws.tensor("stats", [c, 4]);
    const y = this.ws.tensor("y", x.shape);
    if (this.variant === "tree") {
      this.forwardTree(rec, x, y, stats, training);
      this.saved = { x, batchStats: training };
      return y;
    }
    const channelParams = [n, c, hw, training ? 1 : 0, f32(this.eps), f32(this.momentum)];
    const quadParams = [planes, c, hw];
    const channelGrid = grid1d(c, WG);
    const quadGrid = grid1d(Math.ceil(planes / 4), WG);
    const xb = vec4Binding(x, `${this.name} input`);

    if (training) {
      const moments = this.ws.tensor("planes", [planes, 2]);
      rec.dispatch(bnPipeline(gpu, "bn_plane_stats"), quadParams, [xb, moments], quadGrid);
      rec.dispatch(
        bnPipeline(gpu, "bn_finalize_train"),
        channelParams,
        [
          moments,
          this.store.param(this.weight),
          this.store.param(this.bias),
          this.runningMean,
          this.runningVar,
          stats,
        ],
        channelGrid,
      );
      this.numBatchesTracked.value += 1;
    } else {
      rec.dispatch(
        bnPipeline(gpu, "bn_finalize_eval"),
        channelParams,
        [
          this.store.param(this.weight),
          this.store.param(this.bias),
          this.runningMean,
          this.runningVar,
          stats,
        ],
        channelGrid,
      );
    }
    rec.dispatch(
      bnPipeline(gpu, "bn_apply", this.relu),
      quadParams,
      [xb, stats, vec4Binding(y, `${this.name} output`)],
      quadGrid,
    );
    this.saved = { x, batchStats: training };
    return y;
  }

  backward(rec: Recorder, dy: Tensor, needInputGrad: boolean): Tensor | undefined {
    if (!this.saved) throw new Error(`BatchNorm2d ${this.name}: backward before forward`);
    const { x, batchStats } = this.saved;
    if (dy.shape.join(",") !== x.shape.join(",")) {
      throw new Error(`BatchNorm2d ${this.name}: dy has shape [${dy.shape}], expected [${x.shape}]`);
    }
    if (this.variant === "tree") return this.backwardTree(rec, x, dy, batchStats, needInputGrad);
    const [n, c, h, w] = x.shape;
    const gpu = this.store.gpu;
    const hw = h * w;
    const planes = n * c;
    const stats = this.ws.tensor("stats", [c, 4]);
    const sums = this.ws.tensor("planes", [planes, 2]);
    const coef = this.ws.tensor("coef", [c, 2]);
    const quadParams = [planes, c, hw];
    const quadGrid = grid1d(Math.ceil(planes / 4), WG);
    const xb = vec4Binding(x, `${this.name} saved input`);
    const dyb = vec4Binding(dy, `${this.name} dy`);

    rec.dispatch(
      bnPipeline(gpu, "bn_plane_grad_sums", this.relu),
      quadParams,
      [xb, stats, dyb, sums],
      quadGrid,
    );
    rec.dispatch(
      bnPipeline(gpu, "bn_finalize_grad"),
      [n, c, hw, batchStats ? 1 : 0, f32(this.eps), f32(this.momentum)],
      [sums, stats, this.store.grad(this.weight), this.store.grad(this.bias), coef],
      grid1d(c, WG),
    );
    if (!needInputGrad) return undefined;
    const dx = this.ws.tensor("dx", x.shape);
    rec.dispatch(
      bnPipeline(gpu, "bn_input_grad", this.relu),
      quadParams,
      [xb, stats, dyb, coef, vec4Binding(dx, `${this.name} dx`)],
      quadGrid,
    );
    return dx;
  }

  private chunking(n: number, c: number, hw: number): { chunk: number; chunks: number } {
    const { chunk, chunks } = treeChunking(n, hw, this.chunkElements);
    if (chunks > 65535 || c > 65535) {
      throw new Error(`BatchNorm2d ${this.name}: ${chunks} chunks x ${c} channels exceed one dispatch grid`);
    }
    return { chunk, chunks };
  }

  private forwardTree(rec: Recorder, x: Tensor, y: Tensor, stats: Tensor, training: boolean): void {
    const [n, c, h, w] = x.shape;
    const gpu = this.store.gpu;
    const hw = h * w;
    const { chunk, chunks } = this.chunking(n, c, hw);
    const chunkParams = [n, c, hw, chunk, chunks, training ? 1 : 0, f32(this.eps), f32(this.momentum)];
    const weights = [this.store.param(this.weight), this.store.param(this.bias)];
    if (training) {
      const moments = this.ws.tensor("chunks", [c * chunks, 2]);
      rec.dispatch(treePipeline(gpu, "bn_chunk_stats"), chunkParams, [x, moments], [chunks, c, 1]);
      rec.dispatch(
        treePipeline(gpu, "bn_chunk_finalize_train"),
        chunkParams,
        [moments, ...weights, this.runningMean, this.runningVar, stats],
        grid1d(c, WG),
      );
      this.numBatchesTracked.value += 1;
    } else {
      // Per channel, nothing to reduce: batchnorm.wgsl's kernel, with its ChannelParams.
      rec.dispatch(
        bnPipeline(gpu, "bn_finalize_eval"),
        [n, c, hw, 0, f32(this.eps), f32(this.momentum)],
        [...weights, this.runningMean, this.runningVar, stats],
        grid1d(c, WG),
      );
    }
    const size = x.size;
    rec.dispatch(
      treePipeline(gpu, "bn_apply_elements", this.relu),
      [Math.ceil(size / 4), c, hw],
      [vec4Binding(x, `${this.name} input`), stats, vec4Binding(y, `${this.name} output`)],
      grid1d(Math.ceil(size / 4), TREE_WG),
    );
  }

  private backwardTree(
    rec: Recorder,
    x: Tensor,
    dy: Tensor,
    batchStats: boolean,
    needInputGrad: boolean,
  ): Tensor | undefined {
    const [n, c, h, w] = x.shape;
    const gpu = this.store.gpu;
    const hw = h * w;
    const { chunk, chunks } = this.chunking(n, c, hw);
    const stats = this.ws.tensor("stats", [c, 4]);
    const sums = this.ws.tensor("chunks", [c * chunks, 2]);
    const coef = this.ws.tensor("coef", [c, 2]);
    const chunkParams = [n, c, hw, chunk, chunks, batchStats ? 1 : 0, f32(this.eps), f32(this.momentum)];
    rec.dispatch(
      treePipeline(gpu, "bn_chunk_grad_sums", this.relu),
      chunkParams,
      [x, stats, dy, sums],
      [chunks, c, 1],
    );
    rec.dispatch(
      treePipeline(gpu, "bn_chunk_finalize_grad"),
      chunkParams,
      [sums, stats, this.store.grad(this.weight), this.store.grad(this.bias), coef],
      grid1d(c, WG),
    );
    if (!needInputGrad) return undefined;
    const dx = this.ws.tensor("dx", x.shape);
    const vec4s = Math.ceil(x.size / 4);
    rec.dispatch(
      treePipeline(gpu, "bn_input_grad_elements", this.relu),
      [vec4s, c, hw],
      [
        vec4Binding(x, `${this.name} saved input`),
        stats,
        vec4Binding(dy, `${this.name} dy`),
        coef,
        vec4Binding(dx, `${this.name} dx`),
      ],
      grid1d(vec4s, TREE_WG),
    );
    return dx;
  }

  private checkInput(x: Tensor, what: string): [number, number, number, number] {
    if (x.shape.length !== 4 || x.shape[1] !== this.channels || x.shape.some((d) => d < 1)) {
      throw new Error(
        `BatchNorm2d ${this.name}: ${what} shape [${x.shape}], expected [N, ${this.channels}, H, W]`,
      );
    }
    return x.shape as [number, number, number, number];
  }
}

function bnPipeline(gpu: Gpu, entryPoint: string, relu?: boolean): GPUComputePipeline {
  return pipeline(gpu, {
    code: loadWgsl(import.meta.url, "../shaders/batchnorm.wgsl"),
    entryPoint,
    constants: relu === undefined ? undefined : { RELU: relu ? 1 : 0 },
  });
}

function treePipeline(gpu: Gpu, entryPoint: string, relu?: boolean): GPUComputePipeline {
  return pipeline(gpu, {
    code: withTreeSum(loadWgsl(import.meta.url, "../shaders/batchnorm_tree.wgsl")),
    entryPoint,
    constants: relu === undefined ? undefined : { RELU: relu ? 1 : 0 },
  });
}
