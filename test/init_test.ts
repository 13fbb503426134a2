// The whole notebook model's initial state against PyTorch's defaults, tensor by tensor (dnll.md section 2):
// Conv2d/Linear weights and biases uniform on (-b, b) with b = 1/sqrt(fan_in), BatchNorm weight 1, bias 0,
// running mean 0, running var 1, num_batches_tracked 0; the MDA head's mu normal with std 6/sqrt(2D), its
// other parameters zero. The statistical bounds are 5 standard errors, so a wrong bound, a wrong fan-in or a
// skewed draw fails while a correct draw passes with any seed.

import { equal, ok } from "node:assert/strict";
import { getGpu } from "../lib/gpu/device.ts";
import { Model, notebookModelConfig } from "../lib/model.ts";

Deno.test("init: every tensor of the quick notebook model has PyTorch's default distribution", async () => {
  const gpu = await getGpu();
  const model = new Model(gpu, notebookModelConfig([16, 16, 32, 32, 64, 64], 7));
  const tensors = await model.store.toHost();
  const fanIn = new Map<string, number>();
  for (const t of tensors) {
    if (t.name.endsWith(".weight") && t.shape.length > 1) {
      fanIn.set(t.name.replace(/\.weight$/, ""), t.shape.slice(1).reduce((a, b) => a * b, 1));
    }
  }
  let checked = 0;
  for (const t of tensors) {
    const prefix = t.name.replace(/\.[a-z_]+$/, "");
    const v = Array.from(t.data as Float32Array, Number);
    const n = v.length;
    const mean = v.reduce((a, b) => a + b, 0) / n;
    const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
    if (t.name === "head.mu") {
      const sigma = 6 / Math.sqrt(2 * 2);
      ok(Math.abs(mean) < 5 * sigma / Math.sqrt(n), `${t.name}: mean ${mean}`);
      ok(Math.abs(std / sigma - 1) < 5 * Math.SQRT1_2 / Math.sqrt(n), `${t.name}: std ${std}`);
    } else if (fanIn.has(prefix)) {
      const b = 1 / Math.sqrt(fanIn.get(prefix)!);
      ok(v.every((x) => Math.abs(x) < b), `${t.name}: every value inside (-${b}, ${b})`);
      ok(Math.abs(mean) < 5 * (b / Math.sqrt(3)) / Math.sqrt(n), `${t.name}: mean ${mean} (bound ${b})`);
      ok(
        Math.abs(std / (b / Math.sqrt(3)) - 1) < 5 * 0.45 / Math.sqrt(n),
        `${t.name}: std ${std} (bound ${b})`,
      );
    } else if (t.dtype === "I64") {
      equal(t.name.endsWith("num_batches_tracked"), true, t.name);
      ok(Array.from(t.data as BigInt64Array).every((x) => x === 0n), t.name);
    } else {
      const expected = /\.(weight|running_var)$/.test(t.name) ? 1 : 0;
      ok(v.every((x) => x === expected), `${t.name}: every value ${expected}`);
    }
    checked++;
  }
  equal(checked, tensors.length);
  equal(fanIn.size, 7); // six convolutions and the projection
});
