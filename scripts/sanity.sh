#!/usr/bin/env bash
# ansible-test sanity on a staged copy of the collection (ansible-test needs the
# ansible_collections/<namespace>/<name> layout and a git tree it can list).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest=$("$root/scripts/stage-collection.sh" "$work")
cd "$dest"
git init -q && git add -A && git -c user.name=ci -c user.email=ci@localhost commit -qm staged
ansible-test sanity --python "$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" --color no "$@"
echo "sanity: ok"
