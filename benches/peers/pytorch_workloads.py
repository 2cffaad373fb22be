"""The ten WORKLOADS.md workloads in PyTorch eager, printing the same JSON line as
`cargo run --release --example workloads`, for side-by-side ratios.

    python3 benches/peers/pytorch_workloads.py --workload W1 --threads 2
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--workload", default="W1")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--steps", type=int, default=50)
p.add_argument("--warmup", type=int, default=5)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
W = a.workload.upper()


def classifier(net, x_shape):
    x = torch.randn(*x_shape)
    y = torch.randint(0, 10, (x_shape[0],))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)

    def step():
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()

    return step, x_shape[0]


flops = ops = None
if W == "W1":
    step, batch = classifier(nn.Sequential(nn.Conv2d(1, 3, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(432, 10)), (64, 1, 28, 28))
elif W == "W2":
    step, batch = classifier(
        nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(9216, 128), nn.ReLU(), nn.Linear(128, 10)), (64, 1, 28, 28))
elif W == "W3":
    step, batch = classifier(nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)), (128, 784))
elif W == "W4":
    A = torch.randn(1024, 1024, requires_grad=True)
    B = torch.randn(1024, 1024, requires_grad=True)

    def step():
        A.grad = B.grad = None
        A.matmul(B).sum().backward()
        with torch.no_grad():
            A.sub_(0.01 * A.grad)
            B.sub_(0.01 * B.grad)

    batch, flops = None, 3 * 2 * 1024**3
elif W == "W5":
    X = torch.randn(32, 64, 32, 32, requires_grad=True)
    Wt = (torch.randn(64, 64, 3, 3) * 0.05).requires_grad_()
    Bs = torch.randn(64, requires_grad=True)

    def step():
        X.grad = Wt.grad = Bs.grad = None
        F.conv2d(X, Wt, Bs, padding=1).sum().backward()
        with torch.no_grad():
            Wt.sub_(0.01 * Wt.grad)
            Bs.sub_(0.01 * Bs.grad)

    batch, flops = 32, 3 * 2 * 32 * 64 * 64 * 9 * 32 * 32
elif W == "W6":
    h0 = torch.randn(16)
    ps = [(torch.randn(16, requires_grad=True), (torch.randn(16) * 0.1).requires_grad_()) for _ in range(1000)]

    def step():
        h = h0
        for w, b in ps:
            w.grad = b.grad = None
            h = torch.tanh(h * w + b)
        h.sum().backward()
        with torch.no_grad():
            for w, b in ps:
                w.sub_(0.01 * w.grad)
                b.sub_(0.01 * b.grad)

    batch, ops = None, 3000
elif W == "W7":
    L = nn.Linear(256, 256)
    x = torch.randn(64, 256)
    t = torch.randn(64, 256)
    opt = torch.optim.SGD(L.parameters(), lr=0.01)

    def step():
        opt.zero_grad()
        F.mse_loss(torch.tanh(L(torch.tanh(L(torch.tanh(L(x)))))), t).backward()
        opt.step()

    batch = 64
elif W == "W8":
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.conv2 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(64)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            h = torch.relu(self.bn1(self.conv1(x)))
            h = torch.relu(self.bn2(self.conv2(h)) + x)
            return self.fc(h.mean(dim=(2, 3)))

    step, batch = classifier(Block(), (32, 64, 16, 16))
elif W == "W9":
    class Rows(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(28, 128)
            self.fc = nn.Linear(128, 10)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.fc(out[-1])

    # sequence-first [T, n, input]: the classifier's labels follow dim 0, so build here
    net = Rows()
    x = torch.randn(28, 64, 28)
    y = torch.randint(0, 10, (64,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)

    def step():
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()

    batch = 64
elif W == "W10":
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.TransformerEncoderLayer(128, nhead=4, dim_feedforward=256, dropout=0.0,
                                                    activation="gelu", batch_first=True)
            self.fc = nn.Linear(128, 10)

        def forward(self, x):
            return self.fc(self.layer(x).mean(dim=1))

    step, batch = classifier(Encoder(), (32, 64, 128))
else:
    raise SystemExit(f"unknown workload {W}")

for _ in range(a.warmup):
    step()
times = []
for _ in range(a.steps):
    t0 = time.perf_counter()
    step()
    times.append((time.perf_counter() - t0) * 1e3)
times.sort()
med = times[len(times) // 2]
out = {"peer": "pytorch", "workload": W, "threads": a.threads, "warmup_steps": a.warmup, "timed_steps": a.steps,
       "step": {"median_ms": round(med, 4), "min_ms": round(times[0], 4), "max_ms": round(times[-1], 4)},
       "images_per_s": None if batch is None else round(batch / (med / 1e3), 1)}
if flops:
    out["gflops"] = round(flops / (med / 1e3) / 1e9, 2)
if ops:
    out["us_per_op"] = round(med * 1e3 / ops, 4)
print(json.dumps(out))
