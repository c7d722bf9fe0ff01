#!/usr/bin/env bash
# Converge-speed benchmark, reported as ratios measured in one run:
#   first converge of playbooks/site.yml on 1 fresh lab host, the idempotent rerun
#   (must be changed=0), and the first converge on BENCH_HOSTS (default 3) fresh hosts.
# Run it through `make bench` (virtualenv, engine and lab image are set up first).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib-lab.sh
. scripts/lib-lab.sh
label="selfhost.bench=$$"
work=$(mktemp -d)
trap 'lab_remove "$label"; rm -rf "$work"' EXIT
ssh-keygen -q -t ed25519 -N '' -f "$work/key"
many=${BENCH_HOSTS:-3}

converge() { # converge INVENTORY LOG -> seconds on stdout
  local start end
  start=$(date +%s.%N)
  ansible-playbook -i "$1" playbooks/site.yml >"$2" 2>&1 || { tail -n 40 "$2" >&2; return 1; }
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }'
}

mapfile -t one < <(lab_start_hosts "bench$$-a" 1 "$label")
lab_write_inventory "$work/one.yml" "$(cat "$work/key.pub")" "${one[@]}"
first=$(converge "$work/one.yml" "$work/first.log")
rerun=$(converge "$work/one.yml" "$work/rerun.log")
changed=$(grep -Eo 'changed=[0-9]+' "$work/rerun.log" | cut -d= -f2 | sort -n | tail -n 1)
tasks=$(grep -Eo 'ok=[0-9]+' "$work/first.log" | head -n 1 | cut -d= -f2)

mapfile -t hosts < <(lab_start_hosts "bench$$-b" "$many" "$label")
lab_write_inventory "$work/many.yml" "$(cat "$work/key.pub")" "${hosts[@]}"
fleet=$(converge "$work/many.yml" "$work/fleet.log")

printf '\n%-44s %10s\n' measure value
printf '%-44s %10.1f\n' "first converge, 1 host (s)" "$first"
printf '%-44s %10.1f\n' "idempotent rerun, 1 host (s)" "$rerun"
printf '%-44s %10s\n' "changed on rerun (must be 0)" "$changed"
printf '%-44s %10s\n' "tasks reported ok on first converge" "$tasks"
printf '%-44s %10.1f\n' "first converge, $many hosts (s)" "$fleet"
printf '%-44s %10.2f\n' "ratio rerun / first" "$(awk -v a="$rerun" -v b="$first" 'BEGIN { print a / b }')"
printf '%-44s %10.2f\n' "ratio $many hosts / 1 host (ideal 1.0)" "$(awk -v a="$fleet" -v b="$first" 'BEGIN { print a / b }')"
[ "$changed" = 0 ]
