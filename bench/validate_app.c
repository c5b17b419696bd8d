/* validate_app.c - POST /notes for bench/validate.py, the same handler either way; what
   runs before it is chosen by MW_BENCH_VALIDATE:
       declared  the route declares its body (examples/notes.c's), checked before the handler
       plain     no declaration: the handler alone
   The handler reads the title from the parsed body and answers 201 with it. */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include <string.h>

static void add_note(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 201);
    mw_json_object(j);
    mw_json_key_int(j, "id", 1);
    mw_json_key(j, "title");
    mw_json_value(j, mw_jv_get(mw_req_json(rq), "title"));
    mw_json_end(j);
}

static void ready(mw_req *rq, mw_res *rs) { /* the bench waits for GET / to answer 200 */
    (void)rq;
    mw_text(rs, 200, "ready");
}

int main(void) {
    mw_app *app = mw_app_new();
    const char *variant = getenv("MW_BENCH_VALIDATE");
    mw_op op;
    memset(&op, 0, sizeof op);
    op.body = "{title: string(1..200), body: string, tags?: [string]}";
    if (variant && strcmp(variant, "declared") == 0) mw_route_op(app, "POST", "/notes", add_note, &op);
    else mw_post(app, "/notes", add_note);
    mw_get(app, "/", ready);
    return mw_run(app);
}
