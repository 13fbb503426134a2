// Our safetensors checkpoints against the notebook's PyTorch model (tools/pytorch/): strict
// load_state_dict accepts them, PyTorch reads the same values, and its MDA head computes the logits of
// dnll.md section 3 from our tensors. Ignored where no Python with PyTorch is found (set DNLL_PYTHON to
// choose the interpreter; Debian's python3-torch installs into /usr/bin/python3).

import { fileURLToPath } from "node:url";
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { HostTensor } from "../lib/gpu/params.ts";
import { decodeSafetensors, encodeSafetensors, saveSafetensors } from "../lib/io/safetensors.ts";
import { Rng } from "../lib/rng.ts";
import { assertClose, randn, randu } from "./util.ts";
import { findTorchPython } from "../tools/pytorch/python.ts";

const TOOLS = fileURLToPath(new URL("../tools/pytorch/", import.meta.url));
const NARROW = [16, 16, 32, 32, 64, 64];
const NOTEBOOK = [64, 64, 128, 128, 256, 256];

const PYTHON = findTorchPython();

async function python(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(PYTHON!, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** The DeepMDA state_dict of dnll.md section 2, in PyTorch's module order, with random values. */
function notebookState(rng: Rng, widths: number[], latentDim: number, classes: number, components: number) {
  const tensors: HostTensor[] = [];
  const f32 = (name: string, shape: number[], data: Float32Array) =>
    tensors.push({ name, dtype: "F32", shape, data });
  let channels = 1;
  let index = 0;
  for (let block = 0; block < 3; block++) {
    for (let j = 0; j < 2; j++) {
      const out = widths[block * 2 + j];
      const bound = 1 / Math.sqrt(channels * 9);
      f32(
        `encoder.features.${index}.weight`,
        [out, channels, 3, 3],
        randu(rng, out * channels * 9, -bound, bound),
      );
      f32(`encoder.features.${index}.bias`, [out], randu(rng, out, -bound, bound));
      const bn = `encoder.features.${index + 1}`;
      f32(`${bn}.weight`, [out], randu(rng, out, 0.5, 1.5));
      f32(`${bn}.bias`, [out], randn(rng, out, 0.1));
      f32(`${bn}.running_mean`, [out], randn(rng, out, 0.1));
      f32(`${bn}.running_var`, [out], randu(rng, out, 0.5, 2));
      tensors.push({
        name: `${bn}.num_batches_tracked`,
        dtype: "I64",
        shape: [],
        data: BigInt64Array.of(235n),
      });
      channels = out;
      index += 3;
    }
    index++; // the max-pool, or the global average pool after the last block
  }
  const bound = 1 / Math.sqrt(channels);
  f32("encoder.proj.weight", [latentDim, channels], randu(rng, latentDim * channels, -bound, bound));
  f32("encoder.proj.bias", [latentDim], randu(rng, latentDim, -bound, bound));
  f32(
    "head.mu",
    [classes, components, latentDim],
    randn(rng, classes * components * latentDim, 6 / Math.sqrt(2 * latentDim)),
  );
  f32("head.prior_logits", [classes], randn(rng, classes, 0.3));
  f32("head.mixture_logits", [classes, components], randn(rng, classes * components, 0.3));
  f32("head.log_cov", [classes, components], randn(rng, classes * components, 0.3));
  return tensors;
}

/** dnll.md section 3 in float64: delta[n,c] from z [N,D] and the head tensors. */
function mdaLogits(
  z: Float32Array,
  n: number,
  byName: Map<string, HostTensor>,
  C: number,
  K: number,
  D: number,
) {
  const get = (name: string) => byName.get(name)!.data as Float32Array;
  const mu = get("head.mu"), prior = get("head.prior_logits"), mix = get("head.mixture_logits");
  const s = get("head.log_cov");
  const logSoftmax = (v: number[]) => {
    const m = Math.max(...v);
    const lse = m + Math.log(v.reduce((acc, x) => acc + Math.exp(x - m), 0));
    return v.map((x) => x - lse);
  };
  const logPrior = logSoftmax(Array.from(prior));
  const out = new Float64Array(n * C);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < C; c++) {
      const logW = logSoftmax(Array.from(mix.subarray(c * K, c * K + K)));
      const a = logW.map((lw, k) => {
        let m2 = 0;
        for (let d = 0; d < D; d++) m2 += (z[i * D + d] - mu[(c * K + k) * D + d]) ** 2;
        const sk = s[c * K + k];
        return lw - 0.5 * (m2 / Math.exp(sk) + D * sk);
      });
      const m = Math.max(...a);
      out[i * C + c] = logPrior[c] + m + Math.log(a.reduce((acc, x) => acc + Math.exp(x - m), 0));
    }
  }
  return out;
}

