# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The vault examples copied as they are: the prod inventory example, its every vault.yml.example
copied to vault.yml unchanged, on local connections to this machine. site.yml must stop in its
first play, naming the placeholder variables; and each role that reads a vault secret refuses
its own, without printing the values."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import os
import re
import shutil
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
INVENTORY = os.path.join(ROOT, 'inventories', 'prod')
MESSAGE = 'placeholder of vault.yml.example (value not shown)'

# What each role must name, with the wiring of inventories/prod/group_vars.
REFUSED = {
    'grafana': ['grafana_admin_password'],
    'alertmanager': ['alertmanager_receivers[team-slack].slack.webhook_url'],
    'redis': ['redis_password', 'redis_acl_users[exporter].password'],
    'redis_exporter': ['redis_exporter_password'],
    'postgresql': ['postgresql_users[app].password', 'postgresql_exporter_password'],
    'postgres_exporter': ['postgres_exporter_password'],
    'restic': ['restic_repositories[offsite].password', 'restic_repositories[offsite].aws_access_key_id',
               'restic_repositories[offsite].aws_secret_access_key'],
    'celery': ['celery_broker_url', 'celery_result_backend', 'celery_environment.DATABASE_URL',
               'celery_flower_password'],
}

# Each role's checks alone, as the preflight play runs them; a refusal is printed, not fatal.
CHECKS = """
- name: Run the checks of the roles that read vault secrets
  hosts: all
  gather_facts: true
  tasks:
    - name: Run one role's checks
      ansible.builtin.include_tasks: one.yml
      loop: {roles}
      loop_control:
        loop_var: __role
      when: __role.group == 'all' or inventory_hostname in groups[__role.group]
"""
ONE = """
- name: Run the checks of {{ __role.role }}
  block:
    - name: Include the checks
      ansible.builtin.include_role:
        name: "selfhost.platform.{{ __role.role }}"
        tasks_from: assert
  rescue:
    - name: Print the refusal
      ansible.builtin.debug:
        msg: "REFUSED {{ __role.role }}: {{ ansible_failed_result.msg }}"
"""

pytestmark = pytest.mark.skipif(shutil.which('ansible-playbook') is None, reason='ansible-playbook not on PATH')


def example_values():
    values = {}
    for path in glob.glob(os.path.join(INVENTORY, 'group_vars', '*', 'vault.yml.example')):
        with open(path) as handle:
            values.update(yaml.safe_load(handle))
    return values


@pytest.fixture(scope='module')
def inventory(tmp_path_factory):
    """inventories/prod with each vault.yml.example copied, unchanged, to vault.yml."""
    work = tmp_path_factory.mktemp('placeholders')
    for part in ('group_vars', 'host_vars', 'hosts.yml'):
        source = os.path.join(INVENTORY, part)
        (shutil.copytree if os.path.isdir(source) else shutil.copy)(source, str(work / part))
    examples = glob.glob(str(work / 'group_vars' / '*' / 'vault.yml.example'))
    assert examples
    for example in examples:
        shutil.copy(example, example[:-len('.example')])
    return str(work)


def play(inventory, playbook):
    env = {k: v for k, v in os.environ.items() if not k.startswith(('ANSIBLE_', 'MOLECULE_'))}
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_CACHE_PLUGIN='memory', ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.ansible', 'collections'))
    args = ['ansible-playbook', '-i', os.path.join(inventory, 'hosts.yml'), playbook,
            '-e', 'ansible_connection=local', '-e', 'ansible_become=false',
            '-e', 'ansible_python_interpreter=%s' % shutil.which('python3')]
    run = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    return run.returncode, run.stdout + run.stderr


def assert_no_secret(out):
    # The message's own word ("change-me" placeholder) is one of the values (vault_restic_s3_secret).
    out = re.sub(r'change-me\\?" placeholder', '', out)
    for name, value in example_values().items():
        assert value not in out, '%s: the value of %s is printed' % (out[-3000:], name)


def test_site_stops_in_its_first_play_naming_a_placeholder(inventory):
    rc, out = play(inventory, os.path.join(ROOT, 'playbooks', 'site.yml'))
    assert rc != 0, out[-3000:]
    failures = [line for line in out.splitlines() if line.startswith(('fatal:', 'failed:'))]
    named = sorted(set(sum(REFUSED.values(), [])))
    assert failures and all(MESSAGE in line and any(n in line for n in named) for line in failures), out[-3000:]
    plays = [line.split('[', 1)[1].split(']', 1)[0] for line in out.splitlines() if line.startswith('PLAY [')]
    assert plays == ["Check every role's input before any host is changed"], out[-3000:]
    assert 'changed=0' in out and 'changed=1' not in out, out[-3000:]
    assert_no_secret(out)


def test_every_role_that_reads_a_vault_secret_refuses_its_placeholders(inventory, tmp_path):
    with open(os.path.join(ROOT, 'roles', 'preflight', 'defaults', 'main.yml')) as handle:
        roles = [r for r in yaml.safe_load(handle)['preflight_roles'] if r['role'] in REFUSED]
    assert sorted(r['role'] for r in roles) == sorted(REFUSED)
    (tmp_path / 'checks.yml').write_text(CHECKS.format(roles=yaml.safe_dump(roles, default_flow_style=True).strip()))
    (tmp_path / 'one.yml').write_text(ONE)
    rc, out = play(inventory, str(tmp_path / 'checks.yml'))
    assert rc == 0, out[-3000:]
    refusals = {}
    for line in out.splitlines():
        if '"msg": "REFUSED ' in line:
            role, message = line.split('"msg": "REFUSED ', 1)[1].split(': ', 1)
            refusals.setdefault(role, set()).add(message)
    assert sorted(refusals) == sorted(REFUSED), out[-3000:]
    for role, names in REFUSED.items():
        for message in refusals[role]:
            assert MESSAGE in message, (role, message)
            assert message.split(': still', 1)[0].split(', ') == names, (role, message)
    assert_no_secret(out)


RABBITMQ_CHECKS = """
- name: Run the RabbitMQ checks on a placeholder password
  hosts: localhost
  gather_facts: false
  vars:
    rabbitmq_vhosts:
      - {vhost: app, user: app, password: change-me-at-least-16-characters}
      - {vhost: old, user: old, state: absent}
  tasks:
    - name: Include the checks
      ansible.builtin.include_role:
        name: selfhost.platform.rabbitmq
        tasks_from: assert
"""


def test_rabbitmq_refuses_a_placeholder_vhost_password(tmp_path):
    # No example inventory wires RabbitMQ, so its vhost passwords are given here.
    (tmp_path / 'rabbitmq.yml').write_text(RABBITMQ_CHECKS)
    rc, out = play(str(tmp_path), str(tmp_path / 'rabbitmq.yml'))
    assert rc != 0, out[-3000:]
    assert 'rabbitmq_vhosts.app: still the' in out and MESSAGE in out, out[-3000:]
    assert 'change-me-at-least-16-characters' not in out, out[-3000:]
