#!/usr/bin/env bash
# Real-kernel audit of the hardening playbook (a benchmark, not a timed test): what the container
# lab cannot show (read-only /proc/sys, no audit netlink, no reboot), checked on a Debian 12 VM.
#   1. builds a VM image once (debootstrap, kernel, sshd, sudo, python3, lynis, the admin user
#      `operator` with a key and passwordless sudo, as the lab gives a fresh VPS), cached by the
#      hash of its recipe under ~/.cache/selfhost-platform/vm/;
#   2. boots a throw-away qcow2 overlay with qemu (KVM when a short probe boots, TCG otherwise),
#      user-mode networking, SSH forwarded on 127.0.0.1 only;
#   3. Lynis before; 4. playbooks/hardening.yml with the lab's settings and sshd moved to
#      VM_SSH_PORT, then a rerun that must report changed=0;
#   5. Lynis after, every managed sysctl live, auditd and its rules, AIDE, ssh-audit;
#   6. a reboot, then the security_updates runbook with a forced reboot-required flag;
#   7. a markdown summary. Exits non-zero when a check fails (never on a time).
# Usage: make vm-audit, or bench/vm-audit.sh [image]   (image: build the image only)
#   VM_ACCEL=auto          auto (probe KVM, else TCG), kvm or tcg
#   VM_KVM_PROBE=25        seconds the KVM probe boot gets to reach systemd
#   VM_MEM=2048            guest memory (MiB); one vCPU, qemu under nice 10 (shared machine)
#   VM_DISK_GB=8           size of the image's root file system
#   VM_SSH_PORT=2222       the moved sshd port, forwarded on the same port of 127.0.0.1
#   VM_FIRST_PORT=10022    host port forwarded to the guest's port 22 (first connection)
#   VM_VARS=file.yml       extra variables for the converges (e.g. hardening_aide_enabled: true)
#   VM_KEEP=1              leave the VM running at the end (for iterating; state in VM_RUN_DIR)
#   VM_STEPS="..."         steps to run, default "boot before converge rerun measure reboot updates";
#                          without "boot" the steps run against the VM a VM_KEEP=1 run left
#   VM_TIMEOUT=3600        seconds allowed per converge
#   VM_FINAL_LYNIS=1       Lynis once more after the security_updates reboot (~10 min under TCG)
#   VM_AIDE_WAIT=2400      seconds to wait for AIDE's first database (when VM_VARS enables AIDE)
#   VM_LOGS=dir            where logs go (default bench/results/vm-audit-<date>/)
#   VM_MIRROR=http://deb.debian.org/debian
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# ansible-playbook and ssh-audit come from the project's pinned virtualenv.
[ -n "${VIRTUAL_ENV:-}" ] || exec scripts/venv-exec "$0" "$@"

