// What the Winograd F(2x2, 3x3) kernels share (conv2d_winograd_f2x2.wgsl, forward and input gradient;
// conv2d_wgrad_winograd_f2x2.wgsl, weight gradient): their parameters and the tiles' coordinates.
// conv2d.ts appends it to both.

struct Params {
  n: u32,
  // Channels of the GEMM's input (x, or dy when transposed) and output (y, or dx); for the weight
  // gradient the layer's input and output channels.
  cin: u32,
  h: u32,
  w: u32,
  cout: u32,
  // Tiles per image row and column: ceil(h / 2), ceil(w / 2).
  th: u32,
  tw: u32,
  // This chunk: tiles tileBase .. tileBase + tiles - 1 of the n * th * tw (V and M hold `tiles` each).
  tileBase: u32,
  tiles: u32,
  transposed: u32,
  hasBias: u32,
  // winograd_input: V as [16][tiles][cin] (the weight gradient's GEMM) instead of [16][cin][tiles].
  channelsLast: u32,
  // The weight gradient's split-K: this chunk's tiles are cut into `splits` ranges of `splitTiles` (a
  // multiple of BK); its partials go to slots splitBase .. splitBase + splits - 1 of `totalSplits`.
  splits: u32,
  splitTiles: u32,
  splitBase: u32,
  totalSplits: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// The flat invocation index of a 1-D launch spread over x and y (conv2d.ts, grid1d).
fn flat_index(gid: vec3<u32>, nw: vec3<u32>) -> u32 {
  return gid.x + gid.y * nw.x * 64u;
}

// Image n, tile row ty and column tx of tile index `tile` (all tiles of all images, in that order).
fn tile_origin(tile: u32) -> vec3<u32> {
  let perImage = p.th * p.tw;
  let n = tile / perImage;
  let r = tile - n * perImage;
  let ty = r / p.tw;
  return vec3<u32>(n, ty, r - ty * p.tw);
}

