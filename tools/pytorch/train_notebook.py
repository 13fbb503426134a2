#!/usr/bin/env python3
"""The notebook's training loop in PyTorch, on the same Fashion-MNIST files, for side-by-side numbers.

    /usr/bin/python3 tools/pytorch/train_notebook.py [--data DIR] [--widths 16,16,32,32,64,64]
        [--epochs 2] [--seed 0] [--threads N] [--device cpu|cuda] [--precision fp32|default] [--json OUT.json]
        [--train-limit N] [--test-limit N]
        [--init INIT.safetensors] [--order ORDER.safetensors]

Prints the notebook's per-epoch line (train loss, train accuracy, test accuracy) and its epoch time;
--json writes them as a list. --init starts from a state_dict in safetensors (e.g. our engine's initial
weights, tools/export_draws.ts) instead of torch's own draw; --order takes every epoch's shuffled order
from an I64 tensor "order" [epochs, 60000] instead of torch.randperm. Together they train PyTorch on
exactly the draws a seed gives our engine. Reads the IDX files (gzipped or plain) with numpy; no torchvision needed.
The images live on --device for the whole run; --precision as in step_bench.py (fp32: TF32 off on CUDA).
"""

import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_check import read_safetensors  # noqa: E402
from step_bench import set_precision  # noqa: E402
from notebook_model import NOTEBOOK_WIDTHS, DeepMDA, EM_DNLLLoss, parse_widths  # noqa: E402


def read_idx(directory, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            raw = open(path, "rb").read()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            ndim = raw[3]
            dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
            return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    raise SystemExit(f"{directory}: {stem} not found")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--widths", default=",".join(map(str, NOTEBOOK_WIDTHS)))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", choices=["fp32", "default"], default="fp32")
    ap.add_argument("--train-limit", type=int, default=None, help="keep the first N training images")
    ap.add_argument("--test-limit", type=int, default=None, help="keep the first N test images")
    ap.add_argument("--json")
    ap.add_argument("--init")
    ap.add_argument("--order")
    args = ap.parse_args()
    for flag, limit in (("--train-limit", args.train_limit), ("--test-limit", args.test_limit)):
        if limit is not None and limit < 1:
            raise SystemExit(f"{flag} {limit}: expected a positive number of images")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    dev = torch.device(args.device)
    set_precision(args.precision)
    xtr = torch.from_numpy(read_idx(args.data, "train-images-idx3-ubyte").copy()).float().div(255).unsqueeze(1)
    ytr = torch.from_numpy(read_idx(args.data, "train-labels-idx1-ubyte").copy()).long()
    xte = torch.from_numpy(read_idx(args.data, "t10k-images-idx3-ubyte").copy()).float().div(255).unsqueeze(1)
    yte = torch.from_numpy(read_idx(args.data, "t10k-labels-idx1-ubyte").copy()).long()
    xtr, ytr = xtr[:args.train_limit].to(dev), ytr[:args.train_limit].to(dev)
    xte, yte = xte[:args.test_limit].to(dev), yte[:args.test_limit].to(dev)
    model = DeepMDA(C=10, D=2, K=2, widths=parse_widths(args.widths))
    if args.init:
        model.load_state_dict(read_safetensors(args.init)[0], strict=True)
    model = model.to(dev)
    orders = None
    if args.order:
        orders = read_safetensors(args.order)[0]["order"].long()
        if orders.dim() != 2 or orders.shape[0] < args.epochs or orders.shape[1] != len(xtr):
            raise SystemExit(f"{args.order}: order must be [>= {args.epochs}, {len(xtr)}], got {list(orders.shape)}")
    opt = torch.optim.Adam(model.parameters())
    loss_fn = EM_DNLLLoss(lambda_reg=0.1)
    rows = []
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        model.train()
        loss_sum = acc_sum = n_sum = 0
        perm = orders[epoch - 1] if orders is not None else torch.randperm(len(xtr))
        for idx in perm.to(dev).split(256):
            x, y = xtr[idx], ytr[idx]
            z = model.encoder(x)
            loss = loss_fn(model.head, z, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                acc_sum += (model.head(z).argmax(1) == y).sum().item()
                n_sum += y.size(0)
                loss_sum += loss.item() * y.size(0)
        model.eval()
        ok = 0
        with torch.no_grad():
            for i in range(0, len(xte), 1024):
                ok += (model(xte[i:i + 1024]).argmax(1) == yte[i:i + 1024]).sum().item()
        row = {"epoch": epoch, "train_loss": loss_sum / n_sum, "train_accuracy": acc_sum / n_sum,
               "test_accuracy": ok / len(xte), "seconds": time.time() - t0}
        rows.append(row)
        print(f"[MDA {epoch:02d}] train loss={row['train_loss']:.4f} acc={row['train_accuracy']:.4f} | "
              f"test acc={row['test_accuracy']:.4f} ({row['seconds']:.1f} s)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "device": str(dev), "seed": args.seed, "widths": args.widths,
                       "init": args.init, "order": args.order,
                       "epochs": rows}, f, indent=2)


if __name__ == "__main__":
    main()
