/* stream.c - responses that go on after the handler returns: Server-Sent Events pushed
   from a thread of the app's own, and a CSV export produced as the client reads it.
   Run:   make run APP=stream, then open http://localhost:8080/ (its page shows the events)
   Try:   curl -N 'localhost:8080/events?every_ms=500&count=5'     (-N: each event as it comes)
          curl 'localhost:8080/export?rows=3'                                               */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h" /* and with it the C library: clock_gettime, snprintf, strtol ... */

/* ---- GET /events?every_ms=N&count=K: K "tick" events, one every N ms ----
   The handler opens the stream and hands it to the ticker, a thread that writes to
   every open stream when its time comes. No worker thread waits while a stream is
   open: a thousand clients cost a thousand small records, not a thousand threads. */

typedef struct ticking {
    mw_stream *stream;
    long every_ms, count, sent; /* count 0: no end */
    long long next_ms;          /* when the next event is due */
    int ended;                  /* every event sent: the stream is ending */
    struct ticking *next;
} ticking;

static pthread_mutex_t ticker_lock = PTHREAD_MUTEX_INITIALIZER; /* guards the four below */
static pthread_cond_t ticker_wake = PTHREAD_COND_INITIALIZER;   /* a stream came or went, or stop */
static ticking *ticking_list;
static int ticker_stopping;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* microweb calls this exactly once, when the stream is over: every event went out,
   the client left, or the server is stopping. The one place the ticker forgets a
   stream, and where we let go of it (mw_stream_close). */
static void on_stream_over(mw_stream *s, void *arg) {
    ticking *t = (ticking *)arg, **p;
    pthread_mutex_lock(&ticker_lock);
    for (p = &ticking_list; *p != t; p = &(*p)->next) {}
    *p = t->next;
    pthread_cond_signal(&ticker_wake);
    pthread_mutex_unlock(&ticker_lock);
    free(t);
    mw_stream_close(s);
}

/* Sends the events that are due (event "tick", id and data 1, 2, 3 ...); returns how
   long until the next one is (ms). */
static long tick(long long now) {
    ticking *t;
    long wait = 1000;
    for (t = ticking_list; t; t = t->next) {
        char id[24];
        if (t->ended) continue;
        if (now >= t->next_ms) {
            snprintf(id, sizeof id, "%ld", ++t->sent);
            mw_sse_send(t->stream, "tick", id, id);
            t->next_ms += t->every_ms;
        }
        if (t->count && t->sent >= t->count) { /* all sent: the response ends after them */
            mw_stream_end(t->stream);
            t->ended = 1;
        } else if (t->next_ms - now < wait) {
            wait = (long)(t->next_ms - now);
        }
    }
    return wait < 1 ? 1 : wait;
}

static void *ticker(void *arg) {
    (void)arg;
    pthread_mutex_lock(&ticker_lock);
    while (!ticker_stopping || ticking_list) {
        long wait = tick(now_ms());
        struct timespec until; /* pthread_cond_timedwait wants a time of day, not a delay */
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += wait / 1000;
        until.tv_nsec += (wait % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&ticker_wake, &ticker_lock, &until);
    }
    pthread_mutex_unlock(&ticker_lock);
    return NULL;
}

/* A query value as a number, or def when it is missing or not one. */
static long query_long(mw_req *rq, const char *name, long def) {
    const char *v = mw_value(rq, MW_QUERY, name);
    char *end;
    long n = v ? strtol(v, &end, 10) : def;
    return v && (*end || n < 0) ? def : n;
}

static void events(mw_req *rq, mw_res *rs) {
    ticking *t = (ticking *)calloc(1, sizeof *t);
    const char *last = mw_last_event_id(rq); /* a browser reconnecting says where it was */
    if (!t) {
        mw_error(rs, 503, "out of memory");
        return;
    }
    if (!(t->stream = mw_sse_open(rs))) { /* 200, text/event-stream, no caching */
        mw_error(rs, 500, "cannot open the event stream");
        free(t);
        return;
    }
    t->every_ms = query_long(rq, "every_ms", 1000);
    t->count = query_long(rq, "count", 0);
    t->sent = last ? atol(last) : 0; /* go on after the last event it saw */
    if (t->every_ms < 1) t->every_ms = 1;
    mw_stream_on_close(t->stream, on_stream_over, t);
    pthread_mutex_lock(&ticker_lock);
    t->next_ms = now_ms() + t->every_ms;
    t->next = ticking_list;
    ticking_list = t;
    pthread_cond_signal(&ticker_wake);
    pthread_mutex_unlock(&ticker_lock);
}

/* ---- GET /export?rows=N: a CSV "id,name" made while the client reads it ----
   microweb calls next_rows whenever the socket can take more, so a 50 GB export
   uses one small buffer and a slow client slows the producer down. */

typedef struct export_state {
    long next, rows;
    int header_sent;
} export_state;

static long next_rows(void *arg, char *buf, size_t cap) {
    export_state *e = (export_state *)arg;
    size_t used = 0;
    if (!e->header_sent) {
        used += (size_t)snprintf(buf, cap, "id,name\n");
        e->header_sent = 1;
    }
    while (e->next < e->rows && cap - used > 64) {
        e->next++;
        used += (size_t)snprintf(buf + used, cap - used, "%ld,name %ld\n", e->next, e->next);
    }
    return (long)used; /* 0: the body is complete */
}

static void export_csv(mw_req *rq, mw_res *rs) {
    export_state *e = (export_state *)calloc(1, sizeof *e);
    if (!e) {
        mw_error(rs, 503, "out of memory");
        return;
    }
    e->rows = query_long(rq, "rows", 1000);
    mw_set_header(rs, "Content-Disposition", "attachment; filename=\"export.csv\"");
    mw_send_pull(rs, 200, "text/csv; charset=utf-8", next_rows, e, free); /* free(e) once, however it ends */
}

/* ---- GET /: examples/stream/page.html, a template without tags (sent as it is) ---- */
static void home(mw_req *rq, mw_res *rs) { (void)rq, mw_render(rs, 200, "page", NULL); }

int main(void) {
    mw_app *app = mw_app_new();
    pthread_t t;
    int rc;
    mw_set_limit(app, MW_LIMIT_ACCESS_LOG, 1); /* one line per request on stderr */
    mw_templates(app, "examples/stream");      /* page.html, read at start (run from the repo's root) */
    mw_get(app, "/", home);
    mw_get(app, "/events", events);
    mw_get(app, "/export", export_csv);
    if (pthread_create(&t, NULL, ticker, NULL) != 0) return 1;
    rc = mw_run(app); /* serves until Ctrl-C; open streams end cleanly first */
    pthread_mutex_lock(&ticker_lock);
    ticker_stopping = 1;
    pthread_cond_signal(&ticker_wake);
    pthread_mutex_unlock(&ticker_lock);
    pthread_join(t, NULL);
    return rc;
}
