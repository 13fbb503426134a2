// The contract every encoder layer follows.
//
// A layer is built once with its ParamStore (for trainable parameters and running state) and keeps in
// its own Workspace whatever its backward needs from the last forward. Shapes are NCHW, f32, with the
// batch size taken from the input tensor's shape at every call, so one model serves batches of 256, the
// last partial batch and evaluation chunks without rebuilding.

import type { Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";

export interface Layer {
  /** PyTorch module path prefix, e.g. "encoder.features.0". */
  readonly name: string;
  /** Output shape (without the batch dimension) for an input shape (without the batch dimension). */
  outputShape(inShape: readonly number[]): number[];
  /** Records the forward pass. `training` selects BatchNorm's batch statistics and running updates. */
  forward(rec: Recorder, x: Tensor, training: boolean): Tensor;
  /**
   * Records the backward pass for the last forward: overwrites this layer's parameter gradients (each
   * parameter is used once, so nothing accumulates) and returns dL/dx, or undefined when
   * `needInputGrad` is false (the first layer).
   */
  backward(rec: Recorder, dy: Tensor, needInputGrad: boolean): Tensor | undefined;
}

/**
 * Each layer with the [N, C, H, W] input it gets in a forward through `layers` in order, from the first
 * layer's `inputShape` (what a tuner needs to time a layer at its real size).
 */
export function withInputShapes(
  layers: readonly Layer[],
  inputShape: readonly number[],
): [Layer, number[]][] {
  const [n] = inputShape;
  let shape = inputShape.slice(1);
  return layers.map((layer) => {
    const input = [n, ...shape];
    shape = layer.outputShape(shape);
    return [layer, input];
  });
}
