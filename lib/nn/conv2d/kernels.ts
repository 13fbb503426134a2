// The conv kernel variants: which WGSL file computes which pass, with which block sizes, under a name
// that says both (e.g. `igemm_tiled(bm=64,bn=64,bk=16,tm=4,tn=4)`). Names are what the tuner caches and
// what a run's manifest and resume state record, so they parse back into exactly the same kernel.
//
//   pass        family          file                          where it wins
//   forward,    register_block  conv2d_register_block.wgsl    llvmpipe/lavapipe (no barriers, big blocks);
//                                                             SwiftShader at GPU sizes
//   inputGrad   igemm_tiled     conv2d_igemm_tiled.wgsl       GPUs (workgroup tiles, register blocks)
//   forward,    igemm_tapslice  conv2d_igemm_tapslice.wgsl    GPUs (K-slices of one tap: cheaper im2col;
//   inputGrad                                                 vec4 workgroup reads)
//   forward     direct_1ch      conv2d_direct_1ch.wgsl        GPUs, first layer (one input channel)
//   forward,    winograd_f2x2   conv2d_winograd_f2x2.wgsl     GPUs (Winograd F(2x2, 3x3): 2.25x fewer
//   inputGrad                                                 multiply-adds, transforms at memory speed)
//   weightGrad  wgrad_strips    conv2d_wgrad_strips.wgsl      llvmpipe/lavapipe; SwiftShader at GPU sizes
//   weightGrad  wgrad_splitk    conv2d_wgrad_splitk.wgsl      GPUs (two-pass split-K fills the GPU)
//   weightGrad  wgrad_winograd_f2x2                                GPUs (Winograd's adjoint, split-K)
//                               conv2d_wgrad_winograd_f2x2.wgsl
//
// igemm_tapslice, the two Winograd families and wgrad_splitk take `stages` (1 or 2 sets of workgroup
// tiles; StagedTile): the same bits either way, so the tuner may pick either.
//
// Which set a layer starts with: `defaultKernels`, by the adapter (`kernelTarget`), not by the WebGPU
// implementation: Mesa's drivers run the same blocks best whether naga or Tint wrote their shaders.

/** Register block of `conv3x3`: 4*r4 output channels x tp x tq output pixels per invocation. */
export interface ConvTile {
  r4: number;
  tp: number;
  tq: number;
  wg: number;
}

/**
 * Register block of `wgrad_partial`: 4*ro4 output x rc input channels x 9 taps, walking strips of tq
 * columns row by row; `lanes`: aim for about this many invocations by splitting the reduction.
 */
export interface WgradTile {
  ro4: number;
  rc: number;
  tq: number;
  wg: number;
  lanes: number;
}

/** Workgroup tile bm x bn of the output, K-slice bk, tm x tn outputs per invocation. */
export interface IgemmTile {
  bm: number;
  bn: number;
  bk: number;
  tm: number;
  tn: number;
}

/**
 * An implicit-GEMM tile with `stages` sets of workgroup tiles: 1, each K-slice loaded right before its
 * multiply-adds (two barriers a slice); 2, used in turn, each slice's loads issued before the previous
 * slice's multiply-adds (one barrier a slice). The same bits either way.
 */
export interface StagedTile extends IgemmTile {
  stages: number;
}

/** A split-K weight-gradient tile; the reduction is split so that about `groups` workgroups run. */
export interface SplitkTile extends StagedTile {
  groups: number;
}

/**
 * How a split-K tile cuts a reduction of `length` rows when `outputTiles` workgroups cover the result:
 * enough splits for about t.groups workgroups (at most `maxSplits`, a grid dimension's bound), each a
 * whole number of bk-row slices (`splitLength` rows; the last split may be shorter).
 */
export function splitReduction(
  length: number,
  t: SplitkTile,
  outputTiles: number,
  maxSplits: number,
): { splitLength: number; splits: number } {
  const wanted = Math.max(
    1,
    Math.min(Math.ceil(t.groups / outputTiles), Math.ceil(length / t.bk), maxSplits),
  );
  const splitLength = Math.ceil(length / wanted / t.bk) * t.bk;
  return { splitLength, splits: Math.ceil(length / splitLength) };
}

/** cb output channels per invocation, wg invocations (pixels) per workgroup. */
export interface DirectTile {
  cb: number;
  wg: number;
}

