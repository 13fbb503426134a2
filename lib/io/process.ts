// Which process writes a run folder: a run's manifest and its claim name their process by host, boot, pid
// and start time, so that another process can tell whether that one is still alive (a pid alone may have
// been reused).

/** A process as its manifest names it: host, boot, pid and start time make it unique. */
export interface ProcessId {
  host: string;
  pid: number;
  /** /proc/sys/kernel/random/boot_id, and the start time in clock ticks since that boot (Linux only). */
  boot?: string;
  start?: number;
}

/** The start time of process `pid` in clock ticks since boot (field 22 of /proc/PID/stat), if /proc has it. */
function processStart(pid: number | "self"): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its ")".
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  } catch {
    return undefined;
  }
}

let self: ProcessId | undefined;

/** This process, read once: each manifest write (three a run) names it. */
export function thisProcess(): ProcessId {
  if (self) return { ...self };
  let boot: string | undefined;
  try {
    boot = Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim();
  } catch { /* not Linux */ }
  self = { host: Deno.hostname(), pid: Deno.pid, boot, start: processStart("self") };
  return { ...self };
}

/**
 * The pid of `owner` where it is another process alive on this machine now; undefined where it has ended
 * or nothing can be told (another host, no /proc).
 */
export function liveProcess(owner: Partial<ProcessId> | undefined): number | undefined {
  if (owner?.start === undefined || owner.pid === undefined) return undefined;
  const me = thisProcess();
  if (owner.host !== me.host || owner.boot !== me.boot || owner.pid === me.pid) return undefined;
  return processStart(owner.pid) === owner.start ? owner.pid : undefined;
}

/**
 * Whether `owner` is known to have ended: on this host, after a reboot, or its pid now another process or
 * none. False where it is alive, and where nothing can be told (another host, no /proc).
 */
export function processGone(owner: Partial<ProcessId> | undefined): boolean {
  if (owner?.start === undefined || owner.pid === undefined) return false;
  const me = thisProcess();
  if (owner.host !== me.host || me.start === undefined || me.boot === undefined) return false;
  if (owner.boot !== me.boot) return true;
  return processStart(owner.pid) !== owner.start;
}
