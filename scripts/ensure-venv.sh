#!/usr/bin/env bash
# Create (once per content of requirements-dev.txt) the virtualenv the tests run in,
# and print its path. The venv lives in a cache outside the checkout so that a fresh
# clone on the same machine reuses it; a change to the pins builds a new one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${SELFHOST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/selfhost-platform}
hash=$( (cat "$root/requirements-dev.txt"; python3 --version) | sha256sum | cut -c1-12)
venv="$cache/venv-$hash"
if [ ! -x "$venv/bin/ansible-playbook" ] || [ ! -f "$venv/.complete" ]; then
  printf '[ensure-venv] building %s\n' "$venv" >&2
  mkdir -p "$cache"
  # Only one venv is kept: older pins are dropped.
  find "$cache" -maxdepth 1 -name 'venv-*' -type d -exec rm -rf {} +
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$root/requirements-dev.txt" >"$cache/pip-install.log" 2>&1 \
    || { grep -v '^WARNING: Location' "$cache/pip-install.log" | tail -n 40 >&2; exit 1; }
  touch "$venv/.complete"
fi
printf '%s\n' "$venv"
