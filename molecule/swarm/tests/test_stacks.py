"""Stacks and secrets of selfhost.platform.swarm_stacks on the swarm scenario (molecule/swarm),
after converge and side_effect_stacks.yml: the lab stack's web service runs one healthy task per
node on a pinned image with the role's update and rollback settings, its secret is an external
versioned one mounted under its plain name, and only the current version is left.

By hand against other lab containers:
  PYTHONPATH=molecule/shared scripts/venv-exec python -m pytest -p no:cacheprovider \
    --hosts=docker://swx-1,docker://swx-2,docker://swx-3 molecule/swarm/tests/test_stacks.py
Probes go from the controller to the nodes' bridge addresses only."""

import json
import re

import pytest

from labtest import bridge_address, http_get

SERVICE = "lab_web"
SECRET = "lab_token"
PORT = 8080


@pytest.fixture(scope="module")
def name(host):
    return host.backend.get_hostname()


@pytest.fixture(scope="module")
def manager(host):
    """The host's docker CLI if the host is a Swarm manager; skips on workers."""
    out = host.check_output("docker info --format '{{.Swarm.ControlAvailable}}'")
    if out.strip() != "true":
        pytest.skip("not a Swarm manager")
    return host


@pytest.fixture(scope="module")
def spec(manager):
    return json.loads(manager.check_output("docker service inspect %s" % SERVICE))[0]


@pytest.fixture(scope="module")
def versions(manager):
    out = manager.check_output("docker secret ls --filter name=%s_v --format '{{.Name}}'" % SECRET)
    return sorted(line for line in out.split() if re.match(r"^%s_v[0-9]+$" % SECRET, line))


def test_every_node_serves_the_stack_on_its_host_mode_port(name):
    status, body = http_get(bridge_address(name), PORT, "/")
    assert status.endswith(" 200 OK"), status
    assert re.match(r"^version [12] ", body), body


def test_every_node_serves_the_current_secret_value(name, host):
    status, body = http_get(bridge_address(name), PORT, "/secret.txt")
    assert status.endswith(" 200 OK"), status
    assert body.strip() in ("token-one", "token-two")


def test_one_running_task_per_node(manager, spec):
    out = manager.check_output(
        "docker service ps %s --filter desired-state=running --format '{{.Node}} {{.CurrentState}}'" % SERVICE)
    lines = out.splitlines()
    assert len(lines) == spec["Spec"]["Mode"]["Replicated"]["Replicas"] == 3, out
    assert all(" Running " in " %s " % line.split(" ", 1)[1] for line in lines), out
    assert len(set(line.split()[0] for line in lines)) == 3, "tasks not spread over the nodes: %s" % out


def test_service_has_a_pinned_image_and_a_healthcheck(spec):
    container = spec["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert re.match(r"^selfhost/web:[12](@sha256:[0-9a-f]+)?$", container["Image"]), container["Image"]
    assert container["Healthcheck"]["Test"][0] == "CMD"


def test_update_and_rollback_settings(spec):
    update = spec["Spec"]["UpdateConfig"]
    rollback = spec["Spec"]["RollbackConfig"]
    assert update["Parallelism"] == 1
    assert update["FailureAction"] == "rollback"
    # the stack's own stop-first (host-mode port on every node) wins over the role's start-first
    assert update["Order"] == "stop-first"
    assert update["Monitor"] == 10 * 10 ** 9
    assert rollback["FailureAction"] == "pause"
    assert rollback["Order"] == "stop-first"
    assert spec["Spec"]["TaskTemplate"]["RestartPolicy"]["Condition"] == "any"
    assert spec["Spec"]["EndpointSpec"]["Mode"] == "dnsrr"


def test_secret_is_the_current_version_under_its_plain_name(spec, versions):
    secrets = spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"]
    assert [s["File"]["Name"] for s in secrets] == [SECRET]
    assert versions == [secrets[0]["SecretName"]], "old versions left: %s" % versions


def test_compose_file_is_root_only(manager):
    compose = manager.file("/opt/stacks/lab/compose.yml")
    assert compose.exists and compose.user == "root" and compose.group == "root"
    assert compose.mode == 0o640
    assert manager.file("/opt/stacks").mode == 0o750
    text = compose.content_string
    assert "name: %s" % versions_name(text) in text
    assert "token-" not in text, "a secret value in the compose file"


def versions_name(text):
    match = re.search(r"name: (%s_v[0-9]+)" % SECRET, text)
    assert match, text
    return match.group(1)
