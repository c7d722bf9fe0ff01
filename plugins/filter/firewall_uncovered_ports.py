# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which SSH ports a rule list leaves closed (the firewall role's lock-out check)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: firewall_uncovered_ports
short_description: The SSH ports that no allow or limit rule of a firewall rule list opens
version_added: "0.1.0"
description:
  - Used by the firewall role to refuse C(firewall_ssh_allow=false) when enabling UFW would cut SSH.
  - O(ssh_port) needs a present C(allow) or C(limit) rule with proto tcp or any whose port
    (or range) holds it, from any source.
  - Each of O(session_ports) needs such a rule from C(any) or from a network holding
    O(session_client), the client of the SSH session in use; with no known client any source counts.
  - Invalid items (a bad port or source) open nothing.
options:
  _input:
    description: The rule items in the shape of C(firewall_rules); missing keys take the role's defaults.
    type: list
    elements: dict
    required: true
  ssh_port:
    description: The SSH port that must stay reachable.
    type: int
    required: true
  session_ports:
    description: The server ports of the SSH session in use.
    type: list
    elements: int
    default: []
  session_client:
    description: The client address of the SSH session in use, or an empty string when unknown.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Refuse a lock-out
  ansible.builtin.assert:
    that: __uncovered | length == 0
  vars:
    __uncovered: "{{ firewall_rules | selfhost.platform.firewall_uncovered_ports(22, [2222], '192.0.2.10') }}"
"""

RETURN = r"""
_value:
  description: The ports left closed, each once, in the order O(ssh_port), O(session_ports).
  type: list
  elements: int
"""

import ipaddress

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common._collections_compat import Mapping, Sequence
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import string_types


def _bounds(port):
    try:
        bounds = [int(bound) for bound in to_text(port).split(":")]
    except ValueError:
        return None
    return (bounds[0], bounds[-1]) if len(bounds) in (1, 2) else None


def _port(value):
    try:
        return int(to_text(value))
    except ValueError:
        return None


def _from_client(source, client):
    if source == "any" or not client:
        return True
    try:
        return ipaddress.ip_address(to_text(client)) in ipaddress.ip_network(to_text(source))
    except (ValueError, TypeError):
        return False


def _opens(item, port, client):
    if not isinstance(item, Mapping) or "port" not in item:
        return False
    if item.get("state", "present") != "present" or item.get("rule", "allow") not in ("allow", "limit"):
        return False
    if item.get("proto", "tcp") not in ("tcp", "any"):
        return False
    bounds = _bounds(item["port"])
    return bounds is not None and bounds[0] <= port <= bounds[1] and _from_client(item.get("from", "any"), client)


def firewall_uncovered_ports(items, ssh_port, session_ports=None, session_client=""):
    """The ports of ssh_port and session_ports that no rule of items opens to the one who needs it."""
    if isinstance(items, (string_types, Mapping)) or not isinstance(items, Sequence):
        raise AnsibleFilterError("firewall_uncovered_ports: expects a list of rule items, got %r" % (items,))
    needs = [(_port(ssh_port), "")] + [(_port(port), session_client or "") for port in session_ports or []]
    uncovered = []
    for port, client in needs:
        # A port that is not an integer is reported by the role's own port check.
        if port is None or port in uncovered:
            continue
        if not any(_opens(item, port, client) for item in items):
            uncovered.append(port)
    return uncovered


class FilterModule(object):
    """selfhost.platform firewall filters."""

    def filters(self):
        return {"firewall_uncovered_ports": firewall_uncovered_ports}
