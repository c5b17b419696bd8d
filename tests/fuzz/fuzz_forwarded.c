/* fuzz_forwarded.c - the trusted list's entries and the forwarding fields' walk.
   Input: a byte for the hop limit, then a trusted list line (its entries are parsed
   and, when all are good, trusted besides 127.0.0.1 and 10.0.0.0/8), then header
   field lines, each a byte choosing the name (X-Forwarded-For, -Proto, -Host,
   Forwarded, Host) and the value. Each value is a block of its own exact size, so
   the sanitizers see any read past it. Besides "no crash, no over-read": the client
   is the peer or a hop, the host a valid one inside a value, the scheme -1, 0 or 1. */
#define MICROWEB_IMPLEMENTATION
#include "../../microweb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", "Host"};

/* The next line of data[*at..size) (without its '\n'). */
static mw_str next_line(const uint8_t *data, size_t size, size_t *at) {
    mw_str l;
    const uint8_t *nl = (const uint8_t *)memchr(data + *at, '\n', size - *at);
    l.ptr = (const char *)data + *at;
    l.len = nl ? (size_t)(nl - data) - *at : size - *at;
    *at += l.len + (nl != NULL);
    return l;
}

/* The trusted blocks: 127.0.0.1 and 10.0.0.0/8, then the entries of list when all parse. */
static size_t trusted_blocks(mw_str list, mw__cidr *nets, size_t max) {
    size_t n = 2, pos = 0;
    mw_str e;
    mw__cidr net;
    mw__parse_cidr((mw_str){"127.0.0.1", 9}, &nets[0]);
    mw__parse_cidr((mw_str){"10.0.0.0/8", 10}, &nets[1]);
    while (mw__next_list_element(list.ptr, list.len, &pos, &e))
        if (mw__parse_cidr(e, &net) == NULL && n < max) nets[n++] = net;
    return n;
}

/* Whether s lies inside one of the values. */
static int inside_a_value(const mw__head *h, mw_str s) {
    size_t i;
    for (i = 0; i < h->nfields; i++)
        if (s.ptr >= h->fields[i].value && s.ptr + s.len <= h->fields[i].value + h->fields[i].value_len) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static mw__head h; /* large: kept off the stack */
    char *values[MW_MAX_HEADERS];
    mw__cidr nets[16];
    mw__proxies p;
    mw__addr peer;
    mw__forwarded f;
    size_t at = 1, i;
    char ip[INET6_ADDRSTRLEN];
    if (!size) return 0;
    p.nets = nets;
    p.n = trusted_blocks(next_line(data, size, &at), nets, 16);
    memset(&peer, 0, sizeof peer);
    memcpy(peer.ip, mw__v4_prefix, 12);
    peer.ip[12] = 127;
    peer.ip[15] = 1;
    peer.port = 40000;
    h.nfields = 0;
    while (at < size && h.nfields < MW_MAX_HEADERS) {
        mw_str line = next_line(data, size, &at);
        mw__field *fd = &h.fields[h.nfields];
        if (!line.len) continue;
        fd->name = names[(unsigned char)line.ptr[0] % 5];
        fd->name_len = strlen(fd->name);
        fd->value_len = line.len - 1;
        if (!(values[h.nfields] = (char *)malloc(fd->value_len ? fd->value_len : 1))) break;
        memcpy(values[h.nfields], line.ptr + 1, fd->value_len);
        fd->value = values[h.nfields++];
    }
    mw__resolve_forwarded(&p, 1 + data[0] % MW__HOPS_MAX, &peer, &h, &f);
    mw__format_ip(&f.client, ip);
    if (f.https < -1 || f.https > 1) __builtin_trap();
    if (f.host.ptr && (!inside_a_value(&h, f.host) || !mw__forwarded_host_ok(f.host))) __builtin_trap();
    if (!h.nfields && (memcmp(f.client.ip, peer.ip, 16) != 0 || f.client.port != peer.port))
        __builtin_trap(); /* a client from nowhere */
    for (i = 0; i < h.nfields; i++) free(values[i]);
    return 0;
}
