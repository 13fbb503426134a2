// BatchNorm2d over NCHW f32, optionally fused with the ReLU that follows it (PyTorch semantics, dnll.md §2).
// This is the "serial" variant (lib/gpu/reduction.ts), for llvmpipe and lavapipe; GPUs run
// batchnorm_tree.wgsl, which cuts the same work into many more workgroups.
//
// Forward  x [N, C, H, W] -> y [N, C, H, W], with gamma [C], beta [C], running_mean [C], running_var [C].
//   train: bn_plane_stats -> bn_finalize_train (also updates the running statistics) -> bn_apply
//   eval:  bn_finalize_eval -> bn_apply
// Backward dy [N, C, H, W] -> dx [N, C, H, W], dgamma [C], dbeta [C]:
//   bn_plane_grad_sums -> bn_finalize_grad -> bn_input_grad
//
// How the work is cut. A "plane" is one (n, c) slice: H*W contiguous elements. Each invocation of the
// big passes owns a "quad" of 4 consecutive planes, 4*H*W elements that start on a 16-byte boundary
// whatever H*W is (7x7 included), so every load and store is a whole vec4: on llvmpipe a pass costs about
// one unit per load/store instruction, whatever its width. Only the vec4s in which one plane ends and the
// next begins need per-component care. Trip counts depend on H*W alone, so SIMD lanes never diverge.
// Per-plane partial results go to a small buffer and one invocation per channel folds them in a fixed
// order: deterministic, with no atomics, no workgroup memory and no barriers (expensive on llvmpipe).
// The last quad may be partial (N*C not a multiple of 4): the host binds every vec4 tensor rounded up to
// 16 bytes, so the vec4 holding the last element is in range; absent planes are skipped.
//
// The backward pass recomputes the ReLU mask from x with the very same expression as the forward
// (bn_affine), so it reads neither y nor a saved mask.

const WG: u32 = 64u;
override RELU: bool = false;

struct QuadParams {
  planes: u32, // N * C
  channels: u32,
  hw: u32,
}

struct ChannelParams {
  batch: u32,
  channels: u32,
  hw: u32,
  // bn_finalize_grad: 1 when the forward normalised with batch statistics (their gradient flows to x).
  batch_stats: u32,
  eps: f32,
  momentum: f32,
}

@group(0) @binding(0) var<uniform> q: QuadParams;
@group(0) @binding(0) var<uniform> f: ChannelParams;

// Quad passes.
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
// Per channel: (mean, invstd, scale = gamma * invstd, beta), written by the finalize kernels.
@group(0) @binding(2) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> plane_moments_out: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> plane_grad_sums_out: array<vec2<f32>>;
// Per channel: (k1, k2) with dx = scale * dy - (k1 + (x - mean) * k2).
@group(0) @binding(4) var<storage, read> dx_coef: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> dx: array<vec4<f32>>;

// Per-channel passes.
@group(0) @binding(1) var<storage, read> plane_partials: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats_out: array<vec4<f32>>;

@group(0) @binding(1) var<storage, read> eval_gamma: array<f32>;
@group(0) @binding(2) var<storage, read> eval_beta: array<f32>;
@group(0) @binding(3) var<storage, read> eval_running_mean: array<f32>;
@group(0) @binding(4) var<storage, read> eval_running_var: array<f32>;
@group(0) @binding(5) var<storage, read_write> eval_stats_out: array<vec4<f32>>;

@group(0) @binding(2) var<storage, read> grad_stats: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx_coef_out: array<vec2<f32>>;

// ---- Quad geometry (element indices are relative to the quad's first element) ----

struct PlaneSpan {
  lo: u32, // first element of the plane
  hi: u32, // one past its last element
  full_lo: u32, // vec4s [full_lo, full_hi) hold this plane's elements only
  full_hi: u32,
}

fn plane_span(k: u32, hw: u32) -> PlaneSpan {
  let lo = k * hw;
  let hi = lo + hw;
  return PlaneSpan(lo, hi, (lo + 3u) / 4u, hi / 4u);
}

