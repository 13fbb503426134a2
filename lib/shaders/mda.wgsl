// MDA head (dnll.md sections 3-4): one Gaussian mixture per class, K isotropic components, trained with
// DNLL or EM-DNLL (same gradients; EM-DNLL only reports the responsibility entropy on top).
//   forward:  z [N,D], theta = {mu [C,K,D], prior_logits [C], mixture_logits [C,K], log_cov [C,K]}
//             -> delta [N,C] (the logits), rho [N,C,K] (responsibilities within each class)
//   loss:     delta, labels [N] -> g [N,C] = lambda*exp(delta) - onehot(y) (not yet divided by N),
//             sample [N,4] = (loss, correct, sum_c g, 1 if the label is out of range else 0)
//   backward: g, rho -> dz [N,D] and the parameter gradients, each a fixed-order sum over n, / N:
//             mda_reduce ("serial" variant, llvmpipe/lavapipe) or mda_reduce_tree ("tree", GPUs).
//
// The head's four parameters are consecutive views of the flat parameter buffer, so they are bound as one
// span `theta` (and `grads`, the same span of the gradient buffer) with element offsets in Params: every
// kernel then stays within WebGPU's default 8 storage buffers. No 2*pi constant, no variance floor: the
// spec leaves both out. Log-sum-exps over K and over the priors subtract their maximum, so a sample far
// from every component gives a very negative delta, never -inf or NaN.
//
// Entry points do not share one binding list; each lists its own bindings after `p` (binding 0).

struct Params {
  n: u32,
  classes: u32,
  comps: u32,
  dim: u32,
  mu_at: u32,
  prior_at: u32,
  mix_at: u32,
  cov_at: u32,
  lambda: f32,
  // 1 for EM-DNLL: the reported loss adds the entropy of the true class's responsibilities.
  em: u32,
  // The batch's mean loss goes to stats[3*slot], its number of correct predictions to stats[3*slot+1],
  // its number of out-of-range labels to stats[3*slot+2] (STATS_PER_STEP in lib/mda/head.ts).
  slot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// mda_logits, mda_forward, mda_responsibilities, mda_input_grad, mda_reduce
@group(0) @binding(1) var<storage, read> theta: array<f32>;
@group(0) @binding(2) var<storage, read> z: array<f32>;
// mda_logits, mda_forward
@group(0) @binding(3) var<storage, read_write> delta_out: array<f32>;
// mda_forward
@group(0) @binding(4) var<storage, read_write> rho_out: array<f32>;
// mda_responsibilities
@group(0) @binding(3) var<storage, read> resp_labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> resp_out: array<f32>;
// dnll_sample
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> delta: array<f32>;
@group(0) @binding(3) var<storage, read> rho_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> g_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> sample_out: array<f32>;
// mda_input_grad
@group(0) @binding(3) var<storage, read> g_in: array<f32>;
@group(0) @binding(4) var<storage, read> rho: array<f32>;
@group(0) @binding(5) var<storage, read_write> dz: array<f32>;
// mda_reduce (theta, z, g_in, rho as above)
@group(0) @binding(5) var<storage, read> sample: array<f32>;
@group(0) @binding(6) var<storage, read_write> grads: array<f32>;
@group(0) @binding(7) var<storage, read_write> stats: array<f32>;

const WG: u32 = 64u;
const NEG_HUGE: f32 = -3.0e38;

fn flat_index(gid: vec3<u32>, nw: vec3<u32>) -> u32 {
  return gid.x + gid.y * nw.x * WG;
}

// log_softmax(prior_logits)[c]; recomputed per invocation because C is small (<= a few hundred).
fn log_prior(c: u32) -> f32 {
  var m = NEG_HUGE;
  for (var j = 0u; j < p.classes; j++) { m = max(m, theta[p.prior_at + j]); }
  var s = 0.0;
  for (var j = 0u; j < p.classes; j++) { s += exp(theta[p.prior_at + j] - m); }
  return theta[p.prior_at + c] - m - log(s);
}

fn log_mixture_weight(c: u32, k: u32) -> f32 {
  let row = p.mix_at + c * p.comps;
  var m = NEG_HUGE;
  for (var j = 0u; j < p.comps; j++) { m = max(m, theta[row + j]); }
  var s = 0.0;
  for (var j = 0u; j < p.comps; j++) { s += exp(theta[row + j] - m); }
  return theta[row + k] - m - log(s);
}

fn squared_distance(n: u32, ck: u32) -> f32 {
  var m2 = 0.0;
  for (var d = 0u; d < p.dim; d++) {
    let diff = z[n * p.dim + d] - theta[p.mu_at + ck * p.dim + d];
    m2 += diff * diff;
  }
  return m2;
}

// a[n,c,k] = log w[c,k] - (|z - mu[c,k]|^2 / v[c,k] + D log v[c,k]) / 2
fn component_log_joint(n: u32, c: u32, k: u32) -> f32 {
  let ck = c * p.comps + k;
  let s = theta[p.cov_at + ck];
  return log_mixture_weight(c, k) - 0.5 * (squared_distance(n, ck) * exp(-s) + f32(p.dim) * s);
}

// Running log-sum-exp: state (max, sum of exp(x - max)); start from (NEG_HUGE, 0). Eval logits and the
// training forward both go through it in the same order, so they give the same bits.
fn lse_push(state: vec2<f32>, a: f32) -> vec2<f32> {
  if (a > state.x) { return vec2<f32>(a, state.y * exp(state.x - a) + 1.0); }
  return vec2<f32>(state.x, state.y + exp(a - state.x));
}

// logsumexp_k a[n,c,k]
fn class_log_density(n: u32, c: u32) -> f32 {
  var st = vec2<f32>(NEG_HUGE, 0.0);
  for (var k = 0u; k < p.comps; k++) { st = lse_push(st, component_log_joint(n, c, k)); }
  return st.x + log(st.y);
}

// Eval logits: one invocation per (n, c).
@compute @workgroup_size(WG)
fn mda_logits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat_index(gid, nw);
  if (i >= p.n * p.classes) { return; }
  let n = i / p.classes;
  let c = i % p.classes;
  delta_out[i] = log_prior(c) + class_log_density(n, c);
}

