# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Installed by the selfhost.platform.restic role; do not edit on the host.
"""Run the backup sets the selfhost.platform.restic role defines.

  selfhost-restic backup SET          pre_hook, stale-lock cleanup, backup, forget --prune, post_hook
  selfhost-restic check SET [--full]  restic check --read-data-subset=n/t of the set's repository: slice n
                                      of t, rotated so that every pack is read within the set's window
                                      (a failed slice is read again until it passes); --full reads all
  selfhost-restic drill SET TARGET    restore the newest snapshot to TARGET and verify it (JSON report)
  selfhost-restic restore SET SNAPSHOT TARGET [INCLUDE...]
                                      real restore of a snapshot (latest or an id) of the set to
                                      TARGET (/ = the original paths), verified (JSON report)
  selfhost-restic restic SET ARGS...  run restic against the set's repository (operators, runbooks)
  selfhost-restic validate-config FILE

Every step's result goes to node-exporter textfile metrics, written atomically. Any failed step
(a pre_hook, the backup, a forget that hits a lock, a post_hook) makes the command exit non-zero,
so the systemd unit that ran it is failed.
"""

import calendar
import fcntl
import json
import os
import re
import subprocess
import sys
import tempfile
import time

CONFIG_DIR = os.environ.get('SELFHOST_RESTIC_CONFIG_DIR', '/etc/restic/sets')
NAME_RE = re.compile(r'^[a-z0-9][a-z0-9_-]*$')
REQUIRED = ('name', 'repository', 'env_file', 'paths', 'tags', 'retention', 'hostname', 'state_dir',
            'textfile_dir', 'cache_dir', 'rpo_seconds', 'check_schedule', 'check_full_read_days', 'restic')
RETENTION_KEYS = ('keep_last', 'keep_hourly', 'keep_daily', 'keep_weekly', 'keep_monthly', 'keep_yearly',
                  'keep_within', 'keep_tag')
# Restic's variables stay with restic; hooks get the plain service environment.
RESTIC_ENV_PREFIXES = ('RESTIC_', 'AWS_', 'B2_', 'AZURE_', 'GOOGLE_', 'OS_', 'ST_')


def log(message):
    print(message, flush=True)


class ConfigError(Exception):
    pass


def validate(config):
    missing = [key for key in REQUIRED if key not in config]
    if missing:
        raise ConfigError('missing keys: ' + ', '.join(missing))
    if not NAME_RE.match(str(config['name'])):
        raise ConfigError('name %r: lower-case letters, digits, - and _ only' % config['name'])
    if not config['paths'] or not all(isinstance(p, str) and p.startswith('/') for p in config['paths']):
        raise ConfigError('paths must be a non-empty list of absolute paths')
    retention = config['retention']
    if not isinstance(retention, dict) or not retention:
        raise ConfigError('retention must be a non-empty mapping (an empty policy would keep nothing)')
    unknown = sorted(set(retention) - set(RETENTION_KEYS))
    if unknown:
        raise ConfigError('unknown retention keys: ' + ', '.join(unknown))
    if 'check_read_data_subset' in config:
        raise ConfigError('check_read_data_subset is gone: a random subset may never read a damaged pack; '
                          'check_full_read_days gives the window in which every pack is read')
    if not isinstance(config['check_full_read_days'], int) or config['check_full_read_days'] < 1:
        raise ConfigError('check_full_read_days %r must be a whole number of days >= 1' % config['check_full_read_days'])
    if not isinstance(config['check_schedule'], str) or not config['check_schedule'].strip():
        raise ConfigError('check_schedule must be a systemd calendar expression')
    if int(config['rpo_seconds']) <= 0:
        raise ConfigError('rpo_seconds must be positive')
    services = config.get('restore_services', [])
    if not isinstance(services, list) or not all(isinstance(s, str) and s for s in services):
        raise ConfigError('restore_services must be a list of unit names')
    return config


def load(name):
    if not NAME_RE.match(name):
        raise ConfigError('bad set name %r' % name)
    with open(os.path.join(CONFIG_DIR, name + '.json')) as handle:
        return validate(json.load(handle))


def read_env_file(path):
    env = {}
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            key, _sep, value = line.partition('=')
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in '"\'':
                value = value[1:-1]
            env[key.strip()] = value
    return env


