/* tu_a.c + tu_b.c: the header included in two translation units of one program, once
   with the implementation and once (in tu_b.c) for declarations only; the
   implementation is also included twice here to show the once-guard works. */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"
#include "../microweb.h"

int tu_b_register(mw_app *app);

int main(void) {
    mw_app *app = mw_app_new();
    int rc = tu_b_register(app);
    mw_app_free(app);
    return rc == 0 ? 0 : 1;
}
