// The commands' flags: every bad flag or value is our own one-line message naming it (UsageError, exit 2),
// found before any data is read or the GPU touched; --help on every command; output folders created.

import { deepStrictEqual, equal, match, ok, rejects, throws } from "node:assert/strict";
import { existsSync } from "node:fs";
import { checkPlanPaths, parseRunArgs, runHelp, UsageError } from "../experiments/cli.ts";
import {
  describeScaling,
  type EvaluateRequest,
  inputScaling,
  parseEvaluateArgs,
} from "../experiments/evaluate.ts";
import { checkPositionals, type CommandSpec, formatSeeds, parseFlags } from "../experiments/flags.ts";
import { parseReportArgs } from "../experiments/report.ts";
import { SERVE_SPEC, serveFromFlags } from "../experiments/serve.ts";
import { parseBenchArgs } from "../bench/cli.ts";
import { runDeno, tempDir } from "./util.ts";

/** Asserts that fn throws a one-line UsageError matching re. */
function usageError(what: string, fn: () => unknown, re: RegExp): void {
  throws(fn, (e: unknown) => {
    if (!(e instanceof UsageError)) throw new Error(`not a UsageError for ${what}: ${e}`);
    if (!re.test(e.message)) throw new Error(`"${e.message}" does not match ${re} for ${what}`);
    if (e.message.includes("\n")) throw new Error(`multi-line error for ${what}`);
    return true;
  });
}

Deno.test("cli: pinned values, flag overrides and their sources", () => {
  const plan = parseRunArgs([
    "fashion_mda_quick",
    "--epochs",
    "3",
    "--lr",
    "0.002",
    "--seed",
    "5",
    "--out",
    "/tmp/x",
  ]);
  equal(plan.runs.length, 1);
  const r = plan.runs[0];
  equal(r.experiment.name, "fashion_mda_quick");
  equal(r.hyper.epochs, 3);
  equal(r.hyper.lr, 0.002);
  equal(r.hyper.seed, 5);
  equal(r.hyper.batchSize, 256);
  deepStrictEqual(r.hyper.widths, [16, 16, 32, 32, 64, 64]);
  equal(r.sources.epochs, "flag");
  equal(r.sources.batchSize, "pinned");
  equal(r.out, "/tmp/x");
  equal(r.resume, false);
  equal(r.kernelsFrom, undefined);
  equal(parseRunArgs(["fashion_mda"]).runs[0].out, "results/fashion_mda");
  equal(
    parseRunArgs(["fashion_mda", "--kernels-from", "a/manifest.json"]).runs[0].kernelsFrom,
    "a/manifest.json",
  );
});

