// Conv2d 3x3, padding 1, stride 1, NCHW, by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016): forward and input gradient.
//
// Each 2x2 block of outputs ("tile": image n, rows 2ty, 2ty+1, columns 2tx, 2tx+1) is
//   Y = A^T [ sum over input channels c of (G g[o,c] G^T) * (B^T d[c] B) ] A
// where d[c] is the 4x4 patch of input channel c around the tile (rows 2ty-1 .. 2ty+2, zero outside the
// image), g[o,c] the 3x3 weights, * the element-wise product and
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1].
// So the 16 element positions xi of the 4x4 transformed tiles are 16 independent GEMMs over the input
// channels, M[xi][o][tile] = sum_c U[xi][c][o] V[xi][c][tile]: 16 multiply-adds per (tile, c, o) where the
// direct convolution needs 36 for the same 4 outputs, 2.25x fewer (1.72x on 7x7 images, whose 4x4 tiles
// hang over the edge). Four dispatches per pass:
//   winograd_filter: U[xi][c][o] = (G g[o,c] G^T)[xi]                         (9 * CI * CO reads)
//   winograd_input:  V[xi][c][tile] = (B^T d[c] B)[xi]                        (4x the input)
//   winograd_gemm:   M[xi][o][tile], one GEMM per xi (workgroup_id.z), tiled as the tap-slice kernel
//   winograd_output: y[n][o][2ty+i][2tx+j] = bias[o] + (A^T M[.][o][tile] A)[i][j]
// With `transposed` set the same kernels compute the input gradient from dy: the GEMM's input channels
// are the layer's outputs and the weights are flipped and transposed, g[c',oc] = w[oc, c', 8 - t] (as
// conv2d_igemm_tapslice.wgsl's pack). U, V and M are scratch buffers; a pass over more tiles than they
// hold runs in chunks of tiles (`tileBase`, `tiles`), see conv2d.ts.
//
// Where it may win: GPUs, where the multiply-adds are the cost and V and M (4x the input and output)
// move at memory speed (cuDNN has Winograd algorithms for 3x3 convolutions in fp32). The transforms'
// coefficients (0, +-1, +-0.5) are exact in f32; the sums run in another order than the direct kernels'
// (other bits, rounding of the same size: tested against the float64 direct convolution on shapes off
// every tile, odd sizes included). Every sum has a fixed order, so it repeats its bits.
// Block sizes are constants rewritten per variant by conv2d.ts (kernels.ts: the same constraints as the
// tap-slice kernel, whose loader layout and K-slice loop, gemm_vec4_tiles.wgsl, this GEMM shares).

// The block constants (BM, BN, BK, TM, TN, STAGES, WM, WN, WG and the loader layout): gemm_vec4_tiles.wgsl.

// Params, p, flat_index and tile_origin: winograd_common.wgsl (appended by conv2d.ts).

// --- winograd_filter: w [CO, CI, 3, 3] -> U [16][cin][cout] ------------------------------------------
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> uOut: array<f32>;

// Weight of GEMM input channel c, output channel o at tap (ky, kx).
fn filter_tap(c: u32, o: u32, t: u32) -> f32 {
  if (p.transposed == 0u) {
    return weight[(o * p.cin + c) * 9u + t];
  }
  return weight[(c * p.cout + o) * 9u + 8u - t];
}

