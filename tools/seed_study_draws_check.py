#!/usr/bin/env python3
"""Are our draws distributed like torch's? Compares, over many seeds and without training, what each
generator gives the quick notebook model (widths 16-16-32-32-64-64): our engine's draws exported by
tools/export_draws.ts into DIR/draws-SEED/, against torch's for the same seeds (torch.manual_seed(SEED),
the model built, then one torch.randperm per epoch: exactly what tools/pytorch/train_notebook.py draws).

    /usr/bin/python3 tools/seed_study_draws_check.py DIR [--export FIRST-LAST] [--data FASHION_MNIST_DIR]

--export first writes the draws of seeds FIRST..LAST that DIR lacks (`deno run -A tools/export_draws.ts
DIR/draws-SEED SEED`, 1.2 MB a seed); the check then uses every DIR/draws-SEED there is.

Per feature, ours against torch's: the means and a two-sided Welch p (per-seed scalars) or the two-sample
Kolmogorov-Smirnov distance and its asymptotic p (pooled values). The features are what could make one
generator's draws train differently: every initial tensor's values (scaled by its bound or std), the
geometry of the MDA head's 20 initial means, the model's output at init on epoch 1's first batch (loss,
accuracy, spread of z), the class make-up of the first batches, and how the two epochs' orders relate.
"""
import glob
import math
import os
import re
import subprocess
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "pytorch"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_check import read_safetensors  # noqa: E402
from notebook_model import DeepMDA, EM_DNLLLoss  # noqa: E402
from seed_study_stats import welch  # noqa: E402
from train_notebook import read_idx  # noqa: E402

WIDTHS = (16, 16, 32, 32, 64, 64)
FIRST_BATCHES = 20


def ks_two_sample(a, b):
    """Kolmogorov-Smirnov distance of two samples and its asymptotic two-sided p."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    d = np.max(np.abs(np.searchsorted(a, grid, side="right") / len(a) - np.searchsorted(b, grid, side="right") / len(b)))
    en = math.sqrt(len(a) * len(b) / (len(a) + len(b)))
    lam = (en + 0.12 + 0.11 / en) * d
    p = 2 * sum((-1) ** (j - 1) * math.exp(-2 * j * j * lam * lam) for j in range(1, 101))
    return d, min(max(p, 0.0), 1.0)


def scaled_values(state):
    """{tensor name: its values / the bound (uniform tensors) or / the std (mu)} for the random tensors."""
    out = {}
    for name, t in state.items():
        if name == "head.mu":
            out[name] = (t / 3.0).flatten().numpy()
        elif name.endswith(".weight") and t.dim() > 1:
            out[name] = (t / (1 / math.sqrt(t[0].numel()))).flatten().numpy()
        elif name.endswith(".bias") and name.replace(".bias", ".weight") in state:
            w = state[name.replace(".bias", ".weight")]
            if w.dim() > 1:
                out[name] = (t / (1 / math.sqrt(w[0].numel()))).flatten().numpy()
    return out


def seed_features(state, orders, x, y):
    """Per-seed scalars of one seed's draws (state_dict, orders [epochs, 60000])."""
    f = {}
    mu = state["head.mu"].double()  # [C, K, D]
    flat = mu.reshape(-1, mu.shape[-1])
    dist = torch.cdist(flat, flat)
    cls = torch.arange(mu.shape[0]).repeat_interleave(mu.shape[1])
    other = cls[:, None] != cls[None, :]
    f["mu: closest means of two classes"] = dist[other].min().item()
    f["mu: mean distance to the nearest other-class mean"] = dist.masked_fill(~other, float("inf")).min(1)[0].mean().item()
    f["mu: mean norm"] = flat.norm(dim=1).mean().item()
    model = DeepMDA(C=10, D=2, K=2, widths=WIDTHS)
    model.load_state_dict(state, strict=True)
    model.train()
    idx = orders[0][:256]
    with torch.no_grad():
        z = model.encoder(x[idx])
        f["init: EM-DNLL loss on the first batch"] = EM_DNLLLoss(0.1)(model.head, z, y[idx]).item()
        f["init: accuracy on the first batch"] = (model.head(z).argmax(1) == y[idx]).double().mean().item()
        f["init: std of z on the first batch"] = z.std(0).mean().item()
        f["init: norm of the mean z on the first batch"] = z.mean(0).norm().item()
    counts = torch.stack([torch.bincount(y[orders[0][i * 256:(i + 1) * 256]], minlength=10)
                          for i in range(FIRST_BATCHES)]).double()
    f[f"shuffle: chi2 of the first {FIRST_BATCHES} batches' class counts"] = \
        (((counts - 25.6) ** 2) / 25.6).sum(1).mean().item()
    rank2 = torch.empty(orders.shape[1], dtype=torch.float64)
    rank2[orders[1]] = torch.arange(orders.shape[1], dtype=torch.float64)
    pos1 = torch.arange(orders.shape[1], dtype=torch.float64)
    f["shuffle: correlation of positions in epochs 1 and 2"] = \
        torch.corrcoef(torch.stack([pos1, rank2[orders[0]]]))[0, 1].item()
    return f


