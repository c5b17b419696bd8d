/* ws_client.c - the load generator of bench/ws.py: many WebSocket connections in one
   epoll loop, masked frames (RFC 6455 §5.3), every message checked byte for byte.

   usage: ws_client PORT PATH CONNECTIONS SIZE MODE
       MODE echo        each connection keeps one binary message of SIZE bytes in flight:
                        it sends the next when the echo of the last one is back
       MODE broadcast   connection 0 sends a message of SIZE bytes whenever fewer than
                        BROADCAST_WINDOW of its broadcasts are still on their way; every
                        connection (0 too) must receive each one, in order
       MODE idle        the connections are opened and held; nothing is sent
   Opens CONNECTIONS WebSockets to ws://127.0.0.1:PORT/PATH (at most OPENING_AT_ONCE
   handshakes under way at a time) and prints one JSON line
   {"ready":N,"failed":N,"seconds":S,"error":"..."} once each is open or has failed.
   Then it reads commands on stdin, one a line:
       measure SECONDS   runs the load for SECONDS, then waits for the messages still
                         on their way (at most DRAIN_TIMEOUT_S); prints one JSON line
       count             prints {"open":N}: the connections the server has not closed
       quit (or the end of stdin) closes everything and exits.
   A message is 16 bytes of header (the sending connection's index and the message's
   sequence number, 64-bit little-endian each) and then bytes of a fixed random
   pattern at an offset that depends on the sequence number: an answer with the wrong
   bytes, a message of another connection, or one out of order counts as bad. The
   servers answer with unmasked frames; a ping is answered with a pong. Linux (epoll). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define OPENING_AT_ONCE 256
#define OPEN_TIMEOUT_S 120
#define DRAIN_TIMEOUT_S 10
#define BROADCAST_WINDOW 8 /* broadcasts on their way at once (a power of two) */
#define HEADER_BYTES 16
#define PATTERN_SHIFTS 251 /* the pattern's offset is the sequence number modulo this */
#define STDIN_TAG UINT64_MAX
/* RFC 6455 §1.3's sample key and its Sec-WebSocket-Accept: every connection sends it */
#define CLIENT_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT_VALUE "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

enum { MODE_ECHO, MODE_BROADCAST, MODE_IDLE };
enum { CONNECTING, HANDSHAKING, OPEN, CLOSED };

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *checked(void *p) {
    if (!p) {
        fprintf(stderr, "ws_client: out of memory\n");
        exit(2);
    }
    return p;
}

/* ---- latency samples ---- */

typedef struct samples {
    long long *v; /* ns */
    size_t n, cap;
} samples;

static void samples_add(samples *s, long long x) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 65536;
        s->v = (long long *)checked(realloc(s->v, s->cap * sizeof *s->v));
    }
    s->v[s->n++] = x;
}

static int compare_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile q (0..1] in µs of sorted samples; -1 when there are none. */
static double percentile_us(const samples *s, double q) {
    size_t rank;
    if (!s->n) return -1;
    rank = (size_t)(q * (double)s->n + 0.999999);
    return (double)s->v[(rank ? rank : 1) - 1] / 1000.0;
}

/* Prints "name":{"count":N,"p50_us":..,"p99_us":..,"max_us":..} (sorts the samples). */
static void print_latency(const char *name, samples *s) {
    qsort(s->v, s->n, sizeof *s->v, compare_ll);
    printf("\"%s\":{\"count\":%zu,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}", name, s->n, percentile_us(s, 0.5),
           percentile_us(s, 0.99), percentile_us(s, 1.0));
}

/* ---- messages ---- */

static unsigned char *pattern; /* size + PATTERN_SHIFTS random bytes */
static size_t size;

