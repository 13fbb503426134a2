// LDA head (dnll.md section 5, the paper's model): one spherical Gaussian per class, one variance
// v = exp(s) shared by all classes, trained with DNLL.
//   forward:  z [N,D], theta = {mu [C,D], prior_logits [C], log_cov [] (one scalar)}
//             -> delta [N,C] (the logits), m2 [N,C] = |z - mu[c]|^2 (kept for the log_cov gradient)
//   loss:     mda.wgsl's dnll_sample (K = 1): g [N,C] = lambda*exp(delta) - onehot(y), sample [N,4]
//   backward: g -> dz [N,D] and the parameter gradients, each a fixed-order sum over n, / N:
//             lda_reduce ("serial" variant, llvmpipe/lavapipe) or lda_reduce_tree ("tree", GPUs).
//
// As in mda.wgsl the three parameters are bound as one span `theta` / `grads` with element offsets.
// delta[c] = log_softmax(prior)[c] - (|z - mu[c]|^2 / v + D s) / 2 has no exp, so no sample can make it
// -inf; the prior's log-softmax subtracts its maximum.
//
// Entry points do not share one binding list; each lists its own bindings after `p` (binding 0).

struct Params {
  n: u32,
  classes: u32,
  dim: u32,
  mu_at: u32,
  prior_at: u32,
  cov_at: u32,
  // The batch's mean loss goes to stats[3*slot], its number of correct predictions to stats[3*slot+1],
  // its number of out-of-range labels to stats[3*slot+2] (STATS_PER_STEP in lib/mda/head.ts).
  slot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// every entry point
@group(0) @binding(1) var<storage, read> theta: array<f32>;
@group(0) @binding(2) var<storage, read> z: array<f32>;
// lda_logits, lda_forward
@group(0) @binding(3) var<storage, read_write> delta_out: array<f32>;
// lda_forward
@group(0) @binding(4) var<storage, read_write> m2_out: array<f32>;
// lda_input_grad
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> dz: array<f32>;
// lda_reduce (theta, z, g as above)
@group(0) @binding(4) var<storage, read> m2: array<f32>;
@group(0) @binding(5) var<storage, read> sample: array<f32>;
@group(0) @binding(6) var<storage, read_write> grads: array<f32>;
@group(0) @binding(7) var<storage, read_write> stats: array<f32>;

const WG: u32 = 64u;
const NEG_HUGE: f32 = -3.0e38;

fn flat_index(gid: vec3<u32>, nw: vec3<u32>) -> u32 {
  return gid.x + gid.y * nw.x * WG;
}

// log_softmax(prior_logits)[c]; recomputed per invocation because C is small.
fn log_prior(c: u32) -> f32 {
  var m = NEG_HUGE;
  for (var j = 0u; j < p.classes; j++) { m = max(m, theta[p.prior_at + j]); }
  var s = 0.0;
  for (var j = 0u; j < p.classes; j++) { s += exp(theta[p.prior_at + j] - m); }
  return theta[p.prior_at + c] - m - log(s);
}

fn squared_distance(n: u32, c: u32) -> f32 {
  var acc = 0.0;
  for (var d = 0u; d < p.dim; d++) {
    let diff = z[n * p.dim + d] - theta[p.mu_at + c * p.dim + d];
    acc += diff * diff;
  }
  return acc;
}

fn class_logit(c: u32, sq: f32) -> f32 {
  let s = theta[p.cov_at];
  return log_prior(c) - 0.5 * (sq * exp(-s) + f32(p.dim) * s);
}

// Eval logits: one invocation per (n, c).
@compute @workgroup_size(WG)
fn lda_logits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat_index(gid, nw);
  if (i >= p.n * p.classes) { return; }
  delta_out[i] = class_logit(i % p.classes, squared_distance(i / p.classes, i % p.classes));
}

// Training forward: the logits plus the squared distances; one invocation per (n, c).
@compute @workgroup_size(WG)
fn lda_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat_index(gid, nw);
  if (i >= p.n * p.classes) { return; }
  let sq = squared_distance(i / p.classes, i % p.classes);
  m2_out[i] = sq;
  delta_out[i] = class_logit(i % p.classes, sq);
}

// dz[n,d] = -(1/N) sum_c g[n,c] (z[n,d] - mu[c,d]) / v; one invocation per (n, d).
@compute @workgroup_size(WG)
fn lda_input_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat_index(gid, nw);
  if (i >= p.n * p.dim) { return; }
  let n = i / p.dim;
  let d = i % p.dim;
  var acc = 0.0;
  for (var c = 0u; c < p.classes; c++) {
    acc += g[n * p.classes + c] * (z[i] - theta[p.mu_at + c * p.dim + d]);
  }
  dz[i] = -acc * exp(-theta[p.cov_at]) / f32(p.n);
}

