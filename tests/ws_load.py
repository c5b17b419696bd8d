#!/usr/bin/env python3
"""WebSockets at scale: a server with two workers holds 10,000 idle WebSockets, and
meanwhile answers HTTP requests and a WebSocket echo on a new connection promptly; a
broadcast reaches every one of the 10,000; each idle WebSocket costs the server less
than IDLE_RSS_BOUND bytes of memory.

usage: python3 tests/ws_load.py WS_LOADAPP_BINARY

WS_LOADAPP_BINARY is tests/ws_loadapp.c built. Prints "PASS name" / "FAIL name: detail"
per check and "N passed, N failed" last.
"""
import json
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import HOST, T, Tally, build_request, capture, check, exchange, problems, short  # noqa: E402
from load import fresh_request_latencies, raise_fd_limit, rss_kib, start, stop  # noqa: E402

IDLE = 10_000
BATCH = 500  # handshakes under way at once: well inside the listen backlog
# RFC 6455 §1.3's sample key and the Sec-WebSocket-Accept it must get
KEY, ACCEPT = "dGhlIHNhbXBsZSBub25jZQ==", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
# The server's memory per idle WebSocket (VmRSS with them, minus before, over their
# number): 920 B was measured, the same in every run (this test prints it on an "info:"
# line; bench/ws.py measures it against Node.js and Kore). The bound leaves room for the
# allocator's and the pages' granularity, not for a 4 KiB buffer kept per idle connection.
IDLE_RSS_BOUND = 2048


def upgrade_request(path):
    return build_request("GET", path, {"Upgrade": "websocket", "Connection": "Upgrade",
                                       "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13"})


def handshake_problem(head):
    """None when head is a 101 with the right Sec-WebSocket-Accept (RFC 6455 §4.2.2)."""
    if not head.startswith(b"HTTP/1.1 101 "):
        return short(head.split(b"\r\n", 1)[0])
    accept = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
              if line.lower().startswith(b"sec-websocket-accept:")]
    return None if accept == [ACCEPT] else "Sec-WebSocket-Accept %s" % short(accept)


def open_batch(port, path, n, ep):
    """n connections, each sending the upgrade request: {fd: [socket, bytes received]}."""
    pending, request = {}, upgrade_request(path)
    for _ in range(n):
        s = socket.create_connection((HOST, port), timeout=T(5))
        pending[s.fileno()] = [s, b""]
        s.sendall(request)
        s.setblocking(False)
        ep.register(s.fileno(), select.EPOLLIN)
    return pending


def open_websockets(port, path, n):
    """n open WebSockets, BATCH handshakes at a time, each answer awaited by epoll (a
    readiness check, no sleep). Returns (sockets open, [problems])."""
    opened, failures = [], []
    with select.epoll() as ep:
        for first in range(0, n, BATCH):
            try:
                pending = open_batch(port, path, min(BATCH, n - first), ep)
            except OSError as e:
                failures.append("connection %d: %s" % (first + len(opened), e))
                break
            deadline = time.monotonic() + T(10)
            while pending and time.monotonic() < deadline:
                for fd, _ in ep.poll(max(0.0, deadline - time.monotonic())):
                    entry = pending[fd]
                    data = entry[0].recv(4096)
                    entry[1] += data
                    if data and b"\r\n\r\n" not in entry[1]:
                        continue
                    ep.unregister(fd)
                    del pending[fd]
                    problem = handshake_problem(entry[1]) if data else "closed before a full answer"
                    if problem:
                        failures.append(problem)
                        entry[0].close()
                    else:
                        opened.append(entry[0])
            for s, _ in pending.values():
                failures.append("no answer in %.0f s" % T(10))
                s.close()
            if failures:
                break
    return opened, failures


