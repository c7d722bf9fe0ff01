"""Behaviour of selfhost.platform.rabbitmq as the broker of selfhost.platform.celery on one lab host.

The workers scenario's sample app runs in pool "default" (2 instances x 2 processes) against
amqp://celery@127.0.0.1:5672/celery. storm.py (shipped with the sample app) streams tasks
while every worker process is killed with SIGKILL and the broker restarts; the figures are
printed (pytest -s shows them).
"""

import json
import socket
import textwrap

import pytest

from labtest import bridge_address

PASSWORD = "lab-rabbitmq-password-0123456789"
APP = "/opt/celery/app"
PY = "/opt/celery/venv/bin/python"
VALIDATE = "/usr/local/libexec/selfhost/rabbitmq-validate"

# Connects with py-amqp (kombu's transport, in the app's venv) and prints "ok" or the error.
AMQP_LOGIN = textwrap.dedent("""
    import sys, amqp
    user, password, vhost = sys.argv[1:4]
    conn = amqp.Connection("127.0.0.1:5672", userid=user, password=password, virtual_host=vhost,
                           connect_timeout=10)
    try:
        conn.connect()
        conn.channel().close()
        print("ok")
    except Exception as exc:
        print("refused: %s %s" % (type(exc).__name__, exc))
""")


def _ip(host):
    return bridge_address(host.backend.get_hostname())


def _login(host, user, password, vhost="celery"):
    return host.check_output("%s -c %s %s %s %s", PY, AMQP_LOGIN, user, password, vhost)


def _listening(host, port):
    return sorted(line.split()[3] for line in host.check_output("ss -Htln 'sport = :%d'" % port).splitlines())


def _status(host):
    return json.loads(host.check_output("rabbitmq-diagnostics --quiet status --formatter json"))


# --- Network -----------------------------------------------------------------------------

def test_amqp_listens_on_loopback_only(host):
    assert _listening(host, 5672) == ["127.0.0.1:5672"]
    with pytest.raises(OSError):
        socket.create_connection((_ip(host), 5672), timeout=3).close()


def test_distribution_and_epmd_on_loopback_management_off(host):
    # Whoever reaches the distribution port with the cookie controls the node.
    assert _listening(host, 25672) == ["127.0.0.1:25672"]
    assert _listening(host, 4369) == ["127.0.0.1:4369"]
    assert _listening(host, 15672) == []
    assert host.file("/etc/rabbitmq/enabled_plugins").content_string.strip() == "[]."
    for port in (25672, 4369):
        with pytest.raises(OSError):
            socket.create_connection((_ip(host), port), timeout=3).close()


# --- Users ---------------------------------------------------------------------------------

def test_guest_is_removed_and_refused(host):
    users = json.loads(host.check_output("rabbitmqctl --quiet list_users --formatter json"))
    assert [u["user"] for u in users] == ["celery"]
    assert _login(host, "guest", "guest", "/").startswith("refused: AccessRefused")


def test_app_user_authenticates_wrong_password_refused(host):
    assert _login(host, "celery", PASSWORD) == "ok"
    assert _login(host, "celery", PASSWORD + "x").startswith("refused: AccessRefused")


def test_app_user_is_confined_to_its_vhost(host):
    perms = json.loads(host.check_output("rabbitmqctl --quiet list_user_permissions celery --formatter json"))
    assert perms == [{"vhost": "celery", "configure": ".*", "write": ".*", "read": ".*"}]
    assert _login(host, "celery", PASSWORD, "/").startswith("refused:")


# --- Configuration -------------------------------------------------------------------------

def test_files_owned_right(host):
    for path in ("/etc/rabbitmq/rabbitmq.conf", "/etc/rabbitmq/rabbitmq-env.conf",
                 "/etc/rabbitmq/enabled_plugins"):
        f = host.file(path)
        assert (f.mode, f.user, f.group) == (0o640, "root", "rabbitmq"), path
    cookie = host.file("/var/lib/rabbitmq/.erlang.cookie")
    assert (cookie.mode, cookie.user, cookie.group) == (0o400, "rabbitmq", "rabbitmq")


def test_alarms_set_and_quiet(host):
    status = _status(host)
    assert status["vm_memory_high_watermark_setting"] == {"relative": 0.4}
    assert status["disk_free_limit"] == 2000000000
    assert status["alarms"] == []
    print("\nRabbitMQ %s, alarms %s" % (status["rabbitmq_version"], status["alarms"]))


