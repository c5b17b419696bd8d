/* notes.c - an in-memory notes API, fully declared: each route says what it takes and gives;
   microweb checks every request before its handler runs (a 422 lists every problem) and serves
   /openapi.json and a /docs page to try it. make run-notes; curl -H 'Content-Type: application/json' -d '{"tags": [1]}' localhost:8080/notes */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"

static struct note {
    long long id;
    mw_jv_doc *fields; /* title, body, tags: the request body, already checked */
} notes[1000];
static long long count, last_id;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* handlers run on several threads */

static void write_note(mw_json *j, const struct note *n, int last) { /* last: the response ends with it */
    const mw_jv *f;
    mw_json_object(j);
    mw_json_key_int(j, "id", n->id);
    for (f = mw_jv_first(mw_jv_root(n->fields)); f; f = mw_jv_next(f))
        mw_json_key(j, mw_jv_key(f)), mw_json_value(j, f);
    last ? mw_json_end(j) : mw_json_close(j);
}

static mw_jv_doc *copy_body(mw_req *rq) { return mw_jv_parse(mw_body(rq).ptr, mw_body(rq).len, NULL, NULL); }

static void list(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 200);
    long long i;
    (void)rq;
    pthread_mutex_lock(&lock);
    mw_json_array(j);
    for (i = 0; i < count; i++) write_note(j, &notes[i], 0);
    pthread_mutex_unlock(&lock);
    mw_json_end(j);
}

static void create(mw_req *rq, mw_res *rs) {
    pthread_mutex_lock(&lock);
    if (count == 1000) mw_error(rs, 507, "the notebook is full");
    else notes[count] = (struct note){++last_id, copy_body(rq)}, write_note(mw_json_begin(rs, 201), &notes[count++], 1);
    pthread_mutex_unlock(&lock);
}

static void one(mw_req *rq, mw_res *rs) { /* GET, PUT and DELETE /notes/{id:int} */
    struct note *n = notes;
    pthread_mutex_lock(&lock);
    while (n < notes + count && n->id != mw_arg_int(rq, "id")) n++; /* the note {id} names */
    if (n == notes + count) {
        mw_error(rs, 404, "no such note");
    } else if (strcmp(mw_method(rq), "DELETE") == 0) {
        mw_jv_free(n->fields);
        memmove(n, n + 1, (size_t)(notes + --count - n) * sizeof *n);
        mw_send(rs, 204, NULL, NULL, 0);
    } else {
        if (strcmp(mw_method(rq), "PUT") == 0) mw_jv_free(n->fields), n->fields = copy_body(rq);
        write_note(mw_json_begin(rs, 200), n, 1);
    }
    pthread_mutex_unlock(&lock);
}

#define INPUT "{title: string(1..200), body: string, tags?: [string]}" /* what POST and PUT take */
#define NOT_FOUND \
    { 404, "No such note", NULL }
/* mw_op: summary, description, tags, query, body, responses (status, description, schema), data */
static const mw_op list_op = {"All notes", NULL, "notes", NULL, NULL, {{200, NULL, "[Note]"}}, NULL};
static const mw_op add_op = {"Add a note", NULL, "notes", NULL, INPUT, {{201, "The new note", "Note"}}, NULL};
static const mw_op get_op = {"One note", NULL, "notes", NULL, NULL, {{200, NULL, "Note"}, NOT_FOUND}, NULL};
static const mw_op put_op = {"Replace a note", NULL, "notes", NULL, INPUT, {{200, NULL, "Note"}, NOT_FOUND}, NULL};
static const mw_op del_op = {"Delete a note", NULL, "notes", NULL, NULL, {{204, "Deleted", NULL}, NOT_FOUND}, NULL};
int main(void) {
    mw_app *app = mw_app_new();
    mw_schema(app, "Note", "{id: int, title: string, body: string, tags?: [string]}"); /* named: used above */
    mw_route_op(app, "GET", "/notes", list, &list_op);
    mw_route_op(app, "POST", "/notes", create, &add_op);
    mw_route_op(app, "GET", "/notes/{id:int}", one, &get_op);
    mw_route_op(app, "PUT", "/notes/{id:int}", one, &put_op);
    mw_route_op(app, "DELETE", "/notes/{id:int}", one, &del_op);
    mw_openapi(app, "Notes", "1.0.0");
    mw_docs(app); /* GET /docs: the API, and a form to try each route */
    return mw_run(app);
}
