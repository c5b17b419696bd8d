/* limits_table.c - the manual's LIMITS table says what the code does: one row per
   entry of the MW__LIMITS table, in its order, with the same macro, default, unit,
   mw_limit name and "when exceeded" text; README.md names every macro.
   usage: limits_table microweb.h README.md */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include "harness.h"

typedef struct limit_row {
    const char *macro, *limit, *unit, *exceeded;
    long long def;
} limit_row;

static const limit_row code_rows[] = {
#define ROW(name, def, unit, min, max, exceeded) {#def, "MW_LIMIT_" #name, unit, exceeded, (long long)(def)},
    MW__LIMITS(ROW)
#undef ROW
};
#define NROWS (sizeof code_rows / sizeof code_rows[0])

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    long n;
    char *s;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        if (f) fclose(f);
        return NULL;
    }
    s = (char *)malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

/* The next column of a manual row: text up to two spaces in a row. */
static const char *column(const char *p, char *out, size_t size) {
    size_t n = 0;
    while (*p == ' ') p++;
    while (*p && *p != '\n' && !(p[0] == ' ' && p[1] == ' ') && n + 1 < size) out[n++] = *p++;
    out[n] = '\0';
    return p;
}

static char *manual_text, *readme_text;

/* The manual row for macro (the line that starts with it inside LIMITS), or NULL. */
static const char *manual_row(const char *macro) {
    const char *table = strstr(manual_text, "   macro                       default     unit");
    char needle[80];
    const char *at;
    if (!table) return NULL;
    snprintf(needle, sizeof needle, "\n   %s ", macro);
    at = strstr(table, needle);
    return at && at < strstr(table, "Compile-time only") ? at + 4 : NULL;
}

TEST(manual_limits_table_matches_the_code) {
    size_t i;
    for (i = 0; i < NROWS; i++) {
        const limit_row *r = &code_rows[i];
        char macro[64], def[32], unit[32], limit[64], exceeded[128];
        const char *p = manual_row(r->macro);
        if (!p) {
            printf("  check failed: no manual row for %s\n", r->macro);
            test_checks_failed++;
            continue;
        }
        p = column(p, macro, sizeof macro);
        p = column(p, def, sizeof def);
        p = column(p, unit, sizeof unit);
        p = column(p, limit, sizeof limit);
        column(p, exceeded, sizeof exceeded);
        CHECK_STR(macro, r->macro);
        CHECK_INT(atoll(def), r->def);
        CHECK_STR(unit, r->unit);
        CHECK_STR(limit, r->limit);
        CHECK_STR(exceeded, r->exceeded);
    }
}

TEST(manual_limits_table_has_no_extra_rows) {
    const char *table = strstr(manual_text, "   macro                       default     unit");
    const char *end = table ? strstr(table, "Compile-time only") : NULL;
    size_t rows = 0;
    const char *p;
    CHECK(table && end);
    if (!table || !end) return;
    for (p = strchr(table, '\n'); p && p < end; p = strchr(p + 1, '\n'))
        if (strncmp(p + 1, "   MW_", 6) == 0) rows++;
    CHECK_INT(rows, NROWS);
}

TEST(readme_names_every_limit) {
    size_t i;
    for (i = 0; i < NROWS; i++) {
        char needle[80];
        snprintf(needle, sizeof needle, "`%s`", code_rows[i].macro);
        if (!strstr(readme_text, needle)) {
            printf("  check failed: README.md does not name %s\n", code_rows[i].macro);
            test_checks_failed++;
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 3 || !(manual_text = read_file(argv[1])) || !(readme_text = read_file(argv[2]))) {
        fprintf(stderr, "usage: limits_table microweb.h README.md\n");
        return 2;
    }
    RUN(manual_limits_table_matches_the_code);
    RUN(manual_limits_table_has_no_extra_rows);
    RUN(readme_names_every_limit);
    free(manual_text);
    free(readme_text);
    return test_summary();
}
