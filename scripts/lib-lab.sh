# shellcheck shell=bash
# Functions shared by scripts/lab.sh and bench/: start lab hosts (systemd containers)
# and write an inventory for them. Source it; it sets no options of its own.

# lab_start_hosts PREFIX COUNT LABEL: start PREFIX-1..COUNT (kept if already running),
# wait until systemd is up in each, print their names.
lab_start_hosts() {
  local prefix=$1 count=$2 label=$3 distro=${LAB_DISTRO:-debian12} i name st
  for i in $(seq 1 "$count"); do
    name="$prefix-$i"
    if [ -z "$(docker ps -q -f "name=^$name$")" ]; then
      docker rm -f "$name" >/dev/null 2>&1 || true
      # The flags TESTBED.md lists for systemd as PID 1, without --privileged.
      docker run -d --name "$name" --hostname "$name" --label "$label" \
        --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
        --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
        --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add NET_RAW \
        --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
        --stop-signal SIGRTMIN+3 \
        "selfhost-lab:$distro" /lib/systemd/systemd >/dev/null
    fi
  done
  for i in $(seq 1 "$count"); do
    name="$prefix-$i"
    for _ in $(seq 1 30); do
      st=$(docker exec "$name" systemctl is-system-running 2>/dev/null || true)
      case "$st" in running | degraded) break ;; esac
      sleep 1
    done
    echo "$name"
  done
}

# lab_write_inventory FILE OPERATOR_PUBKEY NAME...: a YAML inventory over the Docker connection.
lab_write_inventory() {
  local file=$1 key=$2 name
  shift 2
  {
    echo "---"
    echo "# Written by scripts/lib-lab.sh: local lab hosts (Docker containers)."
    echo "all:"
    echo "  vars:"
    echo "    ansible_connection: community.docker.docker"
    echo "    selfhost_lab_operator_key: \"$key\""
    echo "  children:"
    echo "    selfhost:"
    echo "      hosts:"
    for name in "$@"; do echo "        $name: {}"; done
  } >"$file"
}

# lab_remove LABEL: remove every container carrying LABEL.
lab_remove() {
  local ids
  ids=$(docker ps -aq -f "label=$1")
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086
    docker rm -f $ids >/dev/null
  fi
}
