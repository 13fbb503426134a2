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
 * Replaces the file at `path` with `data` atomically: a temporary file in the same directory, fsync,
 * rename. On failure the temporary file is removed and the error rethrown; the target is untouched.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  if (typeof path !== "string" || path === "" || path.endsWith("/")) {
    throw new Error(`writeFileAtomic: path ${JSON.stringify(path)} is not a file path`);
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
    await Deno.rename(tmp, path);
    created = false;
  } catch (error) {
    if (created) {
      try {
        await Deno.remove(tmp);
      } catch {
        // Already gone; the original error is the one worth reporting.
      }
    }
    throw error;
  }
  await syncDirectory(splitPath(path).dir);
}

/** Writes `value` as pretty-printed JSON (two-space indent) plus a trailing newline, atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const text = JSON.stringify(value, null, 2);
  if (text === undefined) throw new Error(`writeJsonAtomic: ${path}: value is not representable as JSON`);
  await writeFileAtomic(path, text + "\n");
}
