"""The workers' environment for the lab's test scripts (loadtest.py, storm.py): the variables of
the role's environment file (/etc/celery/celery.env) and its PYTHONPATH, so that a script run
from the application directory sends to the same broker, with the same app, as the workers."""

import os
import sys

ENV_FILE = "/etc/celery/celery.env"


def load_env(path=ENV_FILE, override=True):
    """Put the file's KEY=value lines into os.environ (override=False keeps values already set, so
    that a command-line option exported before wins) and its PYTHONPATH in front of sys.path."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                if override or key not in os.environ:
                    os.environ[key] = value.strip('"')
    sys.path[:0] = [entry for entry in os.environ.get("PYTHONPATH", "").split(":") if entry]
