// The paper's LDA head (dnll.md section 5): one spherical Gaussian per class, one variance exp(s) shared
// by all classes, trainable class priors; trained with DNLL. Kernels in lib/shaders/lda.wgsl, plus the
// per-sample DNLL kernel of mda.wgsl (an LDA class is an MDA class with K = 1).

import type { HostTensor, ParamStore, ParamView } from "../gpu/params.ts";
import { f32, grid1d, type Param, type Recorder } from "../gpu/recorder.ts";
import { type Tensor, Workspace } from "../gpu/tensor.ts";
import { type ReductionVariant, reductionVariant } from "../gpu/reduction.ts";
import type { Rng } from "../rng.ts";
import {
  checkBatch,
  checkLogitsOut,
  checkSizes,
  type Head,
  headModule,
  type HeadSummary,
  hostTensor,
  Kernels,
  OnesColumn,
  ParamSpan,
  softmaxRow,
} from "./head.ts";
import type { Loss } from "./loss.ts";

const WG = 64;

export interface LDAHeadOptions {
  /** State-dict prefix (default "head"). */
  name?: string;
  /**
   * Kernel of the parameter gradients' sums over the batch: "serial" (lda_reduce) or "tree"
   * (lda_reduce_tree); default: serial on software adapters, tree on GPUs (lib/gpu/reduction.ts).
   */
  variant?: ReductionVariant;
}

export class LDAHead implements Head {
  readonly kind = "lda";
  readonly components = 1;
  readonly name: string;
  readonly variant: ReductionVariant;
  readonly mu: ParamView;
  readonly priorLogits: ParamView;
  readonly logCov: ParamView;
  private readonly span: ParamSpan;
  private readonly ws: Workspace;
  private readonly kernels: Kernels;
  private readonly dnllKernels: Kernels;
  private readonly ones: OnesColumn;

  constructor(
    readonly store: ParamStore,
    readonly numClasses: number,
    readonly latentDim: number,
    rng: Rng,
    opts: LDAHeadOptions = {},
  ) {
    const C = numClasses, D = latentDim;
    checkSizes("lda", { C, D });
    this.name = opts.name ?? "head";
    this.variant = reductionVariant(store.gpu, opts.variant, `lda head ${this.name}`);
    const std = 6 / Math.sqrt(2 * D);
    this.mu = store.add(
      `${this.name}.mu`,
      [C, D],
      Float32Array.from({ length: C * D }, () => rng.normal() * std),
    );
    this.priorLogits = store.add(`${this.name}.prior_logits`, [C], new Float32Array(C));
    this.logCov = store.add(`${this.name}.log_cov`, [], new Float32Array(1));
    this.span = new ParamSpan(store, [this.mu, this.priorLogits, this.logCov]);
    this.ws = new Workspace(store.gpu, this.name);
    this.ones = new OnesColumn(store.gpu);
    this.kernels = new Kernels(store.gpu, headModule("lda.wgsl"));
    this.dnllKernels = new Kernels(store.gpu, headModule("mda.wgsl"));
  }

  private uniforms(n: number, slot = 0): Param[] {
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

  logits(rec: Recorder, z: Tensor, out?: Tensor): Tensor {
    const n = checkBatch(this, z);
    const delta = out ?? this.ws.tensor("logits", [n, this.numClasses]);
    checkLogitsOut(this.store.gpu, this, n, delta);
    rec.dispatch(
      this.kernels.get("lda_logits"),
      this.uniforms(n),
      [this.span.params(), z, delta],
      grid1d(n * this.numClasses, WG),
    );
    return delta;
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
