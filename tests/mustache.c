/* mustache.c - templates (microweb's Mustache) against the language's specification:
   every case of tests/vectors/mustache-spec/ (comments, delimiters, interpolation,
   inverted, partials, sections, ~inheritance) renders its expected text through
   mw_render and the in-process test client; then escaping, error positions and the
   setup errors that stop mw_run. Run from the repository's root. */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"

#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define CASE_NAME "(spec case)"

static const char *const spec_files[] = {"comments", "delimiters", "interpolation", "inverted",
                                         "partials", "sections",   "~inheritance"};

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *data;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = (char *)malloc((size_t)n + 1);
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    if (data) data[n] = '\0';
    *len = (size_t)n;
    fclose(f);
    return data;
}

static void render_view(mw_req *rq, mw_res *rs) { mw_render(rs, 200, CASE_NAME, (const mw_jv *)mw_userdata(rq)); }

/* A case passes when its template, with its partials, renders exactly "expected". */
static int run_case(const char *file, const mw_jv *c) {
    mw_app *app = mw_app_new();
    const mw_jv *p;
    const char *name = mw_jv_str(mw_jv_get(c, "name"), "?");
    mw_str want = mw_jv_string(mw_jv_get(c, "expected"));
    mw_test_res *r;
    int ok;
    for (p = mw_jv_first(mw_jv_get(c, "partials")); p; p = mw_jv_next(p))
        mw_template(app, mw_jv_key(p), mw_jv_str(p, ""));
    mw_template(app, CASE_NAME, mw_jv_str(mw_jv_get(c, "template"), ""));
    mw_set_userdata(app, (void *)(uintptr_t)mw_jv_get(c, "data"));
    mw_get(app, "/", render_view);
    r = mw_test_request(app, "GET", "/", NULL, NULL, 0);
    ok = r && r->status == 200 && r->body_len == want.len && memcmp(r->body, want.ptr, want.len) == 0;
    printf("%s %s: %s\n", ok ? "PASS" : "FAIL", file, name);
    if (!ok && r)
        printf("  case %s: got \"%.*s\", want \"%.*s\"\n", name, (int)r->body_len, r->body, (int)want.len, want.ptr);
    mw_test_free(r);
    mw_app_free(app);
    return ok;
}

static void run_spec_file(const char *file) {
    char path[256];
    size_t len, off;
    const char *problem;
    char *text;
    mw_jv_doc *doc;
    const mw_jv *c;
    snprintf(path, sizeof path, "tests/vectors/mustache-spec/%s.json", file);
    text = read_all(path, &len);
    doc = text ? mw_jv_parse(text, len, &off, &problem) : NULL;
    if (!doc) {
        printf("FAIL %s: cannot read or parse %s\n", file, path);
        test_failed++;
        free(text);
        return;
    }
    for (c = mw_jv_first(mw_jv_get(mw_jv_root(doc), "tests")); c; c = mw_jv_next(c)) {
        if (run_case(file, c)) test_passed++;
        else test_failed++;
    }
    mw_jv_free(doc);
    free(text);
}

/* ---- beyond the specification ---- */

static char log_lines[4096];

static void keep_log(void *arg, mw_log_level level, const char *line) {
    size_t n = strlen(log_lines);
    (void)arg;
    (void)level;
    snprintf(log_lines + n, sizeof log_lines - n, "%s\n", line);
}

static mw_app *app_logged(void) {
    mw_app *app = mw_app_new();
    log_lines[0] = '\0';
    mw_set_logger(app, keep_log, NULL);
    return app;
}

static mw_jv_doc *view_doc;

static void render_page(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_render(rs, 200, "page", mw_jv_root(view_doc));
}

/* The body of GET / rendering the template "page" (text) with the JSON view. */
static mw_test_res *render(const char *text, const char *view_json) {
    mw_app *app = mw_app_new();
    mw_test_res *r;
    view_doc = mw_jv_parse(view_json, strlen(view_json), NULL, NULL);
    mw_template(app, "page", text);
    mw_get(app, "/", render_page);
    r = mw_test_request(app, "GET", "/", NULL, NULL, 0);
    mw_app_free(app);
    mw_jv_free(view_doc);
    return r;
}

