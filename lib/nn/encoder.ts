// The notebook's convolutional encoder (dnll.md section 1), built from a small config so that the
// quick experiment's narrow encoder is the same code:
//
//   conv w0, BN, ReLU, conv w1, BN, ReLU, maxpool 2,
//   conv w2, BN, ReLU, conv w3, BN, ReLU, maxpool 2,
//   conv w4, BN, ReLU, conv w5, BN, ReLU, global average pool, linear w5 -> D
//
// Module indices follow PyTorch's nn.Sequential numbering, so parameter names are the notebook's
// state_dict names (encoder.features.0.weight, ..., encoder.proj.bias). Each BatchNorm carries the
// ReLU that follows it (fused kernel); the ReLU's index is skipped in the numbering just as PyTorch
// gives it a number but no parameters.

import type { ParamStore } from "../gpu/params.ts";
import type { Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Rng } from "../rng.ts";
import { GlobalAvgPool } from "./avgpool.ts";
import { BatchNorm2d } from "./batchnorm.ts";
import { Conv2d } from "./conv2d/conv2d.ts";
import type { Layer } from "./layer.ts";
import { Linear } from "./linear.ts";
import { MaxPool2d } from "./maxpool.ts";
import type { ReductionVariant } from "../gpu/reduction.ts";

export interface EncoderConfig {
  /** Output channels of the six convolutions; the notebook's are 64,64,128,128,256,256. */
  widths: number[];
  /** Latent dimension D (the projection's output). */
  latentDim: number;
  /** Input image shape [C, H, W]. */
  inputShape?: [number, number, number];
}

export const NOTEBOOK_WIDTHS = [64, 64, 128, 128, 256, 256];

export class Encoder {
  readonly layers: Layer[] = [];
  readonly inputShape: [number, number, number];

  /**
   * `opts.reductions`: the kernel variant of the BatchNorms, the global pool and the projection
   * (lib/gpu/reduction.ts; default: the adapter's). MaxPool2d has one kernel for every adapter: one
   * invocation per output row is already N*C*H/2 invocations (229376 at batch 256), enough for a GPU.
   */
  constructor(
    store: ParamStore,
    readonly config: EncoderConfig,
    rng: Rng,
    prefix = "encoder",
    opts: { reductions?: ReductionVariant } = {},
  ) {
    const variant = opts.reductions;
    const { widths, latentDim } = config;
    if (widths.length !== 6 || widths.some((w) => !Number.isInteger(w) || w < 1)) {
      throw new Error(`encoder widths must be 6 positive integers, got [${widths}]`);
    }
    if (!Number.isInteger(latentDim) || latentDim < 1) {
      throw new Error(`latent dim must be >= 1, got ${latentDim}`);
    }
    this.inputShape = config.inputShape ?? [1, 28, 28];
    let index = 0;
    let channels = this.inputShape[0];
    const f = (i: number) => `${prefix}.features.${i}`;
    for (let block = 0; block < 3; block++) {
      for (let j = 0; j < 2; j++) {
        const out = widths[block * 2 + j];
        this.layers.push(new Conv2d(store, f(index), channels, out, rng));
        this.layers.push(new BatchNorm2d(store, f(index + 1), out, { relu: true, variant }));
        index += 3; // conv, bn, relu
        channels = out;
      }
      if (block < 2) this.layers.push(new MaxPool2d(f(index++)));
      else this.layers.push(new GlobalAvgPool(f(index++), { variant }));
    }
    this.layers.push(new Linear(store, `${prefix}.proj`, channels, latentDim, rng, { variant }));
  }

  /** x [N, C, H, W] -> z [N, D]. Each layer is its own (timestamp-timed, when asked) compute pass. */
  forward(rec: Recorder, x: Tensor, training: boolean): Tensor {
    let h = x;
    for (const layer of this.layers) {
      rec.timed(`${layer.name} forward`, () => h = layer.forward(rec, h, training));
    }
    return h;
  }

  /** dz [N, D]: records every layer's backward, writing all encoder gradients. */
  backward(rec: Recorder, dz: Tensor): void {
    let g: Tensor | undefined = dz;
    for (let i = this.layers.length - 1; i >= 0; i--) {
      rec.timed(`${this.layers[i].name} backward`, () => g = this.layers[i].backward(rec, g!, i > 0));
    }
  }

  /** Multiply-adds of one image's forward pass through the convolutions and the projection. */
  forwardMacs(): number {
    let [c, h, w] = this.inputShape;
    let macs = 0;
    const { widths, latentDim } = this.config;
    for (let i = 0; i < 6; i++) {
      macs += h * w * c * widths[i] * 9;
      c = widths[i];
      if (i === 1 || i === 3) {
        h = Math.floor(h / 2);
        w = Math.floor(w / 2);
      }
    }
    return macs + c * latentDim;
  }
}
