"""Behaviour of selfhost.platform.firewall, probed from the controller over the lab bridge."""

import errno
import json
import re
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from labtest import bridge_address, rerun_converge

PROJECT = Path(__file__).resolve().parents[3]
BAD_INPUT_PLAYBOOK = Path(__file__).resolve().parents[1] / "bad_input.yml"
# The one task that checks what the argument spec cannot, reporting every problem at once.
CHECKS = "Check the settings the argument spec cannot check"


@pytest.fixture(scope="module")
def address(host):
    """The container's address on the Docker bridge (traffic goes only there)."""
    return bridge_address(host.backend.get_hostname())


def probe(address, port, timeout=3.0):
    """'open' (with the first bytes read), 'refused' or 'timeout' (dropped by the filter)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
        try:
            return "open", sock.recv(64).decode(errors="replace")
        except socket.timeout:
            return "open", ""
    except socket.timeout:
        return "timeout", ""
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            return "refused", ""
        if exc.errno in (errno.EHOSTUNREACH, errno.ETIMEDOUT):
            return "timeout", ""
        raise
    finally:
        sock.close()


def test_ufw_active_with_default_deny(host):
    status = host.check_output("ufw status verbose")
    assert "Status: active" in status
    assert "Default: deny (incoming), allow (outgoing), deny (routed)" in status
    assert "Logging: on (medium)" in status


def test_ufw_keeps_its_kernel_parameters_without_the_hardening_role(host):
    # Only the firewall role in this play: UFW's own sysctl.conf stays in force.
    assert "IPT_SYSCTL=/etc/ufw/sysctl.conf" in host.file("/etc/default/ufw").content_string.splitlines()


def test_ipv6_filtered(host):
    assert 'IPV6="yes"' in host.file("/etc/default/ufw").content_string
    rules6 = host.check_output("ip6tables -S ufw6-user-input")
    assert "--dport 8080" in rules6
    assert "--dport 22" in rules6


def test_rules_carry_comments_and_sources(host):
    status = host.check_output("ufw status")
    lines = [" ".join(line.split()) for line in status.splitlines()]
    assert "22/tcp LIMIT Anywhere # SSH" in lines
    assert "8082/tcp ALLOW 172.17.0.1 # probe from the controller" in lines
    assert "8083/tcp ALLOW 192.0.2.0/24 # documentation network only" in lines
    assert "9100/tcp ALLOW 10.0.0.0/8 # node-exporter from the VPN" in lines
    assert "60000:60010/udp ALLOW Anywhere" in lines
    assert "80/tcp ALLOW FWD Anywhere # web container" in lines


@pytest.mark.parametrize("port", [8080, 8081, 8082, 8083, 8085, 8086])
def test_probe_listeners_run(host, port):
    """A dropped port below is the filter's doing: every probed port has a listener."""
    assert host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_ssh_reachable(address):
    state, banner = probe(address, 22)
    assert state == "open"
    assert banner.startswith("SSH-2.0-")


def test_allowed_port_answers(address):
    assert probe(address, 8080) == ("open", "ok 8080\n")


def test_port_not_allowed_is_dropped(address):
    assert probe(address, 8081)[0] == "timeout"


def test_source_cidr_rules(address):
    # 8082 is allowed from the controller's address, 8083 only from 192.0.2.0/24.
    assert probe(address, 8082) == ("open", "ok 8082\n")
    assert probe(address, 8083)[0] == "timeout"


def test_allow_entry_point_opens_and_closes(host, address):
    assert probe(address, 8085) == ("open", "ok 8085\n")
    # 8086 was opened by hand with "limit"; state: absent (rule allow) through the entry point closed it.
    assert probe(address, 8086)[0] == "timeout"
    assert "8086" not in host.check_output("ufw status")


def test_docker_published_port_obeys_ufw(host, address):
    """Stand-in container (prepare.yml): 9080 -> :80 is route-allowed, 9081 -> :81 is not."""
    assert probe(address, 9080) == ("open", "ok 80\n")
    before = host.check_output("iptables -S DOCKER-USER")
    assert "-j ufw-user-forward" in before
    assert probe(address, 9081)[0] == "timeout"
    counters = host.check_output("iptables -L selfhost-docker-block -v -n -x")
    drop = [line.split() for line in counters.splitlines() if " DROP " in f" {line} "]
    assert drop and int(drop[0][0]) > 0


def test_docker_block_survives_reload(host):
    host.check_output("ufw reload")
    assert host.check_output("iptables -S DOCKER-USER").count("-A DOCKER-USER") == 5
    assert "-j ufw6-user-forward" in host.check_output("ip6tables -S DOCKER-USER")


