// One browser tab as the page tests use it, in headless Chromium (over the DevTools protocol, cdp.ts) or
// headless Firefox (over WebDriver BiDi, bidi.ts): the tests are written once against this interface and
// run in both browsers.

import { FirefoxTab } from "./bidi.ts";
import { Browser, findChromium } from "./cdp.ts";
import { type BrowserKind, CHROMIUM_WEBGPU_FLAGS, findFirefox, VIEWPORT } from "./headless.ts";

export interface Tab {
  /** Navigates; returns once the navigation has started (Chromium) or the document is interactive (Firefox). */
  goto(url: string): Promise<void>;
  /** Reloads (Chromium's bypasses the HTTP cache, Firefox's cannot: serve with no-store where it matters). */
  reload(): Promise<void>;
  /** The value of a JavaScript expression in the page, awaited (JSON-able). */
  evaluate<T = unknown>(expression: string): Promise<T>;
  /** Polls an expression until it is truthy; fails naming it after timeoutMs. */
  waitFor<T = unknown>(expression: string, timeoutMs?: number): Promise<T>;
  /** A PNG of the whole page (beyond the viewport). */
  screenshot(path: string): Promise<void>;
  /** Chromium only: crashes the GPU process, so every WebGPU device is lost (cdp.ts). */
  crashGpu?(): Promise<void>;
}

/**
 * The browsers the results pages' tests run in: whether each is installed, its name in test names, the
 * prefix of its screenshots and the Debian package that brings it.
 */
export const BROWSERS = [
  {
    browser: "chromium",
    label: "Chromium",
    installed: findChromium() !== undefined,
    shot: "",
    apt: "chromium",
  },
  {
    browser: "firefox",
    label: "Firefox",
    installed: findFirefox() !== undefined,
    shot: "firefox_",
    apt: "firefox-esr",
  },
] as const;

let firefoxProbe: Promise<string | undefined> | undefined;

/**
 * Why headless Firefox cannot run the WebGPU page tests on this machine, or undefined when it can. Debian
 * bookworm's firefox-esr 140 has navigator.gpu once dom.webgpu.enabled is set but refuses every adapter
 * ("NotSupportedError: WebGPU is not yet available in Release or late Beta builds."; its 153 update runs
 * them), and a machine with neither a GPU nor Vulkan lavapipe offers none. Asked once per process: one
 * browser start, a few seconds. Never throws: a Firefox that cannot be asked is a problem too.
 */
export function firefoxWebGpuProblem(): Promise<string | undefined> {
  return firefoxProbe ??= (async () => {
    // WebGPU needs a secure context: a page from 127.0.0.1 is one, about:blank is not.
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      () =>
        new Response("<!doctype html><title>WebGPU probe</title>", {
          headers: { "content-type": "text/html" },
        }),
    );
    try {
      const { tab, close } = await openTab("firefox", { webgpu: true });
      try {
        await tab.goto(`http://127.0.0.1:${server.addr.port}/`);
        const problem = await tab.evaluate<string>(`(async () => {
          if (!navigator.gpu) return "navigator.gpu is undefined";
          try {
            return (await navigator.gpu.requestAdapter()) ? "" : "requestAdapter gave no adapter";
          } catch (e) {
            return "requestAdapter refused: " + e.name + ": " + e.message;
          }
        })()`);
        const version = await tab.evaluate<string>(`navigator.userAgent.match(/Firefox\\/[0-9.]+/)?.[0]`);
        return problem === "" ? undefined : `${version ?? "Firefox"}: ${problem}`;
      } finally {
        await close();
      }
    } catch (e) {
      // Not the page tests' failure to report: a Firefox that does not start skips them, said in a line
      // (the results-page tests and test:firefox, which start it too, fail on it).
      return `could not ask Firefox: ${(e as Error).message}`;
    } finally {
      await server.shutdown();
    }
  })();
}

/**
 * A headless browser (a fresh profile) and one tab; `close` ends the browser and removes its profile.
 * `webgpu`: WebGPU on (SwiftShader in Chromium, lavapipe or a GPU in Firefox); off (default), Chromium
 * runs with --disable-gpu.
 */
export async function openTab(
  browser: BrowserKind,
  opts: { webgpu?: boolean } = {},
): Promise<{ tab: Tab; close: () => Promise<void> }> {
  if (browser === "firefox") {
    const tab = await FirefoxTab.launch({ webgpu: opts.webgpu ?? false });
    return { tab, close: () => tab.close() };
  }
  const chromium = await Browser.launch(
    findChromium() ?? "chromium",
    opts.webgpu ? CHROMIUM_WEBGPU_FLAGS : undefined,
  );
  try {
    return { tab: await chromium.newPage(VIEWPORT.width, VIEWPORT.height), close: () => chromium.close() };
  } catch (e) {
    await chromium.close();
    throw e;
  }
}
