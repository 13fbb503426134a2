// Finds, downloads if needed, and checks Fashion-MNIST, then prints what was found:
//   deno run -A lib/data/check.ts [--data DIR] [--no-download] [--train-limit N] [--test-limit N]
// A problem with the data prints one line `error: <message>` and exits with status 1.

import { parseArgs } from "node:util";
import { FASHION_CLASS_COUNT, loadFashionMnistOrExit } from "./fashion.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    data: { type: "string" },
    "no-download": { type: "boolean", default: false },
    "train-limit": { type: "string" },
    "test-limit": { type: "string" },
  },
});

function limit(option: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]+$/.test(v)) {
    console.error(`error: --${option} must be a positive integer, got ${JSON.stringify(v)}`);
    Deno.exit(1);
  }
  return Number(v);
}
const data = await loadFashionMnistOrExit({
  dataDir: values.data,
  download: !values["no-download"],
  trainLimit: limit("train-limit", values["train-limit"]),
  testLimit: limit("test-limit", values["test-limit"]),
  log: (line) => console.log(line),
});
for (const [name, split] of [["train", data.train], ["test", data.test]] as const) {
  const perClass = new Array(FASHION_CLASS_COUNT).fill(0);
  for (const l of split.labels) perClass[l]++;
  console.log(`${name}: ${split.count} images; per class ${perClass.join(" ")}`);
}
console.log(`${data.dir}: ${data.verified ? "verified" : "unverified"}`);
