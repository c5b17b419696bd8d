/* pairs_routes.h - handlers shared by tests/testapp.c (over sockets) and tests/toolkit.c
   (through the test client): every name=value pair of the query or the form body, as
   "name=value;" text, in request order. */
#ifndef PAIRS_ROUTES_H
#define PAIRS_ROUTES_H

static void list_values(mw_req *rq, mw_res *rs, mw_source src) {
    size_t cursor = 0;
    const char *name, *value;
    mw_status(rs, 200);
    while (mw_next_value(rq, src, &cursor, &name, &value) > 0) mw_printf(rs, "%s=%s;", name, value);
}
static void query_pairs(mw_req *rq, mw_res *rs) { list_values(rq, rs, MW_QUERY); }
static void form_pairs(mw_req *rq, mw_res *rs) { list_values(rq, rs, MW_FORM); }

#endif
