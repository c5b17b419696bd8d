/* alloc.c - no heap allocation per request in the steady state: every allocation of
   the server goes through MW_MALLOC/MW_REALLOC, which count here. After a warm-up,
   10,000 keep-alive requests (text, JSON with a path parameter, a POST with a body,
   a 404, a JSON body read with mw_req_json, a page from a template), and 1,000 of the
   /docs page, must not allocate at all. And a body's announced length is not reserved
   before its bytes arrive. Built with -DMW_USE_POLL=1 (tests/run.sh does), it also
   checks that the poll() backend allocates and frees through the macros. */
#include <stdlib.h>

/* updated atomically: the server's workers allocate, the test reads */
static long alloc_calls; /* MW_MALLOC and MW_REALLOC calls */
static long live_blocks; /* blocks allocated through the macros and not yet given to MW_FREE */
static long live_bytes;  /* the bytes those blocks were asked for */

/* Each block carries the size it was asked for in front of it, so the bytes live can
   be counted; the union keeps what follows aligned for any type. */
typedef union block_head {
    size_t size;
    long double ld;
    long long ll;
    void *p;
} block_head;

static void count_block(long blocks, long bytes) {
    __atomic_add_fetch(&live_blocks, blocks, __ATOMIC_RELAXED);
    __atomic_add_fetch(&live_bytes, bytes, __ATOMIC_RELAXED);
}

static void *counting_malloc(size_t n) {
    block_head *h = (block_head *)malloc(sizeof *h + n);
    __atomic_add_fetch(&alloc_calls, 1, __ATOMIC_RELAXED);
    if (!h) return NULL;
    h->size = n;
    count_block(1, (long)n);
    return h + 1;
}
static void *counting_realloc(void *p, size_t n) {
    block_head *old = p ? (block_head *)p - 1 : NULL, *h;
    size_t old_size = old ? old->size : 0;
    __atomic_add_fetch(&alloc_calls, 1, __ATOMIC_RELAXED);
    h = (block_head *)realloc(old, sizeof *h + n);
    if (!h) return NULL;
    h->size = n;
    count_block(old ? 0 : 1, (long)n - (long)old_size);
    return h + 1;
}
static void counting_free(void *p) {
    block_head *h = p ? (block_head *)p - 1 : NULL;
    if (h) count_block(-1, -(long)h->size);
    free(h);
}

#define MW_MALLOC(n) counting_malloc(n)
#define MW_REALLOC(p, n) counting_realloc((p), (n))
#define MW_FREE(p) counting_free(p)
#define HELLO_NO_MAIN /* the example app itself, with every allocation counted */
#include "../examples/hello.c"

#include "harness.h"

/* POST /json: the body parsed with mw_req_json, its member count as text */
static void json_members(mw_req *rq, mw_res *rs) { mw_printf(rs, "%lu", (unsigned long)mw_jv_len(mw_req_json(rq))); }

/* GET /page: a template with a section over a list, escaped values and a partial */
static mw_jv_doc *page_view;
static void page(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_render(rs, 200, "page", mw_jv_root(page_view));
}

static void *serve(void *app) {
    mw_serve((mw_app *)app);
    return NULL;
}

static int connect_to(int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends one request and reads one whole response (up to 64 KiB); returns its status or -1. */
static int round_trip(int fd, const char *req) {
    static char buf[65536]; /* the test's thread only */
    size_t got = 0;
    if (send(fd, req, strlen(req), 0) < 0) return -1;
    for (;;) {
        char *end, *cl;
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n <= 0) return -1;
        got += (size_t)n;
        buf[got] = '\0';
        if ((end = strstr(buf, "\r\n\r\n")) && (cl = strstr(buf, "Content-Length: ")) &&
            got >= (size_t)(end + 4 - buf) + (size_t)atoi(cl + 16))
            return atoi(buf + 9);
    }
}

static const char *const requests[] = {
    "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /users/12345 HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n",
    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world",
    "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n",
    "POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 48\r\n\r\n"
    "{\"id\":7,\"tags\":[\"a\",\"b\"],\"ratio\":0.5,\"name\":\"x\"}",
    "GET /page HTTP/1.1\r\nHost: x\r\n\r\n",
};
#define NREQUESTS (int)(sizeof requests / sizeof requests[0])
#define MISSING 3 /* the request answered 404 */