/* Every character HTML gives a meaning to, in text and in attribute values quoted
   either way, becomes an entity; the rest of the bytes pass as they are. */
TEST(test_escapes_every_dangerous_byte_in_text_and_attributes) {
    mw_test_res *r = render("<p title=\"{{v}}\" data-x='{{v}}'>{{v}}</p>", "{\"v\":\"a&b<c>d\\\"e'f\"}");
    CHECK_INT(r->status, 200);
    CHECK_MEM(r->body, r->body_len,
              "<p title=\"a&amp;b&lt;c&gt;d&quot;e&#39;f\" data-x='a&amp;b&lt;c&gt;d&quot;e&#39;f'>"
              "a&amp;b&lt;c&gt;d&quot;e&#39;f</p>");
    CHECK_STR(mw_test_header(r, "Content-Type"), "text/html; charset=utf-8");
    mw_test_free(r);
}

TEST(test_escapes_nothing_else_of_all_ascii_bytes) {
    char json[1024], want[2048];
    size_t jn = 0, wn = 0;
    int c;
    mw_test_res *r;
    jn += (size_t)snprintf(json, sizeof json, "{\"v\":\"");
    for (c = 1; c < 128; c++) {
        const char *e = c == '&'    ? "&amp;"
                        : c == '<'  ? "&lt;"
                        : c == '>'  ? "&gt;"
                        : c == '"'  ? "&quot;"
                        : c == '\'' ? "&#39;"
                                    : NULL;
        jn += (size_t)snprintf(json + jn, sizeof json - jn, "\\u%04x", c);
        if (e) wn += (size_t)snprintf(want + wn, sizeof want - wn, "%s", e);
        else want[wn++] = (char)c;
    }
    snprintf(json + jn, sizeof json - jn, "\"}");
    want[wn] = '\0';
    r = render("{{v}}", json);
    CHECK_MEM(r->body, r->body_len, want);
    mw_test_free(r);
}

TEST(test_triple_mustache_and_ampersand_write_raw) {
    mw_test_res *r = render("{{{v}}}|{{& v}}", "{\"v\":\"<b>&\"}");
    CHECK_MEM(r->body, r->body_len, "<b>&|<b>&");
    mw_test_free(r);
}

TEST(test_renders_a_list_page_from_rows) {
    mw_test_res *r = render("<ul>\n{{#rows}}\n  <li>{{id}}: {{message}}</li>\n{{/rows}}\n{{^rows}}none{{/rows}}</ul>\n",
                            "{\"rows\":[{\"id\":1,\"message\":\"<script>\"},{\"id\":2,\"message\":\"ok\"}]}");
    CHECK_MEM(r->body, r->body_len, "<ul>\n  <li>1: &lt;script&gt;</li>\n  <li>2: ok</li>\n</ul>\n");
    mw_test_free(r);
}

TEST(test_false_null_empty_string_and_empty_list_are_false) {
    mw_test_res *r = render("{{#a}}A{{/a}}{{#b}}B{{/b}}{{#c}}C{{/c}}{{#d}}D{{/d}}{{#e}}E{{/e}}{{#f}}F{{/f}}",
                            "{\"a\":false,\"b\":null,\"c\":\"\",\"d\":[],\"e\":0,\"f\":\"x\"}");
    CHECK_MEM(r->body, r->body_len, "EF");
    mw_test_free(r);
}

TEST(test_a_missing_name_renders_empty) {
    mw_test_res *r = render("[{{nope}}][{{a.b.c}}]", "{\"a\":{}}");
    CHECK_MEM(r->body, r->body_len, "[][]");
    mw_test_free(r);
}

/* A syntax error: MW_EINVAL, one line with the template, line and column, and mw_run
   refuses to start. */
static void check_syntax_error(const char *text, const char *line) {
    mw_app *app = app_logged();
    char want[256];
    CHECK_INT(mw_template(app, "bad", text), MW_EINVAL);
    snprintf(want, sizeof want, "template bad:%s\n", line);
    CHECK_STR(log_lines, want);
    log_lines[0] = '\0';
    CHECK_INT(mw_run(app), 1); /* frees the app */
    CHECK(strstr(log_lines, "not starting: 1 setup error(s) above") != NULL);
}

