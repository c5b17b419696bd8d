#!/usr/bin/env python3
"""End-to-end tests of the course's small examples (examples/routes.c, examples/forms.c)
over sockets with Python's http.client: each example's requests from its top comment,
with the answers it promises.

usage: python3 tests/course.py BINARY...   (each named after its example: build/routes)

Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last.
"""
import http.client
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import serve_example, summary, HOST, T, check, short  # noqa: E402

FORM = {"Content-Type": "application/x-www-form-urlencoded"}

# example -> (check name, method, target, body, headers, status, the body, or a part of it)
EXCHANGES = {
    "routes": [
        ("lists_books", "GET", "/books", None, {}, 200, [{"id": 1}, {"id": 2}, {"id": 3}]),
        ("typed_parameter_is_a_number", "GET", "/books/7", None, {}, 200, {"id": 7, "title": "Book 7"}),
        ("typed_parameter_refuses_words_404", "GET", "/books/seven", None, {}, 404, "no route for this path"),
        ("other_method_405", "DELETE", "/books/7", None, {}, 405, "method not allowed"),
        ("parameter_is_decoded", "GET", "/authors/ada%20l", None, {}, 200, "Books by ada l\n"),
        ("wildcard_takes_the_rest", "GET", "/files/a/b.txt", None, {}, 200, "file a/b.txt\n"),
        ("wildcard_refuses_dot_dot_400", "GET", "/files/a/../../etc/passwd", None, {}, 400, ""),
        ("post_creates_201", "POST", "/books", "", {}, 201, "created\n"),
    ],
    "forms": [
        ("page_has_a_form", "GET", "/", None, {}, 200, "<form method=post action=/greet>"),
        ("query_values_decoded", "GET", "/search?q=cats+and%20dogs&tag=a&tag=b", None, {}, 200,
         {"q": "cats and dogs", "tags": ["a", "b"], "pairs": [["q", "cats and dogs"], ["tag", "a"], ["tag", "b"]]}),
        ("absent_query_is_null", "GET", "/search", None, {}, 200, {"q": None, "tags": [], "pairs": []}),
        ("form_greets_escaped", "POST", "/greet", "name=Ada&color=%3Cb%3Eblue%3C%2Fb%3E", FORM, 200,
         "<p>Hello, Ada! You like &lt;b&gt;blue&lt;/b&gt;.</p>"),
        ("form_without_name_400", "POST", "/greet", "color=red", FORM, 400, "the form needs a name"),
    ],
}


def answer_matches(data, content_type, want):
    if isinstance(want, (list, dict)):
        return content_type == "application/json" and json.loads(data) == want
    return want in data.decode("utf-8")


def exercise(name, port):
    conn = http.client.HTTPConnection(HOST, port, timeout=T(10))
    for check_name, method, target, body, headers, status, want in EXCHANGES[name]:
        conn.request(method, target, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        ok = r.status == status and answer_matches(data, r.getheader("Content-Type"), want)
        check("%s_%s" % (name, check_name), ok, "%d %s" % (r.status, short(data)))
        if method == "DELETE":
            check(name + "_405_names_allowed_methods", r.getheader("Allow") == "GET, HEAD, OPTIONS",
                  str(r.getheader("Allow")))
    conn.close()


def main(argv):
    if not argv:
        print(__doc__.strip().splitlines()[4], file=sys.stderr)
        return 2
    for binary in argv:
        name = os.path.basename(binary)
        serve_example(name, binary, lambda port: exercise(name, port))
    return summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
