/* middleware.c - hooks, CORS, security headers, signed-cookie sessions, CSRF and the
   site helpers, through the in-process test client (the same parser, router and
   framing as a socket), plus the pure parts (the CSRF decision table, locations). */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"

#include "harness.h"

#include <stdlib.h>

#define KEY "0123456789abcdef-a-test-key"
#define OLD_KEY "an-older-key-that-still-verifies"

/* ---- helpers ---- */

static int body_is(const mw_test_res *r, const char *text) {
    return r->body_len == strlen(text) && memcmp(r->body, text, r->body_len) == 0;
}

static int body_has(const mw_test_res *r, const char *text) {
    return mw__find(r->body, r->body_len, text, strlen(text)) != NULL;
}

/* How many header lines of the head start with "name:" (spelled as microweb writes it). */
static int header_count(const mw_test_res *r, const char *name) {
    const char *p = r->head, *end = r->head + r->head_len;
    size_t n = strlen(name);
    int count = 0;
    while (p && p < end) {
        const char *eol = mw__find(p, (size_t)(end - p), "\r\n", 2);
        if (!eol) break;
        if ((size_t)(eol - p) > n && memcmp(p, name, n) == 0 && p[n] == ':') count++;
        p = eol + 2;
    }
    return count;
}

/* The session cookie's value from a response's Set-Cookie, copied into out. */
static int session_cookie(const mw_test_res *r, char *out, size_t cap) {
    const char *v = mw_test_header(r, "Set-Cookie"), *semi;
    size_t n;
    if (!v || strncmp(v, "session=", 8) != 0) return 0;
    v += 8;
    semi = strchr(v, ';');
    n = semi ? (size_t)(semi - v) : strlen(v);
    if (n + 1 > cap) return 0;
    memcpy(out, v, n);
    out[n] = '\0';
    return 1;
}

static mw_test_res *get_with(mw_app *app, const char *target, const char *headers) {
    return mw_test_request(app, "GET", target, headers, NULL, 0);
}

static void ok_handler(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "handler");
}

/* ---- hooks ---- */

static int handler_runs;

static void counting_handler(mw_req *rq, mw_res *rs) {
    const char *role = (const char *)mw_route_data(rq);
    handler_runs++;
    mw_printf(rs, "role=%s pattern=%s", role ? role : "-", mw_route_pattern(rq));
}

static int before_tag(mw_req *rq, mw_res *rs, void *arg) {
    (void)rq;
    mw_set_header(rs, "X-Before", (const char *)arg);
    return MW_NEXT;
}

/* An auth hook reading the route's required role from its route data. */
static int before_role(mw_req *rq, mw_res *rs, void *arg) {
    const char *role = (const char *)mw_route_data(rq), *given = mw_header(rq, "X-Role");
    (void)arg;
    if (!role || (given && strcmp(given, role) == 0)) return MW_NEXT;
    mw_error(rs, 403, "role required");
    return MW_DONE;
}

static void after_status(mw_req *rq, mw_res *rs, void *arg) {
    char v[16];
    (void)rq;
    (void)arg;
    snprintf(v, sizeof v, "%d", mw_res_status(rs));
    mw_set_header(rs, "X-After", v);
}

TEST(before_hooks_run_in_order_then_the_handler_with_route_data) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    mw_before(app, NULL, before_tag, "first");
    mw_before(app, "/admin", before_tag, "second");
    mw_route_with(app, "GET", "/admin/{id}", counting_handler, "admin");
    mw_get(app, "/public", counting_handler);
    handler_runs = 0;
    r = get_with(app, "/admin/7", NULL);
    CHECK_INT(r->status, 200);
    CHECK(body_is(r, "role=admin pattern=/admin/{id}"));
    CHECK_INT(header_count(r, "X-Before"), 2);
    CHECK(mw__find(r->head, r->head_len, "X-Before: first\r\nX-Before: second", 32) != NULL);
    mw_test_free(r);
    r = get_with(app, "/public", NULL);
    CHECK(body_is(r, "role=- pattern=/public"));
    CHECK_INT(header_count(r, "X-Before"), 1);
    mw_test_free(r);
    CHECK_INT(handler_runs, 2);
    mw_app_free(app);
}

TEST(a_before_hook_that_answers_skips_the_handler) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    mw_before(app, NULL, before_role, NULL);
    mw_route_with(app, "GET", "/admin", counting_handler, "admin");
    handler_runs = 0;
    r = get_with(app, "/admin", NULL);
    CHECK_INT(r->status, 403);
    CHECK(body_has(r, "role required"));
    mw_test_free(r);
    CHECK_INT(handler_runs, 0);
    r = get_with(app, "/admin", "X-Role: admin");
    CHECK_INT(r->status, 200);
    mw_test_free(r);
    CHECK_INT(handler_runs, 1);
    mw_app_free(app);
}

TEST(a_prefix_covers_whole_segments_only) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    mw_before(app, "/admin/", before_tag, "admin");
    mw_get(app, "/admin", ok_handler);
    mw_get(app, "/admin/users", ok_handler);
    mw_get(app, "/adminx", ok_handler);
    r = get_with(app, "/admin", NULL);
    CHECK_INT(header_count(r, "X-Before"), 1);
    mw_test_free(r);
    r = get_with(app, "/admin/users", NULL);
    CHECK_INT(header_count(r, "X-Before"), 1);
    mw_test_free(r);
    r = get_with(app, "/adminx", NULL);
    CHECK_INT(header_count(r, "X-Before"), 0);
    mw_test_free(r);
    /* an encoded spelling of the prefix names no route: it cannot reach /admin's handler
       around the hook */
    r = get_with(app, "/%61dmin", NULL);
    CHECK_INT(r->status, 404);
    mw_test_free(r);
    CHECK_INT(mw_before(app, "admin", before_tag, "x"), MW_EINVAL);
    mw_app_free(app);
}

static void bad_json_handler(mw_req *rq, mw_res *rs) {
    mw_req_json(rq);
    mw_text(rs, 200, "unreachable");
}

static void silent_handler(mw_req *rq, mw_res *rs) {
    (void)rq;
    (void)rs;
}

static int before_answers(mw_req *rq, mw_res *rs, void *arg) {
    (void)rq;
    (void)arg;
    mw_text(rs, 418, "early");
    return MW_DONE;
}

TEST(after_hooks_run_on_every_answer_including_automatic_ones_and_refusals) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    static const struct {
        const char *method, *target, *body;
        int status;
    } cases[] = {
        {"GET", "/ok", NULL, 200},     {"GET", "/nowhere", NULL, 404}, {"DELETE", "/ok", NULL, 405},
        {"OPTIONS", "/ok", NULL, 200}, {"POST", "/json", "{", 400},    {"GET", "/silent", NULL, 500},
        {"GET", "/a/../b", NULL, 400}, {"GET", "/early", NULL, 418},
    };
    size_t i;
    mw_set_limit(app, MW_LIMIT_BODY_BYTES, 8);
    mw_after(app, NULL, after_status, NULL);
    mw_get(app, "/ok", ok_handler);
    mw_post(app, "/json", bad_json_handler);
    mw_get(app, "/silent", silent_handler);
    mw_before(app, "/early", before_answers, NULL);
    mw_get(app, "/early", ok_handler);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[16];
        r = mw_test_request(app, cases[i].method, cases[i].target, NULL, cases[i].body,
                            cases[i].body ? strlen(cases[i].body) : 0);
        snprintf(want, sizeof want, "%d", cases[i].status);
        CHECK_INT(r->status, cases[i].status);
        CHECK_STR(mw_test_header(r, "X-After"), want);
        mw_test_free(r);
    }
    /* refusals by the parser: a malformed request line, and a body over the limit */
    r = mw_test_raw(app, "GET /ok HTTP/1.1\nHost: x\n\n", 25);
    CHECK_INT(r->status, 400);
    CHECK_STR(mw_test_header(r, "X-After"), "400");
    mw_test_free(r);
    r = mw_test_raw(app, "POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", 52);
    CHECK_INT(r->status, 413);
    CHECK_STR(mw_test_header(r, "X-After"), "413");
    mw_test_free(r);
    mw_app_free(app);
}

