#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.platform maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: ufw_rules
short_description: Add and remove a list of UFW port rules in one call
version_added: 0.1.0
description:
  - Applies a list of port rules with UFW in B(one) module call, where M(community.general.ufw) takes
    one call per rule. Removals come first, then additions in list order (UFW uses the first match).
  - An absent V(allow) or V(limit) rule is removed in both forms, so the port is closed whichever of
    the two opened it.
  - UFW's own rule files (C(/etc/ufw/user.rules), C(user6.rules)) say which rules are already there;
    C(ufw) runs only for the others, and C(changed) is whether those files differ afterwards, as with
    M(community.general.ufw). A source is compared in the form UFW writes it (C(10.0.0.5/32) as
    C(10.0.0.5)), so check mode predicts no change for a rule in place either.
  - Rules can be added while UFW is inactive; UFW loads them when it is enabled. The module never
    enables, disables or reloads UFW.
author:
  - selfhost.platform maintainers (@selfhost-platform)
attributes:
  check_mode:
    support: full
    description: Reports the rules that would be added or removed, without running C(ufw).
  diff_mode:
    support: partial
    description: The rule lines of UFW's rule files before and after; not in check mode, where nothing runs.
options:
  rules:
    description: The rules, in the order UFW should hold them.
    type: list
    elements: dict
    required: true
    suboptions:
      port:
        description:
          - A port (V(443)) or a range V(6000:6010) (a range needs O(rules[].proto=tcp) or V(udp)).
          - An integer or a string.
        type: raw
        required: true
      proto:
        description: Protocol; V(any) matches both.
        type: str
        choices: [tcp, udp, any]
        default: tcp
      from_ip:
        description: Source address or network in CIDR form, or V(any).
        type: str
        default: any
        aliases: [from]
      comment:
        description: Comment stored with an added rule (no quotes, backslashes or line breaks); not used to remove one.
        type: str
        default: ""
      rule:
        description: UFW action.
        type: str
        choices: [allow, limit, deny, reject]
        default: allow
      state:
        description: V(absent) removes the rule.
        type: str
        choices: [present, absent]
        default: present
      route:
        description: A C(ufw route) rule (forwarded traffic, such as published container ports) instead of an input rule.
        type: bool
        default: false
  missing_ufw:
    description:
      - What to do when UFW is not installed.
      - V(fail) fails; V(skip) changes nothing and says so in a warning and in RV(msg).
    type: str
    choices: [fail, skip]
    default: fail
seealso:
  - module: community.general.ufw
notes:
  - UFW adds the IPv6 form of a rule from V(any) only while C(IPV6=yes) in C(/etc/default/ufw);
    the module reads that setting to know which forms to expect.
'''

EXAMPLES = r'''
- name: Open HTTP and HTTPS, and close an old port however it was opened
  selfhost.platform.ufw_rules:
    rules:
      - { port: 80, comment: nginx }
      - { port: 443, comment: nginx }
      - { port: 8080, state: absent }

- name: Let a published container port through, from the VPN only
  selfhost.platform.ufw_rules:
    rules:
      - { port: 80, from: 10.8.0.0/24, route: true, comment: web container }

- name: Open a port where UFW may not be installed (report, do not fail)
  selfhost.platform.ufw_rules:
    rules:
      - { port: 9100, from: 10.0.0.0/8, comment: node-exporter }
    missing_ufw: skip
'''

RETURN = r'''
commands:
  description: The C(ufw) commands run (in check mode, that would run), in order; rules already in place need none.
  returned: always
  type: list
  elements: str
  sample: ["ufw delete allow from any to any port 8086 proto tcp", "ufw limit from any to any port 22 proto tcp comment SSH"]
ufw_installed:
  description: Whether C(ufw) was found.
  returned: always
  type: bool
  sample: true
msg:
  description: Why nothing was done, when UFW is not installed and O(missing_ufw=skip).
  returned: when UFW is not installed
  type: str
  sample: "UFW is not installed on this host: no packet filter is managed, nothing to open or close for 9100."
