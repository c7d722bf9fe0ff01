# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`selfhost-redis-backup snapshot` (roles/redis/files/selfhost_redis_backup.py): the wait for its own
BGSAVE, the copy and its check, which snapshots the retention keeps, the textfile metric and the exit
code of every failure. No Redis: redis-cli and redis-check-rdb are replaced by a fake server that
answers as they do (LASTSAVE an integer, BGSAVE "Background saving started", INFO lines with CRLF,
errors on stdout with exit 0, a refused connection on stderr with exit 1), and the clock by a fake
one, so a 600-second timeout passes in no time."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import importlib.util
import json
import os
import stat
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_SPEC = importlib.util.spec_from_file_location('selfhost_redis_backup',
                                               os.path.join(ROOT, 'roles/redis/files/selfhost_redis_backup.py'))
rdb = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(rdb)

START = 1764640800  # 2025-12-02T02:00:00Z


def rdb_bytes(payload=b'app:1'):
    """What an RDB file looks like to redis-check-rdb: magic and version, data, EOF opcode, checksum."""
    body = b'REDIS0011' + payload + b'\xff'
    return body + hashlib.sha256(body).digest()[:8]


class Clock(object):
    """time.time/monotonic/sleep for the script: sleeping moves both clocks on."""

    def __init__(self, now=START + 0.5):
        self.now = now
        self.mono = 1000.0
        self.strftime = time.strftime
        self.gmtime = time.gmtime

    def time(self):
        return self.now

    def monotonic(self):
        return self.mono

    def sleep(self, seconds):
        self.now += seconds
        self.mono += seconds


