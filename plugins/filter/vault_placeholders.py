# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Name the settings that still hold a vault.yml.example placeholder, never their values."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: vault_placeholders
short_description: Where the settings still hold the vault example's "change-me" placeholders
version_added: "0.1.0"
description:
  - Given a mapping of variable names to their values, returns the place of every string that is
    still a placeholder of the inventories' C(vault.yml.example) files, and nothing of the value.
  - A string is a placeholder when it contains the words C(change) and C(me), in any case, joined
    by at most one character that is not a letter or digit and not part of a longer word, as in
    C(change-me-long-random), C(AKIA-CHANGE-ME), C(https://hooks.slack.com/services/CHANGE/ME/please),
    C(changeme). C(exchange-meadow) is not one.
  - Lists and mappings are searched through. A place is the variable name, then C(.key) for a
    mapping key and C([name]) for a list item that has a C(name) (C([index]) otherwise), e.g.
    C(restic_repositories[offsite].password).
  - Input checks print the result, so a failing C(assert) names the setting but not the secret.
options:
  _input:
    description: Variable name to value (a string, number, list or mapping).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Refuse the vault example's placeholders
  ansible.builtin.assert:
    that: __placeholders | length == 0
    fail_msg: >-
      {{ __placeholders | join(', ') }} still hold the "change-me" placeholder of vault.yml.example.
    quiet: true
  vars:
    __placeholders: >-
      {{ {'grafana_admin_password': grafana_admin_password} | selfhost.platform.vault_placeholders }}
  # ['grafana_admin_password'] with grafana_admin_password: "change-me-at-least-12-characters"
"""

RETURN = r"""
_value:
  description: The places holding a placeholder, in the input's order.
  type: list
  elements: str
"""

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common._collections_compat import Mapping
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import binary_type, string_types

PLACEHOLDER = re.compile(r"(?<![a-z0-9])change[^a-z0-9]?me(?![a-z0-9])", re.IGNORECASE)


def is_placeholder(value):
    """True when the string ``value`` holds the words change and me (see DOCUMENTATION)."""
    return PLACEHOLDER.search(value) is not None


def _walk(place, value, found):
    if isinstance(value, (string_types, binary_type)):
        if is_placeholder(to_text(value, errors="surrogate_or_strict")):
            found.append(place)
    elif isinstance(value, Mapping):
        for key in value:
            _walk("%s.%s" % (place, to_text(key)), value[key], found)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            name = item.get("name") if isinstance(item, Mapping) else None
            label = to_text(name) if isinstance(name, string_types) and name else to_text(index)
            _walk("%s[%s]" % (place, label), item, found)


def vault_placeholders(settings):
    """The places in ``settings`` (name -> value) whose strings are placeholders."""
    if not isinstance(settings, Mapping):
        raise AnsibleFilterError("vault_placeholders: expects a mapping of variable names to values")
    found = []
    for name in settings:
        _walk(to_text(name), settings[name], found)
    return found


class FilterModule(object):
    """Vault placeholders filter."""

    def filters(self):
        return {"vault_placeholders": vault_placeholders}
