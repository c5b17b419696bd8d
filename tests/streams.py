#!/usr/bin/env python3
"""End-to-end tests of examples/stream.c, the streaming contract app, with curl -N,
Python's http.client and raw sockets; and of the access log it writes.

usage: python3 tests/streams.py STREAM_BINARY [--quick]

  GET /events?every_ms=N&count=K   K "tick" events (id and data 1..K), one every N ms,
                                   then the end; Last-Event-ID continues after that id
  GET /export?rows=N               a CSV "id,name" of N rows made as the client reads
  GET /                            the page that shows the events

--quick (for sanitizer builds): the large export is 5 MB instead of 50 MB and its
memory is not measured (a sanitizer's own bookkeeping would be measured instead).
E2E_TIMEOUT_SCALE stretches the time limits, as for tests/e2e.py.
Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last.
"""
import datetime
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import (HOST, LISTEN_RE, Client, Reader, Response, Server, T, Tally, build_request, check,  # noqa: E402
                 check_clean_exit, command_for, parse_head, short)
from load import cpu_seconds  # noqa: E402

ACCESS_RE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (127\.0\.0\.1:\d+) (\S+) (\S+) (\d{3}) (\d+) (\d+)us")
TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
DROPPED_RE = re.compile(r"microweb: (\d+) log lines dropped: the log output is too slow")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def csv_rows(first, last):
    """The export's rows first..last, as the app writes them."""
    return b"".join(b"%d,name %d\n" % (i, i) for i in range(first, last + 1))


def csv_length(rows):
    """Bytes of /export?rows=rows: the header line, then "i,name i\\n" for each row."""
    total, digits, start = len(b"id,name\n"), 1, 1
    while start <= rows:
        end = min(rows, start * 10 - 1)
        total += (end - start + 1) * (2 * digits + len(",name \n"))
        digits, start = digits + 1, start * 10
    return total


def rows_for_bytes(n):
    """The fewest rows whose export is at least n bytes."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if csv_length(mid) < n else (lo, mid)
    return lo


def vm_kib(pid, field):
    """VmRSS or VmHWM (peak) of a process, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def read_chunk(reader):
    """One chunk's data (b"" for the last chunk, whose blank line is read too)."""
    size_line = reader.read_until(b"\r\n")
    size = int(size_line[:-2], 16)
    data = reader.read_exact(size + 2)
    if data[-2:] != b"\r\n":
        raise ValueError("chunk data not followed by CRLF: %s" % short(data[-10:]))
    return data[:-2]


def dechunk(data):
    """The body of a whole chunked message body."""
    pieces = [data]
    reader = Reader(lambda n: pieces.pop() if pieces else b"")
    return b"".join(iter(lambda: read_chunk(reader), b""))


def parse_events(text):
    """Server-Sent Events as a list of {field: value} (one value per field)."""
    events = []
    for block in text.split("\n\n"):
        if block.strip():
            events.append(dict(line.split(": ", 1) for line in block.split("\n") if line and not line.startswith(":")))
    return events


def ticks(first, last):
    return [{"event": "tick", "id": str(i), "data": str(i)} for i in range(first, last + 1)]


def on_schedule(arrivals, count, every):
    """Event k (1..count) came no earlier than k*every after the request (a busy machine
    may only make it later), and the last one within a second of its time."""
    return (len(arrivals) == count and all(t >= k * every - 0.01 for k, t in enumerate(arrivals, 1)) and
            arrivals[-1] < count * every + T(1))


def clean_fin(sock, timeout=3.0):
    """(True, "") when the peer's next move is a FIN with nothing before it."""
    sock.settimeout(T(timeout))
    try:
        data = sock.recv(4096)
    except socket.timeout:
        return False, "still open after %.1fs" % T(timeout)
    except ConnectionResetError:
        return False, "reset instead of a FIN"
    return (data == b"", "unexpected bytes %s" % short(data))


def read_response(c, head_request=False):
    """One response on a Client, whichever way its body is framed."""
    resp = Response(*parse_head(c.reader.read_until(b"\r\n\r\n")))
    if head_request:
        return resp
    if resp.header("Transfer-Encoding") == "chunked":
        resp.body = b"".join(iter(lambda: read_chunk(c.reader), b""))
    elif resp.header("Content-Length") is not None:
        resp.body = c.reader.read_exact(int(resp.header("Content-Length")))
    else:
        resp.body = c.reader.read_to_close()
    return resp


def request(c, data):
    c.send(data)
    return read_response(c, data.startswith(b"HEAD "))


