// Float64 references for the classifier heads of lib/mda (dnll.md sections 3-5): straightforward loops,
// written from the spec's formulas and independent of the WGSL. The gradients here are the analytic
// ones of dnll.md section 4; the tests check them against finite differences of the loss values below.

/** MDA head parameters, row-major: mu [C,K,D], prior [C], mix [C,K], logCov [C,K]. */
export interface MdaRefParams {
  C: number;
  K: number;
  D: number;
  mu: Float64Array;
  prior: Float64Array;
  mix: Float64Array;
  logCov: Float64Array;
}

/** LDA head parameters: mu [C,D], prior [C], one shared logCov. */
export interface LdaRefParams {
  C: number;
  D: number;
  mu: Float64Array;
  prior: Float64Array;
  logCov: number;
}

/** Softmax (Linear) head parameters: weight [C,D], bias [C]. */
export interface LinearRefParams {
  C: number;
  D: number;
  weight: Float64Array;
  bias: Float64Array;
}

export function logSoftmax(x: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i] - m);
  const lse = m + Math.log(s);
  return Float64Array.from(x, (v) => v - lse);
}

export function logSumExp(x: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i] - m);
  return m + Math.log(s);
}

/** Index of the first maximum (torch.argmax). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

export interface MdaForwardRef {
  /** Logits [N,C]. */
  delta: Float64Array;
  /** Per-component log joint a[n,c,k] (dnll.md section 3). */
  a: Float64Array;
  /** Within-class responsibilities softmax_k a[n,c,:] [N,C,K]. */
  rho: Float64Array;
  /** Squared distances |z - mu[c,k]|^2 [N,C,K]. */
  m2: Float64Array;
}

export function mdaForward(p: MdaRefParams, z: ArrayLike<number>, N: number): MdaForwardRef {
  const { C, K, D } = p;
  const logPi = logSoftmax(p.prior);
  const delta = new Float64Array(N * C);
  const a = new Float64Array(N * C * K);
  const rho = new Float64Array(N * C * K);
  const m2 = new Float64Array(N * C * K);
  for (let c = 0; c < C; c++) {
    const logW = logSoftmax(p.mix.subarray(c * K, (c + 1) * K));
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        const ck = c * K + k;
        let sq = 0;
        for (let d = 0; d < D; d++) sq += (z[n * D + d] - p.mu[ck * D + d]) ** 2;
        const s = p.logCov[ck];
        m2[(n * C + c) * K + k] = sq;
        a[(n * C + c) * K + k] = logW[k] - 0.5 * (sq / Math.exp(s) + D * s);
      }
      const row = a.subarray((n * C + c) * K, (n * C + c + 1) * K);
      const lse = logSumExp(row);
      delta[n * C + c] = logPi[c] + lse;
      for (let k = 0; k < K; k++) rho[(n * C + c) * K + k] = Math.exp(row[k] - lse);
    }
  }
  return { delta, a, rho, m2 };
}

/** Mean DNLL over the batch: -delta[y] + lambda * sum_c exp(delta[c]). */
export function dnllValue(
  delta: ArrayLike<number>,
  labels: ArrayLike<number>,
  C: number,
  lambda: number,
): number {
  const N = labels.length;
  let total = 0;
  for (let n = 0; n < N; n++) {
    let penalty = 0;
    for (let c = 0; c < C; c++) penalty += Math.exp(delta[n * C + c]);
    total += -delta[n * C + labels[n]] + lambda * penalty;
  }
  return total / N;
}

/**
 * Mean EM-DNLL straight from its definition: -Q + lambda * sum_c exp(delta[c]) with
 * Q = log pi[y] + sum_k r[k] a[y,k]. `frozenRho` (the responsibilities [N,K] of the true class) replaces
 * the ones of these parameters: with it held fixed, the finite differences of this value are the
 * EM-DNLL gradients (no gradient through r).
 */
