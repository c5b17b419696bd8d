#!/usr/bin/env python3
"""End-to-end tests of static files (mw_static) against tests/staticapp.c: types,
validators and 304, ranges, HEAD, precompressed siblings, folders, mount options,
a matrix of hostile paths (raw sockets; no byte of a file outside the folder may
arrive), a 100 MB download in ranges, and 1,000 slow downloads on flat memory.

usage: python3 tests/static.py STATICAPP_BINARY [--walk] [--quick]

  --walk   the binary was built with -DMW_USE_OPENAT2=0: no symbolic link is followed,
           even one that stays inside the folder
  --quick  leaves out the 100 MB download and the 1,000 slow downloads (sanitizer builds)

Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last.
"""
import email.utils
import gzip
import hashlib
import http.client
import os
import random
import re
import resource
import select
import shutil
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import HOST, Client, Server, T, Tally, build_request, check, command_for, short  # noqa: E402
from load import rss_kib  # noqa: E402

SECRET = b"SECRET-OUTSIDE-THE-FOLDER-5f2c"
BIG_BYTES = 100 * 1000 * 1000
CSS = b"body { color: #123456; }\n" * 40
JS = b"document.title = 'static';\n" * 30
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def make_tree(base, big):
    """The folder (base/root) and, beside it, files no request may reach."""
    root = os.path.join(base, "root")
    os.makedirs(os.path.join(base, "secretdir"))
    for name in ("secret.txt", "secretdir/inner.txt"):
        with open(os.path.join(base, name), "wb") as f:
            f.write(SECRET + b"\n")
    files = {
        "index.html": b"<!doctype html><title>root index</title>\n",
        "style.css": CSS, "app.js": JS, "logo.png": PNG, "UPPER.PNG": PNG, "x.data": b"data\n",
        "noext": b"no extension\n", "empty.txt": b"", "space name.txt": b"space\n",
        "caf\u00e9.txt": b"cafe\n", "%2e%2e": b"a file named %2e%2e\n",
        "sub/index.html": b"<!doctype html><title>sub index</title>\n", "sub/page.txt": b"page\n",
        ".env": b"DOTFILE=1\n", ".git/config": b"[core]\n", "sub/.hidden": b"hidden\n",
        "hard-in-a.txt": b"two names\n",
    }
    for name, data in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    os.makedirs(os.path.join(root, "emptydir"))
    with open(os.path.join(root, "style.css.gz"), "wb") as f:
        f.write(gzip.compress(CSS, 9))
    with open(os.path.join(root, "app.js.gz"), "wb") as f:
        f.write(gzip.compress(JS, 9))
    with open(os.path.join(root, "app.js.br"), "wb") as f:
        f.write(b"BROTLI-STAND-IN " + JS[:32])  # the server only sends it; it never decodes
    links = {"link-out.txt": "../secret.txt", "link-abs.txt": os.path.join(base, "secret.txt"),
             "link-dir": "../secretdir", "link-in.css": "style.css", "link-sub": "sub", "link-loop": "link-loop",
             "link-dev": "/dev/zero", "link-proc": "/proc/self/root/etc/hostname", "sub/link-up.txt": "../../secret.txt"}
    for name, target in links.items():
        os.symlink(target, os.path.join(root, name))
    os.link(os.path.join(base, "secret.txt"), os.path.join(root, "hard-out.txt"))
    os.link(os.path.join(root, "hard-in-a.txt"), os.path.join(root, "hard-in-b.txt"))
    os.mkfifo(os.path.join(root, "fifo"))
    if big:
        rng = random.Random(13)
        with open(os.path.join(root, "big.bin"), "wb") as f:
            for _ in range(BIG_BYTES // (1 << 20)):
                f.write(rng.randbytes(1 << 20))
            f.write(rng.randbytes(BIG_BYTES % (1 << 20)))
    return root


class App:
    def __init__(self, server, root, walk):
        self.port, self.root, self.walk = server.port, root, walk

    def get(self, path, headers=None, method="GET", version="HTTP/1.1"):
        with Client(self.port) as c:
            return c.request(build_request(method, path, headers, version=version))

    def file(self, name):
        with open(os.path.join(self.root, name), "rb") as f:
            return f.read()

    def etag(self, path, headers=None):
        return self.get(path, headers).header("ETag")


def same_headers(a, b, names):
    return {n: a.header(n) for n in names} == {n: b.header(n) for n in names}


# ---------------------------------------------------------------------------
# files, types and the headers that go with them
# ---------------------------------------------------------------------------
def test_serves_a_file_with_its_type_validators_and_nosniff(app):
    r = app.get("/static/style.css")
    st = os.stat(os.path.join(app.root, "style.css"))
    check("file_200_body", r.status == 200 and r.body == CSS, r.summary())
    check("file_content_type_css", r.header("Content-Type") == "text/css; charset=utf-8", r.summary())
    check("file_content_length", r.header("Content-Length") == str(len(CSS)), r.summary())
    check("file_last_modified_is_mtime", r.header("Last-Modified") == email.utils.formatdate(int(st.st_mtime),
                                                                                             usegmt=True), r.summary())
    check("file_etag_strong_quoted", re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"', r.header("ETag") or ""),
          r.summary())
    check("file_cache_control_default_no_cache", r.header("Cache-Control") == "no-cache", r.summary())
    check("file_accept_ranges", r.header("Accept-Ranges") == "bytes", r.summary())
    check("file_nosniff", r.header("X-Content-Type-Options") == "nosniff", r.summary())


def test_content_types_from_the_table_and_the_app(app):
    cases = {"app.js": "text/javascript; charset=utf-8", "logo.png": "image/png", "UPPER.PNG": "image/png",
             "index.html": "text/html; charset=utf-8", "noext": "application/octet-stream",
             "x.data": "application/x-microweb-data", "space%20name.txt": "text/plain; charset=utf-8",
             "caf%C3%A9.txt": "text/plain; charset=utf-8", "style.css.gz": "application/gzip"}
    for name, ctype in cases.items():
        r = app.get("/static/" + name)
        check("content_type_" + re.sub(r"\W", "_", name), r.status == 200 and r.header("Content-Type") == ctype,
              r.summary())


def test_head_has_the_get_headers_and_no_body(app):
    get = app.get("/static/app.js")
    with Client(app.port) as c:
        c.send(build_request("HEAD", "/static/app.js") + build_request("GET", "/static/noext"))
        head = c.read_response(head_request=True)
        after = c.read_response()
    names = ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Cache-Control", "Accept-Ranges")
    check("head_same_headers_as_get", head.status == 200 and same_headers(head, get, names), head.summary())
    check("head_no_body_connection_stays_in_step", head.body == b"" and after.body == b"no extension\n",
          after.summary())


def test_empty_file(app):
    r = app.get("/static/empty.txt")
    check("empty_file_200_length_0", r.status == 200 and r.header("Content-Length") == "0" and r.body == b"",
          r.summary())


def test_pipelined_files_on_one_connection(app):
    names = ["style.css", "logo.png", "app.js", "noext"] * 5
    with Client(app.port) as c:
        c.send(b"".join(build_request("GET", "/static/" + n) for n in names))
        bodies = [c.read_response().body for _ in names]
    check("pipelined_files_each_whole_in_order", bodies == [app.file(n) for n in names],
          short([len(b) for b in bodies]))


# ---------------------------------------------------------------------------
# conditional requests (RFC 9110 §13)
# ---------------------------------------------------------------------------
def test_if_none_match(app):
    tag = app.etag("/static/style.css")
    cases = {"exact": tag, "in_a_list": '"nope", %s, "other"' % tag, "weak_form": "W/" + tag, "star": "*"}
    for name, value in cases.items():
        r = app.get("/static/style.css", {"If-None-Match": value})
        check("if_none_match_%s_304" % name,
              r.status == 304 and r.body == b"" and r.header("ETag") == tag and r.header("Content-Length") is None
              and r.header("Cache-Control") == "no-cache", r.summary())
    r = app.get("/static/style.css", {"If-None-Match": '"something-else"'})
    check("if_none_match_other_tag_200", r.status == 200 and r.body == CSS, r.summary())
    future = email.utils.formatdate(time.time() + 86400, usegmt=True)
    r = app.get("/static/style.css", {"If-None-Match": '"something-else"', "If-Modified-Since": future})
    check("if_none_match_decides_over_if_modified_since", r.status == 200, r.summary())
    r = app.get("/static/style.css", {"If-None-Match": tag}, method="HEAD")
    check("if_none_match_head_304", r.status == 304, r.summary())


def test_if_modified_since(app):
    lm = app.get("/static/style.css").header("Last-Modified")
    t = email.utils.parsedate_to_datetime(lm)
    forms = {"imf_fixdate": lm, "rfc850": t.strftime("%A, %d-%b-%y %H:%M:%S GMT"),
             "asctime": t.strftime("%a %b ") + ("%2d" % t.day) + t.strftime(" %H:%M:%S %Y")}
    for name, value in forms.items():
        r = app.get("/static/style.css", {"If-Modified-Since": value})
        check("if_modified_since_%s_304" % name, r.status == 304 and r.body == b"", "%s -> %s" % (value, r.summary()))
    earlier = email.utils.formatdate(t.timestamp() - 1, usegmt=True)
    r = app.get("/static/style.css", {"If-Modified-Since": earlier})
    check("if_modified_since_earlier_200", r.status == 200 and r.body == CSS, r.summary())
    for bad in ("yesterday", lm + " x", "Mon, 32 Nov 2026 00:00:00 GMT", ""):
        r = app.get("/static/style.css", {"If-Modified-Since": bad})
        check("if_modified_since_invalid_ignored_" + re.sub(r"\W", "_", bad)[:20], r.status == 200, r.summary())


def test_if_match_and_if_unmodified_since(app):
    first = app.get("/static/style.css")
    tag, lm = first.header("ETag"), first.header("Last-Modified")
    earlier = email.utils.formatdate(email.utils.parsedate_to_datetime(lm).timestamp() - 60, usegmt=True)
    cases = {"if_match_same": ({"If-Match": tag}, 200), "if_match_star": ({"If-Match": "*"}, 200),
             "if_match_list": ({"If-Match": '"x", ' + tag}, 200), "if_match_other": ({"If-Match": '"x"'}, 412),
             "if_match_weak_never": ({"If-Match": "W/" + tag}, 412),
             "if_match_other_with_range": ({"If-Match": '"x"', "Range": "bytes=0-3"}, 412),
             "if_unmodified_since_later": ({"If-Unmodified-Since": lm}, 200),
             "if_unmodified_since_earlier": ({"If-Unmodified-Since": earlier}, 412),
             "if_match_decides_over_unmodified_since": ({"If-Match": tag, "If-Unmodified-Since": earlier}, 200)}
    for name, (headers, status) in cases.items():
        r = app.get("/static/style.css", headers)
        check("precondition_%s_%d" % (name, status), r.status == status
              and (status == 200 and r.body == CSS or status == 412 and CSS not in r.body), r.summary())


def test_future_modification_time_sent_as_now(app):
    path = os.path.join(app.root, "future.txt")
    with open(path, "wb") as f:
        f.write(b"from the future\n")
    os.utime(path, (time.time() + 10 * 365 * 86400,) * 2)
    try:
        r = app.get("/static/future.txt")
        lm = email.utils.parsedate_to_datetime(r.header("Last-Modified")).timestamp()
        check("future_mtime_last_modified_not_after_date", r.status == 200 and lm <= time.time() + 1, r.summary())
    finally:
        os.unlink(path)


def test_repeated_fields(app):
    tag = app.etag("/static/style.css")
    with Client(app.port) as c:  # a list split over two fields is one list
        c.send(b"GET /static/style.css HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"a\"\r\nIf-None-Match: " + tag.encode()
               + b"\r\n\r\n")
        r = c.read_response()
    check("if_none_match_over_two_fields_304", r.status == 304, r.summary())
    with Client(app.port) as c:  # two ranges in two fields: no single meaning, the whole file
        c.send(b"GET /static/style.css HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\nRange: bytes=2-3\r\n\r\n")
        r = c.read_response()
    check("range_in_two_fields_whole_200", r.status == 200 and r.body == CSS, r.summary())


# ---------------------------------------------------------------------------
# ranges (RFC 9110 §14)
# ---------------------------------------------------------------------------
def test_single_ranges(app):
    size = len(CSS)
    cases = {"0-9": (0, 9), "10-": (10, size - 1), "-5": (size - 5, size - 1), "0-99999999": (0, size - 1),
             "-99999": (0, size - 1), " 3-4 ": (3, 4), "%d-%d" % (size - 1, size - 1): (size - 1, size - 1)}
    for spec, (a, b) in cases.items():
        r = app.get("/static/style.css", {"Range": "bytes=" + spec})
        check("range_%s_206" % re.sub(r"\W", "_", spec.strip()),
              r.status == 206 and r.body == CSS[a:b + 1] and r.header("Content-Range") == "bytes %d-%d/%d" % (a, b, size)
              and r.header("Content-Length") == str(b - a + 1), r.summary())


def test_unsatisfiable_ranges_416(app):
    size = len(CSS)
    for spec in ("%d-" % size, "%d-%d" % (size + 5, size + 9), "-0", "99999999999999999999999-"):
        r = app.get("/static/style.css", {"Range": "bytes=" + spec})
        check("range_unsatisfiable_%s_416" % re.sub(r"\W", "_", spec)[:20],
              r.status == 416 and r.reason == "Range Not Satisfiable"
              and r.header("Content-Range") == "bytes */%d" % size, r.summary())
    r = app.get("/static/empty.txt", {"Range": "bytes=0-"})
    check("range_on_empty_file_416", r.status == 416 and r.header("Content-Range") == "bytes */0", r.summary())


def test_ranges_answered_whole(app):
    cases = {"several": "bytes=0-1,3-4", "reversed": "bytes=5-2", "other_unit": "items=0-1", "garbage": "bytes=x-y",
             "no_positions": "bytes=-", "two_dashes": "bytes=1--2"}
    for name, value in cases.items():
        r = app.get("/static/style.css", {"Range": value})
        check("range_%s_whole_200" % name, r.status == 200 and r.body == CSS and r.header("Content-Range") is None,
              r.summary())
    r = app.get("/static/style.css", {"Range": "bytes=0-9"}, method="HEAD")
    check("range_ignored_for_head", r.status == 200 and r.header("Content-Length") == str(len(CSS)), r.summary())


def test_if_range(app):
    first = app.get("/static/style.css")
    tag, lm = first.header("ETag"), first.header("Last-Modified")
    cases = {"same_tag": (tag, 206), "other_tag": ('"other"', 200), "weak_tag": ("W/" + tag, 200),
             "last_modified": (lm, 206), "other_date": ("Mon, 01 Jan 2001 00:00:00 GMT", 200)}
    for name, (value, status) in cases.items():
        r = app.get("/static/style.css", {"Range": "bytes=0-3", "If-Range": value})
        want = CSS[:4] if status == 206 else CSS
        check("if_range_%s_%d" % (name, status), r.status == status and r.body == want, r.summary())


# ---------------------------------------------------------------------------
# precompressed siblings
# ---------------------------------------------------------------------------
def test_precompressed_siblings(app):
    identity = app.get("/static/style.css")
    r = app.get("/static/style.css", {"Accept-Encoding": "gzip, deflate"})
    check("gzip_sibling_sent", r.status == 200 and r.header("Content-Encoding") == "gzip"
          and gzip.decompress(r.body) == CSS, r.summary())
    check("gzip_sibling_type_of_the_file_and_vary", r.header("Content-Type") == "text/css; charset=utf-8"
          and r.header("Vary") == "Accept-Encoding", r.summary())
    check("gzip_sibling_own_etag", r.header("ETag") not in (None, identity.header("ETag")), r.summary())
    check("identity_without_accept_encoding_still_varies", identity.header("Content-Encoding") is None
          and identity.header("Vary") == "Accept-Encoding", identity.summary())
    br = app.file("app.js.br")
    cases = {"br_preferred": ("gzip, br", "br", br), "br_q0_takes_gzip": ("br;q=0, gzip", "gzip", None),
             "star_takes_br": ("*", "br", br), "gzip_q0_identity": ("gzip;q=0", None, JS),
             "star_but_br_refused": ("br;q=0.0, *", "gzip", None), "identity_only": ("identity", None, JS),
             "uppercase": ("GZIP", "gzip", None), "x_gzip": ("x-gzip", "gzip", None),
             "gzip_refused_star_takes_br": ("gzip;q=0, *", "br", br),
             "gzip_and_br_refused_star_identity": ("gzip;q=0, br;q=0, *", None, JS)}
    for name, (ae, coding, body) in cases.items():
        r = app.get("/static/app.js", {"Accept-Encoding": ae})
        ok = r.status == 200 and r.header("Content-Encoding") == coding
        ok = ok and (gzip.decompress(r.body) == JS if coding == "gzip" else r.body == body)
        check("accept_encoding_" + name, ok, r.summary())
    r = app.get("/static/logo.png", {"Accept-Encoding": "gzip, br"})
    check("no_sibling_identity_with_vary", r.status == 200 and r.body == PNG and r.header("Content-Encoding") is None
          and r.header("Vary") == "Accept-Encoding", r.summary())
    gz = app.file("style.css.gz")
    r = app.get("/static/style.css", {"Accept-Encoding": "gzip", "Range": "bytes=0-9"})
    check("range_of_the_compressed_bytes", r.status == 206 and r.body == gz[:10]
          and r.header("Content-Range") == "bytes 0-9/%d" % len(gz), r.summary())
    tag = r.header("ETag")
    r = app.get("/static/style.css", {"Accept-Encoding": "gzip", "If-None-Match": tag})
    check("compressed_304_keeps_vary", r.status == 304 and r.header("Vary") == "Accept-Encoding", r.summary())


# ---------------------------------------------------------------------------
# folders, methods, prefixes, mount options
# ---------------------------------------------------------------------------
def test_folders(app):
    cases = {"/static": "/static/", "/static/sub": "/static/sub/", "/static/sub?x=1&y=2": "/static/sub/?x=1&y=2",
             "/static?v=3": "/static/?v=3"}
    for path, location in cases.items():
        r = app.get(path)
        check("folder_redirect_%s" % re.sub(r"\W", "_", path), r.status == 301 and r.header("Location") == location,
              r.summary())
    r = app.get("/static/")
    check("folder_index_html", r.status == 200 and r.body == app.file("index.html")
          and r.header("Content-Type") == "text/html; charset=utf-8", r.summary())
    r = app.get("/static/sub/")
    check("subfolder_index_html", r.status == 200 and r.body == app.file("sub/index.html"), r.summary())
    r = app.get("/static/emptydir/")
    check("folder_without_index_404_no_listing", r.status == 404 and b"index" not in r.body, r.summary())
    r = app.get("/static/style.css/")
    check("file_named_as_folder_404", r.status == 404, r.summary())


def test_methods(app):
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = app.get("/static/style.css", method=method)
        allow = {m.strip() for m in (r.header("Allow") or "").split(",")}
        check("method_%s_405_allow" % method.lower(), r.status == 405 and allow == {"GET", "HEAD", "OPTIONS"},
              r.summary())
    r = app.get("/static/style.css", method="OPTIONS")
    check("options_200_allow", r.status == 200 and "GET" in (r.header("Allow") or ""), r.summary())


def test_prefixes_match_whole_segments(app):
    for path in ("/staticx/style.css", "/static-old/style.css", "/STATIC/style.css", "/stat/style.css"):
        r = app.get(path)
        check("prefix_%s_404" % re.sub(r"\W", "_", path), r.status == 404 and CSS not in r.body, r.summary())
    r = app.get("/staticx/hello")
    check("route_beside_a_mount", r.status == 200 and r.body == b"a route, not a file", r.summary())
    r = app.get("/static/special")
    check("route_inside_a_mount_wins", r.status == 200 and r.body == b"a route, not a file", r.summary())


def test_mount_options(app):
    r = app.get("/static/.env")
    check("dotfile_404_by_default", r.status == 404 and b"DOTFILE" not in r.body, r.summary())
    r = app.get("/dots/.env")
    check("dotfile_served_when_allowed", r.status == 200 and r.body == b"DOTFILE=1\n", r.summary())
    r = app.get("/static/hard-in-a.txt")
    check("hard_link_404_by_default", r.status == 404, r.summary())
    r = app.get("/links/hard-in-a.txt")
    check("hard_link_served_when_allowed", r.status == 200 and r.body == b"two names\n", r.summary())
    r = app.get("/cached/style.css")
    check("cache_control_per_mount", r.header("Cache-Control") == "public, max-age=3600", r.summary())
    r = app.get("/bare/style.css")
    check("cache_control_empty_not_sent", r.status == 200 and r.header("Cache-Control") is None, r.summary())
    r = app.get("/static/link-in.css")
    if app.walk:
        check("symlink_inside_not_followed_by_the_walk", r.status == 404, r.summary())
    else:
        check("symlink_inside_followed_with_openat2", r.status == 200 and r.body == CSS, r.summary())
    r = app.get("/static/%252e%252e")
    check("double_encoded_dots_stay_literal", r.status == 200 and r.body == b"a file named %2e%2e\n", r.summary())


# ---------------------------------------------------------------------------
# hostile paths: each answered with its status, and no byte from outside the folder
# ---------------------------------------------------------------------------
HOSTILE = [  # (request target as sent, status)
    ("/static/../secret.txt", 400), ("/static/..", 400), ("/static/sub/../../secret.txt", 400),
    ("/static/./style.css", 400), ("/static/%2e%2e/secret.txt", 400), ("/static/%2E%2E/secret.txt", 400),
    ("/static/.%2e/secret.txt", 400), ("/static/%2e./secret.txt", 400), ("/static/%2e/style.css", 400),
    ("/static/sub/%2e%2e/%2e%2e/secret.txt", 400), ("/static/..%2fsecret.txt", 400),
    ("/static/%2e%2e%2fsecret.txt", 400), ("/static/%2e%2e%2Fsecret.txt", 400),
    ("/static/sub%2f..%2f..%2fsecret.txt", 400), ("/static/..%5csecret.txt", 400), ("/static/..\\secret.txt", 400),
    ("/static/%5c..%5csecret.txt", 400), ("/static/sub\\..\\..\\secret.txt", 400), ("/static/%00", 400),
    ("/static/style.css%00.png", 400), ("/static//etc/passwd", 400), ("/static/%2fetc%2fpasswd", 400),
    ("/static/%2F", 400), ("/static/style.css/..", 400), ("/static/sub//page.txt", 400),
    ("/static/%zz", 400), ("/static/%u002e%u002e/secret.txt", 400), ("/static/#/../secret.txt", 400),
    ("http://%s/static/../secret.txt" % HOST, 400),
    ("/static/%252e%252e/secret.txt", 404), ("/static/%c0%ae%c0%ae/secret.txt", 404),
    ("/static/..%c0%afsecret.txt", 404), ("/static/..;/secret.txt", 404), ("/static/.../secret.txt", 404),
    ("/static/secret.txt", 404), ("/static/link-out.txt", 404), ("/static/link-abs.txt", 404),
    ("/static/link-dir/inner.txt", 404), ("/static/link-dir/", 404), ("/static/sub/link-up.txt", 404),
    ("/static/link-loop", 404), ("/static/link-dev", 404), ("/static/link-proc", 404), ("/static/hard-out.txt", 404),
    ("/links/link-out.txt", 404), ("/dots/link-dir/inner.txt", 404), ("/static/fifo", 404),
    ("/static/.git/config", 404), ("/static/sub/.hidden", 404), ("/static/.env", 404),
    ("/static/secretdir/inner.txt", 404), ("/static/" + "a" * 300, 404),
]


def test_hostile_paths(app):
    for target, status in HOSTILE:
        for method in ("GET", "HEAD"):
            headers = {"Connection": "close", "Range": "bytes=0-"} if method == "GET" else {"Connection": "close"}
            with Client(app.port) as c:  # everything the server sends, up to its close
                c.send(build_request(method, target, headers))
                data = c.reader.read_to_close()
            got = int(data[9:12]) if data.startswith(b"HTTP/1.1 ") else None
            name = "hostile_%s_%s" % (method.lower(), re.sub(r"\W+", "_", target)[:60])
            check(name, got == status and SECRET not in data and b"DOTFILE" not in data,
                  "want %d: %s" % (status, short(data[:200])))
    r = app.get("/static/style.css")
    check("hostile_paths_server_still_serves", r.status == 200 and r.body == CSS, r.summary())


# ---------------------------------------------------------------------------
# a 100 MB file: whole, in ranges, and 1,000 slow downloads
# ---------------------------------------------------------------------------
def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.digest()


def test_big_file_whole_and_in_ranges(app):
    want = file_sha256(os.path.join(app.root, "big.bin"))
    conn = http.client.HTTPConnection(HOST, app.port, timeout=T(60))
    conn.request("GET", "/static/big.bin")
    r = conn.getresponse()
    h = hashlib.sha256()
    n = 0
    while (block := r.read(1 << 20)):
        h.update(block)
        n += len(block)
    check("big_file_whole_bytes", r.status == 200 and n == BIG_BYTES and h.digest() == want, "%d %d" % (r.status, n))
    pieces = [(0, 33_333_332), (33_333_333, 66_666_665), (66_666_666, None)]
    h = hashlib.sha256()
    ok = True
    for a, b in pieces:  # on the same keep-alive connection
        conn.request("GET", "/static/big.bin", headers={"Range": "bytes=%d-%s" % (a, "" if b is None else b)})
        r = conn.getresponse()
        body = r.read()
        last = BIG_BYTES - 1 if b is None else b
        ok = ok and r.status == 206 and len(body) == last - a + 1
        ok = ok and r.getheader("Content-Range") == "bytes %d-%d/%d" % (a, last, BIG_BYTES)
        h.update(body)
    check("big_file_in_three_ranges_bytes", ok and h.digest() == want, "reassembled")
    conn.request("GET", "/static/big.bin", headers={"Range": "bytes=-1000"})
    r = conn.getresponse()
    with open(os.path.join(app.root, "big.bin"), "rb") as f:
        f.seek(BIG_BYTES - 1000)
        tail = f.read()
    check("big_file_suffix_range", r.status == 206 and r.read() == tail, r.status)
    conn.close()


def test_file_past_4_gib(app):
    """A sparse 5 GiB file: its length, and a range that starts past 4 GiB."""
    path = os.path.join(app.root, "huge.bin")
    size, at, marker = 5 << 30, (4 << 30) + 12345, b"PAST-4-GIB"
    with open(path, "wb") as f:
        f.truncate(size)
        f.seek(at)
        f.write(marker)
    try:
        r = app.get("/static/huge.bin", method="HEAD")
        check("past_4_gib_head_length", r.status == 200 and r.header("Content-Length") == str(size), r.summary())
        r = app.get("/static/huge.bin", {"Range": "bytes=%d-%d" % (at, at + len(marker) - 1)})
        check("past_4_gib_range", r.status == 206 and r.body == marker
              and r.header("Content-Range") == "bytes %d-%d/%d" % (at, at + len(marker) - 1, size), r.summary())
    finally:
        os.unlink(path)


def test_slow_downloads_keep_memory_flat(app, pid):
    """1,000 clients take a 100 MB file a little at a time: the server holds a
    descriptor and a small record for each, no copy of the file."""
    count = 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * count)), hard))
    for _ in range(3):  # the server's own buffers and pools settle first
        app.get("/static/style.css")
    before = rss_kib(pid)
    socks, heads = [], {}
    try:
        for _ in range(count):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect((HOST, app.port))
            s.sendall(build_request("GET", "/static/big.bin"))
            s.setblocking(False)
            socks.append(s)
        poller = select.poll()
        by_fd = {s.fileno(): s for s in socks}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + T(30)
        while len(heads) < count and time.monotonic() < deadline:  # every client gets its head and some bytes
            for fd, _ in poller.poll(500):
                try:
                    data = by_fd[fd].recv(2048)
                except BlockingIOError:
                    continue
                if fd not in heads:
                    heads[fd] = data[:12]
        during = rss_kib(pid)
        r = app.get("/static/style.css")  # everyone else keeps being served
        check("slow_downloads_others_still_served", r.status == 200 and r.body == CSS, r.summary())
    finally:
        for s in socks:
            s.close()
    ok_heads = sum(1 for h in heads.values() if h.startswith(b"HTTP/1.1 200"))
    check("slow_downloads_all_started", ok_heads == count, "%d of %d" % (ok_heads, count))
    growth = during - before
    print("slow downloads: server RSS %d KiB before, %d KiB with %d downloads open (%.1f KiB each)" %
          (before, during, count, growth / count), flush=True)
    check("slow_downloads_memory_flat_under_16_kib_each", growth < 16 * count, "%d KiB for %d" % (growth, count))


