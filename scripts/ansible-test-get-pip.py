"""Offline stand-in for ansible-test's pip bootstrap script.

ansible-test bootstraps pip into each sanity virtualenv with a get-pip script it
downloads from a host this lab cannot reach; it documents saving the script by hand
to ~/.ansible/test/cache/get_pip_<version>.py instead. scripts/sanity.sh puts this file
there: it runs the pip wheel bundled with Python's ensurepip to install the exact
packages ansible-test asks for (pip==<version> first), from the configured index.
"""
import glob
import os
import subprocess
import sys
import ensurepip

bundled = sorted(glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl")))
if not bundled:
    sys.exit("ensurepip has no bundled pip wheel: cannot bootstrap pip offline")
env = dict(os.environ)
# ansible-test runs this with a reduced environment: keep the machine's CA bundle.
if os.path.exists("/etc/ssl/certs/ca-certificates.crt"):
    env.setdefault("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt")
# get-pip.py's own flags that pip install does not know.
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
cmd = [sys.executable, os.path.join(bundled[-1], "pip"), "install", "--no-compile"] + args
sys.exit(subprocess.call(cmd, env=env))
