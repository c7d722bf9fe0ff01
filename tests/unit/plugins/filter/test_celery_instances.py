"""Unit tests of the selfhost.platform.celery_instances filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.celery_instances import (
    FilterModule,
    celery_instances,
)

DEFAULTS = {"queues": ["celery"], "instances": 1, "pool": "prefork"}


def test_registered():
    assert FilterModule().filters()["celery_instances"] is celery_instances


def test_one_instance_named_after_the_pool():
    assert celery_instances([{"name": "default"}], DEFAULTS) == [
        {"name": "default", "pool": {"name": "default", "queues": ["celery"], "instances": 1,
                                     "pool": "prefork"}}]


def test_instances_numbered_from_two_and_pool_keys_win():
    out = celery_instances([{"name": "io", "instances": "3", "pool": "threads"},
                            {"name": "cpu", "queues": ["heavy"]}], DEFAULTS)
    assert [i["name"] for i in out] == ["io", "io-2", "io-3", "cpu"]
    assert out[0]["pool"]["pool"] == "threads"
    assert out[3]["pool"]["queues"] == ["heavy"]


@pytest.mark.parametrize("instances", [0, "none"])
def test_zero_or_unreadable_count_gives_no_instance(instances):
    assert celery_instances([{"name": "off", "instances": instances}], DEFAULTS) == []


def test_no_pools_no_defaults():
    assert celery_instances([]) == []
    assert [i["name"] for i in celery_instances([{"name": "a"}])] == ["a"]


def test_defaults_not_modified():
    defaults = dict(DEFAULTS)
    celery_instances([{"name": "a", "instances": 2}], defaults)
    assert defaults == DEFAULTS


@pytest.mark.parametrize("pools", ["default", [{"queues": ["x"]}], ["default"]])
def test_refuses_bad_pools(pools):
    with pytest.raises(AnsibleFilterError):
        celery_instances(pools, DEFAULTS)