TEST(steady_state_requests_do_not_allocate) {
    mw_app *app = hello_app();
    pthread_t t;
    int port, fd, i, ok = 0;
    long before;
    static const char view[] = "{\"rows\":[{\"id\":1,\"name\":\"<a>\"},{\"id\":2,\"name\":\"b & c\"}]}";
    mw_set_limit(app, MW_LIMIT_THREADS, 1);
    mw_post(app, "/json", json_members);
    page_view = mw_jv_parse(view, sizeof view - 1, NULL, NULL);
    mw_template(app, "page", "<ul>{{#rows}}<li>{{id}}: {{name}}</li>{{/rows}}</ul>{{> foot}}");
    mw_template(app, "foot", "<p>{{missing}}</p>");
    mw_get(app, "/page", page);
    port = mw_listen(app, "127.0.0.1", 0);
    pthread_create(&t, NULL, serve, app);
    fd = connect_to(port);
    for (i = 0; i < 100; i++) round_trip(fd, requests[i % NREQUESTS]); /* warm-up: buffers reach their size */
    before = __atomic_load_n(&alloc_calls, __ATOMIC_RELAXED);
    for (i = 0; i < 10000; i++) {
        int status = round_trip(fd, requests[i % NREQUESTS]);
        ok += status == (i % NREQUESTS == MISSING ? 404 : 200);
    }
    CHECK_INT(ok, 10000);
    CHECK_INT(__atomic_load_n(&alloc_calls, __ATOMIC_RELAXED) - before, 0);
    close(fd);
    mw_stop(app);
    pthread_join(t, NULL);
    mw_app_free(app);
    mw_jv_free(page_view);
}

/* POST /notes: a declared body, echoed back; GET /notes: declared query parameters */
static void note_title(mw_req *rq, mw_res *rs) {
    mw_str t = mw_jv_string(mw_jv_get(mw_req_json(rq), "title"));
    mw_send(rs, 201, "text/plain", t.ptr, t.len);
}
static void note_list(mw_req *rq, mw_res *rs) {
    mw_str sort = mw_arg_str(rq, "sort");
    mw_printf(rs, "%lld %.*s", mw_arg_int(rq, "limit"), (int)sort.len, sort.ptr);
}

/* Checking declared inputs, and listing what is wrong in a 422, takes what it needs
   from the request's arena: nothing from the heap once warm. */
