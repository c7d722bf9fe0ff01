#!/bin/sh
# Installed by selfhost.platform.redis. Redis 7.0 has no "check this config" switch
# (only --test-memory and --check-system), so a candidate is proven by starting a
# throwaway redis-server with it: no TCP port, a scratch directory (nothing is loaded
# from or written to the real data directory), a private unix socket. If that server
# answers PING the file parsed completely; if it exits, its error is printed.
#   redis-validate server CANDIDATE_REDIS_CONF
#   redis-validate users  CANDIDATE_USERS_FILE   (checked on its own via "include")
set -eu
mode=$1
candidate=$2
scratch=$(mktemp -d)
pid=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT
chmod 0755 "$scratch"
case "$mode" in
    server) conf=$candidate ;;
    users) conf=$scratch/redis.conf; printf 'include %s\n' "$candidate" >"$conf" ;;
    *) echo "usage: $0 server|users FILE" >&2; exit 2 ;;
esac
/usr/bin/redis-server "$conf" --port 0 --unixsocket "$scratch/s" --unixsocketperm 700 \
    --dir "$scratch" --appendonly no --save "" --daemonize no --supervised no \
    --logfile "" --pidfile "$scratch/pid" >"$scratch/out" 2>&1 &
pid=$!
i=0
while [ $i -lt 100 ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" || true
        pid=""
        echo "redis-server refused $candidate:" >&2
        grep -v '^\s*$' "$scratch/out" >&2 || true
        exit 1
    fi
    # An answer (even NOAUTH) means the whole file was read and the server is up.
    if [ -S "$scratch/s" ] && /usr/bin/redis-cli -s "$scratch/s" PING 2>/dev/null | grep -Eq 'PONG|NOAUTH'; then
        exit 0
    fi
    i=$((i + 1))
    sleep 0.1
done
echo "redis-server did not come up with $candidate within 10 s" >&2
exit 1
