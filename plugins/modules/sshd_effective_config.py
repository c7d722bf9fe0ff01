#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: sshd_effective_config
short_description: Return the effective OpenSSH server configuration and check it against expected values
version_added: 0.1.0
description:
  - Runs C(sshd -T), which prints the configuration sshd would really use after
    C(Include) files, drop-ins, defaults and (with O(connection)) C(Match) blocks are applied,
    and returns it as a dictionary.
  - With O(expect), compares chosen keys with expected values and fails with one line per
    mismatch, so a play can prove that no drop-in file or default overrides a hardening setting.
  - Also returns the OpenSSH version (from C(sshd -V)) and, with O(algorithms=true),
    the algorithms the installed OpenSSH supports (from C(ssh -Q)).
  - The module only reads; it never changes the host.
author:
  - selfhost.platform maintainers (@selfhost-platform)
attributes:
  check_mode:
    support: full
    description: The module only reads, so it runs unchanged in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
options:
  config_file:
    description:
      - Configuration file to test (C(sshd -f)). The default is sshd's own, C(/etc/ssh/sshd_config).
    type: path
  connection:
    description:
      - Connection parameters for C(sshd -T -C), so that C(Match) blocks are evaluated for them.
      - OpenSSH older than 8.x needs O(connection.user), O(connection.host) and O(connection.addr) together.
    type: dict
    suboptions:
      user:
        description: User name of the connection.
        type: str
      host:
        description: Host name the connection comes from.
        type: str
      addr:
        description: Address the connection comes from.
        type: str
      laddr:
        description: Local address the connection arrives on.
        type: str
      lport:
        description: Local port the connection arrives on.
        type: int
      rdomain:
        description: Routing domain of the connection.
        type: str
  expect:
    description:
      - Keys and the values they must have in the effective configuration. Keys are matched
        case-insensitively (V(PermitRootLogin) is V(permitrootlogin)).
      - Booleans are compared as V(yes)/V(no), numbers as their decimal text.
      - For multi-value keys (V(port), V(listenaddress), V(hostkey), V(allowusers), V(allowgroups),
        V(acceptenv), V(subsystem), ...) a scalar or a list is compared as a set of values.
      - For comma-list keys (V(ciphers), V(macs), V(kexalgorithms), V(hostkeyalgorithms), ...) a list
        is compared in order with the split value; a string is compared with the value as printed.
      - Any mismatch fails the module (unless O(fail_on_mismatch=false)); the message names every
        mismatching key.
    type: dict
  match_expect:
    description:
      - More checks in the same call, each evaluated with C(sshd -T -C) for its own connection, so
        that C(Match) blocks apply (a drop-in's C(Match User) that re-enables passwords, say).
      - Runs after O(expect); any mismatch fails the module (unless O(fail_on_mismatch=false)), and the
        message names the connection.
    type: list
    elements: dict
    default: []
    suboptions:
      connection:
        description: Connection parameters, as in O(connection).
        type: dict
        required: true
        suboptions:
          user:
            description: User name of the connection.
            type: str
          host:
            description: Host name the connection comes from.
            type: str
          addr:
            description: Address the connection comes from.
            type: str
          laddr:
            description: Local address the connection arrives on.
            type: str
          lport:
            description: Local port the connection arrives on.
            type: int
          rdomain:
            description: Routing domain of the connection.
            type: str
      expect:
        description: Keys and values that must hold for that connection, compared as in O(expect).
        type: dict
        required: true
  algorithms:
    description:
      - Also return the algorithms the installed OpenSSH supports, from C(ssh -Q kex|cipher|mac|key-sig).
    type: bool
    default: false
  offered_only:
    description:
      - Before comparing, drop from the expected algorithm lists (V(kexalgorithms), V(ciphers), V(macs),
        V(hostkeyalgorithms), V(pubkeyacceptedalgorithms), V(casignaturealgorithms), ...) of O(expect) and
        O(match_expect) every algorithm the installed OpenSSH does not offer (C(ssh -Q)), keeping their order.
      - One profile list then fits several OpenSSH releases, the way a role renders C(sshd_config) from it.
      - Implies O(algorithms=true).
    type: bool
    default: false
  fail_on_mismatch:
    description:
      - When V(false), mismatches with O(expect) and O(match_expect) are only returned (RV(mismatches),
        RV(match_mismatches)) and the module succeeds, so a play can check first and act on the answer.
      - A failing C(sshd -T) still fails the module.
    type: bool
    default: true
  sshd_path:
    description: Path of the sshd binary.
    type: path
    default: /usr/sbin/sshd
notes:
  - C(sshd -T) needs readable host keys and the privilege separation directory (C(/run/sshd)); it fails
    with sshd's own message when they are missing.
  - Multi-value keys are always lists, even with one value. Comma lists are kept as the strings sshd
    prints; split them with P(ansible.builtin.split#filter) if needed. Any other key printed more than
    once also becomes a list.
seealso:
  - name: sshd(8) manual page
    description: The C(-T) and C(-C) options.
    link: https://man.openbsd.org/sshd
'''

EXAMPLES = r'''
- name: Read the effective sshd configuration
  selfhost.platform.sshd_effective_config:
  register: sshd_effective

- name: Show the ports sshd listens on
  ansible.builtin.debug:
    msg: "{{ sshd_effective.config.port }}"

- name: Fail when a drop-in re-enables passwords or root login
  selfhost.platform.sshd_effective_config:
    expect:
      PasswordAuthentication: false
      PermitRootLogin: "no"
      port: 2222
      ciphers:
        - chacha20-poly1305@openssh.com
        - aes256-gcm@openssh.com

- name: Check the configuration that applies to one user connecting from one address
  selfhost.platform.sshd_effective_config:
    connection:
      user: deploy
      host: admin.example.org
      addr: 192.0.2.10
    expect:
      allowtcpforwarding: "no"

- name: Check the global settings and those that apply to one user, in one call
  selfhost.platform.sshd_effective_config:
    expect:
      passwordauthentication: false
    match_expect:
      - connection: {user: deploy, host: client.invalid, addr: 192.0.2.10}
        expect: {passwordauthentication: false, permitrootlogin: "no"}

- name: Check a profile's algorithms against what this OpenSSH offers, without failing
  selfhost.platform.sshd_effective_config:
    expect:
      kexalgorithms: [mlkem768x25519-sha256, sntrup761x25519-sha512, curve25519-sha256]
    offered_only: true
    fail_on_mismatch: false
  register: sshd_check

- name: Test a candidate file and list the supported algorithms
  selfhost.platform.sshd_effective_config:
    config_file: /etc/ssh/sshd_config.candidate
    algorithms: true
  register: sshd_candidate
'''

RETURN = r'''
config:
  description:
    - The effective configuration, keys lower-case as printed by C(sshd -T).
    - Multi-value keys are lists; every other value is a string.
  returned: success
  type: dict
  sample:
    port: ["22"]
    listenaddress: ["0.0.0.0:22", "[::]:22"]
    permitrootlogin: "no"
    passwordauthentication: "no"
    ciphers: "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com"
version:
  description: OpenSSH major.minor version, from C(sshd -V).
  returned: when sshd prints a version
  type: str
  sample: "9.2"
version_string:
  description: The version token as printed, for example C(OpenSSH_9.2p1).
  returned: when sshd prints a version
  type: str
  sample: OpenSSH_9.2p1
algorithms:
  description: Algorithms the installed OpenSSH supports, each a list.
  returned: when O(algorithms=true)
  type: dict
  contains:
    kex:
      description: Key exchange algorithms.
      type: list
      elements: str
    cipher:
      description: Ciphers.
      type: list
      elements: str
    mac:
      description: Message authentication codes.
      type: list
      elements: str
    key_sig:
      description: Host key and public key signature algorithms.
      type: list
      elements: str
mismatches:
  description: Every key whose effective value differs from O(expect) (empty when all match).
  returned: when O(expect) is set
  type: list
  elements: dict
  sample: [{"key": "passwordauthentication", "expected": false, "actual": "yes"}]
match_mismatches:
  description: For every entry of O(match_expect), in order, the keys that differ for that connection.
  returned: when O(match_expect) is not empty
  type: list
  elements: list
  sample: [[{"key": "passwordauthentication", "expected": false, "actual": "yes"}]]
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhost.platform.plugins.module_utils.sshd import (
    compare,
    format_mismatches,
    offered_only,
    parse_sshd_t,
    parse_version,
)

CONNECTION_FIELDS = ('user', 'host', 'addr', 'laddr', 'lport', 'rdomain')
QUERIES = (('kex', 'kex'), ('cipher', 'cipher'), ('mac', 'mac'), ('key_sig', 'key-sig'))


def build_command(sshd, config_file, connection):
    cmd = [sshd, '-T']
    if config_file:
        cmd.extend(['-f', config_file])
    if connection:
        spec = ','.join('%s=%s' % (field, connection[field])
                        for field in CONNECTION_FIELDS if connection.get(field) not in (None, ''))
        if spec:
            cmd.extend(['-C', spec])
    return cmd


def read_algorithms(module):
    ssh = module.get_bin_path('ssh', required=True)
    result = {}
    for name, query in QUERIES:
        rc, out, err = module.run_command([ssh, '-Q', query])
        if rc != 0:
            module.fail_json(msg='ssh -Q %s failed (rc=%d): %s' % (query, rc, (err or out).strip()))
        result[name] = [line.strip() for line in out.splitlines() if line.strip()]
    return result


def connection_options():
    return dict(
        user=dict(type='str'),
        host=dict(type='str'),
        addr=dict(type='str'),
        laddr=dict(type='str'),
        lport=dict(type='int'),
        rdomain=dict(type='str'),
    )


def run_sshd_t(module, cmd, result):
    rc, out, err = module.run_command(cmd)
    if rc != 0:
        module.fail_json(msg='%s failed (rc=%d): %s' % (' '.join(cmd), rc, (err or out).strip()), **result)
    return parse_sshd_t(out)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            config_file=dict(type='path'),
            connection=dict(type='dict', options=connection_options()),
            expect=dict(type='dict'),
            match_expect=dict(type='list', elements='dict', default=[], options=dict(
                connection=dict(type='dict', required=True, options=connection_options()),
                expect=dict(type='dict', required=True),
            )),
            algorithms=dict(type='bool', default=False),
            offered_only=dict(type='bool', default=False),
            fail_on_mismatch=dict(type='bool', default=True),
            sshd_path=dict(type='path', default='/usr/sbin/sshd'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    result = dict(changed=False)

    cmd = build_command(params['sshd_path'], params['config_file'], params['connection'])
    result['config'] = run_sshd_t(module, cmd, result)

    # sshd -V exits 0 on recent OpenSSH; older releases print the version in their usage text.
    dummy, vout, verr = module.run_command([params['sshd_path'], '-V'])
    version, version_string = parse_version('%s\n%s' % (vout, verr))
    if version:
        result['version'] = version
        result['version_string'] = version_string

    if params['algorithms'] or params['offered_only']:
        result['algorithms'] = read_algorithms(module)

    def wanted(expect):
        return offered_only(expect, result['algorithms']) if params['offered_only'] else expect

    if params['expect'] is not None:
        mismatches = compare(result['config'], wanted(params['expect']))
        result['mismatches'] = mismatches
        if mismatches and params['fail_on_mismatch']:
            module.fail_json(
                msg='The effective sshd configuration differs from expect in %d key(s): %s'
                    % (len(mismatches), '; '.join(format_mismatches(mismatches))),
                **result)

    if params['match_expect']:
        result['match_mismatches'] = []
        failures = []
        for check in params['match_expect']:
            cmd = build_command(params['sshd_path'], params['config_file'], check['connection'])
            mismatches = compare(run_sshd_t(module, cmd, result), wanted(check['expect']))
            result['match_mismatches'].append(mismatches)
            if mismatches:
                failures.append('for %s: %s' % (cmd[-1], '; '.join(format_mismatches(mismatches))))
        if failures and params['fail_on_mismatch']:
            module.fail_json(msg='The sshd configuration that applies to a connection differs from expect %s'
                                 % ' | '.join(failures), **result)

    module.exit_json(**result)


if __name__ == '__main__':
    main()
