// A few dozen synthetic Fashion-MNIST-shaped images in IDX files, for end-to-end runs that must stay fast.

import { encodeIdx } from "../lib/data/idx.ts";
import { Rng } from "../lib/rng.ts";

/** Images whose brightness pattern depends on the class, so a tiny model can learn something. */
export async function writeTinyDataset(dir: string, trainCount = 40, testCount = 24): Promise<void> {
  const rng = new Rng(3);
  const make = (count: number) => {
    const labels = new Uint8Array(count);
    const images = new Uint8Array(count * 784);
    for (let i = 0; i < count; i++) {
      const y = i % 10;
      labels[i] = y;
      for (let p = 0; p < 784; p++) {
        const row = Math.floor(p / 28);
        images[i * 784 + p] = Math.min(255, (Math.abs(row - y * 2.5) < 3 ? 200 : 20) + rng.int(40));
      }
    }
    return { images, labels };
  };
  await Deno.mkdir(dir, { recursive: true });
  for (const [prefix, count] of [["train", trainCount], ["t10k", testCount]] as const) {
    const { images, labels } = make(count);
    await Deno.writeFile(
      `${dir}/${prefix}-images-idx3-ubyte`,
      encodeIdx({ kind: "images", count, rows: 28, cols: 28, data: images }),
    );
    await Deno.writeFile(
      `${dir}/${prefix}-labels-idx1-ubyte`,
      encodeIdx({ kind: "labels", count, data: labels }),
    );
  }
}
