/* syscalls.c - what a keep-alive request costs in system calls, with one worker and with
   several: one recv and one sendmsg, and no call to re-arm the connection in the poller
   (one worker's connections stay armed level-triggered, several workers' edge-triggered;
   see mw__conn_hand_off). Edge arming must never lose an edge: a pipelined burst larger
   than the read buffer, an answer larger than the socket takes, and requests after TCP
   urgent data or descriptors passed on a Unix socket (where a read stops short of what
   is there), and a request whose edge came while its connection was busy, are still
   answered at once.
   The server's calls are counted by wrapping them; the client here reads and writes with
   read(), write(), send() and its own sendmsg, which are not counted. */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

/* the client's sendmsg, before the server's is wrapped */
static ssize_t client_sendmsg(int fd, const struct msghdr *msg) { return sendmsg(fd, msg, 0); }

static long n_epoll_ctl, n_epoll_wait, n_recv, n_sendmsg, n_send_full; /* atomic: workers count */

static void count(long *n) { __atomic_add_fetch(n, 1, __ATOMIC_RELAXED); }
static long counted(long *n) { return __atomic_load_n(n, __ATOMIC_RELAXED); }

/* Counts the calls for connections: the listener's re-arming after an accept and the
   wake-up pipe's are not a request's. */
static int counting_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev) {
    int listening = 1;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && !listening) count(&n_epoll_ctl);
    return epoll_ctl(epfd, op, fd, ev);
}
static int counting_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout) {
    int n = epoll_wait(epfd, ev, max, timeout);
    if (n > 0) count(&n_epoll_wait); /* the calls that returned events: timeouts are the sweeper's ticks */
    return n;
}
/* Once armed, the next server recv that finds the socket empty holds its worker there
   (it still runs the connection) until the test writes to hold[1]. */
static int hold[2], hold_armed, hold_entered;
static void hold_worker(void) {
    int saved = errno;
    char c;
    __atomic_store_n(&hold_entered, 1, __ATOMIC_RELEASE);
    if (read(hold[0], &c, 1) != 1) { /* the test is over: go on anyway */
    }
    errno = saved;
}

static ssize_t counting_recv(int fd, void *buf, size_t len, int flags) {
    ssize_t n;
    count(&n_recv);
    n = recv(fd, buf, len, flags);
    if (n < 0 && errno == EAGAIN && __atomic_exchange_n(&hold_armed, 0, __ATOMIC_ACQ_REL)) hold_worker();
    return n;
}
static ssize_t counting_sendmsg(int fd, const struct msghdr *msg, int flags) {
    ssize_t n;
    count(&n_sendmsg); /* before the call: the client may read its answer before it returns */
    n = sendmsg(fd, msg, flags);
    if (n < 0) count(&n_send_full);
    return n;
}

#define epoll_ctl counting_epoll_ctl
#define epoll_wait counting_epoll_wait
#define recv counting_recv
#define sendmsg counting_sendmsg
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include <poll.h>

#include "harness.h"

#define CONNS 8
#define ROUNDS 250
#define BIG_BYTES (8 << 20) /* more than a loopback socket's buffers take */

static char *big_body;

static void hello(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "Hello, World!");
}

static void big(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_send(rs, 200, "application/octet-stream", big_body, BIG_BYTES);
}

static void *serve(void *app) {
    mw_serve((mw_app *)app);
    return NULL;
}

/* An app with the given workers; its head and keep-alive timeouts are long, so an
   answer that does not come at once is seen missing, not answered by a timeout. */
static mw_app *app_with(int workers) {
    mw_app *app = mw_app_new();
    mw_set_limit(app, MW_LIMIT_THREADS, workers);
    mw_set_limit(app, MW_LIMIT_HEAD_TIMEOUT_MS, 60000);
    mw_set_limit(app, MW_LIMIT_KEEPALIVE_TIMEOUT_MS, 60000);
    mw_get(app, "/", hello);
    mw_get(app, "/big", big);
    return app;
}

static mw_app *start(int workers, int *port, pthread_t *t) {
    mw_app *app = app_with(workers);
    *port = mw_listen(app, "127.0.0.1", 0);
    pthread_create(t, NULL, serve, app);
    return app;
}

static void finish(mw_app *app, pthread_t t) {
    mw_stop(app);
    pthread_join(t, NULL);
    mw_app_free(app);
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

/* Reads until `want` bytes came or 5 s passed without any: the count read. */
static size_t read_bytes(int fd, char *buf, size_t want) {
    size_t got = 0;
    while (got < want) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&p, 1, 5000) != 1 || (n = read(fd, buf + got, want - got)) <= 0) break;
        got += (size_t)n;
    }
    return got;
}

