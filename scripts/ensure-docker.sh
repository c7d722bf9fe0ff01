#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine.
# Installs Debian's docker.io (and debootstrap, needed for the lab image) and
# starts dockerd in the background only when no engine answers already.
set -euo pipefail

log() { printf '[ensure-docker] %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  log "engine already answers"
  exit 0
fi

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
if ((${#need_pkgs[@]})); then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# A systemd-managed engine is preferred where systemd is PID 1; otherwise run it directly.
if [ -d /run/systemd/system ] && systemctl start docker 2>/dev/null; then
  log "started docker.service"
else
  log "starting dockerd in the background (log: /var/log/dockerd-selfhost.log)"
  nohup dockerd >/var/log/dockerd-selfhost.log 2>&1 &
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "engine is up: $(docker version --format '{{.Server.Version}}')"
    exit 0
  fi
  sleep 1
done
log "dockerd did not answer within 60 s; last log lines:"
tail -n 20 /var/log/dockerd-selfhost.log >&2 || true
exit 1
