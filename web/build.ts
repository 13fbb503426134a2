// `deno task build:web`: bundles web/train.ts (and, through it, lib/ and every .wgsl file) into
// web/dist/train.js for web/train.html. The bundle is generated, not committed (web/dist is ignored).

import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleForBrowser, repoUrl } from "../tools/browser_bundle.ts";

/** This checkout's web/ folder: a path, where a URL's pathname would keep a space as %20. */
export const WEB_DIR = dirname(fileURLToPath(import.meta.url));

/**
 * Writes the page's bundle to `outFile` (default web/dist/train.js). The results server serves that file
 * while it is rebuilt: the bundler writes a temporary file beside it, renamed over it once whole.
 */
export async function buildWebBundle(outFile = join(WEB_DIR, "dist", "train.js")): Promise<string> {
  const workDir = await Deno.makeTempDir({ prefix: "web-build-" });
  const partial = join(dirname(outFile), `.${basename(outFile)}.${Deno.pid}.tmp`);
  try {
    await Deno.mkdir(dirname(outFile), { recursive: true });
    await bundleForBrowser({ entries: [repoUrl("web/train.ts")], outFile: partial, workDir, minify: true });
    await Deno.rename(partial, outFile);
  } finally {
    await Deno.remove(workDir, { recursive: true });
    await Deno.remove(partial).catch(() => {}); // left by a failed bundle
  }
  return outFile;
}

if (import.meta.main) {
  const out = await buildWebBundle();
  console.error(`wrote ${out} (${((await Deno.stat(out)).size / 1024).toFixed(0)} KB)`);
}
