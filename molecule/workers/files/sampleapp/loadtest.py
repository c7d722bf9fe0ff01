"""Drivers of the molecule/workers tests, run as root on the lab host.

    python loadtest.py latency N RATE       N quick tasks at RATE per second
    python loadtest.py kill N SECONDS UNIT  N slow tasks, kill -9 of UNIT's main process
    python loadtest.py rolling N RATE UNIT...  a stream of N quick tasks, units restarted
                                            one after the other while it runs
Each prints one JSON line with the counts and timings.
"""
import json
import os
import subprocess
import sys
import time

import labenv

labenv.load_env()
import sampleapp  # noqa: E402  (needs the environment first)


def percentile(values, pct):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100.0 * len(ordered) + 0.5)) - 1)]


def send_quick(count, rate, during=None):
    results = []
    start = time.time()
    for i in range(count):
        delay = start + i / float(rate) - time.time()
        if delay > 0:
            time.sleep(delay)
        results.append(sampleapp.quick.delay(time.time()))
        if during is not None:
            during(i)
    return results


def collect(results, timeout):
    deadline = time.time() + timeout
    done, failed = [], 0
    for res in results:
        try:
            done.append(res.get(timeout=max(1, deadline - time.time())))
        except Exception:  # noqa: BLE001  (a lost or failed task is counted, not raised)
            failed += 1
    return done, failed


def latency(count, rate):
    results = send_quick(count, rate)
    done, failed = collect(results, 120)
    e2e = [d["finished"] - d["sent"] for d in done]
    run = [d["finished"] - d["started"] for d in done]
    return {
        "sent": count, "completed": len(done), "failed": failed, "rate": rate,
        "latency_p50": round(percentile(e2e, 50), 3), "latency_p95": round(percentile(e2e, 95), 3),
        "latency_max": round(max(e2e), 3), "runtime_p95": round(percentile(run, 95), 3),
    }


def main_pid(unit):
    out = subprocess.check_output(["systemctl", "show", "-p", "MainPID", "--value", unit], text=True)
    return int(out.strip())


def kill(count, seconds, unit):
    client = sampleapp.app.backend.client
    client.delete(sampleapp.STARTED_KEY)
    tokens = ["t%d" % i for i in range(count)]
    results = [sampleapp.slow.delay(t, seconds) for t in tokens]
    deadline = time.time() + 30
    victim = main_pid(unit)
    # Wait until the victim is running some of them, then kill it without warning.
    while time.time() < deadline and client.llen(sampleapp.STARTED_KEY) < 3:
        time.sleep(0.2)
    started_before = client.llen(sampleapp.STARTED_KEY)
    os.kill(victim, 9)
    killed_at = time.time()
    done, failed = collect(results, 120)
    starts = [s.decode() for s in client.lrange(sampleapp.STARTED_KEY, 0, -1)]
    return {
        "sent": count, "completed": len(done), "failed": failed, "victim_pid": victim,
        "started_before_kill": started_before, "starts": len(starts),
        "redelivered": len(starts) - len(set(starts)), "complete_set": sorted(done) == sorted(tokens),
        "seconds_after_kill": round(time.time() - killed_at, 1), "new_pid": main_pid(unit),
    }


def rolling(count, rate, units):
    marks = {int(count * (k + 1) / (len(units) + 1)): u for k, u in enumerate(units)}
    restarted = []

    def during(i):
        if i in marks:
            subprocess.check_call(["systemctl", "restart", marks[i]])
            restarted.append(marks[i])

    results = send_quick(count, rate, during)
    done, failed = collect(results, 120)
    return {"sent": count, "completed": len(done), "failed": failed, "restarted": restarted}


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "latency":
        report = latency(int(sys.argv[2]), float(sys.argv[3]))
    elif mode == "kill":
        report = kill(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
    elif mode == "rolling":
        report = rolling(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:])
    else:
        sys.exit(__doc__)
    print(json.dumps(report))
