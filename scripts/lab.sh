#!/usr/bin/env bash
# The local lab: systemd containers standing in for VPSs (see docs/lab.md, docs/site.md).
#   lab.sh up     start the hosts, write inventories/lab/hosts.yml, converge
#                 playbooks/site.yml, then converge again and require changed=0
#   lab.sh down   remove the hosts
# LAB_LAYOUT (default vps):
#   vps       one host in every group (seed 001, phase 1)
#   fleet     LAB_HOSTS hosts (default 4) with the service groups spread over them:
#             edge+app, workers, db+brokers+backup, monitoring (round-robin beyond 4)
#   baseline  LAB_HOSTS hosts (default 1) with the baseline and node exporter only
# LAB_DOCKER=1 adds the Docker engine (docker_hosts) to the edge host.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib-lab.sh
. scripts/lib-lab.sh
state="$root/.cache/lab"
inventory="$root/inventories/lab/hosts.yml"
# Names and label carry an id of this checkout: two checkouts on one engine keep their own
# labs, and `down` removes only this checkout's hosts.
lab_id=$(printf '%s' "$root" | sha256sum | cut -c1-8)
prefix="selfhost-lab-$lab_id"
label="selfhost.lab=$lab_id"
log() { printf '[lab] %s\n' "$*" >&2; }

up() {
  local layout=${LAB_LAYOUT:-vps} count
  case "$layout" in
    vps) count=1; layout=spread ;;
    fleet) count=${LAB_HOSTS:-4}; layout=spread ;;
    baseline) count=${LAB_HOSTS:-1} ;;
    *) log "unknown LAB_LAYOUT '$layout' (vps, fleet or baseline)"; exit 2 ;;
  esac
  mkdir -p "$state"
  [ -f "$state/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C selfhost-lab-operator -f "$state/id_ed25519"
  # Cached facts of an earlier lab host of the same name would describe another container.
  rm -f "$root/.cache/ansible-facts/$prefix"-*
  local names
  mapfile -t names < <(lab_start_hosts "$prefix" "$count" "$label")
  lab_write_inventory "$inventory" "$(cat "$state/id_ed25519.pub")" "$layout" "${names[@]}"
  log "wrote $inventory for ${names[*]} (layout ${LAB_LAYOUT:-vps})"

  log "converging playbooks/site.yml"
  ansible-playbook -i inventories/lab playbooks/site.yml
  log "converging again: must report changed=0"
  ansible-playbook -i inventories/lab playbooks/site.yml | tee "$state/idempotence.log"
  if grep -E 'changed=[1-9]' "$state/idempotence.log" >/dev/null; then
    log "NOT idempotent: the second converge changed something"
    exit 1
  fi
  log "lab is up: ${names[*]} (docker exec -it ${names[0]} bash)"
}

down() {
  lab_remove "$label"
  rm -f "$inventory" "$root"/.cache/ansible-facts/selfhost-lab-*
  log "lab removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
