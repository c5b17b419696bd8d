#!/usr/bin/env bash
# with_pg_db.sh - runs a test program with DATABASE_URL naming a throwaway PostgreSQL
# database (tests/pg_db.sh), stopped and deleted afterwards; its exit status is the
# program's. Without the PostgreSQL server programs: one SKIP line, "0 passed, 0 failed".
#   tests/with_pg_db.sh PROGRAM [ARGS...]
set -uo pipefail
here=$(dirname "$0")
if ! bash "$here/pg_db.sh" check; then
    echo "SKIP $(basename "$1"): PostgreSQL server not installed (apt-get install postgresql libpq-dev)"
    echo "0 passed, 0 failed"
    exit 0
fi
conninfo=$(bash "$here/pg_db.sh" start) || { echo "FAIL throwaway_database_starts"; echo "0 passed, 1 failed"; exit 1; }
trap 'bash "$here/pg_db.sh" stop "$conninfo"' EXIT
DATABASE_URL=$conninfo "$@"
