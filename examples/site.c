/* site.c - a small site: a login form, a session, CSRF protection, security headers,
   an API another origin may call, and its stylesheet, script and logo as static files.

   Build and run from the repository's root (the session key comes from the environment):
       make run-site
   or by hand:
       make build/site
       MW_SECRET_KEY=$(head -c 32 /dev/urandom | base64) CORS_ORIGIN=http://localhost:5173 build/site
   Then open http://127.0.0.1:8080/ and log in as demo / demo.

   GET  /          an HTML page: the login form, or who you are and a logout button
   POST /login     form user=demo&password=demo: sets the session, 303 to /me
   GET  /me        {"user":"demo"}, or 401 without a session
   POST /logout    ends the session, 303 to /
   GET  /api/time  the server's time and the session's user, readable by pages from
                   CORS_ORIGIN (comma-separated origins), with credentials
   GET  /static/x  the file x of the folder STATIC_DIR (by default examples/site/static,
                   relative to where the server runs): style.css, app.js, logo.png, and
                   style.css.gz (style.css gzipped) for browsers that accept gzip
   The HTML pages are Mustache templates in TEMPLATES_DIR (by default
   examples/site/templates): layout.html, home.html, login_form.html. */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h"

#include <stdlib.h>
#include <time.h>

/* A browser that loaded a form of ours holds a session with a CSRF secret, and must send
   the form's token back. A client without one (curl, a script) has no session a forged
   request could ride on, and a browser's cross-site request is already refused by the
   Origin check that sessions turn on. */
static int form_token_ok(mw_req *rq) { return !mw_session_get(rq, "_csrf") || mw_csrf_token_ok(rq); }

/* The home page from templates/home.html (in the layout of templates/layout.html). Its
   view is JSON built in memory: who is logged in (null: nobody), a new CSRF token for
   its forms, and an error to show (null: none). */
static void home_page(mw_req *rq, mw_res *rs, int status, const char *error) {
    mw_json *j = mw_json_new();
    mw_jv_doc *view = NULL;
    const char *text;
    size_t len;
    if (!j) {
        mw_error(rs, 500, "out of memory");
        return;
    }
    mw_json_object(j);
    mw_json_key_string(j, "user", mw_session_get(rq, "user"));
    mw_json_key_string(j, "csrf_token", mw_csrf_token(rq));
    mw_json_key_string(j, "error", error);
    if ((text = mw_json_text(j, &len)) != NULL) view = mw_jv_parse(text, len, NULL, NULL);
    mw_render(rs, status, "home", mw_jv_root(view));
    mw_jv_free(view);
    mw_json_free(j);
}

static void home(mw_req *rq, mw_res *rs) { home_page(rq, rs, 200, NULL); }

static void login(mw_req *rq, mw_res *rs) {
    const char *user = mw_value(rq, MW_FORM, "user"), *password = mw_value(rq, MW_FORM, "password");
    if (!form_token_ok(rq)) {
        mw_error(rs, 403, "CSRF token missing or incorrect: reload the page and try again");
        return;
    }
    if (!user || !password || strcmp(user, "demo") != 0 || !mw_secret_equal(password, "demo")) {
        home_page(rq, rs, 401, "Wrong user or password.");
        return;
    }
    mw_session_clear(rq); /* a new session at login: nothing from before it carries over */
    mw_session_set(rq, "user", user);
    mw_redirect(rs, 303, "/me");
}

static void me(mw_req *rq, mw_res *rs) {
    const char *user = mw_session_get(rq, "user");
    mw_json *j;
    if (!user) {
        mw_error(rs, 401, "not logged in");
        return;
    }
    j = mw_json_begin(rs, 200);
    mw_json_object(j);
    mw_json_key_string(j, "user", user);
    mw_json_end(j);
}

static void logout(mw_req *rq, mw_res *rs) {
    if (!form_token_ok(rq)) {
        mw_error(rs, 403, "CSRF token missing or incorrect: reload the page and try again");
        return;
    }
    mw_session_clear(rq);
    mw_redirect(rs, 303, "/");
}

/* The time, and who asks: a page on another origin that fetches with credentials
   sends the session cookie along (CORS with credentials). */
static void api_time(mw_req *rq, mw_res *rs) {
    time_t now = time(NULL);
    struct tm tm;
    char iso[32];
    const char *user = mw_session_get(rq, "user");
    mw_json *j = mw_json_begin(rs, 200);
    gmtime_r(&now, &tm);
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    mw_json_object(j);
    mw_json_key_int(j, "unix", (int64_t)now);
    mw_json_key_string(j, "utc", iso);
    mw_json_key(j, "user");
    if (user) mw_json_string(j, user);
    else mw_json_null(j);
    mw_json_end(j);
}

int main(void) {
    mw_app *app = mw_app_new();
    const char *origin = getenv("CORS_ORIGIN"), *static_dir = getenv("STATIC_DIR");
    const char *templates_dir = getenv("TEMPLATES_DIR");
    mw_security_headers(app, NULL);
    mw_sessions(app, NULL); /* the key from MW_SECRET_KEY; CSRF's Origin check comes with it */
    if (origin && origin[0]) {
        mw_cors_opts cors;
        memset(&cors, 0, sizeof cors);
        cors.origins = origin;
        cors.credentials = 1;
        cors.headers = "Content-Type, X-Requested-With";
        mw_cors(app, "/api", &cors);
    }
    mw_get(app, "/", home);
    mw_post(app, "/login", login);
    mw_get(app, "/me", me);
    mw_post(app, "/logout", logout);
    mw_get(app, "/api/time", api_time);
    /* a folder that cannot be opened is logged, and the server does not start */
    mw_static(app, "/static", static_dir && static_dir[0] ? static_dir : "examples/site/static", NULL);
    /* pages from templates, compiled now: a syntax error is logged and the server does
       not start; with MW_DEBUG=1 an edited template shows on the next request */
    mw_templates(app, templates_dir && templates_dir[0] ? templates_dir : "examples/site/templates");
    return mw_run(app);
}
