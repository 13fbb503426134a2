#!/usr/bin/env python3
"""Loads a safetensors checkpoint of ours into the notebook's PyTorch model with strict load_state_dict.

    python3 tools/pytorch/load_check.py CHECKPOINT [--widths 64,64,128,128,256,256] [--latent-dim 2]
        [--components 2] [--classes 10] [--sums] [--input X.safetensors --output OUT.safetensors
        [--mode eval|train]]

Prints "ok N tensors" and exits 0 when every name, shape and dtype matches the model (PyTorch's own
strict check covers names and shapes; it would silently cast dtypes, so they are compared here first).
--sums prints a second line of JSON {name: float64 sum of the tensor} so a caller can confirm that
PyTorch read the same values. --input/--output run the loaded model on the tensor "x" [N,1,H,W] of
X.safetensors and write "z" [N,D] and "logits" [N,C] to OUT.safetensors (eval mode unless --mode train).

Debian ships no safetensors package, so the format is read and written here with json, struct and
torch.frombuffer.
"""

import argparse
import json
import os
import struct
import sys

import torch

sys.dont_write_bytecode = True  # leave no __pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from notebook_model import NOTEBOOK_WIDTHS, DeepMDA, parse_widths  # noqa: E402

DTYPES = {"F32": torch.float32, "I64": torch.int64}
ITEM_BYTES = {"F32": 4, "I64": 8}  # torch 1.13 has no dtype.itemsize
NAMES = {v: k for k, v in DTYPES.items()}


def read_safetensors(path):
    """-> ({name: tensor}, metadata). Trusts the file's structure: the Deno side validates it."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    buffer = bytearray(data[8 + header_len:])  # writable, so frombuffer does not warn
    tensors = {}
    for name, info in header.items():
        dtype = DTYPES.get(info["dtype"])
        if dtype is None:
            raise SystemExit(f"{path}: tensor {name}: dtype {info['dtype']} is not F32 or I64")
        begin, end = info["data_offsets"]
        if end > begin:
            flat = torch.frombuffer(buffer, dtype=dtype, count=(end - begin) // ITEM_BYTES[info["dtype"]], offset=begin)
        else:
            flat = torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(info["shape"]).clone()
    return tensors, metadata


def write_safetensors(path, tensors):
    """{name: tensor} -> a safetensors file (F32/I64, contiguous, little-endian, header padded to 8)."""
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        raw = t.detach().cpu().contiguous().numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--widths", default=",".join(map(str, NOTEBOOK_WIDTHS)))
    ap.add_argument("--latent-dim", type=int, default=2)
    ap.add_argument("--components", type=int, default=2)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--sums", action="store_true")
    ap.add_argument("--input")
    ap.add_argument("--output")
    ap.add_argument("--mode", choices=["eval", "train"], default="eval")
    ap.add_argument("--grads", type=float, metavar="LAMBDA", default=None,
                    help="with --input holding x and y: one train-mode forward, EM-DNLL(LAMBDA) and backward; "
                         "writes loss, grad.NAME of every parameter and the state_dict after the forward")
    args = ap.parse_args()
    if (args.input is None) != (args.output is None):
        raise SystemExit("--input and --output go together")

    model = DeepMDA(C=args.classes, D=args.latent_dim, K=args.components, widths=parse_widths(args.widths))
    state, _ = read_safetensors(args.checkpoint)
    expected = model.state_dict()
    for name, t in state.items():
        if name in expected and expected[name].dtype != t.dtype:
            raise SystemExit(f"{args.checkpoint}: tensor {name}: dtype {NAMES.get(t.dtype, t.dtype)}, "
                             f"the model has {NAMES.get(expected[name].dtype, expected[name].dtype)}")
    model.load_state_dict(state, strict=True)
    loaded = model.state_dict()
    for name, t in state.items():
        if not torch.equal(loaded[name], t):
            raise SystemExit(f"{args.checkpoint}: tensor {name}: values changed on load")
    print(f"ok {len(state)} tensors")
    if args.sums:
        print(json.dumps({name: t.double().sum().item() for name, t in state.items()}))

    if args.input is not None:
        inputs, _ = read_safetensors(args.input)
        if "x" not in inputs:
            raise SystemExit(f"{args.input}: no tensor named x")
        if args.grads is not None:
            from notebook_model import EM_DNLLLoss  # noqa: E402
            if "y" not in inputs:
                raise SystemExit(f"{args.input}: --grads needs a tensor named y")
            model.train()
            z = model.encoder(inputs["x"])
            loss = EM_DNLLLoss(lambda_reg=args.grads)(model.head, z, inputs["y"].long())
            loss.backward()
            out = {"loss": loss.detach().reshape(1)}
            out.update({f"grad.{n}": p.grad for n, p in model.named_parameters()})
            out.update({f"state.{n}": t for n, t in model.state_dict().items() if t.dtype == torch.float32})
            write_safetensors(args.output, out)
            return
        model.train(args.mode == "train")
        with torch.no_grad():
            z = model.encoder(inputs["x"])
            logits = model.head(z)
        write_safetensors(args.output, {"z": z, "logits": logits})


if __name__ == "__main__":
    main()
