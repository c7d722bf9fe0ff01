"""Behaviour of selfhost.platform.restic on the lab host.

Backups go to a local repository and to moto's S3 server on 127.0.0.1:9000 inside the
host; restores are compared file by file with sha256 manifests. The throwaway repositories
(throwaway) are corrupted and rewritten here, after the idempotence run.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
RUNNER = "/usr/local/sbin/selfhost-restic"
PROM = "/var/lib/prometheus/node-exporter"

# Manifest of a tree: relative path -> "file <sha256> <mode>", "link <target>", "dir <mode>".
MANIFEST = r"""
import hashlib, json, os, stat, sys
root = sys.argv[1]
out = {}
for d, dirs, files in os.walk(root):
    for n in dirs + files:
        p = os.path.join(d, n)
        rel = os.path.relpath(p, root)
        st = os.lstat(p)
        mode = oct(stat.S_IMODE(st.st_mode))
        if stat.S_ISLNK(st.st_mode):
            out[rel] = 'link ' + os.readlink(p)
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = 'dir ' + mode
        else:
            out[rel] = 'file %s %s' % (hashlib.sha256(open(p, 'rb').read()).hexdigest(), mode)
print(json.dumps(out, sort_keys=True))
"""


def manifest(host, root):
    return json.loads(host.check_output("python3 -c %s %s", MANIFEST, root))


def start(host, unit):
    """Start a oneshot unit and wait for it; returns the systemctl result."""
    return host.run("systemctl start %s", unit)


def metrics(host, name):
    """Parse a .prom file into {(metric, frozenset(labels)): value}."""
    text = host.file("%s/%s" % (PROM, name)).content_string
    values = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        match = re.match(r'^(\w+)\{(.*)\} (\S+)$', line)
        assert match, line
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        values[(match.group(1), labels)] = float(match.group(3))
    return values


def metric(values, name, **labels):
    found = [v for (n, ls), v in values.items() if n == name and all((k, v2) in ls for k, v2 in labels.items())]
    assert len(found) == 1, (name, labels, values)
    return found[0]


def restic(host, set_name, args):
    return host.run("%s restic %s %s" % (RUNNER, set_name, args))


def test_credentials_are_root_only(host):
    for repo in ("local", "s3", "throwaway"):
        for suffix in ("password", "env"):
            f = host.file("/etc/restic/repos/%s.%s" % (repo, suffix))
            assert f.user == "root" and f.mode == 0o600, f.path
    assert host.file("/etc/restic").mode == 0o700
    assert "lab-secret" in host.file("/etc/restic/repos/s3.env").content_string
    assert "RESTIC_REPOSITORY='s3:http://127.0.0.1:9000/selfhost-backups'" in \
        host.file("/etc/restic/repos/s3.env").content_string


def test_timers_are_scheduled_as_configured(host):
    show = host.check_output(
        "systemctl show -p TimersCalendar -p RandomizedDelayUSec -p Persistent restic-backup@data-local.timer")
    assert "OnCalendar=*-*-* 03:17:00" in show
    assert "RandomizedDelayUSec=10min" in show
    assert "Persistent=yes" in show
    check = host.check_output("systemctl show -p TimersCalendar restic-check@throwaway.timer")
    assert "OnCalendar=Sat *-*-* 05:00:00" in check
    weekly = host.check_output("systemctl show -p TimersCalendar restic-check@data-local.timer")
    assert "OnCalendar=Sun *-*-* 04:30:00" in weekly
    hourly = host.check_output("systemctl show -p TimersCalendar -p RandomizedDelayUSec restic-backup@throwaway.timer")
    assert "OnCalendar=*-*-* *:00:00" in hourly and "RandomizedDelayUSec=0" in hourly
    listed = host.check_output("systemctl list-timers --all --no-legend 'restic-*'")
    for set_name in ("data-local", "data-s3", "throwaway"):
        for kind in ("backup", "check"):
            unit = "restic-%s@%s.timer" % (kind, set_name)
            assert unit in listed
            assert host.service(unit).is_enabled
            assert host.service(unit).is_running
    # Every timer has a next run time (systemd computed the calendar).
    for line in listed.splitlines():
        assert not line.startswith("n/a"), line


@pytest.mark.parametrize("set_name", ["data-local", "data-s3"])
def test_backup_service_runs_green_and_writes_metrics(host, set_name):
    result = start(host, "restic-backup@%s.service" % set_name)
    assert result.rc == 0, host.run("journalctl -u restic-backup@%s --no-pager -n 40", set_name).stdout
    assert host.check_output("systemctl show -p Result --value restic-backup@%s.service", set_name) == "success"
    values = metrics(host, "restic_backup_%s.prom" % set_name)
    assert metric(values, "restic_backup_success", set=set_name) == 1
    assert metric(values, "restic_backup_last_success_timestamp_seconds", set=set_name) > 1.6e9
    assert metric(values, "restic_backup_duration_seconds", set=set_name) > 0
    assert metric(values, "restic_backup_files_new", set=set_name) >= 0
    assert metric(values, "restic_backup_data_added_bytes", set=set_name) >= 0
    assert metric(values, "restic_backup_snapshots", set=set_name) >= 1
    assert metric(values, "restic_backup_step_success", set=set_name, step="forget") == 1
    rpo = {"data-local": 93600, "data-s3": 900}[set_name]
    assert metric(values, "restic_backup_rpo_seconds", set=set_name) == rpo
    # Written atomically: no temporary file is left behind.
    assert not [n for n in host.file(PROM).listdir() if n.startswith(".")]


def test_hooks_ran_and_their_output_is_backed_up(host):
    assert host.file("/var/backups/lab-post-hook").content_string.strip() == "data-local success"
    listing = restic(host, "data-local", "ls latest /var/backups/lab-dump")
    assert listing.rc == 0
    assert "/var/backups/lab-dump/dump.txt" in listing.stdout


@pytest.mark.parametrize("set_name", ["data-local", "data-s3"])
def test_restore_is_byte_identical(host, set_name):
    target = "/var/tmp/restore-%s" % set_name
    host.run("rm -rf %s", target)
    result = restic(host, set_name, "restore latest --target %s --include /srv/data" % target)
    assert result.rc == 0, result.stderr
    original = manifest(host, "/srv/data")
    restored = manifest(host, target + "/srv/data")
    if set_name == "data-local":
        # The set's exclude pattern worked.
        assert "skip-me.tmp" in original and "skip-me.tmp" not in restored
        del original["skip-me.tmp"]
    # Everything else is identical: content, modes, the symlink, the empty directory.
    assert restored == original
    assert restored["link-to-hello"] == "link nested/deeper/hello.txt"
    assert restored["empty-dir"].startswith("dir ")
    assert len([v for v in restored.values() if v.startswith("file")]) >= 12


def test_snapshots_are_tagged_with_the_set_and_host(host):
    snaps = json.loads(restic(host, "data-s3", "snapshots --json").stdout)
    assert snaps and all(s["hostname"] == "lab" and "data-s3" in s["tags"] for s in snaps)


def test_forget_failing_on_a_lock_fails_the_unit(host):
    """The known flaw elsewhere: a forget that cannot lock must not leave the unit green."""
    host.run("systemctl stop lockholder.service; systemctl reset-failed lockholder.service")
    holder = host.run("systemd-run --unit=lockholder sh -c 'sleep 60 | %s restic data-local backup "
                      "--stdin --stdin-filename held'", RUNNER)
    assert holder.rc == 0
    try:
        assert host.run("for i in $(seq 60); do [ -n \"$(%s restic data-local --no-lock list locks)\" ] "
                        "&& exit 0; sleep 0.5; done; exit 1", RUNNER).rc == 0
        result = start(host, "restic-backup@data-local.service")
        assert result.rc != 0
        assert host.check_output("systemctl show -p Result --value restic-backup@data-local.service") != "success"
        values = metrics(host, "restic_backup_data-local.prom")
        assert metric(values, "restic_backup_success", set="data-local") == 0
        assert metric(values, "restic_backup_step_success", set="data-local", step="backup") == 1
        assert metric(values, "restic_backup_step_success", set="data-local", step="forget") == 0
        assert host.file("/var/backups/lab-post-hook").content_string.strip() == "data-local failure"
    finally:
        host.run("systemctl stop lockholder.service")
    # The live lock was not removed by the run's `restic unlock`; once its owner ends, the next run is green.
    assert start(host, "restic-backup@data-local.service").rc == 0


def _leave_a_stale_lock(host):
    """Start a restic that takes an exclusive lock, then SIGKILL it so the lock stays behind.

    `key passwd` takes the lock and then waits for the new password on stdin. Returns True
    when a lock was left behind (a restic that got to exit cleanly removes its own lock).
    """
    host.run("systemctl stop stale-locker.service; systemctl reset-failed stale-locker.service")
    assert host.run("systemd-run --unit=stale-locker sh -c 'sleep 120 | %s restic data-local key passwd'",
                    RUNNER).rc == 0
    assert host.run("for i in $(seq 60); do [ -n \"$(%s restic data-local --no-lock list locks)\" ] "
                    "&& exit 0; sleep 0.5; done; exit 1", RUNNER).rc == 0
    # SIGKILL the restic process itself (not only the unit's shell), so it cannot clean up.
    host.run("pkill -KILL -x restic; systemctl kill -s KILL stale-locker.service; systemctl stop stale-locker.service")
    return bool(restic(host, "data-local", "--no-lock list locks").stdout.strip())


def test_stale_lock_is_removed_before_a_run(host):
    assert any(_leave_a_stale_lock(host) for _attempt in range(3)), "the killed process left no lock behind"
    result = start(host, "restic-backup@data-local.service")
    assert result.rc == 0, host.run("journalctl -u restic-backup@data-local --no-pager -n 30").stdout
    assert restic(host, "data-local", "--no-lock list locks").stdout.strip() == ""


# Faked snapshot times (UTC). With the newest snapshot taken now by the service, the policy
# keep_daily 7 / keep_weekly 4 / keep_monthly 6 keeps: now + the last of each of 6 days
# (06-10..06-05), the last of ISO week 22 (06-04) and of week 20 (05-15), and the newest of
# May, April, March and February (06 and now fill the other monthly slots).
FAKED = (["2023-06-%02d 21:00:00" % day for day in range(1, 11)] + ["2023-06-09 09:00:00", "2023-06-10 09:00:00"]
         + ["2022-12-15 12:00:00", "2023-01-15 12:00:00", "2023-02-15 12:00:00", "2023-03-15 12:00:00",
            "2023-04-15 12:00:00", "2023-05-15 12:00:00"])
KEPT = sorted(["2023-06-%02d 21:00:00" % day for day in range(4, 11)]
              + ["2023-05-15 12:00:00", "2023-04-15 12:00:00", "2023-03-15 12:00:00", "2023-02-15 12:00:00"])


def test_retention_keeps_exactly_what_the_policy_says(host):
    # Seeded with restic itself (the set's environment, host, tag and path), then the service runs.
    script = "set -ea; . /etc/restic/repos/throwaway.env; set +a; export TZ=UTC; " + "; ".join(
        "restic backup -q --host lab --tag throwaway --time '%s' /srv/retention-src || exit 1" % when
        for when in FAKED)
    # The hourly timer may have run the set already when an hour boundary passed since converge.
    existing = len(json.loads(restic(host, "throwaway", "snapshots --json").stdout))
    host.check_output("bash -c %s", script)
    assert len(json.loads(restic(host, "throwaway", "snapshots --json").stdout)) == existing + len(FAKED)
    assert start(host, "restic-backup@throwaway.service").rc == 0
    snaps = json.loads(restic(host, "throwaway", "snapshots --json").stdout)
    times = sorted(s["time"][:19].replace("T", " ") for s in snaps)
    faked_left = [t for t in times if t.startswith(("2022", "2023"))]
    assert faked_left == KEPT
    assert len(snaps) == len(KEPT) + 1  # plus the one the service just took
    values = metrics(host, "restic_backup_throwaway.prom")
    assert metric(values, "restic_backup_snapshots", set="throwaway") == len(KEPT) + 1


def test_corrupted_pack_makes_check_fail_and_the_metric_says_so(host):
    assert start(host, "restic-check@throwaway.service").rc == 0
    assert metric(metrics(host, "restic_check_throwaway.prom"), "restic_check_success", set="throwaway") == 1
    pack = host.check_output("find /srv/restic/throwaway/data -type f -size +100k | head -1")
    assert pack
    host.check_output("chmod u+w %s && printf 'CORRUPTED' | dd of=%s bs=1 seek=4096 conv=notrunc status=none "
                      "&& chmod u-w %s", pack, pack, pack)
    assert start(host, "restic-check@throwaway.service").rc != 0
    values = metrics(host, "restic_check_throwaway.prom")
    assert metric(values, "restic_check_success", set="throwaway") == 0
    assert metric(values, "restic_check_last_success_timestamp_seconds", set="throwaway") > 1.6e9
    assert "Pack ID does not match" in host.check_output(
        "journalctl -u restic-check@throwaway --no-pager -n 60")


def _journal(host, unit):
    return host.run("journalctl -u %s --no-pager -n 40", unit).stdout[-3000:]


def test_on_demand_units_take_quick_successive_starts(host):
    """Hooks, runbooks and timers may start a unit several times within seconds: systemd's start
    rate limit (5 in 10 s by default) must not refuse the sixth. (The throwaway check fails from
    here on, on its corrupted pack: each run must still be a run.)"""
    for _run in range(7):
        start(host, "restic-check@throwaway.service")
        result = host.check_output("systemctl show -p Result --value restic-check@throwaway.service")
        assert result == "exit-code", _journal(host, "restic-check@throwaway")


def _check(host, set_name):
    """Run the set's check service once; returns (passed, metrics)."""
    passed = start(host, "restic-check@%s.service" % set_name).rc == 0
    return passed, metrics(host, "restic_check_%s.prom" % set_name)


