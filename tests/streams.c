/* streams.c - bodies beyond a buffer, against a server running in this process (so a
   test sees what the app's callbacks saw) and through the in-process test client:
   mw_flush, mw_send_file (past 4 GiB too), push streams written from another thread
   (on_close exactly once, the bounded buffer, the write timeout), Server-Sent Events
   framing and heartbeats, and the test client reading every kind of body.
   tests/run.sh runs it plain, under ASan + UBSan and under TSan.
   E2E_TIMEOUT_SCALE (default 1) stretches the time limits for the sanitizer builds. */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"

/* ---- time ---- */

static double timeout_scale = 1.0;

static long long scaled_ms(long long ms) { return (long long)((double)ms * timeout_scale); }

static long long clock_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec deadline_in(long long ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    return ts;
}

static void pause_ms(long ms) { /* a client that is slow on purpose, never a wait for the server */
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0) {}
}

/* ---- a counter threads wait on: handlers and callbacks tell the test what happened ---- */

typedef struct signal_count {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int n;
} signal_count;

static void count_init(signal_count *s) {
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->changed, NULL);
    s->n = 0;
}

static void count_destroy(signal_count *s) {
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->changed);
}

static void count_add(signal_count *s) {
    pthread_mutex_lock(&s->lock);
    s->n++;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

static int count_get(signal_count *s) {
    int n;
    pthread_mutex_lock(&s->lock);
    n = s->n;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* Waits until the count reaches at least want; whether it did within ms. */
static int count_wait(signal_count *s, int want, long long ms) {
    struct timespec until = deadline_in(scaled_ms(ms));
    int reached;
    pthread_mutex_lock(&s->lock);
    while (s->n < want)
        if (pthread_cond_timedwait(&s->changed, &s->lock, &until) != 0) break;
    reached = s->n >= want;
    pthread_mutex_unlock(&s->lock);
    return reached;
}

/* ---- a server in this process ---- */

typedef struct test_server {
    mw_app *app;
    pthread_t thread;
    int port;
} test_server;

static void *serve(void *app) {
    mw_serve((mw_app *)app);
    return NULL;
}

static int server_start(test_server *srv, mw_app *app) {
    srv->app = app;
    mw_set_limit(app, MW_LIMIT_THREADS, 2);
    srv->port = mw_listen(app, "127.0.0.1", 0);
    if (srv->port <= 0 || pthread_create(&srv->thread, NULL, serve, app) != 0) {
        printf("  cannot start the server (port %d)\n", srv->port);
        mw_app_free(app);
        return 0;
    }
    return 1;
}

static void server_stop(test_server *srv) {
    mw_stop(srv->app);
    pthread_join(srv->thread, NULL);
    mw_app_free(srv->app);
}

/* ---- a client on a blocking socket ---- */

typedef struct client {
    int fd;
    char *data; /* received, from off on not yet consumed */
    size_t len, off, cap;
} client;

static int client_connect(client *c, int port, int rcvbuf) {
    struct sockaddr_in a;
    struct timeval tv;
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0) return 0;
    tv.tv_sec = (time_t)scaled_ms(10000) / 1000;
    tv.tv_usec = 0;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (rcvbuf) setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf); /* before connect: small window */
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return connect(c->fd, (struct sockaddr *)&a, sizeof a) == 0;
}

static void client_close(client *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->data);
    c->data = NULL;
}

static int client_send(client *c, const char *text) {
    size_t n = strlen(text), sent = 0;
    while (sent < n) {
        ssize_t k = send(c->fd, text + sent, n - sent, MSG_NOSIGNAL);
        if (k <= 0) return 0;
        sent += (size_t)k;
    }
    return 1;
}

/* One recv into the buffer: bytes received, 0 at the server's FIN, -1 on an error or timeout. */
static long client_fill(client *c) {
    ssize_t n;
    if (c->off && c->off == c->len) c->off = c->len = 0;
    if (c->cap - c->len < 65536) {
        char *p = (char *)realloc(c->data, c->cap * 2 + 65536 + 1);
        if (!p) return -1;
        c->data = p;
        c->cap = c->cap * 2 + 65536;
    }
    n = recv(c->fd, c->data + c->len, c->cap - c->len, 0);
    if (n > 0) c->len += (size_t)n;
    if (c->data) c->data[c->len] = '\0';
    return (long)n;
}

/* Reads until needle is in the unconsumed bytes; its offset from c->off, or -1. */
static long client_find(client *c, const char *needle, size_t n) {
    for (;;) {
        const char *p =
            c->len - c->off >= n ? (const char *)memmem(c->data + c->off, c->len - c->off, needle, n) : NULL;
        if (p) return (long)(p - (c->data + c->off));
        if (client_fill(c) <= 0) return -1;
    }
}

static int client_read_exact(client *c, char *out, size_t n) {
    while (c->len - c->off < n)
        if (client_fill(c) <= 0) return 0;
    if (out) memcpy(out, c->data + c->off, n);
    c->off += n;
    return 1;
}

/* A response head into out (NUL-terminated, with its blank line); the status, or -1. */
static int read_head(client *c, char *out, size_t cap) {
    long at = client_find(c, "\r\n\r\n", 4);
    size_t n = at < 0 ? 0 : (size_t)at + 4;
    if (at < 0 || n >= cap) return -1;
    memcpy(out, c->data + c->off, n);
    out[n] = '\0';
    c->off += n;
    return strncmp(out, "HTTP/1.1 ", 9) == 0 ? atoi(out + 9) : -1;
}

/* One chunk of a chunked body into out (NUL-terminated): its size, 0 for the last
   chunk (with its blank line), -1 when the framing is wrong or the bytes stop. */
static long read_chunk(client *c, char *out, size_t cap) {
    char line[32], *end;
    long at = client_find(c, "\r\n", 2);
    unsigned long size;
    if (at < 1 || at >= (long)sizeof line) return -1;
    memcpy(line, c->data + c->off, (size_t)at);
    line[at] = '\0';
    c->off += (size_t)at + 2;
    size = strtoul(line, &end, 16);
    if (*end || size >= cap) return -1;
    if (!client_read_exact(c, out, size) || !client_read_exact(c, line, 2) || memcmp(line, "\r\n", 2) != 0) return -1;
    out[size] = '\0';
    return (long)size;
}

/* The server closed the connection with a FIN, and nothing came before it. */
static int client_sees_fin(client *c) { return c->len == c->off && client_fill(c) == 0; }

/* A response to GET /hello follows on the same connection: it was kept open and the
   previous answer had no stray bytes after it. */
