// Reproducer of the exit crash (results/exit_soak.md): six Workers in turn, each a realm with its own wgpu
// instance (as every `deno test` file is), each creating a device, submitting one dispatch and being
// terminated. Without the driver pin, about 1 run in 30 died with SIGSEGV (exit 139) on GL llvmpipe.
//   DENO_WEBGPU_BACKEND=gl REPRO_MODE=none deno run -A tools/exit_repro/main.ts 6; echo $?
// REPRO_MODE=pin calls pinDriverLibraries() in each Worker (what lib/gpu/device.ts does).
const n = Number(Deno.args[0] ?? 6);
for (let i = 0; i < n; i++) {
  const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
  await new Promise((r) => (w.onmessage = r));
  w.terminate();
}
console.log("main done");
