/* stream.c - responses that go on after the handler returns: Server-Sent Events sent on
   a timer, and a CSV export produced as the client reads it.
   Run:   make run APP=stream, then open http://localhost:8080/ (its page shows the events)
   Try:   curl -N 'localhost:8080/events?every_ms=500&count=5'     (-N: each event as it comes)
          curl 'localhost:8080/export?rows=3'                                               */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h" /* and with it the C library: calloc, snprintf, strtol ... */

/* A query value as a number, or def when it is missing or not one. */
static long query_long(mw_req *rq, const char *name, long def) {
    const char *v = mw_value(rq, MW_QUERY, name);
    char *end;
    long n = v ? strtol(v, &end, 10) : def;
    return v && (*end || n < 0) ? def : n;
}

/* ---- GET /events?every_ms=N&count=K: K "tick" events, one every N ms (no K: no end) ----
   The handler opens the stream, asks microweb to call tick every N ms, and returns: no thread
   waits while a stream is open, so a thousand clients cost a thousand small records, not threads. */
typedef struct ticking {
    long count, sent; /* count 0: no end */
} ticking;

/* On the stream's timer: the next event, "tick" with id and data 1, 2, 3 ... */
static void tick(mw_stream *s, void *arg) {
    ticking *t = (ticking *)arg;
    char id[24];
    snprintf(id, sizeof id, "%ld", ++t->sent);
    mw_sse_send(s, "tick", id, id);
    if (t->count && t->sent >= t->count) mw_stream_end(s); /* all sent: the response ends after them */
}

/* Called once, when the stream is over (all sent, the client gone, the server stopping); its timer too. */
static void on_stream_over(mw_stream *s, void *arg) {
    free(arg);
    mw_stream_close(s);
}

static void events(mw_req *rq, mw_res *rs) {
    ticking *t = (ticking *)calloc(1, sizeof *t);
    const char *last = mw_last_event_id(rq); /* a browser reconnecting says where it was */
    long every_ms = query_long(rq, "every_ms", 1000);
    mw_stream *s;
    if (!t) {
        mw_error(rs, 503, "out of memory");
        return;
    }
    if (!(s = mw_sse_open(rs))) { /* 200, text/event-stream, no caching */
        mw_error(rs, 500, "cannot open the event stream");
        free(t);
        return;
    }
    t->count = query_long(rq, "count", 0);
    t->sent = last ? atol(last) : 0; /* go on after the last event it saw */
    mw_stream_on_close(s, on_stream_over, t);
    if ((t->count && t->sent >= t->count) || mw_stream_every(s, every_ms < 1 ? 1 : every_ms, tick, t) != 0)
        mw_stream_end(s); /* it saw them all already (or no timer could be made) */
}

/* ---- GET /export?rows=N: a CSV "id,name" made while the client reads it ----
   microweb calls next_rows whenever the socket can take more, so a 50 GB export
   uses one small buffer and a slow client slows the producer down. */
typedef struct export_state {
    long next, rows; /* the next row to write; row 0 is the header line */
} export_state;

static long next_rows(void *arg, char *buf, size_t cap) {
    export_state *e = (export_state *)arg;
    size_t used = 0;
    for (; e->next <= e->rows && cap - used > 64; e->next++) {
        if (e->next == 0) used += (size_t)snprintf(buf, cap, "id,name\n");
        else used += (size_t)snprintf(buf + used, cap - used, "%ld,name %ld\n", e->next, e->next);
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
    mw_set_limit(app, MW_LIMIT_ACCESS_LOG, 1); /* one line per request on stderr */
    mw_templates(app, "examples/stream");      /* page.html, read at start (run from the repo's root) */
    mw_get(app, "/", home);
    mw_get(app, "/events", events);
    mw_get(app, "/export", export_csv);
    return mw_run(app); /* serves until Ctrl-C; open streams end cleanly first */
}
