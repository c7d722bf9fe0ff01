"""Helpers the Molecule scenarios' testinfra tests share (on PYTHONPATH through the verifier's env
in .config/molecule/config.yml). Test traffic goes only to the lab containers' bridge addresses."""

import json
import os
import socket
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# `systemctl --failed` without systemd's ask-password path units: those fail in lab containers
# once many containers use up the machine's inotify instances, which says nothing of the roles.
FAILED_UNITS = "systemctl --failed --no-legend --plain | grep -v '^systemd-ask-password-'"


def bridge_address(name):
    """The lab container's address on the Docker bridge."""
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip()
    assert out, "no bridge address for %s" % name
    return out


def http_get(address, port, path="/", timeout=3.0):
    """GET path over HTTP/1.0 from the controller: the status line and the body (OSError when
    nothing answers)."""
    with socket.create_connection((address, port), timeout=timeout) as conn:
        conn.settimeout(timeout)
        conn.sendall(("GET %s HTTP/1.0\r\n\r\n" % path).encode())
        data = b""
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _sep, body = data.decode("utf-8", "replace").partition("\r\n\r\n")
    return head.split("\r\n")[0], body


def rerun_converge(scenario, extra_vars=None, callback=None, timeout=900, playbook="converge.yml", args=(),
                   inventory=None):
    """Run the scenario's converge.yml (or another of its playbooks) again from a test, with Molecule's
    inventory (or the given one in its place) and the project's ansible.cfg (not Molecule's environment);
    skips when Molecule's inventory is not known."""
    inventory = inventory or os.environ.get("MOLECULE_INVENTORY_FILE")
    if not inventory:
        pytest.skip("no MOLECULE_INVENTORY_FILE: the run needs Molecule's inventory")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    # Facts in memory only: the project's fact cache may hold an earlier container of the same
    # name (another address).
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CACHE_PLUGIN="ansible.builtin.memory",
               MOLECULE_EPHEMERAL_DIRECTORY=os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ""))
    if callback:
        env["ANSIBLE_STDOUT_CALLBACK"] = callback
    command = ["ansible-playbook", "-i", inventory, os.path.join(ROOT, "molecule", scenario, playbook)]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    return subprocess.run(command + list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
