// Conv2d 3x3 (padding 1, stride 1) weight and bias gradients, NCHW.
//
// wgrad_partial: x [N, CI, H, W], dy [N, CO, H, W] -> part [oBlocks, cBlocks, splits, partStride]
//   dw[o,c,ky,kx] = sum_{n,y,x} dy[n,o,y,x] * x[n,c,y+ky-1,x+kx-1],  db[o] = sum_{n,y,x} dy[n,o,y,x]
// wgrad_reduce:  part -> dw [CO, CI, 3, 3] or db [CO] (overwritten)
//
// Where it wins: llvmpipe and lavapipe (no barriers, no workgroup memory); on GPUs the split-K GEMM in
// conv2d_wgrad_splitk.wgsl. It is the reference the tuner checks the other weight-gradient kernels against.
//
// A GEMM whose reduction (N*H*W) is huge and whose result is small, so the reduction is split: each
// invocation owns 4*RO4 output channels x RC input channels x 9 taps in registers and walks every
// `splits`-th strip (one image, TQ columns, all rows) of the batch; wgrad_reduce then adds the splits in
// a fixed order, so the result is deterministic without atomics.
//
// A strip is walked row by row through a sliding window of three input rows, so each input value is
// loaded once per strip (plus one halo column each side) and each dy value once; one row feeds
// 9*TQ multiply-adds per (output, input) channel pair. On llvmpipe every storage load is gathered lane
// by lane and costs about as much as 80 multiply-adds, so the block (16 x 8 channels) is as large as
// compile time allows; the rows run in a loop (not unrolled) to keep the code, and so compile time,
// small. Loops over the register block are marked `/* unroll */` and expanded before compilation, so
// private arrays are indexed only by constants (why:
// conv2d_register_block.wgsl); conv2d.ts rewrites the three block-size declarations for GPUs.

const RO4: u32 = 4u;
const RC: u32 = 8u;
const TQ: u32 = 7u;
override WG: u32 = 64u;

struct WgradParams {
  n: u32,
  ci: u32,
  h: u32,
  w: u32,
  co: u32,
  stripsX: u32,
  nStrips: u32,
  splits: u32,
  cBlocks: u32,
  oBlocks: u32,
  // vec4 per partial: RC * 9 * RO4 weight sums, then RO4 bias sums.
  partStride4: u32,
}

@group(0) @binding(0) var<uniform> p: WgradParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<vec4<f32>>;

var<private> acc: array<array<array<vec4<f32>, RO4>, 9>, RC>;
var<private> bacc: array<vec4<f32>, RO4>;
// Input rows y-1, y and y+1 of the current output row y, TQ+2 columns each.
var<private> xr: array<array<array<f32, TQ + 2u>, RC>, 3>;
var<private> dyv: array<array<vec4<f32>, RO4>, TQ>;
var<private> colOff: array<u32, TQ + 2u>;
var<private> colOk: array<bool, TQ + 2u>;
var<private> chanOff: array<u32, RC>;
var<private> chanOk: array<bool, RC>;
var<private> outOff: array<array<u32, 4>, RO4>;
var<private> outOk: array<array<bool, 4>, RO4>;

// Input row yy (zero outside the image) of the block's RC channels into xr[2].
fn loadRowIntoSlot2(xBase: u32, yy: i32) {
  let inside = yy >= 0 && yy < i32(p.h);
  let rowOff = u32(clamp(yy, 0, i32(p.h) - 1)) * p.w;
  /* unroll */ for (var c = 0u; c < RC; c++) {
    /* unroll */ for (var j = 0u; j < TQ + 2u; j++) {
      let v = x[xBase + chanOff[c] + rowOff + colOff[j]];
      xr[2][c][j] = select(0.0, v, inside && chanOk[c] && colOk[j]);
    }
  }
}

