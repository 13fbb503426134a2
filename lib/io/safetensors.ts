// safetensors checkpoints that PyTorch's load_state_dict accepts, and a strict reader for them.
//
// Layout: u64 little-endian header length N, N bytes of UTF-8 JSON (padded with spaces to a multiple of
// 8 so that the data buffer starts aligned), then the data buffer. The header maps each tensor name to
// {dtype, shape, data_offsets: [begin, end]} (offsets relative to the buffer) and may hold
// "__metadata__": {string: string}. The tensors' byte ranges tile the buffer exactly.
//
// Only the two dtypes a state_dict of ours holds are accepted: F32 and I64 (num_batches_tracked, 0-d).
// Every problem is reported as one CheckpointError line naming the file and, where there is one, the
// tensor.

import type { HostTensor } from "../gpu/params.ts";
import { writeFileAtomic } from "./atomic.ts";

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CheckpointError";
  }
}

type Dtype = HostTensor["dtype"];

const ITEM_BYTES: Record<Dtype, number> = { F32: 4, I64: 8 };
const METADATA_KEY = "__metadata__";
const ENTRY_FIELDS = ["dtype", "shape", "data_offsets"];
// The reference implementation refuses larger headers; a bigger one here means a corrupt length prefix.
const MAX_HEADER_BYTES = 100_000_000;

// Typed arrays use the host's byte order and the format is little-endian; every platform Deno and
// WebGPU run on is little-endian, so refuse loudly rather than write wrong bytes elsewhere.
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

function requireLittleEndian(): void {
  if (!HOST_IS_LITTLE_ENDIAN) throw new CheckpointError("safetensors: big-endian hosts are not supported");
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 80 ? text.slice(0, 77) + "..." : text;
}

function encodeTensors(
  tensors: HostTensor[],
  metadata: Record<string, string> | undefined,
  what: string,
): Uint8Array {
  requireLittleEndian();
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
      throw new CheckpointError(`${what}: metadata must be an object of strings, got ${describe(metadata)}`);
    }
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== "string") {
        throw new CheckpointError(
          `${what}: metadata ${describe(key)} is ${describe(value)}, expected a string`,
        );
      }
    }
    if (Object.keys(metadata).length > 0) header[METADATA_KEY] = { ...metadata };
  }
  const seen = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    if (typeof t.name !== "string" || t.name === "" || t.name === METADATA_KEY) {
      throw new CheckpointError(`${what}: tensor name ${describe(t.name)} is not allowed`);
    }
    if (seen.has(t.name)) throw new CheckpointError(`${what}: tensor ${t.name}: duplicate name`);
    seen.add(t.name);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new CheckpointError(
        `${what}: tensor ${t.name}: shape ${describe(t.shape)} is not a list of non-negative integers`,
      );
    }
    const arrayOk = (t.dtype === "F32" && t.data instanceof Float32Array) ||
      (t.dtype === "I64" && t.data instanceof BigInt64Array);
    if (!arrayOk) {
      throw new CheckpointError(
        `${what}: tensor ${t.name}: dtype ${describe(t.dtype)} with ${t.data?.constructor?.name} data ` +
          `(expected F32 with Float32Array or I64 with BigInt64Array)`,
      );
    }
    const count = elementCount(t.shape);
    if (t.data.length !== count) {
      throw new CheckpointError(
        `${what}: tensor ${t.name}: ${t.data.length} values for shape [${t.shape}] (expected ${count})`,
      );
    }
    const end = offset + t.data.byteLength;
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, end] };
    offset = end;
  }
  let json = JSON.stringify(header);
  const jsonBytes = new TextEncoder().encode(json);
  const padded = Math.ceil(jsonBytes.length / 8) * 8;
  json += " ".repeat(padded - jsonBytes.length);
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(new TextEncoder().encode(json), 8);
  let at = 8 + padded;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

/**
 * Serialises tensors (in the given order, which becomes the byte order in the file) and optional
 * string metadata into safetensors bytes.
 */
export function encodeSafetensors(tensors: HostTensor[], metadata?: Record<string, string>): Uint8Array {
  return encodeTensors(tensors, metadata, "safetensors");
}