def open_stream(port, target, headers=None, version="HTTP/1.1", rcvbuf=None):
    """A client that asked for target and read the response head: (client, Response)."""
    c = Client(port, timeout=10, rcvbuf=rcvbuf)
    c.send(build_request("GET", target, headers, version=version))
    head = c.reader.read_until(b"\r\n\r\n")
    version, status, reason, fields = parse_head(head)
    return c, Response(version, status, reason, fields)


def local_port(sock):
    return sock.getsockname()[1]


def access_lines(server):
    with server.cond:
        return [line for line in server.lines if not line.startswith("microweb: ")]


def wait_access_line(server, port, method, target, timeout=5.0):
    """The access log line of a request (made from local port `port`), parsed, or None."""
    m = server.wait_for_line(re.compile(r"^\S+ 127\.0\.0\.1:%d %s %s " % (port, re.escape(method), re.escape(target))),
                             T(timeout))
    return m and (ACCESS_RE.fullmatch(m.string) or m.string)


# ---------------------------------------------------------------------------
# GET /events
# ---------------------------------------------------------------------------
def test_events_arrive_spread_out_with_curl(ctx):
    """curl -N shows each event as it comes; curl exits 0 only after the last chunk."""
    t0 = time.monotonic()
    proc = subprocess.Popen(["curl", "-sN", "--max-time", "%g" % T(10), url(ctx, "/events?every_ms=100&count=5")],
                            stdout=subprocess.PIPE)
    arrivals, text = [], ""
    for raw in proc.stdout:
        line = raw.decode()
        text += line
        if line.startswith("id: "):
            arrivals.append(time.monotonic() - t0)
    status = proc.wait(T(10))
    check("curl_events_five_ticks_in_order", parse_events(text) == ticks(1, 5), short(text, 400))
    check("curl_events_spread_over_time", on_schedule(arrivals, 5, 0.1), "arrivals %s" % ["%.3f" % a for a in arrivals])
    check("curl_events_stream_ends_cleanly", status == 0, "curl exit status %s" % status)


def test_events_chunked_then_connection_reused(ctx):
    t0 = time.monotonic()  # events are due every_ms apart from the handler's call, after this
    c, resp = open_stream(ctx.port, "/events?every_ms=100&count=5")
    with c:
        check("events_head_is_an_event_stream",
              resp.status == 200 and resp.header("Content-Type") == "text/event-stream" and
              resp.header("Cache-Control") == "no-cache" and resp.header("Transfer-Encoding") == "chunked" and
              resp.header("Content-Length") is None, resp.summary())
        arrivals, text = [], ""
        while (data := read_chunk(c.reader)):
            arrivals.append(time.monotonic() - t0)
            text += data.decode()
        print("  event arrivals (s): %s" % " ".join("%.3f" % a for a in arrivals))
        check("events_fields_right", parse_events(text) == ticks(1, 5), short(text, 400))
        check("events_one_chunk_each_every_100ms", on_schedule(arrivals, 5, 0.1), "arrivals %s" % arrivals)
        again = request(c, build_request("GET", "/export?rows=2"))
        check("events_connection_reused_after_last_chunk",
              again.status == 200 and again.body == b"id,name\n" + csv_rows(1, 2), again.summary())


def test_events_http10_close_delimited(ctx):
    c, resp = open_stream(ctx.port, "/events?every_ms=20&count=3", version="HTTP/1.0")
    with c:
        check("events_http10_head_says_close",
              resp.status == 200 and resp.header("Connection") == "close" and
              resp.header("Transfer-Encoding") is None and resp.header("Content-Length") is None, resp.summary())
        body = c.reader.read_to_close()
        check("events_http10_body_until_the_close", parse_events(body.decode()) == ticks(1, 3) and
              body.endswith(b"\n\n"), short(body))


def test_events_head_only(ctx):
    conn = http.client.HTTPConnection(HOST, ctx.port, timeout=T(5))
    try:
        conn.request("HEAD", "/events?every_ms=20&count=3")
        r = conn.getresponse()
        body = r.read()
        check("events_head_request_gets_head_only",
              r.status == 200 and r.getheader("Content-Type") == "text/event-stream" and
              r.getheader("Cache-Control") == "no-cache" and body == b"",
              "%d %s %s" % (r.status, r.getheaders(), short(body)))
        conn.request("GET", "/export?rows=1")
        r = conn.getresponse()
        body = r.read()
        check("events_head_leaves_the_connection_usable", r.status == 200 and body == b"id,name\n1,name 1\n",
              short(body))
    finally:
        conn.close()