@compute @workgroup_size(64)
fn winograd_filter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat_index(gid, nw);
  if (i >= p.cin * p.cout) {
    return;
  }
  let c = i / p.cout;
  let o = i - c * p.cout;
  // s = G g: rows of 3.
  var s: array<vec3<f32>, 4>;
  let g0 = vec3<f32>(filter_tap(c, o, 0u), filter_tap(c, o, 1u), filter_tap(c, o, 2u));
  let g1 = vec3<f32>(filter_tap(c, o, 3u), filter_tap(c, o, 4u), filter_tap(c, o, 5u));
  let g2 = vec3<f32>(filter_tap(c, o, 6u), filter_tap(c, o, 7u), filter_tap(c, o, 8u));
  s[0] = g0;
  s[1] = 0.5 * (g0 + g1 + g2);
  s[2] = 0.5 * (g0 - g1 + g2);
  s[3] = g2;
  // U = s G^T, row by row.
  /* unroll */ for (var r = 0u; r < 4u; r++) {
    let v = s[r];
    let row = vec4<f32>(v.x, 0.5 * (v.x + v.y + v.z), 0.5 * (v.x - v.y + v.z), v.z);
    /* unroll */ for (var q = 0u; q < 4u; q++) {
      uOut[((r * 4u + q) * p.cin + c) * p.cout + o] = row[q];
    }
  }
}

// --- winograd_input: x [N, cin, H, W] -> V [16][cin][tiles] (or [16][tiles][cin]) ----------------------
@group(0) @binding(1) var<storage, read> xIn: array<f32>;
@group(0) @binding(2) var<storage, read_write> vOut: array<f32>;

@compute @workgroup_size(64)
fn winograd_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat_index(gid, nw);
  if (i >= p.cin * p.tiles) {
    return;
  }
  // Consecutive invocations take consecutive tiles of one channel, or with channelsLast consecutive
  // channels of one tile: V's stores coalesce either way.
  var c = i / p.tiles;
  var local = i - c * p.tiles;
  if (p.channelsLast != 0u) {
    local = i / p.cin;
    c = i - local * p.cin;
  }
  let org = tile_origin(p.tileBase + local);
  let plane = (org.x * p.cin + c) * p.h * p.w;
  // d: the 4x4 patch, rows 2ty-1 .. 2ty+2, columns 2tx-1 .. 2tx+2, zero outside the image.
  var d: array<vec4<f32>, 4>;
  /* unroll */ for (var a = 0u; a < 4u; a++) {
    let iy = i32(2u * org.y + a) - 1;
    /* unroll */ for (var b = 0u; b < 4u; b++) {
      let ix = i32(2u * org.z + b) - 1;
      var v = 0.0;
      if (iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w)) {
        v = xIn[plane + u32(iy) * p.w + u32(ix)];
      }
      d[a][b] = v;
    }
  }
  // t = B^T d (rows), then V = t B (each row's columns).
  var t: array<vec4<f32>, 4>;
  t[0] = d[0] - d[2];
  t[1] = d[1] + d[2];
  t[2] = d[2] - d[1];
  t[3] = d[1] - d[3];
  /* unroll */ for (var r = 0u; r < 4u; r++) {
    let v = t[r];
    let row = vec4<f32>(v.x - v.z, v.y + v.z, v.z - v.y, v.y - v.w);
    /* unroll */ for (var q = 0u; q < 4u; q++) {
      let xi = r * 4u + q;
      if (p.channelsLast != 0u) {
        vOut[(xi * p.tiles + local) * p.cin + c] = row[q];
      } else {
        vOut[(xi * p.cin + c) * p.tiles + local] = row[q];
      }
    }
  }
}

// --- winograd_gemm: M[xi][o][tile] = sum_c V[xi][c][tile] U[xi][c][o] ------------------------------------
@group(0) @binding(1) var<storage, read> vIn: array<f32>;
@group(0) @binding(2) var<storage, read> uIn: array<f32>;
@group(0) @binding(3) var<storage, read_write> mOut: array<f32>;

// This workgroup's element position xi and the first tile and output channel of its tile.
var<private> xiGroup: u32;
var<private> mBase: u32;
var<private> nBase: u32;