static void put64(unsigned char *p, uint64_t v) {
    int i;
    for (i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p) {
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static const unsigned char *pattern_for(uint64_t seq) { return pattern + seq % PATTERN_SHIFTS; }

/* 1 when payload is message seq of connection `from`. */
static int message_is(const unsigned char *payload, size_t len, uint64_t from, uint64_t seq) {
    return len == size && get64(payload) == from && get64(payload + 8) == seq &&
           memcmp(payload + HEADER_BYTES, pattern_for(seq) + HEADER_BYTES, size - HEADER_BYTES) == 0;
}

static uint32_t xorshift32(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

/* ---- one connection ---- */

typedef struct conn {
    int fd, state;
    uint32_t rng;               /* mask keys */
    unsigned char *rbuf, *wbuf; /* received, not yet parsed; to send */
    size_t rlen, rcap, wlen, woff, wcap;
    uint64_t sent_seq, next_seq; /* echo: next to send; both: next expected */
    long long sent_at;           /* echo: when the message in flight went */
    int in_flight;               /* echo: a message is out */
    int want_out;                /* EPOLLOUT is watched */
} conn;

static int epfd, port, count, mode;
static const char *path;
static conn *conns;

typedef struct window {
    int open;
    long long end_ns;
    long long messages, bad, closed;
    samples latency, fanout;
    /* broadcast: the sender's state */
    uint64_t bc_sent, bc_done;
    long long bc_at[BROADCAST_WINDOW];
    int bc_got[BROADCAST_WINDOW];
} window;

static window win;
static long long open_now;

static void watch(conn *c, int want_out) {
    struct epoll_event ev;
    c->want_out = want_out;
    ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0u);
    ev.data.u64 = (uint64_t)(c - conns);
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_closed(conn *c) {
    if (c->state == OPEN) {
        open_now--;
        if (win.open) win.closed++;
    }
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = CLOSED;
    c->in_flight = 0;
}

/* Sends what is queued; the rest waits for EPOLLOUT. -1 when the connection failed. */
static int flush_out(conn *c) {
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) watch(c, 1);
            return 0;
        }
        if (n <= 0) return -1;
        c->woff += (size_t)n;
    }
    c->woff = c->wlen = 0;
    if (c->want_out) watch(c, 0);
    return 0;
}

static unsigned char *reserve_out(conn *c, size_t n) {
    if (c->wlen + n > c->wcap) {
        c->wcap = (c->wlen + n) * 2;
        c->wbuf = (unsigned char *)checked(realloc(c->wbuf, c->wcap));
    }
    c->wlen += n;
    return c->wbuf + c->wlen - n;
}

