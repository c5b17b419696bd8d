/* idle_app.c - examples/hello.c's three routes, built by bench/run.py for the memory row
   only (10,000 idle keep-alive connections). hello keeps the defaults, a 10,000
   connection cap and a 5 s keep-alive timeout, and reads neither from the environment;
   this app raises both so that 10,000 connections stay open while RSS is read.
   Every throughput row runs examples/hello.c itself. */
#define HELLO_NO_MAIN /* hello.c's app and routes, without its main() */
#include "../examples/hello.c"

int main(void) {
    mw_app *app = hello_app();
    mw_set_limit(app, MW_LIMIT_CONNECTIONS, 20000);           /* hello: 10,000 */
    mw_set_limit(app, MW_LIMIT_KEEPALIVE_TIMEOUT_MS, 120000); /* hello: 5 s */
    return mw_run(app);
}