static int connection_reusable(client *c) {
    char head[1024];
    if (!client_send(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")) return 0;
    if (read_head(c, head, sizeof head) != 200 || !strstr(head, "Content-Length: 2\r\n")) return 0;
    if (!client_read_exact(c, head, 2)) return 0;
    return memcmp(head, "hi", 2) == 0;
}

static long long vm_kib(const char *field) { /* VmRSS, VmHWM of this process, in KiB */
    char line[256];
    long long kib = -1;
    size_t n = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') kib = atoll(line + n + 1);
    fclose(f);
    return kib;
}

static int open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static void hello(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "hi");
}

/* ============================================================================
   mw_flush: the head and the first bytes leave when the handler flushes
   ============================================================================ */

static signal_count flush_gate;     /* the test lets the handler go on */
static signal_count flush_returned; /* the handler is done */
static int flush_rc, after_status_rc, after_header_rc, after_text_rc;

/* GET /flush: "first part;" flushed, then it waits for the test, then "second part" */
static void flushing(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_status(rs, 200);
    mw_set_header(rs, "X-Before", "yes");
    mw_printf(rs, "first part;");
    flush_rc = mw_flush(rs);
    after_status_rc = mw_status(rs, 404);
    after_header_rc = mw_set_header(rs, "X-After", "no");
    after_text_rc = mw_text(rs, 500, "replaced");
    count_wait(&flush_gate, 1, 10000);
    mw_printf(rs, "second part");
    count_add(&flush_returned);
}

static mw_app *flush_app(void) {
    mw_app *app = mw_app_new();
    mw_get(app, "/flush", flushing);
    mw_get(app, "/hello", hello);
    return app;
}

static void flush_reset(void) {
    count_destroy(&flush_gate);
    count_destroy(&flush_returned);
    count_init(&flush_gate);
    count_init(&flush_returned);
    flush_rc = after_status_rc = after_header_rc = after_text_rc = 99;
}

TEST(test_flush_sends_the_head_and_first_bytes_before_the_handler_returns) {
    test_server srv;
    client c;
    char head[2048], chunk[256];
    flush_reset();
    if (!server_start(&srv, flush_app())) {
        CHECK(0);
        return;
    }
    CHECK(client_connect(&c, srv.port, 0));
    CHECK(client_send(&c, "GET /flush HTTP/1.1\r\nHost: t\r\n\r\n"));
    CHECK_INT(read_head(&c, head, sizeof head), 200);
    CHECK(strstr(head, "\r\nTransfer-Encoding: chunked\r\n") != NULL);
    CHECK(strstr(head, "Content-Length") == NULL);
    CHECK(strstr(head, "\r\nX-Before: yes\r\n") != NULL);
    CHECK_INT(read_chunk(&c, chunk, sizeof chunk), 11);
    CHECK_STR(chunk, "first part;");
    CHECK_INT(count_get(&flush_returned), 0); /* the client has the bytes, the handler is still at work */
    count_add(&flush_gate);
    CHECK_INT(read_chunk(&c, chunk, sizeof chunk), 11);
    CHECK_STR(chunk, "second part");
    CHECK_INT(read_chunk(&c, chunk, sizeof chunk), 0);
    CHECK(connection_reusable(&c));
    CHECK_INT(flush_rc, 0);
    client_close(&c);
    server_stop(&srv);
}

/* A new connection is refused (not left in the backlog) within ms. */
static int refused_within(int port, long long ms) {
    long long until = clock_ms() + ms;
    client late;
    while (clock_ms() < until) {
        int accepted = client_connect(&late, port, 0);
        client_close(&late);
        if (!accepted) return 1;
        pause_ms(5);
    }
    return 0;
}

TEST(test_stopping_refuses_new_connections_while_requests_finish) {
    test_server srv;
    client c;
    char head[2048], chunk[256];
    flush_reset();
    if (!server_start(&srv, flush_app())) {
        CHECK(0);
        return;
    }
    CHECK(client_connect(&c, srv.port, 0));
    CHECK(client_send(&c, "GET /flush HTTP/1.1\r\nHost: t\r\n\r\n"));
    CHECK_INT(read_head(&c, head, sizeof head), 200); /* the handler waits on the gate: in flight */
    mw_stop(srv.app);
    CHECK(refused_within(srv.port, scaled_ms(1000))); /* before: accepted, left unanswered till the end */
    count_add(&flush_gate);
    CHECK_INT(read_chunk(&c, chunk, sizeof chunk), 11);
    CHECK_INT(read_chunk(&c, chunk, sizeof chunk), 11);
    CHECK_STR(chunk, "second part"); /* the request in flight finished */
    CHECK_INT(read_chunk(&c, chunk, sizeof chunk), 0);
    client_close(&c);
    pthread_join(srv.thread, NULL);
    mw_app_free(srv.app);
}

TEST(test_flush_fixes_status_and_headers) {
    test_server srv;
    client c;
    char head[2048], chunk[256];
    flush_reset();
    if (!server_start(&srv, flush_app())) {
        CHECK(0);
        return;
    }
    count_add(&flush_gate);
    CHECK(client_connect(&c, srv.port, 0));
    CHECK(client_send(&c, "GET /flush HTTP/1.1\r\nHost: t\r\n\r\n"));
    CHECK_INT(read_head(&c, head, sizeof head), 200);
    CHECK(strstr(head, "X-After") == NULL);
    CHECK_INT(read_chunk(&c, chunk, sizeof chunk), 11);
    CHECK_STR(chunk, "first part;");
    CHECK_INT(read_chunk(&c, chunk, sizeof chunk), 11);
    CHECK_STR(chunk, "second part");
    CHECK_INT(read_chunk(&c, chunk, sizeof chunk), 0);
    CHECK_INT(after_status_rc, MW_ESTATE);
    CHECK_INT(after_header_rc, MW_ESTATE);
    CHECK_INT(after_text_rc, MW_ESTATE);
    client_close(&c);
    server_stop(&srv);
}

/* RFC 9112 §6.3: an HTTP/1.0 client gets a body of unknown length delimited by the close. */
TEST(test_flush_to_http10_is_close_delimited) {
    test_server srv;
    client c;
    char head[2048];
    flush_reset();
    if (!server_start(&srv, flush_app())) {
        CHECK(0);
        return;
    }
    CHECK(client_connect(&c, srv.port, 0));
    CHECK(client_send(&c, "GET /flush HTTP/1.0\r\n\r\n"));
    CHECK_INT(read_head(&c, head, sizeof head), 200);
    CHECK(strstr(head, "\r\nConnection: close\r\n") != NULL);
    CHECK(strstr(head, "Transfer-Encoding") == NULL && strstr(head, "Content-Length") == NULL);
    CHECK(client_find(&c, "first part;", 11) == 0);
    CHECK_INT(count_get(&flush_returned), 0);
    c.off += 11;
    count_add(&flush_gate);
    CHECK(client_find(&c, "second part", 11) == 0);
    c.off += 11;
    CHECK(client_sees_fin(&c));
    client_close(&c);
    server_stop(&srv);
}

TEST(test_flush_to_head_sends_the_head_only) {
    test_server srv;
    client c;
    char head[2048];
    flush_reset();
    if (!server_start(&srv, flush_app())) {
        CHECK(0);
        return;
    }
    CHECK(client_connect(&c, srv.port, 0));
    CHECK(client_send(&c, "HEAD /flush HTTP/1.1\r\nHost: t\r\n\r\n"));
    CHECK_INT(read_head(&c, head, sizeof head), 200);
    CHECK(strstr(head, "\r\nX-Before: yes\r\n") != NULL);
    count_add(&flush_gate);
    CHECK(count_wait(&flush_returned, 1, 5000));
    CHECK(connection_reusable(&c)); /* the next bytes are the next answer: no body came */
    client_close(&c);
    server_stop(&srv);
}

/* ============================================================================
   mw_send_file: a file's bytes by sendfile, with Content-Length
   ============================================================================ */

static char file_path[64];
static const long long big_file_size = (5LL << 30) + 4096; /* 5 GiB and a page, sparse */
static const long long marker_at = (4LL << 30) + 100000;   /* past the 32-bit range */
static const char marker[] = "microweb past 4 GiB";

static unsigned char file_byte(long long i) { return (unsigned char)(i * 7 + 3); }

/* GET /file?path=P&off=O&len=N */
static void file_route(mw_req *rq, mw_res *rs) {
    const char *path = mw_value(rq, MW_QUERY, "path"), *off = mw_value(rq, MW_QUERY, "off");
    const char *len = mw_value(rq, MW_QUERY, "len");
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0 || !off || !len) {
        if (fd >= 0) close(fd);
        mw_error(rs, 404, "no such file");
        return;
    }
    mw_send_file(rs, 200, "application/octet-stream", fd, atoll(off), atoll(len));
}

