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
# What users need is in it (the licence, the controller requirements), the workshop is not
# (galaxy.yml build_ignore): tests and their lab, benchmarks, developer tooling.
contents=$(tar -tzf "$tarball" | sed 's#^\./##')
for required in COPYING requirements.txt requirements.yml meta/runtime.yml meta/execution-environment.yml \
  README.md inventories/prod/hosts.yml inventories/staging/hosts.yml; do
  if ! grep -qxF "$required" <<<"$contents"; then
    echo "build-check: $(basename "$tarball") lacks $required" >&2
    exit 1
  fi
done
workshop='^(molecule|bench|scripts|images|\.config|\.ci|\.github|inventories/lab|tests/unit|tests/mitogen)(/|$)'
workshop+='|^(Makefile|ansible\.cfg|requirements-dev\.txt|requirements-mitogen\.txt|\.ansible-lint|\.yamllint|\.gitignore)$'
if shipped=$(grep -E "$workshop" <<<"$contents"); then
  echo "build-check: $(basename "$tarball") ships workshop files (galaxy.yml build_ignore):" >&2
  echo "$shipped" >&2
  exit 1
fi
# With dependency resolution, offline: galaxy.yml's lower bounds must be met by the collections
# the tests run (the pinned `ansible` bundle), or they claim versions nobody tested.
ANSIBLE_COLLECTIONS_PATH="$work/collections" ansible-galaxy collection install --offline -p "$work/collections" "$tarball" >/dev/null
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
echo "build-check: $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB) builds, holds COPYING and no workshop files," \
  "installs with its dependencies met by the tested collections, and its playbooks load from the installed copy"
