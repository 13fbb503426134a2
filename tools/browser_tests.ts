// `deno task test:browser [--browser chromium|firefox] [--filter TEXT] [--timeout SECONDS] [--keep]`
//
// Runs the GPU kernel tests (each kernel against its float64 reference) in a headless browser:
//   - Chromium, whose WebGPU is Dawn with Tint compiling WGSL to SPIR-V for SwiftShader: a third compiler
//     after naga (Deno's wgpu) and Tint-to-GLSL (WEBGPU=dawn);
//   - Firefox (`--browser firefox`), whose WebGPU is its own build of wgpu and naga (another version than
//     Deno's) in a sandboxed GPU process, with the limits a web page gets; on a machine without a GPU it
//     runs on Vulkan lavapipe. Its release builds keep WebGPU off on Linux behind `dom.webgpu.enabled`, which
//     the temporary profile sets.
// The same test files and the same lib/ code, bundled for the browser with `deno bundle --platform browser`:
//   - the .wgsl files go in as text through a generated module that calls preloadWgsl (lib/gpu/pipelines.ts);
//   - `node:assert/strict` maps to test/browser/assert.ts, and `Deno.test` is collected by
//     test/browser/register.ts, then run one by one by test/browser/run.ts;
//   - a small local server serves the page and receives each result.
// Exit status 0 only when every test passed. Chromium on SwiftShader is slow: the tests use small shapes.

import {
  checkPositionals,
  type CommandSpec,
  numberFlag,
  parseOrExit,
  stringFlag,
  UsageError,
} from "../experiments/flags.ts";
import { findFirefox, launchHeadless } from "../test/headless.ts";
import { bundleForBrowser, repoUrl } from "./browser_bundle.ts";

/** The kernel tests that need no file system: each kernel against a float64 reference. */
export const BROWSER_TEST_FILES = [
  "gpu_test.ts",
  "relu_test.ts",
  "adam_test.ts",
  "linear_test.ts",
  "avgpool_test.ts",
  "maxpool_test.ts",
  "batchnorm_test.ts",
  "conv2d_test.ts",
  "gather_test.ts",
  "mda_test.ts",
  "lda_test.ts",
  "softmax_head_test.ts",
  "mda_train_test.ts",
  "tuning_store_test.ts",
];

interface Result {
  name: string;
  status: "ok" | "failed" | "ignored" | "filtered";
  ms: number;
  error?: string;
}

const SPEC: CommandSpec = {
  name: "test:browser",
  summary:
    "Runs the GPU kernel tests in a headless browser (Chromium: WebGPU on SwiftShader; Firefox: its own " +
    "wgpu); exit 0 only when every test passed.",
  positionals: [],
  flags: [
    {
      name: "browser",
      kind: "string",
      value: "NAME",
      meaning: "chromium or firefox",
      default: "chromium",
    },
    { name: "filter", kind: "string", value: "TEXT", meaning: "only the tests whose name contains TEXT" },
    {
      name: "timeout",
      kind: "number",
      value: "SECONDS",
      meaning: "give up (exit 1) after this long",
      default: "900",
    },
    { name: "keep", kind: "boolean", meaning: "keep the temporary folder (bundle, profile)", default: "off" },
    { name: "chromium", kind: "string", value: "PATH", meaning: "the Chromium binary", default: "chromium" },
    {
      name: "firefox",
      kind: "string",
      value: "PATH",
      meaning: "the Firefox binary",
      default: "$FIREFOX, else firefox-esr or firefox on PATH",
    },
  ],
  examples: ["deno task test:browser --filter conv2d", "deno task test:browser --browser firefox"],
};

const values = parseOrExit(SPEC, Deno.args, (p) => {
  checkPositionals(SPEC, p);
  const timeout = numberFlag(p, "timeout", false) ?? 900;
  if (!(timeout > 0)) throw new UsageError(`--timeout must be a positive number of seconds, got ${timeout}`);
  const browser = stringFlag(p, "browser") ?? "chromium";
  if (browser !== "chromium" && browser !== "firefox") {
    throw new UsageError(`--browser: expected chromium or firefox, got "${browser}"`);
  }
  return {
    browser: browser as "chromium" | "firefox",
    filter: stringFlag(p, "filter"),
    timeout,
    keep: p.values.keep === true,
    chromium: stringFlag(p, "chromium", "path") ?? "chromium",
    firefox: stringFlag(p, "firefox", "path"),
  };
});
const browserName = values.browser === "firefox" ? "Firefox" : "Chromium";
const timeoutS = values.timeout;

const dir = await Deno.makeTempDir({ prefix: "browser-tests-" });
try {
  Deno.exitCode = await main();
} finally {
  if (values.keep) console.error(`kept ${dir}`);
  else await removeProfile(dir);
}

