/* app.c - the six TechEmpower Framework Benchmarks test types in microweb, by the
   project's rules (github.com/TechEmpower/FrameworkBenchmarks, "Test types"):
       GET /json                    {"message":"Hello, World!"}, written per request
       GET /plaintext               Hello, World!
       GET /db                      one random row of world as {"id":N,"randomNumber":N}
       GET /queries?queries=N       N random rows, one SELECT each (sent as one batch)
       GET /fortunes                the fortune table and one row added now, sorted by
                                    message, as an HTML table
       GET /updates?queries=N       N random rows read, each given a new random number,
                                    written back in one UPDATE, returned
       GET /updates-pipelined?queries=N   the same, written back by one UPDATE per row
                                    sent as one batch
   N is clamped to 1..500; missing or not a number counts as 1. Every answer carries
   Server, Date and Content-Type.
   Build:  cc -O2 -DMICROWEB_WITH_PG -I"$(pg_config --includedir)" -pthread -I. \
              bench/tfb/app.c -o build/tfb_app -lpq
   Run:    DATABASE_URL=... PORT=8080 build/tfb_app   (tables: bench/tfb/create.sql)
   BENCH_POOL sets the pool size (default 4), BENCH_THREADS the worker threads (each
   blocks on its statements; default: the pool size) and BENCH_SHARED MW_PG_SHARED, the
   connections the single statements of /db and /fortunes share (default 0: none). */
#define MICROWEB_IMPLEMENTATION
#ifndef MICROWEB_WITH_PG
#define MICROWEB_WITH_PG
#endif
#include "../../microweb.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_QUERIES 500
#define WORLD_ROWS 10000

typedef struct world {
    int id, number;
} world;

typedef struct fortune {
    const char *id, *message;
} fortune;

/* A random number 1..WORLD_ROWS from the worker thread's own generator (xorshift32). */
static int random_row(void) {
    static _Thread_local uint32_t state;
    if (!state) state = (uint32_t)time(NULL) ^ (uint32_t)(uintptr_t)&state ^ 0x9e3779b9u;
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return (int)(state % WORLD_ROWS) + 1;
}

/* The queries parameter: 1..500; missing, empty, not a number or below 1 -> 1. */
static int query_count(mw_req *rq) {
    const char *v = mw_value(rq, MW_QUERY, "queries"), *p;
    int n = 0;
    if (!v || !*v) return 1;
    for (p = v; *p >= '0' && *p <= '9'; p++)
        if (n <= MAX_QUERIES) n = n * 10 + (*p - '0');
    if (*p) return 1;
    return n < 1 ? 1 : n > MAX_QUERIES ? MAX_QUERIES : n;
}

static void server_header(mw_req *rq, mw_res *rs, void *arg) {
    (void)rq, (void)arg;
    mw_set_header(rs, "Server", "microweb");
}

static void json(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    (void)rq;
    mw_json_object(j);
    mw_json_key_string(j, "message", "Hello, World!");
    mw_json_close(j);
    mw_json_end(j);
}

static void plaintext(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "Hello, World!");
}

static const char select_world[] = "SELECT id, randomnumber AS \"randomNumber\" FROM world WHERE id = $1";

static void db(mw_req *rq, mw_res *rs) {
    char id[8];
    const char *p[] = {id};
    snprintf(id, sizeof id, "%d", random_row());
    mw_pg_json_one(rq, rs, select_world, 1, p);
}

/* A number as text in the request's memory, for a statement's parameter. */
static const char *param_int(mw_req *rq, int v) {
    char *s = (char *)mw_req_alloc(rq, 12);
    if (s) snprintf(s, 12, "%d", v);
    return s;
}

/* n random rows of world, one SELECT each, sent together; NULL when the answer is
   already the error. */
