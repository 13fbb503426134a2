// The training page (web/train.html) in headless Chromium (WebGPU on SwiftShader), served by a minimal
// static server here: from the same initial weights (same seed) and the same first batch, the tab's
// first-step loss equals the Deno run's; the checkpoint the page offers for download evaluates in Deno
// (`deno task evaluate`'s code) to the accuracy the page reported; a missing data file gives one clear
// error naming it. Small sizes (64 train / 128 test images, batch 32): SwiftShader is slow.
// The same run in headless Firefox (its own wgpu; Vulkan lavapipe here); the reload and closed-tab tests
// in both browsers (Chromium over CDP, cdp.ts; Firefox over WebDriver BiDi, bidi.ts). Skipped without
// `chromium` (for Firefox: without Firefox, a Vulkan driver, or a Firefox that offers WebGPU: Debian's
// firefox-esr 140 refuses it, said in a line) or without Debian's dataset-fashion-mnist files. A Firefox
// without WebGPU still checks that the page says how to get it.

import { deepEqual, equal, match, notEqual, ok } from "node:assert/strict";
import { existsSync } from "node:fs";
import { evaluateCheckpoint } from "../experiments/evaluate.ts";
import { type Hyperparameters, modelConfigOf } from "../experiments/config.ts";
import { runFigureSvgs, type SavedFigureData } from "../experiments/run_figures.ts";
import { experiment as notebookExperiment } from "../experiments/fashion_mda.ts";
import { experiment } from "../experiments/fashion_mda_quick.ts";
import { DeviceSplit } from "../lib/data/device.ts";
import {
  FASHION_CLASS_COUNT,
  FASHION_FILES,
  FASHION_SYSTEM_DIR,
  loadFashionMnist,
} from "../lib/data/fashion.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { TUNING_STORAGE_KEY } from "../lib/gpu/tuner.ts";
import { loadSafetensors } from "../lib/io/safetensors.ts";
import { Model } from "../lib/model.ts";
import { Trainer } from "../lib/train/trainer.ts";
import { buildWebBundle } from "../web/build.ts";
import { buildSite } from "../web/site.ts";
import { type BrowserKind, findFirefox, launchHeadless, removeSoon } from "./headless.ts";
import { firefoxWebGpuProblem, openTab, type Tab } from "./tab.ts";
import { assertClose, MDA_RUN_FIGURES, tempDir } from "./util.ts";

const TRAIN = 64, TEST = 128, BATCH = 32;

