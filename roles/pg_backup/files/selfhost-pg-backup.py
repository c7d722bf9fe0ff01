#!/usr/bin/python3
# Installed by selfhost.platform.pg_backup. Configuration: /etc/selfhost-pg-backup/config.json.
"""Logical PostgreSQL backups that are proven by restoring them.

  dump                 one set: roles.sql, tablespaces.sql, <db>.dump (pg_dump -Fc) per database
                       and manifest.json (row count of every table, counted in the dump's snapshot)
  verify [--set ID]    restore a set into a throw-away cluster on a spare port and compare it
                       with the manifest; the cluster is removed afterwards
  restore --database DB [--set ID] [--from PATH] [--as NAME] [--roles]
                       restore one database into the live cluster (replaces DB, or creates NAME);
                       --from reads the set from anywhere (a dump brought back from restic):
                       a directory of sets, one set's directory, or its <db>.dump file
  pgbackrest --type full|diff|incr
                       run a pgBackRest backup and record the repository's state
  publish JOB          (root, ExecStopPost) write JOB's node-exporter textfile metrics
  list                 print the complete sets, newest last
Dump, verify and restore run as the postgres OS user (peer authentication on the socket); a
restore started as root opens the set's files first, then runs as postgres.
"""
import argparse
import datetime
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time

CONFIG = "/etc/selfhost-pg-backup/config.json"
SET_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")
JOBS = ("dump", "verify", "pgbackrest-full", "pgbackrest-diff")


def log(msg):
    print(msg, flush=True)


def load_config():
    with open(CONFIG, encoding="utf-8") as f:
        return json.load(f)


def binpath(cfg, name):
    return os.path.join(cfg["bin_dir"], name)


def run(argv, **kw):
    log("+ " + " ".join(argv))
    return subprocess.run(argv, check=True, **kw)


def connect(cfg, dbname, host=None, port=None):
    import psycopg2  # python3-psycopg2, installed by the role

    return psycopg2.connect(dbname=dbname, host=host or cfg["socket_dir"], port=port or cfg["port"], user="postgres")


# ---------------------------------------------------------------------------------- state
def state_path(cfg, job):
    return os.path.join(cfg["state_dir"], job + ".json")


