// Fashion-MNIST on the CPU: where the four files come from, their checksums, structural validation and
// the download. Everything here runs once per process; the GPU side is device.ts.
//
// Sources, in order: an explicit directory (--data DIR, no fallback: the user asked for it); a local
// copy in ./data/fashion-mnist; Debian's package dataset-fashion-mnist; otherwise the official files are
// downloaded into ./data/fashion-mnist, and each is renamed into place only after its checksum matched,
// so an interrupted or corrupted download never looks like data.

import { join } from "node:path";
import { DataError, gunzipIfNeeded, type IdxImages, type IdxLabels, isGzip, parseIdx } from "./idx.ts";
import { writeFileAtomic } from "../io/atomic.ts";

export { DataError } from "./idx.ts";

export const FASHION_FILES = [
  "train-images-idx3-ubyte",
  "train-labels-idx1-ubyte",
  "t10k-images-idx3-ubyte",
  "t10k-labels-idx1-ubyte",
] as const;
export type FashionFile = typeof FASHION_FILES[number];

/** SHA-256 of the decompressed official files (dnll.md section 6): Debian recompresses them. */
export const FASHION_SHA256: Readonly<Record<FashionFile, string>> = {
  "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
  "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
  "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
  "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
};

export const FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";
export const FASHION_LOCAL_DIR = "data/fashion-mnist";
export const FASHION_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist";
export const FASHION_CLASS_COUNT = 10;
const ROWS = 28;
const COLS = 28;
const REMEDIES = "install it with `apt-get install dataset-fashion-mnist`, or pass --data DIR " +
  "(a directory holding the four IDX files, gzipped or not)";

export interface SplitData {
  /** count*28*28 pixels, row-major. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  rows: 28;
  cols: 28;
}

export interface DataFileRecord {
  /** Official name without ".gz", e.g. "train-images-idx3-ubyte". */
  name: string;
  /** The file that was read. */
  path: string;
  /** SHA-256 of the decompressed bytes, lower-case hex. */
  sha256: string;
  /** True when sha256 is the official file's. */
  verified: boolean;
}

export interface FashionMnist {
  train: SplitData;
  test: SplitData;
  /** The directory the files were read from. */
  dir: string;
  files: DataFileRecord[];
  /** True when every file read (all four, or the two test files) is the official one. */
  verified: boolean;
}

/** The test split alone (loadFashionMnistTest). */
export type FashionMnistTest = Omit<FashionMnist, "train">;

export interface LoadOptions {
  /** --data DIR: read only from here. */
  dataDir?: string;
  /** --train-limit N: keep the first N training images. */
  trainLimit?: number;
  /** --test-limit N: keep the first N test images. */
  testLimit?: number;
  /** Download the official files when no local copy exists (default true). */
  download?: boolean;
  /** Download base URL; default $FASHION_MNIST_URL, else the official one. */
  baseUrl?: string;
  log?: (line: string) => void;
  /** Where a local copy is looked for and downloads go (default ./data/fashion-mnist). */
  localDir?: string;
  /** The Debian package's directory (default /usr/share/datasets/fashion-mnist). */
  systemDir?: string;
  /** Expected SHA-256 per file instead of the official ones (for mirrors of other data, and tests). */
  sha256?: Partial<Record<FashionFile, string>>;
  /** A download that receives nothing for this long is abandoned (default 30 s). */
  stallTimeoutMs?: number;
}

