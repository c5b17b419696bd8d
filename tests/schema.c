/* schema.c - declared inputs: the schema language's compiler (every syntax error, with
   its column), the validator (a decision table over every type, range, enum, nested
   objects, arrays, unknown fields, defaults, several errors at once), typed path
   parameters, the typed accessors, and whole requests through the in-process test
   client (422 in FastAPI's shape, 400 for malformed JSON, 415, hooks around it). */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"
#include "harness.h"

/* ---- the compiler ---- */

typedef struct bad_schema {
    const char *src;
    int fields_only;
    size_t column;
    const char *why;
} bad_schema;

static const bad_schema bad_schemas[] = {
    {"", 0, 1, "expected a type"},
    {"{title string}", 0, 8, "expected ':' after field name"},
    {"{title: string", 0, 15, "expected ',' or '}' after a field"},
    {"{title: string,}", 0, 16, "expected a field name"},
    {"{1a: int}", 0, 2, "expected a field name"},
    {"{a: int, a: string}", 0, 10, "duplicate field name"},
    {"{a: strin}", 0, 5, "unknown type (string, int, number, bool, any, or a name given to mw_schema before)"},
    {"{a: [int}", 0, 9, "expected ']' after the items' type"},
    {"{a: int(1..)x}", 0, 13, "expected ',' or '}' after a field"},
    {"string(1,2)", 0, 9, "expected '..' in the range"},
    {"string(x..2)", 0, 8, "expected a number or '..' in the range"},
    {"string(1 2)", 0, 10, "expected '..' in the range"},
    {"string(1..2", 0, 12, "expected ')' to end the range"},
    {"string(..)", 0, 7, "a range needs a minimum, a maximum or both"},
    {"int(5..1)", 0, 4, "the range's minimum is greater than its maximum"},
    {"number(2.5..1)", 0, 7, "the range's minimum is greater than its maximum"},
    {"int(1.5..)", 0, 5, "this range takes whole numbers"},
    {"string(-1..)", 0, 8, "a length cannot be negative"},
    {"[int](-1..)", 0, 7, "a length cannot be negative"},
    {"bool(0..1)", 0, 5, "a range applies to string, int, number and arrays"},
    {"\"a\" | \"b\"(1..2)", 0, 10, "unexpected text after the schema"},
    {"\"a\" | 3", 0, 7, "expected a string literal or null after '|'"},
    {"\"a", 0, 1, "invalid string literal"},
    {"int | string", 0, 7, "expected null after '|' (only enums join values with '|')"},
    {"{a: int = \"x\"}", 0, 11, "the default does not fit the field's type"},
    {"{a: int(1..5) = 9}", 0, 17, "the default does not fit the field's type"},
    {"{a: int = }", 0, 11, "expected a JSON value after '='"},
    {"{a: any = [1e999]}", 0, 11, "number out of range"},
    {"{a: [int] = [1, \"2\"]}", 0, 13, "the default does not fit the field's type"},
    {"{..., a: int}", 0, 5, "'...' must be the last item of the field list"},
    {"{a: int} x", 0, 10, "unexpected text after the schema"},
    {"limit int", 1, 7, "expected ':' after field name"},
    {"a: int b: int", 1, 8, "expected ',' between fields"},
    {"a: {b: int}", 1, 4, "a query parameter is string, int, number, bool, any or an enum"},
    {"a: int, b: [int]", 1, 12, "a query parameter is string, int, number, bool, any or an enum"},
    {"int(..12345678901234567890123456789012345678901234567890123456789012345)", 0, 7, "number too long"},
    {"a: int,", 1, 8, "expected a field name"},
};

TEST(compiler_reports_every_syntax_error_with_its_column) {
    size_t i;
    for (i = 0; i < sizeof bad_schemas / sizeof bad_schemas[0]; i++) {
        const bad_schema *b = &bad_schemas[i];
        const char *why = NULL;
        size_t column = 0;
        mw__schema *s = mw__schema_compile(b->src, b->fields_only, NULL, 0, &why, &column);
        if (s || column != b->column || !why || strcmp(why, b->why) != 0) {
            printf("  case %lu \"%s\": column %lu, \"%s\"\n", (unsigned long)i, b->src, (unsigned long)column,
                   why ? why : "(compiled)");
            test_checks_failed++;
        }
        mw__schema_free(s);
    }
}

/* Every prefix of a declaration that uses the whole language compiles or fails with a
   column inside it (under ASan: no read past its end). */
TEST(compiler_survives_every_prefix) {
    static const char full[] = "{a: int(-5..5) = 0, \"b c\"?: [[string(..3)]](1..) | null, d: \"x\" | \"y\" | null = "
                               "\"x\", e: {f: number(0.5..1e3), g: bool = true, ...}, h: any = [1, {\"k\": null}]}";
    char prefix[sizeof full];
    size_t n;
    int compiled = 0;
    for (n = 0; n < sizeof full; n++) {
        const char *why = NULL;
        size_t column = 0;
        mw__schema *s;
        memcpy(prefix, full, n);
        prefix[n] = '\0';
        s = mw__schema_compile(prefix, 0, NULL, 0, &why, &column);
        if (s) compiled++;
        else CHECK(why != NULL && column >= 1 && column <= n + 1);
        mw__schema_free(s);
    }
    CHECK_INT(compiled, 1); /* the whole of it */
}

