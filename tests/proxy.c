/* proxy.c - behind a proxy: forwarding fields (X-Forwarded-For, -Proto, -Host and
   RFC 7239 Forwarded) believed from trusted proxies only, through the test client,
   whose requests come from 127.0.0.1 port 0; the trusted list's parser and its
   address blocks; the CSRF origin check and the access log behind a proxy. */
#define MICROWEB_IMPLEMENTATION
#include "../microweb.h"

#include "harness.h"

#include <stdlib.h>

/* ------------------------------------------------------------------ helpers */

/* GET /who: "ADDRESS PORT SCHEME HOST", as the app sees the request. */
static void who(mw_req *rq, mw_res *rs) {
    mw_printf(rs, "%s %d %s %s", mw_client_addr(rq), mw_client_port(rq), mw_scheme(rq), mw_host(rq));
}

static void form(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_text(rs, 200, "saved");
}

/* GET /pulled: a body made on demand, logged when it ends (after the request's head
   is gone from the worker). */
static long pull_once(void *arg, char *buf, size_t cap) {
    int *done = (int *)arg;
    if (*done || cap < 3) return 0;
    *done = 1;
    memcpy(buf, "abc", 3);
    return 3;
}

static void pulled(mw_req *rq, mw_res *rs) {
    int *done = (int *)mw_req_alloc(rq, sizeof *done);
    *done = 0;
    mw_send_pull(rs, 200, "text/plain", pull_once, done, NULL);
}

static struct {
    int count;
    char text[512];
} logged;

static void keep_line(void *arg, mw_log_level level, const char *line) {
    (void)arg;
    (void)level;
    logged.count++;
    snprintf(logged.text, sizeof logged.text, "%s", line);
}

/* An app trusting list (NULL: trusting none). */
static mw_app *app_trusting(const char *list) {
    mw_app *app = mw_app_new();
    mw_get(app, "/who", who);
    mw_get(app, "/pulled", pulled);
    mw_post(app, "/form", form);
    mw_set_logger(app, keep_line, NULL);
    if (list) mw_trusted_proxies(app, list);
    return app;
}

/* Whether GET /who with these header lines is answered with want. */
static int sees(mw_app *app, const char *headers, const char *want) {
    mw_test_res *r = mw_test_request(app, "GET", "/who", headers, NULL, 0);
    int ok = r && r->status == 200 && r->body_len == strlen(want) && memcmp(r->body, want, r->body_len) == 0;
    if (!ok)
        printf("  with \"%s\": got \"%.*s\", want \"%s\"\n", headers, r ? (int)r->body_len : 0, r ? r->body : "", want);
    mw_test_free(r);
    return ok;
}

/* The trusted list's parse of one entry: NULL when it is one, else why not. */
static const char *cidr_problem(const char *text, mw__cidr *net) {
    mw_str s;
    s.ptr = text;
    s.len = strlen(text);
    return mw__parse_cidr(s, net);
}

/* Whether the block text contains address. */
static int contains(const char *block, const char *address) {
    mw__cidr net;
    mw__addr a;
    if (cidr_problem(block, &net) || !mw__parse_node(address, strlen(address), &a)) {
        printf("  \"%s\" or \"%s\" does not parse\n", block, address);
        return -1;
    }
    return mw__cidr_contains(&net, a.ip);
}

/* ------------------------------------------------------------------ address blocks */

TEST(cidr_boundaries_for_ipv4) {
    CHECK_INT(contains("0.0.0.0/0", "203.0.113.7"), 1);
    CHECK_INT(contains("0.0.0.0/0", "2001:db8::1"), 0); /* every IPv4 address, no IPv6 one */
    CHECK_INT(contains("10.0.0.0/8", "10.255.255.255"), 1);
    CHECK_INT(contains("10.0.0.0/8", "11.0.0.0"), 0);
    CHECK_INT(contains("10.0.0.0/8", "9.255.255.255"), 0);
    CHECK_INT(contains("10.128.0.0/9", "10.128.0.0"), 1); /* a prefix inside a byte */
    CHECK_INT(contains("10.128.0.0/9", "10.127.255.255"), 0);
    CHECK_INT(contains("192.0.2.1/32", "192.0.2.1"), 1);
    CHECK_INT(contains("192.0.2.1/32", "192.0.2.2"), 0);
    CHECK_INT(contains("192.0.2.1/32", "192.0.2.0"), 0);
    CHECK_INT(contains("192.0.2.1", "192.0.2.1"), 1); /* an address alone is a /32 */
    CHECK_INT(contains("192.0.2.1", "192.0.2.3"), 0);
}

