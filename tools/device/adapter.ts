// `deno run -A tools/device/adapter.ts [--json FILE]`: the WebGPU adapter Deno sees here, and its limits.
// The device kit's first check (tools/device/run.sh): exit 0 for a hardware adapter, 3 for a software one
// (Mesa llvmpipe/lavapipe), 1 for none, so the caller can retry with other driver settings.

import { checkPositionals, type CommandSpec, parseOrExit, stringFlag } from "../../experiments/flags.ts";
import { describeAdapter, getGpu, NoAdapterError } from "../../lib/gpu/device.ts";
import { writeJsonAtomic } from "../../lib/io/atomic.ts";

// The limits that decide whether the full model fits and how its kernels are tiled.
const LIMIT_KEYS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupsPerDimension",
  "maxUniformBufferBindingSize",
  "maxBindGroups",
];

const SPEC: CommandSpec = {
  name: "adapter",
  invocation: "deno run -A tools/device/adapter.ts",
  summary: "Prints the WebGPU adapter Deno sees here and its limits; exit 0 for a hardware adapter, 3 " +
    "for a software one (Mesa llvmpipe/lavapipe), 1 for none.",
  positionals: [],
  flags: [{ name: "json", kind: "path", value: "FILE", meaning: "also write the adapter as JSON" }],
  examples: ["deno run -A tools/device/adapter.ts --json /tmp/adapter.json"],
};

// Before the GPU: a bad flag must exit 2, not look like an adapter outcome (1 or 3) to run.sh's retries.
const json = parseOrExit(SPEC, Deno.args, (p) => {
  checkPositionals(SPEC, p);
  return stringFlag(p, "json", "path");
});

let gpu;
try {
  gpu = await getGpu();
} catch (e) {
  if (!(e instanceof NoAdapterError)) throw e;
  console.log(`adapter: none (${e.message})`);
  Deno.exit(1);
}
const info = gpu.adapter.info;
const limits: Record<string, number> = {};
for (const key of LIMIT_KEYS) {
  const v = (gpu.limits as unknown as Record<string, number>)[key];
  if (typeof v === "number") limits[key] = v;
}
console.log(`adapter: ${describeAdapter(gpu.report)}`);
console.log(
  `  vendor ${info.vendor || "?"}, architecture ${info.architecture || "?"}, device ${info.device || "?"}, ` +
    `timestamp-query ${gpu.report.timestampQuery ? "yes" : "no"}`,
);
for (const [k, v] of Object.entries(limits)) console.log(`  ${k.padEnd(36)} ${v}`);
if (json) {
  await writeJsonAtomic(json, {
    report: gpu.report,
    info: {
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      description: info.description,
    },
    features: [...gpu.adapter.features].sort(),
    limits,
  });
}
await gpu.device.queue.onSubmittedWorkDone();
gpu.device.destroy();
Deno.exit(gpu.report.isSoftware ? 3 : 0);
