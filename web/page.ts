// The parts of the training page (web/train.ts) that need no browser, so that Deno tests them directly
// (test/web_page_test.ts): its query parameters, the limits on the data, the progress bar and its times.
// A bad value throws an Error whose message is the page's one-line error.

import type { IdxImages, IdxLabels } from "../lib/data/idx.ts";

/** ?NAME=: an integer >= min (1, or 0 for a seed), else `fallback`. */
export function intParam(
  params: URLSearchParams,
  name: string,
  fallback: number | undefined,
  min: 0 | 1 = 1,
): number | undefined {
  const raw = params.get(name);
  if (raw === null) return fallback;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isSafeInteger(v) || v < min) {
    throw new Error(`?${name}= must be a ${min === 1 ? "positive" : "non-negative"} integer, got "${raw}"`);
  }
  return v;
}

/** A switch ?NAME=VALUE that takes one value (`what`, when given, says what it does): whether it is on. */
function switchParam(params: URLSearchParams, name: string, value: string, what?: string): boolean {
  const raw = params.get(name);
  if (raw !== null && raw !== value) {
    throw new Error(`?${name}= must be "${value}"${what ? ` (${what})` : ""}, got "${raw}"`);
  }
  return raw === value;
}

/** The page's switches (web/train.ts), each refused with the value it takes when given another. */
export function pageSwitches(params: URLSearchParams) {
  return {
    tuneBatchNorm: switchParam(params, "tune-batchnorm", "always"),
    retune: switchParam(params, "retune", "1"),
    noWinograd: switchParam(params, "winograd", "0", "leave the Winograd kernels out"),
    fresh: switchParam(params, "fresh", "1", "drop the run kept in this browser and train it again"),
  };
}

/**
 * A query string (location.search) without the parameter `name`, the rest as written: URLSearchParams would
 * write it anew (a "/" as %2F), and the address bar would change beyond the parameter taken out.
 */
export function withoutParam(search: string, name: string): string {
  const kept = search.replace(/^\?/, "").split("&")
    .filter((p) => p !== "" && !new URLSearchParams(p).has(name));
  return kept.length > 0 ? `?${kept.join("&")}` : "";
}

/**
 * The first `limit` images of a file and their labels (all of them without a limit). A limit above the
 * file's count is refused in the words of the CLI (lib/data/fashion.ts): cutting it silently would train
 * on less data than asked without a word. `param` names the limit (e.g. "train-limit"),
 * `imagesUrl` the file.
 */
export function split(
  images: IdxImages,
  labels: IdxLabels,
  limit: number | undefined,
  param: string,
  imagesUrl: string,
) {
  if (images.count !== labels.count) {
    throw new Error(`${imagesUrl}: ${images.count} images but ${labels.count} labels`);
  }
  if (images.rows !== 28 || images.cols !== 28) {
    throw new Error(`${imagesUrl}: images are ${images.rows}x${images.cols}, expected 28x28`);
  }
  if (limit !== undefined && limit > images.count) {
    throw new Error(`?${param}=${limit} exceeds the ${images.count} images in ${imagesUrl}`);
  }
  const count = limit ?? images.count;
  return {
    images: images.data.subarray(0, count * 784),
    labels: labels.data.subarray(0, count),
    count,
    rows: 28 as const,
    cols: 28 as const,
  };
}

/**
 * The progress bar's value in the whole run: epochs done in earlier visits count, so a run resumed after
 * epoch 50 of 100 starts at half, not empty. `images` of epoch `epoch` (1-based) are done.
 */
export function runFraction(epoch: number, epochs: number, images: number, perEpoch: number): number {
  return ((epoch - 1) * perEpoch + Math.min(perEpoch, images)) / (epochs * perEpoch);
}

/** "42 s", "2 min 5 s"; "?" for a time not known yet. */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  // Rounded before the split: 119.6 s is "2 min 0 s", not "1 min 60 s".
  const whole = Math.round(s);
  return whole >= 60 ? `${Math.floor(whole / 60)} min ${whole % 60} s` : `${whole} s`;
}
