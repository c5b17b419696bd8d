/* pg_batch.c - mw_pg_batch against a real PostgreSQL server, through the test client.
   DATABASE_URL names an empty database (tests/with_pg_db.sh makes a throwaway one);
   without it, one SKIP line and "0 passed, 0 failed". The pool holds one connection,
   so every request gets the one the request before it gave back. */
#define MICROWEB_IMPLEMENTATION
#ifndef MICROWEB_WITH_PG
#define MICROWEB_WITH_PG
#endif
#include "../microweb.h"

#include <stdlib.h>

#include "harness.h"

#define MAX_BATCH 500

static mw_app *app;
static int preparing;                      /* MW_LIMIT_PG_PREPARE of app */
static int batch_rc;                       /* what the handler's mw_pg_batch returned */
static ExecStatusType statuses[MAX_BATCH]; /* each result's status; PGRES_EMPTY_QUERY stands for NULL */
static char sqlstate[8];                   /* the failed statement's SQLSTATE, "" when none */

/* Runs the batch and notes what came back: rc, statuses and the first error's SQLSTATE. */
static int run_batch(mw_req *rq, const mw_pg_stmt *st, int n, PGresult **res) {
    int i;
    batch_rc = mw_pg_batch(rq, st, n, res);
    sqlstate[0] = '\0';
    for (i = 0; i < n && i < MAX_BATCH; i++) {
        statuses[i] = res[i] ? PQresultStatus(res[i]) : PGRES_EMPTY_QUERY;
        if (res[i] && statuses[i] == PGRES_FATAL_ERROR && !sqlstate[0]) {
            const char *s = PQresultErrorField(res[i], PG_DIAG_SQLSTATE);
            snprintf(sqlstate, sizeof sqlstate, "%s", s ? s : "");
        }
    }
    return batch_rc;
}

/* GET /three: three statements, their rows as one JSON array */
static void three(mw_req *rq, mw_res *rs) {
    const char *p[] = {"41"};
    mw_pg_stmt st[] = {{"SELECT 1 AS a", 0, NULL}, {"SELECT $1::int + 1 AS b", 1, p}, {"SELECT 'x' AS c", 0, NULL}};
    PGresult *res[3];
    mw_json *j;
    int i;
    if (run_batch(rq, st, 3, res) != 0) return;
    j = mw_json_begin(rs, 200);
    mw_json_array(j);
    for (i = 0; i < 3; i++) mw_pg_write_row(j, res[i], 0);
    mw_json_close(j);
    mw_json_end(j);
}

/* GET /many: 500 statements on one SELECT text, their numbers summed */
static void many(mw_req *rq, mw_res *rs) {
    static char text[MAX_BATCH][8];
    static const char *params[MAX_BATCH];
    mw_pg_stmt st[MAX_BATCH];
    PGresult *res[MAX_BATCH];
    long sum = 0;
    int i;
    for (i = 0; i < MAX_BATCH; i++) {
        snprintf(text[i], sizeof text[i], "%d", i + 1);
        params[i] = text[i];
        st[i].sql = "SELECT $1::int AS n", st[i].nparams = 1, st[i].params = &params[i];
    }
    if (run_batch(rq, st, MAX_BATCH, res) != 0) return;
    for (i = 0; i < MAX_BATCH; i++) sum += atol(PQgetvalue(res[i], 0, 0));
    mw_printf(rs, "%ld", sum);
}

/* GET /failing: an insert, a division by zero, another insert */
static void failing(mw_req *rq, mw_res *rs) {
    mw_pg_stmt st[] = {
        {"INSERT INTO t VALUES (1)", 0, NULL}, {"SELECT 1 / 0", 0, NULL}, {"INSERT INTO t VALUES (2)", 0, NULL}};
    PGresult *res[3];
    if (run_batch(rq, st, 3, res) == 0) mw_text(rs, 200, "no error?");
}

/* GET /refused: the second statement's SQL cannot be prepared */
static void refused(mw_req *rq, mw_res *rs) {
    mw_pg_stmt st[] = {{"INSERT INTO t VALUES (3)", 0, NULL}, {"SELEC oops", 0, NULL}, {"SELECT 1", 0, NULL}};
    PGresult *res[3];
    if (run_batch(rq, st, 3, res) == 0) mw_text(rs, 200, "no error?");
}

/* GET /slow: the second statement outlives the statement timeout */
static void slow(mw_req *rq, mw_res *rs) {
    mw_pg_stmt st[] = {{"SELECT 1", 0, NULL}, {"SELECT pg_sleep(5)", 0, NULL}, {"SELECT 2", 0, NULL}};
    PGresult *res[3];
    if (run_batch(rq, st, 3, res) == 0) mw_text(rs, 200, "no error?");
}

/* GET /killed: a statement before the batch, then a batch whose second statement ends
   the connection's server process */
static void killed(mw_req *rq, mw_res *rs) {
    mw_pg_stmt st[] = {
        {"SELECT 1", 0, NULL}, {"SELECT pg_terminate_backend(pg_backend_pid())", 0, NULL}, {"SELECT 2", 0, NULL}};
    PGresult *res[3];
    if (!mw_pg_query(rq, "SELECT 0", 0, NULL)) return;
    if (run_batch(rq, st, 3, res) == 0) mw_text(rs, 200, "no error?");
}

