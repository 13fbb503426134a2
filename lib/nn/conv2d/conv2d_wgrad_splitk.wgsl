// Conv2d 3x3 (padding 1, stride 1) weight and bias gradients, NCHW, as a deterministic two-pass split-K
// implicit GEMM.
//
// wgrad_splitk: x [N, CI, H, W], dy [N, CO, H, W] -> part [S, CO, K + 1], K = CI * 9
//   D[o, k] = sum_m dy[m, o] * A[m, k] over m = (n, pixel) in split s's range, A = im2col(x)
//   (im2col3x3.wgsl, as in conv2d_igemm_tiled.wgsl), plus one extra column k = K with A = 1, which
//   makes D[o, K] = db[o].
// wgrad_splitk_reduce: part -> dw [CO, CI, 3, 3] and db [CO] (overwritten), summing the S partials in
//   order s = 0 .. S-1.
//
// Where it wins: GPUs. The weight gradient is a GEMM with a small result (CO x CI*9) and a huge
// reduction (N*H*W), so a plain tiling gives a few dozen workgroups for a GPU with 132 SMs; splitting the
// reduction S ways (S chosen per shape by conv2d.ts so that about `groups` workgroups run) fills the GPU
// without atomics. Each partial is one fma chain in m order and the second pass adds the partials in a
// fixed order, so the result has the same bits every run. A workgroup owns a BM (output channels) x BN
// (k) tile; each step gathers BK rows of dy and of im2col(x) into workgroup memory, consecutive
// invocations taking consecutive pixels (coalesced), and each invocation updates a TM x TN register
// block. On llvmpipe conv2d_wgrad_strips.wgsl is faster (no barriers, no workgroup memory).
//
// Index arithmetic: the workgroup's WG invocations are a multiple of BK (kernels.ts checks), so all of an
// invocation's loads in one slice read the same row m = mBase + tid % BK: its image and pixel are decoded
// once per slice (two divisions by run-time sizes, which a GPU does in software), not once per load. The
// columns an invocation loads are the same in every slice, so what each column k = (c, tap) means (its
// channel's offset and the tap's shift, or the bias column, or past the end) is worked out once, before
// the loop: a load is then the shifted pixel's test and address (about half the instructions of
// decoding k every time). Same values, same sums, same bits.
// Ds and Xs rows are padded by one value because the loaders write down their columns (consecutive
// invocations, consecutive rows), which rows of 64 floats would put in one memory bank. Neither changes a
// value or the order of a sum.
//
// wgrad_splitk_vec4 computes the same partials with its tiles read as vec4s (conv2d.ts picks it when TM and
// TN are multiples of 4): each invocation's block is made of 4 x 4 pieces, rows to*4 .. to*4+3 of each band
// of 4*WM output channels and the same for columns, so one K-row of its values is TM/4 + TN/4 vec4 reads of
// workgroup memory where wgrad_splitk reads TM + TN scalars (consecutive invocations read consecutive
// vec4s). Each partial is the same fma chain over the same m in the same order: the same bits (tested).
//
// STAGES (the kernel name's `stages`), as in conv2d_igemm_tapslice.wgsl: 1, one set of workgroup tiles,
// each slice loaded right before its multiply-adds, two barriers per slice; 2, two sets used in turn, each
// slice's loads from memory issued before the previous slice's multiply-adds, one barrier per slice. The
// same bits either way (tested).
//
// Register-block and K-slice loops are marked `/* unroll */` (lib/gpu/unroll.ts; why: conv2d_igemm_tiled.wgsl).

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;
const WM: u32 = 16u;
const WN: u32 = 16u;
const WG: u32 = 256u;
const STAGES: u32 = 1u;

