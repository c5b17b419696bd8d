/* wsapp.c - the WebSocket server tests/ws.py and tests/browser/ws.mjs drive.

   /ws/echo            every message back, text as text, binary as binary
   /ws/proto           subprotocols "chat.v2, chat"; the first message says the chosen one
                       (or "none"), then echoes
   /ws/origins         origins "http://allowed.example, https://also.example:8443"; echoes
   /ws/any-origin      origins "*"; echoes
   /ws/room/:name      the first message is the route parameter, then echoes
   /ws/close?code=C&reason=R   mw_ws_close(C, R) at once; if refused, the message
                       "refused RC" and the connection stays open, echoing
   /ws/group?group=G   joins G (default "room"); a message is broadcast to G and the sender
                       gets "took N" (members that took it); "leave" leaves G ("left").
                       A thread broadcasts "tick N" to "room" every 2 ms.
   /ws/held            a thread of its own sends "held N" every 2 ms through a held handle
                       until mw_ws_send says MW_ECLOSED, then releases the handle
   /ws/api             one text message: a JSON object of what the API answered for
                       calls a test cannot make from outside (invalid text, bad kind, ...)
   GET /flood?group=G&n=N&size=S   broadcasts N binary messages of S bytes to G at once
   GET /stats[?tag=T]  counters as JSON; with tag, the on_close code and reason of the last
                       connection opened with ?tag=T that closed (close_code 0: none yet)

   Every endpoint takes ?tag=T, a name for the connection in /stats and in the line
   "wsapp: on_close TAG CODE REASON" on stderr. Limits from the environment:
   WSAPP_MAX_MESSAGE, WSAPP_SEND_BUFFER_BYTES, WSAPP_PING_MS, WSAPP_CLOSE_TIMEOUT_MS,
   WSAPP_SHUTDOWN_GRACE_MS. The app outlives mw_serve (the broadcast thread and the held
   handles need it), so it listens itself and says where as mw_run would:
       microweb: listening on http://127.0.0.1:PORT (N threads)
   Run:  PORT=0 MW_THREADS=2 build/wsapp   (SIGTERM or SIGINT stops it)              */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TAG_MAX 128
#define REASON_MAX 124 /* 123 bytes and the NUL */
#define CLOSES_KEPT 256

/* what a connection keeps (mw_ws_set_data): its tag and the group it joined */
typedef struct conn_info {
    char tag[TAG_MAX];
    char group[64];
} conn_info;

typedef struct closed_conn {
    char tag[TAG_MAX];
    int code;
    char reason[REASON_MAX];
} closed_conn;

/* everything /stats reports, under one lock */
static struct {
    pthread_mutex_t lock;
    long opens, closes, messages, echo_refused, broadcasts, held_started, held_done;
    int last_code, held_last_rc;
    char last_reason[REASON_MAX];
    closed_conn kept[CLOSES_KEPT]; /* a ring of the latest closes */
    unsigned long next_kept;
} stats = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 0, 0, 0, 0, 0, "", {{"", 0, ""}}, 0};

static mw_app *the_app;

static void copy_text(char *to, size_t cap, const char *from) {
    size_t n = from ? strlen(from) : 0;
    if (n >= cap) n = cap - 1;
    if (n) memcpy(to, from, n);
    to[n] = '\0';
}

static void count(long *counter) {
    pthread_mutex_lock(&stats.lock);
    ++*counter;
    pthread_mutex_unlock(&stats.lock);
}

/* ---- per-connection data: the tag, from ?tag= ---- */

static conn_info *remember_tag(mw_ws *ws, mw_req *rq) {
    conn_info *info = (conn_info *)calloc(1, sizeof *info);
    if (info) copy_text(info->tag, TAG_MAX, mw_value(rq, MW_QUERY, "tag"));
    mw_ws_set_data(ws, info);
    count(&stats.opens);
    return info;
}

static void record_close(mw_ws *ws, int code, const char *reason) {
    conn_info *info = (conn_info *)mw_ws_data(ws);
    const char *tag = info ? info->tag : "";
    closed_conn *c;
    pthread_mutex_lock(&stats.lock);
    stats.closes++;
    stats.last_code = code;
    copy_text(stats.last_reason, REASON_MAX, reason);
    c = &stats.kept[stats.next_kept++ % CLOSES_KEPT];
    copy_text(c->tag, TAG_MAX, tag);
    c->code = code;
    copy_text(c->reason, REASON_MAX, reason);
    pthread_mutex_unlock(&stats.lock);
    fprintf(stderr, "wsapp: on_close %s %d %s\n", *tag ? tag : "-", code, reason ? reason : "(null)");
    free(info);
    mw_ws_set_data(ws, NULL);
}

/* ---- /ws/echo (and the echo after the first message of the others) ---- */

