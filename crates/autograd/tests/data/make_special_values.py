"""Writes special_values.json: PyTorch's forward values and gradients of chainrule's ops
at NaN, ±inf, zeros and ties, for crates/autograd/tests/special_values.rs.

    python3 -m venv venv && venv/bin/pip install torch
    venv/bin/python crates/autograd/tests/data/make_special_values.py

Non-finite numbers are written as the strings "nan", "inf" and "-inf" (JSON has none).
Every gradient is the vector-Jacobian product with the case's `grad_out`.
"""
import json
import math
import pathlib

import torch

torch.set_default_dtype(torch.float64)
NAN, INF = math.nan, math.inf


def enc(values):
    out = []
    for v in values:
        if math.isnan(v):
            out.append("nan")
        elif math.isinf(v):
            out.append("inf" if v > 0 else "-inf")
        else:
            out.append(v)
    return out


def case(op, fn, inputs, shape, attrs=None, grad_out=None):
    xs = [torch.tensor(v).reshape(shape[i] if isinstance(shape[0], list) else shape).requires_grad_()
          for i, v in enumerate(inputs)]
    y = fn(*xs)
    g = torch.tensor(grad_out).reshape(y.shape) if grad_out is not None else torch.ones_like(y)
    grads = torch.autograd.grad(y, xs, g, allow_unused=True)
    return {
        "op": op,
        "attrs": attrs or {},
        "inputs": [{"shape": list(x.shape), "data": enc(x.detach().flatten().tolist())} for x in xs],
        "grad_out": enc(g.flatten().tolist()),
        "output": {"shape": list(y.shape), "data": enc(y.detach().flatten().tolist())},
        "grads": [enc(gr.flatten().tolist()) if gr is not None else None for gr in grads],
    }


SPECIAL = [NAN, -INF, -2.0, -0.0, 0.0, 0.5, 3.0, INF]
POSITIVE = [NAN, 0.0, 0.25, 4.0, INF]
cases = []
for name, fn, xs in [
    ("relu", torch.relu, SPECIAL),
    ("abs", torch.abs, SPECIAL),
    ("neg", torch.neg, SPECIAL),
    ("exp", torch.exp, SPECIAL),
    ("tanh", torch.tanh, SPECIAL),
    ("sigmoid", torch.sigmoid, SPECIAL),
    ("square", torch.square, SPECIAL),
    ("log", torch.log, POSITIVE),
    ("sqrt", torch.sqrt, POSITIVE),
]:
    cases.append(case(name, fn, [xs], [len(xs)]))
cases.append(case("leaky_relu", lambda x: torch.nn.functional.leaky_relu(x, 0.1),
                  [SPECIAL], [len(SPECIAL)], {"negative_slope": 0.1}))
for p in [0.0, 1.0, 2.0, 1.5, 0.5, -1.0]:
    xs = [NAN, 0.0, 0.25, 2.0, INF] if p != int(p) else [NAN, -2.0, 0.0, 0.25, 2.0, INF]
    cases.append(case("powf", lambda x, p=p: x.pow(p), [xs], [len(xs)], {"exponent": p}))

F_ = torch.nn.functional
for name, fn, attrs in [
    ("erf", torch.erf, {}),
    ("gelu", F_.gelu, {"approximate": "none"}),
    ("gelu", lambda x: F_.gelu(x, approximate="tanh"), {"approximate": "tanh"}),
    ("silu", F_.silu, {}),
    ("log_sigmoid", F_.logsigmoid, {}),
    ("softplus", F_.softplus, {"beta": 1.0, "threshold": 20.0}),
    ("elu", F_.elu, {"alpha": 1.0}),
    ("clamp", lambda x: torch.clamp(x, -1.0, 1.0), {"min": -1.0, "max": 1.0}),
]:
    cases.append(case(name, fn, [SPECIAL], [len(SPECIAL)], attrs))

A = [NAN, 1.0, NAN, 2.0, INF, -INF, 3.0]
B = [1.0, NAN, NAN, 2.0, 1.0, -INF, INF]
cases.append(case("maximum", torch.maximum, [A, B], [len(A)]))
cases.append(case("minimum", torch.minimum, [A, B], [len(A)]))
N = [3.0, -4.0, 0.0, 0.0, INF, 1.0, NAN, 1.0]
cases.append(case("norm", lambda x: torch.linalg.vector_norm(x, 2.0, dim=1), [N], [4, 2],
                  {"p": 2.0, "dims": [1]}, grad_out=[1.0, 2.0, 3.0, 4.0]))
cases.append(case("cumsum", lambda x: torch.cumsum(x, 0), [[1.0, INF, -INF, NAN, 2.0]], [5],
                  {"dim": 0}))

