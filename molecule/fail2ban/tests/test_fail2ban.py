"""Behaviour of selfhost.platform.fail2ban on the lab hosts.

fail2ban-debian12 has no nginx: the ban test runs against it with real SSH traffic
from this machine. fail2ban-nginx-debian12 has nginx: the nginx jails must be on there.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = Path(__file__).resolve().parents[1]
IGNOREIP = ["192.0.2.0/24", "198.51.100.7", "2001:db8::/32"]


def _name(host):
    return host.backend.get_hostname()


def _has_nginx(host):
    return "nginx" in _name(host)


def _jails(host):
    out = host.check_output("fail2ban-client status")
    line = next(item for item in out.splitlines() if "Jail list:" in item)
    return {j.strip() for j in line.split(":", 1)[1].split(",") if j.strip()}


def _banned(host, jail):
    out = host.check_output("fail2ban-client get %s banned", jail)
    return set(json.loads(out.replace("'", '"')))


def _tcp_open(ip, port, timeout=3.0):
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait(predicate, seconds=30.0, step=0.5):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def test_fail2ban_running_and_enabled(host):
    svc = host.service("fail2ban")
    assert svc.is_running
    assert svc.is_enabled


def test_packaged_config_untouched(host):
    # dpkg --verify lists modified conffiles: jail.conf and friends stay as shipped.
    out = host.run("dpkg --verify fail2ban")
    assert out.rc == 0 and out.stdout.strip() == "", out.stdout
    assert host.file("/etc/fail2ban/jail.d/selfhost.local").contains("backend = systemd")


def test_expected_jails(host):
    jails = _jails(host)
    assert {"sshd", "recidive"} <= jails
    nginx_jails = {"nginx-http-auth", "nginx-limit-req"}
    if _has_nginx(host):
        assert nginx_jails <= jails, jails
    else:
        assert not nginx_jails & jails, jails


def test_ignoreip_honoured(host):
    out = host.check_output("fail2ban-client get sshd ignoreip")
    ignored = {line.lstrip("|`- ").strip() for line in out.splitlines()[1:]}
    assert set(IGNOREIP + ["127.0.0.0/8", "::1"]) == ignored, out


def test_incremental_bans_and_nftables(host):
    assert host.check_output("fail2ban-client get sshd bantime.increment").strip() == "True"
    assert host.check_output("fail2ban-client get sshd bantime.maxtime").strip() == "604800"
    assert host.check_output("fail2ban-client get sshd actions").strip().endswith("nftables-multiport")
    assert host.check_output("fail2ban-client get recidive actions").strip().endswith("nftables-allports")


def test_ssh_failures_get_this_machine_banned(host):
    if _has_nginx(host):
        pytest.skip("the ban test runs once, against the host without nginx")
    paramiko = pytest.importorskip("paramiko")
    ip = host.check_output("hostname -I").split()[0]
    me = host.check_output("ip -4 route show default").split()[2]
    assert me not in host.check_output("fail2ban-client get sshd ignoreip")
    host.run("fail2ban-client set sshd unbanip %s", me)
    assert _tcp_open(ip, 22), "sshd on %s:22 must answer before the test" % ip

    try:
        maxretry = int(host.check_output("fail2ban-client get sshd maxretry"))
        # Fail until banned: on a loaded machine some attempts time out before sshd logs a failure,
        # so a fixed count of attempts is not a fixed count of failures.
        attempts = 0
        deadline = time.monotonic() + 120
        while me not in _banned(host, "sshd") and time.monotonic() < deadline:
            attempts += 1
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            try:
                client.connect(ip, port=22, username="invaliduser", password="wrong-password",
                               timeout=5, banner_timeout=5, auth_timeout=5,
                               allow_agent=False, look_for_keys=False)
            except (paramiko.SSHException, OSError):
                pass
            finally:
                client.close()

        assert _wait(lambda: me in _banned(host, "sshd"), 30), (
            "%s not banned after %d failed logins (maxretry %d)" % (me, attempts, maxretry))
        assert me in host.check_output("fail2ban-client status sshd")
        # The ban takes effect: a new TCP connection to sshd no longer gets through.
        assert not _tcp_open(ip, 22), "%s is banned but still reaches %s:22" % (me, ip)
        # ... because fail2ban put this machine's address into its own nftables set.
        assert me in host.check_output("nft list set inet f2b-table addr-set-sshd")
        # Unban as an operator would, then prove the way in is open again.
        host.check_output("fail2ban-client set sshd unbanip %s", me)
        assert me not in _banned(host, "sshd")
        assert _wait(lambda: _tcp_open(ip, 22, timeout=2), 20), "%s:22 unreachable after unban" % ip
    finally:
        # Whatever happened above, leave no ban behind (recidive counted this one too).
        host.run("fail2ban-client unban %s", me)


def _clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


@pytest.mark.parametrize("bad, message", [
    ({"fail2ban_ignoreip": ["203.0.113.300"]}, "fail2ban_ignoreip: '203.0.113.300'"),
    ({"fail2ban_ignoreip": ["10.0.0.1/8"]}, "fail2ban_ignoreip: '10.0.0.1/8'"),
    ({"fail2ban_maxretry": 0}, "fail2ban_maxretry: '0' must be"),
    ({"fail2ban_bantime": -1}, "fail2ban_bantime: '-1' is not a positive duration"),
    ({"fail2ban_sshd_port": 70000}, "fail2ban_sshd_port: '70000' is not a TCP port"),
    ({"fail2ban_sshd_port": []}, "fail2ban_sshd_port: '' is not a TCP port"),
    ({"fail2ban_banaction": "shorewall"}, "fail2ban_banaction must be one of"),
])
def test_bad_input_fails_early(bad, message):
    result = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "--check", "-e", json.dumps(bad),
         str(SCENARIO / "bad_input.yml")],
        cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=120, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in " ".join(output.split()), output
    # Nothing was attempted after the checks.
    assert "Install fail2ban" not in output, output


def test_bad_input_reports_every_problem_at_once():
    bad = {"fail2ban_ignoreip": ["10.0.0.1/8"], "fail2ban_maxretry": 0, "fail2ban_bantime": -1}
    result = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "--check", "-e", json.dumps(bad),
         str(SCENARIO / "bad_input.yml")],
        cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=120, check=False)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    for message in ("fail2ban_ignoreip: '10.0.0.1/8'", "fail2ban_maxretry: '0' must be",
                    "fail2ban_bantime: '-1' is not a positive duration"):
        assert message in output, output
    assert "Install fail2ban" not in output, output


def test_a_configuration_fail2ban_rejects_never_reaches_the_live_tree(host):
    """Both files are written by one call after fail2ban tested them together in a scratch copy
    of /etc/fail2ban: a jail with a filter that does not exist fails the run, and neither the jail
    file nor the daemon settings changed in the same run are written."""
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    if not inventory:
        pytest.skip("no MOLECULE_INVENTORY_FILE: the run needs Molecule's inventory")
    if _has_nginx(host):
        pytest.skip("checked once, on the host without nginx (the check does not depend on nginx)")
    files = ["/etc/fail2ban/jail.d/selfhost.local", "/etc/fail2ban/fail2ban.d/selfhost.local"]
    before = {path: host.file(path).content_string for path in files}
    jails_before = _jails(host)
    bad = {"fail2ban_dbpurgeage": "7d",
           "fail2ban_extra_jails": [{"name": "broken", "settings": {
               "enabled": True, "filter": "no-such-filter", "backend": "systemd"}}]}
    result = subprocess.run(
        ["ansible-playbook", "-i", inventory, str(SCENARIO / "converge.yml"), "--limit", _name(host),
         "-e", json.dumps(bad)],
        cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=600, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "Validation failed, nothing was written" in output, output[-3000:]
    assert "no-such-filter" in output, output[-3000:]
    assert {path: host.file(path).content_string for path in files} == before
    assert _jails(host) == jails_before


def _run_localhost(playbook, bad, *args):
    result = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "--check", "-e", json.dumps(bad), *args,
         str(SCENARIO / playbook)],
        cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=120, check=False)
    return result.returncode, " ".join((result.stdout + result.stderr).split())


def test_bad_input_is_checked_whatever_the_tags():
    """The input checks are tagged always: a run limited to one concern still checks first."""
    rc, output = _run_localhost("bad_input.yml", {"fail2ban_maxretry": 0}, "--tags", "fail2ban_config")
    assert rc != 0, output
    assert "fail2ban_maxretry: '0' must be" in output, output
    assert "Write the jails" not in output, output


@pytest.mark.parametrize("bad, message", [
    ({}, None),
    ({"fail2ban_ignoreip": ["10.0.0.1/8"]}, "fail2ban_ignoreip: '10.0.0.1/8'"),
])
def test_input_checks_run_alone(bad, message):
    """include_role tasks_from: assert works without facts and without the role's other tasks."""
    rc, output = _run_localhost("assert_only.yml", bad)
    if message is None:
        assert rc == 0, output
    else:
        assert rc != 0 and message in output, output


def test_one_concern_by_its_tag(host):
    """--tags fail2ban_jails runs the input checks, the nginx decision and the jail check only."""
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    if not inventory:
        pytest.skip("no MOLECULE_INVENTORY_FILE: the run needs Molecule's inventory")
    if not _has_nginx(host):
        pytest.skip("checked once, on the nginx host (its jail list depends on the nginx decision)")
    result = subprocess.run(
        ["ansible-playbook", "-i", inventory, str(SCENARIO / "converge.yml"), "--limit", _name(host),
         "--tags", "fail2ban_jails"],
        cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=600, check=False)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0, output[-3000:]
    assert "changed=0" in output, output[-3000:]
    assert "fail2ban runs the jails nginx-http-auth, nginx-limit-req, recidive, sshd" in output, output[-3000:]
    for other in ("Install fail2ban", "Write the jails", "Keep fail2ban enabled"):
        assert other not in output, output[-3000:]
