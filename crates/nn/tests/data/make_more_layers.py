"""PyTorch 2.15 (f64) references for `tests/more_layers.rs`: TransformerEncoderLayer
(post-norm ReLU sequence-first; pre-norm GELU batch-first with a causal mask),
ConvTranspose2d (stride, padding, output_padding, groups) and Upsample, with every
parameter set by the formula `sin(0.37·i + k)/2` for the k-th parameter in PyTorch's
order, on inputs `sin(0.3·i)` (eval mode: no dropout).

    python3 make_more_layers.py   # writes more_layers.json
"""
import json
import math

import torch
import torch.nn as nn

torch.set_default_dtype(torch.float64)


def fill(m):
    names = []
    for k, (name, p) in enumerate(m.named_parameters()):
        with torch.no_grad():
            p.copy_(torch.tensor([math.sin(0.37 * i + k) * 0.5 for i in range(p.numel())]).reshape(p.shape))
        names.append(name)
    return names


def wave(*shape):
    n = math.prod(shape)
    return torch.tensor([math.sin(0.3 * i) for i in range(n)]).reshape(shape)


cases = []
for name, kwargs, shape, causal in [
    ("post_relu", dict(d_model=6, nhead=2, dim_feedforward=10), (4, 2, 6), False),
    ("pre_gelu_causal", dict(d_model=6, nhead=3, dim_feedforward=8, activation="gelu", norm_first=True, batch_first=True), (2, 5, 6), True),
]:
    layer = nn.TransformerEncoderLayer(**kwargs)
    names = fill(layer)
    layer.eval()
    x = wave(*shape)
    mask = nn.Transformer.generate_square_subsequent_mask(shape[0 if not kwargs.get("batch_first") else 1]) if causal else None
    with torch.no_grad():
        y = layer(x, src_mask=mask, is_causal=causal)
    cases.append({"kind": "transformer", "name": name, "kwargs": kwargs, "names": names, "input": list(shape), "causal": causal, "out": y.flatten().tolist()})

conv = nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2)
names = fill(conv)
x = wave(2, 4, 3, 3)
with torch.no_grad():
    y = conv(x)
cases.append({"kind": "conv_transpose", "names": names, "weight_shape": list(conv.weight.shape), "input": [2, 4, 3, 3], "out_shape": list(y.shape), "out": y.flatten().tolist()})

for mode, kwargs in [("nearest", dict(scale_factor=2)), ("bilinear", dict(size=(5, 7), align_corners=False))]:
    x = wave(1, 2, 3, 4)
    y = nn.Upsample(mode=mode, **kwargs)(x)
    cases.append({"kind": "upsample", "mode": mode, "input": [1, 2, 3, 4], "out_shape": list(y.shape), "out": y.flatten().tolist()})

with open("more_layers.json", "w") as f:
    json.dump({"source": "torch " + torch.__version__, "cases": cases}, f)
for c in cases:
    print(c.get("name", c["kind"]), c.get("names"))