// Training forward: logits and responsibilities rho[n,c,:] = softmax_k a[n,c,:]; one invocation per (n, c).
@compute @workgroup_size(WG)
fn mda_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat_index(gid, nw);
  if (i >= p.n * p.classes) { return; }
  let n = i / p.classes;
  let c = i % p.classes;
  // a[k] is parked in rho_out, then normalised in place once its log-sum-exp is known.
  var st = vec2<f32>(NEG_HUGE, 0.0);
  for (var k = 0u; k < p.comps; k++) {
    let a = component_log_joint(n, c, k);
    rho_out[i * p.comps + k] = a;
    st = lse_push(st, a);
  }
  let lse = st.x + log(st.y);
  for (var k = 0u; k < p.comps; k++) {
    rho_out[i * p.comps + k] = exp(rho_out[i * p.comps + k] - lse);
  }
  delta_out[i] = log_prior(c) + lse;
}

// Responsibilities within the true class, resp [N,K]; one invocation per sample.
@compute @workgroup_size(WG)
fn mda_responsibilities(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nw: vec3<u32>,
) {
  let n = flat_index(gid, nw);
  if (n >= p.n) { return; }
  let y = resp_labels[n];
  let lse = class_log_density(n, y);
  for (var k = 0u; k < p.comps; k++) {
    resp_out[n * p.comps + k] = exp(component_log_joint(n, y, k) - lse);
  }
}

