# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Prometheus/Loki duration ("744h", "31d", "1h30m") in seconds, for the roles' input checks."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: duration_seconds
short_description: The number of seconds of a Prometheus-style duration
version_added: "0.1.0"
description:
  - Reads a duration the way Prometheus and Loki write them (C(744h), C(31d), C(2w), C(1h30m),
    C(500ms)), that is one or more C(<integer><unit>) parts, units C(y) (365 days), C(w), C(d), C(h),
    C(m), C(s), C(ms), each unit at most once and from the largest to the smallest.
  - Returns the number of seconds (a float when milliseconds make it fractional), so that an
    C(assert) can refuse a value that is valid YAML but wrong (a retention of C(0s) or shorter than a day).
  - Anything else returns O(default) (V(-1) unless given), which no sensible check accepts.
options:
  _input:
    description: The duration.
    type: str
    required: true
  default:
    description: What a value that is not a duration gives.
    type: raw
    default: -1
"""

EXAMPLES = r"""
- name: Refuse a retention shorter than one day
  ansible.builtin.assert:
    that: loki_retention_period | selfhost.platform.duration_seconds >= 86400
"""

RETURN = r"""
_value:
  description: Seconds, or O(default) for a value that is not a duration.
  type: raw
"""

import re

from ansible.module_utils.six import string_types

_UNITS = [("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1), ("ms", 0.001)]
_PATTERN = re.compile("^" + "".join(r"(?:(?P<%s>[0-9]+)%s)?" % (unit, unit) for unit, _seconds in _UNITS) + "$")


def duration_seconds(value, default=-1):
    """Seconds of ``value`` ('744h', '1h30m'), or ``default`` when it is not a duration."""
    if not isinstance(value, string_types) or not value:
        return default
    match = _PATTERN.match(value)
    if not match:
        return default
    total = 0
    for unit, seconds in _UNITS:
        if match.group(unit) is not None:
            total += int(match.group(unit)) * seconds
    if isinstance(total, float) and total.is_integer():
        total = int(total)
    return total


class FilterModule(object):
    """Duration filter."""

    def filters(self):
        return {"duration_seconds": duration_seconds}
