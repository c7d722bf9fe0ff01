# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compare the jails fail2ban reports with the jails written to its configuration."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: fail2ban_jails
short_description: Which enabled jails a running fail2ban has not loaded
version_added: "0.1.0"
description:
  - Reads the C(Jail list:) line of C(fail2ban-client status) and compares it with the jails
    written to fail2ban's configuration.
  - A jail is expected when its C(settings.enabled) is what fail2ban reads as true (C(true),
    C(yes), C(on) or C(1), in any case); a jail without C(enabled) is not expected (the packaged
    C([DEFAULT]) says C(enabled = false)).
  - Used by the fail2ban role's jail check, which polls fail2ban until nothing is missing.
options:
  _input:
    description:
      - Standard output of C(fail2ban-client status).
      - An empty string (fail2ban did not answer) reads as no jail loaded.
    type: str
    required: true
  jails:
    description: The jails written to the configuration, each a dictionary with C(name) and C(settings).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Ask fail2ban until it runs every enabled jail
  ansible.builtin.command: fail2ban-client status
  register: status
  changed_when: false
  retries: 20
  delay: 1
  until: >-
    (status.stdout | selfhost.platform.fail2ban_jails([
      {'name': 'sshd', 'settings': {'enabled': true}},
      {'name': 'postfix', 'settings': {'enabled': 'false'}}]))['missing'] == []
"""

RETURN = r"""
_value:
  description: The comparison.
  type: dict
  contains:
    expected:
      description: Names of the enabled jails, in the order given.
      type: list
      elements: str
    loaded:
      description: Names of the jails fail2ban reports, in its order.
      type: list
      elements: str
    missing:
      description: Expected jails fail2ban does not report, in the order given.
      type: list
      elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common._collections_compat import Mapping, Sequence
from ansible.module_utils.six import string_types

# What fail2ban's configuration reader (Python's ConfigParser.getboolean) takes for true.
TRUE_WORDS = frozenset(["1", "yes", "true", "on"])


def _enabled(value):
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in TRUE_WORDS


def _loaded(status):
    for line in status.splitlines():
        if "Jail list:" in line:
            names = line.split("Jail list:", 1)[1]
            return [name.strip() for name in names.split(",") if name.strip()]
    return []


def fail2ban_jails(status, jails):
    """Expected, loaded and missing jails (see DOCUMENTATION)."""
    if status is None:
        status = ""
    if not isinstance(status, string_types):
        raise AnsibleFilterError("fail2ban_jails: expects the output of fail2ban-client status (a string), got %r" % (status,))
    if isinstance(jails, string_types) or not isinstance(jails, Sequence):
        raise AnsibleFilterError("fail2ban_jails: jails must be a list of {name, settings}, got %r" % (jails,))
    expected = []
    for jail in jails:
        if not isinstance(jail, Mapping) or "name" not in jail or not isinstance(jail.get("settings"), Mapping):
            raise AnsibleFilterError("fail2ban_jails: each jail needs a name and a settings dictionary, got %r" % (jail,))
        if "enabled" in jail["settings"] and _enabled(jail["settings"]["enabled"]):
            expected.append(str(jail["name"]))
    loaded = _loaded(status)
    return {
        "expected": expected,
        "loaded": loaded,
        "missing": [name for name in expected if name not in loaded],
    }


class FilterModule(object):
    """selfhost.platform fail2ban filters."""

    def filters(self):
        return {"fail2ban_jails": fail2ban_jails}
