// Float64 references for the encoder's non-convolution layers and Adam, written straight from the
// PyTorch definitions (dnll.md §2) with no attempt at speed. Arrays are NCHW, row-major.

export type Shape4 = [number, number, number, number];

// ---- BatchNorm2d ----

export interface BatchNormRef {
  y: Float64Array;
  /** Statistics used to normalise (batch statistics in train mode, running ones in eval mode). */
  mean: Float64Array;
  invstd: Float64Array;
  /** Running statistics after the call (unchanged in eval mode). */
  runningMean: Float64Array;
  runningVar: Float64Array;
}

export interface BatchNormOptions {
  training: boolean;
  runningMean: ArrayLike<number>;
  runningVar: ArrayLike<number>;
  relu?: boolean;
  /**
   * Backward with relu: the forward outputs whose sign decides where the gradient passes (default: this
   * reference's own). A test passes the f32 kernel's outputs: an output within rounding of 0 may fall on
   * either side in f32, and the kernel's gradient follows its own forward.
   */
  reluOutput?: ArrayLike<number>;
  eps?: number;
  momentum?: number;
}

export function batchNormForward(
  x: ArrayLike<number>,
  [n, c, h, w]: Shape4,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  opts: BatchNormOptions,
): BatchNormRef {
  const eps = opts.eps ?? 1e-5, momentum = opts.momentum ?? 0.1;
  const hw = h * w, count = n * hw;
  const mean = new Float64Array(c), invstd = new Float64Array(c);
  const runningMean = Float64Array.from(opts.runningMean), runningVar = Float64Array.from(opts.runningVar);
  for (let ch = 0; ch < c; ch++) {
    if (opts.training) {
      let s = 0;
      for (let b = 0; b < n; b++) for (let i = 0; i < hw; i++) s += x[(b * c + ch) * hw + i];
      const m = s / count;
      let ss = 0;
      for (let b = 0; b < n; b++) for (let i = 0; i < hw; i++) ss += (x[(b * c + ch) * hw + i] - m) ** 2;
      mean[ch] = m;
      invstd[ch] = 1 / Math.sqrt(ss / count + eps);
      runningMean[ch] = (1 - momentum) * runningMean[ch] + momentum * m;
      runningVar[ch] = (1 - momentum) * runningVar[ch] + momentum * (ss / (count - 1));
    } else {
      mean[ch] = opts.runningMean[ch];
      invstd[ch] = 1 / Math.sqrt(opts.runningVar[ch] + eps);
    }
  }
  const y = new Float64Array(n * c * hw);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < hw; i++) {
        const k = (b * c + ch) * hw + i;
        const v = gamma[ch] * (x[k] - mean[ch]) * invstd[ch] + beta[ch];
        y[k] = opts.relu ? Math.max(v, 0) : v;
      }
    }
  }
  return { y, mean, invstd, runningMean, runningVar };
}

/**
 * Backward of batchNormForward. In train mode the gradient flows through the batch statistics; in eval
 * mode the normalisation is a fixed affine map.
 */
export function batchNormBackward(
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  shape: Shape4,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  opts: BatchNormOptions,
): {
  dx: Float64Array;
  dgamma: Float64Array;
  dbeta: Float64Array;
  dgammaCondition: Float64Array;
  dxCondition: Float64Array;
} {
  const [n, c, h, w] = shape;
  const hw = h * w, count = n * hw;
  const fwd = batchNormForward(x, shape, gamma, beta, { ...opts, relu: false });
  const g = Float64Array.from(dy);
  const gate = opts.reluOutput ?? fwd.y;
  if (opts.relu) { for (let k = 0; k < g.length; k++) if (!(gate[k] > 0)) g[k] = 0; }
  const dgamma = new Float64Array(c), dbeta = new Float64Array(c), dx = new Float64Array(g.length);
  const dgammaCondition = new Float64Array(c), dxCondition = new Float64Array(g.length);
  for (let ch = 0; ch < c; ch++) {
    let sdy = 0, sdyxhat = 0, sumAbsTerms = 0;
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < hw; i++) {
        const k = (b * c + ch) * hw + i;
        const term = g[k] * (x[k] - fwd.mean[ch]) * fwd.invstd[ch];
        sdy += g[k];
        sdyxhat += term;
        sumAbsTerms += Math.abs(term);
      }
    }
    dgamma[ch] = sdyxhat;
    // f32's error in dgamma: the rounding of a sum of terms this size (it may cancel to near 0), plus the
    // f32 mean's error (a few ulps of |mean|) times invstd, shared by every term and so scaled by sum(g).
    dgammaCondition[ch] = sumAbsTerms + Math.abs(sdy) * Math.abs(fwd.mean[ch]) * fwd.invstd[ch];
    dbeta[ch] = sdy;
    const scale = Math.abs(gamma[ch]) * fwd.invstd[ch];
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < hw; i++) {
        const k = (b * c + ch) * hw + i;
        const xhat = (x[k] - fwd.mean[ch]) * fwd.invstd[ch];
        dx[k] = opts.training
          ? gamma[ch] * fwd.invstd[ch] / count * (count * g[k] - sdy - xhat * sdyxhat)
          : gamma[ch] * fwd.invstd[ch] * g[k];
        // f32's error in dx: the rounding of its terms, plus the f32 mean's error (a few ulps of |mean|),
        // which shifts every xhat of the channel alike by that times invstd, and so sdyxhat by the shift
        // times sum(g): large when the channel sits far from zero with a small spread (invstd large).
        const shift = Math.abs(fwd.mean[ch]) * fwd.invstd[ch];
        dxCondition[k] = opts.training
          ? scale / count *
            (count * Math.abs(g[k]) + Math.abs(sdy) + Math.abs(xhat) * sumAbsTerms +
              shift * (Math.abs(sdyxhat) + Math.abs(xhat) * Math.abs(sdy)))
          : scale * Math.abs(g[k]);
      }
    }
  }
  return { dx, dgamma, dbeta, dgammaCondition, dxCondition };
}

