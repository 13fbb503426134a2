// `deno task report` on fake run folders: the sweep's means and population standard deviations, and the
// comparison's table and side-by-side figures, the seeds' curves, from whatever runs have finished.

import { equal, match, ok, rejects } from "node:assert/strict";
import { existsSync } from "node:fs";
import { writeJsonAtomic } from "../lib/io/atomic.ts";
import { evaluateLogits } from "../lib/mda/metrics.ts";
import { Rng } from "../lib/rng.ts";
import { EXPERIMENTS, seedsExperiment } from "../experiments/config.ts";
import { writeReport } from "../experiments/report.ts";
import { UsageError } from "../experiments/flags.ts";
import { tempDir } from "./util.ts";

function fakeEval(seed: number) {
  const rng = new Rng(seed);
  const n = 200, C = 10;
  const logits = new Float32Array(n * C).map(() => rng.normal() * 3);
  const labels = Array.from({ length: n }, () => rng.int(C));
  return evaluateLogits(logits, labels, C);
}

async function fakeRun(
  dir: string,
  hyper: Record<string, unknown>,
  final: Record<string, number>,
  extra = {},
) {
  await Deno.mkdir(dir, { recursive: true });
  const e = fakeEval(Math.round(final.test_accuracy * 1e4));
  await writeJsonAtomic(`${dir}/manifest.json`, {
    status: "finished",
    hyperparameters: Object.fromEntries(
      Object.entries(hyper).map(([k, v]) => [k, { value: v, source: "pinned" }]),
    ),
  });
  await writeJsonAtomic(`${dir}/metrics.json`, {
    final: { test_nll: 0.3, test_ece: 0.03, test_brier: 0.1, test_ece15: 0.04, ...final },
    reliability10: e.reliability10,
    confidence_histogram: e.histogram,
    ...extra,
  });
}

/** A run's history.jsonl: one epoch per ECE value. */
async function fakeHistory(dir: string, ece: number[]) {
  const rows = ece.map((e, i) => ({
    epoch: i + 1,
    train_loss: 1,
    train_accuracy: 0.9,
    test_accuracy: 0.9,
    test_ece: e,
  }));
  await Deno.writeTextFile(`${dir}/history.jsonl`, rows.map((r) => JSON.stringify(r) + "\n").join(""));
}

Deno.test("report: a partial sweep gives per-lambda means and population std", async () => {
  const exp = EXPERIMENTS.fashion_lambda_sweep;
  const out = await tempDir("mda-report-test-");
  const runs = exp.runs!;
  // lambda 1e-3, seeds 1 and 2; lambda 10^-2.5, seed 1; an unfinished run is ignored
  await fakeRun(
    `${out}/${runs[0].id}`,
    { lambda: 1e-3, seed: 1 },
    { test_accuracy: 0.93, test_ece15: 0.04 },
    { sigma: 0.3 },
  );
  await fakeRun(
    `${out}/${runs[1].id}`,
    { lambda: 1e-3, seed: 2 },
    { test_accuracy: 0.95, test_ece15: 0.02 },
    { sigma: 0.4 },
  );
  await fakeRun(`${out}/${runs[5].id}`, { lambda: runs[5].overrides.lambda, seed: 1 }, {
    test_accuracy: 0.9,
    test_ece15: 0.05,
  }, {
    sigma: 0.5,
  });
  await Deno.mkdir(`${out}/${runs[6].id}`);
  await writeJsonAtomic(`${out}/${runs[6].id}/manifest.json`, { status: "running" });
  await writeReport(exp, out, { quiet: true });
  const md = await Deno.readTextFile(`${out}/README.md`);
  match(md, /3 of 45 runs finished/);
  // accuracy 0.94 ± 0.01 (population std of 0.93, 0.95), ECE x100 3.00 ± 1.00, sigma 0.35 ± 0.05
  match(md, /0\.9400 ± 0\.0100/);
  match(md, /3\.00 ± 1\.00/);
  match(md, /0\.350 ± 0\.050/);
  for (const f of ["sweep_accuracy.svg", "sweep_ece15.svg", "sweep_sigma.svg"]) {
    ok(existsSync(`${out}/${f}`), f);
  }
});

Deno.test("report: finished runs of another configuration are refused, not pooled", async () => {
  const exp = EXPERIMENTS.fashion_lambda_sweep;
  const out = await tempDir("mda-report-test-");
  const runs = exp.runs!;
  const run = (i: number, more: Record<string, unknown> = {}) =>
    fakeRun(`${out}/${runs[i].id}`, { ...runs[i].overrides, epochs: 2, ...more }, { test_accuracy: 0.9 }, {
      sigma: 0.3,
    });
  await run(0);
  await run(1);
  await run(5);
  await writeReport(exp, out, { quiet: true }); // the variants' own lambda and seed differ: one configuration
  for (
    const [more, says] of [
      [{ epochs: 15 }, "epochs 15, not 2"],
      [{ trainLimit: 500 }, "trainLimit 500, not unset"],
    ] as const
  ) {
    await run(1, more);
    await rejects(
      writeReport(exp, out, { quiet: true }),
      (e: Error) =>
        e instanceof UsageError &&
        e.message ===
          `${out}: its finished runs are not all of one configuration: ${runs[1].id} differs from ` +
            `${
              runs[0].id
            } in ${says}; a report pools runs of one configuration only: continue the odd runs ` +
            `to match (--resume --epochs N), or move them out of the folder`,
    );
  }
});

