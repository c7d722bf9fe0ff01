# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


import pytest

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhost.platform.plugins.module_utils import sshd as sshd_utils
from ansible_collections.selfhost.platform.plugins.modules import sshd_effective_config
from ansible_collections.selfhost.platform.tests.unit.plugins.modules.utils import run_module

# Trimmed real output of `sshd -T` on Debian 12 (OpenSSH 9.2) after hardening.
SSHD_T = """port 22
port 2222
addressfamily any
listenaddress 0.0.0.0:2222
listenaddress 0.0.0.0:22
permitrootlogin no
passwordauthentication no
kbdinteractiveauthentication no
maxauthtries 3
x11forwarding no
allowtcpforwarding no
ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com
kexalgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256
authorizedkeysfile .ssh/authorized_keys
hostkey /etc/ssh/ssh_host_ed25519_key
hostkey /etc/ssh/ssh_host_rsa_key
allowusers deploy
acceptenv LANG
acceptenv LC_*
subsystem sftp internal-sftp
maxstartups 10:30:60
"""

SSH_Q = {
    'kex': 'curve25519-sha256\nsntrup761x25519-sha512@openssh.com\n',
    'cipher': 'aes128-ctr\nchacha20-poly1305@openssh.com\n',
    'mac': 'hmac-sha2-256-etm@openssh.com\n',
    'key-sig': 'ssh-ed25519\nrsa-sha2-512\n',
}


class FakeRunner(object):
    """Stands in for AnsibleModule.run_command: the only boundary the module crosses."""

    def __init__(self, sshd_t=SSHD_T, sshd_t_rc=0, sshd_t_err='', version_err='OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.15'):
        self.calls = []
        self.sshd_t = sshd_t
        self.sshd_t_rc = sshd_t_rc
        self.sshd_t_err = sshd_t_err
        self.version_err = version_err

    def __call__(self, args, **kwargs):
        self.calls.append(list(args))
        if args[1] == '-T':
            return self.sshd_t_rc, self.sshd_t if self.sshd_t_rc == 0 else '', self.sshd_t_err
        if args[1] == '-V':
            return 0, '', self.version_err
        if args[1] == '-Q':
            return 0, SSH_Q[args[2]], ''
        raise AssertionError('unexpected command %r' % (args,))


@pytest.fixture
def runner(monkeypatch):
    fake = FakeRunner()
    monkeypatch.setattr(AnsibleModule, 'run_command', fake)
    monkeypatch.setattr(AnsibleModule, 'get_bin_path', lambda module, name, required=False, opt_dirs=None: '/usr/bin/' + name)
    return fake


def run(capsys, args, check=False):
    return run_module(sshd_effective_config.main, capsys, args, check=check)


# --- parsing ---------------------------------------------------------------

def test_parse_multi_value_keys_are_lists():
    config = sshd_utils.parse_sshd_t(SSHD_T)
    assert config['port'] == ['22', '2222']
    assert config['listenaddress'] == ['0.0.0.0:2222', '0.0.0.0:22']
    assert config['hostkey'] == ['/etc/ssh/ssh_host_ed25519_key', '/etc/ssh/ssh_host_rsa_key']
    assert config['allowusers'] == ['deploy']
    assert config['acceptenv'] == ['LANG', 'LC_*']
    assert config['subsystem'] == ['sftp internal-sftp']


def test_parse_scalars_and_comma_lists_stay_strings():
    config = sshd_utils.parse_sshd_t(SSHD_T)
    assert config['permitrootlogin'] == 'no'
    assert config['maxauthtries'] == '3'
    assert config['ciphers'] == 'chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com'
    assert config['maxstartups'] == '10:30:60'


def test_parse_unexpected_repeat_becomes_list_and_blank_lines_ignored():
    config = sshd_utils.parse_sshd_t('PermitOpen any\n\npermitopen host:22\n# comment\nbanner\n')
    assert config['permitopen'] == ['any', 'host:22']
    assert config['banner'] == ''


@pytest.mark.parametrize('text, expected', [
    ('OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.15', ('9.2', 'OpenSSH_9.2p1')),
    ('OpenSSH_9.2, OpenSSL 3.0.15 3 Sep 2024', ('9.2', 'OpenSSH_9.2')),
    ('unknown option -- V\nOpenSSH_8.9p1 Ubuntu-3ubuntu0.10, OpenSSL 3.0.2\nusage: sshd [-46DdeiqTt]', ('8.9', 'OpenSSH_8.9p1')),
    ('OpenSSH_10.0p2 Debian-7', ('10.0', 'OpenSSH_10.0p2')),
    ('no version here', (None, None)),
])
def test_parse_version(text, expected):
    assert sshd_utils.parse_version(text) == expected


# --- compare ---------------------------------------------------------------

