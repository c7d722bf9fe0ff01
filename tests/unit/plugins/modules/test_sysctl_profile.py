# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import stat

import pytest


from ansible_collections.selfhost.platform.plugins.module_utils import sysctl as sysctl_utils
from ansible_collections.selfhost.platform.plugins.modules import sysctl_profile
from ansible_collections.selfhost.platform.tests.unit.plugins.modules.utils import run_module


@pytest.fixture
def proc(tmp_path, monkeypatch):
    """A fake /proc/sys tree; the module reads the root from the module_utils constant."""
    root = tmp_path / 'proc_sys'
    root.mkdir()
    monkeypatch.setattr(sysctl_utils, 'PROC_ROOT', str(root))

    def set_key(key, value):
        path = sysctl_utils.key_to_path(key, str(root))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as handle:
            handle.write(value + '\n')
        return path

    def get_key(key):
        with open(sysctl_utils.key_to_path(key, str(root))) as handle:
            return handle.read()

    set_key('vm.swappiness', '60')
    set_key('net.core.somaxconn', '4096')
    set_key('net.ipv4.ip_local_port_range', '32768\t60999')
    proc_tree = type('Proc', (), {})()
    proc_tree.root = str(root)
    proc_tree.set = set_key
    proc_tree.get = get_key
    return proc_tree


@pytest.fixture
def conf(tmp_path, monkeypatch):
    directory = tmp_path / 'sysctl.d'
    directory.mkdir()
    # The boot-order check reads only this directory, not the machine's /etc/sysctl.d.
    monkeypatch.setattr(sysctl_utils, 'BOOT_DIRS', (str(directory),))
    return str(directory / '60-test.conf')


def test_reports_a_key_a_later_file_sets_otherwise(proc, conf, capsys):
    directory = os.path.dirname(conf)
    with open(os.path.join(directory, 'protect-links.conf'), 'w') as handle:
        handle.write('vm.swappiness = 60\nnet.core.somaxconn = 1024\n')
    with open(os.path.join(directory, '10-early.conf'), 'w') as handle:
        handle.write('net.core.somaxconn = 1\n')
    result, failed = run(capsys, dict(path=conf, settings={'vm.swappiness': 10, 'net.core.somaxconn': 1024}))
    assert not failed
    assert result['overridden_at_boot'] == [
        dict(key='vm.swappiness', wanted='10', value='60', file=os.path.join(directory, 'protect-links.conf'))]


def run(capsys, args, check=False, diff=False):
    return run_module(sysctl_profile.main, capsys, args, check=check, diff=diff)


def read(path):
    with open(path) as handle:
        return handle.read()


def make_read_only(monkeypatch, *read_only_keys):
    """Make writes to some keys fail the way a read-only /proc/sys does in a container."""
    real_write = sysctl_utils.write_value

    def fake_write(key, value, proc_root=sysctl_utils.PROC_ROOT):
        if key in read_only_keys:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), key)
        return real_write(key, value, proc_root)

    def fake_can_write(key, proc_root=sysctl_utils.PROC_ROOT):
        return key not in read_only_keys

    monkeypatch.setattr(sysctl_profile, 'write_value', fake_write)
    monkeypatch.setattr(sysctl_profile, 'can_write', fake_can_write)


SETTINGS = {
    'vm.swappiness': 10,
    'net.core.somaxconn': '4096',
    'net.ipv4.ip_local_port_range': '32768 60999',
}


def test_new_file_then_idempotent(capsys, proc, conf):
    args = dict(path=conf, settings=SETTINGS, header='Ansible managed')
    result, failed = run(capsys, args)
    assert not failed
    assert result['changed'] is True
    assert result['file_changed'] is True
    assert result['applied'] == ['vm.swappiness']
    # Tab-separated live value equals the space-separated wanted one.
    assert sorted(result['unchanged']) == ['net.core.somaxconn', 'net.ipv4.ip_local_port_range']
    assert result['skipped_keys'] == []
    assert result['path'] == conf
    assert read(conf) == (
        '# Ansible managed\n'
        'vm.swappiness = 10\n'
        'net.core.somaxconn = 4096\n'
        'net.ipv4.ip_local_port_range = 32768 60999\n'
    )
    assert stat.S_IMODE(os.stat(conf).st_mode) == 0o644
    assert proc.get('vm.swappiness') == '10\n'
    # The live multi-value key was not rewritten.
    assert proc.get('net.ipv4.ip_local_port_range') == '32768\t60999\n'

    result, failed = run(capsys, args)
    assert not failed
    assert result['changed'] is False
    assert result['file_changed'] is False
    assert result['applied'] == []
    assert len(result['unchanged']) == 3


