"""Unit tests of the selfhost.platform.fail2ban_jails filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.fail2ban_jails import FilterModule, fail2ban_jails

# What fail2ban-client status prints (tabs after the colons, as fail2ban 1.0 does).
STATUS = "Status\n|- Number of jail:\t3\n`- Jail list:\tnginx-http-auth, recidive, sshd\n"


def _jail(name, **settings):
    return {"name": name, "settings": settings}


def test_registered():
    assert FilterModule().filters()["fail2ban_jails"] is fail2ban_jails


def test_all_loaded():
    jails = [_jail("sshd", enabled=True, backend="systemd"), _jail("recidive", enabled=True)]
    assert fail2ban_jails(STATUS, jails) == {
        "expected": ["sshd", "recidive"],
        "loaded": ["nginx-http-auth", "recidive", "sshd"],
        "missing": [],
    }


def test_missing_in_the_order_given():
    jails = [_jail("postfix", enabled=True), _jail("sshd", enabled=True), _jail("dovecot", enabled=True)]
    assert fail2ban_jails(STATUS, jails)["missing"] == ["postfix", "dovecot"]


@pytest.mark.parametrize("value", [True, "true", "True", "yes", "YES", "on", "1", 1, " true "])
def test_what_fail2ban_reads_as_enabled(value):
    assert fail2ban_jails("", [_jail("postfix", enabled=value)])["expected"] == ["postfix"]


@pytest.mark.parametrize("value", [False, "false", "no", "off", "0", 0, "", None, "enabled"])
def test_what_fail2ban_reads_as_disabled(value):
    assert fail2ban_jails("", [_jail("postfix", enabled=value)])["expected"] == []


def test_a_jail_without_enabled_is_not_expected():
    assert fail2ban_jails(STATUS, [_jail("postfix", backend="systemd")])["expected"] == []


@pytest.mark.parametrize("status", ["", None, "ERROR   Failed to access socket path: /var/run/fail2ban/fail2ban.sock"])
def test_no_answer_reads_as_nothing_loaded(status):
    result = fail2ban_jails(status, [_jail("sshd", enabled=True)])
    assert result["loaded"] == [] and result["missing"] == ["sshd"]


def test_no_jail_running():
    status = "Status\n|- Number of jail:\t0\n`- Jail list:\t\n"
    assert fail2ban_jails(status, [])["loaded"] == []


@pytest.mark.parametrize("status, jails", [
    (["Jail list: sshd"], []),
    (STATUS, "sshd"),
    (STATUS, {"name": "sshd"}),
    (STATUS, [{"name": "sshd"}]),
    (STATUS, [{"settings": {"enabled": True}}]),
    (STATUS, ["sshd"]),
])
def test_refuses_malformed_input(status, jails):
    with pytest.raises(AnsibleFilterError):
        fail2ban_jails(status, jails)
