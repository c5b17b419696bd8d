/* ws_loadapp.c - the app of tests/ws_load.py: many idle WebSockets on one server.
       GET /             "Hello, World!"
       GET /ws/echo      a WebSocket that sends every message back
       GET /ws/all       a WebSocket in the group "all" that says nothing
       POST /broadcast   the body as one text message to every member of "all";
                         answers {"members":N}, N as mw_ws_broadcast returned it
   The connection cap is WS_LOADAPP_MAX_CONNECTIONS (default 10,500: the test holds
   10,000 and opens a few more); the per-address cap is off (every client is 127.0.0.1).
   Build:  cc -pthread -I. tests/ws_loadapp.c -o build/ws_loadapp
   Run:    PORT=0 MW_THREADS=2 build/ws_loadapp */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"

#include <stdlib.h>

static void echo(mw_ws *ws, const char *data, size_t len, int kind) { mw_ws_send(ws, data, len, kind); }

static void join_all(mw_ws *ws, mw_req *rq) {
    (void)rq;
    mw_ws_join(ws, "all");
}

/* the app comes as the route's data */
static void broadcast(mw_req *rq, mw_res *rs) {
    mw_str body = mw_body(rq);
    long members = mw_ws_broadcast((mw_app *)mw_route_data(rq), "all", body.ptr, body.len, MW_WS_TEXT);
    mw_json *j = mw_json_begin(rs, 200);
    mw_json_object(j);
    mw_json_key_int(j, "members", members);
    mw_json_end(j);
}

static void hello(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "Hello, World!");
}

int main(void) {
    static const mw_ws_opts echo_opts = {.on_message = echo};
    static const mw_ws_opts all_opts = {.on_open = join_all};
    const char *max = getenv("WS_LOADAPP_MAX_CONNECTIONS");
    mw_app *app = mw_app_new();
    mw_set_limit(app, MW_LIMIT_CONNECTIONS, max ? atoll(max) : 10500);
    mw_set_limit(app, MW_LIMIT_CONNECTIONS_PER_IP, 0);
    mw_get(app, "/", hello);
    mw_route_with(app, "POST", "/broadcast", broadcast, app);
    mw_websocket(app, "/ws/echo", &echo_opts);
    mw_websocket(app, "/ws/all", &all_opts);
    return mw_run(app);
}
