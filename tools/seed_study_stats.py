#!/usr/bin/env python3
"""Statistics of a seed study (tools/seed_study.sh): is the gap between two kinds of draws more than chance?

    /usr/bin/python3 tools/seed_study_stats.py DIR [--epoch N] [--metric test_accuracy|train_accuracy|train_loss]

For the metric (default test_accuracy; train_accuracy and train_loss are the epoch's running means) after
epoch N (default: the last) prints, per kind, n / mean / sd (sample); then
  - unpaired: torch's draws against each other kind over all of its seeds (different generators, so the
    seeds do not pair): Welch's t with its two-sided p, permutation p's (100 000 relabellings) of the
    difference of means and of the rank sums (Mann-Whitney, robust to a few collapsed runs), and a 95 %
    bootstrap CI of the difference of means (100 000 resamples, percentile);
  - paired, where a seed's two runs share one of the draws exactly (train_notebook.py builds the model
    before loading --init, so "ourinit" has the torch arm's shuffles, and "ourorder"/"numpyorder" have its
    initial weights): mean difference, paired t and its p, bootstrap CI.
  - blocked by init: torch, ourorder and numpyorder share torch's initial weights seed by seed and differ only
    in the shuffles' generator (torch, ours, NumPy): a two-way analysis of variance (seed x generator, no
    replication) gives the generator's F and p, and how much of a run's spread the shuffles alone make.
Fixed resampling seed, so the output is reproducible. numpy only (no scipy on the CI machine).
"""
import glob
import json
import math
import os
import re
import sys

import numpy as np

KINDS = ["torch", "ours", "ourinit", "ourorder", "numpyorder"]
# (a, b, what the two share): each pair's runs differ in exactly one draw.
PAIRS = [("torch", "ourinit", "torch's shuffles; init torch vs ours"),
         ("torch", "ourorder", "torch's init; shuffles torch vs ours"),
         ("torch", "numpyorder", "torch's init; shuffles torch vs NumPy"),
         ("numpyorder", "ourorder", "torch's init; shuffles NumPy vs ours"),
         ("ourinit", "ours", "our init; shuffles torch vs ours")]


def betacf(a, b, x):
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def betainc(a, b, x):
    """I_x(a, b)."""
    if x <= 0 or x >= 1:
        return 0.0 if x <= 0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x))
    if x < (a + 1) / (a + b + 2):
        return front * betacf(a, b, x) / a
    return 1 - front * betacf(b, a, 1 - x) / b


def t_two_sided_p(t, df):
    return betainc(df / 2, 0.5, df / (df + t * t))


def f_upper_p(f, df1, df2):
    return betainc(df2 / 2, df1 / 2, df2 / (df2 + df1 * f))


def welch(x, y):
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    t = (x.mean() - y.mean()) / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    return t, df, t_two_sided_p(t, df)


def load(d, epoch, metric):
    acc = {k: {} for k in KINDS}
    for k in KINDS:
        for path in glob.glob(os.path.join(d, f"{k}-*.json")):
            seed = int(re.search(r"-(\d+)\.json$", path).group(1))
            rows = json.load(open(path))["epochs"]
            acc[k][seed] = rows[(epoch or len(rows)) - 1][metric]
    return {k: v for k, v in acc.items() if v}


