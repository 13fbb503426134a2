// Tuning the encoder's convolutions: one tuner task per (layer shape, pass), run on random inputs of the
// layer's real size before training starts. The result, a kernel name per layer and pass, goes into the
// run's manifest and resume state; passing it back as `forced` reproduces the same kernels (and bits).

import type { Gpu } from "../../gpu/device.ts";
import { Recorder } from "../../gpu/recorder.ts";
import { type Tensor, upload } from "../../gpu/tensor.ts";
import { Tuner, type TuneResult, type TunerOptions } from "../../gpu/tuner.ts";
import { Rng } from "../../rng.ts";
import { type Layer, withInputShapes } from "../layer.ts";
import { Conv2d } from "./conv2d.ts";
import {
  type ConvKernels,
  type ConvPass,
  convTaskKey,
  gpuCandidates,
  kernelName,
  parseKernel,
  softwareKernels,
} from "./kernels.ts";

/** Kernel names per conv layer name and pass. */
export type ConvChoices = Record<string, Record<ConvPass, string>>;

const PASSES: ConvPass[] = ["forward", "inputGrad", "weightGrad"];

/** The current kernels of every conv layer, by name (what a manifest records). */
export function convChoices(layers: readonly Layer[]): ConvChoices {
  const out: ConvChoices = {};
  for (const l of layers) {
    if (l instanceof Conv2d) {
      const k = l.kernels;
      out[l.name] = {
        forward: kernelName(k.forward),
        inputGrad: kernelName(k.inputGrad),
        weightGrad: kernelName(k.weightGrad),
      };
    }
  }
  return out;
}

/** Sets every conv layer's kernels from recorded choices (throws naming the layer when one is missing). */
export function applyConvChoices(layers: readonly Layer[], choices: ConvChoices): void {
  for (const l of layers) {
    if (!(l instanceof Conv2d)) continue;
    const c = choices[l.name];
    if (!c) throw new Error(`recorded conv kernels have no entry for layer ${l.name}`);
    l.setKernels({
      forward: parseKernel("forward", c.forward),
      inputGrad: parseKernel("inputGrad", c.inputGrad),
      weightGrad: parseKernel("weightGrad", c.weightGrad),
    });
  }
}

/**
 * Chooses the kernels of every Conv2d in `layers` (in order; `inputShape` is [N, C, H, W] of the first
 * layer, later shapes follow from each layer's outputShape). `forced` (a resumed run's choices) skips
 * the tuning. The first layer's input gradient is tuned only with `firstInputGrad`: an encoder never
 * computes it (Encoder.backward), so it keeps its untuned kernel. `winograd: false` leaves the Winograd
 * kernels out of the candidates (their sums round differently from a direct convolution's, within the
 * same error: a user comparing bits with the direct kernels' may want none). Returns the choices and what
 * the tuner did for each task.
 */
export async function tuneConvLayers(
  gpu: Gpu,
  layers: readonly Layer[],
  inputShape: readonly number[],
  opts: TunerOptions & { forced?: ConvChoices; firstInputGrad?: boolean; winograd?: boolean } = {},
): Promise<{ choices: ConvChoices; results: TuneResult[] }> {
  if (opts.forced) {
    applyConvChoices(layers, opts.forced);
    return { choices: convChoices(layers), results: [] };
  }
  const tuner = new Tuner(gpu, opts);
  const results: TuneResult[] = [];
  const rng = new Rng(0x7e57);
  for (const [i, [layer, [n, c, h, w]]] of withInputShapes(layers, inputShape).entries()) {
    if (layer instanceof Conv2d && tuner.hardware) {
      const passes = i > 0 || opts.firstInputGrad ? PASSES : PASSES.filter((p) => p !== "inputGrad");
      const random = (s: number[]) =>
        upload(gpu, Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => rng.normal()), s);
      const x = random([n, c, h, w]), dy = random([n, layer.outChannels, h, w]);
      try {
        results.push(...await tuneConv(tuner, layer, x, dy, passes, opts.winograd ?? true));
      } finally {
        x.buffer.destroy();
        dy.buffer.destroy();
      }
    }
  }
  return { choices: convChoices(layers), results };
}

/** The passes of one layer, each tuned with the others at their current kernels. */
async function tuneConv(
  tuner: Tuner,
  conv: Conv2d,
  x: Tensor,
  dy: Tensor,
  passes: readonly ConvPass[],
  winograd: boolean,
): Promise<TuneResult[]> {
  const [n, c, h, w] = x.shape;
  const soft = softwareKernels(conv.inChannels);
  const results: TuneResult[] = [];
  let y: Tensor | undefined, dx: Tensor | undefined;
  // The backward passes read the input saved by a forward: record one (never submitted) to save x.
  const saveInput = new Recorder(tuner.gpu);
  conv.forward(saveInput, x, true);
  saveInput.destroy();
  // Candidates whose workgroup tiles the adapter cannot hold are left out (a browser's adapter may offer
  // only WebGPU's default 16 KiB).
  const maxBytes = tuner.gpu.limits.maxComputeWorkgroupStorageSize;
  for (const pass of passes) {
    const kernels = gpuCandidates(pass, conv.inChannels, maxBytes, winograd);
    const byName = new Map(kernels.map((k) => [kernelName(k), k]));
    const use = (name: string): ConvKernels => ({ ...conv.kernels, [pass]: byName.get(name)! });
    const record = (name: string, rec: Recorder) => {
      conv.setKernels(use(name));
      if (pass === "forward") y = conv.forward(rec, x, true);
      else if (pass === "inputGrad") dx = conv.backwardInput(rec, dy);
      else conv.backwardParams(rec, dy);
    };
    const before = conv.kernels;
    const result = await tuner.choose(
      {
        key: convTaskKey({ pass, n, ci: c, co: conv.outChannels, h, w }),
        candidates: [...byName.keys()],
        record,
        outputs: () =>
          pass === "forward"
            ? [y!]
            : pass === "inputGrad"
            ? [dx!]
            : [conv.gradTensors().weight, conv.gradTensors().bias],
      },
      kernelName(soft[pass]),
    );
    conv.setKernels({ ...before, [pass]: parseKernel(pass, result.choice) });
    results.push(result);
  }
  return results;
}
