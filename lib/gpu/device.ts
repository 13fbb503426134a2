// The one WebGPU device of the process: adapter selection, limits, and what we tell the user about it.
//
// `getGpu()` is cached: every layer, test and experiment shares one device, so pipelines compiled once
// are reused everywhere (see pipelines.ts).

import { requestImplementationAdapter } from "./implementation.ts";

export interface AdapterReport {
  /** Human-readable adapter name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or "NVIDIA H100 80GB HBM3". */
  description: string;
  vendor: string;
  architecture: string;
  /** The backend Deno's wgpu was asked for (DENO_WEBGPU_BACKEND), or "default"; Dawn's backend. */
  backend: string;
  /** The WebGPU implementation (lib/gpu/implementation.ts): "wgpu" (Deno's), "dawn" or "browser". */
  implementation: string;
  /** The WebGPU feature level the adapter was asked for: "core" or "compatibility". */
  featureLevel: string;
  /** True for a software rasteriser (Mesa llvmpipe / lavapipe): slow, but runs the same WGSL. */
  isSoftware: boolean;
  timestampQuery: boolean;
}

export interface Gpu {
  adapter: GPUAdapter;
  device: GPUDevice;
  report: AdapterReport;
  /** Limits the device was created with (the adapter's own, not the WebGPU minimums). */
  limits: GPUSupportedLimits;
}

export class NoAdapterError extends Error {}

const REMEDY = "no WebGPU adapter found: install a GPU driver, or Mesa's software drivers " +
  "(apt-get install mesa-vulkan-drivers libegl-mesa0), or choose a backend with DENO_WEBGPU_BACKEND=vulkan|gl";

let cached: Promise<Gpu> | undefined;

/** The shared device. Throws NoAdapterError (message names the remedy) when there is no adapter. */
export function getGpu(): Promise<Gpu> {
  cached ??= createGpu();
  return cached;
}

async function createGpu(): Promise<Gpu> {
  const impl = await requestImplementationAdapter({ powerPreference: "high-performance" });
  if (!impl) throw new NoAdapterError(REMEDY);
  const adapter = impl.adapter;

  // Ask for the adapter's own limits: the defaults (128 MiB bindings, 8 storage buffers per stage) are
  // too small for batch-256 activations of the full encoder.
  const requiredLimits: Record<string, number> = {};
  for (
    const key of [
      "maxStorageBufferBindingSize",
      "maxBufferSize",
      "maxStorageBuffersPerShaderStage",
      "maxComputeWorkgroupStorageSize",
      "maxComputeInvocationsPerWorkgroup",
      "maxComputeWorkgroupSizeX",
      "maxComputeWorkgroupSizeY",
      "maxComputeWorkgroupSizeZ",
      "maxComputeWorkgroupsPerDimension",
      "maxUniformBufferBindingSize",
      "maxBindGroups",
    ]
  ) {
    const v = (adapter.limits as unknown as Record<string, number>)[key];
    if (typeof v === "number") requiredLimits[key] = v;
  }
  const timestampQuery = adapter.features.has("timestamp-query");
  const device = await adapter.requestDevice({
    requiredLimits,
    requiredFeatures: timestampQuery ? ["timestamp-query"] : [],
  });
  device.addEventListener("uncapturederror", (e) => {
    // A validation error is a bug in our code; make it loud rather than silently producing zeros.
    console.error(`WebGPU error: ${(e as GPUUncapturedErrorEvent).error.message}`);
  });

  const info = adapter.info;
  const isSoftware = Boolean(
    (info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
      (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter,
  ) ||
    /llvmpipe|lavapipe|swiftshader|softpipe/i.test(`${info.description} ${info.device} ${info.architecture}`);
  const report: AdapterReport = {
    description: info.description || info.device || info.architecture || "unknown adapter",
    vendor: info.vendor ?? "",
    architecture: info.architecture ?? "",
    backend: impl.backend,
    implementation: impl.name,
    featureLevel: impl.featureLevel,
    isSoftware,
    timestampQuery,
  };
  return { adapter, device, report, limits: device.limits };
}

/** One line for logs and manifests. */
export function describeAdapter(r: AdapterReport): string {
  const level = r.featureLevel === "core" ? "" : `, feature level ${r.featureLevel}`;
  return `${r.description} (${r.implementation}, backend ${r.backend}${level}${
    r.isSoftware ? ", software fallback" : ""
  })`;
}

/**
 * For command-line entry points: get the device or print the one-line remedy and exit non-zero.
 */
export async function getGpuOrExit(): Promise<Gpu> {
  try {
    return await getGpu();
  } catch (e) {
    if (e instanceof NoAdapterError) {
      console.error(`error: ${e.message}`);
      Deno.exit(1);
    }
    throw e;
  }
}
