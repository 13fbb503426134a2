// Imported last by the browser bundle: removes the `Deno` stand-in, runs the collected tests one after
// another and posts each result to the harness server (tools/browser_tests.ts) at /result, then /done.

import { describeError } from "./describe_error.ts";
import { post, tests } from "./register.ts";

delete (globalThis as Record<string, unknown>).Deno;

async function main(): Promise<void> {
  const filter = new URLSearchParams(location.search).get("filter");
  // A browser may have navigator.gpu and still refuse an adapter (Firefox 140 ESR's release build:
  // "NotSupportedError: WebGPU is not yet available in Release or late Beta builds"): its words go to the
  // harness, which names them, and no test runs.
  let adapter: GPUAdapter | null | undefined;
  let adapterError: string | undefined;
  try {
    adapter = await navigator.gpu?.requestAdapter();
  } catch (e) {
    adapterError = describeError(e).split("\n")[0];
  }
  await post("/info", {
    userAgent: navigator.userAgent,
    webgpu: Boolean(navigator.gpu),
    adapterError,
    adapter: adapter
      ? {
        vendor: adapter.info.vendor,
        architecture: adapter.info.architecture,
        device: adapter.info.device,
        description: adapter.info.description,
      }
      : null,
  });
  if (!adapter) return await post("/done", {});
  for (const t of tests) {
    if (t.ignore || (filter && !t.name.includes(filter))) {
      await post("/result", { name: t.name, status: t.ignore ? "ignored" : "filtered", ms: 0 });
      continue;
    }
    const t0 = performance.now();
    try {
      await t.fn();
      await post("/result", { name: t.name, status: "ok", ms: performance.now() - t0 });
    } catch (e) {
      const error = describeError(e);
      await post("/result", { name: t.name, status: "failed", ms: performance.now() - t0, error });
    }
  }
  await post("/done", {});
}

main().catch((e) => post("/done", { error: describeError(e) }));
