"""Cross-host behaviour of playbooks/site.yml on the three-host lab fleet (molecule/site).

site-edge (edge, app), site-db (db, brokers, backup) and site-mon (monitoring, workers) were
converged by site.yml with inventories/lab/group_vars. Traffic goes only to
these containers: from the controller to their bridge addresses, or from one to another.
"""

import json
import os
import time
import urllib.request
import uuid

import pytest
import testinfra

from labtest import bridge_address, rerun_converge

DISTRO = os.environ.get("LAB_DISTRO", "debian12")
NAMES = {role: "site-%s-%s" % (role, DISTRO) for role in ("edge", "db", "mon")}
# The workers group shares the monitoring host (molecule.yml says why).
WORKER = "mon"


address = bridge_address


@pytest.fixture(scope="module")
def hosts():
    return {role: testinfra.get_host("docker://%s" % name) for role, name in NAMES.items()}


@pytest.fixture(scope="module")
def ips():
    return {role: address(name) for role, name in NAMES.items()}


def poll(check, timeout, what):
    """Call check() until it returns something truthy, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as exc:
            last = exc
        time.sleep(2)
    pytest.fail("%s did not happen within %d s (last: %r)" % (what, timeout, last))


def connects(src, ip, port):
    """Whether a TCP connection from the lab host src to ip:port is accepted (5 s at most)."""
    return src.run("timeout 5 bash -c 'exec 3<>/dev/tcp/%s/%d'" % (ip, port)).rc == 0


# --- Monitoring ----------------------------------------------------------------------------

def test_prometheus_sees_every_node_exporter_up(ips):
    def node_targets():
        with urllib.request.urlopen("http://%s:9090/api/v1/targets" % ips["mon"], timeout=5) as answer:
            data = json.loads(answer.read())["data"]["activeTargets"]
        found = {t["scrapeUrl"].split("//")[1].split(":")[0]: t["health"]
                 for t in data if t["labels"]["job"] == "node"}
        return found if found == {ip: "up" for ip in ips.values()} else None

    poll(node_targets, 120, "every node exporter (%s) up in Prometheus" % sorted(ips.values()))


def test_every_scrape_target_answers_and_none_is_scraped_for_a_service_that_is_off(ips):
    """The lab turns Flower off (celery_flower_enabled: false): Prometheus must not scrape it, or
    TargetDown fires from the first minute. Every target it has must be up."""
    def health():
        with urllib.request.urlopen("http://%s:9090/api/v1/targets" % ips["mon"], timeout=5) as answer:
            data = json.loads(answer.read())["data"]["activeTargets"]
        return {"%s %s" % (t["labels"]["job"], t["scrapeUrl"]): t["health"] for t in data}

    assert not [target for target in health() if target.startswith("flower ")]
    poll(lambda: all(state == "up" for state in health().values()), 120,
         "every scrape target up (%s)" % health())


@pytest.mark.parametrize("source,target", [("edge", "db"), ("db", "edge"), ("edge", "mon"),
                                           ("db", "mon")])
def test_node_exporter_refused_from_non_monitoring_hosts(hosts, ips, source, target):
    assert not connects(hosts[source], ips[target], 9100), \
        "%s reached the node exporter of %s" % (source, target)
    assert connects(hosts["mon"], ips[target], 9100), "the monitoring host cannot scrape %s" % target


@pytest.mark.parametrize("target,port,exporter", [("edge", 9113, "nginx_exporter"),
                                                  ("db", 9121, "redis_exporter"),
                                                  ("db", 9187, "postgres_exporter")])
def test_service_exporters_open_to_the_monitoring_host_only(hosts, ips, target, port, exporter):
    # Exporters bind to the host's scrape address (not 0.0.0.0): any listener on the port counts.
    if not hosts[target].run("ss -Htln 'sport = :%d'" % port).stdout.strip():
        pytest.skip("%s is not listening on %s: not part of this site.yml" % (exporter, target))
    assert connects(hosts["mon"], ips[target], port), "the monitoring host cannot scrape %s" % exporter
    others = [name for name in ("edge", "db") if name != target]
    for source in others:
        assert not connects(hosts[source], ips[target], port), "%s reached %s" % (source, exporter)


# --- Task queue: workers on one host, the broker on another ------------------------------

def test_worker_consumes_a_task_from_the_broker_on_another_host(hosts, ips):
    worker = hosts[WORKER]
    env = worker.check_output("cat /etc/celery/celery.env")
    assert "@%s:6379/0" % ips["db"] in env, "the broker URL does not point at the brokers host"
    token = uuid.uuid4().hex
    script = ("from labapp import where; import json; "
              "print(json.dumps(where.delay('%s').get(timeout=90)))" % token)
    out = worker.run("set -a && . /etc/celery/celery.env && set +a && cd /opt/celery/app && "
                     "timeout 120 runuser -u celery -- /opt/celery/venv/bin/python -c \"%s\"" % script)
    assert out.rc == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"token": token, "host": NAMES[WORKER]}


def test_redis_refuses_connections_from_non_worker_hosts(hosts, ips):
    assert connects(hosts[WORKER], ips["db"], 6379), "the workers host cannot reach Redis"
    for source in ("edge",):
        assert not connects(hosts[source], ips["db"], 6379), "%s reached Redis" % source


# --- PostgreSQL: app hosts only ------------------------------------------------------------

def test_postgresql_accepts_app_hosts_only(hosts, ips):
    assert connects(hosts["edge"], ips["db"], 5432), "the app host cannot reach PostgreSQL"
    for source in (WORKER,):
        assert not connects(hosts[source], ips["db"], 5432), "%s reached PostgreSQL" % source


# --- Backups: the db host's dump lands in the restic repository ---------------------------

def test_db_backup_lands_in_the_repository_and_restores_identically(hosts):
    db = hosts["db"]
    db.check_output("psql_as() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -d app -c \"$1\"; }; "
                    "psql_as 'CREATE TABLE IF NOT EXISTS lab_marker (v text)' && "
                    "psql_as \"INSERT INTO lab_marker VALUES ('site-test')\"")
    run = db.run("systemctl start restic-backup@postgresql.service")
    assert run.rc == 0, db.run("journalctl -u restic-backup@postgresql.service -n 40 --no-pager").stdout
    snapshots = json.loads(db.check_output("selfhost-restic restic postgresql snapshots --json"))
    assert any("postgresql" in s.get("tags", []) for s in snapshots), snapshots
    dump = db.check_output("readlink -f /var/backups/postgresql/latest") + "/app.dump"
    db.check_output("rm -rf /var/tmp/site-restore")
    db.check_output("selfhost-restic restic postgresql restore latest --target /var/tmp/site-restore "
                    "--include %s" % dump)
    original = db.check_output("sha256sum < %s" % dump)
    restored = db.check_output("sha256sum < /var/tmp/site-restore%s" % dump)
    db.check_output("rm -rf /var/tmp/site-restore")
    assert original == restored


# --- Edge ------------------------------------------------------------------------------------

def test_edge_answers_https_with_the_placeholder_certificate(hosts, ips):
    out = hosts["mon"].run("curl -sk --resolve lab.test:443:%s https://lab.test/" % ips["edge"])
    assert out.rc == 0 and "selfhost lab" in out.stdout, out.stderr


# --- Central logs: site-mon is the log host ------------------------------------------------

def test_every_other_hosts_journal_reaches_the_log_host(hosts):
    token = uuid.uuid4().hex
    for source in ("edge", "db"):
        hosts[source].check_output("logger -t site-test '%s from %s'" % (token, source))

    def arrived():
        out = hosts["mon"].run("journalctl -D /var/log/journal/remote --no-pager -o cat -g %s" % token).stdout
        return all("%s from %s" % (token, source) in out for source in ("edge", "db"))

    poll(arrived, 60, "the lines logged on site-edge and site-db in site-mon's received journal")


# --- Kernel parameters: the hardening role's values are the ones the next boot applies ----------

def test_ufw_leaves_the_kernel_parameters_to_the_hardening_role(hosts):
    """UFW starts after systemd-sysctl and would apply /etc/ufw/sysctl.conf (log_martians=0) at
    every boot; with the hardening role in the same play the firewall role turns that off."""
    for role, host in hosts.items():
        assert "IPT_SYSCTL=" in host.file("/etc/default/ufw").content_string.splitlines(), role
        assert "net.ipv4.conf.all.log_martians = 1" in host.file("/etc/sysctl.d/zz-selfhost-hardening.conf").content_string


# --- Check mode --------------------------------------------------------------------------------

def test_site_in_check_mode_on_the_converged_fleet_changes_nothing_and_fails_nowhere():
    """`ansible-playbook site.yml --check --diff` is how an operator previews a change: on the
    converged fleet it must run through (no task failing on a read that check mode skipped) and
    report changed=0, or the preview hides a real change among false ones."""
    run = rerun_converge("site", callback="ansible.posix.json", args=["--check", "--diff"], timeout=1800)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    data = json.loads(run.stdout)
    changed = {"%s: %s" % (name, task["task"]["name"]): result.get("diff", result.get("results"))
               for play in data["plays"] for task in play["tasks"]
               for name, result in task["hosts"].items() if result.get("changed")}
    assert all(host["failures"] == 0 and host["unreachable"] == 0 for host in data["stats"].values()), data["stats"]
    # The diff of each false change says what check mode saw differently.
    assert not changed, "reported changed in check mode on the converged fleet: %s" % json.dumps(changed)[:6000]
