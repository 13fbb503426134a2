// `deno task build:web`: bundles web/train.ts (and, through it, lib/ and every .wgsl file) into
// web/dist/train.js for web/train.html. The bundle is generated, not committed (web/dist is ignored).

import { bundleForBrowser, repoUrl } from "../tools/browser_bundle.ts";

/** Writes the page's bundle to `outFile` (default web/dist/train.js). */
export async function buildWebBundle(
  outFile = new URL("./dist/train.js", import.meta.url).pathname,
): Promise<string> {
  const workDir = await Deno.makeTempDir({ prefix: "web-build-" });
  try {
    await Deno.mkdir(new URL(".", `file://${outFile}`), { recursive: true });
    await bundleForBrowser({ entries: [repoUrl("web/train.ts")], outFile, workDir, minify: true });
  } finally {
    await Deno.remove(workDir, { recursive: true });
  }
  return outFile;
}

if (import.meta.main) {
  const out = await buildWebBundle();
  console.error(`wrote ${out} (${((await Deno.stat(out)).size / 1024).toFixed(0)} KB)`);
}
