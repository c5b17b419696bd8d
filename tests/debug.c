/* debug.c - debug mode (mw_debug, MW_LIMIT_DEBUG, MW_DEBUG in the environment) through
   the in-process test client: each mistake microweb answers for the handler, with debug
   mode off (the answer production gives, pinned byte for byte) and on (the same shape,
   with the route and what went wrong). */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include <math.h>
#include <stdlib.h>

#include "harness.h"

#define GENERIC_500 \
    "{\"status\":500,\"error\":\"Internal Server Error\",\"detail\":\"the response could not be produced\"}"

/* ------------------------------------------------------------------ handlers */

static void writes_nothing(mw_req *rq, mw_res *rs) { (void)rq, (void)rs; }

static void bad_status(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_status(rs, 700);
    mw_printf(rs, "never sent");
}

static void key_in_array(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    (void)rq;
    mw_json_array(j);
    mw_json_key_string(j, "a", "b");
    mw_json_end(j);
}

static void value_where_key_is_due(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    (void)rq;
    mw_json_object(j);
    mw_json_int(j, 1);
    mw_json_end(j);
}

static void key_after_key(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    (void)rq;
    mw_json_object(j);
    mw_json_key(j, "a");
    mw_json_key(j, "b");
    mw_json_end(j);
}

static void nan_value(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    (void)rq;
    mw_json_object(j);
    mw_json_key_double(j, "ratio", NAN);
    mw_json_key_int(j, "later", 1); /* the first misuse is the one told */
    mw_json_end(j);
}

static void close_with_nothing_open(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    (void)rq;
    mw_json_close(j);
}

static void two_top_level_values(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    (void)rq;
    mw_json_bool(j, 1);
    mw_json_null(j);
    mw_json_end(j);
}

static void nothing_written_before_end(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_json_end(mw_json_begin(rs, 200));
}

static void json_value_in_object_without_key(mw_req *rq, mw_res *rs) {
    mw_jv_doc *doc = mw_jv_parse("[1,2]", 5, NULL, NULL);
    mw_json *j = mw_json_begin(rs, 200);
    (void)rq;
    mw_json_object(j);
    mw_json_value(j, mw_jv_root(doc));
    mw_json_end(j);
    mw_jv_free(doc);
}

static void json_left_open(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    (void)rq;
    mw_json_object(j);
}

static void printf_after_json_begin(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    (void)rq;
    mw_json_object(j);
    mw_printf(rs, "garbage");
    mw_json_end(j);
}

static void bad_redirect(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_redirect(rs, 302, "//evil.example/");
}

static void answers_twice(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "first");
    mw_send_json(rs, 201, "{\"second\":true}");
}

static void refused_header(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_set_header(rs, "X-Bad\r\nInjected", "1");
    mw_text(rs, 200, "ok");
}

static long no_more(void *arg, char *buf, size_t cap) { return (void)arg, (void)buf, (void)cap, 0; }

static void status_after_pull_body(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_send_pull(rs, 200, "text/plain", no_more, NULL, NULL);
    mw_status(rs, 404);
}

static void render_missing_template(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_render(rs, 200, "nope", NULL);
}

static void reads_json(mw_req *rq, mw_res *rs) {
    if (mw_req_json(rq)) mw_text(rs, 200, "ok");
}

static void fine(mw_req *rq, mw_res *rs) { mw_text(rs, 200, mw_path(rq)); }

/* ------------------------------------------------------------------ helpers */

static int logged_lines;

static void count_log(void *arg, mw_log_level level, const char *line) {
    (void)arg, (void)level, (void)line;
    logged_lines++;
}

/* A handler mistake on a route, what debug mode says about it, and the call it names. */
typedef struct mistake {
    const char *pattern, *target;
    mw_handler handler;
    const char *detail; /* debug mode's "detail" */
} mistake;

static const mistake mistakes[] = {
    {"/notes/{id:int}", "/notes/7", writes_nothing, "handler returned without writing a response"},
    {"/status", "/status", bad_status, "invalid status code 700 (200-599)"},
    {"/json/key-in-array", "/json/key-in-array", key_in_array, "mw_json_key_string: not inside an object"},
    {"/json/value-for-key", "/json/value-for-key", value_where_key_is_due, "mw_json_int: a value where a key is due"},
    {"/json/key-after-key", "/json/key-after-key", key_after_key, "mw_json_key: a key where a value is due"},
    {"/json/nan", "/json/nan", nan_value, "mw_json_key_double: NaN or infinity has no JSON form"},
    {"/json/close", "/json/close", close_with_nothing_open, "mw_json_close: close with no container open"},
    {"/json/two", "/json/two", two_top_level_values, "mw_json_null: more than one top-level value"},
    {"/json/empty", "/json/empty", nothing_written_before_end, "mw_json_end: no value written"},
    {"/json/value", "/json/value", json_value_in_object_without_key, "mw_json_value: a value where a key is due"},
    {"/json/open", "/json/open", json_left_open, "handler returned before mw_json_end"},
    {"/json/printf", "/json/printf", printf_after_json_begin, "mw_write or mw_printf after mw_json_begin"},
    {"/redirect", "/redirect", bad_redirect, "mw_redirect: status 301/302/303/307/308 and a safe location"},
    {"/page/:name", "/page/x", render_missing_template, "mw_render: no template of that name (\"nope\")"},
};
#define NMISTAKES (sizeof mistakes / sizeof mistakes[0])

