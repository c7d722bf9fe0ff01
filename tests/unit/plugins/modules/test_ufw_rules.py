# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.platform.plugins.modules import ufw_rules
from ansible_collections.selfhost.platform.tests.unit.plugins.modules.utils import run_module

HEAD = "*filter\n:ufw-user-input - [0:0]\n### RULES ###\n\n"
SSH4 = "limit tcp 22 0.0.0.0/0 any 0.0.0.0/0 in comment=535348"
SSH6 = "limit tcp 22 ::/0 any ::/0 in comment=535348"


class FakeUfw(object):
    """Stands in for the ufw command: keeps its rule records in the two user rules files, as ufw does."""

    def __init__(self, tmp_path, ipv6=True):
        self.files = {4: tmp_path / "user.rules", 6: tmp_path / "user6.rules"}
        self.ipv6 = ipv6
        self.calls = []
        self.rc = 0

    def write(self, family, records):
        self.files[family].write_text(HEAD + "".join("### tuple ### %s\n-A ufw-user-input -j ACCEPT\n\n" % r for r in records))

    def records(self, family):
        return ufw_rules.read_tuples(str(self.files[family]))

    def __call__(self, argv, **kwargs):
        self.calls.append(list(argv))
        if self.rc:
            return self.rc, "", "ERROR: Invalid syntax"
        args = list(argv[1:])
        route = args[0] == "route" and bool(args.pop(0))
        delete = args[0] == "delete" and bool(args.pop(0))
        action, source, port = args[0], args[2], args[6]
        proto = args[args.index("proto") + 1] if "proto" in args else "any"
        comment = args[args.index("comment") + 1] if "comment" in args else ""
        for family, anywhere in ((4, "0.0.0.0/0"), (6, "::/0")):
            if family == 6 and not self.ipv6:
                continue
            if source != "any" and (":" in source) != (family == 6):
                continue
            src = anywhere if source == "any" else source
            record = "%s%s %s %s %s any %s in" % ("route:" if route else "", action, proto, port, anywhere, src)
            records = [r for r in self.records(family) if r != record and not r.startswith(record + " comment=")]
            if not delete:
                records.append(record + (" comment=" + comment.encode().hex() if comment else ""))
            self.write(family, records)
        return 0, "Rule added\n", ""


@pytest.fixture
def ufw(tmp_path, monkeypatch):
    fake = FakeUfw(tmp_path)
    fake.write(4, [SSH4])
    fake.write(6, [SSH6])
    defaults = tmp_path / "ufw.default"
    defaults.write_text('IPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\n')
    monkeypatch.setattr(ufw_rules, "USER_RULES", str(fake.files[4]))
    monkeypatch.setattr(ufw_rules, "USER6_RULES", str(fake.files[6]))
    monkeypatch.setattr(ufw_rules, "DEFAULTS_FILE", str(defaults))
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/usr/sbin/ufw")
    monkeypatch.setattr(AnsibleModule, "run_command", lambda self, argv, **kwargs: fake(argv, **kwargs))
    fake.defaults = defaults
    return fake


def test_rule_in_place_runs_nothing(ufw, capsys):
    result, failed = run_module(ufw_rules.main, capsys, {"rules": [{"port": "22", "rule": "limit", "comment": "SSH"}]})
    assert not failed
    assert result["changed"] is False
    assert result["commands"] == []
    assert ufw.calls == []


def test_adds_in_both_families_with_comment(ufw, capsys):
    result, failed = run_module(ufw_rules.main, capsys, {"rules": [{"port": 443, "comment": "nginx web"}]})
    assert not failed and result["changed"] is True
    assert result["commands"] == ["ufw allow from any to any port 443 proto tcp comment 'nginx web'"]
    assert ufw.calls == [["/usr/sbin/ufw", "allow", "from", "any", "to", "any", "port", "443", "proto", "tcp",
                          "comment", "nginx web"]]
    assert "allow tcp 443 0.0.0.0/0 any 0.0.0.0/0 in comment=6e67696e7820776562" in ufw.records(4)
    assert "allow tcp 443 ::/0 any ::/0 in comment=6e67696e7820776562" in ufw.records(6)
    # The second run finds it in place.
    again, dummy = run_module(ufw_rules.main, capsys, {"rules": [{"port": 443, "comment": "nginx web"}]})
    assert again["changed"] is False and again["commands"] == []


