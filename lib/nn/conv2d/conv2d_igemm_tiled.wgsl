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
// Index arithmetic. A GPU has no integer divider: a division by a value known only at run time (the image
// size) costs a few dozen instructions, as much as the multiply-adds a load feeds. Which pixel each of an
// invocation's A loads reads does not depend on the K-slice, so it is decoded into registers once, before
// the K loop (decode_a_rows); per slice only k's channel and tap remain, divisions by the constants 9
// and 3, which compile to a multiply (im2col3x3.wgsl, shared with the split-K weight gradient). Bs rows are padded by one value: its loaders write down a column
// (consecutive invocations, consecutive k), and rows of BN = 64 floats would put those writes in the
// same memory bank. Neither changes a value or the order of a sum.
//
// Loops over the register block and the K-slice are marked `/* unroll */` (lib/gpu/unroll.ts): on the
// SPIR-V path naga adds a counter to every loop and clamps every dynamic index, which a GPU compiler
// does not always remove. Each output is one fma chain over k = 0 .. K-1 in order: fixed-order
// reductions, so the same kernel gives the same bits. The tile sizes are constants rewritten per variant
// (WGSL sizes workgroup arrays only with constants); conv2d.ts lists the variants.
//
// vec4 loads. conv_igemm_vec4w is conv_igemm with the weight tile read as vec4s: in the forward pass B's
// column o is w[o, :] itself, contiguous in k, so when K = CI * 9 and BK are multiples of 4 (CI % 4 == 0:
// every notebook layer after the first) each invocation loads 4 consecutive k of one output channel in one
// 16-byte load, consecutive invocations on consecutive addresses; the values and the order of the sums
// are those of conv_igemm, so it gives the same bits (tested). The other operands stay scalar on purpose:
// - A (the im2col gather): of the 3 taps along a row, two read the input shifted by one element, so four
//   consecutive pixels start 16-byte aligned for at most one tap in three, and rows of W = 14 or 7 values
//   (the notebook's) end inside a vec4; a vec4 path would need two loads and a shuffle per tap and per
//   row edge, more instructions than the scalar loads it replaces.
// - B of the input gradient (transposed): the flipped kernel reads each (o, c) pair's 9 taps backwards
//   and jumps by CI * 9 between output channels, so no 4 consecutive k are 4 consecutive addresses.
// - The stores: each invocation's TM outputs are WM pixels apart (so that a warp stores consecutive
//   pixels, coalesced), not 4 consecutive values.

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
// conv_igemm_vec4w: the same weights, read 4 at a time.
@group(0) @binding(2) var<storage, read> weight4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

var<workgroup> As: array<array<f32, BM>, BK>;
var<workgroup> Bs: array<array<f32, BN + 1u>, BK>;

var<private> acc: array<array<f32, TN>, TM>;
var<private> av: array<f32, TM>;
var<private> bv: array<f32, TN>;

// A values each invocation loads per K-slice, and the pixel of each (decode_a_rows; rows past p.m are
// outside and read zeros). Im2colPixel and the im2col functions: im2col3x3.wgsl, appended by conv2d.ts.
const A_LOADS: u32 = BM * BK / WG;
var<private> aPixel: array<Im2colPixel, A_LOADS>;

// The pixel of load i of load_tile_a: row (tid + i * WG) % BM of the tile, whatever the K-slice.
fn decode_a_rows(tid: u32, mBase: u32) {
  /* unroll */ for (var i = 0u; i < A_LOADS; i++) {
    aPixel[i] = im2col_pixel(mBase + (tid + i * WG) % BM, p.m, p.cin, p.h, p.w);
  }
}

// A[m, k] for load i's pixel m: one im2col element, 0 outside the image or past the ends.
fn loadA(i: u32, k: u32) -> f32 {
  if (!aPixel[i].inside || k >= p.k) {
    return 0.0;
  }
  return im2col_element(aPixel[i], k, p.h, p.w);
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

// One BM x BK slice of A into workgroup memory: consecutive invocations take consecutive pixels.
fn load_tile_a(tid: u32, kBase: u32) {
  /* unroll */ for (var i = 0u; i < A_LOADS; i++) {
    let e = tid + i * WG;
    As[e / BM][e % BM] = loadA(i, kBase + e / BM);
  }
}

// One BK x BN slice of B: consecutive invocations take consecutive k (w is k-contiguous).
fn load_tile_b(tid: u32, nBase: u32, kBase: u32) {
  /* unroll */ for (var i = 0u; i < BN * BK / WG; i++) {
    let e = tid + i * WG;
    Bs[e % BK][e / BK] = loadB(kBase + e % BK, nBase + e / BK);
  }
}

// The same slice of the forward pass's B as vec4s (K % 4 == 0, BK % 4 == 0): 4 consecutive k of one
// output channel per load, wholly inside or wholly past the end of K.
fn load_tile_b4(tid: u32, nBase: u32, kBase: u32) {
  /* unroll */ for (var i = 0u; i < (BN * BK / 4u + WG - 1u) / WG; i++) {
    let e = tid + i * WG;
    if (e < BN * BK / 4u) {
      let kq = 4u * (e % (BK / 4u));
      let o = nBase + e / (BK / 4u);
      var v = vec4<f32>(0.0);
      if (kBase + kq < p.k && o < p.cout) {
        v = weight4[(o * p.k + kBase + kq) / 4u];
      }
      let col = e / (BK / 4u);
      Bs[kq][col] = v.x;
      Bs[kq + 1u][col] = v.y;
      Bs[kq + 2u][col] = v.z;
      Bs[kq + 3u][col] = v.w;
    }
  }
}

// acc += this invocation's TM x TN block of As * Bs, k in order.
fn multiply_tile(tm: u32, tn: u32) {
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
}

fn store_tile(tm: u32, tn: u32, mBase: u32, nBase: u32) {
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

@compute @workgroup_size(WG)
fn conv_igemm(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let mBase = wid.x * BM;
  let nBase = wid.y * BN;
  decode_a_rows(tid, mBase);
  for (var kBase = 0u; kBase < p.k; kBase += BK) {
    load_tile_a(tid, kBase);
    load_tile_b(tid, nBase, kBase);
    workgroupBarrier();
    multiply_tile(tid % WM, tid / WM);
    workgroupBarrier();
  }
  store_tile(tid % WM, tid / WM, mBase, nBase);
}

// The forward pass with the weights read as vec4s (see the header); the host picks it when the shape allows.
@compute @workgroup_size(WG)
fn conv_igemm_vec4w(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let mBase = wid.x * BM;
  let nBase = wid.y * BN;
  decode_a_rows(tid, mBase);
  for (var kBase = 0u; kBase < p.k; kBase += BK) {
    load_tile_a(tid, kBase);
    load_tile_b4(tid, nBase, kBase);
    workgroupBarrier();
    multiply_tile(tid % WM, tid / WM);
    workgroupBarrier();
  }
  store_tile(tid % WM, tid / WM, mBase, nBase);
}