TEST(declared_routes_do_not_allocate) {
    static const char *const declared[] = {
        "POST /notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 49\r\n\r\n"
        "{\"title\":\"a note\",\"body\":\"text\",\"tags\":[\"a\",\"b\"]}",
        "POST /notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 31\r\n\r\n"
        "{\"title\":\"\",\"tags\":[1,2],\"x\":0}",
        "GET /notes?limit=5&sort=desc HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /notes?limit=500&sort=sideways HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    static const int want[] = {201, 422, 200, 422};
    mw_app *app = hello_app();
    mw_op post, list;
    pthread_t t;
    int port, fd, i, ok = 0;
    long before;
    memset(&post, 0, sizeof post);
    memset(&list, 0, sizeof list);
    post.body = "{title: string(1..200), body: string, tags?: [string]}";
    list.query = "limit: int(1..100) = 20, sort: \"asc\" | \"desc\" = \"asc\"";
    mw_set_limit(app, MW_LIMIT_THREADS, 1);
    CHECK_INT(mw_route_op(app, "POST", "/notes", note_title, &post), 0);
    CHECK_INT(mw_route_op(app, "GET", "/notes", note_list, &list), 0);
    port = mw_listen(app, "127.0.0.1", 0);
    pthread_create(&t, NULL, serve, app);
    fd = connect_to(port);
    for (i = 0; i < 100; i++) round_trip(fd, declared[i % 4]); /* warm-up */
    before = __atomic_load_n(&alloc_calls, __ATOMIC_RELAXED);
    for (i = 0; i < 10000; i++) ok += round_trip(fd, declared[i % 4]) == want[i % 4];
    CHECK_INT(ok, 10000);
    CHECK_INT(__atomic_load_n(&alloc_calls, __ATOMIC_RELAXED) - before, 0);
    close(fd);
    mw_stop(app);
    pthread_join(t, NULL);
    mw_app_free(app);
}

/* GET /count: a counter in the session, read and written back */
static void session_count(mw_req *rq, mw_res *rs) {
    const char *n = mw_session_get(rq, "n");
    char next[24];
    snprintf(next, sizeof next, "%ld", n ? strtol(n, NULL, 10) + 1 : 1);
    mw_session_set(rq, "n", next);
    mw_text(rs, 200, next);
}

static int pass_hook(mw_req *rq, mw_res *rs, void *arg) {
    (void)rs;
    (void)arg;
    return mw_route_data(rq) ? MW_DONE : MW_NEXT;
}

static void header_hook(mw_req *rq, mw_res *rs, void *arg) {
    (void)rq;
    (void)arg;
    mw_set_header(rs, "X-Hook", "1");
}

/* A first GET /count; its session cookie goes into the request every later one sends. */
static int first_session_cookie(int fd, char *line, size_t cap) {
    char buf[4096];
    ssize_t n;
    const char *c, *semi;
    static const char get[] = "GET /count HTTP/1.1\r\nHost: x\r\n\r\n";
    if (send(fd, get, sizeof get - 1, 0) != (ssize_t)(sizeof get - 1)) return 0;
    if ((n = recv(fd, buf, sizeof buf - 1, 0)) <= 0) return 0;
    buf[n] = '\0';
    if (!(c = strstr(buf, "Set-Cookie: ")) || !(semi = strchr(c, ';'))) return 0;
    snprintf(line, cap, "GET /count HTTP/1.1\r\nHost: x\r\nOrigin: http://a.test\r\nCookie: %.*s\r\n\r\n",
             (int)(semi - c - 12), c + 12);
    return 1;
}

/* Hooks, CORS, security headers and a session read and written on every request take
   what they need from the request's arena: nothing from the heap once warm. */
TEST(middleware_requests_do_not_allocate) {
    mw_app *app = hello_app();
    mw_cors_opts cors;
    pthread_t t;
    char request[1024];
    int port, fd, i, ok = 0;
    long before;
    memset(&cors, 0, sizeof cors);
    cors.origins = "http://a.test";
    cors.credentials = 1;
    mw_set_limit(app, MW_LIMIT_THREADS, 1);
    mw_before(app, NULL, pass_hook, NULL);
    mw_after(app, NULL, header_hook, NULL);
    mw_cors(app, NULL, &cors);
    mw_security_headers(app, NULL);
    mw_secret_key(app, "alloc-test-key-0123456789abcdef");
    mw_sessions(app, NULL);
    mw_get(app, "/count", session_count);
    port = mw_listen(app, "127.0.0.1", 0);
    pthread_create(&t, NULL, serve, app);
    fd = connect_to(port);
    CHECK(first_session_cookie(fd, request, sizeof request));
    for (i = 0; i < 100; i++) round_trip(fd, request); /* warm-up */
    before = __atomic_load_n(&alloc_calls, __ATOMIC_RELAXED);
    for (i = 0; i < 10000; i++) ok += round_trip(fd, request) == 200;
    CHECK_INT(ok, 10000);
    CHECK_INT(__atomic_load_n(&alloc_calls, __ATOMIC_RELAXED) - before, 0);
    close(fd);
    mw_stop(app);
    pthread_join(t, NULL);
    mw_app_free(app);
}

/* The /docs page: its 35 KB are copied into the response, into buffers that keep their size. */
TEST(docs_page_requests_do_not_allocate) {
    mw_app *app = mw_app_new();
    pthread_t t;
    int port, fd, i, ok = 0;
    long before;
    mw_set_limit(app, MW_LIMIT_THREADS, 1);
    mw_docs(app);
    port = mw_listen(app, "127.0.0.1", 0);
    pthread_create(&t, NULL, serve, app);
    fd = connect_to(port);
    for (i = 0; i < 10; i++) round_trip(fd, "GET /docs HTTP/1.1\r\nHost: x\r\n\r\n"); /* warm-up */
    before = __atomic_load_n(&alloc_calls, __ATOMIC_RELAXED);
    for (i = 0; i < 1000; i++) ok += round_trip(fd, "GET /docs HTTP/1.1\r\nHost: x\r\n\r\n") == 200;
    CHECK_INT(ok, 1000);
    CHECK_INT(__atomic_load_n(&alloc_calls, __ATOMIC_RELAXED) - before, 0);
    close(fd);
    mw_stop(app);
    pthread_join(t, NULL);
    mw_app_free(app);
}

/* Sends a head announcing a body of `length` bytes and waiting for 100 Continue (as
   curl does for a large body); 1 when the interim answer came, then sends `first`. */
static int announce_body(int fd, long length, const char *first) {
    static const char interim[] = "HTTP/1.1 100 Continue\r\n\r\n";
    char head[160], buf[sizeof interim];
    size_t got = 0;
    snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %ld\r\nExpect: 100-continue\r\n\r\n",
             length);
    if (send(fd, head, strlen(head), 0) < 0) return 0;
    while (got < sizeof interim - 1) { /* sent once the head is read and the body begun */
        ssize_t n = recv(fd, buf + got, sizeof interim - 1 - got, 0);
        if (n <= 0) return 0;
        got += (size_t)n;
    }
    return memcmp(buf, interim, sizeof interim - 1) == 0 && send(fd, first, strlen(first), 0) > 0;
}