/**
 * The top-level keys of a JSON object text, in textual order and with repeats (JSON.parse silently
 * keeps the last of duplicated keys). `text` must already have parsed as a JSON object.
 */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(text.slice(i, j + 1)));
      i = j;
    } else if (ch === "{" || ch === "[") {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (ch === "}" || ch === "]") {
      depth--;
    } else if (depth === 1 && ch === ",") {
      expectKey = true;
    } else if (depth === 1 && ch === ":") {
      expectKey = false;
    }
  }
  return keys;
}

interface Entry {
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

function parseEntry(name: string, info: unknown, bufferBytes: number, fail: (m: string) => never): Entry {
  const at = (m: string) => fail(`tensor ${name}: ${m}`);
  if (name === "") fail(`empty tensor name in header`);
  if (info === null || typeof info !== "object" || Array.isArray(info)) {
    at(`header entry is ${describe(info)}, expected {dtype, shape, data_offsets}`);
  }
  const record = info as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!ENTRY_FIELDS.includes(key)) {
      at(`unexpected field ${describe(key)} (expected dtype, shape, data_offsets)`);
    }
  }
  if (!("dtype" in record)) at("missing dtype");
  const dtype = record.dtype;
  if (dtype !== "F32" && dtype !== "I64") {
    at(`dtype ${describe(dtype)} is not supported (expected F32 or I64)`);
  }
  if (!("shape" in record)) at("missing shape");
  const shape = record.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    at(`shape ${describe(shape)} is not a list of non-negative integers`);
  }
  if (!("data_offsets" in record)) at("missing data_offsets");
  const offsets = record.data_offsets;
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
  ) {
    at(`data_offsets ${describe(offsets)} is not [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = offsets as number[];
  const dims = shape as number[];
  const needed = elementCount(dims) * ITEM_BYTES[dtype as Dtype];
  const held = end - begin;
  if (held !== needed) {
    at(`data_offsets [${begin},${end}] hold ${held} bytes but shape [${dims}] of ${dtype} needs ${needed}`);
  }
  if (end > bufferBytes) {
    at(`data_offsets [${begin},${end}] run past the end of the ${bufferBytes}-byte data buffer`);
  }
  return { name, dtype: dtype as Dtype, shape: [...dims], begin, end };
}

/**
 * Parses and validates a safetensors header: `bytes` holds the file's first bytes (the length prefix and
 * the whole header at least), `fileBytes` is the file's length. `file` names the source in errors.
 */
function decodeHeader(
  bytes: Uint8Array,
  fileBytes: number,
  file: string,
): { record: Record<string, unknown>; keys: string[]; metadata: Record<string, string>; dataStart: number } {
  requireLittleEndian();
  const fail = (message: string): never => {
    throw new CheckpointError(`${file}: ${message}`);
  };
  // Any file that is not a safetensors file (a manifest, a PyTorch .pt zip) or is cut short fails one of
  // the first two checks, so they say so before giving the numbers.
  const notOne = "not a safetensors file, or a truncated one";
  if (fileBytes < 8) fail(`${notOne}: ${fileBytes} bytes, too short for the 8-byte header length`);
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(fileBytes - 8)) {
    fail(
      `${notOne}: header length ${headerLength} exceeds the ${fileBytes - 8} bytes after the length prefix`,
    );
  }
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const dataStart = 8 + Number(headerLength);
  let text = "";
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart));
  } catch {
    fail("header is not valid UTF-8");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    fail(`header is not valid JSON (${(error as Error).message})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    fail(`header is ${describe(header)}, expected a JSON object`);
  }
  const record = header as Record<string, unknown>;
  const keys = topLevelKeys(text);
  const seen = new Set<string>();
  for (const key of keys) {
    if (seen.has(key)) {
      fail(
        key === METADATA_KEY ? "duplicate __metadata__ in header" : `tensor ${key}: duplicate name in header`,
      );
    }
    seen.add(key);
  }

  const metadata: Record<string, string> = {};
  if (METADATA_KEY in record) {
    const meta = record[METADATA_KEY];
    if (meta === null || typeof meta !== "object" || Array.isArray(meta)) {
      fail(`__metadata__ is ${describe(meta)}, expected an object of strings`);
    }
    for (const [key, value] of Object.entries(meta as Record<string, unknown>)) {
      if (typeof value !== "string") {
        fail(`__metadata__ ${describe(key)} is ${describe(value)}, expected a string`);
      }
      metadata[key] = value as string;
    }
  }
  return { record, keys, metadata, dataStart };
}