static int after_changes;

static void after_tries_to_change_the_answer(mw_req *rq, mw_res *rs, void *arg) {
    (void)rq;
    (void)arg;
    after_changes += mw_status(rs, 201) == MW_ESTATE;
    after_changes += mw_write(rs, "more", 4) == MW_ESTATE;
    after_changes += mw_text(rs, 202, "other") == MW_ESTATE;
}

TEST(in_an_after_hook_status_and_body_are_fixed) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    mw_after(app, NULL, after_tries_to_change_the_answer, NULL);
    mw_get(app, "/ok", ok_handler);
    after_changes = 0;
    r = get_with(app, "/ok", NULL);
    CHECK_INT(r->status, 200);
    CHECK(body_is(r, "handler"));
    CHECK_STR(mw_test_header(r, "Content-Length"), "7");
    mw_test_free(r);
    CHECK_INT(after_changes, 3);
    mw_app_free(app);
}

static void flushing_handler(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_printf(rs, "part one;");
    mw_flush(rs);
    mw_printf(rs, "part two");
}

static void streaming_handler(mw_req *rq, mw_res *rs) {
    mw_stream *s = mw_stream_open(rs, 200, "text/plain");
    (void)rq;
    mw_stream_write(s, "streamed", 8);
    mw_stream_close(s); /* ended, and the handle given back */
}

TEST(after_hooks_add_headers_to_flushed_and_streamed_answers) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    mw_after(app, NULL, after_status, NULL);
    mw_get(app, "/flush", flushing_handler);
    mw_get(app, "/stream", streaming_handler);
    r = get_with(app, "/flush", NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(mw_test_header(r, "X-After"), "200");
    CHECK(body_is(r, "part one;part two"));
    CHECK_INT(header_count(r, "X-After"), 1);
    mw_test_free(r);
    r = get_with(app, "/stream", NULL);
    CHECK_STR(mw_test_header(r, "X-After"), "200");
    CHECK(body_is(r, "streamed"));
    mw_test_free(r);
    mw_app_free(app);
}

/* ---- CORS ---- */

static mw_app *cors_app(const char *origins, int credentials) {
    mw_app *app = mw_app_new();
    mw_cors_opts c;
    memset(&c, 0, sizeof c);
    c.origins = origins;
    c.credentials = credentials;
    c.headers = "Content-Type, X-Token";
    c.expose = "X-Total";
    CHECK_INT(mw_cors(app, "/api", &c), 0);
    mw_get(app, "/api/items", ok_handler);
    mw_post(app, "/api/items", ok_handler);
    mw_post(app, "/api/json", bad_json_handler);
    mw_get(app, "/other", ok_handler);
    mw_before(app, NULL, before_role, NULL); /* would refuse a preflight, were it to run */
    return app;
}

TEST(cors_an_allowed_origin_reads_answers_and_errors) {
    mw_app *app = cors_app("http://a.test, http://b.test:8081", 1);
    mw_test_res *r;
    const char *targets[] = {"/api/items", "/api/nowhere"};
    size_t i;
    for (i = 0; i < 2; i++) {
        r = get_with(app, targets[i], "Origin: http://b.test:8081");
        CHECK_STR(mw_test_header(r, "Access-Control-Allow-Origin"), "http://b.test:8081");
        CHECK_STR(mw_test_header(r, "Access-Control-Allow-Credentials"), "true");
        CHECK_STR(mw_test_header(r, "Access-Control-Expose-Headers"), "X-Total");
        CHECK_STR(mw_test_header(r, "Vary"), "Origin");
        mw_test_free(r);
    }
    r = mw_test_request(app, "POST", "/api/json", "Origin: http://a.test\r\nContent-Type: application/json", "{", 1);
    CHECK_INT(r->status, 400);
    CHECK_STR(mw_test_header(r, "Access-Control-Allow-Origin"), "http://a.test");
    mw_test_free(r);
    /* outside the prefix: no CORS at all */
    r = get_with(app, "/other", "Origin: http://a.test");
    CHECK(mw_test_header(r, "Access-Control-Allow-Origin") == NULL);
    CHECK(mw_test_header(r, "Vary") == NULL);
    mw_test_free(r);
    mw_app_free(app);
}

TEST(cors_another_origin_gets_no_cors_headers) {
    mw_app *app = cors_app("http://a.test", 1);
    mw_test_res *r = get_with(app, "/api/items", "Origin: http://evil.test");
    CHECK_INT(r->status, 200);
    CHECK(mw_test_header(r, "Access-Control-Allow-Origin") == NULL);
    CHECK_STR(mw_test_header(r, "Vary"), "Origin");
    mw_test_free(r);
    /* a prefix of an allowed origin is another origin */
    r = get_with(app, "/api/items", "Origin: http://a.tes");
    CHECK(mw_test_header(r, "Access-Control-Allow-Origin") == NULL);
    mw_test_free(r);
    mw_app_free(app);
}

TEST(cors_any_origin_without_credentials_is_a_wildcard) {
    mw_app *app = cors_app("*", 0);
    mw_test_res *r = get_with(app, "/api/items", "Origin: http://anywhere.test");
    CHECK_STR(mw_test_header(r, "Access-Control-Allow-Origin"), "*");
    CHECK(mw_test_header(r, "Access-Control-Allow-Credentials") == NULL);
    CHECK(mw_test_header(r, "Vary") == NULL);
    mw_test_free(r);
    mw_app_free(app);
}

TEST(cors_preflight_is_answered_before_hooks_with_the_routes_methods) {
    mw_app *app = cors_app("http://a.test", 1);
    mw_test_res *r = mw_test_request(app, "OPTIONS", "/api/items",
                                     "Origin: http://a.test\r\nAccess-Control-Request-Method: POST\r\n"
                                     "Access-Control-Request-Headers: content-type, x-token",
                                     NULL, 0);
    CHECK_INT(r->status, 204);
    CHECK_STR(mw_test_header(r, "Access-Control-Allow-Methods"), "GET, HEAD, POST, OPTIONS");
    CHECK_STR(mw_test_header(r, "Access-Control-Allow-Headers"), "Content-Type, X-Token");
    CHECK_STR(mw_test_header(r, "Access-Control-Max-Age"), "600");
    CHECK_STR(mw_test_header(r, "Access-Control-Allow-Origin"), "http://a.test");
    CHECK_INT(header_count(r, "Access-Control-Allow-Origin"), 1);
    mw_test_free(r);
    /* a path that does not exist is a 404 (which the page can read) */
    r = mw_test_request(app, "OPTIONS", "/api/none", "Origin: http://a.test\r\nAccess-Control-Request-Method: GET",
                        NULL, 0);
    CHECK_INT(r->status, 404);
    CHECK_STR(mw_test_header(r, "Access-Control-Allow-Origin"), "http://a.test");
    mw_test_free(r);
    /* an origin not listed */
    r = mw_test_request(app, "OPTIONS", "/api/items", "Origin: http://evil.test\r\nAccess-Control-Request-Method: GET",
                        NULL, 0);
    CHECK_INT(r->status, 403);
    CHECK(mw_test_header(r, "Access-Control-Allow-Origin") == NULL);
    mw_test_free(r);
    /* a plain OPTIONS is still the router's */
    r = mw_test_request(app, "OPTIONS", "/api/items", NULL, NULL, 0);
    CHECK_INT(r->status, 200);
    CHECK_STR(mw_test_header(r, "Allow"), "GET, HEAD, POST, OPTIONS");
    mw_test_free(r);
    mw_app_free(app);
}