TEST(test_reports_an_unclosed_section_where_it_opens) {
    check_syntax_error("<ul>\n  {{#items}}\n  <li>{{.}}</li>\n</ul>\n", "2:3: a section that is not closed");
}

TEST(test_reports_a_mismatched_end_tag) {
    check_syntax_error("{{#a}}\n{{#b}}x{{/a}}{{/b}}", "2:8: this end tag does not close the section opened last");
}

TEST(test_reports_an_end_tag_without_a_section) {
    check_syntax_error("ok\n\nx {{/a}}", "3:3: an end tag without a section to close");
}

TEST(test_reports_an_unclosed_tag) { check_syntax_error("<p>{{name</p>", "1:4: a tag that is not closed"); }

TEST(test_reports_a_bad_set_delimiter_tag) {
    check_syntax_error("a\n{{=<%=}}", "2:1: a set-delimiter tag takes two delimiters, as {{=<% %>=}}");
}

TEST(test_reports_a_name_with_a_space) {
    check_syntax_error("{{first name}}", "1:1: a tag without a name, or with a space in its name");
}

/* A partial or parent that names no template is found when serving would start. */
TEST(test_an_unknown_partial_stops_serving) {
    mw_app *app = app_logged();
    CHECK_INT(mw_template(app, "page", "<main>\n{{> header}}\n{{<layout}}{{/layout}}</main>"), 0);
    CHECK_INT(mw_run(app), 1);
    CHECK(strstr(log_lines, "template page: no template named \"header\" for its partial") != NULL);
    CHECK(strstr(log_lines, "template page: no template named \"layout\" for its parent tag") != NULL);
    CHECK(strstr(log_lines, "not starting: 2 setup error(s) above") != NULL);
}

TEST(test_templates_from_a_folder_name_errors_by_file) {
    char dir[] = "/tmp/mw_tmpl_XXXXXX", path[256];
    mw_app *app = app_logged();
    FILE *f;
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/good.html", dir);
    f = fopen(path, "w");
    fputs("<h1>{{title}}</h1>{{> part}}", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/part.html", dir);
    f = fopen(path, "w");
    fputs("<p>{{#x}}</p>\n", f);
    fclose(f);
    CHECK_INT(mw_templates(app, dir), MW_EINVAL);
    snprintf(path, sizeof path, "template %s/part.html:1:4: a section that is not closed\n", dir);
    CHECK_STR(log_lines, path);
    mw_app_free(app);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    CHECK_INT(system(path), 0);
}

TEST(test_rendering_an_unknown_template_answers_500) {
    mw_app *app = app_logged();
    mw_test_res *r;
    mw_template(app, "other", "x");
    mw_get(app, "/", render_page);
    view_doc = NULL;
    r = mw_test_request(app, "GET", "/", NULL, NULL, 0);
    CHECK_INT(r->status, 500);
    CHECK(strstr(log_lines, "mw_render: no template of that name") != NULL);
    mw_test_free(r);
    mw_app_free(app);
}

/* A view built by the JSON writer: the user's name escaped, null as nothing; the writer
   is freed by mw_render_json (ASan and valgrind would see a leak or a double free). */
static void render_written_view(mw_req *rq, mw_res *rs) {
    mw_json *view = mw_json_new();
    mw_json_object(view);
    mw_json_key_string(view, "user", mw_value(rq, MW_QUERY, "user"));
    mw_render_json(rs, 201, "page", view); /* the object left open: closed by the call */
}

/* A writer with an error (a value with no key inside an object) gives no view: 500. */
static void render_broken_view(mw_req *rq, mw_res *rs) {
    mw_json *view = mw_json_new();
    (void)rq;
    mw_json_object(view);
    mw_json_int(view, 1);
    mw_render_json(rs, 200, "page", view);
}

TEST(test_render_json_renders_with_the_writers_document_then_frees_it) {
    mw_app *app = app_logged();
    mw_test_res *r;
    mw_template(app, "page", "<p>{{#user}}Hello, {{user}}{{/user}}{{^user}}Nobody{{/user}}</p>");
    mw_get(app, "/", render_written_view);
    mw_get(app, "/broken", render_broken_view);
    r = mw_test_request(app, "GET", "/?user=%3Cb%3Eada", NULL, NULL, 0);
    CHECK_INT(r->status, 201);
    CHECK_MEM(r->body, r->body_len, "<p>Hello, &lt;b&gt;ada</p>");
    CHECK_STR(mw_test_header(r, "Content-Type"), "text/html; charset=utf-8");
    mw_test_free(r);
    r = mw_test_request(app, "GET", "/", NULL, NULL, 0); /* "user": null */
    CHECK_MEM(r->body, r->body_len, "<p>Nobody</p>");
    mw_test_free(r);
    r = mw_test_request(app, "GET", "/broken", NULL, NULL, 0);
    CHECK_INT(r->status, 500);
    CHECK(strstr(log_lines, "mw_render_json: no view") != NULL);
    mw_test_free(r);
    mw_app_free(app);
}

/* ---- debug mode: files re-read when they change, over a real socket ---- */

static void *serve_app(void *app) {
    mw_serve((mw_app *)app);
    return NULL;
}

/* GET path on a new connection; the body (after the head) into buf, or "" on error. */
static const char *get_body(int port, const char *path, char *buf, size_t cap) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t got = 0;
    ssize_t n;
    char req[256];
    const char *body;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    buf[0] = '\0';
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0) close(fd);
        return buf;
    }
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
    if (send(fd, req, strlen(req), 0) > 0)
        while (got + 1 < cap && (n = recv(fd, buf + got, cap - 1 - got, 0)) > 0) got += (size_t)n;
    close(fd);
    buf[got] = '\0';
    body = strstr(buf, "\r\n\r\n");
    return body ? body + 4 : "";
}

