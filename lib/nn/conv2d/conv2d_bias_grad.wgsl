// The bias gradient of a convolution, db[o] = sum over images n and pixels of dy[n, o, :, :], in a fixed
// order and with enough workgroups for a large GPU: for the Winograd weight gradient
// (conv2d_wgrad_winograd_f2x2.wgsl), whose GEMMs have no room for a bias column.
//
// bias_grad_chunks: workgroup (k, o) sums channel o of images k * chunk .. k * chunk + chunk - 1: lane t
//   takes pixels t, t + WG, ... of each image in turn, then tree_sum (lib/shaders/tree_sum.wgsl, appended
//   by conv2d.ts) adds the lanes -> part[k][o].
// bias_grad_sum: db[o] = part[0][o] + part[1][o] + ... in order.
// At batch 256 with 8 images a chunk a 64-channel layer runs 2048 workgroups, each lane adding about 100
// values of consecutive pixels (coalesced), then a 32-term sum per channel.

const WG: u32 = 64u;
alias TreeValue = f32;

struct BiasParams {
  n: u32,
  channels: u32,
  // h * w
  plane: u32,
  // Images per chunk, and chunks: ceil(n / chunk).
  chunk: u32,
  chunks: u32,
}

@group(0) @binding(0) var<uniform> bp: BiasParams;

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> partOut: array<f32>;

@compute @workgroup_size(WG)
fn bias_grad_chunks(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let k = wid.x;
  let o = wid.y;
  let first = k * bp.chunk;
  let end = min(first + bp.chunk, bp.n);
  var sum = 0.0;
  for (var img = first; img < end; img++) {
    let base = (img * bp.channels + o) * bp.plane;
    for (var px = t; px < bp.plane; px += WG) {
      sum += dy[base + px];
    }
  }
  let total = tree_sum(t, sum);
  if (t == 0u) {
    partOut[k * bp.channels + o] = total;
  }
}

@group(0) @binding(1) var<storage, read> partIn: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;

@compute @workgroup_size(64)
fn bias_grad_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
  let o = gid.x;
  if (o >= bp.channels) {
    return;
  }
  var sum = 0.0;
  for (var k = 0u; k < bp.chunks; k++) {
    sum += partIn[k * bp.channels + o];
  }
  db[o] = sum;
}
