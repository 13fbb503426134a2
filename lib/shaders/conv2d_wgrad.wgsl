// Conv2d 3x3 (padding 1, stride 1) weight and bias gradients, NCHW.
//
// wgrad_partial: x [N, CI, H, W], dy [N, CO, H, W] -> part [oBlocks, cBlocks, splits, PART_STRIDE]
//   dw[o,c,ky,kx] = sum_{n,y,x} dy[n,o,y,x] * x[n,c,y+ky-1,x+kx-1],  db[o] = sum_{n,y,x} dy[n,o,y,x]
// wgrad_reduce:  part -> dw [CO, CI, 3, 3] or db [CO] (overwritten)
//
// A GEMM whose reduction (N*H*W) is huge and whose result is small, so the reduction is split: each
// invocation owns 4*RO4 output channels x RC input channels x 9 taps in registers and walks every
// `splits`-th TP x TQ pixel tile of the batch; wgrad_reduce then adds the splits in a fixed order, so the
// result is deterministic without atomics. Loading a TP x TQ tile of dy and its (TP+2) x (TQ+2) input
// patch once feeds 9*TP*TQ multiply-adds per (output, input) channel pair. Private arrays are indexed
// only by unrolled loop counters (array length = trip count) for the reasons given in conv2d.wgsl.

const MAX_RO4: u32 = 4u;
const MAX_RC: u32 = 4u;
const MAX_TP: u32 = 2u;
const MAX_TQ: u32 = 4u;

override RO4: u32 = MAX_RO4;
override RC: u32 = MAX_RC;
override TP: u32 = MAX_TP;
override TQ: u32 = MAX_TQ;
override WG: u32 = 64u;

struct WgradParams {
  n: u32,
  ci: u32,
  h: u32,
  w: u32,
  co: u32,
  tilesX: u32,
  tilesY: u32,
  nTiles: u32,
  splits: u32,
  cBlocks: u32,
  oBlocks: u32,
  partStride: u32,
}

@group(0) @binding(0) var<uniform> p: WgradParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;

var<private> acc: array<array<array<vec4<f32>, MAX_RO4>, 9>, MAX_RC>;
var<private> bacc: array<vec4<f32>, MAX_RO4>;
var<private> xin: array<array<array<f32, MAX_TQ + 2u>, MAX_TP + 2u>, MAX_RC>;
var<private> dyv: array<array<array<vec4<f32>, MAX_RO4>, MAX_TQ>, MAX_TP>;
var<private> rowOff: array<u32, MAX_TP + 2u>;
var<private> rowOk: array<bool, MAX_TP + 2u>;
var<private> colOff: array<u32, MAX_TQ + 2u>;
var<private> colOk: array<bool, MAX_TQ + 2u>;
var<private> chanOff: array<u32, MAX_RC>;
var<private> chanOk: array<bool, MAX_RC>;
var<private> outOff: array<array<u32, 4>, MAX_RO4>;
var<private> outOk: array<array<bool, 4>, MAX_RO4>;

