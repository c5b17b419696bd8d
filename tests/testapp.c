/* testapp.c - the end-to-end test app: hello.c's app (included) plus routes that show
   behaviours hello.c cannot (blocking handlers, routing priority, JSON writer misuse,
   header injection, Connection: close, query, request headers, 204).
   Build:  cc -pthread -I. tests/testapp.c -o build/testapp
   Run:    PORT=0 MW_THREADS=4 build/testapp        (driven by tests/e2e.py)       */
#define HELLO_NO_MAIN /* hello.c's app and routes, the contract under test, without its main() */
#include "../examples/hello.c"

#include <stdio.h>
#include <time.h>

/* ---- test routes ---- */

/* GET /slow?TAG: says "slow handler started: TAG" on stderr (the tests' readiness
   signal), then blocks its worker for one second */
static void slow(mw_req *rq, mw_res *rs) {
    struct timespec ts = {1, 0};
    fprintf(stderr, "testapp: slow handler started: %s\n", mw_query(rq));
    while (nanosleep(&ts, &ts) != 0) { /* resume after a signal interrupts the sleep */
    }
    mw_text(rs, 200, "slow done");
}

/* GET /files/ then *path: the wildcard value */
static void files(mw_req *rq, mw_res *rs) {
    const char *p = mw_param(rq, "path");
    mw_text(rs, 200, p ? p : "(null)");
}

/* GET /users/new: a static segment beats :id */
static void user_new(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "new user form");
}

/* GET /items/:a/:b: two parameters */
static void items(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    mw_json_object(j);
    mw_json_key_string(j, "a", mw_param(rq, "a"));
    mw_json_key_string(j, "b", mw_param(rq, "b"));
    mw_json_end(j);
}

/* any method on /anything: the method name */
static void anything(mw_req *rq, mw_res *rs) { mw_text(rs, 200, mw_method(rq)); }

/* GET /json-open: returns with the writer still open -> the server answers 500 */
static void json_open(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    (void)rq;
    mw_json_object(j);
    mw_json_key_string(j, "partial", "yes");
}

/* GET /json-misuse: a value where a key is due -> 500 */
static void json_misuse(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    (void)rq;
    mw_json_object(j);
    mw_json_string(j, "value-without-key");
    mw_json_end(j);
}

/* GET /bad-header: a CR/LF in a header value must be refused */
static void bad_header(mw_req *rq, mw_res *rs) {
    int bad, ok;
    (void)rq;
    bad = mw_set_header(rs, "X-Test", "a\r\nInjected: yes");
    ok = mw_set_header(rs, "X-Ok", "fine");
    mw_status(rs, 200);
    mw_printf(rs, "rc=%d,%d", bad, ok);
}

/* GET /close: asks for the connection to be closed after the response */
static void close_route(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_set_header(rs, "Connection", "close");
    mw_text(rs, 200, "bye");
}

/* GET /query: the raw query string */
static void query(mw_req *rq, mw_res *rs) { mw_text(rs, 200, mw_query(rq)); }

/* GET /header: the X-Probe request header */
static void header(mw_req *rq, mw_res *rs) {
    const char *v = mw_header(rq, "X-Probe");
    mw_text(rs, 200, v ? v : "none");
}

/* GET /host: the host the request names (mw_header's "Host") */
static void host(mw_req *rq, mw_res *rs) {
    const char *v = mw_header(rq, "Host");
    mw_text(rs, 200, v ? v : "none");
}

/* GET /nocontent: 204 without a body */
static void nocontent(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_send(rs, 204, NULL, NULL, 0);
}

/* GET /big?n=N: N bytes of 'x', a response large enough to be queued */
static void big(mw_req *rq, mw_res *rs) {
    const char *n = mw_value(rq, MW_QUERY, "n");
    size_t left = n ? (size_t)atol(n) : 0;
    char chunk[4096];
    memset(chunk, 'x', sizeof chunk);
    mw_status(rs, 200);
    while (left) {
        size_t k = left < sizeof chunk ? left : sizeof chunk;
        mw_write(rs, chunk, k);
        left -= k;
    }
}