TEST(compiler_refuses_nesting_deeper_than_the_document_holds) {
    char src[3 * (MW__SCHEMA_MAX_DEPTH + 2) + 8];
    const char *why = NULL;
    size_t column = 0, i, n = 0;
    for (i = 0; i < MW__SCHEMA_MAX_DEPTH; i++) src[n++] = '[';
    memcpy(src + n, "int", 3);
    n += 3;
    for (i = 0; i < MW__SCHEMA_MAX_DEPTH; i++) src[n++] = ']';
    src[n] = '\0';
    CHECK(mw__schema_compile(src, 0, NULL, 0, &why, &column) == NULL);
    CHECK_STR(why, "nesting deeper than (MW_JSON_MAX_DEPTH - 10) / 2 types");
    CHECK_INT(column, MW__SCHEMA_MAX_DEPTH + 1);
}

TEST(compiler_builds_one_flat_tree) {
    const char *why = NULL;
    size_t column = 0;
    mw__schema *s = mw__schema_compile("{title: string(1..200), body: string, tags?: [string](..20), ...}", 0, NULL, 0,
                                       &why, &column);
    CHECK(s != NULL);
    if (!s) return;
    CHECK_INT(s->n, 5); /* the object, three fields, the items' type */
    CHECK_INT(s->nodes[0].kind, MW__S_OBJECT);
    CHECK_INT(s->nodes[0].nkids, 3);
    CHECK_INT(s->nodes[0].open, 1);
    CHECK_STR(mw__snode_text(s, s->nodes[1].key), "title");
    CHECK_INT(s->nodes[1].imin, 1);
    CHECK_INT(s->nodes[1].imax, 200);
    CHECK_INT(s->nodes[s->nodes[2].next].kind, MW__S_ARRAY);
    CHECK_INT(s->nodes[s->nodes[2].next].optional, 1);
    mw__schema_free(s);
}

/* ---- the validator: a decision table ---- */

/* Checks a JSON text against a schema; the errors as "loc:type" joined by spaces. */
static const char *errors_of(const char *schema, const char *json, mw__schema *const *named, size_t nnamed) {
    static char out[1024];
    const char *why = NULL;
    size_t column = 0, k, n = 0;
    mw__schema *s = mw__schema_compile(schema, 0, named, nnamed, &why, &column);
    mw_jv_doc *doc = mw_jv_parse(json, strlen(json), NULL, NULL);
    mw__arena arena;
    mw__vctx v;
    const mw__verror *e;
    memset(&arena, 0, sizeof arena);
    memset(&v, 0, sizeof v);
    v.arena = &arena;
    v.max = 100;
    out[0] = '\0';
    if (!s || !doc) {
        snprintf(out, sizeof out, "(schema: %s, json: %s)", why ? why : "ok", doc ? "ok" : "bad");
    } else {
        mw__vcheck(&v, s, s->nodes, mw_jv_root(doc));
        for (e = v.first; e; e = e->next) {
            n += (size_t)snprintf(out + n, sizeof out - n, "%s", n ? " " : "");
            for (k = 0; k < e->nloc; k++) {
                if (e->loc[k].key)
                    n += (size_t)snprintf(out + n, sizeof out - n, "%s%.*s", k ? "." : "", (int)e->loc[k].len,
                                          e->loc[k].key);
                else n += (size_t)snprintf(out + n, sizeof out - n, "[%lu]", (unsigned long)e->loc[k].index);
            }
            n += (size_t)snprintf(out + n, sizeof out - n, ":%s", e->type);
        }
    }
    mw__arena_free(&arena);
    mw_jv_free(doc);
    mw__schema_free(s);
    return out;
}

typedef struct decision {
    const char *schema, *json, *errors;
} decision;