TEST(cidr_boundaries_for_ipv6) {
    CHECK_INT(contains("::/0", "2001:db8::1"), 1);
    CHECK_INT(contains("::/0", "203.0.113.7"), 1); /* every address, IPv4 ones (::ffff:a.b.c.d) too */
    CHECK_INT(contains("fd00::/8", "fdff:ffff::1"), 1);
    CHECK_INT(contains("fd00::/8", "fe00::1"), 0);
    CHECK_INT(contains("fd00::/8", "fc00::1"), 0);
    CHECK_INT(contains("::1/128", "::1"), 1);
    CHECK_INT(contains("::1/128", "::2"), 0);
    CHECK_INT(contains("::1/128", "::"), 0);
    CHECK_INT(contains("::1", "::1"), 1); /* an address alone is a /128 */
    CHECK_INT(contains("2001:db8::/127", "2001:db8::1"), 1);
    CHECK_INT(contains("2001:db8::/127", "2001:db8::2"), 0);
}

TEST(ipv4_mapped_ipv6_is_the_ipv4_address) {
    /* a dual-stack socket shows an IPv4 client as ::ffff:a.b.c.d: the same client */
    CHECK_INT(contains("10.0.0.0/8", "::ffff:10.1.2.3"), 1);
    CHECK_INT(contains("::ffff:10.0.0.0/104", "10.1.2.3"), 1);
    CHECK_INT(contains("::ffff:10.0.0.0/104", "11.1.2.3"), 0);
    CHECK_INT(contains("127.0.0.1", "::ffff:127.0.0.1"), 1);
    CHECK_INT(contains("127.0.0.1", "::1"), 0); /* IPv6 loopback is another address */
}

TEST(cidr_entries_refused_with_their_reason) {
    mw__cidr net;
    CHECK(cidr_problem("*", &net) == NULL && net.bits == 0);
    CHECK(cidr_problem("10.0.0.0/8", &net) == NULL && net.bits == 104);
    CHECK(cidr_problem("fd00::/8", &net) == NULL && net.bits == 8);
    CHECK_STR(cidr_problem("10.0.0.0/33", &net), "has a prefix longer than 32");
    CHECK_STR(cidr_problem("::/129", &net), "has a prefix longer than 128");
    CHECK_STR(cidr_problem("10.1.0.0/8", &net), "has address bits set beyond its prefix length");
    CHECK_STR(cidr_problem("fd00::1/8", &net), "has address bits set beyond its prefix length");
    CHECK_STR(cidr_problem("10.0.0.0/", &net), "has no prefix length after '/'");
    CHECK_STR(cidr_problem("10.0.0.0/8x", &net), "has no prefix length after '/'");
    CHECK_STR(cidr_problem("10.0.0.0/0008", &net), "has no prefix length after '/'");
    CHECK(cidr_problem("10.0.0", &net) != NULL);
    CHECK(cidr_problem("10.0.0.256", &net) != NULL);
    CHECK(cidr_problem("proxy.internal", &net) != NULL);
    CHECK(cidr_problem("fe80::1%eth0", &net) != NULL); /* a zone names an interface, not an address */
    CHECK(cidr_problem("[::1]", &net) != NULL);
    CHECK(cidr_problem("/8", &net) != NULL);
}

