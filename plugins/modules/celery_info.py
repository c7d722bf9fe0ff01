#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhost.platform maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: celery_info
short_description: Report Celery queue lengths from Redis, and workers and active tasks
version_added: 0.1.0
description:
  - Reads the length of each Celery queue from its Redis broker (C(LLEN) of the queue's list
    and of kombu's priority lists C(<queue>\x06\x16<3|6|9>)) and the number of delivered but
    unacknowledged messages (C(HLEN unacked)).
  - With O(inspect=true), also runs C(celery inspect ping), C(active) and C(reserved) through
    the application's own C(celery) program, for the workers and their running tasks.
  - Only reads; never changes anything (check mode is the same as a normal run).
  - Talks to Redis with the C(redis) Python library when the module's interpreter has it,
    else with C(redis-cli) (the password is passed through C(REDISCLI_AUTH), never argv).
author:
  - selfhost.platform maintainers (@selfhost-platform)
options:
  broker_url:
    description:
      - Redis broker URL, C(redis://[user]:password@host:port/db) (C(rediss://) for TLS).
      - Defaults to C(CELERY_BROKER_URL) from O(env_file).
    type: str
  env_file:
    description:
      - Environment file of the Celery units (C(KEY="value") lines), as written by the
        C(selfhost.platform.celery) role. Gives the broker URL, the app name and the environment
        C(celery inspect) runs with. Ignored when missing and O(broker_url) and O(app) are given.
    type: path
    default: /etc/celery/celery.env
  queues:
    description: Queue names to measure.
    type: list
    elements: str
    default: [celery]
  inspect:
    description: Also ask the workers (C(celery inspect ping/active/reserved)).
    type: bool
    default: false
  destination:
    description: Node names (C(name@host)) to inspect; all workers when empty.
    type: list
    elements: str
    default: []
  celery_bin:
    description: The C(celery) program of the application's virtualenv.
    type: path
    default: /opt/celery/venv/bin/celery
  app:
    description: The C(-A) argument; defaults to C(CELERY_APP) from O(env_file).
    type: str
  chdir:
    description: Directory C(celery inspect) runs in (the application's source directory).
    type: path
    default: /opt/celery/app
  timeout:
    description: Seconds C(celery inspect) waits for replies.
    type: float
    default: 5
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to show.
  platform:
    support: full
    platforms: posix
    description: Any host that reaches the broker; O(inspect) needs the application's virtualenv.
notes:
  - Queue lengths count messages waiting in Redis; prefetched and running tasks are in
    RV(unacked) (and, with O(inspect=true), in RV(active) and RV(reserved_count)).
'''

EXAMPLES = r'''
- name: Measure the backlog of the Celery queues
  selfhost.platform.celery_info:
    queues: [default, agents, notifications, reports]
  register: celery

- name: Fail when the backlog is over 100 (seed 000's alert threshold)
  ansible.builtin.assert:
    that: celery.total_queued <= 100

- name: Wait until a worker has no running task
  selfhost.platform.celery_info:
    queues: [default]
    inspect: true
    destination: [default@worker1]
  register: node
  until: node.active_count == 0
  retries: 60
  delay: 5
'''

RETURN = r'''
queues:
  description: Messages waiting per queue.
  returned: always
  type: dict
  sample: {default: 12, reports: 0}
total_queued:
  description: Sum of RV(queues).
  returned: always
  type: int
  sample: 12
unacked:
  description: Messages delivered to workers and not yet acknowledged (running or prefetched with acks_late).
  returned: always
  type: int
  sample: 4
workers:
  description: Nodes that answered C(inspect ping), with their reply.
  returned: when O(inspect=true)
  type: dict
  sample: {"default@worker1": "pong"}
active:
  description: Running tasks per node (id, name, worker_pid, time_start).
  returned: when O(inspect=true)
  type: dict
active_count:
  description: Number of running tasks over all inspected nodes.
  returned: when O(inspect=true)
  type: int
reserved_count:
  description: Number of tasks prefetched (reserved) but not started, over all inspected nodes.
  returned: when O(inspect=true)
  type: int
'''

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.selfhost.platform.plugins.module_utils import celery as celery_utils

try:
    import redis as redis_lib
    HAS_REDIS = True
except ImportError:
    redis_lib = None
    HAS_REDIS = False


def load_env(module):
    path = module.params["env_file"]
    if not path or not os.path.exists(path):
        return {}
    try:
        with open(path) as handle:
            return celery_utils.read_env_file(handle.read())
    except (IOError, OSError) as exc:
        module.fail_json(msg="cannot read %s: %s" % (path, exc))


def redis_client(module, settings):
    if HAS_REDIS:
        return celery_utils.PyRedisClient(redis_lib, settings)
    cli = module.get_bin_path("redis-cli")
    if not cli:
        module.fail_json(msg=missing_required_lib("redis (Python) or the redis-cli program (redis-tools)"))
    return celery_utils.RedisCliClient(module, cli, settings)


def run_inspect(module, env, app, what):
    p = module.params
    argv = [p["celery_bin"], "--app=%s" % app, "inspect", what, "--json",
            "--timeout=%s" % p["timeout"]]
    if p["destination"]:
        argv.append("--destination=%s" % ",".join(p["destination"]))
    rc, out, err = module.run_command(argv, cwd=p["chdir"], environ_update=env)
    if rc != 0:
        if "No nodes replied" in (out + err):
            return {}
        module.fail_json(msg="celery inspect %s failed (rc %d): %s" % (what, rc, (err or out).strip()),
                         rc=rc, stdout=out, stderr=err)
    try:
        return celery_utils.parse_inspect(out)
    except ValueError as exc:
        module.fail_json(msg=str(exc))


def inspect_workers(module, env, app):
    pings = run_inspect(module, env, app, "ping")
    active = run_inspect(module, env, app, "active")
    reserved = run_inspect(module, env, app, "reserved")
    keep = ("id", "name", "worker_pid", "time_start", "hostname")
    active = dict((node, [dict((k, t.get(k)) for k in keep if k in t) for t in tasks or []])
                  for node, tasks in active.items())
    return {
        "workers": dict((node, reply.get("ok", reply) if isinstance(reply, dict) else reply)
                        for node, reply in pings.items()),
        "active": active,
        "active_count": sum(len(t) for t in active.values()),
        "reserved_count": sum(len(t or []) for t in reserved.values()),
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            broker_url=dict(type="str", no_log=True),
            env_file=dict(type="path", default="/etc/celery/celery.env"),
            queues=dict(type="list", elements="str", default=["celery"]),
            inspect=dict(type="bool", default=False),
            destination=dict(type="list", elements="str", default=[]),
            celery_bin=dict(type="path", default="/opt/celery/venv/bin/celery"),
            app=dict(type="str"),
            chdir=dict(type="path", default="/opt/celery/app"),
            timeout=dict(type="float", default=5),
        ),
        supports_check_mode=True,
    )
    p = module.params
    env = load_env(module)
    url = p["broker_url"] or env.get("CELERY_BROKER_URL")
    if not url:
        module.fail_json(msg="no broker URL: set broker_url or point env_file at a file with CELERY_BROKER_URL")
    try:
        settings = celery_utils.parse_broker_url(url)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if settings["password"]:
        module.no_log_values.add(settings["password"])

    try:
        client = redis_client(module, settings)
        queues = celery_utils.queue_lengths(client, p["queues"])
        unacked = client.hlen(celery_utils.UNACKED_KEY)
    # The redis library and redis-cli fail in many ways; all of them end the same here.
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="cannot read the queues from Redis at %s:%s: %s"
                         % (settings["host"], settings["port"], exc))
    result = dict(changed=False, queues=queues, total_queued=sum(queues.values()), unacked=unacked)

    if p["inspect"]:
        app = p["app"] or env.get("CELERY_APP")
        if not app:
            module.fail_json(msg="inspect needs app (or CELERY_APP in env_file)")
        if not os.access(p["celery_bin"], os.X_OK):
            module.fail_json(msg="%s is not an executable celery program" % p["celery_bin"])
        run_env = dict(env)
        run_env["CELERY_BROKER_URL"] = url
        result.update(inspect_workers(module, run_env, app))

    module.exit_json(**result)


if __name__ == "__main__":
    main()
