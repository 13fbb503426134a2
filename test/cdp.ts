// deno-lint-ignore-file no-explicit-any
// A headless Chromium driven over the DevTools protocol (one WebSocket, flattened sessions), for the
// tests that open our pages in a real browser. Chromium is found on PATH (or $CHROMIUM); without it the
// tests skip with a message.

import { decodeBase64 } from "../lib/io/base64.ts";
import { CommandSocket, endBrowser, pollExpression } from "./headless.ts";

export function findChromium(): string | undefined {
  const env = Deno.env.get("CHROMIUM");
  if (env) return env;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
      try {
        if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
      } catch { /* not here */ }
    }
  }
  return undefined;
}

export class Browser {
  #socket: CommandSocket;
  private constructor(
    private child: Deno.ChildProcess,
    private ws: WebSocket,
    private profile: string,
  ) {
    this.#socket = new CommandSocket(
      ws,
      (msg) => msg.error ? `CDP: ${(msg.error as { message: string }).message}` : undefined,
    );
  }

  /** `gpuFlags` replaces the default "--disable-gpu" (e.g. WebGPU on SwiftShader for the training page). */
  static async launch(executable: string, gpuFlags: string[] = ["--disable-gpu"]): Promise<Browser> {
    const profile = await Deno.makeTempDir({ prefix: "mda-chromium-" });
    const child = new Deno.Command(executable, {
      env: { TMPDIR: profile }, // its singleton folder goes with the profile (headless.ts says why)
      args: [
        "--headless=new",
        "--no-sandbox",
        ...gpuFlags,
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--remote-debugging-port=0",
        `--user-data-dir=${profile}`,
        "about:blank",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    // Chromium writes the port it chose and the browser's WebSocket path into the profile.
    let lines: string[] = [];
    for (let i = 0; i < 300 && lines.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        lines = (await Deno.readTextFile(`${profile}/DevToolsActivePort`)).trim().split("\n");
      } catch { /* not yet */ }
    }
    if (lines.length < 2) {
      child.kill("SIGKILL");
      throw new Error(`${executable} did not open its DevTools port within 30 s`);
    }
    const ws = new WebSocket(`ws://127.0.0.1:${lines[0]}${lines[1]}`);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error("could not connect to Chromium's DevTools WebSocket"));
    });
    return new Browser(child, ws, profile);
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<any> {
    return this.#socket.send({ method, params, ...(sessionId ? { sessionId } : {}) });
  }

  /** A new tab, attached; its commands carry the session id. */
  async newPage(width = 1280, height = 1000): Promise<Page> {
    const { targetId } = await this.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.send("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(this, sessionId);
    await page.send("Page.enable");
    await page.send("Runtime.enable");
    await page.send("Emulation.setDeviceMetricsOverride", {
      width,
      height,
      deviceScaleFactor: 1,
      mobile: false,
    });
    return page;
  }

  async close(): Promise<void> {
    await endBrowser(() => this.send("Browser.close"), this.ws, this.child, this.profile);
  }
}

export class Page {
  constructor(private browser: Browser, private sessionId: string) {}

  send(method: string, params: Record<string, unknown> = {}): Promise<any> {
    return this.browser.send(method, params, this.sessionId);
  }

  async goto(url: string): Promise<void> {
    await this.send("Page.navigate", { url });
  }

  /**
   * Crashes the browser's GPU process (as a driver reset or a GPU hang would take it): every WebGPU device
   * of every tab is lost; Chromium starts a new GPU process for the next request.
   */
  async crashGpu(): Promise<void> {
    await this.browser.send("Browser.crashGpuProcess");
  }

  /** Reloads the page, bypassing the HTTP cache. */
  async reload(): Promise<void> {
    await this.send("Page.reload", { ignoreCache: true });
  }

  /** The value of a JavaScript expression in the page (JSON-able). */
  async evaluate<T = unknown>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) {
      throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    }
    return r.result.value as T;
  }

  /** Polls an expression until it is truthy; fails naming it after timeoutMs. */
  waitFor<T = unknown>(expression: string, timeoutMs = 30_000): Promise<T> {
    return pollExpression<T>((e) => this.evaluate(e), expression, timeoutMs);
  }

  /** A PNG of the whole page (beyond the viewport). */
  async screenshot(path: string): Promise<void> {
    // Chromium answers "Cannot take screenshot with 0 width" when asked while the page has no layout yet
    // (seen once in a loaded CI run, right after a navigation): wait for a frame and ask again, a few times.
    let data = "";
    for (let attempt = 1;; attempt++) {
      try {
        ({ data } = await this.send("Page.captureScreenshot", {
          format: "png",
          captureBeyondViewport: true,
        }));
        break;
      } catch (e) {
        if (attempt === 5 || !/with 0 (width|height)/.test((e as Error).message)) throw e;
        await this.evaluate("new Promise((r) => requestAnimationFrame(() => r(true)))").catch(() => {});
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
    await Deno.writeFile(path, decodeBase64(data));
  }
}
