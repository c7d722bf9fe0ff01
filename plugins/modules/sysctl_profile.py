#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.platform maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: sysctl_profile
short_description: Manage one sysctl.d file with many keys and apply them live where allowed
version_added: 0.1.0
description:
  - Writes one file (usually under C(/etc/sysctl.d)) holding many C(key = value) lines, so a role
    manages its kernel settings as a unit instead of one task per key.
  - Then writes each value to C(/proc/sys) directly, key by key, instead of running C(sysctl -p).
    A key the kernel refuses (read-only C(/proc/sys) inside a container, a missing capability,
    a key unknown to this kernel, a value the kernel rejects) is reported in RV(skipped_keys) with the
    reason and does not make the module fail.
  - Live values are compared with whitespace collapsed, so C(32768 60999) matches what the
    kernel prints with a tab between the two numbers.
author:
  - selfhost.platform maintainers (@selfhost-platform)
options:
  path:
    description:
      - Path of the sysctl.d file to manage, for example C(/etc/sysctl.d/60-selfhost-base.conf).
      - The directory must already exist.
    type: path
    required: true
  settings:
    description:
      - Mapping of sysctl key to value, written to the file in the given order.
      - Keys use dotted (C(net.ipv4.ip_forward)) or slash (C(net/ipv4/ip_forward)) form.
        In dotted form a C(/) stands for a literal dot inside one name, as with C(sysctl) (for
        example C(net.ipv4.conf.eth0/100.rp_filter) for the interface C(eth0.100)).
      - Values are strings or integers; booleans are refused (write V(1) or V(0)). A value with
        a newline, an empty value, or a key with spaces, globs or C(..) makes the module fail.
      - Required when O(state=present); ignored when O(state=absent).
    type: dict
  header:
    description:
      - Text put at the top of the file as comment lines, for example the value of the
        C(DEFAULT_MANAGED_STR) setting (C(ansible_managed) exists only inside templates).
        Lines already starting with C(#) are kept as they are.
    type: str
  apply:
    description:
      - Whether to apply the values to the running kernel as well as writing the file.
      - When V(false), only the file is managed and RV(applied), RV(unchanged) and RV(skipped_keys)
        are empty.
    type: bool
    default: true
  state:
    description:
      - V(present) writes the file (and applies the values when O(apply=true)).
      - V(absent) removes the file. Live values are B(not) reverted; they return to the
        kernel defaults at the next boot.
    type: str
    choices: [present, absent]
    default: present
  mode:
    description:
      - Permissions of the file, as an octal string. The file is always owned by root when the
        module runs as root.
    type: str
    default: '0644'
attributes:
  check_mode:
    support: full
    description: Computes the file change and which live values would change; writes nothing.
  diff_mode:
    support: full
    description: Shows the file text before and after.
  platform:
    support: full
    platforms: posix
    description: Linux only; the live part needs C(/proc/sys).
notes:
  - Keys are applied by writing to C(/proc/sys) in the order given; C(sysctl --system) and
    C(systemd-sysctl) read the same file at boot.
  - In check mode, whether a live write would be refused is guessed from the access rights of the
    C(/proc/sys) file, so a value the kernel would reject is reported as applied.
seealso:
  - module: ansible.posix.sysctl
    description: Manages one key per task and reloads with C(sysctl -p).
'''

EXAMPLES = r'''
- name: Write and apply the base performance settings
  selfhost.platform.sysctl_profile:
    path: /etc/sysctl.d/60-selfhost-base.conf
    header: "{{ lookup('ansible.builtin.config', 'DEFAULT_MANAGED_STR') }}"
    settings:
      vm.swappiness: 10
      net.core.somaxconn: 4096
      net.ipv4.ip_local_port_range: "10240 65000"
  register: base_sysctl

- name: Say which keys the kernel did not take (expected inside a container)
  ansible.builtin.debug:
    msg: "{{ item.key }} wanted {{ item.wanted }}: {{ item.reason }}"
  loop: "{{ base_sysctl.skipped_keys }}"
  loop_control:
    label: "{{ item.key }}"

- name: Only write the file, apply at next boot
  selfhost.platform.sysctl_profile:
    path: /etc/sysctl.d/60-selfhost-hardening.conf
    settings:
      kernel.kptr_restrict: 2
    apply: false

- name: Remove the profile (live values stay until reboot)
  selfhost.platform.sysctl_profile:
    path: /etc/sysctl.d/60-selfhost-base.conf
    state: absent
'''

RETURN = r'''
path:
  description: Path of the managed file.
  returned: always
  type: str
  sample: /etc/sysctl.d/60-selfhost-base.conf
file_changed:
  description: Whether the file content, mode or owner was changed (or removed), or would be in check mode.
  returned: always
  type: bool
  sample: true
applied:
  description: Keys whose live value was changed (or would be in check mode).
  returned: always
  type: list
  elements: str
  sample: [net.core.somaxconn]
unchanged:
  description: Keys whose live value already matched.
  returned: always
  type: list
  elements: str
  sample: [vm.swappiness]
overridden_at_boot:
  description:
    - Keys of this file that a file applied after it at boot sets to another value, so the
      kernel would not keep this file's value after a reboot. systemd-sysctl applies the
      C(*.conf) files of C(/etc/sysctl.d), C(/run/sysctl.d), C(/usr/local/lib/sysctl.d) and
      C(/usr/lib/sysctl.d) sorted by file name (letters after digits), the last value wins.
    - Only reported; the caller decides (rename the file so it sorts last, or take the other value).
  returned: when O(state=present)
  type: list
  elements: dict
  contains:
    key:
      description: The key as given.
      type: str
      returned: always
    wanted:
      description: The value this file sets.
      type: str
      returned: always
    value:
      description: The value the later file sets.
      type: str
      returned: always
    file:
      description: The last file applied at boot that sets the key.
      type: str
      returned: always
  sample:
    - key: fs.protected_fifos
      wanted: "2"
      value: "1"
      file: /usr/lib/sysctl.d/protect-links.conf
skipped_keys:
  description:
    - Keys whose live value could not be read or written, with the reason. The file still holds them.
    - Not named C(skipped) because Ansible reads a true C(skipped) in a result as "the task was skipped".
  returned: always
  type: list
  elements: dict
  contains:
    key:
      description: The key as given.
      type: str
      returned: always
    wanted:
      description: The value asked for.
      type: str
      returned: always
    current:
      description: The live value, whitespace-normalized, or V(null) when it cannot be read.
      type: str
      returned: always
    reason:
      description: Why the key was skipped.
      type: str
      returned: always
  sample:
    - key: vm.swappiness
      wanted: "10"
      current: "60"
      reason: read-only here (container or missing capability)
    - key: net.ipv4.tcp_fastopen_blackhole_timeout_sec
      wanted: "0"
      current: null
      reason: unknown to this kernel
'''

import errno
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible_collections.selfhost.platform.plugins.module_utils import sysctl as sysctl_utils
from ansible_collections.selfhost.platform.plugins.module_utils.sysctl import (
    SysctlError,
    can_write,
    canonical_key,
    classify_error,
    normalize,
    read_value,
    render,
    validate_key,
    value_to_text,
    write_value,
)


def _read_file(path):
    """Current file text, or None when it does not exist."""
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', errors='replace')
    except IOError as err:
        if err.errno == errno.ENOENT:
            return None
        raise


def _prepare(module, settings):
    """Validate every key and value before anything is touched; fail on the first bad one."""
    prepared = []
    seen = {}
    for key, value in settings.items():
        try:
            validate_key(key)
            text = value_to_text(key, value)
            name = canonical_key(key)
        except SysctlError as err:
            module.fail_json(msg=to_native(err), key=key)
        if name in seen:
            module.fail_json(
                msg='sysctl keys {0!r} and {1!r} name the same setting'.format(seen[name], key), key=key)
        seen[name] = key
        prepared.append((key, text))
    return prepared


def _write_file(module, path, content):
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(prefix='.sysctl_profile.', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(to_bytes(content))
        module.atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _set_attributes(module, path, mode, changed):
    changed = module.set_mode_if_different(path, mode, changed)
    if os.geteuid() == 0:
        changed = module.set_owner_if_different(path, 'root', changed)
        changed = module.set_group_if_different(path, 'root', changed)
    return changed


def _apply(module, prepared, proc_root):
    """Bring live values in line; return (applied, unchanged, skipped, live_changed)."""
    applied, unchanged, skipped = [], [], []
    live_changed = False
    for key, wanted in prepared:
        want = normalize(wanted)
        try:
            current = read_value(key, proc_root)
        except (IOError, OSError) as err:
            skipped.append(dict(key=key, wanted=wanted, current=None, reason=classify_error(err, 'read')))
            continue
        if current == want:
            unchanged.append(key)
            continue
        if module.check_mode:
            if can_write(key, proc_root):
                applied.append(key)
            else:
                skipped.append(dict(key=key, wanted=wanted, current=current,
                                    reason=sysctl_utils.REASON_READ_ONLY))
            continue
        try:
            write_value(key, wanted, proc_root)
        except (IOError, OSError) as err:
            skipped.append(dict(key=key, wanted=wanted, current=current, reason=classify_error(err, 'write')))
            continue
        try:
            after = read_value(key, proc_root)
        except (IOError, OSError):
            after = None
        if after == want:
            applied.append(key)
            live_changed = True
        else:
            live_changed = live_changed or after != current
            # The write went through but the kernel kept or adjusted the value: report it
            # instead of claiming success (and instead of changing it again on every run).
            skipped.append(dict(key=key, wanted=wanted, current=after,
                                reason='{0}: the kernel reports {1!r} after the write'.format(
                                    sysctl_utils.REASON_REJECTED, after)))
    if module.check_mode:
        live_changed = bool(applied)
    return applied, unchanged, skipped, live_changed


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            settings=dict(type='dict'),
            header=dict(type='str'),
            apply=dict(type='bool', default=True),
            state=dict(type='str', default='present', choices=['present', 'absent']),
            mode=dict(type='str', default='0644'),
        ),
        required_if=[('state', 'present', ['settings'])],
        supports_check_mode=True,
    )
    path = module.params['path']
    state = module.params['state']
    proc_root = sysctl_utils.PROC_ROOT

    result = dict(changed=False, file_changed=False, applied=[], unchanged=[], skipped_keys=[], path=path)

    if os.path.isdir(path):
        module.fail_json(msg='{0} is a directory, expected a file path'.format(path), **result)

    try:
        before = _read_file(path)
    except (IOError, OSError) as err:
        module.fail_json(msg='cannot read {0}: {1}'.format(path, to_native(err)), **result)

    if state == 'absent':
        if before is not None:
            result['file_changed'] = True
            if not module.check_mode:
                try:
                    os.unlink(path)
                except OSError as err:
                    module.fail_json(msg='cannot remove {0}: {1}'.format(path, to_native(err)), **result)
        result['changed'] = result['file_changed']
        if module._diff:
            result['diff'] = dict(before=before or '', after='', before_header=path, after_header=path)
        module.exit_json(**result)

    prepared = _prepare(module, module.params['settings'])
    content = render(prepared, module.params['header'])

    directory = os.path.dirname(path) or '.'
    if not os.path.isdir(directory):
        module.fail_json(msg='directory {0} does not exist'.format(directory), **result)

    file_changed = before != content
    if file_changed and not module.check_mode:
        try:
            _write_file(module, path, content)
        except (IOError, OSError) as err:
            module.fail_json(msg='cannot write {0}: {1}'.format(path, to_native(err)), **result)
    if os.path.exists(path):
        # Mode and owner of the file; honours check mode itself.
        file_changed = _set_attributes(module, path, module.params['mode'], file_changed)
    result['file_changed'] = file_changed

    live_changed = False
    if module.params['apply']:
        applied, unchanged, skipped, live_changed = _apply(module, prepared, proc_root)
        result.update(applied=applied, unchanged=unchanged, skipped_keys=skipped)

    result['overridden_at_boot'] = sysctl_utils.overridden_at_boot(path, prepared)
    result['changed'] = bool(file_changed or live_changed)
    if module._diff:
        result['diff'] = dict(before=before or '', after=content, before_header=path, after_header=path)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