struct Params {
  n: u32,
  ci: u32,
  h: u32,
  w: u32,
  co: u32,
  // n * h * w rows of the reduction, cut into `splits` ranges of `chunk` rows (a multiple of BK).
  m: u32,
  k: u32,
  splits: u32,
  chunk: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;

var<workgroup> Ds: array<array<array<f32, BM + 1u>, BK>, STAGES>;
var<workgroup> Xs: array<array<array<f32, BN + 1u>, BK>, STAGES>;

var<private> acc: array<array<f32, TN>, TM>;
var<private> dv: array<f32, TM>;
var<private> xv: array<f32, TN>;

// wgrad_splitk_vec4's tiles and registers (rows padded by one vec4 against bank conflicts of the column
// writes); sized at least 1 so that the module stays valid for tiles that only wgrad_splitk runs.
const TM4: u32 = (TM + 3u) / 4u;
const TN4: u32 = (TN + 3u) / 4u;
var<workgroup> Ds4: array<array<array<vec4<f32>, BM / 4u + 1u>, BK>, STAGES>;
var<workgroup> Xs4: array<array<array<vec4<f32>, BN / 4u + 1u>, BK>, STAGES>;
var<private> acc4: array<array<vec4<f32>, TN4>, TM>;
var<private> dv4: array<vec4<f32>, TM4>;
var<private> xv4: array<vec4<f32>, TN4>;

// The row m = (n, pixel) one slice's loads read: its im2col pixel (im2col3x3.wgsl, appended by conv2d.ts;
// outside past the split's end) and where its dy values start.
struct Row {
  a: Im2colPixel,
  dyBase: u32,
}

fn decode_row(m: u32, mEnd: u32) -> Row {
  let a = im2col_pixel(m, mEnd, p.ci, p.h, p.w);
  return Row(a, (a.n * p.co * p.h + u32(a.py)) * p.w + u32(a.px));
}

// dy[m, o], zero past the split's end or the last channel.
fn loadDy(r: Row, o: u32) -> f32 {
  if (!r.a.inside || o >= p.co) {
    return 0.0;
  }
  return dy[r.dyBase + o * p.h * p.w];
}

// What column k = (c, tap) of im2col(x) reads: channel c's offset in an image and the tap's shift, or
// the bias column (k = K) or nothing (past the end).
const COL_TAP: u32 = 0u;
const COL_BIAS: u32 = 1u;
const COL_PAST: u32 = 2u;
struct Column {
  kind: u32,
  offset: u32,
  dy: i32,
  dx: i32,
}

fn decode_column(k: u32) -> Column {
  if (k >= p.k) {
    return Column(select(COL_PAST, COL_BIAS, k == p.k), 0u, 0, 0);
  }
  let c = k / 9u;
  let tap = k - 9u * c;
  let ky = tap / 3u;
  return Column(COL_TAP, c * p.h * p.w, i32(ky) - 1, i32(tap - 3u * ky) - 1);
}

// im2col(x)[m, k] with the bias column k = K (1.0), zero past the ends and outside the image.
fn loadA(r: Row, col: Column) -> f32 {
  if (!r.a.inside || col.kind == COL_PAST) {
    return 0.0;
  }
  if (col.kind == COL_BIAS) {
    return 1.0;
  }
  let iy = r.a.py + col.dy;
  let ix = r.a.px + col.dx;
  if (iy < 0 || iy >= i32(p.h) || ix < 0 || ix >= i32(p.w)) {
    return 0.0;
  }
  return x[r.a.image + col.offset + u32(iy) * p.w + u32(ix)];
}

// The columns of this invocation's A loads (load i fills column (tid + i * WG) / BK of every slice).
var<private> aColumn: array<Column, BN * BK / WG>;

// Where a workgroup works (both entry points): its output tile and its split of the rows. A function of
// the workgroup alone, so that the K loop's bounds are uniform (its barriers require it; Tint checks).
struct Split {
  oBase: u32,
  kBase: u32,
  s: u32,
  mStart: u32,
  mEnd: u32,
}

fn split_of(wid: vec3<u32>) -> Split {
  let mStart = wid.z * p.chunk;
  return Split(wid.x * BM, wid.y * BN, wid.z, mStart, min(mStart + p.chunk, p.m));
}

fn decode_columns(tid: u32, kBase: u32) {
  /* unroll */ for (var i = 0u; i < BN * BK / WG; i++) {
    aColumn[i] = decode_column(kBase + (tid + i * WG) / BK);
  }
}

// One slice's loads, all from row m = mBase + tid % BK (the workgroup's WG invocations are a multiple of
// BK): load i goes to column (tid + i * WG) / BK of that row of Ds (dy) or Xs (im2col(x)), which each
// entry point then stores in its own tiles.
var<private> dyLoads: array<f32, BM * BK / WG>;
var<private> aLoads: array<f32, BN * BK / WG>;

fn load_slice(tid: u32, sp: Split, mBase: u32) {
  let row = decode_row(mBase + tid % BK, sp.mEnd);
  /* unroll */ for (var i = 0u; i < BM * BK / WG; i++) {
    dyLoads[i] = loadDy(row, sp.oBase + (tid + i * WG) / BK);
  }
  /* unroll */ for (var i = 0u; i < BN * BK / WG; i++) {
    aLoads[i] = loadA(row, aColumn[i]);
  }
}

// Slice s + 1's loads, issued before slice s's multiply-adds when there are two tile sets (the barrier
// before this call also orders their stores, into the other set, after every read of slice s - 1).
fn prefetch_slice(tid: u32, sp: Split, s: u32, slices: u32) {
  if (STAGES > 1u && s + 1u < slices) {
    load_slice(tid, sp, sp.mStart + (s + 1u) * BK);
  }
}

// After slice s's multiply-adds: with one tile set, wait until every invocation is done reading it, then
// load slice s + 1.
fn finish_slice(tid: u32, sp: Split, s: u32, slices: u32) {
  if (STAGES == 1u) {
    workgroupBarrier();
    if (s + 1u < slices) {
      load_slice(tid, sp, sp.mStart + (s + 1u) * BK);
    }
  }
}

@compute @workgroup_size(WG)
fn wgrad_splitk(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let sp = split_of(wid);
  decode_columns(tid, sp.kBase);
  let slot = tid % BK;
  let to = tid % WM;
  let tk = tid / WM;
  let slices = (sp.mEnd - sp.mStart + BK - 1u) / BK;
  load_slice(tid, sp, sp.mStart);
  for (var s = 0u; s < slices; s++) {
    let stage = s % STAGES;
    /* unroll */ for (var i = 0u; i < BM * BK / WG; i++) {
      Ds[stage][slot][(tid + i * WG) / BK] = dyLoads[i];
    }
    /* unroll */ for (var i = 0u; i < BN * BK / WG; i++) {
      Xs[stage][slot][(tid + i * WG) / BK] = aLoads[i];
    }
    workgroupBarrier();
    prefetch_slice(tid, sp, s, slices);
    /* unroll */ for (var mm = 0u; mm < BK; mm++) {
      /* unroll */ for (var i = 0u; i < TM; i++) {
        dv[i] = Ds[stage][mm][to + i * WM];
      }
      /* unroll */ for (var j = 0u; j < TN; j++) {
        xv[j] = Xs[stage][mm][tk + j * WN];
      }
      /* unroll */ for (var i = 0u; i < TM; i++) {
        /* unroll */ for (var j = 0u; j < TN; j++) {
          acc[i][j] = fma(dv[i], xv[j], acc[i][j]);
        }
      }
    }
    finish_slice(tid, sp, s, slices);
  }
  let cols = p.k + 1u;
  /* unroll */ for (var i = 0u; i < TM; i++) {
    let o = sp.oBase + to + i * WM;
    /* unroll */ for (var j = 0u; j < TN; j++) {
      let k = sp.kBase + tk + j * WN;
      if (o < p.co && k < cols) {
        part[(sp.s * p.co + o) * cols + k] = acc[i][j];
      }
    }
  }
}

@compute @workgroup_size(WG)
fn wgrad_splitk_vec4(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let sp = split_of(wid);
  decode_columns(tid, sp.kBase);
  let slot = tid % BK;
  let to = tid % WM;
  let tk = tid / WM;
  let slices = (sp.mEnd - sp.mStart + BK - 1u) / BK;
  load_slice(tid, sp, sp.mStart);
  for (var s = 0u; s < slices; s++) {
    let stage = s % STAGES;
    /* unroll */ for (var i = 0u; i < BM * BK / WG; i++) {
      let col = (tid + i * WG) / BK;
      Ds4[stage][slot][col / 4u][col % 4u] = dyLoads[i];
    }
    /* unroll */ for (var i = 0u; i < BN * BK / WG; i++) {
      let col = (tid + i * WG) / BK;
      Xs4[stage][slot][col / 4u][col % 4u] = aLoads[i];
    }
    workgroupBarrier();
    prefetch_slice(tid, sp, s, slices);
    /* unroll */ for (var mm = 0u; mm < BK; mm++) {
      /* unroll */ for (var f = 0u; f < TM / 4u; f++) {
        dv4[f] = Ds4[stage][mm][f * WM + to];
      }
      /* unroll */ for (var g = 0u; g < TN / 4u; g++) {
        xv4[g] = Xs4[stage][mm][g * WN + tk];
      }
      /* unroll */ for (var f = 0u; f < TM / 4u; f++) {
        /* unroll */ for (var r = 0u; r < 4u; r++) {
          /* unroll */ for (var g = 0u; g < TN / 4u; g++) {
            acc4[f * 4u + r][g] = fma(vec4<f32>(dv4[f][r]), xv4[g], acc4[f * 4u + r][g]);
          }
        }
      }
    }
    finish_slice(tid, sp, s, slices);
  }
  let cols = p.k + 1u;
  /* unroll */ for (var f = 0u; f < TM / 4u; f++) {
    /* unroll */ for (var r = 0u; r < 4u; r++) {
      let o = sp.oBase + f * 4u * WM + to * 4u + r;
      /* unroll */ for (var g = 0u; g < TN / 4u; g++) {
        /* unroll */ for (var c = 0u; c < 4u; c++) {
          let k = sp.kBase + g * 4u * WN + tk * 4u + c;
          if (o < p.co && k < cols) {
            part[(sp.s * p.co + o) * cols + k] = acc4[f * 4u + r][g][c];
          }
        }
      }
    }
  }
}

struct ReduceParams {
  co: u32,
  k: u32,
  splits: u32,
}

@group(0) @binding(0) var<uniform> rp: ReduceParams;
@group(0) @binding(1) var<storage, read> partIn: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;
@group(0) @binding(3) var<storage, read_write> db: array<f32>;

// One (o, k) per invocation: the sum of its partials, always in the same order.
@compute @workgroup_size(64)
fn wgrad_splitk_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * 64u;
  let cols = rp.k + 1u;
  let perSplit = rp.co * cols;
  if (i >= perSplit) {
    return;
  }
  var sum = 0.0;
  for (var s = 0u; s < rp.splits; s++) {
    sum += partIn[s * perSplit + i];
  }
  let o = i / cols;
  let k = i % cols;
  if (k == rp.k) {
    db[o] = sum;
  } else {
    dw[o * rp.k + k] = sum;
  }
}