def restic_env(config):
    env = dict(os.environ)
    env.update(read_env_file(config['env_file']))
    env['RESTIC_CACHE_DIR'] = config['cache_dir']
    return env


def hook_env(config, extra=None):
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith(RESTIC_ENV_PREFIXES))
    env['SELFHOST_RESTIC_SET'] = config['name']
    env.update(extra or {})
    return env


def restic_cmd(config, *args):
    cmd = [config['restic']]
    for option in config.get('options') or []:
        cmd += ['--option', option]
    return cmd + list(args)


def run(config, args, capture=False, timeout=None):
    """Run restic; returns (rc, stdout). stderr goes to the journal as it comes."""
    log('+ restic ' + ' '.join(args))
    proc = subprocess.run(restic_cmd(config, *args), env=restic_env(config), timeout=timeout,
                          stdout=subprocess.PIPE if capture else None, universal_newlines=True, check=False)
    return proc.returncode, proc.stdout or ''


class RepoLock(object):
    """Host-local lock per repository: the backup, check and drill of sets sharing a repository
    wait for each other instead of failing on restic's exclusive lock."""

    def __init__(self, config):
        self.path = os.path.join(config['state_dir'], 'repo-%s.lock' % config['repository'])
        self.wait = int(config.get('lock_wait_seconds', 3600))
        self.handle = None

    def __enter__(self):
        self.handle = open(self.path, 'a')
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)

    def __exit__(self, *exc):
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


# ---------------------------------------------------------------- metrics and state

def _state_path(config, kind):
    return os.path.join(config['state_dir'], '%s-%s.json' % (kind, config['name']))


def read_state(config, kind):
    try:
        with open(_state_path(config, kind)) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def atomic_write(path, text, mode=0o644):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', dir=directory)
    try:
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _labels(config, **extra):
    labels = dict(set=config['name'], repository=config['repository'])
    labels.update(extra)
    return ','.join('%s="%s"' % (k, str(v).replace('\\', '\\\\').replace('"', '\\"'))
                    for k, v in sorted(labels.items()))


HELP = {
    'restic_backup_success': 'Whether the last run of the backup set succeeded (every step).',
    'restic_backup_last_run_timestamp_seconds': 'When the last run of the backup set ended.',
    'restic_backup_last_success_timestamp_seconds': 'When the backup set last succeeded completely.',
    'restic_backup_duration_seconds': 'Wall time of the last run, hooks included.',
    'restic_backup_data_added_bytes': 'Bytes the last snapshot added to the repository.',
    'restic_backup_files_new': 'New files in the last snapshot.',
    'restic_backup_files_changed': 'Changed files in the last snapshot.',
    'restic_backup_processed_bytes': 'Bytes read by the last backup.',
    'restic_backup_snapshots': 'Snapshots of the set on this host after retention.',
    'restic_backup_step_success': 'Result of each step of the last run (1 ok, 0 failed).',
    'restic_backup_rpo_seconds': 'Recovery point objective of the set: alert when the last success is older.',
    'restic_check_success': 'Whether the checks pass: 0 from a failed check until the slice it read passes again.',
    'restic_check_last_run_timestamp_seconds': 'When the last check ended.',
    'restic_check_last_success_timestamp_seconds': 'When the last passing check ended.',
    'restic_check_duration_seconds': 'Wall time of the last check.',
    'restic_check_slice': 'Slice n of --read-data-subset=n/t the last check read (0 = every pack).',
    'restic_check_slices': 'Number of slices t the packs are read in, one per check run.',
    'restic_check_first_run_timestamp_seconds': 'When the runner first checked the set (start of the coverage record).',
    'restic_check_last_full_coverage_timestamp_seconds':
        'When the last slice of a rotation passed with every slice of it passing (every pack read).',
    'restic_check_full_read_window_seconds': 'The window in which every pack must be read (check_full_read_days).',
    'restic_restore_drill_success': 'Whether the last restore drill of the set verified.',
    'restic_restore_drill_last_run_timestamp_seconds': 'When the last restore drill ended.',
    'restic_restore_drill_duration_seconds': 'Measured restore time (RTO) of the last drill.',
}


