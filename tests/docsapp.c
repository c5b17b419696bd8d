/* docsapp.c - the /docs page (mw_docs) in front of a small notes API whose OpenAPI 3.1
   document is written here by hand; tests/browser/docs.mjs and tests/docs.py drive it.

   GET /openapi.json            the document below
   GET /docs                    the page that reads it
   GET /notes?limit=&q=&sort=   the notes (limit 1..100, default 20)
   POST /notes                  {"title": 1..200 characters, "body": string, "tags"?: [string]} -> 201
   GET, PUT, DELETE /notes/{id:int}   200, 200, 204; 404 for an unknown id
   GET /health                  {"status":"ok"}
   A body or query that breaks the document's schema gets 422 in FastAPI's shape, every
   problem listed: {"status":422,"error":"Unprocessable Content","detail":[{"loc":["body",
   "title"],"msg":"Field required","type":"missing"}]}                                    */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"

#include <stdlib.h>
#include <string.h>

/* The document, a line per string (C99 caps one literal at 4095 bytes); joined in main. */
static const char *const openapi_lines[] = {
    "{",
    " \"openapi\": \"3.1.0\",",
    " \"info\": {",
    "  \"title\": \"Notes\",",
    "  \"version\": \"1.0.0\",",
    "  \"description\": \"Notes kept in memory.\\n\\nA request that breaks a schema gets **422**.\"",
    " },",
    " \"tags\": [",
    "  {\"name\": \"notes\", \"description\": \"Create, read, update and delete notes.\"},",
    "  {\"name\": \"meta\", \"description\": \"The service itself.\"}",
    " ],",
    " \"paths\": {",
    "  \"/notes\": {",
    "   \"get\": {",
    "    \"tags\": [\"notes\"],",
    "    \"summary\": \"List notes\",",
    "    \"description\": \"The notes, oldest first, at most `limit` of them.\",",
    "    \"operationId\": \"list_notes\",",
    "    \"parameters\": [",
    "     {",
    "      \"name\": \"limit\",",
    "      \"in\": \"query\",",
    "      \"required\": false,",
    "      \"description\": \"How many notes to return\",",
    "      \"schema\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 100, \"default\": 20}",
    "     },",
    "     {",
    "      \"name\": \"q\",",
    "      \"in\": \"query\",",
    "      \"required\": false,",
    "      \"description\": \"Only notes whose title contains this\",",
    "      \"schema\": {\"type\": \"string\", \"maxLength\": 50}",
    "     },",
    "     {",
    "      \"name\": \"sort\",",
    "      \"in\": \"query\",",
    "      \"required\": false,",
    "      \"schema\": {\"type\": \"string\", \"enum\": [\"asc\", \"desc\"], \"default\": \"asc\"}",
    "     }",
    "    ],",
    "    \"responses\": {",
    "     \"200\": {",
    "      \"description\": \"The notes\",",
    "      \"content\": {",
    "       \"application/json\": {",
    "        \"schema\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/components/schemas/Note\"}}",
    "       }",
    "      }",
    "     },",
    "     \"422\": {\"$ref\": \"#/components/responses/Invalid\"}",
    "    }",
    "   },",
    "   \"post\": {",
    "    \"tags\": [\"notes\"],",
    "    \"summary\": \"Create a note\",",
    "    \"description\": \"Stores a new note and answers it with its `id`.\",",
    "    \"operationId\": \"create_note\",",
    "    \"requestBody\": {",
    "     \"required\": true,",
    "     \"content\": {\"application/json\": {\"schema\": {\"$ref\": \"#/components/schemas/NoteIn\"}}}",
    "    },",
    "    \"responses\": {",
    "     \"201\": {",
    "      \"description\": \"The note, as stored\",",
    "      \"content\": {\"application/json\": {\"schema\": {\"$ref\": \"#/components/schemas/Note\"}}}",
    "     },",
    "     \"400\": {",
    "      \"description\": \"Malformed JSON\",",
    "      \"content\": {\"application/json\": {\"schema\": {\"$ref\": \"#/components/schemas/Error\"}}}",
    "     },",
    "     \"422\": {\"$ref\": \"#/components/responses/Invalid\"}",
    "    }",
    "   }",
    "  },",
    "  \"/notes/{id}\": {",
    "   \"parameters\": [",
    "    {",
    "     \"name\": \"id\",",
    "     \"in\": \"path\",",
    "     \"required\": true,",
    "     \"description\": \"The note's id\",",
    "     \"schema\": {\"type\": \"integer\"}",
    "    }",
    "   ],",
    "   \"get\": {",
    "    \"tags\": [\"notes\"],",
    "    \"summary\": \"Read a note\",",
    "    \"operationId\": \"read_note\",",
    "    \"responses\": {",
    "     \"200\": {",
    "      \"description\": \"The note\",",
    "      \"content\": {\"application/json\": {\"schema\": {\"$ref\": \"#/components/schemas/Note\"}}}",
    "     },",
    "     \"404\": {\"$ref\": \"#/components/responses/NotFound\"}",
    "    }",
    "   },",
    "   \"put\": {",
    "    \"tags\": [\"notes\"],",
    "    \"summary\": \"Replace a note\",",
    "    \"operationId\": \"replace_note\",",
    "    \"requestBody\": {",
    "     \"required\": true,",
    "     \"content\": {\"application/json\": {\"schema\": {\"$ref\": \"#/components/schemas/NoteIn\"}}}",
    "    },",
    "    \"responses\": {",
    "     \"200\": {",
    "      \"description\": \"The note, as stored now\",",
    "      \"content\": {\"application/json\": {\"schema\": {\"$ref\": \"#/components/schemas/Note\"}}}",
    "     },",
    "     \"404\": {\"$ref\": \"#/components/responses/NotFound\"},",
    "     \"422\": {\"$ref\": \"#/components/responses/Invalid\"}",
    "    }",
    "   },",
    "   \"delete\": {",
    "    \"tags\": [\"notes\"],",
    "    \"summary\": \"Delete a note\",",
    "    \"operationId\": \"delete_note\",",
    "    \"responses\": {",
    "     \"204\": {\"description\": \"Deleted\"},",
    "     \"404\": {\"$ref\": \"#/components/responses/NotFound\"}",
    "    }",
    "   }",
    "  },",
    "  \"/health\": {",
    "   \"get\": {",
    "    \"tags\": [\"meta\"],",
    "    \"summary\": \"Is the service up?\",",
    "    \"operationId\": \"health\",",
    "    \"responses\": {",
    "     \"200\": {",
    "      \"description\": \"It is\",",
    "      \"content\": {",
    "       \"application/json\": {",
    "        \"schema\": {",
    "         \"type\": \"object\",",
    "         \"properties\": {\"status\": {\"const\": \"ok\"}},",
    "         \"required\": [\"status\"]",
    "        }",
    "       }",
    "      }",
    "     }",
    "    }",
    "   }",
    "  }",
    " },",
    " \"components\": {",
    "  \"schemas\": {",
    "   \"NoteIn\": {",
    "    \"type\": \"object\",",
    "    \"description\": \"A note as a client writes it.\",",
    "    \"properties\": {",
    "     \"title\": {",
    "      \"type\": \"string\",",
    "      \"minLength\": 1,",
    "      \"maxLength\": 200,",
    "      \"description\": \"One line\"",
    "     },",
    "     \"body\": {\"type\": \"string\"},",
    "     \"tags\": {",
    "      \"type\": \"array\",",
    "      \"items\": {\"type\": \"string\", \"maxLength\": 30},",
    "      \"maxItems\": 20",
    "     }",
    "    },",
    "    \"required\": [\"title\", \"body\"],",
    "    \"additionalProperties\": false",
    "   },",
    "   \"Note\": {",
    "    \"type\": \"object\",",
    "    \"properties\": {",
    "     \"id\": {\"type\": \"integer\", \"minimum\": 1},",
    "     \"title\": {\"type\": \"string\"},",
    "     \"body\": {\"type\": \"string\"},",
    "     \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}}",
    "    },",
    "    \"required\": [\"id\", \"title\", \"body\", \"tags\"]",
    "   },",
    "   \"Error\": {",
    "    \"type\": \"object\",",
    "    \"properties\": {",
    "     \"status\": {\"type\": \"integer\"},",
    "     \"error\": {\"type\": \"string\"},",
    "     \"detail\": {\"type\": \"string\"}",
    "    },",
    "    \"required\": [\"status\", \"error\"]",
    "   },",
    "   \"ValidationError\": {",
    "    \"type\": \"object\",",
    "    \"properties\": {",
    "     \"loc\": {",
    "      \"type\": \"array\",",
    "      \"items\": {\"anyOf\": [{\"type\": \"string\"}, {\"type\": \"integer\"}]}",
    "     },",
    "     \"msg\": {\"type\": \"string\"},",
    "     \"type\": {\"type\": \"string\"}",
    "    },",
    "    \"required\": [\"loc\", \"msg\", \"type\"]",
    "   },",
    "   \"HTTPValidationError\": {",
    "    \"type\": \"object\",",
    "    \"properties\": {",
    "     \"status\": {\"const\": 422},",
    "     \"error\": {\"const\": \"Unprocessable Content\"},",
    "     \"detail\": {",
    "      \"type\": \"array\",",
    "      \"items\": {\"$ref\": \"#/components/schemas/ValidationError\"}",
    "     }",
    "    },",
    "    \"required\": [\"status\", \"error\", \"detail\"]",
    "   }",
    "  },",
    "  \"responses\": {",
    "   \"NotFound\": {",
    "    \"description\": \"No note with this id\",",
    "    \"content\": {\"application/json\": {\"schema\": {\"$ref\": \"#/components/schemas/Error\"}}}",
    "   },",
    "   \"Invalid\": {",
    "    \"description\": \"Validation error\",",
    "    \"content\": {",
    "     \"application/json\": {\"schema\": {\"$ref\": \"#/components/schemas/HTTPValidationError\"}}",
    "    }",
    "   }",
    "  }",
    " }",
    "}",
};