TEST(cors_any_request_header_with_credentials_echoes_the_asked_ones) {
    mw_app *app = mw_app_new();
    mw_cors_opts c;
    mw_test_res *r;
    memset(&c, 0, sizeof c);
    c.origins = "http://a.test";
    c.credentials = 1;
    c.headers = "*";
    c.max_age = -1;
    mw_cors(app, NULL, &c);
    mw_get(app, "/x", ok_handler);
    r = mw_test_request(app, "OPTIONS", "/x",
                        "Origin: http://a.test\r\nAccess-Control-Request-Method: GET\r\n"
                        "Access-Control-Request-Headers: x-one, x-two",
                        NULL, 0);
    CHECK_STR(mw_test_header(r, "Access-Control-Allow-Headers"), "x-one, x-two");
    CHECK(mw_test_header(r, "Access-Control-Max-Age") == NULL);
    mw_test_free(r);
    mw_app_free(app);
}

TEST(cors_settings_that_cannot_work_stop_the_app) {
    mw_app *app = mw_app_new();
    mw_cors_opts c;
    memset(&c, 0, sizeof c);
    c.origins = "*";
    c.credentials = 1;
    CHECK_INT(mw_cors(app, NULL, &c), MW_EINVAL);
    c.origins = "http://localhost:5173/";
    c.credentials = 0;
    CHECK_INT(mw_cors(app, NULL, &c), MW_EINVAL);
    c.origins = "localhost:5173";
    CHECK_INT(mw_cors(app, NULL, &c), MW_EINVAL);
    CHECK(mw_listen(app, "127.0.0.1", 0) > 0);
    CHECK_INT(mw_serve(app), MW_EINVAL); /* setup errors: it does not start */
    mw_app_free(app);
}

/* ---- security headers ---- */

TEST(security_headers_are_on_every_answer) {
    mw_app *app = mw_app_new();
    mw_security_opts o;
    mw_test_res *r;
    mw_security_headers(app, NULL);
    mw_get(app, "/ok", ok_handler);
    r = get_with(app, "/nowhere", NULL);
    CHECK_INT(r->status, 404);
    CHECK_STR(mw_test_header(r, "X-Content-Type-Options"), "nosniff");
    CHECK_STR(mw_test_header(r, "Referrer-Policy"), "strict-origin-when-cross-origin");
    CHECK_STR(mw_test_header(r, "X-Frame-Options"), "DENY");
    CHECK_STR(mw_test_header(r, "Content-Security-Policy"), "frame-ancestors 'none'");
    CHECK(mw_test_header(r, "Strict-Transport-Security") == NULL);
    mw_test_free(r);
    /* a second call replaces the first */
    memset(&o, 0, sizeof o);
    o.frame_options = "SAMEORIGIN";
    o.referrer_policy = "";
    o.hsts_max_age = 31536000;
    o.hsts_subdomains = 1;
    mw_security_headers(app, &o);
    r = get_with(app, "/ok", NULL);
    CHECK_STR(mw_test_header(r, "X-Frame-Options"), "SAMEORIGIN");
    CHECK_STR(mw_test_header(r, "Content-Security-Policy"), "frame-ancestors 'self'");
    CHECK(mw_test_header(r, "Referrer-Policy") == NULL);
    CHECK_STR(mw_test_header(r, "Strict-Transport-Security"), "max-age=31536000; includeSubDomains");
    CHECK_INT(header_count(r, "X-Content-Type-Options"), 1);
    mw_test_free(r);
    o.frame_options = "ALLOW";
    CHECK_INT(mw_security_headers(app, &o), MW_EINVAL);
    mw_app_free(app);
}

/* ---- sessions ---- */

static void session_write(mw_req *rq, mw_res *rs) {
    const char *v = mw_value(rq, MW_QUERY, "v");
    int rc = mw_session_set(rq, mw_value(rq, MW_QUERY, "k"), v);
    mw_printf(rs, "%d", rc);
}

static void session_read(mw_req *rq, mw_res *rs) {
    const char *v = mw_session_get(rq, mw_value(rq, MW_QUERY, "k"));
    mw_text(rs, 200, v ? v : "(none)");
}

static void session_clear(mw_req *rq, mw_res *rs) {
    mw_session_clear(rq);
    mw_text(rs, 200, "cleared");
}

static mw_app *session_app(const char *key) {
    mw_app *app = mw_app_new();
    if (key) mw_secret_key(app, key);
    mw_sessions(app, NULL);
    mw_get(app, "/set", session_write);
    mw_get(app, "/get", session_read);
    mw_get(app, "/clear", session_clear);
    return app;
}

/* GET target with the cookie; the body, copied into out. */
static int get_body(mw_app *app, const char *target, const char *cookie, char *out, size_t cap) {
    char headers[4200];
    mw_test_res *r;
    int status;
    snprintf(headers, sizeof headers, "Cookie: session=%s", cookie);
    r = get_with(app, target, headers);
    snprintf(out, cap, "%.*s", (int)r->body_len, r->body);
    status = r->status;
    mw_test_free(r);
    return status;
}

static void set_and_take_cookie(mw_app *app, const char *target, const char *cookie_in, char *cookie, size_t cap) {
    char headers[4200];
    mw_test_res *r;
    snprintf(headers, sizeof headers, "Cookie: session=%s", cookie_in ? cookie_in : "");
    r = get_with(app, target, cookie_in ? headers : NULL);
    cookie[0] = '\0';
    CHECK(session_cookie(r, cookie, cap));
    mw_test_free(r);
}

/* The signature's short-message path (one block per hash) against HMAC-SHA256 itself
   in base64url, on both sides of the 55-byte boundary. */
TEST(session_mac_is_hmac_sha256_at_every_length) {
    mw__hmac key;
    unsigned char mac[32];
    char want[MW__MAC_TEXT_ROOM], got[MW__MAC_TEXT_ROOM];
    char msg[130];
    size_t n;
    int same = 1;
    for (n = 0; n < sizeof msg; n++) msg[n] = (char)('a' + n % 26);
    mw__hmac_init(&key, KEY, strlen(KEY));
    for (n = 0; n <= sizeof msg; n++) {
        mw__hmac_sha256(KEY, strlen(KEY), msg, n, mac);
        CHECK_INT((int)mw__base64_encode(want, mac, sizeof mac, 1), MW__MAC_TEXT);
        mw__mac_text(&key, msg, n, got);
        same &= memcmp(want, got, MW__MAC_TEXT) == 0;
    }
    CHECK(same);
}

