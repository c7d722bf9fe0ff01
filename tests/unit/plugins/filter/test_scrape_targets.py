"""Unit tests of the selfhost.platform.scrape_targets filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.scrape_targets import (
    FilterModule,
    is_loopback,
    scrape_targets,
)

GROUPS = {
    "all": ["mon1", "web1", "db1"],
    "monitoring": ["mon1"],
    "edge": ["web1"],
    "db": ["db1"],
    "empty": [],
}
HOSTVARS = {
    "mon1": {"ansible_host": "203.0.113.5", "prometheus_target_address": "10.0.0.5"},
    "web1": {"ansible_host": "203.0.113.10", "node_exporter_port": 9200,
             "prometheus_target_labels": {"env": "prod"}},
    "db1": {},
}


def targets(config):
    return [t for entry in config["static_configs"] for t in entry["targets"]]


def test_registered():
    assert FilterModule().filters()["scrape_targets"] is scrape_targets


def test_address_order_port_var_and_labels():
    jobs = [{"name": "node", "group": "all", "port": 9100, "port_var": "node_exporter_port",
             "labels": {"role": "node"}}]
    [config] = scrape_targets(jobs, GROUPS, HOSTVARS, local_host="mon1")
    assert config["job_name"] == "node"
    # address_var first, then ansible_host, then the inventory name; per-host port.
    assert targets(config) == ["10.0.0.5:9100", "203.0.113.10:9200", "db1:9100"]
    assert config["static_configs"][1]["labels"] == {"host": "web1", "role": "node", "env": "prod"}
    assert config["static_configs"][2]["labels"] == {"host": "db1", "role": "node"}


def test_passthrough_keys_and_empty_groups_left_out():
    jobs = [
        {"name": "pg", "group": "db", "port": 9187, "scrape_interval": "30s", "metrics_path": "/m"},
        {"name": "nothing", "group": "empty", "port": 1},
        {"name": "missing", "group": "no_such_group", "port": 1},
    ]
    [config] = scrape_targets(jobs, GROUPS, HOSTVARS)
    assert config == {
        "job_name": "pg",
        "metrics_path": "/m",
        "scrape_interval": "30s",
        "static_configs": [{"targets": ["db1:9187"], "labels": {"host": "db1"}}],
    }


@pytest.mark.parametrize("address", ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"])
def test_loopback_refused_for_remote_hosts(address):
    hostvars = {"web1": {"ansible_host": address}}
    with pytest.raises(AnsibleFilterError, match="web1.*loopback"):
        scrape_targets([{"name": "node", "group": "edge", "port": 9100}], GROUPS, hostvars, local_host="mon1")


def test_loopback_allowed_for_the_prometheus_host_itself():
    hostvars = {"mon1": {"ansible_host": "127.0.0.1"}}
    [config] = scrape_targets([{"name": "prometheus", "group": "monitoring", "port": 9090}],
                              GROUPS, hostvars, local_host="mon1")
    assert targets(config) == ["127.0.0.1:9090"]


def test_ipv6_is_bracketed():
    hostvars = {"web1": {"ansible_host": "2001:db8::10"}}
    [config] = scrape_targets([{"name": "node", "group": "edge", "port": 9100}], GROUPS, hostvars)
    assert targets(config) == ["[2001:db8::10]:9100"]


def test_probe_job():
    jobs = [{"name": "healthz", "labels": {"service": "api"},
             "probe": {"module": "http_2xx", "targets": ["https://app.example.com/healthz"]}}]
    [config] = scrape_targets(jobs, GROUPS, HOSTVARS)
    assert config["metrics_path"] == "/probe"
    assert config["params"] == {"module": ["http_2xx"]}
    assert config["static_configs"] == [{"targets": ["https://app.example.com/healthz"],
                                         "labels": {"service": "api"}}]
    assert config["relabel_configs"][-1] == {"target_label": "__address__", "replacement": "127.0.0.1:9115"}


@pytest.mark.parametrize(
    "jobs, message",
    [
        ([{"name": "a", "port": 1}, {"name": "a", "port": 2}], "defined twice"),
        ([{"name": "bad name", "port": 1}], "letters"),
        ([{"name": "a"}], "needs a port"),
        ([{"name": "a", "port": 70000}], "1 to 65535"),
        ([{"name": "a", "port": "x"}], "not a port"),
        ([{"name": "a", "port": 1, "prot": 2}], "unknown keys prot"),
        ([{"name": "a", "port": 1, "labels": {"__x": 1}}], "not a valid label"),
        ([{"name": "a", "probe": {"targets": ["x"]}}], "module"),
        ([{"name": "a", "probe": {"module": "m", "targets": "x"}}], "list of URLs"),
        ([{"port": 1}], "needs a name"),
    ],
)
def test_invalid_jobs(jobs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        scrape_targets(jobs, GROUPS, HOSTVARS)


def test_port_var_without_port_needs_the_hostvar():
    with pytest.raises(AnsibleFilterError, match="db1.*node_exporter_port"):
        scrape_targets([{"name": "node", "group": "all", "port_var": "node_exporter_port"}],
                       GROUPS, {"mon1": {"node_exporter_port": 1}, "web1": {"node_exporter_port": 2}})


def test_is_loopback():
    assert is_loopback("LOCALHOST")
    assert not is_loopback("10.0.0.1")
    assert not is_loopback("web1.example.com")


def test_enabled_var_leaves_out_hosts_where_the_service_is_off():
    hostvars = {"mon1": {"flower_on": True}, "web1": {"flower_on": "false"}, "db1": {}}
    jobs = [{"name": "flower", "group": "all", "port": 5555, "enabled_var": "flower_on"}]
    [config] = scrape_targets(jobs, GROUPS, hostvars, local_host="mon1")
    # off on web1; db1 does not say, so it is kept (the service's own default is on).
    assert targets(config) == ["mon1:5555", "db1:5555"]


def test_enabled_var_off_everywhere_leaves_the_job_out():
    hostvars = {"mon1": {"flower_on": False}, "web1": {"flower_on": False}, "db1": {"flower_on": False}}
    assert scrape_targets([{"name": "flower", "port": 5555, "enabled_var": "flower_on"}], GROUPS, hostvars) == []


def test_enabled_var_that_is_not_a_boolean_is_refused():
    with pytest.raises(AnsibleFilterError, match="flower_on of host 'web1' is 'maybe', not a boolean"):
        scrape_targets([{"name": "flower", "port": 5555, "enabled_var": "flower_on"}], GROUPS,
                       {"web1": {"flower_on": "maybe"}})


def test_enabled_default_false_scrapes_only_the_hosts_that_turn_the_service_on():
    hostvars = {"mon1": {"dockerd_on": True, "dockerd_port": 9324}, "web1": {"dockerd_on": False}, "db1": {}}
    jobs = [{"name": "dockerd", "group": "all", "port": 9323, "port_var": "dockerd_port",
             "enabled_var": "dockerd_on", "enabled_default": False}]
    [config] = scrape_targets(jobs, GROUPS, hostvars, local_host="mon1")
    # db1 does not say: with enabled_default false it is left out (the service's default is off).
    assert targets(config) == ["mon1:9324"]
    assert scrape_targets(jobs, GROUPS, {"db1": {}}) == []


def test_enabled_default_that_is_not_a_boolean_is_refused():
    with pytest.raises(AnsibleFilterError, match="enabled_default must be a boolean"):
        scrape_targets([{"name": "dockerd", "port": 9323, "enabled_var": "x", "enabled_default": "sometimes"}],
                       GROUPS, HOSTVARS)
