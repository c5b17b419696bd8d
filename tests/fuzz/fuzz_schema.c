/* fuzz_schema.c - the schema language's compiler, a JSON value checked against what it
   compiled, and the schema written as JSON Schema for the OpenAPI document.
   Input: a schema line, then the JSON text. */
#define MICROWEB_IMPLEMENTATION
#include "../../microweb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks the value, and writes the schema as JSON Schema: the writer must end cleanly. */
static void use(const mw__schema *s, const char *json, size_t len) {
    mw_jv_doc *doc = mw_jv_parse(json, len, NULL, NULL);
    mw_json *j = mw_json_new();
    mw__arena arena;
    mw__vctx v;
    const mw__verror *e;
    memset(&arena, 0, sizeof arena);
    memset(&v, 0, sizeof v);
    v.arena = &arena;
    v.max = 1000;
    if (doc) mw__vcheck(&v, s, s->nodes, mw_jv_root(doc));
    for (e = v.first; e; e = e->next)
        if (!e->type || !e->msg || e->nloc > MW__LOC_MAX) __builtin_trap();
    if (j) {
        mw__openapi_schema(j, s, s->nodes);
        if (!mw_json_text(j, NULL)) __builtin_trap();
    }
    mw_json_free(j);
    mw__arena_free(&arena);
    mw_jv_free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *nl = (const char *)memchr(data, '\n', size);
    size_t len = nl ? (size_t)(nl - (const char *)data) : size;
    char *src = (char *)malloc(len + 1);
    const char *why;
    size_t column;
    int fields_only;
    if (!src) return 0;
    memcpy(src, data, len);
    src[len] = '\0';
    for (fields_only = 0; fields_only < 2; fields_only++) {
        mw__schema *s = mw__schema_compile(src, fields_only, NULL, 0, &why, &column);
        if (!s && (!why || column < 1 || column > strlen(src) + 1)) __builtin_trap();
        if (s) use(s, nl ? nl + 1 : "", nl ? size - len - 1 : 0);
        mw__schema_free(s);
    }
    free(src);
    return 0;
}
