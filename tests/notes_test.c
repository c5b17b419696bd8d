/* notes_test.c - examples/notes.c through the in-process test client: the example's
   main builds its app as it always does, and hands it to these tests instead of
   serving it (mw_run is renamed for the example alone). */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"
#include "harness.h"

static int run_tests(mw_app *app);
#define mw_run run_tests
#include "../examples/notes.c"

static mw_app *the_app;

/* the status of a JSON request, and its body when want_body says what it must be */
static int status_of(const char *method, const char *target, const char *json, const char *want_body) {
    mw_test_res *r = mw_test_json(the_app, method, target, NULL, json);
    int status = r->status;
    if (want_body && (r->body_len != strlen(want_body) || memcmp(r->body, want_body, r->body_len) != 0)) {
        printf("  %s %s: body %.*s, want %s\n", method, target, (int)r->body_len, r->body, want_body);
        status = -1;
    }
    mw_test_free(r);
    return status;
}

TEST(notes_are_created_read_replaced_and_deleted) {
    mw_test_res *r = mw_test_json(the_app, "POST", "/notes", NULL, "{\"title\":\"a\",\"body\":\"b\",\"tags\":[\"t\"]}");
    CHECK_INT(r->status, 201);
    CHECK_INT(mw_jv_int(mw_jv_get(mw_test_body_json(r), "id"), 0), 1);
    CHECK_STR(mw_jv_str(mw_jv_path(mw_test_body_json(r), "tags[0]"), NULL), "t");
    mw_test_free(r);
    CHECK_INT(
        status_of("POST", "/notes", "{\"title\":\"c\",\"body\":\"d\"}", "{\"id\":2,\"title\":\"c\",\"body\":\"d\"}"),
        201);
    CHECK_INT(status_of("GET", "/notes/2", NULL, "{\"id\":2,\"title\":\"c\",\"body\":\"d\"}"), 200);
    CHECK_INT(
        status_of("PUT", "/notes/1", "{\"title\":\"e\",\"body\":\"f\"}", "{\"id\":1,\"title\":\"e\",\"body\":\"f\"}"),
        200);
    CHECK_INT(status_of("DELETE", "/notes/1", NULL, ""), 204);
    CHECK_INT(status_of("GET", "/notes/1", NULL, NULL), 404);
    CHECK_INT(status_of("DELETE", "/notes/1", NULL, NULL), 404);
    CHECK_INT(status_of("GET", "/notes", NULL, "[{\"id\":2,\"title\":\"c\",\"body\":\"d\"}]"), 200);
}

TEST(notes_inputs_are_checked_before_the_handlers) {
    mw_test_res *r = mw_test_json(the_app, "POST", "/notes", NULL, "{\"title\":\"\",\"tags\":[1]}");
    const mw_jv *detail = mw_jv_get(mw_test_body_json(r), "detail");
    CHECK_INT(r->status, 422);
    CHECK_INT(mw_jv_len(detail), 3);
    CHECK_STR(mw_jv_str(mw_jv_path(detail, "[0].type"), NULL), "string_too_short");
    CHECK_STR(mw_jv_str(mw_jv_path(detail, "[1].msg"), NULL), "Field required");
    CHECK_INT(mw_jv_int(mw_jv_path(detail, "[2].loc[2]"), -1), 0);
    mw_test_free(r);
    CHECK_INT(status_of("PUT", "/notes/2", "{\"title\":\"x\"", NULL), 400);
    CHECK_INT(status_of("GET", "/notes/two", NULL, NULL), 404);
    CHECK_INT(status_of("GET", "/notes", NULL, "[{\"id\":2,\"title\":\"c\",\"body\":\"d\"}]"), 200);
}

TEST(notes_openapi_document_lists_each_route_once) {
    mw_test_res *r = mw_test_json(the_app, "GET", "/openapi.json", NULL, NULL);
    const mw_jv *paths = mw_jv_get(mw_test_body_json(r), "paths"), *p;
    size_t operations = 0;
    CHECK_INT(r->status, 200);
    for (p = mw_jv_first(paths); p; p = mw_jv_next(p)) operations += mw_jv_len(p);
    CHECK_INT(operations, 7); /* the five routes of notes.c, /openapi.json and /docs, each once */
    CHECK_INT(mw_jv_len(mw_jv_get(paths, "/notes/{id}")), 3);
    CHECK_STR(mw_jv_str(mw_jv_path(mw_test_body_json(r), "info.title"), NULL), "Notes");
    mw_test_free(r);
}

TEST(test_client_json_keeps_a_given_content_type_and_reads_only_json) {
    mw_test_res *r =
        mw_test_json(the_app, "POST", "/notes", "Content-Type: text/plain", "{\"title\":\"a\",\"body\":\"b\"}");
    CHECK_INT(r->status, 415);
    mw_test_free(r);
    r = mw_test_request(the_app, "DELETE", "/notes/2", NULL, NULL, 0);
    CHECK_INT(r->status, 204);
    CHECK(mw_test_body_json(r) == NULL);
    mw_test_free(r);
}

static int run_tests(mw_app *app) {
    the_app = app;
    RUN(notes_are_created_read_replaced_and_deleted);
    RUN(notes_inputs_are_checked_before_the_handlers);
    RUN(notes_openapi_document_lists_each_route_once);
    RUN(test_client_json_keeps_a_given_content_type_and_reads_only_json);
    while (count) mw_jv_free(notes[--count].fields);
    mw_app_free(app);
    return test_summary();
}
