/* sse_client.c - the client of bench/streams.py: many Server-Sent Event streams in one
   epoll loop, with the delivery latency of every event, and a paced GET / probe.

   usage: sse_client PORT STREAMS
   Opens STREAMS streams (GET /events, HTTP/1.1) to 127.0.0.1:PORT and prints one JSON
   line {"ready":N,"failed":N,"seconds":S} once every stream has its head (or failed).
   Then it reads commands on stdin, one a line:
       measure SECONDS PROBE_MS   for SECONDS, counts the events that arrive and their
                                  latency; with PROBE_MS > 0 a thread of its own also
                                  sends GET / on one keep-alive connection every PROBE_MS
                                  ms. Prints one JSON line of figures.
       quit (or the end of stdin) closes everything and exits.
   An event is "data: <sequence number> <CLOCK_MONOTONIC ns when the server sent it>";
   its latency is the arrival time (CLOCK_MONOTONIC, same machine) minus that. A gap in
   a stream's sequence numbers counts as lost events. Responses may be chunked (as every
   server here sends them) or not. Linux only (epoll). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 4096
#define LINE_MAX_BYTES 256
#define READY_TIMEOUT_S 120
#define STDIN_TAG UINT64_MAX /* epoll tag of stdin; a stream's tag is its index */

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- latency samples ---- */

typedef struct samples {
    long long *v; /* ns */
    size_t n, cap;
} samples;

static void samples_add(samples *s, long long x) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 65536;
        s->v = (long long *)realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) {
            fprintf(stderr, "sse_client: out of memory\n");
            exit(2);
        }
    }
    s->v[s->n++] = x;
}

static int compare_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile q (0..1] in µs, of sorted samples; -1 when there are none. */
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

/* ---- one event stream ---- */

enum { CHUNK_SIZE, CHUNK_EXT, CHUNK_DATA, CHUNK_DATA_END };

typedef struct stream {
    int fd;
    int head_done, chunked, chunk_state;
    unsigned long long chunk_left;
    size_t head_len, line_len;
    long long last_seq;
    long long events; /* in the current window */
    char head[HEAD_MAX];
    char line[LINE_MAX_BYTES];
} stream;

typedef struct window {
    int open;
    samples latency;
    long long events, lost, misordered;
} window;

static window win;

/* An event line "data: SEQ NS" (other fields and comments are not sent by the bench servers). */
static void take_line(stream *st, long long arrived) {
    long long seq, sent;
    if (st->line_len < 6 || memcmp(st->line, "data: ", 6) != 0) return;
    st->line[st->line_len] = 0;
    if (sscanf(st->line + 6, "%lld %lld", &seq, &sent) != 2) return;
    if (win.open) {
        if (st->last_seq && seq > st->last_seq + 1) win.lost += seq - st->last_seq - 1;
        if (st->last_seq && seq <= st->last_seq) win.misordered++;
        win.events++;
        st->events++;
        samples_add(&win.latency, arrived - sent);
    }
    st->last_seq = seq;
}

