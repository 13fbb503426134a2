// ReLU, element-wise over any shape, one vec4 per invocation.
//
// Forward  x [*] -> y [*] (n elements), y = max(x, 0).
// Backward dy [*], y [*] -> dx [*], dx = dy where the forward output y > 0, else 0 (PyTorch's
// threshold_backward on the result).
//
// The host binds every tensor rounded up to whole vec4s, so n need not be a multiple of 4: the last vec4
// may run into the buffer's padding, whose values nobody reads.

const WG: u32 = 64u;

struct Params {
  vec4_count: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;

@group(0) @binding(1) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> y_saved: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dx: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn relu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * WG;
  if (i < p.vec4_count) {
    y[i] = max(x[i], vec4<f32>(0.0));
  }
}

@compute @workgroup_size(WG)
fn relu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * WG;
  if (i < p.vec4_count) {
    dx[i] = select(vec4<f32>(0.0), dy[i], y_saved[i] > vec4<f32>(0.0));
  }
}
