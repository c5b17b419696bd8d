/* json_common.h - reading a whole file, shared by json_check and json_suite. */
#ifndef MW_TEST_JSON_COMMON_H
#define MW_TEST_JSON_COMMON_H
#include <stdio.h>
#include <stdlib.h>

/* The file's bytes (malloc'd, exactly *len bytes), or NULL. */
static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = (char *)malloc((size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}
#endif
