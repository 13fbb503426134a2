// Every WGSL shader of lib/ compiles clean on the adapter in use: no error and no warning from
// getCompilationInfo(), and every pipeline builds without a validation error. The shaders are built the
// way the code builds them (conv tiles substituted, override constants set), by driving every layer and
// head once, plus the conv tile set this adapter does not pick by default. Run it on each WebGPU
// implementation (wgpu's naga, Dawn's Tint): a shader that one compiler lets through and another rejects
// is a bug for the users of the other.

import { deepStrictEqual, equal } from "node:assert/strict";
import { DeviceSplit } from "../lib/data/device.ts";
import { accuracyMode, withAccuracy } from "../lib/gpu/accuracy.ts";
import { getGpu } from "../lib/gpu/device.ts";
import {
  builtPipelines,
  loadedWgslFiles,
  loadWgsl,
  pipeline,
  type PipelineSpec,
} from "../lib/gpu/pipelines.ts";
import { Recorder } from "../lib/gpu/recorder.ts";
import { Workspace } from "../lib/gpu/tensor.ts";
import { STATS_PER_STEP, trueClassResponsibilities } from "../lib/mda/head.ts";
import { Model, type ModelConfig } from "../lib/model.ts";
import {
  Conv2d,
  type ConvKernel,
  type ConvKernels,
  gpuKernels,
  softwareKernels,
  type StagedTile,
  swiftShaderKernels,
  type WgradKernel,
} from "../lib/nn/conv2d/conv2d.ts";
import { ParamStore } from "../lib/gpu/params.ts";
import { MaxPool2d } from "../lib/nn/maxpool.ts";
import { ReLU } from "../lib/nn/relu.ts";
import { Rng } from "../lib/rng.ts";
import { REDUCTION_VARIANTS } from "../lib/gpu/reduction.ts";

const SHADER_DIR = new URL("../lib/", import.meta.url);
const tapslice = (stages: number): ConvKernel => ({
  family: "igemm_tapslice",
  tile: { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8, stages },
});
const winograd = (stages: number): ConvKernel => ({
  family: "winograd_f2x2",
  tile: { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8, stages },
});
const SPLITK_SCALAR_STAGED: WgradKernel = {
  family: "wgrad_splitk",
  tile: { bm: 32, bn: 64, bk: 16, tm: 2, tn: 4, stages: 2, groups: 1024 },
};
const SPLITK_VEC4_STAGED: WgradKernel = {
  family: "wgrad_splitk",
  tile: { bm: 64, bn: 64, bk: 8, tm: 8, tn: 8, stages: 2, groups: 1024 },
};

/** Every .wgsl file under lib/, as URLs. */
function wgslFiles(dir: URL): URL[] {
  const out: URL[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const url = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    if (e.isDirectory) out.push(...wgslFiles(url));
    else if (e.name.endsWith(".wgsl")) out.push(url);
  }
  return out.sort((a, b) => a.href.localeCompare(b.href));
}

