# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible.module_utils import basic

from ansible_collections.selfhost.platform.plugins.modules import restic_snapshots_info
from ansible_collections.selfhost.platform.tests.unit.plugins.modules.utils import run_module

NOW = 1700000000.0  # 2023-11-14T22:13:20Z

SNAPSHOTS = [
    {'time': '2023-11-14T21:13:20.123456789Z', 'id': 'b' * 64, 'short_id': 'bbbbbbbb',
     'hostname': 'web1', 'paths': ['/srv'], 'tags': ['videos', 'set:media']},
    {'time': '2023-11-14T10:13:20Z', 'id': 'a' * 64, 'short_id': 'aaaaaaaa',
     'hostname': 'web1', 'paths': ['/srv'], 'tags': ['videos']},
    {'time': '2023-11-14T23:13:20+02:00', 'id': 'c' * 64, 'short_id': 'cccccccc',
     'hostname': 'web1', 'paths': ['/etc'], 'tags': ['configs']},
]


def run(capsys, monkeypatch, answer, args, check=False):
    calls = []

    def fake_run(self, cmd, environ_update=None, **kwargs):
        calls.append((list(cmd), dict(environ_update or {})))
        return answer

    monkeypatch.setattr(basic.AnsibleModule, 'run_command', fake_run)
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda self, *a, **kw: '/usr/bin/restic')
    monkeypatch.setattr(restic_snapshots_info.time, 'time', lambda: NOW)
    result, failed = run_module(restic_snapshots_info.main, capsys, args, check=check)
    return result, failed, calls


BASE = dict(repository='/srv/r', password='pw')


def test_newest_per_tag_and_ages(capsys, monkeypatch):
    result, failed, calls = run(capsys, monkeypatch, (0, json.dumps(SNAPSHOTS), ''), BASE, check=True)
    assert not failed
    assert result['changed'] is False
    assert result['count'] == 3
    # Sorted oldest first whatever order restic printed them in; offsets honoured.
    assert [s['short_id'] for s in result['snapshots']] == ['aaaaaaaa', 'cccccccc', 'bbbbbbbb']
    assert result['newest']['short_id'] == 'bbbbbbbb'
    assert result['newest']['age_seconds'] == 3599
    assert result['newest_per_tag']['videos']['short_id'] == 'bbbbbbbb'
    assert result['newest_per_tag']['set:media']['age_seconds'] == 3599
    assert result['newest_per_tag']['configs']['age_seconds'] == 3600
    assert result['now'] == NOW
    assert calls[0][0] == ['/usr/bin/restic', 'snapshots', '--json']


def test_filters_and_no_lock(capsys, monkeypatch):
    args = dict(BASE, tags=['videos', 'a,b'], host='web1', no_lock=True)
    result, failed, calls = run(capsys, monkeypatch, (0, '[]', ''), args)
    assert not failed
    assert result['count'] == 0
    assert result['newest'] is None
    assert result['newest_per_tag'] == {}
    assert calls[0][0] == ['/usr/bin/restic', '--no-lock', 'snapshots', '--json',
                           '--tag', 'videos', '--tag', 'a,b', '--host', 'web1']


def test_restic_null_output_is_empty(capsys, monkeypatch):
    result, failed, calls = run(capsys, monkeypatch, (0, 'null', ''), BASE)
    assert not failed
    assert result['snapshots'] == []


@pytest.mark.parametrize('answer,state', [
    ((1, '', 'Fatal: wrong password or no key found'), 'wrong_password'),
    ((12, '', ''), 'wrong_password'),
    ((1, '', 'unable to create lock in backend: repository is already locked exclusively'), 'locked'),
    ((1, '', 'Fatal: unable to open config file: stat /srv/r/config: no such file or directory'), 'absent'),
])
def test_failures_are_explained(capsys, monkeypatch, answer, state):
    result, failed, calls = run(capsys, monkeypatch, answer, BASE)
    assert failed
    assert result['state'] == state
    assert 'cannot list snapshots' in result['msg']


def test_garbage_output_fails(capsys, monkeypatch):
    result, failed, calls = run(capsys, monkeypatch, (0, 'not json', ''), BASE)
    assert failed
    assert 'no JSON' in result['msg']
