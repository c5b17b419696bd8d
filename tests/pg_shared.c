/* pg_shared.c - shared connections (MW_PG_SHARED) against a real PostgreSQL server: a
   served app with 8 workers and one shared connection, and 8 client threads on
   keep-alive connections of their own. DATABASE_URL names an empty database
   (tests/with_pg_db.sh makes a throwaway one); without it, one SKIP line and
   "0 passed, 0 failed". Runs under ThreadSanitizer too. */
#define MICROWEB_IMPLEMENTATION
#ifndef MICROWEB_WITH_PG
#define MICROWEB_WITH_PG
#endif
#include "../microweb.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define WORKERS 8
#define CLIENTS 8
#define REQUESTS 150 /* per client */

static mw_app *app;
static int port;
static pthread_t server;

/* GET /double/{n}: n doubled by the database, the server process that did it, and
   whether it ran outside any transaction that wrote or asked for its id */
static void twice(mw_req *rq, mw_res *rs) {
    const char *p[] = {mw_param(rq, "n")};
    mw_pg_json_one(rq, rs,
                   "SELECT $1::int * 2 AS v, pg_backend_pid() AS pid, "
                   "txid_current_if_assigned() IS NULL AS alone",
                   1, p);
}

/* GET /fail: a statement the server refuses when it runs */
static void fail(mw_req *rq, mw_res *rs) { mw_pg_json_one(rq, rs, "SELECT 1 / 0 AS never", 0, NULL); }

/* GET /unparsable: a statement the server refuses to prepare */
static void unparsable(mw_req *rq, mw_res *rs) { mw_pg_json_one(rq, rs, "SELEC 1", 0, NULL); }

/* GET /sleep/{ms}: a statement that takes ms (past the statement timeout: a 504) */
static void sleep_ms(mw_req *rq, mw_res *rs) {
    const char *p[] = {mw_param(rq, "ms")};
    mw_pg_json_one(rq, rs, "SELECT pg_sleep($1::int / 1000.0) IS NULL AS slept", 1, p);
}

/* GET /empty: a statement with nothing in it but a comment */
static void empty(mw_req *rq, mw_res *rs) { mw_pg_json_one(rq, rs, "-- nothing", 0, NULL); }

/* GET /copy: a COPY, which a pipeline cannot carry */
static void copy(mw_req *rq, mw_res *rs) { mw_pg_json_one(rq, rs, " COPY (SELECT 1) TO STDOUT", 0, NULL); }

/* GET /idle-timeout: the connection this lands on ends itself after 100 ms idle */
static void idle_timeout(mw_req *rq, mw_res *rs) {
    if (mw_pg_query(rq, "SET idle_session_timeout = 100", 0, NULL)) mw_text(rs, 200, "set");
}

/* GET /tx: BEGIN (after a comment), then two statements: one transaction on the
   request's own connection; the answer says so, and names its server process */
static void tx(mw_req *rq, mw_res *rs) {
    PGresult *a, *b;
    if (!mw_pg_query(rq, "/* a transaction */ -- of its own\n  begin", 0, NULL)) return;
    if (!(a = mw_pg_query(rq, "SELECT txid_current(), pg_backend_pid()", 0, NULL))) return;
    if (!(b = mw_pg_query(rq, "SELECT txid_current(), pg_sleep(0.01)", 0, NULL))) return;
    mw_printf(rs, "%s %s", strcmp(PQgetvalue(a, 0, 0), PQgetvalue(b, 0, 0)) == 0 ? "one transaction" : "two",
              PQgetvalue(a, 0, 1));
}

/* GET /batch/{n}: a batch of three, on the request's own connection: n doubled and the
   server process, then the transaction's id twice ("one": one transaction) */