// One (input channel, tap) pair: each accumulator takes TP*TQ multiply-adds while in a register.
fn accumulateTap(c: u32, ky: u32, kx: u32, tap: u32) {
  for (var r = 0u; r < RO4; r++) {
    var a = acc[c][tap][r];
    for (var pp = 0u; pp < TP; pp++) {
      for (var q = 0u; q < TQ; q++) {
        a = fma(dyv[pp][q][r], vec4<f32>(xin[c][pp + ky][q + kx]), a);
      }
    }
    acc[c][tap][r] = a;
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
  for (var c = 0u; c < RC; c++) {
    let ch = cb * RC + c;
    chanOk[c] = ch < p.ci;
    chanOff[c] = min(ch, p.ci - 1u) * plane;
  }
  for (var r = 0u; r < RO4; r++) {
    for (var k = 0u; k < 4u; k++) {
      let o = ob * 4u * RO4 + r * 4u + k;
      outOk[r][k] = o < p.co;
      outOff[r][k] = min(o, p.co - 1u) * plane;
    }
  }
  for (var t = s; t < p.nTiles; t += p.splits) {
    let tx = t % p.tilesX;
    let ty = (t / p.tilesX) % p.tilesY;
    let n = t / (p.tilesX * p.tilesY);
    let y0 = i32(ty * TP) - 1;
    let x0 = i32(tx * TQ) - 1;
    for (var i = 0u; i < TP + 2u; i++) {
      let yy = y0 + i32(i);
      rowOk[i] = yy >= 0 && yy < i32(p.h);
      rowOff[i] = u32(clamp(yy, 0, i32(p.h) - 1)) * p.w;
    }
    for (var j = 0u; j < TQ + 2u; j++) {
      let xx = x0 + i32(j);
      colOk[j] = xx >= 0 && xx < i32(p.w);
      colOff[j] = u32(clamp(xx, 0, i32(p.w) - 1));
    }
    let xBase = n * p.ci * plane;
    for (var c = 0u; c < RC; c++) {
      for (var i = 0u; i < TP + 2u; i++) {
        for (var j = 0u; j < TQ + 2u; j++) {
          let v = x[xBase + chanOff[c] + rowOff[i] + colOff[j]];
          xin[c][i][j] = select(0.0, v, chanOk[c] && rowOk[i] && colOk[j]);
        }
      }
    }
    // dy rows 1..TP and columns 1..TQ of the patch grid are the tile itself.
    let dyBase = n * p.co * plane;
    for (var pp = 0u; pp < TP; pp++) {
      for (var q = 0u; q < TQ; q++) {
        let inside = rowOk[pp + 1u] && colOk[q + 1u];
        let pix = rowOff[pp + 1u] + colOff[q + 1u];
        for (var r = 0u; r < RO4; r++) {
          var v = vec4<f32>(0.0);
          for (var k = 0u; k < 4u; k++) {
            v[k] = select(0.0, dy[dyBase + outOff[r][k] + pix], inside && outOk[r][k]);
          }
          dyv[pp][q][r] = v;
          bacc[r] += v;
        }
      }
    }
    for (var c = 0u; c < RC; c++) {
      accumulateTap(c, 0u, 0u, 0u);
      accumulateTap(c, 0u, 1u, 1u);
      accumulateTap(c, 0u, 2u, 2u);
      accumulateTap(c, 1u, 0u, 3u);
      accumulateTap(c, 1u, 1u, 4u);
      accumulateTap(c, 1u, 2u, 5u);
      accumulateTap(c, 2u, 0u, 6u);
      accumulateTap(c, 2u, 1u, 7u);
      accumulateTap(c, 2u, 2u, 8u);
    }
  }
  // Layout of one partial: [c][tap][4*RO4] then the 4*RO4 bias sums.
  let outBase = ((ob * p.cBlocks + cb) * p.splits + s) * p.partStride;
  for (var c = 0u; c < RC; c++) {
    for (var tap = 0u; tap < 9u; tap++) {
      for (var r = 0u; r < RO4; r++) {
        for (var k = 0u; k < 4u; k++) {
          part[outBase + ((c * 9u + tap) * RO4 + r) * 4u + k] = acc[c][tap][r][k];
        }
      }
    }
  }
  for (var r = 0u; r < RO4; r++) {
    for (var k = 0u; k < 4u; k++) {
      part[outBase + RC * 9u * RO4 * 4u + r * 4u + k] = bacc[r][k];
    }
  }
}

struct ReduceParams {
  co: u32,
  ci: u32,
  cBlocks: u32,
  splits: u32,
  rc: u32,
  ro: u32,
  partStride: u32,
  // 0: write dw [co, ci, 9]; 1: write db [co].
  biasMode: u32,
  total: u32,
}

@group(0) @binding(0) var<uniform> rp: ReduceParams;
@group(0) @binding(1) var<storage, read> partIn: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad: array<f32>;

@compute @workgroup_size(64)
fn wgrad_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * 64u;
  if (i >= rp.total) {
    return;
  }
  var o = i;
  var cb = 0u;
  var local = 0u;
  if (rp.biasMode == 0u) {
    o = i / (rp.ci * 9u);
    let c = (i / 9u) % rp.ci;
    let tap = i % 9u;
    cb = c / rp.rc;
    local = ((c % rp.rc) * 9u + tap) * rp.ro + o % rp.ro;
  } else {
    local = rp.rc * 9u * rp.ro + o % rp.ro;
  }
  let ob = o / rp.ro;
  var idx = (ob * rp.cBlocks + cb) * rp.splits * rp.partStride + local;
  var sum = 0.0;
  for (var s = 0u; s < rp.splits; s++) {
    sum += partIn[idx];
    idx += rp.partStride;
  }
  grad[i] = sum;
}