def read_state(cfg, job):
    try:
        with open(state_path(cfg, job), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def write_state(cfg, job, state):
    path = state_path(cfg, job)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def tracked(cfg, job, func):
    """Run func(state) recording start, end, duration and result in the job's state file."""
    state = read_state(cfg, job)
    start = time.time()
    state.update({"last_start": start, "result": "running"})
    write_state(cfg, job, state)
    try:
        details = func() or {}
    except Exception as exc:  # recorded for the metric, then re-raised for systemd
        state.update({"last_end": time.time(), "duration": time.time() - start, "result": "failed", "error": str(exc)})
        write_state(cfg, job, state)
        raise
    end = time.time()
    state.update({"last_end": end, "duration": end - start, "result": "success", "last_success": end,
                  "error": "", "details": details})
    write_state(cfg, job, state)
    return details


# ---------------------------------------------------------------------------------- sets
def complete_sets(cfg, root=None):
    root = root or cfg["backup_dir"]
    return sorted(d for d in os.listdir(root) if SET_RE.match(d) and os.path.isfile(os.path.join(root, d, "manifest.json")))


def find_set(cfg, set_id, root=None):
    root = root or cfg["backup_dir"]
    sets = complete_sets(cfg, root)
    if not sets:
        raise SystemExit("no complete backup set in %s" % root)
    if set_id in (None, "", "latest"):
        set_id = sets[-1]
    if set_id not in sets:
        raise SystemExit("backup set %s not found in %s; complete sets: %s" % (set_id, root, ", ".join(sets)))
    path = os.path.join(root, set_id)
    with open(os.path.join(path, "manifest.json"), encoding="utf-8") as f:
        return set_id, path, json.load(f)


def find_source(cfg, set_id, source, database):
    """(set id, set directory, manifest) of a restore: from pg_backup_dir, or from --from PATH,
    which is a directory of sets (restic's copy of pg_backup_dir), one set's directory (with its
    manifest.json) or a set's <db>.dump file (its manifest.json beside it)."""
    if not source:
        return find_set(cfg, set_id)
    source = os.path.abspath(source)
    if os.path.isfile(source):
        directory = os.path.dirname(source)
        if not os.path.isfile(os.path.join(directory, "manifest.json")):
            raise SystemExit("%s has no manifest.json beside it: restore the whole set directory "
                             "(the manifest's row counts are what the restore is checked against)" % source)
        set_id, path, manifest = set_from_dir(directory, set_id)
        entry = manifest["databases"].get(database) or {}
        if entry.get("file") != os.path.basename(source):
            raise SystemExit("%s is not the dump of database %s in set %s (that is %s)"
                             % (source, database, set_id, entry.get("file") or "absent"))
        return set_id, path, manifest
    if not os.path.isdir(source):
        raise SystemExit("--from %s: no such file or directory (as user %s)" % (source, pwd.getpwuid(os.geteuid()).pw_name))
    if os.path.isfile(os.path.join(source, "manifest.json")):
        return set_from_dir(source, set_id)
    return find_set(cfg, set_id, source)


def set_from_dir(directory, set_id):
    """One set's directory: its id is its manifest's (the directory may have been renamed)."""
    with open(os.path.join(directory, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    found = manifest.get("set") or os.path.basename(directory.rstrip("/"))
    if set_id not in (None, "", "latest") and set_id != found:
        raise SystemExit("%s holds set %s, not %s" % (directory, found, set_id))
    return found, directory, manifest


def list_databases(cfg):
    conn = connect(cfg, "postgres")
    try:
        cur = conn.cursor()
        cur.execute("SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1")
        found = [r[0] for r in cur.fetchall()]
    finally:
        conn.close()
    wanted = cfg["databases"] or [d for d in found if d not in cfg["exclude_databases"]]
    missing = [d for d in wanted if d not in found]
    if missing:
        raise RuntimeError("databases to back up do not exist: %s" % ", ".join(missing))
    return wanted


def table_counts(cur):
    cur.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%' ORDER BY 1, 2")
    tables = cur.fetchall()
    counts = {}
    for schema, name in tables:
        cur.execute('SELECT count(*) FROM "%s"."%s"' % (schema.replace('"', '""'), name.replace('"', '""')))
        counts["%s.%s" % (schema, name)] = cur.fetchone()[0]
    return counts


def fsync_tree(path):
    for entry in os.listdir(path):
        fd = os.open(os.path.join(path, entry), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def dump(cfg):
    root = cfg["backup_dir"]
    for stale in os.listdir(root):  # leftovers of an interrupted run
        if stale.endswith(".partial"):
            shutil.rmtree(os.path.join(root, stale), ignore_errors=True)
    set_id = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    work = os.path.join(root, set_id + ".partial")
    os.mkdir(work, 0o700)
    common = ["-h", cfg["socket_dir"], "-p", str(cfg["port"]), "-U", "postgres"]
    run([binpath(cfg, "pg_dumpall")] + common + ["--roles-only", "-f", os.path.join(work, "roles.sql")])
    run([binpath(cfg, "pg_dumpall")] + common + ["--tablespaces-only", "-f", os.path.join(work, "tablespaces.sql")])
    manifest = {"set": set_id, "created": time.time(), "databases": {}}
    for db in list_databases(cfg):
        conn = connect(cfg, db)
        try:
            # One snapshot for the dump and the row counts: the manifest describes exactly
            # what the dump contains, whatever the applications write meanwhile.
            conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
            cur = conn.cursor()
            cur.execute("SELECT pg_export_snapshot(), current_setting('server_version'),"
                        " pg_encoding_to_char(encoding), datcollate, datctype, pg_get_userbyid(datdba)"
                        " FROM pg_database WHERE datname = current_database()")
            snapshot, version, encoding, collate, ctype, owner = cur.fetchone()
            counts = table_counts(cur) if cfg["row_counts"] else {}
            target = os.path.join(work, db + ".dump")
            run([binpath(cfg, "pg_dump")] + common + ["-Fc", "-Z", str(cfg["compress_level"]),
                                                      "--snapshot=" + snapshot, "-f", target, db])
            conn.rollback()
        finally:
            conn.close()
        manifest["server_version"] = version
        manifest["databases"][db] = {"file": db + ".dump", "bytes": os.path.getsize(target), "owner": owner,
                                     "encoding": encoding, "collate": collate, "ctype": ctype, "tables": counts}
    with open(os.path.join(work, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    fsync_tree(work)
    os.rename(work, os.path.join(root, set_id))
    link = os.path.join(root, "latest")
    tmp_link = link + ".tmp"
    if os.path.lexists(tmp_link):
        os.unlink(tmp_link)
    os.symlink(set_id, tmp_link)
    os.replace(tmp_link, link)
    removed = apply_retention(cfg)
    size = sum(os.path.getsize(os.path.join(root, set_id, f)) for f in os.listdir(os.path.join(root, set_id)))
    log("set %s: %d databases, %d bytes; removed %s" % (set_id, len(manifest["databases"]), size, removed or "nothing"))
    return {"set": set_id, "bytes": size, "databases": {d: v["bytes"] for d, v in manifest["databases"].items()},
            "sets_kept": len(complete_sets(cfg))}


def apply_retention(cfg):
    """Remove sets older than retention_days, always keeping the newest keep_min sets."""
    sets = complete_sets(cfg)
    limit = time.time() - cfg["retention_days"] * 86400
    removed = []
    for set_id in sets[:-cfg["keep_min"]] if cfg["keep_min"] else sets:
        created = datetime.datetime.strptime(set_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        if created.timestamp() < limit:
            shutil.rmtree(os.path.join(cfg["backup_dir"], set_id))
            removed.append(set_id)
    return removed


# ---------------------------------------------------------------------------------- checks
def compare(manifest_db, actual, db):
    """Tables present and row counts equal to the manifest; returns (tables, rows)."""
    expected = manifest_db["tables"]
    problems = []
    for table in sorted(set(expected) - set(actual)):
        problems.append("%s: table %s missing" % (db, table))
    for table in sorted(set(actual) - set(expected)):
        problems.append("%s: unexpected table %s" % (db, table))
    for table in sorted(set(expected) & set(actual)):
        if expected[table] != actual[table]:
            problems.append("%s: %s has %d rows, the dump had %d" % (db, table, actual[table], expected[table]))
    if problems:
        raise RuntimeError("; ".join(problems))
    return len(expected), sum(expected.values())


def psql_file(cfg, path, host, port, dbname="postgres", stdin=None):
    # Roles that already exist (postgres) make CREATE ROLE fail; the ALTER ROLE that follows
    # each CREATE still applies, so errors are expected and not fatal here.
    run([binpath(cfg, "psql"), "-X", "-q", "-h", host, "-p", str(port), "-U", "postgres", "-d", dbname,
         "-v", "ON_ERROR_STOP=0", "-f", "-" if stdin else path], stdout=subprocess.DEVNULL, stdin=stdin)


def become_postgres():
    """Started as root: continue as the postgres OS user (peer authentication on the socket)."""
    if os.geteuid() != 0:
        return
    user = pwd.getpwnam("postgres")
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    os.environ.update(HOME=user.pw_dir, USER="postgres", LOGNAME="postgres")
    os.chdir(user.pw_dir)


def verify(cfg, set_id):
    set_id, path, manifest = find_set(cfg, set_id)
    os.makedirs(cfg["verify_dir"], mode=0o700, exist_ok=True)
    work = tempfile.mkdtemp(prefix="verify-", dir=cfg["verify_dir"])
    data = os.path.join(work, "data")
    port = cfg["verify_port"]
    started = False
    checked_tables = checked_rows = 0
    t0 = time.time()
    try:
        run([binpath(cfg, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            stdout=subprocess.DEVNULL)
        # Socket in the private work directory, no TCP listener, no durability (throw-away).
        opts = "-c listen_addresses='' -c unix_socket_directories='%s' -p %d -c fsync=off -c full_page_writes=off" % (work, port)
        run([binpath(cfg, "pg_ctl"), "-D", data, "-o", opts, "-l", os.path.join(work, "server.log"), "-w", "-t", "120", "start"])
        started = True
        psql_file(cfg, os.path.join(path, "roles.sql"), work, port)
        for db, info in sorted(manifest["databases"].items()):
            run([binpath(cfg, "pg_restore"), "-h", work, "-p", str(port), "-U", "postgres", "--create",
                 "--exit-on-error", "-d", "postgres", os.path.join(path, info["file"])])
            conn = connect(cfg, db, host=work, port=port)
            try:
                actual = table_counts(conn.cursor())
            finally:
                conn.close()
            tables, rows = compare(info, actual, db)
            checked_tables += tables
            checked_rows += rows
            log("%s: %d tables, %d rows match the manifest" % (db, tables, rows))
    finally:
        if started:
            subprocess.run([binpath(cfg, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"], check=False)
        shutil.rmtree(work, ignore_errors=True)
    return {"set": set_id, "set_created": manifest["created"], "databases": len(manifest["databases"]),
            "tables": checked_tables, "rows": checked_rows, "restore_seconds": time.time() - t0}


def restore(cfg, args):
    set_id, path, manifest = find_source(cfg, args.set, args.source, args.database)
    if args.database not in manifest["databases"]:
        raise SystemExit("database %s is not in set %s (it has: %s)"
                         % (args.database, set_id, ", ".join(sorted(manifest["databases"]))))
    info = manifest["databases"][args.database]
    # Opened before the switch to postgres: a set restic brought back below a root-only
    # directory is readable this way without loosening its permissions. pg_restore and psql
    # read them from stdin (a regular file: seekable, like a file argument).
    dump_file = open(os.path.join(path, info["file"]), "rb")
    roles_file = open(os.path.join(path, "roles.sql"), "rb") if args.roles else None
    become_postgres()
    target = args.as_name or args.database
    host, port = cfg["socket_dir"], cfg["port"]
    t0 = time.time()
    if roles_file:
        psql_file(cfg, None, host, port, stdin=roles_file)
    conn = connect(cfg, "postgres")
    conn.autocommit = True
    try:
        cur = conn.cursor()
        if target == args.database:
            log("dropping database %s (terminating its sessions)" % target)
            cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % target.replace('"', '""'))
        else:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target,))
            if cur.fetchone():
                raise SystemExit("database %s already exists; choose another --as name" % target)
            cur.execute('CREATE DATABASE "%s" OWNER "%s" TEMPLATE template0 ENCODING %%s LC_COLLATE %%s LC_CTYPE %%s'
                        % (target.replace('"', '""'), info["owner"].replace('"', '""')),
                        (info["encoding"], info["collate"], info["ctype"]))
    finally:
        conn.close()
    restore_argv = [binpath(cfg, "pg_restore"), "-h", host, "-p", str(port), "-U", "postgres", "--exit-on-error"]
    if target == args.database:
        run(restore_argv + ["--create", "-d", "postgres"], stdin=dump_file)
    else:
        run(restore_argv + ["-d", target], stdin=dump_file)
    dump_file.close()
    conn = connect(cfg, target)
    try:
        tables, rows = compare(info, table_counts(conn.cursor()), target)
    finally:
        conn.close()
    result = {"database": target, "set": set_id, "from": path, "tables": tables, "rows": rows,
              "seconds": round(time.time() - t0, 1)}
    log(json.dumps(result))
    return result


def pgbackrest(cfg, backup_type):
    stanza = cfg["pgbackrest_stanza"]
    run(["pgbackrest", "--stanza=" + stanza, "--type=" + backup_type, "--log-level-console=info", "backup"])
    info = json.loads(subprocess.run(["pgbackrest", "--stanza=" + stanza, "--output=json", "info"],
                                     check=True, capture_output=True, text=True).stdout)[0]
    backups = info.get("backup", [])
    newest = backups[-1] if backups else {}
    return {"type": backup_type, "label": newest.get("label", ""),
            "stop": newest.get("timestamp", {}).get("stop", 0),
            "repo_bytes": newest.get("info", {}).get("repository", {}).get("delta", 0),
            "backups": len(backups),
            "archive_max": (info.get("archive") or [{}])[-1].get("max", "")}


# ---------------------------------------------------------------------------------- metrics
def publish(cfg, job):
    """Write <textfile_dir>/selfhost_pg_backup_<job>.prom from the job's state (root, ExecStopPost)."""
    state = read_state(cfg, job)
    service_ok = os.environ.get("SERVICE_RESULT", "success") == "success"
    if state.get("result") == "running" or not service_ok:
        # Killed (timeout, OOM) before it could record its end: a failure all the same.
        if state.get("result") != "failed":
            state.update({"result": "failed", "last_end": time.time(),
                          "error": "service result %s" % os.environ.get("SERVICE_RESULT", "?")})
            write_state(cfg, job, state)
    name = job.replace("-", "_")
    label = '{job="%s"}' % job
    lines = []

    def metric(metric_name, help_text, value, labels=label):
        lines.append("# HELP selfhost_pg_backup_%s %s" % (metric_name, help_text))
        lines.append("# TYPE selfhost_pg_backup_%s gauge" % metric_name)
        lines.append("selfhost_pg_backup_%s%s %s" % (metric_name, labels, value))

    metric("last_run_success", "1 when the last run of the job succeeded.", 1 if state.get("result") == "success" else 0)
    metric("last_run_timestamp_seconds", "End of the last run.", int(state.get("last_end", 0)))
    metric("last_success_timestamp_seconds", "End of the last successful run.", int(state.get("last_success", 0)))
    metric("duration_seconds", "Duration of the last run.", round(state.get("duration", 0), 3))
    details = state.get("details", {}) if state.get("result") == "success" else {}
    if job == "dump" and details:
        metric("size_bytes", "Size of the newest backup set.", details["bytes"])
        metric("sets", "Complete backup sets kept locally.", details["sets_kept"])
        for db, size in sorted(details["databases"].items()):
            metric("database_size_bytes", "Size of the newest dump of a database.", size,
                   '{job="%s",database="%s"}' % (job, db))
    if job == "verify" and details:
        metric("verify_tables", "Tables checked by the last verification.", details["tables"])
        metric("verify_rows", "Rows checked by the last verification.", details["rows"])
        metric("verify_restore_seconds", "Time the last verification took to restore and check (RTO hint).",
               round(details["restore_seconds"], 3))
        metric("verify_set_timestamp_seconds", "Creation time of the set the last verification restored.",
               int(details["set_created"]))
    if job.startswith("pgbackrest") and details:
        metric("pgbackrest_backup_timestamp_seconds", "Stop time of the newest pgBackRest backup.", details["stop"])
        metric("pgbackrest_backups", "pgBackRest backups in the repository.", details["backups"])
    os.makedirs(cfg["textfile_dir"], exist_ok=True)
    target = os.path.join(cfg["textfile_dir"], "selfhost_pg_backup_%s.prom" % name)
    tmp = target + ".%d.tmp" % os.getpid()
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dump")
    sub.add_parser("list")
    p = sub.add_parser("verify")
    p.add_argument("--set", default="latest")
    p = sub.add_parser("restore")
    p.add_argument("--database", required=True)
    p.add_argument("--set", default="latest")
    p.add_argument("--as", dest="as_name", default="")
    p.add_argument("--from", dest="source", default="",
                   help="a directory of sets, a set's directory or its <db>.dump (default: the backup directory)")
    p.add_argument("--roles", action="store_true", help="replay roles.sql first (missing roles)")
    p = sub.add_parser("pgbackrest")
    p.add_argument("--type", choices=["full", "diff", "incr"], required=True)
    p = sub.add_parser("publish")
    p.add_argument("job", choices=JOBS)
    args = parser.parse_args()
    cfg = load_config()
    if args.command == "publish":
        publish(cfg, args.job)
    elif args.command == "list":
        for set_id in complete_sets(cfg):
            log(set_id)
    elif args.command == "dump":
        tracked(cfg, "dump", lambda: dump(cfg))
    elif args.command == "verify":
        tracked(cfg, "verify", lambda: verify(cfg, args.set))
    elif args.command == "restore":
        restore(cfg, args)
    elif args.command == "pgbackrest":
        job = "pgbackrest-full" if args.type == "full" else "pgbackrest-diff"
        tracked(cfg, job, lambda: pgbackrest(cfg, args.type))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as exc:
        print("failed: %s (exit %s)" % (" ".join(exc.cmd), exc.returncode), file=sys.stderr)
        sys.exit(1)
    except RuntimeError as exc:
        print("failed: %s" % exc, file=sys.stderr)
        sys.exit(1)
