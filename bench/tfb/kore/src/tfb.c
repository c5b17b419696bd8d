/* tfb.c - the Kore peer of bench/tfb/app.c: the six TechEmpower test types. /db,
   /queries, /fortunes and /updates use Kore's asynchronous PostgreSQL (KORE_PGSQL_ASYNC)
   as Kore's examples/pgsql does: each request is a state machine (http_state_run) that
   sleeps while a statement runs, the worker serving other requests meanwhile. A request
   takes one of the worker's connections (TFB_CONNINFO; pgsql_conn_max in kore.conf,
   queued by Kore while all are busy), sends its statements on it one after another and
   gives it back before it answers. Updates are written back by one UPDATE ... FROM
   unnest(ids, numbers), ids sorted, as app.c does. */
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

struct tfb;

/* What an endpoint does in the shared state machine. */
struct endpoint {
    int (*asked)(struct http_request *); /* how many world rows it reads */
    int (*send)(struct tfb *);           /* sends its next statement: SENT, LAST or FAILED */
    int (*take)(struct tfb *);           /* takes a result's rows; 0 when they are not as asked */
    void (*reply)(struct http_request *, struct tfb *);
};

enum { SENT, LAST, FAILED };

/* One request's state (http_state_create), freed by Kore with the request. */
struct tfb {
    struct kore_pgsql sql;
    const struct endpoint *ep;
    struct kore_buf html; /* the fortunes page */
    int n, sent, got;     /* rows asked for, statements sent, rows read */
    struct row rows[];
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

static int one(struct http_request *req) {
    (void)req;
    return 1;
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

/* ---- the state machine of the database endpoints */

/* req->fsm_state: indexes of states[] below; a request starts at 0, CONNECT */
enum { CONNECT, SEND, WAIT, READ, REPLY, FAIL };

static struct tfb *state(struct http_request *req) { return http_state_get(req); }

/* Takes a connection; while all are busy Kore queues the request, asleep, and wakes it
   when one is given back. */
static int connect_db(struct http_request *req) {
    struct tfb *t = state(req);
    if (kore_pgsql_setup(&t->sql, "db", KORE_PGSQL_ASYNC)) req->fsm_state = SEND;
    else if (t->sql.state == KORE_PGSQL_STATE_INIT) return HTTP_STATE_RETRY;
    else req->fsm_state = FAIL;
    return HTTP_STATE_CONTINUE;
}

/* Sends the next statement (Kore puts the request to sleep until its result comes), or,
   after the last, gives the connection back and answers. */
static int send_next(struct http_request *req) {
    struct tfb *t = state(req);
    switch (t->ep->send(t)) {
    case SENT:
        t->sent++;
        req->fsm_state = WAIT;
        return HTTP_STATE_RETRY;
    case LAST:
        kore_pgsql_continue(&t->sql);
        req->fsm_state = REPLY;
        break;
    default: req->fsm_state = FAIL;
    }
    return HTTP_STATE_CONTINUE;
}

static int wait_db(struct http_request *req) {
    struct tfb *t = state(req);
    switch (t->sql.state) {
    case KORE_PGSQL_STATE_WAIT: return HTTP_STATE_RETRY;
    case KORE_PGSQL_STATE_RESULT: req->fsm_state = READ; break;
    case KORE_PGSQL_STATE_DONE: req->fsm_state = SEND; break; /* the statement is through, the connection still ours */
    case KORE_PGSQL_STATE_ERROR: req->fsm_state = FAIL; break;
    default: kore_pgsql_continue(&t->sql); /* a notification: go on reading */
    }
    return HTTP_STATE_CONTINUE;
}

static int read_result(struct http_request *req) {
    struct tfb *t = state(req);
    if (!t->ep->take(t)) {
        req->fsm_state = FAIL;
        return HTTP_STATE_CONTINUE;
    }
    kore_pgsql_continue(&t->sql);
    req->fsm_state = WAIT;
    return HTTP_STATE_CONTINUE;
}

static int reply(struct http_request *req) {
    struct tfb *t = state(req);
    t->ep->reply(req, t);
    return HTTP_STATE_COMPLETE;
}

static int fail(struct http_request *req) {
    struct tfb *t = state(req);
    if (t->sql.error) kore_pgsql_logerror(&t->sql);
    else kore_log(LOG_NOTICE, "tfb: a result is not as asked");
    http_response(req, 500, NULL, 0);
    return HTTP_STATE_COMPLETE;
}

static struct http_state states[] = {
    KORE_HTTP_STATE(connect_db),  KORE_HTTP_STATE(send_next), KORE_HTTP_STATE(wait_db),
    KORE_HTTP_STATE(read_result), KORE_HTTP_STATE(reply),     KORE_HTTP_STATE(fail),
};

/* Called by Kore when it frees the request, answered or not (the client gone): a
   connection still held is given back (its statement cancelled). */
static void finish(struct http_request *req) {
    struct tfb *t = state(req);
    kore_pgsql_cleanup(&t->sql);
    kore_buf_cleanup(&t->html);
}

/* The handler of a database endpoint, called again each time the request wakes. */
static int run(struct http_request *req, const struct endpoint *ep) {
    if (!http_state_exists(req)) {
        int n = ep->asked(req);
        struct tfb *t = http_state_create(req, sizeof *t + (size_t)n * sizeof t->rows[0], finish);
        t->ep = ep, t->n = n;
        kore_pgsql_init(&t->sql);
        kore_pgsql_bind_request(&t->sql, req);
    }
    return http_state_run(states, sizeof states / sizeof states[0], req);
}

/* ---- db, queries */

static int send_select(struct tfb *t) {
    char id[12];
    snprintf(id, sizeof id, "%d", random_row());
    return kore_pgsql_query_params(&t->sql, select_world, 0, 1, KORE_PGSQL_PARAM_TEXT(id)) ? SENT : FAILED;
}

/* one SELECT per row, each sent when the one before has answered */
static int send_selects(struct tfb *t) { return t->sent < t->n ? send_select(t) : LAST; }

static int take_row(struct tfb *t) {
    struct row *r;
    if (t->got == t->n || kore_pgsql_ntuples(&t->sql) != 1) return 0;
    r = &t->rows[t->got];
    r->id = atoi(kore_pgsql_getvalue(&t->sql, 0, 0));
    r->number = atoi(kore_pgsql_getvalue(&t->sql, 0, 1));
    t->got++;
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

static void reply_row(struct http_request *req, struct tfb *t) { write_rows(req, t->rows, 1, 0); }

static void reply_rows(struct http_request *req, struct tfb *t) { write_rows(req, t->rows, t->n, 1); }

static const struct endpoint db_endpoint = {one, send_selects, take_row, reply_row};
static const struct endpoint queries_endpoint = {count, send_selects, take_row, reply_rows};

int db(struct http_request *req) { return run(req, &db_endpoint); }

int queries(struct http_request *req) { return run(req, &queries_endpoint); }

/* ---- updates */

static int by_id(const void *a, const void *b) {
    const struct row *x = *(const struct row *const *)a, *y = *(const struct row *const *)b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Gives each row a new random number and sends one UPDATE for them all: ids sorted (all
   writers lock rows in the same order: no deadlocks), each once (a row drawn twice gets
   one number, so the answer says what the table holds). */
static int send_update(struct tfb *t) {
    static struct row *sorted[MAX_QUERIES];
    static char ids[MAX_QUERIES * 12 + 3], numbers[MAX_QUERIES * 12 + 3];
    int i, m = 0, n = t->n;
    size_t a = 0, b = 0;
    for (i = 0; i < n; i++) t->rows[i].number = random_row(), sorted[i] = &t->rows[i];
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
    return kore_pgsql_query_params(&t->sql,
                                   "UPDATE world SET randomnumber = v.r FROM unnest($1::int[], $2::int[]) AS v(id, r) "
                                   "WHERE world.id = v.id",
                                   0, 2, KORE_PGSQL_PARAM_TEXT(ids), KORE_PGSQL_PARAM_TEXT(numbers))
               ? SENT
               : FAILED;
}

/* the SELECTs as for queries, then the UPDATE (which has no rows to take) */
static int send_selects_then_update(struct tfb *t) {
    if (t->sent < t->n) return send_select(t);
    return t->sent == t->n ? send_update(t) : LAST;
}

static const struct endpoint updates_endpoint = {count, send_selects_then_update, take_row, reply_rows};

int updates(struct http_request *req) { return run(req, &updates_endpoint); }

/* ---- fortunes */

static int none(struct http_request *req) {
    (void)req;
    return 0;
}

static int send_fortunes(struct tfb *t) {
    if (t->sent) return LAST;
    return kore_pgsql_query(&t->sql, "SELECT id, message FROM fortune") ? SENT : FAILED;
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

/* The page is written while the result is at hand: its values go with it. */
static int take_fortunes(struct tfb *t) {
    struct kore_buf *buf = &t->html;
    struct fortune *f;
    int i, n = kore_pgsql_ntuples(&t->sql);
    f = kore_calloc((size_t)n + 1, sizeof *f);
    for (i = 0; i < n; i++)
        f[i].id = kore_pgsql_getvalue(&t->sql, i, 0), f[i].message = kore_pgsql_getvalue(&t->sql, i, 1);
    f[n].id = "0", f[n].message = "Additional fortune added at request time.";
    qsort(f, (size_t)n + 1, sizeof *f, by_message);
    kore_buf_init(buf, 2048);
    kore_buf_appendf(buf, "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
                          "<tr><th>id</th><th>message</th></tr>");
    for (i = 0; i <= n; i++) {
        kore_buf_appendf(buf, "<tr><td>%s</td><td>", f[i].id);
        escaped(buf, f[i].message);
        kore_buf_appendf(buf, "</td></tr>");
    }
    kore_buf_appendf(buf, "</table></body></html>");
    kore_free(f);
    return 1;
}

static void reply_html(struct http_request *req, struct tfb *t) {
    answer(req, "text/html; charset=utf-8", t->html.data, t->html.offset);
}

static const struct endpoint fortunes_endpoint = {none, send_fortunes, take_fortunes, reply_html};

int fortunes(struct http_request *req) { return run(req, &fortunes_endpoint); }