cache=${XDG_CACHE_HOME:-$HOME/.cache}/selfhost-platform/vm
run_dir=${VM_RUN_DIR:-$cache/run}
mirror=${VM_MIRROR:-http://deb.debian.org/debian}
moved_port=${VM_SSH_PORT:-2222}
first_port=${VM_FIRST_PORT:-10022}
steps=" ${VM_STEPS:-boot before converge rerun measure reboot updates} "
limit=${VM_TIMEOUT:-3600}
say() { printf '[vm-audit] %s\n' "$*" >&2; }
has_step() { [[ $steps == *" $1 "* ]]; }
seconds_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- 1. The image ----------------------------------------------------------------------------
# Packages of the image: what a fresh Debian VPS has for Ansible (sshd, sudo, python3), a kernel
# with its initramfs, networkd's DHCP through udev, and lynis to score the host before anything.
includes=linux-image-amd64,initramfs-tools,systemd,systemd-sysv,udev,dbus,openssh-server,sudo,python3,iproute2,netbase,ca-certificates,procps,lynis
build_image() { # build_image DIR: base.qcow2, vmlinuz and initrd.img in DIR
  local out=$1 work
  for tool in debootstrap:debootstrap mkfs.ext4:e2fsprogs qemu-img:qemu-utils; do
    command -v "${tool%%:*}" >/dev/null || PATH=$PATH:/usr/sbin command -v "${tool%%:*}" >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool#*:}" >/dev/null; }
  done
  work=$(mktemp -d "$cache/build.XXXXXX")
  say "debootstrap bookworm with a kernel into $work (a few minutes)"
  /usr/sbin/debootstrap --variant=minbase --include="$includes" bookworm "$work/rootfs" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; return 1; }
  local r=$work/rootfs
  # Root on the whole virtio disk (no partition table: the kernel is booted directly).
  printf '/dev/vda / ext4 defaults,errors=remount-ro 0 1\n' >"$r/etc/fstab"
  echo vm-audit >"$r/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 vm-audit\n' >"$r/etc/hosts"
  # The archive a fresh VPS has: the release, its updates and the security suite.
  cat >"$r/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  # DHCP from qemu's user-mode network; its DNS forwarder is 10.0.2.3 (no resolved in Debian 12's systemd).
  printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n' >"$r/etc/systemd/network/20-wired.network"
  echo 'nameserver 10.0.2.3' >"$r/etc/resolv.conf"
  chroot "$r" systemctl enable systemd-networkd.service >/dev/null 2>&1
  # A fresh machine id per boot of a new overlay, as a cloud image does.
  : >"$r/etc/machine-id"
  # The admin user of the lab's fresh VPS (scripts/lib-lab.sh lab_prepare_ssh): key only,
  # passwordless sudo; Debian ships a group named operator, so the user gets the default group.
  chroot "$r" useradd -m -s /bin/bash -N operator
  install -d -m 0700 -o "$(chroot "$r" id -u operator)" -g "$(chroot "$r" id -g operator)" "$r/home/operator/.ssh"
  install -m 0600 -o "$(chroot "$r" id -u operator)" -g "$(chroot "$r" id -g operator)" \
    "$out/key.pub" "$r/home/operator/.ssh/authorized_keys"
  echo 'operator ALL=(ALL) NOPASSWD: ALL' >"$r/etc/sudoers.d/operator"
  chmod 0440 "$r/etc/sudoers.d/operator"
  chroot "$r" apt-get clean
  # The kernel and initramfs are booted from outside the disk (qemu -kernel/-initrd).
  # shellcheck disable=SC2012 # Debian's kernel file names: no spaces, sort -V orders versions
  cp "$(ls "$r"/boot/vmlinuz-* | sort -V | tail -n 1)" "$out/vmlinuz"
  # shellcheck disable=SC2012 # the same for the initramfs
  cp "$(ls "$r"/boot/initrd.img-* | sort -V | tail -n 1)" "$out/initrd.img"
  # mkfs.ext4 -d fills the file system from the directory: no loop device, no mount.
  truncate -s "${VM_DISK_GB:-8}G" "$work/root.raw"
  mkfs.ext4 -q -F -L root -d "$r" "$work/root.raw"
  qemu-img convert -O qcow2 "$work/root.raw" "$out/base.qcow2"
  rm -rf "$work"
}
ensure_image() { # sets image_dir
  # The recipe: the build function, the package list, the suite's mirror and the disk size.
  local recipe
  recipe=$( { declare -f build_image; echo "$includes $mirror ${VM_DISK_GB:-8}"; } | sha256sum | cut -c1-16)
  image_dir=$cache/image-$recipe
  if [ -f "$image_dir/base.qcow2" ]; then
    say "image $image_dir is up to date (recipe $recipe)"
    return 0
  fi
  mkdir -p "$cache"
  rm -rf "$image_dir.tmp"
  mkdir -p "$image_dir.tmp"
  # The image's login key lives with the image (a new image, a new key).
  ssh-keygen -q -t ed25519 -N '' -C vm-audit -f "$image_dir.tmp/key"
  local start
  start=$(date +%s.%N)
  build_image "$image_dir.tmp"
  mv "$image_dir.tmp" "$image_dir"
  say "built $image_dir in $(seconds_since "$start") s"
  # Older images of this script only.
  find "$cache" -maxdepth 1 -name 'image-*' ! -name "image-$recipe" -exec rm -rf {} +
}
ensure_qemu() {
  command -v qemu-system-x86_64 >/dev/null && command -v qemu-img >/dev/null && return 0
  say "installing qemu-system-x86 and qemu-utils"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    qemu-system-x86 qemu-utils >/dev/null
}

if [ "${1:-}" = image ]; then
  ensure_qemu
  ensure_image
  exit 0
fi