static mw_app *make_app(int debug) {
    mw_app *app = mw_app_new();
    size_t i;
    for (i = 0; i < NMISTAKES; i++) mw_get(app, mistakes[i].pattern, mistakes[i].handler);
    mw_get(app, "/twice", answers_twice);
    mw_get(app, "/bad-header", refused_header);
    mw_get(app, "/pull", status_after_pull_body);
    mw_post(app, "/json-in", reads_json);
    mw_delete(app, "/notes/{id:int}", fine);
    mw_any(app, "/any/*rest", fine);
    mw_template(app, "page", "<p>{{x}}</p>");
    mw_set_logger(app, count_log, NULL);
    if (debug) CHECK_INT(mw_debug(app, 1), 0);
    return app;
}

static mw_test_res *get(mw_app *app, const char *method, const char *target) {
    return mw_test_request(app, method, target, NULL, NULL, 0);
}

/* The member's string value, or "(none)". */
static const char *member(mw_test_res *r, const char *name) {
    return mw_jv_str(mw_jv_get(mw_test_body_json(r), name), "(none)");
}

/* A debug-mode problem answer: status, the usual members, then detail and route. */
static void check_explained(mw_test_res *r, int status, const char *detail, const char *route) {
    const mw_jv *doc = mw_test_body_json(r);
    CHECK_INT(r->status, status);
    CHECK_STR(mw_test_header(r, "Content-Type"), "application/json");
    CHECK_INT(mw_jv_int(mw_jv_get(doc, "status"), 0), status);
    CHECK_STR(member(r, "detail"), detail);
    CHECK_STR(member(r, "route"), route);
}

/* ------------------------------------------------------------------ tests */

/* Off, every mistake answers the one generic 500 (as before debug mode existed); on,
   the 500 says what went wrong, where. */
TEST(mistakes_answer_a_generic_500_with_debug_mode_off) {
    mw_app *app = make_app(0);
    size_t i;
    for (i = 0; i < NMISTAKES; i++) {
        mw_test_res *r = get(app, "GET", mistakes[i].target);
        CHECK_INT(r->status, 500);
        CHECK_MEM(r->body, r->body_len, GENERIC_500);
        CHECK(mw_test_header(r, "Microweb-Debug") == NULL);
        mw_test_free(r);
    }
    mw_app_free(app);
}

TEST(mistakes_are_explained_with_the_route_in_debug_mode) {
    mw_app *app = make_app(1);
    size_t i;
    for (i = 0; i < NMISTAKES; i++) {
        char route[128];
        mw_test_res *r = get(app, "GET", mistakes[i].target);
        snprintf(route, sizeof route, "GET %s", mistakes[i].pattern);
        check_explained(r, 500, mistakes[i].detail, route);
        CHECK_STR(member(r, "error"), "Internal Server Error");
        mw_test_free(r);
    }
    mw_app_free(app);
}

/* The whole body, so the shape is pinned: mw_error's members, then "route". */
TEST(debug_answer_keeps_the_problem_shape_and_adds_route) {
    mw_app *app = make_app(1);
    mw_test_res *r = get(app, "GET", "/json/key-in-array");
    CHECK_MEM(r->body, r->body_len,
              "{\"status\":500,\"error\":\"Internal Server Error\",\"detail\":\"mw_json_key_string: not inside an "
              "object\",\"route\":\"GET /json/key-in-array\"}");
    mw_test_free(r);
    mw_app_free(app);
}

/* Debug mode logs as production does: once per route and kind. */
TEST(debug_mode_logs_a_mistake_once_per_route_as_production_does) {
    mw_app *app = make_app(1);
    mw_test_res *r;
    logged_lines = 0;
    r = get(app, "GET", "/status");
    mw_test_free(r);
    r = get(app, "GET", "/status");
    check_explained(r, 500, "invalid status code 700 (200-599)", "GET /status");
    mw_test_free(r);
    CHECK_INT(logged_lines, 1);
    mw_app_free(app);
}

/* A second whole response is sent (the last one) in both modes; debug mode says so in
   a header field, on every answer (the log says it once). */
