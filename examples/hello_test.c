/* hello_test.c - how to test your own app: build it with the in-process test client
   and check what each route answers. No server, no socket, no thread.
   Build and run:  cc -pthread -I. examples/hello_test.c -o hello_test && ./hello_test */
#define HELLO_NO_MAIN /* take hello.c's routes, leave out its main() */
#include "hello.c"

#include <stdio.h>

static int passed, failed;

/* Prints and counts one expectation. */
static void expect(int ok, const char *what) {
    printf("%s %s\n", ok ? "PASS" : "FAIL", what);
    if (ok) passed++;
    else failed++;
}

static int body_is(const mw_test_res *r, const char *text) {
    return r->body_len == strlen(text) && memcmp(r->body, text, r->body_len) == 0;
}

int main(void) {
    mw_app *app = hello_app();
    mw_test_res *r;

    r = mw_test_request(app, "GET", "/", NULL, NULL, 0);
    expect(r->status == 200 && body_is(r, "Hello, World!"), "GET / says hello");
    mw_test_free(r);

    r = mw_test_request(app, "GET", "/users/42", NULL, NULL, 0);
    expect(r->status == 200 && body_is(r, "{\"id\":\"42\"}"), "GET /users/42 answers its id in JSON");
    expect(strcmp(mw_test_header(r, "Content-Type"), "application/json") == 0, "... as application/json");
    mw_test_free(r);

    r = mw_test_request(app, "POST", "/echo", "Content-Type: text/plain\r\n", "ping", 4);
    expect(r->status == 200 && body_is(r, "ping"), "POST /echo sends the body back");
    mw_test_free(r);

    r = mw_test_request(app, "GET", "/nowhere", NULL, NULL, 0);
    expect(r->status == 404, "an unknown path is 404");
    mw_test_free(r);

    mw_app_free(app);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
