# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tell from gathered facts whether the host is a container."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: in_container
short_description: Whether gathered facts describe a container (Docker, LXC, Podman, nspawn...)
version_added: "0.1.0"
description:
  - Returns C(true) when the host's facts say it is a guest of a container technology, where the
    kernel belongs to another host (read-only C(/proc/sys), no audit netlink, no swap, no clock).
  - A virtual machine (C(kvm), C(xen), C(VMware)...) is not a container; nor is a host whose
    facts do not say (virtualization facts not gathered).
  - Roles use it to skip, with a message, what a container's kernel forbids, instead of failing.
options:
  _input:
    description: The host's C(ansible_facts) (needs the C(virtual) subset, gathered by default).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Say why auditd does not run here
  ansible.builtin.debug:
    msg: auditd needs the kernel's audit netlink socket, which a container does not get.
  when: ansible_facts | selfhost.platform.in_container
"""

RETURN = r"""
_value:
  description: C(true) for a container guest, C(false) otherwise.
  type: bool
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common._collections_compat import Mapping

# virtualization_type values that ansible's virtual facts give for container guests.
CONTAINER_TYPES = frozenset(
    ["docker", "container", "containerd", "lxc", "openvz", "podman", "systemd-nspawn"]
)


def in_container(facts):
    """True when the facts describe a container guest."""
    if not isinstance(facts, Mapping):
        raise AnsibleFilterError("in_container: expects ansible_facts (a dictionary), got %r" % (facts,))
    role = facts.get("virtualization_role") or facts.get("ansible_virtualization_role")
    kind = facts.get("virtualization_type") or facts.get("ansible_virtualization_type")
    return role == "guest" and kind in CONTAINER_TYPES


class FilterModule(object):
    """selfhost.platform host filters."""

    def filters(self):
        return {"in_container": in_container}