// A's slice, channels c0 .. (A_KSTRIDE apart): rows of V[xi], consecutive invocations taking consecutive
// tiles.
fn fetch_a(c0: u32, tid: u32) {
  /* unroll */ for (var q = 0u; q < A_PIX; q++) {
    let m = mBase + tid % BM + q * WG;
    /* unroll */ for (var j = 0u; j < BK / A_KSTRIDE; j++) {
      let c = c0 + j * A_KSTRIDE;
      var v = 0.0;
      if (m < p.tiles && c < p.cin) {
        v = vIn[(xiGroup * p.cin + c) * p.tiles + m];
      }
      aLoads[q][j] = v;
    }
  }
}

// B's slice for the same channels: rows of U[xi], consecutive invocations taking consecutive output
// channels.
fn fetch_b(c0: u32, tid: u32) {
  /* unroll */ for (var q = 0u; q < B_COLS; q++) {
    let o = nBase + tid % BN + q * WG;
    /* unroll */ for (var j = 0u; j < BK / B_KSTRIDE; j++) {
      let c = c0 + j * B_KSTRIDE;
      var v = 0.0;
      if (o < p.cout && c < p.cin) {
        v = uIn[(xiGroup * p.cin + c) * p.cout + o];
      }
      bLoads[q][j] = v;
    }
  }
}

// Slice s: channels s * BK .. s * BK + BK - 1 (gemm_vec4_tiles.wgsl calls it).
fn fetch_slice(tid: u32, s: u32) {
  fetch_a(s * BK + tid / BM, tid);
  fetch_b(s * BK + tid / BN, tid);
}

@compute @workgroup_size(WG)
fn winograd_gemm(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  xiGroup = wid.z;
  mBase = wid.x * BM;
  nBase = wid.y * BN;
  gemm_slices(tid, (p.cin + BK - 1u) / BK);
  let tm = tid % WM;
  let tn = tid / WM;
  /* unroll */ for (var f = 0u; f < TM / 4u; f++) {
    /* unroll */ for (var r = 0u; r < 4u; r++) {
      let m = mBase + f * 4u * WM + tm * 4u + r;
      if (m < p.tiles) {
        /* unroll */ for (var g = 0u; g < TN / 4u; g++) {
          /* unroll */ for (var s = 0u; s < 4u; s++) {
            let o = nBase + g * 4u * WN + tn * 4u + s;
            if (o < p.cout) {
              mOut[(xiGroup * p.cout + o) * p.tiles + m] = acc[f * 4u + r][g][s];
            }
          }
        }
      }
    }
  }
}

// --- winograd_output: M [16][cout][tiles] -> y [N, cout, H, W] -------------------------------------------
@group(0) @binding(1) var<storage, read> mIn: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> yOut: array<f32>;

@compute @workgroup_size(64)
fn winograd_output(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat_index(gid, nw);
  if (i >= p.cout * p.tiles) {
    return;
  }
  // Consecutive invocations take consecutive tiles of one channel: M's loads coalesce.
  let o = i / p.tiles;
  let local = i - o * p.tiles;
  var m: array<vec4<f32>, 4>;
  /* unroll */ for (var r = 0u; r < 4u; r++) {
    /* unroll */ for (var q = 0u; q < 4u; q++) {
      m[r][q] = mIn[((r * 4u + q) * p.cout + o) * p.tiles + local];
    }
  }
  // q = A^T m (rows), then Y = q A.
  var q: array<vec4<f32>, 2>;
  q[0] = m[0] + m[1] + m[2];
  q[1] = m[1] - m[2] - m[3];
  var b = 0.0;
  if (p.hasBias != 0u) {
    b = bias[o];
  }
  let org = tile_origin(p.tileBase + local);
  let plane = (org.x * p.cout + o) * p.h * p.w;
  /* unroll */ for (var r = 0u; r < 2u; r++) {
    let v = q[r];
    let row = vec2<f32>(v.x + v.y + v.z, v.y - v.z - v.w);
    let py = 2u * org.y + r;
    /* unroll */ for (var s = 0u; s < 2u; s++) {
      let px = 2u * org.z + s;
      if (py < p.h && px < p.w) {
        yOut[plane + py * p.w + px] = b + row[s];
      }
    }
  }
}