function hasChromium(): boolean {
  try {
    return new Deno.Command("chromium", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

const hasData = existsSync(`${FASHION_SYSTEM_DIR}/train-images-idx3-ubyte.gz`);
const ready = hasChromium() && hasData;
/** Firefox reaches a GPU, or lavapipe on a machine without one, through Vulkan: a driver manifest must exist. */
const hasVulkanDriver = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"].some((d) => {
  try {
    return [...Deno.readDirSync(d)].some((e) => e.name.endsWith(".json"));
  } catch {
    return false;
  }
});
const hasFirefox = findFirefox() !== undefined;
/** Firefox, a Vulkan driver and the data: what the Firefox WebGPU tests need besides WebGPU itself. */
const firefoxRunnable = hasFirefox && hasVulkanDriver && hasData;
/** Why this Firefox offers the page no WebGPU (asked once: a browser start), else undefined. */
const firefoxProblem = firefoxRunnable ? await firefoxWebGpuProblem() : undefined;
if (firefoxProblem) console.error(`web_train_test: Firefox's WebGPU tests skipped: ${firefoxProblem}`);
if (hasFirefox && !hasVulkanDriver) {
  console.error(
    "web_train_test: Firefox's WebGPU tests skipped: no Vulkan driver, which its WebGPU needs " +
      "(without a GPU: apt-get install mesa-vulkan-drivers; .ci/run does)",
  );
}
const readyFirefox = firefoxRunnable && firefoxProblem === undefined;

/** What the page reports of its kernels (web/train.ts): choices per layer and what the tuner did. */
interface PageKernels {
  conv: Record<string, Record<string, string>>;
  batchNorm: Record<string, string>;
  sources: { timed: number; cache: number };
  log: string[];
}

interface PageRun {
  result?: {
    firstStepLoss: number;
    history: { test_accuracy: number; seconds?: number; eval_seconds?: number }[];
    kernels: PageKernels;
    resumedAfter: number;
    figureData: SavedFigureData;
    figures: { file: string; caption: string; svg: string }[];
  };
  checkpoint?: Uint8Array;
  error?: string;
}

/** The static server of the page: web/ under /web/ (the bundle from `bundle`), `dataDir` under /data/,
 * and the page's reports under /report/ (with `site`, a folder written by `deno task build:site`, served
 * under `site.prefix` as any static web server would, instead of web/ and data/). Each `nextRun()` collects
 * the reports of the page's next run. */
interface PageServer {
  port: number;
  /** The paths of every request for a data file, in order (a reload must add none). */
  dataRequests: string[];
  /** The page's next run's reports, or what came of it within `timeoutMs` (default 10 minutes). */
  nextRun(timeoutMs?: number): Promise<PageRun>;
  shutdown(): Promise<void>;
}

function servePage(
  bundle: string,
  dataDir: string,
  /** Called when the page reports an epoch stored (web/train.ts); the page waits for the answer. */
  onEpoch: (epoch: number) => Promise<void> = () => Promise.resolve(),
  site?: StaticSite,
): PageServer {
  const web = new URL("../web/", import.meta.url);
  const dataRequests: string[] = [];
  let run: PageRun = {};
  let finish = () => {};
  // no-store: every file the page loads is a request here, whatever the browser's reload does with its HTTP
  // cache (Firefox's BiDi reload cannot bypass it), so dataRequests sees what the page fetched.
  const headers = (type?: string) => ({
    "cache-control": "no-store",
    ...(type ? { "content-type": type } : {}),
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (req.method === "POST") {
      if (path === "/report/checkpoint") run.checkpoint = new Uint8Array(await req.arrayBuffer());
      else if (path === "/report/epoch") await onEpoch((await req.json()).epoch);
      else if (path === "/report/result") {
        run.result = await req.json();
        finish();
      } else if (path === "/report/error") {
        run.error = await req.text();
        finish();
      }
      return new Response("ok");
    }
    try {
      if (site) {
        if (!path.startsWith(site.prefix) || path.includes("..")) throw new Error("outside the site");
        if (path.includes("/data/")) dataRequests.push(path);
        const file = `${site.dir}/${path.slice(site.prefix.length) || "index.html"}`;
        const type = file.endsWith(".html")
          ? "text/html"
          : file.endsWith(".js")
          ? "text/javascript"
          : undefined;
        return new Response(await Deno.readFile(file), { headers: headers(type) });
      }
      if (path === "/web/dist/train.js") {
        return new Response(await Deno.readFile(bundle), { headers: headers("text/javascript") });
      }
      if (path === "/web/train.html") {
        return new Response(await Deno.readFile(new URL("train.html", web)), {
          headers: headers("text/html"),
        });
      }
      if (path.startsWith("/data/")) dataRequests.push(path);
      if (path.startsWith("/data/") && !path.slice(6).includes("/")) {
        return new Response(await Deno.readFile(`${dataDir}/${path.slice(6)}`), { headers: headers() });
      }
    } catch { /* not found */ }
    return new Response("not found", { status: 404, headers: headers() });
  });
  return {
    port: server.addr.port,
    dataRequests,
    nextRun: (timeoutMs = 600_000) => {
      finish(); // one run is awaited at a time: a wait not answered yet ends here, with what it has
      run = {};
      const current = run;
      let timer: ReturnType<typeof setTimeout> | undefined;
      return new Promise<PageRun>((resolve) => {
        finish = () => {
          clearTimeout(timer);
          resolve(current);
        };
        timer = setTimeout(() => resolve(current), timeoutMs);
      });
    },
    shutdown: () => server.shutdown(),
  };
}

/** The first training step's loss in Deno for an experiment's pinned values, as the page runs it. */
async function denoFirstStepLoss(
  pinned: Hyperparameters,
  trainLimit: number,
  testLimit: number,
  batchSize: number,
): Promise<number> {
  const gpu = await getGpu();
  const data = await loadFashionMnist({ dataDir: FASHION_SYSTEM_DIR, trainLimit, testLimit, log: () => {} });
  const model = new Model(gpu, modelConfigOf(pinned, FASHION_CLASS_COUNT));
  const train = new DeviceSplit(gpu, data.train), test = new DeviceSplit(gpu, data.test);
  const trainer = new Trainer(gpu, model, train, test, data.test.labels, {
    batchSize,
    seed: pinned.seed,
    augment: pinned.augment,
  });
  const result = await trainer.trainEpoch(1);
  trainer.destroy();
  return result.stats[0];
}

/** A static site's folder (web/site.ts) and the path it is hosted under, e.g. "/mirror/webgpu-mda/". */
interface StaticSite {
  dir: string;
  prefix: string;
}

/**
 * Serves the page (servePage) and opens it once in a fresh browser profile: Chromium or Firefox
 * (`webgpu` false: with WebGPU turned off). With `site`, the page is that static site's, opened at its
 * index.html, and the run carries the paths of the data requests.
 */
async function runPage(
  bundle: string,
  dataDir: string,
  query: string,
  opts: { webgpu?: boolean; browser?: "chromium" | "firefox"; timeoutMs?: number; site?: StaticSite } = {},
): Promise<PageRun & { dataRequests: string[] }> {
  const server = servePage(bundle, dataDir, undefined, opts.site);
  const done = server.nextRun(opts.timeoutMs);
  const profile = await Deno.makeTempDir({ prefix: "web-train-profile-" });
  const url = `http://127.0.0.1:${server.port}${
    opts.site?.prefix ?? "/web/train.html"
  }?${query}&report=/report`;
  const chrome = await launchHeadless(opts.browser ?? "chromium", profile, url, { webgpu: opts.webgpu });
  const run = await Promise.race([done, chrome.status.then(() => ({}))]);
  try {
    chrome.kill("SIGTERM");
  } catch { /* gone */ }
  await chrome.status;
  await server.shutdown();
  await removeSoon(profile);
  return { ...run, dataRequests: server.dataRequests };
}

/**
 * One browser (its own profile, kept across the page loads of `fn`) on the page's server, with the page
 * bundled afresh; `url(query)` is the page with `query` and its reports; everything is removed afterwards.
 */
async function inBrowser(
  browser: BrowserKind,
  prefix: string,
  fn: (tab: Tab, server: PageServer, url: (query: string) => string) => Promise<void>,
  onEpoch?: (epoch: number) => Promise<void>,
): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix });
  const bundle = await buildWebBundle(`${tmp}/train.js`);
  const server = servePage(bundle, FASHION_SYSTEM_DIR, onEpoch);
  try {
    const { tab, close } = await openTab(browser, { webgpu: true });
    try {
      await fn(
        tab,
        server,
        (query) => `http://127.0.0.1:${server.port}/web/train.html?${query}&report=/report`,
      );
    } finally {
      await close();
    }
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
}

