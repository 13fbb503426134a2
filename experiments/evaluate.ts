// `deno task evaluate CHECKPOINT [--data DIR] [--test-limit N] [--json]` (--help for more): evaluates a safetensors
// checkpoint (ours or PyTorch's, architecture read from its tensors) on the Fashion-MNIST test set, its
// inputs scaled as the model was trained (inputScaling).

import { dirname, join } from "node:path";
import { loadFashionMnistTest } from "../lib/data/fashion.ts";
import { DeviceSplit, FASHION_NORMALIZE, type Normalize } from "../lib/data/device.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { readJson } from "../lib/io/json.ts";
import { loadSafetensors } from "../lib/io/safetensors.ts";
import { Model } from "../lib/model.ts";
import { architectureFromTensors } from "../lib/train/architecture.ts";
import { Trainer } from "../lib/train/trainer.ts";
import type { EvalMetrics } from "../lib/types.ts";
import { exitWithError } from "./cli.ts";
import { EXPERIMENTS } from "./config.ts";
import {
  checkInputDir,
  checkInputFile,
  checkPositionals,
  type CommandSpec,
  intFlag,
  type ParsedFlags,
  parseFlags,
  parseOrExit,
  stringFlag,
  UsageError,
} from "./flags.ts";

export interface EvaluateRequest {
  checkpoint: string;
  dataDir?: string;
  testLimit?: number;
  /** --normalize: "none", or the mean and std of Normalize; undefined: as the checkpoint was trained. */
  normalize?: Normalize | "none";
  json: boolean;
}

export const EVALUATE_SPEC: CommandSpec = {
  name: "evaluate",
  summary:
    "Evaluates a safetensors checkpoint (ours, or PyTorch's saved with the notebook's state_dict names; " +
    "the architecture is read from its tensors) on the Fashion-MNIST test set: accuracy, NLL, ECE, Brier.",
  positionals: [{
    name: "CHECKPOINT",
    meaning: "a .safetensors file, e.g. results/fashion_mda_quick/model.safetensors",
  }],
  flags: [
    {
      name: "data",
      kind: "path",
      value: "DIR",
      meaning: "folder with the Fashion-MNIST test files (t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)",
      default: "data/fashion-mnist, then /usr/share/datasets/fashion-mnist, else download",
    },
    {
      name: "test-limit",
      kind: "int",
      value: "N",
      meaning: "evaluate the first N test images only",
      default: "all 10000",
    },
    {
      name: "normalize",
      kind: "string",
      value: "MEAN,STD|none",
      meaning: "the inputs' scaling after ToTensor: Normalize(MEAN, STD), or none; overrides the record",
      default: "as the checkpoint was trained: its run's manifest.json beside it, else the experiment its " +
        "metadata names; none without either (e.g. PyTorch's notebook)",
    },
    {
      name: "json",
      kind: "boolean",
      meaning: "also print one JSON object with the metrics on stdout",
      default: "off",
    },
  ],
  examples: ["deno task evaluate results/fashion_mda_quick/model.safetensors --json"],
};

/** Parses and checks `deno task evaluate` arguments (throws UsageError). */
export function parseEvaluateArgs(args: string[]): EvaluateRequest {
  return evaluateFromFlags(parseFlags(EVALUATE_SPEC, args));
}

function evaluateFromFlags(p: ParsedFlags): EvaluateRequest {
  checkPositionals(EVALUATE_SPEC, p);
  return {
    checkpoint: p.positionals[0],
    dataDir: stringFlag(p, "data", "path"),
    testLimit: intFlag(p, "test-limit", 1),
    normalize: normalizeFlag(stringFlag(p, "normalize")),
    json: p.values.json === true,
  };
}

function normalizeFlag(v: string | undefined): Normalize | "none" | undefined {
  if (v === undefined || v === "none") return v;
  const parts = v.split(",").map((s) => s.trim());
  const [mean, std] = parts.map(Number);
  if (parts.length !== 2 || parts.some((s) => s === "") || !Number.isFinite(mean) || !(std > 0)) {
    throw new UsageError(
      `--normalize expects MEAN,STD with STD > 0 (e.g. 0.2860,0.3530, the sweep's) or none, got "${v}"`,
    );
  }
  return { mean, std };
}

/** How the inputs are scaled for a checkpoint, and where that was read. */
export interface InputScaling {
  normalize?: Normalize;
  from: string;
}

/**
 * The inputs' scaling for a checkpoint: a model trained on normalised images (the sweep's augmentation)
 * gives meaningless metrics on raw ones, and a safetensors file holds weights only. In order: --normalize;
 * the run's manifest.json beside the checkpoint (its augment value; model.safetensors and resume.safetensors
 * alike); the experiment named in the checkpoint's metadata (`deno task experiment` writes it into
 * model.safetensors), if all its runs scale alike; else none, as the notebook trains.
 */
