// Shader loading and the pipeline cache: each (WGSL source, entry point, override constants) is compiled
// once per device and reused by every layer and every step.

import type { Gpu } from "./device.ts";

const sources = new Map<string, string>();

/** Reads a `.wgsl` file that sits next to a module: `loadWgsl(import.meta.url, "../shaders/conv2d.wgsl")`. */
export function loadWgsl(base: string | URL, relative: string): string {
  const url = new URL(relative, base);
  const key = url.href;
  let code = sources.get(key);
  if (code === undefined) {
    code = Deno.readTextFileSync(url);
    sources.set(key, code);
  }
  return code;
}

export interface PipelineSpec {
  /** WGSL source text (usually from `loadWgsl`). */
  code: string;
  entryPoint: string;
  /** WGSL `override` constants, e.g. tile sizes chosen per adapter. */
  constants?: Record<string, number>;
  label?: string;
}

const caches = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();
const modules = new WeakMap<GPUDevice, Map<string, GPUShaderModule>>();

/** The compiled pipeline for a spec, compiled on first use (layout "auto"). */
export function pipeline(gpu: Gpu, spec: PipelineSpec): GPUComputePipeline {
  let cache = caches.get(gpu.device);
  if (!cache) caches.set(gpu.device, cache = new Map());
  const constants = spec.constants ?? {};
  const constKey = Object.keys(constants).sort().map((k) => `${k}=${constants[k]}`).join(",");
  const key = `${spec.entryPoint}|${constKey}|${spec.code}`;
  let p = cache.get(key);
  if (!p) {
    let mods = modules.get(gpu.device);
    if (!mods) modules.set(gpu.device, mods = new Map());
    let module = mods.get(spec.code);
    if (!module) {
      module = gpu.device.createShaderModule({ code: spec.code, label: spec.label ?? spec.entryPoint });
      mods.set(spec.code, module);
    }
    p = gpu.device.createComputePipeline({
      label: spec.label ?? spec.entryPoint,
      layout: "auto",
      compute: { module, entryPoint: spec.entryPoint, constants },
    });
    cache.set(key, p);
  }
  return p;
}
