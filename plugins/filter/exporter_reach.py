# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sentence an exporter role prints on every run: who can reach the exporter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: exporter_reach
short_description: Say who can reach an exporter, from where it listens and how the firewall is managed
version_added: "0.1.0"
description:
  - The exporter roles (node, nginx, postgres and redis exporters) print this on every run, because
    the address an exporter listens on decides who can reach it, with or without UFW.
  - On loopback only the host itself can reach the exporter; the sentence names the monitoring
    hosts that cannot scrape it, or says that none is known.
  - On another address it names the monitoring hosts the port is meant for and says whether UFW
    admits only those (the firewall role's allow entry point) or whether the firewall is left alone.
options:
  _input:
    description: The exporter's name, which is also the prefix of its role's variables (C(node_exporter)).
    type: str
    required: true
  listen:
    description: The address and port the exporter listens on, as shown to the operator.
    type: str
    required: true
  sources:
    description: The addresses of the monitoring hosts that may scrape it.
    type: list
    elements: str
    required: true
  listen_host:
    description: The role's C(<name>_listen_host); empty means every address of the host.
    type: str
    default: ""
  on_loopback:
    description: Whether the exporter listens on a loopback address only.
    type: bool
    default: false
  manage_firewall:
    description: The role's C(<name>_manage_firewall).
    type: bool
    default: true
  monitoring_group:
    description: The role's C(<name>_monitoring_group), named when no monitoring host is known.
    type: str
    default: monitoring
"""

EXAMPLES = r"""
- name: Report who can reach the exporter
  ansible.builtin.debug:
    msg: >-
      {{ 'node_exporter' | selfhost.platform.exporter_reach(
           listen='10.0.0.7:9100', sources=['10.0.0.5'], listen_host='10.0.0.7',
           on_loopback=false, manage_firewall=true) }}
  # node_exporter listens on 10.0.0.7:9100 for 10.0.0.5. UFW admits only those (...)
"""

RETURN = r"""
_value:
  description: One or two sentences for the run's output.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types


def exporter_reach(name, listen, sources, listen_host="", on_loopback=False, manage_firewall=True,
                   monitoring_group="monitoring"):
    """Who can reach exporter ``name`` listening on ``listen``."""
    if not isinstance(name, string_types) or not name:
        raise AnsibleFilterError("exporter_reach: expects the exporter's name, got %r" % (name,))
    if isinstance(sources, string_types) or not isinstance(sources, (list, tuple)):
        raise AnsibleFilterError("exporter_reach: sources must be a list of addresses, got %r" % (sources,))
    hosts = ", ".join(str(source) for source in sources)
    if on_loopback:
        if not sources:
            who = ("No monitoring host is known (%s_allow_from is empty and group %s has no host)."
                   % (name, monitoring_group))
        else:
            who = "The monitoring hosts %s cannot scrape it (%s_listen_host)." % (hosts, name)
        return "%s listens on %s: only this host can reach it. %s" % (name, listen, who)
    where = "%s listens on %s%s for %s." % (
        name, listen, " (every address of this host)" if not listen_host else "", hosts or "no monitoring host")
    if manage_firewall:
        return ("%s UFW admits only those (firewall role's allow entry point); where UFW is not installed "
                "that step warns, and every host that reaches this address can connect." % where)
    return ("%s %s_manage_firewall is false: every host that reaches this address can connect."
            % (where, name))


class FilterModule(object):
    """Exporter reach filter."""

    def filters(self):
        return {"exporter_reach": exporter_reach}
