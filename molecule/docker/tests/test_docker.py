"""Behaviour of selfhost.platform.docker with the real Debian engine inside the lab host.

Probes go from the controller to the lab container's bridge address only; the "outside host"
a container reaches out to is this controller, on the lab bridge's gateway address.
"""

import errno
import hashlib
import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import yaml

from labtest import bridge_address

PROJECT = Path(__file__).resolve().parents[3]
SCENARIO = Path(__file__).resolve().parents[1]
POOL = ipaddress.ip_network("172.20.0.0/16")


@pytest.fixture(scope="module")
def name(host):
    return host.backend.get_hostname()


@pytest.fixture(scope="module")
def address(name):
    """The lab container's address on the Docker bridge (traffic goes only there)."""
    return bridge_address(name)


def probe(address, port, timeout=3.0):
    """'open' (with the start of the HTTP answer), 'refused' or 'timeout' (dropped)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        try:
            while chunk := sock.recv(4096):
                data += chunk
        except socket.timeout:
            pass
        return "open", data.decode(errors="replace")
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


def docker(host, *args):
    return host.check_output("docker " + " ".join(args))


def test_engine_runs_with_the_configured_daemon(host):
    assert host.service("docker").is_running
    assert host.service("docker").is_enabled
    info = json.loads(docker(host, "info", "--format", "'{{json .}}'"))
    assert info["LoggingDriver"] == "local"
    assert info["LiveRestoreEnabled"] is True
    # The inner engine picks vfs here: no overlay mounts inside the lab container.
    assert info["Driver"] == "vfs"
    assert info["DockerRootDir"] == "/var/lib/docker"


def test_daemon_json(host):
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert config["log-opts"] == {"max-size": "10m", "max-file": "3"}
    assert config["default-address-pools"] == [{"base": "172.20.0.0/16", "size": 24}]
    assert config["no-new-privileges"] is True
    assert config["live-restore"] is True
    # Inside a container the role keeps the proxy on (read-only /proc/sys) and says so.
    assert config["userland-proxy"] is True
    assert host.file("/etc/docker/daemon.json").mode == 0o644


def test_new_network_takes_a_subnet_from_the_pool(host):
    net = f"pooltest-{uuid.uuid4().hex[:8]}"
    docker(host, "network", "create", net)
    try:
        subnet = docker(host, "network", "inspect", "-f", "'{{range .IPAM.Config}}{{.Subnet}}{{end}}'", net)
    finally:
        docker(host, "network", "rm", net)
    subnet = ipaddress.ip_network(subnet.strip())
    assert subnet.subnet_of(POOL) and subnet.prefixlen == 24
    bridge = docker(host, "network", "inspect", "-f", "'{{range .IPAM.Config}}{{.Subnet}}{{end}}'", "bridge")
    assert ipaddress.ip_network(bridge.strip()).subnet_of(POOL)


def test_container_runs_from_an_imported_image(host):
    image = json.loads(docker(host, "image", "inspect", "selfhost/busybox:lab"))[0]
    assert image["RepoDigests"] == []  # imported from a tarball, never pulled
    assert docker(host, "run", "--rm", "selfhost/busybox:lab", "/bin/echo", "alive").strip() == "alive"


def test_containers_get_the_daemon_defaults(host):
    status = docker(host, "exec", "web80", "cat", "/proc/self/status")
    assert "NoNewPrivs:\t1" in status
    log_config = json.loads(docker(host, "inspect", "-f", "'{{json .HostConfig.LogConfig}}'", "web80"))
    assert log_config == {"Type": "local", "Config": {"max-file": "3", "max-size": "10m"}}


def test_firewall_route_rule_for_the_container_port(host):
    lines = [" ".join(line.split()) for line in host.check_output("ufw status").splitlines()]
    assert "80/tcp ALLOW FWD Anywhere # web80 container" in lines
    assert host.run("iptables -C FORWARD -j DOCKER-USER").rc == 0


def test_allowed_published_port_answers(address):
    state, answer = probe(address, 8080)
    assert state == "open"
    assert "hello from a container" in answer


def test_published_port_without_rule_is_dropped(host, address):
    """8081 -> 81 has a running httpd behind it; only the firewall stands in the way."""
    assert "hello from a container" in docker(host, "exec", "web80", "wget", "-qO-", "http://127.0.0.1:80/")
    assert probe(address, 8081)[0] == "timeout"


def test_inter_container_traffic(host):
    ip81 = docker(host, "inspect", "-f", "'{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'", "web81").strip()
    assert ipaddress.ip_address(ip81) in POOL
    assert "hello from a container" in docker(host, "exec", "web80", "wget", "-qO-", f"http://{ip81}:81/")


def test_outbound_to_the_lab_host(host):
    """A container opens a connection out through the lab host's FORWARD chain (NAT) to this controller."""
    gateway = host.check_output("ip -4 route show default").split()[2]
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind((gateway, 0))
    srv.listen(1)
    srv.settimeout(20)
    port = srv.getsockname()[1]
    seen = {}

    def serve():
        try:
            conn, peer = srv.accept()
            with conn:
                seen["peer"] = peer[0]
                conn.sendall(b"hello from outside\n")
        except OSError:
            pass

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        out = host.run(f"docker exec web80 sh -c 'nc -w 5 {gateway} {port} </dev/null'")
    finally:
        thread.join(timeout=25)
        srv.close()
    assert out.rc == 0, out.stderr
    assert "hello from outside" in out.stdout
    assert seen.get("peer") not in (None, gateway)  # NATed to the lab host's address