TEST(hops_parsed_as_proxies_write_them) {
    mw__addr a;
    char ip[INET6_ADDRSTRLEN];
    CHECK(mw__parse_node("192.0.2.1:8080", 14, &a) && a.port == 8080);
    CHECK(mw__parse_node("[2001:db8::17]:4711", 19, &a) && a.port == 4711);
    mw__format_ip(&a, ip);
    CHECK_STR(ip, "2001:db8::17");
    CHECK(mw__parse_node("[2001:db8::17]", 14, &a) && a.port == 0);
    CHECK(mw__parse_node("2001:db8::17", 12, &a) && a.port == 0);
    CHECK(mw__parse_node("192.0.2.1:_a9", 13, &a) && a.port == 0); /* an obfuscated port */
    CHECK(!mw__parse_node("192.0.2.1:65536", 15, &a));
    CHECK(!mw__parse_node("192.0.2.1:", 10, &a));
    CHECK(!mw__parse_node("192.0.2.1:80:80", 15, &a));
    CHECK(!mw__parse_node("[2001:db8::17", 13, &a));
    CHECK(!mw__parse_node("[2001:db8::17]x", 15, &a));
    CHECK(!mw__parse_node("[192.0.2.1]", 11, &a)); /* brackets hold IPv6 only */
    CHECK(!mw__parse_node("[fe80::1%25eth0]", 16, &a));
    CHECK(!mw__parse_node("fe80::1%eth0", 12, &a));
    CHECK(!mw__parse_node("unknown", 7, &a));
    CHECK(!mw__parse_node("_hidden", 7, &a));
    CHECK(!mw__parse_node("", 0, &a));
    CHECK(!mw__parse_node("192.0.2.1\0x", 11, &a));
}

/* ------------------------------------------------------------------ the trusted list */

TEST(trusted_list_parsed_once_with_spaces_and_empty_entries) {
    mw_app *app = mw_app_new();
    CHECK_INT(mw_trusted_proxies(app, " 127.0.0.1 , 10.0.0.0/8,, ::1, fd00::/8 ,"), 0);
    CHECK_INT(app->proxies.n, 4);
    CHECK_INT(mw_trusted_proxies(app, ""), 0); /* none again */
    CHECK_INT(app->proxies.n, 0);
    CHECK_INT(mw_trusted_proxies(app, NULL), 0);
    CHECK_INT(mw_trusted_proxies(NULL, "127.0.0.1"), MW_EINVAL);
    CHECK_INT(app->setup_errors, 0);
    mw_app_free(app);
}

TEST(malformed_trusted_list_is_one_line_and_refuses_to_serve) {
    static const char *bad[] = {"10.0.0.0/33", "127.0.0.1, 10.1.0.0/8", "fe80::1%eth0", "proxy.internal", "1.2.3.4/",
                                "::1/129",     "127.0.0.1;10.0.0.1"};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mw_app *app = app_trusting("127.0.0.1");
        memset(&logged, 0, sizeof logged);
        CHECK_INT(mw_trusted_proxies(app, bad[i]), MW_EINVAL);
        CHECK_INT(logged.count, 1);
        CHECK(strncmp(logged.text, "mw_trusted_proxies: \"", 21) == 0);
        CHECK_INT(app->proxies.n, 1); /* the list before stays */
        CHECK(mw_listen(app, "127.0.0.1", 0) > 0);
        CHECK_INT(mw_serve(app), MW_EINVAL); /* a setup error: not serving */
        mw_app_free(app);
    }
    {
        mw_app *app = app_trusting(NULL);
        memset(&logged, 0, sizeof logged);
        mw_trusted_proxies(app, "10.1.0.0/8");
        CHECK_STR(logged.text, "mw_trusted_proxies: \"10.1.0.0/8\" has address bits set beyond its prefix length");
        mw_app_free(app);
    }
}

TEST(environment_list_replaces_the_call_as_serving_starts) {
    mw_app *app = app_trusting("10.0.0.0/8");
    setenv("MW_TRUSTED_PROXIES", "127.0.0.1, ::1, 192.0.2.0/24", 1);
    CHECK_INT(mw__setup_errors(app), 0);
    CHECK_INT(app->proxies.n, 3);
    setenv("MW_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/80", 1);
    memset(&logged, 0, sizeof logged);
    CHECK_INT(mw__setup_errors(app), 1);
    CHECK_STR(logged.text, "MW_TRUSTED_PROXIES: \"10.0.0.0/80\" has a prefix longer than 32");
    CHECK_INT(app->proxies.n, 3);
    mw_app_free(app);
    app = app_trusting(NULL);
    memset(&logged, 0, sizeof logged);
    CHECK(mw_listen(app, "127.0.0.1", 0) > 0);
    CHECK_INT(mw_serve(app), MW_EINVAL);
    CHECK_INT(logged.count, 1);
    unsetenv("MW_TRUSTED_PROXIES");
    mw_app_free(app);
}

/* ------------------------------------------------------------------ X-Forwarded-* */

