#!/usr/bin/env python3
"""End-to-end tests for microweb: real servers, real sockets, real curl.

Usage:  python3 tests/e2e.py HELLO_BINARY TESTAPP_BINARY [--quick]

HELLO_BINARY is examples/hello.c built (the contract every app gets); TESTAPP_BINARY is
tests/testapp.c built (routes that show what hello cannot). E2E_WRAPPER, when set, is a
command line put in front of both (e.g. E2E_WRAPPER="valgrind -q --error-exitcode=99").
A binary argument that is not an existing file is split like a shell command line.

Each server is started with PORT=0; its stderr line
    microweb: listening on http://127.0.0.1:PORT (N threads)
says it is ready and on which port. It is stopped with SIGTERM and must exit with status 0.

Output: one line per check, "PASS name" or "FAIL name: detail", then "N passed, N failed".
Exit status 0 when nothing failed, 1 otherwise.

--quick shrinks the load test (20 connections instead of 200); every check still runs.
E2E_TIMEOUT_SCALE (float, default 1) multiplies every timeout and time limit, for slow
runs under valgrind or sanitizers.
"""
import email.utils
import http.client
import json
import os
import random
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"
SCALE = float(os.environ.get("E2E_TIMEOUT_SCALE") or 1)
HELLO_BODY = b"Hello, World!"
LISTEN_RE = re.compile(r"microweb: listening on http://127\.0\.0\.1:(\d+) \((\d+) threads\)")
STOPPED_RE = re.compile(r"^microweb: stopped$")


def T(seconds):
    """A timeout or time limit, scaled by E2E_TIMEOUT_SCALE."""
    return seconds * SCALE


# ---------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------
class Tally:
    passed = 0
    failed = 0


def short(value, limit=160):
    """A one-line, bounded description of a value for a FAIL detail."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...(%d chars)" % len(text)


def check(name, cond, detail=""):
    """Report one check; returns whether it passed."""
    if cond:
        Tally.passed += 1
        print("PASS " + name, flush=True)
    else:
        Tally.failed += 1
        print("FAIL %s: %s" % (name, " ".join(str(detail).split()) or "condition false"), flush=True)
    return bool(cond)


# ---------------------------------------------------------------------------
# HTTP messages: building requests, parsing responses
# ---------------------------------------------------------------------------
@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list  # [(name, value)] in wire order
    body: bytes = b""
    raw: bytes = b""  # head + body exactly as received

    def header(self, name):
        """First value of a header (case-insensitive name), or None."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def summary(self):
        return "%d %s headers=%s body=%s" % (self.status, self.reason, short(self.headers, 300), short(self.body))


STATUS_LINE_RE = re.compile(r"(HTTP/1\.[01]) (\d{3}) ([^\r\n]*)")


def parse_head(head):
    """Status line and header fields of a response head (bytes ending in CRLF CRLF)."""
    lines = head.decode("latin-1").split("\r\n")
    match = STATUS_LINE_RE.fullmatch(lines[0])
    if not match:
        raise ValueError("bad status line %s" % short(lines[0]))
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or name != name.strip():
            raise ValueError("bad header line %s" % short(line))
        headers.append((name, value.strip(" \t")))
    return match.group(1), int(match.group(2)), match.group(3), headers


def build_request(method, target, headers=None, body=b"", version="HTTP/1.1"):
    """Request bytes; Host is always sent, Content-Length when there is a body."""
    lines = ["%s %s %s" % (method, target, version), "Host: " + HOST]
    lines += ["%s: %s" % (k, v) for k, v in (headers or {}).items()]
    if body:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Reader:
    """Buffered response reader over a recv(n) function."""

    def __init__(self, recv):
        self.recv = recv
        self.buf = bytearray()

    def _fill(self):
        chunk = self.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the server (%d bytes unparsed)" % len(self.buf))
        self.buf += chunk

    def _take(self, n):
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_until(self, delim):
        while (i := self.buf.find(delim)) < 0:
            self._fill()
        return self._take(i + len(delim))

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        return self._take(n)

    def read_to_close(self):
        while True:
            try:
                self._fill()
            except ConnectionError:
                return self._take(len(self.buf))

    def read_response(self, head_request=False):
        """One response; the body is framed by Content-Length (none for HEAD, 1xx, 204, 304)."""
        head = self.read_until(b"\r\n\r\n")
        version, status, reason, headers = parse_head(head)
        resp = Response(version, status, reason, headers)
        length = resp.header("Content-Length")
        if head_request or 100 <= status < 200 or status in (204, 304):
            body = b""
        elif length is not None:
            body = self.read_exact(int(length))
        else:
            body = self.read_to_close()
        resp.body, resp.raw = body, head + body
        return resp


def parse_final_response(data, head_request=False):
    """The last non-1xx response in captured bytes (curl -i output)."""
    chunks = [data]
    reader = Reader(lambda n: chunks.pop() if chunks else b"")
    resp = reader.read_response(head_request)
    while 100 <= resp.status < 200:
        resp = reader.read_response(head_request)
    return resp


class Client:
    """One TCP connection with a timeout and a response reader."""

    def __init__(self, port, timeout=5.0, rcvbuf=None):
        """rcvbuf: a small receive buffer (set before connecting, so the window is small too)."""
        self.sock = socket.socket()
        try:
            if rcvbuf:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(T(timeout))
            self.sock.connect((HOST, port))
        except BaseException:
            self.sock.close()
            raise
        self.reader = Reader(self.sock.recv)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def read_response(self, head_request=False):
        return self.reader.read_response(head_request)

    def request(self, data):
        self.send(data)
        return self.read_response(data.startswith(b"HEAD "))

    def server_closed(self, timeout=3.0):
        """(True, "") when the server closed cleanly with nothing left unread."""
        if self.reader.buf:
            return False, "unexpected extra bytes %s" % short(bytes(self.reader.buf))
        self.sock.settimeout(T(timeout))
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return False, "connection still open after %.1fs" % T(timeout)
        except ConnectionResetError:
            return False, "connection reset instead of a clean close"
        return (True, "") if data == b"" else (False, "unexpected extra bytes %s" % short(data))


def exchange(port, method, target, headers=None, body=b"", version="HTTP/1.1"):
    """One request on a fresh connection; returns the response."""
    with Client(port) as c:
        return c.request(build_request(method, target, headers, body, version))


def exchange_on_one_connection(port, requests):
    """Several requests sent one after the other on one connection; all responses."""
    with Client(port) as c:
        return [c.request(r) for r in requests]


def http_client_response(r, body):
    """An http.client response as a Response, for the same checks."""
    return Response("HTTP/%d.%d" % divmod(r.version, 10), r.status, r.reason, r.getheaders(), body)


# ---------------------------------------------------------------------------
# response expectations
# ---------------------------------------------------------------------------
def allow_has(*methods):
    """Header predicate: an Allow list holding every given method."""
    return lambda v: v is not None and set(methods) <= {m.strip() for m in v.split(",")}


def starts_with(prefix):
    return lambda v: v is not None and v.lower().startswith(prefix.lower())


def problems(resp, status=None, body=None, json_body=None, headers=None, absent=()):
    """What is wrong with a response, as a list of strings (empty when all is right).
    json_body and header values may be a value (compared exactly) or a predicate."""
    out = []
    if status is not None and resp.status != status:
        out.append("status %d, want %d" % (resp.status, status))
    if body is not None and resp.body != body:
        out.append("body %s, want %s" % (short(resp.body), short(body)))
    if json_body is not None:
        try:
            doc = json.loads(resp.body)
            ok = json_body(doc) if callable(json_body) else doc == json_body
            if not ok:
                out.append("JSON %s unexpected" % short(doc))
        except ValueError as e:
            out.append("body %s is not JSON (%s)" % (short(resp.body), e))
    for name, want in (headers or {}).items():
        got = resp.header(name)
        ok = want(got) if callable(want) else got == want
        if not ok:
            out.append("header %s: %s" % (name, short(got)) + ("" if callable(want) else ", want %s" % short(want)))
    for name in absent:
        if resp.header(name) is not None:
            out.append("header %s present: %s" % (name, short(resp.header(name))))
    return out


def capture(fn, *args):
    """fn(*args), or the network or parse error it raised (for check_response to report)."""
    try:
        return fn(*args)
    except (OSError, ValueError) as e:
        return e


