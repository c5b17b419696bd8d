#!/usr/bin/env python3
"""End-to-end test of examples/todo_pg.c against a real, throwaway PostgreSQL server.

Usage:  python3 tests/todo_pg.py TODO_BINARY

TODO_BINARY is examples/todo_pg.c built (make build/todo_pg). A fresh database is started
with tests/pg_db.sh and always stopped and deleted at the end. Without the PostgreSQL
server programs (tests/pg_db.sh check fails) the test prints one SKIP line and
"0 passed, 0 failed" and exits 0.

Output: one line per check, "PASS name" or "FAIL name: detail", then "N passed, N failed".
Exit status 0 when nothing failed, 1 otherwise. E2E_TIMEOUT_SCALE and E2E_WRAPPER work as
in tests/e2e.py (the helpers come from there).
"""
import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from e2e import (HOST, Server, T, Tally, capture, check, check_clean_exit,  # noqa: E402
                 check_response, command_for, error_json, exchange, http_client_response, short, starts_with)

PG_DB = os.path.join(HERE, "pg_db.sh")
SKIP_LINE = "SKIP todo_pg: PostgreSQL server not installed (apt-get install postgresql libpq-dev)"
INJECTION = "'); DROP TABLE todos; --"
# quotes, backslashes, newlines, a tab, a control byte and UTF-8 of 2, 3 and 4 bytes
SPECIAL = 'She said "hi" \\ C:\\path\\n \'single\'\nsecond line\r\n\ttab \x01 caf\u00e9 \u2615 \U0001F600 \u65e5\u672c'


# ---------------------------------------------------------------------------
# the database
# ---------------------------------------------------------------------------
def pg_db(*args):
    return subprocess.run(["bash", PG_DB, *args], capture_output=True, text=True, timeout=T(120))


def psql_binary():
    found = shutil.which("psql")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    return candidates[-1] if candidates else None


