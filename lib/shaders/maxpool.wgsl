// MaxPool2d(kernel 2, stride 2) over NCHW f32; odd sizes floor like PyTorch (7 -> 3).
//
// Forward  x [N, C, H, W] -> y [N, C, OH, OW] (OH = H / 2, OW = W / 2, floored) and codes
//          [N * C * OH, ceil(OW / 16)] u32: the window position (0..3, row-major) of each maximum, 2 bits
//          per output, 16 outputs of a row per word. On ties the first maximum wins, as in PyTorch.
// Backward dy [N, C, OH, OW], codes -> dx [N, C, H, W]: dy goes to the saved position and zeros
//          everywhere else. Windows do not overlap, so every element of dx is written exactly once, with
//          the last row / column that an odd size leaves out of every window written as zeros by the
//          invocation next to it: no separate clearing pass.
//
// One invocation per output row loops over the row's windows (uniform trip count, no divergence). On
// llvmpipe a pass costs about one unit per load/store instruction, whatever its width, so the kernels
// use the widest aligned accesses the width allows: when W % 4 == 0 one vec4 of each input row covers
// two windows and outputs go out in pairs (*_w4); when W % 4 == 2 a window row is one vec2 (*_w2); odd W
// takes scalar accesses (*_any). Packing the codes saves most of an index tensor's stores and loads.

const WG: u32 = 64u;

struct Params {
  rows: u32, // N * C * OH
  h: u32,
  w: u32,
  oh: u32,
  ow: u32,
  code_words: u32, // per output row: ceil(OW / 16)
}

@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> x2: array<vec2<f32>>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y2: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> codes_out: array<u32>;

@group(0) @binding(1) var<storage, read> dy2: array<vec2<f32>>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> codes: array<u32>;
@group(0) @binding(3) var<storage, read_write> dx4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dx2: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

struct OutputRow {
  valid: bool,
  index: u32, // r: the output row, 0..N*C*OH-1
  out: u32, // first output element of the row
  top: u32, // first input element of its windows' upper row
  last: bool, // the last output row of its plane (owns the leftover input row when H is odd)
}

fn output_row(gid: vec3<u32>, nw: vec3<u32>) -> OutputRow {
  let r = gid.x + gid.y * nw.x * WG;
  let plane = r / p.oh;
  let i = r - plane * p.oh;
  return OutputRow(r < p.rows, r, r * p.ow, (plane * p.h + 2u * i) * p.w, i + 1u == p.oh);
}

struct WindowMax {
  value: f32,
  at: u32,
}

// Strict comparisons in row-major order keep the first of equal maxima.
fn window_max(upper: vec2<f32>, lower: vec2<f32>) -> WindowMax {
  var m = WindowMax(upper.x, 0u);
  if (upper.y > m.value) {
    m = WindowMax(upper.y, 1u);
  }
  if (lower.x > m.value) {
    m = WindowMax(lower.x, 2u);
  }
  if (lower.y > m.value) {
    m = WindowMax(lower.y, 3u);
  }
  return m;
}

// Packs output j's code; returns true when its word is complete (16 codes or the row's end).
fn word_done(j: u32) -> bool {
  return j % 16u == 15u || j + 1u == p.ow;
}

fn code_of(word: u32, j: u32) -> u32 {
  return (word >> (2u * (j % 16u))) & 3u;
}

// The gradient's share for window positions `first` and `first + 1` (one row of the window).
fn route(g: f32, at: u32, first: u32) -> vec2<f32> {
  return vec2<f32>(select(0.0, g, at == first), select(0.0, g, at == first + 1u));
}

// ---- Forward ----

@compute @workgroup_size(WG)
fn maxpool_forward_w4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let row = output_row(gid, nw);
  if (!row.valid) {
    return;
  }
  let upper = row.top / 4u;
  let lower = (row.top + p.w) / 4u;
  var word = 0u;
  for (var pair = 0u; pair < p.ow / 2u; pair++) {
    let u = x4[upper + pair];
    let l = x4[lower + pair];
    let a = window_max(u.xy, l.xy);
    let b = window_max(u.zw, l.zw);
    y2[row.out / 2u + pair] = vec2<f32>(a.value, b.value);
    let j = 2u * pair;
    word |= (a.at | (b.at << 2u)) << (2u * (j % 16u));
    if (word_done(j + 1u)) {
      codes_out[row.index * p.code_words + j / 16u] = word;
      word = 0u;
    }
  }
}