static void batch(mw_req *rq, mw_res *rs) {
    const char *p[] = {mw_param(rq, "n")};
    mw_pg_stmt st[] = {{"SELECT $1::int * 2, pg_backend_pid()", 1, p},
                       {"SELECT txid_current()", 0, NULL},
                       {"SELECT txid_current()", 0, NULL}};
    PGresult *res[3];
    if (mw_pg_batch(rq, st, 3, res) != 0) return;
    mw_printf(rs, "%s %s %s", PQgetvalue(res[0], 0, 0), PQgetvalue(res[0], 0, 1),
              strcmp(PQgetvalue(res[1], 0, 0), PQgetvalue(res[2], 0, 0)) == 0 ? "one" : "two");
}

/* GET /batch-fail: a batch whose second of three statements fails; counts the batches
   whose results were as mw_pg_batch says (rows, the error, then an aborted one) */
static int batch_failures_as_documented;
static void batch_fail(mw_req *rq, mw_res *rs) {
    mw_pg_stmt st[] = {{"SELECT 1", 0, NULL}, {"SELECT 1 / 0", 0, NULL}, {"SELECT 2", 0, NULL}};
    PGresult *res[3];
    (void)rs;
    if (mw_pg_batch(rq, st, 3, res) == MW_EIO && PQresultStatus(res[0]) == PGRES_TUPLES_OK &&
        PQresultStatus(res[1]) == PGRES_FATAL_ERROR && PQresultStatus(res[2]) == PGRES_PIPELINE_ABORTED)
        __atomic_fetch_add(&batch_failures_as_documented, 1, __ATOMIC_RELAXED);
}

/* GET /hold-then-lock: a batch on the request's own connection that locks row 1 of
   locks, waits for the test's advisory lock 4242, then locks row 2 */
static void hold_then_lock(mw_req *rq, mw_res *rs) {
    mw_pg_stmt st[] = {{"UPDATE locks SET n = n + 1 WHERE id = 1", 0, NULL},
                       {"SELECT pg_advisory_xact_lock_shared(4242)", 0, NULL},
                       {"UPDATE locks SET n = n + 1 WHERE id = 2", 0, NULL}};
    PGresult *res[3];
    if (mw_pg_batch(rq, st, 3, res) == 0) mw_text(rs, 200, "locked");
}

/* GET /lock-2-then-1: one statement on the shared connection that locks row 2, then 1 */
static void lock_2_then_1(mw_req *rq, mw_res *rs) {
    if (mw_pg_query(rq,
                    "WITH first AS (UPDATE locks SET n = n + 1 WHERE id = 2 RETURNING id) "
                    "UPDATE locks SET n = n + 1 WHERE id = 1 AND (SELECT count(*) FROM first) = 1",
                    0, NULL))
        mw_text(rs, 200, "locked");
}

/* Statements that count their runs in the sequence runs and then fail with a
   serialization failure (conflict(), SQLSTATE 40001), as a deadlock's victim does. */
static void conflict_statement(mw_req *rq, mw_res *rs) { /* GET /conflict: on the shared connection */
    if (mw_pg_query(rq, "SELECT nextval('runs'), conflict()", 0, NULL)) mw_text(rs, 200, "no conflict?");
}
static void conflict_batch(mw_req *rq, mw_res *rs) { /* GET /conflict-batch: on the request's own */
    mw_pg_stmt st[] = {{"SELECT nextval('runs')", 0, NULL}, {"SELECT conflict()", 0, NULL}};
    PGresult *res[2];
    if (mw_pg_batch(rq, st, 2, res) == 0) mw_text(rs, 200, "no conflict?");
}
static void conflict_in_transaction(mw_req *rq, mw_res *rs) { /* GET /conflict-in-tx: after BEGIN */
    if (mw_pg_query(rq, "BEGIN", 0, NULL) && mw_pg_query(rq, "SELECT nextval('runs'), conflict()", 0, NULL))
        mw_text(rs, 200, "no conflict?");
}
static void conflict_after_commit(mw_req *rq, mw_res *rs) { /* GET /conflict-call: a procedure that commits first */
    if (mw_pg_query(rq, "CALL commit_then_conflict()", 0, NULL)) mw_text(rs, 200, "no conflict?");
}

