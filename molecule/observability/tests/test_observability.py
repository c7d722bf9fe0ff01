"""Behaviour of the observability roles on two lab hosts.

obs-monitoring runs Prometheus, Alertmanager and the blackbox exporter; obs-target runs the
node exporter behind UFW. Traffic goes only to these two containers (their bridge addresses).
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import testinfra
import yaml

from labtest import FAILED_UNITS, bridge_address

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = Path(__file__).resolve().parents[1]
DISTRO = os.environ.get("LAB_DISTRO", "debian12")
MON = "obs-monitoring-%s" % DISTRO
TARGET = "obs-target-%s" % DISTRO
RULES = "/etc/prometheus/rules.d"


address = bridge_address


@pytest.fixture(scope="module")
def mon():
    return testinfra.get_host("docker://%s" % MON)


@pytest.fixture(scope="module")
def target():
    return testinfra.get_host("docker://%s" % TARGET)


def api(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return json.loads(answer.read())


def poll(check, timeout, what):
    """Call check() until it returns something truthy, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as exc:
            last = exc
        time.sleep(2)
    pytest.fail("%s did not happen within %d s (last: %r)" % (what, timeout, last))


def targets():
    data = api("http://%s:9090/api/v1/targets" % address(MON))["data"]["activeTargets"]
    return [(t["labels"]["job"], t["labels"].get("host", ""), t["scrapeUrl"], t["health"]) for t in data]


