# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import grp
import os
import pwd
import stat

import pytest


from ansible_collections.selfhost.platform.plugins.modules import managed_files
from ansible_collections.selfhost.platform.tests.unit.plugins.modules.utils import run_module


def run(capsys, files, check=False, diff=False, trees=None):
    """Run main() with the given entries; return (result dict, failed flag)."""
    args = dict(files=files)
    if trees is not None:
        args['validate_trees'] = trees
    return run_module(managed_files.main, capsys, args, check=check, diff=diff)


def read(path):
    with open(path) as handle:
        return handle.read()


def mode_of(path):
    return '%04o' % stat.S_IMODE(os.lstat(path).st_mode)


def test_writes_directories_and_files_then_changes_nothing(tmp_path, capsys):
    conf_dir = str(tmp_path / 'app' / 'conf.d')
    conf = os.path.join(conf_dir, 'app.conf')
    secret = os.path.join(conf_dir, 'secret.env')
    files = [
        dict(path=conf_dir, state='directory', mode='0750'),
        dict(path=conf, content='a = 1\n'),
        dict(path=secret, content='TOKEN=x\n', mode='0600'),
    ]
    result, failed = run(capsys, files)
    assert not failed
    assert result['changed'] is True
    assert result['changed_paths'] == [conf_dir, conf, secret]
    assert read(conf) == 'a = 1\n'
    assert mode_of(conf_dir) == '0750'
    assert mode_of(conf) == '0644'
    assert mode_of(secret) == '0600'
    # No temporary file is left next to the files.
    assert sorted(os.listdir(conf_dir)) == ['app.conf', 'secret.env']

    result, failed = run(capsys, files)
    assert not failed
    assert result['changed'] is False
    assert result['changed_paths'] == []
    assert [item['changed'] for item in result['files']] == [False, False, False]


def test_check_mode_reports_and_writes_nothing(tmp_path, capsys):
    existing = tmp_path / 'existing.conf'
    existing.write_text('old\n')
    new_dir = str(tmp_path / 'new')
    files = [
        dict(path=str(existing), content='new\n'),
        dict(path=new_dir, state='directory'),
        dict(path=os.path.join(new_dir, 'inside.conf'), content='x\n', validate='false %s'),
    ]
    result, failed = run(capsys, files, check=True, diff=True)
    assert not failed
    assert result['changed'] is True
    assert result['changed_paths'] == [str(existing), new_dir, os.path.join(new_dir, 'inside.conf')]
    assert existing.read_text() == 'old\n'
    assert not os.path.exists(new_dir)
    contents = [item for item in result['diff'] if 'attributes' not in item['before_header']]
    assert [(item['before'], item['after']) for item in contents] == [('old\n', 'new\n'), ('', 'x\n')]


def test_a_failed_validation_writes_nothing_and_names_each_file(tmp_path, capsys):
    good = tmp_path / 'good.conf'
    bad = tmp_path / 'bad.conf'
    other_bad = tmp_path / 'other.conf'
    good.write_text('old\n')
    files = [
        dict(path=str(good), content='new\n', validate='grep -q new %s'),
        dict(path=str(bad), content='broken\n', validate='grep -q valid %s'),
        dict(path=str(other_bad), content='broken\n', validate='sh -c "echo bad syntax in $0 >&2; exit 3" %s'),
    ]
    result, failed = run(capsys, files)
    assert failed
    assert 'nothing was written' in result['msg']
    assert str(bad) in result['msg'] and str(other_bad) in result['msg']
    # The checker's message names the destination, not the temporary copy.
    assert 'bad syntax in {0}'.format(other_bad) in result['msg']
    assert 'exited 3' in result['msg']
    assert result['failed_validation'] == [str(bad), str(other_bad)]
    assert good.read_text() == 'old\n'
    assert not bad.exists() and not other_bad.exists()


def test_validation_checks_the_new_content(tmp_path, capsys):
    target = tmp_path / 'checked.conf'
    result, failed = run(capsys, [dict(path=str(target), content='valid\n', validate='grep -qx valid %s')])
    assert not failed
    assert target.read_text() == 'valid\n'


def test_validation_is_skipped_when_the_content_is_right(tmp_path, capsys):
    target = tmp_path / 'checked.conf'
    target.write_text('valid\n')
    os.chmod(str(target), 0o600)
    result, failed = run(capsys, [dict(path=str(target), content='valid\n', validate='false %s')])
    assert not failed
    # Only the mode differed: corrected without running the (failing) checker.
    assert result['changed_paths'] == [str(target)]
    assert result['files'][0]['content_changed'] is False
    assert mode_of(str(target)) == '0644'