/** Entry point names of a WGSL source (functions marked @compute). */
function entryPoints(code: string): string[] {
  return [...code.matchAll(/@compute[^;{]*?fn\s+(\w+)/g)].map((m) => m[1]);
}

/**
 * Builds every pipeline the code builds: one train step, eval logits and responsibilities per head and
 * reduction variant.
 */
async function buildEverything(): Promise<void> {
  const gpu = await getGpu();
  const N = 4;
  const rng = new Rng(3);
  const images = new Uint8Array(N * 784).map(() => rng.int(256));
  const labels = Uint8Array.from({ length: N }, (_, i) => i % 3);
  const split = new DeviceSplit(gpu, { images, labels, count: N, rows: 28, cols: 28 });
  const base: ModelConfig = {
    widths: [4, 4, 8, 8, 8, 8],
    latentDim: 2,
    head: "mda",
    components: 2,
    loss: "em_dnll",
    lambda: 0.1,
    muInit: "independent",
    lr: 0.01,
    numClasses: 3,
    seed: 1,
  };
  const configs: Partial<ModelConfig>[] = [{}, { head: "lda", components: 1, loss: "dnll" }, {
    head: "softmax",
    components: 1,
    loss: "ce",
  }];
  const ws = new Workspace(gpu, "compile");
  const stats = ws.tensor("stats", [STATS_PER_STEP]);
  // Both reduction variants (lib/gpu/reduction.ts): the adapter picks one, the WGSL of both must be valid.
  for (const reductions of REDUCTION_VARIANTS) {
    for (const config of configs) {
      const model = new Model(gpu, { ...base, ...config }, { reductions });
      const rec = new Recorder(gpu);
      // With and without the augmentation crop (two gather paths).
      split.setOrder(Uint32Array.from({ length: N }, (_, i) => i), new Uint8Array(2 * N));
      const batch = split.gather(rec, 0, N);
      model.trainStep(rec, batch.x, batch.labels, stats, 0);
      split.setOrder(Uint32Array.from({ length: N }, (_, i) => i));
      const evalBatch = split.gather(rec, 0, N);
      const z = model.embed(rec, evalBatch.x);
      model.head.logits(rec, z);
      trueClassResponsibilities(rec, model.head, z, evalBatch.labels);
      await rec.finish();
      rec.destroy();
    }
  }
  // Every conv kernel family (llvmpipe's register blocks and strips, the GPUs' implicit GEMM, split-K and
  // first-layer kernels, and SwiftShader's register blocks at GPU sizes), forward and backward, recorded
  // but not run: the code picks one set per adapter (kernels.ts, defaultKernels), and another would be
  // slow to run here; the WGSL must be valid either way.
  const store = new ParamStore(gpu);
  const kernelSets: [number, Partial<ConvKernels>][] = [
    [3, softwareKernels(3)],
    [3, gpuKernels(3)],
    [1, gpuKernels(1)],
    // Four input channels: the implicit-GEMM forward reads its weights as vec4s.
    [4, gpuKernels(4)],
    // The tap-slice implicit GEMM, one of the tuner's candidates (never a default), with one and two
    // tile sets, and split-K tiles with two: one whose register block is not made of 4 x 4 pieces
    // (scalar tile reads), one that is (vec4 reads).
    [4, { forward: tapslice(1), inputGrad: tapslice(2), weightGrad: SPLITK_SCALAR_STAGED }],
    [4, { forward: tapslice(2), inputGrad: tapslice(1), weightGrad: SPLITK_VEC4_STAGED }],
    // Winograd F(2x2, 3x3) (forward, input and weight gradients), one and two tile sets.
    [4, {
      forward: winograd(1),
      inputGrad: winograd(2),
      weightGrad: {
        family: "wgrad_winograd_f2x2",
        tile: { ...winograd(2).tile as StagedTile, groups: 1024 },
      },
    }],
    [3, swiftShaderKernels(3)],
  ];
  const layers = kernelSets.map(([inChannels, kernels], i) =>
    new Conv2d(store, `kernels${i}`, inChannels, 5, new Rng(2), kernels)
  );
  store.finalize();
  const inputs = new Map([1, 3, 4].map((c) => [c, ws.tensor(`x${c}`, [2, c, 6, 6])]));
  const x = inputs.get(3)!;
  const unsubmitted = new Recorder(gpu);
  for (const conv of layers) {
    const input = inputs.get(conv.inChannels)!;
    conv.backward(unsubmitted, conv.forward(unsubmitted, input, true), true);
  }
  unsubmitted.destroy();
  const rec = new Recorder(gpu);
  // The stand-alone ReLU layer (the encoder fuses its ReLUs into BatchNorm).
  const relu = new ReLU("relu");
  relu.backward(rec, relu.forward(rec, x, true), true);
  // Max pooling's width variants: the encoder's widths are even; an odd width takes the scalar path.
  for (const width of [5, 6, 8]) {
    const pool = new MaxPool2d(`pool${width}`);
    pool.backward(rec, pool.forward(rec, ws.tensor(`p${width}`, [1, 2, 4, width]), true), true);
  }
  await rec.finish();
  rec.destroy();
  // Not used by a layer: the recorder's smoke-test kernel (test/gpu_test.ts).
  pipeline(gpu, { code: loadWgsl(import.meta.url, "../lib/shaders/smoke.wgsl"), entryPoint: "main" });
  ws.destroy();
}

Deno.test("shaders: every WGSL module of lib/ compiles without errors or warnings on this adapter", async () => {
  const gpu = await getGpu();
  gpu.device.pushErrorScope("validation");
  await buildEverything();
  const driveError = await gpu.device.popErrorScope();
  equal(driveError, null, `a validation error while building: ${driveError?.message}`);

  // Every file under lib/ was loaded, and each of its entry points was built at least once.
  const files = wgslFiles(SHADER_DIR);
  const loaded = new Set(loadedWgslFiles());
  deepStrictEqual(files.filter((f) => !loaded.has(f.href)).map((f) => f.pathname), [], "files never loaded");
  const built = builtPipelines(gpu);
  const missing: string[] = [];
  for (const file of files) {
    const text = Deno.readTextFileSync(file);
    // A specialised source keeps the file's header comment: match the pipelines to their file by it.
    const header = text.slice(0, 300);
    for (const entry of entryPoints(text)) {
      if (!built.some((s) => s.entryPoint === entry && s.code.startsWith(header))) {
        missing.push(`${file.pathname.split("/lib/")[1]}: ${entry}`);
      }
    }
  }
  deepStrictEqual(missing, [], "entry points never built");

  // Compile each distinct module afresh and collect every error and warning.
  const problems: string[] = [];
  const byCode = new Map<string, PipelineSpec[]>();
  for (const s of built) byCode.set(s.code, [...(byCode.get(s.code) ?? []), s]);
  for (const [code, list] of byCode) {
    const name = fileOf(code, files);
    // As built: in the worst-accuracy test mode (lib/gpu/accuracy.ts), the rewritten source.
    const module = gpu.device.createShaderModule({ code: withAccuracy(code, accuracyMode()), label: name });
    const info = await module.getCompilationInfo();
    for (const m of info.messages) {
      if (m.type === "error" || m.type === "warning") {
        problems.push(`${name}:${m.lineNum}:${m.linePos} ${m.type}: ${m.message.trim()}`);
      }
    }
    for (const s of list) {
      gpu.device.pushErrorScope("validation");
      gpu.device.createComputePipeline({
        layout: "auto",
        compute: { module, entryPoint: s.entryPoint, constants: s.constants },
      });
      const err = await gpu.device.popErrorScope();
      if (err) problems.push(`${name} ${s.entryPoint} ${JSON.stringify(s.constants)}: ${err.message.trim()}`);
    }
  }
  deepStrictEqual(problems, [], `shader problems on ${gpu.report.description}`);
});

function fileOf(code: string, files: URL[]): string {
  for (const f of files) {
    if (code.startsWith(Deno.readTextFileSync(f).slice(0, 300))) return f.pathname.split("/lib/")[1];
  }
  return "(unknown source)";
}
