// Conv2d 3x3 (padding 1, stride 1) forward with ONE input channel (the encoder's first layer), NCHW.
//
// conv_direct_1ch: x [N, 1, H, W], w [CO, 1, 3, 3], bias [CO] -> y [N, CO, H, W]
//   y[n,o,py,px] = bias[o] + sum_tap w[o,tap] * x[n,0,py+ky-1,px+kx-1]
//
// Where it wins: GPUs, first layer. With K = 9 an implicit GEMM wastes most of its K tile and its
// machinery; here each invocation loads its 9 input pixels once into registers and writes CB output
// channels of one pixel, the weights of those CB channels sitting in workgroup memory. Consecutive
// invocations take consecutive pixels, so loads and stores are coalesced. The work is store-bound
// (9 multiply-adds per value written). On llvmpipe the register-block kernel is used instead.
// Loops are marked `/* unroll */` (lib/gpu/unroll.ts; why: conv2d_igemm_tiled.wgsl).

const CB: u32 = 16u;
const WG: u32 = 64u;

struct Params {
  n: u32,
  h: u32,
  w: u32,
  co: u32,
  // Pixel blocks of WG along x of the grid (n * h * w pixels in all).
  pixels: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

var<workgroup> ws: array<array<f32, 9>, CB>;
var<workgroup> bs: array<f32, CB>;
var<private> xin: array<f32, 9>;

@compute @workgroup_size(WG)
fn conv_direct_1ch(
  @builtin(local_invocation_index) tid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nw: vec3<u32>,
) {
  let oBase = wid.z * CB;
  // Weights of this workgroup's CB channels (0 past the last channel).
  for (var e = tid; e < CB * 9u; e += WG) {
    let o = oBase + e / 9u;
    ws[e / 9u][e % 9u] = select(0.0, weight[min(o, p.co - 1u) * 9u + e % 9u], o < p.co);
  }
  for (var e = tid; e < CB; e += WG) { // a loop, not `if (tid < CB)`: a tile may hold more channels than lanes
    let o = oBase + e;
    bs[e] = select(0.0, bias[min(o, p.co - 1u)], o < p.co);
  }
  workgroupBarrier();
  let m = (wid.x + wid.y * nw.x) * WG + tid;
  if (m >= p.pixels) {
    return;
  }
  let plane = p.h * p.w;
  let n = m / plane;
  let pix = m % plane;
  let py = i32(pix / p.w);
  let px = i32(pix % p.w);
  /* unroll */ for (var tap = 0u; tap < 9u; tap++) {
    let iy = py + i32(tap / 3u) - 1;
    let ix = px + i32(tap % 3u) - 1;
    let inside = iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w);
    let addr = n * plane + u32(clamp(iy, 0, i32(p.h) - 1)) * p.w + u32(clamp(ix, 0, i32(p.w) - 1));
    xin[tap] = select(0.0, x[addr], inside);
  }
  /* unroll */ for (var c = 0u; c < CB; c++) {
    let o = oBase + c;
    var a = 0.0;
    /* unroll */ for (var tap = 0u; tap < 9u; tap++) {
      a = fma(ws[c][tap], xin[tap], a);
    }
    if (o < p.co) {
      y[(n * p.co + o) * plane + pix] = bs[c] + a;
    }
  }
}
