// Principal component analysis in float64 for the latent-space figure (9-D LDA embeddings shown in 2-D).
// The eigen-solver is cyclic Jacobi: for the small symmetric covariance matrices here (D <= ~100) it is
// exact to rounding, needs no random start (unlike power iteration) and so gives the same axes every time.

export interface Pca {
  dim: number;
  /** Mean of the fitted data, length dim. */
  mean: Float64Array;
  /** Unit principal axes, by decreasing variance; each has its largest-magnitude entry positive. */
  components: Float64Array[];
  /** Variance along each axis (eigenvalues of the population covariance). */
  variances: number[];
  /** Trace of the covariance, so variances[i] / totalVariance is the explained fraction. */
  totalVariance: number;
}

/**
 * Eigen-decomposition of a symmetric d x d matrix (row-major) by cyclic Jacobi rotations.
 * Returns the eigenvalues (unsorted, in the order of `vectors`) and the eigenvectors as rows.
 */
export function symmetricEigen(
  matrix: ArrayLike<number>,
  d: number,
): { values: number[]; vectors: Float64Array[] } {
  if (matrix.length !== d * d) {
    throw new Error(`symmetricEigen: matrix has ${matrix.length} entries, expected ${d * d}`);
  }
  const a = Float64Array.from(matrix);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  let scale = 0;
  for (let i = 0; i < d * d; i++) scale += a[i] * a[i];
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += a[p * d + q] * a[p * d + q];
    if (off <= 1e-30 * scale || off === 0) break;
    for (let p = 0; p < d; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q];
        if (apq === 0) continue;
        // The rotation angle that zeroes a[p][q], in the numerically stable form (smaller root of t).
        const theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < d; k++) {
          const akp = a[k * d + p], akq = a[k * d + q];
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = a[p * d + k], aqk = a[q * d + k];
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p], vkq = v[k * d + q];
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values: number[] = [];
  const vectors: Float64Array[] = [];
  for (let j = 0; j < d; j++) {
    values.push(a[j * d + j]);
    const vec = new Float64Array(d);
    for (let k = 0; k < d; k++) vec[k] = v[k * d + j];
    vectors.push(vec);
  }
  return { values, vectors };
}

/** Flips `vec` in place so its largest-magnitude entry (the first one, within rounding) is positive. */
function fixSign(vec: Float64Array): void {
  let max = 0;
  for (const x of vec) max = Math.max(max, Math.abs(x));
  const lead = vec.findIndex((x) => Math.abs(x) >= max - 1e-9 * Math.max(1, max));
  if (lead >= 0 && vec[lead] < 0) { for (let k = 0; k < vec.length; k++) vec[k] = -vec[k]; }
}

/** Fits PCA on n row-major points of dimension dim, keeping `keep` axes. */
export function fitPca(data: ArrayLike<number>, n: number, dim: number, keep = 2): Pca {
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`fitPca: n = ${n}, expected a positive integer`);
  if (!(Number.isInteger(dim) && dim >= keep)) {
    throw new Error(`fitPca: dim = ${dim}, expected an integer >= ${keep} (the number of axes kept)`);
  }
  if (data.length !== n * dim) {
    throw new Error(`fitPca: data has ${data.length} values, expected n*dim = ${n * dim}`);
  }
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let k = 0; k < dim; k++) mean[k] += data[i * dim + k];
  for (let k = 0; k < dim; k++) mean[k] /= n;
  const cov = new Float64Array(dim * dim);
  const centred = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < dim; k++) centred[k] = data[i * dim + k] - mean[k];
    for (let p = 0; p < dim; p++) {
      for (let q = p; q < dim; q++) cov[p * dim + q] += centred[p] * centred[q];
    }
  }
  for (let p = 0; p < dim; p++) {
    for (let q = p; q < dim; q++) {
      cov[p * dim + q] /= n;
      cov[q * dim + p] = cov[p * dim + q];
    }
  }
  const { values, vectors } = symmetricEigen(cov, dim);
  // Stable order: equal variances keep the order of the coordinate axes they came from.
  const order = values.map((_, i) => i).sort((i, j) => values[j] - values[i] || i - j);
  const components = order.slice(0, keep).map((i) => vectors[i]);
  components.forEach(fixSign);
  let totalVariance = 0;
  for (let k = 0; k < dim; k++) totalVariance += cov[k * dim + k];
  return { dim, mean, components, variances: order.slice(0, keep).map((i) => values[i]), totalVariance };
}

/** Coordinates of row-major points (dimension pca.dim) on the kept axes, row-major [n, keep]. */
export function projectPca(pca: Pca, data: ArrayLike<number>): Float64Array {
  const { dim, mean, components } = pca;
  if (data.length % dim !== 0) {
    throw new Error(`projectPca: ${data.length} values is not a multiple of dim ${dim}`);
  }
  const n = data.length / dim, keep = components.length;
  const out = new Float64Array(n * keep);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < keep; j++) {
      let s = 0;
      for (let k = 0; k < dim; k++) s += (data[i * dim + k] - mean[k]) * components[j][k];
      out[i * keep + j] = s;
    }
  }
  return out;
}