static const char request[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/* The length of the answer to `request`, from a first one. */
static size_t answer_length(int fd) {
    char buf[4096];
    ssize_t n;
    if (write(fd, request, sizeof request - 1) < 0 || (n = read(fd, buf, sizeof buf)) <= 0) return 0;
    return (size_t)n;
}

/* ROUNDS requests on each of CONNS keep-alive connections, in turn: each counter's
   growth per request is checked. */
static void keep_alive_costs(int workers) {
    pthread_t t;
    int port, fd[CONNS], i, r, answered = 0;
    mw_app *app = start(workers, &port, &t);
    size_t len = 0;
    long ctl, waits, recvs, sends, requests = (long)CONNS * ROUNDS;
    char buf[4096];
    for (i = 0; i < CONNS; i++) {
        fd[i] = connect_to(port);
        len = answer_length(fd[i]); /* accepted and armed: what follows is the steady state */
    }
    CHECK(len > 0 && len < sizeof buf);
    ctl = counted(&n_epoll_ctl), waits = counted(&n_epoll_wait);
    recvs = counted(&n_recv), sends = counted(&n_sendmsg);
    for (r = 0; r < ROUNDS; r++)
        for (i = 0; i < CONNS; i++)
            if (write(fd[i], request, sizeof request - 1) > 0 && read_bytes(fd[i], buf, len) == len) answered++;
    CHECK_INT(answered, requests);
    CHECK_INT(counted(&n_epoll_ctl) - ctl, 0);
    CHECK_INT(counted(&n_sendmsg) - sends, requests);
    /* a second worker may take an edge for a connection still being run, which runs it
       once more: a recv that finds nothing, now and then */
    CHECK(counted(&n_recv) - recvs <= requests + requests / 10);
    CHECK(counted(&n_epoll_wait) - waits <= requests + requests / 10);
    for (i = 0; i < CONNS; i++) close(fd[i]);
    finish(app, t);
}

TEST(one_worker_keep_alive_request_is_one_recv_one_sendmsg) { keep_alive_costs(1); }
TEST(several_workers_keep_alive_request_is_one_recv_one_sendmsg) { keep_alive_costs(4); }

/* Pipelined requests in one write, many times the read buffer: a read fills the buffer,
   so the socket is not known to be empty, and the connection is re-armed to be looked
   at afresh; an edge-armed connection left as it was would wait for an edge that never
   comes. */
TEST(several_workers_answer_a_pipelined_burst_larger_than_the_read_buffer) {
    enum { BURST = 2000 };
    static char burst[BURST * (sizeof request - 1)], answers[BURST * 256];
    pthread_t t;
    int port, fd, i;
    mw_app *app = start(4, &port, &t);
    size_t len;
    fd = connect_to(port);
    len = answer_length(fd);
    CHECK(len > 0 && len <= 256);
    for (i = 0; i < BURST; i++) memcpy(burst + (size_t)i * (sizeof request - 1), request, sizeof request - 1);
    CHECK(sizeof burst > 10 * MW_READ_BUFFER_BYTES);
    CHECK_INT(write(fd, burst, sizeof burst), (long long)sizeof burst);
    CHECK_INT(read_bytes(fd, answers, BURST * len), (long long)(BURST * len));
    close(fd);
    finish(app, t);
}

/* An answer the socket cannot take at once: the client reads only once the server has
   found the socket full, so the rest goes out on the edge of the socket draining. */
TEST(several_workers_finish_an_answer_larger_than_the_socket_takes) {
    static const char get_big[] = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    static char got[BIG_BYTES + 4096];
    pthread_t t;
    int port, fd, waited;
    mw_app *app = start(4, &port, &t);
    size_t head, total;
    long full = counted(&n_send_full);
    int small = 65536; /* the client's buffer, so the socket fills whatever the system's defaults */
    big_body = (char *)malloc(BIG_BYTES);
    memset(big_body, 'x', BIG_BYTES);
    fd = connect_to(port);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    CHECK_INT(write(fd, get_big, sizeof get_big - 1), (long long)(sizeof get_big - 1));
    for (waited = 0; counted(&n_send_full) == full && waited < 10000; waited++) poll(NULL, 0, 1);
    CHECK(counted(&n_send_full) > full);
    total = read_bytes(fd, got, 1024);
    got[total] = '\0';
    CHECK(strstr(got, "\r\n\r\n") != NULL);
    head = strstr(got, "\r\n\r\n") ? (size_t)(strstr(got, "\r\n\r\n") + 4 - got) : 0;
    total += read_bytes(fd, got + total, head + BIG_BYTES - total);
    CHECK_INT(total, (long long)(head + BIG_BYTES));
    close(fd);
    finish(app, t);
    free(big_body);
}

/* GET /gate answers once the test opens the gate: while it waits, its connection is
   busy, and what the client sends meanwhile is all in the socket when it is read. */
static int gate[2], gate_entered;
static void gated(mw_req *rq, mw_res *rs) {
    char c;
    (void)rq;
    __atomic_store_n(&gate_entered, 1, __ATOMIC_RELEASE);
    if (read(gate[0], &c, 1) != 1) { /* the test is over: answer anyway */
    }
    mw_text(rs, 200, "Hello, World!");
}

/* Sends GET /gate, then (while its handler waits) before, a byte of TCP urgent data and
   after; then opens the gate. */
static int send_behind_gate(int fd, const char *before, const char *after) {
    static const char get_gate[] = "GET /gate HTTP/1.1\r\nHost: x\r\n\r\n";
    int ok, waited;
    __atomic_store_n(&gate_entered, 0, __ATOMIC_RELEASE);
    if (write(fd, get_gate, sizeof get_gate - 1) < 0) return -1;
    for (waited = 0; !__atomic_load_n(&gate_entered, __ATOMIC_ACQUIRE) && waited < 10000; waited++) poll(NULL, 0, 1);
    ok = write(fd, before, strlen(before)) > 0 && send(fd, "Z", 1, MSG_OOB) == 1 && write(fd, after, strlen(after)) > 0;
    return write(gate[1], "x", 1) == 1 && ok ? 0 : -1;
}

/* A byte of TCP urgent data in the middle of a head, and between two pipelined
   requests: a read stops at it, short of the bytes after it, so a short read there does
   not show the socket empty (the poller reports the urgent data, and the connection is
   looked at afresh). With edge arming trusting the short read, the head waited for its
   timeout and the second request for the keep-alive's. */
TEST(several_workers_answer_past_tcp_urgent_data) {
    static const char first[] = "GET / HTTP/1.1\r\nHost: x\r\n", rest[] = "\r\n";
    pthread_t t;
    int port, fd;
    mw_app *app = app_with(4);
    size_t len;
    char buf[4096];
    CHECK(pipe(gate) == 0);
    mw_get(app, "/gate", gated);
    port = mw_listen(app, "127.0.0.1", 0);
    pthread_create(&t, NULL, serve, app);
    fd = connect_to(port);
    len = answer_length(fd);
    CHECK(len > 0 && len < sizeof buf / 3);
    CHECK(send_behind_gate(fd, first, rest) == 0);
    CHECK_INT(read_bytes(fd, buf, 2 * len), (long long)(2 * len));
    CHECK(strncmp(buf + len, "HTTP/1.1 200", 12) == 0);
    CHECK(send_behind_gate(fd, request, request) == 0);
    CHECK_INT(read_bytes(fd, buf, 3 * len), (long long)(3 * len));
    close(fd);
    finish(app, t);
    close(gate[0]);
    close(gate[1]);
}

/* GET /stream opens a push stream and leaves it to the test, which ends it. */
static mw_stream *open_stream;
static mw__conn *stream_conn;
static void streamed(mw_req *rq, mw_res *rs) {
    (void)rq;
    __atomic_store_n(&stream_conn, rs->conn, __ATOMIC_RELEASE);
    __atomic_store_n(&open_stream, mw_stream_open(rs, 200, "text/plain"), __ATOMIC_RELEASE);
}

static int stream_conn_runs_again(void) {
    mw__conn *c = __atomic_load_n(&stream_conn, __ATOMIC_ACQUIRE);
    return c && (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) & 3u) == MW__RUN_AGAIN;
}

