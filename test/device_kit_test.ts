// The device kit's scripts (tools/device): the Slurm array's shard arithmetic under a fake sbatch
// environment (array ids set here, a fake `deno` that records what it was asked to run), run.sh's argument
// check and its choice of the kit's Deno by architecture (a fake uname), the NVIDIA manifests it writes as
// a last try (fake driver folders), and the closing table read from a state folder made here. The kit end
// to end is tools/device/rehearse, and its aarch64 part tools/device/rehearse_arm64 (CI steps: they need
// the packed kit).

import { fileURLToPath } from "node:url";
import { deepStrictEqual as assertEquals, match as assertMatch, ok as assert } from "node:assert/strict";
import { parseRunArgs } from "../experiments/cli.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const sbatch = `${root}tools/device/sweep.sbatch`;

/** A folder with a fake `deno` that appends its arguments, one call per line, to calls.txt. */
async function fakeDeno(): Promise<{ dir: string; calls: () => string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "kit_test_" });
  await Deno.writeTextFile(`${dir}/deno`, `#!/usr/bin/env bash\necho "$*" >> "${dir}/calls.txt"\n`);
  await Deno.chmod(`${dir}/deno`, 0o755);
  const calls = () => {
    try {
      return Deno.readTextFileSync(`${dir}/calls.txt`).trim().split("\n");
    } catch {
      return [];
    }
  };
  return { dir, calls };
}

