// `deno task evaluate CHECKPOINT [--data DIR] [--test-limit N] [--json]`: evaluates a safetensors
// checkpoint (ours or PyTorch's, architecture read from its tensors) on the Fashion-MNIST test set.

import { parseArgs } from "node:util";
import { loadFashionMnist } from "../lib/data/fashion.ts";
import { DeviceSplit } from "../lib/data/device.ts";
import { getGpu } from "../lib/gpu/device.ts";
import { loadSafetensors } from "../lib/io/safetensors.ts";
import { Model } from "../lib/model.ts";
import { architectureFromTensors } from "../lib/train/architecture.ts";
import { Trainer } from "../lib/train/trainer.ts";
import type { EvalMetrics } from "../lib/types.ts";
import { exitWithError } from "./cli.ts";

export interface EvaluateRequest {
  checkpoint: string;
  dataDir?: string;
  testLimit?: number;
  json: boolean;
}

export function parseEvaluateArgs(args: string[]): EvaluateRequest {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: { data: { type: "string" }, "test-limit": { type: "string" }, json: { type: "boolean" } },
    });
  } catch (e) {
    throw new Error((e as Error).message.split("\n")[0]);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    throw new Error("usage: deno task evaluate CHECKPOINT [--data DIR] [--test-limit N] [--json]");
  }
  let testLimit: number | undefined;
  if (values["test-limit"] !== undefined) {
    testLimit = Number(values["test-limit"]);
    if (!Number.isInteger(testLimit) || testLimit < 1) {
      throw new Error(`--test-limit must be a positive integer, got "${values["test-limit"]}"`);
    }
  }
  return { checkpoint: positionals[0], dataDir: values.data, testLimit, json: values.json ?? false };
}

export async function evaluateCheckpoint(
  req: EvaluateRequest,
  log: (line: string) => void = (l) => console.error(l),
): Promise<EvalMetrics> {
  const { tensors } = await loadSafetensors(req.checkpoint);
  const arch = architectureFromTensors(tensors, req.checkpoint);
  const data = await loadFashionMnist({ dataDir: req.dataDir, trainLimit: 1, testLimit: req.testLimit, log });
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
  try {
    const req = parseEvaluateArgs(Deno.args);
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