def slow_reader_outlives_the_write_timeout(binary, root):
    """With MW_LIMIT_WRITE_TIMEOUT_MS at 1 s, a client that reads 4 KiB every 100 ms
    for 4 s and then reads as fast as it can gets the whole file: its slow reads free
    too little of a full socket buffer for it to report writable within the timeout,
    yet it takes bytes. A client that reads nothing for 4 s is cut."""
    server = Server(command_for(binary), {"STATIC_ROOT": root, "MW_THREADS": "2", "WRITE_TIMEOUT_MS": "1000"})
    socks = []
    try:
        if not check("write_timeout_server_starts", server.wait_ready(), server.stderr_text()):
            return
        for _ in range(2):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect((HOST, server.port))
            s.sendall(build_request("GET", "/static/big.bin", {"Connection": "close"}))
            s.settimeout(T(10))
            socks.append(s)
        reader, idle = socks
        got, end = 0, time.monotonic() + 4
        while time.monotonic() < end:
            data = reader.recv(4096)
            if not data:
                break
            got += len(data)
            time.sleep(0.1)  # the client's pace, not synchronisation

        def read_to_end(s, n):
            try:
                while (data := s.recv(1 << 20)):
                    n += len(data)
            except (ConnectionError, socket.timeout):
                pass
            return n

        whole = BIG_BYTES + 200  # the file and its head
        got = read_to_end(reader, got)
        check("slow_reader_gets_the_whole_file", got > BIG_BYTES, "%d of %d bytes" % (got, whole))
        taken = read_to_end(idle, 0)  # all it can read now is what the kernel held
        check("client_that_stops_reading_is_cut", taken < BIG_BYTES, "%d bytes" % taken)
    finally:
        for s in socks:
            s.close()
        server.kill()


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    walk, quick = "--walk" in argv, "--quick" in argv
    if len(args) != 1:
        print(__doc__.strip().splitlines()[6], file=sys.stderr)
        return 2
    base = tempfile.mkdtemp(prefix="mw-static-")
    try:
        root = make_tree(base, big=not quick)
        server = Server(command_for(args[0]), {"STATIC_ROOT": root, "MW_THREADS": "2"})
        try:
            if check("staticapp_starts", server.wait_ready(), server.stderr_text()):
                app = App(server, root, walk)
                tests = [t for name, t in sorted(globals().items()) if name.startswith("test_") and callable(t)]
                for test in tests:
                    if test in (test_big_file_whole_and_in_ranges, test_slow_downloads_keep_memory_flat) and quick:
                        continue
                    try:
                        if test is test_slow_downloads_keep_memory_flat:
                            test(app, server.proc.pid)
                        else:
                            test(app)
                    except Exception as e:
                        check(test.__name__.removeprefix("test_"), False, "%s: %s" % (type(e).__name__, e))
            server.terminate()
            check("staticapp_exits_cleanly", server.wait_exit(T(10)) == 0, server.stderr_text())
        finally:
            server.kill()
        if not quick:
            slow_reader_outlives_the_write_timeout(args[0], root)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("%d passed, %d failed" % (Tally.passed, Tally.failed), flush=True)
    return 0 if Tally.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
