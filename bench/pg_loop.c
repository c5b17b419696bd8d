/* pg_loop.c - the peer of db_app.c: the same query with libpq alone, with as many
   connections (one thread each) as db_app's pool, for a fixed time, or for a fixed
   count of queries per connection (for callgrind: instructions per query).
   usage: pg_loop CONNINFO CONNECTIONS SECONDS PREPARED(0|1) [COUNT]
          prints queries/s (with COUNT: the queries that succeeded) */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *conninfo;
static int seconds, prepared;
static long count; /* queries per connection; 0: as many as fit in the seconds */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *loop(void *arg) {
    static const char sql[] = "SELECT id, randomnumber FROM world WHERE id = $1";
    unsigned seed = (unsigned)(size_t)arg * 7919u + 1u;
    long *done = (long *)malloc(sizeof *done);
    PGconn *c = PQconnectdb(conninfo);
    double until = now() + seconds;
    long sent;
    *done = 0;
    if (PQstatus(c) != CONNECTION_OK) return fprintf(stderr, "%s", PQerrorMessage(c)), done;
    if (prepared) PQclear(PQprepare(c, "q", sql, 1, NULL));
    for (sent = 0; count ? sent < count : now() < until; sent++) {
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
    int i, n;
    if ((argc != 5 && argc != 6) || (n = atoi(argv[2])) < 1 || n > 64)
        return fprintf(stderr, "usage: %s CONNINFO N SECONDS PREPARED [COUNT]\n", argv[0]), 2;
    conninfo = argv[1];
    seconds = atoi(argv[3]);
    prepared = atoi(argv[4]);
    count = argc == 6 ? atol(argv[5]) : 0;
    for (i = 0; i < n; i++) pthread_create(&t[i], NULL, loop, (void *)(size_t)i);
    for (i = 0; i < n; i++) {
        void *done;
        pthread_join(t[i], &done);
        total += *(long *)done;
        free(done);
    }
    if (count) printf("%ld\n", total);
    else printf("%.0f\n", (double)total / seconds);
    return 0;
}
