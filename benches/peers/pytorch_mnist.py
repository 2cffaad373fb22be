"""The seed network on MNIST in PyTorch eager, same data, batch, optimizer and
normalization as `cargo run --release --example mnist`, for the epoch-time comparison.

    python3 benches/peers/pytorch_mnist.py [--epochs 1] [--threads 2]
        [--init he-glorot|default] [--inputs normalized|unit]
"""
import argparse
import gzip
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=1)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--init", choices=["he-glorot", "default"], default="he-glorot")
p.add_argument("--inputs", choices=["normalized", "unit"], default="normalized")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)


def idx(path, offset):
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


d = "data/mnist/"
scale = (lambda v: (v - 0.1307) / 0.3081) if a.inputs == "normalized" else (lambda v: v)
xtr = torch.tensor(scale(idx(d + "train-images-idx3-ubyte.gz", 16) / 255.0).astype(np.float32)).reshape(-1, 1, 28, 28)
ytr = torch.tensor(idx(d + "train-labels-idx1-ubyte.gz", 8).astype(np.int64))
xte = torch.tensor(scale(idx(d + "t10k-images-idx3-ubyte.gz", 16) / 255.0).astype(np.float32)).reshape(-1, 1, 28, 28)
yte = torch.tensor(idx(d + "t10k-labels-idx1-ubyte.gz", 8).astype(np.int64))
net = nn.Sequential(nn.Conv2d(1, 3, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(432, 10))
if a.init == "he-glorot":
    # He for the ReLU conv layer, Glorot for the linear head, zero biases
    nn.init.kaiming_normal_(net[0].weight, nonlinearity="relu")
    nn.init.zeros_(net[0].bias)
    nn.init.xavier_uniform_(net[4].weight)
    nn.init.zeros_(net[4].bias)
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
for epoch in range(1, a.epochs + 1):
    t0 = time.perf_counter()
    perm = torch.randperm(len(xtr))
    for i in range(0, len(xtr), 64):
        b = perm[i:i + 64]
        opt.zero_grad()
        F.cross_entropy(net(xtr[b]), ytr[b]).backward()
        opt.step()
    train_time = time.perf_counter() - t0
    with torch.no_grad():
        acc = (net(xte).argmax(1) == yte).float().mean().item()
    print(f"epoch {epoch}: test accuracy: {100 * acc:.2f}%, epoch time {train_time:.2f} s")
