// The results pages in real browsers (headless Chromium over the DevTools protocol, headless Firefox over
// WebDriver BiDi: test/tab.ts): a run's page sees a new epoch appear as its line lands in history.jsonl,
// without reloading; every figure drawn in a finished run's page is byte for byte the SVG file the run saved;
// the comparison page updates too. Screenshots of the pages go to $MDA_TEST_OUT/serve_browser (default
// test/output/serve_browser, git-ignored; Firefox's with a "firefox_" prefix). Each browser's test is
// skipped, with a message, where that browser is not installed (.ci/run installs chromium and firefox-esr).

import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { curveFigureSvgs } from "../experiments/run_figures.ts";
import { appendEpoch, historyRow, makeResults, serveResults } from "./serve_fixture.ts";
import { BROWSERS, openTab } from "./tab.ts";

const OUT = `${Deno.env.get("MDA_TEST_OUT") ?? new URL("./output", import.meta.url).pathname}/serve_browser`;

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
      const { url: base, stop } = await serveResults(root);
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

        await page.goto(`${base}/`);
        await page.waitFor(`document.querySelectorAll("#runs tbody tr").length === 2`);
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
