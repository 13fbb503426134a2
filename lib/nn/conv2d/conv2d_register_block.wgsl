// Conv2d 3x3, padding 1, stride 1, NCHW: forward and input gradient share one implicit-GEMM kernel.
//
// conv3x3: x [N, CI, H, W], packed weights (see pack_weights) -> y [N, CO, H, W]
//   y[n,o,y,x] = bias[o] + sum_{c,ky,kx} w[o,c,ky,kx] * x[n,c,y+ky-1,x+kx-1]
// The input gradient is the same kernel run on dy with the kernel transposed and flipped
// (dx[n,c] = sum_o conv(dy[n,o], flip(w[o,c]))), which pack_weights produces with `transposed` set.
//
// Where it wins: Mesa's software adapters (llvmpipe through GL, lavapipe through Vulkan): no workgroup
// memory and no barriers, and per-invocation blocks as large as compile time allows. It is the reference
// the tuner checks the GPU variants against. On a GPU its big blocks starve occupancy: see
// conv2d_igemm_tiled.wgsl.
//
// Why it looks like this (measured on llvmpipe, which runs 8 invocations as one SIMD program):
// - Every load whose address is not a compile-time constant is gathered lane by lane. A storage-buffer
//   gather costs about 3x a uniform-buffer gather, so the weights, which every invocation needs, come
//   from a uniform buffer "window" of at most 64 KiB, bound per dispatch (one block of output channels,
//   a range of input channels). Activations are read from storage.
// - Each invocation owns a TP x TQ tile of output pixels for 4*R4 output channels, so one input value
//   serves up to 9*4*R4 multiply-adds and one weight serves TP*TQ of them. 7x7 tiles cover the
//   encoder's 28, 14 and 7 pixel images exactly.
// - Every loop over a register block is marked `/* unroll */` and expanded before compilation
//   (lib/gpu/unroll.ts), so the private arrays are indexed only by constants and stay in registers.
//   Leaving it to the driver is not enough: on the SPIR-V path (Vulkan) naga adds a counter to every
//   loop and clamps every dynamic index, Mesa then no longer unrolls the loops, and this kernel ran
//   about 3x slower on lavapipe than on GL llvmpipe and took minutes to compile. (On llvmpipe a trip
//   count below the array length can also make compile time explode.) WGSL cannot size a private array
//   with an override, so the block sizes are constants, and conv2d.ts rewrites their three
//   declarations below for GPUs (smaller blocks, see TILE_GPU).
// - The input-channel loop is not unrolled: its body is already thousands of instructions.
// - llvmpipe's compile time grows with (storage accesses in the code) x (live registers), so the
//   TP*TQ*4*R4 output stores run in a loop over rows rather than unrolled (3 s instead of 10 s).

const R4: u32 = 4u;
const TP: u32 = 7u;
const TQ: u32 = 7u;
override WG: u32 = 64u;

// vec4 slots in one weight window (64 KiB, the WebGPU minimum for maxUniformBufferBindingSize).
const WINDOW_VEC4: u32 = 4096u;

struct ConvParams {
  n: u32,
  ci: u32,
  h: u32,
  w: u32,
  co: u32,
  tilesX: u32,
  tilesY: u32,
  ciBase: u32,
  ciCount: u32,
  oBase: u32,
  // 0: y = bias + sum (first input-channel window); 1: y += sum (later windows).
  accumulate: u32,
  hasBias: u32,
}

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
// [ciLocal][tap][R4] vec4 of 4 consecutive output channels.
@group(0) @binding(2) var<uniform> wwin: array<vec4<f32>, WINDOW_VEC4>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
// N*CO*H*W values and then at least one "trash" slot that absorbs the stores of out-of-image pixels
// and channels past CO, so the store loop has no branches.
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

var<private> acc: array<array<array<vec4<f32>, R4>, TQ>, TP>;
var<private> xin: array<array<f32, TQ + 2u>, TP + 2u>;
var<private> wt: array<array<vec4<f32>, R4>, 9>;
var<private> rowOff: array<u32, TP + 2u>;
var<private> rowOk: array<bool, TP + 2u>;
var<private> colOff: array<u32, TQ + 2u>;
var<private> colOk: array<bool, TQ + 2u>;
var<private> biasv: array<vec4<f32>, R4>;