static int runs_again; /* the log lines that say a statement or batch runs again */
static void count_runs_again(void *arg, mw_log_level level, const char *line) {
    (void)arg, (void)level;
    if (strstr(line, "running it again")) __atomic_fetch_add(&runs_again, 1, __ATOMIC_RELAXED);
    fprintf(stderr, "%s\n", line);
}

/* GET /pids: the server processes of this database's other clients, as a count */
static void pids(mw_req *rq, mw_res *rs) {
    mw_pg_json_one(rq, rs,
                   "SELECT count(*) AS n FROM pg_stat_activity "
                   "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                   0, NULL);
}

/* ---- a keep-alive HTTP client ---- */

static int connect_local(void) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) close(fd), fd = -1;
    return fd;
}

/* GET target on fd: the status, with the body in body (NUL-terminated); -1 when the
   connection failed. */
static int get_on(int fd, const char *target, char *body, size_t cap) {
    char buf[4096], req[256];
    size_t have = 0, len;
    char *end, *cl;
    int status;
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target);
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) return -1;
    for (;;) {
        ssize_t n;
        buf[have] = '\0';
        if ((end = strstr(buf, "\r\n\r\n")) != NULL) {
            cl = strstr(buf, "Content-Length: ");
            len = cl ? (size_t)atol(cl + 16) : 0;
            if (have >= (size_t)(end + 4 - buf) + len) break;
        }
        if (have + 1 >= sizeof buf || (n = recv(fd, buf + have, sizeof buf - 1 - have, 0)) <= 0) return -1;
        have += (size_t)n;
    }
    status = atoi(buf + 9);
    snprintf(body, cap, "%.*s", (int)len, end + 4);
    return status;
}

static int get(const char *target, char *body, size_t cap) {
    int fd = connect_local(), status = fd < 0 ? -1 : get_on(fd, target, body, cap);
    if (fd >= 0) close(fd);
    return status;
}

/* One client's requests: /double/n for its own numbers; of every ten, one each of
   /fail, /empty, /copy and /batch-fail (each a 500 of its own), a /tx and a /batch/n. */
typedef struct client {
    int id;
    int wrong, failed_as_500, transactions, not_alone;
    long long pids[4];
    int npids;
    char first_wrong[256];
} client;

static void note_pid(client *c, long long pid) {
    int i;
    for (i = 0; i < c->npids && c->pids[i] != pid; i++) {}
    if (i == c->npids && c->npids < 4) c->pids[c->npids++] = pid;
}

static void note_wrong(client *c, const char *target, int status, const char *body) {
    if (!c->wrong++) snprintf(c->first_wrong, sizeof c->first_wrong, "%s -> %d %.160s", target, status, body);
}