export function emDnllValue(
  p: MdaRefParams,
  z: ArrayLike<number>,
  labels: ArrayLike<number>,
  lambda: number,
  frozenRho?: Float64Array,
): number {
  const { C, K } = p;
  const N = labels.length;
  const f = mdaForward(p, z, N);
  const logPi = logSoftmax(p.prior);
  let total = 0;
  for (let n = 0; n < N; n++) {
    const y = labels[n];
    let q = logPi[y];
    for (let k = 0; k < K; k++) {
      const r = frozenRho ? frozenRho[n * K + k] : f.rho[(n * C + y) * K + k];
      q += r * f.a[(n * C + y) * K + k];
    }
    let penalty = 0;
    for (let c = 0; c < C; c++) penalty += Math.exp(f.delta[n * C + c]);
    total += -q + lambda * penalty;
  }
  return total / N;
}

/** Responsibilities within the true class [N,K]. */
export function trueClassRho(p: MdaRefParams, z: ArrayLike<number>, labels: ArrayLike<number>): Float64Array {
  const N = labels.length;
  const f = mdaForward(p, z, N);
  const out = new Float64Array(N * p.K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < p.K; k++) out[n * p.K + k] = f.rho[(n * p.C + labels[n]) * p.K + k];
  }
  return out;
}

export interface MdaGradsRef {
  dnll: number;
  emDnll: number;
  correct: number;
  dz: Float64Array;
  dmu: Float64Array;
  dprior: Float64Array;
  dmix: Float64Array;
  dlogCov: Float64Array;
}

/** DNLL value, EM-DNLL value and the (shared) gradients of dnll.md section 4, mean over the batch. */
export function mdaGrads(
  p: MdaRefParams,
  z: ArrayLike<number>,
  labels: ArrayLike<number>,
  lambda: number,
): MdaGradsRef {
  const { C, K, D } = p;
  const N = labels.length;
  const f = mdaForward(p, z, N);
  const pi = logSoftmax(p.prior).map(Math.exp);
  const dz = new Float64Array(N * D);
  const dmu = new Float64Array(C * K * D);
  const dprior = new Float64Array(C);
  const dmix = new Float64Array(C * K);
  const dlogCov = new Float64Array(C * K);
  let entropy = 0;
  let correct = 0;
  for (let n = 0; n < N; n++) {
    const y = labels[n];
    const row = f.delta.subarray(n * C, (n + 1) * C);
    if (argmax(row) === y) correct++;
    for (let k = 0; k < K; k++) {
      const r = f.rho[(n * C + y) * K + k];
      if (r > 0) entropy -= r * Math.log(r);
    }
    const g = Float64Array.from(row, (d, c) => lambda * Math.exp(d) - (c === y ? 1 : 0));
    const gSum = g.reduce((s, v) => s + v, 0);
    for (let c = 0; c < C; c++) {
      dprior[c] += (g[c] - pi[c] * gSum) / N;
      const w = logSoftmax(p.mix.subarray(c * K, (c + 1) * K)).map(Math.exp);
      for (let k = 0; k < K; k++) {
        const ck = c * K + k;
        const rho = f.rho[(n * C + c) * K + k];
        const v = Math.exp(p.logCov[ck]);
        for (let d = 0; d < D; d++) {
          const t = g[c] * rho * (z[n * D + d] - p.mu[ck * D + d]) / v;
          dmu[ck * D + d] += t / N;
          dz[n * D + d] -= t / N;
        }
        dlogCov[ck] += g[c] * rho * (0.5 * f.m2[(n * C + c) * K + k] / v - D / 2) / N;
        dmix[ck] += g[c] * (rho - w[k]) / N;
      }
    }
  }
  const dnll = dnllValue(f.delta, labels, C, lambda);
  return { dnll, emDnll: dnll + entropy / N, correct, dz, dmu, dprior, dmix, dlogCov };
}

