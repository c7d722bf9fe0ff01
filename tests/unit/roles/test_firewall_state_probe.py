# Unit tests of roles/firewall/files/state_probe.py: which rule items UFW's rule files already hold.
# The tuples below are what ufw 0.36.2 (Debian 12) wrote for these commands:
#   ufw limit proto tcp to any port 22 comment SSH
#   ufw allow proto tcp from 10.0.0.0/8 to any port 8000:8010 comment "app range"
#   ufw allow from any to any port 53 comment dns
#   ufw allow proto udp from 2001:db8::/32 to any port 51820
#   ufw route allow proto tcp from any to any port 8080 comment ctr
#   ufw deny proto tcp from 192.0.2.0/24 to any port 25
import importlib.util
import json
import os
import subprocess
import sys

import pytest

PROBE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "firewall", "files", "state_probe.py")
spec = importlib.util.spec_from_file_location("firewall_state_probe", PROBE)
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)

V4 = {
    "limit tcp 22 0.0.0.0/0 any 0.0.0.0/0 in comment=535348",
    "allow tcp 8000:8010 0.0.0.0/0 any 10.0.0.0/8 in comment=6170702072616e6765",
    "allow any 53 0.0.0.0/0 any 0.0.0.0/0 in comment=646e73",
    "route:allow tcp 8080 0.0.0.0/0 any 0.0.0.0/0 in comment=637472",
    "deny tcp 25 0.0.0.0/0 any 192.0.2.0/24 in",
}
V6 = {
    "limit tcp 22 ::/0 any ::/0 in comment=535348",
    "allow any 53 ::/0 any ::/0 in comment=646e73",
    "allow udp 51820 ::/0 any 2001:db8::/32 in",
    "route:allow tcp 8080 ::/0 any ::/0 in comment=637472",
}


def item(port, proto="tcp", source="any", comment="", rule="allow", state="present"):
    return {"port": port, "proto": proto, "from": source, "comment": comment, "rule": rule, "state": state}


@pytest.mark.parametrize("wanted, route, expected", [
    (item(22, rule="limit", comment="SSH"), False, True),
    (item(22, rule="limit", comment="ssh"), False, False),          # another comment: the module runs
    (item(22, rule="allow", comment="SSH"), False, False),          # limit is there, not allow
    (item("8000:8010", source="10.0.0.0/8", comment="app range"), False, True),
    (item(53, proto="any", comment="dns"), False, True),
    (item(53, proto="udp", comment="dns"), False, False),
    (item(51820, proto="udp", source="2001:db8::/32"), False, True),
    (item(8080, comment="ctr"), True, True),
    (item(8080, comment="ctr"), False, False),                      # a route rule is not an input rule
    (item(25, source="192.0.2.0/24", rule="deny"), False, True),
    (item(443, comment="nginx"), False, False),
])
def test_present_items(wanted, route, expected):
    assert probe.rule_in_place(wanted, route, True, V4, V6) is expected


def test_a_rule_for_any_source_needs_both_families_when_ipv6_is_on():
    only_v4 = item(22, rule="limit", comment="SSH")
    assert probe.rule_in_place(only_v4, False, True, V4, set()) is False
    assert probe.rule_in_place(only_v4, False, False, V4, set()) is True


def test_an_ipv6_source_without_ipv6_is_never_in_place():
    assert probe.rule_in_place(item(51820, proto="udp", source="2001:db8::/32"), False, False, V4, V6) is False


@pytest.mark.parametrize("wanted, expected", [
    (item(22, state="absent"), False),                      # the limit form is there: both forms go
    (item(53, proto="any", state="absent"), False),         # present with a comment
    (item(443, state="absent"), True),
    (item(25, source="192.0.2.0/24", rule="deny", state="absent"), False),
    (item(25, rule="deny", state="absent"), True),          # another source
])
def test_absent_items(wanted, expected):
    assert probe.rule_in_place(wanted, False, True, V4, V6) is expected


def test_probe_answers_without_ufw_files(tmp_path):
    spec_json = json.dumps({"rules": {"allow": {"route": False, "items": [item(443)]}}, "ipv6": True})
    out = json.loads(subprocess.run([sys.executable, PROBE, spec_json], check=True,
                                    capture_output=True, text=True).stdout)
    assert out["rules"] == {"allow": [False]}
    assert out["status"] == ""
    assert out["lines"] == [] and out["blocks"] == []