static void *run_client(void *arg) {
    client *c = (client *)arg;
    int fd = connect_local(), i;
    for (i = 0; i < REQUESTS; i++) {
        char target[64], body[512], want[64];
        int n = c->id * 100000 + i, status;
        const char *failing = i % 10 == 3   ? "/fail"
                              : i % 10 == 5 ? "/empty"
                              : i % 10 == 6 ? "/batch-fail"
                              : i % 10 == 9 ? "/copy"
                                            : NULL;
        if (failing) {
            status = get_on(fd, failing, body, sizeof body);
            if (status == 500 && strstr(body, "database error")) c->failed_as_500++;
            else note_wrong(c, failing, status, body);
            continue;
        }
        if (i % 10 == 1) {
            snprintf(target, sizeof target, "/batch/%d", n);
            snprintf(want, sizeof want, "%d ", 2 * n);
            status = get_on(fd, target, body, sizeof body);
            if (status != 200 || strncmp(body, want, strlen(want)) != 0 || !strstr(body, " one"))
                note_wrong(c, target, status, body);
            continue;
        }
        if (i % 10 == 7) {
            status = get_on(fd, "/tx", body, sizeof body);
            if (status == 200 && strncmp(body, "one transaction ", 16) == 0) c->transactions++;
            else note_wrong(c, "/tx", status, body);
            continue;
        }
        snprintf(target, sizeof target, "/double/%d", n);
        snprintf(want, sizeof want, "{\"v\":%d,\"pid\":", 2 * n);
        status = get_on(fd, target, body, sizeof body);
        if (status != 200 || strncmp(body, want, strlen(want)) != 0) {
            note_wrong(c, target, status, body);
            continue;
        }
        note_pid(c, atoll(body + strlen(want)));
        if (!strstr(body, "\"alone\":true")) c->not_alone++;
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static void *serve(void *a) { return (void *)(long)mw_serve((mw_app *)a); }

static mw_app *make_app(const char *conninfo, int shared) {
    mw_app *a = mw_app_new();
    mw_set_limit(a, MW_LIMIT_THREADS, WORKERS);
    mw_set_limit(a, MW_LIMIT_PG_POOL_SIZE, 4);
    mw_set_limit(a, MW_LIMIT_PG_SHARED, shared);
    mw_set_limit(a, MW_LIMIT_PG_CONNECT_TIMEOUT_S, 2);
    mw_set_limit(a, MW_LIMIT_PG_STATEMENT_TIMEOUT_MS, 2000);
    mw_set_limit(a, MW_LIMIT_PG_ACQUIRE_TIMEOUT_MS, 1000);
    mw_set_limit(a, MW_LIMIT_PG_RETRY_MS, 60000); /* a failed connect: 503 at once after it */
    mw_pg_configure(a, conninfo);
    mw_get(a, "/double/{n:int}", twice);
    mw_get(a, "/fail", fail);
    mw_get(a, "/unparsable", unparsable);
    mw_get(a, "/sleep/{ms:int}", sleep_ms);
    mw_get(a, "/empty", empty);
    mw_get(a, "/copy", copy);
    mw_get(a, "/idle-timeout", idle_timeout);
    mw_get(a, "/tx", tx);
    mw_get(a, "/pids", pids);
    mw_get(a, "/batch/{n:int}", batch);
    mw_get(a, "/batch-fail", batch_fail);
    mw_get(a, "/hold-then-lock", hold_then_lock);
    mw_get(a, "/lock-2-then-1", lock_2_then_1);
    mw_get(a, "/conflict", conflict_statement);
    mw_get(a, "/conflict-batch", conflict_batch);
    mw_get(a, "/conflict-in-tx", conflict_in_transaction);
    mw_get(a, "/conflict-call", conflict_after_commit);
    mw_set_logger(a, count_runs_again, NULL);
    return a;
}

static void start(void) {
    app = make_app(NULL, 1);
    port = mw_listen(app, "127.0.0.1", 0);
    if (port > 0) pthread_create(&server, NULL, serve, app);
}

static void stop(void) {
    mw_stop(app);
    pthread_join(server, NULL);
    mw_app_free(app);
}

/* The server process behind the shared connection now. */
static long long shared_pid(void) {
    char body[256];
    const char *pid;
    if (get("/double/1", body, sizeof body) != 200 || !(pid = strstr(body, "\"pid\":"))) return -1;
    return atoll(pid + 6);
}

TEST(concurrent_requests_each_get_their_own_result_on_one_shared_connection) {
    client clients[CLIENTS];
    pthread_t t[CLIENTS];
    long long pid = -1;
    int i, j, wrong = 0, failed = 0, transactions = 0, not_alone = 0, pids_seen = 0;
    memset(clients, 0, sizeof clients);
    for (i = 0; i < CLIENTS; i++) clients[i].id = i + 1, pthread_create(&t[i], NULL, run_client, &clients[i]);
    for (i = 0; i < CLIENTS; i++) pthread_join(t[i], NULL);
    for (i = 0; i < CLIENTS; i++) {
        wrong += clients[i].wrong, failed += clients[i].failed_as_500;
        transactions += clients[i].transactions, not_alone += clients[i].not_alone;
        if (clients[i].wrong) printf("  client %d: %d wrong, first %s\n", i, clients[i].wrong, clients[i].first_wrong);
        for (j = 0; j < clients[i].npids; j++) {
            if (pid < 0) pid = clients[i].pids[j], pids_seen = 1;
            else if (clients[i].pids[j] != pid) pids_seen++;
        }
    }
    CHECK_INT(wrong, 0);
    CHECK_INT(failed, 4 * CLIENTS * REQUESTS / 10); /* a failed statement is its request's alone */
    CHECK_INT(__atomic_load_n(&batch_failures_as_documented, __ATOMIC_RELAXED), CLIENTS * REQUESTS / 10);
    CHECK_INT(transactions, CLIENTS * REQUESTS / 10); /* BEGIN: the request's own connection */
    CHECK_INT(not_alone, 0);                          /* no statement ran inside another's transaction */
    CHECK_INT(pids_seen, 1);                          /* every single statement on the one shared connection */
}

/* A request made from a thread of its own. */
typedef struct call {
    const char *target;
    int status;
    char body[256];
    pthread_t thread;
} call;

static void *make_call(void *arg) {
    call *c = (call *)arg;
    c->status = get(c->target, c->body, sizeof c->body);
    return NULL;
}

static void start_call(call *c, const char *target) {
    c->target = target;
    c->status = 0;
    pthread_create(&c->thread, NULL, make_call, c);
}

/* The shared connection's state: whether a round trip is out, and how many statements
   wait for the next. */
static int queued_on_shared(int *busy) {
    mw__pg_shared *sh = &mw__pg_pool_of(app)->shared[0];
    mw__pg_turn *t;
    int n = 0;
    pthread_mutex_lock(&sh->lock);
    for (t = sh->first; t; t = t->next) n++;
    *busy = sh->busy;
    pthread_mutex_unlock(&sh->lock);
    return n;
}

/* Polls until the shared connection has a round trip out and `want` statements
   waiting for the next; 0 after 5 s without. */
static int wait_for_queue(int want) {
    int i, busy = 0;
    for (i = 0; i < 500; i++) {
        struct timespec ms10 = {0, 10000000L};
        if (queued_on_shared(&busy) >= want && busy) return 1;
        nanosleep(&ms10, NULL);
    }
    return 0;
}

TEST(statements_that_come_during_a_round_trip_wait_and_go_in_the_next) {
    call slow, quick[3];
    int i;
    start_call(&slow, "/sleep/600"); /* its round trip holds the connection 600 ms (under the 1 s acquire timeout) */
    CHECK(wait_for_queue(0));
    start_call(&quick[0], "/double/10");
    start_call(&quick[1], "/double/11");
    start_call(&quick[2], "/double/12");
    CHECK(wait_for_queue(3)); /* all three wait together for the next round trip */
    pthread_join(slow.thread, NULL);
    CHECK_INT(slow.status, 200);
    for (i = 0; i < 3; i++) {
        char want[32];
        pthread_join(quick[i].thread, NULL);
        snprintf(want, sizeof want, "{\"v\":%d,", 2 * (10 + i));
        CHECK_INT(quick[i].status, 200);
        CHECK(strncmp(quick[i].body, want, strlen(want)) == 0);
    }
}

TEST(statement_still_queued_after_the_acquire_timeout_is_503) {
    call slow, queued;
    char body[256];
    start_call(&slow, "/sleep/1500"); /* past MW_PG_ACQUIRE_TIMEOUT_MS (1 s) */
    CHECK(wait_for_queue(0));
    start_call(&queued, "/double/7");
    pthread_join(queued.thread, NULL);
    pthread_join(slow.thread, NULL);
    CHECK_INT(queued.status, 503);
    CHECK(strstr(queued.body, "no database connection free") != NULL);
    CHECK_INT(slow.status, 200);
    CHECK_INT(get("/double/7", body, sizeof body), 200); /* and the connection serves on */
}

TEST(batch_runs_on_the_requests_own_connection_as_one_transaction) {
    char body[256];
    long long shared = shared_pid();
    CHECK_INT(get("/batch/5", body, sizeof body), 200);
    CHECK(strncmp(body, "10 ", 3) == 0 && strstr(body, " one") != NULL);
    CHECK(shared > 0 && atoll(body + 3) > 0 && atoll(body + 3) != shared);
}

/* The first value of sql's answer on the connection c, or "" */
static void value_on(PGconn *c, const char *sql, char *out, size_t cap) {
    PGresult *r = PQexec(c, sql);
    snprintf(out, cap, "%s", PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
}

/* The same on a connection of the test's own */
static void sql_value(const char *sql, char *out, size_t cap) {
    PGconn *c = PQconnectdb(getenv("DATABASE_URL"));
    value_on(c, sql, out, cap);
    PQfinish(c);
}

/* Polls until a server process waits on a lock of the kind wait_event; 0 after 5 s. */
static int someone_waits_on(PGconn *c, const char *wait_event) {
    char sql[160], n[16];
    int i;
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = '%s'", wait_event);
    for (i = 0; i < 500; i++) {
        struct timespec ms10 = {0, 10000000L};
        value_on(c, sql, n, sizeof n);
        if (atoi(n) > 0) return 1;
        nanosleep(&ms10, NULL);
    }
    return 0;
}

/* A table of two rows to lock, the sequence runs, conflict() and a procedure that
   commits before its conflict. */
static void make_conflicts(void) {
    char ok[8];
    sql_value("DROP TABLE IF EXISTS locks, committed; DROP SEQUENCE IF EXISTS runs;"
              "CREATE TABLE locks (id int PRIMARY KEY, n int NOT NULL); INSERT INTO locks VALUES (1, 0), (2, 0);"
              "CREATE TABLE committed (n int); CREATE SEQUENCE runs;"
              "CREATE OR REPLACE FUNCTION conflict() RETURNS int LANGUAGE plpgsql AS "
              "$$ BEGIN RAISE EXCEPTION 'a conflict' USING ERRCODE = '40001'; END $$;"
              "CREATE OR REPLACE PROCEDURE commit_then_conflict() LANGUAGE plpgsql AS "
              "$$ BEGIN INSERT INTO committed VALUES (nextval('runs')); COMMIT; PERFORM conflict(); END $$;"
              "SELECT 'ok'",
              ok, sizeof ok);
    CHECK_STR(ok, "ok");
}

/* target's answer and how many times its statements ran (the sequence runs) */
static void runs_of(const char *target, int want_status, const char *want_runs) {
    char body[512], runs[16];
    make_conflicts();
    CHECK_INT(get(target, body, sizeof body), want_status);
    sql_value("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM runs", runs, sizeof runs);
    CHECK_STR(runs, want_runs);
}

TEST(statement_a_conflict_undid_runs_again_then_500) {
    runs_of("/conflict", 500, "3");
} /* 1 + MW_PG_CONFLICT_RETRIES */

TEST(batch_a_conflict_undid_runs_again_then_500) { runs_of("/conflict-batch", 500, "3"); }

TEST(conflict_inside_the_requests_transaction_is_not_run_again) { runs_of("/conflict-in-tx", 500, "1"); }

TEST(call_that_committed_before_its_conflict_is_not_run_again) {
    char rows[16];
    runs_of("/conflict-call", 500, "1");
    sql_value("SELECT count(*) FROM committed", rows, sizeof rows);
    CHECK_STR(rows, "1");
}

/* A real deadlock: the batch locks row 1 and waits for the test's advisory lock; the
   shared statement locks row 2 and waits for row 1; the test lets the batch go on to
   row 2. PostgreSQL undoes the one that waited first, the shared statement, which runs
   again: both 200, each row counted twice. */
TEST(deadlocked_statement_runs_again_and_both_answer_200) {
    call batch, statement;
    char rows[64];
    PGconn *c = PQconnectdb(getenv("DATABASE_URL"));
    int before = __atomic_load_n(&runs_again, __ATOMIC_RELAXED);
    make_conflicts();
    value_on(c, "SELECT pg_advisory_lock(4242)::text", rows, sizeof rows);
    start_call(&batch, "/hold-then-lock");
    CHECK(someone_waits_on(c, "advisory"));
    start_call(&statement, "/lock-2-then-1");
    CHECK(someone_waits_on(c, "transactionid"));
    value_on(c, "SELECT pg_advisory_unlock(4242)::text", rows, sizeof rows);
    pthread_join(batch.thread, NULL);
    pthread_join(statement.thread, NULL);
    PQfinish(c);
    CHECK_INT(batch.status, 200);
    CHECK_INT(statement.status, 200);
    CHECK(__atomic_load_n(&runs_again, __ATOMIC_RELAXED) > before);
    sql_value("SELECT string_agg(n::text, ' ' ORDER BY id) FROM locks", rows, sizeof rows);
    CHECK_STR(rows, "2 2");
}

TEST(begin_after_comments_gets_the_requests_own_connection) {
    char body[256];
    long long shared = shared_pid();
    CHECK_INT(get("/tx", body, sizeof body), 200);
    CHECK(strncmp(body, "one transaction ", 16) == 0);
    CHECK(shared > 0 && atoll(body + 16) > 0 && atoll(body + 16) != shared);
}

TEST(shared_connection_plus_the_pool_is_all_the_database_sees) {
    char body[256];
    /* after the load: the shared connection, and the pool's connections for /tx (at most 4) */
    long n = get("/pids", body, sizeof body) == 200 && strncmp(body, "{\"n\":", 5) == 0 ? atol(body + 5) : -1;
    CHECK(n >= 1 && n <= 1 + 4);
}

TEST(statement_the_server_cannot_prepare_is_500_and_the_connection_stays) {
    char body[512];
    long long before = shared_pid();
    CHECK_INT(get("/unparsable", body, sizeof body), 500);
    CHECK(strstr(body, "database error") != NULL);
    CHECK(before > 0);
    CHECK_INT(shared_pid(), before);
}

TEST(statement_timeout_is_504_and_the_connection_stays) {
    char body[512];
    long long before = shared_pid();
    CHECK_INT(get("/sleep/5000", body, sizeof body), 504);
    CHECK(before > 0);
    CHECK_INT(shared_pid(), before);
}

TEST(shared_connection_the_server_dropped_is_replaced_and_the_statement_answered) {
    long long before = shared_pid(), after;
    char sql[96];
    PGconn *c = PQconnectdb(getenv("DATABASE_URL"));
    PGresult *r;
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld, 5000)", before); /* returns once it is gone */
    r = PQexec(c, sql);
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "t") == 0);
    PQclear(r);
    PQfinish(c);
    after = shared_pid(); /* the first statement after: retried on a new connection */
    CHECK(before > 0);
    CHECK(after > 0 && after != before);
}

