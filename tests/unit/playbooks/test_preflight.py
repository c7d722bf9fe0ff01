# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The preflight play of site.yml, on the controller: every role's input is checked for every host
before any play that changes a host. Hosts are local connections to this machine with the lab's
group_vars; the preflight play changes nothing, and site.yml is only run with bad input (it must
stop in its first play)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJGAhiINygLpFpzU9WvQOnsB2FEa6myCNIhLVZDWHvlA preflight-test'
GROUPS = {'edge': ['pf-edge'], 'app': ['pf-edge'], 'workers': ['pf-worker'], 'db': ['pf-db'],
          'brokers': ['pf-db'], 'backup': ['pf-db'], 'monitoring': ['pf-mon'], 'log_hosts': ['pf-mon'],
          'docker_hosts': ['pf-edge', 'pf-worker'], 'swarm_managers': ['pf-edge'], 'swarm_workers': ['pf-worker']}

pytestmark = pytest.mark.skipif(shutil.which('ansible-playbook') is None, reason='ansible-playbook not on PATH')


def write_inventory(work, groups):
    """The groups on their local hosts, with the lab's group_vars."""
    os.symlink(os.path.join(ROOT, 'inventories', 'lab', 'group_vars'), str(work / 'group_vars'))
    hosts = {'all': {
        'vars': {'ansible_connection': 'local', 'ansible_python_interpreter': shutil.which('python3'),
                 'ansible_become': False, 'selfhost_lab_operator_key': KEY,
                 'selfhost_private_address': '127.0.0.1',
                 'selfhost_lab_files': os.path.join(ROOT, 'inventories', 'lab', 'files')},
        'children': dict({'lab': {'hosts': {h: {} for members in groups.values() for h in members}}},
                         **{group: {'hosts': {h: {} for h in members}} for group, members in groups.items()})}}
    path = work / 'hosts.yml'
    path.write_text(json.dumps(hosts))
    return str(path)


@pytest.fixture(scope='module')
def inventory(tmp_path_factory):
    """The lab's groups on four local hosts (a two-node swarm among them)."""
    return write_inventory(tmp_path_factory.mktemp('preflight'), GROUPS)


@pytest.fixture(scope='module')
def vps_inventory(tmp_path_factory):
    """Every group on one local host, the single VPS most users run (a one-node swarm): each
    bad-input run checks one host, a third faster than four."""
    groups = {group: ['pf-vps'] for group in GROUPS}
    groups['swarm_workers'] = []
    return write_inventory(tmp_path_factory.mktemp('preflight-vps'), groups)


def play(inventory, playbook, *extra, tags=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(('ANSIBLE_', 'MOLECULE_'))}
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_CACHE_PLUGIN='memory', ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.ansible', 'collections'))
    args = ['ansible-playbook', '-i', inventory, os.path.join(ROOT, 'playbooks', playbook)]
    if tags:
        args += ['--tags', tags]
    for item in extra:
        args += ['-e', item]
    run = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    return run.returncode, run.stdout + run.stderr


def test_the_lab_settings_pass_and_change_nothing(inventory):
    rc, out = play(inventory, 'preflight.yml')
    assert rc == 0, out[-3000:]
    assert 'changed=0' in out and 'failed=0' in out, out[-3000:]
    # A clean run prints no warning (inventory parsing, loop variables, deprecated options).
    assert '[WARNING]' not in out, out[-3000:]


@pytest.mark.parametrize('setting, named, why', [
    ('redis_maxmemory_policy=allkeys-lru', 'redis_maxmemory_policy', 'got: allkeys-lru'),
    ('nginx_tls_profile=strict', 'nginx_tls_profile', 'got: strict'),
    ('{"sshd_port": 70000}', 'sshd_port', '70000'),
    ('sshd_port=70000', 'sshd_port', '70000'),
    # Valid YAML, wrong values: an upstream without a port, a retention of zeros (restic prunes nothing).
    ('{"nginx_upstreams": [{"name": "app", "servers": ["127.0.0.1"]}]}', 'nginx_upstreams', '127.0.0.1'),
    ('{"restic_default_retention": {"keep_last": 0, "keep_daily": 0}}', 'retention', 'keep_last'),
    ('prometheus_retention_time=0d', 'prometheus_retention_time', '0d'),
    ('journal_remote_max_age=0', 'journal_remote_max_age', 'neither 0'),
    # The overlay pool inside the docker pools: bridge and overlay networks would share subnets.
    ('{"swarm_default_addr_pool": ["172.20.0.0/16"]}', 'swarm_default_addr_pool', 'overlaps'),
])
def test_bad_input_stops_site_in_its_first_play(vps_inventory, setting, named, why):
    rc, out = play(vps_inventory, 'site.yml', setting)
    assert rc != 0, out[-3000:]
    failures = [line for line in out.splitlines() if line.startswith(('fatal:', 'failed:'))]
    assert failures and all(named in line and why in line for line in failures), out[-3000:]
    # The spec check's message is short: no dump of the whole argument spec.
    assert 'argument_spec_data' not in out
    # Nothing after the preflight play ran: the only play started is the check.
    plays = [line.split('[', 1)[1].split(']', 1)[0] for line in out.splitlines() if line.startswith('PLAY [')]
    assert plays == ["Check every role's input before any host is changed"], out[-3000:]


# A role after a preflight play of the same run does not check its input again; alone, it does.
# Under --tags with no task of the role, only its always-tagged steps run (checks, OS variables).
ROLE_AFTER_PREFLIGHT = """
- name: Check grafana's input first
  hosts: pf-mon
  gather_facts: true
  tags: [always]
  roles:
    - role: selfhost.platform.preflight
      vars:
        preflight_only: {only}
- name: Apply grafana
  hosts: pf-mon
  gather_facts: false
  tasks:
    - name: Include the role
      ansible.builtin.include_role:
        name: selfhost.platform.grafana
      tags: [always]
"""


@pytest.mark.parametrize('only, checks_again', [(['grafana'], False), (['base'], True)])
def test_a_role_checks_its_input_once_per_run(inventory, tmp_path, only, checks_again):
    playbook = tmp_path / 'role.yml'
    playbook.write_text(ROLE_AFTER_PREFLIGHT.format(only=json.dumps(only)))
    rc, out = play(inventory, str(playbook), tags='grafana_nothing')
    assert rc == 0, out[-3000:]
    role_checks = out.split('TASK [selfhost.platform.grafana : Check the variables', 1)[1].split('TASK [', 1)[0]
    assert ('included:' in role_checks) is checks_again, out[-3000:]
    assert ('skipping:' in role_checks) is not checks_again, out[-3000:]


def test_two_swarm_managers_stop_site_in_its_first_play(tmp_path):
    groups = dict(GROUPS, swarm_managers=['pf-edge', 'pf-worker'], swarm_workers=[])
    rc, out = play(write_inventory(tmp_path, groups), 'site.yml')
    assert rc != 0, out[-3000:]
    failures = [line for line in out.splitlines() if line.startswith(('fatal:', 'failed:'))]
    assert failures and all('swarm_managers has 2 hosts' in line and '1 or 3 managers' in line for line in failures), out[-3000:]
    plays = [line.split('[', 1)[1].split(']', 1)[0] for line in out.splitlines() if line.startswith('PLAY [')]
    assert plays == ["Check every role's input before any host is changed"], out[-3000:]
