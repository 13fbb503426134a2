// Backward of the stop-gap direct convolution: input gradient, and weight + bias gradients.
struct Params { n: u32, cin: u32, cout: u32, h: u32, w: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> other: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn linear_id(gid: vec3<u32>, nw: vec3<u32>) -> u32 { return gid.x + gid.y * nw.x * 64u; }

// dx[n,c,y,x] = sum_o,ky,kx dy[n,o,y-ky+1,x-kx+1] * w[o,c,ky,kx]; other = weight
@compute @workgroup_size(64)
fn input_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = linear_id(gid, nw);
  let hw = p.h * p.w;
  if (i >= p.n * p.cin * hw) { return; }
  let x0 = i % p.w; let y0 = (i / p.w) % p.h; let c = (i / hw) % p.cin; let n = i / (hw * p.cin);
  var s = 0.0;
  for (var o = 0u; o < p.cout; o++) {
    for (var ky = 0u; ky < 3u; ky++) {
      let yy = i32(y0) - i32(ky) + 1;
      if (yy < 0 || yy >= i32(p.h)) { continue; }
      for (var kx = 0u; kx < 3u; kx++) {
        let xx = i32(x0) - i32(kx) + 1;
        if (xx < 0 || xx >= i32(p.w)) { continue; }
        s += dy[((n * p.cout + o) * p.h + u32(yy)) * p.w + u32(xx)] * other[((o * p.cin + c) * 3u + ky) * 3u + kx];
      }
    }
  }
  out[i] = s;
}

// dW[o,c,ky,kx] = sum_n,y,x dy[n,o,y,x] * x[n,c,y+ky-1,x+kx-1]; the bias gradient sits after dW in
// `out` is not possible (separate views), so bias uses its own entry point. other = x
@compute @workgroup_size(64)
fn weight_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = linear_id(gid, nw);
  if (i >= p.cout * p.cin * 9u) { return; }
  let kx = i % 3u; let ky = (i / 3u) % 3u; let c = (i / 9u) % p.cin; let o = i / (9u * p.cin);
  var s = 0.0;
  for (var n = 0u; n < p.n; n++) {
    for (var y = 0u; y < p.h; y++) {
      let yy = i32(y) + i32(ky) - 1;
      if (yy < 0 || yy >= i32(p.h)) { continue; }
      for (var x = 0u; x < p.w; x++) {
        let xx = i32(x) + i32(kx) - 1;
        if (xx < 0 || xx >= i32(p.w)) { continue; }
        s += dy[((n * p.cout + o) * p.h + y) * p.w + x] * other[((n * p.cin + c) * p.h + u32(yy)) * p.w + u32(xx)];
      }
    }
  }
  out[i] = s;
}

@compute @workgroup_size(64)
fn bias_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let o = linear_id(gid, nw);
  if (o >= p.cout) { return; }
  let hw = p.h * p.w;
  var s = 0.0;
  for (var n = 0u; n < p.n; n++) {
    for (var j = 0u; j < hw; j++) { s += dy[(n * p.cout + o) * hw + j]; }
  }
  out[o] = s + 0.0 * other[0];
}
