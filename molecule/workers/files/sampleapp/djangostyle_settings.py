"""Settings of the Django-style sample app (djangostyle.py), as a Django project's settings.py
would hold them: CELERY_-prefixed, read with config_from_object(..., namespace="CELERY").

They deliberately contradict the role's guarantees (acks_late off, no requeue of a task whose
process died, a different visibility timeout): the workers must still run with the role's.
"""
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 8
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 7200, "max_connections": 20}
CELERY_TASK_DEFAULT_QUEUE = "django"
