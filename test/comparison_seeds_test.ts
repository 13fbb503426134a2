// The comparison-over-seeds summary: pooled reliability diagrams against the diagram of the concatenated
// predictions (an independent computation), and the table's statistics and per-seed differences worked
// out by hand.

import { equal, match, ok, throws } from "node:assert/strict";
import { evaluateLogits } from "../lib/mda/metrics.ts";
import {
  type ComparisonSeedRun,
  comparisonSeedsTable,
  poolReliability,
} from "../lib/report/comparison_seeds.ts";
import { Rng } from "../lib/rng.ts";
import { assertClose } from "./util.ts";

const C = 10;

function predictions(seed: number, n: number) {
  const rng = new Rng(seed);
  const logits = new Float32Array(n * C).map(() => rng.normal() * 2.5);
  const labels = Array.from({ length: n }, () => rng.int(C));
  return { logits, labels };
}

Deno.test("poolReliability: pooling diagrams gives the diagram of all their predictions together", () => {
  const parts = [predictions(1, 150), predictions(2, 83), predictions(3, 201)];
  const all = {
    logits: new Float32Array(parts.flatMap((p) => [...p.logits])),
    labels: parts.flatMap((p) => p.labels),
  };
  for (const key of ["reliability10", "reliability15"] as const) {
    const pooled = poolReliability(parts.map((p) => evaluateLogits(p.logits, p.labels, C)[key]));
    const whole = evaluateLogits(all.logits, all.labels, C)[key];
    equal(pooled.closed, whole.closed);
    equal(pooled.bins.length, whole.bins.length);
    pooled.bins.forEach((b, j) => {
      const w = whole.bins[j];
      equal(b.count, w.count, `${key} bin ${j} count`);
      equal([b.lo, b.hi].join(), [w.lo, w.hi].join());
      assertClose([b.accuracy, b.confidence], [w.accuracy, w.confidence], {
        rtol: 0,
        atol: 1e-12,
        what: `${key} bin ${j}`,
      });
    });
    assertClose([pooled.ece], [whole.ece], { rtol: 0, atol: 1e-12, what: `${key} ece` });
  }
  // One diagram pools to itself.
  const one = evaluateLogits(parts[0].logits, parts[0].labels, C).reliability10;
  assertClose([poolReliability([one]).ece], [one.ece], { rtol: 0, atol: 1e-15, what: "one diagram" });
});

Deno.test("poolReliability: refuses diagrams over other bins, and none", () => {
  const a = evaluateLogits(predictions(1, 50).logits, predictions(1, 50).labels, C);
  throws(
    () => poolReliability([a.reliability10, a.reliability15]),
    /diagram 1 has other bins than diagram 0/,
  );
  throws(() => poolReliability([]), /no reliability diagrams/);
});

const VARIANTS = [{ id: "lda", label: "LDA + DNLL" }, { id: "softmax", label: "Softmax + CE" }];

function run(seed: number, variant: string, acc: number, ece: number): ComparisonSeedRun {
  return {
    seed,
    variant,
    page: `seed-${seed}/${variant}/README.md`,
    test_accuracy: acc,
    test_nll: 0.5,
    test_ece: ece,
    test_ece15: ece,
    test_brier: 0.2,
  };
}

