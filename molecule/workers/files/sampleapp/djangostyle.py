"""A Django-style Celery app for the molecule/workers scenario (pool "django").

It loads its configuration the way Django projects do - config_from_object of a settings
module with namespace="CELERY" - so it never reads CELERY_CONFIG_MODULE, and its settings
(djangostyle_settings.py) contradict the role's. The tests check that its workers run with
the role's settings anyway (celery inspect conf, and what a task sees).

With SAMPLEAPP_ACKS_LATE=off in a worker's environment, the app turns acks_late off again
once the worker is up (its own signal handler, after the role's settings): the health
check must then fail naming task_acks_late.
"""
import os

from celery import Celery
from celery.signals import worker_init

app = Celery("djangostyle")
app.config_from_object("djangostyle_settings", namespace="CELERY")


@worker_init.connect
def _break_guarantees(**_):
    if os.environ.get("SAMPLEAPP_ACKS_LATE") == "off":
        app.conf.task_acks_late = False


@app.task(bind=True)
def settings_seen(self):
    """What the worker running this task applies to it."""
    conf = self.app.conf
    return {
        "acks_late": self.acks_late,
        "reject_on_worker_lost": self.reject_on_worker_lost,
        "visibility_timeout": conf.broker_transport_options.get("visibility_timeout"),
        "max_connections": conf.broker_transport_options.get("max_connections"),
    }
