#!/usr/bin/env bash
# `mvitdsl bench` once on CPU for every shipped spec (eval, batch 1; the largest at a reduced
# --input): a smoke run that the command works for each, not a measurement.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
declare -A INPUT=([mvitv2_l_40x3]=3x8x224x224 [mvit_b_64x3]=3x16x224x224
                  [mvitv2_h_image]=3x160x160 [mvitv2_l_image]=3x160x160)
status=0
for f in specs/*.mv; do
  name=$(basename "$f" .mv)
  extra=()
  [ -n "${INPUT[$name]:-}" ] && extra=(--input "${INPUT[$name]}")
  line=$(.venv/bin/python -m mvitdsl.cli bench "$f" --reps 1 --warmup 0 --peak-tflops 1 \
    "${extra[@]}" --format json 2>/dev/null | .venv/bin/python -c \
    'import json,sys; r=json.load(sys.stdin); print("%9.0f ms  input %s" % (r["latency_ms_median"], "x".join(map(str, r["input"]))))') \
    || { line="FAILED"; status=1; }
  echo "$name: $line"
done
exit $status
