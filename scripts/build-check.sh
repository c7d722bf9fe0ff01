#!/usr/bin/env bash
# The collection builds, installs with ansible-galaxy, and its playbooks load from
# the installed copy (FQCN names only): what a Galaxy user gets.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"
unset ANSIBLE_CONFIG
ansible-galaxy collection build --force --output-path "$work/dist" . >/dev/null
tarball=$(ls "$work"/dist/selfhost-platform-*.tar.gz)
ANSIBLE_COLLECTIONS_PATH="$work/collections" ansible-galaxy collection install --offline --no-deps -p "$work/collections" "$tarball" >/dev/null
# Outside the checkout, with only the installed copy (and the venv's bundled collections) on the path.
cd "$work"
printf '[defaults]\ncollections_path = %s\n' "$work/collections" >"$work/ansible.cfg"
export ANSIBLE_CONFIG="$work/ansible.cfg" ANSIBLE_HOST_PATTERN_MISMATCH=ignore
installed="$work/collections/ansible_collections/selfhost/platform"
for playbook in "$installed"/playbooks/*.yml "$installed"/playbooks/runbooks/*.yml; do
  name=${playbook#"$installed/playbooks/"}
  name=${name%.yml}
  ansible-playbook -i localhost, --syntax-check "selfhost.platform.${name//\//.}" >/dev/null
done
ansible-doc -t role selfhost.platform.base >/dev/null
echo "build-check: $(basename "$tarball") builds, installs, and its playbooks load from the installed copy"