export function ldaForward(
  p: LdaRefParams,
  z: ArrayLike<number>,
  N: number,
): { delta: Float64Array; m2: Float64Array } {
  const { C, D } = p;
  const logPi = logSoftmax(p.prior);
  const delta = new Float64Array(N * C);
  const m2 = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      let sq = 0;
      for (let d = 0; d < D; d++) sq += (z[n * D + d] - p.mu[c * D + d]) ** 2;
      m2[n * C + c] = sq;
      delta[n * C + c] = logPi[c] - 0.5 * (sq / Math.exp(p.logCov) + D * p.logCov);
    }
  }
  return { delta, m2 };
}

export interface LdaGradsRef {
  dnll: number;
  correct: number;
  dz: Float64Array;
  dmu: Float64Array;
  dprior: Float64Array;
  dlogCov: number;
}

/** DNLL and its gradients for the LDA head (the MDA formulas with K = 1 and s shared by all classes). */
export function ldaGrads(
  p: LdaRefParams,
  z: ArrayLike<number>,
  labels: ArrayLike<number>,
  lambda: number,
): LdaGradsRef {
  const { C, D } = p;
  const N = labels.length;
  const f = ldaForward(p, z, N);
  const pi = logSoftmax(p.prior).map(Math.exp);
  const v = Math.exp(p.logCov);
  const dz = new Float64Array(N * D);
  const dmu = new Float64Array(C * D);
  const dprior = new Float64Array(C);
  let dlogCov = 0;
  let correct = 0;
  for (let n = 0; n < N; n++) {
    const y = labels[n];
    const row = f.delta.subarray(n * C, (n + 1) * C);
    if (argmax(row) === y) correct++;
    const g = Float64Array.from(row, (d, c) => lambda * Math.exp(d) - (c === y ? 1 : 0));
    const gSum = g.reduce((s, x) => s + x, 0);
    for (let c = 0; c < C; c++) {
      dprior[c] += (g[c] - pi[c] * gSum) / N;
      for (let d = 0; d < D; d++) {
        const t = g[c] * (z[n * D + d] - p.mu[c * D + d]) / v;
        dmu[c * D + d] += t / N;
        dz[n * D + d] -= t / N;
      }
      dlogCov += g[c] * (0.5 * f.m2[n * C + c] / v - D / 2) / N;
    }
  }
  return { dnll: dnllValue(f.delta, labels, C, lambda), correct, dz, dmu, dprior, dlogCov };
}

export function linearForward(p: LinearRefParams, z: ArrayLike<number>, N: number): Float64Array {
  const out = new Float64Array(N * p.C);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < p.C; c++) {
      let s = p.bias[c];
      for (let d = 0; d < p.D; d++) s += p.weight[c * p.D + d] * z[n * p.D + d];
      out[n * p.C + c] = s;
    }
  }
  return out;
}

/** Mean cross-entropy of softmax(logits) against the labels. */
export function crossEntropyValue(logits: ArrayLike<number>, labels: ArrayLike<number>, C: number): number {
  const N = labels.length;
  let total = 0;
  for (let n = 0; n < N; n++) {
    const row = Array.from({ length: C }, (_, c) => logits[n * C + c]);
    total += logSumExp(row) - row[labels[n]];
  }
  return total / N;
}

export interface LinearGradsRef {
  loss: number;
  correct: number;
  dz: Float64Array;
  dweight: Float64Array;
  dbias: Float64Array;
}

export function linearCeGrads(
  p: LinearRefParams,
  z: ArrayLike<number>,
  labels: ArrayLike<number>,
): LinearGradsRef {
  const { C, D } = p;
  const N = labels.length;
  const logits = linearForward(p, z, N);
  const dz = new Float64Array(N * D);
  const dweight = new Float64Array(C * D);
  const dbias = new Float64Array(C);
  let correct = 0;
  for (let n = 0; n < N; n++) {
    const row = logits.subarray(n * C, (n + 1) * C);
    if (argmax(row) === labels[n]) correct++;
    const logP = logSoftmax(row);
    for (let c = 0; c < C; c++) {
      const g = Math.exp(logP[c]) - (c === labels[n] ? 1 : 0);
      dbias[c] += g / N;
      for (let d = 0; d < D; d++) {
        dweight[c * D + d] += g * z[n * D + d] / N;
        dz[n * D + d] += g * p.weight[c * D + d] / N;
      }
    }
  }
  return { loss: crossEntropyValue(logits, labels, C), correct, dz, dweight, dbias };
}