static mw_app *file_app(void) {
    mw_app *app = mw_app_new();
    mw_get(app, "/file", file_route);
    mw_get(app, "/hello", hello);
    return app;
}

/* A 100000-byte file of a known pattern; its path in file_path. */
static int make_small_file(void) {
    unsigned char data[100000];
    long long i;
    int fd, ok;
    snprintf(file_path, sizeof file_path, "/tmp/mw-streams-XXXXXX");
    if ((fd = mkstemp(file_path)) < 0) return 0;
    for (i = 0; i < (long long)sizeof data; i++) data[i] = file_byte(i);
    ok = write(fd, data, sizeof data) == (ssize_t)sizeof data;
    close(fd);
    return ok;
}

/* GET or HEAD of /file on c; the body's bytes are checked against want (NULL: file_byte). */
static int file_answer_ok(client *c, const char *method, const char *path, long long off, long long len,
                          const char *want) {
    char req[256], head[2048], cl[64];
    char *body = strcmp(method, "GET") == 0 ? (char *)malloc((size_t)len + 1) : NULL;
    int ok;
    long long i;
    snprintf(req, sizeof req, "%s /file?path=%s&off=%lld&len=%lld HTTP/1.1\r\nHost: t\r\n\r\n", method, path, off, len);
    snprintf(cl, sizeof cl, "\r\nContent-Length: %lld\r\n", len);
    ok = (body || strcmp(method, "GET") != 0) && client_send(c, req) && read_head(c, head, sizeof head) == 200 &&
         strstr(head, cl) != NULL;
    if (!ok) printf("  %s %s: head %s\n", method, req, head);
    if (ok && strcmp(method, "GET") == 0) {
        ok = client_read_exact(c, body, (size_t)len);
        for (i = 0; ok && i < len; i++) ok = want ? body[i] == want[i] : (unsigned char)body[i] == file_byte(off + i);
        if (!ok) printf("  %s: body differs (at byte %lld)\n", req, i - 1);
    }
    free(body);
    return ok;
}

TEST(test_send_file_sends_exact_bytes_with_content_length) {
    test_server srv;
    client c;
    if (!make_small_file()) {
        CHECK(0);
        return;
    }
    if (!server_start(&srv, file_app())) {
        CHECK(0);
        return;
    }
    CHECK(client_connect(&c, srv.port, 0));
    CHECK(file_answer_ok(&c, "GET", file_path, 0, 100000, NULL));
    CHECK(file_answer_ok(&c, "GET", file_path, 12345, 5000, NULL)); /* offset and length honoured */
    CHECK(file_answer_ok(&c, "GET", file_path, 99999, 1, NULL));
    CHECK(file_answer_ok(&c, "HEAD", file_path, 12345, 5000, NULL));
    CHECK(connection_reusable(&c)); /* the HEAD answer carried no body */
    client_close(&c);
    server_stop(&srv);
    unlink(file_path);
}

/* A file that ends before the promised length: the client must see the answer cut
   (the connection closes), never a short body taken as whole. */
TEST(test_send_file_shorter_than_promised_cuts_the_connection) {
    test_server srv;
    client c;
    char head[2048], req[256];
    if (!make_small_file()) {
        CHECK(0);
        return;
    }
    if (!server_start(&srv, file_app())) {
        CHECK(0);
        return;
    }
    CHECK(client_connect(&c, srv.port, 0));
    snprintf(req, sizeof req, "GET /file?path=%s&off=99990&len=20 HTTP/1.1\r\nHost: t\r\n\r\n", file_path);
    CHECK(client_send(&c, req));
    CHECK_INT(read_head(&c, head, sizeof head), 200);
    CHECK(strstr(head, "\r\nContent-Length: 20\r\n") != NULL);
    CHECK(client_read_exact(&c, NULL, 10));
    CHECK(client_sees_fin(&c));
    client_close(&c);
    server_stop(&srv);
    unlink(file_path);
}

TEST(test_send_file_beyond_4_gib) {
    test_server srv;
    client c;
    char want[100];
    int fd;
    snprintf(file_path, sizeof file_path, "/tmp/mw-streams-XXXXXX");
    if ((fd = mkstemp(file_path)) < 0) {
        CHECK(0);
        return;
    }
    CHECK(ftruncate(fd, (off_t)big_file_size) == 0); /* sparse: no disk is used */
    CHECK(pwrite(fd, marker, sizeof marker - 1, (off_t)marker_at) == (ssize_t)(sizeof marker - 1));
    close(fd);
    memset(want, 0, sizeof want);
    memcpy(want + 10, marker, sizeof marker - 1);
    if (!server_start(&srv, file_app())) {
        CHECK(0);
        return;
    }
    CHECK(client_connect(&c, srv.port, 0));
    CHECK(file_answer_ok(&c, "GET", file_path, marker_at - 10, 100, want));
    memset(want, 0, sizeof want);
    CHECK(file_answer_ok(&c, "GET", file_path, big_file_size - 100, 100, want)); /* the very end */
    CHECK(file_answer_ok(&c, "HEAD", file_path, 0, big_file_size, NULL));        /* a length past 32 bits */
    CHECK(connection_reusable(&c));
    client_close(&c);
    server_stop(&srv);
    unlink(file_path);
}

/* ============================================================================
   push streams, written from another thread than the connection's worker
   ============================================================================ */

static mw_stream *pushed;        /* the stream the handler opened */
static signal_count push_opened; /* the handler published it */
static signal_count push_closed; /* on_close calls */

