// Headless Chromium and Firefox for the tests and benches that open a page and collect what it posts back
// to a local server (the kernel tests in tools/browser_tests.ts, the training page in
// test/web_train_test.ts, the step in bench/implementations.ts) or drive a tab (Firefox's in bidi.ts). One
// launcher, so that the flags, the profile and WebGPU's switch are written once; below it, what the two tab
// drivers (cdp.ts, bidi.ts) share: polling the page, ending the browser, removing its profile.
// - Chromium's WebGPU is Dawn; without a GPU it runs on SwiftShader, which needs the "unsafe" flags below.
// - Firefox's WebGPU is its own build of wgpu and naga, in a separate GPU process, with the limits a web
//   page gets; on a machine without a GPU it runs on Vulkan lavapipe (mesa-vulkan-drivers), which it
//   reports as a fallback adapter with no name. Its release builds keep WebGPU off on Linux: the profile
//   made here turns it on.

export type BrowserKind = "chromium" | "firefox";

/** A page test's tab: its width and height, in both browsers (test/tab.ts). */
export const VIEWPORT = { width: 1280, height: 1000 };

/** Chromium's flags for WebGPU with or without a GPU (SwiftShader). */
export const CHROMIUM_WEBGPU_FLAGS = ["--enable-unsafe-webgpu", "--enable-unsafe-swiftshader"];

/** The Firefox binary: $FIREFOX, else firefox-esr (Debian's package) or firefox on PATH; undefined when none. */
export function findFirefox(): string | undefined {
  const env = Deno.env.get("FIREFOX");
  if (env) return env;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    for (const name of ["firefox-esr", "firefox"]) {
      try {
        if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
      } catch { /* not here */ }
    }
  }
  return undefined;
}

/** Preferences of Firefox's test profile (WebGPU's is set per launch): no first-run pages, updates or telemetry. */
const FIREFOX_PREFS: Record<string, boolean> = {
  "gfx.webgpu.ignore-blocklist": true,
  "browser.shell.checkDefaultBrowser": false,
  "browser.aboutwelcome.enabled": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "toolkit.telemetry.reportingpolicy.firstRun": false,
  "app.update.auto": false,
};

export interface HeadlessOptions {
  /** The binary (default: chromium; for Firefox, findFirefox(), else firefox-esr). */
  binary?: string;
  /** WebGPU on (default) or off. */
  webgpu?: boolean;
  /** "piped" to read the browser's log (then the caller must drain it); default "null". */
  stderr?: "piped" | "null";
  /** More Chromium flags. */
  chromiumFlags?: string[];
  /** More Firefox arguments. */
  firefoxArgs?: string[];
}

/**
 * Starts a headless browser on `url` with a fresh profile in `profileDir` (created; the caller removes it
 * after the process has ended).
 */
export async function launchHeadless(
  kind: BrowserKind,
  profileDir: string,
  url: string,
  opts: HeadlessOptions = {},
): Promise<Deno.ChildProcess> {
  const webgpu = opts.webgpu ?? true;
  const stdio = { stdout: "null", stderr: opts.stderr ?? "null" } as const;
  if (kind === "chromium") {
    await Deno.mkdir(profileDir, { recursive: true });
    return new Deno.Command(opts.binary ?? "chromium", {
      // Chromium keeps its process-singleton folder in TMPDIR and leaves it there when it is killed: in the
      // profile, it goes when the profile does.
      env: { TMPDIR: profileDir },
      args: [
        "--headless=new",
        "--no-sandbox",
        ...(webgpu ? CHROMIUM_WEBGPU_FLAGS : ["--disable-features=WebGPU"]),
        "--no-first-run",
        ...(opts.chromiumFlags ?? []),
        `--user-data-dir=${profileDir}`,
        url,
      ],
      ...stdio,
    }).spawn();
  }
  await Deno.mkdir(profileDir, { recursive: true });
  const prefs = { "dom.webgpu.enabled": webgpu, ...FIREFOX_PREFS };
  await Deno.writeTextFile(
    `${profileDir}/user.js`,
    Object.entries(prefs).map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${v});\n`).join(""),
  );
  return new Deno.Command(opts.binary ?? findFirefox() ?? "firefox-esr", {
    args: ["--headless", "--no-remote", "--profile", profileDir, ...(opts.firefoxArgs ?? []), url],
    env: { MOZ_CRASHREPORTER_DISABLE: "1" },
    ...stdio,
  }).spawn();
}

/** Tab.waitFor of both drivers (test/tab.ts): evaluates `expression` every 100 ms until it is truthy. */
export async function pollExpression<T>(
  evaluate: (expression: string) => Promise<unknown>,
  expression: string,
  timeoutMs = 30_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      last = await evaluate(expression);
      if (last) return last as T;
    } catch (e) {
      last = (e as Error).message; // the page may be between documents
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${expression} (last: ${JSON.stringify(last)})`,
  );
}

/**
 * Ends a driven browser (cdp.ts, bidi.ts): its own close command (3 s at most), then the socket, the process
 * and its profile folder.
 */
export async function endBrowser(
  closeCommand: () => Promise<unknown>,
  ws: WebSocket,
  child: Deno.ChildProcess,
  profile: string,
): Promise<void> {
  try {
    await Promise.race([closeCommand(), new Promise((r) => setTimeout(r, 3000))]);
  } catch { /* already gone */ }
  ws.close();
  try {
    child.kill("SIGKILL");
  } catch { /* exited */ }
  await child.status;
  // A profile left behind is litter, not a failure of the test that used the browser.
  await removeSoon(profile).catch((e) => console.error(`warning: ${profile} not removed: ${e.message}`));
}

/**
 * Removes a browser's profile folder, trying again for 5 s: Chromium's helper processes may still write
 * into it for a moment after the browser has exited.
 */
export async function removeSoon(dir: string): Promise<void> {
  for (let attempt = 0;; attempt++) {
    try {
      return await Deno.remove(dir, { recursive: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      if (attempt >= 20) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

/**
 * The request/answer half of both tab drivers (cdp.ts, bidi.ts): each command goes out as JSON with a new
 * id, and the message carrying that id settles it; messages with no pending id (events) are dropped.
 * `errorOf` says whether an answer is an error, in the protocol's own words.
 */
export class CommandSocket {
  #id = 0;
  #pending = new Map<number, Pending>();
  constructor(readonly ws: WebSocket, errorOf: (msg: Record<string, unknown>) => string | undefined) {
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data as string);
      const p = msg.id !== undefined ? this.#pending.get(msg.id) : undefined;
      if (!p) return;
      this.#pending.delete(msg.id);
      const error = errorOf(msg);
      if (error !== undefined) p.reject(new Error(error));
      else p.resolve(msg.result);
    };
  }

  /** Sends `{ id, ...command }` and resolves with the answer's result. */
  send(command: Record<string, unknown>): Promise<unknown> {
    const id = ++this.#id;
    this.ws.send(JSON.stringify({ id, ...command }));
    return new Promise((resolve, reject) => this.#pending.set(id, { resolve, reject }));
  }
}
