// Softmax baseline head (dnll.md section 5): Linear(D -> C) and cross-entropy.
//   forward:  z [N,D], theta = {weight [C,D], bias [C]} -> logits [N,C]
//   loss:     logits, labels [N] -> g [N,C] = softmax(logits) - onehot(y) (not yet divided by N),
//             sample [N,4] = (loss, correct, 0, 1 if the label is out of range else 0): the rows of
//             head_stats.wgsl (appended by the launcher), which sums them into the batch's stats
//   backward: g -> dz [N,D] = g W / N, dW = g^T z / N, db = sum_n g / N, each a fixed-order sum over n:
//             linear_reduce ("serial" variant, llvmpipe/lavapipe) or linear_reduce_tree ("tree", GPUs).
//
// The two parameters are bound as one span `theta` / `grads` of the flat buffers with element offsets,
// as in mda.wgsl. The cross-entropy is log-sum-exp minus the true logit with the maximum subtracted,
// so no logit magnitude makes it infinite.
//
// Entry points do not share one binding list; each lists its own bindings after `p` (binding 0).

struct Params {
  n: u32,
  classes: u32,
  dim: u32,
  weight_at: u32,
  bias_at: u32,
  // The batch's mean loss goes to stats[3*slot], its number of correct predictions to stats[3*slot+1],
  // its number of out-of-range labels to stats[3*slot+2] (STATS_PER_STEP in lib/mda/head.ts).
  slot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// linear_logits, linear_input_grad
@group(0) @binding(1) var<storage, read> theta: array<f32>;
// linear_logits
@group(0) @binding(2) var<storage, read> z: array<f32>;
@group(0) @binding(3) var<storage, read_write> logits_out: array<f32>;
// ce_sample
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read_write> g_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> sample_out: array<f32>;
// linear_input_grad
@group(0) @binding(2) var<storage, read> g_rows: array<f32>;
@group(0) @binding(3) var<storage, read_write> dz: array<f32>;
// linear_reduce (the gradients of a linear map do not depend on its parameters)
@group(0) @binding(1) var<storage, read> z_rows: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> sample: array<f32>;
@group(0) @binding(4) var<storage, read_write> grads: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;

const WG: u32 = 64u;

fn flat_index(gid: vec3<u32>, nw: vec3<u32>) -> u32 {
  return gid.x + gid.y * nw.x * WG;
}

// logits[n,c] = bias[c] + sum_d weight[c,d] z[n,d]; one invocation per (n, c).
@compute @workgroup_size(WG)
fn linear_logits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat_index(gid, nw);
  if (i >= p.n * p.classes) { return; }
  let n = i / p.classes;
  let c = i % p.classes;
  var acc = theta[p.bias_at + c];
  for (var d = 0u; d < p.dim; d++) { acc += theta[p.weight_at + c * p.dim + d] * z[n * p.dim + d]; }
  logits_out[i] = acc;
}

// Per-sample cross-entropy, dL/dlogits and the argmax check; one invocation per sample.
@compute @workgroup_size(WG)
fn ce_sample(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let n = flat_index(gid, nw);
  if (n >= p.n) { return; }
  let y = labels[n];
  let row = n * p.classes;
  var best = logits[row];
  var best_class = 0u;
  for (var c = 1u; c < p.classes; c++) {
    if (logits[row + c] > best) {
      best = logits[row + c];
      best_class = c;
    }
  }
  var s = 0.0;
  for (var c = 0u; c < p.classes; c++) { s += exp(logits[row + c] - best); }
  let log_s = log(s);
  // g[y] = p_y - 1 is written as minus the sum of the other classes' probabilities: when p_y rounds to 1
  // in f32 the subtraction would give exactly 0 and lose the whole gradient, the sum keeps it.
  var others = 0.0;
  for (var c = 0u; c < p.classes; c++) {
    let prob = exp(logits[row + c] - best - log_s);
    if (c != y) {
      others += prob;
      g_out[row + c] = prob;
    }
  }
  if (y < p.classes) { g_out[row + y] = -others; }
  let loss = best + log_s - logits[row + min(y, p.classes - 1u)];
  // A label out of range must not pass silently. It is counted, not signalled with a NaN: a constant NaN
  // is a shader-creation error in WGSL, and a compiler may assume float arithmetic never yields one.
  sample_out[n * 4u] = loss;
  sample_out[n * 4u + 1u] = select(0.0, 1.0, best_class == y);
  sample_out[n * 4u + 2u] = 0.0; // head_stats.wgsl's row layout; the softmax head has no own value here
  sample_out[n * 4u + 3u] = select(0.0, 1.0, y >= p.classes);
}

