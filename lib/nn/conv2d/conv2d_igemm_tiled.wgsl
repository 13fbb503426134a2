// Conv2d 3x3, padding 1, stride 1, NCHW, as a workgroup-tiled implicit GEMM: forward and input gradient.
//
// conv_igemm: x [N, CI, H, W], w [CO, CI, 3, 3], bias [CO] -> y [N, CO, H, W]
//   y[m, o] = bias[o] + sum_k A[m, k] * B[k, o],  m = (n, pixel), k = (c, tap),
//   A[m, k] = x[n, c, py+ky-1, px+kx-1] (zero outside the image: im2col, never materialised),
//   B[k, o] = w[o, c, tap].
// With `transposed` set the same kernel computes the input gradient from dy: the "input" is dy with CO
// channels, the "output" dx has CI channels, and B[(o, tap), c] = w[o, c, 8 - tap] (flipped kernel).
//
// Where it wins: GPUs (the shape TensorFlow.js, ONNX Runtime and Burn converged on). A workgroup owns a
// BM x BN tile of the output (pixels x channels); each step gathers a BM x BK slice of A (im2col on the fly)
// and a BK x BN slice of B into workgroup memory, then every invocation multiplies a TM x TN register
// block out of them, so each loaded value serves TN (or TM) multiply-adds from fast memory. Consecutive
// invocations load and store consecutive pixels (coalesced along W). On llvmpipe it loses to
// conv2d_register_block.wgsl: barriers are expensive there and workgroup memory buys nothing.
//
// Loops over the register block and the K-slice are marked `/* unroll */` (lib/gpu/unroll.ts): on the
// SPIR-V path naga adds a counter to every loop and clamps every dynamic index, which a GPU compiler
// does not always remove. Each output is one fma chain over k = 0 .. K-1 in order: fixed-order
// reductions, so the same kernel gives the same bits. The tile sizes are constants rewritten per variant
// (WGSL sizes workgroup arrays only with constants); conv2d.ts lists the variants.

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;
// Invocations along M and N; the workgroup is WM * WN invocations.
const WM: u32 = 16u;
const WN: u32 = 16u;
const WG: u32 = 256u;

struct Params {
  n: u32,
  // Channels of the GEMM's input (x, or dy when transposed) and output (y, or dx).
  cin: u32,
  h: u32,
  w: u32,
  cout: u32,
  // Rows of A (n * h * w) and the reduction length (cin * 9).
  m: u32,
  k: u32,
  transposed: u32,
  hasBias: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

var<workgroup> As: array<array<f32, BM>, BK>;
var<workgroup> Bs: array<array<f32, BN>, BK>;

var<private> acc: array<array<f32, TN>, TM>;
var<private> av: array<f32, TM>;
var<private> bv: array<f32, TN>;

// A[m, k]: one im2col element, 0 outside the image or past the ends.
fn loadA(m: u32, k: u32) -> f32 {
  if (m >= p.m || k >= p.k) {
    return 0.0;
  }
  let plane = p.h * p.w;
  let n = m / plane;
  let pix = m % plane;
  let c = k / 9u;
  let tap = k % 9u;
  let iy = i32(pix / p.w) + i32(tap / 3u) - 1;
  let ix = i32(pix % p.w) + i32(tap % 3u) - 1;
  if (iy < 0 || iy >= i32(p.h) || ix < 0 || ix >= i32(p.w)) {
    return 0.0;
  }
  return x[(n * p.cin + c) * plane + u32(iy) * p.w + u32(ix)];
}

// B[k, o]: a weight of the forward kernel, or of the transposed and flipped one.
fn loadB(k: u32, o: u32) -> f32 {
  if (k >= p.k || o >= p.cout) {
    return 0.0;
  }
  if (p.transposed == 0u) {
    return weight[o * p.k + k];
  }
  // k = (oc, tap) over dy's channels; the weight tensor is [cin, cout, 3, 3] in this GEMM's names.
  let oc = k / 9u;
  let tap = k % 9u;
  return weight[(oc * p.cout + o) * 9u + 8u - tap];
}

@compute @workgroup_size(WG)
fn conv_igemm(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let mBase = wid.x * BM;
  let nBase = wid.y * BN;
  let tm = tid % WM;
  let tn = tid / WM;
  for (var kBase = 0u; kBase < p.k; kBase += BK) {
    // Consecutive invocations take consecutive pixels (A) and consecutive k (B: w is k-contiguous).
    /* unroll */ for (var i = 0u; i < BM * BK / WG; i++) {
      let e = tid + i * WG;
      As[e / BM][e % BM] = loadA(mBase + e % BM, kBase + e / BM);
    }
    /* unroll */ for (var i = 0u; i < BN * BK / WG; i++) {
      let e = tid + i * WG;
      Bs[e % BK][e / BK] = loadB(kBase + e % BK, nBase + e / BK);
    }
    workgroupBarrier();
    /* unroll */ for (var kk = 0u; kk < BK; kk++) {
      /* unroll */ for (var i = 0u; i < TM; i++) {
        av[i] = As[kk][tm + i * WM];
      }
      /* unroll */ for (var j = 0u; j < TN; j++) {
        bv[j] = Bs[kk][tn + j * WN];
      }
      /* unroll */ for (var i = 0u; i < TM; i++) {
        /* unroll */ for (var j = 0u; j < TN; j++) {
          acc[i][j] = fma(av[i], bv[j], acc[i][j]);
        }
      }
    }
    workgroupBarrier();
  }
  let plane = p.h * p.w;
  /* unroll */ for (var i = 0u; i < TM; i++) {
    let m = mBase + tm + i * WM;
    if (m < p.m) {
      let n = m / plane;
      let pix = m % plane;
      /* unroll */ for (var j = 0u; j < TN; j++) {
        let o = nBase + tn + j * WN;
        if (o < p.cout) {
          var b = 0.0;
          if (p.hasBias != 0u) {
            b = bias[o];
          }
          y[(n * p.cout + o) * plane + pix] = b + acc[i][j];
        }
      }
    }
  }
}
