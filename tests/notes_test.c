/* notes_test.c - examples/notes.c through the in-process test client: the example's
   main builds its app as it always does, and hands it to these tests instead of
   serving it (mw_run is renamed for the example alone). */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"
#include "harness.h"

static int run_tests(mw_app *app);
#define mw_run run_tests
#include "../examples/notes.c"

static mw_test_res *call(mw_app *app, const char *method, const char *target, const char *json) {
    return mw_test_request(app, method, target, "Content-Type: application/json", json, json ? strlen(json) : 0);
}

static int status_of(mw_app *app, const char *method, const char *target, const char *json, const char *want_body) {
    mw_test_res *r = call(app, method, target, json);
    int status = r->status;
    if (want_body && (r->body_len != strlen(want_body) || memcmp(r->body, want_body, r->body_len) != 0)) {
        printf("  %s %s: body %.*s, want %s\n", method, target, (int)r->body_len, r->body, want_body);
        status = -1;
    }
    mw_test_free(r);
    return status;
}

static mw_app *the_app;

TEST(notes_are_created_read_replaced_and_deleted) {
    mw_app *app = the_app;
    CHECK_INT(status_of(app, "GET", "/notes", NULL, "[]"), 200);
    CHECK_INT(status_of(app, "POST", "/notes", "{\"title\":\"a\",\"body\":\"b\",\"tags\":[\"t\"]}",
                        "{\"id\":1,\"title\":\"a\",\"body\":\"b\",\"tags\":[\"t\"]}"),
              201);
    CHECK_INT(status_of(app, "POST", "/notes", "{\"title\":\"c\",\"body\":\"d\"}",
                        "{\"id\":2,\"title\":\"c\",\"body\":\"d\"}"),
              201);
    CHECK_INT(status_of(app, "GET", "/notes/2", NULL, "{\"id\":2,\"title\":\"c\",\"body\":\"d\"}"), 200);
    CHECK_INT(status_of(app, "PUT", "/notes/1", "{\"title\":\"e\",\"body\":\"f\"}",
                        "{\"id\":1,\"title\":\"e\",\"body\":\"f\"}"),
              200);
    CHECK_INT(status_of(app, "DELETE", "/notes/1", NULL, ""), 204);
    CHECK_INT(status_of(app, "GET", "/notes/1", NULL, NULL), 404);
    CHECK_INT(status_of(app, "DELETE", "/notes/1", NULL, NULL), 404);
    CHECK_INT(status_of(app, "GET", "/notes", NULL, "[{\"id\":2,\"title\":\"c\",\"body\":\"d\"}]"), 200);
}

TEST(notes_inputs_are_checked_before_the_handlers) {
    mw_app *app = the_app;
    CHECK_INT(status_of(app, "POST", "/notes", "{\"title\":\"\",\"tags\":[1]}",
                        "{\"status\":422,\"error\":\"Unprocessable Content\",\"detail\":["
                        "{\"loc\":[\"body\",\"title\"],\"msg\":\"String should have at least 1 character\","
                        "\"type\":\"string_too_short\"},"
                        "{\"loc\":[\"body\",\"body\"],\"msg\":\"Field required\",\"type\":\"missing\"},"
                        "{\"loc\":[\"body\",\"tags\",0],\"msg\":\"Input should be a valid string\","
                        "\"type\":\"string_type\"}]}"),
              422);
    CHECK_INT(status_of(app, "PUT", "/notes/2", "{\"title\":\"x\"", NULL), 400);
    CHECK_INT(status_of(app, "GET", "/notes/two", NULL, NULL), 404);
    CHECK_INT(status_of(app, "GET", "/notes", NULL, "[{\"id\":2,\"title\":\"c\",\"body\":\"d\"}]"), 200);
}

TEST(notes_openapi_document_lists_each_route_once) {
    mw_test_res *r = call(the_app, "GET", "/openapi.json", NULL);
    mw_jv_doc *doc = mw_jv_parse(r->body, r->body_len, NULL, NULL);
    const mw_jv *paths = mw_jv_get(mw_jv_root(doc), "paths"), *p;
    size_t operations = 0;
    CHECK_INT(r->status, 200);
    for (p = mw_jv_first(paths); p; p = mw_jv_next(p)) operations += mw_jv_len(p);
    CHECK_INT(operations, the_app->nroutes);
    CHECK_INT(mw_jv_len(mw_jv_get(paths, "/notes/{id}")), 3);
    CHECK_STR(mw_jv_str(mw_jv_path(mw_jv_root(doc), "info.title"), NULL), "Notes");
    mw_jv_free(doc);
    mw_test_free(r);
}

static int run_tests(mw_app *app) {
    the_app = app;
    RUN(notes_are_created_read_replaced_and_deleted);
    RUN(notes_inputs_are_checked_before_the_handlers);
    RUN(notes_openapi_document_lists_each_route_once);
    while (count) mw_jv_free(notes[--count].fields);
    mw_app_free(app);
    return test_summary();
}
