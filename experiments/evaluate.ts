// `deno task evaluate CHECKPOINT [--data DIR] [--test-limit N] [--json]` (--help for more): evaluates a safetensors
// checkpoint (ours or PyTorch's, architecture read from its tensors) on the Fashion-MNIST test set.

import { loadFashionMnistTest } from "../lib/data/fashion.ts";
import { DeviceSplit } from "../lib/data/device.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { loadSafetensors } from "../lib/io/safetensors.ts";
import { Model } from "../lib/model.ts";
import { architectureFromTensors } from "../lib/train/architecture.ts";
import { Trainer } from "../lib/train/trainer.ts";
import type { EvalMetrics } from "../lib/types.ts";
import { exitWithError } from "./cli.ts";
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
} from "./flags.ts";

export interface EvaluateRequest {
  checkpoint: string;
  dataDir?: string;
  testLimit?: number;
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
    json: p.values.json === true,
  };
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
  const { tensors } = await loadSafetensors(req.checkpoint);
  const arch = architectureFromTensors(tensors, req.checkpoint);
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
  const test = new DeviceSplit(gpu, data.test);
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
