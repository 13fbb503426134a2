// Used by test/gpu_test.ts to check the runtime's binding convention: y = a * x + b.
struct Params { n: u32, a: f32, b: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * 64u;
  if (i < p.n) { y[i] = p.a * x[i] + p.b; }
}
