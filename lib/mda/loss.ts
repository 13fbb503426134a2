// The losses a head trains with (dnll.md section 4). They carry no GPU state: a loss only tells the head
// which per-sample kernel to record and what to report. EM-DNLL and DNLL share every gradient; EM-DNLL
// reports DNLL plus the entropy of the true class's responsibilities.

export type LossName = "em-dnll" | "dnll" | "cross-entropy";

/** A loss as experiment configs and manifests name it (lib/model.ts's ModelConfig.loss). */
export type LossKind = "em_dnll" | "dnll" | "ce";

export interface Loss {
  readonly name: LossName;
  /** Weight of the penalty lambda * sum_c exp(delta[c]) (0 for cross-entropy). */
  readonly lambda: number;
  /** True for the DNLL family (needs a generative head), false for cross-entropy (softmax head). */
  readonly generative: boolean;
}

function checkLambda(lambda: number, what: string): number {
  if (!Number.isFinite(lambda) || lambda < 0) {
    throw new Error(`${what}: lambda must be a finite number >= 0, got ${lambda}`);
  }
  return lambda;
}

/** The notebook's loss: EM-DNLL with responsibilities held constant (value = DNLL + H(r)). */
export class EM_DNLLLoss implements Loss {
  readonly name = "em-dnll";
  readonly generative = true;
  readonly lambda: number;
  constructor(lambda: number) {
    this.lambda = checkLambda(lambda, "EM_DNLLLoss");
  }
}

/** The paper's loss: -delta[y] + lambda * sum_c exp(delta[c]), mean over the batch. */
export class DNLLLoss implements Loss {
  readonly name = "dnll";
  readonly generative = true;
  readonly lambda: number;
  constructor(lambda: number) {
    this.lambda = checkLambda(lambda, "DNLLLoss");
  }
}

/** Softmax cross-entropy, for the Linear baseline head. */
export class CrossEntropyLoss implements Loss {
  readonly name = "cross-entropy";
  readonly generative = false;
  readonly lambda = 0;
}

/** The loss a config names; `lambda` weighs the DNLL family's penalty (cross-entropy has none). */
export function createLoss(kind: LossKind, lambda: number): Loss {
  if (kind === "em_dnll") return new EM_DNLLLoss(lambda);
  if (kind === "dnll") return new DNLLLoss(lambda);
  if (kind === "ce") return new CrossEntropyLoss();
  throw new Error(`unknown loss ${JSON.stringify(kind)}: expected "em_dnll", "dnll" or "ce"`);
}
