#!/usr/bin/python3
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""selfhost-journal-age: when did each host last send a journal entry to this log host?

Installed by selfhost.platform.journal_remote and run by selfhost-journal-age.timer. Writes, for
the node exporter's textfile collector,

    selfhost_journal_remote_last_entry_timestamp_seconds{sender="web1"} 1764770000.123456

for every host found in the received journal (its _HOSTNAME) and for every expected host (--expect),
0 for an expected host never heard from, so that the HostLogsQuiet alert fires for a host that
stops sending and for one that never started. An expected name matches a journal host name in
full or by its first label (web1.example.org matches web1), as `hostname` and inventories differ.

Exit status 0 when the file was written; 1 when journalctl failed (the old file is kept and the
unit fails, which the SystemdUnitFailed alert reports).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

METRIC = "selfhost_journal_remote_last_entry_timestamp_seconds"


def journalctl(directory, *args):
    """Run journalctl on the received journal; its output lines, or [] when it holds no file yet."""
    run = subprocess.run(["journalctl", "--directory", directory, "--no-pager", "--quiet"] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    if run.returncode != 0:
        if "No journal files were found" in run.stderr or not os.listdir(directory):
            return []
        raise RuntimeError("journalctl %s: %s" % (" ".join(args), run.stderr.strip() or run.returncode))
    return [line for line in run.stdout.splitlines() if line.strip()]


def seen_hosts(directory):
    """The distinct _HOSTNAME values of the received journal."""
    return sorted(set(journalctl(directory, "--field", "_HOSTNAME")))


def last_entry(directory, host):
    """Wall-clock time (seconds) of the newest entry of host, or 0.0 if it has none."""
    lines = journalctl(directory, "_HOSTNAME=%s" % host, "--lines", "1", "--output", "json")
    if not lines:
        return 0.0
    return int(json.loads(lines[-1])["__REALTIME_TIMESTAMP"]) / 1e6


def short(name):
    return name.split(".", 1)[0].lower()


def match_hosts(expected, seen):
    """Map each reported name to the journal host name it is read from (None: never heard from).

    An expected name takes the journal host that equals it, else one with the same first label;
    journal hosts no expected name claimed are reported under their own name."""
    by_name = {name.lower(): name for name in seen}
    by_short = {}
    for name in seen:
        by_short.setdefault(short(name), name)
    claimed = set()
    result = {}
    for name in expected:
        source = by_name.get(name.lower()) or by_short.get(short(name))
        if source in claimed:
            source = None
        if source is not None:
            claimed.add(source)
        result[name] = source
    for name in seen:
        if name not in claimed and name not in result:
            result[name] = name
    return result


def label(value):
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(times):
    lines = ["# HELP %s Time of the last journal entry this log host received from the host (0: none yet)." % METRIC,
             "# TYPE %s gauge" % METRIC]
    for host in sorted(times):
        lines.append('%s{sender="%s"} %.6f' % (METRIC, label(host), times[host]))
    return "\n".join(lines) + "\n"


def write_atomically(path, text):
    """Replace path in one rename, so the textfile collector never reads half a file."""
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(prefix=".selfhost-journal-age.", dir=directory)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.rename(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--directory", required=True, help="the journal-remote output directory")
    parser.add_argument("--output", required=True, help="the .prom file to write")
    parser.add_argument("--expect", action="append", default=[], help="a host expected to send (repeatable)")
    args = parser.parse_args(argv)
    try:
        mapping = match_hosts(args.expect, seen_hosts(args.directory))
        times = {name: (last_entry(args.directory, source) if source else 0.0) for name, source in mapping.items()}
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        print("selfhost-journal-age: %s" % exc, file=sys.stderr)
        return 1
    write_atomically(args.output, render(times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