@compute @workgroup_size(WG)
fn wgrad_partial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let g = gid.x + gid.y * nw.x * WG;
  let s = g % p.splits;
  let cb = (g / p.splits) % p.cBlocks;
  let ob = g / (p.splits * p.cBlocks);
  if (ob >= p.oBlocks) {
    return;
  }
  let plane = p.h * p.w;
  /* unroll */ for (var c = 0u; c < RC; c++) {
    let ch = cb * RC + c;
    chanOk[c] = ch < p.ci;
    chanOff[c] = min(ch, p.ci - 1u) * plane;
  }
  /* unroll */ for (var r = 0u; r < RO4; r++) {
    /* unroll */ for (var k = 0u; k < 4u; k++) {
      let o = ob * 4u * RO4 + r * 4u + k;
      outOk[r][k] = o < p.co;
      outOff[r][k] = min(o, p.co - 1u) * plane;
    }
  }
  for (var t = s; t < p.nStrips; t += p.splits) {
    let sx = t % p.stripsX;
    let n = t / p.stripsX;
    let x0 = i32(sx * TQ) - 1;
    /* unroll */ for (var j = 0u; j < TQ + 2u; j++) {
      let xx = x0 + i32(j);
      colOk[j] = xx >= 0 && xx < i32(p.w);
      colOff[j] = u32(clamp(xx, 0, i32(p.w) - 1));
    }
    let xBase = n * p.ci * plane;
    let dyBase = n * p.co * plane;
    // Row -1 is padding; row 0 is loaded into the slot that the loop shifts down first.
    /* unroll */ for (var c = 0u; c < RC; c++) {
      /* unroll */ for (var j = 0u; j < TQ + 2u; j++) {
        xr[1][c][j] = 0.0;
      }
    }
    loadRowIntoSlot2(xBase, 0);
    for (var yy = 0u; yy < p.h; yy++) {
      xr[0] = xr[1];
      xr[1] = xr[2];
      loadRowIntoSlot2(xBase, i32(yy) + 1);
      /* unroll */ for (var q = 0u; q < TQ; q++) {
        let xx = u32(x0 + 1) + q;
        let inside = xx < p.w;
        let pix = yy * p.w + min(xx, p.w - 1u);
        /* unroll */ for (var r = 0u; r < RO4; r++) {
          var v = vec4<f32>(0.0);
          /* unroll */ for (var k = 0u; k < 4u; k++) {
            v[k] = select(0.0, dy[dyBase + outOff[r][k] + pix], inside && outOk[r][k]);
          }
          dyv[q][r] = v;
          bacc[r] += v;
        }
      }
      // One (input channel, tap) at a time: each accumulator takes TQ multiply-adds while in a register.
      /* unroll */ for (var c = 0u; c < RC; c++) {
        /* unroll */ for (var tap = 0u; tap < 9u; tap++) {
          /* unroll */ for (var r = 0u; r < RO4; r++) {
            var a = acc[c][tap][r];
            /* unroll */ for (var q = 0u; q < TQ; q++) {
              a = fma(dyv[q][r], vec4<f32>(xr[tap / 3u][c][q + tap % 3u]), a);
            }
            acc[c][tap][r] = a;
          }
        }
      }
    }
  }
  // Layout of one partial: [c][tap][RO4] vec4, then the RO4 bias vec4. The stores run in a loop over
  // input channels (accumulators move down by one channel each time) rather than unrolled: every
  // storage access is a per-lane loop in llvmpipe and compile time grows with their number.
  let outBase = ((ob * p.cBlocks + cb) * p.splits + s) * p.partStride4;
  for (var c = 0u; c < RC; c++) {
    /* unroll */ for (var tap = 0u; tap < 9u; tap++) {
      /* unroll */ for (var r = 0u; r < RO4; r++) {
        part[outBase + (c * 9u + tap) * RO4 + r] = acc[0][tap][r];
      }
    }
    /* unroll */ for (var cc = 0u; cc < RC - 1u; cc++) {
      acc[cc] = acc[cc + 1u];
    }
  }
  /* unroll */ for (var r = 0u; r < RO4; r++) {
    part[outBase + RC * 9u * RO4 + r] = bacc[r];
  }
}

struct ReduceParams {
  co: u32,
  ci: u32,
  cBlocks: u32,
  splits: u32,
  // Floats per partial (4 * partStride4 of wgrad_partial).
  partStride: u32,
  // 0: write dw [co, ci, 9]; 1: write db [co].
  biasMode: u32,
  total: u32,
}

@group(0) @binding(0) var<uniform> rp: ReduceParams;
@group(0) @binding(1) var<storage, read> partIn: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;

// One output value per invocation: the sum of its `splits` partials, always in the same order.
@compute @workgroup_size(64)
fn wgrad_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * 64u;
  if (i >= rp.total) {
    return;
  }
  let ro = 4u * RO4;
  var o = i;
  var cb = 0u;
  var local = RC * 9u * ro + o % ro;
  if (rp.biasMode == 0u) {
    o = i / (rp.ci * 9u);
    let c = (i / 9u) % rp.ci;
    let tap = i % 9u;
    cb = c / RC;
    local = ((c % RC) * 9u + tap) * ro + o % ro;
  }
  var idx = ((o / ro) * rp.cBlocks + cb) * rp.splits * rp.partStride + local;
  var sum = 0.0;
  for (var s = 0u; s < rp.splits; s++) {
    sum += partIn[idx];
    idx += rp.partStride;
  }
  grad[i] = sum;
}
