// Launching the Winograd F(2x2, 3x3) kernels for Conv2d: conv2d_winograd_f2x2.wgsl (forward and input
// gradient), conv2d_wgrad_winograd_f2x2.wgsl (weight gradient) and conv2d_bias_grad.wgsl (its bias).
// The math and the layouts are in the WGSL headers; here: the scratch, its chunks, the split-K, the
// dispatches and their parameters.

import type { Gpu } from "../../gpu/device.ts";
import { loadWgsl, pipeline } from "../../gpu/pipelines.ts";
import { grid1d, type Recorder } from "../../gpu/recorder.ts";
import { withTreeSum } from "../../gpu/reduction.ts";
import { type Tensor, Workspace } from "../../gpu/tensor.ts";
import {
  kernelName,
  type SplitkTile,
  splitReduction,
  type StagedTile,
  UNTILED_ENTRY_TILE,
  vec4GemmConstants,
} from "./kernels.ts";

/**
 * The most bytes of Winograd scratch (V, M: each 16 values per 2x2 output tile and channel) a pass binds
 * at once; a pass over more tiles runs in chunks (the adapter's maxStorageBufferBindingSize may bound it
 * lower: 128 MiB on Mesa, WebGPU's default in a browser).
 */
const SCRATCH_BYTES = 256 * 1024 * 1024;

/** The transforms and reductions use no tile: one pipeline each for every tile (kernels.ts). */
const SHARED_CONSTANTS = vec4GemmConstants(UNTILED_ENTRY_TILE);

/** Images per workgroup of the bias gradient's first pass (conv2d_bias_grad.wgsl). */
const BIAS_CHUNK_IMAGES = 8;

/**
 * The Winograd scratch of a device, shared by every conv layer: a pass consumes its U, V and M before the
 * next pass (of any layer) is recorded, and dispatches run in order, so one set serves all.
 */
const scratchByDevice = new WeakMap<GPUDevice, Workspace>();

/** What the launchers need of a Conv2d layer. */
export interface WinogradLayer {
  gpu: Gpu;
  /** A kernel file's WGSL with its block sizes substituted and shared parts appended (Conv2d's cache). */
  code(file: string, values: Record<string, number>): string;
  /** The layer's own workspace (its split-K partials). */
  ws: Workspace;
  /** The most 2x2 output tiles one chunk takes (below the scratch bound: tests force chunks). */
  chunkTiles: number;
  weight: Tensor;
  bias: Tensor;
  dweight: Tensor;
  dbias: Tensor;
}

/** winograd_common.wgsl's Params, in order (fields a pass does not use stay 0). */
interface Params {
  n: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  tileBase: number;
  tiles: number;
  transposed?: boolean;
  hasBias?: boolean;
  channelsLast?: boolean;
  splits?: number;
  splitTiles?: number;
  splitBase?: number;
  totalSplits?: number;
}

function params(q: Params): number[] {
  return [
    q.n,
    q.cin,
    q.h,
    q.w,
    q.cout,
    Math.ceil(q.h / 2),
    Math.ceil(q.w / 2),
    q.tileBase,
    q.tiles,
    q.transposed ? 1 : 0,
    q.hasBias ? 1 : 0,
    q.channelsLast ? 1 : 0,
    q.splits ?? 0,
    q.splitTiles ?? 0,
    q.splitBase ?? 0,
    q.totalSplits ?? 0,
  ];
}

function scratch(gpu: Gpu): Workspace {
  let ws = scratchByDevice.get(gpu.device);
  if (!ws) scratchByDevice.set(gpu.device, ws = new Workspace(gpu, "winograd"));
  return ws;
}

/**
 * Tiles per chunk: V and M (16 values per tile and channel) within the scratch bound and the adapter's
 * binding size, and at most `gridBound`.
 */
function chunkTiles(
  layer: WinogradLayer,
  total: number,
  cin: number,
  cout: number,
  gridBound: number,
): number {
  const maxFloats = Math.min(SCRATCH_BYTES, layer.gpu.limits.maxStorageBufferBindingSize) / 4;
  const fit = Math.floor(maxFloats / (16 * Math.max(cin, cout)));
  return Math.max(1, Math.min(total, fit, gridBound, layer.chunkTiles));
}

/** A forward pass, or with `transposed` an input gradient: x [N, cin, H, W] -> y [N, cout, H, W]. */
export interface WinogradConv {
  x: Tensor;
  y: Tensor;
  cin: number;
  cout: number;
  transposed: boolean;
}

/**
 * y = conv(x) + bias, or dx = conv^T(dy): the filter transform, then per chunk of 2x2 output tiles the
 * input transform, the 16 GEMMs (one per transformed position) and the output transform.
 */
