#!/bin/sh
# What the suite talks to, made ready on this machine: PostgreSQL and Redis started when they are down;
# with "all", Debian's Chromium (for the browser tests) and curl (for examples/curl.sh) installed when missing.
# As root it does it; otherwise it says exactly what to run. Called by `make test` and `make test-unit`.
set -eu
want=${1:-all}

as_root() {  # as_root WHAT COMMAND...: run it, or tell a non-root user the command and stop
    what=$1; shift
    if [ "$(id -u)" = 0 ]; then
        "$@"
    else
        echo "setup: $what is needed; run as root: $*" >&2
        exit 1
    fi
}

wait_for() {  # wait_for NAME COMMAND...: up to 30 s for a service to answer
    name=$1; shift
    i=0
    while [ $i -lt 60 ]; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5; i=$((i + 1))
    done
    echo "setup: $name did not come up" >&2
    exit 1
}

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    echo "setup: starting PostgreSQL"
    as_root "PostgreSQL on 127.0.0.1:5432" pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432 -q

if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
    echo "setup: starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
fi
wait_for Redis sh -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'

[ "$want" = all ] || exit 0

# Browser tests drive Debian's Chromium through playwright-core; a downloaded browser is never used.
if [ ! -x /usr/bin/chromium ] || ! command -v curl >/dev/null 2>&1; then
    echo "setup: installing chromium and curl from Debian"
    export DEBIAN_FRONTEND=noninteractive
    as_root "Debian's chromium and curl" apt-get update -qq
    as_root "Debian's chromium and curl" apt-get install -y -qq chromium curl >/dev/null
fi
