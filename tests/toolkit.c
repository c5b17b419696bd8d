/* toolkit.c - the request toolkit (query and form values, cookies, typed parameters,
   JSON and multipart bodies) and the routes, tested through the in-process test
   client: the same parser, router and framing as a socket, with no socket. */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include "harness.h"

/* ------------------------------------------------------------------ handlers */

#include "pairs_routes.h" /* query_pairs, form_pairs */

static void query_lookup(mw_req *rq, mw_res *rs) {
    const char *tags[4];
    size_t n = mw_values(rq, MW_QUERY, "tag", tags, 4), i;
    const char *q = mw_value(rq, MW_QUERY, "q");
    mw_printf(rs, "q=%s n=%lu", q ? q : "(none)", (unsigned long)n);
    for (i = 0; i < n && i < 4; i++) mw_printf(rs, " %s", tags[i]);
}

static void cookies(mw_req *rq, mw_res *rs) {
    const char *session = mw_cookie(rq, "session");
    mw_cookie_opts secure = {3600, 1, 1, 0, "Strict", "/app", NULL};
    mw_set_cookie(rs, "seen", "1", NULL);
    mw_set_cookie(rs, "pref", "dark", &secure);
    mw_printf(rs, "session=%s bad=%d,%d,%d", session ? session : "(none)", mw_set_cookie(rs, "x", "a;b", NULL),
              mw_set_cookie(rs, "x", "a\r\nSet-Cookie: evil=1", NULL), mw_set_cookie(rs, "b d", "v", NULL));
}

static void typed_user(mw_req *rq, mw_res *rs) {
    long long id = 0;
    mw_json *j = mw_json_begin(rs, 200);
    mw_json_object(j);
    mw_json_key_int(j, "id", mw_param_int(rq, "id", &id) == 0 ? id : -1);
    mw_json_end(j);
}

static void named_user(mw_req *rq, mw_res *rs) { mw_text(rs, 200, mw_param(rq, "name")); }

static void file_path(mw_req *rq, mw_res *rs) { mw_text(rs, 200, mw_param(rq, "path")); }

static void some_headers(mw_req *rq, mw_res *rs) {
    const char *a = mw_header(rq, "X-A"), *b = mw_header(rq, "X-B"), *host = mw_header(rq, "Host");
    mw_printf(rs, "a=%s b=%s host=%s", a ? a : "-", b ? b : "-", host ? host : "-");
}

/* Any method on /look/...: the request line and client as received, then every header field. */
static void look(mw_req *rq, mw_res *rs) {
    size_t cursor = 0;
    const char *name, *value;
    mw_printf(rs, "%s %s %s from %s port %d;", mw_method(rq), mw_target(rq), mw_http_version(rq), mw_client_addr(rq),
              mw_client_port(rq));
    while (mw_header_next(rq, &cursor, &name, &value) == 1) mw_printf(rs, "%s=%s;", name, value);
}

/* GET /n/:v: what mw_param_int makes of an untyped parameter */
static void param_int_probe(mw_req *rq, mw_res *rs) {
    long long v = 0;
    int rc = mw_param_int(rq, "v", &v);
    mw_printf(rs, "rc=%d v=%lld", rc, v);
}

static void json_in(mw_req *rq, mw_res *rs) {
    const mw_jv *v = mw_req_json(rq), *m;
    mw_json *j;
    if (!v) return; /* microweb answers 400 with the offset */
    j = mw_json_begin(rs, 200);
    mw_json_object(j);
    mw_json_key_string(j, "city", mw_jv_str(mw_jv_path(v, "user.address.city"), "?"));
    mw_json_key_int(j, "second", mw_jv_int(mw_jv_path(v, "items[1]"), -1));
    mw_json_key_bool(j, "admin", mw_jv_bool(mw_jv_get(v, "admin"), 0));
    mw_json_key_double(j, "ratio", mw_jv_num(mw_jv_get(v, "ratio"), 0.5));
    mw_json_key(j, "keys");
    mw_json_array(j);
    for (m = mw_jv_first(v); m; m = mw_jv_next(m)) mw_json_string(j, mw_jv_key(m));
    mw_json_close(j);
    mw_json_key(j, "echo");
    mw_json_value(j, v);
    mw_json_end(j);
}

static void upload(mw_req *rq, mw_res *rs) {
    mw_part part;
    int rc;
    memset(&part, 0, sizeof part);
    mw_status(rs, 200);
    while ((rc = mw_multipart_next(rq, &part)) > 0)
        mw_printf(rs, "[%s|%s|%s|%s|%.*s]", part.name, part.filename ? part.filename : "-",
                  part.safe_filename ? part.safe_filename : "-", part.content_type ? part.content_type : "-",
                  (int)part.len, part.data);
    mw_printf(rs, "rc=%d", rc);
}

/* ------------------------------------------------------- handler mistakes */

/* What the app logged since the last reset: each line, newline-terminated. */
static struct {
    char text[8192];
    size_t len;
    int count;
} logged;

static void capture_log(void *arg, mw_log_level level, const char *line) {
    int n = snprintf(logged.text + logged.len, sizeof logged.text - logged.len, "%s\n", line);
    (void)arg;
    (void)level;
    if (n > 0 && (size_t)n < sizeof logged.text - logged.len) logged.len += (size_t)n;
    logged.count++;
}

/* The status code is the last path segment: GET /status/-1 calls mw_status(rs, -1). */
static int code_from_path(const mw_req *rq) { return atoi(strrchr(mw_path(rq), '/') + 1); }

static void status_from_path(mw_req *rq, mw_res *rs) {
    mw_status(rs, code_from_path(rq));
    mw_printf(rs, "written after an invalid status");
}

static void text_from_path(mw_req *rq, mw_res *rs) { mw_text(rs, code_from_path(rq), "text"); }

static void error_from_path(mw_req *rq, mw_res *rs) { mw_error(rs, code_from_path(rq), "detail"); }

static void json_from_path(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, code_from_path(rq));
    mw_json_object(j);
    mw_json_key_string(j, "k", "v");
    mw_json_end(j);
}

static void text_after_json(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    (void)rq;
    mw_json_object(j);
    mw_json_end(j);
    mw_printf(rs, "garbage");
}

static void writes_nothing(mw_req *rq, mw_res *rs) {
    (void)rq;
    (void)rs;
}

static void answers_twice(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "first");
    mw_send_json(rs, 201, "{\"second\":true}");
}

static void refused_cookie(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_set_cookie(rs, "session", "a b", NULL);
    mw_text(rs, 200, "ok");
}

static void refused_header(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_set_header(rs, "X Bad", "v");
    mw_text(rs, 200, "ok");
}

/* Deleting a cookie is a whole answer: 200 with an empty body. */
static void deletes_cookie(mw_req *rq, mw_res *rs) {
    mw_cookie_opts expire = {0, 1, 0, 0, NULL, NULL, NULL};
    (void)rq;
    mw_set_cookie(rs, "session", "", &expire);
}

