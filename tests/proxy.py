#!/usr/bin/env python3
"""End to end behind a proxy, over sockets: examples/inspect.c started with
MW_TRUSTED_PROXIES and the access log on. From a trusted peer (127.0.0.1) the client
a proxy forwarded is what the handler sees and what the access log names; from a
peer that is not trusted the fields are ignored; a malformed MW_TRUSTED_PROXIES stops
the server before it listens, with one line naming the entry.

usage: python3 tests/proxy.py INSPECT_BINARY

Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last.
"""
import http.client
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import HOST, T, Server, check, check_clean_exit, command_for, short, summary  # noqa: E402


def call(port, target, headers):
    """The JSON inspect answers and the client socket's own port."""
    conn = http.client.HTTPConnection(HOST, port, timeout=T(10))
    try:
        conn.request("GET", target, headers=headers)
        own_port = conn.sock.getsockname()[1]
        r = conn.getresponse()
        return json.loads(r.read()), own_port
    finally:
        conn.close()


def logged(server, target):
    """The access log line of the request for target (unique per request), or None."""
    m = server.wait_for_line(re.compile(r"^\S+ (\S+) GET %s 200 \d+ \d+us$" % re.escape(target)), T(5))
    return m.group(1) if m else None


def with_server(prefix, env, exercise):
    server = Server(command_for(sys.argv[1]), dict(env, MW_ACCESS_LOG="1", MW_THREADS="2"))
    try:
        if check(prefix + "_starts_and_reports_port", server.wait_ready(), server.stderr_text()):
            exercise(server)
            server.terminate()
            check_clean_exit(prefix, server)
    finally:
        server.kill()


def trusted_loopback(server):
    doc, _ = call(server.port, "/xff?case=1", {"X-Forwarded-For": "6.6.6.6, 203.0.113.7"})
    check("trusted_peer_handler_sees_the_forwarded_client",
          (doc["client_address"], doc["client_port"]) == ("203.0.113.7", 0), short(doc))
    client = logged(server, "/xff?case=1")
    check("trusted_peer_access_log_names_the_forwarded_client", client == "203.0.113.7:0", short(client))
    doc, _ = call(server.port, "/fwd?case=2", {"Forwarded": 'for="[2001:db8:cafe::17]:4711";proto=https'})
    check("trusted_peer_forwarded_ipv6_with_port",
          (doc["client_address"], doc["client_port"]) == ("2001:db8:cafe::17", 4711), short(doc))
    client = logged(server, "/fwd?case=2")
    check("trusted_peer_access_log_brackets_a_forwarded_ipv6_client", client == "[2001:db8:cafe::17]:4711",
          short(client))
    doc, own_port = call(server.port, "/plain?case=3", {})
    check("trusted_peer_without_forwarding_fields_is_the_client",
          (doc["client_address"], doc["client_port"]) == ("127.0.0.1", own_port), short(doc))
    client = logged(server, "/plain?case=3")
    check("trusted_peer_without_forwarding_fields_logged_as_itself", client == "127.0.0.1:%d" % own_port,
          short(client))
    doc, own_port = call(server.port, "/garbage?case=4", {"X-Forwarded-For": "203.0.113.7, not-an-address"})
    check("trusted_peer_garbage_hop_leaves_the_peer",
          (doc["client_address"], doc["client_port"]) == ("127.0.0.1", own_port), short(doc))


def untrusted_loopback(server):
    doc, own_port = call(server.port, "/forged?case=5", {"X-Forwarded-For": "203.0.113.7",
                                                         "Forwarded": "for=203.0.113.8"})
    check("untrusted_peer_forged_fields_ignored",
          (doc["client_address"], doc["client_port"]) == ("127.0.0.1", own_port), short(doc))
    client = logged(server, "/forged?case=5")
    check("untrusted_peer_logged_as_itself", client == "127.0.0.1:%d" % own_port, short(client))


def test_malformed_list_stops_the_server_before_listening():
    server = Server(command_for(sys.argv[1]), {"MW_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/33"})
    try:
        status = server.wait_exit(T(10))
        server.wait_stderr_closed(T(5))
        check("malformed_trusted_list_exits_with_status_1", status == 1, "status %s" % status)
        check("malformed_trusted_list_names_the_entry",
              server.wait_for_line(re.compile(r'MW_TRUSTED_PROXIES: "10\.0\.0\.0/33" has a prefix longer than 32'),
                                   T(1)) is not None, server.stderr_text())
        check("malformed_trusted_list_never_listens", server.wait_for_line(re.compile("listening"), 0) is None,
              server.stderr_text())
    finally:
        server.kill()


def main(argv):
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[6], file=sys.stderr)
        return 2
    with_server("trusted", {"MW_TRUSTED_PROXIES": "127.0.0.1"}, trusted_loopback)
    with_server("untrusted", {"MW_TRUSTED_PROXIES": "10.0.0.0/8, ::1"}, untrusted_loopback)
    test_malformed_list_stops_the_server_before_listening()
    return summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
