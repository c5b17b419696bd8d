#!/usr/bin/env python3
"""Load and slowness tests: hostile or sloppy clients must not stop the server from
serving everyone else.

usage: python3 tests/load.py TESTAPP_BINARY

Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last.
"""
import os
import random
import re
import resource
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import (HELLO, HOST, Client, Reader, Server, T, Tally, build_request, capture, check,  # noqa: E402
                 check_clean_exit, check_response, command_for, exchange, problems, run_each, short)

GET_ROOT = build_request("GET", "/")


def raise_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, n), hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def start(binary, env=None, fd_limit=None, fd_hard_limit=None):
    """A testapp with extra environment, optionally under an RLIMIT_NOFILE of its own
    (the hard limit too, unless given apart: mw_serve raises the soft one to it)."""
    def limit_fds():
        if fd_limit:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            new_hard = min(fd_hard_limit or fd_limit, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(fd_limit, new_hard), new_hard))
    server = Server(command_for(binary), env, preexec_fn=limit_fds)
    if not check("server_starts_" + "_".join(sorted(env or {})).lower(), server.wait_ready(),
                 server.stderr_text()):
        server.kill()
        return None
    return server


def stop(server, name):
    server.terminate()
    check_clean_exit(name, server)
    server.kill()


def cpu_seconds(pid):
    """User + system CPU time of a process, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fresh_request_latencies(port, count):
    """Seconds taken by `count` GET / on fresh connections, and any wrong answers."""
    times, bad = [], []
    for _ in range(count):
        t0 = time.monotonic()
        bad += problems(exchange(port, "GET", "/"), **HELLO)
        times.append(time.monotonic() - t0)
    return times, bad


def test_slowloris(binary):
    """500 connections each sending one header byte per second do not keep a fresh
    client from being served promptly (RFC 9112 leaves this to the server; an idle or
    slow connection holds no thread here)."""
    raise_fd_limit(2000)
    server = start(binary, {"MW_THREADS": "2"})
    if not server:
        return
    slow, stop_flag = [], threading.Event()
    try:
        for _ in range(500):
            s = socket.create_connection((HOST, server.port), timeout=T(5))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append(s)

        def dribble():
            while not stop_flag.wait(1.0):
                for s in slow:
                    s.send(b"a")
        t = threading.Thread(target=dribble, daemon=True)
        t.start()
        times, bad = [], []
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:  # for four seconds of dribbling
            more_times, more_bad = fresh_request_latencies(server.port, 10)
            times += more_times
            bad += more_bad
        stop_flag.set()
        t.join()
        check("slowloris_fresh_clients_answered_correctly", not bad and len(times) >= 40,
              "%d answers, problems %s" % (len(times), bad[:2]))
        check("slowloris_fresh_clients_answered_promptly", max(times) < T(0.5),
              "slowest %.3fs of %d" % (max(times), len(times)))
    finally:
        for s in slow:
            s.close()
        stop(server, "slowloris")


def open_idle_connections(port, n):
    """n connections, each having made one keep-alive request; stops at the first error."""
    conns = []
    for i in range(n):
        try:
            c = Client(port, timeout=10)
            conns.append(c)
            resp = c.request(GET_ROOT)
            if resp.status != 200:
                return conns, "connection %d got %d" % (i, resp.status)
        except OSError as e:
            return conns, "connection %d: %s" % (i, e)
    return conns, None


def test_ten_thousand_idle_connections(binary):
    """10,000 idle keep-alive connections open at once while another client keeps
    getting correct answers, and the idle ones stay usable."""
    n = 10000
    if raise_fd_limit(n + 200) < n + 100:
        check("ten_thousand_idle_fd_limit", False, "cannot raise RLIMIT_NOFILE to %d" % (n + 200))
        return
    server = start(binary, {"TESTAPP_MAX_CONNECTIONS": str(n + 50), "TESTAPP_KEEPALIVE_TIMEOUT_MS": "120000",
                            "TESTAPP_CONNECTIONS_PER_IP": "0"},
                   fd_limit=n + 200)
    if not server:
        return
    conns = []
    try:
        rss_before = rss_kib(server.proc.pid)
        conns, error = open_idle_connections(server.port, n)
        check("ten_thousand_idle_connections_opened", error is None and len(conns) == n,
              "%d open; %s" % (len(conns), error))
        rss_after = rss_kib(server.proc.pid)
        print("info: RSS %d KiB before, %d KiB with %d idle connections: %.2f KiB each"
              % (rss_before, rss_after, len(conns), (rss_after - rss_before) / max(len(conns), 1)))
        times, bad = fresh_request_latencies(server.port, 50)
        check("answers_correct_with_ten_thousand_idle", not bad, str(bad[:2]))
        check("answers_prompt_with_ten_thousand_idle", max(times) < T(0.5), "slowest %.3fs" % max(times))
        sample = conns[::500]
        bad = []
        for c in sample:
            bad += problems(capture(c.request, GET_ROOT), **HELLO)
        check("idle_connections_still_usable", not bad, str(bad[:2]))
    finally:
        for c in conns:
            c.close()
        stop(server, "ten_thousand_idle")


def test_out_of_descriptors(binary):
    """Under a low descriptor limit the server stops accepting without a busy loop,
    and serves again once descriptors are free."""
    server = start(binary, {"MW_THREADS": "2"}, fd_limit=40)
    if not server:
        return
    held = []
    try:
        for _ in range(80):  # more than the server can accept: the rest wait in the backlog
            s = socket.create_connection((HOST, server.port), timeout=T(5))
            s.sendall(GET_ROOT)
            held.append(s)
        paused = server.wait_for_line(re.compile(r"accept: .*; pausing"), T(5))
        check("out_of_descriptors_pauses_accepting", paused, "stderr: %s" % server.stderr_text())
        cpu0, t0 = cpu_seconds(server.proc.pid), time.monotonic()
        time.sleep(2.0)
        share = (cpu_seconds(server.proc.pid) - cpu0) / (time.monotonic() - t0)
        check("out_of_descriptors_no_busy_loop", share < 0.1, "server used %.0f%% of a core" % (share * 100))
        check("out_of_descriptors_reported_once",
              sum("pausing" in line for line in server.lines) == 1, "stderr: %s" % server.stderr_text())
        for s in held:
            s.close()
        held = []
        deadline, resp = time.monotonic() + T(5), None
        while time.monotonic() < deadline:  # the server frees descriptors as it reads the EOFs
            resp = capture(exchange, server.port, "GET", "/")
            if not isinstance(resp, Exception) and resp.status == 200:
                break
        check_response("serves_again_after_descriptors_free", resp, **HELLO)
        check("resumption_reported", server.wait_for_line(re.compile(r"accepting connections again"), T(2)),
              "stderr: %s" % server.stderr_text())
    finally:
        for s in held:
            s.close()
        stop(server, "out_of_descriptors")


def test_soft_descriptor_limit_raised(binary):
    """Started under a soft limit of 40 descriptors and a hard one of 2048, the server
    raises the soft one (as Go's runtime does) and holds 300 connections."""
    server = start(binary, {"MW_THREADS": "2"}, fd_limit=40, fd_hard_limit=2048)
    if not server:
        return
    held = []
    try:
        for _ in range(300):
            held.append(socket.create_connection((HOST, server.port), timeout=T(5)))
        for s in held:
            s.sendall(GET_ROOT)
        answered = sum(1 for s in held if s.recv(4096).startswith(b"HTTP/1.1 200"))
        check("soft_descriptor_limit_raised_to_hard", answered == len(held), "%d of %d answered" % (answered, 300))
        check("soft_descriptor_limit_no_pause", not any("pausing" in line for line in server.lines),
              server.stderr_text())
    finally:
        for s in held:
            s.close()
        server.kill()


def test_slow_reader(binary):
    """A client that never reads a large response cannot pin the only worker: others
    are served meanwhile, and the write deadline closes the stuck connection."""
    server = start(binary, {"MW_THREADS": "1", "TESTAPP_WRITE_TIMEOUT_MS": "1000"})
    if not server:
        return
    body = os.urandom(8 << 20)
    stuck = socket.socket()
    try:
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a tiny window: the server must wait
        stuck.settimeout(T(10))
        stuck.connect((HOST, server.port))
        stuck.sendall(build_request("POST", "/echo", body=body))
        times, bad = fresh_request_latencies(server.port, 20)
        check("others_served_while_a_client_does_not_read", not bad and max(times) < T(0.5),
              "slowest %.3fs, problems %s" % (max(times), bad[:2]))
        time.sleep(2.5)  # beyond the 1 s write deadline (plus the 0.25 s sweep): the state under test
        received = 0
        try:
            while (chunk := stuck.recv(1 << 20)):
                received += len(chunk)
        except ConnectionResetError:
            pass
        check("stuck_reader_closed_at_write_deadline", received < len(body),
              "received %d of %d bytes: the connection was not cut" % (received, len(body)))
    finally:
        stuck.close()
        stop(server, "slow_reader")


def zeros_array(size):
    """'[0,0,...,0]' padded with spaces to exactly `size` bytes: a JSON value per two bytes."""
    body = b"[" + b",".join([b"0"] * ((size - 1) // 2)) + b"]"
    return body + b" " * (size - len(body))


def rss_settled(server, limit_kib, timeout):
    """The server's RSS once at or below limit_kib, or its last value after timeout: a
    worker frees a large body's memory after sending the answer, and a connection's read
    buffer when it sees the client close."""
    deadline = time.monotonic() + timeout
    while True:
        rss = rss_kib(server.proc.pid)
        if rss <= limit_kib or time.monotonic() > deadline:
            return rss
        time.sleep(0.05)


# What glibc may keep of freed heap memory after an 8 MiB body: its mmap threshold
# adapts to the large blocks freed, so later large blocks come from the heap and stay
# resident once free (about 8 MB measured). The reader that kept ~50 bytes per body
# byte in 4 KiB arena blocks left over 400 MB after these bodies.
JSON_RSS_MARGIN_KIB = 24 << 10


def test_json_bodies_give_memory_back(binary):
    """1 MiB and 8 MiB JSON bodies of the worst kind ([0,0,...]) read with mw_req_json:
    answered, and afterwards the server's RSS is back near where it was."""
    server = start(binary, {"MW_THREADS": "1"})
    if not server:
        return
    try:
        check_response("json_memory_warm_up", capture(exchange, server.port, "GET", "/"), **HELLO)
        baseline = rss_kib(server.proc.pid)
        for mib in (1, 8):
            size = mib << 20
            resp = capture(exchange, server.port, "POST", "/json-size", {"Content-Type": "application/json"},
                           zeros_array(size))
            check_response("json_body_of_%d_mib_parsed" % mib, resp, status=200,
                           json_body={"kind": 5, "len": (size - 1) // 2})
        after = rss_settled(server, baseline + JSON_RSS_MARGIN_KIB, T(5))
        print("info: RSS %d KiB before, %d KiB after 1 MiB and 8 MiB JSON bodies" % (baseline, after))
        check("json_body_memory_given_back", after - baseline <= JSON_RSS_MARGIN_KIB,
              "RSS %d KiB before, %d KiB after: %d KiB kept" % (baseline, after, after - baseline))
    finally:
        stop(server, "json_memory")


# Slow bodies (testapp with small limits): a body must average MW_LIMIT_BODY_MIN_RATE
# once MW_LIMIT_BODY_TIMEOUT_MS has passed, and one address holds at most
# MW_LIMIT_CONNECTIONS_PER_IP connections.
SLOW_BODY_GRACE, SLOW_BODY_RATE, PER_IP, MAX_CONNECTIONS = 1.0, 500, 10, 40
ATTACKER = "127.0.0.2"  # still loopback; the server and the legitimate client use 127.0.0.1
SWEEP_SLACK = 0.5  # the server checks deadlines four times a second


def address_usable(address):
    try:
        with socket.socket() as s:
            s.bind((address, 0))
        return True
    except OSError:
        return False


def attack_connection(port):
    """A connection from ATTACKER announcing a 1,000,000-byte body and sending its first
    byte; returns (socket, when that byte went)."""
    s = socket.socket()
    try:
        s.bind((ATTACKER, 0))
        s.settimeout(T(5))
        s.connect((HOST, port))
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nx")
    except BaseException:
        s.close()
        raise
    return s, time.monotonic()


def answers_within(socks, want, timeout):
    """Waits until `want` of the sockets have something to read, or timeout; returns
    {socket: (response or error, seconds after it became readable was seen, closed cleanly)}."""
    answered, deadline = {}, time.monotonic() + timeout
    while len(answered) < want and time.monotonic() < deadline:
        ready, _, _ = select.select([s for s in socks if s not in answered], [], [], deadline - time.monotonic())
        for s in ready:
            at = time.monotonic()
            reader = Reader(s.recv)
            resp = capture(reader.read_response)
            try:
                closed = not isinstance(resp, Exception) and not reader.buf and s.recv(1) == b""
            except OSError:
                closed = False
            answered[s] = (resp, at, closed)
    return answered


def trickle(socks, lock, stop_flag):
    """One body byte on each connection still in `socks` every 0.3 s: progress well
    within the body timeout, at a few bytes a second."""
    while not stop_flag.wait(0.3):
        with lock:
            for s in socks:
                try:
                    s.send(b"x")
                except OSError:
                    pass


def upload_at_1kb_per_second(port, size, result):
    """POST /echo of `size` bytes sent 100 bytes every 0.1 s; the answer goes in result."""
    body = bytes(random.Random(3).randrange(32, 127) for _ in range(size))
    try:
        with Client(port, timeout=10) as c:
            c.send(build_request("POST", "/echo", {"Content-Length": str(size)}))
            for i in range(0, size, 100):
                time.sleep(0.1)  # a slow uplink, the behaviour under test
                c.send(body[i:i + 100])
            result["resp"] = c.read_response()
    except OSError as e:
        result["resp"] = e
    result["body"] = body


def test_slow_bodies_cannot_lock_everyone_out(binary):
    """50 connections from one address announce a large body and trickle it a byte at
    a time: beyond MW_LIMIT_CONNECTIONS_PER_IP they are refused at once (429), the ones
    held get 408 once the body falls below MW_LIMIT_BODY_MIN_RATE after the grace
    period, and meanwhile a client from another address is served, and a body sent at
    1 KB/s (a slow uplink) completes."""
    if not address_usable(ATTACKER):
        print("SKIP slow_bodies: cannot bind %s" % ATTACKER, flush=True)
        return
    server = start(binary, {"MW_THREADS": "2", "TESTAPP_BODY_TIMEOUT_MS": str(int(SLOW_BODY_GRACE * 1000)),
                            "TESTAPP_BODY_MIN_RATE": str(SLOW_BODY_RATE), "TESTAPP_CONNECTIONS_PER_IP": str(PER_IP),
                            "TESTAPP_MAX_CONNECTIONS": str(MAX_CONNECTIONS)})
    if not server:
        return
    attack, lock, stop_flag, upload = [], threading.Lock(), threading.Event(), {}
    try:
        for _ in range(50):
            attack.append(attack_connection(server.port))
        socks = [s for s, _ in attack]
        refused = answers_within(socks, len(socks) - PER_IP, T(0.5))
        held = [s for s in socks if s not in refused]
        not_429 = [short(r) if isinstance(r, Exception) else r.summary()
                   for r, _, _ in refused.values() if isinstance(r, Exception) or r.status != 429]
        check("connections_beyond_per_ip_limit_refused_at_once_with_429",
              len(refused) == len(socks) - PER_IP and not not_429,
              "%d of %d answered at once; not 429: %s" % (len(refused), len(socks), not_429[:2]))
        check("refused_connections_closed_cleanly", all(closed for _, _, closed in refused.values()),
              "%d of %d not closed cleanly" % (sum(not c for _, _, c in refused.values()), len(refused)))
        with lock:
            trickling = list(held)
        threading.Thread(target=trickle, args=(trickling, lock, stop_flag), daemon=True).start()
        uploader = threading.Thread(target=upload_at_1kb_per_second, args=(server.port, 3000, upload), daemon=True)
        uploader.start()
        t0 = time.monotonic()
        other = capture(exchange, server.port, "GET", "/")
        elapsed = time.monotonic() - t0
        wrong = [short(other)] if isinstance(other, Exception) else problems(other, **HELLO)
        check("other_address_served_within_2s_during_slow_body_attack", not wrong and elapsed < T(2),
              "after %.2fs: %s" % (elapsed, "; ".join(wrong) or "served"))
        timed_out = answers_within(held, len(held), SLOW_BODY_GRACE + T(SWEEP_SLACK) + T(2))
        with lock:
            trickling.clear()
        first_byte = dict(attack)
        late = ["%s after %.2fs" % (short(r) if isinstance(r, Exception) else r.status, at - first_byte[s])
                for s, (r, at, _) in timed_out.items()
                if isinstance(r, Exception) or r.status != 408
                or not SLOW_BODY_GRACE * 0.9 <= at - first_byte[s] < SLOW_BODY_GRACE + T(SWEEP_SLACK) + T(1)]
        check("trickled_bodies_get_408_after_the_grace_period",
              len(held) == PER_IP and len(timed_out) == len(held) and not late,
              "%d held (limit %d), %d answered; wrong or off time: %s" % (len(held), PER_IP, len(timed_out), late[:3]))
        check("trickled_bodies_closed_after_408", timed_out and all(closed for _, _, closed in timed_out.values()),
              "%d answered, %d of them not closed cleanly"
              % (len(timed_out), sum(not c for _, _, c in timed_out.values())))
        uploader.join(T(10))
        check_response("body_at_1kb_per_second_completes", upload.get("resp", TimeoutError("no answer")), status=200,
                       body=upload.get("body"))
    finally:
        stop_flag.set()
        for s, _ in attack:
            s.close()
        stop(server, "slow_bodies")


def main(argv):
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-3], file=sys.stderr)
        return 2
    run_each((test_slowloris, test_ten_thousand_idle_connections, test_out_of_descriptors,
              test_soft_descriptor_limit_raised, test_slow_reader,
              test_json_bodies_give_memory_back, test_slow_bodies_cannot_lock_everyone_out), argv[0])
    print("%d passed, %d failed" % (Tally.passed, Tally.failed), flush=True)
    return 0 if Tally.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