/* GET /state: rows of t, the server process, and whether a transaction is open, by
   mw_pg_query on the connection a batch used last */
static void state(mw_req *rq, mw_res *rs) {
    PGconn *c;
    mw_pg_json_one(rq, rs,
                   "SELECT (SELECT count(*) FROM t) AS rows, pg_backend_pid() AS pid, "
                   "txid_current_if_assigned() IS NULL AS no_transaction",
                   0, NULL);
    if ((c = mw_pg_conn(rq)) != NULL && PQpipelineStatus(c) != PQ_PIPELINE_OFF) mw_error(rs, 500, "still a pipeline");
}

/* GET /then-query: a batch, then a statement on the same connection in the same request */
static void then_query(mw_req *rq, mw_res *rs) {
    mw_pg_stmt st[] = {{"SELECT 1", 0, NULL}};
    PGresult *res[1];
    if (run_batch(rq, st, 1, res) != 0) return;
    mw_pg_json_one(rq, rs, "SELECT 2 AS after", 0, NULL);
}

/* GET /in-transaction: BEGIN, a batch of two inserts, ROLLBACK: the caller's transaction
   holds the batch */
static void in_transaction(mw_req *rq, mw_res *rs) {
    mw_pg_stmt st[] = {{"INSERT INTO t VALUES (10)", 0, NULL}, {"INSERT INTO t VALUES (11)", 0, NULL}};
    PGresult *res[2];
    if (!mw_pg_query(rq, "BEGIN", 0, NULL) || run_batch(rq, st, 2, res) != 0) return;
    mw_pg_json_one(rq, rs, "SELECT count(*) AS inside FROM t", 0, NULL);
    mw_pg_query(rq, "ROLLBACK", 0, NULL);
}

/* GET /invalid: bad arguments are refused before anything is sent */
static void invalid(mw_req *rq, mw_res *rs) {
    mw_pg_stmt st[] = {{"SELECT 1", 0, NULL}}, unset[] = {{"SELECT 1", 0, NULL}, {NULL, 0, NULL}};
    PGresult *res[2];
    mw_printf(rs, "%d %d %d %d", mw_pg_batch(rq, st, 0, res), mw_pg_batch(rq, NULL, 1, res),
              mw_pg_batch(rq, st, 1, NULL), mw_pg_batch(rq, unset, 2, res));
}

static char last_line[512]; /* the last line microweb logged */

static void keep_line(void *arg, mw_log_level level, const char *line) {
    (void)arg, (void)level;
    snprintf(last_line, sizeof last_line, "%s", line);
}

static mw_app *make_app(int prepare) {
    mw_app *a = mw_app_new();
    preparing = prepare;
    mw_set_limit(a, MW_LIMIT_PG_POOL_SIZE, 1);
    mw_set_limit(a, MW_LIMIT_PG_STATEMENT_TIMEOUT_MS, 300);
    mw_set_limit(a, MW_LIMIT_PG_PREPARE, prepare);
    mw_set_logger(a, keep_line, NULL);
    mw_pg_configure(a, NULL);
    mw_get(a, "/three", three);
    mw_get(a, "/many", many);
    mw_get(a, "/failing", failing);
    mw_get(a, "/refused", refused);
    mw_get(a, "/slow", slow);
    mw_get(a, "/killed", killed);
    mw_get(a, "/state", state);
    mw_get(a, "/then-query", then_query);
    mw_get(a, "/in-transaction", in_transaction);
    mw_get(a, "/invalid", invalid);
    return a;
}

static mw_test_res *get(const char *target) { return mw_test_request(app, "GET", target, NULL, NULL, 0); }

/* The connection's state after a request: t's rows, and its server process id */
static long backend(long *rows) {
    mw_test_res *r = get("/state");
    const mw_jv *v = mw_test_body_json(r);
    long pid = r->status == 200 && mw_jv_bool(mw_jv_get(v, "no_transaction"), 0)
                   ? (long)mw_jv_int(mw_jv_get(v, "pid"), 0)
                   : -1;
    if (rows) *rows = (long)mw_jv_int(mw_jv_get(v, "rows"), -1);
    mw_test_free(r);
    return pid;
}

TEST(batch_returns_each_statements_rows_in_order) {
    mw_test_res *r = get("/three");
    CHECK_INT(r->status, 200);
    CHECK_MEM(r->body, r->body_len, "[{\"a\":1},{\"b\":42},{\"c\":\"x\"}]");
    CHECK_INT(batch_rc, 0);
    CHECK_INT(statuses[0], PGRES_TUPLES_OK);
    CHECK_INT(statuses[2], PGRES_TUPLES_OK);
    mw_test_free(r);
}

TEST(batch_of_500_statements) {
    mw_test_res *r = get("/many");
    CHECK_INT(r->status, 200);
    CHECK_MEM(r->body, r->body_len, "125250");
    mw_test_free(r);
}

