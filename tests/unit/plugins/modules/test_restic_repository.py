# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible.module_utils import basic

from ansible_collections.selfhost.platform.plugins.module_utils import restic as restic_utils
from ansible_collections.selfhost.platform.plugins.modules import restic_repository
from ansible_collections.selfhost.platform.tests.unit.plugins.modules.utils import run_module

CONFIG = json.dumps({'version': 2, 'id': 'abc123', 'chunker_polynomial': '1'})
ABSENT_014 = ('Fatal: unable to open config file: stat /srv/r/config: no such file or directory\n'
              'Is there a repository at the following location?\n/srv/r\n')
ABSENT_S3 = ('Fatal: unable to open config file: Stat: The specified key does not exist.\n'
             'Is there a repository at the following location?\ns3:http://127.0.0.1:9000/b\n')
REFUSED = ('Fatal: unable to open config file: Stat: Head "http://127.0.0.1:9001/b/config": dial tcp '
           '127.0.0.1:9001: connect: connection refused\nIs there a repository at the following location?\n')
LOCKED_014 = ('unable to create lock in backend: repository is already locked exclusively by PID 1 on h '
              'by root (UID 0, GID 0)\n')
WRONG_014 = 'Fatal: wrong password or no key found\n'


class Restic(object):
    """Stands in for run_command: answers by subcommand, records every call."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, cmd, environ_update=None, **kwargs):
        self.calls.append((list(cmd), dict(environ_update or {})))
        sub = 'init' if 'init' in cmd else 'cat'
        answer = self.answers[sub]
        if isinstance(answer, list):
            return answer.pop(0)
        return answer

    def subcommands(self):
        return ['init' if 'init' in cmd else 'cat' for cmd, _env in self.calls]


@pytest.fixture
def files(tmp_path):
    pw = tmp_path / 'pw'
    pw.write_text('secret\n')
    env = tmp_path / 'repo.env'
    env.write_text("# managed\nRESTIC_REPOSITORY='/srv/r'\nRESTIC_PASSWORD_FILE='{0}'\n"
                   "AWS_SECRET_ACCESS_KEY=\"s3cr3t\"\n".format(pw))
    return dict(pw=str(pw), env=str(env), dir=tmp_path)


def run(capsys, monkeypatch, restic, args, check=False):
    monkeypatch.setattr(basic.AnsibleModule, 'run_command', lambda self, *a, **kw: restic(*a, **kw))
    monkeypatch.setattr(basic.AnsibleModule, 'get_bin_path', lambda self, *a, **kw: '/usr/bin/restic')
    return run_module(restic_repository.main, capsys, args, check=check)


def test_existing_repository_is_left_alone(capsys, monkeypatch, files):
    restic = Restic({'cat': (0, CONFIG, '')})
    result, failed = run(capsys, monkeypatch, restic, dict(repository='/srv/r', password_file=files['pw']))
    assert not failed
    assert result['changed'] is False
    assert result['initialized'] is False
    assert result['exists'] is True
    assert result['repository_id'] == 'abc123'
    assert restic.subcommands() == ['cat']
    cmd, env = restic.calls[0]
    assert cmd == ['/usr/bin/restic', 'cat', 'config']
    assert env['RESTIC_REPOSITORY'] == '/srv/r'
    assert env['RESTIC_PASSWORD_FILE'] == files['pw']


@pytest.mark.parametrize('answer', [(1, '', ABSENT_014), (1, '', ABSENT_S3), (10, '', 'Fatal: repository does not exist')])
def test_absent_repository_is_initialised(capsys, monkeypatch, files, answer):
    restic = Restic({'cat': [answer, (0, CONFIG, '')], 'init': (0, 'created restic repository abc123', '')})
    result, failed = run(capsys, monkeypatch, restic,
                         dict(repository='/srv/r', password_file=files['pw'], init_args=['--repository-version=2']))
    assert not failed
    assert result['changed'] is True
    assert result['initialized'] is True
    assert result['exists'] is False
    assert result['repository_id'] == 'abc123'
    assert restic.subcommands() == ['cat', 'init', 'cat']
    assert restic.calls[1][0] == ['/usr/bin/restic', 'init', '--repository-version=2']


def test_check_mode_does_not_initialise(capsys, monkeypatch, files):
    restic = Restic({'cat': (1, '', ABSENT_014), 'init': (0, '', '')})
    result, failed = run(capsys, monkeypatch, restic, dict(repository='/srv/r', password_file=files['pw']), check=True)
    assert not failed
    assert result['changed'] is True
    assert result['initialized'] is True
    assert restic.subcommands() == ['cat']


def test_check_mode_before_the_env_file_exists(capsys, monkeypatch, files):
    restic = Restic({})
    result, failed = run(capsys, monkeypatch, restic, dict(env_file=str(files['dir'] / 'missing.env')), check=True)
    assert not failed
    assert result['changed'] is True
    assert result['exists'] is None
    assert restic.calls == []


def test_missing_env_file_fails_outside_check_mode(capsys, monkeypatch, files):
    result, failed = run(capsys, monkeypatch, Restic({}), dict(env_file=str(files['dir'] / 'missing.env')))
    assert failed
    assert 'does not exist' in result['msg']


@pytest.mark.parametrize('answer', [(1, '', WRONG_014), (12, '', 'Fatal: wrong password or no key found')])
def test_wrong_password_fails_clearly_and_never_initialises(capsys, monkeypatch, files, answer):
    restic = Restic({'cat': answer, 'init': (0, '', '')})
    result, failed = run(capsys, monkeypatch, restic, dict(repository='/srv/r', password_file=files['pw']))
    assert failed
    assert 'wrong password' in result['msg']
    assert 'NOT re-initialised' in result['msg']
    assert restic.subcommands() == ['cat']


@pytest.mark.parametrize('answer', [(1, '', LOCKED_014), (11, '', 'repository is already locked')])
def test_locked_repository_exists_and_warns(capsys, monkeypatch, files, answer):
    restic = Restic({'cat': answer, 'init': (0, '', '')})
    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, 'warn', lambda self, text: warnings.append(text))
    result, failed = run(capsys, monkeypatch, restic, dict(repository='/srv/r', password_file=files['pw']))
    assert not failed
    assert result['changed'] is False
    assert result['locked'] is True
    assert result['exists'] is True
    assert any('is locked' in w for w in warnings)
    assert restic.subcommands() == ['cat']


def test_unreachable_repository_is_not_initialised(capsys, monkeypatch, files):
    restic = Restic({'cat': (1, '', REFUSED), 'init': (0, '', '')})
    result, failed = run(capsys, monkeypatch, restic,
                         dict(repository='s3:http://127.0.0.1:9001/b', password_file=files['pw']))
    assert failed
    assert 'cannot tell whether' in result['msg']
    assert 'connection refused' in result['msg']
    assert restic.subcommands() == ['cat']


def test_failed_init_is_reported(capsys, monkeypatch, files):
    restic = Restic({'cat': (1, '', ABSENT_014), 'init': (1, '', 'Fatal: create repository failed: permission denied')})
    result, failed = run(capsys, monkeypatch, restic, dict(repository='/srv/r', password_file=files['pw']))
    assert failed
    assert result['initialized'] is False
    assert 'permission denied' in result['msg']


def test_env_file_options_and_secret_redaction(capsys, monkeypatch, files):
    restic = Restic({'cat': (1, '', 'Fatal: boom for rest:https://u:hunter2@h:8000/ with s3cr3t')})
    result, failed = run(capsys, monkeypatch, restic,
                         dict(env_file=files['env'], options=['sftp.command=ssh x'], cache_dir='/var/cache/restic'))
    assert failed
    cmd, env = restic.calls[0]
    assert cmd == ['/usr/bin/restic', '--option', 'sftp.command=ssh x', '--cache-dir', '/var/cache/restic',
                   'cat', 'config']
    assert env['RESTIC_REPOSITORY'] == '/srv/r'
    assert env['AWS_SECRET_ACCESS_KEY'] == 's3cr3t'
    assert 'hunter2' not in result['msg'] and 's3cr3t' not in result['msg']


def test_password_is_passed_by_environment_only(capsys, monkeypatch, files):
    restic = Restic({'cat': (0, CONFIG, '')})
    result, failed = run(capsys, monkeypatch, restic, dict(repository='/srv/r', password='pa55'))
    assert not failed
    cmd, env = restic.calls[0]
    assert 'pa55' not in ' '.join(cmd)
    assert env['RESTIC_PASSWORD'] == 'pa55'


def test_no_password_fails(capsys, monkeypatch):
    result, failed = run(capsys, monkeypatch, Restic({}), dict(repository='/srv/r'))
    assert failed
    assert 'no password' in result['msg']


def test_parse_env_file_rejects_garbage():
    with pytest.raises(restic_utils.ResticError):
        restic_utils.parse_env_file('JUST A LINE\n')
    assert restic_utils.parse_env_file("export A='1'\n\n; c\nB=\"x y\"\nC=z\n") == dict(A='1', B='x y', C='z')


def test_classify_does_not_mistake_errors_for_absence():
    assert restic_utils.classify(1, REFUSED) == restic_utils.ERROR
    assert restic_utils.classify(1, ABSENT_014) == restic_utils.ABSENT
    assert restic_utils.classify(0, '') == restic_utils.PRESENT


def test_parse_time_with_nanoseconds_and_offset():
    assert restic_utils.epoch('1970-01-01T00:00:10Z') == 10
    assert restic_utils.epoch('1970-01-01T01:00:10.123456789+01:00') == pytest.approx(10.123456)
