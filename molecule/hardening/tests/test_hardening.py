"""Behaviour of selfhost.platform.hardening on the lab host (a Debian 12 systemd container)."""

import json
import time

import pytest
from labtest import rerun_converge

SYSCTL_FILE = "/etc/sysctl.d/zz-selfhost-hardening.conf"
PROBE_KEY = "/root/probe_ed25519"
SSH = (
    "ssh -i {key} -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
    "-o LogLevel=ERROR probe@127.0.0.1 "
).format(key=PROBE_KEY)


def _sysctl_file(host):
    values = {}
    for line in host.file(SYSCTL_FILE).content_string.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _sep, value = line.partition("=")
            values[key.strip()] = " ".join(value.split())
    return values


@pytest.mark.parametrize("module", ["cramfs", "hfsplus", "udf", "sctp", "dccp", "usb-storage"])
def test_blacklisted_module_cannot_be_loaded(host, module):
    dry = host.run("modprobe -n -v %s", module)
    assert "install /bin/false" in dry.stdout, dry.stdout + dry.stderr
    # A real load attempt runs /bin/false instead of loading anything, and fails.
    assert host.run("modprobe %s", module).rc != 0


def test_login_session_has_no_core_dumps_and_umask_027(host):
    # Double quotes: the remote side must receive the single-quoted script as one argument.
    result = host.run(SSH + "\"bash -lc 'ulimit -Hc; ulimit -Sc; umask'\"")
    assert result.rc == 0, result.stderr
    assert result.stdout.split() == ["0", "0", "0027"]


def test_services_get_no_core_dumps(host):
    assert host.run("systemctl show -p DefaultLimitCORE --value").stdout.strip() == "0"
    result = host.run("systemd-run --wait --pipe --quiet sh -c 'ulimit -Hc'")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_systemd_coredump_keeps_nothing(host):
    config = host.run("systemd-analyze cat-config systemd/coredump.conf").stdout
    assert "Storage=none" in config
    assert "ProcessSizeMax=0" in config


def test_sysctl_file_holds_the_hardening_keys(host):
    values = _sysctl_file(host)
    expected = {
        "net.ipv4.tcp_syncookies": "1",
        "net.ipv4.conf.all.rp_filter": "1",
        "net.ipv4.conf.all.accept_redirects": "0",
        "net.ipv4.conf.all.send_redirects": "0",
        "net.ipv4.conf.all.accept_source_route": "0",
        "net.ipv6.conf.all.accept_ra": "0",
        "kernel.kptr_restrict": "2",
        "kernel.dmesg_restrict": "1",
        "kernel.unprivileged_bpf_disabled": "1",
        "kernel.yama.ptrace_scope": "1",
        "kernel.sysrq": "0",
        "kernel.randomize_va_space": "2",
        "fs.suid_dumpable": "0",
        "fs.protected_regular": "2",
        # No dockerd on this host and hardening_ip_forward=auto: forwarding off.
        "net.ipv4.ip_forward": "0",
    }
    for key, value in expected.items():
        assert values.get(key) == value, key


def test_sysctl_live_values_where_the_kernel_allows(host):
    values = _sysctl_file(host)
    writable = [k for k in values if host.run("test -w /proc/sys/%s", k.replace(".", "/")).rc == 0]
    if not writable:
        pytest.skip("/proc/sys is read-only in this container: the file is checked, live values apply on a real host")
    for key in writable:
        live = " ".join(host.file("/proc/sys/" + key.replace(".", "/")).content_string.split())
        assert live == values[key], key


def test_lynis_audit_is_scheduled(host):
    timers = host.run("systemctl list-timers --all --no-legend selfhost-lynis-audit.timer").stdout
    assert "selfhost-lynis-audit.timer" in timers
    assert host.service("selfhost-lynis-audit.timer").is_enabled
    assert "--quick --cronjob" in host.file("/etc/systemd/system/selfhost-lynis-audit.service").content_string
    # The package's daily full audit is replaced, not doubled.
    assert host.run("systemctl is-enabled lynis.timer").stdout.strip() == "disabled"
    assert host.run("systemd-analyze verify /etc/systemd/system/selfhost-lynis-audit.service").rc == 0


def test_process_accounting_records_commands(host):
    assert host.service("acct").is_running or host.run("systemctl is-active acct").stdout.strip() == "active"
    host.run("/bin/sleep 0.1")
    result = host.run("lastcomm --command sleep")
    assert result.rc == 0 and "sleep" in result.stdout, result.stdout + result.stderr


def test_sysstat_collects(host):
    assert host.run("systemctl is-active sysstat-collect.timer").stdout.strip() == "active"
    assert 'ENABLED="true"' in host.file("/etc/default/sysstat").content_string