/* Queues a masked frame (RFC 6455 §5.2: a client masks every frame, with a fresh key). */
static void queue_frame(conn *c, int opcode, const unsigned char *payload, size_t len) {
    size_t head = len < 126 ? 2 : len < 65536 ? 4 : 10, i;
    unsigned char *p = reserve_out(c, head + 4 + len), key[4];
    uint32_t k = xorshift32(&c->rng);
    p[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        p[1] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        p[1] = 0x80 | 126;
        p[2] = (unsigned char)(len >> 8);
        p[3] = (unsigned char)len;
    } else {
        p[1] = 0x80 | 127;
        for (i = 0; i < 8; i++) p[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    }
    memcpy(key, &k, 4);
    memcpy(p + head, key, 4);
    p += head + 4;
    for (i = 0; i + 8 <= len; i += 8) { /* eight bytes at a time: the key repeats every four */
        uint64_t word, mask;
        unsigned char m8[8] = {key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
        memcpy(&mask, m8, 8);
        memcpy(&word, payload + i, 8);
        word ^= mask;
        memcpy(p + i, &word, 8);
    }
    for (; i < len; i++) p[i] = payload[i] ^ key[i & 3];
}

static unsigned char *scratch; /* a message before masking */

static int send_message(conn *c, uint64_t from, uint64_t seq) {
    put64(scratch, from);
    put64(scratch + 8, seq);
    memcpy(scratch + HEADER_BYTES, pattern_for(seq) + HEADER_BYTES, size - HEADER_BYTES);
    queue_frame(c, 2, scratch, size);
    return flush_out(c);
}

/* ---- the load ---- */

static int echo_send(conn *c) {
    c->in_flight = 1;
    c->sent_at = now_ns();
    return send_message(c, (uint64_t)(c - conns), c->sent_seq++);
}

static int broadcast_send(void) {
    uint64_t seq = win.bc_sent++;
    win.bc_at[seq % BROADCAST_WINDOW] = now_ns();
    win.bc_got[seq % BROADCAST_WINDOW] = 0;
    return send_message(&conns[0], 0, seq);
}

/* Broadcasts while fewer than BROADCAST_WINDOW are on their way and the window is open. */
static int broadcast_more(void) {
    while (conns[0].state == OPEN && win.bc_sent - win.bc_done < BROADCAST_WINDOW && now_ns() < win.end_ns)
        if (broadcast_send() != 0) return -1;
    return 0;
}

static void take_echo(conn *c, const unsigned char *payload, size_t len, long long arrived) {
    if (!c->in_flight || !message_is(payload, len, (uint64_t)(c - conns), c->next_seq)) {
        win.bad++;
        return;
    }
    c->next_seq++;
    c->in_flight = 0;
    win.messages++;
    samples_add(&win.latency, arrived - c->sent_at);
    if (arrived < win.end_ns && echo_send(c) != 0) conn_closed(c);
}

/* The broadcasts complete in order: each connection gets them in the order sent. */
static void take_broadcast(conn *c, const unsigned char *payload, size_t len, long long arrived) {
    uint64_t seq = c->next_seq;
    if (!win.open || seq >= win.bc_sent || !message_is(payload, len, 0, seq)) {
        win.bad++;
        return;
    }
    c->next_seq++;
    win.messages++;
    samples_add(&win.latency, arrived - win.bc_at[seq % BROADCAST_WINDOW]);
    if (++win.bc_got[seq % BROADCAST_WINDOW] == open_now) {
        samples_add(&win.fanout, arrived - win.bc_at[seq % BROADCAST_WINDOW]);
        win.bc_done = seq + 1;
        if (broadcast_more() != 0) conn_closed(&conns[0]);
    }
}

/* One frame from the server: data, ping (answered), close (the connection is over). */
static int take_frame(conn *c, int opcode, const unsigned char *payload, size_t len, long long arrived) {
    if (opcode == 9) {
        queue_frame(c, 10, payload, len);
        return flush_out(c);
    }
    if (opcode == 8) return -1;
    if (opcode == 10) return 0;
    if (opcode != 2 || !win.open) {
        win.bad++;
        return 0;
    }
    if (mode == MODE_ECHO) take_echo(c, payload, len, arrived);
    else take_broadcast(c, payload, len, arrived);
    return c->state == OPEN ? 0 : -1;
}

/* Frames out of rbuf (RFC 6455 §5.2; the server's are unmasked and not fragmented). */
static int take_frames(conn *c, long long arrived) {
    size_t at = 0;
    while (c->rlen - at >= 2) {
        unsigned char *p = c->rbuf + at;
        uint64_t len = p[1] & 0x7f;
        size_t head = 2;
        if (len == 126) {
            head = 4;
            if (c->rlen - at < head) break;
            len = (uint64_t)p[2] << 8 | p[3];
        } else if (len == 127) {
            int i;
            head = 10;
            if (c->rlen - at < head) break;
            for (len = 0, i = 0; i < 8; i++) len = len << 8 | p[2 + i];
        }
        if ((p[1] & 0x80) || !(p[0] & 0x80) || len > size + 125) return -1; /* masked, fragmented, huge */
        if (c->rlen - at < head + len) break;
        if (take_frame(c, p[0] & 0x0f, p + head, (size_t)len, arrived) != 0) return -1;
        at += head + (size_t)len;
    }
    memmove(c->rbuf, c->rbuf + at, c->rlen - at);
    c->rlen -= at;
    return 0;
}

/* The 101 answer: status and Sec-WebSocket-Accept (RFC 6455 §4.1). Returns the head's
   length, 0 when it is not complete, -1 when it is wrong. */
static long take_handshake(conn *c) {
    char *end, *accept;
    if (c->rlen == c->rcap) return -1;
    c->rbuf[c->rlen] = 0;
    if (!(end = strstr((char *)c->rbuf, "\r\n\r\n"))) return 0;
    accept = strcasestr((char *)c->rbuf, "\r\nsec-websocket-accept:");
    if (strncmp((char *)c->rbuf, "HTTP/1.1 101", 12) != 0 || !accept || accept > end) return -1;
    accept += 23;
    while (*accept == ' ') accept++;
    if (strncmp(accept, ACCEPT_VALUE, sizeof ACCEPT_VALUE - 1) != 0) return -1;
    return end + 4 - (char *)c->rbuf;
}

static int conn_read(conn *c) {
    long long arrived;
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen - 1, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    if (n <= 0) return -1;
    arrived = now_ns();
    c->rlen += (size_t)n;
    if (c->state == HANDSHAKING) {
        long head = take_handshake(c);
        if (head <= 0) return (int)head;
        memmove(c->rbuf, c->rbuf + head, c->rlen - (size_t)head);
        c->rlen -= (size_t)head;
        c->state = OPEN;
        open_now++;
    }
    return take_frames(c, arrived);
}

static int send_handshake(conn *c) {
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " CLIENT_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path, port);
    memcpy(reserve_out(c, (size_t)n), req, (size_t)n);
    c->state = HANDSHAKING;
    return flush_out(c);
}

static void conn_event(conn *c, uint32_t events) {
    int err = 0;
    socklen_t len = sizeof err;
    if (c->state == CONNECTING) {
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err || send_handshake(c) != 0) {
            conn_closed(c);
        }
        return;
    }
    if ((events & EPOLLOUT) && flush_out(c) != 0) {
        conn_closed(c);
        return;
    }
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && conn_read(c) != 0) conn_closed(c);
}

