// Conv2d 3x3 (padding 1, stride 1) weight gradient, NCHW, by Winograd's F(2x2, 3x3): the adjoint of
// conv2d_winograd_f2x2.wgsl's forward. There each 2x2 output tile is
// Y = A^T [ sum_c (G g[o,c] G^T) * (B^T d[c] B) ] A, so with dM = A dY A^T (the tile's 2x2 output
// gradient, 4x4 after the transform) and V = B^T d B,
//   dU[o,c] = sum over tiles of dM[o] * V[c]       (16 GEMMs over the tiles, one per element position xi)
//   dw[o,c] = G^T dU[o,c] G                          (4x4 -> 3x3)
//   winograd_input (conv2d_winograd_f2x2.wgsl, channelsLast): V [16][tiles][CI]
//   winograd_wgrad_dy:     dM [16][tiles][CO] from dy, zero outside the image
//   winograd_wgrad_gemm:   part[slot][xi][o][c]: each workgroup sums one range of tiles (split-K, as the
//                          weight gradient's reduction is long and its result small)
//   winograd_wgrad_reduce: the partials summed in slot order, then the transform above -> dw
// The bias gradient is summed from dy directly (conv2d_bias_grad.wgsl), not as an extra GEMM column as in
// conv2d_wgrad_splitk.wgsl: CI + 1 columns would start a whole extra tile of BN columns for CI = 64, 128,
// 256.
// K (tiles) runs along memory in both operands' rows; stored tiles-major ([16][tiles][channels]) they are
// read as the tap-slice GEMM reads its operands (gemm_vec4_tiles.wgsl, appended: consecutive invocations
// take consecutive channels), so the transforms write channels-last and read their images strided.
//
// Where it may win: GPUs, as the forward's Winograd (2.25x fewer multiply-adds in the GEMMs, 1.72x on 7x7
// images). Every sum has a fixed order (each partial an fma chain over its tiles in order, the partials
// in slot order), so the same shape, adapter and chunking give the same bits; the chunking and the split
// (conv2d.ts: from the scratch bound and the adapter's binding size) decide which tiles a partial holds.
// Tested against the float64 gradients on shapes off every tile.

// The block constants (BM, BN, BK, TM, TN, STAGES, WM, WN, WG and the loader layout): gemm_vec4_tiles.wgsl.

// Params, p, flat_index and tile_origin: winograd_common.wgsl (appended by conv2d.ts). Here cin and cout
// are the layer's input and output channels.

// --- winograd_wgrad_dy: dy [N, CO, H, W] -> dM [16][tiles][CO] -------------------------------------------
@group(0) @binding(1) var<storage, read> dyIn: array<f32>;
@group(0) @binding(2) var<storage, read_write> dmOut: array<f32>;

@compute @workgroup_size(64)
fn winograd_wgrad_dy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat_index(gid, nw);
  if (i >= p.cout * p.tiles) {
    return;
  }
  // Consecutive invocations take consecutive channels of one tile: dM's stores coalesce.
  let local = i / p.cout;
  let o = i - local * p.cout;
  let org = tile_origin(p.tileBase + local);
  let plane = (org.x * p.cout + o) * p.h * p.w;
  // g: the tile's 2x2 output gradient, zero where the tile hangs over the image.
  var g: array<vec2<f32>, 2>;
  /* unroll */ for (var r = 0u; r < 2u; r++) {
    /* unroll */ for (var s = 0u; s < 2u; s++) {
      let py = 2u * org.y + r;
      let px = 2u * org.z + s;
      var v = 0.0;
      if (py < p.h && px < p.w) {
        v = dyIn[plane + py * p.w + px];
      }
      g[r][s] = v;
    }
  }
  // t = A g (rows of 2), then dM = t A^T (each row's 4 columns).
  var t: array<vec2<f32>, 4>;
  t[0] = g[0];
  t[1] = g[0] + g[1];
  t[2] = g[0] - g[1];
  t[3] = -g[1];
  /* unroll */ for (var r = 0u; r < 4u; r++) {
    let v = t[r];
    let row = vec4<f32>(v.x, v.x + v.y, v.x - v.y, -v.y);
    /* unroll */ for (var q = 0u; q < 4u; q++) {
      dmOut[((r * 4u + q) * p.tiles + local) * p.cout + o] = row[q];
    }
  }
}

// --- winograd_wgrad_gemm: part[slot][xi][o][c] = sum over the split's tiles of dM[xi][t][o] V[xi][t][c] ----
@group(0) @binding(1) var<storage, read> dmIn: array<f32>;
@group(0) @binding(2) var<storage, read> vIn: array<f32>;
@group(0) @binding(3) var<storage, read_write> partOut: array<f32>;

// This workgroup's element position xi, its split's tiles kStart .. kEnd - 1, and the first output and
// input channel of its tile.
var<private> xiGroup: u32;
var<private> kStart: u32;
var<private> kEnd: u32;
var<private> mBase: u32;
var<private> nBase: u32;

