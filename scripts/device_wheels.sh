#!/usr/bin/env bash
# Here, once before a GPU session's one device call: download into .whl/ (git-ignored) the
# wheels the GPU image lacks (its python3 is 3.12 with torch, torchvision, networkx,
# safetensors, hypothesis, onnx; no lark, pydantic or graphviz). See scripts/device_check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
pin() { grep -i "^$1==" requirements/dev.txt | head -1; }
rm -rf .whl && mkdir -p .whl
# pydantic's own needs are not in the image either; their versions are those pydantic pins
wants=("$(pin lark)" "$(pin pydantic)" "$(pin graphviz)" pydantic-core annotated-types typing-inspection)
core=$(.venv/bin/python - <<'PY'
import importlib.metadata as m, re
try:
    req = [r for r in m.requires("pydantic") if r.startswith("pydantic-core")][0]
    print(re.sub(r"[ ;].*", "", req.replace(" ", "")))
except Exception:
    print("pydantic-core")
PY
)
wants[3]="$core"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "${wants[@]}"
ls -1 .whl
