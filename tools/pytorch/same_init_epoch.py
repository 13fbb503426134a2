"""PyTorch side of tools/same_init_epoch.ts: one epoch from DIR/init.safetensors in the order of
DIR/order.safetensors; prints JSON {losses, test_acc}."""
import json
import os
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
from load_check import read_safetensors
from notebook_model import DeepMDA, EM_DNLLLoss
from train_notebook import read_idx
torch.set_num_threads(1)
d = "/usr/share/datasets/fashion-mnist"
xtr = torch.from_numpy(read_idx(d, "train-images-idx3-ubyte").copy()).float().div(255).unsqueeze(1)
ytr = torch.from_numpy(read_idx(d, "train-labels-idx1-ubyte").copy()).long()
xte = torch.from_numpy(read_idx(d, "t10k-images-idx3-ubyte").copy()).float().div(255).unsqueeze(1)
yte = torch.from_numpy(read_idx(d, "t10k-labels-idx1-ubyte").copy()).long()
model = DeepMDA(C=10, D=2, K=2, widths=(16,16,32,32,64,64))
state, _ = read_safetensors(os.path.join(sys.argv[1], "init.safetensors")); model.load_state_dict(state, strict=True)
order = read_safetensors(os.path.join(sys.argv[1], "order.safetensors"))[0]["order"][0].long()  # [1, 60000]
opt = torch.optim.Adam(model.parameters()); lf = EM_DNLLLoss(0.1); model.train()
losses = []
for k in range(len(order) // 256):
    idx = order[k*256:(k+1)*256]
    z = model.encoder(xtr[idx]); loss = lf(model.head, z, ytr[idx])
    opt.zero_grad(); loss.backward(); opt.step(); losses.append(loss.item())
model.eval(); ok = 0
with torch.no_grad():
    for i in range(0, 10000, 1000): ok += (model(xte[i:i+1000]).argmax(1) == yte[i:i+1000]).sum().item()
print(json.dumps({"losses": losses, "test_acc": ok / 10000}))
