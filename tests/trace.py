#!/usr/bin/env python3
"""The trace mode (MW_TRACE=1) over real sockets: golden accounts, colours, threads.

Usage:  python3 tests/trace.py TRACEAPP_BINARY

TRACEAPP_BINARY is tests/traceapp.c built (or a command line, e.g. under a sanitizer).
Each golden case sends raw bytes to a server with MW_TRACE=1 and compares the accounts
it writes on stderr with tests/trace/<case>.txt, once the parts that change from run to
run (the client's port, the Date field, the duration) are masked. TRACE_UPDATE=1 writes
the files instead (review them before committing).
Output: "PASS name" / "FAIL name: detail" lines, then "N passed, N failed".
"""
import difflib
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e  # noqa: E402
from e2e import HOST, T, Client, Server, check, command_for  # noqa: E402

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trace")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
TITLE_RE = re.compile(r"^-- 127\.0\.0\.1:\d+ -+$")
DATE_RE = re.compile(r"Date: [^\\]*\\r\\n")
DURATION_RE = re.compile(r", \d+us$")
FILE_DATES_RE = re.compile(r"^  \| (ETag|Last-Modified): .*\\r\\n$")


def accounts(server):
    """The accounts on the server's stderr so far: lists of lines, from "-- " to "== "."""
    with server.cond:
        lines = list(server.lines)
    found, current = [], None
    for line in lines:
        line = ANSI_RE.sub("", line)
        if line.startswith("-- "):
            current = [line] if current is None else current + ["<<another account begins here>>", line]
        elif current is not None:
            current.append(line)
            if line.startswith("== "):
                found.append(current)
                current = None
    return found


def wait_accounts(server, count, timeout=5.0):
    """The first count accounts, waiting for them up to timeout."""
    deadline = time.monotonic() + T(timeout)
    with server.cond:
        while len(accounts_unlocked(server)) < count and time.monotonic() < deadline:
            server.cond.wait(0.05)
    return accounts(server)[:count]


def accounts_unlocked(server):
    server.cond.release()
    try:
        return accounts(server)
    finally:
        server.cond.acquire()


def masked(account_lines):
    """The account without what changes from run to run; a file's ETag and date also
    change the length of the head."""
    out = []
    file_dates = any(FILE_DATES_RE.match(line) for line in account_lines)
    for line in account_lines:
        if file_dates:
            line = re.sub(r"^response head as sent, \d+ bytes:$", "response head as sent, N bytes:", line)
        if TITLE_RE.match(line):
            line = "-- 127.0.0.1:PORT -----------------------------------------"
        line = DATE_RE.sub(r"Date: DATE\\r\\n", line)
        line = DURATION_RE.sub(", Nus", line)
        line = FILE_DATES_RE.sub(r"  | \1: (the file's)\\r\\n", line)
        out.append(line)
    return out


def compare_golden(name, got_accounts):
    text = "\n".join("\n".join(masked(a)) for a in got_accounts) + "\n"
    path = os.path.join(GOLDEN_DIR, name + ".txt")
    if os.environ.get("TRACE_UPDATE") == "1":
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    try:
        with open(path, encoding="utf-8") as f:
            want = f.read()
    except OSError as e:
        want = "(%s)" % e
    if text != want:
        diff = difflib.unified_diff(want.splitlines(), text.splitlines(), "expected", "got", lineterm="", n=1)
        print("\n".join("    " + d for d in list(diff)[:40]), flush=True)
    check("trace_golden_" + name, text == want, "differs from tests/trace/%s.txt (diff above)" % name)


# ---- golden cases: (name, exercise(port), accounts it writes) ----

def send_and_read(port, data, responses=1, head=False):
    with Client(port) as c:
        c.send(data)
        return [c.read_response(head) for _ in range(responses)]


def case_get(port):
    send_and_read(port, b"GET /notes/42?full=1 HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\n\r\n")


def case_post_chunked(port):
    send_and_read(port, b"POST /notes HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n"
                        b"Content-Type: text/plain\r\n\r\n5\r\nhello\r\n6;note=x\r\n world\r\n0\r\n\r\n")


def case_pipelined(port):
    send_and_read(port, b"GET /notes HTTP/1.1\r\nHost: example.test\r\n\r\n"
                        b"GET /notes/7 HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n", responses=2)


def case_not_found(port):
    send_and_read(port, b"GET /missing HTTP/1.1\r\nHost: example.test\r\n\r\n")


def case_method_not_allowed(port):
    send_and_read(port, b"DELETE /notes HTTP/1.1\r\nHost: example.test\r\n\r\n")


def case_refused_bare_lf(port):
    send_and_read(port, b"GET /notes HTTP/1.1\r\nHost: example.test\nAccept: */*\r\n\r\n")


def case_refused_header(port):
    send_and_read(port, b"GET /notes HTTP/1.1\r\nHost: example.test\r\nBad Name: x\r\n\r\n")


def case_refused_body_too_large(port):
    send_and_read(port, b"POST /notes HTTP/1.1\r\nHost: example.test\r\nContent-Length: 99999999\r\n\r\n")


def case_expect_continue(port):
    with Client(port) as c:
        c.send(b"POST /notes HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\n")
        c.send(b"hello")  # HTTP/1.0: no interim answer is owed
        c.read_response()
        c.send(b"POST /notes HTTP/1.1\r\nHost: example.test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n"
               b"Connection: close\r\n\r\n")
        interim = c.read_response()
        c.send(b"hello")
        final = c.read_response()
        check("trace_expect_continue_answered", (interim.status, final.status) == (100, 201),
              (interim.status, final.status))


