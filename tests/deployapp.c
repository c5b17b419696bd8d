/* deployapp.c - the app tests/deploy.py and tests/restart_zero.py run as several
   processes on one port: /livez and /readyz, a slow route (a request in flight while
   the process stops), which process answered, and what its environment holds. */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void hello(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "ok");
}

/* GET /pid -> this process's id: which of the processes sharing the port answered */
static void pid(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_printf(rs, "%ld", (long)getpid());
}

/* GET /slow?ms=N -> "done" after N milliseconds (at most 10 s) */
static void slow(mw_req *rq, mw_res *rs) {
    const char *ms = mw_value(rq, MW_QUERY, "ms");
    long n = ms ? atol(ms) : 0;
    struct timespec ts;
    if (n < 0 || n > 10000) n = 0;
    ts.tv_sec = n / 1000;
    ts.tv_nsec = n % 1000 * 1000000L;
    nanosleep(&ts, NULL);
    mw_text(rs, 200, "done");
}

/* GET /env/NAME -> the variable's value, or 404 when it is not set */
static void env(mw_req *rq, mw_res *rs) {
    const char *value = getenv(mw_param(rq, "name"));
    if (value) mw_text(rs, 200, value);
    else mw_error(rs, 404, "not set");
}

int main(void) {
    mw_app *app = mw_app_new();
    mw_get(app, "/", hello);
    mw_get(app, "/pid", pid);
    mw_get(app, "/slow", slow);
    mw_get(app, "/env/:name", env);
    mw_health(app, "/livez", "/readyz");
    return mw_run(app);
}
