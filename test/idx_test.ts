// IDX parsing: round trips (plain and gzip, detected by content) and every structural failure, each a
// one-line DataError naming the file.

import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { DataError, encodeIdx, gunzipIfNeeded, isGzip, parseIdx } from "../lib/data/idx.ts";
import { Rng } from "../lib/rng.ts";

function randomBytes(rng: Rng, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => rng.int(256));
}

function imagesFile(rng: Rng, count: number, rows = 28, cols = 28): Uint8Array {
  return encodeIdx({ kind: "images", count, rows, cols, data: randomBytes(rng, count * rows * cols) });
}

function labelsFile(rng: Rng, count: number): Uint8Array {
  return encodeIdx({ kind: "labels", count, data: Uint8Array.from({ length: count }, () => rng.int(10)) });
}

/** Asserts a DataError whose single-line message starts with the file name and matches `pattern`. */
function assertDataError(f: () => unknown, file: string, pattern: RegExp): void {
  assertThrows(f, (e: unknown) => {
    if (!(e instanceof DataError)) throw new Error(`expected DataError, got ${e}`);
    if (!e.message.startsWith(`${file}: `)) throw new Error(`message does not name ${file}: ${e.message}`);
    if (e.message.includes("\n")) throw new Error(`message is not one line: ${e.message}`);
    if (!pattern.test(e.message)) throw new Error(`message does not match ${pattern}: ${e.message}`);
    return true;
  });
}

Deno.test("idx: images and labels round trip, plain and gzip, whatever the name", () => {
  const rng = new Rng(1);
  const data = randomBytes(rng, 3 * 28 * 28);
  const file = encodeIdx({ kind: "images", count: 3, rows: 28, cols: 28, data });
  assertEquals(Array.from(file.subarray(0, 16)), [0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28]);
  for (const bytes of [file, gzipSync(file)]) {
    const parsed = parseIdx(bytes, "images.bin");
    assertEquals(parsed.kind, "images");
    if (parsed.kind !== "images") return;
    assertEquals([parsed.count, parsed.rows, parsed.cols], [3, 28, 28]);
    assertEquals(parsed.data, data);
  }
  const labels = Uint8Array.from([9, 0, 3, 7, 7]);
  const lf = encodeIdx({ kind: "labels", count: 5, data: labels });
  assertEquals(Array.from(lf.subarray(0, 8)), [0, 0, 8, 1, 0, 0, 0, 5]);
  const parsed = parseIdx(new Uint8Array(gzipSync(lf)), "labels.gz");
  assertEquals(parsed, { kind: "labels", count: 5, data: labels });
  assertEquals(isGzip(gzipSync(lf)), true);
  assertEquals(isGzip(lf), false);
  assertEquals(gunzipIfNeeded(lf, "x"), lf);
});

Deno.test("idx: structural errors name the file and what is wrong", () => {
  const rng = new Rng(2);
  const images = imagesFile(rng, 4);
  const labels = labelsFile(rng, 4);
  const f = "dir/train-images-idx3-ubyte";
  assertDataError(() => parseIdx(new Uint8Array(0), f), f, /0 bytes is too short for an IDX header/);
  assertDataError(() => parseIdx(images.subarray(0, 3), f), f, /3 bytes is too short/);
  // Not IDX at all (a PNG), another data type (0x0d = float32), and 2 dimensions.
  assertDataError(
    () => parseIdx(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]), f),
    f,
    /magic number 0x89504e47 is not an IDX file of unsigned bytes: expected 0x00000803 \(images\) or 0x00000801/,
  );
  const float = images.slice();
  float[2] = 0x0d;
  assertDataError(() => parseIdx(float, f), f, /magic number 0x00000d03/);
  const twoDims = Uint8Array.from([0, 0, 8, 2, 0, 0, 0, 1, 0, 0, 0, 1, 7]);
  assertDataError(() => parseIdx(twoDims, f), f, /magic number 0x00000802/);
  // Header cut inside the dimension fields.
  assertDataError(
    () => parseIdx(images.subarray(0, 10), f),
    f,
    /10 bytes is too short for an IDX header of 3 dimensions/,
  );
  // A zero dimension.
  const zeroRows = images.slice();
  zeroRows.set([0, 0, 0, 0], 8);
  assertDataError(() => parseIdx(zeroRows, f), f, /dimension 1 of the IDX header is 0 \(dimensions 4x0x28\)/);
  // File length against the header: truncated data and trailing bytes.
  assertDataError(
    () => parseIdx(images.subarray(0, images.length - 1), f),
    f,
    new RegExp(
      `truncated: ${images.length - 1} bytes, but its header \\(4 images of 28x28\\) needs ${images.length}`,
    ),
  );
  const longer = new Uint8Array(labels.length + 2);
  longer.set(labels);
  assertDataError(
    () => parseIdx(longer, "l"),
    "l",
    /2 unexpected bytes after the data: 14 bytes, but its header \(4 labels\) needs 12/,
  );
  // A header claiming more images than the file holds (the count field is what is wrong).
  const moreImages = images.slice();
  moreImages.set([0, 0, 0, 5], 4);
  assertDataError(() => parseIdx(moreImages, f), f, /truncated: .* \(5 images of 28x28\)/);
});

Deno.test("idx: gzip errors (truncated, corrupted, bad checksum) are DataErrors naming the file", () => {
  const rng = new Rng(3);
  const gz = new Uint8Array(gzipSync(imagesFile(rng, 20)));
  const f = "x/t10k-images-idx3-ubyte.gz";
  assertDataError(
    () => parseIdx(gz.subarray(0, gz.length >> 1), f),
    f,
    /corrupt gzip data \(unexpected end of file\)/,
  );
  assertDataError(() => parseIdx(gz.subarray(0, 2), f), f, /corrupt gzip data/);
  const flipped = gz.slice();
  flipped[gz.length >> 1] ^= 0x55;
  assertDataError(() => parseIdx(flipped, f), f, /corrupt gzip data/);
  // The CRC-32 in the trailer covers the decompressed bytes.
  const badCrc = gz.slice();
  badCrc[gz.length - 6] ^= 1;
  assertDataError(() => parseIdx(badCrc, f), f, /corrupt gzip data \(incorrect data check\)/);
  // Gzip of something that is not IDX is caught by the structural checks after decompression.
  assertDataError(
    () => parseIdx(new Uint8Array(gzipSync(new Uint8Array([1, 2, 3, 4, 5]))), f),
    f,
    /magic number 0x01020304/,
  );
});

Deno.test("idx: encodeIdx refuses data that does not match its dimensions", () => {
  assertThrows(
    () => encodeIdx({ kind: "images", count: 2, rows: 2, cols: 2, data: new Uint8Array(7) }),
    /7 data bytes for dimensions 2x2x2/,
  );
});
