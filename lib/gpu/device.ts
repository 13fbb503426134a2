// The one WebGPU device of the process: adapter selection, limits, and what we tell the user about it.
//
// `getGpu()` is cached: every layer, test and experiment shares one device, so pipelines compiled once
// are reused everywhere (see pipelines.ts). The backend is chosen (backend.ts) and fixed before the first
// requestAdapter, so the report says which one ran; `releaseGpu()` tears the device down before exit.

import {
  backendLabel,
  chooseBackend,
  cpuModel,
  detectDriver,
  pinDriverLibraries,
  probeMachine,
  silenceDeviceSelect,
  skipLibraryDestructorsAtExit,
} from "./backend.ts";

import { deviceFault, releasingDevice, watchDevice } from "./fault.ts";
import {
  type Implementation,
  requestedImplementation,
  requestImplementationAdapter,
} from "./implementation.ts";

/** What the tuning and bits keys of an adapter treated as a GPU (DNLL_TREAT_AS_GPU=1) end with. */
export const TREATED_AS_GPU = "treated as a GPU";

export interface AdapterReport {
  /** Human-readable adapter name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or "NVIDIA H100 80GB HBM3". */
  description: string;
  vendor: string;
  architecture: string;
  /** The backend that ran: wgpu's "gl", "vulkan", "metal", "dx12" (never "default"; see backend.ts);
   * Dawn's "vulkan" or "opengl"; "browser" in a tab. */
  backend: string;
  /** Why that backend: "DENO_WEBGPU_BACKEND" (the user's choice), "automatic: ...", or the implementation's. */
  backendReason: string;
  /** The WebGPU implementation (lib/gpu/implementation.ts): "wgpu" (Deno's), "dawn" or "browser". */
  implementation: string;
  /** The WebGPU feature level the adapter was asked for: "core" or "compatibility". */
  featureLevel: string;
  /** Driver version: "Mesa 22.3.6", "NVIDIA 550.54.15", or "unknown". */
  driver: string;
  /** Distribution package of the driver, when known: "libgl1-mesa-dri 22.3.6-1+deb12u2". */
  driverPackage?: string;
  /** For a software adapter, the CPU it runs on (its model decides speed; "same bits" was seen across models). */
  cpu?: string;
  /** True for a software rasteriser (Mesa llvmpipe / lavapipe): slow, but runs the same WGSL. */
  isSoftware: boolean;
  /**
   * A software adapter that this run treats as a GPU (DNLL_TREAT_AS_GPU=1): the GPU kernels, the tuner
   * and the tree reductions run on the CPU, so that the GPU path can be rehearsed end to end
   * (tools/device/rehearse --as-gpu). isSoftware is then false; the key of its tunings says so.
   */
  treatedAsGpu?: boolean;
  timestampQuery: boolean;
  /**
   * Only for an adapter that tells no name (browsers hide it: Firefox always, Chromium on a GPU): a hash of
   * what it does tell (adapterFingerprint), so that a tuning cache keeps two such GPUs apart.
   */
  fingerprint?: string;
}

export interface Gpu {
  adapter: GPUAdapter;
  device: GPUDevice;
  report: AdapterReport;
  /** Limits the device was created with (the adapter's own, not the WebGPU minimums). */
  limits: GPUSupportedLimits;
}

export class NoAdapterError extends Error {}

const remedy = (backend: string) =>
  `no WebGPU adapter found (backend ${backend}): install a GPU driver, or Mesa's software driver ` +
  "(Debian/Ubuntu: sudo apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri), or choose a backend with " +
  "DENO_WEBGPU_BACKEND=vulkan|gl";

let cached: Promise<Gpu> | undefined;
/** The device once created, until released: what the exit hooks tear down. */
let live: Gpu | undefined;
let releasing: Promise<void> | undefined;

/** The shared device. Throws NoAdapterError (message names the remedy) when there is no adapter. */
export function getGpu(): Promise<Gpu> {
  // A lost device does no more work (fault.ts): the next caller gets a new one.
  if (live && deviceFault(live.device)?.kind === "lost") {
    live = undefined;
    cached = undefined;
  }
  cached ??= createGpu().then((gpu) => {
    live = gpu;
    // Only for Deno's wgpu: under Dawn (dawn.node) destroying the device from the realm's "unload" aborts the
    // process (exit 134 after the first test file, measured); Dawn's instance is kept alive instead.
    if (gpu.report.implementation === "wgpu") installExitHooks();
    return gpu;
  });
  return cached;
}