TEST(second_response_is_told_in_a_header_field_in_debug_mode_only) {
    int debug, round;
    for (debug = 0; debug < 2; debug++) {
        mw_app *app = make_app(debug);
        for (round = 0; round < 2; round++) {
            mw_test_res *r = get(app, "GET", "/twice");
            CHECK_INT(r->status, 201);
            CHECK_MEM(r->body, r->body_len, "{\"second\":true}");
            if (debug)
                CHECK_STR(mw_test_header(r, "Microweb-Debug"),
                          "route GET /twice: a second response replaced the first (the last is sent)");
            else CHECK(mw_test_header(r, "Microweb-Debug") == NULL);
            mw_test_free(r);
        }
        mw_app_free(app);
    }
}

/* A refused header is left out in both modes; debug mode names it, its CR and LF made
   harmless ('?'), so the note can never add a header field of its own. */
TEST(refused_header_is_told_without_its_control_bytes_in_debug_mode) {
    int debug;
    for (debug = 0; debug < 2; debug++) {
        mw_app *app = make_app(debug);
        mw_test_res *r = get(app, "GET", "/bad-header");
        CHECK_INT(r->status, 200);
        CHECK(strstr(r->raw, "Injected") == NULL || debug);
        CHECK(strstr(r->raw, "\r\nInjected") == NULL);
        if (debug)
            CHECK_STR(mw_test_header(r, "Microweb-Debug"),
                      "route GET /bad-header: mw_set_header refused header \"X-Bad??Injected\" (invalid name or "
                      "value, or a header microweb sets itself)");
        else CHECK(mw_test_header(r, "Microweb-Debug") == NULL);
        mw_test_free(r);
        mw_app_free(app);
    }
}

/* mw_status once a body source is set is ignored (the body is framed for its status):
   the head is not sent yet, so debug mode can say so. */
TEST(status_after_the_body_began_is_told_in_debug_mode) {
    int debug;
    for (debug = 0; debug < 2; debug++) {
        mw_app *app = make_app(debug);
        mw_test_res *r = get(app, "GET", "/pull");
        CHECK_INT(r->status, 200);
        if (debug)
            CHECK_STR(mw_test_header(r, "Microweb-Debug"), "route GET /pull: mw_status after the body began: ignored");
        else CHECK(mw_test_header(r, "Microweb-Debug") == NULL);
        mw_test_free(r);
        mw_app_free(app);
    }
}

/* A malformed body microweb answers for: the same 400 with the route in debug mode. */
TEST(request_errors_name_the_route_in_debug_mode_only) {
    int debug;
    for (debug = 0; debug < 2; debug++) {
        mw_app *app = make_app(debug);
        mw_test_res *r = mw_test_json(app, "POST", "/json-in", NULL, "{\"a\":}");
        CHECK_INT(r->status, 400);
        if (debug)
            CHECK_MEM(r->body, r->body_len,
                      "{\"status\":400,\"error\":\"Bad Request\",\"detail\":\"invalid JSON at byte 5: unexpected "
                      "character\",\"offset\":5,\"route\":\"POST /json-in\"}");
        else
            CHECK_MEM(r->body, r->body_len,
                      "{\"status\":400,\"error\":\"Bad Request\",\"detail\":\"invalid JSON at byte 5: unexpected "
                      "character\",\"offset\":5}");
        mw_test_free(r);
        mw_app_free(app);
    }
}

/* 404: production says no route; debug mode lists every route, in registration order. */
TEST(not_found_lists_the_routes_in_debug_mode_only) {
    mw_app *app = make_app(0);
    mw_test_res *r = get(app, "GET", "/nowhere");
    const mw_jv *routes;
    CHECK_INT(r->status, 404);
    CHECK_MEM(r->body, r->body_len, "{\"status\":404,\"error\":\"Not Found\",\"detail\":\"no route for this path\"}");
    mw_test_free(r);
    mw_app_free(app);
    app = make_app(1);
    r = get(app, "GET", "/nowhere?x=1");
    CHECK_INT(r->status, 404);
    CHECK_STR(member(r, "detail"), "no route for this path");
    CHECK_STR(member(r, "method"), "GET");
    CHECK_STR(member(r, "path"), "/nowhere");
    routes = mw_jv_get(mw_test_body_json(r), "routes");
    CHECK_INT(mw_jv_len(routes), NMISTAKES + 6);
    CHECK_STR(mw_jv_str(mw_jv_at(routes, 0), NULL), "GET /notes/{id:int}");
    CHECK_STR(mw_jv_str(mw_jv_at(routes, NMISTAKES + 4), NULL), "DELETE /notes/{id:int}");
    CHECK_STR(mw_jv_str(mw_jv_at(routes, NMISTAKES + 5), NULL), "* /any/*rest");
    mw_test_free(r);
    mw_app_free(app);
}

