// The losses a head trains with (dnll.md section 4). They carry no GPU state: a loss only tells the head
// which per-sample kernel to record and what to report. EM-DNLL and DNLL share every gradient; EM-DNLL
// reports DNLL plus the entropy of the true class's responsibilities.

export type LossName = "em-dnll" | "dnll" | "cross-entropy";

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

/** A loss by its name (experiment configs). `lambda` is required for the DNLL family. */
export function createLoss(name: string, lambda?: number): Loss {
  if (name === "cross-entropy") return new CrossEntropyLoss();
  if (name === "em-dnll" || name === "dnll") {
    if (lambda === undefined) throw new Error(`loss ${name}: lambda is required`);
    return name === "em-dnll" ? new EM_DNLLLoss(lambda) : new DNLLLoss(lambda);
  }
  throw new Error(`unknown loss ${JSON.stringify(name)}: expected "em-dnll", "dnll" or "cross-entropy"`);
}
