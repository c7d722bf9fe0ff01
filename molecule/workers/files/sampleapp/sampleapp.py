"""Sample Celery application for the molecule/workers scenario.

The broker URL, result backend and the safe defaults (acks_late, reject_on_worker_lost,
visibility_timeout) come from the role: the environment file and the settings module
loaded through CELERY_CONFIG_MODULE. The app only names its queue and its tasks.
"""
import os
import time

from celery import Celery

app = Celery("sampleapp")
app.conf.update(
    task_default_queue="default",
    result_expires=3600,
    beat_schedule={"tick": {"task": "sampleapp.tick", "schedule": 2.0}},
)

BEAT_KEY = "sampleapp:beat_ticks"
STARTED_KEY = "sampleapp:started"


@app.task
def quick(sent):
    """The 0.1 s task of the latency test: returns when it was sent, started, finished."""
    started = time.time()
    time.sleep(0.1)
    return {"sent": sent, "started": started, "finished": time.time()}


@app.task
def slow(token, seconds):
    """A long task: records each start (a redelivered task starts twice), then sleeps."""
    app.backend.client.rpush(STARTED_KEY, token)
    time.sleep(seconds)
    return token


@app.task
def tick():
    """Scheduled by beat every 2 s: counts its runs."""
    app.backend.client.incr(BEAT_KEY)


@app.task(ignore_result=True)
def record(token, path, seconds=0.0):
    """The storm test's task (storm.py): works `seconds`, then appends its token to `path`.

    One line per completed run, written with O_APPEND and fsync'ed before the task returns
    (and so before it is acknowledged): a task never completed has no line, a task run
    twice has two. `path` must be writable by the workers (celery_writable_paths).
    """
    if seconds:
        time.sleep(seconds)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (token + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


@app.task
def try_write(path):
    """Writes a file at `path` from inside the worker's sandbox: where may tasks write?"""
    try:
        with open(path, "w", encoding="ascii") as handle:
            handle.write("written by a task\n")
    except OSError as exc:
        return {"written": False, "error": "%s: %s" % (type(exc).__name__, exc.strerror)}
    return {"written": True, "error": ""}