async function runSbatch(
  env: Record<string, string>,
  binDir: string,
  args: string[] = [],
): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command("bash", {
    args: [sbatch, ...args],
    env: { ...env, PATH: `${binDir}:${Deno.env.get("PATH")}`, SLURM_SUBMIT_DIR: root },
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** Runs every task of an array first..last as Slurm would and returns the run ids each task's shard holds. */
async function simulateArray(first: number, last: number): Promise<string[][]> {
  const { dir, calls } = await fakeDeno();
  try {
    for (let id = first; id <= last; id++) {
      const r = await runSbatch({
        SLURM_ARRAY_JOB_ID: "4242",
        SLURM_ARRAY_TASK_ID: String(id),
        SLURM_ARRAY_TASK_MIN: String(first),
        SLURM_ARRAY_TASK_MAX: String(last),
        SLURM_ARRAY_TASK_COUNT: String(last - first + 1),
      }, dir);
      assertEquals(r.code, 0, r.stderr);
    }
    return calls().map((line) => {
      const args = line.split(" ");
      assertEquals(args.slice(0, 3), ["task", "experiment", "fashion_lambda_sweep"]);
      assert(args.includes("--resume"), line);
      return parseRunArgs(args.slice(2)).runs.map((r) => r.variant!.id);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function assertEachRunOnce(shards: string[][]): void {
  const all = parseRunArgs(["fashion_lambda_sweep"]).runs.map((r) => r.variant!.id);
  assertEquals(all.length, 45);
  const seen = shards.flat();
  assertEquals(seen.length, 45, "every run exactly once across the array's tasks");
  assertEquals([...seen].sort(), [...all].sort());
}

Deno.test("sweep.sbatch: its own --array gives each of the 45 runs to exactly one task", async () => {
  const text = await Deno.readTextFile(sbatch);
  const m = /^#SBATCH --array=(\d+)-(\d+)$/m.exec(text);
  if (!m) throw new Error("sweep.sbatch names no #SBATCH --array=FIRST-LAST");
  const shards = await simulateArray(+m[1], +m[2]);
  assertEquals(shards.length, +m[2] - +m[1] + 1);
  assertEachRunOnce(shards);
});

Deno.test("sweep.sbatch: fewer tasks than runs, and 0-based arrays, still cover every run once", async () => {
  for (const [first, last] of [[1, 9], [0, 7], [5, 11], [1, 1]]) {
    const shards = await simulateArray(first, last);
    assertEquals(shards.length, last - first + 1);
    assert(shards.every((s) => s.length > 0), `array ${first}-${last}: no task idles`);
    assertEachRunOnce(shards);
  }
});

Deno.test("sweep.sbatch: SWEEP_KERNELS_FROM gives every task --kernels-from; a missing file is refused", async () => {
  const { dir, calls } = await fakeDeno();
  const task = { SLURM_ARRAY_TASK_ID: "2", SLURM_ARRAY_TASK_MIN: "1", SLURM_ARRAY_TASK_COUNT: "9" };
  try {
    await Deno.writeTextFile(`${dir}/manifest.json`, "{}");
    const r = await runSbatch({ ...task, SWEEP_KERNELS_FROM: `${dir}/manifest.json` }, dir);
    assertEquals(r.code, 0, r.stderr);
    const args = calls()[0].split(" ");
    assertEquals(args.slice(-2), ["--kernels-from", `${dir}/manifest.json`]);
    const plan = parseRunArgs(args.slice(2));
    assert(plan.runs.every((run) => run.kernelsFrom === `${dir}/manifest.json` && run.resume));
    const missing = await runSbatch({ ...task, SWEEP_KERNELS_FROM: `${dir}/none.json` }, dir);
    assertEquals(missing.code, 2);
    assertMatch(
      missing.stderr,
      /^error: SWEEP_KERNELS_FROM=.*none\.json: not a file \(expected a run's manifest\.json\)/,
    );
    assertEquals(calls().length, 1, "nothing ran after a refusal");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sweep.sbatch: `report` aggregates; outside an array it refuses with one clear line", async () => {
  const { dir, calls } = await fakeDeno();
  try {
    const report = await runSbatch({}, dir, ["report"]);
    assertEquals(report.code, 0, report.stderr);
    assertEquals(calls(), ["task report fashion_lambda_sweep"]);
    const bare = await runSbatch({}, dir);
    assertEquals(bare.code, 2);
    assertMatch(bare.stderr, /^error: tools\/device\/sweep.sbatch runs as a Slurm array task/);
    const outside = await runSbatch({
      SLURM_ARRAY_TASK_ID: "9",
      SLURM_ARRAY_TASK_MIN: "1",
      SLURM_ARRAY_TASK_COUNT: "4",
    }, dir);
    assertEquals(outside.code, 2);
    assertMatch(outside.stderr, /array task 9 is outside 1\.\.4/);
    assertEquals(calls().length, 1, "nothing ran after a refusal");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run.sh: a bad SECONDS is one clear line and exit 2, before anything is unpacked", async () => {
  for (const bad of ["abc", "30", "-5"]) {
    const out = await new Deno.Command("bash", {
      args: [`${root}tools/device/run.sh`, bad],
      env: { KIT_STATE: "/nonexistent/kit-state-should-not-be-made" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 2);
    assertMatch(
      new TextDecoder().decode(out.stderr),
      /^error: tools\/device\/run.sh SECONDS: expected .* got "/,
    );
  }
});

/**
 * A fake `uname -m` (it prints $FAKE_MACHINE) in DIR/bin, and in KIT/base one Deno per machine as
 * tools/device/pack writes them (xz, and the SHA-256 file), each a shell script.
 */
async function fakeArchKit(dir: string, kit: string, scripts: Record<string, string>): Promise<void> {
  await Deno.mkdir(`${dir}/bin`, { recursive: true });
  await Deno.mkdir(`${kit}/base`, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/bin/uname`,
    `#!/bin/sh\nif [ "$1" = -m ]; then echo "$FAKE_MACHINE"; else exec /usr/bin/uname "$@"; fi\n`,
  );
  await Deno.chmod(`${dir}/bin/uname`, 0o755);
  const sh = async (args: string[], stdin: Uint8Array) => {
    const child = new Deno.Command(args[0], { args: args.slice(1), stdin: "piped", stdout: "piped" }).spawn();
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
    return (await child.output()).stdout;
  };
  for (const [machine, text] of Object.entries(scripts)) {
    const script = new TextEncoder().encode(text);
    await Deno.writeFile(`${kit}/base/deno-2.9.6-${machine}-linux.xz`, await sh(["xz", "-c"], script));
    const sha = new TextDecoder().decode(await sh(["sha256sum"], script)).split(" ")[0];
    await Deno.writeTextFile(`${kit}/base/deno-${machine}-linux.sha256`, `${sha}  deno\n`);
  }
}

Deno.test("run.sh: the kit's Deno for the machine's architecture (x86_64, aarch64); another is one clear line", async () => {
  // A kit whose two Deno binaries are scripts saying which they are.
  const dir = await Deno.makeTempDir({ prefix: "kit_arch_" });
  const says = (machine: string) =>
    `#!/bin/sh\n[ "$1" = --version ] && echo "deno 2.9.6 (fake for ${machine})" && exit 0\nexit 3\n`;
  await fakeArchKit(dir, `${dir}/kit`, { x86_64: says("x86_64"), aarch64: says("aarch64") });
  const run = async (machine: string, kit = `${dir}/kit`) => {
    const state = `${dir}/state-${machine}-${kit.length}`;
    const o = await new Deno.Command("bash", {
      args: [`${root}tools/device/run.sh`, "60"],
      // No deno on this PATH (it is in /usr/local/bin or ~/.deno here), no steps: the Deno part and the adapter.
      env: {
        PATH: `${dir}/bin:/usr/bin:/bin`,
        FAKE_MACHINE: machine,
        KIT_DIR: kit,
        KIT_STATE: state,
        OUT: `${state}/out`,
        KIT_STEPS: "none",
      },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: o.code, out: new TextDecoder().decode(o.stdout), err: new TextDecoder().decode(o.stderr) };
  };
  for (const [machine, want] of [["x86_64", "x86_64"], ["aarch64", "aarch64"], ["arm64", "aarch64"]]) {
    const r = await run(machine);
    assertMatch(r.out, new RegExp(`, ${want}\\n`), r.out);
    assertMatch(r.out, new RegExp(`deno 2\\.9\\.6 \\(fake for ${want}\\) at ${dir}/state-`), r.out);
  }
  const other = await run("riscv64");
  assertEquals(other.code, 1);
  assertMatch(
    other.err,
    /^error: tools\/device\/run.sh: this machine is riscv64; the kit has Deno for x86_64 and aarch64 Linux only/,
  );
  await Deno.mkdir(`${dir}/empty/base`, { recursive: true });
  const none = await run("aarch64", `${dir}/empty`);
  assertEquals(none.code, 1);
  // (said after run.sh's output went to its log, which its stdout shows)
  assertMatch(
    none.out,
    /error: no deno: .* holds no deno-\*-aarch64-linux\.xz \(build it with tools\/device\/pack --arch=arm64 /,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sweep.sbatch: a node without deno unpacks the kit's Deno for its architecture, checked; none or a damaged one is one clear line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kit_sweep_arch_" });
  // The submit folder holds the kit; its aarch64 Deno records what it is asked to run.
  await fakeArchKit(dir, `${dir}/root/.kit`, {
    aarch64: `#!/bin/sh\necho "$*" >> "${dir}/calls.txt"\n`,
  });
  await Deno.mkdir(`${dir}/tmp`);
  const run = async (machine: string) => {
    const o = await new Deno.Command("bash", {
      args: [sbatch],
      env: {
        PATH: `${dir}/bin:/usr/bin:/bin`, // no deno here (it is in /usr/local/bin or ~/.deno)
        FAKE_MACHINE: machine,
        SLURM_SUBMIT_DIR: `${dir}/root`,
        TMPDIR: `${dir}/tmp`,
        SLURM_JOB_ID: "77",
        SLURM_ARRAY_TASK_ID: "1",
        SLURM_ARRAY_TASK_MIN: "1",
        SLURM_ARRAY_TASK_MAX: "45",
        SLURM_ARRAY_TASK_COUNT: "45",
      },
      clearEnv: true,
      stdout: "null",
      stderr: "piped",
    }).output();
    return { code: o.code, stderr: new TextDecoder().decode(o.stderr) };
  };
  const ran = await run("aarch64");
  assertEquals(ran.code, 0, ran.stderr);
  assertMatch(
    Deno.readTextFileSync(`${dir}/calls.txt`),
    /^task experiment fashion_lambda_sweep .*--shard 1\/45/,
  );
  const none = await run("x86_64");
  assertEquals(none.code, 1);
  assertMatch(none.stderr, /^error: no deno on PATH and no \.kit\/base\/deno-\*-x86_64-linux\.xz \(build it/);
  await Deno.writeTextFile(`${dir}/root/.kit/base/deno-aarch64-linux.sha256`, `${"0".repeat(64)}  deno\n`);
  const damaged = await run("aarch64");
  assertEquals(damaged.code, 1);
  assertMatch(
    damaged.stderr,
    /^error: .*deno-2\.9\.6-aarch64-linux\.xz unpacks to SHA-256 [0-9a-f]{64}, expected 0{64} \(kit damaged/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("nvidia_manifests.sh: manifests naming the driver's libraries by full path; none without them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kit_nvidia_" });
  const run = async (libDirs: string, out: string) => {
    const o = await new Deno.Command("bash", {
      args: [`${root}tools/device/nvidia_manifests.sh`, `${dir}/${out}`],
      env: { KIT_NVIDIA_LIB_DIRS: libDirs },
      stdout: "piped",
    }).output();
    return { code: o.code, lines: new TextDecoder().decode(o.stdout).trim().split("\n").filter((l) => l) };
  };
  const libPath = (out: string, name: string) =>
    JSON.parse(Deno.readTextFileSync(`${dir}/${out}/${name}`)).ICD.library_path;
  // No library in the folders searched: nothing written, exit 1.
  assertEquals(await run(`${dir}/none`, "a"), { code: 1, lines: [] });
  // GLX only: a Vulkan manifest for it, no EGL one; the first folder that has it wins.
  await Deno.mkdir(`${dir}/lib64`);
  await Deno.mkdir(`${dir}/lib`);
  await Deno.writeTextFile(`${dir}/lib64/libGLX_nvidia.so.0`, "");
  await Deno.writeTextFile(`${dir}/lib/libGLX_nvidia.so.0`, "");
  assertEquals(await run(`${dir}/none ${dir}/lib64 ${dir}/lib`, "b"), {
    code: 0,
    lines: [`vk ${dir}/b/nvidia_icd.json`, `libdir ${dir}/lib64`],
  });
  assertEquals(libPath("b", "nvidia_icd.json"), `${dir}/lib64/libGLX_nvidia.so.0`);
  // With EGL's library too: Vulkan through it (no X libraries needed), and an EGL vendor manifest.
  await Deno.writeTextFile(`${dir}/lib/libEGL_nvidia.so.0`, "");
  assertEquals(await run(`${dir}/lib64 ${dir}/lib`, "c"), {
    code: 0,
    lines: [`vk ${dir}/c/nvidia_icd.json`, `egl ${dir}/c/10_nvidia.json`, `libdir ${dir}/lib`],
  });
  assertEquals(libPath("c", "nvidia_icd.json"), `${dir}/lib/libEGL_nvidia.so.0`);
  assertEquals(libPath("c", "10_nvidia.json"), `${dir}/lib/libEGL_nvidia.so.0`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("summary.ts: the closing table from a state folder; a step that did not run prints '-'", async () => {
  const state = await Deno.makeTempDir({ prefix: "kit_state_" });
  try {
    const w = async (path: string, text: string) => {
      await Deno.mkdir(`${state}/${path.replace(/\/[^/]*$/, "")}`, { recursive: true });
      await Deno.writeTextFile(`${state}/${path}`, text);
    };
    await w(
      "steps/adapter.json",
      JSON.stringify({ report: { description: "NVIDIA H200", backend: "vulkan", isSoftware: false } }),
    );
    await w(
      "steps/tests/results.txt",
      "pass=1 seed=11 rc=0 summary=ok | 58 passed | 0 failed (3s)\npass=2 seed=22 rc=0 summary=ok | 58 passed | 0 failed (3s)\n",
    );
    await w(
      "steps/bench/bench.json",
      JSON.stringify({
        train_step_ms: 40,
        batch: 256,
        widths: [64],
        record_step_ms: 1.234,
        dispatches_per_step: 74,
        passes_per_step: 1,
        pipeline_builds: { count: 40, totalMs: 5250, slowestMs: 812.4, slowest: "igemm_tapslice(x)" },
        train_step_layer_kind_ms: {
          BatchNorm2d: 6,
          Conv2d: 30,
          MaxPool2d: 1.5,
          "head and loss": 0.5,
          Adam: 1.25,
          "batch gather": 0.25,
        },
      }),
    );
    await w("steps/bench/torch_fp32.json", JSON.stringify({ train_step_ms: 10, device: "NVIDIA H200" }));
    await w("steps/bench/bench_no_winograd.json", JSON.stringify({ train_step_ms: 50, batch: 256 }));
    const shape = (choice: string, ms: number[], dropped?: Record<string, string>) => ({
      choice,
      ms: Object.fromEntries(ms.map((t, i) => [i ? `igemm_tapslice(${i})` : "register_block(r4=2)", t])),
      ...(dropped ? { dropped } : {}),
    });
    await w(
      "steps/tuning.json",
      JSON.stringify({
        format: "webgpu-mda-tuning/2",
        adapters: {
          "NVIDIA H200 | vulkan": {
            a: shape("igemm_tapslice(1)", [4, 1], {
              "igemm_tiled(y)": "failed: GPUValidationError: too big",
            }),
            b: shape("igemm_tapslice(2)", [3, 2, 1], { "igemm_tiled(x)": "output element 3 is 0" }),
            c: shape("register_block(r4=2)", [1, 2], {
              "igemm_tiled(z)": "lost the device (unknown: Xid 79)",
            }),
            // Conv tasks' keys (lib/nn/conv2d/tune.ts): 2*256*28*28*64*64*9 flops = 14.8 GFLOP.
            "conv2d forward n=256 ci=64 co=64 h=28 w=28": shape("igemm_tapslice(1)", [4, 1.5]),
            "conv2d weightGrad n=256 ci=64 co=64 h=28 w=28": shape("igemm_tapslice(1)", [4, 2]),
            "conv2d weightGrad n=256 ci=128 co=128 h=14 w=14": shape("igemm_tapslice(1)", [4, 4]),
            // A Winograd candidate twice as fast as the best direct one (tap-slice, 2 ms).
            "conv2d inputGrad n=256 ci=64 co=64 h=28 w=28": {
              choice: "winograd_f2x2(a)",
              ms: { "register_block(r4=2)": 4, "igemm_tapslice(1)": 2, "winograd_f2x2(a)": 1 },
            },
          },
        },
      }),
    );
    await w(
      "results/fashion_mda/manifest.json",
      JSON.stringify({
        status: "failed",
        error: "the GPU device was lost (unknown: Xid 79); noticed at epoch 4, step 9 of 235",
        hyperparameters: { epochs: { value: 100 } },
      }),
    );
    await w(
      "results/fashion_mda/history.jsonl",
      [[1, 30, 0.5], [2, 12, 0.6], [3, 14, 0.7]].map(([epoch, seconds, acc]) =>
        JSON.stringify({ epoch, seconds, eval_seconds: epoch / 2, test_accuracy: acc }) + "\n"
      ).join(""),
    );
    await w(
      "steps/pytorch/notebook.log",
      "[MDA 01] train loss=1 acc=0.5 | test acc=0.8000 (9.0 s)\n[MDA 02] train loss=1 acc=0.6 | test acc=0.8500 (3.0 s)\n",
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${root}tools/device/summary.ts`,
        state,
        "fashion_mda",
        "--json",
        `${state}/s.json`,
        "--markdown",
        `${state}/s.md`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    assertMatch(text, /adapter\s+NVIDIA H200 \(backend vulkan\)/);
    assertMatch(
      text,
      /ours 40\.0 \| PyTorch fp32, TF32 off 10\.0 \| PyTorch defaults - \| ours\/PyTorch fp32 4\.00x/,
    );
    assertMatch(
      text,
      /train step ms, no Winograd\s+50\.0 \(direct convolutions only\): 1\.25x the tuned step's time$/m,
    );
    assertMatch(
      text,
      /one step's GPU time by part\s+Conv2d 30\.00 ms, BatchNorm2d 6\.00 ms, MaxPool2d 1\.50 ms, Adam 1\.25 ms, head and loss 0\.50 ms, batch gather 0\.25 ms; 39\.50 ms in all \(one step with timestamps around each part, a compute pass each; the untimed steps' mean 40\.00 ms\)$/m,
    );
    assertMatch(text, /host: recording a step\s+1\.23 ms, 74 dispatches in 1 compute pass$/m);
    assertMatch(text, /pipelines built \(bench\)\s+40 in 5\.25 s; slowest 812 ms \(igemm_tapslice\(x\)\)$/m);
    assertMatch(
      text,
      /3 of 100, status failed \(the GPU device was lost \(unknown: Xid 79\); noticed at epoch 4, step 9 of 235\) \| PyTorch notebook 2/,
    );
    assertMatch(
      text,
      /tuner\s+7 shapes: igemm_tapslice 5, register_block 1, winograd_f2x2 1; choice 2\.67x faster than the reference \(median\); 3 candidates dropped \(an error 1, output differed 1, lost the device 1: see steps\.tar\.xz tuning\.json\)$/m,
    );
    assertMatch(
      text,
      /conv TFLOP\/s, tuner's choice\s+forward 9\.9-9\.9, inputGrad 14\.8-14\.8, weightGrad 3\.7-7\.4 \(over/,
    );
    assertMatch(text, /Winograd: best direct kernel's ms \/ best Winograd's\s+inputGrad 2\.00-2\.00x \(over/);
    assertMatch(text, /seconds per epoch\s+ours 13\.0 \(eval 1\.25\) \| PyTorch 3\.0/);
    assertMatch(text, /100 epochs at that rate\s+ours 21\.7 min \| PyTorch 5\.0 min/);
    assertMatch(text, /ours 0\.7000 \(epoch 3\) \| PyTorch 0\.8500 \(epoch 2\)/);
    const json = JSON.parse(await Deno.readTextFile(`${state}/s.json`));
    assertEquals(json.experiment.epochs_done, 3);
    assertMatch(json.experiment.error, /^the GPU device was lost/);
    assertEquals(json.tuner.dropped_by_reason, { "an error": 1, "output differed": 1, "lost the device": 1 });
    assertEquals(json.experiment.eval_seconds_per_epoch, 1.25);
    assertEquals(json.train_step_ms.pytorch_defaults, null);
    assertEquals(json.train_step_ms.ours_no_winograd, 50);
    assertEquals([json.train_step_ms.ours_host_record, json.train_step_ms.ours_dispatches], [1.234, 74]);
    assertEquals(json.kernel_tests.length, 2);
    assertEquals(json.tuner.choices_by_family, { igemm_tapslice: 5, register_block: 1, winograd_f2x2: 1 });
    assertEquals(json.winograd_over_direct, [
      { pass: "inputGrad", shape: "64->64 @28x28 n=256", direct_over_winograd: 2 },
    ]);
    assertEquals(json.conv_tflops[0].shape, "64->64 @28x28 n=256");
    // The README section: the same rows as a table (a "|" inside a cell escaped), then each conv shape's
    // chosen kernels, a pass the tuner did not time shown as "-".
    const md = await Deno.readTextFile(`${state}/s.md`);
    assertMatch(md, /^### Device kit on NVIDIA H200 \(vulkan\)$/m);
    assertMatch(md, /^\| train step ms, batch 256 \| ours 40\.0 \\\| PyTorch fp32, TF32 off 10\.0 /m);
    assertMatch(md, /^\| 100 epochs at that rate \| ours 21\.7 min \\\| PyTorch 5\.0 min \|$/m);
    assertMatch(md, /^\| layer shape \| forward \| inputGrad \| weightGrad \|$/m);
    assertMatch(
      md,
      /^\| 64->64 @28x28 n=256 \| `igemm_tapslice\(1\)` 1\.500 ms, 9\.9 \| `winograd_f2x2\(a\)` 1\.000 ms, 14\.8 \| `igemm_tapslice\(1\)` 2\.000 ms, 7\.4 \|$/m,
    );
    assertEquals(json.conv_tflops.map((c: { tflops: number }) => c.tflops.toFixed(3)), [
      "9.865",
      "7.399",
      "3.699",
      "14.798",
    ]);
  } finally {
    await Deno.remove(state, { recursive: true });
  }
});

// Every call to the GPU machine sends the tracked tree beside one half of the kit, at most 64 MiB in all
// (tools/device/pack checks 60): the tree plus the x86_64 base (Deno at xz 9e 27.5 MiB, npm packages
// ~2 MiB, loaders 0.4 MiB), then the tree plus the data (~25 MiB). A results folder that grows past this
// makes the kit unusable on the GPU machine, which no other test would notice (CI packs --arch=all for a
// cluster's disk, over the limit by design): .gitignore keeps multi-run experiments' bulky run files out.
const TREE_BUDGET_MIB = 28;

Deno.test(`the tracked tree stays under ${TREE_BUDGET_MIB} MiB, so that the device kit fits a GPU-machine call`, async () => {
  const out = await new Deno.Command("git", { args: ["ls-files", "-z", "--cached"], cwd: root }).output();
  if (!out.success) return console.warn("not a git checkout: the tree's size is not checked");
  const files = new TextDecoder().decode(out.stdout).split("\0").filter((f) => f !== "");
  let bytes = 0;
  const sizes: [number, string][] = [];
  for (const f of files) {
    try {
      const size = Deno.statSync(`${root}${f}`).size;
      bytes += size;
      sizes.push([size, f]);
    } catch { /* deleted in the working tree: it does not travel */ }
  }
  const mib = bytes / 1048576;
  const largest = sizes.sort((a, b) => b[0] - a[0]).slice(0, 3).map(([s, f]) =>
    `${f} ${(s / 1048576).toFixed(1)}`
  );
  assert(
    mib <= TREE_BUDGET_MIB,
    `the tracked tree is ${mib.toFixed(1)} MiB, over ${TREE_BUDGET_MIB} (largest: ${
      largest.join(", ")
    } MiB): ` +
      "commit less under results/ (see .gitignore)",
  );
});