/* The manual's pattern: on a malformed body microweb answers 400, the handler returns. */
static void json_or_nothing(mw_req *rq, mw_res *rs) {
    if (!mw_req_json(rq)) return;
    mw_text(rs, 200, "parsed");
}

static void refused_header_and_cookie(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_set_header(rs, "X Bad", "v");
    mw_set_header(rs, "Y(bad)", "v");
    mw_set_cookie(rs, "session", "a b", NULL);
    mw_set_cookie(rs, "session", "a;b", NULL);
    mw_text(rs, 200, "ok");
}

/* Each way to give a status, with codes outside 200-599 (1xx are the server's own). */
static const struct {
    const char *target;
    mw_handler handler;
} invalid_status_routes[] = {
    {"/status/0", status_from_path},   {"/status/-1", status_from_path},  {"/status/99", status_from_path},
    {"/status/100", status_from_path}, {"/status/101", status_from_path}, {"/status/199", status_from_path},
    {"/status/600", status_from_path}, {"/status/999", status_from_path}, {"/text/42", text_from_path},
    {"/text/600", text_from_path},     {"/error/600", error_from_path},   {"/json/600", json_from_path}};

#define INVALID_STATUS_ROUTES (sizeof invalid_status_routes / sizeof invalid_status_routes[0])

static mw_app *mistakes_app(void) {
    mw_app *a = mw_app_new();
    size_t i;
    for (i = 0; i < INVALID_STATUS_ROUTES; i++)
        mw_get(a, invalid_status_routes[i].target, invalid_status_routes[i].handler);
    mw_get(a, "/text-after-json", text_after_json);
    mw_get(a, "/silent", writes_nothing);
    mw_get(a, "/twice", answers_twice);
    mw_get(a, "/bad-cookie", refused_cookie);
    mw_get(a, "/bad-header", refused_header);
    mw_get(a, "/bad-both", refused_header_and_cookie);
    mw_get(a, "/logout", deletes_cookie);
    mw_post(a, "/json", json_or_nothing);
    mw_set_logger(a, capture_log, NULL);
    return a;
}

/* GET target on a fresh log: the answer; logged.count tells how many lines it logged. */
static mw_test_res *get_logged(mw_app *a, const char *target) {
    memset(&logged, 0, sizeof logged);
    return mw_test_request(a, "GET", target, NULL, NULL, 0);
}

/* Whether the line logged names the route "GET target" (each route here is static). */
static int log_names_route(const char *target) {
    char want[128];
    snprintf(want, sizeof want, "route GET %s:", target);
    return strncmp(logged.text, want, strlen(want)) == 0;
}

/* Exactly one line logged, naming the route "GET target". */
#define CHECK_LOGGED_ONCE_NAMING(target)                                                               \
    do {                                                                                               \
        CHECK_INT(logged.count, 1);                                                                    \
        CHECK(log_names_route(target));                                                                \
        if (!log_names_route(target))                                                                  \
            printf("  GET %s logged: %.*s\n", (target), (int)strcspn(logged.text, "\n"), logged.text); \
    } while (0)

/* A handler mistake is a 500 (never the 200 a status the handler could not set leaves),
   logged on the first request to a route (a line that says what, and "answered 500"),
   silent on the next. */
static void check_mistake_is_500_logged_once(mw_app *a, const char *target, const char *says) {
    mw_test_res *r = get_logged(a, target);
    if (r->status != 500) printf("  %s answered %d\n", target, r->status);
    CHECK_INT(r->status, 500);
    CHECK(strstr(r->body, "the response could not be produced") != NULL);
    CHECK_LOGGED_ONCE_NAMING(target);
    CHECK(strstr(logged.text, says) != NULL);
    CHECK(strstr(logged.text, "answered 500\n") != NULL);
    mw_test_free(r);
    r = get_logged(a, target);
    CHECK_INT(r->status, 500);
    CHECK_INT(logged.count, 0);
    mw_test_free(r);
}

static mw_app *make_app(void) {
    mw_app *app = mw_app_new();
    mw_get(app, "/pairs", query_pairs);
    mw_post(app, "/form", form_pairs);
    mw_get(app, "/lookup", query_lookup);
    mw_get(app, "/cookies", cookies);
    mw_get(app, "/users/{id:int}", typed_user);
    mw_get(app, "/users/:name", named_user);
    mw_get(app, "/only/{id:int}", typed_user);
    mw_get(app, "/n/:v", param_int_probe);
    mw_get(app, "/files/*path", file_path);
    mw_get(app, "/headers", some_headers);
    mw_any(app, "/look/*rest", look);
    mw_post(app, "/json", json_in);
    mw_post(app, "/upload", upload);
    mw_set_limit(app, MW_LIMIT_MULTIPART_PARTS, 3);
    return app;
}

static mw_app *app;

static mw_test_res *get(const char *target) { return mw_test_request(app, "GET", target, NULL, NULL, 0); }

static mw_test_res *post(const char *target, const char *headers, const char *body) {
    return mw_test_request(app, "POST", target, headers, body, strlen(body));
}

#define CHECK_BODY(r, want) CHECK_MEM((r)->body, (r)->body_len, want)

/* ------------------------------------------------------------------- tests */

TEST(query_values_decoded_and_iterated) {
    mw_test_res *r = get("/pairs?a=1&b=x+y&c=%41%42&empty=&flag&&d=%e2%82%ac");
    CHECK_INT(r->status, 200);
    CHECK_BODY(r, "a=1;b=x y;c=AB;empty=;flag=;d=\xe2\x82\xac;");
    mw_test_free(r);
}

TEST(query_malformed_escapes_kept_as_written) {
    mw_test_res *r = get("/pairs?bad=%zz&trail=%&half=%4&nul=%00&name%3D=v");
    CHECK_INT(r->status, 200);
    CHECK_BODY(r, "bad=%zz;trail=%;half=%4;nul=%00;name==v;");
    mw_test_free(r);
}

TEST(query_lookup_by_name_and_repeated_names) {
    mw_test_res *r = get("/lookup?tag=a&q=hello+world&tag=b&t%61g=c");
    CHECK_BODY(r, "q=hello world n=3 a b c");
    mw_test_free(r);
    r = get("/lookup");
    CHECK_BODY(r, "q=(none) n=0");
    mw_test_free(r);
}

TEST(form_body_through_the_same_calls) {
    mw_test_res *r = post("/form", "Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n",
                          "name=J%C3%BCrgen+M&lang=c&lang=c%2B%2B");
    CHECK_BODY(r, "name=J\xc3\xbcrgen M;lang=c;lang=c++;");
    mw_test_free(r);
    r = post("/form", "Content-Type: text/plain\r\n", "name=x"); /* not a form: no values */
    CHECK_BODY(r, "");
    mw_test_free(r);
}

