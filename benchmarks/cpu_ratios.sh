#!/usr/bin/env bash
# The CPU figures of docs/PERFORMANCE.md ("issue 11"), in one go, each a side-by-side run of
# `mvitdsl bench --against torchvision` (alternating, same weights); JSON into $OUT.
#   bash benchmarks/cpu_ratios.sh            # OUT=bench-results by default
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench-results}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
B=".venv/bin/python -m mvitdsl.cli bench"
REPS="${REPS:-5}"
for threads in 2 1; do
  for spec in mvit_b mvitv2_s; do
    $B specs/$spec.mv --against torchvision --reps "$REPS" --threads $threads --format json \
      > "$OUT/${spec}_eval_t$threads.json"
    $B specs/$spec.mv --against torchvision --reps "$REPS" --threads $threads --format json \
      --train --batch 2 --input 3x8x128x128 > "$OUT/${spec}_train_t$threads.json"
  done
done
# what the CPU layer buys: the semantic graph alone
for spec in mvit_b mvitv2_s; do
  $B specs/$spec.mv --against torchvision --reps "$REPS" --threads 2 --format json \
    --train --batch 2 --input 3x8x128x128 --no-optimize > "$OUT/${spec}_train_t2_semantic.json"
  $B specs/$spec.mv --against torchvision --reps "$REPS" --threads 2 --format json \
    --no-optimize > "$OUT/${spec}_eval_t2_semantic.json"
done
# peak training memory, each model in its own process (benchmarks/run.py)
.venv/bin/python benchmarks/run.py --only cpu-memory --reps 2 --threads 2 | tee "$OUT/memory.txt"
.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
for f in sorted(Path(sys.argv[1]).glob("*.json")):
    r = json.loads(f.read_text())
    a = r["against"]
    print(f"{f.stem:<28} torchvision {a['latency_ms_median']:8.1f} ms  mvitdsl "
          f"{r['latency_ms_median']:8.1f} ms  ratio {a['ratio']:.2f}x  ({r['threads']} threads)")
PY
