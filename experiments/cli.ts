// Command-line flags of `deno task experiment NAME [flags]`. Parsing is strict and happens before
// anything is written: an unknown experiment, unknown flag or bad value is one line and a non-zero exit.

import {
  type ExperimentConfig,
  EXPERIMENTS,
  type Hyperparameters,
  seedsExperiment,
  seedsRefusal,
} from "./config.ts";
import {
  checkInputDir,
  checkInputFile,
  checkNotSeedsFolder,
  checkOutputDir,
  type CommandSpec,
  helpText,
  numberFlag,
  type ParsedFlags,
  parseFlags,
  seedsFlag,
  stringFlag,
  UsageError,
} from "./flags.ts";

export { UsageError };

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
  /** A run's manifest.json whose conv and BatchNorm kernels this run uses instead of tuning. */
  kernelsFrom?: string;
  /** Time the kernel candidates again even where this machine's tuning cache has a choice. */
  retune: boolean;
  /** Whether the tuner may choose Winograd kernels (--no-winograd: only direct convolutions). */
  winograd: boolean;
  /** --pdf: each figure also as a PDF beside its SVG. */
  pdf: boolean;
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

/** Pinned values shown in the help, by flag. */
function pinnedSummary(e: ExperimentConfig): string {
  const p = e.pinned;
  const fields = [
    `epochs ${p.epochs}`,
    `batch-size ${p.batchSize}`,
    `lr ${p.lr}`,
    `lambda ${p.lambda}`,
    `latent-dim ${p.latentDim}`,
    `components ${p.components}`,
    `seed ${p.seed}`,
    `widths ${p.widths.join("-")}`,
    `head ${p.head}`,
    `loss ${p.loss}`,
    `augment ${p.augment ? "yes" : "no"}`,
  ];
  let runs = "";
  if (e.runs) {
    const varied = [...new Set(e.runs.flatMap((r) => Object.keys(r.overrides)))].join(", ");
    const ids = e.runs.length <= 4
      ? e.runs.map((r) => r.id).join(" ")
      : `${e.runs[0].id} ... ${e.runs[e.runs.length - 1].id}`;
    runs = `\n    ${e.runs.length} runs (each sets ${varied || "nothing"}), sub-folders ${ids}`;
  }
  return fields.join(", ") + runs;
}

/** The known experiments, one paragraph each, for the help of experiment and report. */
export function experimentsHelp(
  filter: (e: ExperimentConfig) => boolean = () => true,
  heading = "experiments (NAME; flags default to the values pinned here):",
): string {
  return heading + "\n" +
    Object.values(EXPERIMENTS).filter(filter).map((e) =>
      `  ${e.name} (version ${e.version}): ${e.description}\n    pinned: ${pinnedSummary(e)}`
    ).join("\n");
}

const PINNED = "the experiment's pinned value";