TEST(cookies_read_by_name) {
    mw_test_res *r = mw_test_request(app, "GET", "/cookies", "Cookie: a=1; session=\"abc123\"; z=9\r\n", NULL, 0);
    CHECK(strncmp(r->body, "session=abc123 ", 15) == 0);
    mw_test_free(r);
    r = mw_test_request(app, "GET", "/cookies", "Cookie: a=1\r\nCookie: session=xyz\r\n", NULL, 0);
    CHECK(strncmp(r->body, "session=xyz ", 12) == 0);
    mw_test_free(r);
    r = mw_test_request(app, "GET", "/cookies", "Cookie: sessionx=1; Session=2\r\n", NULL, 0);
    CHECK(strncmp(r->body, "session=(none) ", 15) == 0); /* names are exact and case-sensitive */
    mw_test_free(r);
}

TEST(cookies_set_with_secure_defaults_and_refused_when_unsafe) {
    mw_test_res *r = get("/cookies");
    CHECK(strstr(r->raw, "\r\nSet-Cookie: seen=1; Path=/; HttpOnly; SameSite=Lax\r\n") != NULL);
    CHECK(strstr(r->raw, "\r\nSet-Cookie: pref=dark; Path=/app; Max-Age=3600; Secure; HttpOnly; SameSite=Strict\r\n") !=
          NULL);
    CHECK(strstr(r->raw, "evil") == NULL);
    CHECK(strstr(r->body, "bad=-1,-1,-1") != NULL);
    mw_test_free(r);
}

TEST(cookie_same_site_none_needs_secure) {
    mw__worker w;
    mw_cookie_opts none = {0, 0, 0, 0, "None", NULL, NULL};
    memset(&w, 0, sizeof w);
    mw__res_reset(&w, NULL);
    CHECK_INT(mw_set_cookie(&w.res, "a", "b", &none), MW_EINVAL);
    none.secure = 1;
    CHECK_INT(mw_set_cookie(&w.res, "a", "b", &none), 0);
    none.same_site = "Sometimes";
    CHECK_INT(mw_set_cookie(&w.res, "a", "b", &none), MW_EINVAL);
    mw__worker_free(&w);
}

/* Sets cookie `name` with opts on a fresh response; returns mw_set_cookie's result. */
static int set_cookie(const char *name, const mw_cookie_opts *opts) {
    mw__worker w;
    int rc;
    memset(&w, 0, sizeof w);
    mw__res_reset(&w, NULL);
    rc = mw_set_cookie(&w.res, name, "v", opts);
    mw__worker_free(&w);
    return rc;
}

/* RFC 6265 §4.1.2.3: Domain is a host name; a ',' would start another cookie to some readers. */
TEST(cookie_domain_must_be_a_host_name) {
    static const char *const good[] = {"example.com", ".example.com", "sub-1.Example.com", "localhost", "127.0.0.1"};
    static const char *const bad[] = {
        "example.com,evil=1", "example.com, x", "exa mple.com", "ex_ample.com",  "example.com=", "", ".",
        "..example.com",      "a..b",           "example.com.", "caf\xc3\xa9.fr"};
    mw_cookie_opts o = {0, 0, 1, 0, NULL, NULL, NULL};
    size_t i;
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        o.domain = good[i];
        if (set_cookie("a", &o) != 0) printf("  refused domain %s\n", good[i]), test_checks_failed++;
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.domain = bad[i];
        if (set_cookie("a", &o) != MW_EINVAL) printf("  accepted domain \"%s\"\n", bad[i]), test_checks_failed++;
    }
}

/* RFC 6265bis §4.1.3: browsers drop prefixed cookies without these attributes. */
TEST(cookie_prefixes_need_their_attributes) {
    mw_cookie_opts plain = {0, 0, 0, 0, NULL, NULL, NULL}, secure = {0, 0, 1, 0, NULL, NULL, NULL};
    mw_cookie_opts secure_path = {0, 0, 1, 0, NULL, "/app", NULL}, secure_root = {0, 0, 1, 0, NULL, "/", NULL};
    mw_cookie_opts secure_domain = {0, 0, 1, 0, NULL, NULL, "example.com"};
    CHECK_INT(set_cookie("__Secure-id", NULL), MW_EINVAL);
    CHECK_INT(set_cookie("__Secure-id", &plain), MW_EINVAL);
    CHECK_INT(set_cookie("__secure-id", &plain), MW_EINVAL); /* browsers match the prefix in any case */
    CHECK_INT(set_cookie("__Secure-id", &secure), 0);
    CHECK_INT(set_cookie("__Secure-id", &secure_domain), 0);
    CHECK_INT(set_cookie("__Host-id", &plain), MW_EINVAL);
    CHECK_INT(set_cookie("__HOST-id", &plain), MW_EINVAL);
    CHECK_INT(set_cookie("__Host-id", &secure_path), MW_EINVAL);
    CHECK_INT(set_cookie("__Host-id", &secure_domain), MW_EINVAL);
    CHECK_INT(set_cookie("__Host-id", &secure), 0); /* path NULL is "/" */
    CHECK_INT(set_cookie("__Host-id", &secure_root), 0);
    CHECK_INT(set_cookie("__Hostess", &plain), 0); /* not the prefix */
}

TEST(typed_int_route_matches_only_int64_values) {
    mw_test_res *r = get("/users/42");
    CHECK_BODY(r, "{\"id\":42}");
    mw_test_free(r);
    r = get("/users/-9223372036854775808");
    CHECK_BODY(r, "{\"id\":-9223372036854775808}");
    mw_test_free(r);
    r = get("/users/bob"); /* not an int: the next route in priority order answers */
    CHECK_BODY(r, "bob");
    mw_test_free(r);
    r = get("/users/9223372036854775808"); /* out of range: not an int64 */
    CHECK_BODY(r, "9223372036854775808");
    mw_test_free(r);
    r = get("/only/12x"); /* no other route: 404 before any handler runs */
    CHECK_INT(r->status, 404);
    mw_test_free(r);
    r = get("/only/99999999999999999999");
    CHECK_INT(r->status, 404);
    mw_test_free(r);
}

TEST(param_int_reads_and_range_checks) {
    static const char *const cases[][2] = {{"/n/007", "rc=0 v=7"},
                                           {"/n/9223372036854775807", "rc=0 v=9223372036854775807"},
                                           {"/n/-9223372036854775808", "rc=0 v=-9223372036854775808"},
                                           {"/n/9223372036854775808", "rc=-1 v=0"}, /* one past INT64_MAX */
                                           {"/n/-9223372036854775809", "rc=-1 v=0"},
                                           {"/n/12x", "rc=-1 v=0"},
                                           {"/n/-", "rc=-1 v=0"},
                                           {"/n/+5", "rc=-1 v=0"}};
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mw_test_res *r = get(cases[i][0]);
        if (r->body_len != strlen(cases[i][1]) || memcmp(r->body, cases[i][1], r->body_len) != 0)
            printf("  %s -> %.*s\n", cases[i][0], (int)r->body_len, r->body), test_checks_failed++;
        mw_test_free(r);
    }
}