// ---- ReLU ----

export function reluForward(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => Math.max(v, 0));
}

/** PyTorch: the gradient passes where the forward output is positive. */
export function reluBackward(y: ArrayLike<number>, dy: ArrayLike<number>): Float64Array {
  return Float64Array.from(dy, (g, k) => (y[k] > 0 ? g : 0));
}

// ---- MaxPool2d(2, 2) ----

/** Output and, per output, the window position 0..3 (row-major) of the first maximum. */
export function maxPoolForward(
  x: ArrayLike<number>,
  [n, c, h, w]: Shape4,
): { y: Float64Array; argmax: Uint32Array } {
  const oh = Math.floor(h / 2), ow = Math.floor(w / 2);
  const y = new Float64Array(n * c * oh * ow), argmax = new Uint32Array(y.length);
  for (let p = 0; p < n * c; p++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        let best = -Infinity, at = -1;
        for (let d = 0; d < 4; d++) {
          const v = x[(p * h + 2 * i + (d >> 1)) * w + 2 * j + (d & 1)];
          if (at < 0 || v > best) {
            best = v;
            at = d;
          }
        }
        const o = (p * oh + i) * ow + j;
        y[o] = best;
        argmax[o] = at;
      }
    }
  }
  return { y, argmax };
}

export function maxPoolBackward(x: ArrayLike<number>, dy: ArrayLike<number>, shape: Shape4): Float64Array {
  const [n, c, h, w] = shape;
  const oh = Math.floor(h / 2), ow = Math.floor(w / 2);
  const { argmax } = maxPoolForward(x, shape);
  const dx = new Float64Array(n * c * h * w);
  for (let p = 0; p < n * c; p++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        const o = (p * oh + i) * ow + j;
        const d = argmax[o];
        dx[(p * h + 2 * i + (d >> 1)) * w + 2 * j + (d & 1)] += dy[o];
      }
    }
  }
  return dx;
}

// ---- Global average pool ----

export function avgPoolForward(x: ArrayLike<number>, [n, c, h, w]: Shape4): Float64Array {
  const hw = h * w;
  const y = new Float64Array(n * c);
  for (let p = 0; p < n * c; p++) {
    let s = 0;
    for (let i = 0; i < hw; i++) s += x[p * hw + i];
    y[p] = s / hw;
  }
  return y;
}

export function avgPoolBackward(dy: ArrayLike<number>, [n, c, h, w]: Shape4): Float64Array {
  const hw = h * w;
  const dx = new Float64Array(n * c * hw);
  for (let p = 0; p < n * c; p++) for (let i = 0; i < hw; i++) dx[p * hw + i] = dy[p] / hw;
  return dx;
}

// ---- Linear ----

/** y = x W^T + b with x [n, in], W [out, in], b [out]. */
export function linearForward(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  n: number,
  inF: number,
  outF: number,
): Float64Array {
  const y = new Float64Array(n * outF);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < outF; o++) {
      let s = bias[o];
      for (let i = 0; i < inF; i++) s += x[b * inF + i] * weight[o * inF + i];
      y[b * outF + o] = s;
    }
  }
  return y;
}

export function linearBackward(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  dy: ArrayLike<number>,
  n: number,
  inF: number,
  outF: number,
): { dx: Float64Array; dweight: Float64Array; dbias: Float64Array } {
  const dx = new Float64Array(n * inF),
    dweight = new Float64Array(outF * inF),
    dbias = new Float64Array(outF);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < outF; o++) {
      const g = dy[b * outF + o];
      dbias[o] += g;
      for (let i = 0; i < inF; i++) {
        dx[b * inF + i] += g * weight[o * inF + i];
        dweight[o * inF + i] += g * x[b * inF + i];
      }
    }
  }
  return { dx, dweight, dbias };
}

// ---- Adam ----

export interface AdamRefState {
  param: Float64Array;
  m: Float64Array;
  v: Float64Array;
  step: number;
}

/** One PyTorch Adam step (no weight decay, no amsgrad), in place. */
export function adamStep(
  s: AdamRefState,
  grad: ArrayLike<number>,
  { lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8 } = {},
): void {
  s.step += 1;
  const bc1 = 1 - beta1 ** s.step, bc2 = 1 - beta2 ** s.step;
  for (let i = 0; i < s.param.length; i++) {
    s.m[i] = beta1 * s.m[i] + (1 - beta1) * grad[i];
    s.v[i] = beta2 * s.v[i] + (1 - beta2) * grad[i] * grad[i];
    s.param[i] -= (lr / bc1) * s.m[i] / (Math.sqrt(s.v[i]) / Math.sqrt(bc2) + eps);
  }
}
