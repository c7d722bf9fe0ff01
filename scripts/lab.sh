#!/usr/bin/env bash
# The local lab: systemd containers standing in for VPSs (see docs/lab.md).
#   lab.sh up     start the hosts (LAB_HOSTS, default 1), write inventories/lab/hosts.yml,
#                 converge playbooks/site.yml, then converge again and require changed=0
#   lab.sh down   remove the hosts
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/lib-lab.sh
. scripts/lib-lab.sh
state="$root/.cache/lab"
inventory="$root/inventories/lab/hosts.yml"
label=selfhost.lab=1
log() { printf '[lab] %s\n' "$*" >&2; }

up() {
  mkdir -p "$state"
  [ -f "$state/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C selfhost-lab-operator -f "$state/id_ed25519"
  local names
  mapfile -t names < <(lab_start_hosts selfhost-lab "${LAB_HOSTS:-1}" "$label")
  lab_write_inventory "$inventory" "$(cat "$state/id_ed25519.pub")" "${names[@]}"
  log "wrote $inventory for ${names[*]}"

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
  rm -f "$inventory"
  log "lab removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