/* Body bytes after the chunk framing is taken off: split into lines. */
static void take_body(stream *st, const char *p, size_t n, long long arrived) {
    for (; n; p++, n--) {
        if (*p == '\n') {
            take_line(st, arrived);
            st->line_len = 0;
        } else if (st->line_len < LINE_MAX_BYTES - 1) {
            st->line[st->line_len++] = *p;
        }
    }
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Takes the chunked framing off (RFC 9112 §7.1). Returns -1 when the stream ended or
   the framing is broken. */
static int take_chunked(stream *st, const char *p, size_t n, long long arrived) {
    while (n) {
        if (st->chunk_state == CHUNK_DATA) {
            size_t take = st->chunk_left < n ? (size_t)st->chunk_left : n;
            take_body(st, p, take, arrived);
            p += take, n -= take;
            if ((st->chunk_left -= take) == 0) st->chunk_state = CHUNK_DATA_END;
            continue;
        }
        if (st->chunk_state == CHUNK_SIZE && hex_value(*p) >= 0) {
            st->chunk_left = st->chunk_left * 16 + (unsigned long long)hex_value(*p);
        } else if (*p == '\n') {
            if (st->chunk_state == CHUNK_DATA_END) st->chunk_state = CHUNK_SIZE;
            else if (st->chunk_left) st->chunk_state = CHUNK_DATA;
            else return -1; /* the last chunk: the server ended the stream */
        } else if (st->chunk_state == CHUNK_SIZE && (*p == ';' || *p == ' ' || *p == '\t' || *p == '\r')) {
            st->chunk_state = CHUNK_EXT;
        } else if (st->chunk_state == CHUNK_SIZE || (st->chunk_state == CHUNK_DATA_END && *p != '\r')) {
            return -1;
        }
        p++, n--;
    }
    return 0;
}

/* The response head: 200 and whether the body is chunked. Returns the head's length,
   0 when it is not complete yet, -1 when it is not a 200 or does not fit. */
static long take_head(stream *st, const char *p, size_t n) {
    size_t room = HEAD_MAX - 1 - st->head_len, take = n < room ? n : room, end;
    char *blank;
    memcpy(st->head + st->head_len, p, take);
    st->head_len += take;
    st->head[st->head_len] = 0;
    if (!(blank = strstr(st->head, "\r\n\r\n"))) return st->head_len == HEAD_MAX - 1 ? -1 : 0;
    if (strncmp(st->head, "HTTP/1.1 200", 12) != 0) return -1;
    st->head_done = 1;
    st->chunked = strcasestr(st->head, "\r\ntransfer-encoding: chunked") != NULL;
    end = (size_t)(blank + 4 - st->head);
    return (long)(end - (st->head_len - take)); /* bytes of p that were head */
}

/* Reads what the socket has. Returns -1 when the stream is over (closed, error, bad). */
static int stream_read(stream *st) {
    char buf[65536];
    for (;;) {
        ssize_t got = recv(st->fd, buf, sizeof buf, MSG_DONTWAIT);
        long long arrived = now_ns();
        const char *p = buf;
        size_t n;
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (got <= 0) return -1;
        n = (size_t)got;
        if (!st->head_done) {
            long used = take_head(st, p, n);
            if (used < 0) return -1;
            p += used, n -= (size_t)used;
        }
        if (st->head_done && n) {
            if (!st->chunked) take_body(st, p, n, arrived);
            else if (take_chunked(st, p, n, arrived) < 0) return -1;
        }
    }
}

static int connect_to(int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t sent = send(fd, p, n, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR) continue;
        if (sent <= 0) return -1;
        p += sent, n -= (size_t)sent;
    }
    return 0;
}

/* ---- the GET / probe: a request every interval, latency counted from when it was due,
   so a slow answer also counts against the requests it delayed ---- */

typedef struct probe {
    pthread_t thread;
    int port;
    long long interval_ns, until_ns;
    samples latency;
    long long errors;
    int realtime; /* it ran at a real-time priority */
} probe;

/* One GET / and its whole answer (Content-Length framed). 0, or -1 on any failure. */
static int probe_once(int fd) {
    static const char request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    char buf[4096], *blank, *length;
    size_t have = 0, need;
    if (send_all(fd, request, sizeof request - 1) != 0) return -1;
    for (;;) {
        ssize_t got = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        have += (size_t)got;
        buf[have] = 0;
        if (!(blank = strstr(buf, "\r\n\r\n"))) continue;
        if (strncmp(buf, "HTTP/1.1 200", 12) != 0) return -1;
        length = strcasestr(buf, "\r\ncontent-length:");
        need = (size_t)(blank + 4 - buf) + (length ? strtoul(length + 17, NULL, 10) : 0);
        if (have >= need) return have == need ? 0 : -1;
        if (need >= sizeof buf) return -1;
    }
}

static void *probe_run(void *arg) {
    probe *pr = (probe *)arg;
    long long due = now_ns();
    int fd = -1;
    struct sched_param rt;
    /* The stream loop shares this core and handles a burst of events at the moment the
       server is busiest; a real-time priority lets an answer be read when it arrives,
       not after the burst. Without the privilege the probe runs as it is, and says so. */
    rt.sched_priority = 1;
    pr->realtime = pthread_setschedparam(pthread_self(), SCHED_FIFO, &rt) == 0;
    while (due < pr->until_ns) {
        struct timespec ts;
        ts.tv_sec = (time_t)(due / 1000000000LL);
        ts.tv_nsec = (long)(due % 1000000000LL);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {}
        if (fd < 0) fd = connect_to(pr->port);
        if (fd >= 0 && probe_once(fd) == 0) {
            samples_add(&pr->latency, now_ns() - due);
        } else {
            pr->errors++;
            if (fd >= 0) close(fd);
            fd = -1;
        }
        due += pr->interval_ns;
    }
    if (fd >= 0) close(fd);
    return NULL;
}

/* ---- the loop ---- */

static int epfd, port, count;
static stream *streams;
static long long open_streams, closed_in_window;

static void stream_over(stream *st) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, st->fd, NULL);
    close(st->fd);
    st->fd = -1;
    open_streams--;
    if (win.open) closed_in_window++;
}

