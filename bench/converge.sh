#!/usr/bin/env bash
# Converge-speed benchmark of playbooks/site.yml, measured in one run on fresh lab hosts:
#   for each N in BENCH_HOSTS_LIST (default "1 2 4 8"): N hosts with the platform's service
#   groups spread over them (1 host = the single-VPS layout, 4 = one set per host, 8 = two of
#   each; scripts/lib-lab.sh, docs/site.md), first converge, then the idempotent rerun, which
#   must report changed=0 on every host. Prints the times and the ratios N hosts / 1 host and
#   rerun / first. The single-VPS layout (N=1) is always measured: it is the reference.
# Run it through `make bench` (virtualenv, engine and lab image are set up first).
# Logs: bench/results/converge-<date>/ (N-first.log, N-rerun.log).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib-lab.sh
. scripts/lib-lab.sh
label="selfhost.bench=$$"
work=$(mktemp -d)
trap 'lab_remove "$label"; rm -rf "$work"' EXIT
ssh-keygen -q -t ed25519 -N '' -f "$work/key"
results="$root/bench/results/converge-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$results"
# A fact cache of this run only (ansible.cfg keeps one under .cache/ for everyday runs).
export ANSIBLE_CACHE_PLUGIN_CONNECTION="$work/facts"
list=" ${BENCH_HOSTS_LIST:-1 2 4 8} "
case "$list" in *" 1 "*) ;; *) list=" 1$list" ;; esac
timeout_s=${BENCH_TIMEOUT:-3600}

converge() { # converge INVENTORY LOG -> seconds on stdout
  local start end
  start=$(date +%s.%N)
  timeout "$timeout_s" ansible-playbook -i "$1" playbooks/site.yml >"$2" 2>&1 || { tail -n 40 "$2" >&2; return 1; }
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }'
}

max_changed() { grep -Eo 'changed=[0-9]+' "$1" | cut -d= -f2 | sort -n | tail -n 1; }

declare -A first rerun changed tasks
status=0
for n in $list; do
  printf '[bench] %s host(s): starting fresh lab hosts\n' "$n" >&2
  inv="$work/n$n"
  mkdir -p "$inv"
  # The lab inventory's group_vars (lab-only values), next to this run's hosts.yml.
  ln -s "$root/inventories/lab/group_vars" "$inv/group_vars"
  mapfile -t hosts < <(lab_start_hosts "bench$$-n$n" "$n" "$label")
  lab_write_inventory "$inv/hosts.yml" "$(cat "$work/key.pub")" spread "${hosts[@]}"
  printf '[bench] %s host(s): first converge\n' "$n" >&2
  first[$n]=$(converge "$inv/hosts.yml" "$results/$n-first.log")
  printf '[bench] %s host(s): idempotent rerun\n' "$n" >&2
  rerun[$n]=$(converge "$inv/hosts.yml" "$results/$n-rerun.log")
  changed[$n]=$(max_changed "$results/$n-rerun.log")
  tasks[$n]=$(grep -Eo 'ok=[0-9]+' "$results/$n-first.log" | cut -d= -f2 | awk '{ s += $1 } END { print s }')
  [ "${changed[$n]}" = 0 ] || status=1
  # One size at a time: the machine is shared.
  for name in "${hosts[@]}"; do docker rm -f "$name" >/dev/null; done
done

printf '\nsite.yml converge, load average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %-26s %9s %9s %8s %10s %11s %8s\n' hosts layout "first(s)" "rerun(s)" changed "first/1host" "rerun/first" "ok tasks"
for n in $list; do
  case "$n" in 1) layout="single VPS (every group)" ;; 2) layout="2 sets per host" ;; 4) layout="1 set per host" ;; *) layout="sets round-robin" ;; esac
  printf '%-6s %-26s %9.1f %9.1f %8s %10.2f %11.2f %8s\n' "$n" "$layout" "${first[$n]}" "${rerun[$n]}" "${changed[$n]}" \
    "$(awk -v a="${first[$n]}" -v b="${first[1]}" 'BEGIN { print a / b }')" \
    "$(awk -v a="${rerun[$n]}" -v b="${first[$n]}" 'BEGIN { print a / b }')" "${tasks[$n]}"
done
printf '(changed = the highest changed= of any host on the rerun; must be 0. Logs: %s)\n' "$results"
exit "$status"
