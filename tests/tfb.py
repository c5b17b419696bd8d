#!/usr/bin/env python3
"""The TechEmpower test types of bench/tfb/app.c, by the project's rules, against a real,
throwaway PostgreSQL server loaded with bench/tfb/create.sql.

usage: python3 tests/tfb.py TFB_APP_BINARY

Checks every route's status, Content-Type, Server and Date; the JSON shapes and that the
rows are the table's; the queries parameter's clamping; the Fortunes page byte for
byte (and with a row added to the table); that both update variants change the rows
they answer with, also under concurrent clients. Prints "PASS name" / "FAIL name:
detail" per check and "N passed, N failed" last; without PostgreSQL, one SKIP line
and "0 passed, 0 failed".
"""
import json
import os
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from e2e import (T, capture, check, check_response, date_problem, exchange, serve_example, short,  # noqa: E402
                 summary)

PG_DB = os.path.join(HERE, "pg_db.sh")
CREATE_SQL = os.path.join(os.path.dirname(HERE), "bench", "tfb", "create.sql")
JSON_TYPE = "application/json"
ROW_KEYS = {"id", "randomNumber"}

FORTUNES = ("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>"
            "<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a browser alert box.&quot;);"
            "&lt;/script&gt;</td></tr>"
            "<tr><td>4</td><td>A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1</td></tr>"
            "<tr><td>5</td><td>A computer program does what you tell it to do, not what you want it to do.</td></tr>"
            "<tr><td>2</td><td>A computer scientist is someone who fixes things that aren&#39;t broken.</td></tr>"
            "<tr><td>8</td><td>A list is only as strong as its weakest link. \u2014 Donald Knuth</td></tr>"
            "<tr><td>0</td><td>Additional fortune added at request time.</td></tr>"
            "<tr><td>3</td><td>After enough decimal places, nobody gives a damn.</td></tr>"
            "<tr><td>7</td><td>Any program that runs right is obsolete.</td></tr>"
            "<tr><td>10</td><td>Computers make very fast, very accurate mistakes.</td></tr>"
            "<tr><td>6</td><td>Emacs is a nice operating system, but I prefer UNIX. \u2014 Tom Christaensen</td></tr>"
            "<tr><td>9</td><td>Feature: A bug with seniority.</td></tr>"
            "<tr><td>1</td><td>fortune: No such file or directory</td></tr>"
            "<tr><td>12</td><td>\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af\u306e\u30d9\u30f3\u30c1\u30de\u30fc\u30af</td></tr>"
            "</table></body></html>").encode("utf-8")

# the queries parameter as sent, and the count it stands for
COUNTS = [("", 1), ("?queries=", 1), ("?queries=0", 1), ("?queries=-1", 1), ("?queries=foo", 1), ("?queries=3x", 1),
          ("?queries=1", 1), ("?queries=7", 7), ("?queries=20", 20), ("?queries=500", 500), ("?queries=501", 500),
          ("?queries=99999999999999999999", 500)]


def pg_db(*args):
    return subprocess.run(["bash", PG_DB, *args], capture_output=True, text=True, timeout=T(120))


def psql(conninfo, *args):
    done = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", conninfo, *args],
                          capture_output=True, text=True, timeout=T(60))
    if done.returncode != 0:
        raise RuntimeError("psql: " + done.stderr.strip())
    return done.stdout.strip()


def world(conninfo):
    """The world table: {id: randomnumber}."""
    return {int(i): int(n) for i, n in (line.split("|") for line in psql(conninfo, "-c",
                                                                          "SELECT id, randomnumber FROM world").split())}


def get(port, target):
    return capture(exchange, port, "GET", target)


def headers_problem(resp, content_type):
    """What is wrong with the headers every answer must carry, or None."""
    if resp.header("Server") != "microweb":
        return "Server %s" % short(resp.header("Server"))
    if resp.header("Content-Type") != content_type:
        return "Content-Type %s, want %s" % (short(resp.header("Content-Type")), content_type)
    return date_problem(resp.header("Date"))


def check_route(name, resp, content_type):
    """200 with Server, Date and the Content-Type; the response, or None."""
    if not check_response(name + "_200", resp, status=200):
        return None
    problem = headers_problem(resp, content_type)
    check(name + "_server_date_content_type", problem is None, problem)
    return resp


def is_row(v, table=None):
    return (isinstance(v, dict) and set(v) == ROW_KEYS and all(type(v[k]) is int for k in ROW_KEYS)
            and 1 <= v["id"] <= 10000 and 1 <= v["randomNumber"] <= 10000
            and (table is None or table.get(v["id"]) == v["randomNumber"]))


def body_json(resp):
    try:
        return json.loads(resp.body)
    except (ValueError, AttributeError):
        return None


def test_json_and_plaintext(port):
    resp = check_route("json", get(port, "/json"), JSON_TYPE)
    if resp:
        check_response("json_body", resp, body=b'{"message":"Hello, World!"}')
    resp = check_route("plaintext", get(port, "/plaintext"), "text/plain; charset=utf-8")
    if resp:
        check_response("plaintext_body", resp, body=b"Hello, World!")


def test_db(port, table):
    resp = check_route("db", get(port, "/db"), JSON_TYPE)
    if resp:
        doc = body_json(resp)
        check("db_one_row_object_as_in_the_table", is_row(doc, table), short(resp.body))
    ids = set()
    for _ in range(20):
        doc = body_json(get(port, "/db"))
        ids.add(doc.get("id") if isinstance(doc, dict) else None)
    check("db_rows_are_random", len(ids) > 10, "ids %s" % sorted(ids, key=str))


