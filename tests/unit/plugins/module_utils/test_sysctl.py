# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os

import pytest

from ansible_collections.selfhost.platform.plugins.module_utils.sysctl import (
    REASON_READ_ONLY,
    REASON_REJECTED,
    REASON_UNKNOWN,
    REASON_UNREADABLE,
    SysctlError,
    boot_files,
    canonical_key,
    classify_error,
    key_to_path,
    normalize,
    overridden_at_boot,
    parse_settings,
    read_value,
    render,
    validate_key,
    value_to_text,
    write_value,
)


def make_key(root, rel, content):
    path = os.path.join(str(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        handle.write(content)
    return path


@pytest.mark.parametrize('key', [
    'vm.swappiness',
    'net.ipv4.ip_forward',
    'net/ipv4/ip_forward',
    'net.ipv4.conf.eth0/100.rp_filter',
    'net.ipv6.conf.br-lan.accept_ra',
    'kernel.core_pattern',
    'fs.inotify.max_user_watches',
])
def test_validate_key_accepts(key):
    assert validate_key(key) == key


@pytest.mark.parametrize('key', [
    '',
    'vm swappiness',
    'vm.swappiness\n',
    'net.ipv4..ip_forward',
    'net/../../etc/passwd',
    '../etc',
    '.vm.swappiness',
    'vm.swappiness.',
    'net//ipv4',
    'net.ipv4.conf.*.rp_filter',
    '-vm.swappiness',
    'vm.swappiness=1',
    'vm.\tswappiness',
    None,
    5,
])
def test_validate_key_rejects(key):
    with pytest.raises(SysctlError):
        validate_key(key)


def test_key_to_path_dotted_and_slash_forms_agree(tmp_path):
    root = str(tmp_path)
    expected = os.path.join(root, 'net', 'ipv4', 'ip_forward')
    assert key_to_path('net.ipv4.ip_forward', root) == expected
    assert key_to_path('net/ipv4/ip_forward', root) == expected


def test_key_to_path_slash_in_dotted_form_is_a_literal_dot(tmp_path):
    root = str(tmp_path)
    assert key_to_path('net.ipv4.conf.eth0/100.rp_filter', root) == \
        os.path.join(root, 'net', 'ipv4', 'conf', 'eth0.100', 'rp_filter')
    # In slash form dots are literal parts of a name.
    assert key_to_path('net/ipv4/conf/eth0.100/rp_filter', root) == \
        os.path.join(root, 'net', 'ipv4', 'conf', 'eth0.100', 'rp_filter')


def test_key_to_path_default_root():
    assert key_to_path('vm.swappiness') == '/proc/sys/vm/swappiness'


def test_canonical_key():
    assert canonical_key('net/ipv4/ip_forward') == 'net.ipv4.ip_forward'
    assert canonical_key('net/ipv4/conf/eth0.100/rp_filter') == 'net.ipv4.conf.eth0/100.rp_filter'
    assert canonical_key('net.ipv4.conf.eth0/100.rp_filter') == 'net.ipv4.conf.eth0/100.rp_filter'


@pytest.mark.parametrize('value, text', [
    (10, '10'),
    (0, '0'),
    ('  10 ', '10'),
    ('32768 60999', '32768 60999'),
    ('4096\t87380\t6291456', '4096\t87380\t6291456'),
    ('|/bin/false %p', '|/bin/false %p'),
])
def test_value_to_text(value, text):
    assert value_to_text('k.k', value) == text


@pytest.mark.parametrize('value', [True, False, None, 1.5, [1], '', '   ', '1\n2', 'a\rb', 'a\0b'])
def test_value_to_text_rejects(value):
    with pytest.raises(SysctlError) as exc:
        value_to_text('vm.swappiness', value)
    assert 'vm.swappiness' in str(exc.value)


def test_normalize():
    assert normalize('32768\t60999\n') == '32768 60999'
    assert normalize('  1   2 3  ') == '1 2 3'
    assert normalize(5) == '5'
    assert normalize(None) is None


def test_render_with_header_keeps_order():
    text = render([('vm.swappiness', '10'), ('net.core.somaxconn', '4096')],
                  header='Ansible managed\n\n# already a comment')
    assert text == (
        '# Ansible managed\n'
        '#\n'
        '# already a comment\n'
        'vm.swappiness = 10\n'
        'net.core.somaxconn = 4096\n'
    )


def test_render_mapping_without_header():
    assert render({'b.b': '2', 'a.a': '1'}) == 'b.b = 2\na.a = 1\n'


def test_render_empty():
    assert render([]) == ''
    assert render([], header='hdr') == '# hdr\n'


def test_read_value_normalizes_tabs(tmp_path):
    make_key(tmp_path, 'net/ipv4/ip_local_port_range', '32768\t60999\n')
    assert read_value('net.ipv4.ip_local_port_range', str(tmp_path)) == '32768 60999'


def test_read_value_unknown_key(tmp_path):
    with pytest.raises(OSError) as exc:
        read_value('net.ipv4.nope', str(tmp_path))
    assert classify_error(exc.value, 'read') == REASON_UNKNOWN


def test_write_value_replaces_content(tmp_path):
    path = make_key(tmp_path, 'vm/swappiness', '100000\n')
    write_value('vm.swappiness', '10', str(tmp_path))
    with open(path) as handle:
        assert handle.read() == '10\n'


def test_write_value_never_creates_a_key(tmp_path):
    with pytest.raises(OSError) as exc:
        write_value('vm.nope', '1', str(tmp_path))
    assert exc.value.errno == errno.ENOENT
    assert not os.path.exists(os.path.join(str(tmp_path), 'vm', 'nope'))


@pytest.mark.parametrize('code, action, reason', [
    (errno.EROFS, 'write', REASON_READ_ONLY),
    (errno.EACCES, 'write', REASON_READ_ONLY),
    (errno.EPERM, 'write', REASON_READ_ONLY),
    (errno.EACCES, 'read', REASON_UNREADABLE),
    (errno.ENOENT, 'write', REASON_UNKNOWN),
    (errno.ENOENT, 'read', REASON_UNKNOWN),
    (errno.EINVAL, 'write', REASON_REJECTED),
])
def test_classify_error(code, action, reason):
    assert classify_error(OSError(code, os.strerror(code)), action) == reason


def test_classify_error_other():
    reason = classify_error(OSError(errno.EIO, os.strerror(errno.EIO)), 'write')
    assert reason.startswith('failed to write')


@pytest.mark.skipif(not os.path.exists('/proc/sys/kernel/ostype'), reason='no /proc/sys on this machine')
def test_read_value_real_proc():
    # Read-only use of the real tree: the default root works against a live kernel.
    assert read_value('kernel.ostype') == 'Linux'
    assert read_value('kernel/ostype') == 'Linux'


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_boot_files_sort_by_name_and_etc_masks_usr_lib(tmp_path):
    etc, usr = tmp_path / 'etc', tmp_path / 'usr'
    _write(etc / '70-selfhost.conf', '')
    _write(etc / 'protect-links.conf', '')
    _write(usr / 'protect-links.conf', '')
    _write(usr / '50-default.conf', '')
    _write(usr / 'README', '')
    assert boot_files([str(etc), str(tmp_path / 'missing'), str(usr)]) == [
        str(usr / '50-default.conf'), str(etc / '70-selfhost.conf'), str(etc / 'protect-links.conf')]


def test_parse_settings_skips_comments_globs_and_garbage():
    text = '# c\n; c\n\nfs.protected_fifos = 1\n-net/ipv4/ip_forward=0\nnet.ipv4.conf.*.rp_filter = 2\nnoequals\n'
    assert parse_settings(text) == [('fs.protected_fifos', '1'), ('net.ipv4.ip_forward', '0')]


def test_overridden_at_boot_names_the_last_later_file(tmp_path):
    etc, usr = tmp_path / 'etc', tmp_path / 'usr'
    ours = _write(etc / '70-selfhost-hardening.conf', 'fs.protected_fifos = 2\n')
    _write(usr / '50-default.conf', 'kernel.sysrq = 16\n')                      # earlier: ours wins
    _write(usr / 'protect-links.conf', 'fs.protected_fifos = 1\nfs.protected_hardlinks = 1\n')
    _write(etc / 'zz-local.conf', 'kernel.kptr_restrict=1\n')
    settings = [('fs.protected_fifos', '2'), ('fs.protected_hardlinks', '1'), ('kernel.sysrq', '0'),
                ('kernel/kptr_restrict', '2')]
    assert overridden_at_boot(ours, settings, [str(etc), str(usr)]) == [
        dict(key='fs.protected_fifos', wanted='2', value='1', file=str(usr / 'protect-links.conf')),
        dict(key='kernel/kptr_restrict', wanted='2', value='1', file=str(etc / 'zz-local.conf'))]
    last = str(etc / 'zz-selfhost-hardening.conf')
    assert overridden_at_boot(last, settings, [str(etc), str(usr)]) == []
