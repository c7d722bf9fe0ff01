"""Unit tests of the selfhost.platform.monitoring_sources filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.monitoring_sources import (
    FilterModule,
    monitoring_sources,
)

HOSTVARS = {
    "mon1": {"ansible_host": "203.0.113.5", "prometheus_target_address": "10.0.0.5"},
    "mon2": {"ansible_host": "203.0.113.6"},
    "mon3": {},
    "mon4": {"ansible_host": "203.0.113.7", "tailscale_ip": "100.64.0.7"},
}


def test_registered():
    assert FilterModule().filters()["monitoring_sources"] is monitoring_sources


def test_address_var_then_ansible_host_then_name():
    hosts = ["mon1", "mon2", "mon3"]
    assert monitoring_sources(hosts, HOSTVARS, "prometheus_target_address") == [
        "10.0.0.5", "203.0.113.6", "mon3"]


def test_other_address_var():
    assert monitoring_sources(["mon4", "mon1"], HOSTVARS, "tailscale_ip") == [
        "100.64.0.7", "203.0.113.5"]


def test_default_address_var():
    assert monitoring_sources(["mon1"], HOSTVARS) == ["10.0.0.5"]


def test_unique_in_order():
    hostvars = {"a": {"ansible_host": "10.0.0.2"}, "b": {"ansible_host": "10.0.0.1"},
                "c": {"ansible_host": "10.0.0.2"}}
    assert monitoring_sources(["a", "b", "c"], hostvars, "x") == ["10.0.0.2", "10.0.0.1"]


def test_empty_group_and_host_without_vars():
    assert monitoring_sources([], HOSTVARS, "x") == []
    assert monitoring_sources(["unknown"], HOSTVARS, "x") == ["unknown"]


@pytest.mark.parametrize("hosts", ["mon1", None, {"mon1": {}}])
def test_refuses_what_is_not_a_host_list(hosts):
    with pytest.raises(AnsibleFilterError, match="list of host names"):
        monitoring_sources(hosts, HOSTVARS, "x")


def test_refuses_empty_address_var():
    with pytest.raises(AnsibleFilterError, match="address_var"):
        monitoring_sources(["mon1"], HOSTVARS, "")
