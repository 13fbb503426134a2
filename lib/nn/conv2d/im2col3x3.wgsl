// im2col of a 3x3 convolution with padding 1 and stride 1, gathered on the fly: the piece the implicit
// GEMMs (conv2d_igemm_tiled.wgsl, conv2d_igemm_tapslice.wgsl, conv2d_wgrad_splitk.wgsl) share: all decode
// rows with im2col_pixel; igemm_tiled reads elements with im2col_element (the others, whose loads keep
// their channel and tap from slice to slice or for a whole slice, work those out once). Appended to those
// modules by conv2d.ts; the module declares `x`, the NCHW input it gathers from.
//
//   im2col(x)[m, k] = x[n, c, py + ky - 1, px + kx - 1],  m = (n, pixel (py, px)),  k = (c, tap (ky, kx)),
//   zero outside the image.
//
// A row's pixel does not depend on k, so a kernel decodes it once (im2col_pixel: two divisions by
// run-time sizes, which a GPU does in software) and reads many k of it (im2col_element: divisions by the
// constants 9 and 3 only, which compile to multiplies).

// Row m's pixel: whether m is a row at all, its image n and where that starts in x, its row and column.
struct Im2colPixel {
  inside: bool,
  n: u32,
  image: u32,
  py: i32,
  px: i32,
}

// Row m of an input of `channels` planes of h x w; rows from mEnd on are outside (they read zeros).
fn im2col_pixel(m: u32, mEnd: u32, channels: u32, h: u32, w: u32) -> Im2colPixel {
  let plane = h * w;
  let n = m / plane;
  let pix = m - n * plane;
  let py = pix / w;
  return Im2colPixel(m < mEnd, n, n * channels * plane, i32(py), i32(pix - py * w));
}

// im2col(x)[m, k] for a row inside and k below channels * 9: zero where the tap falls outside the image.
fn im2col_element(r: Im2colPixel, k: u32, h: u32, w: u32) -> f32 {
  let c = k / 9u;
  let tap = k - 9u * c;
  let ky = tap / 3u;
  let iy = r.py + i32(ky) - 1;
  let ix = r.px + i32(tap - 3u * ky) - 1;
  if (iy < 0 || iy >= i32(h) || ix < 0 || ix >= i32(w)) {
    return 0.0;
  }
  return x[r.image + c * h * w + u32(iy) * w + u32(ix)];
}
