// Which kernels the reductions over the batch use: BatchNorm's statistics and gradient sums, the global
// average pool, the encoder's projection (Linear) and the heads' parameter gradients.
//
//   "serial"  one invocation per output value, summing its inputs in a plain loop (BatchNorm and the pool:
//             4 planes per invocation). Few, long invocations and no barriers: what llvmpipe and lavapipe
//             run fastest.
//   "tree"    the sums spread over many workgroups: each workgroup sums a slice with consecutive lanes on
//             consecutive addresses and folds its lanes with a tree in workgroup memory, and the
//             element-wise passes take one vec4 per invocation, so that batch 256 fills a large GPU. (The
//             global pool's sums are only H*W = 49 values long: there, one invocation per plane.)
//
// Both sum in an order fixed by the shapes alone (same inputs, same bits); they differ from each other only
// by fp32 rounding. Like the conv kernels (lib/nn/conv2d), the choice follows the adapter: software
// adapters keep the serial kernels (and so the bits in test/expected/bits.json), hardware adapters get the
// tree kernels. BatchNorm's tree has a size to tune, the values each workgroup sums: on a GPU a run times
// it per layer shape, against the serial kernels, with the same tuner as the conv tiles
// (lib/nn/batchnorm_tune.ts; manifest: batchnorm_kernels). The pool, the projection and the heads are
// not timed: one GPU variant each, with no size to choose. A run's manifest records their
// variant (reduction_kernels); tests and benchmarks force either one through the layers' `variant` option
// or Model's `reductions`. Max pooling has one kernel for every adapter (see encoder.ts).

import type { Gpu } from "./device.ts";
import { loadWgsl } from "./pipelines.ts";

export type ReductionVariant = "serial" | "tree";

export const REDUCTION_VARIANTS: readonly ReductionVariant[] = ["serial", "tree"];

/** The variant for an adapter: serial on software adapters, tree on hardware ones. */
export function defaultReductionVariant(gpu: Gpu): ReductionVariant {
  return gpu.report.isSoftware ? "serial" : "tree";
}

/** `variant` when given (checked), else the adapter's default. */
export function reductionVariant(
  gpu: Gpu,
  variant: ReductionVariant | undefined,
  who: string,
): ReductionVariant {
  if (variant === undefined) return defaultReductionVariant(gpu);
  if (!REDUCTION_VARIANTS.includes(variant)) {
    throw new Error(
      `${who}: reduction variant must be one of ${REDUCTION_VARIANTS.join(", ")}, got ${variant}`,
    );
  }
  return variant;
}

/**
 * A module's WGSL with tree_sum (lib/shaders/tree_sum.wgsl) appended after it: the module declares
 * `const WG` and `alias TreeValue`, the snippet the workgroup array and the fixed-order tree over it.
 */
export function withTreeSum(code: string): string {
  // The same string object every call, so that the pipeline cache finds it without hashing it again.
  let joined = withTreeSumCache.get(code);
  if (joined === undefined) {
    joined = `${code}\n${loadWgsl(import.meta.url, "../shaders/tree_sum.wgsl")}`;
    withTreeSumCache.set(code, joined);
  }
  return joined;
}

const withTreeSumCache = new Map<string, string>();