TEST(failed_statement_aborts_the_rest_and_undoes_the_ones_before) {
    long pid = backend(NULL), rows = -1;
    mw_test_res *r = get("/failing");
    CHECK_INT(r->status, 500);
    CHECK_INT(batch_rc, MW_EIO);
    CHECK_INT(statuses[0], PGRES_COMMAND_OK);
    CHECK_INT(statuses[1], PGRES_FATAL_ERROR);
    CHECK_STR(sqlstate, "22012");
    CHECK_INT(statuses[2], PGRES_PIPELINE_ABORTED);
    CHECK(strstr(last_line, "division by zero") != NULL); /* the server's words, logged */
    mw_test_free(r);
    CHECK_INT(backend(&rows), pid); /* the same connection, back in the pool, no transaction open */
    CHECK_INT(rows, 0);             /* the first insert was undone */
}

/* Prepared, the refusal comes before anything is sent; unprepared, the batch runs up
   to that statement, which fails like any other. Either way nothing stays done. */
TEST(statement_the_server_cannot_parse) {
    long pid = backend(NULL), rows = -1;
    mw_test_res *r = get("/refused");
    CHECK_INT(r->status, 500);
    CHECK_INT(batch_rc, MW_EIO);
    CHECK_INT(statuses[0], preparing ? PGRES_EMPTY_QUERY : PGRES_COMMAND_OK); /* EMPTY_QUERY: NULL, never ran */
    CHECK_INT(statuses[1], PGRES_FATAL_ERROR);
    CHECK_STR(sqlstate, "42601");
    CHECK_INT(statuses[2], preparing ? PGRES_EMPTY_QUERY : PGRES_PIPELINE_ABORTED);
    mw_test_free(r);
    CHECK_INT(backend(&rows), pid);
    CHECK_INT(rows, 0);
}

TEST(statement_timeout_in_a_batch_is_504_and_the_connection_stays) {
    long pid = backend(NULL);
    mw_test_res *r = get("/slow");
    CHECK_INT(r->status, 504);
    CHECK_INT(statuses[0], PGRES_TUPLES_OK);
    CHECK_INT(statuses[1], PGRES_FATAL_ERROR);
    CHECK_STR(sqlstate, "57014");
    CHECK_INT(statuses[2], PGRES_PIPELINE_ABORTED);
    mw_test_free(r);
    CHECK_INT(backend(NULL), pid);
}

TEST(connection_lost_in_a_batch_is_503_and_the_next_request_connects_anew) {
    long pid = backend(NULL), after;
    mw_test_res *r = get("/killed");
    CHECK_INT(r->status, 503);
    CHECK_INT(batch_rc, MW_EIO);
    CHECK_INT(statuses[0], PGRES_TUPLES_OK);
    CHECK_INT(statuses[1], PGRES_FATAL_ERROR);
    mw_test_free(r);
    after = backend(NULL);
    CHECK(after > 0 && after != pid);
}

TEST(statement_after_a_batch_in_the_same_request) {
    mw_test_res *r = get("/then-query");
    CHECK_INT(r->status, 200);
    CHECK_MEM(r->body, r->body_len, "{\"after\":2}");
    mw_test_free(r);
}

TEST(batch_inside_the_callers_transaction) {
    long rows = -1;
    mw_test_res *r = get("/in-transaction");
    CHECK_INT(r->status, 200);
    CHECK_MEM(r->body, r->body_len, "{\"inside\":2}");
    mw_test_free(r);
    backend(&rows);
    CHECK_INT(rows, 0); /* rolled back with the caller's transaction */
}

TEST(bad_arguments_are_einval) {
    mw_test_res *r = get("/invalid");
    CHECK_INT(r->status, 200);
    CHECK_MEM(r->body, r->body_len, "-1 -1 -1 -1");
    mw_test_free(r);
}

static void run_all(void) {
    RUN(batch_returns_each_statements_rows_in_order);
    RUN(batch_of_500_statements);
    RUN(failed_statement_aborts_the_rest_and_undoes_the_ones_before);
    RUN(statement_the_server_cannot_parse);
    RUN(statement_timeout_in_a_batch_is_504_and_the_connection_stays);
    RUN(connection_lost_in_a_batch_is_503_and_the_next_request_connects_anew);
    RUN(statement_after_a_batch_in_the_same_request);
    RUN(batch_inside_the_callers_transaction);
    RUN(bad_arguments_are_einval);
}

int main(void) {
    PGconn *c;
    if (!getenv("DATABASE_URL")) {
        printf("SKIP pg_batch: no DATABASE_URL\n");
        return test_summary();
    }
    c = PQconnectdb(getenv("DATABASE_URL"));
    PQclear(PQexec(c, "CREATE TABLE t (id int PRIMARY KEY)"));
    PQfinish(c);
    app = make_app(1);
    printf("-- prepared statements\n");
    run_all();
    mw_app_free(app);
    printf("-- unprepared statements (MW_PG_PREPARE 0)\n");
    app = make_app(0);
    run_all();
    mw_app_free(app);
    return test_summary();
}
