# -*- coding: utf-8 -*-
# Copyright (c) selfhost.platform maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Helpers for the sysctl_profile module.

Every function that touches the live kernel takes a ``proc_root`` argument
(``/proc/sys`` by default) so the logic can be exercised on a plain directory tree.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import re

PROC_ROOT = '/proc/sys'
# Where systemd-sysctl reads *.conf files at boot, highest priority first (sysctl.d(5)).
BOOT_DIRS = ('/etc/sysctl.d', '/run/sysctl.d', '/usr/local/lib/sysctl.d', '/usr/lib/sysctl.d', '/lib/sysctl.d')

# One path component: interface names and key names use letters, digits and a few
# punctuation characters; the first character of a key may not be '-' (in sysctl.d
# files a leading '-' means "ignore errors", which this module does not express).
_COMPONENT = r'[A-Za-z0-9_][A-Za-z0-9_:@+\-]*'
# \Z rather than $: '$' would also accept a trailing newline.
KEY_RE = re.compile(r'\A' + _COMPONENT + r'(?:[./][A-Za-z0-9_:@+\-]+)*\Z')

REASON_READ_ONLY = 'read-only here (container or missing capability)'
REASON_UNKNOWN = 'unknown to this kernel'
REASON_REJECTED = 'rejected by the kernel'
REASON_UNREADABLE = 'cannot be read here (write-only key or missing permission)'


class SysctlError(ValueError):
    """A key or value that cannot be used at all (the caller's mistake)."""


def _is_slash_form(key):
    """sysctl(8) convention: a key whose first separator is '/' is in slash form."""
    slash = key.find('/')
    if slash < 0:
        return False
    dot = key.find('.')
    return dot < 0 or slash < dot


def validate_key(key):
    """Return the key unchanged if it is a usable sysctl name, else raise SysctlError."""
    if not isinstance(key, str) or not key:
        raise SysctlError('sysctl key must be a non-empty string, got {0!r}'.format(key))
    if not KEY_RE.match(key):
        raise SysctlError(
            'invalid sysctl key {0!r}: use dotted (net.ipv4.ip_forward) or slash '
            '(net/ipv4/ip_forward) form with letters, digits, "_", "-", ":", "@", "+"; '
            'no spaces, newlines, globs, empty parts or ".."'.format(key))
    return key


def key_components(key):
    """Split a validated key into the path components under /proc/sys.

    In dotted form a '/' stands for a literal '.' inside one component (for example
    ``net.ipv4.conf.eth0/100.rp_filter`` is the VLAN interface ``eth0.100``), the same
    swap sysctl(8) does. In slash form the components are taken as written.
    """
    validate_key(key)
    if _is_slash_form(key):
        return key.split('/')
    return [part.replace('/', '.') for part in key.split('.')]


def canonical_key(key):
    """Dotted name of a key, so both spellings of one key compare equal."""
    return '.'.join(part.replace('.', '/') for part in key_components(key))


def key_to_path(key, proc_root=PROC_ROOT):
    """Absolute path of the file behind a key inside proc_root."""
    parts = key_components(key)
    path = os.path.join(proc_root, *parts)
    root = os.path.normpath(proc_root)
    if os.path.normpath(path) != path.rstrip('/') or not os.path.normpath(path).startswith(root + os.sep):
        # Unreachable with a validated key; kept as a guard against future regex changes.
        raise SysctlError('sysctl key {0!r} escapes {1}'.format(key, proc_root))
    return path


def value_to_text(key, value):
    """Turn a settings value (str or int) into the text written to the file and kernel."""
    if isinstance(value, bool):
        raise SysctlError(
            'value of sysctl key {0!r} is a boolean ({1!r}); write 1 or 0 instead'.format(key, value))
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise SysctlError(
            'value of sysctl key {0!r} must be a string or an integer, got {1}'.format(
                key, type(value).__name__))
    if '\n' in value or '\r' in value or '\0' in value:
        raise SysctlError('value of sysctl key {0!r} contains a newline or NUL byte'.format(key))
    text = value.strip()
    if not text:
        raise SysctlError('value of sysctl key {0!r} is empty'.format(key))
    return text


