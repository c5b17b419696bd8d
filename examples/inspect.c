/* inspect.c - answers any request with everything it carried: method, target, path, query
   parameters, HTTP version, the client's address and port, every header field in the order
   it came, and the body's size. JSON by default; an HTML page for a browser (its Accept
   prefers text/html) or with ?format=html.
   make run-inspect; curl -d hello 'localhost:8080/any/path?x=1&x=2'; or open it in a browser */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"

#include <string.h>

/* A browser's Accept lists text/html first; curl's is a bare wildcard. So HTML is preferred
   when text/html is named before application/json, or without it. (A full reading of
   q-values, RFC 9110 §12.5.1, is more than this example needs.) */
static int wants_html(mw_req *rq) {
    const char *format = mw_value(rq, MW_QUERY, "format"), *accept = mw_header(rq, "Accept");
    const char *html = accept ? strstr(accept, "text/html") : NULL, *json;
    if (format) return strcmp(format, "html") == 0;
    json = accept ? strstr(accept, "application/json") : NULL;
    return html && (!json || html < json);
}

/* Each list is an array of [name, value] pairs, not an object: names may repeat and the
   order matters. mw_next_value and mw_header_next both walk with a cursor from 0. */
static void json_pairs(mw_json *j, mw_req *rq, const char *key, int headers) {
    size_t cursor = 0;
    const char *name, *value;
    mw_json_key(j, key);
    mw_json_array(j);
    while ((headers ? mw_header_next(rq, &cursor, &name, &value)
                    : mw_next_value(rq, MW_QUERY, &cursor, &name, &value)) == 1) {
        mw_json_array(j);
        mw_json_string(j, name);
        mw_json_string(j, value);
        mw_json_close(j);
    }
    mw_json_close(j);
}

static void answer_json(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200); /* the writer escapes every string it is given */
    mw_json_object(j);
    mw_json_key_string(j, "method", mw_method(rq));
    mw_json_key_string(j, "target", mw_target(rq)); /* as sent: "/a%20b?x=1" */
    mw_json_key_string(j, "path", mw_path(rq));     /* the target's path, not decoded either */
    json_pairs(j, rq, "query", 0);                  /* decoded: "x=%41" gives ["x", "A"] */
    mw_json_key_string(j, "version", mw_http_version(rq));
    mw_json_key_string(j, "client_address", mw_client_addr(rq));
    mw_json_key_int(j, "client_port", mw_client_port(rq));
    json_pairs(j, rq, "headers", 1);
    mw_json_key_int(j, "body_bytes", (int64_t)mw_body(rq).len);
    mw_json_end(j);
}

/* Every value came from the client, so each goes through mw_html_printf, whose %s escapes
   & < > " ' : a header holding "<script>" shows as text and never runs. */
static void html_pairs(mw_req *rq, mw_res *rs, const char *title, int headers) {
    size_t cursor = 0;
    const char *name, *value;
    mw_html_printf(rs, "<h2>%s</h2>\n<table>\n", title);
    while ((headers ? mw_header_next(rq, &cursor, &name, &value)
                    : mw_next_value(rq, MW_QUERY, &cursor, &name, &value)) == 1)
        mw_html_printf(rs, "<tr><th>%s</th><td>%s</td></tr>\n", name, value);
    mw_printf(rs, "</table>\n");
}

static void answer_html(mw_req *rq, mw_res *rs) {
    mw_set_header(rs, "Content-Type", "text/html; charset=utf-8");
    mw_printf(rs, "<!doctype html>\n<meta charset=\"utf-8\">\n<title>inspect</title>\n");
    mw_html_printf(rs, "<h1>%s %s %s</h1>\n", mw_method(rq), mw_target(rq), mw_http_version(rq));
    mw_html_printf(rs, "<p>path %s, from %s port %d, body %zu bytes</p>\n", mw_path(rq), mw_client_addr(rq),
                   mw_client_port(rq), mw_body(rq).len);
    html_pairs(rq, rs, "Query parameters", 0);
    html_pairs(rq, rs, "Header fields, in the order received", 1);
}

static void inspect(mw_req *rq, mw_res *rs) {
    if (wants_html(rq)) answer_html(rq, rs);
    else answer_json(rq, rs);
}

int main(void) {
    mw_app *app = mw_app_new();
    /* mw_any: every method, extension methods too. A last segment "*rest" is a wildcard: it
       matches the rest of the path, "" included, so this route answers every path (one with
       a "." or ".." segment, or a bad %-escape, is refused with 400 before any handler). */
    mw_any(app, "/*rest", inspect);
    return mw_run(app); /* PORT (default 8080); stops on SIGINT/SIGTERM */
}
