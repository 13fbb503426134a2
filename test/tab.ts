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