export const RUN_SPEC: CommandSpec = {
  name: "experiment",
  summary: "Trains a pinned experiment on Fashion-MNIST on the GPU (WebGPU) and writes its run folder: " +
    "history.jsonl, metrics.json, manifest.json, model.safetensors, resume.safetensors, figures and README.md.",
  positionals: [{ name: "NAME", meaning: "the experiment to run (listed below)" }],
  flags: [
    {
      name: "data",
      kind: "path",
      value: "DIR",
      meaning: "folder with the four Fashion-MNIST IDX files (gzipped or not)",
      default: "data/fashion-mnist, then /usr/share/datasets/fashion-mnist, else download",
    },
    { name: "out", kind: "path", value: "DIR", meaning: "run folder (created)", default: "results/NAME" },
    { name: "epochs", kind: "int", value: "N", meaning: "epochs to train", default: PINNED },
    { name: "batch-size", kind: "int", value: "N", meaning: "training batch, 1 to 256", default: PINNED },
    { name: "lr", kind: "number", value: "X", meaning: "Adam learning rate, > 0", default: PINNED },
    { name: "lambda", kind: "number", value: "X", meaning: "DNLL's lambda, > 0", default: PINNED },
    { name: "latent-dim", kind: "int", value: "N", meaning: "latent dimension D", default: PINNED },
    {
      name: "components",
      kind: "int",
      value: "N",
      meaning: "mixture components K per class (mda head)",
      default: PINNED,
    },
    {
      name: "seed",
      kind: "int",
      value: "N",
      meaning: "seed of init, shuffles and augmentation, >= 0",
      default: PINNED,
    },
    {
      name: "train-limit",
      kind: "int",
      value: "N",
      meaning: "use only the first N training images",
      default: "all 60000",
    },
    {
      name: "test-limit",
      kind: "int",
      value: "N",
      meaning: "use only the first N test images",
      default: "all 10000",
    },
    {
      name: "init",
      kind: "path",
      value: "CHECKPOINT",
      meaning: "start from this safetensors checkpoint",
      default: "fresh init from the seed",
    },
    {
      name: "kernels-from",
      kind: "path",
      value: "MANIFEST",
      meaning: "use the conv and BatchNorm kernels a run recorded in its manifest.json instead of tuning " +
        "(on the same adapter: that run's bits)",
      default: "tuned on a GPU, cached per machine; hand-picked on CPU adapters",
    },
    {
      name: "retune",
      kind: "boolean",
      meaning: "on a GPU, time the kernel candidates again even where this machine's tuning cache has a " +
        "choice (after timings taken on a busy GPU); the new times replace the kept ones",
      default: "off",
    },
    {
      name: "no-winograd",
      kind: "boolean",
      meaning: "on a GPU, leave the Winograd conv kernels out of the tuning: every convolution is summed " +
        "directly, as the CPU adapters' kernels do (Winograd rounds differently, with errors of the same size)",
      default: "the tuner may choose them",
    },
    {
      name: "pdf",
      kind: "boolean",
      meaning: "also write each figure as a vector PDF beside its SVG (X.svg -> X.pdf), for pdflatex",
      default: "SVG only",
    },
    {
      name: "resume",
      kind: "boolean",
      meaning:
        "continue the unfinished (or extend the finished) run in --out, to --epochs (never fewer than it trained)",
      default: "off",
    },
    {
      name: "seeds",
      kind: "string",
      value: "LIST",
      meaning:
        "run the experiment once per seed (e.g. 1-5 or 1,2,7), each in OUT/seed-N (a comparison: all its " +
        "runs in OUT/seed-N/ID), and summarise the seeds' final numbers as a distribution in OUT/README.md " +
        "(not for a sweep, which sets its own seeds)",
      default: "one run, the pinned seed",
    },
    {
      name: "shard",
      kind: "string",
      value: "I/N",
      meaning: "multi-run experiments: run only every N-th run, from the I-th",
      default: "all runs",
    },
  ],
  examples: [
    "deno task experiment fashion_mda_quick",
    "deno task experiment fashion_mda --epochs 10 --out results/fashion_mda_10",
    "deno task experiment fashion_lambda_sweep --shard 2/4",
  ],
  notes: [
    "Ctrl-C or SIGTERM (kill, timeout, Slurm) stops after the current step with a checkpoint that --resume " +
    "continues bit-identically; after a run killed outright, --resume continues from its last whole epoch " +
    "(or starts it again if it had none).",
  ],
};

/** The help of `deno task experiment`, with the known experiments and their pinned values. */
export function runHelp(): string {
  return helpText({ ...RUN_SPEC, notes: [...(RUN_SPEC.notes ?? []), experimentsHelp()] });
}

/** Parses `deno task experiment` arguments (throws UsageError); --help is the caller's (see runMain). */
export function parseRunArgs(args: string[]): RunPlan {
  return planFromFlags(parseFlags(RUN_SPEC, args));
}

