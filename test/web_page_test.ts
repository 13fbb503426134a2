// The training page's logic that needs no browser (web/page.ts): its switches, the query left in the
// address bar, the limits on the data (in the CLI's words), the progress bar of a resumed run and the
// times it shows. The page itself is tested in browsers by web_train_test.ts.

import { deepEqual, equal, throws } from "node:assert/strict";
import { loadFashionMnist } from "../lib/data/fashion.ts";
import type { IdxImages, IdxLabels } from "../lib/data/idx.ts";
import { formatSeconds, pageSwitches, runFraction, split, withoutParam } from "../web/page.ts";
import { writeTinyDataset } from "./tiny_data.ts";
import { tempDir } from "./util.ts";

Deno.test("web page: ?fresh= is a switch like the others, refused with the value it takes", () => {
  const on = (query: string) => pageSwitches(new URLSearchParams(query));
  deepEqual(on(""), { tuneBatchNorm: false, retune: false, noWinograd: false, fresh: false });
  equal(on("fresh=1").fresh, true);
  throws(() => on("fresh=yes"), {
    message: `?fresh= must be "1" (drop the run kept in this browser and train it again), got "yes"`,
  });
  throws(() => on("fresh=0"), { message: /^\?fresh= must be "1" .*, got "0"$/ });
});

Deno.test("web page: ?fresh=1 leaves the address bar, the rest of the query as written", () => {
  equal(
    withoutParam("?epochs=2&fresh=1&data=/d/&report=/report", "fresh"),
    "?epochs=2&data=/d/&report=/report",
  );
  equal(withoutParam("?fresh=1", "fresh"), "");
  equal(withoutParam("", "fresh"), "");
  equal(withoutParam("?fresh=1&fresh=1&freshness=2", "fresh"), "?freshness=2");
});

function images(count: number): { images: IdxImages; labels: IdxLabels } {
  return {
    images: { kind: "images", count, rows: 28, cols: 28, data: new Uint8Array(count * 784) },
    labels: { kind: "labels", count, data: new Uint8Array(count) },
  };
}

Deno.test("web page: a limit above the data is refused in the CLI's words, not cut to the data", async () => {
  const { images: im, labels } = images(40);
  equal(split(im, labels, 40, "train-limit", "u").count, 40);
  equal(split(im, labels, 7, "train-limit", "u").labels.length, 7);
  equal(split(im, labels, undefined, "train-limit", "u").count, 40);
  const base = "http://127.0.0.1:8000/data/", url = `${base}train-images-idx3-ubyte`;
  const page = `?train-limit=41 exceeds the 40 images in ${url}`;
  throws(() => split(im, labels, 41, "train-limit", url), { message: page });

  // The CLI's message for the same limit on the same count, but for the flag's spelling and the file's place.
  const dir = await tempDir("web-page-limit-");
  await writeTinyDataset(dir, 40, 24);
  try {
    await loadFashionMnist({ dataDir: dir, download: false, trainLimit: 41, log: () => {} });
    throw new Error("the CLI took --train-limit 41 for 40 images");
  } catch (e) {
    const cli = (e as Error).message;
    equal(cli.replace("--train-limit ", "?train-limit=").replace(`${dir}/`, base), page);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("web page: the progress bar counts the epochs of earlier visits", () => {
  equal(runFraction(51, 100, 0, 64), 0.5); // resumed after epoch 50 of 100
  equal(runFraction(51, 100, 32, 64), 0.505);
  equal(runFraction(1, 2, 64, 64), 0.5);
  equal(runFraction(2, 2, 1000, 64), 1); // the last batch's count goes past the split
  equal(runFraction(3, 2, 0, 64), 1); // a finished run shown again
});

Deno.test("web page: times are rounded before they are split into minutes and seconds", () => {
  equal(formatSeconds(119.6), "2 min 0 s");
  equal(formatSeconds(59.6), "1 min 0 s");
  equal(formatSeconds(59.4), "59 s");
  equal(formatSeconds(125), "2 min 5 s");
  equal(formatSeconds(0.2), "0 s");
  equal(formatSeconds(Infinity), "?");
});
