/* hello.c - the first microweb app: three routes, one of each kind.
   Build and run:  cc -pthread -I. examples/hello.c -o hello && ./hello
   Then:           curl localhost:8080/  |  curl localhost:8080/users/42
                   curl -d 'some bytes' localhost:8080/echo                        */
#define MICROWEB_IMPLEMENTATION /* this file holds the implementation (exactly one file does) */
#include "microweb.h"

/* GET / -> 200 "Hello, World!" as text/plain */
static void hello(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "Hello, World!");
}

/* GET /users/:id -> {"id":"<id>"}; the JSON writer escapes whatever the client sent */
static void user(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    mw_json_object(j);
    mw_json_key_string(j, "id", mw_param(rq, "id"));
    mw_json_end(j);
}

/* POST /echo -> the request body, byte for byte */
static void echo(mw_req *rq, mw_res *rs) {
    mw_str body = mw_body(rq);
    mw_send(rs, 200, "application/octet-stream", body.ptr, body.len);
}

/* The app: its routes and settings. examples/hello_test.c tests this same function. */
static mw_app *hello_app(void) {
    mw_app *app = mw_app_new();
    mw_set_limit(app, MW_LIMIT_BODY_BYTES, 8 << 20); /* accept bodies up to 8 MiB (default 1 MiB) */
    mw_get(app, "/", hello);
    mw_get(app, "/users/:id", user);
    mw_post(app, "/echo", echo);
    return app;
}

#ifndef HELLO_NO_MAIN
/* Serves on PORT from the environment (8080 by default) until Ctrl-C. */
int main(void) { return mw_run(hello_app()); }
#endif
