// A headless Firefox driven over WebDriver BiDi (one WebSocket), the counterpart of cdp.ts for the tests
// that load, reload and leave the training page in Firefox: Firefox has no DevTools protocol any more.
// Firefox chooses the port (--remote-debugging-port 0) and writes it into the profile
// (WebDriverBiDiServer.json). A tab here is test/tab.ts's Tab, as cdp.ts's Page is.

import { decodeBase64 } from "../lib/io/base64.ts";
import { CommandSocket, endBrowser, launchHeadless, pollExpression, VIEWPORT } from "./headless.ts";

export class FirefoxTab {
  #socket: CommandSocket;
  private constructor(
    private child: Deno.ChildProcess,
    private ws: WebSocket,
    private profile: string,
    /** The browsing context (the tab) every command addresses. */
    private context = "",
  ) {
    this.#socket = new CommandSocket(
      ws,
      (msg) => msg.type === "error" ? `WebDriver BiDi: ${msg.error}: ${msg.message}` : undefined,
    );
  }

  /** A headless Firefox (a fresh profile, WebGPU on unless `webgpu` is false) and its one tab. */
  static async launch(opts: { binary?: string; webgpu?: boolean } = {}): Promise<FirefoxTab> {
    const profile = await Deno.makeTempDir({ prefix: "mda-firefox-" });
    const child = await launchHeadless("firefox", profile, "about:blank", {
      binary: opts.binary,
      webgpu: opts.webgpu,
      firefoxArgs: ["--remote-debugging-port", "0"],
    });
    let port: number | undefined;
    for (let i = 0; i < 300 && port === undefined; i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        port = JSON.parse(await Deno.readTextFile(`${profile}/WebDriverBiDiServer.json`)).ws_port;
      } catch { /* not yet, or half written */ }
    }
    if (port === undefined) {
      child.kill("SIGKILL");
      await child.status;
      await Deno.remove(profile, { recursive: true }).catch(() => {});
      throw new Error("Firefox did not open its WebDriver BiDi port within 30 s");
    }
    const ws = new WebSocket(`ws://127.0.0.1:${port}/session`);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error("could not connect to Firefox's WebDriver BiDi WebSocket"));
    });
    const tab = new FirefoxTab(child, ws, profile);
    try {
      await tab.send("session.new", { capabilities: {} });
      const { contexts } = await tab.send("browsingContext.getTree", { maxDepth: 0 }) as {
        contexts: { context: string }[];
      };
      if (contexts.length === 0) throw new Error("Firefox reported no tab");
      tab.context = contexts[0].context;
      await tab.send("browsingContext.setViewport", {
        context: tab.context,
        viewport: { width: VIEWPORT.width, height: VIEWPORT.height },
      });
      return tab;
    } catch (e) {
      await tab.close();
      throw e;
    }
  }

  send(method: string, params: Record<string, unknown>): Promise<unknown> {
    return this.#socket.send({ method, params });
  }

  /** Navigates and returns once the new document is interactive (cdp.ts's goto returns a little sooner). */
  async goto(url: string): Promise<void> {
    await this.send("browsingContext.navigate", { context: this.context, url, wait: "interactive" });
  }

  /**
   * Reloads the page. Firefox 153 refuses BiDi's ignoreCache ("not supported yet"), which cdp.ts's reload
   * sets: a test that must see every request should serve its files with `cache-control: no-store`.
   */
  async reload(): Promise<void> {
    await this.send("browsingContext.reload", { context: this.context, wait: "interactive" });
  }

  /** The value of a JavaScript expression in the page, awaited, as JSON (undefined stays undefined). */
  async evaluate<T = unknown>(expression: string): Promise<T> {
    const r = await this.send("script.evaluate", {
      expression: `(async () => JSON.stringify(await (${expression})))()`,
      target: { context: this.context },
      awaitPromise: true,
      resultOwnership: "none",
    }) as { type: string; result?: { value?: string }; exceptionDetails?: { text: string } };
    if (r.type === "exception") throw new Error(`in the page: ${r.exceptionDetails?.text}`);
    const json = r.result?.value;
    return (json === undefined ? undefined : JSON.parse(json)) as T;
  }

  /** Polls an expression until it is truthy; fails naming it after timeoutMs. */
  waitFor<T = unknown>(expression: string, timeoutMs = 30_000): Promise<T> {
    return pollExpression<T>((e) => this.evaluate(e), expression, timeoutMs);
  }

  /** A PNG of the whole page (beyond the viewport). */
  async screenshot(path: string): Promise<void> {
    const { data } = await this.send("browsingContext.captureScreenshot", {
      context: this.context,
      origin: "document",
    }) as { data: string };
    await Deno.writeFile(path, decodeBase64(data));
  }

  async close(): Promise<void> {
    await endBrowser(() => this.send("browser.close", {}), this.ws, this.child, this.profile);
  }
}