class FakeRedis(object):
    """A Redis server as redis-cli shows it, and redis-check-rdb.

    save_seconds: how long a BGSAVE runs (None: it never ends); save_ok: whether it succeeds, which
    like Redis moves LASTSAVE on and replaces dump.rdb by a rename only on success.
    """

    def __init__(self, clock, redis_dir, lastsave=START - 3600, save_seconds=2.0, save_ok=True,
                 data=None, keys=(3, 2)):
        self.clock = clock
        self.redis_dir = str(redis_dir)
        self.lastsave = lastsave
        self.save_seconds = save_seconds
        self.save_ok = save_ok
        self.data = rdb_bytes() if data is None else data
        self.keys = keys
        self.status = 'ok'
        self.child = None           # (ends at, whose save)
        self.aof_until = None       # an AOF rewrite running until then
        self.scheduled = False
        self.down = False
        self.denied = set()
        self.calls = []
        self.bgsaves = []           # (clock time, answer)
        self.checked = []
        with open(os.path.join(self.redis_dir, 'dump.rdb'), 'wb') as handle:
            handle.write(rdb_bytes(b'old'))

    def start_child(self, owner='ours'):
        ends = None if self.save_seconds is None else self.clock.now + self.save_seconds
        self.child = (ends, owner)

    def advance(self):
        if self.aof_until is not None and self.clock.now >= self.aof_until:
            self.aof_until = None
            if self.scheduled:
                self.scheduled = False
                self.start_child()
        if self.child and self.child[0] is not None and self.clock.now >= self.child[0]:
            self.child = None
            if self.save_ok:
                tmp = os.path.join(self.redis_dir, 'temp-1234.rdb')
                with open(tmp, 'wb') as handle:
                    handle.write(self.data)
                os.rename(tmp, os.path.join(self.redis_dir, 'dump.rdb'))
                self.lastsave = int(self.clock.now)
                self.status = 'ok'
            else:
                self.status = 'err'

    def answer(self, args):
        self.advance()
        command = args[0].upper()
        if command.lower() in self.denied:
            return ("NOPERM User backup has no permissions to run the '%s' command" % command.lower())
        if command == 'PING':
            return 'PONG'
        if command == 'LASTSAVE':
            return str(self.lastsave)
        if command == 'BGSAVE':
            if self.child:
                text = 'ERR Background save already in progress'
            elif self.aof_until is not None:
                self.scheduled = True
                text = 'Background saving scheduled'
            else:
                self.start_child()
                text = 'Background saving started'
            self.bgsaves.append((self.clock.now, text))
            return text
        if command == 'INFO' and args[1] == 'persistence':
            return '\r\n'.join([
                '# Persistence', 'loading:0', 'async_loading:0',
                'rdb_changes_since_last_save:0',
                'rdb_bgsave_in_progress:%d' % (1 if self.child else 0),
                'rdb_last_save_time:%d' % self.lastsave,
                'rdb_last_bgsave_status:%s' % self.status,
                'aof_enabled:1', 'aof_rewrite_in_progress:%d' % (1 if self.aof_until else 0),
                'aof_rewrite_scheduled:0', 'aof_last_bgrewrite_status:ok']) + '\r\n'
        if command == 'INFO' and args[1] == 'keyspace':
            lines = ['# Keyspace'] + ['db%d:keys=%d,expires=0,avg_ttl=0' % (n, k) for n, k in enumerate(self.keys)]
            return '\r\n'.join(lines) + '\r\n'
        return "ERR unknown command '%s'" % args[0]

    def run(self, argv, **kwargs):
        if argv[0] == 'redis-check-rdb':
            return self.check_rdb(argv)
        assert argv[0] == 'redis-cli', argv
        assert kwargs['env']['REDISCLI_AUTH'] == 'secret' and 'secret' not in argv
        args = argv[argv.index('--no-auth-warning') + 1:]
        self.calls.append(args)
        if self.down:
            return subprocess.CompletedProcess(argv, 1, '', 'Could not connect to Redis at 127.0.0.1:6379: Connection refused\n')
        return subprocess.CompletedProcess(argv, 0, self.answer(args) + '\n', '')

    def check_rdb(self, argv):
        path = argv[1]
        self.checked.append(path)
        with open(path, 'rb') as handle:
            data = handle.read()
        head = '[offset 0] Checking RDB file %s\n' % os.path.basename(path)
        body = data[:-8]
        if not data.startswith(b'REDIS') or len(data) < 9:
            return subprocess.CompletedProcess(argv, 1, '--- RDB ERROR DETECTED ---\n' + head
                                               + '[additional info] Wrong signature trying to load DB from file\n', None)
        if not body.endswith(b'\xff'):
            return subprocess.CompletedProcess(argv, 1, '--- RDB ERROR DETECTED ---\n' + head
                                               + '[additional info] Unexpected EOF reading RDB file\n', None)
        if hashlib.sha256(body).digest()[:8] != data[-8:]:
            return subprocess.CompletedProcess(argv, 1, '--- RDB ERROR DETECTED ---\n' + head
                                               + '[additional info] Wrong RDB checksum. Aborting now.\n', None)
        return subprocess.CompletedProcess(argv, 0, head + '[offset %d] Checksum OK\n[offset %d] \\o/ RDB looks OK! \\o/\n'
                                           % (len(data), len(data)), None)


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(rdb, 'time', fake)
    return fake


@pytest.fixture
def config(tmp_path):
    for name in ('redis', 'backups', 'textfile'):
        (tmp_path / name).mkdir()
    conf = {'host': '127.0.0.1', 'port': 6379, 'user': 'backup', 'password': 'secret',
            'redis_dir': str(tmp_path / 'redis'), 'backup_dir': str(tmp_path / 'backups'), 'keep': 3,
            'service': 'redis-server', 'appendonly': True, 'timeout_seconds': 600,
            'textfile_dir': str(tmp_path / 'textfile')}
    path = tmp_path / 'selfhost-backup.json'
    path.write_text(json.dumps(conf))
    return conf


@pytest.fixture
def server(clock, config, monkeypatch):
    fake = FakeRedis(clock, config['redis_dir'])
    monkeypatch.setattr(rdb.subprocess, 'run', fake.run)
    return fake


