// Where the tuner keeps its choices (lib/gpu/tuner.ts, TuningStore): a file in Deno, localStorage in a
// browser. Runs in Deno (a Map stands in for Web Storage) and in headless Chromium (`deno task
// test:browser`: the page's real localStorage). The timed work is the BatchNorm tuning of one small layer,
// forced to "hardware" mode on the software adapter.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { getGpu } from "../lib/gpu/device.ts";
import { ParamStore } from "../lib/gpu/params.ts";
import {
  adapterKey,
  defaultTuningStore,
  TUNING_FORMAT,
  TUNING_STORAGE_KEY,
  type TuningStore,
  webStorageTuning,
} from "../lib/gpu/tuner.ts";
import { BatchNorm2d } from "../lib/nn/batchnorm.ts";
import { tuneBatchNormLayers } from "../lib/nn/batchnorm_tune.ts";

// Asked when a test runs: the browser bundle has a stand-in `Deno` while the test files load
// (test/browser/register.ts), removed before any test runs.
const inBrowser = () => !("Deno" in globalThis);

/** Web Storage's getItem/setItem over a Map; `full` makes setItem throw as a full quota does. */
class MapStorage {
  items = new Map<string, string>();
  full = false;
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    if (this.full) throw new DOMException("the quota has been exceeded", "QuotaExceededError");
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

async function tuneOneBatchNorm(cache: TuningStore | null, log: (l: string) => void = () => {}) {
  const gpu = await getGpu();
  const store = new ParamStore(gpu);
  const bn = new BatchNorm2d(store, "bn", 4, { relu: true, variant: "serial" });
  store.finalize();
  const r = await tuneBatchNormLayers(gpu, [bn], [24, 4, 10, 10], {
    mode: "hardware",
    cache,
    repeats: 1,
    log,
  });
  return { gpu, ...r };
}

Deno.test("tuning store: Deno keeps choices in a file, a browser in localStorage", () => {
  const store = defaultTuningStore();
  if (inBrowser()) {
    assertEquals(store?.where, `localStorage["${TUNING_STORAGE_KEY}"]`);
  } else if (store) {
    assert(store.where.endsWith("/webgpu-mda/tuning.json"), store.where);
  }
});

Deno.test("tuning store: a choice timed once is found again in Web Storage", async () => {
  // In the browser the page's own localStorage (cleared first); in Deno a stand-in.
  const storage = inBrowser() ? globalThis.localStorage : new MapStorage();
  storage.removeItem(TUNING_STORAGE_KEY);
  const cache = inBrowser() ? defaultTuningStore()! : webStorageTuning(storage);
  try {
    const first = await tuneOneBatchNorm(cache);
    assertEquals(first.results.map((r) => r.source), ["timed"]);
    const stored = JSON.parse(storage.getItem(TUNING_STORAGE_KEY)!);
    const { key, ms } = first.results[0];
    assertEquals(stored, {
      format: TUNING_FORMAT,
      adapters: { [adapterKey(first.gpu)]: { [key]: { choice: first.choices.bn, ms } } },
    });
    const again = await tuneOneBatchNorm(cache);
    assertEquals(again.results.map((r) => [r.source, r.choice]), [["cache", first.choices.bn]]);
    assertEquals(again.choices, first.choices);
  } finally {
    storage.removeItem(TUNING_STORAGE_KEY);
  }
});

Deno.test("tuning store: unreadable stored text is named and replaced; a full storage only logs", async () => {
  const storage = new MapStorage();
  storage.items.set(TUNING_STORAGE_KEY, "{not json");
  const lines: string[] = [];
  const r = await tuneOneBatchNorm(webStorageTuning(storage), (l) => lines.push(l));
  assertEquals(r.results[0].source, "timed");
  assert(
    lines.includes(
      `tuner: ignoring localStorage["${TUNING_STORAGE_KEY}"]: not a ${TUNING_FORMAT} file (it will be rewritten)`,
    ),
    lines.join("\n"),
  );
  assertEquals(JSON.parse(storage.items.get(TUNING_STORAGE_KEY)!).format, TUNING_FORMAT);

  const full = new MapStorage();
  full.full = true;
  lines.length = 0;
  const still = await tuneOneBatchNorm(webStorageTuning(full), (l) => lines.push(l));
  assertEquals(still.results[0].source, "timed");
  assert(
    lines.some((l) =>
      l.startsWith(`tuner: could not write localStorage["${TUNING_STORAGE_KEY}"]: the quota`)
    ),
    lines.join("\n"),
  );
});