def test_queries(port, table):
    for query, count in COUNTS:
        name = "queries_%s_gives_%d" % (query.partition("=")[2] or ("empty" if query else "missing"), count)
        resp = check_route(name, get(port, "/queries" + query), JSON_TYPE)
        doc = body_json(resp) if resp else None
        check(name + "_rows_as_in_the_table", isinstance(doc, list) and len(doc) == count
              and all(is_row(v, table) for v in doc), short(getattr(resp, "body", resp)))
    doc = body_json(get(port, "/queries?queries=20"))
    check("queries_rows_are_random", isinstance(doc, list) and len({v.get("id") for v in doc}) > 10, short(doc))


def test_fortunes(port, conninfo):
    resp = check_route("fortunes", get(port, "/fortunes"), "text/html; charset=utf-8")
    if resp:
        check_response("fortunes_html_byte_for_byte", resp, body=FORTUNES)
    # a row added to the table shows, escaped and in its place
    psql(conninfo, "-c", "INSERT INTO fortune VALUES (13, 'B & <b>bold</b> ''quoted''')")
    try:
        resp = get(port, "/fortunes")
        row = "<tr><td>13</td><td>B &amp; &lt;b&gt;bold&lt;/b&gt; &#39;quoted&#39;</td></tr>".encode()
        after = b"<tr><td>10</td>"
        want = FORTUNES.replace(after, row + after)
        check_response("fortunes_row_added_to_the_table_shows_sorted_and_escaped", resp, status=200, body=want)
    finally:
        psql(conninfo, "-c", "DELETE FROM fortune WHERE id = 13")


def check_updates(port, conninfo, route):
    before = world(conninfo)
    for query, count in COUNTS:
        name = "%s_%s_gives_%d" % (route, query.partition("=")[2] or ("empty" if query else "missing"), count)
        resp = check_route(name, get(port, "/" + route + query), JSON_TYPE)
        doc = body_json(resp) if resp else None
        check(name + "_rows", isinstance(doc, list) and len(doc) == count and all(is_row(v) for v in doc),
              short(getattr(resp, "body", resp)))
    resp = get(port, "/%s?queries=20" % route)
    doc = body_json(resp)
    if not check(route + "_20_rows", isinstance(doc, list) and len(doc) == 20 and all(is_row(v) for v in doc),
                 short(getattr(resp, "body", resp))):
        return
    after = world(conninfo)
    check(route + "_table_holds_the_numbers_answered", all(after[v["id"]] == v["randomNumber"] for v in doc),
          "answered %s, table %s" % (short(doc, 300), short({v["id"]: after[v["id"]] for v in doc}, 300)))
    changed = sum(1 for i in {v["id"] for v in doc} if before[i] != after[i])
    check(route + "_rows_changed", changed >= len({v["id"] for v in doc}) - 2,
          "%d of %d rows changed" % (changed, len({v["id"] for v in doc})))


def test_updates_concurrently(port, route):
    """Eight clients updating overlapping rows at once: every answer 200 (no deadlock)."""
    results, lock = [], threading.Lock()

    def client():
        for _ in range(10):
            resp = get(port, "/%s?queries=50" % route)
            with lock:
                results.append(getattr(resp, "status", resp))
    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(T(120))
    check(route + "_concurrent_clients_all_200", len(results) == 80 and all(s == 200 for s in results),
          "%d answers, not 200: %s" % (len(results), short([s for s in results if s != 200])))


def exercise(conninfo):
    def run(port):
        table = world(conninfo)
        for test in (test_json_and_plaintext, lambda p: test_db(p, table), lambda p: test_queries(p, table),
                     lambda p: test_fortunes(p, conninfo), lambda p: check_updates(p, conninfo, "updates"),
                     lambda p: check_updates(p, conninfo, "updates-pipelined"),
                     lambda p: test_updates_concurrently(p, "updates"),
                     lambda p: test_updates_concurrently(p, "updates-pipelined")):
            try:
                test(port)
            except Exception as e:
                check("tfb_checks_ran", False, "%s: %s" % (type(e).__name__, e))
        resp = get(port, "/nope")
        check("errors_carry_server_and_date", getattr(resp, "status", 0) == 404 and resp.header("Server") == "microweb"
              and date_problem(resp.header("Date")) is None, short(getattr(resp, "headers", resp)))
    return run


def main(argv):
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[3], file=sys.stderr)
        return 2
    if pg_db("check").returncode != 0:
        print("SKIP tfb: PostgreSQL server not installed (apt-get install postgresql libpq-dev)")
        print("0 passed, 0 failed")
        return 0
    started = pg_db("start")
    conninfo = started.stdout.strip()
    if not check("throwaway_database_starts", started.returncode == 0 and conninfo, started.stderr):
        return summary()
    try:
        psql(conninfo, "-f", CREATE_SQL)
        check("create_sql_loads_10000_worlds_and_12_fortunes",
              psql(conninfo, "-c", "SELECT (SELECT count(*) FROM world) || ' ' || (SELECT count(*) FROM fortune)")
              == "10000 12", "")
        serve_example("tfb", argv[0], exercise(conninfo), {"DATABASE_URL": conninfo, "BENCH_POOL": "4"})
        print("-- the same with shared connections (BENCH_SHARED=4, 32 workers), as bench-tfb's variant runs it",
              flush=True)
        serve_example("tfb", argv[0], exercise(conninfo),
                      {"DATABASE_URL": conninfo, "BENCH_POOL": "4", "BENCH_THREADS": "32", "BENCH_SHARED": "4"})
    finally:
        pg_db("stop", conninfo)
    return summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
