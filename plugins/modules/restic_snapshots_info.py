#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.platform maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: restic_snapshots_info
short_description: List the snapshots of a restic repository and the age of the newest one per tag
version_added: 0.1.0
description:
  - Runs C(restic snapshots --json) and returns the snapshots, the newest one, and the newest
    one for every tag with its age in seconds, so a play can compare it with an RPO.
  - Read-only; it reaches the repository with the same options as M(selfhost.platform.restic_repository).
author:
  - selfhost.platform maintainers (@selfhost-platform)
extends_documentation_fragment:
  - selfhost.platform.restic
options:
  tags:
    description:
      - Only snapshots carrying at least one of these tags (each is passed as its own C(--tag)).
      - An entry with commas (C(a,b)) selects snapshots carrying all of those tags, as restic does.
    type: list
    elements: str
    default: []
  host:
    description: Only snapshots taken on this host name.
    type: str
  no_lock:
    description:
      - Read without taking restic's shared lock (C(--no-lock)), so an exclusive lock held by a running
        C(prune) or C(check) does not make the module fail. The listing may then miss a snapshot
        that is being removed at that moment.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
    description: Returns no diff.
  platform:
    support: full
    platforms: posix
    description: Needs the restic binary on the managed host.
seealso:
  - module: selfhost.platform.restic_repository
    description: Makes sure the repository exists.
'''

EXAMPLES = r'''
- name: Read the snapshots of the video set
  selfhost.platform.restic_snapshots_info:
    env_file: /etc/restic/repos/offsite.env
    tags: [videos]
    no_lock: true
  register: videos

- name: Fail when the newest video snapshot is older than its RPO (15 minutes)
  ansible.builtin.assert:
    that: videos.newest_per_tag['videos'].age_seconds <= 900
    fail_msg: "newest videos snapshot is {{ videos.newest_per_tag['videos'].age_seconds }} s old"
'''

RETURN = r'''
snapshots:
  description: The snapshots as C(restic snapshots --json) lists them, oldest first, each with C(age_seconds) added.
  returned: always
  type: list
  elements: dict
  sample:
    - id: f17f4d565274c79a7b4d13ba9f1d3a6f6e46ea1492b05638c89a54f0c3f26ad4
      short_id: f17f4d56
      time: "2023-06-01T09:00:00Z"
      hostname: web1
      paths: [/srv/videos]
      tags: [videos]
      age_seconds: 3600
count:
  description: Number of snapshots returned.
  returned: always
  type: int
  sample: 12
newest:
  description: The newest snapshot (same keys as in RV(snapshots)); V(null) when there is none.
  returned: always
  type: dict
  sample:
    id: f17f4d565274c79a7b4d13ba9f1d3a6f6e46ea1492b05638c89a54f0c3f26ad4
    time: "2023-06-01T09:00:00Z"
    age_seconds: 3600
newest_per_tag:
  description: For every tag seen, the newest snapshot carrying it.
  returned: always
  type: dict
  sample:
    videos:
      id: f17f4d565274c79a7b4d13ba9f1d3a6f6e46ea1492b05638c89a54f0c3f26ad4
      short_id: f17f4d56
      time: "2023-06-01T09:00:00Z"
      timestamp: 1685610000.0
      age_seconds: 3600
now:
  description: The time (seconds since the epoch) the ages were computed against.
  returned: always
  type: float
  sample: 1685613600.0
'''

import json
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible_collections.selfhost.platform.plugins.module_utils.restic import (
    ABSENT,
    CONNECTION_ARGS,
    CONNECTION_MUTUALLY_EXCLUSIVE,
    LOCKED,
    WRONG_PASSWORD,
    ResticError,
    base_command,
    build_environment,
    classify,
    epoch,
    redact,
)

_REASONS = {
    ABSENT: 'there is no repository at this location',
    LOCKED: 'the repository is locked exclusively by another restic process (set no_lock=true to read anyway)',
    WRONG_PASSWORD: 'the password does not open the repository',
}


def summarize(snapshots, now):
    """Add ages, sort oldest first, and find the newest snapshot overall and per tag."""
    enriched = []
    for snap in snapshots:
        item = dict(snap)
        stamp = epoch(item['time'])
        item['age_seconds'] = int(max(0, now - stamp))
        item['_ts'] = stamp
        enriched.append(item)
    enriched.sort(key=lambda item: item['_ts'])
    per_tag = {}
    for item in enriched:
        for tag in item.get('tags') or []:
            per_tag[tag] = dict(id=item.get('id'), short_id=item.get('short_id'), time=item['time'],
                                timestamp=item['_ts'], age_seconds=item['age_seconds'])
    for item in enriched:
        del item['_ts']
    newest = enriched[-1] if enriched else None
    return enriched, newest, per_tag


def main():
    argument_spec = dict(CONNECTION_ARGS)
    argument_spec.update(
        tags=dict(type='list', elements='str', default=[]),
        host=dict(type='str'),
        no_lock=dict(type='bool', default=False),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=CONNECTION_MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    params = module.params
    env_text = None
    if params['env_file']:
        try:
            with open(params['env_file']) as handle:
                env_text = handle.read()
        except (IOError, OSError) as err:
            module.fail_json(msg='cannot read {0}: {1}'.format(params['env_file'], to_native(err)))
    try:
        env = build_environment(params, env_text)
    except ResticError as err:
        module.fail_json(msg=to_native(err))

    restic = params['restic_path'] or module.get_bin_path('restic', required=True)
    cmd = base_command(restic, params)
    if params['no_lock']:
        cmd.append('--no-lock')
    cmd.extend(['snapshots', '--json'])
    for tag in params['tags']:
        cmd.extend(['--tag', tag])
    if params['host']:
        cmd.extend(['--host', params['host']])

    rc, out, err = module.run_command(cmd, environ_update=env)
    if rc != 0:
        state = classify(rc, err)
        reason = _REASONS.get(state, 'restic failed')
        module.fail_json(msg='cannot list snapshots: {0} (restic exit code {1}): {2}'.format(
            reason, rc, redact(err, env).strip()), rc=rc, stderr=redact(err, env), state=state)
    try:
        snapshots = json.loads(out or '[]') or []
    except ValueError as err:
        module.fail_json(msg='restic printed no JSON: {0}'.format(to_native(err)), stdout=out)

    now = time.time()
    try:
        enriched, newest, per_tag = summarize(snapshots, now)
    except (KeyError, ValueError) as err:
        module.fail_json(msg='unexpected snapshot data from restic: {0}'.format(to_native(err)))
    module.exit_json(changed=False, snapshots=enriched, count=len(enriched), newest=newest,
                     newest_per_tag=per_tag, now=now)


if __name__ == '__main__':
    main()
