/* tfb.c - the Kore peer of bench/tfb/app.c: the six TechEmpower test types, each
   worker with one PostgreSQL connection (TFB_CONNINFO) used synchronously. Updates are
   written back by one UPDATE ... FROM unnest(ids, numbers), ids sorted, as app.c does. */
#include <kore/kore.h>
/* after kore.h, whose types they use */
#include <kore/http.h>
#include <kore/pgsql.h>
#include <kore/seccomp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_QUERIES 500

int json(struct http_request *);
int plaintext(struct http_request *);
int db(struct http_request *);
int queries(struct http_request *);
int fortunes(struct http_request *);
int updates(struct http_request *);
void kore_worker_configure(void);

struct row {
    int id, number;
};

struct fortune {
    char *id, *message;
};

static const char select_world[] = "SELECT id, randomnumber FROM world WHERE id = $1";

/* libpq looks for files (a password file) with newfstatat, which Kore's filter forbids */
KORE_SECCOMP_FILTER("tfb", KORE_SYSCALL_ALLOW(newfstatat))

void kore_worker_configure(void) {
    const char *conninfo = getenv("TFB_CONNINFO");
    if (!conninfo || !kore_pgsql_register("db", conninfo)) fatal("TFB_CONNINFO: no database");
    srandom((unsigned)getpid());
}

/* each worker is a process of its own: random() is its alone */
static int random_row(void) { return (int)(random() % 10000) + 1; }

static void answer(struct http_request *req, const char *type, const void *body, size_t len) {
    http_response_header(req, "content-type", type);
    http_response(req, 200, body, len);
}

static int fail(struct http_request *req, struct kore_pgsql *sql) {
    kore_pgsql_logerror(sql);
    kore_pgsql_cleanup(sql);
    http_response(req, 500, NULL, 0);
    return KORE_RESULT_OK;
}

static int count(struct http_request *req) {
    const char *q = req->query_string, *v = q ? strstr(q, "queries=") : NULL;
    long n;
    char *end;
    if (!v) return 1;
    n = strtol(v + 8, &end, 10);
    if (end == v + 8 || (*end && *end != '&') || n < 1) return 1;
    return n > MAX_QUERIES ? MAX_QUERIES : (int)n;
}

int json(struct http_request *req) {
    struct kore_buf buf;
    kore_buf_init(&buf, 64);
    kore_buf_appendf(&buf, "{\"message\":\"%s\"}", "Hello, World!");
    answer(req, "application/json", buf.data, buf.offset);
    kore_buf_cleanup(&buf);
    return KORE_RESULT_OK;
}

int plaintext(struct http_request *req) {
    answer(req, "text/plain", "Hello, World!", 13);
    return KORE_RESULT_OK;
}

static int read_row(struct kore_pgsql *sql, struct row *r) {
    char id[12];
    snprintf(id, sizeof id, "%d", random_row());
    if (!kore_pgsql_query_params(sql, select_world, 0, 1, KORE_PGSQL_PARAM_TEXT(id))) return 0;
    if (kore_pgsql_ntuples(sql) != 1) return 0;
    r->id = atoi(kore_pgsql_getvalue(sql, 0, 0));
    r->number = atoi(kore_pgsql_getvalue(sql, 0, 1));
    return 1;
}

static void write_rows(struct http_request *req, const struct row *rows, int n, int array) {
    struct kore_buf buf;
    int i;
    kore_buf_init(&buf, 64 + (size_t)n * 32);
    if (array) kore_buf_append(&buf, "[", 1);
    for (i = 0; i < n; i++)
        kore_buf_appendf(&buf, "%s{\"id\":%d,\"randomNumber\":%d}", i ? "," : "", rows[i].id, rows[i].number);
    if (array) kore_buf_append(&buf, "]", 1);
    answer(req, "application/json", buf.data, buf.offset);
    kore_buf_cleanup(&buf);
}

static int read_rows(struct http_request *req, struct kore_pgsql *sql, struct row *rows, int n) {
    int i;
    kore_pgsql_init(sql);
    if (!kore_pgsql_setup(sql, "db", KORE_PGSQL_SYNC)) return 0;
    for (i = 0; i < n; i++)
        if (!read_row(sql, &rows[i])) return 0;
    (void)req;
    return 1;
}

int db(struct http_request *req) {
    struct kore_pgsql sql;
    struct row r;
    if (!read_rows(req, &sql, &r, 1)) return fail(req, &sql);
    kore_pgsql_cleanup(&sql);
    write_rows(req, &r, 1, 0);
    return KORE_RESULT_OK;
}

