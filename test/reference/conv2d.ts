// Float64 reference for Conv2d with a 3x3 kernel, padding 1, stride 1 (PyTorch semantics), NCHW.
// Written as plain loops so that it is obviously right; the tests compare the WGSL kernels to it.

export interface ConvShape {
  n: number;
  cin: number;
  cout: number;
  h: number;
  w: number;
}

/** y[n,o,y,x] = b[o] + sum_{c,ky,kx} w[o,c,ky,kx] * x[n,c,y+ky-1,x+kx-1] (zero outside the image). */
export function conv2dForward(
  s: ConvShape,
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
): Float64Array {
  const { n, cin, cout, h, w } = s;
  const y = new Float64Array(n * cout * h * w);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < cout; o++) {
      for (let yy = 0; yy < h; yy++) {
        for (let xx = 0; xx < w; xx++) {
          let sum = bias[o];
          for (let c = 0; c < cin; c++) {
            for (let ky = 0; ky < 3; ky++) {
              const iy = yy + ky - 1;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < 3; kx++) {
                const ix = xx + kx - 1;
                if (ix < 0 || ix >= w) continue;
                sum += weight[((o * cin + c) * 3 + ky) * 3 + kx] * x[((b * cin + c) * h + iy) * w + ix];
              }
            }
          }
          y[((b * cout + o) * h + yy) * w + xx] = sum;
        }
      }
    }
  }
  return y;
}

/** dL/dx for dL/dy = dy: a full correlation of dy with the flipped, transposed kernel. */
export function conv2dInputGrad(
  s: ConvShape,
  dy: ArrayLike<number>,
  weight: ArrayLike<number>,
): Float64Array {
  const { n, cin, cout, h, w } = s;
  const dx = new Float64Array(n * cin * h * w);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < cout; o++) {
      for (let yy = 0; yy < h; yy++) {
        for (let xx = 0; xx < w; xx++) {
          const g = dy[((b * cout + o) * h + yy) * w + xx];
          for (let c = 0; c < cin; c++) {
            for (let ky = 0; ky < 3; ky++) {
              const iy = yy + ky - 1;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < 3; kx++) {
                const ix = xx + kx - 1;
                if (ix < 0 || ix >= w) continue;
                dx[((b * cin + c) * h + iy) * w + ix] += g * weight[((o * cin + c) * 3 + ky) * 3 + kx];
              }
            }
          }
        }
      }
    }
  }
  return dx;
}

/** dL/dweight [cout,cin,3,3] and dL/dbias [cout] for dL/dy = dy and the forward input x. */
export function conv2dParamGrads(
  s: ConvShape,
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
): { dweight: Float64Array; dbias: Float64Array } {
  const { n, cin, cout, h, w } = s;
  const dweight = new Float64Array(cout * cin * 9);
  const dbias = new Float64Array(cout);
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < cout; o++) {
      for (let yy = 0; yy < h; yy++) {
        for (let xx = 0; xx < w; xx++) {
          const g = dy[((b * cout + o) * h + yy) * w + xx];
          dbias[o] += g;
          for (let c = 0; c < cin; c++) {
            for (let ky = 0; ky < 3; ky++) {
              const iy = yy + ky - 1;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < 3; kx++) {
                const ix = xx + kx - 1;
                if (ix < 0 || ix >= w) continue;
                dweight[((o * cin + c) * 3 + ky) * 3 + kx] += g * x[((b * cin + c) * h + iy) * w + ix];
              }
            }
          }
        }
      }
    }
  }
  return { dweight, dbias };
}
