import { deepStrictEqual as assertEquals, ok as assert, rejects, throws } from "node:assert/strict";
import type { HostTensor } from "../lib/gpu/params.ts";
import {
  CheckpointError,
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  loadSafetensorsMetadata,
  saveSafetensors,
} from "../lib/io/safetensors.ts";
import { Rng } from "../lib/rng.ts";
import { randn } from "./util.ts";

const FILE = "bad.safetensors";

function f32(name: string, shape: number[], data: number[] | Float32Array): HostTensor {
  return { name, dtype: "F32", shape, data: Float32Array.from(data) };
}

function i64(name: string, shape: number[], data: bigint[]): HostTensor {
  return { name, dtype: "I64", shape, data: BigInt64Array.from(data) };
}

function bytesOf(t: HostTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** A file with exactly the given header text (no padding) and data buffer. */
function craft(
  header: string | object,
  buffer: Uint8Array | number = 0,
  lengthOverride?: bigint,
): Uint8Array {
  const text = typeof header === "string" ? header : JSON.stringify(header);
  const json = new TextEncoder().encode(text);
  const data = typeof buffer === "number" ? new Uint8Array(buffer) : buffer;
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function entry(dtype: string, shape: number[], begin: number, end: number) {
  return { dtype, shape, data_offsets: [begin, end] };
}

/** Decoding must fail with a CheckpointError whose one-line message names the file and matches `pattern`. */
function assertRejected(bytes: Uint8Array, pattern: RegExp): void {
  let caught: unknown;
  try {
    decodeSafetensors(bytes, FILE);
  } catch (error) {
    caught = error;
  }
  assert(caught instanceof CheckpointError, `expected a CheckpointError matching ${pattern}, got ${caught}`);
  const message = (caught as Error).message;
  assert(message.startsWith(`${FILE}: `), `message does not name the file: ${message}`);
  assert(!message.includes("\n"), `message is not one line: ${message}`);
  assert(pattern.test(message), `message ${JSON.stringify(message)} does not match ${pattern}`);
}

Deno.test("safetensors: F32 and 0-d I64 round trip bit-exactly with metadata and order kept", () => {
  const rng = new Rng(11);
  const special = Float32Array.of(NaN, -0, Infinity, -Infinity, 1e-45, 3.4028234663852886e38);
  const tensors: HostTensor[] = [
    f32("encoder.features.0.weight", [3, 1, 3, 3], randn(rng, 27)),
    f32("encoder.features.0.bias", [3], randn(rng, 3)),
    f32("encoder.features.1.running_var", [3], [1, 1, 1]),
    i64("encoder.features.1.num_batches_tracked", [], [235n * 100n]),
    i64("big", [2], [-(2n ** 63n), 2n ** 63n - 1n]),
    f32("special", [2, 3], special),
    f32("empty", [0, 5], []),
    f32("scalar", [], [0.25]),
    f32("head.mu", [10, 2, 2], randn(rng, 40, 3)),
  ];
  const metadata = { format: "pt", epoch: "7", "ünïcode": "✓ ok" };
  const bytes = encodeSafetensors(tensors, metadata);
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assertEquals(headerLength % 8, 0, "header padded to 8 bytes");
  const decoded = decodeSafetensors(bytes, "roundtrip");
  assertEquals(decoded.metadata, metadata);
  assertEquals(decoded.tensors.map((t) => t.name), tensors.map((t) => t.name));
  decoded.tensors.forEach((t, i) => {
    assertEquals(t.dtype, tensors[i].dtype, t.name);
    assertEquals(t.shape, tensors[i].shape, t.name);
    assertEquals(t.data.constructor, tensors[i].data.constructor, t.name);
    assertEquals(bytesOf(t), bytesOf(tensors[i]), t.name);
  });
  assertEquals((decoded.tensors[3].data as BigInt64Array)[0], 23500n);
  // Encoding the decoded tensors reproduces the file byte for byte.
  assertEquals(encodeSafetensors(decoded.tensors, decoded.metadata), bytes);
});

Deno.test("safetensors: exact bytes of a small file, and no metadata means an empty object", () => {
  const bytes = encodeSafetensors([f32("w", [2], [1, -2]), i64("n", [], [3n])]);
  const json = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"n":{"dtype":"I64","shape":[],' +
    '"data_offsets":[8,16]}}';
  const padded = json + " ".repeat(Math.ceil(json.length / 8) * 8 - json.length);
  const expected = craft(padded, Uint8Array.of(0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 3, 0, 0, 0, 0, 0, 0, 0));
  assertEquals(bytes, expected);
  assertEquals(decodeSafetensors(bytes, "x").metadata, {});
});

Deno.test("safetensors: reads files from other writers (unpadded header, header order != byte order)", () => {
  // As PyTorch's writer does: header keys sorted by name, bytes in another order, header not padded.
  const a = Float32Array.of(1.5, 2.5, 3.5);
  const n = BigInt64Array.of(42n);
  const buffer = new Uint8Array(20);
  buffer.set(new Uint8Array(n.buffer), 0);
  buffer.set(new Uint8Array(a.buffer), 8);
  const bytes = craft(
    { a: entry("F32", [3], 8, 20), n: entry("I64", [], 0, 8), __metadata__: { k: "v" } },
    buffer,
  );
  const { tensors, metadata } = decodeSafetensors(bytes, "foreign");
  assertEquals(metadata, { k: "v" });
  assertEquals(tensors.map((t) => t.name), ["n", "a"]);
  assertEquals(tensors[0].data, n);
  assertEquals(tensors[1].data, a);
  // A subarray view of a larger buffer decodes the same (offsets are relative to the view).
  const wrapped = new Uint8Array(bytes.length + 3);
  wrapped.set(bytes, 3);
  assertEquals(decodeSafetensors(wrapped.subarray(3), "view").tensors, tensors);
});

Deno.test("safetensors: malformed files are rejected with one line naming the file, tensor and problem", () => {
  const good = { w: entry("F32", [2, 2], 0, 16) };
  assertRejected(new Uint8Array(5), /not a safetensors file, or a truncated one: 5 bytes, too short/);
  assertRejected(
    craft(good, 16, 1000n),
    /not a safetensors file, or a truncated one: header length 1000 exceeds the \d+ bytes after the length prefix/,
  );
  assertRejected(craft(good, 16, 2n ** 64n - 1n), /header length 18446744073709551615 exceeds/);
  const badUtf8 = craft('{"w":1}');
  badUtf8[10] = 0xff;
  assertRejected(badUtf8, /header is not valid UTF-8/);
  assertRejected(craft('{"w": {"dtype": "F32",', 0), /header is not valid JSON/);
  assertRejected(craft("[1,2]"), /header is \[1,2\], expected a JSON object/);
  assertRejected(craft("null"), /header is null, expected a JSON object/);
  assertRejected(craft({ w: 3 }), /tensor w: header entry is 3, expected/);
  assertRejected(craft({ w: { shape: [2], data_offsets: [0, 8] } }, 8), /tensor w: missing dtype/);
  assertRejected(
    craft({ w: entry("F33", [2], 0, 8) }, 8),
    /tensor w: dtype "F33" is not supported \(expected F32 or I64\)/,
  );
  assertRejected(craft({ w: entry("F16", [2], 0, 4) }, 4), /tensor w: dtype "F16" is not supported/);
  assertRejected(craft({ w: { dtype: 5, shape: [2], data_offsets: [0, 8] } }, 8), /tensor w: dtype 5 is not/);
  assertRejected(craft({ w: { dtype: "F32", data_offsets: [0, 8] } }, 8), /tensor w: missing shape/);
  for (const shape of ["2", [2, -1], [1.5], [[2]], null, [2, "3"]]) {
    assertRejected(
      craft({ w: { dtype: "F32", shape, data_offsets: [0, 8] } }, 8),
      /tensor w: shape .* is not a list of non-negative integers/,
    );
  }
  assertRejected(craft({ w: { dtype: "F32", shape: [2] } }, 8), /tensor w: missing data_offsets/);
  for (const offsets of [[0], [0, 8, 9], [8, 0], [-8, 0], [0, "8"], "0,8", [0, 8.5]]) {
    assertRejected(
      craft({ w: { dtype: "F32", shape: [2], data_offsets: offsets } }, 8),
      /tensor w: data_offsets .* is not \[begin, end\] with 0 <= begin <= end/,
    );
  }
  assertRejected(
    craft({ w: { dtype: "F32", shape: [2], data_offsets: [0, 8], strides: [1] } }, 8),
    /tensor w: unexpected field "strides"/,
  );
  assertRejected(
    craft({ "encoder.proj.weight": entry("F32", [2, 3], 0, 20) }, 20),
    /tensor encoder\.proj\.weight: data_offsets \[0,20\] hold 20 bytes but shape \[2,3\] of F32 needs 24/,
  );
  assertRejected(
    craft({ n: entry("I64", [], 0, 4) }, 4),
    /tensor n: data_offsets \[0,4\] hold 4 bytes but shape \[\] of I64 needs 8/,
  );
  assertRejected(
    craft({ a: entry("F32", [2], 0, 8), b: entry("F32", [2], 8, 16) }, 12),
    /tensor b: data_offsets \[8,16\] run past the end of the 12-byte data buffer/,
  );
  assertRejected(
    craft({ a: entry("F32", [4], 0, 16), b: entry("F32", [2], 8, 16) }, 16),
    /tensor b: data_offsets \[8,16\] overlap tensor a \[0,16\]/,
  );
  assertRejected(
    craft({ a: entry("F32", [2], 0, 8), b: entry("F32", [2], 0, 8) }, 8),
    /tensor [ab]: data_offsets \[0,8\] overlap tensor [ab] \[0,8\]/,
  );
  assertRejected(
    craft({ a: entry("F32", [2], 4, 12) }, 12),
    /tensor a: data_offsets \[4,12\] leave a hole of 4 bytes at the start of the data buffer/,
  );
  assertRejected(
    craft({ a: entry("F32", [2], 0, 8), b: entry("F32", [1], 12, 16) }, 16),
    /tensor b: data_offsets \[12,16\] leave a hole of 4 bytes after tensor a \(which ends at 8\)/,
  );
  assertRejected(
    craft({ a: entry("F32", [2], 0, 8) }, 11),
    /3 trailing bytes after the last tensor \(the data buffer is 11 bytes, tensors end at 8\)/,
  );
  assertRejected(craft({}, 4), /4 trailing bytes after the last tensor/);
  assertRejected(
    craft(
      '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],' +
        '"data_offsets":[4,8]}}',
      8,
    ),
    /tensor a: duplicate name in header/,
  );
  // A duplicate key hidden in a nested object is fine; only top-level names must be unique.
  decodeSafetensors(
    craft('{"__metadata__":{"x":"1"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4),
    "ok",
  );
  assertRejected(craft('{"__metadata__":{},"__metadata__":{}}'), /duplicate __metadata__/);
  assertRejected(craft({ "": entry("F32", [1], 0, 4) }, 4), /empty tensor name/);
  assertRejected(craft({ __metadata__: [] }), /__metadata__ is \[\], expected an object of strings/);
  assertRejected(craft({ __metadata__: { epoch: 3 } }), /__metadata__ "epoch" is 3, expected a string/);
});

Deno.test("safetensors: tricky header text (escapes, braces in names) still finds every top-level name", () => {
  const names = ['we"ird{[,:name', "back\\slash", "ünï/cøde", "0", "10", "2"];
  const tensors = names.map((name, i) => f32(name, [1], [i]));
  const decoded = decodeSafetensors(encodeSafetensors(tensors, { "}{": '":' }), "tricky");
  assertEquals(decoded.tensors.map((t) => t.name), names);
  assertEquals(decoded.metadata, { "}{": '":' });
});

Deno.test("safetensors: encoding refuses inconsistent tensors with one clear line", () => {
  const cases: [HostTensor[], RegExp][] = [
    [[f32("w", [2, 2], [1, 2, 3])], /tensor w: 3 values for shape \[2,2\] \(expected 4\)/],
    [[f32("w", [1], [1]), f32("w", [1], [2])], /tensor w: duplicate name/],
    [[f32("w", [-1], [])], /tensor w: shape \[-1\] is not a list of non-negative integers/],
    [
      [{ name: "w", dtype: "I64", shape: [1], data: Float32Array.of(1) }],
      /tensor w: dtype "I64" with Float32Array/,
    ],
    [[{ name: "w", dtype: "F16" as "F32", shape: [1], data: Float32Array.of(1) }], /tensor w: dtype "F16"/],
    [[f32("", [1], [1])], /tensor name "" is not allowed/],
    [[f32("__metadata__", [1], [1])], /tensor name "__metadata__" is not allowed/],
  ];
  for (const [tensors, pattern] of cases) throws(() => encodeSafetensors(tensors), pattern);
  throws(
    () => encodeSafetensors([], { epoch: 3 as unknown as string }),
    /metadata "epoch" is 3, expected a string/,
  );
});

Deno.test("safetensors: save is atomic and load validates, naming the path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "safetensors_test_" });
  try {
    const path = `${dir}/model.safetensors`;
    const tensors = [f32("a", [2], [1, 2]), i64("n", [], [5n])];
    await saveSafetensors(path, tensors, { step: "1" });
    await saveSafetensors(path, [f32("a", [2], [3, 4]), i64("n", [], [6n])], { step: "2" });
    const loaded = await loadSafetensors(path);
    assertEquals(loaded.metadata, { step: "2" });
    assertEquals(loaded.tensors[0].data, Float32Array.of(3, 4));
    assertEquals(loaded.tensors[1].data, BigInt64Array.of(6n));
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assertEquals(names, ["model.safetensors"], "no temporary file left behind");

    await rejects(
      saveSafetensors(`${dir}/bad.safetensors`, [f32("a", [3], [1])]),
      (e: Error) =>
        e instanceof CheckpointError &&
        e.message === `${dir}/bad.safetensors: tensor a: 1 values for shape [3] (expected 3)`,
    );
    await rejects(
      loadSafetensors(`${dir}/missing.safetensors`),
      (e: Error) =>
        e instanceof CheckpointError &&
        e.message.startsWith(`${dir}/missing.safetensors: cannot read checkpoint`),
    );
    const truncated = (await Deno.readFile(path)).subarray(0, 30);
    await Deno.writeFile(`${dir}/truncated.safetensors`, truncated);
    await rejects(
      loadSafetensors(`${dir}/truncated.safetensors`),
      (e: Error) =>
        e instanceof CheckpointError && e.message.startsWith(
          `${dir}/truncated.safetensors: not a safetensors file, or a truncated one: header length`,
        ),
    );
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "model.safetensors",
      "truncated.safetensors",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: the metadata alone comes from the header, validated; the tensors are not read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "safetensors_test_" });
  try {
    const path = `${dir}/resume.safetensors`;
    await saveSafetensors(path, [f32("a", [2], [1, 2])], { epochs_done: "3", note: "ünï" });
    assertEquals(await loadSafetensorsMetadata(path), { epochs_done: "3", note: "ünï" });
    // The tensors' bytes are not looked at: a file cut after its header still gives its metadata, which
    // loadSafetensors refuses.
    const bytes = await Deno.readFile(path);
    const headerEnd = 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true));
    await Deno.writeFile(`${dir}/cut.safetensors`, bytes.subarray(0, headerEnd + 3));
    assertEquals(await loadSafetensorsMetadata(`${dir}/cut.safetensors`), { epochs_done: "3", note: "ünï" });
    await rejects(loadSafetensors(`${dir}/cut.safetensors`), CheckpointError);
    // The header's own faults are the same one-line errors as loadSafetensors's.
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(5), /: not a safetensors file, or a truncated one: 5 bytes, too short/],
      [
        bytes.subarray(0, 30),
        /: not a safetensors file, or a truncated one: header length \d+ exceeds the 22 bytes/,
      ],
      [craft({ __metadata__: { epoch: 3 } }), /: __metadata__ "epoch" is 3, expected a string/],
      [craft("[1,2]"), /: header is \[1,2\], expected a JSON object/],
    ];
    for (const [content, re] of cases) {
      await Deno.writeFile(`${dir}/bad.safetensors`, content);
      await rejects(loadSafetensorsMetadata(`${dir}/bad.safetensors`), (e: Error) => {
        assert(e instanceof CheckpointError && e.message.startsWith(`${dir}/bad.safetensors: `), e.message);
        assert(re.test(e.message), e.message);
        return true;
      });
    }
    await rejects(
      loadSafetensorsMetadata(`${dir}/missing.safetensors`),
      (e: Error) =>
        e instanceof CheckpointError && /missing\.safetensors: cannot read checkpoint/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
