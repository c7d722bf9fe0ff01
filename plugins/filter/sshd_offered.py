# -*- coding: utf-8 -*-
# Copyright: selfhost.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep the algorithms of an sshd crypto profile that the installed OpenSSH offers."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: sshd_offered
short_description: Keep the algorithms of an sshd crypto profile that the installed OpenSSH offers
version_added: "0.1.0"
description:
  - Takes a dictionary of sshd_config algorithm keywords (V(kexalgorithms), V(ciphers), V(macs),
    V(hostkeyalgorithms), V(pubkeyacceptedalgorithms), V(casignaturealgorithms)), each a list in
    preference order, and keeps in each list only what the installed OpenSSH offers, in the same
    order. One profile then fits every OpenSSH release, and nothing unknown is written to sshd_config.
  - What OpenSSH offers is the RV(selfhost.platform.sshd_effective_config#module:algorithms) result
    of the P(selfhost.platform.sshd_effective_config#module) module (C(ssh -Q kex|cipher|mac|key-sig)).
  - The same function the module's O(selfhost.platform.sshd_effective_config#module:offered_only)
    option uses, so the role and the module cannot disagree.
  - Keywords that are not algorithm lists, or whose C(ssh -Q) list is not given, are returned unchanged.
options:
  _input:
    description: Keyword to a list of algorithms, most preferred first.
    type: dict
    required: true
  offered:
    description: C(ssh -Q) query name (V(kex), V(cipher), V(mac), V(key_sig)) to the algorithms offered.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Read what OpenSSH offers
  selfhost.platform.sshd_effective_config:
    algorithms: true
  register: sshd_state

- name: Keep the profile's algorithms this OpenSSH has
  ansible.builtin.set_fact:
    sshd_algorithms: >-
      {{ {'kexalgorithms': ['mlkem768x25519-sha256', 'curve25519-sha256'], 'ciphers': ['chacha20-poly1305@openssh.com']}
         | selfhost.platform.sshd_offered(sshd_state.algorithms) }}
  # OpenSSH 9.2: {'kexalgorithms': ['curve25519-sha256'], 'ciphers': ['chacha20-poly1305@openssh.com']}
"""

RETURN = r"""
_value:
  description: The same keywords, each list limited to the offered algorithms, order kept.
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common._collections_compat import Mapping

from ansible_collections.selfhost.platform.plugins.module_utils.sshd import offered_only


def sshd_offered(wanted, offered):
    """Return wanted with each algorithm list limited to what offered lists."""
    if not isinstance(wanted, Mapping):
        raise AnsibleFilterError("sshd_offered: the input must be a dictionary, got %r" % (wanted,))
    if not isinstance(offered, Mapping):
        raise AnsibleFilterError("sshd_offered: offered must be a dictionary of ssh -Q lists, got %r" % (offered,))
    for key, value in wanted.items():
        if not isinstance(value, (list, tuple)):
            raise AnsibleFilterError("sshd_offered: %s must be a list of algorithms, got %r" % (key, value))
    return offered_only(dict((key, list(value)) for key, value in wanted.items()),
                        dict((key, list(value)) for key, value in offered.items()))


class FilterModule(object):
    """The sshd_offered filter."""

    def filters(self):
        return {"sshd_offered": sshd_offered}