/* Polls until the server process pid has gone; 0 after 5 s. */
static int backend_gone(long long pid) {
    PGconn *c = PQconnectdb(getenv("DATABASE_URL"));
    char sql[96];
    int i, gone = 0;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE pid = %lld", pid);
    for (i = 0; i < 500 && !gone; i++) {
        struct timespec ms10 = {0, 10000000L};
        PGresult *r = PQexec(c, sql);
        gone = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "0") == 0;
        PQclear(r);
        if (!gone) nanosleep(&ms10, NULL);
    }
    PQfinish(c);
    return gone;
}

static long long pid_in(const mw_test_res *r) {
    const char *pid = r->status == 200 && r->body_len ? strstr(r->body, "\"pid\":") : NULL;
    return pid ? atoll(pid + 6) : -1;
}

/* A connection the server ends itself when idle (FATAL 57P05, idle_session_timeout):
   the next statement is sent again on a new connection, shared (MW_PG_SHARED 1) or the
   pool's (0, a pool of one). */
static void idle_ended_connection_is_replaced(int shared) {
    mw_app *a = make_app(NULL, shared);
    mw_test_res *first, *set, *after;
    mw_set_limit(a, MW_LIMIT_PG_POOL_SIZE, 1);
    first = mw_test_request(a, "GET", "/double/3", NULL, NULL, 0);
    set = mw_test_request(a, "GET", "/idle-timeout", NULL, NULL, 0);
    CHECK_INT(set->status, 200);
    CHECK(pid_in(first) > 0 && backend_gone(pid_in(first)));
    after = mw_test_request(a, "GET", "/double/3", NULL, NULL, 0);
    CHECK_INT(after->status, 200);
    CHECK(pid_in(after) > 0 && pid_in(after) != pid_in(first));
    mw_test_free(first);
    mw_test_free(set);
    mw_test_free(after);
    mw_app_free(a);
}