def write_metrics(config, kind, samples):
    """samples: list of (metric, extra_labels_dict, value)."""
    lines = []
    seen = set()
    for metric, extra, value in samples:
        if value is None:
            continue
        if metric not in seen:
            seen.add(metric)
            lines.append('# HELP %s %s' % (metric, HELP[metric]))
            lines.append('# TYPE %s gauge' % metric)
        lines.append('%s{%s} %s' % (metric, _labels(config, **extra), repr(float(value))))
    path = os.path.join(config['textfile_dir'], 'restic_%s_%s.prom' % (kind, config['name']))
    atomic_write(path, '\n'.join(lines) + '\n')


def save_state(config, kind, state):
    atomic_write(_state_path(config, kind), json.dumps(state, indent=2, sort_keys=True) + '\n', 0o600)


# ---------------------------------------------------------------- commands

def run_hook(config, which, extra_env=None):
    command = config.get(which)
    if not command:
        return None
    log('+ %s: %s' % (which, command))
    try:
        proc = subprocess.run(['/bin/sh', '-c', command], env=hook_env(config, extra_env),
                              timeout=int(config.get('hook_timeout_seconds', 3600)), check=False)
        ok = proc.returncode == 0
        if not ok:
            log('%s failed with exit code %d' % (which, proc.returncode))
    except subprocess.TimeoutExpired:
        log('%s timed out' % which)
        ok = False
    return ok


def unlock_stale(config):
    # Without --remove-all, restic removes only locks it knows to be stale (older than 30 minutes,
    # or left by a process of this host that no longer runs); a live lock stays.
    rc, _out = run(config, ['unlock'])
    if rc != 0:
        log('restic unlock failed with exit code %d; continuing, the next step will report the lock' % rc)
    return rc == 0


def forget_args(config):
    args = ['forget', '--prune', '--host', config['hostname'], '--tag', config['name'], '--group-by', 'host']
    for key in RETENTION_KEYS:
        value = config['retention'].get(key)
        if value in (None, '', []):
            continue
        flag = '--' + key.replace('_', '-')
        for item in (value if isinstance(value, list) else [value]):
            args += [flag, str(item)]
    return args


def cmd_backup(config):
    started = time.time()
    previous = read_state(config, 'backup')
    steps = {}
    summary = {}
    snapshots = None
    with RepoLock(config):
        steps['pre_hook'] = run_hook(config, 'pre_hook')
        if steps['pre_hook'] is not False:
            steps['unlock'] = unlock_stale(config)
            args = ['backup', '--json', '--host', config['hostname']]
            for tag in config['tags']:
                args += ['--tag', tag]
            for pattern in config.get('excludes') or []:
                args += ['--exclude', pattern]
            if config.get('one_file_system'):
                args.append('--one-file-system')
            args += list(config.get('backup_args') or [])
            args += ['--'] + list(config['paths'])
            rc, out = run(config, args, capture=True)
            for line in out.splitlines():
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message, dict) and message.get('message_type') == 'summary':
                    summary = message
            if rc == 3:
                log('restic backup: snapshot %s is incomplete, some files could not be read'
                    % summary.get('snapshot_id'))
            steps['backup'] = rc == 0
            if rc != 0:
                log('restic backup failed with exit code %d' % rc)
            else:
                log('snapshot %s: %s new files, %s bytes added' % (
                    summary.get('snapshot_id'), summary.get('files_new'), summary.get('data_added')))
                rc, _out = run(config, forget_args(config))
                steps['forget'] = rc == 0
                if rc != 0:
                    # The failure the unit must not swallow: a forget that hits a lock (or anything
                    # else) leaves snapshots piling up; the service fails and the metric shows it.
                    log('restic forget --prune failed with exit code %d' % rc)
            rc, out = run(config, ['snapshots', '--json', '--host', config['hostname'], '--tag', config['name']],
                          capture=True)
            if rc == 0:
                try:
                    snapshots = len(json.loads(out or '[]') or [])
                except ValueError:
                    snapshots = None
        status = 'success' if all(v is not False for v in steps.values()) else 'failure'
        steps['post_hook'] = run_hook(config, 'post_hook', {'SELFHOST_RESTIC_STATUS': status})
    ended = time.time()
    ok = all(v is not False for v in steps.values())
    state = dict(previous)
    state.update(last_run=ended, last_ok=ok, duration=ended - started, steps=steps,
                 snapshot_id=summary.get('snapshot_id'), data_added=summary.get('data_added'),
                 files_new=summary.get('files_new'), files_changed=summary.get('files_changed'),
                 processed_bytes=summary.get('total_bytes_processed'), snapshots=snapshots)
    if ok:
        state['last_success'] = ended
    save_state(config, 'backup', state)
    samples = [
        ('restic_backup_success', {}, 1 if ok else 0),
        ('restic_backup_last_run_timestamp_seconds', {}, ended),
        ('restic_backup_last_success_timestamp_seconds', {}, state.get('last_success')),
        ('restic_backup_duration_seconds', {}, ended - started),
        ('restic_backup_data_added_bytes', {}, state.get('data_added')),
        ('restic_backup_files_new', {}, state.get('files_new')),
        ('restic_backup_files_changed', {}, state.get('files_changed')),
        ('restic_backup_processed_bytes', {}, state.get('processed_bytes')),
        ('restic_backup_snapshots', {}, snapshots),
        ('restic_backup_rpo_seconds', {}, config['rpo_seconds']),
    ]
    samples += [('restic_backup_step_success', {'step': step}, 1 if value else 0)
                for step, value in sorted(steps.items()) if value is not None]
    write_metrics(config, 'backup', samples)
    log('backup set %s: %s in %.1f s' % (config['name'], 'ok' if ok else 'FAILED', ended - started))
    return 0 if ok else 1


