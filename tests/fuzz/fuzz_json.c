/* fuzz_json.c - the JSON writer driven by a byte-coded sequence of calls. Whenever
   mw_json_end reports success, the output must be exactly one valid RFC 8259 text
   in valid UTF-8 (checked by the strict validator below) that the JSON reader
   accepts; once any call fails, end must fail too (errors are sticky, so broken JSON
   is never called finished). */
#define MICROWEB_IMPLEMENTATION
#include "../../microweb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *value(const char *p, const char *e, int depth);

static const char *ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* One UTF-8 sequence (RFC 3629): no overlongs, no surrogates, nothing past U+10FFFF. */
static const char *utf8(const char *p, const char *e) {
    unsigned char c = (unsigned char)*p;
    unsigned cp, min, n, k;
    if (c < 0x80) return p + 1;
    if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1fu, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0fu, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07u, min = 0x10000;
    else return NULL;
    if (e - p < (long)n) return NULL;
    for (k = 1; k < n; k++) {
        if (((unsigned char)p[k] & 0xc0) != 0x80) return NULL;
        cp = (cp << 6) | ((unsigned char)p[k] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return NULL;
    return p + n;
}

static const char *string(const char *p, const char *e) {
    if (p >= e || *p++ != '"') return NULL;
    while (p < e && *p != '"') {
        if ((unsigned char)*p < 0x20) return NULL;
        if (*p == '\\') {
            if (++p >= e) return NULL;
            if (*p == 'u') {
                int k;
                for (k = 1; k <= 4; k++)
                    if (p + k >= e || mw__hex_value((unsigned char)p[k]) < 0) return NULL;
                p += 5;
            } else if (strchr("\"\\/bfnrt", *p) && *p) {
                p++;
            } else {
                return NULL;
            }
        } else if (!(p = utf8(p, e))) {
            return NULL;
        }
    }
    return p < e ? p + 1 : NULL;
}

static const char *digits(const char *p, const char *e) {
    const char *s = p;
    while (p < e && *p >= '0' && *p <= '9') p++;
    return p > s ? p : NULL;
}

static const char *number(const char *p, const char *e) {
    if (p < e && *p == '-') p++;
    if (p < e && *p == '0') p++;
    else if (!(p < e && *p >= '1' && *p <= '9') || !(p = digits(p, e))) return NULL;
    if (p < e && *p == '.' && !(p = digits(p + 1, e))) return NULL;
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (!(p = digits(p, e))) return NULL;
    }
    return p;
}

static const char *literal(const char *p, const char *e, const char *word) {
    size_t n = strlen(word);
    return (size_t)(e - p) >= n && memcmp(p, word, n) == 0 ? p + n : NULL;
}

static const char *container(const char *p, const char *e, int depth, int object) {
    char close = object ? '}' : ']';
    p = ws(p + 1, e);
    if (p < e && *p == close) return p + 1;
    for (;;) {
        if (object) {
            if (!(p = string(p, e))) return NULL;
            p = ws(p, e);
            if (p >= e || *p++ != ':') return NULL;
        }
        if (!(p = value(p, e, depth + 1))) return NULL;
        p = ws(p, e);
        if (p < e && *p == ',') {
            p = ws(p + 1, e);
            continue;
        }
        return p < e && *p == close ? p + 1 : NULL;
    }
}

static const char *value(const char *p, const char *e, int depth) {
    p = ws(p, e);
    if (p >= e || depth > 1000) return NULL;
    switch (*p) {
    case '{': return container(p, e, depth, 1);
    case '[': return container(p, e, depth, 0);
    case '"': return string(p, e);
    case 't': return literal(p, e, "true");
    case 'f': return literal(p, e, "false");
    case 'n': return literal(p, e, "null");
    default: return number(p, e);
    }
}

static int valid_json(const char *p, size_t n) {
    const char *end = value(p, p + n, 0);
    return end && ws(end, p + n) == p + n;
}

static int reader_accepts(const char *p, size_t n) {
    mw_jv_doc *d = mw_jv_parse(p, n, NULL, NULL);
    mw_jv_free(d);
    return d != NULL;
}

/* Takes a length byte and that many bytes (or what is left) as a string argument. */
static size_t take(const uint8_t *d, size_t size, size_t *i, char *out) {
    size_t n = *i < size ? d[(*i)++] : 0;
    if (n > size - *i) n = size - *i;
    memcpy(out, d + *i, n);
    out[n] = '\0';
    *i += n;
    return n;
}

/* Fills a number's bytes from the input (zeros past its end). */
static void take_bytes(const uint8_t *d, size_t size, size_t *i, void *out, size_t len) {
    size_t n = size - *i < len ? size - *i : len;
    memcpy(out, d + *i, n);
    *i += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mw__buf out;
    mw_json j;
    char s[256];
    size_t i = 0;
    int failed = 0, rc;
    memset(&out, 0, sizeof out);
    mw__json_init(&j, &out);
    while (i < size) {
        uint8_t op = data[i++];
        int64_t iv = 0;
        double dv = 0;
        size_t n;
        switch (op % 12) {
        case 0: rc = mw_json_object(&j); break;
        case 1: rc = mw_json_array(&j); break;
        case 2: rc = mw_json_close(&j); break;
        case 3:
            take(data, size, &i, s);
            rc = mw_json_key(&j, s);
            break;
        case 4:
            n = take(data, size, &i, s);
            rc = mw_json_stringn(&j, s, n);
            break;
        case 5:
            take_bytes(data, size, &i, &iv, sizeof iv);
            rc = mw_json_int(&j, iv);
            break;
        case 6:
            take_bytes(data, size, &i, &dv, sizeof dv);
            rc = mw_json_double(&j, dv);
            break;
        case 7: rc = mw_json_bool(&j, op & 0x80); break;
        case 8: rc = mw_json_null(&j); break;
        case 9:
            take(data, size, &i, s);
            rc = mw_json_key_string(&j, s, s);
            break;
        case 10:
            take(data, size, &i, s);
            rc = mw_json_key_int(&j, s, (int64_t)op << 40);
            break;
        default: rc = mw_json_string(&j, NULL); break;
        }
        failed |= rc != 0;
    }
    rc = mw_json_end(&j);
    if (failed && rc == 0) __builtin_trap();                             /* an error was forgotten */
    if (rc == 0 && !valid_json(out.data, out.len)) __builtin_trap();     /* success means valid JSON */
    if (rc == 0 && !reader_accepts(out.data, out.len)) __builtin_trap(); /* which the reader reads */
    mw__buf_free(&out);
    return 0;
}