static const decision decisions[] = {
    /* scalars, each type against each kind of JSON value */
    {"string", "\"x\"", ""},
    {"string", "1", ":string_type"},
    {"string", "null", ":string_type"},
    {"string | null", "null", ""},
    {"int", "5", ""},
    {"int", "-9223372036854775808", ""},
    {"int", "9223372036854775808", ":int_parsing_size"},
    {"int", "5.0", ""},
    {"int", "1e2", ""},
    {"int", "5.5", ":int_from_float"},
    {"int", "\"5\"", ":int_type"},
    {"int", "true", ":int_type"},
    {"number", "5", ""},
    {"number", "-0.5e-3", ""},
    {"number", "\"5\"", ":float_type"},
    {"bool", "true", ""},
    {"bool", "false", ""},
    {"bool", "0", ":bool_type"},
    {"bool", "\"true\"", ":bool_type"},
    {"any", "{\"a\":[1,null]}", ""},
    {"any", "null", ""},
    /* ranges */
    {"string(1..3)", "\"\"", ":string_too_short"},
    {"string(1..3)", "\"abc\"", ""},
    {"string(1..3)", "\"abcd\"", ":string_too_long"},
    {"string(..2)", "\"\\u00e9\\u00e9\"", ""}, /* characters, not bytes */
    {"string(..2)", "\"\\ud83d\\ude00\\ud83d\\ude00\"", ""},
    {"string(3..)", "\"\\u0000\\u0000\\u0000\"", ""},
    {"string(10..10)", "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"",
     ""}, /* eight bytes at a time */
    {"string(..9)", "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"",
     ":string_too_long"},
    {"string(12..12)", "\"\\nabcdefghijk\"", ""}, /* an escape, then a run of ASCII moved back */
    {"int(1..100)", "0", ":greater_than_equal"},
    {"int(1..100)", "1", ""},
    {"int(1..100)", "100", ""},
    {"int(1..100)", "101", ":less_than_equal"},
    {"int(-5..)", "-6", ":greater_than_equal"},
    {"number(0.5..1.5)", "0.49", ":greater_than_equal"},
    {"number(0.5..1.5)", "1.5", ""},
    {"number(..1e3)", "1001", ":less_than_equal"},
    {"[int](1..2)", "[]", ":too_short"},
    {"[int](1..2)", "[1,2,3]", ":too_long"},
    {"[int](1..2)", "[1,2]", ""},
    /* enums */
    {"\"asc\" | \"desc\"", "\"asc\"", ""},
    {"\"asc\" | \"desc\"", "\"ASC\"", ":literal_error"},
    {"\"asc\" | \"desc\"", "1", ":literal_error"},
    {"\"asc\" | \"desc\"", "null", ":literal_error"},
    {"\"asc\" | \"desc\" | null", "null", ""},
    {"\"a\\\"b\"", "\"a\\\"b\"", ""},
    /* objects: required, optional, defaults, unknown fields, nesting */
    {"{a: int}", "{\"a\":1}", ""},
    {"{a: int}", "{}", "a:missing"},
    {"{a: int}", "[]", ":model_attributes_type"},
    {"{a: int}", "\"a\"", ":model_attributes_type"},
    {"{a?: int}", "{}", ""},
    {"{a?: int}", "{\"a\":null}", "a:int_type"},
    {"{a: int = 3}", "{}", ""},
    {"{a: int = 3}", "{\"a\":\"x\"}", "a:int_type"},
    {"{a: int}", "{\"a\":1,\"b\":2}", "b:extra_forbidden"},
    {"{a: int, ...}", "{\"a\":1,\"b\":2}", ""},
    {"{}", "{}", ""},
    {"{}", "{\"x\":1}", "x:extra_forbidden"},
    {"{\"content-type\": string}", "{\"content-type\":\"x\"}", ""},
    {"{a: {b: {c: string}}}", "{\"a\":{\"b\":{\"c\":1}}}", "a.b.c:string_type"},
    {"{a: {b: {c: string}}}", "{\"a\":{\"b\":{}}}", "a.b.c:missing"},
    {"{a: {b: int} | null}", "{\"a\":null}", ""},
    /* arrays of any depth */
    {"[string]", "[\"a\",1,\"b\",null]", "[1]:string_type [3]:string_type"},
    {"[[int]]", "[[1],[2,\"x\"],3]", "[1][1]:int_type [2]:list_type"},
    {"[[[bool]]]", "[[[true,1]]]", "[0][0][1]:bool_type"},
    {"[{id: int}]", "[{\"id\":1},{\"id\":\"2\"},{}]", "[1].id:int_type [2].id:missing"},
    {"[int]", "{}", ":list_type"},
    /* several errors at once, in document order, schema fields first */
    {"{title: string(1..200), body: string, tags?: [string](..2)}",
     "{\"title\":\"\",\"tags\":[\"a\",2,\"c\"],\"extra\":true}",
     "title:string_too_short body:missing tags:too_long tags[1]:string_type extra:extra_forbidden"},
};

TEST(validator_decision_table) {
    size_t i;
    for (i = 0; i < sizeof decisions / sizeof decisions[0]; i++) {
        const decision *d = &decisions[i];
        const char *got = errors_of(d->schema, d->json, NULL, 0);
        if (strcmp(got, d->errors) != 0) {
            printf("  case %lu: %s against %s: \"%s\", want \"%s\"\n", (unsigned long)i, d->json, d->schema, got,
                   d->errors);
            test_checks_failed++;
        }
    }
}

TEST(named_schemas_are_checked_where_they_are_used) {
    const char *why = NULL;
    size_t column = 0;
    mw__schema *tag = mw__schema_compile("{name: string(1..)}", 0, NULL, 0, &why, &column), *named[1];
    CHECK(tag != NULL);
    if (!tag) return;
    tag->name = mw__strndup("Tag", 3);
    named[0] = tag;
    CHECK_STR(errors_of("{tags: [Tag]}", "{\"tags\":[{\"name\":\"a\"},{\"name\":\"\"},{}]}", named, 1),
              "tags[1].name:string_too_short tags[2].name:missing");
    CHECK_STR(errors_of("{t: Tag | null}", "{\"t\":null}", named, 1), "");
    CHECK_STR(errors_of("{t: Tag}", "{\"t\":null}", named, 1), "t:model_attributes_type");
    mw__schema_free(tag);
}

