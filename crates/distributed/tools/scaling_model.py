#!/usr/bin/env python3
"""Scaling model for data-parallel training (docs/distributed.md).

Ring all-reduce of S bytes over n ranks: t(n) = 2(n-1)·α + 2(n-1)/n · S/β, with α the
per-message latency and β the link bandwidth. With the global batch fixed, each rank's
backward takes T_bwd/n; communication stays hidden behind backward (fine buckets) while
t(n) <= T_bwd/n. Prints, per model and link, the all-reduce time at 8 and 64 ranks
and the largest n for which communication still hides.

Inputs are the figures measured on the development machine (see the doc); edit them
to plan for another model or machine.
"""

# model: parameters (gradient bytes are 4 per parameter in f32); the one-process
# backward ms at global batch 64 comes as a JSON object on the command line
MODELS = {
    "seed CNN (W1)": 4_408,
    "LeNet (W2)": 1_199_882,
    "ResNet-BN example": 31_434,
}
LINKS = {"10 Gb/s": (10e9 / 8, 20e-6), "25 Gb/s": (25e9 / 8, 8e-6), "100 Gb/s": (100e9 / 8, 3e-6)}


def ring(n, size, bandwidth, latency):
    return 2 * (n - 1) * latency + 2 * (n - 1) / n * size / bandwidth


def crossover(size, backward, bandwidth, latency):
    n = 1
    while n < 100_000 and ring(n + 1, size, bandwidth, latency) <= backward / (n + 1):
        n += 1
    return n


def main(backward_ms):
    print("| model | gradient bytes (f32) | link | all-reduce at 8 ranks | at 64 ranks | ranks while hidden |")
    print("|---|---|---|---|---|---|")
    for name, params in MODELS.items():
        size = 4 * params
        backward = backward_ms[name] / 1e3
        for link, (bw, lat) in LINKS.items():
            print(
                f"| {name} | {size / 1e6:.3f} MB | {link} (α {lat * 1e6:.0f} µs) "
                f"| {ring(8, size, bw, lat) * 1e3:.3f} ms | {ring(64, size, bw, lat) * 1e3:.3f} ms "
                f"| {crossover(size, backward, bw, lat)} |"
            )


if __name__ == "__main__":
    import json
    import sys

    main(json.loads(sys.argv[1]))
