#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.platform maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: swarm_stack_wait
short_description: Wait until the services of a Docker Swarm stack have converged, fail if Swarm rolled one back
version_added: 0.1.0
description:
  - Watches the services of a stack (C(com.docker.stack.namespace) label) on a Swarm manager
    through the C(docker) CLI until every one has converged, that is when
  - its rolling update is not running (C(UpdateStatus.State) not C(updating) or C(rollback_started)),
  - and as many tasks as it wants replicas (for a global service, every task it wants) are in
    state C(running) with the service's current image and secrets. A task of a service with a
    healthcheck reaches C(running) only once healthy.
  - Fails at once when an update is C(paused) or C(rollback_paused) (it needs an operator).
  - Fails when an update ended in C(rollback_completed) after O(since). Swarm refused the new version
    (a failed healthcheck or task) and put the previous one back. Before failing it waits, within
    O(timeout), until the previous version runs on every task again (as for convergence, O(settle)
    looks in a row), so that a caller that fails on the rollback finds the previous version serving.
  - Only reads; it never changes the services.
author:
  - selfhost.platform maintainers (@selfhost-platform)
options:
  name:
    description: The stack's name.
    type: str
    required: true
  services:
    description: Short names (without the C(<stack>_) prefix) of the services to watch; all of the stack's when empty.
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds to wait for convergence before failing.
    type: int
    default: 300
  interval:
    description: Seconds between two looks.
    type: int
    default: 3
  settle:
    description:
      - Number of consecutive looks that must find the stack converged. Guards against the moment
        right after a deployment when Swarm has the new spec but has not started the update yet
        (only image and secret changes are seen in the tasks themselves).
    type: int
    default: 2
  since:
    description:
      - Seconds since the epoch (the manager's clock) when the change being waited for began.
        A C(rollback_completed) state of an update that started earlier is history and does not
        fail the module. Without it every C(rollback_completed) fails.
    type: float
  docker_cli:
    description: The docker CLI; found on PATH when not given.
    type: path
attributes:
  check_mode:
    support: full
    description: Read-only. In check mode it looks once and reports, without waiting or failing on what it sees.
  diff_mode:
    support: none
    description: Nothing is changed.
  platform:
    support: full
    platforms: posix
    description: A Swarm manager with the docker CLI.
notes:
  - No IPVS is needed; the module reads the tasks, not the routing mesh.
'''

EXAMPLES = r'''
- name: Wait until the app stack has converged (fails if Swarm rolled back)
  selfhost.platform.swarm_stack_wait:
    name: app
    since: "{{ ansible_facts['date_time']['epoch'] }}"
    timeout: 600

- name: Look at one service without failing
  selfhost.platform.swarm_stack_wait:
    name: app
    services: [web]
    timeout: 0
  register: app_state
  failed_when: false
'''

RETURN = r'''
converged:
  description: Whether every watched service has converged.
  returned: always
  type: bool
  sample: true
rolled_back:
  description: Full names of the services whose update Swarm rolled back after O(since).
  returned: always
  type: list
  elements: str
  sample: [app_web]
services:
  description: What was seen last, per full service name.
  returned: always
  type: dict
  sample:
    app_web:
      image: registry.example.org/web:1.4.2
      desired: 3
      running: 3
      update_state: completed
      update_message: update completed
      update_started: "2026-12-03T18:01:02.123456789Z"
      converged: true
elapsed:
  description: Seconds waited.
  returned: always
  type: float
'''

import calendar
import json
import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

BUSY = ('updating', 'rollback_started')
PAUSED = ('paused', 'rollback_paused')
STAMP = re.compile(r'^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z$')


def parse_time(text):
    """Seconds since the epoch of a Docker RFC 3339 UTC time stamp (None if it cannot be read)."""
    match = STAMP.match(text or '')
    if not match:
        return None
    parts = [int(p) for p in match.groups()[:6]]
    fraction = float('0.' + match.group(7)) if match.group(7) else 0.0
    return calendar.timegm(tuple(parts) + (0, 0, 0)) + fraction


def _secret_names(spec):
    return sorted(s.get('SecretName', '') for s in (spec.get('ContainerSpec') or {}).get('Secrets') or [])


def service_state(service, tasks, since):
    """Summary of one service from its inspect document and its tasks."""
    spec = service.get('Spec', {})
    template = spec.get('TaskTemplate', {})
    image = (template.get('ContainerSpec') or {}).get('Image')
    wanted = [t for t in tasks if t.get('DesiredState') == 'running']
    current = [t for t in wanted
               if (t.get('Spec', {}).get('ContainerSpec') or {}).get('Image') == image
               and _secret_names(t.get('Spec', {})) == _secret_names(template)]
    running = [t for t in current if t.get('Status', {}).get('State') == 'running']
    mode = spec.get('Mode', {})
    if 'Replicated' in mode:
        desired = int(mode['Replicated'].get('Replicas', 1))
    else:
        desired = len(wanted)
    status = service.get('UpdateStatus') or {}
    state = status.get('State', '')
    started = parse_time(status.get('StartedAt'))
    rolled_back = state == 'rollback_completed' and (since is None or started is None or started >= since)
    return {
        'image': image,
        'desired': desired,
        'running': len(running),
        'outdated': len(wanted) - len(current),
        'update_state': state,
        'update_message': status.get('Message', ''),
        'update_started': status.get('StartedAt', ''),
        'rolled_back': rolled_back,
        'paused': state in PAUSED,
        'converged': state not in BUSY + PAUSED and len(running) == desired and len(wanted) == desired,
    }


class Swarm(object):
    def __init__(self, module, cli):
        self.module = module
        self.cli = cli

    def docker(self, *args):
        rc, out, err = self.module.run_command([self.cli] + list(args))
        if rc != 0:
            self.module.fail_json(msg='docker %s failed (rc %d): %s' % (' '.join(args), rc, to_text(err).strip()),
                                  rc=rc, stdout=out, stderr=err)
        return to_text(out)

    def look(self, stack, names, since):
        ids = self.docker('service', 'ls', '-q', '--filter', 'label=com.docker.stack.namespace=%s' % stack).split()
        if not ids:
            return {}
        services = json.loads(self.docker('service', 'inspect', *ids))
        if names:
            full = set('%s_%s' % (stack, n) for n in names)
            services = [s for s in services if s['Spec']['Name'] in full]
            missing = sorted(full - set(s['Spec']['Name'] for s in services))
            if missing:
                self.module.fail_json(msg='stack %s has no service %s' % (stack, ', '.join(missing)))
        task_ids = []
        if services:
            task_ids = self.docker('service', 'ps', '-q', '--no-trunc', '--filter', 'desired-state=running',
                                   *[s['ID'] for s in services]).split()
        tasks = json.loads(self.docker('inspect', '--type', 'task', *task_ids)) if task_ids else []
        result = {}
        for service in services:
            own = [t for t in tasks if t.get('ServiceID') == service['ID']]
            result[service['Spec']['Name']] = service_state(service, own, since)
        return result


def describe(name, state):
    return '%s %d/%d running%s, update %s%s' % (
        name, state['running'], state['desired'],
        ' (%d tasks of the previous spec)' % state['outdated'] if state['outdated'] else '',
        state['update_state'] or 'none',
        ': ' + state['update_message'] if state['update_message'] else '')


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type='str', required=True),
            services=dict(type='list', elements='str', default=[]),
            timeout=dict(type='int', default=300),
            interval=dict(type='int', default=3),
            settle=dict(type='int', default=2),
            since=dict(type='float'),
            docker_cli=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    cli = params['docker_cli'] or module.get_bin_path('docker', required=True)
    swarm = Swarm(module, cli)
    start = time.time()
    good = 0
    while True:
        services = swarm.look(params['name'], params['services'], params['since'])
        elapsed = round(time.time() - start, 1)
        rolled_back = sorted(n for n, s in services.items() if s['rolled_back'])
        paused = sorted(n for n, s in services.items() if s['paused'])
        converged = bool(services) and all(s['converged'] for s in services.values()) and not rolled_back
        result = dict(changed=False, converged=converged, rolled_back=rolled_back, services=services, elapsed=elapsed)
        if module.check_mode:
            module.exit_json(**result)
        if not services:
            module.fail_json(msg='stack %s has no services (is it deployed?)' % params['name'], **result)
        if rolled_back:
            # A rolled-back service has converged when the previous spec runs on every task again.
            restored = all(services[n]['converged'] for n in rolled_back)
            good = good + 1 if restored else 0
            if good >= max(params['settle'], 1) or elapsed >= params['timeout']:
                module.fail_json(msg='stack %s: Swarm rolled back %s; the new version was refused (failed healthcheck'
                                     ' or tasks) and %s. %s' % (
                                         params['name'], ', '.join(rolled_back),
                                         'the previous one runs again' if restored else
                                         'the previous one is not running everywhere yet after %ds' % params['timeout'],
                                         '; '.join(describe(n, services[n]) for n in rolled_back)), **result)
            time.sleep(max(params['interval'], 1))
            continue
        if paused:
            module.fail_json(msg='stack %s: the update of %s is paused (failure_action pause) and needs an operator:'
                                 ' fix the cause, then redeploy or run docker service update --rollback. %s' % (
                                     params['name'], ', '.join(paused),
                                     '; '.join(describe(n, services[n]) for n in paused)), **result)
        good = good + 1 if converged else 0
        if good >= max(params['settle'], 1):
            module.exit_json(**result)
        if elapsed >= params['timeout']:
            if converged:
                module.exit_json(**result)
            waiting = sorted(n for n, s in services.items() if not s['converged'])
            module.fail_json(msg='stack %s has not converged after %ds: %s' % (
                params['name'], params['timeout'],
                '; '.join(describe(n, services[n]) for n in waiting) or 'not stable yet'), **result)
        time.sleep(max(params['interval'], 1))


if __name__ == '__main__':
    main()
