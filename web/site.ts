// `deno task build:site OUT [--data DIR]`: the training page as a static site that any web server can host
// (GitHub Pages, an object store, a university's web space, `python3 -m http.server`), under any path: a
// visitor trains in their own tab on their own GPU, with nothing of ours running on the server.
//
//   OUT/index.html              goes to web/train.html, keeping the query (?experiment=, ?epochs=, ...)
//   OUT/web/train.html          the page (the same file `deno task serve` serves under /web/)
//   OUT/web/dist/train.js       its bundle (web/build.ts)
//   OUT/data/NAME.gz            the four Fashion-MNIST files, gzipped, checked against the official SHA-256
//   OUT/.webgpu-mda-site        what built it: the marker that lets a later build replace the folder
//
// The page finds its data at ../data/ beside its own folder, the layout of `deno task serve` too. WebGPU
// needs a secure context: HTTPS, or http://localhost / 127.0.0.1. The site is written into a temporary
// folder beside OUT and renamed into place, so OUT is never half-written; a folder OUT that this command
// did not write is refused, not replaced.

import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { exitWithError } from "../experiments/cli.ts";
import {
  checkInputDir,
  checkOutputDir,
  checkPositionals,
  type CommandSpec,
  type ParsedFlags,
  parseOrExit,
  stringFlag,
  UsageError,
} from "../experiments/flags.ts";
import { DataError, loadFashionMnist } from "../lib/data/fashion.ts";
import { isGzip } from "../lib/data/idx.ts";
import { buildWebBundle } from "./build.ts";

export const SITE_SPEC: CommandSpec = {
  name: "build:site",
  summary: "Writes the in-browser training page, its bundle and the Fashion-MNIST files as a static site " +
    "that any web server can host under any path (HTTPS, or localhost: WebGPU needs a secure context).",
  positionals: [{
    name: "OUT",
    meaning: "the site's folder (created; a site this command built is replaced)",
  }],
  flags: [
    {
      name: "data",
      kind: "path",
      value: "DIR",
      meaning: "the Fashion-MNIST folder to copy from (the four IDX files, gzipped or not)",
      default: "./data/fashion-mnist, then Debian's dataset-fashion-mnist, else a download",
    },
  ],
  examples: [
    "deno task build:site /tmp/site && python3 -m http.server -d /tmp/site 8080 -b 127.0.0.1",
    "deno task build:site public --data ~/fashion-mnist",
  ],
  notes: [
    "Open OUT/index.html through the server (http://127.0.0.1:8080/ above), not as a file: a page opened " +
    "from file:// cannot fetch its data. The page's query parameters work on index.html too, e.g. " +
    "?experiment=fashion_mda for the notebook's 100 epochs on a GPU.",
  ],
};

/** The file whose presence says a folder is a site this command wrote (and may replace). */
export const SITE_MARKER = ".webgpu-mda-site";

export interface SiteRequest {
  out: string;
  dataDir?: string;
}

export function siteFromFlags(p: ParsedFlags): SiteRequest {
  checkPositionals(SITE_SPEC, p);
  const out = p.positionals[0];
  if (out.trim() === "") throw new UsageError("OUT needs a path, got an empty string");
  checkOutputDir("OUT", out);
  if (existsSync(out) && [...Deno.readDirSync(out)].length > 0 && !existsSync(join(out, SITE_MARKER))) {
    throw new UsageError(
      `OUT ${out}: a folder that build:site did not write (no ${SITE_MARKER}); ` +
        "name a new or empty folder, or remove this one",
    );
  }
  const dataDir = stringFlag(p, "data", "path");
  if (dataDir !== undefined) checkInputDir("--data", dataDir, "a folder with the Fashion-MNIST IDX files");
  return { out, dataDir };
}

