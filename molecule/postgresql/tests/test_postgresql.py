"""Behaviour of selfhost.platform.postgresql and selfhost.platform.pg_backup.

The side effect has already dumped appdb, dropped it and restored it with the restore
runbook, then rewound the cluster with pgBackRest to a time between two inserts.
"""
import json
import re

import pytest

TEXTFILE = "/var/lib/prometheus/node-exporter"


def sql(host, query, db="postgres"):
    cmd = host.run("runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d %s -c %s", db, query)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def metrics(host, job):
    content = host.file("%s/selfhost_pg_backup_%s.prom" % (TEXTFILE, job.replace("-", "_"))).content_string
    values = {}
    for line in content.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_memory_settings_follow_the_budget(host):
    # postgresql_memory_mb: 1024 -> 25 %, 75 %, /128 (min 4 MB... here 8), /16 (min 64).
    assert sql(host, "SHOW shared_buffers") == "256MB"
    assert sql(host, "SHOW effective_cache_size") == "768MB"
    assert sql(host, "SHOW work_mem") == "8MB"
    assert sql(host, "SHOW maintenance_work_mem") == "64MB"
    assert sql(host, "SHOW password_encryption") == "scram-sha-256"
    assert sql(host, "SELECT count(*) FROM pg_file_settings WHERE error IS NOT NULL") == "0"


def test_server_validation_rejects_a_bad_candidate(host):
    host.run("printf \"shared_buffers = 'lots'\\n\" > /tmp/bad.conf; printf 'work_mem = 16MB\\n' > /tmp/good.conf")
    version = host.check_output("ls /etc/postgresql").split()[0]   # 15 on Debian 12, 14/16 on Ubuntu
    validate = "/usr/local/libexec/selfhost/postgresql-validate /usr/lib/postgresql/%s/bin /etc/postgresql/%s/main/postgresql.conf" % (
        version, version)
    bad = host.run(validate + " /tmp/bad.conf")
    assert bad.rc != 0
    assert "shared_buffers" in bad.stderr
    assert host.run(validate + " /tmp/good.conf").rc == 0


def test_scram_password_login_over_tcp(host):
    ok = host.run("PGPASSWORD=lab-app-password-123 psql -XAtq -h 127.0.0.1 -U app -d appdb -c 'SELECT current_user'")
    assert ok.rc == 0 and ok.stdout.strip() == "app", ok.stderr
    wrong = host.run("PGPASSWORD=wrong-password psql -XAtq -h 127.0.0.1 -U app -d appdb -c 'SELECT 1'")
    assert wrong.rc != 0
    assert "password authentication failed" in wrong.stderr
    assert sql(host, "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'app'") == "t"


def test_peer_login_only_for_postgres(host):
    # The app OS user does not exist; any other OS user must give a password on the socket.
    other = host.run("runuser -u nobody -- psql -wXAtq -h /var/run/postgresql -U postgres -d postgres -c 'SELECT 1' </dev/null")
    assert other.rc != 0


def test_exporter_role_reads_monitoring_views(host):
    out = host.run(
        "PGPASSWORD=lab-exporter-password psql -XAtq -h 127.0.0.1 -U postgres_exporter -d postgres"
        " -c \"SELECT pg_has_role('pg_monitor', 'member'), count(*) > 0 FROM pg_stat_activity\"")
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == "t|t"


def test_dropped_database_restored_with_equal_rows(host):
    assert sql(host, "SELECT count(*), sum(id) FROM items", db="appdb") == "1234|761995"
    assert sql(host, "SELECT string_agg(body, ',' ORDER BY body) FROM notes", db="appdb") == "a,b,c"
    assert sql(host, "SELECT tableowner FROM pg_tables WHERE tablename = 'items'", db="appdb") == "app"


def test_dump_copied_elsewhere_restores_identical(host):
    """The side effect copied the sets below a root-only directory (as restic restores them) and
    the runbook restored appdb from there as appdb_from_copy (restore_dump_from)."""
    copy = "/var/tmp/pg-from-restic/var/backups/postgresql"
    assert host.file("/var/tmp/pg-from-restic").mode == 0o700
    assert host.run("runuser -u postgres -- test -r %s/latest/appdb.dump", copy).rc != 0
    sums = host.check_output("cd %s/latest && sha256sum appdb.dump manifest.json", copy)
    assert host.check_output("cd /var/backups/postgresql/$(readlink %s/latest) && sha256sum appdb.dump manifest.json",
                             copy) == sums
    for table, order in (("items", "id"), ("notes", "body")):
        query = "COPY (SELECT * FROM %s ORDER BY %s) TO STDOUT" % (table, order)
        original = host.check_output("runuser -u postgres -- psql -XAtq -d appdb -c %s | sha256sum", query)
        restored = host.check_output("runuser -u postgres -- psql -XAtq -d appdb_from_copy -c %s | sha256sum", query)
        assert restored == original, table
    assert sql(host, "SELECT count(*), sum(id) FROM items", db="appdb_from_copy") == "1234|761995"
    assert sql(host, "SELECT tableowner FROM pg_tables WHERE tablename = 'items'", db="appdb_from_copy") == "app"


