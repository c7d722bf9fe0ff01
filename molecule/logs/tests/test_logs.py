"""Central logs the journal way (molecule/logs): logs-client's journal reaches logs-host through
stunnel and systemd-journal-remote, only with a certificate of logs-host's CA, and nothing logged
while the uploader or the log host was down is lost. Traffic goes only to these two containers."""

import json
import os
import socket
import time
import uuid

import pytest
import testinfra

from labtest import bridge_address

DISTRO = os.environ.get("LAB_DISTRO", "debian12")
SERVER = "logs-host-%s" % DISTRO
CLIENT = "logs-client-%s" % DISTRO
REMOTE_DIR = "/var/log/journal/remote"
PORT = 19532


@pytest.fixture(scope="module")
def server():
    return testinfra.get_host("docker://%s" % SERVER)


@pytest.fixture(scope="module")
def client():
    return testinfra.get_host("docker://%s" % CLIENT)


def received(server, token):
    """The MESSAGE of every entry from the client on the log host that contains token."""
    out = server.run("journalctl -D %s _HOSTNAME=%s --no-pager -o json --output-fields=MESSAGE -g %s"
                     % (REMOTE_DIR, CLIENT, token))
    return [json.loads(line)["MESSAGE"] for line in out.stdout.splitlines() if line.strip()]


def wait_for(server, token, count, timeout):
    """Seconds until count entries with token were received, and those entries; or fail naming
    what arrived."""
    start = time.monotonic()
    found = []
    while time.monotonic() - start < timeout:
        found = received(server, token)
        if len(found) >= count:
            return time.monotonic() - start, found
        time.sleep(1)
    pytest.fail("%d of %d lines with %s reached the log host within %d s" % (len(found), count, token, timeout))


def log_lines(client, token, count):
    client.check_output("for i in $(seq 1 %d); do logger -t selfhost-logs-test \"%s line $i\"; done" % (count, token))


def test_a_line_logged_on_the_client_is_found_on_the_log_host(server, client):
    token = "t" + uuid.uuid4().hex
    log_lines(client, token, 1)
    seconds, _lines = wait_for(server, token, 1, 60)
    print("\n[logs] one line reached the log host in %.1f s" % seconds)


def test_killing_the_uploader_loses_nothing_logged_meanwhile(server, client):
    """kill -9 of systemd-journal-upload, 50 lines logged while it is dead; once systemd restarted it
    (journal_upload_retry_interval), its saved cursor makes it send every one of them."""
    token = "k" + uuid.uuid4().hex
    restarts = int(client.check_output("systemctl show -P NRestarts systemd-journal-upload.service"))
    client.check_output("systemctl kill --signal=KILL systemd-journal-upload.service")
    log_lines(client, token, 50)
    seconds, lines = wait_for(server, token, 50, 90)
    assert int(client.check_output("systemctl show -P NRestarts systemd-journal-upload.service")) > restarts
    assert sorted(set(lines)) == sorted("%s line %d" % (token, i) for i in range(1, 51)), lines
    print("\n[logs] 50 lines logged while the uploader was killed arrived %.1f s later (%d received)"
          % (seconds, len(lines)))


def test_lines_logged_while_the_log_host_is_away_arrive_when_it_is_back(server, client):
    token = "a" + uuid.uuid4().hex
    server.check_output("systemctl stop stunnel@journal-remote.service")
    try:
        log_lines(client, token, 20)
        time.sleep(5)  # the uploader fails meanwhile and keeps retrying
        assert received(server, token) == []
    finally:
        server.check_output("systemctl start stunnel@journal-remote.service")
    seconds, _lines = wait_for(server, token, 20, 90)
    print("\n[logs] 20 lines logged during a log host outage arrived %.1f s after it came back" % seconds)


