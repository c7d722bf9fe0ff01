# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The addresses of a group's hosts, for the firewall rules that let them in."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: monitoring_sources
short_description: The unique addresses of a group's hosts (who may scrape an exporter)
version_added: "0.1.0"
description:
  - Given the host names of a group (usually C(groups['monitoring'])), returns the address of each
    host, once, in the group's order.
  - A host's address is its O(address_var) host variable, else its C(ansible_host), else its
    inventory name; the exporter roles open their port to these addresses.
options:
  _input:
    description: The inventory names of the hosts (a group's member list).
    type: list
    elements: str
    required: true
  hostvars:
    description: The play's C(hostvars).
    type: dict
    required: true
  address_var:
    description: Name of the host variable holding the address the host connects from.
    type: str
    default: prometheus_target_address
"""

EXAMPLES = r"""
- name: Show who may scrape node_exporter
  ansible.builtin.debug:
    msg: "{{ groups['monitoring'] | default([]) | selfhost.platform.monitoring_sources(hostvars, 'prometheus_target_address') }}"
  # ['10.0.0.5']
"""

RETURN = r"""
_value:
  description: The addresses, without duplicates, in the order of the hosts.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types


def _defined(values, name):
    """(True, value) when the host defines ``name``, else (False, None)."""
    try:
        return True, values[name]
    except KeyError:
        return False, None


def monitoring_sources(hosts, hostvars, address_var="prometheus_target_address"):
    """Addresses of ``hosts``: address_var, else ansible_host, else the name; unique."""
    if isinstance(hosts, string_types) or not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("monitoring_sources: expects a list of host names, got %r" % (hosts,))
    if not isinstance(address_var, string_types) or not address_var:
        raise AnsibleFilterError("monitoring_sources: address_var must be a variable name, got %r"
                                 % (address_var,))
    sources = []
    for host in hosts:
        values = hostvars[host] if host in hostvars else {}
        found, address = _defined(values, address_var)
        if not found:
            found, address = _defined(values, "ansible_host")
        if not found:
            address = host
        if address not in sources:
            sources.append(address)
    return sources


class FilterModule(object):
    """Monitoring sources filter."""

    def filters(self):
        return {"monitoring_sources": monitoring_sources}