def test_compare_all_match_with_bools_ints_and_case_insensitive_keys():
    config = sshd_utils.parse_sshd_t(SSHD_T)
    assert sshd_utils.compare(config, {
        'PasswordAuthentication': False,
        'PermitRootLogin': 'no',
        'MaxAuthTries': 3,
        'port': [2222, 22],            # a set: order ignored
        'allowusers': 'deploy',        # scalar against a one-element list
        'ciphers': ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com'],
        'kexalgorithms': 'sntrup761x25519-sha512@openssh.com,curve25519-sha256',
    }) == []


def test_compare_reports_every_mismatch():
    config = sshd_utils.parse_sshd_t(SSHD_T.replace('passwordauthentication no', 'passwordauthentication yes'))
    mismatches = sshd_utils.compare(config, {
        'passwordauthentication': False,
        'port': 2222,
        'ciphers': ['aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com'],
        'x11forwarding': False,
        'nosuchkey': 'x',
    })
    assert [m['key'] for m in mismatches] == ['ciphers', 'nosuchkey', 'passwordauthentication', 'port']
    lines = sshd_utils.format_mismatches(mismatches)
    assert "passwordauthentication: expected False, got 'yes'" in lines
    assert "port: expected 2222, got ['22', '2222']" in lines
    assert any(line.startswith('nosuchkey:') and 'does not print' in line for line in lines)


def test_compare_comma_list_order_matters():
    config = {'macs': 'a,b'}
    assert sshd_utils.compare(config, {'macs': ['a', 'b']}) == []
    assert sshd_utils.compare(config, {'macs': ['b', 'a']}) != []


# --- the module ------------------------------------------------------------

def test_module_returns_config_and_version(capsys, runner):
    result, failed = run(capsys, {})
    assert not failed
    assert result['changed'] is False
    assert result['config']['port'] == ['22', '2222']
    assert result['version'] == '9.2'
    assert result['version_string'] == 'OpenSSH_9.2p1'
    assert runner.calls[0] == ['/usr/sbin/sshd', '-T']
    assert 'algorithms' not in result and 'mismatches' not in result


def test_module_builds_f_and_c_options(capsys, runner):
    result, failed = run(capsys, {
        'config_file': '/tmp/candidate',
        'sshd_path': '/opt/sbin/sshd',
        'connection': {'user': 'deploy', 'host': 'h.example', 'addr': '192.0.2.1', 'lport': 2222},
    })
    assert not failed
    assert runner.calls[0] == ['/opt/sbin/sshd', '-T', '-f', '/tmp/candidate',
                               '-C', 'user=deploy,host=h.example,addr=192.0.2.1,lport=2222']


def test_module_algorithms(capsys, runner):
    result, failed = run(capsys, {'algorithms': True})
    assert not failed
    assert result['algorithms']['kex'] == ['curve25519-sha256', 'sntrup761x25519-sha512@openssh.com']
    assert result['algorithms']['key_sig'] == ['ssh-ed25519', 'rsa-sha2-512']
    assert ['/usr/bin/ssh', '-Q', 'key-sig'] in runner.calls


def test_module_expect_match_in_check_mode(capsys, runner):
    result, failed = run(capsys, {'expect': {'PermitRootLogin': 'no', 'passwordauthentication': False}}, check=True)
    assert not failed
    assert result['changed'] is False
    assert result['mismatches'] == []


def test_module_expect_mismatch_fails_naming_every_key(capsys, runner):
    runner.sshd_t = SSHD_T.replace('passwordauthentication no', 'passwordauthentication yes')
    result, failed = run(capsys, {'expect': {'PasswordAuthentication': False, 'MaxAuthTries': 6, 'PermitRootLogin': 'no'}})
    assert failed
    assert result['changed'] is False
    assert 'differs from expect in 2 key(s)' in result['msg']
    assert "maxauthtries: expected 6, got '3'" in result['msg']
    assert "passwordauthentication: expected False, got 'yes'" in result['msg']
    assert 'permitrootlogin' not in result['msg']
    assert {m['key'] for m in result['mismatches']} == {'maxauthtries', 'passwordauthentication'}
    assert result['config']['passwordauthentication'] == 'yes'


def test_module_sshd_failure_reports_stderr(capsys, runner):
    runner.sshd_t_rc = 255
    runner.sshd_t_err = 'sshd: no hostkeys available -- exiting.\n'
    result, failed = run(capsys, {})
    assert failed
    assert 'no hostkeys available' in result['msg']
    assert 'rc=255' in result['msg']


def test_module_without_version_output(capsys, runner):
    runner.version_err = 'sshd: illegal option'
    result, failed = run(capsys, {})
    assert not failed
    assert 'version' not in result


