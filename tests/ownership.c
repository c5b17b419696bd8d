/* ownership.c - a connection is run by one worker at a time. Events reach a connection
   from the poller and from wake-ups at once; mw__conn_enter must hand it to exactly one
   of them (the others ask the runner to run again), and an event naming a connection
   that has since closed must never take the slot's next connection. Threads race here
   on one slot as workers do, for a short while, counting violations. */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include "harness.h"

#define RACE_MS 600

static mw__conn conn;
static int stop_flag, owners, two_runners, later_generation;
static long long runs;

/* Counts a run; two at once is the violation. */
static void run_once(int spin) {
    volatile int k;
    if (__atomic_add_fetch(&owners, 1, __ATOMIC_SEQ_CST) != 1) __atomic_add_fetch(&two_runners, 1, __ATOMIC_SEQ_CST);
    for (k = 0; k < spin; k++) {}
    __atomic_sub_fetch(&owners, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&runs, 1, __ATOMIC_RELAXED);
}

static int stopping(void) { return __atomic_load_n(&stop_flag, __ATOMIC_RELAXED); }

/* A worker taking events for the connection open now; it runs it again when asked. */
static void *eventer(void *arg) {
    (void)arg;
    while (!stopping()) {
        uintptr_t tag = mw__conn_tag(&conn);
        unsigned want = (unsigned)((tag >> MW__TAG_INDEX_BITS) & MW__GEN_MASK);
        if (!mw__conn_enter(&conn, tag)) continue;
        do {
            if ((__atomic_load_n(&conn.state, __ATOMIC_RELAXED) >> 2) != want)
                __atomic_add_fetch(&later_generation, 1, __ATOMIC_SEQ_CST);
            run_once(100);
        } while (!mw__conn_leave(&conn));
    }
    return NULL;
}

/* A worker that closes the connection it runs: every event naming it is stale after. */
static void *closer(void *arg) {
    (void)arg;
    while (!stopping()) {
        if (!mw__conn_enter(&conn, mw__conn_tag(&conn))) continue;
        run_once(100);
        mw__conn_retire(&conn);
    }
    return NULL;
}

static void race(void *(*kinds[])(void *), int n) {
    pthread_t t[4];
    struct timespec pause = {0, RACE_MS * 1000000L};
    int i;
    memset(&conn, 0, sizeof conn);
    stop_flag = owners = two_runners = later_generation = 0;
    runs = 0;
    for (i = 0; i < n; i++) pthread_create(&t[i], NULL, kinds[i], NULL);
    nanosleep(&pause, NULL);
    __atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
    for (i = 0; i < n; i++) pthread_join(t[i], NULL);
}

TEST(one_runner_at_a_time_with_three_workers) {
    void *(*kinds[])(void *) = {eventer, eventer, eventer};
    race(kinds, 3);
    CHECK(runs > 1000);
    CHECK_INT(two_runners, 0);
}

TEST(a_stale_event_never_takes_the_next_connection) {
    void *(*kinds[])(void *) = {closer, eventer, eventer};
    race(kinds, 3);
    CHECK(runs > 1000);
    CHECK_INT(two_runners, 0);
    CHECK_INT(later_generation, 0);
}

int main(void) {
    RUN(one_runner_at_a_time_with_three_workers);
    RUN(a_stale_event_never_takes_the_next_connection);
    return test_summary();
}
