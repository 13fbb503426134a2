// The results server without a browser: the index and pages show the runs' key numbers, the API gives
// what the pages draw, server-sent events bring a new epoch's line, no request reaches outside the
// results folder (dot segments raw or percent-encoded, backslashes, NUL, symlinks), and nothing is written.

import { deepStrictEqual, equal, match, ok, rejects } from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { encodeIdx } from "../lib/data/idx.ts";
import { thisProcess } from "../lib/io/process.ts";
import { formatSeconds } from "../lib/serve/common.ts";
import { followRuns, type RunUpdate } from "../lib/serve/follow.ts";
import { markdownToHtml } from "../lib/serve/html.ts";
import { type ResultsServer, startServer } from "../lib/serve/server.ts";
import { parseHistory } from "../lib/serve/scan.ts";
import { parseFlags } from "../experiments/flags.ts";
import { SERVE_SPEC, serveFromFlags } from "../experiments/serve.ts";
import { appendEpoch, historyRow, makeResults, SECRET, snapshot, writeRun } from "./serve_fixture.ts";

async function withServer(
  opts: { root: string; webDir?: string; dataDir?: string; pollMs?: number },
  fn: (base: string, port: number, results: ResultsServer) => Promise<void>,
) {
  const ac = new AbortController();
  let port = 0;
  const { server, results } = startServer({ ...opts, client: { js: "// test" } }, {
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen: (a) => port = a.port,
  });
  try {
    await fn(`http://127.0.0.1:${port}`, port, results);
  } finally {
    ac.abort();
    await server.finished;
  }
}

/** One request with the path sent exactly as given (fetch and URL would normalise dot segments). */
async function rawGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
  }
  conn.close();
  const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  return { status: Number(text.split(" ")[1]), body: text };
}

Deno.test("serve: index, run and report pages, API, files; nothing written", async () => {
  const { root } = await makeResults();
  const before = await snapshot(root);
  await withServer({ root }, async (base) => {
    const index = await (await fetch(`${base}/`)).text();
    match(index, /<tr data-run="done_run">.*finished.*3 \/ 3.*0\.6500/s);
    match(
      index,
      /<tr data-run="sweep\/live run">.*running.*2 \/ 10.*4 min.*Test adapter \(llvmpipe\) \(software\)/s,
    );
    match(index, /<a href="\/view\/sweep">A test sweep<\/a>/);
    ok(!index.includes("link_dir"), "a symlinked folder is not listed");

    const page = await (await fetch(`${base}/view/done_run`)).text();
    match(page, /<main data-page="run" data-dir="done_run">/);
    match(page, /<script type="module" src="\/static\/client.js">/);
    for (const f of ["accuracy", "loss", "latent", "components", "reliability", "confidence"]) {
      match(page, new RegExp(`<figure id="fig-${f}.svg">`));
    }
    const live = await fetch(`${base}/view/sweep/live%20run`);
    equal(live.status, 200);
    match(await live.text(), /data-dir="sweep\/live run"/);

    const report = await (await fetch(`${base}/view/sweep`)).text();
    match(report, /<h1>A test sweep<\/h1>/);
    match(report, /<a href="\/view\/sweep\/live%20run">live<\/a>/);
    match(report, /<img src="\/files\/sweep\/fig.svg"/);

    const data = await (await fetch(`${base}/api/run/done_run`)).json();
    equal(data.history.length, 3);
    equal(data.summary.status, "finished");
    equal(data.latent.labels.length, 300);
    equal(data.components.rows.length, 2);
    const svg = await fetch(`${base}/files/done_run/accuracy.svg`);
    equal(svg.headers.get("content-type"), "image/svg+xml");
    match(await svg.text(), /^<\?xml/);
    const cmp = await (await fetch(`${base}/compare?run=done_run&run=sweep/live%20run`)).text();
    match(cmp, /data-runs="\[&quot;done_run&quot;,&quot;sweep\/live run&quot;\]"/);
    equal((await fetch(`${base}/compare?run=../x`)).status, 400);

    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const r = await fetch(`${base}/files/done_run/history.jsonl`, { method, body: "x" });
      equal(r.status, 405, method);
      await r.body?.cancel();
    }
  });
  deepStrictEqual(await snapshot(root), before, "the server wrote into the results folder");
});

