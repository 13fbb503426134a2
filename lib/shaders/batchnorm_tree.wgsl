// BatchNorm2d over NCHW f32 for GPUs ("tree" variant), optionally fused with the ReLU that follows it.
// Same maths and buffers as lib/shaders/batchnorm.wgsl (the "serial" variant, kept for llvmpipe and
// lavapipe); only the way the work is cut differs.
//
// Forward  train: bn_chunk_stats -> bn_chunk_finalize_train -> bn_apply_elements
//          eval:  batchnorm.wgsl's bn_finalize_eval (one invocation per channel, nothing to reduce)
//                 -> bn_apply_elements
// Backward bn_chunk_grad_sums -> bn_chunk_finalize_grad -> bn_input_grad_elements
//
// Where it wins and why. The serial kernels give each invocation 4 whole (n, c) planes: at batch 256 the
// notebook's first BatchNorm is 4096 invocations, 64 workgroups, each walking 3136 values alone, with
// neighbouring lanes 12 KiB apart. That suits a CPU (no barriers, one SIMD lane per quad), but it leaves
// a 132-SM GPU nearly idle and uncoalesced. Here:
// - Each channel's reduction over (N, H, W) is cut into chunks of `chunk` consecutive samples (the host
//   picks it so that a chunk holds a few thousand values); one workgroup of WG invocations per
//   (chunk, channel) sums its chunk, consecutive lanes reading consecutive addresses, and folds the
//   lanes' partial sums with a tree in workgroup memory. The tree's shape depends only on WG, so the
//   order of every addition is fixed: same inputs, same bits. Notebook layer 1 at batch 256: 43 chunks
//   of 6 samples (4704 values) x 64 channels = 2752 workgroups of 256 invocations.
// - A second pass, one invocation per channel, folds that channel's chunks in order (a few dozen).
// - The element-wise passes (normalise, input gradient) take one vec4 per invocation: N*C*H*W/4 of them,
//   each looking up its components' channels (cached), so every access is coalesced.
// On llvmpipe the barriers and the per-element index arithmetic make this slower than the serial
// kernels; the results differ from theirs only by fp32 rounding (a different summation order).
//
// The backward pass recomputes the ReLU mask from x with the very same expression as this file's forward
// (bn_affine), so it reads neither y nor a saved mask.

const WG: u32 = 256u; // a power of two: the tree halves it
override RELU: bool = false;

struct ChunkParams {
  batch: u32,
  channels: u32,
  hw: u32,
  chunk: u32, // samples per chunk (the last chunk may hold fewer)
  chunks: u32, // ceil(batch / chunk)
  // bn_chunk_finalize_grad: 1 when the forward normalised with batch statistics (their gradient flows to x).
  batch_stats: u32,
  eps: f32,
  momentum: f32,
}

struct ElementParams {
  vec4s: u32, // ceil(N * C * H * W / 4)
  channels: u32,
  hw: u32,
}

@group(0) @binding(0) var<uniform> cp: ChunkParams;
@group(0) @binding(0) var<uniform> ep: ElementParams;

// bn_chunk_stats
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read_write> chunk_moments_out: array<vec2<f32>>;
// bn_chunk_finalize_train
@group(0) @binding(1) var<storage, read> chunk_moments: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats_out: array<vec4<f32>>;
// bn_chunk_grad_sums (xs at binding 1)
// Per channel: (mean, invstd, scale = gamma * invstd, beta), written by the finalize kernels.
@group(0) @binding(2) var<storage, read> stats: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> dys: array<f32>;
@group(0) @binding(4) var<storage, read_write> chunk_grad_sums_out: array<vec2<f32>>;
// bn_chunk_finalize_grad
@group(0) @binding(1) var<storage, read> chunk_grad_sums: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> grad_stats: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> dbeta: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx_coef_out: array<vec2<f32>>;
// bn_apply_elements (stats at binding 2)
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;
// bn_input_grad_elements (x at 1, stats at 2)
@group(0) @binding(3) var<storage, read> dy: array<vec4<f32>>;
// Per channel: (k1, k2) with dx = scale * dy - (k1 + (x - mean) * k2).
@group(0) @binding(4) var<storage, read> dx_coef: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> dx: array<vec4<f32>>;

// What each lane adds in tree_sum (lib/shaders/tree_sum.wgsl, appended by the launcher: withTreeSum).
alias TreeValue = vec2<f32>;

