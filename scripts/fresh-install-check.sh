#!/usr/bin/env bash
# A new user's path, end to end: a virtualenv with only `pip install ansible` and the
# collection's requirements.txt (the README's install section), the built tarball installed
# with ansible-galaxy, then the installed `selfhost.platform.site` converging the single-VPS
# layout on one fresh lab host over SSH, from a directory with no ansible.cfg of ours, and a
# second converge that must report changed=0.
#   scripts/fresh-install-check.sh          (make fresh-install-check; about 11 min here)
# Not part of `make test`: it downloads Ansible from PyPI and converges the whole platform.
# FRESH_RERUN=0 skips the second converge. Logs stay in FRESH_LOGS (default a temporary
# directory, printed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib-lab.sh
. scripts/lib-lab.sh
label="selfhost.fresh=$$"
work=$(mktemp -d)
logs=${FRESH_LOGS:-$work/logs}
mkdir -p "$logs"
trap 'lab_remove "$label"; [ -n "${FRESH_LOGS:-}" ] || echo "[fresh] logs were in $logs (removed)" >&2; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
say() { printf '[fresh] %s\n' "$*" >&2; }
recap() { grep -A3 '^PLAY RECAP' "$1" | grep -E 'ok=' || true; }

say "building the tarball"
scripts/venv-exec ansible-galaxy collection build --force --output-path "$work/dist" . >/dev/null
tarball=$(ls "$work"/dist/selfhost-platform-*.tar.gz)

say "a virtualenv with only 'pip install ansible' and requirements.txt (from PyPI)"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q ansible -r requirements.txt >"$logs/pip.log" 2>&1 \
  || { tail -n 20 "$logs/pip.log" >&2; exit 1; }
export PATH="$work/venv/bin:$PATH"
say "$(ansible --version | head -n 1), ansible $(pip show ansible 2>/dev/null | sed -n 's/^Version: //p')"

# Galaxy is unreachable here: --offline, the dependencies are the ones `pip install ansible` brought.
mkdir -p "$work/user"
cd "$work/user"
printf '[defaults]\ncollections_path = %s\n' "$work/collections" >ansible.cfg
export ANSIBLE_CONFIG="$work/user/ansible.cfg" ANSIBLE_NOCOLOR=1
ansible-galaxy collection install --offline -p "$work/collections" "$tarball" >"$logs/galaxy.log" 2>&1 \
  || { cat "$logs/galaxy.log" >&2; exit 1; }

say "one fresh lab host, reached over SSH as the lab's admin user"
ssh-keygen -q -t ed25519 -N '' -f "$work/key"
name=$(lab_start_hosts "selfhost-fresh" 1 "$label")
lab_prepare_ssh "$name" operator "$work/key.pub"
# The lab's settings (self-signed edge certificate, local restic repository, the sample app):
# a copy, as a user's own inventory would be.
cp -r "$root/inventories/lab" inventory
LAB_SSH_KEY="$work/key" lab_write_inventory inventory/hosts.yml "$(cat "$work/key.pub")" spread "$name"

converge() { # converge NAME: run the installed site playbook, log to $logs/NAME.log
  local start=$SECONDS
  if ! ansible-playbook -i inventory selfhost.platform.site >"$logs/$1.log" 2>&1; then
    tail -n 40 "$logs/$1.log" >&2
    say "$1 converge failed after $((SECONDS - start)) s"
    exit 1
  fi
  say "$1 converge: $((SECONDS - start)) s, $(recap "$logs/$1.log" | tr -s ' ')"
}
converge first
if [ "${FRESH_RERUN:-1}" != 0 ]; then
  converge second
  if ! recap "$logs/second.log" | grep -q 'changed=0 '; then
    say "the second converge changed something:"
    grep -B1 '^changed:' "$logs/second.log" | grep '^TASK' >&2 || true
    exit 1
  fi
fi
say "passed: the installed tarball converges the single-VPS layout from a fresh virtualenv"
