/* forms.c - step 3 of the course: query strings and HTML forms.
   A query string ("?q=cats&tag=a&tag=b") and a form body (what a browser POSTs) hold
   the same name=value pairs; mw_value reads one, mw_values every value of a name, and
   mw_next_value walks them all. Everything a user typed is escaped before it goes into
   HTML (mw_html_printf), so "<script>" shows as text instead of running.
   Build and run:  make run APP=forms     then open http://localhost:8080/
   Or:             curl 'localhost:8080/search?q=cats&tag=a&tag=b'
                   curl -d 'name=Ada&color=<b>blue</b>' localhost:8080/greet            */
#define MICROWEB_IMPLEMENTATION /* exactly one .c file holds the implementation */
#include "microweb.h"

static void html(mw_res *rs) { mw_set_header(rs, "Content-Type", "text/html; charset=utf-8"); }

/* GET / -> a page with a form; the browser POSTs its fields to /greet */
static void form_page(mw_req *rq, mw_res *rs) {
    (void)rq;
    html(rs);
    mw_printf(rs, "<!doctype html><title>Forms</title>\n"
                  "<form method=post action=/greet>\n"
                  "  <label>Name <input name=name></label>\n"
                  "  <label>Colour <input name=color></label>\n"
                  "  <button>Greet me</button>\n"
                  "</form>\n");
}

/* POST /greet (name=...&color=..., application/x-www-form-urlencoded) -> a greeting */
static void greet(mw_req *rq, mw_res *rs) {
    const char *name = mw_value(rq, MW_FORM, "name");
    const char *color = mw_value(rq, MW_FORM, "color");
    if (!name || !*name) {
        mw_error(rs, 400, "the form needs a name");
        return;
    }
    html(rs);
    mw_html_printf(rs, "<!doctype html><title>Hello</title>\n<p>Hello, %s! You like %s.</p>\n", name,
                   color ? color : "no colour");
}

/* GET /search?q=...&tag=...&tag=... -> JSON of what the query string held */
static void search(mw_req *rq, mw_res *rs) {
    const char *tags[16], *name, *value;
    size_t n = mw_values(rq, MW_QUERY, "tag", tags, 16), i, cursor = 0;
    mw_json *j = mw_json_begin(rs, 200);
    mw_json_object(j);
    mw_json_key_string(j, "q", mw_value(rq, MW_QUERY, "q")); /* NULL (absent) writes null */
    mw_json_key(j, "tags");
    mw_json_array(j);
    for (i = 0; i < n && i < 16; i++) mw_json_string(j, tags[i]);
    mw_json_close(j);
    mw_json_key(j, "pairs"); /* every pair, in order, decoded */
    mw_json_array(j);
    while (mw_next_value(rq, MW_QUERY, &cursor, &name, &value)) {
        mw_json_array(j);
        mw_json_string(j, name);
        mw_json_string(j, value);
        mw_json_close(j);
    }
    mw_json_end(j);
}

int main(void) {
    mw_app *app = mw_app_new();
    mw_get(app, "/", form_page);
    mw_post(app, "/greet", greet);
    mw_get(app, "/search", search);
    return mw_run(app); /* serves on PORT (8080 by default) until Ctrl-C */
}