def test_auditd_rules_present_service_only_on_real_hosts(host):
    assert "-k identity" in host.file("/etc/audit/rules.d/60-selfhost.rules").content_string
    if host.run("systemd-detect-virt --container").rc == 0:
        assert not host.service("auditd").is_running
        # The package's postinst tried to start it; the role clears that failure.
        assert host.run("systemctl show -p ActiveState --value auditd.service").stdout.strip() == "inactive"
        pytest.skip("auditd cannot run in a container (no audit netlink); rules checked, service left stopped")
    assert host.service("auditd").is_running
    assert "-k identity" in host.run("auditctl -l").stdout


def test_aide_database_built_and_scheduled_check_fails_on_a_new_file(host):
    # The unit runs at Nice=19 / idle I/O priority on purpose: on a loaded machine it may take
    # minutes, so the wait is long (it ends as soon as the database exists).
    deadline = time.time() + 900
    while not host.file("/var/lib/aide/aide.db").exists:
        state = host.run("systemctl show -p ActiveState --value selfhost-aide-init.service").stdout.strip()
        assert state != "failed", host.run("journalctl -u selfhost-aide-init --no-pager -n 20").stdout
        assert time.time() < deadline, "AIDE database not built after 900 s (state %s)" % state
        time.sleep(3)
    assert host.file("/var/lib/aide/aide.db").mode == 0o600
    assert host.service("selfhost-aide-check.timer").is_enabled
    assert "selfhost-aide-check.timer" in host.run("systemctl list-timers --all --no-legend").stdout
    # Accept the current state the way the unit's comment tells the operator to; the check the
    # timer runs then succeeds.
    # (--update exits 0-7 like --check when it found differences, 14 and above on errors.)
    accepted = host.run("aide --config=/etc/aide/aide.conf --update; [ $? -lt 8 ]"
                        " && cp -p /var/lib/aide/aide.db.new /var/lib/aide/aide.db")
    assert accepted.rc == 0, accepted.stdout + accepted.stderr
    clean = host.run("systemctl start selfhost-aide-check.service")
    assert clean.rc == 0, host.run("journalctl -u selfhost-aide-check --no-pager -n 30").stdout
    host.run("touch /etc/selfhost-aide-probe")
    try:
        found = host.run("systemctl start selfhost-aide-check.service")
        report = host.run("journalctl -u selfhost-aide-check --no-pager -n 200").stdout
    finally:
        host.run("rm -f /etc/selfhost-aide-probe")
        host.run("systemctl reset-failed selfhost-aide-check.service")
    # A difference fails the unit (what systemctl --failed and the node exporter report).
    assert found.rc != 0
    assert "/etc/selfhost-aide-probe" in report, report


def test_aide_comes_without_aide_common(host):
    assert host.package("aide").is_installed
    assert not host.package("aide-common").is_installed


def test_rkhunter_configuration_is_valid(host):
    result = host.run("rkhunter --config-check --nocolors")
    assert result.rc == 0, result.stdout + result.stderr
    assert host.file("/var/lib/rkhunter/db/rkhunter.dat").exists


def test_banner_served_on_the_console(host):
    banner = host.file("/etc/issue.net").content_string
    assert "Authorised access only" in banner
    # agetty needs a terminal: script(1) gives it one, as the console would.
    shown = host.run("script -qc 'agetty --show-issue' /dev/null")
    assert "Authorised access only" in shown.stdout, shown.stdout + shown.stderr


def test_login_defs_and_password_quality(host):
    login_defs = host.file("/etc/login.defs").content_string
    assert "\nUMASK\t027" in login_defs
    assert "\nPASS_MAX_DAYS\t99999" in login_defs
    assert "pam_pwquality.so" in host.file("/etc/pam.d/common-password").content_string
    assert "minlen = 14" in host.file("/etc/security/pwquality.conf.d/60-selfhost.conf").content_string


def test_sensitive_file_permissions(host):
    assert host.file("/etc/shadow").mode == 0o640
    assert host.file("/etc/shadow").group == "shadow"
    for path in ["/etc/cron.daily", "/etc/cron.d", "/etc/crontab"]:
        f = host.file(path)
        if f.exists:
            assert f.mode in (0o700, 0o600), path


def test_idle_login_shells_time_out_and_users_cannot_unset_it(host):
    # \$ keeps the variable for the remote login shell; `unset` of a read-only variable fails.
    result = host.run(SSH + "\"bash -lc 'echo \\$TMOUT; unset TMOUT'\"")
    assert result.stdout.split()[:1] == ["900"], result.stdout + result.stderr
    assert result.rc != 0 and "readonly" in result.stderr, result.stderr


