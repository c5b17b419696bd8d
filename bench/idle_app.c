/* idle_app.c - examples/hello.c's three routes, built by bench/run.py for the memory row
   only (10,000 idle keep-alive connections). hello keeps the defaults, a 10,000
   connection cap and a 5 s keep-alive timeout, and reads neither from the environment;
   this copy raises both so that 10,000 connections stay open while RSS is read.
   Every throughput row runs examples/hello.c itself. */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"

static void hello(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "Hello, World!");
}

static void user(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    mw_json_object(j);
    mw_json_key_string(j, "id", mw_param(rq, "id"));
    mw_json_end(j);
}

static void echo(mw_req *rq, mw_res *rs) {
    mw_str body = mw_body(rq);
    mw_send(rs, 200, "application/octet-stream", body.ptr, body.len);
}

int main(void) {
    mw_app *app = mw_app_new();
    mw_set_limit(app, MW_LIMIT_BODY_BYTES, 8 << 20);
    mw_set_limit(app, MW_LIMIT_CONNECTIONS, 20000);            /* hello: 10,000 */
    mw_set_limit(app, MW_LIMIT_KEEPALIVE_TIMEOUT_MS, 120000);  /* hello: 5 s */
    mw_get(app, "/", hello);
    mw_get(app, "/users/:id", user);
    mw_post(app, "/echo", echo);
    return mw_run(app);
}