const ignore = PYTHON === undefined;

Deno.test({
  name: "pytorch: the reference head and losses match dnll.md's float64 test vector",
  ignore,
  async fn() {
    const r = await python([`${TOOLS}notebook_model.py`]);
    assertEquals(r.stdout.trim(), "test vector ok", r.stderr);
  },
});

Deno.test({
  name: "pytorch: the notebook model loads our full-width checkpoint with strict load_state_dict",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "interop_" });
    try {
      const path = `${dir}/model.safetensors`;
      await saveSafetensors(path, notebookState(new Rng(1), NOTEBOOK, 2, 10, 2), { epoch: "1" });
      const r = await python([`${TOOLS}load_check.py`, path]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(r.stdout.trim(), "ok 48 tensors");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "pytorch: narrow checkpoint loads, values agree, and the head's logits match dnll.md section 3",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "interop_" });
    try {
      const rng = new Rng(2);
      const [C, K, D, N] = [10, 3, 4, 3];
      const tensors = notebookState(rng, NARROW, D, C, K);
      const path = `${dir}/narrow.safetensors`;
      await saveSafetensors(path, tensors);
      await saveSafetensors(`${dir}/x.safetensors`, [
        { name: "x", dtype: "F32", shape: [N, 1, 28, 28], data: randu(rng, N * 784, 0, 1) },
      ]);
      const r = await python([
        `${TOOLS}load_check.py`,
        path,
        "--widths",
        NARROW.join(","),
        "--latent-dim",
        `${D}`,
        "--components",
        `${K}`,
        "--sums",
        "--input",
        `${dir}/x.safetensors`,
        "--output",
        `${dir}/out.safetensors`,
      ]);
      assertEquals(r.code, 0, r.stderr);
      const [status, sumsLine] = r.stdout.trim().split("\n");
      assertEquals(status, `ok ${tensors.length} tensors`);
      const sums = JSON.parse(sumsLine) as Record<string, number>;
      assertEquals(Object.keys(sums).sort(), tensors.map((t) => t.name).sort());
      for (const t of tensors) {
        let sum = 0;
        for (const v of t.data) sum += Number(v);
        assertClose([sums[t.name]], [sum], { rtol: 1e-12, atol: 1e-12, what: t.name });
      }

      const out = decodeSafetensors(await Deno.readFile(`${dir}/out.safetensors`), "out.safetensors");
      assertEquals(out.tensors.map((t) => [t.name, t.shape]), [["z", [N, D]], ["logits", [N, C]]]);
      const z = out.tensors[0].data as Float32Array;
      assert(z.every(Number.isFinite), "finite latents");
      const expected = mdaLogits(z, N, new Map(tensors.map((t) => [t.name, t])), C, K, D);
      assertClose(out.tensors[1].data as Float32Array, expected, { rtol: 1e-5, atol: 1e-5, what: "logits" });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "pytorch: the check fails on a missing tensor, a wrong shape and an F32 num_batches_tracked",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "interop_" });
    try {
      const tensors = notebookState(new Rng(3), NARROW, 2, 10, 2);
      const narrowArgs = ["--widths", NARROW.join(",")];
      const cases: [string, HostTensor[], string[], RegExp][] = [
        [
          "missing",
          tensors.filter((t) => t.name !== "head.log_cov"),
          narrowArgs,
          /Missing key.*head\.log_cov/s,
        ],
        ["widths", tensors, [], /size mismatch for encoder\.features\.0\.weight/],
        [
          "counter",
          tensors.map((t) =>
            t.name === "encoder.features.4.num_batches_tracked"
              ? { ...t, dtype: "F32" as const, data: Float32Array.of(235) }
              : t
          ),
          narrowArgs,
          /tensor encoder\.features\.4\.num_batches_tracked: dtype F32, the model has I64/,
        ],
      ];
      for (const [label, list, args, pattern] of cases) {
        const path = `${dir}/${label}.safetensors`;
        await Deno.writeFile(path, encodeSafetensors(list));
        const r = await python([`${TOOLS}load_check.py`, path, ...args]);
        assert(r.code !== 0, `${label}: the check passed`);
        assert(pattern.test(r.stderr), `${label}: stderr does not match ${pattern}:\n${r.stderr}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
