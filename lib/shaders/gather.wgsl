// Batch gather: builds one float batch from the GPU-resident uint8 images in the epoch's order, with the
// optional RandomCrop (zero padding) and the byte -> f32 conversion (/255, optionally Normalize) fused.
//
// Shapes:
//   images:       u32 [count * rows * cols / 4]  uint8 pixels, 4 per word (little-endian), image after image
//   labels:       u32 [count]
//   order:        u32 [count]  per position of the epoch: image index (bits 0..23)
//                              | crop row offset (bits 24..27) | crop column offset (bits 28..31)
//   table:        f32 [256]    the value of each pixel byte
//   x:            f32 [size, 1, rows, cols]  (as vec4: rows * cols is a multiple of 4)
//   batch_labels: u32 [size]
//
// The table is computed on the CPU with PyTorch's float32 rounding (x / 255, then (x - mean) / std), so
// the batch matches torchvision's ToTensor + Normalize bit for bit, padding included (a padded pixel is
// the byte 0 before ToTensor).

struct Params {
  // size * rows * cols / 4: one invocation per 4 consecutive output pixels.
  words: u32,
  // First position of the order in this batch.
  start: u32,
  rows: u32,
  cols: u32,
  // RandomCrop padding: an offset equal to pad in both axes leaves the image where it was.
  pad: u32,
  // 0: plain gather; 1: shift each image by its crop offsets.
  crop: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> images: array<u32>;
@group(0) @binding(2) var<storage, read> labels: array<u32>;
@group(0) @binding(3) var<storage, read> order: array<u32>;
@group(0) @binding(4) var<storage, read> table: array<f32, 256>;
@group(0) @binding(5) var<storage, read_write> x: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> batch_labels: array<u32>;

@compute @workgroup_size(64)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * 64u;
  if (i >= p.words) {
    return;
  }
  let pixels = p.rows * p.cols;
  let words_per_image = pixels / 4u;
  let b = i / words_per_image;
  let w = i - b * words_per_image;
  let entry = order[p.start + b];
  let image = entry & 0xffffffu;
  if (w == 0u) {
    batch_labels[b] = labels[image];
  }

  var bytes: vec4<u32>;
  if (p.crop == 0u) {
    // Unshifted, the 4 output pixels are exactly one packed word.
    let word = images[image * words_per_image + w];
    bytes = (vec4<u32>(word) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(255u);
  } else {
    // Output (y, x) reads the padded image at (y + dy, x + dx), i.e. the original at (y + dy - pad, ...).
    let dy = i32((entry >> 24u) & 15u) - i32(p.pad);
    let dx = i32(entry >> 28u) - i32(p.pad);
    for (var k = 0u; k < 4u; k++) {
      let q = w * 4u + k;
      let sy = i32(q / p.cols) + dy;
      let sx = i32(q % p.cols) + dx;
      var byte = 0u;
      if (sy >= 0 && sy < i32(p.rows) && sx >= 0 && sx < i32(p.cols)) {
        let pixel = image * pixels + u32(sy) * p.cols + u32(sx);
        byte = (images[pixel >> 2u] >> ((pixel & 3u) * 8u)) & 255u;
      }
      bytes[k] = byte;
    }
  }
  x[i] = vec4<f32>(table[bytes.x], table[bytes.y], table[bytes.z], table[bytes.w]);
}