/**
 * What a tab's run of the quick experiment (TRAIN images, batch BATCH, one epoch) must show: its first step
 * equals Deno's from the same seed and batch; its figures redraw in Deno to the same bytes; a software
 * adapter's kernels, none timed, named in the checkpoint; and the checkpoint evaluates in Deno to the
 * accuracy the tab reported. `adapter` names the browser's adapter in messages.
 */
async function checkTabRun(page: PageRun, tmp: string, adapter: string): Promise<void> {
  ok(page.result, `${adapter}: the page reported no result (error: ${page.error})`);

  // The same run's first step in Deno: same seed, same data, same first batch.
  const ours = await denoFirstStepLoss(experiment.pinned, TRAIN, TEST, BATCH);
  // A whole forward pass (conv tiles differ between adapters, so do summation orders): float32 rounding.
  console.error(`${adapter} first-step loss: tab ${page.result.firstStepLoss}, Deno ${ours}`);
  assertClose([page.result.firstStepLoss], [ours], {
    rtol: 1e-4,
    atol: 1e-5,
    what: "first-step loss",
  });

  ok(page.checkpoint && page.checkpoint.length > 0, "no checkpoint from the page");
  await Deno.writeFile(`${tmp}/model.safetensors`, page.checkpoint);
  // Every figure of a run folder, drawn in the tab by the runner's code from the tab's data: a redraw in
  // Deno from the same data gives the same bytes.
  deepEqual(page.result.figures.map((f) => f.file), MDA_RUN_FIGURES);
  deepEqual(
    page.result.figures,
    runFigureSvgs(page.result.figureData).map((f) => ({ file: f.file, caption: f.caption, svg: f.svg })),
  );
  equal(page.result.figureData.latent?.labels.length, TRAIN);

  // A software adapter: its kernels, nothing timed; the checkpoint names them.
  const { kernels } = page.result;
  deepEqual(kernels.sources, { timed: 0, cache: 0 });
  equal(Object.keys(kernels.conv).length, 6);
  equal(Object.keys(kernels.batchNorm).length, 6);
  const { metadata } = await loadSafetensors(`${tmp}/model.safetensors`);
  deepEqual(JSON.parse(metadata.conv_kernels), kernels.conv);
  deepEqual(JSON.parse(metadata.batchnorm_kernels), kernels.batchNorm);
  const m = await evaluateCheckpoint({
    checkpoint: `${tmp}/model.safetensors`,
    dataDir: FASHION_SYSTEM_DIR,
    testLimit: TEST,
    json: false,
  }, () => {});
  equal(m.n, TEST);
  console.error(`${adapter} test accuracy: tab ${page.result.history[0].test_accuracy}, Deno ${m.accuracy}`);
  // The same weights and images on two adapters: at most one near-tie may flip.
  ok(
    Math.abs(m.accuracy - page.result.history[0].test_accuracy) <= 1 / TEST,
    `Deno's accuracy ${m.accuracy} vs the tab's ${page.result.history[0].test_accuracy}`,
  );
}

