#!/usr/bin/env python3
"""A restart under load that fails no request: a new process takes over the listening
socket while the old one drains.

Usage:  python3 tests/restart_zero.py DEPLOYAPP_BINARY [--seconds S]

This script plays the supervisor: it holds the listening socket (127.0.0.1, a free
port) and hands it to instance A (MW_LISTEN_FD, or LISTEN_FDS as systemd does). A load
generator runs against the port; instance B is started on the same socket; A gets
SIGTERM, says not ready, stops accepting after MW_DRAIN_DELAY_MS, finishes what it holds
and exits 0. The load generator must report no socket error and no status >= 400. Run
with keep-alive connections and with "Connection: close". The load generator is wrk
(apt-get install wrk); without it, a small Python one (threads on raw sockets).

Output: one line per check, "PASS name" or "FAIL name: detail", a line with the
measured numbers per run, then "N passed, N failed".
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from e2e import HOST, Reader, Server, T, build_request, check, command_for, summary  # noqa: E402

DRAIN_DELAY_MS = 300
# microweb's deadlines read the coarse clock, up to a tick (4 ms at HZ=250, 10 ms at
# HZ=100) behind the precise one this test measures on: a delay can look that much short
COARSE_TICK_S = 0.010
LAUNCH = """
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = "1"
os.execvpe(sys.argv[2], sys.argv[2:], os.environ)
"""


class HandedServer(Server):
    """A server process given the listening socket: by MW_LISTEN_FD, or at descriptor 3
    with LISTEN_PID set to its own pid (what systemd does), through a python3 wrapper."""

    def __init__(self, binary, sock, how, extra_env=None):  # noqa: super().__init__ starts a process of its own
        env = dict(os.environ, MW_THREADS="2", MW_DRAIN_DELAY_MS=str(DRAIN_DELAY_MS))
        env.pop("PORT", None)
        env.update(extra_env or {})
        command = command_for(binary)
        if how == "systemd":
            command = [sys.executable, "-c", LAUNCH, str(sock.fileno())] + command
        else:
            env["MW_LISTEN_FD"] = str(sock.fileno())
        self.proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, pass_fds=(sock.fileno(),))
        self.lines, self.eof = [], False
        self.cond = threading.Condition()
        self.port = self.threads = None
        threading.Thread(target=self._drain, daemon=True).start()


def listening_socket():
    sock = socket.socket()
    sock.bind((HOST, 0))
    sock.listen(4096)
    return sock


# ---------------------------------------------------------------------------
# load generators: each returns {"requests": n, "errors": n, "bad_status": n, "text": ...}
# ---------------------------------------------------------------------------
def wrk_numbers(text):
    requests = re.search(r"(\d+) requests in", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"requests": int(requests.group(1)) if requests else 0,
            "errors": sum(int(g) for g in errors.groups()) if errors else 0,
            "bad_status": int(bad.group(1)) if bad else 0,
            "text": " ".join(text.split())}


class Wrk:
    def __init__(self, port, seconds, keep_alive):
        command = ["wrk", "-t2", "-c32", "-d%ds" % seconds, "--timeout", "5s", "http://%s:%d/" % (HOST, port)]
        if not keep_alive:
            command[1:1] = ["-H", "Connection: close"]
        self.seconds = seconds
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def __call__(self):
        return wrk_numbers(self.proc.communicate(timeout=self.seconds + 30)[0])

    def pause(self, seconds):
        """The load generator stopped (SIGSTOP) for a while: a client held up with its
        keep-alive connections idle, longer than the drain delay."""
        def stall():
            self.proc.send_signal(signal.SIGSTOP)
            time.sleep(seconds)
            self.proc.send_signal(signal.SIGCONT)
        threading.Thread(target=stall, daemon=True).start()


def start_python_load(port, seconds, keep_alive):
    """16 threads, each on one connection at a time: a request, its response, again."""
    counts = {"requests": 0, "errors": 0, "bad_status": 0, "text": "python load generator"}
    lock = threading.Lock()
    end = time.monotonic() + seconds
    request = build_request("GET", "/", None if keep_alive else {"Connection": "close"})

    def client():
        sock = reader = None
        while time.monotonic() < end:
            try:
                if sock is None:
                    sock = socket.create_connection((HOST, port), timeout=5)
                    reader = Reader(sock.recv)
                sock.sendall(request)
                resp = reader.read_response()
                with lock:
                    counts["requests"] += 1
                    counts["bad_status"] += resp.status >= 400
                if (resp.header("Connection") or "").lower() == "close":
                    sock.close()
                    sock = None
            except (OSError, ValueError) as e:
                with lock:
                    counts["errors"] += 1
                    counts["text"] = "python load generator, last error: %s" % e
                if sock:
                    sock.close()
                sock = None
        if sock:
            sock.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(16)]
    for t in threads:
        t.start()

    def result():
        for t in threads:
            t.join(seconds + 30)
        return counts

    return result


def restart_under_load(binary, name, keep_alive, how_a, how_b, seconds, stall=False):
    sock = listening_socket()
    port = sock.getsockname()[1]
    a = HandedServer(binary, sock, how_a)
    b = None
    try:
        if not check(name + "_a_serves_on_the_socket_handed_over", a.wait_ready() and a.port == port,
                     "stderr: %s" % a.stderr_text()):
            return
        load = (Wrk if shutil.which("wrk") else start_python_load)(port, seconds, keep_alive)
        time.sleep(seconds / 4)  # the load runs on A alone for a while
        b = HandedServer(binary, sock, how_b)
        if not check(name + "_b_serves_on_the_same_socket", b.wait_ready() and b.port == port,
                     "stderr: %s" % b.stderr_text()):
            return
        if stall:
            load.pause(3 * DRAIN_DELAY_MS / 1000)
            time.sleep(0.05)
        stop_sent = time.monotonic()
        a.terminate()
        status = a.wait_exit(T(10))
        took = time.monotonic() - stop_sent
        check(name + "_a_exits_0_after_sigterm_and_its_drain_delay",
              status == 0 and took >= DRAIN_DELAY_MS / 1000 * (2 if stall else 1) - COARSE_TICK_S,  # held up: A waits
              "exit status %s after %.2fs; stderr: %s" % (status, took, a.stderr_text()))
        numbers = load()
        print("measured %s: %d requests, %d socket errors, %d status >= 400, A stopped in %.2fs (%s)" %
              (name, numbers["requests"], numbers["errors"], numbers["bad_status"], took, numbers["text"][:300]),
              flush=True)
        check(name + "_load_got_answers", numbers["requests"] >= 100, numbers["text"])
        check(name + "_no_request_failed", numbers["errors"] == 0 and numbers["bad_status"] == 0,
              "%d socket errors, %d status >= 400: %s" % (numbers["errors"], numbers["bad_status"], numbers["text"]))
        b.terminate()
        check(name + "_b_exits_0", b.wait_exit(T(10)) == 0, "stderr: %s" % b.stderr_text())
    finally:
        a.kill()
        if b:
            b.kill()
        sock.close()


def main(argv):
    if not argv:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    seconds = int(argv[argv.index("--seconds") + 1]) if "--seconds" in argv else 3
    if not shutil.which("wrk"):
        print("wrk not found (apt-get install wrk): the Python load generator runs instead", flush=True)
    restart_under_load(argv[0], "keep_alive", True, "fd", "fd", seconds)
    restart_under_load(argv[0], "connection_close", False, "systemd", "fd", seconds)
    if shutil.which("wrk"):  # idle keep-alive connections at the stop are waited for, not closed under a request
        restart_under_load(argv[0], "keep_alive_client_held_up_past_the_drain_delay", True, "fd", "fd", seconds,
                           stall=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
