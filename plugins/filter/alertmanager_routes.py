# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn the alertmanager role's routes into Alertmanager's route format."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: alertmanager_routes
short_description: The alertmanager role's routes as Alertmanager child routes
version_added: "0.1.0"
description:
  - Returns one child route per entry, in the given order, with C(receiver), C(matchers) and
    C(continue) (default C(false)).
  - A C(severities) list adds the matcher C(severity=~"<s1>|<s2>...") after the entry's own
    C(matchers).
options:
  _input:
    description: The routes (C(alertmanager_routes)), each with a C(receiver) and optionally
      C(matchers), C(severities) and C(continue).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Show the routes
  ansible.builtin.debug:
    msg: "{{ [{'receiver': 'ops', 'severities': ['critical', 'page']}] | selfhost.platform.alertmanager_routes }}"
  # [{'receiver': 'ops', 'matchers': ['severity=~"critical|page"'], 'continue': False}]
"""

RETURN = r"""
_value:
  description: The child routes.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common._collections_compat import Mapping


def alertmanager_routes(routes):
    """Alertmanager's child routes for the role's ``routes``."""
    if not isinstance(routes, (list, tuple)):
        raise AnsibleFilterError("alertmanager_routes: expects a list, got %r" % (routes,))
    out = []
    for entry in routes:
        if not isinstance(entry, Mapping) or "receiver" not in entry:
            raise AnsibleFilterError("alertmanager_routes: a route needs a receiver, got %r" % (entry,))
        matchers = list(entry.get("matchers", []))
        severities = entry.get("severities", [])
        if severities:
            matchers.append('severity=~"%s"' % "|".join(severities))
        out.append({"receiver": entry["receiver"], "matchers": matchers,
                    "continue": entry.get("continue", False)})
    return out


class FilterModule(object):
    """Alertmanager routes filter."""

    def filters(self):
        return {"alertmanager_routes": alertmanager_routes}