static char *openapi_json;

static void openapi(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_send_json(rs, 200, openapi_json);
}

static char *join_lines(void) {
    size_t i, n = 1, at = 0;
    char *text;
    for (i = 0; i < sizeof openapi_lines / sizeof openapi_lines[0]; i++) n += strlen(openapi_lines[i]) + 1;
    if (!(text = (char *)malloc(n))) return NULL;
    for (i = 0; i < sizeof openapi_lines / sizeof openapi_lines[0]; i++) {
        size_t len = strlen(openapi_lines[i]);
        memcpy(text + at, openapi_lines[i], len);
        at += len;
        text[at++] = '\n';
    }
    text[at] = '\0';
    return text;
}

/* ---- the notes, behind a lock: handlers run on several workers at once ---- */

#define MAX_NOTES 1000 /* created in the server's life */
#define MAX_TAGS 20

typedef struct note {
    long long id; /* 0: deleted */
    char *title, *body;
    char *tags[MAX_TAGS];
    size_t ntags;
} note;

static pthread_mutex_t notes_lock = PTHREAD_MUTEX_INITIALIZER;
static note notes[MAX_NOTES];
static long long last_id;

static char *copy(mw_str s) {
    char *c = (char *)malloc(s.len + 1);
    if (c) {
        memcpy(c, s.ptr, s.len);
        c[s.len] = '\0';
    }
    return c;
}

