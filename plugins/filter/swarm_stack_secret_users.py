# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which stacks of swarm_stacks use a secret."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: swarm_stack_secret_users
short_description: The present stacks of selfhost.platform.swarm_stacks that use a secret
version_added: "0.1.0"
description:
  - Returns the present stacks (the items themselves) that list the secret in their C(secrets)
    key, declare it at the top of their definition, or name it in a service's C(secrets)
    (short or long syntax).
options:
  _input:
    description: The stacks (C(swarm_stacks)).
    type: list
    elements: dict
    required: true
  secret:
    description: The secret's plain name.
    type: str
    required: true
  rendered:
    description: Stack name to the definition rendered from its C(template).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Deploy only the stacks that use db_password
  ansible.builtin.set_fact:
    swarm_stacks: "{{ swarm_stacks | selfhost.platform.swarm_stack_secret_users('db_password') }}"
"""

RETURN = r"""
_value:
  description: The stacks using the secret, in list order.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common._collections_compat import Mapping, Sequence
from ansible.module_utils.six import string_types


def _uses(definition, secret):
    if not isinstance(definition, Mapping):
        return False
    if secret in (definition.get("secrets") or {}):
        return True
    for service in (definition.get("services") or {}).values():
        for ref in (service or {}).get("secrets") or []:
            if ref == secret or (isinstance(ref, Mapping) and ref.get("source") == secret):
                return True
    return False


def swarm_stack_secret_users(stacks, secret, rendered=None):
    """The present stacks that use the secret."""
    if isinstance(stacks, (string_types, Mapping)) or not isinstance(stacks, Sequence):
        raise AnsibleFilterError("swarm_stack_secret_users: the stacks must be a list, got %r" % (stacks,))
    rendered = rendered or {}
    users = []
    for stack in stacks:
        if not isinstance(stack, Mapping) or stack.get("state", "present") != "present":
            continue
        definition = stack.get("definition", rendered.get(stack.get("name")))
        if secret in (stack.get("secrets") or []) or _uses(definition, secret):
            users.append(stack)
    return users


class FilterModule(object):
    """selfhost.platform swarm filters."""

    def filters(self):
        return {"swarm_stack_secret_users": swarm_stack_secret_users}
