// Bundles lib/ code for a browser with `deno bundle --platform browser`: the .wgsl files of lib/ go
// in as text through a generated module that calls preloadWgsl (lib/gpu/pipelines.ts) before anything
// else, and the few node: built-ins the shared modules import are mapped to small browser stand-ins.
// Used by the kernel tests in Chromium (tools/browser_tests.ts) and the training page (web/build.ts).

import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = new URL("../", import.meta.url);

export interface BundleOptions {
  /** Modules to import, in order, after the shaders are preloaded (absolute file URLs or paths). */
  entries: string[];
  /** Modules to import before the shaders (e.g. the test-collecting `Deno` stand-in). */
  before?: string[];
  /** Extra import-map entries (specifier -> absolute URL). */
  imports?: Record<string, string>;
  /** Where to write the bundle. */
  outFile: string;
  /** A scratch folder for the generated entry, shader module and config. */
  workDir: string;
  minify?: boolean;
}

export function repoUrl(path: string): string {
  return new URL(path, ROOT).href;
}

/** Every .wgsl file under lib/ (lib/shaders, lib/nn/conv2d, ...) by file name, as loadWgsl looks them up. */
export function shaderTexts(): Record<string, string> {
  const shaders: Record<string, string> = {};
  const walk = (dir: URL) => {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isDirectory) walk(new URL(`${e.name}/`, dir));
      else if (e.isFile && e.name.endsWith(".wgsl")) {
        // loadWgsl finds a preloaded shader by its file name alone: two files of one name would collide.
        if (e.name in shaders) throw new Error(`two shaders named ${e.name} under lib/: rename one`);
        shaders[e.name] = Deno.readTextFileSync(new URL(e.name, dir));
      }
    }
  };
  walk(new URL("lib/", ROOT));
  return shaders;
}

export async function bundleForBrowser(opts: BundleOptions): Promise<void> {
  const { workDir } = opts;
  const spec = (s: string) => JSON.stringify(s.startsWith("/") ? pathToFileURL(s).href : s);
  await Deno.writeTextFile(
    `${workDir}/shaders.ts`,
    `import { preloadWgsl } from ${JSON.stringify(repoUrl("lib/gpu/pipelines.ts"))};\n` +
      `preloadWgsl(${JSON.stringify(shaderTexts())});\n`,
  );
  await Deno.writeTextFile(
    `${workDir}/entry.ts`,
    [
      ...(opts.before ?? []).map((m) => `import ${spec(m)};`),
      `import "./shaders.ts";`,
      ...opts.entries.map((m) => `import ${spec(m)};`),
    ].join("\n") + "\n",
  );
  // The repository's own import map (npm packages) plus the node: stand-ins.
  const repoConfig = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  await Deno.writeTextFile(
    `${workDir}/deno.json`,
    JSON.stringify({
      nodeModulesDir: "none",
      imports: {
        ...repoConfig.imports,
        "node:zlib": repoUrl("web/shims/zlib.ts"),
        "node:path": repoUrl("web/shims/path.ts"),
        ...opts.imports,
      },
    }),
  );
  const args = ["bundle", "--quiet", "--config", `${workDir}/deno.json`, "--platform", "browser"];
  if (opts.minify) args.push("--minify");
  args.push("-o", opts.outFile, `${workDir}/entry.ts`);
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: fileURLToPath(ROOT), // a path: a URL's pathname keeps a space as %20
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) throw new Error(`deno bundle failed:\n${new TextDecoder().decode(out.stderr)}`);
}
