import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { createFileWhole, writeFileAtomic, writeJsonAtomic } from "../lib/io/atomic.ts";

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "atomic_test_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function listing(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

function filled(length: number, byte: number): Uint8Array {
  return new Uint8Array(length).fill(byte);
}

Deno.test("atomic: creates, overwrites, writes strings as UTF-8, leaves no temporary file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/a.bin`;
    await writeFileAtomic(path, Uint8Array.of(1, 2, 3));
    assertEquals(await Deno.readFile(path), Uint8Array.of(1, 2, 3));
    await writeFileAtomic(path, "héllo ✓");
    assertEquals(await Deno.readTextFile(path), "héllo ✓");
    await writeFileAtomic(path, new Uint8Array(0));
    assertEquals((await Deno.readFile(path)).length, 0);
    // A subarray writes only its own bytes, not the whole underlying buffer.
    await writeFileAtomic(path, Uint8Array.of(9, 8, 7, 6, 5).subarray(1, 3));
    assertEquals(await Deno.readFile(path), Uint8Array.of(8, 7));
    assertEquals(listing(dir), ["a.bin"]);
  });
});

Deno.test("atomic: JSON is pretty-printed with a trailing newline", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/m.json`;
    await writeJsonAtomic(path, { a: 1, b: [true, null], c: "x" });
    assertEquals(
      await Deno.readTextFile(path),
      '{\n  "a": 1,\n  "b": [\n    true,\n    null\n  ],\n  "c": "x"\n}\n',
    );
    await rejects(writeJsonAtomic(path, undefined), /m\.json: value is not representable as JSON/);
    await rejects(writeJsonAtomic(path, { n: 1n }), TypeError);
    assertEquals(JSON.parse(await Deno.readTextFile(path)), { a: 1, b: [true, null], c: "x" });
    assertEquals(listing(dir), ["m.json"]);
  });
});

Deno.test("atomic: a failed write keeps the old target and removes its temporary file", async () => {
  await withTempDir(async (dir) => {
    // rename() cannot replace a non-empty directory: the failure comes after the temporary file exists.
    const blocked = `${dir}/blocked`;
    await Deno.mkdir(blocked);
    await Deno.writeTextFile(`${blocked}/keep.txt`, "old");
    await rejects(writeFileAtomic(blocked, "new"));
    assertEquals(await Deno.readTextFile(`${blocked}/keep.txt`), "old");
    assertEquals(listing(dir), ["blocked"]);

    // The directory does not exist: nothing is created anywhere.
    await rejects(writeFileAtomic(`${dir}/missing/x.txt`, "new"), Deno.errors.NotFound);
    assertEquals(listing(dir), ["blocked"]);

    // A read-only directory refuses the temporary file; the existing target is untouched. (root ignores
    // permission bits, so only check the target there.)
    const locked = `${dir}/locked`;
    await Deno.mkdir(locked);
    await Deno.writeTextFile(`${locked}/t.txt`, "old");
    await Deno.chmod(locked, 0o555);
    try {
      await writeFileAtomic(`${locked}/t.txt`, "new").catch(() => {});
      const now = await Deno.readTextFile(`${locked}/t.txt`);
      assert(now === "old" || now === "new", `target holds ${JSON.stringify(now)}`);
      const names = listing(locked);
      assertEquals(names, ["t.txt"], "no temporary file left");
    } finally {
      await Deno.chmod(locked, 0o755);
    }

    await rejects(writeFileAtomic("", "x"), /path "" is not a file path/);
    await rejects(writeFileAtomic(`${dir}/`, "x"), /is not a file path/);
  });
});

Deno.test("atomic: concurrent readers only ever see the whole old or the whole new content", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/big.bin`;
    const size = 1 << 20;
    const versions = [filled(size, 0x41), filled(size, 0x42)];
    await writeFileAtomic(path, versions[0]);
    let writing = true;
    let reads = 0;
    const reader = (async () => {
      while (writing) {
        const got = await Deno.readFile(path);
        reads++;
        assertEquals(got.length, size, `read ${reads} saw ${got.length} bytes`);
        const first = got[0];
        assert(first === 0x41 || first === 0x42, `read ${reads} starts with ${first}`);
        assert(got.every((b) => b === first), `read ${reads} mixes two versions`);
      }
    })();
    for (let i = 1; i <= 10; i++) await writeFileAtomic(path, versions[i % 2]);
    writing = false;
    await reader;
    assert(reads > 0, "the reader ran");
    assertEquals(await Deno.readFile(path), versions[0]);
    assertEquals(listing(dir), ["big.bin"]);
  });
});

Deno.test("atomic: concurrent writers to one path end with one complete version and no leftovers", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/race.txt`;
    const contents = Array.from({ length: 8 }, (_, i) => `version ${i} `.repeat(10_000));
    await Promise.all(contents.map((c) => writeFileAtomic(path, c)));
    assert(contents.includes(await Deno.readTextFile(path)), "final content is one whole version");
    assertEquals(listing(dir), ["race.txt"]);
  });
});

Deno.test("atomic: a bare file name writes into the current directory", async () => {
  await withTempDir(async (dir) => {
    const previous = Deno.cwd();
    Deno.chdir(dir);
    try {
      await writeFileAtomic("plain.txt", "x");
    } finally {
      Deno.chdir(previous);
    }
    assertEquals(await Deno.readTextFile(`${dir}/plain.txt`), "x");
    assertEquals(listing(dir), ["plain.txt"]);
  });
});

Deno.test("atomic: temporary files left by a killed process with this pid are passed over, not clobbered", async () => {
  await withTempDir(async (dir) => {
    // A container's processes often get the same pid at every start, and a resumed run writes its files in
    // the same order: the next temporary names may be taken by a run that was killed mid-write.
    const leftovers = Array.from({ length: 300 }, (_, i) => `.run.json.${Deno.pid}-${i + 1}.tmp`);
    for (const name of leftovers) await Deno.writeTextFile(`${dir}/${name}`, "half");
    await writeFileAtomic(`${dir}/run.json`, "whole");
    assertEquals(await Deno.readTextFile(`${dir}/run.json`), "whole");
    assertEquals(listing(dir), [...leftovers, "run.json"].sort());
    for (const name of leftovers) assertEquals(await Deno.readTextFile(`${dir}/${name}`), "half");
  });
});

Deno.test("atomic: createFileWhole creates once, whole; where the file exists it changes nothing", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/claim.json`;
    assertEquals(await createFileWhole(path, "first"), true);
    assertEquals(await createFileWhole(path, "second"), false);
    assertEquals(await Deno.readTextFile(path), "first");
    assertEquals(listing(dir), ["claim.json"]);
    // Of many creators at once, exactly one makes the file, and it holds that one's whole content.
    const racing = `${dir}/race.json`;
    const contents = Array.from({ length: 8 }, (_, i) => `creator ${i} `.repeat(10_000));
    const made = await Promise.all(contents.map((c) => createFileWhole(racing, c)));
    assertEquals(made.filter((m) => m).length, 1);
    assertEquals(await Deno.readTextFile(racing), contents[made.indexOf(true)]);
    assertEquals(listing(dir), ["claim.json", "race.json"]);
    await rejects(createFileWhole(`${dir}/missing/x.json`, "x"), Deno.errors.NotFound);
  });
});