def run_main(config, capsys, monkeypatch, *argv):
    """main() with the configuration file written from config; returns (exit code, report)."""
    path = os.path.join(os.path.dirname(config['backup_dir']), 'selfhost-backup.json')
    with open(path, 'w') as handle:
        json.dump(config, handle)
    monkeypatch.setattr(rdb, 'CONFIG', path)
    code = rdb.main(['selfhost-redis-backup'] + list(argv))
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith('REDIS-BACKUP-REPORT ')]
    assert len(lines) <= 1, out
    return code, (json.loads(lines[0].split(' ', 1)[1]) if lines else None)


def listing(directory):
    return sorted(os.listdir(str(directory)))


def stamp(offset_hours):
    return time.strftime('dump-%Y%m%dT%H%M%SZ.rdb', time.gmtime(START - 3600 * offset_hours))


def seed(config, names):
    for name in names:
        path = os.path.join(config['backup_dir'], name)
        with open(path, 'wb') as handle:
            handle.write(rdb_bytes(name.encode()))


# ---------------------------------------------------------------- a good snapshot

def test_snapshot_copies_the_new_save_with_its_checksum(config, server, clock, capsys, monkeypatch):
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert code == 0 and rep['ok'] is True and rep['command'] == 'snapshot'
    # Named after LASTSAVE of our save (2 s after the BGSAVE), not after an older one.
    name = time.strftime('dump-%Y%m%dT%H%M%SZ.rdb', time.gmtime(server.lastsave))
    assert server.lastsave > START
    assert rep['file'] == os.path.join(config['backup_dir'], name)
    assert listing(config['backup_dir']) == [name, name + '.sha256']
    with open(rep['file'], 'rb') as handle:
        assert handle.read() == server.data              # the new dump.rdb, not the one before it
    digest = hashlib.sha256(server.data).hexdigest()
    assert rep['sha256'] == digest and rep['bytes'] == len(server.data) and rep['keys'] == 5
    # sha256sum -c format, and both files private.
    with open(rep['file'] + '.sha256') as handle:
        assert handle.read() == '%s  %s\n' % (digest, name)
    subprocess.check_call(['sha256sum', '--quiet', '-c', name + '.sha256'], cwd=config['backup_dir'])
    for path in (rep['file'], rep['file'] + '.sha256'):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # The copy was checked before it got its name (a hidden temporary file beside it).
    assert len(server.checked) == 1
    checked = os.path.basename(server.checked[0])
    assert os.path.dirname(server.checked[0]) == config['backup_dir'] and checked.startswith('.' + name + '.')
    assert rep['removed'] == []


def test_a_save_in_the_same_second_as_lastsave_waits_for_the_next_second(config, server, clock, capsys, monkeypatch):
    # LASTSAVE has a one-second resolution: a BGSAVE now could end with the same LASTSAVE.
    server.lastsave = int(clock.now)
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert code == 0
    assert len(server.bgsaves) == 1 and int(server.bgsaves[0][0]) > START
    assert server.lastsave > START and rep['lastsave'] == server.lastsave


def test_someone_elses_save_is_waited_for_and_ours_started_after_it(config, server, clock, capsys, monkeypatch):
    server.start_child(owner='automatic')               # ends 2 s from now, with older data
    other = rdb_bytes(b'older')
    newer = server.data
    server.data = other

    real_advance = server.advance

    def advance():
        before = server.child
        real_advance()
        if before and not server.child:
            server.data = newer                          # writes after the automatic save
    server.advance = advance
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert code == 0
    answers = [text for _t, text in server.bgsaves]
    assert answers == ['ERR Background save already in progress', 'Background saving started']
    with open(rep['file'], 'rb') as handle:
        assert handle.read() == newer


def test_a_scheduled_save_behind_an_aof_rewrite_is_waited_for(config, server, clock, capsys, monkeypatch):
    server.aof_until = clock.now + 30
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert code == 0 and [text for _t, text in server.bgsaves] == ['Background saving scheduled']
    assert server.lastsave >= START + 30 and rep['lastsave'] == server.lastsave


# ---------------------------------------------------------------- retention