TEST(untrusted_peer_forwarding_fields_are_ignored) {
    static const char *forged = "X-Forwarded-For: 6.6.6.6\nX-Forwarded-Proto: https\nX-Forwarded-Host: evil.example\n"
                                "Host: app.internal:8080";
    mw_app *none = app_trusting(NULL), *others = app_trusting("10.0.0.0/8, ::1");
    CHECK(sees(none, forged, "127.0.0.1 0 http app.internal:8080"));
    CHECK(sees(none, "Forwarded: for=6.6.6.6;proto=https;host=evil.example", "127.0.0.1 0 http test"));
    CHECK(sees(others, forged, "127.0.0.1 0 http app.internal:8080"));
    CHECK(sees(others, "Forwarded: for=6.6.6.6;proto=https;host=evil.example", "127.0.0.1 0 http test"));
    mw_app_free(none);
    mw_app_free(others);
}

TEST(trusted_peer_chain_walked_from_the_right_to_the_first_untrusted_hop) {
    mw_app *app = app_trusting("127.0.0.1, 10.0.0.0/8");
    /* the client said 6.6.6.6; the first proxy saw 203.0.113.7, the second 10.0.0.2 */
    CHECK(sees(app, "X-Forwarded-For: 6.6.6.6, 203.0.113.7, 10.0.0.2", "203.0.113.7 0 http test"));
    CHECK(sees(app, "X-Forwarded-For: 203.0.113.7", "203.0.113.7 0 http test"));
    CHECK(sees(app, "X-Forwarded-For: 10.0.0.9, 10.0.0.3, 10.0.0.2", "10.0.0.9 0 http test")); /* all trusted */
    CHECK(sees(app, "X-Forwarded-For: 6.6.6.6\nX-Forwarded-For: 203.0.113.7", "203.0.113.7 0 http test"));
    CHECK(sees(app, "X-Forwarded-For: 6.6.6.6, 203.0.113.7:5555", "203.0.113.7 5555 http test"));
    CHECK(sees(app, "X-Forwarded-For: 2001:db8::7", "2001:db8::7 0 http test"));
    CHECK(sees(app, "X-Forwarded-For: [2001:db8::7]:443, 10.0.0.2", "2001:db8::7 443 http test"));
    CHECK(sees(app, "X-Forwarded-For: ::ffff:203.0.113.7", "203.0.113.7 0 http test"));
    CHECK(sees(app, "x-forwarded-for:   203.0.113.7  ", "203.0.113.7 0 http test"));
    CHECK(sees(app, "X-Forwarded-For: 10.1.1.1", "10.1.1.1 0 http test"));
    mw_app_free(app);
}

TEST(garbage_and_empty_elements_end_the_walk_at_the_last_good_hop) {
    mw_app *app = app_trusting("127.0.0.1, 10.0.0.0/8");
    CHECK(sees(app, "X-Forwarded-For: 203.0.113.7, garbage", "127.0.0.1 0 http test"));
    CHECK(sees(app, "X-Forwarded-For: 203.0.113.7, garbage, 10.0.0.2", "10.0.0.2 0 http test"));
    CHECK(sees(app, "X-Forwarded-For: garbage, 203.0.113.7", "203.0.113.7 0 http test"));
    CHECK(sees(app, "X-Forwarded-For: 203.0.113.7, , 10.0.0.2,", "203.0.113.7 0 http test"));
    CHECK(sees(app, "X-Forwarded-For: ,,, ,", "127.0.0.1 0 http test"));
    CHECK(sees(app, "X-Forwarded-For:", "127.0.0.1 0 http test"));
    CHECK(sees(app, "X-Forwarded-For: unknown", "127.0.0.1 0 http test"));
    CHECK(sees(app, "X-Forwarded-For: fe80::1%eth0", "127.0.0.1 0 http test"));
    CHECK(sees(app, "X-Forwarded-For: 203.0.113.7:99999", "127.0.0.1 0 http test"));
    CHECK(sees(app, "X-Forwarded-For: 203.0.113.7:", "127.0.0.1 0 http test"));
    CHECK(sees(app, "X-Forwarded-For: 203.0.113.7.1", "127.0.0.1 0 http test"));
    CHECK(sees(app, "X-Forwarded-For: \"203.0.113.7\"", "127.0.0.1 0 http test"));
    /* a quote a client left open does not swallow what the proxy appended after it */
    CHECK(sees(app, "X-Forwarded-For: \"6.6.6.6, 203.0.113.7", "203.0.113.7 0 http test"));
    mw_app_free(app);
}

