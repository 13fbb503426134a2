// Writes what a seed draws in our engine (the model's initial weights and every epoch's shuffled
// order) so that PyTorch can train from exactly those draws:
//   deno run -A tools/export_draws.ts OUT_DIR SEED [EPOCHS] [WIDTHS]
// writes OUT_DIR/init.safetensors (PyTorch names) and OUT_DIR/order.safetensors ("order", I64
// [EPOCHS, 60000]). tools/pytorch/train_notebook.py --init/--order then trains on them, which lets a
// seed study compare our PRNG's draws against PyTorch's own without the engine in the loop (the engine
// itself is checked step by step against PyTorch in test/pytorch_model_test.ts).

import { epochOrder } from "../lib/data/batches.ts";
import { getGpu, type Gpu } from "../lib/gpu/device.ts";
import { saveSafetensors } from "../lib/io/safetensors.ts";
import { Model, notebookModelConfig } from "../lib/model.ts";
import { saveModel } from "../lib/train/checkpoint.ts";
import { shuffleStream } from "../lib/train/trainer.ts";

const TRAIN_IMAGES = 60000;

/** Builds the seed's model and its first `epochs` shuffles (the Trainer's stream), and writes both to `dir`. */
export async function writeDraws(
  gpu: Gpu,
  dir: string,
  seed: number,
  epochs: number,
  widths: number[],
): Promise<{ model: Model; orders: Uint32Array[] }> {
  await Deno.mkdir(dir, { recursive: true });
  const model = new Model(gpu, notebookModelConfig(widths, seed));
  await saveModel(`${dir}/init.safetensors`, model);
  const stream = shuffleStream(seed);
  const orders = Array.from({ length: epochs }, () => epochOrder(stream, TRAIN_IMAGES));
  const data = new BigInt64Array(epochs * TRAIN_IMAGES);
  orders.forEach((o, e) => o.forEach((v, i) => data[e * TRAIN_IMAGES + i] = BigInt(v)));
  await saveSafetensors(`${dir}/order.safetensors`, [{
    name: "order",
    dtype: "I64",
    shape: [epochs, TRAIN_IMAGES],
    data,
  }]);
  return { model, orders };
}

if (import.meta.main) {
  const [out, seedArg, epochsArg, widthsArg] = Deno.args;
  const seed = Number(seedArg), epochs = Number(epochsArg ?? 2);
  const widths = (widthsArg ?? "16,16,32,32,64,64").split(",").map(Number);
  if (!out || !Number.isSafeInteger(seed) || seed < 0 || !Number.isInteger(epochs) || epochs < 1) {
    console.error(
      "usage: deno run -A tools/export_draws.ts OUT_DIR SEED [EPOCHS=2] [WIDTHS=16,16,32,32,64,64] " +
        "(SEED an integer >= 0, EPOCHS >= 1)",
    );
    Deno.exit(2);
  }
  await writeDraws(await getGpu(), out, seed, epochs, widths);
}
