// MaxPool2d(2, 2) like PyTorch: odd sizes floor, backward routes dy to the first maximum of each window.
// The forward saves the window position of each maximum for the backward, packed 2 bits per output and
// 16 outputs of a row per u32 (see lib/shaders/maxpool.wgsl).

import type { Gpu } from "../gpu/device.ts";
import { loadWgsl, pipeline } from "../gpu/pipelines.ts";
import { grid1d, type Recorder } from "../gpu/recorder.ts";
import { type Tensor, Workspace } from "../gpu/tensor.ts";
import type { Layer } from "./layer.ts";

const WG = 64;

export class MaxPool2d implements Layer {
  private ws?: Workspace;
  private saved?: { inShape: readonly number[]; outShape: readonly number[]; codes: Tensor };

  constructor(readonly name: string) {}

  outputShape(inShape: readonly number[]): number[] {
    const [c, h, w] = this.check(inShape, "input shape", 3);
    return [c, Math.floor(h / 2), Math.floor(w / 2)];
  }

  forward(rec: Recorder, x: Tensor, _training: boolean): Tensor {
    const [n, c, h, w] = this.check(x.shape, "input", 4);
    const oh = Math.floor(h / 2), ow = Math.floor(w / 2);
    this.ws ??= new Workspace(rec.gpu, this.name);
    const y = this.ws.tensor("y", [n, c, oh, ow]);
    const rows = n * c * oh;
    const codeWords = Math.ceil(ow / 16);
    const codes = this.ws.tensor("codes", [rows, codeWords]);
    rec.dispatch(
      poolPipeline(rec.gpu, `maxpool_forward_${variant(w)}`),
      [rows, h, w, oh, ow, codeWords],
      [x, y, codes],
      grid1d(rows, WG),
    );
    this.saved = { inShape: x.shape, outShape: y.shape, codes };
    return y;
  }

  backward(rec: Recorder, dy: Tensor, needInputGrad: boolean): Tensor | undefined {
    if (!this.saved || !this.ws) throw new Error(`MaxPool2d ${this.name}: backward before forward`);
    const { inShape, outShape, codes } = this.saved;
    if (dy.shape.join(",") !== outShape.join(",")) {
      throw new Error(`MaxPool2d ${this.name}: dy has shape [${dy.shape}], expected [${outShape}]`);
    }
    if (!needInputGrad) return undefined;
    const [n, c, h, w] = inShape;
    const [, , oh, ow] = outShape;
    const dx = this.ws.tensor("dx", inShape);
    const rows = n * c * oh;
    rec.dispatch(
      poolPipeline(rec.gpu, `maxpool_backward_${variant(w)}`),
      [rows, h, w, oh, ow, codes.shape[1]],
      [dy, codes, dx],
      grid1d(rows, WG),
    );
    return dx;
  }

  private check(shape: readonly number[], what: string, rank: number): number[] {
    const spatial = shape.slice(-2);
    if (shape.length !== rank || shape.some((d) => d < 1) || spatial.some((d) => d < 2)) {
      const expected = rank === 4 ? "[N, C, H, W]" : "[C, H, W]";
      throw new Error(`MaxPool2d ${this.name}: ${what} [${shape}], expected ${expected} with H, W >= 2`);
    }
    return [...shape];
  }
}

/** Widest aligned access a row of width w allows: vec4 (two windows), vec2 (one window row), scalar. */
function variant(w: number): "w4" | "w2" | "any" {
  return w % 4 === 0 ? "w4" : w % 2 === 0 ? "w2" : "any";
}

function poolPipeline(gpu: Gpu, entryPoint: string): GPUComputePipeline {
  return pipeline(gpu, { code: loadWgsl(import.meta.url, "../shaders/maxpool.wgsl"), entryPoint });
}