/* ---- request toolkit routes ---- */

#include "pairs_routes.h" /* GET /q, POST /form */

/* GET /cookie: reads "session", sets "seen" with the default attributes */
static void cookie(mw_req *rq, mw_res *rs) {
    const char *session = mw_cookie(rq, "session");
    mw_set_cookie(rs, "seen", "1", NULL);
    mw_printf(rs, "session=%s", session ? session : "(none)");
}

/* GET /typed/{id:int}: the id as a JSON integer */
static void typed(mw_req *rq, mw_res *rs) {
    long long id = -1;
    mw_json *j = mw_json_begin(rs, 200);
    mw_param_int(rq, "id", &id);
    mw_json_object(j);
    mw_json_key_int(j, "id", id);
    mw_json_end(j);
}

/* GET /declared and POST /declared/{id:int}: declared inputs; the values as the handler reads them */
static void declared(mw_req *rq, mw_res *rs) {
    mw_str q = mw_arg_str(rq, "q");
    mw_json *j = mw_json_begin(rs, 200);
    mw_json_object(j);
    mw_json_key_int(j, "id", mw_arg_int(rq, "id"));
    mw_json_key_int(j, "limit", mw_arg_int(rq, "limit"));
    mw_json_key(j, "q");
    if (q.ptr) mw_json_stringn(j, q.ptr, q.len);
    else mw_json_null(j);
    mw_json_key(j, "body");
    if (mw_body(rq).len) mw_json_value(j, mw_req_json(rq));
    else mw_json_null(j);
    mw_json_end(j);
}

static void add_declared_routes(mw_app *app) {
    mw_op list, post;
    memset(&list, 0, sizeof list);
    memset(&post, 0, sizeof post);
    list.query = "limit: int(1..100) = 20, q?: string(..10)";
    post.body = "{title: string(1..200), body: string, tags?: [string](..20), meta?: {stars: int(0..5)}}";
    mw_route_op(app, "GET", "/declared", declared, &list);
    mw_route_op(app, "POST", "/declared/{id:int}", declared, &post);
}

/* POST /json: {"city": <user.address.city>, "echo": <the body>} */
static void json_body(mw_req *rq, mw_res *rs) {
    const mw_jv *v = mw_req_json(rq);
    mw_json *j;
    if (!v) return; /* microweb answers 400 naming the offset */
    j = mw_json_begin(rs, 200);
    mw_json_object(j);
    mw_json_key_string(j, "city", mw_jv_str(mw_jv_path(v, "user.address.city"), NULL));
    mw_json_key(j, "echo");
    mw_json_value(j, v);
    mw_json_end(j);
}

/* POST /json-size: {"kind": <kind of the parsed body>, "len": <its length>}; only the
   size, so that large bodies can be parsed without sending them back */
static void json_size(mw_req *rq, mw_res *rs) {
    const mw_jv *v = mw_req_json(rq);
    mw_json *j;
    if (!v) return;
    j = mw_json_begin(rs, 200);
    mw_json_object(j);
    mw_json_key_int(j, "kind", mw_jv_kind(v));
    mw_json_key_int(j, "len", (int64_t)mw_jv_len(v));
    mw_json_end(j);
}

/* 32-bit FNV-1a, so a test can check an uploaded file without sending it back */
static unsigned long fnv1a(const char *p, size_t n) {
    unsigned long h = 2166136261ul;
    while (n--) h = ((h ^ (unsigned char)*p++) * 16777619ul) & 0xfffffffful;
    return h;
}