static world *read_rows(mw_req *rq, mw_res *rs, int n) {
    world *rows = (world *)mw_req_alloc(rq, (size_t)n * sizeof *rows);
    mw_pg_stmt *st = (mw_pg_stmt *)mw_req_alloc(rq, (size_t)n * sizeof *st);
    const char **ids = (const char **)mw_req_alloc(rq, (size_t)n * sizeof *ids);
    PGresult **res = (PGresult **)mw_req_alloc(rq, (size_t)n * sizeof *res);
    int i;
    if (!rows || !st || !ids || !res) return mw_error(rs, 500, "out of memory"), (world *)NULL;
    for (i = 0; i < n; i++) {
        if (!(ids[i] = param_int(rq, random_row()))) return mw_error(rs, 500, "out of memory"), (world *)NULL;
        st[i].sql = select_world, st[i].nparams = 1, st[i].params = &ids[i];
    }
    if (mw_pg_batch(rq, st, n, res) != 0) return NULL;
    for (i = 0; i < n; i++) {
        if (PQntuples(res[i]) != 1) return mw_error(rs, 500, "a world row is missing"), (world *)NULL;
        rows[i].id = atoi(PQgetvalue(res[i], 0, 0));
        rows[i].number = atoi(PQgetvalue(res[i], 0, 1));
    }
    return rows;
}

static void write_rows(mw_res *rs, const world *rows, int n) {
    mw_json *j = mw_json_begin(rs, 200);
    int i;
    mw_json_array(j);
    for (i = 0; i < n; i++) {
        mw_json_object(j);
        mw_json_key_int(j, "id", rows[i].id);
        mw_json_key_int(j, "randomNumber", rows[i].number);
        mw_json_close(j);
    }
    mw_json_close(j);
    mw_json_end(j);
}

static void queries(mw_req *rq, mw_res *rs) {
    int n = query_count(rq);
    world *rows = read_rows(rq, rs, n);
    if (rows) write_rows(rs, rows, n);
}