def test_compilers_run_for_root_only(host):
    if not host.exists("as"):
        pytest.skip("no assembler installed on this host (binutils comes with rkhunter)")
    assert host.run("as --version").rc == 0
    denied = host.run("su -s /bin/sh probe -c 'as --version'")
    assert denied.rc != 0 and "ermission denied" in denied.stderr + denied.stdout, denied.stderr
    # Recorded with dpkg-statoverride, so a binutils upgrade keeps the restriction.
    assert "0750" in host.run("dpkg-statoverride --list").stdout.replace(" 750 ", " 0750 ")


def test_aide_records_sha512(host):
    assert "\nChecksums = sha512\n" in host.file("/etc/aide/aide.conf").content_string


def test_rerun_puts_back_what_was_changed_by_hand(host):
    """Each module compares what is there with what it writes: a setting, a file group and a banner
    changed by hand on a converged host must be put back by the next run."""
    sysctl_before = host.file(SYSCTL_FILE).content_string
    issue_before = host.file("/etc/issue").content_string
    assert "kernel.sysrq = 0" in sysctl_before
    host.run_expect([0], "sed -i 's/^kernel.sysrq = 0$/kernel.sysrq = 1/' %s && chgrp adm %s", SYSCTL_FILE, SYSCTL_FILE)
    host.run_expect([0], "echo tampered >> /etc/issue")
    run = rerun_converge("hardening", callback="ansible.posix.json")
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    stats = json.loads(run.stdout)["stats"]
    assert sum(host_stats["changed"] for host_stats in stats.values()) >= 2, stats
    assert host.file(SYSCTL_FILE).content_string == sysctl_before
    assert host.file(SYSCTL_FILE).group == "root"
    assert host.file("/etc/issue").content_string == issue_before


def test_a_sysctl_file_that_a_vendor_file_undoes_at_boot_is_refused(host):
    """Debian's /usr/lib/sysctl.d/99-protect-links.conf sets fs.protected_fifos=1 and sorts after
    a 70-... file (systemd-sysctl applies them by name): the role's file of earlier releases lost
    that key at every boot. Such a name must fail the run, naming the key and the vendor file."""
    old = "/etc/sysctl.d/70-selfhost-hardening.conf"
    # The current file (zz-...) would rightly win over the vendor file: set it aside for the run.
    host.run_expect([0], "mv %s /root/sysctl-current.conf", SYSCTL_FILE)
    try:
        run = rerun_converge("hardening", {"hardening_sysctl_file": old})
        output = run.stdout + run.stderr
        assert run.returncode != 0, output[-3000:]
        assert "A file applied after %s at boot sets these keys otherwise" % old in output, output[-3000:]
        assert "fs.protected_fifos" in output and "99-protect-links.conf" in output, output[-3000:]
    finally:
        host.run_expect([0], "rm -f %s && mv /root/sysctl-current.conf %s", old, SYSCTL_FILE)


def test_a_file_that_fails_its_check_stops_every_write_of_its_concern(host):
    """AIDE's rules and units are written by one managed_files call that checks each new file
    first: a timer systemd cannot parse must fail the run, name the file, and leave the AIDE rules
    changed in the same run unwritten too (nothing of the call is replaced when one check fails)."""
    timer = "/etc/systemd/system/selfhost-aide-check.timer"
    timer_before = host.file(timer).content_string
    rules_before = host.file("/etc/aide/aide.conf").content_string
    run = rerun_converge("hardening", {"hardening_aide_schedule": "not-a-time", "hardening_aide_checksums": "sha256"})
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert "Validation failed, nothing was written" in output, output[-3000:]
    assert timer + ": `" in output and "calendar specification" in output, output[-3000:]
    assert host.file(timer).content_string == timer_before
    assert host.file("/etc/aide/aide.conf").content_string == rules_before


def test_a_changed_unit_file_is_loaded_although_no_unit_changes_state(host):
    """On a converged host the timer is already enabled and active; a new schedule rewrites its
    unit file only, and systemd must still load it (daemon-reload), not keep the old calendar."""
    timer = "selfhost-aide-check.timer"
    assert host.service(timer).is_running
    run = rerun_converge("hardening", {"hardening_aide_schedule": "Sun *-*-* 03:30:00"})
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert "OnCalendar=Sun *-*-* 03:30:00" in host.file("/etc/systemd/system/" + timer).content_string
    assert host.check_output("systemctl show -p NeedDaemonReload --value %s", timer) == "no"
    assert "Sun *-*-* 03:30:00" in host.check_output("systemctl show -p TimersCalendar --value %s", timer)