/**
 * How much f32 rounding linearCeGrads' outputs cannot avoid, per element (assertClose's `condition`;
 * the same convention as mdaErrorScale below). A logit l = b + w.z carries an absolute error of a few
 * ulps of L = |b| + sum |w z|; softmax turns the error of a difference of two logits of sample n (at most
 * about 2 A_n, A_n its largest L) into |dp_c| <= 2 p_c (1 - p_c) 2 A_n, and the gradients multiply those
 * by z or w and sum them over the batch. With logits in the hundreds (huge z) that dominates every other
 * rounding, which is why a fixed relative tolerance fits only by luck there.
 */
export function linearCeErrorScale(
  p: LinearRefParams,
  z: ArrayLike<number>,
  labels: ArrayLike<number>,
): { loss: number; dz: Float64Array; dweight: Float64Array; dbias: Float64Array } {
  const { C, D } = p;
  const N = labels.length;
  const logits = linearForward(p, z, N);
  const dz = new Float64Array(N * D), dweight = new Float64Array(C * D), dbias = new Float64Array(C);
  let loss = 0;
  for (let n = 0; n < N; n++) {
    let A = 0;
    for (let c = 0; c < C; c++) {
      let L = Math.abs(p.bias[c]);
      for (let d = 0; d < D; d++) L += Math.abs(p.weight[c * D + d] * z[n * D + d]);
      A = Math.max(A, L);
    }
    const row = logits.subarray(n * C, (n + 1) * C);
    const logP = logSoftmax(row);
    loss += (2 * A + Math.abs(logP[labels[n]])) / N;
    for (let c = 0; c < C; c++) {
      const prob = Math.exp(logP[c]);
      // g = p - onehot: the error of p, plus the size of g itself for the sums' own rounding.
      const g = 4 * A * prob * (1 - prob) + 1 + Math.abs(prob - (c === labels[n] ? 1 : 0));
      dbias[c] += g / N;
      for (let d = 0; d < D; d++) {
        dweight[c * D + d] += (g * Math.abs(z[n * D + d])) / N;
        dz[n * D + d] += (g * Math.abs(p.weight[c * D + d])) / N;
      }
    }
  }
  return { loss, dz, dweight, dbias };
}

// ---- How much f32 rounding the MDA and LDA gradients cannot avoid --------------------------------------
//
// The kernels compute the log joint a = log w - (|z - mu|^2 / v + D s) / 2 in f32, so each a carries an
// absolute error of a few ulps of its size M = |log w| + (|z - mu|^2 / v + D |s|) / 2; a sample far from
// a component has M of 50 or more. exp() turns that absolute error into a relative one of the
// responsibilities rho and of lambda exp(delta), and the gradients sum those over components and classes,
// possibly cancelling. The scales below are, per output element, the sum of the sizes of its terms, each
// weighted by the size A of the exponents behind it: an f32 kernel's error is a small multiple of
// 2^-24 times the scale, whatever the result's own size. (assertClose's `condition` option.)

