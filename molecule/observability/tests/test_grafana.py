"""Grafana provisioning on the monitoring host (grafana_install: false in this lab).

Grafana's APT repository is unreachable here (no internet but the Debian and PyPI mirrors), so
the scenario checks what the role writes: grafana.ini, the datasource, the dashboard provider
and the dashboards, each parsed the way Grafana would read it. The service checks are skipped.
"""

import configparser
import json
import os

import pytest
import testinfra
import yaml

MON = "obs-monitoring-%s" % os.environ.get("LAB_DISTRO", "debian12")
DASHBOARDS = ["selfhost-node", "selfhost-nginx", "selfhost-celery", "selfhost-backups", "selfhost-slo"]


@pytest.fixture(scope="module")
def mon():
    return testinfra.get_host("docker://%s" % MON)


def test_grafana_ini_holds_the_admin_password_privately(mon):
    ini = mon.file("/etc/grafana/grafana.ini")
    assert (ini.user, ini.group, ini.mode) == ("root", "grafana", 0o640)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(ini.content_string)
    assert parser["security"]["admin_password"].strip('"') == "lab-admin-password"
    assert parser["server"]["http_addr"] == "127.0.0.1"
    assert parser["users"]["allow_sign_up"] == "false"
    assert parser["paths"]["provisioning"] == "/etc/grafana/provisioning"


def test_datasource_points_at_prometheus(mon):
    doc = yaml.safe_load(mon.file("/etc/grafana/provisioning/datasources/selfhost.yaml").content_string)
    assert doc["apiVersion"] == 1
    # The Loki datasource beside it (group loki has a host here) is checked in test_logs.py.
    [source] = [s for s in doc["datasources"] if s["type"] == "prometheus"]
    assert (source["type"], source["uid"], source["url"]) == ("prometheus", "prometheus", "http://127.0.0.1:9090")


def test_dashboard_provider_and_dashboards_are_valid(mon):
    provider = yaml.safe_load(mon.file("/etc/grafana/provisioning/dashboards/selfhost.yaml").content_string)
    path = provider["providers"][0]["options"]["path"]
    assert path == "/etc/grafana/dashboards/selfhost"
    for name in DASHBOARDS:
        board = json.loads(mon.file("%s/%s.json" % (path, name)).content_string)
        assert board["uid"] == name and board["panels"], name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == "prometheus"
            assert all(target["expr"] for target in panel["targets"])


def test_dashboard_queries_parse_in_promql(mon):
    """Every dashboard query is valid PromQL (promtool parses it as a rule expression)."""
    exprs = []
    for name in DASHBOARDS:
        board = json.loads(mon.file("/etc/grafana/dashboards/selfhost/%s.json" % name).content_string)
        exprs += [t["expr"].replace("$host", ".*") for p in board["panels"] for t in p["targets"]]
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": "dashboard:query%d" % i, "expr": e} for i, e in enumerate(exprs)]}]}
    mon.run("cat > /tmp/dashboard-queries.yml <<'EOF'\n%s\nEOF" % yaml.safe_dump(rules))
    run = mon.run("promtool check rules /tmp/dashboard-queries.yml")
    assert run.rc == 0, run.stdout + run.stderr


def test_grafana_service():
    pytest.skip("Grafana is not installable in this lab: apt.grafana.com is unreachable (only the Debian "
                "and PyPI mirrors are); the role installs and starts it for real users, and the GitHub "
                "Actions matrix has the internet")
