/* fuzz_route.c - route registration and matching with parameter decoding.
   Input: a pattern line, then a method byte, then the request path. */
#define MICROWEB_IMPLEMENTATION
#include "../../microweb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void h1(mw_req *rq, mw_res *rs) { (void)rq, (void)rs; }
static void h2(mw_req *rq, mw_res *rs) { (void)rq, (void)rs; }

static const char *const fixed[] = {"/",          "/users/:id", "/users/new",   "/files/*path",
                                    "/a/:b/c/:d", "/a/b/x",     "/items/:a/:b", "/x/"};

/* A route for the trie (an app would own it). */
static mw__route *route(mw__route *r, int slot, const char *pattern, mw_handler h) {
    memset(r, 0, sizeof *r);
    r->slot = slot;
    r->pattern = (char *)(uintptr_t)pattern;
    r->handler = h;
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mw__route routes[sizeof fixed / sizeof fixed[0] + 1];
    const char *nl = (const char *)memchr(data, '\n', size);
    mw__node root;
    mw__match m;
    char pattern[256], scratch[4096];
    mw__route_error why;
    size_t i, plen;
    memset(&root, 0, sizeof root);
    for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        mw__router_add(&root, route(&routes[i], (int)(i % MW__M_SLOTS), fixed[i], h1), &why);
    if (nl && (plen = (size_t)(nl - (const char *)data)) < sizeof pattern && plen + 1 < size) {
        const char *path = nl + 2;
        size_t path_len = size - plen - 2;
        memcpy(pattern, data, plen);
        pattern[plen] = '\0';
        if (strlen(pattern) == plen)
            mw__router_add(&root, route(&routes[i], (unsigned char)nl[1] % MW__M_SLOTS, pattern, h2), &why);
        if (mw__router_match(&root, (unsigned char)nl[1] % MW__M_SLOTS, path, path_len, &m)) {
            if (m.nparams > MW_MAX_PARAMS || !m.route || !m.route->handler) __builtin_trap();
            for (i = 0; i < m.nparams; i++) {
                if (m.values[i] < path || m.values[i] + m.lens[i] > path + path_len) __builtin_trap();
                if (m.lens[i] < sizeof scratch) mw__percent_decode(m.values[i], m.lens[i], scratch, 0);
            }
        }
    }
    mw__node_clear(&root);
    return 0;
}
