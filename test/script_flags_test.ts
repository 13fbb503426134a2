// The scripts beside the main commands (benches, browser tests, device kit) parse their flags with
// experiments/flags.ts too: --help prints a usage line with the way the script is really run and exits 0; an
// unknown flag or a value out of range is one line `error: ...`, exit 2. All of it before the GPU is touched,
// so these runs are quick and need no adapter.

import { equal, match, ok } from "node:assert/strict";
import { runDeno } from "./util.ts";

interface Script {
  path: string;
  /** How the script is run (its usage line and unknown-flag message show it). */
  invocation: string;
  /** A numeric flag out of its range and the start of the error it must give. */
  outOfRange?: [string[], RegExp];
}

const SCRIPTS: Script[] = [
  {
    path: "bench/backends_bench.ts",
    invocation: "deno run -A bench/backends_bench.ts",
    outOfRange: [["--rounds", "0"], /^error: --rounds expects an integer >= 1, got 0$/],
  },
  {
    path: "bench/conv2d_bench.ts",
    invocation: "deno run -A bench/conv2d_bench.ts",
    outOfRange: [["--batch", "0"], /^error: --batch expects an integer >= 1, got 0$/],
  },
  {
    // Has a task, and bench/bench.ts --implementations hands over to it.
    path: "bench/implementations.ts",
    invocation: "deno task bench:implementations",
    outOfRange: [["--batch", "0"], /^error: --batch expects an integer from 1 to 256, got 0$/],
  },
  {
    path: "bench/winograd_error.ts",
    invocation: "deno run bench/winograd_error.ts",
    outOfRange: [["--draws", "0"], /^error: --draws expects an integer >= 1, got 0$/],
  },
  {
    path: "bench/layers_bench.ts",
    invocation: "deno run -A bench/layers_bench.ts",
    outOfRange: [["--repeats", "0"], /^error: --repeats expects an integer >= 1, got 0$/],
  },
  {
    path: "tools/browser_tests.ts",
    invocation: "deno task test:browser",
    outOfRange: [["--timeout", "0"], /^error: --timeout must be a positive number of seconds, got 0$/],
  },
  { path: "tools/device/adapter.ts", invocation: "deno run -A tools/device/adapter.ts" },
  { path: "tools/device/summary.ts", invocation: "deno run -A tools/device/summary.ts" },
];

/** Asserts exit code 2 and a stderr of exactly one line, and returns that line. */
function oneLineError(what: string, r: { code: number; stderr: string }): string {
  equal(r.code, 2, `${what}: exit ${r.code}, stderr:\n${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  equal(lines.length, 1, `${what}: stderr is not one line:\n${r.stderr}`);
  return lines[0];
}

for (const s of SCRIPTS) {
  Deno.test(`${s.path}: --help, an unknown flag${s.outOfRange ? ", a value out of range" : ""}`, async () => {
    const help = await runDeno(["run", "-A", s.path, "--help"]);
    equal(help.code, 0, `${s.path} --help: exit ${help.code}, stderr:\n${help.stderr}`);
    ok(help.stdout.startsWith(`usage: ${s.invocation} `), `${s.path} --help:\n${help.stdout}`);
    match(help.stdout, /-h, --help +print this help and exit/);

    const unknown = oneLineError(
      `${s.path} --no-such-flag`,
      await runDeno(["run", "-A", s.path, "--no-such-flag"]),
    );
    ok(unknown.startsWith(`error: unknown flag --no-such-flag for \`${s.invocation}\``), unknown);

    if (s.outOfRange) {
      const [args, re] = s.outOfRange;
      match(oneLineError(`${s.path} ${args.join(" ")}`, await runDeno(["run", "-A", s.path, ...args])), re);
    }
  });
}
