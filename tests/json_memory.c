/* json_memory.c - what a parsed JSON document costs. Every allocation goes through
   MW_MALLOC/MW_REALLOC/MW_FREE, which keep count here of the bytes live and the most
   ever live at once: a parsed body must take at most 11 bytes per byte of text
   ("[0,0,...]" is the worst case: a 20-byte value per two bytes, and the copy of the
   text), and a worker must give back what a large body made it allocate. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static size_t live_bytes, peak_bytes; /* the tests are single-threaded (the in-process test client) */

/* Each block carries its size in front of it, so that free and realloc can count it. */
#define SIZE_HEADER 16

static void *count_block(char *p, size_t old, size_t n) {
    if (!p) return NULL;
    memcpy(p, &n, sizeof n);
    live_bytes = live_bytes - old + n;
    if (live_bytes > peak_bytes) peak_bytes = live_bytes;
    return p + SIZE_HEADER;
}
static size_t block_size(void *q) {
    size_t n = 0;
    if (q) memcpy(&n, (char *)q - SIZE_HEADER, sizeof n);
    return n;
}
static void *counting_malloc(size_t n) { return count_block((char *)malloc(n + SIZE_HEADER), 0, n); }
static void *counting_realloc(void *q, size_t n) {
    size_t old = block_size(q);
    return count_block((char *)realloc(q ? (char *)q - SIZE_HEADER : NULL, n + SIZE_HEADER), old, n);
}
static void counting_free(void *q) {
    if (!q) return;
    live_bytes -= block_size(q);
    free((char *)q - SIZE_HEADER);
}

#define MW_MALLOC(n) counting_malloc(n)
#define MW_REALLOC(p, n) counting_realloc((p), (n))
#define MW_FREE(p) counting_free(p)
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include "harness.h"

/* The documented bound: 11 bytes per byte of text, and under 1 KiB more. */
#define MOST_BYTES(n) (11 * (n) + 1024)

static size_t parse_peak, live_before_parse, live_at_next_request;
static const mw_jv *parsed;
static size_t parsed_len;

/* POST /parse: measures what mw_req_json allocates at most */
static void parse(mw_req *rq, mw_res *rs) {
    live_before_parse = peak_bytes = live_bytes;
    parsed = mw_req_json(rq);
    parse_peak = peak_bytes - live_before_parse;
    parsed_len = mw_jv_len(parsed);
    mw_text(rs, parsed ? 200 : 400, "parsed");
}

/* GET /live: how many bytes are live when the next request begins */
static void live(mw_req *rq, mw_res *rs) {
    (void)rq;
    live_at_next_request = live_bytes;
    mw_text(rs, 200, "ok");
}

static mw_app *memory_app(void) {
    mw_app *app = mw_app_new();
    mw_set_limit(app, MW_LIMIT_BODY_BYTES, 8 << 20);
    mw_post(app, "/parse", parse);
    mw_get(app, "/live", live);
    return app;
}

/* "[0,0,...,0]", padded with spaces to exactly n bytes */
static char *zeros_array(size_t n) {
    char *s = (char *)malloc(n);
    size_t i;
    memset(s, ' ', n);
    s[0] = '[';
    for (i = 1; i + 2 < n; i += 2) {
        s[i] = '0';
        s[i + 1] = ',';
    }
    s[i - 1] = ']';
    return s;
}

/* Records like an API receives, until n bytes: [{"id":..,"name":..,...},...] */
static char *records_array(size_t n, size_t *len) {
    char *s = (char *)malloc(n + 256);
    size_t i = 0, k;
    s[i++] = '[';
    for (k = 0; i < n - 200; k++)
        i += (size_t)sprintf(
            s + i,
            "%s{\"id\":%lu,\"name\":\"user %lu\",\"email\":\"user%lu@example.com\",\"active\":%s,"
            "\"tags\":[\"admin\",\"beta\"],\"score\":%lu.25,\"address\":{\"city\":\"Lyon\",\"zip\":\"69001\"}}",
            k ? "," : "", (unsigned long)k, (unsigned long)k, (unsigned long)k, k % 2 ? "true" : "false",
            (unsigned long)(k % 1000));
    s[i++] = ']';
    *len = i;
    return s;
}

static void post(mw_app *app, const char *body, size_t len) {
    mw_test_res *r = mw_test_request(app, "POST", "/parse", "Content-Type: application/json\r\n", body, len);
    mw_test_free(r);
}

TEST(a_1_mib_array_of_zeros_takes_at_most_11_bytes_per_body_byte) {
    mw_app *app = memory_app();
    size_t n = 1u << 20;
    char *body = zeros_array(n);
    post(app, body, n);
    CHECK_INT(parsed_len, n / 2 - 1);
    printf("info: [0,0,...] of %lu bytes: %lu bytes parsed, %.2f per body byte\n", (unsigned long)n,
           (unsigned long)parse_peak, (double)parse_peak / (double)n);
    CHECK(parse_peak <= MOST_BYTES(n));
    free(body);
    mw_app_free(app);
}

