/* pg_shared_app.c - db_app.c's endpoint (GET /db/{id}: one row of world as JSON) with
   the statements of several requests in one pipeline: a sketch, in the app, of a pool
   microweb does not have yet, for bench/db.py to measure against db_app.c.
   BENCH_THREADS workers (default 32) share BENCH_POOL connections (default 4), each in
   libpq's pipeline mode. A request sends its query and a sync of its own (an error
   stays inside it) under the connection's lock, then waits for its result. The first
   waiter in line reads for everyone: it polls the socket without the lock, hands each
   complete result to its waiter in order, and passes the reading on when its own has
   come. Anything out of order in the results stops the sketch loudly. */
#define MICROWEB_IMPLEMENTATION
#define MICROWEB_WITH_PG
#include "../microweb.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_CONNS 64

typedef struct waiter {
    pthread_cond_t woken;
    int done;
    PGresult *res;
    struct waiter *next;
} waiter;

typedef struct shared_conn {
    pthread_mutex_t lock;
    PGconn *conn;
    waiter *head, *tail; /* the requests whose results are still to come, in order */
    int reading;         /* a waiter reads the socket for everyone */
    int part;            /* of the head's results: 0 its rows, 1 the NULL after them, 2 the sync */
} shared_conn;

static shared_conn conns[MAX_CONNS];
static int nconns, next_conn;

static void out_of_order(const char *what) {
    fprintf(stderr, "pg_shared_app: %s\n", what);
    abort();
}

/* Hands the results that have come to their waiters, in order; under c->lock. */
static void hand_out(shared_conn *c) {
    while (c->head && !PQisBusy(c->conn)) {
        PGresult *r = PQgetResult(c->conn);
        waiter *w = c->head;
        if (c->part == 0) {
            w->res = r, c->part = 1;
        } else if (c->part == 1) {
            if (r) out_of_order("a second result for one query");
            c->part = 2;
        } else {
            if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) out_of_order("no sync after a query");
            PQclear(r);
            c->part = 0, w->done = 1;
            if (!(c->head = w->next)) c->tail = NULL;
            pthread_cond_signal(&w->woken);
        }
    }
}

/* Reads for every waiter until w's result has come; under c->lock, released while
   the socket is waited on so that others can send meanwhile. */
static void read_until_done(shared_conn *c, waiter *w) {
    c->reading = 1;
    for (hand_out(c); !w->done; hand_out(c)) {
        struct pollfd p;
        p.fd = PQsocket(c->conn), p.events = POLLIN, p.revents = 0;
        pthread_mutex_unlock(&c->lock);
        poll(&p, 1, -1);
        pthread_mutex_lock(&c->lock);
        if (!PQconsumeInput(c->conn)) out_of_order(PQerrorMessage(c->conn));
    }
    c->reading = 0;
    if (c->head) pthread_cond_signal(&c->head->woken); /* the next in line reads now */
}

static PGresult *query(const char *id) {
    static __thread shared_conn *mine;
    const char *params[1];
    waiter w;
    params[0] = id;
    if (!mine) mine = &conns[__atomic_fetch_add(&next_conn, 1, __ATOMIC_RELAXED) % nconns];
    pthread_cond_init(&w.woken, NULL);
    w.done = 0, w.res = NULL, w.next = NULL;
    pthread_mutex_lock(&mine->lock);
    if (!PQsendQueryPrepared(mine->conn, "world", 1, params, NULL, NULL, 0) || !PQpipelineSync(mine->conn))
        out_of_order(PQerrorMessage(mine->conn));
    if (mine->tail) mine->tail->next = &w;
    else mine->head = &w;
    mine->tail = &w;
    while (!w.done) {
        if (!mine->reading) read_until_done(mine, &w);
        else pthread_cond_wait(&w.woken, &mine->lock);
    }
    pthread_mutex_unlock(&mine->lock);
    pthread_cond_destroy(&w.woken);
    return w.res;
}

static void db(mw_req *rq, mw_res *rs) {
    PGresult *r = query(mw_param(rq, "id"));
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        mw_json *j = mw_json_begin(rs, 200);
        mw_json_object(j);
        mw_json_key_int(j, "id", atoi(PQgetvalue(r, 0, 0)));
        mw_json_key_int(j, "randomnumber", atoi(PQgetvalue(r, 0, 1)));
        mw_json_close(j);
        mw_json_end(j);
    } else {
        int found = PQresultStatus(r) == PGRES_TUPLES_OK;
        mw_error(rs, found ? 404 : 500, found ? "no such row" : "the query failed");
    }
    PQclear(r);
}

int main(void) {
    mw_app *app = mw_app_new();
    const char *pool = getenv("BENCH_POOL"), *threads = getenv("BENCH_THREADS");
    int i;
    nconns = pool ? atoi(pool) : 4;
    if (nconns < 1 || nconns > MAX_CONNS) return fprintf(stderr, "BENCH_POOL: 1 to %d\n", MAX_CONNS), 2;
    for (i = 0; i < nconns; i++) {
        PGresult *r;
        conns[i].conn = PQconnectdb(getenv("DATABASE_URL") ? getenv("DATABASE_URL") : "");
        if (PQstatus(conns[i].conn) != CONNECTION_OK) return fprintf(stderr, "%s", PQerrorMessage(conns[i].conn)), 1;
        r = PQprepare(conns[i].conn, "world", "SELECT id, randomnumber FROM world WHERE id = $1", 1, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK || !PQenterPipelineMode(conns[i].conn))
            return fprintf(stderr, "%s", PQerrorMessage(conns[i].conn)), 1;
        PQclear(r);
        pthread_mutex_init(&conns[i].lock, NULL);
    }
    mw_set_limit(app, MW_LIMIT_THREADS, threads ? atoll(threads) : 32);
    mw_get(app, "/db/{id:int}", db);
    return mw_run(app);
}
