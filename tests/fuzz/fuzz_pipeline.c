/* fuzz_pipeline.c - raw bytes through the whole server pipeline with the in-process
   test client: parser, chunked decoder, router, handlers that use every request
   toolkit call (values, cookies, typed parameters, JSON and multipart bodies), the
   JSON writer and the response framing. Every answer must be well framed. */
#define MICROWEB_IMPLEMENTATION
#include "../../microweb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void everything(mw_req *rq, mw_res *rs) {
    const char *name, *value, *all[4];
    size_t cursor = 0;
    long long id;
    mw_part part;
    const mw_jv *v;
    mw_json *j = mw_json_begin(rs, 200);
    mw_json_object(j);
    while (mw_next_value(rq, MW_QUERY, &cursor, &name, &value) > 0) mw_json_key_string(j, name, value);
    cursor = 0;
    while (mw_next_value(rq, MW_FORM, &cursor, &name, &value) > 0) mw_json_key_string(j, name, value);
    mw_json_key_int(j, "tags", (int64_t)mw_values(rq, MW_QUERY, "tag", all, 4));
    mw_json_key_string(j, "cookie", mw_cookie(rq, "session"));
    mw_json_key_int(j, "id", mw_param_int(rq, "id", &id) == 0 ? id : -1);
    mw_json_key_string(j, "rest", mw_param(rq, "rest"));
    memset(&part, 0, sizeof part);
    while (mw_multipart_next(rq, &part) > 0) mw_json_key_string(j, part.name, part.safe_filename);
    if ((v = mw_req_json(rq)) != NULL) {
        mw_json_key(j, "json");
        mw_json_value(j, mw_jv_path(v, "a.b[1]"));
    }
    mw_set_cookie(rs, "seen", mw_value(rq, MW_QUERY, "c") ? mw_value(rq, MW_QUERY, "c") : "1", NULL);
    mw_json_end(j);
}

static mw_app *app;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mw_test_res *r;
    if (!app) {
        app = mw_app_new();
        mw_set_limit(app, MW_LIMIT_BODY_BYTES, 65536);
        mw_any(app, "/x/{id:int}", everything);
        mw_any(app, "/x/:name/*rest", everything);
        mw_post(app, "/", everything);
    }
    r = mw_test_raw(app, data, size);
    if (!r) return 0;
    if (r->status && (r->status < 200 || r->status > 599 || !mw_test_header(r, "Date"))) __builtin_trap();
    mw_test_free(r);
    return 0;
}
