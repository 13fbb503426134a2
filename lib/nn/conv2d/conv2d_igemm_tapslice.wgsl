// Conv2d 3x3, padding 1, stride 1, NCHW, as a workgroup-tiled implicit GEMM whose every K-slice is one
// tap of the 3x3 kernel over bk consecutive channels: forward and input gradient.
//
// conv_tapslice: x [N, CI, H, W], w [CO, CI, 3, 3], bias [CO] -> y [N, CO, H, W]
//   y[m, o] = bias[o] + sum over channel blocks c0, taps t, channels c = c0 .. c0+BK-1 of
//             x[n, c, py+ky-1, px+kx-1] * w[o, c, t],   m = (n, pixel (py, px)), t = (ky, kx),
// each output one fma chain in that order. With `transposed` set the same kernel computes the input
// gradient from dy: the GEMM's input is dy (CO channels), its output dx (CI channels), and the weight of
// (input channel oc, tap t, output channel c) is w[oc, c, 8 - t] (the flipped kernel).
//
// Where it may win: GPUs, against conv2d_igemm_tiled.wgsl, which it changes in three places; the tuner
// decides per layer shape (not measured on a GPU yet).
// - The K order. igemm_tiled walks k = (channel, tap), so each of its im2col loads decodes its k into a
//   channel and a tap and tests the shifted pixel against the image: about 20 instructions a load, and
//   an invocation of its 64 x 64 tile with 8 x 8 blocks makes 8 such loads per K-slice beside 512
//   multiply-adds, about a fifth of its instructions. Here a K-slice is one tap and BK channels: the
//   shifted pixel, its test and its address are worked out once per slice and pixel, and each load is
//   a multiply-add of the address, a compare and the load. The sums run in another order than
//   igemm_tiled's (other bits, within rounding; the tuner checks every candidate against the reference
//   kernel's output).
// - vec4 workgroup reads. Each invocation's TM x TN block is made of 4 x 4 pieces: rows tm*4 .. tm*4+3
//   of each of the TM/4 bands of the tile (a band is 4*WM rows), and the same for columns, so one
//   K-row of its A values is TM/4 vec4 reads of workgroup memory and its B values TN/4, where
//   igemm_tiled reads TM + TN scalars (rows WM apart, so that its stores coalesce). Consecutive
//   invocations read consecutive vec4s: no bank conflicts. The cost: an invocation's stores are 4
//   pixels apart (each output is stored once; the K loop dominates).
// - The weights are repacked first (conv_tapslice_pack, a small dispatch per pass: 9*CI*CO values) into
//   B's own order, wp[t][c][o] = B[(t, c), o], so that a tile of B is whole rows of wp. Read from w
//   itself, consecutive output channels are 9*CI floats apart (forward) or 9 (input gradient): every
//   invocation of a warp would touch its own cache line, for as many loads as A's.
// Loads from memory into the tiles: consecutive invocations take consecutive pixels of one channel (A) and
// consecutive output channels of one row of wp (B): both coalesced. Each stores one float into a vec4 of
// the tile (different invocations, different components: no race in WGSL's memory model). Whole-vec4
// stores (4 pixels per invocation) and branch-free loads were tried: they made SwiftShader, Chromium's
// software WebGPU, 10-50 times slower on this kernel (the browser suite runs it).
//
// - STAGES (the kernel name's `stages`) 1: one set of workgroup tiles; each K-slice is loaded from memory
//   and stored into the tiles right before its multiply-adds, and two barriers per slice keep the next
//   slice's stores behind every invocation's reads. 2: two sets of tiles used in turn; each slice's loads
//   from memory are issued before the previous slice's multiply-adds (held in registers meanwhile: the
//   memory latency hides behind the arithmetic, where with 1 it is exposed unless other workgroups run
//   on the SM) and one barrier per slice suffices, as the tiles being filled are not the ones being read.
//   The cost: twice the workgroup memory and the registers of one slice's loads. Same values, same fma
//   chains: both give the same bits (tested).
// Loops over the register block and the K-row are marked `/* unroll */` (lib/gpu/unroll.ts; see
// conv2d_igemm_tiled.wgsl for why). Block sizes are constants rewritten per variant by conv2d.ts
// (kernels.ts lists the candidates and checks their constraints).

// The block constants (BM, BN, BK, TM, TN, STAGES, WM, WN, WG and the loader layout): gemm_vec4_tiles.wgsl.

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
// B in its own order, wp[(t * cin + c) * cout + o] (conv_tapslice_pack writes it).
@group(0) @binding(2) var<storage, read> wp: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// The workgroup tiles, the register block acc and the K-slice loop: gemm_vec4_tiles.wgsl (appended).

// The pixels this invocation loads A for (decoded once; im2col3x3.wgsl, appended by conv2d.ts), and the
// output channels it loads B for.
var<private> aPix: array<Im2colPixel, A_PIX>;
var<private> bCol: array<u32, B_COLS>;

