# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runbooks whose target group is empty fail with a message naming the variable to set, instead
of "no hosts matched" and rc 0. Nothing runs on any host: the check is on the controller."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

pytestmark = pytest.mark.skipif(shutil.which('ansible-playbook') is None, reason='ansible-playbook not on PATH')


@pytest.fixture(scope='module')
def inventory(tmp_path_factory):
    """One edge host and no workers group, as on a fleet whose workers are not in this inventory."""
    path = tmp_path_factory.mktemp('runbooks') / 'hosts.yml'
    path.write_text(json.dumps({'all': {'children': {'edge': {'hosts': {'rb-edge': {'ansible_connection': 'local'}}}}}}))
    return str(path)


def play(inventory, runbook, *extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(('ANSIBLE_', 'MOLECULE_'))}
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.ansible', 'collections'))
    args = ['ansible-playbook', '-i', inventory, os.path.join(ROOT, 'playbooks', 'runbooks', runbook)]
    for item in extra:
        args += ['-e', item]
    run = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    return run.returncode, run.stdout + run.stderr


@pytest.mark.parametrize('runbook, variable, extra', [
    ('celery_scale.yml', 'celery_scale_hosts', ['celery_scale_pool=default', 'celery_scale_concurrency=2']),
    ('celery_drain_restart.yml', 'celery_drain_hosts', []),
])
def test_an_empty_target_group_fails_naming_the_variable(inventory, runbook, variable, extra):
    rc, out = play(inventory, runbook, *extra)
    assert rc != 0, out[-3000:]
    assert "No host of this inventory matches 'workers'" in out, out[-3000:]
    assert 'set -e %s=' % variable in out, out[-3000:]
    assert 'edge' in out  # the groups the inventory does have


def test_a_target_given_on_the_command_line_is_used(inventory):
    rc, out = play(inventory, 'celery_drain_restart.yml', 'celery_drain_hosts=nowhere')
    assert rc != 0 and "matches 'nowhere'" in out, out[-3000:]


def test_the_lab_app_is_found_from_a_runbook(tmp_path):
    """The lab's paths follow the inventory, not the playbook: from playbooks/runbooks/ the sample
    app a runbook copies (celery_app_source) must exist (it used to resolve under playbooks/runbooks/../)."""
    lab = tmp_path / 'lab'
    lab.mkdir()
    for name in ('group_vars', 'files'):
        (lab / name).symlink_to(os.path.join(ROOT, 'inventories', 'lab', name))
    (lab / 'hosts.yml').write_text(json.dumps(
        {'all': {'children': {'workers': {'hosts': {'rb-worker': {'ansible_connection': 'local'}}}}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(('ANSIBLE_', 'MOLECULE_'))}
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    run = subprocess.run(['ansible', '-i', str(lab), 'rb-worker', '--playbook-dir', os.path.join(ROOT, 'playbooks', 'runbooks'),
                          '-m', 'ansible.builtin.debug', '-a', 'msg=app:{{ (celery_app_source.src ~ "/labapp.py") is exists }}'],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert '"msg": "app:True"' in out, out[-3000:]
    assert 'WARNING' not in out, out[-3000:]
