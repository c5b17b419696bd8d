#!/usr/bin/env python3
"""End-to-end tests of examples/inspect.c over sockets, with http.client and raw sockets:
its JSON answer's shape, header fields in the order sent (duplicates and spelling kept),
the request-target as sent (%-escapes kept), the HTTP version, the client's address and
port as the client's own socket sees them, and its HTML page, every value escaped.

usage: python3 tests/inspect_example.py INSPECT_BINARY

Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last.
"""
import http.client
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import serve_example, summary, HOST, T, check, run_each, short  # noqa: E402

KEYS = {"method", "target", "path", "query", "version", "client_address", "client_port", "headers", "body_bytes"}
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def raw(port, request):
    """Sends request bytes on a new socket: (the response, the socket's own port)."""
    with socket.create_connection((HOST, port), timeout=T(10)) as s:
        s.sendall(request)
        r = http.client.HTTPResponse(s)
        r.begin()
        return r, r.read(), s.getsockname()[1]


def call(port, method, target, headers=None, body=None):
    """(the response, its body, the client socket's own port), through http.client."""
    conn = http.client.HTTPConnection(HOST, port, timeout=T(10))
    try:
        conn.request(method, target, body=body, headers=headers or {})
        own_port = conn.sock.getsockname()[1]
        r = conn.getresponse()
        return r, r.read(), own_port
    finally:
        conn.close()


def test_json_answer_holds_every_part_of_the_request(port):
    r, data, own_port = call(port, "POST", "/notes/7?tag=a&tag=b", {"X-Trace": "t1"}, b"hello")
    doc = json.loads(data)
    check("inspect_answers_json_by_default", (r.status, r.getheader("Content-Type")) == (200, "application/json"),
          short((r.status, r.getheader("Content-Type"))))
    check("inspect_json_has_every_key", set(doc) == KEYS, short(sorted(doc)))
    check("inspect_json_method_path_and_body_size",
          (doc["method"], doc["path"], doc["body_bytes"]) == ("POST", "/notes/7", 5), short(doc))
    check("inspect_json_query_pairs_in_order_with_repeats", doc["query"] == [["tag", "a"], ["tag", "b"]],
          short(doc["query"]))
    check("inspect_json_headers_are_name_value_pairs",
          all(isinstance(h, list) and len(h) == 2 for h in doc["headers"]) and ["X-Trace", "t1"] in doc["headers"],
          short(doc["headers"]))
    check("inspect_client_is_127_0_0_1_on_the_clients_own_port",
          (doc["client_address"], doc["client_port"]) == ("127.0.0.1", own_port),
          "got %s:%s, socket port %d" % (doc["client_address"], doc["client_port"], own_port))


def test_header_fields_in_the_order_sent_with_duplicates(port):
    r, data, _ = raw(port, b"GET /h HTTP/1.1\r\nHost: h\r\nX-Dup: 1\r\nx-other: a\r\nX-DUP: 2\r\n"
                           b"Connection: close\r\n\r\n")
    doc = json.loads(data)
    want = [["Host", "h"], ["X-Dup", "1"], ["x-other", "a"], ["X-DUP", "2"], ["Connection", "close"]]
    check("inspect_headers_in_order_sent_duplicates_and_spelling_kept", doc["headers"] == want, short(doc["headers"]))


def test_target_is_kept_as_sent(port):
    r, data, _ = raw(port, b"GET /a%20b/%41?x=%41&y=b+c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    doc = json.loads(data)
    check("inspect_target_keeps_percent_escapes_and_query", doc["target"] == "/a%20b/%41?x=%41&y=b+c",
          short(doc["target"]))
    check("inspect_path_is_not_decoded", doc["path"] == "/a%20b/%41", short(doc["path"]))
    check("inspect_query_values_are_decoded", doc["query"] == [["x", "A"], ["y", "b c"]], short(doc["query"]))


def test_any_method_and_path_is_answered(port):
    for method, target in (("PROPFIND", "/"), ("DELETE", "/deep/er/path"), ("PATCH", "/x?y")):
        r, data, _ = call(port, method, target, {"Content-Type": "text/plain"}, b"12")
        doc = json.loads(data) if r.status == 200 else {}
        check("inspect_answers_%s" % method.lower(),
              (r.status, doc.get("method"), doc.get("target"), doc.get("body_bytes")) == (200, method, target, 2),
              short((r.status, data)))


def test_http_1_0_request_is_named(port):
    r, data, own_port = raw(port, b"GET /old HTTP/1.0\r\nUser-Agent: old\r\n\r\n")
    doc = json.loads(data)
    check("inspect_http_1_0_version", (r.status, doc["version"]) == (200, "HTTP/1.0"), short(doc))
    check("inspect_http_1_0_client_port", doc["client_port"] == own_port, short((doc["client_port"], own_port)))
    r, data, _ = raw(port, b"GET /new HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    check("inspect_http_1_1_version", json.loads(data)["version"] == "HTTP/1.1", short(data))


def test_html_page_escapes_every_value(port):
    evil = "<script>alert(1)</script>"
    r, data, own_port = call(port, "GET", "/page?q=%3Cb%3E", {"Accept": BROWSER_ACCEPT, "X-Evil": evil})
    page = data.decode("utf-8")
    check("inspect_html_for_a_browser", r.getheader("Content-Type") == "text/html; charset=utf-8",
          short(r.getheader("Content-Type")))
    check("inspect_html_escapes_a_header_value",
          "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page, short(page))
    check("inspect_html_escapes_a_query_value", "&lt;b&gt;" in page and "<b>" not in page, short(page))
    check("inspect_html_names_client_and_port", "from 127.0.0.1 port %d," % own_port in page, short(page))
    r, data, _ = call(port, "GET", "/page?format=html")
    check("inspect_format_html_asks_for_the_page", r.getheader("Content-Type") == "text/html; charset=utf-8",
          short(r.getheader("Content-Type")))
    r, data, _ = call(port, "GET", "/page", {"Accept": "application/json, text/html"})
    check("inspect_json_when_accept_names_it_first", r.getheader("Content-Type") == "application/json",
          short(r.getheader("Content-Type")))


TESTS = [test_json_answer_holds_every_part_of_the_request, test_header_fields_in_the_order_sent_with_duplicates,
         test_target_is_kept_as_sent, test_any_method_and_path_is_answered, test_http_1_0_request_is_named,
         test_html_page_escapes_every_value]


def main(argv):
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[6], file=sys.stderr)
        return 2
    serve_example("inspect", argv[0], lambda port: run_each(TESTS, port), {"MW_THREADS": "2"})
    return summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
