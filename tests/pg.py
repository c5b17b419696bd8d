#!/usr/bin/env python3
"""PostgreSQL hooks against a real, throwaway PostgreSQL server (tests/pg_db.sh).

usage: python3 tests/pg.py PGAPP_BINARY

Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last; on
a machine without PostgreSQL, one SKIP line and "0 passed, 0 failed".
"""
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import (HOST, Client, Server, T, Tally, build_request, capture, check, check_clean_exit,  # noqa: E402
                 check_response, command_for, error_json, exchange)

PG_DB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pg_db.sh")
USERS = {1: "alice", 2: "bob", 3: "carol", 4: "dave", 5: "erin"}
WEIRD_TEXT = "quote \" backslash \\ newline \n tab \t bell \a café €"


def pg_db(*args, env=None):
    return subprocess.run([PG_DB, *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **(env or {})))


def psql(conninfo, sql):
    done = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError("psql: " + done.stderr)
    return done.stdout.strip()


def start_app(binary, conninfo, **limits):
    env = {"DATABASE_URL": conninfo, "MW_THREADS": "4", "PGAPP_RETRY_MS": "200"}
    env.update({"PGAPP_" + k.upper(): str(v) for k, v in limits.items()})
    server = Server(command_for(binary), env)
    if not check("pgapp_starts_" + "_".join("%s%s" % kv for kv in sorted(limits.items())), server.wait_ready(),
                 server.stderr_text()):
        server.kill()
        return None
    return server


def timed(port, target):
    t0 = time.monotonic()
    resp = capture(exchange, port, "GET", target)
    return resp, time.monotonic() - t0


def user_json(i):
    return dict(status=200, json_body={"id": i, "name": USERS[i]})


def unavailable():
    return dict(status=503, headers={"Retry-After": "1"}, json_body=lambda d: d.get("status") == 503)


def test_typed_json(port):
    resp = capture(exchange, port, "GET", "/types")
    want = {"b": True, "f": False, "i2": 7, "i4": -2147483648, "i8": 9223372036854775807, "o": 26, "f4": 1.5,
            "f8": -0.1, "n": 12345.6789, "nan": None, "inf": None, "js": {"a": [1, 2]}, "jb": {"b": {"c": None}},
            "nul": None, "t": WEIRD_TEXT, "ch": "x  ", "d": "2026-01-02", 'we"ird\\\\name': 1}
    check_response("every_column_type_as_json", resp, status=200, json_body=want)
    raw = getattr(resp, "body", b"")
    check("numbers_keep_their_digits", b'"i8":9223372036854775807' in raw and b'"n":12345.678900' in raw, raw[:300])


def test_rows_and_injection(port):
    check_response("one_row_as_object", capture(exchange, port, "GET", "/users/1"), **user_json(1))
    check_response("rows_as_array", capture(exchange, port, "GET", "/users"), status=200,
                   json_body=[{"id": i, "name": n} for i, n in USERS.items()])
    check_response("missing_row_is_404", capture(exchange, port, "GET", "/users/999"), **error_json(404))
    for name, value in (("semicolon_drop_table", "1%3B%20DROP%20TABLE%20users"),
                        ("quote_or_true", "'%20OR%201%3D1%20--")):
        check_response("injection_value_is_just_a_value_" + name, capture(exchange, port, "GET", "/users/" + value),
                       **error_json(404))
    check_response("table_intact_after_injection_attempts", capture(exchange, port, "GET", "/users"), status=200,
                   json_body=lambda d: len(d) == len(USERS))


def test_errors_hide_server_messages(port):
    resp = capture(exchange, port, "GET", "/syntax-error")
    check_response("sql_error_is_500_without_server_details", resp, status=500,
                   json_body=lambda d: d.get("detail") == "database error" and "route" not in d)
    check("sql_error_text_not_sent_to_client", b"SELEC" not in getattr(resp, "raw", b"SELEC"), "")
    check_response("wrong_parameter_count_is_500_not_503", capture(exchange, port, "GET", "/param-mismatch"),
                   status=500, json_body=lambda d: d.get("detail") == "database error")