/* Waits for events until the deadline; stdin's tag is -1. Returns 1 when stdin is readable. */
static int pump(long long until_ns) {
    struct epoll_event ev[256];
    for (;;) {
        long long left = until_ns - now_ns();
        int n, i, input = 0;
        if (left <= 0) return 0;
        n = epoll_wait(epfd, ev, 256, (int)(left / 1000000 + 1));
        for (i = 0; i < n; i++) {
            if (ev[i].data.u64 == STDIN_TAG) input = 1;
            else if (streams[ev[i].data.u64].fd >= 0 && stream_read(&streams[ev[i].data.u64]) < 0)
                stream_over(&streams[ev[i].data.u64]);
        }
        if (input) return 1;
    }
}

static void open_streams_all(void) {
    static const char request[] = "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n";
    int i;
    streams = (stream *)calloc((size_t)(count ? count : 1), sizeof *streams);
    if (!streams) exit(2);
    for (i = 0; i < count; i++) {
        struct epoll_event ev;
        stream *st = &streams[i];
        st->fd = connect_to(port);
        if (st->fd < 0 || send_all(st->fd, request, sizeof request - 1) != 0) {
            if (st->fd >= 0) close(st->fd);
            st->fd = -1;
            continue;
        }
        ev.events = EPOLLIN;
        ev.data.u64 = (uint64_t)i;
        epoll_ctl(epfd, EPOLL_CTL_ADD, st->fd, &ev);
        open_streams++;
    }
}

static long long heads_done(void) {
    long long done = 0;
    int i;
    for (i = 0; i < count; i++) done += streams[i].fd >= 0 && streams[i].head_done;
    return done;
}

/* Until every open stream has its head, or the time is up. */
static void wait_ready(void) {
    long long start = now_ns(), deadline = start + READY_TIMEOUT_S * 1000000000LL;
    while (heads_done() < open_streams && now_ns() < deadline) pump(now_ns() + 100000000LL);
    printf("{\"ready\":%lld,\"failed\":%lld,\"seconds\":%.3f}\n", heads_done(), count - heads_done(),
           (double)(now_ns() - start) / 1e9);
    fflush(stdout);
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Streams of the window that got no event at all (stalled, or starved). */
static long long silent_streams(void) {
    long long silent = 0;
    int i;
    for (i = 0; i < count; i++) {
        silent += streams[i].fd >= 0 && streams[i].events == 0;
        streams[i].events = 0;
    }
    return silent;
}

static void measure(double seconds, double probe_ms) {
    long long start = now_ns(), end = start + (long long)(seconds * 1e9);
    double cpu = cpu_seconds();
    probe pr;
    memset(&pr, 0, sizeof pr);
    memset(&win, 0, sizeof win);
    closed_in_window = 0;
    win.open = 1;
    if (probe_ms > 0) {
        pr.port = port;
        pr.interval_ns = (long long)(probe_ms * 1e6);
        pr.until_ns = end;
        if (pthread_create(&pr.thread, NULL, probe_run, &pr) != 0) probe_ms = 0;
    }
    while (pump(end)) {} /* stdin is read only after the window */
    win.open = 0;
    if (probe_ms > 0) pthread_join(pr.thread, NULL);
    printf("{\"seconds\":%.3f,\"events\":%lld,\"lost\":%lld,\"misordered\":%lld,\"closed\":%lld,\"open\":%lld,"
           "\"silent\":%lld,\"client_cpu_s\":%.3f,",
           (double)(now_ns() - start) / 1e9, win.events, win.lost, win.misordered, closed_in_window, open_streams,
           silent_streams(), cpu_seconds() - cpu);
    print_latency("latency", &win.latency);
    printf(",\"probe_errors\":%lld,\"probe_realtime\":%d,", pr.errors, pr.realtime);
    print_latency("probe", &pr.latency);
    printf("}\n");
    fflush(stdout);
    free(win.latency.v);
    free(pr.latency.v);
}

/* Reads commands until quit or the end of stdin; the streams are read meanwhile, so
   events never wait in the socket buffers between windows. */
static void serve_commands(void) {
    char line[256];
    for (;;) {
        double seconds, probe_ms;
        while (!pump(now_ns() + 3600 * 1000000000LL)) {}
        if (!fgets(line, sizeof line, stdin) || strncmp(line, "quit", 4) == 0) return;
        if (sscanf(line, "measure %lf %lf", &seconds, &probe_ms) == 2) {
            measure(seconds, probe_ms);
        } else {
            printf("{\"error\":\"unknown command\"}\n");
            fflush(stdout);
        }
    }
}

int main(int argc, char **argv) {
    struct epoll_event ev;
    if (argc != 3 || (port = atoi(argv[1])) <= 0 || (count = atoi(argv[2])) < 0) {
        fprintf(stderr, "usage: sse_client PORT STREAMS\n");
        return 2;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.u64 = STDIN_TAG;
    epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
    open_streams_all();
    wait_ready();
    setvbuf(stdin, NULL, _IONBF, 0); /* stdin is also watched by epoll: no bytes may hide in a buffer */
    serve_commands();
    return 0;
}