export type ConvKernel =
  | { family: "register_block"; tile: ConvTile }
  | { family: "igemm_tiled"; tile: IgemmTile }
  | { family: "igemm_tapslice"; tile: StagedTile }
  | { family: "winograd_f2x2"; tile: StagedTile }
  | { family: "direct_1ch"; tile: DirectTile };

export type WgradKernel =
  | { family: "wgrad_strips"; tile: WgradTile }
  | { family: "wgrad_splitk"; tile: SplitkTile }
  | { family: "wgrad_winograd_f2x2"; tile: SplitkTile };

export type ConvPass = "forward" | "inputGrad" | "weightGrad";

/** One pass of a conv layer at one shape: batch n, ci -> co channels, h x w images. */
export interface ConvTask {
  pass: ConvPass;
  n: number;
  ci: number;
  co: number;
  h: number;
  w: number;
}

/** The tuner's key for a ConvTask (in tuning.json; tools/device/summary.ts reads it back). */
export function convTaskKey(t: ConvTask): string {
  return `conv2d ${t.pass} n=${t.n} ci=${t.ci} co=${t.co} h=${t.h} w=${t.w}`;
}

/** Floating-point operations of one conv pass (each of the three is the same GEMM size: 2*n*h*w*ci*co*9). */
export function convTaskFlops(t: ConvTask): number {
  return 2 * t.n * t.h * t.w * t.ci * t.co * 9;
}

/** The ConvTask of a tuner key, or undefined for a key of other work (BatchNorm's). */
export function parseConvTaskKey(key: string): ConvTask | undefined {
  const m = /^conv2d (forward|inputGrad|weightGrad) n=(\d+) ci=(\d+) co=(\d+) h=(\d+) w=(\d+)$/.exec(key);
  if (!m) return undefined;
  const [n, ci, co, h, w] = m.slice(2).map(Number);
  return { pass: m[1] as ConvPass, n, ci, co, h, w };
}

/** The kernel of each pass of one Conv2d layer. */
export interface ConvKernels {
  forward: ConvKernel;
  inputGrad: ConvKernel;
  weightGrad: WgradKernel;
}

/**
 * llvmpipe: the largest blocks whose shaders still compile in seconds (these are the values written in
 * the WGSL files; other values are substituted into them, see `specialize`).
 */
export const TILE_SOFTWARE: ConvTile = { r4: 4, tp: 7, tq: 7, wg: 16 };
export const WGRAD_SOFTWARE: WgradTile = { ro4: 4, rc: 8, tq: 7, wg: 64, lanes: 1024 };
/** GPUs: smaller per-thread blocks (registers, occupancy) and far more threads. */
export const TILE_GPU: ConvTile = { r4: 2, tp: 2, tq: 2, wg: 64 };
export const WGRAD_GPU: WgradTile = { ro4: 1, rc: 2, tq: 7, wg: 64, lanes: 1 << 16 };
/** The implicit-GEMM tiles the GPU candidates are drawn from (64 threads to 256 threads). */
export const IGEMM_GPU: IgemmTile = { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 };
export const SPLITK_GPU: SplitkTile = { ...IGEMM_GPU, stages: 1, groups: 1024 };
export const DIRECT_GPU: DirectTile = { cb: 16, wg: 64 };
/**
 * The block constants of the modules that build the entry points which do not use the tile (the
 * tap-slice weight pack, the split-K and Winograd reductions, the Winograd transforms): built from the
 * tile's own module, each would be compiled again for every tile the tuner times, and a cold GPU driver
 * compile can take long (platform.md).
 */
export const UNTILED_ENTRY_TILE: StagedTile = { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8, stages: 1 };

const KEYS: Record<string, readonly string[]> = {
  register_block: ["r4", "tp", "tq", "wg"],
  igemm_tiled: ["bm", "bn", "bk", "tm", "tn"],
  igemm_tapslice: ["bm", "bn", "bk", "tm", "tn", "stages"],
  winograd_f2x2: ["bm", "bn", "bk", "tm", "tn", "stages"],
  direct_1ch: ["cb", "wg"],
  wgrad_strips: ["ro4", "rc", "tq", "wg", "lanes"],
  wgrad_splitk: ["bm", "bn", "bk", "tm", "tn", "stages", "groups"],
  wgrad_winograd_f2x2: ["bm", "bn", "bk", "tm", "tn", "stages", "groups"],
};

