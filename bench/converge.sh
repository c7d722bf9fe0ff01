#!/usr/bin/env bash
# Converge-speed benchmark of playbooks/site.yml, measured in one run on fresh lab hosts:
#   for each N in BENCH_HOSTS_LIST (default "1 2 4 8"): N hosts with the platform's service
#   groups spread over them (1 host = the single-VPS layout, 4 = one set per host, 8 = two of
#   each; scripts/lib-lab.sh, docs/site.md), first converge, then the idempotent rerun, which
#   must report changed=0 on every host. Prints the times and the ratios N hosts / 1 host and
#   rerun / first. The single-VPS layout (N=1) is always measured: it is the reference.
#   BENCH_MITOGEN=0 (default) plain Ansible; 1 through Mitogen; both: plain, then Mitogen, on
#   fresh hosts each, with a plain/Mitogen ratio. Mitogen reaches the hosts as
#   `ansible_connection: docker` (its mitogen_docker; community.docker.docker is not accelerated,
#   docs/mitogen.md).
# Run it through `make bench` (virtualenv, engine and lab image are set up first).
# Logs: bench/results/converge-<date>/ (N-MODE-first.log, N-MODE-rerun.log).
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

case ${BENCH_MITOGEN:-0} in
  both) modes=(plain mitogen) ;;
  1) modes=(mitogen) ;;
  *) modes=(plain) ;;
esac

converge() { # converge MODE INVENTORY LOG -> seconds on stdout
  local start end wrap=()
  [ "$1" = mitogen ] && wrap=("$root/scripts/mitogen-env")
  start=$(date +%s.%N)
  timeout "$timeout_s" "${wrap[@]}" ansible-playbook -i "$2" playbooks/site.yml >"$3" 2>&1 || { tail -n 40 "$3" >&2; return 1; }
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }'
}

max_changed() { grep -Eo 'changed=[0-9]+' "$1" | cut -d= -f2 | sort -n | tail -n 1; }

declare -A first rerun changed tasks
status=0
for n in $list; do
  for mode in "${modes[@]}"; do
    k="$n-$mode"
    printf '[bench] %s host(s), %s: starting fresh lab hosts\n' "$n" "$mode" >&2
    inv="$work/n$k"
    mkdir -p "$inv"
    # The lab inventory's group_vars (lab-only values), next to this run's hosts.yml.
    ln -s "$root/inventories/lab/group_vars" "$inv/group_vars"
    mapfile -t hosts < <(lab_start_hosts "bench$$-n$n-$mode" "$n" "$label")
    lab_write_inventory "$inv/hosts.yml" "$(cat "$work/key.pub")" spread "${hosts[@]}"
    if [ "$mode" = mitogen ]; then
      sed -i 's/ansible_connection: community.docker.docker/ansible_connection: docker/' "$inv/hosts.yml"
    fi
    printf '[bench] %s host(s), %s: first converge\n' "$n" "$mode" >&2
    first[$k]=$(converge "$mode" "$inv/hosts.yml" "$results/$k-first.log")
    printf '[bench] %s host(s), %s: idempotent rerun\n' "$n" "$mode" >&2
    rerun[$k]=$(converge "$mode" "$inv/hosts.yml" "$results/$k-rerun.log")
    changed[$k]=$(max_changed "$results/$k-rerun.log")
    tasks[$k]=$(grep -Eo 'ok=[0-9]+' "$results/$k-first.log" | cut -d= -f2 | awk '{ s += $1 } END { print s }')
    [ "${changed[$k]}" = 0 ] || status=1
    # One size at a time: the machine is shared.
    for name in "${hosts[@]}"; do docker rm -f "$name" >/dev/null; done
  done
done

printf '\nsite.yml converge, load average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %-26s %-8s %9s %9s %8s %10s %11s %8s\n' hosts layout mode "first(s)" "rerun(s)" changed "first/1host" "rerun/first" "ok tasks"
for n in $list; do
  case "$n" in 1) layout="single VPS (every group)" ;; 2) layout="2 sets per host" ;; 4) layout="1 set per host" ;; *) layout="sets round-robin" ;; esac
  for mode in "${modes[@]}"; do
    k="$n-$mode"
    printf '%-6s %-26s %-8s %9.1f %9.1f %8s %10.2f %11.2f %8s\n' "$n" "$layout" "$mode" "${first[$k]}" "${rerun[$k]}" "${changed[$k]}" \
      "$(awk -v a="${first[$k]}" -v b="${first[1-$mode]}" 'BEGIN { print a / b }')" \
      "$(awk -v a="${rerun[$k]}" -v b="${first[$k]}" 'BEGIN { print a / b }')" "${tasks[$k]}"
  done
  if [ "${#modes[@]}" = 2 ]; then
    printf '%-6s %-26s %-8s %9.2f %9.2f\n' "$n" "plain/mitogen" "" \
      "$(awk -v a="${first[$n-plain]}" -v b="${first[$n-mitogen]}" 'BEGIN { print a / b }')" \
      "$(awk -v a="${rerun[$n-plain]}" -v b="${rerun[$n-mitogen]}" 'BEGIN { print a / b }')"
  fi
done
printf '(changed = the highest changed= of any host on the rerun; must be 0. Logs: %s)\n' "$results"
exit "$status"