/** Chromium's helper processes may still write into the profile for a moment after it exits: retry. */
async function removeProfile(dir: string): Promise<void> {
  for (let attempt = 0;; attempt++) {
    try {
      await Deno.remove(dir, { recursive: true });
      return;
    } catch (e) {
      if (attempt >= 20) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function main(): Promise<number> {
  const bundle = await buildBundle();
  const results: Result[] = [];
  let info: Record<string, unknown> | undefined;
  let finish!: (error?: string) => void;
  const done = new Promise<string | undefined>((resolve) => finish = resolve);
  // An error before the bundle's first report (a module it cannot load, e.g. a node: import that has no
  // stand-in) ends the run at once with its message, instead of a silent wait for the timeout.
  const page = `<!doctype html><meta charset="utf-8"><title>kernel tests</title>` +
    `<script>addEventListener("error", (e) => fetch("/load-error", { method: "POST", ` +
    `body: JSON.stringify({ error: e.message || (e.target && e.target.src ? "could not load " + ` +
    `e.target.src + " or a module it imports (a node: import with no stand-in in ` +
    `tools/browser_bundle.ts?)" : e.type) }) }), true);</script>` +
    `<script type="module" src="/bundle.js"></script>`;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (req.method === "GET" && path === "/") {
      return new Response(page, { headers: { "content-type": "text/html" } });
    }
    if (req.method === "GET" && path === "/bundle.js") {
      return new Response(bundle, { headers: { "content-type": "text/javascript" } });
    }
    if (req.method === "POST") {
      const body = await req.json();
      if (path === "/info") {
        info = body;
        console.error(`browser: ${body.userAgent}`);
        console.error(`adapter: ${JSON.stringify(body.adapter)}`);
      } else if (path === "/result") {
        results.push(body);
        if (body.status === "filtered") return new Response("ok");
        const mark = body.status === "ok" ? "ok" : body.status === "ignored" ? "ignored" : "FAILED";
        console.error(`${body.name} ... ${mark} (${Math.round(body.ms)}ms)`);
        if (body.error) console.error(indent(body.error));
      } else if (path === "/done") finish(body.error);
      else if (path === "/load-error" && !info) finish(`the test bundle did not start: ${body.error}`);
      return new Response("ok");
    }
    return new Response("not found", { status: 404 });
  });
  const url = `http://127.0.0.1:${server.addr.port}/${
    values.filter ? `?filter=${encodeURIComponent(values.filter)}` : ""
  }`;
  const binary = values.browser === "firefox"
    ? values.firefox ?? findFirefox() ?? "firefox-esr"
    : values.chromium;
  let chrome: Deno.ChildProcess;
  try {
    chrome = await launchHeadless(values.browser, `${dir}/profile`, url, {
      binary,
      stderr: "piped",
      chromiumFlags: ["--disable-gpu-sandbox"],
    });
  } catch (e) {
    await server.shutdown();
    const flag = values.browser === "firefox" ? "--firefox" : "--chromium";
    console.error(
      `error: cannot start ${browserName} (${binary}): ${(e as Error).message}; name it with ${flag} PATH`,
    );
    return 1;
  }
  const log: string[] = [];
  const drain = (async () => {
    for await (const chunk of chrome.stderr.pipeThrough(new TextDecoderStream())) log.push(chunk);
  })();
  const t0 = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), timeoutS * 1000));
  const exited = chrome.status.then(() => "exited" as const);
  const outcome = await Promise.race([done.then((e) => ({ error: e })), timedOut, exited]);
  clearTimeout(timer);
  try {
    chrome.kill("SIGTERM");
  } catch { /* already gone */ }
  await chrome.status;
  await drain;
  await server.shutdown();

  const failed = results.filter((r) => r.status === "failed");
  const passed = results.filter((r) => r.status === "ok");
  const seconds = ((performance.now() - t0) / 1000).toFixed(0);
  if (outcome === "timeout" || outcome === "exited" || outcome.error) {
    const why = outcome === "timeout"
      ? `timed out after ${timeoutS} s`
      : outcome === "exited"
      ? `${browserName} exited before the tests finished`
      : `the page failed: ${outcome.error}`;
    console.error(`error: ${why}; ${passed.length} passed, ${failed.length} failed so far`);
    if (!info) {
      console.error(
        `the page never reported; ${browserName}'s log ends:\n${indent(log.join("").slice(-3000))}`,
      );
    }
    return 1;
  }
  if (info && !info.adapter) {
    const refused = info.adapterError ? `: it says "${info.adapterError}"` : "";
    console.error(
      values.browser === "firefox"
        ? `error: Firefox offered no WebGPU adapter${refused} (Debian's firefox-esr 140 has no WebGPU in its ` +
          "release build, 153 has; on a machine without a GPU it needs Vulkan lavapipe: " +
          "mesa-vulkan-drivers)"
        : `error: Chromium offered no WebGPU adapter${refused} (needs --enable-unsafe-webgpu ` +
          "--enable-unsafe-swiftshader)",
    );
    return 1;
  }
  console.error(
    `${
      failed.length ? "FAILED" : "ok"
    } | ${passed.length} passed | ${failed.length} failed (${seconds}s, ${browserName})`,
  );
  return failed.length || passed.length === 0 ? 1 : 0;
}

/** Bundles the kernel tests, lib/ and every .wgsl file into one browser module. */
async function buildBundle(): Promise<string> {
  await bundleForBrowser({
    before: [repoUrl("test/browser/register.ts")],
    entries: [...BROWSER_TEST_FILES.map((f) => repoUrl(`test/${f}`)), repoUrl("test/browser/run.ts")],
    imports: { "node:assert/strict": repoUrl("test/browser/assert.ts") },
    outFile: `${dir}/bundle.js`,
    workDir: dir,
  });
  return await Deno.readTextFile(`${dir}/bundle.js`);
}

function indent(s: string): string {
  return s.split("\n").map((l) => `    ${l}`).join("\n");
}
