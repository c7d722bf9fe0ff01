#!/usr/bin/env bash
# Run Molecule scenarios (all under molecule/, or those named as arguments),
# MOLECULE_JOBS at a time (default 2), each with its own log, then print a
# per-scenario time table. Fails when any scenario fails or when none ran.
# MOLECULE_SKIP="name:reason ..." leaves scenarios out, printing why (a distribution that
# cannot run one, e.g. RabbitMQ 3.9 on Ubuntu 22.04).
# MOLECULE_MITOGEN="name ..." runs those scenarios' playbooks through Mitogen's docker
# connection (tests/mitogen/molecule-docker.yml), the others with plain Ansible. The default,
# "all", is every scenario but those in MOLECULE_PLAIN (default "base"); "none" (or empty) runs
# all of them plain. The create and destroy plays stay plain (their strategy is pinned). Why
# the suite runs so, its figures and how plain Ansible stays tested: docs/mitogen.md.
# MOLECULE_TIMEOUT (seconds, default 2400, about twice the longest scenario on a slow machine)
# ends a scenario that hangs, so that the run reports it with its log instead of being cut off
# by CI's limit with no trace.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
jobs=${MOLECULE_JOBS:-2}
logdir=${MOLECULE_LOG_DIR:-$root/.cache/molecule-logs}
mkdir -p "$logdir"

if (($#)); then
  scenarios=("$@")
else
  # Multi-host scenarios are the longest: start them first so that the last
  # job to finish is a short one (scenarios with more platforms come first).
  mapfile -t scenarios < <(
    for f in molecule/*/molecule.yml; do
      printf '%d %s\n' "$(grep -cE '^  - name:' "$f")" "$(basename "$(dirname "$f")")"
    done | sort -k1,1nr -k2,2 | cut -d' ' -f2
  )
fi
for skip in ${MOLECULE_SKIP:-}; do
  for i in "${!scenarios[@]}"; do
    if [ "${scenarios[$i]}" = "${skip%%:*}" ]; then
      echo "[molecule] ${skip%%:*} skipped: ${skip#*:}" | tr _ ' '
      unset 'scenarios[i]'
    fi
  done
done
scenarios=("${scenarios[@]}")
if ((${#scenarios[@]} == 0)); then
  echo "molecule: no scenario found" >&2
  exit 1
fi

# Root-level molecule/ (not extensions/molecule) is this collection's documented layout.
export MOLECULE_GLOB='molecule/*/molecule.yml' PY_COLORS=0 ANSIBLE_FORCE_COLOR=0 NO_COLOR=1

through_mitogen() {
  local m
  for m in ${MOLECULE_MITOGEN-all}; do
    if [ "$m" = all ]; then
      case " ${MOLECULE_PLAIN-base} " in *" $1 "*) return 1 ;; esac
      return 0
    fi
    [ "$m" = "$1" ] && return 0
  done
  return 1
}

# timeout signals the scenario's whole process group (Molecule, ansible-playbook, pytest).
limit=${MOLECULE_TIMEOUT:-2400}
run_one() {
  local s=$1 start end rc verdict
  start=$(date +%s)
  if through_mitogen "$s"; then
    echo "[molecule] $s: through Mitogen" >"$logdir/$s.log"
    timeout -k 60 "$limit" scripts/mitogen-env molecule -c .config/molecule/config.yml \
      -c tests/mitogen/molecule-docker.yml test -s "$s" >>"$logdir/$s.log" 2>&1
  else
    timeout -k 60 "$limit" molecule test -s "$s" >"$logdir/$s.log" 2>&1
  fi
  rc=$?
  # A scenario ended midway leaves its lab hosts running: they would slow the scenarios still to run.
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    timeout 300 molecule destroy -s "$s" >>"$logdir/$s.log" 2>&1
  fi
  end=$(date +%s)
  case $rc in
    0) verdict=passed ;;
    124 | 137) verdict="FAILED (still running after MOLECULE_TIMEOUT=${limit}s, ended)" ;;
    *) verdict=FAILED ;;
  esac
  printf '%s %d %d\n' "$s" "$rc" "$((end - start))" >"$logdir/$s.result"
  printf '[molecule] %-16s %s in %ds\n' "$s" "$verdict" "$((end - start))"
}

total_start=$(date +%s)
rm -f "$logdir"/*.result
for s in "${scenarios[@]}"; do
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n; done
  run_one "$s" &
done
wait
total=$(($(date +%s) - total_start))

failed=0 passed=0
printf '\n%-18s %-8s %8s\n' scenario result seconds
printf '%-18s %-8s %8s\n' ------------------ -------- --------
sum=0
for s in "${scenarios[@]}"; do
  read -r _ rc secs <"$logdir/$s.result" || { rc=1; secs=0; }
  if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); res=passed; else failed=$((failed + 1)); res=FAILED; fi
  sum=$((sum + secs))
  printf '%-18s %-8s %8s%s\n' "$s" "$res" "$secs" "$(through_mitogen "$s" && echo '  Mitogen')"
done
# The sum over the wall clock is how many scenarios ran side by side on average.
printf '%-18s %-8s %8s\n' "(sum)" "" "$sum" "(wall clock)" "" "$total"

for s in "${scenarios[@]}"; do
  read -r _ rc _ <"$logdir/$s.result" 2>/dev/null || rc=1
  if [ "$rc" -ne 0 ]; then
    printf '\n===== %s: last 150 lines of %s =====\n' "$s" "$logdir/$s.log"
    tail -n 150 "$logdir/$s.log"
  fi
done
echo
echo "molecule: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