def test_last_event_id_continues(ctx):
    conn = http.client.HTTPConnection(HOST, ctx.port, timeout=T(5))
    try:
        conn.request("GET", "/events?every_ms=20&count=5", headers={"Last-Event-ID": "3"})
        r = conn.getresponse()
        text = r.read().decode()
        check("last_event_id_3_of_5_gives_4_and_5", r.status == 200 and parse_events(text) == ticks(4, 5),
              short(text))
    finally:
        conn.close()


def test_open_streams_do_not_hold_workers(ctx):
    """MW_THREADS=2 and ten open event streams: GET / is answered at once."""
    clients = []
    try:
        for _ in range(10):
            c, resp = open_stream(ctx.port, "/events?every_ms=1000")
            clients.append(c)
            if resp.status != 200:
                return check("ten_streams_open", False, resp.summary())
        times = []
        for _ in range(5):
            t0 = time.monotonic()
            with Client(ctx.port) as c:
                resp = request(c, build_request("GET", "/"))
            times.append(time.monotonic() - t0)
            if resp.status != 200 or b"EventSource" not in resp.body:
                return check("page_answered_while_streams_open", False, resp.summary())
        print("  GET / with 10 streams open on 2 workers: %s ms" % " ".join("%.1f" % (t * 1000) for t in times))
        check("page_answered_within_100ms_while_ten_streams_open", max(times) < 0.1 * max(1, T(1) / 2),
              "slowest %.1f ms" % (max(times) * 1000))
        first = [parse_events(read_chunk(c.reader).decode()) for c in clients]
        check("ten_streams_each_get_their_first_event", all(e == ticks(1, 1) for e in first), short(first))
    finally:
        for c in clients:
            c.close()


# ---------------------------------------------------------------------------
# GET /export
# ---------------------------------------------------------------------------
def test_export_csv_exact(ctx):
    conn = http.client.HTTPConnection(HOST, ctx.port, timeout=T(10))
    try:
        for rows in (0, 1, 1000, 100000):
            conn.request("GET", "/export?rows=%d" % rows)
            r = conn.getresponse()
            body = r.read()
            want = b"id,name\n" + csv_rows(1, rows)
            check("export_csv_exact_%d_rows" % rows,
                  r.status == 200 and r.getheader("Content-Type") == "text/csv; charset=utf-8" and
                  r.getheader("Content-Disposition") == 'attachment; filename="export.csv"' and body == want,
                  "%d %s, %d bytes, want %d" % (r.status, r.getheaders(), len(body), len(want)))
    finally:
        conn.close()


def large_export_rows(ctx):
    return rows_for_bytes((5 if ctx.quick else 50) * 1000 * 1000)


def test_large_export_memory_flat(ctx):
    """A 50 MB export raises the server's peak RSS by under 2 MiB."""
    rows, pid = large_export_rows(ctx), ctx.server.proc.pid
    want_len = csv_length(rows)
    conn = http.client.HTTPConnection(HOST, ctx.port, timeout=T(30))
    try:
        conn.request("GET", "/export?rows=100")  # warm: the worker's buffers exist
        conn.getresponse().read()
        hwm0, rss0, peak = vm_kib(pid, "VmHWM"), vm_kib(pid, "VmRSS"), 0
        t0 = time.monotonic()
        conn.request("GET", "/export?rows=%d" % rows)
        r = conn.getresponse()
        got, tail, lines = 0, b"", 0
        while (data := r.read(1 << 20)):
            got += len(data)
            lines += data.count(b"\n")
            tail = (tail + data)[-64:]
            peak = max(peak, vm_kib(pid, "VmRSS"))
        seconds = time.monotonic() - t0
        hwm1 = vm_kib(pid, "VmHWM")
    finally:
        conn.close()
    print("  export of %d rows: %d bytes in %.2f s; server VmRSS %d KiB before, at most %d KiB during; "
          "VmHWM %d -> %d KiB" % (rows, got, seconds, rss0, peak, hwm0, hwm1))
    check("large_export_whole", got == want_len and lines == rows + 1 and tail.endswith(csv_rows(rows, rows)),
          "%d bytes (want %d), %d lines" % (got, want_len, lines))
    if not ctx.quick:
        check("large_export_peak_rss_grows_under_2_mib", hwm1 - hwm0 < 2048 and peak - rss0 < 2048,
              "VmHWM %d -> %d KiB, VmRSS %d -> %d KiB" % (hwm0, hwm1, rss0, peak))