/**
 * Tears the device down: waits until the GPU has finished every submitted command, then destroys the device
 * (and with it every buffer). Left to exit, wgpu's objects are dropped in no set order while Mesa's and the
 * driver's threads may still be running, a known source of crashes at exit (platform.md). A later getGpu()
 * creates a new device.
 */
export function releaseGpu(): Promise<void> {
  releasing ??= (async () => {
    const gpu = live;
    if (gpu) {
      try {
        await gpu.device.queue.onSubmittedWorkDone();
      } finally {
        releasingDevice(gpu.device);
        gpu.device.destroy();
      }
    }
    live = undefined;
    cached = undefined;
    releasing = undefined;
  })();
  return releasing;
}

let hooksInstalled = false;

/**
 * Every entry point gets the teardown without calling it: under `deno run`, when the event loop runs dry,
 * "beforeunload" keeps the process alive (preventDefault) until releaseGpu() has finished, and fires again.
 * `deno test` (one realm and device per test file) ignores preventDefault, and Deno.exit() skips
 * "beforeunload": there "unload" destroys the device synchronously, the best that can be done without a wait.
 */
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  globalThis.addEventListener("beforeunload", (e) => {
    if (!live) return;
    e.preventDefault();
    releaseGpu();
  });
  globalThis.addEventListener("unload", () => {
    if (live) releasingDevice(live.device);
    live?.device.destroy();
    live = undefined;
  });
}

/** For commands that end with an exit code: tear the device down first, then exit. */
export async function exitAfterRelease(code: number): Promise<never> {
  await releaseGpu().catch(() => {});
  Deno.exit(code);
}

