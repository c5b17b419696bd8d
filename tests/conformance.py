#!/usr/bin/env python3
"""Raw-socket HTTP/1.1 conformance cases (RFC 9112, RFC 9110 sections 5-6 and the
parts of 7-10 the message layer depends on) for microweb's test app.

Usage:  python3 tests/conformance.py TESTAPP_BINARY        microweb: PASS/FAIL per case
        python3 tests/conformance.py --port N              a server already running on
                                                           127.0.0.1:N: a table of what it did
        either with [--only SUBSTRING] to run the cases whose name contains it.

TESTAPP_BINARY is tests/testapp.c built; it is started with PORT=0 (and E2E_WRAPPER in
front, as tests/e2e.py does) and stopped with SIGTERM at the end.

Every case is one row of CASES: a name that says the behaviour, the RFC clause, the raw
request bytes, the expected status, and whether the server must close the connection
afterwards. For each case the suite checks, against microweb:
  1. the status code (and, where the row says so, the body or a header; an error status
     must come with microweb's JSON body {"status":N,"error":"...","detail":"..."});
  2. the connection: a "close" row must see the response end with "Connection: close"
     and then EOF (microweb does a lingering close, so this reads until EOF); a
     "keep" row must be able to send a second, well-formed request on the same
     connection and get 200;
  3. the server still serves: a fresh connection then gets 200 for GET /.
Output: one line per case, "PASS name" or "FAIL name: detail", then "N passed, N failed";
exit status 0 when nothing failed. A server that does not exit 0 after SIGTERM adds one
more FAIL line (server_exits_cleanly_after_sigterm).

With --port the same requests go to another server (say nginx, for comparison). It is
not judged: the suite prints, per case, the status and connection behaviour observed
next to what microweb is expected to do, as a Markdown table, then how many differ.

Every socket has a timeout; E2E_TIMEOUT_SCALE (float, default 1) scales them all.
"""
import json
import os
import socket
import sys
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import HOST, Reader, Server, T, Tally, allow_has, check, command_for, short  # noqa: E402

IO_TIMEOUT = 3.0  # seconds (scaled) to wait for a response or for EOF
HELLO = b"Hello, World!"
BODY_LIMIT = 8 << 20  # testapp's MW_LIMIT_BODY_BYTES
H = b"Host: 127.0.0.1"  # the Host field line most requests carry
FOLLOW_UP = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"  # the second request on a kept connection


# ---------------------------------------------------------------------------
# request builders
# ---------------------------------------------------------------------------
def req(line, *fields, body=b"", host=True):
    """A request: the request line, a Host field line (H; or the given line; none when
    host=False), the field lines, the blank line, then body. Lines have no CRLF."""
    host_line = H if host is True else host
    lines = [line] + ([host_line] if host_line else []) + list(fields)
    return b"".join(x + b"\r\n" for x in lines) + b"\r\n" + body


def get(target=b"/", *fields, version=b"HTTP/1.1", host=True):
    """GET target, with H or the given Host line (none when host=False)."""
    return req(b"GET " + target + b" " + version, *fields, host=host)


def echo(body, *fields):
    """POST /echo framed by Content-Length."""
    return req(b"POST /echo HTTP/1.1", b"Content-Length: %d" % len(body), *fields, body=body)


def echo_cl(value, body=b"hello", *fields):
    """POST /echo with a given raw Content-Length field value."""
    return req(b"POST /echo HTTP/1.1", b"Content-Length: " + value, *fields, body=body)


def echo_te(chunked_body, *fields, te=b"Transfer-Encoding: chunked", version=b"HTTP/1.1"):
    """POST /echo with a Transfer-Encoding field line and a raw (chunked) body."""
    return req(b"POST /echo " + version, te, *fields, body=chunked_body)


def chunked(*pieces, trailer=b""):
    """A well-formed chunked body carrying the given data pieces."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n" + trailer + b"\r\n"


HELLO_CHUNKED = chunked(b"hello")


# ---------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------
@dataclass
class Case:
    name: str
    rfc: str
    raw: bytes
    status: int
    close: bool
    body: bytes = None  # the expected body (microweb's test app), when it proves something
    headers: dict = None  # expected response header values (or predicates)
    interim: int = None  # a 1xx that must come before `then` is sent
    then: bytes = b""  # sent after the interim response
    no_interim: bool = False  # a 1xx response is wrong here
    more: list = field(default_factory=list)  # (status, body) of pipelined responses after the first


KEEP, CLOSE = False, True


def C(name, rfc, raw, status, close, **kw):
    return Case(name, rfc, raw, status, close, **kw)


def many_fields(n):
    """n header field lines in all, Host included."""
    return [b"X-F%d: v" % i for i in range(n - 1)]


def pad_fields(size):
    """Field lines (Host and one X-Pad) of exactly `size` bytes, each line's CRLF included."""
    return [b"X-Pad: " + b"a" * (size - len(H) - 2 - len(b"X-Pad: ") - 2)]


def request_line_of(size):
    """GET /?aaa... HTTP/1.1 with the line (CRLF included) exactly `size` bytes long."""
    return b"GET /?" + b"a" * (size - len(b"GET /?") - len(b" HTTP/1.1\r\n")) + b" HTTP/1.1"


TCHARS = b"!#$%&'*+-.^_`|~09AZaz"
BIG_CHUNK = 4 << 20

