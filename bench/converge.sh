#!/usr/bin/env bash
# Converge-speed benchmark (a tool, not a test), measured in one run on fresh lab hosts over the
# users' path: SSH as a sudo user, pipelining and ControlPersist from ansible.cfg.
#   playbooks/site.yml for each N in BENCH_HOSTS_LIST (default "1 2 4 8"): N hosts with the
#   platform's service groups spread over them (1 host = the single-VPS layout, 4 = one set per
#   host, 8 = two of each; scripts/lib-lab.sh, docs/site.md); then playbooks/hardening.yml (base
#   and the hardening roles) on one host. Each: first converge, then the idempotent rerun, which
#   must report changed=0 on every host. The single-VPS layout (N=1) is always measured: it is
#   the reference of the fleet ratios.
#   The apt floor: the packages a one-host first converge added, installed by one apt-get run on
#   a second fresh host with the converged host's apt sources; first converge / floor says how
#   much more than the package transactions a first converge costs.
# Settings (environment):
#   BENCH_HOSTS_LIST="1 4"   sizes of site.yml (1 is always added)
#   BENCH_MITOGEN=both       both (default over SSH): plain Ansible, then through Mitogen
#                            (scripts/mitogen-env), fresh hosts each; 0 plain only; 1 Mitogen only
#   BENCH_FLEET_MITOGEN=1    the modes of the sizes above 1 (default: BENCH_MITOGEN's)
#   BENCH_RERUN_OTHER=1      after each rerun, one more in the other mode on the same hosts (its
#                            rerun figure without a first converge of its own)
#   BENCH_PLAYBOOKS=hardening  which of "site hardening" (the default) to measure
#   BENCH_PROFILE=1          time every task in the logs (ansible.posix.profile_tasks)
#   BENCH_FLOOR=0            leave out the apt floors
#   BENCH_CONNECTION=docker  the lab's docker exec connection instead of SSH (Mitogen then uses
#                            its mitogen_docker; BENCH_MITOGEN defaults to 0 there)
#   BENCH_TIMEOUT=3600       seconds allowed per converge
# Run it through `make bench` (virtualenv, engine and lab image are set up first).
# Logs: bench/results/converge-<date>/ (PLAYBOOK-N-MODE-first.log, -rerun.log, floor logs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib-lab.sh
. scripts/lib-lab.sh
label="selfhost.bench=$$"
work=$(mktemp -d)
trap 'lab_remove "$label"; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
say() { printf '[bench] %s\n' "$*" >&2; }
ssh-keygen -q -t ed25519 -N '' -f "$work/key"
results="$root/bench/results/converge-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$results"
# A fact cache of this run only (ansible.cfg keeps one under .cache/ for everyday runs).
export ANSIBLE_CACHE_PLUGIN_CONNECTION="$work/facts" ANSIBLE_NOCOLOR=1
[ "${BENCH_PROFILE:-0}" = 0 ] || export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks PROFILE_TASKS_TASK_OUTPUT_LIMIT=all
list=" ${BENCH_HOSTS_LIST:-1 2 4 8} "
case "$list" in *" 1 "*) ;; *) list=" 1$list" ;; esac
timeout_s=${BENCH_TIMEOUT:-3600}
connection=${BENCH_CONNECTION:-ssh}
if [ "$connection" = ssh ]; then default_modes=both; else default_modes=0; fi
modes_of() { case $1 in both) echo plain mitogen ;; 1) echo mitogen ;; *) echo plain ;; esac; }
read -ra single_modes <<<"$(modes_of "${BENCH_MITOGEN:-$default_modes}")"
read -ra fleet_modes <<<"$(modes_of "${BENCH_FLEET_MITOGEN:-${BENCH_MITOGEN:-$default_modes}}")"