TEST(typed_patterns_validated_at_registration) {
    mw_app *a = mw_app_new();
    CHECK_INT(mw_get(a, "/x/{id:float}", named_user), MW_EINVAL);
    CHECK_INT(mw_get(a, "/x/{id", named_user), MW_EINVAL);
    CHECK_INT(mw_get(a, "/x/{}", named_user), MW_EINVAL);
    CHECK_INT(mw_get(a, "/x/{id:int}/{id}", named_user), MW_EINVAL);
    CHECK_INT(mw_get(a, "/x/{name:str}", named_user), 0);
    CHECK_INT(mw_get(a, "/x/:name", named_user), MW_EEXIST); /* the same route spelled another way */
    mw_app_free(a);
}

/* A parameter or wildcard value can be joined to a directory: nothing in it leads out
   of that directory or past a check that compares names. */
TEST(path_values_are_safe_to_join_to_a_directory) {
    static const char *const served[][2] = {{"/files/a/b.txt", "a/b.txt"}, {"/files/", ""},
                                            {"/files/dir/", "dir/"},       {"/files/a%20b/c", "a b/c"},
                                            {"/files/..a/b..", "..a/b.."}, {"/users/a%2Cb", "a,b"}};
    static const char *const refused[][2] = {
        {"/files/%2fetc%2fpasswd", "encoded '/' (%2F) in path parameter"},
        {"/files//etc/hostname", "path parameter starts with '/'"},
        {"/files//", "path parameter starts with '/'"},
        {"/files/a//b", "empty segment (//) in path parameter"},
        {"/files/a%2fb", "encoded '/' (%2F) in path parameter"},
        {"/files/a%2Fb", "encoded '/' (%2F) in path parameter"},
        {"/files/a%5cb", "backslash in path parameter"},
        {"/files/a\\b", "backslash in path parameter"},
        {"/files/%2e%2e/x", "dot-segment in path parameter"},
        {"/files/a%00b", "malformed percent-encoding or NUL in path parameter"},
        {"/users/%2f", "encoded '/' (%2F) in path parameter"},
        {"/users/%5c", "backslash in path parameter"},
    };
    size_t i;
    for (i = 0; i < sizeof served / sizeof served[0]; i++) {
        mw_test_res *r = get(served[i][0]);
        if (r->status != 200 || r->body_len != strlen(served[i][1]) || memcmp(r->body, served[i][1], r->body_len) != 0)
            printf("  %s -> %d %.*s\n", served[i][0], r->status, (int)r->body_len, r->body), test_checks_failed++;
        mw_test_free(r);
    }
    for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        mw_test_res *r = get(refused[i][0]);
        if (r->status != 400 || !strstr(r->body, refused[i][1]))
            printf("  %s -> %d %.*s\n", refused[i][0], r->status, (int)r->body_len, r->body), test_checks_failed++;
        mw_test_free(r);
    }
}

