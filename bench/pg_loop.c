/* pg_loop.c - the peer of db_app.c: the same query with libpq alone, with as many
   connections (one thread each) as db_app's pool, for a fixed time, or for a fixed
   count of queries per connection (for callgrind: instructions per query). With DEPTH,
   each connection sends DEPTH prepared queries per round trip in pipeline mode, each
   ending in its own sync as separate requests' would (bench/db.py: what statements of
   several requests in one pipeline would save).
   usage: pg_loop CONNINFO CONNECTIONS SECONDS PREPARED(0|1) [COUNT [DEPTH]]
          prints queries/s (with COUNT: the queries that succeeded); exits 1 when a
          connection failed or a pipeline broke */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *conninfo;
static int seconds, prepared;
static long count; /* queries per connection; 0: as many as fit in the seconds */
static int depth;  /* queries per round trip in pipeline mode; 0: one at a time, no pipeline */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char sql[] = "SELECT id, randomnumber FROM world WHERE id = $1";

/* n queries sent together, each with its own sync; returns the ones answered with
   their row, or -1 when the pipeline broke. */
static long round_trip(PGconn *c, unsigned *seed, long n) {
    long ok = 0;
    long i;
    for (i = 0; i < n; i++) {
        char id[16];
        const char *p[] = {id};
        snprintf(id, sizeof id, "%d", (int)(rand_r(seed) % 10000) + 1);
        if (!PQsendQueryPrepared(c, "q", 1, p, NULL, NULL, 0) || !PQpipelineSync(c)) return -1;
    }
    for (i = 0; i < n; i++) {
        PGresult *r = PQgetResult(c), *end = PQgetResult(c), *sync = PQgetResult(c);
        ok += PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
        if (end || PQresultStatus(sync) != PGRES_PIPELINE_SYNC) ok = -1;
        PQclear(r), PQclear(end), PQclear(sync);
        if (ok < 0) return -1;
    }
    return ok;
}

/* A connection's end: its count of queries answered, or -1 when it failed. */
static long *given_up(long *done, PGconn *c, const char *what) {
    fprintf(stderr, "pg_loop: %s: %s", what, PQerrorMessage(c));
    PQfinish(c);
    *done = -1;
    return done;
}

static void *loop(void *arg) {
    unsigned seed = (unsigned)(size_t)arg * 7919u + 1u;
    long *done = (long *)malloc(sizeof *done);
    PGconn *c = PQconnectdb(conninfo);
    double until = now() + seconds;
    long sent;
    *done = 0;
    if (PQstatus(c) != CONNECTION_OK) return given_up(done, c, "connect");
    if (prepared || depth) PQclear(PQprepare(c, "q", sql, 1, NULL));
    if (depth && !PQenterPipelineMode(c)) return given_up(done, c, "pipeline mode");
    for (sent = 0; depth && (count ? sent < count : now() < until); sent += depth) {
        long ok = round_trip(c, &seed, count && count - sent < depth ? count - sent : depth);
        if (ok < 0) return given_up(done, c, "pipeline broke");
        *done += ok;
    }
    for (sent = 0; !depth && (count ? sent < count : now() < until); sent++) {
        char id[16];
        const char *p[] = {id};
        PGresult *r;
        snprintf(id, sizeof id, "%d", (int)(rand_r(&seed) % 10000) + 1);
        r = prepared ? PQexecPrepared(c, "q", 1, p, NULL, NULL, 0) : PQexecParams(c, sql, 1, NULL, p, NULL, NULL, 0);
        *done += PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
        PQclear(r);
    }
    PQfinish(c);
    return done;
}

int main(int argc, char **argv) {
    pthread_t t[64];
    long total = 0;
    int i, n, failed = 0;
    if (argc < 5 || argc > 7 || (n = atoi(argv[2])) < 1 || n > 64 || (argc == 7 && atoi(argv[6]) < 0))
        return fprintf(stderr, "usage: %s CONNINFO N SECONDS PREPARED [COUNT [DEPTH]]\n", argv[0]), 2;
    conninfo = argv[1];
    seconds = atoi(argv[3]);
    prepared = atoi(argv[4]);
    count = argc >= 6 ? atol(argv[5]) : 0;
    depth = argc == 7 ? atoi(argv[6]) : 0;
    for (i = 0; i < n; i++) pthread_create(&t[i], NULL, loop, (void *)(size_t)i);
    for (i = 0; i < n; i++) {
        void *done;
        pthread_join(t[i], &done);
        if (*(long *)done < 0) failed = 1;
        else total += *(long *)done;
        free(done);
    }
    if (count) printf("%ld\n", total);
    else printf("%.0f\n", (double)total / seconds);
    return failed;
}
