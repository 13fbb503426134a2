// The results page in a real browser while a REAL run writes its history: a tiny training run
// (experiments/run.ts as a subprocess, 3 epochs on a few synthetic images) goes while headless Chromium,
// then Firefox (test/tab.ts), shows its page; the page shows epoch 1, then a later epoch without
// reloading, and the run's end. Unlike serve_browser_test.ts, no line of history.jsonl is written by the
// test. A screenshot goes to $MDA_TEST_OUT/serve_live_run (default test/output/serve_live_run, git-ignored;
// Firefox's with a "firefox_" prefix). Each browser's test is skipped, with a message, where that browser
// is not installed (.ci/run installs chromium and firefox-esr).

import { fileURLToPath } from "node:url";
import { equal, match, ok } from "node:assert/strict";
import { existsSync } from "node:fs";
import { serveResults } from "./serve_fixture.ts";
import { BROWSERS, openTab } from "./tab.ts";
import { writeTinyDataset } from "./tiny_data.ts";

const OUT = `${
  Deno.env.get("MDA_TEST_OUT") ?? fileURLToPath(new URL("./output", import.meta.url))
}/serve_live_run`;
const RUN_TS = fileURLToPath(new URL("../experiments/run.ts", import.meta.url));

/** Polls `check` every 50 ms until it is true; the error names what was waited for. */
async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resolves with `p`, or rejects naming `what` after `timeoutMs`. */
async function within<T>(what: string, p: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

for (const { browser, label, installed, shot, apt } of BROWSERS) {
  if (!installed) {
    console.error(
      `serve_live_run_test: ${label} skipped, not on PATH (apt-get install ${apt}; .ci/run does)`,
    );
  }
  Deno.test({
    name:
      `serve in ${label}: a real run's page shows epoch 1, then a later epoch without reload, then its end`,
    ignore: !installed,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const base = await Deno.makeTempDir({ prefix: "mda-serve-live-" });
      const root = `${base}/results`, data = `${base}/data`, out = `${root}/live`;
      await Deno.mkdir(root, { recursive: true });
      await writeTinyDataset(data);
      await Deno.mkdir(OUT, { recursive: true });
      const { url, stop } = await serveResults(root);
      const { tab: page, close } = await openTab(browser);
      let child: Deno.ChildProcess | undefined;
      let exited = false;
      let log = "";
      try {
        // The smallest run the runner takes that still has several steps an epoch: 16 images, batches of 8.
        child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            RUN_TS,
            "fashion_mda_quick",
            "--data",
            data,
            "--out",
            out,
            "--epochs",
            "3",
            "--train-limit",
            "16",
            "--test-limit",
            "16",
            "--batch-size",
            "8",
          ],
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const decoder = new TextDecoder();
        const drain = async (s: ReadableStream<Uint8Array>) => {
          for await (const chunk of s) log += decoder.decode(chunk, { stream: true });
        };
        const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
        const status = child.status.then((s) => {
          exited = true;
          return s;
        });

        // The page exists once the run has written its manifest (before its first epoch, whose shaders
        // compile for seconds): open it then, so the page sees every epoch land.
        await until(
          "the run's manifest.json",
          () => exited || existsSync(`${out}/manifest.json`),
          60_000,
        ).catch((e) => {
          throw new Error(`${e.message}\n--- run output ---\n${log}`);
        });
        ok(!exited || existsSync(`${out}/manifest.json`), `the run exited before its manifest:\n${log}`);
        await page.goto(`${url}/view/live`);
        await page.waitFor(`document.getElementById("status")?.dataset.epochsDone !== undefined`, 30_000);
        // Every epoch count the status shows, in order, recorded by the page itself (the run's epochs 2
        // and 3 land a fraction of a second apart, faster than the test polls the page).
        await page.evaluate(`(() => {
        window.sameDocument = "yes";
        const el = document.getElementById("status");
        window.seenEpochs = [el.dataset.epochsDone];
        window.seenStatus = [el.textContent];
        new MutationObserver(() => {
          const e = el.dataset.epochsDone;
          if (window.seenEpochs.at(-1) !== e) {
            window.seenEpochs.push(e);
            window.seenStatus.push(el.textContent);
          }
        }).observe(el, { attributes: true, attributeFilter: ["data-epochs-done"] });
      })()`);
        const first = await page.evaluate<string[]>(`window.seenEpochs`);
        equal(first[0], "0", `the page opened after the run's first epoch (saw ${first})`);

        await page.waitFor(`window.seenEpochs.includes("1")`, 60_000);
        await page.waitFor(`window.seenEpochs.some((e) => Number(e) >= 2)`, 60_000);
        equal(await page.evaluate(`window.sameDocument`), "yes", "the page was reloaded");
        const seen = await page.evaluate<string[]>(`window.seenEpochs`);
        ok(seen.indexOf("1") < seen.findIndex((e) => Number(e) >= 2), `epochs seen out of order: ${seen}`);
        match(
          (await page.evaluate<string[]>(`window.seenStatus`))[seen.indexOf("1")],
          /^status running · epoch 1 of 3 · ETA /,
        );

        const { code } = await within("the run to exit", status, 120_000);
        equal(code, 0, `the run failed:\n${log}`);
        await within("the run's output to close", drained, 10_000);
        // The end of the run, still without a reload.
        await page.waitFor(`document.getElementById("status")?.dataset.status === "finished"`, 30_000);
        equal(await page.evaluate(`window.sameDocument`), "yes", "the page was reloaded");
        match(
          await page.evaluate<string>(`document.getElementById("status").textContent`),
          /status finished · epoch 3 of 3/,
        );
        const history = (await Deno.readTextFile(`${out}/history.jsonl`)).trim().split("\n");
        equal(history.length, 3);
        await page.screenshot(`${OUT}/${shot}run_finished.png`);
      } finally {
        if (child && !exited) {
          try {
            child.kill("SIGKILL");
          } catch { /* already gone */ }
          await child.status;
        }
        await close();
        await stop();
        await Deno.remove(base, { recursive: true }).catch(() => {});
      }
    },
  });
}
