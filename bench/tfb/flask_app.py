"""The Flask peer of bench/tfb/app.c (gunicorn, one worker of TFB_POOL threads): the six
TechEmpower test types on psycopg2, a pool of TFB_POOL connections (default 4) to
TFB_CONNINFO. Updates are written back by one UPDATE ... FROM (VALUES ...), ids sorted."""
import html
import json
import os
import random

import psycopg2.extras
import psycopg2.pool
from flask import Flask, Response, request

app = Flask(__name__)
size = int(os.environ.get("TFB_POOL", "4"))
pool = psycopg2.pool.ThreadedConnectionPool(size, size, os.environ["TFB_CONNINFO"])
SELECT = "SELECT id, randomnumber FROM world WHERE id = %s"
ADDITIONAL = (0, "Additional fortune added at request time.")


def count():
    try:
        n = int(request.args.get("queries", "1"))
    except ValueError:
        return 1
    return min(max(n, 1), 500)


def as_json(value):
    return Response(json.dumps(value, separators=(",", ":")), mimetype="application/json")


class Connection:
    def __enter__(self):
        self.conn = pool.getconn()
        return self.conn.cursor()

    def __exit__(self, *exc):
        self.conn.commit()
        pool.putconn(self.conn)


@app.get("/json")
def json_route():
    return as_json({"message": "Hello, World!"})


@app.get("/plaintext")
def plaintext():
    return Response(b"Hello, World!", mimetype="text/plain")


@app.get("/db")
def db():
    with Connection() as cur:
        cur.execute(SELECT, (random.randint(1, 10000),))
        row = cur.fetchone()
    return as_json({"id": row[0], "randomNumber": row[1]})


def read_rows(cur, n):
    rows = []
    for _ in range(n):
        cur.execute(SELECT, (random.randint(1, 10000),))
        rows.append(cur.fetchone())
    return rows


@app.get("/queries")
def queries():
    with Connection() as cur:
        rows = read_rows(cur, count())
    return as_json([{"id": r[0], "randomNumber": r[1]} for r in rows])


@app.get("/fortunes")
def fortunes():
    with Connection() as cur:
        cur.execute("SELECT id, message FROM fortune")
        rows = cur.fetchall() + [ADDITIONAL]
    rows.sort(key=lambda r: r[1])
    body = "".join("<tr><td>%d</td><td>%s</td></tr>" % (i, html.escape(m)) for i, m in rows)
    return Response("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
                    "<tr><th>id</th><th>message</th></tr>" + body + "</table></body></html>",
                    mimetype="text/html")


@app.get("/updates")
def updates():
    with Connection() as cur:
        rows = read_rows(cur, count())
        new = {r[0]: random.randint(1, 10000) for r in rows}
        psycopg2.extras.execute_values(
            cur, "UPDATE world SET randomnumber = v.r FROM (VALUES %s) AS v(id, r) WHERE world.id = v.id",
            sorted(new.items()))
    return as_json([{"id": r[0], "randomNumber": new[r[0]]} for r in rows])


@app.get("/")
def root():
    return Response(b"ok", mimetype="text/plain")