seconds_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
converge() { # converge MODE PLAYBOOK INVENTORY LOG -> seconds on stdout
  local start wrap=()
  [ "$1" = mitogen ] && wrap=("$root/scripts/mitogen-env")
  start=$(date +%s.%N)
  timeout "$timeout_s" "${wrap[@]}" ansible-playbook -i "$3" "playbooks/$2.yml" >"$4" 2>&1 || { tail -n 40 "$4" >&2; return 1; }
  seconds_since "$start"
}
max_changed() { grep -Eo 'changed=[0-9]+' "$1" | cut -d= -f2 | sort -n | tail -n 1; }
sum_of() { grep -Eo "$1=[0-9]+" "$2" | cut -d= -f2 | awk '{ s += $1 } END { print s + 0 }'; }
packages() { docker exec "$1" dpkg-query -W -f '${db:Status-Status} ${binary:Package}\n' | awk '$1 == "installed" { print $2 }' | sort; }

floor() { # floor CONVERGED_HOST KEY: apt sources of the converged host, its added packages, one install
  local host=$1 k=$2 name start
  # Only what an apt source offers: a .deb the converge fetched itself is not in the floor.
  # shellcheck disable=SC2016  # expanded by the host's shell
  comm -13 "$work/image-packages" <(packages "$host") | xargs docker exec "$host" sh -c \
    'for p; do apt-cache madison "$p" | grep -q . && echo "$p"; done' packages >"$results/$k-added-packages.txt"
  name=$(lab_start_hosts "bench$$-floor-$k" 1 "$label")
  # Sources, pins and keys only: apt.conf.d would bring hooks of packages the floor host lacks.
  docker exec "$host" sh -c 'cd / && tar -cf - etc/apt/sources.list* etc/apt/keyrings etc/apt/trusted.gpg.d etc/apt/preferences.d usr/share/keyrings 2>/dev/null || true' \
    | docker exec -i "$name" tar -C / -xf -
  say "$k: apt floor, $(wc -l <"$results/$k-added-packages.txt") packages on a fresh host"
  start=$(date +%s.%N)
  # shellcheck disable=SC2046  # one argument per package name
  docker exec -e DEBIAN_FRONTEND=noninteractive "$name" sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends "$@"' \
    floor $(cat "$results/$k-added-packages.txt") >"$results/$k-floor.log" 2>&1 || { tail -n 20 "$results/$k-floor.log" >&2; return 1; }
  floor_s[$k]=$(seconds_since "$start")
  docker rm -f "$name" >/dev/null
}