/* Runs fn with stderr going to a temporary file; returns what it printed there. */
static const char *stderr_of(void (*fn)(void)) {
    static char out[4096];
    FILE *tmp = tmpfile();
    int saved = dup(2);
    size_t n;
    fflush(stderr);
    dup2(fileno(tmp), 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    n = fread(out, 1, sizeof out - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    return out;
}

static int flask_rc[4], flask_setup_errors;

static void register_flask_patterns(void) {
    mw_app *a = mw_app_new();
    flask_rc[0] = mw_get(a, "/fl/<int:id>", named_user);
    flask_rc[1] = mw_get(a, "/fl/<name>/x", named_user);
    flask_rc[2] = mw_get(a, "/fl/<path:rest>/y", named_user);
    flask_rc[3] = mw_get(a, "/fl/a<b", named_user);
    flask_setup_errors = a->setup_errors; /* what makes mw_run and mw_serve refuse to start */
    mw_app_free(a);
}

/* Flask's "<int:id>" would otherwise be static text that matches only itself. */
TEST(router_refuses_flask_spelling_and_names_microweb_spelling) {
    const char *err = stderr_of(register_flask_patterns);
    CHECK_INT(flask_rc[0], MW_EINVAL);
    CHECK_INT(flask_rc[1], MW_EINVAL);
    CHECK_INT(flask_rc[2], MW_EINVAL);
    CHECK_INT(flask_rc[3], MW_EINVAL);
    CHECK_INT(flask_setup_errors, 4);
    CHECK(strstr(err, "microweb: route GET /fl/<int:id>: '<int:id>' is Flask's spelling; microweb writes {id:int}\n"));
    CHECK(strstr(err, "microweb: route GET /fl/<name>/x: '<name>' is Flask's spelling; microweb writes {name} or "
                      ":name\n"));
    CHECK(strstr(err, "'<path:rest>' is Flask's spelling; microweb writes *rest (a wildcard, the last segment)\n"));
    CHECK(strstr(err, "microweb: route GET /fl/a<b: '<' and '>' are not pattern characters"));
}

TEST(json_body_read_by_path_and_typed_getters) {
    mw_test_res *r = post("/json", "Content-Type: application/json\r\n",
                          "{\"user\":{\"address\":{\"city\":\"Z\\u00fcrich\"}},\"items\":[10,20,30],\"admin\":true}");
    CHECK_INT(r->status, 200);
    CHECK_BODY(r,
               "{\"city\":\"Z\xc3\xbcrich\",\"second\":20,\"admin\":true,\"ratio\":0.5,\"keys\":[\"user\",\"items\","
               "\"admin\"],"
               "\"echo\":{\"user\":{\"address\":{\"city\":\"Z\xc3\xbcrich\"}},\"items\":[10,20,30],\"admin\":true}}");
    mw_test_free(r);
}

TEST(json_body_malformed_is_400_with_offset) {
    mw_test_res *r = post("/json", "Content-Type: application/json\r\n", "{\"a\": 1,}");
    CHECK_INT(r->status, 400);
    CHECK_BODY(r,
               "{\"status\":400,\"error\":\"Bad Request\",\"detail\":\"invalid JSON at byte 8: object key expected\","
               "\"offset\":8}");
    mw_test_free(r);
    r = post("/json", "", "");
    CHECK_INT(r->status, 400);
    CHECK(strstr(r->body, "\"offset\":0") != NULL);
    mw_test_free(r);
}

TEST(json_reader_standalone_api) {
    const char *text = " {\"a\":[1,2.5,\"x\",null,{\"b\":false}],\"a\":\"last\",\"n\":-0,\"big\":12345678901234567890}";
    size_t off = 99;
    const char *problem = NULL;
    mw_jv_doc *d = mw_jv_parse(text, strlen(text), &off, &problem);
    const mw_jv *root = mw_jv_root(d);
    CHECK(d != NULL);
    CHECK_INT(mw_jv_kind(root), MW_JV_OBJECT);
    CHECK_INT(mw_jv_len(root), 4);
    CHECK_STR(mw_jv_str(mw_jv_get(root, "a"), "?"), "last"); /* duplicate keys: the last wins */
    CHECK_INT(mw_jv_int(mw_jv_get(root, "big"), -1), -1);    /* beyond int64: the default */
    CHECK(mw_jv_num(mw_jv_get(root, "big"), 0) > 1.2e19);
    CHECK(mw_jv_path(root, "a[0]") == NULL); /* "a" is the string now */
    CHECK(mw_jv_path(root, "nope.x[3]") == NULL);
    CHECK_STR(mw_jv_str(mw_jv_get(root, "zzz"), "default"), "default");
    mw_jv_free(d);
    d = mw_jv_parse("[1,2", 4, &off, &problem);
    CHECK(d == NULL);
    CHECK_INT(off, 4);
    CHECK_STR(problem, "',' or ']' expected");
    d = mw_jv_parse("{\"k\":[{\"v\":[7,8]}]}", 19, NULL, NULL);
    CHECK_INT(mw_jv_int(mw_jv_path(mw_jv_root(d), "k[0].v[1]"), 0), 8);
    mw_jv_free(d);
}

/* A string with \u0000 in it has no C string form: mw_jv_str gives the default rather
   than the bytes before the NUL ("admin\u0000x" must never read as "admin"). */
TEST(json_string_holding_nul_is_read_whole_or_not_at_all) {
    const char *text = "{\"name\":\"admin\\u0000x\",\"plain\":\"abc\",\"empty\":\"\",\"n\":1}";
    mw_jv_doc *d = mw_jv_parse(text, strlen(text), NULL, NULL);
    const mw_jv *root = mw_jv_root(d), *name = mw_jv_get(root, "name");
    mw_str s = mw_jv_string(name);
    CHECK_INT(s.len, 7);
    CHECK(s.ptr && memcmp(s.ptr, "admin\0x", 7) == 0);
    CHECK_INT(mw_jv_len(name), 7);
    CHECK_STR(mw_jv_str(name, "def"), "def");
    CHECK(mw_jv_str(name, NULL) == NULL);
    s = mw_jv_string(mw_jv_get(root, "plain"));
    CHECK_MEM(s.ptr, s.len, "abc");
    CHECK_STR(mw_jv_str(mw_jv_get(root, "plain"), "def"), "abc");
    s = mw_jv_string(mw_jv_get(root, "empty"));
    CHECK(s.ptr != NULL && s.len == 0);
    s = mw_jv_string(mw_jv_get(root, "n")); /* not a string */
    CHECK(s.ptr == NULL && s.len == 0);
    s = mw_jv_string(NULL);
    CHECK(s.ptr == NULL && s.len == 0);
    mw_jv_free(d);
}

/* Keys are compared whole, by length: a key with a NUL in it is not its prefix. */
TEST(json_keys_holding_nul_are_matched_whole) {
    const char *text = "{\"admin\\u0000x\":1,\"a\\u0000\":2,\"a\":3}";
    mw_jv_doc *d = mw_jv_parse(text, strlen(text), NULL, NULL);
    const mw_jv *root = mw_jv_root(d);
    mw__buf out;
    mw_json j;
    CHECK(mw_jv_get(root, "admin") == NULL);
    CHECK(mw_jv_path(root, "admin") == NULL);
    CHECK_INT(mw_jv_int(mw_jv_get(root, "a"), 0), 3);
    memset(&out, 0, sizeof out);
    mw__json_init(&j, &out);
    CHECK_INT(mw_json_value(&j, root), 0);
    CHECK_INT(mw_json_end(&j), 0);
    CHECK_MEM(out.data, out.len, "{\"admin\\u0000x\":1,\"a\\u0000\":2,\"a\":3}");
    mw__buf_free(&out);
    mw_jv_free(d);
}

TEST(json_reader_strictness) {
    static const char *const bad[] = {
        "[1,]",        "{\"a\":1,}", "[01]",       "[1.]",      "[.5]",  "['a']",          "[\"\\ud800\"]",
        "[\"\\x41\"]", "[\"a\tb\"]", "[\"\xff\"]", "/* c */ 1", "[1] x", "\xef\xbb\xbf{}", "[NaN]",
        "[Infinity]",  "[-]",        "[+1]",       "tru",       ""};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mw_jv_doc *d = mw_jv_parse(bad[i], strlen(bad[i]), NULL, NULL);
        if (d) printf("  accepted %s\n", bad[i]), test_checks_failed++;
        mw_jv_free(d);
    }
}

TEST(json_reader_nesting_limit) {
    char deep[MW_JSON_MAX_DEPTH + 2];
    mw_jv_doc *d;
    memset(deep, '[', sizeof deep);
    d = mw_jv_parse(deep, sizeof deep, NULL, NULL);
    CHECK(d == NULL);
    d = mw_jv_parse("[[[[]]]]", 8, NULL, NULL);
    CHECK(d != NULL);
    mw_jv_free(d);
}

#define MULTIPART "Content-Type: multipart/form-data; boundary=XyZ\r\n"

TEST(multipart_parts_without_copying) {
    const char *body = "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHello\r\n"
                       "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../../etc/passwd\"\r\n"
                       "Content-Type: text/plain\r\n\r\nroot:x:0\r\n--XyZ--\r\nepilogue";
    mw_test_res *r = post("/upload", MULTIPART, body);
    CHECK_BODY(r, "[title|-|-|-|Hello][file|../../etc/passwd|passwd|text/plain|root:x:0]rc=0");
    mw_test_free(r);
}

TEST(multipart_quoted_parameters_are_skipped_whole) {
    /* a ';' or "name=" inside a client's file name must not pose as a parameter */
    const char *body = "--XyZ\r\nContent-Disposition: form-data; filename=\"x; name=admin\"; name=\"user\"\r\n\r\n"
                       "D\r\n--XyZ--\r\n";
    const char *spoof = "--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nD\r\n--XX--\r\n";
    mw_test_res *r = post("/upload", MULTIPART, body);
    CHECK_BODY(r, "[user|x; name=admin|x; name=admin|-|D]rc=0");
    mw_test_free(r);
    r = post("/upload", "Content-Type: multipart/form-data; x=\"; boundary=EVIL\"; boundary=XX\r\n", spoof);
    CHECK_BODY(r, "[a|-|-|-|D]rc=0");
    mw_test_free(r);
}

TEST(multipart_safe_filenames) {
    static const char *const cases[][2] = {{"C:\\\\Users\\\\me\\\\notes.txt", "notes.txt"},
                                           {"..", "_"},
                                           {"a/b/..", "_"},
                                           {"x:y.txt", "x_y.txt"},
                                           {"plain.bin", "plain.bin"},
                                           {"dir/", "_"},
                                           {"\\\\server\\\\share\\\\f", "f"}};
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[512], want[256];
        mw_test_res *r;
        snprintf(body, sizeof body,
                 "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"%s\"\r\n\r\nD\r\n--XyZ--\r\n",
                 cases[i][0]);
        r = post("/upload", MULTIPART, body);
        snprintf(want, sizeof want, "|%s|-|D]rc=0", cases[i][1]);
        if (!r->body || !strstr(r->body, want))
            printf("  %s -> %.*s\n", cases[i][0], (int)r->body_len, r->body), test_checks_failed++;
        mw_test_free(r);
    }
}