def test_concurrency(port):
    results, lock = [], threading.Lock()

    def one(i):
        uid = i % 5 + 1
        resp = capture(exchange, port, "GET", "/users/%d" % uid)
        ok = not isinstance(resp, Exception) and resp.status == 200 and json.loads(resp.body) == {
            "id": uid, "name": USERS[uid]}
        with lock:
            results.append(ok)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(T(20))
    check("hundred_concurrent_requests_over_pool_of_four", len(results) == 100 and all(results),
          "%d answered, %d correct" % (len(results), sum(results)))


def wait_until_200(port, target, limit):
    deadline, resp = time.monotonic() + limit, None
    while time.monotonic() < deadline:
        resp = capture(exchange, port, "GET", target)
        if not isinstance(resp, Exception) and resp.status == 200:
            break
    return resp


def test_database_down_and_back(port, conninfo, mode):
    check_response("healthz_up_before_" + mode, capture(exchange, port, "GET", "/healthz"), status=200)
    down = pg_db("down", conninfo, env={"PG_STOP_MODE": mode})
    check("database_stopped_" + mode, down.returncode == 0, down.stderr)
    resp, elapsed = timed(port, "/users/1")
    check_response("database_down_is_503_" + mode, resp, **unavailable())
    check("database_down_answer_within_50ms_" + mode, elapsed < T(0.05), "took %.3fs" % elapsed)
    resp, elapsed = timed(port, "/users/2")
    check("database_down_backoff_answers_at_once_" + mode, elapsed < T(0.05) and getattr(resp, "status", 0) == 503,
          "took %.3fs" % elapsed)
    check_response("healthz_503_when_down_" + mode, capture(exchange, port, "GET", "/healthz"), **unavailable())
    up = pg_db("up", conninfo)
    check("database_started_again_" + mode, up.returncode == 0, up.stderr)
    check_response("service_resumes_without_restart_" + mode, wait_until_200(port, "/users/3", T(5)),
                   **user_json(3))


def test_restart_retried_on_new_connection(server, conninfo, connections=1):
    """Idle pooled connections die with a server restart; the next request's first
    statement is retried on a new connection, so the client never sees the restart.
    With several connections, one request after another warms (and then meets) each."""
    port = server.port
    for _ in range(connections):
        check_response("warm_pool_before_restart", capture(exchange, port, "GET", "/users/5"), **user_json(5))
    restarted = pg_db("down", conninfo).returncode == 0 and pg_db("up", conninfo).returncode == 0
    check("database_restarted", restarted, "")
    for _ in range(connections):
        check_response("request_after_restart_succeeds_first_time", capture(exchange, port, "GET", "/users/5"),
                       **user_json(5))
    check("stale_connection_retry_logged",
          server.wait_for_line(re.compile(r"connection lost while idle; reconnecting"), T(2)), server.stderr_text())


def test_batch(port):
    check_response("batch_rows_in_order", capture(exchange, port, "GET", "/batch/3,1,999,5"), status=200,
                   json_body=[{"id": 3, "name": USERS[3]}, {"id": 1, "name": USERS[1]}, None,
                              {"id": 5, "name": USERS[5]}])
    check_response("batch_values_are_just_values", capture(exchange, port, "GET", "/batch/1%27%3B%20DROP%20TABLE%20users"),
                   status=200, json_body=[None])
    check_response("batch_with_a_failing_statement_is_500", capture(exchange, port, "GET", "/batch-failing"),
                   status=500, json_body=lambda d: d.get("detail") == "database error")
    check_response("batch_failure_undoes_what_ran_before_it", capture(exchange, port, "GET", "/batch/2000,2001"),
                   status=200, json_body=[None, None])


