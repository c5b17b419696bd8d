/* traceapp - routes for the trace mode's tests (tests/trace.py), and, with --client,
   the trace through the in-process test client (mw_trace, the logger, refusals).

   build/traceapp            serves on PORT (MW_TRACE=1 from the environment)
   build/traceapp --client   runs its own tests and ends "N passed, N failed" */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static void notes_list(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "no notes yet");
}

static void note_get(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    mw_json_object(j);
    mw_json_key_string(j, "id", mw_param(rq, "id"));
    mw_json_end(j);
}

static void note_add(mw_req *rq, mw_res *rs) {
    mw_str body = mw_body(rq);
    mw_status(rs, 201);
    mw_printf(rs, "stored %lu bytes", (unsigned long)body.len);
}

static void flushed(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_printf(rs, "first part\n");
    mw_flush(rs);
    mw_printf(rs, "second part\n");
}

static long pull_once(void *arg, char *buf, size_t cap) {
    int *done = (int *)arg;
    if (*done || cap < 6) return 0;
    *done = 1;
    memcpy(buf, "pulled", 6);
    return 6;
}

static void pulled(mw_req *rq, mw_res *rs) {
    int *done = (int *)mw_req_alloc(rq, sizeof *done);
    if (!done) return;
    *done = 0;
    mw_send_pull(rs, 200, "text/plain", pull_once, done, NULL);
}

static void events(mw_req *rq, mw_res *rs) {
    mw_stream *s = mw_sse_open(rs);
    (void)rq;
    mw_sse_send(s, "note", NULL, "one");
    mw_stream_close(s); /* the body ends, and the handle is given back */
}

static void ws_echo(mw_ws *ws, const char *data, size_t len, int kind) { mw_ws_send(ws, data, len, kind); }

static mw_app *trace_app(void) {
    mw_app *app = mw_app_new();
    mw_ws_opts ws;
    if (!app) return NULL;
    memset(&ws, 0, sizeof ws);
    ws.on_message = ws_echo;
    ws.origins = "*";
    mw_websocket(app, "/ws", &ws);
    mw_get(app, "/events", events);
    mw_static(app, "/static", "tests/trace/static", NULL); /* run from the repository's top */
    mw_get(app, "/notes", notes_list);
    mw_post(app, "/notes", note_add);
    mw_get(app, "/notes/:id", note_get);
    mw_get(app, "/flushed", flushed);
    mw_get(app, "/pulled", pulled);
    return app;
}

/* ---- the trace through the test client: stderr goes to a file meanwhile ---- */

static char captured[65536];

/* Runs the request with stderr in a temporary file; captured holds what was written. */
static mw_test_res *with_stderr_captured(mw_app *app, const char *raw) {
    FILE *f = tmpfile();
    int saved = dup(2);
    size_t n;
    mw_test_res *r;
    fflush(stderr);
    dup2(fileno(f), 2);
    r = mw_test_raw(app, raw, strlen(raw));
    dup2(saved, 2);
    close(saved);
    rewind(f);
    n = fread(captured, 1, sizeof captured - 1, f);
    captured[n] = '\0';
    fclose(f);
    return r;
}

static int count_of(const char *text, const char *part) {
    int n = 0;
    for (text = strstr(text, part); text; text = strstr(text + 1, part)) n++;
    return n;
}

TEST(mw_trace_writes_one_account_per_exchange_through_the_test_client) {
    mw_app *app = trace_app();
    mw_test_res *r;
    CHECK_INT(mw_trace(app, 1), 0);
    r = with_stderr_captured(app, "GET /notes/7 HTTP/1.1\r\nHost: test\r\n\r\n");
    CHECK_INT(r->status, 200);
    CHECK_INT(count_of(captured, "-- 127.0.0.1:0 "), 1);
    CHECK(strstr(captured, "request head as received, 37 bytes:\n  | GET /notes/7 HTTP/1.1\\r\\n\n") != NULL);
    CHECK(strstr(captured, "  route         GET /notes/:id, with id = \"7\"\n") != NULL);
    CHECK(strstr(captured, "== GET /notes/7 -> 200 OK, ") != NULL);
    CHECK(strchr(captured, '\033') == NULL); /* a file is no terminal: no colours */
    mw_test_free(r);
    mw_app_free(app);
}