def run_bad_input(extra_vars):
    """Run the role against localhost in check mode with bad values; it must stop in its checks."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(PROJECT / ".ansible" / "collections"),
        ANSIBLE_NOCOLOR="1",
    )
    cmd = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i", "localhost,",
        "--check",
        "-e", json.dumps(extra_vars),
        str(BAD_INPUT_PLAYBOOK),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    return result.returncode, " ".join((result.stdout + result.stderr).split())


@pytest.mark.parametrize(
    ("extra_vars", "task", "message"),
    [
        (
            {"firewall_rules": [{"port": 70000}]},
            CHECKS,
            "firewall_rules: port 70000 is invalid",
        ),
        (
            {"firewall_allowed_tcp_ports": ["9000:8000"]},
            CHECKS,
            'firewall_allowed_tcp_ports: port "9000:8000" is invalid',
        ),
        (
            {"firewall_rules": [{"port": 443, "from": "10.0.0.0/33"}]},
            CHECKS,
            'firewall_rules: from "10.0.0.0/33" (port 443) is not "any"',
        ),
        (
            {"firewall_ssh_allow": False, "firewall_rules": [{"port": 443}]},
            CHECKS,
            "Lock-out refused: firewall_ssh_allow is false and no allow/limit rule",
        ),
        (
            {"firewall_rules": [{"port": 443, "proto": "icmp"}]},
            "Validating arguments against arg spec",
            "value of proto must be one of: tcp, udp, any",
        ),
    ],
    ids=["port-out-of-range", "reversed-range", "malformed-cidr", "lock-out", "unknown-proto"],
)
def test_bad_input_fails_early(extra_vars, task, message):
    rc, output = run_bad_input(extra_vars)
    assert rc != 0, output
    assert f"TASK [selfhost.platform.firewall : {task}" in output, output
    assert message in output, output
    # Nothing after the checks ran: no package task, no UFW command.
    assert "Install UFW" not in output, output


def test_bad_input_reports_every_problem_at_once():
    rc, output = run_bad_input({
        "firewall_rules": [{"port": 70000}, {"port": 443, "from": "10.0.0.0/33"}],
        "firewall_docker_internal_networks": ["172.30.0.1/24"],
    })
    assert rc != 0, output
    assert "firewall_rules: port 70000 is invalid" in output, output
    assert 'firewall_rules: from "10.0.0.0/33" (port 443) is not "any"' in output, output
    assert 'firewall_docker_internal_networks: "172.30.0.1/24" is not a network in CIDR form' in output, output
    assert "Install UFW" not in output, output


def test_lock_out_check_covers_the_session_port():
    """Over SSH on 2222, a rule for firewall_ssh_port 22 alone would cut the session in use.

    ansible_connection=ssh is only declared: the play fails in the checks (controller-side
    actions) before anything would connect.
    """
    rc, output = run_bad_input({
        "ansible_connection": "ssh", "ansible_port": 2222, "firewall_ssh_port": 22,
        "firewall_ssh_allow": False, "firewall_rules": [{"port": 22}],
    })
    assert rc != 0, output
    assert "Lock-out refused" in output, output
    assert "opens tcp port(s) 2222 (firewall_ssh_port 22)" in output, output
    assert "Install UFW" not in output, output


def test_lock_out_check_accepts_a_covering_rule():
    """firewall_ssh_allow: false is fine when a rule opens the SSH port; the run then goes past the checks."""
    rc, output = run_bad_input({"firewall_ssh_allow": False, "firewall_rules": [{"port": 22, "from": "10.0.0.0/8"}]})
    assert f"TASK [selfhost.platform.firewall : {CHECKS}" in output, output
    assert "Lock-out refused" not in output, output
    # Without gathered facts the play stops at the OS-specific vars, still before any change.
    assert "Load the OS-specific values" in output, output
    assert rc != 0


def _ufw_ssh_ports(host):
    """The TCP ports UFW holds an SSH rule for (comment 'SSH'), from `ufw show added`."""
    added = host.check_output("ufw show added")
    return sorted({int(port) for port in re.findall(r"^ufw (?:limit|allow) (\d+)/tcp comment 'SSH'$", added, re.M)})


def _changed(run):
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    return sum(stats["changed"] for stats in json.loads(run.stdout)["stats"].values())


def test_moved_ssh_port_is_idempotent_and_the_old_port_closed(host, address):
    """firewall + sshd as playbooks/hardening.yml runs them, over docker exec (no ansible_port) and
    without inventory wiring: after sshd moves to 2222 the firewall keeps 2222 only, and the next
    run changes nothing (the firewall used to re-add 22 from ansible_port's default). Runs last:
    it puts sshd and UFW back on 22 when done."""
    try:
        moved = rerun_converge("firewall", {"sshd_port": 2222, "sshd_port_check_host": address}, callback="ansible.posix.json",
                               playbook="ssh_port_move.yml")
        assert _changed(moved) > 0
        assert "2222" in host.check_output("ss -Htln 'sport = :2222'")
        again = rerun_converge("firewall", {"sshd_port": 2222, "sshd_port_check_host": address}, callback="ansible.posix.json",
                               playbook="ssh_port_move.yml")
        assert _changed(again) == 0, json.loads(again.stdout)["stats"]
        assert _ufw_ssh_ports(host) == [2222]
        assert host.run("ss -Htln 'sport = :22'").stdout.strip() == ""
    finally:
        back = rerun_converge("firewall", {"sshd_port": 22, "sshd_port_check_host": address}, callback="ansible.posix.json",
                              playbook="ssh_port_move.yml")
    assert back.returncode == 0, (back.stdout + back.stderr)[-3000:]
    assert _ufw_ssh_ports(host) == [22]
