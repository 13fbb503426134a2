// The results server without a browser: the index and pages show the runs' key numbers, the API gives
// what the pages draw, server-sent events bring a new epoch's line, no request reaches outside the
// results folder (dot segments raw or percent-encoded, backslashes, NUL, symlinks), and nothing is written.

import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { encodeIdx } from "../lib/data/idx.ts";
import { startServer } from "../lib/serve/server.ts";
import { parseHistory } from "../lib/serve/scan.ts";
import { parseFlags } from "../experiments/flags.ts";
import { SERVE_SPEC, serveFromFlags } from "../experiments/serve.ts";
import { appendEpoch, makeResults, SECRET, snapshot } from "./serve_fixture.ts";

async function withServer(
  opts: { root: string; webDir?: string; dataDir?: string; pollMs?: number },
  fn: (base: string, port: number) => Promise<void>,
) {
  const ac = new AbortController();
  let port = 0;
  const { server } = startServer({ ...opts, client: { js: "// test" } }, {
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen: (a) => port = a.port,
  });
  try {
    await fn(`http://127.0.0.1:${port}`, port);
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

Deno.test("serve: server-sent events bring each new epoch's line as it lands", async () => {
  const { root, running } = await makeResults();
  await withServer({ root, pollMs: 50 }, async (base) => {
    const res = await fetch(`${base}/api/events/sweep/live%20run`);
    equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    const nextUpdate = async () => {
      for (;;) {
        const end = buffered.indexOf("\n\n");
        if (end >= 0) {
          const event = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = /^data: (.*)$/m.exec(event);
          if (/^event: update$/m.test(event) && data) return JSON.parse(data[1]);
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error("the event stream ended");
        buffered += value;
      }
    };
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