'''

import ipaddress
import re
import shlex

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

# Where UFW keeps the rules added with "ufw allow ..." (Debian and Ubuntu), IPv4 and IPv6.
USER_RULES = "/etc/ufw/user.rules"
USER6_RULES = "/etc/ufw/user6.rules"
DEFAULTS_FILE = "/etc/default/ufw"
TUPLE_PREFIX = "### tuple ### "

PORT = re.compile(r"^[0-9]{1,5}(:[0-9]{1,5})?$")
COMMENT = re.compile(r"^[^'\"\\\r\n]{0,200}\Z")

RULE_OPTIONS = dict(
    port=dict(type='raw', required=True),
    proto=dict(type='str', choices=['tcp', 'udp', 'any'], default='tcp'),
    from_ip=dict(type='str', default='any', aliases=['from']),
    comment=dict(type='str', default=''),
    rule=dict(type='str', choices=['allow', 'limit', 'deny', 'reject'], default='allow'),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
    route=dict(type='bool', default=False),
)


def read_lines(path):
    """The lines of a file without line breaks; [] when it cannot be read."""
    try:
        with open(path, 'r') as handle:
            return [line.rstrip('\r\n') for line in handle]
    except (IOError, OSError):
        return []


def read_tuples(path):
    """UFW's rule records: "action proto dport dst sport src direction[ comment=hex]", route ones prefixed "route:"."""
    return [line[len(TUPLE_PREFIX):] for line in read_lines(path) if line.startswith(TUPLE_PREFIX)]


def ipv6_enabled(path=None):
    values = [line.split('=', 1)[1].strip().strip('"\'') for line in read_lines(path or DEFAULTS_FILE)
              if line.startswith('IPV6=')]
    return bool(values) and values[-1].lower() == 'yes'


def rule_problem(rule):
    """Why UFW cannot take the rule, or None."""
    port = rule['port']
    if not PORT.match(port):
        return "port %r is not a port or a range low:high" % port
    bounds = [int(bound) for bound in port.split(':')]
    if bounds[0] < 1 or bounds[-1] > 65535 or (len(bounds) == 2 and bounds[0] >= bounds[1]):
        return "port %s is out of 1-65535 or its range is reversed" % port
    if len(bounds) == 2 and rule['proto'] == 'any':
        return "the port range %s needs proto tcp or udp" % port
    if rule['from_ip'] != 'any':
        try:
            ipaddress.ip_network(to_text(rule['from_ip']))
        except ValueError:
            return "from %r is not any, an address or a network in CIDR form" % rule['from_ip']
    if not COMMENT.match(rule['comment'] or ''):
        return "the comment of port %s has quotes, backslashes or line breaks, or is over 200 characters" % port
    return None


def steps(rules):
    """(action, delete, rule) in the order applied: removals first (allow and limit for an opening), then additions."""
    removals, additions = [], []
    for rule in rules:
        if rule['state'] == 'absent':
            actions = ['allow', 'limit'] if rule['rule'] in ('allow', 'limit') else [rule['rule']]
            removals.extend((action, True, rule) for action in actions)
        else:
            additions.append((rule['rule'], False, rule))
    return removals + additions


def families(rule, ipv6):
    """(family, the address UFW writes for "anywhere") of every form UFW keeps of the rule."""
    source = rule['from_ip']
    out = []
    if source == 'any' or ':' not in source:
        out.append((4, '0.0.0.0/0'))
    if ipv6 and (source == 'any' or ':' in source):
        out.append((6, '::/0'))
    return out


def ufw_address(source):
    """The form UFW writes a source in: a single address without /32 or /128, compressed (IPv6)."""
    network = ipaddress.ip_network(to_text(source))
    return str(network.network_address) if network.prefixlen == network.max_prefixlen else str(network)


def in_place(action, delete, rule, ipv6, tuples):
    """True when UFW's rule files already say what the step asks: nothing for ufw to do."""
    forms = families(rule, ipv6)
    if not forms:
        return False
    for family, anywhere in forms:
        source = anywhere if rule['from_ip'] == 'any' else ufw_address(rule['from_ip'])
        prefix = 'route:' if rule['route'] else ''
        record = "%s%s %s %s %s any %s in" % (prefix, action, rule['proto'], rule['port'], anywhere, source)
        present = tuples[family]
        if delete:
            if any(entry == record or entry.startswith(record + ' comment=') for entry in present):
                return False
        else:
            comment = rule['comment'] or ''
            wanted = record + (' comment=' + comment.encode('utf-8').hex() if comment else '')
            if wanted not in present:
                return False
    return True


def command(ufw, action, delete, rule):
    argv = [ufw]
    if rule['route']:
        argv.append('route')
    if delete:
        argv.append('delete')
    argv += [action, 'from', rule['from_ip'], 'to', 'any', 'port', rule['port']]
    if rule['proto'] != 'any':
        argv += ['proto', rule['proto']]
    if not delete and rule['comment']:
        argv += ['comment', rule['comment']]
    return argv


def main():
    module = AnsibleModule(
        argument_spec=dict(
            rules=dict(type='list', elements='dict', required=True, options=RULE_OPTIONS),
            missing_ufw=dict(type='str', choices=['fail', 'skip'], default='fail'),
        ),
        supports_check_mode=True,
    )
    rules = module.params['rules']
    for rule in rules:
        rule['port'] = to_text(rule['port'])
    problems = ["rules[%d]: %s" % (index, problem) for index, problem in
                ((index, rule_problem(rule)) for index, rule in enumerate(rules)) if problem]
    if problems:
        module.fail_json(msg="Invalid rules: " + "; ".join(problems) + ".", commands=[], ufw_installed=False)

    ufw = module.get_bin_path('ufw')
    if not ufw:
        msg = ("UFW is not installed on this host (selfhost.platform.firewall has not run here): no packet filter "
               "is managed, so there is nothing to open or close for %s." % ', '.join(rule['port'] for rule in rules))
        if module.params['missing_ufw'] == 'fail':
            module.fail_json(msg=msg, commands=[], ufw_installed=False)
        module.warn(msg)
        module.exit_json(changed=False, msg=msg, commands=[], ufw_installed=False)

    before = {4: read_tuples(USER_RULES), 6: read_tuples(USER6_RULES)}
    ipv6 = ipv6_enabled()
    todo = [command(ufw, action, delete, rule) for action, delete, rule in steps(rules)
            if not in_place(action, delete, rule, ipv6, before)]
    commands = [' '.join(shlex.quote(arg) if index else 'ufw' for index, arg in enumerate(argv)) for argv in todo]

    result = dict(commands=commands, ufw_installed=True)
    if module.check_mode:
        module.exit_json(changed=bool(todo), **result)
    for index, argv in enumerate(todo):
        rc, out, err = module.run_command(argv, environ_update={'LANG': 'C', 'LC_ALL': 'C'})
        if rc != 0:
            module.fail_json(msg="%s failed: %s" % (commands[index], (err or out).strip()), rc=rc,
                             stdout=out, stderr=err, commands=commands[:index + 1], ufw_installed=True)
    after = {4: read_tuples(USER_RULES), 6: read_tuples(USER6_RULES)}
    if module._diff:
        result['diff'] = dict(before=''.join(line + '\n' for line in before[4] + before[6]),
                              after=''.join(line + '\n' for line in after[4] + after[6]))
    module.exit_json(changed=after != before, **result)


if __name__ == '__main__':
    main()
