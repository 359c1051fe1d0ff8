#!/usr/bin/env bash
# Build the VS Code extension non-interactively: node_modules from package-lock.json (npm ci),
# cached OUTSIDE the clone and keyed by a hash of the lockfile (as scripts/setup.sh keeps the
# Python environment), the grammar's scope test, then build/mvitdsl.vsix.
#   bash editors/vscode/build.sh            # test the grammar and package
#   bash editors/vscode/build.sh --test     # the grammar test only
set -euo pipefail
cd "$(dirname "$0")"
key=$(sha256sum package-lock.json | cut -c1-12)
root="${MVITDSL_VENV_ROOT:-$HOME/.cache/mvitdsl}"
cache="$root/npm-$key"
mkdir -p "$root"
# one build at a time (parallel test workers, two clones): npm ci, the link and the .vsix
exec 9>"$root/npm-build.lock"
flock 9
if [ ! -f "$cache/.complete" ]; then
  echo "vscode: npm ci into $cache (once per lockfile)"
  rm -rf "$cache"
  mkdir -p "$cache"
  cp package.json package-lock.json "$cache/"
  (cd "$cache" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  touch "$cache/.complete"
fi
# node_modules here is a link into the cache (a real folder left by `npm install` is kept)
if [ -L node_modules ] || [ ! -e node_modules ]; then
  ln -sfn "$cache/node_modules" node_modules
fi
export PATH="$PWD/node_modules/.bin:$PATH"
node build-grammar.js
vscode-tmgrammar-test -g syntaxes/mvitdsl.tmLanguage.json "test/*.test.mv"
[ "${1:-}" = "--test" ] && exit 0
mkdir -p build
vsce package --out build/mvitdsl.vsix
