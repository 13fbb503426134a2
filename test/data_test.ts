// The Fashion-MNIST loader on small IDX files written by the tests: sources and their order, cross-file
// validation, limits, verification records, the download (from a server on 127.0.0.1 only) and the
// epoch helpers. The real data set is checked by data_real_test.ts.

import { fileURLToPath } from "node:url";
import { deepStrictEqual as assertEquals, ok as assert, rejects as assertRejects } from "node:assert/strict";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { batchRanges, cropOffsets, epochOrder } from "../lib/data/batches.ts";
import {
  DataError,
  FASHION_FILES,
  type FashionFile,
  type FashionMnist,
  loadFashionMnist,
  loadFashionMnistTest,
  type LoadOptions,
  sha256Hex,
} from "../lib/data/fashion.ts";
import { encodeIdx } from "../lib/data/idx.ts";
import { Rng } from "../lib/rng.ts";

interface Fixture {
  /** Plain IDX bytes per official name. */
  files: Record<FashionFile, Uint8Array>;
  trainImages: Uint8Array;
  trainLabels: Uint8Array;
  testImages: Uint8Array;
  testLabels: Uint8Array;
}

function fixture(seed: number, train = 12, test = 5): Fixture {
  const rng = new Rng(seed);
  const bytes = (n: number, max = 256) => Uint8Array.from({ length: n }, () => rng.int(max));
  const trainImages = bytes(train * 784), trainLabels = bytes(train, 10);
  const testImages = bytes(test * 784), testLabels = bytes(test, 10);
  return {
    files: {
      "train-images-idx3-ubyte": encodeIdx({
        kind: "images",
        count: train,
        rows: 28,
        cols: 28,
        data: trainImages,
      }),
      "train-labels-idx1-ubyte": encodeIdx({ kind: "labels", count: train, data: trainLabels }),
      "t10k-images-idx3-ubyte": encodeIdx({
        kind: "images",
        count: test,
        rows: 28,
        cols: 28,
        data: testImages,
      }),
      "t10k-labels-idx1-ubyte": encodeIdx({ kind: "labels", count: test, data: testLabels }),
    },
    trainImages,
    trainLabels,
    testImages,
    testLabels,
  };
}

const gz = (b: Uint8Array) => new Uint8Array(gzipSync(b));

/** Writes the files into dir: gzipped under "<name>.gz" when `gzip`, else plain under "<name>". */
function writeDir(dir: string, files: Partial<Record<FashionFile, Uint8Array>>, gzip = false): string {
  Deno.mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) {
    Deno.writeFileSync(join(dir, gzip ? `${name}.gz` : name), gzip ? gz(bytes) : bytes);
  }
  return dir;
}

async function hashes(f: Fixture): Promise<Record<FashionFile, string>> {
  const out = {} as Record<FashionFile, string>;
  for (const name of FASHION_FILES) out[name] = await sha256Hex(f.files[name]);
  return out;
}

