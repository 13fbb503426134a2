// The subset of node:assert/strict that the kernel tests use, for the browser bundle (tools/browser_tests.ts
// maps "node:assert/strict" here). Same semantics where the tests rely on them: strict equality with
// Object.is, deep comparison of arrays, typed arrays and plain objects, throws/rejects with a RegExp,
// a validation function or an error class.

export class AssertionError extends Error {}

function fail(message: string | undefined, fallback: string): never {
  throw new AssertionError(message ?? fallback);
}

function show(v: unknown): string {
  try {
    return typeof v === "string"
      ? JSON.stringify(v)
      : ArrayBuffer.isView(v)
      ? `${v.constructor.name}[${Array.from(v as unknown as ArrayLike<number>).slice(0, 20)}]`
      : JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (ArrayBuffer.isView(a)) {
    const x = a as unknown as ArrayLike<number>, y = b as unknown as ArrayLike<number>;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
    return true;
  }
  if (a instanceof Map || a instanceof Set) {
    return deepEqual([...a], [...(b as Map<unknown, unknown> | Set<unknown>)]);
  }
  const ka = Object.keys(a), kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

export function ok(value: unknown, message?: string): asserts value {
  if (!value) fail(message, `expected a truthy value, got ${show(value)}`);
}

export function equal(actual: unknown, expected: unknown, message?: string): void {
  if (!Object.is(actual, expected)) fail(message, `${show(actual)} !== ${show(expected)}`);
}

export function deepStrictEqual(actual: unknown, expected: unknown, message?: string): void {
  if (!deepEqual(actual, expected)) {
    fail(message, `not deep-equal:\n  actual   ${show(actual)}\n  expected ${show(expected)}`);
  }
}

export function match(actual: string, re: RegExp, message?: string): void {
  if (!re.test(actual)) fail(message, `${show(actual)} does not match ${re}`);
}

type Expected = RegExp | ((e: unknown) => boolean) | (new (...args: never[]) => unknown);

function check(e: unknown, expected: Expected | undefined, message: string | undefined): void {
  if (expected === undefined) return;
  if (expected instanceof RegExp) {
    const text = e instanceof Error ? e.message : String(e);
    if (!expected.test(text)) fail(message, `error ${show(text)} does not match ${expected}`);
  } else if (expected.prototype !== undefined && e instanceof (expected as new () => unknown)) {
    return;
  } else if (!(expected as (e: unknown) => boolean)(e)) {
    fail(message, `error ${String(e)} was not the expected one`);
  }
}

export function throws(f: () => unknown, expected?: Expected | string, message?: string): void {
  if (typeof expected === "string") [message, expected] = [expected, undefined];
  try {
    f();
  } catch (e) {
    check(e, expected, message);
    return;
  }
  fail(message, "missing expected exception");
}

export async function rejects(
  p: Promise<unknown> | (() => Promise<unknown>),
  expected?: Expected | string,
  message?: string,
): Promise<void> {
  if (typeof expected === "string") [message, expected] = [expected, undefined];
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    check(e, expected, message);
    return;
  }
  fail(message, "missing expected rejection");
}
