# -*- coding: utf-8 -*-
# Copyright (c) selfhost.platform maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Shared helpers of the restic modules: connection options, environment, and
classification of restic's answers (exit codes of restic >= 0.17, messages of older ones)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import re

# Exit codes documented by restic 0.17 and later. Older releases (Debian 12 ships 0.14)
# exit 1 for all of these, so the messages are matched as well.
EXIT_REPOSITORY_ABSENT = 10
EXIT_LOCKED = 11
EXIT_WRONG_PASSWORD = 12

ABSENT = 'absent'
PRESENT = 'present'
LOCKED = 'locked'
WRONG_PASSWORD = 'wrong_password'
ERROR = 'error'

# Lower-cased fragments of "the config file is not there" for every backend restic 0.14
# can talk to. "Is there a repository at the following location?" alone is NOT one of
# them: restic prints it after connection errors too, and a repository that cannot be
# reached must never be initialised again.
_ABSENT_MESSAGES = (
    'no such file or directory',      # local, sftp
    'the specified key does not exist',  # s3 (object missing)
    'the specified bucket does not exist',  # s3 (bucket missing)
    'nosuchkey',
    'nosuchbucket',
    '404 not found',                  # rest-server
    'unexpected http response (404)',
)
_LOCKED_MESSAGES = ('repository is already locked', 'unable to create lock in backend')
_WRONG_PASSWORD_MESSAGES = ('wrong password or no key found', 'no key found')

# Connection options shared by both modules (argument spec fragment).
CONNECTION_ARGS = dict(
    repository=dict(type='str'),
    repository_file=dict(type='path'),
    password=dict(type='str', no_log=True),
    password_file=dict(type='path', no_log=False),
    env=dict(type='dict', default={}, no_log=True),
    env_file=dict(type='path'),
    options=dict(type='list', elements='str', default=[]),
    cache_dir=dict(type='path'),
    restic_path=dict(type='path'),
)

CONNECTION_MUTUALLY_EXCLUSIVE = [('repository', 'repository_file'), ('password', 'password_file')]


class ResticError(Exception):
    """A restic call failed in a way the caller must report."""


def parse_env_file(text):
    """Parse the KEY=VALUE file the restic role writes (the systemd EnvironmentFile= format
    restricted to what the role produces): blank lines and # comments are skipped, one level
    of matching single or double quotes around the value is removed."""
    env = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith('#') or line.startswith(';'):
            continue
        if line.startswith('export '):
            line = line[len('export '):].lstrip()
        key, sep, value = line.partition('=')
        key = key.strip()
        if not sep or not re.match(r'^[A-Za-z_][A-Za-z0-9_]*$', key):
            raise ResticError('line {0} of the environment file is not KEY=VALUE'.format(number))
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in ('"', "'"):
            value = value[1:-1]
        env[key] = value
    return env


def build_environment(params, env_file_text=None):
    """Environment for restic from the module parameters. Explicit parameters win over
    the env dict, which wins over the env file. Never returns the password itself when a
    password file is given."""
    env = {}
    if env_file_text is not None:
        env.update(parse_env_file(env_file_text))
    env.update(dict((str(k), str(v)) for k, v in (params.get('env') or {}).items()))
    if params.get('repository'):
        env['RESTIC_REPOSITORY'] = params['repository']
        env.pop('RESTIC_REPOSITORY_FILE', None)
    elif params.get('repository_file'):
        env['RESTIC_REPOSITORY_FILE'] = params['repository_file']
        env.pop('RESTIC_REPOSITORY', None)
    if params.get('password') is not None:
        env['RESTIC_PASSWORD'] = params['password']
        env.pop('RESTIC_PASSWORD_FILE', None)
        env.pop('RESTIC_PASSWORD_COMMAND', None)
    elif params.get('password_file'):
        env['RESTIC_PASSWORD_FILE'] = params['password_file']
        env.pop('RESTIC_PASSWORD', None)
        env.pop('RESTIC_PASSWORD_COMMAND', None)
    if not (env.get('RESTIC_REPOSITORY') or env.get('RESTIC_REPOSITORY_FILE')):
        raise ResticError('no repository given: set repository or repository_file, '
                          'or RESTIC_REPOSITORY(_FILE) in env or env_file')
    if not (env.get('RESTIC_PASSWORD') or env.get('RESTIC_PASSWORD_FILE') or env.get('RESTIC_PASSWORD_COMMAND')):
        raise ResticError('no password given: set password or password_file, '
                          'or RESTIC_PASSWORD(_FILE/_COMMAND) in env or env_file')
    return env


def referenced_files(env):
    """Files restic will read for the location and the password."""
    return [env[k] for k in ('RESTIC_REPOSITORY_FILE', 'RESTIC_PASSWORD_FILE') if env.get(k)]


def base_command(restic_path, params):
    """restic plus the global options every call carries."""
    cmd = [restic_path]
    for option in params.get('options') or []:
        cmd.extend(['--option', option])
    if params.get('cache_dir'):
        cmd.extend(['--cache-dir', params['cache_dir']])
    return cmd


def classify(rc, stderr):
    """What a failed or successful probe means: PRESENT, ABSENT, LOCKED, WRONG_PASSWORD or ERROR."""
    if rc == 0:
        return PRESENT
    if rc == EXIT_REPOSITORY_ABSENT:
        return ABSENT
    if rc == EXIT_LOCKED:
        return LOCKED
    if rc == EXIT_WRONG_PASSWORD:
        return WRONG_PASSWORD
    text = (stderr or '').lower()
    if any(m in text for m in _WRONG_PASSWORD_MESSAGES):
        return WRONG_PASSWORD
    if any(m in text for m in _LOCKED_MESSAGES):
        return LOCKED
    if 'unable to open config file' in text and any(m in text for m in _ABSENT_MESSAGES):
        return ABSENT
    return ERROR


def redact(text, env):
    """Remove secrets restic may echo (a rest: URL with credentials) from a message."""
    text = text or ''
    for key in ('RESTIC_PASSWORD', 'AWS_SECRET_ACCESS_KEY', 'RESTIC_REST_PASSWORD'):
        if env.get(key):
            text = text.replace(env[key], '********')
    return re.sub(r'(\w+://[^:/@\s]+:)[^@\s]+@', r'\1********@', text)


_TIME_RE = re.compile(
    r'^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})$')


def parse_time(value):
    """Parse restic's RFC 3339 time (nanoseconds, Z or offset) into an aware datetime."""
    match = _TIME_RE.match(value or '')
    if not match:
        raise ValueError('not a restic time: {0!r}'.format(value))
    date, clock, fraction, zone = match.groups()
    micro = int((fraction or '0')[:6].ljust(6, '0'))
    naive = datetime.datetime.strptime(date + 'T' + clock, '%Y-%m-%dT%H:%M:%S').replace(microsecond=micro)
    if zone == 'Z':
        offset = datetime.timedelta(0)
    else:
        sign = -1 if zone[0] == '-' else 1
        digits = zone[1:].replace(':', '')
        offset = sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return naive.replace(tzinfo=datetime.timezone(offset))


def epoch(value):
    """Seconds since the epoch of a restic time string."""
    moment = parse_time(value)
    zero = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (moment - zero).total_seconds()
