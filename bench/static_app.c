/* static_app.c - microweb's side of bench/static.py: the folder named by STATIC_DIR
   mounted at /static with mw_static (GET and HEAD, validators, ranges, sendfile).
       GET /           "Hello, World!" (the bench's readiness check)
       GET /static/... the files of STATIC_DIR
   Every client of the bench is 127.0.0.1, so the per-address connection cap is off
   (the memory row holds 1,000 downloads). Worker threads from MW_THREADS, the access
   log from MW_ACCESS_LOG (off by default), as for any microweb app. */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include <stdio.h>
#include <stdlib.h>

static void hello(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "Hello, World!");
}

int main(void) {
    const char *dir = getenv("STATIC_DIR");
    mw_app *app;
    if (!dir || !*dir) {
        fprintf(stderr, "static_app: set STATIC_DIR to the folder to serve\n");
        return 2;
    }
    app = mw_app_new();
    mw_set_limit(app, MW_LIMIT_CONNECTIONS_PER_IP, 0);
    mw_get(app, "/", hello);
    if (mw_static(app, "/static", dir, NULL) != 0) return 1;
    return mw_run(app);
}
