// Tuning the encoder's BatchNorms: on a hardware adapter, one tuner task per layer shape times the
// BatchNorm work of a training step (train-mode forward with its ReLU, then the backward with the input
// gradient) with the serial kernels, the reference, and the tree kernels at a few chunk sizes. How many
// values one workgroup should sum is a GPU's trade: small chunks give more workgroups to fill the SMs but
// a longer per-channel fold after them; which side wins depends on the GPU and the layer's shape, so it is
// measured rather than guessed (bench/layers_bench.ts prints the same sizes on hardware adapters).
//
// The work is timed on a scratch layer of the same shape with its own parameters: a train-mode forward
// updates the running statistics, and tuning must not touch the model's. The result, a kernel name per
// layer (`serial`, `tree(chunk=4096)`), goes into the run's manifest and resume state; passing it back as
// `forced` reproduces the same kernels, and so the same bits. Software adapters keep the model's kernels.

import type { Gpu } from "../gpu/device.ts";
import { ParamStore } from "../gpu/params.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { type Tensor, upload } from "../gpu/tensor.ts";
import { Tuner, type TuneResult, type TunerOptions } from "../gpu/tuner.ts";
import { Rng } from "../rng.ts";
import {
  BatchNorm2d,
  type BatchNormKernel,
  batchNormKernelName,
  CHUNK_ELEMENTS,
  parseBatchNormKernel,
  treeChunking,
} from "./batchnorm.ts";
import { type Layer, withInputShapes } from "./layer.ts";

/** Kernel name per BatchNorm layer name. */
export type BatchNormChoices = Record<string, string>;

/** Values per workgroup the tree candidates aim for: 4 to 64 per invocation of its 256. */
export const TREE_CHUNK_CANDIDATES = [1024, 4096, 16384];

/**
 * How far every tuning input lies from its channel's mean, in units of the inputs' spread (about 1.1):
 * see tuningInput.
 */
export const TUNING_INPUT_GAP = 0.1;

/**
 * Random [n, C, H, W] inputs for the BatchNorm tuning in which every value lies at least TUNING_INPUT_GAP
 * from its channel's mean, which is 0: the values of a channel come in pairs v, -v (one triple 2v, -v, -v
 * where a channel holds an odd count) with v = TUNING_INPUT_GAP + |normal|, in random positions.
 *
 * Why: the tuner checks each candidate's output against the serial kernels', and the ReLU fused after
 * the normalisation gates the backward by the sign of each normalised value. With normal inputs, some of
 * the 12.8 million values of the notebook's first BatchNorm at batch 256 (64 channels of 28 x 28) lands
 * within rounding of zero, where kernels that sum in another order may gate it the other way: lavapipe
 * treated as a GPU (2026-12-02) normalised one value to 3.2e-9 with the serial kernels and to 0 with the
 * tree kernels, so the tree kernels' input gradient there was -0.002 against 0.628 and the tuner dropped
 * them as a race or a miscompile, though both agree with float64 wherever the gate is not in doubt. Here
 * every normalised value is at least ~0.09 from zero, far beyond any rounding, so the gates agree and a
 * mismatch is a real fault again.
 */
export function tuningInput(rng: Rng, [n, c, h, w]: readonly number[]): Float32Array {
  const plane = h * w, count = n * plane;
  const out = new Float32Array(n * c * plane);
  const values = new Float64Array(count);
  const magnitude = () => TUNING_INPUT_GAP + Math.abs(rng.normal());
  for (let ch = 0; ch < c; ch++) {
    let k = 0;
    if (count % 2 === 1) {
      // v in f32, so that 2v, -v, -v sum to exactly 0 as the kernels store them. (A channel of one value,
      // which BatchNorm refuses anyway, gets just v.)
      const v = Math.fround(magnitude());
      const odd = count >= 3 ? [2 * v, -v, -v] : [v];
      values.set(odd);
      k = odd.length;
    }
    for (; k < count; k += 2) {
      const v = magnitude();
      values[k] = v;
      values[k + 1] = -v;
    }
    const order = rng.permutation(count);
    for (let i = 0; i < count; i++) {
      const at = order[i], s = Math.floor(at / plane);
      out[(s * c + ch) * plane + (at % plane)] = values[i];
    }
  }
  return out;
}

