# shellcheck shell=bash
# Functions shared by scripts/lab.sh and bench/: start lab hosts (systemd containers)
# and write an inventory for them. Source it; it sets no options of its own.

# The service groups of the platform, in four sets a fleet spreads over its hosts
# (docs/site.md). Every host is also in `selfhost` (baseline + node exporter).
LAB_SERVICE_SETS=("edge app" "workers" "db brokers backup" "monitoring")
LAB_GROUPS="edge app workers brokers db monitoring backup docker_hosts"

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

# lab_host_groups LAYOUT INDEX COUNT: the service groups of host INDEX (0-based) of COUNT.
#   baseline  none (every host only gets the baseline and the node exporter)
#   spread    the four service sets round-robin: 1 host carries everything (the single-VPS
#             layout), 2 hosts two sets each, 4 hosts one set each, 8 hosts two of each set
# LAB_DOCKER=1 adds docker_hosts to the hosts of the edge set.
lab_host_groups() {
  local layout=$1 index=$2 count=$3 width j groups=""
  [ "$layout" = baseline ] && return 0
  width=$((count < ${#LAB_SERVICE_SETS[@]} ? count : ${#LAB_SERVICE_SETS[@]}))
  for j in "${!LAB_SERVICE_SETS[@]}"; do
    if [ $((j % width)) -eq $((index % width)) ]; then
      groups="$groups ${LAB_SERVICE_SETS[$j]}"
      if [ "$j" -eq 0 ] && [ "${LAB_DOCKER:-0}" = 1 ]; then groups="$groups docker_hosts"; fi
    fi
  done
  echo "$groups"
}

# lab_write_inventory FILE OPERATOR_PUBKEY LAYOUT NAME...: a YAML inventory over the Docker
# connection, each host with its bridge address as selfhost_private_address.
lab_write_inventory() {
  local file=$1 key=$2 layout=$3 name group i count
  shift 3
  count=$#
  declare -A members=()
  i=0
  for name in "$@"; do
    for group in $(lab_host_groups "$layout" "$i" "$count"); do
      members[$group]="${members[$group]:-} $name"
    done
    i=$((i + 1))
  done
  {
    echo "---"
    echo "# Written by scripts/lib-lab.sh: local lab hosts (Docker containers), layout $layout."
    echo "all:"
    echo "  vars:"
    echo "    ansible_connection: community.docker.docker"
    echo "    selfhost_lab_operator_key: \"$key\""
    echo "  children:"
    echo "    selfhost:"
    echo "      hosts:"
    for name in "$@"; do
      echo "        $name:"
      echo "          selfhost_private_address: $(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")"
    done
    for group in $LAB_GROUPS; do
      echo "    $group:"
      if [ -z "${members[$group]:-}" ]; then
        echo "      hosts: {}"
        continue
      fi
      echo "      hosts:"
      for name in ${members[$group]}; do echo "        $name: {}"; done
    done
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
