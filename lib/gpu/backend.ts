// Which wgpu backend to run on, and what exactly ran: the backend, the driver's version and, for a software
// adapter, the CPU. These decide the bits a run produces (README, "Same bits"), so every run records them.
//
// Deno's GPUAdapterInfo has no backend field and llvmpipe (GL) and lavapipe (Vulkan) report the same
// description, so we never let wgpu choose among several backends: Deno reads DENO_WEBGPU_BACKEND once, when
// the first requestAdapter creates its wgpu instance, and we set it to exactly one backend before that call.

/** What the machine offers, read from the file system (a pure input to chooseBackend, so tests can fake it). */
export interface MachineProbe {
  /** Deno.build.os */
  os: string;
  /** DENO_WEBGPU_BACKEND as the user set it, if at all. */
  userBackend?: string;
  /** A hardware GPU: its device node (/dev/nvidia0, /dev/dri/renderD128) or driver entry, if any. */
  hardwareGpu?: string;
  /** Mesa's EGL driver and the EGL loader are installed (GL llvmpipe works). */
  mesaEgl: boolean;
  /** Mesa's Vulkan software driver (lavapipe) is installed. */
  lavapipe: boolean;
}

export interface BackendChoice {
  /** One wgpu backend name: "gl", "vulkan", "metal", "dx12" (or the user's value, verbatim). */
  backend: string;
  /** Why: "DENO_WEBGPU_BACKEND" or a short sentence for the automatic choice. */
  reason: string;
}

const LIB_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"];

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function firstExisting(paths: string[]): string | undefined {
  return paths.find(exists);
}

function libExists(name: string): boolean {
  return LIB_DIRS.some((d) => exists(`${d}/${name}`));
}

export function probeMachine(): MachineProbe {
  let renderNode: string | undefined;
  try {
    for (const e of Deno.readDirSync("/dev/dri")) {
      if (e.name.startsWith("renderD")) renderNode = `/dev/dri/${e.name}`;
    }
  } catch { /* no /dev/dri: no GPU exposed to this machine or container */ }
  return {
    os: Deno.build.os,
    userBackend: Deno.env.get("DENO_WEBGPU_BACKEND") || undefined,
    // A GPU driver may be visible without its device node (some containers): NVIDIA's /proc entry, or a
    // Vulkan driver manifest named in the environment (VK_DRIVER_FILES, as tools/device sets for NVIDIA).
    hardwareGpu: firstExisting(["/dev/nvidia0", "/dev/nvidiactl", "/proc/driver/nvidia/version"]) ??
      renderNode ??
      (Deno.env.get("VK_DRIVER_FILES") || Deno.env.get("VK_ICD_FILENAMES") ? "VK_DRIVER_FILES" : undefined),
    mesaEgl: libExists("libEGL_mesa.so.0") && libExists("libEGL.so.1"),
    lavapipe: ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"].some((d) => {
      try {
        return [...Deno.readDirSync(d)].some((e) => e.name.startsWith("lvp_icd"));
      } catch {
        return false;
      }
    }),
  };
}

/**
 * The backend to ask wgpu for. The user's DENO_WEBGPU_BACKEND always wins. Otherwise: Metal on macOS,
 * DX12 on Windows; on Linux Vulkan when a hardware GPU is exposed (NVIDIA's driver is reached through it),
 * and on a machine with only Mesa's software drivers GL llvmpipe: since the kernels' loops are unrolled it
 * runs the notebook step as fast as Vulkan lavapipe on the same JIT (Vulkan / GL 0.96-1.00, README; it was
 * 2.8x faster before, platform.md), and it is the backend of the stored bits and the committed runs, so the
 * tie goes to it; lavapipe when it is the only one installed.
 */
export function chooseBackend(p: MachineProbe): BackendChoice {
  if (p.userBackend) return { backend: p.userBackend.trim().toLowerCase(), reason: "DENO_WEBGPU_BACKEND" };
  if (p.os === "darwin") return { backend: "metal", reason: "automatic: macOS" };
  if (p.os === "windows") return { backend: "dx12", reason: "automatic: Windows" };
  if (p.hardwareGpu) return { backend: "vulkan", reason: `automatic: GPU (${p.hardwareGpu})` };
  if (p.mesaEgl) {
    return {
      backend: "gl",
      reason: "automatic: no GPU; GL llvmpipe, as fast as Vulkan lavapipe and the backend of the stored bits",
    };
  }
  if (p.lavapipe) return { backend: "vulkan", reason: "automatic: no GPU, only Vulkan lavapipe installed" };
  // Nothing we know of: let the request fail (or find something we did not foresee) with GL, whose
  // Debian package the error message names.
  return { backend: "gl", reason: "automatic: no GPU or Mesa driver found" };
}

/**
 * Lavapipe's device-select layer connects to Wayland at start and, when XDG_RUNTIME_DIR is unset or not a
 * directory, prints "error: XDG_RUNTIME_DIR is invalid or not set in the environment." twice: alarming and
 * harmless. There is no display to select here, so turn the layer off (only then; a desktop session with a
 * valid XDG_RUNTIME_DIR keeps it). Returns the variable set, if any.
 */
