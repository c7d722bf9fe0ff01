# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.selfhost.platform.plugins.modules import swarm_stack_wait


class Exit(Exception):
    pass


def service(sid, name, image, replicas=3, state=None, started="2026-12-03T18:00:00.5Z", message="", secrets=()):
    doc = {"ID": sid, "Spec": {"Name": name, "Mode": {"Replicated": {"Replicas": replicas}},
                               "TaskTemplate": {"ContainerSpec": {"Image": image, "Secrets": [
                                   {"SecretName": s} for s in secrets]}}}}
    if state:
        doc["UpdateStatus"] = {"State": state, "StartedAt": started, "Message": message}
    return doc


def task(sid, image, state="running", secrets=()):
    return {"ServiceID": sid, "DesiredState": "running", "Status": {"State": state},
            "Spec": {"ContainerSpec": {"Image": image, "Secrets": [{"SecretName": s} for s in secrets]}}}


def _run(args, monkeypatch, looks, check=False, error=None):
    """Run the module; looks is a list of (services, tasks), one per look (the last repeats)."""
    calls = []
    state = {"look": 0}

    def current():
        return looks[min(state["look"], len(looks) - 1)]

    def run_command(self, argv, **kwargs):
        calls.append(argv[1:])
        if error:
            return 1, "", error
        services, tasks = current()
        if argv[1:3] == ["service", "ls"]:
            return 0, "".join(s["ID"] + "\n" for s in services), ""
        if argv[1:3] == ["service", "inspect"]:
            return 0, json.dumps([s for s in services if s["ID"] in argv[3:]]), ""
        if argv[1:3] == ["service", "ps"]:
            return 0, "".join("t%d\n" % i for i in range(len(tasks))), ""
        if argv[1] == "inspect":
            state["look"] += 1
            return 0, json.dumps(tasks), ""
        return 1, "", "unexpected"

    def exit_json(self, **kwargs):
        kwargs["calls"] = calls
        raise Exit(kwargs)

    def fail_json(self, **kwargs):
        kwargs["failed"] = True
        kwargs["calls"] = calls
        raise Exit(kwargs)

    monkeypatch.setattr(swarm_stack_wait.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(swarm_stack_wait.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(swarm_stack_wait.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(swarm_stack_wait.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/usr/bin/" + name)
    monkeypatch.setattr(swarm_stack_wait.time, "sleep", lambda s: None)
    args = dict(args)
    if check:
        args["_ansible_check_mode"] = True
    with patch_module_args(args):
        with pytest.raises(Exit) as info:
            swarm_stack_wait.main()
    return info.value.args[0]


def test_parse_time():
    assert swarm_stack_wait.parse_time("1970-01-01T00:01:40.25Z") == 100.25
    assert swarm_stack_wait.parse_time("2026-12-03T17:47:41.749125487Z") == pytest.approx(1796320061.749125)
    assert swarm_stack_wait.parse_time("") is None


def test_converged(monkeypatch):
    web = service("s1", "app_web", "web:1", state="completed", message="update completed")
    result = _run({"name": "app"}, monkeypatch, [([web], [task("s1", "web:1")] * 3)])
    assert "failed" not in result
    assert result["converged"] is True and result["rolled_back"] == []
    assert result["services"]["app_web"]["running"] == 3
    assert result["calls"][0] == ["service", "ls", "-q", "--filter", "label=com.docker.stack.namespace=app"]
    # settle=2: two looks
    assert sum(1 for c in result["calls"] if c[0] == "inspect") == 2


def test_waits_for_the_update(monkeypatch):
    old = service("s1", "app_web", "web:2")                       # spec changed, update not started
    updating = service("s1", "app_web", "web:2", state="updating")
    done = service("s1", "app_web", "web:2", state="completed")
    looks = [
        ([old], [task("s1", "web:1")] * 3),
        ([updating], [task("s1", "web:1")] * 2 + [task("s1", "web:2", "starting")]),
        ([updating], [task("s1", "web:2")] * 3),
        ([done], [task("s1", "web:2")] * 3),
    ]
    result = _run({"name": "app", "interval": 1}, monkeypatch, looks)
    assert "failed" not in result and result["converged"]
    assert sum(1 for c in result["calls"] if c[0] == "inspect") == 5


def test_secret_rotation_is_seen_in_the_tasks(monkeypatch):
    web = service("s1", "app_web", "web:1", state="completed", secrets=["db_v2"])
    looks = [([web], [task("s1", "web:1", secrets=["db_v1"])] * 3)]
    result = _run({"name": "app", "timeout": 0}, monkeypatch, looks)
    assert result["failed"] and not result["converged"]
    assert "app_web 0/3 running (3 tasks of the previous spec), update completed" in result["msg"]


def test_rollback_fails(monkeypatch):
    web = service("s1", "app_web", "web:2", state="rollback_completed", message="rollback completed",
                  started="2026-12-03T18:00:10Z")
    result = _run({"name": "app", "since": 1796320800.0}, monkeypatch, [([web], [task("s1", "web:2")] * 3)])
    assert result["failed"] and result["rolled_back"] == ["app_web"]
    assert result["msg"].startswith("stack app: Swarm rolled back app_web; the new version was refused")


def test_rollback_waits_for_the_previous_version(monkeypatch):
    back = service("s1", "app_web", "web:1", state="rollback_completed", started="2026-12-03T18:00:10Z")
    looks = [
        ([back], [task("s1", "web:1")] * 2 + [task("s1", "web:1", "starting")]),
        ([back], [task("s1", "web:1")] * 3),
    ]
    result = _run({"name": "app", "since": 1796320800.0}, monkeypatch, looks)
    assert result["failed"] and result["rolled_back"] == ["app_web"]
    assert "the previous one runs again. app_web 3/3 running, update rollback_completed" in result["msg"]
    # one look with a task still starting, then settle=2 looks with all three running
    assert sum(1 for c in result["calls"] if c[0] == "inspect") == 3


def test_rollback_not_restored_within_the_timeout(monkeypatch):
    back = service("s1", "app_web", "web:1", state="rollback_completed", started="2026-12-03T18:00:10Z")
    looks = [([back], [task("s1", "web:1")] * 2 + [task("s1", "web:1", "starting")])]
    result = _run({"name": "app", "since": 1796320800.0, "timeout": 0}, monkeypatch, looks)
    assert result["failed"] and result["rolled_back"] == ["app_web"]
    assert "the previous one is not running everywhere yet after 0s. app_web 2/3 running" in result["msg"]


def test_old_rollback_is_history(monkeypatch):
    web = service("s1", "app_web", "web:2", state="rollback_completed", started="2026-12-03T17:00:00Z")
    result = _run({"name": "app", "since": 1796320800.0}, monkeypatch, [([web], [task("s1", "web:2")] * 3)])
    assert "failed" not in result and result["converged"]


def test_paused_fails_at_once(monkeypatch):
    web = service("s1", "app_web", "web:2", state="paused", message="update paused due to failure")
    result = _run({"name": "app"}, monkeypatch, [([web], [task("s1", "web:1")] * 3)])
    assert result["failed"] and "is paused (failure_action pause)" in result["msg"]


def test_timeout(monkeypatch):
    web = service("s1", "app_web", "web:1", state="updating")
    result = _run({"name": "app", "timeout": 0}, monkeypatch, [([web], [task("s1", "web:1")] * 2)])
    assert result["failed"]
    assert result["msg"] == "stack app has not converged after 0s: app_web 2/3 running, update updating"


def test_no_stack(monkeypatch):
    result = _run({"name": "app"}, monkeypatch, [([], [])])
    assert result["failed"] and "has no services" in result["msg"]


def test_selected_services(monkeypatch):
    web = service("s1", "app_web", "web:1")
    worker = service("s2", "app_worker", "worker:1", state="updating")
    looks = [([web, worker], [task("s1", "web:1")] * 3)]
    result = _run({"name": "app", "services": ["web"]}, monkeypatch, looks)
    assert "failed" not in result and list(result["services"]) == ["app_web"]
    missing = _run({"name": "app", "services": ["db"]}, monkeypatch, looks)
    assert missing["failed"] and missing["msg"] == "stack app has no service app_db"


def test_global_service(monkeypatch):
    agent = service("s1", "mon_agent", "agent:1")
    agent["Spec"]["Mode"] = {"Global": {}}
    result = _run({"name": "mon"}, monkeypatch, [([agent], [task("s1", "agent:1")] * 4)])
    assert result["converged"] and result["services"]["mon_agent"]["desired"] == 4


def test_check_mode_looks_once(monkeypatch):
    web = service("s1", "app_web", "web:1", state="rollback_completed")
    result = _run({"name": "app"}, monkeypatch, [([web], [task("s1", "web:1")] * 3)], check=True)
    assert "failed" not in result and result["rolled_back"] == ["app_web"] and not result["converged"]
    assert sum(1 for c in result["calls"] if c[0] == "inspect") == 1


def test_docker_error(monkeypatch):
    result = _run({"name": "app"}, monkeypatch, [([], [])],
                  error="Error response from daemon: This node is not a swarm manager.")
    assert result["failed"] and "This node is not a swarm manager" in result["msg"]
