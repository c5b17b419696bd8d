/* tu_b.c: a second translation unit that sees declarations only. */
#include "../microweb.h"

static void ping(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "pong");
}

int tu_b_register(mw_app *app);
int tu_b_register(mw_app *app) { return mw_get(app, "/ping", ping); }
