"""Regenerates the README's performance table from compare.sh's JSON lines: the
median over rounds of each run's median step time, chainrule against PyTorch.

    python3 benches/peers/table.py target/compare.jsonl README.md
"""
import json
import statistics
import sys

NAMES = {
    "W1": "W1 seed CNN, batch 64",
    "W2": "W2 LeNet-like, batch 64",
    "W3": "W3 MLP, batch 128",
    "W4": "W4 matmul 1024³ fwd+bwd",
    "W5": "W5 conv 64→64 3×3 fwd+bwd",
    "W6": "W6 tape overhead, 3000 ops",
    "W7": "W7 one Linear used 3×",
    "W8": "W8 ResNet block with BatchNorm, batch 32",
    "W9": "W9 LSTM 28→128 over 28 steps, batch 64",
    "W10": "W10 transformer encoder layer, batch 32",
}
BEGIN, END = "<!-- compare.sh table -->", "<!-- /compare.sh table -->"


def cell(runs, key):
    """`ms (extra)` for one peer's runs of one workload and thread count."""
    ms = statistics.median(r["step"]["median_ms"] for r in runs)
    text = f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"
    if key == "W4" or key == "W5":
        text += f" ({statistics.median(r['gflops'] for r in runs):.0f} GFLOP/s)"
    if key == "W6":
        text += f" ({statistics.median(r['us_per_op'] for r in runs):.3g} µs/op)"
    return ms, text


def table(lines):
    runs, peak = {}, {}
    for line in lines:
        r = json.loads(line)
        if "peak_rss_kb" in r:
            peak[r["peer"]] = r["peak_rss_kb"]
        else:
            runs.setdefault((r["workload"], r["threads"], r["peer"]), []).append(r)
    rounds = max(len(v) for v in runs.values())
    rows = ["| workload | threads | chainrule ms | PyTorch ms | chainrule speed-up |", "|---|---|---|---|---|"]
    for w in NAMES:
        for t in (1, 2):
            if (w, t, "chainrule") not in runs or (w, t, "pytorch") not in runs:
                continue
            ours, ours_text = cell(runs[(w, t, "chainrule")], w)
            theirs, theirs_text = cell(runs[(w, t, "pytorch")], w)
            name = NAMES[w] if t == 1 else ""
            rows.append(f"| {name} | {t} | {ours_text} | {theirs_text} | {theirs / ours:.2f}× |")
    text = [f"Median over {rounds} alternating rounds of each run's median step time.", "", *rows]
    if peak:
        mib = {p: f"{kb / 1024:.0f} MiB" for p, kb in peak.items()}
        text += ["", f"Peak resident memory of W2 over 50 steps at 2 threads (`/usr/bin/time -v`): "
                     f"chainrule {mib.get('chainrule', '?')}, PyTorch {mib.get('pytorch', '?')}."]
    return "\n".join(text)


def main():
    results, readme = sys.argv[1], sys.argv[2]
    with open(results) as f:
        generated = table(l for l in f if l.strip())
    with open(readme) as f:
        text = f.read()
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    with open(readme, "w") as f:
        f.write(text[:start] + "\n" + generated + "\n" + text[stop:])
    print(generated)


if __name__ == "__main__":
    main()