@compute @workgroup_size(WG)
fn conv3x3(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let t = gid.x + gid.y * nw.x * WG;
  let tx = t % p.tilesX;
  let ty = (t / p.tilesX) % p.tilesY;
  let n = t / (p.tilesX * p.tilesY);
  if (n >= p.n) {
    return;
  }
  // Zero padding: out-of-image rows and columns read a clamped (valid) address and are then zeroed,
  // so no load leaves the tensor and the validity of a position is decided once, not per channel.
  let y0 = i32(ty * TP) - 1;
  let x0 = i32(tx * TQ) - 1;
  /* unroll */ for (var i = 0u; i < TP + 2u; i++) {
    let yy = y0 + i32(i);
    rowOk[i] = yy >= 0 && yy < i32(p.h);
    rowOff[i] = u32(clamp(yy, 0, i32(p.h) - 1)) * p.w;
  }
  /* unroll */ for (var j = 0u; j < TQ + 2u; j++) {
    let xx = x0 + i32(j);
    colOk[j] = xx >= 0 && xx < i32(p.w);
    colOff[j] = u32(clamp(xx, 0, i32(p.w) - 1));
  }
  let plane = p.h * p.w;
  var base = (n * p.ci + p.ciBase) * plane;
  var wb = 0u;
  for (var c = 0u; c < p.ciCount; c++) {
    /* unroll */ for (var i = 0u; i < TP + 2u; i++) {
      /* unroll */ for (var j = 0u; j < TQ + 2u; j++) {
        let v = x[base + rowOff[i] + colOff[j]];
        xin[i][j] = select(0.0, v, rowOk[i] && colOk[j]);
      }
    }
    /* unroll */ for (var tap = 0u; tap < 9u; tap++) {
      /* unroll */ for (var r = 0u; r < R4; r++) {
        wt[tap][r] = wwin[wb + tap * R4 + r];
      }
    }
    // All 9 taps for one output pixel: each accumulator takes a chain of 9 multiply-adds while it sits
    // in a register, rather than being reloaded once per tap.
    /* unroll */ for (var pp = 0u; pp < TP; pp++) {
      /* unroll */ for (var q = 0u; q < TQ; q++) {
        let x0 = vec4<f32>(xin[pp][q]);
        let x1 = vec4<f32>(xin[pp][q + 1u]);
        let x2 = vec4<f32>(xin[pp][q + 2u]);
        let x3 = vec4<f32>(xin[pp + 1u][q]);
        let x4 = vec4<f32>(xin[pp + 1u][q + 1u]);
        let x5 = vec4<f32>(xin[pp + 1u][q + 2u]);
        let x6 = vec4<f32>(xin[pp + 2u][q]);
        let x7 = vec4<f32>(xin[pp + 2u][q + 1u]);
        let x8 = vec4<f32>(xin[pp + 2u][q + 2u]);
        /* unroll */ for (var r = 0u; r < R4; r++) {
          var a = acc[pp][q][r];
          a = fma(wt[0][r], x0, a);
          a = fma(wt[1][r], x1, a);
          a = fma(wt[2][r], x2, a);
          a = fma(wt[3][r], x3, a);
          a = fma(wt[4][r], x4, a);
          a = fma(wt[5][r], x5, a);
          a = fma(wt[6][r], x6, a);
          a = fma(wt[7][r], x7, a);
          a = fma(wt[8][r], x8, a);
          acc[pp][q][r] = a;
        }
      }
    }
    base += plane;
    wb += 9u * R4;
  }

  /* unroll */ for (var r = 0u; r < R4; r++) {
    /* unroll */ for (var k = 0u; k < 4u; k++) {
      let o = min(p.oBase + r * 4u + k, p.co - 1u);
      biasv[r][k] = select(0.0, bias[o], p.hasBias != 0u);
    }
  }
  // Stores outside the output (past the image edge or the last channel) all go to this one element past its
  // end. With `accumulate` many invocations read-modify-write it at once: a race, but on a value nobody reads.
  let trash = p.n * p.co * plane;
  // Not unrolled: stores row 0 of the accumulators, then moves the rows up by one.
  for (var row = 0u; row < TP; row++) {
    let yy = ty * TP + row;
    /* unroll */ for (var q = 0u; q < TQ; q++) {
      let xx = tx * TQ + q;
      let inside = yy < p.h && xx < p.w;
      let pix = yy * p.w + xx;
      /* unroll */ for (var r = 0u; r < R4; r++) {
        /* unroll */ for (var k = 0u; k < 4u; k++) {
          let o = p.oBase + r * 4u + k;
          let idx = select(trash, (n * p.co + o) * plane + pix, inside && o < p.co);
          var prev = biasv[r][k];
          if (p.accumulate != 0u) {
            prev = y[idx];
          }
          y[idx] = prev + acc[0][q][r][k];
        }
      }
    }
    /* unroll */ for (var pp = 0u; pp < TP - 1u; pp++) {
      acc[pp] = acc[pp + 1u];
    }
  }
}

// Builds the weight windows read by conv3x3. Window `s = block * nWin + win` starts at vec4 slot
// s * WINDOW_VEC4 and holds, for output channels block*4*R4 .. +4*R4 and input channels
// win*ciPerWin .. +ciPerWin, the values at ((ciLocal * 9 + tap) * R4 + r) * 4 + k. Channels past the
// end are zero, so partial blocks need no test in the hot loop.
struct PackParams {
  // Output / input channels of the convolution being computed (swapped for the input gradient).
  co: u32,
  ci: u32,
  ciPerWin: u32,
  nWin: u32,
  total: u32,
  // 0: w[o,c,tap]; 1: w[c,o,8-tap] (input gradient).
  transposed: u32,
}

@group(0) @binding(0) var<uniform> pk: PackParams;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> packed: array<f32>;

@compute @workgroup_size(64)
fn pack_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * 64u;
  if (i >= pk.total) {
    return;
  }
  let blockOut = 4u * R4;
  let perWin = pk.ciPerWin * 9u * blockOut;
  let e = i % perWin;
  let s = i / perWin;
  let win = s % pk.nWin;
  let block = s / pk.nWin;
  let k = e % blockOut;
  let tap = (e / blockOut) % 9u;
  let cLocal = e / (9u * blockOut);
  let o = block * blockOut + k;
  let c = win * pk.ciPerWin + cLocal;
  var v = 0.0;
  if (o < pk.co && c < pk.ci) {
    if (pk.transposed == 0u) {
      v = weight[(o * pk.ci + c) * 9u + tap];
    } else {
      v = weight[(c * pk.co + o) * 9u + 8u - tap];
    }
  }
  packed[s * WINDOW_VEC4 * 4u + e] = v;
}
