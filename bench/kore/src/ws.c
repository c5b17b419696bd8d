/* ws.c - the Kore peer of bench/ws.py, built by `kodev build` into a module that kore
   loads (bench/ws.py writes the configuration with the port and the routes):
       GET /               "Hello, World!"
       GET /ws/echo        every message sent back with its opcode
       GET /ws/broadcast   every message sent to every WebSocket of the worker (the
                           sender too: kore_websocket_broadcast skips the sender, so it
                           gets its copy by kore_websocket_send) */
#include <kore/kore.h>
/* after kore.h, whose types it uses */
#include <kore/http.h>

int page(struct http_request *);
int echo_upgrade(struct http_request *);
int broadcast_upgrade(struct http_request *);
void ws_connect(struct connection *);
void ws_disconnect(struct connection *);
void echo_message(struct connection *, u_int8_t, void *, size_t);
void broadcast_message(struct connection *, u_int8_t, void *, size_t);

int page(struct http_request *req) {
    http_response(req, 200, "Hello, World!", 13);
    return (KORE_RESULT_OK);
}

int echo_upgrade(struct http_request *req) {
    kore_websocket_handshake(req, "ws_connect", "echo_message", "ws_disconnect");
    return (KORE_RESULT_OK);
}

int broadcast_upgrade(struct http_request *req) {
    kore_websocket_handshake(req, "ws_connect", "broadcast_message", "ws_disconnect");
    return (KORE_RESULT_OK);
}

void ws_connect(struct connection *c) { (void)c; }

void ws_disconnect(struct connection *c) { (void)c; }

void echo_message(struct connection *c, u_int8_t op, void *data, size_t len) { kore_websocket_send(c, op, data, len); }

void broadcast_message(struct connection *c, u_int8_t op, void *data, size_t len) {
    kore_websocket_broadcast(c, op, data, len, WEBSOCKET_BROADCAST_LOCAL);
    kore_websocket_send(c, op, data, len);
}