// The vec4 holding the plane's first element also holds the previous plane's last ones.
fn has_shared_head(s: PlaneSpan) -> bool {
  return s.lo % 4u != 0u;
}

// The vec4 holding the plane's last element is shared and is not the (already counted) head.
fn has_shared_tail(s: PlaneSpan) -> bool {
  return s.hi % 4u != 0u && s.hi / 4u >= s.full_lo;
}

// For writers: each shared vec4 is written once, by the plane that holds its first element.
fn writes_shared_tail(s: PlaneSpan) -> bool {
  return s.hi % 4u != 0u && (s.hi / 4u) * 4u >= s.lo;
}

fn in_plane(j: u32, s: PlaneSpan) -> vec4<bool> {
  let e = vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u);
  return (e >= vec4<u32>(s.lo)) & (e < vec4<u32>(s.hi));
}

// Local plane (0..3) of each component of the quad's vec4 j.
fn component_planes(j: u32, hw: u32) -> vec4<u32> {
  let e = vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u);
  return min(e / vec4<u32>(hw), vec4<u32>(3u));
}

fn pick(per_plane: vec4<f32>, k: vec4<u32>) -> vec4<f32> {
  return vec4<f32>(per_plane[k.x], per_plane[k.y], per_plane[k.z], per_plane[k.w]);
}

fn hsum(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

fn quad_index(gid: vec3<u32>, nw: vec3<u32>) -> u32 {
  return gid.x + gid.y * nw.x * WG;
}

// Shared by the forward and the backward mask so that both see bit-identical values.
fn bn_affine(v: vec4<f32>, mean: vec4<f32>, scale: vec4<f32>, shift: vec4<f32>) -> vec4<f32> {
  return fma(v - mean, scale, shift);
}

// Per-plane normalisation constants of a quad, component k for local plane k (zeros for absent planes).
struct QuadStats {
  mean: vec4<f32>,
  invstd: vec4<f32>,
  scale: vec4<f32>,
  shift: vec4<f32>,
}

fn load_quad_stats(first_plane: u32) -> QuadStats {
  var s = QuadStats(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  for (var k = 0u; k < 4u; k++) {
    if (first_plane + k < q.planes) {
      let st = stats[(first_plane + k) % q.channels];
      s.mean[k] = st.x;
      s.invstd[k] = st.y;
      s.scale[k] = st.z;
      s.shift[k] = st.w;
    }
  }
  return s;
}

// ---- Forward ----

// Per plane: (mean, sum of squared deviations). Sums run over deviations from the plane's first element,
// so the variance does not cancel catastrophically when |mean| >> std.
@compute @workgroup_size(WG)
fn bn_plane_stats(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let quad = quad_index(gid, nw);
  let first_plane = quad * 4u;
  if (first_plane >= q.planes) {
    return;
  }
  let base = quad * q.hw; // in vec4s
  let inv_hw = 1.0 / f32(q.hw);
  for (var k = 0u; k < 4u; k++) {
    if (first_plane + k >= q.planes) {
      break;
    }
    let s = plane_span(k, q.hw);
    let shift = x[base + s.lo / 4u][s.lo % 4u];
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    if (has_shared_head(s)) {
      let j = s.lo / 4u;
      let d = select(vec4<f32>(0.0), x[base + j] - shift, in_plane(j, s));
      s1 += d;
      s2 = fma(d, d, s2);
    }
    for (var j = s.full_lo; j < s.full_hi; j++) {
      let d = x[base + j] - shift;
      s1 += d;
      s2 = fma(d, d, s2);
    }
    if (has_shared_tail(s)) {
      let j = s.hi / 4u;
      let d = select(vec4<f32>(0.0), x[base + j] - shift, in_plane(j, s));
      s1 += d;
      s2 = fma(d, d, s2);
    }
    let sum_d = hsum(s1);
    let mean_d = sum_d * inv_hw;
    plane_moments_out[first_plane + k] = vec2<f32>(shift + mean_d, max(hsum(s2) - sum_d * mean_d, 0.0));
  }
}

// One invocation per channel folds the N plane moments in order n = 0..N-1 (Chan et al.'s pairwise
// update, each plane holding H*W elements), then updates the running statistics the PyTorch way:
// running = (1 - momentum) * running + momentum * batch, with the unbiased variance.
@compute @workgroup_size(WG)
fn bn_finalize_train(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= f.channels) {
    return;
  }
  var mean = 0.0;
  var m2 = 0.0;
  let hw = f32(f.hw);
  for (var n = 0u; n < f.batch; n++) {
    let plane = plane_partials[n * f.channels + c];
    let delta = plane.x - mean;
    let seen = f32(n);
    mean += delta / (seen + 1.0);
    m2 += plane.y + delta * delta * (seen * hw / (seen + 1.0));
  }
  let count = f32(f.batch * f.hw);
  let invstd = 1.0 / sqrt(m2 / count + f.eps);
  let scale = gamma[c] * invstd;
  stats_out[c] = vec4<f32>(mean, invstd, scale, beta[c]);
  running_mean[c] = (1.0 - f.momentum) * running_mean[c] + f.momentum * mean;
  running_var[c] = (1.0 - f.momentum) * running_var[c] + f.momentum * (m2 / (count - 1.0));
}

@compute @workgroup_size(WG)
fn bn_finalize_eval(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= f.channels) {
    return;
  }
  let invstd = 1.0 / sqrt(eval_running_var[c] + f.eps);
  eval_stats_out[c] = vec4<f32>(eval_running_mean[c], invstd, eval_gamma[c] * invstd, eval_beta[c]);
}