@compute @workgroup_size(WG)
fn maxpool_forward_w2(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let row = output_row(gid, nw);
  if (!row.valid) {
    return;
  }
  let upper = row.top / 2u;
  let lower = (row.top + p.w) / 2u;
  var word = 0u;
  for (var j = 0u; j < p.ow; j++) {
    let m = window_max(x2[upper + j], x2[lower + j]);
    y[row.out + j] = m.value;
    word |= m.at << (2u * (j % 16u));
    if (word_done(j)) {
      codes_out[row.index * p.code_words + j / 16u] = word;
      word = 0u;
    }
  }
}

@compute @workgroup_size(WG)
fn maxpool_forward_any(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let row = output_row(gid, nw);
  if (!row.valid) {
    return;
  }
  var word = 0u;
  for (var j = 0u; j < p.ow; j++) {
    let u = row.top + 2u * j;
    let l = u + p.w;
    let m = window_max(vec2<f32>(x[u], x[u + 1u]), vec2<f32>(x[l], x[l + 1u]));
    y[row.out + j] = m.value;
    word |= m.at << (2u * (j % 16u));
    if (word_done(j)) {
      codes_out[row.index * p.code_words + j / 16u] = word;
      word = 0u;
    }
  }
}

// ---- Backward ----

@compute @workgroup_size(WG)
fn maxpool_backward_w4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let row = output_row(gid, nw);
  if (!row.valid) {
    return;
  }
  let upper = row.top / 4u;
  let lower = (row.top + p.w) / 4u;
  var word = 0u;
  for (var pair = 0u; pair < p.ow / 2u; pair++) {
    let j = 2u * pair;
    if (j % 16u == 0u) {
      word = codes[row.index * p.code_words + j / 16u];
    }
    let g = dy2[row.out / 2u + pair];
    let a = code_of(word, j);
    let b = code_of(word, j + 1u);
    dx4[upper + pair] = vec4<f32>(route(g.x, a, 0u), route(g.y, b, 0u));
    dx4[lower + pair] = vec4<f32>(route(g.x, a, 2u), route(g.y, b, 2u));
  }
  if (row.last && p.h % 2u == 1u) {
    let leftover = (row.top + 2u * p.w) / 4u;
    for (var k = 0u; k < p.w / 4u; k++) {
      dx4[leftover + k] = vec4<f32>(0.0);
    }
  }
}

@compute @workgroup_size(WG)
fn maxpool_backward_w2(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let row = output_row(gid, nw);
  if (!row.valid) {
    return;
  }
  let upper = row.top / 2u;
  let lower = (row.top + p.w) / 2u;
  var word = 0u;
  for (var j = 0u; j < p.ow; j++) {
    if (j % 16u == 0u) {
      word = codes[row.index * p.code_words + j / 16u];
    }
    let g = dy[row.out + j];
    let at = code_of(word, j);
    dx2[upper + j] = route(g, at, 0u);
    dx2[lower + j] = route(g, at, 2u);
  }
  if (row.last && p.h % 2u == 1u) {
    let leftover = (row.top + 2u * p.w) / 2u;
    for (var k = 0u; k < p.w / 2u; k++) {
      dx2[leftover + k] = vec2<f32>(0.0);
    }
  }
}

@compute @workgroup_size(WG)
fn maxpool_backward_any(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let row = output_row(gid, nw);
  if (!row.valid) {
    return;
  }
  var word = 0u;
  for (var j = 0u; j < p.ow; j++) {
    if (j % 16u == 0u) {
      word = codes[row.index * p.code_words + j / 16u];
    }
    let g = dy[row.out + j];
    let at = code_of(word, j);
    let u = row.top + 2u * j;
    let l = u + p.w;
    let upper = route(g, at, 0u);
    let lower = route(g, at, 2u);
    dx[u] = upper.x;
    dx[u + 1u] = upper.y;
    dx[l] = lower.x;
    dx[l + 1u] = lower.y;
  }
  if (p.w % 2u == 1u) {
    dx[row.top + p.w - 1u] = 0.0;
    dx[row.top + 2u * p.w - 1u] = 0.0;
  }
  if (row.last && p.h % 2u == 1u) {
    let leftover = row.top + 2u * p.w;
    for (var k = 0u; k < p.w; k++) {
      dx[leftover + k] = 0.0;
    }
  }
}