TEST(proto_and_host_from_the_proxy_nearest_the_client) {
    mw_app *app = app_trusting("127.0.0.1, 10.0.0.0/8");
    CHECK(sees(app, "X-Forwarded-Proto: https\nX-Forwarded-Host: example.com", "127.0.0.1 0 https example.com"));
    CHECK(sees(app, "X-Forwarded-Proto: HTTPS\nX-Forwarded-Host: example.com:8443",
               "127.0.0.1 0 https example.com:8443"));
    /* two proxies, each appending: the first one (nearer the client) saw https */
    CHECK(sees(app, "X-Forwarded-For: 203.0.113.7, 10.0.0.2\nX-Forwarded-Proto: https, http",
               "203.0.113.7 0 https test"));
    CHECK(sees(app, "X-Forwarded-For: 203.0.113.7, 10.0.0.2\nX-Forwarded-Proto: https", "203.0.113.7 0 https test"));
    CHECK(sees(app, "X-Forwarded-For: 203.0.113.7\nX-Forwarded-Proto: http, https", "203.0.113.7 0 https test"));
    CHECK(sees(app, "X-Forwarded-For: 6.6.6.6, 203.0.113.7\nX-Forwarded-Host: evil.example, example.com",
               "203.0.113.7 0 http example.com"));
    CHECK(sees(app, "X-Forwarded-Proto: ftp", "127.0.0.1 0 http test"));
    CHECK(sees(app, "X-Forwarded-Host: exa mple.com", "127.0.0.1 0 http test"));
    CHECK(sees(app, "X-Forwarded-Host: example.com/path", "127.0.0.1 0 http test"));
    CHECK(sees(app, "X-Forwarded-Host: user@example.com", "127.0.0.1 0 http test"));
    CHECK(sees(app, "X-Forwarded-Host: :8080", "127.0.0.1 0 http test"));
    CHECK(sees(app, "X-Forwarded-Host: [2001:db8::1]:8443", "127.0.0.1 0 http [2001:db8::1]:8443"));
    mw_app_free(app);
}

/* ------------------------------------------------------------------ Forwarded (RFC 7239) */

TEST(forwarded_pairs_quotes_brackets_and_ports) {
    mw_app *app = app_trusting("127.0.0.1, 10.0.0.0/8");
    CHECK(sees(app, "Forwarded: for=192.0.2.60;proto=https;host=example.com", "192.0.2.60 0 https example.com"));
    CHECK(sees(app, "Forwarded: For=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17 4711 http test"));
    CHECK(sees(app, "Forwarded: for=\"[2001:db8:cafe::17]\"", "2001:db8:cafe::17 0 http test"));
    CHECK(sees(app, "Forwarded: for=\"192.0.2.60:8080\";host=\"example.com:8443\"",
               "192.0.2.60 8080 http example.com:8443"));
    CHECK(sees(app, "Forwarded: for=192.0.2.43, for=198.51.100.17", "198.51.100.17 0 http test"));
    CHECK(sees(app, "Forwarded: for=192.0.2.43\nForwarded: for=10.0.0.2;proto=https", "192.0.2.43 0 https test"));
    CHECK(sees(app, "Forwarded: for = 192.0.2.60 ; by=10.0.0.1 ;; proto=https", "192.0.2.60 0 https test"));
    /* each trusted proxy's element says what it saw; the one nearest the client wins */
    CHECK(sees(
        app, "Forwarded: for=6.6.6.6;proto=http, for=203.0.113.7;proto=https;host=example.com, for=10.0.0.2;proto=http",
        "203.0.113.7 0 https example.com"));
    mw_app_free(app);
}