TEST(sessions_round_trip_in_a_signed_cookie) {
    mw_app *app = session_app(KEY);
    char cookie[4200], body[4200];
    mw_test_res *r = get_with(app, "/set?k=user&v=ada%20%26%20b%3Dc%25%E2%9C%93", NULL);
    const char *sc = mw_test_header(r, "Set-Cookie");
    CHECK(body_is(r, "0"));
    CHECK(sc && strstr(sc, "; Path=/") && strstr(sc, "; HttpOnly") && strstr(sc, "; SameSite=Lax") &&
          strstr(sc, "; Max-Age=1209600") && !strstr(sc, "Secure"));
    CHECK(session_cookie(r, cookie, sizeof cookie));
    mw_test_free(r);
    get_body(app, "/get?k=user", cookie, body, sizeof body);
    CHECK_STR(body, "ada & b=c%\xE2\x9C\x93");
    /* reading does not write the cookie again */
    r = get_with(app, "/get?k=user", NULL);
    CHECK(mw_test_header(r, "Set-Cookie") == NULL);
    mw_test_free(r);
    mw_app_free(app);
}

/* More pairs than a session holds before its arrays grow, written one per request
   and read back from the cookie; one removed from the middle. */
TEST(sessions_hold_many_pairs) {
    mw_app *app = session_app(KEY);
    char cookie[4200], next[4200], target[64], body[64], want[16];
    int i, wrong = 0;
    cookie[0] = '\0';
    for (i = 0; i < 10; i++) {
        snprintf(target, sizeof target, "/set?k=k%d&v=v%d", i, i);
        set_and_take_cookie(app, target, i ? cookie : NULL, next, sizeof next);
        memcpy(cookie, next, sizeof cookie);
    }
    set_and_take_cookie(app, "/set?k=k4", cookie, next, sizeof next); /* no v: removed */
    for (i = 0; i < 10; i++) {
        snprintf(target, sizeof target, "/get?k=k%d", i);
        snprintf(want, sizeof want, i == 4 ? "(none)" : "v%d", i);
        get_body(app, target, next, body, sizeof body);
        wrong += strcmp(body, want) != 0;
    }
    CHECK_INT(wrong, 0);
    mw_app_free(app);
}

TEST(sessions_a_tampered_cookie_is_an_empty_session) {
    mw_app *app = session_app(KEY), *other = session_app("another-key-of-enough-length");
    char cookie[4200], bad[4200], body[4200];
    size_t i, n;
    int statuses = 0;
    set_and_take_cookie(app, "/set?k=user&v=ada", NULL, cookie, sizeof cookie);
    n = strlen(cookie);
    for (i = 0; i < n; i++) { /* every single-character change, in payload, time and signature */
        memcpy(bad, cookie, n + 1);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        statuses += get_body(app, "/get?k=user", bad, body, sizeof body) == 200;
        CHECK_STR(body, "(none)");
    }
    CHECK_INT(statuses, (int)n); /* never an error page */
    get_body(other, "/get?k=user", cookie, body, sizeof body);
    CHECK_STR(body, "(none)"); /* a wrong key */
    memcpy(bad, cookie, n + 1);
    bad[n - 1] = '\0';
    get_body(app, "/get?k=user", bad, body, sizeof body);
    CHECK_STR(body, "(none)");
    get_body(app, "/get?k=user", "garbage", body, sizeof body);
    CHECK_STR(body, "(none)");
    mw_app_free(app);
    mw_app_free(other);
}

/* A cookie as the app signs it, for a chosen time. */
static void forge_with_app_key(mw_app *app, const char *form, long long when, char *out) {
    size_t n = mw__base64_encode(out, form, strlen(form), 1);
    char mac[MW__MAC_TEXT_ROOM];
    n += (size_t)sprintf(out + n, ".%lld", when);
    mw__mac_text(&app->keys[0], out, n, mac);
    out[n++] = '.';
    memcpy(out + n, mac, MW__MAC_TEXT);
    out[n + MW__MAC_TEXT] = '\0';
}

TEST(sessions_expire_after_max_age_and_refuse_times_ahead) {
    mw_app *app = session_app(KEY);
    char cookie[512], body[512];
    long long now = (long long)time(NULL);
    forge_with_app_key(app, "user=ada", now - 100, cookie);
    get_body(app, "/get?k=user", cookie, body, sizeof body);
    CHECK_STR(body, "ada"); /* the forging is right: a fresh one reads */
    forge_with_app_key(app, "user=ada", now - 1209600 - 5, cookie);
    get_body(app, "/get?k=user", cookie, body, sizeof body);
    CHECK_STR(body, "(none)");
    forge_with_app_key(app, "user=ada", now + 3600, cookie);
    get_body(app, "/get?k=user", cookie, body, sizeof body);
    CHECK_STR(body, "(none)");
    mw_app_free(app);
}

TEST(sessions_keys_rotate_sign_with_newest_verify_with_any) {
    mw_app *old_app = session_app(OLD_KEY), *app = mw_app_new(), *plain = session_app(KEY);
    char cookie[4200], fresh[4200], body[4200];
    mw_secret_key(app, KEY);
    mw_secret_key_fallback(app, OLD_KEY);
    mw_sessions(app, NULL);
    mw_get(app, "/get", session_read);
    mw_get(app, "/set", session_write);
    set_and_take_cookie(old_app, "/set?k=user&v=ada", NULL, cookie, sizeof cookie);
    get_body(app, "/get?k=user", cookie, body, sizeof body);
    CHECK_STR(body, "ada");
    /* a change re-signs with the newest key, which the old app cannot read */
    set_and_take_cookie(app, "/set?k=n&v=1", cookie, fresh, sizeof fresh);
    get_body(plain, "/get?k=user", fresh, body, sizeof body);
    CHECK_STR(body, "ada");
    get_body(old_app, "/get?k=user", fresh, body, sizeof body);
    CHECK_STR(body, "(none)");
    mw_app_free(old_app);
    mw_app_free(app);
    mw_app_free(plain);
}

TEST(sessions_without_a_key_refuse_to_start) {
    mw_app *app;
    unsetenv("MW_SECRET_KEY");
    app = mw_app_new();
    CHECK_INT(mw_sessions(app, NULL), MW_EINVAL);
    CHECK(mw_listen(app, "127.0.0.1", 0) > 0);
    CHECK_INT(mw_serve(app), MW_EINVAL);
    mw_app_free(app);
    app = mw_app_new();
    CHECK_INT(mw_secret_key(app, "short"), MW_EINVAL);
    mw_app_free(app);
    setenv("MW_SECRET_KEY", KEY, 1);
    setenv("MW_SECRET_KEY_FALLBACKS", OLD_KEY ", yet-another-old-key-here", 1);
    app = mw_app_new();
    CHECK_INT(mw_sessions(app, NULL), 0);
    CHECK_INT(app->nkeys + app->nold_keys, 3);
    mw_app_free(app);
    unsetenv("MW_SECRET_KEY");
    unsetenv("MW_SECRET_KEY_FALLBACKS");
}

TEST(sessions_refuse_cookie_settings_a_browser_would_drop) {
    mw_session_opts o;
    mw_app *app = mw_app_new();
    mw_secret_key(app, KEY);
    memset(&o, 0, sizeof o);
    o.cookie = "__Host-session"; /* needs Secure */
    CHECK_INT(mw_sessions(app, &o), MW_EINVAL);
    o.cookie = "bad name";
    CHECK_INT(mw_sessions(app, &o), MW_EINVAL);
    o.cookie = NULL;
    o.same_site = "None"; /* needs Secure */
    CHECK_INT(mw_sessions(app, &o), MW_EINVAL);
    o.secure = 1;
    o.cookie = "__Host-session";
    CHECK_INT(mw_sessions(app, &o), 0);
    mw_app_free(app);
}

