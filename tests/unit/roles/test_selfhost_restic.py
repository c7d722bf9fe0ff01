# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The check rotation of roles/restic/files/selfhost_restic.py: which slice a run reads, when a
failure clears, when the repository counts as fully read. No restic binary: the runner's restic
and systemd-analyze calls are replaced by fakes."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib.util
import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_SPEC = importlib.util.spec_from_file_location('selfhost_restic', os.path.join(ROOT, 'roles/restic/files/selfhost_restic.py'))
runner = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(runner)

WEEKLY = """  Original form: Sun *-*-* 04:30:00
Normalized form: Sun *-*-* 04:30:00
    Next elapse: Sun 2026-12-06 04:30:00 UTC
       From now: 4 days left
       Iter. #2: Sun 2026-12-13 04:30:00 UTC
       From now: 1 week 4 days left
       Iter. #3: Sun 2026-12-20 04:30:00 UTC
       From now: 2 weeks 4 days left
"""
# A local time zone: the (in UTC) lines are the ones read.
LOCAL = """  Original form: Mon,Thu 04:00
Normalized form: Mon,Thu *-*-* 04:00:00
    Next elapse: Thu 2026-12-03 04:00:00 CET
       (in UTC): Thu 2026-12-03 03:00:00 UTC
       From now: 1 day 3h left
       Iter. #2: Mon 2026-12-07 04:00:00 CET
       (in UTC): Mon 2026-12-07 03:00:00 UTC
       From now: 5 days left
       Iter. #3: Thu 2026-12-10 04:00:00 CET
       (in UTC): Thu 2026-12-10 03:00:00 UTC
       From now: 1 week 1 day left
"""


def test_elapses_are_read_in_utc():
    assert runner.parse_elapses(WEEKLY) == [1796531400, 1797136200, 1797741000]
    local = runner.parse_elapses(LOCAL)
    assert [b - a for a, b in zip(local, local[1:])] == [4 * 86400, 3 * 86400]


def test_the_longest_gap_decides_the_slices():
    # Mon,Thu: gaps of 4 and 3 days; a 28-day window fits 7 runs 4 days apart.
    assert runner.longest_gap(runner.parse_elapses(LOCAL)) == 4 * 86400
    assert runner.slices_for(28, 4 * 86400) == 7
    assert runner.slices_for(56, 7 * 86400) == 8
    assert runner.slices_for(30, 7 * 86400) == 4   # 4 weekly runs fit in 30 days, 5 do not
    assert runner.slices_for(3, 7 * 86400) == 1    # never fewer than one slice (a full read)
    assert runner.slices_for(56, 3600) == 256       # hourly checks: restic's largest t


def test_schedule_gap_from_systemd_analyze():
    calls = []

    def fake(argv, **kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, WEEKLY, '')

    assert runner.schedule_gap_seconds('Sun *-*-* 04:30:00', runner=fake) == 7 * 86400
    assert calls[0][:3] == ['systemd-analyze', 'calendar', '--iterations=100']
    assert calls[0][3] == 'Sun *-*-* 04:30:00'


def test_a_bad_schedule_is_an_error():
    def fake(argv, **kwargs):
        return subprocess.CompletedProcess(argv, 1, '', 'Failed to parse calendar specification')

    with pytest.raises(ValueError, match='Failed to parse'):
        runner.schedule_gap_seconds('nonsense', runner=fake)
    with pytest.raises(ValueError, match='does not repeat'):
        runner.longest_gap([1000])


def rotate(state, t, results, start=1000):
    """Run the checks: results is a list of booleans (or a function of the slice), one per run."""
    seen = []
    now = start
    for result in results:
        n, tt = runner.plan_check(state, t)
        ok = result(n) if callable(result) else result
        state = runner.record_check(state, n, tt, ok, now)
        seen.append((n, tt, ok))
        now += 100
    return state, seen


