/* fuzz_request.c - the request parser and the chunked decoder.
   Besides "no crash, no over-read", it checks that the head scan gives the same
   answer whether the bytes arrive at once or in two pieces. */
#define MICROWEB_IMPLEMENTATION
#include "../../microweb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static long scan(const char *buf, size_t len, size_t split, const mw__limits *lim) {
    mw__head_scan s;
    long r = 0;
    memset(&s, 0, sizeof s);
    if (split && split < len) r = mw__scan_head(&s, buf, split, lim);
    return r ? r : mw__scan_head(&s, buf, len, lim);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static mw__head h; /* large: kept off the stack */
    mw__limits lim;
    const char *buf = (const char *)data;
    long whole, n;
    char *body;
    mw__limits_default(&lim);
    lim.v[MW_LIMIT_BODY_BYTES] = 65536;
    whole = scan(buf, size, 0, &lim);
    n = scan(buf, size, size ? data[0] % size : 0, &lim);
    if (n != whole) __builtin_trap(); /* resumed scan disagrees with one-shot scan */
    if (whole <= 0 || mw__parse_head(buf, (size_t)whole, &lim, &h) != 0 || !h.chunked) return 0;
    /* decode what follows the head, in place, in two calls */
    body = (char *)malloc(size - (size_t)whole + 1);
    if (body) {
        mw__chunked d;
        size_t len = size - (size_t)whole, in = 0, out = 0, half = len / 2;
        memcpy(body, buf + whole, len);
        memset(&d, 0, sizeof d);
        if (mw__chunked_decode(&d, body, half, &in, &out, 0, &lim) == 0)
            mw__chunked_decode(&d, body, len, &in, &out, 0, &lim);
        if (out > in || in > len || out > 65536) __builtin_trap();
        free(body);
    }
    return 0;
}