def test_attribute_changes_show_in_the_diff(tmp_path, capsys):
    target = tmp_path / 'mode.conf'
    target.write_text('same\n')
    os.chmod(str(target), 0o666)
    result, failed = run(capsys, [dict(path=str(target), content='same\n', mode='0640')], diff=True)
    assert not failed
    assert result['changed'] is True
    assert result['diff'] == [dict(before_header=str(target) + ' (attributes)',
                                   after_header=str(target) + ' (attributes)',
                                   before=dict(path=str(target), mode='0666'),
                                   after=dict(path=str(target), mode='0640'))]
    assert mode_of(str(target)) == '0640'


def test_owner_and_group_are_set(tmp_path, capsys):
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    target = tmp_path / 'owned.conf'
    result, failed = run(capsys, [dict(path=str(target), content='x\n', owner=user, group=group, mode='0640')])
    assert not failed
    info = os.stat(str(target))
    assert (info.st_uid, info.st_gid) == (os.geteuid(), os.getegid())


def test_lines_are_set_as_lineinfile_sets_them(tmp_path, capsys):
    target = tmp_path / 'login.defs'
    target.write_text('# comment\n#UMASK\t022\nUMASK\t022\nPASS_MAX_DAYS\t99999\nLAST no newline')
    lines = [
        dict(regexp=r'^#?\s*UMASK\s', line='UMASK\t027'),
        dict(regexp=r'^#?\s*PASS_MAX_DAYS\s', line='PASS_MAX_DAYS\t99999'),
        dict(regexp=r'^#?\s*SHA_CRYPT_MIN_ROUNDS\s', line='SHA_CRYPT_MIN_ROUNDS\t65536'),
    ]
    result, failed = run(capsys, [dict(path=str(target), lines=lines)])
    assert not failed
    assert result['changed'] is True
    # The last match is replaced, an absent line is added at the end (after a line break).
    assert target.read_text() == (
        '# comment\n#UMASK\t022\nUMASK\t027\nPASS_MAX_DAYS\t99999\nLAST no newline\nSHA_CRYPT_MIN_ROUNDS\t65536\n')

    result, failed = run(capsys, [dict(path=str(target), lines=lines)])
    assert not failed
    assert result['changed'] is False


def test_a_line_present_although_the_regexp_misses_is_left_alone(tmp_path, capsys):
    target = tmp_path / 'default'
    target.write_text('ENABLED="true"\n')
    result, failed = run(capsys, [dict(path=str(target), lines=[dict(regexp='^NOMATCH=', line='ENABLED="true"')])])
    assert not failed
    assert result['changed'] is False


def test_no_lines_only_corrects_the_mode_of_an_existing_file(tmp_path, capsys):
    target = tmp_path / 'shadow'
    target.write_text('root:*:19000::::::\n')
    os.chmod(str(target), 0o644)
    result, failed = run(capsys, [dict(path=str(target), lines=[], mode='0640')])
    assert not failed
    assert result['changed_paths'] == [str(target)]
    assert result['files'][0]['content_changed'] is False
    assert mode_of(str(target)) == '0640'
    assert target.read_text() == 'root:*:19000::::::\n'

    result, failed = run(capsys, [dict(path=str(tmp_path / 'absent'), lines=[], mode='0640')])
    assert failed
    assert 'does not exist' in result['msg']


def test_lines_need_an_existing_file(tmp_path, capsys):
    target = tmp_path / 'absent'
    result, failed = run(capsys, [dict(path=str(target), lines=[dict(regexp='^A=', line='A=1')])])
    assert failed
    assert 'does not exist' in result['msg']


def test_bad_input_is_reported_all_at_once(tmp_path, capsys):
    target = str(tmp_path / 'x.conf')
    files = [
        dict(path='relative/x.conf', content='x\n'),
        dict(path=target, content='x\n'),
        dict(path=target + '/', content='y\n'),
        dict(path=str(tmp_path / 'both'), content='x\n', lines=[dict(regexp='^a', line='a')]),
        dict(path=str(tmp_path / 'neither')),
        dict(path=str(tmp_path / 'v'), content='x\n', validate='check'),
        dict(path=str(tmp_path / 'd'), state='directory', content='x\n'),
        dict(path=str(tmp_path / 'r'), lines=[dict(regexp='(', line='a'), dict(regexp='^a', line='a\nb')]),
    ]
    result, failed = run(capsys, files)
    assert failed
    for text in ('path must be absolute', 'the path is listed twice', 'either content or lines',
                 'validate must contain %s', 'content applies to files only', 'does not compile',
                 'must not contain a line break'):
        assert text in result['msg'], text
    assert not os.path.exists(target)