/**
 * The page bundled into a new temporary folder and run once in `browser` on the quick experiment (TRAIN
 * images, one epoch, batch BATCH), checked by checkTabRun; the folder and bundle serve the test's other
 * runs, and the test removes the folder. With `asSite`, the page is a static site that `deno task
 * build:site` wrote (its bundle, its copy of the data), hosted under a path of its own and opened at its
 * index.html: the redirect keeps the query, and the page takes its data from the site.
 */
async function quickTabRun(
  browser: "chromium" | "firefox",
  adapter: string,
  asSite = false,
): Promise<{ tmp: string; bundle: string }> {
  const tmp = await tempDir(`web-train-${browser}-`);
  const query = `epochs=1&train-limit=${TRAIN}&test-limit=${TEST}&batch-size=${BATCH}`;
  if (!asSite) {
    const bundle = await buildWebBundle(`${tmp}/train.js`);
    await checkTabRun(await runPage(bundle, FASHION_SYSTEM_DIR, query, { browser }), tmp, adapter);
    return { tmp, bundle };
  }
  const site = { dir: `${tmp}/site`, prefix: "/mirror/webgpu-mda/" };
  await buildSite({ out: site.dir, dataDir: FASHION_SYSTEM_DIR }, () => {});
  const page = await runPage("", "", query, { browser, site });
  await checkTabRun(page, tmp, `${adapter}, static site`);
  deepEqual(page.dataRequests, FASHION_FILES.map((name) => `${site.prefix}data/${name}.gz`));
  return { tmp, bundle: `${site.dir}/web/dist/train.js` };
}

