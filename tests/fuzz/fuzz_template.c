/* fuzz_template.c - the template compiler and renderer on any bytes. The input is a
   template, and the partial and parent it may name ("p"); when it compiles it is
   rendered (through the in-process test client) against a view with a list, an object,
   strings to escape and numbers. Compiling must either succeed or report an error; a
   render of a compiled template must answer 200 with text/html, or 500 when it ran out
   of steps (a partial that includes itself twice), and neither may read or write out
   of bounds, leak, or recurse without end. */
#define MICROWEB_IMPLEMENTATION
#include "../../microweb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char VIEW[] = "{\"a\":[1,{\"b\":\"<x>&\"},[\"c\",true],null,0.5],\"o\":{\"a\":{\"a\":\"'\\\"\"}},"
                           "\"s\":\"text\",\"n\":42,\"f\":false,\"e\":\"\"}";
static mw_jv_doc *view;

static void render(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_render(rs, 200, "t", mw_jv_root(view));
}

static void quiet(void *arg, mw_log_level level, const char *line) {
    (void)arg;
    (void)level;
    (void)line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = (char *)malloc(size + 1);
    mw_app *app = mw_app_new();
    if (!text || !app) abort();
    memcpy(text, data, size);
    text[size] = '\0'; /* a template is a C string: it ends at its first NUL */
    if (!view) view = mw_jv_parse(VIEW, sizeof VIEW - 1, NULL, NULL);
    mw_set_logger(app, quiet, NULL);
    if (mw_template(app, "p", text) == 0 && mw_template(app, "t", text) == 0) {
        mw_test_res *r;
        mw_get(app, "/", render);
        r = mw_test_request(app, "GET", "/", NULL, NULL, 0);
        if (!r || (r->status != 200 && r->status != 500) ||
            (r->status == 200 && strcmp(mw_test_header(r, "Content-Type"), "text/html; charset=utf-8") != 0))
            abort();
        mw_test_free(r);
    }
    mw_app_free(app);
    free(text);
    return 0;
}