/** Per-element rounding scales of mdaForward's delta and rho and of mdaGrads' outputs. */
export function mdaErrorScale(
  p: MdaRefParams,
  z: ArrayLike<number>,
  labels: ArrayLike<number>,
  lambda: number,
): {
  delta: Float64Array;
  resp: Float64Array;
  loss: number;
  dz: Float64Array;
  dmu: Float64Array;
  dprior: Float64Array;
  dmix: Float64Array;
  dlogCov: Float64Array;
} {
  const { C, K, D } = p;
  const N = labels.length;
  const f = mdaForward(p, z, N);
  const logPi = logSoftmax(p.prior);
  const pi = logPi.map(Math.exp);
  const out = {
    delta: new Float64Array(N * C),
    resp: new Float64Array(N * K),
    loss: 0,
    dz: new Float64Array(N * D),
    dmu: new Float64Array(C * K * D),
    dprior: new Float64Array(C),
    dmix: new Float64Array(C * K),
    dlogCov: new Float64Array(C * K),
  };
  for (let n = 0; n < N; n++) {
    const y = labels[n];
    // A[c]: the exponents' size for class c (its components' a, and log pi[c]).
    const A = new Float64Array(C);
    const G = new Float64Array(C); // |g[c]| plus lambda exp(delta[c]), the part that carries a's error
    for (let c = 0; c < C; c++) {
      const logW = logSoftmax(p.mix.subarray(c * K, (c + 1) * K));
      let m = 0;
      for (let k = 0; k < K; k++) {
        const ck = c * K + k;
        const v = Math.exp(p.logCov[ck]);
        m = Math.max(
          m,
          Math.abs(logW[k]) + 0.5 * (f.m2[(n * C + c) * K + k] / v + D * Math.abs(p.logCov[ck])),
        );
      }
      A[c] = 1 + 2 * m + Math.abs(logPi[c]);
      const e = lambda * Math.exp(f.delta[n * C + c]);
      G[c] = Math.abs(e - (c === y ? 1 : 0)) + e;
      out.delta[n * C + c] = A[c];
      out.loss += ((c === y ? 1 : 0) + e) * A[c] / N;
    }
    const gTotal = G.reduce((s, x) => s + x, 0);
    const aMax = Math.max(...A);
    for (let c = 0; c < C; c++) {
      out.dprior[c] += (G[c] + pi[c] * gTotal) * aMax / N;
      const w = logSoftmax(p.mix.subarray(c * K, (c + 1) * K)).map(Math.exp);
      for (let k = 0; k < K; k++) {
        const ck = c * K + k;
        const rho = f.rho[(n * C + c) * K + k];
        if (c === y) out.resp[n * K + k] = rho * A[c];
        const v = Math.exp(p.logCov[ck]);
        for (let d = 0; d < D; d++) {
          const t = G[c] * rho * Math.abs(z[n * D + d] - p.mu[ck * D + d]) / v * A[c] / N;
          out.dmu[ck * D + d] += t;
          out.dz[n * D + d] += t;
        }
        out.dlogCov[ck] += G[c] * rho * (0.5 * f.m2[(n * C + c) * K + k] / v + D / 2) * A[c] / N;
        out.dmix[ck] += G[c] * (rho + w[k]) * A[c] / N;
      }
    }
  }
  return out;
}

/**
 * The same scales for the LDA head: it is the MDA head with K = 1 and one s shared by all classes (as in
 * ldaGrads), so these are mdaErrorScale's, with the classes' log_cov scales summed into the shared one.
 */
export function ldaErrorScale(
  p: LdaRefParams,
  z: ArrayLike<number>,
  labels: ArrayLike<number>,
  lambda: number,
): {
  delta: Float64Array;
  loss: number;
  dz: Float64Array;
  dmu: Float64Array;
  dprior: Float64Array;
  dlogCov: number;
} {
  const asMda: MdaRefParams = {
    C: p.C,
    K: 1,
    D: p.D,
    mu: p.mu,
    prior: p.prior,
    mix: new Float64Array(p.C),
    logCov: new Float64Array(p.C).fill(p.logCov),
  };
  const s = mdaErrorScale(asMda, z, labels, lambda);
  const dlogCov = s.dlogCov.reduce((sum, x) => sum + x, 0);
  return { delta: s.delta, loss: s.loss, dz: s.dz, dmu: s.dmu, dprior: s.dprior, dlogCov };
}
