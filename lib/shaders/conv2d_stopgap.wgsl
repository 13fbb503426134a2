// Direct 3x3 convolution, padding 1, stride 1: one invocation per output element. A stop-gap used
// while the tiled implicit-GEMM kernels are written: correct, deterministic, slow.
struct Params { n: u32, cin: u32, cout: u32, h: u32, w: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn linear_id(gid: vec3<u32>, nw: vec3<u32>) -> u32 { return gid.x + gid.y * nw.x * 64u; }

// x [N,Cin,H,W] (a), weight [Cout,Cin,3,3] (b), bias [Cout] (in out's tail? no: separate entry) -> y
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = linear_id(gid, nw);
  let hw = p.h * p.w;
  if (i >= p.n * p.cout * hw) { return; }
  let x0 = i % p.w; let y0 = (i / p.w) % p.h; let o = (i / hw) % p.cout; let n = i / (hw * p.cout);
  var s = bias[o];
  for (var c = 0u; c < p.cin; c++) {
    for (var ky = 0u; ky < 3u; ky++) {
      let yy = i32(y0) + i32(ky) - 1;
      if (yy < 0 || yy >= i32(p.h)) { continue; }
      for (var kx = 0u; kx < 3u; kx++) {
        let xx = i32(x0) + i32(kx) - 1;
        if (xx < 0 || xx >= i32(p.w)) { continue; }
        s += a[((n * p.cin + c) * p.h + u32(yy)) * p.w + u32(xx)] * b[((o * p.cin + c) * 3u + ky) * 3u + kx];
      }
    }
  }
  out[i] = s;
}