def test_check_rotation_reports_a_damaged_pack_within_the_window(host):
    """4 slices (yearly checks, a 4 x 366-day window): a pack overwritten with 4 KiB of garbage
    is reported by one of the next 4 checks, by the one reading its slice, and stays reported
    while checks of other slices would pass; it clears when that slice reads clean again."""
    assert start(host, "restic-backup@rotation.service").rc == 0, \
        host.run("journalctl -u restic-backup@rotation --no-pager -n 30").stdout
    passed, values = _check(host, "rotation")
    assert passed
    slices = int(metric(values, "restic_check_slices", set="rotation"))
    assert slices == 4
    assert metric(values, "restic_check_slice", set="rotation") == 1
    assert metric(values, "restic_check_full_read_window_seconds", set="rotation") == 1464 * 86400
    packs = host.check_output("find /srv/restic/rotation/data -type f -size +1M -printf '%f\\n' | sort").split()
    assert len(packs) >= 4, packs
    # The pack whose slice comes last from here (restic: first byte of the pack ID mod t, + 1).
    order = [(n - 2) % slices for n in range(1, slices + 1)]  # runs needed to reach slice n
    pack = max(packs, key=lambda p: order[int(p[:2], 16) % slices])
    bad_slice = int(pack[:2], 16) % slices + 1
    path = "/srv/restic/rotation/data/%s/%s" % (pack[:2], pack)
    host.check_output("cp -p %s /var/tmp/good-pack && chmod u+w %s && "
                      "dd if=/dev/urandom of=%s bs=4096 count=1 conv=notrunc status=none && chmod u-w %s",
                      path, path, path, path)
    seen = []
    for _run in range(slices):
        passed, values = _check(host, "rotation")
        seen.append((int(metric(values, "restic_check_slice", set="rotation")), passed))
        if not passed:
            break
    assert seen[-1] == (bad_slice, False), seen            # reported within the window's t checks
    assert all(ok for _n, ok in seen[:-1]), seen
    assert metric(values, "restic_check_success", set="rotation") == 0
    assert "Pack ID does not match" in host.check_output("journalctl -u restic-check@rotation --no-pager -n 40")
    # Another slice reads clean, but the runner reads the failed one again: the failure stays.
    other = bad_slice % slices + 1
    assert restic(host, "rotation", "check --read-data-subset=%d/%d" % (other, slices)).rc == 0
    passed, values = _check(host, "rotation")
    assert not passed
    assert metric(values, "restic_check_slice", set="rotation") == bad_slice
    assert metric(values, "restic_check_success", set="rotation") == 0
    coverage_before = json.loads(host.file("/var/lib/selfhost-restic/check-rotation.json").content_string).get(
        "last_full_coverage")
    # The pack put back: the failed slice passes, the failure clears, the rotation goes on.
    host.check_output("chmod u+w %s && cp /var/tmp/good-pack %s && chmod u-w %s && rm /var/tmp/good-pack",
                      path, path, path)
    passed, values = _check(host, "rotation")
    assert passed, _journal(host, "restic-check@rotation")
    assert metric(values, "restic_check_slice", set="rotation") == bad_slice
    assert metric(values, "restic_check_success", set="rotation") == 1
    # Even when that was the cycle's last slice, the cycle had failed runs: no full coverage.
    state = json.loads(host.file("/var/lib/selfhost-restic/check-rotation.json").content_string)
    assert state.get("last_full_coverage") == coverage_before


