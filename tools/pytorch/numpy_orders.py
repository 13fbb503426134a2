#!/usr/bin/env python3
"""Shuffles from a third generator for the seed study: NumPy's default_rng(SEED).permutation(60000), one
per epoch, as an I64 "order" [EPOCHS, 60000] for train_notebook.py --order.
    /usr/bin/python3 tools/pytorch/numpy_orders.py OUT.safetensors SEED [EPOCHS=2]"""
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_check import write_safetensors  # noqa: E402

out, seed = sys.argv[1], int(sys.argv[2])
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 2
rng = np.random.default_rng(seed)
order = np.stack([rng.permutation(60000) for _ in range(epochs)]).astype(np.int64)
write_safetensors(out, {"order": torch.from_numpy(order)})
