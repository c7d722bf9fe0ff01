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

# lab_prepare_ssh NAME USER PUBKEY_FILE: what a fresh VPS has: host keys, a running sshd and a
# login user with that key and passwordless sudo. A group of the user's name may exist already
# (Debian ships `operator`): the user then gets the default group, as ansible.builtin.user does.
lab_prepare_ssh() {
  local name=$1 user=$2 key=$3
  docker exec "$name" sh -c "ssh-keygen -A >/dev/null && systemctl start ssh \
    && useradd -m -s /bin/bash \$(getent group $user >/dev/null && echo -N) $user \
    && install -d -m 0700 -o $user -g \$(id -g $user) /home/$user/.ssh \
    && echo '$user ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/$user && chmod 0440 /etc/sudoers.d/$user"
  docker cp "$key" "$name:/home/$user/.ssh/authorized_keys"
  docker exec "$name" chown "$user:" "/home/$user/.ssh/authorized_keys"
}

# lab_write_inventory FILE OPERATOR_PUBKEY LAYOUT NAME...: a YAML inventory over the Docker
# connection, each host with its bridge address as selfhost_private_address.
# LAB_SSH_KEY=private-key-file: reach the hosts over SSH instead (the users' path), as the
# lab's admin user `operator` (lab_prepare_ssh), each host at its bridge address.
lab_write_inventory() {
  local file=$1 key=$2 layout=$3 name group i count address
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
    if [ -n "${LAB_SSH_KEY:-}" ]; then
      echo "    ansible_user: operator"
      echo "    ansible_ssh_private_key_file: $LAB_SSH_KEY"
      echo "    ansible_ssh_common_args: -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes"
      # Mitogen puts its own StrictHostKeyChecking before ssh_common_args (ssh takes the first).
      echo "    ansible_host_key_checking: false"
      # The controller's address as the hosts see it (their bridge's gateway): fail2ban must
      # never ban the operator.
      echo "    fail2ban_ignoreip: [$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}' "$1")]"
    else
      echo "    ansible_connection: community.docker.docker"
    fi
    echo "    selfhost_lab_operator_key: \"$key\""
    echo "  children:"
    echo "    selfhost:"
    echo "      hosts:"
    for name in "$@"; do
      address=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")
      echo "        $name:"
      echo "          selfhost_private_address: $address"
      [ -z "${LAB_SSH_KEY:-}" ] || echo "          ansible_host: $address"
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
