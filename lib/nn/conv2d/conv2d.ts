// Conv2d with a 3x3 kernel, padding 1, stride 1 (the encoder's only convolution), NCHW: the launcher.
//
// Each pass (forward, input gradient, weight + bias gradient) runs one of the kernel variants listed in
// kernels.ts, one WGSL file per family in this folder, each with a header saying where it wins. Software
// adapters get register-block kernels sized by hand (Mesa's llvmpipe and lavapipe big blocks, SwiftShader
// GPU-sized ones); hardware adapters start from the implicit-GEMM ones and lib/gpu/tuner.ts picks per
// layer shape (see tune.ts). The
// parameters stay in PyTorch's layout ([out, in, 3, 3] and [out]) in the flat parameter buffer.

import type { Gpu } from "../../gpu/device.ts";
import type { ParamStore, ParamView } from "../../gpu/params.ts";
import { loadWgsl, pipeline } from "../../gpu/pipelines.ts";
import { grid1d, type Recorder } from "../../gpu/recorder.ts";
import { unrollLoops } from "../../gpu/unroll.ts";
import { createBuffer, Tensor, Workspace } from "../../gpu/tensor.ts";
import type { Rng } from "../../rng.ts";
import { kaimingUniformBound, uniformInit } from "../init.ts";
import type { Layer } from "../layer.ts";
import { vec4Binding } from "../relu.ts";
import {
  checkKernel,
  type ConvKernel,
  type ConvKernels,
  type ConvTile,
  defaultKernels,
  type DirectTile,
  igemmConstants,
  type IgemmTile,
  kernelName,
  splitkConstants,
  type SplitkTile,
  splitReduction,
  UNTILED_ENTRY_TILE,
  vec4GemmConstants,
  type WgradTile,
  workgroupBytes,
} from "./kernels.ts";
import { recordWinogradConv, recordWinogradWeightGrad, type WinogradLayer } from "./winograd.ts";

export * from "./kernels.ts";

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