/* One epoll_wait and its events. Returns 1 when stdin is readable. */
static int pump_once(int timeout_ms) {
    struct epoll_event ev[512];
    int n = epoll_wait(epfd, ev, 512, timeout_ms), i, input = 0;
    for (i = 0; i < n; i++) {
        if (ev[i].data.u64 == STDIN_TAG) input = 1;
        else if (conns[ev[i].data.u64].fd >= 0) conn_event(&conns[ev[i].data.u64], ev[i].events);
    }
    return input;
}

/* Serves the sockets until the deadline. Returns 1 (at once) when stdin is readable. */
static int pump(long long until_ns) {
    for (;;) {
        long long left = until_ns - now_ns();
        if (left <= 0) return 0;
        if (pump_once((int)(left / 1000000 + 1))) return 1;
    }
}

static int start_connect(conn *c) {
    struct sockaddr_in a;
    struct epoll_event ev;
    int one = 1;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        c->state = CLOSED;
        return -1;
    }
    c->state = CONNECTING;
    c->want_out = 1;
    ev.events = EPOLLOUT;
    ev.data.u64 = (uint64_t)(c - conns);
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

/* Every connection opened, at most OPENING_AT_ONCE handshakes at a time (a burst of
   thousands would overflow the listen backlog, and a dropped SYN costs a second). */
