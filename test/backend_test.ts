// The backend choice, what the adapter report records, and that lavapipe's XDG_RUNTIME_DIR complaint and a
// crash at exit do not reach the user.

import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { chooseBackend, type MachineProbe, probeMachine } from "../lib/gpu/backend.ts";
import {
  adapterFingerprint,
  type AdapterReport,
  bitsKey,
  describeAdapter,
  getGpu,
  type Gpu,
} from "../lib/gpu/device.ts";
import { adapterKey } from "../lib/gpu/tuner.ts";
import { formatSeedSpread, seedStudyStats } from "../experiments/seed_spread.ts";
import { assertClose } from "./util.ts";

const cpuOnly: MachineProbe = { os: "linux", mesaEgl: true, lavapipe: true };

Deno.test("backend: the user's DENO_WEBGPU_BACKEND wins; otherwise GL on a CPU machine, Vulkan with a GPU", () => {
  deepStrictEqual(chooseBackend({ ...cpuOnly, userBackend: "Vulkan" }), {
    backend: "vulkan",
    reason: "DENO_WEBGPU_BACKEND",
  });
  equal(chooseBackend(cpuOnly).backend, "gl");
  equal(chooseBackend({ ...cpuOnly, mesaEgl: false }).backend, "vulkan");
  equal(chooseBackend({ ...cpuOnly, hardwareGpu: "/dev/nvidia0" }).backend, "vulkan");
  equal(chooseBackend({ ...cpuOnly, hardwareGpu: "/dev/dri/renderD128" }).backend, "vulkan");
  equal(chooseBackend({ os: "linux", mesaEgl: false, lavapipe: false }).backend, "gl");
  equal(chooseBackend({ ...cpuOnly, os: "darwin" }).backend, "metal");
  for (const p of [cpuOnly, { ...cpuOnly, hardwareGpu: "/dev/nvidia0" }]) {
    ok(chooseBackend(p).reason.startsWith("automatic"), "an automatic choice says so");
  }
});

Deno.test("backend: the report names the backend that ran, the driver and, for a software adapter, the CPU", async () => {
  const { report } = await getGpu();
  ok(["gl", "vulkan", "metal", "dx12"].includes(report.backend), `backend "${report.backend}"`);
  const user = Deno.env.get("DENO_WEBGPU_BACKEND");
  if (user) equal(report.backend, user.toLowerCase());
  // Deno reads the variable once, when the first adapter is requested; we set it only for that call.
  equal(Deno.env.get("DENO_WEBGPU_BACKEND"), user);
  if (/llvmpipe|lavapipe/.test(report.description)) {
    match(report.driver, /^Mesa \d+\.\d+\.\d+/);
    ok(report.isSoftware || report.treatedAsGpu, "a software adapter, or one treated as a GPU");
    ok(report.cpu && report.cpu.length > 0, "software adapter: CPU model recorded");
  }
  const line = describeAdapter(report);
  ok(line.includes(report.description) && line.includes(report.driver), line);
  equal(
    bitsKey(report),
    `${report.backend} | ${report.description} | ${report.driver}` +
      (report.treatedAsGpu ? " | treated as a GPU" : ""),
  );
});