def connects(host_ip, port, timeout=3):
    try:
        with socket.create_connection((host_ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def test_services_running(mon, target):
    for unit in ("prometheus", "prometheus-alertmanager", "prometheus-blackbox-exporter",
                 "prometheus-node-exporter"):
        assert mon.service(unit).is_running, unit
    assert target.service("prometheus-node-exporter").is_running
    assert mon.run(FAILED_UNITS).stdout.strip() == ""
    assert target.run(FAILED_UNITS).stdout.strip() == ""


def _all_up():
    """The target list when every target is up, else None (so poll keeps waiting)."""
    found = targets()
    return found if found and all(health == "up" for *_rest, health in found) else None


def test_every_configured_target_is_up_and_remote_hosts_use_their_address():
    found = poll(_all_up, 90, "every target up")
    jobs = {job for job, *_rest in found}
    assert {"node", "prometheus", "alertmanager", "probe_http"} <= jobs
    node = {host: url for job, host, url, _health in found if job == "node"}
    # The target host is scraped at its own bridge address, never at localhost.
    assert node[TARGET] == "http://%s:9100/metrics" % address(TARGET)
    assert node[MON] == "http://%s:9100/metrics" % address(MON)


def test_node_exporter_serves_textfile_metrics(target):
    target.run("echo 'selfhost_lab_marker 42' > /var/lib/prometheus/node-exporter/lab.prom")
    out = target.check_output("python3 -c \"import urllib.request; print(urllib.request.urlopen("
                              "'http://127.0.0.1:9100/metrics').read().decode())\"")
    assert "selfhost_lab_marker 42" in out
    assert 'node_systemd_unit_state{name="prometheus-node-exporter.service"' in out
    target.run("rm -f /var/lib/prometheus/node-exporter/lab.prom")


def test_exporter_reachable_from_monitoring_host_only(mon):
    ip = address(TARGET)
    probe = "python3 -c \"import socket; socket.create_connection(('%s', 9100), timeout=3)\"" % ip
    assert mon.run(probe).rc == 0, "the monitoring host must reach the exporter"
    assert not connects(ip, 9100), "the exporter must be closed to this machine (not a monitoring host)"


def test_firewall_rule_names_the_monitoring_host(target):
    status = target.check_output("ufw status")
    assert re.search(r"9100/tcp\s+ALLOW\s+%s\s" % re.escape(address(MON)), status), status


def test_rule_unit_tests_pass(mon):
    run = mon.run("promtool test rules /etc/prometheus/rules.tests/*.test.yml")
    assert run.rc == 0, run.stdout + run.stderr
    assert run.stdout.count("SUCCESS") == 4


def test_every_alert_has_severity_summary_and_an_existing_runbook(mon):
    alerts = 0
    for name in mon.check_output("ls %s" % RULES).split():
        doc = yaml.safe_load(mon.file("%s/%s" % (RULES, name)).content_string)
        for group in doc.get("groups") or []:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                alerts += 1
                assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule
                assert rule["annotations"]["summary"], rule
                page = rule["annotations"]["runbook_url"].split("/blob/main/", 1)[1]
                assert (ROOT / page).is_file(), "%s: runbook %s is missing" % (rule["alert"], page)
    assert alerts >= 25


def test_alert_fires_reaches_alertmanager_and_the_webhook(mon, target):
    am = "http://%s:9093/api/v2/alerts" % address(MON)
    mon.run("truncate -s 0 /var/lib/lab-webhook/posts.jsonl")
    target.check_output("systemctl stop prometheus-node-exporter")
    try:
        def down_alert():
            return [a for a in api(am) if a["labels"].get("alertname") == "TargetDown"
                    and a["labels"].get("host") == TARGET and a["status"]["state"] == "active"]
        [alert] = poll(down_alert, 120, "TargetDown in Alertmanager")
        assert alert["labels"]["severity"] == "warning"
        assert alert["annotations"]["runbook_url"].endswith("/alert-target-down.md")
        assert [r["name"] for r in alert["receivers"]] == ["lab-webhook"]

        def posted():
            lines = mon.file("/var/lib/lab-webhook/posts.jsonl").content_string.splitlines()
            return [json.loads(line) for line in lines
                    if "TargetDown" in line and TARGET in line]
        post = poll(posted, 60, "the webhook POST")[0]
        assert post["body"]["receiver"] == "lab-webhook"
        assert post["body"]["status"] == "firing"
    finally:
        target.check_output("systemctl start prometheus-node-exporter")
    poll(lambda: all(health == "up" for *_rest, health in targets()), 60, "the target back up")


def _broken(extra):
    """Run broken.yml (the roles with one bad setting) against the lab hosts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".ansible" / "collections"))
    inventory = "[monitoring]\n%s\n[targets]\n%s\n[all:vars]\nansible_connection=community.docker.docker\n" % (MON, TARGET)
    path = Path(os.environ.get("TMPDIR", "/tmp")) / ("obs-broken-%d.ini" % os.getpid())
    path.write_text(inventory)
    try:
        run = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(path),
                              str(SCENARIO / "broken.yml"), "-e", json.dumps(extra)],
                             capture_output=True, text=True, env=env, timeout=300, check=False)
    finally:
        path.unlink()
    return run.returncode, run.stdout + run.stderr


def _state(mon):
    return {
        "rules": mon.check_output("sha256sum %s/*.yml" % RULES),
        "am": mon.check_output("sha256sum /etc/prometheus/alertmanager.yml"),
        "prom_pid": mon.check_output("systemctl show -p MainPID --value prometheus"),
        "am_pid": mon.check_output("systemctl show -p MainPID --value prometheus-alertmanager"),
    }


def test_broken_rule_fails_with_promtool_message_and_prometheus_keeps_its_rules(mon):
    before = _state(mon)
    bad = {"prometheus_rule_groups_extra": [
        {"name": "broken", "rules": [{"alert": "Broken", "expr": "rate(up[5m]"}]}]}
    rc, out = _broken(bad)
    assert rc != 0
    assert "Write the site's own rules" in out
    assert "unclosed left parenthesis" in out, out[-3000:]
    assert _state(mon) == before
    rules = api("http://%s:9090/api/v1/rules" % address(MON))["data"]["groups"]
    assert "broken" not in {g["name"] for g in rules}
    assert {"selfhost-hosts", "selfhost-services"} <= {g["name"] for g in rules}


def test_broken_alertmanager_config_fails_with_amtool_message_and_keeps_running(mon):
    before = _state(mon)
    bad = {"alertmanager_routes": [{"receiver": "lab-webhook", "matchers": ['severity=~"("']}]}
    rc, out = _broken(bad)
    assert rc != 0
    assert "Write the Alertmanager configuration" in out
    assert "missing closing )" in out, out[-3000:]
    assert _state(mon) == before
    status = api("http://%s:9093/api/v2/status" % address(MON))
    assert "lab-webhook" in status["config"]["original"]
    assert 'severity=~"("' not in status["config"]["original"]
