#!/usr/bin/env bash
# The GPU checks in one command of at most 10 minutes, for a session lent a GPU machine:
#   bash scripts/device_wheels.sh                                   # here, first
#   run(command="bash scripts/device_check.sh", carry=[".whl"], timeout_s=590)
# then give_back, and copy the figures into docs/PERFORMANCE.md. Logs and JSON go to $OUT.
# In this order, each step bounded by `timeout`, each result kept when a later one fails:
#   1. the `gpu` tests: fp32 parity with torchvision on CUDA, bf16 build, bf16 autocast
#      training (a CPU-built model moved to CUDA, the CPU layer's op included), fp16 autocast
#      with a GradScaler, checkpointed bf16 training, the artifact on CUDA;
#   2. `mvitdsl bench` for mvit_b and mvitv2_s against torchvision in bf16 autocast, eval
#      (batch 8) and training (batch 4);
#   3. the same in fp32 eval;
#   4. torch.compile of mvit_b in bf16 eval, if time remains (budget: $BUDGET seconds).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/mvitdsl-device}"
PY="${PY:-python3}"
BUDGET="${BUDGET:-580}"
START=$(date +%s)
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
  "$PY" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision',
    torchvision.__version__, 'cuda', torch.cuda.is_available())"
} 2>&1 | tee "$OUT/env.txt"

left() { echo $(( BUDGET - ($(date +%s) - START) )); }
status=0
step() {  # step NAME SECONDS COMMAND...: run if the budget allows, bounded, logged
  local name=$1 limit=$2; shift 2
  if [ "$(left)" -lt "$limit" ]; then
    limit=$(left)
    [ "$limit" -lt 30 ] && { echo "skipped $name: no time left" | tee -a "$OUT/env.txt"; return; }
  fi
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 30 "$OUT/$name.log"
  echo "step $name: exit $rc ($(( $(date +%s) - START )) s)" | tee -a "$OUT/env.txt"
  [ "$rc" = 0 ] || status=1
}
bench() {  # bench NAME SPEC ARGS...: JSON result in $OUT/NAME.json
  local name=$1 spec=$2; shift 2
  step "$name" 70 sh -c "\"$PY\" -m mvitdsl.cli bench specs/$spec.mv --device cuda $* \
    --format json > \"$OUT/$name.json\""
}

step gpu_tests 200 "$PY" -m pytest -q -p no:cacheprovider -m gpu -rs tests/test_gpu.py
for spec in mvit_b mvitv2_s; do
  bench "bench_${spec}_bf16_eval" "$spec" --dtype bf16 --batch 8 --reps 10 --warmup 3 \
    --against torchvision
  bench "bench_${spec}_bf16_train" "$spec" --dtype bf16 --batch 4 --train --reps 10 \
    --warmup 3 --against torchvision
done
for spec in mvit_b mvitv2_s; do
  bench "bench_${spec}_fp32_eval" "$spec" --batch 8 --reps 10 --warmup 3 --against torchvision
done
bench bench_mvit_b_bf16_eval_compile mvit_b --dtype bf16 --batch 8 --reps 10 --warmup 2 \
  --compile --against torchvision
echo "device_check: exit $status after $(( $(date +%s) - START )) s" | tee -a "$OUT/env.txt"
exit $status
