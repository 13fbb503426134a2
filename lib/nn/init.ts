// PyTorch's default initialisation, drawn from our own PRNG (dnll.md section 2): Conv2d and Linear
// weights and biases uniform on (-b, b) with b = 1/sqrt(fan_in).

import type { Rng } from "../rng.ts";

export function uniformInit(rng: Rng, n: number, bound: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.range(-bound, bound);
  return out;
}

export function kaimingUniformBound(fanIn: number): number {
  return 1 / Math.sqrt(fanIn);
}

export function constantInit(n: number, value: number): Float32Array {
  return new Float32Array(n).fill(value);
}
