// How a page tells the harness what it threw (the kernel-test page, test/browser/; the browser step of
// bench/browser_step.ts). Side-effect free, unlike register.ts, so either bundle can import it.

/**
 * An error's name, message and stack, or the thrown value as text. The name and message go first: Firefox's
 * stacks hold only the frames (V8's begin with the message), and a DOMException (a refused requestAdapter)
 * says what it is by its name.
 */
export function describeError(e: unknown): string {
  if (e === null || typeof e !== "object" || !("message" in e)) return String(e);
  const { name, message, stack } = e as { name?: string; message: unknown; stack?: string };
  return `${name ?? "Error"}: ${message}\n${stack ?? ""}`;
}