/* The Set-Cookie line is rendered once by mw_sessions, cut where each response's value
   goes: every option lands in it, and the value reads back. */
TEST(sessions_cookie_line_carries_every_option) {
    mw_session_opts o;
    mw_app *app = mw_app_new();
    mw_test_res *r;
    const char *sc, *semi;
    char headers[4200];
    mw_secret_key(app, KEY);
    memset(&o, 0, sizeof o);
    o.cookie = "__Host-sid";
    o.max_age = 3600;
    o.secure = 1;
    o.same_site = "Strict";
    CHECK_INT(mw_sessions(app, &o), 0);
    mw_get(app, "/set", session_write);
    mw_get(app, "/get", session_read);
    mw_get(app, "/clear", session_clear);
    r = get_with(app, "/set?k=user&v=ada", NULL);
    sc = mw_test_header(r, "Set-Cookie");
    semi = sc ? strchr(sc, ';') : NULL;
    CHECK(sc && strncmp(sc, "__Host-sid=", 11) == 0 && semi && semi - sc > 11 + 43);
    CHECK_STR(semi, "; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Strict");
    snprintf(headers, sizeof headers, "Cookie: %.*s", semi ? (int)(semi - sc) : 0, sc ? sc : "");
    mw_test_free(r);
    r = get_with(app, "/get?k=user", headers);
    CHECK(body_is(r, "ada"));
    mw_test_free(r);
    r = get_with(app, "/clear", headers);
    CHECK_STR(mw_test_header(r, "Set-Cookie"), "__Host-sid=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict");
    mw_test_free(r);
    mw_app_free(app);
}

TEST(sessions_too_big_for_a_cookie_are_refused_and_unchanged) {
    mw_app *app = session_app(KEY);
    char target[6000], cookie[4200], body[4200];
    mw_test_res *r;
    memset(target, 0, sizeof target);
    strcpy(target, "/set?k=big&v=");
    memset(target + strlen(target), 'x', 3200);
    r = get_with(app, target, NULL);
    CHECK(body_is(r, "-9")); /* MW_ETOOBIG */
    CHECK(mw_test_header(r, "Set-Cookie") == NULL);
    mw_test_free(r);
    set_and_take_cookie(app, "/set?k=small&v=1", NULL, cookie, sizeof cookie);
    target[strlen("/set?k=big&v=") + 2900] = '\0'; /* fits */
    r = get_with(app, target, NULL);
    CHECK(body_is(r, "0"));
    mw_test_free(r);
    get_body(app, "/get?k=small", cookie, body, sizeof body);
    CHECK_STR(body, "1");
    mw_app_free(app);
}

TEST(sessions_clear_deletes_the_cookie) {
    mw_app *app = session_app(KEY);
    char cookie[4200], headers[4300];
    mw_test_res *r;
    set_and_take_cookie(app, "/set?k=user&v=ada", NULL, cookie, sizeof cookie);
    snprintf(headers, sizeof headers, "Cookie: session=%s", cookie);
    r = get_with(app, "/clear", headers);
    CHECK(strncmp(mw_test_header(r, "Set-Cookie"), "session=; Path=/; Max-Age=0", 27) == 0);
    mw_test_free(r);
    mw_app_free(app);
}

TEST(sessions_set_without_sessions_is_a_state_error) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    mw_get(app, "/set", session_write);
    r = get_with(app, "/set?k=a&v=b", NULL);
    CHECK(body_is(r, "-4"));
    mw_test_free(r);
    mw_app_free(app);
}

/* ---- CSRF ---- */

TEST(csrf_cross_origin_decision_table) {
    static const struct {
        const char *fetch_site, *origin, *host;
        int refused;
    } rows[] = {
        {"same-origin", "http://evil.test", "site.test", 0},
        {"none", NULL, "site.test", 0},
        {"cross-site", NULL, "site.test", 1},
        {"same-site", "http://sub.site.test", "site.test", 1},
        {"cross-site", "http://site.test", "site.test", 1}, /* Sec-Fetch-Site is believed first */
        {NULL, NULL, "site.test", 0},                       /* curl, scripts */
        {"", "", "site.test", 0},                           /* empty is absent */
        {NULL, "http://site.test", "site.test", 0},
        {NULL, "https://SITE.test:8443", "site.test:8443", 0},
        {NULL, "http://site.test:8080", "site.test", 1},
        {NULL, "http://evil.test", "site.test", 1},
        {NULL, "null", "site.test", 1},
        {NULL, "http://site.test", NULL, 1},
    };
    size_t i;
    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *why = mw__cross_origin_refusal(rows[i].fetch_site, rows[i].origin, NULL, rows[i].host);
        if ((why != NULL) != rows[i].refused) printf("  row %lu\n", (unsigned long)i);
        CHECK((why != NULL) == rows[i].refused);
    }
}

static mw_app *csrf_app(void) {
    mw_app *app = session_app(KEY);
    mw_post(app, "/form", ok_handler);
    mw_post(app, "/hooks/in", ok_handler);
    mw_get(app, "/page", ok_handler);
    mw_post(app, "/api/x", ok_handler);
    return app;
}

TEST(csrf_is_on_with_sessions_and_refuses_cross_origin_unsafe_requests) {
    mw_app *app = csrf_app();
    mw_cors_opts c;
    static const struct {
        const char *method, *target, *headers;
        int status;
    } cases[] = {
        {"POST", "/form", "Sec-Fetch-Site: cross-site", 403},
        {"POST", "/form", "Sec-Fetch-Site: same-origin", 200},
        {"POST", "/form", "Origin: http://test", 200}, /* the test client's Host is "test" */
        {"POST", "/form", "Origin: http://evil.test", 403},
        {"POST", "/form", NULL, 200},
        {"GET", "/page", "Sec-Fetch-Site: cross-site", 200},
        {"POST", "/hooks/in", "Sec-Fetch-Site: cross-site", 200},
        {"POST", "/form", "Sec-Fetch-Site: cross-site\r\nOrigin: https://trusted.test", 200},
        {"POST", "/api/x", "Sec-Fetch-Site: cross-site\r\nOrigin: http://spa.test", 200},
        {"POST", "/api/x", "Sec-Fetch-Site: cross-site\r\nOrigin: http://other.test", 403},
    };
    size_t i;
    mw_csrf_exempt(app, "/hooks");
    mw_csrf_trust(app, "https://trusted.test");
    memset(&c, 0, sizeof c);
    c.origins = "http://spa.test";
    c.credentials = 1;
    mw_cors(app, "/api", &c);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mw_test_res *r = mw_test_request(app, cases[i].method, cases[i].target, cases[i].headers, NULL, 0);
        if (r->status != cases[i].status) printf("  case %lu\n", (unsigned long)i);
        CHECK_INT(r->status, cases[i].status);
        if (r->status == 403) CHECK(body_has(r, "cross-origin request refused"));
        mw_test_free(r);
    }
    mw_csrf_protect(app, 0);
    {
        mw_test_res *r = mw_test_request(app, "POST", "/form", "Sec-Fetch-Site: cross-site", NULL, 0);
        CHECK_INT(r->status, 200);
        mw_test_free(r);
    }
    CHECK_INT(mw_csrf_trust(app, "https://x.test/"), MW_EINVAL);
    mw_app_free(app);
}

static void token_page(mw_req *rq, mw_res *rs) {
    const char *a = mw_csrf_token(rq), *b = mw_csrf_token(rq);
    mw_printf(rs, "%s %s", a ? a : "-", b ? b : "-");
}

static void token_check(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "accepted");
}