/** Runs `body` with a fresh temporary directory, removed afterwards. */
async function withTemp(body: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = Deno.makeTempDirSync({ prefix: "data_test_" });
  try {
    await body(tmp);
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
}

/** Options that can never find the machine's own copies (./data, /usr/share/datasets). */
function isolated(tmp: string, extra: LoadOptions = {}): LoadOptions & { lines: string[] } {
  const lines: string[] = [];
  return {
    localDir: join(tmp, "local"),
    systemDir: join(tmp, "system"),
    download: false,
    log: (l) => lines.push(l),
    lines,
    ...extra,
  };
}

async function assertDataError(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assertRejects(p, (e: unknown) => {
    if (!(e instanceof DataError)) throw new Error(`expected DataError, got ${e}`);
    if (e.message.includes("\n")) throw new Error(`message is not one line: ${e.message}`);
    if (!pattern.test(e.message)) throw new Error(`message does not match ${pattern}: ${e.message}`);
    return true;
  });
}

function checkValues(data: FashionMnist, f: Fixture): void {
  assertEquals(data.train.count, f.trainLabels.length);
  assertEquals(data.test.count, f.testLabels.length);
  assertEquals([data.train.rows, data.train.cols], [28, 28]);
  assertEquals(data.train.images, f.trainImages);
  assertEquals(data.train.labels, f.trainLabels);
  assertEquals(data.test.images, f.testImages);
  assertEquals(data.test.labels, f.testLabels);
}

Deno.test("data: plain files round trip with values and order, recorded as unverified", async () => {
  await withTemp(async (tmp) => {
    const f = fixture(1);
    const dir = writeDir(join(tmp, "mine"), f.files);
    const opts = isolated(tmp, { dataDir: dir });
    const data = await loadFashionMnist(opts);
    checkValues(data, f);
    assertEquals(data.dir, dir);
    assertEquals(data.verified, false);
    const h = await hashes(f);
    assertEquals(
      data.files,
      FASHION_FILES.map((name) => ({ name, path: join(dir, name), sha256: h[name], verified: false })),
    );
    assertEquals(opts.lines.length, 4);
    assert(opts.lines[0].includes("(plain, 12 images of 28x28, unverified"), opts.lines[0]);
  });
});

Deno.test("data: gzip is detected by content, not by name, and both spellings are accepted", async () => {
  await withTemp(async (tmp) => {
    const f = fixture(2);
    // Gzip content under the plain names, plain content under the .gz names, and a mix.
    const dir1 = join(tmp, "a");
    Deno.mkdirSync(dir1);
    for (const name of FASHION_FILES) Deno.writeFileSync(join(dir1, name), gz(f.files[name]));
    const o1 = isolated(tmp, { dataDir: dir1 });
    checkValues(await loadFashionMnist(o1), f);
    assert(o1.lines.every((l) => l.includes("(gzip,")), o1.lines.join("\n"));
    const dir2 = join(tmp, "b");
    Deno.mkdirSync(dir2);
    for (const name of FASHION_FILES) Deno.writeFileSync(join(dir2, `${name}.gz`), f.files[name]);
    checkValues(await loadFashionMnist(isolated(tmp, { dataDir: dir2 })), f);
    const dir3 = join(tmp, "c");
    writeDir(dir3, { "train-images-idx3-ubyte": f.files["train-images-idx3-ubyte"] }, true);
    writeDir(dir3, { "train-labels-idx1-ubyte": f.files["train-labels-idx1-ubyte"] });
    writeDir(dir3, { "t10k-images-idx3-ubyte": f.files["t10k-images-idx3-ubyte"] }, true);
    writeDir(dir3, { "t10k-labels-idx1-ubyte": f.files["t10k-labels-idx1-ubyte"] });
    const data = await loadFashionMnist(isolated(tmp, { dataDir: dir3 }));
    checkValues(data, f);
    assertEquals(data.files.map((r) => r.path.slice(dir3.length + 1)), [
      "train-images-idx3-ubyte.gz",
      "train-labels-idx1-ubyte",
      "t10k-images-idx3-ubyte.gz",
      "t10k-labels-idx1-ubyte",
    ]);
  });
});

Deno.test("data: when both spellings exist the plain file is used, and the log says so", async () => {
  await withTemp(async (tmp) => {
    const f = fixture(3), other = fixture(4);
    const dir = writeDir(join(tmp, "d"), f.files);
    writeDir(dir, other.files, true);
    const opts = isolated(tmp, { dataDir: dir });
    checkValues(await loadFashionMnist(opts), f);
    assert(opts.lines[0].endsWith(`; ignoring ${join(dir, "train-images-idx3-ubyte.gz")}`), opts.lines[0]);
  });
});

Deno.test("data: files matching the expected SHA-256 are recorded as verified, per file", async () => {
  await withTemp(async (tmp) => {
    const f = fixture(5);
    const dir = writeDir(join(tmp, "d"), f.files, true);
    const h = await hashes(f);
    const all = await loadFashionMnist(isolated(tmp, { dataDir: dir, sha256: h }));
    assertEquals(all.verified, true);
    assert(all.files.every((r) => r.verified));
    const some = await loadFashionMnist(
      isolated(tmp, { dataDir: dir, sha256: { "train-images-idx3-ubyte": h["train-images-idx3-ubyte"] } }),
    );
    assertEquals(some.verified, false);
    assertEquals(some.files.map((r) => r.verified), [true, false, false, false]);
  });
});

Deno.test("data: --train-limit / --test-limit keep the first N images", async () => {
  await withTemp(async (tmp) => {
    const f = fixture(6);
    const dir = writeDir(join(tmp, "d"), f.files);
    const data = await loadFashionMnist(isolated(tmp, { dataDir: dir, trainLimit: 5, testLimit: 5 }));
    assertEquals(data.train.count, 5);
    assertEquals(data.train.images, f.trainImages.subarray(0, 5 * 784));
    assertEquals(data.train.labels, f.trainLabels.subarray(0, 5));
    assertEquals(data.test.count, 5);
    await assertDataError(
      loadFashionMnist(isolated(tmp, { dataDir: dir, trainLimit: 13 })),
      /^--train-limit 13 exceeds the 12 images in .*train-images-idx3-ubyte$/,
    );
    await assertDataError(
      loadFashionMnist(isolated(tmp, { dataDir: dir, testLimit: 0 })),
      /^--test-limit must be a positive integer, got 0$/,
    );
    await assertDataError(
      loadFashionMnist(isolated(tmp, { dataDir: dir, testLimit: 2.5 })),
      /^--test-limit must be a positive integer, got 2.5$/,
    );
  });
});

Deno.test("data: the test split alone needs, reads and reports only the two t10k files", async () => {
  await withTemp(async (tmp) => {
    const f = fixture(12);
    const testOnly = {
      "t10k-images-idx3-ubyte": f.files["t10k-images-idx3-ubyte"],
      "t10k-labels-idx1-ubyte": f.files["t10k-labels-idx1-ubyte"],
    };
    const dir = writeDir(join(tmp, "t"), testOnly, true);
    const opts = isolated(tmp, { dataDir: dir, testLimit: 4 });
    const data = await loadFashionMnistTest(opts);
    assertEquals(data.test.count, 4);
    assertEquals(data.test.images, f.testImages.subarray(0, 4 * 784));
    assertEquals(data.test.labels, f.testLabels.subarray(0, 4));
    assertEquals("train" in data, false);
    assertEquals(data.files.map((r) => r.name), ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]);
    assertEquals(opts.lines.length, 2);
    const h = await hashes(f);
    assertEquals((await loadFashionMnistTest(isolated(tmp, { dataDir: dir, sha256: h }))).verified, true);
    // The full loader still wants all four, and the test loader names only what it lacks.
    await assertDataError(
      loadFashionMnist(isolated(tmp, { dataDir: dir })),
      /missing train-images-idx3-ubyte\[\.gz\], train-labels-idx1-ubyte\[\.gz\];/,
    );
    const half = writeDir(join(tmp, "half"), {
      "t10k-images-idx3-ubyte": testOnly["t10k-images-idx3-ubyte"],
    });
    await assertDataError(
      loadFashionMnistTest(isolated(tmp, { dataDir: half })),
      /^--data .*half: missing t10k-labels-idx1-ubyte\[\.gz\];/,
    );
    // Without --data, a local copy of the test files alone is enough (no download asked for).
    writeDir(join(tmp, "local"), testOnly);
    const local = isolated(tmp);
    assertEquals((await loadFashionMnistTest(local)).dir, join(tmp, "local"));
    await assertDataError(
      loadFashionMnistTest(isolated(tmp, { testLimit: 6 })),
      /^--test-limit 6 exceeds the 5/,
    );
  });
});

