"""The FastAPI peer of bench/tfb/app.c (uvicorn, one worker): the six TechEmpower test
types on asyncpg, a pool of TFB_POOL connections (default 4) to TFB_CONNINFO (a libpq
key=value conninfo). Updates are written back by one executemany (asyncpg pipelines
it), ids sorted."""
import html
import os
import random

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

app = FastAPI()
pool = None
SELECT = "SELECT id, randomnumber FROM world WHERE id = $1"
UPDATE = "UPDATE world SET randomnumber = $1 WHERE id = $2"
ADDITIONAL = (0, "Additional fortune added at request time.")


def conninfo_args(conninfo):
    words = dict(w.split("=", 1) for w in conninfo.split())
    return dict(host=words.get("host"), port=int(words.get("port", 5432)), user=words.get("user"),
                database=words.get("dbname"))


@app.on_event("startup")
async def startup():
    global pool
    size = int(os.environ.get("TFB_POOL", "4"))
    pool = await asyncpg.create_pool(min_size=size, max_size=size, **conninfo_args(os.environ["TFB_CONNINFO"]))


def count(request):
    try:
        n = int(request.query_params.get("queries", "1"))
    except ValueError:
        return 1
    return min(max(n, 1), 500)


@app.get("/json")
async def json_route():
    return JSONResponse({"message": "Hello, World!"})


@app.get("/plaintext")
async def plaintext():
    return PlainTextResponse(b"Hello, World!")


@app.get("/db")
async def db():
    async with pool.acquire() as conn:
        row = await conn.fetchrow(SELECT, random.randint(1, 10000))
    return JSONResponse({"id": row[0], "randomNumber": row[1]})


@app.get("/queries")
async def queries(request: Request):
    n = count(request)
    async with pool.acquire() as conn:
        stmt = await conn.prepare(SELECT)
        rows = [await stmt.fetchrow(random.randint(1, 10000)) for _ in range(n)]
    return JSONResponse([{"id": r[0], "randomNumber": r[1]} for r in rows])


@app.get("/fortunes")
async def fortunes():
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT id, message FROM fortune")
    rows = [(r[0], r[1]) for r in rows] + [ADDITIONAL]
    rows.sort(key=lambda r: r[1])
    body = "".join("<tr><td>%d</td><td>%s</td></tr>" % (i, html.escape(m)) for i, m in rows)
    return HTMLResponse("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
                        "<tr><th>id</th><th>message</th></tr>" + body + "</table></body></html>")


@app.get("/updates")
async def updates(request: Request):
    n = count(request)
    async with pool.acquire() as conn:
        stmt = await conn.prepare(SELECT)
        rows = [await stmt.fetchrow(random.randint(1, 10000)) for _ in range(n)]
        new = {r[0]: random.randint(1, 10000) for r in rows}
        await conn.executemany(UPDATE, sorted(((v, k) for k, v in new.items()), key=lambda p: p[1]))
    return JSONResponse([{"id": r[0], "randomNumber": new[r[0]]} for r in rows])


@app.get("/")
async def root():
    return Response(b"ok", media_type="text/plain")
