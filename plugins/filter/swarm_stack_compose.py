# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn a swarm_stacks definition into the compose file docker stack deploy gets."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: swarm_stack_compose
short_description: Render a selfhost.platform.swarm_stacks stack into the compose file deployed
version_added: "0.1.0"
description:
  - Returns a copy of a stack's compose definition, changed as follows.
  - "Secrets are mapped to their current versions. A service names a secret by its plain name
    (C(secrets: [db_password])); every secret of O(secret_names) the stack lists, declares or a
    service uses becomes the top-level C(db_password: {external: true, name: db_password_v3}), so the
    file in the container stays C(/run/secrets/db_password) while a rotation changes the service's
    spec (and Swarm rolls the tasks). Top-level secrets with a C(file) are left alone."
  - The O(deploy_defaults) are merged into every service's C(deploy) section, key by key
    (C(update_config), C(rollback_config), C(restart_policy)); what the stack sets wins.
  - With O(encrypt_networks), C(driver_opts.encrypted) is set on every overlay network the stack
    defines (and on its C(default) network) unless the stack sets C(encrypted) itself.
  - C(version) is set to C(3.8) when missing.
options:
  _input:
    description: The stack's compose definition (a mapping, already rendered from a template).
    type: dict
    required: true
  secret_names:
    description: Plain secret name to the versioned name of its current version (C(secret_name) of community.docker.docker_secret).
    type: dict
    default: {}
  stack_secrets:
    description: Secret names the stack lists in its C(secrets) key (declared even when no service names them).
    type: list
    elements: str
    default: []
  deploy_defaults:
    description: Sections merged into each service's C(deploy) (each a mapping; the service's keys win).
    type: dict
    default: {}
  encrypt_networks:
    description: Add C(encrypted) to the C(driver_opts) of the stack's overlay networks.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Write the compose file
  ansible.builtin.copy:
    content: "{{ definition | selfhost.platform.swarm_stack_compose(secret_names=versions, deploy_defaults=defaults) | to_nice_yaml(indent=2) }}"
    dest: /opt/stacks/app/compose.yml
    mode: "0640"
  vars:
    definition:
      services:
        web:
          image: registry.example.org/web:1.4.2
          secrets: [db_password]
    versions: {db_password: db_password_v2}
    defaults:
      update_config: {parallelism: 1, order: start-first, failure_action: rollback}
# -> secrets: {db_password: {external: true, name: db_password_v2}},
#    services.web.deploy.update_config: {parallelism: 1, order: start-first, failure_action: rollback}
"""

RETURN = r"""
_value:
  description: The compose mapping to write and deploy.
  type: dict
"""

import copy

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common._collections_compat import Mapping
from ansible.module_utils.six import string_types


def service_secret_names(service):
    """Plain names of the secrets a service refers to (short or long syntax)."""
    names = []
    for ref in (service or {}).get("secrets") or []:
        if isinstance(ref, string_types):
            names.append(ref)
        elif isinstance(ref, Mapping) and isinstance(ref.get("source"), string_types):
            names.append(ref["source"])
    return names


def swarm_stack_compose(definition, secret_names=None, stack_secrets=None, deploy_defaults=None,
                        encrypt_networks=False):
    """The compose mapping of a stack, secrets mapped to their versions and the deploy defaults merged."""
    if not isinstance(definition, Mapping):
        raise AnsibleFilterError("swarm_stack_compose: the stack definition must be a mapping, got %r" % (definition,))
    secret_names = dict(secret_names or {})
    compose = copy.deepcopy(dict(definition))
    compose.setdefault("version", "3.8")
    services = compose.get("services") or {}
    if not isinstance(services, Mapping):
        raise AnsibleFilterError("swarm_stack_compose: services must be a mapping of service names")

    top = dict(compose.get("secrets") or {})
    used = list(top) + list(stack_secrets or [])
    for service in services.values():
        used.extend(service_secret_names(service))
    for name in used:
        declared = top.get(name)
        if isinstance(declared, Mapping) and "file" in declared:
            continue
        if name in secret_names:
            top[name] = {"external": True, "name": secret_names[name]}
    if top:
        compose["secrets"] = top

    for name, service in services.items():
        service = dict(service or {})
        deploy = dict(service.get("deploy") or {})
        for key, default in (deploy_defaults or {}).items():
            if isinstance(default, Mapping) and isinstance(deploy.get(key, {}), Mapping):
                merged = dict(default)
                merged.update(deploy.get(key) or {})
                deploy[key] = merged
            else:
                deploy.setdefault(key, default)
        service["deploy"] = deploy
        services[name] = service
    compose["services"] = dict(services)

    if encrypt_networks:
        networks = dict(compose.get("networks") or {})
        networks.setdefault("default", {})
        for name, network in networks.items():
            network = dict(network or {})
            if network.get("external") or network.get("driver", "overlay") != "overlay":
                networks[name] = network
                continue
            opts = dict(network.get("driver_opts") or {})
            opts.setdefault("encrypted", "")
            network["driver_opts"] = opts
            networks[name] = network
        compose["networks"] = networks
    return compose


class FilterModule(object):
    """selfhost.platform swarm filters."""

    def filters(self):
        return {"swarm_stack_compose": swarm_stack_compose}