fn decode_loads(tid: u32, mBase: u32, nBase: u32) {
  /* unroll */ for (var q = 0u; q < A_PIX; q++) {
    aPix[q] = im2col_pixel(mBase + tid % BM + q * WG, p.m, p.cin, p.h, p.w);
  }
  /* unroll */ for (var q = 0u; q < B_COLS; q++) {
    bCol[q] = nBase + tid % BN + q * WG;
  }
}

// A's slice for channels c0 .. c0+BK-1 at tap `tap`: consecutive invocations take consecutive pixels.
fn fetch_a(c0: u32, tap: u32) {
  let ky = tap / 3u;
  let kx = tap - 3u * ky;
  let plane = p.h * p.w;
  /* unroll */ for (var q = 0u; q < A_PIX; q++) {
    let r = aPix[q];
    let iy = r.py + i32(ky) - 1;
    let ix = r.px + i32(kx) - 1;
    let ok = r.inside && iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w);
    // Only read when ok; clamped so that the address is in range whatever ok is.
    let at = r.image + u32(max(iy, 0)) * p.w + u32(max(ix, 0));
    /* unroll */ for (var j = 0u; j < BK / A_KSTRIDE; j++) {
      let c = c0 + j * A_KSTRIDE;
      var v = 0.0;
      if (ok && c < p.cin) {
        v = x[at + c * plane];
      }
      aLoads[q][j] = v;
    }
  }
}

// B's slice for the same channels and tap: rows t * cin + c of wp, consecutive invocations taking
// consecutive output channels.
fn fetch_b(c0: u32, tap: u32) {
  let row0 = tap * p.cin + c0;
  /* unroll */ for (var q = 0u; q < B_COLS; q++) {
    let o = bCol[q];
    /* unroll */ for (var j = 0u; j < BK / B_KSTRIDE; j++) {
      let c = c0 + j * B_KSTRIDE;
      var v = 0.0;
      if (o < p.cout && c < p.cin) {
        v = wp[(row0 + j * B_KSTRIDE) * p.cout + o];
      }
      bLoads[q][j] = v;
    }
  }
}

// Slice s: taps 0..8 of channel block 0, then of block 1, ...; each invocation's first K-row (tid / BM
// for A, tid / BN for B) is folded into c0, so that the loads above test and address channels without it.
fn fetch_slice(tid: u32, s: u32) {
  let c0 = s / 9u * BK;
  let tap = s % 9u;
  fetch_a(c0 + tid / BM, tap);
  fetch_b(c0 + tid / BN, tap);
}

fn store_tile(tm: u32, tn: u32, mBase: u32, nBase: u32) {
  let plane = p.h * p.w;
  /* unroll */ for (var f = 0u; f < TM / 4u; f++) {
    /* unroll */ for (var r = 0u; r < 4u; r++) {
      let m = mBase + f * 4u * WM + tm * 4u + r;
      if (m < p.m) {
        let n = m / plane;
        let pix = m - n * plane;
        /* unroll */ for (var g = 0u; g < TN / 4u; g++) {
          /* unroll */ for (var s = 0u; s < 4u; s++) {
            let o = nBase + g * 4u * WN + tn * 4u + s;
            if (o < p.cout) {
              var b = 0.0;
              if (p.hasBias != 0u) {
                b = bias[o];
              }
              y[(n * p.cout + o) * plane + pix] = b + acc[f * 4u + r][g][s];
            }
          }
        }
      }
    }
  }
}

@compute @workgroup_size(WG)
fn conv_tapslice(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let mBase = wid.x * BM;
  let nBase = wid.y * BN;
  decode_loads(tid, mBase, nBase);
  gemm_slices(tid, (p.cin + BK - 1u) / BK * 9u);
  store_tile(tid % WM, tid / WM, mBase, nBase);
}

// conv_tapslice_pack: w [CO, CI, 3, 3] (PyTorch's layout) -> wp [9, cin, cout], B of this GEMM in its own
// order: wp[t][c][o] = w[o, c, t] (forward), or for the input gradient, where the GEMM's input channels
// are the layer's outputs oc and its outputs the layer's inputs c', wp[t][oc][c'] = w[oc, c', 8 - t].
// One invocation per value; a copy, no arithmetic.
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> packed: array<f32>;

@compute @workgroup_size(64)
fn conv_tapslice_pack(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * 64u;
  let perTap = p.cin * p.cout;
  if (i >= 9u * perTap) {
    return;
  }
  let t = i / perTap;
  let c = (i - t * perTap) / p.cout;
  let o = i - t * perTap - c * p.cout;
  if (p.transposed == 0u) {
    packed[i] = weight[(o * p.cin + c) * 9u + t];
  } else {
    packed[i] = weight[(c * p.cout + o) * 9u + 8u - t];
  }
}
