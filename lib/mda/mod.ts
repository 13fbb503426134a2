// lib/mda: the classifier heads (MDA, LDA, softmax), their losses and the calibration metrics. See
// head.ts for the interface; `createHead` / `createLoss` pick them by name for experiment configs.

import type { ParamStore } from "../gpu/params.ts";
import type { ReductionVariant } from "../gpu/reduction.ts";
import type { Rng } from "../rng.ts";
import type { Head, HeadKind } from "./head.ts";
import { LDAHead } from "./lda.ts";
import { MDAHead, type MuInit } from "./mda.ts";
import { SoftmaxHead } from "./softmax.ts";

export {
  argmaxRows,
  type Head,
  type HeadKind,
  type HeadSummary,
  headSummary,
  headTrainStep,
  STATS_PER_STEP,
  trueClassResponsibilities,
} from "./head.ts";
export {
  createLoss,
  CrossEntropyLoss,
  DNLLLoss,
  EM_DNLLLoss,
  type Loss,
  type LossKind,
  type LossName,
} from "./loss.ts";
export { initMixtureMeans, MDAHead, type MDAHeadOptions, type MuInit } from "./mda.ts";
export { LDAHead, type LDAHeadOptions } from "./lda.ts";
export { SoftmaxHead, type SoftmaxHeadOptions } from "./softmax.ts";
export { binIndex, confidenceHistogram, evaluateLogits, reliability } from "./metrics.ts";

export interface HeadConfig {
  kind: HeadKind;
  /** Number of classes C. */
  classes: number;
  /** Latent dimension D. */
  dim: number;
  /** Components per class K (MDA only; must be 1 or absent for the others). */
  components?: number;
  name?: string;
  muInit?: MuInit;
  /** The reduction kernels' variant (HeadOptions.variant; default: by the adapter). */
  variant?: ReductionVariant;
}

/** A head by kind (experiment configs); registers its parameters in `store`. */
export function createHead(store: ParamStore, config: HeadConfig, rng: Rng): Head {
  const { kind, classes, dim, components = 1, name, variant } = config;
  if (kind === "mda") {
    return new MDAHead(store, classes, dim, components, rng, { name, muInit: config.muInit, variant });
  }
  if (components !== 1) {
    throw new Error(`the ${kind} head has one component per class, got components ${components}`);
  }
  if (kind === "lda") return new LDAHead(store, classes, dim, rng, { name, variant });
  if (kind === "softmax") return new SoftmaxHead(store, classes, dim, rng, { name, variant });
  throw new Error(`unknown head ${JSON.stringify(kind)}: expected "mda", "lda" or "softmax"`);
}
