# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`selfhost-pg-backup restore --from PATH` (roles/pg_backup/files/selfhost-pg-backup.py): which set
a path names, and that the restore reads the dump it found. No PostgreSQL: the runner's commands
and connections are replaced by fakes."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import argparse
import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_SPEC = importlib.util.spec_from_file_location('selfhost_pg_backup', os.path.join(ROOT, 'roles/pg_backup/files/selfhost-pg-backup.py'))
pgb = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(pgb)

TABLES = {'public.items': 3}


def make_set(root, set_id, databases=('app',)):
    path = os.path.join(str(root), set_id)
    os.makedirs(path)
    manifest = {'set': set_id, 'created': 1.0, 'databases': {}}
    for db in databases:
        with open(os.path.join(path, db + '.dump'), 'wb') as handle:
            handle.write(b'PGDMP dump of ' + db.encode() + b' in ' + set_id.encode())
        manifest['databases'][db] = {'file': db + '.dump', 'bytes': 10, 'owner': 'app', 'encoding': 'UTF8',
                                     'collate': 'C.UTF-8', 'ctype': 'C.UTF-8', 'tables': dict(TABLES)}
    with open(os.path.join(path, 'roles.sql'), 'w') as handle:
        handle.write('CREATE ROLE app;\n')
    with open(os.path.join(path, 'manifest.json'), 'w') as handle:
        json.dump(manifest, handle)
    return path


@pytest.fixture
def cfg(tmp_path):
    backup_dir = tmp_path / 'backups'
    backup_dir.mkdir()
    make_set(backup_dir, '20250101T030000Z')
    return {'backup_dir': str(backup_dir), 'socket_dir': '/var/run/postgresql', 'port': 5432,
            'bin_dir': '/usr/lib/postgresql/15/bin'}


@pytest.fixture
def elsewhere(tmp_path):
    """What restic restores to another directory: <target>/var/backups/postgresql/<sets>."""
    root = tmp_path / 'restored' / 'var' / 'backups' / 'postgresql'
    root.mkdir(parents=True)
    make_set(root, '20250201T030000Z')
    make_set(root, '20250202T030000Z')
    return root


def test_without_from_the_backup_directory_is_used(cfg):
    set_id, path, manifest = pgb.find_source(cfg, 'latest', '', 'app')
    assert set_id == '20250101T030000Z' and path == os.path.join(cfg['backup_dir'], set_id)


def test_from_a_directory_of_sets_takes_the_newest_or_the_named_one(cfg, elsewhere):
    assert pgb.find_source(cfg, 'latest', str(elsewhere), 'app')[0] == '20250202T030000Z'
    set_id, path, _manifest = pgb.find_source(cfg, '20250201T030000Z', str(elsewhere), 'app')
    assert set_id == '20250201T030000Z' and path == str(elsewhere / set_id)
    with pytest.raises(SystemExit, match='20250101T030000Z not found in .*restored'):
        pgb.find_source(cfg, '20250101T030000Z', str(elsewhere), 'app')


def test_from_one_set_directory_even_renamed(cfg, elsewhere):
    os.rename(str(elsewhere / '20250201T030000Z'), str(elsewhere / 'picked'))
    set_id, path, manifest = pgb.find_source(cfg, 'latest', str(elsewhere / 'picked'), 'app')
    assert set_id == '20250201T030000Z' and path == str(elsewhere / 'picked')
    with pytest.raises(SystemExit, match='holds set 20250201T030000Z, not 20250202T030000Z'):
        pgb.find_source(cfg, '20250202T030000Z', str(elsewhere / 'picked'), 'app')


def test_from_a_dump_file_needs_its_manifest_and_the_right_database(cfg, elsewhere, tmp_path):
    dump = elsewhere / '20250202T030000Z' / 'app.dump'
    assert pgb.find_source(cfg, 'latest', str(dump), 'app')[0] == '20250202T030000Z'
    with pytest.raises(SystemExit, match='not the dump of database other'):
        pgb.find_source(cfg, 'latest', str(dump), 'other')
    lone = tmp_path / 'app.dump'
    lone.write_bytes(b'PGDMP')
    with pytest.raises(SystemExit, match='no manifest.json beside it'):
        pgb.find_source(cfg, 'latest', str(lone), 'app')
    with pytest.raises(SystemExit, match='no such file or directory'):
        pgb.find_source(cfg, 'latest', str(tmp_path / 'missing'), 'app')


class FakeCursor(object):
    def __init__(self, log):
        self.log = log

    def execute(self, query, params=None):
        self.log.append(query)

    def fetchone(self):
        return None


class FakeConn(object):
    autocommit = False

    def __init__(self, log):
        self.log = log

    def cursor(self):
        return FakeCursor(self.log)

    def close(self):
        pass


def test_restore_reads_the_dump_it_found_on_stdin(cfg, elsewhere, monkeypatch):
    ran = []
    queries = []

    def fake_run(argv, **kw):
        stdin = kw.get('stdin')
        ran.append((argv, stdin.read() if stdin else None))

    monkeypatch.setattr(pgb, 'run', fake_run)
    monkeypatch.setattr(pgb, 'connect', lambda cfg, db, host=None, port=None: FakeConn(queries))
    monkeypatch.setattr(pgb, 'table_counts', lambda cur: dict(TABLES))
    monkeypatch.setattr(pgb, 'become_postgres', lambda: None)
    args = argparse.Namespace(set='20250201T030000Z', source=str(elsewhere), database='app', as_name='app_copy',
                              roles=True)
    result = pgb.restore(cfg, args)
    assert result['set'] == '20250201T030000Z' and result['from'] == str(elsewhere / '20250201T030000Z')
    assert result['database'] == 'app_copy' and result['rows'] == 3
    (roles_argv, roles_in), (restore_argv, dump_in) = ran
    assert roles_argv[-2:] == ['-f', '-'] and roles_in == b'CREATE ROLE app;\n'
    assert restore_argv[-2:] == ['-d', 'app_copy']                 # no path: the dump comes on stdin
    assert dump_in == b'PGDMP dump of app in 20250201T030000Z'
    assert any('CREATE DATABASE "app_copy"' in q for q in queries)
