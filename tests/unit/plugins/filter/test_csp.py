"""Unit tests of the selfhost.platform.csp filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.csp import FilterModule, csp


def test_registered():
    assert FilterModule().filters()["csp"] is csp


def test_keywords_are_quoted_and_order_kept():
    policy = {
        "default-src": ["self"],
        "img-src": ["'self'", "data:", "https://cdn.example.org"],
        "frame-ancestors": ["none"],
        "upgrade-insecure-requests": True,
    }
    assert csp(policy) == (
        "default-src 'self'; img-src 'self' data: https://cdn.example.org; "
        "frame-ancestors 'none'; upgrade-insecure-requests"
    )


def test_nonce_hash_and_string_value():
    assert csp({"script-src": "self sha256-abc+/= nonce-R4nd0m"}) == (
        "script-src 'self' 'sha256-abc+/=' 'nonce-R4nd0m'"
    )


@pytest.mark.parametrize("value", [False, None, []])
def test_disabled_directives_are_left_out(value):
    assert csp({"default-src": ["self"], "report-uri": value}) == "default-src 'self'"


@pytest.mark.parametrize(
    "policy",
    [
        {"default-src": ["self; script-src *"]},
        {"default-src": ['"self"']},
        {"default-src": ["'https://x.example'"]},
        {"Default-Src": ["self"]},
        {"default-src": [1]},
        {"default-src": 5},
        {"default-src": [""]},
        {"default-src": ["self\n"], "x": ["a,b"]},
        {},
        {"report-uri": None},
    ],
)
def test_invalid_input_fails(policy):
    with pytest.raises(AnsibleFilterError):
        csp(policy)


def test_not_a_dict():
    with pytest.raises(AnsibleFilterError, match="expected a dictionary"):
        csp(["default-src"])
