"""Unit tests of the selfhost.platform.exporter_reach filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.exporter_reach import (
    FilterModule,
    exporter_reach,
)


def test_loopback_names_the_monitoring_hosts_that_cannot_scrape():
    text = exporter_reach("node_exporter", "127.0.0.1:9100", ["10.0.0.5", "10.0.0.6"], on_loopback=True)
    assert text == ("node_exporter listens on 127.0.0.1:9100: only this host can reach it. "
                    "The monitoring hosts 10.0.0.5, 10.0.0.6 cannot scrape it (node_exporter_listen_host).")


def test_loopback_without_monitoring_hosts_names_the_variable_and_the_group():
    text = exporter_reach("redis_exporter", "127.0.0.1:9121", [], on_loopback=True, monitoring_group="prom")
    assert text.endswith("No monitoring host is known (redis_exporter_allow_from is empty and group prom has no host).")


def test_an_address_with_ufw_says_ufw_admits_only_the_sources():
    text = exporter_reach("nginx_exporter", "10.0.0.7:9113", ["10.0.0.5"], listen_host="10.0.0.7")
    assert text.startswith("nginx_exporter listens on 10.0.0.7:9113 for 10.0.0.5. UFW admits only those")
    assert "every address" not in text


def test_every_address_is_said_when_the_listen_host_is_empty():
    text = exporter_reach("node_exporter", "0.0.0.0:9100", [], listen_host="")
    assert text.startswith("node_exporter listens on 0.0.0.0:9100 (every address of this host) for no monitoring host.")


def test_firewall_left_alone_says_everyone_who_reaches_the_address_can_connect():
    text = exporter_reach("postgres_exporter", "10.0.0.8:9187", ["10.0.0.5"], listen_host="10.0.0.8",
                          manage_firewall=False)
    assert text == ("postgres_exporter listens on 10.0.0.8:9187 for 10.0.0.5. postgres_exporter_manage_firewall "
                    "is false: every host that reaches this address can connect.")


@pytest.mark.parametrize("name, sources", [("", []), (None, []), ("node_exporter", "10.0.0.5")])
def test_bad_arguments_are_refused(name, sources):
    with pytest.raises(AnsibleFilterError):
        exporter_reach(name, "127.0.0.1:9100", sources)


def test_registered_name():
    assert FilterModule().filters()["exporter_reach"] is exporter_reach
