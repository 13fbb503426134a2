#!/usr/bin/env python3
"""The table of a seed study (tools/seed_study.sh): test accuracy after the last epoch per seed and kind of
draws, then mean, population std and the count reaching 0.60 per kind.  python3 tools/seed_study_table.py DIR
With --by-epoch: every epoch of every seed, test accuracy and mean train loss of each kind side by side (how
runs on the same draws move apart over a longer run), then per epoch their means over the seeds every kind has."""
import glob
import json
import os
import re
import statistics
import sys

KINDS = [("torch", "PyTorch, torch's draws"), ("ours", "PyTorch, our draws"), ("ourinit", "PyTorch, our init"),
         ("ourorder", "PyTorch, our shuffles"), ("numpyorder", "PyTorch, NumPy's shuffles"),
         ("engine", "our engine, our draws")]


def final_accuracy(path):
    if path.endswith(".json"):
        return json.load(open(path))["epochs"][-1]["test_accuracy"]
    return json.load(open(os.path.join(path, "metrics.json")))["final"]["test_accuracy"]


def epoch_rows(path):
    """Per epoch (test accuracy, mean train loss) of a finished run: PyTorch's JSON or an engine run folder."""
    if path.endswith(".json"):
        rows = json.load(open(path))["epochs"]
    else:
        with open(os.path.join(path, "history.jsonl")) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    return [(r["test_accuracy"], r["train_loss"]) for r in rows]


def finished_runs(d):
    """{kind: {seed: path}} of the finished runs in DIR."""
    runs = {}
    for kind, _ in KINDS:
        pattern = os.path.join(d, f"{kind}-*" + ("" if kind == "engine" else ".json"))
        for path in glob.glob(pattern):
            if kind == "engine" and not os.path.exists(os.path.join(path, "metrics.json")):
                continue
            seed = int(re.search(r"-(\d+)(\.json)?$", path).group(1))
            runs.setdefault(kind, {})[seed] = path
    return runs


def by_epoch(d):
    runs = finished_runs(d)
    kinds = [(k, label) for k, label in KINDS if k in runs]
    rows = {k: {s: epoch_rows(p) for s, p in runs[k].items()} for k, _ in kinds}
    print("| seed | epoch | " + " | ".join(f"{label}: test accuracy, train loss" for _, label in kinds) + " |")
    print("|---:|---:|" + "---:|" * len(kinds))
    for s in sorted({s for k, _ in kinds for s in rows[k]}):
        for e in range(max(len(rows[k].get(s, [])) for k, _ in kinds)):
            cells = [f"{rows[k][s][e][0]:.4f}, {rows[k][s][e][1]:.4f}" if e < len(rows[k].get(s, [])) else ""
                     for k, _ in kinds]
            print(f"| {s} | {e + 1} | " + " | ".join(cells) + " |")
    # Per epoch, the means over the seeds that every kind has reached that epoch with.
    for e in range(max(len(r) for k, _ in kinds for r in rows[k].values())):
        seeds = [s for s in rows[kinds[0][0]] if all(e < len(rows[k].get(s, [])) for k, _ in kinds)]
        if not seeds:
            continue
        cells = [", ".join(f"{statistics.mean(rows[k][s][e][i] for s in seeds):.4f}" for i in (0, 1))
                 for k, _ in kinds]
        print(f"| mean of {len(seeds)} | {e + 1} | " + " | ".join(cells) + " |")


def main(d):
    acc = {k: {s: final_accuracy(p) for s, p in v.items()} for k, v in finished_runs(d).items()}
    kinds = [(k, label) for k, label in KINDS if k in acc]
    seeds = sorted({s for k, _ in kinds for s in acc[k]})
    print("| seed | " + " | ".join(label for _, label in kinds) + " |")
    print("|---:|" + "---:|" * len(kinds))
    for s in seeds:
        print(f"| {s} | " + " | ".join(f"{acc[k][s]:.4f}" if s in acc[k] else "" for k, _ in kinds) + " |")
    for name, fn in [("mean", statistics.mean), ("std (population)", statistics.pstdev)]:
        print(f"| {name} | " + " | ".join(f"{fn(list(acc[k].values())):.4f}" for k, _ in kinds) + " |")
    print("| runs >= 0.60 | " + " | ".join(
        f"{sum(v >= 0.6 for v in acc[k].values())} of {len(acc[k])}" for k, _ in kinds) + " |")
    common = [s for s in seeds if all(s in acc[k] for k, _ in kinds)]
    if len(common) < len(seeds):
        print(f"| mean over the {len(common)} seeds every column has | " + " | ".join(
            f"{statistics.mean(acc[k][s] for s in common):.4f}" for k, _ in kinds) + " |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--by-epoch"]:
        by_epoch(sys.argv[2])
    else:
        main(sys.argv[1])