static void echo(mw_ws *ws, const char *data, size_t len, int kind) {
    count(&stats.messages);
    if (mw_ws_send(ws, data, len, kind) == MW_EAGAIN) { /* the client does not read */
        count(&stats.echo_refused);
        mw_ws_close(ws, 1008, "too slow");
    }
}

static void echo_open(mw_ws *ws, mw_req *rq) { remember_tag(ws, rq); }

/* ---- /ws/proto ---- */

static void proto_open(mw_ws *ws, mw_req *rq) {
    const char *p = mw_ws_subprotocol(ws);
    remember_tag(ws, rq);
    mw_ws_send_text(ws, p ? p : "none");
}

/* ---- /ws/room/:name ---- */

static void room_open(mw_ws *ws, mw_req *rq) {
    remember_tag(ws, rq);
    mw_ws_send_text(ws, mw_param(rq, "name"));
}

/* ---- /ws/close?code=C&reason=R ---- */

static void close_open(mw_ws *ws, mw_req *rq) {
    const char *code = mw_value(rq, MW_QUERY, "code"), *reason = mw_value(rq, MW_QUERY, "reason");
    char answer[32];
    int rc;
    remember_tag(ws, rq);
    rc = mw_ws_close(ws, code ? atoi(code) : 1000, reason);
    if (rc != 0) {
        snprintf(answer, sizeof answer, "refused %d", rc);
        mw_ws_send_text(ws, answer);
    }
}

/* ---- /ws/group?group=G, and the thread that broadcasts to "room" ---- */

static void group_open(mw_ws *ws, mw_req *rq) {
    const char *group = mw_value(rq, MW_QUERY, "group");
    conn_info *info = remember_tag(ws, rq);
    if (!info) {
        mw_ws_close(ws, 1011, "out of memory");
        return;
    }
    copy_text(info->group, sizeof info->group, group && *group ? group : "room");
    if (mw_ws_join(ws, info->group) != 0) mw_ws_close(ws, 1011, "join failed");
}

/* "leave" leaves the group; anything else goes to every member, and the sender is told
   how many took it */
static void group_message(mw_ws *ws, const char *data, size_t len, int kind) {
    conn_info *info = (conn_info *)mw_ws_data(ws);
    char answer[32];
    count(&stats.messages);
    if (!info) return;
    if (kind == MW_WS_TEXT && len == 5 && memcmp(data, "leave", 5) == 0) {
        mw_ws_leave(ws, info->group);
        mw_ws_send_text(ws, "left");
        return;
    }
    snprintf(answer, sizeof answer, "took %ld", mw_ws_broadcast(mw_ws_app(ws), info->group, data, len, kind));
    mw_ws_send_text(ws, answer);
}

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stopping;
} ticker = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

/* waits ms or until the ticker is told to stop; returns whether to go on */
static int ticker_wait(long ms) {
    struct timespec until;
    int go_on;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += ms * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&ticker.lock);
    if (!ticker.stopping) pthread_cond_timedwait(&ticker.wake, &ticker.lock, &until);
    go_on = !ticker.stopping;
    pthread_mutex_unlock(&ticker.lock);
    return go_on;
}

static void *tick_room(void *arg) {
    unsigned long n = 0;
    char text[32];
    (void)arg;
    while (ticker_wait(2)) {
        snprintf(text, sizeof text, "tick %lu", ++n);
        if (mw_ws_broadcast(the_app, "room", text, strlen(text), MW_WS_TEXT) >= 0) count(&stats.broadcasts);
    }
    return NULL;
}

static void stop_ticker(pthread_t t) {
    pthread_mutex_lock(&ticker.lock);
    ticker.stopping = 1;
    pthread_cond_broadcast(&ticker.wake);
    pthread_mutex_unlock(&ticker.lock);
    pthread_join(t, NULL);
}

/* ---- GET /flood?group=G&n=N&size=S ---- */

static void flood(mw_req *rq, mw_res *rs) {
    const char *group = mw_value(rq, MW_QUERY, "group"), *n = mw_value(rq, MW_QUERY, "n"),
               *size = mw_value(rq, MW_QUERY, "size");
    long i, count_n = n ? atol(n) : 0, took = 0, first = -1, last = -1;
    size_t len = size ? (size_t)atol(size) : 0;
    char *data = (char *)malloc(len ? len : 1);
    mw_json *j;
    if (!data || !group) {
        free(data);
        mw_error(rs, 400, "group, n and size");
        return;
    }
    memset(data, 'f', len);
    for (i = 0; i < count_n; i++) {
        last = mw_ws_broadcast(the_app, group, data, len, MW_WS_BINARY);
        if (i == 0) first = last;
        if (last > 0) took += last;
    }
    free(data);
    j = mw_json_begin(rs, 200);
    mw_json_object(j);
    mw_json_key_int(j, "first", first);
    mw_json_key_int(j, "last", last);
    mw_json_key_int(j, "took", took);
    mw_json_end(j);
}

