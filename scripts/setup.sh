#!/usr/bin/env bash
# Set up everything mvitdsl needs on a fresh machine; idempotent and quick when already done.
#   - Debian's graphviz (the `dot` program) when it is missing
#   - Debian's chromium and chromium-driver (the HTML report's browser test) when missing
#   - Debian's postgresql (initdb, postgres) when missing: tests/test_search.py starts a throwaway
#     server for the search's RDB storage
#   - a shared environment with the pinned third-party requirements ONLY, kept OUTSIDE the clone
#     and keyed by a hash of requirements/dev.txt, so fresh clones (CI) reuse it instead of a new
#     5.5 GB copy; nothing of any clone is ever installed into it
#   - ./.venv: this clone's own small environment on top of the shared one (a .pth file adds the
#     shared site-packages), holding this clone's editable install of mvitdsl, so two clones on
#     one machine never run each other's code
set -euo pipefail
cd "$(dirname "$0")/.."
clone="$(pwd)"

if ! command -v dot >/dev/null 2>&1; then
  echo "setup: installing graphviz (dot) from Debian"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq graphviz >/dev/null
fi
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "setup: installing chromium and chromium-driver from Debian (the report's browser test)"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium chromium-driver >/dev/null
fi

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  echo "setup: installing postgresql (initdb, postgres) from Debian"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq postgresql >/dev/null
fi

req=requirements/dev.txt
key=$(sha256sum "$req" | cut -c1-12)
root="${MVITDSL_VENV_ROOT:-$HOME/.cache/mvitdsl}"
shared="$root/venv-$key"
if [ ! -f "$shared/.complete" ]; then
  echo "setup: creating $shared (torch, torchvision, ... from $req; a few minutes)"
  rm -rf "$shared"
  mkdir -p "$root"
  python3 -m venv "$shared"
  "$shared/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
  "$shared/bin/pip" install -q -r "$req" 2> >(grep -v "is ignored" >&2)
  touch "$shared/.complete"
fi
# test-only references (pytorchvideo's MViT builder), without their video-decoding deps
if ! "$shared/bin/python" -c "import pytorchvideo, fvcore" 2>/dev/null; then
  "$shared/bin/pip" install -q --no-deps -r requirements/refs.txt 2> >(grep -v "is ignored" >&2) || true
fi

# A .venv symlink (older set-ups pointed it at the shared environment) becomes a real folder.
[ -L .venv ] && rm -f .venv
stamp=".venv/.mvitdsl-shared"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$shared" ]; then
  rm -rf .venv
  "$shared/bin/python" -m venv --without-pip .venv
  shared_site=$("$shared/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  own_site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  # An executable .pth line: the shared packages, their own .pth files processed too.
  echo "import site; site.addsitedir('$shared_site')" > "$own_site/zz_mvitdsl_shared.pth"
  echo "$shared" > "$stamp"
fi
# This clone's editable install, in this clone's .venv only (pip runs from the shared env).
"$shared/bin/pip" --python .venv/bin/python install -q --no-deps --no-build-isolation \
  --no-index -e "$clone" >/dev/null
echo "setup: ready (.venv: this clone's mvitdsl on top of $shared)"
