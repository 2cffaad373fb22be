"""Prints the PyTorch values crates/nn/tests/sequence_layers.rs compares with.

    python3 -m venv venv && venv/bin/pip install torch
    venv/bin/python crates/nn/tests/data/make_sequence_layers.py
"""
import torch

torch.set_default_dtype(torch.float64)


def fill(m):
    for k, (_, p) in enumerate(m.named_parameters()):
        with torch.no_grad():
            p.copy_((torch.sin(torch.arange(p.numel()) * 0.37 + k) * 0.5).reshape(p.shape))
    return [n for n, _ in m.named_parameters()]


lstm = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
print(fill(lstm))
x = torch.cos(torch.arange(2 * 5 * 3) * 0.23).reshape(2, 5, 3)
out, (h, c) = lstm(x)
print("lstm", out.sum().item(), out[1, 3].tolist(), h.sum().item(), c[3].tolist())
gru = torch.nn.GRU(3, 4, num_layers=1, bidirectional=True)
fill(gru)
out, h = gru(x.transpose(0, 1).contiguous())
print("gru", out.sum().item(), out[4, 1].tolist(), h.sum().item())
mha = torch.nn.MultiheadAttention(6, 2)
print(fill(mha))
q = torch.cos(torch.arange(4 * 2 * 6) * 0.11).reshape(4, 2, 6)
kv = torch.sin(torch.arange(5 * 2 * 6) * 0.13).reshape(5, 2, 6)
o, _ = mha(q, kv, kv)
print("mha", o.sum().item(), o[2, 1].tolist())