/* ---- /ws/held: a thread sends through a held handle until the connection is over ---- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t done;
    int running;
} held = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void *send_until_closed(void *arg) {
    mw_ws *ws = (mw_ws *)arg;
    unsigned long n = 0;
    char text[32];
    struct timespec pause = {0, 2000000L};
    int rc;
    do {
        snprintf(text, sizeof text, "held %lu", ++n);
        rc = mw_ws_send(ws, text, strlen(text), MW_WS_TEXT);
        nanosleep(&pause, NULL); /* a pace for the messages, not a wait for an event */
    } while (rc == 0 || rc == MW_EAGAIN);
    pthread_mutex_lock(&stats.lock);
    stats.held_done++;
    stats.held_last_rc = rc;
    pthread_mutex_unlock(&stats.lock);
    mw_ws_release(ws);
    pthread_mutex_lock(&held.lock);
    if (--held.running == 0) pthread_cond_broadcast(&held.done);
    pthread_mutex_unlock(&held.lock);
    return NULL;
}

static void held_open(mw_ws *ws, mw_req *rq) {
    pthread_t t;
    pthread_attr_t detached;
    remember_tag(ws, rq);
    pthread_mutex_lock(&held.lock);
    held.running++;
    pthread_mutex_unlock(&held.lock);
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &detached, send_until_closed, mw_ws_hold(ws)) == 0) {
        count(&stats.held_started);
    } else {
        mw_ws_release(ws);
        pthread_mutex_lock(&held.lock);
        held.running--;
        pthread_mutex_unlock(&held.lock);
        mw_ws_close(ws, 1011, "no thread");
    }
    pthread_attr_destroy(&detached);
}

static void wait_held_threads(void) {
    pthread_mutex_lock(&held.lock);
    while (held.running > 0) pthread_cond_wait(&held.done, &held.lock);
    pthread_mutex_unlock(&held.lock);
}

/* ---- /ws/api: answers a test cannot get from outside ---- */

static int route_marker;

static void api_open(mw_ws *ws, mw_req *rq) {
    char long_reason[125], answer[512];
    void *mine = &route_marker;
    int bad_text, bad_kind, bad_code, long_code, joined, left, left_again;
    memset(long_reason, 'r', 124);
    long_reason[124] = '\0';
    remember_tag(ws, rq);
    bad_text = mw_ws_send_text(ws, "\xc3\x28");
    bad_kind = mw_ws_send(ws, "x", 1, 3);
    bad_code = mw_ws_close(ws, 1005, NULL);
    long_code = mw_ws_close(ws, 1000, long_reason);
    joined = mw_ws_join(ws, "api");
    left = mw_ws_leave(ws, "api");
    left_again = mw_ws_leave(ws, "api");
    snprintf(answer, sizeof answer,
             "{\"send_text_not_utf8\":%d,\"send_bad_kind\":%d,\"close_1005\":%d,\"close_reason_124\":%d,"
             "\"join\":%d,\"leave\":%d,\"leave_again\":%d,\"route_data\":%s,\"route_data_in_open\":%s,"
             "\"app\":%s,\"subprotocol_null\":%s,\"send_empty\":%d}",
             bad_text, bad_kind, bad_code, long_code, joined, left, left_again,
             mw_ws_route_data(ws) == mine ? "true" : "false", mw_route_data(rq) == mine ? "true" : "false",
             mw_ws_app(ws) == the_app ? "true" : "false", mw_ws_subprotocol(ws) ? "false" : "true",
             mw_ws_send(ws, "", 0, MW_WS_BINARY));
    mw_ws_send_text(ws, answer);
}

/* ---- GET /stats ---- */

static void stats_json(mw_req *rq, mw_res *rs) {
    const char *tag = mw_value(rq, MW_QUERY, "tag");
    mw_json *j = mw_json_begin(rs, 200);
    unsigned long i;
    mw_json_object(j);
    pthread_mutex_lock(&stats.lock);
    mw_json_key_int(j, "opens", stats.opens);
    mw_json_key_int(j, "closes", stats.closes);
    mw_json_key_int(j, "messages", stats.messages);
    mw_json_key_int(j, "echo_refused", stats.echo_refused);
    mw_json_key_int(j, "broadcasts", stats.broadcasts);
    mw_json_key_int(j, "held_started", stats.held_started);
    mw_json_key_int(j, "held_done", stats.held_done);
    mw_json_key_int(j, "held_last_rc", stats.held_last_rc);
    mw_json_key_int(j, "last_code", stats.last_code);
    mw_json_key_string(j, "last_reason", stats.last_reason);
    if (tag) {
        const closed_conn *found = NULL;
        for (i = stats.next_kept; i > 0 && i + CLOSES_KEPT > stats.next_kept && !found; i--)
            if (strcmp(stats.kept[(i - 1) % CLOSES_KEPT].tag, tag) == 0) found = &stats.kept[(i - 1) % CLOSES_KEPT];
        mw_json_key_int(j, "close_code", found ? found->code : 0);
        mw_json_key_string(j, "close_reason", found ? found->reason : NULL);
    }
    pthread_mutex_unlock(&stats.lock);
    mw_json_end(j);
}

