// Linear layer [N, in] -> [N, out], y = x W^T + b, with PyTorch's names and initialisation: weight
// [out, in] then bias [out], both uniform on (-1/sqrt(in), 1/sqrt(in)), drawn weight first. The
// parameter gradients' sums over the batch have a "serial" and a "tree" kernel (lib/gpu/reduction.ts).

import type { Gpu } from "../gpu/device.ts";
import type { ParamStore, ParamView } from "../gpu/params.ts";
import { loadWgsl, pipeline } from "../gpu/pipelines.ts";
import { grid1d, type Recorder } from "../gpu/recorder.ts";
import { type Tensor, Workspace } from "../gpu/tensor.ts";
import { type ReductionVariant, reductionVariant, withTreeSum } from "../gpu/reduction.ts";
import type { Rng } from "../rng.ts";
import { kaimingUniformBound, uniformInit } from "./init.ts";
import type { Layer } from "./layer.ts";

const WG = 64;

export class Linear implements Layer {
  readonly weight: ParamView;
  readonly bias: ParamView;
  readonly variant: ReductionVariant;
  private ws: Workspace;
  private x?: Tensor;

  constructor(
    private store: ParamStore,
    readonly name: string,
    readonly inFeatures: number,
    readonly outFeatures: number,
    rng: Rng,
    /** `variant`: default serial on software adapters, tree on GPUs. */
    opts: { variant?: ReductionVariant } = {},
  ) {
    for (const [what, v] of [["inFeatures", inFeatures], ["outFeatures", outFeatures]] as const) {
      if (!Number.isInteger(v) || v < 1) {
        throw new Error(`Linear ${name}: ${what} must be a positive integer, got ${v}`);
      }
    }
    this.variant = reductionVariant(store.gpu, opts.variant, `Linear ${name}`);
    const bound = kaimingUniformBound(inFeatures);
    this.weight = store.add(
      `${name}.weight`,
      [outFeatures, inFeatures],
      uniformInit(rng, outFeatures * inFeatures, bound),
    );
    this.bias = store.add(`${name}.bias`, [outFeatures], uniformInit(rng, outFeatures, bound));
    this.ws = new Workspace(store.gpu, name);
  }

  outputShape(inShape: readonly number[]): number[] {
    if (inShape.length !== 1 || inShape[0] !== this.inFeatures) {
      throw new Error(`Linear ${this.name}: input shape [${inShape}], expected [${this.inFeatures}]`);
    }
    return [this.outFeatures];
  }

  forward(rec: Recorder, x: Tensor, _training: boolean): Tensor {
    if (x.shape.length !== 2 || x.shape[1] !== this.inFeatures || x.shape[0] < 1) {
      throw new Error(`Linear ${this.name}: input shape [${x.shape}], expected [N, ${this.inFeatures}]`);
    }
    const n = x.shape[0];
    const y = this.ws.tensor("y", [n, this.outFeatures]);
    rec.dispatch(
      linearPipeline(rec.gpu, "linear_forward"),
      [n, this.inFeatures, this.outFeatures],
      [x, this.store.param(this.weight), this.store.param(this.bias), y],
      grid1d(n * this.outFeatures, WG),
    );
    this.x = x;
    return y;
  }

  backward(rec: Recorder, dy: Tensor, needInputGrad: boolean): Tensor | undefined {
    if (!this.x) throw new Error(`Linear ${this.name}: backward before forward`);
    const n = this.x.shape[0];
    if (dy.shape.length !== 2 || dy.shape[0] !== n || dy.shape[1] !== this.outFeatures) {
      throw new Error(
        `Linear ${this.name}: dy has shape [${dy.shape}], expected [${n}, ${this.outFeatures}]`,
      );
    }
    const params = [n, this.inFeatures, this.outFeatures];
    // One invocation (serial) or one workgroup (tree) per weight and bias gradient element.
    const tree = this.variant === "tree";
    rec.dispatch(
      linearPipeline(rec.gpu, tree ? "linear_backward_params_tree" : "linear_backward_params"),
      params,
      [dy, this.x, this.store.grad(this.weight), this.store.grad(this.bias)],
      grid1d(this.outFeatures * (this.inFeatures + 1), tree ? 1 : WG),
    );
    if (!needInputGrad) return undefined;
    const dx = this.ws.tensor("dx", [n, this.inFeatures]);
    rec.dispatch(
      linearPipeline(rec.gpu, "linear_backward_input"),
      params,
      [dy, this.store.param(this.weight), dx],
      grid1d(n * this.inFeatures, WG),
    );
    return dx;
  }
}

function linearPipeline(gpu: Gpu, entryPoint: string): GPUComputePipeline {
  return pipeline(gpu, {
    code: withTreeSum(loadWgsl(import.meta.url, "../shaders/linear.wgsl")),
    entryPoint,
  });
}
