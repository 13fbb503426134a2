// The softmax baseline head (dnll.md section 5): Linear(D -> C) with PyTorch's default initialisation,
// trained with cross-entropy. Kernels in lib/shaders/softmax_head.wgsl; a training step is four
// dispatches (logits, per-sample loss, dL/dz, parameter gradients + stats).

import type { HostTensor, ParamStore, ParamView } from "../gpu/params.ts";
import { grid1d, type Param, type Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { kaimingUniformBound, uniformInit } from "../nn/init.ts";
import type { Rng } from "../rng.ts";
import {
  checkBatch,
  HEAD_WG as WG,
  HeadBase,
  type HeadOptions,
  type HeadSummary,
  OnesColumn,
  ParamSpan,
} from "./head.ts";
import type { Loss } from "./loss.ts";

/**
 * The softmax head's options: its state-dict prefix and reduction kernel (linear_reduce or
 * linear_reduce_tree).
 */
export type SoftmaxHeadOptions = HeadOptions;

export class SoftmaxHead extends HeadBase {
  readonly components = 1;
  readonly weight: ParamView;
  readonly bias: ParamView;
  protected readonly span: ParamSpan;
  protected readonly logitsEntry = "linear_logits";
  private readonly ones: OnesColumn;

  constructor(
    store: ParamStore,
    numClasses: number,
    latentDim: number,
    rng: Rng,
    opts: SoftmaxHeadOptions = {},
  ) {
    super("softmax", store, numClasses, latentDim, "softmax_head.wgsl", opts);
    const C = numClasses, D = latentDim;
    const bound = kaimingUniformBound(D);
    this.weight = store.add(`${this.name}.weight`, [C, D], uniformInit(rng, C * D, bound));
    this.bias = store.add(`${this.name}.bias`, [C], uniformInit(rng, C, bound));
    this.span = new ParamSpan(store, [this.weight, this.bias]);
    this.ones = new OnesColumn(store.gpu);
  }

  protected uniforms(n: number, slot = 0): Param[] {
    return [n, this.numClasses, this.latentDim, this.span.at(this.weight), this.span.at(this.bias), slot];
  }

  recordTrainStep(
    rec: Recorder,
    _loss: Loss,
    z: Tensor,
    labels: Tensor,
    stats: Tensor,
    slot: number,
  ): Tensor {
    const n = checkBatch(this, z, labels);
    const C = this.numClasses, D = this.latentDim;
    const logits = this.ws.tensor("train_logits", [n, C]);
    const g = this.ws.tensor("g", [n, C]);
    const sample = this.ws.tensor("sample", [n, 4]);
    const dz = this.ws.tensor("dz", [n, D]);
    const params = this.uniforms(n, slot);
    const theta = this.span.params();
    rec.dispatch(this.kernels.get("linear_logits"), params, [theta, z, logits], grid1d(n * C, WG));
    rec.dispatch(this.kernels.get("ce_sample"), params, [labels, logits, g, sample], grid1d(n, WG));
    rec.dispatch(this.kernels.get("linear_input_grad"), params, [theta, g, dz], grid1d(n * D, WG));
    // One invocation (serial) or one workgroup (tree) per gradient element, plus one for the stats.
    const tree = this.variant === "tree";
    rec.dispatch(
      this.kernels.get(tree ? "linear_reduce_tree" : "linear_reduce"),
      params,
      [z, g, sample, this.span.grads(), stats],
      grid1d(C * D + C + 1, tree ? 1 : WG),
    );
    return dz;
  }

  /** No mixture: every sample's single "component" has responsibility 1. */
  recordResponsibilities(_rec: Recorder, z: Tensor, labels: Tensor): Tensor {
    return this.ones.get(checkBatch(this, z, labels));
  }

  /** The softmax head has no Gaussian parameters: every field is empty. */
  summarize(_host: HostTensor[]): HeadSummary {
    return { weights: [], variances: [], means: [], priors: [] };
  }
}