Deno.test({
  name:
    "web: the tab's first step matches Deno's, its checkpoint evaluates in Deno (the page as a static site from build:site); missing or corrupted data and no WebGPU are named",
  ignore: !ready,
  fn: async () => {
    const { tmp, bundle } = await quickTabRun("chromium", "SwiftShader", true);

    // Bad input: the data folder holds no files.
    await Deno.mkdir(`${tmp}/empty`);
    const missing = await runPage(bundle, `${tmp}/empty`, "epochs=1");
    ok(
      missing.error?.includes("data file train-images-idx3-ubyte not found"),
      `expected a missing-file error, got ${missing.error}`,
    );
    // A corrupted file (here: not the official bytes) is named with its checksum.
    await Deno.mkdir(`${tmp}/corrupt`);
    await Deno.writeFile(`${tmp}/corrupt/train-images-idx3-ubyte`, new Uint8Array(1000).fill(7));
    const corrupt = await runPage(bundle, `${tmp}/corrupt`, "epochs=1");
    ok(
      /train-images-idx3-ubyte: SHA-256 [0-9a-f]{64} is not the official/.test(corrupt.error ?? ""),
      `expected a checksum error, got ${corrupt.error}`,
    );

    // The notebook's experiment (?experiment=fashion_mda): its widths and head, one step here, with another
    // seed (?seed=7, as --seed 7 does: init and shuffles both).
    const notebook = await runPage(
      bundle,
      FASHION_SYSTEM_DIR,
      `experiment=fashion_mda&seed=7&epochs=1&train-limit=${BATCH}&test-limit=${BATCH}&batch-size=${BATCH}`,
    );
    ok(notebook.result, `the notebook's page reported no result (error: ${notebook.error})`);
    const notebookOurs = await denoFirstStepLoss(
      { ...notebookExperiment.pinned, seed: 7 },
      BATCH,
      BATCH,
      BATCH,
    );
    notEqual(
      notebookOurs,
      await denoFirstStepLoss(notebookExperiment.pinned, BATCH, BATCH, BATCH),
      "seed 7 starts elsewhere than the pinned seed",
    );
    console.error(`fashion_mda first-step loss: tab ${notebook.result.firstStepLoss}, Deno ${notebookOurs}`);
    assertClose([notebook.result.firstStepLoss], [notebookOurs], {
      rtol: 1e-4,
      atol: 1e-5,
      what: "fashion_mda first-step loss",
    });

    // A bad query parameter is named before anything is loaded.
    const sweep = await runPage(bundle, FASHION_SYSTEM_DIR, "experiment=fashion_lambda_sweep");
    ok(
      sweep.error?.startsWith(`error: ?experiment= must be one of `) &&
        sweep.error.includes("fashion_mda_quick") && sweep.error.endsWith(`got "fashion_lambda_sweep"`),
      `expected the experiment error, got ${sweep.error}`,
    );
    const badTune = await runPage(bundle, FASHION_SYSTEM_DIR, "epochs=1&tune-batchnorm=yes");
    equal(badTune.error, `error: ?tune-batchnorm= must be "always", got "yes"`);
    const badSeed = await runPage(bundle, FASHION_SYSTEM_DIR, "epochs=1&seed=-1");
    equal(badSeed.error, `error: ?seed= must be a non-negative integer, got "-1"`);
    const badWinograd = await runPage(bundle, FASHION_SYSTEM_DIR, "epochs=1&winograd=1");
    equal(badWinograd.error, `error: ?winograd= must be "0" (leave the Winograd kernels out), got "1"`);

    // A browser without WebGPU: the page says how to enable it.
    const noGpu = await runPage(bundle, FASHION_SYSTEM_DIR, "epochs=1", { webgpu: false });
    ok(
      noGpu.error?.includes("This browser offers no WebGPU"),
      `expected the WebGPU help, got ${noGpu.error}`,
    );
    await Deno.remove(tmp, { recursive: true });
  },
});