fn activate(v: vec4<f32>) -> vec4<f32> {
  if (RELU) {
    return max(v, vec4<f32>(0.0));
  }
  return v;
}

@compute @workgroup_size(WG)
fn bn_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let quad = quad_index(gid, nw);
  let first_plane = quad * 4u;
  if (first_plane >= q.planes) {
    return;
  }
  let base = quad * q.hw;
  let st = load_quad_stats(first_plane);
  for (var k = 0u; k < 4u; k++) {
    if (first_plane + k >= q.planes) {
      break;
    }
    let s = plane_span(k, q.hw);
    let mean = vec4<f32>(st.mean[k]);
    let scale = vec4<f32>(st.scale[k]);
    let shift = vec4<f32>(st.shift[k]);
    for (var j = s.full_lo; j < s.full_hi; j++) {
      y[base + j] = activate(bn_affine(x[base + j], mean, scale, shift));
    }
    if (writes_shared_tail(s)) {
      let j = s.hi / 4u;
      let kk = component_planes(j, q.hw);
      y[base + j] = activate(bn_affine(x[base + j], pick(st.mean, kk), pick(st.scale, kk), pick(st.shift, kk)));
    }
  }
}

// ---- Backward ----

// dy with the fused ReLU's mask applied: zero where the forward output was not positive.
fn masked_dy(g: vec4<f32>, v: vec4<f32>, mean: vec4<f32>, scale: vec4<f32>, shift: vec4<f32>) -> vec4<f32> {
  if (RELU) {
    return select(vec4<f32>(0.0), g, bn_affine(v, mean, scale, shift) > vec4<f32>(0.0));
  }
  return g;
}

