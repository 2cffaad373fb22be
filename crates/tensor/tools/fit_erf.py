"""Fits the Chebyshev expansions `special.rs` evaluates (run it to regenerate them):

- erf(x)/x as a function of x² on |x| ≤ 1;
- erfc(x)·exp(x²) on [1, 2], [2, 4], [4, 8], [8, 16], [16, 32].

Reference values from mpmath at 50 digits; each expansion is truncated where its
coefficients fall below 1e-17 of the function's size, and the script prints the
largest relative error of the f64 evaluation on a dense grid.

    python3 crates/tensor/tools/fit_erf.py
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 50


def cheb_fit(f, a, b, n=60):
    # coefficients of f on [a, b] from the Chebyshev nodes (exact up to aliasing of
    # terms past n, which are far below 1e-17 here)
    k = np.arange(n)
    nodes = [mp.cos(mp.pi * (j + mp.mpf(1) / 2) / n) for j in range(n)]
    vals = [f((b - a) / 2 * t + (a + b) / 2) for t in nodes]
    coef = []
    for m in range(n):
        s = sum(v * mp.cos(m * mp.pi * (j + mp.mpf(1) / 2) / n) for j, v in enumerate(vals))
        coef.append(2 * s / n)
    coef[0] /= 2
    scale = max(abs(v) for v in vals)
    keep = max(i for i, c in enumerate(coef) if abs(c) > 1e-17 * scale) + 1
    return [float(c) for c in coef[:keep]]


def clenshaw(c, a, b, x):
    t = (2 * x - a - b) / (b - a)
    b1 = b2 = 0.0
    for ck in reversed(c[1:]):
        b1, b2 = 2 * t * b1 - b2 + ck, b1
    return t * b1 - b2 + c[0]


def report(name, c, a, b, f, arg):
    xs = np.linspace(a, b, 4001)
    worst = max(abs(clenshaw(c, a, b, arg(x)) / float(f(mp.mpf(x))) - 1) for x in xs)
    print(f"// {name}: {len(c)} terms, largest relative error {worst:.2e}")


erf_over_x = lambda s: mp.erf(mp.sqrt(s)) / mp.sqrt(s) if s > 0 else 2 / mp.sqrt(mp.pi)
c = cheb_fit(erf_over_x, 0.0, 1.0)
report("erf(x)/x in x² on [0, 1]", c, 0.0, 1.0, erf_over_x, lambda x: x)
print("const ERF_SMALL: [f64; %d] = [%s];" % (len(c), ", ".join(repr(v) for v in c)))
for a, b in [(1, 2), (2, 4), (4, 8), (8, 16), (16, 32)]:
    g = lambda x: mp.erfc(x) * mp.exp(x * x)
    c = cheb_fit(g, float(a), float(b))
    report(f"erfc(x)·exp(x²) on [{a}, {b}]", c, float(a), float(b), g, lambda x: x)
    print("const ERFC_%d_%d: [f64; %d] = [%s];" % (a, b, len(c), ", ".join(repr(v) for v in c)))
