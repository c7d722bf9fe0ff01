#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.platform maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: dpkg_statoverride
short_description: Record owner and mode of packaged files with dpkg-statoverride, so upgrades keep them
version_added: 0.1.0
description:
  - Sets the owner, group and mode of files that belong to packages (C(/usr/bin/gcc), say) and records
    them in dpkg's override database with C(dpkg-statoverride --update --add), so a later upgrade of the
    package does not put the old permissions back, as a plain M(ansible.builtin.file) change would.
  - Reads the recorded overrides and the files' current attributes first and changes only what differs;
    an override recorded with other values is replaced.
  - With O(state=absent) the overrides are removed; the files keep their current attributes until the
    package is next upgraded.
author:
  - selfhost.platform maintainers (@selfhost-platform)
options:
  paths:
    description: Files to handle.
    type: list
    elements: path
    required: true
  owner:
    description: Owner name recorded and set. Required with O(state=present).
    type: str
  group:
    description: Group name recorded and set. Required with O(state=present).
    type: str
  mode:
    description: Octal mode recorded and set (V(0750)). Required with O(state=present).
    type: str
  state:
    description: V(present) records and applies the override, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  follow:
    description:
      - Resolve symbolic links first and handle the file they point to (C(/usr/bin/cc) is a chain of
        alternatives ending at C(/usr/bin/x86_64-linux-gnu-gcc-12)). Targets reached twice are handled once.
    type: bool
    default: true
  ignore_missing:
    description: Skip paths that do not exist (a compiler that is not installed) instead of failing.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports what would change; runs no C(dpkg-statoverride) command that writes.
  diff_mode:
    support: none
    description: Returns no diff; RV(changed_paths) lists the files that change.
  platform:
    support: full
    platforms: debian
    description: Hosts with dpkg (Debian, Ubuntu).
notes:
  - No module of ansible.builtin, community.general or ansible.posix manages dpkg's stat overrides
    (M(community.general.dpkg_divert) handles diversions, a different dpkg database).
seealso:
  - module: ansible.builtin.file
  - module: community.general.dpkg_divert
'''

EXAMPLES = r'''
- name: Let only root run the compilers that are installed
  selfhost.platform.dpkg_statoverride:
    paths: [/usr/bin/as, /usr/bin/cc, /usr/bin/gcc]
    owner: root
    group: root
    mode: "0750"
    ignore_missing: true

- name: Forget the override of gcc (its next upgrade restores the packaged mode)
  selfhost.platform.dpkg_statoverride:
    paths: [/usr/bin/gcc]
    state: absent
'''

RETURN = r'''
changed_paths:
  description: Files whose override or attributes were changed (or would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [/usr/bin/x86_64-linux-gnu-as]
skipped_paths:
  description: Paths of O(paths) that do not exist, with O(ignore_missing=true).
  returned: always
  type: list
  elements: str
  sample: [/usr/bin/clang]
'''

import grp
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule


def read_override(module, binary, path):
    """The recorded (owner, group, mode) of path, or None when dpkg has no override for it."""
    rc, out, err = module.run_command([binary, '--list', path])
    if rc == 1 and not out.strip():
        return None
    if rc != 0:
        module.fail_json(msg='dpkg-statoverride --list {0} failed: {1}'.format(path, err.strip() or out.strip()))
    fields = out.split()
    if len(fields) < 4:
        module.fail_json(msg='dpkg-statoverride --list {0}: unexpected output {1!r}'.format(path, out))
    return fields[0], fields[1], int(fields[2], 8)


def current_attributes(path):
    """The file's (owner, group, mode) as names and an integer mode."""
    info = os.stat(path)
    try:
        owner = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        owner = '#%d' % info.st_uid
    try:
        group = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        group = '#%d' % info.st_gid
    return owner, group, stat.S_IMODE(info.st_mode)


def targets(module):
    """(files to handle, missing paths), each target once, in the order given."""
    seen, found, missing = set(), [], []
    for path in module.params['paths']:
        if not os.path.exists(path):
            if not module.params['ignore_missing']:
                module.fail_json(msg='{0} does not exist (ignore_missing=true skips such paths)'.format(path))
            missing.append(path)
            continue
        target = os.path.realpath(path) if module.params['follow'] else os.path.normpath(path)
        if target not in seen:
            seen.add(target)
            found.append(target)
    return found, missing


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type='list', elements='path', required=True),
            owner=dict(type='str'),
            group=dict(type='str'),
            mode=dict(type='str'),
            state=dict(type='str', default='present', choices=['present', 'absent']),
            follow=dict(type='bool', default=True),
            ignore_missing=dict(type='bool', default=False),
        ),
        required_if=[('state', 'present', ('owner', 'group', 'mode'))],
        supports_check_mode=True,
    )
    params = module.params
    wanted = None
    if params['state'] == 'present':
        try:
            wanted = (params['owner'], params['group'], int(params['mode'], 8))
        except ValueError:
            module.fail_json(msg='mode must be an octal number such as 0750, not {0!r}'.format(params['mode']))
    binary = module.get_bin_path('dpkg-statoverride', required=True)
    files, missing = targets(module)
    changed_paths = []
    for path in files:
        recorded = read_override(module, binary, path)
        if params['state'] == 'absent':
            if recorded is None:
                continue
            changed_paths.append(path)
            if not module.check_mode:
                module.run_command([binary, '--remove', path], check_rc=True)
            continue
        if recorded == wanted and current_attributes(path) == wanted:
            continue
        changed_paths.append(path)
        if module.check_mode:
            continue
        if recorded is not None:
            module.run_command([binary, '--remove', path], check_rc=True)
        module.run_command([binary, '--update', '--add', wanted[0], wanted[1], '%04o' % wanted[2], path],
                           check_rc=True)
    module.exit_json(changed=bool(changed_paths), changed_paths=changed_paths, skipped_paths=missing)


if __name__ == '__main__':
    main()