TEST(forwarded_obfuscated_unknown_and_malformed_end_the_walk) {
    mw_app *app = app_trusting("127.0.0.1, 10.0.0.0/8");
    CHECK(sees(app, "Forwarded: for=\"_gazonk\"", "127.0.0.1 0 http test"));
    CHECK(
        sees(app, "Forwarded: for=unknown;proto=https", "127.0.0.1 0 https test")); /* its proto is the proxy's word */
    CHECK(sees(app, "Forwarded: for=203.0.113.7, for=_hidden, for=10.0.0.2", "10.0.0.2 0 http test"));
    CHECK(sees(app, "Forwarded: proto=https;host=example.com", "127.0.0.1 0 https example.com"));
    CHECK(sees(app, "Forwarded: for=\"203.0.113.7", "127.0.0.1 0 http test"));
    CHECK(sees(app, "Forwarded: for=203.0.113.7\"", "127.0.0.1 0 http test"));
    CHECK(sees(app, "Forwarded: for=\"2\\03.0.113.7\"", "127.0.0.1 0 http test"));
    CHECK(sees(app, "Forwarded: for=1.1.1.1;for=203.0.113.7", "127.0.0.1 0 http test")); /* a pair twice */
    CHECK(sees(app, "Forwarded: for", "127.0.0.1 0 http test"));
    CHECK(sees(app, "Forwarded: =203.0.113.7", "127.0.0.1 0 http test"));
    CHECK(sees(app, "Forwarded: f o r=203.0.113.7", "127.0.0.1 0 http test"));
    CHECK(sees(app, "Forwarded: for=", "127.0.0.1 0 http test"));
    CHECK(sees(app, "Forwarded: for=[fe80::1%eth0]", "127.0.0.1 0 http test"));
    CHECK(sees(app, "Forwarded: for=203.0.113.7;proto=gopher;host=a/b", "203.0.113.7 0 http test"));
    /* a quote left open by the client does not swallow the proxy's element */
    CHECK(sees(app, "Forwarded: for=\"6.6.6.6, for=203.0.113.7", "203.0.113.7 0 http test"));
    mw_app_free(app);
}

TEST(x_forwarded_fields_win_over_forwarded) {
    mw_app *app = app_trusting("127.0.0.1");
    /* a proxy writing X-Forwarded-For may pass on a Forwarded the client made up */
    CHECK(sees(app, "Forwarded: for=6.6.6.6;proto=https;host=evil.example\nX-Forwarded-For: 203.0.113.7",
               "203.0.113.7 0 http test"));
    CHECK(sees(app, "Forwarded: for=6.6.6.6\nX-Forwarded-Proto: https", "127.0.0.1 0 https test"));
    CHECK(sees(app, "X-Forwarded-Host: example.com\nForwarded: for=6.6.6.6", "127.0.0.1 0 http example.com"));
    mw_app_free(app);
}

/* ------------------------------------------------------------------ robustness */

TEST(hop_limit_stops_the_walk) {
    mw_app *app = app_trusting("127.0.0.1, 10.0.0.0/8");
    char *big = (char *)malloc(70000), *p;
    int i;
    CHECK_INT(mw_set_limit(app, MW_LIMIT_FORWARDED_HOPS, 2), 0);
    CHECK_INT(mw_set_limit(app, MW_LIMIT_FORWARDED_HOPS, 0), MW_EINVAL);
    CHECK_INT(mw_set_limit(app, MW_LIMIT_FORWARDED_HOPS, 65), MW_EINVAL);
    CHECK(sees(app, "X-Forwarded-For: 203.0.113.7, 10.0.0.3, 10.0.0.2", "10.0.0.3 0 http test"));
    CHECK(sees(app, "Forwarded: for=203.0.113.7, for=10.0.0.3, for=10.0.0.2", "10.0.0.3 0 http test"));
    CHECK(sees(app, "X-Forwarded-For: 203.0.113.7, 10.0.0.2", "203.0.113.7 0 http test"));
    /* the whole header section of trusted hops, at the default limit and at 64 */
    CHECK_INT(mw_set_limit(app, MW_LIMIT_FORWARDED_HOPS, MW_FORWARDED_MAX_HOPS), 0);
    p = big + sprintf(big, "X-Forwarded-For: 203.0.113.7");
    for (i = 0; i < 1300; i++) p += sprintf(p, ",10.0.%d.%d", i / 200, i % 200);
    CHECK(sees(app, big, "10.0.6.84 0 http test")); /* the 16th from the right */
    CHECK_INT(mw_set_limit(app, MW_LIMIT_FORWARDED_HOPS, 64), 0);
    CHECK(sees(app, big, "10.0.6.36 0 http test"));
    /* garbage of every size: the peer */
    memset(big, 'x', 16000);
    memcpy(big, "X-Forwarded-For: ", 17);
    big[16000] = '\0';
    CHECK(sees(app, big, "127.0.0.1 0 http test"));
    memcpy(big, "Forwarded:       ", 17);
    CHECK(sees(app, big, "127.0.0.1 0 http test"));
    free(big);
    mw_app_free(app);
}

