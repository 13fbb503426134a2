// The pages' event stream (server.ts's /api/events): ONE stream for all the runs a page follows, closed
// once each run's status is final. A browser opens 6 HTTP/1.1 connections a host and queues the rest: a
// stream per run, or one held open for a run that is over, left a comparison of 8 runs with 2 that never
// updated, and a few open pages blocked every other request to the server.

import { isFinal } from "./common.ts";
import type { RunSummary } from "./scan.ts";
import type { HistoryRow } from "../types.ts";

export interface RunUpdate {
  dir: string;
  summary: RunSummary;
  history: HistoryRow[];
}

/**
 * Calls `onUpdate` with each update of the runs in `dirs` until every one's status is final; nothing is
 * opened where `dirs` is empty. `origin` is the server's, for a caller outside its pages.
 */
export function followRuns(
  dirs: string[],
  onUpdate: (update: RunUpdate) => void,
  origin = "",
): EventSource | undefined {
  const live = new Set(dirs);
  if (!live.size) return undefined;
  const query = new URLSearchParams(dirs.map((d) => ["run", d]));
  const events = new EventSource(`${origin}/api/events?${query}`);
  events.addEventListener("update", (e) => {
    const update = JSON.parse((e as MessageEvent).data) as RunUpdate;
    if (isFinal(update.summary.status)) live.delete(update.dir);
    // The server ends the stream then too, but an EventSource whose stream ended connects again.
    if (!live.size) events.close();
    onUpdate(update);
  });
  return events;
}