def test_docker_group_only_for_listed_users(host):
    assert "docker" in host.user("deploy").groups
    members = host.check_output("getent group docker").split(":")[3]
    assert members.split(",") == ["deploy"]


def test_engine_metrics(host):
    host.check_output("systemctl start docker-engine-metrics.service")
    text = host.file("/var/lib/prometheus/node-exporter/docker_engine.prom").content_string
    metrics = {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in text.splitlines() if not line.startswith("#")}
    assert metrics["docker_engine_up"] == "1"
    running = docker(host, "info", "--format", "'{{.ContainersRunning}}'").strip()
    assert metrics['docker_engine_containers{state="running"}'] == running
    assert int(running) >= 2
    assert metrics["docker_engine_live_restore_enabled"] == "1"
    assert any(k.startswith("docker_engine_info{") and 'logging_driver="local"' in k for k in metrics)
    assert host.service("docker-engine-metrics.timer").is_enabled


def test_prune_keeps_volumes_and_running_containers(host):
    assert host.service("docker-prune.timer").is_enabled
    unit = host.file("/etc/systemd/system/docker-prune.service").content_string
    assert "system prune --force --filter until=168h" in unit
    assert "volume prune" not in unit
    docker(host, "volume", "create", "keepme")
    docker(host, "create", "--name", "stopped-old", "selfhost/busybox:lab", "/bin/true")
    host.check_output("systemctl start docker-prune.service")
    assert "keepme" in docker(host, "volume", "ls", "-q").split()
    # Younger than 168h: kept too.
    assert "stopped-old" in docker(host, "ps", "-a", "--format", "'{{.Names}}'").split()
    assert "true" in docker(host, "inspect", "-f", "'{{.State.Running}}'", "web80")
    docker(host, "rm", "stopped-old")


def test_compose_projects_rendered(host):
    hello = host.file("/opt/hello/compose.yml")
    assert hello.mode == 0o640
    definition = yaml.safe_load(hello.content_string)
    assert definition["services"]["web"]["image"] == "selfhost/busybox:lab"
    assert definition["services"]["web"]["ports"] == ["127.0.0.1:8090:80"]
    env = host.file("/opt/hello/.env")
    assert env.mode == 0o600
    assert 'HELLO_TOKEN="not-a-real-secret"' in env.content_string
    templated = yaml.safe_load(host.file("/opt/templated/compose.yml").content_string)
    assert templated["services"]["app"]["labels"]["host"]


def test_compose_projects_deployed(host):
    if host.run("docker compose version").rc != 0:
        pytest.skip("compose v2 is not installable here (Debian 12 packages only compose v1, "
                    "no upstream repository is reachable): deployment is not tested")
    assert "hello" in docker(host, "ps", "--format", "'{{.Label \"com.docker.compose.project\"}}'")


def engine_state(host):
    return (
        host.check_output("systemctl show -p MainPID --value docker"),
        hashlib.sha256(host.file("/etc/docker/daemon.json").content).hexdigest(),
        docker(host, "info", "--format", "'{{.LoggingDriver}}'").strip(),
        docker(host, "inspect", "-f", "'{{.State.Running}}'", "web80").strip(),
    )


def run_bad_input(name, extra_vars):
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(PROJECT / ".ansible" / "collections"),
        ANSIBLE_NOCOLOR="1",
    )
    cmd = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i", f"{name},", "-c", "community.docker.docker",
        "-e", json.dumps(extra_vars),
        str(SCENARIO / "bad_input.yml"),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    return result.returncode, " ".join((result.stdout + result.stderr).split())


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        ({"docker_log_driver": "nonsense"}, "docker_log_driver must be one of: json-file, local"),
        ({"docker_default_address_pools": [{"base": "172.20.0.0/16", "size": 8}]},
         "is not a valid pool"),
        ({"docker_daemon_options_extra": {"log-driverr": "local"}},
         "log-driverr is not a daemon.json option dockerd knows"),
    ],
    ids=["log-driver", "pool", "unknown-key"],
)
def test_bad_input_fails_and_engine_keeps_running(host, name, extra_vars, message):
    before = engine_state(host)
    rc, output = run_bad_input(name, extra_vars)
    assert rc != 0, output
    assert message in output, output
    assert "TASK [selfhost.platform.docker : Write daemon.json" not in output, output
    assert "RUNNING HANDLER" not in output, output
    assert engine_state(host) == before