def test_config_check_refuses_a_bad_file(host):
    assert host.run("%s /etc/rabbitmq/rabbitmq.conf", VALIDATE).rc == 0
    host.run("printf 'listeners.tcp.1 = 127.0.0.1:5672\\nvm_memory_high_watermark.relative = lots\\n"
             "no_such_key = 1\\n' > /root/bad-rabbitmq.conf")
    out = host.run("%s /root/bad-rabbitmq.conf", VALIDATE)
    host.run("rm -f /root/bad-rabbitmq.conf")
    assert out.rc == 1
    assert "unknown variable: no_such_key" in out.stderr
    assert "vm_memory_high_watermark.relative" in out.stderr
    # A plugin that is not installed would stop the node at boot: refused as well.
    assert host.run("%s /etc/rabbitmq/rabbitmq.conf rabbitmq_no_such_plugin", VALIDATE).rc == 1


# --- Queues ----------------------------------------------------------------------------------

def test_vhost_default_queue_type_is_quorum(host):
    vhosts = json.loads(host.check_output(
        "rabbitmqctl --quiet list_vhosts name default_queue_type --formatter json"))
    assert {"name": "celery", "default_queue_type": "quorum"} in vhosts
    # A durable queue declared without x-queue-type (any client, not only Celery) is quorum.
    script = textwrap.dedent("""
        import sys, amqp
        conn = amqp.Connection("127.0.0.1:5672", userid="celery", password=sys.argv[1], virtual_host="celery")
        conn.connect()
        conn.channel().queue_declare("selfhost-test-untyped", durable=True, auto_delete=False)
        conn.close()
    """)
    host.check_output("%s -c %s %s", PY, script, PASSWORD)
    queues = json.loads(host.check_output(
        "rabbitmqctl --quiet list_queues -p celery name type durable --formatter json"))
    host.run("rabbitmqctl --quiet delete_queue -p celery selfhost-test-untyped")
    assert {"name": "selfhost-test-untyped", "type": "quorum", "durable": True} in queues


def test_a_task_runs_through_a_quorum_queue(host):
    script = textwrap.dedent("""
        import json, time
        import loadtest  # loads /etc/celery/celery.env like the workers
        import sampleapp
        result = sampleapp.quick.delay(time.time()).get(timeout=60)
        conf = sampleapp.app.conf
        print(json.dumps({"result": result, "confirm_publish": conf.broker_transport_options.get("confirm_publish"),
                          "queue_type": conf.task_default_queue_type}))
    """)
    out = json.loads(host.check_output("cd %s && %s -c %s", APP, PY, script).splitlines()[-1])
    print("\ntask result %s" % out)
    assert out["result"]["finished"] >= out["result"]["started"]
    # The producer publishes with confirms and declares quorum queues (settings module).
    assert out["confirm_publish"] is True and out["queue_type"] == "quorum"
    queues = json.loads(host.check_output(
        "rabbitmqctl --quiet list_queues -p celery name type durable consumers --formatter json"))
    default = [q for q in queues if q["name"] == "default"]
    assert default and default[0]["type"] == "quorum" and default[0]["durable"], queues
    assert default[0]["consumers"] >= 2


def test_health_check_pings_every_worker(host):
    out = host.run("systemctl start celery-healthcheck.service")
    assert out.rc == 0, host.run("journalctl -u celery-healthcheck --no-pager -n 20").stdout


# --- Zero task loss under kill -9 and broker restarts ------------------------------------

def test_storm_loses_no_task(host):
    # 5 rounds of 500 tasks at 40/s; in each, every worker process (main and pool children)
    # is killed with SIGKILL 3 times and rabbitmq-server restarts once (--no-block: tasks
    # are published while it stops and starts, each retried until the broker confirms it).
    out = host.run(
        "cd %s && timeout 1500 %s storm.py --rounds 5 --tasks 500 --rate 40 --kills 3 "
        "--units 'celery-worker@*.service' --record-dir /srv/celery-storm --queue default "
        "--broker-restart 'systemctl --no-block restart rabbitmq-server' --settle 15 --max-wait 300",
        APP, PY)
    assert out.rc == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    print("\nstorm (rabbitmq, quorum queues, publisher confirms):")
    for r in report["rounds"]:
        print("  round %(round)d: sent %(sent)d, lost %(lost)d, duplicated %(duplicated)d "
              "(extra runs %(extra_runs)d), kills %(kills)d (%(kills_after_stream)d after the stream, "
              "%(killed_processes)d processes), broker restarts %(broker_restarts)d, "
              "publish retries %(publish_retries)d, stream %(stream_seconds)s s" % r)
    print("  total: sent %d, lost %d, duplicated %d, %s s, settled %s"
          % (report["sent"], report["lost"], report["duplicated"], report["seconds"], report["settled"]))
    assert len(report["rounds"]) == 5 and all(r["sent"] == 500 for r in report["rounds"])
    assert all(r["kills"] >= 1 and r["broker_restarts"] == 1 for r in report["rounds"])
    assert report["lost"] == 0, report["lost_tokens"]