/** The redirect of OUT/index.html: to the page beside it, with the visitor's query and fragment. */
const INDEX_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>Train Deep MDA on Fashion-MNIST in this tab</title>
    <script>location.replace("web/train.html" + location.search + location.hash);</script>
    <meta http-equiv="refresh" content="0; url=web/train.html">
  </head>
  <body><p><a href="web/train.html">Train Deep MDA on Fashion-MNIST in this tab</a></p></body>
</html>
`;

export interface SiteFile {
  path: string;
  bytes: number;
}

/** Builds the site into req.out (see the file's comment); returns its files, relative to out. */
export async function buildSite(
  req: SiteRequest,
  log: (line: string) => void = console.error,
): Promise<SiteFile[]> {
  const data = await loadFashionMnist({ dataDir: req.dataDir, log });
  const unofficial = data.files.filter((f) => !f.verified).map((f) => f.path);
  if (unofficial.length > 0) {
    // The page checks every file against the official SHA-256 and would refuse these in every visitor's tab.
    throw new DataError(`not the official Fashion-MNIST file (SHA-256 differs): ${unofficial.join(", ")}`);
  }
  const out = resolve(req.out);
  await Deno.mkdir(dirname(out), { recursive: true });
  const tmp = await Deno.makeTempDir({ dir: dirname(out), prefix: `.${basename(out)}.building-` });
  try {
    await Deno.mkdir(join(tmp, "web", "dist"), { recursive: true });
    await Deno.mkdir(join(tmp, "data"));
    await Deno.writeTextFile(join(tmp, "index.html"), INDEX_HTML);
    await Deno.copyFile(new URL("./train.html", import.meta.url), join(tmp, "web", "train.html"));
    await buildWebBundle(join(tmp, "web", "dist", "train.js"));
    for (const f of data.files) {
      const raw = await Deno.readFile(f.path);
      await Deno.writeFile(join(tmp, "data", `${f.name}.gz`), isGzip(raw) ? raw : gzipSync(raw));
    }
    await Deno.writeTextFile(
      join(tmp, SITE_MARKER),
      JSON.stringify({ built_by: "deno task build:site", data_from: data.dir }, null, 2) + "\n",
    );
    const files = listFiles(tmp);
    await Deno.chmod(tmp, 0o755); // makeTempDir's 0700 would hide the site from a web server's own user
    await replaceFolder(tmp, out);
    return files;
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/** Every file under dir with its size, sorted by path. */
function listFiles(dir: string, prefix = ""): SiteFile[] {
  const files: SiteFile[] = [];
  for (const e of Deno.readDirSync(join(dir, prefix))) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) files.push(...listFiles(dir, rel));
    else files.push({ path: rel, bytes: Deno.statSync(join(dir, rel)).size });
  }
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

/** Puts the finished folder `fresh` at `out` by renames: an old site there is moved aside, then removed. */
async function replaceFolder(fresh: string, out: string): Promise<void> {
  let old: string | undefined;
  if (existsSync(out)) {
    old = `${fresh}.old`;
    await Deno.rename(out, old);
  }
  try {
    await Deno.rename(fresh, out);
  } catch (e) {
    if (old) await Deno.rename(old, out); // put the old site back: nothing lost
    throw e;
  }
  if (old) await Deno.remove(old, { recursive: true });
}

if (import.meta.main) {
  const req = parseOrExit(SITE_SPEC, Deno.args, siteFromFlags);
  try {
    const files = await buildSite(req);
    const mb = (n: number) =>
      n < 2 ** 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
    for (const f of files) console.error(`  ${f.path} (${mb(f.bytes)})`);
    console.error(
      `wrote the site to ${req.out} (${mb(files.reduce((s, f) => s + f.bytes, 0))}); host it over HTTPS or ` +
        `on localhost and open its index.html, e.g. python3 -m http.server -d ${req.out} 8080 -b 127.0.0.1 ` +
        "then http://127.0.0.1:8080/",
    );
  } catch (e) {
    exitWithError(e);
  }
}
