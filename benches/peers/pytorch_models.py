"""The reference models of `chainrule_nn::models` in PyTorch eager, with the examples'
recipe: Adam with a one-cycle schedule, batch 64, pixels in [0, 1], 3 epochs.

    python3 benches/peers/pytorch_models.py --model lstm_rows|vit_tiny|resnet_bn [--epochs 3] [--threads 2]
    python3 benches/peers/pytorch_models.py --model M --reference DIR

- lstm_rows: each image as 28 rows by an LSTM(28 → 128); Linear(128 → 10) on the last
  hidden state (peak lr 5e-3).
- vit_tiny: 7×7 patches by a stride-7 Conv2d(1 → 64), a learned position embedding
  (N(0, 0.02²)), 2 pre-norm TransformerEncoderLayers (4 heads, GELU, feed-forward 128,
  no dropout), LayerNorm, mean over tokens, Linear(64 → 10) (peak lr 2e-3).
- resnet_bn: a 3×3 stem of 16 channels with BatchNorm and ReLU, torchvision-style
  BasicBlocks 16 → 16, 16 → 24 (stride 2), 24 → 32 (stride 2), global average pooling,
  Linear(32 → 10) (peak lr 1e-2).

`--reference DIR` writes DIR/M_init.safetensors (the initial weights, F32, exact in
float64) and DIR/M_losses.json: 20 training steps in float64 on the first 20 batches in
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
p.add_argument("--model", required=True, choices=["lstm_rows", "vit_tiny", "resnet_bn"])
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
    return torch.tensor(idx(d + name, 16).astype(np.float32) / np.float32(255)).reshape(-1, 1, 28, 28)


class LstmRows(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 128, batch_first=True)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        _, (h, _) = self.lstm(x.reshape(-1, 28, 28))
        return self.fc(h[-1])


class VitTiny(nn.Module):
    def __init__(self, d=64):
        super().__init__()
        self.patch = nn.Conv2d(1, d, 7, stride=7)
        self.pos = nn.Parameter(torch.randn(1, 16, d) * 0.02)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(d, 4, dim_feedforward=128, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
            for _ in range(2)
        )
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 10)

    def forward(self, x):
        h = self.patch(x.reshape(-1, 1, 28, 28)).flatten(2).transpose(1, 2) + self.pos
        for b in self.blocks:
            h = b(h)
        return self.head(self.norm(h).mean(1))


def conv3x3(c_in, c_out, stride):
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(c_in, c_out, stride), nn.BatchNorm2d(c_out)
        self.conv2, self.bn2 = conv3x3(c_out, c_out, 1), nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        h = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(h + (x if self.downsample is None else self.downsample(x)))


class ResNetBn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(1, 16, 1), nn.BatchNorm2d(16)
        self.layer1, self.layer2, self.layer3 = BasicBlock(16, 16, 1), BasicBlock(16, 24, 2), BasicBlock(24, 32, 2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x.reshape(-1, 1, 28, 28))))
        return self.fc(self.layer3(self.layer2(self.layer1(h))).mean((2, 3)))


MODELS = {"lstm_rows": (LstmRows, 5e-3), "vit_tiny": (VitTiny, 2e-3), "resnet_bn": (ResNetBn, 1e-2)}
Model, max_lr = MODELS[a.model]

d = "data/mnist/"
xtr, xte = images("train-images-idx3-ubyte.gz"), images("t10k-images-idx3-ubyte.gz")
ytr = torch.tensor(idx(d + "train-labels-idx1-ubyte.gz", 8).astype(np.int64))
yte = torch.tensor(idx(d + "t10k-labels-idx1-ubyte.gz", 8).astype(np.int64))
batch, steps_per_epoch = 64, (len(xtr) + 63) // 64

if a.reference:
    from safetensors.torch import save_file

    net = Model()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, f"{a.reference}/{a.model}_init.safetensors")
    net = net.double()
    opt = torch.optim.Adam(net.parameters(), lr=max_lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=3 * steps_per_epoch)
    losses = []
    for s in range(20):
        x, y = xtr[s * batch:(s + 1) * batch].double(), ytr[s * batch:(s + 1) * batch]
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    with open(f"{a.reference}/{a.model}_losses.json", "w") as f:
        json.dump({"source": "torch " + torch.__version__, "losses": losses}, f)
    print(losses)
    raise SystemExit

net = Model()
print("parameters:", sum(p.numel() for p in net.parameters()))
opt = torch.optim.Adam(net.parameters(), lr=max_lr)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=a.epochs * steps_per_epoch)
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
