// A JSON file that may be missing or half-written (a run in progress, a folder that is no run's): read
// without throwing. No dependencies, so that a command that reads a run's manifest loads nothing else.

/** The file's JSON object, or undefined when it is missing or unreadable. */
export async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch {
    return undefined;
  }
}
