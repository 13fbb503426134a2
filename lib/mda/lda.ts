// The paper's LDA head (dnll.md section 5): one spherical Gaussian per class, one variance exp(s) shared
// by all classes, trainable class priors; trained with DNLL. Kernels in lib/shaders/lda.wgsl, plus the
// per-sample DNLL kernel of mda.wgsl (an LDA class is an MDA class with K = 1).

import type { HostTensor, ParamStore, ParamView } from "../gpu/params.ts";
import { f32, grid1d, type Param, type Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Rng } from "../rng.ts";
import {
  checkBatch,
  HEAD_WG as WG,
  HeadBase,
  headModule,
  type HeadOptions,
  type HeadSummary,
  hostTensor,
  Kernels,
  OnesColumn,
  ParamSpan,
  softmaxRow,
} from "./head.ts";
import type { Loss } from "./loss.ts";

/** The LDA head's options: its state-dict prefix and reduction kernel (lda_reduce or lda_reduce_tree). */
export type LDAHeadOptions = HeadOptions;

export class LDAHead extends HeadBase {
  readonly components = 1;
  readonly mu: ParamView;
  readonly priorLogits: ParamView;
  readonly logCov: ParamView;
  protected readonly span: ParamSpan;
  protected readonly logitsEntry = "lda_logits";
  private readonly dnllKernels: Kernels;
  private readonly ones: OnesColumn;

  constructor(store: ParamStore, numClasses: number, latentDim: number, rng: Rng, opts: LDAHeadOptions = {}) {
    super("lda", store, numClasses, latentDim, "lda.wgsl", opts);
    const C = numClasses, D = latentDim;
    const std = 6 / Math.sqrt(2 * D);
    this.mu = store.add(
      `${this.name}.mu`,
      [C, D],
      Float32Array.from({ length: C * D }, () => rng.normal() * std),
    );
    this.priorLogits = store.add(`${this.name}.prior_logits`, [C], new Float32Array(C));
    this.logCov = store.add(`${this.name}.log_cov`, [], new Float32Array(1));
    this.span = new ParamSpan(store, [this.mu, this.priorLogits, this.logCov]);
    this.ones = new OnesColumn(store.gpu);
    this.dnllKernels = new Kernels(store.gpu, headModule("mda.wgsl"));
  }

  protected uniforms(n: number, slot = 0): Param[] {
    const s = this.span;
    return [
      n,
      this.numClasses,
      this.latentDim,
      s.at(this.mu),
      s.at(this.priorLogits),
      s.at(this.logCov),
      slot,
    ];
  }

  recordTrainStep(rec: Recorder, loss: Loss, z: Tensor, labels: Tensor, stats: Tensor, slot: number): Tensor {
    const n = checkBatch(this, z, labels);
    const C = this.numClasses, D = this.latentDim;
    const delta = this.ws.tensor("delta", [n, C]);
    const m2 = this.ws.tensor("m2", [n, C]);
    const g = this.ws.tensor("g", [n, C]);
    const sample = this.ws.tensor("sample", [n, 4]);
    const dz = this.ws.tensor("dz", [n, D]);
    const params = this.uniforms(n, slot);
    const theta = this.span.params();
    rec.dispatch(this.kernels.get("lda_forward"), params, [theta, z, delta, m2], grid1d(n * C, WG));
    // mda.wgsl's Params with K = 1 and em = 0 (one component has no entropy): EM-DNLL equals DNLL here,
    // and the responsibilities binding is never read, so delta stands in for it.
    const dnllParams = [n, C, 1, D, 0, 0, 0, 0, f32(loss.lambda), 0, slot];
    rec.dispatch(
      this.dnllKernels.get("dnll_sample"),
      dnllParams,
      [labels, delta, delta, g, sample],
      grid1d(n, WG),
    );
    rec.dispatch(this.kernels.get("lda_input_grad"), params, [theta, z, g, dz], grid1d(n * D, WG));
    // One invocation (serial) or one workgroup (tree) per gradient element, plus one for the stats.
    const tree = this.variant === "tree";
    rec.dispatch(
      this.kernels.get(tree ? "lda_reduce_tree" : "lda_reduce"),
      params,
      [theta, z, g, m2, sample, this.span.grads(), stats],
      grid1d(C * D + C + 2, tree ? 1 : WG),
    );
    return dz;
  }

  /** One component per class: the responsibilities are all 1. */
  recordResponsibilities(_rec: Recorder, z: Tensor, labels: Tensor): Tensor {
    const n = checkBatch(this, z, labels);
    return this.ones.get(n);
  }

  summarize(host: HostTensor[]): HeadSummary {
    const s = hostTensor(host, this.logCov.name)[0];
    return {
      weights: new Array(this.numClasses).fill(1),
      variances: new Array(this.numClasses).fill(Math.exp(s)),
      means: Array.from(hostTensor(host, this.mu.name)),
      priors: softmaxRow(hostTensor(host, this.priorLogits.name)),
      sigma: Math.exp(s / 2),
    };
  }
}