def case_streamed(port):
    """Bodies that are not a buffer: mw_flush, a pull callback, SSE, a file; and a 101."""
    for target in (b"/flushed", b"/pulled", b"/events", b"/static/hello.txt"):
        with Client(port) as c:
            c.send(b"GET " + target + b" HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
            c.read_response()
    with Client(port) as c:
        c.send(b"GET /ws HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        check("trace_websocket_switches", c.read_response().status == 101)


CASES = [
    ("get", case_get, 1),
    ("post_chunked", case_post_chunked, 1),
    ("pipelined", case_pipelined, 2),
    ("not_found", case_not_found, 1),
    ("method_not_allowed", case_method_not_allowed, 1),
    ("refused_bare_lf", case_refused_bare_lf, 1),
    ("refused_header", case_refused_header, 1),
    ("refused_body_too_large", case_refused_body_too_large, 1),
    ("expect_continue", case_expect_continue, 2),
    ("streamed", case_streamed, 5),
]


def golden_suite(binary):
    server = Server(command_for(binary), {"MW_TRACE": "1", "MW_THREADS": "2"})
    try:
        if not check("trace_server_starts", server.wait_ready(), server.stderr_text()):
            return
        seen = 0
        for name, exercise, count in CASES:
            try:
                exercise(server.port)
            except Exception as e:
                check("trace_golden_" + name, False, "%s: %s" % (type(e).__name__, e))
                continue
            got = wait_accounts(server, seen + count)[seen:]
            seen += count
            if not check("trace_golden_%s_written" % name, len(got) == count, "%d of %d accounts" % (len(got), count)):
                continue
            compare_golden(name, got)
        with server.cond:
            escapes = [line for line in server.lines if "\x1b" in line]
        check("trace_no_colours_on_a_pipe", not escapes, e2e.short(escapes[:2]))
        server.terminate()
        e2e.check_clean_exit("trace", server)
    finally:
        server.kill()


def trace_off_writes_nothing(binary):
    env = {"MW_THREADS": "1"}
    server = Server(command_for(binary), dict(env, MW_TRACE="0"))
    try:
        if server.wait_ready():
            send_and_read(server.port, b"GET /notes HTTP/1.1\r\nHost: example.test\r\n\r\n")
            server.terminate()
            server.wait_exit(T(5))
            server.wait_stderr_closed(T(2))
        check("trace_off_writes_no_account", server.port and not accounts(server) and
              not any(line.startswith("-- ") for line in server.lines), server.stderr_text())
    finally:
        server.kill()


def colours_on_a_terminal(binary):
    """With stderr on a pty the account is coloured (ANSI SGR escapes)."""
    master, slave = pty.openpty()
    env = dict(os.environ, PORT="0", HOST=HOST, MW_TRACE="1", MW_THREADS="1")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(command_for(binary), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=slave)
    os.close(slave)
    text = b""

    def read_until(pattern, timeout):
        nonlocal text
        deadline = time.monotonic() + T(timeout)
        while not re.search(pattern, text) and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    text += os.read(master, 65536)
                except OSError:
                    break
        return re.search(pattern, text)

    try:
        m = read_until(rb"listening on http://127\.0\.0\.1:(\d+)", 10)
        if check("trace_pty_server_starts", m, text[-300:]):
            send_and_read(int(m.group(1)), b"GET /notes HTTP/1.1\r\nHost: example.test\r\n\r\n")
            read_until(rb"== [^\n]*\n", 5)
            account = text[text.find(b"-- ") - 8:]
            check("trace_colours_on_a_terminal", b"\x1b[1m" in account and b"\x1b[2m\\r\x1b[0m" in account
                  and b"\x1b[32m200 OK" in account, e2e.short(account[:300]))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(T(5))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(master)


def threads_never_interleave(binary):
    """Several clients at once on four workers: every account is whole and is its own."""
    clients, per_client = 8, 25
    server = Server(command_for(binary), {"MW_TRACE": "1", "MW_THREADS": "4"})
    errors = []

    def client(k):
        try:
            with Client(server.port) as c:
                for i in range(per_client):
                    c.send(b"GET /notes/c%d-%d HTTP/1.1\r\nHost: example.test\r\nX-Client: %d\r\n\r\n" % (k, i, k))
                    if c.read_response().status != 200:
                        errors.append("status")
        except Exception as e:
            errors.append(repr(e))

    try:
        if not check("trace_threads_server_starts", server.wait_ready(), server.stderr_text()):
            return
        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = wait_accounts(server, clients * per_client, 10)
        bad, ids = [], set()
        for a in got:
            m = re.match(r"== GET /notes/(c\d+-\d+) -> 200 OK, \d+us$", a[-1])
            ident = m and m.group(1)
            whole = (m and len(a) == 23 and "<<another account begins here>>" not in a
                     and a[2] == "  | GET /notes/%s HTTP/1.1\\r\\n" % ident
                     and a[4] == "  | X-Client: %s\\r\\n" % ident.split("-")[0][1:]
                     and a[13] == '  route         GET /notes/:id, with id = "%s"' % ident)
            if whole:
                ids.add(ident)
            else:
                bad.append(a)
        check("trace_threads_clients_served", not errors, errors[:3])
        check("trace_threads_every_account_whole_and_its_own",
              len(got) == clients * per_client and not bad and len(ids) == clients * per_client,
              "%d accounts, %d distinct, first bad: %s" % (len(got), len(ids), e2e.short(bad[:1], 600)))
        server.terminate()
        server.wait_exit(T(5))
    finally:
        server.kill()


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    binary = argv[1]
    for suite in (golden_suite, trace_off_writes_nothing, colours_on_a_terminal, threads_never_interleave):
        try:
            suite(binary)
        except Exception as e:
            check(suite.__name__, False, "%s: %s" % (type(e).__name__, e))
    return e2e.summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
