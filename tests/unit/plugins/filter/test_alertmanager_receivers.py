"""Unit tests of the selfhost.platform.alertmanager_receivers filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.alertmanager_receivers import (
    SLACK_TEXT,
    SLACK_TITLE,
    FilterModule,
    alertmanager_receivers,
)

SECRETS = "/etc/prometheus/alertmanager-secrets"


def test_registered():
    assert FilterModule().filters()["alertmanager_receivers"] is alertmanager_receivers


def test_blackhole_alone_without_receivers():
    assert alertmanager_receivers([], SECRETS) == [{"name": "blackhole"}]


def test_slack_webhook_is_referenced_by_file_never_inlined():
    out = alertmanager_receivers([{"name": "ops", "slack": {
        "channel": "#ops", "webhook_url": "https://hooks.slack.com/secret"}}], SECRETS)
    assert out[1] == {"name": "ops", "slack_configs": [{
        "api_url_file": SECRETS + "/ops.slack", "channel": "#ops", "send_resolved": True,
        "title": SLACK_TITLE, "text": SLACK_TEXT}]}
    assert "hooks.slack.com" not in repr(out)


def test_slack_templates_are_alertmanager_go_templates():
    assert SLACK_TITLE == '{{ template "slack.default.title" . }}'
    assert SLACK_TEXT.endswith("{{ .Annotations.runbook_url }}\n{{ end }}")


def test_email_and_webhook_with_send_resolved():
    out = alertmanager_receivers([
        {"name": "mail", "email": {"to": "ops@example.org"}},
        {"name": "hook", "webhook": {"url": "http://10.0.0.9/alert", "send_resolved": False}},
        {"name": "both", "email": {"to": "a@example.org", "send_resolved": False},
         "webhook": {"url": "https://x.example.org/"}},
    ], SECRETS)
    assert out[1] == {"name": "mail", "email_configs": [{"to": "ops@example.org", "send_resolved": True}]}
    assert out[2] == {"name": "hook", "webhook_configs": [{"url": "http://10.0.0.9/alert",
                                                           "send_resolved": False}]}
    assert out[3] == {"name": "both",
                      "email_configs": [{"to": "a@example.org", "send_resolved": False}],
                      "webhook_configs": [{"url": "https://x.example.org/", "send_resolved": True}]}


@pytest.mark.parametrize("receivers", [{"name": "x"}, [{"slack": {}}], ["ops"]])
def test_refuses_bad_input(receivers):
    with pytest.raises(AnsibleFilterError):
        alertmanager_receivers(receivers, SECRETS)