/** The file of one official name in `dir`, or undefined. Prefers the plain file when both exist. */
export interface Located {
  name: FashionFile;
  path: string;
  /** The other spelling also exists (and is ignored). */
  alsoFound?: string;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function locate(dir: string, name: FashionFile): Located | undefined {
  const plain = join(dir, name);
  const gz = join(dir, `${name}.gz`);
  const hasPlain = isFile(plain), hasGz = isFile(gz);
  if (hasPlain) return { name, path: plain, alsoFound: hasGz ? gz : undefined };
  if (hasGz) return { name, path: gz };
  return undefined;
}

/** The files in dir (plain or gzipped; all four unless `names` says), and which are missing; also used by
 * the results server. */
export function locateAll(
  dir: string,
  names: readonly FashionFile[] = FASHION_FILES,
): { found: Located[]; missing: FashionFile[] } {
  const found: Located[] = [], missing: FashionFile[] = [];
  for (const name of names) {
    const l = locate(dir, name);
    if (l) found.push(l);
    else missing.push(name);
  }
  return { found, missing };
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function displayDir(dir: string): string {
  return dir.startsWith("/") || dir.startsWith(".") ? dir : `./${dir}`;
}

function checkLimit(limit: number | undefined, option: string): void {
  if (limit === undefined) return;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new DataError(`${option} must be a positive integer, got ${limit}`);
  }
}

/** Reads, checks and returns Fashion-MNIST (see the module comment for where it comes from). */
export async function loadFashionMnist(opts: LoadOptions = {}): Promise<FashionMnist> {
  checkLimit(opts.trainLimit, "--train-limit");
  checkLimit(opts.testLimit, "--test-limit");
  const { split, ...read } = await loadFiles(FASHION_FILES, opts);
  const train = split("train-images-idx3-ubyte", "train-labels-idx1-ubyte", opts.trainLimit, "--train-limit");
  const test = split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", opts.testLimit, "--test-limit");
  return { train, test, ...read };
}

/** Only the test split, for commands that train nothing (evaluate): the two t10k files are all it looks for,
 * reads and downloads, from the same places and with the same checks as loadFashionMnist. */
export async function loadFashionMnistTest(
  opts: Omit<LoadOptions, "trainLimit"> = {},
): Promise<FashionMnistTest> {
  checkLimit(opts.testLimit, "--test-limit");
  const { split, ...read } = await loadFiles(TEST_FILES, opts);
  const test = split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", opts.testLimit, "--test-limit");
  return { test, ...read };
}

const TEST_FILES: readonly FashionFile[] = ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

/** Finds (or downloads), reads and checks the named files; `verified` when all are the official ones;
 * `split` pairs an images file with its labels. */
async function loadFiles(names: readonly FashionFile[], opts: LoadOptions) {
  const log = opts.log ?? ((line: string) => console.log(line));
  const expected: Record<FashionFile, string> = { ...FASHION_SHA256, ...opts.sha256 };

  let dir: string;
  if (opts.dataDir !== undefined) {
    dir = opts.dataDir;
    if (!isDirectory(dir)) throw new DataError(`--data ${dir}: no such directory; ${REMEDIES}`);
    const { missing } = locateAll(dir, names);
    if (missing.length > 0) {
      throw new DataError(
        `--data ${dir}: missing ${missing.map((m) => `${m}[.gz]`).join(", ")}; ${REMEDIES}`,
      );
    }
  } else {
    const localDir = opts.localDir ?? FASHION_LOCAL_DIR;
    const systemDir = opts.systemDir ?? FASHION_SYSTEM_DIR;
    const local = locateAll(localDir, names);
    if (local.missing.length === 0) dir = localDir;
    else if (locateAll(systemDir, names).missing.length === 0) dir = systemDir;
    else {
      const tried = `${displayDir(localDir)} and ${displayDir(systemDir)}`;
      const baseUrl = opts.baseUrl ?? Deno.env.get("FASHION_MNIST_URL") ?? FASHION_URL;
      if (opts.download === false) {
        throw new DataError(`Fashion-MNIST not found in ${tried} (downloading is off); ${REMEDIES}`);
      }
      log(
        `data: Fashion-MNIST not found in ${tried}; downloading ${local.missing.join(", ")} from ${baseUrl}`,
      );
      for (const name of local.missing) {
        const stallMs = opts.stallTimeoutMs ?? 30_000;
        await downloadVerified(name, baseUrl, localDir, expected[name], tried, log, stallMs);
      }
      dir = localDir;
    }
  }

  const files: DataFileRecord[] = [];
  const parsed = new Map<FashionFile, IdxImages | IdxLabels>();
  for (const { name, path, alsoFound } of locateAll(dir, names).found) {
    const bytes = readFile(path);
    const gz = isGzip(bytes);
    const raw = gunzipIfNeeded(bytes, path);
    const sha256 = await sha256Hex(raw);
    const item = parseIdx(raw, path);
    const verified = sha256 === expected[name];
    files.push({ name, path, sha256, verified });
    parsed.set(name, item);
    const what = item.kind === "images"
      ? `${item.count} images of ${item.rows}x${item.cols}`
      : `${item.count} labels`;
    log(
      `data: ${path} (${gz ? "gzip" : "plain"}, ${what}, ` +
        `${verified ? "verified" : "unverified: not the official file's SHA-256"})` +
        (alsoFound ? `; ignoring ${alsoFound}` : ""),
    );
  }
  const split = (
    imagesName: FashionFile,
    labelsName: FashionFile,
    limit: number | undefined,
    option: string,
  ) => {
    const imagesPath = files.find((f) => f.name === imagesName)!.path;
    const labelsPath = files.find((f) => f.name === labelsName)!.path;
    const images = parsed.get(imagesName)!, labels = parsed.get(labelsName)!;
    return toSplit(images, labels, imagesPath, labelsPath, limit, option);
  };
  return { dir, files, verified: files.every((f) => f.verified), split };
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function readFile(path: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch (e) {
    throw new DataError(`${path}: cannot read (${e instanceof Error ? e.message : e})`);
  }
}

/** Cross-file checks: kinds, 28x28 images, equal counts, labels below the class count; then the limit. */
function toSplit(
  images: IdxImages | IdxLabels,
  labels: IdxImages | IdxLabels,
  imagesPath: string,
  labelsPath: string,
  limit: number | undefined,
  option: string,
): SplitData {
  if (images.kind !== "images") {
    throw new DataError(`${imagesPath}: holds labels (1 dimension), expected images (3 dimensions)`);
  }
  if (labels.kind !== "labels") {
    throw new DataError(`${labelsPath}: holds images (3 dimensions), expected labels (1 dimension)`);
  }
  if (images.rows !== ROWS || images.cols !== COLS) {
    throw new DataError(`${imagesPath}: images are ${images.rows}x${images.cols}, expected ${ROWS}x${COLS}`);
  }
  if (images.count !== labels.count) {
    throw new DataError(
      `${labelsPath}: ${labels.count} labels, but ${imagesPath} holds ${images.count} images`,
    );
  }
  const bad = labels.data.findIndex((l) => l >= FASHION_CLASS_COUNT);
  if (bad >= 0) {
    const label = labels.data[bad];
    throw new DataError(
      `${labelsPath}: label ${label} at index ${bad} is not below the ${FASHION_CLASS_COUNT} classes`,
    );
  }
  let count = images.count;
  if (limit !== undefined) {
    if (limit > count) {
      throw new DataError(`${option} ${limit} exceeds the ${count} images in ${imagesPath}`);
    }
    count = limit;
  }
  return {
    images: images.data.subarray(0, count * ROWS * COLS),
    labels: labels.data.subarray(0, count),
    count,
    rows: ROWS,
    cols: COLS,
  };
}

/**
 * Downloads `${baseUrl}${name}.gz`, checks the decompressed bytes' SHA-256 and IDX structure in memory,
 * then writes a temporary file and renames it into place. Nothing is left behind on failure.
 */
async function downloadVerified(
  name: FashionFile,
  baseUrl: string,
  dir: string,
  expectedSha: string,
  tried: string,
  log: (line: string) => void,
  stallTimeoutMs: number,
): Promise<void> {
  const url = new URL(`${name}.gz`, baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`).href;
  const started = performance.now();
  let body: Uint8Array;
  try {
    body = await fetchWithProgress(url, name, log, stallTimeoutMs);
  } catch (e) {
    throw new DataError(
      `Fashion-MNIST not found in ${tried}, and downloading ${url} failed (${fetchFailure(e)}); ${REMEDIES}`,
    );
  }
  const raw = gunzipIfNeeded(body, `downloaded ${url}`);
  const sha = await sha256Hex(raw);
  if (sha !== expectedSha) {
    throw new DataError(
      `downloaded ${url}: SHA-256 of the decompressed file is ${sha}, expected ${expectedSha}; ` +
        `not saved (a corrupted download or a wrong mirror); ${REMEDIES}`,
    );
  }
  parseIdx(raw, `downloaded ${url}`);
  Deno.mkdirSync(dir, { recursive: true });
  // Keep the server's encoding; the loader detects gzip by content anyway.
  const final = join(dir, isGzip(body) ? `${name}.gz` : name);
  try {
    // Flushed before it is renamed into place: a power cut must not leave a cut file under the final name.
    await writeFileAtomic(final, body);
  } catch (e) {
    throw new DataError(`${final}: cannot save the download (${e instanceof Error ? e.message : e})`);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  log(`data: downloaded ${final} (${(body.length / 1e6).toFixed(1)} MB in ${seconds} s, SHA-256 verified)`);
}

/** Why a fetch failed, in words: Deno's "fetch failed" keeps the reason (DNS, refused) in `cause`. */
function fetchFailure(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause instanceof Error
    ? `: ${e.cause.message.replace(/^error sending request for url \([^)]*\): /, "")}`
    : "";
  return e.message + cause;
}

/** The response body; a progress line on a terminal (rewritten in place), one line per file otherwise. */
async function fetchWithProgress(
  url: string,
  name: string,
  log: (line: string) => void,
  stallTimeoutMs: number,
): Promise<Uint8Array> {
  const abort = new AbortController();
  const stalled = () => abort.abort(new Error(`no data for ${stallTimeoutMs / 1000} s`));
  let timer = setTimeout(stalled, stallTimeoutMs);
  const rearm = () => {
    clearTimeout(timer);
    timer = setTimeout(stalled, stallTimeoutMs);
  };
  const tty = Deno.stderr.isTerminal();
  const encoder = new TextEncoder();
  try {
    const response = await fetch(url, { signal: abort.signal });
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new Error(`HTTP ${response.status} ${response.statusText}`.trim());
    }
    const total = Number(response.headers.get("content-length") ?? 0);
    const totalText = total > 0 ? ` of ${(total / 1e6).toFixed(1)} MB` : "";
    if (!tty) log(`data: downloading ${url}${totalText}`);
    const chunks: Uint8Array[] = [];
    let received = 0;
    let lastShown = 0;
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rearm();
      chunks.push(value);
      received += value.length;
      const now = performance.now();
      if (tty && (now - lastShown > 100)) {
        lastShown = now;
        const pct = total > 0 ? ` (${Math.floor((100 * received) / total)}%)` : "";
        const line = `\rdownloading ${name}.gz: ${(received / 1e6).toFixed(1)} MB${totalText}${pct}`;
        Deno.stderr.writeSync(encoder.encode(line));
      }
    }
    if (tty) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
    // A server that adds Content-Encoding has the body decoded for us, so its length is not the header's.
    if (total > 0 && !response.headers.has("content-encoding") && received !== total) {
      throw new Error(`received ${received} of ${total} bytes`);
    }
    const body = new Uint8Array(received);
    let at = 0;
    for (const c of chunks) {
      body.set(c, at);
      at += c.length;
    }
    return body;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * For command-line entry points: load, or print `error: <message>` (one line, no stack trace) and exit
 * non-zero on a DataError.
 */
export async function loadFashionMnistOrExit(opts: LoadOptions = {}): Promise<FashionMnist> {
  try {
    return await loadFashionMnist(opts);
  } catch (e) {
    if (e instanceof DataError) {
      console.error(`error: ${e.message}`);
      Deno.exit(1);
    }
    throw e;
  }
}