const PASS_FAMILIES: Record<ConvPass, readonly string[]> = {
  forward: ["register_block", "igemm_tiled", "igemm_tapslice", "winograd_f2x2", "direct_1ch"],
  inputGrad: ["register_block", "igemm_tiled", "igemm_tapslice", "winograd_f2x2"],
  weightGrad: ["wgrad_strips", "wgrad_splitk", "wgrad_winograd_f2x2"],
};

/** `family(key=value,...)`, keys in a fixed order. */
export function kernelName(k: ConvKernel | WgradKernel): string {
  const tile = k.tile as unknown as Record<string, number>;
  return `${k.family}(${KEYS[k.family].map((key) => `${key}=${tile[key]}`).join(",")})`;
}

/** Checks the block sizes a family's WGSL needs (throws a message naming the value). */
export function checkKernel(k: ConvKernel | WgradKernel): void {
  const name = kernelName(k);
  const tile = k.tile as unknown as Record<string, number>;
  for (const key of KEYS[k.family]) {
    if (!Number.isInteger(tile[key]) || tile[key] < 1) {
      throw new Error(`conv kernel ${name}: ${key} must be a positive integer, got ${tile[key]}`);
    }
  }
  if (k.family !== "register_block" && k.family !== "direct_1ch" && k.family !== "wgrad_strips") {
    const t = k.tile;
    if (t.bm % t.tm || t.bn % t.tn) {
      throw new Error(`conv kernel ${name}: tm must divide bm and tn divide bn`);
    }
    const wg = (t.bm / t.tm) * (t.bn / t.tn);
    if (wg > 256) throw new Error(`conv kernel ${name}: ${wg} invocations per workgroup (at most 256)`);
    if ((t.bm * t.bk) % wg || (t.bn * t.bk) % wg) {
      throw new Error(`conv kernel ${name}: the ${wg} invocations must divide bm*bk and bn*bk`);
    }
    // wgrad_splitk decodes one row per invocation and slice (conv2d_wgrad_splitk.wgsl).
    if (k.family === "wgrad_splitk" && wg % t.bk) {
      throw new Error(`conv kernel ${name}: bk must divide the ${wg} invocations`);
    }
    if (k.family === "igemm_tapslice" || k.family === "winograd_f2x2" || k.family === "wgrad_winograd_f2x2") {
      checkVec4Tiles(name, t, wg);
    }
    if (k.family !== "igemm_tiled" && k.tile.stages > 2) {
      throw new Error(`conv kernel ${name}: stages must be 1 or 2`);
    }
  }
}

/**
 * gemm_vec4_tiles.wgsl (igemm_tapslice and the Winograd families): 4 x 4 pieces per invocation, and
 * loaders that take whole rows of a K-slice (with the check above that the invocations divide bm*bk and
 * bn*bk, each loads the same count).
 */
function checkVec4Tiles(name: string, t: IgemmTile, wg: number): void {
  if (t.tm % 4 || t.tn % 4) throw new Error(`conv kernel ${name}: tm and tn must be multiples of 4`);
  for (const [what, size] of [["bm", t.bm], ["bn", t.bn]] as const) {
    if (wg % size && size % wg) {
      throw new Error(`conv kernel ${name}: ${what} and the ${wg} invocations must divide one another`);
    }
  }
}

/** The WGSL constants of an implicit-GEMM tile (igemm_tiled, igemm_tapslice, wgrad_splitk). */
export function igemmConstants(t: IgemmTile): Record<string, number> {
  const wm = t.bm / t.tm, wn = t.bn / t.tn, wg = wm * wn;
  return { BM: t.bm, BN: t.bn, BK: t.bk, TM: t.tm, TN: t.tn, WM: wm, WN: wn, WG: wg };
}

/**
 * Bytes of workgroup memory a kernel's entry point declares (WebGPU's maxComputeWorkgroupStorageSize
 * bounds it: 16 KiB by default, 48 KiB on NVIDIA through Vulkan). For wgrad_splitk, the larger of its
 * scalar and vec4 entry points.
 */