/* ---- setup ---- */

static void set_limits_from_env(mw_app *app) {
    static const struct {
        const char *env;
        mw_limit limit;
    } knobs[] = {{"WSAPP_MAX_MESSAGE", MW_LIMIT_WS_MAX_MESSAGE},
                 {"WSAPP_SEND_BUFFER_BYTES", MW_LIMIT_WS_SEND_BUFFER_BYTES},
                 {"WSAPP_PING_MS", MW_LIMIT_WS_PING_MS},
                 {"WSAPP_CLOSE_TIMEOUT_MS", MW_LIMIT_WS_CLOSE_TIMEOUT_MS},
                 {"WSAPP_SHUTDOWN_GRACE_MS", MW_LIMIT_SHUTDOWN_GRACE_MS}};
    size_t i;
    for (i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        const char *v = getenv(knobs[i].env);
        if (v && *v && mw_set_limit(app, knobs[i].limit, atoll(v)) != 0)
            fprintf(stderr, "wsapp: %s=%s refused by mw_set_limit\n", knobs[i].env, v);
    }
}

static mw_app *ws_app(void) {
    mw_app *app = mw_app_new();
    mw_ws_opts echo_opts = {echo_open, echo, record_close, NULL, NULL, NULL};
    mw_ws_opts proto_opts = {proto_open, echo, record_close, "chat.v2, chat", NULL, NULL};
    mw_ws_opts origins_opts = {echo_open, echo, record_close, NULL, "http://allowed.example, https://also.example:8443",
                               NULL};
    mw_ws_opts any_origin_opts = {echo_open, echo, record_close, NULL, "*", NULL};
    mw_ws_opts room_opts = {room_open, echo, record_close, NULL, NULL, NULL};
    mw_ws_opts close_opts = {close_open, echo, record_close, NULL, NULL, NULL};
    mw_ws_opts group_opts = {group_open, group_message, record_close, NULL, NULL, NULL};
    mw_ws_opts held_opts = {held_open, echo, record_close, NULL, NULL, NULL};
    mw_ws_opts api_opts = {api_open, echo, record_close, NULL, NULL, &route_marker};
    if (!app) return NULL;
    set_limits_from_env(app);
    mw_websocket(app, "/ws/echo", &echo_opts);
    mw_websocket(app, "/ws/proto", &proto_opts);
    mw_websocket(app, "/ws/origins", &origins_opts);
    mw_websocket(app, "/ws/any-origin", &any_origin_opts);
    mw_websocket(app, "/ws/room/:name", &room_opts);
    mw_websocket(app, "/ws/close", &close_opts);
    mw_websocket(app, "/ws/group", &group_opts);
    mw_websocket(app, "/ws/held", &held_opts);
    mw_websocket(app, "/ws/api", &api_opts);
    mw_get(app, "/flood", flood);
    mw_get(app, "/stats", stats_json);
    return app;
}

static void on_stop_signal(int sig) {
    (void)sig;
    mw_stop(the_app); /* safe in a signal handler */
}

static int thread_count(void) {
    const char *env = getenv("MW_THREADS");
    long n = env && *env ? atol(env) : sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int main(void) {
    const char *host = getenv("HOST"), *port = getenv("PORT");
    struct sigaction sa;
    pthread_t ticker_thread;
    int bound, rc;
    if (!(the_app = ws_app())) return 1;
    mw_set_limit(the_app, MW_LIMIT_THREADS, thread_count());
    bound = mw_listen(the_app, host && *host ? host : "127.0.0.1", port ? atoi(port) : 8080);
    if (bound < 0) {
        fprintf(stderr, "wsapp: cannot listen (%d)\n", bound);
        mw_app_free(the_app);
        return 1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    if (pthread_create(&ticker_thread, NULL, tick_room, NULL) != 0) return 1;
    fprintf(stderr, "microweb: listening on http://%s:%d (%d threads)\n", host && *host ? host : "127.0.0.1", bound,
            thread_count());
    rc = mw_serve(the_app);
    stop_ticker(ticker_thread);
    wait_held_threads(); /* each sees MW_ECLOSED once its connection is over, and lets go */
    mw_app_free(the_app);
    fprintf(stderr, "microweb: stopped\n");
    return rc == 0 ? 0 : 1;
}
