// The one flag parser of every command (experiment, evaluate, report, figures, serve, bench): a command
// declares its flags once, and the same declaration gives the --help text and the error messages. Errors
// are our own one-line sentences naming the flag, the value and what was expected (node:util's parseArgs
// answers `--epochs -1` with "argument is ambiguous"); the commands turn them into exit code 2 before any
// data is read or the GPU is touched.

export class UsageError extends Error {}

/** How a flag's value is read: a flag of kind "boolean" takes no value. */
export type FlagKind = "boolean" | "string" | "path" | "int" | "number";

export interface FlagSpec {
  name: string;
  kind: FlagKind;
  /** The value's placeholder in the help, e.g. N, X, DIR. */
  value?: string;
  meaning: string;
  /** The default as shown in the help ("pinned" values are listed per experiment by the command). */
  default?: string;
}

export interface CommandSpec {
  /** e.g. "experiment": the help reads "deno task experiment ...". */
  name: string;
  /**
   * How the command is run, for a script without a task of its own, e.g. "deno run -A bench/conv2d_bench.ts":
   * the usage line and the unknown-flag message show it. Default: `deno task ${name}`.
   */
  invocation?: string;
  summary: string;
  /** Positional arguments in order, e.g. [{ name: "NAME", meaning: "...", optional: false }]. */
  positionals: { name: string; meaning: string; optional?: boolean }[];
  flags: FlagSpec[];
  examples: string[];
  /** Extra paragraphs after the flags (the known experiments, notes). */
  notes?: string[];
}

export interface ParsedFlags {
  help: boolean;
  /** Raw values by flag name; booleans are true when given. Check and convert them with the helpers. */
  values: Record<string, string | true>;
  positionals: string[];
}

/**
 * Splits args by the spec: `--flag value`, `--flag=value`, boolean `--flag`, `-h`/`--help`, and `--` to end
 * the flags. A value may start with "-" (so `--epochs -1` reaches the range check), but not with "--".
 * A flag given twice keeps its last value (so a script can append an override to a fixed command line).
 */
export function parseFlags(spec: CommandSpec, args: string[]): ParsedFlags {
  const byName = new Map(spec.flags.map((f) => [f.name, f]));
  const values: Record<string, string | true> = {};
  const positionals: string[] = [];
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg === "-h" || arg === "--help") {
      help = true;
      continue;
    }
    if (!arg.startsWith("-") || arg === "-" || /^-\d/.test(arg)) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--") ? arg.slice(2, eq < 0 ? undefined : eq) : "";
    const flag = byName.get(name);
    if (!flag) {
      const shown = eq < 0 ? arg : arg.slice(0, eq);
      throw new UsageError(
        `unknown flag ${shown} for \`${invocation(spec)}\` (known: ${
          spec.flags.map((f) => `--${f.name}`).join(" ")
        }; see --help)`,
      );
    }
    if (flag.kind === "boolean") {
      if (eq >= 0) throw new UsageError(`--${name} takes no value, got "${arg.slice(eq + 1)}"`);
      values[name] = true;
      continue;
    }
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      const next = args[i + 1];
      if (next === undefined || next.startsWith("--") || next === "-h") {
        throw new UsageError(
          `--${name} needs a value (${flag.value ?? "a value"}: ${flag.meaning})` +
            (next === undefined ? "" : `, got the flag ${next}`),
        );
      }
      value = next;
      i++;
    }
    values[name] = value;
  }
  return { help, values, positionals };
}

/** The value of a string or path flag; a path must not be empty. */
export function stringFlag(
  p: ParsedFlags,
  name: string,
  kind: "string" | "path" = "string",
): string | undefined {
  const v = p.values[name];
  if (v === undefined || v === true) return undefined;
  if (kind === "path" && v.trim() === "") throw new UsageError(`--${name} needs a path, got an empty string`);
  return v;
}

/** A number flag: finite, and an integer when asked. Range checks belong to the caller's message. */
export function numberFlag(p: ParsedFlags, name: string, integer: boolean): number | undefined {
  const raw = p.values[name];
  if (raw === undefined || raw === true) return undefined;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v)) {
    throw new UsageError(`--${name} expects ${integer ? "an integer" : "a number"}, got "${raw}"`);
  }
  if (integer && !Number.isInteger(v)) throw new UsageError(`--${name} expects an integer, got "${raw}"`);
  return v;
}