static int by_id(const void *a, const void *b) {
    const world *x = *(const world *const *)a, *y = *(const world *const *)b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Gives each row a new random number and returns the rows to write, sorted by id (so
   that writers lock rows in the same order when the plan follows the array; a plan
   that scans the table does not, and microweb runs a deadlocked UPDATE again,
   MW_PG_CONFLICT_RETRIES) and each id once: a row drawn twice gets one number, so the
   answer says what the table holds. */
static world **renumber(mw_req *rq, world *rows, int n, int *distinct) {
    world **sorted = (world **)mw_req_alloc(rq, (size_t)n * sizeof *sorted);
    int i, m = 0;
    if (!sorted) return NULL;
    for (i = 0; i < n; i++) rows[i].number = random_row(), sorted[i] = &rows[i];
    qsort(sorted, (size_t)n, sizeof *sorted, by_id);
    for (i = 0; i < n; i++) {
        if (m && sorted[m - 1]->id == sorted[i]->id) sorted[i]->number = sorted[m - 1]->number;
        else sorted[m++] = sorted[i];
    }
    *distinct = m;
    return sorted;
}

/* "{a,b,c}": numbers as a PostgreSQL array literal. */
static const char *int_array(mw_req *rq, world **rows, int n, int number) {
    char *s = (char *)mw_req_alloc(rq, (size_t)n * 12 + 3), *o = s;
    int i;
    if (!s) return NULL;
    *o++ = '{';
    for (i = 0; i < n; i++) o += sprintf(o, i ? ",%d" : "%d", number ? rows[i]->number : rows[i]->id);
    *o++ = '}';
    *o = '\0';
    return s;
}

/* One UPDATE for every row: the ids and numbers as two arrays, one prepared statement
   whatever the count. */
static int write_back_at_once(mw_req *rq, world **rows, int n) {
    const char *p[2] = {int_array(rq, rows, n, 0), int_array(rq, rows, n, 1)};
    if (!p[0] || !p[1]) return 0;
    return mw_pg_query(rq,
                       "UPDATE world SET randomnumber = v.r FROM unnest($1::int[], $2::int[]) AS v(id, r) "
                       "WHERE world.id = v.id",
                       2, p) != NULL;
}

/* One UPDATE per row, all sent as one batch (one transaction). */
static int write_back_pipelined(mw_req *rq, world **rows, int n) {
    mw_pg_stmt *st = (mw_pg_stmt *)mw_req_alloc(rq, (size_t)n * sizeof *st);
    PGresult **res = (PGresult **)mw_req_alloc(rq, (size_t)n * sizeof *res);
    int i;
    if (!st || !res) return 0;
    for (i = 0; i < n; i++) {
        const char **p = (const char **)mw_req_alloc(rq, 2 * sizeof *p);
        if (!p || !(p[0] = param_int(rq, rows[i]->number)) || !(p[1] = param_int(rq, rows[i]->id))) return 0;
        st[i].sql = "UPDATE world SET randomnumber = $1 WHERE id = $2", st[i].nparams = 2, st[i].params = p;
    }
    return mw_pg_batch(rq, st, n, res) == 0;
}

static void update(mw_req *rq, mw_res *rs, int (*write_back)(mw_req *, world **, int)) {
    int n = query_count(rq), distinct;
    world *rows = read_rows(rq, rs, n), **sorted;
    if (!rows) return;
    if (!(sorted = renumber(rq, rows, n, &distinct)) || !write_back(rq, sorted, distinct)) {
        mw_error(rs, 500, "the rows could not be written"); /* a database error has answered already */
        return;
    }
    write_rows(rs, rows, n);
}

static void updates(mw_req *rq, mw_res *rs) { update(rq, rs, write_back_at_once); }

static void updates_pipelined(mw_req *rq, mw_res *rs) { update(rq, rs, write_back_pipelined); }

static int by_message(const void *a, const void *b) {
    return strcmp(((const fortune *)a)->message, ((const fortune *)b)->message);
}

static void put(mw_res *rs, const char *s) { mw_write(rs, s, strlen(s)); }

static void fortunes(mw_req *rq, mw_res *rs) {
    PGresult *r = mw_pg_query(rq, "SELECT id, message FROM fortune", 0, NULL);
    fortune *f;
    int i, n;
    if (!r) return;
    n = PQntuples(r);
    if (!(f = (fortune *)mw_req_alloc(rq, (size_t)(n + 1) * sizeof *f))) {
        mw_error(rs, 500, "out of memory");
        return;
    }
    for (i = 0; i < n; i++) f[i].id = PQgetvalue(r, i, 0), f[i].message = PQgetvalue(r, i, 1);
    f[n].id = "0", f[n].message = "Additional fortune added at request time.";
    qsort(f, (size_t)n + 1, sizeof *f, by_message);
    mw_send(rs, 200, "text/html; charset=utf-8", NULL, 0);
    put(rs, "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
            "<tr><th>id</th><th>message</th></tr>");
    for (i = 0; i <= n; i++) {
        put(rs, "<tr><td>");
        put(rs, f[i].id);
        put(rs, "</td><td>");
        mw_html_escape(rs, f[i].message);
        put(rs, "</td></tr>");
    }
    put(rs, "</table></body></html>");
}

static long long setting(const char *name, long long otherwise) {
    const char *v = getenv(name);
    return v && *v ? atoll(v) : otherwise;
}

int main(void) {
    mw_app *app = mw_app_new();
    long long pool = setting("BENCH_POOL", 4), shared = setting("BENCH_SHARED", 0);
    mw_set_limit(app, MW_LIMIT_THREADS, setting("BENCH_THREADS", pool));
    mw_set_limit(app, MW_LIMIT_PG_POOL_SIZE, pool);
    mw_set_limit(app, MW_LIMIT_PG_SHARED, shared);
    mw_pg_configure(app, NULL); /* DATABASE_URL */
    mw_after(app, NULL, server_header, NULL);
    mw_get(app, "/json", json);
    mw_get(app, "/plaintext", plaintext);
    mw_get(app, "/db", db);
    mw_get(app, "/queries", queries);
    mw_get(app, "/fortunes", fortunes);
    mw_get(app, "/updates", updates);
    mw_get(app, "/updates-pipelined", updates_pipelined);
    return mw_run(app);
}