static void push_on_close(mw_stream *s, void *arg) {
    if (s == pushed && arg == &push_closed) count_add(&push_closed);
}

/* GET /push: a text/plain stream the test writes to */
static void push_route(mw_req *rq, mw_res *rs) {
    (void)rq;
    pushed = mw_stream_open(rs, 200, "text/plain");
    mw_stream_on_close(pushed, push_on_close, &push_closed);
    count_add(&push_opened);
}

static mw_app *push_app(long long buffer_bytes, long long write_timeout_ms) {
    mw_app *app = mw_app_new();
    if (buffer_bytes) mw_set_limit(app, MW_LIMIT_STREAM_BUFFER_BYTES, buffer_bytes);
    if (write_timeout_ms) mw_set_limit(app, MW_LIMIT_WRITE_TIMEOUT_MS, write_timeout_ms);
    mw_get(app, "/push", push_route);
    mw_get(app, "/hello", hello);
    return app;
}

static void push_reset(void) {
    count_destroy(&push_opened);
    count_destroy(&push_closed);
    count_init(&push_opened);
    count_init(&push_closed);
    pushed = NULL;
}

/* Connects (with rcvbuf, 0 for the default), asks for /push and reads the head. */
static int open_push(client *c, int port, int rcvbuf) {
    char head[2048];
    if (!client_connect(c, port, rcvbuf) || !client_send(c, "GET /push HTTP/1.1\r\nHost: t\r\n\r\n")) return 0;
    if (!count_wait(&push_opened, 1, 5000) || read_head(c, head, sizeof head) != 200) return 0;
    return strstr(head, "\r\nTransfer-Encoding: chunked\r\n") != NULL;
}

TEST(test_push_on_close_once_when_the_client_goes_away) {
    test_server srv;
    client c;
    char chunk[256];
    push_reset();
    if (!server_start(&srv, push_app(0, 0))) {
        CHECK(0);
        return;
    }
    CHECK(open_push(&c, srv.port, 0));
    CHECK_INT(mw_stream_write(pushed, "hello\n", 6), 0);
    CHECK_INT(read_chunk(&c, chunk, sizeof chunk), 6);
    CHECK_STR(chunk, "hello\n");
    CHECK_INT(count_get(&push_closed), 0);
    client_close(&c);
    CHECK(count_wait(&push_closed, 1, 5000)); /* noticed without a write */
    CHECK_INT(mw_stream_write(pushed, "late\n", 5), MW_ECLOSED);
    CHECK_INT(mw_stream_printf(pushed, "%d\n", 42), MW_ECLOSED);
    mw_stream_close(pushed);
    server_stop(&srv);
    CHECK_INT(count_get(&push_closed), 1);
}

TEST(test_push_on_close_once_when_the_app_ends_the_stream) {
    test_server srv;
    client c;
    char chunk[256];
    push_reset();
    if (!server_start(&srv, push_app(0, 0))) {
        CHECK(0);
        return;
    }
    CHECK(open_push(&c, srv.port, 0));
    CHECK_INT(mw_stream_write(pushed, "a", 1), 0);
    CHECK_INT(mw_stream_printf(pushed, "b%d", 2), 0);
    mw_stream_end(pushed);
    CHECK_INT(mw_stream_write(pushed, "c", 1), MW_ECLOSED); /* after the end: refused at once */
    CHECK_INT(read_chunk(&c, chunk, sizeof chunk), 1);
    CHECK_STR(chunk, "a");
    CHECK_INT(read_chunk(&c, chunk, sizeof chunk), 2);
    CHECK_STR(chunk, "b2");
    CHECK_INT(read_chunk(&c, chunk, sizeof chunk), 0);
    CHECK(count_wait(&push_closed, 1, 5000));
    mw_stream_close(pushed);
    CHECK(connection_reusable(&c)); /* the stream ended cleanly: the connection goes on */
    client_close(&c);
    server_stop(&srv);
    CHECK_INT(count_get(&push_closed), 1);
}

TEST(test_push_to_head_ends_at_once) {
    test_server srv;
    client c;
    char head[2048];
    push_reset();
    if (!server_start(&srv, push_app(0, 0))) {
        CHECK(0);
        return;
    }
    CHECK(client_connect(&c, srv.port, 0));
    CHECK(client_send(&c, "HEAD /push HTTP/1.1\r\nHost: t\r\n\r\n"));
    CHECK_INT(read_head(&c, head, sizeof head), 200);
    CHECK(strstr(head, "\r\nContent-Type: text/plain\r\n") != NULL);
    CHECK(count_wait(&push_closed, 1, 5000));
    CHECK_INT(mw_stream_write(pushed, "x", 1), MW_ECLOSED);
    mw_stream_close(pushed);
    CHECK(connection_reusable(&c));
    client_close(&c);
    server_stop(&srv);
    CHECK_INT(count_get(&push_closed), 1);
}

TEST(test_push_write_larger_than_the_buffer_is_taken_when_nothing_waits) {
    test_server srv;
    client c;
    static char big[300000], got[300001];
    size_t have = 0;
    long n;
    push_reset();
    memset(big, 'b', sizeof big);
    if (!server_start(&srv, push_app(4096, 0))) {
        CHECK(0);
        return;
    }
    CHECK(open_push(&c, srv.port, 0));
    CHECK_INT(mw_stream_write(pushed, big, sizeof big), 0); /* the buffer holds 4096, but is empty */
    mw_stream_end(pushed);
    while ((n = read_chunk(&c, got + have, sizeof got - have)) > 0) have += (size_t)n;
    CHECK_INT(n, 0);
    CHECK_INT(have, sizeof big);
    CHECK(memcmp(got, big, sizeof big) == 0);
    CHECK(count_wait(&push_closed, 1, 5000));
    mw_stream_close(pushed);
    client_close(&c);
    server_stop(&srv);
}

TEST(test_push_head_to_http10_is_not_held_back) {
    test_server srv;
    client c;
    char head[2048];
    long long asked;
    push_reset();
    if (!server_start(&srv, push_app(0, 0))) {
        CHECK(0);
        return;
    }
    CHECK(client_connect(&c, srv.port, 0));
    asked = clock_ms();
    CHECK(client_send(&c, "GET /push HTTP/1.0\r\n\r\n"));
    CHECK(read_head(&c, head, sizeof head) == 200);
    /* the kernel held a head sent with MSG_MORE for 200 ms, waiting for the body */
    CHECK(clock_ms() - asked < scaled_ms(100));
    CHECK(strstr(head, "\r\nConnection: close\r\n") != NULL);
    mw_stream_close(pushed);
    client_close(&c);
    server_stop(&srv);
}

/* GET /push-then-status: a handler that changes the status after opening a stream */
static int status_after_open_rc;
static void push_then_status(mw_req *rq, mw_res *rs) {
    mw_stream *s = mw_stream_open(rs, 200, "text/plain");
    (void)rq;
    status_after_open_rc = mw_status(rs, 304);
    mw_stream_write(s, "x", 1);
    mw_stream_close(s);
}