def check_response(name, resp, **expect):
    """Check a response (or report the error capture() caught instead of one)."""
    if isinstance(resp, Exception):
        return check(name, False, "%s: %s" % (type(resp).__name__, resp))
    found = problems(resp, **expect)
    return check(name, not found, "; ".join(found) + " | got " + resp.summary())


HELLO = dict(status=200, body=HELLO_BODY)


def user_json(user_id):
    return dict(status=200, json_body={"id": user_id}, headers={"Content-Type": starts_with("application/json")})


def error_json(status):
    return dict(status=status, json_body=lambda d: d.get("status") == status and "error" in d)


def refused(status, detail_part):
    """An error answer whose detail names the reason."""
    return dict(status=status, json_body=lambda d: d.get("status") == status and detail_part in d.get("detail", ""))


IMF_DATE_RE = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                         r"\d{4} \d\d:\d\d:\d\d GMT")


def date_problem(value):
    """Why a Date header value is not a current IMF-fixdate, or None."""
    if value is None:
        return "no Date"
    if not IMF_DATE_RE.fullmatch(value):
        return "Date %s not IMF-fixdate" % short(value)
    when = email.utils.parsedate_to_datetime(value)
    if when.strftime("%a") != value[:3]:
        return "Date %s has the wrong weekday" % short(value)
    if abs(when.timestamp() - time.time()) > 300:
        return "Date %s is not now" % short(value)
    return None


# ---------------------------------------------------------------------------
# servers
# ---------------------------------------------------------------------------
def command_for(arg):
    """argv for a server: E2E_WRAPPER's words, then the binary (or the words of a command line)."""
    wrapper = shlex.split(os.environ.get("E2E_WRAPPER", ""))
    return wrapper + ([arg] if os.path.isfile(arg) else shlex.split(arg))


class Server:
    """A server process on PORT=0 whose stderr is drained into a list of lines."""

    def __init__(self, command, extra_env=None, preexec_fn=None):
        env = dict(os.environ, PORT="0", HOST=HOST)
        env.update(extra_env or {})
        self.proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=preexec_fn)
        self.lines, self.eof = [], False
        self.cond = threading.Condition()
        self.port = self.threads = None
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for raw in self.proc.stderr:
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_for_line(self, regex, timeout):
        """The first stderr line matching regex, waiting up to timeout; None if none."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if (m := regex.search(line)):
                        return m
                remaining = deadline - time.monotonic()
                if self.eof or remaining <= 0:
                    return None
                self.cond.wait(remaining)

    def wait_stderr_closed(self, timeout):
        """Waits (up to timeout) until stderr is read to its end."""
        with self.cond:
            self.cond.wait_for(lambda: self.eof, timeout)

    def wait_ready(self):
        m = self.wait_for_line(LISTEN_RE, T(10))
        if m:
            self.port, self.threads = int(m.group(1)), int(m.group(2))
        return m is not None

    def terminate(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout):
        """Exit status, or None if still running after timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stderr_text(self):
        """The sanitizer summaries (if any) and the last lines of stderr, on one line."""
        with self.cond:
            summaries = [line for line in self.lines if "SUMMARY:" in line][:3]
            return " | ".join(summaries + self.lines[-6:])


def check_clean_exit(prefix, server):
    """The process (already sent SIGTERM) exits 0 and says it stopped."""
    status = server.wait_exit(T(5))
    check(prefix + "_exits_with_status_0_after_sigterm", status == 0,
          "exit status %s; stderr: %s" % (status, server.stderr_text()))
    stopped = server.wait_for_line(STOPPED_RE, T(2))
    check(prefix + "_reports_stopped_on_stderr", stopped, "stderr: %s" % server.stderr_text())


@dataclass
class Ctx:
    server: Server
    quick: bool
    port: int = field(init=False)

    def __post_init__(self):
        self.port = self.server.port


# ---------------------------------------------------------------------------
# curl
# ---------------------------------------------------------------------------
def curl(*args):
    """curl's stdout; raises if curl itself failed."""
    done = subprocess.run(["curl", "-s", "--max-time", "%g" % T(10), *args],
                          capture_output=True, timeout=T(20))
    if done.returncode != 0:
        raise RuntimeError("curl %s exited %d" % (" ".join(args), done.returncode))
    return done.stdout


def url(ctx, path):
    return "http://%s:%d%s" % (HOST, ctx.port, path)


def test_curl_get_root(ctx):
    resp = parse_final_response(curl("-i", url(ctx, "/")))
    check_response("curl_get_root_returns_hello_text", resp, **HELLO,
                   headers={"Content-Type": starts_with("text/plain")})


def test_curl_user_json(ctx):
    resp = parse_final_response(curl("-i", url(ctx, "/users/42")))
    check_response("curl_user_param_returned_as_json", resp, **user_json("42"))


def test_curl_user_percent_decoded(ctx):
    resp = parse_final_response(curl("-i", url(ctx, "/users/a%20b")))
    check_response("curl_user_param_percent_decoded", resp, **user_json("a b"))


def test_curl_post_echo(ctx):
    resp = parse_final_response(curl("-i", "-d", "some bytes", url(ctx, "/echo")))
    check_response("curl_post_body_echoed", resp, status=200, body=b"some bytes")


def test_curl_chunked_upload(ctx):
    data = random.Random(100).randbytes(100 * 1024)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "upload.bin"), os.path.join(tmp, "echoed.bin")
        with open(src, "wb") as f:
            f.write(data)
        code = curl("-o", dst, "-w", "%{http_code}", "-H", "Transfer-Encoding: chunked",
                    "--data-binary", "@" + src, url(ctx, "/echo"))
        with open(dst, "rb") as f:
            echoed = f.read()
    check("curl_chunked_upload_echoed_byte_for_byte", code == b"200" and echoed == data,
          "status %s, %d bytes back (want %d), identical=%s" % (code, len(echoed), len(data), echoed == data))


def test_curl_head(ctx):
    resp = parse_final_response(curl("-I", url(ctx, "/")), head_request=True)
    check_response("curl_head_has_get_content_length", resp, status=200, headers={"Content-Length": "13"})


def test_curl_not_found(ctx):
    resp = parse_final_response(curl("-i", url(ctx, "/no/such/path")))
    check_response("curl_unknown_path_404_json_error", resp, **error_json(404))


def test_curl_method_not_allowed(ctx):
    resp = parse_final_response(curl("-i", "-X", "DELETE", url(ctx, "/echo")))
    check_response("curl_wrong_method_405_with_allow", resp, **error_json(405), headers={"Allow": allow_has("POST")})


# ---------------------------------------------------------------------------
# hello: raw sockets and http.client
# ---------------------------------------------------------------------------
def test_head_sends_no_body(ctx):
    head, after = exchange_on_one_connection(ctx.port, [build_request("HEAD", "/"), build_request("GET", "/")])
    check_response("head_has_get_content_length", head, status=200, body=b"", headers={"Content-Length": "13"})
    check_response("head_sends_no_body_next_response_intact", after, **HELLO)


def test_large_body_echo(ctx):
    data = random.Random(5).randbytes(5 << 20)
    conn = http.client.HTTPConnection(HOST, ctx.port, timeout=T(20))
    try:
        conn.request("POST", "/echo", body=data, headers={"Content-Type": "application/octet-stream"})
        r = conn.getresponse()
        echoed = r.read()
    finally:
        conn.close()
    check("large_body_5mib_echoed_identically", r.status == 200 and echoed == data,
          "status %d, %d bytes back (want %d), identical=%s" % (r.status, len(echoed), len(data), echoed == data))


def test_oversized_body_rejected(ctx):
    with Client(ctx.port) as c:
        c.send(build_request("POST", "/echo", {"Content-Length": str(9 << 20)}))  # the body is never sent
        resp = c.read_response()
        closed, how = c.server_closed()
    check_response("oversized_body_413_before_upload", resp, **error_json(413))
    check("oversized_body_connection_closed", closed, how)


def test_expect_100_continue(ctx):
    body = b"hello continue"
    with Client(ctx.port) as c:
        c.send(build_request("POST", "/echo", {"Content-Length": str(len(body)), "Expect": "100-continue"}))
        interim = c.read_response()
        check("expect_100_continue_sent_before_body",
              interim.status == 100 and interim.version == "HTTP/1.1" and interim.reason == "Continue",
              interim.summary())
        c.send(body)
        final = c.read_response()
    check_response("expect_100_continue_then_body_echoed", final, status=200, body=body)


