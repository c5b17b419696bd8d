/* pgapp.c - the app the PostgreSQL tests run against (built with -DMICROWEB_WITH_PG).
   DATABASE_URL names the database; PGAPP_POOL_SIZE, PGAPP_ACQUIRE_TIMEOUT_MS and
   PGAPP_STATEMENT_TIMEOUT_MS, PGAPP_RETRY_MS and PGAPP_DEBUG set the pool's limits. */
#define MICROWEB_IMPLEMENTATION
#ifndef MICROWEB_WITH_PG
#define MICROWEB_WITH_PG
#endif
#include "../microweb.h"

#include <stdlib.h>

/* GET /types: one row with a column of every type microweb maps to JSON */
static void types(mw_req *rq, mw_res *rs) {
    mw_pg_json_one(rq, rs,
                   "SELECT true AS b, false AS f, 7::int2 AS i2, '-2147483648'::int4 AS i4, "
                   "9223372036854775807::int8 AS i8, 26::oid AS o, 1.5::float4 AS f4, -0.1::float8 AS f8, "
                   "12345.678900::numeric AS n, 'NaN'::numeric AS nan, 'Infinity'::float8 AS inf, "
                   "'{\"a\": [1, 2]}'::json AS js, '{\"b\": {\"c\": null}}'::jsonb AS jb, NULL::text AS nul, "
                   "$1::text AS t, 'x'::char(3) AS ch, '2026-01-02'::date AS d, 1 AS \"we\"\"ird\\\\name\"",
                   1,
                   (const char *const[]){"quote \" backslash \\ newline \n tab \t bell \a caf\xc3\xa9 \xe2\x82\xac"});
}

/* GET /users/:id: the id compared as text, so any string is a harmless value */
static void user(mw_req *rq, mw_res *rs) {
    const char *p[] = {mw_param(rq, "id")};
    mw_pg_json_one(rq, rs, "SELECT id, name FROM users WHERE id::text = $1", 1, p);
}

static void users(mw_req *rq, mw_res *rs) { mw_pg_json(rq, rs, "SELECT id, name FROM users ORDER BY id", 0, NULL); }

/* GET /sleep/:ms: holds a pooled connection for that long */
static void sleep_ms(mw_req *rq, mw_res *rs) {
    const char *p[] = {mw_param(rq, "ms")};
    mw_pg_json_one(rq, rs, "SELECT true AS slept FROM pg_sleep($1::float8 / 1000)", 1, p);
}

/* GET /leave-open/:how: starts a transaction (and, for "failed", breaks it) and
   returns without ending it; the next request on that connection must not notice */
static void leave_open(mw_req *rq, mw_res *rs) {
    PGconn *c = mw_pg_conn(rq);
    if (!c) return;
    PQclear(PQexec(c, "BEGIN"));
    PQclear(PQexec(c, "INSERT INTO users (id, name) VALUES (1000, 'uncommitted')"));
    if (strcmp(mw_param(rq, "how"), "failed") == 0) PQclear(PQexec(c, "SELECT 1/0"));
    mw_text(rs, 200, "left open");
}

/* GET /state: the transaction state and whether the uncommitted row is visible */
static void state(mw_req *rq, mw_res *rs) {
    mw_pg_json_one(rq, rs,
                   "SELECT (SELECT count(*) FROM users WHERE id = 1000) AS uncommitted_rows, "
                   "txid_current_if_assigned() IS NULL AS no_transaction_open",
                   0, NULL);
}

static void syntax_error(mw_req *rq, mw_res *rs) { mw_pg_json(rq, rs, "SELEC oops", 0, NULL); }

/* GET /param-mismatch: one parameter for a statement that needs two (SQLSTATE 08P01) */
static void param_mismatch(mw_req *rq, mw_res *rs) {
    const char *p[] = {"1"};
    mw_pg_json(rq, rs, "SELECT $1::int AS a, $2::int AS b", 1, p);
}

/* GET /batch/:ids: the users with those comma-separated ids (at most 8), one SELECT
   each, sent as one batch; a missing user is null */
static void batch(mw_req *rq, mw_res *rs) {
    char ids[8][16];
    const char *p[8];
    mw_pg_stmt st[8];
    PGresult *res[8];
    const char *s = mw_param(rq, "ids");
    mw_json *j;
    int i, n = 0;
    while (*s && n < 8) {
        size_t len = strcspn(s, ",");
        snprintf(ids[n], sizeof ids[n], "%.*s", (int)(len < 15 ? len : 15), s);
        p[n] = ids[n];
        st[n].sql = "SELECT id, name FROM users WHERE id::text = $1", st[n].nparams = 1, st[n].params = &p[n];
        n++;
        s += len + (s[len] == ',');
    }
    if (mw_pg_batch(rq, st, n, res) != 0) return;
    j = mw_json_begin(rs, 200);
    mw_json_array(j);
    for (i = 0; i < n; i++) {
        if (PQntuples(res[i])) mw_pg_write_row(j, res[i], 0);
        else mw_json_null(j);
    }
    mw_json_close(j);
    mw_json_end(j);
}

/* GET /batch-failing: an insert, a failing statement, another insert, in one batch */
static void batch_failing(mw_req *rq, mw_res *rs) {
    mw_pg_stmt st[] = {{"INSERT INTO users (id, name) VALUES (2000, 'undone')", 0, NULL},
                       {"SELECT 1 / 0", 0, NULL},
                       {"INSERT INTO users (id, name) VALUES (2001, 'skipped')", 0, NULL}};
    PGresult *res[3];
    if (mw_pg_batch(rq, st, 3, res) == 0) mw_text(rs, 200, "no error?");
}

static void set_limit_from_env(mw_app *app, const char *env, mw_limit limit) {
    const char *v = getenv(env);
    if (v && *v) mw_set_limit(app, limit, atoll(v));
}

int main(void) {
    mw_app *app = mw_app_new();
    set_limit_from_env(app, "PGAPP_POOL_SIZE", MW_LIMIT_PG_POOL_SIZE);
    set_limit_from_env(app, "PGAPP_ACQUIRE_TIMEOUT_MS", MW_LIMIT_PG_ACQUIRE_TIMEOUT_MS);
    set_limit_from_env(app, "PGAPP_STATEMENT_TIMEOUT_MS", MW_LIMIT_PG_STATEMENT_TIMEOUT_MS);
    set_limit_from_env(app, "PGAPP_RETRY_MS", MW_LIMIT_PG_RETRY_MS);
    set_limit_from_env(app, "PGAPP_DEBUG", MW_LIMIT_DEBUG);
    set_limit_from_env(app, "PGAPP_SHARED", MW_LIMIT_PG_SHARED);
    mw_pg_configure(app, NULL); /* DATABASE_URL */
    if (getenv("PGAPP_SETUP")) mw_pg_setup(app, getenv("PGAPP_SETUP"));
    mw_get(app, "/types", types);
    mw_get(app, "/users", users);
    mw_get(app, "/users/:id", user);
    mw_get(app, "/sleep/{ms:int}", sleep_ms);
    mw_get(app, "/leave-open/:how", leave_open);
    mw_get(app, "/state", state);
    mw_get(app, "/syntax-error", syntax_error);
    mw_get(app, "/param-mismatch", param_mismatch);
    mw_get(app, "/healthz", mw_pg_healthz);
    mw_get(app, "/batch/:ids", batch);
    mw_get(app, "/batch-failing", batch_failing);
    return mw_run(app);
}
