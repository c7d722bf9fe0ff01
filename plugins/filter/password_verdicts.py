# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reduce user entries to a name and a password verdict, so checks never print a password."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: password_verdicts
short_description: Each user's name and whether its password is long enough, without the password
version_added: "0.1.0"
description:
  - For each user entry returns its C(name) (as a string, empty when missing) and C(password_ok).
  - C(password_ok) is C(true) when the entry's C(state) is C(absent) or its C(password), read as a
    string, has at least O(min_length) characters.
  - Input checks loop over the result, so a failing C(assert) shows the name, never the password.
options:
  _input:
    description: User entries with C(name), C(password) and optionally C(state).
    type: list
    elements: dict
    required: true
  min_length:
    description: Shortest password accepted.
    type: int
    required: true
"""

EXAMPLES = r"""
- name: Check that every present user has a password
  ansible.builtin.assert:
    that: item.password_ok
    fail_msg: "'{{ item.name }}' needs a password of at least 12 characters."
    quiet: true
  loop: "{{ postgresql_users | selfhost.platform.password_verdicts(12) }}"
  loop_control:
    label: "{{ item.name }}"
"""

RETURN = r"""
_value:
  description: One C(name) and C(password_ok) per entry, in order.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common._collections_compat import Mapping
from ansible.module_utils.common.text.converters import to_text


def password_verdicts(users, min_length):
    """[{'name': ..., 'password_ok': ...}] for ``users``."""
    if not isinstance(users, (list, tuple)):
        raise AnsibleFilterError("password_verdicts: expects a list of users")
    try:
        min_length = int(min_length)
    except (TypeError, ValueError):
        raise AnsibleFilterError("password_verdicts: min_length must be a number")
    out = []
    for user in users:
        if not isinstance(user, Mapping):
            raise AnsibleFilterError("password_verdicts: a user entry must be a dictionary")
        absent = user.get("state", "present") == "absent"
        password = user.get("password", "")
        password = "" if password is None else to_text(password)
        out.append({"name": to_text(user.get("name", "")),
                    "password_ok": absent or len(password) >= min_length})
    return out


class FilterModule(object):
    """Password verdicts filter."""

    def filters(self):
        return {"password_verdicts": password_verdicts}
