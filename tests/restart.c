/* restart.c - the server started and stopped 200 times in one process. Each round
   serves a request and leaves a keep-alive connection open, so the stop has an idle
   connection to close. Afterwards no descriptor is left open (counted in
   /proc/self/fd) and, under LeakSanitizer, nothing is leaked. */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include <dirent.h>

#include "harness.h"

static void hello(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "Hello, World!");
}

static void *serve(void *app) {
    mw_serve((mw_app *)app);
    return NULL;
}

static int open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

/* Connects, sends one request, and returns the socket once the answer is read (or -1). */
static int request_keep_open(int port) {
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    struct sockaddr_in a;
    char buf[512];
    size_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 || send(fd, req, sizeof req - 1, 0) < 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    while (got < sizeof buf - 1) {
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n <= 0) break;
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "Hello, World!")) return fd;
    }
    close(fd);
    return -1;
}

/* The client sees the server close its idle connection during the stop. */
static int closed_by_server(int fd) {
    char c;
    ssize_t n = recv(fd, &c, 1, 0);
    close(fd);
    return n == 0;
}

TEST(start_stop_200_times_leaves_no_descriptor) {
    int before = open_fds(), round, served = 0, closed = 0;
    for (round = 0; round < 200; round++) {
        mw_app *app = mw_app_new();
        pthread_t t;
        int port, fd;
        mw_set_limit(app, MW_LIMIT_THREADS, 2);
        mw_get(app, "/", hello);
        port = mw_listen(app, "127.0.0.1", 0);
        if (port <= 0 || pthread_create(&t, NULL, serve, app) != 0) {
            printf("  round %d: could not start (port %d)\n", round, port);
            mw_app_free(app);
            break;
        }
        fd = request_keep_open(port);
        served += fd >= 0;
        mw_stop(app);
        pthread_join(t, NULL);
        mw_app_free(app);
        if (fd >= 0) closed += closed_by_server(fd);
    }
    CHECK_INT(served, 200);
    CHECK_INT(closed, 200);
    CHECK_INT(open_fds(), before);
}

TEST(stop_before_serve_returns_promptly) {
    mw_app *app = mw_app_new();
    int before = open_fds();
    mw_get(app, "/", hello);
    CHECK(mw_listen(app, "127.0.0.1", 0) > 0);
    mw_stop(app);
    CHECK_INT(mw_serve(app), 0);
    mw_app_free(app);
    CHECK_INT(open_fds(), before);
}

int main(void) {
    RUN(start_stop_200_times_leaves_no_descriptor);
    RUN(stop_before_serve_returns_promptly);
    return test_summary();
}