TEST(test_push_status_after_open_is_refused) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    mw_get(app, "/push-then-status", push_then_status);
    r = mw_test_request(app, "GET", "/push-then-status", NULL, NULL, 0);
    CHECK_INT(status_after_open_rc, MW_ESTATE);
    CHECK_INT(r->status, 200); /* framed chunked for 200: a 304 head before a body would desync */
    CHECK_MEM(r->body, r->body_len, "x");
    mw_test_free(r);
    mw_app_free(app);
}

/* A connection that is receiving a request when the stop comes, and opens a stream
   with it: the stream ends at once (its last chunk), not at the end of the grace. */
TEST(test_push_opened_while_stopping_ends_at_once) {
    test_server srv;
    client c;
    char head[2048], chunk[64];
    long long asked;
    mw_app *app = push_app(0, 0);
    push_reset();
    mw_set_limit(app, MW_LIMIT_SHUTDOWN_GRACE_MS, scaled_ms(4000));
    if (!server_start(&srv, app)) {
        CHECK(0);
        return;
    }
    CHECK(client_connect(&c, srv.port, 0));
    CHECK(connection_reusable(&c));                              /* accepted and served: the stop cannot refuse it */
    CHECK(client_send(&c, "GET /push HTTP/1.1\r\nHost: t\r\n")); /* half a head */
    mw_stop(srv.app);
    /* the stop has reached the connections once new ones are refused (Linux) */
    CHECK(refused_within(srv.port, scaled_ms(1000)));
    pause_ms(50);
    asked = clock_ms();
    CHECK(client_send(&c, "\r\n"));
    CHECK_INT(read_head(&c, head, sizeof head), 200);
    CHECK(strstr(head, "\r\nConnection: close\r\n") != NULL);
    CHECK_INT(read_chunk(&c, chunk, sizeof chunk), 0);
    CHECK(client_sees_fin(&c));
    CHECK(clock_ms() - asked < scaled_ms(1000));
    if (pushed) mw_stream_close(pushed);
    client_close(&c);
    pthread_join(srv.thread, NULL);
    mw_app_free(srv.app);
}

/* The writer: numbered lines from its own thread while the client reads, retrying
   a refused write (the client is slower) until it is taken. */
#define WRITER_LINES 5000

static void *line_writer(void *arg) {
    int i, refused = 0;
    (void)arg;
    for (i = 0; i < WRITER_LINES;) {
        int rc = mw_stream_printf(pushed, "line %05d of the writer thread\n", i);
        if (rc == 0) i++;
        else if (rc == MW_EAGAIN && ++refused < 100000) pause_ms(1);
        else break;
    }
    mw_stream_end(pushed);
    return NULL;
}

TEST(test_push_from_a_writer_thread_arrives_whole_and_in_order) {
    test_server srv;
    client c;
    pthread_t writer;
    char *body = (char *)malloc(WRITER_LINES * 40 + 1), *want = (char *)malloc(WRITER_LINES * 40 + 1), chunk[70000];
    size_t got = 0, wanted = 0;
    long n;
    int i;
    push_reset();
    if (!body || !want || !server_start(&srv, push_app(16384, 0))) {
        free(body);
        free(want);
        {
            CHECK(0);
            return;
        }
    }
    for (i = 0; i < WRITER_LINES; i++)
        wanted += (size_t)snprintf(want + wanted, 40, "line %05d of the writer thread\n", i);
    CHECK(open_push(&c, srv.port, 8192));
    CHECK(pthread_create(&writer, NULL, line_writer, NULL) == 0);
    while ((n = read_chunk(&c, chunk, sizeof chunk)) > 0 && got + (size_t)n <= wanted) {
        memcpy(body + got, chunk, (size_t)n);
        got += (size_t)n;
    }
    CHECK_INT(n, 0);
    CHECK(got == wanted && memcmp(body, want, wanted) == 0);
    pthread_join(writer, NULL);
    CHECK(count_wait(&push_closed, 1, 5000));
    mw_stream_close(pushed);
    client_close(&c);
    server_stop(&srv);
    free(body);
    free(want);
}

/* Writes 8 KiB pieces (each byte telling its position) until the stream refuses one. */
/* Offers the next 8 KiB of the pattern; what the stream takes is counted in written. */
static int write_next_piece(long long *written) {
    char piece[8192];
    long long i;
    int rc;
    for (i = 0; i < (long long)sizeof piece; i++) piece[i] = (char)file_byte(*written + i);
    if ((rc = mw_stream_write(pushed, piece, sizeof piece)) == 0) *written += (long long)sizeof piece;
    return rc;
}

static long long fill_until_refused(long long *written, int *last_rc) {
    long long tries;
    for (tries = 0; tries < 100000; tries++)
        if ((*last_rc = write_next_piece(written)) != 0) break;
    return tries;
}

TEST(test_push_buffer_is_bounded_for_a_client_that_does_not_read) {
    test_server srv;
    client c;
    long long written = 0, rss_before, rss_full, rss_after, i, got;
    int rc = 0, refusals = 0;
    char chunk[70000];
    push_reset();
    if (!server_start(&srv, push_app(65536, 0))) {
        CHECK(0);
        return;
    }
    CHECK(open_push(&c, srv.port, 4096));
    rss_before = vm_kib("VmRSS");
    fill_until_refused(&written, &rc);
    CHECK_INT(rc, MW_EAGAIN);
    rss_full = vm_kib("VmRSS");
    /* 16 MB more offered: the worker may still move some into the socket as the kernel
       takes it (so some are taken, and counted), but the client reads nothing */
    for (i = 0; i < 2000; i++) refusals += write_next_piece(&written) == MW_EAGAIN;
    rss_after = vm_kib("VmRSS");
    printf("  %lld bytes taken, %d of 2000 more writes refused; RSS %lld KiB, full %lld KiB, after %lld KiB\n", written,
           refusals, rss_before, rss_full, rss_after);
    CHECK(refusals >= 1000);
    CHECK(written >= 65536 - 8192 && written < (16LL << 20)); /* the buffer, plus what the kernel holds */
    CHECK(rss_after - rss_full < 1024);   /* none of the 16 MB refused is kept (TSan's own books grow a little) */
    CHECK(rss_after - rss_before < 4096); /* the 64 KiB buffer (and a sanitizer's shadow of it) */
    /* the client reads it all: every accepted byte exactly once, nothing of a refused write */
    for (got = 0; got < written;) {
        long n = read_chunk(&c, chunk, sizeof chunk);
        if (n <= 0) break;
        for (i = 0; i < n && chunk[i] == (char)file_byte(got + i); i++) {}
        if (i < n) break;
        got += n;
    }
    CHECK_INT(got, written);
    CHECK_INT(mw_stream_write(pushed, "more", 4), 0); /* room again once the client read */
    CHECK_INT(read_chunk(&c, chunk, sizeof chunk), 4);
    mw_stream_end(pushed);
    CHECK_INT(read_chunk(&c, chunk, sizeof chunk), 0);
    CHECK(count_wait(&push_closed, 1, 5000));
    mw_stream_close(pushed);
    client_close(&c);
    server_stop(&srv);
}

