# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn inventory groups and host variables into Prometheus scrape configurations."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: scrape_targets
short_description: Build Prometheus scrape configurations from inventory groups and host variables
version_added: "0.1.0"
description:
  - Turns a list of job definitions into a list of Prometheus C(scrape_configs) entries, ready to be
    written with C(to_nice_yaml).
  - A host job scrapes every host of an inventory group. The address of a host is, in this order,
    its C(address_var) host variable (default C(prometheus_target_address)), its C(ansible_host), its
    inventory name. Gathered facts are never used, so the result does not depend on which hosts
    had facts gathered in the play.
  - A host whose address is a loopback address (C(localhost), C(127.0.0.0/8), C(::1)) is refused
    unless it is O(local_host) (the Prometheus host itself); Prometheus would otherwise scrape
    itself in place of a remote host.
  - The port is the job's C(port), or the host variable named by the job's C(port_var) when the
    host defines it (for example C(node_exporter_port) set per host).
  - A job with C(enabled_var) leaves out every host whose host variable of that name is false
    (for example C(celery_flower_enabled) set to false in the inventory), so Prometheus does not scrape
    a service that is turned off there (a target that can never answer fires C(TargetDown)).
    A host that does not define the variable is kept, unless the job sets C(enabled_default) to
    false (a service that is off unless the inventory turns it on, for example
    C(docker_engine_metrics_enabled)).
  - Every target carries a C(host) label with the inventory name, the job's C(labels), and the
    host's own C(prometheus_target_labels) dictionary when it has one.
  - A probe job (C(probe) set) scrapes a blackbox exporter with each of C(probe.targets) as the
    C(target) parameter; the probed URL becomes the C(instance) label.
  - Jobs that end with no target (an empty or missing group) are left out, so that every target
    Prometheus knows about is one that should answer.
options:
  _input:
    description:
      - Job definitions. Keys of a host job are C(name), C(group) (default C(all)), C(port),
        C(port_var), C(address_var), C(enabled_var), C(enabled_default), C(labels), C(metrics_path),
        C(scheme),
        C(scrape_interval), C(scrape_timeout), C(params).
      - A probe job has C(name), C(probe) (a dictionary with C(module), C(targets) (a list of
        URLs or host:port strings) and C(exporter) (the exporter's host:port, default
        C(127.0.0.1:9115))), and optionally C(labels), C(scrape_interval), C(scrape_timeout)
        (C(address_var) is accepted and ignored).
    type: list
    elements: dict
    required: true
  groups:
    description: The inventory's C(groups) dictionary.
    type: dict
    required: true
  hostvars:
    description: The inventory's C(hostvars).
    type: dict
    required: true
  local_host:
    description: Inventory name of the Prometheus host; only this host may have a loopback address.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Write the scrape configurations
  ansible.builtin.copy:
    content: >-
      {{ {'scrape_configs': prometheus_scrape_jobs
          | selfhost.platform.scrape_targets(groups, hostvars, local_host=inventory_hostname)}
         | to_nice_yaml }}
    dest: /tmp/scrape.yml
    mode: "0644"
  vars:
    prometheus_scrape_jobs:
      - { name: node, group: all, port: 9100, port_var: node_exporter_port }
      - { name: redis, group: brokers, port: 9121, labels: { service: redis } }
      - { name: flower, group: workers, port: 5555, enabled_var: celery_flower_enabled }
      - name: healthz
        probe: { module: http_2xx, targets: ["https://app.example.com/healthz"] }
"""

RETURN = r"""
_value:
  description:
    - Prometheus scrape configurations (C(job_name), C(static_configs) with one entry per target,
      and C(metrics_path), C(scheme), C(params), C(relabel_configs) when they apply).
  type: list
  elements: dict
