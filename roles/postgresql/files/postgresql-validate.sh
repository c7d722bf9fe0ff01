#!/bin/sh
# Installed by selfhost.platform.postgresql.
# Usage: postgresql-validate BINDIR POSTGRESQL.CONF CANDIDATE
# Parses the live postgresql.conf (with its conf.d) followed by CANDIDATE the way the
# postmaster does at start-up ("postgres -C" reads every configuration file and exits;
# it is safe while the server runs). An unknown parameter, a bad value or unit, or a
# syntax error makes it fail with the server's own message.
set -eu
bindir=$1
main=$2
candidate=$3
work=$(mktemp -d /tmp/postgresql-validate.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$candidate" "$work/candidate.conf"
printf "include '%s'\ninclude '%s'\n" "$main" "$work/candidate.conf" >"$work/postgresql.conf"
chown -R postgres:postgres "$work"
chmod 0700 "$work"
runuser -u postgres -- "$bindir/postgres" -c config_file="$work/postgresql.conf" -C data_directory >/dev/null
