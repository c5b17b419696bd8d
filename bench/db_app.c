/* db_app.c - TechEmpower's "single query" endpoint: GET /db/{id} answers one row of the
   10,000-row table world as JSON. DATABASE_URL names the database; BENCH_POOL sets the
   pool size and, unless BENCH_THREADS says otherwise, the worker threads (each blocks
   on its query); BENCH_SHARED sets MW_PG_SHARED (0: none); BENCH_PREPARE=0 runs the
   statements unprepared. */
#define MICROWEB_IMPLEMENTATION
#define MICROWEB_WITH_PG
#include "../microweb.h"

#include <stdlib.h>

static void db(mw_req *rq, mw_res *rs) {
    const char *p[] = {mw_param(rq, "id")};
    mw_pg_json_one(rq, rs, "SELECT id, randomnumber FROM world WHERE id = $1", 1, p);
}

int main(void) {
    mw_app *app = mw_app_new();
    const char *pool = getenv("BENCH_POOL"), *prepare = getenv("BENCH_PREPARE");
    const char *threads = getenv("BENCH_THREADS"), *shared = getenv("BENCH_SHARED");
    long long n = pool ? atoll(pool) : 4;
    mw_set_limit(app, MW_LIMIT_THREADS, threads ? atoll(threads) : n);
    mw_set_limit(app, MW_LIMIT_PG_POOL_SIZE, n);
    mw_set_limit(app, MW_LIMIT_PG_SHARED, shared ? atoll(shared) : 0);
    mw_set_limit(app, MW_LIMIT_PG_PREPARE, prepare && *prepare == '0' ? 0 : 1);
    mw_pg_configure(app, NULL);
    mw_get(app, "/db/{id:int}", db);
    return mw_run(app);
}