static void clear_note(note *n) {
    size_t i;
    free(n->title);
    free(n->body);
    for (i = 0; i < n->ntags; i++) free(n->tags[i]);
    memset(n, 0, sizeof *n);
}

/* Fills n from a body already checked; 0, or -1 when out of memory. */
static int fill_note(note *n, long long id, const mw_jv *root) {
    const mw_jv *tags = mw_jv_get(root, "tags"), *t;
    n->id = id;
    n->title = copy(mw_jv_string(mw_jv_get(root, "title")));
    n->body = copy(mw_jv_string(mw_jv_get(root, "body")));
    for (t = mw_jv_first(tags); t; t = mw_jv_next(t)) n->tags[n->ntags++] = copy(mw_jv_string(t));
    return n->title && n->body ? 0 : -1;
}

static void write_note(mw_json *j, const note *n) {
    size_t i;
    mw_json_object(j);
    mw_json_key_int(j, "id", n->id);
    mw_json_key_string(j, "title", n->title);
    mw_json_key_string(j, "body", n->body);
    mw_json_key(j, "tags");
    mw_json_array(j);
    for (i = 0; i < n->ntags; i++) mw_json_string(j, n->tags[i]);
    mw_json_close(j);
    mw_json_close(j);
}

/* Note k has id k + 1 (ids are never reused, so the slots stay in the order of creation). */
static note *find_note(long long id) {
    return id > 0 && id <= last_id && notes[id - 1].id == id ? &notes[id - 1] : NULL;
}

/* ---- checking a body as NoteIn says, and the 422 that lists every problem ---- */

/* A problem at loc ("body", field, and index when >= 0), written when j is not NULL;
   returns 1 so callers count. */