TEST(messages_are_pydantics) {
    static const struct {
        const char *schema, *json, *msg;
    } cases[] = {
        {"{a: int}", "{}", "Field required"},
        {"string(1..)", "\"\"", "String should have at least 1 character"},
        {"string(..20)", "\"xxxxxxxxxxxxxxxxxxxxx\"", "String should have at most 20 characters"},
        {"int(1..100)", "101", "Input should be less than or equal to 100"},
        {"number(0.5..)", "0", "Input should be greater than or equal to 0.5"},
        {"\"a\" | \"b\" | \"c\"", "\"d\"", "Input should be 'a', 'b' or 'c'"},
        {"[int](..1)", "[1,2]", "List should have at most 1 item after validation, not 2"},
        {"{}", "{\"x\":1}", "Extra inputs are not permitted"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *why;
        size_t column;
        mw__schema *s = mw__schema_compile(cases[i].schema, 0, NULL, 0, &why, &column);
        mw_jv_doc *doc = mw_jv_parse(cases[i].json, strlen(cases[i].json), NULL, NULL);
        mw__arena arena;
        mw__vctx v;
        memset(&arena, 0, sizeof arena);
        memset(&v, 0, sizeof v);
        v.arena = &arena;
        v.max = 10;
        if (s && doc) mw__vcheck(&v, s, s->nodes, mw_jv_root(doc));
        if (!v.first) printf("  case %lu: no error\n", (unsigned long)i);
        CHECK(v.first != NULL);
        if (v.first) CHECK_STR(v.first->msg, cases[i].msg);
        mw__arena_free(&arena);
        mw_jv_free(doc);
        mw__schema_free(s);
    }
}

/* ---- whole requests through the test client ---- */

static void echo_args(mw_req *rq, mw_res *rs) {
    mw_str q = mw_arg_str(rq, "q"), sort = mw_arg_str(rq, "sort");
    mw_printf(rs, "limit=%lld q=%.*s(%d) sort=%.*s ratio=%g(%lld) on=%d", mw_arg_int(rq, "limit"), (int)q.len,
              q.ptr ? q.ptr : "", mw_arg_present(rq, "q"), (int)sort.len, sort.ptr ? sort.ptr : "",
              mw_arg_num(rq, "ratio"), mw_arg_int(rq, "ratio"), mw_arg_bool(rq, "on"));
}

static void created(mw_req *rq, mw_res *rs) {
    mw_json *j = mw_json_begin(rs, 201);
    mw_json_object(j);
    mw_json_key(j, "title");
    mw_json_value(j, mw_jv_get(mw_req_json(rq), "title"));
    mw_json_key_int(j, "id", mw_arg_int(rq, "id"));
    mw_json_end(j);
}

static void typed(mw_req *rq, mw_res *rs) {
    mw_printf(rs, "%s int=%lld num=%g bool=%d str=%s", mw_route_pattern(rq), mw_arg_int(rq, "x"), mw_arg_num(rq, "x"),
              mw_arg_bool(rq, "x"), mw_arg_str(rq, "x").ptr);
}

static int quiet_errors;
static void count_log(void *arg, mw_log_level level, const char *line) {
    (void)arg;
    (void)line;
    quiet_errors += level == MW_LOG_ERROR;
}

static mw_app *declared_app(void) {
    mw_app *app = mw_app_new();
    mw_op list, post;
    memset(&list, 0, sizeof list);
    memset(&post, 0, sizeof post);
    list.query = "limit: int(1..100) = 20, q?: string(..5), sort: \"asc\" | \"desc\" = \"asc\", ratio: number = 0.5,"
                 " on: bool = false";
    post.body = "{title: string(1..200), body: string, tags?: [string](..20)}";
    mw_set_logger(app, count_log, NULL);
    mw_route_op(app, "GET", "/notes", echo_args, &list);
    mw_route_op(app, "POST", "/notes/{id:int}", created, &post);
    mw_get(app, "/t/{x:int}", typed);
    mw_get(app, "/t/{x:number}", typed);
    mw_get(app, "/t/{x:bool}", typed);
    mw_get(app, "/t/{x}", typed);
    return app;
}

static int request(mw_app *app, const char *method, const char *target, const char *headers, const char *body,
                   char *out, size_t cap) {
    mw_test_res *r = mw_test_request(app, method, target, headers, body, body ? strlen(body) : 0);
    int status = r ? r->status : 0;
    if (r) snprintf(out, cap, "%.*s", (int)r->body_len, r->body);
    mw_test_free(r);
    return status;
}

TEST(query_parameters_are_converted_and_defaulted) {
    mw_app *app = declared_app();
    char body[1024];
    CHECK_INT(request(app, "GET", "/notes", NULL, NULL, body, sizeof body), 200);
    CHECK_STR(body, "limit=20 q=(0) sort=asc ratio=0.5(0) on=0");
    CHECK_INT(
        request(app, "GET", "/notes?limit=7&q=h%C3%A9+x&sort=desc&ratio=-2.5e1&on=Yes", NULL, NULL, body, sizeof body),
        200);
    CHECK_STR(body, "limit=7 q=h\xc3\xa9 x(1) sort=desc ratio=-25(-25) on=1");
    CHECK_INT(request(app, "GET", "/notes?limit=1&limit=9&other=x", NULL, NULL, body, sizeof body), 200);
    CHECK_STR(body, "limit=9 q=(0) sort=asc ratio=0.5(0) on=0"); /* the last one, as FastAPI; unknown ones pass */
    mw_app_free(app);
}

static void int_parts(mw_req *rq, mw_res *rs) {
    mw_printf(rs, "x=%lld i=%lld n=%lld e=%lld", mw_arg_int(rq, "x"), mw_arg_int(rq, "i"), mw_arg_int(rq, "n"),
              mw_arg_int(rq, "e"));
}

/* mw_arg_int on a number gives its integer part, from a default too, and 0 beyond int64
   (a conversion that would be undefined). */
TEST(arg_int_of_a_number_is_its_integer_part_or_0_beyond_int64) {
    mw_app *app = mw_app_new();
    mw_op op;
    char body[256];
    memset(&op, 0, sizeof op);
    op.query = "i: int = 5.0, n: number = 2.5, e: number = 1e2";
    mw_route_op(app, "GET", "/p/{x:number}", int_parts, &op);
    CHECK_INT(request(app, "GET", "/p/7.9", NULL, NULL, body, sizeof body), 200);
    CHECK_STR(body, "x=7 i=5 n=2 e=100");
    CHECK_INT(request(app, "GET", "/p/1e300?n=-1e300", NULL, NULL, body, sizeof body), 200);
    CHECK_STR(body, "x=0 i=5 n=0 e=100");
    mw_app_free(app);
}

/* A schema of every depth that compiles is written into the OpenAPI document; one type
   deeper is refused at registration (it compiled, and then /openapi.json answered 500). */
TEST(the_deepest_schema_that_compiles_is_documented) {
    mw__buf deep, deeper;
    mw_app *app = mw_app_new(), *refused = mw_app_new();
    mw_op op;
    char body[256];
    int k;
    memset(&deep, 0, sizeof deep);
    memset(&deeper, 0, sizeof deeper);
    for (k = 0; k < MW__SCHEMA_MAX_DEPTH - 2; k++) mw__buf_puts(&deep, "{a: ");
    mw__buf_puts(&deep, "[int | null]"); /* two types more */
    for (k = 0; k < MW__SCHEMA_MAX_DEPTH - 2; k++) mw__buf_puts(&deep, "}");
    mw__buf_puts(&deeper, "{a: ");
    mw__buf_append(&deeper, deep.data, deep.len);
    mw__buf_puts(&deeper, "}");
    mw__buf_append(&deep, "", 1); /* both C strings now */
    mw__buf_append(&deeper, "", 1);
    memset(&op, 0, sizeof op);
    op.body = deep.data;
    op.responses[0].status = 200;
    op.responses[0].schema = deep.data;
    CHECK_INT(mw_route_op(app, "POST", "/deep", created, &op), 0);
    CHECK_INT(mw_openapi(app, "Deep", "1"), 0);
    CHECK_INT(request(app, "GET", "/openapi.json", NULL, NULL, body, sizeof body), 200);
    op.body = deeper.data;
    op.responses[0].schema = NULL;
    CHECK_INT(mw_route_op(refused, "POST", "/deeper", created, &op), MW_EINVAL);
    mw__buf_free(&deep);
    mw__buf_free(&deeper);
    mw_app_free(app);
    mw_app_free(refused);
}

TEST(query_problems_are_listed_together_in_fastapis_shape) {
    mw_app *app = declared_app();
    char body[2048];
    CHECK_INT(request(app, "GET", "/notes?limit=500&q=toolong&sort=up&ratio=x&on=maybe", NULL, NULL, body, sizeof body),
              422);
    CHECK_STR(body, "{\"status\":422,\"error\":\"Unprocessable Content\",\"detail\":["
                    "{\"loc\":[\"query\",\"limit\"],\"msg\":\"Input should be less than or equal to 100\","
                    "\"type\":\"less_than_equal\"},"
                    "{\"loc\":[\"query\",\"q\"],\"msg\":\"String should have at most 5 characters\","
                    "\"type\":\"string_too_long\"},"
                    "{\"loc\":[\"query\",\"sort\"],\"msg\":\"Input should be 'asc' or 'desc'\","
                    "\"type\":\"literal_error\"},"
                    "{\"loc\":[\"query\",\"ratio\"],\"msg\":\"Input should be a valid number, unable to parse string "
                    "as a number\",\"type\":\"float_parsing\"},"
                    "{\"loc\":[\"query\",\"on\"],\"msg\":\"Input should be a valid boolean, unable to interpret "
                    "input\",\"type\":\"bool_parsing\"}]}");
    CHECK_INT(request(app, "GET", "/notes?limit=", NULL, NULL, body, sizeof body), 422);
    CHECK(strstr(body, "\"int_parsing\"") != NULL);
    CHECK_INT(request(app, "GET", "/notes?q=%FF", NULL, NULL, body, sizeof body), 422);
    CHECK(strstr(body, "\"string_unicode\"") != NULL);
    mw_app_free(app);
}

TEST(a_required_query_parameter_is_missing_when_absent) {
    mw_app *app = mw_app_new();
    mw_op op;
    char body[512];
    memset(&op, 0, sizeof op);
    op.query = "q: string";
    mw_route_op(app, "GET", "/search", echo_args, &op);
    CHECK_INT(request(app, "GET", "/search?x=1", NULL, NULL, body, sizeof body), 422);
    CHECK_STR(body, "{\"status\":422,\"error\":\"Unprocessable Content\",\"detail\":[{\"loc\":[\"query\",\"q\"],"
                    "\"msg\":\"Field required\",\"type\":\"missing\"}]}");
    CHECK_INT(request(app, "GET", "/search?q=", NULL, NULL, body, sizeof body), 200);
    mw_app_free(app);
}

TEST(json_body_is_checked_before_the_handler) {
    mw_app *app = declared_app();
    char body[2048];
    const char *json = "Content-Type: application/json";
    CHECK_INT(
        request(app, "POST", "/notes/7", json, "{\"title\":\"t\",\"body\":\"b\",\"tags\":[\"x\"]}", body, sizeof body),
        201);
    CHECK_STR(body, "{\"title\":\"t\",\"id\":7}");
    CHECK_INT(request(app, "POST", "/notes/7", json, "{\"tags\":[\"a\",\"b\",3],\"x\":1}", body, sizeof body), 422);
    CHECK_STR(body, "{\"status\":422,\"error\":\"Unprocessable Content\",\"detail\":["
                    "{\"loc\":[\"body\",\"title\"],\"msg\":\"Field required\",\"type\":\"missing\"},"
                    "{\"loc\":[\"body\",\"body\"],\"msg\":\"Field required\",\"type\":\"missing\"},"
                    "{\"loc\":[\"body\",\"tags\",2],\"msg\":\"Input should be a valid string\","
                    "\"type\":\"string_type\"},"
                    "{\"loc\":[\"body\",\"x\"],\"msg\":\"Extra inputs are not permitted\","
                    "\"type\":\"extra_forbidden\"}]}");
    CHECK_INT(request(app, "POST", "/notes/7", "Content-Type: application/merge-patch+json",
                      "{\"title\":\"t\",\"body\":\"\"}", body, sizeof body),
              201);
    mw_app_free(app);
}

TEST(malformed_json_stays_400_with_its_offset) {
    mw_app *app = declared_app();
    char body[512];
    CHECK_INT(request(app, "POST", "/notes/1", "Content-Type: application/json", "{\"title\":", body, sizeof body),
              400);
    CHECK_STR(body, "{\"status\":400,\"error\":\"Bad Request\",\"detail\":\"invalid JSON at byte 9: value expected\","
                    "\"offset\":9}");
    mw_app_free(app);
}

TEST(body_that_is_not_json_is_415_and_an_empty_one_is_missing) {
    mw_app *app = declared_app();
    char body[512];
    CHECK_INT(request(app, "POST", "/notes/1", "Content-Type: text/plain", "{}", body, sizeof body), 415);
    CHECK(strstr(body, "Content-Type: application/json") != NULL);
    CHECK_INT(request(app, "POST", "/notes/1", "Content-Type: application/x-www-form-urlencoded", "title=x", body,
                      sizeof body),
              415);
    CHECK_INT(request(app, "POST", "/notes/1", "Content-Type: application/json", NULL, body, sizeof body), 422);
    CHECK_STR(body, "{\"status\":422,\"error\":\"Unprocessable Content\",\"detail\":[{\"loc\":[\"body\"],"
                    "\"msg\":\"Field required\",\"type\":\"missing\"}]}");
    /* no Content-Type at all: read as JSON, as FastAPI does */
    CHECK_INT(request(app, "POST", "/notes/1", NULL, "{\"title\":\"a\",\"body\":\"b\"}", body, sizeof body), 201);
    mw_app_free(app);
}

static int deny_without_token(mw_req *rq, mw_res *rs, void *arg) {
    (void)arg;
    if (mw_header(rq, "X-Token")) return MW_NEXT;
    mw_error(rs, 401, "token required");
    return MW_DONE;
}

static void mark_status(mw_req *rq, mw_res *rs, void *arg) {
    char v[8];
    (void)rq;
    (void)arg;
    snprintf(v, sizeof v, "%d", mw_res_status(rs));
    mw_set_header(rs, "X-Seen", v);
}

TEST(before_hooks_answer_first_and_after_hooks_see_the_422) {
    mw_app *app = declared_app();
    mw_test_res *r;
    mw_before(app, "/notes", deny_without_token, NULL);
    mw_after(app, NULL, mark_status, NULL);
    r = mw_test_request(app, "POST", "/notes/1", "Content-Type: application/json", "{}", 2);
    CHECK_INT(r->status, 401);
    CHECK_STR(mw_test_header(r, "X-Seen"), "401");
    mw_test_free(r);
    r = mw_test_request(app, "POST", "/notes/1", "Content-Type: application/json\nX-Token: t", "{}", 2);
    CHECK_INT(r->status, 422);
    CHECK_STR(mw_test_header(r, "X-Seen"), "422");
    CHECK_STR(mw_test_header(r, "Content-Type"), "application/json");
    mw_test_free(r);
    mw_app_free(app);
}

TEST(typed_path_parameters_are_match_constraints) {
    mw_app *app = declared_app();
    char body[256];
    CHECK_INT(request(app, "GET", "/t/42", NULL, NULL, body, sizeof body), 200);
    CHECK_STR(body, "/t/{x:int} int=42 num=42 bool=0 str=42");
    CHECK_INT(request(app, "GET", "/t/-2.5e1", NULL, NULL, body, sizeof body), 200);
    CHECK_STR(body, "/t/{x:number} int=-25 num=-25 bool=0 str=-2.5e1");
    CHECK_INT(request(app, "GET", "/t/off", NULL, NULL, body, sizeof body), 200);
    CHECK_STR(body, "/t/{x:bool} int=0 num=0 bool=0 str=off");
    CHECK_INT(request(app, "GET", "/t/TRUE", NULL, NULL, body, sizeof body), 200);
    CHECK_STR(body, "/t/{x:bool} int=0 num=0 bool=1 str=TRUE");
    CHECK_INT(request(app, "GET", "/t/abc", NULL, NULL, body, sizeof body), 200);
    CHECK_STR(body, "/t/{x} int=0 num=0 bool=0 str=abc");
    CHECK_INT(request(app, "GET", "/t/1.", NULL, NULL, body, sizeof body), 200); /* not a JSON number */
    CHECK_STR(body, "/t/{x} int=0 num=0 bool=0 str=1.");
    mw_app_free(app);
}

TEST(a_typed_parameter_without_a_fallback_is_404) {
    mw_app *app = mw_app_new();
    char body[256];
    mw_get(app, "/price/{p:number}", typed);
    mw_get(app, "/flag/{f:bool}", typed);
    CHECK_INT(request(app, "GET", "/price/abc", NULL, NULL, body, sizeof body), 404);
    CHECK_INT(request(app, "GET", "/price/0x10", NULL, NULL, body, sizeof body), 404);
    CHECK_INT(request(app, "GET", "/flag/maybe", NULL, NULL, body, sizeof body), 404);
    CHECK_INT(request(app, "GET", "/flag/no", NULL, NULL, body, sizeof body), 200);
    mw_app_free(app);
}

TEST(accessors_give_zero_for_undeclared_names) {
    mw_app *app = declared_app();
    char body[256];
    mw_get(app, "/plain", echo_args); /* no declaration: nothing is read from the query */
    CHECK_INT(request(app, "GET", "/plain?limit=5&q=x", NULL, NULL, body, sizeof body), 200);
    CHECK_STR(body, "limit=0 q=(0) sort= ratio=0(0) on=0");
    mw_app_free(app);
}

TEST(malformed_declarations_are_refused_and_mw_run_does_not_start) {
    mw_app *app = mw_app_new();
    mw_op op;
    quiet_errors = 0;
    mw_set_logger(app, count_log, NULL);
    memset(&op, 0, sizeof op);
    op.body = "{title string}";
    CHECK_INT(mw_route_op(app, "POST", "/notes", created, &op), MW_EINVAL);
    CHECK_INT(app->nroutes, 0);
    op.body = NULL;
    op.query = "limit: int(1..0)";
    CHECK_INT(mw_route_op(app, "GET", "/notes", created, &op), MW_EINVAL);
    op.query = NULL;
    op.responses[0].status = 200;
    op.responses[0].schema = "[Missing]";
    CHECK_INT(mw_route_op(app, "GET", "/notes", created, &op), MW_EINVAL);
    op.responses[0].status = 99;
    op.responses[0].schema = NULL;
    CHECK_INT(mw_route_op(app, "GET", "/notes", created, &op), MW_EINVAL);
    CHECK_INT(mw_schema(app, "string", "int"), MW_EINVAL);
    CHECK_INT(mw_schema(app, "Note", "{a: int"), MW_EINVAL);
    CHECK_INT(mw_schema(app, "Ok", "{a: int}"), 0);
    CHECK_INT(mw_schema(app, "Ok", "{a: int}"), MW_EINVAL);
    CHECK_INT(mw_schema(app, "not a name", "int"), MW_EINVAL);
    CHECK_INT(mw_schema(app, "HTTPValidationError", "int"), MW_EINVAL); /* the OpenAPI document's own */
    CHECK_INT(quiet_errors, 9);
    CHECK_INT(mw_listen(app, "127.0.0.1", 0) > 0, 1);
    CHECK_INT(mw_serve(app), MW_EINVAL); /* setup errors: serving refuses */
    mw_app_free(app);
}

/* The line names the route, the part and the column, as the manual shows. */
static char last_line[256];
static void keep_line(void *arg, mw_log_level level, const char *line) {
    (void)arg;
    (void)level;
    snprintf(last_line, sizeof last_line, "%s", line);
}

TEST(a_malformed_declaration_is_one_line_with_route_and_column) {
    mw_app *app = mw_app_new();
    mw_op op;
    mw_set_logger(app, keep_line, NULL);
    memset(&op, 0, sizeof op);
    op.body = "{title: string, body string}";
    mw_route_op(app, "POST", "/notes", created, &op);
    CHECK_STR(last_line, "POST /notes: body schema, column 22: expected ':' after field name");
    mw_schema(app, "Note", "{a: [int}");
    CHECK_STR(last_line, "schema Note, column 9: expected ']' after the items' type");
    mw_app_free(app);
}

TEST(errors_past_the_limit_are_not_listed) {
    mw_app *app = mw_app_new();
    mw_op op;
    char body[8192];
    memset(&op, 0, sizeof op);
    op.body = "[int]";
    mw_route_op(app, "POST", "/n", created, &op);
    mw_set_limit(app, MW_LIMIT_VALIDATION_ERRORS, 2);
    CHECK_INT(request(app, "POST", "/n", NULL, "[\"a\",\"b\",\"c\",\"d\"]", body, sizeof body), 422);
    CHECK_STR(body, "{\"status\":422,\"error\":\"Unprocessable Content\",\"detail\":["
                    "{\"loc\":[\"body\",0],\"msg\":\"Input should be a valid integer\",\"type\":\"int_type\"},"
                    "{\"loc\":[\"body\",1],\"msg\":\"Input should be a valid integer\",\"type\":\"int_type\"}]}");
    mw_app_free(app);
}

/* ---- the OpenAPI document ---- */

static void nothing(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "");
}

