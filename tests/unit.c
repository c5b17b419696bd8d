/* unit.c - unit tests of microweb's pure layers: HTTP parser, chunked decoder,
   router, percent-decoding, JSON writer and response framing. The implementation
   is included here so its static functions can be called directly. */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include <sys/mman.h>

#include "harness.h"

/* ------------------------------------------------------------------ helpers */

static mw__limits test_limits(void) {
    mw__limits l;
    mw__limits_default(&l);
    return l;
}

/* Copies s to the very end of a readable region followed by a PROT_NONE page, so
   reading one byte past the input crashes the test. Freed with guarded_free. */
typedef struct guarded {
    char *map, *data;
    size_t map_len;
} guarded;

static guarded guarded_copy(const char *s, size_t n) {
    guarded g;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), data_pages = (n + page - 1) / page + 1;
    g.map_len = (data_pages + 1) * page;
    g.map = (char *)mmap(NULL, g.map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g.map == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    mprotect(g.map + data_pages * page, page, PROT_NONE);
    g.data = g.map + data_pages * page - n;
    memcpy(g.data, s, n);
    return g;
}

static void guarded_free(guarded *g) { munmap(g->map, g->map_len); }

/* Scans and parses a request head the way a connection does: returns the head
   length, 0 when incomplete, or -status. */
static long parse_request(const char *buf, size_t len, mw__head *h) {
    mw__limits lim = test_limits();
    mw__head_scan scan;
    long n;
    memset(&scan, 0, sizeof scan);
    n = mw__scan_head(&scan, buf, len, &lim);
    if (n <= 0) return n;
    {
        int rc = mw__parse_head(buf, (size_t)n, &lim, h);
        return rc ? rc : n;
    }
}

/* The same, but the input arrives in pieces: first `split` bytes, then the rest;
   with split == 0 it arrives one byte at a time. The scan state carries over. */
static long parse_in_pieces(const char *buf, size_t len, size_t split, mw__head *h) {
    mw__limits lim = test_limits();
    mw__head_scan scan;
    size_t have;
    long n = 0;
    memset(&scan, 0, sizeof scan);
    for (have = split ? split : 1; have <= len; have = split ? len : have + 1) {
        n = mw__scan_head(&scan, buf, have, &lim);
        if (n != 0 || have == len) break;
    }
    if (n <= 0) return n;
    {
        int rc = mw__parse_head(buf, (size_t)n, &lim, h);
        return rc ? rc : n;
    }
}

/* -------------------------------------------------------------- parser tests */

typedef struct parse_case {
    const char *name;
    const char *raw;
    long want; /* > 0: accepted (any head length); 0: incomplete; < 0: -status */
} parse_case;