def test_keepalive_http_client(ctx):
    conn = http.client.HTTPConnection(HOST, ctx.port, timeout=T(5))
    conn.connect()
    first_sock, local_port = conn.sock, conn.sock.getsockname()[1]
    bad, reused = [], True
    try:
        for i in range(100):
            path, expect = ("/", HELLO) if i % 2 == 0 else ("/users/%d" % i, user_json(str(i)))
            conn.request("GET", path)
            r = conn.getresponse()
            found = problems(http_client_response(r, r.read()), **expect)
            if found:
                bad.append("request %d %s: %s" % (i, path, "; ".join(found)))
            if conn.sock is not first_sock or conn.sock.getsockname()[1] != local_port:
                reused = False
    finally:
        conn.close()
    check("keepalive_100_requests_all_correct", not bad, "%d wrong, first: %s" % (len(bad), bad[:2]))
    check("keepalive_100_requests_one_connection", reused, "http.client had to reconnect")


def test_pipelined_requests(ctx):
    requests, expects = [], []
    for i in range(10):
        if i % 2 == 0:
            requests.append(build_request("GET", "/"))
            expects.append(HELLO)
        else:
            requests.append(build_request("GET", "/users/p%d" % i))
            expects.append(user_json("p%d" % i))
    with Client(ctx.port) as c:
        c.send(b"".join(requests))
        responses = [c.read_response() for _ in requests]
    bad = ["#%d: %s" % (i, "; ".join(p)) for i, (r, e) in enumerate(zip(responses, expects)) if (p := problems(r, **e))]
    check("pipelined_requests_answered_in_order", not bad, bad[:3])


def flood_until_the_server_stops_reading(sock, batch):
    """Sends batch after batch on a non-blocking socket, waiting up to 10 ms whenever it
    is full, until nothing more goes out for a while; returns the bytes sent (the last
    request may be cut short: the server has stopped reading before it)."""
    sent, pending = 0, b""
    start = progress = time.monotonic()
    while time.monotonic() - progress < T(0.5) and time.monotonic() - start < T(10):
        pending = pending or batch
        try:
            n = sock.send(pending)
        except BlockingIOError:
            select.select([], [sock], [], 0.01)
            continue
        pending, sent, progress = pending[n:], sent + n, time.monotonic()
    return sent


def test_pipelining_client_that_never_reads(ctx):
    """A client pipelining 100 requests at a time that never reads: its answers back up
    (a small receive window) and the server stops reading it, stays alive, and serves
    another client; the answers queued for it are intact. Under ASan+UBSan a server once
    died here (a zero offset applied to a null pointer while queueing an answer)."""
    with Client(ctx.port, rcvbuf=4096) as flood:
        flood.sock.setblocking(False)
        sent = capture(flood_until_the_server_stops_reading, flood.sock, build_request("GET", "/") * 100)
        alive = ctx.server.proc.poll() is None
        other = capture(exchange, ctx.port, "GET", "/")
        flood.sock.settimeout(T(5))
        first = [capture(flood.read_response) for _ in range(100)]
    check("never_reading_pipeliner_fills_its_window", isinstance(sent, int) and sent > 100000,
          "sent %s" % short(sent))
    check("server_alive_after_pipeliner_that_never_reads", alive, "stderr: %s" % ctx.server.stderr_text())
    check_response("other_client_served_while_pipeliner_never_reads", other, **HELLO)
    bad = [short(r) if isinstance(r, Exception) else "; ".join(found)
           for r in first if isinstance(r, Exception) or (found := problems(r, **HELLO))]
    check("answers_queued_for_the_pipeliner_intact", not bad, "%d of 100 wrong, first: %s" % (len(bad), bad[:1]))


def test_dribbled_request(ctx):
    request = build_request("POST", "/echo", body=b"dribbled body")
    with Client(ctx.port) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(request)):
            c.send(request[i:i + 1])
            time.sleep(0.002)  # the slow client is the behaviour under test
        resp = c.read_response()
    check_response("request_sent_one_byte_at_a_time", resp, status=200, body=b"dribbled body")


def test_http10_closes_by_default(ctx):
    with Client(ctx.port) as c:
        resp = c.request(b"GET / HTTP/1.0\r\n\r\n")
        closed, how = c.server_closed()
    check_response("http10_request_answered", resp, **HELLO)
    check("http10_without_keepalive_closed_after_response", closed, how)


