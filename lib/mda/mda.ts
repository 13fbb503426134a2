// The notebook's MDAHead(C, D, K) (dnll.md section 3): a K-component isotropic Gaussian mixture per
// class, with trainable class priors, mixture weights and one variance per component. Kernels in
// lib/shaders/mda.wgsl; a training step is four dispatches (forward, per-sample loss, dL/dz, parameter
// gradients + stats).

import type { HostTensor, ParamStore, ParamView } from "../gpu/params.ts";
import { f32, grid1d, type Param, type Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Rng } from "../rng.ts";
import {
  checkBatch,
  checkSizes,
  HEAD_WG as WG,
  HeadBase,
  type HeadOptions,
  type HeadSummary,
  hostTensor,
  ParamSpan,
  softmaxRow,
} from "./head.ts";
import type { Loss } from "./loss.ts";

export type MuInit = "independent" | "class-noise";

/** The MDA head's options: HeadOptions (reduction kernel: mda_reduce or mda_reduce_tree), and muInit. */
export interface MDAHeadOptions extends HeadOptions {
  /**
   * "independent" (default, the version that ran the notebook): every entry of mu ~ N(0, (6/sqrt(2D))^2).
   * "class-noise" (the later library version): one mean per class with that std (all C*D drawn first),
   * plus per-component noise of std 0.6/sqrt(2D) (C*K*D drawn next).
   */
  muInit?: MuInit;
}

/** Initial mu [C,K,D] for either scheme of dnll.md section 3. */
export function initMixtureMeans(rng: Rng, C: number, K: number, D: number, scheme: MuInit): Float32Array {
  const std = 6 / Math.sqrt(2 * D);
  const mu = new Float32Array(C * K * D);
  if (scheme === "independent") {
    for (let i = 0; i < mu.length; i++) mu[i] = rng.normal() * std;
  } else if (scheme === "class-noise") {
    const classMeans = Float64Array.from({ length: C * D }, () => rng.normal() * std);
    for (let c = 0; c < C; c++) {
      for (let k = 0; k < K; k++) {
        for (let d = 0; d < D; d++) {
          mu[(c * K + k) * D + d] = classMeans[c * D + d] + rng.normal() * 0.1 * std;
        }
      }
    }
  } else {
    throw new Error(`muInit must be "independent" or "class-noise", got ${JSON.stringify(scheme)}`);
  }
  return mu;
}

export class MDAHead extends HeadBase {
  readonly mu: ParamView;
  readonly priorLogits: ParamView;
  readonly mixtureLogits: ParamView;
  readonly logCov: ParamView;
  protected readonly span: ParamSpan;
  protected readonly logitsEntry = "mda_logits";

  constructor(
    store: ParamStore,
    numClasses: number,
    latentDim: number,
    readonly components: number,
    rng: Rng,
    opts: MDAHeadOptions = {},
  ) {
    super("mda", store, numClasses, latentDim, "mda.wgsl", opts);
    const C = numClasses, D = latentDim, K = components;
    checkSizes("mda", { K });
    this.mu = store.add(
      `${this.name}.mu`,
      [C, K, D],
      initMixtureMeans(rng, C, K, D, opts.muInit ?? "independent"),
    );
    this.priorLogits = store.add(`${this.name}.prior_logits`, [C], new Float32Array(C));
    this.mixtureLogits = store.add(`${this.name}.mixture_logits`, [C, K], new Float32Array(C * K));
    this.logCov = store.add(`${this.name}.log_cov`, [C, K], new Float32Array(C * K));
    this.span = new ParamSpan(store, [this.mu, this.priorLogits, this.mixtureLogits, this.logCov]);
  }

  protected uniforms(n: number, lambda = 0, em = false, slot = 0): Param[] {
    const s = this.span;
    return [
      n,
      this.numClasses,
      this.components,
      this.latentDim,
      s.at(this.mu),
      s.at(this.priorLogits),
      s.at(this.mixtureLogits),
      s.at(this.logCov),
      f32(lambda),
      em ? 1 : 0,
      slot,
    ];
  }

  recordTrainStep(rec: Recorder, loss: Loss, z: Tensor, labels: Tensor, stats: Tensor, slot: number): Tensor {
    const n = checkBatch(this, z, labels);
    const C = this.numClasses, K = this.components, D = this.latentDim;
    const delta = this.ws.tensor("delta", [n, C]);
    const rho = this.ws.tensor("rho", [n, C, K]);
    const g = this.ws.tensor("g", [n, C]);
    const sample = this.ws.tensor("sample", [n, 4]);
    const dz = this.ws.tensor("dz", [n, D]);
    const params = this.uniforms(n, loss.lambda, loss.name === "em-dnll", slot);
    const theta = this.span.params();
    rec.dispatch(this.kernels.get("mda_forward"), params, [theta, z, delta, rho], grid1d(n * C, WG));
    rec.dispatch(this.kernels.get("dnll_sample"), params, [labels, delta, rho, g, sample], grid1d(n, WG));
    rec.dispatch(this.kernels.get("mda_input_grad"), params, [theta, z, g, rho, dz], grid1d(n * D, WG));
    // One invocation (serial) or one workgroup (tree) per gradient element, plus one for the stats.
    const gradients = C * K * D + C + 2 * C * K;
    const tree = this.variant === "tree";
    rec.dispatch(
      this.kernels.get(tree ? "mda_reduce_tree" : "mda_reduce"),
      params,
      [theta, z, g, rho, sample, this.span.grads(), stats],
      grid1d(gradients + 1, tree ? 1 : WG),
    );
    return dz;
  }

  recordResponsibilities(rec: Recorder, z: Tensor, labels: Tensor): Tensor {
    const n = checkBatch(this, z, labels);
    const resp = this.ws.tensor("resp", [n, this.components]);
    rec.dispatch(this.kernels.get("mda_responsibilities"), this.uniforms(n), [
      this.span.params(),
      z,
      labels,
      resp,
    ], grid1d(n, WG));
    return resp;
  }

  summarize(host: HostTensor[]): HeadSummary {
    const K = this.components;
    const mix = hostTensor(host, this.mixtureLogits.name);
    const weights: number[] = [];
    for (let c = 0; c < this.numClasses; c++) weights.push(...softmaxRow(mix.subarray(c * K, (c + 1) * K)));
    return {
      weights,
      variances: Array.from(hostTensor(host, this.logCov.name), Math.exp),
      means: Array.from(hostTensor(host, this.mu.name)),
      priors: softmaxRow(hostTensor(host, this.priorLogits.name)),
    };
  }
}