@pytest.mark.parametrize('keep, existing, kept_old', [
    (3, 0, 0),          # the first snapshot
    (1, 0, 0),          # keep one, nothing before it
    (1, 1, 0),          # keep one: the previous one goes
    (3, 1, 1),
    (3, 2, 2),          # exactly at the limit with the new one: nothing goes
    (3, 3, 2),          # one over: the oldest goes
    (3, 6, 2),          # several over (keep was lowered): all the oldest go at once
])
def test_retention_keeps_the_newest_keep_snapshots(config, server, capsys, monkeypatch, keep, existing, kept_old):
    old = [stamp(h) for h in range(existing, 0, -1)]     # oldest first
    seed(config, old)
    for name in old:
        with open(os.path.join(config['backup_dir'], name + '.sha256'), 'w') as handle:
            handle.write('0  %s\n' % name)
    config['keep'] = keep
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert code == 0
    new = os.path.basename(rep['file'])
    survivors = old[len(old) - kept_old:] if kept_old else []
    removed = old[:len(old) - kept_old]
    assert rep['removed'] == removed
    expected = sorted(survivors + [new] + [n + '.sha256' for n in survivors + [new]])
    assert listing(config['backup_dir']) == expected
    assert len(survivors) + 1 == min(keep, existing + 1)


def test_retention_leaves_files_that_are_not_snapshots_alone(config, server, capsys, monkeypatch):
    old = [stamp(3), stamp(2), stamp(1)]
    seed(config, old)
    others = ['dump.rdb', 'dump-20250101.rdb', 'dump-20250101T000000Z.rdb.bak', 'dump-20250101T000000Z.rdb.gz',
              'Dump-20250101T000000Z.rdb', 'x-dump-20250101T000000Z.rdb', 'notes.txt',
              '.dump-20250101T000000Z.rdb.abc123',                  # a crashed run's temporary copy
              'dump-20240101T000000Z.rdb.sha256']                   # a checksum without its snapshot
    seed(config, others)
    os.mkdir(os.path.join(config['backup_dir'], 'dump-20240101T000000Z.rdb.d'))
    config['keep'] = 1
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert code == 0
    assert rep['removed'] == old                        # the snapshots without a .sha256 go too
    new = os.path.basename(rep['file'])
    assert listing(config['backup_dir']) == sorted(others + ['dump-20240101T000000Z.rdb.d', new, new + '.sha256'])


def test_retention_orders_by_the_save_time_in_the_name(config, server, capsys, monkeypatch):
    # Written out of order (a restore from restic, mtimes of today): the names decide.
    seed(config, ['dump-20251201T020000Z.rdb', 'dump-20241231T235959Z.rdb', 'dump-20250101T000000Z.rdb'])
    config['keep'] = 2
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert code == 0 and rep['removed'] == ['dump-20241231T235959Z.rdb', 'dump-20250101T000000Z.rdb']
    assert listing(config['backup_dir'])[:2] == ['dump-20251201T020000Z.rdb', os.path.basename(rep['file'])]


def test_list_is_oldest_first_and_only_snapshots(config, server, capsys, monkeypatch):
    code, rep = run_main(config, capsys, monkeypatch, 'list')
    assert code == 0 and rep == {'command': 'list', 'ok': True, 'snapshots': []}
    seed(config, [stamp(1), stamp(5), 'dump.rdb', stamp(2) + '.sha256'])
    code, rep = run_main(config, capsys, monkeypatch, 'list')
    assert code == 0 and rep == {'command': 'list', 'ok': True, 'snapshots': [
        os.path.join(config['backup_dir'], stamp(5)), os.path.join(config['backup_dir'], stamp(1))]}


# ---------------------------------------------------------------- metric

def read_metric(config):
    with open(os.path.join(config['textfile_dir'], 'selfhost_redis_backup.prom')) as handle:
        return handle.read()