static void open_all(void) {
    long long start = now_ns(), deadline = start + OPEN_TIMEOUT_S * 1000000000LL;
    int next = 0, opening, i, failed = 0;
    for (;;) {
        for (opening = 0, i = 0; i < next; i++)
            opening += conns[i].state == CONNECTING || conns[i].state == HANDSHAKING;
        while (next < count && opening < OPENING_AT_ONCE) {
            if (start_connect(&conns[next++]) == 0) opening++;
        }
        if ((next == count && opening == 0) || now_ns() > deadline) break;
        pump_once(20);
    }
    for (i = 0; i < count; i++) failed += conns[i].state != OPEN;
    printf("{\"ready\":%lld,\"failed\":%d,\"seconds\":%.3f}\n", open_now, failed, (double)(now_ns() - start) / 1e9);
    fflush(stdout);
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static long long messages_on_their_way(void) {
    long long n = 0;
    int i;
    if (mode == MODE_BROADCAST) return (long long)(win.bc_sent - win.bc_done);
    for (i = 0; i < count; i++) n += conns[i].state == OPEN && conns[i].in_flight;
    return n;
}

/* Runs the load for `seconds`, then lets what is on its way arrive. */
static void measure(double seconds) {
    long long start = now_ns(), drain_end;
    double cpu = cpu_seconds();
    int i;
    free(win.latency.v);
    free(win.fanout.v);
    memset(&win, 0, sizeof win);
    win.open = 1;
    win.end_ns = start + (long long)(seconds * 1e9);
    for (i = 0; i < count; i++) conns[i].next_seq = conns[i].sent_seq = 0;
    if (mode == MODE_ECHO) {
        for (i = 0; i < count; i++)
            if (conns[i].state == OPEN && echo_send(&conns[i]) != 0) conn_closed(&conns[i]);
    } else if (mode == MODE_BROADCAST && broadcast_more() != 0) {
        conn_closed(&conns[0]);
    }
    while (pump(win.end_ns)) {} /* stdin is read only after the window */
    drain_end = now_ns() + DRAIN_TIMEOUT_S * 1000000000LL;
    while (messages_on_their_way() && now_ns() < drain_end) pump(now_ns() + 10000000LL);
    win.open = 0;
    printf("{\"seconds\":%.6f,\"messages\":%lld,\"bad\":%lld,\"closed\":%lld,\"open\":%lld,\"stuck\":%lld,"
           "\"broadcasts\":%llu,\"client_cpu_s\":%.3f,",
           (double)(now_ns() - start) / 1e9, win.messages, win.bad, win.closed, open_now, messages_on_their_way(),
           (unsigned long long)win.bc_done, cpu_seconds() - cpu);
    print_latency("latency", &win.latency);
    printf(",");
    print_latency("fanout", &win.fanout);
    printf("}\n");
    fflush(stdout);
    for (i = 0; i < count; i++) conns[i].in_flight = 0;
}

/* Reads commands until quit or the end of stdin; the sockets are served meanwhile
   (pings answered, closes seen). */
static void serve_commands(void) {
    char line[256];
    for (;;) {
        double seconds;
        while (!pump(now_ns() + 3600 * 1000000000LL)) {}
        if (!fgets(line, sizeof line, stdin) || strncmp(line, "quit", 4) == 0) return;
        if (sscanf(line, "measure %lf", &seconds) == 1 && mode != MODE_IDLE) measure(seconds);
        else if (strncmp(line, "count", 5) == 0) printf("{\"open\":%lld}\n", open_now);
        else printf("{\"error\":\"unknown command\"}\n");
        fflush(stdout);
    }
}

static void make_buffers(void) {
    uint32_t seed = 12345;
    size_t i;
    pattern = (unsigned char *)checked(malloc(size + PATTERN_SHIFTS));
    for (i = 0; i < size + PATTERN_SHIFTS; i++) pattern[i] = (unsigned char)xorshift32(&seed);
    scratch = (unsigned char *)checked(malloc(size));
    conns = (conn *)checked(calloc((size_t)(count ? count : 1), sizeof *conns));
    for (i = 0; i < (size_t)count; i++) {
        /* broadcast: room for the whole window of messages; echo and idle: one, or a 101 */
        conns[i].rcap = (mode == MODE_BROADCAST ? BROADCAST_WINDOW : 1) * (size + 14) + 4096;
        conns[i].rbuf = (unsigned char *)checked(malloc(conns[i].rcap));
        conns[i].rng = (uint32_t)(2654435761u * (i + 1));
        conns[i].fd = -1;
    }
}

int main(int argc, char **argv) {
    struct epoll_event ev;
    long parsed;
    if (argc != 6 || (port = atoi(argv[1])) <= 0 || (count = atoi(argv[3])) < 1 ||
        (parsed = atol(argv[4])) < HEADER_BYTES ||
        (mode = !strcmp(argv[5], "echo")        ? MODE_ECHO
                : !strcmp(argv[5], "broadcast") ? MODE_BROADCAST
                : !strcmp(argv[5], "idle")      ? MODE_IDLE
                                                : -1) < 0) {
        fprintf(stderr, "usage: ws_client PORT PATH CONNECTIONS SIZE echo|broadcast|idle (SIZE >= %d)\n", HEADER_BYTES);
        return 2;
    }
    path = argv[2];
    size = (size_t)parsed;
    make_buffers();
    epfd = epoll_create1(EPOLL_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.u64 = STDIN_TAG;
    epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
    open_all();
    setvbuf(stdin, NULL, _IONBF, 0); /* stdin is also watched by epoll: no bytes may hide in a buffer */
    serve_commands();
    return 0;
}
