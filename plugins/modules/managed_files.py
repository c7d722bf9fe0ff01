#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.platform maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: managed_files
short_description: Write many small files and directories in one call, each validated before it replaces the old one
version_added: 0.1.0
description:
  - Puts a list of files (with their content) and directories in place in B(one) module call, where
    M(ansible.builtin.template) or M(ansible.builtin.copy) make several remote calls per file. Over a
    slow connection (a C(docker exec) or an SSH round trip per call) a role that writes twenty small
    configuration files spends most of its first converge on those round trips.
  - Content is given as text, usually rendered on the controller with the
    P(ansible.builtin.template#lookup) lookup, so templates keep C(ansible_managed) and every variable.
  - B(Validation first, writes after.) Every file whose content changes is first written to a
    temporary file and checked with its O(files[].validate) command. If any check fails, nothing at
    all is written and the module fails naming each file and the checker's output. Only then are the
    directories created and the files replaced, each atomically (a temporary file in the same
    directory, with the wanted mode and owner, renamed over the old one), in the order given.
  - Mode, owner and group are corrected on entries whose content is already right.
  - A symbolic link at a file's path is replaced by the file, as M(ansible.builtin.copy) does by default.
  - An entry with O(files[].state=absent) removes a file (or symbolic link) in the same validated step, so a
    O(validate_trees) check sees the directory without it, as it will be.
author:
  - selfhost.platform maintainers (@selfhost-platform)
options:
  files:
    description:
      - The files and directories, applied in this order (list a directory before the files in it).
      - Each path may appear once.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path of the file or directory.
        type: path
        required: true
      state:
        description:
          - V(file) writes O(files[].content) to the path.
          - V(directory) creates the directory (and missing parents) when absent.
          - V(permissions) only corrects mode, owner and group of a file or directory that exists
            (a distribution's C(/etc/shadow), C(/etc/cron.d) when cron is installed); an absent
            path is left absent and reported unchanged.
          - V(absent) removes a file or symbolic link (never a directory) after every check passed;
            a tree check of O(validate_trees) sees the copy without it. Nothing to do when it is
            already absent.
        type: str
        choices: [file, directory, permissions, absent]
        default: file
      content:
        description:
          - The whole text of the file. A file needs either this or O(files[].lines).
          - Tasks that pass secrets here must set C(no_log), as with M(ansible.builtin.copy).
        type: str
      lines:
        description:
          - Lines to set in a file that already exists (a distribution's C(/etc/login.defs), say),
            decided the way M(ansible.builtin.lineinfile) decides with O(files[].lines[].regexp)
            and the default C(insertafter=EOF) - the last line matching the regular expression is
            replaced by O(files[].lines[].line); when none matches and the exact line is not
            there either, the line is added at the end.
          - The file must exist; the rest of it is kept as it is.
          - An empty list leaves the content alone and only corrects mode, owner and group of the
            existing file (it fails when the file is absent; O(files[].state=permissions) skips it).
        type: list
        elements: dict
        suboptions:
          regexp:
            description: Python regular expression searched in each line (without its line break).
            type: str
            required: true
          line:
            description: The whole line, without a line break.
            type: str
            required: true
      mode:
        description:
          - Permissions as an octal string (V(0640)) or in symbolic form.
          - Defaults to V(0644) for a file and V(0755) for a directory.
        type: raw
      owner:
        description: Owner name or uid. Kept as it is when not given (a new file gets the module's user).
        type: str
      group:
        description: Group name or gid. Kept as it is when not given (a new file gets the module's group).
        type: str
      validate:
        description:
          - Command that checks the new content before it replaces the file. C(%s) is replaced by the
            path of a temporary copy, as in M(ansible.builtin.copy). The command is split like a shell
            line but not run by a shell.
          - Runs only when the content changes, and not in check mode (the checker may belong to a
            package not installed yet).
        type: str
      backup:
        description: Keep a timestamped copy of a file whose content is replaced.
        type: bool
        default: false
  validate_trees:
    description:
      - Checks of a whole configuration directory with every new file of this call in place, for
        programs whose files are only valid together (a jail file and the daemon settings of
        fail2ban, say), where O(files[].validate) sees one file at a time.
      - Each directory is copied to a temporary directory, the new content of every file under it
        that this call changes is put into the copy, and O(validate_trees[].command) checks the
        copy. Runs with the per-file checks, before anything is written; skipped for a directory
        in which nothing changes, and in check mode.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the live directory to copy.
        type: path
        required: true
      command:
        description:
          - Checking command; C(%s) is replaced by the path of the copy. Split like a shell line,
            not run by a shell.
        type: str
        required: true
attributes:
  check_mode:
    support: full
    description: Reports what would change, with the diff; writes and validates nothing.
  diff_mode:
    support: full
    description: One diff per changed file (content, then mode or owner).
  platform:
    support: full
    platforms: posix
    description: Any POSIX host; owner and group names are resolved there.
notes:
  - The temporary copy that O(files[].validate) checks lives in the module's temporary directory, not
    next to the destination, so a checker that scans the destination's directory (a C(.d) directory)
    does not see it twice.
  - No module of ansible.builtin, community.general or ansible.posix writes several files in one call;
    M(ansible.builtin.copy) with a directory as source still makes one call per file.
seealso:
  - module: ansible.builtin.template
  - module: ansible.builtin.copy
  - module: ansible.builtin.file
'''

EXAMPLES = r'''
- name: Write the AIDE configuration and its timer in one call
  selfhost.platform.managed_files:
    files:
      - path: /etc/aide
        state: directory
        mode: "0755"
        owner: root
        group: root
      - path: /etc/aide/aide.conf
        content: "{{ lookup('ansible.builtin.template', 'aide.conf.j2') }}"
        mode: "0640"
        owner: root
        group: root
        validate: aide --config-check --config=%s
      - path: /etc/systemd/system/aide-check.timer
        content: "{{ lookup('ansible.builtin.template', 'aide-check.timer.j2') }}"
        owner: root
        group: root
  register: aide_files

- name: Reload systemd only when a unit file changed
  ansible.builtin.systemd_service:
    daemon_reload: true
  when: aide_files.changed_paths | select('match', '^/etc/systemd/system/') | list | length > 0

- name: Two fail2ban files that are only valid together, checked as a whole before either is written
  selfhost.platform.managed_files:
    files:
      - path: /etc/fail2ban/jail.d/site.local
        content: "{{ lookup('ansible.builtin.template', 'jail.local.j2') }}"
      - path: /etc/fail2ban/fail2ban.d/site.local
        content: "{{ lookup('ansible.builtin.template', 'fail2ban.local.j2') }}"
    validate_trees:
      - path: /etc/fail2ban
        command: fail2ban-client -c %s --test

- name: A file with a secret in it
  selfhost.platform.managed_files:
    files:
      - path: /etc/restic/env
        content: "RESTIC_PASSWORD={{ vault_restic_password }}\n"
        mode: "0600"
        owner: root
        group: root
  no_log: true
'''

RETURN = r'''
changed_paths:
  description: Paths created or changed (content, mode or owner), or that would be in check mode, in the order given.
  returned: always
  type: list
  elements: str
  sample: [/etc/aide/aide.conf]
files:
  description: What was done for each entry, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The path.
      type: str
      returned: always
    state:
      description: V(file), V(directory), V(permissions) or V(absent).
      type: str
      returned: always
    changed:
      description: Whether anything about this entry changed.
      type: bool
      returned: always
    content_changed:
      description: Whether the file was created, its content replaced or the file removed (always V(false) for a directory).
      type: bool
      returned: always
    backup_file:
      description: Path of the backup copy, when O(files[].backup) made one.
      type: str
      returned: when a backup was made
  sample:
    - {path: /etc/aide, state: directory, changed: false, content_changed: false}
    - {path: /etc/aide/aide.conf, state: file, changed: true, content_changed: true}
'''

import errno
import os
import re
import shlex
import shutil
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text

DEFAULT_MODES = {'file': '0644', 'directory': '0755'}


def _read_bytes(path):
    """Current content of a regular file, None when absent; a directory raises IsADirectoryError."""
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError) as err:
        if err.errno == errno.ENOENT:
            return None
        raise


def set_lines(before, lines):
    """The file's bytes with each wanted line in place, as lineinfile (regexp, insertafter=EOF) does it."""
    text = to_text(before, errors='surrogate_or_strict')
    current = text.splitlines(True)
    for item in lines:
        pattern = re.compile(item['regexp'])
        bare = [existing.rstrip('\r\n') for existing in current]
        matches = [index for index, existing in enumerate(bare) if pattern.search(existing)]
        if matches:
            index = matches[-1]
            if bare[index] != item['line']:
                current[index] = item['line'] + (current[index][len(bare[index]):] or '\n')
        elif item['line'] not in bare:
            if current and not current[-1].endswith('\n'):
                current[-1] += '\n'
            current.append(item['line'] + '\n')
    return to_bytes(''.join(current), errors='surrogate_or_strict')


def _file_args(module, entry, path):
    return module.load_file_common_arguments(
        dict(mode=entry['mode'], owner=entry['owner'], group=entry['group']), path=path)


def _check_input(module, entries, trees):
    """Every problem in the list at once, before anything is read or written."""
    problems = []
    for index, tree in enumerate(trees):
        label = 'validate_trees[{0}] ({1})'.format(index, tree['path'])
        if not os.path.isabs(tree['path']):
            problems.append('{0}: path must be absolute'.format(label))
        if '%s' not in tree['command']:
            problems.append('{0}: command must contain %s (the path of the copy to check)'.format(label))
    seen = set()
    for index, entry in enumerate(entries):
        path = entry['path']
        label = 'files[{0}] ({1})'.format(index, path)
        if not os.path.isabs(path):
            problems.append('{0}: path must be absolute'.format(label))
        normalized = os.path.normpath(path)
        if normalized in seen:
            problems.append('{0}: the path is listed twice'.format(label))
        seen.add(normalized)
        if entry['state'] == 'file' and (entry['content'] is None) == (entry['lines'] is None):
            problems.append('{0}: a file needs either content or lines'.format(label))
        for item in entry['lines'] or []:
            try:
                re.compile(item['regexp'])
            except re.error as err:
                problems.append('{0}: regexp {1!r} does not compile: {2}'.format(label, item['regexp'], err))
            if '\n' in item['line'] or '\r' in item['line']:
                problems.append('{0}: line {1!r} must not contain a line break'.format(label, item['line']))
        if entry['state'] in ('directory', 'permissions', 'absent'):
            for option in ('content', 'lines', 'validate'):
                if entry[option] is not None:
                    problems.append('{0}: {1} applies to files only'.format(label, option))
        if entry['state'] == 'permissions' and entry['mode'] is None:
            problems.append('{0}: state=permissions needs a mode'.format(label))
        if entry['validate'] is not None and '%s' not in entry['validate']:
            problems.append('{0}: validate must contain %s (the path of the copy to check)'.format(label))
    if problems:
        module.fail_json(msg='Bad managed_files input: ' + '; '.join(problems))


def _plan(module, entries):
    """Read what is there; return one plan dict per entry (nothing written)."""
    plans = []
    for entry in entries:
        path = os.path.normpath(entry['path'])
        if entry['mode'] is None and entry['state'] in DEFAULT_MODES:
            entry = dict(entry, mode=DEFAULT_MODES[entry['state']])
        plan = dict(entry=entry, path=path, exists=False, before=None, content_changed=False)
        try:
            info = os.lstat(path)
        except OSError as err:
            if err.errno != errno.ENOENT:
                module.fail_json(msg='cannot read {0}: {1}'.format(path, to_native(err)))
            info = None
        if entry['state'] == 'permissions':
            plan['exists'] = info is not None
        elif entry['state'] == 'absent':
            if info is not None and stat.S_ISDIR(info.st_mode):
                module.fail_json(msg='{0} is a directory: state=absent removes files only'.format(path))
            plan.update(exists=info is not None, content_changed=info is not None)
            if info is not None and stat.S_ISREG(info.st_mode) and module._diff:
                try:
                    plan['before'] = _read_bytes(path)
                except (IOError, OSError) as err:
                    module.fail_json(msg='cannot read {0}: {1}'.format(path, to_native(err)))
        elif entry['state'] == 'directory':
            if info is not None and not stat.S_ISDIR(info.st_mode):
                module.fail_json(msg='{0} exists and is not a directory'.format(path))
            plan['exists'] = info is not None
        else:
            if info is not None and stat.S_ISDIR(info.st_mode):
                module.fail_json(msg='{0} is a directory, expected a file'.format(path))
            before = None
            if info is not None and stat.S_ISREG(info.st_mode):
                try:
                    before = _read_bytes(path)
                except (IOError, OSError) as err:
                    module.fail_json(msg='cannot read {0}: {1}'.format(path, to_native(err)))
            if entry['lines'] is None:
                wanted = to_bytes(entry['content'], errors='surrogate_or_strict')
            elif before is None:
                module.fail_json(msg='{0} does not exist: lines are set in an existing file'.format(path))
            else:
                wanted = set_lines(before, entry['lines'])
            plan.update(exists=before is not None, before=before, wanted=wanted,
                        content_changed=before != wanted)
        plans.append(plan)
    return plans


def _validate(module, plans):
    """Check every changed file's new content; fail naming all that do not pass, before any write."""
    failures, failed_paths = [], []
    for plan in plans:
        entry = plan['entry']
        if not plan['content_changed'] or entry['validate'] is None or entry['state'] == 'absent':
            continue
        fd, candidate = tempfile.mkstemp(prefix='managed_files.', dir=module.tmpdir)
        try:
            with os.fdopen(fd, 'wb') as handle:
                handle.write(plan['wanted'])
            command = entry['validate'].replace('%s', candidate)
            rc, out, err = module.run_command(shlex.split(command))
        finally:
            os.unlink(candidate)
        if rc != 0:
            output = (to_text(err).strip() or to_text(out).strip()).replace(candidate, plan['path'])
            failures.append('{0}: `{1}` exited {2}: {3}'.format(plan['path'], entry['validate'], rc, output))
            failed_paths.append(plan['path'])
    for tree in module.params['validate_trees']:
        root = os.path.normpath(tree['path'])
        members = [plan for plan in plans if plan['path'].startswith(root + os.sep)
                   and (plan['content_changed'] or (plan['entry']['state'] == 'directory' and not plan['exists']))]
        if not members:
            continue
        rc, output = _check_tree(module, root, members, tree['command'])
        if rc != 0:
            failures.append('{0} with {1}: `{2}` exited {3}: {4}'.format(
                root, ', '.join(plan['path'] for plan in members), tree['command'], rc, output))
            failed_paths.append(root)
    if failures:
        module.fail_json(msg='Validation failed, nothing was written: ' + ' | '.join(failures),
                         failed_validation=failed_paths)


def _check_tree(module, root, members, command):
    """Run command on a copy of root holding the new files; return (rc, output naming live paths)."""
    scratch = tempfile.mkdtemp(prefix='managed_files.', dir=module.tmpdir)
    copy = os.path.join(scratch, os.path.basename(root) or 'root')
    try:
        if os.path.isdir(root):
            shutil.copytree(root, copy, symlinks=True)
        else:
            os.makedirs(copy)
        for plan in members:
            target = os.path.join(copy, os.path.relpath(plan['path'], root))
            if plan['entry']['state'] == 'directory':
                if not os.path.isdir(target):
                    os.makedirs(target)
                continue
            if plan['entry']['state'] == 'absent':
                if os.path.lexists(target):
                    os.unlink(target)
                continue
            if not os.path.isdir(os.path.dirname(target)):
                os.makedirs(os.path.dirname(target))
            if os.path.lexists(target):
                os.unlink(target)
            with open(target, 'wb') as handle:
                handle.write(plan['wanted'])
        rc, out, err = module.run_command(shlex.split(command.replace('%s', copy)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return rc, (to_text(err).strip() or to_text(out).strip()).replace(copy, root)


def _write_file(module, plan):
    """Replace the file atomically with a temporary file that already has the wanted mode and owner."""
    entry = plan['entry']
    path = plan['path']
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise OSError(errno.ENOENT, 'directory {0} does not exist (list it before the file)'.format(directory))
    fd, tmp = tempfile.mkstemp(prefix='.managed_files.', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(plan['wanted'])
        # The temporary file gets the wanted mode, owner and SELinux context before the rename, so
        # the new file never exists, even briefly, with other permissions than asked for (a rename
        # in one directory is atomic; AnsibleModule.atomic_move would reset a new file to the umask).
        module.set_fs_attributes_if_different(_file_args(module, entry, tmp), False)
        if module.selinux_enabled():
            module.set_context_if_different(tmp, module.selinux_default_context(path), False)
        os.rename(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _apply(module, plans, result):
    for plan in plans:
        entry = plan['entry']
        path = plan['path']
        report = dict(path=path, state=entry['state'], changed=False, content_changed=False)
        attr_diff = dict(before=dict(path=path), after=dict(path=path))
        try:
            if entry['state'] == 'permissions':
                if not plan['exists']:
                    result['files'].append(report)
                    continue
            elif entry['state'] == 'absent':
                if plan['exists']:
                    report['changed'] = report['content_changed'] = True
                    if module._diff:
                        result['diff'].append(dict(
                            before_header=path, after_header=path + ' (absent)',
                            before=to_text(plan['before'] or b'', errors='surrogate_or_replace'), after=''))
                    if not module.check_mode:
                        if entry['backup'] and stat.S_ISREG(os.lstat(path).st_mode):
                            report['backup_file'] = module.backup_local(path)
                        os.unlink(path)
                    result['changed_paths'].append(path)
                result['files'].append(report)
                continue
            elif entry['state'] == 'directory':
                if not plan['exists']:
                    report['changed'] = True
                    if not module.check_mode:
                        os.makedirs(path)
            elif plan['content_changed']:
                report['changed'] = report['content_changed'] = True
                if module._diff:
                    result['diff'].append(dict(
                        before_header=path, after_header=path,
                        before=to_text(plan['before'] or b'', errors='surrogate_or_replace'),
                        after=to_text(plan['wanted'], errors='surrogate_or_replace')))
                if not module.check_mode:
                    if entry['backup'] and plan['exists']:
                        report['backup_file'] = module.backup_local(path)
                    _write_file(module, plan)
            # A missing entry in check mode has no attributes to compare: it is already reported.
            if module.check_mode and not plan['exists']:
                pass
            else:
                report['changed'] = module.set_fs_attributes_if_different(
                    _file_args(module, entry, path), report['changed'], attr_diff if module._diff else None)
        except (IOError, OSError) as err:
            module.fail_json(
                msg='cannot write {0}: {1} (already changed in this call: {2})'.format(
                    path, to_native(err), ', '.join(result['changed_paths']) or 'nothing'), **result)
        if module._diff and len(attr_diff['before']) > 1:
            attr_diff.update(before_header=path + ' (attributes)', after_header=path + ' (attributes)')
            result['diff'].append(attr_diff)
        if report['changed']:
            result['changed_paths'].append(path)
        result['files'].append(report)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(
                type='list', elements='dict', required=True,
                options=dict(
                    path=dict(type='path', required=True),
                    state=dict(type='str', default='file', choices=['file', 'directory', 'permissions', 'absent']),
                    content=dict(type='str'),
                    lines=dict(type='list', elements='dict', options=dict(
                        regexp=dict(type='str', required=True),
                        line=dict(type='str', required=True),
                    )),
                    mode=dict(type='raw'),
                    owner=dict(type='str'),
                    group=dict(type='str'),
                    validate=dict(type='str'),
                    backup=dict(type='bool', default=False),
                ),
            ),
            validate_trees=dict(
                type='list', elements='dict', default=[],
                options=dict(
                    path=dict(type='path', required=True),
                    command=dict(type='str', required=True),
                ),
            ),
        ),
        supports_check_mode=True,
    )
    entries = module.params['files']
    _check_input(module, entries, module.params['validate_trees'])
    plans = _plan(module, entries)
    if not module.check_mode:
        _validate(module, plans)
    result = dict(changed=False, changed_paths=[], files=[], diff=[])
    _apply(module, plans, result)
    result['changed'] = bool(result['changed_paths'])
    if not module._diff:
        del result['diff']
    module.exit_json(**result)


if __name__ == '__main__':
    main()