M = [1.0, NAN, 3.0, INF, 2.0, -INF, -INF, -INF, -INF, 5.0, 5.0, 1.0]
cases.append(case("max", lambda x: torch.max(x, 1).values, [M], [4, 3], {"dim": 1},
                  grad_out=[1.0, 2.0, 3.0, 4.0]))
L = [INF, 1.0, -INF, -INF, INF, -INF, NAN, 1.0, INF, INF, 0.0, 1.0]
cases.append(case("logsumexp", lambda x: torch.logsumexp(x, 1), [L], [6, 2], {"dim": 1},
                  grad_out=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
S = [INF, 1.0, NAN, 1.0, -INF, 1.0, -INF, -INF, 1000.0, -1000.0]
W = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
cases.append(case("softmax", lambda x: torch.softmax(x, 1), [S], [5, 2], {"dim": 1}, grad_out=W))
cases.append(case("log_softmax", lambda x: torch.log_softmax(x, 1), [S], [5, 2], {"dim": 1},
                  grad_out=W))
P = [1.0, NAN, 3.0, 3.0, -INF, -INF, -INF, -INF, 0.0, 2.0, 2.0, 1.0, INF, 1.0, 0.0, 4.0]
cases.append(case("max_pool2d", lambda x: torch.nn.functional.max_pool2d(x, 2), [P], [1, 4, 2, 2],
                  {"kernel_size": [2, 2]}, grad_out=[1.0, 2.0, 3.0, 4.0]))

# Zero-size tensors: PyTorch's values (mean of nothing is NaN, logsumexp of nothing is
# -inf, a loss averaged over no rows is NaN) and gradients (empty), or an error.
F = torch.nn.functional


def zero_case(op, fn, shapes, attrs=None):
    xs = [torch.zeros(s, requires_grad=True) for s in shapes]
    try:
        y = fn(*xs)
    except (RuntimeError, IndexError) as e:
        return {"op": op, "attrs": attrs or {}, "error": str(e).split("\n")[0],
                "inputs": [{"shape": list(x.shape), "data": enc(x.detach().flatten().tolist())}
                           for x in xs]}
    grads = torch.autograd.grad(y, xs, torch.ones_like(y), allow_unused=True)
    return {
        "op": op,
        "attrs": attrs or {},
        "inputs": [{"shape": list(x.shape), "data": enc(x.detach().flatten().tolist())} for x in xs],
        "grad_out": enc(torch.ones_like(y).flatten().tolist()),
        "output": {"shape": list(y.shape), "data": enc(y.detach().flatten().tolist())},
        "grads": [enc(torch.zeros_like(x).flatten().tolist()) if g is None else enc(g.flatten().tolist())
                  for g, x in zip(grads, xs)],
    }


no_labels = torch.zeros(0, dtype=torch.long)
cases += [
    zero_case("sum", lambda x: x.sum(), [[0, 3]]),
    zero_case("mean", lambda x: x.mean(), [[0, 3]]),
    zero_case("mean_dims", lambda x: x.mean(0), [[0, 3]], {"dims": [0]}),
    zero_case("mean_dims", lambda x: x.mean(1), [[0, 3]], {"dims": [1]}),
    zero_case("logsumexp", lambda x: torch.logsumexp(x, 0), [[0, 3]], {"dim": 0}),
    zero_case("max", lambda x: torch.max(x, 1).values, [[3, 0]], {"dim": 1}),
    zero_case("softmax", lambda x: torch.softmax(x, 1), [[3, 0]], {"dim": 1}),
    zero_case("log_softmax", lambda x: torch.log_softmax(x, 0), [[0, 3]], {"dim": 0}),
    zero_case("matmul", torch.matmul, [[2, 0], [0, 3]]),
    zero_case("matmul", torch.matmul, [[0, 3], [3, 4]]),
    zero_case("add", torch.add, [[0, 3], [1, 3]]),
    zero_case("cross_entropy", lambda x: F.cross_entropy(x, no_labels), [[0, 4]],
              {"reduction": "mean"}),
    zero_case("cross_entropy", lambda x: F.cross_entropy(x, no_labels, reduction="sum"),
              [[0, 4]], {"reduction": "sum"}),
    zero_case("mse_loss", F.mse_loss, [[0], [0]], {"reduction": "mean"}),
    zero_case("conv2d", F.conv2d, [[0, 1, 5, 5], [2, 1, 3, 3]]),
    zero_case("max_pool2d", lambda x: F.max_pool2d(x, 2), [[0, 1, 4, 4]],
              {"kernel_size": [2, 2]}),
    zero_case("concat", lambda a, b: torch.cat([a, b]), [[0, 3], [2, 3]], {"dim": 0}),
]

path = pathlib.Path(__file__).with_name("special_values.json")
path.write_text(json.dumps({"torch": torch.__version__, "cases": cases}, indent=1) + "\n")
print(f"{len(cases)} cases -> {path}")
