// One realm of the exit reproducer (main.ts): raw WebGPU, so that only the pin differs between the modes.
import { pinDriverLibraries } from "../../lib/gpu/backend.ts";

const adapter = await navigator.gpu.requestAdapter();
const device = await adapter!.requestDevice();
if (Deno.env.get("REPRO_MODE") === "pin") pinDriverLibraries();
const code = `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  var s = 0.0;
  for (var i = 0u; i < 500u; i++) { s += sin(f32(i + g.x)); }
  x[g.x] = s;
}`;
const pipeline = device.createComputePipeline({
  layout: "auto",
  compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
});
const buffer = device.createBuffer({ size: 4 * 65536, usage: GPUBufferUsage.STORAGE });
const bindGroup = device.createBindGroup({
  layout: pipeline.getBindGroupLayout(0),
  entries: [{ binding: 0, resource: { buffer } }],
});
const encoder = device.createCommandEncoder();
const pass = encoder.beginComputePass();
pass.setPipeline(pipeline);
pass.setBindGroup(0, bindGroup);
pass.dispatchWorkgroups(1024);
pass.end();
device.queue.submit([encoder.finish()]);
(self as unknown as Worker).postMessage("submitted");