CONNECT = """
import ssl, socket, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
if len(sys.argv) > 3:
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
try:
    with socket.create_connection((sys.argv[1], %d), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=sys.argv[1]) as tls:
            tls.sendall(b"POST /upload HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/vnd.fdo.journal\\r\\n"
                        b"Content-Length: 0\\r\\n\\r\\n")
            print(tls.recv(200).decode(errors="replace").split("\\r\\n")[0])
except (ssl.SSLError, OSError) as exc:
    print("refused: %%r" %% exc)
""" % PORT


def connect_from_client(client, *files):
    return client.check_output("python3 /tmp/connect.py %s %s" % (bridge_address(SERVER), " ".join(files)))


def test_a_client_without_a_certificate_of_the_ca_is_refused(client):
    ca = "/etc/selfhost/journal-upload/ca.pem"
    client.check_output("cat > /tmp/connect.py <<'EOF'\n%s\nEOF" % CONNECT)
    client.check_output("cd /tmp && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
                        "-subj /CN=%s -keyout rogue.key -out rogue.pem 2>/dev/null" % CLIENT)
    without = connect_from_client(client, ca)
    rogue = connect_from_client(client, ca, "/tmp/rogue.pem", "/tmp/rogue.key")
    valid = connect_from_client(client, ca, "/etc/selfhost/journal-upload/client.pem",
                                "/etc/selfhost/journal-upload/client.key")
    assert without.startswith("refused"), without
    assert rogue.startswith("refused"), rogue
    # The same request with the host's own certificate gets an HTTP answer from journal-remote.
    assert valid.startswith("HTTP/1.1"), valid


def test_the_upload_port_is_closed_to_a_host_outside_the_fleet(server):
    """The controller (the lab bridge's gateway) is not an uploading host: UFW drops it."""
    with pytest.raises(OSError):
        socket.create_connection((bridge_address(SERVER), PORT), timeout=3).close()
    assert "journal_remote" in server.check_output("ufw status")


def test_journal_remote_listens_on_loopback_only_behind_stunnel(server):
    listeners = server.check_output("ss -Htln")
    assert "127.0.0.1:19531" in listeners
    assert "0.0.0.0:19531" not in listeners and "*:19531" not in listeners
    assert "%s:%d" % (bridge_address(SERVER), PORT) in listeners


def test_keys_are_readable_only_by_their_service(server, client):
    assert server.file("/etc/selfhost/journal-ca").mode == 0o700
    assert server.file("/etc/selfhost/journal-ca/ca.key").mode == 0o600
    key = client.file("/etc/selfhost/journal-upload/client.key")
    assert (key.user, key.group, key.mode) == ("root", "systemd-journal-upload", 0o640)
    stunnel_key = server.file("/etc/stunnel/journal-remote/server.key")
    assert (stunnel_key.group, stunnel_key.mode) == ("stunnel4", 0o640)
    assert server.file("/etc/selfhost/journal-ca/issued/%s.pem" % CLIENT).exists


def test_the_last_entry_metric_names_the_client_with_a_recent_time(server, client):
    client.check_output("logger -t selfhost-logs-test metric-probe")
    time.sleep(3)
    server.check_output("systemctl start selfhost-journal-age.service")
    metrics = server.check_output("cat /var/lib/prometheus/node-exporter/selfhost_journal_remote.prom")
    line = [entry for entry in metrics.splitlines() if 'sender="%s"' % CLIENT in entry]
    assert line, metrics
    assert time.time() - float(line[0].split()[-1]) < 120, line


def test_the_retention_run_succeeds(server):
    server.check_output("systemctl start selfhost-journal-vacuum.service")
    assert server.service("selfhost-journal-vacuum.timer").is_enabled


def test_the_client_logs_a_heartbeat(client):
    assert client.service("selfhost-journal-heartbeat.timer").is_enabled
    client.check_output("systemctl start selfhost-journal-heartbeat.service")
    assert "heartbeat: this journal is sent to https://" in client.check_output(
        "journalctl -u selfhost-journal-heartbeat.service -n 5 --no-pager")
