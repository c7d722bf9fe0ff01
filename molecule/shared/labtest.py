"""Helpers the Molecule scenarios' testinfra tests share (on PYTHONPATH through the verifier's env
in .config/molecule/config.yml). Test traffic goes only to the lab containers' bridge addresses."""

import subprocess

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