static int problem(mw_json *j, const char *where, const char *field, long index, const char *msg, const char *type) {
    if (!j) return 1;
    mw_json_object(j);
    mw_json_key(j, "loc");
    mw_json_array(j);
    mw_json_string(j, where);
    if (field) mw_json_string(j, field);
    if (index >= 0) mw_json_int(j, index);
    mw_json_close(j);
    mw_json_key_string(j, "msg", msg);
    mw_json_key_string(j, "type", type);
    mw_json_close(j);
    return 1;
}

static size_t code_points(mw_str s) {
    size_t i, n = 0;
    for (i = 0; i < s.len; i++) n += ((unsigned char)s.ptr[i] & 0xC0) != 0x80;
    return n;
}

/* pydantic's messages for a string field with a length range (max 0: none). */
static int check_string(mw_json *j, const mw_jv *v, const char *field, long index, size_t min, size_t max) {
    char msg[64];
    size_t n;
    if (!v) return problem(j, "body", field, index, "Field required", "missing");
    if (mw_jv_kind(v) != MW_JV_STRING)
        return problem(j, "body", field, index, "Input should be a valid string", "string_type");
    n = code_points(mw_jv_string(v));
    if (n < min) {
        snprintf(msg, sizeof msg, "String should have at least %zu character%s", min, min == 1 ? "" : "s");
        return problem(j, "body", field, index, msg, "string_too_short");
    }
    if (max && n > max) {
        snprintf(msg, sizeof msg, "String should have at most %zu characters", max);
        return problem(j, "body", field, index, msg, "string_too_long");
    }
    return 0;
}

static int check_tags(mw_json *j, const mw_jv *tags) {
    char msg[80];
    const mw_jv *t;
    long i = 0;
    int n = 0;
    if (!tags) return 0;
    if (mw_jv_kind(tags) != MW_JV_ARRAY)
        return problem(j, "body", "tags", -1, "Input should be a valid list", "list_type");
    if (mw_jv_len(tags) > MAX_TAGS) {
        snprintf(msg, sizeof msg, "List should have at most %d items after validation, not %zu", MAX_TAGS,
                 mw_jv_len(tags));
        return problem(j, "body", "tags", -1, msg, "too_long");
    }
    for (t = mw_jv_first(tags); t; t = mw_jv_next(t), i++) n += check_string(j, t, "tags", i, 0, 30);
    return n;
}

/* The problems of a NoteIn body (written into j when not NULL), counted. */
static int check_note(mw_json *j, const mw_jv *root) {
    const mw_jv *m;
    int n;
    if (mw_jv_kind(root) != MW_JV_OBJECT)
        return problem(j, "body", NULL, -1, "Input should be a valid dictionary or object to extract fields from",
                       "model_attributes_type");
    n = check_string(j, mw_jv_get(root, "title"), "title", -1, 1, 200);
    n += check_string(j, mw_jv_get(root, "body"), "body", -1, 0, 0);
    n += check_tags(j, mw_jv_get(root, "tags"));
    for (m = mw_jv_first(root); m; m = mw_jv_next(m)) /* additionalProperties: false */
        if (strcmp(mw_jv_key(m), "title") && strcmp(mw_jv_key(m), "body") && strcmp(mw_jv_key(m), "tags"))
            n += problem(j, "body", mw_jv_key(m), -1, "Extra inputs are not permitted", "extra_forbidden");
    return n;
}

static mw_json *begin_422(mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 422);
    mw_json_object(j);
    mw_json_key_int(j, "status", 422);
    mw_json_key_string(j, "error", "Unprocessable Content");
    mw_json_key(j, "detail");
    mw_json_array(j);
    return j;
}

/* The request's body if it is a valid NoteIn; else NULL, and the answer is 400 for
   malformed JSON (microweb's) or 422 listing the problems. */
static const mw_jv *note_in(mw_req *rq, mw_res *rs) {
    const mw_jv *root = mw_body(rq).len ? mw_req_json(rq) : NULL;
    mw_json *j;
    if (mw_body(rq).len && !root) return NULL;
    if (root && check_note(NULL, root) == 0) return root;
    j = begin_422(rs);
    if (root) check_note(j, root);
    else problem(j, "body", NULL, -1, "Field required", "missing");
    mw_json_end(j);
    return NULL;
}

/* ---- handlers ---- */

