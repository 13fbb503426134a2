// The results pages in real browsers (headless Chromium over the DevTools protocol, headless Firefox over
// WebDriver BiDi: test/tab.ts): a run's page sees a new epoch appear as its line lands in history.jsonl,
// without reloading; every figure drawn in a finished run's page is byte for byte the SVG file the run saved;
// the comparison page updates too. Screenshots of the pages go to $MDA_TEST_OUT/serve_browser (default
// test/output/serve_browser, git-ignored; Firefox's with a "firefox_" prefix). Each browser's test is
// skipped, with a message, where that browser is not installed (.ci/run installs chromium and firefox-esr).

import { fileURLToPath } from "node:url";
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { curveFigureSvgs } from "../experiments/run_figures.ts";
import { appendEpoch, historyRow, makeResults, serveResults, writeRun } from "./serve_fixture.ts";
import { BROWSERS, openTab } from "./tab.ts";

const OUT = `${
  Deno.env.get("MDA_TEST_OUT") ?? fileURLToPath(new URL("./output", import.meta.url))
}/serve_browser`;

for (const { browser, label, installed, shot, apt } of BROWSERS) {
  if (!installed) {
    console.error(`serve_browser_test: ${label} skipped, not on PATH (apt-get install ${apt}; .ci/run does)`);
  }
  Deno.test({
    name:
      `serve in ${label}: live epochs without reload, the page's figures equal the saved SVG files, screenshots`,
    ignore: !installed,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const { root, finished, running } = await makeResults();
      await Deno.mkdir(OUT, { recursive: true });
      const { url: base, openStreams, stop } = await serveResults(root);
      const { tab: page, close } = await openTab(browser);
      try {
        // A run in progress: 2 epochs of 10 drawn by the page itself.
        await page.goto(`${base}/view/sweep/live%20run`);
        await page.waitFor(`document.getElementById("status")?.dataset.epochsDone === "2"`);
        await page.evaluate(`window.sameDocument = "yes"`);
        const status2 = await page.evaluate<string>(`document.getElementById("status").textContent`);
        match(status2, /status running · epoch 2 of 10 · ETA 4 min/);
        match(status2, /adapter Test adapter \(llvmpipe\) \(software\)/);

        // The run writes epoch 3: the page shows it without a reload.
        await appendEpoch(running, 3);
        await page.waitFor(`document.getElementById("status")?.dataset.epochsDone === "3"`);
        equal(await page.evaluate(`window.sameDocument`), "yes", "the page was reloaded");
        match(
          await page.evaluate<string>(`document.getElementById("status").textContent`),
          /epoch 3 of 10 · ETA 4 min/,
        );
        const expected = curveFigureSvgs("fashion_mda_quick", [1, 2, 3].map((e) => historyRow(e)));
        equal(await page.evaluate(`window.mdaFigures["accuracy.svg"]`), expected[0].svg);
        equal(await page.evaluate(`window.mdaFigures["loss.svg"]`), expected[1].svg);
        ok(
          await page.evaluate(`!!document.querySelector('[id="fig-accuracy.svg"] svg [aria-label="title"]')`),
        );
        await page.screenshot(`${OUT}/${shot}run_live.png`);

        // A finished run: every figure drawn in the page is the file the run saved, byte for byte.
        await page.goto(`${base}/view/done_run`);
        await page.waitFor(`document.getElementById("status")?.dataset.status === "finished"`);
        const figures = await page.evaluate<Record<string, string>>(`window.mdaFigures`);
        const files = JSON.parse(await Deno.readTextFile(`${finished}/figures.json`)).map((
          f: { file: string },
        ) => f.file);
        deepStrictEqual(Object.keys(figures).sort(), [...files].sort());
        for (const f of files) {
          equal(figures[f], await Deno.readTextFile(`${finished}/${f}`), `${f} differs from the file`);
        }
        await page.screenshot(`${OUT}/${shot}run_finished.png`);

        // Two runs' curves on one plot, updating as the running one lands epoch 4.
        await page.goto(`${base}/compare?run=done_run&run=sweep/live%20run`);
        await page.waitFor(`document.getElementById("status")?.dataset.epochsDone === "3,3"`);
        await page.evaluate(`window.sameDocument = "yes"`);
        await appendEpoch(running, 4);
        await page.waitFor(`document.getElementById("status")?.dataset.epochsDone === "3,4"`);
        equal(await page.evaluate(`window.sameDocument`), "yes");
        for (const f of ["test_accuracy.svg", "test_ece.svg"]) {
          match(await page.evaluate<string>(`window.mdaFigures["${f}"]`), /sweep\/live run/);
        }
        await page.screenshot(`${OUT}/${shot}compare.png`);

        // Eight runs in progress on one plot: one event stream for them all. A browser opens 6 HTTP/1.1
        // connections a host: with a stream per run, the 7th and 8th never updated and every other
        // request from the page waited.
        const many = Array.from({ length: 8 }, (_, i) => `many/run ${i + 1}`);
        for (const d of many) await writeRun(`${root}/${d}`, "running", 10, 2);
        const epochsShown = (last: number) =>
          `document.getElementById("status")?.dataset.epochsDone === "${
            [...many.slice(1).map(() => 2), last].join(",")
          }"`;
        await page.goto(`${base}/compare?${many.map((d) => `run=${encodeURIComponent(d)}`).join("&")}`);
        await page.waitFor(epochsShown(2));
        await appendEpoch(`${root}/${many[7]}`, 3);
        await page.waitFor(epochsShown(3));
        equal(await page.evaluate(`fetch("/api/index").then((r) => r.status)`), 200);
        // Once every run is over, no stream is left open.
        for (const d of many) await writeRun(`${root}/${d}`, "stopped", 10, 2);
        await page.waitFor(`!document.getElementById("status").textContent.includes("status running")`);
        const end = Date.now() + 5000;
        while (openStreams() > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
        equal(openStreams(), 0, "an event stream stayed open after every run was over");

        await page.goto(`${base}/`);
        await page.waitFor(`document.querySelectorAll("#runs tbody tr").length === 10`);
        await page.screenshot(`${OUT}/${shot}index.png`);
        await page.goto(`${base}/view/sweep`);
        await page.waitFor(`document.querySelector("main[data-page=report] table") !== null`);
        await page.screenshot(`${OUT}/${shot}report.png`);
      } finally {
        await close();
        await stop();
      }
    },
  });
}
