#!/usr/bin/env bash
# Hardening benchmark (a tool, not a test): on ONE fresh lab host it measures
#   Lynis' hardening index before and after, ssh-audit's fail/warn counts before and after
#   (when ssh-audit is installed), the first converge of the hardening roles present in roles/
#   (firewall, sshd, fail2ban, hardening) over the docker connection, and the idempotent rerun
#   (which must report changed=0). Prints a table with after/before ratios.
# Usage: scripts/venv-exec bench/hardening.sh
#   BENCH_VARS=file.yml       extra variables
#   BENCH_ROLES="sshd hardening"  only these roles (default: those present of firewall sshd fail2ban hardening)
#   BENCH_TIMEOUT=900         seconds allowed per converge and per Lynis run
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
image=${LAB_IMAGE:-selfhost-lab:debian12}
name=bench-hardening-$$
work=$(mktemp -d)
cleanup() { docker rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# The lab host, with the flags of TESTBED.md / .config/molecule/config.yml (never --privileged).
docker run -d --name "$name" --hostname "$name" \
  --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
  --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
  --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add NET_RAW \
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
  --stop-signal SIGRTMIN+3 "$image" /lib/systemd/systemd >/dev/null
limit=${BENCH_TIMEOUT:-900}
in_host() { timeout "$limit" docker exec "$name" "$@"; }
for _ in $(seq 60); do
  state=$(in_host systemctl is-system-running 2>/dev/null || true)
  case $state in running|degraded) break ;; esac
  sleep 1
done
ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")

# What a fresh VPS has: host keys and a running sshd, a login user with a key. Plus lynis to score it.
ssh-keygen -q -t ed25519 -N '' -f "$work/key"
in_host sh -c 'ssh-keygen -A >/dev/null && systemctl start ssh \
  && useradd -m -s /bin/bash bench && install -d -m 0700 -o bench -g bench ~bench/.ssh'
docker cp "$work/key.pub" "$name:/home/bench/.ssh/authorized_keys"
in_host chown bench:bench /home/bench/.ssh/authorized_keys
in_host apt-get install -y -q --no-install-recommends lynis >/dev/null

lynis_index() {
  in_host lynis audit system --quick --no-colors --report-file /tmp/lynis-bench.dat >/dev/null 2>&1 || true
  in_host sed -n 's/^hardening_index=//p' /tmp/lynis-bench.dat
}
ssh_port() { in_host sshd -T 2>/dev/null | awk '$1 == "port" { print $2; exit }'; }
ssh_audit_counts() { # -> "fail warn", or "n/a n/a"
  if ! command -v ssh-audit >/dev/null; then echo "n/a n/a"; return; fi
  local out
  out=$(timeout 60 ssh-audit --no-colors -p "$(ssh_port)" "$ip" 2>&1 || true)
  echo "$(grep -c -- '-- \[fail\]' <<<"$out" || true) $(grep -c -- '-- \[warn\]' <<<"$out" || true)"
}

lynis_before=$(lynis_index)
read -r fail_before warn_before < <(ssh_audit_counts)

# The hardening roles written so far, in site.yml order; the others are simply absent.
roles=()
for r in ${BENCH_ROLES:-firewall sshd fail2ban hardening}; do
  [ -f "roles/$r/tasks/main.yml" ] && roles+=("$r")
done
{
  echo "- name: Hardening bench"
  echo "  hosts: bench"
  echo "  gather_facts: true"
  echo "  tasks:"
  for r in "${roles[@]}"; do
    printf '    - name: Apply %s\n      ansible.builtin.include_role:\n        name: selfhost.platform.%s\n' "$r" "$r"
  done
} >"$work/play.yml"
cat >"$work/inventory.yml" <<INV
bench:
  hosts:
    $name:
      ansible_connection: community.docker.docker
      ansible_python_interpreter: /usr/bin/python3
      sshd_allow_users: [bench]
      sshd_port_check_host: $ip
INV
extra=()
[ -n "${BENCH_VARS:-}" ] && extra=(-e "@$BENCH_VARS")

converge() { # converge LOG -> seconds
  local start end
  start=$(date +%s.%N)
  local rc=0
  ANSIBLE_CONFIG="$root/ansible.cfg" timeout "$limit" ansible-playbook -i "$work/inventory.yml" "${extra[@]}" \
    "$work/play.yml" >"$1" 2>&1 || rc=$?
  if [ "$rc" = 124 ]; then
    echo "converge stopped after ${limit}s (BENCH_TIMEOUT; load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  fi
  if [ "$rc" != 0 ]; then tail -n 40 "$1" >&2; return 1; fi
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }'
}
first=$(converge "$work/first.log")
rerun=$(converge "$work/rerun.log")
changed=$(grep -Eo 'changed=[0-9]+' "$work/rerun.log" | tail -n 1 | cut -d= -f2)

# The first AIDE database is built in the background: let it finish so Lynis sees it (timed apart).
aide_wait=0
if in_host test -f /etc/systemd/system/selfhost-aide-init.service; then
  while [ "$aide_wait" -lt 600 ] && ! in_host test -f /var/lib/aide/aide.db; do
    sleep 5; aide_wait=$((aide_wait + 5))
  done
fi
lynis_after=$(lynis_index)
read -r fail_after warn_after < <(ssh_audit_counts)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else print "-" }'; }
printf '\nroles applied: %s   (load average: %s)\n' "${roles[*]}" "$(cut -d' ' -f1-3 /proc/loadavg)"
[ "$fail_before" = n/a ] && echo "ssh-audit not installed"
printf '%-40s %8s %8s %8s\n' measure before after ratio
printf '%-40s %8s %8s %8s\n' "Lynis hardening index" "$lynis_before" "$lynis_after" "$(ratio "$lynis_after" "$lynis_before")"
printf '%-40s %8s %8s %8s\n' "ssh-audit fail" "$fail_before" "$fail_after" "$(ratio "$fail_after" "$fail_before")"
printf '%-40s %8s %8s %8s\n' "ssh-audit warn" "$warn_before" "$warn_after" "$(ratio "$warn_after" "$warn_before")"
printf '%-40s %8s\n' "first converge (s)" "$first"
printf '%-40s %8s %8s\n' "idempotent rerun (s), ratio to first" "$rerun" "$(ratio "$rerun" "$first")"
printf '%-40s %8s\n' "changed on rerun (must be 0)" "$changed"
printf '%-40s %8s\n' "AIDE first database, waited after (s)" "$aide_wait"
[ "$changed" = 0 ]