/* The new text appears whole: written beside the file, then renamed over it. */
static void replace_file(const char *dir, const char *name, const char *text) {
    char path[256], tmp[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.new", dir, name);
    f = fopen(tmp, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
    rename(tmp, path);
}

static mw_jv_doc *folder_view;

static void render_folder_page(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_render(rs, 200, "page", mw_jv_root(folder_view));
}

/* A server on the templates of a fresh folder (page.html includes part.html). */
static mw_app *serve_folder(char *dir, int *port, pthread_t *t, int debug_call) {
    mw_app *app = app_logged();
    if (debug_call) CHECK_INT(mw_debug(app, 1), 0);
    CHECK(mkdtemp(dir) != NULL);
    replace_file(dir, "page.html", "<p>{{name}} v1</p>{{> part}}");
    replace_file(dir, "part.html", "<i>part 1</i>");
    folder_view = mw_jv_parse("{\"name\":\"ada\"}", 14, NULL, NULL);
    mw_set_limit(app, MW_LIMIT_THREADS, 2);
    CHECK_INT(mw_templates(app, dir), 0);
    mw_get(app, "/", render_folder_page);
    *port = mw_listen(app, "127.0.0.1", 0);
    CHECK(*port > 0);
    CHECK_INT(pthread_create(t, NULL, serve_app, app), 0);
    return app;
}

static void stop_folder(mw_app *app, pthread_t t, const char *dir) {
    char cmd[300];
    mw_stop(app);
    pthread_join(t, NULL);
    mw_app_free(app);
    mw_jv_free(folder_view);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
}

/* MW_DEBUG=1: each request sees the files as they are now; a file that no longer
   compiles keeps its last good version and its error is logged. */
TEST(test_debug_mode_rereads_changed_templates_on_the_next_request) {
    char dir[] = "/tmp/mw_tmpl_XXXXXX", buf[4096], want[300];
    pthread_t t;
    int port;
    mw_app *app;
    setenv("MW_DEBUG", "1", 1);
    app = serve_folder(dir, &port, &t, 0);
    CHECK_STR(get_body(port, "/", buf, sizeof buf), "<p>ada v1</p><i>part 1</i>");
    unsetenv("MW_DEBUG"); /* read when serving started, which the answer shows it has */
    replace_file(dir, "page.html", "<p>{{name}} version 2</p>{{> part}}");
    CHECK_STR(get_body(port, "/", buf, sizeof buf), "<p>ada version 2</p><i>part 1</i>");
    replace_file(dir, "part.html", "<b>part, second</b>");
    CHECK_STR(get_body(port, "/", buf, sizeof buf), "<p>ada version 2</p><b>part, second</b>");
    replace_file(dir, "page.html", "<p>{{#name</p>");
    CHECK_STR(get_body(port, "/", buf, sizeof buf), "<p>ada version 2</p><b>part, second</b>");
    stop_folder(app, t, dir);
    snprintf(want, sizeof want, "template %s/page.html:1:4: a tag that is not closed\n", dir);
    CHECK(strstr(log_lines, want) != NULL);
}

/* Without debug mode templates are compiled once: a change needs a restart. */
TEST(test_templates_are_compiled_once_without_debug_mode) {
    char dir[] = "/tmp/mw_tmpl_XXXXXX", buf[4096];
    pthread_t t;
    int port;
    mw_app *app = serve_folder(dir, &port, &t, 0);
    CHECK_STR(get_body(port, "/", buf, sizeof buf), "<p>ada v1</p><i>part 1</i>");
    replace_file(dir, "page.html", "<p>{{name}} version 2</p>");
    CHECK_STR(get_body(port, "/", buf, sizeof buf), "<p>ada v1</p><i>part 1</i>");
    stop_folder(app, t, dir);
}

/* mw_debug(app, 1) turns it on as MW_DEBUG=1 does. */
TEST(test_templates_debug_call_turns_reloading_on) {
    char dir[] = "/tmp/mw_tmpl_XXXXXX", buf[4096];
    pthread_t t;
    int port;
    mw_app *app = serve_folder(dir, &port, &t, 1);
    CHECK_STR(get_body(port, "/", buf, sizeof buf), "<p>ada v1</p><i>part 1</i>");
    replace_file(dir, "page.html", "<p>{{name}} v3</p>");
    CHECK_STR(get_body(port, "/", buf, sizeof buf), "<p>ada v3</p>");
    stop_folder(app, t, dir);
}

/* A view made to cost: the members a name is looked for among, and the bytes written,
   count as work, so a render stops (500) instead of holding the worker for seconds or
   writing a gigabyte. Both ran to the end before. */
static char *repeated(const char *head, const char *unit, size_t times, const char *tail) {
    size_t n = strlen(head) + strlen(unit) * times + strlen(tail) + 1, i;
    char *out = (char *)malloc(n), *o = out;
    o += sprintf(o, "%s", head);
    for (i = 0; i < times; i++) o += sprintf(o, "%s", unit);
    sprintf(o, "%s", tail);
    return out;
}

/* Renders text with view (malloc'd, or NULL for none) and checks the render stopped:
   500 with a short body, and the reason logged. */
static void check_stops_with_500(const char *text, char *view) {
    mw_app *app = app_logged();
    mw_test_res *r;
    mw_template(app, "page", text);
    mw_get(app, "/", render_page);
    view_doc = view ? mw_jv_parse(view, strlen(view), NULL, NULL) : NULL;
    CHECK(!view || view_doc != NULL);
    r = mw_test_request(app, "GET", "/", NULL, NULL, 0);
    CHECK_INT(r->status, 500);
    CHECK(r->body_len < 1000);
    CHECK(strstr(log_lines, "mw_render: the page took more than 10,000,000 steps") != NULL);
    mw_test_free(r);
    mw_app_free(app);
    mw_jv_free(view_doc);
    free(view);
}

/* A partial that includes itself twice would take 2^64 steps: the render stops (500,
   logged) instead of holding the worker for ever. */
TEST(test_a_self_including_partial_stops_with_500) { check_stops_with_500("{{> page}}{{> page}}", NULL); }

TEST(test_a_view_with_many_keys_looked_up_in_a_long_list_stops_with_500) {
    char *items = repeated("{\"items\":[", "{},", 100000, "{}]");
    char *view = repeated(items, ",\"k\":0", 2000, "}");
    free(items);
    check_stops_with_500("<ul>{{#items}}<li>{{title}}</li>{{/items}}</ul>", view);
}

TEST(test_a_long_text_repeated_over_a_long_list_stops_with_500) {
    char *title = repeated("{\"title\":\"", "<", 50000, "\",\"items\":[");
    char *view = repeated(title, "{},", 5000, "{}]}");
    free(title);
    check_stops_with_500("<h1>{{title}}</h1>{{#items}}<p>{{title}}</p>{{/items}}", view);
}

/* Standalone blocks and partials push indentation together: past the table's size the
   lines go without more of it (a write past the table crashed the server before). */
TEST(test_blocks_and_partials_nested_past_the_indent_table_render) {
    mw_app *app = app_logged();
    mw_test_res *r;
    mw_template(app, "page", "{{$b}}\n{{>p}}\n{{/b}}\n");
    mw_template(app, "p", "x\n {{>p}}\n");
    mw_get(app, "/", render_page);
    view_doc = NULL;
    r = mw_test_request(app, "GET", "/", NULL, NULL, 0);
    CHECK_INT(r->status, 200);
    CHECK(r->body_len > 64 && memcmp(r->body, "x\n x\n  x\n", 9) == 0);
    mw_test_free(r);
    mw_app_free(app);
}

/* A tag whose sigil is also the close delimiter's first character: the close is looked
   for after the sigil (found on the sigil itself, the name's length went negative). */
TEST(test_a_close_delimiter_starting_with_the_sigil_is_looked_for_after_it) {
    check_syntax_error("{{=<% #>=}}<%#>", "1:12: a tag that is not closed");
}

/* Debug mode lists the names a render found nowhere, once per tag; an inverted
   section over a missing name is what it is for, and is not listed. */
TEST(test_debug_mode_lists_missing_names_once) {
    mw_app *app = app_logged();
    mw_test_res *r;
    int i;
    CHECK_INT(mw_debug(app, 1), 0);
    mw_template(app, "page", "<p>{{nmae}}</p>\n{{^none}}x{{/none}} {{#gone}}y{{/gone}}{{name}}");
    mw_get(app, "/", render_page);
    view_doc = mw_jv_parse("{\"name\":\"ada\"}", 14, NULL, NULL);
    for (i = 0; i < 2; i++) {
        r = mw_test_request(app, "GET", "/", NULL, NULL, 0);
        CHECK_MEM(r->body, r->body_len, "<p></p>\nx ada");
        mw_test_free(r);
    }
    CHECK_STR(log_lines, "template page:1:4: no value named \"nmae\" (debug mode)\n"
                         "template page:2:21: no value named \"gone\" (debug mode)\n");
    mw_jv_free(view_doc);
    mw_app_free(app);
}

int main(void) {
    size_t i;
    for (i = 0; i < sizeof spec_files / sizeof spec_files[0]; i++) run_spec_file(spec_files[i]);
    RUN(test_escapes_every_dangerous_byte_in_text_and_attributes);
    RUN(test_escapes_nothing_else_of_all_ascii_bytes);
    RUN(test_triple_mustache_and_ampersand_write_raw);
    RUN(test_renders_a_list_page_from_rows);
    RUN(test_false_null_empty_string_and_empty_list_are_false);
    RUN(test_a_missing_name_renders_empty);
    RUN(test_reports_an_unclosed_section_where_it_opens);
    RUN(test_reports_a_mismatched_end_tag);
    RUN(test_reports_an_end_tag_without_a_section);
    RUN(test_reports_an_unclosed_tag);
    RUN(test_reports_a_bad_set_delimiter_tag);
    RUN(test_reports_a_name_with_a_space);
    RUN(test_an_unknown_partial_stops_serving);
    RUN(test_templates_from_a_folder_name_errors_by_file);
    RUN(test_rendering_an_unknown_template_answers_500);
    RUN(test_render_json_renders_with_the_writers_document_then_frees_it);
    RUN(test_a_self_including_partial_stops_with_500);
    RUN(test_debug_mode_lists_missing_names_once);
    RUN(test_a_view_with_many_keys_looked_up_in_a_long_list_stops_with_500);
    RUN(test_a_long_text_repeated_over_a_long_list_stops_with_500);
    RUN(test_blocks_and_partials_nested_past_the_indent_table_render);
    RUN(test_a_close_delimiter_starting_with_the_sigil_is_looked_for_after_it);
    RUN(test_debug_mode_rereads_changed_templates_on_the_next_request);
    RUN(test_templates_are_compiled_once_without_debug_mode);
    RUN(test_templates_debug_call_turns_reloading_on);
    return test_summary();
}