def test_check_rotation_records_a_full_coverage_after_a_clean_cycle(host):
    """The cycle that had the failed run ends without a full coverage; the next one, all passing,
    records it when its last slice passes."""
    path = "/var/lib/selfhost-restic/check-rotation.json"
    state = json.loads(host.file(path).content_string)
    before = state.get("last_full_coverage")     # a clean cycle before the damage, if there was one
    # Still in the cycle with the failed run, unless the repaired slice was its last one.
    cycles = 1 if state["cycle_clean"] else 2
    ends = []
    for _run in range(2 * 4):
        passed, values = _check(host, "rotation")
        assert passed, _journal(host, "restic-check@rotation")
        state = json.loads(host.file(path).content_string)
        if state["last_slice"] == 4:
            ends.append(state.get("last_full_coverage"))
            if len(ends) == cycles:
                break
    assert len(ends) == cycles, state
    assert ends[:-1] == [before] * (cycles - 1)   # the cycle with the damaged pack does not count
    assert ends[-1] == state["last_run"] != before  # the clean one does
    coverage = metric(values, "restic_check_last_full_coverage_timestamp_seconds", set="rotation")
    assert coverage == metric(values, "restic_check_last_run_timestamp_seconds", set="rotation")
    assert coverage > metric(values, "restic_check_first_run_timestamp_seconds", set="rotation")


