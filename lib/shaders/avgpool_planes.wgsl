// Global average pool over NCHW f32 for GPUs (the "tree" reduction variant of lib/gpu/reduction.ts; the
// "serial" one, for llvmpipe and lavapipe, is lib/shaders/avgpool.wgsl). Same maths:
//
// Forward  x [N, C, H, W] -> y [N, C], y = sum over the plane / (H * W), summed in a fixed order.
// Backward dy [N, C] -> dx [N, C, H, W], dx = dy / (H * W) spread over the plane.
//
// Where it wins and why. avgpool.wgsl gives each invocation a quad of 4 whole planes: at batch 256 the
// notebook's pool (256 channels of 7x7) is 16384 invocations whose neighbouring lanes sit 784 bytes
// apart. Its planes hold only H*W = 49 values, too few to be worth a tree, so here the forward takes
// one invocation per plane (4x as many, 1024 workgroups of 64: enough to fill a 132-SM GPU), each
// summing its plane in index order, with neighbouring lanes on neighbouring planes; the backward takes
// one vec4 of dx per invocation, every store coalesced. On llvmpipe the scalar loads cost more than the
// quads' vec4s. Results differ from avgpool.wgsl's only by fp32 rounding (another summation order).

const WG: u32 = 64u;

struct Params {
  planes: u32, // N * C
  hw: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// avgpool_forward_planes
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
// avgpool_backward_elements
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<vec4<f32>>;

fn flat_index(gid: vec3<u32>, nw: vec3<u32>) -> u32 {
  return gid.x + gid.y * nw.x * WG;
}

@compute @workgroup_size(WG)
fn avgpool_forward_planes(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nw: vec3<u32>,
) {
  let plane = flat_index(gid, nw);
  if (plane >= p.planes) {
    return;
  }
  let base = plane * p.hw;
  var acc = 0.0;
  for (var j = 0u; j < p.hw; j++) {
    acc += x[base + j];
  }
  y[plane] = acc / f32(p.hw);
}

// Components past the tensor's end (the host binds dx rounded up to whole vec4s) read a clamped plane;
// what is written there is never read.
@compute @workgroup_size(WG)
fn avgpool_backward_elements(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nw: vec3<u32>,
) {
  let i = flat_index(gid, nw);
  let total = p.planes * p.hw;
  if (4u * i >= total) {
    return;
  }
  let e = vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u);
  let plane = min(e / vec4<u32>(p.hw), vec4<u32>(p.planes - 1u));
  dx[i] = vec4<f32>(dy[plane.x], dy[plane.y], dy[plane.z], dy[plane.w]) / f32(p.hw);
}