def masked_frame(opcode, payload):
    """A client frame (RFC 6455 §5.2, masked as §5.3 requires), payload under 126 bytes."""
    mask = os.urandom(4)
    return (bytes([0x80 | opcode, 0x80 | len(payload)]) + mask
            + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def read_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def echo_on_new_websocket(port, message):
    """(seconds, problem or None): a WebSocket opened to /ws/echo, one text message
    sent and its echo read, on a fresh connection."""
    t0 = time.monotonic()
    with socket.create_connection((HOST, port), timeout=T(5)) as s:
        s.sendall(upgrade_request("/ws/echo"))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(1)  # byte by byte: nothing after the head is taken
            if not chunk:
                return time.monotonic() - t0, "closed during the handshake"
            head += chunk
        problem = handshake_problem(head)
        if problem:
            return time.monotonic() - t0, problem
        s.sendall(masked_frame(1, message))
        frame = read_exactly(s, 2 + len(message))
        seconds = time.monotonic() - t0
        want = bytes([0x81, len(message)]) + message
        return seconds, None if frame == want else "echo %s, not %s" % (short(frame), short(want))


def broadcast(port, text):
    """POST /broadcast: the members mw_ws_broadcast counted, or a problem string."""
    resp = capture(exchange, port, "POST", "/broadcast", {"Content-Type": "text/plain"}, text)
    bad = problems(resp, status=200)
    return json.loads(resp.body)["members"] if not bad else "; ".join(bad)


def receive_everywhere(socks, want, timeout):
    """How many sockets received exactly the bytes `want` (and nothing else) in time."""
    got, received = {s.fileno(): b"" for s in socks}, 0
    with select.epoll() as ep:
        for s in socks:
            ep.register(s.fileno(), select.EPOLLIN)
        deadline = time.monotonic() + timeout
        by_fd = {s.fileno(): s for s in socks}
        while received < len(socks) and time.monotonic() < deadline:
            for fd, _ in ep.poll(max(0.0, deadline - time.monotonic())):
                data = by_fd[fd].recv(4096)
                got[fd] += data
                if not data or len(got[fd]) >= len(want):
                    ep.unregister(fd)
                    received += got[fd] == want
    return received


def test_ten_thousand_idle_websockets(binary):
    """10,000 idle WebSockets on two workers: fresh HTTP requests and a WebSocket echo on
    a new connection are answered promptly, a broadcast reaches all 10,000, and each
    idle WebSocket costs the server under IDLE_RSS_BOUND bytes."""
    if raise_fd_limit(IDLE + 300) < IDLE + 200:
        check("ws_ten_thousand_fd_limit", False, "cannot raise RLIMIT_NOFILE to %d" % (IDLE + 300))
        return
    server = start(binary, {"MW_THREADS": "2"})
    if not server:
        return
    socks = []
    try:
        seconds, problem = echo_on_new_websocket(server.port, b"warm-up")  # the first WebSocket's setup
        check("ws_echo_before_the_idle_connections", problem is None, problem)
        rss_before = rss_kib(server.proc.pid)
        t0 = time.monotonic()
        socks, failures = open_websockets(server.port, "/ws/all", IDLE)
        opening = time.monotonic() - t0
        check("ws_ten_thousand_idle_websockets_opened", len(socks) == IDLE and not failures,
              "%d open; %s" % (len(socks), failures[:3]))
        per_connection = (rss_kib(server.proc.pid) - rss_before) * 1024 / max(len(socks), 1)
        print("info: %d WebSockets opened in %.2f s; RSS %d KiB before, %.0f B per idle WebSocket"
              % (len(socks), opening, rss_before, per_connection), flush=True)
        check("ws_idle_websocket_memory_under_%d_bytes" % IDLE_RSS_BOUND, per_connection < IDLE_RSS_BOUND,
              "%.0f B per idle WebSocket" % per_connection)

        times, bad = fresh_request_latencies(server.port, 50)
        check("http_answered_correctly_with_ten_thousand_websockets", not bad, str(bad[:2]))
        check("http_answered_promptly_with_ten_thousand_websockets", max(times) < T(0.5),
              "slowest %.3fs of %d" % (max(times), len(times)))
        echoes = [echo_on_new_websocket(server.port, b"echo %d" % i) for i in range(20)]
        wrong = [p for _, p in echoes if p]
        check("ws_echo_on_new_connection_with_ten_thousand_websockets", not wrong, wrong[:2])
        slowest = max(s for s, _ in echoes)
        check("ws_echo_on_new_connection_prompt_with_ten_thousand_websockets", slowest < T(0.5),
              "slowest handshake and echo %.3fs of %d" % (slowest, len(echoes)))

        text = b"to all ten thousand"
        t0 = time.monotonic()
        members = broadcast(server.port, text)
        check("ws_broadcast_counts_ten_thousand_members", members == IDLE, "members: %s" % short(members))
        received = receive_everywhere(socks, bytes([0x81, len(text)]) + text, T(10))
        print("info: broadcast to %d WebSockets received by all in %.2f s"
              % (received, time.monotonic() - t0), flush=True)
        check("ws_broadcast_reaches_all_ten_thousand", received == IDLE, "%d of %d received it" % (received, IDLE))
    finally:
        for s in socks:
            s.close()
        stop(server, "ws_ten_thousand")


def main(argv):
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-4], file=sys.stderr)
        return 2
    try:
        test_ten_thousand_idle_websockets(argv[0])
    except Exception as e:
        check("ten_thousand_idle_websockets", False, "%s: %s" % (type(e).__name__, e))
    print("%d passed, %d failed" % (Tally.passed, Tally.failed), flush=True)
    return 0 if Tally.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
