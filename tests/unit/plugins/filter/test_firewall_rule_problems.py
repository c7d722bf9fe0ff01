"""Unit tests of the selfhost.platform.firewall_rule_problems filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.firewall_rule_problems import (
    FilterModule,
    firewall_rule_problems,
)


def test_registered():
    assert FilterModule().filters()["firewall_rule_problems"] is firewall_rule_problems


@pytest.mark.parametrize(
    "item",
    [
        {"port": 22},
        {"port": "443"},
        {"port": 1},
        {"port": 65535},
        {"port": "6000:6010"},
        {"port": "6000:6010", "proto": "udp"},
        {"port": 53, "proto": "any"},
        {"port": 9100, "from": "10.0.0.0/8", "comment": "node-exporter from the VPN"},
        {"port": 9100, "from": "192.0.2.7"},
        {"port": 9100, "from": "fd00:30::/64"},
        {"port": 80, "comment": "x" * 200},
        {"port": 80, "comment": None},
    ],
)
def test_valid_items(item):
    assert firewall_rule_problems([item], "firewall_rules") == []


@pytest.mark.parametrize("port", [0, 70000, "65536", "9000:8000", "80:80", "80-90", "http", "", True, "1:2:3", " 80"])
def test_invalid_ports(port):
    assert firewall_rule_problems([{"port": port}], "firewall_rules") == [
        "firewall_rules: port %s is invalid. A port is an integer from 1 to 65535, or a range"
        ' "low:high" of such integers with low < high.' % ('"%s"' % port if isinstance(port, str) else str(port).lower())
    ]


def test_range_needs_tcp_or_udp():
    assert firewall_rule_problems([{"port": "6000:6010", "proto": "any"}], "firewall_allow") == [
        "firewall_allow: the port range 6000:6010 has proto any; UFW needs proto tcp or udp for a range."
    ]


@pytest.mark.parametrize("source", ["10.0.0.0/33", "10.0.0.1/8", "example.org", "", "fd00::1/64"])
def test_invalid_sources(source):
    assert firewall_rule_problems([{"port": 443, "from": source}], "firewall_rules") == [
        'firewall_rules: from "%s" (port 443) is not "any", an IP address or a network in CIDR form'
        " (network address, e.g. 10.0.0.0/8)." % source
    ]


@pytest.mark.parametrize("comment", ["it's", 'say "hi"', "back\\slash", "two\nlines", "x" * 201])
def test_invalid_comments(comment):
    assert firewall_rule_problems([{"port": 80, "comment": comment}], "firewall_docker_allowed_ports") == [
        "firewall_docker_allowed_ports: the comment of port 80 must be at most 200 characters without"
        " quotes, backslashes or newlines (UFW stores it in its rules file)."
    ]


def test_every_problem_in_list_order():
    problems = firewall_rule_problems(
        [{"port": 70000}, {"port": 80}, {"port": "1:2", "proto": "any", "from": "nowhere"}], "firewall_rules"
    )
    assert [problem.split(" ")[1:3] for problem in problems] == [
        ["port", "70000"],
        ["the", "port"],
        ["from", '"nowhere"'],
    ]


def test_item_without_port():
    assert firewall_rule_problems([{"proto": "tcp"}, "22"], "firewall_allow") == [
        'firewall_allow: {"proto": "tcp"} is not a rule item (a dictionary with at least a port).',
        'firewall_allow: "22" is not a rule item (a dictionary with at least a port).',
    ]


@pytest.mark.parametrize("items", ["22", {"port": 22}, None])
def test_refuses_a_non_list(items):
    with pytest.raises(AnsibleFilterError):
        firewall_rule_problems(items, "firewall_rules")