def main():
    usage = "usage: tools/seed_study_stats.py DIR [--epoch N>=1] [--metric test_accuracy|train_accuracy|train_loss]"
    args = sys.argv[1:]
    if not args or args[0].startswith("-") or len(args) % 2 == 0:
        raise SystemExit(usage)
    opts = dict(zip(args[1::2], args[2::2]))
    metric = opts.pop("--metric", "test_accuracy")
    epoch = opts.pop("--epoch", None)
    if opts or metric not in ("test_accuracy", "train_accuracy", "train_loss") or (
            epoch is not None and (not epoch.isdigit() or int(epoch) < 1)):
        raise SystemExit(usage)
    d, epoch = args[0], int(epoch) if epoch else None
    acc = load(d, epoch, metric)
    if "torch" not in acc:
        raise SystemExit(f"{d}: no torch-SEED.json (tools/seed_study.sh writes them)")
    rng = np.random.default_rng(20261201)
    print(f"{metric} after epoch {epoch or 'last'}")
    print("| draws | n | mean | sd (sample) | standard error |\n|---|---:|---:|---:|---:|")
    for k, v in acc.items():
        a = np.array(list(v.values()))
        print(f"| {k} | {len(a)} | {a.mean():.4f} | {a.std(ddof=1):.4f} | {a.std(ddof=1) / math.sqrt(len(a)):.4f} |")
    print("\nunpaired, torch's draws minus the other kind (all seeds of each)")
    print("| other | diff | Welch t | df | p (t) | p (permutation) | p (ranks) | 95 % bootstrap CI |\n|---|---:|---:|---:|---:|---:|---:|---|")
    x = np.array(list(acc["torch"].values()))
    for k in acc:
        if k == "torch":
            continue
        y = np.array(list(acc[k].values()))
        t, df, p = welch(x, y)
        diff = x.mean() - y.mean()
        both = np.concatenate([x, y])
        perm = np.array([rng.permutation(both) for _ in range(100_000)])
        pd = perm[:, :len(x)].mean(1) - perm[:, len(x):].mean(1)
        p_perm = (np.sum(np.abs(pd) >= abs(diff) - 1e-12) + 1) / (len(pd) + 1)
        ranks = np.argsort(np.argsort(both, kind="stable"), kind="stable").astype(float)
        rank_diff = ranks[:len(x)].mean() - ranks[len(x):].mean()
        rp = ranks[np.argsort(rng.random((100_000, len(both))), axis=1)]
        rpd = rp[:, :len(x)].mean(1) - rp[:, len(x):].mean(1)
        p_rank = (np.sum(np.abs(rpd) >= abs(rank_diff) - 1e-12) + 1) / (len(rpd) + 1)
        boot = (rng.choice(x, (100_000, len(x))).mean(1) - rng.choice(y, (100_000, len(y))).mean(1))
        lo, hi = np.percentile(boot, [2.5, 97.5])
        print(f"| {k} | {diff:+.4f} | {t:.2f} | {df:.1f} | {p:.4f} | {p_perm:.4f} | {p_rank:.4f} | [{lo:+.4f}, {hi:+.4f}] |")
    print("\npaired by seed (the two runs share one draw exactly), a minus b")
    print("| a | b | shared | n | mean diff | paired t | p | 95 % bootstrap CI |\n|---|---|---|---:|---:|---:|---:|---|")
    for a, b, shared in PAIRS:
        if a not in acc or b not in acc:
            continue
        seeds = sorted(set(acc[a]) & set(acc[b]))
        if len(seeds) < 3:
            continue
        dd = np.array([acc[a][s] - acc[b][s] for s in seeds])
        t = dd.mean() / (dd.std(ddof=1) / math.sqrt(len(dd)))
        p = t_two_sided_p(t, len(dd) - 1)
        lo, hi = np.percentile(rng.choice(dd, (100_000, len(dd))).mean(1), [2.5, 97.5])
        print(f"| {a} | {b} | {shared} | {len(dd)} | {dd.mean():+.4f} | {t:.2f} | {p:.4f} | [{lo:+.4f}, {hi:+.4f}] |")

    shuffles = ["torch", "ourorder", "numpyorder"]
    if all(k in acc for k in shuffles):
        seeds = sorted(set.intersection(*(set(acc[k]) for k in shuffles)))
        if len(seeds) >= 3:
            m = np.array([[acc[k][s] for k in shuffles] for s in seeds])  # [seed, generator]
            resid = m - m.mean(1, keepdims=True) - m.mean(0, keepdims=True) + m.mean()
            ss_gen = len(seeds) * ((m.mean(0) - m.mean()) ** 2).sum()
            df_gen, df_res = 2, 2 * (len(seeds) - 1)
            ms_res = (resid ** 2).sum() / df_res
            f = ss_gen / df_gen / ms_res
            print(f"\nblocked by init ({len(seeds)} seeds, torch's init; shuffles from torch / ours / NumPy): means "
                  + " / ".join(f"{v:.4f}" for v in m.mean(0))
                  + f"; generator F({df_gen}, {df_res}) = {f:.2f}, p = {f_upper_p(f, df_gen, df_res):.4f}; "
                  + f"sd of a run from the shuffles alone {math.sqrt(ms_res):.4f}, "
                  + f"sd between inits {math.sqrt(max(m.mean(1).var(ddof=1) - ms_res / 3, 0)):.4f}")


if __name__ == "__main__":
    main()
