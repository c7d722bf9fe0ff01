# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.selfhost.platform.plugins.module_utils import celery as celery_utils
from ansible_collections.selfhost.platform.plugins.modules import celery_info

URL = "redis://:s3cret-pass@127.0.0.1:6379/0"
SEP = "\x06\x16"


class Exit(Exception):
    pass


def _run(args, monkeypatch, redis_lists=None, inspect=None, have_redis_lib=True):
    """Run the module with Redis and `celery inspect` replaced by fakes; return its result."""
    redis_lists = redis_lists or {}
    inspect = inspect or {}
    calls = []

    class FakeRedis(object):
        def __init__(self, **kwargs):
            calls.append(("connect", kwargs))

        def llen(self, key):
            return redis_lists.get(key, 0)

        def hlen(self, key):
            return redis_lists.get(key, 0)

    class FakeRedisModule(object):
        Redis = FakeRedis

    def run_command(self, argv, cwd=None, environ_update=None, **kwargs):
        calls.append(("run", argv, cwd, environ_update))
        if argv[0].endswith("redis-cli"):
            return 0, "%d\n" % redis_lists.get(argv[-1], 0), ""
        what = argv[argv.index("inspect") + 1]
        reply = inspect.get(what)
        if reply is None:
            return 69, "", "Error: No nodes replied within time constraint"
        return 0, json.dumps(reply) + "\n", ""

    def exit_json(self, **kwargs):
        kwargs["calls"] = calls
        raise Exit(kwargs)

    def fail_json(self, **kwargs):
        kwargs["failed"] = True
        kwargs["calls"] = calls
        raise Exit(kwargs)

    monkeypatch.setattr(celery_info, "HAS_REDIS", have_redis_lib)
    monkeypatch.setattr(celery_info, "redis_lib", FakeRedisModule if have_redis_lib else None)
    monkeypatch.setattr(celery_info.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(celery_info.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(celery_info.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(celery_info.AnsibleModule, "get_bin_path", lambda self, name, *a, **k: "/usr/bin/" + name)
    monkeypatch.setattr(celery_info.os, "access", lambda path, mode: True)
    with patch_module_args(args):
        with pytest.raises(Exit) as info:
            celery_info.main()
    return info.value.args[0]


def test_parse_broker_url():
    s = celery_utils.parse_broker_url("rediss://worker:p%40ss@10.0.0.5:6380/2")
    assert s == {"host": "10.0.0.5", "port": 6380, "db": 2, "username": "worker",
                 "password": "p@ss", "tls": True}
    assert celery_utils.parse_broker_url("redis://localhost")["db"] == 0
    with pytest.raises(ValueError):
        celery_utils.parse_broker_url("amqp://guest@localhost//")


def test_read_env_file():
    env = celery_utils.read_env_file('# c\nCELERY_APP="proj"\nX=1\n\nY=\'a b\'\n')
    assert env == {"CELERY_APP": "proj", "X": "1", "Y": "a b"}


def test_queue_lengths_sum_priority_lists(tmp_path, monkeypatch):
    lists = {"default": 5, "default" + SEP + "9": 2, "reports": 1, "unacked": 3}
    result = _run({"broker_url": URL, "queues": ["default", "reports", "empty"],
                   "env_file": str(tmp_path / "none")}, monkeypatch, lists)
    assert result["queues"] == {"default": 7, "reports": 1, "empty": 0}
    assert result["total_queued"] == 8 and result["unacked"] == 3
    assert result["changed"] is False
    assert "workers" not in result
    connect = [c for c in result["calls"] if c[0] == "connect"][0][1]
    assert connect["password"] == "s3cret-pass" and connect["db"] == 0


def test_redis_cli_fallback_keeps_the_password_off_argv(tmp_path, monkeypatch):
    result = _run({"broker_url": URL, "queues": ["default"], "env_file": str(tmp_path / "none")},
                  monkeypatch, {"default": 4}, have_redis_lib=False)
    assert result["queues"] == {"default": 4}
    runs = [c for c in result["calls"] if c[0] == "run"]
    assert all("s3cret-pass" not in " ".join(c[1]) for c in runs)
    assert runs[0][3] == {"REDISCLI_AUTH": "s3cret-pass"}
    assert runs[0][1][-2:] == ["LLEN", "default"]


def test_env_file_gives_url_and_app_and_inspect_reports_workers(tmp_path, monkeypatch):
    env = tmp_path / "celery.env"
    env.write_text('CELERY_APP="sampleapp"\nCELERY_BROKER_URL="%s"\n' % URL)
    inspect = {
        "ping": {"default@h": {"ok": "pong"}, "reports@h": {"ok": "pong"}},
        "active": {"default@h": [{"id": "a1", "name": "sampleapp.slow", "worker_pid": 7,
                                  "time_start": 1.0, "args": ["secret"]}], "reports@h": []},
        "reserved": {"default@h": [{"id": "a2"}], "reports@h": []},
    }
    result = _run({"env_file": str(env), "queues": ["default"], "inspect": True,
                   "destination": ["default@h"]}, monkeypatch, {"default": 1}, inspect)
    assert result["workers"] == {"default@h": "pong", "reports@h": "pong"}
    assert result["active_count"] == 1 and result["reserved_count"] == 1
    assert "args" not in result["active"]["default@h"][0]
    run = [c for c in result["calls"] if c[0] == "run"][0]
    assert run[1][:4] == ["/opt/celery/venv/bin/celery", "--app=sampleapp", "inspect", "ping"]
    assert "--destination=default@h" in run[1]
    assert run[2] == "/opt/celery/app" and run[3]["CELERY_BROKER_URL"] == URL


def test_no_replies_is_an_empty_answer(tmp_path, monkeypatch):
    result = _run({"broker_url": URL, "app": "proj", "inspect": True,
                   "env_file": str(tmp_path / "none")}, monkeypatch, {}, {})
    assert result["workers"] == {} and result["active_count"] == 0


def test_missing_url_fails(tmp_path, monkeypatch):
    result = _run({"env_file": str(tmp_path / "none")}, monkeypatch)
    assert result["failed"] and "broker URL" in result["msg"]


def test_redis_error_fails_with_address(tmp_path, monkeypatch):
    def boom(client, queues):
        raise RuntimeError("NOAUTH Authentication required")
    monkeypatch.setattr(celery_utils, "queue_lengths", boom)
    result = _run({"broker_url": URL, "env_file": str(tmp_path / "none")}, monkeypatch)
    assert result["failed"] and "127.0.0.1:6379" in result["msg"] and "NOAUTH" in result["msg"]
