// A device that stopped working, said in one line instead of whatever the next call happens to throw.
//
// Why: when a GPU is lost (a driver reset, an Xid, a browser's GPU process restarting) WebGPU keeps
// accepting work and does none of it: submissions are dropped, onSubmittedWorkDone resolves, and only the
// next readback fails, in Deno with "OperationError: validation error occurred", which names neither the
// loss nor what to do. An error that no error scope catches (out of memory, a validation error: a bug of
// ours, an internal error of the driver or its shader compiler) leaves the buffers involved invalid, and
// the run would go on training garbage. Each device is watched from its creation; the first fault is kept,
// readbacks and the training loop check for it (tensor.ts readRegions, trainer.ts), and a run stops with a
// GpuFaultError before anything is read from, or written after, the faulty device. What was written before
// (the last epoch's checkpoint) stays as it was.

/** How a tuning file's entry marks a candidate that lost the device while it ran (lib/gpu/tuner.ts). */
export const LOST_DEVICE = "lost the device";

/** What went wrong with a device first. */
export interface GpuFault {
  /** "lost": the device is gone; the others are errors that no error scope caught. */
  kind: "lost" | "out-of-memory" | "validation" | "internal";
  /** The implementation's words (for a lost device, its GPUDeviceLostReason first). */
  message: string;
  /** Errors that came after the first (the first is the one to read). */
  later: number;
}

const faults = new WeakMap<GPUDevice, GpuFault>();
/** Devices this process destroys on purpose (releaseGpu, exit): their loss is no fault. */
const released = new WeakSet<GPUDevice>();

/** The error a faulty device stops work with: its fault, where the work was, and the remedy. */
export class GpuFaultError extends Error {
  constructor(readonly fault: GpuFault, readonly where?: string) {
    super(`${describeFault(fault)}${where ? `; ${where}` : ""}`);
  }
}

/** One line for a fault: what happened, in the implementation's words, and what would help. */
export function describeFault(f: GpuFault): string {
  const more = f.later ? `; ${f.later} more error${f.later === 1 ? "" : "s"} after it` : "";
  switch (f.kind) {
    case "lost":
      return `the GPU device was lost (${f.message}${more}); nothing computed since can be read back`;
    case "out-of-memory":
      return `the GPU ran out of memory (${f.message}${more}); a smaller batch size needs less`;
    case "validation":
      return `WebGPU reported a validation error, a bug in webgpu-mda (${f.message}${more}); please report it`;
    case "internal":
      return `WebGPU reported an internal error of the driver or its shader compiler (${f.message}${more})`;
  }
}

/** Watches a new device: its loss and every error that no error scope catches (each also printed). */
export function watchDevice(device: GPUDevice, print: (line: string) => void = console.error): void {
  const record = (kind: GpuFault["kind"], message: string) => {
    const first = faults.get(device);
    if (first) first.later++;
    else faults.set(device, { kind, message: message.trim().split("\n")[0], later: 0 });
  };
  device.addEventListener("uncapturederror", (e) => {
    const error = (e as GPUUncapturedErrorEvent).error;
    // Loud at once, as well as kept: a command that never reads back still shows it.
    print(`WebGPU error: ${error.message}`);
    // By class name, not instanceof: Dawn's error classes (npm:webgpu) are not Deno's globals.
    const name = error?.constructor?.name ?? "";
    const kind = /OutOfMemory/.test(name)
      ? "out-of-memory"
      : /Validation/.test(name)
      ? "validation"
      : "internal";
    record(kind, error.message);
  });
  device.lost.then((info) => {
    if (released.has(device)) return;
    record("lost", `${info.reason}${info.message ? `: ${info.message}` : ""}`);
  });
}

/** Says that this process destroys `device` on purpose now: its loss is not a fault. */
export function releasingDevice(device: GPUDevice): void {
  released.add(device);
}

/** The device's first fault, if it has one. */
export function deviceFault(device: GPUDevice): GpuFault | undefined {
  return faults.get(device);
}

/**
 * The device's fault after a call failed: a loss may be reported a moment after the failure it caused (in
 * Deno a failed map comes first), so wait up to `waitMs` for it.
 */
async function faultAfterFailure(device: GPUDevice, waitMs = 1000): Promise<GpuFault | undefined> {
  if (!faults.has(device)) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, waitMs));
    // watchDevice's handler was attached first, so it has run when this one does.
    await Promise.race([device.lost.then(() => {}), timeout]);
    clearTimeout(timer);
  }
  return faults.get(device);
}

/**
 * What to throw for `e`, a failure of work on `device`: the device's fault as a GpuFaultError (with `where`,
 * unless it says where already) when it has one, waiting for a loss reported after the failure; else `e`.
 */
export async function asDeviceFault(e: unknown, device: GPUDevice, where?: string): Promise<unknown> {
  if (e instanceof GpuFaultError) return e.where || !where ? e : new GpuFaultError(e.fault, where);
  const fault = await faultAfterFailure(device);
  return fault ? new GpuFaultError(fault, where) : e;
}

/** Throws a GpuFaultError if the device has a fault (its callers' callers say where: asDeviceFault). */
export function throwIfFaulted(device: GPUDevice): void {
  const fault = faults.get(device);
  if (fault) throw new GpuFaultError(fault);
}