static const parse_case parse_cases[] = {
    {"simple_get", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1},
    {"get_with_query", "GET /p?q=1&r HTTP/1.1\r\nHost: a\r\n\r\n", 1},
    {"http10_without_host", "GET / HTTP/1.0\r\n\r\n", 1},
    {"absolute_form", "GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n", 1},
    {"options_asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 1},
    {"leading_empty_lines_ignored", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 1},
    {"content_length_list_identical", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 1},
    {"content_length_repeated_identical",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 1},
    {"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 1},
    {"chunked_mixed_case", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChUnKeD\r\n\r\n", 1},
    {"obs_text_in_value", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n", 1},
    {"tab_in_value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n\r\n", 1},
    {"empty_value", "GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n", 1},
    {"incomplete_head", "GET / HTTP/1.1\r\nHost: a\r\n", 0},
    {"incomplete_line", "GET / HT", 0},
    {"bare_lf_line_end", "GET / HTTP/1.1\nHost: a\r\n\r\n", -400},
    {"bare_lf_in_fields", "GET / HTTP/1.1\r\nHost: a\n\r\n", -400},
    {"bare_cr_in_value", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", -400},
    {"bare_cr_in_request_line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"two_spaces_after_method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"tab_instead_of_space", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"lowercase_version", "GET / http/1.1\r\nHost: a\r\n\r\n", -400},
    {"version_missing", "GET /\r\nHost: a\r\n\r\n", -400},
    {"version_2", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", -505},
    {"version_1_2_served_as_1_1", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 1},
    {"version_3", "GET / HTTP/3.0\r\nHost: a\r\n\r\n", -505},
    {"absolute_form_without_path", "GET http://a HTTP/1.1\r\nHost: a\r\n\r\n", 1},
    {"host_with_space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", -400},
    {"host_with_path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", -400},
    {"host_ipv6_and_port", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 1},
    {"empty_host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 1},
    {"expect_list_with_empty_element", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue,\r\n\r\n", 1},
    {"expect_empty", "POST / HTTP/1.1\r\nHost: a\r\nExpect:\r\n\r\n", 1},
    {"version_garbage", "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", -400},
    {"method_with_bad_char", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"empty_method", " / HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"target_not_slash", "GET x HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"asterisk_for_get", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"fragment_in_target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"non_ascii_target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"ftp_absolute_form", "GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"absolute_form_empty_host", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"absolute_form_port_without_host", "GET http://:80/x HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"absolute_form_empty_host_and_path", "GET https://?q HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"absolute_form_userinfo", "GET http://user:pw@x/ HTTP/1.1\r\nHost: x\r\n\r\n", -400},
    {"absolute_form_bad_host_byte", "GET http://a<b/ HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"absolute_form_quote_in_host", "GET http://a\"b/ HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"missing_host_11", "GET / HTTP/1.1\r\n\r\n", -400},
    {"duplicate_host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", -400},
    {"space_before_colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400},
    {"empty_field_name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", -400},
    {"obs_fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", -400},
    {"nul_in_value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", -400},
    {"del_in_value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", -400},
    {"vertical_tab_in_value",
     "GET / HTTP/1.1\r\nHost: a\r\nX: \x0b"
     "chunked\r\n\r\n",
     -400},
    {"content_length_with_te", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
     -400},
    {"te_with_content_length_after",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", -400},
    {"content_length_differing", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", -400},
    {"content_length_list_differing", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", -400},
    {"content_length_plus_sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", -400},
    {"content_length_minus_sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", -400},
    {"content_length_hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", -400},
    {"content_length_inner_space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", -400},
    {"content_length_empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", -400},
    {"content_length_overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", -400},
    {"content_length_trailing_comma", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", -400},
    {"te_gzip_then_chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -501},
    {"te_chunked_then_gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", -400},
    {"te_chunked_twice",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", -400},
    {"te_identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", -400},
    {"te_obfuscated", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", -400},
    {"te_in_http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -400},
    {"expect_other", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", -417},
};

TEST(parser_table_cases) {
    size_t i;
    for (i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
        const parse_case *c = &parse_cases[i];
        size_t len = strlen(c->raw);
        mw__head h;
        long got;
        if (strcmp(c->name, "nul_in_value") == 0) len = 35; /* the literal holds a NUL */
        got = parse_request(c->raw, len, &h);
        if ((c->want > 0) != (got > 0) || (c->want <= 0 && got != c->want)) {
            printf("  case %s: got %ld, want %ld (%s)\n", c->name, got, c->want, h.error ? h.error : "");
            test_checks_failed++;
        }
    }
}

/* Every case must give the same result byte by byte, split at every offset, and
   with the input ending right before an unreadable page. */
TEST(parser_same_result_in_pieces_and_at_page_end) {
    size_t i, split;
    for (i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
        const parse_case *c = &parse_cases[i];
        size_t len = strcmp(c->name, "nul_in_value") == 0 ? 35 : strlen(c->raw);
        mw__head h;
        long whole = parse_request(c->raw, len, &h), got;
        guarded g = guarded_copy(c->raw, len);
        got = parse_request(g.data, len, &h);
        if (got != whole) {
            printf("  case %s at page end: %ld vs %ld\n", c->name, got, whole);
            test_checks_failed++;
        }
        for (split = 0; split < len; split++) {
            got = parse_in_pieces(g.data, len, split, &h);
            if (got != whole) {
                printf("  case %s split at %zu: %ld vs %ld\n", c->name, split, got, whole);
                test_checks_failed++;
                break;
            }
        }
        guarded_free(&g);
    }
}

TEST(parser_exposes_request_parts) {
    const char *raw = "POST /users/7?x=1&y=%20 HTTP/1.1\r\nHost: example\r\nX-Empty:   \r\n"
                      "Content-Length: 12\r\nConnection: close\r\nX-Pad:  a b  \r\n\r\n";
    mw__head h;
    long n = parse_request(raw, strlen(raw), &h);
    CHECK_INT(n, (long)strlen(raw));
    CHECK_MEM(h.method, h.method_len, "POST");
    CHECK_MEM(h.path, h.path_len, "/users/7");
    CHECK_MEM(h.query, h.query_len, "x=1&y=%20");
    CHECK_INT(h.minor, 1);
    CHECK_INT(h.content_length, 12);
    CHECK_INT(h.keep_alive, 0);
    CHECK_INT(h.nfields, 5);
    CHECK_MEM(h.fields[1].name, h.fields[1].name_len, "X-Empty");
    CHECK_MEM(h.fields[1].value, h.fields[1].value_len, "");
    CHECK_MEM(h.fields[4].value, h.fields[4].value_len, "a b"); /* OWS trimmed both sides */
}

TEST(parser_absolute_form_gives_path) {
    const char *raw = "GET https://example.com:8443/a/b?c HTTP/1.1\r\nHost: example.com\r\n\r\n";
    mw__head h;
    CHECK(parse_request(raw, strlen(raw), &h) > 0);
    CHECK_MEM(h.path, h.path_len, "/a/b");
    CHECK_MEM(h.query, h.query_len, "c");
}

/* RFC 9112 §3.2.2: with an absolute-form target the server ignores Host and uses the
   target's authority; the Host field (still required and checked) reads as that. */
TEST(parser_absolute_form_authority_is_the_host) {
    const char *raw = "GET http://good.example:8080/host HTTP/1.1\r\nHost: evil.example\r\nX: 1\r\n\r\n";
    const char *origin = "GET /host HTTP/1.1\r\nHost: evil.example\r\n\r\n";
    mw__head h;
    CHECK(parse_request(raw, strlen(raw), &h) > 0);
    CHECK_INT(h.nfields, 2);
    CHECK_MEM(h.fields[0].name, h.fields[0].name_len, "Host");
    CHECK_MEM(h.fields[0].value, h.fields[0].value_len, "good.example:8080");
    CHECK_MEM(h.path, h.path_len, "/host");
    CHECK(parse_request(origin, strlen(origin), &h) > 0);
    CHECK_MEM(h.fields[0].value, h.fields[0].value_len, "evil.example");
}

TEST(parser_keep_alive_rules) {
    mw__head h;
    const char *a = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    const char *b = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n";
    const char *c = "GET / HTTP/1.0\r\n\r\n";
    const char *d = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    CHECK(parse_request(a, strlen(a), &h) > 0 && h.keep_alive == 1);
    CHECK(parse_request(b, strlen(b), &h) > 0 && h.keep_alive == 0);
    CHECK(parse_request(c, strlen(c), &h) > 0 && h.keep_alive == 0);
    CHECK(parse_request(d, strlen(d), &h) > 0 && h.keep_alive == 1);
}

TEST(parser_expect_continue_flag) {
    mw__head h;
    const char *a = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n";
    CHECK(parse_request(a, strlen(a), &h) > 0);
    CHECK_INT(h.expect_continue, 1);
}

/* RFC 9112 §3 / DESIGN §5: limits hit before the head is complete, so a client cannot
   make the server buffer more than the limit. */
TEST(parser_limits_before_head_completes) {
    mw__limits lim = test_limits();
    mw__head_scan scan;
    char *buf = (char *)malloc(40000);
    size_t i;
    memcpy(buf, "GET /", 5);
    for (i = 5; i < 40000; i++) buf[i] = 'a';
    memset(&scan, 0, sizeof scan);
    CHECK_INT(mw__scan_head(&scan, buf, MW_MAX_REQUEST_LINE, &lim), 0);
    memset(&scan, 0, sizeof scan);
    CHECK_INT(mw__scan_head(&scan, buf, MW_MAX_REQUEST_LINE + 1, &lim), -414);
    /* a short request line, then header bytes without end */
    memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
    memset(&scan, 0, sizeof scan);
    CHECK_INT(mw__scan_head(&scan, buf, 16 + MW_MAX_HEADER_BYTES, &lim), 0);
    CHECK_INT(mw__scan_head(&scan, buf, 16 + MW_MAX_HEADER_BYTES + 3, &lim), -431);
    /* empty lines before the request line count toward its limit */
    for (i = 0; i + 1 < 40000; i += 2) buf[i] = '\r', buf[i + 1] = '\n';
    memset(&scan, 0, sizeof scan);
    CHECK_INT(mw__scan_head(&scan, buf, MW_MAX_REQUEST_LINE + 2, &lim), -400);
    free(buf);
}

TEST(parser_too_many_fields_is_431) {
    char buf[8192];
    size_t n = 0;
    int i;
    mw__head h;
    n += (size_t)sprintf(buf + n, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (i = 0; i < MW_MAX_HEADERS; i++) n += (size_t)sprintf(buf + n, "X%d: v\r\n", i);
    n += (size_t)sprintf(buf + n, "\r\n");
    CHECK_INT(parse_request(buf, n, &h), -431);
}

TEST(parser_run_time_header_count_limit) {
    mw__limits lim = test_limits();
    mw__head_scan scan;
    mw__head h;
    const char *raw = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    long n;
    lim.v[MW_LIMIT_HEADER_COUNT] = 2;
    memset(&scan, 0, sizeof scan);
    n = mw__scan_head(&scan, raw, strlen(raw), &lim);
    CHECK(n > 0);
    CHECK_INT(mw__parse_head(raw, (size_t)n, &lim, &h), -431);
}

/* ---------------------------------------------------------------- chunked */

/* Decodes `raw` (the bytes after a head) fed `step` bytes at a time (0 = at once);
   returns the decoder's final result and the decoded body in out. */
static int decode_chunked(const char *raw, size_t len, size_t step, char *out, size_t *out_len, size_t *consumed,
                          const mw__limits *lim) {
    mw__chunked d;
    guarded g = guarded_copy(raw, len);
    size_t in = 0, o = 0, have = step ? step : len;
    int rc = 0;
    memset(&d, 0, sizeof d);
    for (;;) {
        if (have > len) have = len;
        rc = mw__chunked_decode(&d, g.data, have, &in, &o, 0, lim);
        if (rc != 0 || have == len) break;
        have += step;
    }
    memcpy(out, g.data, o);
    *out_len = o;
    *consumed = in;
    guarded_free(&g);
    return rc;
}

typedef struct chunk_case {
    const char *name, *raw, *body;
    int want;
} chunk_case;

static const chunk_case chunk_cases[] = {
    {"one_chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", 1},
    {"two_chunks_hex_sizes", "a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij", 1},
    {"extensions_dropped", "5;name=value;x\r\nhello\r\n0;last\r\n\r\n", "hello", 1},
    {"whitespace_before_extension", "5 ;a=b\r\nhello\r\n0\r\n\r\n", "hello", 1},
    {"whitespace_without_extension", "5 \r\nhello\r\n0\r\n\r\n", "", -400},
    {"quoted_extension", "5;n=\"a b\"\r\nhello\r\n0\r\n\r\n", "hello", 1},
    {"trailers_dropped", "5\r\nhello\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n", "hello", 1},
    {"leading_zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", 1},
    {"empty_body", "0\r\n\r\n", "", 1},
    {"incomplete", "5\r\nhel", "hel", 0},
    {"missing_crlf_after_data", "5\r\nhelloX\r\n0\r\n\r\n", "hello", -400},
    {"lf_only_after_data", "5\r\nhello\n0\r\n\r\n", "hello", -400},
    {"lf_only_after_size", "5\nhello\r\n0\r\n\r\n", "", -400},
    {"no_size", "\r\nhello\r\n", "", -400},
    {"bad_hex", "5g\r\nhello\r\n0\r\n\r\n", "", -400},
    {"negative_size", "-5\r\nhello\r\n", "", -400},
    {"size_too_many_digits", "0000000000000005\r\nhello\r\n0\r\n\r\n", "", -400},
    {"size_overflow", "ffffffffffffffffffff\r\n", "", -400},
    {"size_over_body_limit", "100001\r\n", "", -413},
    {"control_byte_in_extension", "5;a\x01\r\nhello\r\n0\r\n\r\n", "", -400},
    {"bare_lf_in_trailer", "0\r\nX: 1\n\r\n", "", -400},
    {"trailer_without_colon", "0\r\ngarbage no colon\r\n\r\n", "", -400},
    {"trailer_obs_fold", "0\r\nX: 1\r\n folded\r\n\r\n", "", -400},
    {"trailer_empty_name", "0\r\n:\r\n\r\n", "", -400},
    {"trailer_space_before_colon", "0\r\nX : 1\r\n\r\n", "", -400},
};

TEST(chunked_table_cases_at_once_and_byte_by_byte) {
    mw__limits lim = test_limits();
    char out[256];
    size_t i, out_len, consumed, step;
    lim.v[MW_LIMIT_BODY_BYTES] = 0x100000;
    for (i = 0; i < sizeof chunk_cases / sizeof chunk_cases[0]; i++) {
        const chunk_case *c = &chunk_cases[i];
        for (step = 0; step <= 1; step++) {
            int rc = decode_chunked(c->raw, strlen(c->raw), step, out, &out_len, &consumed, &lim);
            if (rc != c->want || (rc >= 0 && (out_len != strlen(c->body) || memcmp(out, c->body, out_len) != 0))) {
                printf("  case %s (step %zu): rc %d want %d, body \"%.*s\"\n", c->name, step, rc, c->want, (int)out_len,
                       out);
                test_checks_failed++;
            }
        }
    }
}

TEST(chunked_stops_at_message_end_leaving_pipelined_bytes) {
    mw__limits lim = test_limits();
    const char *raw = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    char out[64];
    size_t out_len, consumed;
    CHECK_INT(decode_chunked(raw, strlen(raw), 0, out, &out_len, &consumed, &lim), 1);
    CHECK_INT(consumed, 13);
    CHECK_MEM(out, out_len, "abc");
}

TEST(chunked_extension_and_trailer_floods_refused) {
    mw__limits lim = test_limits();
    static char raw[40000];
    char out[64];
    size_t out_len, consumed, n;
    memset(raw, 'a', sizeof raw);
    memcpy(raw, "5;", 2); /* an extension longer than MW_MAX_CHUNK_EXT_BYTES */
    CHECK_INT(decode_chunked(raw, 2 + MW_MAX_CHUNK_EXT_BYTES + 10, 0, out, &out_len, &consumed, &lim), -400);
    memcpy(raw, "0\r\nX: ", 6); /* a trailer section beyond the header limit */
    n = 6 + MW_MAX_HEADER_BYTES + 10;
    CHECK_INT(decode_chunked(raw, n, 0, out, &out_len, &consumed, &lim), -431);
}

/* A refusal carries its reason, for the error body the client gets. */
TEST(chunked_refusals_say_why) {
    static const char *const cases[][2] = {
        {"5;a=b\x01\r\n", "control byte in a chunk extension"},
        {"5g\r\n", "invalid byte after the chunk size"},
        {"-5\r\n", "chunk size is not a hex number"},
        {"0000000000000005\r\n", "chunk size longer than 15 hex digits"},
        {"5 x\r\n", "whitespace after the chunk size without an extension"},
        {"5\rx", "chunk size line not ended by CRLF"},
        {"5\r\nhelloX", "chunk data not followed by CRLF"},
        {"0\r\n X: 1\r\n\r\n", "malformed trailer field"},
        {"0\r\nX: 1\rx", "trailer line not ended by CRLF"},
        {"100001\r\n", "request body larger than the limit"},
    };
    mw__limits lim = test_limits();
    static char ext[2048];
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mw__chunked d;
        char buf[64];
        size_t in = 0, out = 0, n = strlen(cases[i][0]);
        memset(&d, 0, sizeof d);
        memcpy(buf, cases[i][0], n);
        if (mw__chunked_decode(&d, buf, n, &in, &out, 0, &lim) >= 0 || !d.error || strcmp(d.error, cases[i][1]) != 0)
            printf("  %s: %s\n", cases[i][1], d.error ? d.error : "(none)"), test_checks_failed++;
    }
    {
        mw__chunked d;
        size_t in = 0, out = 0;
        memset(&d, 0, sizeof d);
        memset(ext, 'x', sizeof ext);
        memcpy(ext, "5;", 2);
        CHECK_INT(mw__chunked_decode(&d, ext, sizeof ext, &in, &out, 0, &lim), -400);
        CHECK_STR(d.error, "chunk extension longer than MW_MAX_CHUNK_EXT_BYTES");
    }
}

TEST(chunked_decoded_total_over_limit_is_413) {
    mw__limits lim = test_limits();
    char out[64];
    size_t out_len, consumed;
    const char *raw = "8\r\n12345678\r\n8\r\n12345678\r\n";
    lim.v[MW_LIMIT_BODY_BYTES] = 12;
    CHECK_INT(decode_chunked(raw, strlen(raw), 0, out, &out_len, &consumed, &lim), -413);
}

/* --------------------------------------------------------- percent-decoding */

static long decode(const char *s, char *out, int plus) { return mw__percent_decode(s, strlen(s), out, plus); }

TEST(percent_decoding) {
    char out[64];
    long n;
    n = decode("a%20b%2Fc%c3%A9", out, 0);
    CHECK_MEM(out, (size_t)n, "a b/c\xc3\xa9");
    n = decode("a+b", out, 0);
    CHECK_MEM(out, (size_t)n, "a+b");
    n = decode("a+b", out, 1);
    CHECK_MEM(out, (size_t)n, "a b");
    CHECK_INT(decode("%zz", out, 0), -1);
    CHECK_INT(decode("abc%", out, 0), -1);
    CHECK_INT(decode("abc%4", out, 0), -1);
    CHECK_INT(decode("%00", out, 0), -1);
    CHECK_INT(decode("", out, 0), 0);
}

TEST(percent_decoding_trailing_escape_at_page_end) {
    char out[8];
    guarded g = guarded_copy("ab%4", 4);
    CHECK_INT(mw__percent_decode(g.data, 4, out, 0), -1);
    guarded_free(&g);
    g = guarded_copy("%41", 3);
    CHECK_INT(mw__percent_decode(g.data, 3, out, 0), 1);
    guarded_free(&g);
}

TEST(dot_segments_detected) {
    CHECK(mw__has_dot_segment("..", 2));
    CHECK(mw__has_dot_segment(".", 1));
    CHECK(mw__has_dot_segment("/a/../b", 7));
    CHECK(mw__has_dot_segment("/a/./b", 6));
    CHECK(mw__has_dot_segment("a/..", 4));
    CHECK(mw__has_dot_segment("..\\windows", 10));
    CHECK(!mw__has_dot_segment("/a/..b/c", 8));
    CHECK(!mw__has_dot_segment("/a/.hidden", 10));
    CHECK(!mw__has_dot_segment("/a/b...", 7));
    CHECK(!mw__has_dot_segment("", 0));
}

/* ------------------------------------------------------------------ router */

static void h_static(mw_req *rq, mw_res *rs) { (void)rq, (void)rs; }
static void h_param(mw_req *rq, mw_res *rs) { (void)rq, (void)rs; }
static void h_wild(mw_req *rq, mw_res *rs) { (void)rq, (void)rs; }
static void h_other(mw_req *rq, mw_res *rs) { (void)rq, (void)rs; }

static mw_handler match(mw__node *root, int slot, const char *path, mw__match *m) {
    return mw__router_match(root, slot, path, strlen(path), m) ? m->route->handler : NULL;
}

/* Routes for the trie tests (the trie points at them; an app owns them otherwise). */
static mw__route test_routes[256];
static size_t test_nroutes;

static int add(mw__node *root, int slot, const char *pattern, mw_handler h) {
    mw__route_error err;
    mw__route *r = &test_routes[test_nroutes++ % 256];
    memset(r, 0, sizeof *r);
    r->slot = slot;
    r->pattern = (char *)(uintptr_t)pattern;
    r->handler = h;
    return mw__router_add(root, r, &err);
}

static void free_root(mw__node *root) { mw__node_clear(root); }

TEST(router_static_beats_param_beats_wildcard_whatever_the_order) {
    mw__node root;
    mw__match m;
    memset(&root, 0, sizeof root);
    /* registered in the "wrong" order on purpose */
    CHECK_INT(add(&root, MW__M_GET, "/files/*rest", h_wild), 0);
    CHECK_INT(add(&root, MW__M_GET, "/files/:name", h_param), 0);
    CHECK_INT(add(&root, MW__M_GET, "/files/index", h_static), 0);
    CHECK(match(&root, MW__M_GET, "/files/index", &m) == h_static);
    CHECK(match(&root, MW__M_GET, "/files/other", &m) == h_param);
    CHECK_INT(m.nparams, 1);
    CHECK_STR(m.names[0], "name");
    CHECK_MEM(m.values[0], m.lens[0], "other");
    CHECK(match(&root, MW__M_GET, "/files/a/b/c", &m) == h_wild);
    CHECK_STR(m.names[0], "rest");
    CHECK_MEM(m.values[0], m.lens[0], "a/b/c");
    CHECK(match(&root, MW__M_GET, "/files/", &m) == h_wild); /* a parameter never matches "" */
    CHECK_MEM(m.values[0], m.lens[0], "");
    CHECK(match(&root, MW__M_GET, "/files", &m) == NULL);
    free_root(&root);
}

TEST(router_backtracks_from_static_to_param) {
    mw__node root;
    mw__match m;
    memset(&root, 0, sizeof root);
    CHECK_INT(add(&root, MW__M_GET, "/a/b/x", h_static), 0);
    CHECK_INT(add(&root, MW__M_GET, "/a/:p/y", h_param), 0);
    CHECK(match(&root, MW__M_GET, "/a/b/y", &m) == h_param);
    CHECK_MEM(m.values[0], m.lens[0], "b");
    CHECK(match(&root, MW__M_GET, "/a/b/x", &m) == h_static);
    CHECK_INT(m.nparams, 0);
    free_root(&root);
}

TEST(router_method_selection_and_allow) {
    mw__node root;
    mw__match m;
    memset(&root, 0, sizeof root);
    CHECK_INT(add(&root, MW__M_GET, "/users/:id", h_param), 0);
    CHECK_INT(add(&root, MW__M_DELETE, "/users/:id", h_other), 0);
    CHECK_INT(add(&root, MW__M_POST, "/users/new", h_static), 0);
    CHECK(match(&root, MW__M_DELETE, "/users/3", &m) == h_other);
    CHECK(match(&root, MW__M_HEAD, "/users/3", &m) == h_param); /* HEAD runs GET */
    /* GET /users/new: the static node has only POST, so the parameter route answers */
    CHECK(match(&root, MW__M_GET, "/users/new", &m) == h_param);
    CHECK(match(&root, MW__M_PUT, "/users/3", &m) == NULL);
    CHECK_INT(m.allow, (1u << MW__M_GET) | (1u << MW__M_DELETE));
    CHECK(match(&root, MW__M_PUT, "/users/new", &m) == NULL); /* both nodes count for Allow */
    CHECK_INT(m.allow, (1u << MW__M_GET) | (1u << MW__M_DELETE) | (1u << MW__M_POST));
    CHECK(match(&root, MW__M_GET, "/nothing", &m) == NULL);
    CHECK_INT(m.allow, 0);
    free_root(&root);
}

TEST(router_any_method_route) {
    mw__node root;
    mw__match m;
    memset(&root, 0, sizeof root);
    CHECK_INT(add(&root, MW__M_ANY, "/x", h_other), 0);
    CHECK_INT(add(&root, MW__M_GET, "/x", h_static), 0);
    CHECK(match(&root, MW__M_GET, "/x", &m) == h_static);
    CHECK(match(&root, MW__M_PATCH, "/x", &m) == h_other);
    CHECK(match(&root, MW__M_OTHER, "/x", &m) == h_other);
    free_root(&root);
}

TEST(router_root_and_trailing_slash_are_distinct) {
    mw__node root;
    mw__match m;
    memset(&root, 0, sizeof root);
    CHECK_INT(add(&root, MW__M_GET, "/", h_static), 0);
    CHECK_INT(add(&root, MW__M_GET, "/a", h_param), 0);
    CHECK_INT(add(&root, MW__M_GET, "/a/", h_other), 0);
    CHECK(match(&root, MW__M_GET, "/", &m) == h_static);
    CHECK(match(&root, MW__M_GET, "/a", &m) == h_param);
    CHECK(match(&root, MW__M_GET, "/a/", &m) == h_other);
    CHECK(match(&root, MW__M_GET, "//", &m) == NULL);
    CHECK(match(&root, MW__M_GET, "", &m) == NULL);
    free_root(&root);
}

TEST(router_rejects_malformed_and_duplicate_patterns) {
    mw__node root;
    memset(&root, 0, sizeof root);
    CHECK_INT(add(&root, MW__M_GET, "users", h_static), MW_EINVAL);
    CHECK_INT(add(&root, MW__M_GET, "", h_static), MW_EINVAL);
    CHECK_INT(add(&root, MW__M_GET, "/a//b", h_static), MW_EINVAL);
    CHECK_INT(add(&root, MW__M_GET, "/a/:", h_static), MW_EINVAL);
    CHECK_INT(add(&root, MW__M_GET, "/a/:bad-name", h_static), MW_EINVAL);
    CHECK_INT(add(&root, MW__M_GET, "/a/*rest/b", h_static), MW_EINVAL);
    CHECK_INT(add(&root, MW__M_GET, "/a/:id/b/:id", h_static), MW_EINVAL);
    CHECK_INT(add(&root, MW__M_GET, "/a b", h_static), MW_EINVAL);
    CHECK_INT(add(&root, MW__M_GET, "/a?b", h_static), MW_EINVAL);
    CHECK_INT(add(&root, MW__M_GET, "/u/:id", h_static), 0);
    CHECK_INT(add(&root, MW__M_GET, "/u/:id", h_param), MW_EEXIST);
    CHECK_INT(add(&root, MW__M_POST, "/u/:id", h_param), 0);
    CHECK_INT(add(&root, MW__M_GET, "/u/:name/x", h_param), MW_EINVAL); /* same position, other name */
    free_root(&root);
}

TEST(router_too_many_params_refused) {
    mw__node root;
    char pattern[512];
    size_t n = 0;
    int i;
    memset(&root, 0, sizeof root);
    for (i = 0; i <= MW_MAX_PARAMS; i++) n += (size_t)sprintf(pattern + n, "/:p%d", i);
    CHECK_INT(add(&root, MW__M_GET, pattern, h_param), MW_EINVAL);
    free_root(&root);
}

TEST(router_public_api_reports_errors_and_refuses_to_serve) {
    mw_app *app = mw_app_new();
    CHECK_INT(mw_get(app, "/ok", h_static), 0);
    CHECK_INT(mw_get(app, "/ok", h_static), MW_EEXIST);
    CHECK_INT(mw_route(app, "BREW", "/pot", h_static), MW_EINVAL);
    CHECK_INT(mw_get(app, "no-slash", h_static), MW_EINVAL);
    CHECK(mw_listen(app, "127.0.0.1", 0) > 0);
    CHECK_INT(mw_serve(app), MW_EINVAL); /* three route errors: not serving */
    mw_app_free(app);
}

/* --------------------------------------------------------------- JSON writer */

typedef struct json_fixture {
    mw__buf buf;
    mw_json j;
} json_fixture;

static mw_json *json_start(json_fixture *f) {
    memset(f, 0, sizeof *f);
    mw__json_init(&f->j, &f->buf);
    return &f->j;
}

#define CHECK_JSON(f, want) CHECK_MEM((f).buf.data, (f).buf.len, want)

TEST(json_nested_document) {
    json_fixture f;
    mw_json *j = json_start(&f);
    mw_json_object(j);
    mw_json_key_string(j, "name", "microweb");
    mw_json_key(j, "list");
    mw_json_array(j);
    mw_json_int(j, 1);
    mw_json_bool(j, 1);
    mw_json_bool(j, 0);
    mw_json_null(j);
    mw_json_object(j);
    mw_json_close(j);
    mw_json_array(j);
    mw_json_close(j);
    mw_json_close(j);
    mw_json_key_double(j, "pi", 3.25);
    CHECK_INT(mw_json_end(j), 0);
    CHECK_JSON(f, "{\"name\":\"microweb\",\"list\":[1,true,false,null,{},[]],\"pi\":3.25}");
    mw__buf_free(&f.buf);
}

TEST(json_string_escaping_rfc8259) {
    json_fixture f;
    mw_json *j = json_start(&f);
    mw_json_stringn(j, "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f", 14);
    CHECK_INT(mw_json_end(j), 0);
    CHECK_JSON(f, "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\"");
    mw__buf_free(&f.buf);
}

TEST(json_string_with_nul_and_utf8) {
    json_fixture f;
    mw_json *j = json_start(&f);
    mw_json_array(j);
    mw_json_stringn(j, "a\0b", 3);
    mw_json_string(j, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    mw_json_string(j, NULL);
    CHECK_INT(mw_json_end(j), 0);
    CHECK_JSON(f, "[\"a\\u0000b\",\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\",null]");
    mw__buf_free(&f.buf);
}

TEST(json_invalid_utf8_becomes_replacement_character) {
    json_fixture f;
    mw_json *j = json_start(&f);
    mw_json_array(j);
    mw_json_string(j, "a\xff"
                      "b");                /* not a lead byte */
    mw_json_string(j, "\xc0\xaf");         /* overlong '/' */
    mw_json_string(j, "\xed\xa0\x80");     /* a surrogate */
    mw_json_string(j, "\xf4\x90\x80\x80"); /* past U+10FFFF */
    mw_json_string(j, "\xe2\x82");         /* truncated */
    CHECK_INT(mw_json_end(j), 0);
    CHECK_JSON(f, "[\"a\xef\xbf\xbd"
                  "b\",\"\xef\xbf\xbd\xef\xbf\xbd\",\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\","
                  "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\",\"\xef\xbf\xbd\xef\xbf\xbd\"]");
    mw__buf_free(&f.buf);
}

TEST(json_integers_full_64_bit_range) {
    json_fixture f;
    mw_json *j = json_start(&f);
    mw_json_array(j);
    mw_json_int(j, INT64_MIN);
    mw_json_int(j, INT64_MAX);
    mw_json_int(j, 0);
    mw_json_int(j, -1);
    CHECK_INT(mw_json_end(j), 0);
    CHECK_JSON(f, "[-9223372036854775808,9223372036854775807,0,-1]");
    mw__buf_free(&f.buf);
}

/* Every digit count and both signs, as printf spells them: powers of ten and their
   neighbours, and random values of every magnitude. */
TEST(json_integers_as_printf_spells_them) {
    char want[32], got[32];
    unsigned long long x = 88172645463325252ull;
    long long p = 1;
    int i, wrong = 0;
    for (i = 0; i < 19; i++) {
        long long v[] = {p, p - 1, p + 1, -p, -p + 1, -p - 1};
        size_t k;
        for (k = 0; k < sizeof v / sizeof v[0]; k++) {
            snprintf(want, sizeof want, "%lld", v[k]);
            got[mw__format_i64(got, v[k])] = '\0';
            wrong += strcmp(want, got) != 0;
        }
        if (i < 18) p *= 10; /* 10^18 is the last power a long long holds */
    }
    for (i = 0; i < 10000; i++) {
        long long v;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
        v = (long long)(x >> (unsigned)(i % 64));
        snprintf(want, sizeof want, "%lld", v);
        got[mw__format_i64(got, v)] = '\0';
        wrong += strcmp(want, got) != 0;
    }
    CHECK_INT(wrong, 0);
}

TEST(json_doubles_round_trip) {
    json_fixture f;
    mw_json *j = json_start(&f);
    unsigned long long x = 88172645463325252ull;
    int i;
    mw_json_array(j);
    mw_json_double(j, 0.1);
    mw_json_double(j, -0.0);
    mw_json_double(j, 1e300);
    mw_json_double(j, 5e-324);
    mw_json_double(j, 2.0);
    CHECK_INT(mw_json_end(j), 0);
    CHECK_JSON(f, "[0.1,-0,1e+300,4.94065645841247e-324,2]");
    mw__buf_free(&f.buf);
    /* 10,000 pseudo-random bit patterns: each written value reads back identical */
    for (i = 0; i < 10000; i++) {
        double d, back;
        char tmp[40];
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(&d, &x, sizeof d);
        if (d != d || d - d != 0) continue;
        mw__format_double(tmp, sizeof tmp, d);
        back = strtod(tmp, NULL);
        if (memcmp(&back, &d, sizeof d) != 0) {
            printf("  %.17g written as %s\n", d, tmp);
            test_checks_failed++;
            break;
        }
    }
}

TEST(json_misuse_is_an_error_not_output) {
    json_fixture f;
    mw_json *j = json_start(&f);
    mw_json_object(j);
    CHECK_INT(mw_json_int(j, 1), MW_EJSON); /* a value where a key is due */
    CHECK_INT(mw_json_end(j), MW_EJSON);
    mw__buf_free(&f.buf);

    j = json_start(&f);
    mw_json_array(j);
    CHECK_INT(mw_json_key(j, "k"), MW_EJSON); /* a key in an array */
    mw__buf_free(&f.buf);

    j = json_start(&f);
    mw_json_object(j);
    mw_json_key(j, "k");
    CHECK_INT(mw_json_key(j, "k2"), MW_EJSON); /* a key where a value is due */
    mw__buf_free(&f.buf);

    j = json_start(&f);
    CHECK_INT(mw_json_close(j), MW_EJSON); /* nothing open */
    mw__buf_free(&f.buf);

    j = json_start(&f);
    CHECK_INT(mw_json_double(j, NAN), MW_EJSON);
    CHECK_INT(mw_json_end(j), MW_EJSON);
    mw__buf_free(&f.buf);

    j = json_start(&f);
    CHECK_INT(mw_json_double(j, -INFINITY), MW_EJSON);
    mw__buf_free(&f.buf);

    j = json_start(&f);
    mw_json_int(j, 1);
    CHECK_INT(mw_json_int(j, 2), MW_EJSON); /* two top-level values */
    mw__buf_free(&f.buf);

    j = json_start(&f);
    CHECK_INT(mw_json_end(j), MW_EJSON); /* empty document */
    mw__buf_free(&f.buf);

    j = json_start(&f);
    mw_json_object(j);
    mw_json_key(j, "dangling");
    CHECK_INT(mw_json_end(j), MW_EJSON); /* key without value */
    mw__buf_free(&f.buf);
}

TEST(json_end_closes_open_containers) {
    json_fixture f;
    mw_json *j = json_start(&f);
    mw_json_object(j);
    mw_json_key(j, "a");
    mw_json_array(j);
    mw_json_int(j, 1);
    CHECK_INT(mw_json_end(j), 0);
    CHECK_JSON(f, "{\"a\":[1]}");
    mw__buf_free(&f.buf);
}

TEST(json_depth_limit) {
    json_fixture f;
    mw_json *j = json_start(&f);
    int i, rc = 0;
    for (i = 0; i < MW_JSON_MAX_DEPTH; i++) rc |= mw_json_array(j);
    CHECK_INT(rc, 0);
    CHECK_INT(mw_json_array(j), MW_EJSON);
    mw__buf_free(&f.buf);
}

TEST(json_new_writes_into_memory_and_text_ends_it) {
    mw_json *j = mw_json_new();
    const char *text;
    size_t len = 0;
    CHECK(j != NULL);
    mw_json_object(j);
    mw_json_key_string(j, "name", "\"</script>\\\n");
    mw_json_key(j, "list");
    mw_json_array(j);
    mw_json_int(j, 1);
    text = mw_json_text(j, &len); /* closes the array and the object */
    CHECK_STR(text, "{\"name\":\"\\\"</script>\\\\\\n\",\"list\":[1]}");
    CHECK_INT((long long)len, (long long)strlen("{\"name\":\"\\\"</script>\\\\\\n\",\"list\":[1]}"));
    CHECK(mw_json_text(j, NULL) == text);   /* again: the same text */
    CHECK_INT(mw_json_int(j, 2), MW_EJSON); /* ended: nothing more is written */
    mw_json_free(j);
    mw_json_free(NULL);
}

TEST(json_text_is_null_after_misuse_or_with_no_value) {
    mw_json *j = mw_json_new(), *empty = mw_json_new();
    size_t len = 7;
    mw_json_object(j);
    CHECK_INT(mw_json_int(j, 1), MW_EJSON); /* a value where a key is due */
    CHECK(mw_json_text(j, &len) == NULL);
    CHECK_INT((long long)len, 7);
    CHECK(mw_json_text(empty, NULL) == NULL);
    CHECK(mw_json_text(NULL, NULL) == NULL);
    mw_json_free(j);
    mw_json_free(empty);
}

/* ---------------------------------------------------------- response framing */

typedef struct res_fixture {
    mw_app *app;
    mw__worker w;
} res_fixture;

static mw_res *res_start(res_fixture *f) {
    memset(f, 0, sizeof *f);
    f->app = mw_app_new();
    f->w.app = f->app;
    mw__res_reset(&f->w, NULL);
    return &f->w.res;
}

/* Renders the response; returns it as a NUL-terminated string in w.out. */
static const char *res_render(res_fixture *f, int keep_alive, int http10) {
    mw_res *rs = &f->w.res;
    mw__render_head(&f->w.out, rs, mw__date(&f->w), keep_alive, http10, MW__FRAME_LENGTH, rs->body->len);
    if (!rs->is_head && rs->status != 204 && rs->status != 304)
        mw__buf_append(&f->w.out, rs->body->data, rs->body->len);
    mw__buf_append(&f->w.out, "", 1);
    return f->w.out.data;
}

static void res_free(res_fixture *f) {
    mw__worker_free(&f->w);
    mw_app_free(f->app);
}

TEST(response_header_setter_refuses_injection) {
    res_fixture f;
    mw_res *rs = res_start(&f);
    const char *out;
    CHECK_INT(mw_set_header(rs, "X-A", "a\r\nInjected: 1"), MW_EINVAL);
    CHECK_INT(mw_set_header(rs, "X-A", "a\nb"), MW_EINVAL);
    CHECK_INT(mw_set_header(rs, "X-A", "a\rb"), MW_EINVAL);
    CHECK_INT(mw_set_header(rs, "X-A\r\nB", "v"), MW_EINVAL);
    CHECK_INT(mw_set_header(rs, "X A", "v"), MW_EINVAL);
    CHECK_INT(mw_set_header(rs, "", "v"), MW_EINVAL);
    CHECK_INT(mw_set_header(rs, "Content-Length", "5"), MW_EINVAL);
    CHECK_INT(mw_set_header(rs, "transfer-encoding", "chunked"), MW_EINVAL);
    CHECK_INT(mw_set_header(rs, "X-Ok", "fine\tvalue"), 0);
    CHECK_INT(mw_text(rs, 200, "hi"), 0);
    out = res_render(&f, 1, 0);
    CHECK(strstr(out, "Injected") == NULL);
    CHECK(strstr(out, "\r\nX-Ok: fine\tvalue\r\n") != NULL);
    res_free(&f);
}

/* OWS around a value is no part of it (RFC 9110 §5.5), as the parser reads requests. */
TEST(response_header_value_trimmed_of_ows) {
    res_fixture f;
    mw_res *rs = res_start(&f);
    const char *out;
    CHECK_INT(mw_set_header(rs, "X-A", "  a b \t"), 0);
    CHECK_INT(mw_set_header(rs, "X-Blank", " \t "), 0);
    CHECK_INT(mw_set_header(rs, "Content-Type", "\ttext/html; charset=utf-8 "), 0);
    CHECK_INT(mw_set_header(rs, "Connection", " close "), 0);
    CHECK_INT(rs->close, 1);
    mw_write(rs, "x", 1);
    out = res_render(&f, 1, 0);
    CHECK(strstr(out, "\r\nX-A: a b\r\n") != NULL);
    CHECK(strstr(out, "\r\nX-Blank: \r\n") != NULL);
    CHECK(strstr(out, "\r\nContent-Type: text/html; charset=utf-8\r\n") != NULL);
    res_free(&f);
}

TEST(response_has_date_length_and_type) {
    res_fixture f;
    mw_res *rs = res_start(&f);
    const char *out;
    mw_text(rs, 201, "hello");
    out = res_render(&f, 1, 0);
    CHECK(strncmp(out, "HTTP/1.1 201 Created\r\nDate: ", 28) == 0);
    CHECK(strstr(out, " GMT\r\n") != NULL);
    CHECK(strstr(out, "\r\nContent-Type: text/plain; charset=utf-8\r\n") != NULL);
    CHECK(strstr(out, "\r\nContent-Length: 5\r\n\r\nhello") != NULL);
    CHECK(strstr(out, "Connection") == NULL);
    res_free(&f);
}

TEST(response_head_request_keeps_length_drops_body) {
    res_fixture f;
    mw_res *rs = res_start(&f);
    const char *out;
    rs->is_head = 1;
    mw_text(rs, 200, "Hello, World!");
    out = res_render(&f, 1, 0);
    CHECK(strstr(out, "Content-Length: 13\r\n\r\n") != NULL);
    CHECK(strstr(out, "Hello") == NULL);
    res_free(&f);
}

TEST(response_204_has_no_length_or_body) {
    res_fixture f;
    mw_res *rs = res_start(&f);
    const char *out;
    mw_send(rs, 204, NULL, "ignored", 7);
    out = res_render(&f, 1, 0);
    CHECK(strstr(out, "HTTP/1.1 204 No Content\r\n") == out);
    CHECK(strstr(out, "Content-Length") == NULL);
    CHECK(strstr(out, "ignored") == NULL);
    res_free(&f);
}

TEST(response_connection_header_rules) {
    res_fixture f;
    mw_res *rs = res_start(&f);
    mw_text(rs, 200, "x");
    CHECK(strstr(res_render(&f, 0, 0), "\r\nConnection: close\r\n") != NULL);
    f.w.out.len = 0;
    CHECK(strstr(res_render(&f, 1, 1), "\r\nConnection: keep-alive\r\n") != NULL);
    f.w.out.len = 0;
    CHECK_INT(mw_set_header(rs, "Connection", "keep-alive"), MW_EINVAL);
    CHECK_INT(mw_set_header(rs, "Connection", "close"), 0);
    CHECK_INT(rs->close, 1);
    res_free(&f);
}

TEST(response_status_range_checked) {
    res_fixture f;
    mw_res *rs = res_start(&f);
    CHECK_INT(mw_status(rs, 99), MW_EINVAL);
    CHECK_INT(mw_status(rs, 100), MW_EINVAL);
    CHECK_INT(mw_status(rs, 600), MW_EINVAL);
    CHECK_INT(mw_status(rs, 418), 0);
    CHECK_INT(rs->status, 418);
    res_free(&f);
}

TEST(response_printf_grows_the_body) {
    res_fixture f;
    mw_res *rs = res_start(&f);
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(mw_printf(rs, "%d-%s", 42, "a"), 4);
    CHECK_INT(mw_printf(rs, "%s", big), 999);
    CHECK_INT(rs->body->len, 1003);
    CHECK(memcmp(rs->body->data, "42-ax", 5) == 0);
    res_free(&f);
}

TEST(response_json_misuse_becomes_500) {
    res_fixture f;
    mw_res *rs = res_start(&f);
    mw_json *j = mw_json_begin(rs, 200);
    mw_json_object(j); /* returned without mw_json_end */
    mw__res_check(rs);
    CHECK_INT(rs->status, 500);
    CHECK_MEM(rs->body->data, rs->body->len,
              "{\"status\":500,\"error\":\"Internal Server Error\",\"detail\":\"the response could not be produced\"}");
    res_free(&f);
}

TEST(date_is_rfc9110_imf_fixdate) {
    res_fixture f;
    const char *d;
    res_start(&f);
    d = mw__date(&f.w);
    CHECK_INT(strlen(d), 29);
    CHECK(d[3] == ',' && d[4] == ' ' && strcmp(d + 25, " GMT") == 0);
    res_free(&f);
}

TEST(limits_settable_and_checked) {
    mw_app *app = mw_app_new();
    CHECK_INT(mw_get_limit(app, MW_LIMIT_BODY_BYTES), MW_MAX_BODY_BYTES);
    CHECK_INT(mw_set_limit(app, MW_LIMIT_BODY_BYTES, 8 << 20), 0);
    CHECK_INT(mw_get_limit(app, MW_LIMIT_BODY_BYTES), 8 << 20);
    CHECK_INT(mw_set_limit(app, MW_LIMIT_HEADER_COUNT, MW_MAX_HEADERS + 1), MW_EINVAL);
    CHECK_INT(mw_set_limit(app, MW_LIMIT_BODY_BYTES, -1), MW_EINVAL);
    CHECK_INT(mw_set_limit(app, MW_LIMIT_COUNT, 1), MW_EINVAL);
    /* a time so large that now + it overflows would make a deadline fire at once */
    CHECK_INT(mw_set_limit(app, MW_LIMIT_KEEPALIVE_TIMEOUT_MS, LLONG_MAX), MW_EINVAL);
    CHECK_INT(mw_set_limit(app, MW_LIMIT_WRITE_TIMEOUT_MS, (long long)1 << 41), MW_EINVAL);
    CHECK_INT(mw_set_limit(app, MW_LIMIT_KEEPALIVE_TIMEOUT_MS, (long long)1 << 40), 0);
    mw_app_free(app);
}

/* The listener asks the kernel to hand a connection over with its first bytes
   (TCP_DEFER_ACCEPT) unless MW_LIMIT_DEFER_ACCEPT_S is 0. */
static int listener_defer_seconds(long long limit) {
    mw_app *app = mw_app_new();
    int v = -1;
    socklen_t len = sizeof v;
    if (limit >= 0) mw_set_limit(app, MW_LIMIT_DEFER_ACCEPT_S, limit);
    if (mw_listen(app, "127.0.0.1", 0) <= 0 || getsockopt(app->listen_fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, &len) != 0)
        v = -1;
    mw_app_free(app);
    return v;
}

TEST(listener_defers_accept_unless_turned_off) {
#ifdef TCP_DEFER_ACCEPT
    CHECK(listener_defer_seconds(-1) >= MW_DEFER_ACCEPT_S); /* the default; Linux rounds up */
    CHECK(listener_defer_seconds(5) >= 5);
    CHECK_INT(listener_defer_seconds(0), 0);
#endif
}

/* mw_client_addr's text and the access log's client: IPv4 (kept as ::ffff:a.b.c.d) bare,
   IPv6 without brackets alone and in brackets before a port. */
TEST(client_address_text_for_ipv4_and_ipv6) {
    mw__addr v4, v6;
    char ip[INET6_ADDRSTRLEN], both[64];
    memset(&v4, 0, sizeof v4);
    memset(&v6, 0, sizeof v6);
    memcpy(v4.ip, mw__v4_prefix, 12);
    v4.ip[12] = 10, v4.ip[15] = 2, v4.port = 5000;
    v6.ip[15] = 1, v6.port = 443;
    mw__format_ip(&v4, ip);
    CHECK_STR(ip, "10.0.0.2");
    mw__format_addr(&v4, both, sizeof both);
    CHECK_STR(both, "10.0.0.2:5000");
    mw__format_ip(&v6, ip);
    CHECK_STR(ip, "::1");
    mw__format_addr(&v6, both, sizeof both);
    CHECK_STR(both, "[::1]:443");
}

int main(void) {
    RUN(parser_table_cases);
    RUN(parser_same_result_in_pieces_and_at_page_end);
    RUN(parser_exposes_request_parts);
    RUN(parser_absolute_form_gives_path);
    RUN(parser_absolute_form_authority_is_the_host);
    RUN(parser_keep_alive_rules);
    RUN(parser_expect_continue_flag);
    RUN(parser_limits_before_head_completes);
    RUN(parser_too_many_fields_is_431);
    RUN(parser_run_time_header_count_limit);
    RUN(chunked_table_cases_at_once_and_byte_by_byte);
    RUN(chunked_stops_at_message_end_leaving_pipelined_bytes);
    RUN(chunked_extension_and_trailer_floods_refused);
    RUN(chunked_refusals_say_why);
    RUN(chunked_decoded_total_over_limit_is_413);
    RUN(percent_decoding);
    RUN(percent_decoding_trailing_escape_at_page_end);
    RUN(dot_segments_detected);
    RUN(router_static_beats_param_beats_wildcard_whatever_the_order);
    RUN(router_backtracks_from_static_to_param);
    RUN(router_method_selection_and_allow);
    RUN(router_any_method_route);
    RUN(router_root_and_trailing_slash_are_distinct);
    RUN(router_rejects_malformed_and_duplicate_patterns);
    RUN(router_too_many_params_refused);
    RUN(router_public_api_reports_errors_and_refuses_to_serve);
    RUN(json_nested_document);
    RUN(json_string_escaping_rfc8259);
    RUN(json_string_with_nul_and_utf8);
    RUN(json_invalid_utf8_becomes_replacement_character);
    RUN(json_integers_full_64_bit_range);
    RUN(json_integers_as_printf_spells_them);
    RUN(json_doubles_round_trip);
    RUN(json_misuse_is_an_error_not_output);
    RUN(json_end_closes_open_containers);
    RUN(json_depth_limit);
    RUN(json_new_writes_into_memory_and_text_ends_it);
    RUN(json_text_is_null_after_misuse_or_with_no_value);
    RUN(response_header_setter_refuses_injection);
    RUN(response_header_value_trimmed_of_ows);
    RUN(response_has_date_length_and_type);
    RUN(response_head_request_keeps_length_drops_body);
    RUN(response_204_has_no_length_or_body);
    RUN(response_connection_header_rules);
    RUN(response_status_range_checked);
    RUN(response_printf_grows_the_body);
    RUN(response_json_misuse_becomes_500);
    RUN(date_is_rfc9110_imf_fixdate);
    RUN(limits_settable_and_checked);
    RUN(listener_defers_accept_unless_turned_off);
    RUN(client_address_text_for_ipv4_and_ipv6);
    return test_summary();
}