class Database:
    def __init__(self, conninfo):
        self.conninfo = conninfo
        self.psql = psql_binary()

    def sql(self, query):
        """The query's output (unaligned, tuples only), or an exception."""
        if not self.psql:
            return RuntimeError("psql not found")
        done = subprocess.run([self.psql, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", self.conninfo, "-c", query],
                              capture_output=True, text=True, timeout=T(30))
        if done.returncode != 0:
            return RuntimeError("psql exited %d: %s" % (done.returncode, done.stderr.strip()))
        return done.stdout.rstrip("\n")

    def check_sql(self, name, query, want):
        got = self.sql(query)
        return check(name, got == want, "%s gave %s, want %s" % (short(query, 80), short(got), short(want)))


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------
class Api:
    def __init__(self, port):
        self.port = port

    def call(self, method, path, body=None, raw=None, ascii_json=False):
        """One request on a fresh connection: body as JSON (raw UTF-8 unless ascii_json),
        or raw bytes as they are. The Response, or the network error."""
        data = raw if raw is not None else b"" if body is None else \
            json.dumps(body, ensure_ascii=ascii_json).encode("utf-8")
        headers = {"Content-Type": "application/json"} if data else {}
        return capture(exchange, self.port, method, path, headers, data)


def doc_of(resp):
    """The JSON document of a response, or None."""
    try:
        return json.loads(resp.body)
    except (AttributeError, ValueError):
        return None


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def todo_json(status, title, done=None, todo_id=None):
    """A response holding one todo: integer id (the given one when set), the title, done."""
    def ok(d):
        return (isinstance(d, dict) and set(d) == {"id", "title", "done"} and is_int(d["id"])
                and (todo_id is None or d["id"] == todo_id) and d["title"] == title
                and (done is None or d["done"] is done) and isinstance(d["done"], bool))
    return dict(status=status, json_body=ok, headers={"Content-Type": starts_with("application/json")})


def bad_request(word):
    """400 with a JSON error whose detail mentions word."""
    return dict(status=400, headers={"Content-Type": starts_with("application/json")},
                json_body=lambda d: isinstance(d, dict) and d.get("status") == 400 and "error" in d
                and isinstance(d.get("detail"), str) and word.lower() in d["detail"].lower())


# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------
def check_startup_refused(binary):
    """No DATABASE_URL, or a database nobody answers at: a line that says so, then
    mw_run's "not starting" line, and exit 1."""
    with socket.socket() as held:  # bound, not listening: connecting to it is refused
        held.bind((HOST, 0))
        dead = "host=%s port=%d user=mw dbname=mwtest connect_timeout=5" % (HOST, held.getsockname()[1])
        env_without = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        for name, env, why in (("startup_refused_without_database_url", env_without, "set DATABASE_URL"),
                               ("startup_refused_when_database_unreachable", dict(env_without, DATABASE_URL=dead),
                                "database setup failed: connection to server")):
            try:
                done = subprocess.run(command_for(binary), env=dict(env, PORT="0", HOST=HOST), capture_output=True,
                                      stdin=subprocess.DEVNULL, text=True, timeout=T(30))
            except (OSError, subprocess.TimeoutExpired) as e:
                check(name, False, "%s: %s" % (type(e).__name__, e))
                continue
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            check(name, done.returncode == 1 and len(lines) == 2 and why in lines[0]
                  and lines[1] == "microweb: not starting: 1 setup error(s) above" and "listening" not in done.stderr,
                  "exit status %d, stderr %s" % (done.returncode, short(done.stderr, 400)))


def check_create(api, db, made):
    """POST /todos: 201 with the new todo; records what it made in made[id] = (title, done)."""
    def create(name, body, title, done=False, **kw):
        resp = api.call("POST", "/todos", body, **kw)
        if check_response(name, resp, **todo_json(201, title, done)):
            made[doc_of(resp)["id"]] = (title, done)
            return doc_of(resp)["id"]
        return None

    first = create("create_returns_201_with_integer_id", {"title": "buy milk"}, "buy milk")
    create("create_accepts_done_true", {"title": "already done", "done": True}, "already done", True)
    create("create_accepts_done_false", {"title": "not yet", "done": False}, "not yet", False)
    special = create("create_title_round_trips_quotes_backslashes_newlines_utf8", {"title": SPECIAL}, SPECIAL)
    create("create_title_sent_as_json_escapes_round_trips", {"title": SPECIAL + " (escaped)"},
           SPECIAL + " (escaped)", ascii_json=True)
    create("create_ignores_unknown_keys", {"title": "extra", "colour": "red"}, "extra")
    create("create_accepts_title_of_500_ascii_characters", {"title": "a" * 500}, "a" * 500)
    create("create_accepts_title_of_500_two_byte_characters", {"title": "\u00e9" * 500}, "\u00e9" * 500)
    create("create_accepts_title_of_500_four_byte_characters", {"title": "\U0001F600" * 500}, "\U0001F600" * 500)
    if first is not None and len(made) > 1:
        ids = sorted(made)
        check("create_ids_increase", ids[0] == first and len(set(ids)) == len(ids), "ids %s" % ids)
    if special is not None:
        check_response("get_title_round_trips_quotes_backslashes_newlines_utf8",
                       api.call("GET", "/todos/%d" % special), **todo_json(200, SPECIAL, False, special))
        db.check_sql("stored_title_is_byte_exact",
                     "SELECT encode(convert_to(title, 'UTF8'), 'hex') FROM todos WHERE id = %d" % special,
                     SPECIAL.encode("utf-8").hex())


def check_list(api, made, name):
    """GET /todos: exactly the todos in made, in id order."""
    resp = api.call("GET", "/todos")
    want = [{"id": i, "title": t, "done": d} for i, (t, d) in sorted(made.items())]
    check_response(name, resp, status=200, json_body=want,
                   headers={"Content-Type": starts_with("application/json")})


def check_get(api, made):
    todo_id = min(made)
    title, done = made[todo_id]
    check_response("get_existing_todo", api.call("GET", "/todos/%d" % todo_id), **todo_json(200, title, done, todo_id))
    check_response("get_missing_id_404", api.call("GET", "/todos/987654321"), **error_json(404))
    check_response("get_negative_id_404", api.call("GET", "/todos/-1"), **error_json(404))
    check_response("get_largest_int64_id_404", api.call("GET", "/todos/9223372036854775807"), **error_json(404))
    check_response("get_zero_padded_id_finds_the_todo", api.call("GET", "/todos/000%d" % todo_id),
                   **todo_json(200, title, done, todo_id))


def check_non_integer_ids(api):
    """A non-integer id never reaches a handler: 404 for every method."""
    for label, path in (("abc", "/todos/abc"), ("fraction", "/todos/1.5"), ("exponent", "/todos/1e3"),
                        ("digits_then_letters", "/todos/12abc"), ("hex", "/todos/0x1f"), ("plus_sign", "/todos/+1"),
                        ("beyond_int64", "/todos/99999999999999999999"), ("space", "/todos/%201"),
                        ("sql", "/todos/1;DROP%20TABLE%20todos")):
        for method, body in (("GET", None), ("PUT", {"title": "x"}), ("DELETE", None)):
            check_response("non_integer_id_%s_%s_404" % (label, method.lower()), api.call(method, path, body),
                           **error_json(404))


def check_update(api, made):
    resp = api.call("POST", "/todos", {"title": "to update"})
    if not check_response("update_setup_create", resp, **todo_json(201, "to update", False)):
        return
    todo_id = doc_of(resp)["id"]
    path = "/todos/%d" % todo_id
    check_response("update_done_only_keeps_title", api.call("PUT", path, {"done": True}),
                   **todo_json(200, "to update", True, todo_id))
    check_response("update_title_only_keeps_done", api.call("PUT", path, {"title": "renamed"}),
                   **todo_json(200, "renamed", True, todo_id))
    check_response("update_title_and_done", api.call("PUT", path, {"title": SPECIAL, "done": False}),
                   **todo_json(200, SPECIAL, False, todo_id))
    check_response("update_is_stored", api.call("GET", path), **todo_json(200, SPECIAL, False, todo_id))
    check_response("update_missing_id_404", api.call("PUT", "/todos/987654321", {"title": "x"}), **error_json(404))
    check_response("update_missing_id_creates_nothing", api.call("GET", "/todos/987654321"), **error_json(404))
    made[todo_id] = (SPECIAL, False)


def check_delete(api, made):
    resp = api.call("POST", "/todos", {"title": "to delete"})
    if not check_response("delete_setup_create", resp, **todo_json(201, "to delete", False)):
        return
    path = "/todos/%d" % doc_of(resp)["id"]
    check_response("delete_returns_204_without_body", api.call("DELETE", path), status=204, body=b"")
    check_response("deleted_todo_get_404", api.call("GET", path), **error_json(404))
    check_response("deleted_todo_delete_again_404", api.call("DELETE", path), **error_json(404))
    check_response("deleted_todo_put_404", api.call("PUT", path, {"done": True}), **error_json(404))
    check_response("delete_missing_id_404", api.call("DELETE", "/todos/987654321"), **error_json(404))
    check_list(api, made, "list_after_delete_lacks_only_the_deleted_todo")


# Bodies with what the error detail must mention.
NOT_JSON = [("not_json", b"{oops", "json"), ("empty_body", b"", "json"), ("truncated", b'{"title": "a"', "json"),
            ("trailing_garbage", b'{"title": "a"} x', "json"), ("invalid_utf8", b'{"title": "\xff"}', "json"),
            ("single_quotes", b"{'title': 'a'}", "json"), ("lone_surrogate", b'{"title": "\\ud800"}', "json")]
NOT_OBJECT = [("array", [{"title": "a"}], "object"), ("string", "a", "object"), ("number", 42, "object"),
              ("null", None, "object"), ("true", True, "object")]
BAD_TITLES = [("title_number", {"title": 5}, "title"), ("title_null", {"title": None}, "title"),
              ("title_bool", {"title": True}, "title"), ("title_array", {"title": ["a"]}, "title"),
              ("title_object", {"title": {"a": 1}}, "title"), ("title_empty", {"title": ""}, "title"),
              ("title_501_characters", {"title": "a" * 501}, "title"),
              ("title_501_two_byte_characters", {"title": "\u00e9" * 501}, "title"),
              ("title_with_nul", {"title": "a\u0000b"}, "title")]
BAD_DONE = [("done_string", {"title": "a", "done": "true"}, "done"), ("done_number", {"title": "a", "done": 1}, "done"),
            ("done_null", {"title": "a", "done": None}, "done")]


def send_bad(api, method, path, label, body, word):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    check_response("%s_%s_400" % (method.lower(), label), api.call(method, path, raw=raw), **bad_request(word))


def check_bad_bodies(api, made):
    for label, body, word in NOT_JSON + NOT_OBJECT + BAD_TITLES + BAD_DONE + [
            ("title_missing", {}, "title"), ("title_missing_done_given", {"done": True}, "title")]:
        send_bad(api, "POST", "/todos", label, body, word)
    check_list(api, made, "post_bad_bodies_created_nothing")
    todo_id = min(made)
    path = "/todos/%d" % todo_id
    for label, body, word in NOT_JSON + NOT_OBJECT + BAD_TITLES + BAD_DONE + [
            ("no_field", {}, "title"), ("only_unknown_field", {"colour": "red"}, "title")]:
        send_bad(api, "PUT", path, label, body, word)
    title, done = made[todo_id]
    check_response("put_bad_bodies_changed_nothing", api.call("GET", path), **todo_json(200, title, done, todo_id))


def check_injection(api, db, made):
    resp = api.call("POST", "/todos", {"title": INJECTION})
    if not check_response("sql_injection_title_created", resp, **todo_json(201, INJECTION, False)):
        return
    todo_id = doc_of(resp)["id"]
    made[todo_id] = (INJECTION, False)
    check_response("sql_injection_title_stored_literally", api.call("GET", "/todos/%d" % todo_id),
                   **todo_json(200, INJECTION, False, todo_id))
    other = api.call("PUT", "/todos/%d" % todo_id, {"title": "x' WHERE false; UPDATE todos SET done = true; --"})
    check_response("sql_injection_in_update_stored_literally", other,
                   **todo_json(200, "x' WHERE false; UPDATE todos SET done = true; --", False, todo_id))
    back = api.call("PUT", "/todos/%d" % todo_id, {"title": INJECTION})
    check_response("sql_injection_title_restored", back, **todo_json(200, INJECTION, False, todo_id))
    db.check_sql("sql_injection_table_still_there", "SELECT to_regclass('public.todos') IS NOT NULL", "t")
    db.check_sql("sql_injection_row_stored_literally",
                 "SELECT count(*) FROM todos WHERE title = $q$%s$q$ AND id = %d" % (INJECTION, todo_id), "1")
    db.check_sql("sql_injection_changed_no_other_row", "SELECT count(*) FROM todos WHERE done",
                 str(sum(1 for t, d in made.values() if d)))
    check_list(api, made, "list_after_sql_injection_is_intact")


def check_concurrent_creates(api, made, n=24):
    """n clients create at once on keep-alive connections (http.client): n distinct ids."""
    results, trouble = {}, []
    barrier = threading.Barrier(n)

    def client(i):
        conn = http.client.HTTPConnection(HOST, api.port, timeout=T(10))
        try:
            barrier.wait(T(10))
            for k in range(3):
                title = "client %d item %d" % (i, k)
                conn.request("POST", "/todos", json.dumps({"title": title}), {"Content-Type": "application/json"})
                r = conn.getresponse()
                resp = http_client_response(r, r.read())
                d = doc_of(resp)
                if resp.status == 201 and isinstance(d, dict) and d.get("title") == title and is_int(d.get("id")):
                    results[d["id"]] = title
                else:
                    trouble.append("%s: %s" % (title, resp.summary()))
        except Exception as e:  # reported below
            barrier.abort()
            trouble.append("client %d: %s" % (i, short(e)))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(T(60))
    check("concurrent_creates_all_201_with_distinct_ids", len(results) == 3 * n and not trouble,
          "%d distinct ids of %d; first problems: %s" % (len(results), 3 * n, trouble[:3]))
    for todo_id, title in results.items():
        made[todo_id] = (title, False)
    check_list(api, made, "list_after_concurrent_creates_holds_them_all")


def wait_status(api, path, status, seconds):
    """Polls path until it answers status (the pool's retry pause may hold the first answers)."""
    end = time.monotonic() + T(seconds)
    while True:
        resp = api.call("GET", path)
        if getattr(resp, "status", None) == status or time.monotonic() >= end:
            return resp
        time.sleep(0.1)


def check_health(api, conninfo):
    """/livez and /readyz; with the database stopped /readyz is 503 and /livez still 200."""
    check_response("livez_200", api.call("GET", "/livez"), status=200, json_body={"status": "alive"})
    check_response("readyz_200_with_the_database_up", api.call("GET", "/readyz"), status=200,
                   json_body={"status": "ready"})
    down = pg_db("down", conninfo)
    if not check("database_stopped_for_readiness", down.returncode == 0, short(down.stderr, 400)):
        return
    try:
        resp = wait_status(api, "/readyz", 503, 10)
        check_response("readyz_503_with_the_database_down", resp, status=503)
        check("readyz_503_says_database_unavailable", (doc_of(resp) or {}).get("detail") == "database unavailable",
              short(getattr(resp, "body", resp)))
        check_response("livez_still_200_with_the_database_down", api.call("GET", "/livez"), status=200)
    finally:
        up = pg_db("up", conninfo)
    if check("database_started_again", up.returncode == 0, short(up.stderr, 400)):
        check_response("readyz_200_again_once_the_database_is_back", wait_status(api, "/readyz", 200, 10),
                       status=200)
        check_readiness_with_a_database_gone_quiet(api, conninfo)


def server_processes(conninfo):
    """The database server's processes: the postmaster (data/postmaster.pid) and its children."""
    directory = conninfo.split()[0].removeprefix("host=")
    with open(os.path.join(directory, "data", "postmaster.pid")) as f:
        postmaster = int(f.readline())
    children = []
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % entry) as f:
                if entry.isdigit() and int(f.read().rsplit(")", 1)[1].split()[1]) == postmaster:
                    children.append(int(entry))
        except (OSError, IndexError, ValueError):
            pass
    return [postmaster] + children


