#!/usr/bin/env python3
"""Times one training step of the notebook's model in PyTorch: encoder forward, EM-DNLL loss, backward,
Adam (defaults), exactly the notebook's inner loop, on random inputs.

    python3 tools/pytorch/step_bench.py [--narrow | --widths 64,64,128,128,256,256] [--batch 256]
        [--device cpu|cuda|auto] [--precision fp32|default] [--threads N] [--warmup 2] [--steps 5]

Prints one line of JSON: {"torch": version, "threads": n, "train_step_ms": mean, ...}; the mean is over
--steps timed steps (at least 3) after --warmup untimed ones. On CUDA, --precision fp32 (the default) turns
TF32 off for matrix products and convolutions, as our engine computes in plain fp32; --precision default
leaves PyTorch's own settings (cuDNN convolutions may use TF32). Inputs and model live on the device.
"""

import argparse
import json
import os
import sys
import time

import torch

sys.dont_write_bytecode = True  # leave no __pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from notebook_model import NARROW_WIDTHS, NOTEBOOK_WIDTHS, DeepMDA, EM_DNLLLoss, parse_widths  # noqa: E402


def set_precision(precision):
    """fp32: TF32 off for CUDA matrix products and cuDNN convolutions; default: PyTorch's own settings."""
    if precision == "fp32":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--widths", default=None, help="six conv widths (default the notebook's)")
    ap.add_argument("--narrow", action="store_true", help="widths " + ",".join(map(str, NARROW_WIDTHS)))
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--latent-dim", type=int, default=2)
    ap.add_argument("--components", type=int, default=2)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--lambda-reg", type=float, default=0.1)
    ap.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    ap.add_argument("--precision", choices=["fp32", "default"], default="fp32")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: the usable cores)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.narrow and args.widths:
        raise SystemExit("--narrow and --widths exclude each other")
    if args.steps < 3:
        raise SystemExit(f"--steps {args.steps}: expected at least 3")
    if args.batch < 1:
        raise SystemExit(f"--batch {args.batch}: expected a positive batch size")
    widths = NARROW_WIDTHS if args.narrow else parse_widths(args.widths) if args.widths else NOTEBOOK_WIDTHS

    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch.cuda.is_available() is False")
    else:
        device = torch.device(args.device)
    set_precision(args.precision)
    # Some builds start with one thread whatever the machine has; the reference uses every usable core.
    threads = args.threads if args.threads else len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)

    model = DeepMDA(C=args.classes, D=args.latent_dim, K=args.components, widths=widths).to(device)
    opt = torch.optim.Adam(model.parameters())
    loss_fn = EM_DNLLLoss(lambda_reg=args.lambda_reg)
    x = torch.rand(args.batch, 1, 28, 28, device=device)
    y = torch.randint(0, args.classes, (args.batch,), device=device)
    model.train()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step():
        z = model.encoder(x)
        loss = loss_fn(model.head, z, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for _ in range(args.warmup):
        step()
    sync()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        loss = step()
        sync()
        times.append((time.perf_counter() - start) * 1000)
    if not torch.isfinite(loss).item():
        raise SystemExit(f"loss is {loss.item()} after {args.warmup + args.steps} steps")

    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "train_step_ms": round(sum(times) / len(times), 2),
        "min_step_ms": round(min(times), 2),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": args.precision,
        "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
        "widths": list(widths),
        "batch": args.batch,
        "warmup": args.warmup,
        "steps": args.steps,
    }))


if __name__ == "__main__":
    main()
