/* chat.c - WebSocket: an echo endpoint, and a chat room where each message reaches
   everyone in the room; the page to chat from is served too.
   Build and run:  make run-chat   (or: cc -pthread -I. examples/chat.c -o chat && ./chat)
   Then:           open http://localhost:8080/ in two browser tabs, pick a name in each, talk.

   GET /         the chat page (its style and script inline)
   GET /ws/echo  WebSocket: every message comes back as it was sent, text as text and
                 binary as binary
   GET /ws/chat  WebSocket: send {"name":"ada","text":"hi"}; everyone in the room, the
                 sender too, gets {"type":"message","name":"ada","text":"hi"}, and
                 {"type":"join","online":N} or {"type":"leave","name":"ada","online":N}
                 when someone comes or goes                                              */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"

#include <stdlib.h>
#include <string.h>

/* ---- /ws/echo: microweb reassembles fragments, so data is always a whole message ---- */

static void echo(mw_ws *ws, const char *data, size_t len, int kind) { mw_ws_send(ws, data, len, kind); }

/* ---- /ws/chat: the room is the group "chat", kept by microweb ----

   These callbacks run on the server's worker threads, several at once (two people may
   speak at the same moment), so the one thing we keep ourselves, the count of people
   online, sits behind a lock. mw_ws_broadcast may be called from any thread. */

#define MAX_NAME 32 /* bytes */

static pthread_mutex_t online_lock = PTHREAD_MUTEX_INITIALIZER;
static long online;

static long count_online(long change) {
    long now;
    pthread_mutex_lock(&online_lock);
    now = online += change;
    pthread_mutex_unlock(&online_lock);
    return now;
}

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
    tell_room(mw_ws_app(ws), "join", NULL, NULL, count_online(+1));
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
    tell_room(mw_ws_app(ws), "leave", name[0] ? name : NULL, NULL, count_online(-1));
    free(name);
}

/* ---- GET /: the page. Text from others is shown with textContent, never as markup ---- */

static const char page[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>microweb chat</title>\n<style>\n"
    "body{font:16px system-ui,sans-serif;margin:0 auto;max-width:40em;height:100vh;padding:1em;box-sizing:border-box;"
    "display:flex;flex-direction:column}\n"
    "h1{font-size:1.4em;margin:0 0 .5em}#state{font-size:.7em;font-weight:normal;color:#777}\n"
    "ul{flex:1;overflow-y:auto;list-style:none;margin:0;padding:.5em;border:1px solid #ccc;border-radius:6px}\n"
    "li{margin:.3em 0;overflow-wrap:anywhere}.note{color:#777;font-style:italic}\n"
    "b{color:#1f5fa8}.mine b{color:#2a7a2a}input{font:inherit;padding:.3em}#name{width:8em}#text{flex:1}\n"
    "form{display:flex;gap:.5em;margin-top:.5em}\n"
    "</style></head>\n<body><h1>microweb chat <span id=\"state\">connecting...</span></h1><ul id=\"messages\"></ul>\n"
    "<form id=\"send\"><input id=\"name\" placeholder=\"your name\" maxlength=\"32\" required>\n"
    "<input id=\"text\" placeholder=\"message\" autocomplete=\"off\" required><button>Send</button></form>\n"
    "<script>\n"
    "const $ = (id) => document.getElementById(id);\n"
    "let ws, retry = 500;\n"
    "function show(kind, name, text) {  // textContent: a name or a text is never read as HTML\n"
    "  const li = $('messages').appendChild(document.createElement('li'));\n"
    "  li.className = kind;\n"
    "  if (name) li.appendChild(document.createElement('b')).textContent = name + ': ';\n"
    "  li.appendChild(document.createElement('span')).textContent = text;\n"
    "  li.scrollIntoView();\n"
    "}\n"
    "function connect() {\n"
    "  ws = new WebSocket((location.protocol==='https:'?'wss://':'ws://')+location.host+'/ws/chat');\n"
    "  ws.onopen = () => { $('state').textContent = 'online'; retry = 500; };\n"
    "  ws.onmessage = (e) => {\n"
    "    const m = JSON.parse(e.data);\n"
    "    if (m.type === 'message') show(m.name === $('name').value ? 'mine' : '', m.name, m.text);\n"
    "    else if (m.type === 'join') show('note', '', 'someone joined, ' + m.online + ' online');\n"
    "    else if (m.type === 'leave') show('note', '', (m.name || 'someone') + ' left, ' + m.online + ' online');\n"
    "    else show('note', '', m.text);\n"
    "  };\n"
    "  ws.onclose = () => {  // the server went away or the network dropped: again, less and less often\n"
    "    $('state').textContent = 'reconnecting...';\n"
    "    setTimeout(connect, retry);\n"
    "    retry = Math.min(retry * 2, 8000);\n"
    "  };\n"
    "}\n"
    "$('send').onsubmit = (e) => {\n"
    "  e.preventDefault();\n"
    "  if (ws.readyState !== WebSocket.OPEN) return;\n"
    "  ws.send(JSON.stringify({name: $('name').value, text: $('text').value}));\n"
    "  $('text').value = '';\n"
    "};\n"
    "connect();\n"
    "</script></body></html>\n";

static void home(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_send(rs, 200, "text/html; charset=utf-8", page, sizeof page - 1);
}

int main(void) {
    static const mw_ws_opts echo_ws = {.on_message = echo};
    static const mw_ws_opts chat_ws = {.on_open = chat_open, .on_message = chat_message, .on_close = chat_close};
    mw_app *app = mw_app_new();
    mw_set_limit(app, MW_LIMIT_ACCESS_LOG, 1);             /* one line per request on stderr */
    mw_set_limit(app, MW_LIMIT_WS_MAX_MESSAGE, 64 * 1024); /* a bigger message closes with 1009 */
    mw_get(app, "/", home);
    mw_websocket(app, "/ws/echo", &echo_ws);
    mw_websocket(app, "/ws/chat", &chat_ws); /* pages of other origins may not connect */
    return mw_run(app);
}