Deno.test("serve: the index links the training page only when web/ has it and its bundle", async () => {
  const { base: tmp, root } = await makeResults();
  const web = `${tmp}/web`;
  await Deno.mkdir(`${web}/dist`, { recursive: true });
  await Deno.writeTextFile(`${web}/train.html`, "<p>train</p>");
  const link = 'href="/web/train.html"';
  await withServer({ root, webDir: web }, async (base) => {
    ok(!(await (await fetch(`${base}/`)).text()).includes(link), "linked before the bundle exists");
    await Deno.writeTextFile(`${web}/dist/train.js`, "// bundle");
    ok((await (await fetch(`${base}/`)).text()).includes(link), "no link to the training page");
  });
  await withServer({ root }, async (base) => {
    ok(!(await (await fetch(`${base}/`)).text()).includes(link), "linked without a web/ folder");
  });
});

Deno.test("serve: no path outside the results folder (dot segments, encodings, symlinks)", async () => {
  const { base: tmp, root } = await makeResults();
  const web = `${tmp}/web`;
  await Deno.mkdir(web);
  await Deno.writeTextFile(`${web}/index.html`, "<p>web page</p>");
  const before = await snapshot(tmp);
  await withServer({ root, webDir: web }, async (base, port) => {
    const attempts = [
      "/files/../secret.txt",
      "/files/../outside/secret.txt",
      "/files/%2e%2e/secret.txt",
      "/files/%2E%2E/secret.txt",
      "/files/.%2e/secret.txt",
      "/files/..%2fsecret.txt",
      "/files/..%2Fsecret.txt",
      "/files/%2e%2e%2fsecret.txt",
      "/files/..%5csecret.txt",
      "/files/..\\secret.txt",
      "/files/%252e%252e/secret.txt",
      "/files/done_run/../../secret.txt",
      "/files/done_run/%2e%2e/%2e%2e/secret.txt",
      "/files/%00/secret.txt",
      "/files//etc/passwd",
      "/files/%2fetc%2fpasswd",
      "/files/link_dir/secret.txt",
      "/files/link_file.txt",
      "/files/link_dir",
      "/view/..%2f",
      "/view/link_dir",
      "/api/run/%2e%2e",
      "/api/run/link_dir",
      "/api/events/..%2foutside",
      "/api/events?run=..%2foutside",
      "/api/events?run=link_dir",
      "/web/../secret.txt",
      "/web/%2e%2e/secret.txt",
      "/web/..%2fsecret.txt",
      "/data/..%2f..%2f..%2fetc%2fpasswd",
      "/data/%2e%2e",
      "/compare?run=..%2foutside",
      "/compare?run=link_dir",
      "/../secret.txt",
      "/%2e%2e/secret.txt",
    ];
    for (const path of attempts) {
      const r = await rawGet(port, path);
      // Dot segments that the URL parser resolves land on the index ("/"), inside the folder: fine.
      const index = r.status === 200 && r.body.includes("<h1>Results</h1>");
      ok(index || (r.status >= 400 && r.status < 500), `${path}: status ${r.status}`);
      ok(!r.body.includes(SECRET), `${path} leaked the secret`);
      ok(!r.body.includes("root:x:0"), `${path} leaked /etc/passwd`);
    }
    // and fetch (which normalises) agrees
    for (const path of ["/files/../secret.txt", "/files/%2e%2e/secret.txt"]) {
      const r = await fetch(`${base}${path}`);
      ok(!(await r.text()).includes(SECRET), path);
    }
    equal((await rawGet(port, "/files/done_run/history.jsonl")).status, 200, "a plain file is served");
    match((await rawGet(port, "/web/")).body, /web page/);
  });
  deepStrictEqual(await snapshot(tmp), before, "the server wrote something");
});

/**
 * An event stream's updates one at a time; `ended` is whether the server has closed it (nothing left). A
 * read that waits more than 10 s fails: a stream that never ends would hang the test.
 */
