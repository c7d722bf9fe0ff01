#!/usr/bin/env bash
# Copy the collection's tracked and new (not ignored) files to
# <dir>/ansible_collections/selfhost/platform, the layout ansible-test and
# plugin imports need, and print that path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: stage-collection.sh DIR}
dest="$dir/ansible_collections/selfhost/platform"
rm -rf "$dest"
mkdir -p "$dest"
cd "$root"
git ls-files -z --cached --others --exclude-standard | xargs -0 -r ls -d 2>/dev/null | tar -cf - -T - | tar -xf - -C "$dest"
printf '%s\n' "$dest"
