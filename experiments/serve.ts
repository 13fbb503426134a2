// `deno task serve [RESULTS_DIR] [--port N] [--host ADDR] [--data DIR]`: a local, read-only page over a
// results folder: every run and report with its key numbers, each run's figures drawn in the page with
// Observable Plot, and the learning curves of running runs updating as each epoch lands (lib/serve).

import { exitWithError } from "./cli.ts";
import {
  checkInputDir,
  checkPositionals,
  type CommandSpec,
  intFlag,
  type ParsedFlags,
  parseOrExit,
  stringFlag,
  UsageError,
} from "./flags.ts";
import { bundleClient } from "../lib/serve/bundle.ts";
import { startServer } from "../lib/serve/server.ts";
import { buildWebBundle, WEB_DIR } from "../web/build.ts";

export const SERVE_SPEC: CommandSpec = {
  name: "serve",
  summary: "Serves a results folder, read-only, as web pages: the index of runs and reports, each run's " +
    "figures drawn in the page, live curves (epoch, ETA, adapter) while a run writes its history.jsonl, and " +
    "several runs' curves on one plot. Also serves web/ under /web/ and the Fashion-MNIST files under /data/.",
  positionals: [{ name: "RESULTS_DIR", meaning: "the results folder (default: results)", optional: true }],
  flags: [
    { name: "port", kind: "int", value: "N", meaning: "TCP port, 0 for any free one", default: "8000" },
    {
      name: "host",
      kind: "string",
      value: "ADDR",
      meaning: "address to listen on (another than 127.0.0.1 exposes your results to the network)",
      default: "127.0.0.1",
    },
    {
      name: "data",
      kind: "path",
      value: "DIR",
      meaning: "Fashion-MNIST folder served under /data/",
      default: "data/fashion-mnist, then /usr/share/datasets/fashion-mnist",
    },
  ],
  examples: ["deno task serve", "deno task serve results --port 8080"],
};

export interface ServeRequest {
  root: string;
  port: number;
  host: string;
  dataDir?: string;
}

export function serveFromFlags(p: ParsedFlags): ServeRequest {
  checkPositionals(SERVE_SPEC, p);
  const root = p.positionals[0] ?? "results";
  if (root.trim() === "") throw new UsageError("RESULTS_DIR needs a path, got an empty string");
  checkInputDir("RESULTS_DIR", root, "a results folder");
  const host = stringFlag(p, "host") ?? "127.0.0.1";
  if (!/^[A-Za-z0-9.:-]+$/.test(host)) {
    throw new UsageError(`--host expects an address such as 127.0.0.1, got "${host}"`);
  }
  const dataDir = stringFlag(p, "data", "path");
  if (dataDir !== undefined) checkInputDir("--data", dataDir, "a folder with the Fashion-MNIST IDX files");
  return { root, port: intFlag(p, "port", 0, 65535) ?? 8000, host, dataDir };
}

if (import.meta.main) {
  const req = parseOrExit(SERVE_SPEC, Deno.args, serveFromFlags);
  try {
    const client = await bundleClient();
    if (client.error) {
      console.error(`warning: ${client.error}; pages show the saved SVG files, without live curves`);
    }
    let webDir: string | undefined;
    try {
      if (Deno.statSync(WEB_DIR).isDirectory) webDir = WEB_DIR;
    } catch { /* no web/ folder in this checkout */ }
    if (webDir) {
      // The training page's bundle from this checkout's lib/ (a few seconds): never a stale copy.
      try {
        await buildWebBundle();
      } catch (e) {
        console.error(
          `warning: could not bundle web/train.ts (${
            e instanceof Error ? e.message.split("\n")[0] : e
          }); /web/train.html may be missing or out of date`,
        );
      }
    }
    const ac = new AbortController();
    Deno.addSignalListener("SIGINT", () => ac.abort());
    const { server } = startServer({ root: req.root, webDir, dataDir: req.dataDir, client }, {
      hostname: req.host,
      port: req.port,
      signal: ac.signal,
      onListen: (addr) =>
        console.error(
          `serving ${req.root} (read-only) at http://${addr.hostname}:${addr.port}/  (Ctrl-C stops)`,
        ),
    });
    await server.finished;
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      exitWithError(new UsageError(`--port ${req.port} is in use; pick another (or 0)`));
    }
    exitWithError(e);
  }
}