/** An integer flag within [min, max]. */
export function intFlag(p: ParsedFlags, name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  const v = numberFlag(p, name, true);
  if (v !== undefined && (v < min || v > max)) {
    throw new UsageError(
      `--${name} expects an integer ${
        max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`
      }, got ${v}`,
    );
  }
  return v;
}

/**
 * A --seeds value: seeds and ranges separated by commas ("1-5", "1,2,7", "0-2,10"), as the sorted distinct
 * seeds (non-negative integers, at most 1000 of them).
 */
export function seedsFlag(p: ParsedFlags, name = "seeds"): number[] | undefined {
  const raw = stringFlag(p, name);
  if (raw === undefined) return undefined;
  const bad = (why: string) =>
    new UsageError(`--${name} expects seeds and ranges separated by commas, e.g. 1-5 or 1,2,7: ${why}`);
  const seeds = new Set<number>();
  for (const part of raw.split(",")) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw bad(`"${part}" in "${raw}" is not a seed or a range`);
    const [lo, hi] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (hi < lo) throw bad(`the range "${part.trim()}" runs backwards`);
    if (hi - lo >= 1000 || seeds.size + hi - lo + 1 > 1000) throw bad(`more than 1000 seeds in "${raw}"`);
    for (let s = lo; s <= hi; s++) seeds.add(s);
  }
  if (seeds.size < 2) throw bad(`"${raw}" is one seed (for one run, use --seed)`);
  return [...seeds].sort((a, b) => a - b);
}

/** Exactly the positionals the command takes (optional ones may be missing). */
export function checkPositionals(spec: CommandSpec, p: ParsedFlags): void {
  const required = spec.positionals.filter((x) => !x.optional).length;
  const max = spec.positionals.length;
  if (p.positionals.length < required) {
    const missing = spec.positionals[p.positionals.length];
    throw new UsageError(`missing ${missing.name} (${missing.meaning}); see --help`);
  }
  if (p.positionals.length > max) {
    const expected = max === 0
      ? "no arguments"
      : `at most ${max} argument${max > 1 ? "s" : ""} (${spec.positionals.map((x) => x.name).join(" ")})`;
    throw new UsageError(
      `expected ${expected} besides flags, got ${p.positionals.length}: ${p.positionals.join(" ")}`,
    );
  }
}

function invocation(spec: CommandSpec): string {
  return spec.invocation ?? `deno task ${spec.name}`;
}

/** The --help text: usage, arguments, one line per flag with its meaning and default, notes, examples. */
export function helpText(spec: CommandSpec): string {
  const pos = spec.positionals.map((x) => (x.optional ? `[${x.name}]` : x.name)).join(" ");
  const lines = [`usage: ${invocation(spec)} ${pos}${pos ? " " : ""}[flags]`, "", spec.summary, ""];
  if (spec.positionals.length) {
    lines.push("arguments:");
    const w = Math.max(...spec.positionals.map((x) => x.name.length));
    for (const x of spec.positionals) lines.push(`  ${x.name.padEnd(w)}  ${x.meaning}`);
    lines.push("");
  }
  lines.push("flags:");
  const shown = [
    ...spec.flags,
    { name: "help", kind: "boolean", meaning: "print this help and exit" } as FlagSpec,
  ];
  const left = shown.map((f) => `--${f.name}${f.kind === "boolean" ? "" : ` ${f.value ?? "VALUE"}`}`);
  const w = Math.max(...left.map((l) => l.length));
  shown.forEach((f, i) => {
    const def = f.default !== undefined ? ` (default: ${f.default})` : "";
    lines.push(`  ${f.name === "help" ? "-h, " : "    "}${left[i].padEnd(w)}  ${f.meaning}${def}`);
  });
  for (const note of spec.notes ?? []) lines.push("", note);
  lines.push("", spec.examples.length > 1 ? "examples:" : "example:");
  for (const e of spec.examples) lines.push(`  ${e}`);
  return lines.join("\n");
}

/**
 * A command's entry: parse, print the help (exit 0) or a usage error (exit 2). Everything a command does
 * after this may assume its flags are valid.
 */
export function parseOrExit<T>(spec: CommandSpec, args: string[], check: (p: ParsedFlags) => T): T {
  let parsed: ParsedFlags;
  try {
    parsed = parseFlags(spec, args);
    if (parsed.help) {
      console.log(helpText(spec));
      Deno.exit(0);
    }
    return check(parsed);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}`);
      Deno.exit(2);
    }
    throw e;
  }
}

