#!/usr/bin/env bash
# Build the lab host image (selfhost-lab:<distro>) without a registry:
# debootstrap a minimal system, import it, then add what a fresh VPS has.
# LAB_DISTRO: debian12 (default; the only one reachable in the offline lab),
# ubuntu2204 or ubuntu2404 (GitHub Actions, real internet).
# Rebuilt only when this folder's content changes (hash kept as an image label).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
distro=${LAB_DISTRO:-debian12}
tag=selfhost-lab:$distro
case "$distro" in
  debian12)   suite=bookworm mirror=${LAB_MIRROR:-http://deb.debian.org/debian} ;;
  ubuntu2204) suite=jammy    mirror=${LAB_MIRROR:-http://archive.ubuntu.com/ubuntu} ;;
  ubuntu2404) suite=noble    mirror=${LAB_MIRROR:-http://archive.ubuntu.com/ubuntu} ;;
  *) echo "unknown LAB_DISTRO '$distro' (debian12, ubuntu2204, ubuntu2404)" >&2; exit 2 ;;
esac
log() { printf '[lab-image] %s\n' "$*" >&2; }

recipe=$( (cd "$here" && find . -type f ! -name host-ca.crt -print0 | sort -z | xargs -0 sha256sum; echo "$distro") | sha256sum | cut -c1-16)
current=$(docker image inspect "$tag" --format '{{ index .Config.Labels "selfhost.recipe" }}' 2>/dev/null || true)
if [ "$current" = "$recipe" ]; then
  log "$tag is up to date (recipe $recipe)"
  exit 0
fi

command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
includes=python3,systemd,systemd-sysv,sudo,iproute2,dbus
# The rootfs depends only on the suite and the package list: keep it across recipe changes.
rootfs_tag="selfhost-lab-rootfs:$suite-$(echo "$suite $includes" | sha256sum | cut -c1-12)"
if ! docker image inspect "$rootfs_tag" >/dev/null 2>&1; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  log "debootstrap $suite into $work (about a minute)"
  debootstrap --variant=minbase \
    --include="$includes" \
    "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
  tar -C "$work/rootfs" -c . | docker import - "$rootfs_tag" >/dev/null
fi

# The host's CA bundle, so pip inside a lab host reaches PyPI the way the host does.
cp /etc/ssl/certs/ca-certificates.crt "$here/host-ca.crt"
log "building $tag"
# A Docker CLI without buildx prints a legacy-builder notice on every build: the build's
# output is shown only when it fails.
if ! out=$(docker build -q --build-arg "ROOTFS_IMAGE=$rootfs_tag" --build-arg "LAB_DISTRO=$distro" \
  --label "selfhost.recipe=$recipe" -t "$tag" "$here" 2>&1); then
  printf '%s\n' "$out" >&2
  rm -f "$here/host-ca.crt"
  exit 1
fi
rm -f "$here/host-ca.crt"
# Only this script's own superseded builds (untagged, another recipe), never other images.
docker image prune -f --filter label=selfhost.recipe --filter "label!=selfhost.recipe=$recipe" \
  --filter dangling=true >/dev/null 2>&1 || true
log "built $tag (recipe $recipe)"