TEST(a_1_mib_array_of_records_takes_at_most_5_bytes_per_body_byte) {
    mw_app *app = memory_app();
    size_t n;
    char *body = records_array(1u << 20, &n);
    mw_jv_doc *d;
    post(app, body, n);
    CHECK(parsed_len > 5000);
    printf("info: records of %lu bytes: %lu bytes parsed in a request, %.2f per body byte\n", (unsigned long)n,
           (unsigned long)parse_peak, (double)parse_peak / (double)n);
    CHECK(parse_peak <= 5 * n); /* about 2.6 bytes per byte used; the block doubles while it grows */
    live_before_parse = live_bytes;
    d = mw_jv_parse(body, n, NULL, NULL);
    printf("info: records of %lu bytes: %lu bytes kept by mw_jv_parse, %.2f per body byte\n", (unsigned long)n,
           (unsigned long)(live_bytes - live_before_parse), (double)(live_bytes - live_before_parse) / (double)n);
    CHECK(d != NULL);
    CHECK(live_bytes - live_before_parse <= 3 * n);
    mw_jv_free(d);
    free(body);
    mw_app_free(app);
}

TEST(mw_jv_parse_of_a_1_mib_array_of_zeros_takes_at_most_11_bytes_per_byte) {
    size_t n = 1u << 20;
    char *text = zeros_array(n);
    mw_jv_doc *d;
    live_before_parse = peak_bytes = live_bytes;
    d = mw_jv_parse(text, n, NULL, NULL);
    CHECK_INT(mw_jv_len(mw_jv_root(d)), n / 2 - 1);
    CHECK_INT(mw_jv_int(mw_jv_at(mw_jv_root(d), n / 2 - 2), -1), 0);
    CHECK(peak_bytes - live_before_parse <= MOST_BYTES(n));
    mw_jv_free(d);
    CHECK_INT(live_bytes, live_before_parse);
    free(text);
}

/* A worker keeps a small document's memory for the next request, but not a large one's. */
TEST(a_large_parsed_body_is_given_back_before_the_next_request) {
    mw_app *app = memory_app();
    size_t n = 1u << 20, head = 200;
    char *body = zeros_array(n), *raw = (char *)malloc(n + 2 * head);
    mw_test_res *r;
    int len =
        sprintf(raw, "POST /parse HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: %lu\r\n\r\n",
                (unsigned long)n);
    memcpy(raw + len, body, n);
    len += (int)n;
    len += sprintf(raw + len, "GET /live HTTP/1.1\r\nHost: t\r\n\r\n");
    r = mw_test_raw(app, raw, (size_t)len); /* one worker answers both, in order */
    CHECK(parse_peak > 10 * n);
    CHECK(live_at_next_request <= live_before_parse + 16384);
    mw_test_free(r);
    free(raw);
    free(body);
    mw_app_free(app);
}

/* A key's length has 26 bits in a value: a longer key is refused, not cut. */
TEST(json_key_of_64_mib_is_refused_and_one_byte_less_is_read) {
    size_t n = MW__JV_MAX_KEY + 1, off = 0;
    char *text = (char *)malloc(n + 8);
    const char *problem = NULL;
    mw_jv_doc *d;
    memcpy(text, "{\"", 2);
    memset(text + 2, 'k', n);
    memcpy(text + 2 + n, "\":7}", 4);
    d = mw_jv_parse(text, n + 6, &off, &problem);
    CHECK(d == NULL);
    CHECK_STR(problem, "object key longer than 64 MiB");
    CHECK_INT(off, 1);
    memcpy(text + 1 + n, "\":7}", 4); /* the same key, one byte shorter */
    d = mw_jv_parse(text, n + 5, &off, &problem);
    CHECK(d != NULL);
    CHECK_INT(strlen(mw_jv_key(mw_jv_first(mw_jv_root(d)))), n - 1);
    text[n + 1] = '\0';
    CHECK_INT(mw_jv_int(mw_jv_get(mw_jv_root(d), text + 2), 0), 7);
    mw_jv_free(d);
    free(text);
}

/* The block is sized for the most values a text of its length can hold; a text cut
   anywhere (with containers left open) must still fit and fail for its own reason. */
static void check_prefixes_fail_for_their_own_reason(const char *text) {
    size_t n = strlen(text), prefix;
    for (prefix = 0; prefix <= n; prefix++) {
        const char *problem = NULL;
        size_t off = 0;
        mw_jv_doc *d = mw_jv_parse(text, prefix, &off, &problem);
        CHECK(d == NULL);
        if (problem && strstr(problem, "4 GiB")) {
            printf("  prefix of %lu bytes of %.20s...: %s\n", (unsigned long)prefix, text, problem);
            CHECK(0);
        }
        mw_jv_free(d);
    }
}

TEST(every_prefix_of_a_deep_document_fails_for_its_own_reason) {
    static char text[4096];
    size_t i, n = 0;
    for (i = 0; i < MW_JSON_MAX_DEPTH; i++) n += (size_t)sprintf(text + n, "[");
    sprintf(text + n, "0,0,0,0,0,0,0,0,[[[[0]]]]"); /* a value per byte, then beyond the depth limit */
    check_prefixes_fail_for_their_own_reason(text);
    for (i = 0, n = 0; i < MW_JSON_MAX_DEPTH; i++) n += (size_t)sprintf(text + n, i % 2 ? "{\"k\":" : "[");
    sprintf(text + n, "[[[[0]]]]");
    check_prefixes_fail_for_their_own_reason(text);
}

int main(void) {
    RUN(a_1_mib_array_of_zeros_takes_at_most_11_bytes_per_body_byte);
    RUN(a_1_mib_array_of_records_takes_at_most_5_bytes_per_body_byte);
    RUN(mw_jv_parse_of_a_1_mib_array_of_zeros_takes_at_most_11_bytes_per_byte);
    RUN(a_large_parsed_body_is_given_back_before_the_next_request);
    RUN(json_key_of_64_mib_is_refused_and_one_byte_less_is_read);
    RUN(every_prefix_of_a_deep_document_fails_for_its_own_reason);
    return test_summary();
}