export function planFromFlags(parsed: ParsedFlags): RunPlan {
  const values = {
    data: stringFlag(parsed, "data", "path"),
    out: stringFlag(parsed, "out", "path"),
    init: stringFlag(parsed, "init", "path"),
    kernelsFrom: stringFlag(parsed, "kernels-from", "path"),
    shard: stringFlag(parsed, "shard"),
    retune: parsed.values.retune === true,
    winograd: parsed.values["no-winograd"] !== true,
    pdf: parsed.values.pdf === true,
    resume: parsed.values.resume === true,
  };
  const positionals = parsed.positionals;
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0
        ? `missing experiment name (one of: ${Object.keys(EXPERIMENTS).join(", ")}); see --help`
        : `expected one experiment name, got ${positionals.length}: ${positionals.join(" ")}`,
    );
  }
  const name = positionals[0];
  const named = EXPERIMENTS[name];
  if (!named) {
    throw new UsageError(`unknown experiment "${name}" (known: ${Object.keys(EXPERIMENTS).join(", ")})`);
  }
  // --seeds repeats the experiment per seed (a comparison: all its runs per seed), then reports over them.
  const seeds = seedsFlag(parsed);
  const refusal = seeds && seedsRefusal(named);
  if (refusal) throw new UsageError(refusal);
  if (seeds && parsed.values.seed !== undefined) {
    throw new UsageError(
      "--seeds with --seed: each run of --seeds takes its seed from the list; drop one of the two",
    );
  }
  const experiment = seeds ? seedsExperiment(named, seeds) : named;
  const flags: Partial<Record<keyof Hyperparameters, number>> = {};
  for (const [flag, key] of Object.entries(FLAG_TO_KEY)) {
    const v = numberFlag(parsed, flag, INTEGER_KEYS.has(key));
    if (v !== undefined) flags[key] = v;
  }
  // A resumed run keeps the kernels it recorded. In a multi-run experiment --resume also starts the runs
  // not begun yet, and those take --kernels-from (a sweep across nodes then runs one set of kernels).
  if (values.kernelsFrom !== undefined && values.resume && !experiment.runs) {
    throw new UsageError(
      "--kernels-from with --resume: a resumed run keeps the kernels it recorded; drop one of the two",
    );
  }
  // Tuning happens only for runs that start: the kernels of a resumed or reproduced run are given, so the
  // flags that steer the tuner go with neither.
  for (const [flag, given] of [["--retune", values.retune], ["--no-winograd", !values.winograd]] as const) {
    if (given && values.kernelsFrom !== undefined) {
      throw new UsageError(
        `${flag} with --kernels-from: the kernels come from that manifest; drop one of the two`,
      );
    }
    if (given && values.resume && !experiment.runs) {
      throw new UsageError(
        `${flag} with --resume: a resumed run keeps the kernels it recorded; drop one of the two`,
      );
    }
  }
  const out = values.out ?? `results/${name}${seeds ? "_seeds" : ""}`;
  let shard: RunPlan["shard"];
  if (values.shard !== undefined) {
    const m = /^(\d+)\/(\d+)$/.exec(values.shard);
    if (!m || +m[1] < 1 || +m[2] < 1 || +m[1] > +m[2]) {
      throw new UsageError(`--shard expects I/N with 1 <= I <= N, got "${values.shard}"`);
    }
    if (!experiment.runs) {
      throw new UsageError(`--shard applies to multi-run experiments (or --seeds); ${name} is a single run`);
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
    if (seeds) sources.seed = "flag"; // from --seeds
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
      kernelsFrom: values.kernelsFrom,
      retune: values.retune,
      winograd: values.winograd,
      pdf: values.pdf,
      resume: values.resume,
    });
  });
  return { experiment, out, runs, shard };
}

/**
 * The checks of a plan against the file system, before any data is read or the GPU touched: --out must be
 * a folder (or not exist yet), --data an existing folder, --init and --kernels-from existing files.
 */
export function checkPlanPaths(plan: RunPlan): void {
  checkOutputDir("--out", plan.out);
  if (!plan.experiment.overSeeds) checkNotSeedsFolder("--out", plan.out);
  const req = plan.runs[0];
  if (!req) return;
  if (req.dataDir !== undefined) {
    checkInputDir("--data", req.dataDir, "a folder with the Fashion-MNIST IDX files");
  }
  if (req.init !== undefined) {
    checkInputFile("--init", req.init, "a safetensors checkpoint", "model.safetensors");
  }
  if (req.kernelsFrom !== undefined) {
    checkInputFile("--kernels-from", req.kernelsFrom, "a run's manifest.json", "manifest.json");
  }
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
 * The commands' last resort: a usage error (a bad flag or path found late) exits 2; other expected
 * failures (bad data, no adapter, a diverged loss, a bad checkpoint) print one line and exit 1; MDA_DEBUG=1 rethrows so the stack of anything else shows.
 */
export function exitWithError(e: unknown): never {
  if (e instanceof UsageError) {
    console.error(`error: ${e.message.split("\n")[0]}`);
    Deno.exit(2);
  }
  if (Deno.env.get("MDA_DEBUG") || !(e instanceof Error)) throw e;
  console.error(`error: ${e.message.split("\n")[0]}`);
  Deno.exit(1);
}