def test_backup_keeps_the_old_content(tmp_path, capsys):
    target = tmp_path / 'kept.conf'
    target.write_text('old\n')
    result, failed = run(capsys, [dict(path=str(target), content='new\n', backup=True)])
    assert not failed
    backup = result['files'][0]['backup_file']
    assert read(backup) == 'old\n'
    assert target.read_text() == 'new\n'


def test_a_symlink_is_replaced_by_the_file(tmp_path, capsys):
    real = tmp_path / 'real.conf'
    real.write_text('target\n')
    link = tmp_path / 'link.conf'
    link.symlink_to(real)
    result, failed = run(capsys, [dict(path=str(link), content='own\n')])
    assert not failed
    assert not link.is_symlink()
    assert link.read_text() == 'own\n'
    assert real.read_text() == 'target\n'


def test_wrong_types_fail_clearly(tmp_path, capsys):
    directory = tmp_path / 'dir.conf'
    directory.mkdir()
    result, failed = run(capsys, [dict(path=str(directory), content='x\n')])
    assert failed
    assert 'is a directory' in result['msg']

    plain = tmp_path / 'plain'
    plain.write_text('x\n')
    result, failed = run(capsys, [dict(path=str(plain), state='directory')])
    assert failed
    assert 'is not a directory' in result['msg']


def test_a_missing_parent_directory_is_named(tmp_path, capsys):
    first = tmp_path / 'first.conf'
    files = [
        dict(path=str(first), content='1\n'),
        dict(path=str(tmp_path / 'missing' / 'second.conf'), content='2\n'),
    ]
    result, failed = run(capsys, files)
    assert failed
    assert 'list it before the file' in result['msg']
    assert 'already changed in this call: {0}'.format(first) in result['msg']


# Agree when both files hold the same value (a=1 with b=1, a=0 with b=0): a pair neither file's
# own check can judge.
AGREE = """sh -c 'test "$(cat "$1/x.conf" | tr -d a=)" = "$(cat "$1/sub/y.conf" | tr -d b=)" || {
    echo "x and y disagree in $1" >&2; exit 2; }' agree %s"""


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / 'etc' / 'app'
    (root / 'sub').mkdir(parents=True)
    (root / 'x.conf').write_text('a=0\n')
    (root / 'sub' / 'y.conf').write_text('b=0\n')
    (root / 'other.conf').write_text('kept\n')
    return root


def test_a_tree_check_sees_every_new_file_together(tree, capsys):
    files = [dict(path=str(tree / 'x.conf'), content='a=1\n'),
             dict(path=str(tree / 'sub' / 'y.conf'), content='b=1\n')]
    result, failed = run(capsys, files, trees=[dict(path=str(tree), command=AGREE)])
    assert not failed, result
    assert (tree / 'x.conf').read_text() == 'a=1\n'
    assert (tree / 'sub' / 'y.conf').read_text() == 'b=1\n'


def test_a_failed_tree_check_writes_nothing_and_names_the_live_tree(tree, capsys):
    files = [dict(path=str(tree / 'x.conf'), content='a=1\n'),
             dict(path=str(tree / 'unrelated.conf'), content='new\n')]
    result, failed = run(capsys, files, trees=[dict(path=str(tree), command=AGREE)])
    assert failed
    assert 'nothing was written' in result['msg']
    assert 'x and y disagree in {0}'.format(tree) in result['msg']
    assert '{0} with {1}'.format(tree, tree / 'x.conf') in result['msg']
    assert result['failed_validation'] == [str(tree)]
    assert (tree / 'x.conf').read_text() == 'a=0\n'
    assert not (tree / 'unrelated.conf').exists()
    # The copy is gone and the live tree was never touched.
    assert sorted(os.listdir(str(tree))) == ['other.conf', 'sub', 'x.conf']


def test_a_tree_check_is_skipped_when_nothing_in_it_changes(tree, tmp_path, capsys):
    outside = tmp_path / 'outside.conf'
    files = [dict(path=str(tree / 'x.conf'), content='a=0\n'), dict(path=str(outside), content='x\n')]
    result, failed = run(capsys, files, trees=[dict(path=str(tree), command='false %s')])
    assert not failed
    assert result['changed_paths'] == [str(outside)]


def test_tree_checks_need_an_absolute_path_and_the_placeholder(tree, capsys):
    result, failed = run(capsys, [dict(path=str(tree / 'x.conf'), content='a=1\n')],
                         trees=[dict(path='etc/app', command='check')])
    assert failed
    assert 'validate_trees[0] (etc/app): path must be absolute' in result['msg']
    assert 'command must contain %s' in result['msg']


