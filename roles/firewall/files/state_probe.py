# -*- coding: utf-8 -*-
# selfhost.platform.firewall: one read-only call that tells which settings are already in place,
# so the writing tasks run only for what differs (a converged host costs one round trip here).
# Input (argv[1], JSON): {"lines": [{"path", "regexp", "line"}], "blocks": [{"path", "lines"}],
#                         "rules": {name: {"route": bool, "items": [rule item]}}, "ipv6": bool,
#                         "packages": [name], "status": bool}
#   lines:  true when ansible.builtin.lineinfile (regexp + line) would change nothing;
#   blocks: true when the marked block (marker lines included) is in the file exactly, with
#           mode 0640 root:root, i.e. when ansible.builtin.blockinfile would change nothing;
#   rules:  per list, true when UFW's rule files already say what the item asks for (a present
#           rule with its comment in every address family it covers, an absent one nowhere), so
#           community.general.ufw would change nothing. Anything unusual (an address UFW writes
#           in another form) reads as "not in place" and the module runs as it would anyway.
#   Every key is optional (tasks/allow.yml sends only "rules" and "ipv6").
# Output (JSON): {"ufw": bool (installed), "lines": [bool], "blocks": [bool], "blocks_absent": [bool],
#                 "rules": {name: [bool]}, "status": str, "installed": [the packages dpkg has installed]}
# Standard library only; "status" is `ufw status verbose` when the input asks for it (the role's
# own probe; the allow entry point does not need it), empty otherwise or when UFW cannot answer.
import json
import os
import re
import stat
import subprocess
import sys


def read_lines(path):
    try:
        with open(path, "r", encoding="utf-8", errors="surrogateescape") as handle:
            return [item.rstrip("\r\n") for item in handle]
    except OSError:
        return None


def line_in_place(path, regexp, line):
    lines = read_lines(path)
    if lines is None:
        return False
    pattern = re.compile(regexp)
    matches = [item for item in lines if pattern.search(item)]
    return matches[-1] == line if matches else line in lines


def block_in_place(path, wanted):
    lines = read_lines(path)
    if lines is None:
        return False
    st = os.stat(path)
    if stat.S_IMODE(st.st_mode) != 0o640 or st.st_uid != 0 or st.st_gid != 0:
        return False
    size = len(wanted)
    starts = [i for i, item in enumerate(lines) if item == wanted[0]]
    return len(starts) == 1 and lines[starts[0]:starts[0] + size] == wanted


def block_absent(path, marker):
    lines = read_lines(path)
    return lines is not None and marker not in lines


def ufw_tuples(path):
    # UFW keeps each rule as "### tuple ### action proto dport dst sport src direction[ comment=hex]".
    prefix = "### tuple ### "
    return {item[len(prefix):] for item in read_lines(path) or [] if item.startswith(prefix)}


def rule_in_place(item, route, ipv6, tuples4, tuples6):
    source = str(item["from"])
    families = []
    if source == "any" or ":" not in source:
        families.append((tuples4, "0.0.0.0/0"))
    if ipv6 and (source == "any" or ":" in source):
        families.append((tuples6, "::/0"))
    actions = ["allow", "limit"] if item["state"] == "absent" and item["rule"] in ("allow", "limit") else [item["rule"]]
    for tuples, anywhere in families:
        src = anywhere if source == "any" else source
        forms = ["%s%s %s %s %s any %s in" % ("route:" if route else "", action, item["proto"], item["port"], anywhere, src)
                 for action in actions]
        if item["state"] == "absent":
            if any(entry == form or entry.startswith(form + " comment=") for entry in tuples for form in forms):
                return False
        else:
            comment = str(item.get("comment") or "")
            wanted = forms[0] + (" comment=" + comment.encode("utf-8").hex() if comment else "")
            if wanted not in tuples:
                return False
    return bool(families)


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


def ufw_status():
    try:
        return subprocess.run(["ufw", "status", "verbose"], check=False, capture_output=True,
                              text=True, env=dict(os.environ, LC_ALL="C")).stdout
    except OSError:
        return ""


def main():
    spec = json.loads(sys.argv[1])
    tuples4 = ufw_tuples("/etc/ufw/user.rules")
    tuples6 = ufw_tuples("/etc/ufw/user6.rules")
    ipv6 = bool(spec.get("ipv6"))
    rules = {}
    for name, group in spec.get("rules", {}).items():
        rules[name] = [rule_in_place(item, group["route"], ipv6, tuples4, tuples6) for item in group["items"]]
    blocks = spec.get("blocks", [])
    print(json.dumps({
        "ufw": os.path.exists("/usr/sbin/ufw"),
        "rules": rules,
        "lines": [line_in_place(item["path"], item["regexp"], item["line"]) for item in spec.get("lines", [])],
        "blocks": [block_in_place(item["path"], item["lines"]) for item in blocks],
        "blocks_absent": [block_absent(item["path"], item["lines"][0]) for item in blocks],
        "status": ufw_status() if spec.get("status") else "",
        "installed": installed_packages(spec.get("packages", [])),
    }))


if __name__ == "__main__":
    main()
