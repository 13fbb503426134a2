// IDX files (the MNIST family's format): gzip detection by content, structural validation with one-line
// errors that name the file, and a writer for subsets and test fixtures.
//
// Layout: two zero bytes, a data-type byte (0x08 = unsigned byte, the only type Fashion-MNIST uses), the
// number of dimensions, then each dimension as a big-endian u32, then the data in row-major order.

import { gunzipSync } from "node:zlib";

/** Bad input data: the message is one line that names the file and what is wrong with it. */
export class DataError extends Error {
  constructor(message: string) {
    // One line, whatever a wrapped system error put in its message.
    super(message.replace(/\s*\n\s*/g, " "));
    this.name = "DataError";
  }
}

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

export interface IdxImages {
  kind: "images";
  count: number;
  rows: number;
  cols: number;
  /** count*rows*cols pixels, row-major; a view into the decompressed bytes. */
  data: Uint8Array;
}

export interface IdxLabels {
  kind: "labels";
  count: number;
  /** count labels; a view into the decompressed bytes. */
  data: Uint8Array;
}

const hex8 = (x: number) => "0x" + (x >>> 0).toString(16).padStart(8, "0");

/** True when the bytes start with the gzip magic 1f 8b (whatever the file is called). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The decompressed bytes when `bytes` is gzip, otherwise `bytes` itself. */
export function gunzipIfNeeded(bytes: Uint8Array, file: string): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  let out: Uint8Array;
  try {
    out = gunzipSync(bytes);
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new DataError(`${file}: corrupt gzip data (${reason})`);
  }
  // node's Buffer is a Uint8Array subclass; hand out a plain view so callers see one type.
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Parses an IDX file of unsigned bytes with 3 dimensions (images) or 1 (labels), decompressing it first
 * when it is gzip. Checks the magic number, the dimension fields and that the file length matches the
 * header exactly; throws DataError otherwise.
 */
export function parseIdx(bytes: Uint8Array, file: string): IdxImages | IdxLabels {
  const raw = gunzipIfNeeded(bytes, file);
  if (raw.length < 4) {
    throw new DataError(`${file}: ${raw.length} bytes is too short for an IDX header`);
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const magic = view.getUint32(0, false);
  if (magic !== IDX_IMAGES_MAGIC && magic !== IDX_LABELS_MAGIC) {
    throw new DataError(
      `${file}: magic number ${hex8(magic)} is not an IDX file of unsigned bytes: expected ` +
        `${hex8(IDX_IMAGES_MAGIC)} (images) or ${hex8(IDX_LABELS_MAGIC)} (labels)`,
    );
  }
  const ndims = raw[3];
  const headerBytes = 4 + 4 * ndims;
  if (raw.length < headerBytes) {
    throw new DataError(`${file}: ${raw.length} bytes is too short for an IDX header of ${ndims} dimensions`);
  }
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const zero = dims.findIndex((d) => d === 0);
  if (zero >= 0) {
    throw new DataError(`${file}: dimension ${zero} of the IDX header is 0 (dimensions ${dims.join("x")})`);
  }
  const dataBytes = dims.reduce((a, b) => a * b, 1);
  const expected = headerBytes + dataBytes;
  const what = ndims === 3 ? `${dims[0]} images of ${dims[1]}x${dims[2]}` : `${dims[0]} labels`;
  if (raw.length < expected) {
    throw new DataError(
      `${file}: truncated: ${raw.length} bytes, but its header (${what}) needs ${expected} bytes`,
    );
  }
  if (raw.length > expected) {
    throw new DataError(
      `${file}: ${raw.length - expected} unexpected bytes after the data: ${raw.length} bytes, ` +
        `but its header (${what}) needs ${expected}`,
    );
  }
  const data = raw.subarray(headerBytes);
  return ndims === 3
    ? { kind: "images", count: dims[0], rows: dims[1], cols: dims[2], data }
    : { kind: "labels", count: dims[0], data };
}

/**
 * Encodes images [count, rows, cols] or labels [count] as an uncompressed IDX file of unsigned bytes
 * (for subsets of a data set, and for tests).
 */
export function encodeIdx(item: IdxImages | IdxLabels): Uint8Array {
  const dims = item.kind === "images" ? [item.count, item.rows, item.cols] : [item.count];
  const dataBytes = dims.reduce((a, b) => a * b, 1);
  if (item.data.length !== dataBytes) {
    throw new Error(`encodeIdx: ${item.data.length} data bytes for dimensions ${dims.join("x")}`);
  }
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + dataBytes);
  const view = new DataView(out.buffer);
  view.setUint32(0, item.kind === "images" ? IDX_IMAGES_MAGIC : IDX_LABELS_MAGIC, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(item.data, header);
  return out;
}