export function workgroupBytes(k: ConvKernel | WgradKernel): number {
  switch (k.family) {
    case "register_block":
    case "wgrad_strips":
      return 0;
    case "direct_1ch":
      return 4 * 10 * k.tile.cb;
    case "igemm_tiled":
      return 4 * k.tile.bk * (k.tile.bm + k.tile.bn + 1);
    case "igemm_tapslice":
    case "winograd_f2x2":
    case "wgrad_winograd_f2x2":
      return 4 * k.tile.stages * k.tile.bk * (k.tile.bm + k.tile.bn);
    case "wgrad_splitk": {
      const t = k.tile;
      const vec4 = t.tm % 4 === 0 && t.tn % 4 === 0 ? t.bm + t.bn + 8 : 0;
      return 4 * t.stages * t.bk * Math.max(t.bm + t.bn + 2, vec4);
    }
  }
}

/** wgrad_splitk's constants: the tile's and its tile sets. */
export function splitkConstants(t: SplitkTile): Record<string, number> {
  return { ...igemmConstants(t), STAGES: t.stages };
}

/**
 * The constants of gemm_vec4_tiles.wgsl's users (igemm_tapslice and the Winograd families): the tile's,
 * its tile sets, and how the loaders split a K-slice (see gemm_vec4_tiles.wgsl).
 */
export function vec4GemmConstants(t: StagedTile): Record<string, number> {
  const c = igemmConstants(t);
  return {
    ...c,
    STAGES: t.stages,
    A_PIX: Math.max(1, t.bm / c.WG),
    A_KSTRIDE: Math.max(1, c.WG / t.bm),
    B_COLS: Math.max(1, t.bn / c.WG),
    B_KSTRIDE: Math.max(1, c.WG / t.bn),
  };
}

/** Parses a kernel name back, for one pass (throws a one-line message naming what is wrong). */
export function parseKernel(pass: "weightGrad", name: string): WgradKernel;
export function parseKernel(pass: "forward" | "inputGrad", name: string): ConvKernel;
export function parseKernel(pass: ConvPass, name: string): ConvKernel | WgradKernel;
export function parseKernel(pass: ConvPass, name: string): ConvKernel | WgradKernel {
  const m = /^(\w+)\(([^)]*)\)$/.exec(name);
  if (!m || !PASS_FAMILIES[pass].includes(m[1])) {
    throw new Error(
      `conv kernel "${name}" is not a ${pass} kernel: expected one of ${PASS_FAMILIES[pass].join(", ")}(...)`,
    );
  }
  const tile: Record<string, number> = {};
  for (const part of m[2].split(",")) {
    const [key, value] = part.split("=");
    tile[key] = Number(value);
  }
  const keys = KEYS[m[1]];
  // Names recorded before `stages` existed (a manifest, a resume state) meant one tile set: same kernel.
  if (keys.includes("stages") && !("stages" in tile)) {
    const legacy = keys.filter((key) => key !== "stages");
    if (Object.keys(tile).join(",") === legacy.join(",")) {
      return parseKernel(pass, kernelName({ family: m[1], tile: { ...tile, stages: 1 } } as ConvKernel));
    }
  }
  if (Object.keys(tile).join(",") !== keys.join(",")) {
    throw new Error(`conv kernel "${name}": expected the keys ${keys.join(",")}`);
  }
  const k = { family: m[1], tile } as unknown as ConvKernel | WgradKernel;
  checkKernel(k);
  return k;
}

/**
 * The kernels for Mesa's software adapters: tuned for llvmpipe by hand, never timed at run time. Also
 * the best measured through Dawn (Tint to GLSL on llvmpipe), 2026-12-01, notebook step at batch 256 on
 * the 2-core machine, cold Mesa shader cache: 12.5 s a step after a 41 s warm-up step (load 5), against
 * 32 s after 36 s with the register blocks at GPU sizes (load 6); the implicit GEMM did not finish a
 * step in 6.5 min (README). The earlier "over 200 s to compile these blocks from Tint's GLSL" was
 * measured before their loops were unrolled (lib/gpu/unroll.ts); now all of the first step's compiling
 * takes about 28 s.
 */
export function softwareKernels(inChannels: number): ConvKernels {
  return registerBlockKernels(TILE_SOFTWARE, WGRAD_SOFTWARE, inChannels);
}

/**
 * The kernels for SwiftShader, Chromium's software WebGPU (Tint to SPIR-V, run on the CPU): the register
 * blocks and weight-gradient strips at GPU sizes. Measured 2026-12-01 on the 2-core machine, the
 * notebook's step at batch 256 in headless Chromium 156 (load average 10-14 from other jobs): these
 * 131 s; the implicit GEMM (gpuKernels) 381 s; llvmpipe's big blocks (softwareKernels) lost the device
 * before the first step finished (cause not examined).
 */
