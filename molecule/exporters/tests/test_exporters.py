"""Behaviour of the nginx, redis and postgres exporters on two lab hosts.

exp-service runs nginx, Redis and PostgreSQL behind UFW with their exporters; exp-monitoring
runs Prometheus. Traffic goes only to these two containers (their bridge addresses).
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import testinfra

from labtest import FAILED_UNITS, bridge_address

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = Path(__file__).resolve().parents[1]
DISTRO = os.environ.get("LAB_DISTRO", "debian12")
MON = "exp-monitoring-%s" % DISTRO
SERVICE = "exp-service-%s" % DISTRO
REDIS_PASSWORD = "lab-redis-password-0123456789"
SECRETS = ("lab-redis-exporter-0123456789", "lab-pg-exporter-password-01")
EXPORTERS = {  # job -> (port, unit)
    "nginx": (9113, "prometheus-nginx-exporter"),
    "redis": (9121, "prometheus-redis-exporter"),
    "postgres": (9187, "prometheus-postgres-exporter"),
}
NODE_PORT = 9100
# A connection from inside the service host that the kernel refuses (nothing listens there),
# as opposed to one UFW drops: exit status 3.
REFUSED_PROBE = ("python3 -c \"import errno, socket; s = socket.socket(); s.settimeout(3); "
                 "raise SystemExit(3 if s.connect_ex(('%s', %d)) == errno.ECONNREFUSED else 0)\"")


address = bridge_address


@pytest.fixture(scope="module")
def mon():
    return testinfra.get_host("docker://%s" % MON)


@pytest.fixture(scope="module")
def service():
    return testinfra.get_host("docker://%s" % SERVICE)


def poll(check, timeout, what):
    """Call check() until it returns something truthy, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (OSError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(2)
    pytest.fail("%s did not happen within %d s (last: %r)" % (what, timeout, last))


def api(path, timeout=5):
    with urllib.request.urlopen("http://%s:9090%s" % (address(MON), path), timeout=timeout) as answer:
        return json.loads(answer.read())["data"]


def scrape_from_monitoring(mon, port):
    """The exporter's /metrics as the monitoring host gets it over the bridge."""
    url = "http://%s:%d/metrics" % (address(SERVICE), port)
    return mon.check_output(
        "python3 -c \"import sys, urllib.request; "
        "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())\" %s" % url)


def sample(metrics, name, labels=""):
    """Value of one series in a /metrics text (labels as written by the exporter), or None."""
    pattern = r"^%s%s\s+(\S+)$" % (re.escape(name), re.escape("{%s}" % labels) if labels else "")
    found = re.search(pattern, metrics, re.MULTILINE)
    return float(found.group(1)) if found else None


def connects(host_ip, port, timeout=3):
    try:
        with socket.create_connection((host_ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def redis_cli(service, *args):
    return service.check_output("redis-cli --no-auth-warning -a %s %s" % (REDIS_PASSWORD, " ".join(args)))


def test_exporters_run_and_nothing_failed(service):
    for _port, unit in EXPORTERS.values():
        assert service.service(unit).is_running, unit
        assert service.service(unit).is_enabled, unit
    assert service.run(FAILED_UNITS).stdout.strip() == ""


def test_secrets_stay_in_private_files_and_off_command_lines(service):
    env = service.file("/etc/default/prometheus-redis-exporter")
    assert (env.user, env.group, env.mode) == ("root", "root", 0o600)
    password = service.file("/etc/prometheus-postgres-exporter/password")
    assert (password.user, password.mode) == ("prometheus", 0o600)
    assert SECRETS[1] not in service.file("/etc/default/prometheus-postgres-exporter").content_string
    assert service.file("/etc/default/prometheus-postgres-exporter").mode == 0o644
    commands = service.check_output("ps -eo args")
    for secret in SECRETS:
        assert secret not in commands


def test_nginx_exporter_reads_stub_status(mon):
    metrics = scrape_from_monitoring(mon, 9113)
    assert sample(metrics, "nginx_up") == 1
    assert sample(metrics, "nginx_connections_active") >= 1
    assert sample(metrics, "nginx_http_requests_total") >= 1


def test_postgres_exporter_logs_in_as_the_monitoring_role(mon):
    metrics = scrape_from_monitoring(mon, 9187)
    assert sample(metrics, "pg_up") == 1
    # pg_stat_database rows are only readable with a working login.
    assert re.search(r'^pg_stat_database_numbackends\{datid="\d+",datname="postgres"', metrics, re.MULTILINE), \
        metrics[:2000]


def test_redis_exporter_reports_celery_queue_length(mon, service):
    """Tasks pushed onto a Celery queue key show up as its length, at the exporter and in Prometheus."""
    redis_cli(service, "DEL", "reports")
    redis_cli(service, "LPUSH", "reports", "task-1", "task-2", "task-3")
    try:
        metrics = scrape_from_monitoring(mon, 9121)
        assert sample(metrics, "redis_up") == 1
        assert sample(metrics, "redis_key_size", 'db="db0",key="reports"') == 3
        # The ACL user may run everything a scrape needs: maxmemory comes from CONFIG GET.
        assert sample(metrics, "redis_memory_max_bytes") > 0

        def recorded():
            result = api("/api/v1/query?query=" + urllib.parse.quote('selfhost:celery_queue_length{queue="reports"}'))
            return result["result"] and float(result["result"][0]["value"][1]) == 3
        poll(recorded, 60, "selfhost:celery_queue_length{queue=\"reports\"} == 3 in Prometheus")
    finally:
        redis_cli(service, "DEL", "reports")


def test_prometheus_scrapes_every_exporter_at_the_service_address():
    def all_up():
        found = {}
        for target in api("/api/v1/targets")["activeTargets"]:
            job = target["labels"]["job"]
            if job in EXPORTERS:
                found.setdefault(job, []).append((target["scrapeUrl"], target["health"], target["lastError"]))
        if set(found) == set(EXPORTERS) and all(h == "up" for ts in found.values() for _u, h, _e in ts):
            return found
        return None
    found = poll(all_up, 90, "every nginx/redis/postgres target up")
    ip = address(SERVICE)
    for job, (port, _unit) in EXPORTERS.items():
        assert [url for url, _h, _e in found[job]] == ["http://%s:%d/metrics" % (ip, port)], found[job]


def test_exporter_ports_open_to_the_monitoring_host_only(mon, service):
    ip, mon_ip = address(SERVICE), address(MON)
    status = service.check_output("ufw status")
    for job, (port, _unit) in EXPORTERS.items():
        probe = "python3 -c \"import socket; socket.create_connection(('%s', %d), timeout=3)\"" % (ip, port)
        assert mon.run(probe).rc == 0, "%s: the monitoring host must get in" % job
        # This machine (the bridge gateway) is not a monitoring host: UFW drops it.
        assert not connects(ip, port), "%s: port %d must be closed to non-monitoring hosts" % (job, port)
        assert re.search(r"^%d/tcp\s+ALLOW\s+%s\s" % (port, re.escape(mon_ip)), status, re.MULTILINE), status
        # No other rule opens it (e.g. from Anywhere).
        assert len(re.findall(r"^%d/tcp\s" % port, status, re.MULTILINE)) == 1, status


def test_rejected_flag_fails_the_play_and_keeps_the_running_exporter(service):
    before = (service.check_output("sha256sum /etc/default/prometheus-nginx-exporter"),
              service.check_output("systemctl show -p MainPID --value prometheus-nginx-exporter"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".ansible" / "collections"))
    inventory = Path(os.environ.get("TMPDIR", "/tmp")) / ("exp-broken-%d.ini" % os.getpid())
    inventory.write_text("[edge]\n%s\n[all:vars]\nansible_connection=community.docker.docker\n" % SERVICE)
    try:
        run = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
                              str(SCENARIO / "broken.yml"),
                              "-e", json.dumps({"nginx_exporter_extra_args": ["--no-such-flag=1"]})],
                             capture_output=True, text=True, env=env, timeout=300, check=False)
    finally:
        inventory.unlink()
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "Write the exporter flags" in out
    assert "no-such-flag" in out, out[-3000:]
    after = (service.check_output("sha256sum /etc/default/prometheus-nginx-exporter"),
             service.check_output("systemctl show -p MainPID --value prometheus-nginx-exporter"))
    assert after == before
    assert service.service("prometheus-nginx-exporter").is_running


def listening_addresses(host, port):
    """Local addresses of the TCP sockets listening on port (ss -Hltn), sorted."""
    found = []
    for line in host.check_output("ss -Hltn").splitlines():
        local = line.split()[3]
        address_part, _sep, local_port = local.rpartition(":")
        if local_port == str(port):
            found.append(address_part.strip("[]"))
    return sorted(found)


def test_exporters_bind_to_the_scrape_address_only(mon, service):
    """A monitoring host is known: each exporter listens on the address Prometheus scrapes, not on
    every address, so another address of the host is refused by the kernel, firewall or not."""
    ip = address(SERVICE)
    ports = [port for port, _unit in EXPORTERS.values()]
    for port in ports:
        assert listening_addresses(service, port) == [ip], port
        assert service.run(REFUSED_PROBE % ("127.0.0.1", port)).rc == 3, "%d answers on loopback" % port
    # The node exporter also keeps loopback for readers on the host, and that address only.
    assert listening_addresses(service, NODE_PORT) == sorted([ip, "127.0.0.1"])
    assert service.run(REFUSED_PROBE % ("127.0.0.2", NODE_PORT)).rc == 3
    probe = "python3 -c \"import socket; socket.create_connection(('%s', %d), timeout=3)\"" % (ip, NODE_PORT)
    assert mon.run(probe).rc == 0, "the monitoring host must reach the node exporter"
    assert not connects(ip, NODE_PORT), "the node exporter must be closed to non-monitoring hosts"