Deno.test({
  name:
    "web (Firefox): the tab's first step matches Deno's, its figures redraw, its checkpoint evaluates in Deno",
  ignore: !readyFirefox,
  fn: async () => {
    const { tmp } = await quickTabRun("firefox", "Firefox");
    await Deno.remove(tmp, { recursive: true });
  },
});

Deno.test({
  name:
    "web (Firefox without WebGPU): the page says how to get WebGPU, and names the browser's refusal where it refuses",
  ignore: !hasFirefox || !hasData,
  fn: async () => {
    const tmp = await tempDir("web-train-firefox-nogpu-");
    const bundle = await buildWebBundle(`${tmp}/train.js`);
    const page = (webgpu: boolean) =>
      runPage(bundle, FASHION_SYSTEM_DIR, "epochs=1", {
        browser: "firefox",
        webgpu,
        timeoutMs: 60_000, // the error comes in seconds; a page that never reports fails in a minute
      });
    // WebGPU turned off (Firefox's release builds on Linux, by default). (The page once stopped before
    // saying anything: a module read GPUBufferUsage as it loaded, which such a browser does not define.)
    const off = await page(false);
    ok(
      off.error?.includes("This browser offers no WebGPU") && off.error.includes("dom.webgpu.enabled"),
      `expected the WebGPU help, got ${off.error}`,
    );
    // Turned on in a Firefox that refuses it anyway (140 ESR): the help, and the browser's own words.
    if (firefoxProblem?.includes("requestAdapter refused")) {
      const refused = await page(true);
      ok(
        refused.error?.includes("This browser offers no WebGPU") &&
          refused.error.includes("it refused an adapter: NotSupportedError"),
        `expected the WebGPU help with the refusal, got ${refused.error}`,
      );
    }
    await Deno.remove(tmp, { recursive: true });
  },
});

/**
 * Holds a page on its report of epoch 1 (stored in its Cache Storage by then; pass `onEpoch` to inBrowser):
 * `held(visit)` waits for that, or fails with the page's error if the visit ends first (it used to wait
 * forever); `release()` lets the page go on.
 */
function epochHold() {
  let holding = true;
  let resume = () => {};
  let reported = (_: number) => {};
  const firstReport = new Promise<number>((r) => reported = r);
  return {
    onEpoch: async (epoch: number) => {
      reported(epoch);
      if (holding) await new Promise<void>((r) => resume = r);
    },
    held: async (visit: Promise<PageRun>) => {
      const first = await Promise.race([
        firstReport,
        visit.then((r) => `the page ended before storing epoch 1 (error: ${r.error})`),
      ]);
      equal(first, 1, String(first));
    },
    release: () => {
      holding = false;
      resume();
    },
  };
}

/** A resumed run ended as the run never stopped: the same history (times aside), the same checkpoint bytes. */
function assertSameRun(resumed: PageRun, whole: PageRun): void {
  const untimed = (h: { seconds?: number; eval_seconds?: number }[]) =>
    h.map(({ seconds: _, eval_seconds: _e, ...rest }) => rest);
  deepEqual(untimed(resumed.result!.history), untimed(whole.result!.history));
  ok(resumed.checkpoint && whole.checkpoint, "a checkpoint is missing");
  ok(
    resumed.checkpoint.length === whole.checkpoint.length &&
      resumed.checkpoint.every((b, i) => b === whole.checkpoint![i]),
    "the resumed run's checkpoint differs from the uninterrupted run's",
  );
}

/** The tests that drive one tab through several loads, in each browser. */
const TAB_BROWSERS = [
  { browser: "chromium", label: "web", ignore: !ready },
  { browser: "firefox", label: "web (Firefox)", ignore: !readyFirefox },
] as const;

