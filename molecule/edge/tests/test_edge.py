"""Behaviour of selfhost.platform.nginx + selfhost.platform.certbot on the lab host.

Every request runs inside the lab host (testinfra host.run with curl / openssl) against
127.0.0.1, where edge.test resolves; Pebble, the ACME server, runs there too (prepare.yml).
side_effect.yml has already rotated and retired the JWT key, toggled read-only mode and
tried a broken vhost.
"""

import json
import re
import time

import pytest

RESOLVE = "--resolve edge.test:443:127.0.0.1 --resolve edge.test:80:127.0.0.1"
PRIVATE = "/etc/selfhost/jwt/private.pem"


def _curl(host, args):
    return host.run("curl -sk %s %s" % (RESOLVE, args))


def _status(host, args):
    out = _curl(host, "-o /dev/null -w '%%{http_code}' %s" % args)
    return out.stdout.strip()


def _headers(host, url):
    out = _curl(host, "-o /dev/null -D - %s" % url)
    assert out.rc == 0, out.stderr
    headers = {}
    for line in out.stdout.splitlines()[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    return headers


def _served_cert(host, extra="-servername edge.test"):
    return host.run(
        "openssl s_client -connect 127.0.0.1:443 %s </dev/null 2>/dev/null"
        " | openssl x509 -noout -issuer -serial" % extra
    )


def _token(host, key, claims):
    return host.check_output("mint-jwt %s %s", key, json.dumps(claims))


def test_nginx_running_and_config_valid(host):
    assert host.service("nginx").is_running
    assert host.service("nginx").is_enabled
    assert host.run("nginx -t").rc == 0


def test_served_certificate_is_issued_by_pebble(host):
    out = _served_cert(host)
    assert out.rc == 0
    assert "Pebble Intermediate CA" in out.stdout
    link = host.file("/etc/ssl/selfhost/edge/fullchain.pem")
    assert link.is_symlink
    assert link.linked_to.startswith("/etc/letsencrypt/")


@pytest.mark.parametrize("proto", ["-tls1", "-tls1_1"])
def test_old_tls_versions_refused(host, proto):
    # SECLEVEL=0 makes the client willing to speak them: the refusal is the server's.
    out = host.run(
        "openssl s_client -connect 127.0.0.1:443 -servername edge.test %s"
        " -cipher 'DEFAULT:@SECLEVEL=0' </dev/null", proto
    )
    assert out.rc != 0
    assert "Cipher is (NONE)" in out.stdout or "alert" in out.stderr.lower()


@pytest.mark.parametrize("proto,name", [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")])
def test_current_tls_versions_accepted(host, proto, name):
    out = host.run(
        "openssl s_client -connect 127.0.0.1:443 -servername edge.test %s </dev/null", proto
    )
    assert out.rc == 0, out.stderr
    assert "Protocol  : %s" % name in out.stdout or "New, %s" % name in out.stdout


def test_no_dhe_suites(host):
    out = host.run(
        "openssl s_client -connect 127.0.0.1:443 -servername edge.test -tls1_2"
        " -cipher 'DHE-RSA-AES128-GCM-SHA256' </dev/null"
    )
    assert out.rc != 0


def test_security_headers(host):
    headers = _headers(host, "https://edge.test/healthz")
    assert headers["strict-transport-security"] == "max-age=63072000; includeSubDomains; preload"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "camera=()" in headers["permissions-policy"]
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "x-xss-protection" not in headers
    assert headers["server"] == "nginx"


def test_healthz(host):
    assert _curl(host, "https://edge.test/healthz").stdout == "OK\n"


def test_http_redirects_with_301_but_serves_acme(host):
    out = _curl(host, "-o /dev/null -w '%{http_code} %{redirect_url}' http://edge.test/some/path?q=1")
    assert out.stdout == "301 https://edge.test/some/path?q=1"
    host.run("mkdir -p /var/www/acme/.well-known/acme-challenge")
    host.run("echo probe > /var/www/acme/.well-known/acme-challenge/probe")
    try:
        assert _curl(host, "http://edge.test/.well-known/acme-challenge/probe").stdout == "probe\n"
    finally:
        host.run("rm -f /var/www/acme/.well-known/acme-challenge/probe")


def test_unknown_host_dropped(host):
    plain = host.run("curl -s -o /dev/null -H 'Host: unknown.test' http://127.0.0.1/")
    assert plain.rc == 52  # empty reply: 444 closes the connection
    tls = host.run("curl -sk -o /dev/null --resolve unknown.test:443:127.0.0.1 https://unknown.test/")
    assert tls.rc == 35  # TLS handshake rejected for an unknown SNI name


def test_proxy_and_static(host):
    assert _curl(host, "https://edge.test/api/").stdout == "upstream api/index.html\n"
    headers = _headers(host, "https://edge.test/assets/app.3f2a.css")
    assert "immutable" in headers["cache-control"]
    assert headers["x-content-type-options"] == "nosniff"


def test_login_rate_limit_returns_429_past_burst(host):
    codes = [_status(host, "https://edge.test/login/") for _request in range(8)]
    assert "429" in codes, codes
    assert codes.count("200") <= 4, codes  # 1 + burst 3


def test_api_zone_allows_a_burst(host):
    codes = {_status(host, "https://edge.test/api/") for _request in range(10)}
    assert codes == {"200"}


def test_metrics_only_from_allowed_source(host):
    assert _status(host, "https://edge.test/metrics/") == "200"
    own_ip = host.check_output("hostname -I").split()[0]
    out = host.run(
        "curl -sk -o /dev/null -w '%%{http_code}' --resolve edge.test:443:%s https://edge.test/metrics/",
        own_ip,
    )
    assert out.stdout == "403"


def test_basic_auth(host):
    assert _status(host, "https://edge.test/ops/") == "401"
    assert _status(host, "-u ops:wrong https://edge.test/ops/") == "401"
    assert _status(host, "-u ops:lab-only-Secret-1 https://edge.test/ops/") == "200"
    htpasswd = host.file("/etc/nginx/selfhost/htpasswd/ops")
    assert htpasswd.mode == 0o640
    assert htpasswd.content_string.startswith("ops:$6$")


def test_stub_status_on_loopback(host):
    out = host.run("curl -s http://127.0.0.1:8080/stub_status")
    assert out.rc == 0 and "Active connections" in out.stdout
    assert host.socket("tcp://127.0.0.1:8080").is_listening
    assert not host.socket("tcp://0.0.0.0:8080").is_listening


def test_nginx_exporter_on_loopback_without_monitoring_hosts(host):
    # edge.yml alone: no UFW, no monitoring group. The exporter listens on loopback only, so the
    # host's own address is refused by the kernel rather than by a firewall that is not there.
    listening = [line.split()[3] for line in host.check_output("ss -Hltn").splitlines()
                 if line.split()[3].endswith(":9113")]
    assert listening == ["127.0.0.1:9113"]
    assert "nginx_up 1" in host.check_output("curl -s http://127.0.0.1:9113/metrics")
    own_ip = host.check_output("hostname -I").split()[0]
    out = host.run("curl -s -o /dev/null --max-time 5 http://%s:9113/metrics", own_ip)
    assert out.rc == 7, out  # 7: connection refused


def _jwt_status(host, token):
    return _status(host, "-H 'Authorization: Bearer %s' https://edge.test/private/" % token)


def test_jwt_gated_location(host):
    now = int(time.time())
    host.run("test -f /root/other.pem || openssl genrsa -out /root/other.pem 2048")
    valid = {"aud": "edge-test", "exp": now + 300}
    assert _status(host, "https://edge.test/private/") == "401"
    assert _jwt_status(host, _token(host, "/root/other.pem", valid)) == "401"
    assert _jwt_status(host, _token(host, PRIVATE, {"aud": "edge-test", "exp": now - 120})) == "401"
    assert _jwt_status(host, _token(host, PRIVATE, {"aud": "other", "exp": now + 300})) == "401"
    assert _jwt_status(host, _token(host, PRIVATE, dict(valid, nbf=now + 300))) == "401"
    token = _token(host, PRIVATE, valid)
    assert _jwt_status(host, token) == "200"
    body = _curl(host, "-H 'Authorization: Bearer %s' https://edge.test/private/" % token)
    assert body.stdout == "upstream private/index.html\n"


def test_jwt_old_key_refused_after_retirement(host):
    # side_effect.yml proved the old key passed during the overlap window, then retired it.
    assert not host.file("/etc/nginx/jwt/previous.pub").exists
    assert host.file(PRIVATE).mode == 0o600
    assert _jwt_status(host, host.file("/root/old-key.jwt").content_string.strip()) == "401"


def test_jwt_key_given_as_content_is_accepted(host):
    # nginx_jwt_keys: the outside issuer's public key came as content, not as a path on the host.
    key = host.file("/etc/nginx/jwt/outside.pub")
    assert (key.user, key.group, key.mode) == ("root", "www-data", 0o640)
    assert key.content_string.startswith("-----BEGIN PUBLIC KEY-----")
    assert "/etc/nginx/jwt/outside.pub" in host.file("/etc/nginx/sites-enabled/edge.conf").content_string
    now = int(time.time())
    claims = {"aud": "edge-test", "exp": now + 300}
    assert _jwt_status(host, _token(host, "/root/outside-issuer.pem", claims)) == "200"
    host.run("test -f /root/other.pem || openssl genrsa -out /root/other.pem 2048")
    assert _jwt_status(host, _token(host, "/root/other.pem", claims)) == "401"


def test_renames_across_files_made_in_one_converge(host):
    # side_effect.yml renamed the upstream with its proxy_pass and the limit_req zone with its use,
    # and removed the legacy upstream with its location, in one converge; then undid all three in one.
    renamed = host.file("/root/renamed.txt").content_string.splitlines()
    assert "api 200" in renamed
    assert "legacy-header 0" in renamed
    assert "429" in next(line for line in renamed if line.startswith("login "))
    assert "upstreams upstream app_v2," in renamed
    assert "zones zone=api,zone=signin," in renamed
    upstreams = host.file("/etc/nginx/selfhost/upstreams.conf").content_string
    assert "upstream app {" in upstreams and "upstream legacy {" in upstreams
    assert "zone=login:" in host.file("/etc/nginx/nginx.conf").content_string


def test_bad_candidate_left_the_live_tree_byte_identical(host):
    # The broken vhost came with valid changes of nginx.conf, upstreams.conf and edge.conf: the
    # tree check refused the whole candidate, so none of them was written.
    assert host.file("/root/broken-tree.txt").content_string.strip() == "identical"
    msg = host.file("/root/broken-vhost.msg").content_string
    assert re.search(r"in /etc/nginx/sites-enabled/broken\.conf:\d+", msg), msg
    assert host.run("nginx -t").rc == 0


def test_maintenance_switch_is_off_again(host):
    assert "Maintenance switch: off" in host.file("/etc/nginx/selfhost/maintenance.conf").content_string
    assert _status(host, "-X POST https://edge.test/api/") != "503"


def test_broken_vhost_rejected_and_nginx_still_serves(host):
    msg = host.file("/root/broken-vhost.msg").content_string
    assert "unknown directive" in msg and "this_is_not_a_directive" in msg
    assert not host.file("/etc/nginx/sites-enabled/broken.conf").exists
    assert _status(host, "https://edge.test/healthz") == "200"


def test_cert_renew_runbook_renewed_and_nginx_served_it(host):
    # side_effect.yml ran the runbook twice: a check (nothing due) and a forced renewal.
    reports = json.loads(host.file("/root/cert-renew.json").content_string)
    check, forced = reports["check"][0], reports["forced"][0]
    assert not check["renewed"] and check["serial_after"] == check["serial_before"]
    assert forced["renewed"] and forced["serial_before"] == check["serial_after"]
    assert forced["served_serial"] == forced["serial_after"] != forced["serial_before"]
    # Expiry reported from the certificates themselves (openssl's notAfter).
    assert forced["not_after_after"].endswith("GMT")
    issued = host.file("/etc/letsencrypt/archive/edge").listdir()
    assert len([name for name in issued if name.startswith("cert")]) >= 2


def test_renewal_timer_and_deploy_hook(host):
    assert host.service("certbot.timer").is_enabled
    assert host.file("/etc/letsencrypt/renewal-hooks/deploy/50-selfhost").mode == 0o755
    assert not host.file("/etc/cron.d/selfhost-certbot").exists


def test_forced_renewal_is_served_without_dropping_requests(host):
    before = _served_cert(host).stdout
    serial_before = re.search(r"serial=(\w+)", before).group(1)
    # Requests in flight during the renewal and the reload: a bounded loop in its own unit
    # (a plain background job would end with the exec session). HTTP/1.1: over HTTP/2 a worker
    # that is exiting answers a connection it had just accepted with GOAWAY before any stream
    # (seen 1 in 1,800 under load). RFC 9113 6.8 makes such a request safe to retry and browsers
    # do; curl reports it as a framing error instead.
    host.run("systemctl reset-failed renew-probe 2>/dev/null; rm -f /root/during-renew.log")
    loop = (
        "for i in $(seq 1 150); do curl --http1.1 -sk -o /dev/null -w \"%%{http_code} %%{exitcode} %%{errormsg}\\n\" %s"
        " https://edge.test/healthz; done > /root/during-renew.log 2>&1" % RESOLVE
    )
    started = host.run("systemd-run --unit renew-probe sh -c '%s'" % loop)
    assert started.rc == 0, started.stderr
    out = host.run(
        "REQUESTS_CA_BUNDLE=/etc/pebble/cert.pem certbot renew --force-renewal "
        "--no-random-sleep-on-renew --cert-name edge"
    )
    assert out.rc == 0, out.stderr
    serial_after = serial_before
    for _attempt in range(20):
        serial_after = re.search(r"serial=(\w+)", _served_cert(host).stdout).group(1)
        if serial_after != serial_before:
            break
        time.sleep(0.5)
    assert serial_after != serial_before
    live = host.check_output("openssl x509 -noout -serial -in /etc/letsencrypt/live/edge/cert.pem")
    assert live == "serial=%s" % serial_after
    host.run("for i in $(seq 1 60); do systemctl is-active --quiet renew-probe || break; sleep 0.5; done")
    answers = host.file("/root/during-renew.log").content_string.splitlines()
    failed = [line for line in answers if not line.startswith("200 0 ")]
    assert answers and not failed, "%d of %d requests failed: %s" % (len(failed), len(answers), failed[:5])


def test_expiry_metric_published_when_textfile_dir_exists(host):
    if not host.file("/var/lib/prometheus/node-exporter").is_directory:
        pytest.skip("no node exporter textfile directory on this host (observability role not applied)")
    content = host.file("/var/lib/prometheus/node-exporter/selfhost_certificates.prom").content_string
    assert 'selfhost_certificate_not_after_seconds{name="edge"}' in content
