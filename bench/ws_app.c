/* ws_app.c - microweb's side of bench/ws.py: a WebSocket echo and a broadcast.
       GET /               "Hello, World!" (readiness)
       GET /ws/echo        a WebSocket that sends every message back (text as text,
                           binary as binary)
       GET /ws/broadcast   a WebSocket in the group "all"; every message it sends goes to
                           every member of the group (the sender too), framed once
   Worker threads from MW_THREADS, as for any microweb app. */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"

static void echo(mw_ws *ws, const char *data, size_t len, int kind) { mw_ws_send(ws, data, len, kind); }

static void join_all(mw_ws *ws, mw_req *rq) {
    (void)rq;
    mw_ws_join(ws, "all");
}

static void broadcast(mw_ws *ws, const char *data, size_t len, int kind) {
    mw_ws_broadcast(mw_ws_app(ws), "all", data, len, kind);
}

static void hello(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "Hello, World!");
}

int main(void) {
    static const mw_ws_opts echo_opts = {.on_message = echo};
    static const mw_ws_opts broadcast_opts = {.on_open = join_all, .on_message = broadcast};
    mw_app *app = mw_app_new();
    mw_set_limit(app, MW_LIMIT_CONNECTIONS, 20000);    /* the idle row opens 10,000 */
    mw_set_limit(app, MW_LIMIT_CONNECTIONS_PER_IP, 0); /* every bench client is 127.0.0.1 */
    mw_get(app, "/", hello);
    mw_websocket(app, "/ws/echo", &echo_opts);
    mw_websocket(app, "/ws/broadcast", &broadcast_opts);
    return mw_run(app);
}