def test_absent_opening_removes_both_forms_first(ufw, capsys):
    ufw.write(4, [SSH4, "allow tcp 8086 0.0.0.0/0 any 0.0.0.0/0 in comment=6f6c64"])
    result, dummy = run_module(ufw_rules.main, capsys, {"rules": [
        {"port": 8085, "rule": "limit", "comment": "sshd"},
        {"port": "22", "state": "absent"},
        {"port": 8086, "state": "absent"},
    ]})
    assert result["changed"] is True
    # Removals come before the addition; only the forms that exist are removed.
    assert result["commands"] == [
        "ufw delete limit from any to any port 22 proto tcp",
        "ufw delete allow from any to any port 8086 proto tcp",
        "ufw limit from any to any port 8085 proto tcp comment sshd",
    ]
    assert ufw.records(4) == ["limit tcp 8085 0.0.0.0/0 any 0.0.0.0/0 in comment=73736864"]
    assert ufw.records(6) == ["limit tcp 8085 ::/0 any ::/0 in comment=73736864"]


def test_absent_rule_that_is_not_there_is_no_change(ufw, capsys):
    rules = [{"port": 9999, "state": "absent"}, {"port": 9998, "rule": "deny", "state": "absent"}]
    result, dummy = run_module(ufw_rules.main, capsys, {"rules": rules})
    assert result["changed"] is False and result["commands"] == [] and ufw.calls == []


def test_source_network_route_rule_and_any_proto(ufw, capsys):
    result, dummy = run_module(ufw_rules.main, capsys, {"rules": [
        {"port": 80, "from": "10.8.0.0/24", "route": True, "comment": "web"},
        {"port": 53, "proto": "any", "from_ip": "fd00:30::/64"},
        {"port": "60000:60010", "proto": "udp"},
    ]})
    assert result["commands"] == [
        "ufw route allow from 10.8.0.0/24 to any port 80 proto tcp comment web",
        "ufw allow from fd00:30::/64 to any port 53",
        "ufw allow from any to any port 60000:60010 proto udp",
    ]
    assert "route:allow tcp 80 0.0.0.0/0 any 10.8.0.0/24 in comment=776562" in ufw.records(4)
    assert "allow any 53 ::/0 any fd00:30::/64 in" in ufw.records(6)
    assert not any(" 53 " in record for record in ufw.records(4))
    again, dummy = run_module(ufw_rules.main, capsys, {"rules": [
        {"port": 80, "from": "10.8.0.0/24", "route": True, "comment": "web"},
        {"port": 53, "proto": "any", "from_ip": "fd00:30::/64"},
        {"port": "60000:60010", "proto": "udp"},
    ]})
    assert again["changed"] is False and again["commands"] == []


def test_without_ipv6_only_the_ipv4_form_is_expected(ufw, capsys):
    ufw.defaults.write_text('IPV6=no\n')
    ufw.ipv6 = False
    ufw.write(4, [SSH4, "allow tcp 8080 0.0.0.0/0 any 0.0.0.0/0 in"])
    result, dummy = run_module(ufw_rules.main, capsys, {"rules": [{"port": 8080}]})
    assert result["changed"] is False and ufw.calls == []