for (const { browser, label, ignore } of TAB_BROWSERS) {
  Deno.test({
    name:
      `${label}: a second load downloads no data file again; ?fresh=1 trains again with the kernels timed by the first load, to the same first-step loss, and leaves the address bar; a reload then gives the finished run back without training`,
    ignore,
    fn: async () => {
      await inBrowser(browser, `web-train-reload-${browser}-`, async (page, server, pageUrl) => {
        const url = pageUrl(
          `epochs=1&train-limit=${TRAIN}&test-limit=${TEST}&batch-size=${BATCH}&tune-batchnorm=always`,
        );
        let next = server.nextRun();
        await page.goto(url);
        const first = await next;
        ok(first.result, `the first load reported no result (error: ${first.error})`);
        // Debian's files are gzipped: one request per file, each answered by its .gz.
        deepEqual(
          server.dataRequests,
          FASHION_FILES.map((name) => `/data/${name}.gz`),
          "the first load's data requests",
        );

        // The BatchNorms were timed (tune-batchnorm=always: SwiftShader is a software adapter); two layers of
        // one shape share one timing.
        const tuned = first.result.kernels;
        ok(
          tuned.sources.timed > 0 && tuned.sources.timed + tuned.sources.cache === 6,
          JSON.stringify(tuned.sources),
        );
        ok(tuned.log.some((l) => l.startsWith("tuner: batchnorm2d train step")), tuned.log.join("\n"));
        // The timings are kept under this adapter's key; Firefox hides the adapter's name, so its key carries
        // the hash of the adapter's limits and features (lib/gpu/device.ts: adapterFingerprint).
        const adapters = await page.evaluate<string[]>(
          `Object.keys(JSON.parse(localStorage.getItem(${JSON.stringify(TUNING_STORAGE_KEY)})).adapters)`,
        );
        equal(adapters.length, 1, adapters.join("\n"));
        if (browser === "firefox") match(adapters[0], /^unknown adapter \| .* \| limits:[0-9a-f]{8}$/);

        // The finished run is kept: ?fresh=1 drops it and trains again.
        server.dataRequests.length = 0;
        next = server.nextRun();
        await page.goto(`${url}&fresh=1`);
        const second = await next;
        ok(second.result, `the second load reported no result (error: ${second.error})`);
        deepEqual(server.dataRequests, [], "the second load fetched data files again");
        equal(second.result.resumedAfter, 0);
        // Every BatchNorm's kernel from the first load's timing, kept in the page's localStorage.
        deepEqual(second.result.kernels.sources, { timed: 0, cache: 6 });
        deepEqual(second.result.kernels.batchNorm, tuned.batchNorm);
        // Same browser, same adapter, same seed and batch: the same bits.
        equal(second.result.firstStepLoss, first.result.firstStepLoss);
        ok(second.checkpoint && second.checkpoint.length > 0, "no checkpoint from the second load");
        // ?fresh=1 is honoured once: a reload (the page's advice after a lost GPU) must not drop the run.
        equal(
          await page.evaluate<string>("location.search"),
          new URL(url).search,
          "the query after ?fresh=1",
        );

        // A reload of the finished run (before its download, say) gives it back from this browser's storage:
        // nothing trained, the same history, figures and checkpoint.
        next = server.nextRun();
        await page.reload();
        const shown = await next;
        ok(shown.result, `the reloaded page reported no result (error: ${shown.error})`);
        deepEqual(server.dataRequests, [], "the reload fetched data files again");
        equal(shown.result.resumedAfter, 1);
        equal(shown.result.firstStepLoss, undefined, "the finished run was trained again");
        deepEqual(shown.result.history, second.result.history);
        deepEqual(shown.result.figures, second.result.figures);
        assertSameRun(shown, second);

        // ?retune=1 times them again, as the first load did (a shape timed now is reused by its twin).
        next = server.nextRun();
        await page.goto(`${url}&fresh=1&retune=1`);
        const third = await next;
        ok(third.result, `the retuned page reported no result (error: ${third.error})`);
        deepEqual(third.result.kernels.sources, tuned.sources);
      });
    },
  });

  Deno.test({
    name:
      `${label}: a tab closed after an epoch resumes from this browser's checkpoint and ends with the bits of a run never stopped`,
    ignore,
    fn: async () => {
      // The first visit is stopped while the page waits on its report of epoch 1 (stored by then).
      const hold = epochHold();
      await inBrowser(browser, `web-train-resume-${browser}-`, async (page, server, pageUrl) => {
        const url = pageUrl(`epochs=2&train-limit=${TRAIN}&test-limit=${TEST}&batch-size=${BATCH}`);
        const visit = server.nextRun();
        await page.goto(url);
        await hold.held(visit);
        await page.goto("about:blank"); // the tab leaves mid-run
        hold.release();

        let next = server.nextRun();
        await page.goto(url);
        const resumed = await next;
        ok(resumed.result, `the second visit reported no result (error: ${resumed.error})`);
        equal(resumed.result.resumedAfter, 1);
        equal(resumed.result.history.length, 2);
        equal(resumed.result.firstStepLoss, undefined, "epoch 1 did not run again");

        // The same run never stopped (fresh=1: the finished run is kept, and would be shown again).
        next = server.nextRun();
        await page.goto(`${url}&fresh=1`);
        const whole = await next;
        ok(whole.result, `the uninterrupted run reported no result (error: ${whole.error})`);
        equal(whole.result.resumedAfter, 0);
        assertSameRun(resumed, whole);

        // A stored run that cannot be restored (here: not a checkpoint at all) is one error naming ?fresh=1.
        const key = `/webgpu-mda-runs/fashion_mda_quick?version=${experiment.version}&epochs=2` +
          `&batchSize=${BATCH}&trainLimit=${TRAIN}&testLimit=${TEST}`;
        await page.evaluate(
          `caches.open("webgpu-mda-runs").then((c) => c.put(${JSON.stringify(key)}, new Response("junk")))`,
        );
        next = server.nextRun();
        await page.goto(url);
        const broken = await next;
        ok(
          /^error: this browser's checkpoint of the run: .*; start the run over with \?fresh=1$/.test(
            broken.error ?? "",
          ),
          `expected the restore error, got ${broken.error}`,
        );
      }, hold.onEpoch);
    },
  });
}

