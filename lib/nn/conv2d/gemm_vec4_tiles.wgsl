// The K-slice loop of a workgroup-tiled GEMM whose invocations read their register blocks from workgroup
// memory as vec4s, and its block constants: shared by conv2d_igemm_tapslice.wgsl,
// conv2d_winograd_f2x2.wgsl and conv2d_wgrad_winograd_f2x2.wgsl (conv2d.ts appends it to each). Each
// declares `fetch_slice(tid, s)`, which loads K-slice s from memory into aLoads and bLoads: A's BK rows for
// GEMM rows tid % BM + q * WG, K-rows tid / BM + j * A_KSTRIDE; B's for columns tid % BN + q * WG, K-rows
// tid / BN + j * B_KSTRIDE. After `gemm_slices`, acc holds the invocation's TM x TN block: rows
// f * 4 * WM + (tid % WM) * 4 + r, columns g * 4 * WN + (tid / WM) * 4 + s of the workgroup's tile, each one
// fma chain over K in order.

// The block constants, rewritten per variant by conv2d.ts (kernels.ts: vec4GemmConstants, and the checks):
// a BM x BN tile of the output per workgroup, K-slices of BK, TM x TN outputs per invocation, STAGES sets
// of workgroup tiles.
const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 8u;
const TM: u32 = 8u;
const TN: u32 = 8u;
const STAGES: u32 = 1u;
// Invocations along M and N; the workgroup is WM * WN invocations.
const WM: u32 = 8u;
const WN: u32 = 8u;
const WG: u32 = 64u;
// The loaders: each invocation loads A for A_PIX pixels (BM / WG when WG < BM, else 1), at K-rows
// tid / BM + j * A_KSTRIDE (A_KSTRIDE = WG / BM when WG > BM, else 1), j < BK / A_KSTRIDE; B likewise.
const A_PIX: u32 = 1u;
const A_KSTRIDE: u32 = 1u;
const B_COLS: u32 = 1u;
const B_KSTRIDE: u32 = 1u;

// STAGES K-slices of A (BK rows of BM pixels) and of B (BK rows of BN columns), as vec4s along M and N.
var<workgroup> As: array<array<array<vec4<f32>, BM / 4u>, BK>, STAGES>;
var<workgroup> Bs: array<array<array<vec4<f32>, BN / 4u>, BK>, STAGES>;

var<private> acc: array<array<vec4<f32>, TN / 4u>, TM>;
var<private> av: array<vec4<f32>, TM / 4u>;
var<private> bv: array<vec4<f32>, TN / 4u>;

// One K-slice's values loaded from memory, on their way into the workgroup tiles.
var<private> aLoads: array<array<f32, BK / A_KSTRIDE>, A_PIX>;
var<private> bLoads: array<array<f32, BK / B_KSTRIDE>, B_COLS>;

// The loaded slice into tile set `stage`, one float per vec4 component.
fn store_slice(tid: u32, stage: u32) {
  /* unroll */ for (var q = 0u; q < A_PIX; q++) {
    let m = tid % BM + q * WG;
    /* unroll */ for (var j = 0u; j < BK / A_KSTRIDE; j++) {
      As[stage][tid / BM + j * A_KSTRIDE][m / 4u][m % 4u] = aLoads[q][j];
    }
  }
  /* unroll */ for (var q = 0u; q < B_COLS; q++) {
    let col = tid % BN + q * WG;
    /* unroll */ for (var j = 0u; j < BK / B_KSTRIDE; j++) {
      Bs[stage][tid / BN + j * B_KSTRIDE][col / 4u][col % 4u] = bLoads[q][j];
    }
  }
}

// acc += this invocation's blocks of tile set `stage`, K-rows in order.
fn multiply_tile(stage: u32, tm: u32, tn: u32) {
  /* unroll */ for (var kk = 0u; kk < BK; kk++) {
    /* unroll */ for (var f = 0u; f < TM / 4u; f++) {
      av[f] = As[stage][kk][f * WM + tm];
    }
    /* unroll */ for (var g = 0u; g < TN / 4u; g++) {
      bv[g] = Bs[stage][kk][g * WN + tn];
    }
    /* unroll */ for (var f = 0u; f < TM / 4u; f++) {
      /* unroll */ for (var r = 0u; r < 4u; r++) {
        /* unroll */ for (var g = 0u; g < TN / 4u; g++) {
          acc[f * 4u + r][g] = fma(vec4<f32>(av[f][r]), bv[g], acc[f * 4u + r][g]);
        }
      }
    }
  }
}

// Slices 0 .. slices-1 in order. STAGES 1: one set of tiles; each slice is loaded and stored right before
// its multiply-adds, and two barriers per slice keep the next slice's stores behind every invocation's
// reads. 2: two sets used in turn; each slice's loads from memory are issued before the previous
// slice's multiply-adds (held in registers meanwhile, so the latency hides behind the arithmetic) and
// one barrier per slice suffices: it also orders the next stores (into the other set) after the reads
// of the slice before. Same values, same fma chains: both give the same bits.
fn gemm_slices(tid: u32, slices: u32) {
  fetch_slice(tid, 0u);
  for (var s = 0u; s < slices; s++) {
    let stage = s % STAGES;
    store_slice(tid, stage);
    workgroupBarrier();
    if (STAGES > 1u && s + 1u < slices) {
      fetch_slice(tid, s + 1u);
    }
    multiply_tile(stage, tid % WM, tid / WM);
    if (STAGES == 1u) {
      workgroupBarrier();
      if (s + 1u < slices) {
        fetch_slice(tid, s + 1u);
      }
    }
  }
}
