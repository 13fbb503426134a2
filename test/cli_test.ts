import { deepStrictEqual, equal, throws } from "node:assert/strict";
import { parseRunArgs, UsageError } from "../experiments/cli.ts";
import { parseEvaluateArgs } from "../experiments/evaluate.ts";

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
  equal(parseRunArgs(["fashion_mda"]).runs[0].out, "results/fashion_mda");
});

Deno.test("cli: every error is one line naming the flag or value", () => {
  const cases: [string[], RegExp][] = [
    [[], /missing experiment name/],
    [["nope"], /unknown experiment "nope"/],
    [["fashion_mda", "extra"], /expected one experiment name/],
    [["fashion_mda", "--bogus", "1"], /bogus/],
    [["fashion_mda", "--epochs", "two"], /--epochs expects a number, got "two"/],
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
  ];
  for (const [args, re] of cases) {
    throws(() => parseRunArgs(args), (e: unknown) => {
      if (!(e instanceof UsageError)) throw new Error(`not a UsageError for ${args.join(" ")}: ${e}`);
      if (!re.test(e.message)) throw new Error(`"${e.message}" does not match ${re} for ${args.join(" ")}`);
      if (e.message.includes("\n")) throw new Error(`multi-line error for ${args.join(" ")}`);
      return true;
    });
  }
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
  throws(() => parseEvaluateArgs([]), /usage/);
  throws(() => parseEvaluateArgs(["a", "--test-limit", "x"]), /--test-limit must be a positive integer/);
});
