// The results server: read-only HTTP over a results folder (Deno.serve, 127.0.0.1 by default).
//   /                     index of every run and report page with key numbers
//   /view/DIR             a run's page (figures drawn in the page, live while it runs) or a report page
//   /compare?run=A&run=B  several runs' curves on one plot
//   /files/PATH           any file below the results folder, as is
//   /api/index, /api/run/DIR
//   /api/events?run=A&run=B, /api/events/DIR (server-sent events: runs' histories as each epoch lands)
//   /static/client.js     the pages' script (bundled at start)
//   /web/PATH             the repository's web/ folder, when it exists
//   /data/, /data/FILE    the Fashion-MNIST files, found where lib/data finds them
// Only GET and HEAD; no request can name a path outside these folders (see paths.ts), and nothing is written.

import { join } from "node:path";
import { FASHION_LOCAL_DIR, FASHION_SYSTEM_DIR, locateAll } from "../data/fashion.ts";
import { processGone } from "../io/process.ts";
import { isFinal } from "./common.ts";
import { comparePage, errorPage, indexPage, reportPage, runPage } from "./html.ts";
import { contentType, resolveInside, safeSegments } from "./paths.ts";
import { readHistoryFile, readRun, runData, scanResults, summarizeRun } from "./scan.ts";

export interface ServerOptions {
  /** The results folder. */
  root: string;
  /** The repository's web/ folder, served under /web/ when it exists. */
  webDir?: string;
  /** Where the Fashion-MNIST files are (default: as lib/data looks: data/fashion-mnist, then the system's). */
  dataDir?: string;
  /** The bundled page script, or why there is none. */
  client?: { js?: string; error?: string };
  /** How often an open event stream looks at history.jsonl and manifest.json (ms). */
  pollMs?: number;
}

const HTML = "text/html; charset=utf-8";

/** A run folder: its real path, and the results-relative folder it was asked by. */
type RunDir = { abs: string; dir: string };

function respond(body: BodyInit | null, status = 200, type = HTML, extra: HeadersInit = {}): Response {
  return new Response(body, {
    status,
    headers: {
      "content-type": type,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      ...extra,
    },
  });
}

const json = (v: unknown) => respond(JSON.stringify(v), 200, "application/json; charset=utf-8");
const fail = (status: number, message: string) => respond(errorPage(status, message), status);

export class ResultsServer {
  #streams = new Set<() => void>();
  constructor(readonly opts: ServerOptions) {}

  /** How many event streams are open now. */
  get openStreams(): number {
    return this.#streams.size;
  }

  /** Closes every open event stream (so a server's shutdown does not wait on them). */
  closeStreams(): void {
    for (const close of [...this.#streams]) close();
  }

  /** The training page's URL when web/ has it and its bundle (`deno task build:web`, or serve's start). */
  private trainPage(): string | undefined {
    const web = this.opts.webDir;
    if (!web) return undefined;
    try {
      Deno.statSync(`${web}/train.html`);
      Deno.statSync(`${web}/dist/train.js`);
      return "/web/train.html";
    } catch {
      return undefined;
    }
  }

  handler = async (req: Request): Promise<Response> => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return respond("read-only: GET and HEAD only\n", 405, "text/plain", { allow: "GET, HEAD" });
    }
    const url = new URL(req.url);
    const path = url.pathname;
    const tail = (prefix: string) => safeSegments(path.slice(prefix.length));
    try {
      if (path === "/") {
        const { runs, reports } = await scanResults(this.opts.root);
        return respond(indexPage(this.opts.root, runs, reports, this.trainPage()));
      }
      if (path === "/api/index") return json(await scanResults(this.opts.root));
      if (path === "/static/client.js") {
        const c = this.opts.client;
        if (!c?.js) return respond(`// ${c?.error ?? "no page script"}\n`, 503, "text/javascript");
        return respond(c.js, 200, "text/javascript; charset=utf-8");
      }
      if (path === "/compare") return await this.compare(url);
      if (path.startsWith("/view/")) return await this.view(tail("/view/"));
      if (path.startsWith("/api/run/")) return await this.runJson(tail("/api/run/"), url);
      if (path === "/api/events" || path.startsWith("/api/events/")) {
        const runs = path === "/api/events"
          ? await this.#runDirs(url)
          : await this.#runDir(tail("/api/events/"));
        if (runs instanceof Response) return runs;
        return this.events(Array.isArray(runs) ? runs : [runs]);
      }
      if (path === "/files" || path.startsWith("/files/")) {
        return await this.file(this.opts.root, tail("/files/"), "/files");
      }
      if (path === "/web" || path.startsWith("/web/")) {
        if (!this.opts.webDir) return fail(404, "this repository has no web/ folder");
        return await this.file(this.opts.webDir, tail("/web/"), "/web", "index.html");
      }
      if (path === "/data" || path.startsWith("/data/")) return await this.data(tail("/data/"));
      return fail(404, `no such page: ${path}`);
    } catch (e) {
      return fail(500, (e as Error).message);
    }
  };

