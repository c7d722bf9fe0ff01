# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""selfhost-journal-age (roles/journal_remote/files/selfhost-journal-age.py): which hosts it reports,
under which name, and what it writes when journalctl fails. journalctl is replaced by a fake that
answers from a table of entries."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib.util
import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_SPEC = importlib.util.spec_from_file_location(
    'selfhost_journal_age', os.path.join(ROOT, 'roles/journal_remote/files/selfhost-journal-age.py'))
age = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(age)


def fake_journalctl(monkeypatch, last_entries, returncode=0, stderr=''):
    """journalctl answering --field _HOSTNAME and _HOSTNAME=<h> --lines 1 from {host: seconds}."""
    calls = []

    def run(argv, **kwargs):
        calls.append(argv)
        out = ''
        if '--field' in argv:
            out = ''.join('%s\n' % host for host in last_entries)
        else:
            host = [arg.split('=', 1)[1] for arg in argv if arg.startswith('_HOSTNAME=')][0]
            if host in last_entries:
                out = json.dumps({'__REALTIME_TIMESTAMP': str(int(last_entries[host] * 1e6)), 'MESSAGE': 'x'}) + '\n'
        return subprocess.CompletedProcess(argv, returncode, out, stderr)

    monkeypatch.setattr(age.subprocess, 'run', run)
    return calls


def read_metrics(path):
    values = {}
    for line in path.read_text().splitlines():
        if line.startswith('#'):
            continue
        name_labels, value = line.rsplit(' ', 1)
        values[name_labels.split('sender="', 1)[1].rstrip('"}')] = float(value)
    return values


def test_expected_names_match_journal_hosts_in_full_or_by_first_label():
    mapping = age.match_hosts(['web1.example.org', 'db1', 'new1'], ['db1', 'web1', 'stray'])
    assert mapping == {'web1.example.org': 'web1', 'db1': 'db1', 'new1': None, 'stray': 'stray'}


def test_one_journal_host_is_claimed_by_one_expected_name_only():
    mapping = age.match_hosts(['web1.a.org', 'web1.b.org'], ['web1'])
    assert mapping == {'web1.a.org': 'web1', 'web1.b.org': None}


def test_every_sender_is_written_with_its_last_entry_and_a_silent_one_with_zero(monkeypatch, tmp_path):
    fake_journalctl(monkeypatch, {'web1': 1764770000.5, 'stray': 1764760000.0})
    out = tmp_path / 'journal.prom'
    (tmp_path / 'journal').mkdir()
    assert age.main(['--directory', str(tmp_path / 'journal'), '--output', str(out),
                     '--expect', 'web1.example.org', '--expect', 'new1']) == 0
    assert read_metrics(out) == {'web1.example.org': 1764770000.5, 'new1': 0.0, 'stray': 1764760000.0}
    assert '# TYPE selfhost_journal_remote_last_entry_timestamp_seconds gauge' in out.read_text()


def test_an_empty_journal_directory_reports_every_expected_host_as_never_heard_from(monkeypatch, tmp_path):
    fake_journalctl(monkeypatch, {}, returncode=1, stderr='No journal files were found.\n')
    out = tmp_path / 'journal.prom'
    (tmp_path / 'journal').mkdir()
    assert age.main(['--directory', str(tmp_path / 'journal'), '--output', str(out), '--expect', 'web1']) == 0
    assert read_metrics(out) == {'web1': 0.0}


def test_a_failing_journalctl_keeps_the_old_file_and_exits_1(monkeypatch, tmp_path, capsys):
    journal = tmp_path / 'journal'
    journal.mkdir()
    (journal / 'fleet.journal').write_text('x')
    fake_journalctl(monkeypatch, {}, returncode=1, stderr='Failed to open files: Permission denied\n')
    out = tmp_path / 'journal.prom'
    out.write_text('old\n')
    assert age.main(['--directory', str(journal), '--output', str(out), '--expect', 'web1']) == 1
    assert out.read_text() == 'old\n'
    assert 'Permission denied' in capsys.readouterr().err


def test_label_values_are_escaped():
    text = age.render({'we"ird\\host': 1.0})
    assert 'sender="we\\"ird\\\\host"' in text


@pytest.mark.parametrize('name,expected', [('web1.example.org', 'web1'), ('WEB1', 'web1'), ('db', 'db')])
def test_short_name(name, expected):
    assert age.short(name) == expected
