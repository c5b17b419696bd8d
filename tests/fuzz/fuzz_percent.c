/* fuzz_percent.c - percent-decoding: in place and into another buffer agree, the
   output is never longer than the input, and "%00" never decodes to a NUL (a raw
   NUL in the input is copied: the HTTP parser refuses those before decoding). */
#define MICROWEB_IMPLEMENTATION
#include "../../microweb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *out = (char *)malloc(size + 1), *inplace = (char *)malloc(size + 1);
    int plus = size && (data[0] & 1);
    long a, b;
    if (!out || !inplace) abort();
    memcpy(inplace, data, size);
    a = mw__percent_decode((const char *)data, size, out, plus);
    b = mw__percent_decode(inplace, size, inplace, plus);
    if (a != b || a > (long)size) __builtin_trap();
    if (a > 0 && memcmp(out, inplace, (size_t)a) != 0) __builtin_trap();
    if (a > 0 && !memchr(data, '\0', size) && memchr(out, '\0', (size_t)a)) __builtin_trap();
    free(out);
    free(inplace);
    return 0;
}