Deno.test("report: the LDA vs softmax comparison table and side-by-side figures", async () => {
  const exp = EXPERIMENTS.fashion_lda_vs_softmax;
  const out = await tempDir("mda-report-test-");
  await fakeRun(`${out}/lda`, { lambda: 0.01, seed: 1 }, { test_accuracy: 0.93, test_ece: 0.031 });
  await fakeRun(`${out}/softmax`, { seed: 1 }, { test_accuracy: 0.92, test_ece: 0.052 });
  // Two epochs of history each: the page draws both runs' test accuracy and ECE per epoch.
  await fakeHistory(`${out}/lda`, [0.09, 0.031]);
  await fakeHistory(`${out}/softmax`, [0.012, 0.052]);
  await writeReport(exp, out, { quiet: true, pdf: true });
  const md = await Deno.readTextFile(`${out}/README.md`);
  // --pdf: each figure also as a PDF beside its SVG.
  for (const f of ["reliability", "confidence"]) {
    equal(new TextDecoder().decode((await Deno.readFile(`${out}/${f}.pdf`)).slice(0, 8)), "%PDF-1.4", f);
  }
  match(md, /\| \[LDA \+ DNLL\]\(lda\/README.md\) \| 0\.9300 \| .* \| 3\.10 \| .* \| 2\.98 \|/);
  match(md, /\| \[Softmax \+ CE\]\(softmax\/README.md\) \| 0\.9200 \| .* \| 5\.20 \| .* \| 5\.05 \|/);
  // A report in a folder under results/ is listed in results/README.md.
  const results = `${await tempDir("mda-report-index-")}/results`;
  await fakeRun(`${results}/cmp/lda`, { lambda: 0.01, seed: 1 }, { test_accuracy: 0.93, test_ece: 0.031 });
  await writeReport(exp, `${results}/cmp`, { quiet: true });
  match(
    await Deno.readTextFile(`${results}/README.md`),
    /\[fashion_lda_vs_softmax \(version 1\)\]\(cmp\/README\.md\)/,
  );
  const svg = await Deno.readTextFile(`${out}/reliability.svg`);
  equal((svg.match(/ECE = /g) ?? []).length, 2);
  // Only the softmax run kept its embeddings: the one panel is titled as its run, not as the first run.
  ok(!existsSync(`${out}/latent.svg`), "no run has a latent.json yet");
  await writeJsonAtomic(`${out}/softmax/latent.json`, {
    dim: 2,
    z: [0, 1, 1, 0, 0.5, 0.5],
    labels: [0, 1, 2],
    components: 1,
    classNames: Array.from({ length: 10 }, (_, i) => `class ${i}`),
  });
  await writeReport(exp, out, { quiet: true });
  const latent = await Deno.readTextFile(`${out}/latent.svg`);
  ok(latent.includes("Softmax + CE"), "the softmax panel's title");
  ok(!latent.includes("LDA + DNLL"), "the LDA run has no panel, so no title");
  ok(existsSync(`${out}/confidence.svg`));
  for (const f of ["test_accuracy", "test_ece"]) {
    ok(md.includes(`](${f}.svg)`), f);
    const curves = await Deno.readTextFile(`${out}/${f}.svg`);
    for (const run of ["LDA + DNLL", "Softmax + CE"]) {
      ok(curves.includes(`aria-description="${run}"`), `${f}: ${run}`);
    }
  }
  // The description gives the pinned values: values that flags set instead are named under it.
  ok(!md.includes("Set by flags"), "no flag set anything");
  for (const run of ["lda", "softmax"]) {
    const manifest = JSON.parse(await Deno.readTextFile(`${out}/${run}/manifest.json`));
    manifest.hyperparameters.epochs = { value: 15, source: "flag" };
    manifest.hyperparameters.seed = { value: 7, source: "flag" };
    await writeJsonAtomic(`${out}/${run}/manifest.json`, manifest);
  }
  await writeReport(exp, out, { quiet: true });
  ok(
    (await Deno.readTextFile(`${out}/README.md`)).includes(
      "\n\nSet by flags over the pinned values: seed 7 (pinned 20260102); epochs 15 (pinned 100).\n\n",
    ),
  );
});

Deno.test("report: seeds' curves, a colour per seed up to ten, one colour for all past ten", async () => {
  for (const count of [3, 11]) {
    const seeds = Array.from({ length: count }, (_, i) => i + 1);
    const exp = seedsExperiment(EXPERIMENTS.fashion_mda_quick, seeds);
    const out = await tempDir("mda-report-seeds-");
    for (const seed of seeds) {
      await fakeRun(`${out}/seed-${seed}`, { seed }, { test_accuracy: 0.8 + seed / 1000 }, { epochs: 2 });
      await fakeHistory(`${out}/seed-${seed}`, [0.05, 0.05]);
    }
    await writeReport(exp, out, { quiet: true });
    for (const f of ["seeds_test_accuracy.svg", "seeds_test_ece.svg"]) {
      const svg = await Deno.readTextFile(`${out}/${f}`);
      const entries = (svg.match(/aria-label="legend item"/g) ?? []).length;
      equal(entries, count > 10 ? 1 : count, `${f}, ${count} seeds`);
      equal((svg.match(/aria-description="[^"]*seed \d+"/g) ?? []).length, count, `${f}: a line per seed`);
    }
  }
});