Deno.test("cli: every error is one line naming the flag or value", () => {
  const cases: [string[], RegExp][] = [
    [[], /missing experiment name/],
    [["nope"], /unknown experiment "nope"/],
    [["fashion_mda", "extra"], /expected one experiment name/],
    [["fashion_mda", "--bogus", "1"], /bogus/],
    [["fashion_mda", "--epochs", "two"], /--epochs expects an integer, got "two"/],
    [["fashion_mda", "--epochs", "1.5"], /--epochs expects an integer/],
    [["fashion_mda", "--epochs", "0"], /--epochs must be a positive integer/],
    [["fashion_mda", "--batch-size=-3"], /--batch-size must be a positive integer/],
    [["fashion_mda", "--batch-size", "512"], /--batch-size must be at most 256/],
    [["fashion_mda", "--lr", "0"], /--lr must be > 0/],
    [["fashion_mda", "--lambda=-1"], /--lambda must be > 0/],
    [["fashion_mda", "--seed=-1"], /--seed must be a non-negative integer/],
    [["fashion_mda", "--train-limit", "0"], /--train-limit must be a positive integer/],
    [["fashion_mda", "--out", ""], /--out needs a path/],
    [["fashion_mda", "--shard", "1/2"], /--shard applies to multi-run experiments/],
    [["fashion_lambda_sweep", "--shard", "3/2"], /--shard expects I\/N/],
    [["fashion_lambda_sweep", "--shard", "x"], /--shard expects I\/N/],
    [["fashion_lambda_sweep", "--shard", "0/2"], /--shard expects I\/N/],
    // the issue's case: the parser used to answer "argument is ambiguous"
    [["fashion_mda", "--epochs", "-1"], /^--epochs must be a positive integer, got -1$/],
    [["fashion_mda", "--epochs"], /^--epochs needs a value \(N: epochs to train\)$/],
    [["fashion_mda", "--out", "--resume"], /--out needs a value .*got the flag --resume/],
    [["fashion_mda", "--resume=yes"], /--resume takes no value, got "yes"/],
    [["fashion_mda", "-x"], /unknown flag -x for `deno task experiment`/],
    [["fashion_mda", "--lr", "abc"], /--lr expects a number, got "abc"/],
    [["fashion_mda", "--lr", "1e400"], /--lr expects a number, got "1e400"/],
    [["fashion_lda_vs_softmax", "--components", "2"], /--components applies to the mda head only/],
    [["fashion_mda", "--init", ""], /--init needs a path/],
    [
      ["fashion_mda", "--kernels-from", "m.json", "--resume"],
      /^--kernels-from with --resume: a resumed run keeps the kernels it recorded; drop one of the two$/,
    ],
    [["fashion_mda", "--data", " "], /--data needs a path/],
    [
      ["fashion_mda", "--retune", "--resume"],
      /^--retune with --resume: a resumed run keeps the kernels it recorded; drop one of the two$/,
    ],
    [
      ["fashion_mda", "--retune", "--kernels-from", "m.json"],
      /^--retune with --kernels-from: the kernels come from that manifest; drop one of the two$/,
    ],
    [
      ["fashion_mda", "--no-winograd", "--resume"],
      /^--no-winograd with --resume: a resumed run keeps the kernels it recorded; drop one of the two$/,
    ],
    [
      ["fashion_mda", "--no-winograd", "--kernels-from", "m.json"],
      /^--no-winograd with --kernels-from: the kernels come from that manifest; drop one of the two$/,
    ],
    [["fashion_mda", "--no-winograd=1"], /^--no-winograd takes no value, got "1"$/],
    [["fashion_mda", "--seeds", "1"], /^--seeds expects .*: "1" is one seed \(for one run, use --seed\)$/],
    [["fashion_mda", "--seeds", "5-2"], /^--seeds expects .*: the range "5-2" runs backwards$/],
    [["fashion_mda", "--seeds", "1,x"], /^--seeds expects .*: "x" in "1,x" is not a seed or a range$/],
    [["fashion_mda", "--seeds", "-1,2"], /^--seeds expects .*: "-1" in "-1,2" is not a seed or a range$/],
    [["fashion_mda", "--seeds", "0-1000"], /^--seeds expects .*: more than 1000 seeds in "0-1000"$/],
    [["fashion_mda", "--seeds", "1-3", "--seed", "4"], /^--seeds with --seed: each run of --seeds takes/],
    [
      ["fashion_lambda_sweep", "--seeds", "1-3"],
      /^--seeds: fashion_lambda_sweep sets each run's seed itself \(its runs cover seeds 1, 2, 3, 4, 5\)$/,
    ],
  ];
  for (const [args, re] of cases) {
    usageError(args.join(" "), () => parseRunArgs(args), re);
  }
  equal(parseRunArgs(["fashion_mda", "--retune"]).runs[0].retune, true);
  equal(parseRunArgs(["fashion_mda"]).runs[0].retune, false);
  equal(parseRunArgs(["fashion_mda", "--no-winograd"]).runs[0].winograd, false);
  equal(parseRunArgs(["fashion_mda"]).runs[0].winograd, true);
  equal(parseRunArgs(["fashion_mda", "--pdf"]).runs[0].pdf, true);
  // --seeds: a run per seed (sorted, distinct), in OUT/seed-N, OUT by default results/NAME_seeds; --shard splits them.
  const seeds = parseRunArgs(["fashion_mda", "--seeds", "3-5, 1,4"]);
  deepStrictEqual(seeds.runs.map((r) => [r.hyper.seed, r.sources.seed, r.out]), [
    [1, "flag", "results/fashion_mda_seeds/seed-1"],
    [3, "flag", "results/fashion_mda_seeds/seed-3"],
    [4, "flag", "results/fashion_mda_seeds/seed-4"],
    [5, "flag", "results/fashion_mda_seeds/seed-5"],
  ]);
  equal(seeds.experiment.report, "seeds");
  deepStrictEqual(
    parseRunArgs(["fashion_mda", "--seeds", "1-4", "--shard", "2/2", "--out", "o"]).runs.map((r) => r.out),
    ["o/seed-2", "o/seed-4"],
  );
  equal(parseReportArgs(["fashion_mda", "--seeds", "1-3"]).out, "results/fashion_mda_seeds");
  // --seeds on a comparison: all its runs per seed, in OUT/seed-N/ID, each with the seed as a flag.
  const pairs = parseRunArgs(["fashion_lda_vs_softmax", "--seeds", "2,1", "--shard", "1/3"]);
  deepStrictEqual(
    pairs.runs.map((r) => [r.hyper.seed, r.sources.seed, r.hyper.head, r.out, r.variant?.label]),
    [
      [1, "flag", "lda", "results/fashion_lda_vs_softmax_seeds/seed-1/lda", "LDA + DNLL, seed 1"],
      [2, "flag", "softmax", "results/fashion_lda_vs_softmax_seeds/seed-2/softmax", "Softmax + CE, seed 2"],
    ],
  );
  equal(pairs.experiment.report, "comparison-seeds");
  equal(parseReportArgs(["fashion_lda_vs_softmax", "--seeds", "1-3"]).experiment.runs?.length, 6);
  usageError(
    "report fashion_lambda_sweep --seeds 1-3",
    () => parseReportArgs(["fashion_lambda_sweep", "--seeds", "1-3"]),
    /^--seeds: fashion_lambda_sweep sets each run's seed itself/,
  );
  equal(parseRunArgs(["fashion_mda"]).runs[0].pdf, false);
  equal(parseRunArgs(["fashion_lambda_sweep", "--no-winograd", "--resume"]).runs[0].winograd, false);
  // In a sweep --resume starts the runs not begun yet: those may be timed again.
  equal(parseRunArgs(["fashion_lambda_sweep", "--retune", "--resume"]).runs[0].retune, true);
  // A sweep's --resume also starts the runs not begun yet: those take --kernels-from.
  equal(
    parseRunArgs(["fashion_lambda_sweep", "--kernels-from", "m.json", "--resume", "--shard", "1/45"]).runs[0]
      .kernelsFrom,
    "m.json",
  );
  equal(parseRunArgs(["fashion_mda", "--components", "3"]).runs[0].hyper.components, 3);
  equal(
    parseRunArgs(["fashion_mda", "--epochs", "1", "--epochs", "2"]).runs[0].hyper.epochs,
    2,
    "the last wins",
  );
});