def test_batch_after_restart_retried(server, conninfo):
    """A batch as the request's first statement after a database restart: retried on a new connection."""
    port = server.port
    check_response("warm_pool_before_restart_batch", capture(exchange, port, "GET", "/batch/4"), status=200,
                   json_body=[{"id": 4, "name": USERS[4]}])
    restarted = pg_db("down", conninfo).returncode == 0 and pg_db("up", conninfo).returncode == 0
    check("database_restarted_for_batch", restarted, "")
    check_response("batch_after_restart_succeeds_first_time", capture(exchange, port, "GET", "/batch/4,2"),
                   status=200, json_body=[{"id": 4, "name": USERS[4]}, {"id": 2, "name": USERS[2]}])


def test_debug_mode_shows_server_message(port):
    check_response("debug_mode_error_carries_server_message_and_route",
                   capture(exchange, port, "GET", "/syntax-error"), status=500,
                   json_body=lambda d: "syntax error" in d.get("detail", "") and d.get("route") == "GET /syntax-error")


def wait_for_sleeping_query(conninfo, limit):
    """Readiness: the /sleep handler's statement is running in the database."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if psql(conninfo, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' "
                          "AND state = 'active' AND pid <> pg_backend_pid()") != "0":
            return True
    return False


def test_pool_exhausted(port, conninfo):
    """Pool of one held by a slow query: the next request gets 503 after the acquire timeout."""
    slow = {}

    def hold():
        slow["resp"] = capture(exchange, port, "GET", "/sleep/1500")
    t = threading.Thread(target=hold)
    t.start()
    busy = wait_for_sleeping_query(conninfo, T(5))
    check("slow_query_holds_the_only_connection", busy, "no pg_sleep seen in pg_stat_activity")
    resp, elapsed = timed(port, "/users/1")
    check_response("no_free_connection_is_503", resp, **unavailable())
    check("no_free_connection_waits_the_acquire_timeout", 0.18 <= elapsed < T(1.0), "took %.3fs" % elapsed)
    t.join(T(10))
    check_response("slow_query_completes", slow.get("resp", TimeoutError("no answer")), status=200,
                   json_body={"slept": True})


def test_transaction_hygiene(port):
    for how in ("open", "failed"):
        check_response("handler_leaves_transaction_" + how, capture(exchange, port, "GET", "/leave-open/" + how),
                       status=200)
        check_response("next_request_clean_after_" + how + "_transaction", capture(exchange, port, "GET", "/state"),
                       status=200, json_body={"uncommitted_rows": 0, "no_transaction_open": True})


def test_statement_timeout(port):
    resp, elapsed = timed(port, "/sleep/3000")
    check_response("statement_timeout_is_504", resp, status=504, json_body=lambda d: d.get("status") == 504)
    check("statement_timeout_cuts_the_query", elapsed < T(2), "took %.3fs" % elapsed)
    check_response("connection_usable_after_timeout", capture(exchange, port, "GET", "/users/4"), **user_json(4))


def test_bad_settings_refused_at_start(binary):
    server = Server(command_for(binary), {"DATABASE_URL": "hots=/tmp dbname=x"})
    status = server.wait_exit(T(10))
    check("bad_database_settings_stop_the_start", status == 1, "exit status %s" % status)
    check("bad_database_settings_reported_in_one_line",
          server.wait_for_line(re.compile(r"^microweb: database settings: .*hots"), T(2)), server.stderr_text())
    server.kill()


def test_setup_sql(binary, conninfo):
    """mw_pg_setup: SQL that works has run once the server listens; SQL that fails
    stops the start with the database's words."""
    server = Server(command_for(binary), {"DATABASE_URL": conninfo,
                                          "PGAPP_SETUP": "CREATE TABLE IF NOT EXISTS setup_probe (id int);"
                                                         "CREATE TABLE IF NOT EXISTS setup_probe (id int)"})
    try:
        if check("setup_sql_then_serving", server.wait_ready(), server.stderr_text()):
            check("setup_sql_made_its_table", psql(conninfo, "SELECT count(*) FROM setup_probe").strip() == "0")
            check("setup_sql_notice_not_logged", not any("NOTICE" in line for line in server.lines),
                  server.stderr_text())
    finally:
        server.kill()
    server = Server(command_for(binary), {"DATABASE_URL": conninfo, "PGAPP_SETUP": "CREATE TABLE broken ("})
    status = server.wait_exit(T(10))
    check("setup_sql_failing_stops_the_start", status == 1, "exit status %s" % status)
    check("setup_sql_failing_reported_with_the_database_words",
          server.wait_for_line(re.compile(r"^microweb: database setup failed: ERROR: +syntax error"), T(2)),
          server.stderr_text())
    server.kill()


