// Whole-file writes that a reader (or a crash) can never observe half-done: the bytes go to a fresh
// temporary file in the target's own directory (rename is only atomic within one filesystem), are
// flushed to disk, and the temporary file is then renamed over the target. On any failure the
// temporary file is removed and the target keeps its old content.

const encoder = new TextEncoder();

// Distinguishes temporary files of concurrent writes from one process; the pid separates processes.
let writeSerial = 0;

function splitPath(path: string): { dir: string; base: string } {
  const slash = path.lastIndexOf("/");
  if (slash < 0) return { dir: ".", base: path };
  return { dir: slash === 0 ? "/" : path.slice(0, slash), base: path.slice(slash + 1) };
}

/** The temporary name used for `path`; ends in `.tmp` so that a leftover after a crash is recognisable. */
function temporaryPath(path: string): string {
  const { dir, base } = splitPath(path);
  writeSerial++;
  const name = `.${base}.${Deno.pid}-${writeSerial}.tmp`;
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}

/** Flushes the directory entry of the rename; not every platform lets a directory be opened, so best effort. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch {
    // The file content is already durable; only the rename's durability is left to the OS.
  } finally {
    handle?.close();
  }
}

/**
 * Puts `data` at `path` whole, through a flushed temporary file in the same directory: `place` moves the
 * temporary file to the target, or links it there (then it is removed). On any failure the temporary file
 * is removed and the error rethrown; the target is untouched.
 */
async function writeThroughTemporary(
  path: string,
  data: Uint8Array | string,
  place: (tmp: string) => Promise<"moved" | "linked">,
  caller: string,
): Promise<void> {
  if (typeof path !== "string" || path === "" || path.endsWith("/")) {
    throw new Error(`${caller}: path ${JSON.stringify(path)} is not a file path`);
  }
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  let tmp = "";
  let created = false;
  try {
    let file: Deno.FsFile | undefined;
    for (let attempt = 1; !file; attempt++) {
      tmp = temporaryPath(path);
      try {
        // createNew: never clobber a file that is not ours (a stale leftover or another writer's).
        file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
      } catch (error) {
        // A leftover of a process killed mid-write that had our pid: in a container every start may get
        // the same one, and a resumed run writes its files in the same order, so take the next name.
        if (!(error instanceof Deno.errors.AlreadyExists) || attempt === 1000) throw error;
      }
    }
    created = true;
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    // Moved, the name is free again: another writer may have taken it by now.
    if ((await place(tmp)) === "moved") created = false;
  } finally {
    if (created) {
      try {
        await Deno.remove(tmp);
      } catch {
        // Already gone; an error on the way is the one worth reporting.
      }
    }
  }
  await syncDirectory(splitPath(path).dir);
}

/**
 * Replaces the file at `path` with `data` atomically: a temporary file in the same directory, fsync,
 * rename. On failure the temporary file is removed and the error rethrown; the target is untouched.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const rename = async (tmp: string) => (await Deno.rename(tmp, path), "moved" as const);
  await writeThroughTemporary(path, data, rename, "writeFileAtomic");
}

/**
 * Creates the file at `path` holding `data`, whole or not at all: a temporary file hard-linked to the
 * target, which fails where the target exists (then false, and nothing changed). Unlike an exclusive
 * open, no other process can ever see the file empty or half-written: a claim that must not be taken for
 * a stale one while its owner is still writing it.
 */
export async function createFileWhole(path: string, data: Uint8Array | string): Promise<boolean> {
  let made = true;
  await writeThroughTemporary(path, data, async (tmp) => {
    try {
      await Deno.link(tmp, path);
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      made = false;
    }
    return "linked";
  }, "createFileWhole");
  return made;
}

/** Writes `value` as pretty-printed JSON (two-space indent) plus a trailing newline, atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const text = JSON.stringify(value, null, 2);
  if (text === undefined) throw new Error(`writeJsonAtomic: ${path}: value is not representable as JSON`);
  await writeFileAtomic(path, text + "\n");
}