Deno.test("cli: multi-run experiments expand into sub-folders and shards", () => {
  const all = parseRunArgs(["fashion_lambda_sweep", "--out", "/tmp/s"]);
  equal(all.runs.length, 45);
  equal(new Set(all.runs.map((r) => r.out)).size, 45);
  equal(all.runs.every((r) => r.hyper.augment && r.hyper.head === "lda" && r.hyper.latentDim === 9), true);
  const lambdas = [...new Set(all.runs.map((r) => r.hyper.lambda))];
  equal(lambdas.length, 9);
  equal(Math.min(...lambdas), 1e-3);
  equal(Math.max(...lambdas), 10);
  const shards = [1, 2, 3].map((i) => parseRunArgs(["fashion_lambda_sweep", "--shard", `${i}/3`]).runs);
  equal(shards.reduce((a, s) => a + s.length, 0), 45);
  equal(new Set(shards.flat().map((r) => r.out)).size, 45);
  const cmp = parseRunArgs(["fashion_lda_vs_softmax", "--epochs", "1"]);
  deepStrictEqual(cmp.runs.map((r) => [r.hyper.head, r.hyper.loss, r.hyper.epochs]), [["lda", "dnll", 1], [
    "softmax",
    "ce",
    1,
  ]]);
  equal(cmp.runs[1].out, "results/fashion_lda_vs_softmax/softmax");
});