# ---- 2. Boot -----------------------------------------------------------------------------------
ssh_opts() { # the options every ssh to the guest uses (a master connection: UFW rate-limits new ones)
  printf '%s\n' -i "$image_dir/key" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 \
    -o ControlMaster=auto -o "ControlPath=$run_dir/cm-%p" -o ControlPersist=300 \
    -o ServerAliveInterval=5 -o ServerAliveCountMax=3
}
drop_master() { # the master connection does not survive a reboot of the guest
  local opts
  mapfile -t opts < <(ssh_opts)
  ssh "${opts[@]}" -p "$guest_port" -O exit operator@127.0.0.1 >/dev/null 2>&1 || true
}
guest_port=$first_port
in_vm() { # in_vm CMD...: run as root in the guest over the current port
  local opts
  mapfile -t opts < <(ssh_opts)
  ssh "${opts[@]}" -p "$guest_port" operator@127.0.0.1 sudo "$@"
}
banner_on() { # banner_on PORT: sshd answers there (an SSH banner through qemu's forwarding)
  timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && head -c 7 <&3" 2>/dev/null | grep -q '^SSH-2.0'
}
# UFW's "limit" on the SSH port rejects a source's 6th new connection within 30 s, and every
# connection from here comes from qemu's gateway. qemu's user network has already accepted the
# host side, so a rejected one is not refused but hangs in the banner exchange (and the next
# client times out too). The inventory opens SSH with "allow" for that reason; the waits stay
# under the limit anyway (a host converged earlier may still have it).
wait_ssh() { # wait_ssh PORT SECONDS: until a login works; a try (two connections) every 12 s
  local port=$1 until=$(($(date +%s) + $2))
  while [ "$(date +%s)" -lt "$until" ]; do
    if banner_on "$port" && guest_port=$port in_vm true 2>/dev/null; then return 0; fi
    vm_alive || return 1
    sleep 12
  done
  return 1
}
settle_limit() { # settle_limit PORT: until a new connection gets a banner (after quiet 35 s spells)
  local _
  banner_on "$1" && return 0
  for _ in 1 2 3 4 5 6; do
    sleep 35
    banner_on "$1" && return 0
  done
  return 1
}
vm_alive() { [ -f "$run_dir/qemu.pid" ] && kill -0 "$(cat "$run_dir/qemu.pid")" 2>/dev/null; }
stop_vm() {
  if vm_alive; then
    local pid
    pid=$(cat "$run_dir/qemu.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$run_dir/qemu.pid" "$run_dir"/cm-*
}
start_qemu() { # start_qemu ACCEL: qemu in the background on a fresh overlay
  local accel=$1 cpu=()
  stop_vm
  rm -f "$run_dir/overlay.qcow2" "$run_dir/console.log"
  qemu-img create -q -f qcow2 -F qcow2 -b "$image_dir/base.qcow2" "$run_dir/overlay.qcow2"
  [ "$accel" = kvm ] && cpu=(-cpu host)
  # One vCPU at nice 10: the machine is shared with CPU-heavy tests. The reboot of the guest
  # resets the machine and boots the same kernel again (no -no-reboot).
  nice -n 10 qemu-system-x86_64 -name vm-audit -machine q35 -accel "$accel" "${cpu[@]}" -smp 1 -m "${VM_MEM:-2048}" \
    -kernel "$image_dir/vmlinuz" -initrd "$image_dir/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0,115200 net.ifnames=1" \
    -drive "file=$run_dir/overlay.qcow2,if=virtio,format=qcow2,discard=unmap" \
    -netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$first_port-:22,hostfwd=tcp:127.0.0.1:$moved_port-:$moved_port" \
    -device virtio-net-pci,netdev=net0 \
    -display none -monitor none -serial "file:$run_dir/console.log" \
    -daemonize -pidfile "$run_dir/qemu.pid" 2>"$run_dir/qemu.err" || return 1
}
boot_vm() { # sets accel and boot_s
  local start tries
  case ${VM_ACCEL:-auto} in
    tcg) tries=(tcg) ;;
    kvm) tries=(kvm) ;;
    *) if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then tries=(kvm tcg); else tries=(tcg); fi ;;
  esac
  for accel in "${tries[@]}"; do
    start=$(date +%s.%N)
    if ! start_qemu "$accel"; then
      say "qemu with $accel did not start: $(tail -n 2 "$run_dir/qemu.err" | tr '\n' ' ')"
      continue
    fi
    if [ "$accel" = kvm ] && [ "${#tries[@]}" -gt 1 ]; then
      # A nested KVM that cannot run the guest either kills qemu (an MSR it refuses) or leaves
      # the kernel looping before userspace: give it a short time to reach systemd.
      local probe_end=$(($(date +%s) + ${VM_KVM_PROBE:-25})) ok=0
      while [ "$(date +%s)" -lt "$probe_end" ] && vm_alive; do
        if grep -qaE 'systemd\[1\]|Welcome to' "$run_dir/console.log" 2>/dev/null; then ok=1; break; fi
        sleep 1
      done
      if [ "$ok" = 0 ]; then
        say "KVM probe: no userspace after ${VM_KVM_PROBE:-25} s ($(vm_alive && echo 'guest stuck in early boot' || echo "qemu exited: $(tail -n 1 "$run_dir/qemu.err")")); falling back to TCG"
        stop_vm
        continue
      fi
    fi
    if wait_ssh "$first_port" 600; then
      boot_s=$(seconds_since "$start")
      echo "$accel" >"$run_dir/accel"
      echo "$boot_s" >"$run_dir/boot_s"
      say "booted with $accel, SSH after $boot_s s"
      return 0
    fi
    say "no SSH with $accel (console: $(tail -c 300 "$run_dir/console.log" | tr -c '[:print:]' ' '))"
    stop_vm
  done
  return 1
}

