// Which WebGPU implementation the process uses, chosen by one setting, `WEBGPU`:
//
//   (unset) or "wgpu"   Deno's own WebGPU (wgpu, naga compiles the WGSL); DENO_WEBGPU_BACKEND picks its
//                       backend.
//   "dawn"              Dawn, Chromium's WebGPU (Tint compiles the WGSL), from npm:webgpu (dawn.node,
//                       pinned in deno.json): its Vulkan backend first, else OpenGL at feature level
//                       "compatibility" (Mesa's lavapipe is refused by Dawn's Vulkan backend on Mesa 22.3,
//                       so a CPU machine gets llvmpipe through OpenGL).
//   "dawn:vulkan", "dawn:opengl"   Dawn with that backend only.
//
// A second compiler is a strong test: WGSL that naga lets through and Tint rejects fails in every Chrome.
// Outside Deno (a browser tab) the implementation is the browser's own: `navigator.gpu`.

export type ImplementationName = "wgpu" | "dawn" | "browser";

export interface Implementation {
  name: ImplementationName;
  /** The backend: wgpu's DENO_WEBGPU_BACKEND (or "default"), Dawn's "vulkan" / "opengl", or "browser". */
  backend: string;
  /** "core" or "compatibility" (the WebGPU feature level the adapter was asked for). */
  featureLevel: "core" | "compatibility";
  adapter: GPUAdapter;
}

const DAWN_PACKAGE = "webgpu";
const SETTING_HELP = 'WEBGPU must be "wgpu", "dawn", "dawn:vulkan" or "dawn:opengl"';

function env(name: string): string | undefined {
  return typeof Deno === "undefined" ? undefined : Deno.env.get(name);
}

/** The implementation the setting asks for, with Dawn's backend if one is forced. */
export function requestedImplementation(): { name: ImplementationName; dawnBackend?: string } {
  if (typeof Deno === "undefined") return { name: "browser" };
  const value = (env("WEBGPU") ?? "wgpu").trim().toLowerCase();
  if (value === "" || value === "wgpu") return { name: "wgpu" };
  const [name, backend] = value.split(":");
  if (name !== "dawn" || (backend !== undefined && backend !== "vulkan" && backend !== "opengl")) {
    throw new Error(`${SETTING_HELP}, got WEBGPU=${JSON.stringify(value)}`);
  }
  return { name: "dawn", dawnBackend: backend };
}

/** Opens the chosen implementation and asks it for an adapter; undefined when it has none. */
export async function requestImplementationAdapter(
  options: GPURequestAdapterOptions,
): Promise<Implementation | undefined> {
  const req = requestedImplementation();
  if (req.name !== "dawn") {
    if (!("gpu" in navigator) || !navigator.gpu) return undefined;
    const adapter = await navigator.gpu.requestAdapter(options);
    if (!adapter) return undefined;
    const backend = req.name === "wgpu" ? env("DENO_WEBGPU_BACKEND") ?? "default" : "browser";
    return { name: req.name, backend, featureLevel: "core", adapter };
  }
  const tries: [string, "core" | "compatibility"][] = req.dawnBackend === "opengl"
    ? [["opengl", "compatibility"]]
    : req.dawnBackend === "vulkan"
    ? [["vulkan", "core"]]
    : [["vulkan", "core"], ["opengl", "compatibility"]];
  // Mesa's EGL needs a platform without a display server; only set when the user has not chosen one.
  if (env("EGL_PLATFORM") === undefined) Deno.env.set("EGL_PLATFORM", "surfaceless");
  const dawn = await loadDawn();
  for (const [backend, featureLevel] of tries) {
    const gpu = dawn.create([`backend=${backend}`]);
    const adapter = await gpu.requestAdapter({ ...options, featureLevel } as GPURequestAdapterOptions);
    if (adapter) {
      // The Dawn instance must outlive its devices: once collected, its event processing crashes
      // the process (seen as SIGSEGV in onSubmittedWorkDone).
      dawnInstances.push(gpu);
      return { name: "dawn", backend, featureLevel, adapter };
    }
  }
  return undefined;
}

const dawnInstances: GPU[] = [];

interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

let dawnModule: DawnModule | undefined;

async function loadDawn(): Promise<DawnModule> {
  if (!dawnModule) {
    // A variable specifier keeps the native package out of browser bundles; deno.json maps it.
    const specifier = DAWN_PACKAGE;
    dawnModule = await import(specifier) as DawnModule;
    // Dawn's own GPUBufferUsage etc. (same values) and its classes, as its documentation asks.
    Object.assign(globalThis, dawnModule.globals);
  }
  return dawnModule;
}
