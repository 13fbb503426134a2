// Writes what a seed draws in our engine (the model's initial weights and every epoch's shuffled
// order) so that PyTorch can train from exactly those draws:
//   deno run -A tools/export_draws.ts OUT_DIR SEED [EPOCHS] [WIDTHS]
// writes OUT_DIR/init.safetensors (PyTorch names) and OUT_DIR/order.safetensors ("order", I64
// [EPOCHS, 60000]). tools/pytorch/train_notebook.py --init/--order then trains on them, which lets a
// seed study compare our PRNG's draws against PyTorch's own without the engine in the loop (the engine
// itself is checked step by step against PyTorch in test/pytorch_model_test.ts).

import { epochOrder } from "../lib/data/batches.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { saveSafetensors } from "../lib/io/safetensors.ts";
import { Model, notebookModelConfig } from "../lib/model.ts";
import { Rng } from "../lib/rng.ts";
import { saveModel } from "../lib/train/checkpoint.ts";

const [out, seedArg, epochsArg, widthsArg] = Deno.args;
if (!out || seedArg === undefined) {
  console.error(
    "usage: deno run -A tools/export_draws.ts OUT_DIR SEED [EPOCHS=2] [WIDTHS=16,16,32,32,64,64]",
  );
  Deno.exit(2);
}
const seed = Number(seedArg), epochs = Number(epochsArg ?? 2);
const widths = (widthsArg ?? "16,16,32,32,64,64").split(",").map(Number);
await Deno.mkdir(out, { recursive: true });
const gpu = await getGpu();
const model = new Model(gpu, notebookModelConfig(widths, seed));
await saveModel(`${out}/init.safetensors`, model);
// The same stream the Trainer uses: Rng(seed).fork(10), one permutation per epoch.
const orderRng = new Rng(seed).fork(10);
const order = new BigInt64Array(epochs * 60000);
for (let e = 0; e < epochs; e++) {
  epochOrder(orderRng, 60000).forEach((v, i) => order[e * 60000 + i] = BigInt(v));
}
await saveSafetensors(`${out}/order.safetensors`, [{
  name: "order",
  dtype: "I64",
  shape: [epochs, 60000],
  data: order,
}]);