TEST(no_host_at_all_is_empty) {
    mw_app *app = app_trusting(NULL);
    mw_test_res *r = mw_test_raw(app, "GET /who HTTP/1.0\r\n\r\n", 21);
    CHECK_INT(r->status, 200);
    CHECK_MEM(r->body, r->body_len, "127.0.0.1 0 http ");
    mw_test_free(r);
    mw_app_free(app);
}

/* ------------------------------------------------------------------ what uses them */

static int post_form(mw_app *app, const char *headers) {
    mw_test_res *r = mw_test_request(app, "POST", "/form", headers, "x", 1);
    int status = r ? r->status : -1;
    mw_test_free(r);
    return status;
}

TEST(cross_origin_decision_with_a_scheme_a_proxy_said) {
    static const struct {
        const char *fetch_site, *origin, *scheme, *host;
        int refused;
    } rows[] = {
        {NULL, "https://site.test", "https", "site.test", 0},
        {NULL, "HTTPS://site.test", "https", "site.test", 0},
        {NULL, "http://site.test", "https", "site.test", 1},
        {NULL, "https://site.test", "http", "site.test", 1},
        {NULL, "https-x://site.test", "https", "site.test", 1},
        {NULL, "https://site.test", NULL, "site.test", 0}, /* not known: not compared */
        {NULL, "http://site.test", NULL, "site.test", 0},
        {NULL, "http://", NULL, "", 1},                               /* no host at all */
        {"same-origin", "http://site.test", "https", "site.test", 0}, /* Sec-Fetch-Site is believed first */
    };
    size_t i;
    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *why = mw__cross_origin_refusal(rows[i].fetch_site, rows[i].origin, rows[i].scheme, rows[i].host);
        if ((why != NULL) != rows[i].refused) printf("  row %lu\n", (unsigned long)i);
        CHECK((why != NULL) == rows[i].refused);
    }
}

TEST(csrf_origin_check_uses_the_forwarded_host_and_scheme) {
    mw_app *direct = app_trusting(NULL), *proxied = app_trusting("127.0.0.1");
    mw_csrf_protect(direct, 1);
    mw_csrf_protect(proxied, 1);
    /* without a trusted proxy: Host, and a forged X-Forwarded-Host changes nothing */
    CHECK_INT(post_form(direct, "Host: example.com\nOrigin: https://example.com"), 200);
    CHECK_INT(post_form(direct, "Host: app.internal:8080\nX-Forwarded-Host: example.com\nOrigin: https://example.com"),
              403);
    /* behind it: the host and scheme the client asked the proxy for */
    CHECK_INT(post_form(proxied, "Host: app.internal:8080\nX-Forwarded-Host: example.com\nX-Forwarded-Proto: https\n"
                                 "Origin: https://example.com"),
              200);
    CHECK_INT(post_form(proxied, "Host: app.internal:8080\nX-Forwarded-Host: example.com\nX-Forwarded-Proto: https\n"
                                 "Origin: http://example.com"),
              403);
    CHECK_INT(post_form(proxied, "Host: app.internal:8080\nForwarded: proto=https;host=example.com\n"
                                 "Origin: https://example.com"),
              200);
    CHECK_INT(post_form(proxied, "Host: app.internal:8080\nX-Forwarded-Host: example.com\n"
                                 "Origin: https://app.internal:8080"),
              403);
    CHECK_INT(post_form(proxied, "Host: example.com\nOrigin: http://example.com"), 200); /* no scheme said */
    mw_app_free(direct);
    mw_app_free(proxied);
}

/* The status of a WebSocket handshake to /ws (same origin only) with these lines. */
static int handshake(mw_app *app, const char *headers) {
    char all[512];
    mw_test_res *r;
    int status;
    snprintf(all, sizeof all,
             "Upgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Version: 13\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n%s",
             headers);
    r = mw_test_request(app, "GET", "/ws", all, NULL, 0);
    status = r->status ? r->status : atoi(r->raw + 9);
    mw_test_free(r);
    return status;
}

