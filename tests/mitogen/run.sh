#!/usr/bin/env bash
# Mitogen test (make mitogen): ONE fresh lab host, reached over SSH as a sudo user (what an
# operator runs), converged with playbooks/hardening.yml (base, firewall, sshd, fail2ban,
# hardening) through Mitogen, then again: the rerun must report changed=0. Then checks.yml
# (connection stack ssh+sudo, become_user, command with stdin, async, sshd answers, UFW
# active) through Mitogen and once more with plain Ansible. Exits non-zero on any failure.
# Usage: scripts/venv-exec tests/mitogen/run.sh    (TEST_TIMEOUT=1800 seconds per playbook)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# shellcheck source=scripts/lib-lab.sh
. scripts/lib-lab.sh
label="selfhost.mitogen-test=$$"
work=$(mktemp -d)
trap 'lab_remove "$label"; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
limit=${TEST_TIMEOUT:-1800}
start_all=$(date +%s)
say() { printf '[mitogen-test] %s\n' "$*" >&2; }

name=$(lab_start_hosts "mitogen-test$$" 1 "$label")
ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")
gateway=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}' "$name")
ssh-keygen -q -t ed25519 -N '' -f "$work/key"
lab_prepare_ssh "$name" deploy "$work/key.pub"

cat >"$work/hosts.yml" <<INV
lab:
  hosts:
    $name:
      ansible_host: $ip
      ansible_user: deploy
      ansible_ssh_private_key_file: $work/key
      ansible_ssh_common_args: -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes
      # Mitogen puts its own StrictHostKeyChecking option before ssh_common_args (ssh takes the
      # first): host key checking is turned off by this variable, which both paths read.
      ansible_host_key_checking: false
      ansible_python_interpreter: /usr/bin/python3
      base_admin_users:
        - name: deploy
          ssh_keys: ["$(cat "$work/key.pub")"]
      sshd_allow_users: [deploy]
      sshd_port_check_host: $ip
      fail2ban_ignoreip: [$gateway]
      # As in the lab (inventories/lab/group_vars/all.yml): AIDE's first database and
      # rkhunter's re-hashing take minutes and test nothing about the connection.
      hardening_aide_enabled: false
      hardening_rkhunter_enabled: false
INV
# A fact cache of this run only.
export ANSIBLE_CACHE_PLUGIN_CONNECTION="$work/facts" ANSIBLE_NOCOLOR=1

play() { # play LOG MITOGEN(0|1) ARGS... -> seconds on stdout; the log's tail on failure
  local log=$1 mitogen=$2 start rc=0
  shift 2
  start=$(date +%s.%N)
  if [ "$mitogen" = 1 ]; then
    timeout "$limit" scripts/mitogen-env ansible-playbook -i "$work/hosts.yml" "$@" >"$log" 2>&1 || rc=$?
  else
    timeout "$limit" ansible-playbook -i "$work/hosts.yml" "$@" >"$log" 2>&1 || rc=$?
  fi
  if [ "$rc" != 0 ]; then
    say "FAILED (rc $rc): ansible-playbook $*"
    tail -n 60 "$log" >&2
    return 1
  fi
  awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}
changed() { grep -Eo 'changed=[0-9]+' "$1" | tail -n 1 | cut -d= -f2; }

say "converge playbooks/hardening.yml over SSH through Mitogen ($name, $ip)"
first=$(play "$work/first.log" 1 playbooks/hardening.yml)
say "first converge: ${first}s; rerun"
rerun=$(play "$work/rerun.log" 1 playbooks/hardening.yml)
say "rerun: ${rerun}s"
rerun_changed=$(changed "$work/rerun.log")
if [ "$rerun_changed" != 0 ]; then
  say "FAILED: the rerun through Mitogen reported changed=$rerun_changed"
  grep -E '^changed:' -B2 "$work/rerun.log" >&2 || true
  exit 1
fi
say "checks through Mitogen, then with plain Ansible"
play "$work/checks-mitogen.log" 1 tests/mitogen/checks.yml -e mitogen_expected=true >/dev/null
play "$work/checks-plain.log" 0 tests/mitogen/checks.yml -e mitogen_expected=false >/dev/null
printf 'mitogen test passed: first converge %ss, rerun %ss (changed=0), checks through Mitogen and plain; %ss in all (load average %s)\n' \
  "$first" "$rerun" "$(($(date +%s) - start_all))" "$(cut -d' ' -f1-3 /proc/loadavg)"
