#!/usr/bin/env bash
# Plugin unit tests, importing the plugins by their collection path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ansible_collections/selfhost"
ln -s "$root" "$work/ansible_collections/selfhost/platform"
cd "$work/ansible_collections/selfhost/platform"
# Test files or directories given as arguments (relative to the checkout) replace tests/unit;
# options alone (-q, -k EXPR) keep it. pytest exits 5 when it collects nothing: that is a
# failure here, as it should be.
paths=(tests/unit)
for arg in "$@"; do
  case "$arg" in -*) ;; *) [ -e "${arg%%::*}" ] && paths=() ;; esac
done
PYTHONPATH="$work${PYTHONPATH:+:$PYTHONPATH}" python -m pytest -p no:cacheprovider "${paths[@]}" "$@"