// Parameter gradients (overwritten, mean over the batch) and the batch stats; one invocation per
// gradient element in the span layout [mu | prior | log_cov], then one for the stats. Sums run over n in
// order 0..N-1 (and over c in order for log_cov), so the result does not depend on scheduling.
@compute @workgroup_size(WG)
fn lda_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat_index(gid, nw);
  let C = p.classes;
  let D = p.dim;
  let n_mu = C * D;
  let inv_v = exp(-theta[p.cov_at]);
  if (i < n_mu) {
    let c = i / D;
    let d = i % D;
    let mu = theta[p.mu_at + i];
    var acc = 0.0;
    for (var n = 0u; n < p.n; n++) { acc += g[n * C + c] * (z[n * D + d] - mu); }
    grads[p.mu_at + i] = acc * inv_v / f32(p.n);
  } else if (i < n_mu + C) {
    let c = i - n_mu;
    let pi = exp(log_prior(c));
    var acc = 0.0;
    for (var n = 0u; n < p.n; n++) { acc += g[n * C + c] - pi * sample[n * 4u + 2u]; }
    grads[p.prior_at + c] = acc / f32(p.n);
  } else if (i == n_mu + C) {
    let half_d = 0.5 * f32(D);
    var acc = 0.0;
    for (var n = 0u; n < p.n; n++) {
      for (var c = 0u; c < C; c++) { acc += g[n * C + c] * (0.5 * m2[n * C + c] * inv_v - half_d); }
    }
    grads[p.cov_at] = acc / f32(p.n);
  } else if (i == n_mu + C + 1u) {
    var sum = vec4<f32>(0.0);
    for (var n = 0u; n < p.n; n++) { sum += sample_stats(n); }
    store_batch_stats(sum);
  }
}

// ---- The "tree" variant of lda_reduce (GPUs; see lib/gpu/reduction.ts) ----
//
// lda_reduce gives each gradient element one invocation that loops over the whole batch (the log_cov one
// over N*C terms): a few workgroups of long dependent chains, far too few for a large GPU.
// lda_reduce_tree gives each element a workgroup: lane t sums samples t, t + WG, ... and the lanes are
// folded by a tree in workgroup memory whose shape depends only on WG, so the order of every addition is
// fixed (same inputs, same bits). Same bindings and element layout ([mu | prior | log_cov], then the
// stats) as lda_reduce, whose results it matches up to fp32 rounding.

// What each lane adds in tree_sum (lib/shaders/tree_sum.wgsl, appended by the launcher: withTreeSum).
alias TreeValue = vec4<f32>;

// One workgroup per gradient element (workgroup index = lda_reduce's invocation index), one more for
// the stats.
@compute @workgroup_size(WG)
fn lda_reduce_tree(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nw: vec3<u32>,
  @builtin(local_invocation_index) t: u32,
) {
  let i = wid.x + wid.y * nw.x;
  let C = p.classes;
  let D = p.dim;
  let n_mu = C * D;
  if (i > n_mu + C + 1u) { return; }
  let inv_v = exp(-theta[p.cov_at]);
  // This lane's share of the element's sum over n, the gradient's place in the span and its factor.
  var acc = vec4<f32>(0.0);
  var at = 0u;
  var factor = 1.0;
  if (i < n_mu) {
    let c = i / D;
    let d = i % D;
    let mu = theta[p.mu_at + i];
    for (var n = t; n < p.n; n += WG) { acc.x += g[n * C + c] * (z[n * D + d] - mu); }
    at = p.mu_at + i;
    factor = inv_v;
  } else if (i < n_mu + C) {
    let c = i - n_mu;
    let pi = exp(log_prior(c));
    for (var n = t; n < p.n; n += WG) { acc.x += g[n * C + c] - pi * sample[n * 4u + 2u]; }
    at = p.prior_at + c;
  } else if (i == n_mu + C) {
    let half_d = 0.5 * f32(D);
    for (var n = t; n < p.n; n += WG) {
      for (var c = 0u; c < C; c++) { acc.x += g[n * C + c] * (0.5 * m2[n * C + c] * inv_v - half_d); }
    }
    at = p.cov_at;
  } else {
    for (var n = t; n < p.n; n += WG) { acc += sample_stats(n); }
  }
  let total = tree_sum(t, acc);
  if (t != 0u) { return; }
  if (i <= n_mu + C) {
    grads[at] = total.x * factor / f32(p.n);
  } else {
    store_batch_stats(total);
  }
}
