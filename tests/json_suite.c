/* json_suite.c - the JSON reader against JSONTestSuite (tests/vectors): every y_ file
   accepted, every n_ file rejected, each i_ file's outcome printed; and every accepted
   document written back with the JSON writer parses to the same value. */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include <dirent.h>

#include "harness.h"
#include "json_common.h"

#define SUITE_DIR "tests/vectors/JSONTestSuite/test_parsing"

typedef struct outcome {
    char name[128];
    int accepted;
    int round_trip; /* 1 same value, 0 differs, -1 the writer refused (non-finite number) */
} outcome;

static outcome results[400];
static int nresults;

static int same_value(const mw_jv *a, const mw_jv *b) {
    const mw_jv *x, *y;
    long long ia, ib;
    if (mw_jv_kind(a) != mw_jv_kind(b)) return 0;
    switch (mw_jv_kind(a)) {
    case MW_JV_NUMBER:
        /* 20e1 and 200 are one value: compare as doubles, and exactly when both are integers */
        return mw_jv_num(a, 0) == mw_jv_num(b, 1) && (!mw__jv_int64(a, &ia) || !mw__jv_int64(b, &ib) || ia == ib);
    case MW_JV_STRING:
        return mw_jv_len(a) == mw_jv_len(b) && memcmp(mw_jv_string(a).ptr, mw_jv_string(b).ptr, mw_jv_len(a)) == 0;
    case MW_JV_ARRAY:
    case MW_JV_OBJECT:
        if (mw_jv_len(a) != mw_jv_len(b)) return 0;
        for (x = mw_jv_first(a), y = mw_jv_first(b); x && y; x = mw_jv_next(x), y = mw_jv_next(y)) {
            if ((mw_jv_key(x) == NULL) != (mw_jv_key(y) == NULL)) return 0;
            if (mw_jv_key(x) &&
                (mw__jv_key_len(x) != mw__jv_key_len(y) || memcmp(mw_jv_key(x), mw_jv_key(y), mw__jv_key_len(x)) != 0))
                return 0;
            if (!same_value(x, y)) return 0;
        }
        return 1;
    default: return 1;
    }
}

/* Writes v with the writer and parses the output again: 1 same, 0 not, -1 refused. */
static int round_trip(const mw_jv *v) {
    mw__buf out;
    mw_json j;
    mw_jv_doc *again;
    int same;
    memset(&out, 0, sizeof out);
    mw__json_init(&j, &out);
    if (mw_json_value(&j, v) != 0 || mw_json_end(&j) != 0) {
        mw__buf_free(&out);
        return -1;
    }
    again = mw_jv_parse(out.data, out.len, NULL, NULL);
    same = again && same_value(v, mw_jv_root(again));
    mw_jv_free(again);
    mw__buf_free(&out);
    return same;
}

static void run_file(const char *name) {
    char path[512];
    size_t len;
    char *text;
    mw_jv_doc *doc;
    outcome *o = &results[nresults];
    snprintf(path, sizeof path, "%s/%s", SUITE_DIR, name);
    if (nresults >= (int)(sizeof results / sizeof results[0]) || !(text = read_file(path, &len))) return;
    snprintf(o->name, sizeof o->name, "%s", name);
    doc = mw_jv_parse(text, len, NULL, NULL);
    o->accepted = doc != NULL;
    o->round_trip = doc ? round_trip(mw_jv_root(doc)) : 0;
    mw_jv_free(doc);
    free(text);
    nresults++;
}

static void load_suite(void) {
    DIR *d = opendir(SUITE_DIR);
    struct dirent *e;
    if (!d) {
        printf("  cannot open %s\n", SUITE_DIR);
        return;
    }
    while ((e = readdir(d)) != NULL)
        if (strlen(e->d_name) > 5 && strcmp(e->d_name + strlen(e->d_name) - 5, ".json") == 0) run_file(e->d_name);
    closedir(d);
}

static int count(char prefix) {
    int i, n = 0;
    for (i = 0; i < nresults; i++) n += results[i].name[0] == prefix;
    return n;
}

TEST(json_suite_found_every_file) {
    CHECK_INT(count('y'), 95);
    CHECK_INT(count('n'), 188);
    CHECK_INT(count('i'), 35);
}

TEST(json_suite_accepts_every_y_file) {
    int i;
    for (i = 0; i < nresults; i++)
        if (results[i].name[0] == 'y' && !results[i].accepted) {
            printf("  rejected %s\n", results[i].name);
            test_checks_failed++;
        }
}

TEST(json_suite_rejects_every_n_file) {
    int i;
    for (i = 0; i < nresults; i++)
        if (results[i].name[0] == 'n' && results[i].accepted) {
            printf("  accepted %s\n", results[i].name);
            test_checks_failed++;
        }
}

TEST(json_suite_round_trips_every_accepted_file) {
    int i;
    for (i = 0; i < nresults; i++) {
        const outcome *o = &results[i];
        /* an i_ number beyond a double (1e999) reads as infinity, which JSON cannot hold */
        if (o->accepted && o->round_trip != 1 && !(o->name[0] == 'i' && o->round_trip == -1)) {
            printf("  %s: %s\n", o->name, o->round_trip ? "writer refused it" : "value changed");
            test_checks_failed++;
        }
    }
}

int main(void) {
    int i;
    load_suite();
    for (i = 0; i < nresults; i++)
        if (results[i].name[0] == 'i')
            printf("info: %-50s %s%s\n", results[i].name, results[i].accepted ? "accepted" : "rejected",
                   results[i].round_trip == -1 ? " (the writer refuses the infinite number)" : "");
    RUN(json_suite_found_every_file);
    RUN(json_suite_accepts_every_y_file);
    RUN(json_suite_rejects_every_n_file);
    RUN(json_suite_round_trips_every_accepted_file);
    return test_summary();
}