def run_app(binary, conninfo, tests, **limits):
    """Runs each test with the server's port (or, for a test taking `server`, the server)."""
    server = start_app(binary, conninfo, **limits)
    if not server:
        return
    try:
        for test in tests:
            try:
                test(server if getattr(test, "wants_server", False) else server.port)
            except Exception as e:
                check(test.__name__ if hasattr(test, "__name__") else "test", False, "%s: %s" % (type(e).__name__, e))
        server.terminate()
        check_clean_exit("pgapp", server)
    finally:
        server.kill()


def main(argv):
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    if pg_db("check").returncode != 0:
        print("SKIP pg: PostgreSQL server not installed (apt-get install postgresql libpq-dev)")
        print("0 passed, 0 failed")
        return 0
    binary = argv[0]
    started = pg_db("start")
    if not check("throwaway_database_starts", started.returncode == 0, started.stderr):
        print("%d passed, %d failed" % (Tally.passed, Tally.failed))
        return 1
    conninfo = started.stdout.strip()
    try:
        psql(conninfo, "CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL); INSERT INTO users VALUES "
                       + ", ".join("(%d, '%s')" % kv for kv in USERS.items()))
        run_app(binary, conninfo, [test_typed_json, test_rows_and_injection, test_errors_hide_server_messages,
                                   test_concurrency, test_batch,
                                   lambda p: test_database_down_and_back(p, conninfo, "fast"),
                                   lambda p: test_database_down_and_back(p, conninfo, "immediate")],
                pool_size=4)
        restart = lambda srv: test_restart_retried_on_new_connection(srv, conninfo)  # noqa: E731
        restart.wants_server = True
        run_app(binary, conninfo, [restart], pool_size=1)
        print("-- the same, single statements on 2 shared connections (MW_PG_SHARED)", flush=True)
        restart_shared = lambda srv: test_restart_retried_on_new_connection(srv, conninfo, 2)  # noqa: E731
        restart_shared.wants_server = True
        run_app(binary, conninfo, [restart_shared, test_typed_json, test_rows_and_injection, test_errors_hide_server_messages,
                                   test_concurrency, test_batch,
                                   lambda p: test_database_down_and_back(p, conninfo, "fast"),
                                   lambda p: test_database_down_and_back(p, conninfo, "immediate")],
                pool_size=4, shared=2)
        batch_restart = lambda srv: test_batch_after_restart_retried(srv, conninfo)  # noqa: E731
        batch_restart.wants_server = True
        run_app(binary, conninfo, [batch_restart], pool_size=1)
        run_app(binary, conninfo, [test_debug_mode_shows_server_message], pool_size=1, debug=1)
        run_app(binary, conninfo, [lambda p: test_pool_exhausted(p, conninfo)], pool_size=1, acquire_timeout_ms=200)
        run_app(binary, conninfo, [test_transaction_hygiene, test_statement_timeout], pool_size=1,
                statement_timeout_ms=300)
        test_bad_settings_refused_at_start(binary)
        test_setup_sql(binary, conninfo)
    finally:
        pg_db("stop", conninfo)
    print("%d passed, %d failed" % (Tally.passed, Tally.failed), flush=True)
    return 0 if Tally.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