/** Runs a tiny script that creates the device and exits; returns its exit code and stderr. */
async function runScript(code: string, env: Record<string, string> = {}) {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/main.ts`;
  await Deno.writeTextFile(file, code);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-lock", file],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(dir, { recursive: true });
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

const device = new URL("../lib/gpu/device.ts", import.meta.url).href;

Deno.test("backend: a run prints no XDG_RUNTIME_DIR error on Vulkan, and exits cleanly with work in flight", async () => {
  // Vulkan only when lavapipe or a GPU driver is installed; GL otherwise (the check still covers exit).
  const machine = probeMachine();
  const hasVulkan = machine.lavapipe || machine.hardwareGpu !== undefined;
  const script = `import { getGpu, describeAdapter } from "${device}";
const gpu = await getGpu();
const b = gpu.device.createBuffer({ size: 1 << 20, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
gpu.device.queue.writeBuffer(b, 0, new Float32Array(1 << 18));
console.log(gpu.report.backend);`;
  for (const backend of hasVulkan ? ["vulkan", "gl"] : ["gl"]) {
    // An invalid XDG_RUNTIME_DIR is what makes lavapipe complain (a container, a cron job, CI).
    const env: Record<string, string> = { DENO_WEBGPU_BACKEND: backend, XDG_RUNTIME_DIR: "/nonexistent-xdg" };
    const r = await runScript(script, env);
    equal(r.code, 0, `exit code ${r.code} on ${backend}: ${r.stderr}`);
    equal(r.stdout.trim(), backend);
    ok(!/XDG_RUNTIME_DIR/.test(r.stderr), `stderr on ${backend}: ${r.stderr}`);
  }
});

Deno.test("backend: DNLL_TREAT_AS_GPU=1 takes a software adapter down the GPU path, and says so", async () => {
  const modules = {
    tuner: new URL("../lib/gpu/tuner.ts", import.meta.url).href,
    kernels: new URL("../lib/nn/conv2d/kernels.ts", import.meta.url).href,
    reduction: new URL("../lib/gpu/reduction.ts", import.meta.url).href,
  };
  const script = `import { bitsKey, describeAdapter, getGpu } from "${device}";
import { adapterKey, Tuner } from "${modules.tuner}";
import { kernelTarget } from "${modules.kernels}";
import { reductionVariant } from "${modules.reduction}";
const gpu = await getGpu();
console.log(JSON.stringify({
  report: gpu.report,
  line: describeAdapter(gpu.report),
  key: adapterKey(gpu),
  bits: bitsKey(gpu.report),
  target: kernelTarget(gpu.report),
  reduction: reductionVariant(gpu, undefined, "test"),
  tunes: new Tuner(gpu, { cache: null }).hardware,
}));`;
  const run = async (env: Record<string, string>) => {
    const r = await runScript(script, env);
    equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  };
  const plain = await run({ DNLL_TREAT_AS_GPU: "0" });
  const asGpu = await run({ DNLL_TREAT_AS_GPU: "1" });
  if (!plain.report.isSoftware) {
    // A GPU is a GPU either way.
    equal(asGpu.report.treatedAsGpu, undefined);
    return;
  }
  equal(plain.report.treatedAsGpu, undefined);
  deepStrictEqual([plain.target, plain.reduction, plain.tunes], ["llvmpipe", "serial", false]);
  equal(asGpu.report.isSoftware, false);
  equal(asGpu.report.treatedAsGpu, true);
  deepStrictEqual([asGpu.target, asGpu.reduction, asGpu.tunes], ["gpu", "tree", true]);
  ok(asGpu.report.cpu, "the CPU it runs on is still recorded");
  match(asGpu.line, /treated as a GPU \(DNLL_TREAT_AS_GPU=1\)/);
  // Its tunings are kept apart from the adapter's own entries (which software adapters never write anyway).
  equal(asGpu.key, `${plain.key} | treated as a GPU`);
  // Other kernels, other bits: test/bits_test.ts must not hold it to the adapter's stored bits.
  equal(asGpu.bits, `${plain.bits} | treated as a GPU`);
});

Deno.test("seed spread: the studies' runs of the quick configuration, one per seed, grouped by backend", async () => {
  const dir = await Deno.makeTempDir();
  const hyper = { epochs: 2, lr: 0.001, seed: 1 };
  const config = (h: Record<string, unknown>) => ({ experiment: "q", version: 3, init: null, hyper: h });
  const write = async (
    name: string,
    backend: string,
    seed: number,
    acc: number,
    lr = 0.001,
    epochs = 2,
    more: { trainLimit?: number; init?: string } = {},
  ) => {
    await Deno.mkdir(`${dir}/${name}`, { recursive: true });
    const hp: Record<string, { value: unknown }> = {
      epochs: { value: epochs },
      lr: { value: lr },
      seed: { value: seed },
    };
    if (more.trainLimit) hp.trainLimit = { value: more.trainLimit };
    await Deno.writeTextFile(
      `${dir}/${name}/manifest.json`,
      JSON.stringify({
        experiment_name: "q",
        experiment_version: 3,
        init: more.init ?? null,
        status: "finished",
        hyperparameters: hp,
        adapter: { backend },
      }),
    );
    await Deno.writeTextFile(
      `${dir}/${name}/metrics.json`,
      JSON.stringify({ final: { test_accuracy: acc } }),
    );
  };
  await write("seed_study/engine-1", "default", 1, 0.5); // this run's own seed: the same draw, left out
  await write("seed_study/engine-2", "gl", 2, 0.7);
  await write("seed_study/engine-3", "vulkan", 3, 0.6);
  await write("seed_study/engine-4", "gl", 4, 0.9, 0.01); // another learning rate: not this configuration
  await write("seed_study_10_epochs/engine-1", "gl", 1, 0.8, 0.001, 10); // 10 epochs: not this one either
  await write("seed_study_more/engine-5", "gl", 5, 0.3); // a second folder of this configuration
  await write("other/engine-6", "gl", 6, 0.1); // not a seed study's folder
  // Trained on a subset, or from a checkpoint: other configurations, though the flags set no pinned value.
  await write("seed_study/engine-9", "gl", 9, 0.2, 0.001, 2, { trainLimit: 500 });
  await write("seed_study/engine-10", "gl", 10, 0.2, 0.001, 2, { init: "/x/model.safetensors" });
  const results = new URL(`file://${dir}/`);
  const stats = await seedStudyStats(config(hyper), results);
  const tenEpochs = await seedStudyStats(config({ ...hyper, epochs: 10, seed: 2 }), results);
  // ... and a run on a subset is held to runs on the same subset only.
  const subset = await seedStudyStats(config({ ...hyper, trainLimit: 500 }), results);
  // The runs of `--seeds`: results/NAME_seeds/seed-N, and seed-N/ID for a comparison's runs.
  await write("q_seeds/seed-7", "gl", 7, 0.2);
  await write("seed_study_more/engine-2", "gl", 2, 0.7); // seed_study/engine-2's draw again: counted once
  await write("cmp_seeds/seed-8/a", "gl", 8, 0.8);
  await write("cmp_seeds/seed-8/b", "gl", 8, 0.9, 0.01); // the comparison's other run: another configuration
  await Deno.writeTextFile(`${dir}/cmp_seeds/seed-8/README.md`, "a seed's comparison page");
  const withSeeds = await seedStudyStats(config(hyper), results);
  // A run of --seeds is in a folder read here: its own result is not part of the spread it is shown beside.
  const withoutOwn = await seedStudyStats(config(hyper), results, `${dir}/q_seeds/seed-7/`);
  await Deno.remove(dir, { recursive: true });
  deepStrictEqual(stats, [
    { backend: "gl", n: 2, mean: 0.5, min: 0.3, max: 0.7, folders: ["seed_study", "seed_study_more"] },
    { backend: "vulkan", n: 1, mean: 0.6, min: 0.6, max: 0.6, folders: ["seed_study"] },
  ]);
  const all = ["cmp_seeds", "q_seeds", "seed_study", "seed_study_more"];
  equal(withSeeds[0].n, 4);
  assertClose([withSeeds[0].mean, withSeeds[0].min, withSeeds[0].max], [0.5, 0.2, 0.8], {
    rtol: 0,
    atol: 1e-15,
    what: "with the --seeds runs",
  });
  deepStrictEqual(withSeeds[0].folders, all);
  deepStrictEqual([withoutOwn[0].n, withoutOwn[0].min, withoutOwn[0].folders], [
    3,
    0.3,
    all.filter((f) => f !== "q_seeds"),
  ]);
  deepStrictEqual(tenEpochs, [
    { backend: "gl", n: 1, mean: 0.8, min: 0.8, max: 0.8, folders: ["seed_study_10_epochs"] },
  ]);
  deepStrictEqual(subset, [{ backend: "gl", n: 1, mean: 0.2, min: 0.2, max: 0.2, folders: ["seed_study"] }]);
  equal(
    formatSeedSpread(stats.slice(0, 1), "vulkan", 7, 0.55),
    "test accuracy across seeds (results/seed_study, results/seed_study_more): this run (seed 7, vulkan): " +
      "0.5500; 2 other seeds on gl: mean 0.500, range 0.300-0.700 (none on vulkan: its bits differ, its " +
      "spread is not measured)",
  );
  match(formatSeedSpread(stats.slice(1), "vulkan", 1, 0.5)!, /; 1 other seed on vulkan: mean 0\.600/);
  equal(formatSeedSpread([], "gl", 1, 0.5), undefined);
});

Deno.test("exit: a realm's end leaves the Mesa driver mapped (its exit handlers stay valid)", async () => {
  if (Deno.build.os !== "linux") return;
  // In a fresh process whose main realm never touches the GPU: a Worker (a realm with its own wgpu
  // instance, as every `deno test` file has) creates the device and is terminated; the driver files it had
  // mapped must still be mapped afterwards.
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(
    `${dir}/worker.ts`,
    `import { getGpu } from "${device}";\nawait getGpu();\n(self as unknown as Worker).postMessage("ready");`,
  );
  await Deno.writeTextFile(
    `${dir}/main.ts`,
    `const mesa = /\\/(dri\\/[a-z0-9_]+_dri\\.so|libvulkan_lvp\\.so)$/;
const mapped = () => Deno.readTextFileSync("/proc/self/maps").split("\\n").map((l) => l.split(/\\s+/)[5])
  .filter((p) => p && mesa.test(p));
const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
await new Promise((r) => (worker.onmessage = r));
const during = [...new Set(mapped())];
worker.terminate();
await new Promise((r) => setTimeout(r, 500));
const after = new Set(mapped());
console.log(JSON.stringify({ during, unmapped: during.filter((l) => !after.has(l)) }));`,
  );
  const machine = probeMachine();
  const backends = [...(machine.mesaEgl ? ["gl"] : []), ...(machine.lavapipe ? ["vulkan"] : [])];
  for (const backend of backends) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-lock", "--no-check", `${dir}/main.ts`],
      env: { DENO_WEBGPU_BACKEND: backend },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    equal(out.code, 0, `exit code ${out.code} on ${backend}: ${new TextDecoder().decode(out.stderr)}`);
    const { during, unmapped } = JSON.parse(text);
    if (during.length === 0) console.log(`exit: no Mesa driver in use on ${backend}, nothing to check`);
    deepStrictEqual(
      unmapped,
      [],
      `${backend}: driver unmapped when the Worker's realm ended (exit handlers dangle)`,
    );
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("exit: with the GL backend, exit() skips the library destructors (glvnd's libEGL one double-frees) and keeps the exit code", async () => {
  if (Deno.build.os !== "linux" || !probeMachine().mesaEgl) return;
  // LD_DEBUG=files makes glibc's loader print "calling fini: LIB" for each destructor that exit() runs.
  // Without skipLibraryDestructorsAtExit (raw WebGPU) libEGL.so.1's runs: the control shows that the
  // check can see it. Through getGpu() none may run, and the status given to exit() must come out.
  const script = (viaGetGpu: boolean) =>
    viaGetGpu
      ? `import { getGpu } from "${device}";\nawait getGpu();\nDeno.exit(3);`
      : `const a = await navigator.gpu.requestAdapter();\nawait a!.requestDevice();\nDeno.exit(3);`;
  const env = { DENO_WEBGPU_BACKEND: "gl", LD_DEBUG: "files" };
  const control = await runScript(script(false), env);
  equal(control.code, 3, control.stderr.slice(-2000));
  match(control.stderr, /calling fini: \S*\/libEGL\.so\.1/, "control: libEGL.so.1's destructor runs at exit");
  const r = await runScript(script(true), env);
  equal(r.code, 3, `exit code ${r.code}: ${r.stderr.slice(-2000)}`);
  const fini = r.stderr.split("\n").filter((l) => l.includes("calling fini:"));
  deepStrictEqual(fini, [], "library destructors ran at exit");
});

/** An adapter as a browser shows it to a page: no name, limits and features (Firefox on lavapipe's values). */
function namelessAdapter(limits: Record<string, number> = {}, features = ["timestamp-query", "shader-f16"]) {
  return {
    info: {
      vendor: "",
      architecture: "",
      device: "",
      description: "",
      isFallbackAdapter: false,
      subgroupMinSize: 32,
      subgroupMaxSize: 32,
    },
    features: new Set(features),
    limits: {
      maxComputeWorkgroupStorageSize: 32768,
      maxStorageBufferBindingSize: 134217728,
      maxBufferSize: 1 << 30,
      ...limits,
    },
  } as unknown as GPUAdapter;
}

Deno.test("backend: an adapter that hides its name is told apart by a hash of its limits and features", async () => {
  const a = adapterFingerprint(namelessAdapter());
  match(a, /^limits:[0-9a-f]{8}$/);
  equal(adapterFingerprint(namelessAdapter()), a, "the same adapter, the same hash");
  equal(adapterFingerprint(namelessAdapter({}, ["shader-f16", "timestamp-query"])), a, "feature order");
  // One limit, one feature, the subgroup size or the fallback flag apart: another hash.
  const others = [
    adapterFingerprint(namelessAdapter({ maxComputeWorkgroupStorageSize: 49152 })),
    adapterFingerprint(namelessAdapter({}, ["timestamp-query"])),
    adapterFingerprint(
      {
        ...namelessAdapter(),
        info: { ...namelessAdapter().info, subgroupMinSize: 64, subgroupMaxSize: 64 },
      } as unknown as GPUAdapter,
    ),
    adapterFingerprint(
      {
        ...namelessAdapter(),
        info: { ...namelessAdapter().info, isFallbackAdapter: true },
      } as unknown as GPUAdapter,
    ),
  ];
  equal(new Set([a, ...others]).size, 5, others.join(" "));

  // The tuning cache's key: a named adapter's as before, a nameless one's with the hash.
  const { report } = await getGpu();
  equal(report.fingerprint, undefined, `${report.description} has a name: no fingerprint`);
  const key = (r: AdapterReport) => adapterKey({ report: r } as Gpu);
  equal(
    key(report),
    [
      report.description,
      report.vendor,
      report.architecture,
      report.implementation,
      report.backend,
      report.driver,
    ]
      .join(" | "),
  );
  const browser: AdapterReport = {
    ...report,
    description: "unknown adapter",
    implementation: "browser",
    backend: "browser",
    driver: "unknown",
  };
  const gpuA = key({ ...browser, fingerprint: a }), gpuB = key({ ...browser, fingerprint: others[0] });
  equal(gpuA, `${key(browser)} | ${a}`);
  ok(gpuA !== gpuB, "two nameless GPUs share a tuning key");
  // The adapter line names the hash, so a user can tell which tuning entry a browser used.
  ok(describeAdapter({ ...browser, fingerprint: a }).startsWith(`unknown adapter (${a}) through `));
});
