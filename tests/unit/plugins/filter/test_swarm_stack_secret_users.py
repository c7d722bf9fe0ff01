"""Unit tests of the selfhost.platform.swarm_stack_secret_users filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.swarm_stack_secret_users import (
    FilterModule,
    swarm_stack_secret_users,
)

STACKS = [
    {"name": "listed", "secrets": ["db"], "definition": {"services": {"web": {}}}},
    {"name": "short", "definition": {"services": {"web": {"secrets": ["db"]}}}},
    {"name": "long", "definition": {"services": {"web": {"secrets": [{"source": "db", "target": "x"}]}}}},
    {"name": "top", "definition": {"secrets": {"db": {"external": True}}, "services": {"web": None}}},
    {"name": "other", "definition": {"services": {"web": {"secrets": ["api"]}}}},
    {"name": "gone", "state": "absent", "secrets": ["db"]},
    {"name": "tpl", "template": "tpl.yml.j2"},
]


def test_registered():
    assert FilterModule().filters()["swarm_stack_secret_users"] is swarm_stack_secret_users


def test_users():
    names = [s["name"] for s in swarm_stack_secret_users(STACKS, "db")]
    assert names == ["listed", "short", "long", "top"]
    assert [s["name"] for s in swarm_stack_secret_users(STACKS, "api")] == ["other"]
    assert swarm_stack_secret_users(STACKS, "none") == []


def test_rendered_templates():
    rendered = {"tpl": {"services": {"web": {"secrets": ["api"]}}}}
    assert [s["name"] for s in swarm_stack_secret_users(STACKS, "api", rendered)] == ["other", "tpl"]


def test_refuses_non_lists():
    with pytest.raises(AnsibleFilterError):
        swarm_stack_secret_users({"name": "x"}, "db")
