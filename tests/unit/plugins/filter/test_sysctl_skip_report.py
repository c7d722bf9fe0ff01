"""Unit tests of the selfhost.platform.sysctl_skip_report filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.sysctl_skip_report import (
    FilterModule,
    sysctl_skip_report,
)


def test_registered():
    assert FilterModule().filters()["sysctl_skip_report"] is sysctl_skip_report


def test_one_and_several_keys():
    one = {"key": "vm.overcommit_memory", "wanted": "1", "current": "0", "reason": "read-only"}
    two = {"key": "vm.swappiness", "wanted": 10, "current": None, "reason": "unknown key"}
    assert sysctl_skip_report([one]) == "vm.overcommit_memory=1 (live 0: read-only)"
    assert sysctl_skip_report([one, two]) == (
        "vm.overcommit_memory=1 (live 0: read-only); vm.swappiness=10 (live None: unknown key)")


def test_empty():
    assert sysctl_skip_report([]) == ""


@pytest.mark.parametrize("skipped", [None, "vm.x", ["vm.x"]])
def test_refuses_bad_input(skipped):
    with pytest.raises(AnsibleFilterError):
        sysctl_skip_report(skipped)
