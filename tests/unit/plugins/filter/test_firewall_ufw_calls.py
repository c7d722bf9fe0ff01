"""Unit tests of the selfhost.platform.firewall_ufw_calls filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.firewall_ufw_calls import FilterModule, firewall_ufw_calls


def test_registered():
    assert FilterModule().filters()["firewall_ufw_calls"] is firewall_ufw_calls


def test_defaults_fill_a_bare_port():
    assert firewall_ufw_calls([{"port": 8080}]) == [
        {"rule": "allow", "to_port": "8080", "proto": "tcp", "from_ip": "any", "delete": False,
         "label": "add allow 8080/tcp from any"},
    ]


def test_comment_source_and_any_proto():
    assert firewall_ufw_calls([{"port": "6000:6010", "proto": "udp", "from": "10.0.0.0/8", "comment": "vpn"},
                               {"port": 53, "proto": "any", "rule": "limit"}]) == [
        {"rule": "allow", "to_port": "6000:6010", "proto": "udp", "from_ip": "10.0.0.0/8", "delete": False,
         "comment": "vpn", "label": "add allow 6000:6010/udp from 10.0.0.0/8 (vpn)"},
        {"rule": "limit", "to_port": "53", "from_ip": "any", "delete": False, "label": "add limit 53/any from any"},
    ]


def test_removals_first_and_both_forms_of_an_opening():
    calls = firewall_ufw_calls([
        {"port": 80},
        {"port": 8086, "state": "absent", "comment": "ignored"},
        {"port": 81, "rule": "deny", "state": "absent"},
        {"port": 8087, "rule": "limit", "state": "absent"},
        {"port": 82, "rule": "reject"},
    ])
    assert [call["label"] for call in calls] == [
        "delete allow 8086/tcp from any",
        "delete allow 8087/tcp from any",
        "delete limit 8086/tcp from any",
        "delete limit 8087/tcp from any",
        "delete deny 81/tcp from any",
        "add allow 80/tcp from any",
        "add reject 82/tcp from any",
    ]
    assert all("comment" not in call for call in calls if call["delete"])


def test_empty_comment_is_left_out():
    assert "comment" not in firewall_ufw_calls([{"port": 80, "comment": ""}])[0]
    assert "comment" not in firewall_ufw_calls([{"port": 80, "comment": None}])[0]


@pytest.mark.parametrize("items", ["80", {"port": 80}, [{"proto": "tcp"}], [80]])
def test_refuses_what_is_not_a_rule_list(items):
    with pytest.raises(AnsibleFilterError):
        firewall_ufw_calls(items)
