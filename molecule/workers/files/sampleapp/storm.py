"""Storm test driver: a stream of tasks while every worker process is killed, plus broker restarts.

Run as root on the worker host, from the sample app's directory, with the venv's Python:

    cd /opt/celery/app && /opt/celery/venv/bin/python storm.py [options]

Broker-agnostic: tasks go to whatever broker the app is configured with (CELERY_BROKER_URL
from /etc/celery/celery.env, or --broker-url), the broker is restarted with --broker-restart
(any shell command). Each round streams --tasks `sampleapp.record` tasks at --rate per second
to --queue; during the stream, --kills times, EVERY process (main and pool children) of every
unit matching --units is sent SIGKILL in one sweep (systemd restarts them: Restart=on-failure), and
once (at 60 % of the stream) --broker-restart runs. A publish that fails (broker down) is
retried with the same token until it goes through (a duplicate it may cause is counted).

Each task appends its token to a file under --record-dir (which the workers must be able to
write: celery_writable_paths) after its work and before it returns, so after the stream:
  lost       = tokens published but never recorded,
  duplicated = tokens recorded more than once.
After the last round the driver waits until every token is recorded and nothing new was
recorded for --settle seconds (set it above visibility_timeout + the restore sweep, so that
redeliveries of killed workers' messages are seen) - on Redis also as soon as the queue and
the unacked hash are empty and nothing new came for 3 s - never longer than --max-wait
seconds ("settled": false then: the workers had not worked through the backlog, so the
counts are not a loss measurement).

Options (defaults):
  --rounds 5  --tasks 500  --rate 40  --kills 2  --task-seconds 0.02
  --up 10       a kill waits until every unit is active again and this many tasks were
                recorded since the previous kill (the workers consume again)
  --units 'celery-worker@*.service'      systemd unit pattern of the workers to kill
  --broker-restart 'systemctl restart redis-server'   ('' = no broker restart)
  --record-dir /srv/celery-storm         --queue default
  --settle 15  --max-wait 150  --broker-url URL (default: the app's)

Output: one JSON line, e.g.
  {"rounds": [{"round": 1, "sent": 500, "lost": 0, "duplicated": 1, "extra_runs": 1,
               "kills": 3, "kills_after_stream": 0, "killed_processes": 24,
               "broker_restarts": 1, "publish_retries": 4, "stream_seconds": 12.6}, ...],
   "sent": 2500, "lost": 0, "duplicated": 3, "lost_tokens": [], "where_lost": {...},
   "seconds": 150.2, "broker": "redis"}
`where_lost` (Redis brokers only) says for each lost token whether its message is still in
the queue list or in kombu's `unacked` hash (neither: it was taken off the queue by BRPOP and
died with the worker before it was recorded as unacknowledged). Exit status 0 whatever the
counts: the caller asserts on them.
"""
import argparse
import base64
import collections
import json
import os
import subprocess
import sys
import time

import labenv

ENV_FILE = "/etc/celery/celery.env"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--task-seconds", type=float, default=0.02)
    parser.add_argument("--up", type=int, default=10)
    parser.add_argument("--units", default="celery-worker@*.service")
    parser.add_argument("--broker-restart", default="systemctl restart redis-server")
    parser.add_argument("--record-dir", default="/srv/celery-storm")
    parser.add_argument("--queue", default="default")
    parser.add_argument("--settle", type=float, default=15.0)
    parser.add_argument("--max-wait", type=float, default=150.0)
    parser.add_argument("--broker-url", default="")
    return parser.parse_args(argv)


