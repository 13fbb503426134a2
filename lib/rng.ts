// Our own seeded PRNG, so that a seed means the same numbers on every machine and every run:
// xoshiro128** (Blackman & Vigna) seeded through splitmix32. All arithmetic is 32-bit integer math
// (Math.imul, >>> 0); floats come from the top 24 bits, so they are exact in float32 too.

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) >>> 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

export type RngState = [number, number, number, number];

export class Rng {
  private s: Uint32Array;

  /** `seed` is any integer in [0, 2^53); different seeds give independent-looking streams. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new Error(`seed must be a non-negative integer, got ${seed}`);
    }
    const st = { s: (seed >>> 0) ^ Math.imul(Math.floor(seed / 0x100000000) >>> 0, 0x27d4eb2d) };
    this.s = new Uint32Array(4);
    for (let i = 0; i < 4; i++) this.s[i] = splitmix32(st);
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }

  /** A new generator for a named purpose (init, shuffle, augmentation), independent of this one's use. */
  fork(stream: number): Rng {
    const r = new Rng(0);
    const st = { s: (this.s[0] ^ Math.imul(stream + 1, 0x9e3779b1)) >>> 0 };
    for (let i = 0; i < 4; i++) r.s[i] = splitmix32(st) ^ this.s[(i + 1) & 3];
    if ((r.s[0] | r.s[1] | r.s[2] | r.s[3]) === 0) r.s[0] = 1;
    return r;
  }

  /** Next raw 32-bit value. */
  u32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 24 random bits. */
  uniform(): number {
    return (this.u32() >>> 8) / 16777216;
  }

  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** Uniform integer in [0, n), without modulo bias (rejection sampling). */
  int(n: number): number {
    if (n <= 0 || n > 0x100000000) throw new Error(`int(n): n out of range: ${n}`);
    const limit = Math.floor(0x100000000 / n) * n;
    let x: number;
    do x = this.u32(); while (x >= limit);
    return x % n;
  }

  /** Standard normal (Box-Muller; one value per call, so the stream is easy to reason about). */
  normal(): number {
    const u1 = (this.u32() + 1) / 4294967297; // (0, 1)
    const u2 = this.uniform();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Fisher-Yates permutation of 0..n-1. */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  /** The generator's state, for checkpoints (resume continues the same stream). */
  getState(): RngState {
    return [this.s[0], this.s[1], this.s[2], this.s[3]];
  }

  setState(state: RngState): void {
    for (let i = 0; i < 4; i++) this.s[i] = state[i] >>> 0;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