def check_readiness_with_a_database_gone_quiet(api, conninfo):
    """Every server process stopped (SIGSTOP): connections stay open and nothing answers,
    as when a network drops every packet. /readyz still answers, 503, within the connect
    timeout (2 s) instead of waiting on the pooled connection."""
    pids = server_processes(conninfo)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        resp = api.call("GET", "/readyz")
        took = time.monotonic() - started
        check_response("readyz_503_when_the_database_stops_answering", resp, status=503)
        check("readyz_answers_within_the_connect_timeout_when_the_database_is_quiet", took < T(4),
              "took %.1fs" % took)
        check_response("livez_200_when_the_database_stops_answering", api.call("GET", "/livez"), status=200)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    check_response("readyz_200_once_the_database_answers_again", wait_status(api, "/readyz", 200, 10), status=200)


def run_server(binary, conninfo, name, body):
    """Starts the app on the database, runs body(api), then SIGTERM: exit status 0."""
    try:
        server = Server(command_for(binary), {"DATABASE_URL": conninfo, "MW_THREADS": "4"})
    except OSError as e:
        check(name + "_starts_and_reports_port", False, "cannot start %s: %s" % (binary, e))
        return
    try:
        if not check(name + "_starts_and_reports_port", server.wait_ready(), "stderr: %s" % server.stderr_text()):
            return
        try:
            body(Api(server.port))
        except Exception as e:  # a bug in a check: one FAIL, then still stop the server
            check(name + "_checks_ran", False, "%s: %s" % (type(e).__name__, e))
        server.terminate()
        check_clean_exit(name, server)
        with server.cond:
            noise = [line for line in server.lines if not line.startswith("microweb: listening")
                     and line != "microweb: stopped"]
        check(name + "_stderr_has_no_errors_or_notices", not noise, "stderr: %s" % short(noise, 400))
    finally:
        server.kill()