export function swiftShaderKernels(inChannels: number): ConvKernels {
  return registerBlockKernels(TILE_GPU, WGRAD_GPU, inChannels);
}

/** Register blocks for the forward and input gradient, weight-gradient strips (software adapters). */
function registerBlockKernels(tile: ConvTile, wgrad: WgradTile, inChannels: number): ConvKernels {
  const block: ConvKernel = { family: "register_block", tile };
  return { forward: block, inputGrad: block, weightGrad: wgradStrips(wgrad, inChannels) };
}

/** Weight-gradient strips; one input channel (the first layer) would leave all but one of rc empty. */
function wgradStrips(tile: WgradTile, inChannels: number): WgradKernel {
  return { family: "wgrad_strips", tile: inChannels === 1 ? { ...tile, rc: 1 } : tile };
}

/** What the kernel choice needs to know about an adapter (a subset of lib/gpu/device.ts's report). */
export interface KernelAdapter {
  isSoftware: boolean;
  description: string;
  architecture: string;
}

/** The kind of adapter a layer's first kernels are chosen for. */
export type KernelTarget = "llvmpipe" | "swiftshader" | "gpu";

/**
 * Mesa's software drivers (llvmpipe, lavapipe) whichever WebGPU implementation compiles for them (wgpu's
 * naga, Dawn's Tint), SwiftShader (a browser's software WebGPU), or a hardware adapter.
 */
export function kernelTarget(adapter: KernelAdapter): KernelTarget {
  if (!adapter.isSoftware) return "gpu";
  return /swiftshader/i.test(`${adapter.description} ${adapter.architecture}`) ? "swiftshader" : "llvmpipe";
}

/** The kernels a Conv2d starts with on an adapter (on a GPU the tuner may then pick others). */
export function defaultKernels(adapter: KernelAdapter, inChannels: number): ConvKernels {
  const target = kernelTarget(adapter);
  return target === "llvmpipe"
    ? softwareKernels(inChannels)
    : target === "swiftshader"
    ? swiftShaderKernels(inChannels)
    : gpuKernels(inChannels);
}

/** Untuned kernels for a hardware adapter (the tuner's starting point). */
export function gpuKernels(inChannels: number): ConvKernels {
  const igemm: ConvKernel = { family: "igemm_tiled", tile: IGEMM_GPU };
  return {
    forward: inChannels === 1 ? { family: "direct_1ch", tile: DIRECT_GPU } : igemm,
    inputGrad: igemm,
    weightGrad: { family: "wgrad_splitk", tile: SPLITK_GPU },
  };
}

/**
 * What the tuner times on a hardware adapter for one pass, reference first: the register-block kernels
 * are the long-tested ones every other variant is checked against. Those needing more workgroup memory
 * than `maxWorkgroupBytes` (the adapter's maxComputeWorkgroupStorageSize) are left out, and with
 * `winograd` false (--no-winograd) the Winograd kernels, whose sums round differently from a direct one's.
 */
export function gpuCandidates(
  pass: ConvPass,
  inChannels: number,
  maxWorkgroupBytes = Infinity,
  winograd = true,
): (ConvKernel | WgradKernel)[] {
  return allCandidates(pass, inChannels).filter((k) =>
    workgroupBytes(k) <= maxWorkgroupBytes && (winograd || !isWinograd(k))
  );
}

function isWinograd(k: ConvKernel | WgradKernel): boolean {
  return k.family === "winograd_f2x2" || k.family === "wgrad_winograd_f2x2";
}