Deno.test("comparisonSeedsTable: rows by seed, mean ± sample std per run, and per-seed differences", () => {
  // LDA: accuracies 0.90, 0.92, 0.94 (mean 0.92, sample std 0.02), ECE 0.02, 0.03, 0.04.
  // Softmax: 0.91, 0.90 on seeds 1 and 2, ECE 0.05, 0.02; seed 3 unfinished.
  const runs = [
    run(2, "softmax", 0.90, 0.02),
    run(3, "lda", 0.94, 0.04),
    run(1, "lda", 0.90, 0.02),
    run(1, "softmax", 0.91, 0.05),
    run(2, "lda", 0.92, 0.03),
  ];
  const md = comparisonSeedsTable(runs, VARIANTS, [1, 2, 3]);
  const rows = md.split("\n").filter((l) => /^\| \[\d\]/.test(l));
  equal(rows.length, 5);
  match(rows[0], /^\| \[1\]\(seed-1\/README.md\) \| \[LDA \+ DNLL\]\(seed-1\/lda\/README.md\) \| 0\.9000 \|/);
  match(
    rows[1],
    /^\| \[1\]\(seed-1\/README.md\) \| \[Softmax \+ CE\]\(seed-1\/softmax\/README.md\) \| 0\.9100 \|/,
  );
  match(rows[4], /^\| \[3\]/);
  match(md, /\| LDA \+ DNLL \| 3 \| 0\.9200 ± 0\.0200 \| 0\.5000 ± 0\.0000 \| 3\.00 ± 1\.00 \|/);
  match(md, /\| \| \| 0\.9000 – 0\.9400 \|/);
  // Softmax: mean 0.905, sample std of (0.91, 0.90) = 0.01/sqrt(2).
  match(md, new RegExp(`\\| Softmax \\+ CE \\| 2 \\| 0\\.9050 ± ${(0.01 / Math.SQRT2).toFixed(4)} \\|`));
  // Differences softmax - lda on seeds 1, 2: accuracy +0.01, -0.02; ECE x100 +3.00, -1.00.
  match(md, /^Softmax \+ CE minus LDA \+ DNLL, seed by seed:$/m);
  match(md, /^\| 1 \| \+0\.0100 \| \+0\.0000 \| \+3\.00 \| \+3\.00 \| \+0\.0000 \|$/m);
  match(md, /^\| 2 \| -0\.0200 \| \+0\.0000 \| -1\.00 \| -1\.00 \| \+0\.0000 \|$/m);
  // mean of (+0.01, -0.02) = -0.005, sample std = 0.03/sqrt(2); ECE mean +1.00, std 4/sqrt(2) = 2.83.
  match(md, /^\| \*\*mean ± std\*\* \| -0\.0050 ± 0\.0212 \| \+0\.0000 ± 0\.0000 \| \+1\.00 ± 2\.83 \|/m);
  // 95 % CI: mean ± t(0.975, 1 df) = 12.7062 times std / sqrt(2): accuracy -0.005 ± 0.1906, ECE 1.00 ± 25.41.
  match(
    md,
    /^\| \*\*95 % CI of the mean\*\* \| -0\.1956 to \+0\.1856 \| \+0\.0000 to \+0\.0000 \| -24\.41 to \+26\.41 \|/m,
  );
  match(
    md,
    /LDA \+ DNLL had the lower ECE \(10 bins\) in 1 of 2 seeds \(Softmax \+ CE in 1\), the higher test accuracy in 1 \(Softmax \+ CE in 1\)\./,
  );
  ok(!md.includes("One seed is no distribution"), md);
});

Deno.test("comparisonSeedsTable: nothing finished, one seed, and no pair yet", () => {
  equal(comparisonSeedsTable([], VARIANTS, [1, 2]), "No run has finished yet (2 seeds planned).");
  const one = comparisonSeedsTable([run(4, "lda", 0.9, 0.02), run(4, "softmax", 0.9, 0.03)], VARIANTS, [4]);
  match(one, /in 1 of 1 seeds .*One seed is no distribution: run more\./);
  // Equal accuracies on the one seed: a tie, counted as neither.
  match(one, /the higher test accuracy in 0 \(Softmax \+ CE in 0, 1 tie\)\./);
  match(one, /\| LDA \+ DNLL \| 1 \| 0\.9000 ± 0\.0000 \|/);
  ok(!one.includes("95 % CI"), "one pair: no interval");
  const unpaired = comparisonSeedsTable([run(1, "lda", 0.9, 0.02), run(2, "softmax", 0.9, 0.03)], VARIANTS, [
    1,
    2,
  ]);
  match(unpaired, /No seed has both LDA \+ DNLL and Softmax \+ CE finished yet\./);
});
