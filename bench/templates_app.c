/* templates_app.c - a page of 100 rows in the fortunes shape (an id and a message with
   characters HTML escapes), for bench/templates.py. GET / answers it; MW_BENCH_PAGE
   chooses how:
       template   mw_render of bench/templates/fortunes.html with a view parsed once
       printf     the same bytes written by hand: mw_printf and mw_html_escape
   BENCH_TEMPLATES: the folder of fortunes.html (default bench/templates). */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 100

static char messages[ROWS][96];
static const mw_jv *view;

static void make_rows(void) {
    int i;
    for (i = 0; i < ROWS; i++)
        snprintf(messages[i], sizeof messages[i], "fortune #%d: <script>alert(\"a & b\")</script> isn't safe", i + 1);
}

/* The view, as a handler would have it from a query: {"fortunes":[{"id":1,"message":"..."},...]} */
static mw_jv_doc *make_view(void) {
    mw_json *j = mw_json_new();
    const char *text;
    size_t len;
    mw_jv_doc *doc = NULL;
    int i;
    mw_json_object(j);
    mw_json_key(j, "fortunes");
    mw_json_array(j);
    for (i = 0; i < ROWS; i++) {
        mw_json_object(j);
        mw_json_key_int(j, "id", i + 1);
        mw_json_key_string(j, "message", messages[i]);
        mw_json_close(j);
    }
    if ((text = mw_json_text(j, &len)) != NULL) doc = mw_jv_parse(text, len, NULL, NULL);
    mw_json_free(j);
    return doc;
}

static void page_template(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_render(rs, 200, "fortunes", view);
}

static void page_printf(mw_req *rq, mw_res *rs) {
    int i;
    (void)rq;
    mw_send(rs, 200, "text/html; charset=utf-8", NULL, 0);
    mw_printf(rs, "<!doctype html>\n<html><head><title>Fortunes</title></head><body>\n<table>\n"
                  "<tr><th>id</th><th>message</th></tr>\n");
    for (i = 0; i < ROWS; i++) {
        mw_printf(rs, "<tr><td>%d</td><td>", i + 1);
        mw_html_escape(rs, messages[i]);
        mw_printf(rs, "</td></tr>\n");
    }
    mw_printf(rs, "</table>\n</body></html>\n");
}

int main(void) {
    mw_app *app = mw_app_new();
    const char *page = getenv("MW_BENCH_PAGE"), *dir = getenv("BENCH_TEMPLATES");
    mw_jv_doc *doc;
    make_rows();
    doc = make_view();
    view = mw_jv_root(doc);
    mw_templates(app, dir ? dir : "bench/templates");
    mw_get(app, "/", page && strcmp(page, "printf") == 0 ? page_printf : page_template);
    if (mw_run(app) != 0) return 1;
    mw_jv_free(doc);
    return 0;
}