TEST(connection_the_server_ended_for_idleness_is_replaced_shared) { idle_ended_connection_is_replaced(1); }

TEST(connection_the_server_ended_for_idleness_is_replaced_pooled) { idle_ended_connection_is_replaced(0); }

TEST(database_unreachable_is_503_then_503_at_once_while_backing_off) {
    mw_app *down = make_app("host=127.0.0.1 port=1 dbname=none connect_timeout=2", 1);
    mw_test_res *r = mw_test_request(down, "GET", "/double/2", NULL, NULL, 0), *again;
    CHECK_INT(r->status, 503);
    CHECK(r->body_len > 0 && strstr(r->body, "database unavailable") != NULL);
    again = mw_test_request(down, "GET", "/double/2", NULL, NULL, 0);
    CHECK_INT(again->status, 503);
    CHECK(again->body_len > 0 && strstr(again->body, "retrying soon") != NULL);
    mw_test_free(r);
    mw_test_free(again);
    mw_app_free(down);
}

TEST(without_the_setting_each_request_checks_out_its_own) {
    mw_app *own = make_app(NULL, 0);
    mw_test_res *r = mw_test_request(own, "GET", "/double/21", NULL, NULL, 0);
    CHECK_INT(r->status, 200);
    CHECK(r->body_len > 8 && strncmp(r->body, "{\"v\":42,", 8) == 0);
    mw_test_free(r);
    mw_app_free(own);
}