def test_dump_set_and_metrics(host):
    latest = host.file("/var/backups/postgresql/latest")
    assert latest.is_symlink
    manifest = json.loads(host.file("/var/backups/postgresql/latest/manifest.json").content_string)
    assert manifest["databases"]["appdb"]["tables"] == {"public.items": 1234, "public.notes": 3}
    assert "postgres" not in manifest["databases"]
    assert host.file("/var/backups/postgresql").mode == 0o700
    values = metrics(host, "dump")
    assert values['selfhost_pg_backup_last_run_success{job="dump"}'] == 1
    assert values['selfhost_pg_backup_last_success_timestamp_seconds{job="dump"}'] > 0
    assert values['selfhost_pg_backup_size_bytes{job="dump"}'] > 0


def test_verify_by_restore_runs_green_and_publishes(host):
    run = host.run("systemctl start selfhost-pg-backup-verify.service")
    assert run.rc == 0, host.run("journalctl -u selfhost-pg-backup-verify.service -n 40 --no-pager").stdout
    values = metrics(host, "verify")
    assert values['selfhost_pg_backup_last_run_success{job="verify"}'] == 1
    assert values['selfhost_pg_backup_verify_rows{job="verify"}'] >= 1237
    assert values['selfhost_pg_backup_verify_tables{job="verify"}'] >= 2
    # The throw-away cluster is gone and nothing listens on its port.
    assert host.run("ls -A /var/lib/selfhost-pg-backup/verify").stdout.strip() == ""
    assert not host.socket("tcp://0.0.0.0:55432").is_listening


def test_verify_fails_when_the_restore_differs_from_the_manifest(host):
    # A copy of the newest set whose manifest claims one more row than the dump holds.
    host.run(
        "cd /var/backups/postgresql && cp -a \"$(readlink latest)\" 20000101T000000Z && "
        "sed -i 's/\"public.items\": 1234/\"public.items\": 1235/' 20000101T000000Z/manifest.json")
    try:
        out = host.run("runuser -u postgres -- /usr/local/sbin/selfhost-pg-backup verify --set 20000101T000000Z")
        assert out.rc != 0
        assert "public.items has 1234 rows, the dump had 1235" in out.stderr
    finally:
        host.run("rm -rf /var/backups/postgresql/20000101T000000Z")


def test_retention_removes_old_sets_and_keeps_the_newest(host):
    for old in ("20200101T000000Z", "20200102T000000Z"):
        host.run("cd /var/backups/postgresql && cp -a \"$(readlink latest)\" %s && chown -R postgres: %s", old, old)
    assert host.run("systemctl start selfhost-pg-backup.service").rc == 0
    sets = host.run("runuser -u postgres -- /usr/local/sbin/selfhost-pg-backup list").stdout.split()
    assert "20200101T000000Z" not in sets and "20200102T000000Z" not in sets
    assert len(sets) >= 2
    assert host.file("/var/backups/postgresql/latest").linked_to.endswith(sets[-1])


def test_point_in_time_recovery_keeps_only_the_first_insert(host):
    target = host.file("/var/lib/postgresql/pitr-target").content_string.strip()
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", target)
    assert sql(host, "SELECT string_agg(label, ',') FROM events", db="pitrdb") == "first"
    assert sql(host, "SELECT pg_is_in_recovery()") == "f"
    # The restore of appdb happened before the target time: it survived the rewind.
    assert sql(host, "SELECT count(*) FROM items", db="appdb") == "1234"
    # Archiving goes on on the new timeline.
    assert host.run("runuser -u postgres -- pgbackrest --stanza=main --log-level-console=warn check").rc == 0


def test_pgbackrest_full_backup_published(host):
    values = metrics(host, "pgbackrest-full")
    assert values['selfhost_pg_backup_last_run_success{job="pgbackrest-full"}'] == 1
    assert values['selfhost_pg_backup_pgbackrest_backups{job="pgbackrest-full"}'] >= 2


@pytest.mark.parametrize("timer, calendar", [
    ("selfhost-pg-backup", "*-*-* 03:00:00"),
    ("selfhost-pg-backup-verify", "*-*-* 04:30:00"),
    ("selfhost-pgbackrest-full", "Sun *-*-* 01:30:00"),
    ("selfhost-pgbackrest-diff", "Mon..Sat *-*-* 01:30:00"),
])
def test_timers_scheduled(host, timer, calendar):
    unit = host.service(timer + ".timer")
    assert unit.is_enabled and unit.is_running
    show = host.run("systemctl show -p TimersCalendar -p NextElapseUSecRealtime %s.timer", timer).stdout
    assert "OnCalendar=" + calendar + " ;" in show
    assert re.search(r"NextElapseUSecRealtime=\S+", show)