/* A body's buffer grows as its bytes arrive: a connection that announces 8 MiB and
   sends three bytes holds a few KiB, not 8 MiB (2,000 of them once reserved 16 GB of
   address space). */
TEST(announced_body_length_is_not_reserved_up_front) {
    enum { CONNS = 50 };
    mw_app *app = hello_app();
    pthread_t t;
    int port, fds[CONNS], i, begun = 0;
    long before, held;
    mw_set_limit(app, MW_LIMIT_THREADS, 1);
    mw_set_limit(app, MW_LIMIT_BODY_BYTES, 16 << 20);
    port = mw_listen(app, "127.0.0.1", 0);
    pthread_create(&t, NULL, serve, app);
    fds[0] = connect_to(port);
    CHECK_INT(round_trip(fds[0], requests[2]), 200); /* warm-up: the worker's buffers */
    close(fds[0]);
    before = __atomic_load_n(&live_bytes, __ATOMIC_RELAXED);
    for (i = 0; i < CONNS; i++) {
        fds[i] = connect_to(port);
        begun += announce_body(fds[i], 8L << 20, "abc");
    }
    held = __atomic_load_n(&live_bytes, __ATOMIC_RELAXED) - before;
    printf("  info: %d connections announcing 8 MiB hold %ld bytes (%ld each)\n", CONNS, held, held / CONNS);
    CHECK_INT(begun, CONNS);
    CHECK(held < CONNS * 65536L);
    for (i = 0; i < CONNS; i++) close(fds[i]);
    mw_stop(app);
    pthread_join(t, NULL);
    mw_app_free(app);
}

#if MW__POLLER_POLL
/* The poll() backend's table of armed descriptors is an allocation like any other: it
   must come from MW_REALLOC and go back through MW_FREE, or a user's allocator would
   miss it (or be handed memory it never gave out). */
TEST(poll_backend_allocates_through_the_macros) {
    mw_app *app = hello_app();
    pthread_t t;
    long before = __atomic_load_n(&alloc_calls, __ATOMIC_RELAXED);
    int port, fd;
    mw_set_limit(app, MW_LIMIT_THREADS, 2);
    port = mw_listen(app, "127.0.0.1", 0); /* arms the listener and the wake-up pipe */
    CHECK(__atomic_load_n(&alloc_calls, __ATOMIC_RELAXED) > before);
    pthread_create(&t, NULL, serve, app);
    fd = connect_to(port);
    CHECK_INT(round_trip(fd, requests[1]), 200);
    close(fd);
    mw_stop(app);
    pthread_join(t, NULL);
    mw_app_free(app);
    CHECK_INT(__atomic_load_n(&live_blocks, __ATOMIC_RELAXED), 0);
}
#endif

int main(void) {
    RUN(steady_state_requests_do_not_allocate);
    RUN(middleware_requests_do_not_allocate);
    RUN(docs_page_requests_do_not_allocate);
    RUN(declared_routes_do_not_allocate);
    RUN(announced_body_length_is_not_reserved_up_front);
#if MW__POLLER_POLL
    RUN(poll_backend_allocates_through_the_macros);
#endif
    return test_summary();
}
