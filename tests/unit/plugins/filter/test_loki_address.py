"""Unit tests of the selfhost.platform.loki_address filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.loki_address import FilterModule, loki_address

HOSTVARS = {
    "mon1": {"ansible_host": "203.0.113.40", "prometheus_target_address": "10.0.0.40"},
    "mon6": {"prometheus_target_address": "fd00::40", "loki_http_port": 3101},
    "web1": {"ansible_host": "203.0.113.10", "prometheus_target_address": "10.0.0.10"},
    "bare": {},
}


def test_registered():
    assert FilterModule().filters()["loki_address"] is loki_address


def test_fleet_gets_the_loki_hosts_private_address():
    assert loki_address(["mon1"], ["web1", "mon1"], HOSTVARS) == "10.0.0.40"


def test_alone_means_loopback():
    assert loki_address(["mon1"], ["mon1"], HOSTVARS) == "127.0.0.1"
    assert loki_address(["mon1"], [], HOSTVARS) == "127.0.0.1"


def test_no_loki_host_is_empty():
    assert loki_address([], ["web1"], HOSTVARS, port=3100) == ""


def test_first_loki_host_is_used():
    assert loki_address(["mon1", "mon6"], ["web1"], HOSTVARS) == "10.0.0.40"


def test_address_var_then_ansible_host_then_name():
    assert loki_address(["mon1"], ["web1"], HOSTVARS, address_var="other") == "203.0.113.40"
    assert loki_address(["bare"], ["web1"], HOSTVARS) == "bare"
    assert loki_address(["unknown"], ["web1"], HOSTVARS) == "unknown"


def test_port_and_port_var():
    assert loki_address(["mon1"], ["web1"], HOSTVARS, port=3100) == "10.0.0.40:3100"
    assert loki_address(["mon1"], ["mon1"], HOSTVARS, port=3100, port_var="loki_http_port") == "127.0.0.1:3100"
    assert loki_address(["mon6"], ["web1"], HOSTVARS, port=3100, port_var="loki_http_port") == "[fd00::40]:3101"


@pytest.mark.parametrize("hosts, shippers", [("mon1", ["web1"]), (["mon1"], "web1"), (None, [])])
def test_refuses_what_is_not_a_host_list(hosts, shippers):
    with pytest.raises(AnsibleFilterError, match="list of host names"):
        loki_address(hosts, shippers, HOSTVARS)


def test_refuses_a_port_that_is_no_number():
    with pytest.raises(AnsibleFilterError, match="port of mon1"):
        loki_address(["mon1"], ["web1"], {"mon1": {"loki_http_port": "http"}}, port=3100,
                     port_var="loki_http_port")