async function eventStream(url: string) {
  const res = await fetch(url);
  equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  let done = false;
  const read = async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`nothing came on ${url} for 10 s`)), 10_000);
    });
    const chunk = await Promise.race([reader.read(), timeout]).finally(() => clearTimeout(timer));
    done = chunk.done;
    buffered += chunk.value ?? "";
  };
  return {
    reader,
    nextUpdate: async (): Promise<RunUpdate> => {
      for (;;) {
        const end = buffered.indexOf("\n\n");
        if (end >= 0) {
          const event = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = /^data: (.*)$/m.exec(event);
          if (/^event: update$/m.test(event) && data) return JSON.parse(data[1]);
          continue;
        }
        if (done) throw new Error("the event stream ended");
        await read();
      }
    },
    ended: async (): Promise<boolean> => {
      while (!done && !buffered.includes("\n\n")) await read();
      return done && buffered === "";
    },
  };
}

/** Polls `check` every 20 ms until it is true; the error names what was waited for. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000) {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("serve: server-sent events bring each new epoch's line as it lands", async () => {
  const { root, running } = await makeResults();
  await withServer({ root, pollMs: 50 }, async (base) => {
    const { reader, nextUpdate } = await eventStream(`${base}/api/events/sweep/live%20run`);
    const first = await nextUpdate();
    equal(first.history.length, 2);
    equal(first.summary.epochsDone, 2);
    equal(first.summary.etaSeconds, 8 * 30);
    await appendEpoch(running, 3);
    const second = await nextUpdate();
    equal(second.history.length, 3);
    equal(second.summary.epochsDone, 3);
    equal(second.summary.etaSeconds, 7 * 30);
    // Half a line (a writer caught mid-append) is not an epoch yet.
    await Deno.writeTextFile(`${running}/history.jsonl`, '{"epoch": 4, "train_lo', { append: true });
    const third = await nextUpdate();
    equal(third.history.length, 3);
    await reader.cancel();
  });
});

Deno.test("serve: Fashion-MNIST files under /data/ and the flags", async () => {
  const { root, base: tmp } = await makeResults();
  const data = `${tmp}/fashion`;
  await Deno.mkdir(data);
  const labels = new Uint8Array([1, 2, 3]);
  const images = new Uint8Array(3 * 784).fill(7);
  for (const p of ["train", "t10k"]) {
    await Deno.writeFile(
      `${data}/${p}-images-idx3-ubyte`,
      encodeIdx({ kind: "images", count: 3, rows: 28, cols: 28, data: images }),
    );
    await Deno.writeFile(
      `${data}/${p}-labels-idx1-ubyte`,
      encodeIdx({ kind: "labels", count: 3, data: labels }),
    );
  }
  await withServer({ root, dataDir: data }, async (base) => {
    const list = await (await fetch(`${base}/data/`)).json();
    deepStrictEqual(list.map((f: { file: string }) => f.file).sort(), [
      "t10k-images-idx3-ubyte",
      "t10k-labels-idx1-ubyte",
      "train-images-idx3-ubyte",
      "train-labels-idx1-ubyte",
    ]);
    const bytes = new Uint8Array(await (await fetch(`${base}/data/train-labels-idx1-ubyte`)).arrayBuffer());
    deepStrictEqual(bytes, await Deno.readFile(`${data}/train-labels-idx1-ubyte`));
    equal((await fetch(`${base}/data/passwd`)).status, 404);
    equal((await fetch(`${base}/web/`)).status, 404, "no web/ folder given");
  });
  const req = serveFromFlags(parseFlags(SERVE_SPEC, [root, "--port", "0"]));
  equal(req.port, 0);
  equal(req.host, "127.0.0.1");
  equal(serveFromFlags(parseFlags(SERVE_SPEC, [root])).port, 8000);
  deepStrictEqual(parseHistory('{"epoch":1}\n{"epoch":2}\n{"ep'), [{ epoch: 1 }, { epoch: 2 }]);
});

Deno.test("serve: one event stream follows several runs and ends once every one is over", async () => {
  const { root, running } = await makeResults();
  await withServer({ root, pollMs: 50 }, async (base, _port, results) => {
    const done = await eventStream(`${base}/api/events/done_run`);
    equal((await done.nextUpdate()).summary.status, "finished");
    ok(await done.ended(), "the stream of a finished run stayed open");

    const both = await eventStream(
      `${base}/api/events?run=done_run&run=${encodeURIComponent("sweep/live run")}`,
    );
    const first = [await both.nextUpdate(), await both.nextUpdate()];
    deepStrictEqual(first.map((u) => `${u.dir}: ${u.summary.status}, ${u.history.length} epochs`), [
      "done_run: finished, 3 epochs",
      "sweep/live run: running, 2 epochs",
    ]);
    await appendEpoch(running, 3);
    const third = await both.nextUpdate();
    deepStrictEqual([third.dir, third.history.length], ["sweep/live run", 3]);
    await writeRun(running, "stopped", 10, 3);
    equal((await both.nextUpdate()).summary.status, "stopped");
    ok(await both.ended(), "the stream stayed open after every run it follows was over");
    await until("no stream left open", () => results.openStreams === 0);

    const none = await fetch(`${base}/api/events`);
    equal(none.status, 400);
    await none.body?.cancel();
  });
});

Deno.test("serve: the pages' one stream (followRuns) is closed once every run it follows is over", async () => {
  const { root, running } = await makeResults();
  await withServer({ root, pollMs: 50 }, async (base, _port, results) => {
    equal(followRuns([], () => {}, base), undefined, "a stream opened for no run");
    const seen: string[] = [];
    const events = followRuns(["sweep/live run"], (u) => seen.push(u.summary.status), base)!;
    await until("the run's first update", () => seen.length === 1);
    await writeRun(running, "failed", 10, 2);
    await until("the run's last update", () => seen.length === 2);
    deepStrictEqual(seen, ["running", "failed"]);
    // Left open, an EventSource whose stream the server ended connects again, for ever.
    equal(events.readyState, EventSource.CLOSED);
    await until("no stream left open", () => results.openStreams === 0);
  });
});

Deno.test("serve: a run whose process has ended shows killed, with no ETA, no reload, no open stream", async () => {
  const { root, running } = await makeResults();
  // A power cut: the manifest names a process of this host's earlier boot.
  await writeRun(running, "running", 10, 2, { process: { ...thisProcess(), boot: "an earlier boot" } });
  await withServer({ root, pollMs: 50 }, async (base) => {
    const index = await (await fetch(`${base}/`)).text();
    const row = index.match(/<tr data-run="sweep\/live run">.*?<\/tr>/s)?.[0] ?? "";
    match(row, /<td class="status-killed" title="[^"]*its process has ended[^"]*">killed<\/td>/);
    ok(!/\d (s|min)</.test(row), `an ETA for a killed run: ${row}`);
    ok(!index.includes('http-equiv="refresh"'), "the index reloads itself for a killed run");
    const data = await (await fetch(`${base}/api/run/sweep/live%20run`)).json();
    deepStrictEqual([data.summary.status, data.summary.etaSeconds], ["killed", undefined]);
    match(
      await (await fetch(`${base}/view/sweep/live%20run`)).text(),
      /<div id="status" class="status-killed"/,
    );
    const stream = await eventStream(`${base}/api/events/sweep/live%20run`);
    equal((await stream.nextUpdate()).summary.status, "killed");
    ok(await stream.ended(), "the stream of a killed run stayed open");

    // SIGKILL while a page follows the run: no file changes, yet the page learns that the run is over.
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { thisProcess } from ${JSON.stringify(new URL("../lib/io/process.ts", import.meta.url).href)};
         console.log(JSON.stringify(thisProcess()));
         setTimeout(() => {}, 60_000);`,
      ],
      stdout: "piped",
    }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const trainer = JSON.parse((await lines.read()).value!);
    await lines.cancel();
    await writeRun(running, "running", 10, 2, { process: trainer });
    const live = await eventStream(`${base}/api/events/sweep/live%20run`);
    equal((await live.nextUpdate()).summary.status, "running");
    child.kill("SIGKILL");
    await child.status;
    equal((await live.nextUpdate()).summary.status, "killed");
    ok(await live.ended(), "the stream stayed open after the run's process was killed");
  });
});

Deno.test("serve: a finished run resumed for more epochs shows its history, not its old metrics.json", async () => {
  const { root, finished } = await makeResults();
  const manifest = JSON.parse(await Deno.readTextFile(`${finished}/manifest.json`));
  const setStatus = (status: string) =>
    Deno.writeTextFile(`${finished}/manifest.json`, JSON.stringify({ ...manifest, status }));
  // `--resume --epochs 5`: running again, epoch 4 landed, metrics.json still the finish after epoch 3.
  await setStatus("running");
  await appendEpoch(finished, 4);
  await withServer({ root }, async (base) => {
    const latest = historyRow(4).test_accuracy;
    const run = async () => (await fetch(`${base}/api/run/done_run`)).json();
    const page = async () => (await fetch(`${base}/view/done_run`)).text();
    match(
      await (await fetch(`${base}/`)).text(),
      new RegExp(`<tr data-run="done_run">.*${latest.toFixed(4)}`, "s"),
    );
    let data = await run();
    deepStrictEqual([data.summary.finalTestAccuracy, data.metrics], [latest, undefined]);
    ok(!(await page()).includes("Final metrics"), "the run page shows the previous finish's metrics");
    // Finished again, until its new metrics.json lands (it counts the epochs it evaluated): the history's.
    await setStatus("finished");
    data = await run();
    deepStrictEqual([data.summary.finalTestAccuracy, data.metrics], [latest, undefined]);
    const metrics = JSON.parse(await Deno.readTextFile(`${finished}/metrics.json`));
    await Deno.writeTextFile(`${finished}/metrics.json`, JSON.stringify({ ...metrics, epochs: 4 }));
    data = await run();
    equal(data.metrics.epochs, 4);
    match(await page(), /<h2>Final metrics<\/h2>/);
  });
});

Deno.test("serve: times are rounded to the unit shown before the split into hours and minutes", () => {
  equal(formatSeconds(7170), "2 h 0 min");
  equal(formatSeconds(9000), "2 h 30 min");
  equal(formatSeconds(3599), "60 min");
  equal(formatSeconds(89.4), "89 s");
  equal(formatSeconds(undefined), "");
});

Deno.test("serve: a checkout under a path with a space and an accent bundles its pages, each bundle whole", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "mda-serve-path-" });
  const repo = join(tmp, "check out é");
  const place = async (path: string, text?: string) => {
    await Deno.mkdir(dirname(join(repo, path)), { recursive: true });
    const real = fileURLToPath(new URL(`../${path}`, import.meta.url));
    await Deno.writeTextFile(join(repo, path), text ?? await Deno.readTextFile(real));
  };
  // The modules that find the checkout from their own URL, and stubs for what they bundle.
  for (const path of ["lib/serve/bundle.ts", "web/build.ts", "tools/browser_bundle.ts", "deno.json"]) {
    await place(path);
  }
  await place("lib/serve/client.ts", `console.log("the stub page script");\n`);
  await place("lib/gpu/pipelines.ts", "export function preloadWgsl(_: Record<string, string>): void {}\n");
  await place("web/train.ts", `console.log("the stub training page");\n`);
  try {
    const copy = (path: string) => import(pathToFileURL(join(repo, path)).href);
    const { bundleClient } = await copy("lib/serve/bundle.ts") as typeof import("../lib/serve/bundle.ts");
    const client = await bundleClient();
    equal(client.error, undefined);
    match(client.js!, /the stub page script/);

    const build = await copy("web/build.ts") as typeof import("../web/build.ts");
    equal(build.WEB_DIR, join(repo, "web"));
    const out = join(repo, "web", "dist", "train.js");
    await Deno.mkdir(dirname(out));
    await Deno.writeTextFile(out, "// the bundle being served\n");
    // A server that opened the old bundle reads it whole: the new one is a new file renamed over it.
    const served = await Deno.open(out);
    equal(await build.buildWebBundle(), out);
    equal(await new Response(served.readable).text(), "// the bundle being served\n");
    match(await Deno.readTextFile(out), /the stub training page/);
    const files = async () => (await Array.fromAsync(Deno.readDir(dirname(out)))).map((e) => e.name);
    deepStrictEqual(await files(), ["train.js"]);

    await place("web/train.ts", "export const = ;\n");
    await rejects(build.buildWebBundle(), /deno bundle failed/);
    match(await Deno.readTextFile(out), /the stub training page/);
    deepStrictEqual(await files(), ["train.js"], "a failed bundle left its temporary file");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("serve: a README's links go out as written only to the web and mail; script links are dropped", () => {
  const html = markdownToHtml(
    "[a](https://x.org/p) [b](mailto:me@x.org) [c](javascript:alert(1)) [d](JavaScript:x) [e](data:text/html,x) " +
      "[f](seed-1/README.md) [g](#top)",
    "sweep",
  );
  const hrefs = [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
  deepStrictEqual(hrefs, ["https://x.org/p", "mailto:me@x.org", "#", "#", "#", "/view/sweep/seed-1", "#top"]);
});