int main(void) {
    if (!getenv("DATABASE_URL")) {
        printf("SKIP pg_shared: no DATABASE_URL\n");
        return test_summary();
    }
    start();
    if (port <= 0) {
        printf("FAIL server_listens\n0 passed, 1 failed\n");
        return 1;
    }
    RUN(concurrent_requests_each_get_their_own_result_on_one_shared_connection);
    RUN(statements_that_come_during_a_round_trip_wait_and_go_in_the_next);
    RUN(statement_still_queued_after_the_acquire_timeout_is_503);
    RUN(batch_runs_on_the_requests_own_connection_as_one_transaction);
    RUN(begin_after_comments_gets_the_requests_own_connection);
    RUN(shared_connection_plus_the_pool_is_all_the_database_sees);
    RUN(statement_a_conflict_undid_runs_again_then_500);
    RUN(batch_a_conflict_undid_runs_again_then_500);
    RUN(conflict_inside_the_requests_transaction_is_not_run_again);
    RUN(call_that_committed_before_its_conflict_is_not_run_again);
    RUN(deadlocked_statement_runs_again_and_both_answer_200);
    RUN(statement_the_server_cannot_prepare_is_500_and_the_connection_stays);
    RUN(statement_timeout_is_504_and_the_connection_stays);
    RUN(shared_connection_the_server_dropped_is_replaced_and_the_statement_answered);
    stop();
    RUN(connection_the_server_ended_for_idleness_is_replaced_shared);
    RUN(connection_the_server_ended_for_idleness_is_replaced_pooled);
    RUN(database_unreachable_is_503_then_503_at_once_while_backing_off);
    RUN(without_the_setting_each_request_checks_out_its_own);
    return test_summary();
}
