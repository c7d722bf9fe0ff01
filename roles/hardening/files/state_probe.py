# -*- coding: utf-8 -*-
# selfhost.platform.hardening: one call that reads what the role would otherwise stat, slurp and
# query task by task (one remote round trip instead of ~40 on a converged host).
# Input (argv[1], JSON): {"paths": [...], "resolve": [...], "lines": [{"path", "regexp", "line"}],
#                         "units": [...], "packages": [...], "sysctl": {"file", "keys"}}
# Output (JSON): {"paths": {path: null | {"type", "mode", "owner", "group", "sha1"}},
#                 "resolved": {path: null | {"target", "mode", "owner", "group"}} (symlinks followed),
#                 "lines": [true when lineinfile would change nothing, ...],
#                 "units": {unit: {"UnitFileState", "ActiveState"}}, "cap_eff": int,
#                 "installed": [the packages of "packages" that dpkg has installed],
#                 "sysctl": {"file": [[key, value], ...] | null,
#                            "live": {key: {"value": str | null, "writable": bool}}}}
# Read-only: it never changes the host. Runs on the target's Python 3 (standard library only).
import grp
import hashlib
import json
import os
import pwd
import re
import stat
import subprocess
import sys


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def path_state(path):
    try:
        st = os.lstat(path)
    except OSError:
        return None
    info = {
        "type": "directory" if stat.S_ISDIR(st.st_mode) else "file" if stat.S_ISREG(st.st_mode) else "other",
        "mode": "%04o" % stat.S_IMODE(st.st_mode),
        "owner": _name(pwd.getpwuid, st.st_uid),
        "group": _name(grp.getgrgid, st.st_gid),
    }
    if info["type"] == "file":
        with open(path, "rb") as handle:
            info["sha1"] = hashlib.sha1(handle.read()).hexdigest()
    return info


def resolved_state(path):
    if not os.path.exists(path):
        return None
    target = os.path.realpath(path)
    info = path_state(target) or {}
    return {"target": target, "mode": info.get("mode"), "owner": info.get("owner"), "group": info.get("group")}


def line_in_place(path, regexp, line):
    """True when ansible.builtin.lineinfile (regexp + line, state present) would report ok."""
    try:
        with open(path, "r", encoding="utf-8", errors="surrogateescape") as handle:
            lines = [item.rstrip("\r\n") for item in handle]
    except OSError:
        return False
    pattern = re.compile(regexp)
    matches = [item for item in lines if pattern.search(item)]
    if matches:
        return matches[-1] == line
    return line in lines


def unit_states(units):
    if not units:
        return {}
    try:
        out = subprocess.run(
            ["systemctl", "show", "--property=Id,UnitFileState,ActiveState", "--"] + units,
            check=False, capture_output=True, text=True).stdout
    except OSError:
        return {}
    states = {}
    for block, unit in zip(out.strip().split("\n\n"), units):
        props = dict(item.split("=", 1) for item in block.splitlines() if "=" in item)
        states[unit] = {key: props.get(key, "") for key in ("UnitFileState", "ActiveState")}
    return states


def cap_eff():
    with open("/proc/self/status", encoding="ascii") as handle:
        for item in handle:
            if item.startswith("CapEff:"):
                return int(item.split()[1], 16)
    return 0


def installed_packages(names):
    # dpkg's database answers "is everything installed?" in a fraction of what opening apt's cache costs.
    if not names:
        return []
    try:
        out = subprocess.run(["dpkg-query", "--show", "--showformat=${db:Status-Abbrev} ${Package}\n"] + names,
                             check=False, capture_output=True, text=True).stdout
    except OSError:
        return []
    return [line.split()[-1] for line in out.splitlines() if line.startswith("ii ")]


PROC_SYS = "/proc/sys"


def _sysctl_path(key):
    # sysctl(8)'s two spellings: slash form when "/" comes before any ".", else dotted form in
    # which a "/" stands for a "." inside one component (net.ipv4.conf.eth0/100.rp_filter).
    slash, dot = key.find("/"), key.find(".")
    if slash >= 0 and (dot < 0 or slash < dot):
        parts = key.split("/")
    else:
        parts = [part.replace("/", ".") for part in key.split(".")]
    return os.path.join(PROC_SYS, *parts)


def sysctl_state(spec):
    """Settings in the role's sysctl file (comments left out) and the kernel's live values.

    Values are whitespace-normalized like the kernel prints them; "writable" is false where
    /proc/sys is read-only (a container) or the key does not exist.
    """
    if not spec:
        return None
    try:
        with open(spec["file"], "r", encoding="utf-8", errors="replace") as handle:
            settings = [[key.strip(), " ".join(value.split())]
                        for key, sep, value in (item.partition("=") for item in handle)
                        if sep and not key.lstrip().startswith(("#", ";"))]
    except OSError:
        settings = None
    live = {}
    for key in spec.get("keys", []):
        path = _sysctl_path(key)
        try:
            with open(path, "r", encoding="utf-8", errors="replace") as handle:
                value = " ".join(handle.read().split())
        except OSError:
            value = None
        live[key] = {"value": value, "writable": value is not None and os.access(path, os.W_OK)}
    return {"file": settings, "live": live}


def main():
    spec = json.loads(sys.argv[1])
    print(json.dumps({
        "paths": {path: path_state(path) for path in spec.get("paths", [])},
        "resolved": {path: resolved_state(path) for path in spec.get("resolve", [])},
        "lines": [line_in_place(item["path"], item["regexp"], item["line"]) for item in spec.get("lines", [])],
        "units": unit_states(spec.get("units", [])),
        "cap_eff": cap_eff(),
        "installed": installed_packages(spec.get("packages", [])),
        "sysctl": sysctl_state(spec.get("sysctl")),
    }))


if __name__ == "__main__":
    main()