Deno.test("data: cross-file errors name the file: kinds, image size, counts, labels, truncation", async () => {
  await withTemp(async (tmp) => {
    const f = fixture(7);
    let n = 0;
    const broken = async (replace: Partial<Record<FashionFile, Uint8Array>>, pattern: RegExp) => {
      const dir = writeDir(join(tmp, `case${n++}`), { ...f.files, ...replace }, true);
      await assertDataError(loadFashionMnist(isolated(tmp, { dataDir: dir })), pattern);
    };
    const labels = f.files["train-labels-idx1-ubyte"], images = f.files["train-images-idx3-ubyte"];
    await broken(
      { "train-images-idx3-ubyte": labels },
      /train-images-idx3-ubyte\.gz: holds labels \(1 dimension\), expected images \(3 dimensions\)$/,
    );
    await broken(
      { "t10k-labels-idx1-ubyte": f.files["t10k-images-idx3-ubyte"] },
      /t10k-labels-idx1-ubyte\.gz: holds images \(3 dimensions\), expected labels \(1 dimension\)$/,
    );
    const big = encodeIdx({ kind: "images", count: 12, rows: 32, cols: 32, data: new Uint8Array(12 * 1024) });
    await broken(
      { "train-images-idx3-ubyte": big },
      /train-images-idx3-ubyte\.gz: images are 32x32, expected 28x28$/,
    );
    const fewer = encodeIdx({ kind: "labels", count: 11, data: f.trainLabels.subarray(0, 11) });
    await broken(
      { "train-labels-idx1-ubyte": fewer },
      /train-labels-idx1-ubyte\.gz: 11 labels, but .*train-images-idx3-ubyte\.gz holds 12 images$/,
    );
    const badLabel = f.testLabels.slice();
    badLabel[3] = 10;
    await broken(
      { "t10k-labels-idx1-ubyte": encodeIdx({ kind: "labels", count: 5, data: badLabel }) },
      /t10k-labels-idx1-ubyte\.gz: label 10 at index 3 is not below the 10 classes$/,
    );
    await broken(
      { "train-images-idx3-ubyte": images.subarray(0, images.length - 100) },
      /train-images-idx3-ubyte\.gz: truncated: /,
    );
    // A corrupted gzip stream (written raw, so writeDir's gzip does not wrap it again).
    const dir = writeDir(join(tmp, "gzbad"), f.files, true);
    const bad = gz(labels);
    Deno.writeFileSync(join(dir, "train-labels-idx1-ubyte.gz"), bad.subarray(0, bad.length - 9));
    await assertDataError(
      loadFashionMnist(isolated(tmp, { dataDir: dir })),
      /train-labels-idx1-ubyte\.gz: corrupt gzip data \(unexpected end of file\)$/,
    );
  });
});

