#define MICROWEB_IMPLEMENTATION
#include "microweb.h"
#include "harness.h"

#include <stdlib.h>
#include <sys/stat.h>

/* Tests of static files' pure parts (HTTP-dates, ranges, entity tags, Accept-Encoding,
   types) and of mounts through the in-process test client. tests/static.py drives a
   real server with real clients and the hostile paths. */

static long long date_of(const char *s) {
    long long t = -1;
    return mw__parse_http_date(s, strlen(s), &t) ? t : -1;
}

/* RFC 9110 §5.6.7's own example, in its three forms. */
TEST(test_http_date_three_forms) {
    CHECK_INT(date_of("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    CHECK_INT(date_of("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
    CHECK_INT(date_of("Sun Nov  6 08:49:37 1994"), 784111777);
    CHECK_INT(date_of("Sun Nov 16 08:49:37 1994"), 784111777 + 10 * 86400);
}

TEST(test_http_date_calendar_edges) {
    CHECK_INT(date_of("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
    CHECK_INT(date_of("Tue, 29 Feb 2000 12:00:00 GMT"), 951825600);
    CHECK_INT(date_of("Tue, 19 Jan 2038 03:14:08 GMT"), 2147483648LL);   /* past a 32-bit time_t */
    CHECK_INT(date_of("Wednesday, 01-Jan-25 00:00:00 GMT"), 1735689600); /* two-digit year: 2025 */
}

TEST(test_http_date_round_trip) {
    char out[80];
    mw__format_http_date(784111777, out);
    CHECK_STR(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK_INT(date_of(out), 784111777);
}

/* The hand-written formatter against gmtime_r and strftime, from 1970 to past 2100. */
TEST(test_http_date_matches_the_c_library) {
    long long t;
    int mismatches = 0;
    for (t = 0; t < 4200000000LL; t += 86400 * 7 + 3607) {
        char ours[MW__DATE_LEN + 1], libc[64];
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(libc, sizeof libc, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        mw__format_http_date(t, ours);
        if (strcmp(ours, libc) != 0 && mismatches++ < 3) printf("  %lld: %s, want %s\n", t, ours, libc);
    }
    CHECK_INT(mismatches, 0);
}

TEST(test_http_date_clamped_to_four_digit_years) {
    char out[MW__DATE_LEN + 1];
    mw__format_http_date(-9223372036854775807LL - 1, out); /* a file system may hold any mtime */
    CHECK_STR(out, "Sat, 01 Jan 0000 00:00:00 GMT");
    mw__format_http_date(253402300800LL, out);
    CHECK_STR(out, "Fri, 31 Dec 9999 23:59:59 GMT");
}

/* RFC 9110 §5.6.7: a two-digit year more than 50 years ahead is in the past century. */
TEST(test_rfc850_year_window) {
    time_t now = time(NULL);
    struct tm tm;
    int year;
    gmtime_r(&now, &tm);
    year = tm.tm_year + 1900;
    CHECK_INT(mw__rfc850_year((year + 50) % 100), year + 50);
    CHECK_INT(mw__rfc850_year((year + 51) % 100), year + 51 - 100);
    CHECK_INT(mw__rfc850_year(year % 100), year);
}

TEST(test_http_date_refuses_malformed) {
    static const char *const bad[] = {"",
                                      "Sun, 06 Nov 1994 08:49:37",
                                      "Sun, 06 Nov 1994 08:49:37 UTC",
                                      "Sun, 6 Nov 1994 08:49:37 GMT",
                                      "Sun, 06 Foo 1994 08:49:37 GMT",
                                      "Sun, 32 Nov 1994 08:49:37 GMT",
                                      "Sun, 06 Nov 1994 24:00:00 GMT",
                                      "Sun, 06 Nov 1994 08:60:00 GMT",
                                      "Sun, 06 Nov 1994 08:49:37 GMT ",
                                      "Sun Nov  6 08:49:37 94",
                                      "1994-11-06T08:49:37Z",
                                      "yesterday"};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK_INT(date_of(bad[i]), -1);
}

static int range_of(const char *v, unsigned long long size, unsigned long long *off, unsigned long long *len) {
    *off = *len = 12345;
    return mw__parse_range(v, size, off, len);
}

TEST(test_range_forms) {
    unsigned long long off, len;
    CHECK_INT(range_of("bytes=0-9", 100, &off, &len), MW__RANGE_PART);
    CHECK(off == 0 && len == 10);
    CHECK_INT(range_of("bytes=90-", 100, &off, &len), MW__RANGE_PART);
    CHECK(off == 90 && len == 10);
    CHECK_INT(range_of("bytes=-10", 100, &off, &len), MW__RANGE_PART);
    CHECK(off == 90 && len == 10);
    CHECK_INT(range_of("bytes=-1000", 100, &off, &len), MW__RANGE_PART);
    CHECK(off == 0 && len == 100);
    CHECK_INT(range_of("bytes=50-1000", 100, &off, &len), MW__RANGE_PART);
    CHECK(off == 50 && len == 50);
    CHECK_INT(range_of("Bytes=99-99", 100, &off, &len), MW__RANGE_PART);
    CHECK(off == 99 && len == 1);
}

TEST(test_range_past_4_gib) {
    unsigned long long off, len, size = 6ULL << 30;
    CHECK_INT(range_of("bytes=5000000000-", size, &off, &len), MW__RANGE_PART);
    CHECK(off == 5000000000ULL && len == size - 5000000000ULL);
}

TEST(test_range_unsatisfiable) {
    unsigned long long off, len;
    CHECK_INT(range_of("bytes=100-", 100, &off, &len), MW__RANGE_UNSATISFIABLE);
    CHECK_INT(range_of("bytes=100-200", 100, &off, &len), MW__RANGE_UNSATISFIABLE);
    CHECK_INT(range_of("bytes=-0", 100, &off, &len), MW__RANGE_UNSATISFIABLE);
    CHECK_INT(range_of("bytes=0-", 0, &off, &len), MW__RANGE_UNSATISFIABLE);
    CHECK_INT(range_of("bytes=-5", 0, &off, &len), MW__RANGE_UNSATISFIABLE);
    CHECK_INT(range_of("bytes=99999999999999999999999999-", 100, &off, &len), MW__RANGE_UNSATISFIABLE);
}

TEST(test_range_answered_whole) {
    static const char *const whole[] = {"bytes=",    "bytes=-",    "bytes=5-2",  "bytes=0-1,3-4", "items=0-1",
                                        "bytes=a-b", "bytes=1--2", "bytes=0-9x", "bytes 0-9",     ""};
    unsigned long long off, len;
    size_t i;
    for (i = 0; i < sizeof whole / sizeof whole[0]; i++) {
        CHECK_INT(range_of(whole[i], 100, &off, &len), MW__RANGE_WHOLE);
        CHECK(off == 12345 && len == 12345); /* untouched */
    }
}

TEST(test_if_none_match_lists) {
    const char *tag = "\"a-b-c\"";
    CHECK(mw__none_match_hits("\"a-b-c\"", tag, 7));
    CHECK(mw__none_match_hits("W/\"a-b-c\"", tag, 7));
    CHECK(mw__none_match_hits("\"x\", \"a-b-c\"", tag, 7));
    CHECK(mw__none_match_hits("*", tag, 7));
    CHECK(!mw__none_match_hits("\"a-b\"", tag, 7));
    CHECK(!mw__none_match_hits("a-b-c", tag, 7));
    CHECK(!mw__none_match_hits("", tag, 7));
}

TEST(test_if_range_is_strong) {
    const char *tag = "\"a-b-c\"";
    CHECK(mw__if_range_holds("\"a-b-c\"", tag, 7, 784111777));
    CHECK(!mw__if_range_holds("W/\"a-b-c\"", tag, 7, 784111777));
    CHECK(!mw__if_range_holds("\"a-b\"", tag, 7, 784111777));
    CHECK(mw__if_range_holds("Sun, 06 Nov 1994 08:49:37 GMT", tag, 7, 784111777));
    CHECK(!mw__if_range_holds("Sun, 06 Nov 1994 08:49:38 GMT", tag, 7, 784111777));
    CHECK(!mw__if_range_holds("soon", tag, 7, 784111777));
}

TEST(test_accept_encoding) {
    CHECK(mw__accepts_coding("gzip, deflate, br", "br", NULL));
    CHECK(mw__accepts_coding("gzip;q=0.5", "gzip", NULL));
    CHECK(mw__accepts_coding("GZip ; q=1", "gzip", NULL));
    CHECK(!mw__accepts_coding("gzip;q=0", "gzip", NULL));
    CHECK(!mw__accepts_coding("gzip; q=0.000", "gzip", NULL));
    CHECK(mw__accepts_coding("gzip;q=0.001", "gzip", NULL));
    CHECK(mw__accepts_coding("*", "br", NULL));
    CHECK(!mw__accepts_coding("*;q=0", "br", NULL));
    CHECK(!mw__accepts_coding("br;q=0, *", "br", NULL));
    CHECK(mw__accepts_coding("br;q=0, *", "gzip", NULL));
    CHECK(!mw__accepts_coding("identity", "gzip", NULL));
    CHECK(!mw__accepts_coding("gzipx, xgzip", "gzip", NULL));
    CHECK(!mw__accepts_coding("", "gzip", NULL));
    /* an alias is the same coding: refusing one name refuses the other, whatever "*" says */
    CHECK(mw__accepts_coding("x-gzip", "gzip", "x-gzip"));
    CHECK(!mw__accepts_coding("gzip;q=0, *", "gzip", "x-gzip"));
    CHECK(!mw__accepts_coding("x-gzip;q=0, *", "gzip", "x-gzip"));
}

TEST(test_builtin_types) {
    CHECK_STR(mw__builtin_type("js", 2), "text/javascript; charset=utf-8");
    CHECK_STR(mw__builtin_type("CSS", 3), "text/css; charset=utf-8");
    CHECK_STR(mw__builtin_type("wasm", 4), "application/wasm");
    CHECK_STR(mw__builtin_type("svg", 3), "image/svg+xml");
    CHECK(mw__builtin_type("exe", 3) == NULL);
    CHECK(mw__builtin_type("j", 1) == NULL);
}

TEST(test_file_extension) {
    mw_str e = mw__file_extension("a/b.min.js");
    CHECK(e.len == 2 && memcmp(e.ptr, "js", 2) == 0);
    CHECK_INT((long long)mw__file_extension("a.dir/README").len, 0);
    CHECK_INT((long long)mw__file_extension(".bashrc").len, 0);
    CHECK_INT((long long)mw__file_extension("noext").len, 0);
}

/* ---- mounts, through the test client ---- */

static char folder[64];

static void write_file(const char *name, const char *text) {
    char path[160];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", folder, name);
    f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void make_folder(void) {
    char sub[96];
    strcpy(folder, "/tmp/mw-static-unit-XXXXXX");
    if (!mkdtemp(folder)) abort();
    snprintf(sub, sizeof sub, "%s/sub", folder);
    mkdir(sub, 0755);
    write_file("hello.txt", "hello, file\n");
    write_file("sub/index.html", "<p>sub</p>\n");
}

static void remove_folder(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", folder);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", folder);
}

TEST(test_mount_through_the_test_client) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    CHECK_INT(mw_static(app, "/files", folder, NULL), 0);
    r = mw_test_request(app, "GET", "/files/hello.txt", NULL, NULL, 0);
    CHECK_INT(r->status, 200);
    CHECK_MEM(r->body, r->body_len, "hello, file\n");
    CHECK_STR(mw_test_header(r, "Content-Type"), "text/plain; charset=utf-8");
    mw_test_free(r);
    r = mw_test_request(app, "GET", "/files/hello.txt", "Range: bytes=7-10", NULL, 0);
    CHECK_INT(r->status, 206);
    CHECK_MEM(r->body, r->body_len, "file");
    mw_test_free(r);
    r = mw_test_request(app, "GET", "/files/sub", NULL, NULL, 0);
    CHECK_INT(r->status, 301);
    CHECK_STR(mw_test_header(r, "Location"), "/files/sub/");
    mw_test_free(r);
    r = mw_test_request(app, "GET", "/files/sub/", NULL, NULL, 0);
    CHECK_MEM(r->body, r->body_len, "<p>sub</p>\n");
    mw_test_free(r);
    mw_app_free(app);
}

TEST(test_mount_at_the_root) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    CHECK_INT(mw_static(app, "/", folder, NULL), 0);
    r = mw_test_request(app, "GET", "/hello.txt", NULL, NULL, 0);
    CHECK_INT(r->status, 200);
    mw_test_free(r);
    r = mw_test_request(app, "GET", "/", NULL, NULL, 0);
    CHECK_INT(r->status, 404); /* no index.html at the top: and no listing */
    mw_test_free(r);
    mw_app_free(app);
}

TEST(test_content_type_override_latest_wins) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    CHECK_INT(mw_static(app, "/f", folder, NULL), 0);
    CHECK_INT(mw_static_type(app, "txt", "text/x-first"), 0);
    CHECK_INT(mw_static_type(app, "TXT", "text/x-second"), 0);
    r = mw_test_request(app, "GET", "/f/hello.txt", NULL, NULL, 0);
    CHECK_STR(mw_test_header(r, "Content-Type"), "text/x-second");
    mw_test_free(r);
    CHECK_INT(mw_static_type(app, ".txt", "text/plain"), MW_EINVAL);
    CHECK_INT(mw_static_type(app, "txt", "text/plain\r\nX: y"), MW_EINVAL);
    mw_app_free(app);
}

TEST(test_mount_refuses_bad_arguments) {
    mw_app *app = mw_app_new();
    mw_static_opts bad_cache = {"no-cache\r\nX-Injected: 1", 0, 0};
    CHECK_INT(mw_static(app, "/files/", folder, NULL), MW_EINVAL);
    CHECK_INT(mw_static(app, "files", folder, NULL), MW_EINVAL);
    CHECK_INT(mw_static(app, "/:id", folder, NULL), MW_EINVAL);
    CHECK_INT(mw_static(app, "/files", "/nonexistent/folder", NULL), MW_EINVAL);
    CHECK_INT(mw_static(app, "/files", folder, &bad_cache), MW_EINVAL);
    CHECK_INT(mw_static(app, "/files", NULL, NULL), MW_EINVAL);
    CHECK_INT(mw_listen(app, "127.0.0.1", 0) > 0, 1);
    CHECK_INT(mw_serve(app), MW_EINVAL); /* a setup error: it refuses to start */
    mw_app_free(app);
}

TEST(test_two_mounts_on_one_prefix_refused) {
    mw_app *app = mw_app_new();
    CHECK_INT(mw_static(app, "/files", folder, NULL), 0);
    CHECK_INT(mw_static(app, "/files", folder, NULL), MW_EEXIST);
    mw_app_free(app);
}

int main(void) {
    RUN(test_http_date_three_forms);
    RUN(test_http_date_calendar_edges);
    RUN(test_http_date_round_trip);
    RUN(test_http_date_matches_the_c_library);
    RUN(test_http_date_clamped_to_four_digit_years);
    RUN(test_rfc850_year_window);
    RUN(test_http_date_refuses_malformed);
    RUN(test_range_forms);
    RUN(test_range_past_4_gib);
    RUN(test_range_unsatisfiable);
    RUN(test_range_answered_whole);
    RUN(test_if_none_match_lists);
    RUN(test_if_range_is_strong);
    RUN(test_accept_encoding);
    RUN(test_builtin_types);
    RUN(test_file_extension);
    make_folder();
    RUN(test_mount_through_the_test_client);
    RUN(test_mount_at_the_root);
    RUN(test_content_type_override_latest_wins);
    RUN(test_mount_refuses_bad_arguments);
    RUN(test_two_mounts_on_one_prefix_refused);
    remove_folder();
    return test_summary();
}
