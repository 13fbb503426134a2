// Global average pool over NCHW f32.
// This is the "serial" variant (lib/gpu/reduction.ts), for llvmpipe and lavapipe; GPUs run
// avgpool_planes.wgsl.
//
// Forward  x [N, C, H, W] -> y [N, C], y = sum over the plane / (H * W), summed in a fixed order.
// Backward dy [N, C] -> dx [N, C, H, W], dx = dy / (H * W) spread over the plane.
//
// A "plane" is one (n, c) slice of H*W contiguous elements. Each invocation owns a "quad" of 4
// consecutive planes: 4*H*W elements that start on a 16-byte boundary whatever H*W is (7x7 included),
// so every load and store is a whole vec4 (on llvmpipe the cost is per instruction, not per byte) and
// only the vec4s in which one plane ends and the next begins need per-component care. The geometry is the
// one of lib/shaders/batchnorm.wgsl (WGSL has no includes). The host binds x and dx rounded up to whole
// vec4s, so a partial last quad (N*C not a multiple of 4) stays in range; absent planes are skipped.

const WG: u32 = 64u;

struct Params {
  planes: u32, // N * C
  hw: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<vec4<f32>>;

struct PlaneSpan {
  lo: u32, // first element of the plane, relative to the quad
  hi: u32, // one past its last element
  full_lo: u32, // vec4s [full_lo, full_hi) hold this plane's elements only
  full_hi: u32,
}

fn plane_span(k: u32, hw: u32) -> PlaneSpan {
  let lo = k * hw;
  let hi = lo + hw;
  return PlaneSpan(lo, hi, (lo + 3u) / 4u, hi / 4u);
}

fn in_plane(j: u32, s: PlaneSpan) -> vec4<bool> {
  let e = vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u);
  return (e >= vec4<u32>(s.lo)) & (e < vec4<u32>(s.hi));
}

fn hsum(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

@compute @workgroup_size(WG)
fn avgpool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let quad = gid.x + gid.y * nw.x * WG;
  let first_plane = quad * 4u;
  if (first_plane >= p.planes) {
    return;
  }
  let base = quad * p.hw; // in vec4s
  for (var k = 0u; k < 4u; k++) {
    if (first_plane + k >= p.planes) {
      break;
    }
    let s = plane_span(k, p.hw);
    var acc = vec4<f32>(0.0);
    // A vec4 shared with the previous plane.
    if (s.lo % 4u != 0u) {
      let j = s.lo / 4u;
      acc += select(vec4<f32>(0.0), x[base + j], in_plane(j, s));
    }
    for (var j = s.full_lo; j < s.full_hi; j++) {
      acc += x[base + j];
    }
    // A vec4 shared with the next plane, unless it was the first one (a plane inside one vec4).
    if (s.hi % 4u != 0u && s.hi / 4u >= s.full_lo) {
      let j = s.hi / 4u;
      acc += select(vec4<f32>(0.0), x[base + j], in_plane(j, s));
    }
    y[first_plane + k] = hsum(acc) / f32(p.hw);
  }
}

@compute @workgroup_size(WG)
fn avgpool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let quad = gid.x + gid.y * nw.x * WG;
  let first_plane = quad * 4u;
  if (first_plane >= p.planes) {
    return;
  }
  let base = quad * p.hw;
  var g = vec4<f32>(0.0); // component k: the gradient of local plane k
  for (var k = 0u; k < 4u; k++) {
    if (first_plane + k < p.planes) {
      g[k] = dy[first_plane + k] / f32(p.hw);
    }
  }
  for (var k = 0u; k < 4u; k++) {
    if (first_plane + k >= p.planes) {
      break;
    }
    let s = plane_span(k, p.hw);
    let gk = vec4<f32>(g[k]);
    for (var j = s.full_lo; j < s.full_hi; j++) {
      dx[base + j] = gk;
    }
    // The vec4 where this plane ends inside, written once: by the plane holding its first element.
    if (s.hi % 4u != 0u && (s.hi / 4u) * 4u >= s.lo) {
      let j = s.hi / 4u;
      let e = vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u);
      let kk = min(e / vec4<u32>(p.hw), vec4<u32>(3u));
      dx[base + j] = vec4<f32>(g[kk.x], g[kk.y], g[kk.z], g[kk.w]);
    }
  }
}
