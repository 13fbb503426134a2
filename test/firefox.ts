// Headless Firefox for the tests that open a page and collect what it posts back to a local server (the
// kernel tests in tools/browser_tests.ts, the training page in test/web_train_test.ts). Firefox's WebGPU
// is its own build of wgpu and naga, in a separate GPU process, with the limits a web page gets; on a
// machine without a GPU it runs on Vulkan lavapipe (mesa-vulkan-drivers), which it reports as a fallback
// adapter with no name. Its release builds keep WebGPU off on Linux: the profile made here turns it on.

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

/** Preferences of the test profile: WebGPU on, and no first-run pages, updates or telemetry. */
const PREFS: Record<string, boolean> = {
  "dom.webgpu.enabled": true,
  "gfx.webgpu.ignore-blocklist": true,
  "browser.shell.checkDefaultBrowser": false,
  "browser.aboutwelcome.enabled": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "toolkit.telemetry.reportingpolicy.firstRun": false,
  "app.update.auto": false,
};

/**
 * Starts headless Firefox on `url` with a fresh profile in `profileDir` (created; the caller removes it
 * after the process has ended), `prefs` over the test profile's (e.g. WebGPU off). stderr is piped for the
 * caller to read or drop.
 */
export async function launchFirefox(
  binary: string,
  profileDir: string,
  url: string,
  prefs: Record<string, boolean> = {},
): Promise<Deno.ChildProcess> {
  await Deno.mkdir(profileDir, { recursive: true });
  await Deno.writeTextFile(
    `${profileDir}/user.js`,
    Object.entries({ ...PREFS, ...prefs }).map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${v});\n`).join(
      "",
    ),
  );
  return new Deno.Command(binary, {
    args: ["--headless", "--no-remote", "--profile", profileDir, url],
    env: { MOZ_CRASHREPORTER_DISABLE: "1" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
}