// Lane t walks elements e = t, t + WG, t + 2 WG, ... of chunk k's slice of channel c, e = (sample, offset)
// in the chunk. The walk keeps (sample n, offset) and steps them by (WG / hw, WG % hw) with one carry,
// so that no step divides (an integer division costs tens of instructions on a GPU).
struct ChunkWalk {
  n: u32,
  off: u32,
}

fn walk_start(k: u32, t: u32) -> ChunkWalk {
  return ChunkWalk(k * cp.chunk + t / cp.hw, t % cp.hw);
}

fn walk_next(w: ChunkWalk) -> ChunkWalk {
  var next = ChunkWalk(w.n + WG / cp.hw, w.off + WG % cp.hw);
  if (next.off >= cp.hw) {
    next = ChunkWalk(next.n + 1u, next.off - cp.hw);
  }
  return next;
}

// The walk's element of channel c, as an index into the NCHW tensor.
fn walk_index(w: ChunkWalk, c: u32) -> u32 {
  return (w.n * cp.channels + c) * cp.hw + w.off;
}

fn chunk_samples(k: u32) -> u32 {
  return min(cp.chunk, cp.batch - k * cp.chunk);
}

// Shared by the forward and the backward mask so that both see bit-identical values.
fn bn_affine(v: vec4<f32>, mean: vec4<f32>, scale: vec4<f32>, shift: vec4<f32>) -> vec4<f32> {
  return fma(v - mean, scale, shift);
}

fn bn_affine1(v: f32, st: vec4<f32>) -> f32 {
  return bn_affine(vec4<f32>(v), vec4<f32>(st.x), vec4<f32>(st.z), vec4<f32>(st.w)).x;
}

// ---- Forward ----

// Per (chunk k, channel c) = workgroup (k, c): (mean, sum of squared deviations) of the chunk's values.
// Sums run over deviations from the chunk's first value, so the variance does not cancel
// catastrophically when |mean| >> std.
@compute @workgroup_size(WG)
fn bn_chunk_stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let k = wid.x;
  let c = wid.y;
  let count = chunk_samples(k) * cp.hw;
  let shift = xs[walk_index(walk_start(k, 0u), c)];
  var s = vec2<f32>(0.0);
  var w = walk_start(k, t);
  for (var e = t; e < count; e += WG) {
    let d = xs[walk_index(w, c)] - shift;
    s = vec2<f32>(s.x + d, fma(d, d, s.y));
    w = walk_next(w);
  }
  let total = tree_sum(t, s);
  if (t == 0u) {
    let mean_d = total.x / f32(count);
    chunk_moments_out[c * cp.chunks + k] = vec2<f32>(shift + mean_d, max(total.y - total.x * mean_d, 0.0));
  }
}

// One invocation per channel folds the chunks' moments in order k = 0..chunks-1 (Chan et al.'s pairwise
// update with the chunks' value counts), then updates the running statistics the PyTorch way:
// running = (1 - momentum) * running + momentum * batch, with the unbiased variance.
@compute @workgroup_size(64)
fn bn_chunk_finalize_train(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= cp.channels) {
    return;
  }
  var mean = 0.0;
  var m2 = 0.0;
  var seen = 0.0;
  for (var k = 0u; k < cp.chunks; k++) {
    let part = chunk_moments[c * cp.chunks + k];
    let count = f32(chunk_samples(k) * cp.hw);
    let total = seen + count;
    let delta = part.x - mean;
    mean += delta * (count / total);
    m2 += part.y + delta * delta * (seen * count / total);
    seen = total;
  }
  let count = f32(cp.batch * cp.hw);
  let invstd = 1.0 / sqrt(m2 / count + cp.eps);
  let scale = gamma[c] * invstd;
  stats_out[c] = vec4<f32>(mean, invstd, scale, beta[c]);
  running_mean[c] = (1.0 - cp.momentum) * running_mean[c] + cp.momentum * mean;
  running_var[c] = (1.0 - cp.momentum) * running_var[c] + cp.momentum * (m2 / (count - 1.0));
}

fn activate(v: vec4<f32>) -> vec4<f32> {
  if (RELU) {
    return max(v, vec4<f32>(0.0));
  }
  return v;
}

// Per-component normalisation constants of vec4 i: component j belongs to channel ((4i + j) / hw) % C.
// Components past the tensor's end (the host binds it rounded up to whole vec4s) get a valid channel
// too; what is written there is never read.
struct ElementStats {
  channel: vec4<u32>,
  mean: vec4<f32>,
  scale: vec4<f32>,
  shift: vec4<f32>,
}

