#!/usr/bin/env python3
"""End-to-end tests of GET /docs (mw_docs) over sockets, against tests/docsapp.c.

usage: python3 tests/docs.py DOCSAPP_BINARY

  the page is HTML with its style and script inline, under 64 KiB, with a
  Content-Security-Policy that allows its own inline style and script by their SHA-256
  (CSP Level 3 §8.3), requests to its own origin, and nothing else; it names no
  resource of another origin; it is the same bytes for every request; HEAD gives the
  head alone; POST is 405. (tests/browser/docs.mjs runs the page in Chromium.)

E2E_TIMEOUT_SCALE stretches the time limits, as for tests/e2e.py; E2E_WRAPPER runs the
server under a wrapper (valgrind).
Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last.
"""
import base64
import hashlib
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import Server, T, Tally, check, command_for, exchange, run_each, short  # noqa: E402

MAX_PAGE_BYTES = 64 * 1024


def directives(csp):
    """{"script-src": ["'sha256-...'"], ...} from a Content-Security-Policy value."""
    out = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def inline(page, tag):
    """The text of the page's one <tag> element, as CSP hashes it."""
    found = re.findall(rb"<%s>(.*?)</%s>" % (tag, tag), page, re.S)
    return found[0] if len(found) == 1 else None


def csp_hash(text):
    return "'sha256-%s'" % base64.b64encode(hashlib.sha256(text).digest()).decode()


def test_docs_is_html_under_64_kib(port):
    r = exchange(port, "GET", "/docs")
    check("docs_answers_200", r.status == 200, "status %d" % r.status)
    check("docs_is_html_in_utf_8", r.header("Content-Type") == "text/html; charset=utf-8", r.header("Content-Type"))
    check("docs_is_under_64_kib", 1000 < len(r.body) < MAX_PAGE_BYTES, "%d bytes" % len(r.body))
    check("docs_content_length_is_the_body", r.header("Content-Length") == str(len(r.body)), r.header("Content-Length"))
    check("docs_is_revalidated_by_caches", r.header("Cache-Control") == "no-cache", r.header("Cache-Control"))
    check("docs_is_a_whole_html_document", r.body.startswith(b"<!doctype html>") and r.body.endswith(b"</html>\n"),
          short(r.body[:40]) + " ... " + short(r.body[-20:]))
    check("docs_reads_the_openapi_document", b"fetch('/openapi.json'" in r.body, "no fetch of /openapi.json")


def test_csp_allows_only_the_pages_own_style_and_script(port):
    r = exchange(port, "GET", "/docs")
    csp = r.header("Content-Security-Policy") or ""
    d = directives(csp)
    style, script = inline(r.body, b"style"), inline(r.body, b"script")
    check("page_has_one_inline_style_and_one_inline_script", style is not None and script is not None, short(r.body))
    check("csp_script_src_is_the_scripts_sha256", script is not None and d.get("script-src") == [csp_hash(script)], csp)
    check("csp_style_src_is_the_styles_sha256", style is not None and d.get("style-src") == [csp_hash(style)], csp)
    check("csp_refuses_everything_else",
          d.get("default-src") == ["'none'"] and d.get("connect-src") == ["'self'"] and d.get("img-src") == ["data:"] and
          d.get("base-uri") == ["'none'"] and d.get("form-action") == ["'none'"] and
          d.get("frame-ancestors") == ["'none'"] and "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, csp)


def test_page_names_no_resource_of_another_origin(port):
    body = exchange(port, "GET", "/docs").body
    # nothing the browser would load by itself: no src attribute, no stylesheet, frame
    # or image element, no font, image or @import in the style; the one href is the
    # document's own link
    loads = re.findall(rb"""\bsrc\s*=|<link[^>]*stylesheet|<iframe|<img|<object|<embed""", body)
    loads += re.findall(rb"url\(|@import|@font-face", inline(body, b"style") or b"")
    check("page_loads_no_resource", not loads, short(loads))
    hrefs = re.findall(rb'href="([^"]*)"', body)
    check("page_links_only_to_itself", hrefs == [b"data:,", b"/openapi.json"], short(hrefs))
    check("page_is_ascii", body.isascii(), "non-ASCII bytes")


def test_page_is_the_same_bytes_each_time(port):
    a, b = exchange(port, "GET", "/docs"), exchange(port, "GET", "/docs")
    check("page_is_the_same_bytes_each_time", a.body == b.body and a.header("Content-Security-Policy") ==
          b.header("Content-Security-Policy"), "the page or its CSP changed between requests")


def test_head_gives_the_head_alone(port):
    g, h = exchange(port, "GET", "/docs"), exchange(port, "HEAD", "/docs")
    check("head_docs_gives_the_gets_head_without_body", h.status == 200 and h.body == b"" and
          h.header("Content-Length") == g.header("Content-Length") and
          h.header("Content-Security-Policy") == g.header("Content-Security-Policy"),
          "status %d, %d body bytes" % (h.status, len(h.body)))


def test_post_docs_is_405(port):
    r = exchange(port, "POST", "/docs", {"Content-Length": "0"})
    check("post_docs_is_405_with_allow", r.status == 405 and "GET" in (r.header("Allow") or ""),
          "status %d, Allow %s" % (r.status, r.header("Allow")))


TESTS = [
    test_docs_is_html_under_64_kib,
    test_csp_allows_only_the_pages_own_style_and_script,
    test_page_names_no_resource_of_another_origin,
    test_page_is_the_same_bytes_each_time,
    test_head_gives_the_head_alone,
    test_post_docs_is_405,
]


def main(argv):
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    server = Server(command_for(argv[0]))
    try:
        if check("server_starts", server.wait_ready(), server.stderr_text()):
            run_each(TESTS, server.port)
            server.terminate()
            status = server.wait_exit(T(10))
            check("server_exits_0", status == 0, "exit status %s; stderr: %s" % (status, server.stderr_text()))
    finally:
        server.kill()
    print("%d passed, %d failed" % (Tally.passed, Tally.failed), flush=True)
    return 0 if Tally.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