declare -A first rerun changed tasks floor_s
status=0
rerun_case() { # rerun_case KEY MODE PLAYBOOK INVENTORY: the idempotent rerun, which must change nothing
  rerun[$1]=$(converge "$2" "$3" "$4" "$results/$1-rerun.log")
  changed[$1]=$(max_changed "$results/$1-rerun.log")
  [ "${changed[$1]}" = 0 ] || status=1
}
measure() { # measure PLAYBOOK N MODE
  local playbook=$1 n=$2 mode=$3 k="$1-$2-$3" inv="$work/$1-$2-$3" hosts name layout=spread other
  [ "$playbook" = hardening ] && layout=baseline
  say "$k: starting $n fresh lab host(s)"
  mkdir -p "$inv"
  # The lab inventory's group_vars (lab-only values), next to this run's hosts.yml.
  ln -s "$root/inventories/lab/group_vars" "$inv/group_vars"
  ln -s "$root/inventories/lab/files" "$inv/files"
  mapfile -t hosts < <(lab_start_hosts "bench$$-$playbook-n$n-$mode" "$n" "$label")
  if [ "$connection" = ssh ]; then
    for name in "${hosts[@]}"; do lab_prepare_ssh "$name" operator "$work/key.pub"; done
    LAB_SSH_KEY="$work/key" lab_write_inventory "$inv/hosts.yml" "$(cat "$work/key.pub")" "$layout" "${hosts[@]}"
  else
    lab_write_inventory "$inv/hosts.yml" "$(cat "$work/key.pub")" "$layout" "${hosts[@]}"
    [ "$mode" = plain ] || sed -i 's/ansible_connection: community.docker.docker/ansible_connection: docker/' "$inv/hosts.yml"
  fi
  [ -f "$work/image-packages" ] || packages "${hosts[0]}" >"$work/image-packages"
  say "$k: first converge"
  first[$k]=$(converge "$mode" "$playbook" "$inv/hosts.yml" "$results/$k-first.log")
  say "$k: idempotent rerun"
  rerun_case "$k" "$mode" "$playbook" "$inv/hosts.yml"
  tasks[$k]="$(sum_of ok "$results/$k-first.log")/$(sum_of ok "$results/$k-rerun.log")"
  # The other mode's rerun on the same converged hosts: its figure without another first converge.
  other=$([ "$mode" = plain ] && echo mitogen || echo plain)
  if [ "${BENCH_RERUN_OTHER:-0}" = 1 ] && [ -z "${rerun[$playbook-$n-$other]:-}" ]; then
    say "$k: idempotent rerun, $other"
    rerun_case "$playbook-$n-$other" "$other" "$playbook" "$inv/hosts.yml"
    tasks[$playbook-$n-$other]="-/$(sum_of ok "$results/$playbook-$n-$other-rerun.log")"
  fi
  # The floor of the first one-host converge of each playbook (the packages do not depend on the mode).
  if [ "$n" = 1 ] && [ "${BENCH_FLOOR:-1}" = 1 ] && [ -z "${floor_s[$playbook]:-}" ]; then
    floor "${hosts[0]}" "$playbook"
  fi
  # One case at a time: the machine is shared.
  for name in "${hosts[@]}"; do docker rm -f "$name" >/dev/null; done
}

playbooks=" ${BENCH_PLAYBOOKS:-site hardening} "
if [[ $playbooks == *" site "* ]]; then
  for n in $list; do
    if [ "$n" = 1 ]; then modes=("${single_modes[@]}"); else modes=("${fleet_modes[@]}"); fi
    for mode in "${modes[@]}"; do measure site "$n" "$mode"; done
  done
fi
if [[ $playbooks == *" hardening "* ]]; then
  for mode in "${single_modes[@]}"; do measure hardening 1 "$mode"; done
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
printf '\nconverge over %s, commit %s, %s cores, load average at the end: %s\n' "$connection" \
  "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- roles playbooks || echo '+changes')" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '| playbook | hosts | mode | first (s) | rerun (s) | changed | first / 1 host | first / apt floor | ok tasks first/rerun |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for k in $(printf '%s\n' "${!rerun[@]}" | sort -t- -k1,1r -k2,2n -k3,3r); do
  IFS=- read -r playbook n mode <<<"$k"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$playbook" "$n" "$mode" "${first[$k]:--}" "${rerun[$k]}" "${changed[$k]}" \
    "$(ratio "${first[$k]:-}" "${first[$playbook-1-$mode]:-}")" "$(ratio "${first[$k]:-}" "${floor_s[$playbook]:-}")" "${tasks[$k]}"
done
for playbook in site hardening; do
  [ -z "${floor_s[$playbook]:-}" ] || printf 'apt floor of %s: %s s for %s packages (update + one install)\n' \
    "$playbook" "${floor_s[$playbook]}" "$(wc -l <"$results/$playbook-added-packages.txt")"
  [ -z "${rerun[$playbook-1-plain]:-}" ] || [ -z "${rerun[$playbook-1-mitogen]:-}" ] || printf 'plain/Mitogen, %s on 1 host: first %s, rerun %s\n' \
    "$playbook" "$(ratio "${first[$playbook-1-plain]:-}" "${first[$playbook-1-mitogen]:-}")" "$(ratio "${rerun[$playbook-1-plain]}" "${rerun[$playbook-1-mitogen]}")"
done
printf '(changed = the highest changed= of any host on the rerun; must be 0. Logs: %s)\n' "$results"
exit "$status"