// dz[n,d] = (1/N) sum_c g[n,c] weight[c,d]; one invocation per (n, d).
@compute @workgroup_size(WG)
fn linear_input_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat_index(gid, nw);
  if (i >= p.n * p.dim) { return; }
  let n = i / p.dim;
  let d = i % p.dim;
  var acc = 0.0;
  for (var c = 0u; c < p.classes; c++) {
    acc += g_rows[n * p.classes + c] * theta[p.weight_at + c * p.dim + d];
  }
  dz[i] = acc / f32(p.n);
}

// Parameter gradients (overwritten, mean over the batch) and the batch stats; one invocation per
// gradient element in the span layout [weight | bias], then one for the stats; sums over n in order.
@compute @workgroup_size(WG)
fn linear_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = flat_index(gid, nw);
  let C = p.classes;
  let D = p.dim;
  if (i < C * D) {
    let c = i / D;
    let d = i % D;
    var acc = 0.0;
    for (var n = 0u; n < p.n; n++) { acc += g[n * C + c] * z_rows[n * D + d]; }
    grads[p.weight_at + i] = acc / f32(p.n);
  } else if (i < C * D + C) {
    let c = i - C * D;
    var acc = 0.0;
    for (var n = 0u; n < p.n; n++) { acc += g[n * C + c]; }
    grads[p.bias_at + c] = acc / f32(p.n);
  } else if (i == C * D + C) {
    var sum = vec4<f32>(0.0);
    for (var n = 0u; n < p.n; n++) { sum += sample_stats(n); }
    store_batch_stats(sum);
  }
}

// ---- The "tree" variant of linear_reduce (GPUs; see lib/gpu/reduction.ts) ----
//
// linear_reduce gives each gradient element one invocation that loops over the whole batch: C*D + C + 1
// invocations (101 for C = 10, D = 9), two workgroups of long dependent chains on a large GPU.
// linear_reduce_tree gives each element a workgroup: lane t sums samples t, t + WG, ... and the lanes are
// folded by a tree in workgroup memory whose shape depends only on WG, so the order of every addition is
// fixed (same inputs, same bits). Same bindings and element layout ([weight | bias], then the stats) as
// linear_reduce, whose results it matches up to fp32 rounding.

// What each lane adds in tree_sum (lib/shaders/tree_sum.wgsl, appended by the launcher: withTreeSum).
alias TreeValue = vec4<f32>;

// One workgroup per gradient element (workgroup index = linear_reduce's invocation index), one more for
// the stats.
@compute @workgroup_size(WG)
fn linear_reduce_tree(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nw: vec3<u32>,
  @builtin(local_invocation_index) t: u32,
) {
  let i = wid.x + wid.y * nw.x;
  let C = p.classes;
  let D = p.dim;
  if (i > C * D + C) { return; }
  // This lane's share of the element's sum over n, and the gradient's place in the span.
  var acc = vec4<f32>(0.0);
  var at = 0u;
  if (i < C * D) {
    let c = i / D;
    let d = i % D;
    for (var n = t; n < p.n; n += WG) { acc.x += g[n * C + c] * z_rows[n * D + d]; }
    at = p.weight_at + i;
  } else if (i < C * D + C) {
    let c = i - C * D;
    for (var n = t; n < p.n; n += WG) { acc.x += g[n * C + c]; }
    at = p.bias_at + c;
  } else {
    for (var n = t; n < p.n; n += WG) { acc += sample_stats(n); }
  }
  let total = tree_sum(t, acc);
  if (t != 0u) { return; }
  if (i < C * D + C) {
    grads[at] = total.x / f32(p.n);
  } else {
    store_batch_stats(total);
  }
}
