"""Unit tests of the selfhost.platform.password_verdicts filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.password_verdicts import (
    FilterModule,
    password_verdicts,
)


def test_registered():
    assert FilterModule().filters()["password_verdicts"] is password_verdicts


def test_verdicts_never_carry_the_password():
    users = [{"name": "app", "password": "x" * 12}, {"name": "short", "password": "x" * 11},
             {"name": "none"}, {"name": "gone", "state": "absent"}]
    out = password_verdicts(users, 12)
    assert out == [{"name": "app", "password_ok": True}, {"name": "short", "password_ok": False},
                   {"name": "none", "password_ok": False}, {"name": "gone", "password_ok": True}]
    assert "xxxx" not in repr(out)


def test_password_read_as_string_and_name_defaults_to_empty():
    assert password_verdicts([{"password": 1234567890123456}], "16") == [
        {"name": "", "password_ok": True}]
    assert password_verdicts([{"name": 7, "password": None}], 1) == [
        {"name": "7", "password_ok": False}]


@pytest.mark.parametrize(("users", "min_length"), [({"name": "a"}, 12), (["a"], 12), ([], "x")])
def test_refuses_bad_input(users, min_length):
    with pytest.raises(AnsibleFilterError):
        password_verdicts(users, min_length)