/* The writer keeps the buffer full. The kernel's socket buffers take bytes for a
   while (progress, which restarts the timeout); once nothing moves for
   MW_WRITE_TIMEOUT_MS the client is cut and on_close fires. */
TEST(test_push_write_timeout_cuts_a_client_that_stopped_reading) {
    test_server srv;
    client c;
    long long written = 0, start, last_taken = 0, gap;
    int rc = 0, cut;
    long n;
    char chunk[70000];
    push_reset();
    if (!server_start(&srv, push_app(65536, 300))) {
        CHECK(0);
        return;
    }
    CHECK(open_push(&c, srv.port, 4096));
    start = clock_ms();
    while (!count_wait(&push_closed, 1, 20) && clock_ms() - start < scaled_ms(10000)) {
        long long before = written;
        fill_until_refused(&written, &rc);
        if (written > before) last_taken = clock_ms();
        if (rc != MW_EAGAIN) break;
    }
    CHECK(count_wait(&push_closed, 1, 1000));
    gap = clock_ms() - last_taken;
    printf("  %lld bytes taken; cut %lld ms after the stream last took a write (write timeout 300 ms)\n", written, gap);
    CHECK(gap < scaled_ms(3000));
    CHECK_INT(mw_stream_write(pushed, "x", 1), MW_ECLOSED);
    mw_stream_close(pushed);
    while ((n = read_chunk(&c, chunk, sizeof chunk)) > 0) {}
    cut = n < 0; /* the bytes stop with no last chunk: the client sees the response cut */
    CHECK(cut);
    client_close(&c);
    server_stop(&srv);
    CHECK_INT(count_get(&push_closed), 1);
}

/* ============================================================================
   Server-Sent Events
   ============================================================================ */

static int sse_rc[8];

static void release_on_close(mw_stream *s, void *arg) {
    (void)arg;
    mw_stream_close(s);
}

/* GET /sse-frames: every kind of line, then the end */
static void sse_frames(mw_req *rq, mw_res *rs) {
    mw_stream *s = mw_sse_open(rs);
    (void)rq;
    mw_stream_on_close(s, release_on_close, NULL);
    sse_rc[0] = mw_sse_send(s, "greet", "7", "one\r\ntwo\rthree\nfour");
    sse_rc[1] = mw_sse_send(s, "bad\nevent", NULL, "x");
    sse_rc[2] = mw_sse_send(s, NULL, "bad\rid", "x");
    sse_rc[3] = mw_sse_comment(s, "two\nlines");
    sse_rc[4] = mw_sse_retry(s, 2500);
    sse_rc[5] = mw_sse_comment(s, "a comment");
    sse_rc[6] = mw_sse_send(s, NULL, NULL, "ends in a line break\n");
    sse_rc[7] = mw_sse_send(s, NULL, NULL, "");
    mw_stream_end(s);
}

TEST(test_sse_framing) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    mw_get(app, "/sse-frames", sse_frames);
    r = mw_test_request(app, "GET", "/sse-frames", NULL, NULL, 0);
    CHECK_INT(r->status, 200);
    CHECK_STR(mw_test_header(r, "Content-Type"), "text/event-stream");
    CHECK_STR(mw_test_header(r, "Cache-Control"), "no-cache");
    CHECK_STR(mw_test_header(r, "Transfer-Encoding"), "chunked");
    CHECK_MEM(r->body, r->body_len,
              "event: greet\nid: 7\ndata: one\ndata: two\ndata: three\ndata: four\n\n"
              "retry: 2500\n\n"
              ": a comment\n\n"
              "data: ends in a line break\ndata: \n\n"
              "data: \n\n");
    CHECK_INT(sse_rc[0], 0);
    CHECK_INT(sse_rc[1], MW_EINVAL); /* a line break would end the field and start another */
    CHECK_INT(sse_rc[2], MW_EINVAL);
    CHECK_INT(sse_rc[3], MW_EINVAL);
    CHECK_INT(sse_rc[4], 0);
    CHECK_INT(sse_rc[5], 0);
    CHECK_INT(sse_rc[6], 0);
    CHECK_INT(sse_rc[7], 0);
    mw_test_free(r);
    mw_app_free(app);
}

static signal_count quiet_closed;

static void quiet_on_close(mw_stream *s, void *arg) {
    (void)arg;
    mw_stream_close(s);
    count_add(&quiet_closed);
}

/* GET /sse-quiet: one event, then silence */
static void sse_quiet(mw_req *rq, mw_res *rs) {
    mw_stream *s = mw_sse_open(rs);
    (void)rq;
    mw_stream_on_close(s, quiet_on_close, NULL);
    mw_sse_send(s, NULL, "1", "hello");
}

TEST(test_sse_heartbeat_after_silence) {
    test_server srv;
    client c;
    mw_app *app = mw_app_new();
    char head[2048], chunk[256];
    long long t0, t1, t2;
    count_destroy(&quiet_closed);
    count_init(&quiet_closed);
    mw_set_limit(app, MW_LIMIT_SSE_HEARTBEAT_MS, 200);
    mw_get(app, "/sse-quiet", sse_quiet);
    if (!server_start(&srv, app)) {
        CHECK(0);
        return;
    }
    CHECK(client_connect(&c, srv.port, 0));
    CHECK(client_send(&c, "GET /sse-quiet HTTP/1.1\r\nHost: t\r\n\r\n"));
    CHECK_INT(read_head(&c, head, sizeof head), 200);
    CHECK(read_chunk(&c, chunk, sizeof chunk) > 0);
    CHECK_STR(chunk, "id: 1\ndata: hello\n\n");
    t0 = clock_ms();
    CHECK(read_chunk(&c, chunk, sizeof chunk) > 0);
    t1 = clock_ms();
    CHECK_STR(chunk, ": heartbeat\n\n");
    CHECK(read_chunk(&c, chunk, sizeof chunk) > 0);
    t2 = clock_ms();
    CHECK_STR(chunk, ": heartbeat\n\n");
    printf("  heartbeats %lld ms and %lld ms apart (MW_SSE_HEARTBEAT_MS 200)\n", t1 - t0, t2 - t1);
    CHECK(t1 - t0 >= 150 && t1 - t0 < scaled_ms(1500));
    CHECK(t2 - t1 >= 150 && t2 - t1 < scaled_ms(1500));
    client_close(&c);
    CHECK(count_wait(&quiet_closed, 1, 5000));
    server_stop(&srv);
}

/* ---- mw_stream_every: a timer on a stream, run on its connection's worker ---- */