TEST(multipart_malformed_is_400_with_reason) {
    static const char *const bad[][2] = {
        {"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end", "part not terminated by a boundary"},
        {"nothing here", "no boundary in the body"},
        {"--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--XyZ--", "part is not form-data"},
        {"--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--", "part without a form-data name"},
        {"--XyZ\r\nNo-Colon\r\n\r\nx\r\n--XyZ--", "malformed part header"},
        {"--XyZgarbage\r\n", "malformed boundary line"}};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mw_test_res *r = post("/upload", MULTIPART, bad[i][0]);
        if (r->status != 400 || !strstr(r->body, bad[i][1]))
            printf("  case %lu: %d %.*s\n", (unsigned long)i, r->status, (int)r->body_len, r->body),
                test_checks_failed++;
        mw_test_free(r);
    }
}

TEST(multipart_part_count_limit_is_413) {
    const char *body = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n"
                       "--XyZ\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n2\r\n"
                       "--XyZ\r\nContent-Disposition: form-data; name=\"c\"\r\n\r\n3\r\n"
                       "--XyZ\r\nContent-Disposition: form-data; name=\"d\"\r\n\r\n4\r\n--XyZ--";
    mw_test_res *r = post("/upload", MULTIPART, body);
    CHECK_INT(r->status, 413);
    CHECK(strstr(r->body, "too many parts") != NULL);
    mw_test_free(r);
}

TEST(multipart_wrong_content_type_is_415) {
    mw_test_res *r = post("/upload", "Content-Type: text/plain\r\n", "x");
    CHECK_INT(r->status, 415);
    mw_test_free(r);
}

TEST(test_client_reports_status_headers_and_body) {
    mw_test_res *r = mw_test_request(app, "HEAD", "/users/5", NULL, NULL, 0);
    CHECK_INT(r->status, 200);
    CHECK_STR(mw_test_header(r, "content-length"), "8");
    CHECK_STR(mw_test_header(r, "Content-Type"), "application/json");
    CHECK(mw_test_header(r, "X-Nope") == NULL);
    CHECK_INT(r->body_len, 0);
    mw_test_free(r);
    r = mw_test_request(app, "DELETE", "/users/5", NULL, NULL, 0);
    CHECK_INT(r->status, 405);
    CHECK_STR(mw_test_header(r, "Allow"), "GET, HEAD, OPTIONS");
    mw_test_free(r);
}

/* The headers string is a convenience: lines end with CRLF, LF, or (the last) nothing. */
TEST(test_client_header_lines_with_or_without_line_ends) {
    static const char *const spellings[] = {"X-A: 1\r\nX-B: 2\r\n", "X-A: 1\r\nX-B: 2", "X-A: 1\nX-B: 2\n",
                                            "X-A: 1\nX-B: 2", "X-A: 1\r\n\r\nX-B: 2"};
    size_t i;
    mw_test_res *r;
    for (i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        r = mw_test_request(app, "GET", "/headers", spellings[i], NULL, 0);
        CHECK_INT(r->status, 200);
        CHECK_BODY(r, "a=1 b=2 host=test");
        mw_test_free(r);
    }
    r = post("/json", "Content-Type: application/json", "{\"items\":[1,2]}");
    CHECK_INT(r->status, 200);
    CHECK(strstr(r->body, "\"second\":2") != NULL);
    mw_test_free(r);
}

TEST(test_client_host_header_replaces_default) {
    mw_test_res *r = mw_test_request(app, "GET", "/headers", "Host: example.org", NULL, 0);
    CHECK_INT(r->status, 200);
    CHECK_BODY(r, "a=- b=- host=example.org");
    mw_test_free(r);
    r = mw_test_request(app, "GET", "/headers", "X-A: 1\r\nhost: api.example.org:8443\r\n", NULL, 0);
    CHECK_BODY(r, "a=1 b=- host=api.example.org:8443");
    mw_test_free(r);
}

/* Headers as a NULL-terminated list of strings, each one or more lines, Host given or not */
TEST(test_client_headers_as_a_list_of_strings) {
    static const char *const plain[] = {"X-A: 1", "X-B: 2\r\n", NULL}, *const lines[] = {"X-A: 1\nX-B: 2", NULL},
                             *const host[] = {"Host: example.org", "X-B: 2", NULL}, *const none[] = {NULL};
    mw_test_res *r = mw_test_requestv(app, "GET", "/headers", plain, NULL, 0);
    CHECK_INT(r->status, 200);
    CHECK_BODY(r, "a=1 b=2 host=test");
    mw_test_free(r);
    r = mw_test_requestv(app, "GET", "/headers", lines, NULL, 0);
    CHECK_BODY(r, "a=1 b=2 host=test");
    mw_test_free(r);
    r = mw_test_requestv(app, "GET", "/headers", host, NULL, 0);
    CHECK_BODY(r, "a=- b=2 host=example.org");
    mw_test_free(r);
    r = mw_test_requestv(app, "GET", "/headers", none, NULL, 0);
    CHECK_BODY(r, "a=- b=- host=test");
    mw_test_free(r);
    r = mw_test_requestv(app, "GET", "/headers", NULL, NULL, 0);
    CHECK_BODY(r, "a=- b=- host=test");
    mw_test_free(r);
}

/* mw_test_jsonv adds Content-Type and Content-Length after the list, unless it names a type */
TEST(test_client_json_with_a_list_of_headers) {
    static const char *const plain[] = {"X-A: 1", NULL}, *const typed[] = {"content-type: text/plain", NULL};
    mw_test_res *r = mw_test_jsonv(app, "POST", "/look/j", plain, "{}");
    CHECK_BODY(r, "POST /look/j HTTP/1.1 from 127.0.0.1 port 0;X-A=1;Host=test;Content-Type=application/json;"
                  "Content-Length=2;");
    mw_test_free(r);
    r = mw_test_jsonv(app, "POST", "/look/j", typed, "{}");
    CHECK_BODY(r, "POST /look/j HTTP/1.1 from 127.0.0.1 port 0;content-type=text/plain;Host=test;Content-Length=2;");
    mw_test_free(r);
    r = mw_test_jsonv(app, "GET", "/look/j", plain, NULL);
    CHECK_BODY(r, "GET /look/j HTTP/1.1 from 127.0.0.1 port 0;X-A=1;Host=test;");
    mw_test_free(r);
}

