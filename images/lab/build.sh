#!/usr/bin/env bash
# Build the lab host image (selfhost-lab:debian12) without a registry:
# debootstrap a minimal Debian 12, import it, then add what a fresh VPS has.
# Rebuilt only when this folder's content changes (hash kept as an image label).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tag=${LAB_IMAGE:-selfhost-lab:debian12}
mirror=${LAB_MIRROR:-http://deb.debian.org/debian}
log() { printf '[lab-image] %s\n' "$*" >&2; }

recipe=$(cd "$here" && find . -type f ! -name host-ca.crt -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
current=$(docker image inspect "$tag" --format '{{ index .Config.Labels "selfhost.recipe" }}' 2>/dev/null || true)
if [ "$current" = "$recipe" ]; then
  log "$tag is up to date (recipe $recipe)"
  exit 0
fi

command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
rootfs_tag="selfhost-lab-rootfs:bookworm-$recipe"
if ! docker image inspect "$rootfs_tag" >/dev/null 2>&1; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  log "debootstrap bookworm into $work (about a minute)"
  debootstrap --variant=minbase \
    --include=python3,systemd,systemd-sysv,sudo,iproute2,dbus \
    bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
  tar -C "$work/rootfs" -c . | docker import - "$rootfs_tag" >/dev/null
fi

# The host's CA bundle, so pip inside a lab host reaches PyPI the way the host does.
cp /etc/ssl/certs/ca-certificates.crt "$here/host-ca.crt"
log "building $tag"
docker build -q --build-arg "ROOTFS_IMAGE=$rootfs_tag" --label "selfhost.recipe=$recipe" -t "$tag" "$here" >/dev/null
rm -f "$here/host-ca.crt"
log "built $tag (recipe $recipe)"
