// Imported last by the browser bundle: removes the `Deno` stand-in, runs the collected tests one after
// another and posts each result to the harness server (tools/browser_tests.ts) at /result, then /done.

import { describeError, post, tests } from "./register.ts";

delete (globalThis as Record<string, unknown>).Deno;

async function main(): Promise<void> {
  const filter = new URLSearchParams(location.search).get("filter");
  const adapter = await navigator.gpu?.requestAdapter();
  await post("/info", {
    userAgent: navigator.userAgent,
    webgpu: Boolean(navigator.gpu),
    adapter: adapter
      ? {
        vendor: adapter.info.vendor,
        architecture: adapter.info.architecture,
        device: adapter.info.device,
        description: adapter.info.description,
      }
      : null,
  });
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

main().catch((e) => post("/done", { error: String(e?.stack ?? e) }));