export function recordWinogradConv(
  layer: WinogradLayer,
  rec: Recorder,
  t: StagedTile,
  c: WinogradConv,
): void {
  const { x, y, cin, cout, transposed } = c;
  const [n, , h, w] = x.shape;
  const code = layer.code("./conv2d_winograd_f2x2.wgsl", vec4GemmConstants(t));
  const shared = layer.code("./conv2d_winograd_f2x2.wgsl", SHARED_CONSTANTS);
  const total = n * Math.ceil(h / 2) * Math.ceil(w / 2);
  // The GEMM's grid within WebGPU's 65535 workgroups.
  const chunk = chunkTiles(layer, total, cin, cout, 65535 * t.bm);
  const ws = scratch(layer.gpu);
  const u = ws.tensor("U", [16 * cin * cout]);
  const v = ws.tensor("V", [16 * cin * chunk]);
  const m = ws.tensor("M", [16 * cout * chunk]);
  // Never read when hasBias is 0, but the binding must exist and cover every output channel.
  const bias = transposed ? layer.ws.tensor("nobias", [cout]) : layer.bias;
  const at = (tileBase: number, tiles: number) =>
    params({ n, cin, h, w, cout, tileBase, tiles, transposed, hasBias: !transposed });
  rec.dispatch(
    pipeline(layer.gpu, { code: shared, entryPoint: "winograd_filter" }),
    at(0, 0),
    [layer.weight, u],
    grid1d(cin * cout, 64),
  );
  const input = pipeline(layer.gpu, { code: shared, entryPoint: "winograd_input" });
  const gemm = pipeline(layer.gpu, {
    code,
    entryPoint: "winograd_gemm",
    label: kernelName({ family: "winograd_f2x2", tile: t }),
  });
  const output = pipeline(layer.gpu, { code: shared, entryPoint: "winograd_output" });
  for (let base = 0; base < total; base += chunk) {
    const tiles = Math.min(chunk, total - base);
    rec.dispatch(input, at(base, tiles), [x, v], grid1d(cin * tiles, 64));
    rec.dispatch(gemm, at(base, tiles), [v, u, m], [Math.ceil(tiles / t.bm), Math.ceil(cout / t.bn), 16]);
    rec.dispatch(output, at(base, tiles), [m, bias, y], grid1d(cout * tiles, 64));
  }
}

/**
 * The weight and bias gradients (overwritten) from the input x [N, CI, H, W] and dy [N, CO, H, W]: per
 * chunk of tiles the input and output-gradient transforms and the split-K GEMMs into their partial
 * slots, then one reduction of every slot in order with the filter's adjoint transform; the bias from dy
 * directly.
 */
export function recordWinogradWeightGrad(
  layer: WinogradLayer,
  rec: Recorder,
  t: SplitkTile,
  x: Tensor,
  dy: Tensor,
): void {
  const [n, ci, h, w] = x.shape;
  const co = dy.shape[1];
  const total = n * Math.ceil(h / 2) * Math.ceil(w / 2);
  const chunk = chunkTiles(layer, total, ci, co, Infinity);
  // Splits per chunk (grid z = 16 * splits, within WebGPU's 65535).
  const outputTiles = 16 * Math.ceil(co / t.bm) * Math.ceil(ci / t.bn);
  const { splitLength: splitTiles, splits } = splitReduction(chunk, t, outputTiles, 4095);
  const chunks = Math.ceil(total / chunk);
  const totalSplits = chunks * splits;
  const ws = scratch(layer.gpu);
  const v = ws.tensor("V", [16 * ci * chunk]);
  const dm = ws.tensor("M", [16 * co * chunk]);
  const part = layer.ws.tensor("wgradPartial", [totalSplits * 16 * co * ci]);
  const code = layer.code("./conv2d_wgrad_winograd_f2x2.wgsl", vec4GemmConstants(t));
  const shared = layer.code("./conv2d_wgrad_winograd_f2x2.wgsl", SHARED_CONSTANTS);
  const transforms = layer.code("./conv2d_winograd_f2x2.wgsl", SHARED_CONSTANTS);
  const input = pipeline(layer.gpu, { code: transforms, entryPoint: "winograd_input" });
  const dyTransform = pipeline(layer.gpu, { code: shared, entryPoint: "winograd_wgrad_dy" });
  const gemm = pipeline(layer.gpu, {
    code,
    entryPoint: "winograd_wgrad_gemm",
    label: kernelName({ family: "wgrad_winograd_f2x2", tile: t }),
  });
  const shape = { n, cin: ci, h, w, cout: co, splits, splitTiles, totalSplits };
  for (let c = 0; c < chunks; c++) {
    const tileBase = c * chunk, tiles = Math.min(chunk, total - tileBase);
    const at = params({ ...shape, tileBase, tiles, channelsLast: true, splitBase: c * splits });
    rec.dispatch(input, at, [x, v], grid1d(ci * tiles, 64));
    rec.dispatch(dyTransform, at, [dy, dm], grid1d(co * tiles, 64));
    rec.dispatch(gemm, at, [dm, v, part], [Math.ceil(co / t.bm), Math.ceil(ci / t.bn), 16 * splits]);
  }
  // 16 (o, c) pairs a workgroup (conv2d_wgrad_winograd_f2x2.wgsl).
  rec.dispatch(
    pipeline(layer.gpu, { code: shared, entryPoint: "winograd_wgrad_reduce" }),
    params({ ...shape, tileBase: 0, tiles: 0 }),
    [part, layer.dweight],
    grid1d(co * ci, 16),
  );
  recordBiasGrad(layer, rec, dy);
}

/** db = the sum of dy over images and pixels (conv2d_bias_grad.wgsl): per 8-image chunk, then in order. */
function recordBiasGrad(layer: WinogradLayer, rec: Recorder, dy: Tensor): void {
  const [n, co, h, w] = dy.shape;
  const chunks = Math.ceil(n / BIAS_CHUNK_IMAGES);
  const code = withTreeSum(loadWgsl(import.meta.url, "./conv2d_bias_grad.wgsl"));
  const at = [n, co, h * w, BIAS_CHUNK_IMAGES, chunks];
  const part = layer.ws.tensor("biasGradPartial", [chunks * co]);
  rec.dispatch(pipeline(layer.gpu, { code, entryPoint: "bias_grad_chunks" }), at, [dy, part], [
    chunks,
    co,
    1,
  ]);
  rec.dispatch(
    pipeline(layer.gpu, { code, entryPoint: "bias_grad_sum" }),
    at,
    [part, layer.dbias],
    [Math.ceil(co / 64), 1, 1],
  );
}