fn element_stats(i: u32) -> ElementStats {
  if (ep.hw % 4u == 0u) {
    // Planes of whole vec4s (28x28, 14x14): one channel, one lookup (a uniform branch).
    let c = (4u * i / ep.hw) % ep.channels;
    let st = stats[c];
    return ElementStats(vec4<u32>(c), vec4<f32>(st.x), vec4<f32>(st.z), vec4<f32>(st.w));
  }
  let e = vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u);
  let ch = (e / vec4<u32>(ep.hw)) % vec4<u32>(ep.channels);
  let s0 = stats[ch.x];
  let s1 = stats[ch.y];
  let s2 = stats[ch.z];
  let s3 = stats[ch.w];
  return ElementStats(
    ch,
    vec4<f32>(s0.x, s1.x, s2.x, s3.x),
    vec4<f32>(s0.z, s1.z, s2.z, s3.z),
    vec4<f32>(s0.w, s1.w, s2.w, s3.w),
  );
}

fn element_index(gid: vec3<u32>, nw: vec3<u32>) -> u32 {
  return gid.x + gid.y * nw.x * WG;
}

@compute @workgroup_size(WG)
fn bn_apply_elements(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = element_index(gid, nw);
  if (i >= ep.vec4s) {
    return;
  }
  let st = element_stats(i);
  y[i] = activate(bn_affine(x[i], st.mean, st.scale, st.shift));
}

// ---- Backward ----

// Per (chunk k, channel c) = workgroup (k, c): (sum dy, sum dy * (x - mean)), dy masked by the fused ReLU.
@compute @workgroup_size(WG)
fn bn_chunk_grad_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let k = wid.x;
  let c = wid.y;
  let count = chunk_samples(k) * cp.hw;
  let st = stats[c];
  var s = vec2<f32>(0.0);
  var w = walk_start(k, t);
  for (var e = t; e < count; e += WG) {
    let at = walk_index(w, c);
    w = walk_next(w);
    let v = xs[at];
    var g = dys[at];
    if (RELU && !(bn_affine1(v, st) > 0.0)) {
      g = 0.0;
    }
    s = vec2<f32>(s.x + g, fma(g, v - st.x, s.y));
  }
  let total = tree_sum(t, s);
  if (t == 0u) {
    chunk_grad_sums_out[c * cp.chunks + k] = total;
  }
}

// One invocation per channel, chunks folded in order k = 0..chunks-1. With batch statistics,
// dx = gamma * invstd / n * (n * dy - sum(dy) - xhat * sum(dy * xhat)) = scale * dy - (k1 + (x - mean) * k2);
// with running statistics the normalisation is a constant affine map and k1 = k2 = 0.
@compute @workgroup_size(64)
fn bn_chunk_finalize_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= cp.channels) {
    return;
  }
  var sum = vec2<f32>(0.0);
  for (var k = 0u; k < cp.chunks; k++) {
    sum += chunk_grad_sums[c * cp.chunks + k];
  }
  let st = grad_stats[c];
  let invstd = st.y;
  let scale = st.z;
  dbeta[c] = sum.x;
  dgamma[c] = sum.y * invstd;
  var coef = vec2<f32>(0.0);
  if (cp.batch_stats != 0u) {
    let count = f32(cp.batch * cp.hw);
    coef = vec2<f32>(scale * sum.x / count, scale * invstd * invstd * sum.y / count);
  }
  dx_coef_out[c] = coef;
}

@compute @workgroup_size(WG)
fn bn_input_grad_elements(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nw: vec3<u32>,
) {
  let i = element_index(gid, nw);
  if (i >= ep.vec4s) {
    return;
  }
  let st = element_stats(i);
  let v = x[i];
  var g = dy[i];
  if (RELU) {
    g = select(vec4<f32>(0.0), g, bn_affine(v, st.mean, st.scale, st.shift) > vec4<f32>(0.0));
  }
  let c0 = dx_coef[st.channel.x];
  let c1 = dx_coef[st.channel.y];
  let c2 = dx_coef[st.channel.z];
  let c3 = dx_coef[st.channel.w];
  let k1 = vec4<f32>(c0.x, c1.x, c2.x, c3.x);
  let k2 = vec4<f32>(c0.y, c1.y, c2.y, c3.y);
  dx[i] = fma(st.scale, g, -fma(v - st.mean, k2, k1));
}