/**
 * A path that must be a directory if it exists (an output folder): a file in its way, or a folder that takes
 * no writes (read-only, another user's, /proc), is a usage error now, not after the data and the tuning.
 * The nearest folder that exists is probed with an empty folder created and removed at once.
 */
export function checkOutputDir(flag: string, dir: string, wanted = dir): void {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      // Created later; but a file somewhere above it would make mkdir fail: find that now.
      const parent = parentDir(dir);
      if (parent !== dir) checkOutputDir(flag, parent, wanted);
      return;
    }
    if (e instanceof Deno.errors.NotADirectory) {
      throw new UsageError(`${flag} ${dir}: a part of this path is a file, not a directory`);
    }
    throw e;
  }
  if (!st.isDirectory) throw new UsageError(`${flag} ${dir}: exists and is not a directory`);
  try {
    Deno.removeSync(Deno.makeTempDirSync({ dir, prefix: ".write-check-" }));
  } catch (e) {
    // Run without --allow-write (as the tests of usage errors do): nothing can be told, nothing is written.
    if (e instanceof Deno.errors.NotCapable) return;
    const where = dir === wanted ? "" : ` (in ${dir})`;
    // Deno's message ends with the call's name (": tmpdir"), which says nothing to the user.
    const why = (e as Error).message.replace(/: tmpdir.*$/, "");
    throw new UsageError(`${flag} ${wanted}: cannot create a folder there${where}: ${why}`);
  }
}

/** The folder holding `dir`: "a/b" -> "a", "a" -> ".", "/a" -> "/"; "." and "/" are their own. */
function parentDir(dir: string): string {
  const trimmed = dir.replace(/\/+$/, "");
  if (trimmed === "" || trimmed === ".") return dir;
  const slash = trimmed.lastIndexOf("/");
  return slash < 0 ? "." : slash === 0 ? "/" : trimmed.slice(0, slash);
}

/** Seeds as the shortest list --seeds reads back: runs of consecutive seeds as ranges, e.g. "1-5,7". */
export function formatSeeds(seeds: readonly number[]): string {
  const parts: string[] = [];
  const sorted = [...seeds].sort((a, b) => a - b);
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(j > i ? `${sorted[i]}-${sorted[j]}` : `${sorted[i]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/**
 * Refuses, for a command without --seeds, an output folder that `--seeds` wrote (it holds seed-N folders):
 * a report there would replace the seeds' report, and a run would land among them.
 */
export function checkNotSeedsFolder(flag: string, dir: string): void {
  let seeds: number[];
  try {
    seeds = [...Deno.readDirSync(dir)].flatMap((e) => {
      const m = e.isDirectory ? /^seed-(\d+)$/.exec(e.name) : null;
      return m ? [Number(m[1])] : [];
    });
  } catch {
    return; // not there yet (or not a folder: checkOutputDir says so)
  }
  if (seeds.length === 0) return;
  const list = formatSeeds(seeds);
  throw new UsageError(
    `${flag} ${dir} holds runs over seeds (seed-N folders for ${list}): add --seeds ${list}, or choose another folder`,
  );
}

/** A path that must be an existing directory (an input folder). */
export function checkInputDir(flag: string, dir: string, what = "a directory"): void {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(dir);
  } catch {
    throw new UsageError(`${flag} ${dir}: no such directory (expected ${what})`);
  }
  if (!st.isDirectory) throw new UsageError(`${flag} ${dir}: not a directory (expected ${what})`);
}

/**
 * A path that must be an existing file (an input file). `inRunFolder` names the file a run's folder holds
 * for this flag (model.safetensors, manifest.json): given the folder, the error names that file in it.
 */
export function checkInputFile(flag: string, path: string, what = "a file", inRunFolder?: string): void {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch {
    throw new UsageError(`${flag} ${path}: not found (expected ${what})`);
  }
  if (st.isFile) return;
  const inside = st.isDirectory && inRunFolder ? `${path.replace(/\/+$/, "")}/${inRunFolder}` : undefined;
  if (inside && isFile(inside)) {
    throw new UsageError(`${flag} ${path}: a folder, not ${what}; did you mean ${inside}?`);
  }
  throw new UsageError(`${flag} ${path}: not a file (expected ${what})`);
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