def _inventory_args(host):
    name = host.backend.get_hostname()
    return ["-i", "%s," % name, "-c", "community.docker.docker"]


def _playbook(host, playbook, *extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "false"
    return subprocess.run(["ansible-playbook"] + _inventory_args(host) + [str(ROOT / playbook)] + list(extra),
                          capture_output=True, text=True, env=env, timeout=300, check=False)


def test_runbook_backup_now(host):
    run = _playbook(host, "playbooks/runbooks/backup_now.yml", "-e", '{"backup_now_sets": ["data-s3"]}')
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "data-s3: ok" in run.stdout


def test_runbook_restore_drill_reports_rto(host):
    run = _playbook(host, "playbooks/runbooks/restore_drill.yml", "-e",
                    '{"restore_drill_sets": ["data-local", "data-s3"]}')
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert re.search(r"data-s3: snapshot \w+ restored and verified, RTO [0-9.]+ s", run.stdout), run.stdout[-3000:]
    values = metrics(host, "restic_drill_data-local.prom")
    assert metric(values, "restic_restore_drill_success", set="data-local") == 1
    assert not host.file("/var/tmp/restore-drill").exists


# ---------------------------------------------------------------- backup set removal

def test_removed_set_leaves_nothing_behind_but_its_snapshots(host):
    """prepare.yml configured and ran set `retired`; converge had it as state: absent."""
    units = host.run("systemctl list-unit-files --no-legend 'restic-*@retired*'").stdout
    assert "retired" not in units
    assert "retired" not in host.check_output("systemctl list-timers --all --no-legend")
    assert "retired" not in host.run("systemctl --failed --no-legend").stdout
    for path in ("/etc/systemd/system/restic-backup@retired.timer", "/etc/systemd/system/restic-check@retired.timer",
                 "/etc/restic/sets/retired.json", "/var/lib/selfhost-restic/backup-retired.json",
                 "/var/lib/selfhost-restic/check-retired.json", PROM + "/restic_backup_retired.prom",
                 PROM + "/restic_check_retired.prom"):
        assert not host.file(path).exists, path
    # The repository's data is not touched: the set's snapshot is still there.
    snaps = json.loads(restic(host, "data-local", "snapshots --json --tag retired").stdout)
    assert len(snaps) >= 1 and snaps[0]["paths"] == ["/srv/retention-src"]


# ---------------------------------------------------------------- restore runbook (files)

def _restore(host, *extra):
    return _playbook(host, "playbooks/runbooks/restore.yml", "-e", "restore_hosts=all", *extra)


def _app_starts(host):
    return len(host.file("/var/lib/lab-app-starts").content_string.split())


def test_runbook_restores_a_set_in_place_only_with_confirmation(host):
    assert start(host, "restic-backup@data-local.service").rc == 0
    backed_up = manifest(host, "/srv/data")
    snapshot = json.loads(restic(host, "data-local", "snapshots --json --tag data-local latest").stdout)[0]
    # Damage the tree: changed content, a changed mode, deleted files and a deleted
    # directory, a repointed symlink, and a new file the snapshot does not know.
    host.check_output(
        "set -e; cd /srv/data; head -c 5000 /dev/urandom > file-1.bin; rm file-2.bin; chmod 0600 file-3.bin; "
        "rm -r nested/deeper; ln -sfn file-4.bin link-to-hello; echo new > created-after.txt")
    damaged = manifest(host, "/srv/data")
    assert damaged != backed_up
    starts = _app_starts(host)

    refused = _restore(host, "-e", "restore_restic_set=data-local")
    assert refused.returncode != 0
    assert "restore_confirm=data-local" in refused.stdout
    wrong = _restore(host, "-e", "restore_restic_set=data-local", "-e", "restore_confirm=data-s3")
    assert wrong.returncode != 0
    assert manifest(host, "/srv/data") == damaged, "an unconfirmed restore changed files"
    assert _app_starts(host) == starts, "an unconfirmed restore touched the services"
    # A preview: check mode runs through, reading which services it would stop, and changes nothing.
    preview = _restore(host, "-e", "restore_restic_set=data-local", "-e", "restore_confirm=data-local", "--check")
    assert preview.returncode == 0, preview.stdout[-4000:] + preview.stderr[-2000:]
    assert "Stop the services that write the set's paths" in preview.stdout
    assert manifest(host, "/srv/data") == damaged, "a restore in check mode changed files"
    assert _app_starts(host) == starts and host.service("lab-app.service").is_running

    run = _restore(host, "-e", "restore_restic_set=data-local", "-e", "restore_confirm=data-local")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert re.search(r"data-local: snapshot %s \(.*\) restored and verified to the original paths: \d+ files"
                     % snapshot["short_id"], run.stdout), run.stdout[-3000:]
    assert re.search(r"in [0-9.]+ s \([0-9.]+ s with 1 services stopped: measured RTO\)", run.stdout)
    # Files the snapshot does not hold are reported and left alone (restic 0.14 has no --delete).
    assert "/srv/data/created-after.txt" in run.stdout
    restored = manifest(host, "/srv/data")
    assert restored.pop("created-after.txt").startswith("file ")
    assert restored == backed_up
    # The set's service was stopped for the restore and started again.
    assert host.service("lab-app.service").is_running
    assert _app_starts(host) == starts + 1
    host.check_output("rm /srv/data/created-after.txt")


def test_runbook_restores_a_chosen_snapshot_to_a_directory(host):
    target = "/var/tmp/restore-runbook"
    host.run("rm -rf %s", target)
    snaps = json.loads(restic(host, "data-s3", "snapshots --json --tag data-s3").stdout)
    oldest = sorted(snaps, key=lambda s: s["time"])[0]
    starts = _app_starts(host)
    run = _restore(host, "-e", "restore_restic_set=data-s3", "-e", "restore_confirm=data-s3",
                   "-e", "restore_snapshot=%s" % oldest["short_id"], "-e", "restore_target=%s" % target)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "data-s3: snapshot %s" % oldest["short_id"] in run.stdout
    assert "restored and verified to %s" % target in run.stdout
    assert manifest(host, target + "/srv/data") == manifest(host, "/srv/data")
    # A restore elsewhere does not stop anything; a non-empty target is refused.
    assert _app_starts(host) == starts
    again = _restore(host, "-e", "restore_restic_set=data-s3", "-e", "restore_confirm=data-s3",
                     "-e", "restore_target=%s" % target)
    assert again.returncode != 0 and "is not an empty directory" in again.stdout
    host.run("rm -rf %s", target)


# ---------------------------------------------------------------- Redis RDB snapshots

REDIS_ADMIN = "REDISCLI_AUTH=lab-redis-admin-password redis-cli --user admin --no-auth-warning "
REDIS_KEYS = {"string:1": "hello world", "string:2": "\u00e9t\u00e9 caf\u00e9", "counter": "42"}


def _redis(host, command):
    return host.check_output(REDIS_ADMIN + command)


def _redis_state(host):
    state = dict((key, _redis(host, "GET %s" % key)) for key in REDIS_KEYS)
    state["queue"] = _redis(host, "LRANGE celery 0 -1")
    state["hash"] = _redis(host, "HGETALL task-meta")
    state["dbsize"] = _redis(host, "DBSIZE")
    return state


def test_redis_snapshot_is_consistent_and_kept_n(host):
    for _attempt in range(4):
        out = host.run("/usr/local/sbin/selfhost-redis-backup snapshot")
        assert out.rc == 0, out.stdout + out.stderr
    report = json.loads(out.stdout.split("REDIS-BACKUP-REPORT ", 1)[1])
    assert report["ok"] and report["file"].startswith("/var/backups/redis/dump-")
    files = sorted(host.file("/var/backups/redis").listdir())
    assert len([f for f in files if f.endswith(".rdb")]) == 3
    assert len([f for f in files if f.endswith(".rdb.sha256")]) == 3
    assert host.run("cd /var/backups/redis && sha256sum -c --quiet *.sha256").rc == 0
    assert host.file(report["file"]).mode == 0o600
    # The backup user can snapshot but not read or change data.
    denied = host.run("REDISCLI_AUTH=lab-redis-backup-password redis-cli --user backup --no-auth-warning FLUSHALL")
    assert "NOPERM" in denied.stdout + denied.stderr


def test_redis_keys_come_back_from_restic(host):
    _redis(host, "FLUSHALL")
    for key, value in REDIS_KEYS.items():
        host.check_output(REDIS_ADMIN + "SET %s %s", key, value)
    _redis(host, "RPUSH celery job-1 job-2 job-3")
    _redis(host, "HSET task-meta status SUCCESS result 7")
    before = _redis_state(host)
    assert before["dbsize"] == "5"

    # The snapshot is taken by the restic set's pre_hook, then everything is lost.
    assert start(host, "restic-backup@redis.service").rc == 0, \
        host.run("journalctl -u restic-backup@redis -u selfhost-redis-backup --no-pager -n 40").stdout
    _redis(host, "FLUSHALL")
    _redis(host, "SET written-after-the-snapshot x")
    assert _redis(host, "DBSIZE") == "1"

    target = "/var/tmp/redis-restore"
    host.run("rm -rf %s", target)
    assert restic(host, "redis", "restore latest --target %s" % target).rc == 0
    newest = sorted(f for f in host.file(target + "/var/backups/redis").listdir() if f.endswith(".rdb"))[-1]
    out = host.run("/usr/local/sbin/selfhost-redis-backup restore %s/var/backups/redis/%s", target, newest)
    assert out.rc == 0, out.stdout + out.stderr
    report = json.loads(out.stdout.split("REDIS-BACKUP-REPORT ", 1)[1])
    assert report["ok"] and report["keys"] == report["keys_in_file"] == 5
    assert _redis_state(host) == before
    assert _redis(host, "EXISTS written-after-the-snapshot") == "0"
    # The AOF was rebuilt from the RDB: a plain restart (which loads the AOF) keeps the data.
    host.check_output("systemctl restart redis-server")
    host.run("for i in $(seq 50); do " + REDIS_ADMIN + "PING | grep -q PONG && exit 0; sleep 0.2; done")
    assert _redis_state(host) == before
    host.run("rm -rf %s", target)


def test_redis_restore_refuses_a_damaged_file(host):
    good = sorted(f for f in host.file("/var/backups/redis").listdir() if f.endswith(".rdb"))[-1]
    host.check_output("cp /var/backups/redis/%s /var/tmp/bad.rdb && cp /var/backups/redis/%s.sha256 "
                      "/var/tmp/bad.rdb.sha256 && printf X | dd of=/var/tmp/bad.rdb bs=1 seek=20 conv=notrunc "
                      "status=none", good, good)
    before = _redis(host, "DBSIZE")
    out = host.run("/usr/local/sbin/selfhost-redis-backup restore /var/tmp/bad.rdb")
    assert out.rc != 0 and "does not match" in out.stdout
    assert _redis(host, "DBSIZE") == before
    host.run("rm -f /var/tmp/bad.rdb /var/tmp/bad.rdb.sha256")