TEST(csrf_tokens_are_masked_and_checked_against_the_session) {
    mw_app *app = session_app(KEY), *other = session_app(KEY);
    char cookie[4200], cookie2[4200], token[100], token2[100], headers[4400], body[200];
    mw_test_res *r;
    mw_get(app, "/token", token_page);
    mw_get(other, "/token", token_page);
    mw_before(app, "/account", mw_csrf_require_token, NULL);
    mw_post(app, "/account/delete", token_check);
    r = get_with(app, "/token", NULL);
    CHECK(session_cookie(r, cookie, sizeof cookie));
    CHECK_INT(sscanf(r->body, "%99s %99s", token, token2), 2);
    CHECK_INT((long long)strlen(token), 86);
    CHECK(strcmp(token, token2) != 0); /* a new mask each time */
    mw_test_free(r);
    /* the form field, the header, and both tokens work */
    snprintf(headers, sizeof headers, "Cookie: session=%s\r\nContent-Type: application/x-www-form-urlencoded", cookie);
    snprintf(body, sizeof body, "csrf_token=%s", token);
    r = mw_test_request(app, "POST", "/account/delete", headers, body, strlen(body));
    CHECK_INT(r->status, 200);
    mw_test_free(r);
    snprintf(headers, sizeof headers, "Cookie: session=%s\r\nX-CSRF-Token: %s", cookie, token2);
    r = mw_test_request(app, "POST", "/account/delete", headers, NULL, 0);
    CHECK_INT(r->status, 200);
    mw_test_free(r);
    /* no token, a changed token, a token of another session */
    snprintf(headers, sizeof headers, "Cookie: session=%s", cookie);
    r = mw_test_request(app, "POST", "/account/delete", headers, NULL, 0);
    CHECK_INT(r->status, 403);
    CHECK(body_has(r, "CSRF token missing or incorrect"));
    mw_test_free(r);
    token[40] = token[40] == 'A' ? 'B' : 'A';
    snprintf(headers, sizeof headers, "Cookie: session=%s\r\nX-CSRF-Token: %s", cookie, token);
    r = mw_test_request(app, "POST", "/account/delete", headers, NULL, 0);
    CHECK_INT(r->status, 403);
    mw_test_free(r);
    r = get_with(other, "/token", NULL);
    CHECK(session_cookie(r, cookie2, sizeof cookie2));
    mw_test_free(r);
    snprintf(headers, sizeof headers, "Cookie: session=%s\r\nX-CSRF-Token: %s", cookie2, token2);
    r = mw_test_request(app, "POST", "/account/delete", headers, NULL, 0);
    CHECK_INT(r->status, 403);
    mw_test_free(r);
    mw_app_free(app);
    mw_app_free(other);
}

/* ---- helpers ---- */

static void redirect_to(mw_req *rq, mw_res *rs) {
    long long status = 0;
    mw_param_int(rq, "status", &status);
    mw_redirect(rs, (int)status, mw_value(rq, MW_QUERY, "to"));
}

TEST(redirects_take_safe_locations_and_redirect_statuses_only) {
    mw_app *app = mw_app_new();
    static const struct {
        const char *target, *location;
        int status;
    } cases[] = {
        {"/r/303?to=/me", "/me", 303},
        {"/r/301?to=https://example.com/x", "https://example.com/x", 301},
        {"/r/308?to=me%3Fa%3D1", "me?a=1", 308},
        {"/r/302?to=//evil.test", NULL, 500},
        {"/r/302?to=/%5Cevil.test", NULL, 500},
        {"/r/302?to=javascript:alert(1)", NULL, 500},
        {"/r/302?to=/a%0D%0ASet-Cookie:x=1", NULL, 500},
        {"/r/302?to=http://", NULL, 500},
        {"/r/302?to=/a%20b", NULL, 500},
        {"/r/200?to=/me", NULL, 500},
        {"/r/302", NULL, 500},
    };
    size_t i;
    mw_get(app, "/r/{status:int}", redirect_to);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mw_test_res *r = get_with(app, cases[i].target, NULL);
        CHECK_INT(r->status, cases[i].status);
        if (cases[i].location) CHECK_STR(mw_test_header(r, "Location"), cases[i].location);
        else CHECK(mw_test_header(r, "Location") == NULL);
        mw_test_free(r);
    }
    mw_app_free(app);
}

/* The escaper against one byte at a time: random text of plain bytes (UTF-8's high
   bytes among them) and the five that need entities, every length to 80, at each
   offset in a 16-byte window, so a special byte falls at every position of a block. */
TEST(html_escape_matches_byte_by_byte) {
    static const char special[] = "<>&\"'", plain[] = "ab z\xe3\x83\x95";
    char text[100], want[700];
    mw__buf got = {0};
    unsigned seed = 7;
    size_t n, off, i;
    int wrong = 0;
    for (n = 0; n <= 80; n++)
        for (off = 0; off < 16; off++) {
            char *w = want;
            for (i = 0; i < n; i++) { /* one byte in eight needs an entity: runs of both lengths */
                unsigned r = (seed = seed * 1103515245u + 12345u) >> 16;
                text[off + i] = r % 8 ? plain[r / 8 % 7] : special[r / 8 % 5];
            }
            for (i = 0; i < n; i++) {
                const char *e = text[off + i] == '&'    ? "&amp;"
                                : text[off + i] == '<'  ? "&lt;"
                                : text[off + i] == '>'  ? "&gt;"
                                : text[off + i] == '"'  ? "&quot;"
                                : text[off + i] == '\'' ? "&#39;"
                                                        : NULL;
                if (e) w += sprintf(w, "%s", e);
                else *w++ = text[off + i];
            }
            got.len = 0;
            CHECK_INT(mw__buf_html_escape(&got, text + off, n), 0);
            wrong += got.len != (size_t)(w - want) || memcmp(got.data, want, got.len) != 0;
        }
    CHECK_INT(wrong, 0);
    mw__buf_free(&got);
}

static void html_page(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_html_escape(rs, "<a href=\"x\">Tom & Jerry's</a>|");
    mw_html_printf(rs, "<b>%s</b>|%.4s|%c|%d|%05.1f|%x|%lld|%zu|%-3s|%%|%5d|%*d", "<i>&amp;", "<<<<<<", '"', -42,
                   3.14159, 255u, 1234567890123LL, (size_t)7, "a", 12, 4, 5);
}

/* Conversions without text to escape come out exactly as printf writes them. */
static void html_like_printf(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_html_printf(rs, "%10s|%-4c|%hhd|%hu|%*d|%-*d|%.*f|%.300f|%0*d|%+.3e|%#x|%lu", "ab", 'q', 300, 70000u, -6, 42, 5,
                   7, -1, 2.5, 1e300, 400, 9, -12345.678, 255u, 123456789UL);
}

static void html_bad(mw_req *rq, mw_res *rs) {
    int n = 0;
    (void)rq;
    mw_html_printf(rs, "x%n", &n);
}

