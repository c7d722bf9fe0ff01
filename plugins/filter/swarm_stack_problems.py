# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""List what is wrong with swarm_stacks and swarm_stacks_secrets (one message per problem)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: swarm_stack_problems
short_description: List the problems of selfhost.platform.swarm_stacks stacks and secrets
version_added: "0.1.0"
description:
  - Checks what the argument spec of the swarm_stacks role cannot check and returns one message
    per problem, each naming the variable, the value and the reason.
  - Stacks need a unique name of lowercase letters, digits, C(-) and C(_), and (unless
    C(state=absent)) exactly one of C(definition) and C(template).
  - In the services of present stacks (O(rendered) gives the definitions of template stacks),
    refused are an image without a tag or digest or tagged C(latest) (a rollback needs the old
    image to be a fixed one), a service without a C(healthcheck) C(test) unless it sets
    C(healthcheck.disable=true) (a rolling update without health cannot tell a broken version),
    and an C(update_config.failure_action) other than C(rollback) or C(pause).
  - Secrets need unique names of letters, digits, C(.), C(_) and C(-), a non-empty string value
    (never shown), and no name may be another's name followed by C(_v) (community.docker.docker_secret
    treats C(<name>_v*) as that secret's versions and would delete it).
  - A present stack may use (in its C(secrets) list or in a service's C(secrets)) only present
    secrets of O(secrets), or secrets its definition declares with a C(file).
options:
  _input:
    description: The stacks (C(swarm_stacks)).
    type: list
    elements: dict
    required: true
  secrets:
    description: The secrets (C(swarm_stacks_secrets)).
    type: list
    elements: dict
    default: []
  rendered:
    description: Stack name to the definition rendered from its C(template).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Check the stacks and secrets
  ansible.builtin.assert:
    that: __problems | length == 0
    fail_msg: "{{ __problems | join(' ') }}"
    quiet: true
  vars:
    __problems: "{{ swarm_stacks | selfhost.platform.swarm_stack_problems(swarm_stacks_secrets) }}"
"""

RETURN = r"""
_value:
  description: One message per problem; empty when all is valid.
  type: list
  elements: str
"""

import json
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common._collections_compat import Mapping, Sequence
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import string_types

STACK_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\Z")
SECRET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
FAILURE_ACTIONS = ("rollback", "pause")


def _json(value):
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return to_text(value)


def image_problem(image):
    """Why an image reference is refused, or None."""
    if not isinstance(image, string_types) or not image:
        return "has no image"
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag or digest (%s); pin a version (name:1.2.3 or name@sha256:...)" % image
    if last.rsplit(":", 1)[1] == "latest":
        return "is tagged latest (%s); pin a version so a rollback returns to a known image" % image
    return None


def _service_secrets(service):
    names = []
    for ref in service.get("secrets") or []:
        if isinstance(ref, string_types):
            names.append(ref)
        elif isinstance(ref, Mapping) and "source" in ref:
            names.append(to_text(ref["source"]))
    return names


def _service_problems(stack, name, service):
    where = "swarm_stacks: stack %s service %s" % (_json(stack), _json(name))
    if not isinstance(service, Mapping):
        return ["%s is not a mapping." % where]
    problems = []
    why = image_problem(service.get("image"))
    if why:
        problems.append("%s %s." % (where, why))
    health = service.get("healthcheck")
    if not isinstance(health, Mapping) or not (health.get("disable") is True or health.get("test")):
        problems.append("%s has no healthcheck test: Swarm could not tell a broken version during a rolling"
                        " update. Add healthcheck.test (or healthcheck.disable: true on purpose)." % where)
    deploy = service.get("deploy") or {}
    action = (deploy.get("update_config") or {}).get("failure_action", "rollback") if isinstance(deploy, Mapping) else None
    if action not in FAILURE_ACTIONS:
        problems.append("%s: deploy.update_config.failure_action=%s; only rollback or pause keep a failed"
                        " update from spreading (continue does not)." % (where, _json(action)))
    return problems


def _secret_problems(secrets):
    problems = []
    names = []
    for secret in secrets:
        if not isinstance(secret, Mapping) or not isinstance(secret.get("name"), string_types):
            problems.append("swarm_stacks_secrets: an item without a name (items are {name, value[, state]}).")
            continue
        name = secret["name"]
        names.append(name)
        if not SECRET_NAME.match(name):
            problems.append("swarm_stacks_secrets: name %s must be letters, digits, '.', '_' and '-'." % _json(name))
        if secret.get("state", "present") not in ("present", "absent"):
            problems.append("swarm_stacks_secrets: %s has state %s (present or absent)." % (name, _json(secret.get("state"))))
        if secret.get("state", "present") == "present":
            value = secret.get("value")
            if not isinstance(value, string_types) or value == "":
                problems.append("swarm_stacks_secrets: %s needs a non-empty string value (from ansible-vault)." % name)
    for name in sorted(set(names)):
        if names.count(name) > 1:
            problems.append("swarm_stacks_secrets: the name %s appears %d times; names must be unique." % (name, names.count(name)))
        for other in sorted(set(names)):
            if other != name and other.startswith(name + "_v"):
                problems.append("swarm_stacks_secrets: %s starts with %s_v, which the versions of %s are named"
                                " (%s_v1, _v2...); rename one." % (other, name, name, name))
    return problems


def swarm_stack_problems(stacks, secrets=None, rendered=None):
    """One message per problem in the stacks and the secrets."""
    secrets = secrets or []
    rendered = rendered or {}
    for value, what in ((stacks, "swarm_stacks"), (secrets, "swarm_stacks_secrets")):
        if isinstance(value, (string_types, Mapping)) or not isinstance(value, Sequence):
            raise AnsibleFilterError("swarm_stack_problems: %s must be a list, got %r" % (what, value))
    problems = _secret_problems(secrets)
    present_secrets = set(s["name"] for s in secrets
                          if isinstance(s, Mapping) and s.get("state", "present") == "present" and "name" in s)
    names = [s.get("name") for s in stacks if isinstance(s, Mapping)]
    for stack in stacks:
        if not isinstance(stack, Mapping) or not isinstance(stack.get("name"), string_types):
            problems.append("swarm_stacks: %s is not a stack (a mapping with a name)." % _json(stack))
            continue
        name = stack["name"]
        if not STACK_NAME.match(name):
            problems.append("swarm_stacks: name %s must be lowercase letters, digits, - and _, starting with a"
                            " letter or digit." % _json(name))
        if names.count(name) > 1:
            problems.append("swarm_stacks: the name %s appears %d times; names must be unique." % (_json(name), names.count(name)))
        if stack.get("state", "present") == "absent":
            continue
        if ("definition" in stack) == ("template" in stack):
            problems.append("swarm_stacks: stack %s needs exactly one of definition (a mapping) and template"
                            " (a file on the controller)." % _json(name))
            continue
        definition = stack["definition"] if "definition" in stack else rendered.get(name)
        if not isinstance(definition, Mapping) or not isinstance(definition.get("services"), Mapping) \
                or not definition["services"]:
            problems.append("swarm_stacks: stack %s has no services (its %s must be a compose mapping with"
                            " services)." % (_json(name), "definition" if "definition" in stack else "template"))
            continue
        file_secrets = set(k for k, v in (definition.get("secrets") or {}).items() if isinstance(v, Mapping) and "file" in v)
        used = list(stack.get("secrets") or [])
        for service_name, service in definition["services"].items():
            problems.extend(_service_problems(name, service_name, service))
            if isinstance(service, Mapping):
                used.extend(_service_secrets(service))
        for secret in sorted(set(used) - present_secrets - file_secrets):
            problems.append("swarm_stacks: stack %s uses the secret %s, which is not a present item of"
                            " swarm_stacks_secrets." % (_json(name), _json(secret)))
    return problems


class FilterModule(object):
    """selfhost.platform swarm filters."""

    def filters(self):
        return {"swarm_stack_problems": swarm_stack_problems}
