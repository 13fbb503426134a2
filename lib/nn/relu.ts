// ReLU as a layer of its own (the encoder fuses it into BatchNorm2d; this one serves anything else).
// Backward masks dy with the saved forward output, like PyTorch.

import type { Gpu } from "../gpu/device.ts";
import { loadWgsl, pipeline } from "../gpu/pipelines.ts";
import { grid1d, type Recorder } from "../gpu/recorder.ts";
import { type Tensor, Workspace } from "../gpu/tensor.ts";
import type { Layer } from "./layer.ts";

const WG = 64;

/**
 * Binding of a tensor read or written as `array<vec4<f32>>`: its byte range rounded up to 16 bytes, so
 * that a tensor whose size is not a multiple of 4 still has its last elements inside a whole vec4. Every
 * buffer from `createBuffer` is sized in multiples of 16 bytes, so a tensor at a 16-byte aligned offset
 * always has that room; the padding's values are never used.
 */
export function vec4Binding(t: Tensor, what: string): GPUBufferBinding {
  const size = Math.max(16, Math.ceil(t.byteLength / 16) * 16);
  if (t.offset % 16 !== 0 || t.offset + size > t.buffer.size) {
    throw new Error(
      `${what}: tensor at byte offset ${t.offset} of a ${t.buffer.size}-byte buffer, expected a 16-byte ` +
        `aligned offset with ${size} bytes of room`,
    );
  }
  return { buffer: t.buffer, offset: t.offset, size };
}

/** Workgroup count for one vec4 per invocation over `elements` values. */
export function vec4Grid(elements: number): [number, number, number] {
  return grid1d(Math.ceil(elements / 4), WG);
}

export class ReLU implements Layer {
  private ws?: Workspace;
  private y?: Tensor;

  constructor(readonly name: string) {}

  outputShape(inShape: readonly number[]): number[] {
    return [...inShape];
  }

  forward(rec: Recorder, x: Tensor, _training: boolean): Tensor {
    const gpu = rec.gpu;
    this.ws ??= new Workspace(gpu, this.name);
    const y = this.ws.tensor("y", x.shape);
    const vec4s = Math.ceil(x.size / 4);
    rec.dispatch(
      reluPipeline(gpu, "relu_forward"),
      [vec4s],
      [vec4Binding(x, `${this.name} input`), vec4Binding(y, `${this.name} output`)],
      vec4Grid(x.size),
    );
    this.y = y;
    return y;
  }

  backward(rec: Recorder, dy: Tensor, needInputGrad: boolean): Tensor | undefined {
    if (!this.y || !this.ws) throw new Error(`${this.name}: backward before forward`);
    if (dy.size !== this.y.size) {
      throw new Error(`${this.name}: dy has shape [${dy.shape}], expected [${this.y.shape}]`);
    }
    if (!needInputGrad) return undefined;
    const dx = this.ws.tensor("dx", this.y.shape);
    rec.dispatch(
      reluPipeline(rec.gpu, "relu_backward"),
      [Math.ceil(dy.size / 4)],
      [
        vec4Binding(dy, `${this.name} dy`),
        vec4Binding(this.y, `${this.name} saved output`),
        vec4Binding(dx, `${this.name} dx`),
      ],
      vec4Grid(dy.size),
    );
    return dx;
  }
}

function reluPipeline(gpu: Gpu, entryPoint: string): GPUComputePipeline {
  return pipeline(gpu, { code: loadWgsl(import.meta.url, "../shaders/relu.wgsl"), entryPoint });
}
