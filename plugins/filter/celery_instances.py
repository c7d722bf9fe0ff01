# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Expand Celery worker pools into one entry per systemd worker instance."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: celery_instances
short_description: One entry per Celery worker instance (systemd C(celery-worker@<name>))
version_added: "0.1.0"
description:
  - Each pool is merged over O(defaults) (a shallow merge, the pool's keys win) and repeated
    C(instances) times.
  - The first instance of a pool is named after the pool, the next ones C(<pool>-2), C(<pool>-3)...
options:
  _input:
    description: The pools (C(celery_pools)), each with at least a C(name).
    type: list
    elements: dict
    required: true
  defaults:
    description: Settings a pool does not give (C(instances) among them).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: List the worker instances
  ansible.builtin.debug:
    msg: "{{ [{'name': 'default', 'instances': 2}] | selfhost.platform.celery_instances({'instances': 1}) }}"
  # [{'name': 'default', 'pool': {...}}, {'name': 'default-2', 'pool': {...}}]
"""

RETURN = r"""
_value:
  description: One C(name) (the systemd instance) and C(pool) (the merged settings) per instance.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common._collections_compat import Mapping


def _count(value):
    """An instance count as Jinja's int filter reads it (0 when it is not a number)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return 0


def celery_instances(pools, defaults=None):
    """Expand ``pools`` into [{'name': ..., 'pool': ...}], one per worker instance."""
    if not isinstance(pools, (list, tuple)):
        raise AnsibleFilterError("celery_instances: expects a list of pools, got %r" % (pools,))
    out = []
    for entry in pools:
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise AnsibleFilterError("celery_instances: a pool needs a name, got %r" % (entry,))
        pool = dict(defaults or {})
        pool.update(entry)
        for number in range(1, _count(pool.get("instances", 1)) + 1):
            name = pool["name"] if number == 1 else "%s-%d" % (pool["name"], number)
            out.append({"name": name, "pool": pool})
    return out


class FilterModule(object):
    """Celery worker instances filter."""

    def filters(self):
        return {"celery_instances": celery_instances}
