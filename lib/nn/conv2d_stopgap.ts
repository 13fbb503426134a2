// A direct (slow, correct) Conv2d used while the fast implicit-GEMM layer is written; same API.
import type { Gpu } from "../gpu/device.ts";
import type { ParamStore, ParamView } from "../gpu/params.ts";
import { loadWgsl, pipeline } from "../gpu/pipelines.ts";
import { grid1d, type Recorder } from "../gpu/recorder.ts";
import { type Tensor, Workspace } from "../gpu/tensor.ts";
import type { Rng } from "../rng.ts";
import { kaimingUniformBound, uniformInit } from "./init.ts";
import type { Layer } from "./layer.ts";

export class Conv2d implements Layer {
  readonly weight: ParamView;
  readonly bias: ParamView;
  private ws: Workspace;
  private gpu: Gpu;
  private x?: Tensor;

  constructor(
    private store: ParamStore,
    readonly name: string,
    readonly cin: number,
    readonly cout: number,
    rng: Rng,
  ) {
    const bound = kaimingUniformBound(cin * 9);
    this.weight = store.add(`${name}.weight`, [cout, cin, 3, 3], uniformInit(rng, cout * cin * 9, bound));
    this.bias = store.add(`${name}.bias`, [cout], uniformInit(rng, cout, bound));
    this.gpu = store.gpu;
    this.ws = new Workspace(store.gpu, name);
  }

  outputShape(s: readonly number[]): number[] {
    return [this.cout, s[1], s[2]];
  }

  forward(rec: Recorder, x: Tensor): Tensor {
    const [n, , h, w] = x.shape;
    this.x = x;
    const y = this.ws.tensor("y", [n, this.cout, h, w]);
    const code = loadWgsl(import.meta.url, "../shaders/conv2d_stopgap.wgsl");
    rec.dispatch(
      pipeline(this.gpu, { code, entryPoint: "forward" }),
      [n, this.cin, this.cout, h, w],
      [x, this.store.param(this.weight), y, this.store.param(this.bias)],
      grid1d(y.size, 64),
    );
    return y;
  }

  backward(rec: Recorder, dy: Tensor, needInputGrad: boolean): Tensor | undefined {
    const x = this.x!;
    const [n, , h, w] = x.shape;
    const code = loadWgsl(import.meta.url, "../shaders/conv2d_stopgap_backward.wgsl");
    const params = [n, this.cin, this.cout, h, w];
    const p = (e: string) => pipeline(this.gpu, { code, entryPoint: e });
    rec.dispatch(
      p("weight_grad"),
      params,
      [dy, x, this.store.grad(this.weight)],
      grid1d(this.cout * this.cin * 9, 64),
    );
    rec.dispatch(p("bias_grad"), params, [dy, x, this.store.grad(this.bias)], grid1d(this.cout, 64));
    if (!needInputGrad) return undefined;
    const dx = this.ws.tensor("dx", x.shape);
    rec.dispatch(p("input_grad"), params, [dy, this.store.param(this.weight), dx], grid1d(dx.size, 64));
    return dx;
  }
}
