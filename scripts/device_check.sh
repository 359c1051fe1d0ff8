#!/usr/bin/env bash
# The GPU checks in one command, for a session lent a GPU machine (the `device` tool):
#   bash scripts/device_wheels.sh                                   # here, first
#   run(command="bash scripts/device_check.sh", carry=[".whl"], timeout_s=560)
# then give_back, and copy the figures into docs/PERFORMANCE.md. Logs and JSON go to $OUT.
# Runs: the `gpu` tests (CUDA parity with torchvision, bf16 build, artifact on CUDA,
# checkpointed bf16 training step) and benchmarks/run.py --only cuda (bf16 and fp32 eval
# throughput vs torchvision, matmul fraction, bf16 training-step peak memory).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/mvitdsl-device}"
PY="${PY:-python3}"
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
timeout 200 "$PY" -m pytest -q -p no:cacheprovider -m gpu -rs tests/test_gpu.py 2>&1 \
  | tee "$OUT/gpu_tests.log"
tests=${PIPESTATUS[0]}
timeout 300 "$PY" benchmarks/run.py --only cuda --reps 10 --cuda-batch 8 \
  --json "$OUT/cuda_bench.json" 2>&1 | tee "$OUT/cuda_bench.log"
bench=${PIPESTATUS[0]}
echo "device_check: gpu tests exit $tests, cuda benchmark exit $bench" | tee -a "$OUT/env.txt"
[ "$tests" = 0 ] && [ "$bench" = 0 ]
