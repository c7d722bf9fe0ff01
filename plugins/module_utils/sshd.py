# -*- coding: utf-8 -*-
# Copyright (c) selfhost.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Parse ``sshd -T`` output and compare it with expected values."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

# Keywords that sshd -T prints once per value (one line each). They are always
# returned as lists, even when only one value is set.
MULTI_VALUE_KEYS = frozenset((
    'acceptenv',
    'allowgroups',
    'allowusers',
    'denygroups',
    'denyusers',
    'hostcertificate',
    'hostkey',
    'listenaddress',
    'logverbose',
    'port',
    'setenv',
    'subsystem',
))

# Keywords whose single value is a comma-separated, ordered list (a preference order).
COMMA_LIST_KEYS = frozenset((
    'casignaturealgorithms',
    'ciphers',
    'gssapikexalgorithms',
    'hostbasedacceptedalgorithms',
    'hostkeyalgorithms',
    'kexalgorithms',
    'macs',
    'pubkeyacceptedalgorithms',
    'pubkeyacceptedkeytypes',
))

# Algorithm lists and the ssh -Q query that lists what this OpenSSH offers for each.
OFFERED_QUERY = {
    'casignaturealgorithms': 'key_sig',
    'ciphers': 'cipher',
    'hostbasedacceptedalgorithms': 'key_sig',
    'hostkeyalgorithms': 'key_sig',
    'kexalgorithms': 'kex',
    'macs': 'mac',
    'pubkeyacceptedalgorithms': 'key_sig',
    'pubkeyacceptedkeytypes': 'key_sig',
}

_VERSION_RE = re.compile(r'OpenSSH_(\d+)\.(\d+)(p\d+)?')


def parse_sshd_t(text):
    """Turn ``sshd -T`` output into a dict.

    Keys are lower-case as sshd prints them. Keys in MULTI_VALUE_KEYS become lists
    in the order printed; any other key printed more than once becomes a list too.
    Every other value is the string sshd printed (comma lists stay strings).
    """
    config = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        parts = line.split(None, 1)
        key = parts[0].lower()
        value = parts[1].strip() if len(parts) > 1 else ''
        if key in MULTI_VALUE_KEYS:
            config.setdefault(key, []).append(value)
        elif key in config:
            if not isinstance(config[key], list):
                config[key] = [config[key]]
            config[key].append(value)
        else:
            config[key] = value
    return config


def parse_version(text):
    """Return (version 'X.Y', full 'OpenSSH_X.YpZ') from ssh/sshd -V output, or (None, None)."""
    match = _VERSION_RE.search(text or '')
    if not match:
        return None, None
    return '%s.%s' % (match.group(1), match.group(2)), match.group(0)


def _as_text(value):
    """Render an expected scalar the way sshd -T prints it."""
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    return str(value)


def compare(config, expect):
    """Compare the parsed config with the expected values.

    Returns a list of mismatches, each a dict with key, expected and actual.
    Rules:
    - expect keys are matched case-insensitively (PermitRootLogin == permitrootlogin);
    - booleans are compared as yes/no and numbers as their decimal text;
    - for a multi-value key (port, allowusers, ...) the expected value, a scalar or a
      list, is compared as a set of values (order ignored);
    - for a comma-list key (ciphers, kexalgorithms, ...) an expected list is compared
      with the split value in order (order is the preference order); an expected
      string is compared with the value as printed;
    - a key missing from the output is a mismatch with actual None.
    """
    mismatches = []
    for raw_key in sorted(expect, key=lambda k: str(k).lower()):
        key = str(raw_key).lower()
        expected = expect[raw_key]
        actual = config.get(key)
        if actual is None:
            mismatches.append(dict(key=key, expected=expected, actual=None))
            continue
        if isinstance(actual, list):
            wanted = expected if isinstance(expected, list) else [expected]
            if sorted(_as_text(v) for v in wanted) != sorted(actual):
                mismatches.append(dict(key=key, expected=expected, actual=actual))
        elif isinstance(expected, list):
            if key in COMMA_LIST_KEYS:
                got = [v for v in actual.split(',') if v]
            else:
                got = actual.split()
            if [_as_text(v) for v in expected] != got:
                mismatches.append(dict(key=key, expected=expected, actual=actual))
        elif _as_text(expected) != actual:
            mismatches.append(dict(key=key, expected=expected, actual=actual))
    return mismatches


def offered_only(expect, algorithms):
    """A copy of expect whose algorithm lists keep only what this OpenSSH offers.

    ``algorithms`` maps query names (kex, cipher, mac, key_sig) to the ssh -Q lists. A
    list keeps its order; a comma-separated string is filtered the same way. Other keys
    are returned unchanged.
    """
    result = {}
    for raw_key, expected in expect.items():
        query = OFFERED_QUERY.get(str(raw_key).lower())
        if query is None or query not in algorithms:
            result[raw_key] = expected
            continue
        offered = set(algorithms[query])
        if isinstance(expected, list):
            result[raw_key] = [item for item in expected if str(item) in offered]
        else:
            result[raw_key] = ','.join(item for item in str(expected).split(',') if item in offered)
    return result


def format_mismatches(mismatches):
    """One line per mismatch, in the style of a diff."""
    lines = []
    for item in mismatches:
        if item['actual'] is None:
            lines.append('%s: expected %r, but sshd -T does not print this key' % (item['key'], item['expected']))
        else:
            lines.append('%s: expected %r, got %r' % (item['key'], item['expected'], item['actual']))
    return lines
