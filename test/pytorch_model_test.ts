// Our trained model against the notebook's PyTorch model: a checkpoint of a real Model (after a few
// training steps, so BatchNorm's running statistics and num_batches_tracked are non-trivial) loads with
// strict load_state_dict, and PyTorch's eval-mode forward on the same images gives our embeddings and
// logits. Ignored where no Python with PyTorch is found (Debian's python3-torch, or DNLL_PYTHON).

import { fileURLToPath } from "node:url";
import { equal, match, ok } from "node:assert/strict";
import { randomSplit } from "../lib/data/device.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { readF32, Workspace } from "../lib/gpu/tensor.ts";
import { loadSafetensors, saveSafetensors } from "../lib/io/safetensors.ts";
import { STATS_PER_STEP } from "../lib/mda/head.ts";
import { Model, notebookModelConfig } from "../lib/model.ts";
import { saveModel } from "../lib/train/checkpoint.ts";
import { Rng } from "../lib/rng.ts";
import { assertClose, tempDir } from "./util.ts";
import { findTorchPython } from "../tools/pytorch/python.ts";

const PYTHON = findTorchPython();

Deno.test({
  name: "pytorch: a trained Model's checkpoint loads strictly and PyTorch's forward matches ours",
  ignore: PYTHON === undefined,
  async fn() {
    const gpu = await getGpu();
    const widths = [8, 8, 16, 16, 16, 16];
    const n = 12;
    const split = randomSplit(gpu, n, new Rng(21), (i) => i % 10);
    const model = new Model(gpu, notebookModelConfig(widths, 3));
    const ws = new Workspace(gpu, "t");
    const stats = ws.tensor("stats", [3 * STATS_PER_STEP]);
    const rec = new Recorder(gpu);
    for (let s = 0; s < 3; s++) {
      const { x, labels: y } = split.gather(rec, 0, n);
      model.trainStep(rec, x, y, stats, s);
    }
    const { x } = split.gather(rec, 0, n);
    const xHost = await (async () => {
      await rec.finish();
      return await readF32(gpu, x);
    })();
    const z = model.embed(rec, x);
    const logits = model.head.logits(rec, z);
    await rec.finish();
    const ours = { z: await readF32(gpu, z), logits: await readF32(gpu, logits) };

    const dir = await tempDir("mda-pytorch-model-test-");
    await saveModel(`${dir}/model.safetensors`, model);
    await saveSafetensors(`${dir}/x.safetensors`, [{
      name: "x",
      dtype: "F32",
      shape: [n, 1, 28, 28],
      data: xHost,
    }]);
    const script = fileURLToPath(new URL("../tools/pytorch/load_check.py", import.meta.url));
    const out = await new Deno.Command(PYTHON!, {
      args: [
        script,
        `${dir}/model.safetensors`,
        "--widths",
        widths.join(","),
        "--latent-dim",
        "2",
        "--components",
        "2",
        "--input",
        `${dir}/x.safetensors`,
        "--output",
        `${dir}/out.safetensors`,
        "--mode",
        "eval",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout), stderr = new TextDecoder().decode(out.stderr);
    equal(out.code, 0, stderr);
    match(stdout, /ok/);
    const theirs = new Map((await loadSafetensors(`${dir}/out.safetensors`)).tensors.map((t) => [t.name, t]));
    assertClose(ours.z, theirs.get("z")!.data as Float32Array, {
      rtol: 1e-4,
      atol: 1e-5,
      what: "z vs PyTorch",
    });
    assertClose(ours.logits, theirs.get("logits")!.data as Float32Array, {
      rtol: 1e-4,
      atol: 1e-4,
      what: "logits vs PyTorch",
    });
  },
});

Deno.test({
  name: "pytorch: one training step's loss, every gradient and the running statistics match PyTorch's",
  ignore: PYTHON === undefined,
  async fn() {
    const gpu = await getGpu();
    const widths = [8, 8, 16, 16, 16, 16];
    const n = 16;
    const labelOf = (i: number) => (i * 7) % 10;
    const split = randomSplit(gpu, n, new Rng(33), labelOf);
    const model = new Model(gpu, notebookModelConfig(widths, 4));
    const dir = await tempDir("mda-pytorch-model-test-");
    await saveModel(`${dir}/model.safetensors`, model);
    const ws = new Workspace(gpu, "t");
    const stats = ws.tensor("stats", [STATS_PER_STEP]);
    const rec = new Recorder(gpu);
    const { x, labels: y } = split.gather(rec, 0, n);
    await rec.finish();
    const xHost = await readF32(gpu, x);
    model.trainStep(rec, x, y, stats, 0);
    await rec.finish();
    const loss = (await readF32(gpu, stats))[0];
    await saveSafetensors(`${dir}/xy.safetensors`, [
      { name: "x", dtype: "F32", shape: [n, 1, 28, 28], data: xHost },
      {
        name: "y",
        dtype: "I64",
        shape: [n],
        data: BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 7) % 10)),
      },
    ]);
    const script = fileURLToPath(new URL("../tools/pytorch/load_check.py", import.meta.url));
    const out = await new Deno.Command(PYTHON!, {
      args: [
        script,
        `${dir}/model.safetensors`,
        "--widths",
        widths.join(","),
        "--input",
        `${dir}/xy.safetensors`,
        "--output",
        `${dir}/grads.safetensors`,
        "--grads",
        "0.1",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const theirs = new Map(
      (await loadSafetensors(`${dir}/grads.safetensors`)).tensors.map((t) => [t.name, t]),
    );
    assertClose([loss], theirs.get("loss")!.data as Float32Array, { rtol: 1e-5, what: "loss vs PyTorch" });
    let compared = 0;
    let weightScale = 0;
    for (const e of model.store.entries) {
      if (e.kind === "param") {
        const ours = await readF32(gpu, model.store.grad(e.view));
        const want = theirs.get(`grad.${e.name}`)!.data as Float32Array;
        const scale = Math.max(...Array.from(want, Math.abs));
        const convBias = /^encoder\.features\.(0|3|7|10|14|17)\.bias$/.test(e.name);
        if (convBias) {
          // A convolution's bias feeds a train-mode BatchNorm, which subtracts it again: its exact
          // gradient is 0, and both frameworks return rounding noise. Check ours is noise too.
          for (const g of ours) ok(Math.abs(g) <= 1e-4 * weightScale, `${e.name} gradient ${g} is not ~0`);
        } else {
          // f32 sums over the batch and the image: the absolute tolerance follows the tensor's scale.
          assertClose(ours, want, { rtol: 1e-3, atol: 1e-4 * scale, what: `grad of ${e.name} vs PyTorch` });
        }
        if (e.name.endsWith(".weight")) weightScale = scale;
        compared++;
      } else if (e.kind === "state") {
        assertClose(await readF32(gpu, e.tensor), theirs.get(`state.${e.name}`)!.data as Float32Array, {
          rtol: 1e-4,
          atol: 1e-6,
          what: `${e.name} vs PyTorch`,
        });
        compared++;
      }
    }
    equal(compared, 6 * 2 + 6 * 4 + 2 + 4);
  },
});
