#!/usr/bin/env python3
"""Several processes on one port, a listening socket handed over, liveness and
readiness, the drain delay: tests/deployapp.c over real sockets.

Usage:  python3 tests/deploy.py DEPLOYAPP_BINARY

Output: one line per check, "PASS name" or "FAIL name: detail", then "N passed, N failed".
E2E_TIMEOUT_SCALE and E2E_WRAPPER work as in tests/e2e.py (the helpers come from there).
"""
import json
import os
import re
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from e2e import (HOST, Client, Server, T, build_request, check, check_clean_exit, command_for,  # noqa: E402
                 exchange, run_each, summary)
from restart_zero import HandedServer, listening_socket  # noqa: E402

BINARY = None
IN_USE_RE = re.compile(r"microweb: cannot listen on 127\.0\.0\.1:\d+: Address already in use "
                       r"\(to share the port, set MW_REUSEPORT=1 in every process\)$")


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def on_port(port, extra_env=None):
    env = {"PORT": str(port), "MW_THREADS": "2"}
    env.update(extra_env or {})
    return Server(command_for(BINARY), env)


def handed(sock, how, extra_env=None):
    env = {"MW_DRAIN_DELAY_MS": "0"}
    env.update(extra_env or {})
    return HandedServer(BINARY, sock, how, env)


def wait_for(predicate, timeout):
    end = time.monotonic() + T(timeout)
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def stop(server, prefix):
    server.terminate()
    check_clean_exit(prefix, server)


def refused_at_start(name, server, line_re):
    """The process exits 1 before serving, with one clear line."""
    try:
        status = server.wait_exit(T(10))
        server.wait_stderr_closed(T(5))
        with server.cond:
            lines = list(server.lines)
        check(name, status == 1 and len(lines) == 1 and line_re.search(lines[0]),
              "exit status %s, stderr lines %s" % (status, lines))
    finally:
        server.kill()


# ---------------------------------------------------------------------------
# SO_REUSEPORT
# ---------------------------------------------------------------------------
def test_reuseport_two_processes_share_a_port(_):
    port = free_port()
    a = on_port(port, {"MW_REUSEPORT": "1"})
    b = on_port(port, {"MW_REUSEPORT": "1"})
    try:
        ready = a.wait_ready() and b.wait_ready()
        if not check("reuseport_both_processes_listen_on_one_port", ready and a.port == b.port == port,
                     "A: %s / B: %s" % (a.stderr_text(), b.stderr_text())):
            return
        check("reuseport_listening_line_says_so", "with SO_REUSEPORT" in a.stderr_text(), a.stderr_text())
        pids = {exchange(port, "GET", "/pid").body for _ in range(40)}
        want = {str(a.proc.pid).encode(), str(b.proc.pid).encode()}
        check("reuseport_connections_reach_both_processes", pids == want, "pids %s, want %s" % (pids, want))
        refused_at_start("without_reuseport_a_third_process_fails_saying_how_to_share", on_port(port), IN_USE_RE)
        stop(a, "reuseport_first")
        check("reuseport_other_process_serves_after_one_stops", exchange(port, "GET", "/pid").body ==
              str(b.proc.pid).encode())
        stop(b, "reuseport_second")
    finally:
        a.kill()
        b.kill()


def test_without_reuseport_second_process_fails(_):
    port = free_port()
    a = on_port(port)
    try:
        if check("plain_first_process_listens", a.wait_ready(), a.stderr_text()):
            refused_at_start("plain_second_process_fails_with_one_clear_line", on_port(port), IN_USE_RE)
            check("plain_first_process_still_serves", exchange(port, "GET", "/").status == 200)
            stop(a, "plain_first")
    finally:
        a.kill()


# ---------------------------------------------------------------------------
# a listening socket handed over
# ---------------------------------------------------------------------------
def fd_flags(pid, fd):
    """The descriptor's open flags in that process (/proc/PID/fdinfo), or None."""
    try:
        with open("/proc/%d/fdinfo/%d" % (pid, fd)) as f:
            return int(re.search(r"flags:\s*([0-7]+)", f.read()).group(1), 8)
    except (OSError, AttributeError):
        return None


