"""Decommission on decom-old, resurrect on decom-new, and a corrupted bundle refused.

The side effect has run selfhost.platform.runbooks.decommission on the old host (bundle
"lab-bundle" fetched into the ephemeral directory), selfhost.platform.runbooks.resurrect on
the new host, and the resurrect runbook once more on a copy of the bundle with one flipped byte.
"""

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
import testinfra

DISTRO = os.environ.get("LAB_DISTRO", "debian12")
OLD = "decom-old-%s" % DISTRO
NEW = "decom-new-%s" % DISTRO
EPH = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
BUNDLE = EPH / "bundles" / OLD / "lab-bundle"
PUBKEY = EPH / "bundles" / "keys" / "decommission-ed25519.pub"
PRIVKEY = EPH / "bundles" / "keys" / "decommission-ed25519.key"
DATA = "/srv/lab-app/data"


@pytest.fixture(scope="module")
def old():
    return testinfra.get_host("docker://%s" % OLD)


@pytest.fixture(scope="module")
def new():
    return testinfra.get_host("docker://%s" % NEW)


def tree(host, path):
    """Every entry below path: type, mode, owner, size, link target, and SHA-256 of files."""
    listing = host.run("cd %s && find . -printf '%%p|%%y|%%m|%%u:%%g|%%s|%%l\\n' | LC_ALL=C sort", path)
    assert listing.rc == 0, listing.stderr
    sums = host.run("cd %s && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum", path)
    assert sums.rc == 0, sums.stderr
    return listing.stdout, sums.stdout


def test_restored_data_is_byte_identical(old, new):
    old_listing, old_sums = tree(old, DATA)
    new_listing, new_sums = tree(new, DATA)
    assert "./media/2025/clip.bin" in old_sums and "./notes.txt" in old_sums
    assert new_sums == old_sums
    assert new_listing == old_listing  # modes, owners, sizes, the symlink and the empty directory
    assert "./current|l|777|labapp:labapp|19|media/2025/clip.bin" in new_listing
    assert new.file(DATA).mode == 0o750 and new.file(DATA).user == "labapp"


def test_configuration_is_restored(old, new):
    conf = "/etc/lab-app/app.conf"
    assert new.file(conf).content == old.file(conf).content
    assert new.file(conf).mode == 0o640
    assert new.file(conf).group == "labapp"


def test_stale_data_was_moved_aside_not_deleted(new):
    assert not new.file(DATA + "/stale.txt").exists
    assert new.file(DATA + ".pre-resurrect-lab-bundle/stale.txt").content_string == "from an earlier attempt\n"


def test_old_host_is_frozen(old):
    assert not old.service("lab-app.service").is_running
    assert old.run("systemctl is-active lab-app-sync.timer").stdout.strip() != "active"


def test_new_host_runs_the_frozen_units(new):
    assert new.service("lab-app.service").is_running
    assert new.run("systemctl is-active lab-app-sync.timer").stdout.strip() == "active"


def test_controller_copy_verifies_independently():
    """Check the fetched bundle with cryptography directly, not with the module under test."""
    serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    key = serialization.load_pem_public_key(PUBKEY.read_bytes())
    manifest = (BUNDLE / "MANIFEST.json").read_bytes()
    key.verify(base64.b64decode((BUNDLE / "MANIFEST.json.sig").read_bytes().strip()), manifest)
    files = json.loads(manifest)["files"]
    assert set(files) == {"info.json", "configs/etc.tar.gz", "data/srv_lab-app_data.tar.gz"}
    for rel, entry in files.items():
        data = (BUNDLE / rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], rel
        assert len(data) == entry["size"]
        assert (BUNDLE / rel).stat().st_mode & 0o777 == 0o600
    assert PRIVKEY.stat().st_mode & 0o777 == 0o600


def test_bundle_records_what_was_frozen(old):
    info = json.loads(old.check_output("cat /var/backups/selfhost-decommission/lab-bundle/info.json"))
    assert info["stopped_units"] == ["lab-app-sync.timer", "lab-app.service"]
    assert info["configs"] == ["/etc/lab-app"]  # /etc/nginx does not exist there
    assert info["data"] == {DATA: "data/srv_lab-app_data.tar.gz"}
    assert info["database_set"] == ""  # no pg_backup on this host: skipped with a message


def test_private_key_never_reached_the_hosts(old, new):
    for host in (old, new):
        found = host.run("grep -rl 'PRIVATE KEY' /var/backups /var/tmp /root 2>/dev/null")
        assert found.stdout.strip() == "", found.stdout


def test_resurrection_report(new):
    report = json.loads(new.check_output("cat /var/lib/selfhost-resurrect/lab-bundle.json"))
    assert report["from_host"] == OLD
    assert report["files_verified"] == 3
    assert report["manifest_sha256"] == hashlib.sha256((BUNDLE / "MANIFEST.json").read_bytes()).hexdigest()
    assert new.file("/var/lib/selfhost-resurrect/lab-bundle.json").mode == 0o600


def test_one_flipped_byte_stops_resurrect_naming_the_file():
    outcome = json.loads((EPH / "corrupt-resurrect.json").read_text())
    assert outcome["rc"] != 0
    # ansible-core 2.19 prints task errors on stderr
    assert "FAILED verification" in outcome["stderr"]
    assert "nothing was restored" in outcome["stderr"]
    assert "changed: %s (sha256 differs)" % outcome["victim"] in outcome["stderr"]
    # the run stopped before the first restore task
    assert "TASK [Read the bundle's description]" not in outcome["stdout"]
    assert "TASK [Restore the" not in outcome["stdout"]