class MatchRunner(FakeRunner):
    """sshd -T -C answers with what a `Match User` drop-in turns on for that user."""

    def __call__(self, args, **kwargs):
        if args[1] == '-T' and '-C' in args and 'user=legacy' in args[-1]:
            self.calls.append(list(args))
            return 0, SSHD_T.replace('passwordauthentication no', 'passwordauthentication yes'), ''
        return super(MatchRunner, self).__call__(args, **kwargs)


@pytest.fixture
def match_runner(monkeypatch):
    fake = MatchRunner()
    monkeypatch.setattr(AnsibleModule, 'run_command', fake)
    return fake


def test_module_match_expect_checks_each_connection_in_one_call(capsys, match_runner):
    result, failed = run(capsys, {
        'expect': {'passwordauthentication': False},
        'match_expect': [{'connection': {'user': 'deploy', 'host': 'client.invalid', 'addr': '192.0.2.10'},
                          'expect': {'passwordauthentication': False, 'permitrootlogin': 'no'}}],
    })
    assert not failed
    assert result['match_mismatches'] == [[]]
    assert ['/usr/sbin/sshd', '-T', '-C', 'user=deploy,host=client.invalid,addr=192.0.2.10'] in match_runner.calls


def test_module_match_expect_failure_names_the_connection(capsys, match_runner):
    result, failed = run(capsys, {
        'expect': {'passwordauthentication': False},
        'match_expect': [{'connection': {'user': 'deploy', 'addr': '192.0.2.10'}, 'expect': {'passwordauthentication': False}},
                         {'connection': {'user': 'legacy', 'addr': '192.0.2.11'}, 'expect': {'passwordauthentication': False}}],
    })
    assert failed
    assert result['mismatches'] == []
    assert result['match_mismatches'][0] == []
    assert [m['key'] for m in result['match_mismatches'][1]] == ['passwordauthentication']
    assert 'for user=legacy,addr=192.0.2.11' in result['msg']
    assert 'user=deploy' not in result['msg']


# --- offered_only and fail_on_mismatch --------------------------------------

PROFILE_KEX = ['mlkem768x25519-sha256', 'sntrup761x25519-sha512@openssh.com', 'curve25519-sha256']


def test_offered_only_keeps_profile_order_and_leaves_other_keys():
    algorithms = {'kex': ['curve25519-sha256', 'sntrup761x25519-sha512@openssh.com'], 'key_sig': ['ssh-ed25519']}
    expect = {'KexAlgorithms': PROFILE_KEX, 'hostkeyalgorithms': 'ssh-ed25519,ecdsa-sha2-nistp256',
              'ciphers': ['aes128-ctr'], 'port': [22]}
    wanted = sshd_utils.offered_only(expect, algorithms)
    assert wanted['KexAlgorithms'] == ['sntrup761x25519-sha512@openssh.com', 'curve25519-sha256']
    assert wanted['hostkeyalgorithms'] == 'ssh-ed25519'
    # no cipher list was queried: the expectation stays as given
    assert wanted['ciphers'] == ['aes128-ctr']
    assert wanted['port'] == [22]
    assert expect['KexAlgorithms'] == PROFILE_KEX


def test_module_offered_only_compares_with_what_this_openssh_offers(capsys, runner):
    result, failed = run(capsys, {'expect': {'kexalgorithms': PROFILE_KEX}})
    assert failed
    result, failed = run(capsys, {'expect': {'kexalgorithms': PROFILE_KEX}, 'offered_only': True})
    assert not failed
    assert result['mismatches'] == []
    # offered_only needs the ssh -Q lists, so they are read and returned
    assert result['algorithms']['kex'] == ['curve25519-sha256', 'sntrup761x25519-sha512@openssh.com']


def test_module_fail_on_mismatch_false_returns_every_mismatch(capsys, match_runner):
    match_runner.sshd_t = SSHD_T.replace('permitrootlogin no', 'permitrootlogin yes')
    result, failed = run(capsys, {
        'expect': {'permitrootlogin': 'no', 'maxauthtries': 3},
        'match_expect': [{'connection': {'user': 'legacy', 'addr': '192.0.2.11'}, 'expect': {'passwordauthentication': False}}],
        'fail_on_mismatch': False,
    })
    assert not failed
    assert result['mismatches'] == [{'key': 'permitrootlogin', 'expected': 'no', 'actual': 'yes'}]
    # the connection checks still run after a global mismatch
    assert [m['key'] for m in result['match_mismatches'][0]] == ['passwordauthentication']


def test_module_fail_on_mismatch_false_still_fails_when_sshd_t_fails(capsys, runner):
    runner.sshd_t_rc = 255
    runner.sshd_t_err = 'sshd: no hostkeys available -- exiting.\n'
    result, failed = run(capsys, {'expect': {'permitrootlogin': 'no'}, 'fail_on_mismatch': False})
    assert failed
    assert 'no hostkeys available' in result['msg']
