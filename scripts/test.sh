#!/usr/bin/env bash
# `make test`: every stage CI runs, then a table of the time each stage took and the total
# against CI's limits (90 minutes hard; the suite is kept under 40 so that a machine 1.7x
# slower still lands). MOLECULE_LOG_DIR, SCENARIOS and MOLECULE_JOBS pass through to the
# Molecule stage.
# The four quick stages each keep one core busy: they run as two lanes side by side
# (lint then sanity, which needs lint's shellcheck; unit then build-check), each lane stopping
# at its first failure, and their output is printed whole, stage by stage, once both lanes end.
# Molecule, which fills every core itself, runs after them and only when they all passed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
lanes=("lint sanity" "unit build-check")
stages=(lint sanity unit build-check molecule)
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

run_stage() { # run_stage NAME: make NAME, its output in $logs/NAME.log, rc and seconds beside it
  local t0 rc
  t0=$(date +%s)
  make --no-print-directory "$1" >"$logs/$1.log" 2>&1
  rc=$?
  printf '%d %d\n' "$rc" "$(($(date +%s) - t0))" >"$logs/$1.result"
  return "$rc"
}

run_lane() {
  local stage
  for stage in $1; do
    run_stage "$stage" || return 1
  done
}

start=$(date +%s)
for lane in "${lanes[@]}"; do
  run_lane "$lane" &
done
wait
rc=0
for stage in lint sanity unit build-check; do
  [ -f "$logs/$stage.result" ] || continue
  cat "$logs/$stage.log"
  read -r stage_rc _ <"$logs/$stage.result"
  if [ "$stage_rc" -ne 0 ]; then
    echo "make test: stage $stage FAILED (rc $stage_rc)"
    rc=$stage_rc
  fi
done
if [ "$rc" -eq 0 ]; then
  # Printed as it runs: the longest stage shows its progress.
  t0=$(date +%s)
  make --no-print-directory molecule
  rc=$?
  printf '%d %d\n' "$rc" "$(($(date +%s) - t0))" >"$logs/molecule.result"
  [ "$rc" -eq 0 ] || echo "make test: stage molecule FAILED (rc $rc)"
fi
total=$(($(date +%s) - start))

printf '\n%-12s %8s\n' stage seconds
printf '%-12s %8s\n' ------------ --------
for stage in "${stages[@]}"; do
  if [ -f "$logs/$stage.result" ]; then
    read -r _ secs <"$logs/$stage.result"
    printf '%-12s %8s\n' "$stage" "$secs"
  fi
done
printf '%-12s %8s  (%d min, the first four stages two at a time; target 40 min, CI limit 90 min: %d%% of the limit)\n' \
  total "$total" $((total / 60)) $((total * 100 / 5400))
exit "$rc"
