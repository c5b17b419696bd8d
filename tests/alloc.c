/* alloc.c - no heap allocation per request in the steady state: every allocation of
   the server goes through MW_MALLOC/MW_REALLOC, which count here. After a warm-up,
   10,000 keep-alive requests (text, JSON with a path parameter, a POST with a body,
   a 404, a JSON body read with mw_req_json) must not allocate at all. */
#include <stdlib.h>

static long alloc_calls; /* updated atomically: the server's worker allocates, the test reads */

static void *counting_malloc(size_t n) {
    __atomic_add_fetch(&alloc_calls, 1, __ATOMIC_RELAXED);
    return malloc(n);
}
static void *counting_realloc(void *p, size_t n) {
    __atomic_add_fetch(&alloc_calls, 1, __ATOMIC_RELAXED);
    return realloc(p, n);
}

#define MW_MALLOC(n) counting_malloc(n)
#define MW_REALLOC(p, n) counting_realloc((p), (n))
#define MW_FREE(p) free(p)
#define HELLO_NO_MAIN /* the example app itself, with every allocation counted */
#include "../examples/hello.c"

#include "harness.h"

/* POST /json: the body parsed with mw_req_json, its member count as text */
static void json_members(mw_req *rq, mw_res *rs) { mw_printf(rs, "%lu", (unsigned long)mw_jv_len(mw_req_json(rq))); }

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

/* Sends one request and reads one whole response; returns its status or -1. */
static int round_trip(int fd, const char *req) {
    char buf[4096];
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
};
#define NREQUESTS (int)(sizeof requests / sizeof requests[0])
#define MISSING 3 /* the request answered 404 */

TEST(steady_state_requests_do_not_allocate) {
    mw_app *app = hello_app();
    pthread_t t;
    int port, fd, i, ok = 0;
    long before;
    mw_set_limit(app, MW_LIMIT_THREADS, 1);
    mw_post(app, "/json", json_members);
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
}

int main(void) {
    RUN(steady_state_requests_do_not_allocate);
    return test_summary();
}