@pytest.mark.parametrize("given, written", [
    ("10.0.0.1/32", "10.0.0.1"),
    ("2001:db8:0:0::1/128", "2001:db8::1"),
])
@pytest.mark.parametrize("check", [False, True])
def test_a_source_is_compared_in_the_form_ufw_writes_it(ufw, capsys, given, written, check):
    family = 6 if ":" in given else 4
    anywhere = "::/0" if family == 6 else "0.0.0.0/0"
    ufw.write(family, [SSH6 if family == 6 else SSH4, "allow tcp 8080 %s any %s in" % (anywhere, written)])
    result, failed = run_module(ufw_rules.main, capsys, {"rules": [{"port": 8080, "from": given}]}, check=check)
    assert not failed
    assert result["changed"] is False and result["commands"] == []
    assert ufw.calls == []


def test_check_mode_reports_without_running(ufw, capsys):
    rules = [{"port": 443}, {"port": "22", "rule": "limit", "comment": "SSH"}]
    result, failed = run_module(ufw_rules.main, capsys, {"rules": rules}, check=True)
    assert not failed
    assert result["changed"] is True
    assert result["commands"] == ["ufw allow from any to any port 443 proto tcp"]
    assert ufw.calls == []
    assert ufw.records(4) == [SSH4]


def test_check_mode_in_place_is_no_change(ufw, capsys):
    args = {"rules": [{"port": 22, "rule": "limit", "comment": "SSH"}]}
    result, dummy = run_module(ufw_rules.main, capsys, args, check=True)
    assert result["changed"] is False


def test_diff_shows_the_rule_records(ufw, capsys):
    result, dummy = run_module(ufw_rules.main, capsys, {"rules": [{"port": 443}]}, diff=True)
    assert result["diff"]["before"] == SSH4 + "\n" + SSH6 + "\n"
    assert "allow tcp 443 0.0.0.0/0 any 0.0.0.0/0 in\n" in result["diff"]["after"]


def test_ufw_error_fails_with_its_message(ufw, capsys):
    ufw.rc = 1
    result, failed = run_module(ufw_rules.main, capsys, {"rules": [{"port": 443}, {"port": 444}]})
    assert failed
    assert result["msg"] == "ufw allow from any to any port 443 proto tcp failed: ERROR: Invalid syntax"
    assert result["commands"] == ["ufw allow from any to any port 443 proto tcp"]


@pytest.mark.parametrize(("rule", "message"), [
    ({"port": "70000"}, "rules[0]: port 70000 is out of 1-65535 or its range is reversed"),
    ({"port": "90:80"}, "rules[0]: port 90:80 is out of 1-65535 or its range is reversed"),
    ({"port": "http"}, "rules[0]: port 'http' is not a port or a range low:high"),
    ({"port": "80:90", "proto": "any"}, "rules[0]: the port range 80:90 needs proto tcp or udp"),
    ({"port": "80", "from": "10.0.0.1/8"}, "rules[0]: from '10.0.0.1/8' is not any, an address or a network in CIDR form"),
    ({"port": "80", "comment": "it's"}, "rules[0]: the comment of port 80 has quotes"),
])
def test_invalid_rules_fail_before_anything_runs(ufw, capsys, rule, message):
    result, failed = run_module(ufw_rules.main, capsys, {"rules": [rule]})
    assert failed
    assert message in result["msg"]
    assert ufw.calls == []


def test_missing_ufw_fails_by_default(ufw, capsys, monkeypatch):
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, *a, **k: None)
    result, failed = run_module(ufw_rules.main, capsys, {"rules": [{"port": 443}]})
    assert failed
    assert result["ufw_installed"] is False
    assert "UFW is not installed" in result["msg"]


def test_missing_ufw_skip_reports_and_changes_nothing(ufw, capsys, monkeypatch):
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, *a, **k: None)
    warnings = []
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, message: warnings.append(message))
    args = {"rules": [{"port": 443}, {"port": "80"}], "missing_ufw": "skip"}
    result, failed = run_module(ufw_rules.main, capsys, args)
    assert not failed
    assert result["changed"] is False
    assert result["ufw_installed"] is False
    assert result["msg"].endswith("nothing to open or close for 443, 80.")
    assert warnings == [result["msg"]]
    assert ufw.calls == []
