// Reads a model's architecture from the tensors of a checkpoint (ours or one written by PyTorch), so
// `deno task evaluate` needs nothing but the file.

import type { HostTensor } from "../gpu/params.ts";
import type { HeadKind } from "../model.ts";

export interface Architecture {
  widths: number[];
  latentDim: number;
  head: HeadKind;
  components: number;
  numClasses: number;
}

const CONV_INDICES = [0, 3, 7, 10, 14, 17];

export function architectureFromTensors(tensors: HostTensor[], file: string): Architecture {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const need = (name: string, rank: number) => {
    const t = byName.get(name);
    if (!t) throw new Error(`${file}: missing tensor ${name} (not a checkpoint of the notebook's model)`);
    if (t.shape.length !== rank) {
      throw new Error(`${file}: ${name} has rank ${t.shape.length}, expected ${rank}`);
    }
    return t.shape;
  };
  const widths = CONV_INDICES.map((i) => need(`encoder.features.${i}.weight`, 4)[0]);
  const proj = need("encoder.proj.weight", 2);
  const latentDim = proj[0];
  if (byName.has("head.mixture_logits")) {
    const [C, K] = need("head.mixture_logits", 2);
    return { widths, latentDim, head: "mda", components: K, numClasses: C };
  }
  if (byName.has("head.log_cov") && byName.has("head.mu")) {
    const [C] = need("head.mu", 2);
    return { widths, latentDim, head: "lda", components: 1, numClasses: C };
  }
  if (byName.has("head.weight")) {
    const [C] = need("head.weight", 2);
    return { widths, latentDim, head: "softmax", components: 1, numClasses: C };
  }
  throw new Error(
    `${file}: no head tensors (expected head.mu/head.mixture_logits, head.log_cov or head.weight)`,
  );
}
