"""Unit tests of the selfhost.platform.vault_placeholders filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.vault_placeholders import (
    FilterModule,
    is_placeholder,
    vault_placeholders,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "inventories", "*", "group_vars", "*", "vault.yml.example")))


def test_registered():
    assert FilterModule().filters()["vault_placeholders"] is vault_placeholders


def test_the_examples_are_found():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_value_of_every_vault_example_is_a_placeholder(path):
    with open(path) as handle:
        values = yaml.safe_load(handle)
    assert values and vault_placeholders(values) == list(values)


@pytest.mark.parametrize("value", [
    "change-me", "change-me-at-least-12-characters", "AKIA-CHANGE-ME", "Change_Me", "changeme",
    "change me", "https://hooks.slack.com/services/CHANGE/ME/please",
    "redis://:change-me-at-least-16-characters@10.0.0.30:6379/0",
])
def test_placeholders(value):
    assert is_placeholder(value)


@pytest.mark.parametrize("value", [
    "", "x" * 32, "exchange-meadow-battery", "change--me", "changemeaning", "please-change-it",
    "Zq3v9KchangeMeT0",  # inside a longer word: random strings are not refused by chance
])
def test_real_values(value):
    assert not is_placeholder(value)


def test_places_name_the_setting_never_the_value():
    settings = {
        "grafana_admin_password": "change-me-at-least-12-characters",
        "celery_flower_password": "a-real-secret-of-enough-length",
        "restic_repositories": [{"name": "offsite", "password": "change-me-long-random",
                                 "aws_access_key_id": "AKIA-CHANGE-ME", "aws_secret_access_key": "s3cr3t-value"}],
        "alertmanager_receivers": [{"name": "team-slack", "slack": {
            "channel": "#alerts", "webhook_url": "https://hooks.slack.com/services/CHANGE/ME/please"}}],
        "celery_environment": {"DATABASE_URL": "postgresql://app:change-me@db:5432/app", "DEBUG": "0"},
        "redis_acl_users": [{"password": "change-me"}],
        "postgresql_port": 5432,
        "celery_beat_enabled": None,
    }
    out = vault_placeholders(settings)
    assert out == [
        "grafana_admin_password",
        "restic_repositories[offsite].password",
        "restic_repositories[offsite].aws_access_key_id",
        "alertmanager_receivers[team-slack].slack.webhook_url",
        "celery_environment.DATABASE_URL",
        "redis_acl_users[0].password",
    ]
    assert "change" not in " ".join(out).lower()


def test_bytes_and_tuples():
    assert vault_placeholders({"a": (b"change-me",), "b": b"fine"}) == ["a[0]"]


@pytest.mark.parametrize("bad", [["grafana_admin_password"], "change-me", None])
def test_not_a_mapping(bad):
    with pytest.raises(AnsibleFilterError):
        vault_placeholders(bad)