def test_slices_rotate_and_a_clean_cycle_is_a_full_coverage():
    state, seen = rotate({}, 4, [True] * 4)
    assert [n for n, _t, _ok in seen] == [1, 2, 3, 4]
    assert all(t == 4 for _n, t, _ok in seen)
    assert state['last_full_coverage'] == 1300      # when slice 4/4 passed
    assert state['first_run'] == 1000
    assert state['failed_slice'] is None and state['next_slice'] == 1
    state, seen = rotate(state, 4, [True] * 2, start=2000)
    assert [n for n, _t, _ok in seen] == [1, 2]
    assert state['last_full_coverage'] == 1300      # the new cycle is not complete yet


def test_no_coverage_before_the_first_cycle_ends():
    state, _seen = rotate({}, 4, [True] * 3)
    assert 'last_full_coverage' not in state


def test_a_failed_slice_is_read_again_and_stays_failed():
    # Slice 2 holds a damaged pack: the check of slice 2 fails until it is repaired.
    damaged = {'repaired': False}

    def slice_ok(n):
        return n != 2 or damaged['repaired']

    state, seen = rotate({}, 4, [slice_ok] * 5)
    # 1 passes, 2 fails, then 2 again and again: never slice 3, so no other slice's pass clears it.
    assert [(n, ok) for n, _t, ok in seen] == [(1, True), (2, False), (2, False), (2, False), (2, False)]
    assert state['failed_slice'] == 2
    assert runner.check_samples({'check_full_read_days': 28}, state, 1.0)[0] == ('restic_check_success', {}, 0)
    damaged['repaired'] = True
    state, seen = rotate(state, 4, [slice_ok] * 3, start=5000)
    assert [(n, ok) for n, _t, ok in seen] == [(2, True), (3, True), (4, True)]
    assert state['failed_slice'] is None
    # The cycle had a failed run: it is not a full coverage; the next clean cycle is.
    assert 'last_full_coverage' not in state
    state, seen = rotate(state, 4, [True] * 4, start=9000)
    assert [n for n, _t, _ok in seen] == [1, 2, 3, 4]
    assert state['last_full_coverage'] == 9300


def test_a_failure_is_reported_within_t_runs():
    for bad in range(1, 6):
        state, seen = rotate({}, 5, [lambda n, bad=bad: n != bad] * 5)
        assert state['failed_slice'] == bad
        assert [ok for _n, _t, ok in seen].index(False) == bad - 1


def test_a_failure_is_read_again_with_the_slicing_it_was_found_with():
    state, _seen = rotate({}, 4, [True, False])          # slice 2/4 failed
    assert runner.plan_check(state, 8) == (2, 4)          # the window changed: still 2/4 first
    state = runner.record_check(state, 2, 4, True, 5000)
    assert runner.plan_check(state, 8) == (1, 8)          # then a new cycle with 8 slices
    state = runner.record_check(state, 1, 8, True, 5100)
    assert state['slices'] == 8 and state['next_slice'] == 2 and state['cycle_clean']


def test_a_full_read_clears_everything_and_covers_the_repository():
    state, _seen = rotate({}, 4, [True, False])
    assert runner.plan_check(state, 4, full=True) == (0, 4)
    state = runner.record_check(state, 0, 4, True, 7000)
    assert state['failed_slice'] is None
    assert state['last_full_coverage'] == 7000
    assert runner.plan_check(state, 4) == (1, 4)
    # A failed full read is read in full again.
    state = runner.record_check(state, 0, 4, False, 8000)
    assert runner.plan_check(state, 4) == (0, 4)


def test_a_failure_recorded_by_the_old_runner_needs_a_full_read():
    old = {'last_run': 10.0, 'last_ok': False, 'last_success': 5.0, 'rc': 1}
    assert runner.plan_check(old, 4) == (0, 4)
    assert runner.plan_check({'last_ok': True, 'last_success': 5.0}, 4) == (1, 4)


def test_one_slice_is_a_full_read_every_run():
    state, seen = rotate({}, 1, [True, True])
    assert [n for n, _t, _ok in seen] == [1, 1]
    assert state['last_full_coverage'] == 1100


CONFIG = {'name': 'videos', 'repository': 'offsite', 'env_file': '/etc/restic/repos/offsite.env', 'paths': ['/srv'],
          'tags': ['videos'], 'retention': {'keep_daily': 7}, 'hostname': 'h', 'rpo_seconds': 900,
          'check_schedule': 'Sun *-*-* 04:30:00', 'check_full_read_days': 56, 'restic': '/usr/bin/restic'}