function allCandidates(pass: ConvPass, inChannels: number): (ConvKernel | WgradKernel)[] {
  if (pass === "weightGrad") {
    return [
      wgradStrips(WGRAD_GPU, inChannels),
      { family: "wgrad_splitk", tile: SPLITK_GPU },
      { family: "wgrad_splitk", tile: { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4, stages: 1, groups: 4096 } },
      { family: "wgrad_splitk", tile: { bm: 32, bn: 64, bk: 16, tm: 2, tn: 4, stages: 1, groups: 1024 } },
      { family: "wgrad_splitk", tile: { bm: 64, bn: 32, bk: 32, tm: 4, tn: 4, stages: 1, groups: 1024 } },
      // 8x8 outputs per invocation, 64 invocations: the block of the fastest published WGSL GEMM on NVIDIA.
      { family: "wgrad_splitk", tile: { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8, stages: 1, groups: 1024 } },
      // Two tile sets, each slice's loads in flight during the previous slice's multiply-adds.
      { family: "wgrad_splitk", tile: { ...SPLITK_GPU, stages: 2 } },
      { family: "wgrad_splitk", tile: { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8, stages: 2, groups: 1024 } },
      // Winograd F(2x2, 3x3)'s adjoint: 16 split-K GEMMs over the 2x2 output tiles. Not for one input
      // channel (a GEMM two columns wide: the weights' and the bias's).
      ...(inChannels > 1
        ? [
          { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8, stages: 1, groups: 1024 },
          { bm: 64, bn: 64, bk: 16, tm: 8, tn: 8, stages: 2, groups: 1024 },
          { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4, stages: 1, groups: 2048 },
        ].map((tile): WgradKernel => ({ family: "wgrad_winograd_f2x2", tile }))
        : []),
    ];
  }
  const list: ConvKernel[] = [
    { family: "register_block", tile: TILE_GPU },
    { family: "igemm_tiled", tile: IGEMM_GPU },
    { family: "igemm_tiled", tile: { bm: 128, bn: 64, bk: 16, tm: 8, tn: 4 } },
    { family: "igemm_tiled", tile: { bm: 64, bn: 32, bk: 16, tm: 4, tn: 4 } },
    { family: "igemm_tiled", tile: { bm: 32, bn: 32, bk: 16, tm: 2, tn: 2 } },
    // 8x8 outputs per invocation (gpu.cpp's 3.7 TFLOP/s WGSL GEMM on an RTX 3080 used this block with 64
    // invocations, spec/gpu-kernels.md), and the classic 128x128 tile with 256 invocations.
    { family: "igemm_tiled", tile: { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8 } },
    { family: "igemm_tiled", tile: { bm: 128, bn: 128, bk: 8, tm: 8, tn: 8 } },
    // K-slices of one tap and vec4 workgroup reads (conv2d_igemm_tapslice.wgsl), at the same block sizes,
    // and 128 x 64 for the layers with 64 output channels (a 128-wide tile would be half empty); the 8 x 8
    // blocks also with two tile sets (loads in flight during the multiply-adds, one barrier a slice).
    ...[1, 2].flatMap((stages): ConvKernel[] =>
      [
        ...(stages === 1 ? [{ bm: 64, bn: 64, bk: 16, tm: 4, tn: 4 }] : []),
        { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8 },
        { bm: 64, bn: 64, bk: 16, tm: 8, tn: 8 }, // half the barriers
        { bm: 128, bn: 64, bk: 8, tm: 8, tn: 8 },
        { bm: 128, bn: 128, bk: 8, tm: 8, tn: 8 },
      ].map((t) => ({ family: "igemm_tapslice", tile: { ...t, stages } }))
    ),
    // Half the outputs per workgroup, for the 7x7 layers: at batch 256 a 64x64 tile of 8x8 blocks gives
    // 784 workgroups of 64 invocations, fewer than an H200's 132 SMs hold at once (about 8 each, by
    // registers); this gives twice as many.
    { family: "igemm_tapslice", tile: { bm: 32, bn: 64, bk: 16, tm: 4, tn: 8, stages: 2 } },
  ];
  // Winograd F(2x2, 3x3): its GEMMs (one per transformed position, M = 2x2 output tiles, K = input
  // channels) on the tap-slice kernel's tiles. Not for one input channel (K = 1: direct_1ch's case).
  if (pass !== "forward" || inChannels > 1) {
    list.push(
      ...[
        { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8, stages: 1 },
        { bm: 64, bn: 64, bk: 16, tm: 8, tn: 8, stages: 2 },
        { bm: 128, bn: 64, bk: 8, tm: 8, tn: 8, stages: 2 },
        { bm: 64, bn: 64, bk: 16, tm: 4, tn: 4, stages: 1 },
      ].map((tile): ConvKernel => ({ family: "winograd_f2x2", tile })),
    );
  }
  if (pass === "forward" && inChannels === 1) {
    list.push({ family: "direct_1ch", tile: DIRECT_GPU }, { family: "direct_1ch", tile: { cb: 8, wg: 128 } });
  }
  return list;
}