def test_http10_keepalive(ctx):
    with Client(ctx.port) as c:
        first = c.request(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        second = c.request(b"GET /users/ten HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    check_response("http10_keepalive_response_says_keepalive", first, **HELLO,
                   headers={"Connection": lambda v: v is not None and v.lower() == "keep-alive"})
    check_response("http10_keepalive_connection_reusable", second, **user_json("ten"))


def test_http11_connection_close(ctx):
    with Client(ctx.port) as c:
        resp = c.request(build_request("GET", "/", {"Connection": "close"}))
        closed, how = c.server_closed()
    check_response("http11_connection_close_echoed", resp, **HELLO, headers={"Connection": "close"})
    check("http11_connection_close_closes_after_response", closed, how)


def test_requests_pipelined_after_close_unanswered_cleanly(ctx):
    """Requests pipelined behind one that closes the connection go unanswered, and the
    answer before them is not lost to a reset: the server half-closes and reads the rest
    away (RFC 9112 §9.6) rather than closing with unread bytes."""
    extra = build_request("GET", "/") * 400  # well past one 4 KiB read
    for name, first in (("connection_close", build_request("GET", "/", {"Connection": "close"})),
                        ("http10", build_request("GET", "/", version="HTTP/1.0"))):
        with Client(ctx.port) as c:
            c.send(first + extra)
            resp = capture(c.read_response)
            closed, how = c.server_closed() if not isinstance(resp, Exception) else (False, "no answer")
        check_response("answer_before_requests_pipelined_after_" + name, resp, **HELLO)
        check("requests_pipelined_after_%s_unanswered_then_clean_close" % name, closed, how)


def test_date_and_content_length(ctx):
    requests = [("GET", "/", b""), ("GET", "/users/1", b""), ("POST", "/echo", b"x" * 10),
                ("POST", "/echo", b""), ("GET", "/nope", b""), ("DELETE", "/echo", b""),
                ("HEAD", "/", b""), ("OPTIONS", "/", b"")]
    bad = []
    for method, path, body in requests:
        resp = exchange(ctx.port, method, path, body=body)
        found = [p for p in [date_problem(resp.header("Date"))] if p]
        if resp.header("Content-Length") is None:
            found.append("no Content-Length")
        if found:
            bad.append("%s %s -> %d: %s" % (method, path, resp.status, ", ".join(found)))
    check("every_response_has_date_and_content_length", not bad, bad)


def load_request(client, n):
    """Request n of a load-test client, and what its response must be."""
    tag = "c%d-r%d" % (client, n)
    if n % 3 == 0:
        return build_request("GET", "/"), HELLO
    if n % 3 == 1:
        return build_request("GET", "/users/" + tag), user_json(tag)
    body = ("echo from %s " % tag).encode() * (1 + client % 7)
    return build_request("POST", "/echo", body=body), dict(status=200, body=body)


def test_concurrent_clients(ctx):
    nconn, nreq = (20, 20) if ctx.quick else (200, 20)
    barrier = threading.Barrier(nconn)
    correct = [0] * nconn
    trouble = []  # list.append is atomic

    def client(i):
        try:
            with Client(ctx.port, timeout=20) as c:
                barrier.wait(T(20))  # every connection is open before any request is sent
                for n in range(nreq):
                    request, expect = load_request(i, n)
                    found = problems(c.request(request), **expect)
                    if found:
                        trouble.append("client %d request %d: %s" % (i, n, "; ".join(found)))
                    else:
                        correct[i] += 1
        except Exception as e:  # counted as mismatches below
            barrier.abort()
            trouble.append("client %d: %s" % (i, short(e)))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(nconn)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + T(40)
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    hung = sum(t.is_alive() for t in threads)
    total = sum(correct)
    check("concurrent_keepalive_clients_all_answered_correctly", total == nconn * nreq and not hung,
          "%d/%d correct, %d clients still running; first problems: %s" % (total, nconn * nreq, hung, trouble[:3]))


def test_malformed_request(ctx):
    with Client(ctx.port) as c:
        resp = c.request(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")
        closed, how = c.server_closed()
    check_response("content_length_with_chunked_is_400", resp, **error_json(400))
    check("bad_request_closes_connection", closed, how)
    check_response("server_still_serves_after_bad_request", exchange(ctx.port, "GET", "/"), **HELLO)


HELLO_TESTS = [
    test_curl_get_root, test_curl_user_json, test_curl_user_percent_decoded, test_curl_post_echo,
    test_curl_chunked_upload, test_curl_head, test_curl_not_found, test_curl_method_not_allowed,
    test_head_sends_no_body, test_large_body_echo, test_oversized_body_rejected, test_expect_100_continue,
    test_keepalive_http_client, test_pipelined_requests, test_pipelining_client_that_never_reads,
    test_dribbled_request, test_http10_closes_by_default,
    test_http10_keepalive, test_http11_connection_close,
    test_requests_pipelined_after_close_unanswered_cleanly, test_date_and_content_length, test_concurrent_clients,
    test_malformed_request,
]


# ---------------------------------------------------------------------------
# testapp
# ---------------------------------------------------------------------------
# (check name, method, target, request headers, expectations)
SIMPLE_CASES = [
    ("static_segment_beats_parameter", "GET", "/users/new", None, dict(status=200, body=b"new user form")),
    ("parameter_route_beside_static_one", "GET", "/users/7", None, user_json("7")),
    ("wildcard_captures_rest_of_path", "GET", "/files/a/b/c.txt", None, dict(status=200, body=b"a/b/c.txt")),
    ("wildcard_may_be_empty", "GET", "/files/", None, dict(status=200, body=b"")),
    ("two_parameters_in_one_route", "GET", "/items/x/y", None, dict(status=200, json_body={"a": "x", "b": "y"})),
    *[("any_route_answers_" + m.lower(), m, "/anything", None, dict(status=200, body=m.encode()))
      for m in ("PUT", "PATCH", "DELETE", "POST", "GET")],
    ("options_lists_allowed_methods", "OPTIONS", "/users/1", None,
     dict(status=200, headers={"Allow": allow_has("GET", "HEAD")})),
    ("options_on_unknown_path_is_404", "OPTIONS", "/no/such/path", None, dict(status=404)),
    ("options_asterisk_lists_methods", "OPTIONS", "*", None, dict(status=200, headers={"Allow": allow_has("GET")})),
    ("percent_escapes_decoded_in_params", "GET", "/users/%41%42", None, user_json("AB")),
    *[("path_traversal_refused_" + name, "GET", target, None, error_json(400)) for name, target in (
        ("dot_dot_segment", "/files/../etc/passwd"), ("encoded_dot_dot", "/files/%2e%2e/etc/passwd"),
        ("encoded_slash", "/files/..%2fetc%2fpasswd"), ("backslash", "/files/..%5cwin.ini"),
        ("dot_segment", "/files/./x"))],
    ("dotted_names_are_not_dot_segments", "GET", "/files/..a/.b/c..", None, dict(status=200, body=b"..a/.b/c..")),
    # a value must be a relative path that stays under the directory it is joined to
    *[("path_value_refused_" + name, "GET", target, None, refused(400, why)) for name, target, why in (
        ("encoded_absolute_path", "/files/%2fetc%2fpasswd", "encoded '/'"),
        ("absolute_path_after_empty_segment", "/files//etc/hostname", "starts with '/'"),
        ("empty_segment", "/files/a//b", "empty segment"),
        ("encoded_slash", "/files/a%2fb", "encoded '/'"),
        ("encoded_backslash", "/files/a%5cb", "backslash"),
        ("raw_backslash", "/files/a\\b", "backslash"),
        ("encoded_slash_in_parameter", "/users/%2f", "encoded '/'"))],
    ("path_value_with_subdirectory_served", "GET", "/files/a/b.txt", None, dict(status=200, body=b"a/b.txt")),
    ("path_value_with_trailing_slash_served", "GET", "/files/dir/", None, dict(status=200, body=b"dir/")),
    ("bad_percent_escape_is_400", "GET", "/users/%zz", None, error_json(400)),
    ("encoded_nul_in_param_is_400", "GET", "/users/%00", None, error_json(400)),
    ("json_writer_left_open_gives_500", "GET", "/json-open", None, error_json(500)),
    ("json_writer_misuse_gives_500", "GET", "/json-misuse", None, error_json(500)),
    ("query_string_passed_raw", "GET", "/query?a=1&b=%20", None, dict(status=200, body=b"a=1&b=%20")),
    ("missing_query_is_empty", "GET", "/query", None, dict(status=200, body=b"")),
    ("request_header_found", "GET", "/header", {"X-Probe": "Hello"}, dict(status=200, body=b"Hello")),
    ("request_header_lookup_case_insensitive", "GET", "/header", {"x-probe": "lower"},
     dict(status=200, body=b"lower")),
    ("missing_request_header_is_null", "GET", "/header", None, dict(status=200, body=b"none")),
]


def test_simple_cases(ctx):
    for name, method, target, headers, expect in SIMPLE_CASES:
        check_response(name, capture(exchange, ctx.port, method, target, headers), **expect)


def test_worker_threads_from_env(ctx):
    check("worker_thread_count_from_env", ctx.server.threads == 4, "listening line says %s threads" % ctx.server.threads)


def test_head_on_any_route(ctx):
    head, after = exchange_on_one_connection(ctx.port, [build_request("HEAD", "/anything"),
                                                        build_request("GET", "/")])
    check_response("head_on_any_route_answers_200", head, status=200)
    check_response("head_on_any_route_sends_no_body", after, **HELLO)


def test_bad_header(ctx):
    resp, after = exchange_on_one_connection(ctx.port, [build_request("GET", "/bad-header"),
                                                        build_request("GET", "/")])
    m = re.fullmatch(rb"rc=(-?\d+),(-?\d+)", resp.body)
    check("set_header_refuses_crlf_in_value", resp.status == 200 and m and int(m[1]) < 0 and int(m[2]) == 0,
          resp.summary())
    check_response("valid_header_after_refused_one_sent", resp, headers={"X-Ok": "fine"}, absent=("X-Test",))
    check("refused_header_never_on_the_wire", b"Injected" not in resp.raw + after.raw, short(resp.raw, 400))
    check_response("connection_intact_after_refused_header", after, **HELLO)


def test_slow_reader_gets_the_whole_answer_before_a_lingering_close(ctx):
    """A keep-alive client pipelines GET /big (1 MB, in the server's socket buffers at
    once) and GET /close (the handler ends the connection), keeps sending requests and
    reads slowly (about 270 KB/s): the server, lingering after its FIN, waits while the
    client still takes the answer in, so both answers arrive whole before the FIN, not
    cut by a reset when the lingering time (2 s) is up."""
    size = 1000000
    sock = socket.create_connection((HOST, ctx.port), timeout=T(20))
    stop = threading.Event()

    def keep_sending():
        try:
            while not stop.is_set():
                sock.send(build_request("GET", "/"))
                time.sleep(0.05)
        except OSError:
            pass  # the server closed once the answers were in: later requests are not answered

    def slow_recv(n):
        time.sleep(0.06)
        return sock.recv(min(n, 16384))

    try:
        sock.sendall(build_request("GET", "/big?n=%d" % size) + build_request("GET", "/close"))
        threading.Thread(target=keep_sending, daemon=True).start()
        reader = Reader(slow_recv)
        big, bye = capture(reader.read_response), capture(reader.read_response)
        end = capture(slow_recv, 1)
    finally:
        stop.set()
        sock.close()
    check("slow_reader_big_answer_whole", not isinstance(big, Exception) and big.status == 200
          and big.body == b"x" * size, short(big) if isinstance(big, Exception) else "%d bytes" % len(big.body))
    check_response("slow_reader_closing_answer_whole", bye, status=200, body=b"bye", headers={"Connection": "close"})
    check("slow_reader_then_fin", end == b"", "after the answers: %s" % short(end))


def test_client_still_sending_after_the_fin_is_not_reset_by_a_pause(ctx):
    """A keep-alive client pipelines GET /big (larger than the socket buffers, so the
    server is still writing it) and GET /close, and sends one more request while the
    answer is on its way: the server hears it only once it lingers after its FIN. The
    client reads everything, then still sends, with pauses of 100 ms, as a busy one
    might. A client that kept sending after the FIN has not read it yet: the server
    drains on through such pauses (MW__LINGER_MS of quiet, not 10 ms), so its sends
    meet no reset and the connection ends with a FIN when the client closes."""
    size = 6000000  # past tcp_wmem's 4 MB and the client's receive buffer: the write blocks
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(T(20))
    sock.connect((HOST, ctx.port))
    sends = []
    try:
        sock.sendall(build_request("GET", "/big?n=%d" % size) + build_request("GET", "/close"))
        select.select([sock], [], [], T(10))  # the answer began: both requests were read
        sock.sendall(build_request("GET", "/"))  # queued unread while the server writes
        reader = Reader(lambda n: sock.recv(65536))
        big, bye = capture(reader.read_response), capture(reader.read_response)
        end = capture(sock.recv, 1)
        for _ in range(3):
            time.sleep(0.1)
            sends.append(capture(sock.send, build_request("GET", "/")))
        after = capture(sock.recv, 1)
    finally:
        sock.close()
    check("still_sending_client_big_answer_whole", not isinstance(big, Exception) and big.status == 200
          and len(big.body) == size, short(big) if isinstance(big, Exception) else "%d bytes" % len(big.body))
    check_response("still_sending_client_closing_answer_whole", bye, status=200, body=b"bye",
                   headers={"Connection": "close"})
    check("still_sending_client_sees_fin", end == b"", "after the answers: %s" % short(end))
    check("still_sending_client_not_reset_after_pauses", all(not isinstance(r, Exception) for r in sends)
          and after == b"", "sends %s, then %s" % ([short(r) for r in sends], short(after)))


def test_handler_connection_close(ctx):
    with Client(ctx.port) as c:
        resp = c.request(build_request("GET", "/close"))
        closed, how = c.server_closed()
    check_response("handler_connection_close_header_sent", resp, status=200, body=b"bye",
                   headers={"Connection": "close"})
    check("handler_connection_close_closes_after_body", closed, how)


def test_no_content(ctx):
    resp, after = exchange_on_one_connection(ctx.port, [build_request("GET", "/nocontent"),
                                                        build_request("GET", "/")])
    check_response("no_content_204_without_length_or_body", resp, status=204, absent=("Content-Length",))
    check_response("connection_usable_after_204", after, **HELLO)


def test_blocking_handler(ctx):
    slow_result = {}
    with Client(ctx.port, timeout=10) as slow:
        sent = time.monotonic()
        slow.send(build_request("GET", "/slow?blocking"))

        def read_slow():
            slow_result["resp"] = capture(slow.read_response)
            slow_result["at"] = time.monotonic()

        reader = threading.Thread(target=read_slow, daemon=True)
        reader.start()
        started = ctx.server.wait_for_line(re.compile(r"slow handler started: blocking$"), T(5))
        check("blocking_handler_started", started, "no start line on stderr")
        durations, bad = [], []
        for _ in range(20):
            start = time.monotonic()
            found = problems(exchange(ctx.port, "GET", "/"), **HELLO)
            durations.append(time.monotonic() - start)
            bad += found
        fast_done = time.monotonic()
        reader.join(T(5))
    slowest = max(durations)
    check("other_requests_served_while_handler_blocks", not bad and slowest < T(0.5),
          "slowest %.3fs (limit %.2fs), problems: %s" % (slowest, T(0.5), bad[:2]))
    check("other_requests_finish_before_blocked_one", "at" in slow_result and fast_done < slow_result["at"],
          "fast requests done %.3fs after sending /slow; /slow answered at %s" % (
              fast_done - sent, "%.3fs" % (slow_result["at"] - sent) if "at" in slow_result else "never"))
    elapsed = slow_result.get("at", sent) - sent
    check("blocking_handler_answers_after_its_sleep", 0.95 <= elapsed < T(3), "answered after %.3fs" % elapsed)
    check_response("blocking_handler_answer_complete", slow_result.get("resp", TimeoutError("no answer")),
                   status=200, body=b"slow done")


def test_sigterm_with_request_in_flight(ctx):
    """Runs last: it stops the server."""
    with Client(ctx.port, timeout=10) as c:
        c.send(build_request("GET", "/slow?sigterm"))
        started = ctx.server.wait_for_line(re.compile(r"slow handler started: sigterm$"), T(5))
        check("sigterm_test_handler_started", started, "no start line on stderr")
        ctx.server.terminate()
        resp = capture(c.read_response)
    check_response("sigterm_lets_request_in_flight_finish", resp, status=200, body=b"slow done")
    check_clean_exit("testapp", ctx.server)
    try:
        socket.create_connection((HOST, ctx.port), timeout=T(2)).close()
        refused, detail = False, "a connection was accepted after the stop"
    except ConnectionRefusedError:
        refused, detail = True, ""
    check("connection_refused_after_stop", refused, detail)


# ---------------------------------------------------------------------------
# request toolkit through a real socket (testapp)
# ---------------------------------------------------------------------------
def fnv1a(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def test_toolkit_query_and_form(ctx):
    resp = parse_final_response(curl("-i", url(ctx, "/q?a=1&b=x+y&c=%C3%A9&bad=%zz&flag")))
    check_response("query_values_decoded_over_socket", resp, status=200, body="a=1;b=x y;c=é;bad=%zz;flag=;".encode())
    resp = parse_final_response(curl("-i", "-d", "name=J%C3%BCrgen+M&lang=c&lang=c%2B%2B", url(ctx, "/form")))
    check_response("curl_form_post_read_like_a_query", resp, status=200, body="name=Jürgen M;lang=c;lang=c++;".encode())


def test_toolkit_cookies(ctx):
    resp = parse_final_response(curl("-i", "-b", "theme=dark; session=abc123", url(ctx, "/cookie")))
    check_response("curl_cookie_read_by_name", resp, status=200, body=b"session=abc123",
                   headers={"Set-Cookie": "seen=1; Path=/; HttpOnly; SameSite=Lax"})


def test_toolkit_typed_params(ctx):
    check_response("typed_int_param_matches_integers", capture(exchange, ctx.port, "GET", "/typed/42"),
                   status=200, json_body={"id": 42})
    check_response("typed_int_param_rejects_other_values_with_404", capture(exchange, ctx.port, "GET", "/typed/4x2"),
                   **error_json(404))
    check_response("typed_int_param_rejects_out_of_range_with_404",
                   capture(exchange, ctx.port, "GET", "/typed/9223372036854775808"), **error_json(404))


def test_toolkit_json_body(ctx):
    conn = http.client.HTTPConnection(HOST, ctx.port, timeout=T(5))
    doc = {"user": {"address": {"city": "Zürich"}}, "items": [1, 2.5, None, True, "x\n"]}
    conn.request("POST", "/json", body=json.dumps(doc), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    check_response("json_body_read_over_socket", http_client_response(r, r.read()), status=200,
                   json_body={"city": "Zürich", "echo": doc})
    conn.request("POST", "/json", body=b'{"a": [1, 2,, 3]}', headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    check_response("malformed_json_body_is_400_with_offset", http_client_response(r, r.read()), status=400,
                   json_body=lambda d: d.get("offset") == 12 and "byte 12" in d.get("detail", ""))
    conn.close()


def declared_post(port, body, content_type="application/json", target="/declared/7"):
    conn = http.client.HTTPConnection(HOST, port, timeout=T(5))
    headers = {"Content-Type": content_type} if content_type else {}
    conn.request("POST", target, body=body, headers=headers)
    r = conn.getresponse()
    resp = http_client_response(r, r.read())
    conn.close()
    return resp


def validation_error(*detail):
    return {"status": 422, "error": "Unprocessable Content",
            "detail": [{"loc": list(loc), "msg": msg, "type": kind} for loc, msg, kind in detail]}


def test_declared_inputs(ctx):
    """Declared query parameters and JSON bodies are checked before the handler; every
    problem is listed in one 422 in FastAPI's shape."""
    check_response("declared_query_defaults_and_values",
                   capture(exchange, ctx.port, "GET", "/declared?q=caf%C3%A9"), status=200,
                   json_body={"id": 0, "limit": 20, "q": "café", "body": None})
    check_response("declared_query_problems_listed_together",
                   capture(exchange, ctx.port, "GET", "/declared?limit=0&q=" + "x" * 11), status=422,
                   json_body=validation_error(
                       (("query", "limit"), "Input should be greater than or equal to 1", "greater_than_equal"),
                       (("query", "q"), "String should have at most 10 characters", "string_too_long")))
    note = {"title": "t", "body": "b", "tags": ["x"], "meta": {"stars": 5}}
    check_response("declared_body_accepted_reaches_the_handler",
                   declared_post(ctx.port, json.dumps(note)), status=200,
                   json_body={"id": 7, "limit": 0, "q": None, "body": note})
    bad = {"title": "", "tags": ["a", 2, None], "meta": {"stars": 9}, "extra": 1}
    check_response("declared_body_every_problem_with_its_loc",
                   declared_post(ctx.port, json.dumps(bad)), status=422,
                   headers={"Content-Type": "application/json"},
                   json_body=validation_error(
                       (("body", "title"), "String should have at least 1 character", "string_too_short"),
                       (("body", "body"), "Field required", "missing"),
                       (("body", "tags", 1), "Input should be a valid string", "string_type"),
                       (("body", "tags", 2), "Input should be a valid string", "string_type"),
                       (("body", "meta", "stars"), "Input should be less than or equal to 5", "less_than_equal"),
                       (("body", "extra"), "Extra inputs are not permitted", "extra_forbidden")))
    check_response("declared_body_malformed_json_is_400_with_offset",
                   declared_post(ctx.port, b'{"title": "a",, "body": "b"}'), status=400,
                   json_body=lambda d: d.get("offset") == 14 and "byte 14" in d.get("detail", ""))
    check_response("declared_body_not_json_is_415", declared_post(ctx.port, b"title=a", "text/plain"),
                   **error_json(415))
    check_response("declared_body_empty_is_missing", declared_post(ctx.port, b""), status=422,
                   json_body=validation_error((("body",), "Field required", "missing")))
    check_response("declared_typed_path_other_value_is_404", declared_post(ctx.port, b"{}", target="/declared/x"),
                   **error_json(404))
    # the connection stays usable after a 422: the request was well framed
    conn = http.client.HTTPConnection(HOST, ctx.port, timeout=T(5))
    statuses = []
    for body in (b"[]", json.dumps(note).encode()):
        conn.request("POST", "/declared/1", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        statuses.append(r.status)
    conn.close()
    check("declared_422_keeps_the_connection_alive", statuses == [422, 200], short(statuses))


def test_toolkit_multipart_upload(ctx):
    data = random.Random(7).randbytes(200 * 1024)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "photo.bin")
        with open(path, "wb") as f:
            f.write(data)
        out = curl("-F", "title=Holiday", "-F", "file=@%s;filename=../../etc/evil.bin;type=image/png" % path,
                   url(ctx, "/upload"))
    try:
        parts = json.loads(out)
    except ValueError:
        parts = None
    want = [{"name": "title", "filename": None, "safe_filename": None, "content_type": None, "size": 7,
             "fnv1a": fnv1a(b"Holiday"), "data": "Holiday"},
            {"name": "file", "filename": "../../etc/evil.bin", "safe_filename": "evil.bin",
             "content_type": "image/png", "size": len(data), "fnv1a": fnv1a(data)}]
    check("curl_multipart_upload_parts_and_bytes", parts == want, "got %s" % short(out, 600))
    bad = build_request("POST", "/upload", {"Content-Type": "multipart/form-data; boundary=zz"},
                        body=b"--zz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated")
    with Client(ctx.port) as c:
        resp = capture(c.request, bad)
    check_response("malformed_multipart_is_400_with_reason", resp, status=400,
                   json_body=lambda d: "not terminated" in d.get("detail", ""))


TESTAPP_TESTS = [
    test_worker_threads_from_env, test_simple_cases, test_head_on_any_route, test_bad_header,
    test_handler_connection_close, test_no_content, test_toolkit_query_and_form, test_toolkit_cookies,
    test_toolkit_typed_params, test_toolkit_json_body, test_declared_inputs, test_toolkit_multipart_upload, test_blocking_handler,
    test_slow_reader_gets_the_whole_answer_before_a_lingering_close,
    test_client_still_sending_after_the_fin_is_not_reset_by_a_pause, test_sigterm_with_request_in_flight,
]


# ---------------------------------------------------------------------------
# limits (testapp with TESTAPP_TIGHT_LIMITS=1: see set_tight_limits in testapp.c)
# ---------------------------------------------------------------------------
HEAD_TIMEOUT, BODY_TIMEOUT, KEEPALIVE_TIMEOUT, MAX_CONNECTIONS = 0.8, 0.8, 1.5, 8
DEFER_ACCEPT = 1.0  # MW_DEFER_ACCEPT_S, left at its default
SWEEP_SLACK = 0.5  # the server checks deadlines four times a second


def timed_answer(port, data, dribble=None):
    """Sends data (then, if given, one dribble byte every 0.1 s while waiting); returns
    (response or error, seconds until it came, whether the server then closed)."""
    with Client(port, timeout=10) as c:
        start = time.monotonic()
        c.send(data)
        if dribble:
            c.sock.settimeout(0.1)
            while True:
                try:
                    c.sock.recv(1, socket.MSG_PEEK)  # an answer's first byte, or the close
                    break
                except socket.timeout:
                    c.send(dribble)
            c.sock.settimeout(T(10))
        resp = capture(c.read_response)
        elapsed = time.monotonic() - start
        closed, _ = c.server_closed() if not isinstance(resp, Exception) else (False, "")
        return resp, elapsed, closed


def check_deadline(name, result, status, limit):
    resp, elapsed, closed = result
    check_response(name, resp, status=status, json_body=lambda d: d.get("status") == status)
    check(name + "_on_time", limit * 0.9 <= elapsed < limit + T(SWEEP_SLACK) + T(1),
          "answered after %.2fs, limit %.2fs" % (elapsed, limit))
    check(name + "_then_closes", closed, "connection left open")


def test_head_timeout_408(ctx):
    partial = b"GET / HTTP/1.1\r\nHost: x\r\n"
    check_deadline("partial_head_gets_408_at_head_deadline", timed_answer(ctx.port, partial), 408, HEAD_TIMEOUT)


def test_head_deadline_counts_whole_head(ctx):
    """A byte every 0.1 s is progress on every read, but the head deadline counts the
    whole head: the answer still comes at the head timeout (slowloris)."""
    result = timed_answer(ctx.port, b"GET / HTTP/1.1\r\nX-Slow: ", dribble=b"a")
    check_deadline("dribbled_head_gets_408_at_head_deadline", result, 408, HEAD_TIMEOUT)


def test_body_timeout_408(ctx):
    data = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"
    check_deadline("stalled_body_gets_408", timed_answer(ctx.port, data), 408, BODY_TIMEOUT)


def test_silent_connection_deferred_then_closed(ctx):
    """The kernel holds a new connection until its first bytes (MW_DEFER_ACCEPT_S, 1 s
    by default): a client that pauses before speaking is served as usual, and one that
    never speaks reaches the server after about 1 s and is then closed, without an
    answer, at the head timeout."""
    with Client(ctx.port, timeout=10) as c:
        time.sleep(0.3)  # a pause before the first byte, as a person typing into nc makes
        resp = capture(c.request, build_request("GET", "/"))
    check_response("request_after_a_pause_served", resp, **HELLO)
    with Client(ctx.port, timeout=10) as c:
        start = time.monotonic()
        closed, how = c.server_closed(timeout=DEFER_ACCEPT + HEAD_TIMEOUT + SWEEP_SLACK + 3)
        elapsed = time.monotonic() - start
    check("silent_connection_closed_without_answer", closed, how)
    check("silent_connection_closed_after_deferral_and_head_timeout",
          DEFER_ACCEPT * 0.9 + HEAD_TIMEOUT * 0.9 <= elapsed < DEFER_ACCEPT + HEAD_TIMEOUT + T(SWEEP_SLACK) + T(2),
          "closed after %.2fs" % elapsed)


def test_keepalive_idle_closed(ctx):
    with Client(ctx.port, timeout=10) as c:
        resp = capture(c.request, build_request("GET", "/"))
        start = time.monotonic()
        closed, detail = c.server_closed(timeout=KEEPALIVE_TIMEOUT + SWEEP_SLACK + 2)
        elapsed = time.monotonic() - start
    check_response("keepalive_request_answered", resp, **HELLO)
    check("idle_keepalive_connection_closed_after_timeout",
          closed and KEEPALIVE_TIMEOUT * 0.9 <= elapsed < KEEPALIVE_TIMEOUT + T(SWEEP_SLACK) + T(1),
          "%s after %.2fs" % (detail or "closed", elapsed))


def refused_and_closed(name, port, data, status):
    with Client(port) as c:
        c.send(data)
        resp = capture(c.read_response)
        closed, detail = c.server_closed() if not isinstance(resp, Exception) else (False, "")
    check_response(name, resp, status=status, headers={"Connection": "close"},
                   json_body=lambda d: d.get("status") == status and d.get("detail"))
    check(name + "_closes", closed, detail)


def test_size_limits(ctx):
    refused_and_closed("request_line_over_limit_is_414", ctx.port,
                       build_request("GET", "/" + "a" * 300), 414)
    refused_and_closed("header_count_over_limit_is_431", ctx.port,
                       build_request("GET", "/", {"X-%d" % i: "v" for i in range(12)}), 431)
    refused_and_closed("header_bytes_over_limit_is_431", ctx.port,
                       build_request("GET", "/", {"X-Big": "v" * 600}), 431)
    refused_and_closed("content_length_over_limit_is_413", ctx.port,
                       build_request("POST", "/echo", {"Content-Length": "2000"}), 413)
    chunked = b"".join(b"100\r\n" + b"x" * 256 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    refused_and_closed("chunked_body_over_limit_is_413", ctx.port,
                       build_request("POST", "/echo", {"Transfer-Encoding": "chunked"}) + chunked, 413)
    check_response("served_after_limit_errors", exchange(ctx.port, "GET", "/"), **HELLO)


def test_connection_limit(ctx):
    """At the limit a new connection gets 503 and is closed; a freed slot serves again."""
    held = []
    try:
        for _ in range(MAX_CONNECTIONS):
            c = Client(ctx.port, timeout=5)
            held.append(c)
            c.request(build_request("GET", "/"))
        with Client(ctx.port) as extra:
            extra.send(build_request("GET", "/"))
            resp = capture(extra.read_response)
            closed, how = extra.server_closed() if not isinstance(resp, Exception) else (False, "no answer")
        check_response("connection_over_limit_gets_503", resp, status=503, headers={"Retry-After": "1"})
        check("connection_over_limit_closed_cleanly_not_reset", closed, how)
        held.pop().close()
        deadline, resp = time.monotonic() + T(3), None
        while time.monotonic() < deadline:  # the server notices the close asynchronously
            resp = capture(exchange, ctx.port, "GET", "/")
            if not isinstance(resp, Exception) and resp.status == 200:
                break
        check_response("connection_served_once_below_limit", resp, **HELLO)
    finally:
        for c in held:
            c.close()


def test_keepalive_survives_long_handler(ctx):
    """A handler that runs longer than the head timeout: its connection is still kept
    alive for the next request (no deadline runs while a handler works)."""
    with Client(ctx.port, timeout=10) as c:
        first = capture(c.request, build_request("GET", "/slow?keepalive"))
        second = capture(c.request, build_request("GET", "/"))
    check_response("long_handler_answered", first, status=200, body=b"slow done", absent=("Connection",))
    check_response("keepalive_after_handler_longer_than_head_timeout", second, **HELLO)


def test_queued_large_response_then_close(ctx):
    """Connection: close on a response too large for the socket: it goes out in parts as
    the client reads (the last part held back for the FIN), and all of it arrives before
    a clean close."""
    with Client(ctx.port, timeout=20, rcvbuf=4096) as c:  # a small window: the server must queue
        resp = capture(c.request, build_request("GET", "/big?n=3000001", {"Connection": "close"}))
        closed, how = c.server_closed() if not isinstance(resp, Exception) else (False, "no response")
    check_response("queued_response_before_close_complete", resp, status=200,
                   headers={"Content-Length": "3000001", "Connection": "close"})
    check("queued_response_before_close_body", not isinstance(resp, Exception) and resp.body == b"x" * 3000001,
          "body differs")
    check("queued_response_then_clean_close", closed, how)


def test_partial_head_after_queued_response_gets_408(ctx):
    """A large response that had to be queued, pipelined with half a request: once the
    response is out, the half request gets the head deadline (408), not the write one."""
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the server must queue
        sock.settimeout(T(20))
        sock.connect((HOST, ctx.port))
        reader = Reader(sock.recv)
        sock.sendall(build_request("GET", "/big?n=8000000") + b"GET / HTTP/1.1\r\nHost: x\r\n")
        big = capture(reader.read_response)
        start = time.monotonic()
        late = capture(reader.read_response)
        elapsed = time.monotonic() - start
    finally:
        sock.close()
    check_response("queued_large_response_complete", big, status=200, headers={"Content-Length": "8000000"})
    check_response("half_request_after_queued_response_gets_408", late, status=408)
    check("half_request_408_at_head_deadline", elapsed < HEAD_TIMEOUT + T(SWEEP_SLACK) + T(1),
          "answered after %.2fs" % elapsed)


# test_connection_limit runs last: the server notices its closed connections only
# asynchronously, so a test after it could still find every slot taken.
LIMIT_TESTS = [
    test_size_limits, test_head_timeout_408, test_head_deadline_counts_whole_head, test_body_timeout_408,
    test_silent_connection_deferred_then_closed, test_keepalive_idle_closed, test_keepalive_survives_long_handler,
    test_queued_large_response_then_close,
    test_partial_head_after_queued_response_gets_408,
    test_connection_limit,
]


# ---------------------------------------------------------------------------
# stopping under load (hello)
# ---------------------------------------------------------------------------
SHUTDOWN_GRACE = 5.0  # MW_SHUTDOWN_GRACE_MS, hello's default
ECHO_BYTES = 64 << 10


def pipelined_request(i):
    """Request i of a stopping test's connection, and the body its answer must have:
    every tenth a 64 KiB POST /echo, the others GET /users/i (each answer names its
    request, so an answer lost or out of order shows)."""
    if i % 10 == 9:
        body = (b"%08d" % i) * (ECHO_BYTES // 8)
        return build_request("POST", "/echo", body=body), body
    return build_request("GET", "/users/%d" % i), b'{"id":"%d"}' % i


class PipeliningConnection:
    """One connection that pipelines `count` requests from one thread, one send each as
    a client makes them (no Nagle delay: each goes out at once), and reads the answers
    slowly from another, checking each, until the server ends the connection.

    The sending thread tells a reset from a FIN: after a reset its next send fails (and
    takes the socket's error, so the reading thread sees only an end of file). A server
    that ends a connection well half-closes and reads and drops what the client still
    sends, so the sender sees no error before the reader has seen the FIN."""

    def __init__(self, port, count):
        self.client = Client(port, timeout=20)
        self.client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.count, self.answers, self.wrong = count, 0, []
        self.last_says_close = False
        self.unparsed = None  # bytes of an answer cut short by the end (-1: a reset), once ended
        self.send_error = None
        self.ended_at = None
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._send, daemon=True),
                        threading.Thread(target=self._read, daemon=True)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self, timeout):
        for t in self.threads:
            t.join(timeout)

    def _send(self):
        try:
            for i in range(self.count):
                if self.done.is_set():
                    return
                self.client.send(pipelined_request(i)[0])
                time.sleep(0.001)  # a request a millisecond: the server keeps up and waits for the next
        except OSError as e:
            self.send_error = e

    def _slow_recv(self, n):
        data = self.client.sock.recv(min(n, 16384))
        time.sleep(0.005)  # 3 MB/s at most: the answers back up in the socket buffers
        return data

    def _read(self):
        reader = Reader(self._slow_recv)
        try:
            while True:
                resp = reader.read_response()
                _, body = pipelined_request(self.answers)
                if resp.status != 200 or resp.body != body:
                    self.wrong.append("answer %d: %s" % (self.answers, resp.summary()))
                if self.last_says_close:
                    self.wrong.append("answer %d came after one that said Connection: close" % self.answers)
                self.answers += 1
                self.last_says_close = (resp.header("Connection") or "").lower() == "close"
        except ConnectionResetError:
            self.unparsed = -1
        except ConnectionError:  # the end of the stream
            self.unparsed = len(reader.buf)
        except OSError:
            self.unparsed = -1
        self.ended_at = time.monotonic()
        self.done.set()

    def ending(self):
        """How the connection ended, in words."""
        if self.ended_at is None:
            return "still open"
        if self.send_error is not None or self.unparsed == -1:
            return "reset after %d answers (%s)" % (self.answers, self.send_error or "on a read")
        if self.unparsed:
            return "FIN inside answer %d, %d bytes of it received" % (self.answers, self.unparsed)
        marked = ", which said Connection: close" if self.last_says_close else ""
        return "FIN after answer %d%s" % (self.answers, marked)


def test_sigterm_under_pipelined_load_ends_every_connection_cleanly(ctx):
    """SIGTERM while ten connections pipeline requests (every tenth with a 64 KiB body)
    and read slowly: within the grace period every connection ends after a complete
    answer with a FIN, never a reset (the server reads and drops what the client still
    sends); answers come in order, none lost, and one that says Connection: close is the
    last; the server exits 0. A connection that had nothing in flight at the stop may
    end without that header (SERVING in the manual). Runs last: it stops the server."""
    nconn, count = (4, 20000) if ctx.quick else (10, 20000)
    conns = [PipeliningConnection(ctx.port, count) for _ in range(nconn)]
    try:
        for c in conns:
            c.start()
        time.sleep(0.5)  # the scenario: the stop comes while answers are backed up
        stopped_at = time.monotonic()
        ctx.server.terminate()
        for c in conns:
            c.join(max(0.0, stopped_at + T(SHUTDOWN_GRACE + 5) - time.monotonic()))
    finally:
        for c in conns:
            c.done.set()
            c.client.close()
    endings = [c.ending() for c in conns]
    print("info: %d connections ended: %s" % (nconn, "; ".join(endings)), flush=True)
    cut = ["#%d %s" % (i, e) for i, e in enumerate(endings) if not e.startswith("FIN after")]
    check("sigterm_under_load_connections_end_after_a_whole_answer_with_fin_not_reset", not cut,
          "%d of %d did not: %s" % (len(cut), nconn, cut[:4]))
    late = ["%.2f" % (c.ended_at - stopped_at) for c in conns
            if c.ended_at and c.ended_at - stopped_at > SHUTDOWN_GRACE]
    check("sigterm_under_load_connections_end_within_grace", not late, "ended %s s after SIGTERM" % late)
    wrong = [w for c in conns for w in c.wrong]
    check("sigterm_under_load_answers_in_order_and_connection_close_last", not wrong and all(c.answers for c in conns),
          "answers %s; wrong: %s" % ([c.answers for c in conns], wrong[:2]))
    check_clean_exit("sigterm_under_load", ctx.server)


STOPPING_TESTS = [test_sigterm_under_pipelined_load_ends_every_connection_cleanly]


# ---------------------------------------------------------------------------
# the listening address (HOST)
# ---------------------------------------------------------------------------
IPV6_LISTEN_RE = re.compile(r"microweb: listening on http://\[::1\]:(\d+) \((\d+) threads\)")


def resolver_message(host):
    """What this machine's resolver says about host (gai_strerror's words), or None."""
    try:
        socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        return e.strerror
    return None


def test_unresolvable_host_reports_the_lookup_failure(command):
    """HOST that does not resolve: mw_run stops at once with the resolver's words, not
    with an error from a bind that was never possible."""
    why = resolver_message("bogus.invalid")
    server = Server(command, {"HOST": "bogus.invalid"})
    try:
        status = server.wait_exit(T(10))
        server.wait_stderr_closed(T(2))
        said = server.stderr_text()
    finally:
        server.kill()
    check("unresolvable_host_exits_with_status_1", status == 1, "exit status %s; stderr: %s" % (status, said))
    check("unresolvable_host_names_the_lookup_failure",
          why is not None and "bogus.invalid" in said and why in said and "Cannot assign" not in said,
          "stderr %s, resolver says %s" % (short(said), short(why)))


def ipv6_loopback_available():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_ipv6_host_bracketed_and_served(command):
    """HOST=::1: the listening line brackets the address (a URL needs them, RFC 3986
    §3.2.2) and the server answers on ::1."""
    if not ipv6_loopback_available():
        print("SKIP ipv6_host: no IPv6 on the loopback interface", flush=True)
        return
    server = Server(command, {"HOST": "::1"})
    try:
        m = server.wait_for_line(IPV6_LISTEN_RE, T(10))
        if not check("ipv6_host_listening_line_brackets_the_address", m, "stderr: %s" % server.stderr_text()):
            return
        with socket.create_connection(("::1", int(m.group(1))), timeout=T(5)) as sock:
            sock.sendall(build_request("GET", "/"))
            resp = capture(Reader(sock.recv).read_response)
        check_response("ipv6_host_serves_on_ipv6_loopback", resp, **HELLO)
        server.terminate()
        check_clean_exit("ipv6_host", server)
    finally:
        server.kill()


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
def serve_example(prefix, binary, exercise, extra_env=None):
    """Starts binary, runs exercise(port) once it is ready, then checks it stops cleanly."""
    server = Server(command_for(binary), extra_env)
    try:
        if check(prefix + "_starts_and_reports_port", server.wait_ready(), server.stderr_text()):
            exercise(server.port)
            server.terminate()
            check_clean_exit(prefix, server)
    finally:
        server.kill()


def summary():
    """Prints the suite's last line and returns its exit status."""
    print("%d passed, %d failed" % (Tally.passed, Tally.failed), flush=True)
    return 0 if Tally.failed == 0 else 1


def run_each(tests, arg):
    """Runs test(arg) for each test; an exception is that test's FAIL."""
    for test in tests:
        try:
            test(arg)
        except Exception as e:
            check(test.__name__.removeprefix("test_"), False, "%s: %s" % (type(e).__name__, e))


def run_tests(prefix, tests, ctx):
    """Runs the tests in order; stops early (one FAIL) if the server dies on the way."""
    previous = None
    for test in tests:
        status = ctx.server.proc.poll()
        if status is not None:
            check(prefix + "_server_survives_the_tests", False, "exited with status %s during %s; stderr: %s"
                  % (status, previous, ctx.server.stderr_text()))
            return
        previous = test.__name__.removeprefix("test_")
        try:
            test(ctx)
        except Exception as e:
            check(previous, False, "%s: %s" % (type(e).__name__, e))


def run_server_suite(prefix, command, extra_env, tests, quick, stops_itself=False):
    try:
        server = Server(command, extra_env)
    except OSError as e:
        check(prefix + "_starts_and_reports_port", False, "cannot start %s: %s" % (command, e))
        return
    try:
        if not check(prefix + "_starts_and_reports_port", server.wait_ready(), "stderr: %s" % server.stderr_text()):
            return
        run_tests(prefix, tests, Ctx(server, quick))
        if not stops_itself:
            server.terminate()
            check_clean_exit(prefix, server)
    finally:
        server.kill()


# ---------------------------------------------------------------------------
# the access log (testapp, one worker, tight limits, MW_ACCESS_LOG=1)
# ---------------------------------------------------------------------------
def test_refusal_after_head_logs_its_own_request(ctx):
    """A 408 for a body that stopped coming is logged with its own request line, though
    the worker has parsed another connection's head since (the log read that one)."""
    with Client(ctx.port) as a:
        a.send(b"POST /echo?conn=a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        other = capture(exchange, ctx.port, "GET", "/query?this-is-connection-b")
        refused = capture(a.read_response)
    line = ctx.server.wait_for_line(re.compile(r" 408 \d+ \d+us$"), T(5))
    check_response("other_connection_served_meanwhile", other, status=200)
    check_response("stalled_body_answered_408", refused, status=408)
    check("refusal_logged_with_its_own_request",
          line is not None and " POST /echo?conn=a 408 " in line.string and "connection-b" not in line.string,
          "log line %s" % short(line.string if line else None))


ACCESS_LOG_TESTS = [test_refusal_after_head_logs_its_own_request]


def main(argv):
    args = [a for a in argv if a != "--quick"]
    if len(args) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    quick = "--quick" in argv
    run_server_suite("hello", command_for(args[0]), {}, HELLO_TESTS, quick)
    run_server_suite("testapp", command_for(args[1]), {"MW_THREADS": "4"}, TESTAPP_TESTS, quick, stops_itself=True)
    run_server_suite("limits", command_for(args[1]), {"TESTAPP_TIGHT_LIMITS": "1"}, LIMIT_TESTS, quick)
    run_server_suite("stopping", command_for(args[0]), {}, STOPPING_TESTS, quick, stops_itself=True)
    run_server_suite("access_log", command_for(args[1]),
                     {"TESTAPP_TIGHT_LIMITS": "1", "MW_THREADS": "1", "MW_ACCESS_LOG": "1"}, ACCESS_LOG_TESTS, quick)
    run_each((test_unresolvable_host_reports_the_lookup_failure, test_ipv6_host_bracketed_and_served),
             command_for(args[0]))
    print("%d passed, %d failed" % (Tally.passed, Tally.failed), flush=True)
    return 0 if Tally.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
