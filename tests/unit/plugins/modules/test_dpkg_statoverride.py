# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""dpkg_statoverride against a fake dpkg-statoverride (the system boundary) and real files."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import grp
import os
import pwd
import stat

import pytest

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.platform.plugins.modules import dpkg_statoverride
from ansible_collections.selfhost.platform.tests.unit.plugins.modules.utils import run_module

ME = pwd.getpwuid(os.getuid()).pw_name
MY_GROUP = grp.getgrgid(os.getgid()).gr_name


@pytest.fixture
def dpkg(monkeypatch):
    """A fake override database; records the commands run; --update applies the mode like dpkg does."""
    state = dict(db={}, calls=[])

    def run_command(self, args, check_rc=False, **kwargs):
        state['calls'].append(list(args[1:]))
        if args[1] == '--list':
            entry = state['db'].get(args[2])
            return (0, '%s %s %s %s\n' % (entry[0], entry[1], entry[2], args[2]), '') if entry else (1, '', '')
        if args[1] == '--remove':
            state['db'].pop(args[2])
            return 0, '', ''
        if args[1:3] == ['--update', '--add']:
            owner, group, mode, path = args[3:7]
            state['db'][path] = (owner, group, mode.lstrip('0'))
            os.chmod(path, int(mode, 8))
            return 0, '', ''
        raise AssertionError(args)

    monkeypatch.setattr(AnsibleModule, 'run_command', run_command)
    monkeypatch.setattr(AnsibleModule, 'get_bin_path', lambda self, name, required=False: '/usr/bin/' + name)
    return state


def mode_of(path):
    return '%04o' % stat.S_IMODE(os.stat(str(path)).st_mode)


def run(capsys, check=False, **args):
    return run_module(dpkg_statoverride.main, capsys, args, check=check)


def test_records_and_applies_then_changes_nothing(tmp_path, dpkg, capsys):
    real = tmp_path / 'x86_64-linux-gnu-as'
    real.write_text('')
    os.chmod(str(real), 0o755)
    (tmp_path / 'as').symlink_to(real)
    args = dict(paths=[str(tmp_path / 'as'), str(real)], owner=ME, group=MY_GROUP, mode='0750')
    result, failed = run(capsys, **args)
    assert not failed, result
    assert result['changed_paths'] == [str(real)]
    assert mode_of(real) == '0750'
    assert dpkg['db'][str(real)] == (ME, MY_GROUP, '750')

    dpkg['calls'][:] = []
    result, failed = run(capsys, **args)
    assert not failed and result['changed'] is False
    assert dpkg['calls'] == [['--list', str(real)]]


def test_an_override_with_other_values_is_replaced(tmp_path, dpkg, capsys):
    path = tmp_path / 'gcc'
    path.write_text('')
    os.chmod(str(path), 0o755)
    dpkg['db'][str(path)] = (ME, MY_GROUP, '755')
    result, failed = run(capsys, paths=[str(path)], owner=ME, group=MY_GROUP, mode='0750')
    assert not failed and result['changed_paths'] == [str(path)]
    assert ['--remove', str(path)] in dpkg['calls']
    assert dpkg['db'][str(path)][2] == '750'


def test_a_file_changed_by_hand_is_put_back(tmp_path, dpkg, capsys):
    path = tmp_path / 'gcc'
    path.write_text('')
    os.chmod(str(path), 0o755)
    dpkg['db'][str(path)] = (ME, MY_GROUP, '750')
    result, failed = run(capsys, paths=[str(path)], owner=ME, group=MY_GROUP, mode='0750')
    assert not failed and result['changed'] is True
    assert mode_of(path) == '0750'


def test_check_mode_writes_nothing(tmp_path, dpkg, capsys):
    path = tmp_path / 'gcc'
    path.write_text('')
    os.chmod(str(path), 0o755)
    result, failed = run(capsys, check=True, paths=[str(path)], owner=ME, group=MY_GROUP, mode='0750')
    assert not failed and result['changed'] is True
    assert mode_of(path) == '0755' and dpkg['db'] == {}
    assert [call[0] for call in dpkg['calls']] == ['--list']


def test_missing_paths_fail_unless_ignored(tmp_path, dpkg, capsys):
    absent = str(tmp_path / 'clang')
    result, failed = run(capsys, paths=[absent], owner=ME, group=MY_GROUP, mode='0750')
    assert failed and 'does not exist' in result['msg']
    result, failed = run(capsys, paths=[absent], owner=ME, group=MY_GROUP, mode='0750', ignore_missing=True)
    assert not failed and result['changed'] is False and result['skipped_paths'] == [absent]


def test_absent_removes_only_recorded_overrides(tmp_path, dpkg, capsys):
    recorded, plain = tmp_path / 'gcc', tmp_path / 'cc'
    recorded.write_text('')
    plain.write_text('')
    dpkg['db'][str(recorded)] = (ME, MY_GROUP, '750')
    result, failed = run(capsys, paths=[str(recorded), str(plain)], state='absent')
    assert not failed and result['changed_paths'] == [str(recorded)]
    assert dpkg['db'] == {}


def test_bad_mode_and_missing_owner_fail_clearly(tmp_path, dpkg, capsys):
    path = tmp_path / 'gcc'
    path.write_text('')
    result, failed = run(capsys, paths=[str(path)], owner=ME, group=MY_GROUP, mode='rwx')
    assert failed and 'octal' in result['msg']
    result, failed = run(capsys, paths=[str(path)], mode='0750')
    assert failed and 'owner' in result['msg']