  /** A run folder (one with manifest.json) named by URL segments, or the response refusing it. */
  async #runDir(segments: string[] | undefined): Promise<RunDir | Response> {
    if (!segments || segments.length === 0) return fail(400, "bad run folder in the URL");
    const r = await resolveInside(this.opts.root, segments);
    if (!r.ok) return fail(r.status, "no such run folder");
    if (!r.isDirectory) return fail(404, "not a run folder");
    return { abs: r.path, dir: segments.join("/") };
  }

  /** The run folders named by ?run=A&run=B (results-relative, repeats dropped), or the response refusing one. */
  async #runDirs(url: URL): Promise<RunDir[] | Response> {
    const runs: RunDir[] = [];
    for (const d of url.searchParams.getAll("run")) {
      const run = await this.#runDir(safeSegments(d.split("/").map(encodeURIComponent).join("/")));
      if (run instanceof Response) return run;
      if (!runs.some((r) => r.dir === run.dir)) runs.push(run);
    }
    return runs;
  }

  async view(segments: string[] | undefined): Promise<Response> {
    const run = await this.#runDir(segments);
    if (run instanceof Response) return run;
    const files = await readRun(run.abs);
    if (files.manifest) {
      const figures = ((await readJson(join(run.abs, "figures.json"))) ?? []) as {
        file: string;
        caption: string;
      }[];
      const summary = await summarizeRun(run.abs, run.dir, files);
      return respond(
        runPage(summary, files.manifest, files.metrics, Array.isArray(figures) ? figures : []),
      );
    }
    try {
      return respond(reportPage(run.dir, await Deno.readTextFile(join(run.abs, "README.md"))));
    } catch {
      return fail(404, `${run.dir} holds no run (manifest.json) and no page (README.md)`);
    }
  }

  async compare(url: URL): Promise<Response> {
    const chosen = await this.#runDirs(url);
    if (chosen instanceof Response) return chosen;
    const { runs } = await scanResults(this.opts.root);
    return respond(comparePage(chosen.map((r) => r.dir), runs));
  }

  async runJson(segments: string[] | undefined, url: URL): Promise<Response> {
    const run = await this.#runDir(segments);
    if (run instanceof Response) return run;
    if (url.searchParams.has("curves")) {
      return json({
        dir: run.dir,
        summary: await summarizeRun(run.abs, run.dir),
        history: await readHistoryFile(run.abs),
      });
    }
    return json(await runData(run.abs, run.dir));
  }

  /**
   * Server-sent events: an "update" ({ dir, summary, history }) for each run, at once and then whenever its
   * history.jsonl or manifest.json changes or its process ends. A run whose status is final gets no more,
   * and the stream ends once every run's is: one stream serves a comparison of many runs, and none is held
   * for runs that are over (a browser opens 6 HTTP/1.1 connections a host and queues the rest).
   */
  // A closed connection cancels the body stream (cancel below), which stops the polling.
  events(runs: RunDir[]): Response {
    if (!runs.length) return fail(400, "name the runs to follow: /api/events?run=DIR&run=DIR");
    const pollMs = this.opts.pollMs ?? 500;
    const enc = new TextEncoder();
    const followed = runs.map((r) => ({ ...r, signature: "", status: "", owner: {} }));
    let timer: ReturnType<typeof setInterval> | undefined;
    let closed = false;
    let close = () => {};
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        let busy = false;
        let idle = 0;
        close = () => {
          if (closed) return;
          closed = true;
          clearInterval(timer);
          this.#streams.delete(close);
          try {
            controller.close();
          } catch { /* already closed by the client */ }
        };
        this.#streams.add(close);
        const send = (text: string) => !closed && controller.enqueue(enc.encode(text));
        const tick = async () => {
          if (busy || closed) return;
          busy = true;
          try {
            let sent = false;
            for (const run of followed) {
              if (isFinal(run.status)) continue;
              // A killed run's files never change again: its process's end is part of what is watched.
              const gone = run.status === "running" && processGone(run.owner);
              const sig = `${await filesSignature(run.abs)}|${gone}`;
              if (sig === run.signature) continue;
              run.signature = sig;
              const files = await readRun(run.abs);
              const summary = await summarizeRun(run.abs, run.dir, files);
              run.status = summary.status;
              run.owner = summary.process ?? {};
              const payload = { dir: run.dir, summary, history: files.history };
              send(`event: update\ndata: ${JSON.stringify(payload)}\n\n`);
              sent = true;
            }
            if (followed.every((r) => isFinal(r.status))) close();
            else if (sent) idle = 0;
            else if (++idle * pollMs >= 15_000) {
              idle = 0;
              send(`: still here\n\n`); // keeps proxies from timing out
            }
          } catch {
            close();
          } finally {
            busy = false;
          }
        };
        timer = setInterval(tick, pollMs);
        tick();
      },
      cancel: () => close(),
    });
    return respond(stream, 200, "text/event-stream; charset=utf-8");
  }

  /** A file (or a folder's listing) below base. */
  async file(
    base: string,
    segments: string[] | undefined,
    prefix: string,
    index?: string,
  ): Promise<Response> {
    if (!segments) return fail(400, "bad path");
    const r = await resolveInside(base, segments);
    if (!r.ok) return fail(r.status, r.status === 403 ? "outside the served folder" : "not found");
    if (r.isDirectory) {
      if (index) {
        const i = await resolveInside(base, [...segments, index]);
        if (i.ok && !i.isDirectory) return respond(await Deno.readFile(i.path), 200, contentType(i.path));
      }
      const names: string[] = [];
      for await (const e of Deno.readDir(r.path)) names.push(e.isDirectory ? `${e.name}/` : e.name);
      names.sort();
      const here = [prefix, ...segments.map(encodeURIComponent)].join("/");
      const items = names.map((n) =>
        `<li><a href="${here}/${encodeURIComponent(n.replace(/\/$/, ""))}">${
          n.replace(/&/g, "&amp;").replace(/</g, "&lt;")
        }</a></li>`
      );
      return respond(`<!doctype html><meta charset="utf-8"><ul>${items.join("")}</ul>\n`);
    }
    return respond(await Deno.readFile(r.path), 200, contentType(r.path));
  }

  /** The Fashion-MNIST files as lib/data finds them: --data, else data/fashion-mnist, else the system's. */
  async data(segments: string[] | undefined): Promise<Response> {
    if (!segments || segments.length > 1) return fail(400, "bad path");
    const dirs = this.opts.dataDir ? [this.opts.dataDir] : [FASHION_LOCAL_DIR, FASHION_SYSTEM_DIR];
    const dir = dirs.find((d) => locateAll(d).missing.length === 0);
    if (!dir) return fail(404, `Fashion-MNIST not found in ${dirs.join(" or ")}`);
    const found = locateAll(dir).found;
    if (segments.length === 0) {
      return json(
        found.map((f) => ({ name: f.name, file: f.path.split("/").pop(), gzip: f.path.endsWith(".gz") })),
      );
    }
    const wanted = segments[0];
    const hit = found.find((f) => f.path.split("/").pop() === wanted);
    if (!hit) return fail(404, `no Fashion-MNIST file named ${wanted}`);
    return respond(await Deno.readFile(hit.path), 200, contentType(hit.path));
  }
}

/** Changes whenever the trainer rewrites history.jsonl or manifest.json. */
async function filesSignature(abs: string): Promise<string> {
  return (await Promise.all(["history.jsonl", "manifest.json"].map(async (f) => {
    try {
      const st = await Deno.stat(join(abs, f));
      return `${st.ino}:${st.size}:${st.mtime?.getTime()}`;
    } catch {
      return "-";
    }
  }))).join("|");
}

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return undefined;
  }
}

/** Serves `opts.root` on hostname:port until signal aborts; resolves with the bound address. */
export function startServer(
  opts: ServerOptions,
  listen: { hostname: string; port: number; signal?: AbortSignal; onListen?: (addr: Deno.NetAddr) => void },
): { server: Deno.HttpServer<Deno.NetAddr>; results: ResultsServer } {
  const results = new ResultsServer(opts);
  const server = Deno.serve({
    hostname: listen.hostname,
    port: listen.port,
    signal: listen.signal,
    onListen: (addr) => listen.onListen?.(addr),
  }, results.handler);
  listen.signal?.addEventListener("abort", () => results.closeStreams());
  return { server, results };
}