TEST(html_escaping_as_a_call_and_as_printf) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    mw_get(app, "/", html_page);
    mw_get(app, "/bad", html_bad);
    mw_get(app, "/printf", html_like_printf);
    r = get_with(app, "/printf", NULL);
    {
        static char want[2048];
        int n = snprintf(want, sizeof want, "%10s|%-4c|%hhd|%hu|%*d|%-*d|%.*f|%.300f|%0*d|%+.3e|%#x|%lu", "ab", 'q',
                         (signed char)300, (unsigned short)70000u, -6, 42, 5, 7, -1, 2.5, 1e300, 400, 9, -12345.678,
                         255u, 123456789UL);
        CHECK(n > 0 && r->body_len == (size_t)n && memcmp(r->body, want, (size_t)n) == 0);
    }
    mw_test_free(r);
    r = get_with(app, "/", NULL);
    CHECK(body_is(r,
                  "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;|"
                  "<b>&lt;i&gt;&amp;amp;</b>|&lt;&lt;&lt;&lt;|&quot;|-42|003.1|ff|1234567890123|7|a  |%|   12|   5"));
    mw_test_free(r);
    r = get_with(app, "/bad", NULL);
    CHECK_INT(r->status, 500);
    mw_test_free(r);
    mw_app_free(app);
}

static void auth_echo(mw_req *rq, mw_res *rs) {
    const char *user = NULL, *password = NULL, *bearer = mw_bearer_token(rq);
    int basic = mw_basic_auth(rq, &user, &password);
    mw_printf(rs, "%d|%s|%s|%s", basic, user ? user : "-", password ? password : "-", bearer ? bearer : "-");
}

TEST(credentials_basic_and_bearer) {
    mw_app *app = mw_app_new();
    static const struct {
        const char *header, *body;
    } cases[] = {
        {"Authorization: Basic ZGVtbzpkZW1v", "1|demo|demo|-"},
        {"Authorization: basic ZGVtbzpwYTpzcw==", "1|demo|pa:ss|-"}, /* the first ':' splits */
        {"Authorization: Basic ZGVtbw==", "0|-|-|-"},                /* no ':' */
        {"Authorization: Basic ZGVtbzpkZW1v!", "0|-|-|-"},
        {"Authorization: Basic ZGVtbzpkZW1", "0|-|-|-"},
        {"Authorization: Bearer abc.DEF-_~+/123==", "0|-|-|abc.DEF-_~+/123=="},
        {"Authorization: Bearer abc def", "0|-|-|-"},
        {"Authorization: Bearer ", "0|-|-|-"},
        {"Authorization: Bearer ==", "0|-|-|-"},
        {NULL, "0|-|-|-"},
    };
    size_t i;
    mw_get(app, "/", auth_echo);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mw_test_res *r = get_with(app, "/", cases[i].header);
        if (!body_is(r, cases[i].body)) printf("  case %lu: %.*s\n", (unsigned long)i, (int)r->body_len, r->body);
        CHECK(body_is(r, cases[i].body));
        mw_test_free(r);
    }
    mw_app_free(app);
}

TEST(secret_comparison) {
    CHECK(mw_secret_equal("s3cret", "s3cret"));
    CHECK(!mw_secret_equal("s3cret", "s3cres"));
    CHECK(!mw_secret_equal("s3cre", "s3cret"));
    CHECK(!mw_secret_equal("s3crett", "s3cret"));
    CHECK(!mw_secret_equal("", "x"));
    CHECK(mw_secret_equal("", ""));
    CHECK(!mw_secret_equal(NULL, "x"));
}

/* ---- found in review: each of these failed before its fix ---- */

static int deny_hook(mw_req *rq, mw_res *rs, void *arg) {
    (void)rq;
    (void)arg;
    mw_error(rs, 403, "denied");
    return MW_DONE;
}

static void param_echo(mw_req *rq, mw_res *rs) {
    const char *v = mw_param(rq, "name");
    mw_text(rs, 200, v ? v : mw_param(rq, "rest"));
}

TEST(a_percent_encoded_path_cannot_step_around_a_prefix_hook) {
    mw_app *app = mw_app_new();
    static const char *const targets[] = {"/users/admin", "/users/%61dmin", "/users/adm%69n", "/files/private/k.txt",
                                          "/files/%70rivate/k.txt"};
    size_t i;
    mw_before(app, "/users/admin", deny_hook, NULL);
    mw_before(app, "/files/private", deny_hook, NULL);
    mw_get(app, "/users/:name", param_echo);
    mw_get(app, "/files/*rest", param_echo);
    for (i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        mw_test_res *r = get_with(app, targets[i], NULL);
        if (r->status != 403) printf("  %s: %d\n", targets[i], r->status);
        CHECK_INT(r->status, 403);
        mw_test_free(r);
    }
    {
        mw_test_res *r = get_with(app, "/users/ada", NULL);
        CHECK(body_is(r, "ada"));
        mw_test_free(r);
    }
    mw_app_free(app);
}

TEST(cors_overlapping_prefixes_take_the_longest_once) {
    mw_app *app = mw_app_new();
    mw_cors_opts c;
    mw_test_res *r;
    memset(&c, 0, sizeof c);
    c.origins = "http://a.test";
    mw_cors(app, NULL, &c);
    c.origins = "http://a.test, http://b.test";
    mw_cors(app, "/api", &c);
    mw_get(app, "/api/x", ok_handler);
    mw_get(app, "/x", ok_handler);
    r = get_with(app, "/api/x", "Origin: http://a.test");
    CHECK_INT(header_count(r, "Access-Control-Allow-Origin"), 1);
    CHECK_INT(header_count(r, "Vary"), 1);
    mw_test_free(r);
    r = mw_test_request(app, "OPTIONS", "/api/x", "Origin: http://b.test\r\nAccess-Control-Request-Method: GET", NULL,
                        0);
    CHECK_INT(r->status, 204);
    CHECK_STR(mw_test_header(r, "Access-Control-Allow-Origin"), "http://b.test");
    mw_test_free(r);
    r = get_with(app, "/x", "Origin: http://b.test");
    CHECK(mw_test_header(r, "Access-Control-Allow-Origin") == NULL);
    mw_test_free(r);
    r = get_with(app, "/x", "Origin: HTTP://A.TEST"); /* origins compare without case */
    CHECK_STR(mw_test_header(r, "Access-Control-Allow-Origin"), "HTTP://A.TEST");
    mw_test_free(r);
    mw_app_free(app);
}

static int misuse_results[4];

static void after_misuse(mw_req *rq, mw_res *rs, void *arg) {
    (void)rq;
    (void)arg;
    misuse_results[0] = mw_flush(rs);
    misuse_results[1] = mw_set_header(rs, "Connection", "close");
    misuse_results[2] = mw_redirect(rs, 302, "//evil.test");
    misuse_results[3] = mw_session_set(rq, "late", "1");
}

TEST(an_after_hook_cannot_flush_close_break_or_change_the_session) {
    mw_app *app = session_app(KEY);
    mw_test_res *r;
    mw_after(app, "/set", after_misuse, NULL); /* after mw_sessions: its cookie is written by then */
    r = mw_test_raw(app, "GET /set?k=a&v=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /get?k=a HTTP/1.1\r\nHost: x\r\n\r\n", 72);
    CHECK_INT(r->status, 200);
    CHECK(body_is(r, "0"));
    CHECK(mw__find(r->raw, r->raw_len, "HTTP/1.1", 8) == r->raw);
    CHECK(mw__find(r->head, r->head_len, "Transfer-Encoding", 17) == NULL);
    CHECK(mw__find(r->raw, r->raw_len, "(none)", 6) != NULL); /* the second request was served */
    mw_test_free(r);
    CHECK_INT(misuse_results[0], MW_ESTATE);
    CHECK_INT(misuse_results[1], MW_EINVAL);
    CHECK_INT(misuse_results[2], MW_ESTATE);
    CHECK_INT(misuse_results[3], MW_ESTATE);
    mw_app_free(app);
}

