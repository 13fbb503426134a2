// Adam over the whole ParamStore in one dispatch per step (PyTorch defaults: lr 1e-3, betas (0.9, 0.999),
// eps 1e-8, no weight decay, bias correction on). The moments live in the store (store.m, store.v) so
// that checkpoints can carry them; `step` is the number of steps taken, for resuming.

import { loadWgsl, pipeline } from "../gpu/pipelines.ts";
import { f32, grid1d, type Recorder } from "../gpu/recorder.ts";
import type { ParamStore } from "../gpu/params.ts";

const WG = 64;

export interface AdamOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export class Adam {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** Steps taken so far; the next `record` uses step + 1 for the bias corrections. */
  step = 0;

  constructor(private store: ParamStore, opts: AdamOptions = {}) {
    this.lr = opts.lr ?? 1e-3;
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    if (!(this.lr > 0)) throw new Error(`Adam: lr must be positive, got ${this.lr}`);
    for (const [what, b] of [["beta1", this.beta1], ["beta2", this.beta2]] as const) {
      if (!(b >= 0 && b < 1)) throw new Error(`Adam: ${what} must be in [0, 1), got ${b}`);
    }
    if (!(this.eps >= 0)) throw new Error(`Adam: eps must be non-negative, got ${this.eps}`);
  }

  /** Increments `step` and records one dispatch that updates every parameter and both moments. */
  record(rec: Recorder): void {
    const { params, grads, m, v } = this.store;
    if (!params || !grads || !m || !v) throw new Error("Adam: the ParamStore is not finalized");
    this.step += 1;
    // float64 on the host; only the results are rounded to f32.
    const biasCorrection1 = 1 - this.beta1 ** this.step;
    const biasCorrection2 = 1 - this.beta2 ** this.step;
    const vec4s = this.store.flatLength / 4;
    rec.dispatch(
      pipeline(rec.gpu, { code: loadWgsl(import.meta.url, "../shaders/adam.wgsl"), entryPoint: "adam_step" }),
      [
        vec4s,
        f32(this.lr / biasCorrection1),
        f32(this.beta1),
        f32(this.beta2),
        f32(1 - this.beta1),
        f32(1 - this.beta2),
        f32(Math.sqrt(biasCorrection2)),
        f32(this.eps),
      ],
      [params, grads, m, v],
      grid1d(vec4s, WG),
    );
  }
}