@pytest.fixture
def config(tmp_path):
    conf = dict(CONFIG, state_dir=str(tmp_path / 'state'), textfile_dir=str(tmp_path / 'prom'),
                cache_dir=str(tmp_path / 'cache'))
    for key in ('state_dir', 'textfile_dir', 'cache_dir'):
        os.mkdir(conf[key])
    return conf


def test_validate_refuses_the_old_subset_and_bad_windows(config):
    assert runner.validate(dict(config)) is not None
    with pytest.raises(runner.ConfigError, match='check_full_read_days gives the window'):
        runner.validate(dict(config, check_read_data_subset='5%'))
    with pytest.raises(runner.ConfigError, match='whole number of days'):
        runner.validate(dict(config, check_full_read_days=0))
    with pytest.raises(runner.ConfigError, match='missing keys: check_schedule'):
        runner.validate(dict((k, v) for k, v in config.items() if k != 'check_schedule'))


def test_a_window_shorter_than_the_schedule_is_refused(config, monkeypatch):
    monkeypatch.setattr(runner, 'schedule_gap_seconds', lambda schedule: 7 * 86400)
    assert runner.describe_plan(config) == 'each check reads 1/8 of the packs, all within 56 days'
    with pytest.raises(runner.ConfigError, match='shorter than the longest gap'):
        runner.describe_plan(dict(config, check_full_read_days=6))


def _metrics(config):
    with open(os.path.join(config['textfile_dir'], 'restic_check_videos.prom')) as handle:
        text = handle.read()
    return dict((line.split('{')[0], float(line.rsplit(' ', 1)[1])) for line in text.splitlines()
                if line and not line.startswith('#'))


def test_cmd_check_runs_the_planned_slice_and_publishes(config, monkeypatch):
    calls = []
    answers = {'check': [0, 1, 1, 0]}

    def fake_run(conf, args, capture=False, timeout=None):
        calls.append(args)
        return (answers['check'].pop(0) if args[0] == 'check' else 0), ''

    monkeypatch.setattr(runner, 'run', fake_run)
    monkeypatch.setattr(runner, 'schedule_gap_seconds', lambda schedule: 7 * 86400)
    assert runner.cmd_check(config) == 0
    assert calls[-1] == ['check', '--read-data-subset=1/8']
    values = _metrics(config)
    assert values['restic_check_success'] == 1 and values['restic_check_slices'] == 8
    assert values['restic_check_full_read_window_seconds'] == 56 * 86400
    assert 'restic_check_last_full_coverage_timestamp_seconds' not in values
    assert runner.cmd_check(config) == 1
    assert calls[-1] == ['check', '--read-data-subset=2/8']
    assert runner.cmd_check(config) == 1
    assert calls[-1] == ['check', '--read-data-subset=2/8']   # the failed slice again, not 3/8
    values = _metrics(config)
    assert values['restic_check_success'] == 0 and values['restic_check_slice'] == 2
    assert values['restic_check_last_success_timestamp_seconds'] > 0
    assert runner.cmd_check(config, full=True) == 0
    assert calls[-1] == ['check', '--read-data']
    values = _metrics(config)
    assert values['restic_check_success'] == 1
    assert values['restic_check_last_full_coverage_timestamp_seconds'] >= values['restic_check_first_run_timestamp_seconds']
    with open(os.path.join(config['state_dir'], 'check-videos.json')) as handle:
        assert json.load(handle)['next_slice'] == 1


def test_cmd_check_reads_everything_when_it_cannot_plan(config, monkeypatch):
    calls = []
    monkeypatch.setattr(runner, 'run', lambda conf, args, **kw: (calls.append(args), (0, ''))[1])

    def broken(schedule):
        raise ValueError('systemd-analyze is missing')

    monkeypatch.setattr(runner, 'schedule_gap_seconds', broken)
    assert runner.cmd_check(config) == 0
    assert calls[-1] == ['check', '--read-data']