"""

import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import string_types

DEFAULT_ADDRESS_VAR = "prometheus_target_address"
HOST_LABELS_VAR = "prometheus_target_labels"
DEFAULT_EXPORTER = "127.0.0.1:9115"
JOB_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_-]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
HOST_KEYS = frozenset(
    ["name", "group", "port", "port_var", "address_var", "enabled_var", "enabled_default", "labels", "metrics_path",
     "scheme", "scrape_interval", "scrape_timeout", "params"]
)
PROBE_KEYS = frozenset(["name", "probe", "labels", "scrape_interval", "scrape_timeout", "address_var"])
PASSTHROUGH = ("metrics_path", "scheme", "scrape_interval", "scrape_timeout", "params")


def _fail(job, message):
    raise AnsibleFilterError("scrape_targets: job %r: %s" % (job, message))


def is_loopback(address):
    """True for localhost names and loopback IP addresses."""
    address = address.strip("[]").lower()
    if address in ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"):
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def host_port(address, port):
    """address:port, with brackets around an IPv6 address."""
    try:
        if ipaddress.ip_address(address.strip("[]")).version == 6:
            return "[%s]:%d" % (address.strip("[]"), port)
    except ValueError:
        pass
    return "%s:%d" % (address, port)


def _port(job, value, origin):
    try:
        port = int(value)
    except (TypeError, ValueError):
        _fail(job, "%s %r is not a port number" % (origin, value))
    if isinstance(value, bool) or not 1 <= port <= 65535:
        _fail(job, "%s %r is not a port number from 1 to 65535" % (origin, value))
    return port


def _labels(job, labels, origin):
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        _fail(job, "%s must be a dictionary of labels, got %r" % (origin, labels))
    out = {}
    for key, value in labels.items():
        key = to_text(key)
        if not LABEL_NAME.match(key) or key.startswith("__"):
            _fail(job, "%s: %r is not a valid label name" % (origin, key))
        out[key] = to_text(value)
    return out


def _hostvar(hostvars, host, name):
    try:
        values = hostvars[host]
    except KeyError:
        return None
    try:
        value = values.get(name)
    except AttributeError:
        return None
    if value is None or (isinstance(value, string_types) and not value.strip()):
        return None
    return value


def _enabled(job, hostvars, host, name, default=True):
    value = _hostvar(hostvars, host, name)
    if value is None:
        return default
    try:
        return boolean(value, strict=True)
    except TypeError:
        _fail(job, "%s of host %r is %r, not a boolean" % (name, host, value))


def _host_job(job, groups, hostvars, local_host):
    name = job["name"]
    group = job.get("group", "all")
    if not isinstance(group, string_types):
        _fail(name, "group must be a group name, got %r" % (group,))
    address_var = job.get("address_var", DEFAULT_ADDRESS_VAR)
    if "port" not in job and "port_var" not in job:
        _fail(name, "needs a port (or a port_var every host defines)")
    job_labels = _labels(name, job.get("labels"), "labels")
    try:
        enabled_default = boolean(job.get("enabled_default", True), strict=True)
    except TypeError:
        _fail(name, "enabled_default must be a boolean, got %r" % (job.get("enabled_default"),))
    static_configs = []
    for host in groups.get(group) or []:
        host = to_text(host)
        if job.get("enabled_var") and not _enabled(name, hostvars, host, job["enabled_var"], enabled_default):
            continue
        address = (_hostvar(hostvars, host, address_var)
                   or _hostvar(hostvars, host, "ansible_host") or host)
        address = to_text(address).strip()
        if is_loopback(address) and host != local_host:
            _fail(name, "host %r resolves to the loopback address %r: set %s (or ansible_host) to an "
                        "address the Prometheus host can reach" % (host, address, address_var))
        value = _hostvar(hostvars, host, job["port_var"]) if job.get("port_var") else None
        if value is not None:
            port = _port(name, value, "%s of host %r" % (job["port_var"], host))
        elif "port" in job:
            port = _port(name, job["port"], "port")
        else:
            _fail(name, "host %r does not define %s and the job has no port" % (host, job["port_var"]))
        labels = {"host": host}
        labels.update(job_labels)
        labels.update(_labels(name, _hostvar(hostvars, host, HOST_LABELS_VAR),
                              "%s of host %r" % (HOST_LABELS_VAR, host)))
        static_configs.append({"targets": [host_port(address, port)], "labels": labels})
    if not static_configs:
        return None
    config = {"job_name": name}
    for key in PASSTHROUGH:
        if job.get(key) not in (None, "", {}):
            config[key] = job[key]
    config["static_configs"] = static_configs
    return config


def _probe_job(job):
    name = job["name"]
    probe = job["probe"]
    if not isinstance(probe, dict) or not probe.get("module"):
        _fail(name, "probe must be a dictionary with a module")
    targets = probe.get("targets") or []
    if isinstance(targets, string_types) or not all(isinstance(t, string_types) and t for t in targets):
        _fail(name, "probe.targets must be a list of URLs or host:port strings")
    if not targets:
        return None
    config = {"job_name": name, "metrics_path": "/probe", "params": {"module": [to_text(probe["module"])]}}
    for key in ("scrape_interval", "scrape_timeout"):
        if job.get(key):
            config[key] = job[key]
    labels = _labels(name, job.get("labels"), "labels")
    entry = {"targets": [to_text(t) for t in targets]}
    if labels:
        entry["labels"] = labels
    config["static_configs"] = [entry]
    config["relabel_configs"] = [
        {"source_labels": ["__address__"], "target_label": "__param_target"},
        {"source_labels": ["__param_target"], "target_label": "instance"},
        {"target_label": "__address__", "replacement": to_text(probe.get("exporter") or DEFAULT_EXPORTER)},
    ]
    return config


def scrape_targets(jobs, groups, hostvars, local_host=""):
    """Return Prometheus scrape configurations for the job definitions."""
    if not isinstance(jobs, list):
        raise AnsibleFilterError("scrape_targets: expects a list of jobs, got %r" % (jobs,))
    if not isinstance(groups, dict):
        raise AnsibleFilterError("scrape_targets: groups must be the inventory's groups dictionary")
    seen = set()
    configs = []
    for job in jobs:
        if not isinstance(job, dict) or not isinstance(job.get("name"), string_types):
            raise AnsibleFilterError("scrape_targets: every job needs a name, got %r" % (job,))
        name = job["name"]
        if not JOB_NAME.match(name):
            _fail(name, "job names are letters, digits, '_' and '-'")
        if name in seen:
            _fail(name, "defined twice")
        seen.add(name)
        allowed = PROBE_KEYS if "probe" in job else HOST_KEYS
        unknown = sorted(set(job) - allowed)
        if unknown:
            _fail(name, "unknown keys %s" % ", ".join(unknown))
        config = _probe_job(job) if "probe" in job else _host_job(job, groups, hostvars, to_text(local_host))
        if config is not None:
            configs.append(config)
    return configs


class FilterModule(object):
    """Prometheus scrape target filters."""

    def filters(self):
        return {"scrape_targets": scrape_targets}
