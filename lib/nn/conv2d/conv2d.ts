// Conv2d with a 3x3 kernel, padding 1, stride 1 (the encoder's only convolution), NCHW.
//
// Forward and input gradient run the implicit-GEMM kernel `conv3x3` (conv2d_register_block.wgsl); the
// weight and bias gradients run a split reduction (conv2d_wgrad_strips.wgsl). The parameters stay
// in PyTorch's layout ([out, in, 3, 3] and [out]) in the flat parameter buffer; each forward (and each
// input-gradient pass) first repacks the weights into uniform-buffer windows, a copy of a few MB at most,
// because the kernel reads them through a uniform buffer (see conv2d.wgsl for why).

import type { Gpu } from "../../gpu/device.ts";
import type { ParamStore, ParamView } from "../../gpu/params.ts";
import { loadWgsl, pipeline } from "../../gpu/pipelines.ts";
import { grid1d, type Recorder } from "../../gpu/recorder.ts";
import { unrollLoops } from "../../gpu/unroll.ts";
import { createBuffer, Tensor, Workspace } from "../../gpu/tensor.ts";
import type { Rng } from "../../rng.ts";
import { kaimingUniformBound, uniformInit } from "../init.ts";
import type { Layer } from "../layer.ts";

/** Register block of `conv3x3`: 4*r4 output channels x tp x tq output pixels per invocation. */
export interface ConvTile {
  r4: number;
  tp: number;
  tq: number;
  wg: number;
}

/**
 * Register block of `wgrad_partial`: 4*ro4 output x rc input channels x 9 taps, walking strips of tq
 * columns row by row.
 */
export interface WgradTile {
  ro4: number;
  rc: number;
  tq: number;
  wg: number;
  /** Aim for about this many invocations by splitting the reduction over strips. */
  lanes: number;
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

/**
 * Rewrites `const NAME: u32 = <n>u;` declarations of a WGSL source. The register-block sizes of the
 * conv kernels size private arrays, which WGSL allows only with constants, not override constants.
 */
export function specialize(code: string, values: Record<string, number>): string {
  let out = code;
  for (const [name, v] of Object.entries(values)) {
    if (!Number.isInteger(v) || v < 1) {
      throw new Error(`block size ${name} must be a positive integer, got ${v}`);
    }
    const re = new RegExp(`^const ${name}: u32 = \\d+u;$`, "m");
    if (!re.test(out)) {
      throw new Error(`specialize: no declaration "const ${name}: u32 = ...u;" in the shader`);
    }
    out = out.replace(re, `const ${name}: u32 = ${v}u;`);
  }
  return out;
}

/** vec4 slots per weight window: 64 KiB, the WebGPU minimum of maxUniformBufferBindingSize. */
const WINDOW_VEC4 = 4096;
const WINDOW_BYTES = WINDOW_VEC4 * 16;
/** Spare values after each conv3x3 output (one is used; four keep the buffer 16-byte sized). */
const TRASH = 4;

/** How one convolution (forward or input gradient) is cut into weight windows and dispatches. */
interface ConvPlan {
  co: number;
  ci: number;
  oBlocks: number;
  nWin: number;
  ciPerWin: number;
}

function convPlan(co: number, ci: number, tile: ConvTile): ConvPlan {
  const blockOut = 4 * tile.r4;
  const maxCi = Math.floor(WINDOW_VEC4 / (9 * tile.r4));
  const nWin = Math.ceil(ci / maxCi);
  return { co, ci, oBlocks: Math.ceil(co / blockOut), nWin, ciPerWin: Math.ceil(ci / nWin) };
}

export class Conv2d implements Layer {
  readonly weight: ParamView;
  readonly bias: ParamView;
  readonly tile: ConvTile;
  readonly wgradTile: WgradTile;
  private gpu: Gpu;
  private ws: Workspace;
  private windows?: GPUBuffer;
  private x?: Tensor;
  private convSource?: string;
  private wgradSource?: string;

