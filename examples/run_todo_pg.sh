#!/usr/bin/env bash
# run_todo_pg.sh - what `make run-pg` runs: examples/todo_pg.c on a throwaway database.
#
#   examples/run_todo_pg.sh [BINARY]     BINARY defaults to build/todo_pg; PORT (default 8080)
#
# Starts a fresh PostgreSQL server with tests/pg_db.sh, runs the app with DATABASE_URL
# set until Ctrl-C (or SIGTERM), then always stops the server and deletes its data.
set -u
root=$(cd "$(dirname "$0")/.." && pwd) || exit 1
bin=${1:-$root/build/todo_pg}

db=$(bash "$root/tests/pg_db.sh" start) || exit 1
trap 'bash "$root/tests/pg_db.sh" stop "$db"; echo "run-pg: database stopped and deleted" >&2' EXIT
echo "run-pg: database $db (deleted when the app stops; Ctrl-C to stop)" >&2

# The app runs in the background so that this script can pass a Ctrl-C or SIGTERM on
# to it; microweb then finishes the requests in flight and exits 0.
DATABASE_URL=$db PORT=${PORT:-8080} "$bin" &
app=$!
trap 'kill -TERM "$app" 2>/dev/null' INT TERM
wait "$app"
status=$?
if [ "$status" -gt 128 ]; then # wait was cut short by the signal: wait for the app itself
    wait "$app"
    status=$?
fi
exit "$status"