# ---- Checks and the summary --------------------------------------------------------------------
declare -a check_rows=() notes=()
failed=0
check() { # check NAME pass|fail|skip DETAIL (also kept in the run directory for later steps)
  check_rows+=("| $1 | $2 | $3 |")
  printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$run_dir/checks"
  [ "$2" != fail ] || failed=1
  say "check $1: $2 ($3)"
}

ensure_qemu
ensure_image
mkdir -p "$run_dir"
logs=${VM_LOGS:-$root/bench/results/vm-audit-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$logs"
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  if [ "${VM_KEEP:-0}" = 1 ] && vm_alive; then
    say "VM kept (VM_KEEP=1): ssh -i $image_dir/key -p $guest_port operator@127.0.0.1; stop with: kill $(cat "$run_dir/qemu.pid")"
    return
  fi
  stop_vm
  rm -f "$run_dir/overlay.qcow2"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if has_step boot; then
  rm -f "$run_dir"/checks "$run_dir"/first_s "$run_dir"/rerun "$run_dir"/lynis_*
  boot_vm || { say "the VM did not boot"; exit 1; }
else
  # The checks of the earlier steps on this VM belong to the summary too.
  if [ -f "$run_dir/checks" ]; then
    while IFS=$'\t' read -r name result detail; do
      check_rows+=("| $name | $result | $detail |")
      [ "$result" != fail ] || failed=1
    done <"$run_dir/checks"
  fi
  vm_alive || { say "no VM running (VM_STEPS without boot needs a VM_KEEP=1 run)"; exit 1; }
  say "using the running VM ($(cat "$run_dir/accel"))"
fi
accel=$(cat "$run_dir/accel")
boot_s=$(cat "$run_dir/boot_s")
# The port sshd answers on now: the first port before the converge, the moved one after.
if banner_on "$moved_port"; then guest_port=$moved_port; else guest_port=$first_port; fi

# ---- 3. Lynis ----------------------------------------------------------------------------------
lynis_index() { # lynis_index NAME -> index; the report and the log are kept in the logs
  in_vm lynis audit system --quick --no-colors >"$logs/$1.out" 2>&1 || true
  in_vm cat /var/log/lynis-report.dat >"$logs/$1.dat" 2>/dev/null || true
  sed -n 's/^hardening_index=//p' "$logs/$1.dat"
}
lynis_before=-
if has_step before; then
  say "Lynis before the converge"
  lynis_before=$(lynis_index lynis-before)
  echo "$lynis_before" >"$run_dir/lynis_before"
elif [ -f "$run_dir/lynis_before" ]; then
  lynis_before=$(cat "$run_dir/lynis_before")
fi

# ---- 4. Converge -------------------------------------------------------------------------------
inv=$run_dir/inventory
write_inventory() { # write_inventory PORT
  mkdir -p "$inv"
  # The lab's settings (group_vars) beside this VM's hosts.yml.
  ln -sfn "$root/inventories/lab/group_vars" "$inv/group_vars"
  ln -sfn "$root/inventories/lab/files" "$inv/files"
  cat >"$inv/hosts.yml" <<INV
---
# Written by bench/vm-audit.sh: one qemu VM behind user-mode networking on 127.0.0.1.
all:
  vars:
    ansible_user: operator
    ansible_ssh_private_key_file: $image_dir/key
    ansible_ssh_common_args: -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o IdentitiesOnly=yes
    ansible_host_key_checking: false
    ansible_python_interpreter: /usr/bin/python3
    selfhost_lab_operator_key: "$(cat "$image_dir/key.pub")"
  children:
    selfhost:
      hosts:
        vm-audit:
          ansible_host: 127.0.0.1
          ansible_port: $1
          # qemu's user network: the guest's address, and where the controller's connections
          # come from inside the guest (never banned).
          selfhost_private_address: 10.0.2.15
          fail2ban_ignoreip: [10.0.2.2]
          # Every connection from here arrives from 10.0.2.2, so UFW's SSH rate limit (6 new in
          # 30 s per source) would trip on the audit's own ssh-audit scans and runbook; the
          # limit itself is tested by molecule/firewall. Here SSH is opened with "allow".
          firewall_ssh_limit: false
          # ansible_port is the forwarded host port, not the guest's: the SSH port of sshd, UFW
          # and fail2ban is given explicitly. The moved port is forwarded on the same number,
          # so the sshd role's probe and its switch of ansible_port reach it from here.
          sshd_port: $moved_port
          firewall_ssh_port: $moved_port
          fail2ban_sshd_port: $moved_port
          sshd_port_check_host: 127.0.0.1
INV
}
export ANSIBLE_CACHE_PLUGIN_CONNECTION="$run_dir/facts" ANSIBLE_NOCOLOR=1
extra=()
[ -n "${VM_VARS:-}" ] && extra=(-e "@$VM_VARS")
converge() { # converge PLAYBOOK LOG [ARGS...] -> seconds
  local playbook=$1 log=$2 start rc=0
  shift 2
  start=$(date +%s.%N)
  timeout "$limit" ansible-playbook -i "$inv/hosts.yml" "${extra[@]}" "$@" "$playbook" >"$log" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then tail -n 40 "$log" >&2; return 1; fi
  seconds_since "$start"
}
recap() { grep -Eo "$2=[0-9]+" "$1" | tail -n 1 | cut -d= -f2; }
first_s=- rerun_s=- rerun_changed=-
if has_step converge; then
  write_inventory "$guest_port"
  rm -rf "$run_dir/facts"
  say "first converge of playbooks/hardening.yml (port $guest_port, sshd moves to $moved_port; ~18 min under TCG)"
  if first_s=$(converge playbooks/hardening.yml "$logs/converge-first.log"); then
    check "first converge" pass "$(recap "$logs/converge-first.log" ok) ok, $(recap "$logs/converge-first.log" changed) changed"
  else
    first_s=-
    check "first converge" fail "see $logs/converge-first.log"
  fi
  echo "$first_s" >"$run_dir/first_s"
elif [ -f "$run_dir/first_s" ]; then
  first_s=$(cat "$run_dir/first_s")
fi
if banner_on "$moved_port"; then guest_port=$moved_port; fi
if has_step rerun; then
  write_inventory "$moved_port"
  say "idempotent rerun on port $moved_port"
  if rerun_s=$(converge playbooks/hardening.yml "$logs/converge-rerun.log"); then
    rerun_changed=$(recap "$logs/converge-rerun.log" changed)
    if [ "$rerun_changed" = 0 ]; then
      check "rerun changed=0" pass "changed=0"
    else
      check "rerun changed=0" fail "changed=$rerun_changed: $(grep -E '^changed:' "$logs/converge-rerun.log" | head -n 5 | tr '\n' ' ')"
    fi
  else
    rerun_s=-
    check "rerun changed=0" fail "the rerun failed, see $logs/converge-rerun.log"
  fi
  echo "$rerun_s $rerun_changed" >"$run_dir/rerun"
elif [ -f "$run_dir/rerun" ]; then
  read -r rerun_s rerun_changed <"$run_dir/rerun"
fi

# ---- 5. Measures on the real kernel ------------------------------------------------------------
# Every key of the base and hardening sysctl files, the value the later file gives it, and the
# kernel's live value (whitespace folded: "10240 65535" is read back with a tab).
sysctl_table() { # -> "key<TAB>expected<TAB>live" lines
  in_vm bash -s <<'GUEST'
awk -F= '/^[[:space:]]*[a-z]/ {
  k = $1; v = substr($0, index($0, "=") + 1)
  gsub(/^[ \t]+|[ \t]+$/, "", k); gsub(/^[ \t]+|[ \t]+$/, "", v); gsub(/[ \t]+/, " ", v)
  if (!(k in want)) order[++n] = k
  want[k] = v
} END { for (i = 1; i <= n; i++) print order[i] "\t" want[order[i]] }' \
  /etc/sysctl.d/60-selfhost-base.conf /etc/sysctl.d/zz-selfhost-hardening.conf 2>/dev/null |
while IFS=$'\t' read -r key value; do
  printf '%s\t%s\t%s\n' "$key" "$value" "$(sysctl -n "$key" 2>&1 | tr -s ' \t' ' ')"
done
GUEST
}
check_sysctls() { # check_sysctls LABEL: every managed key live as written
  local table bad n
  table=$(sysctl_table)
  printf '%s\n' "$table" >"$logs/sysctl-$1.tsv"
  n=$(grep -c . <<<"$table" || true)
  bad=$(awk -F'\t' '$2 != $3 { printf "%s=%s (live %s) ", $1, $2, $3 }' <<<"$table")
  if [ "$n" -lt 20 ]; then
    check "sysctls $1" fail "only $n keys found in /etc/sysctl.d/60-selfhost-base.conf + zz-selfhost-hardening.conf"
  elif [ -n "$bad" ]; then
    check "sysctls $1" fail "$(awk -F'\t' '$2 != $3' <<<"$table" | wc -l) of $n differ: $bad"
  else
    check "sysctls $1" pass "$n of $n keys live as written"
  fi
}
check_auditd() { # check_auditd LABEL: the daemon runs and the kernel holds the role's rules
  local state rules loaded want_n got_n missing
  state=$(in_vm systemctl is-active auditd 2>/dev/null || true)
  loaded=$(in_vm auditctl -l 2>&1 || true)
  printf '%s\n' "$loaded" >"$logs/auditctl-$1.txt"
  rules=$(in_vm cat /etc/audit/rules.d/60-selfhost.rules 2>/dev/null | grep -E '^-[aw] ' || true)
  want_n=$(grep -c . <<<"$rules" || true)
  got_n=$(grep -cE '^-[aw] ' <<<"$loaded" || true)
  # Every key of the role's rules must be loaded (auditctl prints "-k K" for watches, "-F key=K" for syscalls).
  missing=$(grep -oE -- '-k [^ ]+' <<<"$rules" | sort -u | cut -d' ' -f2 | while read -r k; do
    grep -qE -- "(-k |key=)$k( |$)" <<<"$loaded" || printf '%s ' "$k"
  done)
  if [ "$state" = active ] && [ "$want_n" -gt 0 ] && [ "$got_n" -ge "$want_n" ] && [ -z "$missing" ]; then
    check "auditd $1" pass "active, $got_n rules loaded (role file: $want_n), every key present"
  else
    check "auditd $1" fail "auditd $state, $got_n rules loaded of $want_n in 60-selfhost.rules${missing:+, keys missing: $missing}"
  fi
}
lynis_items() { # lynis_items DAT -> markdown list of the open warnings and suggestions
  sed -n 's/^warning\[\]=\([^|]*\)|\([^|]*\)|.*/- warning \1: \2/p; s/^suggestion\[\]=\([^|]*\)|\([^|]*\)|\([^|]*\)|.*/- suggestion \1: \2 \3/p' "$1" \
    | sed 's/ -$//'
}
lynis_after=- lynis_final=-
fail_n=- warn_n=- policy_result=-
policy="Hardened Debian 12 (version 3)"
if has_step measure; then
  # AIDE's first database is built in the background after the converge: Lynis counts AIDE
  # only once it exists, and its check timer has no result before.
  if in_vm test -f /etc/systemd/system/selfhost-aide-check.timer; then
    say "waiting for AIDE's first database"
    waited=0
    while [ "$waited" -lt "${VM_AIDE_WAIT:-2400}" ] && ! in_vm test -f /var/lib/aide/aide.db; do sleep 15; waited=$((waited + 15)); done
    aide_timer=$(in_vm systemctl is-active selfhost-aide-check.timer || true)
    if in_vm test -f /var/lib/aide/aide.db; then
      # The timer's first run is a day away: run its check once now for a result.
      in_vm systemctl start selfhost-aide-check.service >/dev/null 2>&1 || true
      aide_result=$(in_vm systemctl show -p Result --value selfhost-aide-check.service)
      if [ "$aide_timer" = active ] && [ "$aide_result" = success ]; then
        check "AIDE" pass "timer active, database built after ~${waited} s, check result $aide_result"
      else
        check "AIDE" fail "timer $aide_timer, check result $aide_result (journalctl -u selfhost-aide-check)"
      fi
    else
      check "AIDE" fail "timer $aide_timer, no database after ${waited} s"
    fi
  else
    check "AIDE" skip "not installed: the lab settings set hardening_aide_enabled: false (VM_VARS can enable it)"
  fi
  say "Lynis after the converge"
  lynis_after=$(lynis_index lynis-after)
  echo "$lynis_after" >"$run_dir/lynis_after"
  if [ "${lynis_after:-0}" -ge 85 ] 2>/dev/null; then
    check "Lynis index >= 85" pass "$lynis_after"
  else
    check "Lynis index >= 85" fail "${lynis_after:-none}"
  fi
  check_sysctls converged
  check_auditd converged
  # sshd: the moved port only, the role's policy in effect, the old port closed.
  sshd_t=$(in_vm sshd -T 2>/dev/null || true)
  printf '%s\n' "$sshd_t" >"$logs/sshd-T.txt"
  ports=$(awk '$1 == "port" { printf "%s ", $2 }' <<<"$sshd_t")
  policy_bad=$(awk '($1 == "permitrootlogin" && $2 != "no") || ($1 == "passwordauthentication" && $2 != "no") \
    || ($1 == "kbdinteractiveauthentication" && $2 != "no") || ($1 == "x11forwarding" && $2 != "no") \
    || ($1 == "allowtcpforwarding" && $2 != "no") { printf "%s %s ", $1, $2 }' <<<"$sshd_t")
  if [ "$ports" = "$moved_port " ] && [ -z "$policy_bad" ] && ! banner_on "$first_port"; then
    check "sshd on the moved port" pass "listens on $moved_port only, 22 closed, no root/password/kbd login, no forwarding"
  else
    check "sshd on the moved port" fail "ports: $ports; $policy_bad$(banner_on "$first_port" && echo '; port 22 still answers')"
  fi
  # The firewall keeps exactly the SSH port sshd listens on: any other "SSH" rule is a port the
  # guest does not use (e.g. a forwarded host port taken from ansible_port).
  ufw_ssh=$(in_vm ufw status | awk '/# SSH/ && !/\(v6\)/ { printf "%s ", $1 }')
  if [ "$ufw_ssh" = "$moved_port/tcp " ]; then
    check "UFW: SSH on the moved port only" pass "$ufw_ssh"
  else
    check "UFW: SSH on the moved port only" fail "SSH rules for $ufw_ssh(sshd listens on $moved_port only; $first_port is the host's forwarded port, ansible_port of the first converge)"
  fi
  if command -v ssh-audit >/dev/null; then
    out=$(timeout 120 ssh-audit --no-colors -p "$moved_port" 127.0.0.1 2>&1 || true)
    printf '%s\n' "$out" >"$logs/ssh-audit.txt"
    fail_n=$(grep -c -- '-- \[fail\]' <<<"$out" || true)
    warn_n=$(grep -c -- '-- \[warn\]' <<<"$out" || true)
    # One scan opens several connections: let UFW's window pass before the next one.
    settle_limit "$moved_port" || true
    if timeout 120 ssh-audit --no-colors -P "$policy" -p "$moved_port" 127.0.0.1 >"$logs/ssh-audit-policy.txt" 2>&1; then
      policy_result=pass
    else
      policy_result=fail
    fi
    if [ "$fail_n" = 0 ] && [ "$policy_result" = pass ]; then
      check "ssh-audit" pass "0 fail, $warn_n warn, policy \"$policy\" passes"
    else
      check "ssh-audit" fail "$fail_n fail, $warn_n warn, policy \"$policy\": $policy_result ($logs/ssh-audit*.txt)"
    fi
    settle_limit "$moved_port" || true
  else
    check "ssh-audit" skip "ssh-audit not in the virtualenv (requirements-dev.txt)"
  fi