// Per-sample DNLL / EM-DNLL, dL/ddelta and the argmax check; one invocation per sample. Shared with the
// LDA head (comps = 1, em = 0: a single component has zero entropy and rho_in is never read).
@compute @workgroup_size(WG)
fn dnll_sample(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = flat_index(gid, nw);
  if (n >= p.n) { return; }
  let y = labels[n];
  let row = n * p.classes;
  var penalty = 0.0;
  var g_sum = 0.0;
  var best = delta[row];
  var best_class = 0u;
  for (var c = 0u; c < p.classes; c++) {
    let d = delta[row + c];
    // No log-sum-exp here on purpose: the spec's penalty is lambda * sum exp(delta), as in PyTorch.
    let e = p.lambda * exp(d);
    penalty += e;
    let g = e - select(0.0, 1.0, c == y);
    g_out[row + c] = g;
    g_sum += g;
    if (d > best) {
      best = d;
      best_class = c;
    }
  }
  // An out-of-range label reads class C-1 here (counted below), so no read leaves the row.
  let y_in = min(y, p.classes - 1u);
  var loss = penalty - delta[row + y_in];
  if (p.em == 1u) {
    // EM-DNLL = DNLL + H(r): rho = 0 contributes 0 (the limit of r log r), not 0 * -inf.
    var entropy = 0.0;
    for (var k = 0u; k < p.comps; k++) {
      let r = rho_in[(row + y_in) * p.comps + k];
      if (r > 0.0) { entropy -= r * log(r); }
    }
    loss += entropy;
  }
  // A label out of range must not pass silently. It is counted, not signalled with a NaN: a constant NaN
  // is a shader-creation error in WGSL, and a compiler may assume float arithmetic never yields one.
  sample_out[n * 4u] = loss;
  sample_out[n * 4u + 1u] = select(0.0, 1.0, best_class == y);
  sample_out[n * 4u + 2u] = g_sum;
  sample_out[n * 4u + 3u] = select(0.0, 1.0, y >= p.classes);
}

// dz[n,d] = -(1/N) sum_{c,k} g[n,c] rho[n,c,k] (z[n,d] - mu[c,k,d]) / v[c,k]; one invocation per (n, d).
@compute @workgroup_size(WG)
fn mda_input_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat_index(gid, nw);
  if (i >= p.n * p.dim) { return; }
  let n = i / p.dim;
  let d = i % p.dim;
  let zd = z[i];
  var acc = 0.0;
  for (var c = 0u; c < p.classes; c++) {
    let g = g_in[n * p.classes + c];
    for (var k = 0u; k < p.comps; k++) {
      let ck = c * p.comps + k;
      let diff = zd - theta[p.mu_at + ck * p.dim + d];
      acc += g * rho[(n * p.classes + c) * p.comps + k] * diff * exp(-theta[p.cov_at + ck]);
    }
  }
  dz[i] = -acc / f32(p.n);
}

// Parameter gradients (overwritten, mean over the batch) and the batch stats; one invocation per
// gradient element, in the span layout: [mu | prior | mixture | log_cov], then one for the stats. Each
// sums over n in order 0..N-1, so the result does not depend on scheduling.
@compute @workgroup_size(WG)
fn mda_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat_index(gid, nw);
  let C = p.classes;
  let K = p.comps;
  let D = p.dim;
  let n_mu = C * K * D;
  if (i < n_mu) {
    let ck = i / D;
    let d = i % D;
    let c = ck / K;
    let mu = theta[p.mu_at + i];
    var acc = 0.0;
    for (var n = 0u; n < p.n; n++) {
      acc += g_in[n * C + c] * rho[n * C * K + ck] * (z[n * D + d] - mu);
    }
    grads[p.mu_at + i] = acc * exp(-theta[p.cov_at + ck]) / f32(p.n);
  } else if (i < n_mu + C) {
    let c = i - n_mu;
    let pi = exp(log_prior(c));
    var acc = 0.0;
    for (var n = 0u; n < p.n; n++) {
      acc += g_in[n * C + c] - pi * sample[n * 4u + 2u];
    }
    grads[p.prior_at + c] = acc / f32(p.n);
  } else if (i < n_mu + C + C * K) {
    let ck = i - n_mu - C;
    let c = ck / K;
    let w = exp(log_mixture_weight(c, ck % K));
    var acc = 0.0;
    for (var n = 0u; n < p.n; n++) {
      acc += g_in[n * C + c] * (rho[n * C * K + ck] - w);
    }
    grads[p.mix_at + ck] = acc / f32(p.n);
  } else if (i < n_mu + C + 2u * C * K) {
    let ck = i - n_mu - C - C * K;
    let c = ck / K;
    let inv_v = exp(-theta[p.cov_at + ck]);
    let half_d = 0.5 * f32(D);
    var acc = 0.0;
    for (var n = 0u; n < p.n; n++) {
      acc += g_in[n * C + c] * rho[n * C * K + ck] * (0.5 * squared_distance(n, ck) * inv_v - half_d);
    }
    grads[p.cov_at + ck] = acc / f32(p.n);
  } else if (i == n_mu + C + 2u * C * K) {
    var sum = vec4<f32>(0.0);
    for (var n = 0u; n < p.n; n++) { sum += sample_stats(n); }
    store_batch_stats(sum);
  }
}

