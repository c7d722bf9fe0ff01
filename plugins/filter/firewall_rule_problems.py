# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""List what is wrong with the items of a firewall rule list (one message per problem)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: firewall_rule_problems
short_description: List the problems of the items of a selfhost.platform.firewall rule list
version_added: "0.1.0"
description:
  - Checks what the argument spec of the firewall role cannot check in a list of rule items
    (C(firewall_rules), C(firewall_allowed_tcp_ports) as items, C(firewall_docker_allowed_ports),
    C(firewall_allow)) and returns one message per problem, each naming the variable and the value.
  - C(port) must be an integer from 1 to 65535 or a range C("low:high") of such integers with low < high;
    a range needs C(proto) tcp or udp.
  - C(from) must be C(any), an IP address or a network in CIDR form (the network address,
    C(10.0.0.0/8), not C(10.0.0.1/8)).
  - C(comment) must be at most 200 characters without quotes, backslashes or line breaks
    (UFW stores it in its rules file).
  - Missing keys take the role's defaults (C(proto=tcp), C(from=any), no comment).
options:
  _input:
    description: The rule items (dictionaries with at least C(port)).
    type: list
    elements: dict
    required: true
  name:
    description: The variable's name, put at the start of each message.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Check the rule list
  ansible.builtin.assert:
    that: __problems | length == 0
    fail_msg: "{{ __problems | join(' ') }}"
    quiet: true
  vars:
    __problems: "{{ firewall_rules | selfhost.platform.firewall_rule_problems('firewall_rules') }}"
"""

RETURN = r"""
_value:
  description: One message per problem, in list order; empty when every item is valid.
  type: list
  elements: str
"""

import ipaddress
import json
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common._collections_compat import Mapping, Sequence
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import string_types

PORT = re.compile(r"^[0-9]{1,5}(:[0-9]{1,5})?$")
COMMENT = re.compile(r"^[^'\"\\\r\n]{0,200}\Z")


def _json(value):
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return to_text(value)


def _valid_port(port):
    text = to_text(port)
    if isinstance(port, bool) or not PORT.match(text):
        return False
    bounds = [int(bound) for bound in text.split(":")]
    return bounds[0] >= 1 and bounds[-1] <= 65535 and (len(bounds) == 1 or bounds[0] < bounds[1])


def _valid_source(source):
    if source == "any":
        return True
    try:
        ipaddress.ip_network(to_text(source))
        return True
    except ValueError:
        return False


def firewall_rule_problems(items, name):
    """One message per problem found in the rule items of the variable called name."""
    if isinstance(items, (string_types, Mapping)) or not isinstance(items, Sequence):
        raise AnsibleFilterError("firewall_rule_problems: %s must be a list of rule items, got %r" % (name, items))
    problems = []
    for item in items:
        if not isinstance(item, Mapping) or "port" not in item:
            problems.append("%s: %s is not a rule item (a dictionary with at least a port)." % (name, _json(item)))
            continue
        port = item["port"]
        proto = item.get("proto", "tcp")
        source = item.get("from", "any")
        comment = item.get("comment", "")
        if not _valid_port(port):
            problems.append("%s: port %s is invalid. A port is an integer from 1 to 65535, or a range"
                            ' "low:high" of such integers with low < high.' % (name, _json(port)))
        if ":" in to_text(port) and proto not in ("tcp", "udp"):
            problems.append("%s: the port range %s has proto %s; UFW needs proto tcp or udp for a range."
                            % (name, to_text(port), to_text(proto)))
        if not _valid_source(source):
            problems.append('%s: from %s (port %s) is not "any", an IP address or a network in CIDR form'
                            " (network address, e.g. 10.0.0.0/8)." % (name, _json(source), to_text(port)))
        if not COMMENT.match(to_text(comment if comment is not None else "")):
            problems.append("%s: the comment of port %s must be at most 200 characters without quotes,"
                            " backslashes or newlines (UFW stores it in its rules file)." % (name, to_text(port)))
    return problems


class FilterModule(object):
    """selfhost.platform firewall filters."""

    def filters(self):
        return {"firewall_rule_problems": firewall_rule_problems}
