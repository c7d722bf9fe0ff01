"""The fail2ban_unban and security_updates runbooks, run for real against the two lab hosts.

Each runbook runs through ansible-playbook with the scenario's inventory (the Docker
connection), as an operator would run it against a fleet. The lab hosts are containers:
they cannot reboot, so security_updates runs with reboots forbidden (and would only report
a required reboot anyway). prepare.yml configures unattended-upgrades with the security
origins only, as selfhost.platform.base does, and a strict whitelist of one package (tzdata)
so that the real upgrade stays short.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra

ROOT = Path(__file__).resolve().parents[3]
RUNBOOKS = ROOT / "playbooks" / "runbooks"
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
BANNED_IP = "203.0.113.77"  # documentation range, outside the scenario's ignoreip

pytestmark = pytest.mark.skipif(not INVENTORY, reason="needs Molecule's inventory (run through molecule verify)")


def _env(json_output=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    if json_output:
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    return env


def _runbook(name, extra, *args, json_output=False):
    result = subprocess.run(
        ["ansible-playbook", "-i", INVENTORY, str(RUNBOOKS / name), "-e", json.dumps(extra), *args],
        cwd=ROOT, env=_env(json_output), capture_output=True, text=True, timeout=1200, check=False)
    return result


def _hosts_in_order():
    out = subprocess.run(["ansible", "-i", INVENTORY, "all", "--list-hosts"], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return [line.strip() for line in out.splitlines()[1:] if line.strip()]


def _lab(name):
    return testinfra.get_host("docker://" + name)


def _banned_in(lab, ip):
    return lab.check_output("fail2ban-client banned %s", ip)


def _plain_host():
    return next(name for name in _hosts_in_order() if "nginx" not in name)


# ---- fail2ban_unban -----------------------------------------------------------------------

def test_unban_runbook_one_jail_then_every_jail():
    name = _plain_host()
    lab = _lab(name)
    lab.check_output("fail2ban-client set sshd banip %s", BANNED_IP)
    lab.check_output("fail2ban-client set recidive banip %s", BANNED_IP)
    try:
        assert BANNED_IP in lab.check_output("nft list set inet f2b-table addr-set-sshd")
        # One jail: sshd lets it go, the report names recidive, which still holds it.
        one = _runbook("fail2ban_unban.yml", {"fail2ban_unban_ip": BANNED_IP, "fail2ban_unban_jail": "sshd"},
                       "--limit", name)
        assert one.returncode == 0, one.stdout + one.stderr
        report = " ".join(one.stdout.split())
        assert "was banned in sshd, recidive" in report and "still banned in recidive" in report, report
        assert _banned_in(lab, BANNED_IP) == "[['recidive']]"
        assert BANNED_IP not in lab.check_output("nft list set inet f2b-table addr-set-sshd")
        # Every jail (the default).
        run = _runbook("fail2ban_unban.yml", {"fail2ban_unban_ip": BANNED_IP}, "--limit", name)
        assert run.returncode == 0, run.stdout + run.stderr
        report = " ".join(run.stdout.split())
        assert "was banned in recidive" in report and "banned nowhere now" in report, report
        # Behaviour, not the report: fail2ban and the packet filter no longer hold it.
        assert _banned_in(lab, BANNED_IP) == "[[]]"
        for nft_set in ("addr-set-sshd", "addr-set-recidive"):
            listed = lab.run("nft list set inet f2b-table %s", nft_set)
            assert BANNED_IP not in listed.stdout, listed.stdout
    finally:
        lab.run("fail2ban-client unban %s", BANNED_IP)


def test_unban_runbook_in_check_mode_reports_and_changes_nothing():
    name = _plain_host()
    lab = _lab(name)
    lab.check_output("fail2ban-client set sshd banip %s", BANNED_IP)
    try:
        run = _runbook("fail2ban_unban.yml", {"fail2ban_unban_ip": BANNED_IP}, "--limit", name, "--check", "--diff")
        assert run.returncode == 0, run.stdout + run.stderr
        report = " ".join(run.stdout.split())
        assert "was banned in sshd" in report and "check mode, nothing changed" in report, report
        assert _banned_in(lab, BANNED_IP) == "[['sshd']]"
    finally:
        lab.run("fail2ban-client unban %s", BANNED_IP)


@pytest.mark.parametrize("extra", [
    {"fail2ban_unban_ip": "203.0.113.300"},
    {"fail2ban_unban_ip": "203.0.113.0/24"},
    {"fail2ban_unban_ip": "203.0.113.7; reboot"},
    {"fail2ban_unban_ip": "203.0.113.7", "fail2ban_unban_jail": "sshd; reboot"},
])
def test_unban_rejects_garbage_before_touching_a_host(extra):
    run = _runbook("fail2ban_unban.yml", extra)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert "Pass -e fail2ban_unban_ip=" in output, output
    assert "List the jails" not in output, output


# ---- security_updates ---------------------------------------------------------------------

def _results(run):
    """[(play index, host, task name, failed)] from the json callback, in execution order."""
    data = json.loads(run.stdout[run.stdout.index("{"):])
    rows = []
    for index, play in enumerate(data["plays"]):
        for task in play["tasks"]:
            for hostname, result in task["hosts"].items():
                rows.append((index, hostname, task["task"]["name"], bool(result.get("failed"))))
    return rows


HEALTH = {"all": ["ssh", "fail2ban"]}


def test_security_updates_stop_at_an_unhealthy_first_host():
    first, second = _hosts_in_order()
    lab = _lab(first)
    lab.check_output("systemctl stop ssh")
    try:
        run = _runbook("security_updates.yml", {"security_updates_reboot": False,
                                                "security_updates_health_services": HEALTH},
                       json_output=True)
    finally:
        lab.check_output("systemctl start ssh")
    assert run.returncode != 0, run.stdout
    rows = _results(run)
    assert {host for _play, host, _task, _failed in rows} == {first}, rows
    failed = [task for _play, _host, task, failed in rows if failed]
    assert failed == ["Health before: stop here when a service is not active"], rows
    assert "ssh is inactive" in run.stdout
    assert not any("unattended-upgrade" in task for _play, _host, task, _failed in rows)


def test_security_updates_roll_one_host_at_a_time():
    order = _hosts_in_order()
    run = _runbook("security_updates.yml", {"security_updates_reboot": False,
                                            "security_updates_cache_valid_time": 86400,
                                            "security_updates_health_services": HEALTH},
                   json_output=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    rows = _results(run)
    # serial 1: one batch (play) per host, in inventory order, each complete before the next.
    batches = [sorted({host for play, host, _task, _failed in rows if play == index})
               for index in sorted({play for play, *_rest in rows})]
    assert batches == [[host] for host in order], batches
    for host in order:
        tasks = [task for _play, name, task, _failed in rows if name == host]
        before = tasks.index("Health before: services are active")
        upgrade = tasks.index("Install the security updates (unattended-upgrade)")
        after = tasks.index("Health after: services are active again")
        assert before < upgrade < after, tasks
    # The upgrade was real: tzdata (whitelisted in the lab) is at the security suite's version.
    for host in order:
        policy = _lab(host).check_output("apt-cache policy tzdata")
        installed = policy.split("Installed:")[1].split()[0]
        candidate = policy.split("Candidate:")[1].split()[0]
        assert installed == candidate, policy
        assert "bookworm-security" in policy, policy