// ---- The "tree" variant of mda_reduce (GPUs; see lib/gpu/reduction.ts) ----
//
// mda_reduce gives each gradient element one invocation that loops over the whole batch: for the notebook
// head (C = 10, K = 2, D = 2) that is 91 invocations, 2 workgroups, each walking 256 samples in a
// dependent chain, on a GPU with 132 SMs. mda_reduce_tree gives each element a workgroup instead: lane t
// sums samples t, t + WG, t + 2 WG, ... and the lanes are folded by a tree in workgroup memory whose
// shape depends only on WG, so the order of every addition is fixed (same inputs, same bits). Same
// bindings, same element layout ([mu | prior | mixture | log_cov], then the stats) as mda_reduce, whose
// results it matches up to fp32 rounding. On llvmpipe the barriers cost more than the loop saves.

// What each lane adds in tree_sum (lib/shaders/tree_sum.wgsl, appended by the launcher: withTreeSum).
alias TreeValue = vec4<f32>;

// One workgroup per gradient element (workgroup index = mda_reduce's invocation index), one more for
// the stats.
@compute @workgroup_size(WG)
fn mda_reduce_tree(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nw: vec3<u32>,
  @builtin(local_invocation_index) t: u32,
) {
  let i = wid.x + wid.y * nw.x;
  let C = p.classes;
  let K = p.comps;
  let D = p.dim;
  let n_mu = C * K * D;
  let n_grads = n_mu + C + 2u * C * K;
  if (i > n_grads) { return; }
  // This lane's share of the element's sum over n, the gradient's place in the span and its factor.
  var acc = vec4<f32>(0.0);
  var at = 0u;
  var factor = 1.0;
  if (i < n_mu) {
    let ck = i / D;
    let d = i % D;
    let c = ck / K;
    let mu = theta[p.mu_at + i];
    for (var n = t; n < p.n; n += WG) {
      acc.x += g_in[n * C + c] * rho[n * C * K + ck] * (z[n * D + d] - mu);
    }
    at = p.mu_at + i;
    factor = exp(-theta[p.cov_at + ck]);
  } else if (i < n_mu + C) {
    let c = i - n_mu;
    let pi = exp(log_prior(c));
    for (var n = t; n < p.n; n += WG) {
      acc.x += g_in[n * C + c] - pi * sample[n * 4u + 2u];
    }
    at = p.prior_at + c;
  } else if (i < n_mu + C + C * K) {
    let ck = i - n_mu - C;
    let c = ck / K;
    let w = exp(log_mixture_weight(c, ck % K));
    for (var n = t; n < p.n; n += WG) {
      acc.x += g_in[n * C + c] * (rho[n * C * K + ck] - w);
    }
    at = p.mix_at + ck;
  } else if (i < n_grads) {
    let ck = i - n_mu - C - C * K;
    let c = ck / K;
    let inv_v = exp(-theta[p.cov_at + ck]);
    let half_d = 0.5 * f32(D);
    for (var n = t; n < p.n; n += WG) {
      acc.x += g_in[n * C + c] * rho[n * C * K + ck] * (0.5 * squared_distance(n, ck) * inv_v - half_d);
    }
    at = p.cov_at + ck;
  } else {
    for (var n = t; n < p.n; n += WG) { acc += sample_stats(n); }
  }
  let total = tree_sum(t, acc);
  if (t != 0u) { return; }
  if (i < n_grads) {
    grads[at] = total.x * factor / f32(p.n);
  } else {
    store_batch_stats(total);
  }
}

