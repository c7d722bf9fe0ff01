# -*- coding: utf-8 -*-
"""Bad input fails early (argument spec or assert) with a clear message, before any change.

Each case runs the role against localhost in check mode; the play stops at the
argument spec or at the asserts that open tasks/main.yml.
"""
import json
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOOD = {'sshd_allow_users': ['deploy'], 'sshd_manage_firewall': False}

CASES = [
    ('port 0', {'sshd_port': 0}, 'sshd_port must be 1-65535 (got 0)'),
    ('port 70000', {'sshd_port': 70000}, 'sshd_port must be 1-65535 (got 70000)'),
    ('port not a number', {'sshd_port': 'ssh'}, 'sshd_port'),
    ('unknown crypto profile', {'sshd_crypto_profile': 'paranoid'},
     'sshd_crypto_profile must be one of: modern, intermediate, legacy-compat'),
    ('empty allow list', {'sshd_allow_users': [], 'sshd_allow_groups': []},
     'sshd_allow_users and sshd_allow_groups are both empty'),
    ('only root allowed', {'sshd_allow_users': ['root']}, 'nobody could log in'),
    ('small RSA host key', {'sshd_host_key_rsa_bits': 2048}, 'sshd_host_key_rsa_bits must be 3072-16384 (got 2048)'),
    ('bad MaxStartups', {'sshd_max_startups': '10:30'}, "sshd_max_startups must be start or start:rate:full (got '10:30')"),
]


@pytest.mark.parametrize('name, extra, message', CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_early(name, extra, message):
    variables = dict(GOOD, **extra)
    run = subprocess.run(
        ['ansible-playbook', '--check', '-i', 'localhost,', '-c', 'local',
         os.path.join(HERE, 'bad_input.yml'), '-e', json.dumps(variables)],
        capture_output=True, text=True, timeout=120, check=False,
        env=dict(os.environ, ANSIBLE_FORCE_COLOR='false', ANSIBLE_NOCOLOR='true'))
    output = ' '.join((run.stdout + run.stderr).split())
    assert run.returncode != 0, output[-3000:]
    assert message in output, output[-3000:]
    # Nothing but the argument spec and the asserts ran.
    assert 'Install the OpenSSH server' not in output
