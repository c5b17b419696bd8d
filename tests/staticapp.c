/* staticapp.c - the server tests/static.py drives: the folder STATIC_ROOT mounted
   several ways.

   /static    defaults (Cache-Control: no-cache, dotfiles and hard links 404)
   /dots      dotfiles served
   /links     files with several hard links served
   /cached    Cache-Control: public, max-age=3600
   /bare      no Cache-Control
   /staticx/hello    a route beside the mounts: a prefix matches whole segments only
   /static/special   a route inside a mount's prefix: routes win over the folder
   Files ending in .data are application/x-microweb-data (mw_static_type).
   WRITE_TIMEOUT_MS sets MW_LIMIT_WRITE_TIMEOUT_MS. */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"

#include <stdlib.h>

static void hello(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "a route, not a file");
}

int main(void) {
    const char *root = getenv("STATIC_ROOT"), *write_timeout = getenv("WRITE_TIMEOUT_MS");
    mw_app *app = mw_app_new();
    mw_static_opts dots = {NULL, 1, 0}, links = {NULL, 0, 1}, cached = {"public, max-age=3600", 0, 0},
                   bare = {"", 0, 0};
    if (!root) return 2;
    mw_set_limit(app, MW_LIMIT_CONNECTIONS_PER_IP, 0); /* the slow-download test opens 1,000 */
    if (write_timeout) mw_set_limit(app, MW_LIMIT_WRITE_TIMEOUT_MS, atoll(write_timeout));
    mw_static(app, "/static", root, NULL);
    mw_static(app, "/dots", root, &dots);
    mw_static(app, "/links", root, &links);
    mw_static(app, "/cached", root, &cached);
    mw_static(app, "/bare", root, &bare);
    mw_static_type(app, "data", "application/x-microweb-data");
    mw_get(app, "/staticx/hello", hello);
    mw_get(app, "/static/special", hello);
    return mw_run(app);
}
