# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Installed by the selfhost.platform.redis role (tasks_from: backup); do not edit on the host.
"""Consistent Redis RDB snapshots for backups, and their restore.

  selfhost-redis-backup snapshot      BGSAVE, wait until it has finished (LASTSAVE moved on,
                                      rdb_bgsave_in_progress 0, status ok), copy dump.rdb to the
                                      backup directory as dump-<UTC save time>.rdb with a .sha256,
                                      check it with redis-check-rdb, keep the newest N
  selfhost-redis-backup check         the backup user may PING, LASTSAVE and INFO
  selfhost-redis-backup list          the snapshots in the backup directory, oldest first
  selfhost-redis-backup restore FILE  replace the data set with FILE (checksum and redis-check-rdb
                                      first); stops Redis, keeps the old files aside, rebuilds the
                                      AOF from the RDB, starts Redis, compares the key count

The configuration (connection, backup user, directories) is a root-only JSON file written by the
role (SELFHOST_REDIS_BACKUP_CONFIG, default /etc/redis/selfhost-backup.json). Every command prints
one JSON report line prefixed with REDIS-BACKUP-REPORT and exits non-zero on failure.
"""

import hashlib
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time

CONFIG = os.environ.get('SELFHOST_REDIS_BACKUP_CONFIG', '/etc/redis/selfhost-backup.json')
SNAPSHOT_RE = re.compile(r'^dump-[0-9]{8}T[0-9]{6}Z\.rdb$')
# Names the redis role writes into redis.conf (dbfilename, appenddirname, appendfilename).
DBFILENAME = 'dump.rdb'
AOF_DIRNAME = 'appendonlydir'
AOF_FILENAME = 'appendonly.aof'


class BackupError(Exception):
    pass


def log(message):
    print(message, file=sys.stderr, flush=True)


def report(command, ok, **fields):
    fields.update(command=command, ok=ok)
    print('REDIS-BACKUP-REPORT ' + json.dumps(fields, sort_keys=True), flush=True)
    return 0 if ok else 1


def load_config():
    with open(CONFIG) as handle:
        config = json.load(handle)
    for key in ('host', 'port', 'user', 'password', 'redis_dir', 'backup_dir', 'keep', 'service',
                'appendonly', 'timeout_seconds'):
        if key not in config:
            raise BackupError('%s: missing key %s' % (CONFIG, key))
    return config


def cli(config, *args, **kwargs):
    """Run redis-cli as the backup user (password from the environment, never argv).

    socket=PATH talks to a private server on a unix socket instead (no authentication);
    check=False returns the answer even when it is an error.
    """
    socket = kwargs.get('socket')
    check = kwargs.get('check', True)
    env = dict(os.environ)
    if socket:
        cmd = ['redis-cli', '-s', socket]
        env.pop('REDISCLI_AUTH', None)
    else:
        cmd = ['redis-cli', '-h', config['host'], '-p', str(config['port']), '--user', config['user'],
               '--no-auth-warning']
        env['REDISCLI_AUTH'] = config['password']
    proc = subprocess.run(cmd + [str(a) for a in args], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=60, check=False)
    out = proc.stdout.strip()
    if check and (proc.returncode != 0 or out.startswith(('ERR', 'NOPERM', 'NOAUTH', 'WRONGPASS'))
                  or 'Could not connect' in proc.stderr):
        raise BackupError('redis-cli %s: %s %s' % (args[0], out, proc.stderr.strip()))
    return out


def info(config, section, socket=None):
    values = {}
    for line in cli(config, 'INFO', section, socket=socket).splitlines():
        key, sep, value = line.strip().partition(':')
        if sep:
            values[key] = value
    return values


def key_count(config, socket=None):
    """Keys over all databases, from INFO keyspace (db0:keys=3,expires=0,...)."""
    total = 0
    for key, value in info(config, 'keyspace', socket).items():
        if re.match(r'^db[0-9]+$', key):
            fields = dict(part.split('=', 1) for part in value.split(','))
            total += int(fields.get('keys', 0))
    return total


def sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def check_rdb(path):
    proc = subprocess.run(['redis-check-rdb', path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    if proc.returncode != 0 or 'RDB looks OK' not in proc.stdout:
        raise BackupError('redis-check-rdb %s failed: %s' % (path, proc.stdout.strip()[-500:]))


def wait_for(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise BackupError('timed out after %d s waiting for %s' % (timeout, what))
        time.sleep(0.2)


def snapshots(config):
    return sorted(name for name in os.listdir(config['backup_dir']) if SNAPSHOT_RE.match(name))


# ---------------------------------------------------------------- snapshot

def bgsave(config):
    """Start a background save that begins after this call; returns LASTSAVE before it, and
    whether the save is running already (started, not scheduled behind another child)."""
    timeout = int(config['timeout_seconds'])
    while True:
        before = int(cli(config, 'LASTSAVE'))
        # LASTSAVE has a one-second resolution: a save ending in the same second as the
        # previous one would look like no save at all.
        if int(time.time()) <= before:
            time.sleep(1.1)
            continue
        answer = cli(config, 'BGSAVE', 'SCHEDULE', check=False)
        if answer.startswith(('Background saving started', 'Background saving scheduled')):
            return before, answer.startswith('Background saving started')
        if 'already in progress' in answer:
            # Someone else's save: ours must start after it, or it might miss recent writes.
            wait_for('the running background save',
                     lambda: info(config, 'persistence').get('rdb_bgsave_in_progress') == '0', timeout)
            continue
        raise BackupError('BGSAVE refused: %s' % answer)


def cmd_snapshot(config):
    started = time.monotonic()
    timeout = int(config['timeout_seconds'])
    before, running = bgsave(config)

    saved = {'running': running}

    def finished():
        persistence = info(config, 'persistence')
        lastsave = int(cli(config, 'LASTSAVE'))
        if lastsave > before and persistence.get('rdb_bgsave_in_progress') == '0':
            saved['at'] = lastsave
            return persistence
        if persistence.get('rdb_bgsave_in_progress') != '0':
            saved['running'] = True
        elif saved['running'] and persistence.get('rdb_last_bgsave_status') == 'err':
            # LASTSAVE moves on only after a successful save: ours has ended and failed.
            return persistence
        return None

    persistence = wait_for('BGSAVE to finish', finished, timeout)
    if persistence.get('rdb_last_bgsave_status') != 'ok':
        raise BackupError('the background save failed (rdb_last_bgsave_status %s); see the Redis log'
                          % persistence.get('rdb_last_bgsave_status'))
    keys = key_count(config)
    # Named after the save's own time: every snapshot waits for a LASTSAVE newer than the last
    # one, so names never collide, where the wall clock after copying could repeat a second.
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(saved['at']))
    name = 'dump-%s.rdb' % stamp
    target = os.path.join(config['backup_dir'], name)
    # Redis replaces dump.rdb by a rename, so this copy is one complete snapshot (ours, or a
    # newer automatic one).
    fd, tmp = tempfile.mkstemp(prefix='.' + name + '.', dir=config['backup_dir'])
    try:
        with os.fdopen(fd, 'wb') as out, open(os.path.join(config['redis_dir'], DBFILENAME), 'rb') as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        check_rdb(tmp)
        digest = sha256(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    with open(target + '.sha256', 'w') as handle:
        handle.write('%s  %s\n' % (digest, name))
    os.chmod(target + '.sha256', 0o600)
    removed = []
    for old in snapshots(config)[:-int(config['keep'])]:
        for path in (old, old + '.sha256'):
            if os.path.exists(os.path.join(config['backup_dir'], path)):
                os.unlink(os.path.join(config['backup_dir'], path))
        removed.append(old)
    write_metric(config, time.time(), time.monotonic() - started)
    return report('snapshot', True, file=target, sha256=digest, bytes=os.path.getsize(target), keys=keys,
                  lastsave=int(cli(config, 'LASTSAVE')), removed=removed,
                  duration_seconds=round(time.monotonic() - started, 3))


def write_metric(config, when, duration):
    directory = config.get('textfile_dir')
    if not directory or not os.path.isdir(directory):
        return
    text = ('# HELP selfhost_redis_backup_last_success_timestamp_seconds When the last RDB snapshot was copied.\n'
            '# TYPE selfhost_redis_backup_last_success_timestamp_seconds gauge\n'
            'selfhost_redis_backup_last_success_timestamp_seconds %r\n'
            '# HELP selfhost_redis_backup_duration_seconds Wall time of the last RDB snapshot.\n'
            '# TYPE selfhost_redis_backup_duration_seconds gauge\n'
            'selfhost_redis_backup_duration_seconds %r\n') % (float(when), float(duration))
    fd, tmp = tempfile.mkstemp(prefix='.selfhost_redis_backup.prom.', dir=directory)
    with os.fdopen(fd, 'w') as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, os.path.join(directory, 'selfhost_redis_backup.prom'))


# ---------------------------------------------------------------- restore

def verify_file(path):
    """Checksum (when the .sha256 beside it exists) and redis-check-rdb; returns the digest."""
    digest = sha256(path)
    sums = path + '.sha256'
    if os.path.exists(sums):
        with open(sums) as handle:
            expected = handle.read().split()[0]
        if expected != digest:
            raise BackupError('%s: sha256 %s does not match %s (%s)' % (path, digest, sums, expected))
    else:
        log('no %s beside the file: the checksum cannot be compared' % sums)
    check_rdb(path)
    return digest


def systemctl(action, service):
    subprocess.run(['systemctl', action, service], check=True)


def rebuild_aof(config, redis_user):
    """Load dump.rdb into a private redis-server (unix socket only) and let it write the AOF.

    With appendonly on, Redis starts from the AOF and ignores dump.rdb, so the AOF must be
    rebuilt from the restored RDB before the service starts: CONFIG SET appendonly yes makes
    the server rewrite the AOF from the data it loaded.
    """
    rundir = tempfile.mkdtemp(prefix='selfhost-redis-restore.')
    os.chown(rundir, redis_user.pw_uid, redis_user.pw_gid)
    socket = os.path.join(rundir, 'redis.sock')
    cmd = ['runuser', '-u', redis_user.pw_name, '--', 'redis-server', '--port', '0', '--unixsocket', socket,
           '--unixsocketperm', '700', '--dir', config['redis_dir'], '--dbfilename', DBFILENAME,
           '--appendonly', 'no', '--appenddirname', AOF_DIRNAME, '--appendfilename', AOF_FILENAME,
           '--save', '', '--daemonize', 'no', '--logfile', '']
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    timeout = int(config['timeout_seconds'])
    try:
        wait_for('the private redis-server to load the RDB',
                 lambda: server.poll() is None and os.path.exists(socket)
                 and cli(config, 'PING', socket=socket, check=False) == 'PONG', timeout)
        loaded = key_count(config, socket)
        if config['appendonly']:
            cli(config, 'CONFIG', 'SET', 'appendonly', 'yes', socket=socket)

            def rewritten():
                persistence = info(config, 'persistence', socket)
                return (persistence.get('aof_rewrite_in_progress') == '0'
                        and persistence.get('aof_rewrite_scheduled') == '0'
                        and persistence.get('aof_enabled') == '1')

            wait_for('the AOF rewrite', rewritten, timeout)
            status = info(config, 'persistence', socket).get('aof_last_bgrewrite_status')
            if status != 'ok':
                raise BackupError('rewriting the AOF from the RDB failed (%s)' % status)
        cli(config, 'SHUTDOWN', 'NOSAVE', socket=socket, check=False)
        server.wait(timeout)
        return loaded
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        shutil.rmtree(rundir, ignore_errors=True)


def cmd_restore(config, source):
    started = time.monotonic()
    source = os.path.abspath(source)
    digest = verify_file(source)
    redis_user = pwd.getpwnam(config.get('redis_user', 'redis'))
    data_dir = config['redis_dir']
    aside = os.path.join(data_dir, 'pre-restore-' + time.strftime('%Y%m%dT%H%M%SZ', time.gmtime()))
    moved = []
    log('stopping %s' % config['service'])
    systemctl('stop', config['service'])
    try:
        os.mkdir(aside, 0o750)
        os.chown(aside, redis_user.pw_uid, redis_user.pw_gid)
        for name in (DBFILENAME, AOF_DIRNAME, AOF_FILENAME):
            if os.path.lexists(os.path.join(data_dir, name)):
                os.rename(os.path.join(data_dir, name), os.path.join(aside, name))
                moved.append(name)
        shutil.copyfile(source, os.path.join(data_dir, DBFILENAME))
        os.chown(os.path.join(data_dir, DBFILENAME), redis_user.pw_uid, redis_user.pw_gid)
        os.chmod(os.path.join(data_dir, DBFILENAME), 0o660)
        loaded = rebuild_aof(config, redis_user)
    except Exception:
        # Put the previous data back and start Redis as it was.
        log('restore failed: putting the previous data back from %s' % aside)
        for name in (DBFILENAME, AOF_DIRNAME, AOF_FILENAME):
            path = os.path.join(data_dir, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)
        for name in moved:
            os.rename(os.path.join(aside, name), os.path.join(data_dir, name))
        systemctl('start', config['service'])
        raise
    log('starting %s' % config['service'])
    systemctl('start', config['service'])
    timeout = int(config['timeout_seconds'])
    wait_for('Redis to answer', lambda: cli(config, 'PING', check=False) == 'PONG', timeout)
    wait_for('Redis to finish loading', lambda: info(config, 'persistence').get('loading') == '0', timeout)
    keys = key_count(config)
    return report('restore', keys == loaded, file=source, sha256=digest, keys_in_file=loaded, keys=keys,
                  previous_data=aside, duration_seconds=round(time.monotonic() - started, 3),
                  error=None if keys == loaded else (
                      'Redis holds %d keys after the start, the file %d (clients that write or consume '
                      'since the start change the count: stop the Celery workers and beat before a restore)'
                      % (keys, loaded)))


def main(argv):
    if len(argv) < 2 or argv[1] in ('-h', '--help') or argv[1] not in ('snapshot', 'check', 'list', 'restore'):
        print(__doc__)
        return 2
    command = argv[1]
    try:
        config = load_config()
        if command == 'snapshot':
            return cmd_snapshot(config)
        if command == 'check':
            return report('check', cli(config, 'PING') == 'PONG', lastsave=int(cli(config, 'LASTSAVE')),
                          bgsave_in_progress=info(config, 'persistence').get('rdb_bgsave_in_progress'))
        if command == 'list':
            return report('list', True, snapshots=[os.path.join(config['backup_dir'], n) for n in snapshots(config)])
        if len(argv) != 3:
            print(__doc__)
            return 2
        return cmd_restore(config, argv[2])
    except (BackupError, OSError, ValueError, subprocess.SubprocessError) as err:
        return report(command, False, error=str(err))


if __name__ == '__main__':
    sys.exit(main(sys.argv))