async function createGpu(): Promise<Gpu> {
  const requested = requestedImplementation();
  const inDeno = typeof Deno !== "undefined";
  // wgpu (Deno's own WebGPU): the backend is chosen here (backend.ts) because Deno reads DENO_WEBGPU_BACKEND
  // when the first requestAdapter creates its wgpu instance, and never again.
  const choice = requested.name === "wgpu" ? chooseBackend(probeMachine()) : undefined;
  const userSet = choice ? Deno.env.get("DENO_WEBGPU_BACKEND") : undefined;
  if (choice && !userSet) Deno.env.set("DENO_WEBGPU_BACKEND", choice.backend);
  if (inDeno && (choice === undefined || choice.backend.includes("vulkan"))) silenceDeviceSelect();
  let impl: Implementation | undefined;
  try {
    impl = await requestImplementationAdapter({ powerPreference: "high-performance" });
  } finally {
    // Child processes (tests that run a command) make their own choice and report it as theirs.
    if (choice && !userSet) Deno.env.delete("DENO_WEBGPU_BACKEND");
  }
  if (!impl) throw new NoAdapterError(remedy(choice?.backend ?? requested.name));
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
  if (inDeno) {
    pinDriverLibraries(); // the driver is loaded now: keep it mapped until exit (see backend.ts)
    skipLibraryDestructorsAtExit(); // glvnd's libEGL destructor races with Deno's ending threads (backend.ts)
  }
  // A lost device or an error no scope caught stops the work that reads it back (fault.ts), printed at once.
  watchDevice(device);

  const info = adapter.info;
  const detectedSoftware = Boolean(
    (info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
      (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter,
  ) ||
    /llvmpipe|lavapipe|swiftshader|softpipe/i.test(`${info.description} ${info.device} ${info.architecture}`);
  const treatedAsGpu = detectedSoftware && inDeno && Deno.env.get("DNLL_TREAT_AS_GPU") === "1";
  const isSoftware = detectedSoftware && !treatedAsGpu;
  const description = info.description || info.device || info.architecture || "unknown adapter";
  const nameless = !info.description && !info.device;
  // A list such as "vulkan,gl" lets wgpu pick, and nothing in the adapter says which it picked.
  const backend = choice
    ? (/^[a-z0-9]+$/.test(choice.backend) ? choice.backend : `unresolved (${choice.backend})`)
    : impl.backend;
  const driver = inDeno
    ? detectDriver(backend, `${description} ${info.device ?? ""}`, info.vendor ?? "")
    : { driver: "unknown" };
  const report: AdapterReport = {
    description,
    vendor: info.vendor ?? "",
    architecture: info.architecture ?? "",
    backend,
    backendReason: choice?.reason ?? `${impl.name}'s choice`,
    implementation: impl.name,
    featureLevel: impl.featureLevel,
    driver: driver.driver,
    ...(driver.driverPackage ? { driverPackage: driver.driverPackage } : {}),
    ...(detectedSoftware && inDeno ? { cpu: cpuModel() } : {}),
    isSoftware,
    ...(treatedAsGpu ? { treatedAsGpu } : {}),
    timestampQuery,
    ...(nameless ? { fingerprint: adapterFingerprint(adapter) } : {}),
  };
  return { adapter, device, report, limits: device.limits };
}

/** The limits adapterFingerprint reads (WebGPU's; one an implementation does not report is left out). */
const FINGERPRINT_LIMITS = [
  "maxTextureDimension1D",
  "maxTextureDimension2D",
  "maxTextureDimension3D",
  "maxTextureArrayLayers",
  "maxBindGroups",
  "maxBindingsPerBindGroup",
  "maxDynamicUniformBuffersPerPipelineLayout",
  "maxDynamicStorageBuffersPerPipelineLayout",
  "maxSampledTexturesPerShaderStage",
  "maxSamplersPerShaderStage",
  "maxStorageBuffersPerShaderStage",
  "maxStorageTexturesPerShaderStage",
  "maxUniformBuffersPerShaderStage",
  "maxUniformBufferBindingSize",
  "maxStorageBufferBindingSize",
  "minUniformBufferOffsetAlignment",
  "minStorageBufferOffsetAlignment",
  "maxVertexBuffers",
  "maxBufferSize",
  "maxVertexAttributes",
  "maxVertexBufferArrayStride",
  "maxInterStageShaderVariables",
  "maxColorAttachments",
  "maxColorAttachmentBytesPerSample",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
];

/**
 * What an adapter tells besides its name, hashed: vendor, architecture, fallback or not, subgroup sizes,
 * features and limits, e.g. "limits:5f3a09c2". Most GPUs differ in one of them (an NVIDIA card's 48 KiB of
 * workgroup memory, an integrated GPU's smaller buffers); two GPUs that agree in all of them share a key.
 * FNV-1a over a canonical text: the same adapter gives the same hash in every browser session.
 */
export function adapterFingerprint(adapter: GPUAdapter): string {
  const info = adapter.info as GPUAdapterInfo & {
    isFallbackAdapter?: boolean;
    subgroupMinSize?: number;
    subgroupMaxSize?: number;
  };
  const limits = adapter.limits as unknown as Record<string, unknown>;
  const parts = [
    `vendor=${info.vendor ?? ""}`,
    `architecture=${info.architecture ?? ""}`,
    `fallback=${info.isFallbackAdapter ?? ""}`,
    `subgroups=${info.subgroupMinSize ?? ""}-${info.subgroupMaxSize ?? ""}`,
    `features=${[...adapter.features].sort().join(",")}`,
    ...FINGERPRINT_LIMITS.filter((k) => typeof limits[k] === "number").map((k) => `${k}=${limits[k]}`),
  ];
  let hash = 0x811c9dc5;
  for (const ch of parts.join(";")) {
    hash ^= ch.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return `limits:${hash.toString(16).padStart(8, "0")}`;
}

/**
 * One line for logs: "llvmpipe (LLVM 15.0.6, 256 bits) through GL llvmpipe (automatic: ...), Mesa 22.3.6,
 * software adapter on AMD EPYC, 2 logical cores".
 */
export function describeAdapter(r: AdapterReport): string {
  const how = r.backendReason === "DENO_WEBGPU_BACKEND" ? "set by DENO_WEBGPU_BACKEND" : r.backendReason;
  const impl = r.implementation === "wgpu" ? "" : `${r.implementation} `;
  const level = r.featureLevel === "core" ? "" : `, feature level ${r.featureLevel}`;
  const name = r.fingerprint ? `${r.description} (${r.fingerprint})` : r.description;
  return `${name} through ${impl}${backendLabel(r.backend, r.isSoftware)} (${how}${level}), ` +
    `driver ${r.driver}` + (r.isSoftware ? `, software adapter on ${r.cpu ?? "this CPU"}` : "") +
    (r.treatedAsGpu
      ? `, a software adapter on ${r.cpu ?? "this CPU"} treated as a GPU (DNLL_TREAT_AS_GPU=1)`
      : "");
}

/**
 * What decides a run's bits (README, "Same bits"): the implementation, backend, adapter and driver version.
 * Runs that agree on this key and on experiment, seed and flags give identical numbers, on any machine.
 */
export function bitsKey(r: AdapterReport): string {
  const impl = r.implementation === "wgpu" ? "" : `${r.implementation}:`;
  // Treated as a GPU, the same adapter runs other kernels (other summation orders): other bits.
  return `${impl}${r.backend} | ${r.description} | ${r.driver}` +
    (r.treatedAsGpu ? ` | ${TREATED_AS_GPU}` : "");
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