Deno.test("data: sources in order: --data, then ./data/fashion-mnist, then the Debian package", async () => {
  await withTemp(async (tmp) => {
    const local = fixture(8), system = fixture(9), mine = fixture(10);
    const opts = isolated(tmp);
    writeDir(opts.systemDir!, system.files, true);
    checkValues(await loadFashionMnist(opts), system);
    // A partial local copy is not used (and is not needed: the system copy is complete).
    writeDir(opts.localDir!, { "train-images-idx3-ubyte": local.files["train-images-idx3-ubyte"] });
    const fromSystem = await loadFashionMnist(opts);
    checkValues(fromSystem, system);
    assertEquals(fromSystem.dir, opts.systemDir);
    writeDir(opts.localDir!, local.files);
    checkValues(await loadFashionMnist(opts), local);
    const dataDir = writeDir(join(tmp, "mine"), mine.files);
    checkValues(await loadFashionMnist({ ...opts, dataDir }), mine);
  });
});

Deno.test("data: --data DIR is used alone: a missing directory or file is an error with the remedies", async () => {
  await withTemp(async (tmp) => {
    const f = fixture(11);
    const opts = isolated(tmp);
    writeDir(opts.systemDir!, f.files);
    await assertDataError(
      loadFashionMnist({ ...opts, dataDir: join(tmp, "nope") }),
      /^--data .*nope: no such directory; install it with `apt-get install dataset-fashion-mnist`, or pass --data DIR/,
    );
    const dir = writeDir(join(tmp, "partial"), {
      "train-images-idx3-ubyte": f.files["train-images-idx3-ubyte"],
    });
    await assertDataError(
      loadFashionMnist({ ...opts, dataDir: dir }),
      /^--data .*partial: missing train-labels-idx1-ubyte\[\.gz\], t10k-images-idx3-ubyte\[\.gz\], t10k-labels-idx1-ubyte\[\.gz\]; install it/,
    );
  });
});