typedef struct ticker_state {
    long limit;            /* ticks before the stream ends; 0: no end */
    int ticks;             /* atomic: ticks run */
    int ticks_after_close; /* atomic: ticks run once on_close had begun (must stay 0) */
    int closed;            /* atomic: on_close ran */
    int rc_again, rc_zero; /* a second timer, and one of 0 ms */
    long long started_ms;  /* atomic: when the handler set the timer */
} ticker_state;

static ticker_state ticking;
static signal_count every_closed;

static void every_tick(mw_stream *s, void *arg) {
    ticker_state *t = (ticker_state *)arg;
    int n = __atomic_add_fetch(&t->ticks, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&t->closed, __ATOMIC_SEQ_CST)) __atomic_add_fetch(&t->ticks_after_close, 1, __ATOMIC_SEQ_CST);
    mw_stream_printf(s, "tick %d\n", n);
    if (t->limit && n >= t->limit) mw_stream_end(s);
}

static void every_on_close(mw_stream *s, void *arg) {
    ticker_state *t = (ticker_state *)arg;
    __atomic_store_n(&t->closed, 1, __ATOMIC_SEQ_CST);
    pause_ms(30); /* a tick that ran beside on_close would be seen here */
    mw_stream_close(s);
    count_add(&every_closed);
}

/* GET /every?ms=N: "tick 1\n", "tick 2\n" ... every N ms, ending after ticking.limit */
static void every_route(mw_req *rq, mw_res *rs) {
    mw_stream *s = mw_stream_open(rs, 200, "text/plain");
    const char *ms = mw_value(rq, MW_QUERY, "ms");
    mw_stream_on_close(s, every_on_close, &ticking);
    /* on the timers' clock, read before the timer is set: no tick can then look early */
    __atomic_store_n(&ticking.started_ms, test_engine_clock_ms(), __ATOMIC_SEQ_CST);
    if (mw_stream_every(s, ms ? atol(ms) : 50, every_tick, &ticking) != 0) mw_stream_end(s);
    ticking.rc_again = mw_stream_every(s, 50, every_tick, &ticking);
    ticking.rc_zero = mw_stream_every(s, 0, every_tick, &ticking);
}

static void every_reset(long limit) {
    memset(&ticking, 0, sizeof ticking);
    ticking.limit = limit;
    pthread_mutex_lock(&every_closed.lock);
    every_closed.n = 0;
    pthread_mutex_unlock(&every_closed.lock);
}

TEST(test_every_ticks_on_schedule_then_the_stream_ends) {
    test_server srv;
    client c;
    mw_app *app = mw_app_new();
    char head[2048], chunk[256], want[32];
    long long at[4];
    int i;
    every_reset(4);
    mw_get(app, "/every", every_route);
    mw_get(app, "/hello", hello);
    if (!server_start(&srv, app)) {
        CHECK(0);
        return;
    }
    CHECK(client_connect(&c, srv.port, 0));
    CHECK(client_send(&c, "GET /every?ms=50 HTTP/1.1\r\nHost: t\r\n\r\n"));
    CHECK_INT(read_head(&c, head, sizeof head), 200);
    for (i = 0; i < 4; i++) {
        snprintf(want, sizeof want, "tick %d\n", i + 1);
        CHECK(read_chunk(&c, chunk, sizeof chunk) > 0);
        at[i] = test_engine_clock_ms() - __atomic_load_n(&ticking.started_ms, __ATOMIC_SEQ_CST);
        CHECK_STR(chunk, want);
    }
    printf("  ticks every 50 ms arrived at %lld, %lld, %lld, %lld ms\n", at[0], at[1], at[2], at[3]);
    for (i = 0; i < 4; i++) CHECK(at[i] >= 50 * (i + 1) && at[i] < 50 * (i + 1) + scaled_ms(500));
    CHECK_INT((int)read_chunk(&c, chunk, sizeof chunk), 0); /* the last chunk: the stream ended */
    CHECK(connection_reusable(&c));
    CHECK(count_wait(&every_closed, 1, 5000));
    CHECK_INT(ticking.rc_again, MW_EINVAL); /* one timer a stream */
    CHECK_INT(ticking.rc_zero, MW_EINVAL);
    pause_ms(150);
    CHECK_INT(__atomic_load_n(&ticking.ticks, __ATOMIC_SEQ_CST), 4);
    CHECK_INT(ticking.ticks_after_close, 0);
    client_close(&c);
    server_stop(&srv);
}

TEST(test_every_stops_when_the_client_goes_away) {
    test_server srv;
    client c;
    mw_app *app = mw_app_new();
    char head[2048], chunk[256];
    int seen;
    every_reset(0);
    mw_get(app, "/every", every_route);
    if (!server_start(&srv, app)) {
        CHECK(0);
        return;
    }
    CHECK(client_connect(&c, srv.port, 0));
    CHECK(client_send(&c, "GET /every?ms=10 HTTP/1.1\r\nHost: t\r\n\r\n"));
    CHECK_INT(read_head(&c, head, sizeof head), 200);
    CHECK(read_chunk(&c, chunk, sizeof chunk) > 0);
    CHECK(read_chunk(&c, chunk, sizeof chunk) > 0);
    client_close(&c); /* the next tick's write finds the client gone */
    CHECK(count_wait(&every_closed, 1, 5000));
    seen = __atomic_load_n(&ticking.ticks, __ATOMIC_SEQ_CST);
    pause_ms(100); /* ten periods: no tick runs for a stream that is over */
    CHECK_INT(__atomic_load_n(&ticking.ticks, __ATOMIC_SEQ_CST), seen);
    CHECK_INT(ticking.ticks_after_close, 0);
    server_stop(&srv);
}

TEST(test_every_on_an_ending_stream_is_refused) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    every_reset(0);
    mw_get(app, "/every", every_route);
    r = mw_test_request(app, "HEAD", "/every", NULL, NULL, 0); /* a HEAD stream is over at once */
    CHECK_INT(r->status, 200);
    CHECK_INT(ticking.ticks, 0);
    CHECK_INT(ticking.rc_again, MW_ECLOSED);
    mw_test_free(r);
    mw_app_free(app);
    CHECK_INT(mw_stream_every(NULL, 10, every_tick, NULL), MW_EINVAL);
}

TEST(test_client_runs_a_timers_ticks) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    every_reset(3);
    mw_get(app, "/every", every_route);
    r = mw_test_request(app, "GET", "/every?ms=10", NULL, NULL, 0);
    CHECK_INT(r->status, 200);
    CHECK_MEM(r->body, r->body_len, "tick 1\ntick 2\ntick 3\n");
    mw_test_free(r);
    mw_app_free(app); /* the timers' thread stops, and lets go of the stream */
    CHECK_INT(count_get(&every_closed), 1);
}

/* ============================================================================
   the in-process test client reads every kind of body
   ============================================================================ */

typedef struct pull_state {
    long long made, total;
    int released;
} pull_state;

static pull_state pulling;