def units_matching(pattern):
    out = subprocess.run(["systemctl", "list-units", "--plain", "--no-legend", "--all", pattern],
                         capture_output=True, text=True, check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def unit_pids(unit):
    """Every process of the unit (main first), from its cgroup."""
    show = subprocess.run(["systemctl", "show", "-p", "MainPID", "-p", "ControlGroup", "--value", unit],
                          capture_output=True, text=True, check=False).stdout.split("\n")
    main = int(show[0] or 0)
    cgroup = show[1].strip() if len(show) > 1 else ""
    pids = []
    # cgroup v2, then the v1 hierarchies systemd keeps (hybrid hosts, containers).
    for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"):
        try:
            with open(root + cgroup + "/cgroup.procs", encoding="ascii") as handle:
                pids = [int(p) for p in handle.read().split()]
            break
        except OSError:
            continue
    return ([main] if main else []) + [p for p in pids if p != main]


def kill_all(units):
    """SIGKILL to every process of every unit, all gathered first, then killed in one sweep."""
    pids = [pid for unit in units for pid in unit_pids(unit)]
    killed = 0
    for pid in pids:
        try:
            os.kill(pid, 9)
            killed += 1
        except ProcessLookupError:
            pass
    return killed


def wait_active(units, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all_active(units):
            return True
        time.sleep(0.5)
    return False


def record_count(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().count(b"\n")
    except FileNotFoundError:
        return 0


def read_records(path):
    try:
        with open(path, encoding="ascii") as handle:
            return collections.Counter(line.strip() for line in handle if line.strip())
    except FileNotFoundError:
        return collections.Counter()


def publish(app, token, path, args):
    """Send one task; retry the same token while the broker is down (bounded)."""
    retries = 0
    deadline = time.monotonic() + 60
    while True:
        try:
            app.send_task("sampleapp.record", args=[token, path, args.task_seconds],
                          queue=args.queue, retry=True,
                          retry_policy={"max_retries": 2, "interval_start": 0.2,
                                        "interval_step": 0.2, "interval_max": 0.5})
            return retries
        except Exception:  # noqa: BLE001  (broker restarting: try again)
            retries += 1
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def all_active(units):
    states = subprocess.run(["systemctl", "is-active"] + units, capture_output=True,
                            text=True, check=False).stdout.split()
    return bool(states) and all(state == "active" for state in states)


def storm_round(app, number, path, units, args):
    """One round: the stream, with --kills kills of every worker process and one broker restart.

    A kill is due at each 1/(kills+1) of the stream, and happens as soon as every unit is
    active and --up tasks were recorded since the previous kill (a kill of workers still
    starting proves nothing); kills still due when the stream ends happen after it, while
    the backlog runs (at most 120 s).
    """
    kill_marks = [int(args.tasks * (k + 1) / (args.kills + 1)) for k in range(args.kills)]
    restart_mark = int(args.tasks * 0.6) if args.broker_restart else -1
    stats = {"round": number, "sent": 0, "kills": 0, "kills_after_stream": 0,
             "killed_processes": 0, "broker_restarts": 0, "publish_retries": 0}
    tokens = []
    state = {"checked": 0.0, "records_at_kill": record_count(path)}

    def maybe_kill():
        # Due, and the workers are back: every unit active, and --up tasks recorded since
        # the last kill (they consume again; killing workers still starting proves nothing).
        now = time.monotonic()
        if now - state["checked"] < 0.25:
            return False
        state["checked"] = now
        if record_count(path) - state["records_at_kill"] < args.up or not all_active(units):
            return False
        stats["killed_processes"] += kill_all(units)
        stats["kills"] += 1
        state["records_at_kill"] = record_count(path)
        return True

    start = time.monotonic()
    for i in range(args.tasks):
        delay = start + i / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if kill_marks and i >= kill_marks[0] and maybe_kill():
            kill_marks.pop(0)
        if i == restart_mark:
            subprocess.run(args.broker_restart, shell=True, check=False,  # noqa: S602 (operator's command)
                           capture_output=True)
            stats["broker_restarts"] += 1
        token = "r%d-%d" % (number, i)
        stats["publish_retries"] += publish(app, token, path, args)
        tokens.append(token)
        stats["sent"] += 1
    stats["stream_seconds"] = round(time.monotonic() - start, 1)
    deadline = time.monotonic() + 120
    while kill_marks and time.monotonic() < deadline:
        if maybe_kill():
            kill_marks.pop(0)
            stats["kills_after_stream"] += 1
        time.sleep(0.05)
    return stats, tokens


def redis_pending(broker_url, queue):
    """Messages a Redis broker still holds for the queue: its lists and the unacked hash."""
    import redis  # the Redis transport's client, present with celery[redis]

    client = redis.Redis.from_url(broker_url)
    try:
        names = [k for k in client.scan_iter(match=queue + "*", count=1000) if client.type(k) == b"list"]
        return sum(client.llen(k) for k in names) + client.hlen("unacked")
    except redis.RedisError:
        return -1


def redis_where(broker_url, queue, lost):
    """Where each lost token's message is in a Redis broker (queue list, unacked hash, nowhere)."""
    import redis  # the Redis transport's client, present with celery[redis]

    client = redis.Redis.from_url(broker_url)
    where = {token: "nowhere (taken off the queue, never recorded as unacked)" for token in lost}

    def tokens_in(raw):
        try:
            payload = json.loads(raw)
            if isinstance(payload, list):  # unacked hash values: [message, exchange, routing_key]
                payload = payload[0]
            body = base64.b64decode(payload["body"]).decode()
        except (ValueError, KeyError, TypeError):
            return []
        return [t for t in lost if '"%s"' % t in body]

    names = [k.decode() for k in client.scan_iter(match=queue + "*", count=1000)]
    for name in names:
        if client.type(name) == b"list":
            for raw in client.lrange(name, 0, -1):
                for token in tokens_in(raw):
                    where[token] = "in queue list %s" % name
    for raw in client.hvals("unacked"):
        for token in tokens_in(raw):
            where[token] = "in the unacked hash"
    return where


def main(argv):
    args = parse_args(argv)
    labenv.load_env(ENV_FILE, override=False)
    if args.broker_url:
        os.environ["CELERY_BROKER_URL"] = args.broker_url
    import sampleapp  # noqa: E402  (needs the environment first)

    app = sampleapp.app
    broker_url = args.broker_url or app.conf.broker_url or os.environ.get("CELERY_BROKER_URL", "")
    units = units_matching(args.units)
    if not units:
        sys.exit("storm: no unit matches %s" % args.units)
    path = os.path.join(args.record_dir, "storm-%d.log" % int(time.time()))
    began = time.monotonic()
    rounds, tokens = [], []
    for number in range(1, args.rounds + 1):
        stats, sent = storm_round(app, number, path, units, args)
        rounds.append(stats)
        tokens.extend(sent)
        # Each round starts with the workers back (they were killed during the last one).
        wait_active(units, 30)
    # Settle, at most --max-wait: every token recorded and nothing new for --settle seconds
    # (late duplicates); or, on Redis, nothing left in the queue or the unacked hash (nothing
    # can come back any more) and nothing new for 3 s; on other brokers nothing new for --settle.
    pending = redis_pending if broker_url.startswith(("redis://", "rediss://")) else None
    deadline = time.monotonic() + args.max_wait
    last_total, last_change, settled = -1, time.monotonic(), False
    while time.monotonic() < deadline:
        records = read_records(path)
        total = sum(records.values())
        if total != last_total:
            last_total, last_change = total, time.monotonic()
        quiet = time.monotonic() - last_change
        if all(records[t] for t in tokens) and quiet >= args.settle:
            settled = True
        elif pending is not None and quiet >= 3 and pending(broker_url, args.queue) == 0:
            settled = True
        elif pending is None and quiet >= args.settle:
            settled = True
        if settled:
            break
        time.sleep(0.5)
    records = read_records(path)
    lost = [t for t in tokens if records[t] == 0]
    for stats in rounds:
        prefix = "r%d-" % stats["round"]
        mine = [t for t in tokens if t.startswith(prefix)]
        stats["lost"] = sum(1 for t in mine if records[t] == 0)
        stats["duplicated"] = sum(1 for t in mine if records[t] > 1)
        stats["extra_runs"] = sum(records[t] - 1 for t in mine if records[t] > 1)
    report = {
        "rounds": rounds, "sent": len(tokens), "lost": len(lost),
        "duplicated": sum(s["duplicated"] for s in rounds), "lost_tokens": lost[:50],
        "seconds": round(time.monotonic() - began, 1), "broker": broker_url.split(":", 1)[0],
        "units": units, "record_file": path, "settled": settled,
    }
    if lost and broker_url.startswith(("redis://", "rediss://")):
        try:
            report["where_lost"] = redis_where(broker_url, args.queue, lost[:50])
        except Exception as exc:  # noqa: BLE001  (diagnostics only)
            report["where_lost"] = "not read: %s" % exc
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