// A's slice, tiles t0 .. (A_KSTRIDE apart): dM rows, consecutive invocations taking consecutive output
// channels.
fn fetch_a(t0: u32, tid: u32) {
  /* unroll */ for (var q = 0u; q < A_PIX; q++) {
    let o = mBase + tid % BM + q * WG;
    /* unroll */ for (var j = 0u; j < BK / A_KSTRIDE; j++) {
      let t = t0 + j * A_KSTRIDE;
      var v = 0.0;
      if (o < p.cout && t < kEnd) {
        v = dmIn[(xiGroup * p.tiles + t) * p.cout + o];
      }
      aLoads[q][j] = v;
    }
  }
}

// B's slice for the same tiles: V rows, consecutive invocations taking consecutive input channels.
fn fetch_b(t0: u32, tid: u32) {
  /* unroll */ for (var q = 0u; q < B_COLS; q++) {
    let c = nBase + tid % BN + q * WG;
    /* unroll */ for (var j = 0u; j < BK / B_KSTRIDE; j++) {
      let t = t0 + j * B_KSTRIDE;
      var v = 0.0;
      if (c < p.cin && t < kEnd) {
        v = vIn[(xiGroup * p.tiles + t) * p.cin + c];
      }
      bLoads[q][j] = v;
    }
  }
}

// Slice s: tiles kStart + s * BK .. + BK - 1 (gemm_vec4_tiles.wgsl calls it).
fn fetch_slice(tid: u32, s: u32) {
  let t0 = kStart + s * BK;
  fetch_a(t0 + tid / BM, tid);
  fetch_b(t0 + tid / BN, tid);
}

@compute @workgroup_size(WG)
fn winograd_wgrad_gemm(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  // z = split * 16 + xi. The slice count is computed from lets of the workgroup alone, not from the
  // private copies, so that it is uniform (the loop holds barriers; Tint checks, and treats private
  // variables as non-uniform).
  let split = wid.z / 16u;
  let first = min(split * p.splitTiles, p.tiles);
  let end = min(first + p.splitTiles, p.tiles);
  xiGroup = wid.z - 16u * split;
  kStart = first;
  kEnd = end;
  mBase = wid.x * BM;
  nBase = wid.y * BN;
  gemm_slices(tid, (end - first + BK - 1u) / BK);
  let slot = p.splitBase + split;
  let tm = tid % WM;
  let tn = tid / WM;
  /* unroll */ for (var f = 0u; f < TM / 4u; f++) {
    /* unroll */ for (var r = 0u; r < 4u; r++) {
      let o = mBase + f * 4u * WM + tm * 4u + r;
      if (o < p.cout) {
        /* unroll */ for (var g = 0u; g < TN / 4u; g++) {
          /* unroll */ for (var s = 0u; s < 4u; s++) {
            let c = nBase + g * 4u * WN + tn * 4u + s;
            if (c < p.cin) {
              partOut[((slot * 16u + xiGroup) * p.cout + o) * p.cin + c] = acc[f * 4u + r][g][s];
            }
          }
        }
      }
    }
  }
}

// --- winograd_wgrad_reduce: part -> dw [CO, CI, 3, 3] (overwritten) --------------------------------------
@group(0) @binding(1) var<storage, read> partIn: array<f32>;
@group(0) @binding(2) var<storage, read_write> dwOut: array<f32>;

// A workgroup takes 16 (o, c) pairs with 16 invocations each: invocation (xi, pair) sums position xi's
// partials in slot order (so 256 sums run side by side, where one invocation per pair would make
// 16 * slots loads in a row), consecutive invocations reading consecutive pairs; then 9 invocations per
// pair each compute one weight from the pair's 16 sums.
var<workgroup> duShared: array<array<f32, 16>, 16>;

@compute @workgroup_size(256)
fn winograd_wgrad_reduce(
  @builtin(local_invocation_index) tid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nw: vec3<u32>,
) {
  let pairs = p.cout * p.cin;
  let first = (wid.x + wid.y * nw.x) * 16u;
  let local = tid % 16u;
  let xi = tid / 16u;
  var sum = 0.0;
  if (first + local < pairs) {
    for (var slot = 0u; slot < p.totalSplits; slot++) {
      sum += partIn[(slot * 16u + xi) * pairs + first + local];
    }
  }
  duShared[xi][local] = sum;
  workgroupBarrier();
  // Invocation (k, pair): weight k = 3 r + q of the pair, from e = G^T dU (rows of 4), then e G.
  let pair = tid % 16u;
  let k = tid / 16u;
  if (k < 9u && first + pair < pairs) {
    var du: array<vec4<f32>, 4>;
    /* unroll */ for (var a = 0u; a < 4u; a++) {
      du[a] = vec4<f32>(duShared[4u * a][pair], duShared[4u * a + 1u][pair], duShared[4u * a + 2u][pair],
        duShared[4u * a + 3u][pair]);
    }
    var e: array<vec4<f32>, 3>;
    e[0] = du[0] + 0.5 * (du[1] + du[2]);
    e[1] = 0.5 * (du[1] - du[2]);
    e[2] = 0.5 * (du[1] + du[2]) + du[3];
    let v = e[k / 3u];
    let row = vec3<f32>(v.x + 0.5 * (v.y + v.z), 0.5 * (v.y - v.z), 0.5 * (v.y + v.z) + v.w);
    dwOut[(first + pair) * 9u + k] = row[k % 3u];
  }
}
