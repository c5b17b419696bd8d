/* chat.c - WebSocket: an echo endpoint, and a chat room where each message reaches
   everyone in the room; the page to chat from is served too.
   Run:  make run APP=chat, then open http://localhost:8080/ in two tabs, pick a name in each, talk.
   Try:  curl -sv -m 2 -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
              -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' localhost:8080/ws/echo   (the "<" lines: 101)
   GET /         the chat page, examples/chat/page.html (its style and script inline)
   GET /ws/echo  WebSocket: every message comes back as it was sent, text as text, binary as binary
   GET /ws/chat  WebSocket: send {"name":"ada","text":"hi"}; everyone in the room, the sender too,
                 gets {"type":"message","name":"ada","text":"hi"}, and {"type":"join","online":N}
                 or {"type":"leave","name":"ada","online":N} when someone comes or goes      */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"

#include <stdlib.h>
#include <string.h>

/* ---- /ws/echo: microweb reassembles fragments, so data is always a whole message ---- */
static void echo(mw_ws *ws, const char *data, size_t len, int kind) { mw_ws_send(ws, data, len, kind); }

/* ---- /ws/chat: the room is the group "chat", kept by microweb ----
   These callbacks run on the server's worker threads, several at once (two people may
   speak at the same moment). Nothing here is shared between connections: the room, and
   how many are in it (mw_ws_group_size), are microweb's, behind its own lock, and
   mw_ws_broadcast may be called from any thread. */

#define MAX_NAME 32 /* bytes */

/* Sends {"type":type,"name":name,"text":text,"online":n} to the room (NULL and -1 leave a
   member out). microweb's JSON writer escapes the strings: a name or text holding quotes,
   backslashes or "</script>" stays a string, and the message stays valid JSON. */
static void tell_room(mw_app *app, const char *type, const char *name, const char *text, long n) {
    mw_json *j = mw_json_new();
    const char *message;
    size_t len;
    mw_json_object(j);
    mw_json_key_string(j, "type", type);
    if (name) mw_json_key_string(j, "name", name);
    if (text) mw_json_key_string(j, "text", text);
    if (n >= 0) mw_json_key_int(j, "online", n);
    if ((message = mw_json_text(j, &len)) != NULL) mw_ws_broadcast(app, "chat", message, len, MW_WS_TEXT);
    mw_json_free(j);
}

/* Someone opened /ws/chat: they join the room, and keep the name they last used as the
   connection's data (for the leave notice). */
static void chat_open(mw_ws *ws, mw_req *rq) {
    char *name = (char *)calloc(1, MAX_NAME + 1);
    (void)rq;
    if (!name || mw_ws_join(ws, "chat") != 0) {
        free(name);
        mw_ws_close(ws, 1011, "out of memory");
        return;
    }
    mw_ws_set_data(ws, name);
    tell_room(mw_ws_app(ws), "join", NULL, NULL, mw_ws_group_size(mw_ws_app(ws), "chat"));
}

/* A message is {"name":"1 to 32 bytes","text":"..."}; anything else gets an error back. */
static void chat_message(mw_ws *ws, const char *data, size_t len, int kind) {
    mw_jv_doc *doc = kind == MW_WS_TEXT ? mw_jv_parse(data, len, NULL, NULL) : NULL;
    const mw_jv *root = mw_jv_root(doc);
    const char *name = mw_jv_str(mw_jv_get(root, "name"), ""), *text = mw_jv_str(mw_jv_get(root, "text"), "");
    if (!name[0] || strlen(name) > MAX_NAME || !text[0]) {
        mw_ws_send_text(ws, "{\"type\":\"error\",\"text\":\"send {\\\"name\\\": \\\"1 to 32 bytes\\\", "
                            "\\\"text\\\": \\\"...\\\"} as a text message\"}");
    } else {
        strcpy((char *)mw_ws_data(ws), name);
        tell_room(mw_ws_app(ws), "message", name, text, -1);
    }
    mw_jv_free(doc);
}

/* Once per connection, however it ended. microweb has already taken it out of the room. */
static void chat_close(mw_ws *ws, int code, const char *reason) {
    char *name = (char *)mw_ws_data(ws);
    (void)code, (void)reason;
    if (!name) return; /* it never got into the room */
    tell_room(mw_ws_app(ws), "leave", name[0] ? name : NULL, NULL, mw_ws_group_size(mw_ws_app(ws), "chat"));
    free(name);
}

/* ---- GET /: the page, a template with no tags (sent as it is); it shows others' text as text ---- */
static void home(mw_req *rq, mw_res *rs) { (void)rq, mw_render(rs, 200, "page", NULL); }

int main(void) {
    static const mw_ws_opts echo_ws = {.on_message = echo};
    static const mw_ws_opts chat_ws = {.on_open = chat_open, .on_message = chat_message, .on_close = chat_close};
    mw_app *app = mw_app_new();
    mw_set_limit(app, MW_LIMIT_ACCESS_LOG, 1);             /* one line per request on stderr */
    mw_set_limit(app, MW_LIMIT_WS_MAX_MESSAGE, 64 * 1024); /* a bigger message closes with 1009 */
    mw_templates(app, "examples/chat");                    /* page.html, read at start (run from the repo's root) */
    mw_get(app, "/", home);
    mw_websocket(app, "/ws/echo", &echo_ws);
    mw_websocket(app, "/ws/chat", &chat_ws); /* pages of other origins may not connect */
    return mw_run(app);
}