  constructor(
    private store: ParamStore,
    readonly name: string,
    readonly inChannels: number,
    readonly outChannels: number,
    rng: Rng,
    tiles?: { tile: ConvTile; wgrad: WgradTile },
  ) {
    for (const [what, v] of [["inChannels", inChannels], ["outChannels", outChannels]] as const) {
      if (!Number.isInteger(v) || v < 1) {
        throw new Error(`Conv2d ${name}: ${what} must be a positive integer, got ${v}`);
      }
    }
    const bound = kaimingUniformBound(inChannels * 9);
    this.weight = store.add(
      `${name}.weight`,
      [outChannels, inChannels, 3, 3],
      uniformInit(rng, outChannels * inChannels * 9, bound),
    );
    this.bias = store.add(`${name}.bias`, [outChannels], uniformInit(rng, outChannels, bound));
    this.gpu = store.gpu;
    this.ws = new Workspace(store.gpu, name);
    const soft = store.gpu.report.isSoftware;
    this.tile = tiles?.tile ?? (soft ? TILE_SOFTWARE : TILE_GPU);
    const wgrad = tiles?.wgrad ?? (soft ? WGRAD_SOFTWARE : WGRAD_GPU);
    // One input channel (the first layer) would leave all but one of rc channels of each block empty.
    this.wgradTile = inChannels === 1 ? { ...wgrad, rc: 1 } : wgrad;
  }

  outputShape(inShape: readonly number[]): number[] {
    if (inShape.length !== 3 || inShape[0] !== this.inChannels) {
      throw new Error(`Conv2d ${this.name}: input shape [${inShape}] is not [${this.inChannels}, H, W]`);
    }
    return [this.outChannels, inShape[1], inShape[2]];
  }

  forward(rec: Recorder, x: Tensor, _training: boolean): Tensor {
    this.checkInput(x);
    const [n, , h, w] = x.shape;
    this.x = x;
    const y = this.output("y", [n, this.outChannels, h, w]);
    const plan = convPlan(this.outChannels, this.inChannels, this.tile);
    this.packWeights(rec, plan, false);
    this.runConv(rec, plan, x, y, this.store.param(this.bias));
    return y;
  }

  backward(rec: Recorder, dy: Tensor, needInputGrad: boolean): Tensor | undefined {
    this.backwardParams(rec, dy);
    return needInputGrad ? this.backwardInput(rec, dy) : undefined;
  }

  /** The input gradient alone (backward's second half; public for benchmarks). */
  backwardInput(rec: Recorder, dy: Tensor): Tensor {
    const x = this.saved(dy);
    const dx = this.output("dx", x.shape);
    const plan = convPlan(this.inChannels, this.outChannels, this.tile);
    this.packWeights(rec, plan, true);
    this.runConv(rec, plan, dy, dx, undefined);
    return dx;
  }

  /**
   * Overwrites the weight and bias gradients in the store from the saved input and dy (backward's
   * first half; public for benchmarks).
   */
  backwardParams(rec: Recorder, dy: Tensor): void {
    const x = this.saved(dy);
    const [n, , h, w] = x.shape;
    const t = this.wgradTile;
    const ro = 4 * t.ro4;
    const oBlocks = Math.ceil(this.outChannels / ro);
    const cBlocks = Math.ceil(this.inChannels / t.rc);
    const stripsX = Math.ceil(w / t.tq);
    const nStrips = n * stripsX;
    const splits = Math.max(1, Math.min(nStrips, Math.ceil(t.lanes / (oBlocks * cBlocks))));
    const partStride = t.rc * 9 * ro + ro;
    const part = this.ws.tensor("wgradPartial", [oBlocks * cBlocks * splits * partStride]);
    const code = this.wgradCode();
    const partial = pipeline(this.gpu, { code, entryPoint: "wgrad_partial", constants: { WG: t.wg } });
    rec.dispatch(
      partial,
      [
        n,
        this.inChannels,
        h,
        w,
        this.outChannels,
        stripsX,
        nStrips,
        splits,
        cBlocks,
        oBlocks,
        partStride / 4,
      ],
      [x, dy, part],
      grid1d(oBlocks * cBlocks * splits, t.wg),
    );
    const reduce = pipeline(this.gpu, { code, entryPoint: "wgrad_reduce" });
    const dw = this.store.grad(this.weight), db = this.store.grad(this.bias);
    for (const [target, biasMode] of [[dw, 0], [db, 1]] as const) {
      const total = target.size;
      rec.dispatch(
        reduce,
        [this.outChannels, this.inChannels, cBlocks, splits, partStride, biasMode, total],
        [part, target],
        grid1d(total, 64),
      );
    }
  }

  /** The input saved by forward, after checking that dy matches its output. */
  private saved(dy: Tensor): Tensor {
    const x = this.x;
    if (!x) throw new Error(`Conv2d ${this.name}: backward before forward`);
    const [n, , h, w] = x.shape;
    const want = [n, this.outChannels, h, w];
    if (dy.shape.join(",") !== want.join(",")) {
      throw new Error(`Conv2d ${this.name}: dy has shape [${dy.shape}], expected [${want}]`);
    }
    return x;
  }

