#!/usr/bin/env python3
"""The table of a seed study (tools/seed_study.sh): test accuracy after 2 epochs per seed and kind of
draws, then mean, population std and the count reaching 0.60 per kind.  python3 tools/seed_study_table.py DIR"""
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


def main(d):
    acc = {}
    for kind, _ in KINDS:
        pattern = os.path.join(d, f"{kind}-*" + ("" if kind == "engine" else ".json"))
        for path in glob.glob(pattern):
            if kind == "engine" and not os.path.exists(os.path.join(path, "metrics.json")):
                continue
            seed = int(re.search(r"-(\d+)(\.json)?$", path).group(1))
            acc.setdefault(kind, {})[seed] = final_accuracy(path)
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
    main(sys.argv[1])
