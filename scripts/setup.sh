#!/usr/bin/env bash
# Set up everything mvitdsl needs on a fresh machine; idempotent and quick when already done.
#   - Debian's graphviz (the `dot` program) when it is missing
#   - a virtual environment with the pinned requirements, kept OUTSIDE the clone and keyed by a
#     hash of requirements/dev.txt, so fresh clones (CI) reuse it instead of a new 5.5 GB copy
#   - mvitdsl itself, installed editable, and ./.venv pointing at that environment
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dot >/dev/null 2>&1; then
  echo "setup: installing graphviz (dot) from Debian"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq graphviz >/dev/null
fi

req=requirements/dev.txt
key=$(sha256sum "$req" | cut -c1-12)
root="${MVITDSL_VENV_ROOT:-$HOME/.cache/mvitdsl}"
venv="$root/venv-$key"
if [ ! -f "$venv/.complete" ]; then
  echo "setup: creating $venv (torch, torchvision, ... from $req; a few minutes)"
  rm -rf "$venv"
  mkdir -p "$root"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
  "$venv/bin/pip" install -q -r "$req" 2> >(grep -v "is ignored" >&2)
  touch "$venv/.complete"
fi
# test-only references (pytorchvideo's MViT builder), without their video-decoding deps
if ! "$venv/bin/python" -c "import pytorchvideo, fvcore" 2>/dev/null; then
  "$venv/bin/pip" install -q --no-deps -r requirements/refs.txt 2> >(grep -v "is ignored" >&2) || true
fi
"$venv/bin/pip" install -q --no-deps --no-build-isolation -e . >/dev/null
ln -sfn "$venv" .venv
echo "setup: ready (.venv -> $venv)"
