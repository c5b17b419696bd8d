/* site.c - a small site: a login form, a session, CSRF protection, security headers,
   an API another origin may call (CORS), pages from templates, and static files.
   Run:   make run APP=site (from the repository's root), open http://127.0.0.1:8080/, log in as demo / demo
     or:  MW_SECRET_KEY=$(head -c 32 /dev/urandom | base64) CORS_ORIGIN=http://localhost:5173 build/site
   Try:   curl -i -d 'user=demo&password=demo' localhost:8080/login   (303 to /me, with a session cookie)
          curl localhost:8080/me   (401: no session)    curl localhost:8080/api/time */
#define MICROWEB_IMPLEMENTATION
#include "microweb.h" /* and with it the C library: getenv, strcmp, time ... */

/* A browser that loaded a form of ours holds a session with a CSRF secret, and must send the form's
   token back. A client without one (curl, a script) has no session a forged request could ride on, and a
   browser's cross-site request is refused by the Origin check sessions turn on. Else: 403, and 0. */
static int form_token_ok(mw_req *rq, mw_res *rs) {
    if (!mw_session_get(rq, "_csrf") || mw_csrf_token_ok(rq)) return 1;
    mw_error(rs, 403, "CSRF token missing or incorrect: reload the page and try again");
    return 0;
}

/* GET / -> the home page, templates/home.html in the layout of layout.html. Its view: who
   is logged in (null: nobody), a new CSRF token for its forms, an error (null: none). */
static void home_page(mw_req *rq, mw_res *rs, int status, const char *error) {
    mw_json *view = mw_json_new();
    mw_json_object(view);
    mw_json_key_string(view, "user", mw_session_get(rq, "user"));
    mw_json_key_string(view, "csrf_token", mw_csrf_token(rq));
    mw_json_key_string(view, "error", error);
    mw_render_json(rs, status, "home", view); /* renders the page with the view, then frees it */
}
static void home(mw_req *rq, mw_res *rs) { home_page(rq, rs, 200, NULL); }

/* POST /login user=demo&password=demo -> the session, and 303 to /me; else 401 and the form */
static void login(mw_req *rq, mw_res *rs) {
    const char *user = mw_value(rq, MW_FORM, "user"), *password = mw_value(rq, MW_FORM, "password");
    if (!form_token_ok(rq, rs)) return;
    if (!user || !password || strcmp(user, "demo") != 0 || !mw_secret_equal(password, "demo")) {
        home_page(rq, rs, 401, "Wrong user or password.");
        return;
    }
    mw_session_clear(rq); /* a new session at login: nothing from before it carries over */
    mw_session_set(rq, "user", user);
    mw_redirect(rs, 303, "/me");
}

/* GET /me -> {"user":"demo"}, or 401 without a session */
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

/* POST /logout -> the session ends, 303 to / */
static void logout(mw_req *rq, mw_res *rs) {
    if (!form_token_ok(rq, rs)) return;
    mw_session_clear(rq);
    mw_redirect(rs, 303, "/");
}

/* GET /api/time -> the time, and who asks: a page elsewhere that fetches with credentials sends the cookie */
static void api_time(mw_req *rq, mw_res *rs) {
    time_t now = time(NULL);
    struct tm tm;
    char iso[32];
    mw_json *j = mw_json_begin(rs, 200);
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    mw_json_object(j);
    mw_json_key_int(j, "unix", (int64_t)now);
    mw_json_key_string(j, "utc", iso);
    mw_json_key_string(j, "user", mw_session_get(rq, "user")); /* NULL is written as null */
    mw_json_end(j);
}

int main(void) {
    mw_app *app = mw_app_new();
    const char *origin = getenv("CORS_ORIGIN"), *files = getenv("STATIC_DIR"), *pages = getenv("TEMPLATES_DIR");
    mw_security_headers(app, NULL);
    mw_sessions(app, NULL);    /* the key from MW_SECRET_KEY; CSRF's Origin check comes with it */
    if (origin && origin[0]) { /* pages from CORS_ORIGIN (comma-separated) may call /api, with cookies */
        mw_cors_opts cors = {.origins = origin, .headers = "Content-Type, X-Requested-With", .credentials = 1};
        mw_cors(app, "/api", &cors);
    }
    mw_get(app, "/", home);
    mw_post(app, "/login", login);
    mw_get(app, "/me", me);
    mw_post(app, "/logout", logout);
    mw_get(app, "/api/time", api_time);
    /* GET /static/x: the file x of STATIC_DIR (style.css and its .gz, app.js, logo.png) */
    mw_static(app, "/static", files && files[0] ? files : "examples/site/static", NULL);
    /* the pages, every .html of TEMPLATES_DIR, compiled now; with MW_DEBUG=1 an edit shows at once.
       A folder that cannot be read, or a template with a syntax error, is logged: no start */
    mw_templates(app, pages && pages[0] ? pages : "examples/site/templates");
    return mw_run(app);
}