static int wakes_taken(mw_app *app) {
    size_t len;
    pthread_mutex_lock(&app->wake_lock);
    len = app->wakes.len;
    pthread_mutex_unlock(&app->wake_lock);
    return len == 0;
}

/* Guards a read edge merged into a busy connection's next turn, which reads nothing. */
TEST(several_workers_answer_a_request_whose_edge_came_while_its_stream_ended) {
    static const char get_stream[] = "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n";
    pthread_t t;
    int port, fd, marker, waited;
    mw_app *app = app_with(2); /* one held on the stream, one to take every other event in turn */
    size_t len;
    char buf[4096];
    CHECK(pipe(hold) == 0);
    mw_get(app, "/stream", streamed);
    port = mw_listen(app, "127.0.0.1", 0);
    pthread_create(&t, NULL, serve, app);
    marker = connect_to(port);
    len = answer_length(marker);
    CHECK(len > 0 && len < sizeof buf / 3);
    fd = connect_to(port);
    CHECK(write(fd, get_stream, sizeof get_stream - 1) > 0 && read(fd, buf, sizeof buf) > 0); /* the head */
    __atomic_store_n(&hold_entered, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&hold_armed, 1, __ATOMIC_RELEASE);
    CHECK(write(fd, request, sizeof request - 1) > 0); /* read by the parked stream's run, held after */
    for (waited = 0; !__atomic_load_n(&hold_entered, __ATOMIC_ACQUIRE) && waited < 10000; waited++) poll(NULL, 0, 1);
    CHECK(__atomic_load_n(&hold_entered, __ATOMIC_ACQUIRE));
    CHECK(write(fd, request, sizeof request - 1) > 0); /* its edge asks the held run for one more turn */
    for (waited = 0; !stream_conn_runs_again() && waited < 10000; waited++) poll(NULL, 0, 1);
    CHECK(stream_conn_runs_again());
    mw_stream_close(__atomic_load_n(&open_stream, __ATOMIC_ACQUIRE)); /* that turn ends it: no recv */
    for (waited = 0; !wakes_taken(app) && waited < 10000; waited++) poll(NULL, 0, 1);
    CHECK(wakes_taken(app));
    /* the free worker answers this only after it has run the stream's wake-up */
    CHECK(write(marker, request, sizeof request - 1) > 0 && read_bytes(marker, buf, len) == len);
    CHECK(write(hold[1], "x", 1) == 1);
    /* the last chunk, the first request's answer from the buffer, the second's from the socket */
    CHECK_INT(read_bytes(fd, buf, 5 + 2 * len), (long long)(5 + 2 * len));
    CHECK(memcmp(buf, "0\r\n\r\n", 5) == 0 && strncmp(buf + 5 + len, "HTTP/1.1 200", 12) == 0);
    __atomic_store_n(&hold_armed, 0, __ATOMIC_RELEASE);
    close(fd);
    close(marker);
    finish(app, t);
    close(hold[0]);
    close(hold[1]);
}