# ---------------------------------------------------------------- check rotation
#
# A check reads one slice of the pack files (restic check --read-data-subset=n/t: the packs whose
# ID's first byte modulo t is n-1). The t slices are read in turn, one per run of the check timer,
# so t runs read every pack; t is as large as the set's window allows: the window divided by the
# longest gap between two runs of the check schedule. A failed slice is read again by the next
# run (not the next slice), so restic_check_success stays 0 until the damaged part reads clean.

DAY = 86400
ELAPSE_RE = re.compile(r'^\s*(?:Next elapse|Iter\. #[0-9]+): (.+)$')
IN_UTC_RE = re.compile(r'^\s*\(in UTC\): (.+)$')
CALENDAR_ITERATIONS = 100
# restic refuses --read-data-subset=n/t with t above 256 (one slice per value of a pack ID's
# first byte): frequent checks over a long window read more than they need, never less.
MAX_SLICES = 256


def parse_elapses(text):
    """Epoch seconds of the elapses `systemd-analyze calendar --iterations=N` prints (UTC lines win)."""
    found = []
    for line in text.splitlines():
        match = ELAPSE_RE.match(line)
        if match:
            found.append(match.group(1).strip())
            continue
        match = IN_UTC_RE.match(line)
        if match and found:
            found[-1] = match.group(1).strip()
    epochs = []
    for value in found:
        if not value.endswith(' UTC'):
            raise ValueError('elapse %r is not in UTC' % value)
        stamp = time.strptime(value[:-4].split(' ', 1)[1], '%Y-%m-%d %H:%M:%S')
        epochs.append(calendar.timegm(stamp))
    return epochs


def longest_gap(epochs):
    gaps = [b - a for a, b in zip(epochs, epochs[1:])]
    if not gaps or min(gaps) <= 0:
        raise ValueError('the schedule does not repeat (elapses %r)' % epochs[:3])
    return max(gaps)


def schedule_gap_seconds(schedule, runner=subprocess.run):
    """Longest time between two runs of an OnCalendar= expression, as systemd computes it."""
    proc = runner(['systemd-analyze', 'calendar', '--iterations=%d' % CALENDAR_ITERATIONS, schedule],
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False,
                  env=dict(os.environ, LC_ALL='C'))
    if proc.returncode != 0:
        raise ValueError('systemd-analyze calendar %r failed: %s' % (schedule, (proc.stderr or '').strip()))
    return longest_gap(parse_elapses(proc.stdout))


