"""Unit tests of the selfhost.platform.firewall_uncovered_ports filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.firewall_uncovered_ports import (
    FilterModule,
    firewall_uncovered_ports,
)


def test_registered():
    assert FilterModule().filters()["firewall_uncovered_ports"] is firewall_uncovered_ports


def test_no_rules_leave_the_ssh_port_closed():
    assert firewall_uncovered_ports([], 22) == [22]


@pytest.mark.parametrize(
    "rule",
    [
        {"port": 22},
        {"port": "22", "rule": "limit"},
        {"port": "20:30"},
        {"port": 22, "proto": "any"},
        {"port": 22, "from": "10.0.0.0/8"},
    ],
)
def test_rules_that_open_the_ssh_port(rule):
    assert firewall_uncovered_ports([rule], 22) == []


@pytest.mark.parametrize(
    "rule",
    [
        {"port": 22, "state": "absent"},
        {"port": 22, "rule": "deny"},
        {"port": 22, "rule": "reject"},
        {"port": 22, "proto": "udp"},
        {"port": "23:30"},
        {"port": 70000},
        {"port": "http"},
        {"proto": "tcp"},
    ],
)
def test_rules_that_do_not(rule):
    assert firewall_uncovered_ports([rule], 22) == [22]


def test_session_port_needs_a_rule_from_the_client():
    rules = [{"port": 22}, {"port": 2222, "from": "10.0.0.0/8"}]
    assert firewall_uncovered_ports(rules, 22, [2222], "192.0.2.10") == [2222]
    assert firewall_uncovered_ports(rules, 22, [2222], "10.1.2.3") == []
    assert firewall_uncovered_ports(rules, 22, [2222], "") == []


def test_session_on_the_ssh_port_from_another_network():
    rules = [{"port": 22, "from": "10.0.0.0/8"}]
    assert firewall_uncovered_ports(rules, 22, [22], "192.0.2.10") == [22]


def test_bad_source_or_client_opens_nothing():
    assert firewall_uncovered_ports([{"port": 2222, "from": "10.0.0.0/33"}], 2222, [2222], "10.0.0.1") == [2222]
    assert firewall_uncovered_ports([{"port": 2222, "from": "10.0.0.0/8"}], 22, [2222], "not-an-ip") == [22, 2222]


def test_each_port_once_and_ports_as_strings():
    assert firewall_uncovered_ports([], "22", ["2222", 22, 2222], "192.0.2.10") == [22, 2222]


def test_an_ssh_port_that_is_no_integer_is_left_to_the_port_check():
    assert firewall_uncovered_ports([], "ssh", [2222]) == [2222]


def test_refuses_a_non_list():
    with pytest.raises(AnsibleFilterError):
        firewall_uncovered_ports({"port": 22}, 22)
