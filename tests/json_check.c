/* json_check - runs one file through microweb's JSON reader.
   usage: tests/json_check FILE
   exit 0: accepted; 1: rejected (the byte offset and the problem are printed);
   2: usage error or unreadable file. */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include "json_common.h"

int main(int argc, char **argv) {
    size_t len, off;
    const char *problem;
    char *text;
    mw_jv_doc *doc;
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    if (!(text = read_file(argv[1], &len))) {
        perror(argv[1]);
        return 2;
    }
    doc = mw_jv_parse(text, len, &off, &problem);
    if (!doc) printf("%s: rejected at byte %lu: %s\n", argv[1], (unsigned long)off, problem);
    mw_jv_free(doc);
    free(text);
    return doc ? 0 : 1;
}
