// tools/seed_study_table.py on a made-up study folder: the last-epoch table and --by-epoch, which lines up
// every epoch of PyTorch's runs (JSON) and the engine's (run folders) seed by seed, then their means.

import { fileURLToPath } from "node:url";
import { deepEqual, equal } from "node:assert/strict";

const TOOL = fileURLToPath(new URL("../tools/seed_study_table.py", import.meta.url));

async function table(dir: string, ...flags: string[]): Promise<string[][]> {
  const out = await new Deno.Command("python3", { args: [TOOL, ...flags, dir] }).output();
  equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim().split("\n").slice(2)
    .map((l) => l.split("|").slice(1, -1).map((c) => c.trim()));
}

Deno.test("seed study table: last epoch per seed, and --by-epoch side by side", async () => {
  const dir = await Deno.makeTempDir({ prefix: "seed-table-" });
  try {
    const epochs = (acc: number[]) =>
      acc.map((a, i) => ({ epoch: i + 1, test_accuracy: a, train_loss: 4 - i }));
    await Deno.writeTextFile(`${dir}/ours-1.json`, JSON.stringify({ epochs: epochs([0.5, 0.6, 0.7]) }));
    await Deno.writeTextFile(`${dir}/ours-2.json`, JSON.stringify({ epochs: epochs([0.4, 0.5, 0.8]) }));
    await Deno.mkdir(`${dir}/engine-1`);
    await Deno.writeTextFile(
      `${dir}/engine-1/history.jsonl`,
      epochs([0.55, 0.65, 0.75]).map((r) => JSON.stringify(r)).join("\n") + "\n",
    );
    await Deno.writeTextFile(
      `${dir}/engine-1/metrics.json`,
      JSON.stringify({ final: { test_accuracy: 0.75 } }),
    );
    // A run still going (no metrics.json) is left out of both tables.
    await Deno.mkdir(`${dir}/engine-2`);
    await Deno.writeTextFile(`${dir}/engine-2/history.jsonl`, JSON.stringify(epochs([0.1])[0]) + "\n");

    const last = await table(dir);
    deepEqual(last.slice(0, 2), [["1", "0.7000", "0.7500"], ["2", "0.8000", ""]]);
    deepEqual(last[2], ["mean", "0.7500", "0.7500"]);

    const rows = await table(dir, "--by-epoch");
    equal(rows.length, 9);
    deepEqual(rows[1], ["1", "2", "0.6000, 3.0000", "0.6500, 3.0000"]);
    deepEqual(rows[5], ["2", "3", "0.8000, 2.0000", ""]);
    // Then per epoch the means over the seeds both kinds have (seed 1 only).
    deepEqual(rows[6], ["mean of 1", "1", "0.5000, 4.0000", "0.5500, 4.0000"]);
    deepEqual(rows[8], ["mean of 1", "3", "0.7000, 2.0000", "0.7500, 2.0000"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
