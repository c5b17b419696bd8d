#define MICROWEB_IMPLEMENTATION
#include "microweb.h"
#include "harness.h"

/* Tests of the WebSocket section's pure parts (the accept value, UTF-8 as it arrives,
   frame heads, close codes, payload lengths, unmasking) and of the opening handshake's
   answers through the in-process test client. Vectors are typed in from the document
   named next to each. */

/* RFC 6455 §1.3's example handshake. */
TEST(test_accept_value_of_rfc6455_example_key) {
    char accept[29];
    mw__ws_accept_value("dGhlIHNhbXBsZSBub25jZQ==", 24, accept);
    CHECK_STR(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static int utf8_ok(const char *s, size_t n) { return mw__utf8_valid(s, n); }

/* RFC 3629 §4's grammar, and the Autobahn 6.x cases' classes of bad input. */
TEST(test_utf8_accepts_every_form_the_grammar_allows) {
    CHECK(utf8_ok("", 0));
    CHECK(utf8_ok("plain ascii, long enough for the word-at-a-time path", 52));
    CHECK(utf8_ok("\xc2\x80\xdf\xbf", 4));                              /* U+0080, U+07FF */
    CHECK(utf8_ok("\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80", 9));          /* U+0800, U+D7FF, U+E000 */
    CHECK(utf8_ok("\xef\xbf\xbf", 3));                                  /* U+FFFF */
    CHECK(utf8_ok("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 8));              /* U+10000, U+10FFFF */
    CHECK(utf8_ok("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 11)); /* "κόσμε" */
}

TEST(test_utf8_refuses_overlongs_surrogates_and_beyond_u10ffff) {
    CHECK(!utf8_ok("\xc0\x80", 2));         /* overlong NUL */
    CHECK(!utf8_ok("\xc1\xbf", 2));         /* overlong U+007F */
    CHECK(!utf8_ok("\xe0\x9f\xbf", 3));     /* overlong U+07FF */
    CHECK(!utf8_ok("\xf0\x8f\xbf\xbf", 4)); /* overlong U+FFFF */
    CHECK(!utf8_ok("\xed\xa0\x80", 3));     /* U+D800 */
    CHECK(!utf8_ok("\xed\xbf\xbf", 3));     /* U+DFFF */
    CHECK(!utf8_ok("\xf4\x90\x80\x80", 4)); /* U+110000 */
    CHECK(!utf8_ok("\xf5\x80\x80\x80", 4)); /* a lead byte past F4 */
    CHECK(!utf8_ok("\xff", 1));
    CHECK(!utf8_ok("\x80", 1));             /* a lone continuation byte */
    CHECK(!utf8_ok("\xce\xba\xe1\xbd", 4)); /* ends inside a sequence */
    CHECK(!utf8_ok("a\xe1\xbd"
                   "b",
                   4)); /* a sequence cut short by ASCII */
    CHECK(!utf8_ok("aaaaaaaa\xc0"
                   "aaaaaaa",
                   16)); /* after the word-at-a-time path */
}

/* Split at every byte, the incremental check agrees with the whole; a bad byte is found
   in the piece that holds it, not later. */
TEST(test_utf8_incremental_agrees_at_every_split) {
    static const char good[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf0\x9f\x98\x80 ok";
    static const char bad[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80 no";
    size_t n = sizeof good - 1, k;
    for (k = 0; k <= n; k++) {
        mw__utf8 u = {0, 0x80, 0xbf};
        CHECK(mw__utf8_feed(&u, (const unsigned char *)good, k) == 0);
        CHECK(mw__utf8_feed(&u, (const unsigned char *)good + k, n - k) == 0);
        CHECK_INT(u.need, 0);
    }
    for (k = 0; k <= 12; k++) { /* the bad sequence starts at byte 11; its second byte is the bad one */
        mw__utf8 u = {0, 0x80, 0xbf};
        CHECK(mw__utf8_feed(&u, (const unsigned char *)bad, k) == 0);
        CHECK(mw__utf8_feed(&u, (const unsigned char *)bad + k, n - k) != 0);
    }
}

TEST(test_frame_head_uses_the_shortest_length) {
    unsigned char h[10];
    CHECK_INT(mw__ws_frame_head(h, MW_WS_TEXT, 0), 2);
    CHECK(h[0] == 0x81 && h[1] == 0);
    CHECK_INT(mw__ws_frame_head(h, MW_WS_BINARY, 125), 2);
    CHECK(h[0] == 0x82 && h[1] == 125);
    CHECK_INT(mw__ws_frame_head(h, MW_WS_TEXT, 126), 4);
    CHECK(h[1] == 126 && h[2] == 0 && h[3] == 126);
    CHECK_INT(mw__ws_frame_head(h, MW_WS_TEXT, 65535), 4);
    CHECK(h[2] == 0xff && h[3] == 0xff);
    CHECK_INT(mw__ws_frame_head(h, MW_WS_TEXT, 65536), 10);
    CHECK(h[1] == 127 && h[2] == 0 && h[7] == 1 && h[8] == 0 && h[9] == 0);
}

/* RFC 6455 §5.2: "the minimal number of bytes MUST be used", and the 64-bit form's top
   bit must be 0. */
TEST(test_payload_length_in_its_shortest_form_only) {
    unsigned char f16[4] = {0x81, 0x80 | 126, 0, 126}, s16[4] = {0x81, 0x80 | 126, 0, 125};
    unsigned char f64[10] = {0x81, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0};
    unsigned char s64[10] = {0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    unsigned char top[10] = {0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0};
    CHECK(mw__ws_payload_len(f16) == 126);
    CHECK(mw__ws_payload_len(s16) == -1);
    CHECK(mw__ws_payload_len(f64) == 65536);
    CHECK(mw__ws_payload_len(s64) == -1);
    CHECK(mw__ws_payload_len(top) == -1);
}

/* RFC 6455 §5.7's masked "Hello", then §5.3's rule (octet i XOR key octet (phase + i)
   mod 4) at every phase, at lengths around the eight-byte steps, from and to unaligned
   addresses, and in place. */
TEST(test_unmask_is_the_rfc_xor_at_every_phase_length_and_alignment) {
    static const unsigned char hello[5] = {0x7f, 0x9f, 0x4d, 0x51, 0x58}, key[4] = {0x37, 0xfa, 0x21, 0x3d};
    unsigned char src[64], dst[64], want[64], out[5];
    size_t phase, n, at, i;
    mw__ws_unmask(out, hello, 5, key, 0);
    CHECK(memcmp(out, "Hello", 5) == 0);
    for (i = 0; i < sizeof src; i++) src[i] = (unsigned char)(i * 37 + 11);
    for (phase = 0; phase < 4; phase++)
        for (at = 0; at < 8; at++)
            for (n = 0; n + at + 8 <= sizeof src; n++) {
                for (i = 0; i < n; i++) want[i] = (unsigned char)(src[at + i] ^ key[(phase + i) % 4]);
                memset(dst, 0, sizeof dst);
                mw__ws_unmask(dst + (8 - at), src + at, n, key, phase);
                CHECK(memcmp(dst + (8 - at), want, n) == 0);
                memcpy(dst, src, sizeof dst);
                mw__ws_unmask(dst + at, dst + at, n, key, phase);
                CHECK(memcmp(dst + at, want, n) == 0);
            }
}

/* RFC 6455 §7.4.1-2 and IANA's registry (Autobahn's 7.7 and 7.9 case lists). */
TEST(test_close_codes_a_peer_may_send) {
    static const long ok[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                              1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
    static const long no[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
    size_t i;
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) CHECK(mw__ws_code_valid(ok[i]));
    for (i = 0; i < sizeof no / sizeof no[0]; i++) CHECK(!mw__ws_code_valid(no[i]));
}

static int opened;
static void count_open(mw_ws *ws, mw_req *rq) {
    (void)ws;
    (void)rq;
    opened++;
}

static mw_app *handshake_app(void) {
    mw_app *app = mw_app_new();
    mw_ws_opts o;
    memset(&o, 0, sizeof o);
    o.on_open = count_open;
    o.subprotocols = "chat.v2, chat";
    mw_websocket(app, "/ws", &o);
    o.subprotocols = NULL;
    o.origins = "https://good.example";
    mw_websocket(app, "/ws/strict", &o);
    return app;
}

#define HS_BASE "Upgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Version: 13\n"
#define HS_KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n"
#define HS_BASE_CRLF "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
#define HS_KEY_CRLF "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

TEST(test_handshake_answers_101_with_the_accept_value) {
    mw_app *app = handshake_app();
    mw_test_res *r =
        mw_test_request(app, "GET", "/ws", HS_BASE HS_KEY "Sec-WebSocket-Protocol: x, chat, chat.v2", NULL, 0);
    CHECK(strncmp(r->raw, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0);
    CHECK(strstr(r->raw, "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != NULL);
    CHECK(strstr(r->raw, "\r\nUpgrade: websocket\r\n") != NULL);
    CHECK(strstr(r->raw, "\r\nConnection: Upgrade\r\n") != NULL);
    CHECK(strstr(r->raw, "\r\nSec-WebSocket-Protocol: chat\r\n") != NULL); /* the client's first that we speak */
    CHECK(strstr(r->raw, "Content-Length") == NULL);                       /* RFC 9110 §8.6: none on a 1xx */
    CHECK(strstr(r->raw, "Sec-WebSocket-Extensions") == NULL);
    CHECK_INT(opened, 0); /* the in-process client cannot speak frames: nothing opens */
    mw_test_free(r);
    mw_app_free(app);
}

static int status_of(mw_app *app, const char *method, const char *target, const char *headers, const char *want) {
    mw_test_res *r = mw_test_request(app, method, target, headers, NULL, 0);
    int status = r->status ? r->status : atoi(r->raw + 9);
    if (want && !strstr(r->raw, want)) status = -status;
    mw_test_free(r);
    return status;
}

TEST(test_handshake_refusals_say_why) {
    mw_app *app = handshake_app();
    CHECK_INT(status_of(app, "GET", "/ws", HS_KEY "Sec-WebSocket-Version: 13", "\r\nUpgrade: websocket\r\n"), 426);
    CHECK_INT(status_of(app, "GET", "/ws", "Upgrade: websocket\nSec-WebSocket-Version: 13\n" HS_KEY,
                        "Connection must list upgrade"),
              400);
    CHECK_INT(status_of(app, "GET", "/ws", "Upgrade: websocket\nConnection: keep-alive, Upgrade\n" HS_KEY,
                        "Sec-WebSocket-Version missing"),
              400);
    CHECK_INT(status_of(app, "GET", "/ws", "Upgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Version: 8\n" HS_KEY,
                        "\r\nSec-WebSocket-Version: 13\r\n"),
              426);
    CHECK_INT(status_of(app, "GET", "/ws", HS_BASE, "Sec-WebSocket-Key"), 400);
    CHECK_INT(status_of(app, "GET", "/ws", HS_BASE "Sec-WebSocket-Key: c2hvcnQ=", "Sec-WebSocket-Key"), 400);
    CHECK_INT(status_of(app, "GET", "/ws", HS_BASE HS_KEY HS_KEY, "Sec-WebSocket-Key"), 400);
    CHECK_INT(status_of(app, "POST", "/ws", HS_BASE HS_KEY, "Allow: GET"), 405);
    CHECK_INT(status_of(app, "GET", "/ws/strict", HS_BASE HS_KEY "Origin: https://evil.example", "Origin"), 403);
    CHECK_INT(status_of(app, "GET", "/ws/strict", HS_BASE HS_KEY "Origin: https://good.example", NULL), 101);
    CHECK_INT(status_of(app, "GET", "/ws", HS_BASE HS_KEY "Origin: https://evil.example", "Origin"), 403);
    CHECK_INT(status_of(app, "GET", "/ws", HS_BASE HS_KEY "Origin: http://test", NULL), 101); /* same origin */
    CHECK_INT(status_of(app, "GET", "/ws", HS_BASE HS_KEY, NULL), 101);                       /* not a browser */
    mw_app_free(app);
}

TEST(test_subprotocol_that_is_not_a_token_is_a_setup_error) {
    mw_app *app = mw_app_new();
    mw_ws_opts o;
    memset(&o, 0, sizeof o);
    o.subprotocols = "chat, two words";
    CHECK_INT(mw_websocket(app, "/ws", &o), MW_EINVAL);
    CHECK_INT(mw_run(app), 1); /* refuses to start (and frees the app), as after a bad route */
}

/* ---- mw_ws_group_size over real sockets: members count from their join until they close ---- */

static void join_room(mw_ws *ws, mw_req *rq) {
    (void)rq;
    mw_ws_join(ws, "room");
}

static long size_at_close = -1; /* written by the worker that runs on_close */

static void note_size_at_close(mw_ws *ws, int code, const char *reason) {
    (void)code, (void)reason;
    __atomic_store_n(&size_at_close, mw_ws_group_size(mw_ws_app(ws), "room"), __ATOMIC_RELEASE);
}

/* size_at_close once on_close has run (a member leaves its groups just before it):
   polled for up to 5 s, -1 if it never ran */
static long wait_size_at_close(void) {
    long n = -1;
    int i;
    for (i = 0; i < 500 && (n = __atomic_load_n(&size_at_close, __ATOMIC_ACQUIRE)) == -1; i++) usleep(10000);
    return n;
}

static void *serve_app(void *app) {
    mw_serve((mw_app *)app);
    return NULL;
}

/* A client that opened a WebSocket on path (the 101 read), or -1. */
static int ws_connect(int port, const char *path) {
    struct sockaddr_in a;
    char req[256], head[512];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ssize_t n;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n" HS_BASE_CRLF HS_KEY_CRLF "\r\n", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 || send(fd, req, strlen(req), 0) < 0 ||
        (n = recv(fd, head, sizeof head - 1, 0)) < 12 || strncmp(head, "HTTP/1.1 101", 12) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* The group's size once it is want (on_open runs after the 101 is sent), or the last seen. */
static long wait_group_size(mw_app *app, const char *group, long want) {
    long n = -1;
    int i;
    for (i = 0; i < 500 && (n = mw_ws_group_size(app, group)) != want; i++) usleep(10000);
    return n;
}

TEST(test_group_size_counts_members_from_join_until_close) {
    static const mw_ws_opts room = {.on_open = join_room, .on_close = note_size_at_close};
    mw_app *app = mw_app_new();
    pthread_t t;
    int port, a, b;
    CHECK_INT((int)mw_ws_group_size(app, "room"), 0); /* no WebSocket endpoint yet */
    CHECK_INT((int)mw_ws_group_size(NULL, "room"), MW_EINVAL);
    CHECK_INT((int)mw_ws_group_size(app, NULL), MW_EINVAL);
    mw_set_limit(app, MW_LIMIT_THREADS, 2);
    mw_websocket(app, "/ws", &room);
    port = mw_listen(app, "127.0.0.1", 0);
    CHECK(port > 0);
    CHECK_INT(pthread_create(&t, NULL, serve_app, app), 0);
    CHECK_INT((int)mw_ws_group_size(app, "room"), 0);
    a = ws_connect(port, "/ws");
    CHECK_INT((int)wait_group_size(app, "room", 1), 1);
    b = ws_connect(port, "/ws");
    CHECK_INT((int)wait_group_size(app, "room", 2), 2);
    CHECK_INT((int)mw_ws_group_size(app, "elsewhere"), 0);
    close(a); /* gone without a close frame: it leaves when the server sees the end */
    CHECK_INT((int)wait_group_size(app, "room", 1), 1);
    CHECK_INT((int)wait_size_at_close(), 1); /* in on_close it no longer counts */
    close(b);
    CHECK_INT((int)wait_group_size(app, "room", 0), 0);
    mw_stop(app);
    pthread_join(t, NULL);
    mw_app_free(app);
}

int main(void) {
    RUN(test_accept_value_of_rfc6455_example_key);
    RUN(test_utf8_accepts_every_form_the_grammar_allows);
    RUN(test_utf8_refuses_overlongs_surrogates_and_beyond_u10ffff);
    RUN(test_utf8_incremental_agrees_at_every_split);
    RUN(test_frame_head_uses_the_shortest_length);
    RUN(test_payload_length_in_its_shortest_form_only);
    RUN(test_unmask_is_the_rfc_xor_at_every_phase_length_and_alignment);
    RUN(test_close_codes_a_peer_may_send);
    RUN(test_handshake_answers_101_with_the_accept_value);
    RUN(test_handshake_refusals_say_why);
    RUN(test_subprotocol_that_is_not_a_token_is_a_setup_error);
    RUN(test_group_size_counts_members_from_join_until_close);
    return test_summary();
}
