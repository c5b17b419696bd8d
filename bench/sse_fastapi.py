"""The FastAPI peer of bench/streams.py (uvicorn, one worker):
    GET /        "Hello, World!"
    GET /events  an event stream (StreamingResponse); every BENCH_EVERY_MS ms (default 100,
                 0: never) one event is put in every open stream's queue:
                 "data: <sequence number> <CLOCK_MONOTONIC ns of the broadcast>"
as bench/streams_app.c does."""
import asyncio
import os
import time

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, StreamingResponse

EVERY_MS = int(os.environ.get("BENCH_EVERY_MS", "100"))
listeners = set()


async def broadcaster():
    """One event to every open stream, on a fixed schedule (time.monotonic_ns is
    CLOCK_MONOTONIC, the clock the client reads)."""
    seq, due = 0, time.monotonic()
    while True:
        due += EVERY_MS / 1000
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        seq += 1
        event = f"data: {seq} {time.monotonic_ns()}\n\n".encode()
        for queue in listeners:
            queue.put_nowait(event)


app = FastAPI()


@app.on_event("startup")  # Debian's FastAPI 0.92 has no lifespan= yet
async def start_broadcaster():
    if EVERY_MS > 0:
        app.state.broadcaster = asyncio.create_task(broadcaster())


@app.get("/", response_class=PlainTextResponse)
async def hello():
    return "Hello, World!"


async def stream(queue):
    try:
        while True:
            yield await queue.get()
    finally:
        listeners.discard(queue)


@app.get("/events")
async def events():
    queue = asyncio.Queue()
    listeners.add(queue)
    return StreamingResponse(stream(queue), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
