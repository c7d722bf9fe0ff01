# Unit tests of roles/hardening/files/state_probe.py: the sysctl part, which decides whether the
# role needs to call selfhost.platform.sysctl_profile at all on a converged host.
import importlib.util
import os

import pytest

PROBE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "hardening", "files", "state_probe.py")
spec = importlib.util.spec_from_file_location("hardening_state_probe", PROBE)
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)


@pytest.fixture
def proc(tmp_path, monkeypatch):
    root = tmp_path / "proc-sys"
    (root / "net" / "ipv4" / "conf" / "eth0.100").mkdir(parents=True)
    (root / "kernel").mkdir()
    (root / "net" / "ipv4" / "tcp_syncookies").write_text("1\n")
    (root / "net" / "ipv4" / "conf" / "eth0.100" / "rp_filter").write_text("2\n")
    (root / "kernel" / "printk").write_text("4\t4\t1\t7\n")
    (root / "kernel" / "kptr_restrict").write_text("0\n")
    monkeypatch.setattr(probe, "PROC_SYS", str(root))
    return root


@pytest.mark.parametrize("key, parts", [
    ("net.ipv4.tcp_syncookies", ["net", "ipv4", "tcp_syncookies"]),
    ("net/ipv4/tcp_syncookies", ["net", "ipv4", "tcp_syncookies"]),
    # dotted form: "/" stands for a "." inside one component (a VLAN interface)
    ("net.ipv4.conf.eth0/100.rp_filter", ["net", "ipv4", "conf", "eth0.100", "rp_filter"]),
    # slash form: components as written
    ("net/ipv4/conf/eth0.100/rp_filter", ["net", "ipv4", "conf", "eth0.100", "rp_filter"]),
])
def test_both_key_spellings_name_the_same_file(key, parts):
    assert probe._sysctl_path(key) == os.path.join(probe.PROC_SYS, *parts)


def test_file_settings_leave_comments_out_and_collapse_whitespace(proc, tmp_path):
    conf = tmp_path / "70-test.conf"
    conf.write_text("# Ansible managed\n; old style comment\n\nkernel.printk =  4   4 1 7\nnet.ipv4.tcp_syncookies=1\n")
    state = probe.sysctl_state({"file": str(conf), "keys": []})
    assert state["file"] == [["kernel.printk", "4 4 1 7"], ["net.ipv4.tcp_syncookies", "1"]]


def test_missing_file_reads_as_none(proc, tmp_path):
    assert probe.sysctl_state({"file": str(tmp_path / "absent.conf"), "keys": []})["file"] is None


def test_live_values_and_writability(proc, tmp_path):
    keys = ["net.ipv4.tcp_syncookies", "kernel.printk", "net.ipv4.conf.eth0/100.rp_filter", "kernel.nope"]
    live = probe.sysctl_state({"file": str(tmp_path / "absent.conf"), "keys": keys})["live"]
    assert live["net.ipv4.tcp_syncookies"] == {"value": "1", "writable": True}
    assert live["kernel.printk"] == {"value": "4 4 1 7", "writable": True}
    assert live["net.ipv4.conf.eth0/100.rp_filter"] == {"value": "2", "writable": True}
    # a key this kernel does not have: no value, never writable (the module would skip it too)
    assert live["kernel.nope"] == {"value": None, "writable": False}


def test_read_only_proc_sys_reads_values_but_is_not_writable(proc, tmp_path, monkeypatch):
    # A container mounts /proc/sys read-only: access(W_OK) fails with EROFS, even for root.
    monkeypatch.setattr(probe.os, "access", lambda path, mode: False)
    live = probe.sysctl_state({"file": str(tmp_path / "absent.conf"), "keys": ["kernel.kptr_restrict"]})["live"]
    assert live["kernel.kptr_restrict"] == {"value": "0", "writable": False}


def test_no_sysctl_request_means_no_answer():
    assert probe.sysctl_state(None) is None