def run(binary, conninfo):
    db = Database(conninfo)
    check("psql_found", db.psql, "neither psql on PATH nor /usr/lib/postgresql/*/bin/psql")
    check_startup_refused(binary)
    db.check_sql("fresh_database_has_no_todos_table", "SELECT to_regclass('public.todos') IS NULL", "t")
    made = {}

    def first_run(api):
        db.check_sql("table_created_on_start",
                     "SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', ' ORDER BY"
                     " ordinal_position) FROM information_schema.columns WHERE table_name = 'todos'",
                     "id bigint NO, title text NO, done boolean NO")
        check_response("list_on_fresh_database_is_empty", api.call("GET", "/todos"), status=200, json_body=[],
                       headers={"Content-Type": starts_with("application/json")})
        check_create(api, db, made)
        if not made:
            return
        check_list(api, made, "list_returns_every_todo_in_id_order")
        check_get(api, made)
        check_non_integer_ids(api)
        check_update(api, made)
        check_delete(api, made)
        check_bad_bodies(api, made)
        check_injection(api, db, made)
        check_concurrent_creates(api, made)

    run_server(binary, conninfo, "todo_pg", first_run)

    def second_run(api):  # CREATE TABLE IF NOT EXISTS keeps the table and its rows
        check_list(api, made, "restart_keeps_table_and_todos")
        resp = api.call("POST", "/todos", {"title": "after restart"})
        check_response("restart_create_continues_ids", resp, **todo_json(201, "after restart", False))
        d = doc_of(resp)
        check("restart_new_id_above_old_ones", isinstance(d, dict) and made and d.get("id", 0) > max(made),
              "got %s" % short(d))
        check_health(api, conninfo)

    run_server(binary, conninfo, "todo_pg_restarted", second_run)


def main(argv):
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    if pg_db("check").returncode != 0:
        print(SKIP_LINE)
        print("0 passed, 0 failed", flush=True)
        return 0
    started = pg_db("start")
    conninfo = started.stdout.strip()
    if check("database_starts", started.returncode == 0 and conninfo.startswith("host="),
             "pg_db.sh start exited %d: %s" % (started.returncode, short(started.stderr, 400))):
        try:
            run(argv[0], conninfo)
        finally:
            stopped = pg_db("stop", conninfo)
            directory = conninfo.split()[0].removeprefix("host=")
            check("database_stopped_and_deleted", stopped.returncode == 0 and not os.path.exists(directory),
                  "pg_db.sh stop exited %d: %s" % (stopped.returncode, short(stopped.stderr, 400)))
    print("%d passed, %d failed" % (Tally.passed, Tally.failed), flush=True)
    return 0 if Tally.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
