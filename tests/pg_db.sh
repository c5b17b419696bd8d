#!/usr/bin/env bash
# pg_db.sh - a throwaway PostgreSQL server for microweb's database tests and `make run-pg`.
#
#   tests/pg_db.sh start          prints one line: the libpq conninfo of a new, empty server
#   tests/pg_db.sh stop CONNINFO  stops it and deletes its directory
#   tests/pg_db.sh down CONNINFO  stops the server, keeping its data (PG_STOP_MODE=immediate: a crash)
#   tests/pg_db.sh up CONNINFO    starts it again on the same port and socket
#   tests/pg_db.sh check          exit 0 when the PostgreSQL server programs are installed
#
# Debian keeps initdb and pg_ctl in /usr/lib/postgresql/<version>/bin, off PATH. initdb
# refuses to run as root, so as root the server runs as the "postgres" user. The
# server listens on 127.0.0.1 and a unix socket in its temporary directory, on a free
# port, with trust authentication and durability switched off (the data is thrown away).
set -euo pipefail

bindir() {
    local d best=""
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do [ -x "$d/initdb" ] && best=$d; done
    [ -z "$best" ] && command -v initdb >/dev/null 2>&1 && best=$(dirname "$(command -v initdb)")
    [ -n "$best" ] || return 1
    echo "$best"
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

dir_of() { # the server's directory, from a conninfo "host=DIR port=..."
    local d=${1#host=}
    echo "${d%% *}"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

server_options() { # dir port
    echo "-k $1 -p $2 -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
}

start() {
    local bin dir port
    bin=$(bindir) || { echo "pg_db: PostgreSQL server not installed (apt-get install postgresql libpq-dev)" >&2; exit 1; }
    dir=$(mktemp -d /tmp/mwpg.XXXXXX)
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    cd "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U mw -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        server_options "$dir" "$port" >"$dir/options"
        if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -o "$(cat "$dir/options")" start >/dev/null; then
            "$bin/createdb" -h "$dir" -p "$port" -U mw mwtest
            echo "host=$dir port=$port user=mw dbname=mwtest"
            return 0
        fi
    done
    tail -5 "$dir/server.log" >&2
    rm -rf "$dir"
    exit 1
}

pg_ctl_in() { # dir args...
    local bin dir=$1
    shift
    bin=$(bindir)
    (cd "$dir" && as_owner "$bin/pg_ctl" -D "$dir/data" "$@" >/dev/null)
}

case "${1:-}" in
    start) start ;;
    stop)
        dir=$(dir_of "$2")
        [ -f "$dir/options" ] || { echo "pg_db: $dir is not a pg_db server" >&2; exit 1; }
        pg_ctl_in "$dir" -m fast -w stop 2>/dev/null || pg_ctl_in "$dir" -m immediate -w stop 2>/dev/null || true
        rm -rf "$dir"
        ;;
    down) pg_ctl_in "$(dir_of "$2")" -m "${PG_STOP_MODE:-fast}" -w stop ;;
    up)
        dir=$(dir_of "$2")
        pg_ctl_in "$dir" -l "$dir/server.log" -w -t 30 -o "$(cat "$dir/options")" start
        ;;
    check) bindir >/dev/null ;;
    *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
