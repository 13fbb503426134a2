// tools/seed_study_stats.py, the statistics of results/seed_study, on a small made-up study: its Welch t,
// paired t and blocked F (and their p values, which the tool gets from an incomplete beta function) against
// values computed here another way (p by numerical integration of the t density; the F(2, d) tail in closed
// form). Ignored where no Python with PyTorch (and so NumPy) is found, like the other PyTorch tests.

import { fileURLToPath } from "node:url";
import { equal, ok } from "node:assert/strict";
import { findTorchPython } from "../tools/pytorch/python.ts";

const PYTHON = findTorchPython();
const TOOL = fileURLToPath(new URL("../tools/seed_study_stats.py", import.meta.url));

// Test accuracy after the last epoch, per kind and seed; torch, ourorder and numpyorder share an init per seed.
const STUDY: Record<string, number[]> = {
  torch: [0.65, 0.68, 0.69, 0.63, 0.71, 0.60],
  ours: [0.57, 0.61, 0.52, 0.70, 0.64, 0.55, 0.66],
  ourorder: [0.62, 0.66, 0.61, 0.65, 0.60, 0.58],
  numpyorder: [0.66, 0.64, 0.70, 0.60, 0.69, 0.61],
};

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const variance = (v: number[]) => v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / (v.length - 1);

/** Two-sided p of Student's t with df degrees of freedom: with t = sqrt(df) tan(theta) the density is
 * proportional to cos(theta)^(df-1) on (-pi/2, pi/2); Simpson's rule on both integrals. */
function tTwoSidedP(t: number, df: number): number {
  const integral = (a: number, b: number) => {
    const n = 20000, h = (b - a) / n;
    let s = 0;
    for (let i = 0; i <= n; i++) {
      const w = i === 0 || i === n ? 1 : i % 2 ? 4 : 2;
      s += w * Math.cos(a + i * h) ** (df - 1);
    }
    return s * h / 3;
  };
  return integral(Math.atan(Math.abs(t) / Math.sqrt(df)), Math.PI / 2) / integral(0, Math.PI / 2);
}

/** The markdown row of the tool's output that starts with `prefix`, as cells. */
function row(out: string, prefix: string): string[] {
  const line = out.split("\n").find((l) => l.startsWith(prefix));
  ok(line, `no row "${prefix}" in:\n${out}`);
  return line.split("|").slice(1, -1).map((c) => c.trim());
}

async function runTool(args: string[]) {
  const r = await new Deno.Command(PYTHON!, { args: [TOOL, ...args], stdout: "piped", stderr: "piped" })
    .output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout), err: new TextDecoder().decode(r.stderr) };
}

Deno.test({
  name: "seed_study_stats: Welch, paired t and blocked F with their p values on a made-up study",
  ignore: !PYTHON,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      for (const [kind, values] of Object.entries(STUDY)) {
        for (const [i, acc] of values.entries()) {
          const epochs = [{ epoch: 1, test_accuracy: 0.5, train_accuracy: 0.5, train_loss: 4 }, {
            epoch: 2,
            test_accuracy: acc,
            train_accuracy: 0.6,
            train_loss: 3,
          }];
          await Deno.writeTextFile(`${dir}/${kind}-${i + 1}.json`, JSON.stringify({ epochs }));
        }
      }
      const { code, out, err } = await runTool([dir]);
      equal(code, 0, err);

      const [x, y] = [STUDY.torch, STUDY.ours];
      const [vx, vy] = [variance(x) / x.length, variance(y) / y.length];
      const t = (mean(x) - mean(y)) / Math.sqrt(vx + vy);
      const df = (vx + vy) ** 2 / (vx ** 2 / (x.length - 1) + vy ** 2 / (y.length - 1));
      const ours = row(out, "| ours | +");
      equal(Number(ours[1]), Number((mean(x) - mean(y)).toFixed(4)));
      ok(Math.abs(Number(ours[2]) - t) < 0.006, `Welch t ${ours[2]} vs ${t}`);
      ok(Math.abs(Number(ours[3]) - df) < 0.06, `df ${ours[3]} vs ${df}`);
      ok(Math.abs(Number(ours[4]) - tTwoSidedP(t, df)) < 6e-5, `p ${ours[4]} vs ${tTwoSidedP(t, df)}`);
      const ci = ours[7].match(/^\[([-+.\d]+), ([-+.\d]+)\]$/);
      ok(
        ci && Number(ci[1]) < mean(x) - mean(y) && mean(x) - mean(y) < Number(ci[2]),
        `bootstrap CI ${ours[7]}`,
      );
      // The permutation p of a difference this size sits near the t test's.
      ok(Math.abs(Number(ours[5]) - tTwoSidedP(t, df)) < 0.03, `permutation p ${ours[5]}`);

      const d = STUDY.torch.map((v, i) => v - STUDY.ourorder[i]);
      const tp = mean(d) / Math.sqrt(variance(d) / d.length);
      const paired = row(out, "| torch | ourorder |");
      ok(Math.abs(Number(paired[5]) - tp) < 0.006, `paired t ${paired[5]} vs ${tp}`);
      ok(Math.abs(Number(paired[6]) - tTwoSidedP(tp, d.length - 1)) < 6e-5, `paired p ${paired[6]}`);

      // Two-way ANOVA without replication; the F(2, d2) upper tail is (1 + 2F/d2)^(-d2/2).
      const m = STUDY.torch.map((_, s) => [STUDY.torch[s], STUDY.ourorder[s], STUDY.numpyorder[s]]);
      const grand = mean(m.flat());
      const seedMeans = m.map(mean), genMeans = [0, 1, 2].map((g) => mean(m.map((r) => r[g])));
      let ssRes = 0;
      m.forEach((r, s) => r.forEach((v, g) => ssRes += (v - seedMeans[s] - genMeans[g] + grand) ** 2));
      const d2 = 2 * (m.length - 1);
      const f = (m.length * genMeans.reduce((a, g) => a + (g - grand) ** 2, 0) / 2) / (ssRes / d2);
      const blocked = out.match(/F\(2, (\d+)\) = ([\d.]+), p = ([\d.]+)/);
      ok(blocked, out);
      equal(Number(blocked[1]), d2);
      ok(Math.abs(Number(blocked[2]) - f) < 0.006, `F ${blocked[2]} vs ${f}`);
      ok(Math.abs(Number(blocked[3]) - (1 + 2 * f / d2) ** (-d2 / 2)) < 6e-5, `F p ${blocked[3]}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "seed_study_stats: a bad flag or a folder without runs is one line and a non-zero exit",
  ignore: !PYTHON,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      for (const args of [[dir, "--epoch", "0"], [dir, "--metric", "accuracy"], [dir, "--epochs"], [dir]]) {
        const { code, err } = await runTool(args);
        ok(code !== 0, args.join(" "));
        equal(err.trim().split("\n").length, 1, err);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