def parse_textfile(text):
    """The node-exporter textfile format: HELP and TYPE before the samples of each metric."""
    assert text.endswith('\n')
    samples, helped, typed = {}, set(), {}
    for line in text.splitlines():
        if line.startswith('# HELP '):
            helped.add(line.split()[2])
        elif line.startswith('# TYPE '):
            _hash, _type, name, kind = line.split()
            typed[name] = kind
        else:
            name, value = line.split(' ')
            assert name in helped and name in typed, line
            samples[name] = float(value)
    return samples, typed


def test_a_snapshot_publishes_its_time_and_duration(config, server, clock, capsys, monkeypatch):
    code, _rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert code == 0
    path = os.path.join(config['textfile_dir'], 'selfhost_redis_backup.prom')
    samples, typed = parse_textfile(read_metric(config))
    assert typed == {'selfhost_redis_backup_last_success_timestamp_seconds': 'gauge',
                     'selfhost_redis_backup_duration_seconds': 'gauge'}
    assert samples['selfhost_redis_backup_last_success_timestamp_seconds'] == clock.now
    # From the start of the run: the BGSAVE (2 s) and the polls, on the fake clock.
    assert 2.0 <= samples['selfhost_redis_backup_duration_seconds'] < 5.0
    # Readable by node-exporter (the unit runs with UMask=0077), no temporary file left.
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert listing(config['textfile_dir']) == ['selfhost_redis_backup.prom']


def test_the_metric_file_is_replaced_whole(config, server, clock, capsys, monkeypatch):
    path = os.path.join(config['textfile_dir'], 'selfhost_redis_backup.prom')
    rdb.write_metric(config, 1000.0, 1.0)
    old = read_metric(config)
    seen = []
    real_replace = os.replace

    def replace(src, dst):
        # At the moment of the rename the new content is complete in a file of the same directory,
        # and a reader of the metric still sees the old file whole.
        if dst == path:
            with open(src) as handle:
                seen.append((os.path.dirname(src), handle.read(), read_metric(config)))
        return real_replace(src, dst)

    monkeypatch.setattr(rdb.os, 'replace', replace)
    rdb.write_metric(config, 2000.5, 0.25)
    ((directory, new, before),) = seen
    assert directory == config['textfile_dir'] and before == old and new == read_metric(config)
    samples, _typed = parse_textfile(new)
    assert samples == {'selfhost_redis_backup_last_success_timestamp_seconds': 2000.5,
                       'selfhost_redis_backup_duration_seconds': 0.25}
    # Hidden while written: node-exporter reads only *.prom.
    assert all(not name.endswith('.prom') or name == 'selfhost_redis_backup.prom' for name in listing(directory))


def test_no_metric_without_a_textfile_directory(config, server, capsys, monkeypatch, tmp_path):
    config['textfile_dir'] = str(tmp_path / 'no-node-exporter')
    code, _rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert code == 0 and not os.path.exists(config['textfile_dir'])
    config['textfile_dir'] = ''
    code, _rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert code == 0


# ---------------------------------------------------------------- failures

def assert_failed_cleanly(config, rep, code, before, metric, match):
    """Exit 1, a report saying why, the backup directory and the metric as they were."""
    assert code == 1 and rep['ok'] is False and rep['command'] == 'snapshot', rep
    assert match in rep['error'], rep['error']
    assert listing(config['backup_dir']) == before
    assert read_metric(config) == metric


@pytest.fixture
def previous(config, server):
    """An earlier snapshot and its metric: a failed run must leave both as they are."""
    name = stamp(24)
    seed(config, [name])
    with open(os.path.join(config['backup_dir'], name + '.sha256'), 'w') as handle:
        handle.write('%s  %s\n' % (hashlib.sha256(rdb_bytes(name.encode())).hexdigest(), name))
    rdb.write_metric(config, START - 86400, 3.0)
    config['keep'] = 1            # a run that got as far as the retention would delete it
    return listing(config['backup_dir']), read_metric(config)


def test_a_bgsave_that_never_finishes_times_out(config, server, clock, previous, capsys, monkeypatch):
    server.save_seconds = None
    started = clock.mono
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert_failed_cleanly(config, rep, code, previous[0], previous[1],
                          'timed out after 600 s waiting for BGSAVE to finish')
    assert 600 < clock.mono - started < 602            # it waited the configured time, not forever
    assert server.checked == []                         # nothing was copied


