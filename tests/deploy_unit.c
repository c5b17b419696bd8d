/* deploy_unit.c - deploying, in one process: liveness and readiness through the test
   client, SO_REUSEPORT set with mw_set_limit, mw_listen_fd on what is and is not a
   listening socket, and the drain delay set with mw_set_limit. tests/deploy.py and
   tests/restart_zero.py run the same over several processes. */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static const char *warming_up(mw_req *rq, void *arg) {
    (void)rq;
    return *(const int *)arg ? NULL : "warming up";
}

static const char *always_ready(mw_req *rq, void *arg) {
    (void)rq;
    (void)arg;
    return NULL;
}

static mw_app *health_app(int *warm) {
    mw_app *app = mw_app_new();
    mw_health(app, "/livez", "/readyz");
    mw_ready_check(app, always_ready, NULL);
    mw_ready_check(app, warming_up, warm);
    return app;
}

TEST(livez_and_readyz_answer_200_with_json) {
    int warm = 1;
    mw_app *app = health_app(&warm);
    mw_test_res *r = mw_test_request(app, "GET", "/livez", NULL, NULL, 0);
    CHECK_INT(r->status, 200);
    CHECK_MEM(r->body, r->body_len, "{\"status\":\"alive\"}");
    CHECK_STR(mw_test_header(r, "Cache-Control"), "no-store");
    mw_test_free(r);
    r = mw_test_request(app, "GET", "/readyz", NULL, NULL, 0);
    CHECK_INT(r->status, 200);
    CHECK_MEM(r->body, r->body_len, "{\"status\":\"ready\"}");
    mw_test_free(r);
    r = mw_test_request(app, "HEAD", "/readyz", NULL, NULL, 0);
    CHECK_INT(r->status, 200);
    CHECK_INT(r->body_len, 0);
    mw_test_free(r);
    mw_app_free(app);
}

TEST(a_failing_ready_check_makes_readyz_503_with_its_reason_and_livez_stays_200) {
    int warm = 0;
    mw_app *app = health_app(&warm);
    mw_test_res *r = mw_test_request(app, "GET", "/readyz", NULL, NULL, 0);
    CHECK_INT(r->status, 503);
    CHECK(r->body_len && strstr(r->body, "\"detail\":\"warming up\"") != NULL);
    CHECK_STR(mw_test_header(r, "Retry-After"), "1");
    mw_test_free(r);
    r = mw_test_request(app, "GET", "/livez", NULL, NULL, 0);
    CHECK_INT(r->status, 200);
    mw_test_free(r);
    warm = 1;
    r = mw_test_request(app, "GET", "/readyz", NULL, NULL, 0);
    CHECK_INT(r->status, 200);
    mw_test_free(r);
    mw_app_free(app);
}

TEST(health_paths_are_optional_and_ready_checks_are_bounded) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    int i;
    CHECK_INT(mw_health(app, NULL, "/ready"), 0);
    CHECK_INT(mw_health(app, NULL, "/ready"), MW_EEXIST); /* a duplicate route, as ever */
    r = mw_test_request(app, "GET", "/livez", NULL, NULL, 0);
    CHECK_INT(r->status, 404);
    mw_test_free(r);
    CHECK_INT(mw_ready_check(app, NULL, NULL), MW_EINVAL);
    for (i = 0; i < 8; i++) CHECK_INT(mw_ready_check(app, always_ready, NULL), 0);
    CHECK_INT(mw_ready_check(app, always_ready, NULL), MW_ETOOBIG);
    mw_app_free(app);
}

TEST(reuseport_limit_lets_two_apps_listen_on_one_port) {
    mw_app *a = mw_app_new(), *b = mw_app_new(), *c = mw_app_new();
    int port;
    CHECK_INT(mw_get_limit(a, MW_LIMIT_REUSEPORT), 0);
    CHECK_INT(mw_set_limit(a, MW_LIMIT_REUSEPORT, 2), MW_EINVAL);
    CHECK_INT(mw_set_limit(a, MW_LIMIT_REUSEPORT, 1), 0);
    CHECK_INT(mw_set_limit(b, MW_LIMIT_REUSEPORT, 1), 0);
    port = mw_listen(a, "127.0.0.1", 0);
    CHECK(port > 0);
    CHECK_INT(mw_listen(b, "127.0.0.1", port), port);
    CHECK_INT(mw_listen(c, "127.0.0.1", port), MW_EIO); /* without the option: the port is taken */
    mw_app_free(a);
    mw_app_free(b);
    mw_app_free(c);
}

static int listening_socket(int *port) {
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    *port = ntohs(sa.sin_port);
    return fd;
}

TEST(listen_fd_takes_a_listening_socket_and_refuses_anything_else) {
    mw_app *app = mw_app_new();
    int pipe_fds[2], port = 0, fd = listening_socket(&port), plain = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0 && plain >= 0 && pipe(pipe_fds) == 0);
    CHECK_INT(mw_listen_fd(app, pipe_fds[0]), MW_EINVAL);
    CHECK_INT(mw_listen_fd(app, plain), MW_EINVAL); /* a socket, not listening */
    CHECK_INT(mw_listen_fd(app, -1), MW_EINVAL);
    CHECK_INT(mw_listen_fd(app, fd), port);
    CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    CHECK_INT(mw_listen_fd(app, fd), MW_ESTATE); /* one listener per app */
    mw_app_free(app);                            /* the app owns it now: closed */
    CHECK_INT(fcntl(fd, F_GETFD), -1);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    close(plain);
}

static void *serve(void *app) { return (void *)(long)mw_serve((mw_app *)app); }

TEST(drain_delay_limit_holds_the_stop_that_long) {
    mw_app *app = mw_app_new();
    pthread_t t;
    long long started;
    CHECK_INT(mw_set_limit(app, MW_LIMIT_DRAIN_DELAY_MS, 300), 0);
    CHECK(mw_listen(app, "127.0.0.1", 0) > 0);
    started = test_engine_clock_ms();
    CHECK_INT(pthread_create(&t, NULL, serve, app), 0);
    mw_stop(app); /* whether serving has begun or not: the delay is known from mw_listen on */
    pthread_join(t, NULL);
    CHECK(test_engine_clock_ms() - started >= 300);
    CHECK_INT(mw_set_limit(app, MW_LIMIT_DRAIN_DELAY_MS, -1), MW_EINVAL);
    mw_app_free(app);
}

int main(void) {
    RUN(livez_and_readyz_answer_200_with_json);
    RUN(a_failing_ready_check_makes_readyz_503_with_its_reason_and_livez_stays_200);
    RUN(health_paths_are_optional_and_ready_checks_are_bounded);
    RUN(reuseport_limit_lets_two_apps_listen_on_one_port);
    RUN(listen_fd_takes_a_listening_socket_and_refuses_anything_else);
    RUN(drain_delay_limit_holds_the_stop_that_long);
    return test_summary();
}