def test_slow_reader_slows_the_producer(ctx):
    """A client that stops reading stops the producer: no CPU spent, no memory grown."""
    rows, pid = large_export_rows(ctx), ctx.server.proc.pid
    c, resp = open_stream(ctx.port, "/export?rows=%d" % rows, rcvbuf=4096)
    with c:
        first = read_chunk(c.reader)
        rss0, filling = vm_kib(pid, "VmRSS"), time.monotonic()
        # the client has stopped reading: the server fills the socket buffers, then must go quiet
        cpu0 = cpu_seconds(pid)
        while True:
            time.sleep(0.2)
            cpu1 = cpu_seconds(pid)
            if cpu1 - cpu0 < 0.01 or time.monotonic() - filling > T(5):
                break
            cpu0 = cpu1
        filling = time.monotonic() - filling
        time.sleep(1.0)
        cpu2, rss1 = cpu_seconds(pid), vm_kib(pid, "VmRSS")
        print("  export to a client that stopped reading: server quiet after %.1f s, then CPU %.3f s over 1 s; "
              "VmRSS %d -> %d KiB" % (filling, cpu2 - cpu1, rss0, rss1))
        check("slow_reader_producer_waits", filling < T(5) and cpu2 - cpu1 < 0.05,
              "server still busy after %.1f s; %.3f s of CPU in the next second" % (filling, cpu2 - cpu1))
        check("slow_reader_memory_not_grown", rss1 - rss0 < 2048, "VmRSS %d -> %d KiB" % (rss0, rss1))
        body = first
        while len(body) < 200000:  # now a trickle: 16 KiB every 10 ms
            body += read_chunk(c.reader)
            time.sleep(0.01)
        n = body.count(b"\n") - 1
        check("slow_reader_gets_the_rows_in_order", body.startswith(b"id,name\n" + csv_rows(1, n)), short(body[:80]))
    with Client(ctx.port) as c:
        resp = request(c, build_request("GET", "/export?rows=1"))
    check("server_answers_after_the_slow_reader_left", resp.status == 200, resp.summary())


# ---------------------------------------------------------------------------
# the access log, plain (this server's MW_ACCESS_LOG=1)
# ---------------------------------------------------------------------------
def logged_exchange(port, data):
    """Sends raw request bytes on a new connection: (local port, Response)."""
    with Client(port) as c:
        lp = local_port(c.sock)
        return lp, request(c, data)


def check_plain_line(name, server, port, method, target, resp, min_us=0):
    m = wait_access_line(server, port, method, target)
    if not isinstance(m, re.Match):
        return check(name, False, "no well-formed line for port %d %s %s: %s" % (port, method, target, short(m)))
    fields = (m.group(3), m.group(4), int(m.group(5)), int(m.group(6)))
    want = (method, target, resp.status, len(resp.body))
    when = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return check(name, fields == want and int(m.group(7)) >= min_us and abs(when.timestamp() - time.time()) < 60,
                 "line %s, want method/target/status/bytes %s, us >= %d, the time now in UTC"
                 % (short(m.group(0)), want, min_us))


def test_access_log_plain(ctx):
    s = ctx.server
    lp, r = logged_exchange(ctx.port, build_request("GET", "/export?rows=3"))
    check_plain_line("access_log_plain_200", s, lp, "GET", "/export?rows=3", r)
    lp, r = logged_exchange(ctx.port, build_request("GET", "/nowhere?x=1"))
    check_plain_line("access_log_plain_404", s, lp, "GET", "/nowhere?x=1", r)
    lp, r = logged_exchange(ctx.port, build_request("POST", "/", body=b"x"))
    check_plain_line("access_log_plain_405", s, lp, "POST", "/", r)
    lp, r = logged_exchange(ctx.port, b"GARBAGE\r\n\r\n")
    check_plain_line("access_log_plain_refused_request_line", s, lp, "-", "-", r)
    with Client(ctx.port) as c:
        lp = local_port(c.sock)
        c.send(build_request("GET", "/events?every_ms=50&count=3", {"Connection": "close"}))
        raw = c.reader.read_to_close()
    body = dechunk(raw.partition(b"\r\n\r\n")[2])
    check_plain_line("access_log_plain_stream_logged_at_its_end", s, lp, "GET", "/events?every_ms=50&count=3",
                     Response("HTTP/1.1", 200, "OK", [], body), min_us=100000)