def slices_for(window_days, gap_seconds):
    """Number of slices t: t runs, at most gap_seconds apart, fit in the window (1-256)."""
    return min(MAX_SLICES, max(1, int(window_days * DAY // gap_seconds)))


def plan_check(state, slices, full=False):
    """(n, t) to read now: n = 0 is a full read. A pending failure is read again first, with the
    slicing it was found with; a changed t starts a new cycle at slice 1."""
    if full:
        return 0, slices
    failed = state.get('failed_slice')
    if failed is not None:
        return failed, state.get('slices') or slices
    if 'slices' not in state and state.get('last_ok') is False:
        # Failed under a runner that did not record which part: read everything.
        return 0, slices
    if state.get('slices') != slices:
        return 1, slices
    return state.get('next_slice', 1), slices


def record_check(state, n, t, ok, now):
    """The state after reading slice n of t (0 = all) with result ok."""
    new = dict(state)
    new.setdefault('first_run', now)
    new.update(last_run=now, last_ok=ok, last_slice=n)
    if new.get('slices') != t:
        new.update(slices=t, next_slice=1, cycle_clean=True)
    if not ok:
        new.update(failed_slice=n, cycle_clean=False)
        return new
    new.update(last_success=now, failed_slice=None)
    if n == 0:
        # Every pack read: a complete coverage by itself; the rotation starts over.
        new.update(last_full_coverage=now, next_slice=1, cycle_clean=True)
    elif n >= t:
        # The last slice: the cycle covered the repository if none of its runs failed.
        if new.get('cycle_clean', True):
            new['last_full_coverage'] = now
        new.update(next_slice=1, cycle_clean=True)
    else:
        new['next_slice'] = n + 1
    return new


def check_samples(config, state, duration):
    return [
        ('restic_check_success', {}, 1 if state.get('failed_slice') is None else 0),
        ('restic_check_last_run_timestamp_seconds', {}, state.get('last_run')),
        ('restic_check_last_success_timestamp_seconds', {}, state.get('last_success')),
        ('restic_check_duration_seconds', {}, duration),
        ('restic_check_slice', {}, state.get('last_slice')),
        ('restic_check_slices', {}, state.get('slices')),
        ('restic_check_first_run_timestamp_seconds', {}, state.get('first_run')),
        ('restic_check_last_full_coverage_timestamp_seconds', {}, state.get('last_full_coverage')),
        ('restic_check_full_read_window_seconds', {}, int(config['check_full_read_days']) * DAY),
    ]


def check_slices(config):
    gap = schedule_gap_seconds(config['check_schedule'])
    return slices_for(int(config['check_full_read_days']), gap), gap


def describe_plan(config):
    """The rotation of a set, refused when its window is shorter than the gap between two checks."""
    slices, gap = check_slices(config)
    if int(config['check_full_read_days']) * DAY < gap:
        raise ConfigError('check_full_read_days %s is shorter than the longest gap between two runs of '
                          'check_schedule %r (%.1f days): every pack cannot be read within it'
                          % (config['check_full_read_days'], config['check_schedule'], gap / float(DAY)))
    return 'each check reads 1/%d of the packs, all within %s days' % (slices, config['check_full_read_days'])


def cmd_check(config, full=False):
    started = time.time()
    state = read_state(config, 'check')
    try:
        slices, _gap = check_slices(config)
    except (OSError, ValueError) as err:
        # Cannot plan: read everything rather than guess a slice.
        log('cannot compute the slices (%s): reading every pack' % err)
        slices, full = state.get('slices') or 1, True
    n, t = plan_check(state, slices, full)
    subset = '--read-data' if n == 0 else '--read-data-subset=%d/%d' % (n, t)
    with RepoLock(config):
        unlock_stale(config)
        rc, _out = run(config, ['check', subset])
    ended = time.time()
    ok = rc == 0
    state = record_check(state, n, t, ok, ended)
    state.update(duration=ended - started, rc=rc)
    save_state(config, 'check', state)
    write_metrics(config, 'check', check_samples(config, state, ended - started))
    what = 'every pack' if n == 0 else 'slice %d/%d' % (n, t)
    if ok and state.get('last_full_coverage') == ended:
        what += ', completing a full read of the repository'
    log('check of %s (set %s), %s: %s' % (config['repository'], config['name'], what, 'ok' if ok else 'FAILED'))
    return 0 if ok else 1


def _walk(root, paths=None):
    """Absolute snapshot path -> (type, size) of a restored tree under root.

    Without paths the whole of root is walked (a scratch target); with paths only those
    snapshot paths and their parents are (an in-place restore: root is /).
    """
    found = {}

    def add(path):
        rel = '/' + os.path.relpath(path, root) if os.path.relpath(path, root) != '.' else '/'
        if os.path.islink(path):
            found[rel] = ('symlink', None)
        elif os.path.isdir(path):
            found[rel] = ('dir', None)
        elif os.path.isfile(path):
            found[rel] = ('file', os.path.getsize(path))

    starts = [root] if paths is None else [os.path.join(root, p.lstrip('/')) for p in paths]
    for start in starts:
        if paths is not None:
            parent = start
            while os.path.lexists(parent) and parent.rstrip('/') != root.rstrip('/'):
                add(parent)
                parent = os.path.dirname(parent)
            if not os.path.isdir(start) or os.path.islink(start):
                continue
        for directory, dirs, files in os.walk(start, followlinks=False):
            for name in dirs + files:
                add(os.path.join(directory, name))
    return found


def _under(path, prefixes):
    return any(path == p.rstrip('/') or path.startswith(p.rstrip('/') + '/') for p in prefixes)


def snapshots_of_set(config):
    rc, out = run(config, ['snapshots', '--json', '--host', config['hostname'], '--tag', config['name']],
                  capture=True)
    if rc != 0:
        return rc, []
    try:
        return rc, sorted(json.loads(out or '[]') or [], key=lambda s: s['time'])
    except ValueError:
        return 1, []


def listing(config, snap):
    """The snapshot's own listing (restic ls --json): path -> (type, size of a file)."""
    rc, out = run(config, ['ls', '--json', snap['id']], capture=True)
    expected = {}
    for line in out.splitlines():
        try:
            node = json.loads(line)
        except ValueError:
            continue
        if node.get('struct_type') == 'node':
            expected[node['path']] = (node['type'], node.get('size') if node['type'] == 'file' else None)
    return rc, expected


def compare_with_listing(config, snap, target, in_place, includes=None, known=None):
    """Compare a restored tree with the snapshot's own listing.

    Returns (problems, files, bytes, extra): extra are paths on disk under the snapshot's
    paths that the snapshot does not hold (excluded, or created after it; left alone).
    """
    rc, expected = known if known is not None else listing(config, snap)
    problems = [] if rc == 0 else ['restic ls failed (exit code %d)' % rc]
    # restic ls lists the parents of the backed-up paths too; compare what was backed up.
    scope = list(includes or []) or list(snap['paths'])
    wanted = dict((path, item) for path, item in expected.items()
                  if _under(path, snap['paths']) and _under(path, scope))
    roots = [p for p in scope if _under(p, snap['paths'])] if includes else list(snap['paths'])
    restored = _walk(target, roots if in_place else None)
    missing = sorted(p for p in wanted if p not in restored)
    differ = sorted(p for p in wanted if p in restored and restored[p] != wanted[p])
    extra = sorted(p for p in restored if _under(p, roots) and p not in expected)
    if missing:
        problems.append('%d paths missing after restore, e.g. %s' % (len(missing), missing[:5]))
    if differ:
        problems.append('%d paths differ in type or size, e.g. %s' % (len(differ), differ[:5]))
    files = [item for item in wanted.values() if item[0] == 'file']
    return problems, len(files), sum(item[1] or 0 for item in files), extra


def cmd_drill(config, target):
    """Restore the newest snapshot of the set into target, verify, report JSON (RTO included)."""
    report = dict(set=config['name'], repository=config['repository'], target=target, ok=False)
    if os.path.exists(target) and os.listdir(target):
        report['error'] = 'target %s is not empty' % target
        print(json.dumps(report))
        return 1
    os.makedirs(target, mode=0o700, exist_ok=True)
    started = time.monotonic()
    problems = []
    with RepoLock(config):
        rc, snaps = snapshots_of_set(config)
        if not snaps:
            problems.append('no snapshot of the set found (restic exit code %d)' % rc)
        else:
            snap = snaps[-1]
            report.update(snapshot=snap['short_id'], snapshot_time=snap['time'])
            # --verify reads every restored file back and compares it with the repository's hashes.
            rc, _out = run(config, ['restore', snap['id'], '--target', target, '--verify'])
            if rc != 0:
                problems.append('restic restore --verify failed (exit code %d)' % rc)
            found, files, _size, _extra = compare_with_listing(config, snap, target, in_place=False)
            problems += found
            report['files_verified'] = files
            rc, _out = run(config, ['check'])
            if rc != 0:
                problems.append('restic check failed (exit code %d)' % rc)
    report['rto_seconds'] = round(time.monotonic() - started, 3)
    report['ok'] = not problems
    report['problems'] = problems
    write_metrics(config, 'drill', [
        ('restic_restore_drill_success', {}, 1 if report['ok'] else 0),
        ('restic_restore_drill_last_run_timestamp_seconds', {}, time.time()),
        ('restic_restore_drill_duration_seconds', {}, report['rto_seconds']),
    ])
    print('DRILL-REPORT ' + json.dumps(report, sort_keys=True))
    return 0 if report['ok'] else 1


def cmd_restore(config, wanted, target, includes):
    """Real restore of one snapshot of the set (latest or an id) to target; / = original paths.

    Restored files are read back against the repository's hashes (restore --verify) and the
    tree is compared with the snapshot's listing. Files under the set's paths that the
    snapshot does not hold (created after it, or excluded from it) are reported, not deleted.
    """
    in_place = os.path.normpath(target) == '/'
    report = dict(set=config['name'], repository=config['repository'], target=target, in_place=in_place,
                  includes=includes, ok=False, problems=[])
    problems = report['problems']
    if not target.startswith('/'):
        problems.append('target %s is not an absolute path' % target)
    elif not in_place and os.path.exists(target) and (not os.path.isdir(target) or os.listdir(target)):
        problems.append('target %s exists and is not an empty directory' % target)
    bad = [inc for inc in includes if not inc.startswith('/')]
    if bad:
        problems.append('includes must be absolute paths: %s' % bad)
    if problems:
        print('RESTORE-REPORT ' + json.dumps(report, sort_keys=True))
        return 1
    if not in_place:
        os.makedirs(target, mode=0o700, exist_ok=True)
    started = time.monotonic()
    with RepoLock(config):
        rc, snaps = snapshots_of_set(config)
        if wanted == 'latest':
            chosen = snaps[-1:]
        else:
            chosen = [s for s in snaps if s['id'].startswith(wanted) or s.get('short_id') == wanted]
        if len(chosen) != 1:
            problems.append('snapshot %s of set %s (host %s) %s (restic exit code %d)' % (
                wanted, config['name'], config['hostname'],
                'is ambiguous' if chosen else 'not found', rc))
        else:
            snap = chosen[0]
            report.update(snapshot=snap['short_id'], snapshot_id=snap['id'], snapshot_time=snap['time'],
                          paths=snap['paths'])
            known = listing(config, snap)
            if in_place:
                # restic before 0.17 cannot write a symlink over an existing path ("file
                # exists"): remove what stands where the snapshot has a symlink.
                for path, (kind, _size) in sorted(known[1].items()):
                    on_disk = os.path.join(target, path.lstrip('/'))
                    if (kind == 'symlink' and _under(path, snap['paths']) and _under(path, includes or [path])
                            and (os.path.islink(on_disk) or os.path.isfile(on_disk))):
                        os.unlink(on_disk)
            args = ['restore', snap['id'], '--target', target, '--verify']
            for inc in includes:
                args += ['--include', inc]
            rc, _out = run(config, args)
            if rc != 0:
                problems.append('restic restore --verify failed (exit code %d)' % rc)
            found, files, size, extra = compare_with_listing(config, snap, target, in_place, includes, known)
            problems += found
            report.update(files_restored=files, bytes_restored=size, extra_paths=len(extra),
                          extra_examples=extra[:10])
    report['duration_seconds'] = round(time.monotonic() - started, 3)
    report['ok'] = not problems
    print('RESTORE-REPORT ' + json.dumps(report, sort_keys=True))
    return 0 if report['ok'] else 1


def main(argv):
    if len(argv) < 3 or argv[1] in ('-h', '--help'):
        print(__doc__)
        return 2
    command = argv[1]
    try:
        if command == 'validate-config':
            with open(argv[2]) as handle:
                config = validate(json.load(handle))
            print('%s: ok, %s' % (argv[2], describe_plan(config)))
            return 0
        config = load(argv[2])
    except (ConfigError, OSError, ValueError) as err:
        print('selfhost-restic: %s' % err, file=sys.stderr)
        return 2
    if command == 'backup':
        return cmd_backup(config)
    if command == 'check' and argv[3:] in ([], ['--full']):
        return cmd_check(config, full=argv[3:] == ['--full'])
    if command == 'drill' and len(argv) == 4:
        return cmd_drill(config, argv[3])
    if command == 'restore' and len(argv) >= 5:
        return cmd_restore(config, argv[3], argv[4], argv[5:])
    if command == 'restic':
        os.execvpe(config['restic'], restic_cmd(config, *argv[3:]), restic_env(config))
    print(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