fi

# ---- 6. Reboots --------------------------------------------------------------------------------
snapshot() { # snapshot NAME: what must come back after a reboot
  in_vm bash -s >"$logs/state-$1.txt" <<'GUEST'
echo "boot_id $(cat /proc/sys/kernel/random/boot_id)"
for unit in ssh fail2ban auditd ufw; do echo "unit $unit $(systemctl is-active "$unit")"; done
systemctl list-units --type=timer --state=active --no-legend --plain | awk '{ print "timer " $1 }' | sort
ufw status verbose | sed 's/^/ufw /'
echo "system $(systemctl is-system-running)"
systemctl list-units --state=failed --no-legend --plain | awk '{ print "failed " $1 }'
GUEST
}
reboot_wait() { # reboot_wait -> seconds until SSH answers again on the moved port
  local start
  start=$(date +%s.%N)
  in_vm systemctl reboot >/dev/null 2>&1 || true
  drop_master
  # Until the old sshd is gone, then until the new one lets us in.
  for _ in $(seq 30); do banner_on "$moved_port" || break; sleep 6; done
  wait_ssh "$moved_port" 600 || return 1
  seconds_since "$start"
}
compare_after_reboot() { # compare_after_reboot BEFORE AFTER LABEL
  local b=$logs/state-$1.txt a=$logs/state-$2.txt label=$3 lost
  if [ "$(grep '^boot_id' "$b")" = "$(grep '^boot_id' "$a")" ]; then
    check "$label: rebooted" fail "same boot id: the machine did not restart"
    return
  fi
  check "$label: rebooted" pass "new boot id"
  lost=$(grep -E '^unit ' "$a" | awk '$3 != "active" { printf "%s %s ", $2, $3 }')
  if [ -z "$lost" ]; then check "$label: sshd, fail2ban, auditd, ufw" pass "all active"
  else check "$label: sshd, fail2ban, auditd, ufw" fail "$lost"; fi
  lost=$(comm -23 <(grep '^timer ' "$b") <(grep '^timer ' "$a") | cut -d' ' -f2 | tr '\n' ' ')
  if [ -z "$lost" ]; then check "$label: timers" pass "$(grep -c '^timer ' "$a") active, as before"
  else check "$label: timers" fail "not active again: $lost"; fi
  if diff <(grep '^ufw ' "$b") <(grep '^ufw ' "$a") >/dev/null && grep -q '^ufw Status: active' "$a"; then
    check "$label: UFW rules" pass "active, $(grep -cE "^ufw [0-9]" "$a") rules as before"
  else
    check "$label: UFW rules" fail "$(diff <(grep '^ufw ' "$b") <(grep '^ufw ' "$a") | grep '^[<>]' | tr '\n' ' ')"
  fi
  check_sysctls "$label"
  check_auditd "$label"
  if grep -q '^failed ' "$a"; then
    notes+=("$label: failed units: $(grep '^failed ' "$a" | cut -d' ' -f2 | tr '\n' ' ')")
  fi
}
reboot_s=- updates_s=-
if has_step reboot; then
  guest_port=$moved_port
  snapshot before-reboot
  say "reboot"
  if reboot_s=$(reboot_wait); then
    snapshot after-reboot
    compare_after_reboot before-reboot after-reboot "reboot"
  else
    reboot_s=-
    check "reboot: back" fail "no SSH on $moved_port within 600 s after the reboot"
  fi
