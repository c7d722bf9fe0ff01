# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the Loki host listens, as its log shippers and Grafana reach it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: loki_address
short_description: The address (and port) of the Loki host, as the shippers of the fleet reach it
version_added: "0.1.0"
description:
  - Given the hosts of the Loki group (the first one is the Loki host), returns the address that
    host listens on by the loki role's default, so that the loki role (its listen address), the
    alloy role (the push URL) and the grafana role (the datasource URL) agree from the inventory alone.
  - When every shipper is the Loki host itself (one VPS), Loki listens on loopback and the answer
    is C(127.0.0.1); otherwise it is the Loki host's O(address_var) host variable, else its
    C(ansible_host), else its inventory name (the rule of C(monitoring_sources)).
  - With O(port), the answer is C(address:port) (an IPv6 address in brackets); the Loki host's
    O(port_var) host variable, when the inventory sets one, wins over O(port).
  - An empty Loki group gives an empty string (no Loki known).
options:
  _input:
    description: The inventory names of the Loki group's hosts (C(groups['loki'])).
    type: list
    elements: str
    required: true
  shippers:
    description: The inventory names of the hosts that ship logs to Loki (C(groups['all'])).
    type: list
    elements: str
    required: true
  hostvars:
    description: The play's C(hostvars).
    type: dict
    required: true
  address_var:
    description: Name of the host variable holding the address the other hosts reach a host at.
    type: str
    default: prometheus_target_address
  port:
    description: Port to append; none returns the address alone.
    type: int
  port_var:
    description: Host variable of the Loki host that overrides O(port) (C(loki_http_port)).
    type: str
"""

EXAMPLES = r"""
- name: Show the push address of the fleet's Loki
  ansible.builtin.debug:
    msg: "{{ groups['loki'] | selfhost.platform.loki_address(groups['all'], hostvars, port=3100, port_var='loki_http_port') }}"
  # '10.0.0.40:3100' in a fleet, '127.0.0.1:3100' on one VPS, '' without a loki group
"""

RETURN = r"""
_value:
  description: The address, C(address:port) with O(port), or an empty string when the group is empty.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

from ansible_collections.selfhost.platform.plugins.filter.monitoring_sources import monitoring_sources

LOOPBACK = "127.0.0.1"


def _host_list(value, what):
    if isinstance(value, string_types) or not isinstance(value, (list, tuple)):
        raise AnsibleFilterError("loki_address: %s must be a list of host names, got %r" % (what, value))
    return list(value)


def loki_address(loki_hosts, shippers, hostvars, address_var="prometheus_target_address", port=None,
                 port_var=None):
    """Address (and port) of the first Loki host as the shippers reach it; '' without one."""
    loki_hosts = _host_list(loki_hosts, "the Loki group")
    shippers = _host_list(shippers, "shippers")
    if not loki_hosts:
        return ""
    host = loki_hosts[0]
    if all(shipper == host for shipper in shippers):
        address = LOOPBACK
    else:
        address = str(monitoring_sources([host], hostvars, address_var)[0])
    if port is None:
        return address
    values = hostvars[host] if host in hostvars else {}
    if port_var and port_var in values:
        port = values[port_var]
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise AnsibleFilterError("loki_address: the port of %s must be a number, got %r" % (host, port))
    if ":" in address:
        address = "[%s]" % address
    return "%s:%d" % (address, port)


class FilterModule(object):
    """Loki address filter."""

    def filters(self):
        return {"loki_address": loki_address}
