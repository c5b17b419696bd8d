/* routes.c - step 2 of the course: routes and path parameters.
   A route is a method, a path pattern and the function that answers it. Patterns
   have static segments ("/books"), parameters (":name" or "{name}"), typed parameters
   ("{id:int}") and a wildcard for the rest of the path ("*path").
   Build and run:  make run APP=routes
   Then:           curl localhost:8080/books/7          -> {"id":7,"title":"Book 7"}
                   curl localhost:8080/books/seven      -> 404: not an int, no route matched
                   curl -X DELETE localhost:8080/books/7  -> 405, with Allow: GET, HEAD, OPTIONS
                   curl localhost:8080/authors/ada%20l  -> Books by ada l
                   curl localhost:8080/files/a/b.txt    -> file a/b.txt                     */
#define MICROWEB_IMPLEMENTATION /* exactly one .c file holds the implementation */
#include "microweb.h"

/* GET /books -> [{"id":1},{"id":2},{"id":3}], written with the JSON writer */
static void list_books(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    int id;
    (void)rq;
    mw_json_array(j);
    for (id = 1; id <= 3; id++) {
        mw_json_object(j);
        mw_json_key_int(j, "id", id);
        mw_json_close(j); /* closes this object */
    }
    mw_json_end(j); /* closes what is still open (the array) and finishes the answer */
}

/* GET /books/{id:int} -> the router calls this only when id is a whole number */
static void show_book(mw_req *rq, mw_res *rs) {
    long long id = 0;
    char title[32];
    mw_json *j;
    mw_param_int(rq, "id", &id);
    snprintf(title, sizeof title, "Book %lld", id);
    j = mw_json_begin(rs, 200);
    mw_json_object(j);
    mw_json_key_int(j, "id", id);
    mw_json_key_string(j, "title", title);
    mw_json_end(j);
}

/* GET /authors/:name -> text; the parameter arrives %-decoded ("ada%20l" is "ada l") */
static void books_by(mw_req *rq, mw_res *rs) { mw_printf(rs, "Books by %s\n", mw_param(rq, "name")); }

/* GET /files/ *path -> the rest of the path, slashes and all; the router has already
   refused ".." segments, so the value is safe to join to a folder */
static void file(mw_req *rq, mw_res *rs) { mw_printf(rs, "file %s\n", mw_param(rq, "path")); }

/* POST /books -> 201 Created, with a Location header naming the new book */
static void add_book(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_set_header(rs, "Location", "/books/4");
    mw_text(rs, 201, "created\n");
}

int main(void) {
    mw_app *app = mw_app_new();
    mw_get(app, "/books", list_books);
    mw_post(app, "/books", add_book); /* the same path with another method: another handler */
    mw_get(app, "/books/{id:int}", show_book);
    mw_get(app, "/authors/:name", books_by);
    mw_get(app, "/files/*path", file);
    return mw_run(app); /* serves on PORT (8080 by default) until Ctrl-C */
}
