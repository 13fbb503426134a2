// Shared test helpers: random data from our PRNG, closeness checks with useful messages, and a central
// finite-difference gradient in float64.

import type { Gpu } from "../lib/gpu/device.ts";
import { adapterKey, type TunedEntry, TUNING_FORMAT } from "../lib/gpu/tuner.ts";
import { Rng } from "../lib/rng.ts";

/**
 * A test's seed with DNLL_TEST_SEED (a non-negative integer) mixed in, so the same tests can run on fresh
 * random inputs (tools/device/run.sh runs the kernel tests twice so); unset, the seed is returned as written.
 */
export function testSeed(seed: number): number {
  // In a browser (deno task test:browser) there is no environment: the seeds stay as written.
  const raw = typeof Deno === "undefined" ? undefined : Deno.env.get("DNLL_TEST_SEED");
  if (raw === undefined || raw === "") return seed;
  const extra = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(extra)) {
    throw new Error(`DNLL_TEST_SEED must be a non-negative integer, got "${raw}"`);
  }
  // A shift mod 2^52: one-to-one in `seed`, so distinct seeds stay distinct for any DNLL_TEST_SEED.
  return Number((BigInt(seed) + BigInt(extra) * 0x9e3779b97f4a7cn) % (1n << 52n));
}

/** Rng seeded through testSeed: the kernel tests import it as their Rng. */
export class TestRng extends Rng {
  constructor(seed: number) {
    super(testSeed(seed));
  }
}

export function randn(rng: Rng, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scale;
  return out;
}

export function randu(rng: Rng, n: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.range(lo, hi);
  return out;
}

/**
 * Asserts |actual - expected| <= atol + rtol * |expected| element-wise, and reports the worst element.
 */
/** A few roundings' worth of f32 error per unit of `condition` in assertClose: 16 half-ulps, 2^-20. */
export const F32_ROUNDING = 16 * 2 ** -24;

export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { rtol = 1e-5, atol = 1e-6, what = "value", condition }: {
    rtol?: number;
    atol?: number;
    what?: string;
    /**
     * Per element, the size of the f32 rounding error the computation cannot avoid (e.g. the sum of the
     * sizes of the terms it adds, weighted by the exponents behind them: test/reference/heads.ts
     * mdaErrorScale); adds F32_ROUNDING times it to that element's tolerance.
     */
    condition?: ArrayLike<number>;
  } = {},
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    const tol = atol + rtol * Math.abs(e) + (condition ? F32_ROUNDING * condition[i] : 0);
    const err = Math.abs(a - e);
    if (!(err <= tol)) { // catches NaN too
      const excess = Number.isNaN(err) ? Infinity : err / tol;
      if (excess > worstExcess || worst < 0) {
        worst = i;
        worstExcess = excess;
      }
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
        `(rtol ${rtol}, atol ${atol}${condition ? `, condition ${condition[worst]}` : ""}, ` +
        `${worstExcess.toFixed(1)}x over tolerance)`,
    );
  }
}

/**
 * Central finite differences of a scalar function f (float64) at x, for the listed indices (default
 * all): df/dx[i] ~ (f(x + h e_i) - f(x - h e_i)) / 2h.
 */
export function finiteDifference(
  f: (x: Float64Array) => number,
  x: Float64Array,
  h = 1e-6,
  indices?: number[],
): Float64Array {
  const g = new Float64Array(x.length);
  const idx = indices ?? [...x.keys()];
  for (const i of idx) {
    const old = x[i];
    x[i] = old + h;
    const fp = f(x);
    x[i] = old - h;
    const fm = f(x);
    x[i] = old;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/** A fixed random vector used to turn a tensor output into a scalar loss: L = sum(out * weights). */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function toF64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a as ArrayLike<number>);
}

/** The figure files of a finished run with an MDA head (K > 1), in the order of the run's page. */
export const MDA_RUN_FIGURES = [
  "accuracy.svg",
  "loss.svg",
  "latent.svg",
  "components.svg",
  "reliability.svg",
  "confidence.svg",
];

/**
 * Runs `deno ARGS` (this Deno) in the repository root, colours off, and returns its exit code and output:
 * for tests of what a command prints.
 */
export async function runDeno(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    // A URL, not its pathname (which keeps a space as %20); no node:url: the kernel tests that import this
    // file also run bundled in a browser (tools/browser_tests.ts), which has no stand-in for it.
    cwd: new URL("..", import.meta.url),
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** Writes a tuning file (lib/gpu/tuner.ts's format) holding `entries` for this adapter, its folder created. */
export async function writeTuningFile(
  path: string,
  gpu: Gpu,
  entries: Record<string, TunedEntry>,
): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(
    path,
    JSON.stringify({ format: TUNING_FORMAT, adapters: { [adapterKey(gpu)]: entries } }),
  );
}

let tempDirs: string[] | undefined;

/**
 * A new folder in the system's temporary folder, removed when this test file's process ends, whether its
 * tests passed or not: a run of the suite leaves nothing behind there (it used to leave ~20 MB a run).
 */
export async function tempDir(prefix: string): Promise<string> {
  if (!tempDirs) {
    const dirs: string[] = tempDirs = [];
    globalThis.addEventListener("unload", () => {
      for (const dir of dirs) {
        try {
          Deno.removeSync(dir, { recursive: true });
        } catch { /* removed by the test, or still held: nothing more to do at exit */ }
      }
    });
  }
  const dir = await Deno.makeTempDir({ prefix });
  tempDirs.push(dir);
  return dir;
}