/* POST /upload: one JSON object per part */
static void upload(mw_req *rq, mw_res *rs) {
    mw_part part;
    mw_json *j = mw_json_begin(rs, 200);
    memset(&part, 0, sizeof part);
    mw_json_array(j);
    while (mw_multipart_next(rq, &part) > 0) {
        mw_json_object(j);
        mw_json_key_string(j, "name", part.name);
        mw_json_key_string(j, "filename", part.filename);
        mw_json_key_string(j, "safe_filename", part.safe_filename);
        mw_json_key_string(j, "content_type", part.content_type);
        mw_json_key_int(j, "size", (int64_t)part.len);
        mw_json_key_int(j, "fnv1a", (int64_t)fnv1a(part.data, part.len));
        if (part.len < 64) {
            mw_json_key(j, "data");
            mw_json_stringn(j, part.data, part.len);
        }
        mw_json_close(j);
    }
    mw_json_end(j);
}

/* TESTAPP_TIGHT_LIMITS=1: small limits and short timeouts, so the tests can reach
   every limit in well under a second. */
static void set_tight_limits(mw_app *app) {
    mw_set_limit(app, MW_LIMIT_REQUEST_LINE, 256);
    mw_set_limit(app, MW_LIMIT_HEADER_BYTES, 512);
    mw_set_limit(app, MW_LIMIT_HEADER_COUNT, 10);
    mw_set_limit(app, MW_LIMIT_BODY_BYTES, 1024);
    mw_set_limit(app, MW_LIMIT_HEAD_TIMEOUT_MS, 800);
    mw_set_limit(app, MW_LIMIT_BODY_TIMEOUT_MS, 800);
    mw_set_limit(app, MW_LIMIT_KEEPALIVE_TIMEOUT_MS, 1500);
    mw_set_limit(app, MW_LIMIT_CONNECTIONS, 8);
}

/* TESTAPP_<LIMIT>=value in the environment sets one limit, for the load tests. */
static void set_limits_from_env(mw_app *app) {
    static const struct {
        const char *env;
        mw_limit limit;
    } knobs[] = {{"TESTAPP_MAX_CONNECTIONS", MW_LIMIT_CONNECTIONS},
                 {"TESTAPP_CONNECTIONS_PER_IP", MW_LIMIT_CONNECTIONS_PER_IP},
                 {"TESTAPP_BODY_TIMEOUT_MS", MW_LIMIT_BODY_TIMEOUT_MS},
                 {"TESTAPP_BODY_MIN_RATE", MW_LIMIT_BODY_MIN_RATE},
                 {"TESTAPP_KEEPALIVE_TIMEOUT_MS", MW_LIMIT_KEEPALIVE_TIMEOUT_MS},
                 {"TESTAPP_WRITE_TIMEOUT_MS", MW_LIMIT_WRITE_TIMEOUT_MS}};
    size_t i;
    for (i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        const char *v = getenv(knobs[i].env);
        if (v && *v) mw_set_limit(app, knobs[i].limit, atoll(v));
    }
}

int main(void) {
    const char *tight = getenv("TESTAPP_TIGHT_LIMITS");
    mw_app *app = hello_app();
    if (!app) return 1;
    if (tight && *tight == '1') set_tight_limits(app);
    set_limits_from_env(app);
    mw_get(app, "/slow", slow);
    mw_get(app, "/files/*path", files);
    mw_get(app, "/users/new", user_new);
    mw_get(app, "/items/:a/:b", items);
    mw_any(app, "/anything", anything);
    mw_get(app, "/json-open", json_open);
    mw_get(app, "/json-misuse", json_misuse);
    mw_get(app, "/bad-header", bad_header);
    mw_get(app, "/close", close_route);
    mw_get(app, "/query", query);
    mw_get(app, "/header", header);
    mw_get(app, "/host", host);
    mw_get(app, "/nocontent", nocontent);
    mw_get(app, "/big", big);
    mw_get(app, "/q", query_pairs);
    mw_post(app, "/form", form_pairs);
    mw_get(app, "/cookie", cookie);
    mw_get(app, "/typed/{id:int}", typed);
    mw_post(app, "/json", json_body);
    mw_post(app, "/json-size", json_size);
    mw_post(app, "/upload", upload);
    add_declared_routes(app);
    mw_openapi(app, "testapp", MW_VERSION);
    return mw_run(app); /* PORT, HOST, MW_THREADS from the environment */
}