/* "get /a" for each operation of the document, space-separated, in its order. */
static void operations_of(mw_app *app, char *out, size_t cap) {
    mw_test_res *r = mw_test_request(app, "GET", "/openapi.json", NULL, NULL, 0);
    mw_jv_doc *doc = mw_jv_parse(r->body, r->body_len, NULL, NULL);
    const mw_jv *path, *op;
    size_t n = 0;
    out[0] = '\0';
    for (path = mw_jv_first(mw_jv_get(mw_jv_root(doc), "paths")); path; path = mw_jv_next(path))
        for (op = mw_jv_first(path); op; op = mw_jv_next(op))
            n += (size_t)snprintf(out + n, cap - n, "%s%s %s", n ? " " : "", mw_jv_key(op), mw_jv_key(path));
    mw_jv_free(doc);
    mw_test_free(r);
}

TEST(openapi_lists_every_route_once_per_method) {
    mw_app *app = mw_app_new();
    char ops[1024];
    mw_get(app, "/a", nothing);
    mw_any(app, "/a", nothing); /* the methods no other /a route takes */
    mw_post(app, "/a", nothing);
    mw_get(app, "/files/*path", nothing);
    mw_get(app, "/u/{id:int}", nothing);
    mw_delete(app, "/u/:id", nothing); /* another node, the same OpenAPI path */
    mw_route(app, "HEAD", "/h", nothing);
    mw_route(app, "OPTIONS", "/o", nothing);
    mw_get(app, "/n/{x:number}/{b:bool}", nothing);
    mw_openapi(app, "t", "1");
    operations_of(app, ops, sizeof ops);
    CHECK_STR(ops, "get /a put /a patch /a delete /a post /a get /files/{path} get /u/{id} delete /u/{id} head /h "
                   "options /o get /n/{x}/{b} get /openapi.json");
    mw_app_free(app);
}