TEST(test_client_raw_bytes_and_pipelining) {
    static const char raw[] = "GET /users/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /users/2 HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char smuggle[] =
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    static const char partial[] = "GET / HTTP/1.1\r\nHost: x\r\n";
    mw_test_res *r = mw_test_raw(app, raw, sizeof raw - 1);
    CHECK_INT(r->status, 200);
    CHECK_BODY(r, "{\"id\":1}");
    CHECK(strstr(r->raw, "{\"id\":1}") < strstr(r->raw, "{\"id\":2}"));
    mw_test_free(r);
    r = mw_test_raw(app, smuggle, sizeof smuggle - 1);
    CHECK_INT(r->status, 400);
    CHECK_STR(mw_test_header(r, "Connection"), "close");
    mw_test_free(r);
    r = mw_test_raw(app, partial, sizeof partial - 1); /* incomplete: no answer yet */
    CHECK_INT(r->status, 0);
    mw_test_free(r);
}

TEST(header_fields_iterated_in_order_received_with_duplicates_and_spelling) {
    mw_test_res *r =
        mw_test_request(app, "GET", "/look/h", "Host: h\r\nx-Trace: 1\r\nAccept: a\r\nX-TRACE: 2\r\n", NULL, 0);
    CHECK_INT(r->status, 200);
    CHECK_BODY(r, "GET /look/h HTTP/1.1 from 127.0.0.1 port 0;Host=h;x-Trace=1;Accept=a;X-TRACE=2;");
    mw_test_free(r);
}

TEST(header_next_gives_each_field_once_then_0) {
    static const char raw[] = "GET /look/x HTTP/1.1\r\nHost: x\r\n\r\n";
    mw_test_res *r = mw_test_raw(app, raw, sizeof raw - 1);
    CHECK_BODY(r, "GET /look/x HTTP/1.1 from 127.0.0.1 port 0;Host=x;");
    mw_test_free(r);
}

TEST(target_is_the_request_target_as_received) {
    static const char absolute[] = "PUT http://h:8080/look/p?q=%41 HTTP/1.1\r\nHost: h:8080\r\n\r\n";
    static const char no_query[] = "DELETE /look/a%2Cb HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char empty_query[] = "GET /look/e? HTTP/1.1\r\nHost: x\r\n\r\n";
    mw_test_res *r = get("/look/a%20b?x=%41&y=+1&z");
    CHECK(strncmp(r->body, "GET /look/a%20b?x=%41&y=+1&z HTTP/1.1 ", 38) == 0);
    mw_test_free(r);
    r = mw_test_raw(app, absolute, sizeof absolute - 1);
    CHECK(strncmp(r->body, "PUT http://h:8080/look/p?q=%41 HTTP/1.1 ", 40) == 0);
    mw_test_free(r);
    r = mw_test_raw(app, no_query, sizeof no_query - 1);
    CHECK(strncmp(r->body, "DELETE /look/a%2Cb HTTP/1.1 ", 28) == 0);
    mw_test_free(r);
    r = mw_test_raw(app, empty_query, sizeof empty_query - 1);
    CHECK(strncmp(r->body, "GET /look/e? HTTP/1.1 ", 22) == 0);
    mw_test_free(r);
}

TEST(http_version_names_1_0_and_1_1) {
    static const char v10[] = "GET /look/v HTTP/1.0\r\n\r\n";
    static const char v19[] = "GET /look/v HTTP/1.9\r\nHost: x\r\n\r\n"; /* RFC 9110 §2.5: answered as 1.1 */
    mw_test_res *r = mw_test_raw(app, v10, sizeof v10 - 1);
    CHECK_BODY(r, "GET /look/v HTTP/1.0 from 127.0.0.1 port 0;");
    mw_test_free(r);
    r = mw_test_raw(app, v19, sizeof v19 - 1);
    CHECK(strncmp(r->body, "GET /look/v HTTP/1.1 ", 21) == 0);
    mw_test_free(r);
}

TEST(test_client_requests_come_from_127_0_0_1_port_0) {
    mw_test_res *r = mw_test_request(app, "POST", "/look/c", NULL, "b", 1);
    CHECK(strstr(r->body, " from 127.0.0.1 port 0;") != NULL);
    mw_test_free(r);
}

static char after_saw[256];

static void note_target_and_headers(mw_req *rq, mw_res *rs, void *arg) {
    size_t cursor = 0, n = 0;
    const char *name, *value;
    (void)rs, (void)arg;
    while (mw_header_next(rq, &cursor, &name, &value) == 1) n++;
    snprintf(after_saw, sizeof after_saw, "%s %s %s [%lu fields]", mw_method(rq), mw_target(rq), mw_http_version(rq),
             (unsigned long)n);
}

/* An after hook sees a refusal whose head was not read as an empty request: no target
   or version left over from the request before it on the connection (the refusal is
   answered in HTTP/1.1). */
TEST(refused_request_line_has_an_empty_target_in_after_hooks) {
    static const char raw[] = "GET /look/first?q HTTP/1.1\r\nHost: x\r\n\r\n\x01"
                              "BAD / HTTP/1.1\r\nHost: x\r\n\r\n",
                      raw10[] = "GET /look/first HTTP/1.0\r\nConnection: keep-alive\r\n\r\n\x01"
                                "BAD / HTTP/1.0\r\n\r\n";
    mw_app *a = mw_app_new();
    mw_test_res *r;
    mw_any(a, "/look/*rest", look);
    mw_after(a, NULL, note_target_and_headers, NULL);
    r = mw_test_raw(a, raw, sizeof raw - 1);
    CHECK(strstr(r->raw, "400 Bad Request") != NULL);
    CHECK_STR(after_saw, "  HTTP/1.1 [0 fields]");
    mw_test_free(r);
    r = mw_test_raw(a, raw10, sizeof raw10 - 1);
    CHECK(strstr(r->raw, "HTTP/1.1 400 Bad Request") != NULL);
    CHECK_STR(after_saw, "  HTTP/1.1 [0 fields]");
    mw_test_free(r);
    CHECK(mw_http_version(NULL) == NULL);
    mw_app_free(a);
}

TEST(invalid_status_codes_answer_500_and_log_the_route_once) {
    mw_app *a = mistakes_app();
    size_t i;
    for (i = 0; i < INVALID_STATUS_ROUTES; i++)
        check_mistake_is_500_logged_once(a, invalid_status_routes[i].target, "status");
    mw_app_free(a);
}

/* mw_printf after a finished JSON document would send "{}garbage" as application/json. */
TEST(body_text_after_json_end_answers_500_and_logs_once) {
    mw_app *a = mistakes_app();
    mw_test_res *r;
    check_mistake_is_500_logged_once(a, "/text-after-json", "mw_printf");
    r = get_logged(a, "/text-after-json");
    CHECK(strstr(r->raw, "garbage") == NULL);
    mw_test_free(r);
    mw_app_free(a);
}