/**
 * Parses and validates safetensors bytes; `file` names the source in error messages. Tensors come back
 * in the order of their bytes in the file (= the order they were written).
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  file: string,
): { tensors: HostTensor[]; metadata: Record<string, string> } {
  const fail = (message: string): never => {
    throw new CheckpointError(`${file}: ${message}`);
  };
  const { record, keys, metadata, dataStart } = decodeHeader(bytes, bytes.length, file);
  const bufferBytes = bytes.length - dataStart;
  const entries = keys.filter((k) => k !== METADATA_KEY).map((name) =>
    parseEntry(name, record[name], bufferBytes, fail)
  );
  // Stable sort: zero-byte tensors sharing an offset keep their header order.
  const ordered = entries.map((e, i) => ({ e, i })).sort((a, b) =>
    a.e.begin - b.e.begin || a.e.end - b.e.end || a.i - b.i
  ).map(({ e }) => e);
  let previous: Entry | undefined;
  let covered = 0;
  for (const e of ordered) {
    if (e.begin < covered) {
      fail(
        `tensor ${e.name}: data_offsets [${e.begin},${e.end}] overlap tensor ${previous!.name} ` +
          `[${previous!.begin},${previous!.end}]`,
      );
    }
    if (e.begin > covered) {
      const after = previous
        ? `after tensor ${previous.name} (which ends at ${covered})`
        : "at the start of the data buffer";
      fail(
        `tensor ${e.name}: data_offsets [${e.begin},${e.end}] leave a hole of ${
          e.begin - covered
        } bytes ${after}`,
      );
    }
    covered = e.end;
    previous = e;
  }
  if (covered !== bufferBytes) {
    fail(
      `${bufferBytes - covered} trailing bytes after the last tensor (the data buffer is ${bufferBytes} ` +
        `bytes, tensors end at ${covered})`,
    );
  }

  const tensors: HostTensor[] = ordered.map((e) => {
    // slice() copies into a fresh, aligned buffer: the data buffer need not be 8-byte aligned in the file.
    const raw = bytes.slice(dataStart + e.begin, dataStart + e.end).buffer;
    const data = e.dtype === "F32" ? new Float32Array(raw) : new BigInt64Array(raw);
    return { name: e.name, dtype: e.dtype, shape: e.shape, data };
  });
  return { tensors, metadata };
}

/** Writes a safetensors file atomically (temporary file in the same directory, then rename). */
export async function saveSafetensors(
  path: string,
  tensors: HostTensor[],
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeTensors(tensors, metadata, path));
}

/** Reads and validates a safetensors file; every problem is a CheckpointError naming the file. */
export async function loadSafetensors(
  path: string,
): Promise<{ tensors: HostTensor[]; metadata: Record<string, string> }> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    throw new CheckpointError(`${path}: cannot read checkpoint (${(error as Error).message})`);
  }
  return decodeSafetensors(bytes, path);
}

/**
 * The `__metadata__` of a safetensors file, reading only its header (a resume checkpoint's progress before
 * the whole file is loaded); the header is validated as loadSafetensors does, the tensors are not.
 */
export async function loadSafetensorsMetadata(path: string): Promise<Record<string, string>> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    throw new CheckpointError(`${path}: cannot read checkpoint (${(error as Error).message})`);
  }
  try {
    const size = (await file.stat()).size;
    const prefix = await readExactly(file, Math.min(8, size));
    if (size < 8) return decodeHeader(prefix, size, path).metadata; // fails, naming the size
    const headerLength = new DataView(prefix.buffer).getBigUint64(0, true);
    // Past the file or over the limit: decodeHeader says which, before anything more is read.
    if (headerLength > BigInt(Math.min(size - 8, MAX_HEADER_BYTES))) {
      return decodeHeader(prefix, size, path).metadata;
    }
    const bytes = new Uint8Array(8 + Number(headerLength));
    bytes.set(prefix);
    bytes.set(await readExactly(file, Number(headerLength)), 8);
    return decodeHeader(bytes, size, path).metadata;
  } finally {
    file.close();
  }
}

/** The next `length` bytes of `file` (fewer only where the file ends first). */
async function readExactly(file: Deno.FsFile, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(out.subarray(filled));
    if (n === null) return out.subarray(0, filled);
    filled += n;
  }
  return out;
}
