// Adam (PyTorch defaults: no weight decay, no amsgrad, bias correction on), one dispatch over the whole
// model: the flat parameter, gradient and moment buffers share one layout (lib/gpu/params.ts).
//
// Update  params [L], grads [L], m [L], v [L] (L = flat length, a multiple of 64) -> params, m, v:
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   p = p - step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps),  step_size = lr / (1 - beta1^t)
// The bias corrections are computed in float64 on the host and arrive as f32 uniforms. The alignment
// padding between parameters has g = m = v = 0 and so stays 0.

const WG: u32 = 64u;

struct Params {
  vec4_count: u32,
  step_size: f32,
  beta1: f32,
  beta2: f32,
  one_minus_beta1: f32,
  one_minus_beta2: f32,
  bias_correction2_sqrt: f32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> params: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grads: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn adam_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * WG;
  if (i >= p.vec4_count) {
    return;
  }
  let g = grads[i];
  let m_new = p.beta1 * m[i] + p.one_minus_beta1 * g;
  let v_new = p.beta2 * v[i] + p.one_minus_beta2 * g * g;
  m[i] = m_new;
  v[i] = v_new;
  params[i] -= p.step_size * m_new / (sqrt(v_new) / p.bias_correction2_sqrt + p.eps);
}
