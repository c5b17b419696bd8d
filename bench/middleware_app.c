/* middleware_app.c - the hello row with middleware, for bench/middleware.py. What runs
   around GET / is chosen by MW_BENCH_MIDDLEWARE:
       none      the handler alone (examples/hello.c's GET /)
       hooks     one before hook (reads the route's data) and one after hook (adds a header)
       session   hooks, and the handler reads the session and writes it back changed
   MW_SECRET_KEY is set by the bench for the session variant. */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include <string.h>

static int before(mw_req *rq, mw_res *rs, void *arg) {
    (void)rs;
    (void)arg;
    return mw_route_data(rq) == NULL ? MW_NEXT : MW_DONE;
}

static void after(mw_req *rq, mw_res *rs, void *arg) {
    (void)rq;
    (void)arg;
    mw_set_header(rs, "X-Frame-Options", "DENY");
}

static void hello(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "Hello, World!");
}

/* Reads a value from the session and writes another back (the value flips, so the
   session changes on every request and its cookie is signed again). */
static void hello_session(mw_req *rq, mw_res *rs) {
    const char *n = mw_session_get(rq, "n");
    mw_session_set(rq, "n", n && n[0] == '1' ? "2" : "1");
    mw_text(rs, 200, "Hello, World!");
}

int main(void) {
    mw_app *app = mw_app_new();
    const char *variant = getenv("MW_BENCH_MIDDLEWARE");
    int session = variant && strcmp(variant, "session") == 0;
    if (session || (variant && strcmp(variant, "hooks") == 0)) {
        mw_before(app, NULL, before, NULL);
        mw_after(app, NULL, after, NULL);
    }
    if (session) mw_sessions(app, NULL);
    mw_get(app, "/", session ? hello_session : hello);
    return mw_run(app);
}
