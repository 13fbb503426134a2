// Global average pool [N, C, H, W] -> [N, C] (PyTorch: mean over H*W; backward spreads dy / (H*W)).
// Two kernel variants (lib/gpu/reduction.ts): "serial" (avgpool.wgsl, one invocation per 4 planes, for
// llvmpipe and lavapipe) and "tree" (avgpool_planes.wgsl, one invocation per plane forward and per vec4
// backward, for GPUs).

import type { Gpu } from "../gpu/device.ts";
import { loadWgsl, pipeline } from "../gpu/pipelines.ts";
import { grid1d, type Recorder } from "../gpu/recorder.ts";
import { type Tensor, Workspace } from "../gpu/tensor.ts";
import { type ReductionVariant, reductionVariant } from "../gpu/reduction.ts";
import type { Layer } from "./layer.ts";
import { vec4Binding } from "./relu.ts";

const WG = 64;

export class GlobalAvgPool implements Layer {
  private ws?: Workspace;
  private inShape?: readonly number[];

  /** `variant`: default serial on software adapters, tree on GPUs (decided at the first forward). */
  constructor(readonly name: string, private readonly opts: { variant?: ReductionVariant } = {}) {}

  /** The kernel variant this layer runs on `gpu`. */
  variant(gpu: Gpu): ReductionVariant {
    return reductionVariant(gpu, this.opts.variant, `GlobalAvgPool ${this.name}`);
  }

  outputShape(inShape: readonly number[]): number[] {
    if (inShape.length !== 3 || inShape.some((d) => d < 1)) {
      throw new Error(`GlobalAvgPool ${this.name}: input shape [${inShape}], expected [C, H, W]`);
    }
    return [inShape[0]];
  }

  forward(rec: Recorder, x: Tensor, _training: boolean): Tensor {
    if (x.shape.length !== 4 || x.shape.some((d) => d < 1)) {
      throw new Error(`GlobalAvgPool ${this.name}: input shape [${x.shape}], expected [N, C, H, W]`);
    }
    const [n, c, h, w] = x.shape;
    this.ws ??= new Workspace(rec.gpu, this.name);
    const y = this.ws.tensor("y", [n, c]);
    if (this.variant(rec.gpu) === "tree") {
      rec.dispatch(
        planesPipeline(rec.gpu, "avgpool_forward_planes"),
        [n * c, h * w],
        [x, y],
        grid1d(n * c, WG),
      );
      this.inShape = x.shape;
      return y;
    }
    rec.dispatch(
      avgPipeline(rec.gpu, "avgpool_forward"),
      [n * c, h * w],
      [vec4Binding(x, `${this.name} input`), y],
      grid1d(Math.ceil((n * c) / 4), WG),
    );
    this.inShape = x.shape;
    return y;
  }

  backward(rec: Recorder, dy: Tensor, needInputGrad: boolean): Tensor | undefined {
    if (!this.inShape || !this.ws) throw new Error(`GlobalAvgPool ${this.name}: backward before forward`);
    const [n, c, h, w] = this.inShape;
    if (dy.shape.length !== 2 || dy.shape[0] !== n || dy.shape[1] !== c) {
      throw new Error(`GlobalAvgPool ${this.name}: dy has shape [${dy.shape}], expected [${n}, ${c}]`);
    }
    if (!needInputGrad) return undefined;
    const dx = this.ws.tensor("dx", this.inShape);
    if (this.variant(rec.gpu) === "tree") {
      rec.dispatch(
        planesPipeline(rec.gpu, "avgpool_backward_elements"),
        [n * c, h * w],
        [dy, vec4Binding(dx, `${this.name} dx`)],
        grid1d(Math.ceil((n * c * h * w) / 4), WG),
      );
      return dx;
    }
    rec.dispatch(
      avgPipeline(rec.gpu, "avgpool_backward"),
      [n * c, h * w],
      [dy, vec4Binding(dx, `${this.name} dx`)],
      grid1d(Math.ceil((n * c) / 4), WG),
    );
    return dx;
  }
}

function avgPipeline(gpu: Gpu, entryPoint: string): GPUComputePipeline {
  return pipeline(gpu, { code: loadWgsl(import.meta.url, "../shaders/avgpool.wgsl"), entryPoint });
}

function planesPipeline(gpu: Gpu, entryPoint: string): GPUComputePipeline {
  return pipeline(gpu, { code: loadWgsl(import.meta.url, "../shaders/avgpool_planes.wgsl"), entryPoint });
}