static long pull_next(void *arg, char *buf, size_t cap) {
    pull_state *p = (pull_state *)arg;
    size_t n = (size_t)(p->made % 1000) + 1, i; /* pieces of uneven sizes */
    if (n > cap) n = cap;
    if ((long long)n > p->total - p->made) n = (size_t)(p->total - p->made);
    for (i = 0; i < n; i++) buf[i] = (char)file_byte(p->made + (long long)i);
    p->made += (long long)n;
    return (long)n;
}

static void pull_release(void *arg) { ((pull_state *)arg)->released++; }

static void pull_route(mw_req *rq, mw_res *rs) {
    (void)rq;
    memset(&pulling, 0, sizeof pulling);
    pulling.total = 300007;
    mw_send_pull(rs, 200, "application/octet-stream", pull_next, &pulling, pull_release);
}

static int body_is_pattern(const mw_test_res *r, long long n) {
    long long i;
    if ((long long)r->body_len != n) return 0;
    for (i = 0; i < n; i++)
        if ((unsigned char)r->body[i] != file_byte(i)) return 0;
    return 1;
}

TEST(test_client_reads_a_pull_body) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    mw_get(app, "/pull", pull_route);
    r = mw_test_request(app, "GET", "/pull", NULL, NULL, 0);
    CHECK_INT(r->status, 200);
    CHECK_STR(mw_test_header(r, "Transfer-Encoding"), "chunked");
    CHECK(body_is_pattern(r, 300007)); /* decoded from its chunks */
    CHECK_INT(pulling.released, 1);
    mw_test_free(r);
    r = mw_test_request(app, "HEAD", "/pull", NULL, NULL, 0);
    CHECK_INT(r->status, 200);
    CHECK_INT(r->body_len, 0);
    CHECK_INT(pulling.released, 1); /* release runs for a HEAD answer too */
    mw_test_free(r);
    mw_app_free(app);
}

static pthread_t test_writer;

static void *write_then_end(void *arg) {
    mw_stream *s = (mw_stream *)arg;
    int i;
    for (i = 0; i < 100; i++) mw_stream_printf(s, "event %d from a thread\n", i);
    mw_stream_end(s);
    return NULL;
}

/* GET /push-thread: a thread writes the body after the handler returned */
static void push_thread_route(mw_req *rq, mw_res *rs) {
    mw_stream *s = mw_stream_open(rs, 200, "text/plain");
    (void)rq;
    mw_stream_on_close(s, release_on_close, NULL);
    if (pthread_create(&test_writer, NULL, write_then_end, s) != 0) mw_stream_end(s);
}

TEST(test_client_reads_a_push_stream_ended_by_another_thread) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    char want[4096];
    size_t n = 0;
    int i;
    for (i = 0; i < 100; i++) n += (size_t)snprintf(want + n, sizeof want - n, "event %d from a thread\n", i);
    mw_get(app, "/push-thread", push_thread_route);
    r = mw_test_request(app, "GET", "/push-thread", NULL, NULL, 0);
    pthread_join(test_writer, NULL);
    CHECK_INT(r->status, 200);
    CHECK_MEM(r->body, r->body_len, want);
    mw_test_free(r);
    mw_app_free(app);
}

/* GET /flush-big: 200000 bytes after a flush: sent on in pieces as they are written */
static void flush_big(mw_req *rq, mw_res *rs) {
    long long i;
    (void)rq;
    mw_status(rs, 200);
    mw_flush(rs);
    for (i = 0; i < 200000; i++) {
        char b = (char)file_byte(i);
        mw_write(rs, &b, 1);
    }
}

TEST(test_client_reads_flushed_and_file_bodies) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    char target[128];
    int fds;
    mw_get(app, "/flush-big", flush_big);
    mw_get(app, "/file", file_route);
    r = mw_test_request(app, "GET", "/flush-big", NULL, NULL, 0);
    CHECK_INT(r->status, 200);
    CHECK_STR(mw_test_header(r, "Transfer-Encoding"), "chunked");
    CHECK(body_is_pattern(r, 200000));
    mw_test_free(r);
    if (!make_small_file()) {
        CHECK(0);
        return;
    }
    fds = open_fds();
    snprintf(target, sizeof target, "/file?path=%s&off=0&len=100000", file_path);
    r = mw_test_request(app, "GET", target, NULL, NULL, 0);
    CHECK_INT(r->status, 200);
    CHECK_STR(mw_test_header(r, "Content-Length"), "100000");
    CHECK(body_is_pattern(r, 100000));
    CHECK_INT(open_fds(), fds); /* microweb closed the file */
    mw_test_free(r);
    unlink(file_path);
    mw_app_free(app);
}

int main(void) {
    const char *scale = getenv("E2E_TIMEOUT_SCALE");
    if (scale && atof(scale) > 0) timeout_scale = atof(scale);
    signal(SIGPIPE, SIG_IGN);
    count_init(&flush_gate);
    count_init(&flush_returned);
    count_init(&push_opened);
    count_init(&push_closed);
    count_init(&quiet_closed);
    count_init(&every_closed);
    RUN(test_flush_sends_the_head_and_first_bytes_before_the_handler_returns);
    RUN(test_flush_fixes_status_and_headers);
    RUN(test_stopping_refuses_new_connections_while_requests_finish);
    RUN(test_flush_to_http10_is_close_delimited);
    RUN(test_flush_to_head_sends_the_head_only);
    RUN(test_send_file_sends_exact_bytes_with_content_length);
    RUN(test_send_file_shorter_than_promised_cuts_the_connection);
    RUN(test_send_file_beyond_4_gib);
    RUN(test_push_on_close_once_when_the_client_goes_away);
    RUN(test_push_on_close_once_when_the_app_ends_the_stream);
    RUN(test_push_to_head_ends_at_once);
    RUN(test_push_write_larger_than_the_buffer_is_taken_when_nothing_waits);
    RUN(test_push_head_to_http10_is_not_held_back);
    RUN(test_push_status_after_open_is_refused);
    RUN(test_push_opened_while_stopping_ends_at_once);
    RUN(test_push_from_a_writer_thread_arrives_whole_and_in_order);
    RUN(test_push_buffer_is_bounded_for_a_client_that_does_not_read);
    RUN(test_push_write_timeout_cuts_a_client_that_stopped_reading);
    RUN(test_sse_framing);
    RUN(test_sse_heartbeat_after_silence);
    RUN(test_every_ticks_on_schedule_then_the_stream_ends);
    RUN(test_every_stops_when_the_client_goes_away);
    RUN(test_every_on_an_ending_stream_is_refused);
    RUN(test_client_runs_a_timers_ticks);
    RUN(test_client_reads_a_pull_body);
    RUN(test_client_reads_a_push_stream_ended_by_another_thread);
    RUN(test_client_reads_flushed_and_file_bodies);
    count_destroy(&flush_gate);
    count_destroy(&flush_returned);
    count_destroy(&push_opened);
    count_destroy(&push_closed);
    count_destroy(&quiet_closed);
    count_destroy(&every_closed);
    return test_summary();
}
