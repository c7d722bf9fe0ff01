#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.platform maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: restic_repository
short_description: Make sure a restic repository exists, initialising it only when it is absent
version_added: 0.1.0
description:
  - Probes the repository with C(restic cat config) and runs C(restic init) only when restic
    reports that there is no repository at that location.
  - A repository that answers with a wrong password, that cannot be reached, or that gives any
    other error is never initialised again; the module fails with restic's message instead.
  - A locked repository exists (the lock lives inside it), so it is reported with RV(locked)
    and a warning, and left alone.
  - Understands the exit codes of restic 0.17 and later (10 absent, 11 locked, 12 wrong password)
    and the messages of older releases such as Debian 12's restic 0.14, which exit 1 for all of them.
author:
  - selfhost.platform maintainers (@selfhost-platform)
extends_documentation_fragment:
  - selfhost.platform.restic
options:
  init_args:
    description: Extra arguments of C(restic init), for example C(--repository-version=2) with restic 0.14.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description:
      - Probes the repository and reports whether it would be initialised; initialises nothing.
      - When the environment, password or location file does not exist yet (it would be written by
        an earlier task in the same check run), the module reports a change without probing.
  diff_mode:
    support: none
    description: There is no text to compare.
  platform:
    support: full
    platforms: posix
    description: Needs the restic binary on the managed host.
notes:
  - The probe takes restic's shared lock like any reader, so it waits for nothing and fails on an
    exclusive lock held by C(prune) or C(check); that is reported as RV(locked), not as an error.
seealso:
  - module: selfhost.platform.restic_snapshots_info
    description: Lists the snapshots of the repository and the age of the newest one per tag.
  - name: restic manual, scripting
    description: Checking whether a repository is already initialised.
    link: https://restic.readthedocs.io/en/stable/075_scripting.html
'''

EXAMPLES = r'''
- name: Make sure the off-site repository exists (credentials come from the role's env file)
  selfhost.platform.restic_repository:
    env_file: /etc/restic/repos/offsite.env
  register: offsite_repo

- name: Say when it was created now
  ansible.builtin.debug:
    msg: "Repository {{ offsite_repo.repository_id }} initialised"
  when: offsite_repo.initialized

- name: A local repository with explicit options
  selfhost.platform.restic_repository:
    repository: /srv/restic/main
    password_file: /etc/restic/repos/main.password
    init_args:
      - --repository-version=2
'''

RETURN = r'''
initialized:
  description: Whether C(restic init) ran (or would run, in check mode).
  returned: always
  type: bool
  sample: false
exists:
  description: Whether the repository existed before the module ran; V(null) when it could not be probed in check mode.
  returned: always
  type: bool
  sample: true
locked:
  description: Whether the probe found the repository locked by another restic process.
  returned: always
  type: bool
  sample: false
repository:
  description: The location probed, with any credentials in it replaced by asterisks.
  returned: always
  type: str
  sample: s3:http://127.0.0.1:9000/backups
repository_id:
  description: The repository ID from its config; empty when unknown (locked, check mode of a new repository).
  returned: always
  type: str
  sample: 30266ebce9f69b7ae3a1084f9766df21185a98a05ad829e9ca5bfa6cc06405f0
'''

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.selfhost.platform.plugins.module_utils.restic import (
    ABSENT,
    CONNECTION_ARGS,
    CONNECTION_MUTUALLY_EXCLUSIVE,
    LOCKED,
    PRESENT,
    WRONG_PASSWORD,
    ResticError,
    base_command,
    build_environment,
    classify,
    redact,
    referenced_files,
)


def _location(env):
    if env.get('RESTIC_REPOSITORY'):
        return redact(env['RESTIC_REPOSITORY'], env)
    return 'file:' + env.get('RESTIC_REPOSITORY_FILE', '')


def _config_id(stdout):
    try:
        return json.loads(stdout).get('id', '')
    except (ValueError, AttributeError):
        return ''


def main():
    argument_spec = dict(CONNECTION_ARGS)
    argument_spec['init_args'] = dict(type='list', elements='str', default=[])
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=CONNECTION_MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    params = module.params
    result = dict(changed=False, initialized=False, exists=False, locked=False, repository='', repository_id='')

    env_file = params['env_file']
    env_text = None
    if env_file:
        if not os.path.exists(env_file):
            if module.check_mode:
                result.update(changed=True, exists=None,
                              msg='{0} does not exist yet; the repository is probed once it does'.format(env_file))
                module.exit_json(**result)
            module.fail_json(msg='environment file {0} does not exist'.format(env_file), **result)
        try:
            with open(env_file) as handle:
                env_text = handle.read()
        except (IOError, OSError) as err:
            module.fail_json(msg='cannot read {0}: {1}'.format(env_file, to_native(err)), **result)

    try:
        env = build_environment(params, env_text)
    except ResticError as err:
        module.fail_json(msg=to_native(err), **result)
    result['repository'] = _location(env)

    missing = [path for path in referenced_files(env) if not os.path.exists(path)]
    if missing:
        if module.check_mode:
            result.update(changed=True, exists=None,
                          msg='{0} does not exist yet; the repository is probed once it does'.format(', '.join(missing)))
            module.exit_json(**result)
        module.fail_json(msg='file(s) not found: {0}'.format(', '.join(missing)), **result)

    restic = params['restic_path'] or module.get_bin_path('restic', required=True)
    base = base_command(restic, params)
    # The password and keys stay in the environment, never on the command line.
    rc, out, err = module.run_command(base + ['cat', 'config'], environ_update=env)
    state = classify(rc, err)

    if state == PRESENT:
        result.update(exists=True, repository_id=_config_id(out))
        module.exit_json(**result)

    if state == LOCKED:
        result.update(exists=True, locked=True)
        module.warn('repository {0} is locked by another restic process; it exists, so it is left alone. '
                    'restic said: {1}'.format(result['repository'], redact(err, env).strip()))
        module.exit_json(**result)

    if state == WRONG_PASSWORD:
        module.fail_json(
            msg='wrong password for repository {0} (restic exit code {1}): the repository exists but the '
                'password does not open it. Check the password variable; the repository is NOT '
                're-initialised.'.format(result['repository'], rc),
            rc=rc, stderr=redact(err, env), **result)

    if state != ABSENT:
        module.fail_json(
            msg='cannot tell whether repository {0} exists (restic exit code {1}); nothing was '
                'initialised: {2}'.format(result['repository'], rc, redact(err, env).strip()),
            rc=rc, stderr=redact(err, env), **result)

    result.update(changed=True, initialized=True)
    if module.check_mode:
        module.exit_json(**result)

    rc, out, err = module.run_command(base + ['init'] + params['init_args'], environ_update=env)
    if rc != 0:
        result.update(changed=False, initialized=False)
        module.fail_json(msg='restic init failed for {0} (exit code {1}): {2}'.format(
            result['repository'], rc, redact(err, env).strip()), rc=rc, stderr=redact(err, env), **result)

    rc, out, err = module.run_command(base + ['cat', 'config'], environ_update=env)
    if rc == 0:
        result['repository_id'] = _config_id(out)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
