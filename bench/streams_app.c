/* streams_app.c - microweb's side of bench/streams.py: Server-Sent Events fanned out to
   every open stream by a thread of the app's own, a pulled body of constant bytes, and
   a file body.
       GET /               "Hello, World!" (readiness, and the latency probe)
       GET /events         an event stream; every BENCH_EVERY_MS ms (default 100, 0: never)
                           the broadcaster sends one event to every open stream:
                           "data: <sequence number> <CLOCK_MONOTONIC ns of the broadcast>"
       GET /pull?bytes=N   N bytes of 'x' through mw_send_pull (chunked)
       GET /file           the file named by BENCH_FILE through mw_send_file (sendfile)
   Worker threads from MW_THREADS, as for any microweb app. */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- GET /events and the broadcaster ---- */

typedef struct listener {
    mw_stream *stream;
    struct listener *prev, *next;
} listener;

static pthread_mutex_t listeners_lock = PTHREAD_MUTEX_INITIALIZER;
static listener *listeners;
static int stopping; /* under listeners_lock */

static long long monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Called once per stream, on a worker, when it is over (client gone, server stopping). */
static void forget_listener(mw_stream *s, void *arg) {
    listener *l = (listener *)arg;
    pthread_mutex_lock(&listeners_lock);
    if (l->prev) l->prev->next = l->next;
    else listeners = l->next;
    if (l->next) l->next->prev = l->prev;
    pthread_mutex_unlock(&listeners_lock);
    free(l);
    mw_stream_close(s);
}

static void events(mw_req *rq, mw_res *rs) {
    listener *l = (listener *)calloc(1, sizeof *l);
    (void)rq;
    if (!l || !(l->stream = mw_sse_open(rs))) {
        free(l);
        mw_error(rs, 503, "cannot open the event stream");
        return;
    }
    mw_stream_on_close(l->stream, forget_listener, l);
    pthread_mutex_lock(&listeners_lock);
    l->next = listeners;
    if (listeners) listeners->prev = l;
    listeners = l;
    pthread_mutex_unlock(&listeners_lock);
}

/* One event to every open stream; all carry the same time, taken before the first send,
   so the client's latency includes the time the fan-out took to reach it. A stream
   whose buffer is full refuses the event (MW_EAGAIN): the client sees a gap.
   Returns 0 once the app is stopping. */
static int broadcast(long seq) {
    char data[48];
    listener *l;
    int go_on;
    pthread_mutex_lock(&listeners_lock);
    snprintf(data, sizeof data, "%ld %lld", seq, monotonic_ns());
    for (l = listeners; l; l = l->next) mw_sse_send(l->stream, NULL, NULL, data);
    go_on = !stopping;
    pthread_mutex_unlock(&listeners_lock);
    return go_on;
}

/* Broadcasts on a fixed schedule (absolute deadlines, so a slow round does not shift
   the next ones). */
static void *broadcaster(void *arg) {
    long every_ms = *(long *)arg, seq = 0;
    struct timespec due;
    clock_gettime(CLOCK_MONOTONIC, &due);
    do {
        due.tv_nsec += every_ms * 1000000L;
        due.tv_sec += due.tv_nsec / 1000000000L;
        due.tv_nsec %= 1000000000L;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, NULL) != 0) {}
    } while (broadcast(++seq));
    return NULL;
}

/* ---- GET /pull?bytes=N: constant bytes, so the figure is the framework's, not a producer's ---- */

static long fill_constant(void *arg, char *buf, size_t cap) {
    unsigned long long *left = (unsigned long long *)arg;
    size_t n = *left < cap ? (size_t)*left : cap;
    memset(buf, 'x', n);
    *left -= n;
    return (long)n;
}

static void pull(mw_req *rq, mw_res *rs) {
    const char *bytes = mw_value(rq, MW_QUERY, "bytes");
    unsigned long long *left = (unsigned long long *)malloc(sizeof *left);
    if (!left) {
        mw_error(rs, 503, "out of memory");
        return;
    }
    *left = bytes ? strtoull(bytes, NULL, 10) : 0;
    mw_send_pull(rs, 200, "application/octet-stream", fill_constant, left, free);
}

/* ---- GET /file ---- */

static void file(mw_req *rq, mw_res *rs) {
    const char *path = getenv("BENCH_FILE");
    struct stat st;
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    (void)rq;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0) close(fd);
        mw_error(rs, 404, "BENCH_FILE is not set or cannot be read");
        return;
    }
    if (mw_send_file(rs, 200, "application/octet-stream", fd, 0, (long long)st.st_size) != 0) close(fd);
}

static void hello(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "Hello, World!");
}

int main(void) {
    const char *every = getenv("BENCH_EVERY_MS");
    long every_ms = every ? atol(every) : 100;
    pthread_t thread;
    int rc;
    mw_app *app = mw_app_new();
    mw_set_limit(app, MW_LIMIT_CONNECTIONS, 20000);           /* the idle-stream row opens 10,000 */
    mw_set_limit(app, MW_LIMIT_CONNECTIONS_PER_IP, 0);        /* every bench client is 127.0.0.1 */
    mw_set_limit(app, MW_LIMIT_KEEPALIVE_TIMEOUT_MS, 120000); /* as the bench's nginx */
    mw_get(app, "/", hello);
    mw_get(app, "/events", events);
    mw_get(app, "/pull", pull);
    mw_get(app, "/file", file);
    if (every_ms > 0 && pthread_create(&thread, NULL, broadcaster, &every_ms) != 0) return 1;
    rc = mw_run(app); /* until SIGTERM; the open streams end first (on_close forgets each) */
    pthread_mutex_lock(&listeners_lock);
    stopping = 1;
    pthread_mutex_unlock(&listeners_lock);
    if (every_ms > 0) pthread_join(thread, NULL);
    return rc;
}
