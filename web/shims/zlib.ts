// node:zlib for the browser bundle: lib/data/idx.ts decompresses gzip with gunzipSync in Deno; the page
// decompresses with DecompressionStream before parsing, so this is only reached by a bug.
export function gunzipSync(_bytes: Uint8Array): Uint8Array {
  throw new Error("gzip data reached parseIdx in the browser: decompress it first (web/train.ts)");
}