def test_check_mode_writes_nothing(capsys, proc, conf):
    result, failed = run(capsys, dict(path=conf, settings=SETTINGS), check=True, diff=True)
    assert not failed
    assert result['changed'] is True
    assert result['file_changed'] is True
    assert result['applied'] == ['vm.swappiness']
    assert not os.path.exists(conf)
    assert proc.get('vm.swappiness') == '60\n'
    assert result['diff']['before'] == ''
    assert 'vm.swappiness = 10\n' in result['diff']['after']
    assert os.listdir(os.path.dirname(conf)) == []


def test_check_mode_predicts_read_only(capsys, proc, conf, monkeypatch):
    make_read_only(monkeypatch, 'vm.swappiness')
    result, failed = run(capsys, dict(path=conf, settings=SETTINGS, apply=True), check=True)
    assert not failed
    assert result['applied'] == []
    assert result['skipped_keys'][0]['reason'] == sysctl_utils.REASON_READ_ONLY


def test_diff_shows_before_and_after(capsys, proc, conf):
    with open(conf, 'w') as handle:
        handle.write('vm.swappiness = 60\n')
    result, failed = run(capsys, dict(path=conf, settings={'vm.swappiness': 60}), diff=True)
    assert not failed
    assert result['file_changed'] is False
    assert result['diff'] == dict(before='vm.swappiness = 60\n', after='vm.swappiness = 60\n',
                                  before_header=conf, after_header=conf)
    result, failed = run(capsys, dict(path=conf, settings={'vm.swappiness': 5}), diff=True)
    assert result['changed'] is True
    assert result['diff']['before'] == 'vm.swappiness = 60\n'
    assert result['diff']['after'] == 'vm.swappiness = 5\n'


def test_read_only_key_is_skipped_and_run_is_idempotent(capsys, proc, conf, monkeypatch):
    make_read_only(monkeypatch, 'vm.swappiness', 'net.core.somaxconn')
    settings = {'vm.swappiness': 10, 'net.core.somaxconn': 8192}
    result, failed = run(capsys, dict(path=conf, settings=settings))
    assert not failed
    assert result['changed'] is True  # the file
    assert result['applied'] == []
    assert result['skipped_keys'] == [
        dict(key='vm.swappiness', wanted='10', current='60', reason=sysctl_utils.REASON_READ_ONLY),
        dict(key='net.core.somaxconn', wanted='8192', current='4096', reason=sysctl_utils.REASON_READ_ONLY),
    ]
    assert proc.get('vm.swappiness') == '60\n'
    assert 'vm.swappiness = 10\n' in read(conf)
    # A true 'skipped' key would make Ansible show the whole task as skipped.
    assert 'skipped' not in result

    result, failed = run(capsys, dict(path=conf, settings=settings))
    assert not failed
    assert result['changed'] is False
    assert len(result['skipped_keys']) == 2


def test_unknown_key_is_skipped(capsys, proc, conf):
    settings = {'net.ipv4.tcp_not_a_real_key': 1, 'vm.swappiness': 60}
    result, failed = run(capsys, dict(path=conf, settings=settings))
    assert not failed
    assert result['skipped_keys'] == [dict(key='net.ipv4.tcp_not_a_real_key', wanted='1', current=None,
                                      reason=sysctl_utils.REASON_UNKNOWN)]
    assert result['unchanged'] == ['vm.swappiness']
    # The file still carries the key: another kernel may know it.
    assert 'net.ipv4.tcp_not_a_real_key = 1\n' in read(conf)
    assert not os.path.exists(os.path.join(proc.root, 'net', 'ipv4', 'tcp_not_a_real_key'))


def test_kernel_rejecting_value_is_skipped(capsys, proc, conf, monkeypatch):
    def reject(key, value, proc_root=None):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))

    monkeypatch.setattr(sysctl_profile, 'write_value', reject)
    result, failed = run(capsys, dict(path=conf, settings={'vm.swappiness': 1000}))
    assert not failed
    assert result['skipped_keys'][0]['reason'] == sysctl_utils.REASON_REJECTED


