/* replay.c - runs fuzz inputs through a target without libFuzzer: each argument is a
   file or a directory of files. Used by `make test` to replay the corpora and the
   regression inputs under the sanitizers, so a fixed crash never returns. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    if (!f) return perror(path), 1;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (uint8_t *)malloc(n > 0 ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) return fclose(f), free(buf), 1;
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n); /* exact size: the sanitizers see any over-read */
    free(buf);
    return 0;
}

static int replay(const char *path, int *count) {
    struct stat st;
    DIR *d;
    struct dirent *e;
    int bad = 0;
    if (stat(path, &st) != 0) return perror(path), 1;
    if (!S_ISDIR(st.st_mode)) return ++*count, replay_file(path);
    if (!(d = opendir(path))) return perror(path), 1;
    while ((e = readdir(d)) != NULL) {
        char child[4096];
        if (e->d_name[0] == '.') continue;
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        bad |= replay(child, count);
    }
    closedir(d);
    return bad;
}

int main(int argc, char **argv) {
    int i, bad = 0, count = 0;
    for (i = 1; i < argc; i++) bad |= replay(argv[i], &count);
    printf("%s: replayed %d inputs\n", argv[0], count);
    return bad;
}