def torch_draws(seed):
    """What train_notebook.py draws for SEED without --init/--order (training itself draws nothing)."""
    torch.manual_seed(seed)
    model = DeepMDA(C=10, D=2, K=2, widths=WIDTHS)
    return model.state_dict(), torch.stack([torch.randperm(60000), torch.randperm(60000)])


def main():
    usage = "usage: tools/seed_study_draws_check.py DIR [--export FIRST-LAST] [--data FASHION_MNIST_DIR]"
    args = sys.argv[1:]
    if not args or args[0].startswith("-") or len(args) % 2 == 0:
        raise SystemExit(usage)
    opts = dict(zip(args[1::2], args[2::2]))
    data = opts.pop("--data", "/usr/share/datasets/fashion-mnist")
    export = opts.pop("--export", None)
    if opts or (export is not None and not re.fullmatch(r"\d+-\d+", export)):
        raise SystemExit(usage)
    if export:
        first, last = map(int, export.split("-"))
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        for s in range(first, last + 1):
            out = os.path.join(os.path.abspath(args[0]), f"draws-{s}")
            if not os.path.exists(os.path.join(out, "order.safetensors")):
                subprocess.run(["deno", "run", "-A", "tools/export_draws.ts", out, str(s)], cwd=root, check=True)
    torch.set_num_threads(1)
    x = torch.from_numpy(read_idx(data, "train-images-idx3-ubyte").copy()).float().div(255).unsqueeze(1)
    y = torch.from_numpy(read_idx(data, "train-labels-idx1-ubyte").copy()).long()
    seeds = sorted(int(re.search(r"draws-(\d+)$", p).group(1)) for p in glob.glob(os.path.join(args[0], "draws-*"))
                   if os.path.exists(os.path.join(p, "order.safetensors")))
    if not seeds:
        raise SystemExit(f"{args[0]}: no draws-SEED/order.safetensors (tools/export_draws.ts writes them)")
    values = {"ours": {}, "torch": {}}
    feats = {"ours": {}, "torch": {}}
    for s in seeds:
        ours = read_safetensors(os.path.join(args[0], f"draws-{s}", "init.safetensors"))[0]
        order = read_safetensors(os.path.join(args[0], f"draws-{s}", "order.safetensors"))[0]["order"].long()
        for arm, (state, orders) in (("ours", (ours, order)), ("torch", torch_draws(s))):
            for k, v in scaled_values(state).items():
                values[arm].setdefault(k, []).append(v)
            for k, v in seed_features(state, orders, x, y).items():
                feats[arm].setdefault(k, []).append(v)
    print(f"{len(seeds)} seeds ({seeds[0]}..{seeds[-1]}): our draws against torch's for the same seeds\n")
    print("| initial tensor (values / bound, mu / std) | n values per arm | KS distance | p |\n|---|---:|---:|---:|")
    for k in values["ours"]:
        a, b = np.concatenate(values["ours"][k]), np.concatenate(values["torch"][k])
        d, p = ks_two_sample(a, b)
        print(f"| {k} | {len(a)} | {d:.4f} | {p:.3f} |")
    print("\n| per-seed feature | ours: mean (sd) | torch: mean (sd) | Welch p | KS p |\n|---|---:|---:|---:|---:|")
    for k in feats["ours"]:
        a, b = np.array(feats["ours"][k]), np.array(feats["torch"][k])
        _, _, p = welch(a, b)
        print(f"| {k} | {a.mean():.4f} ({a.std(ddof=1):.4f}) | {b.mean():.4f} ({b.std(ddof=1):.4f}) | {p:.3f} | "
              f"{ks_two_sample(a, b)[1]:.3f} |")


if __name__ == "__main__":
    main()