Deno.test({
  name:
    "web: a GPU process crash in epoch 2 (every device lost) stops the page in one line; a reload continues after epoch 1 to the bits of a run never stopped",
  ignore: !ready,
  fn: async () => {
    // The page is held on its report of epoch 1 (stored by then) while the GPU process crashes.
    const hold = epochHold();
    await inBrowser("chromium", "web-train-gpucrash-", async (page, server, pageUrl) => {
      const url = pageUrl(`epochs=2&train-limit=${TRAIN}&test-limit=${TEST}&batch-size=${BATCH}`);
      const visit = server.nextRun();
      await page.goto(url);
      await hold.held(visit);
      await page.crashGpu!();
      hold.release();
      const crashed = await visit;
      equal(crashed.result, undefined, "the page finished on a lost device");
      match(
        crashed.error ?? "",
        /^error: the GPU device was lost \(unknown[^)]*\); nothing computed since can be read back; noticed at epoch 2, step [12] of 2; reload the page to continue the run after epoch 1$/,
      );

      // A reload gets a new GPU process and device, and continues from this browser's epoch 1.
      let next = server.nextRun();
      await page.reload();
      const resumed = await next;
      ok(resumed.result, `the reloaded page reported no result (error: ${resumed.error})`);
      equal(resumed.result.resumedAfter, 1);
      next = server.nextRun();
      await page.goto(`${url}&fresh=1`);
      const whole = await next;
      ok(whole.result, `the uninterrupted run reported no result (error: ${whole.error})`);
      assertSameRun(resumed, whole);
    }, hold.onEpoch);
  },
});
