// The real Fashion-MNIST from Debian's package dataset-fashion-mnist, when it is installed (skipped
// otherwise): counts, the official checksums, class balance, and one test batch through the GPU gather.

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { DeviceSplit } from "../lib/data/device.ts";
import {
  FASHION_CLASS_COUNT,
  FASHION_FILES,
  FASHION_SHA256,
  FASHION_SYSTEM_DIR,
  loadFashionMnist,
} from "../lib/data/fashion.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readF32, readU32 } from "../lib/gpu/tensor.ts";
import { referenceBatch } from "./reference/data.ts";
import { assertClose } from "./util.ts";

function installed(): boolean {
  try {
    return Deno.statSync(FASHION_SYSTEM_DIR).isDirectory;
  } catch {
    return false;
  }
}

const ignore = !installed();

Deno.test({
  name: "real data: counts, official checksums, 6000 per class train and 1000 test",
  ignore,
  fn: async () => {
    const data = await loadFashionMnist({ dataDir: FASHION_SYSTEM_DIR, download: false, log: () => {} });
    assertEquals(data.verified, true);
    assertEquals(data.files.map((f) => f.name), [...FASHION_FILES]);
    for (const f of data.files) assertEquals(f.sha256, FASHION_SHA256[f.name as keyof typeof FASHION_SHA256]);
    assertEquals([data.train.count, data.test.count], [60000, 10000]);
    assertEquals([data.train.images.length, data.test.images.length], [60000 * 784, 10000 * 784]);
    for (const [split, perClass] of [[data.train, 6000], [data.test, 1000]] as const) {
      const counts = new Array(FASHION_CLASS_COUNT).fill(0);
      for (const l of split.labels) counts[l]++;
      assertEquals(counts, new Array(FASHION_CLASS_COUNT).fill(perClass));
    }
  },
});

Deno.test({
  name: "real data: the first test batch of 1024 on the GPU equals the files' pixels / 255",
  ignore,
  fn: async () => {
    const data = await loadFashionMnist({ dataDir: FASHION_SYSTEM_DIR, download: false, log: () => {} });
    const gpu = await getGpu();
    const test = new DeviceSplit(gpu, data.test);
    const rec = new Recorder(gpu);
    const { x, labels } = test.gather(rec, 0, 1024);
    await rec.finish();
    rec.destroy();
    const identity = Uint32Array.from({ length: data.test.count }, (_, i) => i);
    const ref = referenceBatch(data.test.images, data.test.labels, 28, 28, identity, 0, 1024);
    assertClose(await readF32(gpu, x), ref.x, { rtol: 1e-6, atol: 1e-7, what: "test batch 0" });
    assertEquals(Array.from(await readU32(gpu, labels)), ref.labels);
    test.destroy();
  },
});
