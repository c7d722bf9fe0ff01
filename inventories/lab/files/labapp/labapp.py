"""The lab's Celery application: one task that says which worker host ran it.

Broker and result backend come from the celery role's environment file (the inventory's
celery_broker_url, built from the brokers group).
"""
import socket

from celery import Celery

app = Celery("labapp")
app.conf.task_default_queue = "default"


@app.task
def where(token):
    """Return the token with the name of the host whose worker ran the task."""
    return {"token": token, "host": socket.gethostname()}