export async function inputScaling(
  req: EvaluateRequest,
  metadata: Record<string, string>,
): Promise<InputScaling> {
  const normalizeIf = (augment: boolean) => (augment ? FASHION_NORMALIZE : undefined);
  if (req.normalize !== undefined) {
    return { normalize: req.normalize === "none" ? undefined : req.normalize, from: "--normalize" };
  }
  const manifestPath = join(dirname(req.checkpoint), "manifest.json");
  const manifest = await readJson(manifestPath); // none, or not a run's: the other records decide
  const augment = (manifest?.hyperparameters as Record<string, { value?: unknown }> | undefined)?.augment
    ?.value;
  const named = metadata.experiment;
  if (typeof augment === "boolean" && (named === undefined || named === manifest?.experiment_name)) {
    return { normalize: normalizeIf(augment), from: manifestPath };
  }
  if (named !== undefined) {
    const e = EXPERIMENTS[named];
    // A run variant that does not set augment keeps the pinned value.
    const scalings = new Set(
      e ? [e.pinned.augment, ...(e.runs ?? []).map((r) => r.overrides.augment ?? e.pinned.augment)] : [],
    );
    if (e && scalings.size === 1) {
      return { normalize: normalizeIf([...scalings][0]), from: `the metadata's experiment ${named}` };
    }
    throw new UsageError(
      `CHECKPOINT ${req.checkpoint}: its metadata names experiment ${named}, ` +
        `${e ? "whose runs scale their inputs differently" : "which this version does not know"}, and no ` +
        `manifest.json of its run is beside it; say how it was trained with --normalize MEAN,STD or none`,
    );
  }
  return { from: "no record of its training (as the notebook: ToTensor alone)" };
}

/** "Normalize(0.2860, 0.3530)" or "none", with where it was read, for the command's log. */
export function describeScaling(s: InputScaling): string {
  const what = s.normalize ? `Normalize(${s.normalize.mean}, ${s.normalize.std})` : "none";
  return `input scaling: ${what} after ToTensor, from ${s.from}`;
}

/** The checks against the file system, before the checkpoint or the data is read. */
export function checkEvaluatePaths(req: EvaluateRequest): void {
  checkInputFile("CHECKPOINT", req.checkpoint, "a .safetensors checkpoint", "model.safetensors");
  if (req.dataDir !== undefined) {
    checkInputDir("--data", req.dataDir, "a folder with the Fashion-MNIST IDX files");
  }
}

export async function evaluateCheckpoint(
  req: EvaluateRequest,
  log: (line: string) => void = (l) => console.error(l),
): Promise<EvalMetrics> {
  const { tensors, metadata } = await loadSafetensors(req.checkpoint);
  const arch = architectureFromTensors(tensors, req.checkpoint);
  const scaling = await inputScaling(req, metadata);
  log(describeScaling(scaling));
  const data = await loadFashionMnistTest({ dataDir: req.dataDir, testLimit: req.testLimit, log });
  const gpu = await getGpu();
  const model = new Model(gpu, {
    ...arch,
    loss: arch.head === "softmax" ? "ce" : "dnll",
    lambda: 1,
    muInit: "independent",
    lr: 1e-3,
    seed: 0,
  });
  model.store.fromHost(tensors, req.checkpoint);
  const test = new DeviceSplit(gpu, data.test, { normalize: scaling.normalize });
  const trainer = new Trainer(gpu, model, undefined, test, data.test.labels, {
    batchSize: 256,
    seed: 0,
    augment: false,
  });
  const metrics = await trainer.evaluate();
  trainer.destroy();
  return metrics;
}

if (import.meta.main) {
  const req = parseOrExit(EVALUATE_SPEC, Deno.args, (p) => {
    const r = evaluateFromFlags(p);
    checkEvaluatePaths(r);
    return r;
  });
  try {
    const m = await evaluateCheckpoint(req);
    console.log(
      `${req.checkpoint}: n=${m.n} accuracy=${m.accuracy.toFixed(4)} nll=${m.nll.toFixed(4)} ` +
        `ece=${(100 * m.ece10).toFixed(2)}% (15 bins ${(100 * m.ece15).toFixed(2)}%) brier=${
          m.brier.toFixed(4)
        }`,
    );
    if (req.json) {
      console.log(JSON.stringify({
        n: m.n,
        accuracy: m.accuracy,
        nll: m.nll,
        ece: m.ece10,
        ece15: m.ece15,
        brier: m.brier,
      }));
    }
  } catch (e) {
    exitWithError(e);
  }
}