  /**
   * A workspace tensor of `shape` whose buffer has a few spare values after it: conv3x3 sends the
   * stores of out-of-image pixels there (see conv2d.wgsl).
   */
  private output(key: string, shape: readonly number[]): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    const full = this.ws.tensor(key, [size + TRASH]);
    return new Tensor(full.buffer, shape);
  }

  private checkInput(x: Tensor): void {
    const s = x.shape;
    if (s.length !== 4 || s[1] !== this.inChannels || s.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new Error(`Conv2d ${this.name}: input shape [${s}] is not [N, ${this.inChannels}, H, W]`);
    }
  }

  private convCode(): string {
    const t = this.tile;
    this.convSource ??= unrollLoops(specialize(loadWgsl(import.meta.url, "./conv2d_register_block.wgsl"), {
      R4: t.r4,
      TP: t.tp,
      TQ: t.tq,
    }));
    return this.convSource;
  }

  private wgradCode(): string {
    const t = this.wgradTile;
    this.wgradSource ??= unrollLoops(specialize(loadWgsl(import.meta.url, "./conv2d_wgrad_strips.wgsl"), {
      RO4: t.ro4,
      RC: t.rc,
      TQ: t.tq,
    }));
    return this.wgradSource;
  }

  /** Repacks the [out, in, 3, 3] weights into the uniform windows that `conv3x3` reads. */
  private packWeights(rec: Recorder, plan: ConvPlan, transposed: boolean): void {
    // Sized once for both directions (it depends only on the channel counts), so a buffer that an
    // already-recorded dispatch uses is never replaced.
    if (!this.windows) {
      const fwd = convPlan(this.outChannels, this.inChannels, this.tile);
      const bwd = convPlan(this.inChannels, this.outChannels, this.tile);
      const slots = Math.max(fwd.oBlocks * fwd.nWin, bwd.oBlocks * bwd.nWin);
      this.windows = createBuffer(
        this.gpu,
        slots * WINDOW_BYTES,
        `${this.name}.windows`,
        GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      );
    }
    const slots = plan.oBlocks * plan.nWin;
    const bytes = slots * WINDOW_BYTES;
    const total = slots * plan.ciPerWin * 9 * 4 * this.tile.r4;
    rec.dispatch(
      pipeline(this.gpu, { code: this.convCode(), entryPoint: "pack_weights" }),
      [plan.co, plan.ci, plan.ciPerWin, plan.nWin, total, transposed ? 1 : 0],
      [this.store.param(this.weight), new Tensor(this.windows, [bytes / 4])],
      grid1d(total, 64),
    );
  }

  /** One dispatch per (output-channel block, input-channel window); later windows add into y. */
  private runConv(rec: Recorder, plan: ConvPlan, x: Tensor, y: Tensor, bias: Tensor | undefined): void {
    const [n, , h, w] = x.shape;
    const t = this.tile;
    const tilesX = Math.ceil(w / t.tq), tilesY = Math.ceil(h / t.tp);
    const pipe = pipeline(this.gpu, {
      code: this.convCode(),
      entryPoint: "conv3x3",
      constants: { WG: t.wg },
    });
    // Never read when hasBias is 0, but the binding must exist and cover every output channel.
    const biasT = bias ?? this.ws.tensor("nobias", [plan.co]);
    const groups = grid1d(n * tilesX * tilesY, t.wg);
    const yWithTrash = new Tensor(y.buffer, [y.size + TRASH], y.offset);
    for (let ob = 0; ob < plan.oBlocks; ob++) {
      for (let win = 0; win < plan.nWin; win++) {
        const ciBase = win * plan.ciPerWin;
        const ciCount = Math.min(plan.ciPerWin, plan.ci - ciBase);
        const window = new Tensor(this.windows!, [WINDOW_VEC4 * 4], (ob * plan.nWin + win) * WINDOW_BYTES);
        rec.dispatch(
          pipe,
          [
            n,
            plan.ci,
            h,
            w,
            plan.co,
            tilesX,
            tilesY,
            ciBase,
            ciCount,
            ob * 4 * t.r4,
            win === 0 ? 0 : 1,
            bias ? 1 : 0,
          ],
          [x, window, biasT, yWithTrash],
          groups,
        );
      }
    }
  }
}
