# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One line listing the sysctl keys the kernel refused, from sysctl_profile's result."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: sysctl_skip_report
short_description: The keys selfhost.platform.sysctl_profile could not apply, as one readable line
version_added: "0.1.0"
description:
  - "Formats each entry of the module's C(skipped_keys) as C(<key>=<wanted> (live <current>: <reason>)),
    joined with C(; )."
options:
  _input:
    description: The C(skipped_keys) list returned by selfhost.platform.sysctl_profile.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Report the kernel settings the kernel refused
  ansible.builtin.debug:
    msg: "Not applied: {{ result['skipped_keys'] | selfhost.platform.sysctl_skip_report }}"
  when: result['skipped_keys'] | default([]) | length > 0
  # Not applied: vm.swappiness=10 (live 60: read-only file system)
"""

RETURN = r"""
_value:
  description: The report, empty when no key was skipped.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common._collections_compat import Mapping
from ansible.module_utils.common.text.converters import to_text


def sysctl_skip_report(skipped):
    """``key=wanted (live current: reason)`` per skipped key, joined with ``; ``."""
    if not isinstance(skipped, (list, tuple)):
        raise AnsibleFilterError("sysctl_skip_report: expects the skipped_keys list")
    parts = []
    for skip in skipped:
        if not isinstance(skip, Mapping):
            raise AnsibleFilterError("sysctl_skip_report: a skipped key must be a dictionary")
        parts.append("%s=%s (live %s: %s)" % tuple(
            to_text(skip.get(field)) for field in ("key", "wanted", "current", "reason")))
    return "; ".join(parts)


class FilterModule(object):
    """sysctl skip report filter."""

    def filters(self):
        return {"sysctl_skip_report": sysctl_skip_report}