def normalize(value):
    """Collapse runs of whitespace: the kernel prints multi-value fields with tabs."""
    if value is None:
        return None
    return ' '.join(str(value).split())


def render(settings, header=None):
    """File content: header lines as comments, then ``key = value`` lines in order.

    ``settings`` is an ordered mapping or a list of (key, value) pairs; values must
    already be valid (see value_to_text).
    """
    lines = []
    if header:
        for line in str(header).splitlines():
            line = line.rstrip()
            if line.startswith('#'):
                lines.append(line)
            elif line:
                lines.append('# ' + line)
            else:
                lines.append('#')
    items = settings.items() if hasattr(settings, 'items') else settings
    for key, value in items:
        lines.append('{0} = {1}'.format(key, value))
    if not lines:
        return ''
    return '\n'.join(lines) + '\n'


def read_value(key, proc_root=PROC_ROOT):
    """Live value of a key, whitespace-normalized. Raises OSError as the kernel does."""
    with open(key_to_path(key, proc_root), 'r') as handle:
        return normalize(handle.read())


def write_value(key, value, proc_root=PROC_ROOT):
    """Write a live value. Raises OSError (EROFS, EACCES, ENOENT, EINVAL...) on refusal."""
    path = key_to_path(key, proc_root)
    # No O_CREAT: a key the kernel does not know must fail with ENOENT, never create a file.
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        data = (str(value) + '\n').encode('utf-8')
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(errno.EINVAL, 'short write', path)
    finally:
        os.close(fd)


def can_write(key, proc_root=PROC_ROOT):
    """Best guess (for check mode) whether a write would be allowed; no write happens."""
    return os.access(key_to_path(key, proc_root), os.W_OK)


def classify_error(err, action='write'):
    """A short human reason for an OSError raised while reading or writing a key."""
    code = getattr(err, 'errno', None)
    if code == errno.ENOENT or code == errno.ENOTDIR:
        return REASON_UNKNOWN
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        if action == 'read':
            return REASON_UNREADABLE
        return REASON_READ_ONLY
    if code in (errno.EINVAL, errno.ERANGE, errno.EOVERFLOW):
        return REASON_REJECTED
    return 'failed to {0}: {1}'.format(action, os.strerror(code) if code else err)


def boot_files(dirs=None):
    """The files systemd-sysctl applies at boot, in its order.

    Files are sorted by name whatever their directory; of two files with one name only
    the one in the directory listed first is read (it masks the other).
    """
    chosen = {}
    for directory in dirs if dirs is not None else BOOT_DIRS:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if name.endswith('.conf') and name not in chosen:
                chosen[name] = os.path.join(directory, name)
    return [chosen[name] for name in sorted(chosen)]


def parse_settings(text):
    """(dotted key, normalized value) pairs of a sysctl.d file, in order.

    Comments, blank lines, lines without '=' and glob keys (which this module never
    writes) are left out; a leading '-' (ignore errors) is dropped from the key.
    """
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in '#;' or '=' not in line:
            continue
        key, value = line.split('=', 1)
        try:
            name = canonical_key(key.strip().lstrip('-'))
        except SysctlError:
            continue
        pairs.append((name, normalize(value.strip())))
    return pairs


def overridden_at_boot(path, settings, dirs=None):
    """Keys of settings that a file applied after path at boot sets to another value.

    ``settings`` is a list of (key, value text) pairs as written to path. Returns one
    dict per key (key, wanted, value, file), naming the last file that sets it.
    """
    name = os.path.basename(path)
    last = {}
    for other in boot_files(dirs):
        if os.path.basename(other) <= name:
            continue
        try:
            with open(other, 'r') as handle:
                text = handle.read()
        except (IOError, OSError, UnicodeDecodeError):
            continue
        for key, value in parse_settings(text):
            last[key] = (value, other)
    found = []
    for key, wanted in settings:
        value, other = last.get(canonical_key(key), (None, None))
        if other is not None and value != normalize(wanted):
            found.append(dict(key=key, wanted=wanted, value=value, file=other))
    return found
