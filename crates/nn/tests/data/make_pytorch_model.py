"""Saves, with PyTorch, a model holding BatchNorm2d, LayerNorm, Embedding, LSTM and
MultiheadAttention, and its outputs on a fixed input, for `tests/pytorch_model.rs`:

    python3 make_pytorch_model.py   # writes pytorch_model.safetensors and pytorch_model.json

The running statistics come from three training-mode forward passes, so the file holds
non-trivial BatchNorm buffers (`num_batches_tracked` = 3, as I64). The outputs are in
eval mode. Needs torch and safetensors.
"""
import json

import torch
import torch.nn as nn
from safetensors.torch import save_file


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8, padding_idx=0)
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.norm = nn.LayerNorm(8)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Linear(12, 5)

    def forward(self, ids, img):
        h = self.emb(ids)
        h, _ = self.lstm(h)
        a, _ = self.attn(h, h, h, need_weights=False)
        h = self.norm(h + a).mean(1)
        c = torch.relu(self.bn(self.conv(img))).mean((2, 3))
        return self.head(torch.cat([h, c], 1))


torch.manual_seed(7)
model = Mixed()
model.train()
for _ in range(3):
    model(torch.randint(0, 20, (4, 6)), torch.randn(4, 1, 6, 6))
model.eval()
ids = torch.randint(0, 20, (3, 6))
ids[0, 0] = 0  # the padding row
img = torch.randn(3, 1, 6, 6)
with torch.no_grad():
    out = model(ids, img)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, "pytorch_model.safetensors")
with open("pytorch_model.json", "w") as f:
    json.dump(
        {
            "source": "torch " + torch.__version__,
            "ids": {"shape": list(ids.shape), "data": ids.flatten().tolist()},
            "img": {"shape": list(img.shape), "data": img.flatten().tolist()},
            "out": {"shape": list(out.shape), "data": out.flatten().tolist()},
        },
        f,
    )
print("keys:", list(model.state_dict().keys()))
print("out:", out)
