#!/usr/bin/env bash
# Runs every workload (W1–W10) at 1 and 2 threads, alternating chainrule and PyTorch
# eager, ROUNDS times; records W2's peak RSS over 50 steps for both; writes every JSON
# line to target/compare.jsonl and regenerates the README's performance table from it.
#
#   benches/peers/compare.sh [PYTHON] [ROUNDS] [WORKLOADS...]
#
# With a list of workloads it only measures those and leaves the README alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${1:-python3}
rounds=${2:-2}
shift $(($# > 2 ? 2 : $#))
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(W1 W2 W3 W4 W5 W6 W7 W8 W9 W10)
cargo build --release --example workloads >&2
out=target/compare.jsonl
: > "$out"
chainrule=./target/release/examples/workloads
pytorch="$py benches/peers/pytorch_workloads.py"
for r in $(seq "$rounds"); do
  for w in "${workloads[@]}"; do
    for t in 1 2; do
      echo "round $r: $w, $t thread(s)" >&2
      $chainrule --workload "$w" --threads "$t" 2>/dev/null | tee -a "$out"
      $pytorch --workload "$w" --threads "$t" | tee -a "$out"
    done
  done
done
# Peak resident memory of W2 over 50 steps at 2 threads (WORKLOADS.md).
peak() { # peer command...
  local peer=$1; shift
  /usr/bin/time -v "$@" --workload W2 --threads 2 --steps 50 2>&1 >/dev/null |
    awk -v peer="$peer" '/Maximum resident set size/ {print "{\"peer\":\"" peer "\",\"peak_rss_kb\":" $NF "}"}' |
    tee -a "$out"
}
peak chainrule $chainrule
peak pytorch $pytorch
if [ $# -eq 0 ]; then
  "$py" benches/peers/table.py "$out" README.md
fi