CASES = [
    # ---- request line: RFC 9112 §3 and RFC 9110 §9.1 (method), §2.3 (version), §3.2 (target)
    C("baseline_get_root", "RFC 9112 §3", get(), 200, KEEP, body=HELLO),
    C("unknown_method_token_gets_405_not_400", "RFC 9110 §9.1, §15.5.6", req(b"M-SEARCH / HTTP/1.1"),
      405, KEEP, headers={"Allow": allow_has("GET", "HEAD")}),
    C("unknown_method_on_unknown_path_gets_404", "RFC 9110 §9.1, §15.5.5", req(b"M-SEARCH /no/such HTTP/1.1"),
      404, KEEP),
    C("method_may_use_every_tchar", "RFC 9110 §5.6.2, §9.1", req(TCHARS + b" /anything HTTP/1.1"), 200, KEEP,
      body=TCHARS),
    C("method_is_case_sensitive", "RFC 9110 §9.1", req(b"get / HTTP/1.1"), 405, KEEP),
    C("rejects_method_with_non_tchar", "RFC 9112 §3, RFC 9110 §5.6.2", req(b"GE@T / HTTP/1.1"), 400, CLOSE),
    C("rejects_method_with_non_ascii_byte", "RFC 9112 §3", req(b"G\xc9T / HTTP/1.1"), 400, CLOSE),
    C("rejects_leading_space_before_method", "RFC 9112 §3", req(b" GET / HTTP/1.1"), 400, CLOSE),
    C("rejects_two_spaces_after_method", "RFC 9112 §3", req(b"GET  / HTTP/1.1"), 400, CLOSE),
    C("rejects_two_spaces_before_version", "RFC 9112 §3", req(b"GET /  HTTP/1.1"), 400, CLOSE),
    C("rejects_tab_after_method", "RFC 9112 §3", req(b"GET\t/ HTTP/1.1"), 400, CLOSE),
    C("rejects_tab_before_version", "RFC 9112 §3", req(b"GET /\tHTTP/1.1"), 400, CLOSE),
    C("rejects_trailing_space_after_version", "RFC 9112 §3", req(b"GET / HTTP/1.1 "), 400, CLOSE),
    C("rejects_request_line_without_version", "RFC 9112 §3", req(b"GET /"), 400, CLOSE),
    C("rejects_request_line_without_target", "RFC 9112 §3", req(b"GET HTTP/1.1"), 400, CLOSE),
    C("serves_http_1_0", "RFC 9112 §2.3", get(b"/users/10", version=b"HTTP/1.0"), 200, CLOSE, body=b'{"id":"10"}'),
    C("http_1_2_is_processed_as_http_1_1", "RFC 9110 §2.5, §15.6.6", get(version=b"HTTP/1.2"), 200, KEEP,
      body=HELLO),
    C("http_2_0_gets_505", "RFC 9110 §15.6.6", get(version=b"HTTP/2.0"), 505, CLOSE),
    C("http_3_0_gets_505", "RFC 9110 §15.6.6", get(version=b"HTTP/3.0"), 505, CLOSE),
    C("http_0_9_version_gets_505", "RFC 9110 §15.6.6", get(version=b"HTTP/0.9"), 505, CLOSE),
    C("rejects_version_without_minor", "RFC 9112 §2.3", get(version=b"HTTP/1"), 400, CLOSE),
    C("rejects_lowercase_http_name", "RFC 9112 §2.3", get(version=b"http/1.1"), 400, CLOSE),
    C("rejects_two_digit_major_version", "RFC 9112 §2.3", get(version=b"HTTP/01.1"), 400, CLOSE),
    C("rejects_two_digit_minor_version", "RFC 9112 §2.3", get(version=b"HTTP/1.10"), 400, CLOSE),
    C("rejects_non_digit_version", "RFC 9112 §2.3", get(version=b"HTTP/1.x"), 400, CLOSE),
    C("accepts_absolute_form", "RFC 9112 §3.2.2", get(b"http://127.0.0.1/"), 200, KEEP, body=HELLO),
    C("absolute_form_path_is_routed", "RFC 9112 §3.2.2", get(b"http://127.0.0.1/users/7"), 200, KEEP,
      body=b'{"id":"7"}'),
    C("absolute_form_scheme_is_case_insensitive", "RFC 9112 §3.2.2, RFC 9110 §4.2.3", get(b"HTTP://127.0.0.1/"),
      200, KEEP, body=HELLO),
    C("absolute_form_with_empty_path_means_root", "RFC 9112 §3.2.2, RFC 9110 §4.2.3", get(b"http://127.0.0.1"),
      200, KEEP, body=HELLO),
    C("absolute_form_still_needs_host", "RFC 9112 §3.2", get(b"http://127.0.0.1/", host=False), 400, CLOSE),
    C("accepts_options_asterisk", "RFC 9112 §3.2.4", req(b"OPTIONS * HTTP/1.1"), 200, KEEP,
      headers={"Allow": allow_has("GET")}),
    C("rejects_asterisk_form_for_get", "RFC 9112 §3.2.4", get(b"*"), 400, CLOSE),
    C("rejects_target_not_starting_with_slash", "RFC 9112 §3.2.1", get(b"users/7"), 400, CLOSE),
    C("rejects_fragment_in_target", "RFC 9112 §3.2, RFC 9110 §4.1", get(b"/#top"), 400, CLOSE),
    C("rejects_non_ascii_byte_in_target", "RFC 9112 §3.2", get(b"/caf\xc3\xa9"), 400, CLOSE),
    C("rejects_control_byte_in_target", "RFC 9112 §3.2", get(b"/a\x01b"), 400, CLOSE),
    C("rejects_nul_in_target", "RFC 9112 §3.2", get(b"/a\x00b"), 400, CLOSE),
    C("rejects_del_in_target", "RFC 9112 §3.2", get(b"/a\x7fb"), 400, CLOSE),
    C("query_is_part_of_origin_form", "RFC 9112 §3.2.1", get(b"/query?a=1&b=%20"), 200, KEEP, body=b"a=1&b=%20"),
    C("percent_encoded_path_is_decoded_for_params", "RFC 9112 §3.2.1", get(b"/users/a%20b"), 200, KEEP,
      body=b'{"id":"a b"}'),
    C("accepts_request_line_of_8192_bytes", "RFC 9112 §3", req(request_line_of(8192)), 200, KEEP, body=HELLO),
    C("request_line_over_8192_bytes_gets_414", "RFC 9112 §3, RFC 9110 §15.5.15", req(request_line_of(8193)),
      414, CLOSE),
    C("target_of_16_kib_gets_414", "RFC 9112 §3, RFC 9110 §15.5.15", get(b"/" + b"a" * 16384), 414, CLOSE),
    C("ignores_empty_line_before_request_line", "RFC 9112 §2.2", b"\r\n" + get(), 200, KEEP, body=HELLO),
    C("ignores_several_empty_lines_before_request_line", "RFC 9112 §2.2", b"\r\n\r\n\r\n" + get(), 200, KEEP,
      body=HELLO),
    C("rejects_bare_lf_before_request_line", "RFC 9112 §2.2", b"\n" + get(), 400, CLOSE),
    C("rejects_bare_lf_ending_request_line", "RFC 9112 §2.2", b"GET / HTTP/1.1\nHost: 127.0.0.1\r\n\r\n", 400,
      CLOSE),
    C("rejects_bare_cr_ending_request_line", "RFC 9112 §2.2", b"GET / HTTP/1.1\rHost: 127.0.0.1\r\n\r\n", 400,
      CLOSE),
    C("rejects_bare_cr_in_target", "RFC 9112 §2.2", get(b"/a\rb"), 400, CLOSE),
    C("absolute_form_with_port", "RFC 9112 §3.2.2", get(b"http://127.0.0.1:8080/"), 200, KEEP, body=HELLO),
    C("absolute_form_with_query", "RFC 9112 §3.2.2", get(b"http://127.0.0.1/query?x=1"), 200, KEEP, body=b"x=1"),
    C("rejects_authority_form_for_get", "RFC 9112 §3.2.3", get(b"127.0.0.1:80"), 400, CLOSE),
    C("host_is_the_host_field_for_origin_form", "RFC 9112 §3.2", get(b"/host", host=b"Host: evil.example"), 200,
      KEEP, body=b"evil.example"),
    C("absolute_form_authority_replaces_host", "RFC 9112 §3.2.2",
      get(b"http://good.example/host", host=b"Host: evil.example"), 200, KEEP, body=b"good.example"),
    C("absolute_form_authority_with_port_replaces_host", "RFC 9112 §3.2.2",
      get(b"http://good.example:8080/host?x", host=b"Host: evil.example"), 200, KEEP, body=b"good.example:8080"),
    C("rejects_absolute_form_with_empty_host", "RFC 9110 §4.2.1, §4.2.2", get(b"http:///host"), 400, CLOSE),
    C("rejects_absolute_form_with_port_but_no_host", "RFC 9110 §4.2.1, §4.2.2", get(b"http://:80/host"), 400,
      CLOSE),
    C("rejects_absolute_form_with_userinfo", "RFC 9110 §4.2.4", get(b"http://user:pw@good.example/host"), 400,
      CLOSE),
    C("rejects_absolute_form_with_byte_outside_host_grammar", "RFC 3986 §3.2.2", get(b"http://good<example/host"),
      400, CLOSE),

    # ---- header fields: RFC 9112 §5, RFC 9110 §5.1, §5.5, §5.6
    C("field_value_ows_is_trimmed", "RFC 9112 §5.1, RFC 9110 §5.5", get(b"/header", b"X-Probe: \t hello \t "),
      200, KEEP, body=b"hello"),
    C("field_value_without_leading_ows", "RFC 9112 §5.1", get(b"/header", b"X-Probe:hello"), 200, KEEP,
      body=b"hello"),
    C("field_name_is_case_insensitive", "RFC 9110 §5.1", get(b"/header", b"x-PROBE: v"), 200, KEEP, body=b"v"),
    C("htab_inside_field_value_is_kept", "RFC 9110 §5.5", get(b"/header", b"X-Probe: a\tb"), 200, KEEP,
      body=b"a\tb"),
    C("obs_text_in_field_value_is_kept", "RFC 9110 §5.5", get(b"/header", b"X-Probe: caf\xe9 \xff"), 200, KEEP,
      body=b"caf\xe9 \xff"),
    C("empty_field_value_is_accepted", "RFC 9110 §5.5", get(b"/header", b"X-Probe:"), 200, KEEP, body=b""),
    C("rejects_space_inside_field_name", "RFC 9112 §5, RFC 9110 §5.1", get(b"/", b"Hea der: v"), 400, CLOSE),
    C("rejects_at_sign_in_field_name", "RFC 9112 §5, RFC 9110 §5.6.2", get(b"/", b"Header@: v"), 400, CLOSE),
    C("rejects_non_ascii_byte_in_field_name", "RFC 9112 §5, RFC 9110 §5.6.2", get(b"/", b"X-\xe9: v"), 400, CLOSE),
    C("rejects_space_before_colon", "RFC 9112 §5.1", get(b"/", b"X-Probe : v"), 400, CLOSE),
    C("rejects_tab_before_colon", "RFC 9112 §5.1", get(b"/", b"X-Probe\t: v"), 400, CLOSE),
    C("rejects_empty_field_name", "RFC 9112 §5", get(b"/", b": v"), 400, CLOSE),
    C("rejects_field_line_without_colon", "RFC 9112 §5", get(b"/", b"NoColonHere"), 400, CLOSE),
    C("rejects_obs_fold", "RFC 9112 §5.2", get(b"/header", b"X-Probe: a", b" b"), 400, CLOSE),
    C("rejects_obs_fold_with_tab", "RFC 9112 §5.2", get(b"/header", b"X-Probe: a", b"\tb"), 400, CLOSE),
    C("rejects_whitespace_before_first_field", "RFC 9112 §2.2", b"GET / HTTP/1.1\r\n Host: 127.0.0.1\r\n\r\n",
      400, CLOSE),
    C("rejects_bare_cr_in_field_value", "RFC 9112 §2.2, RFC 9110 §5.5", get(b"/", b"X-Probe: a\rb"), 400, CLOSE),
    C("rejects_bare_lf_in_field_value", "RFC 9112 §2.2, RFC 9110 §5.5", get(b"/", b"X-Probe: a\nb"), 400, CLOSE),
    C("rejects_bare_lf_ending_field_line", "RFC 9112 §2.2", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\nX: y\r\n\r\n",
      400, CLOSE),
    C("rejects_bare_lf_ending_field_section", "RFC 9112 §2.2", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\n", 400,
      CLOSE),
    C("rejects_nul_in_field_value", "RFC 9110 §5.5", get(b"/", b"X-Probe: a\x00b"), 400, CLOSE),
    C("rejects_control_byte_in_field_value", "RFC 9110 §5.5", get(b"/", b"X-Probe: a\x01b"), 400, CLOSE),
    C("rejects_escape_byte_in_field_value", "RFC 9110 §5.5", get(b"/", b"X-Probe: a\x1b[31mb"), 400, CLOSE),
    C("rejects_del_in_field_value", "RFC 9110 §5.5", get(b"/", b"X-Probe: a\x7fb"), 400, CLOSE),
    C("accepts_100_field_lines", "RFC 6585 §5 (limit: 100 fields)", get(b"/", *many_fields(100)), 200,
      KEEP, body=HELLO),
    C("field_line_101_gets_431", "RFC 6585 §5 (limit: 100 fields)", get(b"/", *many_fields(101)), 431, CLOSE),
    C("accepts_16_kib_field_section", "RFC 6585 §5 (limit: 16384 bytes)", get(b"/", *pad_fields(16384)), 200,
      KEEP, body=HELLO),
    C("field_section_over_16_kib_gets_431", "RFC 6585 §5 (limit: 16384 bytes)", get(b"/", *pad_fields(16385)),
      431, CLOSE),
    C("single_20_kib_field_gets_431", "RFC 6585 §5", get(b"/", b"X-Big: " + b"b" * 20480), 431, CLOSE),
    C("rejects_http_1_1_without_host", "RFC 9112 §3.2", get(host=False), 400, CLOSE),
    C("rejects_two_host_fields", "RFC 9112 §3.2", get(b"/", b"Host: 127.0.0.1"), 400, CLOSE),
    C("rejects_two_host_fields_in_http_1_0", "RFC 9112 §3.2", get(b"/", H, version=b"HTTP/1.0"), 400, CLOSE),
    C("http_1_0_without_host_is_served", "RFC 9112 §3.2", get(version=b"HTTP/1.0", host=False), 200, CLOSE),
    C("accepts_empty_host", "RFC 9112 §3.2, RFC 9110 §7.2", get(host=b"Host:"),
      200, KEEP, body=HELLO),
    C("accepts_host_with_port", "RFC 9110 §7.2", get(host=b"Host: 127.0.0.1:80"),
      200, KEEP),
    C("accepts_host_ipv6_literal", "RFC 9110 §7.2, RFC 3986 §3.2.2",
      get(host=b"Host: [::1]:8080"), 200, KEEP),
    C("rejects_host_with_space", "RFC 9112 §3.2, RFC 9110 §7.2",
      get(host=b"Host: exa mple.com"), 400, CLOSE),
    C("rejects_host_with_slash", "RFC 9112 §3.2, RFC 9110 §7.2",
      get(host=b"Host: 127.0.0.1/admin"), 400, CLOSE),

    # ---- message body length: RFC 9112 §6, RFC 9110 §8.6
    C("content_length_body_is_echoed", "RFC 9112 §6.2", echo(b"hello"), 200, KEEP, body=b"hello"),
    C("content_length_zero_is_empty_body", "RFC 9112 §6.2", echo_cl(b"0", b""), 200, KEEP, body=b""),
    C("post_without_length_has_empty_body", "RFC 9112 §6.3", req(b"POST /echo HTTP/1.1"), 200, KEEP, body=b""),
    C("content_length_leading_zeros", "RFC 9110 §8.6", echo_cl(b"005"), 200, KEEP, body=b"hello"),
    C("content_length_surrounding_ows", "RFC 9112 §5.1, RFC 9110 §8.6", echo_cl(b" \t5 \t"), 200, KEEP,
      body=b"hello"),
    C("rejects_content_length_plus_sign", "RFC 9110 §8.6, RFC 9112 §6.3", echo_cl(b"+5"), 400, CLOSE),
    C("rejects_content_length_minus_sign", "RFC 9110 §8.6, RFC 9112 §6.3", echo_cl(b"-5"), 400, CLOSE),
    C("rejects_content_length_inner_space", "RFC 9110 §8.6, RFC 9112 §6.3", echo_cl(b"5 5"), 400, CLOSE),
    C("rejects_content_length_hex", "RFC 9110 §8.6, RFC 9112 §6.3", echo_cl(b"0x5"), 400, CLOSE),
    C("rejects_content_length_decimal_point", "RFC 9110 §8.6, RFC 9112 §6.3", echo_cl(b"5.0"), 400, CLOSE),
    C("rejects_content_length_exponent", "RFC 9110 §8.6, RFC 9112 §6.3", echo_cl(b"1e3"), 400, CLOSE),
    C("rejects_content_length_letters", "RFC 9110 §8.6, RFC 9112 §6.3", echo_cl(b"five"), 400, CLOSE),
    C("rejects_empty_content_length", "RFC 9110 §8.6, RFC 9112 §6.3", echo_cl(b""), 400, CLOSE),
    C("rejects_content_length_trailing_comma", "RFC 9110 §8.6, RFC 9112 §6.3", echo_cl(b"5,"), 400, CLOSE),
    C("accepts_content_length_list_of_equal_values", "RFC 9110 §8.6", echo_cl(b"5, 5"), 200, KEEP, body=b"hello"),
    C("accepts_repeated_equal_content_length_fields", "RFC 9110 §8.6",
      req(b"POST /echo HTTP/1.1", b"Content-Length: 5", b"Content-Length: 5", body=b"hello"), 200, KEEP,
      body=b"hello"),
    C("rejects_content_length_list_of_different_values", "RFC 9112 §6.3", echo_cl(b"5, 6"), 400, CLOSE),
    C("rejects_different_content_length_fields", "RFC 9112 §6.3",
      req(b"POST /echo HTTP/1.1", b"Content-Length: 5", b"Content-Length: 6", body=b"hello"), 400, CLOSE),
    C("rejects_content_length_of_20_digits", "RFC 9110 §8.6, RFC 9112 §6.3", echo_cl(b"99999999999999999999"),
      400, CLOSE),
    C("rejects_content_length_of_2_pow_63", "RFC 9110 §8.6, RFC 9112 §6.3", echo_cl(b"9223372036854775808"),
      400, CLOSE),
    C("content_length_of_18_digits_gets_413", "RFC 9110 §15.5.14", echo_cl(b"999999999999999999", b""), 413,
      CLOSE),
    C("content_length_over_limit_gets_413_before_body", "RFC 9110 §15.5.14",
      echo_cl(b"%d" % (BODY_LIMIT + 1), b""), 413, CLOSE),
    C("accepts_body_of_exactly_the_limit", "RFC 9112 §6.2 (limit: 8 MiB)", echo(b"z" * BODY_LIMIT), 200, KEEP,
      body=b"z" * BODY_LIMIT),
    C("body_of_get_is_read_and_dropped", "RFC 9112 §6.3, RFC 9110 §9.3.1",
      req(b"GET / HTTP/1.1", b"Content-Length: 5", body=b"hello") + get(b"/users/2"), 200, KEEP, body=HELLO,
      more=[(200, b'{"id":"2"}')]),
    C("content_length_frames_the_next_request", "RFC 9112 §6.2, §9.3",
      echo_cl(b"3", b"abc" + get(b"/users/x")), 200, KEEP, body=b"abc", more=[(200, b'{"id":"x"}')]),
    C("rejects_content_length_then_transfer_encoding", "RFC 9112 §6.1, §6.3",
      req(b"POST /echo HTTP/1.1", b"Content-Length: 5", b"Transfer-Encoding: chunked", body=HELLO_CHUNKED),
      400, CLOSE),
    C("rejects_transfer_encoding_then_content_length", "RFC 9112 §6.1, §6.3",
      req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: chunked", b"Content-Length: 5", body=HELLO_CHUNKED),
      400, CLOSE),
    C("rejects_transfer_encoding_with_content_length_zero", "RFC 9112 §6.1, §6.3",
      req(b"POST /echo HTTP/1.1", b"Content-Length: 0", b"Transfer-Encoding: chunked", body=HELLO_CHUNKED),
      400, CLOSE),
    C("chunked_body_is_decoded", "RFC 9112 §7.1", echo_te(HELLO_CHUNKED), 200, KEEP, body=b"hello"),
    C("chunked_body_of_several_chunks", "RFC 9112 §7.1", echo_te(chunked(b"hello", b" ", b"world")), 200, KEEP,
      body=b"hello world"),
    C("chunked_empty_body", "RFC 9112 §7.1", echo_te(b"0\r\n\r\n"), 200, KEEP, body=b""),
    C("chunked_coding_name_is_case_insensitive", "RFC 9112 §7",
      echo_te(HELLO_CHUNKED, te=b"Transfer-Encoding: ChUnKeD"), 200, KEEP, body=b"hello"),
    C("chunk_size_uppercase_hex", "RFC 9112 §7.1", echo_te(b"A\r\n0123456789\r\n0\r\n\r\n"), 200, KEEP,
      body=b"0123456789"),
    C("chunk_size_lowercase_hex", "RFC 9112 §7.1", echo_te(b"a\r\n0123456789\r\n0\r\n\r\n"), 200, KEEP,
      body=b"0123456789"),
    C("chunk_size_leading_zeros", "RFC 9112 §7.1", echo_te(b"0005\r\nhello\r\n0\r\n\r\n"), 200, KEEP,
      body=b"hello"),
    C("chunk_size_of_15_hex_digits", "RFC 9112 §7.1", echo_te(b"000000000000005\r\nhello\r\n0\r\n\r\n"), 200, KEEP,
      body=b"hello"),
    C("rejects_chunk_size_of_16_hex_digits", "RFC 9112 §7.1 (overflow guard)",
      echo_te(b"0000000000000005\r\nhello\r\n0\r\n\r\n"), 400, CLOSE),
    C("rejects_chunk_size_that_overflows_64_bits", "RFC 9112 §7.1", echo_te(b"1" + b"0" * 16 + b"\r\nhello\r\n"),
      400, CLOSE),
    C("rejects_chunk_size_with_0x_prefix", "RFC 9112 §7.1", echo_te(b"0x5\r\nhello\r\n0\r\n\r\n"), 400, CLOSE),
    C("rejects_negative_chunk_size", "RFC 9112 §7.1", echo_te(b"-5\r\nhello\r\n0\r\n\r\n"), 400, CLOSE),
    C("rejects_empty_chunk_size", "RFC 9112 §7.1", echo_te(b"\r\nhello\r\n0\r\n\r\n"), 400, CLOSE),
    C("rejects_chunk_size_with_leading_space", "RFC 9112 §7.1", echo_te(b" 5\r\nhello\r\n0\r\n\r\n"), 400, CLOSE),
    C("rejects_chunk_size_with_trailing_space", "RFC 9112 §7.1.1", echo_te(b"5 \r\nhello\r\n0\r\n\r\n"), 400, CLOSE),
    C("rejects_non_hex_chunk_size", "RFC 9112 §7.1", echo_te(b"g\r\nhello\r\n0\r\n\r\n"), 400, CLOSE),
    C("chunk_extension_is_dropped", "RFC 9112 §7.1.1", echo_te(b"5;a=b\r\nhello\r\n0\r\n\r\n"), 200, KEEP,
      body=b"hello"),
    C("chunk_extension_with_quoted_value", "RFC 9112 §7.1.1", echo_te(b'5;a="q s"\r\nhello\r\n0\r\n\r\n'), 200, KEEP,
      body=b"hello"),
    C("chunk_extension_without_value", "RFC 9112 §7.1.1", echo_te(b"5;flag\r\nhello\r\n0\r\n\r\n"), 200, KEEP,
      body=b"hello"),
    C("chunk_extension_after_bws", "RFC 9112 §7.1.1", echo_te(b"5 ;a=b\r\nhello\r\n0\r\n\r\n"), 200, KEEP,
      body=b"hello"),
    C("several_chunk_extensions", "RFC 9112 §7.1.1", echo_te(b"5;a=1;b=2\r\nhello\r\n0;last=1\r\n\r\n"), 200, KEEP,
      body=b"hello"),
    C("chunk_extension_of_1000_bytes_accepted", "RFC 9112 §7.1.1 (limit: 1024 bytes)",
      echo_te(b"5;a=" + b"x" * 996 + b"\r\nhello\r\n0\r\n\r\n"), 200, KEEP, body=b"hello"),
    C("chunk_extension_over_1_kib_rejected", "RFC 9112 §7.1.1 (limit: 1024 bytes)",
      echo_te(b"5;a=" + b"x" * 1100 + b"\r\nhello\r\n0\r\n\r\n"), 400, CLOSE,
      body=b'{"status":400,"error":"Bad Request","detail":"chunk extension longer than MW_MAX_CHUNK_EXT_BYTES"}'),
    C("rejects_bare_cr_in_chunk_extension", "RFC 9112 §2.2, §7.1.1", echo_te(b"5;a\rb\r\nhello\r\n0\r\n\r\n"),
      400, CLOSE),
    C("rejects_control_byte_in_chunk_extension", "RFC 9112 §7.1.1", echo_te(b"5;a=\x01\r\nhello\r\n0\r\n\r\n"),
      400, CLOSE),
    C("trailer_fields_are_dropped", "RFC 9112 §7.1.2", echo_te(chunked(b"hello", trailer=b"X-T: 1\r\nX-U: 2\r\n")),
      200, KEEP, body=b"hello"),
    C("trailer_section_over_16_kib_gets_431", "RFC 9112 §7.1.2 (limit: 16384 bytes)",
      echo_te(chunked(b"hello", trailer=b"X-T: " + b"t" * 17000 + b"\r\n")), 431, CLOSE),
    C("rejects_bare_lf_in_trailer", "RFC 9112 §2.2, §7.1.2", echo_te(b"5\r\nhello\r\n0\r\nX-T: 1\n\r\n"), 400, CLOSE),
    C("rejects_chunk_data_not_followed_by_crlf", "RFC 9112 §7.1", echo_te(b"5\r\nhelloX\r\n0\r\n\r\n"), 400, CLOSE),
    C("rejects_chunk_data_longer_than_size", "RFC 9112 §7.1", echo_te(b"3\r\nhello\r\n0\r\n\r\n"), 400, CLOSE),
    C("rejects_lf_only_after_chunk_size", "RFC 9112 §7.1, §2.2", echo_te(b"5\nhello\r\n0\r\n\r\n"), 400, CLOSE),
    C("rejects_lf_only_after_chunk_data", "RFC 9112 §7.1, §2.2", echo_te(b"5\r\nhello\n0\r\n\r\n"), 400, CLOSE),
    C("rejects_lf_only_after_last_chunk", "RFC 9112 §7.1, §2.2", echo_te(b"5\r\nhello\r\n0\n\r\n"), 400, CLOSE),
    C("chunk_size_over_limit_gets_413_at_once", "RFC 9110 §15.5.14", echo_te(b"%x\r\n" % (BODY_LIMIT + 1)), 413,
      CLOSE),
    C("chunks_adding_up_over_limit_get_413", "RFC 9110 §15.5.14",
      echo_te(b"%x\r\n" % BIG_CHUNK + b"c" * BIG_CHUNK + b"\r\n%x\r\n" % (BODY_LIMIT - BIG_CHUNK + 1)), 413, CLOSE),
    C("chunked_frames_the_next_request", "RFC 9112 §7.1, §9.3", echo_te(HELLO_CHUNKED + get(b"/users/c")), 200, KEEP,
      body=b"hello", more=[(200, b'{"id":"c"}')]),
    C("get_with_empty_chunked_body", "RFC 9112 §6.3",
      req(b"GET / HTTP/1.1", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 200, KEEP, body=HELLO),
    C("gzip_then_chunked_gets_501", "RFC 9112 §6.1", echo_te(HELLO_CHUNKED, te=b"Transfer-Encoding: gzip, chunked"),
      501, CLOSE),
    C("gzip_and_chunked_in_two_fields_gets_501", "RFC 9112 §6.1",
      echo_te(HELLO_CHUNKED, b"Transfer-Encoding: chunked", te=b"Transfer-Encoding: gzip"), 501, CLOSE),
    C("rejects_chunked_then_gzip", "RFC 9112 §6.3", echo_te(HELLO_CHUNKED, te=b"Transfer-Encoding: chunked, gzip"),
      400, CLOSE),
    C("rejects_identity_transfer_coding", "RFC 9112 §6.3", echo_te(b"hello", te=b"Transfer-Encoding: identity"),
      400, CLOSE),
    C("rejects_gzip_alone", "RFC 9112 §6.3", echo_te(b"hello", te=b"Transfer-Encoding: gzip"), 400, CLOSE),
    C("rejects_chunked_twice", "RFC 9112 §6.1", echo_te(HELLO_CHUNKED, te=b"Transfer-Encoding: chunked, chunked"),
      400, CLOSE),
    C("rejects_chunked_twice_in_two_fields", "RFC 9112 §6.1",
      echo_te(HELLO_CHUNKED, b"Transfer-Encoding: chunked"), 400, CLOSE),
    C("rejects_empty_transfer_encoding", "RFC 9112 §6.1, §6.3", echo_te(HELLO_CHUNKED, te=b"Transfer-Encoding:"),
      400, CLOSE),
    C("transfer_encoding_list_with_empty_elements", "RFC 9110 §5.6.1.2",
      echo_te(HELLO_CHUNKED, te=b"Transfer-Encoding: , chunked"), 200, KEEP, body=b"hello"),
    C("rejects_space_before_colon_in_transfer_encoding", "RFC 9112 §5.1",
      echo_te(HELLO_CHUNKED, te=b"Transfer-Encoding : chunked"), 400, CLOSE),
    C("rejects_xchunked", "RFC 9112 §6.3", echo_te(HELLO_CHUNKED, te=b"Transfer-Encoding: xchunked"), 400, CLOSE),
    C("rejects_vertical_tab_before_chunked", "RFC 9110 §5.5, RFC 9112 §6.3",
      echo_te(HELLO_CHUNKED, te=b"Transfer-Encoding:\x0bchunked"), 400, CLOSE),
    C("accepts_transfer_encoding_trailing_space", "RFC 9112 §5.1",
      echo_te(HELLO_CHUNKED, te=b"Transfer-Encoding: chunked "), 200, KEEP, body=b"hello"),
    C("accepts_transfer_encoding_leading_tab", "RFC 9112 §5.1",
      echo_te(HELLO_CHUNKED, te=b"Transfer-Encoding:\tchunked"), 200, KEEP, body=b"hello"),
    C("rejects_transfer_encoding_in_http_1_0", "RFC 9112 §6.1", echo_te(HELLO_CHUNKED, version=b"HTTP/1.0"), 400,
      CLOSE),
    C("rejects_transfer_encoding_and_length_in_http_1_0", "RFC 9112 §6.1",
      echo_te(HELLO_CHUNKED, b"Content-Length: 10", version=b"HTTP/1.0"), 400, CLOSE),

    # ---- Expect: RFC 9110 §10.1.1
    C("expect_100_continue_gets_100_before_body", "RFC 9110 §10.1.1",
      req(b"POST /echo HTTP/1.1", b"Content-Length: 5", b"Expect: 100-continue"), 200, KEEP, interim=100,
      then=b"hello", body=b"hello"),
    C("expect_100_continue_is_case_insensitive", "RFC 9110 §10.1.1",
      req(b"POST /echo HTTP/1.1", b"Content-Length: 5", b"Expect: 100-Continue"), 200, KEEP, interim=100,
      then=b"hello", body=b"hello"),
    C("expect_100_continue_with_chunked_body", "RFC 9110 §10.1.1",
      req(b"POST /echo HTTP/1.1", b"Transfer-Encoding: chunked", b"Expect: 100-continue"), 200, KEEP, interim=100,
      then=HELLO_CHUNKED, body=b"hello"),
    C("expect_100_continue_over_limit_gets_413_without_100", "RFC 9110 §10.1.1, §15.5.14",
      req(b"POST /echo HTTP/1.1", b"Content-Length: %d" % (BODY_LIMIT + 1), b"Expect: 100-continue"), 413, CLOSE,
      no_interim=True),
    C("expect_100_continue_ignored_in_http_1_0", "RFC 9110 §10.1.1",
      req(b"POST /echo HTTP/1.0", b"Content-Length: 5", b"Expect: 100-continue", body=b"hello"), 200, CLOSE,
      no_interim=True, body=b"hello"),
    C("expect_100_continue_without_body", "RFC 9110 §10.1.1", get(b"/", b"Expect: 100-continue"), 200, KEEP,
      body=HELLO),
    C("expect_list_with_empty_element_is_100_continue", "RFC 9110 §5.6.1.2, §10.1.1",
      req(b"POST /echo HTTP/1.1", b"Content-Length: 5", b"Expect: 100-continue,"), 200, KEEP, interim=100,
      then=b"hello", body=b"hello"),
    C("empty_expect_is_no_expectation", "RFC 9110 §5.6.1.2, §10.1.1",
      req(b"POST /echo HTTP/1.1", b"Content-Length: 5", b"Expect:", body=b"hello"), 200, KEEP, body=b"hello"),
    C("unknown_expectation_gets_417", "RFC 9110 §10.1.1, §15.5.18",
      req(b"POST /echo HTTP/1.1", b"Content-Length: 5", b"Expect: something-else", body=b"hello"), 417, CLOSE),

    # ---- connection management: RFC 9112 §9
    C("http_1_1_keeps_alive_by_default", "RFC 9112 §9.3", get(b"/users/ka"), 200, KEEP, body=b'{"id":"ka"}'),
    C("http_1_1_connection_close_is_honoured", "RFC 9112 §9.6", get(b"/", b"Connection: close"), 200, CLOSE,
      body=HELLO),
    C("connection_close_is_case_insensitive", "RFC 9112 §9.6, RFC 9110 §7.6.1", get(b"/", b"Connection: CLOSE"),
      200, CLOSE),
    C("connection_close_found_in_a_list", "RFC 9112 §9.6, RFC 9110 §7.6.1", get(b"/", b"Connection: foo, close"),
      200, CLOSE),
    C("connection_option_closed_is_not_close", "RFC 9110 §7.6.1", get(b"/", b"Connection: closed"), 200, KEEP),
    C("http_1_0_closes_by_default", "RFC 9112 §9.3", get(version=b"HTTP/1.0"), 200, CLOSE, body=HELLO),
    C("http_1_0_keep_alive_keeps_open", "RFC 9112 §9.3, Appendix C.2.2",
      get(b"/", b"Connection: keep-alive", version=b"HTTP/1.0", host=False), 200, KEEP,
      headers={"Connection": lambda v: v is not None and v.lower() == "keep-alive"}),
    C("http_1_0_keep_alive_is_case_insensitive", "RFC 9112 §9.3, Appendix C.2.2",
      get(b"/", b"Connection: Keep-Alive", version=b"HTTP/1.0", host=False), 200, KEEP),
    C("http_1_0_close_wins_over_keep_alive", "RFC 9112 §9.3",
      get(b"/", b"Connection: keep-alive, close", version=b"HTTP/1.0", host=False), 200, CLOSE),
    C("pipelined_requests_answered_in_order", "RFC 9112 §9.3.2",
      get(b"/users/1") + echo(b"second") + get(b"/query?third"), 200, KEEP, body=b'{"id":"1"}',
      more=[(200, b"second"), (200, b"third")]),
    C("no_request_processed_after_connection_close", "RFC 9112 §9.6",
      get(b"/", b"Connection: close") + get(b"/users/after"), 200, CLOSE, body=HELLO),
    C("pipelined_good_request_then_bad_one", "RFC 9112 §9.3.2, §3.2",
      get(b"/users/ok") + get(host=False), 200, CLOSE, body=b'{"id":"ok"}', more=[(400, None)]),
    C("nothing_answered_after_a_bad_request", "RFC 9112 §6.3", req(b"GET / HTTP/1.1", b"Content-Length: x") + get(),
      400, CLOSE),

    # ---- methods and automatic answers: RFC 9110 §9.3, §15.5
    C("head_has_get_headers_and_no_body", "RFC 9110 §9.3.2", req(b"HEAD / HTTP/1.1"), 200, KEEP,
      headers={"Content-Length": "13", "Content-Type": lambda v: v is not None and v.startswith("text/plain")}),
    C("head_on_json_route_has_no_body", "RFC 9110 §9.3.2", req(b"HEAD /users/5 HTTP/1.1"), 200, KEEP,
      headers={"Content-Length": "10"}),
    C("head_on_post_only_route_gets_405_without_body", "RFC 9110 §9.3.2, §15.5.6", req(b"HEAD /echo HTTP/1.1"),
      405, KEEP, headers={"Allow": allow_has("POST")}),
    C("unknown_path_gets_404_and_keeps_alive", "RFC 9110 §15.5.5", get(b"/no/such/path"), 404, KEEP),
    C("wrong_method_gets_405_with_allow", "RFC 9110 §15.5.6", req(b"POST / HTTP/1.1", b"Content-Length: 0"), 405,
      KEEP, headers={"Allow": allow_has("GET", "HEAD")}),
    C("delete_on_post_route_gets_405_with_allow", "RFC 9110 §15.5.6", req(b"DELETE /echo HTTP/1.1"), 405, KEEP,
      headers={"Allow": allow_has("POST")}),
    C("body_of_405_request_is_consumed", "RFC 9112 §6.3, RFC 9110 §15.5.6",
      req(b"PUT / HTTP/1.1", b"Content-Length: 5", body=b"hello") + get(b"/users/n"), 405, KEEP,
      more=[(200, b'{"id":"n"}')]),
    C("options_on_path_lists_methods", "RFC 9110 §9.3.7", req(b"OPTIONS /echo HTTP/1.1"), 200, KEEP,
      headers={"Allow": allow_has("POST")}),
    C("no_content_response_has_no_content_length", "RFC 9110 §8.6, §15.3.5", get(b"/nocontent"), 204, KEEP,
      headers={"Content-Length": None}),
    C("upgrade_request_is_ignored", "RFC 9110 §7.8", get(b"/", b"Connection: Upgrade", b"Upgrade: h2c"), 200, KEEP,
      body=HELLO),
    C("put_with_body_on_any_method_route", "RFC 9110 §9.3.4",
      req(b"PUT /anything HTTP/1.1", b"Content-Length: 3", body=b"abc"), 200, KEEP, body=b"PUT"),
]


# ---------------------------------------------------------------------------
# running a case
# ---------------------------------------------------------------------------
class Outcome:
    """What one case did: responses, how the connection ended, what looked wrong."""

    def __init__(self):
        self.statuses = []  # final (non-1xx) statuses in order
        self.interims = []
        self.conn = "?"  # close | close (RST) | open | open, next request failed | no response ...
        self.problems = []


def send_all(sock, data):
    """Sends data; a server that answers early and closes may refuse the rest."""
    try:
        sock.sendall(data)
        return None
    except OSError as e:
        return "%s while sending: %s" % (type(e).__name__, e)


def read_error(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    if isinstance(e, ConnectionResetError):
        return "reset"
    if isinstance(e, ConnectionError):
        return "closed"
    return "unparseable"


def json_error_problem(resp):
    try:
        doc = json.loads(resp.body)
    except ValueError as e:
        return "error body %s is not JSON (%s)" % (short(resp.body), e)
    if not (isinstance(doc, dict) and doc.get("status") == resp.status and isinstance(doc.get("error"), str)
            and isinstance(doc.get("detail"), str)):
        return "error body %s is not {status:%d,error,detail}" % (short(doc), resp.status)
    return None


def header_problems(resp, want):
    out = []
    for name, expect in (want or {}).items():
        got = resp.header(name)
        ok = expect(got) if callable(expect) else got == expect
        if not ok:
            out.append("header %s: %s" % (name, short(got)) + ("" if callable(expect) else ", want %s" % short(expect)))
    return out


def wait_for_eof(sock, reader, timeout):
    """'close', 'close (RST)', 'open' or 'extra bytes ...' (a response we did not expect)."""
    if reader.buf:
        return "extra bytes %s" % short(bytes(reader.buf))
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except socket.timeout:
        return "open"
    except ConnectionResetError:
        return "close (RST)"
    return "close" if data == b"" else "extra bytes %s" % short(data)


def follow_up(sock, reader, strict):
    """Sends a second, well-formed request on the connection: 'open' when it is answered 200."""
    sock.settimeout(T(IO_TIMEOUT))
    err = send_all(sock, FOLLOW_UP)
    try:
        resp = reader.read_response()
    except (OSError, ValueError) as e:
        how = read_error(e)
        if how == "closed":
            return "close"
        if how == "reset":
            return "close (RST)"
        return "open, next request: %s" % (err or how)
    if resp.status != 200 or (strict and resp.body != HELLO):
        return "open, next request got %d %s" % (resp.status, short(resp.body, 60))
    return "open"


def run_case(port, case, peer):
    out = Outcome()
    head = case.raw.lstrip(b"\r\n").startswith(b"HEAD ")
    with socket.create_connection((HOST, port), timeout=T(IO_TIMEOUT)) as sock:
        reader = Reader(sock.recv)
        send_err = send_all(sock, case.raw)
        expected = [(case.status, case.body)] + list(case.more)
        try:
            resp = reader.read_response(head)
            if case.interim is not None:
                if resp.status == case.interim:
                    out.interims.append(resp.status)
                    send_err = send_err or send_all(sock, case.then)
                    resp = reader.read_response(head)
                else:
                    out.problems.append("got %d where interim %d was due" % (resp.status, case.interim))
                    if peer:  # a server that answered early and stays open still reads the body
                        send_all(sock, case.then)
            responses = []
            for i, (status, body) in enumerate(expected):
                if i:
                    resp = reader.read_response(head)
                while 100 <= resp.status < 200:
                    out.interims.append(resp.status)
                    if case.no_interim:
                        out.problems.append("interim %d %s sent" % (resp.status, resp.reason))
                    resp = reader.read_response(head)
                out.statuses.append(resp.status)
                responses.append(resp)
        except (OSError, ValueError) as e:
            how = read_error(e)
            if how == "closed" and reader.buf:
                what = "no status line (HTTP/0.9-style reply %s)" % short(bytes(reader.buf), 40)
            elif how == "unparseable":
                what = "unparseable response (%s)" % e
            else:
                what = how
            out.statuses.append(what)
            out.conn = {"closed": "close", "reset": "close (RST)"}.get(how, "?")
            out.problems.append("response %d: %s%s" % (len(out.statuses), what,
                                                       " (%s)" % send_err if send_err else ""))
            return out
        for i, (resp, (status, body)) in enumerate(zip(responses, expected)):
            tag = "" if i == 0 else "response %d: " % (i + 1)
            if resp.status != status:
                out.problems.append("%sstatus %d %s, want %d | %s" % (tag, resp.status, resp.reason, status,
                                                                   short(resp.body, 200)))
                continue
            if body is not None and resp.body != body:
                out.problems.append("%sbody %s, want %s" % (tag, short(resp.body), short(body)))
            if i == 0:
                out.problems += header_problems(resp, case.headers)
            if status >= 400 and not head:
                problem = json_error_problem(resp)
                if problem:
                    out.problems.append(tag + problem)
        if send_err and not peer:
            out.problems.append(send_err)
        last = responses[-1]
        says_close = "close" in (last.header("Connection") or "").lower()
        if peer:  # the connection as the server left it; announced closes get time to happen
            out.conn = wait_for_eof(sock, reader, T(IO_TIMEOUT) if says_close else T(0.05))
            if out.conn == "open" and says_close:
                out.conn = "open %gs after Connection: close" % T(IO_TIMEOUT)
            elif out.conn == "open":
                out.conn = follow_up(sock, reader, strict=False)
        elif out.statuses != [s for s, _ in expected]:
            pass  # a wrong answer already fails the case; its connection handling says nothing more
        elif case.close:
            if not says_close:
                out.problems.append("no Connection: close in the response")
            out.conn = wait_for_eof(sock, reader, T(IO_TIMEOUT))
            if out.conn != "close":
                out.problems.append("connection %s after the response, want closed" % out.conn)
        else:
            if says_close:
                out.problems.append("response says Connection: %s" % last.header("Connection"))
            out.conn = follow_up(sock, reader, strict=True)
            if out.conn != "open":
                out.problems.append("connection %s, want kept open" % out.conn)
    return out


def fresh_get(port, strict):
    """None when a new connection gets 200 (Hello, World!) for GET /, else why not."""
    try:
        with socket.create_connection((HOST, port), timeout=T(IO_TIMEOUT)) as sock:
            sock.sendall(FOLLOW_UP)
            resp = Reader(sock.recv).read_response()
    except (OSError, ValueError) as e:
        return "fresh GET /: %s: %s" % (type(e).__name__, e)
    if resp.status != 200 or (strict and resp.body != HELLO):
        return "fresh GET /: %d %s" % (resp.status, short(resp.body, 80))
    return None


# ---------------------------------------------------------------------------
# modes
# ---------------------------------------------------------------------------
def expected_text(case):
    statuses = [case.status] + [s for s, _ in case.more]
    interim = "(%d) " % case.interim if case.interim else ""
    return "%s%s %s" % (interim, ",".join(map(str, statuses)), "close" if case.close else "keep")


def observed_text(out):
    statuses = ",".join(str(s) for s in out.statuses) or "-"
    interim = "(%s) " % ",".join(map(str, out.interims)) if out.interims else ""
    return "%s%s %s" % (interim, statuses, out.conn)


def differs(case, out):
    want = [case.status] + [s for s, _ in case.more]
    closed = out.conn.startswith("close")
    interim_wrong = (case.interim is not None and out.interims != [case.interim]) or (case.no_interim and out.interims)
    return out.statuses != want or closed != case.close or not out.conn.startswith(("close", "open")) \
        or out.conn.startswith("open,") or bool(interim_wrong)


def run_microweb(binary, cases):
    try:
        server = Server(command_for(binary), {"MW_THREADS": "2"})
    except OSError as e:
        for case in cases:
            check(case.name, False, "cannot start %s: %s" % (binary, e))
        return
    try:
        if not server.wait_ready():
            for case in cases:
                check(case.name, False, "server did not start; stderr: %s" % server.stderr_text())
            return
        for n, case in enumerate(cases):
            if server.proc.poll() is not None:
                for rest in cases[n:]:
                    check(rest.name, False, "not run: the server exited with status %s; stderr: %s"
                          % (server.proc.returncode, server.stderr_text()))
                break
            start = time.monotonic()
            try:
                out = run_case(server.port, case, peer=False)
                problems = out.problems
            except OSError as e:  # e.g. the connection itself was refused
                problems = ["%s: %s" % (type(e).__name__, e)]
            still = fresh_get(server.port, strict=True)
            if still:
                problems.append(still)
            if server.proc.poll() is not None:
                problems.append("server exited with status %s; stderr: %s"
                                % (server.proc.returncode, server.stderr_text()))
            if time.monotonic() - start > T(10):
                problems.append("took %.1fs" % (time.monotonic() - start))
            check(case.name, not problems, "%s [%s] sent %s" % ("; ".join(problems), case.rfc, short(case.raw, 160)))
        server.terminate()
        status = server.wait_exit(T(5))
        if status != 0:
            check("server_exits_cleanly_after_sigterm", False, "exit status %s; stderr: %s"
                  % (status, server.stderr_text()))
    finally:
        server.kill()


def run_peer(port, cases):
    print("| case | RFC | microweb (expected) | observed | differs |")
    print("|---|---|---|---|---|")
    ndiff = 0
    for case in cases:
        try:
            out = run_case(port, case, peer=True)
        except OSError as e:
            out = Outcome()
            out.statuses, out.conn = ["%s" % type(e).__name__], "?"
        still = fresh_get(port, strict=False)
        diff = differs(case, out)
        ndiff += diff
        note = " (then: %s)" % still if still else ""
        print("| %s | %s | %s | %s%s | %s |" % (case.name, case.rfc, expected_text(case), observed_text(out), note,
                                               "**yes**" if diff else ""), flush=True)
    print()
    print("%d cases, %d answered differently from microweb's expected status or connection handling"
          % (len(cases), ndiff))


def main(argv):
    args = list(argv)
    only = None
    if "--only" in args:
        i = args.index("--only")
        only = args[i + 1] if i + 1 < len(args) else ""
        del args[i:i + 2]
    cases = [c for c in CASES if only is None or only in c.name]
    names = [c.name for c in CASES]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        print("duplicate case names: %s" % sorted(dupes), file=sys.stderr)
        return 2
    if args[:1] == ["--port"]:
        if len(args) != 2 or not args[1].isdigit():
            print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
            return 2
        run_peer(int(args[1]), cases)
        return 0
    if len(args) != 1 or args[0].startswith("-"):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    run_microweb(args[0], cases)
    print("%d passed, %d failed" % (Tally.passed, Tally.failed), flush=True)
    return 0 if Tally.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
