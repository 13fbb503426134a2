// Command-line flags of `deno task experiment NAME [flags]`. Parsing is strict and happens before
// anything is written: an unknown experiment, unknown flag or bad value is one line and a non-zero exit.

import { parseArgs } from "node:util";
import { type ExperimentConfig, EXPERIMENTS, type Hyperparameters } from "./config.ts";

export class UsageError extends Error {}

/** One run: a single-run experiment, or one variant of a comparison or sweep. */
export interface RunRequest {
  experiment: ExperimentConfig;
  /** The variant of a multi-run experiment (its id is the run's sub-folder). */
  variant?: { id: string; label: string };
  /** Pinned values with the flags applied. */
  hyper: Hyperparameters;
  /** For each hyperparameter: "pinned" or "flag". */
  sources: Record<string, "pinned" | "flag">;
  out: string;
  dataDir?: string;
  init?: string;
  resume: boolean;
}

const FLAG_TO_KEY: Record<string, keyof Hyperparameters> = {
  epochs: "epochs",
  "batch-size": "batchSize",
  lr: "lr",
  lambda: "lambda",
  "latent-dim": "latentDim",
  components: "components",
  seed: "seed",
  "train-limit": "trainLimit",
  "test-limit": "testLimit",
};

const INTEGER_KEYS = new Set<keyof Hyperparameters>([
  "epochs",
  "batchSize",
  "latentDim",
  "components",
  "seed",
  "trainLimit",
  "testLimit",
]);

export interface RunPlan {
  experiment: ExperimentConfig;
  /** The experiment's output folder (multi-run experiments put each run in a sub-folder). */
  out: string;
  /** The runs this invocation does (all of them, or this shard's). */
  runs: RunRequest[];
  shard?: { index: number; count: number };
}

export const USAGE =
  `usage: deno task experiment NAME [--data DIR] [--out DIR] [--epochs N] [--batch-size N] [--lr X]
       [--lambda X] [--latent-dim N] [--components N] [--seed N] [--train-limit N] [--test-limit N]
       [--init CHECKPOINT] [--resume] [--shard I/N]
experiments: ${Object.keys(EXPERIMENTS).join(", ")}`;

export function parseRunArgs(args: string[]): RunPlan {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        data: { type: "string" },
        out: { type: "string" },
        init: { type: "string" },
        resume: { type: "boolean" },
        shard: { type: "string" },
        help: { type: "boolean" },
        ...Object.fromEntries(Object.keys(FLAG_TO_KEY).map((k) => [k, { type: "string" as const }])),
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message.split("\n")[0]);
  }
  const { values, positionals } = parsed;
  if (values.help) throw new UsageError(USAGE);
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0
        ? `missing experiment name (one of: ${Object.keys(EXPERIMENTS).join(", ")})`
        : `expected one experiment name, got ${positionals.length}: ${positionals.join(" ")}`,
    );
  }
  const name = positionals[0];
  const experiment = EXPERIMENTS[name];
  if (!experiment) {
    throw new UsageError(`unknown experiment "${name}" (known: ${Object.keys(EXPERIMENTS).join(", ")})`);
  }
  const flags: Partial<Record<keyof Hyperparameters, number>> = {};
  for (const [flag, key] of Object.entries(FLAG_TO_KEY)) {
    const raw = (values as Record<string, unknown>)[flag];
    if (raw !== undefined) flags[key] = parseNumber(flag, raw as string, INTEGER_KEYS.has(key));
  }
  for (const [flag, v] of [["data", values.data], ["out", values.out], ["init", values.init]] as const) {
    if (v !== undefined && v.trim() === "") {
      throw new UsageError(`--${flag} needs a path, got an empty string`);
    }
  }
  const out = values.out ?? `results/${name}`;
  let shard: RunPlan["shard"];
  if (values.shard !== undefined) {
    const m = /^(\d+)\/(\d+)$/.exec(values.shard);
    if (!m || +m[1] < 1 || +m[2] < 1 || +m[1] > +m[2]) {
      throw new UsageError(`--shard expects I/N with 1 <= I <= N, got "${values.shard}"`);
    }
    if (!experiment.runs) {
      throw new UsageError(`--shard applies to multi-run experiments; ${name} is a single run`);
    }
    shard = { index: +m[1], count: +m[2] };
  }
  const variants = experiment.runs ?? [{ id: "", label: experiment.name, overrides: {} }];
  const runs: RunRequest[] = [];
  variants.forEach((variant, i) => {
    if (shard && i % shard.count !== shard.index - 1) return;
    const hyper: Hyperparameters = {
      ...structuredClone(experiment.pinned),
      ...structuredClone(variant.overrides),
    };
    const sources: Record<string, "pinned" | "flag"> = {};
    for (const key of Object.keys(hyper)) sources[key] = "pinned";
    for (const [key, v] of Object.entries(flags)) {
      (hyper as unknown as Record<string, number>)[key] = v;
      sources[key] = "flag";
    }
    if (hyper.head !== "mda" && sources.components !== "flag") hyper.components = 1;
    validate(hyper);
    runs.push({
      experiment,
      variant: experiment.runs ? { id: variant.id, label: variant.label } : undefined,
      hyper,
      sources,
      out: experiment.runs ? `${out}/${variant.id}` : out,
      dataDir: values.data,
      init: values.init,
      resume: values.resume ?? false,
    });
  });
  return { experiment, out, runs, shard };
}

function parseNumber(flag: string, raw: string, integer: boolean): number {
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v)) {
    throw new UsageError(`--${flag} expects a number, got "${raw}"`);
  }
  if (integer && !Number.isInteger(v)) throw new UsageError(`--${flag} expects an integer, got "${raw}"`);
  return v;
}

export function validate(h: Hyperparameters): void {
  const positiveInt = (flag: string, v: number | undefined) => {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
      throw new UsageError(`--${flag} must be a positive integer, got ${v}`);
    }
  };
  positiveInt("epochs", h.epochs);
  positiveInt("batch-size", h.batchSize);
  positiveInt("latent-dim", h.latentDim);
  positiveInt("components", h.components);
  positiveInt("train-limit", h.trainLimit);
  positiveInt("test-limit", h.testLimit);
  if (h.batchSize > 256) {
    throw new UsageError(
      `--batch-size must be at most 256 (the encoder's largest batch), got ${h.batchSize}`,
    );
  }
  if (!(h.lr > 0)) throw new UsageError(`--lr must be > 0, got ${h.lr}`);
  if (!(h.lambda > 0)) throw new UsageError(`--lambda must be > 0, got ${h.lambda}`);
  if (!Number.isSafeInteger(h.seed) || h.seed < 0) {
    throw new UsageError(`--seed must be a non-negative integer, got ${h.seed}`);
  }
  if (h.head !== "mda" && h.components !== 1) {
    throw new UsageError(`--components applies to the mda head only (this experiment's head is ${h.head})`);
  }
}

/**
 * The commands' last resort: expected failures (bad flags, bad data, no adapter, a diverged loss, a bad
 * checkpoint) print one line and exit 1; MDA_DEBUG=1 rethrows so the stack of anything else shows.
 */
export function exitWithError(e: unknown): never {
  if (Deno.env.get("MDA_DEBUG") || !(e instanceof Error)) throw e;
  console.error(`error: ${e.message.split("\n")[0]}`);
  Deno.exit(1);
}
