# -*- coding: utf-8 -*-
# selfhost.platform.firewall: one read-only call that tells which settings are already in place,
# so the writing tasks run only for what differs (a converged host costs one round trip here).
# Input (argv[1], JSON): {"lines": [{"path", "regexp", "line"}], "blocks": [{"path", "lines"}]}
#   lines:  true when ansible.builtin.lineinfile (regexp + line) would change nothing;
#   blocks: true when the marked block (marker lines included) is in the file exactly, with
#           mode 0640 root:root, i.e. when ansible.builtin.blockinfile would change nothing.
# Output (JSON): {"lines": [bool], "blocks": [bool], "blocks_absent": [bool], "status": str}
# Standard library only; "status" is `ufw status verbose` (empty when UFW cannot answer).
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


def ufw_status():
    try:
        return subprocess.run(["ufw", "status", "verbose"], check=False, capture_output=True,
                              text=True, env=dict(os.environ, LC_ALL="C")).stdout
    except OSError:
        return ""


def main():
    spec = json.loads(sys.argv[1])
    print(json.dumps({
        "lines": [line_in_place(item["path"], item["regexp"], item["line"]) for item in spec["lines"]],
        "blocks": [block_in_place(item["path"], item["lines"]) for item in spec["blocks"]],
        "blocks_absent": [block_absent(item["path"], item["lines"][0]) for item in spec["blocks"]],
        "status": ufw_status(),
    }))


if __name__ == "__main__":
    main()
