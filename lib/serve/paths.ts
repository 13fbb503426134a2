// Read-only file access below a root folder for the results server: a request path is decoded once,
// refused if any segment is "." or ".." (whatever its encoding), holds a NUL, a backslash or an empty
// segment, and the real path (symlinks resolved) must still lie inside the root's real path.

import { join, sep } from "node:path";

export type Resolved = { ok: true; path: string; isDirectory: boolean } | {
  ok: false;
  status: 400 | 403 | 404;
};

/** Splits a URL path's tail (still percent-encoded) into safe decoded segments, or undefined. */
export function safeSegments(encoded: string): string[] | undefined {
  if (encoded === "") return [];
  const raw = encoded.split("/");
  const out: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const seg = raw[i];
    if (seg === "" && i === raw.length - 1) break; // a trailing slash
    let decoded: string;
    try {
      decoded = decodeURIComponent(seg);
    } catch {
      return undefined; // malformed percent-encoding
    }
    if (decoded === "" || decoded === "." || decoded === ".." || /[\0\\/]/.test(decoded)) return undefined;
    out.push(decoded);
  }
  return out;
}

/** The real path of `segments` below `root`, if it exists and stays inside root after symlinks. */
export async function resolveInside(root: string, segments: string[]): Promise<Resolved> {
  let realRoot: string;
  try {
    realRoot = await Deno.realPath(root);
  } catch {
    return { ok: false, status: 404 };
  }
  let real: string;
  try {
    real = await Deno.realPath(join(realRoot, ...segments));
  } catch {
    return { ok: false, status: 404 };
  }
  if (real !== realRoot && !real.startsWith(realRoot + sep)) return { ok: false, status: 403 };
  const st = await Deno.stat(real);
  return { ok: true, path: real, isDirectory: st.isDirectory };
}

const TYPES: Record<string, string> = {
  svg: "image/svg+xml",
  json: "application/json; charset=utf-8",
  jsonl: "application/x-ndjson; charset=utf-8",
  md: "text/markdown; charset=utf-8",
  txt: "text/plain; charset=utf-8",
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  wgsl: "text/plain; charset=utf-8",
  png: "image/png",
  gz: "application/gzip",
  wasm: "application/wasm",
};

export function contentType(path: string): string {
  const ext = path.slice(path.lastIndexOf(".") + 1).toLowerCase();
  return TYPES[ext] ?? "application/octet-stream";
}
