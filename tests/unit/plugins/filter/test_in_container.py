"""Unit tests of the selfhost.platform.in_container filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhost.platform.plugins.filter.in_container import FilterModule, in_container


def test_registered():
    assert FilterModule().filters()["in_container"] is in_container


@pytest.mark.parametrize("kind", ["docker", "container", "containerd", "lxc", "podman", "systemd-nspawn"])
def test_container_guests(kind):
    assert in_container({"virtualization_role": "guest", "virtualization_type": kind}) is True


@pytest.mark.parametrize(
    "facts",
    [
        {"virtualization_role": "guest", "virtualization_type": "kvm"},
        {"virtualization_role": "host", "virtualization_type": "docker"},
        {"virtualization_role": "NA", "virtualization_type": "NA"},
        {},
    ],
)
def test_not_a_container(facts):
    assert in_container(facts) is False


def test_injected_fact_names():
    assert in_container({"ansible_virtualization_role": "guest", "ansible_virtualization_type": "lxc"}) is True


def test_refuses_non_mapping():
    with pytest.raises(AnsibleFilterError):
        in_container("docker")
