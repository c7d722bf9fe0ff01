# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn firewall rule items into the community.general.ufw calls that apply them, in order."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: firewall_ufw_calls
short_description: The community.general.ufw arguments that apply a selfhost.platform.firewall rule list
version_added: "0.1.0"
description:
  - Takes rule items in the shape of C(firewall_rules) (C(port), C(proto), C(from), C(comment), C(rule),
    C(state); missing keys take the role's defaults) and returns one dictionary of
    M(community.general.ufw) arguments per call, removals first, then additions in list order.
  - An absent C(allow) or C(limit) rule becomes two removals, one per form, so the port is closed
    whichever of the two opened it.
  - C(proto=any) leaves C(proto) out (UFW's default); the comment is passed only to a present rule that has one.
options:
  _input:
    description: The rule items.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Apply the rules
  community.general.ufw:
    rule: "{{ item['rule'] }}"
    to_port: "{{ item['to_port'] }}"
    proto: "{{ item['proto'] | default(omit) }}"
    from_ip: "{{ item['from_ip'] }}"
    comment: "{{ item['comment'] | default(omit) }}"
    delete: "{{ item['delete'] }}"
  loop: "{{ firewall_rules | selfhost.platform.firewall_ufw_calls }}"
  loop_control:
    label: "{{ item['label'] }}"
"""

RETURN = r"""
_value:
  description:
    - One dictionary per call with C(rule), C(to_port) (a string), C(from_ip), C(delete), C(label)
      (for loop_control) and, where they apply, C(proto) and C(comment).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common._collections_compat import Mapping, Sequence
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import string_types

DEFAULTS = {"proto": "tcp", "from": "any", "comment": "", "rule": "allow", "state": "present"}


def _call(item, rule, delete):
    call = {"rule": rule, "to_port": to_text(item["port"]), "from_ip": to_text(item["from"]), "delete": delete}
    if item["proto"] != "any":
        call["proto"] = item["proto"]
    comment = to_text(item["comment"] or "")
    if not delete and comment:
        call["comment"] = comment
    call["label"] = "%s %s %s/%s from %s%s" % (
        "delete" if delete else "add", rule, call["to_port"], item["proto"], call["from_ip"],
        " (%s)" % comment if comment and not delete else "")
    return call


def firewall_ufw_calls(items):
    """community.general.ufw arguments for the rule items: removals first, then additions."""
    if isinstance(items, (string_types, Mapping)) or not isinstance(items, Sequence):
        raise AnsibleFilterError("firewall_ufw_calls: expects a list of rule items, got %r" % (items,))
    complete = []
    for item in items:
        if not isinstance(item, Mapping) or "port" not in item:
            raise AnsibleFilterError("firewall_ufw_calls: %r is not a rule item (a dictionary with a port)" % (item,))
        complete.append(dict(DEFAULTS, **item))
    absent = [item for item in complete if item["state"] == "absent"]
    opening = [item for item in absent if item["rule"] in ("allow", "limit")]
    return ([_call(item, "allow", True) for item in opening]
            + [_call(item, "limit", True) for item in opening]
            + [_call(item, item["rule"], True) for item in absent if item["rule"] not in ("allow", "limit")]
            + [_call(item, item["rule"], False) for item in complete if item["state"] == "present"])


class FilterModule(object):
    """selfhost.platform firewall filters."""

    def filters(self):
        return {"firewall_ufw_calls": firewall_ufw_calls}