def test_access_log_concurrent_lines_whole(ctx):
    """16 clients at once, 20 requests each: one whole line per request, none mixed."""
    errors = []

    def client(i):
        try:
            with Client(ctx.port) as c:
                for k in range(20):
                    r = request(c, build_request("GET", "/export?rows=%d&client=%d&pad=%s" % (k, i, "p" * (i * 37))))
                    if r.status != 200:
                        errors.append(r.summary())
        except OSError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deadline = time.monotonic() + T(5)
    while True:
        lines = access_lines(ctx.server)
        ours = [line for line in lines if "&client=" in line]
        if len(ours) >= 320 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    broken = [line for line in lines if not ACCESS_RE.fullmatch(line)]
    targets = sorted(ACCESS_RE.fullmatch(line).group(4) for line in ours if ACCESS_RE.fullmatch(line))
    expected = sorted("/export?rows=%d&client=%d&pad=%s" % (k, i, "p" * (i * 37)) for i in range(16)
                      for k in range(20))
    check("access_log_concurrent_requests_answered", not errors, short(errors))
    check("access_log_concurrent_one_whole_line_each", targets == expected and not broken,
          "%d lines of ours (want 320), broken: %s" % (len(ours), short(broken)))


# ---------------------------------------------------------------------------
# stop with streams open (last: the server is stopped)
# ---------------------------------------------------------------------------
def test_sigterm_ends_open_streams_cleanly(ctx):
    streams = []
    try:
        for version in ("HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0"):
            c, resp = open_stream(ctx.port, "/events?every_ms=50", version=version)
            streams.append((version, c))
        for version, c in streams:  # each is live: an event came
            if version == "HTTP/1.1":
                read_chunk(c.reader)
            else:
                c.reader.read_until(b"\n\n")
        t0 = time.monotonic()
        ctx.server.terminate()
        for i, (version, c) in enumerate(streams):
            try:
                if version == "HTTP/1.1":
                    while read_chunk(c.reader):
                        pass
                    ok, why = clean_fin(c.sock)
                else:
                    rest = c.reader.read_to_close()
                    ok, why = rest.endswith(b"\n\n") or rest == b"", "body ends mid-event: %s" % short(rest[-40:])
            except (OSError, ValueError) as e:
                ok, why = False, "%s: %s" % (type(e).__name__, e)
            check("sigterm_stream_%d_%s_ends_cleanly" % (i, version.replace("/", "").replace(".", "")), ok, why)
        took = time.monotonic() - t0
        check("sigterm_streams_end_within_the_grace_period", took < 5, "%.2f s" % took)
    finally:
        for _, c in streams:
            c.close()
    check_clean_exit("stream", ctx.server)


# ---------------------------------------------------------------------------
# the access log as JSON lines, and a stderr nobody reads
# ---------------------------------------------------------------------------
def test_access_log_json(binary):
    server = Server(command_for(binary), {"MW_ACCESS_LOG": "json", "MW_THREADS": "2"})
    try:
        if not check("json_log_server_starts", server.wait_ready(), server.stderr_text()):
            return
        cases = [("GET", "/export?rows=2", build_request("GET", "/export?rows=2"), 200),
                 ("GET", "/missing", build_request("GET", "/missing"), 404),
                 ("DELETE", "/export", build_request("DELETE", "/export"), 405),
                 ("-", "-", b"GET /two  spaces HTTP/1.1\r\n\r\n", 400)]
        for method, target, data, status in cases:
            lp, r = logged_exchange(server.port, data)
            line = server.wait_for_line(re.compile(r'"client":"127\.0\.0\.1:%d"' % lp), T(5))
            try:
                doc = json.loads(line.string) if line else None
            except ValueError:
                doc = None
            want = {"client": "127.0.0.1:%d" % lp, "method": method, "target": target, "status": status,
                    "bytes": len(r.body)}
            ok = (isinstance(doc, dict) and set(doc) == {"time", "client", "method", "target", "status", "bytes", "us"}
                  and {k: doc[k] for k in want} == want and TIME_RE.fullmatch(doc["time"]) and
                  isinstance(doc["us"], int) and doc["us"] >= 0 and r.status == status)
            check("json_log_line_%d" % status, ok, "line %s, want %s" % (short(line and line.string), want))
        server.terminate()
        check_clean_exit("json_log", server)
    finally:
        server.kill()


