#!/usr/bin/env bash
# Create (once per content of requirements-dev.txt) the virtualenv the tests run in,
# and print its path. The venv lives in a cache outside the checkout so that a fresh
# clone on the same machine reuses it; a change to the pins builds a new one beside it.
# A lock keeps concurrent callers from building (or using) a half-built venv.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${SELFHOST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/selfhost-platform}
hash=$( (cat "$root/requirements-dev.txt"; python3 --version) | sha256sum | cut -c1-12)
venv="$cache/venv-$hash"
mkdir -p "$cache"
if [ ! -f "$venv/.complete" ]; then
  exec 9>"$cache/.venv.lock"
  flock 9
  if [ ! -f "$venv/.complete" ]; then
    printf '[ensure-venv] building %s\n' "$venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$root/requirements-dev.txt" >"$cache/pip-install.log" 2>&1 \
      || { grep -v '^WARNING: Location' "$cache/pip-install.log" | tail -n 40 >&2; exit 1; }
    touch "$venv/.complete"
  fi
  flock -u 9
fi
printf '%s\n' "$venv"