/** The current kernel of every BatchNorm layer, by name (what a manifest records). */
export function batchNormChoices(layers: readonly Layer[]): BatchNormChoices {
  const out: BatchNormChoices = {};
  for (const l of layers) if (l instanceof BatchNorm2d) out[l.name] = batchNormKernelName(l.kernels);
  return out;
}

/** Sets every BatchNorm's kernel from recorded choices (throws naming the layer when one is missing). */
export function applyBatchNormChoices(layers: readonly Layer[], choices: BatchNormChoices): void {
  for (const l of layers) {
    if (!(l instanceof BatchNorm2d)) continue;
    const name = choices[l.name];
    if (name === undefined) throw new Error(`recorded BatchNorm kernels have no entry for layer ${l.name}`);
    l.setKernels(parseBatchNormKernel(name));
  }
}

/**
 * The candidates for an [n, C, H, W] input, the reference (serial) first: the tree at each chunk size
 * of TREE_CHUNK_CANDIDATES, leaving out sizes that cut the batch exactly like a smaller one (for 7x7
 * planes at batch 8, every size is one chunk of the whole batch).
 */
export function batchNormCandidates(n: number, hw: number): BatchNormKernel[] {
  const out: BatchNormKernel[] = [{ variant: "serial", chunkElements: CHUNK_ELEMENTS }];
  const seen = new Set<number>();
  for (const chunkElements of TREE_CHUNK_CANDIDATES) {
    const { chunk } = treeChunking(n, hw, chunkElements);
    if (seen.has(chunk)) continue;
    seen.add(chunk);
    out.push({ variant: "tree", chunkElements });
  }
  return out;
}

/**
 * Chooses the kernels of every BatchNorm2d in `layers` (in order; `inputShape` is [N, C, H, W] of the
 * first layer, later shapes follow from each layer's outputShape). `forced` (a resumed run's choices)
 * skips the tuning. Returns the choices and what the tuner did for each task.
 */
export async function tuneBatchNormLayers(
  gpu: Gpu,
  layers: readonly Layer[],
  inputShape: readonly number[],
  opts: TunerOptions & { forced?: BatchNormChoices } = {},
): Promise<{ choices: BatchNormChoices; results: TuneResult[] }> {
  if (opts.forced) {
    applyBatchNormChoices(layers, opts.forced);
    return { choices: batchNormChoices(layers), results: [] };
  }
  const tuner = new Tuner(gpu, opts);
  const results: TuneResult[] = [];
  const rng = new Rng(0xb47c);
  for (const [layer, shape] of withInputShapes(layers, inputShape)) {
    if (layer instanceof BatchNorm2d && tuner.hardware) {
      const result = await tuneBatchNorm(tuner, layer, shape, rng);
      layer.setKernels(parseBatchNormKernel(result.choice));
      results.push(result);
    }
  }
  return { choices: batchNormChoices(layers), results };
}

/** One layer's task, on a scratch BatchNorm2d of the same channels and ReLU fusion, on random inputs. */
async function tuneBatchNorm(
  tuner: Tuner,
  layer: BatchNorm2d,
  shape: number[],
  rng: Rng,
): Promise<TuneResult> {
  const gpu = tuner.gpu;
  const [n, c, h, w] = shape;
  const store = new ParamStore(gpu);
  const bn = new BatchNorm2d(store, `${layer.name} (tuning)`, c, { relu: layer.relu });
  store.finalize();
  const size = shape.reduce((a, b) => a * b, 1);
  const x = upload(gpu, tuningInput(rng, shape), shape);
  const dy = upload(gpu, Float32Array.from({ length: size }, () => rng.normal()), shape);
  const byName = new Map(batchNormCandidates(n, h * w).map((k) => [batchNormKernelName(k), k]));
  let y: Tensor | undefined, dx: Tensor | undefined;
  try {
    return await tuner.choose(
      {
        key: `batchnorm2d train step n=${n} c=${c} h=${h} w=${w} relu=${layer.relu ? 1 : 0}`,
        candidates: [...byName.keys()],
        record(name: string, rec: Recorder) {
          bn.setKernels(byName.get(name)!);
          y = bn.forward(rec, x, true);
          dx = bn.backward(rec, dy, true);
        },
        outputs: () => [y!, dx!, store.grad(bn.weight), store.grad(bn.bias)],
      },
      batchNormKernelName(layer.kernels),
    );
  } finally {
    // The tuner has read every output back, so nothing in flight uses these buffers any more.
    x.buffer.destroy();
    dy.buffer.destroy();
    bn.releaseWorkspace();
  }
}