def test_kernel_keeping_another_value_is_reported(capsys, proc, conf, monkeypatch):
    def clamp(key, value, proc_root=None):
        proc.set(key, '100')

    monkeypatch.setattr(sysctl_profile, 'write_value', clamp)
    result, failed = run(capsys, dict(path=conf, settings={'vm.swappiness': 1000}, apply=True))
    assert not failed
    assert result['applied'] == []
    assert result['skipped_keys'][0]['current'] == '100'
    assert result['skipped_keys'][0]['reason'].startswith(sysctl_utils.REASON_REJECTED)
    assert result['changed'] is True


def test_whitespace_normalized_live_value_applied(capsys, proc, conf):
    result, failed = run(capsys, dict(path=conf, settings={'net.ipv4.ip_local_port_range': '1024  65000'}))
    assert not failed
    assert result['applied'] == ['net.ipv4.ip_local_port_range']
    assert proc.get('net.ipv4.ip_local_port_range') == '1024  65000\n'
    # The kernel would print it tab-separated; still equal.
    proc.set('net.ipv4.ip_local_port_range', '1024\t65000')
    result, failed = run(capsys, dict(path=conf, settings={'net.ipv4.ip_local_port_range': '1024  65000'}))
    assert result['changed'] is False
    assert result['unchanged'] == ['net.ipv4.ip_local_port_range']


def test_slash_form_key(capsys, proc, conf):
    result, failed = run(capsys, dict(path=conf, settings={'vm/swappiness': 1}))
    assert not failed
    assert result['applied'] == ['vm/swappiness']
    assert proc.get('vm.swappiness') == '1\n'


def test_apply_false_only_writes_file(capsys, proc, conf):
    result, failed = run(capsys, dict(path=conf, settings={'vm.swappiness': 1}, apply=False))
    assert not failed
    assert result['changed'] is True
    assert result['applied'] == [] and result['unchanged'] == [] and result['skipped_keys'] == []
    assert proc.get('vm.swappiness') == '60\n'


def test_mode_change_alone_is_a_change(capsys, proc, conf):
    run(capsys, dict(path=conf, settings={'vm.swappiness': 60}))
    result, failed = run(capsys, dict(path=conf, settings={'vm.swappiness': 60}, mode='0600'))
    assert not failed
    assert result['changed'] is True and result['file_changed'] is True
    assert stat.S_IMODE(os.stat(conf).st_mode) == 0o600


@pytest.mark.parametrize('settings, message', [
    ({'vm swappiness': 1}, 'invalid sysctl key'),
    ({'net.ipv4..ip_forward': 1}, 'invalid sysctl key'),
    ({'vm.swappiness': '1\n2'}, 'newline'),
    ({'vm.swappiness': True}, 'boolean'),
    ({'vm.swappiness': 1, 'vm/swappiness': 2}, 'name the same setting'),
])
def test_invalid_input_fails(capsys, proc, conf, settings, message):
    result, failed = run(capsys, dict(path=conf, settings=settings))
    assert failed
    assert result['failed'] is True
    assert message in result['msg']
    assert not os.path.exists(conf)
    assert proc.get('vm.swappiness') == '60\n'


def test_missing_directory_fails(capsys, proc, tmp_path):
    result, failed = run(capsys, dict(path=str(tmp_path / 'nope' / 'x.conf'), settings={'vm.swappiness': 1}))
    assert failed
    assert 'does not exist' in result['msg']


def test_settings_required_when_present(capsys, proc, conf):
    result, failed = run(capsys, dict(path=conf))
    assert failed
    assert 'settings' in result['msg']


def test_state_absent(capsys, proc, conf):
    run(capsys, dict(path=conf, settings={'vm.swappiness': 10}))
    assert proc.get('vm.swappiness') == '10\n'

    result, failed = run(capsys, dict(path=conf, state='absent'), check=True)
    assert not failed and result['changed'] is True
    assert os.path.exists(conf)

    result, failed = run(capsys, dict(path=conf, state='absent'), diff=True)
    assert not failed
    assert result['changed'] is True
    assert result['diff']['before'] == 'vm.swappiness = 10\n' and result['diff']['after'] == ''
    assert not os.path.exists(conf)
    # Live values are not reverted.
    assert proc.get('vm.swappiness') == '10\n'

    result, failed = run(capsys, dict(path=conf, state='absent'))
    assert not failed and result['changed'] is False