TEST(openapi_documents_declarations_as_json_schema) {
    mw_app *app = mw_app_new();
    mw_op op;
    mw_test_res *r;
    mw_jv_doc *doc;
    const mw_jv *get;
    memset(&op, 0, sizeof op);
    op.summary = "Search";
    op.description = "Finds *notes*.";
    op.tags = "notes, search";
    op.query = "limit: int(1..100) = 20, q?: string(..50), sort: \"asc\" | \"desc\" = \"asc\"";
    op.responses[0].status = 200;
    op.responses[0].schema = "[{id: int, tags: [string] | null, ...}]";
    mw_schema(app, "Tag", "{name: string}");
    mw_route_op(app, "GET", "/search/{page:int}", nothing, &op);
    mw_openapi(app, "t", "1");
    r = mw_test_request(app, "GET", "/openapi.json", NULL, NULL, 0);
    doc = mw_jv_parse(r->body, r->body_len, NULL, NULL);
    get = mw_jv_path(mw_jv_root(doc), "paths./search/{page}.get");
    CHECK_STR(mw_jv_str(mw_jv_get(get, "summary"), NULL), "Search");
    CHECK_STR(mw_jv_str(mw_jv_get(get, "description"), NULL), "Finds *notes*.");
    CHECK_STR(mw_jv_str(mw_jv_path(get, "tags[1]"), NULL), "search");
    CHECK_STR(mw_jv_str(mw_jv_path(get, "parameters[0].in"), NULL), "path");
    CHECK_STR(mw_jv_str(mw_jv_path(get, "parameters[0].schema.type"), NULL), "integer");
    CHECK_INT(mw_jv_int(mw_jv_path(get, "parameters[1].schema.maximum"), 0), 100);
    CHECK_INT(mw_jv_int(mw_jv_path(get, "parameters[1].schema.default"), 0), 20);
    CHECK_INT(mw_jv_bool(mw_jv_path(get, "parameters[1].required"), 1), 0);
    CHECK_INT(mw_jv_bool(mw_jv_path(get, "parameters[2].required"), 1), 0);
    CHECK_STR(mw_jv_str(mw_jv_path(get, "parameters[3].schema.enum[1]"), NULL), "desc");
    CHECK_STR(
        mw_jv_str(mw_jv_path(get, "responses.200.content.application/json.schema.items.properties.tags.type[1]"), NULL),
        "null");
    CHECK_STR(mw_jv_str(mw_jv_path(get, "responses.422.$ref"), NULL), "#/components/responses/ValidationError");
    CHECK_STR(mw_jv_str(mw_jv_path(get, "responses.404.$ref"), NULL), "#/components/responses/NotFound");
    CHECK_STR(mw_jv_str(mw_jv_path(mw_jv_root(doc), "components.schemas.Tag.properties.name.type"), NULL), "string");
    CHECK(mw_jv_path(mw_jv_root(doc), "components.schemas.HTTPValidationError") != NULL);
    mw_jv_free(doc);
    mw_test_free(r);
    mw_app_free(app);
}

