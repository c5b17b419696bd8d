#!/usr/bin/env python3
"""End-to-end tests of examples/site.c with curl and Python's http.client: the login
form and its CSRF token, the signed-cookie session, the cross-origin check, CORS on
/api/time, the security headers on every answer and the static files under /static.

usage: python3 tests/site.py SITE_BINARY

The site runs in the repository's root, as `make run-site` runs it, so that it finds
its default static folder examples/site/static.

  GET  /          an HTML page with the login form (a CSRF token in it)
  POST /login     form user=demo&password=demo: sets the session, 303 to /me
  GET  /me        {"user":"demo"}, or 401 without a session
  POST /logout    ends the session, 303 to /
  GET  /api/time  CORS for the origin in CORS_ORIGIN
  GET  /static/x  the file x of STATIC_DIR (default examples/site/static)

Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last.
"""
import gzip
import http.client
import json
import os
import re
import socket
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import HOST, Server, T, Tally, check, command_for, run_each, short  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATIC = os.path.join(ROOT, "examples", "site", "static")
KEY = "site-test-key-0123456789abcdef"
ORIGIN = "http://localhost:5173"
TOKEN_RE = re.compile(r'name="csrf_token" value="([A-Za-z0-9_-]{86})"')
SECURITY = {"x-content-type-options": "nosniff", "x-frame-options": "DENY",
            "content-security-policy": "frame-ancestors 'none'",
            "referrer-policy": "strict-origin-when-cross-origin"}


class Site:
    def __init__(self, server):
        self.server = server
        self.port = server.port
        self.host = "%s:%d" % (HOST, server.port)

    def request(self, method, path, body=None, headers=None):
        """(status, {lowercase name: value}, all Set-Cookie values, body text)."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=T(10))
        hdrs = dict(headers or {})
        if body is not None and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read().decode("utf-8", "replace")
        result = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.headers.get_all("Set-Cookie") or [], data)
        conn.close()
        return result

    def curl(self, *args):
        out = subprocess.run(["curl", "-sS", "--max-time", str(T(10))] + list(args), capture_output=True, text=True)
        return out.returncode, out.stdout, out.stderr

    def curl_bytes(self, path, *args):
        """curl's answer to path with args: (status, {lowercase name: value}, body bytes)."""
        with tempfile.TemporaryDirectory() as d:
            body_file = os.path.join(d, "body")
            rc, head, err = self.curl("-D", "-", "-o", body_file, *args, "http://%s%s" % (self.host, path))
            if rc != 0:
                raise RuntimeError("curl exited %d: %s" % (rc, err.strip()))
            body = b""  # curl makes no file for an answer without content
            if os.path.exists(body_file):
                with open(body_file, "rb") as f:
                    body = f.read()
        lines = head.strip().split("\n")
        fields = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
        return int(lines[0].split()[1]), {k.strip().lower(): v.strip() for k, v in fields.items()}, body


def cookie_value(set_cookies, name="session"):
    for sc in set_cookies:
        if sc.startswith(name + "="):
            return sc.split(";", 1)[0][len(name) + 1:]
    return None


def form(**fields):
    return urllib.parse.urlencode(fields)


def static_file(name):
    with open(os.path.join(STATIC, name), "rb") as f:
        return f.read()


# ---------------------------------------------------------------------------
def test_home_page_has_a_login_form_with_a_csrf_token(s):
    status, headers, cookies, body = s.request("GET", "/")
    check("home_page_is_html", status == 200 and headers.get("content-type") == "text/html; charset=utf-8",
          (status, headers.get("content-type")))
    check("home_page_has_the_login_form", '<form method="post" action="/login">' in body, short(body))
    check("home_page_has_a_csrf_token", TOKEN_RE.search(body) is not None, short(body))
    sc = next((c for c in cookies if c.startswith("session=")), "")
    check("home_page_sets_a_session_cookie_httponly_lax", "HttpOnly" in sc and "SameSite=Lax" in sc, cookies)
    _, _, _, again = s.request("GET", "/")
    first, second = TOKEN_RE.search(body), TOKEN_RE.search(again)
    check("each_page_gets_a_new_masked_token", first and second and first.group(1) != second.group(1))