TEST(handler_writing_nothing_answers_500_and_logs_once) {
    mw_app *a = mistakes_app();
    check_mistake_is_500_logged_once(a, "/silent", "without");
    mw_app_free(a);
}

TEST(second_whole_response_is_sent_and_logged_once) {
    mw_app *a = mistakes_app();
    int round;
    for (round = 0; round < 2; round++) {
        mw_test_res *r = get_logged(a, "/twice");
        CHECK_INT(r->status, 201);
        CHECK_BODY(r, "{\"second\":true}");
        CHECK_STR(mw_test_header(r, "Content-Type"), "application/json");
        if (round == 0) CHECK_LOGGED_ONCE_NAMING("/twice");
        else CHECK_INT(logged.count, 0);
        mw_test_free(r);
    }
    mw_app_free(a);
}

/* A refused call leaves the rest of the response as it was (200 "ok", no Set-Cookie),
   and says so in the log: one line on the first request to the route, none after. */
static void check_refusal_logged_once(mw_app *a, const char *target) {
    int round;
    for (round = 0; round < 2; round++) {
        mw_test_res *r = get_logged(a, target);
        CHECK_INT(r->status, 200);
        CHECK_BODY(r, "ok");
        CHECK(mw_test_header(r, "Set-Cookie") == NULL);
        if (round == 0) CHECK_LOGGED_ONCE_NAMING(target);
        else CHECK_INT(logged.count, 0);
        mw_test_free(r);
    }
}

TEST(refused_header_logged_once_per_route) {
    mw_app *a = mistakes_app();
    check_refusal_logged_once(a, "/bad-header");
    mw_app_free(a);
}

TEST(refused_cookie_logged_once_per_route) {
    mw_app *a = mistakes_app();
    check_refusal_logged_once(a, "/bad-cookie");
    mw_app_free(a);
}

/* Setting a cookie is calling something on the response: not a handler that wrote nothing. */
TEST(handler_only_deleting_a_cookie_answers_200) {
    mw_app *a = mistakes_app();
    mw_test_res *r = get_logged(a, "/logout");
    CHECK_INT(r->status, 200);
    CHECK_INT(r->body_len, 0);
    CHECK_STR(mw_test_header(r, "Set-Cookie"), "session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
    CHECK_INT(logged.count, 0);
    mw_test_free(r);
    mw_app_free(a);
}

/* A handler that returns at once when mw_req_json finds the body malformed made no
   mistake: the answer is the 400, and nothing is logged (a line would also spend the
   route's one "returned without writing" line on a false alarm). */
TEST(handler_returning_on_malformed_json_is_no_mistake) {
    mw_app *a = mistakes_app();
    mw_test_res *r;
    memset(&logged, 0, sizeof logged);
    r = mw_test_request(a, "POST", "/json", "Content-Type: application/json", "{\"a\":", 5);
    CHECK_INT(r->status, 400);
    CHECK_INT(logged.count, 0);
    if (logged.count) printf("  logged: %s", logged.text);
    mw_test_free(r);
    mw_app_free(a);
}

/* Once per route and kind: two refused headers and two refused cookies in one handler
   are two lines (a header one, a cookie one), then none. */
TEST(refusals_logged_once_per_route_and_kind) {
    mw_app *a = mistakes_app();
    mw_test_res *r = get_logged(a, "/bad-both");
    CHECK_INT(r->status, 200);
    CHECK_INT(logged.count, 2);
    CHECK(strstr(logged.text, "mw_set_header") != NULL);
    CHECK(strstr(logged.text, "mw_set_cookie") != NULL);
    mw_test_free(r);
    r = get_logged(a, "/bad-both");
    CHECK_INT(logged.count, 0);
    mw_test_free(r);
    mw_app_free(a);
}

int main(void) {
    app = make_app();
    RUN(query_values_decoded_and_iterated);
    RUN(query_malformed_escapes_kept_as_written);
    RUN(query_lookup_by_name_and_repeated_names);
    RUN(form_body_through_the_same_calls);
    RUN(cookies_read_by_name);
    RUN(cookies_set_with_secure_defaults_and_refused_when_unsafe);
    RUN(cookie_same_site_none_needs_secure);
    RUN(cookie_domain_must_be_a_host_name);
    RUN(cookie_prefixes_need_their_attributes);
    RUN(typed_int_route_matches_only_int64_values);
    RUN(param_int_reads_and_range_checks);
    RUN(typed_patterns_validated_at_registration);
    RUN(path_values_are_safe_to_join_to_a_directory);
    RUN(router_refuses_flask_spelling_and_names_microweb_spelling);
    RUN(json_body_read_by_path_and_typed_getters);
    RUN(json_body_malformed_is_400_with_offset);
    RUN(json_reader_standalone_api);
    RUN(json_string_holding_nul_is_read_whole_or_not_at_all);
    RUN(json_keys_holding_nul_are_matched_whole);
    RUN(json_reader_strictness);
    RUN(json_reader_nesting_limit);
    RUN(multipart_parts_without_copying);
    RUN(multipart_quoted_parameters_are_skipped_whole);
    RUN(multipart_safe_filenames);
    RUN(multipart_malformed_is_400_with_reason);
    RUN(multipart_part_count_limit_is_413);
    RUN(multipart_wrong_content_type_is_415);
    RUN(test_client_reports_status_headers_and_body);
    RUN(test_client_header_lines_with_or_without_line_ends);
    RUN(test_client_host_header_replaces_default);
    RUN(test_client_headers_as_a_list_of_strings);
    RUN(test_client_json_with_a_list_of_headers);
    RUN(test_client_raw_bytes_and_pipelining);
    RUN(header_fields_iterated_in_order_received_with_duplicates_and_spelling);
    RUN(header_next_gives_each_field_once_then_0);
    RUN(target_is_the_request_target_as_received);
    RUN(http_version_names_1_0_and_1_1);
    RUN(test_client_requests_come_from_127_0_0_1_port_0);
    RUN(refused_request_line_has_an_empty_target_in_after_hooks);
    RUN(invalid_status_codes_answer_500_and_log_the_route_once);
    RUN(body_text_after_json_end_answers_500_and_logs_once);
    RUN(handler_writing_nothing_answers_500_and_logs_once);
    RUN(second_whole_response_is_sent_and_logged_once);
    RUN(refused_header_logged_once_per_route);
    RUN(refused_cookie_logged_once_per_route);
    RUN(refusals_logged_once_per_route_and_kind);
    RUN(handler_only_deleting_a_cookie_answers_200);
    RUN(handler_returning_on_malformed_json_is_no_mistake);
    mw_app_free(app);
    return test_summary();
}
