#!/usr/bin/env bash
# Hardening benchmark (a tool, not a test): on ONE fresh lab host it measures
#   Lynis' hardening index before and after, ssh-audit's fail/warn counts and the result of
#   ssh-audit's built-in policy "Hardened Debian 12 (version 3)" before and after, the first
#   converge of the hardening roles present in roles/ (firewall, sshd, fail2ban, hardening) over
#   SSH to the host's sshd (what users run: pipelining and ControlPersist from ansible.cfg, sudo),
#   and the idempotent rerun (which must report changed=0), with plain Ansible and through Mitogen
#   (scripts/mitogen-env), each on a fresh host of its own, in the same run.
#   Prints a table with after/before ratios, the number of tasks each converge ran and the
#   plain/Mitogen ratio of each time.
# Usage: scripts/venv-exec bench/hardening.sh
#   BENCH_VARS=file.yml           extra variables
#   BENCH_ROLES="sshd hardening"  only these roles (default: those present of firewall sshd fail2ban hardening)
#   BENCH_TIMEOUT=900             seconds allowed per converge and per Lynis run
#   BENCH_CONNECTION=ssh          default; community.docker.docker or community.docker.docker_api
#                                 measure the lab's docker exec connection instead (see bench/README.md)
#   BENCH_PIPELINING=true         false measures the connection without pipelining
#   BENCH_MITOGEN=both            both (default over ssh): plain, then Mitogen, a fresh host each;
#                                 0 plain only (default for the docker connections); 1 Mitogen only
#   BENCH_PROFILE=1               time every task (ansible.posix.profile_tasks) in the logs
#   BENCH_LOGS=dir                keep both converge logs and the Lynis report in dir
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib-lab.sh
. scripts/lib-lab.sh
image=${LAB_IMAGE:-selfhost-lab:debian12}
prefix=bench-hardening-$$
work=$(mktemp -d)
policy="Hardened Debian 12 (version 3)"
cleanup() {
  if [ -n "${BENCH_LOGS:-}" ]; then
    mkdir -p "$BENCH_LOGS"
    cp "$work"/*.log "$work"/*.dat "$BENCH_LOGS"/ 2>/dev/null || true
  fi
  for mode in plain mitogen; do docker rm -f "$prefix-$mode" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

limit=${BENCH_TIMEOUT:-900}
in_host() { timeout "$limit" docker exec "$name" "$@"; }
ssh-keygen -q -t ed25519 -N '' -f "$work/key"
start_host() { # start_host NAME: a fresh lab host with what a fresh VPS has, plus lynis; sets ip, gateway
  name=$1
  # The lab host, with the flags of TESTBED.md / .config/molecule/config.yml (never --privileged).
  docker run -d --name "$name" --hostname "$name" \
    --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add NET_RAW \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --stop-signal SIGRTMIN+3 "$image" /lib/systemd/systemd >/dev/null
  local state
  for _ in $(seq 60); do
    state=$(in_host systemctl is-system-running 2>/dev/null || true)
    case $state in running|degraded) break ;; esac
    sleep 1
  done
  ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")
  # Where the host sees this machine's connections from: the operator's address, which fail2ban must
  # never ban (ssh-audit's scans look like failed logins, and the policy scan comes right after).
  gateway=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}' "$name")
  # What a fresh VPS has: host keys and a running sshd, a login user with a key. Plus lynis to score it.
  lab_prepare_ssh "$name" bench "$work/key.pub"
  in_host apt-get install -y -q --no-install-recommends lynis >/dev/null
}

lynis_index() { # lynis_index NAME -> index; the report is kept as NAME.dat
  in_host lynis audit system --quick --no-colors --report-file /tmp/lynis-bench.dat >/dev/null 2>&1 || true
  in_host cat /tmp/lynis-bench.dat >"$work/$1.dat" 2>/dev/null || true
  sed -n 's/^hardening_index=//p' "$work/$1.dat"
}
ssh_port() { # the port sshd listens on (22 when sshd -T cannot tell)
  local port
  port=$(in_host sshd -T 2>/dev/null | awk '$1 == "port" { print $2; exit }' || true)
  echo "${port:-22}"
}
ssh_audit() { # -> "fail warn policy", or "n/a n/a n/a"
  if ! command -v ssh-audit >/dev/null; then echo "n/a n/a n/a"; return; fi
  local out port verdict
  port=$(ssh_port)
  out=$(timeout 60 ssh-audit --no-colors -p "$port" "$ip" 2>&1 || true)
  # UFW's rate limit on the SSH port rejects a 6th connection within 30 s, and one ssh-audit scan
  # opens several: let the window pass before the policy scan, as any client would have to.
  if in_host sh -c 'command -v ufw >/dev/null && ufw status | grep -q "^Status: active"'; then
    sleep 31
  fi
  if timeout 60 ssh-audit --no-colors -P "$policy" -p "$port" "$ip" >"$work/policy.out" 2>&1; then
    verdict=pass
  else
    verdict=fail
  fi
  echo "$(grep -c -- '-- \[fail\]' <<<"$out" || true) $(grep -c -- '-- \[warn\]' <<<"$out" || true) $verdict"
}

# The hardening roles written so far, in site.yml order; the others are simply absent.
roles=()
for r in ${BENCH_ROLES:-firewall sshd fail2ban hardening}; do
  [ -f "roles/$r/tasks/main.yml" ] && roles+=("$r")
done
# Facts: the roles read the distribution and the environment (min) and whether the host is a
# container (virtual); the rest of the hardware, network and mount facts is not gathered.
{
  echo "- name: Hardening bench"
  echo "  hosts: bench"
  echo "  gather_facts: true"
  echo "  gather_subset: [min, virtual]"
  echo "  roles:"
  for r in "${roles[@]}"; do
    printf '    - role: selfhost.platform.%s\n' "$r"
  done
} >"$work/play.yml"
connection=${BENCH_CONNECTION:-ssh}
if [ "$connection" = ssh ]; then default_modes=both; else default_modes=0; fi
case ${BENCH_MITOGEN:-$default_modes} in
  both) modes=(plain mitogen) ;;
  1) modes=(mitogen) ;;
  *) modes=(plain) ;;
esac
write_inventory() { # write_inventory FILE: the current host (name, ip, gateway)
  local connection_vars
  if [ "$connection" = ssh ]; then
    # The user's path: a login user with a key and sudo, as on a fresh VPS. Host key checking
    # off by variable, not only by ssh args: Mitogen puts its own StrictHostKeyChecking first.
    connection_vars="ansible_host: $ip
      ansible_user: bench
      ansible_become: true
      ansible_host_key_checking: false
      ansible_ssh_private_key_file: $work/key
      ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
  else
    connection_vars="ansible_connection: $connection"
  fi
  cat >"$1" <<INV
bench:
  hosts:
    $name:
      $connection_vars
      ansible_python_interpreter: /usr/bin/python3
      sshd_allow_users: [bench]
      sshd_port_check_host: $ip
      fail2ban_ignoreip: [$gateway]
INV
}
# A fact cache of this run only (each host is fresh).
export ANSIBLE_CACHE_PLUGIN_CONNECTION="$work/facts"
extra=()
[ -n "${BENCH_VARS:-}" ] && extra=(-e "@$BENCH_VARS")
# Both docker connections can pipeline, but ansible.cfg only turns pipelining on for ssh
# ([ssh_connection]); the docker connections read the global setting ([connection] / this variable).
export ANSIBLE_PIPELINING=${BENCH_PIPELINING:-true}
if [ -n "${BENCH_PROFILE:-}" ]; then
  export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks PROFILE_TASKS_TASK_OUTPUT_LIMIT=all
fi

converge() { # converge MODE LOG -> seconds; MODE mitogen runs it through scripts/mitogen-env
  local start end wrap=()
  [ "$1" = mitogen ] && wrap=("$root/scripts/mitogen-env")
  start=$(date +%s.%N)
  local rc=0
  ANSIBLE_CONFIG="$root/ansible.cfg" timeout "$limit" "${wrap[@]}" ansible-playbook -i "$work/$1-inventory.yml" \
    "${extra[@]}" "$work/play.yml" >"$2" 2>&1 || rc=$?
  if [ "$rc" = 124 ]; then
    echo "converge stopped after ${limit}s (BENCH_TIMEOUT; load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  fi
  if [ "$rc" != 0 ]; then tail -n 40 "$2" >&2; return 1; fi
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }'
}
recap() { # recap LOG KEY -> the KEY=N count of the PLAY RECAP line
  grep -Eo "$2=[0-9]+" "$1" | tail -n 1 | cut -d= -f2
}
# Over plain SSH every remote module call runs sudo once: sudo's sessions in the journal count
# them. Mitogen opens one sudo session per connection and runs every module call inside it.
remote_calls() {
  if [ "$connection" != ssh ]; then echo 0; return; fi
  in_host journalctl -q --no-pager _COMM=sudo 2>/dev/null | grep -c 'session opened' || true
}
declare -A first rerun changed tasks_first tasks_rerun calls_first calls_rerun
# shellcheck disable=SC2034 # read through the namerefs of row() below
for mode in "${modes[@]}"; do
  printf '[bench] %s: fresh host %s\n' "$mode" "$prefix-$mode" >&2
  start_host "$prefix-$mode"
  write_inventory "$work/$mode-inventory.yml"
  # Lynis and ssh-audit before: on the first fresh host (every fresh host scores the same).
  if [ "$mode" = "${modes[0]}" ]; then
    lynis_before=$(lynis_index lynis-before)
    read -r fail_before warn_before policy_before < <(ssh_audit) || true
  fi
  calls0=$(remote_calls)
  printf '[bench] %s: first converge\n' "$mode" >&2
  first[$mode]=$(converge "$mode" "$work/$mode-first.log")
  calls1=$(remote_calls)
  printf '[bench] %s: idempotent rerun\n' "$mode" >&2
  rerun[$mode]=$(converge "$mode" "$work/$mode-rerun.log")
  calls2=$(remote_calls)
  changed[$mode]=$(recap "$work/$mode-rerun.log" changed)
  tasks_first[$mode]=$(( $(recap "$work/$mode-first.log" ok) + $(recap "$work/$mode-first.log" changed) ))
  tasks_rerun[$mode]=$(( $(recap "$work/$mode-rerun.log" ok) + $(recap "$work/$mode-rerun.log" changed) ))
  calls_first[$mode]=$((calls1 - calls0))
  calls_rerun[$mode]=$((calls2 - calls1))
  # The host scored after is the last one converged; the others go now (the machine is shared).
  if [ "$mode" != "${modes[-1]}" ]; then docker rm -f "$name" >/dev/null; fi
done

# The first AIDE database is built in the background: let it finish so Lynis sees it (timed apart).
aide_wait=0
if in_host test -f /etc/systemd/system/selfhost-aide-init.service; then
  while [ "$aide_wait" -lt 1500 ] && ! in_host test -f /var/lib/aide/aide.db; do
    sleep 5; aide_wait=$((aide_wait + 5))
  done
fi
lynis_after=$(lynis_index lynis-after)
read -r fail_after warn_after policy_after < <(ssh_audit) || true
cp "$work/policy.out" "$work/ssh-audit-policy.log" 2>/dev/null || true

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else print "-" }'; }
printf '\nroles applied: %s   connection: %s, pipelining %s   (load average: %s)\n' "${roles[*]}" \
  "$connection" "$ANSIBLE_PIPELINING" "$(cut -d' ' -f1-3 /proc/loadavg)"
[ "$fail_before" = n/a ] && echo "ssh-audit not installed"
printf '%-44s %8s %8s %8s\n' measure before after ratio
printf '%-44s %8s %8s %8s\n' "Lynis hardening index" "$lynis_before" "$lynis_after" "$(ratio "$lynis_after" "$lynis_before")"
printf '%-44s %8s %8s %8s\n' "ssh-audit fail" "$fail_before" "$fail_after" "$(ratio "$fail_after" "$fail_before")"
printf '%-44s %8s %8s %8s\n' "ssh-audit warn" "$warn_before" "$warn_after" "$(ratio "$warn_after" "$warn_before")"
printf '%-44s %8s %8s\n' "ssh-audit policy $policy" "$policy_before" "$policy_after"
printf '\n%-44s' "converge (roles above)"
for mode in "${modes[@]}"; do printf ' %8s' "$mode"; done
[ "${#modes[@]}" = 2 ] && printf ' %14s' "plain/mitogen"
printf '\n'
row() { # row LABEL ARRAY [ratio]
  local -n values=$2
  printf '%-44s' "$1"
  for mode in "${modes[@]}"; do printf ' %8s' "${values[$mode]}"; done
  if [ "${#modes[@]}" = 2 ] && [ -n "${3:-}" ]; then printf ' %14s' "$(ratio "${values[plain]}" "${values[mitogen]}")"; fi
  printf '\n'
}
row "first converge (s)" first ratio
row "first converge: tasks run" tasks_first
row "idempotent rerun (s)" rerun ratio
row "idempotent rerun: tasks run" tasks_rerun
if [ "$connection" = ssh ]; then
  row "sudo sessions: first converge" calls_first
  row "sudo sessions: rerun" calls_rerun
fi
row "changed on rerun (must be 0)" changed
printf '%-44s %8s   (on %s)\n' "AIDE first database, waited after (s)" "$aide_wait" "$name"
for mode in "${modes[@]}"; do [ "${changed[$mode]}" = 0 ] || exit 1; done