TEST(without_mw_trace_nothing_is_written) {
    mw_app *app = trace_app();
    mw_test_res *r = with_stderr_captured(app, "GET /notes HTTP/1.1\r\nHost: test\r\n\r\n");
    CHECK_INT(r->status, 200);
    CHECK_STR(captured, "");
    mw_test_free(r);
    CHECK_INT(mw_trace(app, 1), 0);
    CHECK_INT(mw_trace(app, 0), 0);
    r = with_stderr_captured(app, "GET /notes HTTP/1.1\r\nHost: test\r\n\r\n");
    CHECK_STR(captured, "");
    mw_test_free(r);
    mw_app_free(app);
    CHECK_INT(mw_trace(NULL, 1), MW_EINVAL);
}

TEST(a_refusal_names_its_rule) {
    mw_app *app = trace_app();
    mw_test_res *r;
    mw_trace(app, 1);
    r = with_stderr_captured(app, "GET /notes HTTP/1.1\r\nHost: test\r\nBad: a\x01z\r\n\r\n");
    CHECK_INT(r->status, 400);
    CHECK(strstr(captured, "  | Bad: a\\x01z\\r\\n\n") != NULL);
    CHECK(strstr(captured, "  refused       400: invalid byte in header field value (RFC 9110 §5.5)\n") != NULL);
    CHECK(strstr(captured, "== refused -> 400 Bad Request, ") != NULL);
    mw_test_free(r);
    mw_app_free(app);
}

static int logged_level = -1;
static char logged[65536];

static void logger(void *arg, mw_log_level level, const char *line) {
    (void)arg;
    if (level != MW_LOG_TRACE) return;
    logged_level = (int)level;
    snprintf(logged, sizeof logged, "%s", line);
}

TEST(an_application_logger_gets_the_account_as_one_trace_line) {
    mw_app *app = trace_app();
    mw_test_res *r;
    mw_set_logger(app, logger, NULL);
    mw_trace(app, 1);
    r = mw_test_request(app, "POST", "/notes", NULL, "abc", 3);
    CHECK_INT(r->status, 201);
    CHECK_INT(logged_level, MW_LOG_TRACE);
    CHECK(strncmp(logged, "-- 127.0.0.1:0 ", 15) == 0);
    CHECK(strstr(logged, "  body          3 bytes, as Content-Length says (RFC 9112 §6.2)\n") != NULL);
    CHECK(strstr(logged, "== POST /notes -> 201 Created, ") != NULL);
    CHECK(logged[strlen(logged) - 1] == '\n');
    mw_test_free(r);
    mw_app_free(app);
}

TEST(every_refusal_reason_has_a_rule) {
#define HAS_RULE(name, text, rule) CHECK_STR(mw__refusal_rule(mw__why_##name), rule);
    MW__REFUSALS(HAS_RULE)
#undef HAS_RULE
    CHECK(mw__refusal_rule("line not ended by CRLF") == NULL); /* found by the reason's name, not a copy */
}

static int client_tests(void) {
    unsetenv("MW_TRACE");
    RUN(mw_trace_writes_one_account_per_exchange_through_the_test_client);
    RUN(without_mw_trace_nothing_is_written);
    RUN(a_refusal_names_its_rule);
    RUN(an_application_logger_gets_the_account_as_one_trace_line);
    RUN(every_refusal_reason_has_a_rule);
    return test_summary();
}

int main(int argc, char **argv) {
    mw_app *app;
    if (argc > 1 && strcmp(argv[1], "--client") == 0) return client_tests();
    if (!(app = trace_app())) return 1;
    return mw_run(app); /* PORT, HOST, MW_THREADS and MW_TRACE from the environment */
}