/* Sends bytes with a descriptor attached (SCM_RIGHTS): on a Unix socket the server's
   read stops after them, short of what follows. */
static int send_with_descriptor(int fd, const char *bytes, size_t n) {
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov;
    struct msghdr msg;
    struct cmsghdr *cm;
    int passed = 0; /* standard input: any open descriptor */
    memset(&msg, 0, sizeof msg);
    memset(&control, 0, sizeof control);
    iov.iov_base = (void *)bytes;
    iov.iov_len = n;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &passed, sizeof passed);
    return client_sendmsg(fd, &msg) == (ssize_t)n ? 0 : -1;
}

/* A Unix-domain listener (mw_listen_fd) with several workers: its connections are armed
   one-shot, and a head split by descriptors passed with its first part is answered. */
TEST(several_workers_on_a_unix_socket_answer_past_passed_descriptors) {
    static const char first[] = "GET / HTTP/1.1\r\nHost: x\r\n", rest[] = "\r\n";
    struct sockaddr_un a;
    pthread_t t;
    mw_app *app = app_with(4);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0), fd, i, answered = 0;
    char buf[4096];
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "/tmp/microweb-syscalls-%d.sock", (int)getpid());
    unlink(a.sun_path);
    CHECK(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 16) == 0);
    CHECK_INT(mw_listen_fd(app, lfd), 0);
    pthread_create(&t, NULL, serve, app);
    for (i = 0; i < 5; i++) {
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
            send_with_descriptor(fd, first, sizeof first - 1) == 0 && write(fd, rest, sizeof rest - 1) > 0 &&
            read_bytes(fd, buf, 12) == 12 && strncmp(buf, "HTTP/1.1 200", 12) == 0)
            answered++;
        close(fd);
    }
    CHECK_INT(answered, 5);
    finish(app, t);
    unlink(a.sun_path);
}

int main(void) {
    RUN(one_worker_keep_alive_request_is_one_recv_one_sendmsg);
    RUN(several_workers_keep_alive_request_is_one_recv_one_sendmsg);
    RUN(several_workers_answer_a_pipelined_burst_larger_than_the_read_buffer);
    RUN(several_workers_finish_an_answer_larger_than_the_socket_takes);
    RUN(several_workers_answer_past_tcp_urgent_data);
    RUN(several_workers_answer_a_request_whose_edge_came_while_its_stream_ended);
    RUN(several_workers_on_a_unix_socket_answer_past_passed_descriptors);
    return test_summary();
}