fi
if has_step updates; then
  guest_port=$moved_port
  write_inventory "$moved_port"
  snapshot before-updates
  # The flag a kernel or libc update leaves: the runbook's reboot path runs for real.
  in_vm touch /var/run/reboot-required
  # Ansible opens connections of its own (and the reboot module retries): start with a clear window.
  settle_limit "$moved_port" || true
  say "security_updates runbook with /var/run/reboot-required set"
  if updates_s=$(converge playbooks/runbooks/security_updates.yml "$logs/security-updates.log"); then
    drop_master
    wait_ssh "$moved_port" 120 || true
    snapshot after-updates
    report=$(grep -oE 'vm-audit: [0-9]+ packages upgraded[^"]*|reboot (done|PENDING|not required)' "$logs/security-updates.log" | tr '\n' ' ')
    if grep -q '"reboot done"' "$logs/security-updates.log"; then
      check "security_updates" pass "runbook ok: $report"
    else
      check "security_updates" fail "the runbook did not report its reboot: $report"
    fi
    compare_after_reboot before-updates after-updates "after security_updates"
    # One more Lynis run costs ~10 min under TCG: on request only.
    if [ "${VM_FINAL_LYNIS:-0}" = 1 ]; then
      say "Lynis after security_updates"
      lynis_final=$(lynis_index lynis-final)
      if [ "${lynis_final:-0}" -ge "${lynis_after/-/0}" ] 2>/dev/null; then
        check "Lynis after security_updates" pass "$lynis_final (after the converge: $lynis_after)"
      else
        check "Lynis after security_updates" fail "$lynis_final (after the converge: $lynis_after)"
      fi
    fi
  else
    updates_s=-
    check "security_updates" fail "the runbook failed, see $logs/security-updates.log"
  fi
