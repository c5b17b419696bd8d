/* todo_pg.c - a todo list API stored in PostgreSQL: a pool of connections, statements with
   parameters, rows answered as typed JSON.
   Run:   make run APP=todo_pg   (a throwaway database, then this app on PORT, default 8080)
     or:  DATABASE_URL=postgresql://user@localhost/db build/todo_pg   (make build/todo_pg needs libpq)
   Try:   curl -d '{"title":"buy milk"}' localhost:8080/todos       -> 201 {"id":1,...}
          curl localhost:8080/todos                                  -> [{"id":1,...}]
          curl -X PUT -d '{"done":true}' localhost:8080/todos/1      -> 200 {"id":1,...}
          curl -X DELETE localhost:8080/todos/1                      -> 204
   Every value from the client travels as a query parameter ($1, $2 ...), apart from
   the SQL text, so no title can ever change a statement.                           */
#define MICROWEB_IMPLEMENTATION /* this file holds the implementation (exactly one file does) */
#include "microweb.h"           /* and with it libpq's libpq-fe.h and the C library */

/* The fields of a todo in a request body, as text for SQL parameters: title, and done as "true"/"false";
   NULL when the body leaves the field out. Returns what is wrong with the body, or NULL when it is fine. */
static const char *read_todo(mw_req *rq, const char **title, const char **done) {
    const mw_jv *body = mw_req_json(rq), *t = mw_jv_get(body, "title"), *d = mw_jv_get(body, "done");
    size_t chars = 0;
    const char *s;
    *title = *done = NULL;
    if (!body) return "invalid JSON"; /* microweb answers 400 with where the JSON broke */
    if (mw_jv_kind(body) != MW_JV_OBJECT) return "the body must be a JSON object";
    if (t) {
        if (mw_jv_kind(t) != MW_JV_STRING) return "title must be a string";
        if (!(s = mw_jv_str(t, NULL))) return "title must not contain \\u0000"; /* a C string cannot hold NUL */
        if (!*s) return "title must not be empty";
        for (*title = s; *s; s++) chars += ((unsigned char)*s & 0xC0) != 0x80; /* UTF-8 lead bytes */
        if (chars > 500) return "title must be at most 500 characters";        /* characters, not bytes */
    }
    if (d) {
        if (mw_jv_kind(d) != MW_JV_TRUE && mw_jv_kind(d) != MW_JV_FALSE) return "done must be true or false";
        *done = mw_jv_bool(d, 0) ? "true" : "false";
    }
    return NULL;
}

/* GET /todos -> 200 [{"id":1,"title":"...","done":false}, ...] */
static void list_todos(mw_req *rq, mw_res *rs) {
    mw_pg_json(rq, rs, "SELECT id, title, done FROM todos ORDER BY id", 0, NULL);
}

/* GET /todos/{id} -> 200 the todo, or 404 */
static void get_todo(mw_req *rq, mw_res *rs) {
    const char *p[] = {mw_param(rq, "id")};
    mw_pg_json_one(rq, rs, "SELECT id, title, done FROM todos WHERE id = $1", 1, p);
}

/* POST /todos {"title":"...", "done":false (optional)} -> 201 the new todo (a database problem: 500/503/504) */
static void create_todo(mw_req *rq, mw_res *rs) {
    const char *p[2], *problem = read_todo(rq, &p[0], &p[1]);
    if (!problem && !p[0]) problem = "title is required";
    if (problem) mw_error(rs, 400, problem);
    else if (mw_pg_json_one(rq, rs,
                            "INSERT INTO todos (title, done) VALUES ($1, COALESCE($2::boolean, false)) "
                            "RETURNING id, title, done",
                            2, p) == 0)
        mw_status(rs, 201); /* the row it made, as 201 Created rather than 200 */
}

/* PUT /todos/{id} {"title":"...", "done":true} (either or both) -> 200 the todo, or 404 */
static void update_todo(mw_req *rq, mw_res *rs) {
    const char *p[3] = {mw_param(rq, "id")}, *problem = read_todo(rq, &p[1], &p[2]);
    if (!problem && !p[1] && !p[2]) problem = "give title and/or done";
    if (problem) mw_error(rs, 400, problem);
    else /* a NULL parameter is SQL NULL: COALESCE keeps the old value of a field left out */
        mw_pg_json_one(rq, rs,
                       "UPDATE todos SET title = COALESCE($2, title), done = COALESCE($3::boolean, done) "
                       "WHERE id = $1 RETURNING id, title, done",
                       3, p);
}

/* DELETE /todos/{id} -> 204, or 404 */
static void delete_todo(mw_req *rq, mw_res *rs) {
    const char *p[] = {mw_param(rq, "id")};
    PGresult *r = mw_pg_query(rq, "DELETE FROM todos WHERE id = $1 RETURNING id", 1, p);
    if (r && PQntuples(r) == 0) mw_error(rs, 404, "not found");
    else if (r) mw_status(rs, 204); /* no body */
}

int main(void) {
    mw_app *app = mw_app_new();
    mw_pg_configure(app, NULL); /* a pool of connections, from DATABASE_URL ("host=... dbname=..." or a URL) */
    mw_pg_setup(app, "CREATE TABLE IF NOT EXISTS todos (id bigserial primary key, title text not null,"
                     " done boolean not null default false)"); /* once, at start: the table, if missing */
    mw_get(app, "/todos", list_todos);
    mw_post(app, "/todos", create_todo);
    mw_get(app, "/todos/{id:int}", get_todo); /* "/todos/abc" never reaches a handler: 404 */
    mw_put(app, "/todos/{id:int}", update_todo);
    mw_delete(app, "/todos/{id:int}", delete_todo);
    mw_get(app, "/healthz", mw_pg_healthz); /* 200 while the database answers, else 503 */
    mw_health(app, "/livez", "/readyz");    /* alive: 200; ready: 200 unless the database is down or stopping */
    return mw_run(app); /* PORT from the environment (8080 by default); Ctrl-C stops it. If the database
                           settings or the setup above failed, it says why and refuses to start. */
}
