// The browser script of the results pages (lib/serve/client.ts with Observable Plot and the figure
// functions), bundled once per server start with `deno bundle` into memory: no file is written and
// nothing is fetched by the page from the network.

import { fileURLToPath } from "node:url";

// Paths, not URLs' pathnames: those keep a space as %20, and no such folder exists.
const CLIENT = fileURLToPath(new URL("./client.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export async function bundleClient(): Promise<{ js?: string; error?: string }> {
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform", "browser", "--minify", CLIENT],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const js = new TextDecoder().decode(out.stdout);
    if (!out.success || !js.trim()) {
      const err = new TextDecoder().decode(out.stderr).split("\n").filter((l) => /error/i.test(l))[0];
      return { error: `deno bundle failed (exit ${out.code}): ${err ?? "no output"}` };
    }
    return { js };
  } catch (e) {
    return { error: `deno bundle could not run: ${(e as Error).message}` };
  }
}