export function silenceDeviceSelect(): string | undefined {
  const xdg = Deno.env.get("XDG_RUNTIME_DIR");
  let valid = false;
  try {
    valid = xdg !== undefined && xdg !== "" && Deno.statSync(xdg).isDirectory;
  } catch { /* not a directory */ }
  if (valid || Deno.env.get("NODEVICE_SELECT") !== undefined) return undefined;
  Deno.env.set("NODEVICE_SELECT", "1");
  return "NODEVICE_SELECT=1";
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/** The shared libraries mapped into this process (Linux); empty elsewhere. */
function mappedLibraries(): string[] {
  const maps = readText("/proc/self/maps");
  if (!maps) return [];
  const libs = new Set<string>();
  for (const line of maps.split("\n")) {
    const path = line.split(/\s+/)[5];
    if (path?.startsWith("/") && /\.so(\.|$)/.test(path)) libs.add(path);
  }
  return [...libs];
}

/** "Mesa 22.3.6" from the driver binary's own version string (the same string glxinfo/vulkaninfo show). */
function mesaVersionOf(path: string): string | undefined {
  try {
    const bytes = Deno.readFileSync(path);
    const text = new TextDecoder("latin1").decode(bytes);
    return text.match(/Mesa \d+\.\d+\.\d+(-devel|-rc\d+)?/)?.[0];
  } catch {
    return undefined;
  }
}

/** "libgl1-mesa-dri 22.3.6-1+deb12u2": the Debian package that ships a driver file, when dpkg knows it. */
function debianPackageVersion(pkg: string): string | undefined {
  const status = readText("/var/lib/dpkg/status");
  if (!status) return undefined;
  const start = status.indexOf(`Package: ${pkg}\n`);
  if (start < 0) return undefined;
  const end = status.indexOf("\n\n", start);
  const version = status.slice(start, end < 0 ? undefined : end).match(/\nVersion: (\S+)/)?.[1];
  return version ? `${pkg} ${version}` : undefined;
}

export interface DriverInfo {
  /** "Mesa 22.3.6", "NVIDIA 550.54.15", or "unknown". */
  driver: string;
  /** The driver file that served the adapter, when found. */
  driverFile?: string;
  /** Distribution package and version of that file, when known ("mesa-vulkan-drivers 22.3.6-1+deb12u2"). */
  driverPackage?: string;
}

/** Driver of the adapter just created: call after requestAdapter/requestDevice, when the driver is loaded. */
export function detectDriver(backend: string, description: string, vendor: string): DriverInfo {
  const libs = mappedLibraries();
  const nvidia =
    readText("/proc/driver/nvidia/version")?.match(/Kernel Module\s+(?:for \S+\s+)?(\d+\.\d+(\.\d+)?)/)
      ?.[1] ??
      libs.map((l) => l.match(/libnvidia-(?:gl|egl)core\.so\.(\d+\.\d+(\.\d+)?)/)?.[1]).find(Boolean);
  if (nvidia && (/nvidia/i.test(description) || vendor === "4318" || vendor === "0x10de")) {
    return { driver: `NVIDIA ${nvidia}`, driverFile: libs.find((l) => /libnvidia-(gl|egl)core/.test(l)) };
  }
  // Mesa: with Vulkan every installed ICD is loaded, so pick the one that serves this adapter.
  const patterns: [RegExp, RegExp, string][] = backend === "vulkan"
    ? [
      [/llvmpipe|lavapipe/i, /libvulkan_lvp\.so/, "mesa-vulkan-drivers"],
      [/radv|amd|radeon/i, /libvulkan_radeon\.so/, "mesa-vulkan-drivers"],
      [/intel/i, /libvulkan_intel\.so/, "mesa-vulkan-drivers"],
    ]
    : [[/./, /\/(dri\/[a-z0-9_]+_dri\.so|libgallium[^/]*\.so)/, "libgl1-mesa-dri"]];
  for (const [adapterRe, fileRe, pkg] of patterns) {
    if (!adapterRe.test(description)) continue;
    const file = libs.find((l) => fileRe.test(l));
    if (!file) continue;
    return {
      driver: mesaVersionOf(file) ?? "unknown",
      driverFile: file,
      driverPackage: debianPackageVersion(pkg),
    };
  }
  return { driver: "unknown" };
}

/** The CPU's model name (what a software adapter's bits and speed depend on), e.g. "AMD EPYC". */
export function cpuModel(): string {
  const info = readText("/proc/cpuinfo");
  const model = info?.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim();
  const cores = navigator.hardwareConcurrency;
  return `${model ?? Deno.build.arch}${cores ? `, ${cores} logical cores` : ""}`;
}

/** Backend names as people say them, for messages. */
export function backendLabel(backend: string, isSoftware: boolean): string {
  const names: Record<string, string> = { gl: "GL", vulkan: "Vulkan", metal: "Metal", dx12: "DX12" };
  const name = names[backend] ?? backend;
  if (!isSoftware) return name;
  if (backend === "gl") return "GL llvmpipe";
  if (backend === "vulkan") return "Vulkan lavapipe";
  return name;
}

// RTLD_NOW | RTLD_NODELETE (glibc): load now, and never unmap, whatever dlclose calls follow.
const RTLD_NOW_NODELETE = 0x2 | 0x1000;
const MESA_DRIVER =
  /\/(dri\/[a-z0-9_]+_dri\.so|libgallium[^/]*\.so|libvulkan_[a-z0-9_]+\.so|libEGL_mesa\.so[.0-9]*)$/;
const pinned = new Set<string>();

/**
 * Keeps Mesa's driver libraries mapped until the process ends. Why: each Deno realm (every `deno test` file,
 * every Worker) has its own wgpu instance, and dropping it closes the EGL display or Vulkan instance, which
 * dlcloses the driver (swrast_dri.so, libvulkan_lvp.so); the next realm maps it again. Exit handlers that the
 * driver registered can then point into unmapped memory, and `exit()` dies with SIGSEGV after everything has
 * passed (seen in about 1 of 10 runs of a script with several Workers, and of the test suite; the core dump
 * shows __run_exit_handlers calling an address where swrast_dri.so had been). Loading the same files once more
 * with RTLD_NODELETE through libc's dlopen pins them. Returns the files pinned by this call; does nothing
 * without FFI permission or off glibc Linux.
 */
export function pinDriverLibraries(): string[] {
  if (Deno.build.os !== "linux") return [];
  const libs = mappedLibraries().filter((l) => MESA_DRIVER.test(l) && !pinned.has(l));
  if (libs.length === 0) return [];
  let libc: Deno.DynamicLibrary<{ dlopen: { parameters: ["buffer", "i32"]; result: "pointer" } }>;
  try {
    libc = Deno.dlopen("libc.so.6", { dlopen: { parameters: ["buffer", "i32"], result: "pointer" } });
  } catch {
    return []; // no --allow-ffi, or not glibc
  }
  const done: string[] = [];
  for (const lib of libs) {
    // The handle is deliberately never closed: that is the point.
    if (libc.symbols.dlopen(new TextEncoder().encode(lib + "\0"), RTLD_NOW_NODELETE) !== null) {
      pinned.add(lib);
      done.push(lib);
    }
  }
  libc.close(); // closes our handle on libc only; the pinned libraries stay
  return done;
}

let destructorsSkipped = false;

/**
 * Makes the process end, when `exit()` is called, without running the shared libraries' destructors:
 * registers libc's `_exit` as an `on_exit` handler, which glibc calls with the exit status before the
 * handlers registered earlier and before `_dl_fini` (the library destructors, registered first of all).
 *
 * Why (results/exit_soak.md): libglvnd 1.6.0's libEGL.so.1 (Debian 12) keeps one state block per thread
 * that made an EGL call, freed by a thread-exit destructor. Its library destructor frees every thread's
 * block but leaves that thread-exit destructor armed (fixed upstream in 1.7.0, commit 1f9aff1), so a thread
 * that ends after it frees its block a second time. Deno ends `deno test` with `shutdown_background()`,
 * which wakes its worker threads, those that ran the test files and called EGL among them, so they end
 * while `exit()` runs the destructors: "double free or corruption" or "corrupted size vs. prev_size in
 * fastbins" and exit 134 after every test passed (8 of 110 runs of tools/exit_repro/run.sh; 0 of 160 with
 * this handler). Nothing is lost by skipping the destructors: the GPU work is finished (releaseGpu), Deno
 * writes its output itself, the kernel reclaims the rest, and a Mesa shader-cache entry still being written
 * at that instant is simply written again by a later run. Only when glvnd's libEGL is loaded (GL backend); once per realm (a
 * second registration in another realm is harmless: the first handler to run ends the process). Returns
 * whether the handler is registered.
 */
export function skipLibraryDestructorsAtExit(): boolean {
  if (destructorsSkipped) return true;
  if (Deno.build.os !== "linux" || !mappedLibraries().some((l) => /\/libEGL\.so\.1[.0-9]*$/.test(l))) {
    return false;
  }
  let libc: Deno.DynamicLibrary<{
    dlsym: { parameters: ["pointer", "buffer"]; result: "pointer" };
    on_exit: { parameters: ["pointer", "pointer"]; result: "i32" };
  }>;
  try {
    libc = Deno.dlopen("libc.so.6", {
      dlsym: { parameters: ["pointer", "buffer"], result: "pointer" },
      on_exit: { parameters: ["pointer", "pointer"], result: "i32" },
    });
  } catch {
    return false; // no --allow-ffi, or not glibc (on_exit is glibc's)
  }
  // dlsym(RTLD_DEFAULT, "_exit"): _exit(int) called as handler(status, arg) exits with the status.
  const exitNow = libc.symbols.dlsym(null, new TextEncoder().encode("_exit\0"));
  destructorsSkipped = exitNow !== null && libc.symbols.on_exit(exitNow, null) === 0;
  libc.close();
  return destructorsSkipped;
}
