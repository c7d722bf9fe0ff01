"""Unit tests of the selfhost.platform.alertmanager_routes filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.alertmanager_routes import (
    FilterModule,
    alertmanager_routes,
)


def test_registered():
    assert FilterModule().filters()["alertmanager_routes"] is alertmanager_routes


def test_defaults():
    assert alertmanager_routes([{"receiver": "ops"}]) == [
        {"receiver": "ops", "matchers": [], "continue": False}]


def test_severities_appended_after_matchers_and_continue_kept():
    routes = [{"receiver": "ops", "matchers": ['team="db"'], "severities": ["critical", "page"],
               "continue": True}]
    assert alertmanager_routes(routes) == [
        {"receiver": "ops", "matchers": ['team="db"', 'severity=~"critical|page"'], "continue": True}]


def test_input_not_modified():
    routes = [{"receiver": "ops", "matchers": ["a=\"b\""], "severities": ["warning"]}]
    alertmanager_routes(routes)
    assert routes[0]["matchers"] == ["a=\"b\""]


def test_empty_severities_add_nothing():
    assert alertmanager_routes([{"receiver": "ops", "severities": []}])[0]["matchers"] == []


@pytest.mark.parametrize("routes", [{"receiver": "x"}, [{"matchers": []}], ["ops"]])
def test_refuses_bad_input(routes):
    with pytest.raises(AnsibleFilterError):
        alertmanager_routes(routes)