def test_security_headers_on_every_answer(s):
    for method, path in (("GET", "/"), ("GET", "/me"), ("GET", "/nowhere"), ("POST", "/me"), ("GET", "/api/time"),
                         ("GET", "/static/app.js"), ("GET", "/static/nowhere.css")):
        status, headers, _, _ = s.request(method, path)
        missing = {k: headers.get(k) for k, v in SECURITY.items() if headers.get(k) != v}
        check("security_headers_on_%s_%s_%d" % (method, path.strip("/").replace("/", "_") or "root", status),
              not missing, missing)


def test_login_with_curl_sets_the_session_and_redirects_to_me(s):
    with tempfile.TemporaryDirectory() as d:
        jar = os.path.join(d, "jar")
        rc, out, err = s.curl("-i", "-c", jar, "-d", "user=demo&password=demo", "http://%s/login" % s.host)
        head = out.split("\n\n", 1)[0]  # text mode: curl's CRLFs read as LFs
        check("curl_login_answers_303_to_me", rc == 0 and head.startswith("HTTP/1.1 303") and
              "\nLocation: /me" in head and "\nSet-Cookie: session=" in head, short(out + err))
        rc, out, err = s.curl("-b", jar, "http://%s/me" % s.host)
        check("curl_me_with_the_session_is_the_user", rc == 0 and json.loads(out or "{}") == {"user": "demo"},
              short(out + err))
        rc, out, err = s.curl("-L", "-b", jar, "-c", jar, "-d", "user=demo&password=demo", "http://%s/login" % s.host)
        check("curl_follows_the_303_to_me_as_a_get", json.loads(out or "{}") == {"user": "demo"}, short(out + err))


def test_me_without_a_session_is_401(s):
    status, headers, _, body = s.request("GET", "/me")
    check("me_without_session_is_401_json", status == 401 and json.loads(body).get("status") == 401, (status, body))
    status, _, _, body = s.request("GET", "/me", headers={"Cookie": "session=forged.1.xyz"})
    check("me_with_a_forged_cookie_is_401", status == 401, (status, body))


def test_wrong_password_is_401_with_the_form(s):
    status, _, cookies, body = s.request("POST", "/login", form(user="demo", password="wrong"))
    check("wrong_password_is_401_with_the_form_again", status == 401 and "Wrong user or password." in body and
          TOKEN_RE.search(body), (status, short(body)))
    session = cookie_value(cookies)
    status, _, _, _ = s.request("GET", "/me", headers={"Cookie": "session=" + session} if session else {})
    check("wrong_password_logs_nobody_in", status == 401, status)


def test_browser_flow_needs_the_forms_token(s):
    _, _, cookies, body = s.request("GET", "/")
    session, token = cookie_value(cookies), TOKEN_RE.search(body).group(1)
    cookie = {"Cookie": "session=" + session}
    status, _, _, text = s.request("POST", "/login", form(user="demo", password="demo"), cookie)
    check("login_from_a_loaded_form_without_its_token_is_403", status == 403 and "CSRF" in text, (status, text))
    status, _, _, _ = s.request("POST", "/login", form(user="demo", password="demo", csrf_token="A" * 86), cookie)
    check("login_with_a_wrong_token_is_403", status == 403, status)
    status, headers, cookies2, _ = s.request("POST", "/login",
                                             form(user="demo", password="demo", csrf_token=token), cookie)
    check("login_with_the_token_is_303_to_me", status == 303 and headers.get("location") == "/me", (status, headers))
    logged_in = cookie_value(cookies2)
    status, _, _, body = s.request("GET", "/me", headers={"Cookie": "session=" + logged_in})
    check("the_session_carries_the_user", status == 200 and json.loads(body) == {"user": "demo"}, (status, body))
    _, _, _, page = s.request("GET", "/", headers={"Cookie": "session=" + logged_in})
    check("home_page_shows_the_user_and_a_logout_form",
          "Logged in as <strong>demo</strong>" in page and 'action="/logout"' in page, short(page))
    token2 = TOKEN_RE.search(page).group(1)
    status, headers, cookies3, _ = s.request("POST", "/logout", form(csrf_token=token2),
                                             {"Cookie": "session=" + logged_in})
    deleted = next((c for c in cookies3 if c.startswith("session=;")), "")
    check("logout_is_303_home_and_deletes_the_cookie", status == 303 and headers.get("location") == "/" and
          "Max-Age=0" in deleted, (status, headers, cookies3))
    status, _, _, _ = s.request("GET", "/me")
    check("after_logout_me_is_401", status == 401, status)