def test_stuck_stderr_does_not_hold_workers(binary):
    """stderr is a pipe nobody reads: requests are still answered; lines that did not
    fit are dropped and counted, and every line that comes out is whole."""
    rd, wr = os.pipe()
    env = dict(os.environ, PORT="0", HOST=HOST, MW_ACCESS_LOG="1", MW_THREADS="2")
    proc = subprocess.Popen(command_for(binary), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=wr)
    os.close(wr)
    pipe = os.fdopen(rd, "rb")
    try:
        first = pipe.readline().decode()
        m = LISTEN_RE.search(first)
        if not check("stuck_stderr_server_starts", m, first):
            return
        port, requests, slowest = int(m.group(1)), 1000, [0.0]
        pad = "q" * 2000  # 2 KB lines: the 64 KiB pipe and the 1 MiB queue fill after ~530 of them
        errors = []

        def client(i):
            try:
                with Client(port) as c:
                    for k in range(requests // 4):
                        t0 = time.monotonic()
                        r = request(c, build_request("GET", "/nothing/%d/%d?%s" % (i, k, pad)))
                        slowest[0] = max(slowest[0], time.monotonic() - t0)
                        if r.status != 404:
                            errors.append(r.summary())
            except OSError as e:
                errors.append("%s: %s" % (type(e).__name__, e))

        t0 = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - t0
        print("  %d requests with stderr stuck: %.2f s, slowest %.1f ms" % (requests, took, slowest[0] * 1000))
        check("stuck_stderr_requests_all_answered", not errors, short(errors))
        check("stuck_stderr_no_request_waits_on_the_log", slowest[0] < T(1), "slowest %.2f s" % slowest[0])
        proc.send_signal(signal.SIGTERM)
        out = pipe.read().decode()  # the log thread writes what it kept, then the process exits
        status = proc.wait(T(10))
        lines = out.split("\n")
        tail = lines.pop()
        access = [line for line in lines if not line.startswith("microweb: ")]
        broken = [line for line in access if not ACCESS_RE.fullmatch(line)] + ([tail] if tail else [])
        dropped = sum(int(d.group(1)) for line in lines if (d := DROPPED_RE.fullmatch(line)))
        print("  then: %d access lines read, %d dropped" % (len(access), dropped))
        check("stuck_stderr_lines_whole", not broken, "broken: %s" % short(broken))
        check("stuck_stderr_says_lines_were_dropped", dropped > 0, "no drop note in %s" % short(lines[-3:]))
        check("stuck_stderr_every_request_logged_or_counted", len(access) + dropped == requests,
              "%d lines + %d dropped != %d requests" % (len(access), dropped, requests))
        check("stuck_stderr_exits_0", status == 0, "exit status %s" % status)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        pipe.close()


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
class Ctx:
    def __init__(self, server, quick):
        self.server, self.port, self.quick = server, server.port, quick


def url(ctx, path):
    return "http://%s:%d%s" % (HOST, ctx.port, path)


MAIN_TESTS = [
    test_large_export_memory_flat,  # first: the server's peak RSS is still its own
    test_events_arrive_spread_out_with_curl,
    test_events_chunked_then_connection_reused,
    test_events_http10_close_delimited,
    test_events_head_only,
    test_last_event_id_continues,
    test_open_streams_do_not_hold_workers,
    test_export_csv_exact,
    test_slow_reader_slows_the_producer,
    test_access_log_plain,
    test_access_log_concurrent_lines_whole,
    test_sigterm_ends_open_streams_cleanly,
]


def main(argv):
    args = [a for a in argv if a != "--quick"]
    if len(args) != 1:
        print(__doc__.strip().splitlines()[3], file=sys.stderr)
        return 2
    quick = "--quick" in argv
    server = Server(command_for(args[0]), {"MW_THREADS": "2", "MW_ACCESS_LOG": "1"})
    try:
        if check("stream_starts_and_reports_port", server.wait_ready(), server.stderr_text()):
            ctx = Ctx(server, quick)
            for test in MAIN_TESTS:
                if server.proc.poll() is not None:
                    check("stream_survives_the_tests", False, "exited %s before %s; stderr: %s"
                          % (server.proc.poll(), test.__name__, server.stderr_text()))
                    break
                try:
                    test(ctx)
                except Exception as e:
                    check(test.__name__.removeprefix("test_"), False, "%s: %s" % (type(e).__name__, e))
    finally:
        server.kill()
    test_access_log_json(args[0])
    test_stuck_stderr_does_not_hold_workers(args[0])
    print("%d passed, %d failed" % (Tally.passed, Tally.failed), flush=True)
    return 0 if Tally.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