// Per plane: (sum dy, sum dy * (x - mean)), dy already masked by the fused ReLU.
@compute @workgroup_size(WG)
fn bn_plane_grad_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let quad = quad_index(gid, nw);
  let first_plane = quad * 4u;
  if (first_plane >= q.planes) {
    return;
  }
  let base = quad * q.hw;
  let st = load_quad_stats(first_plane);
  for (var k = 0u; k < 4u; k++) {
    if (first_plane + k >= q.planes) {
      break;
    }
    let s = plane_span(k, q.hw);
    let mean = vec4<f32>(st.mean[k]);
    let scale = vec4<f32>(st.scale[k]);
    let shift = vec4<f32>(st.shift[k]);
    var s_dy = vec4<f32>(0.0);
    var s_dyx = vec4<f32>(0.0);
    if (has_shared_head(s)) {
      let j = s.lo / 4u;
      let v = x[base + j];
      let g = select(vec4<f32>(0.0), masked_dy(dy[base + j], v, mean, scale, shift), in_plane(j, s));
      s_dy += g;
      s_dyx = fma(g, v - mean, s_dyx);
    }
    for (var j = s.full_lo; j < s.full_hi; j++) {
      let v = x[base + j];
      let g = masked_dy(dy[base + j], v, mean, scale, shift);
      s_dy += g;
      s_dyx = fma(g, v - mean, s_dyx);
    }
    if (has_shared_tail(s)) {
      let j = s.hi / 4u;
      let v = x[base + j];
      let g = select(vec4<f32>(0.0), masked_dy(dy[base + j], v, mean, scale, shift), in_plane(j, s));
      s_dy += g;
      s_dyx = fma(g, v - mean, s_dyx);
    }
    plane_grad_sums_out[first_plane + k] = vec2<f32>(hsum(s_dy), hsum(s_dyx));
  }
}

// One invocation per channel, planes folded in order n = 0..N-1. With batch statistics,
// dx = gamma * invstd / n * (n * dy - sum(dy) - xhat * sum(dy * xhat)) = scale * dy - (k1 + (x - mean) * k2);
// with running statistics the normalisation is a constant affine map and k1 = k2 = 0.
@compute @workgroup_size(WG)
fn bn_finalize_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= f.channels) {
    return;
  }
  var sum_dy = 0.0;
  var sum_dyx = 0.0;
  for (var n = 0u; n < f.batch; n++) {
    let plane = plane_partials[n * f.channels + c];
    sum_dy += plane.x;
    sum_dyx += plane.y;
  }
  let st = grad_stats[c];
  let invstd = st.y;
  let scale = st.z;
  dbeta[c] = sum_dy;
  dgamma[c] = sum_dyx * invstd;
  var coef = vec2<f32>(0.0);
  if (f.batch_stats != 0u) {
    let count = f32(f.batch * f.hw);
    coef = vec2<f32>(scale * sum_dy / count, scale * invstd * invstd * sum_dyx / count);
  }
  dx_coef_out[c] = coef;
}

@compute @workgroup_size(WG)
fn bn_input_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let quad = quad_index(gid, nw);
  let first_plane = quad * 4u;
  if (first_plane >= q.planes) {
    return;
  }
  let base = quad * q.hw;
  let st = load_quad_stats(first_plane);
  var k1 = vec4<f32>(0.0);
  var k2 = vec4<f32>(0.0);
  for (var k = 0u; k < 4u; k++) {
    if (first_plane + k < q.planes) {
      let coef = dx_coef[(first_plane + k) % q.channels];
      k1[k] = coef.x;
      k2[k] = coef.y;
    }
  }
  for (var k = 0u; k < 4u; k++) {
    if (first_plane + k >= q.planes) {
      break;
    }
    let s = plane_span(k, q.hw);
    let mean = vec4<f32>(st.mean[k]);
    let scale = vec4<f32>(st.scale[k]);
    let shift = vec4<f32>(st.shift[k]);
    let c1 = vec4<f32>(k1[k]);
    let c2 = vec4<f32>(k2[k]);
    for (var j = s.full_lo; j < s.full_hi; j++) {
      let v = x[base + j];
      let g = masked_dy(dy[base + j], v, mean, scale, shift);
      dx[base + j] = fma(scale, g, -fma(v - mean, c2, c1));
    }
    if (writes_shared_tail(s)) {
      let j = s.hi / 4u;
      let kk = component_planes(j, q.hw);
      let v = x[base + j];
      let mean_j = pick(st.mean, kk);
      let scale_j = pick(st.scale, kk);
      let g = masked_dy(dy[base + j], v, mean_j, scale_j, pick(st.shift, kk));
      dx[base + j] = fma(scale_j, g, -fma(v - mean_j, pick(k2, kk), pick(k1, kk)));
    }
  }
}
