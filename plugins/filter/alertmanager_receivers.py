# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn the alertmanager role's receivers into Alertmanager's receiver format."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: alertmanager_receivers
short_description: The alertmanager role's receivers in Alertmanager's configuration format
version_added: "0.1.0"
description:
  - Returns the C(receivers) list of C(alertmanager.yml), starting with the built-in C(blackhole)
    receiver (no notification), then one receiver per entry in the given order.
  - A C(slack) entry becomes a C(slack_configs) item whose webhook URL is read from
    C(<secrets_dir>/<name>.slack) (the secret is never written into the configuration);
    C(email) becomes C(email_configs) and C(webhook) becomes C(webhook_configs).
  - C(send_resolved) defaults to C(true) for each kind.
options:
  _input:
    description: The receivers (C(alertmanager_receivers)), each with a C(name) and any of
      C(slack), C(email), C(webhook). The entries are checked by the role's tasks/assert.yml.
    type: list
    elements: dict
    required: true
  secrets_dir:
    description: Directory holding the Slack webhook files.
    type: path
    required: true
"""

EXAMPLES = r"""
- name: Show the receivers
  ansible.builtin.debug:
    msg: >-
      {{ [{'name': 'ops', 'slack': {'channel': '#ops', 'webhook_url': 'https://hooks.slack.com/x'}}]
         | selfhost.platform.alertmanager_receivers('/etc/prometheus/alertmanager-secrets') }}
  # [{'name': 'blackhole'}, {'name': 'ops', 'slack_configs': [{'api_url_file':
  #   '/etc/prometheus/alertmanager-secrets/ops.slack', 'channel': '#ops', ...}]}]
"""

RETURN = r"""
_value:
  description: The receivers, C(blackhole) first.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common._collections_compat import Mapping

# Alertmanager's own Go templates, written verbatim into alertmanager.yml.
SLACK_TITLE = '{{ template "slack.default.title" . }}'
SLACK_TEXT = ("{{ range .Alerts }}{{ .Annotations.summary }}: {{ .Annotations.description }} "
              "{{ .Annotations.runbook_url }}\n{{ end }}")


def _slack(name, slack, secrets_dir):
    return {
        "api_url_file": "%s/%s.slack" % (secrets_dir, name),
        "channel": slack["channel"],
        "send_resolved": slack.get("send_resolved", True),
        "title": SLACK_TITLE,
        "text": SLACK_TEXT,
    }


def alertmanager_receivers(receivers, secrets_dir):
    """Alertmanager's receivers list for the role's ``receivers``."""
    if not isinstance(receivers, (list, tuple)):
        raise AnsibleFilterError("alertmanager_receivers: expects a list, got %r" % (receivers,))
    out = [{"name": "blackhole"}]
    for entry in receivers:
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise AnsibleFilterError("alertmanager_receivers: a receiver needs a name")
        receiver = {"name": entry["name"]}
        if "slack" in entry:
            receiver["slack_configs"] = [_slack(entry["name"], entry["slack"], secrets_dir)]
        if "email" in entry:
            receiver["email_configs"] = [{"to": entry["email"]["to"],
                                          "send_resolved": entry["email"].get("send_resolved", True)}]
        if "webhook" in entry:
            receiver["webhook_configs"] = [{"url": entry["webhook"]["url"],
                                            "send_resolved": entry["webhook"].get("send_resolved", True)}]
        out.append(receiver)
    return out


class FilterModule(object):
    """Alertmanager receivers filter."""

    def filters(self):
        return {"alertmanager_receivers": alertmanager_receivers}