def test_permissions_correct_what_exists_and_skip_what_does_not(tmp_path, capsys):
    crontab = tmp_path / 'crontab'
    crontab.write_text('# m h dom mon dow user command\n')
    os.chmod(str(crontab), 0o644)
    cron_d = tmp_path / 'cron.d'
    cron_d.mkdir()
    os.chmod(str(cron_d), 0o755)
    absent = tmp_path / 'cron.hourly'
    files = [dict(path=str(crontab), state='permissions', mode='0600'),
             dict(path=str(cron_d), state='permissions', mode='0700'),
             dict(path=str(absent), state='permissions', mode='0700')]
    result, failed = run(capsys, files)
    assert not failed, result
    assert result['changed_paths'] == [str(crontab), str(cron_d)]
    assert mode_of(str(crontab)) == '0600' and mode_of(str(cron_d)) == '0700'
    assert crontab.read_text() == '# m h dom mon dow user command\n'
    assert not absent.exists()
    assert [entry['changed'] for entry in result['files']] == [True, True, False]

    result, failed = run(capsys, files)
    assert not failed and result['changed'] is False


def test_permissions_in_check_mode_change_nothing(tmp_path, capsys):
    target = tmp_path / 'shadow'
    target.write_text('root:*:19000::::::\n')
    os.chmod(str(target), 0o644)
    result, failed = run(capsys, [dict(path=str(target), state='permissions', mode='0640')], check=True)
    assert not failed and result['changed'] is True
    assert mode_of(str(target)) == '0644'


def test_permissions_take_no_content_and_need_a_mode(tmp_path, capsys):
    result, failed = run(capsys, [dict(path=str(tmp_path / 'a'), state='permissions', content='x', mode='0600'),
                                  dict(path=str(tmp_path / 'b'), state='permissions')])
    assert failed
    assert 'content applies to files only' in result['msg']
    assert 'state=permissions needs a mode' in result['msg']


def test_absent_removes_a_file_and_a_link_then_changes_nothing(tmp_path, capsys):
    old = tmp_path / 'old.conf'
    old.write_text('old\n')
    link = tmp_path / 'default'
    link.symlink_to(str(old))
    files = [dict(path=str(link), state='absent'), dict(path=str(old), state='absent'),
             dict(path=str(tmp_path / 'never.conf'), state='absent')]
    result, failed = run(capsys, files, check=True, diff=True)
    assert not failed
    assert result['changed_paths'] == [str(link), str(old)]
    assert old.exists() and os.path.lexists(str(link))
    # A link's diff shows no content (its target is another file).
    assert [item['before'] for item in result['diff']] == ['', 'old\n']

    result, failed = run(capsys, files)
    assert not failed
    assert result['changed_paths'] == [str(link), str(old)]
    assert [item['content_changed'] for item in result['files']] == [True, True, False]
    assert sorted(os.listdir(str(tmp_path))) == []

    result, failed = run(capsys, files)
    assert not failed
    assert result['changed'] is False


def test_absent_refuses_a_directory_and_content(tmp_path, capsys):
    result, failed = run(capsys, [dict(path=str(tmp_path), state='absent')])
    assert failed
    assert 'removes files only' in result['msg']
    result, failed = run(capsys, [dict(path=str(tmp_path / 'x'), state='absent', content='x\n')])
    assert failed
    assert 'content applies to files only' in result['msg']


def test_a_tree_check_sees_the_copy_without_the_removed_file(tree, capsys):
    """A pair that is only valid together: y removed while x changes (neither alone passes)."""
    check = """sh -c 'test ! -e "$1/sub/y.conf" && test "$(cat "$1/x.conf")" = "a=1" || {
        echo "x=$(cat "$1/x.conf") with y present=$(test -e "$1/sub/y.conf" && echo yes)" >&2; exit 2; }' pair %s"""
    files = [dict(path=str(tree / 'x.conf'), content='a=1\n'), dict(path=str(tree / 'sub' / 'y.conf'), state='absent')]
    result, failed = run(capsys, files, trees=[dict(path=str(tree), command=check)])
    assert not failed, result
    assert not (tree / 'sub' / 'y.conf').exists()
    assert (tree / 'x.conf').read_text() == 'a=1\n'


def test_a_failed_tree_check_keeps_the_file_marked_absent(tree, capsys):
    files = [dict(path=str(tree / 'sub' / 'y.conf'), state='absent')]
    result, failed = run(capsys, files, trees=[dict(path=str(tree), command='false %s')])
    assert failed
    assert 'nothing was written' in result['msg']
    assert (tree / 'sub' / 'y.conf').read_text() == 'b=0\n'