Deno.test("cli: evaluate flags", () => {
  const r = parseEvaluateArgs(["m.safetensors", "--test-limit", "100", "--json"]);
  equal(r.checkpoint, "m.safetensors");
  equal(r.testLimit, 100);
  equal(r.json, true);
  equal(r.normalize, undefined);
  deepStrictEqual(parseEvaluateArgs(["m", "--normalize", "0.286, 0.353"]).normalize, {
    mean: 0.286,
    std: 0.353,
  });
  equal(parseEvaluateArgs(["m", "--normalize", "none"]).normalize, "none");
  const cases: [string[], RegExp][] = [
    [[], /missing CHECKPOINT/],
    [
      ["a", "--normalize", "0.3"],
      /^--normalize expects MEAN,STD with STD > 0 \(e\.g\. 0\.2860,0\.3530.* or none, got "0\.3"$/,
    ],
    [["a", "--normalize", "0.3,0"], /--normalize expects MEAN,STD with STD > 0/],
    [["a", "--normalize", "x,1"], /--normalize expects MEAN,STD/],
    [["a", "--normalize", ",1"], /--normalize expects MEAN,STD/],
    [["a", "b"], /expected at most 1 argument \(CHECKPOINT\)/],
    [["a", "--test-limit", "x"], /--test-limit expects an integer, got "x"/],
    [["a", "--test-limit", "0"], /--test-limit expects an integer >= 1, got 0/],
    [["a", "--json=1"], /--json takes no value/],
    [["a", "--out", "x"], /unknown flag --out for `deno task evaluate`/],
    [["a", "--data", ""], /--data needs a path/],
  ];
  for (const [args, re] of cases) usageError(`evaluate ${args.join(" ")}`, () => parseEvaluateArgs(args), re);
});

Deno.test("cli: evaluate scales the inputs as the checkpoint was trained", async () => {
  const tmp = await tempDir("mda-cli-scaling-");
  const req = (checkpoint: string, normalize?: EvaluateRequest["normalize"]) => ({
    checkpoint,
    normalize,
    json: false,
  });
  const sweep = { experiment: "fashion_lambda_sweep_quick", epoch: "2" };
  const mda = { experiment: "fashion_mda_quick", epoch: "2" };
  const normalised = { mean: 0.2860, std: 0.3530 };
  // No manifest beside: the experiment the metadata names decides; nothing at all: none, as the notebook.
  deepStrictEqual(await inputScaling(req(`${tmp}/m.safetensors`), sweep), {
    normalize: normalised,
    from: "the metadata's experiment fashion_lambda_sweep_quick",
  });
  equal((await inputScaling(req(`${tmp}/m.safetensors`), mda)).normalize, undefined);
  equal((await inputScaling(req(`${tmp}/m.safetensors`), {})).normalize, undefined);
  match(
    describeScaling(await inputScaling(req(`${tmp}/m.safetensors`), {})),
    /^input scaling: none after ToTensor, from no record/,
  );
  // One line (the pattern's ".*" crosses no newline), naming the flag to use.
  await rejects(
    () => inputScaling(req(`${tmp}/m.safetensors`), { experiment: "fashion_cifar" }),
    (e: Error) =>
      e instanceof UsageError &&
      /^CHECKPOINT .*m\.safetensors: its metadata names experiment fashion_cifar, which this version does not know, .*--normalize MEAN,STD or none$/
        .test(e.message),
  );

  // The run's manifest beside the checkpoint (resume.safetensors has no experiment in its metadata).
  const manifest = (augment: boolean, name = "fashion_lambda_sweep_quick") =>
    JSON.stringify({
      experiment_name: name,
      hyperparameters: { augment: { value: augment, source: "pinned" } },
    });
  await Deno.writeTextFile(`${tmp}/manifest.json`, manifest(true));
  deepStrictEqual(await inputScaling(req(`${tmp}/resume.safetensors`), { format: "x" }), {
    normalize: normalised,
    from: `${tmp}/manifest.json`,
  });
  // A manifest of another experiment than the checkpoint's own is not its run's: the metadata decides.
  await Deno.writeTextFile(`${tmp}/manifest.json`, manifest(true, "fashion_lambda_sweep"));
  equal((await inputScaling(req(`${tmp}/m.safetensors`), mda)).normalize, undefined);
  // --normalize overrides every record.
  await Deno.writeTextFile(`${tmp}/manifest.json`, manifest(false));
  deepStrictEqual(await inputScaling(req(`${tmp}/m.safetensors`, { mean: 0.5, std: 0.25 }), sweep), {
    normalize: { mean: 0.5, std: 0.25 },
    from: "--normalize",
  });
  equal((await inputScaling(req(`${tmp}/m.safetensors`, "none"), sweep)).normalize, undefined);
});

Deno.test("cli: report, bench and serve flags", async () => {
  const tmp = await tempDir("mda-cli-test-");
  await Deno.writeTextFile(`${tmp}/file`, "x");
  equal(parseReportArgs(["fashion_lambda_sweep"]).out, "results/fashion_lambda_sweep");
  equal(parseReportArgs(["fashion_lda_vs_softmax", "--out", `${tmp}/new/deep`]).out, `${tmp}/new/deep`);
  equal(parseReportArgs(["fashion_lambda_sweep", "--pdf"]).pdf, true);
  equal(parseReportArgs(["fashion_lambda_sweep"]).pdf, false);
  const report: [string[], RegExp][] = [
    [[], /missing NAME/],
    [
      ["nope"],
      /unknown experiment "nope" \(reported: fashion_lda_vs_softmax, fashion_lda_vs_softmax_quick, fashion_lambda_sweep, fashion_lambda_sweep_quick\)/,
    ],
    [["fashion_mda"], /fashion_mda is a single-run experiment/],
    [["fashion_lambda_sweep", "--out", ""], /--out needs a path/],
    [["fashion_lambda_sweep", "--out", `${tmp}/file`], /--out .*file: exists and is not a directory/],
    [
      ["fashion_lambda_sweep", "--out", `${tmp}/file/sub`],
      /--out .*file\/sub: a part of this path is a file/,
    ],
    [["fashion_lambda_sweep", "--epochs", "3"], /unknown flag --epochs for `deno task report`/],
  ];
  for (const [args, re] of report) usageError(`report ${args.join(" ")}`, () => parseReportArgs(args), re);

  deepStrictEqual(parseBenchArgs([]), {
    json: false,
    batch: 256,
    steps: undefined, // the adapter's default: 3 on a software adapter, 50 on a GPU

    widths: [64, 64, 128, 128, 256, 256],
    kernels: true,
    allVariants: false,
    winograd: true,
    torch: true,
    implementations: false,
    browser: false,
  });
  deepStrictEqual(
    [
      parseBenchArgs(["--implementations", "--browser"]).implementations,
      parseBenchArgs(["--implementations"]).browser,
    ],
    [true, false],
  );
  deepStrictEqual(parseBenchArgs(["--all-variants"]).allVariants, true);
  deepStrictEqual(parseBenchArgs(["--no-winograd"]).winograd, false);
  const bench: [string[], RegExp][] = [
    [["--batch", "0"], /--batch expects an integer from 1 to 256, got 0/],
    [["--batch", "300"], /--batch expects an integer from 1 to 256, got 300/],
    [["--steps", "0"], /--steps expects an integer >= 1, got 0/],
    [["--steps", "1.5"], /--steps expects an integer, got "1.5"/],
    [["--widths", "1,2"], /--widths expects 6 positive integers separated by commas, got "1,2"/],
    [["--widths", "a,b,c,d,e,f"], /--widths expects 6 positive integers/],
    [["--widths", "1,2,3,4,5,0"], /--widths expects 6 positive integers/],
    [["extra"], /bench takes no arguments besides flags, got: extra/],
    [["--jsn"], /unknown flag --jsn for `deno task bench`/],
    [["--browser"], /--browser goes with --implementations/],
    [["--implementations", "--no-winograd"], /^--no-winograd does not go with --implementations/],
  ];
  for (const [args, re] of bench) usageError(`bench ${args.join(" ")}`, () => parseBenchArgs(args), re);

  const serve = (args: string[]) => serveFromFlags(parseFlags(SERVE_SPEC, args));
  const cases: [string[], RegExp][] = [
    [[tmp, "--port", "70000"], /--port expects an integer from 0 to 65535, got 70000/],
    [[tmp, "--port", "-1"], /--port expects an integer from 0 to 65535, got -1/],
    [[tmp, "--port", "http"], /--port expects an integer, got "http"/],
    [[`${tmp}/missing`], /RESULTS_DIR .*missing: no such directory/],
    [[`${tmp}/file`], /RESULTS_DIR .*file: not a directory/],
    [[tmp, tmp], /expected at most 1 argument \(RESULTS_DIR\)/],
    [[tmp, "--host", "a b"], /--host expects an address such as 127.0.0.1, got "a b"/],
    [[tmp, "--data", `${tmp}/nodata`], /--data .*nodata: no such directory/],
  ];
  for (const [args, re] of cases) usageError(`serve ${args.join(" ")}`, () => serve(args), re);
  equal(serve([tmp]).host, "127.0.0.1");
  deepStrictEqual([...Deno.readDirSync(tmp)].map((e) => e.name), ["file"], "a parser wrote something");
});

/**
 * Runs a command's script without write or network permission: a usage error must come before any write
 * (a write would fail with a permission error instead of our message) and before data or the GPU (whose
 * logs would add lines to stderr).
 */
function command(script: string, args: string[], write = false) {
  const perms = write ? ["-A"] : ["--allow-read", "--allow-env", "--allow-sys", "--allow-run", "--allow-ffi"];
  return runDeno(["run", ...perms, script, ...args]);
}

const SCRIPTS: Record<string, string> = {
  experiment: "experiments/run.ts",
  evaluate: "experiments/evaluate.ts",
  report: "experiments/report.ts",
  figures: "experiments/redraw.ts",
  serve: "experiments/serve.ts",
  bench: "bench/bench.ts",
  "build:site": "web/site.ts",
};

Deno.test("cli: --help and -h on every command: usage, flags with defaults, an example; exit 0", async () => {
  for (const [name, script] of Object.entries(SCRIPTS)) {
    for (const flag of ["--help", "-h"]) {
      const r = await command(script, [flag]);
      equal(r.code, 0, `${name} ${flag}: ${r.stderr}`);
      match(r.stdout, new RegExp(`^usage: deno task ${name} `), name);
      match(r.stdout, /\n {6}--\S+.*\(default: /, `${name}: a flag with its default`);
      match(r.stdout, /-h, --help +print this help and exit/);
      match(r.stdout, new RegExp(`examples?:\n  deno task ${name}`), `${name}: an example`);
      equal(r.stderr.trim(), "", `${name} ${flag} printed on stderr`);
    }
  }
  const help = runHelp();
  match(
    help,
    /fashion_mda \(version 1\): The notebook.*\n {4}pinned: epochs 100, batch-size 256, lr 0\.001, lambda 0\.1/,
  );
  match(help, /fashion_mda_quick \(version \d+\).*\n {4}pinned: epochs 2,/);
  match(help, /fashion_lambda_sweep .*\n.*\n {4}45 runs \(each sets lambda, seed\)/);
  // help wins over other errors on the line
  equal((await command(SCRIPTS.experiment, ["nope", "--epochs", "x", "--help"])).code, 0);
});

Deno.test("cli: bad flags and paths exit 2 with one line, before data, GPU or any write", async () => {
  const tmp = await tempDir("mda-cli-exit-");
  await Deno.writeTextFile(`${tmp}/file`, "precious");
  await Deno.mkdir(`${tmp}/run`);
  for (const f of ["model.safetensors", "manifest.json"]) await Deno.writeTextFile(`${tmp}/run/${f}`, "{}");
  const cases: [string, string[], RegExp][] = [
    ["experiment", ["fashion_mda", "--epochs", "-1"], /^error: --epochs must be a positive integer, got -1$/],
    [
      "experiment",
      ["fashion_mda", "--out", `${tmp}/file`],
      /^error: --out .*\/file: exists and is not a directory$/,
    ],
    ["experiment", ["fashion_mda", "--out", `${tmp}/file/run`], /--out .*a part of this path is a file/],
    ["experiment", ["fashion_mda", "--data", `${tmp}/nodata`], /^error: --data .*nodata: no such directory/],
    ["experiment", ["fashion_mda", "--init", `${tmp}/none.safetensors`], /^error: --init .*: not found/],
    [
      "experiment",
      ["fashion_mda", "--kernels-from", `${tmp}/none.json`],
      /^error: --kernels-from .*none.json: not found \(expected a run's manifest.json\)$/,
    ],
    [
      "experiment",
      ["fashion_mda_quick", "--out", `${tmp}/r`, "--resume"],
      /^error: --resume: .*nothing to resume/,
    ],
    ["experiment", ["fashion_mda", "--bogus"], /^error: unknown flag --bogus/],
    ["evaluate", ["--help-me"], /^error: unknown flag --help-me for `deno task evaluate`/],
    ["evaluate", [`${tmp}/none.safetensors`], /^error: CHECKPOINT .*none.safetensors: not found/],
    // A run's folder where its file is meant: the error names the file in it.
    [
      "evaluate",
      [`${tmp}/run/`],
      /^error: CHECKPOINT .*\/run\/: a folder, not a \.safetensors checkpoint; did you mean .*\/run\/model\.safetensors\?$/,
    ],
    [
      "experiment",
      ["fashion_mda", "--kernels-from", `${tmp}/run`],
      /^error: --kernels-from .*\/run: a folder, not a run's manifest.json; did you mean .*\/run\/manifest\.json\?$/,
    ],
    ["evaluate", [tmp], /^error: CHECKPOINT .*: not a file \(expected a \.safetensors checkpoint\)$/],
    ["evaluate", [`${tmp}/file`, "--data", `${tmp}/nodata`], /^error: --data .*: no such directory/],
    [
      "report",
      ["fashion_lambda_sweep", "--out", `${tmp}/file`],
      /^error: --out .*: exists and is not a directory/,
    ],
    ["report", ["fashion_mda"], /^error: fashion_mda is a single-run experiment/],
    ["bench", ["--batch", "512"], /^error: --batch expects an integer from 1 to 256, got 512$/],
    ["serve", [tmp, "--port", "99999"], /^error: --port expects an integer from 0 to 65535, got 99999$/],
    ["serve", [`${tmp}/nope`], /^error: RESULTS_DIR .*nope: no such directory/],
    ["figures", [`${tmp}/nope`], /^error: RUN_DIR .*nope: no such directory/],
    // A folder that build:site did not write is never replaced (here: tmp itself, holding "file").
    ["build:site", [tmp], /^error: OUT .*: a folder that build:site did not write \(no \.webgpu-mda-site\);/],
    ["build:site", [`${tmp}/file`], /^error: OUT .*\/file: exists and is not a directory$/],
    ["build:site", [`${tmp}/site`, "--data", `${tmp}/nodata`], /^error: --data .*nodata: no such directory/],
  ];
  for (const [name, args, re] of cases) {
    const r = await command(SCRIPTS[name], args);
    equal(r.code, 2, `${name} ${args.join(" ")}: exit ${r.code}, ${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    equal(lines.length, 1, `${name} ${args.join(" ")}: ${r.stderr}`);
    match(lines[0], re);
  }
  equal(await Deno.readTextFile(`${tmp}/file`), "precious");
  deepStrictEqual([...Deno.readDirSync(tmp)].map((e) => e.name).sort(), ["file", "run"]);
});

Deno.test("cli: an output folder where nothing can be created fails before the data is read", {
  ignore: Deno.build.os !== "linux",
}, async () => {
  // procfs takes no new folders, even from root (who may write anywhere else).
  const cases: [string, string[], RegExp][] = [
    [
      "experiment",
      ["fashion_mda", "--out", "/proc/webgpu-mda/run"],
      /^error: --out \/proc\/webgpu-mda\/run: cannot create a folder there \(in \/proc\): No such file/,
    ],
    [
      "report",
      ["fashion_lambda_sweep", "--out", "/proc"],
      /^error: --out \/proc: cannot create a folder there: /,
    ],
  ];
  for (const [name, args, re] of cases) {
    const r = await command(SCRIPTS[name], args, true);
    equal(r.code, 2, `${name} ${args.join(" ")}: exit ${r.code}, ${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    equal(lines.length, 1, `${name} ${args.join(" ")}: ${r.stderr}`);
    match(lines[0], re);
  }
});

Deno.test("cli: report creates an output folder that does not exist", async () => {
  const tmp = await tempDir("mda-cli-report-");
  const out = `${tmp}/a/b/sweep`;
  const r = await command(SCRIPTS.report, ["fashion_lambda_sweep", "--out", out], true);
  equal(r.code, 0, r.stderr);
  ok(existsSync(`${out}/README.md`));
  match(await Deno.readTextFile(`${out}/README.md`), /0 of 45 runs finished/);
});

Deno.test("cli: a folder written by --seeds is refused without --seeds, so its report and runs stay", async () => {
  equal(formatSeeds([9, 5, 1, 2, 3, 7, 10]), "1-3,5,7,9-10");
  equal(formatSeeds([4]), "4");
  const tmp = await tempDir("mda-cli-seeds-");
  for (const s of [1, 2, 3, 7]) await Deno.mkdir(`${tmp}/seed-${s}/lda`, { recursive: true });
  await Deno.writeTextFile(`${tmp}/README.md`, "the seeds' report");
  const refused = new RegExp(
    `^--out ${tmp} holds runs over seeds \\(seed-N folders for 1-3,7\\): add --seeds 1-3,7, or choose another folder$`,
  );
  for (const name of ["fashion_lda_vs_softmax_quick", "fashion_mda_quick"]) {
    usageError(`experiment ${name}`, () => checkPlanPaths(parseRunArgs([name, "--out", tmp])), refused);
  }
  usageError("report", () => parseReportArgs(["fashion_lda_vs_softmax_quick", "--out", tmp]), refused);
  // With --seeds the folder is the one to use.
  checkPlanPaths(parseRunArgs(["fashion_lda_vs_softmax_quick", "--seeds", "1-3,7", "--out", tmp]));
  equal(parseReportArgs(["fashion_lda_vs_softmax_quick", "--seeds", "1-3,7", "--out", tmp]).out, tmp);
  // The command itself: exit 2, one line, nothing written.
  const r = await command(SCRIPTS.report, ["fashion_lda_vs_softmax_quick", "--out", tmp], true);
  equal(r.code, 2, r.stderr);
  match(r.stderr.trim(), /^error: --out .* holds runs over seeds/);
  equal(await Deno.readTextFile(`${tmp}/README.md`), "the seeds' report");
});

Deno.test("cli: serve on a port in use exits 2 naming the port", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    const r = await command(SCRIPTS.serve, ["results", "--port", String(port)], true);
    equal(r.code, 2, r.stderr);
    match(r.stderr.trim(), new RegExp(`^error: --port ${port} is in use; pick another \\(or 0\\)$`));
  } finally {
    listener.close();
  }
});

Deno.test("cli: a stray argument is named, with the arguments the command takes", () => {
  const spec = (positionals: CommandSpec["positionals"]): CommandSpec => ({
    name: "x",
    summary: "",
    positionals,
    flags: [],
    examples: [],
  });
  const none = spec([]);
  throws(
    () => checkPositionals(none, parseFlags(none, ["a"])),
    (e: Error) => e.message === "expected no arguments besides flags, got 1: a",
  );
  const two = spec([{ name: "DIR", meaning: "" }, { name: "NAME", meaning: "", optional: true }]);
  throws(
    () => checkPositionals(two, parseFlags(two, ["a", "b", "c"])),
    (e: Error) => e.message === "expected at most 2 arguments (DIR NAME) besides flags, got 3: a b c",
  );
});
