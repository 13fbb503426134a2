// Linear layer, y = x W^T + b (PyTorch nn.Linear).
//
// Forward  x [N, IN], weight [OUT, IN], bias [OUT] -> y [N, OUT]
// Backward dy [N, OUT] -> dx [N, IN] = dy W; dweight [OUT, IN] = dy^T x; dbias [OUT] = sum over n of dy.
//
// The encoder's projection is tiny (256 -> D, D = 2 or 9), so one invocation per output element with a
// plain loop is enough; every sum runs in index order, so results are deterministic. The weight gradient,
// a sum over the batch, has two variants (lib/gpu/reduction.ts): linear_backward_params ("serial", for
// llvmpipe and lavapipe) and linear_backward_params_tree ("tree", for GPUs; see its comment).

const WG: u32 = 64u;

struct Params {
  batch: u32,
  in_features: u32,
  out_features: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> weight_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@group(0) @binding(2) var<storage, read> x_saved: array<f32>;
@group(0) @binding(3) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(4) var<storage, read_write> dbias: array<f32>;

fn flat_index(gid: vec3<u32>, nw: vec3<u32>) -> u32 {
  return gid.x + gid.y * nw.x * WG;
}

@compute @workgroup_size(WG)
fn linear_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let idx = flat_index(gid, nw);
  if (idx >= p.batch * p.out_features) {
    return;
  }
  let n = idx / p.out_features;
  let o = idx - n * p.out_features;
  let xr = n * p.in_features;
  let wr = o * p.in_features;
  var acc = 0.0;
  for (var i = 0u; i < p.in_features; i++) {
    acc = fma(x[xr + i], weight[wr + i], acc);
  }
  y[idx] = acc + bias[o];
}

@compute @workgroup_size(WG)
fn linear_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let idx = flat_index(gid, nw);
  if (idx >= p.batch * p.in_features) {
    return;
  }
  let n = idx / p.in_features;
  let i = idx - n * p.in_features;
  var acc = 0.0;
  for (var o = 0u; o < p.out_features; o++) {
    acc = fma(dy[n * p.out_features + o], weight_in[o * p.in_features + i], acc);
  }
  dx[idx] = acc;
}

// One invocation per (o, i) of the weight, plus one per o (i == IN) for the bias.
@compute @workgroup_size(WG)
fn linear_backward_params(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let idx = flat_index(gid, nw);
  let row = p.in_features + 1u;
  if (idx >= p.out_features * row) {
    return;
  }
  let o = idx / row;
  let i = idx - o * row;
  var acc = 0.0;
  if (i < p.in_features) {
    for (var n = 0u; n < p.batch; n++) {
      acc = fma(dy[n * p.out_features + o], x_saved[n * p.in_features + i], acc);
    }
    dweight[o * p.in_features + i] = acc;
  } else {
    for (var n = 0u; n < p.batch; n++) {
      acc += dy[n * p.out_features + o];
    }
    dbias[o] = acc;
  }
}

// ---- The "tree" variant of linear_backward_params (GPUs) ----
//
// linear_backward_params gives each of the OUT * (IN + 1) gradient elements one invocation that loops
// over the batch: for the notebook's 256 -> 2 projection that is 514 invocations walking 256 samples in a
// dependent chain, 9 workgroups on a 132-SM GPU. linear_backward_params_tree gives each element a
// workgroup: lane t sums samples t, t + WG, ... and the lanes are folded by a tree in workgroup memory
// whose shape depends only on WG, so the order of every addition is fixed (same inputs, same bits). The
// results match linear_backward_params's up to fp32 rounding.

// What each lane adds in tree_sum (lib/shaders/tree_sum.wgsl, appended by the launcher: withTreeSum).
alias TreeValue = f32;

// One workgroup per (o, i) of the weight, plus one per o (i == IN) for the bias: workgroup index =
// linear_backward_params's invocation index.
@compute @workgroup_size(WG)
fn linear_backward_params_tree(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nw: vec3<u32>,
  @builtin(local_invocation_index) t: u32,
) {
  let idx = wid.x + wid.y * nw.x;
  let row = p.in_features + 1u;
  if (idx >= p.out_features * row) {
    return;
  }
  let o = idx / row;
  let i = idx - o * row;
  var acc = 0.0;
  if (i < p.in_features) {
    for (var n = t; n < p.batch; n += WG) {
      acc = fma(dy[n * p.out_features + o], x_saved[n * p.in_features + i], acc);
    }
  } else {
    for (var n = t; n < p.batch; n += WG) {
      acc += dy[n * p.out_features + o];
    }
  }
  let total = tree_sum(t, acc);
  if (t != 0u) {
    return;
  }
  if (i < p.in_features) {
    dweight[o * p.in_features + i] = total;
  } else {
    dbias[o] = total;
  }
}