def test_socket_activation_serves_on_descriptor_3(_):
    sock = listening_socket()
    server = handed(sock, "systemd")
    try:
        ok = server.wait_ready()
        if not check("systemd_socket_served_without_binding", ok and server.port == sock.getsockname()[1],
                     server.stderr_text()):
            return
        check("systemd_listening_line_names_where_it_came_from",
              "on a socket handed over from systemd (LISTEN_FDS)" in server.stderr_text(), server.stderr_text())
        check("systemd_answers", exchange(server.port, "GET", "/").body == b"ok")
        for name in ("LISTEN_PID", "LISTEN_FDS"):
            check("systemd_%s_removed_from_the_environment" % name.lower(),
                  exchange(server.port, "GET", "/env/" + name).status == 404)
        flags = fd_flags(server.proc.pid, 3)
        check("systemd_socket_made_non_blocking_and_close_on_exec",
              flags is not None and flags & os.O_NONBLOCK and flags & 0o2000000, "flags %s" % flags)
        stop(server, "systemd")
        check("systemd_stop_leaves_the_socket_listening", sock_still_listening(sock))
    finally:
        server.kill()
        sock.close()


def sock_still_listening(sock):
    """The socket still takes connections (into its queue): the stop did not shut it."""
    try:
        with socket.create_connection(sock.getsockname(), timeout=T(2)):
            return True
    except OSError:
        return False


def test_socket_activation_for_another_process_is_ignored(_):
    sock = listening_socket()
    server = Server(command_for(BINARY), {"LISTEN_PID": "1", "LISTEN_FDS": "1", "MW_THREADS": "2"})
    try:
        ok = server.wait_ready()
        check("systemd_variables_of_another_process_ignored", ok and server.port != sock.getsockname()[1],
              server.stderr_text())
        if ok:
            check("systemd_variables_of_another_process_left_alone",
                  exchange(server.port, "GET", "/env/LISTEN_PID").body == b"1")
            stop(server, "systemd_ignored")
    finally:
        server.kill()
        sock.close()


def test_inherited_descriptor_serves(_):
    sock = listening_socket()
    server = handed(sock, "fd")
    try:
        ok = server.wait_ready()
        if not check("listen_fd_socket_served_without_binding", ok and server.port == sock.getsockname()[1],
                     server.stderr_text()):
            return
        check("listen_fd_listening_line_names_where_it_came_from",
              "on a socket handed over from MW_LISTEN_FD" in server.stderr_text(), server.stderr_text())
        check("listen_fd_removed_from_the_environment", exchange(server.port, "GET", "/env/MW_LISTEN_FD").status == 404)
        flags = fd_flags(server.proc.pid, sock.fileno())
        check("listen_fd_made_non_blocking_and_close_on_exec",
              flags is not None and flags & os.O_NONBLOCK and flags & 0o2000000, "flags %s" % flags)
        stop(server, "listen_fd")
    finally:
        server.kill()
        sock.close()


def test_queue_of_a_shared_socket_survives_a_stop(_):
    """A connection waiting in the socket's queue while no process serves is answered
    by the next process: the queue belongs to the socket, which the stop left alone."""
    sock = listening_socket()
    first = handed(sock, "fd")
    second = None
    try:
        if not check("shared_first_serves", first.wait_ready(), first.stderr_text()):
            return
        stop(first, "shared_first")
        with Client(sock.getsockname()[1], timeout=10) as c:
            c.send(build_request("GET", "/pid"))
            second = handed(sock, "fd")
            resp = c.read_response()
            check("shared_connection_queued_between_processes_answered_by_the_next",
                  resp.status == 200 and resp.body == str(second.proc.pid).encode(), resp.summary())
        stop(second, "shared_second")
    finally:
        first.kill()
        if second:
            second.kill()
        sock.close()


def refused_descriptor(name, fd_object, how, line_re):
    refused_at_start(name, handed(fd_object, how), line_re)


class Descriptor:
    """A plain descriptor, handed over as a socket would be (HandedServer asks its fileno)."""

    def __init__(self, fd):
        self.fd = fd

    def fileno(self):
        return self.fd


