// One `deno test` realm of the exit-abort reproducer (run.sh): creates a device on the thread that runs
// this test file, submits a dispatch, waits for it and destroys the device, as the suite's GPU tests do.
// REPRO_MODE says which of our exit workarounds (lib/gpu/backend.ts) the realm applies:
//   none  neither; pin  pinDriverLibraries() (what the code did before the abort was explained);
//   fix   pin + skipLibraryDestructorsAtExit() (what lib/gpu/device.ts does now).
import { pinDriverLibraries, skipLibraryDestructorsAtExit } from "../../lib/gpu/backend.ts";

const mode = Deno.env.get("REPRO_MODE") ?? "fix";
if (!["none", "pin", "fix"].includes(mode)) {
  throw new Error(`REPRO_MODE must be none, pin or fix, got ${mode}`);
}

Deno.test(`exit repro realm (${mode})`, async () => {
  const adapter = await navigator.gpu.requestAdapter();
  const device = await adapter!.requestDevice();
  if (mode !== "none") pinDriverLibraries();
  if (mode === "fix") skipLibraryDestructorsAtExit();
  const code = `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) { x[g.x] = sin(f32(g.x)); }`;
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
  });
  const buffer = device.createBuffer({ size: 4 * 4096, usage: GPUBufferUsage.STORAGE });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(
    0,
    device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer } }],
    }),
  );
  pass.dispatchWorkgroups(64);
  pass.end();
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
  device.destroy();
});
