# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render a Content-Security-Policy header value from a dictionary."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: csp
short_description: Render a Content-Security-Policy header value from a dictionary
version_added: "0.1.0"
description:
  - Turns a dictionary of CSP directives into the single-line value of a
    C(Content-Security-Policy) header, in the order the dictionary gives.
  - Source keywords written without quotes (C(self), C(none), C(unsafe-inline),
    C(strict-dynamic), C(nonce-...), C(sha256-...)) are quoted as CSP requires;
    already quoted ones are kept.
  - A directive whose value is C(true) is written alone (C(upgrade-insecure-requests));
    C(false), C(null) or an empty list leaves the directive out.
  - Refuses what would break the header or the nginx configuration it is written into
    (semicolons, commas, quotes, backslashes, spaces or control characters in a source,
    malformed directive names), so a typo fails the play instead of shipping a policy
    that browsers silently ignore.
options:
  _input:
    description: Directive name to a list of sources, a single source string, or a boolean.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Build the header value
  ansible.builtin.debug:
    msg: >-
      {{ {'default-src': ['self'], 'img-src': ['self', 'data:'],
          'frame-ancestors': ['none'], 'upgrade-insecure-requests': true}
         | selfhost.platform.csp }}
  # "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; upgrade-insecure-requests"
"""

RETURN = r"""
_value:
  description: The header value, directives separated by C(; ).
  type: str
"""

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import string_types

KEYWORDS = frozenset(
    [
        "self",
        "none",
        "unsafe-inline",
        "unsafe-eval",
        "unsafe-hashes",
        "unsafe-allow-redirects",
        "strict-dynamic",
        "report-sample",
        "wasm-unsafe-eval",
        "inline-speculation-rules",
        "script",
    ]
)
HASH_OR_NONCE = re.compile(r"^(nonce-[A-Za-z0-9+/_=-]+|sha(256|384|512)-[A-Za-z0-9+/_=-]+)$")
DIRECTIVE = re.compile(r"^[a-z][a-z0-9-]*$")
FORBIDDEN = re.compile(r"[;,\"'\\\s\x00-\x1f\x7f]")


def _source(directive, value):
    """Return one source expression, quoted where CSP requires it."""
    if not isinstance(value, string_types):
        raise AnsibleFilterError(
            "csp: directive %r: source %r is not a string" % (directive, value)
        )
    text = to_text(value).strip()
    bare = text[1:-1] if len(text) > 1 and text[0] == "'" and text[-1] == "'" else text
    if not bare:
        raise AnsibleFilterError("csp: directive %r has an empty source" % directive)
    if FORBIDDEN.search(bare):
        raise AnsibleFilterError(
            "csp: directive %r: source %r contains a quote, comma, semicolon, backslash, "
            "space or control character" % (directive, value)
        )
    if bare in KEYWORDS or HASH_OR_NONCE.match(bare):
        return "'%s'" % bare
    if bare != text:
        raise AnsibleFilterError(
            "csp: directive %r: %r is quoted but is not a CSP keyword, nonce or hash"
            % (directive, value)
        )
    return bare


def csp(policy):
    """Render ``policy`` (directive -> sources) as a Content-Security-Policy value."""
    if not isinstance(policy, dict):
        raise AnsibleFilterError("csp: expected a dictionary, got %s" % type(policy).__name__)
    parts = []
    for name, value in policy.items():
        directive = to_text(name)
        if not DIRECTIVE.match(directive):
            raise AnsibleFilterError(
                "csp: %r is not a directive name (lower-case letters, digits and hyphens)" % name
            )
        if value is None or value is False:
            continue
        if value is True:
            parts.append(directive)
            continue
        if isinstance(value, string_types):
            value = value.split()
        if not isinstance(value, (list, tuple)):
            raise AnsibleFilterError(
                "csp: directive %r: expected a list of sources, a string or a boolean" % directive
            )
        if not value:
            continue
        parts.append(" ".join([directive] + [_source(directive, item) for item in value]))
    if not parts:
        raise AnsibleFilterError("csp: the policy is empty")
    return "; ".join(parts)


class FilterModule(object):
    """Content-Security-Policy filter."""

    def filters(self):
        return {"csp": csp}
