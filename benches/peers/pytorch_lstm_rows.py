"""`lstm_rows` in PyTorch eager: each MNIST image read as 28 rows of 28 pixels by an
LSTM(28 → 128), its last hidden state classified by a Linear(128 → 10); Adam with a
one-cycle schedule (max_lr 5e-3), batch 64, pixels in [0, 1]. The same model and recipe
as `cargo run --release --example lstm_rows`.

    python3 benches/peers/pytorch_lstm_rows.py [--epochs 3] [--threads 2]
    python3 benches/peers/pytorch_lstm_rows.py --reference DIR   # the f64 test's files

`--reference DIR` writes DIR/lstm_rows_init.safetensors (the initial weights, F32) and
DIR/lstm_rows_losses.json: 20 training steps in float64 on the first 20 batches in
order, for `crates/nn/tests/models.rs`.
"""
import argparse
import gzip
import json
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--reference")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)


def idx(path, offset):
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def images(name):
    # pixel/255 rounded to float32, exactly as chainrule's loader computes it
    return torch.tensor(idx(d + name, 16).astype(np.float32) / np.float32(255)).reshape(-1, 28, 28)


class LstmRows(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 128, batch_first=True)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        _, (h, _) = self.lstm(x.reshape(-1, 28, 28))
        return self.fc(h[-1])


d = "data/mnist/"
xtr, xte = images("train-images-idx3-ubyte.gz"), images("t10k-images-idx3-ubyte.gz")
ytr = torch.tensor(idx(d + "train-labels-idx1-ubyte.gz", 8).astype(np.int64))
yte = torch.tensor(idx(d + "t10k-labels-idx1-ubyte.gz", 8).astype(np.int64))
batch, steps_per_epoch = 64, (len(xtr) + 63) // 64

if a.reference:
    from safetensors.torch import save_file

    net = LstmRows()
    # float32 initial values are exact in float64: the file stores them as F32
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, f"{a.reference}/lstm_rows_init.safetensors")
    net = net.double()
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=3 * steps_per_epoch)
    losses = []
    for s in range(20):
        x, y = xtr[s * batch:(s + 1) * batch].double(), ytr[s * batch:(s + 1) * batch]
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    with open(f"{a.reference}/lstm_rows_losses.json", "w") as f:
        json.dump({"source": "torch " + torch.__version__, "losses": losses}, f)
    print(losses)
    raise SystemExit

net = LstmRows()
opt = torch.optim.Adam(net.parameters(), lr=5e-3)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=a.epochs * steps_per_epoch)
for epoch in range(1, a.epochs + 1):
    t0 = time.perf_counter()
    net.train()
    perm = torch.randperm(len(xtr))
    for i in range(0, len(xtr), batch):
        b = perm[i:i + batch]
        opt.zero_grad()
        F.cross_entropy(net(xtr[b]), ytr[b]).backward()
        opt.step()
        sched.step()
    train_time = time.perf_counter() - t0
    net.eval()
    with torch.no_grad():
        acc = (net(xte).argmax(1) == yte).float().mean().item()
    print(f"epoch {epoch}: test accuracy {100 * acc:.2f}%, epoch time {train_time:.2f} s")
