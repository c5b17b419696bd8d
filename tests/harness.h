/* harness.h - the smallest test harness that does the job.
   TEST(name) { CHECK(cond); ... }  then RUN(name) in main, and return test_summary().
   Prints "PASS name" / "FAIL name" per test and ends with "N passed, N failed". */
#ifndef MW_TEST_HARNESS_H
#define MW_TEST_HARNESS_H
#include <stdio.h>
#include <string.h>
#include <time.h>

static int test_passed, test_failed, test_checks_failed;

/* Milliseconds on the clock microweb's deadlines and timers read: a coarse one, up to a
   tick (4 ms at HZ=250) behind the precise one, so a delay or a timer measured on the
   precise clock can look a few ms short. */
static inline long long test_engine_clock_ms(void) {
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define TEST(name) static void name(void)

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            test_checks_failed++;                                            \
            printf("  check failed %s:%d: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                    \
    } while (0)

#define CHECK_INT(got, want)                                                                           \
    do {                                                                                               \
        long long g_ = (long long)(got), w_ = (long long)(want);                                       \
        if (g_ != w_) {                                                                                \
            test_checks_failed++;                                                                      \
            printf("  check failed %s:%d: %s is %lld, want %lld\n", __FILE__, __LINE__, #got, g_, w_); \
        }                                                                                              \
    } while (0)

#define CHECK_MEM(got, got_len, want)                                                                               \
    do {                                                                                                            \
        size_t wl_ = strlen(want);                                                                                  \
        if ((size_t)(got_len) != wl_ || memcmp((got), (want), wl_) != 0) {                                          \
            test_checks_failed++;                                                                                   \
            printf("  check failed %s:%d: %s is \"%.*s\", want \"%s\"\n", __FILE__, __LINE__, #got, (int)(got_len), \
                   (const char *)(got), (want));                                                                    \
        }                                                                                                           \
    } while (0)

#define CHECK_STR(got, want)                                            \
    do {                                                                \
        const char *gs_ = (got);                                        \
        CHECK_MEM(gs_ ? gs_ : "(null)", gs_ ? strlen(gs_) : 6, (want)); \
    } while (0)

#define RUN(name)                            \
    do {                                     \
        int before_ = test_checks_failed;    \
        name();                              \
        if (test_checks_failed == before_) { \
            test_passed++;                   \
            printf("PASS %s\n", #name);      \
        } else {                             \
            test_failed++;                   \
            printf("FAIL %s\n", #name);      \
        }                                    \
    } while (0)

static int test_summary(void) {
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}
#endif
