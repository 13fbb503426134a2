// Imported first by the browser bundle: a `Deno` global with just `test` (collecting the tests the
// test files register at load) and an empty `env`, so the kernel test files load unchanged. run.ts
// removes it again before any test runs, so lib/ sees a browser (no Deno) while the tests run.

import { describeError } from "./describe_error.ts";

export interface BrowserTest {
  name: string;
  fn: () => unknown;
  ignore: boolean;
}

export const tests: BrowserTest[] = [];

type TestFn = () => unknown;
interface TestDef {
  name: string;
  fn: TestFn;
  ignore?: boolean;
}

function test(a: string | TestDef, b?: TestFn | Partial<TestDef>, c?: TestFn): void {
  if (typeof a === "string") {
    const opts = typeof b === "object" ? b : {};
    const fn = typeof b === "function" ? b : c!;
    tests.push({ name: a, fn, ignore: Boolean(opts.ignore) });
  } else {
    tests.push({ name: a.name, fn: a.fn, ignore: Boolean(a.ignore) });
  }
}

(globalThis as Record<string, unknown>).Deno = { test, env: { get: () => undefined } };

/** POSTs one message to the harness server (tools/browser_tests.ts): /info, /result or /done. */
export async function post(path: string, body: unknown): Promise<void> {
  await fetch(path, { method: "POST", body: JSON.stringify(body) });
}

// A test file that throws while the bundle loads stops the bundle before run.ts starts, and the page would
// stay silent until the harness's timeout (15 minutes): report the error to the harness at once instead.
function reportLoadError(what: unknown): void {
  post("/done", { error: `while the tests loaded: ${describeError(what)}` });
}
addEventListener("error", (e) => reportLoadError((e as ErrorEvent).error ?? (e as ErrorEvent).message));
addEventListener("unhandledrejection", (e) => reportLoadError((e as PromiseRejectionEvent).reason));