int queries(struct http_request *req) {
    static struct row rows[MAX_QUERIES];
    struct kore_pgsql sql;
    int n = count(req);
    if (!read_rows(req, &sql, rows, n)) return fail(req, &sql);
    kore_pgsql_cleanup(&sql);
    write_rows(req, rows, n, 1);
    return KORE_RESULT_OK;
}

static int by_id(const void *a, const void *b) {
    const struct row *x = *(const struct row *const *)a, *y = *(const struct row *const *)b;
    return (x->id > y->id) - (x->id < y->id);
}

int updates(struct http_request *req) {
    static struct row rows[MAX_QUERIES];
    static struct row *sorted[MAX_QUERIES];
    static char ids[MAX_QUERIES * 12 + 3], numbers[MAX_QUERIES * 12 + 3];
    struct kore_pgsql sql;
    int i, m = 0, n = count(req);
    size_t a = 0, b = 0;
    if (!read_rows(req, &sql, rows, n)) return fail(req, &sql);
    for (i = 0; i < n; i++) rows[i].number = random_row(), sorted[i] = &rows[i];
    qsort(sorted, (size_t)n, sizeof *sorted, by_id);
    ids[a++] = '{', numbers[b++] = '{';
    for (i = 0; i < n; i++) {
        if (m && sorted[m - 1]->id == sorted[i]->id) {
            sorted[i]->number = sorted[m - 1]->number;
            continue;
        }
        sorted[m++] = sorted[i];
        a += (size_t)sprintf(ids + a, "%s%d", m > 1 ? "," : "", sorted[i]->id);
        b += (size_t)sprintf(numbers + b, "%s%d", m > 1 ? "," : "", sorted[i]->number);
    }
    ids[a++] = '}', numbers[b++] = '}';
    ids[a] = numbers[b] = '\0';
    if (!kore_pgsql_query_params(&sql,
                                 "UPDATE world SET randomnumber = v.r FROM unnest($1::int[], $2::int[]) AS v(id, r) "
                                 "WHERE world.id = v.id",
                                 0, 2, KORE_PGSQL_PARAM_TEXT(ids), KORE_PGSQL_PARAM_TEXT(numbers)))
        return fail(req, &sql);
    kore_pgsql_cleanup(&sql);
    write_rows(req, rows, n, 1);
    return KORE_RESULT_OK;
}

static int by_message(const void *a, const void *b) {
    return strcmp(((const struct fortune *)a)->message, ((const struct fortune *)b)->message);
}

static void escaped(struct kore_buf *buf, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': kore_buf_append(buf, "&amp;", 5); break;
        case '<': kore_buf_append(buf, "&lt;", 4); break;
        case '>': kore_buf_append(buf, "&gt;", 4); break;
        case '"': kore_buf_append(buf, "&quot;", 6); break;
        case '\'': kore_buf_append(buf, "&#39;", 5); break;
        default: kore_buf_append(buf, s, 1);
        }
    }
}

int fortunes(struct http_request *req) {
    struct kore_pgsql sql;
    struct kore_buf buf;
    struct fortune *f;
    int i, n;
    kore_pgsql_init(&sql);
    if (!kore_pgsql_setup(&sql, "db", KORE_PGSQL_SYNC) || !kore_pgsql_query(&sql, "SELECT id, message FROM fortune"))
        return fail(req, &sql);
    n = kore_pgsql_ntuples(&sql);
    f = kore_calloc((size_t)n + 1, sizeof *f);
    for (i = 0; i < n; i++) f[i].id = kore_pgsql_getvalue(&sql, i, 0), f[i].message = kore_pgsql_getvalue(&sql, i, 1);
    f[n].id = "0", f[n].message = "Additional fortune added at request time.";
    qsort(f, (size_t)n + 1, sizeof *f, by_message);
    kore_buf_init(&buf, 2048);
    kore_buf_appendf(&buf, "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
                           "<tr><th>id</th><th>message</th></tr>");
    for (i = 0; i <= n; i++) {
        kore_buf_appendf(&buf, "<tr><td>%s</td><td>", f[i].id);
        escaped(&buf, f[i].message);
        kore_buf_appendf(&buf, "</td></tr>");
    }
    kore_buf_appendf(&buf, "</table></body></html>");
    kore_free(f);
    kore_pgsql_cleanup(&sql);
    answer(req, "text/html; charset=utf-8", buf.data, buf.offset);
    kore_buf_cleanup(&buf);
    return KORE_RESULT_OK;
}
