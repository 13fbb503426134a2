// What the results server (html.ts, server.ts) and the pages' script (client.ts, bundled for the browser)
// both use, so that the index and a live page say the same thing: no Deno or DOM API here.

/** A results-relative folder in a URL path: each segment percent-encoded. */
export function encodePath(dir: string): string {
  return dir.split("/").map(encodeURIComponent).join("/");
}

/**
 * The status scan.ts gives a run whose manifest still says "running" while the process it names is known
 * to have ended (SIGKILL, out of memory, a power cut): nothing will write that run again.
 */
export const KILLED = "killed";

/**
 * Statuses after which nothing writes the run until someone resumes it: its event stream ends, so that a
 * browser, which opens 6 HTTP/1.1 connections a host, does not spend one on a run that is over.
 */
const FINAL = new Set(["finished", "failed", "stopped", KILLED]);

export function isFinal(status: string): boolean {
  return FINAL.has(status);
}

/** What a status word alone does not say, for the pages to show beside it. */
export function statusNote(status: string): string | undefined {
  return status === KILLED
    ? "its manifest says running, but its process has ended (killed, out of memory, a restart); --resume continues it"
    : undefined;
}

export function formatSeconds(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return "";
  if (s < 90) return `${Math.round(s)} s`;
  // Rounded to whole minutes before the split: 7170 s is "2 h 0 min", not "1 h 60 min".
  const minutes = Math.round(s / 60);
  if (minutes < 90) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