TEST(websocket_same_origin_check_uses_the_forwarded_host) {
    mw_app *direct = app_trusting(NULL), *proxied = app_trusting("127.0.0.1");
    mw_ws_opts o;
    static const char *via_proxy =
        "Host: app.internal:8080\nX-Forwarded-Host: example.com\nX-Forwarded-Proto: https\nOrigin: https://example.com";
    memset(&o, 0, sizeof o);
    mw_websocket(direct, "/ws", &o);
    mw_websocket(proxied, "/ws", &o);
    CHECK_INT(handshake(direct, via_proxy), 403);
    CHECK_INT(handshake(proxied, via_proxy), 101);
    CHECK_INT(handshake(proxied, "Host: app.internal:8080\nX-Forwarded-Host: example.com\nX-Forwarded-Proto: https\n"
                                 "Origin: http://example.com"),
              403);
    CHECK_INT(handshake(direct, "Host: example.com\nOrigin: https://example.com"), 101);
    mw_app_free(direct);
    mw_app_free(proxied);
}

TEST(access_log_names_the_forwarded_client) {
    mw_app *app = app_trusting("127.0.0.1");
    mw_test_res *r;
    mw_set_limit(app, MW_LIMIT_ACCESS_LOG, 1);
    memset(&logged, 0, sizeof logged);
    r = mw_test_request(app, "GET", "/who", "X-Forwarded-For: 6.6.6.6, 203.0.113.7:4711", NULL, 0);
    CHECK(strstr(logged.text, " 203.0.113.7:4711 GET /who 200 ") != NULL);
    mw_test_free(r);
    r = mw_test_request(app, "GET", "/who", "X-Forwarded-For: 2001:db8::7", NULL, 0);
    CHECK(strstr(logged.text, " [2001:db8::7]:0 GET /who 200 ") != NULL);
    mw_test_free(r);
    r = mw_test_request(app, "GET", "/pulled", "X-Forwarded-For: 203.0.113.9", NULL, 0);
    CHECK_MEM(r->body, r->body_len, "abc");
    CHECK(strstr(logged.text, " 203.0.113.9:0 GET /pulled 200 3 ") != NULL);
    mw_test_free(r);
    mw_trusted_proxies(app, "");
    r = mw_test_request(app, "GET", "/who", "X-Forwarded-For: 203.0.113.7", NULL, 0);
    CHECK(strstr(logged.text, " 127.0.0.1:0 GET /who 200 ") != NULL);
    mw_test_free(r);
    mw_app_free(app);
}

int main(void) {
    unsetenv("MW_TRUSTED_PROXIES");
    unsetenv("MW_ACCESS_LOG");
    RUN(cidr_boundaries_for_ipv4);
    RUN(cidr_boundaries_for_ipv6);
    RUN(ipv4_mapped_ipv6_is_the_ipv4_address);
    RUN(cidr_entries_refused_with_their_reason);
    RUN(hops_parsed_as_proxies_write_them);
    RUN(trusted_list_parsed_once_with_spaces_and_empty_entries);
    RUN(malformed_trusted_list_is_one_line_and_refuses_to_serve);
    RUN(environment_list_replaces_the_call_as_serving_starts);
    RUN(untrusted_peer_forwarding_fields_are_ignored);
    RUN(trusted_peer_chain_walked_from_the_right_to_the_first_untrusted_hop);
    RUN(garbage_and_empty_elements_end_the_walk_at_the_last_good_hop);
    RUN(proto_and_host_from_the_proxy_nearest_the_client);
    RUN(forwarded_pairs_quotes_brackets_and_ports);
    RUN(forwarded_obfuscated_unknown_and_malformed_end_the_walk);
    RUN(x_forwarded_fields_win_over_forwarded);
    RUN(hop_limit_stops_the_walk);
    RUN(no_host_at_all_is_empty);
    RUN(cross_origin_decision_with_a_scheme_a_proxy_said);
    RUN(csrf_origin_check_uses_the_forwarded_host_and_scheme);
    RUN(websocket_same_origin_check_uses_the_forwarded_host);
    RUN(access_log_names_the_forwarded_client);
    return test_summary();
}