def test_descriptor_that_is_not_a_listening_socket_refused(_):
    r, w = os.pipe()
    try:
        refused_descriptor("listen_fd_pipe_refused_not_a_socket", Descriptor(r), "fd",
                           re.compile(r"^microweb: cannot serve on descriptor %d from MW_LISTEN_FD: not a socket$" % r))
        refused_descriptor("systemd_descriptor_3_pipe_refused_not_a_socket", Descriptor(r), "systemd",
                           re.compile(r"^microweb: cannot serve on descriptor 3 from systemd \(LISTEN_FDS\): "
                                      r"not a socket$"))
    finally:
        os.close(r)
        os.close(w)
    bound = socket.socket()
    bound.bind((HOST, 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for what, s in (("bound_tcp_socket_not_listening", bound), ("udp_socket", udp)):
            refused_descriptor("listen_fd_%s_refused" % what, s, "fd",
                               re.compile(r"^microweb: cannot serve on descriptor \d+ from MW_LISTEN_FD: "
                                          r"not a listening stream socket$"))
    finally:
        bound.close()
        udp.close()
    refused_at_start("listen_fd_malformed_refused", Server(command_for(BINARY), {"MW_LISTEN_FD": "five"}),
                     re.compile(r'^microweb: cannot take over a listening socket: MW_LISTEN_FD must be a '
                                r'descriptor number, not "five"$'))


# ---------------------------------------------------------------------------
# liveness, readiness and the drain delay
# ---------------------------------------------------------------------------
def test_liveness_and_readiness(_):
    server = on_port(0)
    try:
        if not check("health_server_starts", server.wait_ready(), server.stderr_text()):
            return
        for path, doc in (("/livez", {"status": "alive"}), ("/readyz", {"status": "ready"})):
            resp = exchange(server.port, "GET", path)
            check("health_%s_200" % path[1:], resp.status == 200 and json.loads(resp.body) == doc and
                  resp.header("Cache-Control") == "no-store", resp.summary())
        stop(server, "health")
    finally:
        server.kill()


def test_sigterm_turns_readiness_503_then_drains_after_the_delay(_):
    delay = 1.0
    server = on_port(0, {"MW_DRAIN_DELAY_MS": str(int(delay * 1000))})
    try:
        if not check("drain_server_starts", server.wait_ready(), server.stderr_text()):
            return
        port = server.port
        slow = Client(port, timeout=10)
        slow.send(build_request("GET", "/slow?ms=%d" % int(delay * 1500)))  # in flight across the whole drain
        time.sleep(0.1)
        sent = time.monotonic()
        server.terminate()
        not_ready = wait_for(lambda: exchange(port, "GET", "/readyz").status == 503, 0.5)
        resp = exchange(port, "GET", "/readyz")
        check("drain_readyz_503_at_once_after_sigterm", not_ready and json.loads(resp.body).get("detail") == "stopping"
              and resp.header("Retry-After") == "1", resp.summary())
        check("drain_livez_still_200", exchange(port, "GET", "/livez").status == 200)
        resp = exchange(port, "GET", "/")
        check("drain_still_serving_with_connection_close", resp.status == 200 and resp.body == b"ok" and
              (resp.header("Connection") or "").lower() == "close", resp.summary())
        check("drain_process_still_running_within_the_delay", server.proc.poll() is None and
              time.monotonic() - sent < delay)
        resp = slow.read_response()
        check("drain_request_in_flight_finished", resp.status == 200 and resp.body == b"done", resp.summary())
        slow.close()
        status = server.wait_exit(T(10))
        took = time.monotonic() - sent
        check("drain_exits_0_after_the_delay", status == 0 and took >= delay,
              "status %s after %.2fs; stderr: %s" % (status, took, server.stderr_text()))
    finally:
        server.kill()


def test_second_sigterm_skips_the_drain_delay(_):
    server = on_port(0, {"MW_DRAIN_DELAY_MS": "30000"})
    try:
        if not check("drain_skip_server_starts", server.wait_ready(), server.stderr_text()):
            return
        server.terminate()
        check("drain_skip_not_ready_after_the_first", wait_for(
            lambda: exchange(server.port, "GET", "/readyz").status == 503, T(0.5)))
        sent = time.monotonic()
        server.terminate()
        status = server.wait_exit(T(10))
        check("drain_skip_second_sigterm_stops_at_once", status == 0 and time.monotonic() - sent < T(5),  # not 30 s
              "status %s; stderr: %s" % (status, server.stderr_text()))
    finally:
        server.kill()


def main(argv):
    global BINARY
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    BINARY = argv[0]
    run_each([test_reuseport_two_processes_share_a_port, test_without_reuseport_second_process_fails,
              test_socket_activation_serves_on_descriptor_3, test_socket_activation_for_another_process_is_ignored,
              test_inherited_descriptor_serves, test_queue_of_a_shared_socket_survives_a_stop,
              test_descriptor_that_is_not_a_listening_socket_refused, test_liveness_and_readiness,
              test_sigterm_turns_readiness_503_then_drains_after_the_delay, test_second_sigterm_skips_the_drain_delay],
             None)
    return summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