Deno.test("data: no copy and no download: one line naming the places tried and both remedies", async () => {
  await withTemp(async (tmp) => {
    const opts = isolated(tmp);
    await assertDataError(
      loadFashionMnist(opts),
      new RegExp(
        `^Fashion-MNIST not found in ${opts.localDir} and ${opts.systemDir} \\(downloading is off\\); ` +
          "install it with `apt-get install dataset-fashion-mnist`, or pass --data DIR",
      ),
    );
  });
});

// ---- Download, from a server on the loopback address only ----

interface TestServer {
  url: string;
  requests: string[];
  close(): Promise<void>;
}

/** Serves `files` by URL path on 127.0.0.1 (404 otherwise); `stall` paths send headers, then nothing. */
function serve(files: Record<string, Uint8Array>, stall = new Set<string>()): TestServer {
  const requests: string[] = [];
  const pending: ReadableStreamDefaultController<Uint8Array>[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname.replace(/^\/mirror\//, "");
    requests.push(path);
    if (stall.has(path)) {
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new Uint8Array(10));
          pending.push(c);
        },
      });
      return new Response(body, { headers: { "content-length": "1000" } });
    }
    const body = files[path];
    return body
      ? new Response(body as Uint8Array<ArrayBuffer>)
      : new Response("no such file", { status: 404 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/mirror/`,
    requests,
    close: async () => {
      for (const c of pending) {
        try {
          c.close();
        } catch { /* the client already went away */ }
      }
      await server.shutdown();
    },
  };
}

async function gzFiles(f: Fixture): Promise<Record<string, Uint8Array>> {
  const out: Record<string, Uint8Array> = {};
  for (const name of FASHION_FILES) out[`${name}.gz`] = gz(f.files[name]);
  return await Promise.resolve(out);
}

function listDir(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  } catch {
    return [];
  }
}

Deno.test("download: missing files are fetched, verified, renamed into place, and then used locally", async () => {
  await withTemp(async (tmp) => {
    const f = fixture(12);
    const server = serve(await gzFiles(f));
    try {
      const opts = isolated(tmp, { download: true, baseUrl: server.url, sha256: await hashes(f) });
      const data = await loadFashionMnist(opts);
      checkValues(data, f);
      assertEquals(data.verified, true);
      assertEquals(data.dir, opts.localDir);
      assertEquals(listDir(opts.localDir!), FASHION_FILES.map((n) => `${n}.gz`).sort());
      assertEquals(server.requests, FASHION_FILES.map((n) => `${n}.gz`));
      assert(opts.lines.some((l) => l.includes("downloading")), opts.lines.join("\n"));
      assert(opts.lines.some((l) => /downloaded .*t10k-labels-idx1-ubyte\.gz .*SHA-256 verified/.test(l)));
      // A second load finds the local copy and asks the server for nothing.
      checkValues(await loadFashionMnist(opts), f);
      assertEquals(server.requests.length, 4);
    } finally {
      await server.close();
    }
  });
});

Deno.test("download: only the files missing from a partial local copy are fetched", async () => {
  await withTemp(async (tmp) => {
    const f = fixture(13);
    const server = serve(await gzFiles(f));
    try {
      const opts = isolated(tmp, { download: true, baseUrl: server.url, sha256: await hashes(f) });
      writeDir(opts.localDir!, {
        "train-images-idx3-ubyte": f.files["train-images-idx3-ubyte"],
        "t10k-labels-idx1-ubyte": f.files["t10k-labels-idx1-ubyte"],
      });
      checkValues(await loadFashionMnist(opts), f);
      assertEquals(server.requests, ["train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"]);
    } finally {
      await server.close();
    }
  });
});

Deno.test("download: a corrupted file is refused and never renamed into place", async () => {
  await withTemp(async (tmp) => {
    const f = fixture(14);
    const h = await hashes(f);
    const files = await gzFiles(f);
    // Valid gzip of a changed image: only the checksum can tell.
    const changed = f.files["t10k-images-idx3-ubyte"].slice();
    changed[100] ^= 1;
    files["t10k-images-idx3-ubyte.gz"] = gz(changed);
    const server = serve(files);
    try {
      const opts = isolated(tmp, { download: true, baseUrl: server.url, sha256: h });
      await assertDataError(
        loadFashionMnist(opts),
        new RegExp(
          `^downloaded ${server.url}t10k-images-idx3-ubyte\\.gz: SHA-256 of the decompressed file is ` +
            `${await sha256Hex(changed)}, expected ${h["t10k-images-idx3-ubyte"]}; not saved .*--data DIR`,
        ),
      );
      // The files before it were verified and kept; the bad one and any temporary file are gone.
      assertEquals(listDir(opts.localDir!), ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]);
      // The official checksums apply by default: these small files are not Fashion-MNIST.
      const official = isolated(join(tmp, "x"), { download: true, baseUrl: server.url });
      await assertDataError(
        loadFashionMnist(official),
        /train-images-idx3-ubyte\.gz: SHA-256 .* expected c59f468a/,
      );
      assertEquals(listDir(official.localDir!), []);
    } finally {
      await server.close();
    }
  });
});

Deno.test("download: truncated gzip, HTTP 404 and a refused connection are one-line errors", async () => {
  await withTemp(async (tmp) => {
    const f = fixture(15);
    const files = await gzFiles(f);
    const full = files["train-images-idx3-ubyte.gz"];
    files["train-images-idx3-ubyte.gz"] = full.subarray(0, full.length - 20);
    delete files["t10k-labels-idx1-ubyte.gz"];
    const server = serve(files);
    try {
      const h = await hashes(f);
      const opts = isolated(tmp, { download: true, baseUrl: server.url, sha256: h });
      await assertDataError(
        loadFashionMnist(opts),
        /^downloaded .*train-images-idx3-ubyte\.gz: corrupt gzip data \(unexpected end of file\)$/,
      );
      assertEquals(listDir(opts.localDir!), []);
      writeDir(opts.localDir!, { "train-images-idx3-ubyte": f.files["train-images-idx3-ubyte"] });
      await assertDataError(
        loadFashionMnist(opts),
        new RegExp(
          `^Fashion-MNIST not found in ${opts.localDir} and ${opts.systemDir}, and downloading ` +
            `${server.url}t10k-labels-idx1-ubyte\\.gz failed \\(HTTP 404 Not Found\\); install it with ` +
            "`apt-get install dataset-fashion-mnist`, or pass --data DIR",
        ),
      );
      assertEquals(listDir(opts.localDir!), [
        "t10k-images-idx3-ubyte.gz",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte.gz",
      ]);
    } finally {
      await server.close();
    }
    // Nothing listens on the port any more: the connection is refused.
    await assertDataError(
      loadFashionMnist(isolated(join(tmp, "y"), { download: true, baseUrl: server.url })),
      /^Fashion-MNIST not found in .* and .*, and downloading http:\/\/127\.0\.0\.1:\d+\/mirror\/train-images-idx3-ubyte\.gz failed \(.+\); install it with `apt-get install dataset-fashion-mnist`, or pass --data DIR/,
    );
  });
});

Deno.test("download: a server that stops sending is abandoned after the stall timeout", async () => {
  await withTemp(async (tmp) => {
    const server = serve({}, new Set(["train-images-idx3-ubyte.gz"]));
    try {
      const opts = isolated(tmp, { download: true, baseUrl: server.url, stallTimeoutMs: 300 });
      await assertDataError(loadFashionMnist(opts), /failed \(no data for 0\.3 s\)/);
      assertEquals(listDir(opts.localDir!), []);
    } finally {
      await server.close();
    }
  });
});

Deno.test("download: FASHION_MNIST_URL sets the mirror when no base URL is given", async () => {
  await withTemp(async (tmp) => {
    const f = fixture(16);
    const server = serve(await gzFiles(f));
    const before = Deno.env.get("FASHION_MNIST_URL");
    Deno.env.set("FASHION_MNIST_URL", server.url.slice(0, -1)); // without the trailing slash
    try {
      const data = await loadFashionMnist(isolated(tmp, { download: true, sha256: await hashes(f) }));
      checkValues(data, f);
      assertEquals(server.requests.length, 4);
    } finally {
      if (before === undefined) Deno.env.delete("FASHION_MNIST_URL");
      else Deno.env.set("FASHION_MNIST_URL", before);
      await server.close();
    }
  });
});

// ---- The epoch on the CPU ----

Deno.test("batches: seeded order (pinned values), last partial batch kept, crop offsets in 0..8", () => {
  // Pinned: the same seed must give the same epoch on every machine and in every version.
  assertEquals(Array.from(epochOrder(new Rng(0), 10)), [3, 6, 1, 5, 0, 4, 2, 9, 7, 8]);
  const a = epochOrder(new Rng(7), 60000), b = epochOrder(new Rng(7), 60000);
  assertEquals(a, b);
  assertEquals(new Set(a).size, 60000);
  assert(Math.max(...a) === 59999);
  const ranges = batchRanges(60000, 256);
  assertEquals(ranges.length, 235);
  assertEquals(ranges[234], { start: 59904, size: 96 });
  assert(ranges.slice(0, 234).every((r, i) => r.start === 256 * i && r.size === 256));
  const test = batchRanges(10000, 1024);
  assertEquals(test.length, 10);
  assertEquals(test[9], { start: 9216, size: 784 });
  assertEquals(batchRanges(512, 256).length, 2);
  assertEquals(batchRanges(0, 256), []);
  const crop = cropOffsets(new Rng(3), 5000);
  assertEquals(crop.length, 10000);
  const seen = new Array(9).fill(0);
  for (const c of crop) seen[c]++;
  assert(seen.every((n) => n > 900 && n < 1340), `offset counts ${seen}`);
  assertEquals(cropOffsets(new Rng(3), 5000), crop);
});

// ---- The command line ----

async function runCheck(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", fileURLToPath(new URL("../lib/data/check.ts", import.meta.url)), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

Deno.test("cli: a data problem prints one line `error: ...` and exits non-zero, no stack trace", async () => {
  await withTemp(async (tmp) => {
    const f = fixture(17);
    const files = { ...f.files };
    files["t10k-labels-idx1-ubyte"] = files["t10k-labels-idx1-ubyte"].subarray(0, 9);
    const dir = writeDir(join(tmp, "d"), files);
    const bad = await runCheck(["--data", dir]);
    assertEquals(bad.code, 1);
    assertEquals(
      bad.stderr,
      `error: ${
        join(dir, "t10k-labels-idx1-ubyte")
      }: truncated: 9 bytes, but its header (5 labels) needs 13 bytes\n`,
    );
    const good = await runCheck(["--data", writeDir(join(tmp, "ok"), f.files), "--train-limit", "4"]);
    assertEquals(good.code, 0, good.stderr);
    assert(good.stdout.includes("train: 4 images;"), good.stdout);
    assert(good.stdout.endsWith(": unverified\n"), good.stdout);
  });
});