/** Shared WGSL appended to the kernel files that use it: im2col3x3.wgsl's gather, gemm_vec4_tiles.wgsl's loop. */
const APPENDED: Record<string, string[]> = {
  "./conv2d_igemm_tiled.wgsl": ["./im2col3x3.wgsl"],
  "./conv2d_igemm_tapslice.wgsl": ["./im2col3x3.wgsl", "./gemm_vec4_tiles.wgsl"],
  "./conv2d_wgrad_splitk.wgsl": ["./im2col3x3.wgsl"],
  "./conv2d_winograd_f2x2.wgsl": ["./winograd_common.wgsl", "./gemm_vec4_tiles.wgsl"],
  "./conv2d_wgrad_winograd_f2x2.wgsl": ["./winograd_common.wgsl", "./gemm_vec4_tiles.wgsl"],
};

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
  private kernelChoice: ConvKernels;
  private gpu: Gpu;
  private ws: Workspace;
  private windows?: GPUBuffer;
  private windowSlots = 0;
  private x?: Tensor;
  private sources = new Map<string, string>();
  /**
   * vec4 paths with the same values, sums and bits as the scalar ones, taken where the shape allows:
   * igemm_tiled's forward reads its weights as vec4s (conv_igemm_vec4w), wgrad_splitk its workgroup tiles
   * (wgrad_splitk_vec4). false forces the scalar paths (tests compare the bits).
   */
  vec4 = true;
  /** The most 2x2 output tiles one Winograd chunk takes (below the scratch bound: tests force chunks). */
  winogradChunkTiles = Infinity;

  constructor(
    private store: ParamStore,
    readonly name: string,
    readonly inChannels: number,
    readonly outChannels: number,
    rng: Rng,
    kernels?: Partial<ConvKernels>,
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
    // llvmpipe/lavapipe (through wgpu or Dawn), SwiftShader (a browser) and GPUs each start from their
    // own set (kernels.ts, `defaultKernels`, with the measurements behind each).
    const base = defaultKernels(store.gpu.report, inChannels);
    this.kernelChoice = base;
    this.setKernels({ ...base, ...kernels });
  }

  /** The weight and bias gradients in the store (what backwardParams writes). */
  gradTensors(): { weight: Tensor; bias: Tensor } {
    return { weight: this.store.grad(this.weight), bias: this.store.grad(this.bias) };
  }

  /** The kernel of each pass (what a run's manifest records). */
  get kernels(): ConvKernels {
    return this.kernelChoice;
  }

  /** Chooses the kernels of the following recordings (the tuner's and a resumed run's hook). */
  setKernels(k: ConvKernels): void {
    const limit = this.gpu.limits.maxComputeWorkgroupStorageSize;
    for (const kernel of [k.forward, k.inputGrad, k.weightGrad]) {
      checkKernel(kernel);
      if (workgroupBytes(kernel) > limit) {
        throw new Error(
          `Conv2d ${this.name}: ${kernelName(kernel)} needs ${workgroupBytes(kernel)} bytes of workgroup ` +
            `memory, this adapter allows ${limit}`,
        );
      }
    }
    if (k.inputGrad.family === "direct_1ch") {
      throw new Error(`Conv2d ${this.name}: direct_1ch computes the forward pass only`);
    }
    if (k.forward.family === "direct_1ch" && this.inChannels !== 1) {
      throw new Error(
        `Conv2d ${this.name}: direct_1ch needs 1 input channel, this layer has ${this.inChannels}`,
      );
    }
    this.kernelChoice = { ...k };
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
    this.runConv(rec, this.kernelChoice.forward, x, y, false);
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
    this.runConv(rec, this.kernelChoice.inputGrad, dy, dx, true);
    return dx;
  }

  /**
   * Overwrites the weight and bias gradients in the store from the saved input and dy (backward's
   * first half; public for benchmarks).
   */
  backwardParams(rec: Recorder, dy: Tensor): void {
    const x = this.saved(dy);
    const k = this.kernelChoice.weightGrad;
    if (k.family === "wgrad_strips") this.wgradStrips(rec, k.tile, x, dy);
    else if (k.family === "wgrad_splitk") this.wgradSplitk(rec, k.tile, x, dy);
    else recordWinogradWeightGrad(this.winogradLayer(), rec, k.tile, x, dy);
  }

  /**
   * The WGSL of a kernel file with its block sizes substituted and its marked loops unrolled; the
   * shared parts it uses appended (APPENDED).
   */
  private code(file: string, values: Record<string, number>): string {
    const key = `${file}|${JSON.stringify(values)}`;
    let code = this.sources.get(key);
    if (code === undefined) {
      let source = loadWgsl(import.meta.url, file);
      for (const part of APPENDED[file] ?? []) source += `\n${loadWgsl(import.meta.url, part)}`;
      code = unrollLoops(specialize(source, values));
      this.sources.set(key, code);
    }
    return code;
  }

  /** y = conv(x) (forward, with bias) or dx = conv^T(dy) (transposed, no bias). */
  private runConv(rec: Recorder, k: ConvKernel, x: Tensor, y: Tensor, transposed: boolean): void {
    const [cin, cout] = transposed
      ? [this.outChannels, this.inChannels]
      : [this.inChannels, this.outChannels];
    const bias = transposed ? undefined : this.store.param(this.bias);
    if (k.family === "register_block") {
      const plan = convPlan(cout, cin, k.tile);
      this.packWeights(rec, plan, k.tile, transposed);
      this.runRegisterBlock(rec, plan, k.tile, x, y, bias);
    } else if (k.family === "igemm_tiled" || k.family === "igemm_tapslice") {
      this.runIgemm(rec, k, x, y, cin, cout, transposed);
    } else if (k.family === "winograd_f2x2") {
      recordWinogradConv(this.winogradLayer(), rec, k.tile, { x, y, cin, cout, transposed });
    } else this.runDirect1ch(rec, k.tile, x, y);
  }

  /** The implicit GEMMs (igemm_tiled, igemm_tapslice): the same bindings, grid and parameters. */
  private runIgemm(
    rec: Recorder,
    k: Extract<ConvKernel, { family: "igemm_tiled" | "igemm_tapslice" }>,
    x: Tensor,
    y: Tensor,
    cin: number,
    cout: number,
    transposed: boolean,
  ): void {
    const [n, , h, w] = x.shape;
    const t: IgemmTile = k.tile;
    const tapslice = k.family === "igemm_tapslice";
    const code = k.family === "igemm_tapslice"
      ? this.code("./conv2d_igemm_tapslice.wgsl", vec4GemmConstants(k.tile))
      : this.code("./conv2d_igemm_tiled.wgsl", igemmConstants(k.tile));
    const m = n * h * w;
    const groups = [Math.ceil(m / t.bm), Math.ceil(cout / t.bn), 1];
    if (groups[0] > 65535) throw new Error(`Conv2d ${this.name}: ${m} output pixels exceed one igemm grid`);
    // Never read when hasBias is 0, but the binding must exist and cover every output channel.
    const biasT = transposed ? this.ws.tensor("nobias", [cout]) : this.store.param(this.bias);
    // igemm_tiled's vec4 weight loads: the forward's weight rows are k-contiguous; whole vec4s need K and
    // BK % 4 == 0.
    const vec4w = !tapslice && this.vec4 && !transposed && (cin * 9) % 4 === 0 && t.bk % 4 === 0;
    const weight = this.store.param(this.weight);
    const params = [n, cin, h, w, cout, m, cin * 9, transposed ? 1 : 0, transposed ? 0 : 1];
    if (tapslice) {
      // The weights in B's own order first (conv_tapslice_pack), one buffer per pass.
      const packed = this.ws.tensor(transposed ? "tapsliceInputGrad" : "tapsliceForward", [9 * cin * cout]);
      rec.dispatch(
        pipeline(this.gpu, {
          code: this.code("./conv2d_igemm_tapslice.wgsl", vec4GemmConstants(UNTILED_ENTRY_TILE)),
          entryPoint: "conv_tapslice_pack",
        }),
        params,
        [weight, packed],
        grid1d(9 * cin * cout, 64),
      );
      rec.dispatch(
        pipeline(this.gpu, { code, entryPoint: "conv_tapslice", label: kernelName(k) }),
        params,
        [x, packed, biasT, y],
        groups,
      );
      return;
    }
    rec.dispatch(
      pipeline(this.gpu, {
        code,
        entryPoint: vec4w ? "conv_igemm_vec4w" : "conv_igemm",
        label: `${kernelName(k)}${vec4w ? " vec4w" : ""}`,
      }),
      params,
      [x, vec4w ? vec4Binding(weight, `${this.name} weight`) : weight, biasT, y],
      groups,
    );
  }

  private runDirect1ch(rec: Recorder, t: DirectTile, x: Tensor, y: Tensor): void {
    const [n, , h, w] = x.shape;
    const code = this.code("./conv2d_direct_1ch.wgsl", { CB: t.cb, WG: t.wg });
    const pixels = n * h * w;
    const [gx, gy] = grid1d(pixels, t.wg);
    rec.dispatch(
      pipeline(this.gpu, { code, entryPoint: "conv_direct_1ch" }),
      [n, h, w, this.outChannels, pixels],
      [x, this.store.param(this.weight), this.store.param(this.bias), y],
      [gx, gy, Math.ceil(this.outChannels / t.cb)],
    );
  }

  private wgradSplitk(rec: Recorder, t: SplitkTile, x: Tensor, dy: Tensor): void {
    const [n, , h, w] = x.shape;
    const code = this.code("./conv2d_wgrad_splitk.wgsl", splitkConstants(t));
    const m = n * h * w, k = this.inChannels * 9, cols = k + 1;
    const tiles = Math.ceil(this.outChannels / t.bm) * Math.ceil(cols / t.bn);
    const { splitLength: chunk, splits } = splitReduction(m, t, tiles, 65535);
    const part = this.ws.tensor("wgradPartial", [splits * this.outChannels * cols]);
    // 4 x 4 pieces read as vec4s (the same bits) when the register block is made of them.
    const vec4 = this.vec4 && t.tm % 4 === 0 && t.tn % 4 === 0;
    rec.dispatch(
      pipeline(this.gpu, {
        code,
        entryPoint: vec4 ? "wgrad_splitk_vec4" : "wgrad_splitk",
        label: `${kernelName({ family: "wgrad_splitk", tile: t })}${vec4 ? " vec4" : ""}`,
      }),
      [n, this.inChannels, h, w, this.outChannels, m, k, splits, chunk],
      [x, dy, part],
      [Math.ceil(this.outChannels / t.bm), Math.ceil(cols / t.bn), splits],
    );
    rec.dispatch(
      pipeline(this.gpu, {
        code: this.code("./conv2d_wgrad_splitk.wgsl", splitkConstants({ ...UNTILED_ENTRY_TILE, groups: 1 })),
        entryPoint: "wgrad_splitk_reduce",
      }),
      [this.outChannels, k, splits],
      [part, this.store.grad(this.weight), this.store.grad(this.bias)],
      grid1d(this.outChannels * cols, 64),
    );
  }

  private wgradStrips(rec: Recorder, t: WgradTile, x: Tensor, dy: Tensor): void {
    const [n, , h, w] = x.shape;
    const ro = 4 * t.ro4;
    const oBlocks = Math.ceil(this.outChannels / ro);
    const cBlocks = Math.ceil(this.inChannels / t.rc);
    const stripsX = Math.ceil(w / t.tq);
    const nStrips = n * stripsX;
    const splits = Math.max(1, Math.min(nStrips, Math.ceil(t.lanes / (oBlocks * cBlocks))));
    const partStride = t.rc * 9 * ro + ro;
    const part = this.ws.tensor("wgradPartial", [oBlocks * cBlocks * splits * partStride]);
    const code = this.code("./conv2d_wgrad_strips.wgsl", { RO4: t.ro4, RC: t.rc, TQ: t.tq });
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

  /** What the Winograd launchers (winograd.ts) need of this layer (the store's tensors as of now). */
  private winogradLayer(): WinogradLayer {
    return {
      gpu: this.gpu,
      code: (file, values) => this.code(file, values),
      ws: this.ws,
      chunkTiles: this.winogradChunkTiles,
      weight: this.store.param(this.weight),
      bias: this.store.param(this.bias),
      dweight: this.store.grad(this.weight),
      dbias: this.store.grad(this.bias),
    };
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
   * stores of out-of-image pixels there (see conv2d_register_block.wgsl).
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

  private registerBlockCode(t: ConvTile): string {
    return this.code("./conv2d_register_block.wgsl", { R4: t.r4, TP: t.tp, TQ: t.tq });
  }

  /** Repacks the [out, in, 3, 3] weights into the uniform windows that `conv3x3` reads. */
  private packWeights(rec: Recorder, plan: ConvPlan, tile: ConvTile, transposed: boolean): void {
    // Sized for both directions (it depends only on the channel counts), and only ever grown between
    // recordings, so a buffer that an already-recorded dispatch uses is never replaced.
    const fwd = convPlan(this.outChannels, this.inChannels, tile);
    const bwd = convPlan(this.inChannels, this.outChannels, tile);
    const need = Math.max(fwd.oBlocks * fwd.nWin, bwd.oBlocks * bwd.nWin);
    if (!this.windows || need > this.windowSlots) {
      this.windows = createBuffer(
        this.gpu,
        need * WINDOW_BYTES,
        `${this.name}.windows`,
        GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      );
      this.windowSlots = need;
    }
    const slots = plan.oBlocks * plan.nWin;
    const bytes = slots * WINDOW_BYTES;
    const total = slots * plan.ciPerWin * 9 * 4 * tile.r4;
    rec.dispatch(
      pipeline(this.gpu, { code: this.registerBlockCode(tile), entryPoint: "pack_weights" }),
      [plan.co, plan.ci, plan.ciPerWin, plan.nWin, total, transposed ? 1 : 0],
      [this.store.param(this.weight), new Tensor(this.windows, [bytes / 4])],
      grid1d(total, 64),
    );
  }

  /** One dispatch per (output-channel block, input-channel window); later windows add into y. */
  private runRegisterBlock(
    rec: Recorder,
    plan: ConvPlan,
    t: ConvTile,
    x: Tensor,
    y: Tensor,
    bias: Tensor | undefined,
  ): void {
    const [n, , h, w] = x.shape;
    const tilesX = Math.ceil(w / t.tq), tilesY = Math.ceil(h / t.tp);
    const pipe = pipeline(this.gpu, {
      code: this.registerBlockCode(t),
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
