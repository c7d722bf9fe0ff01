#!/usr/bin/env bash
# ansible-test sanity on a staged copy of the collection (ansible-test needs the
# ansible_collections/<namespace>/<name> layout and a git tree it can list).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pyver=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')

# ansible-test keeps its sanity virtualenvs in ~/.ansible/test: one run at a time.
mkdir -p ~/.ansible/test/cache
exec 9>~/.ansible/test/.selfhost-sanity.lock
flock 9

# Its pip bootstrap script is downloaded from a host the lab cannot reach; ansible-test
# takes a hand-placed copy from its cache (see scripts/ansible-test-get-pip.py).
pip_version=$(python - <<'PY'
import pathlib, re, ansible_test
src = (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PY
)
cp -f "$root/scripts/ansible-test-get-pip.py" ~/.ansible/test/cache/get_pip_"${pip_version//./_}".py

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest=$("$root/scripts/stage-collection.sh" "$work")
cd "$dest"
git init -q && git add -A && git -c user.name=ci -c user.email=ci@localhost commit -qm staged
ansible-test sanity --python "$pyver" --color no "$@"
echo "sanity: ok"