/* limit: an integer 1..100 (default 20); 0 when it is not, after answering 422. */
static int query_limit(mw_req *rq, mw_res *rs) {
    const char *v = mw_value(rq, MW_QUERY, "limit");
    char *end;
    long n;
    mw_json *j;
    const char *msg = NULL, *type = NULL;
    if (!v) return 20;
    n = strtol(v, &end, 10);
    if (!*v || *end)
        msg = "Input should be a valid integer, unable to parse string as an integer", type = "int_parsing";
    else if (n < 1) msg = "Input should be greater than or equal to 1", type = "greater_than_equal";
    else if (n > 100) msg = "Input should be less than or equal to 100", type = "less_than_equal";
    if (!msg) return (int)n;
    j = begin_422(rs);
    problem(j, "query", "limit", -1, msg, type);
    mw_json_end(j);
    return 0;
}

static void list_notes(mw_req *rq, mw_res *rs) {
    const char *q = mw_value(rq, MW_QUERY, "q"), *sort = mw_value(rq, MW_QUERY, "sort");
    int limit = query_limit(rq, rs), k, step = sort && strcmp(sort, "desc") == 0 ? -1 : 1;
    mw_json *j;
    if (!limit) return;
    j = mw_json_begin(rs, 200);
    mw_json_array(j);
    pthread_mutex_lock(&notes_lock);
    for (k = step > 0 ? 0 : MAX_NOTES - 1; k >= 0 && k < MAX_NOTES && limit > 0; k += step)
        if (notes[k].id && (!q || strstr(notes[k].title, q))) write_note(j, &notes[k]), limit--;
    pthread_mutex_unlock(&notes_lock);
    mw_json_end(j);
}

static void create_note(mw_req *rq, mw_res *rs) {
    const mw_jv *root = note_in(rq, rs);
    note *n;
    if (!root) return;
    pthread_mutex_lock(&notes_lock);
    if (last_id == MAX_NOTES) {
        mw_error(rs, 507, "the notes are full");
    } else if (fill_note(n = &notes[last_id], last_id + 1, root) != 0) {
        clear_note(n);
        mw_error(rs, 500, "out of memory");
    } else {
        mw_json *j = mw_json_begin(rs, 201);
        last_id++;
        write_note(j, n);
        mw_json_end(j);
    }
    pthread_mutex_unlock(&notes_lock);
}

/* The note the path names, with the lock held; else 404 is sent, the lock released. */
static note *locked_note(mw_req *rq, mw_res *rs) {
    long long id = 0;
    note *n;
    mw_param_int(rq, "id", &id);
    pthread_mutex_lock(&notes_lock);
    if ((n = find_note(id)) != NULL) return n;
    pthread_mutex_unlock(&notes_lock);
    mw_error(rs, 404, "no note with this id");
    return NULL;
}

static void read_note(mw_req *rq, mw_res *rs) {
    note *n = locked_note(rq, rs);
    mw_json *j;
    if (!n) return;
    j = mw_json_begin(rs, 200);
    write_note(j, n);
    mw_json_end(j);
    pthread_mutex_unlock(&notes_lock);
}

static void replace_note(mw_req *rq, mw_res *rs) {
    const mw_jv *root = note_in(rq, rs);
    note *n;
    long long id;
    if (!root || !(n = locked_note(rq, rs))) return;
    id = n->id;
    clear_note(n);
    if (fill_note(n, id, root) != 0) {
        clear_note(n);
        mw_error(rs, 500, "out of memory");
    } else {
        mw_json *j = mw_json_begin(rs, 200);
        write_note(j, n);
        mw_json_end(j);
    }
    pthread_mutex_unlock(&notes_lock);
}

static void delete_note(mw_req *rq, mw_res *rs) {
    note *n = locked_note(rq, rs);
    if (!n) return;
    clear_note(n);
    pthread_mutex_unlock(&notes_lock);
    mw_send(rs, 204, NULL, NULL, 0);
}

static void health(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_send_json(rs, 200, "{\"status\":\"ok\"}");
}

int main(void) {
    mw_app *app = mw_app_new();
    size_t i;
    int rc;
    if (!app || !(openapi_json = join_lines())) return 1;
    mw_get(app, "/openapi.json", openapi);
    mw_docs(app);
    mw_get(app, "/notes", list_notes);
    mw_post(app, "/notes", create_note);
    mw_get(app, "/notes/{id:int}", read_note);
    mw_put(app, "/notes/{id:int}", replace_note);
    mw_delete(app, "/notes/{id:int}", delete_note);
    mw_get(app, "/health", health);
    rc = mw_run(app);
    for (i = 0; i < MAX_NOTES; i++) clear_note(&notes[i]);
    free(openapi_json);
    return rc;
}