fi

# ---- 7. Summary --------------------------------------------------------------------------------
{
  printf '\n## vm-audit %s, commit %s%s, load average %s\n\n' "$(date -u +%Y-%m-%dT%H:%MZ)" \
    "$(git rev-parse --short HEAD)" "$(git diff --quiet HEAD -- roles playbooks bench || echo '+changes')" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf '| measure | value |\n|---|---|\n'
  printf '| accelerator | %s |\n| boot to SSH (s) | %s |\n' "$accel" "$boot_s"
  printf '| first converge (s) | %s |\n| idempotent rerun (s) | %s |\n| changed on rerun | %s |\n' "$first_s" "$rerun_s" "$rerun_changed"
  printf '| reboot to SSH (s) | %s |\n| security_updates runbook (s) | %s |\n' "$reboot_s" "$updates_s"
  printf '| Lynis before / after / after security_updates | %s / %s / %s |\n' "$lynis_before" "$lynis_after" "$lynis_final"
  printf '| ssh-audit fail / warn, policy | %s / %s, %s |\n' "$fail_n" "$warn_n" "$policy_result"
  printf '\n| check | result | detail |\n|---|---|---|\n'
  printf '%s\n' "${check_rows[@]}"
  if [ -f "$logs/sysctl-converged.tsv" ]; then
    printf '\n| sysctl | expected | live after converge | live after reboot |\n|---|---|---|---|\n'
    touch "$logs/sysctl-reboot.tsv"
    awk -F'\t' 'FILENAME == ARGV[1] { r[$1] = $3; next } { printf "| %s | %s | %s | %s |\n", $1, $2, $3, ($1 in r ? r[$1] : "-") }' \
      "$logs/sysctl-reboot.tsv" "$logs/sysctl-converged.tsv"
  fi
  if [ -f "$logs/lynis-after.dat" ]; then
    printf '\nLynis points still open after the converge (%s):\n\n' "/var/log/lynis-report.dat"
    lynis_items "$logs/lynis-after.dat"
  fi
  for n in "${notes[@]}"; do printf '\nnote: %s\n' "$n"; done
  printf '\nlogs: %s\n' "$logs"
} | tee "$logs/summary.md"
exit "$failed"