int main(void) {
    RUN(compiler_reports_every_syntax_error_with_its_column);
    RUN(compiler_survives_every_prefix);
    RUN(compiler_refuses_nesting_deeper_than_the_document_holds);
    RUN(compiler_builds_one_flat_tree);
    RUN(validator_decision_table);
    RUN(named_schemas_are_checked_where_they_are_used);
    RUN(messages_are_pydantics);
    RUN(query_parameters_are_converted_and_defaulted);
    RUN(arg_int_of_a_number_is_its_integer_part_or_0_beyond_int64);
    RUN(the_deepest_schema_that_compiles_is_documented);
    RUN(query_problems_are_listed_together_in_fastapis_shape);
    RUN(a_required_query_parameter_is_missing_when_absent);
    RUN(json_body_is_checked_before_the_handler);
    RUN(malformed_json_stays_400_with_its_offset);
    RUN(body_that_is_not_json_is_415_and_an_empty_one_is_missing);
    RUN(before_hooks_answer_first_and_after_hooks_see_the_422);
    RUN(typed_path_parameters_are_match_constraints);
    RUN(a_typed_parameter_without_a_fallback_is_404);
    RUN(accessors_give_zero_for_undeclared_names);
    RUN(malformed_declarations_are_refused_and_mw_run_does_not_start);
    RUN(a_malformed_declaration_is_one_line_with_route_and_column);
    RUN(errors_past_the_limit_are_not_listed);
    RUN(openapi_lists_every_route_once_per_method);
    RUN(openapi_documents_declarations_as_json_schema);
    return test_summary();
}
