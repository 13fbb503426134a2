// node:path for the browser bundle: lib/data/fashion.ts joins file paths (only used in Deno).
export function join(...parts: string[]): string {
  return parts.filter((p) => p !== "").join("/").replace(/\/+/g, "/");
}
