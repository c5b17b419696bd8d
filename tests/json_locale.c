/* json_locale.c - JSON numbers keep their '.' whatever LC_NUMERIC the program set.
   Runs under de_DE.UTF-8, where printf writes 0.5 as "0,5" and strtod stops at a '.';
   tests/run.sh compiles that locale with localedef and points LOCPATH at it. */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include <locale.h>

#include "harness.h"

#define COMMA_LOCALE "de_DE.UTF-8"

/* The locale must really be active, or the other tests would pass without proving anything. */
TEST(comma_decimal_locale_is_active) {
    char tmp[16];
    const char *set = setlocale(LC_ALL, COMMA_LOCALE);
    if (!set)
        printf("  cannot activate %s: compile it with `localedef -i de_DE -f UTF-8 DIR/%s` and run with "
               "LOCPATH=DIR (tests/run.sh does)\n",
               COMMA_LOCALE, COMMA_LOCALE);
    CHECK(set != NULL);
    snprintf(tmp, sizeof tmp, "%.1f", 0.5);
    CHECK_STR(tmp, "0,5");
}

/* The writer's text for one double, as a whole JSON document. */
static void check_written(double v, const char *want) {
    mw__buf out;
    mw_json j;
    memset(&out, 0, sizeof out);
    mw__json_init(&j, &out);
    CHECK_INT(mw_json_double(&j, v), 0);
    CHECK_INT(mw_json_end(&j), 0);
    CHECK_MEM(out.data, out.len, want);
    mw__buf_free(&out);
}

TEST(json_writer_writes_a_decimal_point_under_a_comma_locale) {
    check_written(0.5, "0.5");
    check_written(12.25, "12.25");
    check_written(1e-3, "0.001");
    check_written(-2.5e300, "-2.5e+300");
    check_written(0.1, "0.1"); /* the shortest text that reads back: strtod must read '.' too */
}

TEST(json_reader_reads_a_decimal_point_under_a_comma_locale) {
    const char *text = "[0.5,1e-3,12.25,-0.75E2,3]";
    mw_jv_doc *d = mw_jv_parse(text, strlen(text), NULL, NULL);
    const mw_jv *root = mw_jv_root(d);
    mw__buf out;
    mw_json j;
    CHECK(mw_jv_num(mw_jv_at(root, 0), 0) == 0.5);
    CHECK(mw_jv_num(mw_jv_at(root, 1), 0) == 1e-3);
    CHECK(mw_jv_num(mw_jv_at(root, 2), 0) == 12.25);
    CHECK(mw_jv_num(mw_jv_at(root, 3), 0) == -75.0);
    CHECK(mw_jv_num(mw_jv_at(root, 4), 0) == 3.0);
    memset(&out, 0, sizeof out);
    mw__json_init(&j, &out);
    CHECK_INT(mw_json_value(&j, root), 0);
    CHECK_INT(mw_json_end(&j), 0);
    CHECK_MEM(out.data, out.len, "[0.5,0.001,12.25,-75,3]");
    mw__buf_free(&out);
    mw_jv_free(d);
}

/* The C locale is this thread's for one conversion only: the program's stays in force. */
TEST(json_numbers_leave_the_programs_locale_in_place) {
    char tmp[16];
    mw_jv_doc *d = mw_jv_parse("[0.5]", 5, NULL, NULL);
    CHECK(mw_jv_num(mw_jv_at(mw_jv_root(d), 0), 0) == 0.5);
    check_written(0.5, "0.5");
    snprintf(tmp, sizeof tmp, "%.1f", 0.5);
    CHECK_STR(tmp, "0,5");
    CHECK_STR(localeconv()->decimal_point, ",");
    mw_jv_free(d);
}

/* A handler reads a JSON body and answers with a number: both ways through the server. */
static void halve(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    mw_json_object(j);
    mw_json_key_double(j, "half", mw_jv_num(mw_jv_get(mw_req_json(rq), "x"), -1) / 2);
    mw_json_end(j);
}

TEST(json_request_and_response_numbers_under_a_comma_locale) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    mw_post(app, "/halve", halve);
    r = mw_test_request(app, "POST", "/halve", "Content-Type: application/json\r\n", "{\"x\":1.5}", 9);
    CHECK_INT(r->status, 200);
    CHECK_STR(r->body, "{\"half\":0.75}");
    mw_test_free(r);
    mw_app_free(app);
}

int main(void) {
    RUN(comma_decimal_locale_is_active);
    RUN(json_writer_writes_a_decimal_point_under_a_comma_locale);
    RUN(json_reader_reads_a_decimal_point_under_a_comma_locale);
    RUN(json_numbers_leave_the_programs_locale_in_place);
    RUN(json_request_and_response_numbers_under_a_comma_locale);
    return test_summary();
}
