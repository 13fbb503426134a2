// Shader loading and the pipeline cache: each (WGSL source, entry point, override constants) is compiled
// once per device and reused by every layer and every step.

import { type AccuracyMode, accuracyMode, withAccuracy } from "./accuracy.ts";
import type { Gpu } from "./device.ts";

const sources = new Map<string, string>();
/** Shader texts given up front by file name (a browser bundle has no file system; see preloadWgsl). */
const preloaded = new Map<string, string>();

/**
 * Reads a `.wgsl` file that sits next to a module: `loadWgsl(import.meta.url, "../shaders/conv2d.wgsl")`.
 * A file given to `preloadWgsl` is taken from there instead (by its name, e.g. "conv2d.wgsl").
 */
export function loadWgsl(base: string | URL, relative: string): string {
  const url = new URL(relative, base);
  const key = url.href;
  let code = sources.get(key);
  if (code === undefined) {
    const name = url.pathname.slice(url.pathname.lastIndexOf("/") + 1);
    code = preloaded.get(name);
    if (code === undefined) {
      if (typeof Deno === "undefined") {
        throw new Error(`shader ${name} was not preloaded (outside Deno, call preloadWgsl first)`);
      }
      code = Deno.readTextFileSync(url);
    }
    sources.set(key, code);
  }
  return code;
}

/** Makes `loadWgsl` return these texts, keyed by file name, without reading files (browser bundles). */
export function preloadWgsl(files: Record<string, string>): void {
  for (const [name, code] of Object.entries(files)) preloaded.set(name, code);
}

/** URLs of the `.wgsl` files loaded so far in this process (the shader compile test checks coverage). */
export function loadedWgslFiles(): string[] {
  return [...sources.keys()];
}

export interface PipelineSpec {
  /** WGSL source text (usually from `loadWgsl`). */
  code: string;
  entryPoint: string;
  /** WGSL `override` constants, e.g. tile sizes chosen per adapter. */
  constants?: Record<string, number>;
  label?: string;
}

// Pipelines by source text, then by entry point and constants. Two levels rather than one key made of
// all three: the sources are the same string objects every call (cached by loadWgsl and the layers), and
// V8 keeps a string's hash in the string, whereas a key concatenated per call (tens of KB of WGSL) would
// be hashed afresh at every dispatch (about 3 us each, measured).
const caches = new WeakMap<GPUDevice, Map<string, Map<string, GPUComputePipeline>>>();
const specs = new WeakMap<GPUDevice, PipelineSpec[]>();
const modules = new WeakMap<GPUDevice, Map<string, GPUShaderModule>>();

/**
 * What building pipelines has cost this device's host so far: Deno's wgpu compiles a pipeline when it is
 * created (naga, then the driver's compiler: a cold NVIDIA compile of a big unrolled kernel may take
 * seconds, platform.md), so this is the compile time; a browser may compile in the background, and
 * then this is only the part it blocked for.
 */
export interface PipelineBuildStats {
  count: number;
  totalMs: number;
  slowestMs: number;
  /** The slowest pipeline's label (its kernel's name where the caller gave one, else its entry point). */
  slowest: string;
}
const buildStats = new WeakMap<GPUDevice, PipelineBuildStats>();
let accuracy: AccuracyMode | undefined;
const noBuilds = (): PipelineBuildStats => ({ count: 0, totalMs: 0, slowestMs: 0, slowest: "" });

/** The compiled pipeline for a spec, compiled on first use (layout "auto"). */
export function pipeline(gpu: Gpu, spec: PipelineSpec): GPUComputePipeline {
  let cache = caches.get(gpu.device);
  if (!cache) caches.set(gpu.device, cache = new Map());
  const constants = spec.constants ?? {};
  const constKey = Object.keys(constants).sort().map((k) => `${k}=${constants[k]}`).join(",");
  let bySource = cache.get(spec.code);
  if (!bySource) cache.set(spec.code, bySource = new Map());
  const key = `${spec.entryPoint}|${constKey}`;
  let p = bySource.get(key);
  if (!p) {
    const t0 = performance.now();
    let mods = modules.get(gpu.device);
    if (!mods) modules.set(gpu.device, mods = new Map());
    let module = mods.get(spec.code);
    if (!module) {
      // Tests may swap in the least accurate exp, log and sqrt WGSL allows (accuracy.ts); normally a no-op.
      accuracy ??= accuracyMode();
      const code = withAccuracy(spec.code, accuracy);
      module = gpu.device.createShaderModule({ code, label: spec.label ?? spec.entryPoint });
      mods.set(spec.code, module);
    }
    p = gpu.device.createComputePipeline({
      label: spec.label ?? spec.entryPoint,
      layout: "auto",
      compute: { module, entryPoint: spec.entryPoint, constants },
    });
    bySource.set(key, p);
    const ms = performance.now() - t0;
    const stats = buildStats.get(gpu.device) ?? noBuilds();
    stats.count++;
    stats.totalMs += ms;
    if (ms > stats.slowestMs) Object.assign(stats, { slowestMs: ms, slowest: spec.label ?? spec.entryPoint });
    buildStats.set(gpu.device, stats);
    let built = specs.get(gpu.device);
    if (!built) specs.set(gpu.device, built = []);
    built.push({ ...spec, constants });
  }
  return p;
}

/** Every distinct pipeline built on this device so far, as built (source text after specialisation). */
export function builtPipelines(gpu: Gpu): PipelineSpec[] {
  return [...(specs.get(gpu.device) ?? [])];
}

/** Pipelines built on this device so far and the host time they took (see PipelineBuildStats). */
export function pipelineBuildStats(gpu: Gpu): PipelineBuildStats {
  return { ...(buildStats.get(gpu.device) ?? noBuilds()) };
}
