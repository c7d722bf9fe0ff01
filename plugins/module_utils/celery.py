# -*- coding: utf-8 -*-
# Copyright (c) selfhost.platform maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers of selfhost.platform.celery_info: broker URLs, env files, queue keys, Redis access."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

try:
    from urllib.parse import urlsplit, unquote
except ImportError:  # pragma: no cover  (Python 2 is not supported by the collection)
    from urlparse import urlsplit  # type: ignore
    from urllib import unquote  # type: ignore

# kombu's Redis transport keeps priority messages in extra lists named
# "<queue>\x06\x16<priority>" (priority_steps 0, 3, 6, 9; step 0 is the plain name).
PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)
# Hash of messages delivered to a worker but not yet acknowledged (acks_late).
UNACKED_KEY = "unacked"


def parse_broker_url(url):
    """Split redis://[user][:password]@host[:port][/db] into connection settings."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError("only redis:// and rediss:// broker URLs are supported, got %s://" % parts.scheme)
    path = parts.path.strip("/")
    db = 0
    if path:
        if not path.isdigit():
            raise ValueError("the database in the broker URL must be a number, got %r" % path)
        db = int(path)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 6379,
        "db": db,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "tls": parts.scheme == "rediss",
    }


def read_env_file(text):
    """Parse KEY=VALUE lines (systemd EnvironmentFile style, optional quotes)."""
    env = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def queue_keys(queue):
    """Every Redis list holding messages of one queue, plain name first."""
    return [queue] + ["%s%s%d" % (queue, PRIORITY_SEP, step) for step in PRIORITY_STEPS]


class PyRedisClient(object):
    """Read-only access through the redis Python library."""

    def __init__(self, redis_module, settings):
        self._conn = redis_module.Redis(
            host=settings["host"], port=settings["port"], db=settings["db"],
            username=settings["username"], password=settings["password"],
            ssl=settings["tls"], socket_timeout=10)

    def llen(self, key):
        return int(self._conn.llen(key))

    def hlen(self, key):
        return int(self._conn.hlen(key))


class RedisCliClient(object):
    """Read-only access through redis-cli (the password goes through REDISCLI_AUTH)."""

    def __init__(self, module, cli, settings):
        self._module = module
        self._base = [cli, "-h", settings["host"], "-p", str(settings["port"]),
                      "-n", str(settings["db"]), "--no-auth-warning", "--raw"]
        if settings["username"]:
            self._base += ["--user", settings["username"]]
        if settings["tls"]:
            self._base.append("--tls")
        self._env = {"REDISCLI_AUTH": settings["password"]} if settings["password"] else {}

    def _int(self, *command):
        rc, out, err = self._module.run_command(self._base + list(command), environ_update=self._env)
        text = out.strip()
        if rc != 0 or not text.lstrip("-").isdigit():
            raise RuntimeError("redis-cli %s failed: %s" % (command[0], (err or out).strip()))
        return int(text)

    def llen(self, key):
        return self._int("LLEN", key)

    def hlen(self, key):
        return self._int("HLEN", key)


def queue_lengths(client, queues):
    """Messages waiting per queue (all priority lists summed)."""
    return dict((q, sum(client.llen(k) for k in queue_keys(q))) for q in queues)


def parse_inspect(stdout):
    """`celery inspect ... --json` prints one JSON object {node: reply}; find and load it."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    if not stdout.strip():
        return {}
    raise ValueError("no JSON reply in the celery inspect output: %s" % stdout.strip()[:200])
