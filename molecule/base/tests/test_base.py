"""Behaviour of selfhost.platform.base on the lab host (see converge.yml for the inputs)."""

import json
import os
import subprocess

import pytest

KEY_DIR = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")
PRIVATE_KEY = os.path.join(KEY_DIR, "admin_ed25519")
SYSCTL_FILE = "/etc/sysctl.d/60-selfhost-base.conf"
# The role defaults, as converge.yml leaves them.
SYSCTL = {
    "net.core.somaxconn": "65535",
    "net.ipv4.tcp_max_syn_backlog": "65535",
    "net.core.netdev_max_backlog": "16384",
    "net.ipv4.ip_local_port_range": "10240 65535",
    "net.ipv4.tcp_tw_reuse": "1",
    "net.ipv4.tcp_fin_timeout": "15",
    "vm.swappiness": "10",
}

# Loads /usr/bin/unattended-upgrade as a module and reports, for every package
# source in the apt lists, whether its configured origin patterns allow it.
UU_ORIGINS_PROBE = """
import importlib.machinery, importlib.util, json
import apt_pkg
loader = importlib.machinery.SourceFileLoader("uu", "/usr/bin/unattended-upgrade")
spec = importlib.util.spec_from_loader("uu", loader)
uu = importlib.util.module_from_spec(spec)
loader.exec_module(uu)
apt_pkg.init_system()
patterns = uu.get_allowed_origins()
sources = {}
for pf in apt_pkg.Cache(progress=None).file_list:
    if pf.archive and pf.archive != "now":
        name = "/".join((pf.origin, pf.label, pf.codename, pf.archive))
        sources[name] = any(uu.match_whitelist_string(p, pf) for p in patterns)
print(json.dumps({"patterns": patterns, "sources": sources}))
"""


def in_container(host):
    return host.run("systemd-detect-virt --container").rc == 0


def public_key():
    with open(PRIVATE_KEY + ".pub", encoding="utf-8") as handle:
        return handle.read().strip()


def test_admin_can_sudo_without_password(host):
    admin = host.user("admin")
    assert admin.exists
    assert admin.shell == "/bin/bash"
    # As the admin, not as root: sudo must grant root without asking for a password.
    result = host.run("runuser -u admin -- sudo -n id -u")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_non_sudo_admin_is_refused(host):
    viewer = host.user("viewer")
    assert viewer.exists
    assert "adm" in viewer.groups
    assert host.run("runuser -u viewer -- sudo -n true").rc != 0
    assert not host.file("/etc/sudoers.d/selfhost-admin-viewer").exists


def test_removed_admin_and_its_sudo_rule_are_gone(host):
    assert not host.user("former").exists
    assert not host.file("/etc/sudoers.d/selfhost-admin-former").exists


def test_authorized_keys_hold_exactly_the_test_key(host):
    keys = host.file("/home/admin/.ssh/authorized_keys")
    assert keys.user == "admin"
    assert keys.mode == 0o600
    assert [line for line in keys.content_string.splitlines() if line.strip()] == [public_key()]


def test_sudoers_rules_are_valid(host):
    rule = host.file("/etc/sudoers.d/selfhost-admin-admin")
    assert rule.mode == 0o440
    assert "admin ALL=(ALL:ALL) NOPASSWD: ALL" in rule.content_string
    assert host.run("visudo -c").rc == 0


def test_admin_logs_in_with_the_key_and_sudoes(host):
    """A real SSH login from the controller to the lab container's bridge address."""
    address = host.interface("eth0").addresses[0]
    result = subprocess.run(
        [
            "ssh", "-i", PRIVATE_KEY, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=10", f"admin@{address}", "sudo -n id -un",
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "root"


def test_unattended_upgrades_are_enabled(host):
    dump = host.check_output("apt-config dump")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in dump
    assert 'APT::Periodic::Update-Package-Lists "1";' in dump
    assert 'Unattended-Upgrade::Automatic-Reboot "true";' in dump
    assert 'Unattended-Upgrade::Automatic-Reboot-Time "04:00";' in dump
    if host.system_info.distribution == "debian":
        assert "label=Debian-Security" in dump
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        assert host.service(timer).is_enabled
        assert host.service(timer).is_running


def test_an_index_refresh_is_stamped_for_cache_valid_time(host):
    """ansible.builtin.apt's cache_valid_time reads this stamp: a refresh must move it."""
    stamp = "/var/lib/apt/periodic/update-success-stamp"
    with host.sudo():
        host.check_output("touch -d '2 hours ago' %s", stamp)
        aged = int(host.check_output("stat -c %%Y %s", stamp))
        host.check_output("apt-get update -qq")
        assert int(host.check_output("stat -c %%Y %s", stamp)) > aged + 3600


def test_unattended_upgrade_picks_only_security_updates(host):
    """unattended-upgrade's own matching code, run against the host's apt lists.

    `unattended-upgrade --dry-run` proves the same but took about a minute here;
    this loads the program's functions and asks which package sources it allows.
    """
    result = host.run("python3 -c %s", UU_ORIGINS_PROBE)
    assert result.rc == 0, result.stderr
    report = json.loads(result.stdout)
    allowed = {source for source, ok in report["sources"].items() if ok}
    assert allowed, report
    assert all("-security" in source for source in allowed), report
    # The main archive is in the lists too, and refused.
    assert any(not ok for ok in report["sources"].values()), report


def test_journald_drop_in_is_loaded(host):
    config = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    assert "SystemMaxUse=1G" in config
    assert "MaxRetentionSec=1month" in config
    assert host.service("systemd-journald").is_running


def test_timezone_is_effective(host):
    assert host.check_output("timedatectl show -p Timezone --value") == "America/Sao_Paulo"
    assert host.check_output("date +%Z") == "-03"


def test_locale_is_generated_and_default(host):
    assert "pt_BR.utf8" in host.check_output("locale -a").splitlines()
    assert "LANG=pt_BR.UTF-8" in host.file("/etc/default/locale").content_string


def test_time_sync_service(host):
    chrony = host.service("chrony")
    assert chrony.is_enabled
    if in_container(host):
        condition = host.check_output("systemctl show chrony -p ConditionResult --value")
        assert condition == "no"
        pytest.skip("chrony's unit condition (CAP_SYS_TIME) keeps it stopped in a container: the host owns the clock")
    assert chrony.is_running
    assert host.run("chronyc -n tracking").rc == 0


def test_no_swap_file_in_a_container(host):
    if not in_container(host):
        pytest.skip("this lab check covers the container path only")
    assert not host.file("/swapfile").exists
    assert "/swapfile" not in host.file("/etc/fstab").content_string


def test_sysctl_file_holds_the_settings(host):
    sysctl = host.file(SYSCTL_FILE)
    assert sysctl.user == "root"
    assert sysctl.mode == 0o644
    lines = {}
    for line in sysctl.content_string.splitlines():
        if line.strip() and not line.startswith("#"):
            key, _sep, value = line.partition("=")
            lines[key.strip()] = " ".join(value.split())
    assert lines == SYSCTL


@pytest.mark.parametrize("key", sorted(SYSCTL))
def test_sysctl_live_value(host, key):
    proc = "/proc/sys/" + key.replace(".", "/")
    if host.run(f"test -w {proc}").rc != 0:
        pytest.skip(f"{proc} is read-only here (container): the role reports it as skipped")
    assert " ".join(host.check_output(f"sysctl -n {key}").split()) == SYSCTL[key]