def test_cross_site_posts_are_refused(s):
    for name, hdrs in (("sec_fetch_site_cross_site", {"Sec-Fetch-Site": "cross-site"}),
                       ("origin_of_another_site", {"Origin": "http://evil.test"})):
        status, _, _, body = s.request("POST", "/login", form(user="demo", password="demo"), hdrs)
        check("login_%s_is_403" % name, status == 403 and "cross-origin request refused" in body, (status, body))
    status, _, _, _ = s.request("POST", "/login", form(user="demo", password="demo"),
                                {"Origin": "http://%s" % s.host, "Sec-Fetch-Site": "same-origin"})
    check("login_same_origin_is_accepted", status == 303, status)


def test_api_time_is_cors_enabled_for_its_origin(s):
    status, headers, _, body = s.request("GET", "/api/time", headers={"Origin": ORIGIN})
    data = json.loads(body)
    check("api_time_answers_json", status == 200 and isinstance(data.get("unix"), int) and
          re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data.get("utc", "")), (status, body))
    check("api_time_allows_cors_origin", headers.get("access-control-allow-origin") == ORIGIN and
          headers.get("access-control-allow-credentials") == "true" and headers.get("vary") == "Origin", headers)
    _, headers, _, _ = s.request("GET", "/api/time", headers={"Origin": "http://evil.test"})
    check("api_time_other_origin_gets_no_cors", "access-control-allow-origin" not in headers, headers)
    _, headers, _, _ = s.request("GET", "/", headers={"Origin": ORIGIN})
    check("cors_only_under_api", "access-control-allow-origin" not in headers, headers)
    status, headers, _, _ = s.request("OPTIONS", "/api/time", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    check("api_time_preflight_204_with_methods", status == 204 and
          headers.get("access-control-allow-methods") == "GET, HEAD, OPTIONS" and
          headers.get("access-control-allow-origin") == ORIGIN, (status, headers))


def test_static_files_have_their_types_and_bytes(s):
    for name, ctype in (("style.css", "text/css; charset=utf-8"), ("app.js", "text/javascript; charset=utf-8"),
                        ("logo.png", "image/png")):
        status, headers, body = s.curl_bytes("/static/" + name)
        check("static_%s_is_%s" % (name, ctype.split(";")[0]), status == 200 and headers.get("content-type") == ctype,
              (status, headers))
        check("static_%s_is_the_file_with_nosniff" % name, body == static_file(name) and
              headers.get("x-content-type-options") == "nosniff", (len(body), headers))
    check("static_logo_is_a_png", static_file("logo.png").startswith(b"\x89PNG\r\n\x1a\n"))


def raw_answer(s, method, path, *fields):
    """A request on its own connection, read to the server's close: (head text, bytes after
    it). curl would not read what follows a 304's or a HEAD answer's head; this shows it."""
    lines = ("%s %s HTTP/1.1" % (method, path), "Host: " + s.host, "Connection: close") + fields
    with socket.create_connection((HOST, s.port), timeout=T(10)) as sock:
        sock.sendall(("".join(line + "\r\n" for line in lines) + "\r\n").encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def test_static_etag_revalidates_to_an_empty_304(s):
    _, headers, _ = s.curl_bytes("/static/app.js")
    etag = headers.get("etag", "")
    check("static_answer_has_a_strong_etag", re.fullmatch(r'"[^"]+"', etag), headers)
    status, headers304, body = s.curl_bytes("/static/app.js", "-H", "If-None-Match: " + etag)
    check("static_if_none_match_with_the_etag_is_304", status == 304 and headers304.get("etag") == etag,
          (status, headers304))
    head, rest = raw_answer(s, "GET", "/static/app.js", "If-None-Match: " + etag)
    check("static_304_has_no_body", head.startswith("HTTP/1.1 304") and rest == b"" and body == b"", (head, rest[:40]))
    status, _, body = s.curl_bytes("/static/app.js", "-H", 'If-None-Match: "another"')
    check("static_if_none_match_with_another_etag_is_200", status == 200 and body == static_file("app.js"), status)


def test_static_head_is_get_without_the_body(s):
    # RFC 9110 §9.3.2: the same header fields as GET, and no content
    _, get_headers, _ = s.curl_bytes("/static/logo.png")
    _, head_headers, _ = s.curl_bytes("/static/logo.png", "-I")
    del get_headers["date"], head_headers["date"]
    check("static_head_has_the_headers_of_get", head_headers == get_headers, (head_headers, get_headers))
    head, rest = raw_answer(s, "HEAD", "/static/logo.png")
    check("static_head_sends_no_body", head.startswith("HTTP/1.1 200") and rest == b"", (head, rest[:40]))


def test_static_range_is_206_with_those_bytes(s):
    whole = static_file("app.js")
    status, headers, body = s.curl_bytes("/static/app.js", "-r", "0-9")
    check("static_range_0_9_is_206", status == 206 and headers.get("content-range") == "bytes 0-9/%d" % len(whole),
          (status, headers))
    check("static_range_0_9_is_the_first_10_bytes", body == whole[:10], body)


def test_static_gzip_sibling_for_a_client_that_accepts_it(s):
    status, headers, body = s.curl_bytes("/static/style.css", "-H", "Accept-Encoding: gzip")
    check("static_gzip_answer_is_content_encoding_gzip", status == 200 and
          headers.get("content-encoding") == "gzip" and headers.get("content-type") == "text/css; charset=utf-8",
          (status, headers))
    check("static_gzip_answer_varies_by_accept_encoding", headers.get("vary") == "Accept-Encoding", headers)
    check("static_gzip_answer_gunzips_to_the_file", gzip.decompress(body) == static_file("style.css"), short(body))
    _, plain, body = s.curl_bytes("/static/style.css")
    check("static_without_accept_encoding_is_the_file_itself", "content-encoding" not in plain and
          body == static_file("style.css"), plain)


def test_static_folder_without_slash_redirects(s):
    status, headers, body = s.curl_bytes("/static")
    check("static_prefix_alone_is_301_to_the_folder", status == 301 and headers.get("location") == "/static/",
          (status, headers, body))


def test_static_post_is_405_with_allow(s):
    status, headers, _ = s.curl_bytes("/static/app.js", "-X", "POST")
    check("static_post_is_405", status == 405 and headers.get("allow") == "GET, HEAD, OPTIONS", (status, headers))


def test_refuses_to_start_without_a_key(binary):
    env = {k: v for k, v in os.environ.items() if k != "MW_SECRET_KEY"}
    env.update(PORT="0", HOST=HOST)
    out = subprocess.run(command_for(binary), env=env, capture_output=True, text=True, timeout=T(20))
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    check("site_without_a_key_does_not_start", out.returncode != 0, out.returncode)
    check("site_without_a_key_says_why_in_one_line",
          any("sessions need a secret key: set MW_SECRET_KEY" in line for line in lines), lines)


def test_static_dir_comes_from_the_environment(binary):
    with tempfile.TemporaryDirectory() as d:
        for name, text in (("hello.txt", "hello from STATIC_DIR\n"), (".secret", "not for the web\n")):
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        server = Server(command_for(binary), {"MW_SECRET_KEY": KEY, "STATIC_DIR": d})
        try:
            if check("site_with_static_dir_starts", server.wait_ready(), server.stderr_text()):
                s = Site(server)
                status, _, body = s.curl_bytes("/static/hello.txt")
                check("static_dir_file_is_served", status == 200 and body == b"hello from STATIC_DIR\n", (status, body))
                status, _, _ = s.curl_bytes("/static/style.css")
                check("static_dir_replaces_the_default_folder", status == 404, status)
                status, _, _ = s.curl_bytes("/static/.secret")
                check("static_dotfile_is_404", status == 404, status)
        finally:
            server.kill()
    env = dict(os.environ, MW_SECRET_KEY=KEY, STATIC_DIR=os.path.join(ROOT, "no-such-folder"), PORT="0", HOST=HOST)
    try:
        out = subprocess.run(command_for(binary), env=env, capture_output=True, text=True, timeout=T(20))
    except subprocess.TimeoutExpired:
        check("site_with_a_missing_static_dir_does_not_start", False, "still serving after %ss" % T(20))
        return
    check("site_with_a_missing_static_dir_does_not_start", out.returncode != 0, out.returncode)
    check("site_with_a_missing_static_dir_says_why", "cannot open folder" in out.stderr and "no-such-folder" in out.stderr,
          out.stderr)


def test_a_template_with_a_syntax_error_stops_the_site(binary):
    """The pages are templates compiled before serving: a broken one is one line with
    its file, line and column, and the site does not start."""
    with tempfile.TemporaryDirectory() as d:
        for name in ("layout.html", "login_form.html", "home.html"):
            shutil.copy(os.path.join(ROOT, "examples", "site", "templates", name), d)
        with open(os.path.join(d, "login_form.html"), "a") as f:
            f.write("<p>{{#error}}never closed</p>\n")
        env = dict(os.environ, MW_SECRET_KEY=KEY, TEMPLATES_DIR=d, PORT="0", HOST=HOST)
        try:
            out = subprocess.run(command_for(binary), env=env, capture_output=True, text=True, timeout=T(20))
        except subprocess.TimeoutExpired:
            check("site_with_a_broken_template_does_not_start", False, "still serving after %ss" % T(20))
            return
        lines = len(open(os.path.join(d, "login_form.html")).read().splitlines())
        want = "microweb: template %s/login_form.html:%d:4: a section that is not closed" % (d, lines)
    check("site_with_a_broken_template_does_not_start", out.returncode != 0, out.returncode)
    check("site_with_a_broken_template_says_where", want in out.stderr.splitlines(), (want, out.stderr))


TESTS = [test_home_page_has_a_login_form_with_a_csrf_token, test_security_headers_on_every_answer,
         test_login_with_curl_sets_the_session_and_redirects_to_me, test_me_without_a_session_is_401,
         test_wrong_password_is_401_with_the_form, test_browser_flow_needs_the_forms_token,
         test_cross_site_posts_are_refused, test_api_time_is_cors_enabled_for_its_origin,
         test_static_files_have_their_types_and_bytes, test_static_etag_revalidates_to_an_empty_304,
         test_static_head_is_get_without_the_body, test_static_range_is_206_with_those_bytes,
         test_static_gzip_sibling_for_a_client_that_accepts_it, test_static_folder_without_slash_redirects,
         test_static_post_is_405_with_allow]


def main(argv):
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[3], file=sys.stderr)
        return 2
    binary = os.path.abspath(argv[0]) if os.path.isfile(argv[0]) else argv[0]
    os.chdir(ROOT)
    server = Server(command_for(binary), {"MW_SECRET_KEY": KEY, "CORS_ORIGIN": ORIGIN, "MW_THREADS": "2"})
    try:
        if check("site_starts_and_reports_port", server.wait_ready(), server.stderr_text()):
            s = Site(server)
            run_each(TESTS, s)
    finally:
        server.kill()
    test_refuses_to_start_without_a_key(binary)
    test_static_dir_comes_from_the_environment(binary)
    test_a_template_with_a_syntax_error_stops_the_site(binary)
    print("%d passed, %d failed" % (Tally.passed, Tally.failed), flush=True)
    return 0 if Tally.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