/* 405: production says the method is not allowed (Allow tells which are); debug mode
   lists the routes of that path. */
TEST(method_not_allowed_lists_the_paths_routes_in_debug_mode_only) {
    mw_app *app = make_app(0);
    mw_test_res *r = get(app, "PUT", "/notes/7");
    const mw_jv *routes;
    CHECK_INT(r->status, 405);
    CHECK_MEM(r->body, r->body_len,
              "{\"status\":405,\"error\":\"Method Not Allowed\",\"detail\":\"method not allowed for this path\"}");
    CHECK_STR(mw_test_header(r, "Allow"), "GET, HEAD, DELETE, OPTIONS");
    mw_test_free(r);
    mw_app_free(app);
    app = make_app(1);
    r = get(app, "PUT", "/notes/7");
    CHECK_INT(r->status, 405);
    CHECK_STR(mw_test_header(r, "Allow"), "GET, HEAD, DELETE, OPTIONS");
    CHECK_STR(member(r, "method"), "PUT");
    routes = mw_jv_get(mw_test_body_json(r), "routes");
    CHECK_INT(mw_jv_len(routes), 2);
    CHECK_STR(mw_jv_str(mw_jv_at(routes, 0), NULL), "GET /notes/{id:int}");
    CHECK_STR(mw_jv_str(mw_jv_at(routes, 1), NULL), "DELETE /notes/{id:int}");
    mw_test_free(r);
    mw_app_free(app);
}

/* What handlers answer themselves is theirs: debug mode adds nothing to a working
   route's answer, nor to an mw_error the handler wrote. */
TEST(working_routes_answer_the_same_in_debug_mode) {
    int debug;
    for (debug = 0; debug < 2; debug++) {
        mw_app *app = make_app(debug);
        mw_test_res *r = get(app, "DELETE", "/notes/7");
        CHECK_INT(r->status, 200);
        CHECK_MEM(r->body, r->body_len, "/notes/7");
        CHECK(mw_test_header(r, "Microweb-Debug") == NULL);
        mw_test_free(r);
        mw_app_free(app);
    }
}

/* One switch: mw_debug, the limit (MW_LIMIT_DEBUG, and its older name
   MW_LIMIT_PG_DEBUG), and MW_DEBUG in the environment, which wins either way. */
TEST(the_environment_overrides_mw_debug_and_the_limit) {
    mw_app *app = make_app(0);
    mw_test_res *r;
    CHECK_INT(mw_set_limit(app, MW_LIMIT_PG_DEBUG, 1), 0);
    CHECK_INT(mw_get_limit(app, MW_LIMIT_DEBUG), 1);
    r = get(app, "GET", "/status");
    CHECK_STR(member(r, "route"), "GET /status");
    mw_test_free(r);
    setenv("MW_DEBUG", "0", 1);
    r = get(app, "GET", "/status");
    CHECK_MEM(r->body, r->body_len, GENERIC_500);
    mw_test_free(r);
    CHECK_INT(mw_debug(app, 0), 0);
    setenv("MW_DEBUG", "1", 1);
    r = get(app, "GET", "/status");
    CHECK_STR(member(r, "route"), "GET /status");
    mw_test_free(r);
    unsetenv("MW_DEBUG");
    r = get(app, "GET", "/status");
    CHECK_MEM(r->body, r->body_len, GENERIC_500);
    mw_test_free(r);
    CHECK_INT(mw_debug(app, 2), 0); /* any true value */
    CHECK_INT(mw_get_limit(app, MW_LIMIT_DEBUG), 1);
    CHECK_INT(mw_set_limit(app, MW_LIMIT_DEBUG, 2), MW_EINVAL);
    CHECK_INT(mw_debug(NULL, 1), MW_EINVAL);
    mw_app_free(app);
}

int main(void) {
    unsetenv("MW_DEBUG"); /* the tests set it themselves */
    RUN(mistakes_answer_a_generic_500_with_debug_mode_off);
    RUN(mistakes_are_explained_with_the_route_in_debug_mode);
    RUN(debug_answer_keeps_the_problem_shape_and_adds_route);
    RUN(debug_mode_logs_a_mistake_once_per_route_as_production_does);
    RUN(second_response_is_told_in_a_header_field_in_debug_mode_only);
    RUN(refused_header_is_told_without_its_control_bytes_in_debug_mode);
    RUN(status_after_the_body_began_is_told_in_debug_mode);
    RUN(request_errors_name_the_route_in_debug_mode_only);
    RUN(not_found_lists_the_routes_in_debug_mode_only);
    RUN(method_not_allowed_lists_the_paths_routes_in_debug_mode_only);
    RUN(working_routes_answer_the_same_in_debug_mode);
    RUN(the_environment_overrides_mw_debug_and_the_limit);
    return test_summary();
}