@pytest.mark.parametrize('aof_rewrite', [0, 30])
def test_a_failed_bgsave_fails_the_run_when_it_ends(config, server, clock, previous, capsys, monkeypatch, aof_rewrite):
    # Redis moves LASTSAVE on only after a successful save: a failed one (disk full, a bad
    # directory) leaves it, and says rdb_last_bgsave_status:err. The run reports that save's failure
    # when it ends, not a timeout 600 s later. A scheduled save (behind an AOF rewrite) too.
    server.save_ok = False
    server.aof_until = clock.now + aof_rewrite if aof_rewrite else None
    started = clock.mono
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert_failed_cleanly(config, rep, code, previous[0], previous[1],
                          'the background save failed (rdb_last_bgsave_status err)')
    assert clock.mono - started < aof_rewrite + 10
    assert server.checked == []


def test_an_old_failed_save_does_not_fail_a_scheduled_one(config, server, clock, capsys, monkeypatch):
    # The status of the save before ours says err until ours has run.
    server.status = 'err'
    server.aof_until = clock.now + 30
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert code == 0 and rep['ok'] is True and server.lastsave >= START + 30


@pytest.mark.parametrize('damage, match', [
    (lambda data: data[:len(data) // 2], 'Unexpected EOF'),         # truncated
    (lambda data: b'\x00' * len(data), 'Wrong signature'),          # not an RDB file
    (lambda data: b'', 'Wrong signature'),                          # empty
    (lambda data: data[:-1] + bytes([data[-1] ^ 1]), 'Wrong RDB checksum'),
])
def test_a_damaged_dump_is_refused_and_not_kept(config, server, previous, capsys, monkeypatch, damage, match):
    server.data = damage(server.data)
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert_failed_cleanly(config, rep, code, previous[0], previous[1], 'redis-check-rdb')
    assert match in rep['error']
    assert len(server.checked) == 1 and not os.path.exists(server.checked[0])   # the temporary copy is gone


@pytest.mark.parametrize('rc, output', [
    (0, '[offset 0] Checking RDB file\n'),                                 # exit 0 without the verdict
    (1, '[offset 113] \\o/ RDB looks OK! \\o/\n--- RDB ERROR DETECTED ---\n'),  # the verdict, then a failure
])
def test_redis_check_rdb_must_exit_0_and_say_the_file_looks_ok(config, server, previous, capsys, monkeypatch, rc, output):
    real = server.run

    def run(argv, **kwargs):
        if argv[0] == 'redis-check-rdb':
            return subprocess.CompletedProcess(argv, rc, output, None)
        return real(argv, **kwargs)

    monkeypatch.setattr(rdb.subprocess, 'run', run)
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert_failed_cleanly(config, rep, code, previous[0], previous[1], 'redis-check-rdb')


def test_a_missing_dump_rdb_fails_without_a_partial_copy(config, server, previous, capsys, monkeypatch):
    real_advance = server.advance

    def advance():
        real_advance()
        if os.path.exists(os.path.join(config['redis_dir'], 'dump.rdb')) and server.lastsave > START:
            os.unlink(os.path.join(config['redis_dir'], 'dump.rdb'))   # dbfilename differs from the role's
    server.advance = advance
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert_failed_cleanly(config, rep, code, previous[0], previous[1], 'dump.rdb')


def test_redis_unreachable_fails_the_run(config, server, previous, capsys, monkeypatch):
    server.down = True
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert_failed_cleanly(config, rep, code, previous[0], previous[1], 'Could not connect to Redis')


@pytest.mark.parametrize('command', ['bgsave', 'lastsave', 'info'])
def test_a_backup_user_without_the_permission_fails_the_run(config, server, previous, capsys, monkeypatch, command):
    server.denied.add(command)
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert_failed_cleanly(config, rep, code, previous[0], previous[1], 'NOPERM')


def test_a_hanging_redis_cli_fails_the_run(config, server, previous, capsys, monkeypatch):
    def run(argv, **kwargs):
        raise subprocess.TimeoutExpired(argv, kwargs['timeout'])

    monkeypatch.setattr(rdb.subprocess, 'run', run)
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert_failed_cleanly(config, rep, code, previous[0], previous[1], 'timed out after 60 seconds')


def test_a_lastsave_that_is_not_a_number_fails_the_run(config, server, previous, capsys, monkeypatch):
    real = server.answer
    server.answer = lambda args: '' if args[0] == 'LASTSAVE' else real(args)
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert_failed_cleanly(config, rep, code, previous[0], previous[1], 'invalid literal for int()')


def test_configuration_errors_exit_1(config, server, capsys, monkeypatch, tmp_path):
    broken = dict(config)
    del broken['keep']
    code, rep = run_main(broken, capsys, monkeypatch, 'snapshot')
    assert code == 1 and rep['ok'] is False and 'missing key keep' in rep['error']
    monkeypatch.setattr(rdb, 'CONFIG', str(tmp_path / 'missing.json'))
    assert rdb.main(['selfhost-redis-backup', 'snapshot']) == 1
    (tmp_path / 'bad.json').write_text('{"host": ')
    monkeypatch.setattr(rdb, 'CONFIG', str(tmp_path / 'bad.json'))
    assert rdb.main(['selfhost-redis-backup', 'list']) == 1
    out = capsys.readouterr().out
    assert out.count('"ok": false') == 2
    assert server.calls == []


@pytest.mark.parametrize('argv', [[], ['backup'], ['--help'], ['restore'], ['restore', 'a', 'b']])
def test_usage_exits_2(config, server, capsys, monkeypatch, argv):
    code, rep = run_main(config, capsys, monkeypatch, *argv)
    assert code == 2 and rep is None
    assert server.calls == []


def test_check_reports_what_the_backup_user_may_do(config, server, capsys, monkeypatch):
    code, rep = run_main(config, capsys, monkeypatch, 'check')
    assert code == 0 and rep == {'command': 'check', 'ok': True, 'lastsave': server.lastsave,
                                 'bgsave_in_progress': '0'}
    server.denied.add('lastsave')
    code, rep = run_main(config, capsys, monkeypatch, 'check')
    assert code == 1 and 'NOPERM' in rep['error']
    server.down = True
    code, rep = run_main(config, capsys, monkeypatch, 'check')
    assert code == 1 and 'Could not connect' in rep['error']


# ---------------------------------------------------------------- restore refuses a bad file first

def test_restore_refuses_a_file_that_does_not_match_its_checksum(config, server, capsys, monkeypatch):
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert code == 0
    with open(rep['file'], 'ab') as handle:
        handle.write(b'x')
    stopped = []
    monkeypatch.setattr(rdb, 'systemctl', lambda action, service: stopped.append(action))
    code, rep = run_main(config, capsys, monkeypatch, 'restore', rep['file'])
    assert code == 1 and 'does not match' in rep['error'] and stopped == []


def test_restore_refuses_a_corrupt_file_without_a_checksum(config, server, capsys, monkeypatch, tmp_path):
    lone = tmp_path / 'dump.rdb'
    lone.write_bytes(rdb_bytes()[:-3])
    stopped = []
    monkeypatch.setattr(rdb, 'systemctl', lambda action, service: stopped.append(action))
    run_main(config, capsys, monkeypatch, 'list')         # writes the configuration
    assert rdb.main(['selfhost-redis-backup', 'restore', str(lone)]) == 1
    captured = capsys.readouterr()
    assert 'the checksum cannot be compared' in captured.err and 'redis-check-rdb' in captured.out
    assert '"ok": false' in captured.out and stopped == []


def test_verify_file_accepts_a_good_snapshot(config, server, capsys, monkeypatch):
    code, rep = run_main(config, capsys, monkeypatch, 'snapshot')
    assert rdb.verify_file(rep['file']) == rep['sha256']