TEST(csrf_token_in_a_multipart_form) {
    mw_app *app = session_app(KEY);
    char cookie[4200], token[100], headers[4400], body[600];
    mw_test_res *r;
    mw_get(app, "/token", token_page);
    mw_before(app, "/upload", mw_csrf_require_token, NULL);
    mw_post(app, "/upload", token_check);
    r = get_with(app, "/token", NULL);
    CHECK(session_cookie(r, cookie, sizeof cookie));
    CHECK_INT(sscanf(r->body, "%99s", token), 1);
    mw_test_free(r);
    snprintf(headers, sizeof headers, "Cookie: session=%s\r\nContent-Type: multipart/form-data; boundary=XyZ", cookie);
    snprintf(body, sizeof body,
             "--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n%s\r\n"
             "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n\r\nhello\r\n--XyZ--\r\n",
             token);
    r = mw_test_request(app, "POST", "/upload", headers, body, strlen(body));
    CHECK_INT(r->status, 200);
    mw_test_free(r);
    mw_app_free(app);
}

TEST(csrf_trusted_origins_compare_without_case) {
    mw_app *app = csrf_app();
    mw_test_res *r;
    mw_csrf_trust(app, "https://Trusted.test");
    r = mw_test_request(app, "POST", "/form", "Sec-Fetch-Site: cross-site\r\nOrigin: https://trusted.test", NULL, 0);
    CHECK_INT(r->status, 200);
    mw_test_free(r);
    mw_app_free(app);
}

/* ---- the /docs page ---- */

static void *route_data_seen = &route_data_seen; /* what the after hook saw; itself until then */

static void note_route_data(mw_req *rq, mw_res *rs, void *arg) {
    (void)rs;
    (void)arg;
    route_data_seen = mw_route_data(rq);
}

TEST(docs_page_is_html_with_a_policy_naming_its_inline_style_and_script) {
    mw_app *app = mw_app_new();
    mw_test_res *r, *h;
    const char *csp;
    CHECK_INT(mw_docs(app), 0);
    mw_after(app, NULL, note_route_data, NULL);
    r = get_with(app, "/docs", NULL);
    CHECK_INT(r->status, 200);
    CHECK_STR(mw_test_header(r, "Content-Type"), "text/html; charset=utf-8");
    csp = mw_test_header(r, "Content-Security-Policy");
    CHECK(csp && strncmp(csp, "default-src 'none'; script-src 'sha256-", 39) == 0);
    CHECK(csp && strstr(csp, "; style-src 'sha256-") && strstr(csp, "; connect-src 'self';"));
    CHECK(csp && !strstr(csp, "unsafe"));
    CHECK(r->body_len > 10000 && r->body_len < 65536);
    CHECK(body_has(r, "<!doctype html>") && body_has(r, "fetch('/openapi.json'"));
    CHECK(route_data_seen == NULL); /* the page keeps its state off mw_route_data, which hooks read */
    h = mw_test_request(app, "HEAD", "/docs", NULL, NULL, 0);
    CHECK_INT(h->status, 200);
    CHECK_INT((long long)h->body_len, 0);
    CHECK_STR(mw_test_header(h, "Content-Security-Policy"), csp);
    mw_test_free(h);
    mw_test_free(r);
    mw_app_free(app);
}

TEST(docs_twice_is_a_duplicate_route) {
    mw_app *app = mw_app_new();
    CHECK_INT(mw_docs(NULL), MW_EINVAL);
    CHECK_INT(mw_docs(app), 0);
    CHECK_INT(mw_docs(app), MW_EEXIST);
    CHECK(mw_listen(app, "127.0.0.1", 0) > 0);
    CHECK_INT(mw_serve(app), MW_EINVAL); /* setup errors: it does not start */
    mw_app_free(app);
}

/* Sessions, static files, WebSocket, PostgreSQL and the page each hold an extension's
   place in the app; an app may use all five. */
TEST(docs_page_joins_an_app_using_every_other_extension) {
    static const mw__ext postgresql_place = {NULL, NULL, NULL};
    mw_app *app = mw_app_new();
    mw_ws_opts ws;
    mw_test_res *r;
    memset(&ws, 0, sizeof ws);
    mw_secret_key(app, KEY);
    CHECK_INT(mw_sessions(app, NULL), 0);
    CHECK_INT(mw_static(app, "/static", "tests", NULL), 0);
    CHECK_INT(mw_websocket(app, "/ws", &ws), 0);
    CHECK(mw__app_add_ext(app, &postgresql_place, NULL) >= 0);
    CHECK_INT(mw_docs(app), 0);
    r = get_with(app, "/docs", NULL);
    CHECK_INT(r->status, 200);
    mw_test_free(r);
    mw_app_free(app);
}

int main(void) {
    unsetenv("MW_SECRET_KEY");
    RUN(before_hooks_run_in_order_then_the_handler_with_route_data);
    RUN(a_before_hook_that_answers_skips_the_handler);
    RUN(a_prefix_covers_whole_segments_only);
    RUN(after_hooks_run_on_every_answer_including_automatic_ones_and_refusals);
    RUN(in_an_after_hook_status_and_body_are_fixed);
    RUN(after_hooks_add_headers_to_flushed_and_streamed_answers);
    RUN(cors_an_allowed_origin_reads_answers_and_errors);
    RUN(cors_another_origin_gets_no_cors_headers);
    RUN(cors_any_origin_without_credentials_is_a_wildcard);
    RUN(cors_preflight_is_answered_before_hooks_with_the_routes_methods);
    RUN(cors_any_request_header_with_credentials_echoes_the_asked_ones);
    RUN(cors_settings_that_cannot_work_stop_the_app);
    RUN(security_headers_are_on_every_answer);
    RUN(session_mac_is_hmac_sha256_at_every_length);
    RUN(sessions_round_trip_in_a_signed_cookie);
    RUN(sessions_hold_many_pairs);
    RUN(sessions_a_tampered_cookie_is_an_empty_session);
    RUN(sessions_expire_after_max_age_and_refuse_times_ahead);
    RUN(sessions_keys_rotate_sign_with_newest_verify_with_any);
    RUN(sessions_without_a_key_refuse_to_start);
    RUN(sessions_refuse_cookie_settings_a_browser_would_drop);
    RUN(sessions_cookie_line_carries_every_option);
    RUN(sessions_too_big_for_a_cookie_are_refused_and_unchanged);
    RUN(sessions_clear_deletes_the_cookie);
    RUN(sessions_set_without_sessions_is_a_state_error);
    RUN(csrf_cross_origin_decision_table);
    RUN(csrf_is_on_with_sessions_and_refuses_cross_origin_unsafe_requests);
    RUN(csrf_tokens_are_masked_and_checked_against_the_session);
    RUN(redirects_take_safe_locations_and_redirect_statuses_only);
    RUN(html_escaping_as_a_call_and_as_printf);
    RUN(html_escape_matches_byte_by_byte);
    RUN(credentials_basic_and_bearer);
    RUN(secret_comparison);
    RUN(a_percent_encoded_path_cannot_step_around_a_prefix_hook);
    RUN(cors_overlapping_prefixes_take_the_longest_once);
    RUN(an_after_hook_cannot_flush_close_break_or_change_the_session);
    RUN(csrf_token_in_a_multipart_form);
    RUN(csrf_trusted_origins_compare_without_case);
    RUN(docs_page_is_html_with_a_policy_naming_its_inline_style_and_script);
    RUN(docs_twice_is_a_duplicate_route);
    RUN(docs_page_joins_an_app_using_every_other_extension);
    return test_summary();
}
