#!/usr/bin/env bash
# Runs every workload at 1 and 2 threads, alternating chainrule and PyTorch eager,
# and prints one JSON line per run. Usage: benches/peers/compare.sh [PYTHON] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${1:-python3}
rounds=${2:-1}
cargo build --release --example workloads >&2
for r in $(seq "$rounds"); do
  for w in W1 W2 W3 W4 W5 W6 W7; do
    for t in 1 2; do
      ./target/release/examples/workloads --workload "$w" --threads "$t" 2>/dev/null
      "$py" benches/peers/pytorch_workloads.py --workload "$w" --threads "$t"
    done
  done
done
