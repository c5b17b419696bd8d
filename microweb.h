/* microweb.h - a single-file HTTP/1.1 web framework for C.   MIT licence (see LICENSE).

   A threaded HTTP/1.1 server, a router, a JSON writer and reader, streams and
   Server-Sent Events, static files, WebSocket, an in-process test client and optional
   PostgreSQL hooks, in one header built on libc and pthreads only.

   CONTENTS
       QUICK START                   ROUTES                    REQUEST
       RESPONSE                      DECLARED INPUTS AND OPENAPI
       THE /docs PAGE                HOOKS, CORS, SESSIONS AND CSRF
       BODIES BEYOND A BUFFER        STATIC FILES              TEMPLATES
       WEBSOCKET
       LOGGING AND THE ACCESS LOG    TRACE MODE                SERVING
       DEPLOYING                     BEHIND A PROXY            POSTGRESQL
       TESTING WITHOUT A SOCKET      LIMITS                    HTTP RULES
       ERRORS                        DEBUG MODE
       INSIDE THE HEADER (a map of the implementation, for readers and contributors)
       VERSIONS

   ============================================================================
   QUICK START
   ============================================================================

       #define MICROWEB_IMPLEMENTATION      // in exactly one .c file
       #include "microweb.h"                // before any other #include in that file

       static void hello(mw_req *rq, mw_res *rs) { (void)rq; mw_text(rs, 200, "Hello, World!"); }

       static void user(mw_req *rq, mw_res *rs) {
           mw_json *j = mw_json_begin(rs, 200);
           mw_json_object(j);
           mw_json_key_string(j, "id", mw_param(rq, "id"));
           mw_json_end(j);
       }

       int main(void) {
           mw_app *app = mw_app_new();
           mw_get(app, "/", hello);
           mw_get(app, "/users/:id", user);
           return mw_run(app);   // serves until SIGINT/SIGTERM, then frees app and returns 0
       }

   Build:   cc -O2 -pthread -I. app.c -o app
   or, with the header installed (make install; PREFIX=/usr/local by default):
            cc -O2 app.c -o app $(pkg-config --cflags --libs microweb)
   (microweb-pg for the PostgreSQL hooks: it adds -DMICROWEB_WITH_PG and libpq's flags.)
   Other .c files include "microweb.h" without the #define and get declarations only.
   A program where no file has the #define fails to link (gcc, clang) with
       undefined reference to `mw_define_MICROWEB_IMPLEMENTATION_in_exactly_one_c_file'
   as its first error: the name says what to do.
   The implementation file defines _GNU_SOURCE; include microweb.h first there so
   the system headers see it. (Under a strict -std=c99 or -std=c11 with a system
   header first, POSIX is hidden and the build stops saying so; -D_POSIX_C_SOURCE=200809L
   or -std=gnu11 lifts that.)
   Many programs, one implementation: a project that builds several programs from files
   that each say #define MICROWEB_IMPLEMENTATION (microweb's own examples and tests) can
   compile the implementation once and link it to each:
       cc -O2 -pthread -x c -DMICROWEB_IMPLEMENTATION -c microweb.h -o microweb.o
       cc -O2 -pthread -I. -DMICROWEB_IMPLEMENTATION_ONCE app.c microweb.o -o app
   MICROWEB_IMPLEMENTATION_ONCE says the implementation is compiled already; the file
   still gets the system headers the #define brings. Settings belong to microweb.o's
   compile: give MICROWEB_WITH_PG, MW_USE_POLL and the MW_... defaults there as -D
   (MICROWEB_WITH_PG to each program too, for its declarations); an allocator
   (MW_MALLOC) in a program linked this way stops its build with an error, as it would
   never be used.

   ============================================================================
   ROUTES
   ============================================================================
   mw_get / mw_post / mw_put / mw_patch / mw_delete / mw_any (every method), or
   mw_route(app, "HEAD" | "OPTIONS" | ... | "*", pattern, handler). A request with an
   extension method (PROPFIND, ...) reaches mw_any routes, where mw_method(rq) tells it.
   Patterns are paths split at '/'; each segment is one of
       users             static text, matched exactly
       :id  or {id}      a named parameter: one non-empty segment ("/users/:id")
       {id:int}          a parameter that only matches a decimal int64 ("/users/{id:int}");
                         another value does not match this route, so it falls through
                         to the next route in priority order, or to 404
       {x:number}        likewise, a JSON number ("-2.5e3"); {x:bool}: true/false, 1/0,
                         yes/no, on/off in any case; {x:str} is {x}
       *path             a wildcard, last segment only: the rest of the path, which may
                         be empty or hold more slashes ("/files/" then "*path")
   '<' and '>' are refused, so Flask's "<int:id>" is not taken for static text: the
   error line names microweb's spelling ("... microweb writes {id:int}").
   A request is matched static segment first, then {id:int}, {x:number}, {x:bool}, then
   parameter, then wildcard,
   whatever the order of registration. A path with a "." or ".." segment gives 400.
   Parameter and wildcard values are percent-decoded, and each is then a relative
   path that stays under a directory it is joined to. After decoding, a value
       never starts with '/' and has no empty segment ("a//b"); a wildcard value
           may end in one '/' ("dir/"), and may be "" (which names the directory)
       has no "." or ".." segment (also none spelled %2e%2e)
       holds no backslash and no NUL (raw or encoded)
       holds no '/' that was sent as %2F (so a parameter never holds a '/')
   A request whose value breaks one of these, or has a bad %-escape, gets 400 with the
   rule in the detail, and no handler runs. So openat(dirfd, value, ...),
   open(dir + "/" + value) and realpath() of that join name a file under dir, unless
   a symbolic link inside dir points elsewhere. A malformed or duplicate pattern makes
   the call return MW_EINVAL / MW_EEXIST, prints one line on stderr, and mw_run
   then refuses to start.
   Automatic answers: 404 for an unknown path; 405 with Allow when the path
   exists for other methods; HEAD runs the GET handler and sends no body;
   OPTIONS answers 200 with Allow (unless you route OPTIONS yourself);
   "OPTIONS *" answers with every method.

   ============================================================================
   REQUEST  (valid only during the handler call)
   ============================================================================
   const char *mw_method(rq)          "GET", "POST", ...
   const char *mw_path(rq)            "/users/42" (raw, not decoded)
   const char *mw_query(rq)           raw query string without '?', "" when none
   const char *mw_header(rq, name)    case-insensitive; NULL when absent. With an absolute-
                                      form target ("GET http://h:8080/p") "Host" gives
                                      its authority "h:8080", whatever the field said
   int mw_header_next(rq, &cursor, &name, &value)   1 per header field, in the order
                                      received (duplicates included), while cursor (start
                                      at 0) runs; 0 at the end (MW_ENOMEM: out of memory).
                                      name is spelled as the client sent it ("x-Trace");
                                      value is what mw_header gives for that field
   const char *mw_target(rq)          the request-target as received: "/a%20b?q=1" (not
                                      decoded; absolute-form "http://h/p" stays whole)
   const char *mw_http_version(rq)    "HTTP/1.1" (also for a later 1.x) or "HTTP/1.0"
   const char *mw_client_addr(rq)     the peer's address: "127.0.0.1", "::1" (no brackets);
   int         mw_client_port(rq)     and its port. The test client's requests come from
                                      "127.0.0.1" port 0. Header names, the target and
                                      the address are copied into the request's memory
                                      when asked for: a request that does not ask pays nothing
                                      (and mw_target and mw_client_addr give NULL when that
                                      memory runs out). Behind a trusted proxy: the client
                                      it forwarded for
   const char *mw_scheme(rq)          "http", or "https" when a trusted proxy says so
   const char *mw_host(rq)            the Host field ("" without one), or the host a
                                      trusted proxy forwarded (see BEHIND A PROXY)
   const char *mw_param(rq, name)     decoded path parameter; NULL when absent
   mw_str      mw_body(rq)            bytes + length (not NUL-terminated)
   void       *mw_userdata(rq)        what mw_set_userdata(app, p) stored
   int         mw_param_int(rq, name, &out)   the parameter as an int64: 0, or MW_EINVAL
                                      when absent, not decimal digits, or out of range
   void       *mw_req_alloc(rq, n)    memory that lives until the request ends (no free)

   Query strings and forms (the same calls for both; src is MW_QUERY for the query
   string, MW_FORM for an application/x-www-form-urlencoded body; other bodies have
   no form values). Names and values are %- and '+'-decoded; a malformed escape
   ("%zz", a trailing "%") and "%00" are kept as written, never an error:
   const char *mw_value(rq, src, name)            first value, or NULL
   size_t mw_values(rq, src, name, out, max)      every value (count returned; up to max stored)
   int mw_next_value(rq, src, &cursor, &name, &value)   1 per pair while cursor (start at 0) runs
   Cookies: const char *mw_cookie(rq, name)       value of the named cookie, or NULL

   JSON bodies: const mw_jv *mw_req_json(rq) parses the body (strict RFC 8259,
   UTF-8 validated, nesting up to MW_JSON_MAX_DEPTH). On malformed JSON it returns
   NULL and, whatever the handler then writes, the answer is 400 with
   {"status":400,...,"detail":"invalid JSON at byte 12: ...","offset":12}.
   Reading values (any call accepts NULL and returns the default):
       mw_jv_get(obj, "key")   mw_jv_at(arr, 2)   mw_jv_path(v, "user.address.city")
       mw_jv_path(v, "items[2].name")             mw_jv_kind(v) -> MW_JV_NULL .. MW_JV_OBJECT
       mw_jv_str(v, "def")  mw_jv_int(v, 0)  mw_jv_num(v, 0.0)  mw_jv_bool(v, 0)  mw_jv_len(v)
       mw_jv_string(v)      a string's bytes and length (mw_str); {NULL, 0} for another kind
       for (m = mw_jv_first(v); m; m = mw_jv_next(m)) ... mw_jv_key(m) ...
   With duplicate keys the last one is found; keys are compared whole, by length.
   A string may hold a NUL byte (\u0000), which a C string cannot: mw_jv_str then
   gives the default, never the bytes before the NUL ("admin\u0000x" does not read as
   "admin"); mw_jv_string gives all of it. mw_jv_key gives a key up to a NUL in it.
   Numbers keep their text: mw_jv_int gives the default for a fraction, an exponent
   or a value beyond int64; a number beyond a double reads as infinity (and
   mw_json_value refuses to write it). Numbers are read and written with a '.'
   whatever LC_NUMERIC says (the conversion switches the calling thread to the C
   locale, then back).
   Memory: a parsed body is one block, a copy of the body then 20 bytes per value,
   at most 11 bytes per body byte: measured 11.0 for [0,0,0,...] (the worst case),
   2.6 for an array of records (4.0 while parsing: the block grows by doubling). It
   lasts until the request ends; then a worker keeps a block of up to 256 KiB for
   the next request and frees a larger one. A document needing more than 4 GiB, or a
   key longer than 64 MiB, is refused (400). Outside a request: mw_jv_parse(text,
   len, &offset, &problem) / mw_jv_root / mw_jv_free (the document then keeps only
   the bytes it uses).
   mw_json_value(j, v) writes a parsed value with the JSON writer.

   multipart/form-data: mw_part p; memset(&p, 0, sizeof p);
       while (mw_multipart_next(rq, &p) > 0) { p.name, p.filename, p.safe_filename,
                                                p.content_type, p.data, p.len }
   The parts are found in place (no copy of the data). filename is as the client sent
   it; safe_filename is its last path component with ':' and control bytes replaced,
   never "", "." or "..", so it can be joined to a directory. A malformed body makes
   mw_multipart_next return MW_EINVAL and the answer 400 with the reason; more parts
   than MW_MAX_MULTIPART_PARTS is 413; another Content-Type is 415.

   ============================================================================
   RESPONSE
   ============================================================================
   int mw_status(rs, code)                     200-599, default 200 (another code: the
                                               answer is 500, see "handler mistakes")
   int mw_set_header(rs, name, value)          name must be a token; a CR, LF, NUL or other
                                               control byte in name or value is refused
                                               (MW_EINVAL) and nothing is sent; spaces and
                                               tabs around value are dropped. Content-Length
                                               and Transfer-Encoding are framed by microweb
                                               and refused here; Content-Type replaces the
                                               default text/plain; "Connection: close" closes
                                               the connection after the response.
   int mw_write(rs, data, len)                 append to the body
   int mw_printf(rs, fmt, ...)                 append formatted text to the body
   int mw_send(rs, status, content_type, data, len)   replace the body
   int mw_text(rs, status, text)               text/plain; charset=utf-8
   int mw_send_json(rs, status, json_text)     application/json, text sent as given
   int mw_error(rs, status, detail)            {"status":..,"error":"<reason>","detail":".."}
   int mw_set_cookie(rs, name, value, opts)    Set-Cookie with Path=/, HttpOnly and SameSite=Lax
                                               unless opts (a mw_cookie_opts, NULL for the
                                               defaults) says otherwise: max_age/has_max_age,
                                               secure, allow_js (no HttpOnly), same_site,
                                               path, domain. Refused with MW_EINVAL: a name that
                                               is not a token; a value with a byte outside
                                               RFC 6265's cookie-octet (controls, space, '"',
                                               ',', ';', '\\'); a path with a control byte or
                                               ';'; a domain that is not a host name (labels
                                               of letters, digits and '-' between dots, one
                                               leading dot allowed); a "__Secure-" name
                                               without secure; a "__Host-" name unless secure,
                                               path "/" and no domain (RFC 6265bis §4.1.3,
                                               any case). SameSite=None needs secure.
   Every response carries Date and Content-Length (except 204 and 304, which have
   no body, and a body sent as it goes: see BODIES BEYOND A BUFFER). Automatic error
   answers use the mw_error body shape.

   JSON writer (streams into the response body, application/json):
       mw_json *j = mw_json_begin(rs, status);
       mw_json_object(j) / mw_json_array(j) / mw_json_close(j)
       mw_json_key(j, k)
       mw_json_string(j, s) (NULL writes null) / mw_json_stringn(j, s, n)
       mw_json_int(j, int64) / mw_json_double(j, d) / mw_json_bool(j, b) / mw_json_null(j)
       mw_json_key_string / _int / _double / _bool (j, k, v)
       mw_json_end(j)       closes every container still open and finishes the body
   The same calls build JSON in memory, for what is not a response (a WebSocket
   message, a line of a file):
       mw_json *j = mw_json_new();                 NULL when out of memory
       const char *text = mw_json_text(j, &len);   mw_json_end, then the text (NUL-
                                                   terminated, len bytes, valid until
                                                   mw_json_free); NULL after misuse
       mw_json_free(j);
   Strings are escaped per RFC 8259; invalid UTF-8 bytes become U+FFFD. Doubles are
   written with 15, 16 or 17 significant digits, the fewest that read back as the
   same value (0.1 is written 0.1). Misuse (a value
   where a key is due, a key where a value is due, a close with nothing open, more
   than one top-level value, NaN or infinity, nesting beyond MW_JSON_MAX_DEPTH) makes
   the call return MW_EJSON and the response becomes a 500 error: invalid JSON
   never reaches the wire. A handler that returns without mw_json_end also gets 500.
   The first misuse is kept with the call it happened in, and logged (and, in debug
   mode, answered) as "mw_json_key_string: not inside an object".

   Handler mistakes never reach the wire as a 200: an invalid status (mw_status,
   mw_text, mw_error, mw_json_begin ... with a code outside 200-599), JSON writer
   misuse, mw_write or mw_printf after mw_json_begin, and a handler that returns
   without calling anything on the response answer 500 ("the response could not be
   produced"). These, a second whole response in one handler (mw_send, mw_text,
   mw_send_json, mw_error, mw_json_begin after another: the last one is sent), and a
   refused mw_set_header or mw_set_cookie are logged, one line naming the route,
   once per route and kind of mistake (a hot path cannot flood the log):
       microweb: route GET /users/:id: invalid status code 700 (200-599); answered 500
   In debug mode the answer itself says it (see DEBUG MODE).


   ============================================================================
   DECLARED INPUTS AND OPENAPI
   ============================================================================
   A route can declare what it takes and gives. The one declaration checks requests
   before the handler runs and describes the route in the OpenAPI document:
       static const mw_op add = {
           .summary = "Add a note", .tags = "notes",
           .body = "{title: string(1..200), body: string, tags?: [string]}",
           .responses = {{201, "The new note", "Note"}, {404, "No such note", NULL}},
       };
       mw_schema(app, "Note", "{id: int, title: string, body: string, tags?: [string]}");
       mw_route_op(app, "POST", "/notes", add_note, &add);
       mw_openapi(app, "Notes", "1.0.0");          // GET /openapi.json
   mw_op: summary (one line), description (Markdown), tags ("notes, admin"), query (a
   field list), body (a schema: the request's JSON body, then required), responses
   (up to MW_OP_MAX_RESPONSES of status, description or NULL for the reason phrase,
   schema or NULL for no body; documentation only), data (as mw_route_with's).
   The same in FastAPI, for comparison:
       class NoteIn(BaseModel):
           title: str = Field(min_length=1, max_length=200)
           body: str
           tags: list[str] | None = None
           model_config = ConfigDict(extra="forbid")
       @app.post("/notes", status_code=201, response_model=Note, tags=["notes"],
                 summary="Add a note")
       def add_note(note: NoteIn): ...

   The schema language (a string, compiled once when the route is registered):
       type   := scalar [range] | enum | '{' fields '}' | '[' type ']' [range] | Name
                 | type '|' 'null'
       scalar := string | int | number | bool | any
       range  := '(' [min] '..' [max] ')'   string: length in characters (code points);
                                            int, number: the value; array: items
       enum   := "a" | "b" | "c"            JSON string literals
       fields := field {',' field} [',' '...']   "..." last: unknown fields allowed;
                                            without it an unknown field is an error
       field  := key ['?'] ':' type ['=' default]   '?' or a default: optional; key is
                                            a name, or a JSON string for any other
       Name   := a schema given to mw_schema(app, name, schema) before; it becomes a
                 component of the OpenAPI document ($ref)
   Example query: "limit: int(1..100) = 20, q?: string(..50), sort: \"asc\" | \"desc\" = \"asc\""
   A default is JSON and must fit its type. A schema nests at most 27 types
   ((MW_JSON_MAX_DEPTH - 10) / 2), so that the OpenAPI document can hold it.
   A malformed declaration makes mw_route_op (or mw_schema) return MW_EINVAL and print
   one line, then mw_run refuses to start:
       microweb: POST /notes: body schema, column 17: expected ':' after field name

   Checking, after the before hooks (an auth hook answers first) and before the handler:
   - query parameters are text: int, number and bool are converted (bool: true/false,
     1/0, yes/no, on/off, as FastAPI); the last of a repeated name counts; undeclared
     ones are left alone. Path parameters are checked by the router ({id:int} ...).
   - the body is JSON, taken as it is (a JSON string "5" is not an int; 5.0 is, as
     pydantic takes it). An empty body is a missing body (422); a Content-Type other
     than application/json or application/...+json is 415 (FastAPI answers 422 there;
     a body without Content-Type is read as JSON, as FastAPI does); malformed JSON is
     400 with the byte offset, as from mw_req_json.
   - every problem is listed (up to MW_MAX_VALIDATION_ERRORS), each with its place,
     in FastAPI's shape with pydantic's type names and messages; the after hooks see it:
       422 {"status":422,"error":"Unprocessable Content","detail":[
             {"loc":["body","title"],"msg":"Field required","type":"missing"},
             {"loc":["body","tags",2],"msg":"Input should be a valid string","type":"string_type"},
             {"loc":["query","limit"],"msg":"Input should be less than or equal to 100",
              "type":"less_than_equal"}]}
     types: missing, extra_forbidden, string_type, string_too_short, string_too_long,
     string_unicode, int_type, int_parsing, int_from_float, int_parsing_size, float_type,
     float_parsing, bool_type, bool_parsing, greater_than_equal, less_than_equal,
     literal_error, list_type, too_short, too_long, model_attributes_type.
   The handler then reads values that need no further check:
       long long mw_arg_int(rq, name)     double mw_arg_num(rq, name)
       int mw_arg_bool(rq, name)          mw_str mw_arg_str(rq, name)  (bytes + length)
       int mw_arg_present(rq, name)       1 when the client sent it
   for declared query parameters (their default when absent) and path parameters of
   any route; 0, or {NULL, 0}, for other names. The body: mw_req_json(rq), as always;
   an optional field's default is documented, not inserted (mw_jv_int(v, 20) ...).
   A route without a declaration costs nothing more than before.

   mw_openapi(app, title, version) serves GET /openapi.json: OpenAPI 3.1, made from the
   route table the first time it is asked for, every route once per method (an mw_any
   route stands for the methods no other route of its path takes), paths in {name}
   form, schemas as JSON Schema 2020-12, and the answers microweb gives by itself (400;
   404 where the path has parameters; 415 and 422 where inputs are declared).

   ============================================================================
   THE /docs PAGE
   ============================================================================
   mw_docs(app) serves GET /docs: a page that reads GET /openapi.json, the app's
   OpenAPI 3.1 document (mw_openapi's, or one the app serves itself), and shows the
   API's title, version and description, then each operation under its tag: method,
   path, summary and description; its parameters, request body and responses per
   status with their JSON Schemas ($ref into the document followed; nested objects and
   arrays as a tree; types, lengths, ranges, enumerations, defaults); and a form to try
   it: inputs for the path, query and header parameters, the JSON body prefilled with
   an example built from its schema, and the answer's status, headers and body (JSON
   indented; a 422's detail list as where -> what), with the request as a curl command.
   Operations open and close, a filter finds them, /docs#op-<operationId> opens one;
   the colours follow the system's light or dark scheme. The page (HTML, style and
   script, about 35 KB) is written in this header and joined once by mw_docs; it asks
   for nothing but /openapi.json and the requests it is told to try (no script, font or
   image from anywhere: it works offline), and is answered with a Content-Security-
   Policy that allows only its own inline style and script (by their SHA-256), requests
   to its own origin and data: images. Text from the document is shown as text, never
   parsed as HTML. A second mw_docs, or the app's own GET /docs, is a duplicate route
   (MW_EEXIST). A whole csp given to mw_security_headers holds on the page as well (a
   browser enforces every policy it gets): it must allow inline style and script and
   connect-src 'self'.

   ============================================================================
   HOOKS, CORS, SESSIONS AND CSRF
   ============================================================================
   Hooks run around handlers, for every path or the paths under a prefix ("/api"
   covers "/api" and "/api/...", never "/apiary"), in the order they were registered.
   Prefixes (of hooks, CORS and CSRF exemptions) are matched against the percent-
   decoded path, as handlers see their parameters: "/users/%61dmin" is under
   "/users/admin".
       int mw_before(app, prefix, fn, arg)   fn(rq, rs, arg) returns MW_NEXT, or MW_DONE
                                             after answering: the handler is skipped
       int mw_after(app, prefix, fn, arg)    fn(rq, rs, arg) may add headers and cookies;
                                             mw_res_status(rs) tells the status
   Per-route data: mw_route_with(app, "GET", "/admin", handler, &role); then
   mw_route_data(rq) in the handler and the hooks (NULL for other routes), and
   mw_route_pattern(rq) the pattern that matched.
   What runs, in order:
       1. a request the parser refuses (400, 408, 413, 431, ...): its answer, then step 6
       2. routing; a CORS preflight (see below) is answered here, then step 6
       3. no route: 404, 405 (with Allow) or OPTIONS (200 with Allow), then step 6
       4. the CSRF check (once sessions are on), then the before hooks in order; the
          first that answers ends this step
       5. the handler; a malformed body it read, or a mistake, replaces its answer (400, 500)
       6. after hooks, on every answer (errors and refusals included), just before its
          head is sent; with mw_flush or a stream, when the head is sent
   A connection refused before any request was read (503 at MW_MAX_CONNECTIONS, 429 at
   MW_MAX_CONNECTIONS_PER_IP) gets no hooks. In an after hook the status, the body and
   the connection's fate are fixed (mw_status, mw_write, mw_send, mw_flush, ... return
   MW_ESTATE, Connection: close is refused, a mistake is logged and changes nothing);
   for a refusal whose head was not read, mw_path is "" and there are no headers.

   CORS, for a frontend served from another origin:
       mw_cors_opts c = {0};
       c.origins = "http://localhost:5173";   // a list ("a, b"), or "*" without credentials
       c.credentials = 1;                     // cookies go with the page's fetch()
       c.headers = "Content-Type, X-Token";   // beyond the safelisted ones; "*": any
       c.expose = "X-Total-Count";            // what the page may read
       mw_cors(app, "/api", &c);              // NULL prefix: every path; under several
                                              // prefixes, the longest one's settings
   An allowed origin gets Access-Control-Allow-Origin (and -Credentials, -Expose-Headers)
   on every answer, errors included, so the page can read a 404's or a 400's JSON; a
   list adds Vary: Origin. A preflight (OPTIONS with Origin and Access-Control-Request-
   Method) for a path that exists is answered 204 before any hook (it carries no
   credentials), with the path's routed methods (or c.methods), the headers and
   Access-Control-Max-Age (c.max_age; 0: 600 s); from an origin not listed it gets 403.
   An origin is written as browsers send it, scheme://host[:port] with no '/'; origins
   compare without regard to case.

   Security headers on every answer: mw_security_headers(app, NULL) adds
   X-Content-Type-Options: nosniff, Referrer-Policy: strict-origin-when-cross-origin,
   X-Frame-Options: DENY and Content-Security-Policy: frame-ancestors 'none'; the
   mw_security_opts fields change each (a whole csp replaces the frame-ancestors one)
   and hsts_max_age adds Strict-Transport-Security (send it only on an HTTPS site).

   Sessions live in a signed cookie (as Flask's): names and values, the time they were
   written, and an HMAC-SHA256 over both, base64url. Nothing is stored on the server,
   so every instance of an app with the same key reads them.
       mw_sessions(app, NULL);                      // after the key is known (below)
       mw_session_get(rq, "user")                   // NULL when absent
       mw_session_set(rq, "user", "ada")            // NULL value removes the name
       mw_session_clear(rq)                         // logout: the cookie is deleted
   The key comes from MW_SECRET_KEY in the environment or mw_secret_key(app, key), at
   least 16 bytes (head -c 32 /dev/urandom | base64 makes one). Without one, mw_sessions
   prints one line and mw_run refuses to start: a random key would log everybody out at
   each restart. To rotate, sign with a new key and keep the old one verifying:
   mw_secret_key_fallback(app, old), or MW_SECRET_KEY_FALLBACKS (comma-separated). A
   cookie that was changed, signed with an unknown key, or is older than max_age
   (mw_session_opts; 14 days since it was last written) is an empty session, never an
   error. The cookie is HttpOnly, SameSite=Lax, Path=/ (secure = 1 adds Secure) and is
   written with the answer of a request that changed the session, when its head is
   sent: set it in a before hook or the handler, before mw_flush or a stream (later,
   mw_session_set returns MW_ESTATE). It returns MW_ETOOBIG, and logs why once, when
   the cookie would pass MW_MAX_SESSION_BYTES; MW_ESTATE without mw_sessions.

   CSRF: once sessions are on (or after mw_csrf_protect(app, 1)), a request with an
   unsafe method (POST, PUT, PATCH, DELETE, ...) sent by a browser from another origin
   gets 403 before any other before hook, as Go's http.CrossOriginProtection decides:
       Sec-Fetch-Site  same-origin or none: passes; anything else: refused
       no Sec-Fetch-Site: Origin absent passes (curl, scripts), Origin equal to
                       scheme://Host passes, any other Origin is refused (Host is
                       mw_host, and the scheme is compared when a trusted proxy
                       said it: see BEHIND A PROXY)
   A refused request still passes when its Origin is trusted (mw_csrf_trust(app,
   "https://admin.example.com"), or listed by the path's mw_cors origins) or its path
   is exempt (mw_csrf_exempt(app, "/webhooks")). mw_csrf_protect(app, 0) turns it off.
   For HTML forms, a token as well: mw_csrf_token(rq) gives a new masked token for a
   hidden field named csrf_token (urlencoded or multipart forms), or an X-CSRF-Token
   header, on each call;
   mw_csrf_token_ok(rq) checks one against the session; registering
   mw_before(app, "/account", mw_csrf_require_token, NULL) refuses (403) unsafe
   requests under /account without a valid one.

   Helpers a site needs:
   int mw_redirect(rs, status, location)   301/302/303/307/308 with Location; the location
                                           is a path ("/me"; not "//host"), a relative
                                           reference or an http(s) URL, with no control
                                           characters, spaces or '\'; else 500, logged
   int mw_html_escape(rs, text)            writes text with & < > " ' as entities
   int mw_html_printf(rs, fmt, ...)        mw_printf whose %s and %c arguments are escaped
                                           (widths count the characters before escaping;
                                           %n and wide strings are refused)
   int mw_basic_auth(rq, &user, &password) 1 with the Authorization: Basic credentials
   const char *mw_bearer_token(rq)         the Authorization: Bearer token, or NULL
   int mw_secret_equal(given, secret)      1 when equal; the time taken depends on the
                                           secret's length only

   ============================================================================
   BODIES BEYOND A BUFFER: sending as you go, files, pull and push streams, SSE
   ============================================================================
   A response is normally built whole and framed with Content-Length. Four other
   ways send a body whose size is large or not known yet; a body of unknown length
   is sent chunked to HTTP/1.1 clients, until the close to HTTP/1.0 clients
   (Connection: close), and not at all for HEAD (the head is the same as for GET).

   int mw_flush(rs)       in a handler: sends the head and what mw_write/mw_printf
                          wrote so far, now (waiting for the client up to
                          MW_WRITE_TIMEOUT_MS); the body goes on chunked, sent on
                          every 64 KiB written, and ends when the handler returns.
                          Status and headers are fixed by the first flush. It holds
                          the worker while the client is slow: for long or large
                          bodies use a pull or push stream. MW_EIO: the client is gone.
   int mw_send_file(rs, status, content_type, fd, offset, length)
                          length bytes of the open file fd from offset, sent by the
                          kernel (sendfile) as the client takes them; microweb closes
                          fd when the response ends (if the call fails, fd is still
                          yours). Content-Length is length.
   int mw_send_pull(rs, status, content_type, fn, arg, release)
                          a body made on demand: long fn(arg, buf, cap) is called,
                          on a worker, whenever the socket can take more; it writes up
                          to cap bytes into buf and returns how many, 0 at the end, or
                          a negative value to cut the response (the client sees it
                          incomplete). release(arg) (may be NULL) is called once when
                          the response ends, however it ends. Memory stays at one
                          buffer (16 KiB, doubling up to 256 KiB while the client
                          keeps up) whatever the size, and a slow client slows the
                          producer: examples/stream.c exports a CSV this way.
   mw_stream *mw_stream_open(rs, status, content_type)
                          a push stream: the handler returns at once and the body is
                          written later, from any thread, through the handle:
       int mw_stream_write(s, data, len)          never waits. 0 when sent or queued;
                                                  MW_EAGAIN when earlier bytes still wait
                                                  and this one would take the stream's
                                                  buffer past MW_STREAM_BUFFER_BYTES
                                                  (nothing of it is queued: the client
                                                  reads slower than you write; drop it,
                                                  or wait and retry; a write into an
                                                  empty buffer is always taken);
                                                  MW_ECLOSED when the stream is over
       int mw_stream_printf(s, fmt, ...)
       void mw_stream_on_close(s, fn, arg)        fn(s, arg) is called exactly once
                                                  when the stream is over: the end was
                                                  sent, the client went away, or the
                                                  server is stopping. It runs on a
                                                  worker (or in the handler, if another
                                                  whole response replaces the stream;
                                                  or in the thread of mw_test_request),
                                                  never inside an mw_stream_ call and
                                                  with no lock of microweb's held. Set
                                                  it in the handler. arg must live until
                                                  then; this is the place to forget s
       int mw_stream_every(s, ms, fn, arg)        fn(s, arg) every ms milliseconds (the
                                                  first ms from now) until the stream
                                                  ends: a clock, a progress bar, a feed.
                                                  It runs on the connection's worker
                                                  (so never beside on_close, nor after
                                                  it; in mw_test_request, in its thread);
                                                  a thread of microweb's, started by the
                                                  first timer, keeps the schedule, and
                                                  no thread waits per stream. A tick
                                                  that comes late is not repeated to
                                                  catch up. One timer a stream: MW_EINVAL
                                                  for a second one (or ms < 1, no fn);
                                                  MW_ECLOSED once the stream is ending
       void mw_stream_end(s)                      no more writes: the body ends after
                                                  what was written (the last chunk)
       void mw_stream_close(s)                    ends the body (if mw_stream_end was
                                                  not called) and gives the handle back:
                                                  call it exactly once for each stream,
                                                  typically in on_close; s is not to be
                                                  used after it
   A writer sends straight to the socket when nothing waits before it, so a thread
   pushing to many streams costs a send each and no thread switch. What the socket
   does not take waits in the stream's buffer and goes out when the client reads. A
   stream holds no worker while it waits, only its connection and a small record.
   Once its buffers are full (the kernel's, then the stream's), a client that takes
   nothing for MW_WRITE_TIMEOUT_MS is cut (on_close tells you); a client gone without
   a word is found by the next write (for an event stream, the heartbeat). On stop
   (SIGTERM), every stream ends cleanly (its last chunk, then the FIN); one whose
   client reads nothing is cut when the grace period is out. mw_status after
   mw_stream_open (or any body source) is refused: the body is framed for its status.

   Server-Sent Events (the HTML standard's text/event-stream) over a push stream:
   mw_stream *mw_sse_open(rs)        200, Content-Type text/event-stream, Cache-Control:
                                     no-cache; a comment line is sent after
                                     MW_SSE_HEARTBEAT_MS of silence so proxies keep the
                                     connection
   int mw_sse_send(s, event, id, data)    one event; event and id may be NULL; data is
                                     split into one "data:" line per line (CRLF, CR or LF
                                     break it, as the browser reads it); a CR or LF in
                                     event or id is refused (MW_EINVAL)
   int mw_sse_retry(s, ms)           tells the browser how long to wait before it reconnects
   int mw_sse_comment(s, text)       a comment line (no CR or LF in text)
   const char *mw_last_event_id(rq)  the Last-Event-ID a reconnecting browser sends, or NULL
   examples/stream.c is a whole app: GET /events?every_ms=N&count=K (mw_stream_every),
   GET /export?rows=N (mw_send_pull).

   ============================================================================
   STATIC FILES
   ============================================================================
   int mw_static(app, "/static", "public", opts)   serves the folder "public" under /static
   opts is NULL or a mw_static_opts: cache_control (NULL: "no-cache", so the browser asks
   each time and gets a 304 while the file is unchanged; "public, max-age=31536000" for
   files whose names change with their content; "": none), dotfiles = 1 serves names
   starting with '.', hard_links = 1 serves files with more than one hard link. A prefix
   matches whole segments ("/static" never "/staticx"); "/" mounts the folder at the
   top. Several mounts may be made; a route (mw_get ...) under a mount's prefix wins
   over its files (a route at exactly the prefix is refused, MW_EEXIST: the mount
   answers there with its redirect). The folder is opened once, by mw_static: a folder that does not
   exist makes it return MW_EINVAL, print one line, and mw_run refuse to start.
   int mw_static_type(app, "wasm", "application/wasm")   the Content-Type for an
   extension (no dot; any case), before the built-in table: html, htm, css, js and mjs
   (text/javascript, RFC 9239), json, map, txt, md, csv, xml, svg, png, jpg, jpeg, gif,
   webp, avif, ico, woff, woff2, ttf, otf, wasm, pdf, webmanifest, mp4, webm, mp3, ogg,
   wav, zip, gz;
   text types say charset=utf-8; any other file is application/octet-stream.
   What a request gets:
       GET and HEAD (HEAD: the same head, no body); another method 405 with Allow
       /static/dir      301 to /static/dir/ (the query kept), then its index.html;
                        a folder without one is 404: folders are never listed
       a file           200 with Content-Length, Last-Modified, a strong ETag (the
                        file's inode, size and modification time in ns), Cache-Control,
                        Vary, Accept-Ranges: bytes and X-Content-Type-Options: nosniff
       If-Match         not matching (strongly; "*" matches), or without it If-
                        Unmodified-Since older than the file: 412 (RFC 9110 §13.2.2)
       If-None-Match    (a list, "*", W/ tags compared weakly) matching: 304; without
                        it, If-Modified-Since (any of the three HTTP-date forms) not
                        older than the file: 304. A 304 carries ETag, Last-Modified,
                        Cache-Control and Vary. A modification time in the future is
                        taken as now. A Range, If-Range or date field sent twice counts
                        as absent; If-None-Match and If-Match may span several fields
       Range            (GET only, RFC 9110 §14.2) bytes=a-b, a- or -n: 206 with
                        Content-Range; past the end (or -0): 416, its Content-Range
                        an asterisk and the size; several ranges, another unit or a
                        malformed field: the whole file, 200. If-Range (a strong ETag,
                        or the Last-Modified date) that does not match: the whole file
       Accept-Encoding  allowing br or gzip, and a file app.js.br or app.js.gz beside
                        app.js: that file is sent instead (br first), with Content-
                        Encoding, app.js's Content-Type and its own ETag ("x-gzip"
                        counts as gzip). Every answer about a file says Vary: Accept-
                        Encoding. Nothing is compressed by microweb: make the siblings
                        at build time (gzip -k -9 -n app.js)
       missing, hidden or refused (below)   404; no permission 403; out of file
                        descriptors 503 with Retry-After
   Files are sent by the kernel (sendfile; pread and send elsewhere) as the client takes
   them: no worker waits for a slow client, and a download costs a descriptor and a
   small record whatever the size (over 4 GiB too). A client that reads slowly keeps its
   download as long as it takes some bytes within each MW_WRITE_TIMEOUT_MS (the
   kernel's send queue is measured, where it says: Linux, macOS). A file that shrinks
   while it is sent cuts the response (its Content-Length cannot be kept).
   What is guaranteed: no file outside the folder is ever sent. A name is refused with
   400 before any file is touched when it holds, after percent-decoding, a "." or ".."
   segment (%2e%2e and the like; %252e stays the literal "%2e"), a '/' sent as %2F, a
   backslash, a NUL, a leading '/' or an empty segment (see ROUTES). The rest is opened
   relative to the folder's descriptor:
   - on Linux 5.6 and later (built with headers that name SYS_openat2), by openat2 with
     RESOLVE_BENEATH and RESOLVE_NO_MAGICLINKS: a relative symbolic link is followed
     while it stays beneath the folder; one that leads out, any absolute one, and any
     through /proc are 404;
   - elsewhere (other systems, older kernels, a sandbox that refuses openat2, valgrind,
     or -DMW_USE_OPENAT2=0), one name at a time with O_NOFOLLOW: no symbolic link is
     followed at all, even one that stays inside (404).
   Only regular files are sent (a FIFO, device or socket is 404, and opening one never
   blocks). A file with several hard links is 404 by default: a hard link made inside
   the folder to a file elsewhere cannot be told from the file's own name (a folder
   built by hard links, as pnpm and an optimised Nix store make, needs hard_links = 1). Names whose
   segments start with '.' (.env, .git/) are 404 by default. Not covered: a file system
   mounted inside the folder is served as part of it, and the folder itself is the one
   dir named when mw_static ran (a symbolic link in dir is followed then, once).
   mw_serve raises the process's soft limit on open files to its hard limit, as Go's
   runtime does: each connection and each file being sent holds a descriptor.

   ============================================================================
   TEMPLATES  (Mustache, https://mustache.github.io/mustache.5.html)
   ============================================================================
   HTML pages from templates, escaped by default, with data from the JSON value tree:
       mw_templates(app, "templates");            // every templates/NAME.html as NAME
       mw_template(app, "row", "<li>{{name}}</li>");   // or one from a string
       static void users(mw_req *rq, mw_res *rs) {
           mw_render(rs, 200, "users", mw_req_json(rq));   // any const mw_jv *
       }
   int mw_template(app, name, text)   compiles text as the template name (a later
                                      one of the same name replaces it)
   int mw_templates(app, dir)         compiles every dir/NAME.html (not hidden ones, no
                                      subfolders) as the template NAME
   int mw_render(rs, status, name, view)   renders into the body, Content-Type
                                      text/html; charset=utf-8 (a whole response, as
                                      mw_send); view NULL renders with no data
   int mw_render_json(rs, status, name, view)   the same, with a view built by the
                                      JSON writer (view = mw_json_new(), then mw_json_*
                                      calls); frees view. A view that is NULL (out of
                                      memory) or broken (a writer error) answers 500
   Debug mode (mw_debug(app, 1) or MW_DEBUG=1, see DEBUG MODE) re-reads changed files.
   Templates are compiled once, before serving, into a list of nodes; rendering walks
   it and appends to the response body, allocating nothing else. A syntax error makes
   the call return MW_EINVAL and print one line, and mw_run refuses to start:
       microweb: template templates/page.html:12:5: a section that is not closed
   (also: a tag that is not closed, an end tag that does not close the section opened
   last or has none to close, a bad set-delimiter tag, a name with a space). A partial
   or parent tag naming no template is reported when serving starts (mw_run, mw_serve)
   and stops it; the in-process test client renders it empty, as the spec says.
   The language, all of the specification but lambdas (code in the data, which C
   has not; tests/mustache.c runs the spec's 163 other cases):
       {{name}}         the value, HTML-escaped: & < > " ' become &amp; &lt; &gt;
                        &quot; &#39; (safe in text and in quoted attribute values,
                        not inside <script>, <style> or an unquoted attribute)
       {{{name}}}  {{& name}}   the value as it is (trusted HTML only)
       {{a.b.c}}        dotted names; {{.}} the current value
       {{#name}}...{{/name}}   a section: once per item of a list, once with an
                        object (its names come first) or another true value, never
                        for false, null, "", [] or a missing name
       {{^name}}...{{/name}}   an inverted section: only when the value is false
       {{! comment }}  {{> partial}}  {{=<% %>=}} (new delimiters)
       {{< layout}}{{$title}}My page{{/title}}{{/layout}}   inheritance: the
                        template layout, where its {{$title}}default{{/title}} blocks
                        show what the child gives
   Names are looked up from the innermost section out to the view; a missing name
   renders empty. Values: strings as they are, numbers as written in the JSON (a
   fraction in its shortest form: 1.210 shows 1.21), true and false as words, null,
   objects and lists as nothing. A tag alone on its line takes its line with it, and
   a partial alone on its line is indented as the tag was (the spec's rules).
   The view comes from mw_req_json, mw_jv_parse of what mw_json_new built, or a
   PostgreSQL query written with mw_pg_write_rows into mw_json_new and parsed.
   In debug mode every render first checks the files' modification times (one stat
   per file): a changed file is read and compiled again; one that no longer compiles
   keeps its last good version and its error is logged. Debug mode also logs, once per
   tag, a name a render found nowhere (not for an inverted section, whose purpose that is):
       microweb: template templates/page.html:3:9: no value named "nmae" (debug mode) Renders then hold a lock, so
   leave debug mode off in production. Sections nest at most 64 deep in a template;
   partials and parents at most 64 deep, and all of these 256 deep, while rendering
   (deeper ones render nothing).
   A render that takes more than 10,000,000 steps (a node, an object member a name is
   looked for among, or 16 bytes written; a page of 100 rows takes about 1,300) stops
   and answers 500, logged: a partial that includes itself twice, or a client's JSON
   view built to make a page of gigabytes, would otherwise hold the worker and its
   memory. A render that runs out of memory answers 500 too, never a page cut short.

   ============================================================================
   WEBSOCKET  (RFC 6455)
   ============================================================================
   static void on_message(mw_ws *ws, const char *data, size_t len, int kind) {
       mw_ws_send(ws, data, len, kind);                     // an echo
   }
   mw_ws_opts o = {0};
   o.on_message = on_message;
   mw_websocket(app, "/ws/echo", &o);                       // a GET route, as mw_get's patterns

   mw_ws_opts: the callbacks (each may be NULL), run on a worker:
       void on_open(ws, rq)        the 101 is sent; rq is the upgrade request (params,
                                   query, cookies, session), valid during the call only
       void on_message(ws, data, len, kind)   one whole message (fragments joined):
                                   kind MW_WS_TEXT (valid UTF-8) or MW_WS_BINARY; data is
                                   not NUL-terminated and lives during the call only
       void on_close(ws, code, reason)        once for each opened WebSocket, when it is
                                   over: the first close frame's code and reason (the
                                   client's, or ours: 1001 on stop, 1002/1007/1009 when
                                   the client broke a rule, 1008 "too slow"); 1005 when
                                   the close frame had no code; 1006 when the connection
                                   ended without one. The place to forget ws.
   and  subprotocols   "chat.v2, chat": the endpoint's (tokens); the first that the
                       client offers (in its order) is chosen; NULL: none
        origins        which pages may connect: NULL (the default) the same origin only
                       (Origin's scheme://host:port is mw_host), or no Origin at all (a
                       client that is not a browser); a comma list of origins; "*" any.
                       A page from another site could otherwise open a WebSocket with
                       the user's cookies (cross-site WebSocket hijacking).
        data           the route's data: mw_route_data(rq) in on_open and the hooks,
                       mw_ws_route_data(ws) later.
   Before hooks run on the upgrade request (so a session check can refuse it), after
   hooks on its answer. No extension is agreed (permessage-deflate needs zlib).

   From any thread, while ws is valid (from on_open until on_close returns, or until
   mw_ws_release after mw_ws_hold):
   int mw_ws_send(ws, data, len, kind)   one message (a frame). Never waits. 0 when sent
                                   or queued; MW_EAGAIN when earlier frames still wait
                                   and this one would take the buffer past
                                   MW_WS_SEND_BUFFER_BYTES (nothing is queued: the client
                                   reads slower than you send); MW_ECLOSED once closing;
                                   MW_EINVAL for text that is not UTF-8
   int mw_ws_send_text(ws, text)
   int mw_ws_close(ws, code, reason)     starts the close handshake: code 1000-1003,
                                   1007-1014 or 3000-4999, reason up to 123 bytes of
                                   UTF-8; the client's close frame is awaited for
                                   MW_WS_CLOSE_TIMEOUT_MS, then the connection closes
   int mw_ws_join(ws, group)  int mw_ws_leave(ws, group)    named groups; a closed
                                   WebSocket leaves its groups by itself
   long mw_ws_broadcast(app, group, data, len, kind)    one message to every member;
                                   returns how many took it. A member whose buffer is
                                   full is not waited for: it gets close 1008 "too slow"
                                   after what it holds, and is dropped
   long mw_ws_group_size(app, group)     how many WebSockets are in group now (0: none,
                                   or no such group): a WebSocket counts from its
                                   mw_ws_join until it leaves or closes (in on_close it
                                   no longer counts)
   void mw_ws_set_data(ws, p)   void *mw_ws_data(ws)     the connection's own pointer
   const char *mw_ws_subprotocol(ws)     the one chosen, or NULL
   mw_app *mw_ws_app(ws)   mw_ws *mw_ws_hold(ws)   void mw_ws_release(ws)
   Sends go straight to the socket when nothing waits (a broadcast costs a send per
   member and no thread switch); what the socket does not take waits in the
   connection's buffer. A WebSocket holds no worker while it waits, only its
   connection and a small record (measured in bench/results/ws.md). A message that
   arrives as one frame of up to 64 KiB (with its head) reaches on_message from the
   connection's read buffer, unmasked where it landed; a longer or fragmented one is
   put together in a buffer of its own.

   What the server enforces (and the close code it fails the connection with): client
   frames masked, no reserved bit, a known opcode, control frames whole and at most
   125 bytes, continuation frames only inside a message (1002); text is UTF-8, checked
   as it arrives, so a bad byte fails at once (1007); a message up to
   MW_WS_MAX_MESSAGE (1009); close codes a peer may send (1002). A ping is answered
   with a pong. A connection silent for MW_WS_PING_MS gets a ping, and is closed when
   it stays silent as long again; one that takes nothing of what is sent for
   MW_WRITE_TIMEOUT_MS is closed. On stop (SIGTERM), every WebSocket gets close 1001
   and the server waits for the client's close frame, within the grace period. The
   in-process test client sees the handshake's answer (101, or the refusal) but no
   WebSocket opens. examples/chat.c is a whole app: /ws/echo, /ws/chat and its page.

   Handshake refusals: a request without Upgrade: websocket (or not a GET) 426 with
   Upgrade: websocket; Sec-WebSocket-Version other than 13: 426 with
   Sec-WebSocket-Version: 13; HTTP/1.0, no "upgrade" in Connection, no version, a
   Sec-WebSocket-Key that is not base64 of 16 bytes (or sent twice): 400; an Origin
   not allowed: 403.

   ============================================================================
   LOGGING AND THE ACCESS LOG
   ============================================================================
   Every line microweb writes goes through one function: by default one write() to
   stderr per line ("microweb: ..." for its own lines), so lines never interleave.
   void mw_set_logger(app, fn, arg)   before serving: fn(arg, level, line) gets each
                                      line instead (MW_LOG_ERROR, MW_LOG_WARN, MW_LOG_INFO,
                                      MW_LOG_ACCESS; MW_LOG_TRACE, see TRACE MODE),
                                      without the "microweb: " prefix and the newline
   While serving, lines wait in memory (up to 1 MiB) and a thread of their own writes
   them: a slow or stuck stderr never holds a worker. If they pile up past that, lines
   are dropped and a later line says how many.
   The access log, one line per answer (automatic 404/405 and refusals included), is
   off unless MW_LIMIT_ACCESS_LOG is 1 (plain) or 2 (JSON lines), or the environment's
   MW_ACCESS_LOG is 1/plain or 2/json (which wins over the limit; 0 turns it off):
       2026-11-30T14:23:21.123Z 127.0.0.1:51234 GET /users/42 200 13 57us
       {"time":"2026-11-30T14:23:21.123Z","client":"127.0.0.1:51234","method":"GET",
        "target":"/users/42","status":200,"bytes":13,"us":57}
   time (UTC), client address:port (behind a trusted proxy, the client it forwarded
   for), method, target (path and query), status, body bytes
   (of a stream: those the app wrote), microseconds from when the server began reading
   the request to its answer being handed to the socket (a stream: to its end). A
   refusal before a request line is "- -".
   The examples turn it on; make run shows each request as it arrives.

   ============================================================================
   TRACE MODE  (for learning HTTP: every exchange, told in full)
   ============================================================================
   MW_TRACE=1 in the environment (read when serving starts; 0 turns it off), or
   int mw_trace(app, on) before serving (MW_ESTATE while serving; the environment
   wins), writes on stderr an account of each exchange: the head as received, how it
   was read and by which rule, the route, the head sent back, the body's size, the
   time. Bytes that do not print show as C writes them: \r \n \t \\, others as \xNN.
   MW_TRACE=1 make run, then curl -H 'Accept:' localhost:8080/users/42:
       -- 127.0.0.1:51846 ---------------------------------------------
       request head as received, 73 bytes:
         | GET /users/42 HTTP/1.1\r\n
         | Host: localhost:8080\r\n
         | User-Agent: curl/7.88.1\r\n
         | \r\n
       how it was read:
         request line  method "GET", target "/users/42", version "HTTP/1.1"
         target        path "/users/42"
         field 1       Host: localhost:8080
         field 2       User-Agent: curl/7.88.1
         body          none: neither Transfer-Encoding nor Content-Length (RFC 9112 §6.3)
         connection    persistent: HTTP/1.1 without "Connection: close" (RFC 9112 §9.3)
         route         GET /users/:id, with id = "42"
       response head as sent, 108 bytes:
         | HTTP/1.1 200 OK\r\n
         | Date: Tue, 01 Dec 2026 10:51:34 GMT\r\n
         | Content-Type: application/json\r\n
         | Content-Length: 11\r\n
         | \r\n
         body          11 bytes
         then          the connection stays open for the next request
       == GET /users/42 -> 200 OK, 42us
   The body line names its rule: chunked (RFC 9112 §6.1, with the bytes on the wire),
   Content-Length (§6.2) or none (§6.3); "expect" tells whether 100 Continue went out.
   A 404 says "no route matches /x", a 405 "path /notes exists for GET, HEAD, POST,
   OPTIONS; not for DELETE". A refused request shows the bytes received and its rule:
         refused       400: line not ended by CRLF (RFC 9112 §2.2)
   A body that is not a buffer (mw_flush, a file, a pull or push stream, SSE) is told
   as "(streamed body)"; a WebSocket handshake ends at its 101.
   An account is built whole, then written at once: accounts from several workers never
   mix. Colours when stderr is a terminal (not with NO_COLOR set). With mw_set_logger,
   the function gets each account as one MW_LOG_TRACE line (several lines of text, each
   ended by a newline). Off (the default), it costs a request two tests of one flag.

   ============================================================================
   SERVING
   ============================================================================
   int  mw_run(app)           listen on HOST (default 127.0.0.1) and PORT (default 8080;
                              0 picks a free port), or on a socket handed over (DEPLOYING),
                              serve until SIGINT or SIGTERM, then drain,
                              free the app and return 0 (1 on a startup error, printed).
   int  mw_listen(app, host, port)   bind and listen; returns the port or a negative MW_E...
   int  mw_serve(app)         serve until mw_stop; returns 0. Does not free the app.
   void mw_stop(app)          from any thread or a signal handler: stop accepting, let
                              requests in flight finish (up to MW_SHUTDOWN_GRACE_MS), close
                              idle connections, join the threads. With MW_DRAIN_DELAY_MS,
                              readiness says 503 first and the stop follows that much later
                              (DEPLOYING); a second call stops at once.
   void mw_app_free(app)
   Worker threads: the number of online CPUs, or MW_THREADS from the environment, or
   mw_set_limit(app, MW_LIMIT_THREADS, n). Sockets are non-blocking on epoll (Linux),
   kqueue (macOS/BSD) or poll() (elsewhere, or anywhere with -DMW_USE_POLL=1). An idle
   connection holds no thread; a handler that blocks delays only its own request while
   another worker is free. HOST may be an IPv6 address (HOST=::1); the listening line
   then brackets it (http://[::1]:8080). A HOST that does not resolve stops mw_run with
   the resolver's words ("Name or service not known").
   Defences a server on the open internet needs, on by default:
   - a request body must keep coming (a gap of at most MW_BODY_TIMEOUT_MS) and, once
     MW_BODY_TIMEOUT_MS has passed since its first byte, average MW_BODY_MIN_RATE
     (500 bytes/s): a trickle of a byte every few seconds gets 408 and is closed,
     a real slow uplink (1 KB/s and up) is served (as Apache's mod_reqtimeout MinRate);
   - one client address holds at most MW_MAX_CONNECTIONS_PER_IP connections (1000;
     IPv6 counts by /64); its next ones are answered 429 with Retry-After and closed
     at once, and everybody else still gets in. Behind a proxy every client has the
     proxy's address: raise it there, or set 0 to switch it off.
   Stopping (SIGINT/SIGTERM, mw_stop): new connections are refused (on Linux at once;
   elsewhere they wait unanswered until serving ends; a socket handed over is left
   listening for the processes that share it, see DEPLOYING); every response in progress
   is finished and the next one a connection answers says Connection: close; a
   connection with nothing in flight answers what already arrived, or closes; push
   streams end (last chunk, then FIN). A connection always ends after a complete
   response, with a FIN, and what it still sends is read and dropped first (for 2 s,
   and up to 30 s while it still sends or takes the answer in, as nginx's lingering
   close), so a close can never reset a response away. What is still open after
   MW_SHUTDOWN_GRACE_MS is cut.

   ============================================================================
   DEPLOYING  (several processes on one port, restarts that drop nothing, health)
   ============================================================================
   int mw_health(app, "/livez", "/readyz")   two GET routes (either path may be NULL):
       /livez   200 {"status":"alive"} while the process answers. Nothing else is looked
                at: a database that is down never gets a healthy process restarted.
       /readyz  200 {"status":"ready"}; else 503 with Retry-After: 1 and the reason as
                the JSON error's "detail": "stopping" from SIGTERM on, or what a
                failing check said ("database unavailable").
                Both say Cache-Control: no-store.
   void mw_livez(rq, rs), void mw_readyz(rq, rs)   the same as handlers, to route yourself
   int mw_ready_check(app, fn, arg)   before serving, up to 8 checks /readyz runs in
                order: const char *fn(mw_req *rq, void *arg) gives NULL when ready, else
                a short reason. mw_pg_configure adds the database's: a pooled connection
                answers SELECT 1 within MW_PG_CONNECT_TIMEOUT_S (reconnecting when it
                must; every connection busy counts as ready; nothing is logged, the 503
                says it).

   The stop in two steps: MW_DRAIN_DELAY_MS (0 by default: the stop is at once; the
   environment's MW_DRAIN_DELAY_MS wins over the limit). From SIGTERM (or mw_stop) on,
   /readyz says 503, and for that many ms the server still accepts and answers, each
   answer with Connection: close: a balancer that probes readiness stops sending, and
   keep-alive clients move to new connections. Then the stop of SERVING follows, which
   with a drain delay also lets an idle keep-alive connection run to its keep-alive
   timeout: a request its client still sends is answered (with Connection: close), not
   met by a connection closed under it. A second SIGTERM or Ctrl-C stops at once.

   Where mw_run listens, the first that applies:
   1. systemd's socket activation: LISTEN_PID is this process and LISTEN_FDS is 1 or
      more: descriptor 3, the first (no libsystemd needed).
   2. MW_LISTEN_FD=N: descriptor N, a listening socket inherited from a parent (a
      supervisor, or the program's previous version).
   3. HOST and PORT, bound here. With MW_REUSEPORT=1 in the environment (or
      MW_LIMIT_REUSEPORT 1) the socket gets SO_REUSEPORT: several processes bind one
      port and the kernel spreads new connections among them. Without it, a second
      process says
          cannot listen on 127.0.0.1:8080: Address already in use (to share the port,
          set MW_REUSEPORT=1 in every process)
   The variables of 1 and 2 are removed once used, as sd_listen_fds(1) does, so a
   child process does not take them for its own. A descriptor handed over must be a
   listening stream socket (SO_ACCEPTCONN, SO_TYPE), or mw_run stops with one line:
       cannot serve on descriptor 5 from MW_LISTEN_FD: not a socket
   It is made non-blocking (in every process that holds it, as they all accept that
   way) and close-on-exec, and gets TCP_DEFER_ACCEPT as a socket microweb binds; the
   listening line ends "on a socket handed over from MW_LISTEN_FD" (or "from systemd").
   int mw_listen_fd(app, fd)   for mw_serve: a listening socket made elsewhere. Returns
                its port (0 for a Unix-domain socket), MW_EINVAL when fd is not a
                listening stream socket; the app then owns fd (closed when serving ends).

   A restart that fails no request (Linux):
   - Safe: one socket, shared. systemd holds it, or a parent process does and passes
     it to each new version with MW_LISTEN_FD. Start the new process on it, then send
     SIGTERM to the old one. The accept queue belongs to the socket, not to a process:
     a stopping process stops accepting but never shuts a socket handed over, so what
     waits in the queue is taken by the new process. tests/restart_zero.py does this
     under wrk: no error, with keep-alive (MW_DRAIN_DELAY_MS=300) and with
     Connection: close.
   - Nearly: SO_REUSEPORT. Each process has a queue of its own, and Linux resets what
     waits in a listener's queue when it closes (nginx ticket #1300). A stopping
     process therefore takes connections from its queue until it sees it empty, and
     only then shuts it; a connection that arrives in that instant, or whose handshake
     is under way, is still reset: measured 2 to 8 of about 25,000 new connections per
     restart under wrk with Connection: close (8 to 14 without the draining). With
     net.ipv4.tcp_migrate_req = 1 (Linux 5.14 and later) the kernel hands them to
     another listener of the port: none measured.

   ============================================================================
   BEHIND A PROXY
   ============================================================================
   Behind a reverse proxy (nginx, Caddy, a load balancer) every connection comes from
   the proxy, which says who the client is in X-Forwarded-For, -Proto and -Host or in
   Forwarded (RFC 7239). Any client can send those fields too, so they are believed
   only from the proxies named as trusted, and none is by default:
       mw_trusted_proxies(app, "127.0.0.1, 10.0.0.0/8, ::1, fd00::/8");
   or MW_TRUSTED_PROXIES in the environment, read as serving starts; it replaces the
   call's list (where the proxies are is the deployment's to say). Entries are
   addresses, CIDR blocks or "*" (every address). An IPv4-mapped IPv6 address
   (::ffff:10.0.0.1, how a dual-stack socket shows an IPv4 client) is that IPv4
   address, so "::/0" holds every IPv4 address too. A malformed entry ("10.0.0.0/33",
   "10.1.0.0/8" with bits past its prefix, a name, a zone "%eth0") makes the call return
   MW_EINVAL with one line naming it, and mw_run refuses to start; after serving began,
   MW_ESTATE. The list becomes a table of blocks once, before serving. List proxies only:
   a trusted address is believed about the hops before it.
   From a trusted peer:
       mw_client_addr   the client found by the walk below
       mw_client_port   the port the proxy gave with that address ("192.0.2.1:5555",
                        "[2001:db8::1]:443"), else 0 (the peer's port is the proxy's own);
                        the peer's port when nothing was forwarded
       mw_scheme        "https" or "http" as the proxy nearest the client said, else "http"
       mw_host          the host[:port] that proxy forwarded, else the Host field
   The walk:
   - X-Forwarded-For, -Proto and -Host when the request has any of them, else
     Forwarded: never a mix. A proxy that writes the X- fields (nginx, Caddy, HAProxy,
     most load balancers) passes a Forwarded field the client made up on untouched, so
     preferring Forwarded would believe the client; a proxy that writes only Forwarded
     must drop the X- fields clients send.
   - Several lines of a field are one list, read from the right: each element is the
     word of the proxy that appended it. While the address an element names is trusted,
     the walk goes on to the left; the first address not trusted is the client. When all
     are trusted, the leftmost. At most MW_FORWARDED_MAX_HOPS (16) elements are read.
   - An element that is no address (garbage, "unknown", an obfuscated "_id", a zone, a
     bad port, an empty for=) ends the walk: the client is the last hop reached (the
     peer when there is none), never what the element claims. Empty elements are
     skipped. A comma (and in Forwarded a ';') always separates, even inside quotes: no
     address, scheme or host holds one, so a quote a client left open cannot swallow
     what the proxies appended.
   - Forwarded: for=, proto= and host= of each element a trusted proxy wrote (names in
     any case, values tokens or quoted strings: for="[2001:db8::17]:4711"). A parameter
     twice, a backslash escape or a pair without '=' ends the walk there. proto= and
     host= of the element nearest the client win.
   - X-Forwarded-Proto and -Host line up with X-Forwarded-For from the right: the element
     the proxy nearest the client wrote (the leftmost when the list is shorter; usually
     there is one).
   - A scheme is http or https (any case), a host a valid Host value (at most 1024
     bytes); another value is as if the proxy said nothing.
   The access log names the client found this way; the CSRF check and the WebSocket
   origin check compare Origin with mw_host (and its scheme with mw_scheme when a
   trusted proxy said it). MW_MAX_CONNECTIONS_PER_IP still counts the TCP peers, that
   is the proxy: raise it there, or set 0. An app that trusts no proxy pays nothing:
   the fields are read only when a proxy is trusted and the app (or the log) asks.
   nginx, for instance:
       proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
       proxy_set_header X-Forwarded-Proto $scheme;
       proxy_set_header X-Forwarded-Host $host;

   ============================================================================
   POSTGRESQL  (only with -DMICROWEB_WITH_PG; link with -lpq:
                cc -DMICROWEB_WITH_PG $(pkg-config --cflags libpq) app.c $(pkg-config --libs libpq))
   ============================================================================
   Before serving:  mw_pg_configure(app, "host=... dbname=..." or "postgresql://..." or
                    NULL for DATABASE_URL). The settings are checked at once
                    (PQconninfoParse): a typo is one clear line and mw_run refuses to start.
   int mw_pg_setup(app, sql)  after mw_pg_configure, before serving: runs sql (several
                    statements may be separated by ';') once, on a connection of its own,
                    with notices off: the place for CREATE TABLE IF NOT EXISTS. Returns 0;
                    or, when the database cannot be reached or the SQL fails, MW_EIO after
                    one line with the database's words, and mw_run refuses to start
                    (MW_ESTATE without mw_pg_configure, or while serving).
   In a handler (parameters are sent apart from the SQL, so a value can never change
   the statement; $1, $2 ... in the SQL):
       const char *p[] = { mw_param(rq, "id") };
       mw_pg_json_one(rq, rs, "SELECT id, name FROM users WHERE id = $1", 1, p);
   int mw_pg_json(rq, rs, sql, n, params)      200 with the rows as an array of objects
   int mw_pg_json_one(rq, rs, sql, n, params)  200 with the first row as an object; 404 if none
   PGresult *mw_pg_query(rq, sql, n, params)   the result, cleared when the request ends
   PGconn *mw_pg_conn(rq)                      the raw connection (transactions, COPY ...)
   int mw_pg_batch(rq, stmts, n, results)      n statements in one round trip (below)
   mw_pg_write_rows(j, res) / mw_pg_write_row(j, res, row)   rows into a JSON writer
   void mw_pg_healthz(rq, rs)                  a handler: 200 when the database answers
                                               PQping, else 503 (mw_get(app, "/healthz", ...))
   With mw_health, /readyz also asks the database (a pooled connection, SELECT 1) and
   says 503 "database unavailable" while it is down; /livez stays 200 (DEPLOYING).
   Batches: statements sent together in libpq's pipeline mode, one round trip for all
   (instead of one each), their results read back in order:
       const char *p1[] = {"42"}, *p2[] = {"7", "42"};
       mw_pg_stmt st[] = {{"SELECT id, randomnumber FROM world WHERE id = $1", 1, p1},
                          {"UPDATE world SET randomnumber = $1 WHERE id = $2", 2, p2}};
       PGresult *res[2];
       if (mw_pg_batch(rq, st, 2, res) != 0) return;   // the answer is already the error
   int mw_pg_batch(rq, stmts, n, results)      runs stmts[0..n-1] on the request's pooled
                                               connection; 0 when all succeeded, results[i]
                                               statement i's result, cleared when the request ends
   A batch is one transaction (or part of the request's own, after a BEGIN): when a
   statement fails, those before it are undone and those after it are skipped.
   mw_pg_batch then returns MW_EIO and answers as mw_pg_query would (500, 504, 503;
   a deadlock first runs it again, see below);
   results[i] holds the failed statement's error (PGRES_FATAL_ERROR),
   PGRES_PIPELINE_ABORTED for each one after it, and NULL for a statement that never
   ran (with MW_PG_PREPARE 1, SQL the server refuses to prepare stops the batch before
   any statement is sent; a lost connection leaves NULL where no result came). The
   connection leaves pipeline mode and, unless it was lost, stays the request's, usable
   for more statements.
   (Needs libpq 14 or later; n < 1, NULL stmts or results, or a statement whose sql is
   NULL -> MW_EINVAL.)
   Columns become JSON by type: bool -> true/false; int2/4/8, oid, float4/8, numeric ->
   numbers (NaN and infinities -> null); json, jsonb -> embedded as they are; SQL NULL ->
   null; anything else -> an escaped string. Column names are escaped too.
   The pool: MW_PG_POOL_SIZE connections (default: worker threads, at most 16), checked
   out on a request's first statement and always given back when it ends; a transaction
   left open or failed is rolled back first. Each SQL text is prepared once per connection
   (MW_PG_PREPARE 0 switches it off, for poolers such as PgBouncer in transaction mode).
   Shared connections (MW_PG_SHARED n, 0 by default): a request's mw_pg_query,
   mw_pg_json and mw_pg_json_one statements go to one of n connections (at most 16)
   that the requests share, in libpq's pipeline mode, while the request holds no pooled
   connection of its own. Statements that come while one round trip is out wait and go
   together in the next: under load, one round trip serves several requests, and the
   database spends less on each (with more worker threads than n, so that requests
   wait together). Each statement is a transaction of its own: one that fails takes
   nothing else with it. What needs one connection for several statements gets the
   request's own, from the pool as before: mw_pg_conn, mw_pg_batch, and a statement
   whose first word (after blanks and comments) is BEGIN or START (a transaction) or
   COPY; every statement of that request after it runs there too. Session state (SET,
   temporary tables, LISTEN) is not for shared connections, and a slow statement holds
   up those queued behind it: run long ones as a batch of one (mw_pg_batch), on the
   request's own. A statement still queued after MW_PG_ACQUIRE_TIMEOUT_MS is answered
   503 as a request that found no pooled connection free. A shared connection the
   server dropped while idle is replaced and its statements sent again, once.
   When things go wrong the answer replaces whatever the handler wrote (the handler sees
   NULL / MW_EIO and may simply return):
       database unreachable, or no connection free within MW_PG_ACQUIRE_TIMEOUT_MS
           -> 503 with Retry-After. After a failed connect the pool answers 503 at once
              for MW_PG_RETRY_MS, then tries again: service resumes by itself.
       a pooled connection the server dropped while idle (a restart): the request's
           first statement (or batch) is retried once on a new connection, never in a
           transaction
       statement over MW_PG_STATEMENT_TIMEOUT_MS -> 504; the connection stays usable
       a deadlock or a serialization failure (SQLSTATE 40P01, 40001) that undid a
           statement or batch that was its own transaction (not after the request's
           BEGIN) and only reads or writes rows (each statement's first word SELECT,
           INSERT, UPDATE, DELETE, WITH, VALUES, TABLE or MERGE: a CALL or a DO may
           have committed part of its work): run again at once, up to
           MW_PG_CONFLICT_RETRIES times, then 500. PostgreSQL advises the retry, and a
           handler cannot (the error has answered)
       any other database error -> 500
   The database's own message is logged on stderr; clients see it only in debug mode
   (see DEBUG MODE), in the answer's detail: "database error: ERROR:  relation ...".

   ============================================================================
   TESTING WITHOUT A SOCKET
   ============================================================================
   mw_test_res *r = mw_test_request(app, "POST", "/echo", "Content-Type: text/plain",
                                    "ping", 4);
   headers (NULL for none) holds header lines separated by CRLF or LF, the last one
   with or without its line end; "Host: test" is sent unless it has a Host line, and
   Content-Length is added for a body.
   Headers as a list of strings, NULL-terminated (as execv takes its arguments; each
   string is one or more lines, as above): mw_test_requestv and mw_test_jsonv
   const char *hdrs[] = {"Origin: http://a.test", cookie_line, NULL};
   r = mw_test_requestv(app, "DELETE", "/notes/1", hdrs, NULL, 0);
   r->status, r->body / r->body_len, mw_test_header(r, "Content-Type"), r->raw (all bytes)
   mw_test_free(r);
   For a JSON API, mw_test_json sends a JSON text (NULL: no body) with its
   Content-Type (unless headers has one) and length, and mw_test_body_json reads the
   answer as parsed JSON (NULL when it is not JSON; freed with the response):
   r = mw_test_json(app, "POST", "/notes", NULL, "{\"title\":\"a\"}");
   mw_jv_int(mw_jv_get(mw_test_body_json(r), "id"), 0)       // 1
   mw_test_raw(app, bytes, n) feeds raw bytes (several pipelined requests, or garbage).
   Requests go through the same parser, router, handlers and response framing as on a
   socket, in the calling thread; examples/hello_test.c shows a whole test file.
   A handler sees the client as "127.0.0.1" port 0 (mw_client_addr, mw_client_port);
   mw_trusted_proxies(app, "127.0.0.1") makes the forwarding fields a test sends believed.
   Every kind of body works here too: a pull body is read to its end, a push stream
   until the app ends it (or for MW_WRITE_TIMEOUT_MS, after which it counts as a client
   that went away); a chunked body is decoded into r->body.


   ============================================================================
   LIMITS  (compile-time defaults; each also settable with mw_set_limit)
   ============================================================================
   macro                       default     unit     mw_limit                          when exceeded
   MW_MAX_REQUEST_LINE         8192        bytes    MW_LIMIT_REQUEST_LINE             414, close
   MW_MAX_HEADER_BYTES         16384       bytes    MW_LIMIT_HEADER_BYTES             431, close
   MW_MAX_HEADERS              100         fields   MW_LIMIT_HEADER_COUNT             431, close
   MW_MAX_BODY_BYTES           1048576     bytes    MW_LIMIT_BODY_BYTES               413, close
   MW_HEAD_TIMEOUT_MS          10000       ms       MW_LIMIT_HEAD_TIMEOUT_MS          408, close
   MW_BODY_TIMEOUT_MS          10000       ms       MW_LIMIT_BODY_TIMEOUT_MS          408, close (no progress)
   MW_BODY_MIN_RATE            500         bytes/s  MW_LIMIT_BODY_MIN_RATE            408, close (0: off) see SERVING
   MW_KEEPALIVE_TIMEOUT_MS     5000        ms       MW_LIMIT_KEEPALIVE_TIMEOUT_MS     close
   MW_WRITE_TIMEOUT_MS         10000       ms       MW_LIMIT_WRITE_TIMEOUT_MS         close (no progress)
   MW_MAX_CONNECTIONS          10000       conns    MW_LIMIT_CONNECTIONS              503, close
   MW_MAX_CONNECTIONS_PER_IP   1000        conns    MW_LIMIT_CONNECTIONS_PER_IP       429, close (0: off)
   MW_SHUTDOWN_GRACE_MS        5000        ms       MW_LIMIT_SHUTDOWN_GRACE_MS        connections closed
   MW_MAX_CHUNK_EXT_BYTES      1024        bytes    MW_LIMIT_CHUNK_EXT_BYTES          400, close
   MW_MAX_MULTIPART_PARTS      128         parts    MW_LIMIT_MULTIPART_PARTS          413
   MW_STREAM_BUFFER_BYTES      262144      bytes    MW_LIMIT_STREAM_BUFFER_BYTES      write refused (MW_EAGAIN)
   MW_SSE_HEARTBEAT_MS         15000       ms       MW_LIMIT_SSE_HEARTBEAT_MS         (0: none)
   MW_MAX_SESSION_BYTES        4000        bytes    MW_LIMIT_SESSION_BYTES            mw_session_set refused (MW_ETOOBIG)
   MW_WS_MAX_MESSAGE           16777216    bytes    MW_LIMIT_WS_MAX_MESSAGE           close 1009
   MW_WS_SEND_BUFFER_BYTES     1048576     bytes    MW_LIMIT_WS_SEND_BUFFER_BYTES     send refused (MW_EAGAIN)
   MW_WS_PING_MS               30000       ms       MW_LIMIT_WS_PING_MS               ping, then close (0: none)
   MW_WS_CLOSE_TIMEOUT_MS      5000        ms       MW_LIMIT_WS_CLOSE_TIMEOUT_MS      close
   MW_ACCESS_LOG               0           0/1/2    MW_LIMIT_ACCESS_LOG               (1: plain, 2: JSON lines)
   MW_FORWARDED_MAX_HOPS       16          hops     MW_LIMIT_FORWARDED_HOPS           the rest not read
   MW_PG_POOL_SIZE             0 (auto)    conns    MW_LIMIT_PG_POOL_SIZE
   MW_PG_ACQUIRE_TIMEOUT_MS    1000        ms       MW_LIMIT_PG_ACQUIRE_TIMEOUT_MS    503
   MW_PG_CONNECT_TIMEOUT_S     2           s        MW_LIMIT_PG_CONNECT_TIMEOUT_S     503
   MW_PG_STATEMENT_TIMEOUT_MS  5000        ms       MW_LIMIT_PG_STATEMENT_TIMEOUT_MS  504
   MW_PG_RETRY_MS              500         ms       MW_LIMIT_PG_RETRY_MS              503 meanwhile
   MW_PG_PREPARE               1           0/1      MW_LIMIT_PG_PREPARE
   MW_PG_SHARED                0           conns    MW_LIMIT_PG_SHARED                (0: off) see POSTGRESQL
   MW_PG_CONFLICT_RETRIES      2           runs     MW_LIMIT_PG_CONFLICT_RETRIES      500 (a deadlock, see POSTGRESQL)
   MW_DEBUG                    0           0/1      MW_LIMIT_DEBUG                    (1: see DEBUG MODE)
   MW_MAX_VALIDATION_ERRORS    100         errors   MW_LIMIT_VALIDATION_ERRORS        the rest not listed
   MW_THREADS_DEFAULT          0 (=CPUs)   threads  MW_LIMIT_THREADS
   MW_DEFER_ACCEPT_S           1           s        MW_LIMIT_DEFER_ACCEPT_S           (Linux; 0: off) see below
   MW_REUSEPORT                0           0/1      MW_LIMIT_REUSEPORT                see DEPLOYING
   MW_DRAIN_DELAY_MS           0           ms       MW_LIMIT_DRAIN_DELAY_MS           see DEPLOYING
   Compile-time only:  MW_MAX_PARAMS 16 (path parameters per route),
   MW_JSON_MAX_DEPTH 64 (writer and reader), MW_READ_BUFFER_BYTES 4096 (first read buffer of a connection),
   MW_USE_POLL 0 (1 selects the poll() backend), MW_USE_OPENAT2 1 (0: static files are
   opened by the O_NOFOLLOW walk even where openat2 exists), MW_MALLOC/MW_REALLOC/MW_FREE
   (define all three to use your allocator).
   A run-time MW_LIMIT_HEADER_COUNT may only lower MW_MAX_HEADERS; mw_set_limit refuses
   (MW_EINVAL) a value outside a limit's range (negative, or a size that cannot work).
   MW_LIMIT_DEFER_ACCEPT_S is read by mw_listen (TCP_DEFER_ACCEPT, as nginx's `deferred`):
   the kernel completes the handshake but hands a new connection over when its first
   bytes arrive, so the server is woken once, with the request already there. A client
   that connects and says nothing reaches the server after that long (Linux rounds up
   to its SYN-ACK retry times: 1 s stays 1 s, 5 s becomes 7 s; at most 3600 s is
   asked), and then its head timeout runs as usual.

   ============================================================================
   HTTP RULES  (RFC 9112 / RFC 9110). A doubt about where a message ends is a 400
   and the connection is closed: microweb never guesses. Every refusal below is
   answered with the status shown, a JSON error body whose "detail" names the rule
   (e.g. "chunk extension longer than MW_MAX_CHUNK_EXT_BYTES"), and Connection: close;
   only a refused path (the "path" row) leaves the connection open, as its message
   was well framed.
   ============================================================================
   part               accepted                              refused (status)
   ----------------   -----------------------------------   -------------------------------
   line endings       CRLF; empty lines before the          bare LF, bare CR (400)
                      request line are skipped (they
                      count toward the request-line limit)
   method             a token (RFC 9110 §5.6.2), case-      other bytes (400); no route for
                      sensitive; HEAD runs GET routes       it: 405 + Allow, or 404
   spacing            exactly one SP between the three      two SP, HTAB, leading SP (400)
                      request-line parts
   request target     origin-form "/p?q"; absolute-form     other forms, '#', control or
                      "http(s)://host/p" (no path: "/"),    non-ASCII bytes (400); "*" with
                      whose host[:port] becomes the Host    another method (400); longer
                      value handlers read (RFC 9112         than MW_MAX_REQUEST_LINE (414);
                      §3.2.2); "*" for OPTIONS              absolute-form with an empty
                                                            host, userinfo ("u:p@h"), or
                                                            bytes Host refuses (400)
   path               as sent, not decoded, for routing     a "." or ".." segment, raw or in
                                                            a decoded parameter; in a
                                                            parameter or wildcard value: a
                                                            leading '/', "//", %2F, a
                                                            backslash, NUL (400)
   version            HTTP/1.0, HTTP/1.1; a later HTTP/1.x  HTTP/2-9.x (505); other
                      is answered as 1.1 (RFC 9110 §2.5)    spellings (400)
   field name         a token, ':' right after it           space before ':', empty or
                                                            non-token name (400)
   field value        VCHAR, SP, HTAB, bytes 0x80-0xFF;     NUL, CR, LF, DEL, other control
                      OWS around it trimmed                 bytes (400); obs-fold (400)
   field section      <= MW_MAX_HEADERS fields,             more (431)
                      <= MW_MAX_HEADER_BYTES bytes
   Host               one, in HTTP/1.1 (any in 1.0); host   none in 1.1, two, or a value
                      and port characters (RFC 3986);       with other bytes (400)
                      checked, then replaced by an
                      absolute-form target's authority
   Content-Length     1*DIGIT; a list or repeated fields    sign, space inside, hex, empty,
                      only when all equal; <= 18 digits     differing values, > 18 digits
                                                            (400); over the body limit (413,
                                                            before any body byte is read)
   Transfer-Encoding  "chunked" alone, in HTTP/1.1          with Content-Length (400); in
                                                            HTTP/1.0 (400); final coding not
                                                            chunked, chunked twice (400);
                                                            chunked after another coding (501)
   chunk size line    1-15 hex digits; BWS only before      no digits, 16+ digits, "0x", a
                      ';'; extensions skipped, <=           sign, LF without CR (400); over
                      MW_MAX_CHUNK_EXT_BYTES per line       the extension cap (400)
   chunk data         followed by CRLF                      anything else (400); decoded
                                                            total over the body limit (413)
   trailer section    fields skipped (control bytes         over MW_MAX_HEADER_BYTES (431);
                      refused)                              bare LF or control bytes (400)
   Expect             a list; 100-continue: "100 Continue"  any other expectation (417)
                      before the body is read (only when
                      the body has not arrived yet)
   Connection         1.1 keeps alive unless "close"; 1.0
                      closes unless "keep-alive";
                      pipelined requests answered in order
   timeouts           head within MW_HEAD_TIMEOUT_MS of     late head, stalled or too slow
                      its first byte (the whole head, not   body (408); idle keep-alive or
                      each read); body progress within      stalled response: closed
                      MW_BODY_TIMEOUT_MS, and on average    silently
                      MW_BODY_MIN_RATE after that long
   connections        up to MW_MAX_CONNECTIONS, and         more: 503 + Retry-After, closed;
                      MW_MAX_CONNECTIONS_PER_IP from one    more from one address: 429 +
                      address                               Retry-After, closed
   After a refusal microweb sends its answer, stops reading requests, drains what the
   client still sends for 2 s (up to 30 s while it keeps sending or taking the answer
   in, so the answer is not lost to a TCP reset), and closes; other connections are not
   affected.

   ============================================================================
   ERRORS
   ============================================================================
   Functions return 0 (or a count) on success, or a negative code:
   MW_EINVAL (bad argument), MW_ENOMEM, MW_EEXIST (duplicate route), MW_ESTATE (call not
   allowed now, e.g. a route added while serving, a header after mw_flush), MW_EJSON
   (JSON writer misuse), MW_EIO (a system call failed, or the client is gone; see errno),
   MW_EAGAIN (a stream's or WebSocket's buffer is full), MW_ECLOSED (the stream or
   WebSocket is over).

   ============================================================================
   DEBUG MODE
   ============================================================================
   For development: error answers tell what production keeps to its log.
       mw_debug(app, 1);             // or MW_DEBUG=1 in the environment
   int mw_debug(app, on)         before serving (MW_ESTATE while serving); it sets the
                                 limit MW_LIMIT_DEBUG, whose compile-time default is
                                 MW_DEBUG. MW_DEBUG in the environment, read when serving
                                 starts (and by the test client at each request), wins
                                 over both: MW_DEBUG=0 keeps it off whatever the code says.
   Serving then starts with one warning line:
       microweb: debug mode is on: error answers show internals; do not use in production
   What changes (only the answers microweb makes; what a handler answers is its own):
   - a handler mistake's 500 (RESPONSE, "Handler mistakes") says what went wrong and on
     which route, in the same problem shape ("detail" holds the reason, "route" is new):
       {"status":500,"error":"Internal Server Error",
        "detail":"mw_json_key_string: not inside an object","route":"GET /notes/{id:int}"}
     The reasons are the log's: "handler returned without writing a response", "invalid
     status code 700 (200-599)", "handler returned before mw_json_end", "mw_write or
     mw_printf after mw_json_begin", a JSON writer misuse as "<call>: <what>" (not inside
     an object, a key where a value is due, a value where a key is due, a key without a
     value, close with no container open, more than one top-level value, NaN or infinity
     has no JSON form, nesting deeper than MW_JSON_MAX_DEPTH, no value written, out of
     memory), "mw_render: no template of that name (\"page\")", a render over its step
     limit, mw_redirect's and mw_html_printf's refusals. Off, the same 500 says only
     "the response could not be produced".
   - an error microweb answers for the handler (a malformed JSON body, a database error)
     adds "route"; a database error's detail carries the database's own message.
   - a mistake that leaves the answer as it is (a second whole response, a refused
     header or cookie, mw_status after the body began, a call an after hook may not make)
     is told in a field of that answer while its head is not sent (after mw_flush it
     is only logged); control bytes in it become '?':
       Microweb-Debug: route GET /twice: a second response replaced the first (the last is sent)
   - a 404 lists the routes there are, in registration order (as Django's debug 404 page
     lists its URL patterns), a 405 the routes of its path:
       {"status":404,"error":"Not Found","detail":"no route for this path","method":"GET",
        "path":"/nowhere","routes":["GET /","GET /notes/{id:int}","POST /notes"]}
   - templates: each render reads again the files that changed, and logs a name it
     found nowhere (see TEMPLATES).
   The log is the same either way (each mistake once per route and kind).
   Keep it off in production: it shows internals to anyone who asks. Any client learns
   every route of the app (including the ones no page links to) from a 404, the names
   of tables and columns and the SQL that failed from a database error, template names
   and which calls the code makes from a 500; and renders then take a lock. A client
   needs none of it, and all of it helps an attacker. MW_DEBUG=0 in a production
   environment makes sure. Off, it costs nothing: the explanations are made only on
   the error path, and the 404 and 500 answers are the ones production always gave.

   ============================================================================
   INSIDE THE HEADER
   ============================================================================
   The implementation follows this manual and the declarations, in sections that each
   use only those above them (search for the name after "----" to jump to one):
   platform        sockets, the poller (epoll, kqueue, poll()), sendfile, openat2, clock; the only
                   place with OS #ifdefs
   memory          growable buffers, the per-request arena, MW_MALLOC and friends
   log             the one path every line takes, and the thread that writes them
   HTTP/1.1 parser request head and chunked bodies: pure (no I/O, no allocation)
   router          the route trie and its match; the app's flat list of routes
   JSON writer     and JSON reader (the reader: one block per document)
   response        what a handler builds, the checks on it (told in full in debug mode),
                   status line and framing
   request toolkit query and form values, cookies, typed parameters, multipart
   schemas         the schema language's compiler (a flat tree of nodes), the checks of a
                   value against it, a request against its route's declaration, the 422
   crypto          SHA-256 (with x86-64's SHA extensions when the CPU has them), HMAC,
                   SHA-1, base64 and base64url: pure
   connection      the connection, worker and app structures; trusted proxies (the
                   forwarding fields' walk, pure); ownership (a connection
                   is run by one worker at a time, events name it by slot and
                   generation); wake-ups; the io (socket, test client); output queue
   middleware      before and after hooks, CORS, security headers, signed-cookie
                   sessions, CSRF, redirects, HTML escaping, credentials
   streams         push streams, their timers (mw_stream_every), Server-Sent Events, mw_flush
   HTTP/1.1        dispatch, the trace (MW_TRACE), body sources, the protocol's event function
   server          listener (bound, SO_REUSEPORT or handed over), connection table,
                   workers, sweeper (deadlines), the drain delay and the stop
   app             routes, settings, extensions (hooks PostgreSQL registers with),
                   declared routes and named schemas, the typed accessors
   openapi         GET /openapi.json from the route table
   static files    mounts, opening beneath a folder (openat2, or the O_NOFOLLOW walk),
                   HTTP-dates, entity tags, ranges, Accept-Encoding, the answer
   templates       Mustache: compiling into nodes, linking partials by name, the
                   debug-mode reload, rendering with a context stack
   websocket       UTF-8 as it arrives, frames, the handshake, the protocol's event
                   function (after a 101), sending from any thread, groups
   docs page       GET /docs: the page's lines (HTML, style, script), joined once, and
                   the hashes its Content-Security-Policy names
   extras          PostgreSQL (only with MICROWEB_WITH_PG); the in-process test client

   ============================================================================
   VERSIONS
   ============================================================================
   0.6.0  declared inputs: mw_route_op and mw_schema (a schema language compiled at
          registration), query, path and JSON body checked before the handler with
          every problem in one 422 in FastAPI's shape, typed accessors mw_arg_*;
          OpenAPI 3.1 from the route table (mw_openapi); an offline /docs page
          (mw_docs); Mustache templates (mw_template, mw_templates, mw_render,
          mw_render_json), the whole specification but lambdas, with inheritance.
          For learners: the trace mode (MW_TRACE=1, mw_trace; MW_LOG_TRACE for a
          logger), each exchange told with the RFC rules that read it and refusals
          with theirs; debug mode for the whole app (mw_debug, MW_DEBUG=1,
          MW_LIMIT_DEBUG): a handler mistake's 500 names the route and the reason (a
          JSON writer misuse its call), 404 and 405 list the routes, other mistakes a
          Microweb-Debug field (MW_LIMIT_PG_DEBUG and MW_PG_DEBUG are older names of
          MW_LIMIT_DEBUG and MW_DEBUG); looking at a request (mw_header_next,
          mw_target, mw_http_version, mw_client_addr, mw_client_port); the test
          client's mw_test_json, mw_test_body_json and headers as a list
          (mw_test_requestv, mw_test_jsonv); make install with pkg-config files
          (microweb, microweb-pg); a link without the implementation names
          MICROWEB_IMPLEMENTATION in its first error; MICROWEB_IMPLEMENTATION_ONCE
          (-D) links a file that has the #define to an implementation compiled once.
          Deploying: SO_REUSEPORT (MW_REUSEPORT); a listening socket handed over
          (systemd's socket activation, MW_LISTEN_FD, mw_listen_fd) that a stop never
          shuts, for restarts that fail no request; mw_health, mw_livez, mw_readyz and
          mw_ready_check, with the database's check; MW_DRAIN_DELAY_MS, readiness 503
          before the stop. Behind a proxy: mw_trusted_proxies and MW_TRUSTED_PROXIES;
          X-Forwarded-* and Forwarded believed from trusted proxies only, walked from
          the right (MW_FORWARDED_MAX_HOPS); mw_client_addr/_port, the access log, the
          CSRF and WebSocket origin checks see the forwarded client and host;
          mw_scheme, mw_host.
          PostgreSQL: statements in batches, one round trip each (mw_pg_batch,
          libpq's pipeline mode); mw_pg_setup (schema SQL once, before serving);
          shared connections (MW_PG_SHARED): concurrent requests' single statements
          gathered into one pipelined round trip, each its own transaction; a
          statement or batch that was its own transaction runs again after a deadlock
          or serialization failure (MW_PG_CONFLICT_RETRIES).
          Also mw_ws_group_size, mw_stream_every (a push stream's timer, run on its
          connection's worker); the JSON reader takes a string's ASCII runs at once; a
          one-frame WebSocket message up to 64 KiB is read in place. With several
          workers on epoll and TCP, connections stay armed (edge-triggered): a keep-alive
          request costs one recv and one sendmsg and no re-arming call, as with one
          worker. A session's Set-Cookie line is rendered once, its value signed in
          place; with the CPU's SHA extensions a session signature (HMAC-SHA256 and its
          base64url) runs in registers, 140 ns where it took 222. The JSON writer
          formats integers itself (snprintf cost 15 times as much); HTML escaping
          copies the runs that need no entity, found 16 bytes at a time.
   0.5.0  WebSocket (RFC 6455): mw_websocket endpoints with open, message and close
          callbacks on the event loop; sending from any thread; named groups and
          broadcast; subprotocols and an origin check; ping, close handshake, 1001 on
          stop. SHA-1 in the crypto section.
   0.4.0  static files: mw_static mounts a folder (sendfile from the event loop, ETag
          and Last-Modified with 304s, single ranges, index.html, precompressed
          siblings, never a file outside the folder), mw_static_type; mw_serve raises
          the soft limit on open files.
   0.3.0  hooks before and after handlers (and on every automatic answer), per-route
          data; CORS with automatic preflights; security headers; sessions in an
          HMAC-SHA256-signed cookie with key rotation; CSRF protection (cross-origin
          check, masked form tokens); mw_redirect, HTML escaping, Basic and Bearer
          credentials, constant-time comparison.
   0.2.0  bodies beyond a buffer (mw_flush, files, pull and push streams, Server-Sent
          Events); one logger (mw_set_logger) and an access log; a body's minimum
          rate and a per-address connection limit; a graceful stop that never cuts a
          response; handler mistakes answer 500 and are logged once per route; JSON
          documents in one block (at most 11 bytes per body byte), mw_jv_string,
          numbers independent of LC_NUMERIC; safe path values; absolute-form targets
          give their authority as Host.
   0.1.0  first release: server, router, JSON writer; request toolkit (query and form
          values, cookies, typed parameters, JSON reader, multipart); in-process test
          client; PostgreSQL pool and JSON rows.
*/
#if defined(MICROWEB_IMPLEMENTATION) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1 /* accept4, clock_gettime, sigaction, ... under -std=c99 */
#endif

#ifndef MICROWEB_H
#define MICROWEB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MW_VERSION "0.6.0"

/* A program whose files all include this header without MICROWEB_IMPLEMENTATION
   declares everything and defines nothing: its link fails on every mw_ call. This
   reference makes the first of those errors name the fix. A function rather than a
   pointer, because a linker reports code before data; never called, so it costs a few
   bytes per file and no time. */
extern const char mw_define_MICROWEB_IMPLEMENTATION_in_exactly_one_c_file[];
#if defined(__GNUC__) || defined(__clang__)
__attribute__((used)) static const char *mw__implementation_link_check(void) {
    return mw_define_MICROWEB_IMPLEMENTATION_in_exactly_one_c_file;
}
#endif

/* ---- limits: one block each, unit in the comment ---- */
#ifndef MW_MAX_REQUEST_LINE
#define MW_MAX_REQUEST_LINE 8192 /* bytes, request line incl. CRLF; longer -> 414 */
#endif
#ifndef MW_MAX_HEADER_BYTES
#define MW_MAX_HEADER_BYTES 16384 /* bytes, all header fields; more -> 431 */
#endif
#ifndef MW_MAX_HEADERS
#define MW_MAX_HEADERS 100 /* header fields per request; more -> 431 */
#endif
#ifndef MW_MAX_BODY_BYTES
#define MW_MAX_BODY_BYTES 1048576 /* bytes, decoded request body; larger -> 413 */
#endif
#ifndef MW_HEAD_TIMEOUT_MS
#define MW_HEAD_TIMEOUT_MS 10000 /* ms from the first byte to the end of the head -> 408 */
#endif
#ifndef MW_BODY_TIMEOUT_MS
#define MW_BODY_TIMEOUT_MS 10000 /* ms without progress while a body arrives -> 408 */
#endif
#ifndef MW_BODY_MIN_RATE
#define MW_BODY_MIN_RATE 500 /* bytes/s a body must average once MW_BODY_TIMEOUT_MS passed -> 408; 0 = off */
#endif
#ifndef MW_KEEPALIVE_TIMEOUT_MS
#define MW_KEEPALIVE_TIMEOUT_MS 5000 /* ms an idle keep-alive connection is kept */
#endif
#ifndef MW_WRITE_TIMEOUT_MS
#define MW_WRITE_TIMEOUT_MS 10000 /* ms without progress while a response is sent */
#endif
#ifndef MW_MAX_CONNECTIONS
#define MW_MAX_CONNECTIONS 10000 /* open connections; more are answered 503 and closed */
#endif
#ifndef MW_MAX_CONNECTIONS_PER_IP
#define MW_MAX_CONNECTIONS_PER_IP 1000 /* connections one client address (IPv6: one /64) may hold -> 429; 0 = off */
#endif
#ifndef MW_SHUTDOWN_GRACE_MS
#define MW_SHUTDOWN_GRACE_MS 5000 /* ms requests in flight get to finish after mw_stop */
#endif
#ifndef MW_MAX_CHUNK_EXT_BYTES
#define MW_MAX_CHUNK_EXT_BYTES 1024 /* bytes of extensions on one chunk-size line -> 400 */
#endif
#ifndef MW_MAX_MULTIPART_PARTS
#define MW_MAX_MULTIPART_PARTS 128 /* parts in one multipart/form-data body; more -> 413 */
#endif
#ifndef MW_MAX_SESSION_BYTES
#define MW_MAX_SESSION_BYTES 4000 /* a session cookie's value; browsers keep at most 4096 bytes per cookie */
#endif
#ifndef MW_STREAM_BUFFER_BYTES
#define MW_STREAM_BUFFER_BYTES 262144 /* bytes a push stream holds for a slow client; a write past it is refused */
#endif
#ifndef MW_SSE_HEARTBEAT_MS
#define MW_SSE_HEARTBEAT_MS 15000 /* ms of silence after which an event stream sends a comment line; 0 = never */
#endif
#ifndef MW_WS_MAX_MESSAGE
#define MW_WS_MAX_MESSAGE 16777216 /* bytes, one WebSocket message after reassembly; larger -> close 1009 */
#endif
#ifndef MW_WS_SEND_BUFFER_BYTES
#define MW_WS_SEND_BUFFER_BYTES 1048576 /* bytes a WebSocket holds for a slow client; a send past it is refused */
#endif
#ifndef MW_WS_PING_MS
#define MW_WS_PING_MS \
    30000 /* ms of a WebSocket's silence before a ping; as long again unanswered -> closed; 0 = never */
#endif
#ifndef MW_WS_CLOSE_TIMEOUT_MS
#define MW_WS_CLOSE_TIMEOUT_MS 5000 /* ms the client's close frame is awaited after the server's */
#endif
#ifndef MW_ACCESS_LOG
#define MW_ACCESS_LOG 0 /* 1: one plain line per request, 2: one JSON object per line; MW_ACCESS_LOG env overrides */
#endif
#ifndef MW_FORWARDED_MAX_HOPS
#define MW_FORWARDED_MAX_HOPS 16 /* forwarding list elements read from the right, behind trusted proxies */
#endif
#ifndef MW_PG_POOL_SIZE
#define MW_PG_POOL_SIZE 0 /* connections; 0 = the number of worker threads, at most 16 */
#endif
#ifndef MW_PG_ACQUIRE_TIMEOUT_MS
#define MW_PG_ACQUIRE_TIMEOUT_MS 1000 /* ms a request waits for a free connection -> 503 */
#endif
#ifndef MW_PG_CONNECT_TIMEOUT_S
#define MW_PG_CONNECT_TIMEOUT_S 2 /* s to connect to the database (libpq's unit) -> 503 */
#endif
#ifndef MW_PG_STATEMENT_TIMEOUT_MS
#define MW_PG_STATEMENT_TIMEOUT_MS 5000 /* ms one statement may run -> 504 */
#endif
#ifndef MW_PG_RETRY_MS
#define MW_PG_RETRY_MS 500 /* ms after a failed connect before the next try; 503 meanwhile */
#endif
#ifndef MW_PG_PREPARE
#define MW_PG_PREPARE 1 /* 1: prepare each SQL text once per connection; 0 for poolers without it */
#endif
#ifndef MW_PG_SHARED
#define MW_PG_SHARED 0 /* connections concurrent requests' single statements share, pipelined; 0 = off */
#endif
#ifndef MW_PG_CONFLICT_RETRIES
#define MW_PG_CONFLICT_RETRIES 2 /* runs again of a statement or batch a deadlock or serialization failure undid */
#endif
#ifndef MW_DEBUG
#ifdef MW_PG_DEBUG
#define MW_DEBUG MW_PG_DEBUG /* the older name, from when debug mode was the database's only */
#else
#define MW_DEBUG 0 /* 1: debug mode, error answers show internals (never in production); MW_DEBUG env overrides */
#endif
#endif
#ifndef MW_MAX_VALIDATION_ERRORS
#define MW_MAX_VALIDATION_ERRORS 100 /* problems a 422 lists; the rest of a request's are left out */
#endif
#ifndef MW_THREADS_DEFAULT
#define MW_THREADS_DEFAULT 0 /* worker threads; 0 = online CPUs */
#endif
#ifndef MW_DEFER_ACCEPT_S
#define MW_DEFER_ACCEPT_S 1 /* Linux: a new connection is handed over with its first bytes; 0 = off */
#endif
#ifndef MW_REUSEPORT
#define MW_REUSEPORT \
    0 /* 1: the listener is bound with SO_REUSEPORT, so processes share a port; MW_REUSEPORT env overrides */
#endif
#ifndef MW_DRAIN_DELAY_MS
#define MW_DRAIN_DELAY_MS 0 /* ms from SIGTERM (readiness 503) to the drain; MW_DRAIN_DELAY_MS env overrides */
#endif
#ifndef MW_MAX_PARAMS
#define MW_MAX_PARAMS 16 /* path parameters per route (compile-time only) */
#endif
#ifndef MW_JSON_MAX_DEPTH
#define MW_JSON_MAX_DEPTH 64 /* nesting of the JSON writer (compile-time only) */
#endif
#ifndef MW_READ_BUFFER_BYTES
#define MW_READ_BUFFER_BYTES 4096 /* bytes, first read buffer of a connection */
#endif
#ifndef MW_USE_POLL
#define MW_USE_POLL 0 /* 1: use the poll() backend even where epoll/kqueue exist */
#endif
#ifndef MW_USE_OPENAT2
#define MW_USE_OPENAT2 1 /* 0: static files are opened by the O_NOFOLLOW walk even where openat2 exists */
#endif

/* ---- error codes ---- */
#define MW_EINVAL (-1)
#define MW_ENOMEM (-2)
#define MW_EEXIST (-3)
#define MW_ESTATE (-4)
#define MW_EJSON (-5)
#define MW_EIO (-6)
#define MW_EAGAIN (-7)  /* a stream's buffer is full: the client reads slower than it is written to */
#define MW_ECLOSED (-8) /* the stream is over: the client went away, or the stream was closed */
#define MW_ETOOBIG (-9) /* the value would not fit where it goes (a session in its cookie, ...) */

/* Every limit and run-time setting, once: X(name, default, unit, min, max, when exceeded).
   It makes enum mw_limit (MW_LIMIT_<name>), the defaults and mw_set_limit's range checks;
   tests/limits_table.c holds the manual's LIMITS table against it. A new limit is a
   default block above, a row here and a row in the manual and README. */
#define MW__NO_MAX 0x7fffffffffffffffLL
#define MW__HOPS_MAX 64          /* the most forwarding list elements read (the walk keeps them on the stack) */
#define MW__MAX_TIME (1LL << 40) /* ms (35 years) or s: deadlines computed from it cannot overflow */
#define MW__LIMITS(X)                                                                                      \
    X(REQUEST_LINE, MW_MAX_REQUEST_LINE, "bytes", 64, 1 << 24, "414, close")                               \
    X(HEADER_BYTES, MW_MAX_HEADER_BYTES, "bytes", 64, 1 << 24, "431, close")                               \
    X(HEADER_COUNT, MW_MAX_HEADERS, "fields", 1, MW_MAX_HEADERS, "431, close")                             \
    X(BODY_BYTES, MW_MAX_BODY_BYTES, "bytes", 0, 1LL << 40, "413, close")                                  \
    X(HEAD_TIMEOUT_MS, MW_HEAD_TIMEOUT_MS, "ms", 0, MW__MAX_TIME, "408, close")                            \
    X(BODY_TIMEOUT_MS, MW_BODY_TIMEOUT_MS, "ms", 0, MW__MAX_TIME, "408, close (no progress)")              \
    X(BODY_MIN_RATE, MW_BODY_MIN_RATE, "bytes/s", 0, MW__NO_MAX, "408, close (0: off) see SERVING")        \
    X(KEEPALIVE_TIMEOUT_MS, MW_KEEPALIVE_TIMEOUT_MS, "ms", 0, MW__MAX_TIME, "close")                       \
    X(WRITE_TIMEOUT_MS, MW_WRITE_TIMEOUT_MS, "ms", 0, MW__MAX_TIME, "close (no progress)")                 \
    X(CONNECTIONS, MW_MAX_CONNECTIONS, "conns", 1, 1 << 23, "503, close")                                  \
    X(CONNECTIONS_PER_IP, MW_MAX_CONNECTIONS_PER_IP, "conns", 0, MW__NO_MAX, "429, close (0: off)")        \
    X(SHUTDOWN_GRACE_MS, MW_SHUTDOWN_GRACE_MS, "ms", 0, MW__MAX_TIME, "connections closed")                \
    X(CHUNK_EXT_BYTES, MW_MAX_CHUNK_EXT_BYTES, "bytes", 0, MW__NO_MAX, "400, close")                       \
    X(MULTIPART_PARTS, MW_MAX_MULTIPART_PARTS, "parts", 0, MW__NO_MAX, "413")                              \
    X(STREAM_BUFFER_BYTES, MW_STREAM_BUFFER_BYTES, "bytes", 1024, 1LL << 32, "write refused (MW_EAGAIN)")  \
    X(SSE_HEARTBEAT_MS, MW_SSE_HEARTBEAT_MS, "ms", 0, MW__MAX_TIME, "(0: none)")                           \
    X(SESSION_BYTES, MW_MAX_SESSION_BYTES, "bytes", 256, 4000, "mw_session_set refused (MW_ETOOBIG)")      \
    X(WS_MAX_MESSAGE, MW_WS_MAX_MESSAGE, "bytes", 125, 1LL << 40, "close 1009")                            \
    X(WS_SEND_BUFFER_BYTES, MW_WS_SEND_BUFFER_BYTES, "bytes", 1024, 1LL << 32, "send refused (MW_EAGAIN)") \
    X(WS_PING_MS, MW_WS_PING_MS, "ms", 0, MW__MAX_TIME, "ping, then close (0: none)")                      \
    X(WS_CLOSE_TIMEOUT_MS, MW_WS_CLOSE_TIMEOUT_MS, "ms", 0, MW__MAX_TIME, "close")                         \
    X(ACCESS_LOG, MW_ACCESS_LOG, "0/1/2", 0, 2, "(1: plain, 2: JSON lines)")                               \
    X(FORWARDED_HOPS, MW_FORWARDED_MAX_HOPS, "hops", 1, MW__HOPS_MAX, "the rest not read")                 \
    X(PG_POOL_SIZE, MW_PG_POOL_SIZE, "conns", 0, MW__NO_MAX, "")                                           \
    X(PG_ACQUIRE_TIMEOUT_MS, MW_PG_ACQUIRE_TIMEOUT_MS, "ms", 0, MW__MAX_TIME, "503")                       \
    X(PG_CONNECT_TIMEOUT_S, MW_PG_CONNECT_TIMEOUT_S, "s", 0, MW__MAX_TIME, "503")                          \
    X(PG_STATEMENT_TIMEOUT_MS, MW_PG_STATEMENT_TIMEOUT_MS, "ms", 0, MW__MAX_TIME, "504")                   \
    X(PG_RETRY_MS, MW_PG_RETRY_MS, "ms", 0, MW__MAX_TIME, "503 meanwhile")                                 \
    X(PG_PREPARE, MW_PG_PREPARE, "0/1", 0, MW__NO_MAX, "")                                                 \
    X(PG_SHARED, MW_PG_SHARED, "conns", 0, 16, "(0: off) see POSTGRESQL")                                  \
    X(PG_CONFLICT_RETRIES, MW_PG_CONFLICT_RETRIES, "runs", 0, 16, "500 (a deadlock, see POSTGRESQL)")      \
    X(DEBUG, MW_DEBUG, "0/1", 0, 1, "(1: see DEBUG MODE)")                                                 \
    X(VALIDATION_ERRORS, MW_MAX_VALIDATION_ERRORS, "errors", 1, MW__NO_MAX, "the rest not listed")         \
    X(THREADS, MW_THREADS_DEFAULT, "threads", 0, MW__NO_MAX, "")                                           \
    X(DEFER_ACCEPT_S, MW_DEFER_ACCEPT_S, "s", 0, MW__MAX_TIME, "(Linux; 0: off) see below")                \
    X(REUSEPORT, MW_REUSEPORT, "0/1", 0, 1, "see DEPLOYING")                                               \
    X(DRAIN_DELAY_MS, MW_DRAIN_DELAY_MS, "ms", 0, MW__MAX_TIME, "see DEPLOYING")

#define MW__LIMIT_ENUM(name, def, unit, min, max, exceeded) MW_LIMIT_##name,
typedef enum mw_limit { MW__LIMITS(MW__LIMIT_ENUM) MW_LIMIT_COUNT } mw_limit;
#define MW_LIMIT_PG_DEBUG MW_LIMIT_DEBUG /* the older name: debug mode is the whole app's now */

typedef struct mw_str {
    const char *ptr; /* not NUL-terminated */
    size_t len;
} mw_str;

typedef struct mw_app mw_app;
typedef struct mw_req mw_req;
typedef struct mw_res mw_res;
typedef struct mw_json mw_json;
typedef void (*mw_handler)(mw_req *rq, mw_res *rs);

/* app and routes */
mw_app *mw_app_new(void);
void mw_app_free(mw_app *app);
int mw_set_limit(mw_app *app, mw_limit which, long long value);
long long mw_get_limit(const mw_app *app, mw_limit which);
void mw_set_userdata(mw_app *app, void *data);
int mw_route(mw_app *app, const char *method, const char *pattern, mw_handler h);
int mw_get(mw_app *app, const char *pattern, mw_handler h);
int mw_post(mw_app *app, const char *pattern, mw_handler h);
int mw_put(mw_app *app, const char *pattern, mw_handler h);
int mw_patch(mw_app *app, const char *pattern, mw_handler h);
int mw_delete(mw_app *app, const char *pattern, mw_handler h);
int mw_any(mw_app *app, const char *pattern, mw_handler h);

/* logging: every line microweb writes goes through one function, replaceable */
typedef enum mw_log_level { MW_LOG_ERROR, MW_LOG_WARN, MW_LOG_INFO, MW_LOG_ACCESS, MW_LOG_TRACE } mw_log_level;
typedef void (*mw_log_fn)(void *arg, mw_log_level level, const char *line);
void mw_set_logger(mw_app *app, mw_log_fn fn, void *arg);
int mw_trace(mw_app *app, int on);

/* debug mode: error answers explain themselves (never in production) */
int mw_debug(mw_app *app, int on);

/* serving */
int mw_run(mw_app *app);
int mw_listen(mw_app *app, const char *host, int port);
int mw_listen_fd(mw_app *app, int fd);
int mw_serve(mw_app *app);
void mw_stop(mw_app *app);

/* deploying: liveness and readiness */
typedef const char *(*mw_ready_fn)(mw_req *rq, void *arg);
int mw_health(mw_app *app, const char *live_path, const char *ready_path);
int mw_ready_check(mw_app *app, mw_ready_fn fn, void *arg);
void mw_livez(mw_req *rq, mw_res *rs);
void mw_readyz(mw_req *rq, mw_res *rs);

/* request */
const char *mw_method(const mw_req *rq);
const char *mw_path(const mw_req *rq);
const char *mw_query(const mw_req *rq);
const char *mw_header(const mw_req *rq, const char *name);
int mw_header_next(const mw_req *rq, size_t *cursor, const char **name, const char **value);
const char *mw_target(const mw_req *rq);
const char *mw_http_version(const mw_req *rq);
const char *mw_client_addr(const mw_req *rq);
int mw_client_port(const mw_req *rq);
const char *mw_scheme(const mw_req *rq);
const char *mw_host(const mw_req *rq);
int mw_trusted_proxies(mw_app *app, const char *list); /* before serving: "127.0.0.1,10.0.0.0/8,::1" */
const char *mw_param(const mw_req *rq, const char *name);
mw_str mw_body(const mw_req *rq);
void *mw_userdata(const mw_req *rq);

/* request toolkit */
typedef enum mw_source { MW_QUERY, MW_FORM } mw_source;
typedef struct mw_cookie_opts {
    long long max_age;     /* seconds, sent when has_max_age (0 deletes the cookie) */
    int has_max_age;       /* 0: a session cookie */
    int secure;            /* 1: only over HTTPS */
    int allow_js;          /* 1: leave out HttpOnly, so page scripts can read it */
    const char *same_site; /* "Lax" (NULL), "Strict" or "None" (needs secure) */
    const char *path;      /* NULL: "/" */
    const char *domain;    /* NULL: this host only */
} mw_cookie_opts;
const char *mw_value(mw_req *rq, mw_source src, const char *name);
size_t mw_values(mw_req *rq, mw_source src, const char *name, const char **out, size_t max);
int mw_next_value(mw_req *rq, mw_source src, size_t *cursor, const char **name, const char **value);
const char *mw_cookie(mw_req *rq, const char *name);
typedef struct mw_part {
    const char *name;          /* the form field's name */
    const char *filename;      /* as the client sent it, or NULL */
    const char *safe_filename; /* its last component, safe to join to a directory; NULL without filename */
    const char *content_type;  /* the part's Content-Type, or NULL */
    const char *data;          /* the part's bytes, inside the request body (not a copy) */
    size_t len;
    size_t next_offset, count; /* iteration state: zero the struct before the first call */
} mw_part;
int mw_multipart_next(mw_req *rq, mw_part *part);
int mw_param_int(const mw_req *rq, const char *name, long long *out);
void *mw_req_alloc(mw_req *rq, size_t n);

/* response */
int mw_status(mw_res *rs, int status);
int mw_set_header(mw_res *rs, const char *name, const char *value);
int mw_write(mw_res *rs, const void *data, size_t len);
int mw_printf(mw_res *rs, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int mw_vprintf(mw_res *rs, const char *fmt, va_list ap);
int mw_send(mw_res *rs, int status, const char *content_type, const void *data, size_t len);
int mw_text(mw_res *rs, int status, const char *text);
int mw_send_json(mw_res *rs, int status, const char *json_text);
int mw_error(mw_res *rs, int status, const char *detail);
int mw_set_cookie(mw_res *rs, const char *name, const char *value, const mw_cookie_opts *opts);
int mw_res_status(const mw_res *rs);
int mw_redirect(mw_res *rs, int status, const char *location);
int mw_html_escape(mw_res *rs, const char *text);
int mw_html_printf(mw_res *rs, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* hooks around handlers, and per-route data */
#define MW_NEXT 0 /* a before hook lets the request go on */
#define MW_DONE 1 /* a before hook answered: the handler is skipped */
typedef int (*mw_before_fn)(mw_req *rq, mw_res *rs, void *arg);
typedef void (*mw_after_fn)(mw_req *rq, mw_res *rs, void *arg);
int mw_before(mw_app *app, const char *prefix, mw_before_fn fn, void *arg);
int mw_after(mw_app *app, const char *prefix, mw_after_fn fn, void *arg);
int mw_route_with(mw_app *app, const char *method, const char *pattern, mw_handler h, void *data);
void *mw_route_data(const mw_req *rq);
const char *mw_route_pattern(const mw_req *rq);

/* declared inputs and OpenAPI: one declaration validates requests and documents them */
typedef struct mw_response_doc {
    int status;              /* 200, 201, 204, 404, ...; 0 ends the list */
    const char *description; /* "The note"; NULL: the status's reason phrase */
    const char *schema;      /* a schema in the schema language, or NULL (no body) */
} mw_response_doc;
#define MW_OP_MAX_RESPONSES 8
typedef struct mw_op {
    const char *summary;     /* one line */
    const char *description; /* longer text (Markdown allowed, as OpenAPI says) */
    const char *tags;        /* "notes" or "notes, admin" */
    const char *query;       /* declared query parameters, a field list */
    const char *body;        /* the JSON request body's schema; the body is then required */
    mw_response_doc responses[MW_OP_MAX_RESPONSES];
    void *data; /* route data, as mw_route_with's */
} mw_op;
int mw_route_op(mw_app *app, const char *method, const char *pattern, mw_handler h, const mw_op *op);
int mw_schema(mw_app *app, const char *name, const char *schema);
long long mw_arg_int(const mw_req *rq, const char *name);
double mw_arg_num(const mw_req *rq, const char *name);
int mw_arg_bool(const mw_req *rq, const char *name);
mw_str mw_arg_str(const mw_req *rq, const char *name);
int mw_arg_present(const mw_req *rq, const char *name);
int mw_openapi(mw_app *app, const char *title, const char *version);

/* CORS, security headers */
typedef struct mw_cors_opts {
    const char *origins; /* "https://a.example, http://localhost:5173", or "*" (credentials off) */
    const char *methods; /* NULL: the methods routed for each path */
    const char *headers; /* request headers a page may send beyond the safelisted ones, or "*" */
    const char *expose;  /* response headers a page may read beyond the safelisted ones */
    int credentials;     /* 1: cookies and Authorization go with cross-origin requests */
    long max_age;        /* seconds a browser keeps a preflight's answer; 0: 600, -1: not sent */
} mw_cors_opts;
int mw_cors(mw_app *app, const char *prefix, const mw_cors_opts *opts);
typedef struct mw_security_opts {
    const char *referrer_policy; /* NULL: "strict-origin-when-cross-origin"; "": not sent */
    const char *frame_options;   /* NULL: "DENY" (and CSP frame-ancestors 'none'); "SAMEORIGIN"; "": not sent */
    const char *csp;             /* a whole Content-Security-Policy, replacing frame-ancestors alone */
    long long hsts_max_age;      /* seconds; 0: no Strict-Transport-Security (send it only over HTTPS) */
    int hsts_subdomains;         /* 1: includeSubDomains */
} mw_security_opts;
int mw_security_headers(mw_app *app, const mw_security_opts *opts);

/* sessions in a signed cookie, CSRF */
typedef struct mw_session_opts {
    const char *cookie;    /* NULL: "session" */
    long long max_age;     /* seconds a session lives after its last change; 0: 14 days */
    int secure;            /* 1: the cookie goes over HTTPS only */
    const char *same_site; /* NULL: "Lax" */
} mw_session_opts;
int mw_secret_key(mw_app *app, const char *key);
int mw_secret_key_fallback(mw_app *app, const char *old_key);
int mw_sessions(mw_app *app, const mw_session_opts *opts);
const char *mw_session_get(mw_req *rq, const char *key);
int mw_session_set(mw_req *rq, const char *key, const char *value);
void mw_session_clear(mw_req *rq);
int mw_csrf_protect(mw_app *app, int on);
int mw_csrf_trust(mw_app *app, const char *origin);
int mw_csrf_exempt(mw_app *app, const char *prefix);
const char *mw_csrf_token(mw_req *rq);
int mw_csrf_token_ok(mw_req *rq);
int mw_csrf_require_token(mw_req *rq, mw_res *rs, void *arg);

/* credentials */
int mw_basic_auth(mw_req *rq, const char **user, const char **password);
const char *mw_bearer_token(const mw_req *rq);
int mw_secret_equal(const char *a, const char *b);

/* static files */
typedef struct mw_static_opts {
    const char *cache_control; /* NULL: "no-cache" (revalidated each time: a 304 while unchanged); "": not sent */
    int dotfiles;              /* 1: names starting with '.' are served (by default 404) */
    int hard_links;            /* 1: files with more than one hard link are served (by default 404) */
} mw_static_opts;
int mw_static(mw_app *app, const char *prefix, const char *dir, const mw_static_opts *opts);
int mw_static_type(mw_app *app, const char *extension, const char *content_type);

/* bodies beyond a buffer */
int mw_flush(mw_res *rs);
int mw_send_file(mw_res *rs, int status, const char *content_type, int fd, long long offset, long long length);
typedef long (*mw_pull_fn)(void *arg, char *buf, size_t cap);
int mw_send_pull(mw_res *rs, int status, const char *content_type, mw_pull_fn fn, void *arg,
                 void (*release)(void *arg));
typedef struct mw_stream mw_stream;
mw_stream *mw_stream_open(mw_res *rs, int status, const char *content_type);
int mw_stream_write(mw_stream *s, const void *data, size_t len);
int mw_stream_printf(mw_stream *s, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int mw_stream_vprintf(mw_stream *s, const char *fmt, va_list ap);
void mw_stream_on_close(mw_stream *s, void (*fn)(mw_stream *s, void *arg), void *arg);
int mw_stream_every(mw_stream *s, long ms, void (*fn)(mw_stream *s, void *arg), void *arg);
void mw_stream_end(mw_stream *s);
void mw_stream_close(mw_stream *s);
mw_stream *mw_sse_open(mw_res *rs);
int mw_sse_send(mw_stream *s, const char *event, const char *id, const char *data);
int mw_sse_retry(mw_stream *s, long ms);
int mw_sse_comment(mw_stream *s, const char *text);
const char *mw_last_event_id(const mw_req *rq);

/* WebSocket */
typedef struct mw_ws mw_ws;
enum { MW_WS_TEXT = 1, MW_WS_BINARY = 2 };
typedef struct mw_ws_opts {
    void (*on_open)(mw_ws *ws, mw_req *rq);
    void (*on_message)(mw_ws *ws, const char *data, size_t len, int kind);
    void (*on_close)(mw_ws *ws, int code, const char *reason);
    const char *subprotocols; /* "chat.v2, chat": those it speaks; NULL: none */
    const char *origins;      /* "https://a.example, ...", "*" for any; NULL: the same origin only */
    void *data;               /* the route's data (mw_route_data, mw_ws_route_data) */
} mw_ws_opts;
int mw_websocket(mw_app *app, const char *pattern, const mw_ws_opts *opts);
int mw_ws_send(mw_ws *ws, const void *data, size_t len, int kind);
int mw_ws_send_text(mw_ws *ws, const char *text);
int mw_ws_close(mw_ws *ws, int code, const char *reason);
void mw_ws_set_data(mw_ws *ws, void *data);
void *mw_ws_data(const mw_ws *ws);
void *mw_ws_route_data(const mw_ws *ws);
const char *mw_ws_subprotocol(const mw_ws *ws);
mw_app *mw_ws_app(const mw_ws *ws);
mw_ws *mw_ws_hold(mw_ws *ws);
void mw_ws_release(mw_ws *ws);
int mw_ws_join(mw_ws *ws, const char *group);
int mw_ws_leave(mw_ws *ws, const char *group);
long mw_ws_broadcast(mw_app *app, const char *group, const void *data, size_t len, int kind);
long mw_ws_group_size(mw_app *app, const char *group);

/* the /docs page, which reads /openapi.json */
int mw_docs(mw_app *app);

/* JSON writer */
mw_json *mw_json_begin(mw_res *rs, int status);
int mw_json_object(mw_json *j);
int mw_json_array(mw_json *j);
int mw_json_close(mw_json *j);
int mw_json_key(mw_json *j, const char *key);
int mw_json_string(mw_json *j, const char *s);
int mw_json_stringn(mw_json *j, const char *s, size_t n);
int mw_json_int(mw_json *j, int64_t v);
int mw_json_double(mw_json *j, double v);
int mw_json_bool(mw_json *j, int v);
int mw_json_null(mw_json *j);
int mw_json_key_string(mw_json *j, const char *key, const char *s);
int mw_json_key_int(mw_json *j, const char *key, int64_t v);
int mw_json_key_double(mw_json *j, const char *key, double v);
int mw_json_key_bool(mw_json *j, const char *key, int v);
int mw_json_end(mw_json *j);
mw_json *mw_json_new(void);
const char *mw_json_text(mw_json *j, size_t *len);
void mw_json_free(mw_json *j);

/* in-process test client */
typedef struct mw_test_res {
    int status;       /* 0 when the server gave no complete answer */
    const char *head; /* status line and header fields of the first final response */
    size_t head_len;
    const char *body; /* its body */
    size_t body_len;
    const char *raw; /* every byte the server wrote (all responses), NUL-terminated */
    size_t raw_len;
} mw_test_res;
mw_test_res *mw_test_request(mw_app *app, const char *method, const char *target, const char *headers, const void *body,
                             size_t body_len);
mw_test_res *mw_test_raw(mw_app *app, const void *bytes, size_t n);
mw_test_res *mw_test_json(mw_app *app, const char *method, const char *target, const char *headers, const char *json);
mw_test_res *mw_test_requestv(mw_app *app, const char *method, const char *target, const char *const *headers,
                              const void *body, size_t body_len);
mw_test_res *mw_test_jsonv(mw_app *app, const char *method, const char *target, const char *const *headers,
                           const char *json);
struct mw_jv; /* the JSON reader's value, declared below */
const struct mw_jv *mw_test_body_json(mw_test_res *res);
const char *mw_test_header(const mw_test_res *res, const char *name);
void mw_test_free(mw_test_res *res);

/* JSON reader */
typedef enum mw_jv_type {
    MW_JV_NULL,
    MW_JV_FALSE,
    MW_JV_TRUE,
    MW_JV_NUMBER,
    MW_JV_STRING,
    MW_JV_ARRAY,
    MW_JV_OBJECT
} mw_jv_type;
typedef struct mw_jv mw_jv;
typedef struct mw_jv_doc mw_jv_doc;
const mw_jv *mw_req_json(mw_req *rq);
mw_jv_doc *mw_jv_parse(const char *text, size_t len, size_t *err_offset, const char **err_problem);
void mw_jv_free(mw_jv_doc *doc);
const mw_jv *mw_jv_root(const mw_jv_doc *doc);
mw_jv_type mw_jv_kind(const mw_jv *v);
mw_str mw_jv_string(const mw_jv *v);
size_t mw_jv_len(const mw_jv *v);
const mw_jv *mw_jv_get(const mw_jv *obj, const char *key);
const mw_jv *mw_jv_at(const mw_jv *arr, size_t i);
const mw_jv *mw_jv_path(const mw_jv *v, const char *path);
const mw_jv *mw_jv_first(const mw_jv *v);
const mw_jv *mw_jv_next(const mw_jv *v);
const char *mw_jv_key(const mw_jv *v);
const char *mw_jv_str(const mw_jv *v, const char *def);
long long mw_jv_int(const mw_jv *v, long long def);
double mw_jv_num(const mw_jv *v, double def);
int mw_jv_bool(const mw_jv *v, int def);
int mw_json_value(mw_json *j, const mw_jv *v);

/* templates (Mustache) */
int mw_template(mw_app *app, const char *name, const char *text);
int mw_templates(mw_app *app, const char *dir);
int mw_render(mw_res *rs, int status, const char *name, const mw_jv *view);
int mw_render_json(mw_res *rs, int status, const char *name, mw_json *view);

/* PostgreSQL (only with -DMICROWEB_WITH_PG, linked with -lpq) */
#ifdef MICROWEB_WITH_PG
#include <libpq-fe.h>
int mw_pg_configure(mw_app *app, const char *conninfo);
int mw_pg_setup(mw_app *app, const char *sql);
PGresult *mw_pg_query(mw_req *rq, const char *sql, int nparams, const char *const *params);
PGconn *mw_pg_conn(mw_req *rq);
int mw_pg_write_rows(mw_json *j, const PGresult *res);
int mw_pg_write_row(mw_json *j, const PGresult *res, int row);
int mw_pg_json(mw_req *rq, mw_res *rs, const char *sql, int nparams, const char *const *params);
int mw_pg_json_one(mw_req *rq, mw_res *rs, const char *sql, int nparams, const char *const *params);
void mw_pg_healthz(mw_req *rq, mw_res *rs);
typedef struct mw_pg_stmt { /* one statement of a batch */
    const char *sql;
    int nparams;
    const char *const *params;
} mw_pg_stmt;
int mw_pg_batch(mw_req *rq, const mw_pg_stmt *stmts, int n, PGresult **results);
#endif

#ifdef __cplusplus
}
#endif
#endif /* MICROWEB_H */

/* ========================================================================== */
/* IMPLEMENTATION                                                              */
/* ========================================================================== */
#ifdef MICROWEB_IMPLEMENTATION
/* The system headers come with "#define MICROWEB_IMPLEMENTATION" also where the
   implementation itself is compiled elsewhere (MICROWEB_IMPLEMENTATION_ONCE defined
   first, see QUICK START): the file's code may rely on them either way. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

/* An allocator defined in a file that links an implementation compiled elsewhere would
   never be used: it belongs to that compile. */
#if defined(MICROWEB_IMPLEMENTATION_ONCE) && !defined(MW__IMPLEMENTATION_HERE) && \
    (defined(MW_MALLOC) || defined(MW_REALLOC) || defined(MW_FREE))
#error "microweb: MW_MALLOC, MW_REALLOC and MW_FREE act where the implementation is compiled: give them there (-D)"
#endif

#ifndef MICROWEB_IMPLEMENTATION_ONCE
#define MICROWEB_IMPLEMENTATION_ONCE
#define MW__IMPLEMENTATION_HERE /* this file holds it (a second include finds ONCE set) */

/* what every file that includes the header refers to (see MW_VERSION): the proof that
   one file holds the implementation */
const char mw_define_MICROWEB_IMPLEMENTATION_in_exactly_one_c_file[] = MW_VERSION;

/* Every heap allocation of the implementation, from the poller up, goes through these
   three (defaults: <stdlib.h>, included above). */
#if !defined(MW_MALLOC) && !defined(MW_REALLOC) && !defined(MW_FREE)
#define MW_MALLOC(n) malloc(n)
#define MW_REALLOC(p, n) realloc((p), (n))
#define MW_FREE(p) free(p)
#elif !defined(MW_MALLOC) || !defined(MW_REALLOC) || !defined(MW_FREE)
#error "microweb: define all of MW_MALLOC, MW_REALLOC and MW_FREE, or none"
#endif

/* ---------------------------------------------------------------------------
   platform: sockets, poller, threads, clock. The only place with OS #ifdefs.
   --------------------------------------------------------------------------- */

/* getaddrinfo and its flags are POSIX: a strict -std=c99/c11 shows them only when a
   feature macro asks, and our _GNU_SOURCE is too late if a system header came first. */
#ifndef AI_PASSIVE
#error "microweb.h: POSIX is hidden; include microweb.h before system headers, or add -D_POSIX_C_SOURCE=200809L"
#endif

#ifdef __cplusplus
#define MW__C_LINKAGE extern "C"
#else
#define MW__C_LINKAGE
#endif

#if defined(__linux__)
#include <sys/sendfile.h>
#include <sys/syscall.h>
#endif
#ifdef __APPLE__
#include <xlocale.h> /* newlocale and uselocale when _POSIX_C_SOURCE narrows <locale.h> */
#endif

#if !MW_USE_POLL && defined(__linux__)
#define MW__POLLER_EPOLL 1
#include <sys/epoll.h>
#elif !MW_USE_POLL && (defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__) || \
                       defined(__DragonFly__))
#define MW__POLLER_KQUEUE 1
#include <sys/event.h>
#else
#define MW__POLLER_POLL 1
#endif

#ifndef MW__POLLER_EPOLL
#define MW__POLLER_EPOLL 0
#endif
#ifndef MW__POLLER_KQUEUE
#define MW__POLLER_KQUEUE 0
#endif
#ifndef MW__POLLER_POLL
#define MW__POLLER_POLL 0
#endif

/* accept4 is a GNU extension. When the implementation file included a system header
   before microweb.h, _GNU_SOURCE came too late and glibc hid the declaration. */
#if defined(__linux__) && defined(__GLIBC__) && !defined(__USE_GNU)
MW__C_LINKAGE int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
#endif
/* syscall (openat2 has no glibc wrapper before 2.36) hides the same way, behind
   _DEFAULT_SOURCE, when a strict -D_POSIX_C_SOURCE came first. */
#if defined(__linux__) && defined(__GLIBC__) && !defined(__USE_MISC)
MW__C_LINKAGE long syscall(long number, ...);
#endif

#ifdef MSG_NOSIGNAL
#define MW__SEND_FLAGS MSG_NOSIGNAL /* a peer that went away must not raise SIGPIPE */
#else
#define MW__SEND_FLAGS 0 /* SO_NOSIGPIPE is set on each socket instead */
#endif

/* What is sent with more of it to come: the kernel holds a part segment until the rest
   arrives, one packet fewer for both ends. Before the FIN of a connection that closes
   after its answer (mw__conn_close sends the FIN with shutdown(SHUT_WR) before close(),
   which could otherwise reset the held bytes away), and before the bytes of a file of
   up to MW__MORE_FILE_MAX, which sendfile then pushes out with the head (for a 1 MiB
   file, holding the head back cost more CPU than it saved). */
#define MW__MORE_FILE_MAX 65536
#ifdef MSG_MORE
#define MW__SEND_MORE MSG_MORE
#else
#define MW__SEND_MORE 0
#endif

/* For a helper an optional part of the header may leave unused. */
#if defined(__GNUC__) || defined(__clang__)
#define MW__MAYBE_UNUSED __attribute__((unused))
#else
#define MW__MAYBE_UNUSED
#endif

#define MW__LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define MW__STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

static long long mw__now_ms(void) {
    struct timespec ts;
#ifdef CLOCK_MONOTONIC_COARSE
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* deadlines need ms, not ns: the cheap clock */
#else
    clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int mw__set_nonblocking(int fd) {
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return MW_EIO;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return 0;
}

static int mw__make_pipe(int fds[2]) {
    if (pipe(fds) != 0) return MW_EIO;
    mw__set_nonblocking(fds[0]);
    mw__set_nonblocking(fds[1]);
    return 0;
}

/* A stopping server refuses new connections at once (and resets those waiting in the
   backlog, which no answer was owed yet) rather than letting them queue until the end:
   Linux does this for shutdown() of a listening socket. Elsewhere the listener just
   stops being armed, and is closed when serving ends. */
static void mw__listener_refuse(int fd) {
#if defined(__linux__)
    shutdown(fd, SHUT_RD);
#else
    (void)fd;
#endif
}

/* Bytes sent on the socket that the client has not acknowledged yet: while some
   remain, the client is still reading (and may still be sending). 0 where unknown. */
static long mw__unacked_bytes(int fd) {
#if defined(__linux__) && defined(TIOCOUTQ)
    int n = 0;
    return ioctl(fd, TIOCOUTQ, &n) == 0 ? n : 0;
#elif defined(SO_NWRITE)
    int n = 0;
    socklen_t len = sizeof n;
    return getsockopt(fd, SOL_SOCKET, SO_NWRITE, &n, &len) == 0 ? n : 0;
#elif defined(FIONWRITE) /* FreeBSD, NetBSD: the bytes in the send buffer */
    int n = 0;
    return ioctl(fd, FIONWRITE, &n) == 0 ? n : 0;
#else
    (void)fd;
    return 0;
#endif
}

/* n bytes from the kernel's random source, for secrets and CSRF masks. The device is
   POSIX-portable and its reads never block once the system has booted. */
static int mw__random_bytes(void *buf, size_t n) {
    unsigned char *p = (unsigned char *)buf;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return MW_EIO;
    while (n) {
        ssize_t got = read(fd, p, n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        p += got;
        n -= (size_t)got;
    }
    close(fd);
    return n ? MW_EIO : 0;
}

/* Sends up to n bytes of the file `in` from *offset to the socket `out`, advancing
   *offset: sendfile() where the kernel copies for us, pread() and send() elsewhere.
   Returns the bytes sent, 0 at the end of the file, or -1 with errno. */
static long mw__sendfile(int out, int in, unsigned long long *offset, size_t n) {
#if defined(__linux__)
    off_t off = (off_t)*offset;
    ssize_t sent = sendfile(out, in, &off, n);
    if (sent > 0) *offset = (unsigned long long)off;
    return (long)sent;
#else
    char buf[16384];
    ssize_t got = pread(in, buf, n < sizeof buf ? n : sizeof buf, (off_t)*offset), sent;
    if (got <= 0) return (long)got;
    sent = send(out, buf, (size_t)got, MW__SEND_FLAGS);
    if (sent > 0) *offset += (unsigned long long)sent;
    return (long)sent;
#endif
}

/* A file's modification time in ns, for its entity tag. */
static unsigned long long mw__file_mtime_ns(const struct stat *st) {
#if defined(__APPLE__)
    return (unsigned long long)st->st_mtimespec.tv_sec * 1000000000u + (unsigned long long)st->st_mtimespec.tv_nsec;
#else
    return (unsigned long long)st->st_mtim.tv_sec * 1000000000u + (unsigned long long)st->st_mtim.tv_nsec;
#endif
}

/* A folder opened only to look names up in it needs search permission alone. */
#if defined(O_SEARCH)
#define MW__O_SEARCH O_SEARCH
#elif defined(O_PATH)
#define MW__O_SEARCH O_PATH
#else
#define MW__O_SEARCH O_RDONLY
#endif

/* openat2 (Linux 5.6) opens a name beneath a folder's descriptor, never outside it:
   static files use it where the kernel has it. */
#if MW_USE_OPENAT2 && defined(__linux__) && defined(SYS_openat2)
#define MW__HAVE_OPENAT2 1
struct mw__open_how { /* struct open_how of <linux/openat2.h> */
    uint64_t flags, mode, resolve;
};
#define MW__RESOLVE_NO_MAGICLINKS 0x02 /* /proc/self/fd/... names a file anywhere */
#define MW__RESOLVE_BENEATH 0x08       /* "..", absolute names and symlinks may not leave dirfd */
static int mw__openat2_missing;        /* the kernel (or a seccomp filter) refused the call */

/* -2 when the call itself is missing. EAGAIN (a rename raced a ".." the kernel met in
   a link's target) is tried again, as openat2(2) asks. */
static int mw__openat2_beneath(int root, const char *rel, int flags) {
    struct mw__open_how how;
    long fd;
    int tries = 0;
    if (MW__LOAD(&mw__openat2_missing)) return -2;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)flags;
    how.resolve = MW__RESOLVE_BENEATH | MW__RESOLVE_NO_MAGICLINKS;
    do fd = syscall(SYS_openat2, root, rel, &how, sizeof how);
    while (fd < 0 && errno == EAGAIN && ++tries < 4);
    if (fd < 0 && errno == ENOSYS) {
        MW__STORE(&mw__openat2_missing, 1);
        return -2;
    }
    return (int)fd;
}

/* Whether openat2 works here, asked once per mount: an old kernel says ENOSYS, a
   sandbox that filters it EPERM. Later, EPERM is an answer about one file. */
static void mw__openat2_probe(int root) {
    int fd = mw__openat2_beneath(root, ".", O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    if (fd >= 0) close(fd);
    else if (fd == -1 && errno == EPERM) MW__STORE(&mw__openat2_missing, 1);
}
#else
#define MW__HAVE_OPENAT2 0
#endif

/* The poller: one readiness set shared by all workers. An fd is armed one of three ways:
   one-shot (disarmed once its event is delivered, until the worker that took it re-arms
   it), persistent (level-triggered: reported while ready), or edge (stays armed, each new
   readiness reported once: epoll's EPOLLET). Connections are persistent with one worker,
   edge with several where the poller has it (and the listener is TCP): either way a
   request costs no re-arming call; the connection's owner protocol (mw__conn_enter)
   keeps two workers apart. */
#define MW__EV_READ 1u
#define MW__EV_WRITE 2u
#define MW__EV_PERSIST 4u /* stays armed, level-triggered (wake-up pipes, one worker's connections) */
#define MW__EV_EDGE 16u   /* stays armed, edge-triggered (several workers' connections, epoll only) */
#define MW__EV_URGENT 32u /* reported with READ: TCP urgent data, where a recv stops short (edge arming) */

typedef struct mw__event {
    uintptr_t tag; /* what the fd was registered with: a connection's tag, or the listener's, ... */
    unsigned events;
} mw__event;

#if MW__POLLER_EPOLL
typedef struct mw__poller {
    int fd;
} mw__poller;

static int mw__poller_open(mw__poller *p) {
    p->fd = epoll_create1(EPOLL_CLOEXEC);
    return p->fd < 0 ? MW_EIO : 0;
}
static void mw__poller_close(mw__poller *p) { close(p->fd); }

static int mw__poller_ctl(mw__poller *p, int op, int fd, uintptr_t tag, unsigned ev) {
    struct epoll_event e;
    memset(&e, 0, sizeof e);
    e.events = ((ev & MW__EV_READ) ? (unsigned)EPOLLIN : 0u) | ((ev & MW__EV_WRITE) ? (unsigned)EPOLLOUT : 0u) |
               ((ev & (MW__EV_PERSIST | MW__EV_EDGE)) ? 0u : (unsigned)EPOLLONESHOT) |
               ((ev & MW__EV_EDGE) ? (unsigned)(EPOLLET | EPOLLPRI) : 0u);
    e.data.u64 = tag;
    return epoll_ctl(p->fd, op, fd, &e) == 0 ? 0 : MW_EIO;
}
static int mw__poller_add(mw__poller *p, int fd, uintptr_t tag, unsigned ev) {
    return mw__poller_ctl(p, EPOLL_CTL_ADD, fd, tag, ev);
}
static int mw__poller_rearm(mw__poller *p, int fd, uintptr_t tag, unsigned ev) {
    return mw__poller_ctl(p, EPOLL_CTL_MOD, fd, tag, ev);
}
static void mw__poller_del(mw__poller *p, int fd) {
    (void)p; /* close() removes the fd from the epoll set: no syscall needed */
    (void)fd;
}
static int mw__poller_wait(mw__poller *p, mw__event *out, int max, int timeout_ms) {
    struct epoll_event ev[64];
    int i, n;
    if (max > 64) max = 64;
    n = epoll_wait(p->fd, ev, max, timeout_ms);
    for (i = 0; i < n; i++) {
        out[i].tag = (uintptr_t)ev[i].data.u64;
        out[i].events = ((ev[i].events & (EPOLLIN | EPOLLPRI | EPOLLHUP | EPOLLERR)) ? MW__EV_READ : 0u) |
                        ((ev[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) ? MW__EV_WRITE : 0u) |
                        ((ev[i].events & EPOLLPRI) ? MW__EV_URGENT : 0u);
    }
    return n < 0 ? 0 : n;
}

#elif MW__POLLER_KQUEUE
typedef struct mw__poller {
    int fd;
} mw__poller;

static int mw__poller_open(mw__poller *p) {
    p->fd = kqueue();
    return p->fd < 0 ? MW_EIO : 0;
}
static void mw__poller_close(mw__poller *p) { close(p->fd); }

/* kqueue keeps one filter per direction: arm the wanted one, drop the other. */
static int mw__poller_add(mw__poller *p, int fd, uintptr_t tag, unsigned ev) {
    struct kevent ch[2];
    void *ptr = (void *)tag;
    unsigned short flags = (unsigned short)(EV_ADD | ((ev & MW__EV_PERSIST) ? 0 : EV_ONESHOT));
    int n = 0;
    if (ev & MW__EV_READ) EV_SET(&ch[n++], fd, EVFILT_READ, flags, 0, 0, ptr);
    if (ev & MW__EV_WRITE) EV_SET(&ch[n++], fd, EVFILT_WRITE, flags, 0, 0, ptr);
    return kevent(p->fd, ch, n, NULL, 0, NULL) == 0 ? 0 : MW_EIO;
}
static int mw__poller_rearm(mw__poller *p, int fd, uintptr_t tag, unsigned ev) {
    struct kevent del;
    EV_SET(&del, fd, (ev & MW__EV_WRITE) ? EVFILT_READ : EVFILT_WRITE, EV_DELETE, 0, 0, NULL);
    kevent(p->fd, &del, 1, NULL, 0, NULL); /* ENOENT when it already fired: fine */
    return mw__poller_add(p, fd, tag, ev);
}
static void mw__poller_del(mw__poller *p, int fd) {
    (void)p; /* close() removes every filter of the fd */
    (void)fd;
}
static int mw__poller_wait(mw__poller *p, mw__event *out, int max, int timeout_ms) {
    struct kevent ev[64];
    struct timespec ts, *tsp = NULL;
    int i, n;
    if (max > 64) max = 64;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tsp = &ts;
    }
    n = kevent(p->fd, NULL, 0, ev, max, tsp);
    for (i = 0; i < n; i++) {
        out[i].tag = (uintptr_t)ev[i].udata;
        out[i].events = ev[i].filter == EVFILT_WRITE ? MW__EV_WRITE : MW__EV_READ;
    }
    return n < 0 ? 0 : n;
}

#else /* poll(): one thread at a time polls the whole table */
typedef struct mw__poll_slot {
    uintptr_t tag;
    unsigned events; /* 0 = disarmed or unused */
} mw__poll_slot;

typedef struct mw__poller {
    pthread_mutex_t table_lock;  /* guards slots */
    pthread_mutex_t leader_lock; /* one thread in poll() at a time */
    mw__poll_slot *slots;        /* indexed by fd */
    size_t nslots;
    struct pollfd *scratch; /* the leader's copy of the armed set */
    size_t nscratch;
    int interrupt[2]; /* a re-arm wakes the leader so it polls the new set */
} mw__poller;

static int mw__poller_open(mw__poller *p) {
    memset(p, 0, sizeof *p);
    if (mw__make_pipe(p->interrupt) != 0) return MW_EIO;
    pthread_mutex_init(&p->table_lock, NULL);
    pthread_mutex_init(&p->leader_lock, NULL);
    return 0;
}
static void mw__poller_close(mw__poller *p) {
    close(p->interrupt[0]);
    close(p->interrupt[1]);
    pthread_mutex_destroy(&p->table_lock);
    pthread_mutex_destroy(&p->leader_lock);
    MW_FREE(p->slots);
    MW_FREE(p->scratch);
}
static int mw__poller_set(mw__poller *p, int fd, uintptr_t tag, unsigned ev) {
    int rc = 0;
    char b = 1;
    pthread_mutex_lock(&p->table_lock);
    if ((size_t)fd >= p->nslots) {
        size_t n = p->nslots ? p->nslots : 64;
        mw__poll_slot *s;
        while (n <= (size_t)fd) n *= 2;
        s = (mw__poll_slot *)MW_REALLOC(p->slots, n * sizeof *s);
        if (!s) {
            rc = MW_ENOMEM;
        } else {
            memset(s + p->nslots, 0, (n - p->nslots) * sizeof *s);
            p->slots = s;
            p->nslots = n;
        }
    }
    if (rc == 0) {
        p->slots[fd].tag = tag;
        p->slots[fd].events = ev;
    }
    pthread_mutex_unlock(&p->table_lock);
    if (write(p->interrupt[1], &b, 1) < 0) { /* full pipe: the leader wakes anyway */
    }
    return rc;
}
static int mw__poller_add(mw__poller *p, int fd, uintptr_t tag, unsigned ev) { return mw__poller_set(p, fd, tag, ev); }
static int mw__poller_rearm(mw__poller *p, int fd, uintptr_t tag, unsigned ev) {
    return mw__poller_set(p, fd, tag, ev);
}
static void mw__poller_del(mw__poller *p, int fd) { mw__poller_set(p, fd, 0, 0); }

/* Copies the armed set into scratch (interrupt pipe first); returns its size or -1. */
static int mw__poller_snapshot(mw__poller *p) {
    size_t fd, n = 1;
    pthread_mutex_lock(&p->table_lock);
    if (p->nscratch < p->nslots + 1) {
        struct pollfd *s = (struct pollfd *)MW_REALLOC(p->scratch, (p->nslots + 1) * sizeof *s);
        if (!s) {
            pthread_mutex_unlock(&p->table_lock);
            return -1;
        }
        p->scratch = s;
        p->nscratch = p->nslots + 1;
    }
    p->scratch[0].fd = p->interrupt[0];
    p->scratch[0].events = POLLIN;
    for (fd = 0; fd < p->nslots; fd++) {
        unsigned ev = p->slots[fd].events;
        if (!ev) continue;
        p->scratch[n].fd = (int)fd;
        p->scratch[n].events = (short)(((ev & MW__EV_READ) ? POLLIN : 0) | ((ev & MW__EV_WRITE) ? POLLOUT : 0));
        p->scratch[n].revents = 0;
        n++;
    }
    pthread_mutex_unlock(&p->table_lock);
    return (int)n;
}

/* Claims ready fds that are still armed, disarming one-shot ones. */
static int mw__poller_claim(mw__poller *p, int n, mw__event *out, int max) {
    int i, got = 0;
    pthread_mutex_lock(&p->table_lock);
    for (i = 1; i < n && got < max; i++) {
        short re = p->scratch[i].revents;
        int fd = p->scratch[i].fd;
        mw__poll_slot *s = &p->slots[fd];
        if (!re || !s->events) continue;
        out[got].tag = s->tag;
        out[got].events = ((re & (POLLIN | POLLHUP | POLLERR)) ? MW__EV_READ : 0u) |
                          ((re & (POLLOUT | POLLHUP | POLLERR)) ? MW__EV_WRITE : 0u);
        got++;
        if (!(s->events & MW__EV_PERSIST)) s->events = 0;
    }
    pthread_mutex_unlock(&p->table_lock);
    return got;
}

static int mw__poller_wait(mw__poller *p, mw__event *out, int max, int timeout_ms) {
    int got = 0;
    long long until = timeout_ms >= 0 ? mw__now_ms() + timeout_ms : -1;
    pthread_mutex_lock(&p->leader_lock);
    while (!got) {
        char drain[64];
        int left = until < 0 ? -1 : (int)(until - mw__now_ms());
        int n = mw__poller_snapshot(p);
        if (n < 0 || (until >= 0 && left <= 0)) break;
        if (poll(p->scratch, (nfds_t)n, left) <= 0) continue;
        while (read(p->interrupt[0], drain, sizeof drain) > 0) {}
        got = mw__poller_claim(p, n, out, max);
    }
    pthread_mutex_unlock(&p->leader_lock);
    return got;
}
#endif

/* JSON writes and reads numbers with a '.', whatever LC_NUMERIC the program chose
   (under de_DE, printf writes 0.5 as "0,5" and strtod stops at "0.5"'s '.'). The
   conversions run under the C locale, switched for the calling thread only
   (uselocale), so the program's locale and other threads are left as they are.
   glibc answers newlocale(LC_ALL_MASK, "C") with its built-in locale: nothing to free. */
static pthread_once_t mw__c_locale_once = PTHREAD_ONCE_INIT;
static locale_t mw__c_locale;
static void mw__c_locale_make(void) { mw__c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

/* Switches this thread to the C locale; returns what mw__c_numbers_end restores. */
static locale_t mw__c_numbers_begin(void) {
    pthread_once(&mw__c_locale_once, mw__c_locale_make);
    return mw__c_locale ? uselocale(mw__c_locale) : (locale_t)0;
}
static void mw__c_numbers_end(locale_t previous) {
    if (previous) uselocale(previous);
}

static double mw__strtod(const char *s) {
    locale_t previous = mw__c_numbers_begin();
    double v = strtod(s, NULL);
    mw__c_numbers_end(previous);
    return v;
}

/* ---------------------------------------------------------------------------
   memory: growable buffers and the per-request arena (the allocation macros open
   the implementation, so the poller can use them too)
   --------------------------------------------------------------------------- */
typedef struct mw__buf {
    char *data;
    size_t len, cap;
} mw__buf;

/* Makes room for `extra` more bytes; growth doubles so appends are amortised O(1). */
static int mw__buf_reserve(mw__buf *b, size_t extra) {
    size_t want = b->len + extra, cap = b->cap ? b->cap : 256;
    char *d;
    if (want < b->len) return MW_ENOMEM; /* overflow */
    if (want <= b->cap) return 0;
    while (cap < want) cap *= 2;
    d = (char *)MW_REALLOC(b->data, cap);
    if (!d) return MW_ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}
static int mw__buf_append(mw__buf *b, const void *p, size_t n) {
    if (n > b->cap - b->len && mw__buf_reserve(b, n) != 0) return MW_ENOMEM;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}
static int mw__buf_puts(mw__buf *b, const char *s) { return mw__buf_append(b, s, strlen(s)); }
/* A string literal, measured at compile time. */
#define MW__PUT_LIT(b, lit) mw__buf_append((b), (lit), sizeof(lit) - 1)
static void mw__buf_free(mw__buf *b) {
    MW_FREE(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
/* Gives back a buffer that one large request grew, so a worker does not keep it forever. */
static void mw__buf_trim(mw__buf *b, size_t keep) {
    b->len = 0;
    if (b->cap > keep) mw__buf_free(b);
}
/* v in decimal at out (20 bytes at most, no NUL); returns the length. */
static size_t mw__format_u64(char *out, unsigned long long v) {
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(out, tmp + i, sizeof tmp - i);
    return sizeof tmp - i;
}

/* v in decimal at out (20 bytes at most, no NUL), a '-' first when negative: the
   magnitude is taken unsigned, so the most negative value has one too. */
static size_t mw__format_i64(char *out, long long v) {
    if (v >= 0) return mw__format_u64(out, (unsigned long long)v);
    *out = '-';
    return 1 + mw__format_u64(out + 1, 0 - (unsigned long long)v);
}

static int mw__buf_put_u64(mw__buf *b, unsigned long long v) {
    if (mw__buf_reserve(b, 20) != 0) return MW_ENOMEM;
    b->len += mw__format_u64(b->data + b->len, v);
    return 0;
}

/* A per-request arena: blocks are kept from one request to the next, so once warm it
   allocates nothing; memory handed out lives until the request ends. */
#define MW__ARENA_BLOCK 4096
#define MW__ARENA_KEEP 65536 /* bytes of blocks kept after a request that needed more */

typedef struct mw__block {
    struct mw__block *next;
    size_t size, used; /* the data follows the header */
} mw__block;

typedef struct mw__arena {
    mw__block *first, *cur, *last;
} mw__arena;

static void *mw__arena_alloc(mw__arena *a, size_t n) {
    mw__block *b;
    if (n > ((size_t)-1) / 2) return NULL;
    n = (n + 7u) & ~(size_t)7u; /* 8-byte alignment: the block header is three words */
    for (b = a->cur; b; b = b->next) {
        if (b->size - b->used >= n) {
            void *p = (char *)(b + 1) + b->used;
            b->used += n;
            a->cur = b;
            return p;
        }
    }
    b = (mw__block *)MW_MALLOC(sizeof *b + (n > MW__ARENA_BLOCK ? n : MW__ARENA_BLOCK));
    if (!b) return NULL;
    b->size = n > MW__ARENA_BLOCK ? n : MW__ARENA_BLOCK;
    b->used = n;
    b->next = NULL;
    if (a->last) a->last->next = b;
    else a->first = b;
    a->last = a->cur = b;
    return b + 1;
}

static void mw__blocks_free(mw__block *b) {
    while (b) {
        mw__block *next = b->next;
        MW_FREE(b);
        b = next;
    }
}

/* Empties the arena for the next request, giving back what one large request grew. */
static void mw__arena_reset(mw__arena *a) {
    mw__block *b;
    size_t total = 0;
    for (b = a->first; b; b = b->next) {
        b->used = 0;
        total += b->size;
    }
    if (total > MW__ARENA_KEEP && a->first) {
        mw__blocks_free(a->first->next);
        a->first->next = NULL;
        a->last = a->first;
    }
    a->cur = a->first;
}

static void mw__arena_free(mw__arena *a) {
    mw__blocks_free(a->first);
    a->first = a->cur = a->last = NULL;
}

/* A NUL-terminated copy of n bytes, in the arena. */
static char *mw__arena_strndup(mw__arena *a, const char *s, size_t n) {
    char *d = (char *)mw__arena_alloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* ---------------------------------------------------------------------------
   log: the one path every line takes. While serving, lines queue in memory and a
   thread of their own writes them, so a slow stderr never holds a worker and lines
   never interleave; a full queue drops lines and says how many.
   --------------------------------------------------------------------------- */
#define MW__LOG_LINE_MAX 4096       /* bytes of one line; longer lines are cut */
#define MW__LOG_QUEUE_BYTES 1048576 /* bytes of lines waiting for the log thread */

typedef struct mw__logger {
    mw_log_fn fn; /* NULL: stderr */
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    mw__buf queue; /* records: level byte, the line, NUL */
    size_t dropped;
    int running, stopping;
    pthread_t thread;
} mw__logger;

static void mw__logger_init(mw__logger *lg) {
    memset(lg, 0, sizeof *lg);
    pthread_mutex_init(&lg->lock, NULL);
    pthread_cond_init(&lg->wake, NULL);
}

/* A trace account (several lines, each ended by its newline) to stderr as it is: one
   write() unless stderr takes less at once. */
static void mw__log_write_all(const char *p, size_t n) {
    while (n) {
        ssize_t k = write(2, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return; /* nowhere to report */
        p += k;
        n -= (size_t)k;
    }
}

/* Hands one line to its destination: the application's function, or stderr with one
   write() so it cannot be split by another thread's line. */
static void mw__log_emit(const mw__logger *lg, int level, const char *line) {
    char out[MW__LOG_LINE_MAX + 16];
    int n;
    if (lg->fn) {
        lg->fn(lg->arg, (mw_log_level)level, line);
        return;
    }
    if (level == MW_LOG_TRACE) {
        mw__log_write_all(line, strlen(line));
        return;
    }
    n = snprintf(out, sizeof out, "%s%s\n", level == MW_LOG_ACCESS ? "" : "microweb: ", line);
    if (n > 0 && write(2, out, (size_t)n < sizeof out ? (size_t)n : sizeof out - 1) < 0) { /* nowhere to report */
    }
}

static void *mw__logger_main(void *arg) {
    mw__logger *lg = (mw__logger *)arg;
    mw__buf batch;
    memset(&batch, 0, sizeof batch);
    pthread_mutex_lock(&lg->lock);
    for (;;) {
        size_t dropped, off;
        mw__buf swap;
        while (!lg->queue.len && !lg->dropped && !lg->stopping) pthread_cond_wait(&lg->wake, &lg->lock);
        if (!lg->queue.len && !lg->dropped) break;
        swap = lg->queue;
        lg->queue = batch;
        batch = swap;
        dropped = lg->dropped;
        lg->dropped = 0;
        pthread_mutex_unlock(&lg->lock);
        for (off = 0; off < batch.len; off += strlen(batch.data + off + 1) + 2)
            mw__log_emit(lg, batch.data[off], batch.data + off + 1);
        if (dropped) {
            char note[80];
            snprintf(note, sizeof note, "%lu log lines dropped: the log output is too slow", (unsigned long)dropped);
            mw__log_emit(lg, MW_LOG_WARN, note);
        }
        batch.len = 0;
        pthread_mutex_lock(&lg->lock);
    }
    pthread_mutex_unlock(&lg->lock);
    mw__buf_free(&batch);
    return NULL;
}

static void mw__logger_start(mw__logger *lg) {
    lg->stopping = 0;
    lg->running = pthread_create(&lg->thread, NULL, mw__logger_main, lg) == 0;
}

/* Writes what is queued, then logs directly again. */
static void mw__logger_stop(mw__logger *lg) {
    if (!lg->running) return;
    pthread_mutex_lock(&lg->lock);
    lg->stopping = 1;
    pthread_cond_signal(&lg->wake);
    pthread_mutex_unlock(&lg->lock);
    pthread_join(lg->thread, NULL);
    lg->running = 0;
}

static void mw__logger_free(mw__logger *lg) {
    mw__logger_stop(lg);
    mw__buf_free(&lg->queue);
    pthread_mutex_destroy(&lg->lock);
    pthread_cond_destroy(&lg->wake);
}

static void mw__log_line(mw__logger *lg, int level, const char *line, size_t n) {
    const char *nul = (const char *)memchr(line, 0, n);
    if (nul) n = (size_t)(nul - line); /* records are NUL-terminated in the queue */
    if (!lg->running) {
        mw__log_emit(lg, level, line);
        return;
    }
    pthread_mutex_lock(&lg->lock);
    if (lg->queue.len + n + 2 > MW__LOG_QUEUE_BYTES || mw__buf_reserve(&lg->queue, n + 2) != 0) {
        lg->dropped++;
    } else {
        lg->queue.data[lg->queue.len++] = (char)level;
        mw__buf_append(&lg->queue, line, n + 1);
        if (lg->queue.len == n + 2) pthread_cond_signal(&lg->wake); /* the first line wakes the thread */
    }
    pthread_mutex_unlock(&lg->lock);
}

static void mw__logv(mw__logger *lg, int level, const char *fmt, va_list ap) {
    char line[MW__LOG_LINE_MAX];
    int n = vsnprintf(line, sizeof line, fmt, ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) {
        memcpy(line + sizeof line - 4, "...", 4);
        n = (int)sizeof line - 1;
    }
    mw__log_line(lg, level, line, (size_t)n);
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static void
mw__log(mw__logger *lg, int level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    mw__logv(lg, level, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------------------
   HTTP/1.1 parser: pure (no I/O, no allocation). Fields are slices of the buffer.
   --------------------------------------------------------------------------- */
typedef struct mw__limits {
    long long v[MW_LIMIT_COUNT];
} mw__limits;

static void mw__limits_default(mw__limits *l) {
#define MW__LIMIT_DEFAULT(name, def, unit, min, max, exceeded) l->v[MW_LIMIT_##name] = (def);
    MW__LIMITS(MW__LIMIT_DEFAULT)
#undef MW__LIMIT_DEFAULT
}

typedef struct mw__field {
    const char *name, *value;
    size_t name_len, value_len;
} mw__field;

typedef struct mw__head {
    const char *method, *target, *path, *query;
    size_t method_len, target_len, path_len, query_len;
    const char *authority; /* an absolute-form target's host[:port], else NULL */
    size_t authority_len;
    int minor;                /* HTTP/1.<minor> */
    long long content_length; /* -1 when absent */
    int chunked, keep_alive, expect_continue;
    size_t nfields;
    const char *error; /* why the head was refused, for the error body */
    mw__field fields[MW_MAX_HEADERS];
} mw__head;

/* Where the scan for the end of a head got to, so more bytes resume it without rescanning. */
typedef struct mw__head_scan {
    size_t pos;        /* next byte to look at */
    size_t skip;       /* empty lines before the request line (RFC 9112 §2.2) */
    size_t line_start; /* start of the line being scanned */
    size_t first_line; /* length of the request line incl. CRLF, 0 until seen */
} mw__head_scan;

/* tchar per RFC 9110 §5.6.2 (ALPHA, DIGIT and !#$%&'*+-.^_`|~): the characters of
   methods and header names, as a table so the test is one load. */
static int mw__is_tchar(unsigned char c) {
    static const unsigned char tchar[256] = {
        /* bytes from 128 on are none */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
        0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0};
    return tchar[c];
}

static int mw__lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* Case-insensitive comparison of a slice with a lower-case literal. */
static int mw__ieq(const char *s, size_t n, const char *lower) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!lower[i] || mw__lower((unsigned char)s[i]) != lower[i]) return 0;
    return lower[n] == '\0';
}

static int mw__hex_value(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = mw__lower(c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* Finds the blank line that ends a request head in buf[0..len), resuming where the
   previous call on the same scan stopped. Returns the head length, 0 when more bytes
   are needed, or -status: 400 for a bare LF, 414/431 when the line or the header
   section outgrows its limit (checked before the head is complete, so a client cannot
   make us buffer more than the limits). */
static long mw__scan_head(mw__head_scan *s, const char *buf, size_t len, const mw__limits *lim) {
    size_t line_max = (size_t)lim->v[MW_LIMIT_REQUEST_LINE], fields_max = (size_t)lim->v[MW_LIMIT_HEADER_BYTES];
    while (s->pos < len) {
        const char *lf = (const char *)memchr(buf + s->pos, '\n', len - s->pos);
        size_t i, line_len;
        if (!lf) {
            s->pos = len;
            break;
        }
        i = (size_t)(lf - buf);
        /* RFC 9112 §2.2: a bare LF could be read as a line end by one party and not by
           another; we accept CRLF only. */
        if (i == 0 || buf[i - 1] != '\r') return -400;
        line_len = i + 1 - s->line_start;
        s->pos = s->line_start = i + 1;
        if (!s->first_line) {
            /* empty lines before the request line are ignored, but count toward its limit */
            if (i + 1 > line_max) return line_len == 2 ? -400 : -414;
            if (line_len == 2) {
                s->skip = i + 1;
                continue;
            }
            s->first_line = line_len;
        } else if (line_len == 2) {
            if (i + 1 - s->skip - s->first_line > fields_max + 2) return -431;
            return (long)(i + 1);
        }
    }
    if (!s->first_line) {
        if (len > line_max) return -414;
    } else if (len - s->skip - s->first_line > fields_max + 2) {
        return -431;
    }
    return 0;
}

/* Why a request is refused (the error body's detail), next to the rule that says so
   (for the trace, MW_TRACE). Each reason is written once, here, and used by name. */
#define MW__REFUSALS(X)                                                                        \
    X(bare_lf, "line not ended by CRLF", "RFC 9112 §2.2")                                      \
    X(bare_cr, "bare CR in request line", "RFC 9112 §2.2")                                     \
    X(line_too_long, "request line too long", "RFC 9112 §3")                                   \
    X(head_too_large, "request header section too large", "RFC 6585 §5")                       \
    X(too_many_fields, "too many header fields", "RFC 6585 §5")                                \
    X(bad_method, "malformed method", "RFC 9112 §3")                                           \
    X(bad_target, "malformed request target", "RFC 9112 §3.2")                                 \
    X(target_not_slash, "request target must start with /", "RFC 9112 §3.2")                   \
    X(fragment, "fragment in request target", "RFC 9112 §3.2")                                 \
    X(asterisk_not_options, "asterisk-form target is only for OPTIONS", "RFC 9112 §3.2.4")     \
    X(userinfo, "userinfo in request target", "RFC 9110 §4.2.4")                               \
    X(no_host_in_target, "request target without a host", "RFC 9110 §4.2.1")                   \
    X(bad_target_host, "invalid host in request target", "RFC 9112 §3.2.2")                    \
    X(bad_version, "malformed HTTP version", "RFC 9112 §2.3")                                  \
    X(version_unsupported, "HTTP version not supported", "RFC 9110 §2.5")                      \
    X(obs_fold, "obsolete line folding", "RFC 9112 §5.2")                                      \
    X(bad_field_name, "malformed header field name", "RFC 9112 §5.1")                          \
    X(bad_field_value, "invalid byte in header field value", "RFC 9110 §5.5")                  \
    X(bad_host, "invalid Host header", "RFC 9112 §3.2")                                        \
    X(no_host, "missing Host header", "RFC 9112 §3.2")                                         \
    X(two_hosts, "more than one Host header", "RFC 9112 §3.2")                                 \
    X(cl_too_large, "Content-Length too large", "RFC 9110 §8.6")                               \
    X(bad_cl, "malformed Content-Length", "RFC 9110 §8.6")                                     \
    X(cl_conflict, "conflicting Content-Length values", "RFC 9112 §6.3")                       \
    X(te_in_10, "Transfer-Encoding in an HTTP/1.0 request", "RFC 9112 §6.1")                   \
    X(te_and_cl, "both Content-Length and Transfer-Encoding", "RFC 9112 §6.1")                 \
    X(coding_after_chunked, "a transfer coding after chunked", "RFC 9112 §6.1")                \
    X(final_not_chunked, "final transfer coding is not chunked", "RFC 9112 §6.3")              \
    X(coding_unknown, "transfer coding not implemented", "RFC 9112 §6.1")                      \
    X(expectation, "only the expectation 100-continue is supported", "RFC 9110 §10.1.1")       \
    X(body_too_large, "request body larger than the limit", "RFC 9110 §15.5.14")               \
    X(chunk_digits, "chunk size longer than 15 hex digits", "RFC 9112 §7.1")                   \
    X(chunk_not_hex, "chunk size is not a hex number", "RFC 9112 §7.1")                        \
    X(chunk_size_byte, "invalid byte after the chunk size", "RFC 9112 §7.1")                   \
    X(chunk_bws, "whitespace after the chunk size without an extension", "RFC 9112 §7.1.1")    \
    X(chunk_ext_ctl, "control byte in a chunk extension", "RFC 9112 §7.1.1")                   \
    X(chunk_ext_long, "chunk extension longer than MW_MAX_CHUNK_EXT_BYTES", "RFC 9112 §7.1.1") \
    X(chunk_size_eol, "chunk size line not ended by CRLF", "RFC 9112 §7.1")                    \
    X(chunk_data_eol, "chunk data not followed by CRLF", "RFC 9112 §7.1")                      \
    X(bad_trailer, "malformed trailer field", "RFC 9112 §7.1.2")                               \
    X(trailer_too_large, "chunked trailer section too large", "RFC 9112 §7.1.2")               \
    X(trailer_ctl, "control byte in a trailer field", "RFC 9110 §5.5")                         \
    X(trailer_eol, "trailer line not ended by CRLF", "RFC 9112 §7.1.2")                        \
    X(head_late, "request head not received in time", "RFC 9110 §15.5.9")                      \
    X(body_late, "request body not received in time", "RFC 9110 §15.5.9")                      \
    X(body_slow, "request body arriving slower than MW_BODY_MIN_RATE", "RFC 9110 §15.5.9")
#define MW__REFUSAL_TEXT(name, why, rule) static const char mw__why_##name[] = why;
MW__REFUSALS(MW__REFUSAL_TEXT)
#undef MW__REFUSAL_TEXT

#define MW__FAIL(h, status, why) ((h)->error = (why), -(status))

static int mw__parse_version(const char *p, const char *end, mw__head *h) {
    if (end - p != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[5] < '0' || p[5] > '9' || p[7] < '0' ||
        p[7] > '9')
        return MW__FAIL(h, 400, mw__why_bad_version);
    if (p[5] != '1') return MW__FAIL(h, 505, mw__why_version_unsupported);
    h->minor = p[7] == '0' ? 0 : 1; /* RFC 9110 §2.5: a later 1.x is answered as 1.1 */
    return 0;
}

static const char mw__root_path[] = "/";

/* Host = uri-host [ ":" port ] (RFC 9112 §3.2, RFC 3986 §3.2.2): reg-name or IP
   literal characters only, so "a b", "h/path" or "user@h" are refused with 400. */
static int mw__valid_host(const char *v, size_t n) {
    /* ALPHA DIGIT -._~!$&'()*+,;=%:[] as a 128-bit set, like mw__is_tchar */
    static const uint64_t set[2] = {0x2fff7ff200000000ull, 0x47fffffeaffffffeull};
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c >= 128 || !((set[c >> 6] >> (c & 63)) & 1u)) return 0;
    }
    return 1;
}

/* The authority of an absolute-form target, which the server uses instead of Host
   (RFC 9112 §3.2.2): it must name a host the way a valid Host field would. */
static int mw__parse_authority(mw__head *h, const char *a, size_t n) {
    /* RFC 9110 §4.2.4: userinfo is deprecated in http(s) URIs; it serves to disguise the host */
    if (memchr(a, '@', n)) return MW__FAIL(h, 400, mw__why_userinfo);
    /* RFC 9110 §4.2.1, §4.2.2: an http(s) URI with an empty host is invalid */
    if (!n || a[0] == ':') return MW__FAIL(h, 400, mw__why_no_host_in_target);
    if (!mw__valid_host(a, n)) return MW__FAIL(h, 400, mw__why_bad_target_host);
    h->authority = a;
    h->authority_len = n;
    return 0;
}

/* Splits the target into path and query. Origin-form "/p?q", absolute-form
   "http://host/p?q" (RFC 9112 §3.2.2: the server must accept it), or "*" for OPTIONS. */
static int mw__parse_target(mw__head *h) {
    const char *t = h->target, *end = t + h->target_len, *p, *q;
    int rc;
    h->authority = NULL;
    h->authority_len = 0;
    if (h->target_len == 1 && t[0] == '*') {
        if (!(h->method_len == 7 && memcmp(h->method, "OPTIONS", 7) == 0))
            return MW__FAIL(h, 400, mw__why_asterisk_not_options);
        h->path = t;
        h->path_len = 1;
        return 0;
    }
    p = t;
    if (t[0] != '/') {
        size_t scheme = mw__ieq(t, h->target_len < 7 ? h->target_len : 7, "http://") ? 7
                        : (h->target_len >= 8 && mw__ieq(t, 8, "https://"))          ? 8
                                                                                     : 0;
        if (!scheme) return MW__FAIL(h, 400, mw__why_target_not_slash);
        for (p = t + scheme; p < end && *p != '/' && *p != '?' && *p != '#';) p++; /* past the authority */
        if ((rc = mw__parse_authority(h, t + scheme, (size_t)(p - t) - scheme)) != 0) return rc;
    }
    for (q = p; q < end; q++) {
        if (*q == '#') return MW__FAIL(h, 400, mw__why_fragment);
        if (*q == '?') break;
    }
    h->path = p;
    h->path_len = (size_t)(q - p);
    if (!h->path_len) { /* "http://host" or "http://host?q": RFC 9110 §4.2.3, an empty path is "/" */
        h->path = mw__root_path;
        h->path_len = 1;
    }
    h->query = q < end ? q + 1 : end;
    h->query_len = q < end ? (size_t)(end - q - 1) : 0;
    return 0;
}

/* request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 §3) */
static int mw__parse_request_line(const char *p, const char *eol, mw__head *h) {
    const char *s = p;
    int rc;
    while (p < eol && mw__is_tchar((unsigned char)*p)) p++;
    if (p == s || p == eol || *p != ' ') return MW__FAIL(h, 400, mw__why_bad_method);
    h->method = s;
    h->method_len = (size_t)(p - s);
    s = ++p;
    /* visible ASCII only: a space, control byte or non-ASCII byte is no part of a URI */
    while (p < eol && (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f) p++;
    if (p == s || p == eol || *p != ' ') return MW__FAIL(h, 400, mw__why_bad_target);
    h->target = s;
    h->target_len = (size_t)(p - s);
    if ((rc = mw__parse_version(p + 1, eol, h)) != 0) return rc;
    return mw__parse_target(h);
}

/* Content-Length = 1*DIGIT, or a list of identical values (RFC 9110 §8.6). Anything
   else is a framing doubt: two parties could see different message ends. */
static int mw__parse_content_length(const char *v, size_t n, mw__head *h) {
    size_t i = 0;
    while (i <= n) {
        long long val = 0;
        size_t digits = 0;
        while (i < n && (v[i] == ' ' || v[i] == '\t')) i++;
        while (i < n && v[i] >= '0' && v[i] <= '9') {
            if (++digits > 18) return MW__FAIL(h, 400, mw__why_cl_too_large); /* < 2^63: no overflow */
            val = val * 10 + (v[i++] - '0');
        }
        while (i < n && (v[i] == ' ' || v[i] == '\t')) i++;
        if (!digits || (i < n && v[i] != ',')) return MW__FAIL(h, 400, mw__why_bad_cl);
        if (h->content_length >= 0 && h->content_length != val) return MW__FAIL(h, 400, mw__why_cl_conflict);
        h->content_length = val;
        i++;
    }
    return 0;
}

/* The next element of a comma-separated list (RFC 9110 §5.6.1) in v[*i..n), without
   its surrounding whitespace; empty elements are skipped. Returns 0 at the end. */
static int mw__next_list_element(const char *v, size_t n, size_t *i, mw_str *out) {
    size_t s, e;
    for (;;) {
        while (*i < n && (v[*i] == ' ' || v[*i] == '\t' || v[*i] == ',')) (*i)++;
        if (*i >= n) return 0;
        s = *i;
        while (*i < n && v[*i] != ',') (*i)++;
        e = *i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e > s) break;
    }
    out->ptr = v + s;
    out->len = e - s;
    return 1;
}

/* Transfer-Encoding is a list of codings, possibly spread over several fields; only
   a lone final "chunked" is served (RFC 9112 §6.1, §6.3). */
static int mw__parse_transfer_encoding(const char *v, size_t n, mw__head *h, int *codings) {
    size_t i = 0;
    mw_str coding;
    while (mw__next_list_element(v, n, &i, &coding)) {
        if (h->chunked) return MW__FAIL(h, 400, mw__why_coding_after_chunked);
        if (mw__ieq(coding.ptr, coding.len, "chunked")) h->chunked = 1;
        else (*codings)++;
    }
    return 0;
}

/* Remembers the connection options "close" and "keep-alive" (RFC 9112 §9.3). */
static void mw__parse_connection(const char *v, size_t n, int *close_opt, int *keep_opt) {
    size_t i = 0;
    mw_str opt;
    while (mw__next_list_element(v, n, &i, &opt)) {
        if (mw__ieq(opt.ptr, opt.len, "close")) *close_opt = 1;
        if (mw__ieq(opt.ptr, opt.len, "keep-alive")) *keep_opt = 1;
    }
}

/* Expect is a list (RFC 9110 §10.1.1, §5.6.1): empty elements are allowed; the only
   expectation is 100-continue. */
static int mw__parse_expect(const char *v, size_t n, mw__head *h) {
    size_t i = 0;
    mw_str e;
    while (mw__next_list_element(v, n, &i, &e)) {
        if (!mw__ieq(e.ptr, e.len, "100-continue")) return MW__FAIL(h, 417, mw__why_expectation);
        h->expect_continue = 1;
    }
    return 0;
}

typedef struct mw__framing_acc {
    int hosts, te_fields, other_codings, close_opt, keep_opt;
} mw__framing_acc;

/* Interprets the fields that decide framing, connection handling and the host. */
static int mw__note_field(mw__head *h, mw__field *f, mw__framing_acc *a) {
    switch (f->name_len) {
    case 4:
        if (mw__ieq(f->name, 4, "host")) {
            if (!mw__valid_host(f->value, f->value_len)) return MW__FAIL(h, 400, mw__why_bad_host);
            a->hosts++;
            if (h->authority) { /* RFC 9112 §3.2.2: Host is ignored for the target's authority */
                f->value = h->authority;
                f->value_len = h->authority_len;
            }
        }
        break;
    case 6:
        if (mw__ieq(f->name, 6, "expect")) return mw__parse_expect(f->value, f->value_len, h);
        break;
    case 10:
        if (mw__ieq(f->name, 10, "connection"))
            mw__parse_connection(f->value, f->value_len, &a->close_opt, &a->keep_opt);
        break;
    case 14:
        if (mw__ieq(f->name, 14, "content-length")) return mw__parse_content_length(f->value, f->value_len, h);
        break;
    case 17:
        if (mw__ieq(f->name, 17, "transfer-encoding")) {
            a->te_fields++;
            return mw__parse_transfer_encoding(f->value, f->value_len, h, &a->other_codings);
        }
        break;
    default: break;
    }
    return 0;
}

/* A control byte other than HTAB, or DEL: never allowed in a field value (RFC 9110 §5.5). */
static int mw__is_field_ctl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

/* Skips bytes allowed in a field value (>= 0x20 but DEL, and HTAB), eight at a time
   while a word holds no control byte or DEL; stops at the first byte not allowed. */
static const char *mw__skip_field_value(const char *p, const char *end) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t x, del;
        memcpy(&x, p, 8);
        del = x ^ (0x7f * ones);
        /* exact tests for "some byte < 0x20" and "some byte == 0x7f" (a zero in del) */
        if (((x - 0x20 * ones) & ~x & highs) | ((del - ones) & ~del & highs)) break;
        p += 8;
    }
    while (p < end && !mw__is_field_ctl((unsigned char)*p)) p++;
    return p;
}

/* s[0..n) without the OWS (SP, HTAB) at either end, which is no part of a field
   value (RFC 9110 §5.5). */
static mw_str mw__trim_ows(const char *s, size_t n) {
    mw_str out;
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    out.ptr = s;
    out.len = n;
    return out;
}

/* field-line = field-name ":" OWS field-value OWS CRLF (RFC 9112 §5). Returns the
   length of the line or -status. */
static long mw__parse_field(const char *p, const char *end, mw__field *f, mw__head *h) {
    const char *s = p, *v;
    mw_str value;
    if (*p == ' ' || *p == '\t') return MW__FAIL(h, 400, mw__why_obs_fold); /* RFC 9112 §5.2 */
    while (p < end && mw__is_tchar((unsigned char)*p)) p++;
    /* RFC 9112 §5.1: no whitespace between name and colon, or a proxy could read
       "Transfer-Encoding :" as another field than we do. */
    if (p == s || p == end || *p != ':') return MW__FAIL(h, 400, mw__why_bad_field_name);
    f->name = s;
    f->name_len = (size_t)(p - s);
    v = ++p;
    /* OWS and field-value: VCHAR, SP, HTAB, obs-text; NUL, CR and other controls refused */
    p = mw__skip_field_value(p, end);
    if (p + 1 >= end || p[0] != '\r' || p[1] != '\n') return MW__FAIL(h, 400, mw__why_bad_field_value);
    value = mw__trim_ows(v, (size_t)(p - v));
    f->value = value.ptr;
    f->value_len = value.len;
    return (long)(p + 2 - s);
}

/* Decides message length and persistence once every field is known (RFC 9112 §6.3). */
static int mw__settle_framing(mw__head *h, const mw__framing_acc *a) {
    if (h->minor == 1 && a->hosts == 0) return MW__FAIL(h, 400, mw__why_no_host);
    if (a->hosts > 1) return MW__FAIL(h, 400, mw__why_two_hosts);
    if (a->te_fields) {
        if (h->minor == 0) return MW__FAIL(h, 400, mw__why_te_in_10);
        if (h->content_length >= 0) return MW__FAIL(h, 400, mw__why_te_and_cl);
        if (!h->chunked) return MW__FAIL(h, 400, mw__why_final_not_chunked);
        if (a->other_codings) return MW__FAIL(h, 501, mw__why_coding_unknown);
    }
    h->keep_alive = h->minor == 1 ? !a->close_opt : (a->keep_opt && !a->close_opt);
    return 0;
}

/* Parses a complete head buf[0..head_len) found by mw__scan_head. Returns 0 or -status
   with h->error set. */
static int mw__parse_head(const char *buf, size_t head_len, const mw__limits *lim, mw__head *h) {
    const char *p = buf, *end = buf + head_len, *eol;
    mw__framing_acc acc;
    size_t max_fields = (size_t)lim->v[MW_LIMIT_HEADER_COUNT];
    int rc;
    memset(&acc, 0, sizeof acc);
    h->content_length = -1;
    h->chunked = h->expect_continue = 0;
    h->nfields = 0;
    h->query = NULL;
    h->query_len = 0;
    h->error = NULL;
    while (p + 1 < end && p[0] == '\r' && p[1] == '\n') p += 2;
    eol = (const char *)memchr(p, '\r', (size_t)(end - p));
    if (!eol || eol + 1 >= end || eol[1] != '\n') return MW__FAIL(h, 400, mw__why_bare_cr);
    if ((rc = mw__parse_request_line(p, eol, h)) != 0) return rc;
    p = eol + 2;
    while (!(p[0] == '\r' && p + 1 < end && p[1] == '\n')) {
        long n;
        if (h->nfields >= max_fields) return MW__FAIL(h, 431, mw__why_too_many_fields);
        n = mw__parse_field(p, end, &h->fields[h->nfields], h);
        if (n < 0) return (int)n;
        if ((rc = mw__note_field(h, &h->fields[h->nfields], &acc)) != 0) return rc;
        h->nfields++;
        p += n;
    }
    return mw__settle_framing(h, &acc);
}

/* Chunked transfer coding (RFC 9112 §7.1), decoded in place: data bytes move down over
   the framing, so the body ends up contiguous without a second buffer. */
enum {
    MW__CH_SIZE,
    MW__CH_SIZE_BWS,
    MW__CH_EXT,
    MW__CH_SIZE_LF,
    MW__CH_DATA,
    MW__CH_DATA_CR,
    MW__CH_DATA_LF,
    MW__CH_TRAILER,
    MW__CH_TRAILER_LINE,
    MW__CH_TRAILER_LF,
    MW__CH_DONE
};

typedef struct mw__chunked {
    int state;
    unsigned digits;
    int last_lf_ends;        /* in the trailer: the LF being awaited ends the message */
    int in_value;            /* in a trailer line: past the ':' */
    unsigned long long size; /* the chunk size being read, then bytes of it still to copy */
    size_t ext_bytes, trailer_bytes;
    const char *error; /* why the body was refused, for the error body */
} mw__chunked;

#define MW__CHUNK_MAX_DIGITS 15 /* 15 hex digits < 2^60: the size cannot overflow */

/* Decodes buf[*in..len), writing data at buf[*out..]; *out <= *in always.
   Returns 1 when the message is complete (*in is just past it), 0 when more bytes are
   needed, or -status (400 malformed, 413 too large, 431 trailers too large) with
   d->error set. */
static int mw__chunked_decode(mw__chunked *d, char *buf, size_t len, size_t *in, size_t *out, size_t body_start,
                              const mw__limits *lim) {
    size_t i = *in, o = *out;
    unsigned long long body_max = (unsigned long long)lim->v[MW_LIMIT_BODY_BYTES];
    int rc = 0;
    while (i < len && rc == 0) {
        unsigned char c = (unsigned char)buf[i];
        switch (d->state) {
        case MW__CH_SIZE: {
            int hv = mw__hex_value(c);
            if (hv >= 0) {
                if (++d->digits > MW__CHUNK_MAX_DIGITS) rc = MW__FAIL(d, 400, mw__why_chunk_digits);
                d->size = d->size * 16 + (unsigned)hv;
                i++;
            } else if (!d->digits) {
                rc = MW__FAIL(d, 400, mw__why_chunk_not_hex);
            } else if (d->size > body_max - (o - body_start)) {
                /* refused on the size line, before any of the data is read */
                rc = MW__FAIL(d, 413, mw__why_body_too_large);
            } else if (c == '\r') {
                d->state = MW__CH_SIZE_LF;
                i++;
            } else if (c == ';' || c == ' ' || c == '\t') {
                d->state = MW__CH_SIZE_BWS;
            } else {
                rc = MW__FAIL(d, 400, mw__why_chunk_size_byte);
            }
            break;
        }
        case MW__CH_SIZE_BWS: /* RFC 9112 §7.1.1: BWS is allowed only before ";" */
            if (c == ';') d->state = MW__CH_EXT;
            else if (c != ' ' && c != '\t') rc = MW__FAIL(d, 400, mw__why_chunk_bws);
            i++;
            break;
        case MW__CH_EXT: /* chunk-ext: parsed only far enough to skip it, within a cap */
            if (c == '\r') {
                d->state = MW__CH_SIZE_LF;
            } else if (mw__is_field_ctl(c)) {
                rc = MW__FAIL(d, 400, mw__why_chunk_ext_ctl);
            } else if (++d->ext_bytes > (size_t)lim->v[MW_LIMIT_CHUNK_EXT_BYTES]) {
                rc = MW__FAIL(d, 400, mw__why_chunk_ext_long);
            }
            i++;
            break;
        case MW__CH_SIZE_LF:
            if (c != '\n') {
                rc = MW__FAIL(d, 400, mw__why_chunk_size_eol);
                break;
            }
            i++;
            d->ext_bytes = 0;
            d->digits = 0;
            d->state = d->size ? MW__CH_DATA : MW__CH_TRAILER;
            break;
        case MW__CH_DATA: {
            size_t n = len - i;
            if ((unsigned long long)n > d->size) n = (size_t)d->size;
            memmove(buf + o, buf + i, n);
            o += n;
            i += n;
            d->size -= n;
            if (!d->size) d->state = MW__CH_DATA_CR;
            break;
        }
        case MW__CH_DATA_CR:
        case MW__CH_DATA_LF:
            if (c != (d->state == MW__CH_DATA_CR ? '\r' : '\n')) {
                /* RFC 9112 §7.1: data is followed by CRLF, nothing else */
                rc = MW__FAIL(d, 400, mw__why_chunk_data_eol);
                break;
            }
            i++;
            d->state = d->state == MW__CH_DATA_CR ? MW__CH_DATA_LF : MW__CH_SIZE;
            break;
        case MW__CH_TRAILER: /* start of a trailer line, or the final CRLF */
            d->last_lf_ends = c == '\r';
            d->in_value = 0;
            if (c != '\r' && !mw__is_tchar(c)) {
                /* RFC 9112 §7.1.2: a field line; obs-fold or no name is refused */
                rc = MW__FAIL(d, 400, mw__why_bad_trailer);
                break;
            }
            d->state = c == '\r' ? MW__CH_TRAILER_LF : MW__CH_TRAILER_LINE;
            if (c == '\r') i++;
            break;
        case MW__CH_TRAILER_LINE: /* trailer fields are dropped, within the header limit */
            if (++d->trailer_bytes > (size_t)lim->v[MW_LIMIT_HEADER_BYTES]) {
                rc = MW__FAIL(d, 431, mw__why_trailer_too_large);
            } else if (!d->in_value) { /* the name, up to ':' */
                if (c == ':') d->in_value = 1;
                else if (!mw__is_tchar(c)) rc = MW__FAIL(d, 400, mw__why_bad_trailer);
            } else if (c == '\r') {
                d->state = MW__CH_TRAILER_LF;
            } else if (mw__is_field_ctl(c)) {
                rc = MW__FAIL(d, 400, mw__why_trailer_ctl);
            }
            i++;
            break;
        case MW__CH_TRAILER_LF:
            if (c != '\n') {
                rc = MW__FAIL(d, 400, mw__why_trailer_eol);
                break;
            }
            i++;
            if (d->last_lf_ends) {
                d->state = MW__CH_DONE;
                rc = 1;
            } else {
                d->state = MW__CH_TRAILER;
            }
            break;
        default: rc = 1; break;
        }
    }
    *in = i;
    *out = o;
    return rc;
}

/* A decimal int64: an optional '-' and 1-19 digits, range-checked before it overflows. */
static int mw__parse_int64(const char *s, size_t n, long long *out) {
    unsigned long long v = 0, limit;
    size_t i = 0;
    int neg = n > 0 && s[0] == '-';
    i = (size_t)neg;
    if (i == n || n - i > 19) return 0;
    limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        if (v > (limit - (unsigned)(s[i] - '0')) / 10) return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = neg ? (v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v) : (long long)v;
    return 1;
}

/* Percent-decodes src into dst (which may be src); returns the decoded length, or -1
   for a malformed escape or an encoded NUL (either would surprise C string code). */
static long mw__percent_decode(const char *src, size_t n, char *dst, int plus_is_space) {
    size_t i, o = 0;
    for (i = 0; i < n; i++) {
        char c = src[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n) return -1;
            hi = mw__hex_value((unsigned char)src[i + 1]);
            lo = mw__hex_value((unsigned char)src[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        dst[o++] = c;
    }
    return (long)o;
}

/* JSON's number grammar: the JSON reader's, and a typed path parameter's or query value's. */
static const char *mw__jdigits(const char *p, const char *end) {
    const char *s = p;
    while (p < end && *p >= '0' && *p <= '9') p++;
    return p > s ? p : NULL;
}

static const char *mw__jnumber_fail(const char **problem, const char *why) {
    *problem = why;
    return NULL;
}

/* The end of the number at p, or NULL with *problem set. *integral: no fraction and
   no exponent. number = [ "-" ] int [ frac ] [ exp ]; int = "0" / digit1-9 *DIGIT
   (RFC 8259 §6) */
static const char *mw__jnumber_end(const char *p, const char *end, int *integral, const char **problem) {
    *integral = 1;
    if (p < end && *p == '-') p++;
    if (p < end && *p == '0') {
        p++;
        if (p < end && *p >= '0' && *p <= '9') return mw__jnumber_fail(problem, "leading zero in number");
    } else if (!(p = mw__jdigits(p, end))) {
        return mw__jnumber_fail(problem, "unexpected character");
    }
    if (p < end && *p == '.') {
        *integral = 0;
        if (!(p = mw__jdigits(p + 1, end))) return mw__jnumber_fail(problem, "digits expected after '.'");
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *integral = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (!(p = mw__jdigits(p, end))) return mw__jnumber_fail(problem, "digits expected in exponent");
    }
    return p;
}

/* A boolean spelled as FastAPI reads one from a path or query value: true/false, 1/0,
   yes/no, on/off, in any case. Returns 1 with *out set, or 0. */
static int mw__bool_word(const char *s, size_t n, int *out) {
    static const char *const words[] = {"true", "1", "yes", "on", "false", "0", "no", "off"};
    int i;
    for (i = 0; i < 8; i++)
        if (mw__ieq(s, n, words[i])) return *out = i < 4, 1;
    return 0;
}

/* A whole JSON number, as a path parameter {x:number} or a query value takes it. */
static int mw__is_number_text(const char *s, size_t n) {
    const char *problem;
    int integral;
    return n && mw__jnumber_end(s, s + n, &integral, &problem) == s + n;
}

/* ---------------------------------------------------------------------------
   router: (method, path) -> handler + parameters. Built before serving, read-only
   after, so workers read it without locks.
   --------------------------------------------------------------------------- */
enum {
    MW__M_GET,
    MW__M_HEAD,
    MW__M_POST,
    MW__M_PUT,
    MW__M_PATCH,
    MW__M_DELETE,
    MW__M_OPTIONS,
    MW__M_ANY, /* a route for every method; also the slot a request with another method looks in */
    MW__M_SLOTS
};
#define MW__M_OTHER MW__M_ANY

static const char *const mw__method_names[MW__M_SLOTS] = {"GET",   "HEAD",   "POST",    "PUT",
                                                          "PATCH", "DELETE", "OPTIONS", "*"};

/* Maps a request method to its handler slot (case-sensitive, RFC 9110 §9.1). */
static int mw__method_slot(const char *m, size_t n) {
    int i;
    for (i = 0; i < MW__M_ANY; i++)
        if (strlen(mw__method_names[i]) == n && memcmp(m, mw__method_names[i], n) == 0) return i;
    return MW__M_OTHER;
}

/* A route as registered: the trie points at it, the app's flat list holds them all
   in registration order (for listings and for naming a route in a log line). */
typedef struct mw__route {
    int slot;      /* method slot; MW__M_ANY for "*" */
    char *pattern; /* as registered */
    mw_handler handler;
    void *data;        /* mw_route_with's, for the handler and the hooks (mw_route_data) */
    void *impl;        /* the state of an extension's handler (a WebSocket endpoint, ...) */
    struct mw__op *op; /* its declaration (mw_route_op), or NULL */
    unsigned warned;   /* atomic: handler mistakes already logged, a bit per kind */
} mw__route;

typedef struct mw__node {
    char *seg; /* static segment text, for static children */
    size_t seg_len;
    struct mw__node **kids; /* static children */
    size_t nkids;
    struct mw__node *typed[3]; /* {name:int}, {name:number}, {name:bool}, by MW__SEG_INT + k */
    char *typed_name[3];
    struct mw__node *param, *wild; /* :name / {name}, *name */
    char *param_name, *wild_name;
    char *pattern; /* the pattern that first ended here, for error messages */
    mw__route *routes[MW__M_SLOTS];
} mw__node;

typedef struct mw__match {
    const mw__route *route;
    unsigned allow; /* methods routed for this path (bit per slot), for 405 and OPTIONS */
    size_t nparams;
    const char *names[MW_MAX_PARAMS];
    const char *values[MW_MAX_PARAMS];
    size_t lens[MW_MAX_PARAMS];
} mw__match;

static char *mw__strndup(const char *s, size_t n) {
    char *d = (char *)MW_MALLOC(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void mw__node_free(mw__node *n);

/* Frees everything a node owns (not the node itself: the root is part of the app). */
static void mw__node_clear(mw__node *n) {
    size_t i;
    for (i = 0; i < n->nkids; i++) mw__node_free(n->kids[i]);
    for (i = 0; i < 3; i++) {
        mw__node_free(n->typed[i]);
        MW_FREE(n->typed_name[i]);
    }
    mw__node_free(n->param);
    mw__node_free(n->wild);
    MW_FREE(n->kids);
    MW_FREE(n->seg);
    MW_FREE(n->param_name);
    MW_FREE(n->wild_name);
    MW_FREE(n->pattern);
    memset(n, 0, sizeof *n);
}

static void mw__node_free(mw__node *n) {
    if (!n) return;
    mw__node_clear(n);
    MW_FREE(n);
}

static mw__node *mw__node_new(void) {
    mw__node *n = (mw__node *)MW_MALLOC(sizeof *n);
    if (n) memset(n, 0, sizeof *n);
    return n;
}

static mw__node *mw__node_static_child(mw__node *n, const char *seg, size_t len, int create) {
    size_t i;
    mw__node *k, **kids;
    for (i = 0; i < n->nkids; i++)
        if (n->kids[i]->seg_len == len && memcmp(n->kids[i]->seg, seg, len) == 0) return n->kids[i];
    if (!create) return NULL;
    kids = (mw__node **)MW_REALLOC(n->kids, (n->nkids + 1) * sizeof *kids);
    if (!kids) return NULL;
    n->kids = kids;
    if (!(k = mw__node_new()) || !(k->seg = mw__strndup(seg, len))) {
        MW_FREE(k);
        return NULL;
    }
    k->seg_len = len;
    n->kids[n->nkids++] = k;
    return k;
}

/* A parameter or wildcard child; two routes may share it only under the same name,
   so a parameter always has one name whichever route matched. */
static mw__node *mw__node_named_child(mw__node **slot, char **slot_name, const char *name, size_t len,
                                      const char **why) {
    if (*slot) {
        if (strlen(*slot_name) != len || memcmp(*slot_name, name, len) != 0) {
            *why = "parameter name differs from an earlier route's at the same position";
            return NULL;
        }
        return *slot;
    }
    if (!(*slot = mw__node_new()) || !(*slot_name = mw__strndup(name, len))) {
        MW_FREE(*slot);
        *slot = NULL;
        *why = "out of memory";
        return NULL;
    }
    return *slot;
}

static int mw__is_name_char(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Typed parameters come in this order, the order they are tried in (an int is a number too). */
enum { MW__SEG_STATIC, MW__SEG_PARAM, MW__SEG_WILD, MW__SEG_INT, MW__SEG_NUMBER, MW__SEG_BOOL };
static const char *const mw__seg_type_names[] = {"int", "number", "bool"};

/* A typed segment's value fits its type: a decimal int64, a JSON number, a boolean word. */
static int mw__segment_value_fits(int kind, const char *v, size_t n) {
    long long i;
    int b;
    if (kind == MW__SEG_INT) return mw__parse_int64(v, n, &i);
    if (kind == MW__SEG_NUMBER) return mw__is_number_text(v, n);
    return mw__bool_word(v, n, &b);
}

typedef struct mw__segment {
    int kind;
    const char *name; /* the parameter's name, or the static text */
    size_t len;
} mw__segment;

/* Why a route was refused: a fixed reason, or one composed in text. */
typedef struct mw__route_error {
    const char *why;
    char text[160];
} mw__route_error;

/* A segment with '<' or '>': most likely Flask's "<int:id>" or "<name>", so the reason
   spells the same parameter the microweb way (composed in text). */
static const char *mw__flask_segment(const char *seg, size_t len, char *text, size_t size) {
    const char *colon = (const char *)memchr(seg, ':', len), *name = colon ? colon + 1 : seg + 1;
    const char *open = "{", *close = "}", *alt = "";
    size_t conv_len = colon ? (size_t)(colon - seg) - 1 : 0;
    int name_len = (int)(seg + len - 1 - name);
    if (len < 3 || seg[0] != '<' || seg[len - 1] != '>')
        return "'<' and '>' are not pattern characters; a parameter is {name} or :name";
    if (!colon) alt = " or :";
    else if (mw__ieq(seg + 1, conv_len, "int")) close = ":int}";
    else if (mw__ieq(seg + 1, conv_len, "path")) open = "*", close = " (a wildcard, the last segment)";
    else if (!mw__ieq(seg + 1, conv_len, "string")) close = "} (parameter types are int, number, bool and str)";
    snprintf(text, size, "'%.*s' is Flask's spelling; microweb writes %s%.*s%s%s%.*s", (int)len, seg, open, name_len,
             name, close, alt, *alt ? name_len : 0, name);
    return text;
}

/* The kind of a parameter of type t ("int", "number", "bool", "str"), or -1. */
static int mw__segment_type(const char *t, size_t n) {
    int k;
    for (k = 0; k < 3; k++)
        if (strlen(mw__seg_type_names[k]) == n && memcmp(t, mw__seg_type_names[k], n) == 0) return MW__SEG_INT + k;
    return n == 3 && memcmp(t, "str", 3) == 0 ? MW__SEG_PARAM : -1;
}

/* Reads one pattern segment: "text", ":name", "{name}", "{name:int}", "{name:number}",
   "{name:bool}", "{name:str}" or
   "*name". Returns NULL when it is well formed, or why not (composed in text when it
   names the segment). */
static const char *mw__parse_segment(const char *seg, size_t len, int last, mw__segment *out, char *text, size_t size) {
    size_t i;
    out->kind = MW__SEG_STATIC;
    out->name = seg;
    out->len = len;
    if (!len) return last ? NULL : "empty segment (//)";
    if (seg[0] == ':' || seg[0] == '*') {
        out->kind = seg[0] == ':' ? MW__SEG_PARAM : MW__SEG_WILD;
        out->name = seg + 1;
        out->len = len - 1;
    } else if (seg[0] == '{') {
        const char *colon = (const char *)memchr(seg, ':', len);
        if (seg[len - 1] != '}') return "a '{' parameter must end with '}'";
        out->kind = MW__SEG_PARAM;
        out->name = seg + 1;
        out->len = (colon ? (size_t)(colon - seg) : len - 1) - 1;
        if (colon && (out->kind = mw__segment_type(colon + 1, len - (size_t)(colon - seg) - 2)) < 0)
            return "parameter types are int, number, bool and str";
    } else {
        for (i = 0; i < len; i++) {
            unsigned char c = (unsigned char)seg[i];
            if (c == '<' || c == '>') return mw__flask_segment(seg, len, text, size);
            if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '%' || c == '{' || c == '}')
                return "invalid character in pattern";
        }
        return NULL;
    }
    if (out->kind == MW__SEG_WILD && !last) return "a wildcard must be the last segment";
    if (!out->len) return "parameter without a name";
    for (i = 0; i < out->len; i++)
        if (!mw__is_name_char((unsigned char)out->name[i])) return "parameter names are letters, digits and _";
    return NULL;
}

/* The child node for a segment, created when missing. */
static mw__node *mw__node_child(mw__node *n, const mw__segment *sg, const char **why) {
    switch (sg->kind) {
    case MW__SEG_PARAM: return mw__node_named_child(&n->param, &n->param_name, sg->name, sg->len, why);
    case MW__SEG_INT:
    case MW__SEG_NUMBER:
    case MW__SEG_BOOL: {
        int k = sg->kind - MW__SEG_INT;
        return mw__node_named_child(&n->typed[k], &n->typed_name[k], sg->name, sg->len, why);
    }
    case MW__SEG_WILD: return mw__node_named_child(&n->wild, &n->wild_name, sg->name, sg->len, why);
    default: *why = "out of memory"; return mw__node_static_child(n, sg->name, sg->len, 1);
    }
}

/* Adds a route to the trie; returns 0, MW_EINVAL or MW_EEXIST and says why in *err. */
static int mw__router_add(mw__node *root, mw__route *r, mw__route_error *err) {
    const char *pattern = r->pattern, *p = pattern;
    mw__node *n = root;
    mw__segment names[MW_MAX_PARAMS];
    size_t nparams = 0, k;
    if (!pattern || pattern[0] != '/') {
        err->why = "pattern must start with /";
        return MW_EINVAL;
    }
    while (*p == '/') {
        const char *seg = p + 1, *e = strchr(seg, '/');
        size_t len = e ? (size_t)(e - seg) : strlen(seg);
        mw__segment sg;
        if ((err->why = mw__parse_segment(seg, len, e == NULL, &sg, err->text, sizeof err->text)) != NULL)
            return MW_EINVAL;
        if (sg.kind != MW__SEG_STATIC) {
            if (nparams == MW_MAX_PARAMS) return (err->why = "more parameters than MW_MAX_PARAMS"), MW_EINVAL;
            /* the same name twice in one pattern would make one of them unreachable */
            for (k = 0; k < nparams; k++)
                if (names[k].len == sg.len && memcmp(names[k].name, sg.name, sg.len) == 0)
                    return (err->why = "duplicate parameter name"), MW_EINVAL;
            names[nparams++] = sg;
        }
        if (!(n = mw__node_child(n, &sg, &err->why))) return MW_EINVAL;
        p = seg + len;
    }
    if (n->routes[r->slot]) {
        err->why = n->pattern && strcmp(n->pattern, pattern) != 0
                       ? "same route as an earlier pattern with other parameter names"
                       : "duplicate route";
        return MW_EEXIST;
    }
    if (!n->pattern && !(n->pattern = mw__strndup(pattern, strlen(pattern)))) {
        err->why = "out of memory";
        return MW_ENOMEM;
    }
    n->routes[r->slot] = r;
    return 0;
}

static unsigned mw__node_allow(const mw__node *n) {
    unsigned mask = 0;
    int i;
    for (i = 0; i < MW__M_SLOTS; i++)
        if (n->routes[i]) mask |= 1u << i;
    return mask;
}

static const mw__route *mw__node_pick(const mw__node *n, int slot) {
    if (n->routes[slot]) return n->routes[slot];
    if (slot == MW__M_HEAD && n->routes[MW__M_GET]) return n->routes[MW__M_GET]; /* RFC 9110 §9.3.2 */
    return n->routes[MW__M_ANY];
}

/* A path that ends at node n: a match if n routes the method; its methods count for Allow. */
static int mw__match_here(const mw__node *n, int slot, mw__match *m) {
    m->allow |= mw__node_allow(n);
    m->route = mw__node_pick(n, slot);
    return m->route != NULL;
}

static int mw__match_push(mw__match *m, const char *name, const char *v, size_t len) {
    m->names[m->nparams] = name;
    m->values[m->nparams] = v;
    m->lens[m->nparams] = len;
    m->nparams++;
    return 1;
}

/* Depth-first in priority order: static, then {name:int}, {name:number}, {name:bool}
   (only a value that fits the type: another value does not match here, so it can reach
   another route or 404), then parameter, then wildcard; it backtracks
   when a branch has no route for the method, so order of registration never matters.
   Every node is visited at most once per request, so the cost is bounded by the tree. */
static int mw__match_walk(const mw__node *n, const char *path, size_t len, size_t pos, int slot, mw__match *m) {
    const char *seg, *e;
    size_t seg_len;
    mw__node *k;
    int t;
    if (pos > len) return mw__match_here(n, slot, m);
    seg = path + pos;
    e = (const char *)memchr(seg, '/', len - pos);
    seg_len = e ? (size_t)(e - seg) : len - pos;
    if ((k = mw__node_static_child((mw__node *)n, seg, seg_len, 0)) != NULL &&
        mw__match_walk(k, path, len, pos + seg_len + 1, slot, m))
        return 1;
    for (t = 0; t < 3; t++) {
        if (!n->typed[t] || !mw__segment_value_fits(MW__SEG_INT + t, seg, seg_len)) continue;
        mw__match_push(m, n->typed_name[t], seg, seg_len);
        if (mw__match_walk(n->typed[t], path, len, pos + seg_len + 1, slot, m)) return 1;
        m->nparams--;
    }
    if (n->param && seg_len && mw__match_push(m, n->param_name, seg, seg_len)) {
        if (mw__match_walk(n->param, path, len, pos + seg_len + 1, slot, m)) return 1;
        m->nparams--;
    }
    if (n->wild) {
        mw__match_push(m, n->wild_name, seg, len - pos);
        if (mw__match_here(n->wild, slot, m)) return 1;
        m->nparams--;
    }
    return 0;
}

/* Returns 1 with m->route set, or 0 with m->allow telling 404 (0) from 405. */
static int mw__router_match(const mw__node *root, int slot, const char *path, size_t len, mw__match *m) {
    m->route = NULL;
    m->allow = 0;
    m->nparams = 0;
    if (!len || path[0] != '/') return 0;
    return mw__match_walk(root, path, len, 1, slot, m);
}

/* "GET, HEAD, POST" for an Allow header (RFC 9110 §10.2.1). */
static void mw__format_allow(unsigned mask, mw__buf *b) {
    int i;
    if (mask & (1u << MW__M_ANY)) mask = (1u << MW__M_ANY) - 1;
    if (mask & (1u << MW__M_GET)) mask |= 1u << MW__M_HEAD;
    mask |= 1u << MW__M_OPTIONS;
    for (i = 0; i < MW__M_ANY; i++) {
        if (!(mask & (1u << i))) continue;
        if (b->len && b->data[b->len - 1] != ' ') mw__buf_puts(b, ", ");
        mw__buf_puts(b, mw__method_names[i]);
    }
}

/* ---------------------------------------------------------------------------
   JSON writer: streams into a growable buffer; misuse is caught, never emitted.
   --------------------------------------------------------------------------- */
struct mw_json {
    mw__buf *out;
    const char *error; /* first misuse, sticky */
    const char *call;  /* the call that made it ("mw_json_key"), for debug mode's answer */
    int depth;
    int active; /* between mw_json_begin and mw_json_end */
    int after_key, need_comma, root_done;
    unsigned char in_object[MW_JSON_MAX_DEPTH];
};

static void mw__json_init(mw_json *j, mw__buf *out) {
    memset(j, 0, sizeof *j);
    j->out = out;
    j->active = 1;
}

/* The first misuse is kept, with the public call it happened in: each call passes its
   name down (a pointer, no work) so that a failure can name it. */
static int mw__json_fail(mw_json *j, const char *call, const char *why) {
    if (!j->error) j->error = why, j->call = call;
    return MW_EJSON;
}

static int mw__json_in_object(const mw_json *j) { return j->depth > 0 && j->in_object[j->depth - 1]; }

/* Before a value: checks that one is due here and writes the comma. */
static int mw__json_value_start(mw_json *j, const char *call) {
    if (!j || !j->active) return MW_EJSON;
    if (j->error) return MW_EJSON;
    if (j->depth == 0 && j->root_done) return mw__json_fail(j, call, "more than one top-level value");
    if (mw__json_in_object(j) && !j->after_key) return mw__json_fail(j, call, "a value where a key is due");
    if (j->need_comma && !j->after_key && mw__buf_append(j->out, ",", 1) != 0)
        return mw__json_fail(j, call, "out of memory");
    return 0;
}

static int mw__json_value_done(mw_json *j) {
    j->after_key = 0;
    j->need_comma = 1;
    if (j->depth == 0) j->root_done = 1;
    return 0;
}

/* Writes s as a JSON string (RFC 8259 §7). Invalid UTF-8 becomes U+FFFD, so the output
   is always valid UTF-8 (§8.1) whatever bytes a client sent. */
static int mw__json_put_string(mw__buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    size_t i = 0, run = 0;
    if (mw__buf_reserve(b, n + 2) != 0 || mw__buf_append(b, "\"", 1) != 0) return MW_ENOMEM;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = 1;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            run++;
            continue;
        }
        if (run && mw__buf_append(b, s + i - run, run) != 0) return MW_ENOMEM;
        run = 0;
        if (c < 0x80) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            const char *e = c == '"'    ? "\\\""
                            : c == '\\' ? "\\\\"
                            : c == '\n' ? "\\n"
                            : c == '\r' ? "\\r"
                            : c == '\t' ? "\\t"
                            : c == '\b' ? "\\b"
                            : c == '\f' ? "\\f"
                                        : NULL;
            if (e ? mw__buf_puts(b, e) : mw__buf_append(b, esc, 6)) return MW_ENOMEM;
        } else {
            unsigned cp = 0, min = 0;
            size_t k;
            if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1fu, min = 0x80;
            else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0fu, min = 0x800;
            else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07u, min = 0x10000;
            else len = 0;
            for (k = 1; len && k < len; k++) {
                if (i + k >= n || ((unsigned char)s[i + k] & 0xc0) != 0x80) len = 0;
                else cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3fu);
            }
            /* overlong forms, surrogates and code points past U+10FFFF are not UTF-8 */
            if (!len || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
                if (mw__buf_append(b, "\xef\xbf\xbd", 3) != 0) return MW_ENOMEM;
                len = 1;
            } else if (mw__buf_append(b, s + i, len) != 0) {
                return MW_ENOMEM;
            }
        }
        i += len;
    }
    if (run && mw__buf_append(b, s + i - run, run) != 0) return MW_ENOMEM;
    return mw__buf_append(b, "\"", 1);
}

/* The first of %.15g, %.16g, %.17g that reads back as the same double (17 always does). */
static int mw__format_double(char *out, size_t size, double v) {
    locale_t previous = mw__c_numbers_begin();
    int prec;
    for (prec = 15; prec <= 17; prec++) {
        snprintf(out, size, "%.*g", prec, v);
        if (strtod(out, NULL) == v) break;
    }
    mw__c_numbers_end(previous);
    return (int)strlen(out);
}

static int mw__json_open(mw_json *j, int object, const char *call) {
    int rc = mw__json_value_start(j, call);
    if (rc) return rc;
    if (j->depth >= MW_JSON_MAX_DEPTH) return mw__json_fail(j, call, "nesting deeper than MW_JSON_MAX_DEPTH");
    if (mw__buf_append(j->out, object ? "{" : "[", 1) != 0) return mw__json_fail(j, call, "out of memory");
    j->in_object[j->depth++] = (unsigned char)object;
    j->after_key = 0;
    j->need_comma = 0;
    return 0;
}

int mw_json_object(mw_json *j) { return mw__json_open(j, 1, "mw_json_object"); }
int mw_json_array(mw_json *j) { return mw__json_open(j, 0, "mw_json_array"); }

static int mw__json_close(mw_json *j, const char *call) {
    if (!j || !j->active || j->error) return MW_EJSON;
    if (j->depth == 0) return mw__json_fail(j, call, "close with no container open");
    if (j->after_key) return mw__json_fail(j, call, "a key without a value");
    if (mw__buf_append(j->out, j->in_object[j->depth - 1] ? "}" : "]", 1) != 0)
        return mw__json_fail(j, call, "out of memory");
    j->depth--;
    return mw__json_value_done(j);
}

int mw_json_close(mw_json *j) { return mw__json_close(j, "mw_json_close"); }

static int mw__json_key_as(mw_json *j, const char *key, size_t n, const char *call) {
    if (!j || !j->active || j->error) return MW_EJSON;
    if (!mw__json_in_object(j)) return mw__json_fail(j, call, "not inside an object");
    if (j->after_key) return mw__json_fail(j, call, "a key where a value is due");
    if (!key) return mw__json_fail(j, call, "NULL key");
    if ((j->need_comma && mw__buf_append(j->out, ",", 1) != 0) || mw__json_put_string(j->out, key, n) != 0 ||
        mw__buf_append(j->out, ":", 1) != 0)
        return mw__json_fail(j, call, "out of memory");
    j->after_key = 1;
    return 0;
}

static int mw__json_key_n(mw_json *j, const char *key, size_t n) { return mw__json_key_as(j, key, n, "mw_json_key"); }

int mw_json_key(mw_json *j, const char *key) { return mw__json_key_n(j, key, key ? strlen(key) : 0); }

/* Writes one scalar token after the checks every value needs. */
static int mw__json_token(mw_json *j, const char *text, size_t n, const char *call) {
    int rc = mw__json_value_start(j, call);
    if (rc) return rc;
    if (mw__buf_append(j->out, text, n) != 0) return mw__json_fail(j, call, "out of memory");
    return mw__json_value_done(j);
}

/* A token from microweb's own writers (a value's text read from a document or a row). */
static int mw__json_scalar(mw_json *j, const char *text, size_t n) {
    return mw__json_token(j, text, n, "mw_json_value");
}

static int mw__json_stringn(mw_json *j, const char *s, size_t n, const char *call) {
    int rc = mw__json_value_start(j, call);
    if (rc) return rc;
    if (mw__json_put_string(j->out, s, n) != 0) return mw__json_fail(j, call, "out of memory");
    return mw__json_value_done(j);
}

static int mw__json_string(mw_json *j, const char *s, const char *call) {
    return s ? mw__json_stringn(j, s, strlen(s), call) : mw__json_token(j, "null", 4, call);
}

static int mw__json_int(mw_json *j, int64_t v, const char *call) {
    char tmp[24];
    return mw__json_token(j, tmp, mw__format_i64(tmp, (long long)v), call); /* snprintf cost 15x as much */
}

static int mw__json_double(mw_json *j, double v, const char *call) {
    char tmp[40];
    if (v != v || v - v != 0) return j ? mw__json_fail(j, call, "NaN or infinity has no JSON form") : MW_EJSON;
    return mw__json_token(j, tmp, (size_t)mw__format_double(tmp, sizeof tmp, v), call);
}

static int mw__json_bool(mw_json *j, int v, const char *call) {
    return v ? mw__json_token(j, "true", 4, call) : mw__json_token(j, "false", 5, call);
}

int mw_json_stringn(mw_json *j, const char *s, size_t n) { return mw__json_stringn(j, s, n, "mw_json_stringn"); }
int mw_json_string(mw_json *j, const char *s) { return mw__json_string(j, s, "mw_json_string"); }
int mw_json_int(mw_json *j, int64_t v) { return mw__json_int(j, v, "mw_json_int"); }
int mw_json_double(mw_json *j, double v) { return mw__json_double(j, v, "mw_json_double"); }
int mw_json_bool(mw_json *j, int v) { return mw__json_bool(j, v, "mw_json_bool"); }
int mw_json_null(mw_json *j) { return mw__json_token(j, "null", 4, "mw_json_null"); }

/* A key and its value, both failing under the pair's name. */
static int mw__json_key_call(mw_json *j, const char *key, const char *call) {
    return mw__json_key_as(j, key, key ? strlen(key) : 0, call);
}
int mw_json_key_string(mw_json *j, const char *key, const char *s) {
    int rc = mw__json_key_call(j, key, "mw_json_key_string");
    return rc ? rc : mw__json_string(j, s, "mw_json_key_string");
}
int mw_json_key_int(mw_json *j, const char *key, int64_t v) {
    int rc = mw__json_key_call(j, key, "mw_json_key_int");
    return rc ? rc : mw__json_int(j, v, "mw_json_key_int");
}
int mw_json_key_double(mw_json *j, const char *key, double v) {
    int rc = mw__json_key_call(j, key, "mw_json_key_double");
    return rc ? rc : mw__json_double(j, v, "mw_json_key_double");
}
int mw_json_key_bool(mw_json *j, const char *key, int v) {
    int rc = mw__json_key_call(j, key, "mw_json_key_bool");
    return rc ? rc : mw__json_bool(j, v, "mw_json_key_bool");
}

/* Closes every container still open; the document must hold exactly one value. */
int mw_json_end(mw_json *j) {
    if (!j || !j->active) return MW_EJSON;
    while (!j->error && j->depth > 0) mw__json_close(j, "mw_json_end");
    if (!j->error && !j->root_done) mw__json_fail(j, "mw_json_end", "no value written");
    j->active = 0;
    return j->error ? MW_EJSON : 0;
}

/* A writer into memory: the writer first, so mw_json_free finds the whole from it. */
typedef struct mw__json_text {
    mw_json writer;
    mw__buf text;
} mw__json_text;

mw_json *mw_json_new(void) {
    mw__json_text *t = (mw__json_text *)MW_MALLOC(sizeof *t);
    if (!t) return NULL;
    memset(&t->text, 0, sizeof t->text);
    mw__json_init(&t->writer, &t->text);
    return &t->writer;
}

const char *mw_json_text(mw_json *j, size_t *len) {
    if (!j || (j->active && mw_json_end(j) != 0) || j->error || mw__buf_reserve(j->out, 1) != 0) return NULL;
    j->out->data[j->out->len] = '\0'; /* past the text, not in it: a second call gives the same */
    if (len) *len = j->out->len;
    return j->out->data;
}

void mw_json_free(mw_json *j) {
    if (!j) return;
    mw__buf_free(j->out);
    MW_FREE(j);
}

/* ---------------------------------------------------------------------------
   JSON reader: strict RFC 8259 into one block (pure)
   --------------------------------------------------------------------------- */
/* A parsed document is one block: a copy of the text, where strings are decoded in
   place (never longer than their text) and NUL-terminated, as are numbers (the byte
   after a number is a delimiter the copy no longer needs); then one 20-byte node per
   value, in pre-order: a container's first member is the node right after it, and
   each node holds the distance, in nodes, to its next sibling. A node finds its bytes
   by distances back from itself, so the block holds no pointer and may move while it
   grows: pointers are handed out once the parse is done. Numeric values are not
   stored; they are read from the text when asked for. Distances are 32-bit: a
   document needing more than 4 GiB, and a key longer than 64 MiB, are refused. */
#define MW__JV_TYPE_MASK 0x7u
#define MW__JV_INTEGRAL 0x8u /* a number without fraction or exponent */
#define MW__JV_HAS_NUL 0x10u /* a string holding a NUL byte (from \u0000) */
#define MW__JV_MEMBER 0x20u  /* an object member: it has a key */
#define MW__JV_KEY_SHIFT 6   /* a member's key length is stored above the flags */
#define MW__JV_MAX_KEY ((1ul << (32 - MW__JV_KEY_SHIFT)) - 1)
#define MW__JV_MAX_BLOCK ((size_t)0xffffffffu)
#define MW__JV_TOO_LARGE "JSON document larger than 4 GiB with its values"
#define MW__JNONE ((size_t)-1) /* no node or offset: the parse failed */

struct mw_jv {
    uint32_t head; /* type | flags | key length << MW__JV_KEY_SHIFT */
    uint32_t next; /* nodes on to the next sibling; 0 for the last */
    uint32_t text; /* bytes back to the string's bytes or the number's text */
    uint32_t len;  /* string bytes, number text bytes, or members of a container */
    uint32_t key;  /* bytes back to the member's key */
};

struct mw_jv_doc {
    mw__buf block;
    const mw_jv *root;
};

typedef struct mw__jparse {
    const char *text, *p, *end; /* the caller's text: read, never written */
    mw__buf *block;
    size_t nodes; /* offset of the first node in the block */
    size_t count; /* nodes so far */
    size_t most;  /* the most bytes the block can need for this text */
    const char *problem;
    int depth;
} mw__jparse;

static size_t mw__jfail(mw__jparse *j, const char *where, const char *problem) {
    if (!j->problem) {
        j->problem = problem;
        j->p = where;
    }
    return MW__JNONE;
}

static void mw__jws(mw__jparse *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

/* Where the byte of the text at `at` sits in the copy. */
static size_t mw__jcopy_offset(const mw__jparse *j, const char *at) { return (size_t)(at - j->text); }

static mw_jv *mw__jnode(const mw__jparse *j, size_t i) { return (mw_jv *)(void *)(j->block->data + j->nodes) + i; }

/* Room for `need` bytes in the block: it doubles, up to the most this text can need. */
static int mw__jreserve(mw__jparse *j, size_t need) {
    size_t cap = j->block->cap < j->most / 2 ? j->block->cap * 2 : j->most;
    char *d;
    if (need > j->most) return mw__jfail(j, j->p, MW__JV_TOO_LARGE), 0;
    if (need <= j->block->cap) return 1;
    if (cap < need) cap = need;
    if (!(d = (char *)MW_REALLOC(j->block->data, cap))) return mw__jfail(j, j->p, "out of memory"), 0;
    j->block->data = d;
    j->block->cap = cap;
    return 1;
}

/* Appends a node for a value whose bytes are at block offset `text`; returns its index. */
static size_t mw__jnew(mw__jparse *j, unsigned head, size_t text, size_t len) {
    size_t at = j->nodes + j->count * sizeof(mw_jv);
    mw_jv *v;
    if (!mw__jreserve(j, at + sizeof *v)) return MW__JNONE;
    v = mw__jnode(j, j->count);
    v->head = head;
    v->next = 0;
    v->text = (uint32_t)(at - text);
    v->len = (uint32_t)len;
    v->key = 0;
    j->block->len = at + sizeof *v;
    return j->count++;
}

/* Four hex digits of a \u escape, or -1. */
static long mw__jhex4(const char *p, const char *end) {
    long v = 0;
    int k;
    if (end - p < 4) return -1;
    for (k = 0; k < 4; k++) {
        int h = mw__hex_value((unsigned char)p[k]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

static size_t mw__utf8_put(char *out, unsigned long cp) {
    if (cp < 0x80) return out[0] = (char)cp, 1;
    if (cp < 0x800) return out[0] = (char)(0xc0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3f)), 2;
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, surrogates or
   code points past U+10FFFF), or 0. */
static size_t mw__utf8_len(const char *p, const char *end) {
    unsigned char c = (unsigned char)*p;
    unsigned cp, min;
    size_t n, k;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1fu, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0fu, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07u, min = 0x10000;
    else return 0;
    if ((size_t)(end - p) < n) return 0;
    for (k = 1; k < n; k++) {
        if (((unsigned char)p[k] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | ((unsigned char)p[k] & 0x3fu);
    }
    return (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) ? 0 : n;
}

/* A \uXXXX escape at j->p (after the backslash and 'u'), with its surrogate pair. */
static int mw__jescape_u(mw__jparse *j, const char *at, unsigned long *cp) {
    long hi = mw__jhex4(j->p, j->end), lo;
    if (hi < 0) return mw__jfail(j, at, "invalid \\u escape"), 0;
    j->p += 4;
    if (hi >= 0xdc00 && hi <= 0xdfff) return mw__jfail(j, at, "lone low surrogate in \\u escape"), 0;
    if (hi >= 0xd800 && hi <= 0xdbff) {
        if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' || (lo = mw__jhex4(j->p + 2, j->end)) < 0xdc00 ||
            lo > 0xdfff)
            return mw__jfail(j, at, "lone high surrogate in \\u escape"), 0;
        j->p += 6;
        *cp = 0x10000 + (((unsigned long)hi - 0xd800) << 10) + ((unsigned long)lo - 0xdc00);
        return 1;
    }
    *cp = (unsigned long)hi;
    return 1;
}

/* The end of a run of bytes that stand for themselves in a JSON string (printable
   ASCII but '"' and '\\'); the string's closing quote ends it at the latest. */
static const char *mw__jplain_run(const char *p) {
    while ((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x80 && *p != '"' && *p != '\\') p++;
    return p;
}

/* A string at j->p (on its opening quote), decoded in place in the copy; returns its
   block offset, or MW__JNONE. *has_nul tells whether it holds a NUL byte (\u0000). */
static size_t mw__jstring(mw__jparse *j, size_t *out_len, int *has_nul) {
    const char *start = j->p++, *q;
    char *out = j->block->data + mw__jcopy_offset(j, j->p), *o = out;
    for (q = j->p; q < j->end && *q != '"'; q++) /* the escapes below then stay inside the string */
        if (*q == '\\') q++;
    if (q >= j->end) return mw__jfail(j, start, "unterminated string");
    *has_nul = 0;
    while (*j->p != '"') {
        unsigned char c = (unsigned char)*j->p;
        if (c < 0x20) return mw__jfail(j, j->p, "control character in string");
        if (c == '\\') {
            const char *at = j->p;
            unsigned long cp;
            const char *m = strchr("\"\\/bfnrt", j->p[1]);
            j->p += 2;
            if (at[1] == 'u') {
                if (!mw__jescape_u(j, at, &cp)) return MW__JNONE;
                *has_nul |= cp == 0;
                o += mw__utf8_put(o, cp);
            } else if (at[1] && m) {
                *o++ = "\"\\/\b\f\n\r\t"[m - "\"\\/bfnrt"];
            } else {
                return mw__jfail(j, at, "invalid escape in string");
            }
        } else if (c < 0x80) { /* a run of ASCII at once: in place already, unless an escape shrank the text */
            const char *run = j->p;
            j->p = mw__jplain_run(run);
            if (o != j->block->data + mw__jcopy_offset(j, run)) memcpy(o, run, (size_t)(j->p - run));
            o += j->p - run;
        } else {
            size_t n = mw__utf8_len(j->p, j->end);
            if (!n) return mw__jfail(j, j->p, "invalid UTF-8 in string");
            memcpy(o, j->p, n);
            o += n;
            j->p += n;
        }
    }
    j->p++;
    *o = '\0';
    *out_len = (size_t)(o - out);
    return (size_t)(out - j->block->data);
}

static size_t mw__jnumber(mw__jparse *j) {
    const char *start = j->p, *problem = NULL, *e;
    int integral;
    size_t v;
    if (!(e = mw__jnumber_end(start, j->end, &integral, &problem))) return mw__jfail(j, start, problem);
    v = mw__jnew(j, MW_JV_NUMBER | (integral ? MW__JV_INTEGRAL : 0u), mw__jcopy_offset(j, start), (size_t)(e - start));
    if (v == MW__JNONE) return v;
    j->block->data[mw__jcopy_offset(j, e)] = '\0'; /* the delimiter after it, in the copy only */
    j->p = e;
    return v;
}

static size_t mw__jvalue(mw__jparse *j);

/* An object's `"key" :`, decoded in place; returns the key's block offset. */
static size_t mw__jkey(mw__jparse *j, size_t *len) {
    const char *at;
    size_t key;
    int has_nul;
    mw__jws(j);
    at = j->p;
    if (j->p >= j->end || *j->p != '"') return mw__jfail(j, j->p, "object key expected");
    if ((key = mw__jstring(j, len, &has_nul)) == MW__JNONE) return key;
    if (*len > MW__JV_MAX_KEY) return mw__jfail(j, at, "object key longer than 64 MiB");
    mw__jws(j);
    if (j->p >= j->end || *j->p != ':') return mw__jfail(j, j->p, "':' expected");
    j->p++;
    return key;
}

static void mw__jset_key(mw__jparse *j, size_t i, size_t key, size_t len) {
    mw_jv *v = mw__jnode(j, i);
    v->head |= MW__JV_MEMBER | (uint32_t)len << MW__JV_KEY_SHIFT;
    v->key = (uint32_t)(j->nodes + i * sizeof *v - key);
}

/* Array or object at j->p: its members follow its node, each linked to the next. */
static size_t mw__jcontainer(mw__jparse *j, int object) {
    const char *open = j->p;
    char close = object ? '}' : ']';
    size_t c = mw__jnew(j, object ? MW_JV_OBJECT : MW_JV_ARRAY, mw__jcopy_offset(j, open), 0), prev = MW__JNONE;
    size_t members = 0;
    if (c == MW__JNONE) return c;
    if (++j->depth > MW_JSON_MAX_DEPTH) return mw__jfail(j, open, "nesting deeper than MW_JSON_MAX_DEPTH");
    j->p++;
    mw__jws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return c;
    }
    for (;;) {
        size_t key = 0, key_len = 0, v;
        if (object && (key = mw__jkey(j, &key_len)) == MW__JNONE) return key;
        if ((v = mw__jvalue(j)) == MW__JNONE) return v;
        if (object) mw__jset_key(j, v, key, key_len);
        if (prev != MW__JNONE) mw__jnode(j, prev)->next = (uint32_t)(v - prev);
        prev = v;
        members++;
        mw__jws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == close) break;
        return mw__jfail(j, j->p, object ? "',' or '}' expected" : "',' or ']' expected");
    }
    mw__jnode(j, c)->len = (uint32_t)members;
    j->p++;
    j->depth--;
    return c;
}

static size_t mw__jliteral(mw__jparse *j, const char *word, mw_jv_type t) {
    size_t n = strlen(word), v;
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) return mw__jfail(j, j->p, "unexpected character");
    if ((v = mw__jnew(j, t, mw__jcopy_offset(j, j->p), 0)) != MW__JNONE) j->p += n;
    return v;
}

static size_t mw__jvalue(mw__jparse *j) {
    mw__jws(j);
    if (j->p >= j->end) return mw__jfail(j, j->p, "value expected");
    switch (*j->p) {
    case '{': return mw__jcontainer(j, 1);
    case '[': return mw__jcontainer(j, 0);
    case 't': return mw__jliteral(j, "true", MW_JV_TRUE);
    case 'f': return mw__jliteral(j, "false", MW_JV_FALSE);
    case 'n': return mw__jliteral(j, "null", MW_JV_NULL);
    case '"': {
        size_t len = 0, s;
        int has_nul = 0;
        if ((s = mw__jstring(j, &len, &has_nul)) == MW__JNONE) return s;
        return mw__jnew(j, MW_JV_STRING | (has_nul ? MW__JV_HAS_NUL : 0u), s, len);
    }
    default: return mw__jnumber(j);
    }
}

/* The most bytes the block can need for a text of n bytes: its copy, then a node
   per value. Each value but the first takes two bytes of text (its first byte, and a
   ',', ':' or its container's first byte) and an unclosed container only one: so
   (n + 1 + open containers) / 2 values at most, and at most MW_JSON_MAX_DEPTH + 1
   containers are open when a parse fails. "[0,0,0,...]", the worst case, takes 11
   bytes per byte of text. 0 for a text whose block would pass 32-bit distances. */
static size_t mw__jmost_bytes(size_t n, size_t *nodes_at) {
    size_t values = n / 2 + (MW_JSON_MAX_DEPTH + 3) / 2 + 1;
    if (n > MW__JV_MAX_BLOCK - 2 * sizeof(mw_jv)) return 0;
    *nodes_at = (n + 1 + 3) & ~(size_t)3; /* the copy and its NUL, then nodes 4-byte aligned */
    if (values > (MW__JV_MAX_BLOCK - *nodes_at) / sizeof(mw_jv)) return MW__JV_MAX_BLOCK;
    return *nodes_at + values * sizeof(mw_jv);
}

/* Parses n bytes of JSON text into block (its previous content is dropped); the root
   value, or NULL with *offset and *problem saying why. */
static const mw_jv *mw__json_parse(mw__buf *block, const char *s, size_t n, size_t *offset, const char **problem) {
    mw__jparse j;
    size_t root = MW__JNONE;
    memset(&j, 0, sizeof j);
    j.text = j.p = s;
    j.end = s + n;
    j.block = block;
    j.most = mw__jmost_bytes(n, &j.nodes);
    block->len = 0;
    /* room first for the copy and as many bytes of nodes: about what a text of records needs */
    if (!j.most) {
        mw__jfail(&j, s, MW__JV_TOO_LARGE);
    } else if (mw__jreserve(&j, j.nodes + (n < j.most - j.nodes ? n : j.most - j.nodes))) {
        memcpy(block->data, s, n);
        block->data[n] = '\0';
        block->len = j.nodes;
        if ((root = mw__jvalue(&j)) != MW__JNONE) {
            mw__jws(&j);
            if (j.p != j.end) root = mw__jfail(&j, j.p, "unexpected data after the JSON value");
        }
    }
    *offset = (size_t)(j.p - s);
    *problem = j.problem;
    return root == MW__JNONE ? NULL : mw__jnode(&j, root);
}

/* A document that outlives the call keeps only the bytes it uses. */
static void mw__jv_doc_fit(mw_jv_doc *d) {
    size_t root = (size_t)((const char *)d->root - d->block.data);
    char *p = (char *)MW_REALLOC(d->block.data, d->block.len);
    if (!p) return;
    d->block.data = p;
    d->block.cap = d->block.len;
    d->root = (const mw_jv *)(void *)(p + root);
}

mw_jv_doc *mw_jv_parse(const char *text, size_t len, size_t *err_offset, const char **err_problem) {
    mw_jv_doc *d = (mw_jv_doc *)MW_MALLOC(sizeof *d);
    size_t off = 0;
    const char *problem = "out of memory";
    if (d) {
        memset(d, 0, sizeof *d);
        if ((d->root = mw__json_parse(&d->block, text ? text : "", text ? len : 0, &off, &problem)) != NULL) {
            mw__jv_doc_fit(d);
            return d;
        }
        mw_jv_free(d);
    }
    if (err_offset) *err_offset = off;
    if (err_problem) *err_problem = problem;
    return NULL;
}

void mw_jv_free(mw_jv_doc *doc) {
    if (!doc) return;
    mw__buf_free(&doc->block);
    MW_FREE(doc);
}

static unsigned mw__jv_type(const mw_jv *v) { return v->head & MW__JV_TYPE_MASK; }
static const char *mw__jv_bytes(const mw_jv *v) { return (const char *)v - v->text; }
static size_t mw__jv_key_len(const mw_jv *v) { return v->head >> MW__JV_KEY_SHIFT; }
static int mw__jv_is(const mw_jv *v, mw_jv_type t) { return v && mw__jv_type(v) == (unsigned)t; }

const mw_jv *mw_jv_root(const mw_jv_doc *doc) { return doc ? doc->root : NULL; }
mw_jv_type mw_jv_kind(const mw_jv *v) { return v ? (mw_jv_type)mw__jv_type(v) : MW_JV_NULL; }
size_t mw_jv_len(const mw_jv *v) { return v && !mw__jv_is(v, MW_JV_NUMBER) ? v->len : 0; }
const mw_jv *mw_jv_first(const mw_jv *v) {
    return (mw__jv_is(v, MW_JV_ARRAY) || mw__jv_is(v, MW_JV_OBJECT)) && v->len ? v + 1 : NULL;
}
const mw_jv *mw_jv_next(const mw_jv *v) { return v && v->next ? v + v->next : NULL; }
const char *mw_jv_key(const mw_jv *v) { return v && (v->head & MW__JV_MEMBER) ? (const char *)v - v->key : NULL; }

/* The member named key (whole keys, by length); with duplicate keys, the last one
   (as JavaScript reads it). */
static const mw_jv *mw__jv_getn(const mw_jv *obj, const char *key, size_t n) {
    const mw_jv *m, *found = NULL;
    if (!mw__jv_is(obj, MW_JV_OBJECT)) return NULL;
    for (m = mw_jv_first(obj); m; m = mw_jv_next(m))
        if (mw__jv_key_len(m) == n && memcmp(mw_jv_key(m), key, n) == 0) found = m;
    return found;
}

const mw_jv *mw_jv_get(const mw_jv *obj, const char *key) { return key ? mw__jv_getn(obj, key, strlen(key)) : NULL; }

const mw_jv *mw_jv_at(const mw_jv *arr, size_t i) {
    const mw_jv *m;
    if (!mw__jv_is(arr, MW_JV_ARRAY)) return NULL;
    for (m = mw_jv_first(arr); m && i; m = mw_jv_next(m)) i--;
    return m;
}

/* "user.address.city", "items[2].name": keys between dots, indexes in brackets. */
const mw_jv *mw_jv_path(const mw_jv *v, const char *path) {
    const char *p = path;
    while (v && p && *p) {
        if (*p == '[') {
            char *end;
            unsigned long i = strtoul(p + 1, &end, 10);
            if (end == p + 1 || *end != ']') return NULL;
            v = mw_jv_at(v, i);
            p = end + 1;
        } else {
            size_t n = strcspn(p, ".[");
            v = mw__jv_getn(v, p, n);
            p += n;
        }
        if (*p == '.') p++;
    }
    return v;
}

mw_str mw_jv_string(const mw_jv *v) {
    mw_str s = {NULL, 0};
    if (mw__jv_is(v, MW_JV_STRING)) {
        s.ptr = mw__jv_bytes(v);
        s.len = v->len;
    }
    return s;
}

/* A string that holds a NUL byte has no C string form: "admin\u0000x" must not read as "admin". */
const char *mw_jv_str(const mw_jv *v, const char *def) {
    return mw__jv_is(v, MW_JV_STRING) && !(v->head & MW__JV_HAS_NUL) ? mw__jv_bytes(v) : def;
}

/* The number as an int64, if it is written as one and in range. */
static int mw__jv_int64(const mw_jv *v, long long *out) {
    return mw__jv_is(v, MW_JV_NUMBER) && (v->head & MW__JV_INTEGRAL) && mw__parse_int64(mw__jv_bytes(v), v->len, out);
}

long long mw_jv_int(const mw_jv *v, long long def) {
    long long i;
    return mw__jv_int64(v, &i) ? i : def;
}
double mw_jv_num(const mw_jv *v, double def) { return mw__jv_is(v, MW_JV_NUMBER) ? mw__strtod(mw__jv_bytes(v)) : def; }
int mw_jv_bool(const mw_jv *v, int def) { return mw__jv_is(v, MW_JV_TRUE) ? 1 : mw__jv_is(v, MW_JV_FALSE) ? 0 : def; }

int mw_json_value(mw_json *j, const mw_jv *v) {
    static const char call[] = "mw_json_value";
    const mw_jv *m;
    long long i;
    int rc = 0, object = mw__jv_is(v, MW_JV_OBJECT);
    switch (mw_jv_kind(v)) {
    case MW_JV_NULL: return mw__json_token(j, "null", 4, call);
    case MW_JV_TRUE: return mw__json_bool(j, 1, call);
    case MW_JV_FALSE: return mw__json_bool(j, 0, call);
    case MW_JV_STRING: return mw__json_stringn(j, mw__jv_bytes(v), v->len, call);
    case MW_JV_NUMBER:
        return mw__jv_int64(v, &i) ? mw__json_int(j, i, call) : mw__json_double(j, mw_jv_num(v, 0), call);
    default:
        rc = mw__json_open(j, object, call);
        for (m = mw_jv_first(v); m && !rc; m = mw_jv_next(m)) {
            if (object) rc = mw__json_key_as(j, mw_jv_key(m), mw__jv_key_len(m), call);
            if (!rc) rc = mw_json_value(j, m);
        }
        return rc ? rc : mw__json_close(j, call);
    }
}

/* ---------------------------------------------------------------------------
   response: what a handler builds (status, headers, a body in memory or a body
   source), checked as it is built; then its head: status line, Content-Length or
   chunked framing. A handler mistake becomes a 500, logged once per route.
   --------------------------------------------------------------------------- */
typedef struct mw__worker mw__worker;
typedef struct mw__conn mw__conn;

#define MW__EXT_MAX 8 /* extensions an app holds and a request keeps state for (PostgreSQL is one) */

struct mw_req {
    mw_app *app;
    const mw__route *route; /* the route that matched */
    mw__arena *arena;       /* freed when the request ends */
    const mw__limits *limits;
    const mw__head *head;
    const char *method, *path, *query;
    const char *body;
    size_t body_len;
    size_t nparams;
    const char *param_names[MW_MAX_PARAMS];
    const char *param_values[MW_MAX_PARAMS];
    int fail_status; /* a malformed body a handler asked about: the answer becomes this error */
    const char *fail_detail;
    long long fail_offset; /* byte offset of a JSON error, else -1 */
    int json_parsed;
    const mw_jv *json;
    mw__buf *json_block;    /* the worker's: holds the parsed body, reused by the next request */
    void *ext[MW__EXT_MAX]; /* each extension's state for this request, NULL until it is used */
    struct mw__arg *args;   /* the declared query parameters, once checked (mw_arg_*) */
    mw_str prefix_path;     /* the path hook, CORS and CSRF prefixes are matched against (mw__prefix_path) */
};

/* Where the body comes from once the head is sent. */
enum { MW__SRC_MEMORY, MW__SRC_FILE, MW__SRC_PULL, MW__SRC_PUSH };

typedef struct mw__source {
    int kind;
    int fd;                          /* file: closed when the response ends */
    unsigned long long offset, left; /* file: the next byte and how many remain */
    mw_pull_fn pull;                 /* pull: asked for more when the socket can take it */
    void *arg;
    void (*release)(void *arg); /* pull: called once when the response ends, however it ends */
    mw_stream *stream;          /* push */
} mw__source;

/* Handler mistakes, a bit each: logged once per route and kind, so a hot path cannot
   flood the log. */
enum {
    MW__WARN_STATUS = 1,
    MW__WARN_JSON = 2,
    MW__WARN_EMPTY = 4,
    MW__WARN_TWICE = 8,
    MW__WARN_HEADER = 16,
    MW__WARN_COOKIE = 32,
    MW__WARN_COMMITTED = 64
};

struct mw_res {
    int status;
    int is_head;        /* a HEAD request: the body is measured, not sent */
    int close;          /* the handler asked for Connection: close */
    int json_begun;     /* mw_json_begin was called: the writer must end cleanly */
    int touched;        /* the handler called something on the response */
    int wholes;         /* whole-response calls (mw_send, mw_text, mw_json_begin, ...) */
    int committed;      /* mw_flush sent the head: status and headers are fixed */
    const char *broken; /* the first handler mistake: the answer becomes 500 */
    int debug;          /* the app's debug mode: error answers explain themselves */
    mw__buf *body;      /* these buffers belong to the worker and are reused */
    mw__buf *headers;
    mw__buf *ctype;
    mw_json json;
    mw__source src;
    mw__logger *log;
    const mw__route *route; /* NULL for automatic answers */
    int after_due;          /* the after hooks have yet to run on this answer */
    int in_after;           /* they are running: status and body are fixed */
    mw__worker *worker;     /* the worker and connection answering, for mw_flush and streams */
    mw__conn *conn;
    const struct mw__protocol *upgrade; /* a 101: the protocol the connection switches to */
    void *upgrade_state;                /* ... and its state for the connection */
    char why[256];                      /* a mistake's words when they are made up (broken may point here) */
};

#define MW__DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

static const char mw__months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
#define MW__DATE_MIN (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define MW__DATE_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */

/* Two decimal digits of v (0-99) at o. */
static char *mw__put_2digits(char *o, int v) {
    *o++ = (char)('0' + v / 10);
    *o++ = (char)('0' + v % 10);
    return o;
}

/* An HTTP-date (RFC 9110 §5.6.7) at out: MW__DATE_LEN bytes and a NUL. Written by hand
   from the days since 1970 (the civil calendar, Hinnant's algorithm): a file's
   Last-Modified is formatted on every request for it, and snprintf would cost more
   than the rest of the head. */
static void mw__format_http_date(long long t, char out[MW__DATE_LEN + 1]) {
    static const char days[] = "ThuFriSatSunMonTueWed";
    long long day, secs, z, era, doe, yoe, y, doy, mp;
    int m, d, wday;
    char *o = out;
    if (t < MW__DATE_MIN || t > MW__DATE_MAX) t = t < MW__DATE_MIN ? MW__DATE_MIN : MW__DATE_MAX; /* 4 digits of year */
    day = (t >= 0 ? t : t - 86399) / 86400;
    secs = t - day * 86400;
    z = day + 719468;
    wday = (int)(((day % 7) + 7) % 7);
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = (int)(doy - (153 * mp + 2) / 5 + 1);
    m = (int)(mp < 10 ? mp + 3 : mp - 9);
    y = yoe + era * 400 + (m <= 2);
    memcpy(o, days + wday * 3, 3);
    o += 3;
    *o++ = ',';
    *o++ = ' ';
    o = mw__put_2digits(o, d);
    *o++ = ' ';
    memcpy(o, mw__months + (m - 1) * 3, 3);
    o += 3;
    *o++ = ' ';
    o = mw__put_2digits(mw__put_2digits(o, (int)(y / 100)), (int)(y % 100));
    *o++ = ' ';
    o = mw__put_2digits(o, (int)(secs / 3600));
    *o++ = ':';
    o = mw__put_2digits(o, (int)(secs / 60 % 60));
    *o++ = ':';
    o = mw__put_2digits(o, (int)(secs % 60));
    memcpy(o, " GMT", 5);
}
#define MW__TEXT_PLAIN "text/plain; charset=utf-8"
#define MW__APPLICATION_JSON "application/json"

static const char *mw__reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Client Error" : "Server Error";
    }
}

static const char *mw__route_method(const mw__route *r) { return mw__method_names[r->slot]; } /* "*": any */

#define MW__DEBUG_FIELD "Microweb-Debug"

static int mw__add_header(mw_res *rs, const char *name, const char *value);

/* Debug mode: a mistake that leaves the answer as it is (a second response, a refused
   header) is told in a header field of that answer, while its head is still to be
   sent. The words may quote what the handler passed: control bytes become '?'. */
static void mw__res_debug_note(mw_res *rs, const char *what) {
    char line[768]; /* a route name and a mistake's words (mw__res_warn's 512 bytes) */
    size_t i;
    const mw__route *r = rs->route;
    if (r) snprintf(line, sizeof line, "route %s %.200s: %s", mw__route_method(r), r->pattern, what);
    else snprintf(line, sizeof line, "%s", what);
    for (i = 0; line[i]; i++)
        if (mw__is_field_ctl((unsigned char)line[i])) line[i] = '?';
    mw__add_header(rs, MW__DEBUG_FIELD, line);
}

/* Logs a handler mistake once per route and kind, naming the route; in debug mode the
   answer carries it too (mw__res_debug_note), every time. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static void
mw__res_warn(mw_res *rs, unsigned kind, const char *fmt, ...) {
    char what[512];
    va_list ap;
    mw__route *r = (mw__route *)rs->route;
    int log = r && rs->log && !(__atomic_fetch_or(&r->warned, kind, __ATOMIC_RELAXED) & kind);
    int note = rs->debug && !rs->committed;
    if (!log && !note) return;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (log) mw__log(rs->log, MW_LOG_ERROR, "route %s %s: %s", mw__route_method(r), r->pattern, what);
    if (note) mw__res_debug_note(rs, what);
}

/* A mistake that makes the whole answer a 500 (the first one is kept). */
static int mw__res_break(mw_res *rs, unsigned kind, const char *why) {
    if (rs->in_after) return mw__res_warn(rs, kind, "%s in an after hook: ignored", why), MW_ESTATE;
    if (!rs->broken) rs->broken = why;
    mw__res_warn(rs, kind, "%s; answered 500", why);
    return MW_EINVAL;
}

/* mw__res_break with words made up for this mistake (a call's name, a template's). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static int
mw__res_breakf(mw_res *rs, unsigned kind, const char *fmt, ...) {
    char other[sizeof rs->why];
    char *why = rs->broken || rs->in_after ? other : rs->why; /* the first mistake's words stay */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof other, fmt, ap);
    va_end(ap);
    return mw__res_break(rs, kind, why);
}

static int mw__valid_status(int status) { return status >= 200 && status <= 599; } /* 1xx are the server's own */

static int mw__res_bad_status(mw_res *rs, int status) {
    return mw__res_breakf(rs, MW__WARN_STATUS, "invalid status code %d (200-599)", status);
}

int mw_status(mw_res *rs, int status) {
    if (!rs) return MW_EINVAL;
    rs->touched = 1;
    /* after mw_flush the head is gone; a stream or pull body is framed for its status */
    if (rs->committed || rs->src.kind != MW__SRC_MEMORY || rs->in_after)
        return mw__res_warn(rs, MW__WARN_COMMITTED, "mw_status after the body began: ignored"), MW_ESTATE;
    if (!mw__valid_status(status)) return mw__res_bad_status(rs, status);
    rs->status = status;
    return 0;
}

/* A header value may hold HTAB, SP, visible ASCII and obs-text; a CR or LF would let
   the value start a new header or a new response (response splitting), NUL would
   truncate it for C code downstream. */
static int mw__valid_field_value(const char *v) {
    for (; *v; v++)
        if (mw__is_field_ctl((unsigned char)*v)) return 0;
    return 1;
}

/* The length of s when it is a token (RFC 9110 §5.6.2), else 0. */
static size_t mw__token_len(const char *s) {
    size_t n = 0;
    while (mw__is_tchar((unsigned char)s[n])) n++; /* NUL is no tchar */
    return s[n] ? 0 : n;
}

static int mw__valid_token(const char *s) { return mw__token_len(s) > 0; }

static int mw__set_content_type(mw_res *rs, mw_str value) {
    rs->ctype->len = 0;
    return mw__buf_append(rs->ctype, value.ptr, value.len);
}

/* Appends "name: value" to the response's header lines (both already checked). */
static int mw__add_header_n(mw_res *rs, const char *name, size_t name_len, const char *value, size_t len) {
    mw__buf *h = rs->headers;
    char *o;
    if (mw__buf_reserve(h, name_len + len + 4) != 0) return MW_ENOMEM;
    o = h->data + h->len;
    memcpy(o, name, name_len);
    o += name_len;
    *o++ = ':';
    *o++ = ' ';
    memcpy(o, value, len);
    o += len;
    *o++ = '\r';
    *o++ = '\n';
    h->len = (size_t)(o - h->data);
    return 0;
}

static int mw__add_header(mw_res *rs, const char *name, const char *value) {
    return mw__add_header_n(rs, name, strlen(name), value, strlen(value));
}

static int mw__set_header_checked(mw_res *rs, const char *name, const char *value) {
    size_t nlen = name ? mw__token_len(name) : 0;
    mw_str v;
    if (!nlen || !value || !mw__valid_field_value(value)) return MW_EINVAL;
    v = mw__trim_ows(value, strlen(value)); /* as the parser reads a request's field values */
    switch (nlen) {                         /* the names microweb treats itself have lengths of their own */
    case 4:                                 /* Date */
    case 14: /* Content-Length: framing is microweb's alone, a second one would be ambiguous */
    case 17: /* Transfer-Encoding */
        if (mw__ieq(name, nlen, "date") || mw__ieq(name, nlen, "content-length") ||
            mw__ieq(name, nlen, "transfer-encoding"))
            return MW_EINVAL;
        break;
    case 10:
        if (!mw__ieq(name, nlen, "connection")) break;
        if (!mw__ieq(v.ptr, v.len, "close") || rs->in_after) return MW_EINVAL; /* after hooks: decided */
        rs->close = 1;
        return 0;
    case 12:
        if (mw__ieq(name, nlen, "content-type")) return mw__set_content_type(rs, v);
        break;
    default: break;
    }
    return mw__add_header_n(rs, name, nlen, v.ptr, v.len);
}

int mw_set_header(mw_res *rs, const char *name, const char *value) {
    int rc;
    if (!rs) return MW_EINVAL;
    rs->touched = 1;
    if (rs->committed) return mw__res_warn(rs, MW__WARN_COMMITTED, "mw_set_header after mw_flush: ignored"), MW_ESTATE;
    rc = mw__set_header_checked(rs, name, value);
    if (rc == MW_EINVAL)
        mw__res_warn(rs, MW__WARN_HEADER,
                     "mw_set_header refused header \"%.64s\" (invalid name or value, or a header "
                     "microweb sets itself)",
                     name ? name : "(null)");
    return rc;
}

static int mw__flush_if_full(mw_res *rs);

/* A write where the body cannot take one: after mw_json_begin (the writer owns the
   body), or in an after hook (the head, with the body's length, is being rendered). */
static int mw__res_body_closed(mw_res *rs) {
    if (rs->in_after) return mw__res_warn(rs, MW__WARN_COMMITTED, "a body write in an after hook: ignored"), MW_ESTATE;
    return mw__res_break(rs, MW__WARN_JSON, "mw_write or mw_printf after mw_json_begin");
}

int mw_write(mw_res *rs, const void *data, size_t len) {
    if (!rs || (!data && len)) return MW_EINVAL;
    rs->touched = 1;
    if (rs->json_begun || rs->in_after) return mw__res_body_closed(rs);
    if (mw__buf_append(rs->body, data, len) != 0) return MW_ENOMEM;
    return mw__flush_if_full(rs);
}

int mw_vprintf(mw_res *rs, const char *fmt, va_list ap) {
    va_list ap2;
    int n;
    size_t room;
    if (!rs || !fmt) return MW_EINVAL;
    rs->touched = 1;
    if (rs->json_begun || rs->in_after) return mw__res_body_closed(rs);
    if (mw__buf_reserve(rs->body, 128) != 0) return MW_ENOMEM;
    room = rs->body->cap - rs->body->len;
    va_copy(ap2, ap);
    n = vsnprintf(rs->body->data + rs->body->len, room, fmt, ap2);
    va_end(ap2);
    if (n < 0) return MW_EINVAL;
    if ((size_t)n >= room) {
        if (mw__buf_reserve(rs->body, (size_t)n + 1) != 0) return MW_ENOMEM;
        vsnprintf(rs->body->data + rs->body->len, (size_t)n + 1, fmt, ap);
    }
    rs->body->len += (size_t)n;
    return mw__flush_if_full(rs) == 0 ? n : MW_EIO;
}

int mw_printf(mw_res *rs, const char *fmt, ...) {
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = mw_vprintf(rs, fmt, ap);
    va_end(ap);
    return n;
}

static void mw__source_release(mw__source *src, int completed);

/* Starts a whole response (status, content type, body or source), replacing anything
   written before: a second one in a handler is logged, the last one is sent. */
static int mw__res_begin_whole(mw_res *rs, int status, const char *content_type, size_t ctype_len) {
    if (!rs) return MW_EINVAL;
    rs->touched = 1;
    if (rs->committed || rs->in_after)
        return mw__res_warn(rs, MW__WARN_COMMITTED, "a whole response after mw_flush or in an after hook: ignored"),
               MW_ESTATE;
    if (!mw__valid_status(status)) return mw__res_bad_status(rs, status);
    if (++rs->wholes == 2) mw__res_warn(rs, MW__WARN_TWICE, "a second response replaced the first (the last is sent)");
    rs->status = status;
    if (content_type) {
        rs->ctype->len = 0;
        if (mw__buf_append(rs->ctype, content_type, ctype_len) != 0) return MW_ENOMEM;
    }
    rs->body->len = 0;
    rs->json_begun = 0;
    if (rs->src.kind != MW__SRC_MEMORY) mw__source_release(&rs->src, 0);
    return 0;
}

/* Replaces the body; the content type (NULL: keep) is one of microweb's own or checked. */
static int mw__send_trusted(mw_res *rs, int status, const char *content_type, size_t ctype_len, const void *data,
                            size_t len) {
    int rc = mw__res_begin_whole(rs, status, content_type, ctype_len);
    return rc ? rc : mw_write(rs, data, len);
}

int mw_send(mw_res *rs, int status, const char *content_type, const void *data, size_t len) {
    if (content_type && !mw__valid_field_value(content_type)) return MW_EINVAL;
    return mw__send_trusted(rs, status, content_type, content_type ? strlen(content_type) : 0, data, len);
}

int mw_text(mw_res *rs, int status, const char *text) {
    return mw__send_trusted(rs, status, MW__TEXT_PLAIN, sizeof MW__TEXT_PLAIN - 1, text, text ? strlen(text) : 0);
}

int mw_send_json(mw_res *rs, int status, const char *json_text) {
    return mw__send_trusted(rs, status, MW__APPLICATION_JSON, sizeof MW__APPLICATION_JSON - 1, json_text,
                            json_text ? strlen(json_text) : 0);
}

mw_json *mw_json_begin(mw_res *rs, int status) {
    if (mw__res_begin_whole(rs, status, MW__APPLICATION_JSON, sizeof MW__APPLICATION_JSON - 1) != 0) return NULL;
    mw__json_init(&rs->json, rs->body);
    rs->json_begun = 1;
    return &rs->json;
}

/* "GET /notes/{id:int}": a route as debug mode names it, into out. */
static const char *mw__route_name(const mw__route *r, char *out, size_t size) {
    snprintf(out, size, "%s %s", mw__route_method(r), r->pattern);
    return out;
}

/* An error answer in mw_error's shape: status, reason, detail; then, for microweb's
   own answers, a JSON error's byte offset (offset >= 0) and the route (NULL: none). */
static int mw__res_problem(mw_res *rs, int status, const char *detail, long long offset, const mw__route *route) {
    char name[512];
    mw_json *j = mw_json_begin(rs, status);
    if (!j) return MW_EINVAL;
    mw_json_object(j);
    mw_json_key_int(j, "status", status);
    mw_json_key_string(j, "error", mw__reason(status));
    if (detail) mw_json_key_string(j, "detail", detail);
    if (offset >= 0) mw_json_key_int(j, "offset", offset);
    if (route) mw_json_key_string(j, "route", mw__route_name(route, name, sizeof name));
    return mw_json_end(j);
}

int mw_error(mw_res *rs, int status, const char *detail) { return mw__res_problem(rs, status, detail, -1, NULL); }

/* The route debug mode names in microweb's own answers; NULL when it is off. */
static const mw__route *mw__res_debug_route(const mw_res *rs) { return rs->debug ? rs->route : NULL; }

/* Forgets what the handler built, for microweb's own answer (an error, a refusal). */
static void mw__res_clear(mw_res *rs) {
    rs->headers->len = 0;
    rs->wholes = 0;
    rs->broken = NULL;
}

static void mw__res_replace(mw_res *rs, int status, const char *detail) {
    mw__res_clear(rs);
    mw__res_problem(rs, status, detail, -1, mw__res_debug_route(rs));
}

/* A file body whose content type is microweb's own or already checked. */
static int mw__send_file_trusted(mw_res *rs, int status, const char *content_type, size_t ctype_len, int fd,
                                 unsigned long long offset, unsigned long long length) {
    int rc = mw__res_begin_whole(rs, status, content_type, ctype_len);
    if (rc) return rc;
    rs->src.kind = MW__SRC_FILE;
    rs->src.fd = fd;
    rs->src.offset = offset;
    rs->src.left = length;
    return 0;
}

int mw_send_file(mw_res *rs, int status, const char *content_type, int fd, long long offset, long long length) {
    if (content_type && !mw__valid_field_value(content_type)) return MW_EINVAL;
    if (fd < 0 || offset < 0 || length < 0) return MW_EINVAL;
    return mw__send_file_trusted(rs, status, content_type, content_type ? strlen(content_type) : 0, fd,
                                 (unsigned long long)offset, (unsigned long long)length);
}

int mw_send_pull(mw_res *rs, int status, const char *content_type, mw_pull_fn fn, void *arg,
                 void (*release)(void *arg)) {
    int rc;
    if (!fn || (content_type && !mw__valid_field_value(content_type))) return MW_EINVAL;
    rc = mw__res_begin_whole(rs, status, content_type, content_type ? strlen(content_type) : 0);
    if (rc) return rc;
    rs->src.kind = MW__SRC_PULL;
    rs->src.pull = fn;
    rs->src.arg = arg;
    rs->src.release = release;
    return 0;
}

/* After the handler: a JSON writer left open or misused, an invalid status, or no
   response at all must not reach the wire as a 200: the answer becomes a 500. */
static void mw__res_check(mw_res *rs) {
    if (rs->json_begun && !rs->broken && rs->json.error)
        mw__res_breakf(rs, MW__WARN_JSON, "%s: %s", rs->json.call, rs->json.error);
    else if (rs->json_begun && !rs->broken && rs->json.active)
        mw__res_break(rs, MW__WARN_JSON, "handler returned before mw_json_end");
    if (!rs->touched) mw__res_break(rs, MW__WARN_EMPTY, "handler returned without writing a response");
    /* debug mode tells what went wrong; production only that something did */
    if (rs->broken && !rs->committed)
        mw__res_replace(rs, 500, rs->debug ? rs->broken : "the response could not be produced");
}

/* How a response's end is marked (RFC 9112 §6.3). */
enum { MW__FRAME_LENGTH, MW__FRAME_CHUNKED, MW__FRAME_CLOSE, MW__FRAME_NONE };

/* The framing of a response whose length is not known in advance: chunked for
   HTTP/1.1, the connection's close for HTTP/1.0, none where no body is allowed. */
static int mw__open_framing(const mw_res *rs, int http10) {
    if (rs->is_head || rs->status == 204 || rs->status == 304) return MW__FRAME_NONE;
    return http10 ? MW__FRAME_CLOSE : MW__FRAME_CHUNKED;
}

/* Appends the status line and header fields to o. */
static int mw__render_head(mw__buf *o, const mw_res *rs, const char *date, int keep_alive, int http10, int framing,
                           unsigned long long length) {
    int bodiless =
        rs->status < 200 || rs->status == 204 || rs->status == 304; /* RFC 9110 §8.6: no Content-Length there */
    if (mw__buf_reserve(o, 200 + rs->headers->len + rs->ctype->len) != 0) return MW_ENOMEM;
    MW__PUT_LIT(o, "HTTP/1.1 ");
    mw__buf_put_u64(o, (unsigned long long)rs->status);
    MW__PUT_LIT(o, " ");
    mw__buf_puts(o, mw__reason(rs->status));
    MW__PUT_LIT(o, "\r\nDate: ");
    mw__buf_append(o, date, MW__DATE_LEN);
    MW__PUT_LIT(o, "\r\n");
    if (!bodiless) {
        if (rs->ctype->len || length || framing != MW__FRAME_LENGTH) {
            MW__PUT_LIT(o, "Content-Type: ");
            if (rs->ctype->len) mw__buf_append(o, rs->ctype->data, rs->ctype->len);
            else MW__PUT_LIT(o, MW__TEXT_PLAIN);
            MW__PUT_LIT(o, "\r\n");
        }
        if (framing == MW__FRAME_CHUNKED || (framing == MW__FRAME_NONE && rs->is_head && !http10)) {
            MW__PUT_LIT(o, "Transfer-Encoding: chunked\r\n");
        } else if (framing == MW__FRAME_LENGTH) {
            MW__PUT_LIT(o, "Content-Length: ");
            mw__buf_put_u64(o, length);
            MW__PUT_LIT(o, "\r\n");
        }
    }
    if (!keep_alive) MW__PUT_LIT(o, "Connection: close\r\n");
    else if (http10) MW__PUT_LIT(o, "Connection: keep-alive\r\n");
    mw__buf_append(o, rs->headers->data, rs->headers->len);
    return MW__PUT_LIT(o, "\r\n");
}

/* v in lower-case hex at o (at most 16 bytes); returns the end. */
static char *mw__put_hex(char *o, unsigned long long v) {
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t k = sizeof tmp;
    do {
        tmp[--k] = hex[v & 15];
        v >>= 4;
    } while (v);
    memcpy(o, tmp + k, sizeof tmp - k);
    return o + sizeof tmp - k;
}

/* "1a2b\r\n": a chunk's size line (RFC 9112 §7.1). */
static size_t mw__chunk_size_line(char *out, size_t n) {
    char *o = mw__put_hex(out, n);
    memcpy(o, "\r\n", 2);
    return (size_t)(o - out) + 2;
}

#define MW__LAST_CHUNK "0\r\n\r\n" /* a zero-size chunk and an empty trailer end a chunked body */

/* data as the body frames it, into iov (room for 3): a chunk (its size line, the data,
   CRLF) or the bare bytes. size_line needs 24 bytes. Returns the iovecs used. */
static int mw__frame_iov(struct iovec *iov, char *size_line, const void *data, size_t len, int chunked) {
    int n = 0;
    if (chunked) {
        iov[n].iov_base = size_line;
        iov[n++].iov_len = mw__chunk_size_line(size_line, len);
    }
    iov[n].iov_base = (void *)data;
    iov[n++].iov_len = len;
    if (chunked) {
        iov[n].iov_base = (void *)"\r\n";
        iov[n++].iov_len = 2;
    }
    return n;
}

/* ---------------------------------------------------------------------------
   request toolkit: query and form values, cookies, typed parameters, JSON and
   multipart bodies
   --------------------------------------------------------------------------- */
void *mw_req_alloc(mw_req *rq, size_t n) { return rq ? mw__arena_alloc(rq->arena, n) : NULL; }

/* Decodes one character of a query string or form at src[*i] (advancing *i): '+' is a
   space and %XX a byte, as browsers send them. It never fails: a malformed escape
   ("%zz", a trailing "%") and "%00" are kept as written. */
static char mw__form_char(const char *src, size_t n, size_t *i) {
    char c = src[*i];
    if (c == '+') return ' ';
    if (c == '%' && *i + 2 < n) {
        int hi = mw__hex_value((unsigned char)src[*i + 1]), lo = mw__hex_value((unsigned char)src[*i + 2]);
        if (hi >= 0 && lo >= 0 && (hi | lo)) {
            *i += 2;
            return (char)(hi * 16 + lo);
        }
    }
    return c;
}

static char *mw__form_decode(mw__arena *a, mw_str raw) {
    char *d = (char *)mw__arena_alloc(a, raw.len + 1);
    size_t i, o = 0;
    if (!d) return NULL;
    for (i = 0; i < raw.len; i++) d[o++] = mw__form_char(raw.ptr, raw.len, &i);
    d[o] = '\0';
    return d;
}

/* Compares a raw (encoded) name with a plain one without decoding it anywhere. */
static int mw__form_name_is(mw_str raw, const char *name) {
    size_t i;
    for (i = 0; i < raw.len; i++, name++)
        if (!*name || mw__form_char(raw.ptr, raw.len, &i) != *name) return 0;
    return *name == '\0';
}

/* The next "name=value" of an &-separated string (empty pieces skipped). */
static int mw__next_pair(mw_str s, size_t *pos, mw_str *name, mw_str *value) {
    const char *start, *amp, *eq;
    while (*pos < s.len && s.ptr[*pos] == '&') (*pos)++;
    if (*pos >= s.len) return 0;
    start = s.ptr + *pos;
    amp = (const char *)memchr(start, '&', s.len - *pos);
    if (!amp) amp = s.ptr + s.len;
    eq = (const char *)memchr(start, '=', (size_t)(amp - start));
    name->ptr = start;
    name->len = (size_t)((eq ? eq : amp) - start);
    value->ptr = eq ? eq + 1 : amp;
    value->len = eq ? (size_t)(amp - eq - 1) : 0;
    *pos = (size_t)(amp - s.ptr);
    return 1;
}

/* A media type (or disposition) without its parameters, compared case-insensitively
   (RFC 9110 §8.3.1); v holds len bytes, NULL for none. */
static int mw__media_type_is(const char *v, size_t len, const char *lower) {
    size_t n = 0;
    if (!v) return 0;
    while (n < len && v[n] != ';' && v[n] != ' ' && v[n] != '\t') n++;
    return mw__ieq(v, n, lower);
}

static int mw__content_type_is(const mw_req *rq, const char *lower) {
    const char *ct = mw_header(rq, "Content-Type");
    return mw__media_type_is(ct, ct ? strlen(ct) : 0, lower);
}

static mw_str mw__value_source(const mw_req *rq, mw_source src) {
    mw_str s;
    s.ptr = "";
    s.len = 0;
    if (src == MW_QUERY) {
        s.ptr = rq->query;
        s.len = rq->head->query_len;
    } else if (src == MW_FORM && mw__content_type_is(rq, "application/x-www-form-urlencoded")) {
        s.ptr = rq->body;
        s.len = rq->body_len;
    }
    return s;
}

size_t mw_values(mw_req *rq, mw_source src, const char *name, const char **out, size_t max) {
    mw_str all = mw__value_source(rq, src), n, v;
    size_t pos = 0, count = 0;
    while (name && mw__next_pair(all, &pos, &n, &v)) {
        if (!mw__form_name_is(n, name)) continue;
        if (count < max && !(out[count] = mw__form_decode(rq->arena, v))) break;
        count++;
    }
    return count;
}

const char *mw_value(mw_req *rq, mw_source src, const char *name) {
    const char *v = NULL;
    return mw_values(rq, src, name, &v, 1) ? v : NULL;
}

int mw_next_value(mw_req *rq, mw_source src, size_t *cursor, const char **name, const char **value) {
    mw_str all = mw__value_source(rq, src), n, v;
    if (!cursor || !mw__next_pair(all, cursor, &n, &v)) return 0;
    *name = mw__form_decode(rq->arena, n);
    *value = mw__form_decode(rq->arena, v);
    return *name && *value ? 1 : MW_ENOMEM;
}

/* Finds "name=value; name2=value2" in every Cookie field (RFC 6265 §5.4); names are
   case-sensitive and a value may be in double quotes. The value stays in the request's
   head: 1 and *value set, or 0. */
static int mw__cookie_find(const mw_req *rq, const char *name, mw_str *value) {
    size_t i, nlen = strlen(name);
    for (i = 0; i < rq->head->nfields; i++) {
        const mw__field *f = &rq->head->fields[i];
        const char *p = f->value, *end = f->value + f->value_len;
        if (!mw__ieq(f->name, f->name_len, "cookie")) continue;
        while (p < end) {
            const char *semi = (const char *)memchr(p, ';', (size_t)(end - p)), *eq, *v, *ve;
            if (!semi) semi = end;
            while (p < semi && (*p == ' ' || *p == '\t')) p++;
            eq = (const char *)memchr(p, '=', (size_t)(semi - p));
            if (eq && (size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
                v = eq + 1;
                ve = semi;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
                if (ve - v >= 2 && v[0] == '"' && ve[-1] == '"') v++, ve--;
                value->ptr = v;
                value->len = (size_t)(ve - v);
                return 1;
            }
            p = semi + 1;
        }
    }
    return 0;
}

const char *mw_cookie(mw_req *rq, const char *name) {
    mw_str v;
    if (!name || !mw__cookie_find(rq, name, &v)) return NULL;
    return mw__arena_strndup(rq->arena, v.ptr, v.len);
}

/* cookie-octet (RFC 6265 §4.1.1): no CTL, whitespace, DQUOTE, comma, ';' or '\'. */
static int mw__valid_cookie_value(const char *v) {
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (c < 0x21 || c > 0x7e || c == '"' || c == ',' || c == ';' || c == '\\') return 0;
    }
    return 1;
}

/* An attribute value may not end the attribute early (';') or the header (controls). */
static int mw__valid_cookie_attr(const char *v) { return mw__valid_field_value(v) && !strchr(v, ';'); }

/* Domain= names a host (RFC 6265 §4.1.2.3): labels of letters, digits and '-' between
   single dots, after one optional leading dot. Anything else (a ',', a space, '=')
   could read as a second cookie or attribute to whoever parses the header. */
static int mw__valid_cookie_domain(const char *d) {
    size_t label = 0;
    if (*d == '.') d++;
    for (; *d; d++) {
        unsigned char c = (unsigned char)*d;
        if (c == '.' && label) label = 0;
        else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-') label++;
        else return 0;
    }
    return label > 0;
}

static int mw__has_prefix_ci(const char *s, const char *lower) {
    size_t n = strlen(lower);
    return strlen(s) >= n && mw__ieq(s, n, lower);
}

/* Cookie name prefixes (RFC 6265bis §4.1.3; browsers match them in any case): a
   "__Secure-" cookie must be Secure, and a "__Host-" one also Path=/ without Domain.
   A browser drops any other such cookie, so it is refused here, where it shows. */
static int mw__cookie_prefix_kept(const char *name, const mw_cookie_opts *o, const char *path) {
    if (mw__has_prefix_ci(name, "__secure-")) return o->secure;
    if (mw__has_prefix_ci(name, "__host-")) return o->secure && strcmp(path, "/") == 0 && !o->domain;
    return 1;
}

/* The Set-Cookie line for a cookie whose name, value and attributes are valid. */
static int mw__put_cookie(mw__buf *h, const char *name, const char *value, const mw_cookie_opts *o) {
    const char *same_site = o->same_site ? o->same_site : "Lax", *path = o->path ? o->path : "/";
    if (mw__buf_reserve(h, strlen(name) + strlen(value) + strlen(path) + (o->domain ? strlen(o->domain) : 0) + 120))
        return MW_ENOMEM;
    MW__PUT_LIT(h, "Set-Cookie: ");
    mw__buf_puts(h, name);
    MW__PUT_LIT(h, "=");
    mw__buf_puts(h, value);
    MW__PUT_LIT(h, "; Path=");
    mw__buf_puts(h, path);
    if (o->domain) {
        MW__PUT_LIT(h, "; Domain=");
        mw__buf_puts(h, o->domain);
    }
    if (o->has_max_age) {
        MW__PUT_LIT(h, "; Max-Age=");
        if (o->max_age < 0) MW__PUT_LIT(h, "-");
        mw__buf_put_u64(h, o->max_age < 0 ? 0 - (unsigned long long)o->max_age : (unsigned long long)o->max_age);
    }
    if (o->secure) MW__PUT_LIT(h, "; Secure");
    if (!o->allow_js) MW__PUT_LIT(h, "; HttpOnly");
    MW__PUT_LIT(h, "; SameSite=");
    mw__buf_puts(h, same_site);
    return MW__PUT_LIT(h, "\r\n");
}

/* A cookie name and attributes a browser keeps. */
static int mw__cookie_settings_ok(const char *name, const mw_cookie_opts *o) {
    const char *same_site = o->same_site ? o->same_site : "Lax", *path = o->path ? o->path : "/";
    if (!name || !mw__valid_token(name) || !mw__valid_cookie_attr(path) ||
        (o->domain && !mw__valid_cookie_domain(o->domain)) || !mw__cookie_prefix_kept(name, o, path))
        return 0;
    if (strcmp(same_site, "Lax") != 0 && strcmp(same_site, "Strict") != 0 && strcmp(same_site, "None") != 0) return 0;
    return strcmp(same_site, "None") != 0 || o->secure; /* browsers drop SameSite=None without Secure */
}

static int mw__set_cookie_checked(mw_res *rs, const char *name, const char *value, const mw_cookie_opts *opts) {
    static const mw_cookie_opts defaults = {0, 0, 0, 0, NULL, NULL, NULL};
    const mw_cookie_opts *o = opts ? opts : &defaults;
    if (!value || !mw__valid_cookie_value(value) || !mw__cookie_settings_ok(name, o)) return MW_EINVAL;
    return mw__put_cookie(rs->headers, name, value, o);
}

int mw_set_cookie(mw_res *rs, const char *name, const char *value, const mw_cookie_opts *opts) {
    int rc;
    if (!rs) return MW_EINVAL;
    rs->touched = 1; /* a handler that only sets (or deletes) a cookie has answered */
    rc = mw__set_cookie_checked(rs, name, value, opts);
    if (rc == MW_EINVAL)
        mw__res_warn(rs, MW__WARN_COOKIE, "mw_set_cookie refused cookie \"%.64s\" (invalid name, value or attributes)",
                     name ? name : "(null)");
    return rc;
}

/* Records that the request body is malformed; once the handler returns, the answer
   is this error whatever the handler wrote (the first failure wins). */
static void mw__req_fail(mw_req *rq, int status, const char *detail, long long offset) {
    if (rq->fail_status) return;
    rq->fail_status = status;
    rq->fail_detail = detail;
    rq->fail_offset = offset;
}

const mw_jv *mw_req_json(mw_req *rq) {
    size_t off;
    const char *problem;
    if (!rq || rq->json_parsed) return rq ? rq->json : NULL;
    rq->json_parsed = 1;
    rq->json = mw__json_parse(rq->json_block, rq->body, rq->body_len, &off, &problem);
    if (!rq->json) {
        char *detail = (char *)mw__arena_alloc(rq->arena, 96);
        if (detail) snprintf(detail, 96, "invalid JSON at byte %lu: %s", (unsigned long)off, problem);
        mw__req_fail(rq, 400, detail ? detail : problem, (long long)off);
    }
    return rq->json;
}

/* multipart/form-data (RFC 7578, RFC 2046 §5.1.1): parts are found in the body in place. */
#define MW__MULTIPART_FAIL(rq, status, why) (mw__req_fail((rq), (status), (why), -1), MW_EINVAL)

/* Finds needle in hay; memmem is not in ISO C or POSIX. */
static const char *mw__find(const char *hay, size_t n, const char *needle, size_t m) {
    const char *end = hay + n, *p = hay;
    while (m && (size_t)(end - p) >= m && (p = (const char *)memchr(p, needle[0], (size_t)(end - p - (long)m + 1)))) {
        if (memcmp(p, needle, m) == 0) return p;
        p++;
    }
    return NULL;
}

/* The value of parameter `name` in a header value like `form-data; name="a"; x=y`,
   unquoted into the arena; NULL when absent. Quoted values are skipped whole, so a
   ';' or "name=" inside a client's file name cannot pose as another parameter. */
static const char *mw__header_param(mw__arena *a, const char *v, size_t n, const char *name) {
    const char *p = (const char *)memchr(v, ';', n), *end = v + n;
    while (p && p < end) {
        const char *k, *ke, *val;
        char *out = NULL, *o;
        int match;
        for (p++; p < end && (*p == ' ' || *p == '\t');) p++;
        for (k = p; p < end && *p != '=' && *p != ';';) p++;
        for (ke = p; ke > k && (ke[-1] == ' ' || ke[-1] == '\t');) ke--;
        match = mw__ieq(k, (size_t)(ke - k), name);
        if (p >= end || *p == ';') continue; /* a parameter without a value */
        val = ++p;
        if (p < end && *p == '"') { /* quoted-string: a backslash escapes one character */
            if (match && !(out = (char *)mw__arena_alloc(a, (size_t)(end - p)))) return NULL;
            for (o = out, p++; p < end && *p != '"'; p++) {
                if (*p == '\\' && p + 1 < end) p++;
                if (o) *o++ = *p;
            }
            if (o) *o = '\0';
            if (match) return out;
            if (p < end) p++;
        } else {
            while (p < end && *p != ';' && *p != ' ' && *p != '\t') p++;
            if (match) return mw__arena_strndup(a, val, (size_t)(p - val));
        }
        p = (const char *)memchr(p, ';', (size_t)(end - p));
    }
    return NULL;
}

/* The last path component of a client's file name, made safe to join to a directory:
   no '/', '\', NUL, drive letter or ':' , and never "", "." or "..". */
static const char *mw__safe_filename(mw__arena *a, const char *name) {
    const char *base = name, *p;
    char *out, *o;
    for (p = name; *p; p++)
        if (*p == '/' || *p == '\\') base = p + 1;
    if (!(o = out = mw__arena_strndup(a, base, strlen(base)))) return NULL;
    for (p = base; *p; p++) *o++ = ((unsigned char)*p < 0x20 || *p == ':' || *p == 0x7f) ? '_' : *p;
    *o = '\0';
    if (strspn(out, ".") == strlen(out)) return "_"; /* "", ".", "..", "..." */
    return out;
}

/* Reads the header block of one part (up to the blank line) into *part. */
static int mw__part_headers(mw_req *rq, const char *h, const char *end, mw_part *part) {
    while (h < end) {
        const char *eol = mw__find(h, (size_t)(end - h), "\r\n", 2), *colon, *v;
        if (!eol) eol = end;
        colon = (const char *)memchr(h, ':', (size_t)(eol - h));
        if (!colon || colon == h) return MW__MULTIPART_FAIL(rq, 400, "malformed part header");
        for (v = colon + 1; v < eol; v++)
            if ((unsigned char)*v < 0x20 && *v != '\t')
                return MW__MULTIPART_FAIL(rq, 400, "control byte in part header");
        for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++) {}
        if (mw__ieq(h, (size_t)(colon - h), "content-disposition")) {
            if (!mw__media_type_is(v, (size_t)(eol - v), "form-data"))
                return MW__MULTIPART_FAIL(rq, 400, "part is not form-data");
            part->name = mw__header_param(rq->arena, v, (size_t)(eol - v), "name");
            part->filename = mw__header_param(rq->arena, v, (size_t)(eol - v), "filename");
        } else if (mw__ieq(h, (size_t)(colon - h), "content-type")) {
            part->content_type = mw__arena_strndup(rq->arena, v, (size_t)(eol - v));
        }
        h = eol + 2;
    }
    if (!part->name) return MW__MULTIPART_FAIL(rq, 400, "part without a form-data name");
    part->safe_filename = part->filename ? mw__safe_filename(rq->arena, part->filename) : NULL;
    return 0;
}

int mw_multipart_next(mw_req *rq, mw_part *part) {
    const char *ctype = mw_header(rq, "Content-Type"), *body = rq->body, *end = rq->body + rq->body_len;
    const char *boundary, *p, *headers_end, *next;
    char delim[80];
    size_t dlen, limit = (size_t)rq->limits->v[MW_LIMIT_MULTIPART_PARTS];
    if (rq->fail_status) return MW_EINVAL;
    if (!mw__content_type_is(rq, "multipart/form-data")) return MW__MULTIPART_FAIL(rq, 415, "not multipart/form-data");
    boundary = mw__header_param(rq->arena, ctype, strlen(ctype), "boundary");
    if (!boundary || !*boundary || strlen(boundary) > 70)
        return MW__MULTIPART_FAIL(rq, 400, "missing or invalid boundary");
    dlen = (size_t)snprintf(delim, sizeof delim, "\r\n--%s", boundary);
    if (!part->count) { /* the first delimiter may open the body, or follow a preamble */
        p = rq->body_len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0
                ? body - 2
                : mw__find(body, rq->body_len, delim, dlen);
        if (!p) return MW__MULTIPART_FAIL(rq, 400, "no boundary in the body");
    } else {
        p = body + part->next_offset;
    }
    p += dlen;
    if (end - p >= 2 && p[0] == '-' && p[1] == '-') return 0; /* the close delimiter */
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n') return MW__MULTIPART_FAIL(rq, 400, "malformed boundary line");
    if (part->count >= limit) return MW__MULTIPART_FAIL(rq, 413, "too many parts");
    p += 2;
    headers_end = (end - p >= 2 && p[0] == '\r' && p[1] == '\n') ? p : mw__find(p, (size_t)(end - p), "\r\n\r\n", 4);
    if (!headers_end) return MW__MULTIPART_FAIL(rq, 400, "part headers not terminated");
    part->name = part->filename = part->safe_filename = part->content_type = NULL;
    if (mw__part_headers(rq, p, headers_end, part) != 0) return MW_EINVAL;
    p = headers_end + (headers_end == p ? 2 : 4);
    if (!(next = mw__find(p, (size_t)(end - p), delim, dlen)))
        return MW__MULTIPART_FAIL(rq, 400, "part not terminated by a boundary");
    part->data = p;
    part->len = (size_t)(next - p);
    part->next_offset = (size_t)(next - body);
    part->count++;
    return 1;
}

int mw_param_int(const mw_req *rq, const char *name, long long *out) {
    const char *v = mw_param(rq, name);
    return v && mw__parse_int64(v, strlen(v), out) ? 0 : MW_EINVAL;
}

/* ---------------------------------------------------------------------------
   schemas: declared inputs. A schema in the schema language is compiled once, when
   its route is registered, into a flat tree of nodes; a request is checked against
   its route's declaration before the handler runs, and every problem found is
   listed in one 422 (FastAPI's shape, pydantic's type names and messages).
   --------------------------------------------------------------------------- */
enum {
    MW__S_ANY,
    MW__S_STRING,
    MW__S_INT,
    MW__S_NUMBER,
    MW__S_BOOL,
    MW__S_ENUM,    /* its kids are the values (MW__S_LITERAL) */
    MW__S_LITERAL, /* one value of an enum: its text is in key */
    MW__S_OBJECT,  /* its kids are the fields, each a type node with a key */
    MW__S_ARRAY,   /* its one kid is the items' type */
    MW__S_REF      /* a schema named with mw_schema */
};
static const char *const mw__scalar_names[] = {"any", "string", "int", "number", "bool"};

typedef struct mw__schema mw__schema;

/* A node of a compiled schema. Nodes are in pre-order: a container's first kid is the
   node right after it, each kid names the next by index. Texts (a field's name, an
   enum value, a bound as written) are offsets into the schema's text. */
typedef struct mw__snode {
    unsigned char kind, nullable, optional, open, has_min, has_max;
    uint32_t nkids, next;            /* next: the next sibling's index, 0 for the last */
    uint32_t key, key_len;           /* a field's name; a literal's value */
    uint32_t lo, lo_len, hi, hi_len; /* the bounds as written, for messages and OpenAPI */
    long long imin, imax;            /* int: value; string: characters; array: items */
    double dmin, dmax;               /* number */
    const mw__schema *ref;
    mw_jv_doc *def; /* a field's default */
} mw__snode;

struct mw__schema {
    mw__snode *nodes; /* the root is nodes[0] */
    size_t n;
    mw__buf text;
    char *name; /* a named schema's (mw_schema) */
};

static void mw__schema_free(mw__schema *s) {
    size_t i;
    if (!s) return;
    for (i = 0; i < s->n; i++) mw_jv_free(s->nodes[i].def);
    MW_FREE(s->nodes);
    mw__buf_free(&s->text);
    MW_FREE(s->name);
    MW_FREE(s);
}

static const char *mw__snode_text(const mw__schema *s, uint32_t off) { return s->text.data + off; }

/* ---- checking a value: errors are collected with their place (loc) ---- */

/* One step of a loc: a key, or (key NULL) an array index. */
typedef struct mw__loc {
    const char *key;
    size_t len;
    size_t index;
} mw__loc;

typedef struct mw__verror {
    struct mw__verror *next;
    const char *type, *msg;
    size_t nloc;
    mw__loc loc[1]; /* nloc of them */
} mw__verror;

/* Types nested in one schema: the OpenAPI document holds a schema up to 9 levels deep
   (a response's), and each type takes at most two more (an object's properties), so
   every schema that compiles can be written there. */
#define MW__SCHEMA_MAX_DEPTH ((MW_JSON_MAX_DEPTH - 10) / 2)
#define MW__LOC_MAX (2 * MW_JSON_MAX_DEPTH + 4) /* a schema's depth, and a named one's inside it */

typedef struct mw__vctx {
    mw__arena *arena; /* NULL: errors are only counted (a default checked at registration) */
    mw__loc loc[MW__LOC_MAX];
    size_t depth;
    mw__verror *first, *last;
    size_t count, max;
} mw__vctx;

static void mw__vpush(mw__vctx *v, const char *key, size_t len, size_t index) {
    if (v->depth < MW__LOC_MAX) v->loc[v->depth].key = key, v->loc[v->depth].len = len, v->loc[v->depth].index = index;
    v->depth++;
}

/* Records an error at the current loc; past v->max errors only the count grows. */
static int mw__verr(mw__vctx *v, const char *type, const char *msg) {
    size_t nloc = v->depth < MW__LOC_MAX ? v->depth : MW__LOC_MAX;
    mw__verror *e;
    if (v->count++ >= v->max || !v->arena || !msg) return 0;
    e = (mw__verror *)mw__arena_alloc(v->arena, sizeof *e + nloc * sizeof e->loc[0]);
    if (!e) return 0;
    e->next = NULL;
    e->type = type;
    e->msg = msg;
    e->nloc = nloc;
    memcpy(e->loc, v->loc, nloc * sizeof e->loc[0]);
    if (v->last) v->last->next = e;
    else v->first = e;
    v->last = e;
    return 0;
}

/* A message composed in the arena ("String should have at most 200 characters"). */
static const char *mw__vmsg(mw__vctx *v, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static const char *mw__vmsg(mw__vctx *v, const char *fmt, ...) {
    va_list ap;
    char *out;
    int n;
    if (!v->arena || v->count >= v->max) return NULL;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !(out = (char *)mw__arena_alloc(v->arena, (size_t)n + 1))) return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}

/* A value outside the node's range: pydantic's greater_than_equal / less_than_equal. */
static int mw__vbound(mw__vctx *v, const mw__schema *s, const mw__snode *d, int low) {
    uint32_t at = low ? d->lo : d->hi, len = low ? d->lo_len : d->hi_len;
    return mw__verr(v, low ? "greater_than_equal" : "less_than_equal",
                    mw__vmsg(v, "Input should be %s than or equal to %.*s", low ? "greater" : "less", (int)len,
                             mw__snode_text(s, at)));
}

static int mw__vint_range(mw__vctx *v, const mw__schema *s, const mw__snode *d, long long x) {
    if (d->has_min && x < d->imin) return mw__vbound(v, s, d, 1);
    return d->has_max && x > d->imax ? mw__vbound(v, s, d, 0) : 0;
}

static int mw__vnum_range(mw__vctx *v, const mw__schema *s, const mw__snode *d, double x) {
    if (d->has_min && x < d->dmin) return mw__vbound(v, s, d, 1);
    return d->has_max && x > d->dmax ? mw__vbound(v, s, d, 0) : 0;
}

/* Characters (code points) in n bytes of UTF-8: the bytes that do not continue one
   (10xxxxxx), counted eight at a time. */
static size_t mw__utf8_chars(const char *p, size_t n) {
    size_t i, continuing = 0;
    uint64_t w;
    for (i = 0; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        w &= ~(w << 1) & 0x8080808080808080ull; /* bit 7 set, bit 6 clear, in each byte */
        continuing += (size_t)(((w >> 7) * 0x0101010101010101ull) >> 56);
    }
    for (; i < n; i++) continuing += ((unsigned char)p[i] & 0xc0) == 0x80;
    return n - continuing;
}

/* A string's length in characters against its range. */
static int mw__vlength(mw__vctx *v, const mw__snode *d, const char *p, size_t n) {
    size_t chars = d->has_min || d->has_max ? mw__utf8_chars(p, n) : 0;
    if (d->has_min && (long long)chars < d->imin)
        return mw__verr(v, "string_too_short",
                        mw__vmsg(v, "String should have at least %lld character%s", d->imin, d->imin == 1 ? "" : "s"));
    if (d->has_max && (long long)chars > d->imax)
        return mw__verr(v, "string_too_long",
                        mw__vmsg(v, "String should have at most %lld character%s", d->imax, d->imax == 1 ? "" : "s"));
    return 0;
}

/* An enum's values for its message, "Input should be 'a', 'b' or 'c'" (pydantic's
   literal_error), composed in the arena. */
static int mw__venum_fail(mw__vctx *v, const mw__schema *s, const mw__snode *d) {
    static const char lead[] = "Input should be ";
    const mw__snode *lit;
    size_t len = sizeof lead, k;
    char *msg = NULL, *o;
    if (v->arena && v->count < v->max) {
        for (lit = d + 1, k = 0; k < d->nkids; lit = s->nodes + lit->next, k++) len += lit->key_len + 6;
        msg = (char *)mw__arena_alloc(v->arena, len);
    }
    if (!msg) return mw__verr(v, "literal_error", NULL);
    memcpy(msg, lead, sizeof lead - 1);
    o = msg + sizeof lead - 1;
    for (lit = d + 1, k = 0; k < d->nkids; lit = s->nodes + lit->next, k++) {
        if (k) o += k + 1 == d->nkids ? (memcpy(o, " or ", 4), 4) : (memcpy(o, ", ", 2), 2);
        *o++ = '\'';
        memcpy(o, mw__snode_text(s, lit->key), lit->key_len);
        o += lit->key_len;
        *o++ = '\'';
    }
    *o = '\0';
    return mw__verr(v, "literal_error", msg);
}

static int mw__venum_has(const mw__schema *s, const mw__snode *d, const char *p, size_t n) {
    const mw__snode *lit = d + 1;
    for (;;) {
        if (lit->key_len == n && memcmp(mw__snode_text(s, lit->key), p, n) == 0) return 1;
        if (!lit->next) return 0;
        lit = s->nodes + lit->next;
    }
}

static int mw__vcheck(mw__vctx *v, const mw__schema *s, const mw__snode *d, const mw_jv *val);

/* An integer from JSON: written as one, or a number with no fractional part (as pydantic). */
static int mw__vcheck_int(mw__vctx *v, const mw__schema *s, const mw__snode *d, const mw_jv *val) {
    long long x;
    double f;
    if (!mw__jv_is(val, MW_JV_NUMBER)) return mw__verr(v, "int_type", "Input should be a valid integer");
    if (mw__jv_int64(val, &x)) return mw__vint_range(v, s, d, x);
    f = mw_jv_num(val, 0);
    if (val->head & MW__JV_INTEGRAL || f < -9.2233720368547758e18 || f >= 9.2233720368547758e18)
        return mw__verr(v, "int_parsing_size", "Unable to parse input string as an integer, exceeded maximum size");
    if (f != (double)(long long)f)
        return mw__verr(v, "int_from_float", "Input should be a valid integer, got a number with a fractional part");
    return mw__vint_range(v, s, d, (long long)f);
}

static int mw__vcheck_object(mw__vctx *v, const mw__schema *s, const mw__snode *d, const mw_jv *val) {
    const mw__snode *f;
    const mw_jv *m;
    if (!mw__jv_is(val, MW_JV_OBJECT))
        return mw__verr(v, "model_attributes_type",
                        "Input should be a valid dictionary or object to extract fields from");
    for (f = d->nkids ? d + 1 : NULL; f; f = f->next ? s->nodes + f->next : NULL) {
        const char *key = mw__snode_text(s, f->key);
        mw__vpush(v, key, f->key_len, 0);
        if ((m = mw__jv_getn(val, key, f->key_len)) != NULL) mw__vcheck(v, s, f, m);
        else if (!f->optional) mw__verr(v, "missing", "Field required");
        v->depth--;
    }
    if (d->open) return 0;
    for (m = mw_jv_first(val); m; m = mw_jv_next(m)) {
        for (f = d->nkids ? d + 1 : NULL; f; f = f->next ? s->nodes + f->next : NULL)
            if (f->key_len == mw__jv_key_len(m) && memcmp(mw__snode_text(s, f->key), mw_jv_key(m), f->key_len) == 0)
                break;
        if (f) continue;
        mw__vpush(v, mw_jv_key(m), mw__jv_key_len(m), 0);
        mw__verr(v, "extra_forbidden", "Extra inputs are not permitted");
        v->depth--;
    }
    return 0;
}

static int mw__vcheck_array(mw__vctx *v, const mw__schema *s, const mw__snode *d, const mw_jv *val) {
    const mw_jv *m;
    size_t i = 0, n;
    if (!mw__jv_is(val, MW_JV_ARRAY)) return mw__verr(v, "list_type", "Input should be a valid list");
    n = mw_jv_len(val);
    if (d->has_min && (long long)n < d->imin)
        mw__verr(v, "too_short",
                 mw__vmsg(v, "List should have at least %lld item%s after validation, not %lu", d->imin,
                          d->imin == 1 ? "" : "s", (unsigned long)n));
    else if (d->has_max && (long long)n > d->imax)
        mw__verr(v, "too_long",
                 mw__vmsg(v, "List should have at most %lld item%s after validation, not %lu", d->imax,
                          d->imax == 1 ? "" : "s", (unsigned long)n));
    for (m = mw_jv_first(val); m; m = mw_jv_next(m), i++) {
        mw__vpush(v, NULL, 0, i);
        mw__vcheck(v, s, d + 1, m);
        v->depth--;
    }
    return 0;
}

/* Checks a JSON value against node d of schema s. */
static int mw__vcheck(mw__vctx *v, const mw__schema *s, const mw__snode *d, const mw_jv *val) {
    if (d->nullable && mw__jv_is(val, MW_JV_NULL)) return 0;
    switch (d->kind) {
    case MW__S_STRING:
        if (!mw__jv_is(val, MW_JV_STRING)) return mw__verr(v, "string_type", "Input should be a valid string");
        return mw__vlength(v, d, mw__jv_bytes(val), val->len);
    case MW__S_INT: return mw__vcheck_int(v, s, d, val);
    case MW__S_NUMBER:
        if (!mw__jv_is(val, MW_JV_NUMBER)) return mw__verr(v, "float_type", "Input should be a valid number");
        return mw__vnum_range(v, s, d, mw_jv_num(val, 0));
    case MW__S_BOOL:
        return mw__jv_is(val, MW_JV_TRUE) || mw__jv_is(val, MW_JV_FALSE)
                   ? 0
                   : mw__verr(v, "bool_type", "Input should be a valid boolean");
    case MW__S_ENUM:
        return mw__jv_is(val, MW_JV_STRING) && mw__venum_has(s, d, mw__jv_bytes(val), val->len)
                   ? 0
                   : mw__venum_fail(v, s, d);
    case MW__S_OBJECT: return mw__vcheck_object(v, s, d, val);
    case MW__S_ARRAY: return mw__vcheck_array(v, s, d, val);
    case MW__S_REF: return mw__vcheck(v, d->ref, d->ref->nodes, val);
    default: return 0; /* any */
    }
}

/* A declared query parameter's value for the handler (mw_arg_*). */
typedef struct mw__arg {
    int present; /* sent by the client */
    long long i; /* an int, or a bool */
    double d;    /* a number, or the int */
    mw_str s;    /* the text, decoded */
} mw__arg;

/* Whole, valid UTF-8 (a decoded query value may hold any byte). */
static int mw__utf8_text(const char *p, size_t n) {
    size_t i = 0, k;
    while (i < n) {
        if (!(k = mw__utf8_len(p + i, p + n))) return 0;
        i += k;
    }
    return 1;
}

/* A query value is text: converted to the node's type into *out, then checked. */
/* A number's integer part, for mw_arg_int on a number: 0 beyond int64 (the conversion
   would be undefined there). */
static long long mw__truncated_int(double d) {
    return d > -9.2233720368547758e18 && d < 9.2233720368547758e18 ? (long long)d : 0;
}

static int mw__vcheck_text(mw__vctx *v, const mw__schema *s, const mw__snode *d, const char *p, size_t n,
                           mw__arg *out) {
    int b;
    char num[64];
    switch (d->kind) {
    case MW__S_STRING:
        if (!mw__utf8_text(p, n))
            return mw__verr(v, "string_unicode",
                            "Input should be a valid string, unable to parse raw data as a unicode string");
        return mw__vlength(v, d, p, n);
    case MW__S_INT:
        if (!mw__parse_int64(p, n, &out->i))
            return mw__verr(v, "int_parsing", "Input should be a valid integer, unable to parse string as an integer");
        out->d = (double)out->i;
        return mw__vint_range(v, s, d, out->i);
    case MW__S_NUMBER:
        if (!mw__is_number_text(p, n) || n >= sizeof num)
            return mw__verr(v, "float_parsing", "Input should be a valid number, unable to parse string as a number");
        memcpy(num, p, n);
        num[n] = '\0';
        out->d = mw__strtod(num);
        out->i = mw__truncated_int(out->d); /* as a path's */
        return mw__vnum_range(v, s, d, out->d);
    case MW__S_BOOL:
        if (!mw__bool_word(p, n, &b))
            return mw__verr(v, "bool_parsing", "Input should be a valid boolean, unable to interpret input");
        out->i = b;
        return 0;
    case MW__S_ENUM: return mw__venum_has(s, d, p, n) ? 0 : mw__venum_fail(v, s, d);
    default: return 0; /* any */
    }
}

/* ---- compiling the schema language ---- */

typedef struct mw__scomp {
    const char *src, *p;
    mw__schema *s;
    mw__schema *const *named; /* the app's named schemas so far */
    size_t nnamed;
    const char *why, *at; /* the first error, and where */
    int depth;
} mw__scomp;

#define MW__SNONE ((size_t)-1)

static size_t mw__sfail(mw__scomp *c, const char *at, const char *why) {
    if (!c->why) c->why = why, c->at = at;
    return MW__SNONE;
}

static void mw__sws(mw__scomp *c) {
    while (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r') c->p++;
}

static int mw__seat(mw__scomp *c, char ch) {
    mw__sws(c);
    if (*c->p != ch) return 0;
    c->p++;
    return 1;
}

/* The length of the name at p (a letter or '_', then letters, digits and '_'), or 0. */
static size_t mw__sname_len(const char *p) {
    size_t n = 0;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_')) return 0;
    while (mw__is_name_char((unsigned char)p[n])) n++;
    return n;
}

static size_t mw__snode_new(mw__scomp *c, int kind) {
    mw__schema *s = c->s;
    mw__snode *nodes;
    if (s->n > 0xfffffffu) return mw__sfail(c, c->p, "schema too large");
    if (!(nodes = (mw__snode *)MW_REALLOC(s->nodes, (s->n + 1) * sizeof *nodes)))
        return mw__sfail(c, c->p, "out of memory");
    s->nodes = nodes;
    memset(&nodes[s->n], 0, sizeof nodes[0]);
    nodes[s->n].kind = (unsigned char)kind;
    return s->n++;
}

/* Keeps n bytes in the schema's text (NUL-terminated); their offset. */
static uint32_t mw__stext(mw__scomp *c, const char *p, size_t n) {
    uint32_t at = (uint32_t)c->s->text.len;
    if (mw__buf_append(&c->s->text, p, n) != 0 || mw__buf_append(&c->s->text, "", 1) != 0)
        mw__sfail(c, c->p, "out of memory");
    return at;
}

/* The end of the JSON value at p (a string, number, literal, array or object), found
   by its brackets and quotes; its grammar is then mw_jv_parse's to check. */
static const char *mw__json_extent(const char *p) {
    int depth = 0;
    const char *q = p;
    do {
        if (*q == '"') {
            for (q++; *q && *q != '"'; q++)
                if (*q == '\\' && q[1]) q++;
            if (!*q) return NULL;
            q++;
        } else if (*q == '[' || *q == '{') {
            depth++, q++;
        } else if (*q == ']' || *q == '}') {
            if (--depth < 0) return NULL;
            q++;
        } else if (depth) {
            if (!*q) return NULL;
            q++;
        } else {
            while (*q && (mw__is_name_char((unsigned char)*q) || *q == '-' || *q == '+' || *q == '.')) q++;
        }
    } while (depth);
    return q > p ? q : NULL;
}

/* A JSON value at c->p, parsed; NULL (and the error) when it is not one. */
static mw_jv_doc *mw__sjson(mw__scomp *c, const char *what) {
    const char *start = c->p, *end = mw__json_extent(start);
    mw_jv_doc *doc = end ? mw_jv_parse(start, (size_t)(end - start), NULL, NULL) : NULL;
    if (!doc) {
        mw__sfail(c, start, what);
        return NULL;
    }
    c->p = end;
    return doc;
}

/* A string literal at c->p (on its '"': the JSON value there is a string or nothing);
   its decoded value joins the text. */
static int mw__sstring(mw__scomp *c, uint32_t *at, uint32_t *len) {
    mw_jv_doc *doc = mw__sjson(c, "invalid string literal");
    mw_str v = mw_jv_string(mw_jv_root(doc));
    if (doc) {
        *at = mw__stext(c, v.ptr, v.len);
        *len = (uint32_t)v.len;
    }
    mw_jv_free(doc);
    return !c->why;
}

/* One bound of a range: its text joins the schema's text; the value in *i or *d. */
static int mw__sbound(mw__scomp *c, const mw__snode *d, uint32_t *at, uint32_t *len, long long *i, double *f) {
    const char *start = c->p, *stop = start, *problem, *end;
    int integral;
    char num[64];
    while (*stop && *stop != ')' && !(stop[0] == '.' && stop[1] == '.'))
        stop++; /* "1..5": the '.' is not a fraction's */
    if (!(end = mw__jnumber_end(start, stop, &integral, &problem)))
        return mw__sfail(c, start, "expected a number or '..' in the range"), 0;
    if ((size_t)(end - start) >= sizeof num) return mw__sfail(c, start, "number too long"), 0;
    if (d->kind != MW__S_NUMBER && !mw__parse_int64(start, (size_t)(end - start), i))
        return mw__sfail(c, start, "this range takes whole numbers"), 0;
    if (d->kind != MW__S_NUMBER && d->kind != MW__S_INT && *i < 0)
        return mw__sfail(c, start, "a length cannot be negative"), 0;
    memcpy(num, start, (size_t)(end - start));
    num[end - start] = '\0';
    *f = mw__strtod(num);
    *at = mw__stext(c, start, (size_t)(end - start));
    *len = (uint32_t)(end - start);
    c->p = end;
    return 1;
}

/* An optional range after a type: "(1..200)", "(..50)", "(0..)". */
static int mw__srange(mw__scomp *c, size_t node) {
    mw__snode b = c->s->nodes[node];
    const char *open;
    mw__sws(c);
    if (*c->p != '(') return 1;
    open = c->p++;
    if (b.kind != MW__S_STRING && b.kind != MW__S_INT && b.kind != MW__S_NUMBER && b.kind != MW__S_ARRAY)
        return mw__sfail(c, open, "a range applies to string, int, number and arrays"), 0;
    mw__sws(c);
    if (*c->p != '.' && !(b.has_min = (unsigned char)mw__sbound(c, &b, &b.lo, &b.lo_len, &b.imin, &b.dmin))) return 0;
    mw__sws(c);
    if (c->p[0] != '.' || c->p[1] != '.') return mw__sfail(c, c->p, "expected '..' in the range"), 0;
    c->p += 2;
    mw__sws(c);
    if (*c->p != ')' && !(b.has_max = (unsigned char)mw__sbound(c, &b, &b.hi, &b.hi_len, &b.imax, &b.dmax))) return 0;
    if (!mw__seat(c, ')')) return mw__sfail(c, c->p, "expected ')' to end the range"), 0;
    if (!b.has_min && !b.has_max) return mw__sfail(c, open, "a range needs a minimum, a maximum or both"), 0;
    if (b.has_min && b.has_max && (b.kind == MW__S_NUMBER ? b.dmin > b.dmax : b.imin > b.imax))
        return mw__sfail(c, open, "the range's minimum is greater than its maximum"), 0;
    c->s->nodes[node] = b;
    return 1;
}

static size_t mw__stype(mw__scomp *c);
static int mw__sfields(mw__scomp *c, size_t obj, char close);

/* "a" | "b" | "c", and | null: the enum's values become its kids. */
static size_t mw__senum(mw__scomp *c) {
    size_t e = mw__snode_new(c, MW__S_ENUM), prev = MW__SNONE, lit;
    if (e == MW__SNONE) return e;
    do {
        mw__sws(c);
        if (strncmp(c->p, "null", 4) == 0 && !mw__is_name_char((unsigned char)c->p[4])) {
            c->s->nodes[e].nullable = 1;
            c->p += 4;
            continue;
        }
        if (*c->p != '"') return mw__sfail(c, c->p, "expected a string literal or null after '|'");
        if ((lit = mw__snode_new(c, MW__S_LITERAL)) == MW__SNONE) return lit;
        if (!mw__sstring(c, &c->s->nodes[lit].key, &c->s->nodes[lit].key_len)) return MW__SNONE;
        if (prev != MW__SNONE) c->s->nodes[prev].next = (uint32_t)lit;
        prev = lit;
        c->s->nodes[e].nkids++;
    } while (mw__seat(c, '|'));
    return e;
}

/* A type named by a word: a scalar, or a schema given to mw_schema earlier. */
static size_t mw__snamed_type(mw__scomp *c) {
    const char *start = c->p;
    size_t n = mw__sname_len(start), k, node;
    if (!n) return mw__sfail(c, start, "expected a type");
    c->p += n;
    for (k = 0; k < sizeof mw__scalar_names / sizeof mw__scalar_names[0]; k++)
        if (strlen(mw__scalar_names[k]) == n && memcmp(start, mw__scalar_names[k], n) == 0)
            return (node = mw__snode_new(c, MW__S_ANY + (int)k)) != MW__SNONE && mw__srange(c, node) ? node : MW__SNONE;
    for (k = 0; k < c->nnamed; k++)
        if (strlen(c->named[k]->name) == n && memcmp(start, c->named[k]->name, n) == 0) {
            if ((node = mw__snode_new(c, MW__S_REF)) != MW__SNONE) c->s->nodes[node].ref = c->named[k];
            return node;
        }
    return mw__sfail(c, start, "unknown type (string, int, number, bool, any, or a name given to mw_schema before)");
}

/* type := scalar [range] | enum | '{' fields '}' | '[' type ']' [range] | Name, then
   an optional "| null". */
static size_t mw__stype(mw__scomp *c) {
    size_t node, item;
    mw__sws(c);
    if (++c->depth > MW__SCHEMA_MAX_DEPTH)
        return mw__sfail(c, c->p, "nesting deeper than (MW_JSON_MAX_DEPTH - 10) / 2 types");
    if (*c->p == '{') {
        c->p++;
        if ((node = mw__snode_new(c, MW__S_OBJECT)) == MW__SNONE || !mw__sfields(c, node, '}')) return MW__SNONE;
    } else if (*c->p == '[') {
        c->p++;
        if ((node = mw__snode_new(c, MW__S_ARRAY)) == MW__SNONE || (item = mw__stype(c)) == MW__SNONE) return MW__SNONE;
        c->s->nodes[node].nkids = 1;
        if (!mw__seat(c, ']')) return mw__sfail(c, c->p, "expected ']' after the items' type");
        if (!mw__srange(c, node)) return MW__SNONE;
    } else if (*c->p == '"') {
        return c->depth--, mw__senum(c);
    } else if ((node = mw__snamed_type(c)) == MW__SNONE) {
        return node;
    }
    c->depth--;
    if (!mw__seat(c, '|')) return node;
    mw__sws(c);
    if (strncmp(c->p, "null", 4) != 0 || mw__is_name_char((unsigned char)c->p[4]))
        return mw__sfail(c, c->p, "expected null after '|' (only enums join values with '|')");
    c->p += 4;
    c->s->nodes[node].nullable = 1;
    return node;
}

/* A field's name: a word, or a string literal for any other name. */
static int mw__sfield_name(mw__scomp *c, uint32_t *at, uint32_t *len) {
    size_t n = mw__sname_len(c->p);
    if (*c->p == '"') return mw__sstring(c, at, len);
    if (!n) return mw__sfail(c, c->p, "expected a field name"), 0;
    *at = mw__stext(c, c->p, n);
    *len = (uint32_t)n;
    c->p += n;
    return !c->why;
}

static int mw__sfield_known(const mw__scomp *c, size_t obj, uint32_t at, uint32_t len) {
    const mw__schema *s = c->s;
    const mw__snode *f;
    if (!s->nodes[obj].nkids) return 0;
    for (f = s->nodes + obj + 1;; f = s->nodes + f->next) {
        if (f->key_len == len && memcmp(mw__snode_text(s, f->key), mw__snode_text(s, at), len) == 0) return 1;
        if (!f->next) return 0;
    }
}

/* Whether the JSON writer can write v again (the OpenAPI document shows a default):
   not a number past a double's range, such as 1e999. */
static int mw__json_writable(const mw_jv *v) {
    mw_json *j = mw_json_new();
    int ok = j && mw_json_value(j, v) == 0 && mw_json_text(j, NULL) != NULL;
    mw_json_free(j);
    return ok;
}

/* "= value" after a field: JSON, checked against the field's type now. */
static int mw__sdefault(mw__scomp *c, size_t field) {
    const char *at;
    mw__vctx v;
    mw_jv_doc *doc;
    mw__sws(c);
    at = c->p;
    if (!(doc = mw__sjson(c, "expected a JSON value after '='"))) return 0;
    memset(&v, 0, sizeof v);
    v.max = 1;
    mw__vcheck(&v, c->s, &c->s->nodes[field], mw_jv_root(doc));
    if (v.count || !mw__json_writable(mw_jv_root(doc))) {
        mw_jv_free(doc);
        return mw__sfail(c, at, v.count ? "the default does not fit the field's type" : "number out of range"), 0;
    }
    c->s->nodes[field].def = doc;
    c->s->nodes[field].optional = 1;
    return 1;
}

/* fields := field {',' field} [',' '...']; field := key ['?'] ':' type ['=' default].
   close is '}', or '\0' for a query's field list. */
static int mw__sfields(mw__scomp *c, size_t obj, char close) {
    size_t prev = MW__SNONE, field;
    mw__sws(c);
    if (*c->p == close) return c->p += close != '\0', 1;
    for (;;) {
        uint32_t key = 0, key_len = 0;
        const char *name_at, *type_at;
        int optional;
        mw__sws(c);
        if (strncmp(c->p, "...", 3) == 0) {
            c->s->nodes[obj].open = 1;
            c->p += 3;
            mw__sws(c);
            if (*c->p != close) return mw__sfail(c, c->p, "'...' must be the last item of the field list"), 0;
            break;
        }
        name_at = c->p;
        if (!mw__sfield_name(c, &key, &key_len)) return 0;
        if (mw__sfield_known(c, obj, key, key_len)) return mw__sfail(c, name_at, "duplicate field name"), 0;
        optional = mw__seat(c, '?');
        if (!mw__seat(c, ':')) return mw__sfail(c, c->p, "expected ':' after field name"), 0;
        mw__sws(c);
        type_at = c->p;
        if ((field = mw__stype(c)) == MW__SNONE) return 0;
        if (!close && c->s->nodes[field].kind > MW__S_ENUM) /* a query's values are text */
            return mw__sfail(c, type_at, "a query parameter is string, int, number, bool, any or an enum"), 0;
        c->s->nodes[field].key = key;
        c->s->nodes[field].key_len = key_len;
        c->s->nodes[field].optional = (unsigned char)optional;
        if (mw__seat(c, '=') && !mw__sdefault(c, field)) return 0;
        if (prev != MW__SNONE) c->s->nodes[prev].next = (uint32_t)field;
        prev = field;
        c->s->nodes[obj].nkids++;
        if (mw__seat(c, ',')) continue;
        mw__sws(c);
        if (*c->p == close) break;
        return mw__sfail(c, c->p, close ? "expected ',' or '}' after a field" : "expected ',' between fields"), 0;
    }
    if (close) c->p++;
    return 1;
}

/* Compiles a schema (fields_only: a query's field list, unknown parameters allowed);
   NULL with *why and the 1-based *column of the problem. */
static mw__schema *mw__schema_compile(const char *src, int fields_only, mw__schema *const *named, size_t nnamed,
                                      const char **why, size_t *column) {
    mw__scomp c;
    memset(&c, 0, sizeof c);
    c.src = c.p = src;
    c.named = named;
    c.nnamed = nnamed;
    if (!(c.s = (mw__schema *)MW_MALLOC(sizeof *c.s))) {
        *why = "out of memory";
        *column = 1;
        return NULL;
    }
    memset(c.s, 0, sizeof *c.s);
    if (fields_only) {
        if (mw__snode_new(&c, MW__S_OBJECT) != MW__SNONE && mw__sfields(&c, 0, '\0')) c.s->nodes[0].open = 1;
    } else if (mw__stype(&c) != MW__SNONE) {
        mw__sws(&c);
        if (*c.p) mw__sfail(&c, c.p, "unexpected text after the schema");
    }
    if (!c.why) return c.s;
    *why = c.why;
    *column = (size_t)(c.at - src) + 1;
    mw__schema_free(c.s);
    return NULL;
}

/* ---- a request against its route's declaration ---- */

/* A route's declaration, compiled (mw_route_op). */
typedef struct mw__op {
    char *summary, *description, *tags;
    mw__schema *query, *body;
    mw__arg *defaults; /* a query field's default, by the field's place in the list */
    size_t nquery;
    size_t nresponses;
    int statuses[MW_OP_MAX_RESPONSES];
    char *descriptions[MW_OP_MAX_RESPONSES];
    mw__schema *schemas[MW_OP_MAX_RESPONSES];
} mw__op;

static void mw__op_free(mw__op *op) {
    size_t i;
    if (!op) return;
    MW_FREE(op->summary);
    MW_FREE(op->description);
    MW_FREE(op->tags);
    mw__schema_free(op->query);
    mw__schema_free(op->body);
    MW_FREE(op->defaults);
    for (i = 0; i < op->nresponses; i++) {
        MW_FREE(op->descriptions[i]);
        mw__schema_free(op->schemas[i]);
    }
    MW_FREE(op);
}

/* The last value of a query parameter named name (as FastAPI reads one), or 0. */
static int mw__query_last(const mw_req *rq, const char *name, mw_str *out) {
    mw_str all, n, v;
    size_t pos = 0;
    int found = 0;
    all.ptr = rq->query;
    all.len = rq->head->query_len;
    while (mw__next_pair(all, &pos, &n, &v))
        if (mw__form_name_is(n, name)) *out = v, found = 1;
    return found;
}

/* Each declared query parameter: converted, checked, kept in rq->args for mw_arg_*. */
static void mw__validate_query(mw_req *rq, const mw__op *op, mw__vctx *v) {
    const mw__schema *s = op->query;
    const mw__snode *f;
    size_t k = 0;
    if (!(rq->args = (mw__arg *)mw__arena_alloc(rq->arena, op->nquery * sizeof(mw__arg) + 1))) return;
    for (f = s->nodes[0].nkids ? s->nodes + 1 : NULL; f; f = f->next ? s->nodes + f->next : NULL, k++) {
        const char *name = mw__snode_text(s, f->key);
        mw__arg *a = &rq->args[k];
        mw_str raw;
        *a = op->defaults[k];
        if (!mw__query_last(rq, name, &raw)) {
            if (!f->optional) {
                mw__vpush(v, name, f->key_len, 0);
                mw__verr(v, "missing", "Field required");
                v->depth--;
            }
            continue;
        }
        a->present = 1;
        a->s.ptr = mw__form_decode(rq->arena, raw);
        a->s.len = a->s.ptr ? strlen(a->s.ptr) : 0;
        mw__vpush(v, name, f->key_len, 0);
        mw__vcheck_text(v, s, f, a->s.ptr ? a->s.ptr : "", a->s.len, a);
        v->depth--;
    }
}

/* application/json, or a type with the +json suffix (RFC 6839 §3.1). */
static int mw__is_json_media(const char *ct) {
    size_t n = strcspn(ct, "; \t");
    return mw__ieq(ct, n, "application/json") ||
           (n > 17 && mw__ieq(ct, 12, "application/") && mw__ieq(ct + n - 5, 5, "+json"));
}

/* The body: present, JSON, and of the declared schema. Returns 0 after recording a
   415 or a 400 (malformed JSON, with its offset) for the request. */
static int mw__validate_body(mw_req *rq, const mw__op *op, mw__vctx *v) {
    const char *ct = mw_header(rq, "Content-Type");
    const mw_jv *json;
    if (!rq->body_len) {
        mw__verr(v, "missing", "Field required");
        return 1;
    }
    /* RFC 9110 §15.5.16: a body in a format the route does not take (a missing
       Content-Type is read as JSON, as FastAPI reads it) */
    if (ct && !mw__is_json_media(ct)) {
        mw__req_fail(rq, 415, "the body must be JSON (Content-Type: application/json)", -1);
        return 0;
    }
    if (!(json = mw_req_json(rq))) return 0;
    mw__vcheck(v, op->body, op->body->nodes, json);
    return 1;
}

/* {"status":422,"error":"Unprocessable Content","detail":[{"loc":[...],"msg":...,"type":...}]} */
static void mw__respond_invalid(mw_res *rs, const mw__vctx *v) {
    mw_json *j = mw_json_begin(rs, 422);
    const mw__verror *e;
    size_t k;
    mw_json_object(j);
    mw_json_key_int(j, "status", 422);
    mw_json_key_string(j, "error", mw__reason(422));
    mw_json_key(j, "detail");
    mw_json_array(j);
    for (e = v->first; e; e = e->next) {
        mw_json_object(j);
        mw_json_key(j, "loc");
        mw_json_array(j);
        for (k = 0; k < e->nloc; k++) {
            if (e->loc[k].key) mw_json_stringn(j, e->loc[k].key, e->loc[k].len);
            else mw_json_int(j, (int64_t)e->loc[k].index);
        }
        mw_json_close(j);
        mw_json_key_string(j, "msg", e->msg);
        mw_json_key_string(j, "type", e->type);
        mw_json_close(j);
    }
    mw_json_end(j);
}

/* Checks a request against its route's declaration. Returns 1 when the handler may
   run; 0 when the answer is given (422) or recorded (400, 415: rq->fail_status). */
static int mw__validate_request(mw_req *rq, mw_res *rs, const mw__op *op, size_t max_errors) {
    mw__vctx v;
    v.arena = rq->arena;
    v.depth = 0;
    v.first = v.last = NULL;
    v.count = 0;
    v.max = max_errors;
    if (op->query) {
        mw__vpush(&v, "query", 5, 0);
        mw__validate_query(rq, op, &v);
        v.depth--;
    }
    if (op->body) {
        mw__vpush(&v, "body", 4, 0);
        if (!mw__validate_body(rq, op, &v)) return 0;
        v.depth--;
    }
    if (!v.count) return 1;
    mw__respond_invalid(rs, &v);
    return 0;
}

/* ---------------------------------------------------------------------------
   crypto: SHA-256 (FIPS 180-4), HMAC-SHA256 (RFC 2104), base64 and base64url
   (RFC 4648), for signed cookies and tokens; SHA-1 for the WebSocket handshake
   --------------------------------------------------------------------------- */

/* Writes the low `n` bytes of v most significant first: SHA-256 words and its length
   field (FIPS 180-4 §3.1) and base64's groups (RFC 4648 §4) are all big-endian. */
static void mw__put_be32(unsigned char *dst, uint32_t v) {
    dst[0] = (unsigned char)(v >> 24);
    dst[1] = (unsigned char)(v >> 16);
    dst[2] = (unsigned char)(v >> 8);
    dst[3] = (unsigned char)v;
}

static size_t mw__put_be(unsigned char *dst, uint64_t v, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) dst[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
    return n;
}

typedef struct mw__sha256 {
    uint32_t h[8];
    uint64_t len;            /* bytes hashed so far; the padding ends with it, in bits */
    unsigned char block[64]; /* input that does not yet fill a block */
    size_t used;             /* bytes of block in use */
} mw__sha256;

/* FIPS 180-4 §4.2.2: the first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
static const uint32_t mw__sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t mw__ror32(uint32_t x, unsigned n) { return x >> n | x << (32 - n); }

/* FIPS 180-4 §4.1.2: the four functions of a round and the two of the message
   schedule. Ch and Maj are written with one operation fewer than the standard's
   spelling (same truth tables). */
#define MW__SHA_CH(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define MW__SHA_MAJ(x, y, z) (((x) & (y)) | ((z) & ((x) | (y))))
#define MW__SHA_S0(x) (mw__ror32(x, 2) ^ mw__ror32(x, 13) ^ mw__ror32(x, 22))
#define MW__SHA_S1(x) (mw__ror32(x, 6) ^ mw__ror32(x, 11) ^ mw__ror32(x, 25))
#define MW__SHA_s0(x) (mw__ror32(x, 7) ^ mw__ror32(x, 18) ^ ((x) >> 3))
#define MW__SHA_s1(x) (mw__ror32(x, 17) ^ mw__ror32(x, 19) ^ ((x) >> 10))

/* One round (FIPS 180-4 §6.2.2 step 3) with the variables renamed instead of moved:
   eight calls with the names rotated are eight rounds. Round i >= 16 first extends the
   message schedule in w[16], a window over its last 16 words (step 1). */
#define MW__SHA_ROUND(a, b, c, d, e, f, g, h, i)                                                                  \
    do {                                                                                                          \
        uint32_t t1_;                                                                                             \
        if ((i) >= 16) w[(i)&15] += MW__SHA_s1(w[((i)-2) & 15]) + w[((i)-7) & 15] + MW__SHA_s0(w[((i)-15) & 15]); \
        t1_ = h + MW__SHA_S1(e) + MW__SHA_CH(e, f, g) + mw__sha256_k[i] + w[(i)&15];                              \
        d += t1_;                                                                                                 \
        h = t1_ + MW__SHA_S0(a) + MW__SHA_MAJ(a, b, c);                                                           \
    } while (0)

/* FIPS 180-4 §6.2.2: the 64 rounds over one block of 16 words, added into the hash value. */
static void mw__sha256_words_c(uint32_t state[8], const uint32_t in[16]) {
    uint32_t w[16];
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    unsigned i;
    memcpy(w, in, sizeof w);
    for (i = 0; i < 64; i += 8) {
        MW__SHA_ROUND(a, b, c, d, e, f, g, h, i);
        MW__SHA_ROUND(h, a, b, c, d, e, f, g, i + 1);
        MW__SHA_ROUND(g, h, a, b, c, d, e, f, i + 2);
        MW__SHA_ROUND(f, g, h, a, b, c, d, e, i + 3);
        MW__SHA_ROUND(e, f, g, h, a, b, c, d, i + 4);
        MW__SHA_ROUND(d, e, f, g, h, a, b, c, i + 5);
        MW__SHA_ROUND(c, d, e, f, g, h, a, b, i + 6);
        MW__SHA_ROUND(b, c, d, e, f, g, h, a, i + 7);
    }
    state[0] += a, state[1] += b, state[2] += c, state[3] += d;
    state[4] += e, state[5] += f, state[6] += g, state[7] += h;
}

/* A block of bytes is 16 big-endian words. */
static void mw__sha256_block_c(uint32_t state[8], const unsigned char *p) {
    uint32_t w[16];
    unsigned i;
    for (i = 0; i < 16; i++, p += 4) w[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    mw__sha256_words_c(state, w);
}

/* HMAC's last two compressions (see mw__mac_text): the inner hash's last block from the
   state inner, then the outer hash's only block, the inner digest padded, from the
   state outer; mac gets the outer digest's bytes. */
static void mw__sha256_hmac_tail_c(const uint32_t inner[8], const uint32_t outer[8], const unsigned char block[64],
                                   unsigned char mac[32]) {
    uint32_t h[8], w[16];
    size_t i;
    memcpy(h, inner, sizeof h);
    mw__sha256_block_c(h, block);
    memcpy(w, h, sizeof h); /* the digest's bytes are big-endian words: these words */
    w[8] = 0x80000000u;
    memset(w + 9, 0, 6 * sizeof w[0]);
    w[15] = (64 + 32) * 8; /* the key block came first */
    memcpy(h, outer, sizeof h);
    mw__sha256_words_c(h, w);
    for (i = 0; i < 8; i++) mw__put_be32(mac + 4 * i, h[i]);
}

static size_t mw__base64_encode(char *dst, const void *src, size_t n, int url);

#define MW__MAC_TEXT 43      /* a MAC in base64url, as a session signs with it */
#define MW__MAC_TEXT_ROOM 48 /* what holds one: the SSSE3 path stores three 16-byte groups */

/* The same, the MAC in base64url: MW__MAC_TEXT characters in text. */
static void mw__sha256_hmac_tail_text_c(const uint32_t inner[8], const uint32_t outer[8], const unsigned char block[64],
                                        char text[MW__MAC_TEXT_ROOM]) {
    unsigned char mac[32];
    mw__sha256_hmac_tail_c(inner, outer, block, mac);
    mw__base64_encode(text, mac, sizeof mac, 1);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(MW_NO_SHA_NI)
/* x86-64's SHA extensions (on most CPUs since 2017) do a block in a tenth of the
   time, which is what makes a signed session cheap next to the request it rides on.
   The compiler's own headers; chosen at run time, so the binary runs anywhere. */
#include <cpuid.h>
#include <immintrin.h>

#define MW__SHA_NI __attribute__((target("sha,sse4.1")))
#define MW__SHA_NI_INLINE static inline __attribute__((always_inline, target("sha,sse4.1")))

/* Rounds 4g..4g+3 from the schedule words in w0; then, while words are still due, the
   schedule moves on: w1 gets the words of group g+1 (from w0 and w3), w3 starts those
   of group g+3. The conditions are constants, so each expansion keeps what it needs. */
#define MW__SHA_NI_GROUP(g, w0, w1, w3)                                                                           \
    do {                                                                                                          \
        __m128i m_ = _mm_add_epi32(w0, _mm_loadu_si128((const __m128i *)(const void *)(mw__sha256_k + 4 * (g)))); \
        s1 = _mm_sha256rnds2_epu32(s1, s0, m_);                                                                   \
        s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(m_, 0x0E));                                          \
        if ((g) >= 3 && (g) <= 14) w1 = _mm_sha256msg2_epu32(_mm_add_epi32(w1, _mm_alignr_epi8(w0, w3, 4)), w0);  \
        if ((g) >= 1 && (g) <= 12) w3 = _mm_sha256msg1_epu32(w3, w0);                                             \
    } while (0)

/* The 64 rounds over the block whose words are m0..m3 (four each, first word lowest),
   added into the state as Intel's SHA extensions reference keeps it: ABEF and CDGH. */
MW__SHA_NI_INLINE void mw__sha256_ni_rounds(__m128i *abef, __m128i *cdgh, __m128i m0, __m128i m1, __m128i m2,
                                            __m128i m3) {
    __m128i s0 = *abef, s1 = *cdgh;
    MW__SHA_NI_GROUP(0, m0, m1, m3);
    MW__SHA_NI_GROUP(1, m1, m2, m0);
    MW__SHA_NI_GROUP(2, m2, m3, m1);
    MW__SHA_NI_GROUP(3, m3, m0, m2);
    MW__SHA_NI_GROUP(4, m0, m1, m3);
    MW__SHA_NI_GROUP(5, m1, m2, m0);
    MW__SHA_NI_GROUP(6, m2, m3, m1);
    MW__SHA_NI_GROUP(7, m3, m0, m2);
    MW__SHA_NI_GROUP(8, m0, m1, m3);
    MW__SHA_NI_GROUP(9, m1, m2, m0);
    MW__SHA_NI_GROUP(10, m2, m3, m1);
    MW__SHA_NI_GROUP(11, m3, m0, m2);
    MW__SHA_NI_GROUP(12, m0, m1, m3);
    MW__SHA_NI_GROUP(13, m1, m2, m0);
    MW__SHA_NI_GROUP(14, m2, m3, m1);
    MW__SHA_NI_GROUP(15, m3, m0, m2);
    *abef = _mm_add_epi32(s0, *abef);
    *cdgh = _mm_add_epi32(s1, *cdgh);
}

/* The state's words A..H to ABEF and CDGH (load), and back to ABCD and EFGH (unload). */
MW__SHA_NI_INLINE void mw__sha256_ni_load(const uint32_t state[8], __m128i *abef, __m128i *cdgh) {
    __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(const void *)state), 0xB1);
    __m128i s = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(const void *)(state + 4)), 0x1B);
    *abef = _mm_alignr_epi8(t, s, 8);
    *cdgh = _mm_blend_epi16(s, t, 0xF0);
}

MW__SHA_NI_INLINE void mw__sha256_ni_unload(__m128i abef, __m128i cdgh, __m128i *abcd, __m128i *efgh) {
    __m128i t = _mm_shuffle_epi32(abef, 0x1B), s = _mm_shuffle_epi32(cdgh, 0xB1);
    *abcd = _mm_blend_epi16(t, s, 0xF0);
    *efgh = _mm_alignr_epi8(s, t, 8);
}

/* Each 32-bit lane's bytes reversed: four big-endian words read as the machine's,
   or four words written as big-endian bytes. */
MW__SHA_NI_INLINE __m128i mw__sha256_ni_swap(__m128i v) {
    return _mm_shuffle_epi8(v, _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL));
}

/* The rounds over a block of bytes, from and into ABEF and CDGH. */
MW__SHA_NI_INLINE void mw__sha256_ni_block(__m128i *abef, __m128i *cdgh, const unsigned char *p) {
    const __m128i *in = (const __m128i *)(const void *)p;
    mw__sha256_ni_rounds(abef, cdgh, mw__sha256_ni_swap(_mm_loadu_si128(in)),
                         mw__sha256_ni_swap(_mm_loadu_si128(in + 1)), mw__sha256_ni_swap(_mm_loadu_si128(in + 2)),
                         mw__sha256_ni_swap(_mm_loadu_si128(in + 3)));
}

MW__SHA_NI static void mw__sha256_ni(uint32_t state[8], const unsigned char *p) {
    __m128i abef, cdgh, abcd, efgh;
    mw__sha256_ni_load(state, &abef, &cdgh);
    mw__sha256_ni_block(&abef, &cdgh, p);
    mw__sha256_ni_unload(abef, cdgh, &abcd, &efgh);
    _mm_storeu_si128((__m128i *)(void *)state, abcd);
    _mm_storeu_si128((__m128i *)(void *)(state + 4), efgh);
}

/* mw__sha256_hmac_tail_c's work with the inner digest kept in registers: it is the
   outer block's first eight words as it stands, and the padding is two constants. The
   MAC's bytes 0-15 end in lo, 16-31 in hi. */
MW__SHA_NI_INLINE void mw__sha256_hmac_tail_ni(const uint32_t inner[8], const uint32_t outer[8],
                                               const unsigned char block[64], __m128i *lo, __m128i *hi) {
    __m128i abef, cdgh, abcd, efgh;
    mw__sha256_ni_load(inner, &abef, &cdgh);
    mw__sha256_ni_block(&abef, &cdgh, block);
    mw__sha256_ni_unload(abef, cdgh, &abcd, &efgh);
    mw__sha256_ni_load(outer, &abef, &cdgh);
    mw__sha256_ni_rounds(&abef, &cdgh, abcd, efgh, _mm_set_epi32(0, 0, 0, (int)0x80000000u),
                         _mm_set_epi32((64 + 32) * 8, 0, 0, 0));
    mw__sha256_ni_unload(abef, cdgh, &abcd, &efgh);
    *lo = mw__sha256_ni_swap(abcd);
    *hi = mw__sha256_ni_swap(efgh);
}

/* Twelve bytes (the first twelve lanes) to sixteen base64url symbols, by Wojciech
   Mula's SSSE3 method ("Base64 encoding with SIMD instructions", 0x80.pl, 2016): each
   32-bit lane gets the bytes of one group, two multiplies move its four 6-bit values
   into bytes of their own, and one table lookup picks each value's offset to ASCII. */
MW__SHA_NI_INLINE __m128i mw__base64url_ni(__m128i in) {
    const __m128i offsets = _mm_setr_epi8('a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                                          '0' - 52, '0' - 52, '0' - 52, '0' - 52, '-' - 62, '_' - 63, 'A', 0, 0);
    __m128i t, v, range;
    in = _mm_shuffle_epi8(in, _mm_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1));
    t = _mm_mulhi_epu16(_mm_and_si128(in, _mm_set1_epi32(0x0fc0fc00)), _mm_set1_epi32(0x04000040));
    v = _mm_or_si128(t, _mm_mullo_epi16(_mm_and_si128(in, _mm_set1_epi32(0x003f03f0)), _mm_set1_epi32(0x01000010)));
    /* 0..25 -> 13 ('A'), 26..51 -> 0 ('a' - 26), 52..61 -> 1..10 ('0' - 52), 62, 63 -> 11, 12 */
    range = _mm_subs_epu8(v, _mm_set1_epi8(51));
    range = _mm_or_si128(range, _mm_and_si128(_mm_cmpgt_epi8(_mm_set1_epi8(26), v), _mm_set1_epi8(13)));
    return _mm_add_epi8(v, _mm_shuffle_epi8(offsets, range));
}

/* mw__sha256_hmac_tail_text_c's work without the MAC leaving the registers: its 32
   bytes as groups 0-11, 12-23 and 24-31 (the last padded with zeros, which only the
   five unused symbols see). */
MW__SHA_NI static void mw__sha256_hmac_tail_text_ni(const uint32_t inner[8], const uint32_t outer[8],
                                                    const unsigned char block[64], char text[MW__MAC_TEXT_ROOM]) {
    __m128i lo, hi;
    mw__sha256_hmac_tail_ni(inner, outer, block, &lo, &hi);
    _mm_storeu_si128((__m128i *)(void *)text, mw__base64url_ni(lo));
    _mm_storeu_si128((__m128i *)(void *)(text + 16), mw__base64url_ni(_mm_alignr_epi8(hi, lo, 12)));
    _mm_storeu_si128((__m128i *)(void *)(text + 32), mw__base64url_ni(_mm_srli_si128(hi, 8)));
}

/* CPUID: leaf 7's SHA bit, and SSSE3 and SSE4.1 from leaf 1. Asked once. */
static int mw__have_sha_ni(void) {
    static int known; /* 0: not asked yet, 1: yes, 2: no */
    unsigned a, b, c, d;
    int v = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (!v) {
        int yes = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 9)) && (c & (1u << 19)) &&
                  __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29));
        v = yes ? 1 : 2;
        __atomic_store_n(&known, v, __ATOMIC_RELAXED);
    }
    return v == 1;
}

static void mw__sha256_block(uint32_t state[8], const unsigned char *p) {
    if (mw__have_sha_ni()) mw__sha256_ni(state, p);
    else mw__sha256_block_c(state, p);
}

static void mw__sha256_hmac_tail_text(const uint32_t inner[8], const uint32_t outer[8], const unsigned char block[64],
                                      char text[MW__MAC_TEXT_ROOM]) {
    if (mw__have_sha_ni()) mw__sha256_hmac_tail_text_ni(inner, outer, block, text);
    else mw__sha256_hmac_tail_text_c(inner, outer, block, text);
}
#else
static void mw__sha256_block(uint32_t state[8], const unsigned char *p) { mw__sha256_block_c(state, p); }
static void mw__sha256_hmac_tail_text(const uint32_t inner[8], const uint32_t outer[8], const unsigned char block[64],
                                      char text[MW__MAC_TEXT_ROOM]) {
    mw__sha256_hmac_tail_text_c(inner, outer, block, text);
}
#endif

/* FIPS 180-4 §5.3.3: the initial hash value. */
static void mw__sha256_init(mw__sha256 *s) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->len = 0;
    s->used = 0;
}

static void mw__sha256_update(mw__sha256 *s, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    size_t take;
    if (n == 0) return; /* data may then be NULL, where even p + 0 and memcpy of 0 bytes are undefined */
    s->len += n;
    if (s->used) {
        take = n < 64 - s->used ? n : 64 - s->used;
        memcpy(s->block + s->used, p, take);
        s->used += take;
        p += take;
        n -= take;
        if (s->used < 64) return;
        mw__sha256_block(s->h, s->block);
    }
    for (; n >= 64; p += 64, n -= 64) mw__sha256_block(s->h, p);
    memcpy(s->block, p, n);
    s->used = n;
}

/* FIPS 180-4 §5.1.1: a 1 bit, zeros up to 56 bytes into a block, then the length in bits. */
static void mw__sha256_final(mw__sha256 *s, unsigned char out[32]) {
    static const unsigned char pad[64] = {0x80};
    unsigned char bits[8];
    size_t i;
    mw__put_be(bits, s->len * 8, sizeof bits);
    mw__sha256_update(s, pad, 1 + (119 - s->used) % 64);
    mw__sha256_update(s, bits, sizeof bits);
    for (i = 0; i < 8; i++) mw__put_be32(out + 4 * i, s->h[i]);
}

/* SHA-1 (FIPS 180-4 §6.1), for the WebSocket handshake's accept value (RFC 6455
   §4.2.2), where no secret depends on it. One call hashes a whole message. */
static uint32_t mw__rol32(uint32_t v, int n) { return v << n | v >> (32 - n); }

static void mw__sha1_block(uint32_t h[5], const unsigned char *p) {
    uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    int t;
    for (t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
    for (; t < 80; t++) w[t] = mw__rol32(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    for (t = 0; t < 80; t++) { /* §4.1.1's functions and §4.2.1's constants, twenty rounds each */
        uint32_t f, k, next;
        if (t < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (t < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (t < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        next = mw__rol32(a, 5) + f + e + k + w[t];
        e = d;
        d = c;
        c = mw__rol32(b, 30);
        b = a;
        a = next;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

/* §5.1.1's padding as SHA-256's: a 1 bit, zeros, the length in bits, in one or two blocks. */
static void mw__sha1(const void *data, size_t n, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0}; /* §5.3.1 */
    const unsigned char *p = (const unsigned char *)data;
    unsigned char last[128];
    size_t i, rest, tail;
    for (i = 0; i + 64 <= n; i += 64) mw__sha1_block(h, p + i);
    rest = n - i;
    tail = rest < 56 ? 64 : 128;
    memset(last, 0, tail);
    if (rest) memcpy(last, p + i, rest);
    last[rest] = 0x80;
    mw__put_be(last + tail - 8, (uint64_t)n * 8, 8);
    mw__sha1_block(h, last);
    if (tail == 128) mw__sha1_block(h, last + 64);
    for (i = 0; i < 5; i++) mw__put_be32(out + 4 * i, h[i]);
}

/* The inner and outer hashes, each past its key block (RFC 2104 §2: K XOR ipad, K XOR opad):
   a key set up once is copied for each message, which saves two compressions. */
typedef struct mw__hmac {
    mw__sha256 inner, outer;
} mw__hmac;

/* RFC 2104 §2: H(K XOR pad, ...) starts with the key, zero-filled to a block, XORed with pad. */
static void mw__sha256_start_keyed(mw__sha256 *s, const unsigned char key[64], unsigned char pad) {
    unsigned char block[64];
    size_t i;
    for (i = 0; i < sizeof block; i++) block[i] = (unsigned char)(key[i] ^ pad);
    mw__sha256_init(s);
    mw__sha256_update(s, block, sizeof block);
}

static void mw__hmac_init(mw__hmac *h, const void *key, size_t key_len) {
    unsigned char k[64] = {0};
    if (key_len > sizeof k) { /* RFC 2104 §2: a key longer than a block is hashed first */
        mw__sha256 s;
        mw__sha256_init(&s);
        mw__sha256_update(&s, key, key_len);
        mw__sha256_final(&s, k);
    } else if (key_len) {
        memcpy(k, key, key_len);
    }
    mw__sha256_start_keyed(&h->inner, k, 0x36);
    mw__sha256_start_keyed(&h->outer, k, 0x5c);
}

static void mw__hmac_update(mw__hmac *h, const void *data, size_t n) { mw__sha256_update(&h->inner, data, n); }

static void mw__hmac_final(mw__hmac *h, unsigned char out[32]) {
    unsigned char inner[32];
    mw__sha256_final(&h->inner, inner);
    mw__sha256_update(&h->outer, inner, sizeof inner);
    mw__sha256_final(&h->outer, out);
}

static void mw__hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len, unsigned char out[32]) {
    mw__hmac h;
    mw__hmac_init(&h, key, key_len);
    mw__hmac_update(&h, msg, msg_len);
    mw__hmac_final(&h, out);
}

/* RFC 4648 §4 (url = 0) and §5 (url = 1): the two alphabets differ only in 62 and 63. */
static const char *mw__base64_alphabet(int url) {
    return url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
               : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

/* base64url goes without padding (RFC 4648 §3.2 allows it where the length is known, as
   in a cookie or a JWT); the standard alphabet pads every group to 4 characters. */
static size_t mw__base64_encoded_len(size_t n, int url) {
    return url ? n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0) : (n / 3 + (n % 3 != 0)) * 4;
}

/* Each group of up to 3 bytes becomes one symbol per 6 bits it holds, rounded up. */
static size_t mw__base64_encode(char *dst, const void *src, size_t n, int url) {
    const unsigned char *p = (const unsigned char *)src;
    const char *alphabet = mw__base64_alphabet(url);
    size_t i = 0, j, o = 0, take;
    uint32_t group;
    for (; i + 3 <= n; i += 3, o += 4) {
        char four[4]; /* one store: dst could overlap src, which would make each byte a reload */
        group = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        four[0] = alphabet[group >> 18];
        four[1] = alphabet[group >> 12 & 63];
        four[2] = alphabet[group >> 6 & 63];
        four[3] = alphabet[group & 63];
        memcpy(dst + o, four, sizeof four);
    }
    if (i == n) return o;
    take = n - i;
    group = (uint32_t)p[i] << 16 | (take == 2 ? (uint32_t)p[i + 1] << 8 : 0u);
    for (j = 0; j <= take; j++) dst[o++] = alphabet[group >> (18 - 6 * j) & 63];
    for (; !url && j < 4; j++) dst[o++] = '=';
    return o;
}

/* The symbol's 6 bits, or -1 for a character outside the alphabet ('=' included). The
   table holds both alphabets: 64 marks '+' and '/' (standard only), 128 '-' and '_'
   (url only), 255 anything else. */
static int mw__base64_value(char c, int url) {
    static const unsigned char value[128] = {
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 126,
        255, 190, 255, 127, 52,  53,  54,  55,  56,  57,  58,  59,  60,  61,  255, 255, 255, 255, 255, 255, 255, 0,
        1,   2,   3,   4,   5,   6,   7,   8,   9,   10,  11,  12,  13,  14,  15,  16,  17,  18,  19,  20,  21,  22,
        23,  24,  25,  255, 255, 255, 255, 191, 255, 26,  27,  28,  29,  30,  31,  32,  33,  34,  35,  36,  37,  38,
        39,  40,  41,  42,  43,  44,  45,  46,  47,  48,  49,  50,  51,  255, 255, 255, 255, 255};
    unsigned v = (unsigned char)c < 128 ? value[(unsigned char)c] : 255u;
    if (v == 255 || (v & (url ? 64u : 128u))) return -1;
    return (int)(v & 63);
}

/* Decodes one group of 2 to 4 symbols into dst; -1 when a symbol is outside the alphabet
   or, in a short last group, the bits beyond the last whole byte are not zero: RFC 4648
   §3.5 lets a decoder refuse them, and refusing gives a signed value exactly one spelling. */
static long mw__base64_decode_group(unsigned char *dst, const char *src, size_t n, int url) {
    unsigned spare = (unsigned)(n * 6 % 8);
    uint32_t group = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        int v = mw__base64_value(src[i], url);
        if (v < 0) return -1;
        group = group << 6 | (uint32_t)v;
    }
    if (group & ((1u << spare) - 1)) return -1;
    return (long)mw__put_be(dst, group >> spare, n * 6 / 8);
}

/* The standard alphabet's input is whole groups of 4 with at most two '=' at the end
   (RFC 4648 §4); without padding a length of 4k+1 cannot come from any input, as one
   symbol holds less than a byte. Returns the bytes written to dst (n * 3 / 4 + 3 bytes
   are enough), or -1. */
static long mw__base64_decode(unsigned char *dst, const char *src, size_t n, int url) {
    size_t i;
    long o = 0, got;
    if (!url) {
        if (n % 4) return -1;
        if (n && src[n - 1] == '=') n--;
        if (n && src[n - 1] == '=') n--;
    }
    if (n % 4 == 1) return -1;
    for (i = 0; i + 4 <= n; i += 4, o += 3) { /* whole groups: 4 symbols, 3 bytes */
        int a = mw__base64_value(src[i], url), b = mw__base64_value(src[i + 1], url);
        int c = mw__base64_value(src[i + 2], url), d = mw__base64_value(src[i + 3], url);
        uint32_t group;
        if ((a | b | c | d) < 0) return -1;
        group = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        dst[o] = (unsigned char)(group >> 16);
        dst[o + 1] = (unsigned char)(group >> 8);
        dst[o + 2] = (unsigned char)group;
    }
    if (i == n) return o;
    if ((got = mw__base64_decode_group(dst + o, src + i, n - i, url)) < 0) return -1;
    return o + got;
}

/* Looks at every byte whatever it holds, so the time taken does not tell an attacker how
   many leading bytes of a forged MAC were right: eight bytes at a time, the differences
   gathered in a volatile, which keeps the compiler from stopping at the first one. */
static int mw__equal_ct(const void *a, const void *b, size_t n) {
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    volatile uint64_t diff = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t u, v;
        memcpy(&u, x + i, 8);
        memcpy(&v, y + i, 8);
        diff = diff | (u ^ v);
    }
    for (; i < n; i++) diff = diff | (uint64_t)(x[i] ^ y[i]);
    return diff == 0;
}

#define MW__MAX_OLD_KEYS 3                    /* fallback keys that still verify a session */
#define MW__SESSION_AGE (14LL * 24 * 60 * 60) /* seconds, as Django's SESSION_COOKIE_AGE */

/* ---------------------------------------------------------------------------
   connection: one client's bytes in and out, and who may touch it. A connection
   belongs to one worker at a time (ownership below); its protocol slot says who reads
   its events (HTTP/1.1, or another protocol after an upgrade); its io says where its
   bytes go (the socket, or the test client's buffer). Its output is a queue of
   bytes, then the current response's body source. Also here: the structures of the
   worker and the app, and the access log.
   --------------------------------------------------------------------------- */
enum { MW__PH_IDLE, MW__PH_HEAD, MW__PH_BODY, MW__PH_BUSY, MW__PH_WRITE, MW__PH_STREAM, MW__PH_LINGER };
enum { MW__KEEP_OPEN, MW__CLOSE, MW__CLOSE_LINGER };

#define MW__LINGER_MS 2000 /* after our FIN, read and drop what the client still sends, at most */
#define MW__LINGER_MAX_MS \
    30000 /* ... or up to this while it still sends or takes our answer in (nginx's lingering_time) */
#define MW__LINGER_QUIET_MS 10    /* ... less once it has all we sent and has sent nothing since our FIN this long */
#define MW__INLINE_BODY_MAX 16384 /* bodies up to this are copied next to the head; larger ones go by writev */
#define MW__POOL_MAX 256          /* free read buffers a worker keeps */
#define MW__BIG_BUFFER 65536      /* the larger read buffer a worker also pools (a WebSocket frame's) */
#define MW__BIG_POOL_MAX 4        /* ... and how many of those it keeps */
#define MW__WORKER_SLOTS 64       /* free connection slots a worker keeps for itself */
#define MW__BATCH_BYTES 65536     /* pipelined responses are sent once this much is batched */
#define MW__FLUSH_BYTES 65536     /* after mw_flush, the body is sent on whenever this much is written */
#define MW__PULL_BYTES 16384      /* what a pull callback is asked for at first */
#define MW__PULL_MAX 262144       /* ... and at most, once the client has shown it keeps up */

/* An event's cause, for a protocol's event function: the poller's readiness, or a
   wake-up (another thread queued output, a deadline passed, the server is stopping). */
#define MW__EV_WAKE 8u

/* How far sending got. */
enum { MW__OUT_DONE, MW__OUT_BLOCKED, MW__OUT_PARKED, MW__OUT_DEAD };

/* The client's address, kept from accept() (for the access log and per-address limits). */
typedef struct mw__addr {
    unsigned char ip[16]; /* IPv4 as ::ffff:a.b.c.d */
    unsigned short port;
} mw__addr;

static const unsigned char mw__v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}; /* ::ffff:0:0/96 */

/* How bytes leave a connection: a socket, or the in-process test client's buffer. */
typedef struct mw__io {
    /* sends the iovecs; returns the bytes taken, or -1 with errno (EAGAIN: full) */
    long (*send)(mw__conn *c, const struct iovec *iov, int n, int flags);
    /* sends up to n bytes of fd from *offset, advancing it; returns as send does, 0 at end of file */
    long (*send_file)(mw__conn *c, int fd, unsigned long long *offset, size_t n);
    /* waits until the client can take more; 0 when the time ran out or it is gone */
    int (*wait_writable)(mw__conn *c, long long timeout_ms);
} mw__io;

/* What a protocol does with a connection's events: on_event returns 0 when it closed
   the connection, 1 when it is armed again; release (or NULL) gives back the
   protocol's state when the connection closes under it. */
typedef struct mw__protocol {
    int (*on_event)(mw__worker *w, mw__conn *c, unsigned events);
    void (*release)(mw__worker *w, mw__conn *c);
} mw__protocol;

struct mw__conn {
    /* the slot's, kept from one connection to the next: a stale event may read these */
    unsigned index;  /* the connection's slot in the app's table */
    unsigned state;  /* atomic: generation << 2 | MW__RUN_... (see "server: ownership") */
    int wake_queued; /* atomic: a wake-up for it is in the app's list */
    int urgent_came; /* atomic: an event said TCP urgent data came (edge arming; see mw__conn_run) */
    /* the connection's, from here to the end: reset for each new one */
    struct mw__conn *prev, *next; /* the app's list of open connections (for the sweeper) */
    struct mw__conn *next_free;
    int fd;
    int phase;              /* atomic: read by the sweeper */
    long long deadline;     /* atomic: ms on the monotonic clock, 0 = none */
    long long heartbeat_at; /* atomic: ms when its event stream may owe a heartbeat, 0 = none */
    const mw__io *io;
    void *io_ctx;
    const mw__protocol *proto;
    void *proto_state; /* set once an upgrade switched the protocol, and by it alone */
    mw__addr peer;
    char *rbuf; /* read buffer; requests are parsed in place */
    size_t rcap, rlen, rstart;
    mw__head_scan scan; /* offsets below are relative to rstart */
    size_t head_len;    /* 0 until the current request's head is complete */
    long long content_length;
    int chunked, keep_alive, http10, close_after, saw_stop;
    long long linger_end;       /* ms: the latest a lingering close ends, unless the client still takes our answer in */
    long linger_unacked;        /* bytes we sent that it had not acknowledged, at the last look */
    long long linger_quiet_end; /* ms: the earliest it ends, if all we sent is acknowledged by then */
    long long linger_cap;       /* ms: the latest any lingering ends */
    mw__chunked ch;
    size_t ch_in, ch_out, req_end;
    long long body_start, body_progress; /* ms: the body's first byte and its latest */
    long long req_start_us;              /* for the access log's duration */
    mw__buf outq;                        /* bytes the client has not taken yet */
    size_t outq_off;
    long blocked_unacked; /* the socket's unacknowledged bytes when sending last blocked */
    mw__source src;       /* the current response's body, after outq */
    int src_framing;      /* MW__FRAME_... of the source's bytes */
    int src_status;       /* for the access log, when the source ends */
    unsigned long long src_bytes;
    char *src_request;   /* "METHOD TARGET" of a source response, for the access log */
    mw__addr src_client; /* ... and its client (a trusted proxy's forwarded one, else the peer) */
    char *pull_buf;      /* a pull source's buffer */
    size_t pull_cap;
    int flush_framing; /* mw_flush: how the rest of the body is framed */
    int flush_failed;  /* mw_flush: the client stopped taking the body */
    unsigned long long flushed_bytes;
    unsigned armed; /* the events the poller watches for, when connections stay armed */
    int edge;       /* armed edge-triggered (several workers): its reads are watched */
    int drained;    /* edge: a recv found the socket empty since the last read event */
    int urgent;     /* edge: this run may meet TCP urgent data, where a recv stops short */
    /* "100 Continue" went out for the current request (for the trace) */
    int sent_continue;
};

typedef struct mw__free_block {
    struct mw__free_block *next;
} mw__free_block;

typedef struct mw__pool {
    mw__free_block *head;
    size_t count;
} mw__pool;

#define MW__JSON_KEEP (256u << 10) /* bytes of a parsed JSON body a worker keeps for the next request */

struct mw__worker {
    mw_app *app;
    pthread_t thread;
    mw__head head;
    mw_req req;
    mw_res res;
    mw__buf out; /* response bytes batched for one connection, sent with one write */
    mw__buf body, headers, ctype, scratch;
    mw__buf wakes;        /* connection tags taken from the app's wake-up list */
    mw__conn *free_conns; /* slots this worker closed, for its next connections (no lock) */
    int nfree;
    mw__buf reqline; /* the access log's "METHOD TARGET" */
    mw__buf json;    /* a parsed JSON body (mw_req_json) */
    mw__arena arena;
    mw__pool bufs;     /* read buffers of MW_READ_BUFFER_BYTES */
    mw__pool big_bufs; /* ... and of MW__BIG_BUFFER */
    int batch;         /* events taken per wait, set before the thread starts */
    time_t date_sec;
    char date[MW__DATE_LEN + 1];
    time_t log_sec;
    char log_time[32];
    mw__buf trace;       /* the exchange's account (MW_TRACE), written out at once */
    size_t trace_out_at; /* where in out the traced exchange's answer begins */
};

/* An extension (PostgreSQL, ...) registers these; core code does not know it by name. */
typedef struct mw__ext {
    /* after the handler, for a request that used the extension: give back what it held */
    void (*request_end)(mw_req *rq, void *app_state, void *request_state);
    void (*app_free)(void *state);
    /* before serving: what it could not check while being set up; returns the problems it logged */
    int (*app_check)(mw_app *app, void *state);
} mw__ext;

/* A before or after hook, for the paths under its prefix. */
typedef struct mw__hook {
    char *prefix; /* without a trailing '/'; "" for every path */
    size_t prefix_len;
    mw_before_fn before; /* one of the two */
    mw_after_fn after;
    void *arg;
} mw__hook;

typedef struct mw__strlist {
    char **items;
    size_t n;
} mw__strlist;

struct mw__cors;
struct mw__sessions;

/* Connections by client address (IPv6: by /64), for MW_LIMIT_CONNECTIONS_PER_IP: open
   addressing with linear probing, a slot per address in use. */
typedef struct mw__addr_count {
    uint64_t key[2]; /* the address (mw__addr_key) as two words */
    unsigned count;  /* 0: the slot is free */
} mw__addr_count;

typedef struct mw__addr_table {
    mw__addr_count *slots;
    size_t cap; /* a power of two, at least twice the connection limit */
} mw__addr_table;

#define MW__READY_MAX 8 /* readiness checks an app holds (the database's is one) */

typedef struct mw__ready_check {
    mw_ready_fn fn;
    void *arg;
} mw__ready_check;

/* How the listener came: bound here, bound with SO_REUSEPORT beside other processes'
   (its queue is drained on stop), or taken over (systemd, MW_LISTEN_FD, mw_listen_fd:
   other processes may hold the same socket, so it is never shut down). */
enum { MW__LISTEN_BOUND, MW__LISTEN_REUSEPORT, MW__LISTEN_SHARED };
/* The proxies whose forwarding fields are believed (mw_trusted_proxies): address
   blocks, IPv4 as ::ffff:a.b.c.d/(96 + prefix), parsed once before serving. */
typedef struct mw__cidr {
    unsigned char ip[16]; /* the block's first address */
    unsigned char bits;   /* prefix length, 0-128 */
} mw__cidr;

typedef struct mw__proxies {
    mw__cidr *nets;
    size_t n; /* 0: no proxy is trusted, and no request pays for looking */
} mw__proxies;

struct mw_app {
    mw__node root;
    mw__route **routes; /* every route in registration order */
    size_t nroutes;
    mw__schema **schemas; /* named with mw_schema, in registration order */
    size_t nschemas;
    mw__limits limits;
    mw__logger log;
    int trace_asked;       /* mw_trace's setting */
    int trace, trace_ansi; /* mw_trace or the environment's MW_TRACE, fixed while serving; colours */
    void *userdata;
    int setup_errors;
    int serving;
    int access_log; /* MW_LIMIT_ACCESS_LOG or the environment's MW_ACCESS_LOG, fixed while serving */
    int debug;      /* MW_LIMIT_DEBUG or the environment's MW_DEBUG, fixed while serving */
    int listen_fd;
    int ctl_pipe[2];  /* mw_stop -> controller */
    int exit_pipe[2]; /* controller -> workers, at exit */
    int wake_pipe[2]; /* anyone -> a worker: connections in wakes need attention */
    int poller_open;
    mw__poller poller;
    int stopping, exiting, forcing, accept_paused, accept_starved; /* atomics */
    int draining;          /* atomic: mw_stop was called; readiness says 503, answers say Connection: close */
    int accepting;         /* atomic: workers inside an accept batch, which the stop waits for */
    int listener_refused;  /* atomic: the stop shut the listener (MW__LISTEN_REUSEPORT: once its queue is empty) */
    int listen_kind;       /* MW__LISTEN_... */
    long long drain_delay; /* ms from mw_stop to stopping, fixed while serving */
    mw__ready_check ready[MW__READY_MAX];
    int nready;
    unsigned conn_arming;       /* MW__EV_PERSIST with one worker, MW__EV_EDGE with several (epoll), or 0 */
    pthread_mutex_t conns_lock; /* the list, the table, the address counts */
    mw__conn conns;             /* list sentinel */
    size_t nconns;
    mw__conn **chunks; /* the connection table: chunks of MW__CONN_CHUNK, never moved while serving */
    size_t nchunks, max_chunks;
    mw__conn *free_conns;
    mw__addr_table addrs;
    pthread_mutex_t wake_lock;
    mw__buf wakes; /* tags of connections to wake */
    int wake_signalled;
    mw__worker *workers;
    int nworkers;
    const mw__ext *exts[MW__EXT_MAX];
    void *ext_state[MW__EXT_MAX];
    int nexts;
    mw__hook *hooks; /* before and after hooks, in registration order */
    size_t nhooks;
    int has_before, has_after;
    struct mw__cors *cors;
    mw__buf security_headers; /* the header lines mw_security_headers adds to every answer */
    int security_hooked;
    struct mw__sessions *sessions;
    mw__hmac keys[1 + MW__MAX_OLD_KEYS]; /* the signing key, then the fallbacks that still verify */
    int nkeys, nold_keys;
    int csrf_on; /* -1 until set: then on once sessions are */
    mw__strlist csrf_trusted, csrf_exempt;
    mw__proxies proxies;
    struct mw__timers *timers; /* the streams' timers (mw_stream_every), made by the first */
};

static void *mw__pool_get(mw__pool *p, size_t size) {
    mw__free_block *b = p->head;
    if (!b) return MW_MALLOC(size);
    p->head = b->next;
    p->count--;
    return b;
}
static void mw__pool_put(mw__pool *p, void *mem, size_t max) {
    mw__free_block *b = (mw__free_block *)mem;
    if (!mem) return;
    if (p->count >= max) {
        MW_FREE(mem);
        return;
    }
    b->next = p->head;
    p->head = b;
    p->count++;
}
static void mw__pool_drain(mw__pool *p) {
    while (p->head) {
        mw__free_block *b = p->head;
        p->head = b->next;
        MW_FREE(b);
    }
    p->count = 0;
}

/* The Date field's value, formatted at most once a second per worker. */
static const char *mw__date(mw__worker *w) {
    time_t t = time(NULL);
    if (t != w->date_sec) {
        mw__format_http_date((long long)t, w->date);
        w->date_sec = t;
    }
    return w->date;
}

static void mw__set_phase(mw__conn *c, int phase, long long deadline) {
    MW__STORE(&c->phase, phase);
    MW__STORE(&c->deadline, deadline);
}

static void mw__res_reset(mw__worker *w, mw__conn *c) {
    mw_res *rs = &w->res;
    rs->status = 200;
    rs->is_head = rs->close = rs->json_begun = rs->touched = rs->wholes = rs->committed = 0;
    rs->broken = NULL;
    rs->route = NULL;
    rs->after_due = rs->in_after = 0;
    rs->src.kind = MW__SRC_MEMORY;
    rs->body = &w->body;
    rs->headers = &w->headers;
    rs->ctype = &w->ctype;
    rs->log = w->app ? &w->app->log : NULL;
    rs->debug = w->app ? w->app->debug : 0;
    rs->worker = w;
    rs->conn = c;
    rs->src.fd = -1;
    w->body.len = w->headers.len = w->ctype.len = 0;
}

/* ---- trusted proxies: the client, scheme and host a proxy in front forwarded ----
   X-Forwarded-For and Forwarded (RFC 7239) are lists each proxy appends to, so only
   their right end is written by proxies we know: anything left of that may be the
   client's own invention. The list is walked from the right while the hop that wrote
   an element is trusted; the first address that is not trusted is the client. The
   walk allocates nothing (every element is a slice of a field value in the head); the
   trusted list is parsed once, before serving. */

/* What the forwarding fields of a request say, as far as trusted proxies said it. */
typedef struct mw__forwarded {
    mw__addr client; /* the peer, or the hop the walk ended at (its port when forwarded, else 0) */
    mw_str host;     /* a forwarded host[:port]; ptr NULL when none */
    int https;       /* 1 or 0 as a trusted proxy said, else -1 */
} mw__forwarded;

static int mw__cidr_contains(const mw__cidr *net, const unsigned char ip[16]) {
    size_t whole = net->bits / 8u, rest = net->bits % 8u;
    unsigned mask = (0xffu << (8u - rest)) & 0xffu;
    if (memcmp(net->ip, ip, whole) != 0) return 0;
    return !rest || ((net->ip[whole] ^ ip[whole]) & mask) == 0;
}

static int mw__proxy_trusted(const mw__proxies *p, const mw__addr *a) {
    size_t i;
    for (i = 0; i < p->n; i++)
        if (mw__cidr_contains(&p->nets[i], a->ip)) return 1;
    return 0;
}

/* An IPv4 or IPv6 address, all of s[0..n) (no brackets, no zone), into 16 bytes with
   IPv4 as ::ffff:a.b.c.d: so an IPv4-mapped IPv6 address is its IPv4 address. */
static int mw__parse_ip(const char *s, size_t n, unsigned char ip[16]) {
    char text[INET6_ADDRSTRLEN];
    if (!n || n >= sizeof text || memchr(s, '\0', n)) return 0;
    memcpy(text, s, n);
    text[n] = '\0';
    if (memchr(s, ':', n)) return inet_pton(AF_INET6, text, ip) == 1;
    memcpy(ip, mw__v4_prefix, 12);
    return inet_pton(AF_INET, text, ip + 12) == 1;
}

/* A port of 1 to 5 digits up to 65535, or an obfuscated one ("_x9", RFC 7239 §6.3): 0. */
static int mw__parse_node_port(const char *s, size_t n, unsigned short *port) {
    unsigned long v = 0;
    size_t i;
    if (n && s[0] == '_') return *port = 0, 1;
    if (!n || n > 5) return 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535) return 0;
    *port = (unsigned short)v;
    return 1;
}

/* A hop as proxies write it: "192.0.2.1", "192.0.2.1:80", "2001:db8::1", "[2001:db8::1]"
   or "[2001:db8::1]:80". Anything else (a name, "unknown", an obfuscated "_id", a zone
   "%eth0", a bad port) is no address: 0. */
static int mw__parse_node(const char *s, size_t n, mw__addr *a) {
    const char *colon, *close;
    size_t inner;
    a->port = 0;
    if (n && s[0] == '[') {
        if (!(close = (const char *)memchr(s, ']', n))) return 0;
        inner = (size_t)(close - s) - 1;
        if (!memchr(s + 1, ':', inner) || !mw__parse_ip(s + 1, inner, a->ip)) return 0; /* brackets hold IPv6 */
        if (inner + 2 == n) return 1;
        return close[1] == ':' && mw__parse_node_port(close + 2, n - inner - 3, &a->port);
    }
    colon = (const char *)memchr(s, ':', n);
    if (!colon || memchr(colon + 1, ':', n - (size_t)(colon + 1 - s))) return mw__parse_ip(s, n, a->ip);
    return mw__parse_ip(s, (size_t)(colon - s), a->ip) &&
           mw__parse_node_port(colon + 1, n - (size_t)(colon + 1 - s), &a->port);
}

/* The elements of every field named lower (RFC 9110 §5.3: several lines are one list),
   the last cap of them in ring: element i from the left is ring[i % cap]. Returns how
   many there are in all. A comma always separates, even inside quotes: no address,
   scheme or host holds one, so a quote a client left open cannot swallow what the
   proxies appended after it. */
static size_t mw__list_tail(const mw__head *h, const char *lower, mw_str *ring, size_t cap) {
    size_t f, n = 0, pos;
    mw_str e;
    for (f = 0; f < h->nfields; f++) {
        if (!mw__ieq(h->fields[f].name, h->fields[f].name_len, lower)) continue;
        for (pos = 0; mw__next_list_element(h->fields[f].value, h->fields[f].value_len, &pos, &e);) ring[n++ % cap] = e;
    }
    return n;
}

/* The element k-th from the right (1: the rightmost) of the fields named lower, or
   their leftmost when they hold fewer. */
static int mw__list_from_right(const mw__head *h, const char *lower, size_t k, size_t cap, mw_str *out) {
    mw_str ring[MW__HOPS_MAX];
    size_t n = mw__list_tail(h, lower, ring, cap);
    if (!n) return 0;
    if (k > n) k = n;
    if (k > cap) k = cap;
    *out = ring[(n - k) % cap];
    return 1;
}

/* "http" or "https" in any case: 0 or 1; anything else: -1. */
static int mw__forwarded_proto(mw_str v) {
    return mw__ieq(v.ptr, v.len, "https") ? 1 : mw__ieq(v.ptr, v.len, "http") ? 0 : -1;
}

/* A forwarded host is what a valid Host field holds: uri-host [":" port]. */
static int mw__forwarded_host_ok(mw_str v) {
    return v.len && v.len <= 1024 && v.ptr[0] != ':' && mw__valid_host(v.ptr, v.len);
}

/* X-Forwarded-For from the right, from the trusted peer on. Returns how many proxies
   the walk found trusted (the peer and each trusted address after it): the element
   of X-Forwarded-Proto and -Host at that place from the right is the one the proxy
   nearest the client wrote. */
static size_t mw__walk_x_forwarded_for(const mw__proxies *p, const mw__head *h, size_t cap, mw__forwarded *out) {
    mw_str ring[MW__HOPS_MAX];
    size_t n = mw__list_tail(h, "x-forwarded-for", ring, cap), trusted = 1, i;
    mw__addr a;
    for (i = n; i > 0 && n - i < cap; i--) {
        const mw_str *e = &ring[(i - 1) % cap];
        if (!mw__parse_node(e->ptr, e->len, &a)) break; /* no address: the last hop reached stands */
        out->client = a;
        if (!mw__proxy_trusted(p, &a)) break;
        trusted++;
    }
    return trusted;
}

static void mw__walk_x_forwarded(const mw__proxies *p, const mw__head *h, size_t cap, mw__forwarded *out) {
    size_t proxies = mw__walk_x_forwarded_for(p, h, cap, out);
    mw_str v;
    if (mw__list_from_right(h, "x-forwarded-proto", proxies, cap, &v)) out->https = mw__forwarded_proto(v);
    if (mw__list_from_right(h, "x-forwarded-host", proxies, cap, &v) && mw__forwarded_host_ok(v)) out->host = v;
}

/* A value as RFC 7239 writes it, a token or a quoted-string, without its quotes. A
   backslash escape is refused: none of for=, proto= and host= needs one. */
static int mw__unquote(mw_str *v) {
    if (memchr(v->ptr, '\\', v->len)) return 0;
    if (!v->len || v->ptr[0] != '"') return !memchr(v->ptr, '"', v->len);
    if (v->len < 2 || v->ptr[v->len - 1] != '"' || memchr(v->ptr + 1, '"', v->len - 2)) return 0;
    v->ptr++;
    v->len -= 2;
    return 1;
}

typedef struct mw__forwarded_element {
    mw_str node, proto, host; /* ptr NULL: not in the element */
} mw__forwarded_element;

/* forwarded-element = [ pair ] *( ";" [ pair ] ), pair = token "=" value (RFC 7239 §4):
   for=, proto= and host= are kept (each at most once), other parameters skipped. A
   malformed element gives 0 and nothing of it is used. */
static int mw__parse_forwarded_element(mw_str e, mw__forwarded_element *out) {
    size_t i = 0, s, k;
    memset(out, 0, sizeof *out);
    while (i < e.len) {
        mw_str name, value, *slot;
        const char *eq;
        for (s = i; i < e.len && e.ptr[i] != ';';) i++;
        name = mw__trim_ows(e.ptr + s, i++ - s);
        if (!name.len) continue; /* an empty pair */
        if (!(eq = (const char *)memchr(name.ptr, '=', name.len))) return 0;
        value = mw__trim_ows(eq + 1, name.len - (size_t)(eq + 1 - name.ptr));
        name = mw__trim_ows(name.ptr, (size_t)(eq - name.ptr));
        for (k = 0; k < name.len && mw__is_tchar((unsigned char)name.ptr[k]);) k++;
        if (!name.len || k < name.len || !mw__unquote(&value)) return 0;
        slot = mw__ieq(name.ptr, name.len, "for")     ? &out->node
               : mw__ieq(name.ptr, name.len, "proto") ? &out->proto
               : mw__ieq(name.ptr, name.len, "host")  ? &out->host
                                                      : NULL;
        if (slot && slot->ptr) return 0; /* a parameter twice: which one would be meant? */
        if (slot) *slot = value;
    }
    return 1;
}

/* Forwarded from the right, from the trusted peer on. Each element a trusted proxy
   wrote says what it saw: its proto= and host= replace the ones to their right, so
   the proxy nearest the client has the last word; its for= is the next hop. */
static void mw__walk_forwarded(const mw__proxies *p, const mw__head *h, size_t cap, mw__forwarded *out) {
    mw_str ring[MW__HOPS_MAX];
    size_t n = mw__list_tail(h, "forwarded", ring, cap), i;
    mw__forwarded_element e;
    mw__addr a;
    int https;
    for (i = n; i > 0 && n - i < cap; i--) {
        if (!mw__parse_forwarded_element(ring[(i - 1) % cap], &e)) break;
        if (e.proto.ptr && (https = mw__forwarded_proto(e.proto)) >= 0) out->https = https;
        if (e.host.ptr && mw__forwarded_host_ok(e.host)) out->host = e.host;
        if (!e.node.ptr || !mw__parse_node(e.node.ptr, e.node.len, &a)) break; /* "unknown", "_hidden" */
        out->client = a;
        if (!mw__proxy_trusted(p, &a)) break;
    }
}

static int mw__has_field(const mw__head *h, const char *lower) {
    size_t f;
    for (f = 0; f < h->nfields; f++)
        if (mw__ieq(h->fields[f].name, h->fields[f].name_len, lower)) return 1;
    return 0;
}

/* The client, scheme and host of a request from peer with head h (NULL: no head was
   read). Only a trusted peer is believed; its X-Forwarded-For, -Proto and -Host when it
   sent any of them, else its Forwarded: a proxy that writes the X- fields (nginx,
   Caddy, HAProxy, cloud balancers) may pass a client's Forwarded on untouched, and
   the other way round is rare. */
static void mw__resolve_forwarded(const mw__proxies *p, size_t cap, const mw__addr *peer, const mw__head *h,
                                  mw__forwarded *out) {
    out->client = *peer;
    out->host.ptr = NULL;
    out->host.len = 0;
    out->https = -1;
    if (!p->n || !h || !mw__proxy_trusted(p, peer)) return;
    if (mw__has_field(h, "x-forwarded-for") || mw__has_field(h, "x-forwarded-proto") ||
        mw__has_field(h, "x-forwarded-host"))
        mw__walk_x_forwarded(p, h, cap, out);
    else mw__walk_forwarded(p, h, cap, out);
}

/* Every request lives in its worker (w->req), whose response names the connection
   being answered: so the peer is found when asked, not copied for every request. */
static const mw__addr *mw__req_peer(const mw_req *rq) {
    const mw__worker *w = (const mw__worker *)(const void *)((const char *)rq - offsetof(mw__worker, req));
    return w->res.conn ? &w->res.conn->peer : NULL;
}

/* What the request's forwarding fields say, believed from trusted proxies only (with
   none trusted, the peer and nothing more, at the cost of one test). 0: no peer. */
static int mw__req_forwarded(const mw_req *rq, mw__forwarded *f) {
    const mw__addr *peer = rq ? mw__req_peer(rq) : NULL;
    if (!peer) return 0;
    mw__resolve_forwarded(&rq->app->proxies, (size_t)rq->limits->v[MW_LIMIT_FORWARDED_HOPS], peer, rq->head, f);
    return 1;
}

/* The scheme a trusted proxy said the client used, or NULL. */
static const char *mw__forwarded_scheme(const mw_req *rq) {
    mw__forwarded f;
    if (!mw__req_forwarded(rq, &f) || f.https < 0) return NULL;
    return f.https ? "https" : "http";
}

/* One entry of a trusted list: an address, a block ("10.0.0.0/8", "fd00::/8") or "*"
   (every address). Returns why it is not one, or NULL. */
static const char *mw__parse_cidr(mw_str s, mw__cidr *net) {
    const char *slash = (const char *)memchr(s.ptr, '/', s.len);
    size_t alen = slash ? (size_t)(slash - s.ptr) : s.len, i, whole;
    int v4 = !memchr(s.ptr, ':', alen);
    unsigned bits = v4 ? 32u : 128u, mask;
    memset(net, 0, sizeof *net);
    if (s.len == 1 && s.ptr[0] == '*') return NULL;
    if (!mw__parse_ip(s.ptr, alen, net->ip)) return "is not an address or a block such as 10.0.0.0/8 or fd00::/8";
    if (slash) {
        size_t digits = s.len - alen - 1;
        if (!digits || digits > 3) return "has no prefix length after '/'";
        for (bits = 0, i = alen + 1; i < s.len; i++) {
            if (s.ptr[i] < '0' || s.ptr[i] > '9') return "has no prefix length after '/'";
            bits = bits * 10 + (unsigned)(s.ptr[i] - '0');
        }
        if (bits > (v4 ? 32u : 128u)) return v4 ? "has a prefix longer than 32" : "has a prefix longer than 128";
    }
    net->bits = (unsigned char)(bits + (v4 ? 96u : 0u));
    whole = net->bits / 8u;
    mask = (0xffu >> (net->bits % 8u)) & 0xffu;
    for (i = whole; i < 16; i++)
        if (net->ip[i] & (i == whole ? mask : 0xffu)) return "has address bits set beyond its prefix length";
    return NULL;
}

/* Parses list (comma-separated entries) into p, replacing what it held; on a bad entry
   p is left as it was and one line names the entry. */
static int mw__proxies_parse(mw_app *app, const char *who, const char *list, mw__proxies *p) {
    size_t n = 0, pos = 0, len = strlen(list);
    mw__cidr *nets;
    mw_str e;
    while (mw__next_list_element(list, len, &pos, &e)) n++;
    if (!n) {
        MW_FREE(p->nets);
        p->nets = NULL;
        p->n = 0;
        return 0;
    }
    if (!(nets = (mw__cidr *)MW_MALLOC(n * sizeof *nets))) return MW_ENOMEM;
    for (n = 0, pos = 0; mw__next_list_element(list, len, &pos, &e); n++) {
        const char *why = mw__parse_cidr(e, &nets[n]);
        if (!why) continue;
        mw__log(&app->log, MW_LOG_ERROR, "%s: \"%.*s\" %s", who, (int)e.len, e.ptr, why);
        MW_FREE(nets);
        return MW_EINVAL;
    }
    MW_FREE(p->nets);
    p->nets = nets;
    p->n = n;
    return 0;
}

int mw_trusted_proxies(mw_app *app, const char *list) {
    int rc;
    if (!app) return MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    rc = mw__proxies_parse(app, "mw_trusted_proxies", list ? list : "", &app->proxies);
    if (rc == MW_EINVAL) app->setup_errors++;
    return rc;
}

/* MW_TRUSTED_PROXIES in the environment, read as serving starts, replaces the list a
   call gave: where the proxies are is the deployment's to say. Returns the errors. */
static int mw__proxies_from_env(mw_app *app) {
    const char *env = getenv("MW_TRUSTED_PROXIES");
    if (!env || !*env) return 0;
    return mw__proxies_parse(app, "MW_TRUSTED_PROXIES", env, &app->proxies) != 0;
}

/* ---- the access log: one line per answer, refusals included ---- */

static long long mw__now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int mw__addr_is_v4(const mw__addr *a) { return memcmp(a->ip, mw__v4_prefix, 12) == 0; }

/* The address alone ("127.0.0.1", "::1"), into out of INET6_ADDRSTRLEN bytes. */
static void mw__format_ip(const mw__addr *a, char *out) {
    int v4 = mw__addr_is_v4(a);
    if (!inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? a->ip + 12 : a->ip, out, INET6_ADDRSTRLEN)) strcpy(out, "?");
}

/* "127.0.0.1:5000" or "[::1]:5000", as the access log writes a client. */
static void mw__format_addr(const mw__addr *a, char *out, size_t size) {
    char ip[INET6_ADDRSTRLEN];
    mw__format_ip(a, ip);
    snprintf(out, size, mw__addr_is_v4(a) ? "%s:%u" : "[%s]:%u", ip, a->port);
}

/* "2026-11-30T14:23:21.123Z": UTC with milliseconds, the seconds part made once a second. */
static const char *mw__log_time(mw__worker *w, char *out, size_t size) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != w->log_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(w->log_time, sizeof w->log_time, "%Y-%m-%dT%H:%M:%S", &tm);
        w->log_sec = ts.tv_sec;
    }
    snprintf(out, size, "%.19s.%03dZ", w->log_time, (int)(ts.tv_nsec / 1000000));
    return out;
}

/* A field of an access log line: text, or a number (with a unit in the plain format). */
typedef struct mw__access_field {
    const char *name, *text, *unit; /* text NULL: a number */
    size_t len;
    unsigned long long number;
} mw__access_field;

static mw__access_field mw__text_field(const char *name, const char *text, size_t len) {
    mw__access_field f;
    f.name = name;
    f.text = text;
    f.len = len;
    f.unit = "";
    f.number = 0;
    return f;
}

static mw__access_field mw__number_field(const char *name, unsigned long long number, const char *unit) {
    mw__access_field f = mw__text_field(name, NULL, 0);
    f.number = number;
    f.unit = unit;
    return f;
}

/* The fields separated by spaces, or as one JSON object. */
static void mw__format_access_line(mw__buf *b, const mw__access_field *f, size_t n, int json) {
    size_t i;
    b->len = 0;
    if (json) MW__PUT_LIT(b, "{");
    for (i = 0; i < n; i++) {
        if (i) mw__buf_puts(b, json ? "," : " ");
        if (json) {
            mw__json_put_string(b, f[i].name, strlen(f[i].name));
            MW__PUT_LIT(b, ":");
        }
        if (f[i].text && json) mw__json_put_string(b, f[i].text, f[i].len);
        else if (f[i].text) mw__buf_append(b, f[i].text, f[i].len);
        else mw__buf_put_u64(b, f[i].number);
        if (!f[i].text && !json) mw__buf_puts(b, f[i].unit);
    }
    if (json) MW__PUT_LIT(b, "}");
}

/* One access log line: plain ("TIME CLIENT METHOD TARGET STATUS BYTES DURATIONus") or
   JSON lines. request is "METHOD TARGET" (n bytes), or NULL for a refusal before one. */
static void mw__access_log(mw__worker *w, const mw__addr *peer, const char *request, size_t n, int status,
                           unsigned long long bytes, long long start_us) {
    char when[40], client[64];
    const char *sp = request ? (const char *)memchr(request, ' ', n) : NULL;
    size_t mlen = sp ? (size_t)(sp - request) : 1, tlen = sp ? n - mlen - 1 : 1;
    const char *method = sp ? request : "-", *target = sp ? sp + 1 : "-";
    long long us = start_us ? mw__now_us() - start_us : 0;
    mw__buf *b = &w->scratch;
    mw__access_field fields[7];
    mw__log_time(w, when, sizeof when);
    mw__format_addr(peer, client, sizeof client);
    fields[0] = mw__text_field("time", when, strlen(when));
    fields[1] = mw__text_field("client", client, strlen(client));
    fields[2] = mw__text_field("method", method, mlen);
    fields[3] = mw__text_field("target", target, tlen);
    fields[4] = mw__number_field("status", (unsigned long long)status, "");
    fields[5] = mw__number_field("bytes", bytes, "");
    fields[6] = mw__number_field("us", (unsigned long long)us, "us");
    mw__format_access_line(b, fields, 7, w->app->access_log == 2);
    if (mw__buf_append(b, "", 1) == 0) mw__log_line(&w->app->log, MW_LOG_ACCESS, b->data, b->len - 1);
}

/* "METHOD PATH?QUERY" of the request in w->head into b (empty before a head is parsed). */
static void mw__request_line_of(mw__worker *w, const mw__conn *c, mw__buf *b) {
    const mw__head *h = &w->head;
    b->len = 0;
    if (!c->head_len || !h->method || !h->path) return;
    mw__buf_append(b, h->method, h->method_len);
    MW__PUT_LIT(b, " ");
    mw__buf_append(b, h->path, h->path_len);
    if (h->query_len) {
        MW__PUT_LIT(b, "?");
        mw__buf_append(b, h->query, h->query_len);
    }
}

/* The client of the request in w->head as the access log names it: the peer, or whom
   a trusted proxy forwarded for (a refusal before a head was read: the peer). */
static mw__addr mw__logged_client(const mw__worker *w, const mw__conn *c) {
    mw__forwarded f;
    const mw__head *h = c->head_len && !w->head.error ? &w->head : NULL;
    mw__resolve_forwarded(&w->app->proxies, (size_t)w->app->limits.v[MW_LIMIT_FORWARDED_HOPS], &c->peer, h, &f);
    return f.client;
}

/* Logs the answer to the request in w->head (or a refusal before one). */
static void mw__access_log_answer(mw__worker *w, const mw__conn *c, int status, unsigned long long bytes) {
    mw__addr client;
    if (!w->app->access_log) return;
    client = mw__logged_client(w, c);
    mw__request_line_of(w, c, &w->reqline);
    mw__access_log(w, &client, w->reqline.len ? w->reqline.data : NULL, w->reqline.len, status, bytes, c->req_start_us);
}

/* ---- ownership: which worker runs a connection ----
   Events name a connection by a tag: its slot in the app's table and the slot's
   generation. A connection is run by one worker at a time: the poller gives each of
   its events to one worker, but with several workers a second event (a new edge, or
   a wake-up: another thread queued output, a deadline passed, the server is
   stopping) can reach another worker at the same moment, so a worker first takes
   the connection with a compare-and-swap on its state. An event
   for a busy connection asks its runner to run once more; an event for a closed one
   (an older generation) is dropped, even if its slot holds a new connection now. */
#define MW__TAG_LISTEN 1u
#define MW__TAG_WAKE 2u
#define MW__TAG_EXIT 3u
#define MW__TAG_FIRST_CONN 16u
#define MW__TAG_INDEX_BITS 24
#define MW__GEN_MASK (sizeof(uintptr_t) >= 8 ? 0x3fffffffu : 0xffu)
#define MW__CONN_CHUNK 256 /* connections allocated together in the table */
enum { MW__RUN_IDLE, MW__RUN_BUSY, MW__RUN_AGAIN };

static uintptr_t mw__conn_tag(const mw__conn *c) {
    unsigned gen = (__atomic_load_n(&c->state, __ATOMIC_RELAXED) >> 2) & MW__GEN_MASK;
    return ((uintptr_t)gen << MW__TAG_INDEX_BITS) | (c->index + MW__TAG_FIRST_CONN);
}

static mw__conn *mw__conn_lookup(mw_app *app, uintptr_t tag) {
    size_t index = (size_t)(tag & ((1u << MW__TAG_INDEX_BITS) - 1)) - MW__TAG_FIRST_CONN;
    mw__conn *chunk;
    if (index / MW__CONN_CHUNK >= app->max_chunks) return NULL;
    chunk = MW__LOAD(&app->chunks[index / MW__CONN_CHUNK]);
    return chunk ? chunk + index % MW__CONN_CHUNK : NULL;
}

/* Takes the connection for this worker: 1 when taken; 0 when the tag is stale or
   another worker runs it (which is then asked to run once more). */
static int mw__conn_enter(mw__conn *c, uintptr_t tag) {
    unsigned idle = (unsigned)((tag >> MW__TAG_INDEX_BITS) & MW__GEN_MASK) << 2;
    for (;;) {
        unsigned cur = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
        if ((cur & ~3u) != idle || (cur & 3u) == MW__RUN_AGAIN) return 0; /* stale, or already asked */
        if ((cur & 3u) == MW__RUN_IDLE) {
            if (__atomic_compare_exchange_n(&c->state, &cur, idle | MW__RUN_BUSY, 0, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
                return 1;
        } else if (__atomic_compare_exchange_n(&c->state, &cur, idle | MW__RUN_AGAIN, 0, __ATOMIC_RELEASE,
                                               __ATOMIC_RELAXED)) {
            return 0; /* busy: its runner runs it once more */
        }
        /* the state changed under us: look again */
    }
}

/* Gives the connection back (it is armed already). 0 when an event came meanwhile:
   the caller runs it again. */
static int mw__conn_leave(mw__conn *c) {
    unsigned busy = (__atomic_load_n(&c->state, __ATOMIC_RELAXED) & ~3u) | MW__RUN_BUSY, cur = busy;
    if (__atomic_compare_exchange_n(&c->state, &cur, busy & ~3u, 0, __ATOMIC_RELEASE, __ATOMIC_ACQUIRE)) return 1;
    __atomic_store_n(&c->state, busy, __ATOMIC_RELAXED);
    return 0;
}

/* Ends the slot's generation: every event still naming this connection is stale. */
static void mw__conn_retire(mw__conn *c) {
    unsigned gen = ((__atomic_load_n(&c->state, __ATOMIC_RELAXED) >> 2) + 1) & MW__GEN_MASK;
    __atomic_store_n(&c->state, gen << 2, __ATOMIC_RELEASE);
}

/* Queues a connection for a worker's attention; the pipe wakes one. 0, or MW_ENOMEM
   (the caller's "queued" flag must then be cleared, or it would never be woken). */
static int mw__wake_tag(mw_app *app, uintptr_t tag) {
    char b = 1;
    int rc;
    pthread_mutex_lock(&app->wake_lock);
    rc = mw__buf_append(&app->wakes, &tag, sizeof tag);
    if (rc == 0 && !app->wake_signalled) {
        app->wake_signalled = 1;
        if (write(app->wake_pipe[1], &b, 1) < 0) { /* full: a worker wakes anyway */
        }
    }
    pthread_mutex_unlock(&app->wake_lock);
    return rc;
}

static void mw__wake_conn(mw_app *app, mw__conn *c) {
    if (!__atomic_exchange_n(&c->wake_queued, 1, __ATOMIC_ACQ_REL) && mw__wake_tag(app, mw__conn_tag(c)) != 0)
        MW__STORE(&c->wake_queued, 0); /* the sweeper tries again on its next tick */
}

/* ---- the socket's io ---- */

/* recv() for the connection's worker. EAGAIN, or a short read, shows the socket empty,
   which edge arming needs to know (mw__conn_hand_off); but a read stops short at TCP
   urgent data too (the poller says when some came), so then only EAGAIN does. */
static ssize_t mw__conn_recv(mw__conn *c, void *buf, size_t len) {
    ssize_t n = recv(c->fd, buf, len, 0);
    if (c->edge) c->drained = n < 0 || ((size_t)n < len && !c->urgent); /* the last recv counts; an error closes */
    return n;
}

static long mw__socket_send(mw__conn *c, const struct iovec *iov, int n, int flags) {
    struct msghdr msg;
    msg.msg_name = NULL;
    msg.msg_namelen = 0;
    msg.msg_iov = (struct iovec *)iov;
    msg.msg_iovlen = (size_t)n;
    msg.msg_control = NULL;
    msg.msg_controllen = 0;
    msg.msg_flags = 0;
    return (long)sendmsg(c->fd, &msg, MW__SEND_FLAGS | flags);
}

static long mw__socket_send_file(mw__conn *c, int fd, unsigned long long *offset, size_t n) {
    return mw__sendfile(c->fd, fd, offset, n);
}

static int mw__socket_wait_writable(mw__conn *c, long long timeout_ms) {
    struct pollfd p;
    long long until = mw__now_ms() + timeout_ms;
    for (;;) {
        long long left = until - mw__now_ms();
        int rc;
        p.fd = c->fd;
        p.events = POLLOUT;
        p.revents = 0;
        if (left <= 0) return 0;
        rc = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (rc > 0) return !(p.revents & (POLLERR | POLLHUP | POLLNVAL)) || (p.revents & POLLOUT);
        if (rc == 0 || errno != EINTR) return 0;
    }
}

static const mw__io mw__socket_io = {mw__socket_send, mw__socket_send_file, mw__socket_wait_writable};

/* ---- output: what the client has not taken waits in c->outq ---- */

/* Appends the iovecs to a queue whose bytes before *off are sent; the sent part is
   dropped first once it is half the queue, so a queue that drains as it fills stays
   as small as what it holds. 0, or MW_ENOMEM. */
static int mw__queue_iov(mw__buf *q, size_t *off, const struct iovec *iov, int n) {
    int i;
    if (*off && *off >= q->len / 2) {
        memmove(q->data, q->data + *off, q->len - *off);
        q->len -= *off;
        *off = 0;
    }
    for (i = 0; i < n; i++)
        if (iov[i].iov_len && mw__buf_append(q, iov[i].iov_base, iov[i].iov_len) != 0) return MW_ENOMEM;
    return 0;
}

/* The client took bytes: a connection waiting on it gets its write timeout afresh
   (measured from the last progress, so a slow reader is served, a stalled one not). */
static void mw__conn_progressed(mw__conn *c, const mw__limits *lim) {
    if (MW__LOAD(&c->phase) == MW__PH_WRITE) MW__STORE(&c->deadline, mw__now_ms() + lim->v[MW_LIMIT_WRITE_TIMEOUT_MS]);
}

/* Drops the first `sent` bytes of iov[i..n) after a partial send; returns the index
   of the first iovec with bytes left (n when none). */
static int mw__iov_consume(struct iovec *iov, int n, int i, size_t sent) {
    while (i < n && sent >= iov[i].iov_len) sent -= iov[i++].iov_len;
    if (i < n) {
        iov[i].iov_base = (char *)iov[i].iov_base + sent;
        iov[i].iov_len -= sent;
    }
    return i;
}

/* Sends iov[*i..n) until all of it is taken or the client's buffer is full; *i and
   the iovecs move past what went. 1: all sent; 0: the rest must wait for the client;
   -1: the connection is dead (errno says why). */
static int mw__send_iov(mw__conn *c, struct iovec *iov, int n, int *i, int flags) {
    while (*i < n) {
        long sent = c->io->send(c, iov + *i, n - *i, flags);
        if (sent > 0) *i = mw__iov_consume(iov, n, *i, (size_t)sent);
        else if (sent < 0 && errno == EINTR) continue;
        else if (sent == 0 || errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        else return -1;
    }
    return 1;
}

/* Sends the queue q from *off as far as the client takes it (progress renews the
   connection's write timeout). 1: emptied; 0: the rest waits; -1: dead. */
static int mw__send_queue(mw__conn *c, mw__buf *q, size_t *off, const mw__limits *lim, int flags) {
    struct iovec iov;
    int i = 0, rc;
    if (*off == q->len) return 1;
    iov.iov_base = q->data + *off;
    iov.iov_len = q->len - *off;
    rc = mw__send_iov(c, &iov, 1, &i, flags);
    if ((char *)iov.iov_base != q->data + *off || i) mw__conn_progressed(c, lim);
    *off = i ? q->len : (size_t)((char *)iov.iov_base - q->data);
    return rc;
}

/* The kernel may hold what is sent for what follows at once: a small file's bytes
   (sendfile sends them in the same pass), or the FIN after the last answer complete in
   memory. Not before a pull or push body (it would wait 200 ms for it). */
static int mw__send_flags(const mw__conn *c) {
    if (c->src.kind == MW__SRC_FILE)
        return c->src.left && c->src.left <= MW__MORE_FILE_MAX && c->src_framing != MW__FRAME_NONE ? MW__SEND_MORE : 0;
    return c->close_after != MW__KEEP_OPEN && c->src.kind == MW__SRC_MEMORY ? MW__SEND_MORE : 0;
}

/* Sends the iovecs, after anything already queued; what the client does not take now
   is queued in c->outq. 0, or -1 when the connection is dead. */
static int mw__conn_sendv(mw__conn *c, struct iovec *iov, int n) {
    int i = 0;
    if (c->outq.len == c->outq_off && mw__send_iov(c, iov, n, &i, mw__send_flags(c)) < 0) return -1;
    return i < n ? mw__queue_iov(&c->outq, &c->outq_off, iov + i, n - i) : 0; /* the rare slow reader */
}

/* How a connection closes after its answer. A client that asked for the close sends
   nothing more (RFC 9112 §9.6): the FIN, then close(). When the server decides (it is
   stopping, or a handler said Connection: close), a keep-alive client may have
   requests on the way: close() under them would reset the connection and destroy
   answers the client has not read yet, so it half-closes and drains first. */
static int mw__close_mode(const mw__conn *c) { return c->keep_alive ? MW__CLOSE_LINGER : MW__CLOSE; }

/* Sends w->out and then extra (a body too large to copy). 0, or -1 when dead. */
static int mw__conn_send(mw__worker *w, mw__conn *c, const char *extra, size_t extra_len) {
    struct iovec iov[2];
    int n = 0, rc;
    if (w->out.len) {
        iov[n].iov_base = w->out.data;
        iov[n++].iov_len = w->out.len;
    }
    if (extra_len) {
        iov[n].iov_base = (void *)extra;
        iov[n++].iov_len = extra_len;
    }
    rc = n ? mw__conn_sendv(c, iov, n) : 0;
    w->out.len = 0;
    return rc;
}

/* Sends what waits in c->outq. 1 when all of it is gone, 0 when the socket is full,
   -1 when the connection is dead. */
static int mw__conn_send_queued(mw__conn *c, const mw__limits *lim) {
    int rc = mw__send_queue(c, &c->outq, &c->outq_off, lim, mw__send_flags(c));
    if (rc == 1) {
        mw__buf_free(&c->outq); /* an idle connection holds no buffer */
        c->outq_off = 0;
    }
    return rc;
}

static int mw__conn_output_queued(const mw__conn *c) { return c->outq.len > c->outq_off; }

static void mw__run_after_hooks(mw__worker *w);
static void mw__req_fill_refused(mw__worker *w, mw__conn *c);
static void mw__trace_received(mw__worker *w, mw__conn *c);
static void mw__trace_answered(mw__worker *w, mw__conn *c, int refused, const char *why);
static size_t mw__trace_head_sent(mw__worker *w);

/* An answer's head into w->out, once the after hooks have added their headers. */
static int mw__answer_head(mw__worker *w, mw__conn *c, int keep_alive, int framing, unsigned long long length) {
    if (w->res.after_due) mw__run_after_hooks(w);
    return mw__render_head(&w->out, &w->res, mw__date(w), keep_alive, c->http10, framing, length);
}

/* Frames the in-memory response in w->res onto the connection's output. */
static void mw__conn_respond_memory(mw__worker *w, mw__conn *c, int keep_alive) {
    mw_res *rs = &w->res;
    size_t body_len;
    int send_body;
    if (mw__answer_head(w, c, keep_alive, MW__FRAME_LENGTH, rs->body->len) != 0) {
        c->close_after = MW__CLOSE;
        return;
    }
    body_len = rs->body->len;
    send_body = !rs->is_head && body_len && rs->status != 204 && rs->status != 304;
    mw__access_log_answer(w, c, rs->status, send_body ? body_len : 0);
    if (send_body && body_len <= MW__INLINE_BODY_MAX) {
        if (mw__buf_append(&w->out, rs->body->data, body_len) != 0) c->close_after = MW__CLOSE;
    } else if (send_body && mw__conn_send(w, c, rs->body->data, body_len) != 0) {
        c->close_after = MW__CLOSE;
    }
}

static void mw__log_conn(mw__worker *w, mw__conn *c, int status, const char *why) {
    char client[64] = "test client";
    if (c->fd >= 0) mw__format_addr(&c->peer, client, sizeof client);
    mw__log(&w->app->log, MW_LOG_INFO, "%d to %s, closing: %s", status, client, why);
}

/* Answers a request we refuse, then closes: after a framing error the rest of the
   stream cannot be trusted (RFC 9112 §6.3, last paragraph). */
static void mw__conn_fail(mw__worker *w, mw__conn *c, int status, const char *why) {
    int hooks = w->app->has_after;
    /* The worker's parsed head may be another connection's by now (or this one's before
       its buffer moved): the access log, the trace and the after hooks read this
       request's own head again. */
    if (c->head_len && (w->app->access_log || hooks || w->app->trace))
        mw__parse_head(c->rbuf + c->rstart, c->head_len, &w->app->limits, &w->head);
    if (w->app->trace) mw__trace_received(w, c);
    mw__log_conn(w, c, status, why);
    if (hooks) mw__req_fill_refused(w, c);
    mw__res_reset(w, c);
    w->res.after_due = hooks;
    if (status == 503 || status == 429) mw__add_header(&w->res, "Retry-After", "1");
    mw_error(&w->res, status, why);
    c->close_after = MW__CLOSE_LINGER;
    mw__conn_respond_memory(w, c, 0);
    if (w->app->trace) mw__trace_answered(w, c, status, why);
}

static void mw__conn_release_rbuf(mw__worker *w, mw__conn *c) {
    if (c->rcap == MW_READ_BUFFER_BYTES) mw__pool_put(&w->bufs, c->rbuf, MW__POOL_MAX);
    else if (c->rcap == MW__BIG_BUFFER) mw__pool_put(&w->big_bufs, c->rbuf, MW__BIG_POOL_MAX);
    else MW_FREE(c->rbuf);
    c->rbuf = NULL;
    c->rcap = c->rlen = c->rstart = 0;
}

static void mw__conn_reset_request(mw__conn *c) {
    c->head_len = 0;
    memset(&c->scan, 0, sizeof c->scan);
    memset(&c->ch, 0, sizeof c->ch);
    c->chunked = 0;
    c->content_length = 0;
}

/* Resizes the read buffer to `cap` bytes, moving the current request to the front. */
static int mw__conn_resize(mw__worker *w, mw__conn *c, size_t cap) {
    size_t keep = c->rlen - c->rstart;
    char *nb;
    if (cap < keep) return MW_EINVAL;
    if (cap == c->rcap && c->rstart == 0) return 0;
    nb = (char *)(cap == MW_READ_BUFFER_BYTES ? mw__pool_get(&w->bufs, cap)
                  : cap == MW__BIG_BUFFER     ? mw__pool_get(&w->big_bufs, cap)
                                              : MW_MALLOC(cap));
    if (!nb) return MW_ENOMEM;
    if (keep) memcpy(nb, c->rbuf + c->rstart, keep);
    if (c->rbuf) mw__conn_release_rbuf(w, c);
    c->rbuf = nb;
    c->rcap = cap;
    c->rlen = keep;
    c->rstart = 0;
    return 0;
}

/* The read buffer's next size while a body arrives: doubling as bytes come, never
   beyond what the announced length needs, so a client that announces a large body
   and sends little holds little memory. */
static size_t mw__body_buffer_size(const mw__conn *c, const mw__limits *lim) {
    size_t cap = c->rcap * 2;
    if (c->content_length) {
        size_t need = c->head_len + (size_t)c->content_length;
        if (need > c->rcap && cap > need) cap = need;
    } else if (cap > (size_t)lim->v[MW_LIMIT_BODY_BYTES] * 2 + c->head_len + 4096) {
        cap = (size_t)lim->v[MW_LIMIT_BODY_BYTES] * 2 + c->head_len + 4096; /* chunk framing included */
    }
    return cap;
}

/* Ensures free space for the next read. */
static int mw__conn_make_room(mw__worker *w, mw__conn *c) {
    const mw__limits *lim = &w->app->limits;
    size_t head_max = (size_t)(lim->v[MW_LIMIT_REQUEST_LINE] + lim->v[MW_LIMIT_HEADER_BYTES]) + 8;
    if (!c->rbuf) return mw__conn_resize(w, c, MW_READ_BUFFER_BYTES);
    if (c->rlen < c->rcap) return 0;
    if (c->rstart) return mw__conn_resize(w, c, c->rcap);
    if (c->head_len && c->chunked && c->ch_in > c->ch_out) { /* close the gap the decoder left */
        memmove(c->rbuf + c->ch_out, c->rbuf + c->ch_in, c->rlen - c->ch_in);
        c->rlen -= c->ch_in - c->ch_out;
        c->ch_in = c->ch_out;
        return 0;
    }
    if (!c->head_len && c->rcap >= head_max) return MW_EINVAL; /* the scan reports 414/431 first */
    return mw__conn_resize(w, c, c->head_len ? mw__body_buffer_size(c, lim) : c->rcap * 2);
}

/* ---------------------------------------------------------------------------
   middleware: before and after hooks, CORS, security headers, sessions in a signed
   cookie, CSRF; and the helpers a site needs (redirects, HTML escaping, credentials).
   Each feature is a hook or two that registers like an app's own, so core code does
   not know their names and an app that uses none of them pays one test per request.
   --------------------------------------------------------------------------- */

/* A prefix is kept without its trailing '/', so "/api/" and "/api" both cover "/api"
   and "/api/users", never "/apiary"; "" and "/" cover every path. */
static char *mw__prefix_copy(const char *prefix, size_t *len) {
    size_t n = prefix ? strlen(prefix) : 0;
    while (n && prefix[n - 1] == '/') n--;
    *len = n;
    return mw__strndup(prefix ? prefix : "", n);
}

static int mw__path_under(const char *path, size_t len, const char *prefix, size_t plen) {
    return plen == 0 || (len >= plen && memcmp(path, prefix, plen) == 0 && (len == plen || path[plen] == '/'));
}

/* The path prefixes are compared with: percent-decoded, as the handler sees its
   parameters, so "/users/%61dmin" is under "/users/admin" and a hook on that prefix
   cannot be stepped around by spelling the path another way. An escape that is not
   one is kept as written (the router refuses such a parameter). Made on first use. */
static mw_str mw__prefix_path(mw_req *rq) {
    const char *p = rq->path;
    size_t n = rq->head->path_len, i, o = 0;
    char *d;
    if (rq->prefix_path.ptr) return rq->prefix_path;
    rq->prefix_path.ptr = p;
    rq->prefix_path.len = n;
    if (!memchr(p, '%', n) || !(d = (char *)mw__arena_alloc(rq->arena, n + 1))) return rq->prefix_path;
    for (i = 0; i < n; i++) {
        int hi = i + 2 < n && p[i] == '%' ? mw__hex_value((unsigned char)p[i + 1]) : -1;
        int lo = hi >= 0 ? mw__hex_value((unsigned char)p[i + 2]) : -1;
        if (lo >= 0) d[o++] = (char)(hi * 16 + lo), i += 2;
        else d[o++] = p[i];
    }
    rq->prefix_path.ptr = d;
    rq->prefix_path.len = o;
    return rq->prefix_path;
}

/* Whether the request's path is under a prefix ("" is every path). */
static int mw__req_under(mw_req *rq, const char *prefix, size_t plen) {
    mw_str path;
    if (!plen) return 1;
    path = mw__prefix_path(rq);
    return mw__path_under(path.ptr, path.len, prefix, plen);
}

static int mw__hook_add(mw_app *app, const char *prefix, mw_before_fn before, mw_after_fn after, void *arg) {
    mw__hook *list, *k;
    if (!app || (!before && !after) || (prefix && prefix[0] && prefix[0] != '/')) {
        if (app) mw__log(&app->log, MW_LOG_ERROR, "hook: a prefix starts with '/' (\"%s\")", prefix ? prefix : "");
        return app ? (app->setup_errors++, MW_EINVAL) : MW_EINVAL;
    }
    if (app->serving) return MW_ESTATE;
    list = (mw__hook *)MW_REALLOC(app->hooks, (app->nhooks + 1) * sizeof *list);
    if (!list) return MW_ENOMEM;
    app->hooks = list;
    k = &list[app->nhooks];
    if (!(k->prefix = mw__prefix_copy(prefix, &k->prefix_len))) return MW_ENOMEM;
    k->before = before;
    k->after = after;
    k->arg = arg;
    app->nhooks++;
    if (before) app->has_before = 1;
    if (after) app->has_after = 1;
    return 0;
}

int mw_before(mw_app *app, const char *prefix, mw_before_fn fn, void *arg) {
    return mw__hook_add(app, prefix, fn, NULL, arg);
}
int mw_after(mw_app *app, const char *prefix, mw_after_fn fn, void *arg) {
    return mw__hook_add(app, prefix, NULL, fn, arg);
}

void *mw_route_data(const mw_req *rq) { return rq && rq->route ? rq->route->data : NULL; }
const char *mw_route_pattern(const mw_req *rq) { return rq && rq->route ? rq->route->pattern : NULL; }
int mw_res_status(const mw_res *rs) { return rs ? rs->status : 0; }

/* ---- CORS (the Fetch standard's CORS protocol) ---- */

struct mw__cors {
    struct mw__cors *next;
    char *prefix;
    size_t prefix_len;
    char *origins; /* "a, b" as given; NULL: any origin */
    char *methods, *headers, *expose;
    int any_headers, credentials;
    long max_age;
};

/* An origin is "scheme://host[:port]" with nothing after: a browser never sends a path
   or a trailing '/', so an origin written with one would silently never match. */
static int mw__valid_origin(mw_str o) {
    const char *sep = mw__find(o.ptr, o.len, "://", 3), *host;
    size_t i;
    if (!sep || sep == o.ptr) return 0;
    for (host = sep + 3, i = 0; host + i < o.ptr + o.len; i++)
        if (host[i] == '/' || host[i] == ' ' || host[i] == '*' || host[i] == '?' || host[i] == '#') return 0;
    return i > 0;
}

/* Origins compare whole and without regard to case (schemes and hosts have none). */
static int mw__same_origin_text(const char *a, size_t n, const char *b) {
    size_t i;
    if (strlen(b) != n) return 0;
    for (i = 0; i < n && mw__lower((unsigned char)a[i]) == mw__lower((unsigned char)b[i]);) i++;
    return i == n;
}

/* Whether a comma-separated list of origins (CORS's, a WebSocket endpoint's) names origin. */
static int mw__origin_listed(const char *list, const char *origin) {
    size_t pos = 0;
    mw_str o;
    while (mw__next_list_element(list, strlen(list), &pos, &o))
        if (mw__same_origin_text(o.ptr, o.len, origin)) return 1;
    return 0;
}

static int mw__cors_allows(const struct mw__cors *c, const char *origin) {
    return !c->origins || mw__origin_listed(c->origins, origin);
}

/* A header listing the methods in allow ("GET, HEAD, POST, OPTIONS"): Allow, or a
   preflight's Access-Control-Allow-Methods. */
static void mw__add_methods_header(mw__worker *w, const char *name, unsigned allow) {
    mw__buf *b = &w->scratch;
    b->len = 0;
    mw__format_allow(allow, b);
    if (mw__buf_append(b, "", 1) == 0) mw__add_header(&w->res, name, b->data);
}

static int mw__add_header_if(mw_res *rs, const char *name, const char *value) {
    return value ? mw__add_header(rs, name, value) : 0;
}

/* The settings of the longest prefix the request's path is under, or NULL. */
static const struct mw__cors *mw__cors_for(mw_req *rq) {
    const struct mw__cors *c, *best = NULL;
    for (c = rq->app->cors; c; c = c->next)
        if ((!best || c->prefix_len > best->prefix_len) && mw__req_under(rq, c->prefix, c->prefix_len)) best = c;
    return best;
}

/* Every answer under a prefix with CORS settings, errors included: the page can read it when its
   origin is allowed, and a cache keeps answers for different origins apart. */
static void mw__cors_after(mw_req *rq, mw_res *rs, void *arg) {
    const struct mw__cors *c = mw__cors_for(rq);
    const char *origin = mw_header(rq, "Origin");
    int wildcard;
    (void)arg;
    if (!c) return;
    wildcard = !c->origins && !c->credentials;
    if (!wildcard) mw__add_header(rs, "Vary", "Origin");
    if (!origin || !mw__cors_allows(c, origin)) return;
    mw__add_header(rs, "Access-Control-Allow-Origin", wildcard ? "*" : origin);
    if (c->credentials) mw__add_header(rs, "Access-Control-Allow-Credentials", "true");
    mw__add_header_if(rs, "Access-Control-Expose-Headers", c->expose);
}

/* A preflight (OPTIONS with Access-Control-Request-Method) for a path that exists,
   answered before any hook: it carries no credentials, so an auth hook must not see
   it. The after hook adds the origin's headers, as to every answer. Returns 0 when
   this is no preflight. */
static int mw__cors_preflight(mw__worker *w, unsigned allow) {
    mw_req *rq = &w->req;
    mw_res *rs = &w->res;
    const struct mw__cors *c = mw__cors_for(rq);
    const char *origin = mw_header(rq, "Origin"), *asked = mw_header(rq, "Access-Control-Request-Headers");
    char age[24];
    if (!c || !origin || !allow || !mw_header(rq, "Access-Control-Request-Method")) return 0;
    if (!mw__cors_allows(c, origin)) return mw_error(rs, 403, "origin not allowed by this server's CORS settings"), 1;
    mw_send(rs, 204, NULL, NULL, 0);
    if (c->methods) mw__add_header(rs, "Access-Control-Allow-Methods", c->methods);
    else mw__add_methods_header(w, "Access-Control-Allow-Methods", allow);
    if (c->any_headers && asked && mw__valid_field_value(asked))
        mw__add_header(rs, "Access-Control-Allow-Headers", asked);
    else mw__add_header_if(rs, "Access-Control-Allow-Headers", c->headers);
    if (c->max_age >= 0) {
        snprintf(age, sizeof age, "%ld", c->max_age ? c->max_age : 600L);
        mw__add_header(rs, "Access-Control-Max-Age", age);
    }
    return 1;
}

static char *mw__strdup_or_null(const char *s) { return s ? mw__strndup(s, strlen(s)) : NULL; }

static void mw__cors_free(struct mw__cors *c) {
    while (c) {
        struct mw__cors *next = c->next;
        MW_FREE(c->prefix);
        MW_FREE(c->origins);
        MW_FREE(c->methods);
        MW_FREE(c->headers);
        MW_FREE(c->expose);
        MW_FREE(c);
        c = next;
    }
}

/* Why these settings cannot work, or NULL. */
static const char *mw__cors_settings_error(const mw_cors_opts *o) {
    size_t pos = 0;
    mw_str item;
    int any = o->origins && strcmp(o->origins, "*") == 0;
    if (!o->origins || !o->origins[0]) return "origins is required (a list, or \"*\")";
    if (any && o->credentials)
        return "\"*\" with credentials is refused by browsers: list the origins that may send credentials";
    if (!any)
        while (mw__next_list_element(o->origins, strlen(o->origins), &pos, &item))
            if (!mw__valid_origin(item)) return "an origin is scheme://host[:port], with no path or trailing '/'";
    if ((o->methods && !mw__valid_field_value(o->methods)) || (o->headers && !mw__valid_field_value(o->headers)) ||
        (o->expose && !mw__valid_field_value(o->expose)))
        return "methods, headers and expose are header values (no control characters)";
    return NULL;
}

int mw_cors(mw_app *app, const char *prefix, const mw_cors_opts *opts) {
    struct mw__cors *c, **tail;
    const char *why;
    int first;
    if (!app) return MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    if (!opts || (why = mw__cors_settings_error(opts)) != NULL) {
        mw__log(&app->log, MW_LOG_ERROR, "mw_cors: %s", opts ? why : "no settings");
        return app->setup_errors++, MW_EINVAL;
    }
    c = (struct mw__cors *)MW_MALLOC(sizeof *c);
    if (!c) return MW_ENOMEM;
    memset(c, 0, sizeof *c);
    c->prefix = mw__prefix_copy(prefix, &c->prefix_len);
    c->origins = strcmp(opts->origins, "*") == 0 ? NULL : mw__strdup_or_null(opts->origins);
    c->any_headers = opts->headers && strcmp(opts->headers, "*") == 0 && opts->credentials;
    c->methods = mw__strdup_or_null(opts->methods);
    c->headers = mw__strdup_or_null(opts->headers);
    c->expose = mw__strdup_or_null(opts->expose);
    c->credentials = opts->credentials;
    c->max_age = opts->max_age;
    first = app->cors == NULL;
    for (tail = &app->cors; *tail;) tail = &(*tail)->next;
    *tail = c; /* owned by the app from here */
    if (!c->prefix || (strcmp(opts->origins, "*") != 0 && !c->origins)) return MW_ENOMEM;
    /* one hook for all settings: a path under several prefixes takes the longest one's */
    return first ? mw_after(app, NULL, mw__cors_after, NULL) : 0;
}

/* ---- security headers ---- */

static int mw__security_line(mw__buf *b, const char *name, const char *value, const char *fallback) {
    const char *v = value ? value : fallback;
    if (!v[0]) return 0;
    if (!mw__valid_field_value(v)) return MW_EINVAL;
    mw__buf_puts(b, name);
    MW__PUT_LIT(b, ": ");
    mw__buf_puts(b, v);
    return MW__PUT_LIT(b, "\r\n");
}

static void mw__security_after(mw_req *rq, mw_res *rs, void *arg) {
    const mw__buf *block = (const mw__buf *)arg;
    (void)rq;
    mw__buf_append(rs->headers, block->data, block->len);
}

int mw_security_headers(mw_app *app, const mw_security_opts *opts) {
    static const mw_security_opts defaults = {NULL, NULL, NULL, 0, 0};
    const mw_security_opts *o = opts ? opts : &defaults;
    const char *frame = o->frame_options ? o->frame_options : "DENY";
    mw__buf *b;
    int rc = 0, first;
    char hsts[80];
    if (!app) return MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    if (strcmp(frame, "DENY") != 0 && strcmp(frame, "SAMEORIGIN") != 0 && frame[0]) {
        mw__log(&app->log, MW_LOG_ERROR, "mw_security_headers: frame_options is \"DENY\", \"SAMEORIGIN\" or \"\"");
        return app->setup_errors++, MW_EINVAL;
    }
    b = &app->security_headers;
    first = !app->security_hooked;
    app->security_hooked = 1;
    b->len = 0; /* a second call replaces the first */
    snprintf(hsts, sizeof hsts, "max-age=%lld%s", o->hsts_max_age, o->hsts_subdomains ? "; includeSubDomains" : "");
    rc |= mw__security_line(b, "X-Content-Type-Options", "nosniff", "");
    rc |= mw__security_line(b, "Referrer-Policy", o->referrer_policy, "strict-origin-when-cross-origin");
    rc |= mw__security_line(b, "X-Frame-Options", frame, "");
    rc |= mw__security_line(b, "Content-Security-Policy", o->csp,
                            strcmp(frame, "DENY") == 0         ? "frame-ancestors 'none'"
                            : strcmp(frame, "SAMEORIGIN") == 0 ? "frame-ancestors 'self'"
                                                               : "");
    if (o->hsts_max_age > 0) rc |= mw__security_line(b, "Strict-Transport-Security", hsts, "");
    if (rc) {
        b->len = 0;
        mw__log(&app->log, MW_LOG_ERROR, "mw_security_headers: a value holds a control character");
        return app->setup_errors++, MW_EINVAL;
    }
    return first ? mw_after(app, NULL, mw__security_after, b) : 0;
}

/* ---- sessions: a small set of names and values in a cookie the client cannot forge ----
   The cookie is payload.time.signature: the payload is the pairs form-encoded, then
   base64url; time is when it was written (seconds since 1970); the signature is
   HMAC-SHA256 over "payload.time", base64url, with a key derived from the app's secret
   (so the secret itself signs nothing another feature could be tricked into). Any
   instance of the app with the same secret reads it; nothing is kept on the server. */

static int mw__app_add_ext(mw_app *app, const mw__ext *ext, void *state);
static void mw__session_after(mw_req *rq, mw_res *rs, void *arg);

struct mw__sessions {
    char *cookie, *same_site;
    /* the Set-Cookie lines, rendered once: set_line is cut where the value goes (at
       value_at), delete_line is whole */
    mw__buf set_line, delete_line;
    size_t value_at;
    long long max_age;
    int secure;
    int warned; /* atomic: a session too big for its cookie was logged */
    int ext;    /* where a request keeps its session (rq->ext[ext]) */
};

#define MW__SESSION_PAIRS 4 /* pairs a session holds before its arrays move to the arena */

typedef struct mw__session {
    const char **names, **values; /* first the arrays below, then in the request's arena */
    size_t n, cap;
    const char *first_names[MW__SESSION_PAIRS], *first_values[MW__SESSION_PAIRS];
    int dirty;
    int sealed; /* the cookie went out with the head: a change now would be lost */
} mw__session;

/* In rq->ext, for a request that had no session when its head was rendered. */
static char mw__session_sealed_mark;

static void mw__sessions_free(void *state) {
    struct mw__sessions *cfg = (struct mw__sessions *)state;
    if (!cfg) return;
    MW_FREE(cfg->cookie);
    MW_FREE(cfg->same_site);
    mw__buf_free(&cfg->set_line);
    mw__buf_free(&cfg->delete_line);
    MW_FREE(cfg);
}

static const mw__ext mw__sessions_ext = {NULL, mw__sessions_free, NULL};

/* The session cookie's attributes; a deleted one expires at once. */
static const mw_cookie_opts *mw__session_cookie(const struct mw__sessions *cfg, int deleted, mw_cookie_opts *o) {
    memset(o, 0, sizeof *o);
    o->has_max_age = 1;
    o->max_age = deleted ? 0 : cfg->max_age;
    o->secure = cfg->secure;
    o->same_site = cfg->same_site;
    return o;
}

/* Keys are derived, so the same secret can serve other purposes without a signature
   for one being valid for another. */
static int mw__key_from_secret(mw_app *app, const char *secret, mw__hmac *out) {
    static const char purpose[] = "microweb session v1";
    unsigned char derived[32];
    if (!secret || strlen(secret) < 16) {
        mw__log(&app->log, MW_LOG_ERROR,
                "secret key: at least 16 bytes, and random (head -c 32 /dev/urandom | base64 makes one)");
        return app->setup_errors++, MW_EINVAL;
    }
    mw__hmac_sha256(secret, strlen(secret), purpose, sizeof purpose - 1, derived);
    mw__hmac_init(out, derived, sizeof derived);
    return 0;
}

int mw_secret_key(mw_app *app, const char *key) {
    if (!app) return MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    if (mw__key_from_secret(app, key, &app->keys[0]) != 0) return MW_EINVAL;
    if (!app->nkeys) app->nkeys = 1;
    return 0;
}

/* An older key still verifies cookies it signed (newest first), so a key can rotate
   without logging everybody out; only mw_secret_key's key signs. */
int mw_secret_key_fallback(mw_app *app, const char *old_key) {
    if (!app) return MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    if (app->nold_keys == MW__MAX_OLD_KEYS) {
        mw__log(&app->log, MW_LOG_ERROR, "secret key: at most %d fallback keys", MW__MAX_OLD_KEYS);
        return app->setup_errors++, MW_EINVAL;
    }
    if (mw__key_from_secret(app, old_key, &app->keys[1 + app->nold_keys]) != 0) return MW_EINVAL;
    app->nold_keys++;
    return 0;
}

/* MW_SECRET_KEY, and MW_SECRET_KEY_FALLBACKS (comma-separated, newest first), when no
   call set a key. */
static int mw__secret_key_from_env(mw_app *app) {
    const char *key = getenv("MW_SECRET_KEY"), *old = getenv("MW_SECRET_KEY_FALLBACKS");
    size_t pos = 0;
    mw_str item;
    if (app->nkeys || !key || !key[0]) return 0;
    if (mw_secret_key(app, key) != 0) return MW_EINVAL;
    while (old && mw__next_list_element(old, strlen(old), &pos, &item)) {
        char *one = mw__strndup(item.ptr, item.len);
        int rc = one ? mw_secret_key_fallback(app, one) : MW_ENOMEM;
        MW_FREE(one);
        if (rc) return rc;
    }
    return 0;
}

/* The session's Set-Cookie lines, with an empty value: the set line is cut after
   "name=", where each response's value goes. 0, or MW_ENOMEM. */
static int mw__session_lines(struct mw__sessions *cfg) {
    mw_cookie_opts o;
    cfg->value_at = sizeof "Set-Cookie: " - 1 + strlen(cfg->cookie) + 1;
    if (mw__put_cookie(&cfg->set_line, cfg->cookie, "", mw__session_cookie(cfg, 0, &o)) != 0 ||
        mw__put_cookie(&cfg->delete_line, cfg->cookie, "", mw__session_cookie(cfg, 1, &o)) != 0)
        return MW_ENOMEM;
    return 0;
}

int mw_sessions(mw_app *app, const mw_session_opts *opts) {
    static const mw_session_opts defaults = {NULL, 0, 0, NULL};
    const mw_session_opts *o = opts ? opts : &defaults;
    struct mw__sessions *cfg;
    mw_cookie_opts c;
    if (!app) return MW_EINVAL;
    if (app->sessions || app->serving) return MW_ESTATE;
    if (mw__secret_key_from_env(app) != 0) return MW_EINVAL;
    if (!app->nkeys) {
        mw__log(&app->log, MW_LOG_ERROR,
                "sessions need a secret key: set MW_SECRET_KEY (head -c 32 /dev/urandom | base64 makes one) or "
                "call mw_secret_key before mw_sessions");
        return app->setup_errors++, MW_EINVAL;
    }
    if (!(cfg = (struct mw__sessions *)MW_MALLOC(sizeof *cfg))) return MW_ENOMEM;
    memset(cfg, 0, sizeof *cfg);
    cfg->cookie = mw__strdup_or_null(o->cookie ? o->cookie : "session");
    cfg->same_site = mw__strdup_or_null(o->same_site ? o->same_site : "Lax");
    cfg->max_age = o->max_age ? o->max_age : MW__SESSION_AGE;
    cfg->secure = o->secure;
    if (cfg->cookie && cfg->same_site &&
        (o->max_age < 0 || !mw__cookie_settings_ok(cfg->cookie, mw__session_cookie(cfg, 0, &c)))) {
        mw__log(&app->log, MW_LOG_ERROR,
                "mw_sessions: invalid cookie name, max_age or same_site (None, and a __Host- or __Secure- name, "
                "need secure)");
        mw__sessions_free(cfg);
        return app->setup_errors++, MW_EINVAL;
    }
    if ((cfg->ext = mw__app_add_ext(app, &mw__sessions_ext, cfg)) < 0 || !cfg->cookie || !cfg->same_site ||
        mw__session_lines(cfg) != 0) {
        if (cfg->ext < 0) mw__sessions_free(cfg);
        return MW_ENOMEM;
    }
    app->sessions = cfg;
    if (app->csrf_on < 0) mw_csrf_protect(app, 1); /* on by default once sessions are in use */
    return mw_after(app, NULL, mw__session_after, cfg);
}

/* HMAC-SHA256 under a key set up once, in base64url: MW__MAC_TEXT characters in text.
   A message that fits the inner hash's last block (at most 55 bytes, as most sessions)
   is padded in place: one compression for each of the two hashes, the least HMAC
   takes, and none of the general path's buffering. */
static void mw__mac_text(const mw__hmac *key, const char *msg, size_t n, char text[MW__MAC_TEXT_ROOM]) {
    unsigned char block[64];
    if (n > 55) {
        mw__hmac copy = *key;
        unsigned char mac[32];
        mw__hmac_update(&copy, msg, n);
        mw__hmac_final(&copy, mac);
        mw__base64_encode(text, mac, sizeof mac, 1);
        return;
    }
    memset(block, 0, sizeof block); /* a whole block: a few wide stores, where 55 - n bytes is a loop */
    memcpy(block, msg, n);
    block[n] = 0x80;
    mw__put_be(block + 56, (uint64_t)(64 + n) * 8, 8); /* the key block came first */
    mw__sha256_hmac_tail_text(key->inner.h, key->outer.h, block, text);
}

/* 1 when sig (MW__MAC_TEXT characters) is the MAC of msg under the signing key or a
   fallback, spelled in base64url as the app writes it (one spelling per MAC, so
   comparing the text is comparing the MAC, and encoding 32 bytes costs less than
   decoding 43 characters). */
static int mw__signed_by_app(const mw_app *app, const char *msg, size_t n, const char *sig) {
    char text[MW__MAC_TEXT_ROOM];
    int i, ok = 0;
    for (i = 0; i < app->nkeys + app->nold_keys; i++) {
        mw__mac_text(&app->keys[i], msg, n, text);
        ok |= mw__equal_ct(text, sig, MW__MAC_TEXT);
    }
    return ok;
}

/* Digits only, and a time neither older than max_age nor ahead of the clock. */
static int mw__session_fresh(const char *t, size_t n, long long max_age) {
    long long v = 0, now = (long long)time(NULL);
    size_t i;
    if (n == 0 || n > 12) return 0;
    for (i = 0; i < n; i++) {
        if (t[i] < '0' || t[i] > '9') return 0;
        v = v * 10 + (t[i] - '0');
    }
    return v <= now + 60 && now - v <= max_age;
}

static int mw__session_put(mw_req *rq, mw__session *s, const char *name, const char *value) {
    if (s->n == s->cap) {
        size_t cap = s->cap * 2;
        const char **names = (const char **)mw__arena_alloc(rq->arena, cap * sizeof *names);
        const char **values = (const char **)mw__arena_alloc(rq->arena, cap * sizeof *values);
        if (!names || !values) return MW_ENOMEM;
        memcpy(names, s->names, s->n * sizeof *names);
        memcpy(values, s->values, s->n * sizeof *values);
        s->names = names;
        s->values = values;
        s->cap = cap;
    }
    s->names[s->n] = name;
    s->values[s->n++] = value;
    return 0;
}

/* The pairs of a cookie that is whole, signed by this app and fresh; anything else
   (absent, tampered, signed with an unknown key, expired) is an empty session. */
static void mw__session_load(mw_req *rq, const struct mw__sessions *cfg, mw__session *s) {
    const char *v, *sig, *t;
    unsigned char *form;
    size_t pos = 0;
    long flen;
    mw_str cookie, all, n, val;
    if (!mw__cookie_find(rq, cfg->cookie, &cookie) || cookie.len <= MW__MAC_TEXT + 1) return;
    v = cookie.ptr;
    sig = v + cookie.len - MW__MAC_TEXT - 1; /* a signature is all of the last field, or the cookie is not one */
    if (*sig != '.') return;
    for (t = sig - 1; t > v && *t != '.';) t--;
    if (t == v || !mw__session_fresh(t + 1, (size_t)(sig - t - 1), cfg->max_age) ||
        !mw__signed_by_app(rq->app, v, (size_t)(sig - v), sig + 1))
        return;
    form = (unsigned char *)mw__arena_alloc(rq->arena, (size_t)(t - v) * 3 / 4 + 3);
    if (!form || (flen = mw__base64_decode(form, v, (size_t)(t - v), 1)) < 0) return;
    all.ptr = (const char *)form;
    all.len = (size_t)flen;
    while (mw__next_pair(all, &pos, &n, &val)) {
        const char *name = mw__form_decode(rq->arena, n), *value = mw__form_decode(rq->arena, val);
        if (!name || !value || mw__session_put(rq, s, name, value) != 0) return;
    }
}

static mw__session *mw__session_of(mw_req *rq) {
    const struct mw__sessions *cfg = rq ? rq->app->sessions : NULL;
    mw__session *s;
    void *held;
    if (!cfg) return NULL;
    held = rq->ext[cfg->ext];
    if (held && held != &mw__session_sealed_mark) return (mw__session *)held;
    if (!(s = (mw__session *)mw__arena_alloc(rq->arena, sizeof *s))) return NULL;
    memset(s, 0, sizeof *s);
    s->names = s->first_names;
    s->values = s->first_values;
    s->cap = MW__SESSION_PAIRS;
    s->sealed = held != NULL;
    rq->ext[cfg->ext] = s;
    mw__session_load(rq, cfg, s);
    return s;
}

const char *mw_session_get(mw_req *rq, const char *name) {
    mw__session *s = mw__session_of(rq);
    size_t i;
    for (i = 0; s && name && i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) return s->values[i];
    return NULL;
}

static int mw__is_unreserved(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

static size_t mw__form_encoded_len(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += mw__is_unreserved((unsigned char)*s) ? 1u : 3u;
    return n;
}

static char *mw__form_encode(char *o, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (mw__is_unreserved(c)) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    return o;
}

static size_t mw__session_form_len(const mw__session *s) {
    size_t i, n = 0;
    for (i = 0; i < s->n; i++) n += mw__form_encoded_len(s->names[i]) + mw__form_encoded_len(s->values[i]) + 2;
    return n;
}

#define MW__SESSION_OVERHEAD (1 + 12 + 1 + MW__MAC_TEXT) /* ".time.signature" */

/* Writes "payload.time.signature" to out, which has room for
   mw__base64_encoded_len(flen, 1) + MW__SESSION_OVERHEAD bytes; returns its length, or
   0 when the arena had no room for the payload. */
static size_t mw__session_encode(mw_req *rq, const mw__session *s, size_t flen, char *out) {
    char *form = (char *)mw__arena_alloc(rq->arena, flen + 1), *o = form, mac[MW__MAC_TEXT_ROOM];
    size_t i, n;
    if (!form) return 0;
    for (i = 0; i < s->n; i++) {
        if (i) *o++ = '&';
        o = mw__form_encode(o, s->names[i]);
        *o++ = '=';
        o = mw__form_encode(o, s->values[i]);
    }
    n = mw__base64_encode(out, form, (size_t)(o - form), 1);
    out[n++] = '.';
    n += mw__format_u64(out + n, (unsigned long long)time(NULL));
    mw__mac_text(&rq->app->keys[0], out, n, mac);
    out[n++] = '.';
    memcpy(out + n, mac, MW__MAC_TEXT);
    return n + MW__MAC_TEXT;
}

/* The Set-Cookie line of a changed session, its value signed in place. */
static void mw__session_put_cookie(mw_req *rq, mw_res *rs, const struct mw__sessions *cfg, const mw__session *s) {
    const mw__buf *line = &cfg->set_line;
    mw__buf *h = rs->headers;
    size_t flen = mw__session_form_len(s), n;
    if (mw__buf_reserve(h, line->len + mw__base64_encoded_len(flen, 1) + MW__SESSION_OVERHEAD) != 0) return;
    /* base64url, digits and dots, under a name and attributes mw_sessions checked */
    if (!(n = mw__session_encode(rq, s, flen, h->data + h->len + cfg->value_at))) return;
    memcpy(h->data + h->len, line->data, cfg->value_at);
    memcpy(h->data + h->len + cfg->value_at + n, line->data + cfg->value_at, line->len - cfg->value_at);
    h->len += line->len + n;
}

/* Writes the cookie when the handler changed the session: a new signature and time
   (so an active session stays alive), or the cookie's deletion once it is empty. */
static void mw__session_after(mw_req *rq, mw_res *rs, void *arg) {
    const struct mw__sessions *cfg = (const struct mw__sessions *)arg;
    mw__session *s = (mw__session *)rq->ext[cfg->ext];
    if (!s) {
        rq->ext[cfg->ext] = &mw__session_sealed_mark;
        return;
    }
    s->sealed = 1;
    if (!s->dirty) return;
    if (s->n) mw__session_put_cookie(rq, rs, cfg, s);
    else mw__buf_append(rs->headers, cfg->delete_line.data, cfg->delete_line.len);
}

static int mw__session_fits(mw_req *rq, const mw__session *s) {
    size_t len = mw__base64_encoded_len(mw__session_form_len(s), 1) + MW__SESSION_OVERHEAD;
    long long max = rq->limits->v[MW_LIMIT_SESSION_BYTES];
    if ((long long)len <= max) return 1;
    if (!__atomic_exchange_n(&rq->app->sessions->warned, 1, __ATOMIC_RELAXED)) /* once: clients choose the sizes */
        mw__log(&rq->app->log, MW_LOG_WARN,
                "session not changed: its cookie would be %lu bytes, over MW_MAX_SESSION_BYTES (%lld)",
                (unsigned long)len, max);
    return 0;
}

/* Sets (value NULL: removes) a name; the cookie is written with the response. */
int mw_session_set(mw_req *rq, const char *name, const char *value) {
    mw__session *s = mw__session_of(rq);
    const char *copy = NULL, *old = NULL, *name_copy;
    size_t i;
    if (!rq || !name || !name[0]) return MW_EINVAL;
    if (!s) return rq->app->sessions ? MW_ENOMEM : MW_ESTATE;
    if (s->sealed) return MW_ESTATE; /* the cookie went out already */
    if (value && !(copy = mw__arena_strndup(rq->arena, value, strlen(value)))) return MW_ENOMEM;
    for (i = 0; i < s->n && strcmp(s->names[i], name) != 0;) i++;
    if (i < s->n && !value) { /* removed: the last pair takes its place */
        s->names[i] = s->names[s->n - 1];
        s->values[i] = s->values[--s->n];
    } else if (i < s->n) {
        old = s->values[i];
        s->values[i] = copy;
    } else if (!value) {
        return 0;
    } else if (!(name_copy = mw__arena_strndup(rq->arena, name, strlen(name))) ||
               mw__session_put(rq, s, name_copy, copy) != 0) {
        return MW_ENOMEM;
    }
    if (value && !mw__session_fits(rq, s)) {
        if (old) s->values[i] = old;
        else s->n--;
        return MW_ETOOBIG;
    }
    s->dirty = 1;
    return 0;
}

void mw_session_clear(mw_req *rq) {
    mw__session *s = mw__session_of(rq);
    if (!s || s->sealed) return;
    s->n = 0;
    s->dirty = 1;
}

/* ---- CSRF: unsafe requests from other sites are refused ----
   The check is Go's http.CrossOriginProtection: browsers say where a request comes
   from (Sec-Fetch-Site, else Origin), and a request from another origin that may
   change something is refused, unless its origin is trusted or its path exempt.
   Requests without either header (curl, scripts) are not a browser's and pass. */

static int mw__method_is_safe(const char *m) {
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0;
}

/* "scheme://" + host exactly as the Host header gives it (ports included). */
static int mw__origin_is_host(const char *origin, const char *host) {
    const char *h = strstr(origin, "://");
    size_t n = strlen(host), i;
    if (!h || strlen(h + 3) != n) return 0;
    for (i = 0; i < n && mw__lower((unsigned char)h[3 + i]) == mw__lower((unsigned char)host[i]);) i++;
    return i == n;
}

/* Origin is scheme://host; its scheme is compared when known (scheme NULL: any). */
static int mw__origin_is(const char *origin, const char *scheme, const char *host) {
    size_t n = scheme ? strlen(scheme) : 0;
    if (!host || !host[0] || !mw__origin_is_host(origin, host)) return 0;
    return !scheme || (mw__has_prefix_ci(origin, scheme) && strncmp(origin + n, "://", 3) == 0);
}

/* Why a request with an unsafe method is refused, or NULL. Empty headers count as absent.
   host and scheme are the request's own (mw_host; the scheme a trusted proxy said, or
   NULL: a server without TLS cannot tell which one the browser used). */
static const char *mw__cross_origin_refusal(const char *fetch_site, const char *origin, const char *scheme,
                                            const char *host) {
    if (fetch_site && fetch_site[0]) {
        if (strcmp(fetch_site, "same-origin") == 0 || strcmp(fetch_site, "none") == 0) return NULL;
        return "cross-origin request refused: Sec-Fetch-Site is not same-origin";
    }
    if (!origin || !origin[0] || mw__origin_is(origin, scheme, host)) return NULL;
    return "cross-origin request refused: Origin does not match Host";
}

static int mw__strlist_add(mw__strlist *l, const char *s, size_t n) {
    char **items = (char **)MW_REALLOC(l->items, (l->n + 1) * sizeof *items);
    if (!items) return MW_ENOMEM;
    l->items = items;
    if (!(items[l->n] = mw__strndup(s, n))) return MW_ENOMEM;
    l->n++;
    return 0;
}

static void mw__strlist_free(mw__strlist *l) {
    size_t i;
    for (i = 0; i < l->n; i++) MW_FREE(l->items[i]);
    MW_FREE(l->items);
    l->items = NULL;
    l->n = 0;
}

/* A trusted origin, an exempt path, or an origin the path's CORS settings list. */
static int mw__csrf_excused(mw_req *rq, const char *origin) {
    const mw_app *app = rq->app;
    const struct mw__cors *c = mw__cors_for(rq);
    size_t i;
    for (i = 0; i < app->csrf_exempt.n; i++)
        if (mw__req_under(rq, app->csrf_exempt.items[i], strlen(app->csrf_exempt.items[i]))) return 1;
    if (!origin) return 0;
    for (i = 0; i < app->csrf_trusted.n; i++)
        if (mw__same_origin_text(origin, strlen(origin), app->csrf_trusted.items[i])) return 1;
    return c && c->origins && mw__cors_allows(c, origin);
}

static int mw__csrf_check(mw_req *rq, mw_res *rs) {
    const char *origin, *why;
    if (mw__method_is_safe(rq->method)) return MW_NEXT;
    origin = mw_header(rq, "Origin");
    why = mw__cross_origin_refusal(mw_header(rq, "Sec-Fetch-Site"), origin, mw__forwarded_scheme(rq), mw_host(rq));
    if (!why || mw__csrf_excused(rq, origin)) return MW_NEXT;
    mw_error(rs, 403, why);
    return MW_DONE;
}

int mw_csrf_protect(mw_app *app, int on) {
    if (!app) return MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    app->csrf_on = on ? 1 : 0;
    if (on) app->has_before = 1;
    return 0;
}

int mw_csrf_trust(mw_app *app, const char *origin) {
    mw_str o;
    if (!app) return MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    if (!origin || !mw__valid_origin(o = mw__trim_ows(origin, strlen(origin)))) {
        mw__log(&app->log, MW_LOG_ERROR, "mw_csrf_trust: an origin is scheme://host[:port], with no path (\"%s\")",
                origin ? origin : "");
        return app->setup_errors++, MW_EINVAL;
    }
    return mw__strlist_add(&app->csrf_trusted, o.ptr, o.len);
}

int mw_csrf_exempt(mw_app *app, const char *prefix) {
    size_t n;
    char *p;
    int rc;
    if (!app || !prefix || prefix[0] != '/') {
        if (app) mw__log(&app->log, MW_LOG_ERROR, "mw_csrf_exempt: a prefix starts with '/'");
        return app ? (app->setup_errors++, MW_EINVAL) : MW_EINVAL;
    }
    if (app->serving) return MW_ESTATE;
    if (!(p = mw__prefix_copy(prefix, &n))) return MW_ENOMEM;
    rc = mw__strlist_add(&app->csrf_exempt, p, n);
    MW_FREE(p);
    return rc;
}

/* The session's CSRF secret (32 random bytes, kept base64url in the session as
   "_csrf"), made on first use when create is set. */
static int mw__csrf_secret(mw_req *rq, unsigned char secret[32], int create) {
    const char *v = mw_session_get(rq, "_csrf");
    unsigned char buf[40];
    char text[48];
    if (v && strlen(v) == 43 && mw__base64_decode(buf, v, 43, 1) == 32) return memcpy(secret, buf, 32), 0;
    if (!create || mw__random_bytes(secret, 32) != 0) return MW_EINVAL;
    text[mw__base64_encode(text, secret, 32, 1)] = '\0';
    return mw_session_set(rq, "_csrf", text);
}

/* A new mask each time, so the token in a page changes on every response even though
   the secret does not (a compressed page cannot leak it byte by byte, as in BREACH). */
const char *mw_csrf_token(mw_req *rq) {
    unsigned char secret[32], token[64];
    char *out;
    int i;
    if (!rq || mw__csrf_secret(rq, secret, 1) != 0 || mw__random_bytes(token, 32) != 0) return NULL;
    for (i = 0; i < 32; i++) token[32 + i] = (unsigned char)(secret[i] ^ token[i]);
    if (!(out = (char *)mw__arena_alloc(rq->arena, 90))) return NULL;
    out[mw__base64_encode(out, token, sizeof token, 1)] = '\0';
    return out;
}

/* The csrf_token field of a form, urlencoded or multipart (a file upload's form). */
static const char *mw__csrf_form_token(mw_req *rq) {
    const char *t = mw_value(rq, MW_FORM, "csrf_token");
    mw_part part;
    if (t || !mw__content_type_is(rq, "multipart/form-data")) return t;
    memset(&part, 0, sizeof part);
    while (mw_multipart_next(rq, &part) > 0)
        if (part.name && strcmp(part.name, "csrf_token") == 0 && !part.filename)
            return mw__arena_strndup(rq->arena, part.data, part.len);
    return NULL;
}

/* The token from the X-CSRF-Token header or the form field csrf_token, checked
   against the session's secret. */
int mw_csrf_token_ok(mw_req *rq) {
    const char *t = rq ? mw_header(rq, "X-CSRF-Token") : NULL;
    unsigned char secret[32], token[72];
    int i;
    if (rq && !t) t = mw__csrf_form_token(rq);
    if (!t || strlen(t) != 86 || mw__base64_decode(token, t, 86, 1) != 64 || mw__csrf_secret(rq, secret, 0) != 0)
        return 0;
    for (i = 0; i < 32; i++) token[32 + i] = (unsigned char)(token[32 + i] ^ token[i]);
    return mw__equal_ct(token + 32, secret, 32);
}

int mw_csrf_require_token(mw_req *rq, mw_res *rs, void *arg) {
    (void)arg;
    if (mw__method_is_safe(rq->method) || mw_csrf_token_ok(rq)) return MW_NEXT;
    mw_error(rs, 403, "CSRF token missing or incorrect");
    return MW_DONE;
}

/* ---- helpers a site needs ---- */

/* A Location a browser follows to where the app meant: a path ("/me", not "//host",
   which is another host), a relative reference without a scheme, or an http(s) URL;
   no control characters, spaces or backslashes (browsers read '\' as '/'). */
static int mw__valid_location(const char *l) {
    const char *p;
    if (!l[0]) return 0;
    for (p = l; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '\\') return 0;
    if (l[0] == '/') return l[1] != '/';
    if (mw__has_prefix_ci(l, "http://") || mw__has_prefix_ci(l, "https://")) return l[l[4] == ':' ? 7 : 8] != '\0';
    p = l + strcspn(l, ":/?#");
    return *p != ':'; /* "javascript:..." and other schemes */
}

int mw_redirect(mw_res *rs, int status, const char *location) {
    int rc;
    if (!rs) return MW_EINVAL;
    if ((status != 301 && status != 302 && status != 303 && status != 307 && status != 308) || !location ||
        !mw__valid_location(location))
        return mw__res_break(rs, MW__WARN_STATUS, "mw_redirect: status 301/302/303/307/308 and a safe location");
    if ((rc = mw_send(rs, status, NULL, NULL, 0)) != 0) return rc;
    return mw__add_header(rs, "Location", location);
}

/* The characters HTML gives a meaning to, in text and in attribute values quoted either
   way (the OWASP rule), & < > " ', become entities. */
/* Each byte's escaped form (itself, or its entity) and length: filled once, then the
   escape is a copy and an add per byte, with no branch to mispredict on the text. */
static char mw__html_escaped[256][8];
static unsigned char mw__html_escaped_len[256];
static pthread_once_t mw__html_escaped_once = PTHREAD_ONCE_INIT;

static void mw__html_escaped_fill(void) {
    static const char *const entities[] = {"&&amp;", "<&lt;", ">&gt;", "\"&quot;", "'&#39;"};
    size_t c, k;
    for (c = 0; c < 256; c++) {
        mw__html_escaped[c][0] = (char)c;
        mw__html_escaped_len[c] = 1;
    }
    for (k = 0; k < sizeof entities / sizeof entities[0]; k++) {
        unsigned char c0 = (unsigned char)entities[k][0];
        memcpy(mw__html_escaped[c0], entities[k] + 1, strlen(entities[k] + 1));
        mw__html_escaped_len[c0] = (unsigned char)strlen(entities[k] + 1);
    }
}

#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#include <emmintrin.h>

/* How many bytes from s need no entity: sixteen compared at a time (text is mostly
   such runs, which then cost a few instructions per sixteen bytes, not per byte). */
static size_t mw__html_plain_run(const char *s, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i m = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('&')), _mm_cmpeq_epi8(v, _mm_set1_epi8('<')));
        m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('>')), _mm_cmpeq_epi8(v, _mm_set1_epi8('"'))));
        m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('\'')));
        if (_mm_movemask_epi8(m)) return i + (size_t)__builtin_ctz((unsigned)_mm_movemask_epi8(m));
    }
    while (i < n && mw__html_escaped_len[(unsigned char)s[i]] == 1) i++;
    return i;
}
#else
static size_t mw__html_plain_run(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && mw__html_escaped_len[(unsigned char)s[i]] == 1) i++;
    return i;
}
#endif

/* s with those characters as entities, appended to b: each run that needs none in
   one copy, then the entity of the byte that ends it. */
static int mw__buf_html_escape(mw__buf *b, const char *s, size_t n) {
    char *o;
    if (n > ((size_t)-1 - b->len - 8) / 6 || mw__buf_reserve(b, n * 6 + 8) != 0) return MW_ENOMEM;
    pthread_once(&mw__html_escaped_once, mw__html_escaped_fill);
    o = b->data + b->len;
    while (n) {
        size_t run = mw__html_plain_run(s, n);
        unsigned char c;
        memcpy(o, s, run);
        o += run, s += run, n -= run;
        if (!n) break;
        c = (unsigned char)*s++, n--;
        memcpy(o, mw__html_escaped[c], 8); /* room: 6 per byte, and 8 more */
        o += mw__html_escaped_len[c];
    }
    b->len = (size_t)(o - b->data);
    return 0;
}

static int mw__html_escape_n(mw_res *rs, const char *s, size_t n) {
    int rc = mw_write(rs, NULL, 0); /* the checks of a write */
    if (rc) return rc;
    if (mw__buf_html_escape(rs->body, s, n) != 0) return MW_ENOMEM;
    return mw__flush_if_full(rs);
}

int mw_html_escape(mw_res *rs, const char *text) { return text ? mw__html_escape_n(rs, text, strlen(text)) : 0; }

/* A conversion's length modifier, as the type va_arg must take. */
enum {
    MW__LEN_INT,
    MW__LEN_CHAR,
    MW__LEN_SHORT,
    MW__LEN_LONG,
    MW__LEN_LLONG,
    MW__LEN_SIZE,
    MW__LEN_MAX,
    MW__LEN_PTRDIFF,
    MW__LEN_LDOUBLE
};

typedef struct mw__conv {
    char flags[8];
    int width, precision; /* -1: none */
    int length;
    char type;
} mw__conv;

/* Reads one conversion after its '%' ("-08.3lld"), taking '*' widths from ap.
   Returns the characters read, or 0 for one microweb does not format (%n, unknown). */
static size_t mw__conv_parse(const char *f, mw__conv *c, va_list *ap) {
    const char *p = f;
    size_t nf = 0;
    memset(c, 0, sizeof *c);
    c->width = c->precision = -1;
    while (*p && strchr("-+ #0", *p) && nf + 2 < sizeof c->flags) c->flags[nf++] = *p++;
    if (*p == '*') c->width = va_arg(*ap, int), p++;
    else if (*p >= '0' && *p <= '9') c->width = (int)strtol(p, (char **)&p, 10);
    if (c->width < -1) { /* a negative '*' width is the '-' flag and its magnitude (C11 7.21.6.1) */
        c->flags[nf++] = '-';
        c->width = c->width == INT_MIN ? INT_MAX : -c->width;
    }
    if (*p == '.') {
        p++;
        if (*p == '*') c->precision = va_arg(*ap, int), p++;
        else c->precision = (int)strtol(p, (char **)&p, 10);
        if (c->precision < 0) c->precision = -1; /* a negative one is none */
    }
    if (p[0] == 'h' && p[1] == 'h') c->length = MW__LEN_CHAR, p += 2;
    else if (p[0] == 'h') c->length = MW__LEN_SHORT, p++;
    else if (p[0] == 'l' && p[1] == 'l') c->length = MW__LEN_LLONG, p += 2;
    else if (p[0] == 'l') c->length = MW__LEN_LONG, p++;
    else if (p[0] == 'z') c->length = MW__LEN_SIZE, p++;
    else if (p[0] == 'j') c->length = MW__LEN_MAX, p++;
    else if (p[0] == 't') c->length = MW__LEN_PTRDIFF, p++;
    else if (p[0] == 'L') c->length = MW__LEN_LDOUBLE, p++;
    c->type = *p;
    if (!*p || !strchr("diouxXfFeEgGaAcsp%", *p)) return 0;
    if ((*p == 's' || *p == 'c') && c->length != MW__LEN_INT) return 0; /* wide characters */
    return (size_t)(p - f) + 1;
}

static long long mw__conv_signed(const mw__conv *c, va_list *ap) {
    switch (c->length) {
    case MW__LEN_LONG: return va_arg(*ap, long);
    case MW__LEN_LLONG: return va_arg(*ap, long long);
    case MW__LEN_SIZE: return (long long)va_arg(*ap, size_t);
    case MW__LEN_MAX: return (long long)va_arg(*ap, intmax_t);
    case MW__LEN_PTRDIFF: return (long long)va_arg(*ap, ptrdiff_t);
    case MW__LEN_CHAR: return (signed char)va_arg(*ap, int);
    case MW__LEN_SHORT: return (short)va_arg(*ap, int);
    default: return va_arg(*ap, int);
    }
}

static unsigned long long mw__conv_unsigned(const mw__conv *c, va_list *ap) {
    switch (c->length) {
    case MW__LEN_LONG: return va_arg(*ap, unsigned long);
    case MW__LEN_LLONG: return va_arg(*ap, unsigned long long);
    case MW__LEN_SIZE: return va_arg(*ap, size_t);
    case MW__LEN_MAX: return (unsigned long long)va_arg(*ap, uintmax_t);
    case MW__LEN_PTRDIFF: return (unsigned long long)va_arg(*ap, ptrdiff_t);
    case MW__LEN_CHAR: return (unsigned char)va_arg(*ap, unsigned);
    case MW__LEN_SHORT: return (unsigned short)va_arg(*ap, unsigned);
    default: return va_arg(*ap, unsigned);
    }
}

/* Text escaped and padded to the conversion's width with spaces (the width counts the
   characters before escaping, as they show in the page). */
static int mw__html_padded(mw_res *rs, const mw__conv *c, const char *text, size_t len) {
    int left = strchr(c->flags, '-') != NULL, rc = 0;
    size_t pad = c->width > 0 && (size_t)c->width > len ? (size_t)c->width - len : 0;
    for (; pad && !left && !rc; pad--) rc = mw_write(rs, " ", 1);
    if (!rc) rc = mw__html_escape_n(rs, text, len);
    for (; pad && !rc; pad--) rc = mw_write(rs, " ", 1);
    return rc;
}

/* Writes one conversion. Strings and characters are escaped; numbers and pointers
   hold no character HTML gives a meaning to, so mw_printf writes them as they are. */
static int mw__html_conversion(mw_res *rs, const mw__conv *c, va_list *ap) {
    char fmt[64];
    int n;
    if (c->type == '%') return mw_write(rs, "%", 1);
    if (c->type == 's') {
        const char *text = va_arg(*ap, const char *);
        size_t len;
        if (!text) text = "(null)";
        len = strlen(text);
        if (c->precision >= 0 && (size_t)c->precision < len) len = (size_t)c->precision;
        return mw__html_padded(rs, c, text, len);
    }
    if (c->type == 'c') {
        char ch = (char)va_arg(*ap, int);
        return mw__html_padded(rs, c, &ch, 1);
    }
    /* the same conversion with the width and precision spelled out and one length */
    n = snprintf(fmt, sizeof fmt, "%%%s", c->flags);
    if (c->width >= 0) n += snprintf(fmt + n, sizeof fmt - (size_t)n, "%d", c->width);
    if (c->precision >= 0) n += snprintf(fmt + n, sizeof fmt - (size_t)n, ".%d", c->precision);
    if (strchr("di", c->type)) {
        snprintf(fmt + n, sizeof fmt - (size_t)n, "ll%c", c->type);
        n = mw_printf(rs, fmt, mw__conv_signed(c, ap));
    } else if (strchr("ouxX", c->type)) {
        snprintf(fmt + n, sizeof fmt - (size_t)n, "ll%c", c->type);
        n = mw_printf(rs, fmt, mw__conv_unsigned(c, ap));
    } else if (c->type == 'p') {
        snprintf(fmt + n, sizeof fmt - (size_t)n, "p");
        n = mw_printf(rs, fmt, va_arg(*ap, void *));
    } else if (c->length == MW__LEN_LDOUBLE) {
        snprintf(fmt + n, sizeof fmt - (size_t)n, "L%c", c->type);
        n = mw_printf(rs, fmt, va_arg(*ap, long double));
    } else {
        snprintf(fmt + n, sizeof fmt - (size_t)n, "%c", c->type);
        n = mw_printf(rs, fmt, va_arg(*ap, double));
    }
    return n < 0 ? n : 0;
}

/* mw_printf for HTML: every %s and %c argument is escaped as mw_html_escape does. */
int mw_html_printf(mw_res *rs, const char *fmt, ...) {
    va_list ap;
    const char *p = fmt;
    int rc = 0;
    if (!rs || !fmt) return MW_EINVAL;
    va_start(ap, fmt);
    while (*p && !rc) {
        const char *pct = strchr(p, '%');
        mw__conv c;
        size_t used;
        if (!pct) pct = p + strlen(p);
        rc = mw_write(rs, p, (size_t)(pct - p));
        if (rc || !*pct) break;
        if (!(used = mw__conv_parse(pct + 1, &c, &ap))) {
            rc = mw__res_break(rs, MW__WARN_STATUS, "mw_html_printf: a conversion it does not take (%n?)");
            break;
        }
        rc = mw__html_conversion(rs, &c, &ap);
        p = pct + 1 + used;
    }
    va_end(ap);
    return rc;
}

/* ---- credentials ---- */

/* The credentials of "Authorization: Basic base64(user:password)" (RFC 7617), decoded
   into the request's arena; 0 when absent or malformed. */
int mw_basic_auth(mw_req *rq, const char **user, const char **password) {
    const char *v = rq ? mw_header(rq, "Authorization") : NULL, *colon;
    char *plain;
    long n;
    size_t len;
    if (!v || !mw__has_prefix_ci(v, "basic ")) return 0;
    for (v += 6; *v == ' ';) v++;
    len = strlen(v);
    if (!(plain = (char *)mw__arena_alloc(rq->arena, len * 3 / 4 + 4))) return 0;
    if ((n = mw__base64_decode((unsigned char *)plain, v, len, 0)) < 0 || memchr(plain, '\0', (size_t)n) ||
        !(colon = (const char *)memchr(plain, ':', (size_t)n)))
        return 0;
    plain[n] = '\0';
    plain[colon - plain] = '\0';
    if (user) *user = plain;
    if (password) *password = colon + 1;
    return 1;
}

/* The token of "Authorization: Bearer <token68>" (RFC 6750 §2.1), or NULL. */
const char *mw_bearer_token(const mw_req *rq) {
    const char *v = rq ? mw_header(rq, "Authorization") : NULL, *t;
    size_t n, i;
    if (!v || !mw__has_prefix_ci(v, "bearer ")) return NULL;
    for (t = v + 7; *t == ' ';) t++;
    n = strlen(t);
    for (i = 0; i < n && (mw__is_unreserved((unsigned char)t[i]) || t[i] == '+' || t[i] == '/');) i++;
    if (i == 0) return NULL;
    while (i < n && t[i] == '=') i++;
    return i == n ? t : NULL;
}

/* Equality whose time depends on the length of b (the secret) only, not on where a
   guess first differs. */
int mw_secret_equal(const char *a, const char *b) {
    size_t la, lb, i;
    unsigned diff;
    if (!a || !b) return 0;
    la = strlen(a);
    lb = strlen(b);
    diff = la != lb;
    for (i = 0; i < lb; i++) diff |= (unsigned)((unsigned char)(i < la ? a[i] : 0) ^ (unsigned char)b[i]);
    return diff == 0;
}

/* The CSRF check, then the before hooks in registration order; the first that
   answers ends the run. */
static int mw__run_before_hooks(mw__worker *w) {
    const mw_app *app = w->app;
    size_t i;
    if (app->csrf_on > 0 && mw__csrf_check(&w->req, &w->res) == MW_DONE) return MW_DONE;
    for (i = 0; i < app->nhooks; i++) {
        const mw__hook *k = &app->hooks[i];
        if (k->before && mw__req_under(&w->req, k->prefix, k->prefix_len) &&
            k->before(&w->req, &w->res, k->arg) != MW_NEXT)
            return MW_DONE;
    }
    return MW_NEXT;
}

/* After hooks, once per answer that came from a request (never for a connection
   refused before one was read), just before its head is rendered: status and body
   are fixed by then, headers and cookies may still be added. */
static void mw__run_after_hooks(mw__worker *w) {
    const mw_app *app = w->app;
    mw_res *rs = &w->res;
    size_t i;
    rs->after_due = 0;
    rs->in_after = 1;
    for (i = 0; i < app->nhooks; i++) {
        const mw__hook *k = &app->hooks[i];
        if (k->after && mw__req_under(&w->req, k->prefix, k->prefix_len)) k->after(&w->req, rs, k->arg);
    }
    rs->in_after = 0;
}

static void mw__middleware_free(mw_app *app) {
    size_t i;
    for (i = 0; i < app->nhooks; i++) MW_FREE(app->hooks[i].prefix);
    MW_FREE(app->hooks);
    mw__cors_free(app->cors);
    mw__buf_free(&app->security_headers);
    mw__strlist_free(&app->csrf_trusted);
    mw__strlist_free(&app->csrf_exempt);
}

/* ---------------------------------------------------------------------------
   streams: a response body written after the handler returned, from any thread.
   Writers frame their bytes and send them straight to the socket when nothing waits
   before them; what the client does not take waits in the stream's bounded buffer,
   and a wake-up has the connection's worker send it when the socket drains. The
   connection's worker is the only one to end the response and close the socket.
   --------------------------------------------------------------------------- */
struct mw_stream {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* the in-process test client waits on it */
    mw_app *app;
    mw__conn *conn; /* while the response lasts */
    uintptr_t tag;  /* the connection's, for wake-ups; 0 for the test client */
    mw__buf buf;    /* framed bytes the client has not taken yet, from off */
    size_t off, cap;
    int framing; /* MW__FRAME_CHUNKED, _CLOSE, or _NONE (HEAD, 204, 304: no body) */
    int live;    /* the head is sent: bytes may go straight to the socket */
    int ending;  /* no more writes: closed by the app, or ended by the server */
    int gone;    /* the client went away, or the response was cut */
    int over;    /* the response is over */
    int woken;   /* a wake-up is queued for the connection */
    int refs;    /* the app's handle and the connection */
    int told;    /* on_close was called */
    void (*on_close)(mw_stream *s, void *arg);
    void *arg;
    long long heartbeat_ms, last_write_ms;
    unsigned long long bytes;                  /* body bytes written, for the access log */
    void (*every_fn)(mw_stream *s, void *arg); /* mw_stream_every's, under lock */
    void *every_arg;
    int every_pending;             /* a tick is due: the worker calls every_fn. Under lock */
    long long every_ms, every_due; /* under the timers' lock */
    struct mw_stream *every_next;  /* the timers' list, which holds a reference */
};

static void mw__stream_unref(mw_stream *s) {
    int last;
    pthread_mutex_lock(&s->lock);
    last = --s->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (!last) return;
    mw__buf_free(&s->buf);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->changed);
    MW_FREE(s);
}

/* The connection's worker is needed: to send what waits, or to end the response. */
static void mw__stream_wake(mw_stream *s) {
    if (s->tag && !s->woken) s->woken = mw__wake_tag(s->app, s->tag) == 0;
    pthread_cond_broadcast(&s->changed);
}

/* Sends framed bytes: to the socket when nothing waits before them, else (and what
   the socket does not take) into the buffer. Called with the lock held. */
static int mw__stream_send(mw_stream *s, struct iovec *iov, int n) {
    int direct = s->live && s->conn && s->off == s->buf.len, i = 0;
    if (direct && mw__send_iov(s->conn, iov, n, &i, 0) < 0) {
        s->gone = 1; /* the worker ends the response and tells the app */
        mw__stream_wake(s);
        return MW_ECLOSED;
    }
    if (i == n) return 0;
    if (mw__queue_iov(&s->buf, &s->off, iov + i, n - i) != 0) return MW_ENOMEM;
    if (direct) mw__stream_wake(s); /* the worker waits for the socket to drain */
    return 0;
}

/* Frames and sends one write; called with the lock held. */
static int mw__stream_put(mw_stream *s, const void *data, size_t len) {
    char size_line[24];
    struct iovec iov[3];
    int chunked = s->framing == MW__FRAME_CHUNKED;
    if (s->ending || s->gone || s->over) return MW_ECLOSED;
    if (!len) return 0;
    /* the buffer is bounded: a client that reads slower than the app writes is told
       to the writer, never grown into. A write is refused only while bytes wait, so a
       single write larger than the buffer still goes out. */
    if (s->off < s->buf.len && s->buf.len - s->off + len + (chunked ? 24 : 0) > s->cap) return MW_EAGAIN;
    s->bytes += len;
    s->last_write_ms = mw__now_ms();
    return mw__stream_send(s, iov, mw__frame_iov(iov, size_line, data, len, chunked));
}

/* No more writes: the last chunk goes out after what waits. Lock held. */
static void mw__stream_finish(mw_stream *s) {
    struct iovec last;
    if (s->ending || s->over) return;
    s->ending = 1;
    if (s->framing == MW__FRAME_CHUNKED && !s->gone) {
        last.iov_base = (void *)MW__LAST_CHUNK;
        last.iov_len = sizeof MW__LAST_CHUNK - 1;
        mw__stream_send(s, &last, 1);
    }
    mw__stream_wake(s);
}

/* The worker takes the stream into the connection's response. */
static void mw__stream_attach(mw_stream *s, mw__conn *c) {
    pthread_mutex_lock(&s->lock);
    s->conn = c;
    s->tag = c->fd >= 0 ? mw__conn_tag(c) : 0;
    if (s->every_pending) mw__stream_wake(s); /* a tick came before the worker had the stream */
    pthread_mutex_unlock(&s->lock);
}

/* The response is over, completed or not: the app is told once, the connection lets go. */
static void mw__stream_detach(mw_stream *s, int completed) {
    void (*fn)(mw_stream *, void *) = NULL;
    void *arg = NULL;
    pthread_mutex_lock(&s->lock);
    s->over = 1;
    if (!completed) s->gone = 1;
    s->conn = NULL;
    s->tag = 0;
    s->live = 0;
    if (!s->told) {
        s->told = 1;
        fn = s->on_close;
        arg = s->arg;
    }
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    if (fn) fn(s, arg);
    mw__stream_unref(s);
}

/* The worker's part: sends what waits once the head is out. */
static int mw__stream_pump(mw__conn *c) {
    mw_stream *s = c->src.stream;
    int out;
    pthread_mutex_lock(&s->lock);
    s->live = 1;
    s->woken = 0;
    if (!s->gone && mw__send_queue(c, &s->buf, &s->off, &s->app->limits, 0) < 0) s->gone = 1;
    if (s->off == s->buf.len) {
        if (s->buf.cap > 65536) mw__buf_free(&s->buf); /* a burst's buffer is given back */
        s->off = s->buf.len = 0;
    }
    out = s->gone ? MW__OUT_DEAD : s->off < s->buf.len ? MW__OUT_BLOCKED : s->ending ? MW__OUT_DONE : MW__OUT_PARKED;
    c->src_bytes = s->bytes;
    /* parked, it owes a heartbeat after a silence; blocked, the sweeper need not wake it */
    MW__STORE(&c->heartbeat_at, out == MW__OUT_PARKED && s->heartbeat_ms ? s->last_write_ms + s->heartbeat_ms : 0);
    pthread_mutex_unlock(&s->lock);
    return out;
}

static void mw__stream_tick(mw_stream *s);

/* An event stream silent for MW_SSE_HEARTBEAT_MS gets a comment line, so proxies and
   the browser keep the connection. */
static void mw__stream_heartbeat(mw__conn *c) {
    mw_stream *s = c->src.stream;
    long long now = mw__now_ms();
    pthread_mutex_lock(&s->lock);
    if (s->heartbeat_ms && now - s->last_write_ms >= s->heartbeat_ms) mw__stream_put(s, ": heartbeat\n\n", 13);
    pthread_mutex_unlock(&s->lock);
    mw__stream_tick(s);
}

/* A source the response no longer needs. */
static void mw__source_release(mw__source *src, int completed) {
    if (src->kind == MW__SRC_FILE && src->fd >= 0) close(src->fd);
    if (src->kind == MW__SRC_PULL && src->release) src->release(src->arg);
    if (src->kind == MW__SRC_PUSH) mw__stream_detach(src->stream, completed);
    src->kind = MW__SRC_MEMORY;
    src->fd = -1;
}

/* ---- stream timers (mw_stream_every): one thread per app, started by the first timer.
   It keeps the schedule and, when a tick is due, marks it pending and wakes the
   connection; the connection's worker calls the app's function (mw__stream_tick), so
   a tick never runs beside on_close or after it, and no thread waits per stream. A
   stream whose response is ending leaves the list at the thread's next pass. ---- */
typedef struct mw__timers {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    pthread_t thread;
    int stopping;
    mw_stream *first;
} mw__timers;

static pthread_mutex_t mw__timers_making = PTHREAD_MUTEX_INITIALIZER;

/* ms from now on pthread_cond_timedwait's clock (CLOCK_REALTIME). */
static struct timespec mw__realtime_after(long long ms) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    return until;
}

/* The worker's part: calls the app's function if a tick is due and the stream goes on. */
static void mw__stream_tick(mw_stream *s) {
    int due;
    pthread_mutex_lock(&s->lock);
    due = s->every_pending && !s->ending && !s->gone && !s->over;
    s->every_pending = 0;
    pthread_mutex_unlock(&s->lock);
    if (due) s->every_fn(s, s->every_arg);
}

/* Marks the due ticks and wakes their connections; drops streams that are ending.
   Returns when the next tick is due. Timers' lock held. */
static long long mw__timers_pass(mw__timers *t, long long now) {
    long long next = now + 60000;
    mw_stream **link = &t->first, *s;
    while ((s = *link) != NULL) {
        int ended;
        pthread_mutex_lock(&s->lock);
        ended = s->ending || s->gone || s->over;
        if (!ended && now >= s->every_due) {
            s->every_pending = 1;
            mw__stream_wake(s);
            s->every_due += s->every_ms;
            if (s->every_due <= now) s->every_due = now + s->every_ms; /* late: no burst to catch up */
        }
        pthread_mutex_unlock(&s->lock);
        if (ended) {
            *link = s->every_next;
            mw__stream_unref(s);
            continue;
        }
        if (s->every_due < next) next = s->every_due;
        link = &s->every_next;
    }
    return next;
}

static void *mw__timers_run(void *arg) {
    mw__timers *t = (mw__timers *)arg;
    pthread_mutex_lock(&t->lock);
    while (!t->stopping) {
        long long now = mw__now_ms();
        struct timespec until = mw__realtime_after(mw__timers_pass(t, now) - now);
        pthread_cond_timedwait(&t->changed, &t->lock, &until);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

static mw__timers *mw__timers_of(mw_app *app) {
    mw__timers *t;
    pthread_mutex_lock(&mw__timers_making);
    if (!(t = app->timers) && (t = (mw__timers *)MW_MALLOC(sizeof *t)) != NULL) {
        memset(t, 0, sizeof *t);
        pthread_mutex_init(&t->lock, NULL);
        pthread_cond_init(&t->changed, NULL);
        if (pthread_create(&t->thread, NULL, mw__timers_run, t) != 0) {
            pthread_mutex_destroy(&t->lock);
            pthread_cond_destroy(&t->changed);
            MW_FREE(t);
            t = NULL;
        }
        app->timers = t;
    }
    pthread_mutex_unlock(&mw__timers_making);
    return t;
}

/* With the app: the thread stops, and the streams it still held are let go. */
static void mw__timers_free(mw__timers *t) {
    if (!t) return;
    pthread_mutex_lock(&t->lock);
    t->stopping = 1;
    pthread_cond_signal(&t->changed);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    while (t->first) {
        mw_stream *s = t->first;
        t->first = s->every_next;
        mw__stream_unref(s);
    }
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->changed);
    MW_FREE(t);
}

int mw_stream_every(mw_stream *s, long ms, void (*fn)(mw_stream *s, void *arg), void *arg) {
    mw__timers *t;
    int rc;
    if (!s || !fn || ms < 1) return MW_EINVAL;
    pthread_mutex_lock(&s->lock);
    rc = s->ending || s->gone || s->over ? MW_ECLOSED : s->every_fn ? MW_EINVAL : 0; /* one timer a stream */
    if (!rc) {
        s->every_fn = fn;
        s->every_arg = arg;
        s->refs++; /* the timers' list holds the stream until it leaves the list */
    }
    pthread_mutex_unlock(&s->lock);
    if (rc) return rc;
    if (!(t = mw__timers_of(s->app))) {
        pthread_mutex_lock(&s->lock);
        s->every_fn = NULL;
        pthread_mutex_unlock(&s->lock);
        mw__stream_unref(s);
        return MW_ENOMEM;
    }
    pthread_mutex_lock(&t->lock);
    s->every_ms = ms;
    s->every_due = mw__now_ms() + ms;
    s->every_next = t->first;
    t->first = s;
    pthread_cond_signal(&t->changed);
    pthread_mutex_unlock(&t->lock);
    return 0;
}

mw_stream *mw_stream_open(mw_res *rs, int status, const char *content_type) {
    mw_stream *s;
    if (!rs || !rs->conn || (content_type && !mw__valid_field_value(content_type))) return NULL;
    if (mw__res_begin_whole(rs, status, content_type, content_type ? strlen(content_type) : 0) != 0) return NULL;
    if (!(s = (mw_stream *)MW_MALLOC(sizeof *s))) return NULL;
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->changed, NULL);
    s->app = rs->worker->app;
    s->refs = 2;
    s->cap = (size_t)s->app->limits.v[MW_LIMIT_STREAM_BUFFER_BYTES];
    s->framing = mw__open_framing(rs, rs->conn->http10);
    s->ending = s->framing == MW__FRAME_NONE; /* HEAD: the head is the whole answer */
    s->last_write_ms = mw__now_ms();
    rs->src.kind = MW__SRC_PUSH;
    rs->src.stream = s;
    return s;
}

int mw_stream_write(mw_stream *s, const void *data, size_t len) {
    int rc;
    if (!s || (!data && len)) return MW_EINVAL;
    pthread_mutex_lock(&s->lock);
    rc = mw__stream_put(s, data, len);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int mw_stream_vprintf(mw_stream *s, const char *fmt, va_list ap) {
    char small[512], *text = small;
    va_list ap2;
    int n, rc;
    if (!s || !fmt) return MW_EINVAL;
    va_copy(ap2, ap);
    n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0) return MW_EINVAL;
    if ((size_t)n >= sizeof small) {
        if (!(text = (char *)MW_MALLOC((size_t)n + 1))) return MW_ENOMEM;
        vsnprintf(text, (size_t)n + 1, fmt, ap);
    }
    rc = mw_stream_write(s, text, (size_t)n);
    if (text != small) MW_FREE(text);
    return rc;
}

int mw_stream_printf(mw_stream *s, const char *fmt, ...) {
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = mw_stream_vprintf(s, fmt, ap);
    va_end(ap);
    return rc;
}

void mw_stream_on_close(mw_stream *s, void (*fn)(mw_stream *s, void *arg), void *arg) {
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->on_close = fn;
    s->arg = arg;
    pthread_mutex_unlock(&s->lock);
}

void mw_stream_end(mw_stream *s) {
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    mw__stream_finish(s);
    pthread_mutex_unlock(&s->lock);
}

void mw_stream_close(mw_stream *s) {
    mw_stream_end(s);
    if (s) mw__stream_unref(s);
}

/* ---- Server-Sent Events (the WHATWG HTML standard, §9.2) over a push stream ---- */

mw_stream *mw_sse_open(mw_res *rs) {
    mw_stream *s = mw_stream_open(rs, 200, "text/event-stream");
    if (!s) return NULL;
    mw__add_header(rs, "Cache-Control", "no-cache");
    mw__add_header(rs, "X-Accel-Buffering", "no"); /* nginx passes each event on at once */
    s->heartbeat_ms = s->app->limits.v[MW_LIMIT_SSE_HEARTBEAT_MS];
    return s;
}

/* An event field's value may not hold a line break: it would end the field early and
   let the rest pose as another field. */
static int mw__sse_field_ok(const char *v) { return !v || !strpbrk(v, "\r\n"); }

/* "name: value\n" for each line of value (split at CRLF, CR or LF, as the parser
   splits them), into b. */
static int mw__sse_lines(mw__buf *b, const char *name, const char *value) {
    const char *p = value ? value : "";
    for (;;) {
        size_t n = strcspn(p, "\r\n");
        if (mw__buf_puts(b, name) || MW__PUT_LIT(b, ": ") || mw__buf_append(b, p, n) || MW__PUT_LIT(b, "\n"))
            return MW_ENOMEM;
        p += n;
        if (!*p) return 0;
        p += (p[0] == '\r' && p[1] == '\n') ? 2 : 1;
    }
}

int mw_sse_send(mw_stream *s, const char *event, const char *id, const char *data) {
    mw__buf b;
    int rc = 0;
    if (!s || !mw__sse_field_ok(event) || !mw__sse_field_ok(id)) return MW_EINVAL;
    memset(&b, 0, sizeof b);
    if (event) rc = mw__sse_lines(&b, "event", event);
    if (!rc && id) rc = mw__sse_lines(&b, "id", id);
    if (!rc) rc = mw__sse_lines(&b, "data", data);
    if (!rc) rc = MW__PUT_LIT(&b, "\n"); /* a blank line dispatches the event */
    if (!rc) rc = mw_stream_write(s, b.data, b.len);
    mw__buf_free(&b);
    return rc;
}

int mw_sse_retry(mw_stream *s, long ms) {
    if (ms < 0) return MW_EINVAL;
    return mw_stream_printf(s, "retry: %ld\n\n", ms);
}

int mw_sse_comment(mw_stream *s, const char *text) {
    if (!text || !mw__sse_field_ok(text)) return MW_EINVAL;
    return mw_stream_printf(s, ": %s\n\n", text);
}

const char *mw_last_event_id(const mw_req *rq) { return rq ? mw_header(rq, "Last-Event-ID") : NULL; }

/* ---- mw_flush: a handler sends its body as it goes ---- */

/* Sends iov now, waiting for the client up to the write timeout. 0, or -1. */
static int mw__conn_send_waiting(mw__conn *c, const mw__limits *lim, struct iovec *iov, int n) {
    int i = 0, rc;
    while ((rc = mw__send_iov(c, iov, n, &i, 0)) == 0)
        if (!c->io->wait_writable(c, lim->v[MW_LIMIT_WRITE_TIMEOUT_MS])) return -1;
    return rc > 0 ? 0 : -1;
}

/* The head of a response whose length is open, once: after it, status and headers
   are fixed and the body follows chunked (HTTP/1.1) or until the close (HTTP/1.0). */
static int mw__flush_commit(mw__worker *w, mw__conn *c) {
    mw_res *rs = &w->res;
    int rc, keep = c->keep_alive && !rs->close && !MW__LOAD(&w->app->draining);
    c->flush_framing = mw__open_framing(rs, c->http10);
    if (c->flush_framing == MW__FRAME_CLOSE) keep = 0;
    if (!keep && c->close_after == MW__KEEP_OPEN) c->close_after = mw__close_mode(c);
    c->flushed_bytes = 0;
    rc = mw__answer_head(w, c, keep, c->flush_framing, 0);
    rs->committed = 1;
    if (w->app->trace) mw__trace_head_sent(w); /* later parts of the body reuse out */
    return rc;
}

/* Frames what the handler wrote since the last flush; with wait, sends it (and
   everything before it) now, else leaves it in w->out for the usual path. */
static int mw__flush_body(mw__worker *w, mw__conn *c, int wait) {
    mw__buf *body = w->res.body;
    char size_line[24];
    struct iovec iov[4];
    int n = 0, k, rc = 0;
    if (c->flush_framing == MW__FRAME_NONE) body->len = 0; /* HEAD: measured, not sent */
    if (wait && w->out.len) {
        iov[n].iov_base = w->out.data;
        iov[n++].iov_len = w->out.len;
    }
    if (body->len) n += mw__frame_iov(iov + n, size_line, body->data, body->len, c->flush_framing == MW__FRAME_CHUNKED);
    if (wait) rc = n ? mw__conn_send_waiting(c, &w->app->limits, iov, n) : 0;
    else
        for (k = 0; k < n && !rc; k++) rc = mw__buf_append(&w->out, iov[k].iov_base, iov[k].iov_len);
    c->flushed_bytes += body->len;
    body->len = 0;
    if (wait) w->out.len = 0;
    return rc ? -1 : 0;
}

int mw_flush(mw_res *rs) {
    mw__worker *w;
    mw__conn *c;
    if (!rs || !rs->worker || !rs->conn) return MW_EINVAL;
    w = rs->worker;
    c = rs->conn;
    rs->touched = 1;
    if (rs->src.kind != MW__SRC_MEMORY || rs->in_after) return MW_ESTATE;
    if (rs->broken || c->flush_failed) return MW_EIO;
    if (rs->json_begun && rs->json.error) return MW_EJSON;
    if (!rs->committed && mw__flush_commit(w, c) != 0) return MW_ENOMEM;
    if (mw__flush_body(w, c, 1) == 0) return 0;
    c->flush_failed = 1; /* the client stopped taking the body */
    c->close_after = MW__CLOSE;
    return MW_EIO;
}

/* After mw_flush, the body goes on in pieces of MW__FLUSH_BYTES as it is written. */
static int mw__flush_if_full(mw_res *rs) {
    return rs->committed && rs->body->len >= MW__FLUSH_BYTES ? mw_flush(rs) : 0;
}
/* ---------------------------------------------------------------------------
   HTTP/1.1: requests in, answers out. Parse, dispatch to the handler, frame the
   answer; send bodies from their sources; settle what the connection waits for; the
   protocol's event function.
   --------------------------------------------------------------------------- */
/* When a body must be complete: within MW_BODY_TIMEOUT_MS of its latest byte, and,
   once MW_BODY_TIMEOUT_MS passed since its first, at MW_BODY_MIN_RATE on average
   (as Apache's mod_reqtimeout MinRate): a trickle of one byte every few seconds
   cannot hold a connection for long. */
static long long mw__body_deadline(const mw__conn *c, const mw__limits *lim) {
    long long grace = lim->v[MW_LIMIT_BODY_TIMEOUT_MS], rate = lim->v[MW_LIMIT_BODY_MIN_RATE];
    long long stalled = c->body_progress + grace;
    if (rate > 0) {
        long long got = (long long)(c->rlen - c->rstart - c->head_len);
        long long slow = c->body_start + grace + got * 1000 / rate;
        if (slow < stalled) return slow;
    }
    return stalled;
}

/* After a complete head: settles framing, refuses an oversized body at once, and says
   100 Continue when the client waits for it. Returns 0, or -1 after a refusal. */
static int mw__conn_begin_body(mw__worker *w, mw__conn *c, size_t head_len) {
    const mw__head *h = &w->head;
    const mw__limits *lim = &w->app->limits;
    c->head_len = head_len;
    c->keep_alive = h->keep_alive;
    c->http10 = h->minor == 0;
    c->chunked = h->chunked;
    c->content_length = h->content_length > 0 ? h->content_length : 0;
    if (c->content_length > lim->v[MW_LIMIT_BODY_BYTES]) {
        mw__conn_fail(w, c, 413, mw__why_body_too_large);
        return -1;
    }
    if (!c->chunked && !c->content_length) return 0;
    c->ch_in = c->ch_out = head_len;
    c->body_start = c->body_progress = mw__now_ms();
    mw__set_phase(c, MW__PH_BODY, mw__body_deadline(c, lim));
    /* RFC 9110 §10.1.1: a client that sent Expect waits for this before the body */
    if (h->expect_continue && !c->http10 && c->rlen - c->rstart == head_len) {
        mw__buf_puts(&w->out, "HTTP/1.1 100 Continue\r\n\r\n");
        c->sent_continue = 1;
    }
    return 0;
}

/* Returns 1 when the body is complete (c->req_end set), 0 when more is needed, -1 on error. */
static int mw__conn_body_ready(mw__worker *w, mw__conn *c) {
    size_t avail = c->rlen - c->rstart;
    if (c->chunked) {
        int rc =
            mw__chunked_decode(&c->ch, c->rbuf + c->rstart, avail, &c->ch_in, &c->ch_out, c->head_len, &w->app->limits);
        if (rc < 0) {
            mw__conn_fail(w, c, -rc, c->ch.error);
            return -1;
        }
        c->req_end = c->ch_in;
        return rc;
    }
    c->req_end = c->head_len + (size_t)c->content_length;
    return avail >= c->req_end;
}

/* An absolute-form target's authority, which the parser made the Host value, is
   followed by the path in the buffer: no byte is free for a terminator, so the
   handler gets a copy. */
static void mw__req_copy_authority(mw__worker *w) {
    mw__head *h = &w->head;
    size_t i;
    for (i = 0; i < h->nfields; i++) {
        mw__field *f = &h->fields[i];
        if (f->value != h->authority) continue;
        f->value = mw__arena_strndup(&w->arena, h->authority, h->authority_len);
        if (!f->value) f->value = "", f->value_len = 0;
    }
}

/* NUL-terminates method, path, query and header values in the read buffer, so a
   handler gets C strings without a copy. Each terminator overwrites a delimiter
   (SP, '?', CR or OWS) that the parser has already read. */
static void mw__head_terminate(mw__head *h) {
    size_t i;
    ((char *)h->method)[h->method_len] = '\0';
    if (h->query) ((char *)h->query)[h->query_len] = '\0';
    if (h->path != mw__root_path) ((char *)h->path)[h->path_len] = '\0';
    for (i = 0; i < h->nfields; i++)
        if (h->fields[i].value != h->authority) ((char *)h->fields[i].value)[h->fields[i].value_len] = '\0';
}

/* A new request in w->req, from the parsed (and terminated) head in w->head. */
static void mw__req_start(mw__worker *w, const char *body, size_t body_len) {
    mw__head *h = &w->head;
    mw_req *rq = &w->req;
    size_t i;
    mw__arena_reset(&w->arena);
    if (h->authority) mw__req_copy_authority(w);
    rq->app = w->app;
    rq->route = NULL;
    rq->arena = &w->arena;
    rq->limits = &w->app->limits;
    rq->head = h;
    rq->method = h->method;
    rq->path = h->path;
    rq->query = h->query ? h->query : "";
    rq->body = body;
    rq->body_len = body_len;
    rq->nparams = 0;
    rq->fail_status = 0;
    rq->fail_detail = NULL;
    rq->fail_offset = -1;
    rq->json_parsed = 0;
    rq->json = NULL;
    rq->prefix_path.ptr = NULL;
    rq->args = NULL;
    for (i = 0; i < (size_t)w->app->nexts; i++) rq->ext[i] = NULL;
    rq->json_block = &w->json;
}

static void mw__req_fill(mw__worker *w, mw__conn *c) {
    mw__head_terminate(&w->head);
    mw__req_start(w, c->rbuf + c->rstart + c->head_len,
                  c->chunked ? c->ch_out - c->head_len : (size_t)c->content_length);
}

/* The request a refusal answers, for the after hooks: its head when it was read
   whole (no body: that is what was refused), else an empty request. */
static void mw__req_fill_refused(mw__worker *w, mw__conn *c) {
    mw__head *h = &w->head;
    if (c->head_len) {
        mw__head_terminate(h);
    } else {
        h->method = h->path = h->target = "";
        h->method_len = h->path_len = h->query_len = h->target_len = 0;
        h->minor = 1; /* as the refusal is answered */
        h->query = h->authority = NULL;
        h->nfields = 0;
    }
    mw__req_start(w, "", 0);
}

/* True when s has a "." or ".." segment, with '/' or '\\' as separators: such a value
   could walk out of a directory a handler builds a file path from. */
static int mw__has_dot_segment(const char *s, size_t n) {
    size_t i = 0;
    while (i <= n) {
        size_t start = i;
        while (i < n && s[i] != '/' && s[i] != '\\') i++;
        if ((i - start == 1 && s[start] == '.') || (i - start == 2 && s[start] == '.' && s[start + 1] == '.')) return 1;
        i++;
    }
    return 0;
}

/* True when a raw (still encoded) value spells '/' as %2F: the router split the path
   at the slashes the client wrote, and a parameter is one segment of it. */
static int mw__has_encoded_slash(const char *s, size_t n) {
    size_t i;
    for (i = 0; i + 2 < n; i++)
        if (s[i] == '%' && s[i + 1] == '2' && mw__lower((unsigned char)s[i + 2]) == 'f') return 1;
    return 0;
}

/* Why a parameter or wildcard value (raw, and decoded into v) is not a relative path
   that stays under a directory it is joined to; NULL when it is. A NUL cannot be in v:
   the target holds none and mw__percent_decode refuses %00. */
static const char *mw__unsafe_path_value(const char *raw, size_t raw_len, const char *v, size_t n) {
    if (mw__has_encoded_slash(raw, raw_len)) return "encoded '/' (%2F) in path parameter";
    /* a separator on Windows and to some libraries, where "..\x" starts with a dot-segment */
    if (memchr(v, '\\', n)) return "backslash in path parameter";
    /* openat(dirfd, "/etc/passwd", ...) ignores dirfd, as many path-join helpers drop the
       directory before an absolute name */
    if (n && v[0] == '/') return "path parameter starts with '/'";
    /* "a//b" names a/b to the file system but not to code that compares strings */
    if (mw__find(v, n, "//", 2)) return "empty segment (//) in path parameter";
    if (mw__has_dot_segment(v, n)) return "dot-segment in path parameter";
    return NULL;
}

/* Percent-decodes the matched parameters into the request's arena. Returns NULL, or
   why a value is refused (see mw__unsafe_path_value). */
static const char *mw__req_decode_params(mw__worker *w, const mw__match *m) {
    mw_req *rq = &w->req;
    size_t i;
    for (i = 0; i < m->nparams; i++) {
        char *dst = (char *)mw__arena_alloc(&w->arena, m->lens[i] + 1);
        long n = dst ? mw__percent_decode(m->values[i], m->lens[i], dst, 0) : -1;
        const char *why;
        if (n < 0) return "malformed percent-encoding or NUL in path parameter";
        if ((why = mw__unsafe_path_value(m->values[i], m->lens[i], dst, (size_t)n)) != NULL) return why;
        dst[n] = '\0';
        rq->param_names[i] = m->names[i];
        rq->param_values[i] = dst;
    }
    rq->nparams = m->nparams;
    return NULL;
}

/* Debug mode's 404 and 405: the usual answer and what was tried, the routes there are
   ("routes": every one, in registration order, for a 404; those of this path for a 405),
   as Django's debug 404 page lists its URL patterns. */
static void mw__respond_unrouted_debug(mw__worker *w, int status, const char *detail, unsigned allow) {
    mw_json *j = mw_json_begin(&w->res, status);
    char name[512];
    size_t i;
    int slot;
    mw__match m;
    mw_json_object(j);
    mw_json_key_int(j, "status", status);
    mw_json_key_string(j, "error", mw__reason(status));
    mw_json_key_string(j, "detail", detail);
    mw_json_key_string(j, "method", w->req.method);
    mw_json_key_string(j, "path", w->req.path);
    mw_json_key(j, "routes");
    mw_json_array(j);
    for (i = 0; !allow && i < w->app->nroutes; i++)
        mw_json_string(j, mw__route_name(w->app->routes[i], name, sizeof name));
    for (slot = 0; slot <= MW__M_ANY; slot++)
        if ((allow & (1u << slot)) && mw__router_match(&w->app->root, slot, w->head.path, w->head.path_len, &m))
            mw_json_string(j, mw__route_name(m.route, name, sizeof name));
    mw_json_end(j);
}

/* Answers what the router decided when no handler runs: OPTIONS, 405 or 404. */
static void mw__respond_unrouted(mw__worker *w, int slot, unsigned allow) {
    mw_res *rs = &w->res;
    int status = allow ? 405 : 404;
    const char *detail = allow ? "method not allowed for this path" : "no route for this path";
    if (allow) mw__add_methods_header(w, "Allow", allow);
    if (allow && slot == MW__M_OPTIONS) mw_send(rs, 200, NULL, NULL, 0);
    else if (rs->debug) mw__respond_unrouted_debug(w, status, detail, allow);
    else mw_error(rs, status, detail);
}

/* The handler met a malformed body: the answer says where and what, in JSON. */
static void mw__respond_request_error(mw__worker *w) {
    mw_req *rq = &w->req;
    mw_res *rs = &w->res;
    if (rs->committed) { /* the head is gone: the response can only be cut */
        rs->broken = rq->fail_detail;
        return;
    }
    mw__res_clear(rs);
    if (rq->fail_status == 503) mw__add_header(rs, "Retry-After", "1");
    mw__res_problem(rs, rq->fail_status, rq->fail_detail, rq->fail_offset, mw__res_debug_route(rs));
}

/* Each extension gives back what the request held (a database connection, ...). */
static void mw__exts_request_end(mw_app *app, mw_req *rq) {
    int i;
    for (i = 0; i < app->nexts; i++)
        if (rq->ext[i] && app->exts[i]->request_end) app->exts[i]->request_end(rq, app->ext_state[i], rq->ext[i]);
}

/* Starts sending a response whose body comes from a source: the head now, the body
   as the client takes it. */
static void mw__conn_start_source(mw__worker *w, mw__conn *c, int keep_alive) {
    mw_res *rs = &w->res;
    int framing = rs->src.kind == MW__SRC_FILE ? MW__FRAME_LENGTH : mw__open_framing(rs, c->http10);
    if (framing == MW__FRAME_CLOSE) {
        keep_alive = 0;
        c->close_after = MW__CLOSE;
    }
    if (mw__answer_head(w, c, keep_alive, framing, rs->src.left) != 0) c->close_after = MW__CLOSE;
    c->src = rs->src;
    rs->src.kind = MW__SRC_MEMORY;
    c->src_framing = rs->is_head || rs->status == 204 || rs->status == 304 ? MW__FRAME_NONE : framing;
    c->src_status = rs->status;
    c->src_bytes = 0;
    if (w->app->access_log) {
        mw__request_line_of(w, c, &w->reqline);
        c->src_request = mw__strndup(w->reqline.data ? w->reqline.data : "", w->reqline.len);
        c->src_client = mw__logged_client(w, c);
    }
    if (c->src.kind == MW__SRC_PUSH) {
        mw__stream_attach(c->src.stream, c);
        if (c->saw_stop) mw_stream_end(c->src.stream); /* opened while stopping: it ends at once */
    }
}

/* The end of a body the handler sent on with mw_flush: the rest, then the last chunk. */
static void mw__conn_end_flushed(mw__worker *w, mw__conn *c) {
    mw_res *rs = &w->res;
    if (rs->broken || c->flush_failed || mw__flush_body(w, c, 0) != 0) {
        /* the head is gone, so this cannot become a 500: cut the response, so the client
           sees it incomplete instead of taking it for whole */
        if (rs->broken) mw__res_warn(rs, MW__WARN_COMMITTED, "%s after mw_flush; response cut", rs->broken);
        c->close_after = MW__CLOSE;
        w->out.len = 0;
    } else if (c->flush_framing == MW__FRAME_CHUNKED) {
        MW__PUT_LIT(&w->out, MW__LAST_CHUNK);
    } else if (c->flush_framing == MW__FRAME_CLOSE) {
        c->close_after = MW__CLOSE;
    }
    mw__access_log_answer(w, c, rs->status, c->flushed_bytes);
}

/* A 101 (RFC 9110 §15.2.2): its head goes out, and the connection's events go to the
   new protocol from the next byte on. */
static void mw__conn_switch(mw__worker *w, mw__conn *c) {
    mw_res *rs = &w->res;
    if (mw__answer_head(w, c, 1, MW__FRAME_NONE, 0) != 0) c->close_after = MW__CLOSE;
    mw__access_log_answer(w, c, rs->status, 0);
    c->proto = rs->upgrade;
    c->proto_state = rs->upgrade_state;
    rs->upgrade = NULL;
}

static void mw__conn_respond(mw__worker *w, mw__conn *c, int keep_alive) {
    mw_res *rs = &w->res;
    if (!keep_alive && c->close_after == MW__KEEP_OPEN && !rs->upgrade) c->close_after = mw__close_mode(c);
    if (rs->upgrade) mw__conn_switch(w, c);
    else if (rs->committed) mw__conn_end_flushed(w, c);
    else if (rs->src.kind != MW__SRC_MEMORY) mw__conn_start_source(w, c, keep_alive);
    else mw__conn_respond_memory(w, c, keep_alive);
}

/* Answers a request for a path: a CORS preflight, the router's automatic answers,
   or the route's before hooks and then (unless one answered) its handler. */
static void mw__answer_path(mw__worker *w, int slot) {
    mw__head *h = &w->head;
    mw__match m;
    const char *why;
    int routed = mw__router_match(&w->app->root, slot, h->path, h->path_len, &m);
    if (w->app->cors && slot == MW__M_OPTIONS && mw__cors_preflight(w, m.allow)) return;
    if (!routed) {
        mw__respond_unrouted(w, slot, m.allow);
    } else if ((why = mw__req_decode_params(w, &m)) != NULL) {
        mw_error(&w->res, 400, why);
    } else {
        w->req.route = w->res.route = m.route;
        /* a declared route's inputs are checked after the before hooks (an auth hook
           answers first) and before the handler */
        if ((!w->app->has_before || mw__run_before_hooks(w) == MW_NEXT) &&
            (!m.route->op ||
             mw__validate_request(&w->req, &w->res, m.route->op, (size_t)w->app->limits.v[MW_LIMIT_VALIDATION_ERRORS])))
            m.route->handler(&w->req, &w->res);
        mw__exts_request_end(w->app, &w->req);
        /* a malformed body or a failed extension answers for the handler, which may
           simply have returned: that is no mistake of its own */
        if (w->req.fail_status) mw__respond_request_error(w);
        else mw__res_check(&w->res);
    }
}

static void mw__dispatch(mw__worker *w, mw__conn *c) {
    mw__head *h = &w->head;
    int slot = mw__method_slot(h->method, h->method_len), keep;
    mw__req_fill(w, c);
    mw__res_reset(w, c);
    w->res.is_head = slot == MW__M_HEAD;
    w->res.after_due = w->app->has_after;
    if (h->path_len == 1 && h->path[0] == '*') {
        mw__respond_unrouted(w, MW__M_OPTIONS, 1u << MW__M_ANY);
    } else if (mw__has_dot_segment(h->path, h->path_len)) {
        /* clients remove dot-segments before sending (RFC 3986 §5.2.4); one left is an attack */
        mw_error(&w->res, 400, "dot-segment in path");
    } else {
        mw__answer_path(w, slot);
    }
    keep = c->keep_alive && !w->res.close && !MW__LOAD(&w->app->draining);
    mw__conn_respond(w, c, keep);
    mw__buf_trim(&w->body, 1u << 20); /* a worker keeps no multi-megabyte body around */
    mw__buf_trim(&w->json, MW__JSON_KEEP);
}

/* ---- trace: an account of each exchange on stderr, for people learning HTTP ----
   With MW_TRACE (or mw_trace), every exchange is written as one block: the head as
   received, how it was read and by which rule, the route, the answer's head, the
   time. It is built in the worker's buffer and handed to the log at once, so two
   workers' accounts never mix. Off, it costs two tests of one flag per exchange. */

static void mw__trace_setting(mw_app *app) {
    const char *env = getenv("MW_TRACE"), *no_color = getenv("NO_COLOR");
    app->trace = env && *env ? strcmp(env, "0") != 0 : app->trace_asked;
    /* colours only for a person at a terminal, and not for an application's logger */
    app->trace_ansi = app->trace && !app->log.fn && isatty(2) && !(no_color && *no_color);
}

/* An ANSI colour (SGR parameters such as "1;31"), when stderr is a terminal. */
static void mw__trace_ansi(mw__worker *w, const char *sgr) {
    if (!w->app->trace_ansi) return;
    MW__PUT_LIT(&w->trace, "\033[");
    mw__buf_puts(&w->trace, sgr);
    MW__PUT_LIT(&w->trace, "m");
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static void
mw__trace_printf(mw__worker *w, const char *fmt, ...) {
    char text[512];
    int n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n > 0) mw__buf_append(&w->trace, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

/* A label in the left column of an account line, then its text. */
static void mw__trace_label(mw__worker *w, const char *label) { mw__trace_printf(w, "  %-14s", label); }

/* Bytes as a reader can see them: printable ASCII as it is; CR, LF, HTAB and '\' as C
   writes them (\r \n \t \\), every other byte as \xNN, dimmed on a terminal. With
   lines, each LF also ends an output line, and each line starts with the margin "  | ". */
static void mw__trace_bytes(mw__worker *w, const char *p, size_t n, int lines) {
    static const char hex[] = "0123456789abcdef";
    mw__buf *b = &w->trace;
    size_t i;
    if (lines && n) MW__PUT_LIT(b, "  | ");
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        char esc[4] = {'\\', 0, 0, 0};
        if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
            mw__buf_append(b, p + i, 1);
            continue;
        }
        if (ch == '\r' || ch == '\n' || ch == '\t' || ch == '\\') {
            esc[1] = ch == '\r' ? 'r' : ch == '\n' ? 'n' : ch == '\t' ? 't' : '\\';
        } else {
            esc[1] = 'x';
            esc[2] = hex[ch >> 4];
            esc[3] = hex[ch & 15];
        }
        if (ch != '\\') mw__trace_ansi(w, "2");
        mw__buf_append(b, esc, esc[2] ? 4 : 2);
        if (ch != '\\') mw__trace_ansi(w, "0");
        if (lines && ch == '\n') mw__buf_puts(b, i + 1 < n ? "\n  | " : "\n");
    }
    if (lines && n && p[n - 1] != '\n') MW__PUT_LIT(b, "\n");
}

/* A quoted slice, its bytes shown as mw__trace_bytes shows them. */
static void mw__trace_quoted(mw__worker *w, const char *p, size_t n) {
    MW__PUT_LIT(&w->trace, "\"");
    mw__trace_bytes(w, p, n, 0);
    MW__PUT_LIT(&w->trace, "\"");
}

static void mw__trace_section(mw__worker *w, const char *title) {
    mw__trace_ansi(w, "36");
    mw__buf_puts(&w->trace, title);
    mw__trace_ansi(w, "0");
}

/* What the refusal table says of a reason: its rule, or NULL for one the table lacks. */
static const char *mw__refusal_rule(const char *why) {
#define MW__REFUSAL_ROW(name, text, rule) {mw__why_##name, rule},
    static const struct { const char *why, *rule; } rules[] = {MW__REFUSALS(MW__REFUSAL_ROW)};
#undef MW__REFUSAL_ROW
    size_t i;
    for (i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (rules[i].why == why) return rules[i].rule;
    return NULL;
}

/* The request line's three parts and what the target names. */
static void mw__trace_request_line(mw__worker *w, const mw__head *h) {
    const char *version = h->target + h->target_len + 1; /* the parser checked its 8 bytes */
    mw__trace_label(w, "request line");
    MW__PUT_LIT(&w->trace, "method ");
    mw__trace_quoted(w, h->method, h->method_len);
    MW__PUT_LIT(&w->trace, ", target ");
    mw__trace_quoted(w, h->target, h->target_len);
    MW__PUT_LIT(&w->trace, ", version ");
    mw__trace_quoted(w, version, 8);
    if (version[7] > '1') MW__PUT_LIT(&w->trace, " (answered as HTTP/1.1, RFC 9110 §2.5)");
    MW__PUT_LIT(&w->trace, "\n");
    mw__trace_label(w, "target");
    MW__PUT_LIT(&w->trace, "path ");
    mw__trace_quoted(w, h->path, h->path_len);
    if (h->query_len) {
        MW__PUT_LIT(&w->trace, ", query ");
        mw__trace_quoted(w, h->query, h->query_len);
    }
    if (h->authority) {
        MW__PUT_LIT(&w->trace, ", host ");
        mw__trace_quoted(w, h->authority, h->authority_len);
        MW__PUT_LIT(&w->trace, " from the absolute-form target, not Host (RFC 9112 §3.2.2)");
    }
    MW__PUT_LIT(&w->trace, "\n");
}

/* How the body's length was decided (RFC 9112 §6), and Expect: 100-continue. */
static void mw__trace_body_rule(mw__worker *w, mw__conn *c) {
    const mw__head *h = &w->head;
    mw__trace_label(w, "body");
    if (c->chunked)
        mw__trace_printf(w, "Transfer-Encoding: chunked (RFC 9112 §6.1, §7.1): %lu bytes, from %lu on the wire\n",
                         (unsigned long)(c->ch_out - c->head_len), (unsigned long)(c->ch_in - c->head_len));
    else if (h->content_length >= 0)
        mw__trace_printf(w, "%lld bytes, as Content-Length says (RFC 9112 §6.2)\n", h->content_length);
    else MW__PUT_LIT(&w->trace, "none: neither Transfer-Encoding nor Content-Length (RFC 9112 §6.3)\n");
    if (!h->expect_continue) return;
    mw__trace_label(w, "expect");
    if (c->sent_continue)
        MW__PUT_LIT(&w->trace, "100-continue: \"HTTP/1.1 100 Continue\" sent before the body (RFC 9110 §10.1.1)\n");
    else if (c->http10) MW__PUT_LIT(&w->trace, "100-continue ignored in an HTTP/1.0 request (RFC 9110 §10.1.1)\n");
    else
        MW__PUT_LIT(&w->trace, "100-continue: no interim answer: the body came with the head, or the request "
                               "was refused first (RFC 9110 §10.1.1)\n");
    c->sent_continue = 0;
}

/* Whether the connection persists after this exchange, and by which rule (RFC 9112 §9.3). */
static void mw__trace_persistence(mw__worker *w) {
    const mw__head *h = &w->head;
    mw__trace_label(w, "connection");
    /* the parser's decision, told by the rule that made it */
    if (h->minor == 1 && !h->keep_alive)
        MW__PUT_LIT(&w->trace, "close after the answer: the client sent \"Connection: close\" (RFC 9112 §9.6)\n");
    else if (h->minor == 1)
        MW__PUT_LIT(&w->trace, "persistent: HTTP/1.1 without \"Connection: close\" (RFC 9112 §9.3)\n");
    else if (h->keep_alive)
        MW__PUT_LIT(&w->trace, "persistent: HTTP/1.0 with \"Connection: keep-alive\" (RFC 9112 §9.3)\n");
    else
        MW__PUT_LIT(&w->trace, "close after the answer: HTTP/1.0 closes unless \"Connection: keep-alive\" "
                               "(RFC 9112 §9.3)\n");
}

/* The request's part of the account, from the head still as received (before the
   handler's request NUL-terminates it in place). A head not read whole (a refusal)
   shows what arrived instead. */
static void mw__trace_received(mw__worker *w, mw__conn *c) {
    static const char rule[] = "------------------------------------------------------------";
    const mw__head *h = &w->head;
    const char *base = c->rbuf ? c->rbuf + c->rstart : "";
    size_t shown = c->head_len ? c->head_len : c->rlen - c->rstart, i, cut = 0;
    char client[64];
    w->trace.len = 0;
    w->trace_out_at = w->out.len;
    mw__format_addr(&c->peer, client, sizeof client);
    mw__trace_ansi(w, "1");
    mw__trace_printf(w, "-- %s ", client);
    mw__buf_append(&w->trace, rule, sizeof rule - 1 - (strlen(client) < 40 ? strlen(client) : 40));
    mw__trace_ansi(w, "0");
    if (!c->head_len && shown > 4096) cut = shown - 4096, shown = 4096;
    MW__PUT_LIT(&w->trace, "\n");
    mw__trace_section(w, c->head_len ? "request head as received" : "received (the head was not read whole)");
    mw__trace_printf(w, ", %lu bytes:\n", (unsigned long)(shown + cut));
    mw__trace_bytes(w, base, shown, 1);
    if (cut) mw__trace_printf(w, "  | ... %lu more bytes\n", (unsigned long)cut);
    if (!c->head_len) return;
    mw__trace_section(w, "how it was read:");
    MW__PUT_LIT(&w->trace, "\n");
    mw__trace_request_line(w, h);
    for (i = 0; i < h->nfields; i++) {
        char label[32];
        snprintf(label, sizeof label, "field %lu", (unsigned long)i + 1);
        mw__trace_label(w, label);
        mw__trace_bytes(w, h->fields[i].name, h->fields[i].name_len, 0);
        MW__PUT_LIT(&w->trace, ": ");
        mw__trace_bytes(w, h->fields[i].value, h->fields[i].value_len, 0);
        MW__PUT_LIT(&w->trace, "\n");
    }
    mw__trace_body_rule(w, c);
    mw__trace_persistence(w);
}

/* Which route the request goes to, with its parameters as sent (not yet decoded), or
   what the router tried (404, 405). */
static void mw__trace_route(mw__worker *w) {
    const mw__head *h = &w->head;
    int slot = mw__method_slot(h->method, h->method_len);
    mw__match m;
    size_t i;
    mw__trace_label(w, "route");
    if (h->path_len == 1 && h->path[0] == '*') {
        MW__PUT_LIT(&w->trace, "\"OPTIONS *\" asks about the server: every method is listed (RFC 9110 §9.3.7)\n");
        return;
    }
    if (mw__has_dot_segment(h->path, h->path_len)) {
        MW__PUT_LIT(&w->trace, "none: the path has a \".\" or \"..\" segment, refused (RFC 3986 §5.2.4)\n");
        return;
    }
    if (!mw__router_match(&w->app->root, slot, h->path, h->path_len, &m)) {
        w->scratch.len = 0;
        mw__format_allow(m.allow, &w->scratch);
        if (!m.allow) MW__PUT_LIT(&w->trace, "no route matches ");
        else MW__PUT_LIT(&w->trace, "path ");
        mw__trace_bytes(w, h->path, h->path_len, 0);
        if (m.allow) {
            mw__trace_printf(w, " exists for %.*s; ", (int)w->scratch.len, w->scratch.data);
            mw__trace_printf(w, slot == MW__M_OPTIONS ? "OPTIONS answers with Allow" : "not for %.*s",
                             (int)h->method_len, h->method);
        }
        MW__PUT_LIT(&w->trace, "\n");
        return;
    }
    mw__trace_printf(w, "%s %s", m.route->slot == MW__M_ANY ? "*" : mw__method_names[m.route->slot], m.route->pattern);
    for (i = 0; i < m.nparams; i++) {
        mw__trace_printf(w, "%s%s = ", i ? ", " : ", with ", m.names[i]);
        mw__trace_quoted(w, m.values[i], m.lens[i]);
    }
    MW__PUT_LIT(&w->trace, "\n");
}

/* The answer's head as it went out, from where the exchange's answer began in out to
   its blank line; its length. The bytes are still there after a large body went out
   with them (out was emptied, not written over). */
static size_t mw__trace_head_sent(mw__worker *w) {
    size_t at = w->trace_out_at, n = 0;
    const char *end = at < w->out.cap ? mw__find(w->out.data + at, w->out.cap - at, "\r\n\r\n", 4) : NULL;
    if (end) n = (size_t)(end + 4 - (w->out.data + at));
    mw__trace_section(w, "response head as sent");
    mw__trace_printf(w, ", %lu bytes:\n", (unsigned long)n);
    mw__trace_bytes(w, w->out.data + at, n, 1);
    return n;
}

/* What the answer's body is: the size its head announced, or the kind of body that
   goes out as it is made. */
static void mw__trace_body_sent(mw__worker *w, const mw__conn *c, size_t head_len) {
    const mw_res *rs = &w->res;
    const char *cl = mw__find(w->out.data + w->trace_out_at, head_len, "\r\nContent-Length: ", 18);
    mw__trace_label(w, "body");
    if (rs->status == 101)
        MW__PUT_LIT(&w->trace, "none: from here the connection speaks the protocol named in Upgrade\n");
    else if (rs->is_head || rs->status == 204 || rs->status == 304)
        MW__PUT_LIT(&w->trace, "none (a HEAD request, a 204 or a 304 has no body)\n");
    else if (rs->committed)
        mw__trace_printf(w, "(streamed body) sent with mw_flush as it was written: %llu bytes\n", c->flushed_bytes);
    else if (c->src.kind == MW__SRC_FILE)
        mw__trace_printf(w, "(streamed body) %llu bytes sent from a file\n", c->src.left);
    else if (c->src.kind == MW__SRC_PULL)
        MW__PUT_LIT(&w->trace, "(streamed body) from a pull callback, until it says the end\n");
    else if (c->src.kind == MW__SRC_PUSH)
        MW__PUT_LIT(&w->trace, "(streamed body) a push stream (such as Server-Sent Events), until the app ends it\n");
    else if (cl) mw__trace_printf(w, "%lld bytes\n", atoll(cl + 18));
}

/* The answer's part of the account, then the whole account to the log at once. refused
   is the refusal's status (why: its reason), 0 for an answered request. */
static void mw__trace_answered(mw__worker *w, mw__conn *c, int refused, const char *why) {
    const mw_res *rs = &w->res;
    const mw__head *h = &w->head;
    const char *rule = refused ? mw__refusal_rule(why) : NULL;
    int status = rs->status;
    if (refused) {
        mw__trace_ansi(w, "1;31");
        mw__trace_label(w, "refused");
        mw__trace_printf(w, "%d: %s", refused, why);
        if (rule) mw__trace_printf(w, " (%s)", rule);
        mw__trace_ansi(w, "0");
        MW__PUT_LIT(&w->trace, "\n");
    }
    /* the head of an answer begun with mw_flush was written down then: the rest of
       its body reused out */
    mw__trace_body_sent(w, c, rs->committed ? 0 : mw__trace_head_sent(w));
    mw__trace_label(w, "then");
    if (refused)
        MW__PUT_LIT(&w->trace, "the connection closes: after a refusal the rest of the stream cannot be trusted "
                               "(RFC 9112 §6.3)\n");
    else if (status == 101) MW__PUT_LIT(&w->trace, "the connection switches protocols (RFC 9110 §15.2.2)\n");
    else if (c->close_after == MW__KEEP_OPEN)
        MW__PUT_LIT(&w->trace, "the connection stays open for the next request\n");
    else
        mw__trace_printf(w, "the connection closes%s\n",
                         !c->keep_alive                ? ", as the request's version and Connection say"
                         : rs->close                   ? ": the handler set \"Connection: close\""
                         : MW__LOAD(&w->app->stopping) ? ": the server is stopping"
                                                       : ": the body ends where the connection does");
    mw__trace_ansi(w, "1");
    MW__PUT_LIT(&w->trace, "== ");
    if (c->head_len) {
        mw__trace_bytes(w, h->method, h->method_len, 0);
        MW__PUT_LIT(&w->trace, " ");
        mw__trace_bytes(w, h->path, h->path_len, 0);
        if (h->query_len) MW__PUT_LIT(&w->trace, "?");
        mw__trace_bytes(w, h->query, h->query_len, 0);
    }
    if (refused) MW__PUT_LIT(&w->trace, c->head_len ? " refused" : "refused");
    MW__PUT_LIT(&w->trace, " -> ");
    mw__trace_ansi(w, status >= 500 ? "31" : status >= 400 ? "33" : status >= 300 ? "36" : "32");
    mw__trace_printf(w, "%d %s", status, mw__reason(status));
    mw__trace_ansi(w, "0;1");
    mw__trace_printf(w, ", %lldus", c->req_start_us ? mw__now_us() - c->req_start_us : 0);
    mw__trace_ansi(w, "0");
    MW__PUT_LIT(&w->trace, "\n");
    if (mw__buf_append(&w->trace, "", 1) == 0)
        mw__log_line(&w->app->log, MW_LOG_TRACE, w->trace.data, w->trace.len - 1);
}

/* The request's part of the account of an exchange about to be dispatched. */
static void mw__trace_request(mw__worker *w, mw__conn *c) {
    mw__trace_received(w, c);
    mw__trace_route(w);
}

/* Parses and answers the complete requests in the buffer, in order, until one's
   response has to wait for the client. Returns how many it answered. */
static int mw__conn_process(mw__worker *w, mw__conn *c) {
    const mw__limits *lim = &w->app->limits;
    int head_parsed = 0, answered = 0;
    if (!c->rbuf) return 0; /* nothing received yet */
    while (c->close_after == MW__KEEP_OPEN && !mw__conn_output_queued(c) && c->src.kind == MW__SRC_MEMORY &&
           !c->proto_state) { /* after a 101 the bytes are the new protocol's */
        char *base = c->rbuf + c->rstart;
        size_t avail = c->rlen - c->rstart;
        int ready;
        if (!c->head_len) {
            long r;
            if (!avail) break;
            if (!c->scan.pos && (w->app->access_log | w->app->trace)) c->req_start_us = mw__now_us();
            r = mw__scan_head(&c->scan, base, avail, lim);
            if (r == 0) break;
            if (r < 0) {
                mw__conn_fail(w, c, (int)-r,
                              r == -414   ? mw__why_line_too_long
                              : r == -431 ? mw__why_head_too_large
                                          : mw__why_bare_lf);
                break;
            }
            if ((ready = mw__parse_head(base, (size_t)r, lim, &w->head)) != 0) {
                mw__conn_fail(w, c, -ready, w->head.error);
                break;
            }
            if (mw__conn_begin_body(w, c, (size_t)r) < 0) break;
            head_parsed = 1;
        }
        if ((ready = mw__conn_body_ready(w, c)) <= 0) break;
        if (!head_parsed) /* the head was parsed on an earlier read and its buffer may have moved */
            mw__parse_head(c->rbuf + c->rstart, c->head_len, lim, &w->head);
        head_parsed = 0;
        mw__set_phase(c, MW__PH_BUSY, 0); /* a handler may take its time: no deadline runs meanwhile */
        if (w->app->trace) mw__trace_request(w, c);
        mw__dispatch(w, c);
        if (w->app->trace) mw__trace_answered(w, c, 0, NULL);
        answered++;
        if (w->out.len >= MW__BATCH_BYTES && mw__conn_send(w, c, NULL, 0) != 0) c->close_after = MW__CLOSE;
        c->rstart += c->req_end;
        mw__conn_reset_request(c);
        if (c->rstart < c->rlen) mw__set_phase(c, MW__PH_HEAD, mw__now_ms() + lim->v[MW_LIMIT_HEAD_TIMEOUT_MS]);
    }
    return answered;
}

/* ---- body sources: a file, a pull callback, a push stream ---- */

/* The response whose source ended: logged, its source given back; a source that did
   not complete leaves a response the client must see as cut, so the connection closes. */
static void mw__conn_end_source(mw__worker *w, mw__conn *c, int completed) {
    if (w->app->access_log && c->src_request)
        mw__access_log(w, &c->src_client, c->src_request, strlen(c->src_request), c->src_status, c->src_bytes,
                       c->req_start_us);
    MW_FREE(c->src_request);
    MW_FREE(c->pull_buf);
    c->src_request = c->pull_buf = NULL;
    c->pull_cap = 0;
    mw__source_release(&c->src, completed);
    MW__STORE(&c->heartbeat_at, 0);
    if (!completed) c->close_after = MW__CLOSE;
}

static int mw__pump_file(mw__conn *c, const mw__limits *lim) {
    while (c->src.left) {
        size_t want = c->src.left > (1u << 20) ? (size_t)1 << 20 : (size_t)c->src.left;
        long n = c->io->send_file(c, c->src.fd, &c->src.offset, want);
        if (n > 0) {
            c->src.left -= (unsigned long long)n;
            c->src_bytes += (unsigned long long)n;
            mw__conn_progressed(c, lim);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return MW__OUT_BLOCKED;
        } else {
            return MW__OUT_DEAD; /* an error, or the file ended early: Content-Length cannot be kept */
        }
    }
    return MW__OUT_DONE;
}

/* The pull buffer for the next round: it starts small and doubles while the producer
   fills it and the client takes all of it, so a fast download costs fewer system
   calls and a slow one keeps a small buffer. */
static char *mw__pull_buffer(mw__conn *c, int grow) {
    char *b;
    if (c->pull_buf && !(grow && c->pull_cap < MW__PULL_MAX)) return c->pull_buf;
    b = (char *)MW_REALLOC(c->pull_buf, c->pull_buf ? c->pull_cap * 2 : MW__PULL_BYTES);
    if (b) {
        c->pull_cap = c->pull_buf ? c->pull_cap * 2 : MW__PULL_BYTES;
        c->pull_buf = b;
    }
    return c->pull_buf;
}

/* Asks the producer for more while the client keeps up; a few rounds at a time, so one
   large body does not keep the worker from the others. */
static int mw__pump_pull(mw__worker *w, mw__conn *c) {
    int round, grow = 0;
    for (round = 0; round < 16; round++) {
        char size_line[24];
        struct iovec iov[3];
        int chunked = c->src_framing == MW__FRAME_CHUNKED;
        long got;
        if (!mw__pull_buffer(c, grow)) return MW__OUT_DEAD;
        got = c->src.pull(c->src.arg, c->pull_buf, c->pull_cap);
        if (got < 0 || (size_t)got > c->pull_cap) {
            mw__log(&w->app->log, MW_LOG_ERROR, "pull callback failed (%ld); response cut", got);
            return MW__OUT_DEAD;
        }
        if (got == 0) {
            if (!chunked) return MW__OUT_DONE;
            iov[0].iov_base = (void *)MW__LAST_CHUNK;
            iov[0].iov_len = sizeof MW__LAST_CHUNK - 1;
            return mw__conn_sendv(c, iov, 1) == 0 ? MW__OUT_DONE : MW__OUT_DEAD;
        }
        c->src_bytes += (unsigned long long)got;
        if (mw__conn_sendv(c, iov, mw__frame_iov(iov, size_line, c->pull_buf, (size_t)got, chunked)) != 0)
            return MW__OUT_DEAD;
        if (mw__conn_output_queued(c)) return MW__OUT_BLOCKED; /* the producer waits for the client */
        grow = (size_t)got == c->pull_cap;
    }
    return MW__OUT_BLOCKED;
}

/* Sends the current response's body as far as the client takes it. */
static int mw__conn_pump(mw__worker *w, mw__conn *c) {
    int rc = mw__conn_send_queued(c, &w->app->limits);
    if (rc < 0) return MW__OUT_DEAD;
    if (rc == 0) return MW__OUT_BLOCKED;
    if (c->src.kind == MW__SRC_MEMORY) return MW__OUT_DONE;
    if (c->src_framing == MW__FRAME_NONE && c->src.kind != MW__SRC_PUSH) rc = MW__OUT_DONE;
    else if (c->src.kind == MW__SRC_FILE) rc = mw__pump_file(c, &w->app->limits);
    else if (c->src.kind == MW__SRC_PULL) rc = mw__pump_pull(w, c);
    else rc = mw__stream_pump(c);
    if (rc == MW__OUT_DONE || rc == MW__OUT_DEAD) mw__conn_end_source(w, c, rc == MW__OUT_DONE);
    return rc;
}

/* Sends what is queued and, as each response completes, answers the next request
   waiting in the buffer. */
static int mw__conn_advance(mw__worker *w, mw__conn *c) {
    for (;;) {
        int out;
        if (w->out.len && mw__conn_send(w, c, NULL, 0) != 0) return MW__OUT_DEAD;
        out = mw__conn_output_queued(c) || c->src.kind != MW__SRC_MEMORY ? mw__conn_pump(w, c) : MW__OUT_DONE;
        if (out != MW__OUT_DONE || c->close_after != MW__KEEP_OPEN || c->rstart == c->rlen) return out;
        if (!mw__conn_process(w, c)) return out;
    }
}

/* ---- closing, settling, and the events of an HTTP/1.1 connection ---- */

static void mw__conn_close(mw__worker *w, mw__conn *c);

/* Re-arms the connection for ev. Returns 1, or 0 when that failed and it was closed.
   A connection that stays armed needs no call when it waits for what it waited for:
   level-triggered, always; edge-triggered, when it waits to read and a recv found the
   socket empty since the last read event, so whatever comes now is a new edge.
   Otherwise the call makes the poller look at the socket afresh. (Sends are not
   tracked: the app's threads send to streams and WebSockets too, and waiting for the
   client to take bytes is the rare case.) */
static int mw__conn_hand_off(mw__worker *w, mw__conn *c, unsigned ev) {
    unsigned arming = w->app->conn_arming;
    if (arming) {
        if (c->armed == ev && (arming == MW__EV_PERSIST || (ev == MW__EV_READ && c->drained))) return 1;
        c->armed = ev;
        c->drained = 1; /* looked at afresh: what is ready now is reported */
    }
    if (mw__poller_rearm(&w->app->poller, c->fd, mw__conn_tag(c), ev | w->app->conn_arming) == 0) return 1;
    mw__conn_close(w, c);
    return 0;
}

/* Whether a stop closes idle keep-alive connections at once (as it always did), or,
   with a drain delay, lets each run to its keep-alive timeout: a client about to reuse
   its connection (one held up for longer than the delay, say) then gets its answer,
   with Connection: close, instead of a connection closed under its request. A stop
   closes no connection earlier than the server would have anyway. */
static int mw__stop_closes_idle(mw_app *app) { return !__atomic_load_n(&app->drain_delay, __ATOMIC_RELAXED); }

/* Waits for the next thing this connection needs, or closes it. The phase and the
   deadline are published for the sweeper. Returns 1 when armed, 0 when closed. */
static int mw__conn_settle(mw__worker *w, mw__conn *c, int out) {
    const mw__limits *lim = &w->app->limits;
    int phase = MW__LOAD(&c->phase);
    long long now = mw__now_ms(), dl;
    if (w->out.len && mw__conn_send(w, c, NULL, 0) != 0) out = MW__OUT_DEAD;
    if (out == MW__OUT_DEAD) {
        mw__conn_close(w, c);
        return 0;
    }
    if (c->proto_state) return c->proto->on_event(w, c, MW__EV_READ); /* switched: the new protocol goes on */
    /* Requests pipelined after the last answer go unanswered. Closing now would reset the
       connection and could destroy that answer in the client's buffer: half-close and
       drain instead (RFC 9112 §9.6). */
    if (c->close_after == MW__CLOSE && c->rstart < c->rlen) c->close_after = MW__CLOSE_LINGER;
    if (mw__conn_output_queued(c) || out == MW__OUT_BLOCKED) {
        if (phase != MW__PH_WRITE) mw__set_phase(c, MW__PH_WRITE, now + lim->v[MW_LIMIT_WRITE_TIMEOUT_MS]);
        c->blocked_unacked = mw__unacked_bytes(c->fd);
        return mw__conn_hand_off(w, c, MW__EV_WRITE);
    }
    if (c->src.kind == MW__SRC_PUSH) {                         /* parked: reading tells when the client goes away */
        if (c->rstart == c->rlen) mw__conn_release_rbuf(w, c); /* a waiting stream holds no read buffer */
        if (phase != MW__PH_STREAM) mw__set_phase(c, MW__PH_STREAM, 0);
    } else if (c->close_after == MW__CLOSE) {
        mw__conn_close(w, c);
        return 0;
    } else if (c->close_after == MW__CLOSE_LINGER) {
        if (phase != MW__PH_LINGER) {
            shutdown(c->fd, SHUT_WR); /* the client sees our answer end, we drain what it still sends */
            c->linger_end = now + MW__LINGER_MS;
            c->linger_cap = now + MW__LINGER_MAX_MS;
            c->linger_quiet_end = now + MW__LINGER_QUIET_MS;
            c->linger_unacked = mw__unacked_bytes(c->fd);
            mw__set_phase(c, MW__PH_LINGER, now + MW__LINGER_QUIET_MS);
        }
    } else if (c->rstart == c->rlen && !c->head_len) {
        mw__conn_release_rbuf(w, c); /* an idle connection holds no buffer */
        if (c->saw_stop && mw__stop_closes_idle(w->app))
            dl = now; /* idle is over at the next tick, when it closes unless a request came */
        else if (c->saw_stop && phase == MW__PH_IDLE)
            dl = MW__LOAD(&c->deadline); /* woken by the stop with nothing to read: its keep-alive runs on */
        else dl = now + lim->v[MW_LIMIT_KEEPALIVE_TIMEOUT_MS];
        mw__set_phase(c, MW__PH_IDLE, dl);
    } else if (phase == MW__PH_WRITE || phase == MW__PH_STREAM || phase == MW__PH_IDLE) {
        /* output flushed (or a new request begun), with part of a request waiting */
        int body = c->head_len != 0;
        mw__set_phase(c, body ? MW__PH_BODY : MW__PH_HEAD,
                      body ? mw__body_deadline(c, lim) : now + lim->v[MW_LIMIT_HEAD_TIMEOUT_MS]);
    }
    return mw__conn_hand_off(w, c, MW__EV_READ);
}

/* Reads what the client sent: requests are parsed and answered. With nothing to read,
   an idle connection whose time is up closes (a FIN: nothing is left unread). */
static int mw__conn_read(mw__worker *w, mw__conn *c, int idle_expired) {
    const mw__limits *lim = &w->app->limits;
    for (;;) {
        ssize_t n;
        if (mw__conn_make_room(w, c) != 0) {
            mw__conn_fail(w, c, 503, "out of memory");
            return mw__conn_settle(w, c, MW__OUT_DONE);
        }
        n = mw__conn_recv(c, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n > 0) {
            int phase = MW__LOAD(&c->phase);
            c->rlen += (size_t)n;
            if (phase == MW__PH_IDLE) mw__set_phase(c, MW__PH_HEAD, mw__now_ms() + lim->v[MW_LIMIT_HEAD_TIMEOUT_MS]);
            if (phase == MW__PH_BODY) {
                c->body_progress = mw__now_ms();
                MW__STORE(&c->deadline, mw__body_deadline(c, lim));
            }
            mw__conn_process(w, c);
            return mw__conn_settle(w, c, mw__conn_advance(w, c));
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && (!idle_expired || c->saw_stop)) {
            if (c->rlen == c->rstart && !c->head_len) mw__conn_release_rbuf(w, c);
            if (idle_expired) c->close_after = MW__CLOSE_LINGER; /* stopping: a FIN, then drain */
            return mw__conn_settle(w, c, MW__OUT_DONE);
        }
        mw__conn_close(w, c); /* the client closed, the connection broke, or its idle time is up */
        return 0;
    }
}

/* A lingering close's time is up: but while the client still sends (it has not read
   up to our FIN yet) or is still taking our answer in (what we sent and it has not
   acknowledged shrank since the last look), closing would reset the connection and
   could destroy what it has not read, so it gets another MW__LINGER_MS, up to
   MW__LINGER_MAX_MS in all; 1 when it does. A stop still ends it at its grace. */
static int mw__linger_extended(mw__conn *c, long long now) {
    long unacked = mw__unacked_bytes(c->fd);
    int reading = unacked > 1 && unacked < c->linger_unacked; /* the FIN counts as one byte */
    int sending = now < c->linger_quiet_end;                  /* it sent something less than MW__LINGER_MS ago */
    c->linger_unacked = unacked;
    if (!(reading || sending) || now >= c->linger_cap) return 0;
    c->linger_end = now + MW__LINGER_MS < c->linger_cap ? now + MW__LINGER_MS : c->linger_cap;
    return 1;
}

/* After our FIN: reads and drops what the client still sends, and closes when it
   closes, or once everything we sent is acknowledged and it has been quiet: for
   MW__LINGER_QUIET_MS if it has sent nothing since our FIN, for MW__LINGER_MS if it
   has (it has not read our FIN yet, and a pause of a few ms on a busy machine is not
   its end); or after MW__LINGER_MS (longer while it still sends or reads our answer).
   Closing while the client still sends would make its kernel reset the connection,
   which destroys the part of the answer it has not received yet. */
static int mw__conn_linger(mw__worker *w, mw__conn *c) {
    char sink[4096];
    for (;;) {
        ssize_t n = mw__conn_recv(c, sink, sizeof sink);
        long long now = mw__now_ms(), next_look;
        if (n > 0) {
            c->linger_quiet_end = now + MW__LINGER_MS;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) || MW__LOAD(&w->app->forcing)) break;
        if (now >= c->linger_end && !mw__linger_extended(c, now)) break;
        /* the FIN counts as one byte until acknowledged: it need not be, only the data */
        if (now >= c->linger_quiet_end && mw__unacked_bytes(c->fd) <= 1) break;
        /* quiet long enough but not all acknowledged: look again shortly */
        next_look = now < c->linger_quiet_end ? c->linger_quiet_end : now + MW__LINGER_QUIET_MS;
        MW__STORE(&c->deadline, next_look < c->linger_end ? next_look : c->linger_end);
        return mw__conn_hand_off(w, c, MW__EV_READ);
    }
    mw__conn_close(w, c);
    return 0;
}

/* A parked push stream's connection is readable: the client sent more (kept for
   later, within the head limits) or went away. */
static int mw__conn_watch_client(mw__worker *w, mw__conn *c) {
    for (;;) {
        ssize_t n;
        if (mw__conn_make_room(w, c) != 0) break; /* it keeps sending while we stream: give up on it */
        n = mw__conn_recv(c, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n > 0) {
            c->rlen += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return mw__conn_settle(w, c, MW__OUT_PARKED);
        } else {
            break;
        }
    }
    mw__conn_close(w, c);
    return 0;
}

/* An idle connection's time is up (its keep-alive, or the server stops). A request
   that just arrived is still answered; otherwise it closes, with nothing unread, so
   with a FIN. On stop, a client still reading earlier answers (bytes in flight) may
   be a pipelining one whose next request is on its way: that one is waited for, up
   to the grace period, and answered with Connection: close; closing under it would
   make its next request reset the connection and cut the answers in flight. */
static int mw__conn_idle_over(mw__worker *w, mw__conn *c) {
    /* still idle after the read, it is looked at again on the sweeper's next tick */
    return mw__conn_read(w, c, !(c->saw_stop && mw__unacked_bytes(c->fd) > 0));
}

/* The phase's deadline passed (the sweeper woke us). */
/* Whether a client the socket could not send to has read since: the kernel's queue
   shrank. The socket reports writable only once about a third of its buffer (up to
   4 MB) is free, so a client reading 40 KB/s can go longer than the write timeout
   without one, and is still progressing. */
static int mw__client_took_bytes(const mw__conn *c) {
    return c->fd >= 0 && mw__unacked_bytes(c->fd) < c->blocked_unacked;
}

static int mw__conn_expire(mw__worker *w, mw__conn *c, int phase) {
    if (phase == MW__PH_HEAD || phase == MW__PH_BODY) {
        int stalled =
            phase == MW__PH_BODY && mw__now_ms() >= c->body_progress + w->app->limits.v[MW_LIMIT_BODY_TIMEOUT_MS];
        mw__conn_fail(w, c, 408,
                      phase == MW__PH_HEAD ? mw__why_head_late
                      : stalled            ? mw__why_body_late
                                           : mw__why_body_slow);
        return mw__conn_settle(w, c, MW__OUT_DONE); /* the 408 goes out behind what is queued, then a FIN */
    } else if (phase == MW__PH_IDLE) {
        return mw__conn_idle_over(w, c);
    }
    if (phase == MW__PH_WRITE && mw__client_took_bytes(c)) {
        MW__STORE(&c->deadline, mw__now_ms() + w->app->limits.v[MW_LIMIT_WRITE_TIMEOUT_MS]);
        return mw__conn_settle(w, c, MW__OUT_BLOCKED);
    }
    mw__conn_close(w, c); /* a client that stopped reading, or a linger that ran out */
    return 0;
}

/* The server is stopping: a push stream ends (its last chunk, then the FIN).
   Responses in progress finish, and the next one says Connection: close; an idle
   connection answers what already arrived, or closes. */
static void mw__conn_see_stop(mw__conn *c) {
    c->saw_stop = 1;
    if (c->src.kind == MW__SRC_PUSH) {
        mw_stream_end(c->src.stream);
        c->close_after = MW__CLOSE;
    }
}

static int mw__http1_on_event(mw__worker *w, mw__conn *c, unsigned events) {
    int phase = MW__LOAD(&c->phase);
    long long dl = MW__LOAD(&c->deadline);
    if (MW__LOAD(&w->app->forcing)) { /* the grace period is over */
        mw__conn_close(w, c);
        return 0;
    }
    if (phase == MW__PH_LINGER) return mw__conn_linger(w, c);
    /* deadlines are the sweeper's to notice: it wakes the connection */
    if ((events & MW__EV_WAKE) && dl && mw__now_ms() >= dl) return mw__conn_expire(w, c, phase);
    if (MW__LOAD(&w->app->stopping) && !c->saw_stop) {
        mw__conn_see_stop(c);
        if (phase == MW__PH_IDLE && mw__stop_closes_idle(w->app)) return mw__conn_idle_over(w, c);
    }
    if (c->src.kind == MW__SRC_PUSH) mw__stream_heartbeat(c);
    if (mw__conn_output_queued(c) || c->src.kind != MW__SRC_MEMORY) {
        int out = mw__conn_advance(w, c);
        if (out == MW__OUT_PARKED && (events & MW__EV_READ)) return mw__conn_watch_client(w, c);
        return mw__conn_settle(w, c, out);
    }
    return mw__conn_read(w, c, 0);
}

static const mw__protocol mw__http1 = {mw__http1_on_event, NULL};

/* ---------------------------------------------------------------------------
   server: the listener, the connection table, workers, wake-ups, deadlines and the
   graceful stop
   --------------------------------------------------------------------------- */

/* ---- connections by client address (MW_LIMIT_CONNECTIONS_PER_IP) ---- */

/* IPv4 by address; IPv6 by its /64, which one subscriber usually holds whole. */
static void mw__addr_key(const mw__addr *a, uint64_t key[2]) {
    memcpy(key, a->ip, 16);
    if (memcmp(a->ip, mw__v4_prefix, 12) != 0) key[1] = 0;
}

static size_t mw__addr_home(const mw__addr_table *t, const uint64_t key[2]) {
    uint64_t h = key[0] * 0x9e3779b97f4a7c15ull ^ key[1] * 0xc2b2ae3d27d4eb4full; /* two multiplicative hashes */
    return (size_t)(h ^ (h >> 32)) & (t->cap - 1);
}

/* The slot holding key, or the free slot where it would go. */
static size_t mw__addr_find(const mw__addr_table *t, const uint64_t key[2]) {
    size_t i;
    for (i = mw__addr_home(t, key); t->slots[i].count; i = (i + 1) & (t->cap - 1))
        if (t->slots[i].key[0] == key[0] && t->slots[i].key[1] == key[1]) break;
    return i;
}

/* Counts one more connection from a; 0 when a already holds `limit`. */
static int mw__addr_take(mw__addr_table *t, const mw__addr *a, long long limit) {
    uint64_t key[2];
    size_t i;
    if (!t->slots) return 1;
    mw__addr_key(a, key);
    i = mw__addr_find(t, key);
    if (t->slots[i].count >= (unsigned long long)limit) return 0;
    t->slots[i].key[0] = key[0];
    t->slots[i].key[1] = key[1];
    t->slots[i].count++;
    return 1;
}

/* One connection from a less; an address with none leaves the table (linear probing's
   deletion: later entries of the same run move up, so every one stays findable). */
static void mw__addr_give(mw__addr_table *t, const mw__addr *a) {
    uint64_t key[2];
    size_t i, j, mask = t->cap - 1;
    if (!t->slots) return;
    mw__addr_key(a, key);
    i = mw__addr_find(t, key);
    if (!t->slots[i].count || --t->slots[i].count) return;
    for (j = (i + 1) & mask; t->slots[j].count; j = (j + 1) & mask) {
        size_t home = mw__addr_home(t, t->slots[j].key);
        if (((j - home) & mask) >= ((j - i) & mask)) { /* i lies on j's probe path: j moves there */
            t->slots[i] = t->slots[j];
            t->slots[j].count = 0;
            i = j;
        }
    }
}

/* ---- the connection table ---- */

/* A free connection slot (the app's lock held): one this worker closed, or one from
   the app, allocating a chunk of them when none is free. */
static mw__conn *mw__conn_slot(mw_app *app, mw__worker *w) {
    mw__conn *c = w->free_conns ? w->free_conns : app->free_conns, *chunk;
    size_t i;
    if (c == w->free_conns && c) {
        w->free_conns = c->next_free;
        w->nfree--;
        return c;
    }
    if (c) {
        app->free_conns = c->next_free;
        return c;
    }
    if (app->nchunks == app->max_chunks || !(chunk = (mw__conn *)MW_MALLOC(MW__CONN_CHUNK * sizeof *chunk)))
        return NULL;
    memset(chunk, 0, MW__CONN_CHUNK * sizeof *chunk);
    for (i = MW__CONN_CHUNK; i-- > 1;) {
        chunk[i].index = (unsigned)(app->nchunks * MW__CONN_CHUNK + i);
        chunk[i].next_free = app->free_conns;
        app->free_conns = &chunk[i];
    }
    chunk[0].index = (unsigned)(app->nchunks * MW__CONN_CHUNK);
    MW__STORE(&app->chunks[app->nchunks], chunk);
    app->nchunks++;
    return chunk;
}

static void mw__conn_init(mw__conn *c, int fd, const mw__addr *peer, long long head_deadline) {
    memset(&c->prev, 0, sizeof *c - offsetof(mw__conn, prev));
    __atomic_store_n(&c->wake_queued, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&c->urgent_came, 0, __ATOMIC_RELAXED);
    c->fd = fd;
    c->peer = *peer;
    c->phase = MW__PH_IDLE;
    c->deadline = head_deadline;
    c->io = &mw__socket_io;
    c->proto = &mw__http1;
    c->src.fd = -1;
    c->armed = MW__EV_READ;
}

/* Over a limit, a client gets a clear answer instead of a silent queue: 503 when the
   server is full, 429 when its address holds its share. */
static void mw__reject_connection(mw__worker *w, int fd, const mw__addr *peer, int status) {
    char sink[4096];
    mw__conn c;
    int k;
    /* With deferred accept the request is already here: reading it lets close() end with
       a FIN; unread bytes would make it a reset, which some clients let destroy the answer. */
    for (k = 0; k < 4 && recv(fd, sink, sizeof sink, 0) > 0; k++) {}
    memset(&c, 0, sizeof c);
    mw__conn_init(&c, fd, peer, 0);
    mw__res_reset(w, &c);
    mw__add_header(&w->res, "Retry-After", "1");
    mw_error(&w->res, status, status == 429 ? "too many connections from this address" : "too many connections");
    c.close_after = MW__CLOSE;
    mw__conn_respond_memory(w, &c, 0);
    if (send(fd, w->out.data, w->out.len, MW__SEND_FLAGS) < 0) { /* best effort */
    }
    w->out.len = 0;
    shutdown(fd, SHUT_WR);
    close(fd);
}

/* Runs a connection this worker has taken, again while events came meanwhile, and
   gives it back. */
static void mw__conn_run(mw__worker *w, mw__conn *c, unsigned events) {
    for (;;) {
        if (c->edge) {
            if (events & MW__EV_READ) c->drained = 0; /* an edge taken: unknown until looked at again */
            /* urgent data an event reported, to this worker or to one that found it busy */
            c->urgent = MW__LOAD(&c->urgent_came) && __atomic_exchange_n(&c->urgent_came, 0, __ATOMIC_RELAXED);
        }
        if (!c->proto->on_event(w, c, events) || mw__conn_leave(c)) return;
        events = MW__EV_READ | MW__EV_WRITE | MW__EV_WAKE;
    }
}

static void mw__conn_event(mw__worker *w, uintptr_t tag, unsigned events) {
    mw__conn *c = mw__conn_lookup(w->app, tag);
    if (!c) return;
    if (events & MW__EV_WAKE) MW__STORE(&c->wake_queued, 0);
    if (events & MW__EV_URGENT) MW__STORE(&c->urgent_came, 1); /* before mw__conn_enter, which publishes it */
    if (mw__conn_enter(c, tag)) mw__conn_run(w, c, events);
}

static void mw__conn_open(mw__worker *w, int fd, const mw__addr *peer) {
    mw_app *app = w->app;
    const mw__limits *lim = &app->limits;
    mw__conn *c = NULL;
    int refuse = 0;
    pthread_mutex_lock(&app->conns_lock);
    if (app->nconns >= (size_t)lim->v[MW_LIMIT_CONNECTIONS]) {
        refuse = 503;
    } else if (lim->v[MW_LIMIT_CONNECTIONS_PER_IP] &&
               !mw__addr_take(&app->addrs, peer, lim->v[MW_LIMIT_CONNECTIONS_PER_IP])) {
        refuse = 429;
    } else if (!(c = mw__conn_slot(app, w))) {
        refuse = 503;
        if (lim->v[MW_LIMIT_CONNECTIONS_PER_IP]) mw__addr_give(&app->addrs, peer);
    }
    if (c) {
        mw__conn_init(c, fd, peer, mw__now_ms() + lim->v[MW_LIMIT_HEAD_TIMEOUT_MS]);
        c->edge = app->conn_arming == MW__EV_EDGE;
        /* this worker's until armed: once on the list, the sweeper may wake it */
        __atomic_store_n(&c->state, __atomic_load_n(&c->state, __ATOMIC_RELAXED) | MW__RUN_BUSY, __ATOMIC_RELEASE);
        c->next = app->conns.next;
        c->prev = &app->conns;
        app->conns.next->prev = c;
        app->conns.next = c;
        app->nconns++;
    }
    pthread_mutex_unlock(&app->conns_lock);
    if (refuse) {
        mw__reject_connection(w, fd, peer, refuse);
        return;
    }
    if (mw__poller_add(&app->poller, fd, mw__conn_tag(c), MW__EV_READ | app->conn_arming) != 0) {
        mw__conn_close(w, c);
    } else if (!mw__conn_leave(c)) {
        /* an event came while it was being armed: a worker runs it, not this accepting one */
        __atomic_store_n(&c->state, __atomic_load_n(&c->state, __ATOMIC_RELAXED) & ~3u, __ATOMIC_RELEASE);
        mw__wake_conn(app, c);
    }
}

static void mw__conn_close(mw__worker *w, mw__conn *c) {
    mw_app *app = w->app;
    if (c->proto_state && c->proto->release) c->proto->release(w, c); /* before the socket goes */
    if (c->src.kind != MW__SRC_MEMORY) mw__conn_end_source(w, c, 0);
    pthread_mutex_lock(&app->conns_lock); /* off the list first: the sweeper must not touch a closed fd */
    c->prev->next = c->next;
    c->next->prev = c->prev;
    app->nconns--;
    if (app->limits.v[MW_LIMIT_CONNECTIONS_PER_IP]) mw__addr_give(&app->addrs, &c->peer);
    pthread_mutex_unlock(&app->conns_lock);
    mw__poller_del(&app->poller, c->fd);
    if (c->close_after != MW__KEEP_OPEN && MW__LOAD(&c->phase) != MW__PH_LINGER)
        shutdown(c->fd, SHUT_WR); /* the FIN, with what MW__SEND_MORE held back */
    close(c->fd);
    mw__conn_release_rbuf(w, c);
    mw__buf_free(&c->outq);
    mw__conn_retire(c);
    if (w->nfree < MW__WORKER_SLOTS) { /* this worker's next connection takes it, without a lock */
        c->next_free = w->free_conns;
        w->free_conns = c;
        w->nfree++;
        return;
    }
    pthread_mutex_lock(&app->conns_lock);
    c->next_free = app->free_conns;
    app->free_conns = c;
    pthread_mutex_unlock(&app->conns_lock);
}

/* Takes the wake-up list and runs each connection in it. */
static void mw__take_wakes(mw__worker *w) {
    mw_app *app = w->app;
    char drain[64];
    mw__buf taken;
    size_t i;
    pthread_mutex_lock(&app->wake_lock);
    taken = app->wakes;
    app->wakes = w->wakes;
    app->wakes.len = 0;
    app->wake_signalled = 0;
    while (read(app->wake_pipe[0], drain, sizeof drain) > 0) {}
    pthread_mutex_unlock(&app->wake_lock);
    mw__poller_rearm(&app->poller, app->wake_pipe[0], MW__TAG_WAKE, MW__EV_READ);
    for (i = 0; i + sizeof(uintptr_t) <= taken.len; i += sizeof(uintptr_t)) {
        uintptr_t tag;
        memcpy(&tag, taken.data + i, sizeof tag);
        mw__conn_event(w, tag, MW__EV_WAKE);
    }
    taken.len = 0;
    w->wakes = taken;
}

/* Accepts one connection as a non-blocking, close-on-exec socket with Nagle off. */
static int mw__accept(int listen_fd, mw__addr *peer) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int one = 1, fd;
#if defined(__linux__)
    fd = accept4(listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    fd = accept(listen_fd, (struct sockaddr *)&ss, &sl);
    if (fd >= 0 && mw__set_nonblocking(fd) != 0) {
        close(fd);
        return -1;
    }
#endif
    if (fd < 0) return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#ifdef SO_NOSIGPIPE
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    memset(peer, 0, sizeof *peer);
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        memcpy(peer->ip, &a->sin6_addr, 16);
        peer->port = ntohs(a->sin6_port);
    } else if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        peer->ip[10] = peer->ip[11] = 0xff;
        memcpy(peer->ip + 12, &a->sin_addr, 4);
        peer->port = ntohs(a->sin_port);
    }
    return fd;
}

/* Whether the listener still takes connections: until the stop; with SO_REUSEPORT,
   until the controller has seen its queue empty and shut it (mw__control_loop). The
   stop waits for the workers counted in app->accepting, and a worker counts itself
   before it looks here: so no connection is accepted behind the stop's back. */
static int mw__listener_open(mw_app *app) {
    if (!__atomic_load_n(&app->stopping, __ATOMIC_SEQ_CST)) return 1;
    return app->listen_kind == MW__LISTEN_REUSEPORT && !MW__LOAD(&app->listener_refused);
}

/* Accepts what is waiting (a bounded batch, so one worker is not kept at it). Out of
   descriptors, the listener stays disarmed and the controller re-arms it on its next
   tick: no busy loop while the process is saturated. */
static void mw__accept_batch(mw__worker *w) {
    mw_app *app = w->app;
    int k, paused = 0;
    __atomic_add_fetch(&app->accepting, 1, __ATOMIC_SEQ_CST);
    for (k = 0; k < 64 && mw__listener_open(app); k++) {
        mw__addr peer;
        int fd = mw__accept(app->listen_fd, &peer);
        if (fd >= 0) {
            if (MW__LOAD(&app->accept_starved) && __atomic_exchange_n(&app->accept_starved, 0, __ATOMIC_ACQ_REL))
                mw__log(&app->log, MW_LOG_INFO, "accepting connections again");
            mw__conn_open(w, fd, &peer);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* said once per episode, however often the controller's retry fails */
            if (!__atomic_exchange_n(&app->accept_starved, 1, __ATOMIC_ACQ_REL))
                mw__log(&app->log, MW_LOG_WARN, "accept: %s; pausing until descriptors free up", strerror(errno));
            MW__STORE(&app->accept_paused, 1);
            paused = 1;
        }
        break;
    }
    if (!paused && mw__listener_open(app)) mw__poller_rearm(&app->poller, app->listen_fd, MW__TAG_LISTEN, MW__EV_READ);
    __atomic_sub_fetch(&app->accepting, 1, __ATOMIC_SEQ_CST);
}

static void *mw__worker_main(void *arg) {
    mw__worker *w = (mw__worker *)arg;
    mw_app *app = w->app;
    mw__event ev[64];
    int i;
    for (;;) {
        int n = mw__poller_wait(&app->poller, ev, w->batch, -1);
        for (i = 0; i < n; i++) {
            if (ev[i].tag == MW__TAG_EXIT) {
                if (MW__LOAD(&app->exiting)) return NULL;
            } else if (ev[i].tag == MW__TAG_LISTEN) {
                mw__accept_batch(w);
            } else if (ev[i].tag == MW__TAG_WAKE) {
                mw__take_wakes(w);
            } else {
                mw__conn_event(w, ev[i].tag, ev[i].events);
            }
        }
    }
}

/* Wakes the connections that need their worker: a deadline passed, an event stream
   owes a heartbeat, the server began to stop (all, once), or the grace period is over
   (all, with their sockets shut so a handler stuck on one returns). The workers do the
   rest, so no thread but a connection's own ever touches it. Returns the number of
   open connections. */
static size_t mw__sweep(mw_app *app, long long now, int all, int force) {
    mw__conn *c;
    size_t n;
    pthread_mutex_lock(&app->conns_lock);
    for (c = app->conns.next; c != &app->conns; c = c->next) {
        long long dl = MW__LOAD(&c->deadline), hb = MW__LOAD(&c->heartbeat_at);
        if (force) shutdown(c->fd, SHUT_RDWR);
        if (all || force || (dl && now >= dl) || (hb && now >= hb)) mw__wake_conn(app, c);
    }
    n = app->nconns;
    pthread_mutex_unlock(&app->conns_lock);
    return n;
}

/* Whether connections wait in the listener's queue. */
static int mw__listener_has_queue(int fd) {
    struct pollfd p;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* The stop and the listener. A listener bound here is shut at once (mw__listener_refuse).
   One taken over is never shut: the socket, and its queue, belong to every process that
   holds it, and a new one may be taking connections from it already; this process just
   stops accepting. With SO_REUSEPORT each process has a queue of its own, which Linux
   resets when the listener closes: it is accepted from until seen empty, then shut (a
   connection landing in that instant is still reset; a taken-over socket has no such
   instant). Returns 1 once nothing more will be accepted. */
static int mw__listener_stop(mw_app *app, int force) {
    if (MW__LOAD(&app->listener_refused)) return 1;
    if (app->listen_kind == MW__LISTEN_REUSEPORT && !force && mw__listener_has_queue(app->listen_fd)) return 0;
    MW__STORE(&app->listener_refused, 1);
    if (app->listen_kind != MW__LISTEN_SHARED) mw__listener_refuse(app->listen_fd);
    return 1;
}

/* The thread that called mw_serve: a tick for deadlines and paused accepts, and the
   graceful stop once mw_stop is called: first the drain delay (readiness says 503,
   still serving), then the stop itself. */
static void mw__control_loop(mw_app *app) {
    long long grace_end = 0, drain_at = 0;
    for (;;) {
        struct pollfd p;
        char drain[16];
        int stopping = MW__LOAD(&app->stopping), all = 0, force = 0, closed;
        long long now = mw__now_ms(), wait = drain_at && !stopping ? drain_at - now : 100;
        p.fd = app->ctl_pipe[0];
        p.events = POLLIN;
        p.revents = 0;
        /* while stopping, closes are due every few ms */
        poll(&p, 1, stopping ? 5 : (int)(wait < 0 ? 0 : wait < 100 ? wait : 100));
        while (read(app->ctl_pipe[0], drain, sizeof drain) > 0) {}
        now = mw__now_ms();
        if (MW__LOAD(&app->draining) && !drain_at)
            drain_at = now + __atomic_load_n(&app->drain_delay, __ATOMIC_RELAXED);
        if (drain_at && now >= drain_at) __atomic_store_n(&app->stopping, 1, __ATOMIC_SEQ_CST);
        if (MW__LOAD(&app->stopping) && !grace_end) {
            stopping = all = 1;
            grace_end = now + app->limits.v[MW_LIMIT_SHUTDOWN_GRACE_MS];
        }
        if (stopping && now >= grace_end && !MW__LOAD(&app->forcing)) {
            MW__STORE(&app->forcing, 1);
            force = 1;
        }
        if (!stopping && MW__LOAD(&app->accept_paused)) {
            MW__STORE(&app->accept_paused, 0);
            mw__poller_rearm(&app->poller, app->listen_fd, MW__TAG_LISTEN, MW__EV_READ);
        }
        /* no worker accepting, looked at before the connections are counted: one that
           was opened a connection that is counted, and a later one sees the stop */
        closed = stopping && mw__listener_stop(app, force) && !__atomic_load_n(&app->accepting, __ATOMIC_SEQ_CST);
        if (mw__sweep(app, now, all, force) == 0 && closed) return;
    }
}

static int mw__online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static int mw__thread_count(const mw_app *app) {
    const char *env = getenv("MW_THREADS");
    long long n = app->limits.v[MW_LIMIT_THREADS];
    if (n <= 0 && env && *env) n = atoll(env);
    if (n <= 0) n = mw__online_cpus();
    return n > 1024 ? 1024 : (int)n;
}

/* MW_ACCESS_LOG in the environment (0, 1 or plain, 2 or json) overrides the limit. */
static int mw__access_log_setting(const mw_app *app) {
    const char *env = getenv("MW_ACCESS_LOG");
    if (!env || !*env) return (int)app->limits.v[MW_LIMIT_ACCESS_LOG];
    if (strcmp(env, "json") == 0 || strcmp(env, "2") == 0) return 2;
    return strcmp(env, "0") != 0;
}

/* MW_DEBUG in the environment (0 or 1) overrides the limit, as MW_ACCESS_LOG does: a
   deployment can switch debug mode off whatever the code says. */
static int mw__debug_setting(const mw_app *app) {
    const char *env = getenv("MW_DEBUG");
    if (!env || !*env) return app->limits.v[MW_LIMIT_DEBUG] != 0;
    return strcmp(env, "0") != 0;
}

/* The settings the environment may override, read when serving starts (and, for the
   test client, at each request). */
static void mw__read_env_settings(mw_app *app) {
    app->access_log = mw__access_log_setting(app);
    app->debug = mw__debug_setting(app);
    mw__trace_setting(app);
}

static void mw__worker_free(mw__worker *w) {
    mw__buf_free(&w->out);
    mw__buf_free(&w->body);
    mw__buf_free(&w->headers);
    mw__buf_free(&w->ctype);
    mw__buf_free(&w->scratch);
    mw__buf_free(&w->wakes);
    mw__buf_free(&w->reqline);
    mw__buf_free(&w->json);
    mw__buf_free(&w->trace);
    mw__arena_free(&w->arena);
    mw__pool_drain(&w->bufs);
    mw__pool_drain(&w->big_bufs);
}

/* The connection table and the address counts, sized for the connection limit. */
static int mw__tables_open(mw_app *app) {
    size_t conns = (size_t)app->limits.v[MW_LIMIT_CONNECTIONS], cap = 16;
    /* room for every open connection and the free slots the workers keep */
    app->max_chunks = (conns + (size_t)app->nworkers * MW__WORKER_SLOTS + MW__CONN_CHUNK - 1) / MW__CONN_CHUNK;
    app->nchunks = 0;
    app->free_conns = NULL;
    if (!(app->chunks = (mw__conn **)MW_MALLOC(app->max_chunks * sizeof *app->chunks))) return MW_ENOMEM;
    memset(app->chunks, 0, app->max_chunks * sizeof *app->chunks);
    if (!app->limits.v[MW_LIMIT_CONNECTIONS_PER_IP]) return 0;
    while (cap < conns * 2) cap *= 2;
    if (!(app->addrs.slots = (mw__addr_count *)MW_MALLOC(cap * sizeof *app->addrs.slots))) return MW_ENOMEM;
    memset(app->addrs.slots, 0, cap * sizeof *app->addrs.slots);
    app->addrs.cap = cap;
    return 0;
}

static void mw__tables_close(mw_app *app) {
    size_t i;
    for (i = 0; i < app->nchunks; i++) MW_FREE(app->chunks[i]);
    MW_FREE(app->chunks);
    MW_FREE(app->addrs.slots);
    app->chunks = NULL;
    app->addrs.slots = NULL;
    app->nchunks = app->max_chunks = 0;
    app->free_conns = NULL;
}

/* Starts the workers with SIGINT/SIGTERM blocked, so signals reach the controller. */
static int mw__start_workers(mw_app *app) {
    sigset_t block, old;
    int i, started = 0;
    app->workers = (mw__worker *)MW_MALLOC((size_t)app->nworkers * sizeof *app->workers);
    if (!app->workers) return MW_ENOMEM;
    memset(app->workers, 0, (size_t)app->nworkers * sizeof *app->workers);
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    mw__logger_start(&app->log);
    for (i = 0; i < app->nworkers; i++) {
        app->workers[i].app = app;
        /* With one worker, taking many events per wait costs nothing. With several, a
           worker takes one at a time, so a handler that blocks holds back no other
           ready connection: the other workers pick those up. */
        app->workers[i].batch = app->nworkers == 1 ? 64 : 1;
        if (pthread_create(&app->workers[i].thread, NULL, mw__worker_main, &app->workers[i]) != 0) break;
        started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    app->nworkers = started;
    return started ? 0 : MW_EIO;
}

/* Joins the workers and frees what they and the remaining connections hold. */
static void mw__stop_workers(mw_app *app) {
    int i;
    char b = 1;
    MW__STORE(&app->exiting, 1);
    if (write(app->exit_pipe[1], &b, 1) < 0) { /* the pipe is level-triggered: one byte wakes all */
    }
    for (i = 0; i < app->nworkers; i++) pthread_join(app->workers[i].thread, NULL);
    while (app->conns.next != &app->conns) mw__conn_close(&app->workers[0], app->conns.next);
    for (i = 0; i < app->nworkers; i++) mw__worker_free(&app->workers[i]);
    MW_FREE(app->workers);
    app->workers = NULL;
    app->nworkers = 0;
    mw__logger_stop(&app->log);
}

static void mw__close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static void mw__server_close(mw_app *app) {
    int i;
    mw__close_fd(&app->listen_fd);
    for (i = 0; i < 2; i++) {
        mw__close_fd(&app->ctl_pipe[i]);
        mw__close_fd(&app->exit_pipe[i]);
        mw__close_fd(&app->wake_pipe[i]);
    }
    if (app->poller_open) mw__poller_close(&app->poller);
    app->poller_open = 0;
}

/* SO_REUSEPORT: each process binding the port with it gets a listener of its own, and
   the kernel spreads new connections over them. 0, or -1 with errno set. */
static int mw__reuse_port(int fd) {
#ifdef SO_REUSEPORT
    int one = 1;
    return setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
#else
    (void)fd;
    errno = ENOPROTOOPT;
    return -1;
#endif
}

/* What a failed bind says: a port in use names the way to share it. */
static void mw__bind_failed(int reuseport, char *why, size_t why_size) {
    int e = errno;
    snprintf(why, why_size, "%s%s", strerror(e),
             e == EADDRINUSE && !reuseport ? " (to share the port, set MW_REUSEPORT=1 in every process)" : "");
}

/* Binds and listens; returns the socket, or -1 with *why saying what went wrong. */
static int mw__bind_listener(const char *host, int port, int reuseport, char *why, size_t why_size) {
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[16];
    int fd = -1, one = 1, rc;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof portstr, "%d", port);
    if ((rc = getaddrinfo(host, portstr, &hints, &res)) != 0) {
        snprintf(why, why_size, "%s", rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    snprintf(why, why_size, "no address to bind");
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            snprintf(why, why_size, "%s", strerror(errno));
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (reuseport && mw__reuse_port(fd) != 0) {
            snprintf(why, why_size, "SO_REUSEPORT: %s", strerror(errno));
        } else if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0 &&
                   mw__set_nonblocking(fd) == 0) {
            break;
        } else {
            mw__bind_failed(reuseport, why, why_size);
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int mw__bound_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) return MW_EIO;
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return 0; /* a Unix-domain socket has no port */
}

/* Edge arming trusts a short read to mean an empty socket: on a Unix-domain socket a
   read also stops short at a message that carries descriptors, so its connections are
   armed one-shot with several workers. */
static int mw__listener_is_tcp(int fd) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    return getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && (ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
}

/* Linux's TCP_DEFER_ACCEPT; elsewhere new connections are accepted at once. */
static void mw__defer_accept(int fd, long long seconds) {
#ifdef TCP_DEFER_ACCEPT
    int s = seconds > 3600 ? 3600 : (int)seconds;
    if (s > 0) setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &s, sizeof s);
#else
    (void)fd;
    (void)seconds;
#endif
}

/* A setting from the environment, which wins over the app's limit: a decimal number
   from 0 to max; anything else leaves the limit. */
static long long mw__env_setting(const char *name, long long limit, long long max) {
    const char *s = getenv(name);
    char *end;
    long long v;
    if (!s || !*s) return limit;
    errno = 0;
    v = strtoll(s, &end, 10);
    return (*end || errno || v < 0 || v > max) ? limit : v;
}

/* MW_DRAIN_DELAY_MS from the environment or the limit, for mw_stop: known from
   mw_listen on (a stop before serving starts waits too), again when serving starts. */
static void mw__drain_delay_setting(mw_app *app) {
    long long ms = mw__env_setting("MW_DRAIN_DELAY_MS", app->limits.v[MW_LIMIT_DRAIN_DELAY_MS], MW__MAX_TIME);
    __atomic_store_n(&app->drain_delay, ms, __ATOMIC_RELAXED);
}

/* The pipes and the poller around app->listen_fd; returns its port, or MW_EIO with *why. */
static int mw__listen_setup(mw_app *app, char *why, size_t why_size) {
    mw__drain_delay_setting(app);
    mw__defer_accept(app->listen_fd, app->limits.v[MW_LIMIT_DEFER_ACCEPT_S]);
    if (mw__make_pipe(app->ctl_pipe) != 0 || mw__make_pipe(app->exit_pipe) != 0 || mw__make_pipe(app->wake_pipe) != 0 ||
        mw__poller_open(&app->poller) != 0) {
        snprintf(why, why_size, "%s", strerror(errno));
        mw__server_close(app);
        return MW_EIO;
    }
    app->poller_open = 1;
    if (mw__poller_add(&app->poller, app->exit_pipe[0], MW__TAG_EXIT, MW__EV_READ | MW__EV_PERSIST) != 0 ||
        mw__poller_add(&app->poller, app->wake_pipe[0], MW__TAG_WAKE, MW__EV_READ) != 0 ||
        mw__poller_add(&app->poller, app->listen_fd, MW__TAG_LISTEN, MW__EV_READ) != 0) {
        snprintf(why, why_size, "%s", strerror(errno));
        mw__server_close(app);
        return MW_EIO;
    }
    return mw__bound_port(app->listen_fd);
}

static int mw__listen(mw_app *app, const char *host, int port, char *why, size_t why_size) {
    int reuseport;
    if (!app || port < 0 || port > 65535) return MW_EINVAL;
    if (app->listen_fd >= 0 || app->serving) return MW_ESTATE;
    reuseport = mw__env_setting("MW_REUSEPORT", app->limits.v[MW_LIMIT_REUSEPORT], 1) != 0;
    if ((app->listen_fd = mw__bind_listener(host ? host : "127.0.0.1", port, reuseport, why, why_size)) < 0)
        return MW_EIO;
    app->listen_kind = reuseport ? MW__LISTEN_REUSEPORT : MW__LISTEN_BOUND;
    return mw__listen_setup(app, why, why_size);
}

int mw_listen(mw_app *app, const char *host, int port) {
    char why[128];
    return mw__listen(app, host, port, why, sizeof why);
}

/* A listening socket made elsewhere: it must be a stream socket in the listening
   state. It becomes non-blocking (for every process holding it: they all accept
   without blocking) and close-on-exec. */
static int mw__listen_fd(mw_app *app, int fd, char *why, size_t why_size) {
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    if (!app || fd < 0) return MW_EINVAL;
    if (app->listen_fd >= 0 || app->serving) return MW_ESTATE;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
        snprintf(why, why_size, "%s", errno == ENOTSOCK ? "not a socket" : strerror(errno));
        return MW_EINVAL;
    }
    len = sizeof listening;
    if (type != SOCK_STREAM || getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
        snprintf(why, why_size, "not a listening stream socket");
        return MW_EINVAL;
    }
    if (mw__set_nonblocking(fd) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        snprintf(why, why_size, "%s", strerror(errno));
        return MW_EIO;
    }
    app->listen_fd = fd;
    app->listen_kind = MW__LISTEN_SHARED;
    return mw__listen_setup(app, why, why_size);
}

int mw_listen_fd(mw_app *app, int fd) {
    char why[128];
    return mw__listen_fd(app, fd, why, sizeof why);
}

/* Every connection, and every file being sent, holds a descriptor: the soft limit
   (often 1024) goes up to the hard one, as Go's runtime does at start. */
static void mw__raise_fd_limit(void) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur >= r.rlim_max || r.rlim_max == RLIM_INFINITY) return;
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
}

/* The setup errors, with those extensions find only now (a partial no template has)
   and a malformed MW_TRUSTED_PROXIES. */
static int mw__setup_errors(mw_app *app) {
    int e;
    app->setup_errors += mw__proxies_from_env(app);
    for (e = 0; e < app->nexts; e++)
        if (app->exts[e]->app_check) app->setup_errors += app->exts[e]->app_check(app, app->ext_state[e]);
    return app->setup_errors;
}

int mw_serve(mw_app *app) {
    int rc;
    if (!app || app->listen_fd < 0 || app->serving) return MW_ESTATE;
    if (mw__setup_errors(app)) return MW_EINVAL;
    mw__raise_fd_limit();
    app->serving = 1;
    app->nworkers = mw__thread_count(app);
    app->conn_arming = app->nworkers == 1                                        ? MW__EV_PERSIST
                       : MW__POLLER_EPOLL && mw__listener_is_tcp(app->listen_fd) ? MW__EV_EDGE
                                                                                 : 0;
    mw__read_env_settings(app);
    mw__drain_delay_setting(app);
    if (app->debug)
        mw__log(&app->log, MW_LOG_WARN, "debug mode is on: error answers show internals; do not use in production");
    app->wakes.len = 0;
    app->wake_signalled = 0;
    if ((rc = mw__tables_open(app)) == 0 && (rc = mw__start_workers(app)) == 0) {
        mw__control_loop(app);
        mw__stop_workers(app);
    }
    mw__tables_close(app);
    mw__server_close(app);
    MW__STORE(&app->stopping, 0);
    MW__STORE(&app->draining, 0);
    MW__STORE(&app->listener_refused, 0);
    MW__STORE(&app->exiting, 0);
    MW__STORE(&app->forcing, 0);
    app->serving = 0;
    return rc;
}

/* Readiness turns 503 at once; the stop follows after the drain delay (the controller
   counts it), or at once without one or on a second call (a second Ctrl-C). */
void mw_stop(mw_app *app) {
    char b = 1;
    if (!app) return;
    /* lock-free: safe in a signal handler, like write() */
    if (__atomic_exchange_n(&app->draining, 1, __ATOMIC_ACQ_REL) ||
        !__atomic_load_n(&app->drain_delay, __ATOMIC_RELAXED))
        __atomic_store_n(&app->stopping, 1, __ATOMIC_SEQ_CST);
    if (app->ctl_pipe[1] >= 0 && write(app->ctl_pipe[1], &b, 1) < 0) { /* a full pipe already wakes it */
    }
}

static mw_app *mw__signal_app;
static void mw__on_signal(int sig) {
    (void)sig;
    mw_stop(mw__signal_app);
}

/* PORT from the environment: 0-65535, 8080 when unset; -1 when malformed. */
static int mw__env_port(void) {
    const char *s = getenv("PORT");
    char *end;
    long v;
    if (!s || !*s) return 8080;
    errno = 0;
    v = strtol(s, &end, 10);
    return (*end || errno || v < 0 || v > 65535) ? -1 : (int)v;
}

/* A decimal descriptor number or count from the environment; -1 when malformed. */
static int mw__env_int(const char *s) {
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    return (!*s || *end || errno || v < 0 || v > INT_MAX) ? -1 : (int)v;
}

/* The listening socket another process handed over: systemd's socket activation
   (LISTEN_PID is this process and LISTEN_FDS at least 1: the first is descriptor 3,
   SD_LISTEN_FDS_START) or MW_LISTEN_FD. The variables are removed, as sd_listen_fds(3)
   does, so a child process does not take them for its own. Returns the descriptor
   with *from naming where it came from, -1 when none is handed over, or -2 with *why
   when the variables are malformed. */
static int mw__inherited_listener(const char **from, char *why, size_t why_size) {
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS"), *named = getenv("MW_LISTEN_FD");
    int fd = -1;
    if (pid && fds && mw__env_int(pid) == (int)getpid()) {
        if (mw__env_int(fds) < 1) {
            snprintf(why, why_size, "LISTEN_FDS must be a number of descriptors, 1 or more, not \"%s\"", fds);
            return -2;
        }
        *from = "from systemd (LISTEN_FDS)";
        fd = 3; /* SD_LISTEN_FDS_START */
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
    } else if (named && *named) {
        if ((fd = mw__env_int(named)) < 0) {
            snprintf(why, why_size, "MW_LISTEN_FD must be a descriptor number, not \"%s\"", named);
            return -2;
        }
        *from = "from MW_LISTEN_FD";
        unsetenv("MW_LISTEN_FD");
    }
    return fd;
}

/* Listens where mw_run is told: on a socket handed over, or on HOST and PORT. Returns
   the port, or a negative MW_E... after logging why. */
static int mw__run_listen(mw_app *app, const char *host, int port, const char **from) {
    char why[200];
    int fd = mw__inherited_listener(from, why, sizeof why), bound;
    if (fd == -2) {
        mw__log(&app->log, MW_LOG_ERROR, "cannot take over a listening socket: %s", why);
        return MW_EINVAL;
    }
    if (fd >= 0) {
        if ((bound = mw__listen_fd(app, fd, why, sizeof why)) < 0)
            mw__log(&app->log, MW_LOG_ERROR, "cannot serve on descriptor %d %s: %s", fd, *from, why);
        return bound;
    }
    if (port < 0) {
        mw__log(&app->log, MW_LOG_ERROR, "PORT must be a number from 0 to 65535, not \"%s\"", getenv("PORT"));
        return MW_EINVAL;
    }
    if ((bound = mw__listen(app, host, port, why, sizeof why)) < 0)
        mw__log(&app->log, MW_LOG_ERROR, "cannot listen on %s%s%s:%d: %s", strchr(host, ':') ? "[" : "", host,
                strchr(host, ':') ? "]" : "", port, why);
    return bound;
}

/* The address a socket handed over listens on, for the listening line. */
static void mw__listener_host(int fd, char *host, size_t size) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    snprintf(host, size, "localhost");
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) return;
    if (ss.ss_family == AF_INET6) inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, (socklen_t)size);
    if (ss.ss_family == AF_INET) inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, (socklen_t)size);
}

/* mw_run's way out before serving: the app is freed, the caller gets 1. */
static int mw__run_fails(mw_app *app) {
    mw_app_free(app);
    return 1;
}

int mw_run(mw_app *app) {
    struct sigaction sa, old_int, old_term, old_pipe;
    const char *host = getenv("HOST"), *from = NULL;
    char inherited_host[64];
    int port = mw__env_port(), bound, rc;
    if (!app) return 1;
    if (!host || !*host) host = "127.0.0.1";
    if (mw__setup_errors(app)) {
        mw__log(&app->log, MW_LOG_ERROR, "not starting: %d setup error(s) above", app->setup_errors);
        return mw__run_fails(app);
    }
    if ((bound = mw__run_listen(app, host, port, &from)) < 0) return mw__run_fails(app);
    if (from) {
        mw__listener_host(app->listen_fd, inherited_host, sizeof inherited_host);
        host = inherited_host;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = mw__on_signal;
    sigemptyset(&sa.sa_mask);
    mw__signal_app = app;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &old_pipe);
    /* an IPv6 literal goes in brackets, so the URL can be pasted (RFC 3986 §3.2.2) */
    mw__log(&app->log, MW_LOG_INFO, "listening on http://%s%s%s:%d (%d threads)%s%s%s", strchr(host, ':') ? "[" : "",
            host, strchr(host, ':') ? "]" : "", bound, mw__thread_count(app), from ? " on a socket handed over " : "",
            from ? from : "", app->listen_kind == MW__LISTEN_REUSEPORT ? " with SO_REUSEPORT" : "");
    rc = mw_serve(app);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    mw__signal_app = NULL;
    if (rc == 0) mw__log(&app->log, MW_LOG_INFO, "stopped");
    mw_app_free(app);
    return rc == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------------------
   app: routes, settings, extensions, logging, and the request accessors
   --------------------------------------------------------------------------- */
mw_app *mw_app_new(void) {
    mw_app *app = (mw_app *)MW_MALLOC(sizeof *app);
    if (!app) return NULL;
    memset(app, 0, sizeof *app);
    mw__limits_default(&app->limits);
    mw__logger_init(&app->log);
    app->listen_fd = -1;
    app->ctl_pipe[0] = app->ctl_pipe[1] = app->exit_pipe[0] = app->exit_pipe[1] = -1;
    app->wake_pipe[0] = app->wake_pipe[1] = -1;
    app->csrf_on = -1;
    app->conns.next = app->conns.prev = &app->conns;
    pthread_mutex_init(&app->conns_lock, NULL);
    pthread_mutex_init(&app->wake_lock, NULL);
    return app;
}

void mw_app_free(mw_app *app) {
    size_t i;
    int e;
    if (!app) return;
    mw__timers_free(app->timers); /* first: its thread may wake connections */
    mw__server_close(app);
    for (e = 0; e < app->nexts; e++)
        if (app->exts[e]->app_free) app->exts[e]->app_free(app->ext_state[e]);
    mw__node_clear(&app->root);
    for (i = 0; i < app->nroutes; i++) {
        MW_FREE(app->routes[i]->pattern);
        mw__op_free(app->routes[i]->op);
        MW_FREE(app->routes[i]);
    }
    MW_FREE(app->routes);
    for (i = 0; i < app->nschemas; i++) mw__schema_free(app->schemas[i]);
    MW_FREE(app->schemas);
    mw__middleware_free(app);
    MW_FREE(app->proxies.nets);
    mw__buf_free(&app->wakes);
    mw__logger_free(&app->log);
    pthread_mutex_destroy(&app->conns_lock);
    pthread_mutex_destroy(&app->wake_lock);
    MW_FREE(app);
}

/* An extension joins the app before serving; its index is where a request keeps its
   state (rq->ext[index]). Returns the index, or -1. */
MW__MAYBE_UNUSED static int mw__app_add_ext(mw_app *app, const mw__ext *ext, void *state) {
    if (app->nexts == MW__EXT_MAX) return -1;
    app->exts[app->nexts] = ext;
    app->ext_state[app->nexts] = state;
    return app->nexts++;
}

/* The index of an extension in the app, or -1 when it has not joined. */
MW__MAYBE_UNUSED static int mw__app_ext_index(const mw_app *app, const mw__ext *ext) {
    int i;
    for (i = 0; i < app->nexts; i++)
        if (app->exts[i] == ext) return i;
    return -1;
}

/* The range each limit accepts, from MW__LIMITS. */
static int mw__limit_in_range(mw_limit which, long long value) {
    static const long long lo[] = {
#define MW__LIMIT_MIN(name, def, unit, min, max, exceeded) (min),
        MW__LIMITS(MW__LIMIT_MIN)
#undef MW__LIMIT_MIN
    };
    static const long long hi[] = {
#define MW__LIMIT_MAX(name, def, unit, min, max, exceeded) (max),
        MW__LIMITS(MW__LIMIT_MAX)
#undef MW__LIMIT_MAX
    };
    return value >= lo[which] && value <= hi[which];
}

int mw_set_limit(mw_app *app, mw_limit which, long long value) {
    if (!app || (int)which < 0 || which >= MW_LIMIT_COUNT || !mw__limit_in_range(which, value)) return MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    app->limits.v[which] = value;
    return 0;
}

int mw_debug(mw_app *app, int on) { return mw_set_limit(app, MW_LIMIT_DEBUG, on != 0); }

long long mw_get_limit(const mw_app *app, mw_limit which) {
    if (!app || (int)which < 0 || which >= MW_LIMIT_COUNT) return MW_EINVAL;
    return app->limits.v[which];
}

void mw_set_userdata(mw_app *app, void *data) {
    if (app) app->userdata = data;
}

void mw_set_logger(mw_app *app, mw_log_fn fn, void *arg) {
    if (!app || app->serving) return;
    app->log.fn = fn;
    app->log.arg = arg;
}

/* ---- liveness and readiness ---- */

/* Alive: the process answers. Nothing else is looked at, so a database that is down
   never gets a healthy process restarted. */
void mw_livez(mw_req *rq, mw_res *rs) {
    (void)rq;
    mw_set_header(rs, "Cache-Control", "no-store");
    mw_send_json(rs, 200, "{\"status\":\"alive\"}");
}

/* Ready: not stopping, and every check says so (the first that does not gives the
   reason). A balancer stops sending on the 503. */
void mw_readyz(mw_req *rq, mw_res *rs) {
    mw_app *app = rq->app;
    const char *why = MW__LOAD(&app->draining) ? "stopping" : NULL;
    int i;
    for (i = 0; !why && i < app->nready; i++) why = app->ready[i].fn(rq, app->ready[i].arg);
    mw_set_header(rs, "Cache-Control", "no-store");
    if (!why) {
        mw_send_json(rs, 200, "{\"status\":\"ready\"}");
        return;
    }
    mw_set_header(rs, "Retry-After", "1");
    mw_error(rs, 503, why);
}

int mw_health(mw_app *app, const char *live_path, const char *ready_path) {
    int rc = 0;
    if (!app) return MW_EINVAL;
    if (live_path) rc = mw_get(app, live_path, mw_livez);
    if (ready_path && !rc) rc = mw_get(app, ready_path, mw_readyz);
    return rc;
}

int mw_ready_check(mw_app *app, mw_ready_fn fn, void *arg) {
    if (!app || !fn) return MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    if (app->nready == MW__READY_MAX) {
        mw__log(&app->log, MW_LOG_ERROR, "mw_ready_check: at most %d checks", MW__READY_MAX);
        app->setup_errors++;
        return MW_ETOOBIG;
    }
    app->ready[app->nready].fn = fn;
    app->ready[app->nready++].arg = arg;
    return 0;
}

int mw_trace(mw_app *app, int on) {
    if (!app) return MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    app->trace_asked = on != 0;
    return 0;
}

/* Adds a route to the trie and to the app's list. */
static int mw__app_add_route(mw_app *app, int slot, const char *pattern, mw_handler h, void *data,
                             mw__route_error *err) {
    mw__route *r = (mw__route *)MW_MALLOC(sizeof *r), **list;
    int rc;
    err->why = "out of memory";
    if (!r) return MW_ENOMEM;
    memset(r, 0, sizeof *r);
    r->slot = slot;
    r->handler = h;
    r->data = data;
    list = (mw__route **)MW_REALLOC(app->routes, (app->nroutes + 1) * sizeof *list);
    if (list) app->routes = list;
    if (!list || !(r->pattern = mw__strndup(pattern, strlen(pattern)))) {
        MW_FREE(r);
        return MW_ENOMEM;
    }
    if ((rc = mw__router_add(&app->root, r, err)) != 0) {
        MW_FREE(r->pattern);
        MW_FREE(r);
        return rc;
    }
    app->routes[app->nroutes++] = r;
    return 0;
}

int mw_route(mw_app *app, const char *method, const char *pattern, mw_handler h) {
    return mw_route_with(app, method, pattern, h, NULL);
}

int mw_route_with(mw_app *app, const char *method, const char *pattern, mw_handler h, void *data) {
    mw__route_error err;
    int slot, rc;
    if (!app) return MW_EINVAL;
    err.why = "invalid argument";
    if (!method || !pattern || !h) {
        rc = MW_EINVAL;
    } else if (app->serving) {
        err.why = "routes cannot change while serving";
        rc = MW_ESTATE;
    } else {
        slot = mw__method_slot(method, strlen(method));
        if (strcmp(method, "*") != 0 && slot == MW__M_OTHER) {
            err.why = "method must be GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or * (any)";
            rc = MW_EINVAL;
        } else {
            rc = mw__app_add_route(app, slot, pattern, h, data, &err);
        }
    }
    if (rc != 0) {
        mw__log(&app->log, MW_LOG_ERROR, "route %s %s: %s", method ? method : "(null)", pattern ? pattern : "(null)",
                err.why);
        app->setup_errors++;
    }
    return rc;
}

/* ---- declared routes and named schemas ---- */

/* A copy of an optional text; *failed is set when there was one and no memory. */
static char *mw__copy_optional(const char *s, int *failed) {
    char *d = mw__strdup_or_null(s);
    if (s && !d) *failed = 1;
    return d;
}

/* Compiles one part of a declaration (NULL: not declared); a failure is one line that
   names the route, the part and the column. */
static int mw__op_part(mw_app *app, const char *route, const char *part, const char *src, int fields_only,
                       mw__schema **out) {
    const char *why = "out of memory";
    size_t column = 1;
    if (!src) return 1;
    if ((*out = mw__schema_compile(src, fields_only, app->schemas, app->nschemas, &why, &column)) != NULL) return 1;
    mw__log(&app->log, MW_LOG_ERROR, "%s: %s, column %lu: %s", route, part, (unsigned long)column, why);
    return 0;
}

/* Each query field's value when it is absent: its default, or nothing. */
static int mw__op_defaults(mw__op *op) {
    const mw__schema *s = op->query;
    const mw__snode *f;
    size_t k = 0;
    op->nquery = s ? s->nodes[0].nkids : 0;
    if (!(op->defaults = (mw__arg *)MW_MALLOC((op->nquery + 1) * sizeof(mw__arg)))) return 0;
    memset(op->defaults, 0, (op->nquery + 1) * sizeof(mw__arg));
    for (f = op->nquery ? s->nodes + 1 : NULL; f; f = f->next ? s->nodes + f->next : NULL, k++) {
        const mw_jv *d = mw_jv_root(f->def);
        if (!d) continue;
        op->defaults[k].d = mw_jv_num(d, 0);
        op->defaults[k].i =
            f->kind == MW__S_BOOL ? mw_jv_bool(d, 0) : mw_jv_int(d, mw__truncated_int(op->defaults[k].d));
        op->defaults[k].s = mw_jv_string(d);
    }
    return 1;
}

static int mw__op_responses(mw_app *app, const char *route, const mw_op *op, mw__op *out) {
    size_t i;
    int failed = 0;
    for (i = 0; i < MW_OP_MAX_RESPONSES && op->responses[i].status; i++) {
        const mw_response_doc *r = &op->responses[i];
        char part[40];
        if (r->status < 100 || r->status > 599) {
            mw__log(&app->log, MW_LOG_ERROR, "%s: response status %d is not 100-599", route, r->status);
            return 0;
        }
        out->statuses[i] = r->status;
        out->descriptions[i] = mw__copy_optional(r->description, &failed);
        out->nresponses = i + 1;
        snprintf(part, sizeof part, "response %d schema", r->status);
        if (failed || !mw__op_part(app, route, part, r->schema, 0, &out->schemas[i])) return 0;
    }
    return 1;
}

/* A declaration compiled for a route ("POST /notes" names it in error lines), or NULL. */
static mw__op *mw__op_compile(mw_app *app, const char *route, const mw_op *op) {
    mw__op *out = (mw__op *)MW_MALLOC(sizeof *out);
    int failed = 0;
    if (!out) return NULL;
    memset(out, 0, sizeof *out);
    out->summary = mw__copy_optional(op->summary, &failed);
    out->description = mw__copy_optional(op->description, &failed);
    out->tags = mw__copy_optional(op->tags, &failed);
    if (failed || !mw__op_part(app, route, "query", op->query, 1, &out->query) ||
        !mw__op_part(app, route, "body schema", op->body, 0, &out->body) || !mw__op_responses(app, route, op, out) ||
        !mw__op_defaults(out)) {
        mw__op_free(out);
        return NULL;
    }
    return out;
}

int mw_route_op(mw_app *app, const char *method, const char *pattern, mw_handler h, const mw_op *op) {
    char route[256];
    mw__op *compiled;
    int rc;
    if (!app) return MW_EINVAL;
    if (!op || !method || !pattern) return mw_route_with(app, method, pattern, h, op ? op->data : NULL);
    snprintf(route, sizeof route, "%s %s", method, pattern);
    if (!(compiled = mw__op_compile(app, route, op))) return app->setup_errors++, MW_EINVAL;
    if ((rc = mw_route_with(app, method, pattern, h, op->data)) != 0) {
        mw__op_free(compiled);
        return rc;
    }
    app->routes[app->nroutes - 1]->op = compiled;
    return 0;
}

static const mw__schema *mw__schema_named(const mw_app *app, const char *name) {
    size_t i;
    for (i = 0; i < app->nschemas; i++)
        if (strcmp(app->schemas[i]->name, name) == 0) return app->schemas[i];
    return NULL;
}

/* Why a name cannot be a schema's, or NULL. */
static const char *mw__schema_name_problem(const mw_app *app, const char *name) {
    size_t k;
    static const char *const reserved[] = {"ValidationError", "HTTPValidationError", "HTTPError"};
    if (mw__sname_len(name) != strlen(name)) return "a schema's name is a letter or '_', then letters, digits and '_'";
    for (k = 0; k < 3; k++)
        if (strcmp(name, reserved[k]) == 0) return "the OpenAPI document names its error schemas so";
    for (k = 0; k < sizeof mw__scalar_names / sizeof mw__scalar_names[0]; k++)
        if (strcmp(name, mw__scalar_names[k]) == 0) return "a schema's name cannot be a type's";
    return mw__schema_named(app, name) ? "a schema has this name already" : NULL;
}

int mw_schema(mw_app *app, const char *name, const char *schema) {
    mw__schema *s = NULL, **list;
    const char *why = "invalid argument";
    size_t column = 1;
    if (!app) return MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    if (name && schema && (why = mw__schema_name_problem(app, name)) == NULL &&
        (s = mw__schema_compile(schema, 0, app->schemas, app->nschemas, &why, &column)) != NULL) {
        list = (mw__schema **)MW_REALLOC(app->schemas, (app->nschemas + 1) * sizeof *list);
        if (list) app->schemas = list;
        if (list && (s->name = mw__strndup(name, strlen(name))) != NULL) {
            app->schemas[app->nschemas++] = s;
            return 0;
        }
        mw__schema_free(s);
        mw__log(&app->log, MW_LOG_ERROR, "schema %s: out of memory", name);
    } else if (!s && name && schema && !mw__schema_name_problem(app, name)) {
        mw__log(&app->log, MW_LOG_ERROR, "schema %s, column %lu: %s", name, (unsigned long)column, why);
    } else {
        mw__log(&app->log, MW_LOG_ERROR, "schema %s: %s", name ? name : "(null)", why);
    }
    app->setup_errors++;
    return MW_EINVAL;
}

int mw_get(mw_app *app, const char *pattern, mw_handler h) { return mw_route(app, "GET", pattern, h); }
int mw_post(mw_app *app, const char *pattern, mw_handler h) { return mw_route(app, "POST", pattern, h); }
int mw_put(mw_app *app, const char *pattern, mw_handler h) { return mw_route(app, "PUT", pattern, h); }
int mw_patch(mw_app *app, const char *pattern, mw_handler h) { return mw_route(app, "PATCH", pattern, h); }
int mw_delete(mw_app *app, const char *pattern, mw_handler h) { return mw_route(app, "DELETE", pattern, h); }
int mw_any(mw_app *app, const char *pattern, mw_handler h) { return mw_route(app, "*", pattern, h); }

const char *mw_method(const mw_req *rq) { return rq->method; }
const char *mw_path(const mw_req *rq) { return rq->path; }
const char *mw_query(const mw_req *rq) { return rq->query; }
mw_str mw_body(const mw_req *rq) {
    mw_str s;
    s.ptr = rq->body;
    s.len = rq->body_len;
    return s;
}
void *mw_userdata(const mw_req *rq) { return rq->app->userdata; }

/* The value of the next field named name from field *i on (advancing *i past it), or NULL. */
static const char *mw__header_next(const mw_req *rq, const char *name, size_t *i) {
    size_t n = strlen(name), k;
    for (; *i < rq->head->nfields; (*i)++) {
        const mw__field *f = &rq->head->fields[*i];
        if (f->name_len != n) continue;
        for (k = 0; k < n && mw__lower((unsigned char)f->name[k]) == mw__lower((unsigned char)name[k]); k++) {}
        if (k == n) return rq->head->fields[(*i)++].value;
    }
    return NULL;
}

const char *mw_header(const mw_req *rq, const char *name) {
    size_t i = 0;
    return mw__header_next(rq, name, &i);
}

/* A field's name is not NUL-terminated in the read buffer (its ':' follows), so the
   caller gets a copy; values already are (mw__head_terminate). */
int mw_header_next(const mw_req *rq, size_t *cursor, const char **name, const char **value) {
    const mw__field *f;
    if (!rq || !cursor || *cursor >= rq->head->nfields) return 0;
    f = &rq->head->fields[(*cursor)++];
    *name = mw__arena_strndup(rq->arena, f->name, f->name_len);
    *value = f->value;
    return *name ? 1 : MW_ENOMEM;
}

/* A copy of the target with the one byte mw__head_terminate wrote inside it (the '?'
   that ended the path) put back. */
const char *mw_target(const mw_req *rq) {
    const mw__head *h = rq ? rq->head : NULL;
    size_t path_end;
    char *t;
    if (!h || !h->target_len) return ""; /* a refusal whose head was not read */
    if (!(t = mw__arena_strndup(rq->arena, h->target, h->target_len))) return NULL;
    path_end = (size_t)(h->path + h->path_len - h->target);
    if (h->path != mw__root_path && path_end < h->target_len) t[path_end] = '?';
    return t;
}

const char *mw_http_version(const mw_req *rq) {
    if (!rq) return NULL;
    return rq->head->minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
}

const char *mw_client_addr(const mw_req *rq) {
    mw__forwarded f;
    char *ip = mw__req_forwarded(rq, &f) ? (char *)mw__arena_alloc(rq->arena, INET6_ADDRSTRLEN) : NULL;
    if (ip) mw__format_ip(&f.client, ip);
    return ip;
}

int mw_client_port(const mw_req *rq) {
    mw__forwarded f;
    return mw__req_forwarded(rq, &f) ? f.client.port : 0;
}

const char *mw_scheme(const mw_req *rq) {
    const char *scheme = mw__forwarded_scheme(rq);
    return scheme ? scheme : "http";
}

const char *mw_host(const mw_req *rq) {
    mw__forwarded f;
    const char *host;
    if (mw__req_forwarded(rq, &f) && f.host.ptr) return mw__arena_strndup(rq->arena, f.host.ptr, f.host.len);
    host = rq ? mw_header(rq, "Host") : NULL;
    return host ? host : "";
}

const char *mw_param(const mw_req *rq, const char *name) {
    size_t i;
    for (i = 0; i < rq->nparams; i++)
        if (strcmp(rq->param_names[i], name) == 0) return rq->param_values[i];
    return NULL;
}

/* A declared query parameter's value, once the request was checked; else NULL. */
static const mw__arg *mw__query_arg(const mw_req *rq, const char *name) {
    const mw__op *op = rq && rq->route ? rq->route->op : NULL;
    const mw__schema *s;
    const mw__snode *f;
    size_t k = 0;
    if (!op || !op->query || !rq->args || !name) return NULL;
    s = op->query;
    for (f = op->nquery ? s->nodes + 1 : NULL; f; f = f->next ? s->nodes + f->next : NULL, k++)
        if (strcmp(mw__snode_text(s, f->key), name) == 0) return &rq->args[k];
    return NULL;
}

/* A path parameter is typed by its pattern ({id:int}), which the router held it to. */
static const char *mw__path_arg(const mw_req *rq, const char *name) { return rq && name ? mw_param(rq, name) : NULL; }

long long mw_arg_int(const mw_req *rq, const char *name) {
    const char *p = mw__path_arg(rq, name);
    const mw__arg *a = p ? NULL : mw__query_arg(rq, name);
    long long i;
    if (p) return mw__parse_int64(p, strlen(p), &i) ? i : mw__truncated_int(mw_arg_num(rq, name));
    return a ? a->i : 0;
}

double mw_arg_num(const mw_req *rq, const char *name) {
    const char *p = mw__path_arg(rq, name);
    const mw__arg *a = p ? NULL : mw__query_arg(rq, name);
    if (p) return mw__is_number_text(p, strlen(p)) ? mw__strtod(p) : 0;
    return a ? a->d : 0;
}

int mw_arg_bool(const mw_req *rq, const char *name) {
    const char *p = mw__path_arg(rq, name);
    const mw__arg *a = p ? NULL : mw__query_arg(rq, name);
    int b = 0;
    if (p) return mw__bool_word(p, strlen(p), &b) ? b : 0;
    return a ? (int)a->i : 0;
}

mw_str mw_arg_str(const mw_req *rq, const char *name) {
    const char *p = mw__path_arg(rq, name);
    const mw__arg *a = p ? NULL : mw__query_arg(rq, name);
    mw_str s = {NULL, 0};
    if (p) s.ptr = p, s.len = strlen(p);
    else if (a) s = a->s;
    return s;
}

int mw_arg_present(const mw_req *rq, const char *name) {
    const mw__arg *a;
    if (mw__path_arg(rq, name)) return 1;
    return (a = mw__query_arg(rq, name)) != NULL && a->present;
}

/* ---------------------------------------------------------------------------
   openapi: GET /openapi.json, an OpenAPI 3.1 document made from the route table (every
   route once per method, with its declaration) the first time it is asked for, once
   every route is registered: routes do not change while serving.
   --------------------------------------------------------------------------- */
#define MW__OPENAPI_REF "#/components/schemas/"

typedef struct mw__openapi {
    char *title, *version;
    pthread_mutex_t lock; /* the first requests may come together */
    mw__buf doc;
    size_t routes_seen; /* the route count the document was made for (the test client may add more) */
} mw__openapi;

static void mw__openapi_free(void *state) {
    mw__openapi *o = (mw__openapi *)state;
    MW_FREE(o->title);
    MW_FREE(o->version);
    mw__buf_free(&o->doc);
    pthread_mutex_destroy(&o->lock);
    MW_FREE(o);
}

static const mw__ext mw__openapi_ext = {NULL, mw__openapi_free, NULL};

/* A pattern in OpenAPI's form: ":id", "{id:int}" and "*path" become "{id}" and "{path}". */
static void mw__openapi_path(const char *pattern, mw__buf *out) {
    const char *p = pattern;
    out->len = 0;
    while (*p == '/') {
        const char *seg = p + 1, *e = strchr(seg, '/');
        size_t len = e ? (size_t)(e - seg) : strlen(seg);
        mw__segment sg;
        char text[160];
        mw__buf_puts(out, "/");
        if (mw__parse_segment(seg, len, e == NULL, &sg, text, sizeof text) == NULL && sg.kind != MW__SEG_STATIC) {
            mw__buf_puts(out, "{");
            mw__buf_append(out, sg.name, sg.len);
            mw__buf_puts(out, "}");
        } else {
            mw__buf_append(out, seg, len);
        }
        p = seg + len;
    }
    mw__buf_append(out, "", 1);
}

static void mw__openapi_type(mw_json *j, const char *type, int nullable) {
    mw_json_key(j, "type");
    if (!nullable) {
        mw_json_string(j, type);
        return;
    }
    mw_json_array(j);
    mw_json_string(j, type);
    mw_json_string(j, "null");
    mw_json_close(j);
}

static void mw__openapi_bounds(mw_json *j, const mw__schema *s, const mw__snode *d, const char *lo, const char *hi) {
    if (d->has_min) mw_json_key(j, lo), mw__json_scalar(j, mw__snode_text(s, d->lo), d->lo_len);
    if (d->has_max) mw_json_key(j, hi), mw__json_scalar(j, mw__snode_text(s, d->hi), d->hi_len);
}

static void mw__openapi_schema(mw_json *j, const mw__schema *s, const mw__snode *d);

static void mw__openapi_object(mw_json *j, const mw__schema *s, const mw__snode *d) {
    const mw__snode *f;
    mw__openapi_type(j, "object", d->nullable);
    mw_json_key(j, "properties");
    mw_json_object(j);
    for (f = d->nkids ? d + 1 : NULL; f; f = f->next ? s->nodes + f->next : NULL) {
        mw__json_key_n(j, mw__snode_text(s, f->key), f->key_len);
        mw__openapi_schema(j, s, f);
    }
    mw_json_close(j);
    mw_json_key(j, "required");
    mw_json_array(j);
    for (f = d->nkids ? d + 1 : NULL; f; f = f->next ? s->nodes + f->next : NULL)
        if (!f->optional) mw_json_stringn(j, mw__snode_text(s, f->key), f->key_len);
    mw_json_close(j);
    if (!d->open) mw_json_key_bool(j, "additionalProperties", 0);
}

static void mw__openapi_enum(mw_json *j, const mw__schema *s, const mw__snode *d) {
    const mw__snode *lit;
    uint32_t k;
    mw__openapi_type(j, "string", d->nullable);
    mw_json_key(j, "enum");
    mw_json_array(j);
    for (lit = d + 1, k = 0; k < d->nkids; lit = s->nodes + lit->next, k++)
        mw_json_stringn(j, mw__snode_text(s, lit->key), lit->key_len);
    if (d->nullable) mw_json_null(j);
    mw_json_close(j);
}

/* A node as JSON Schema 2020-12 (what OpenAPI 3.1 uses); a named schema by $ref. */
static void mw__openapi_schema(mw_json *j, const mw__schema *s, const mw__snode *d) {
    char ref[sizeof MW__OPENAPI_REF + 256];
    static const char *const types[] = {"", "string", "integer", "number", "boolean"};
    mw_json_object(j);
    if (d->kind == MW__S_REF) {
        snprintf(ref, sizeof ref, "%s%.255s", MW__OPENAPI_REF, d->ref->name);
        if (d->nullable) {
            mw_json_key(j, "anyOf");
            mw_json_array(j);
            mw_json_object(j);
        }
        mw_json_key_string(j, "$ref", ref);
        if (d->nullable) {
            mw_json_close(j);
            mw_json_object(j);
            mw_json_key_string(j, "type", "null");
            mw_json_close(j);
            mw_json_close(j);
        }
    } else if (d->kind == MW__S_ENUM) {
        mw__openapi_enum(j, s, d);
    } else if (d->kind == MW__S_OBJECT) {
        mw__openapi_object(j, s, d);
    } else if (d->kind == MW__S_ARRAY) {
        mw__openapi_type(j, "array", d->nullable);
        mw_json_key(j, "items");
        mw__openapi_schema(j, s, d + 1);
        mw__openapi_bounds(j, s, d, "minItems", "maxItems");
    } else if (d->kind != MW__S_ANY) {
        mw__openapi_type(j, types[d->kind], d->nullable);
        if (d->kind == MW__S_STRING) mw__openapi_bounds(j, s, d, "minLength", "maxLength");
        else mw__openapi_bounds(j, s, d, "minimum", "maximum");
    }
    if (d->def) mw_json_key(j, "default"), mw_json_value(j, mw_jv_root(d->def));
    mw_json_close(j);
}

static void mw__openapi_ref(mw_json *j, const char *key, const char *where, const char *name) {
    char ref[64];
    snprintf(ref, sizeof ref, "#/components/%s/%s", where, name);
    mw_json_key(j, key);
    mw_json_object(j);
    mw_json_key_string(j, "$ref", ref);
    mw_json_close(j);
}

/* "content": {"application/json": {"schema": ...}} */
static void mw__openapi_content(mw_json *j, const mw__schema *s) {
    mw_json_key(j, "content");
    mw_json_object(j);
    mw_json_key(j, "application/json");
    mw_json_object(j);
    mw_json_key(j, "schema");
    mw__openapi_schema(j, s, s->nodes);
    mw_json_close(j);
    mw_json_close(j);
}

static void mw__openapi_parameters(mw_json *j, const mw__route *r) {
    static const char *const types[] = {"integer", "number", "boolean"};
    const mw__schema *q = r->op ? r->op->query : NULL;
    const char *p = r->pattern;
    const mw__snode *f;
    mw_json_key(j, "parameters");
    mw_json_array(j);
    while (*p == '/') {
        const char *seg = p + 1, *e = strchr(seg, '/');
        size_t len = e ? (size_t)(e - seg) : strlen(seg);
        mw__segment sg;
        char text[160];
        p = seg + len;
        if (mw__parse_segment(seg, len, e == NULL, &sg, text, sizeof text) != NULL || sg.kind == MW__SEG_STATIC)
            continue;
        mw_json_object(j);
        mw_json_key(j, "name");
        mw_json_stringn(j, sg.name, sg.len);
        mw_json_key_string(j, "in", "path");
        mw_json_key_bool(j, "required", 1);
        mw_json_key(j, "schema");
        mw_json_object(j);
        mw_json_key_string(j, "type", sg.kind >= MW__SEG_INT ? types[sg.kind - MW__SEG_INT] : "string");
        mw_json_close(j);
        mw_json_close(j);
    }
    for (f = q && q->nodes[0].nkids ? q->nodes + 1 : NULL; f; f = f->next ? q->nodes + f->next : NULL) {
        mw_json_object(j);
        mw_json_key(j, "name");
        mw_json_stringn(j, mw__snode_text(q, f->key), f->key_len);
        mw_json_key_string(j, "in", "query");
        mw_json_key_bool(j, "required", !f->optional);
        mw_json_key(j, "schema");
        mw__openapi_schema(j, q, f);
        mw_json_close(j);
    }
    mw_json_close(j);
}

static int mw__op_documents(const mw__op *op, int status) {
    size_t i;
    for (i = 0; op && i < op->nresponses; i++)
        if (op->statuses[i] == status) return 1;
    return 0;
}

/* The answers microweb itself may give for the operation, unless it documents them. */
static void mw__openapi_automatic(mw_json *j, const mw__route *r) {
    const mw__op *op = r->op;
    if (!mw__op_documents(op, 400)) mw__openapi_ref(j, "400", "responses", "BadRequest");
    if (strpbrk(r->pattern, ":{*") && !mw__op_documents(op, 404)) mw__openapi_ref(j, "404", "responses", "NotFound");
    if (op && op->body && !mw__op_documents(op, 415)) mw__openapi_ref(j, "415", "responses", "UnsupportedMediaType");
    if (op && (op->body || op->query) && !mw__op_documents(op, 422))
        mw__openapi_ref(j, "422", "responses", "ValidationError");
}

static void mw__openapi_responses(mw_json *j, const mw__route *r) {
    const mw__op *op = r->op;
    size_t i;
    char status[8];
    mw_json_key(j, "responses");
    mw_json_object(j);
    for (i = 0; op && i < op->nresponses; i++) {
        snprintf(status, sizeof status, "%d", op->statuses[i]);
        mw_json_key(j, status);
        mw_json_object(j);
        mw_json_key_string(j, "description", op->descriptions[i] ? op->descriptions[i] : mw__reason(op->statuses[i]));
        if (op->schemas[i]) mw__openapi_content(j, op->schemas[i]);
        mw_json_close(j);
    }
    if (!op || !op->nresponses) {
        mw_json_key(j, "200");
        mw_json_object(j);
        mw_json_key_string(j, "description", "OK");
        mw_json_close(j);
    }
    mw__openapi_automatic(j, r);
    mw_json_close(j);
}

/* "notes, admin" -> ["notes", "admin"] */
static void mw__openapi_tags(mw_json *j, const char *tags) {
    mw_json_key(j, "tags");
    mw_json_array(j);
    while (*tags) {
        size_t n;
        tags += strspn(tags, ", ");
        n = strcspn(tags, ",");
        while (n && tags[n - 1] == ' ') n--;
        if (n) mw_json_stringn(j, tags, n);
        tags += n;
        tags += strcspn(tags, ",");
    }
    mw_json_close(j);
}

static void mw__openapi_operation(mw_json *j, const mw__route *r, const char *method) {
    const mw__op *op = r->op;
    mw_json_key(j, method);
    mw_json_object(j);
    if (op && op->summary) mw_json_key_string(j, "summary", op->summary);
    if (op && op->description) mw_json_key_string(j, "description", op->description);
    if (op && op->tags) mw__openapi_tags(j, op->tags);
    mw__openapi_parameters(j, r);
    if (op && op->body) {
        mw_json_key(j, "requestBody");
        mw_json_object(j);
        mw_json_key_bool(j, "required", 1);
        mw__openapi_content(j, op->body);
        mw_json_close(j);
    }
    mw__openapi_responses(j, r);
    mw_json_close(j);
}

/* Whether a route of its own takes method slot m on the path (not an mw_any one). */
static int mw__openapi_taken(const mw_app *app, char *const *paths, const char *path, int m) {
    size_t i;
    for (i = 0; i < app->nroutes; i++)
        if (app->routes[i]->slot == m && strcmp(paths[i], path) == 0) return 1;
    return 0;
}

/* The operations of one path, routes in registration order; a method is documented
   once (an mw_any route stands for the methods no other route of the path takes). */
static void mw__openapi_path_item(mw_json *j, const mw_app *app, char *const *paths, size_t first) {
    static const char *const lower[MW__M_SLOTS] = {"get", "head", "post", "put", "patch", "delete", "options", ""};
    static const unsigned any =
        1u << MW__M_GET | 1u << MW__M_POST | 1u << MW__M_PUT | 1u << MW__M_PATCH | 1u << MW__M_DELETE;
    unsigned done = 0;
    size_t i;
    int m;
    mw_json_object(j);
    for (i = first; i < app->nroutes; i++) {
        const mw__route *r = app->routes[i];
        unsigned slots = r->slot == MW__M_ANY ? any : 1u << r->slot;
        if (strcmp(paths[i], paths[first]) != 0) continue;
        for (m = 0; m < MW__M_ANY; m++) {
            if (!(slots & (1u << m)) || (done & (1u << m))) continue;
            if (r->slot == MW__M_ANY && mw__openapi_taken(app, paths, paths[first], m)) continue;
            done |= 1u << m;
            mw__openapi_operation(j, r, lower[m]);
        }
    }
    mw_json_close(j);
}

/* The answers every microweb app may give, and their bodies' schemas. */
static const char mw__openapi_error_schemas[] =
    "{\"ValidationError\":{\"type\":\"object\",\"properties\":{\"loc\":{\"type\":\"array\",\"items\":{\"anyOf\":"
    "[{\"type\":\"string\"},{\"type\":\"integer\"}]}},\"msg\":{\"type\":\"string\"},\"type\":{\"type\":\"string\"}},"
    "\"required\":[\"loc\",\"msg\",\"type\"]},"
    "\"HTTPValidationError\":{\"type\":\"object\",\"properties\":{\"status\":{\"const\":422},\"error\":{\"type\":"
    "\"string\"},\"detail\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/ValidationError\"}}},"
    "\"required\":[\"status\",\"error\",\"detail\"]},"
    "\"HTTPError\":{\"type\":\"object\",\"properties\":{\"status\":{\"type\":\"integer\"},\"error\":{\"type\":"
    "\"string\"},\"detail\":{\"type\":\"string\"},\"offset\":{\"type\":\"integer\",\"description\":\"where a "
    "malformed JSON body went wrong, in bytes\"}},\"required\":[\"status\",\"error\",\"detail\"]}}";

#define MW__OPENAPI_ERROR(name, text, schema)                                                             \
    "\"" name "\":{\"description\":\"" text "\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":" \
    "\"#/components/schemas/" schema "\"}}}}"
static const char mw__openapi_error_responses[] = "{" MW__OPENAPI_ERROR(
    "BadRequest", "Malformed request, or malformed JSON body (detail and offset say where)",
    "HTTPError") "," MW__OPENAPI_ERROR("NotFound", "No route for this path",
                                       "HTTPError") ","
                                                    "\"MethodNotAllowed\":{\"description\":\"The path has no route for "
                                                    "this method; Allow lists those it has\","
                                                    "\"headers\":{\"Allow\":{\"schema\":{\"type\":\"string\"}}},"
                                                    "\"content\":{\"application/json\":{\"schema\":"
                                                    "{\"$ref\":\"#/components/schemas/"
                                                    "HTTPError\"}}}}," MW__OPENAPI_ERROR(
                                                        "UnsupportedMediaType",
                                                        "The body is not JSON (Content-Type: application/json)",
                                                        "HTTPError") "," MW__OPENAPI_ERROR("ValidationError",
                                                                                           "Validation Error: every "
                                                                                           "problem, with its place",
                                                                                           "HTTPValidationError") "}";

/* Members of a constant JSON object into the open object of j. */
static void mw__openapi_members(mw_json *j, const char *text) {
    mw_jv_doc *doc = mw_jv_parse(text, strlen(text), NULL, NULL);
    const mw_jv *m;
    for (m = mw_jv_first(mw_jv_root(doc)); m; m = mw_jv_next(m)) {
        mw__json_key_n(j, mw_jv_key(m), mw__jv_key_len(m));
        mw_json_value(j, m);
    }
    mw_jv_free(doc);
}

static void mw__openapi_components(mw_json *j, const mw_app *app) {
    size_t i;
    mw_json_key(j, "components");
    mw_json_object(j);
    mw_json_key(j, "schemas");
    mw_json_object(j);
    for (i = 0; i < app->nschemas; i++) {
        mw_json_key(j, app->schemas[i]->name);
        mw__openapi_schema(j, app->schemas[i], app->schemas[i]->nodes);
    }
    mw__openapi_members(j, mw__openapi_error_schemas);
    mw_json_close(j);
    mw_json_key(j, "responses");
    mw_json_object(j);
    mw__openapi_members(j, mw__openapi_error_responses);
    mw_json_close(j);
    mw_json_close(j);
}

static void mw__openapi_write(mw_json *j, const mw_app *app, const mw__openapi *o, char *const *paths) {
    size_t i, k;
    mw_json_object(j);
    mw_json_key_string(j, "openapi", "3.1.0");
    mw_json_key(j, "info");
    mw_json_object(j);
    mw_json_key_string(j, "title", o->title);
    mw_json_key_string(j, "version", o->version);
    mw_json_close(j);
    mw_json_key(j, "paths");
    mw_json_object(j);
    for (i = 0; i < app->nroutes; i++) {
        for (k = 0; k < i && strcmp(paths[k], paths[i]) != 0; k++) {}
        if (k < i) continue; /* its path was written with an earlier route's */
        mw_json_key(j, paths[i]);
        mw__openapi_path_item(j, app, paths, i);
    }
    mw_json_close(j);
    mw__openapi_components(j, app);
    mw_json_close(j);
}

/* Makes the document into o->doc; 0, or MW_ENOMEM. */
static int mw__openapi_build(const mw_app *app, mw__openapi *o) {
    mw_json *j = mw_json_new();
    char **paths = (char **)MW_MALLOC((app->nroutes + 1) * sizeof *paths);
    mw__buf path;
    const char *text;
    size_t i, len = 0;
    int rc = MW_ENOMEM;
    memset(&path, 0, sizeof path);
    for (i = 0; paths && i < app->nroutes; i++) {
        mw__openapi_path(app->routes[i]->pattern, &path);
        paths[i] = path.data ? mw__strndup(path.data, path.len) : NULL;
        if (!paths[i]) break;
    }
    if (j && paths && i == app->nroutes) {
        mw__openapi_write(j, app, o, paths);
        o->doc.len = 0;
        if ((text = mw_json_text(j, &len)) != NULL && mw__buf_append(&o->doc, text, len) == 0) rc = 0;
    }
    while (paths && i--) MW_FREE(paths[i]);
    MW_FREE(paths);
    mw__buf_free(&path);
    mw_json_free(j);
    return rc;
}

static void mw__openapi_serve(mw_req *rq, mw_res *rs) {
    mw__openapi *o = (mw__openapi *)mw_route_data(rq);
    int rc = 0;
    pthread_mutex_lock(&o->lock);
    if (o->routes_seen != rq->app->nroutes) rc = mw__openapi_build(rq->app, o);
    if (rc == 0) o->routes_seen = rq->app->nroutes, mw_send(rs, 200, "application/json", o->doc.data, o->doc.len);
    else mw_error(rs, 500, "out of memory");
    pthread_mutex_unlock(&o->lock);
}

int mw_openapi(mw_app *app, const char *title, const char *version) {
    mw__openapi *o;
    mw_op op;
    int failed = 0, rc;
    if (!app) return MW_EINVAL;
    if (!title || !version) return app->setup_errors++, MW_EINVAL;
    if (!(o = (mw__openapi *)MW_MALLOC(sizeof *o))) return app->setup_errors++, MW_ENOMEM;
    memset(o, 0, sizeof *o);
    pthread_mutex_init(&o->lock, NULL);
    o->title = mw__copy_optional(title, &failed);
    o->version = mw__copy_optional(version, &failed);
    if (failed || mw__app_add_ext(app, &mw__openapi_ext, o) < 0) {
        mw__openapi_free(o);
        mw__log(&app->log, MW_LOG_ERROR, "mw_openapi: %s", failed ? "out of memory" : "too many extensions");
        return app->setup_errors++, MW_ENOMEM;
    }
    memset(&op, 0, sizeof op);
    op.summary = "This API's OpenAPI document";
    op.responses[0].status = 200;
    op.responses[0].description = "OpenAPI 3.1";
    op.data = o;
    rc = mw_route_op(app, "GET", "/openapi.json", mw__openapi_serve, &op);
    return rc;
}

/* ---------------------------------------------------------------------------
   static files: a folder mounted at a URL prefix. Files are opened beneath the
   folder only, sent by the kernel from the event loop, with validators, ranges and
   precompressed siblings.
   --------------------------------------------------------------------------- */

/* ---- the pure parts: types, dates, entity tags, ranges, codings ---- */

/* The Content-Type for a file name's extension (compared without case), or NULL. */
static const char *mw__builtin_type(const char *ext, size_t n) {
    static const char *const table[] = {
        "html",        "text/html; charset=utf-8",
        "htm",         "text/html; charset=utf-8",
        "css",         "text/css; charset=utf-8",
        "js",          "text/javascript; charset=utf-8", /* RFC 9239 */
        "mjs",         "text/javascript; charset=utf-8",
        "json",        "application/json",
        "map",         "application/json",
        "txt",         "text/plain; charset=utf-8",
        "md",          "text/markdown; charset=utf-8",
        "csv",         "text/csv; charset=utf-8",
        "xml",         "application/xml",
        "svg",         "image/svg+xml",
        "png",         "image/png",
        "jpg",         "image/jpeg",
        "jpeg",        "image/jpeg",
        "gif",         "image/gif",
        "webp",        "image/webp",
        "avif",        "image/avif",
        "ico",         "image/vnd.microsoft.icon",
        "woff",        "font/woff",
        "woff2",       "font/woff2",
        "ttf",         "font/ttf",
        "otf",         "font/otf",
        "wasm",        "application/wasm",
        "pdf",         "application/pdf",
        "webmanifest", "application/manifest+json",
        "mp4",         "video/mp4",
        "webm",        "video/webm",
        "mp3",         "audio/mpeg",
        "ogg",         "audio/ogg",
        "wav",         "audio/wav",
        "zip",         "application/zip",
        "gz",          "application/gzip",
        "br",          "application/octet-stream",
    };
    size_t i;
    for (i = 0; i < sizeof table / sizeof table[0]; i += 2)
        if (mw__ieq(ext, n, table[i])) return table[i + 1];
    return NULL;
}

/* The extension of the last segment of a path ("js" for "a/app.js"), or "". */
static mw_str mw__file_extension(const char *path) {
    const char *base = strrchr(path, '/'), *dot;
    mw_str e = {"", 0};
    base = base ? base + 1 : path;
    dot = strrchr(base, '.');
    if (dot && dot != base) {
        e.ptr = dot + 1;
        e.len = strlen(dot + 1);
    }
    return e;
}

/* Days from 1970-01-01 to a date of the proleptic Gregorian calendar. */
static long long mw__days_from_civil(long long y, int m, int d) {
    long long era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Reads n decimal digits at s[*i] into *out. */
static int mw__read_digits(const char *s, size_t len, size_t *i, int n, int *out) {
    int v = 0, k;
    for (k = 0; k < n; k++, (*i)++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9') return 0;
        v = v * 10 + (s[*i] - '0');
    }
    *out = v;
    return 1;
}

static int mw__read_lit(const char *s, size_t len, size_t *i, const char *lit) {
    size_t n = strlen(lit);
    if (*i + n > len || memcmp(s + *i, lit, n) != 0) return 0;
    *i += n;
    return 1;
}

static int mw__read_month(const char *s, size_t len, size_t *i, int *month) {
    int m;
    if (*i + 3 > len) return 0;
    for (m = 0; m < 12; m++)
        if (memcmp(s + *i, mw__months + m * 3, 3) == 0) break;
    if (m == 12) return 0;
    *i += 3;
    *month = m + 1;
    return 1;
}

static int mw__read_clock(const char *s, size_t len, size_t *i, int *h, int *mi, int *sec) {
    return mw__read_digits(s, len, i, 2, h) && mw__read_lit(s, len, i, ":") && mw__read_digits(s, len, i, 2, mi) &&
           mw__read_lit(s, len, i, ":") && mw__read_digits(s, len, i, 2, sec);
}

/* A two-digit year: the one in this century, unless that is more than 50 years
   ahead, then the century before (RFC 9110 §5.6.7). */
static int mw__rfc850_year(int yy) {
    time_t now = time(NULL);
    struct tm tm;
    int year, y;
    gmtime_r(&now, &tm);
    year = tm.tm_year + 1900;
    y = year / 100 * 100 + yy;
    return y > year + 50 ? y - 100 : y;
}

/* An HTTP-date in any of the three forms a recipient must accept (RFC 9110 §5.6.7):
   IMF-fixdate, the obsolete RFC 850 form (a two-digit year) and asctime's. 1 with the seconds since 1970 in *out. */
static int mw__parse_http_date(const char *s, size_t len, long long *out) {
    const char *comma = (const char *)memchr(s, ',', len);
    size_t i = comma ? (size_t)(comma - s) + 1 : 0;
    int d, mo, y, h, mi, sec;
    if (comma && i == 4) { /* "Sun, 06 Nov 1994 08:49:37 GMT" */
        if (!(mw__read_lit(s, len, &i, " ") && mw__read_digits(s, len, &i, 2, &d) && mw__read_lit(s, len, &i, " ") &&
              mw__read_month(s, len, &i, &mo) && mw__read_lit(s, len, &i, " ") && mw__read_digits(s, len, &i, 4, &y) &&
              mw__read_lit(s, len, &i, " ") && mw__read_clock(s, len, &i, &h, &mi, &sec) &&
              mw__read_lit(s, len, &i, " GMT")))
            return 0;
    } else if (comma) { /* "Sunday, 06-Nov-94 08:49:37 GMT" */
        if (!(mw__read_lit(s, len, &i, " ") && mw__read_digits(s, len, &i, 2, &d) && mw__read_lit(s, len, &i, "-") &&
              mw__read_month(s, len, &i, &mo) && mw__read_lit(s, len, &i, "-") && mw__read_digits(s, len, &i, 2, &y) &&
              mw__read_lit(s, len, &i, " ") && mw__read_clock(s, len, &i, &h, &mi, &sec) &&
              mw__read_lit(s, len, &i, " GMT")))
            return 0;
        y = mw__rfc850_year(y);
    } else { /* "Sun Nov  6 08:49:37 1994" */
        i = 4;
        if (len < 4 || s[3] != ' ' || !mw__read_month(s, len, &i, &mo) || !mw__read_lit(s, len, &i, " ")) return 0;
        if (!(i < len && s[i] == ' ' ? (i++, mw__read_digits(s, len, &i, 1, &d)) : mw__read_digits(s, len, &i, 2, &d)))
            return 0;
        if (!(mw__read_lit(s, len, &i, " ") && mw__read_clock(s, len, &i, &h, &mi, &sec) &&
              mw__read_lit(s, len, &i, " ") && mw__read_digits(s, len, &i, 4, &y)))
            return 0;
    }
    if (i != len || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return 0;
    *out = mw__days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    return 1;
}

/* A strong entity tag from the file's identity, size and modification time: it changes
   whenever the bytes may have. Three hex numbers, quoted. */
#define MW__ETAG_MAX 54
static size_t mw__file_etag(char out[MW__ETAG_MAX], const struct stat *st) {
    char *o = out;
    *o++ = '"';
    o = mw__put_hex(o, (unsigned long long)st->st_ino);
    *o++ = '-';
    o = mw__put_hex(o, (unsigned long long)st->st_size);
    *o++ = '-';
    o = mw__put_hex(o, mw__file_mtime_ns(st));
    *o++ = '"';
    return (size_t)(o - out);
}
/* An entity tag without its weakness indicator, for the weak comparison. */
static mw_str mw__etag_opaque(mw_str tag) {
    if (tag.len >= 2 && tag.ptr[0] == 'W' && tag.ptr[1] == '/') {
        tag.ptr += 2;
        tag.len -= 2;
    }
    return tag;
}

/* If-None-Match (RFC 9110 §13.1.2): "*" or a list of tags, compared weakly. */
static int mw__none_match_hits(const char *list, const char *etag, size_t etag_len) {
    size_t i = 0, n = strlen(list);
    mw_str tag;
    while (mw__next_list_element(list, n, &i, &tag)) {
        if (tag.len == 1 && tag.ptr[0] == '*') return 1;
        tag = mw__etag_opaque(tag);
        if (tag.len == etag_len && memcmp(tag.ptr, etag, etag_len) == 0) return 1;
    }
    return 0;
}

/* If-Range (RFC 9110 §13.1.5): a strong tag equal to the file's, or the date of its
   Last-Modified; anything else sends the whole file. */
static int mw__if_range_holds(const char *v, const char *etag, size_t etag_len, long long mtime) {
    size_t n = strlen(v);
    long long date;
    if (n && v[0] == '"') return n == etag_len && memcmp(v, etag, n) == 0;
    return mw__parse_http_date(v, n, &date) && date == mtime;
}

enum { MW__RANGE_WHOLE, MW__RANGE_PART, MW__RANGE_UNSATISFIABLE };

/* Digits at s[*i]; a value past what a file can be reads as the largest. */
static int mw__read_position(const char *s, size_t n, size_t *i, unsigned long long *out) {
    size_t start = *i;
    unsigned long long v = 0;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
        v = v > (ULLONG_MAX - 9) / 10 ? ULLONG_MAX : v * 10 + (unsigned long long)(s[*i] - '0');
        (*i)++;
    }
    *out = v;
    return *i > start;
}

/* A Range field (RFC 9110 §14.1.2) against a file of size bytes: one range ("a-b",
   "a-", "-n") gives the part in *off and *len; several ranges, another unit or a
   malformed field give the whole file, as a server may answer (§14.2); a range that
   starts past the end, or a suffix of 0, is unsatisfiable. */
static int mw__parse_range(const char *v, unsigned long long size, unsigned long long *off, unsigned long long *len) {
    size_t n = strlen(v), i = 6;
    unsigned long long first = 0, last = 0;
    int has_first, has_last;
    if (n < 7 || !mw__ieq(v, 6, "bytes=")) return MW__RANGE_WHOLE;
    while (i < n && (v[i] == ' ' || v[i] == '\t')) i++;
    has_first = mw__read_position(v, n, &i, &first);
    if (i == n || v[i++] != '-') return MW__RANGE_WHOLE;
    has_last = mw__read_position(v, n, &i, &last);
    if (!has_first && !has_last) return MW__RANGE_WHOLE;
    if (!has_last) last = ULLONG_MAX;
    while (i < n && (v[i] == ' ' || v[i] == '\t')) i++;
    if (i != n || (has_first && last < first)) return MW__RANGE_WHOLE;
    if (!has_first) { /* the last `last` bytes */
        if (last == 0 || size == 0) return MW__RANGE_UNSATISFIABLE;
        first = last >= size ? 0 : size - last;
        last = size - 1;
    }
    if (first >= size) return MW__RANGE_UNSATISFIABLE;
    if (last >= size) last = size - 1;
    *off = first;
    *len = last - first + 1;
    return MW__RANGE_PART;
}

/* Whether a weight (";q=0.5" after a coding) is zero: "q=0", "q=0.0", ... */
static int mw__zero_weight(mw_str params) {
    size_t k = 0;
    while (k < params.len && (params.ptr[k] == ' ' || params.ptr[k] == '\t' || params.ptr[k] == ';')) k++;
    if (k + 1 >= params.len || (params.ptr[k] != 'q' && params.ptr[k] != 'Q') || params.ptr[k + 1] != '=') return 0;
    for (k += 2; k < params.len; k++)
        if (params.ptr[k] >= '1' && params.ptr[k] <= '9') return 0;
    return 1;
}

/* Whether Accept-Encoding (RFC 9110 §12.5.3) takes a coding, by its name or its alias
   (NULL: none): named, or "*", with a weight above 0; a coding named with q=0 is
   refused whatever "*" says. */
static int mw__accepts_coding(const char *ae, const char *coding, const char *alias) {
    size_t i = 0, n = strlen(ae), clen = strlen(coding), alen = alias ? strlen(alias) : 0;
    int star = 0;
    mw_str e;
    while (mw__next_list_element(ae, n, &i, &e)) {
        const char *semi = (const char *)memchr(e.ptr, ';', e.len);
        size_t name_len = semi ? (size_t)(semi - e.ptr) : e.len;
        mw_str params = {semi ? semi : "", semi ? e.len - name_len : 0};
        while (name_len && (e.ptr[name_len - 1] == ' ' || e.ptr[name_len - 1] == '\t')) name_len--;
        if ((name_len == clen && mw__ieq(e.ptr, clen, coding)) ||
            (alias && name_len == alen && mw__ieq(e.ptr, alen, alias)))
            return !mw__zero_weight(params);
        if (name_len == 1 && e.ptr[0] == '*') star = !mw__zero_weight(params);
    }
    return star;
}

/* ---- mounts ---- */

typedef struct mw__mount {
    struct mw__mount *next;
    int root;            /* the folder, opened at mw_static */
    char *cache_control; /* "" when not sent */
    int dotfiles, hard_links;
    const mw_app *app;
} mw__mount;

typedef struct mw__static_state {
    mw__mount *mounts;
    mw__strlist types; /* pairs: extension, Content-Type (mw_static_type) */
} mw__static_state;

static void mw__static_free(void *state) {
    mw__static_state *s = (mw__static_state *)state;
    while (s->mounts) {
        mw__mount *m = s->mounts;
        s->mounts = m->next;
        close(m->root);
        MW_FREE(m->cache_control);
        MW_FREE(m);
    }
    mw__strlist_free(&s->types);
    MW_FREE(s);
}

static const mw__ext mw__static_ext = {NULL, mw__static_free, NULL};

static mw__static_state *mw__static_of(mw_app *app) {
    int i = mw__app_ext_index(app, &mw__static_ext);
    mw__static_state *s;
    if (i >= 0) return (mw__static_state *)app->ext_state[i];
    s = (mw__static_state *)MW_MALLOC(sizeof *s);
    if (!s) return NULL;
    memset(s, 0, sizeof *s);
    if (mw__app_add_ext(app, &mw__static_ext, s) < 0) {
        MW_FREE(s);
        return NULL;
    }
    return s;
}

/* The Content-Type for a file: the app's own mapping, the built-in table, or bytes. */
static const char *mw__static_type(const mw_app *app, const char *path) {
    mw_str ext = mw__file_extension(path);
    int i = mw__app_ext_index(app, &mw__static_ext);
    const char *t;
    if (i >= 0) {
        const mw__strlist *types = &((const mw__static_state *)app->ext_state[i])->types;
        size_t k;
        for (k = types->n; k >= 2; k -= 2) /* the latest mapping of an extension wins */
            if (mw__ieq(ext.ptr, ext.len, types->items[k - 2])) return types->items[k - 1];
    }
    t = mw__builtin_type(ext.ptr, ext.len);
    return t ? t : "application/octet-stream";
}

/* ---- opening a file beneath the folder, and never outside it ---- */

/* One component at a time, none of them followed if it is a symbolic link: the
   caller's path has no "." or ".." segment and does not start with '/', so every step
   stays beneath root. */
static int mw__open_walk(int root, const char *rel, int flags) {
    int dir = root;
    for (;;) {
        const char *slash = strchr(rel, '/');
        char name[256]; /* NAME_MAX on the common systems */
        size_t n = slash ? (size_t)(slash - rel) : strlen(rel);
        int last = !slash || !slash[1], fd = -1, step;
        /* a folder on the way, or a last name followed by '/' ("dir/"), must be a folder */
        step = last ? flags | O_NOFOLLOW : MW__O_SEARCH | O_CLOEXEC | O_NOFOLLOW;
        if (slash) step |= O_DIRECTORY;
        if (n < sizeof name) {
            memcpy(name, rel, n);
            name[n] = '\0';
            fd = openat(dir, n ? name : ".", step);
        } else {
            errno = ENAMETOOLONG;
        }
        if (dir != root) {
            int saved = errno;
            close(dir);
            errno = saved;
        }
        if (fd < 0 || last) return fd;
        dir = fd;
        rel = slash + 1;
    }
}

/* Opens rel ("" is the folder itself) beneath root: openat2 with RESOLVE_BENEATH
   where the kernel has it, so a symlink that stays inside is followed; elsewhere no
   symbolic link is followed at all. */
static int mw__open_beneath(int root, const char *rel, int flags) {
#if MW__HAVE_OPENAT2
    int fd = mw__openat2_beneath(root, *rel ? rel : ".", flags);
    if (fd != -2) return fd;
#endif
    return mw__open_walk(root, rel, flags);
}

/* ---- answering a request for a file ---- */

/* What a name under the folder opened to: a regular file (fd >= 0 and its stat), or
   an HTTP status for why not. */
typedef struct mw__static_file {
    int fd;
    struct stat st;
} mw__static_file;

static int mw__static_open(const mw__mount *m, const char *rel, mw__static_file *f) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer */
    f->fd = mw__open_beneath(m->root, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (f->fd < 0) {
        if (errno == EACCES || errno == EPERM) return 403;
        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) return 503;
        return 404; /* missing, a symlink leading out, a loop, a file where a folder was named */
    }
    if (fstat(f->fd, &f->st) != 0) return 404;
    if (S_ISDIR(f->st.st_mode)) return 301; /* the caller decides: its index, or a redirect */
    /* A hard link inside the folder to a file elsewhere cannot be told from the file's
       own name: only a file with one name is served, unless the mount allows more. */
    if (!S_ISREG(f->st.st_mode) || (f->st.st_nlink > 1 && !m->hard_links)) return 404;
    return 200;
}

static void mw__static_close(mw__static_file *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
}

/* A segment starting with '.' (".env", ".git/config"): hidden unless the mount serves them. */
static int mw__has_dot_name(const char *rel) {
    const char *p = rel;
    for (;;) {
        if (*p == '.') return 1;
        p = strchr(p, '/');
        if (!p) return 0;
        p++;
    }
}

static char *mw__static_join(mw_req *rq, const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *s = (char *)mw_req_alloc(rq, la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

/* "/static/dir" to "/static/dir/", the query kept, as a browser resolves the page's
   relative links against the folder then. */
static void mw__static_redirect_to_folder(mw_req *rq, mw_res *rs) {
    const char *q = mw_query(rq);
    char *to = mw__static_join(rq, mw_path(rq), *q ? "/?" : "/");
    if (to && *q) to = mw__static_join(rq, to, q);
    if (to) mw_redirect(rs, 301, to);
    else mw_error(rs, 503, "out of memory");
}

/* Swaps f for a precompressed sibling (name.br, then name.gz) the client accepts
   ("x-gzip" is gzip: RFC 9110 §8.4.1.3). Returns the Content-Encoding, or NULL when f
   stays. */
static const char *mw__static_sibling(const mw__mount *m, mw_req *rq, const char *name, mw__static_file *f) {
    static const char *const codings[][3] = {{"br", NULL, ".br"}, {"gzip", "x-gzip", ".gz"}};
    const char *ae = mw_header(rq, "Accept-Encoding");
    size_t i;
    for (i = 0; ae && i < sizeof codings / sizeof codings[0]; i++) {
        mw__static_file z;
        char *zname;
        if (!mw__accepts_coding(ae, codings[i][0], codings[i][1])) continue;
        if (!(zname = mw__static_join(rq, name, codings[i][2]))) return NULL;
        if (mw__static_open(m, zname, &z) == 200) {
            mw__static_close(f);
            *f = z;
            return codings[i][0];
        }
        mw__static_close(&z);
    }
    return NULL;
}

/* The headers every answer about the file carries, 304 included (RFC 9110 §15.4.5).
   Vary: which bytes are sent depends on Accept-Encoding wherever a sibling may exist
   (RFC 9110 §12.5.5), so a cache keeps the encodings apart. */
static void mw__static_validators(const mw__mount *m, mw_res *rs, const char *etag, size_t etag_len,
                                  const char *last_modified) {
    mw__add_header_n(rs, "ETag", 4, etag, etag_len);
    mw__add_header_n(rs, "Last-Modified", 13, last_modified, MW__DATE_LEN);
    if (*m->cache_control) mw__add_header(rs, "Cache-Control", m->cache_control);
    mw__add_header_n(rs, "Vary", 4, "Accept-Encoding", 15);
}

/* A field that counts only when sent once: two Range, If-Range or date fields have
   no single meaning (RFC 9110 §5.3), and are taken as absent. */
static const char *mw__header_once(const mw_req *rq, const char *name) {
    size_t i = 0;
    const char *v = mw__header_next(rq, name, &i);
    return v && !mw__header_next(rq, name, &i) ? v : NULL;
}

/* If-None-Match, which may be split over several fields (a list). */
static int mw__none_match_any(const mw_req *rq, const char *etag, size_t etag_len, int *sent) {
    size_t i = 0;
    const char *v;
    *sent = 0;
    while ((v = mw__header_next(rq, "If-None-Match", &i)) != NULL) {
        *sent = 1;
        if (mw__none_match_hits(v, etag, etag_len)) return 1;
    }
    return 0;
}

/* If-Match (RFC 9110 §13.1.1): "*", or a tag equal to the file's in the strong sense. */
static int mw__if_match_holds(const mw_req *rq, const char *etag, size_t etag_len) {
    size_t i = 0;
    const char *v;
    while ((v = mw__header_next(rq, "If-Match", &i)) != NULL) {
        size_t pos = 0, n = strlen(v);
        mw_str tag;
        while (mw__next_list_element(v, n, &pos, &tag))
            if ((tag.len == 1 && tag.ptr[0] == '*') || (tag.len == etag_len && memcmp(tag.ptr, etag, etag_len) == 0))
                return 1;
    }
    return 0;
}

/* The preconditions in RFC 9110 §13.2.2's order: 412 when If-Match (or, without it,
   If-Unmodified-Since) fails; 304 when If-None-Match (or, without it, If-Modified-Since)
   says the client's copy is current; else 0. */
static int mw__static_preconditions(const mw_req *rq, const char *etag, size_t etag_len, long long mtime) {
    const char *date;
    long long t;
    int inm_sent;
    size_t i = 0;
    if (mw__header_next(rq, "If-Match", &i)) {
        if (!mw__if_match_holds(rq, etag, etag_len)) return 412;
    } else if ((date = mw__header_once(rq, "If-Unmodified-Since")) && mw__parse_http_date(date, strlen(date), &t) &&
               mtime > t) {
        return 412;
    }
    if (mw__none_match_any(rq, etag, etag_len, &inm_sent)) return 304;
    if (inm_sent) return 0;
    date = mw__header_once(rq, "If-Modified-Since");
    return date && mw__parse_http_date(date, strlen(date), &t) && mtime <= t ? 304 : 0;
}

/* Sends the opened file: 304, 206, 416 or 200, by the request's conditions. */
static void mw__static_send(const mw__mount *m, mw_req *rq, mw_res *rs, const char *name, mw__static_file *f) {
    const char *ctype = mw__static_type(m->app, name), *coding, *range;
    char etag[MW__ETAG_MAX], last_modified[MW__DATE_LEN + 1], content_range[80];
    unsigned long long size, off = 0, len;
    long long mtime, now = (long long)time(NULL);
    size_t etag_len;
    int part = MW__RANGE_WHOLE, pre;
    coding = mw__static_sibling(m, rq, name, f);
    size = (unsigned long long)f->st.st_size;
    len = size;
    /* a modification time in the future is sent as now (RFC 9110 §8.8.2.1) */
    mtime = (long long)f->st.st_mtime < now ? (long long)f->st.st_mtime : now;
    etag_len = mw__file_etag(etag, &f->st);
    mw__format_http_date(mtime, last_modified);
    if ((pre = mw__static_preconditions(rq, etag, etag_len, mtime)) != 0) {
        mw__static_close(f);
        if (pre == 412) mw_error(rs, 412, "the file does not match If-Match or If-Unmodified-Since");
        else mw_send(rs, 304, NULL, NULL, 0);
        mw__static_validators(m, rs, etag, etag_len, last_modified);
        return;
    }
    range = strcmp(mw_method(rq), "GET") == 0 ? mw__header_once(rq, "Range") : NULL; /* GET only: RFC 9110 §14.2 */
    if (range) {
        const char *if_range = mw__header_once(rq, "If-Range");
        if (!if_range || mw__if_range_holds(if_range, etag, etag_len, mtime))
            part = mw__parse_range(range, size, &off, &len);
    }
    if (part == MW__RANGE_UNSATISFIABLE) {
        mw__static_close(f);
        mw_error(rs, 416, "range not satisfiable");
        mw__add_header_n(rs, "Vary", 4, "Accept-Encoding", 15); /* the size is the chosen sibling's */
        snprintf(content_range, sizeof content_range, "bytes */%llu", size);
    } else {
        if (mw__send_file_trusted(rs, part == MW__RANGE_PART ? 206 : 200, ctype, strlen(ctype), f->fd, off, len) != 0) {
            mw__static_close(f);
            mw_error(rs, 503, "out of memory");
            return;
        }
        f->fd = -1; /* the response closes it */
        if (part == MW__RANGE_PART)
            snprintf(content_range, sizeof content_range, "bytes %llu-%llu/%llu", off, off + len - 1, size);
        if (coding) mw__add_header(rs, "Content-Encoding", coding);
        mw__static_validators(m, rs, etag, etag_len, last_modified);
    }
    mw__add_header_n(rs, "Accept-Ranges", 13, "bytes", 5);
    if (part != MW__RANGE_WHOLE) mw__add_header(rs, "Content-Range", content_range);
    if (!m->app->security_hooked) mw__add_header_n(rs, "X-Content-Type-Options", 22, "nosniff", 7);
}

/* The handler of every mount: the route's data is the mount, the wildcard the name. */
static void mw__static_handler(mw_req *rq, mw_res *rs) {
    const mw__mount *m = (const mw__mount *)mw_route_data(rq);
    const char *rel = mw_param(rq, "path");
    mw__static_file f;
    int status;
    if (!rel) { /* the prefix alone: the folder, named without its '/' */
        mw__static_redirect_to_folder(rq, rs);
        return;
    }
    if (!m->dotfiles && mw__has_dot_name(rel)) {
        mw_error(rs, 404, "no such file");
        return;
    }
    status = mw__static_open(m, rel, &f);
    if (status == 301 && *rel && rel[strlen(rel) - 1] != '/') {
        mw__static_close(&f);
        mw__static_redirect_to_folder(rq, rs);
        return;
    }
    if (status == 301) { /* the folder's index.html; no listings */
        mw__static_close(&f);
        rel = mw__static_join(rq, rel, "index.html");
        status = rel ? mw__static_open(m, rel, &f) : 503;
        if (status == 301) status = 404;
    }
    if (status == 200) {
        mw__static_send(m, rq, rs, rel, &f);
        return;
    }
    mw__static_close(&f);
    if (status == 503) mw__add_header_n(rs, "Retry-After", 11, "1", 1);
    mw_error(rs, status,
             status == 403   ? "permission denied"
             : status == 503 ? "out of file descriptors or memory"
                             : "no such file");
}

int mw_static(mw_app *app, const char *prefix, const char *dir, const mw_static_opts *opts) {
    static const mw_static_opts defaults = {NULL, 0, 0};
    const mw_static_opts *o = opts ? opts : &defaults;
    mw__static_state *s;
    mw__mount *m;
    char *pattern;
    size_t plen;
    int rc;
    if (!app) return MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    plen = prefix ? strlen(prefix) : 0;
    if (!prefix || prefix[0] != '/' || (plen > 1 && prefix[plen - 1] == '/') || strpbrk(prefix, ":{}*<>") || !dir) {
        mw__log(&app->log, MW_LOG_ERROR,
                "mw_static %s: the prefix is \"/\" or plain segments (\"/static\"), "
                "without a trailing '/', and dir a folder",
                prefix ? prefix : "(null)");
        return app->setup_errors++, MW_EINVAL;
    }
    if (o->cache_control && !mw__valid_field_value(o->cache_control)) {
        mw__log(&app->log, MW_LOG_ERROR, "mw_static %s: cache_control holds a control character", prefix);
        return app->setup_errors++, MW_EINVAL;
    }
    if (!(s = mw__static_of(app)) || !(m = (mw__mount *)MW_MALLOC(sizeof *m))) return MW_ENOMEM;
    memset(m, 0, sizeof *m);
    m->app = app;
    m->dotfiles = o->dotfiles;
    m->hard_links = o->hard_links;
    m->root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    m->cache_control = mw__strndup(o->cache_control ? o->cache_control : "no-cache",
                                   strlen(o->cache_control ? o->cache_control : "no-cache"));
    if (m->root < 0) {
        mw__log(&app->log, MW_LOG_ERROR, "mw_static %s: cannot open folder %s: %s", prefix, dir, strerror(errno));
        MW_FREE(m->cache_control);
        MW_FREE(m);
        return app->setup_errors++, MW_EINVAL;
    }
    m->next = s->mounts;
    s->mounts = m;
#if MW__HAVE_OPENAT2
    mw__openat2_probe(m->root);
#endif
    if (!m->cache_control || !(pattern = (char *)MW_MALLOC(plen + 7))) return MW_ENOMEM;
    memcpy(pattern, prefix, plen);
    strcpy(pattern + plen, plen == 1 ? "*path" : "/*path"); /* prefix "/" gives "/" then the wildcard */
    rc = mw_route_with(app, "GET", pattern, mw__static_handler, m);
    if (rc == 0 && plen > 1) rc = mw_route_with(app, "GET", prefix, mw__static_handler, m);
    MW_FREE(pattern);
    return rc;
}

int mw_static_type(mw_app *app, const char *extension, const char *content_type) {
    mw__static_state *s;
    char *p;
    if (!app || !extension || !*extension || strchr(extension, '.') || !content_type ||
        !mw__valid_field_value(content_type))
        return MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    if (!(s = mw__static_of(app))) return MW_ENOMEM;
    if (mw__strlist_add(&s->types, extension, strlen(extension)) != 0 ||
        mw__strlist_add(&s->types, content_type, strlen(content_type)) != 0)
        return MW_ENOMEM;
    for (p = s->types.items[s->types.n - 2]; *p; p++) *p = (char)mw__lower((unsigned char)*p); /* as mw__ieq wants */
    return 0;
}

/* ---------------------------------------------------------------------------
   templates: Mustache (the language's specification, with its inheritance module).
   A template is compiled once into a flat list of nodes and a pool of its text and
   names; rendering walks the nodes with a stack of JSON values (mw_jv) and appends
   to the response body, so it allocates nothing of its own. Partials and parents
   are linked to templates by name before serving; in debug mode files are re-read
   when they change, under a lock that only debug mode takes.
   --------------------------------------------------------------------------- */
#define MW__T_MAX_NEST 64   /* sections open at once in a template */
#define MW__T_MAX_DEPTH 64  /* partials and parents inside each other while rendering */
#define MW__T_MAX_STACK 128 /* values on the context stack */
/* the work one render may do, in steps: a node, an object member a name is looked for
   among, or 16 bytes written. A partial that includes itself twice, sections nested
   over one list, or a long text repeated over a long list would otherwise hold the
   worker and its memory without bound. */
#define MW__T_MAX_STEPS 10000000
#define MW__T_BYTES_PER_STEP 16
#define MW__T_MAX_NESTING 256 /* sections, blocks and partials inside each other: the C stack they take */
#define MW__TEXT_HTML "text/html; charset=utf-8"

enum { MW__T_TEXT, MW__T_VAR, MW__T_RAW, MW__T_SECTION, MW__T_INVERTED, MW__T_PARTIAL, MW__T_PARENT, MW__T_BLOCK };

typedef struct mw__tnode {
    unsigned char op;
    unsigned char standalone;          /* a tag alone on its line: the line's whitespace is its indentation */
    unsigned char bol;                 /* text that begins a line */
    unsigned char warned;              /* debug mode: its missing name was logged */
    uint32_t off, len;                 /* the text, or the tag's name, in the template's pool */
    uint32_t end;                      /* section, inverted, parent, block: the node after its end tag */
    uint32_t indent, indent_len;       /* a standalone partial, parent or block: its indentation in the pool */
    uint32_t intrinsic, intrinsic_len; /* a standalone block: the indentation its content had */
    uint32_t src;                      /* where the tag is in the source, for error messages */
    uint32_t line, col;                /* the same as a line and a column, for debug mode's list of missing names */
    int target;                        /* partial, parent: the template it names, -1 for none (set by linking) */
} mw__tnode;

typedef struct mw__tpl {
    char *name;
    char *path; /* the file it was read from, or NULL */
    unsigned long long mtime_ns;
    long long size;
    mw__buf pool;
    mw__tnode *nodes;
    size_t nnodes, cap;
} mw__tpl;

typedef struct mw__tset {
    mw__tpl *items;
    size_t n, cap;
    pthread_mutex_t lock; /* debug mode: a reload waits for renders, and they for it */
    mw_app *app;
} mw__tset;

static void mw__tpl_clear(mw__tpl *t) {
    mw__buf_free(&t->pool);
    MW_FREE(t->nodes);
    t->nodes = NULL;
    t->nnodes = t->cap = 0;
}

static void mw__tset_free(void *state) {
    mw__tset *s = (mw__tset *)state;
    size_t i;
    for (i = 0; i < s->n; i++) {
        mw__tpl_clear(&s->items[i]);
        MW_FREE(s->items[i].name);
        MW_FREE(s->items[i].path);
    }
    MW_FREE(s->items);
    pthread_mutex_destroy(&s->lock);
    MW_FREE(s);
}

static int mw__tset_check(mw_app *app, void *state);
static const mw__ext mw__templates_ext = {NULL, mw__tset_free, mw__tset_check};

static mw__tset *mw__tset_of(mw_app *app, int create) {
    int i = mw__app_ext_index(app, &mw__templates_ext);
    mw__tset *s;
    if (i >= 0) return (mw__tset *)app->ext_state[i];
    if (!create || !(s = (mw__tset *)MW_MALLOC(sizeof *s))) return NULL;
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->app = app;
    if (mw__app_add_ext(app, &mw__templates_ext, s) < 0) {
        mw__tset_free(s);
        return NULL;
    }
    return s;
}

/* ---- compiling ---- */

typedef struct mw__tparse {
    const char *src;
    size_t len, p;
    char open[16], close[16]; /* the delimiters, "{{" and "}}" until a set-delimiter tag */
    size_t olen, clen;
    mw__tpl *t;
    int text_open;                /* the last node is text with no tag after it: more text joins it */
    size_t pair_at, pair_next;    /* the second tag of a standalone pair, and where its line ends */
    size_t seen, line, col;       /* the line and column of byte `seen` of the source, counted once */
    size_t stack[MW__T_MAX_NEST]; /* open sections, parents and blocks: their nodes */
    int depth;
    const char *problem;
    size_t problem_at;
} mw__tparse;

static int mw__tfail(mw__tparse *ps, size_t at, const char *problem) {
    if (!ps->problem) {
        ps->problem = problem;
        ps->problem_at = at;
    }
    return -1;
}

/* Bytes into the pool; their offset, or -1 when out of memory. */
static long mw__tpool(mw__tparse *ps, const char *s, size_t n) {
    size_t at = ps->t->pool.len;
    if (mw__buf_append(&ps->t->pool, s, n) != 0) return -1;
    return (long)at;
}

static mw__tnode *mw__tnew(mw__tparse *ps, int op, const char *s, size_t n, size_t src_at) {
    mw__tpl *t = ps->t;
    mw__tnode *node;
    long off = mw__tpool(ps, s, n);
    if (off < 0) return NULL;
    if (t->nnodes == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        mw__tnode *nodes = (mw__tnode *)MW_REALLOC(t->nodes, cap * sizeof *nodes);
        if (!nodes) return NULL;
        t->nodes = nodes;
        t->cap = cap;
    }
    node = &t->nodes[t->nnodes++];
    memset(node, 0, sizeof *node);
    node->op = (unsigned char)op;
    node->off = (uint32_t)off;
    node->len = (uint32_t)n;
    node->src = (uint32_t)src_at;
    for (; ps->seen < src_at; ps->seen++) {
        if (ps->src[ps->seen] == '\n') ps->line++, ps->col = 1;
        else ps->col++;
    }
    node->line = (uint32_t)ps->line;
    node->col = (uint32_t)ps->col;
    node->target = -1;
    return node;
}

/* Text joins the text before it when only a comment or the like came between. */
static int mw__ttext(mw__tparse *ps, size_t from, size_t to) {
    mw__tpl *t = ps->t;
    if (from >= to) return 0;
    if (ps->text_open && t->nodes[t->nnodes - 1].off + t->nodes[t->nnodes - 1].len == t->pool.len) {
        if (mw__tpool(ps, ps->src + from, to - from) < 0) return mw__tfail(ps, from, "out of memory");
        t->nodes[t->nnodes - 1].len += (uint32_t)(to - from);
        return 0;
    }
    ps->text_open = 1;
    if (!mw__tnew(ps, MW__T_TEXT, ps->src + from, to - from, from)) return mw__tfail(ps, from, "out of memory");
    t->nodes[t->nnodes - 1].bol = (unsigned char)(from == 0 || ps->src[from - 1] == '\n');
    return 0;
}

static int mw__tspace(char c) { return c == ' ' || c == '\t'; }

static size_t mw__tfind(const mw__tparse *ps, size_t from, const char *what, size_t n) {
    const char *hit = mw__find(ps->src + from, ps->len - from, what, n);
    return hit ? (size_t)(hit - ps->src) : ps->len;
}

/* {{=<% %>=}}: two delimiters without whitespace or '=' in them. */
static int mw__tset_delimiters(mw__tparse *ps, const char *s, size_t n, size_t at) {
    size_t a = 0, b;
    while (a < n && !mw__tspace(s[a])) a++;
    for (b = a; b < n && mw__tspace(s[b]); b++) {}
    if (a == 0 || b == a || b == n || a >= sizeof ps->open || n - b >= sizeof ps->close || memchr(s, '=', n) != NULL ||
        memchr(s + b, ' ', n - b) || memchr(s + b, '\t', n - b))
        return mw__tfail(ps, at, "a set-delimiter tag takes two delimiters, as {{=<% %>=}}");
    memcpy(ps->open, s, a);
    ps->olen = a;
    memcpy(ps->close, s + b, n - b);
    ps->clen = n - b;
    return 0;
}

/* A tag's name: no whitespace inside, not empty. */
static int mw__tname_ok(const char *s, size_t n) {
    size_t i;
    if (!n) return 0;
    for (i = 0; i < n; i++)
        if (mw__tspace(s[i]) || s[i] == '\n' || s[i] == '\r') return 0;
    return 1;
}

static int mw__topen_section(mw__tparse *ps, int op, const char *name, size_t n, size_t at) {
    mw__tnode *node;
    if (ps->depth == MW__T_MAX_NEST) return mw__tfail(ps, at, "sections nested deeper than 64");
    if (!(node = mw__tnew(ps, op, name, n, at))) return mw__tfail(ps, at, "out of memory");
    ps->stack[ps->depth++] = ps->t->nnodes - 1;
    return 0;
}

static int mw__tclose_section(mw__tparse *ps, const char *name, size_t n, size_t at) {
    mw__tnode *open;
    if (!ps->depth) return mw__tfail(ps, at, "an end tag without a section to close");
    open = &ps->t->nodes[ps->stack[ps->depth - 1]];
    if (open->len != n || memcmp(ps->t->pool.data + open->off, name, n) != 0)
        return mw__tfail(ps, at, "this end tag does not close the section opened last");
    open->end = (uint32_t)ps->t->nnodes;
    ps->depth--;
    return 0;
}

/* The tag's kind, from its first byte: '#', '^', '/', '!', '>', '<', '$', '&', '{', '='
   or 0 for a variable. */
static char mw__tkind(char c) { return strchr("#^/!><$&{=", c) && c ? c : 0; }

/* A tag alone on its line (whitespace around it): its line is left out of the output.
   from: where the text before it starts (after the tag before). */
static int mw__tstandalone(const mw__tparse *ps, size_t from, size_t tag, size_t tag_end, size_t *line, size_t *next) {
    size_t i = tag, j = tag_end;
    while (i > from && mw__tspace(ps->src[i - 1])) i--;
    if (i > 0 && ps->src[i - 1] != '\n') return 0;
    while (j < ps->len && mw__tspace(ps->src[j])) j++;
    if (j < ps->len && ps->src[j] == '\r' && j + 1 < ps->len && ps->src[j + 1] == '\n') j++;
    if (j < ps->len && ps->src[j] != '\n') return 0;
    *line = i;
    *next = j < ps->len ? j + 1 : j;
    return 1;
}

/* Where the tag at `tag` ends (after its closing delimiter), its kind, and where its
   content ends; ps->len when it is not closed. */
static size_t mw__ttag_end(const mw__tparse *ps, size_t tag, char *kind, size_t *close_at) {
    size_t in = tag + ps->olen;
    *kind = in < ps->len ? mw__tkind(ps->src[in]) : 0;
    if (*kind == '{' || *kind == '=') { /* "}}}" and "=}}" */
        char end[17];
        end[0] = *kind == '{' ? '}' : '=';
        memcpy(end + 1, ps->close, ps->clen);
        *close_at = mw__tfind(ps, in + 1, end, ps->clen + 1);
        return *close_at >= ps->len ? ps->len : *close_at + ps->clen + 1;
    }
    *close_at = mw__tfind(ps, in + (*kind ? 1 : 0), ps->close, ps->clen); /* after the sigil */
    return *close_at >= ps->len ? ps->len : *close_at + ps->clen;
}

static int mw__topen_is(const mw__tparse *ps, int from_top, int op) {
    return ps->depth > from_top && ps->t->nodes[ps->stack[ps->depth - 1 - from_top]].op == op;
}

/* Inheritance tags side by side ({{<p}}{{/p}}, {{$b}}{{/b}}, {{<p}}{{$b}}, {{/b}}{{/p}})
   alone on their line make it standalone together, as the spec's ~inheritance says. The
   second tag is then taken as standalone too (ps->pair_at); {{$b}}{{/b}} keeps the line's
   end, so an empty block still ends its line. */
static int mw__tpair(mw__tparse *ps, char kind, size_t from, size_t tag, size_t tag_end, size_t *line, size_t *next) {
    size_t close_at, end2;
    char kind2;
    if (tag_end + ps->olen > ps->len || memcmp(ps->src + tag_end, ps->open, ps->olen) != 0) return 0;
    end2 = mw__ttag_end(ps, tag_end, &kind2, &close_at);
    if (end2 >= ps->len && close_at >= ps->len) return 0;
    if (!((kind == '<' && (kind2 == '/' || kind2 == '$')) || (kind == '$' && kind2 == '/') ||
          (kind == '/' && kind2 == '/' && mw__topen_is(ps, 0, MW__T_BLOCK) && mw__topen_is(ps, 1, MW__T_PARENT))))
        return 0;
    if (!mw__tstandalone(ps, from, tag, end2, line, next)) return 0;
    ps->pair_at = tag_end;
    ps->pair_next = *next;
    if (kind == '$' && kind2 == '/' && *next > end2 && ps->src[*next - 1] == '\n')
        ps->pair_next = *next - 1 - (*next - 1 > end2 && ps->src[*next - 2] == '\r');
    *next = tag_end;
    return 1;
}

/* One tag at ps->p (its opening delimiter); from: the start of the text before it. */
static int mw__ttag(mw__tparse *ps, size_t from) {
    size_t tag = ps->p, close_at, tag_end, line = tag, next;
    char kind;
    const char *name;
    size_t n;
    int standalone = 0, rc = 0;
    mw__tnode *node;
    tag_end = mw__ttag_end(ps, tag, &kind, &close_at);
    if (close_at >= ps->len) return mw__tfail(ps, tag, "a tag that is not closed");
    name = ps->src + tag + ps->olen + (kind ? 1 : 0);
    n = (size_t)(ps->src + close_at - name);
    while (n && mw__tspace(*name)) name++, n--;
    while (n && mw__tspace(name[n - 1])) n--;
    next = tag_end;
    if (ps->pair_at == tag && ps->pair_next) {
        standalone = 1;
        next = ps->pair_next;
        ps->pair_next = 0;
    } else if (kind && kind != '&' && kind != '{') {
        standalone =
            mw__tstandalone(ps, from, tag, tag_end, &line, &next) ||
            ((kind == '<' || kind == '$' || kind == '/') && mw__tpair(ps, kind, from, tag, tag_end, &line, &next));
    }
    if (mw__ttext(ps, from, standalone ? line : tag) != 0) return -1;
    ps->p = next;
    if (kind == '!') return 0;
    ps->text_open = 0;
    if (kind == '=') return mw__tset_delimiters(ps, name, n, tag);
    if (!mw__tname_ok(name, n)) return mw__tfail(ps, tag, "a tag without a name, or with a space in its name");
    switch (kind) {
    case '#': rc = mw__topen_section(ps, MW__T_SECTION, name, n, tag); break;
    case '^': rc = mw__topen_section(ps, MW__T_INVERTED, name, n, tag); break;
    case '<': rc = mw__topen_section(ps, MW__T_PARENT, name, n, tag); break;
    case '$': rc = mw__topen_section(ps, MW__T_BLOCK, name, n, tag); break;
    case '/': return mw__tclose_section(ps, name, n, tag);
    case '>':
        if (!mw__tnew(ps, MW__T_PARTIAL, name, n, tag)) return mw__tfail(ps, tag, "out of memory");
        break;
    default: return mw__tnew(ps, kind ? MW__T_RAW : MW__T_VAR, name, n, tag) ? 0 : mw__tfail(ps, tag, "out of memory");
    }
    if (rc) return rc;
    node = &ps->t->nodes[ps->t->nnodes - 1];
    node->standalone = (unsigned char)standalone;
    if (standalone && line < tag) {
        long off = mw__tpool(ps, ps->src + line, tag - line);
        if (off < 0) return mw__tfail(ps, tag, "out of memory");
        node->indent = (uint32_t)off;
        node->indent_len = (uint32_t)(tag - line);
    }
    return 0;
}

/* A standalone block's content loses the indentation its lines share, and the block
   keeps it as its own (the spec's block reindentation): at a standalone block the
   content, its own or a child's, is indented as the block is. Lines are walked as the
   source had them: text after a line end, and standalone tags (their indentation). */
typedef struct mw__tline_walk {
    mw__tpl *t;
    uint32_t first, end;
    const char *common; /* the shared indentation so far; NULL until a line has been seen */
    size_t common_len;
} mw__tline_walk;

static size_t mw__tws(const char *s, size_t n) {
    size_t i = 0;
    while (i < n && mw__tspace(s[i])) i++;
    return i;
}

static void mw__tline_seen(mw__tline_walk *w, const char *ws, size_t n) {
    size_t i = 0;
    if (!w->common) {
        w->common = ws;
        w->common_len = n;
        return;
    }
    while (i < n && i < w->common_len && ws[i] == w->common[i]) i++;
    w->common_len = i;
}

/* strip 0: finds the shared indentation; else removes up to strip bytes of it. */
static void mw__tline_walk_text(mw__tline_walk *w, mw__tnode *node, uint32_t k, size_t strip) {
    char *s = w->t->pool.data + node->off, *o = s;
    size_t i = 0, n = node->len;
    int at_line = node->bol;
    while (i < n) {
        if (at_line) {
            size_t ws = mw__tws(s + i, n - i);
            int blank = i + ws < n ? (s[i + ws] == '\n' || s[i + ws] == '\r') : k + 1 >= w->end;
            if (!strip && !blank) mw__tline_seen(w, s + i, ws);
            if (strip) i += ws < strip ? ws : strip;
            at_line = 0;
            continue;
        }
        at_line = s[i] == '\n';
        *o++ = s[i++];
    }
    if (strip) node->len = (uint32_t)(o - s);
}

static void mw__tlines(mw__tline_walk *w, size_t strip) {
    uint32_t k;
    for (k = w->first; k < w->end; k++) {
        mw__tnode *node = &w->t->nodes[k];
        if (node->op == MW__T_TEXT) {
            mw__tline_walk_text(w, node, k, strip);
        } else if (node->standalone && !strip) {
            mw__tline_seen(w, w->t->pool.data + node->indent, node->indent_len);
        } else if (node->standalone) {
            size_t cut = node->indent_len < strip ? node->indent_len : strip;
            node->indent += (uint32_t)cut;
            node->indent_len -= (uint32_t)cut;
        }
    }
}

static int mw__tdedent_blocks(mw__tpl *t) {
    uint32_t k;
    for (k = 0; k < t->nnodes; k++) {
        mw__tnode *b = &t->nodes[k];
        mw__tline_walk w;
        char indent[256];
        size_t at;
        if (b->op != MW__T_BLOCK || !b->standalone) continue;
        memset(&w, 0, sizeof w);
        w.t = t;
        w.first = k + 1;
        w.end = b->end;
        mw__tlines(&w, 0);
        if (!w.common_len) continue;
        if (w.common_len > sizeof indent) w.common_len = sizeof indent;
        memcpy(indent, w.common, w.common_len);
        at = t->pool.len;
        if (mw__buf_append(&t->pool, indent, w.common_len) != 0) return -1;
        b = &t->nodes[k];
        b->intrinsic = (uint32_t)at;
        b->intrinsic_len = (uint32_t)w.common_len;
        mw__tlines(&w, w.common_len);
    }
    return 0;
}

/* Compiles text into t (emptied first); on a syntax error, 0 is not returned and
   *problem and *at say what and where. */
static int mw__tcompile(mw__tpl *t, const char *src, size_t len, const char **problem, size_t *at) {
    mw__tparse ps;
    memset(&ps, 0, sizeof ps);
    ps.src = src;
    ps.len = len;
    ps.t = t;
    memcpy(ps.open, "{{", 2);
    memcpy(ps.close, "}}", 2);
    ps.olen = ps.clen = 2;
    ps.line = ps.col = 1;
    mw__tpl_clear(t);
    if (len > 0xffffffffu) mw__tfail(&ps, 0, "a template larger than 4 GiB");
    while (!ps.problem && ps.p < len) {
        size_t from = ps.p;
        ps.p = mw__tfind(&ps, from, ps.open, ps.olen);
        if (ps.p >= len) {
            mw__ttext(&ps, from, len);
            break;
        }
        mw__ttag(&ps, from);
    }
    if (!ps.problem && ps.depth) mw__tfail(&ps, t->nodes[ps.stack[ps.depth - 1]].src, "a section that is not closed");
    if (!ps.problem && mw__tdedent_blocks(t) != 0) mw__tfail(&ps, 0, "out of memory");
    *problem = ps.problem;
    *at = ps.problem_at;
    return ps.problem ? -1 : 0;
}

/* "file:line:column" of a byte of the source, for an error line. */
static void mw__tlog_error(mw_app *app, const char *where, const char *src, size_t at, const char *problem) {
    size_t line = 1, col = 1, i;
    for (i = 0; i < at; i++) {
        if (src[i] == '\n') line++, col = 1;
        else col++;
    }
    mw__log(&app->log, MW_LOG_ERROR, "template %s:%zu:%zu: %s", where, line, col, problem);
}

static mw__tpl *mw__tset_find(mw__tset *s, const char *name, size_t n) {
    size_t i;
    for (i = 0; i < s->n; i++)
        if (strlen(s->items[i].name) == n && memcmp(s->items[i].name, name, n) == 0) return &s->items[i];
    return NULL;
}

/* Each partial and parent tag to the template it names; -1 for a name no template has. */
static void mw__tset_link(mw__tset *s) {
    size_t i, k;
    for (i = 0; i < s->n; i++) {
        mw__tpl *t = &s->items[i];
        for (k = 0; k < t->nnodes; k++) {
            mw__tnode *node = &t->nodes[k];
            mw__tpl *to;
            if (node->op != MW__T_PARTIAL && node->op != MW__T_PARENT) continue;
            to = mw__tset_find(s, t->pool.data + node->off, node->len);
            node->target = to ? (int)(to - s->items) : -1;
        }
    }
}

/* Before serving: a partial or parent that names no template is a typo (the spec's
   empty rendering would hide it). */
static int mw__tset_check(mw_app *app, void *state) {
    mw__tset *s = (mw__tset *)state;
    size_t i, k;
    int errors = 0;
    for (i = 0; i < s->n; i++)
        for (k = 0; k < s->items[i].nnodes; k++) {
            const mw__tnode *node = &s->items[i].nodes[k];
            if ((node->op == MW__T_PARTIAL || node->op == MW__T_PARENT) && node->target < 0) {
                mw__log(&app->log, MW_LOG_ERROR, "template %s: no template named \"%.*s\" for its %s",
                        s->items[i].path ? s->items[i].path : s->items[i].name, (int)node->len,
                        s->items[i].pool.data + node->off, node->op == MW__T_PARTIAL ? "partial" : "parent tag");
                errors++;
            }
        }
    return errors;
}

/* Adds or replaces the template called name. */
static int mw__tset_put(mw__tset *s, const char *name, const char *path, const char *src, size_t len) {
    mw__tpl t, *old = mw__tset_find(s, name, strlen(name));
    const char *problem;
    size_t at;
    memset(&t, 0, sizeof t);
    if (mw__tcompile(&t, src, len, &problem, &at) != 0) {
        mw__tlog_error(s->app, path ? path : name, src, at, problem);
        mw__tpl_clear(&t);
        return MW_EINVAL;
    }
    if (old) {
        mw__tpl_clear(old);
        old->pool = t.pool;
        old->nodes = t.nodes;
        old->nnodes = t.nnodes;
        old->cap = t.cap;
    } else {
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 8;
            mw__tpl *items = (mw__tpl *)MW_REALLOC(s->items, cap * sizeof *items);
            if (!items) return mw__tpl_clear(&t), MW_ENOMEM;
            s->items = items;
            s->cap = cap;
        }
        t.name = mw__strndup(name, strlen(name));
        t.path = path ? mw__strndup(path, strlen(path)) : NULL;
        if (!t.name || (path && !t.path)) {
            MW_FREE(t.name);
            MW_FREE(t.path);
            return mw__tpl_clear(&t), MW_ENOMEM;
        }
        s->items[s->n++] = t;
    }
    mw__tset_link(s);
    return 0;
}

int mw_template(mw_app *app, const char *name, const char *text) {
    mw__tset *s;
    int rc;
    if (!app || !name || !text || !name[0]) return app ? (app->setup_errors++, MW_EINVAL) : MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    if (!(s = mw__tset_of(app, 1))) return app->setup_errors++, MW_ENOMEM;
    rc = mw__tset_put(s, name, NULL, text, strlen(text));
    if (rc) app->setup_errors++;
    return rc;
}

/* The whole file at path; NULL when it cannot be read. */
static char *mw__read_file(const char *path, size_t *len, struct stat *st) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *data = NULL;
    size_t got = 0;
    if (fd < 0) return NULL;
    if (fstat(fd, st) == 0 && S_ISREG(st->st_mode) && (data = (char *)MW_MALLOC((size_t)st->st_size + 1)) != NULL) {
        ssize_t n;
        while (got < (size_t)st->st_size && (n = read(fd, data + got, (size_t)st->st_size - got)) > 0) got += (size_t)n;
        data[got] = '\0';
    }
    close(fd);
    *len = got;
    return data;
}

/* Reads and compiles a template file, if it changed since it was read (force: always). */
static int mw__tset_load(mw__tset *s, const char *name, const char *path, int force) {
    struct stat st;
    mw__tpl *t = mw__tset_find(s, name, strlen(name));
    size_t len;
    char *src;
    int rc;
    if (!force && t && stat(path, &st) == 0 && mw__file_mtime_ns(&st) == t->mtime_ns && st.st_size == t->size) return 0;
    if (!(src = mw__read_file(path, &len, &st))) {
        mw__log(&s->app->log, MW_LOG_ERROR, "template %s: cannot read it: %s", path, strerror(errno));
        return MW_EINVAL;
    }
    rc = mw__tset_put(s, name, path, src, len);
    MW_FREE(src);
    if (rc == 0 && (t = mw__tset_find(s, name, strlen(name))) != NULL) {
        t->mtime_ns = mw__file_mtime_ns(&st);
        t->size = (long long)st.st_size;
    }
    return rc;
}

/* Every dir/NAME.html, as the template NAME. */
int mw_templates(mw_app *app, const char *dir) {
    mw__tset *s;
    DIR *d;
    struct dirent *e;
    int rc = 0;
    if (!app || !dir) return app ? (app->setup_errors++, MW_EINVAL) : MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    if (!(s = mw__tset_of(app, 1))) return app->setup_errors++, MW_ENOMEM;
    if (!(d = opendir(dir))) {
        mw__log(&app->log, MW_LOG_ERROR, "mw_templates: cannot open the folder %s: %s", dir, strerror(errno));
        return app->setup_errors++, MW_EINVAL;
    }
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char name[256], path[4096];
        int r;
        if (n <= 5 || n - 5 >= sizeof name || strcmp(e->d_name + n - 5, ".html") != 0 || e->d_name[0] == '.') continue;
        memcpy(name, e->d_name, n - 5);
        name[n - 5] = '\0';
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path) continue;
        if ((r = mw__tset_load(s, name, path, 1)) != 0) {
            app->setup_errors++;
            rc = r;
        }
    }
    closedir(d);
    return rc;
}

/* Debug mode, once per render: files that changed are read again. A file that no
   longer compiles keeps its last good version (the error is logged). */
static void mw__tset_reload(mw__tset *s) {
    size_t i;
    for (i = 0; i < s->n; i++) {
        char name[256], path[4096];
        if (!s->items[i].path) continue;
        snprintf(name, sizeof name, "%s", s->items[i].name);
        snprintf(path, sizeof path, "%s", s->items[i].path);
        mw__tset_load(s, name, path, 0);
    }
}

/* ---- rendering ---- */

typedef struct mw__tframe { /* a parent tag being rendered: its blocks override the parent's */
    const mw__tpl *t;
    uint32_t first, end;
} mw__tframe;

typedef struct mw__trender {
    const mw__tset *set;
    mw__buf *out;
    const mw_jv *stack[MW__T_MAX_STACK];
    int nstack;
    mw__tframe frames[MW__T_MAX_DEPTH];
    int nframes;
    mw_str indent[MW__T_MAX_DEPTH]; /* a standalone partial's or block's lines get these, outermost first */
    int nindent;
    int line_start; /* the next byte starts a line: indentation goes first */
    int depth, nesting;
    long steps;
    int failed; /* MW_ENOMEM, or MW_EINVAL past MW__T_MAX_STEPS: the render stops */
    int debug;  /* the app's debug mode: a missing name is logged */
} mw__trender;

/* Counts work; past MW__T_MAX_STEPS the render stops. */
static void mw__tsteps(mw__trender *r, size_t n) {
    if ((r->steps += (long)n) > MW__T_MAX_STEPS && !r->failed) r->failed = MW_EINVAL;
}

static void mw__tput(mw__trender *r, const char *s, size_t n) {
    mw__tsteps(r, n / MW__T_BYTES_PER_STEP);
    if (n && mw__buf_append(r->out, s, n) != 0) r->failed = MW_ENOMEM;
}

/* A standalone tag's indentation, for the lines inside it. Beyond MW__T_MAX_DEPTH
   levels (partials and blocks together) the lines go without more of it. */
static void mw__tindent_push(mw__trender *r, const char *p, size_t n) {
    if (r->nindent < MW__T_MAX_DEPTH) {
        r->indent[r->nindent].ptr = p;
        r->indent[r->nindent++].len = n;
    }
    r->line_start = 1;
}

static void mw__tindent(mw__trender *r) {
    int i;
    if (!r->line_start) return;
    r->line_start = 0;
    for (i = 0; i < r->nindent; i++) mw__tput(r, r->indent[i].ptr, r->indent[i].len);
}

/* Template text: with indentation, each of its lines gets it. */
static void mw__ttext_out(mw__trender *r, const char *s, size_t n) {
    while (n) {
        const char *nl = r->nindent ? (const char *)memchr(s, '\n', n) : NULL;
        size_t k = nl ? (size_t)(nl - s) + 1 : n;
        mw__tindent(r);
        mw__tput(r, s, k);
        if (nl) r->line_start = 1;
        s += k;
        n -= k;
    }
}

static void mw__tescape(mw__trender *r, const char *s, size_t n) {
    mw__tsteps(r, n / MW__T_BYTES_PER_STEP);
    if (mw__buf_html_escape(r->out, s, n) != 0) r->failed = MW_ENOMEM;
}

static const mw_jv *mw__tmember(const mw_jv *v, const char *name, size_t n) { return mw__jv_getn(v, name, n); }

/* A name on the context stack (the spec's resolution): "." is the top; the first part
   of a dotted name is looked for from the top down, the others inside it. */
static const mw_jv *mw__tlookup(mw__trender *r, const char *name, size_t n) {
    const char *dot = (const char *)memchr(name, '.', n);
    size_t first = dot ? (size_t)(dot - name) : n;
    const mw_jv *v = NULL;
    int i;
    if (n == 1 && name[0] == '.') return r->nstack ? r->stack[r->nstack - 1] : NULL;
    for (i = r->nstack - 1; i >= 0 && !v; i--) {
        mw__tsteps(r, mw_jv_len(r->stack[i])); /* the members looked through */
        v = mw__tmember(r->stack[i], name, first);
    }
    while (v && dot) {
        const char *part = dot + 1;
        dot = (const char *)memchr(part, '.', (size_t)(name + n - part));
        mw__tsteps(r, mw_jv_len(v));
        v = mw__tmember(v, part, dot ? (size_t)(dot - part) : (size_t)(name + n - part));
    }
    return v;
}

/* false, null, "", [] and a missing name are false. */
static int mw__ttruthy(const mw_jv *v) {
    switch (mw_jv_kind(v)) {
    case MW_JV_NULL:
    case MW_JV_FALSE: return 0;
    case MW_JV_STRING:
    case MW_JV_ARRAY: return mw_jv_len(v) > 0;
    default: return 1;
    }
}

/* A value as text: strings, numbers (a fraction as its shortest form), true and false. */
static void mw__tvalue(mw__trender *r, const mw_jv *v, int escape) {
    char tmp[32];
    const char *s = NULL;
    size_t n = 0;
    switch (mw_jv_kind(v)) {
    case MW_JV_STRING: s = mw__jv_bytes(v), n = v->len; break;
    case MW_JV_NUMBER:
        if (v->head & MW__JV_INTEGRAL) s = mw__jv_bytes(v), n = v->len;
        else s = tmp, n = (size_t)mw__format_double(tmp, sizeof tmp, mw_jv_num(v, 0));
        break;
    case MW_JV_TRUE: s = "true", n = 4; break;
    case MW_JV_FALSE: s = "false", n = 5; break;
    default: return;
    }
    if (escape) mw__tescape(r, s, n);
    else mw__tput(r, s, n);
}

static void mw__trender_nodes(mw__trender *r, const mw__tpl *t, uint32_t first, uint32_t end);

static void mw__tpush(mw__trender *r, const mw_jv *v, const mw__tpl *t, const mw__tnode *node, uint32_t i) {
    if (r->nstack == MW__T_MAX_STACK) return;
    r->stack[r->nstack++] = v;
    mw__trender_nodes(r, t, i + 1, node->end);
    r->nstack--;
}

/* The value a tag names. Debug mode logs a name found nowhere, once per tag (renders
   then hold the lock, so the tag may be marked): a typo shows, where the spec's empty
   rendering would hide it. An inverted section's miss is its purpose, not logged. */
static const mw_jv *mw__tvalue_of(mw__trender *r, const mw__tpl *t, const mw__tnode *node) {
    const mw_jv *v = mw__tlookup(r, t->pool.data + node->off, node->len);
    if (!v && r->debug && !node->warned && node->op != MW__T_INVERTED) {
        ((mw__tnode *)(uintptr_t)node)->warned = 1;
        mw__log(&r->set->app->log, MW_LOG_WARN, "template %s:%u:%u: no value named \"%.*s\" (debug mode)",
                t->path ? t->path : t->name, (unsigned)node->line, (unsigned)node->col, (int)node->len,
                t->pool.data + node->off);
    }
    return v;
}

static void mw__tsection(mw__trender *r, const mw__tpl *t, const mw__tnode *node, uint32_t i) {
    const mw_jv *v = mw__tvalue_of(r, t, node), *m;
    int truthy = mw__ttruthy(v);
    if (node->op == MW__T_INVERTED) {
        if (!truthy) mw__trender_nodes(r, t, i + 1, node->end);
        return;
    }
    if (!truthy) return;
    if (mw_jv_kind(v) != MW_JV_ARRAY) {
        mw__tpush(r, v, t, node, i);
        return;
    }
    for (m = mw_jv_first(v); m && !r->failed; m = mw_jv_next(m)) mw__tpush(r, m, t, node, i);
}

/* Another template here (a partial, or a parent with its blocks as frame); standalone,
   its lines are indented as the tag was. */
static void mw__tinclude(mw__trender *r, const mw__tpl *t, const mw__tnode *node, const mw__tframe *frame) {
    const mw__tpl *to = node->target >= 0 ? &r->set->items[node->target] : NULL;
    int nindent = r->nindent, line_start = r->line_start;
    if (!to || r->depth == MW__T_MAX_DEPTH) return;
    if (node->standalone) {
        mw__tindent_push(r, t->pool.data + node->indent, node->indent_len);
    } else {
        mw__tindent(r);
        r->nindent = 0;
    }
    if (frame) r->frames[r->nframes++] = *frame;
    r->depth++;
    mw__trender_nodes(r, to, 0, (uint32_t)to->nnodes);
    r->depth--;
    if (frame) r->nframes--;
    r->nindent = nindent;
    r->line_start = line_start;
}

/* A block: what the outermost parent tag gives for its name, else its own content. */
static void mw__tblock_content(mw__trender *r, const mw__tpl *t, const mw__tnode *node, uint32_t i) {
    int f;
    for (f = 0; f < r->nframes; f++) {
        const mw__tframe *fr = &r->frames[f];
        uint32_t k = fr->first;
        while (k < fr->end) {
            const mw__tnode *b = &fr->t->nodes[k];
            if (b->op == MW__T_BLOCK && b->len == node->len &&
                memcmp(fr->t->pool.data + b->off, t->pool.data + node->off, node->len) == 0) {
                mw__trender_nodes(r, fr->t, k + 1, b->end);
                return;
            }
            k = b->end > k ? b->end : k + 1;
        }
    }
    mw__trender_nodes(r, t, i + 1, node->end);
}

/* A standalone block indents what it shows as its own content was indented. */
static void mw__tblock(mw__trender *r, const mw__tpl *t, const mw__tnode *node, uint32_t i) {
    int nindent = r->nindent, line_start = r->line_start;
    if (!node->standalone) {
        mw__tblock_content(r, t, node, i);
        return;
    }
    mw__tindent_push(r, t->pool.data + (node->intrinsic_len ? node->intrinsic : node->indent),
                     node->intrinsic_len ? node->intrinsic_len : node->indent_len);
    mw__tblock_content(r, t, node, i);
    r->nindent = nindent;
    r->line_start = line_start;
}

static void mw__trender_nodes(mw__trender *r, const mw__tpl *t, uint32_t first, uint32_t end) {
    uint32_t i = first;
    mw__tsteps(r, end - first + 1);
    if (r->nesting == MW__T_MAX_NESTING) return; /* deeper content renders nothing */
    r->nesting++;
    while (i < end && !r->failed) {
        const mw__tnode *node = &t->nodes[i];
        switch (node->op) {
        case MW__T_TEXT: mw__ttext_out(r, t->pool.data + node->off, node->len); break;
        case MW__T_VAR:
        case MW__T_RAW:
            mw__tindent(r);
            mw__tvalue(r, mw__tvalue_of(r, t, node), node->op == MW__T_VAR);
            break;
        case MW__T_SECTION:
        case MW__T_INVERTED: mw__tsection(r, t, node, i); break;
        case MW__T_PARTIAL: mw__tinclude(r, t, node, NULL); break;
        case MW__T_PARENT: {
            mw__tframe fr;
            fr.t = t;
            fr.first = i + 1;
            fr.end = node->end;
            if (r->nframes < MW__T_MAX_DEPTH) mw__tinclude(r, t, node, &fr);
            break;
        }
        case MW__T_BLOCK: mw__tblock(r, t, node, i); break;
        default: break;
        }
        i = node->op >= MW__T_SECTION && node->op != MW__T_PARTIAL ? node->end : i + 1;
    }
    r->nesting--;
}

int mw_render(mw_res *rs, int status, const char *name, const mw_jv *view) {
    mw_app *app = rs && rs->worker ? rs->worker->app : NULL;
    mw__tset *s = app ? mw__tset_of(app, 0) : NULL;
    const mw__tpl *t;
    mw__trender r;
    int rc;
    if (!rs) return MW_EINVAL;
    if (!name || !s) return mw__res_break(rs, MW__WARN_STATUS, "mw_render: no templates (mw_template, mw_templates)");
    if (rs->debug) {
        pthread_mutex_lock(&s->lock);
        mw__tset_reload(s);
    }
    if (!(t = mw__tset_find(s, name, strlen(name)))) {
        rc = mw__res_breakf(rs, MW__WARN_STATUS, "mw_render: no template of that name (\"%.100s\")", name);
    } else if ((rc = mw__res_begin_whole(rs, status, MW__TEXT_HTML, sizeof MW__TEXT_HTML - 1)) == 0) {
        r.set = s;
        r.out = rs->body;
        r.debug = rs->debug;
        r.nstack = r.nframes = r.nindent = r.line_start = r.depth = r.nesting = r.failed = 0;
        r.steps = 0;
        if (view) r.stack[r.nstack++] = view;
        mw__trender_nodes(&r, t, 0, (uint32_t)t->nnodes);
        if (r.failed == MW_EINVAL)
            rc = mw__res_break(rs, MW__WARN_STATUS,
                               "mw_render: the page took more than 10,000,000 steps (a partial that includes "
                               "itself twice, or a view that asks for too much?)");
        else if (r.failed) /* no page cut short with a 200 */
            rc = mw__res_break(rs, MW__WARN_STATUS, "mw_render: out of memory");
    }
    if (rs->debug) pthread_mutex_unlock(&s->lock);
    return rc;
}

int mw_render_json(mw_res *rs, int status, const char *name, mw_json *view) {
    size_t len = 0;
    const char *text = mw_json_text(view, &len);
    mw_jv_doc *doc = text ? mw_jv_parse(text, len, NULL, NULL) : NULL;
    int rc;
    if (!rs) rc = MW_EINVAL;
    else if (!doc)
        rc = mw__res_break(rs, MW__WARN_STATUS, "mw_render_json: no view (out of memory, or a JSON writer error)");
    else rc = mw_render(rs, status, name, mw_jv_root(doc));
    mw_jv_free(doc);
    mw_json_free(view);
    return rc;
}
/* ---------------------------------------------------------------------------
   websocket (RFC 6455): a GET route whose handler answers the opening handshake with
   101; the connection's protocol slot then goes to the frame reader here. Messages
   reach the app's callbacks on the connection's worker, which goes back to the loop
   between events, so an idle socket holds no thread. The app sends from any thread
   through the connection's bounded buffer (as a push stream does), and to named
   groups. When the conversation is over, the connection goes back to HTTP/1.1's
   closing path (our FIN, then drain).
   --------------------------------------------------------------------------- */
#define MW__WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 §1.3 */
#define MW__WS_REASON_MAX 123                              /* a control frame's 125 bytes, less the code */
#define MW__WS_KEEP_BUFFER 65536 /* a message or send buffer larger than this is given back once drained */
#define MW__WS_READ_ROUNDS 16    /* reads per event, so a flood on one connection does not hold the worker */

/* RFC 6455 §5.2. MW_WS_TEXT and MW_WS_BINARY are the data opcodes themselves. */
enum { MW__WS_OP_CONT = 0, MW__WS_OP_CLOSE = 8, MW__WS_OP_PING = 9, MW__WS_OP_PONG = 10 };

/* Where the close handshake is, as the worker sees it. */
enum {
    MW__WS_OPEN,
    MW__WS_CLOSING, /* our close frame is queued; the client's is awaited (MW_WS_CLOSE_TIMEOUT_MS) */
    MW__WS_DONE     /* the handshake is over, or the connection failed: it closes once what waits is sent */
};

/* ---- the pure parts: UTF-8 as it arrives, frame heads, close codes ---- */

/* An incremental UTF-8 check (RFC 3629 §4): a text message is checked as its bytes
   arrive, so a bad byte fails the connection at once, even in the middle of a frame.
   The state is what the next byte must be: how many continuation bytes are due, and
   the range the next one must fall in (which rules out overlong forms, surrogates and
   code points past U+10FFFF). */
typedef struct mw__utf8 {
    unsigned char need, lo, hi;
} mw__utf8;

/* A lead byte: the continuation bytes it announces and the range of the first. */
static int mw__utf8_lead(mw__utf8 *u, unsigned char b) {
    u->lo = 0x80;
    u->hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) u->need = 1;
    else if (b == 0xe0) u->need = 2, u->lo = 0xa0; /* E0 80..9F would be overlong */
    else if (b == 0xed) u->need = 2, u->hi = 0x9f; /* ED A0..BF would be a surrogate */
    else if (b >= 0xe1 && b <= 0xef) u->need = 2;
    else if (b == 0xf0) u->need = 3, u->lo = 0x90; /* F0 80..8F would be overlong */
    else if (b == 0xf4) u->need = 3, u->hi = 0x8f; /* F4 90.. would pass U+10FFFF */
    else if (b >= 0xf1 && b <= 0xf3) u->need = 3;
    else return -1;
    return 0;
}

/* Feeds n bytes; -1 as soon as one cannot continue valid UTF-8. */
static int mw__utf8_feed(mw__utf8 *u, const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char b = p[i];
        if (u->need) {
            if (b < u->lo || b > u->hi) return -1;
            u->need--;
            u->lo = 0x80;
            u->hi = 0xbf;
            i++;
        } else if (b < 0x80) { /* ASCII, eight bytes at a time where it can */
            uint64_t word;
            i++;
            while (i + 8 <= n && (memcpy(&word, p + i, 8), (word & 0x8080808080808080ull) == 0)) i += 8;
        } else if (mw__utf8_lead(u, b) != 0) {
            return -1;
        } else {
            i++;
        }
    }
    return 0;
}

static int mw__utf8_valid(const void *p, size_t n) {
    mw__utf8 u = {0, 0x80, 0xbf};
    return mw__utf8_feed(&u, (const unsigned char *)p, n) == 0 && u.need == 0;
}

/* A server frame's head (RFC 6455 §5.2): FIN, the opcode, the length in 7, 16 or 64
   bits, no mask. Returns its size (at most 10 bytes). */
static size_t mw__ws_frame_head(unsigned char *h, int opcode, unsigned long long len) {
    h[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        h[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xffff) {
        h[1] = 126;
        return 2 + mw__put_be(h + 2, len, 2);
    }
    h[1] = 127;
    return 2 + mw__put_be(h + 2, len, 8);
}

/* A close code a peer may send (RFC 6455 §7.4.1, and IANA's registry up to 1014;
   1004-1006 and 1015 are reserved, never sent). */
static int mw__ws_code_valid(long code) {
    return (code >= 1000 && code <= 1014 && (code < 1004 || code > 1006)) || (code >= 3000 && code <= 4999);
}

/* XORs n bytes with the mask, starting at the mask's byte `phase` (RFC 6455 §5.3),
   eight bytes at a time (the mask twice over): a byte at a time, unmasking was most of
   the server's own work on a 16 KiB message. */
static void mw__ws_unmask(unsigned char *dst, const unsigned char *src, size_t n, const unsigned char mask[4],
                          unsigned long long phase) {
    unsigned char key[8];
    uint64_t word, key_word;
    size_t i;
    for (i = 0; i < 8; i++) key[i] = mask[(phase + i) & 3];
    memcpy(&key_word, key, 8);
    for (i = 0; i + 8 <= n; i += 8) {
        memcpy(&word, src + i, 8);
        word ^= key_word;
        memcpy(dst + i, &word, 8);
    }
    for (; i < n; i++) dst[i] = (unsigned char)(src[i] ^ key[i & 7]);
}

/* The Sec-WebSocket-Accept value for a key (RFC 6455 §4.2.2 item 5.4): base64 of the
   SHA-1 of the key and the GUID; 28 characters and a NUL. */
static void mw__ws_accept_value(const char *key, size_t key_len, char out[29]) {
    char joined[64 + sizeof MW__WS_GUID];
    unsigned char digest[20];
    memcpy(joined, key, key_len);
    memcpy(joined + key_len, MW__WS_GUID, sizeof MW__WS_GUID - 1);
    mw__sha1(joined, key_len + sizeof MW__WS_GUID - 1, digest);
    out[mw__base64_encode(out, digest, sizeof digest, 0)] = '\0';
}

/* ---- endpoints, connections and groups ---- */

typedef struct mw__ws_endpoint {
    mw_ws_opts opts;       /* origins is the endpoint's own copy; subprotocols is not used */
    mw__strlist protocols; /* the subprotocols it speaks, in its order */
    struct mw__ws_hub *hub;
    struct mw__ws_endpoint *next;
} mw__ws_endpoint;

/* A connection's place in a group: on the group's list and on the connection's. */
typedef struct mw__ws_member {
    mw_ws *ws;
    struct mw__ws_group *group;
    struct mw__ws_member *prev, *next; /* in the group */
    struct mw__ws_member *next_of_ws;
} mw__ws_member;

typedef struct mw__ws_group {
    char *name;
    mw__ws_member *first;
    struct mw__ws_group *next;
} mw__ws_group;

/* The app's WebSocket state: its endpoints, and the groups with one lock for all of
   them (taken before a connection's own lock, never after). */
typedef struct mw__ws_hub {
    pthread_mutex_t lock;
    mw__ws_group *groups;
    mw__ws_endpoint *endpoints;
} mw__ws_hub;

/* The frame being read, and the message being put together (the worker's only). */
typedef struct mw__ws_reader {
    int state;                /* MW__WS_OPEN, _CLOSING, _DONE */
    int kind;                 /* the unfinished message's MW_WS_TEXT or _BINARY; 0 between messages */
    int fin;                  /* the current frame ends its message */
    unsigned long long left;  /* payload bytes of the current data frame still to come */
    unsigned long long phase; /* ... and taken so far, for the mask */
    size_t inplace;           /* the frame stays in the read buffer: its head's size; 0: it streams into msg */
    unsigned char mask[4];
    mw__utf8 utf8;
    mw__buf msg;           /* the message so far, when it does not arrive as one frame */
    long long heard_ms;    /* the client's latest bytes */
    long long ping_ms;     /* our ping, unanswered; 0 = none */
    long long closing_end; /* ms: the latest our close frame waits for the client's */
} mw__ws_reader;

struct mw_ws {
    pthread_mutex_t lock; /* the sending side below, and the close code */
    mw_app *app;
    const mw__ws_endpoint *ep;
    mw__conn *conn; /* while the connection is open */
    uintptr_t tag;  /* its tag, for wake-ups */
    mw__buf out;    /* frames the client has not taken yet, from off */
    size_t off, cap;
    int live;    /* the 101 is out: frames may go straight to the socket */
    int closing; /* our close frame is queued: nothing more is sent */
    int gone;    /* the connection is over, or broke while sending */
    int woken;   /* a wake-up is queued for the connection */
    int refs;    /* the connection's, and one per mw_ws_hold */
    int close_code;
    char close_reason[MW__WS_REASON_MAX + 1];
    void *data;
    const char *subprotocol;    /* one of the endpoint's, or NULL */
    mw__ws_member *memberships; /* under the hub's lock */
    mw__ws_reader rd;
};

static void mw__ws_unref(mw_ws *ws) {
    int last;
    pthread_mutex_lock(&ws->lock);
    last = --ws->refs == 0;
    pthread_mutex_unlock(&ws->lock);
    if (!last) return;
    mw__buf_free(&ws->out);
    pthread_mutex_destroy(&ws->lock);
    MW_FREE(ws);
}

/* The connection's worker is needed: to send what waits, or to start closing. Lock held. */
static void mw__ws_wake(mw_ws *ws) {
    if (ws->tag && !ws->woken) ws->woken = mw__wake_tag(ws->app, ws->tag) == 0;
}

/* Sends one frame: straight to the socket when nothing waits before it, else (and what
   the socket does not take) into the buffer, which the worker sends as the socket
   drains. Lock held. */
static int mw__ws_put(mw_ws *ws, int opcode, const void *data, size_t len) {
    unsigned char head[10];
    struct iovec iov[2];
    int direct = ws->live && ws->conn && ws->off == ws->out.len, n = len ? 2 : 1, i = 0;
    iov[0].iov_base = head;
    iov[0].iov_len = mw__ws_frame_head(head, opcode, len);
    iov[1].iov_base = (void *)data;
    iov[1].iov_len = len;
    if (direct && mw__send_iov(ws->conn, iov, n, &i, 0) < 0) {
        ws->gone = 1; /* the worker finds the connection dead and closes it */
        mw__ws_wake(ws);
        return MW_ECLOSED;
    }
    if (i == n) return 0;
    if (mw__queue_iov(&ws->out, &ws->off, iov + i, n - i) != 0) {
        ws->gone = 1; /* part of the frame may be out: the stream cannot go on */
        mw__ws_wake(ws);
        return MW_ENOMEM;
    }
    mw__ws_wake(ws);
    return 0;
}

/* A data frame, unless the buffer already holds more than it may (MW_EAGAIN: the
   client reads slower than the app sends). A frame larger than the buffer still goes
   when nothing waits. Lock held. */
static int mw__ws_put_message(mw_ws *ws, int kind, const void *data, size_t len) {
    if (ws->closing || ws->gone) return MW_ECLOSED;
    if (ws->off < ws->out.len && ws->out.len - ws->off + len + 10 > ws->cap) return MW_EAGAIN;
    return mw__ws_put(ws, kind, data, len);
}

/* Our close frame (RFC 6455 §5.5.1): after it, nothing more is sent. The first close
   frame either side sends is the one on_close reports. Lock held. */
static int mw__ws_put_close(mw_ws *ws, int code, const char *reason, size_t reason_len) {
    unsigned char payload[2 + MW__WS_REASON_MAX];
    int rc;
    if (ws->closing || ws->gone) return MW_ECLOSED;
    ws->closing = 1;
    if (!ws->close_code) {
        ws->close_code = code ? code : 1005;
        memcpy(ws->close_reason, reason, reason_len);
        ws->close_reason[reason_len] = '\0';
    }
    if (!code) return mw__ws_put(ws, MW__WS_OP_CLOSE, NULL, 0);
    mw__put_be(payload, (uint64_t)code, 2);
    memcpy(payload + 2, reason, reason_len);
    rc = mw__ws_put(ws, MW__WS_OP_CLOSE, payload, 2 + reason_len);
    mw__ws_wake(ws); /* the worker starts the close timeout */
    return rc;
}

/* Our close frame, from a thread without the lock. */
static int mw__ws_start_close(mw_ws *ws, int code, const char *reason) {
    int rc;
    pthread_mutex_lock(&ws->lock);
    rc = mw__ws_put_close(ws, code, reason, strlen(reason));
    pthread_mutex_unlock(&ws->lock);
    return rc;
}

/* ---- groups ---- */

static mw__ws_group *mw__ws_group_find(mw__ws_hub *hub, const char *name) {
    mw__ws_group *g;
    for (g = hub->groups; g; g = g->next)
        if (strcmp(g->name, name) == 0) return g;
    return NULL;
}

static mw__ws_group *mw__ws_group_new(mw__ws_hub *hub, const char *name) {
    mw__ws_group *g = (mw__ws_group *)MW_MALLOC(sizeof *g);
    if (!g) return NULL;
    memset(g, 0, sizeof *g);
    if (!(g->name = mw__strndup(name, strlen(name)))) {
        MW_FREE(g);
        return NULL;
    }
    g->next = hub->groups;
    hub->groups = g;
    return g;
}

/* Takes a membership off its group's list; an empty group is dropped. Hub lock held. */
static void mw__ws_member_unlink(mw__ws_hub *hub, mw__ws_member *m) {
    mw__ws_group *g = m->group, **link;
    if (m->prev) m->prev->next = m->next;
    else g->first = m->next;
    if (m->next) m->next->prev = m->prev;
    if (g->first) return;
    for (link = &hub->groups; *link != g; link = &(*link)->next) {}
    *link = g->next;
    MW_FREE(g->name);
    MW_FREE(g);
}

/* A closed connection leaves every group. */
static void mw__ws_leave_all(mw_ws *ws) {
    mw__ws_hub *hub = ws->ep->hub;
    pthread_mutex_lock(&hub->lock);
    while (ws->memberships) {
        mw__ws_member *m = ws->memberships;
        ws->memberships = m->next_of_ws;
        mw__ws_member_unlink(hub, m);
        MW_FREE(m);
    }
    pthread_mutex_unlock(&hub->lock);
}

/* A member that cannot take a broadcast is dropped: a broadcast cannot wait for one
   slow reader, and a chat that skipped messages would mislead. It still gets what it
   had, then close 1008 (the frame goes beyond the buffer's bound, once). Lock held. */
static void mw__ws_drop_slow(mw_ws *ws) {
    static const char why[] = "too slow";
    mw__ws_put_close(ws, 1008, why, sizeof why - 1);
}

/* ---- the connection's worker: sending what waits, reading frames ---- */

/* Sends the 101's rest, then the frames that wait; *closing says whether our close
   frame is among them. MW__OUT_DONE when nothing waits, MW__OUT_BLOCKED, or
   MW__OUT_DEAD. */
static int mw__ws_pump(mw__conn *c, mw_ws *ws, const mw__limits *lim, int *closing) {
    int rc = mw__conn_send_queued(c, lim);
    if (rc <= 0) return rc < 0 ? MW__OUT_DEAD : MW__OUT_BLOCKED;
    pthread_mutex_lock(&ws->lock);
    *closing = ws->closing;
    ws->live = 1;
    ws->woken = 0;
    rc = ws->gone ? -1 : mw__send_queue(c, &ws->out, &ws->off, lim, 0);
    if (ws->off == ws->out.len) {
        if (ws->out.cap > MW__WS_KEEP_BUFFER) mw__buf_free(&ws->out); /* a burst's buffer is given back */
        ws->off = ws->out.len = 0;
    }
    pthread_mutex_unlock(&ws->lock);
    return rc < 0 ? MW__OUT_DEAD : rc == 0 ? MW__OUT_BLOCKED : MW__OUT_DONE;
}

/* Fails the connection (RFC 6455 §7.1.7): our close frame with the code, then the
   close, without waiting for the client's. Returns -1: the frame reader stops. */
static long mw__ws_fail(mw_ws *ws, int code, const char *why) {
    mw__ws_start_close(ws, code, why);
    ws->rd.state = MW__WS_DONE;
    return -1;
}

static void mw__ws_deliver(mw_ws *ws, const char *data, size_t len) {
    if (ws->rd.state == MW__WS_OPEN && ws->ep->opts.on_message) ws->ep->opts.on_message(ws, data, len, ws->rd.kind);
}

/* A close frame from the client (RFC 6455 §5.5.1, §7.4): its code is checked, and
   answered with the same code unless ours went first; either way the handshake is
   then over. */
static long mw__ws_on_close_frame(mw_ws *ws, const unsigned char *p, size_t n) {
    int code = n >= 2 ? p[0] << 8 | p[1] : 0;
    if (n == 1) return mw__ws_fail(ws, 1002, "close frame with a 1-byte payload");
    if (n >= 2 && !mw__ws_code_valid(code)) return mw__ws_fail(ws, 1002, "close code that may not be sent");
    if (n > 2 && !mw__utf8_valid(p + 2, n - 2)) return mw__ws_fail(ws, 1007, "close reason not UTF-8");
    pthread_mutex_lock(&ws->lock);
    if (!ws->close_code) { /* theirs came first: it is the one on_close reports */
        ws->close_code = code ? code : 1005;
        memcpy(ws->close_reason, p + 2 * (n >= 2), n >= 2 ? n - 2 : 0);
        ws->close_reason[n >= 2 ? n - 2 : 0] = '\0';
    }
    mw__ws_put_close(ws, code, "", 0);
    pthread_mutex_unlock(&ws->lock);
    ws->rd.state = MW__WS_DONE;
    return 0;
}

/* A whole control frame, unmasked in place. */
static void mw__ws_on_control(mw_ws *ws, int opcode, unsigned char *p, size_t n) {
    if (opcode == MW__WS_OP_CLOSE) {
        mw__ws_on_close_frame(ws, p, n);
    } else if (opcode == MW__WS_OP_PING && ws->rd.state == MW__WS_OPEN) {
        pthread_mutex_lock(&ws->lock); /* RFC 6455 §5.5.2: a pong with the ping's payload */
        if (!ws->closing && !ws->gone) mw__ws_put(ws, MW__WS_OP_PONG, p, n);
        pthread_mutex_unlock(&ws->lock);
    } /* a pong: the client is alive, which its bytes already showed */
}

/* The current data frame ended; so did its message when it was the last fragment. */
static long mw__ws_frame_end(mw_ws *ws) {
    mw__ws_reader *rd = &ws->rd;
    if (!rd->fin) return 0;
    if (rd->kind == MW_WS_TEXT && rd->utf8.need)
        return mw__ws_fail(ws, 1007, "text message ends inside a UTF-8 sequence");
    mw__ws_deliver(ws, rd->msg.data ? rd->msg.data : "", rd->msg.len);
    rd->kind = 0;
    mw__buf_trim(&rd->msg, MW__WS_KEEP_BUFFER);
    return 0;
}

/* A frame that is its whole message and fits a read buffer: its payload is unmasked
   in place as it arrives (a text's UTF-8 checked as it comes, so a bad byte still
   fails at once), and the message is delivered from the read buffer, without a copy.
   p is the frame's head. Returns the bytes used: 0 until the frame is complete. */
static long mw__ws_inplace(mw_ws *ws, unsigned char *p, size_t avail) {
    mw__ws_reader *rd = &ws->rd;
    unsigned char *data = p + rd->inplace, *fresh = data + rd->phase;
    size_t have = avail - rd->inplace - (size_t)rd->phase, take = have < rd->left ? have : (size_t)rd->left;
    long used;
    mw__ws_unmask(fresh, fresh, take, rd->mask, rd->phase);
    if (rd->kind == MW_WS_TEXT && mw__utf8_feed(&rd->utf8, fresh, take) != 0)
        return mw__ws_fail(ws, 1007, "text message not UTF-8");
    rd->phase += take;
    rd->left -= take;
    if (rd->left) return 0;
    if (rd->kind == MW_WS_TEXT && rd->utf8.need)
        return mw__ws_fail(ws, 1007, "text message ends inside a UTF-8 sequence");
    mw__ws_deliver(ws, (const char *)data, (size_t)rd->phase);
    used = (long)(rd->inplace + (size_t)rd->phase);
    rd->inplace = 0;
    rd->kind = 0;
    return used;
}

/* Takes what has arrived of the current data frame's payload into the message,
   checking a text message's UTF-8 as it comes. Returns the bytes used. */
static long mw__ws_payload(mw_ws *ws, const unsigned char *p, size_t avail) {
    mw__ws_reader *rd = &ws->rd;
    size_t take = avail < rd->left ? avail : (size_t)rd->left;
    unsigned char *dst;
    /* the buffer grows with what arrives, not with what a frame announces */
    if (mw__buf_reserve(&rd->msg, take) != 0) return mw__ws_fail(ws, 1011, "out of memory");
    dst = (unsigned char *)rd->msg.data + rd->msg.len;
    mw__ws_unmask(dst, p, take, rd->mask, rd->phase);
    if (rd->kind == MW_WS_TEXT && mw__utf8_feed(&rd->utf8, dst, take) != 0)
        return mw__ws_fail(ws, 1007, "text message not UTF-8");
    rd->msg.len += take;
    rd->left -= take;
    rd->phase += take;
    if (!rd->left && mw__ws_frame_end(ws) != 0) return -1;
    return (long)take;
}

/* The payload length of a frame whose head is complete: 7 bits, or 16 or 64 more
   (RFC 6455 §5.2), in the fewest bytes; -1 when not. */
static long long mw__ws_payload_len(const unsigned char *p) {
    unsigned long long len = p[1] & 0x7f;
    if (len == 126) {
        len = (unsigned long long)p[2] << 8 | p[3];
        return len < 126 ? -1 : (long long)len;
    }
    if (len == 127) {
        size_t i;
        for (len = 0, i = 2; i < 10; i++) len = len << 8 | p[i];
        return len >> 63 || len <= 0xffff ? -1 : (long long)len;
    }
    return (long long)len;
}

/* Why a frame's first two bytes break the protocol, or NULL (RFC 6455 §5.2, §5.4,
   §5.5, and no extension was agreed, so no reserved bit may be set). */
static const char *mw__ws_head_refusal(const mw__ws_reader *rd, const unsigned char *p) {
    int opcode = p[0] & 0x0f;
    if (p[0] & 0x70) return "reserved bits set without an extension";
    if (!(p[1] & 0x80)) return "client frame not masked";
    if (opcode > MW_WS_BINARY && opcode < MW__WS_OP_CLOSE) return "unknown opcode";
    if (opcode > MW__WS_OP_PONG) return "unknown opcode";
    if (opcode >= MW__WS_OP_CLOSE && !(p[0] & 0x80)) return "fragmented control frame";
    if (opcode >= MW__WS_OP_CLOSE && (p[1] & 0x7f) > 125) return "control frame longer than 125 bytes";
    if (opcode == MW__WS_OP_CONT && !rd->kind) return "continuation frame without a message";
    if ((opcode == MW_WS_TEXT || opcode == MW_WS_BINARY) && rd->kind) return "new message before the last one ended";
    return NULL;
}

/* Reads one frame's head (and a control frame whole, or a data frame that is its whole
   message and has arrived: such a message is unmasked in place and delivered from the
   read buffer, without a copy). Returns the bytes used: 0 when more must arrive. */
static long mw__ws_frame(mw_ws *ws, unsigned char *p, size_t avail, const mw__limits *lim) {
    mw__ws_reader *rd = &ws->rd;
    const char *why;
    int opcode;
    size_t head;
    long long len;
    if (avail < 2) return 0;
    if ((why = mw__ws_head_refusal(rd, p)) != NULL) return mw__ws_fail(ws, 1002, why);
    opcode = p[0] & 0x0f;
    head = 2 + ((p[1] & 0x7f) == 126 ? 2 : (p[1] & 0x7f) == 127 ? 8 : 0) + 4;
    if (avail < head) return 0;
    if ((len = mw__ws_payload_len(p)) < 0) return mw__ws_fail(ws, 1002, "payload length not in its shortest form");
    if (opcode >= MW__WS_OP_CLOSE) {
        if (avail < head + (size_t)len) return 0;
        mw__ws_unmask(p + head, p + head, (size_t)len, p + head - 4, 0);
        mw__ws_on_control(ws, opcode, p + head, (size_t)len);
        return (long)(head + (size_t)len);
    }
    if ((unsigned long long)len + rd->msg.len > (unsigned long long)lim->v[MW_LIMIT_WS_MAX_MESSAGE])
        return mw__ws_fail(ws, 1009, "message larger than MW_WS_MAX_MESSAGE");
    rd->fin = (p[0] & 0x80) != 0;
    memcpy(rd->mask, p + head - 4, 4);
    rd->left = (unsigned long long)len;
    rd->phase = 0;
    if (opcode != MW__WS_OP_CONT) {
        rd->kind = opcode;
        rd->utf8.need = 0;
        rd->msg.len = 0;
        if (rd->fin && head + (size_t)len <= MW__BIG_BUFFER) { /* a whole message the read buffer can hold */
            rd->inplace = head;
            return mw__ws_inplace(ws, p, avail);
        }
    }
    if (!len && mw__ws_frame_end(ws) != 0) return -1;
    return (long)head;
}

/* Reads the frames in the read buffer, as far as they have arrived. */
static void mw__ws_parse(mw__conn *c, mw_ws *ws, const mw__limits *lim) {
    while (ws->rd.state != MW__WS_DONE && c->rstart < c->rlen) {
        unsigned char *p = (unsigned char *)c->rbuf + c->rstart;
        size_t avail = c->rlen - c->rstart;
        long used = ws->rd.inplace ? mw__ws_inplace(ws, p, avail)
                    : ws->rd.left  ? mw__ws_payload(ws, p, avail)
                                   : mw__ws_frame(ws, p, avail, lim);
        if (used <= 0) break;
        c->rstart += (size_t)used;
    }
    if (ws->rd.state == MW__WS_DONE || c->rstart == c->rlen) c->rstart = c->rlen = 0; /* the rest is dropped */
}

/* The read buffer's size for the next read. A frame still unfinished when a read
   filled the buffer gets the larger one: one recv for a 16 KiB message instead of
   five, and no copy when the frame fits (a longer one streams 64 KiB per recv). The
   client has sent a full first buffer by then, so memory follows what arrives. */
static size_t mw__ws_read_size(const mw__conn *c, const mw_ws *ws, int filled) {
    int outgrown = ws->rd.left && (filled || c->rlen == c->rcap);
    return outgrown && c->rcap < MW__BIG_BUFFER ? MW__BIG_BUFFER : c->rcap;
}

/* Reads what the client sent and acts on its frames. 0, or -1 when the client is gone. */
static int mw__ws_read(mw__worker *w, mw__conn *c, mw_ws *ws, long long now) {
    int round;
    for (round = 0; round < MW__WS_READ_ROUNDS && ws->rd.state != MW__WS_DONE; round++) {
        ssize_t n;
        size_t room, cap;
        if (!c->rbuf && mw__conn_resize(w, c, MW_READ_BUFFER_BYTES) != 0) return -1;
        /* the buffer grows, or a frame's head at its end moves to the front */
        cap = mw__ws_read_size(c, ws, round > 0);
        if ((cap != c->rcap || c->rlen == c->rcap) && mw__conn_resize(w, c, cap) != 0) return -1;
        room = c->rcap - c->rlen;
        n = mw__conn_recv(c, c->rbuf + c->rlen, room);
        if (n > 0) {
            c->rlen += (size_t)n;
            ws->rd.heard_ms = now;
            ws->rd.ping_ms = 0;
            mw__ws_parse(c, ws, &w->app->limits);
            if ((size_t)n < room) return 0; /* drained: the poller says when more comes, no recv to hear EAGAIN */
        } else if (n < 0 && errno == EINTR) {
            round--;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return -1;
        }
    }
    return 0;
}

/* ---- the protocol's event function ---- */

/* The connection is over for this protocol: the app hears of it once, the groups let
   go, and nobody sends to the socket any more. What waits moves to the connection's
   own queue, which HTTP/1.1's closing path sends before its FIN. */
static void mw__ws_release(mw__worker *w, mw__conn *c) {
    mw_ws *ws = (mw_ws *)c->proto_state;
    int code;
    char reason[MW__WS_REASON_MAX + 1];
    (void)w;
    pthread_mutex_lock(&ws->lock);
    ws->gone = 1;
    ws->conn = NULL;
    ws->tag = 0;
    if (ws->off < ws->out.len) {
        struct iovec rest;
        rest.iov_base = ws->out.data + ws->off;
        rest.iov_len = ws->out.len - ws->off;
        mw__queue_iov(&c->outq, &c->outq_off, &rest, 1);
    }
    mw__buf_free(&ws->out);
    ws->off = 0;
    code = ws->close_code ? ws->close_code : 1006; /* no close frame either way */
    memcpy(reason, ws->close_reason, sizeof reason);
    pthread_mutex_unlock(&ws->lock);
    mw__ws_leave_all(ws);
    mw__buf_free(&ws->rd.msg);
    c->proto_state = NULL;
    if (ws->ep->opts.on_close) ws->ep->opts.on_close(ws, code, reason);
    mw__ws_unref(ws);
}

/* The close handshake is over, or the connection failed: HTTP/1.1's closing path
   sends what waits, then the FIN, and drains what the client still sends. */
static int mw__ws_finish(mw__worker *w, mw__conn *c) {
    mw__ws_release(w, c);
    c->proto = &mw__http1;
    c->close_after = MW__CLOSE_LINGER;
    return mw__conn_settle(w, c, MW__OUT_DONE);
}

/* When the worker must look at the connection next, with nothing to send: the close
   timeout, or the ping schedule (a ping after MW_WS_PING_MS of silence, then as long
   again for any answer). */
static long long mw__ws_deadline(const mw_ws *ws, const mw__limits *lim) {
    long long ping = lim->v[MW_LIMIT_WS_PING_MS];
    if (ws->rd.state == MW__WS_CLOSING) return ws->rd.closing_end;
    if (!ping) return 0;
    return (ws->rd.ping_ms ? ws->rd.ping_ms : ws->rd.heard_ms) + ping;
}

/* A deadline passed. 0 when the connection must close. */
static int mw__ws_expire(mw__conn *c, mw_ws *ws, const mw__limits *lim, long long now) {
    if (MW__LOAD(&c->phase) == MW__PH_WRITE) { /* a client that stopped reading */
        if (!mw__client_took_bytes(c)) return 0;
        MW__STORE(&c->deadline, now + lim->v[MW_LIMIT_WRITE_TIMEOUT_MS]);
        return 1;
    }
    if (ws->rd.state == MW__WS_CLOSING || ws->rd.ping_ms) return 0; /* no close frame, or no answer, in time */
    if (lim->v[MW_LIMIT_WS_PING_MS] && now >= ws->rd.heard_ms + lim->v[MW_LIMIT_WS_PING_MS]) {
        pthread_mutex_lock(&ws->lock);
        if (!ws->closing && !ws->gone) mw__ws_put(ws, MW__WS_OP_PING, NULL, 0);
        pthread_mutex_unlock(&ws->lock);
        ws->rd.ping_ms = now;
    }
    return 1;
}

/* Arms the connection for what it waits for next. 1, or 0 when it was closed. */
static int mw__ws_settle(mw__worker *w, mw__conn *c, mw_ws *ws, int out) {
    const mw__limits *lim = &w->app->limits;
    if (out == MW__OUT_BLOCKED) {
        if (MW__LOAD(&c->phase) != MW__PH_WRITE)
            mw__set_phase(c, MW__PH_WRITE, mw__now_ms() + lim->v[MW_LIMIT_WRITE_TIMEOUT_MS]);
        c->blocked_unacked = mw__unacked_bytes(c->fd);
        return mw__conn_hand_off(w, c, MW__EV_WRITE);
    }
    if (c->rstart == c->rlen) mw__conn_release_rbuf(w, c); /* an idle WebSocket holds no read buffer */
    mw__set_phase(c, MW__PH_STREAM, mw__ws_deadline(ws, lim));
    return mw__conn_hand_off(w, c, MW__EV_READ);
}

/* Everything that can happen to an open WebSocket: the client's frames, frames the
   app queued from another thread, a deadline, the server stopping. */
static int mw__ws_on_event(mw__worker *w, mw__conn *c, unsigned events) {
    mw_ws *ws = (mw_ws *)c->proto_state;
    const mw__limits *lim = &w->app->limits;
    long long now = mw__now_ms(), dl = MW__LOAD(&c->deadline);
    int out, closing = 0;
    if (MW__LOAD(&w->app->forcing) || c->close_after == MW__CLOSE) { /* the grace period is over, or the 101 failed */
        mw__conn_close(w, c);
        return 0;
    }
    if (MW__LOAD(&w->app->stopping) && !c->saw_stop) {
        c->saw_stop = 1;
        mw__ws_start_close(ws, 1001, "server stopping");
    }
    if ((events & MW__EV_WAKE) && dl && now >= dl && !mw__ws_expire(c, ws, lim, now)) {
        mw__conn_close(w, c);
        return 0;
    }
    mw__ws_parse(c, ws, lim); /* frames that came with the handshake, or before a full buffer */
    if ((events & MW__EV_READ) && mw__ws_read(w, c, ws, now) != 0) {
        mw__conn_close(w, c); /* the client went away, with or without its close frame */
        return 0;
    }
    out = mw__ws_pump(c, ws, lim, &closing);
    if (out == MW__OUT_DEAD) {
        mw__conn_close(w, c);
        return 0;
    }
    if (ws->rd.state == MW__WS_OPEN && closing) { /* the app, a slow broadcast or the stop sent our close */
        ws->rd.state = MW__WS_CLOSING;
        ws->rd.closing_end = now + lim->v[MW_LIMIT_WS_CLOSE_TIMEOUT_MS];
    }
    if (ws->rd.state == MW__WS_DONE) return mw__ws_finish(w, c);
    return mw__ws_settle(w, c, ws, out);
}

static const mw__protocol mw__ws_protocol = {mw__ws_on_event, mw__ws_release};

/* ---- the opening handshake (RFC 6455 §4.2) ---- */

/* Whether a list header (over any number of fields) holds the token, in any case. */
static int mw__header_has_token(const mw_req *rq, const char *name, const char *lower_token) {
    size_t i = 0, pos;
    const char *v;
    mw_str e;
    while ((v = mw__header_next(rq, name, &i)) != NULL)
        for (pos = 0; mw__next_list_element(v, strlen(v), &pos, &e);)
            if (mw__ieq(e.ptr, e.len, lower_token)) return 1;
    return 0;
}

/* A browser's page from another site may open a WebSocket with the user's cookies
   (cross-site WebSocket hijacking), and the browser says which site in Origin. */
static int mw__ws_origin_allowed(const mw__ws_endpoint *ep, const mw_req *rq) {
    const char *origin = mw_header(rq, "Origin"), *list = ep->opts.origins;
    if (list && strcmp(list, "*") == 0) return 1;
    if (!origin || !origin[0]) return !list; /* not a browser: only the default lets it in */
    if (!list) return mw__origin_is(origin, mw__forwarded_scheme(rq), mw_host(rq));
    return mw__origin_listed(list, origin);
}

/* The subprotocol (RFC 6455 §4.2.2 item 5.4): the first the client offers, in its order
   of preference, that the endpoint speaks; NULL when none. */
static const char *mw__ws_choose_subprotocol(const mw__ws_endpoint *ep, const mw_req *rq) {
    const char *v;
    size_t i = 0, pos, k;
    mw_str offered;
    while ((v = mw__header_next(rq, "Sec-WebSocket-Protocol", &i)) != NULL)
        for (pos = 0; mw__next_list_element(v, strlen(v), &pos, &offered);)
            for (k = 0; k < ep->protocols.n; k++)
                if (strlen(ep->protocols.items[k]) == offered.len &&
                    memcmp(ep->protocols.items[k], offered.ptr, offered.len) == 0)
                    return ep->protocols.items[k];
    return NULL;
}

/* Why the request cannot open a WebSocket, with the status to answer; NULL when it can. */
static const char *mw__ws_refusal(const mw__ws_endpoint *ep, mw_req *rq, mw_res *rs, int *status) {
    const char *version = mw_header(rq, "Sec-WebSocket-Version"), *key = mw__header_once(rq, "Sec-WebSocket-Key");
    unsigned char raw[24];
    *status = 400;
    if (strcmp(mw_method(rq), "GET") != 0 || !mw__header_has_token(rq, "Upgrade", "websocket")) {
        *status = 426; /* RFC 9110 §15.5.22: the answer names the protocol to upgrade to */
        mw__add_header(rs, "Upgrade", "websocket");
        mw__add_header(rs, "Connection", "Upgrade");
        return "this path speaks WebSocket: send Upgrade: websocket";
    }
    if (rq->head->minor == 0) return "WebSocket needs HTTP/1.1";
    if (!mw__header_has_token(rq, "Connection", "upgrade")) return "Connection must list upgrade";
    if (!version) return "Sec-WebSocket-Version missing";
    if (strcmp(version, "13") != 0) {
        *status = 426; /* RFC 6455 §4.4: the versions the server speaks */
        mw__add_header(rs, "Sec-WebSocket-Version", "13");
        return "unsupported Sec-WebSocket-Version (this server speaks 13)";
    }
    if (!key || strlen(key) != 24 || mw__base64_decode(raw, key, 24, 0) != 16)
        return "Sec-WebSocket-Key must be sent once, as base64 of 16 bytes";
    if (!mw__ws_origin_allowed(ep, rq)) {
        *status = 403;
        return "Origin not allowed for this WebSocket";
    }
    return NULL;
}

static mw_ws *mw__ws_new(const mw__ws_endpoint *ep, mw_res *rs, const char *subprotocol) {
    mw_ws *ws = (mw_ws *)MW_MALLOC(sizeof *ws);
    if (!ws) return NULL;
    memset(ws, 0, sizeof *ws);
    pthread_mutex_init(&ws->lock, NULL);
    ws->app = rs->worker->app;
    ws->ep = ep;
    ws->conn = rs->conn;
    ws->tag = mw__conn_tag(rs->conn);
    ws->cap = (size_t)ws->app->limits.v[MW_LIMIT_WS_SEND_BUFFER_BYTES];
    ws->refs = 1;
    ws->subprotocol = subprotocol;
    ws->rd.heard_ms = mw__now_ms();
    return ws;
}

/* The route's handler: refuses what cannot be a handshake, else answers 101 and
   opens the WebSocket, whose frames the connection reads from then on. */
static void mw__ws_handshake(mw_req *rq, mw_res *rs) {
    const mw__ws_endpoint *ep = (const mw__ws_endpoint *)rq->route->impl;
    const char *why, *key;
    char accept[29];
    int status;
    const char *sub;
    mw_ws *ws;
    if ((why = mw__ws_refusal(ep, rq, rs, &status)) != NULL) {
        mw_error(rs, status, why);
        return;
    }
    key = mw_header(rq, "Sec-WebSocket-Key");
    sub = mw__ws_choose_subprotocol(ep, rq);
    mw__ws_accept_value(key, 24, accept);
    rs->touched = 1;
    rs->status = 101; /* a status of the server's own, which mw_send refuses */
    mw__add_header(rs, "Upgrade", "websocket");
    mw__add_header(rs, "Connection", "Upgrade");
    mw__add_header(rs, "Sec-WebSocket-Accept", accept);
    if (sub) mw__add_header(rs, "Sec-WebSocket-Protocol", sub);
    if (rs->conn->fd < 0) return; /* the in-process test client sees the answer; no WebSocket opens */
    if (!(ws = mw__ws_new(ep, rs, sub))) {
        mw_error(rs, 503, "out of memory");
        return;
    }
    rs->upgrade = &mw__ws_protocol;
    rs->upgrade_state = ws;
    if (ep->opts.on_open) ep->opts.on_open(ws, rq);
}

/* ---- registering endpoints ---- */

static void mw__ws_hub_free(void *state) {
    mw__ws_hub *hub = (mw__ws_hub *)state;
    while (hub->groups) { /* every connection has left its groups: only one a failed join made is left */
        mw__ws_group *g = hub->groups;
        hub->groups = g->next;
        MW_FREE(g->name);
        MW_FREE(g);
    }
    while (hub->endpoints) {
        mw__ws_endpoint *ep = hub->endpoints;
        hub->endpoints = ep->next;
        mw__strlist_free(&ep->protocols);
        MW_FREE((char *)ep->opts.origins);
        MW_FREE(ep);
    }
    pthread_mutex_destroy(&hub->lock);
    MW_FREE(hub);
}

static const mw__ext mw__ws_ext = {NULL, mw__ws_hub_free, NULL};

static mw__ws_hub *mw__ws_hub_of(mw_app *app, int create) {
    int i = mw__app_ext_index(app, &mw__ws_ext);
    mw__ws_hub *hub;
    if (i >= 0) return (mw__ws_hub *)app->ext_state[i];
    if (!create || !(hub = (mw__ws_hub *)MW_MALLOC(sizeof *hub))) return NULL;
    memset(hub, 0, sizeof *hub);
    pthread_mutex_init(&hub->lock, NULL);
    if (mw__app_add_ext(app, &mw__ws_ext, hub) < 0) {
        mw__ws_hub_free(hub);
        return NULL;
    }
    return hub;
}

/* The endpoint's subprotocols, each a token (RFC 6455 §4.1: Sec-WebSocket-Protocol
   holds tokens). 0, MW_EINVAL or MW_ENOMEM. */
static int mw__ws_set_protocols(mw__ws_endpoint *ep, const char *list) {
    size_t pos = 0, k;
    mw_str p;
    while (list && mw__next_list_element(list, strlen(list), &pos, &p)) {
        for (k = 0; k < p.len; k++)
            if (!mw__is_tchar((unsigned char)p.ptr[k])) return MW_EINVAL;
        if (mw__strlist_add(&ep->protocols, p.ptr, p.len) != 0) return MW_ENOMEM;
    }
    return 0;
}

int mw_websocket(mw_app *app, const char *pattern, const mw_ws_opts *opts) {
    mw__ws_hub *hub;
    mw__ws_endpoint *ep;
    int rc;
    if (!app || !pattern || !opts) return MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    if (!(hub = mw__ws_hub_of(app, 1)) || !(ep = (mw__ws_endpoint *)MW_MALLOC(sizeof *ep))) return MW_ENOMEM;
    memset(ep, 0, sizeof *ep);
    ep->opts = *opts;
    ep->opts.subprotocols = NULL;
    ep->opts.origins = opts->origins ? mw__strndup(opts->origins, strlen(opts->origins)) : NULL;
    ep->hub = hub;
    ep->next = hub->endpoints; /* the hub frees it, whatever happens next */
    hub->endpoints = ep;
    if (opts->origins && !ep->opts.origins) rc = MW_ENOMEM;
    else rc = mw__ws_set_protocols(ep, opts->subprotocols);
    if (rc != 0) {
        mw__log(&app->log, MW_LOG_ERROR, "mw_websocket %s: %s", pattern,
                rc == MW_EINVAL ? "a subprotocol is not a token" : "out of memory");
        return app->setup_errors++, rc;
    }
    rc = mw_route_with(app, "GET", pattern, mw__ws_handshake, opts->data); /* it reports its own errors */
    if (rc == 0) app->routes[app->nroutes - 1]->impl = ep;
    return rc;
}

/* ---- the app's calls ---- */

int mw_ws_send(mw_ws *ws, const void *data, size_t len, int kind) {
    int rc;
    if (!ws || (!data && len) || (kind != MW_WS_TEXT && kind != MW_WS_BINARY)) return MW_EINVAL;
    if (kind == MW_WS_TEXT && !mw__utf8_valid(data, len)) return MW_EINVAL; /* the client would fail the connection */
    pthread_mutex_lock(&ws->lock);
    rc = mw__ws_put_message(ws, kind, data, len);
    pthread_mutex_unlock(&ws->lock);
    return rc;
}

int mw_ws_send_text(mw_ws *ws, const char *text) {
    return text ? mw_ws_send(ws, text, strlen(text), MW_WS_TEXT) : MW_EINVAL;
}

/* RFC 6455 §7.4.1: the codes an endpoint may send (1005, 1006 and 1015 only report). */
int mw_ws_close(mw_ws *ws, int code, const char *reason) {
    size_t n = reason ? strlen(reason) : 0;
    if (!ws || !mw__ws_code_valid(code) || n > MW__WS_REASON_MAX || (n && !mw__utf8_valid(reason, n))) return MW_EINVAL;
    return mw__ws_start_close(ws, code, n ? reason : "");
}

void mw_ws_set_data(mw_ws *ws, void *data) {
    if (ws) ws->data = data;
}
void *mw_ws_data(const mw_ws *ws) { return ws ? ws->data : NULL; }
void *mw_ws_route_data(const mw_ws *ws) { return ws ? ws->ep->opts.data : NULL; }
mw_app *mw_ws_app(const mw_ws *ws) { return ws ? ws->app : NULL; }

const char *mw_ws_subprotocol(const mw_ws *ws) { return ws && ws->subprotocol ? ws->subprotocol : NULL; }

mw_ws *mw_ws_hold(mw_ws *ws) {
    if (!ws) return NULL;
    pthread_mutex_lock(&ws->lock);
    ws->refs++;
    pthread_mutex_unlock(&ws->lock);
    return ws;
}

void mw_ws_release(mw_ws *ws) {
    if (ws) mw__ws_unref(ws);
}

int mw_ws_join(mw_ws *ws, const char *group) {
    mw__ws_hub *hub;
    mw__ws_group *g;
    mw__ws_member *m;
    int rc = 0, gone;
    if (!ws || !group) return MW_EINVAL;
    hub = ws->ep->hub;
    pthread_mutex_lock(&hub->lock);
    pthread_mutex_lock(&ws->lock);
    gone = ws->gone;
    pthread_mutex_unlock(&ws->lock);
    for (m = ws->memberships; m && strcmp(m->group->name, group) != 0;) m = m->next_of_ws;
    if (gone) {
        rc = MW_ECLOSED;
    } else if (!m) {
        g = mw__ws_group_find(hub, group);
        if (!g) g = mw__ws_group_new(hub, group);
        if (!g || !(m = (mw__ws_member *)MW_MALLOC(sizeof *m))) {
            rc = MW_ENOMEM;
        } else {
            m->ws = ws;
            m->group = g;
            m->prev = NULL;
            m->next = g->first;
            if (g->first) g->first->prev = m;
            g->first = m;
            m->next_of_ws = ws->memberships;
            ws->memberships = m;
        }
    }
    pthread_mutex_unlock(&hub->lock);
    return rc;
}

int mw_ws_leave(mw_ws *ws, const char *group) {
    mw__ws_hub *hub;
    mw__ws_member **link;
    if (!ws || !group) return MW_EINVAL;
    hub = ws->ep->hub;
    pthread_mutex_lock(&hub->lock);
    for (link = &ws->memberships; *link && strcmp((*link)->group->name, group) != 0;) link = &(*link)->next_of_ws;
    if (*link) {
        mw__ws_member *m = *link;
        *link = m->next_of_ws;
        mw__ws_member_unlink(hub, m);
        MW_FREE(m);
    }
    pthread_mutex_unlock(&hub->lock);
    return 0;
}

long mw_ws_broadcast(mw_app *app, const char *group, const void *data, size_t len, int kind) {
    mw__ws_hub *hub;
    mw__ws_group *g;
    mw__ws_member *m;
    long reached = 0;
    if (!app || !group || (!data && len) || (kind != MW_WS_TEXT && kind != MW_WS_BINARY)) return MW_EINVAL;
    if (kind == MW_WS_TEXT && !mw__utf8_valid(data, len)) return MW_EINVAL;
    if (!(hub = mw__ws_hub_of(app, 0))) return 0;
    pthread_mutex_lock(&hub->lock);
    for (g = mw__ws_group_find(hub, group), m = g ? g->first : NULL; m; m = m->next) {
        int rc;
        pthread_mutex_lock(&m->ws->lock);
        rc = mw__ws_put_message(m->ws, kind, data, len);
        if (rc == MW_EAGAIN) mw__ws_drop_slow(m->ws);
        pthread_mutex_unlock(&m->ws->lock);
        reached += rc == 0;
    }
    pthread_mutex_unlock(&hub->lock);
    return reached;
}

long mw_ws_group_size(mw_app *app, const char *group) {
    mw__ws_hub *hub;
    mw__ws_group *g;
    mw__ws_member *m;
    long n = 0;
    if (!app || !group) return MW_EINVAL;
    if (!(hub = mw__ws_hub_of(app, 0))) return 0;
    pthread_mutex_lock(&hub->lock);
    for (g = mw__ws_group_find(hub, group), m = g ? g->first : NULL; m; m = m->next) n++;
    pthread_mutex_unlock(&hub->lock);
    return n;
}

/* ---------------------------------------------------------------------------
   docs page: GET /docs, HTML with its style and script inline, that reads
   /openapi.json and shows each operation with a form to try it. It makes no request
   beyond its own origin (no CDN, no font, no image), so it works offline, and its
   Content-Security-Policy allows nothing else: the inline style and script by their
   SHA-256 (CSP Level 3 §8.3), requests to 'self', images from data: only.
   --------------------------------------------------------------------------- */

/* The page, a source line per string: C99 caps one literal at 4095 bytes (§5.2.4.1).
   mw_docs joins them once; the page's script builds every element from the document
   with createElement and text nodes, never markup, so nothing in it runs as HTML. */
static const char *const mw__docs_page[] = {
    "<!doctype html>",
    "<html lang=\"en\">",
    "<head>",
    "<meta charset=\"utf-8\">",
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
    "<meta name=\"referrer\" content=\"no-referrer\">",
    "<title>API docs</title>",
    "<link rel=\"icon\" href=\"data:,\">",
    "<style>",
    ":root {",
    "  --bg: #f6f7f9; --panel: #fff; --text: #1c2128; --muted: #5d6875; --line: #dde2e8; --soft: #eef1f5;",
    "  --accent: #0b62d6; --get: #0b62d6; --post: #13803b; --put: #b35900; --patch: #7a4fd6; --delete: #c9252d;",
    "  --other: #5d6875; --s2: #13803b; --s3: #0b62d6; --s4: #b35900; --s5: #c9252d; --on: #fff;",
    "  --mono: ui-monospace, SFMono-Regular, \"SF Mono\", Menlo, Consolas, \"Liberation Mono\", monospace;",
    "}",
    "@media (prefers-color-scheme: dark) {",
    "  :root {",
    "    --bg: #0f1318; --panel: #171c23; --text: #e2e6eb; --muted: #98a2ae; --line: #2b333d; --soft: #1f262f;",
    "    --accent: #5ea2ff; --get: #5ea2ff; --post: #48c072; --put: #f0a14a; --patch: #b18cff; --delete: #ff6b6b;",
    "    --s2: #48c072; --s3: #5ea2ff; --s4: #f0a14a; --s5: #ff6b6b; --on: #0f1318;",
    "  }",
    "}",
    "* { box-sizing: border-box; }",
    "html { -webkit-text-size-adjust: 100%; }",
    "body {",
    "  margin: 0; background: var(--bg); color: var(--text); font-size: 15px; line-height: 1.5;",
    "  font-family: system-ui, -apple-system, \"Segoe UI\", Roboto, \"Helvetica Neue\", Arial, sans-serif;",
    "}",
    "code, pre, textarea, .mono { font-family: var(--mono); font-size: 13px; }",
    "a { color: var(--accent); text-decoration: none; }",
    "a:hover { text-decoration: underline; }",
    "[hidden] { display: none !important; }",
    ".top {",
    "  display: flex; align-items: center; gap: 12px; height: 56px; padding: 0 28px; background: var(--panel);",
    "  border-bottom: 1px solid var(--line); position: sticky; top: 0; z-index: 2;",
    "}",
    ".top h1 { font-size: 20px; margin: 0; font-weight: 650; letter-spacing: -0.01em; }",
    ".top .spec { margin-left: auto; font-size: 13px; }",
    ".mark {",
    "  width: 28px; height: 28px; border-radius: 7px; background: var(--accent); color: var(--on); display: grid;",
    "  place-items: center; font: 700 13px var(--mono);",
    "}",
    ".chip {",
    "  display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600;",
    "  background: var(--soft); color: var(--muted); border: 1px solid var(--line); white-space: nowrap;",
    "}",
    ".layout { display: grid; grid-template-columns: 270px minmax(0, 1fr); min-height: calc(100vh - 56px); }",
    "nav {",
    "  position: sticky; top: 56px; height: calc(100vh - 56px); overflow: auto; padding: 18px 14px 30px;",
    "  border-right: 1px solid var(--line); background: var(--panel);",
    "}",
    "nav input {",
    "  width: 100%; padding: 7px 10px; border: 1px solid var(--line); border-radius: 8px; background: var(--bg);",
    "  color: var(--text); font: inherit; font-size: 14px;",
    "}",
    "nav h3 {",
    "  margin: 18px 6px 4px; font-size: 11px; text-transform: uppercase; letter-spacing: 0.08em; color: var(--muted);",
    "}",
    "nav ul { list-style: none; margin: 0; padding: 0; }",
    "nav li a {",
    "  display: flex; gap: 8px; align-items: baseline; padding: 4px 6px; border-radius: 6px; color: var(--text);",
    "  font-size: 13px; overflow: hidden;",
    "}",
    "nav li a:hover { background: var(--soft); text-decoration: none; }",
    "nav li a span:last-child {",
    "  overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-family: var(--mono);",
    "}",
    "nav .m { flex: 0 0 46px; font: 700 10px var(--mono); text-align: right; color: var(--c, var(--other)); }",
    "main { padding: 26px 36px 80px; max-width: 1060px; width: 100%; }",
    ".intro { margin-bottom: 26px; }",
    ".intro h2 { font-size: 28px; margin: 0 0 6px; letter-spacing: -0.02em; }",
    ".intro .meta { display: flex; gap: 8px; margin-bottom: 10px; }",
    ".desc { color: var(--text); }",
    ".desc p { margin: 0 0 10px; }",
    ".desc code, td code, .note code { background: var(--soft); padding: 1px 5px; border-radius: 4px; }",
    ".muted { color: var(--muted); }",
    "section.tag { margin: 30px 0 10px; }",
    "section.tag > h2 { font-size: 19px; margin: 0 0 2px; }",
    "section.tag > .desc { color: var(--muted); margin-bottom: 12px; }",
    "details.op {",
    "  background: var(--panel); border: 1px solid var(--line); border-left: 4px solid var(--c, var(--other));",
    "  border-radius: 10px; margin: 10px 0; overflow: hidden; scroll-margin-top: 70px;",
    "}",
    ".m-get { --c: var(--get); } .m-post { --c: var(--post); } .m-put { --c: var(--put); }",
    ".m-patch { --c: var(--patch); } .m-delete { --c: var(--delete); }",
    "details.op > summary {",
    "  display: flex; align-items: center; gap: 14px; padding: 11px 16px; cursor: pointer; list-style: none;",
    "}",
    "details.op > summary::-webkit-details-marker { display: none; }",
    "details.op > summary:hover { background: var(--soft); }",
    "details.op[open] > summary { border-bottom: 1px solid var(--line); background: var(--soft); }",
    "details.op > summary::after {",
    "  content: \"\"; margin-left: auto; width: 8px; height: 8px; flex: none; border: solid var(--muted);",
    "  border-width: 0 2px 2px 0; transform: rotate(45deg); transition: transform 0.15s;",
    "}",
    "details.op[open] > summary::after { transform: rotate(-135deg); }",
    ".badge {",
    "  flex: none; min-width: 66px; text-align: center; padding: 3px 0; border-radius: 6px; color: var(--on);",
    "  background: var(--c, var(--other)); font: 700 12px var(--mono); letter-spacing: 0.03em;",
    "}",
    ".path { font: 600 14px var(--mono); word-break: break-all; }",
    ".path i { font-style: normal; color: var(--c, var(--accent)); }",
    ".sum { color: var(--muted); font-size: 14px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }",
    ".deprecated .path { text-decoration: line-through; }",
    ".body { padding: 14px 20px 20px; }",
    ".body h4 .chip, .body h4 .req { text-transform: none; letter-spacing: 0; }",
    ".body h4 {",
    "  margin: 20px 0 8px; font-size: 12px; text-transform: uppercase; letter-spacing: 0.07em; color: var(--muted);",
    "  display: flex; gap: 8px; align-items: center;",
    "}",
    "table { border-collapse: collapse; width: 100%; font-size: 14px; }",
    "th { text-align: left; font-size: 12px; color: var(--muted); font-weight: 600; padding: 6px 10px; }",
    "td { padding: 8px 10px; border-top: 1px solid var(--line); vertical-align: top; }",
    "td:first-child { width: 28%; }",
    ".req { color: var(--delete); font-size: 11px; font-weight: 700; margin-left: 6px; }",
    ".opt { color: var(--muted); font-size: 11px; margin-left: 6px; }",
    ".type { font: 600 13px var(--mono); color: var(--patch); }",
    ".cons { display: inline-block; margin: 2px 4px 0 0; padding: 0 6px; border-radius: 4px; background: var(--soft);",
    "  font: 12px var(--mono); color: var(--muted); }",
    ".schema { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; background: var(--bg); }",
    ".schema .head { font: 600 13px var(--mono); }",
    "ul.props { list-style: none; margin: 4px 0 0; padding: 0 0 0 14px; border-left: 2px solid var(--line); }",
    "ul.props > li { padding: 5px 0; }",
    ".pname { font: 600 13px var(--mono); }",
    ".fdesc { color: var(--muted); font-size: 13px; }",
    ".resp { display: grid; grid-template-columns: 64px minmax(0, 1fr); gap: 6px 14px; padding: 10px 0;",
    "  border-top: 1px solid var(--line); }",
    ".resp:first-of-type { border-top: 0; }",
    ".resp .chip { margin: 0 0 6px 8px; }",
    ".status {",
    "  font: 700 13px var(--mono); padding: 2px 8px; border-radius: 6px; color: var(--on); background: var(--other);",
    "  justify-self: start; align-self: start;",
    "}",
    ".s2 { background: var(--s2); } .s3 { background: var(--s3); }",
    ".s4 { background: var(--s4); } .s5 { background: var(--s5); }",
    ".try {",
    "  margin-top: 22px; border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px;",
    "  background: var(--bg);",
    "}",
    ".try h4 { margin-top: 0; }",
    ".fields { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 10px 14px; }",
    ".field { display: flex; flex-direction: column; gap: 4px; font-size: 13px; }",
    ".field .fin { color: var(--muted); font-size: 11px; margin-left: 6px; }",
    "input, select, textarea {",
    "  font: inherit; color: var(--text); background: var(--panel); border: 1px solid var(--line); border-radius: 7px;",
    "  padding: 6px 9px;",
    "}",
    "input:focus, select:focus, textarea:focus { outline: 2px solid var(--accent); outline-offset: -1px; }",
    "textarea {",
    "  width: 100%; min-height: 90px; resize: vertical; margin-top: 4px; font: 13px/1.45 var(--mono);",
    "}",
    ".bodylabel { margin: 12px 0 0; font-size: 13px; display: flex; gap: 8px; align-items: center; }",
    ".actions { display: flex; gap: 10px; margin-top: 12px; align-items: center; }",
    "button {",
    "  font: 600 14px/1 system-ui, sans-serif; border-radius: 7px; padding: 9px 16px; cursor: pointer;",
    "  border: 1px solid var(--line); background: var(--panel); color: var(--text);",
    "}",
    "button.send { background: var(--accent); border-color: var(--accent); color: var(--on); }",
    "button:disabled { opacity: 0.6; cursor: wait; }",
    "button.link { border: 0; background: none; color: var(--accent); padding: 2px 4px; font-size: 13px; }",
    ".problem { color: var(--delete); font-size: 13px; }",
    ".result { margin-top: 14px; border-top: 1px solid var(--line); padding-top: 12px; }",
    ".rhead { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }",
    ".rhead code { margin-left: auto; color: var(--muted); word-break: break-all; }",
    ".result h5 {",
    "  margin: 14px 0 6px; font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: 0.07em;",
    "}",
    "pre.out {",
    "  margin: 0; padding: 12px 14px; background: var(--panel); border: 1px solid var(--line); border-radius: 8px;",
    "  overflow: auto; max-height: 420px; white-space: pre-wrap; word-break: break-word;",
    "}",
    ".j-key { color: var(--accent); } .j-str { color: var(--post); }",
    ".j-num { color: var(--put); } .j-lit { color: var(--patch); }",
    "table.headers td { font: 12px var(--mono); padding: 3px 10px; border: 0; }",
    "table.headers td:first-child { color: var(--muted); width: 30%; }",
    "table.errors {",
    "  border: 1px solid var(--s4); border-radius: 8px; border-collapse: separate; border-spacing: 0;",
    "  overflow: hidden; background: var(--panel);",
    "}",
    "table.errors caption { text-align: left; font-weight: 650; color: var(--s4); padding: 0 0 6px; }",
    "table.errors td { border-top: 1px solid var(--line); vertical-align: baseline; }",
    "table.errors tr:first-child td { border-top: 0; }",
    ".loc span { font: 600 13px var(--mono); }",
    ".loc span + span::before { content: \" \\203a  \"; color: var(--muted); font-weight: 400; }",
    ".etype { color: var(--muted); font: 12px var(--mono); }",
    "details.curl { margin-top: 12px; font-size: 13px; }",
    "details.curl summary { cursor: pointer; color: var(--accent); margin-bottom: 6px; }",
    ".loading, .fail { padding: 40px 0; color: var(--muted); }",
    ".fail { color: var(--delete); }",
    ".tools { display: flex; gap: 6px; margin: 14px 0 0; }",
    "@media (max-width: 900px) {",
    "  .layout { grid-template-columns: 1fr; }",
    "  nav { display: none; }",
    "  main { padding: 18px 16px 60px; }",
    "  .sum { display: none; }",
    "}",
    "</style>",
    "</head>",
    "<body>",
    "<header class=\"top\">",
    "<div class=\"mark\">{}</div>",
    "<h1 id=\"title\">API</h1>",
    "<span class=\"chip\" id=\"version\" hidden></span>",
    "<a class=\"spec\" href=\"/openapi.json\">/openapi.json</a>",
    "</header>",
    "<div class=\"layout\">",
    "<nav>",
    "<input id=\"filter\" type=\"search\" placeholder=\"Filter  ( / )\" aria-label=\"Filter\" autocomplete=\"off\">",
    "<div class=\"tools\">",
    "<button class=\"link\" id=\"expand\">Expand all</button>",
    "<button class=\"link\" id=\"collapse\">Collapse all</button>",
    "</div>",
    "<div id=\"toc\"></div>",
    "</nav>",
    "<main id=\"main\"><p class=\"loading\">Loading /openapi.json ...</p></main>",
    "</div>",
    "<script>",
    "'use strict';",
    "const METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options', 'trace'];",
    "let spec = {};",
    "",
    "/* An element with properties and children; strings become text nodes, never markup. */",
    "function h(tag, props, ...kids) {",
    "  const e = document.createElement(tag);",
    "  for (const [k, v] of Object.entries(props || {})) {",
    "    if (v === null || v === undefined || v === false) continue;",
    "    if (k === 'class') e.className = v;",
    "    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);",
    "    else if (k === 'value') e.value = v;",
    "    else e.setAttribute(k, v === true ? '' : String(v));",
    "  }",
    "  return add(e, kids);",
    "}",
    "function add(e, kids) {",
    "  for (const k of kids.flat(9)) if (k !== null && k !== undefined && k !== false) e.append(k);",
    "  return e;",
    "}",
    "function fill(e, ...kids) {",
    "  e.replaceChildren();",
    "  return add(e, kids);",
    "}",
    "const show = (v) => typeof v === 'string' ? v : JSON.stringify(v);",
    "const has = (o, k) => o !== null && typeof o === 'object' && Object.prototype.hasOwnProperty.call(o, k);",
    "const methodClass = (m) => 'm-' + (METHODS.includes(m) ? m : 'other');",
    "",
    "/* Markdown, a little of it: paragraphs, \"- \" lists, `code`, **bold**, [links](http...). */",
    "function md(text) {",
    "  const box = h('div', {class: 'desc'});",
    "  for (const block of String(text).split(/\\n\\s*\\n/)) {",
    "    const lines = block.split('\\n');",
    "    if (lines.every((l) => /^\\s*[-*] /.test(l)))",
    "      box.append(h('ul', null, lines.map((l) => h('li', null, inline(l.replace(/^\\s*[-*] /, ''))))));",
    "    else box.append(h('p', null, inline(block)));",
    "  }",
    "  return box;",
    "}",
    "function inline(text) {",
    "  const out = [];",
    "  const re = /`([^`]+)`|\\*\\*([^*]+)\\*\\*|\\[([^\\]]+)\\]\\(([^)\\s]+)\\)/g;",
    "  let last = 0, m;",
    "  while ((m = re.exec(text))) {",
    "    out.push(text.slice(last, m.index));",
    "    if (m[1]) out.push(h('code', null, m[1]));",
    "    else if (m[2]) out.push(h('strong', null, m[2]));",
    "    else if (/^(https?:|\\/(?!\\/)|#)/.test(m[4])) out.push(h('a', {href: m[4], rel: 'noreferrer'}, m[3]));",
    "    else out.push(m[3]);",
    "    last = re.lastIndex;",
    "  }",
    "  out.push(text.slice(last));",
    "  return out;",
    "}",
    "",
    "/* ---- schemas: $ref into the document, labels, constraints ---- */",
    "function resolve(ref) {",
    "  if (typeof ref !== 'string' || !ref.startsWith('#/')) return null;",
    "  let node = spec;",
    "  for (const part of ref.slice(2).split('/')) {",
    "    const key = decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~');",
    "    if (!has(node, key)) return null;",
    "    node = node[key];",
    "  }",
    "  return node;",
    "}",
    "const refName = (ref) => String(ref).split('/').pop();",
    "",
    "/* The schema behind s (following $ref; allOf merged), its name, and the names on the way. */",
    "function deref(s, seen) {",
    "  seen = seen || [];",
    "  let name = null;",
    "  while (has(s, '$ref')) {",
    "    name = refName(s.$ref);",
    "    if (seen.includes(s.$ref)) return {s: {}, name, seen, cycle: true};",
    "    seen = seen.concat(s.$ref);",
    "    s = resolve(s.$ref) || {};",
    "  }",
    "  if (Array.isArray(s && s.allOf)) s = mergeAll(s, seen);",
    "  return {s: s || {}, name, seen};",
    "}",
    "function mergeAll(s, seen) {",
    "  const out = Object.assign({}, s, {properties: Object.assign({}, s.properties)});",
    "  out.required = (s.required || []).slice();",
    "  delete out.allOf;",
    "  for (const part of s.allOf) {",
    "    const p = deref(part, seen).s;",
    "    Object.assign(out.properties, p.properties);",
    "    out.required.push(...(p.required || []));",
    "    if (!out.type && p.type) out.type = p.type;",
    "  }",
    "  return out;",
    "}",
    "function variants(s) {",
    "  const list = s.anyOf || s.oneOf;",
    "  return Array.isArray(list) ? list : null;",
    "}",
    "const isNull = (v) => deref(v).s.type === 'null';",
    "",
    "function typeLabel(s, seen) {",
    "  const r = deref(s, seen);",
    "  if (r.name) return r.name;",
    "  s = r.s;",
    "  const vs = variants(s);",
    "  if (vs) return vs.map((v) => typeLabel(v, r.seen)).join(' | ');",
    "  if (has(s, 'const')) return show(s.const);",
    "  const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];",
    "  if (!types.length) return Array.isArray(s.enum) ? 'enum' : s.properties ? 'object' : 'any';",
    "  return types.map((t) => t === 'array' ? 'array<' + (s.items ? typeLabel(s.items, r.seen) : 'any') + '>' : t)",
    "    .join(' | ');",
    "}",
    "function range(lo, hi, unit) {",
    "  const u = unit ? ' ' + unit : '';",
    "  if (lo !== undefined && hi !== undefined) return lo === hi ? 'exactly ' + lo + u : lo + '..' + hi + u;",
    "  if (lo !== undefined) return '\\u2265 ' + lo + u;",
    "  if (hi !== undefined) return '\\u2264 ' + hi + u;",
    "  return null;",
    "}",
    "function constraints(s) {",
    "  const c = [];",
    "  c.push(range(s.minLength, s.maxLength, 'chars'), range(s.minItems, s.maxItems, 'items'));",
    "  c.push(range(s.minimum, s.maximum, ''));",
    "  if (has(s, 'exclusiveMinimum')) c.push('> ' + s.exclusiveMinimum);",
    "  if (has(s, 'exclusiveMaximum')) c.push('< ' + s.exclusiveMaximum);",
    "  if (s.multipleOf) c.push('multiple of ' + s.multipleOf);",
    "  if (s.format) c.push(s.format);",
    "  if (s.pattern) c.push('pattern ' + s.pattern);",
    "  if (s.uniqueItems) c.push('unique');",
    "  if (Array.isArray(s.enum)) c.push('one of ' + s.enum.map(show).join(' | '));",
    "  if (has(s, 'default')) c.push('default ' + show(s.default));",
    "  if (s.additionalProperties === false && s.properties) c.push('no other fields');",
    "  if (s.deprecated) c.push('deprecated');",
    "  return c.filter((x) => x).map((x) => h('span', {class: 'cons'}, x.trim()));",
    "}",
    "",
    "/* The fields under s: an object's properties, an array's items, the variants of a union. */",
    "function children(s, seen) {",
    "  const r = deref(s, seen);",
    "  if (r.cycle) return null;",
    "  s = r.s;",
    "  const vs = variants(s);",
    "  if (vs) {",
    "    const real = vs.filter((v) => !isNull(v));",
    "    if (real.length === 1) return children(real[0], r.seen);",
    "    if (!real.some((v) => children(v, r.seen))) return null; /* string | integer says it all */",
    "    return h('ul', {class: 'props'}, real.map((v, i) => field('variant ' + (i + 1), v, null, r.seen)));",
    "  }",
    "  if (s.properties && typeof s.properties === 'object') {",
    "    const req = s.required || [];",
    "    return h('ul', {class: 'props'},",
    "             Object.entries(s.properties).map(([k, v]) => field(k, v, req.includes(k), r.seen)));",
    "  }",
    "  if (s.items) {",
    "    const inner = children(s.items, r.seen);",
    "    return inner && h('ul', {class: 'props'}, field('items', s.items, null, r.seen, inner));",
    "  }",
    "  if (s.additionalProperties && typeof s.additionalProperties === 'object')",
    "    return h('ul', {class: 'props'}, field('*', s.additionalProperties, null, r.seen));",
    "  return null;",
    "}",
    "function field(name, s, required, seen, inner) {",
    "  const r = deref(s, seen);",
    "  const desc = r.s.description || (s && s.description);",
    "  return h('li', null, h('span', {class: 'pname'}, name),",
    "           required === true ? h('span', {class: 'req'}, 'required') : null,",
    "           required === false ? h('span', {class: 'opt'}, 'optional') : null,",
    "           ' ', h('span', {class: 'type'}, typeLabel(s, seen)), ' ', constraints(r.s),",
    "           desc ? h('div', {class: 'fdesc'}, inline(desc)) : null,",
    "           inner === undefined ? children(s, seen) : inner);",
    "}",
    "function schemaBox(s) {",
    "  const r = deref(s);",
    "  return h('div', {class: 'schema'},",
    "           h('div', {class: 'head'}, h('span', {class: 'type'}, typeLabel(s)), ' ', constraints(r.s)),",
    "           r.s.description && r.name ? h('div', {class: 'fdesc'}, inline(r.s.description)) : null,",
    "           children(s));",
    "}",
    "",
    "/* ---- an example value built from a schema, for the request body ---- */",
    "function example(s, seen, depth) {",
    "  const r = deref(s, seen);",
    "  s = r.s;",
    "  if (r.cycle || depth > 8) return null;",
    "  if (has(s, 'example')) return s.example;",
    "  if (Array.isArray(s.examples) && s.examples.length) return s.examples[0];",
    "  if (has(s, 'const')) return s.const;",
    "  if (has(s, 'default')) return s.default;",
    "  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];",
    "  const vs = variants(s);",
    "  if (vs && vs.length) return example(vs.find((v) => !isNull(v)) || vs[0], r.seen, depth + 1);",
    "  const types = Array.isArray(s.type) ? s.type.filter((t) => t !== 'null') : [s.type];",
    "  const t = types[0] || (s.properties ? 'object' : s.items ? 'array' : undefined);",
    "  if (t === 'object') {",
    "    const o = {};",
    "    for (const [k, v] of Object.entries(s.properties || {})) o[k] = example(v, r.seen, depth + 1);",
    "    return o;",
    "  }",
    "  if (t === 'array') {",
    "    const item = example(s.items || {}, r.seen, depth + 1);",
    "    return item === null ? [] : Array(Math.max(1, s.minItems || 1)).fill(item); /* null: a cycle */",
    "  }",
    "  if (t === 'integer' || t === 'number') {",
    "    if (has(s, 'minimum')) return s.minimum;",
    "    if (has(s, 'exclusiveMinimum')) return s.exclusiveMinimum + 1;",
    "    return has(s, 'maximum') ? Math.min(0, s.maximum) : 0;",
    "  }",
    "  if (t === 'boolean') return true;",
    "  if (t === 'string') return sampleString(s);",
    "  return t === 'null' ? null : {};",
    "}",
    "function sampleString(s) {",
    "  const byFormat = {'date-time': '2026-01-01T12:00:00Z', date: '2026-01-01', email: 'user@example.com',",
    "                    uuid: '3fa85f64-5717-4562-b3fc-2c963f66afa6', uri: 'https://example.com/'};",
    "  let v = byFormat[s.format] || 'string';",
    "  while (s.minLength && v.length < s.minLength) v += v;",
    "  return s.maxLength ? v.slice(0, Math.max(s.maxLength, s.minLength || 0)) : v;",
    "}",
    "",
    "/* ---- operations ---- */",
    "function operations() {",
    "  const ops = [];",
    "  for (const [path, item] of Object.entries(spec.paths || {})) {",
    "    for (const method of Object.keys(item || {})) {",
    "      const op = item[method];",
    "      if (!METHODS.includes(method) || !op || typeof op !== 'object') continue;",
    "      const params = new Map();",
    "      for (const p of (item.parameters || []).concat(op.parameters || [])) {",
    "        const q = deref(p).s;",
    "        if (q.name) params.set(q.in + ' ' + q.name, q);",
    "      }",
    "      const id = 'op-' + (op.operationId || method + path).replace(/[^A-Za-z0-9_-]+/g, '-');",
    "      const tags = op.tags && op.tags.length ? op.tags : ['default'];",
    "      ops.push({path, method, op, id, params: [...params.values()], tags});",
    "    }",
    "  }",
    "  return ops;",
    "}",
    "function pathView(path) {",
    "  const parts = path.split(/(\\{[^}]*\\})/);",
    "  return h('span', {class: 'path'}, parts.map((part) => part.startsWith('{') ? h('i', null, part) : part));",
    "}",
    "function operationView(o) {",
    "  const cls = 'op ' + methodClass(o.method) + (o.op.deprecated ? ' deprecated' : '');",
    "  const d = h('details', {class: cls, id: o.id, 'data-method': o.method.toUpperCase(), 'data-path': o.path});",
    "  d.append(h('summary', null, h('span', {class: 'badge'}, o.method.toUpperCase()), pathView(o.path),",
    "             h('span', {class: 'sum'}, o.op.summary || '')));",
    "  d.addEventListener('toggle', () => {",
    "    if (d.open && !d.querySelector('.body')) d.append(operationBody(o));",
    "  });",
    "  return d;",
    "}",
    "function operationBody(o) {",
    "  const op = o.op;",
    "  const body = h('div', {class: 'body'});",
    "  if (op.description) body.append(md(op.description));",
    "  if (op.deprecated) body.append(h('p', {class: 'problem'}, 'Deprecated'));",
    "  if (o.params.length) body.append(h('h4', null, 'Parameters'), parameterTable(o.params));",
    "  const rb = op.requestBody && deref(op.requestBody).s;",
    "  const media = rb && mediaOf(rb.content);",
    "  if (media) {",
    "    body.append(h('h4', null, 'Request body', h('span', {class: 'chip'}, media.type),",
    "                  rb.required ? h('span', {class: 'req'}, 'required') : null));",
    "    if (rb.description) body.append(md(rb.description));",
    "    body.append(schemaBox(media.schema || {}));",
    "  }",
    "  body.append(h('h4', null, 'Responses'), responsesView(op.responses || {}));",
    "  body.append(tryView(o, media));",
    "  return body;",
    "}",
    "function mediaOf(content) {",
    "  if (!content || typeof content !== 'object') return null;",
    "  const types = Object.keys(content);",
    "  const type = types.find((t) => /json/i.test(t)) || types[0];",
    "  return type ? {type, schema: content[type] && content[type].schema} : null;",
    "}",
    "function parameterTable(params) {",
    "  const head = h('tr', null, h('th', null, 'Name'), h('th', null, 'Schema'), h('th', null, 'Description'));",
    "  return h('table', null, head, params.map((p) => {",
    "    const s = p.schema || {};",
    "    return h('tr', {'data-param': p.name},",
    "             h('td', null, h('code', null, p.name), p.required ? h('span', {class: 'req'}, 'required') : null,",
    "               h('div', {class: 'muted'}, p.in)),",
    "             h('td', null, h('span', {class: 'type'}, typeLabel(s)), h('div', null, constraints(deref(s).s))),",
    "             h('td', null, p.description ? inline(p.description) : h('span', {class: 'muted'}, '-')));",
    "  }));",
    "}",
    "function statusClass(code) {",
    "  const c = String(code)[0];",
    "  return 'status' + ('2345'.includes(c) ? ' s' + c : '');",
    "}",
    "function responsesView(responses) {",
    "  const codes = Object.keys(responses).sort();",
    "  if (!codes.length) return h('p', {class: 'muted'}, 'None documented.');",
    "  return h('div', null, codes.map((code) => {",
    "    const r = deref(responses[code]).s;",
    "    const media = mediaOf(r.content);",
    "    const schema = media && media.schema && [h('span', {class: 'chip'}, media.type), schemaBox(media.schema)];",
    "    return h('div', {class: 'resp', 'data-status': code}, h('span', {class: statusClass(code)}, code),",
    "             h('div', null, r.description ? inline(r.description) : '', schema));",
    "  }));",
    "}",
    "",
    "/* ---- try it: a form that sends the request with fetch and shows the answer ---- */",
    "function inputFor(p) {",
    "  const s = deref(p.schema || {}).s;",
    "  const opts = Array.isArray(s.enum) ? s.enum.map(show) : s.type === 'boolean' ? ['true', 'false'] : null;",
    "  const hint = has(s, 'default') ? show(s.default) : typeLabel(p.schema || {});",
    "  if (opts) {",
    "    const sel = h('select', {name: p.name}, h('option', {value: ''}, p.required ? 'choose' : '(none)'),",
    "                  opts.map((v) => h('option', {value: v}, v)));",
    "    sel.value = has(s, 'default') ? show(s.default) : '';",
    "    return sel;",
    "  }",
    "  return h('input', {name: p.name, placeholder: hint, autocomplete: 'off', spellcheck: 'false'});",
    "}",
    "function tryView(o, media) {",
    "  const fields = o.params.filter((p) => ['path', 'query', 'header'].includes(p.in))",
    "    .map((p) => ({p, input: inputFor(p)}));",
    "  let ta = null;",
    "  const exampleText = () => h('pre', null, pretty(example(media.schema || {}, null, 0), '')).textContent;",
    "  if (media) {",
    "    ta = h('textarea', {name: 'body', spellcheck: 'false', 'aria-label': 'Request body'});",
    "    ta.value = /json/i.test(media.type) ? exampleText() : '';",
    "    ta.rows = Math.min(16, Math.max(4, ta.value.split('\\n').length + 1));",
    "  }",
    "  const send = h('button', {type: 'submit', class: 'send', title: 'Ctrl+Enter'}, 'Send');",
    "  const problem = h('span', {class: 'problem'});",
    "  const out = h('div', {class: 'result', hidden: true, 'aria-live': 'polite'});",
    "  const labels = fields.map(({p, input}) => h('label', {class: 'field'},",
    "    h('span', null, h('code', null, p.name), p.required ? h('span', {class: 'req'}, '*') : null,",
    "      h('span', {class: 'fin'}, p.in)), input));",
    "  const reset = ta && /json/i.test(media.type) ? h('button', {type: 'button', class: 'link',",
    "    onclick: () => { ta.value = exampleText(); }}, 'Reset to example') : null;",
    "  const form = h('form', {class: 'try', novalidate: true}, h('h4', null, 'Try it'),",
    "                 labels.length ? h('div', {class: 'fields'}, labels) : null,",
    "                 ta && [h('div', {class: 'bodylabel'}, 'Body', h('span', {class: 'chip'}, media.type), reset),",
    "                        ta],",
    "                 h('div', {class: 'actions'}, send, problem), out);",
    "  form.addEventListener('submit', (e) => {",
    "    e.preventDefault();",
    "    sendRequest(o, fields, ta, media, send, problem, out);",
    "  });",
    "  form.addEventListener('keydown', (e) => { /* Ctrl+Enter (or Cmd+Enter) sends from any field */",
    "    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) form.requestSubmit();",
    "  });",
    "  return form;",
    "}",
    "function baseUrl() {",
    "  const s = spec.servers && spec.servers[0] && spec.servers[0].url;",
    "  return typeof s === 'string' && s.startsWith('/') ? s.replace(/\\/+$/, '') : '';",
    "}",
    "async function sendRequest(o, fields, ta, media, button, problem, out) {",
    "  let path = o.path;",
    "  const query = new URLSearchParams(), headers = {Accept: 'application/json'}, missing = [];",
    "  for (const {p, input} of fields) {",
    "    const v = input.value;",
    "    if (v === '') {",
    "      if (p.required || p.in === 'path') missing.push(p.name);",
    "    } else if (p.in === 'path') path = path.split('{' + p.name + '}').join(encodeURIComponent(v));",
    "    else if (p.in === 'query') query.append(p.name, v);",
    "    else headers[p.name] = v;",
    "  }",
    "  problem.textContent = missing.length ? 'Fill in ' + missing.join(', ') : '';",
    "  if (missing.length) return;",
    "  const url = baseUrl() + path + (query.toString() ? '?' + query : '');",
    "  const init = {method: o.method.toUpperCase(), headers};",
    "  if (ta && ta.value.trim() !== '') {",
    "    init.body = ta.value;",
    "    headers['Content-Type'] = media.type;",
    "  }",
    "  button.disabled = true;",
    "  const t0 = performance.now();",
    "  try {",
    "    const res = await fetch(url, init);",
    "    const text = await res.text();",
    "    showResult(out, init, url, res, text, performance.now() - t0);",
    "  } catch (e) {",
    "    out.hidden = false;",
    "    fill(out, h('p', {class: 'problem'}, 'The request failed: ' + e.message));",
    "  } finally {",
    "    button.disabled = false;",
    "  }",
    "}",
    "/* The request as a curl command line, each word in single quotes for a POSIX shell. */",
    "function curl(init, url) {",
    "  const q = (s) => \"'\" + String(s).split(\"'\").join(\"'\\\\''\") + \"'\";",
    "  const words = ['curl', '-X', init.method, q(location.origin + url)];",
    "  for (const [k, v] of Object.entries(init.headers)) words.push('-H', q(k + ': ' + v));",
    "  if (init.body !== undefined) words.push('--data-raw', q(init.body));",
    "  return words.join(' ');",
    "}",
    "function showResult(out, init, url, res, text, ms) {",
    "  let json;",
    "  try { json = JSON.parse(text); } catch (e) { json = undefined; }",
    "  const headers = [];",
    "  res.headers.forEach((v, k) => headers.push(h('tr', null, h('td', null, k), h('td', null, v))));",
    "  out.hidden = false;",
    "  fill(out,",
    "    h('div', {class: 'rhead'},",
    "      h('span', {class: statusClass(res.status), 'data-status': res.status}, String(res.status)),",
    "      h('strong', null, res.statusText),",
    "      h('span', {class: 'muted'}, Math.round(ms) + ' ms, ' + new TextEncoder().encode(text).length + ' bytes'),",
    "      h('code', null, init.method + ' ' + url)),",
    "    res.status === 422 && json && Array.isArray(json.detail) ? errorList(json.detail) : null,",
    "    h('h5', null, 'Body'),",
    "    text === '' ? h('p', {class: 'muted'}, '(empty)')",
    "      : h('pre', {class: 'out'}, json === undefined ? text : pretty(json, '')),",
    "    h('h5', null, 'Headers'), h('table', {class: 'headers'}, headers),",
    "    h('details', {class: 'curl'}, h('summary', null, 'As a curl command'),",
    "      h('pre', {class: 'out'}, curl(init, url))));",
    "}",
    "function errorList(detail) {",
    "  const n = detail.length;",
    "  const loc = (d) => (Array.isArray(d.loc) ? d.loc : [d.loc]).map((x) => h('span', null, String(x)));",
    "  const caption = n + (n === 1 ? ' problem' : ' problems') + ' in the request';",
    "  return h('table', {class: 'errors'}, h('caption', null, caption),",
    "           detail.map((d) => h('tr', null, h('td', {class: 'loc'}, loc(d)),",
    "             h('td', null, String(d.msg || '')), h('td', {class: 'etype'}, String(d.type || '')))));",
    "}",
    "/* Indented JSON with its keys, strings, numbers and literals in spans of their own. */",
    "function pretty(v, ind) {",
    "  if (v === null || typeof v === 'boolean') return h('span', {class: 'j-lit'}, String(v));",
    "  if (typeof v === 'number') return h('span', {class: 'j-num'}, String(v));",
    "  if (typeof v === 'string') return h('span', {class: 'j-str'}, JSON.stringify(v));",
    "  const arr = Array.isArray(v), entries = arr ? v.map((x) => [null, x]) : Object.entries(v);",
    "  const flat = entries.every(([, x]) => x === null || typeof x !== 'object');",
    "  if (flat && JSON.stringify(v).length <= 60) { /* short and flat: on one line */",
    "    const out = [arr ? '[' : '{'];",
    "    entries.forEach(([k, x], i) => {",
    "      if (!arr) out.push(h('span', {class: 'j-key'}, JSON.stringify(k)), ': ');",
    "      out.push(pretty(x, ''), i < entries.length - 1 ? ', ' : '');",
    "    });",
    "    return out.concat(arr ? ']' : '}');",
    "  }",
    "  const inner = ind + '  ', out = [arr ? '[' : '{'];",
    "  entries.forEach(([k, x], i) => {",
    "    out.push('\\n' + inner);",
    "    if (!arr) out.push(h('span', {class: 'j-key'}, JSON.stringify(k)), ': ');",
    "    out.push(pretty(x, inner), i < entries.length - 1 ? ',' : '');",
    "  });",
    "  out.push('\\n' + ind + (arr ? ']' : '}'));",
    "  return out;",
    "}",
    "",
    "/* ---- the page ---- */",
    "function render() {",
    "  const info = spec.info || {};",
    "  const title = String(info.title || 'API');",
    "  document.title = title + ' - docs';",
    "  document.getElementById('title').textContent = title;",
    "  const version = document.getElementById('version');",
    "  version.textContent = 'v' + String(info.version || '?');",
    "  version.hidden = !info.version;",
    "  const main = document.getElementById('main'), toc = document.getElementById('toc');",
    "  const intro = h('div', {class: 'intro'}, h('h2', null, title),",
    "                  h('div', {class: 'meta'},",
    "                    info.version ? h('span', {class: 'chip'}, 'version ' + info.version) : null,",
    "                    h('span', {class: 'chip'}, 'OpenAPI ' + String(spec.openapi || '?'))),",
    "                  info.description ? md(info.description) : null);",
    "  const ops = operations(), groups = new Map();",
    "  for (const t of spec.tags || []) groups.set(t.name, []);",
    "  for (const o of ops) for (const t of o.tags) (groups.get(t) || groups.set(t, []).get(t)).push(o);",
    "  const sections = [];",
    "  toc.replaceChildren();",
    "  for (const [tag, list] of groups) {",
    "    if (!list.length) continue;",
    "    const meta = (spec.tags || []).find((t) => t.name === tag) || {};",
    "    sections.push(h('section', {class: 'tag', 'data-tag': tag}, h('h2', null, tag),",
    "                    meta.description ? md(meta.description) : null, list.map(operationView)));",
    "    toc.append(h('h3', null, tag), h('ul', null, list.map((o) => h('li', null,",
    "      h('a', {href: '#' + o.id, class: methodClass(o.method), 'data-op': o.id},",
    "        h('span', {class: 'm'}, o.method.toUpperCase()), h('span', null, o.path))))));",
    "  }",
    "  fill(main, intro, sections.length ? sections : h('p', {class: 'muted'}, 'No operations.'));",
    "  openFromHash();",
    "}",
    "function openFromHash() {",
    "  const id = decodeURIComponent(location.hash.slice(1));",
    "  const d = id && document.getElementById(id);",
    "  if (!d || d.tagName !== 'DETAILS') return;",
    "  if (d.open) return d.scrollIntoView();",
    "  d.addEventListener('toggle', () => d.scrollIntoView(), {once: true}); /* once its body is built */",
    "  d.open = true;",
    "}",
    "function filter(text) {",
    "  const words = text.toLowerCase().split(/\\s+/).filter((w) => w);",
    "  for (const d of document.querySelectorAll('details.op')) {",
    "    const hay = [d.dataset.method, d.dataset.path, d.querySelector('.sum').textContent].join(' ').toLowerCase();",
    "    d.hidden = !words.every((w) => hay.includes(w));",
    "    const link = document.querySelector('nav a[data-op=\"' + d.id + '\"]');",
    "    if (link) link.parentNode.hidden = d.hidden;",
    "  }",
    "  for (const s of document.querySelectorAll('section.tag'))",
    "    s.hidden = !s.querySelector('details.op:not([hidden])');",
    "}",
    "function fail(message) {",
    "  fill(document.getElementById('main'), h('p', {class: 'fail'}, message));",
    "}",
    "async function load() {",
    "  let res;",
    "  try {",
    "    res = await fetch('/openapi.json', {headers: {Accept: 'application/json'}});",
    "  } catch (e) {",
    "    return fail('Could not load /openapi.json: ' + e.message);",
    "  }",
    "  if (!res.ok) {",
    "    return fail('/openapi.json answered ' + res.status + ' ' + res.statusText +",
    "                (res.status === 404 ? ': mw_openapi(app, title, version) serves it.' : '.'));",
    "  }",
    "  try {",
    "    spec = await res.json();",
    "  } catch (e) {",
    "    return fail('/openapi.json is not JSON: ' + e.message);",
    "  }",
    "  render();",
    "}",
    "document.getElementById('filter').addEventListener('input', (e) => filter(e.target.value));",
    "document.getElementById('expand').addEventListener('click', () => {",
    "  for (const d of document.querySelectorAll('details.op:not([hidden])')) d.open = true;",
    "});",
    "document.getElementById('collapse').addEventListener('click', () => {",
    "  for (const d of document.querySelectorAll('details.op')) d.open = false;",
    "});",
    "document.addEventListener('keydown', (e) => {",
    "  if (e.key === '/' && !/INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName)) {",
    "    e.preventDefault();",
    "    document.getElementById('filter').focus();",
    "  }",
    "});",
    "window.addEventListener('hashchange', openFromHash);",
    "document.getElementById('toc').addEventListener('click', (e) => { /* the same link again: no hashchange */",
    "  const a = e.target.closest('a');",
    "  if (a && a.getAttribute('href') === location.hash) openFromHash();",
    "});",
    "load();",
    "</script>",
    "</body>",
    "</html>",
};

#define MW__TEXT_HTML "text/html; charset=utf-8"

typedef struct mw__docs {
    char *page; /* the lines joined, each ending in '\n' */
    size_t len;
    char csp[320];
} mw__docs;

static void mw__docs_free(void *state) {
    mw__docs *d = (mw__docs *)state;
    MW_FREE(d->page);
    MW_FREE(d);
}

static const mw__ext mw__docs_ext = {NULL, mw__docs_free, NULL};

/* "'sha256-<base64>'" of what the page holds between open and close (the element's
   text, as CSP hashes it), at out (56 bytes); 0, or -1 when the page lacks the tags. */
static int mw__docs_hash(const mw__docs *d, const char *open, const char *close, char *out) {
    const char *start = mw__find(d->page, d->len, open, strlen(open)), *end;
    unsigned char digest[32];
    mw__sha256 s;
    size_t n;
    if (!start) return -1;
    start += strlen(open);
    if (!(end = mw__find(start, d->len - (size_t)(start - d->page), close, strlen(close)))) return -1;
    mw__sha256_init(&s);
    mw__sha256_update(&s, start, (size_t)(end - start));
    mw__sha256_final(&s, digest);
    memcpy(out, "'sha256-", 8);
    n = 8 + mw__base64_encode(out + 8, digest, sizeof digest, 0);
    memcpy(out + n, "'", 2);
    return 0;
}

static mw__docs *mw__docs_build(void) {
    mw__buf page = {NULL, 0, 0};
    char style[56], script[56];
    mw__docs *d;
    size_t i;
    int rc = 0;
    for (i = 0; i < sizeof mw__docs_page / sizeof mw__docs_page[0]; i++)
        rc |= mw__buf_puts(&page, mw__docs_page[i]) | MW__PUT_LIT(&page, "\n");
    if (rc != 0 || !(d = (mw__docs *)MW_MALLOC(sizeof *d))) {
        mw__buf_free(&page);
        return NULL;
    }
    d->page = page.data;
    d->len = page.len;
    if (mw__docs_hash(d, "<style>", "</style>", style) != 0 || mw__docs_hash(d, "<script>", "</script>", script) != 0) {
        mw__docs_free(d);
        return NULL;
    }
    snprintf(d->csp, sizeof d->csp,
             "default-src 'none'; script-src %s; style-src %s; connect-src 'self'; img-src data:; "
             "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
             script, style);
    return d;
}

static void mw__docs_handler(mw_req *rq, mw_res *rs) {
    const mw__docs *d = (const mw__docs *)rq->route->impl;
    mw_set_header(rs, "Content-Security-Policy", d->csp);
    mw_set_header(rs, "Cache-Control", "no-cache");
    mw__send_trusted(rs, 200, MW__TEXT_HTML, sizeof MW__TEXT_HTML - 1, d->page, d->len);
}

int mw_docs(mw_app *app) {
    int i, rc;
    mw__docs *d;
    if (!app) return MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    if ((i = mw__app_ext_index(app, &mw__docs_ext)) >= 0) {
        d = (mw__docs *)app->ext_state[i]; /* a second call: the route below says it exists */
    } else if (!(d = mw__docs_build()) || mw__app_add_ext(app, &mw__docs_ext, d) < 0) {
        if (d) mw__docs_free(d);
        mw__log(&app->log, MW_LOG_ERROR, "mw_docs: out of memory");
        return app->setup_errors++, MW_ENOMEM;
    }
    rc = mw_route_with(app, "GET", "/docs", mw__docs_handler, NULL); /* it reports its own errors */
    if (rc == 0) app->routes[app->nroutes - 1]->impl = d;
    return rc;
}

#ifdef MICROWEB_WITH_PG
/* ---------------------------------------------------------------------------
   extras: PostgreSQL. A pool of connections, checked out by a request on its first
   statement and always given back when the request ends; parameters are sent apart
   from the SQL text, so a value can never change the statement.
   --------------------------------------------------------------------------- */
#define MW__PG_MAX_POOL 16
#define MW__PG_MAX_SHARED 16   /* shared connections (MW_PG_SHARED) at most: the limit's maximum */
#define MW__PG_MAX_PREPARED 64 /* statements prepared per connection; more run unprepared */

typedef struct mw__pg_slot {
    PGconn *conn;
    int in_use;
    int fresh; /* connected during this request: a failure is not a stale connection */
    size_t nprepared;
    char *prepared[MW__PG_MAX_PREPARED]; /* SQL texts, prepared as "mw_<index>" */
} mw__pg_slot;

/* A statement waiting for its round trip on a shared connection; it lives on its
   request's stack, and only the shared connection's reader touches it meanwhile. */
typedef struct mw__pg_turn {
    const char *sql;
    int nparams;
    const char *const *params;
    int prepared;     /* its index in the connection's prepared texts, or -1: unprepared */
    PGresult *res;    /* its result, once read (when the connection failed: one with libpq's words) */
    int settled;      /* res stands: the statement's rows, or the server's refusal of it */
    const char *lost; /* the connection failed before its result came: the answer's words, else NULL */
    int taken;        /* a reader took it into a round trip: it waits for the result */
    int done, leads;  /* its result is in; it reads the next round trip */
    pthread_cond_t woken;
    struct mw__pg_turn *next;
} mw__pg_turn;

typedef struct mw__pg_shared { /* a connection the requests' single statements share (MW_PG_SHARED) */
    pthread_mutex_t lock;      /* over the queue and busy; the connection is its reader's alone */
    mw__pg_slot slot;
    mw__pg_turn *first, *last; /* waiting for the next round trip */
    int busy;                  /* a round trip is out: its reader hands the next one on */
} mw__pg_shared;

typedef struct mw__pg_pool {
    char *conninfo;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    int size;           /* decided on first use, when the worker count is known */
    long long retry_at; /* after a failed connect: answer 503 at once until then */
    mw__pg_slot slots[MW__PG_MAX_POOL];
    unsigned next_shared; /* the shared connection the next statement goes to, round the ring */
    mw__pg_shared shared[MW__PG_MAX_SHARED];
} mw__pg_pool;

typedef struct mw__pg_kept { /* results a request made, cleared when it ends */
    PGresult *res;
    struct mw__pg_kept *next;
} mw__pg_kept;

typedef struct mw__pg_request { /* a request's database state, from its first statement */
    mw__pg_slot *slot;          /* the connection it checked out */
    mw__pg_kept *results;
    int statements; /* statements run so far: only the first may be retried */
} mw__pg_request;

static void mw__pg_end_request(mw_req *rq, void *pool, void *request_state);
static void mw__pg_pool_free(void *pool);
static const char *mw__pg_ready(mw_req *rq, void *pool);
static const mw__ext mw__pg_ext = {mw__pg_end_request, mw__pg_pool_free, NULL};

static mw__pg_pool *mw__pg_pool_of(const mw_app *app) {
    int i = mw__app_ext_index(app, &mw__pg_ext);
    return i < 0 ? NULL : (mw__pg_pool *)app->ext_state[i];
}

/* The request's database state, made on first use (NULL when PostgreSQL is not
   configured, or out of memory). */
static mw__pg_request *mw__pg_request_of(mw_req *rq) {
    int i = mw__app_ext_index(rq->app, &mw__pg_ext);
    if (i < 0) return NULL;
    if (!rq->ext[i] && (rq->ext[i] = mw__arena_alloc(rq->arena, sizeof(mw__pg_request))) != NULL)
        memset(rq->ext[i], 0, sizeof(mw__pg_request));
    return (mw__pg_request *)rq->ext[i];
}

int mw_pg_configure(mw_app *app, const char *conninfo) {
    char *err = NULL;
    PQconninfoOption *opts;
    mw__pg_pool *p;
    int i;
    if (!app) return MW_EINVAL;
    if (!conninfo) conninfo = getenv("DATABASE_URL");
    if (!conninfo || !*conninfo) {
        mw__log(&app->log, MW_LOG_ERROR, "no database settings: pass a libpq conninfo or set DATABASE_URL");
        return app->setup_errors++, MW_EINVAL;
    }
    if (!(opts = PQconninfoParse(conninfo, &err))) { /* a typo is a startup error, not a runtime surprise */
        size_t n = err ? strlen(err) : 0;
        mw__log(&app->log, MW_LOG_ERROR, "database settings: %.*s", (int)(n && err[n - 1] == '\n' ? n - 1 : n),
                err ? err : "out of memory");
        PQfreemem(err);
        return app->setup_errors++, MW_EINVAL;
    }
    PQconninfoFree(opts);
    if (mw__pg_pool_of(app)) return MW_ESTATE;
    if (!(p = (mw__pg_pool *)MW_MALLOC(sizeof *p))) return MW_ENOMEM;
    memset(p, 0, sizeof *p);
    if (!(p->conninfo = mw__strndup(conninfo, strlen(conninfo)))) {
        MW_FREE(p);
        return MW_ENOMEM;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    for (i = 0; i < MW__PG_MAX_SHARED; i++) pthread_mutex_init(&p->shared[i].lock, NULL);
    if (mw__app_add_ext(app, &mw__pg_ext, p) < 0) {
        mw__pg_pool_free(p);
        return MW_ENOMEM;
    }
    return mw_ready_check(app, mw__pg_ready, p);
}

static void mw__pg_drop(mw__pg_slot *s) {
    size_t i;
    if (s->conn) PQfinish(s->conn);
    s->conn = NULL;
    for (i = 0; i < s->nprepared; i++) MW_FREE(s->prepared[i]);
    s->nprepared = 0; /* a new connection has no prepared statements */
}

static void mw__pg_pool_free(void *pool) {
    mw__pg_pool *p = (mw__pg_pool *)pool;
    int i;
    if (!p) return;
    for (i = 0; i < MW__PG_MAX_POOL; i++) mw__pg_drop(&p->slots[i]);
    for (i = 0; i < MW__PG_MAX_SHARED; i++) {
        mw__pg_drop(&p->shared[i].slot);
        pthread_mutex_destroy(&p->shared[i].lock);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->freed);
    MW_FREE(p->conninfo);
    MW_FREE(p);
}

/* Logs the database's words in full; the client sees them only in debug mode. */
static void mw__pg_fail(mw_req *rq, int status, const char *what, const char *message) {
    size_t n = message ? strlen(message) : 0;
    char *detail;
    mw__log(&rq->app->log, MW_LOG_ERROR, "%s: %.*s", what, (int)(n && message[n - 1] == '\n' ? n - 1 : n),
            message ? message : "");
    if (rq->app->debug && message && (detail = (char *)mw__arena_alloc(rq->arena, strlen(what) + n + 3))) {
        sprintf(detail, "%s: %.*s", what, (int)(n && message[n - 1] == '\n' ? n - 1 : n), message);
        what = detail;
    }
    mw__req_fail(rq, status, what, -1);
}

/* Connects the slot: 1, or 0 with s->conn holding libpq's message (the caller drops
   it) and the retry pause begun. */
static int mw__pg_open(mw_req *rq, mw__pg_slot *s) {
    mw__pg_pool *p = mw__pg_pool_of(rq->app);
    char timeout[24], sql[64];
    const char *keys[] = {"connect_timeout", "dbname", NULL}, *vals[] = {timeout, p->conninfo, NULL};
    mw__pg_drop(s);
    snprintf(timeout, sizeof timeout, "%lld", rq->limits->v[MW_LIMIT_PG_CONNECT_TIMEOUT_S]);
    s->conn = PQconnectdbParams(keys, vals, 1); /* dbname is expanded: the settings override the timeout */
    if (PQstatus(s->conn) != CONNECTION_OK) {
        pthread_mutex_lock(&p->lock);
        p->retry_at = mw__now_ms() + rq->limits->v[MW_LIMIT_PG_RETRY_MS];
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    snprintf(sql, sizeof sql, "SET statement_timeout = %lld", rq->limits->v[MW_LIMIT_PG_STATEMENT_TIMEOUT_MS]);
    PQclear(PQexec(s->conn, sql));
    pthread_mutex_lock(&p->lock);
    p->retry_at = 0;
    pthread_mutex_unlock(&p->lock);
    s->fresh = 1;
    return 1;
}

int mw_pg_setup(mw_app *app, const char *sql) {
    mw__pg_pool *p = app ? mw__pg_pool_of(app) : NULL;
    char timeout[24];
    const char *keys[] = {"connect_timeout", "dbname", NULL}, *vals[] = {timeout, p ? p->conninfo : NULL, NULL};
    PGconn *db;
    PGresult *r = NULL;
    ExecStatusType status;
    if (!app || !sql) return MW_EINVAL;
    if (app->serving) return MW_ESTATE;
    if (!p) { /* a failed mw_pg_configure has said why already */
        if (!app->setup_errors) {
            mw__log(&app->log, MW_LOG_ERROR, "mw_pg_setup: call mw_pg_configure first");
            app->setup_errors++;
        }
        return MW_ESTATE;
    }
    snprintf(timeout, sizeof timeout, "%lld", app->limits.v[MW_LIMIT_PG_CONNECT_TIMEOUT_S]);
    db = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(db) == CONNECTION_OK) {
        PQclear(PQexec(db, "SET client_min_messages = warning")); /* no NOTICE that a table exists */
        r = PQexec(db, sql);
    }
    status = PQresultStatus(r); /* of NULL: PGRES_FATAL_ERROR */
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        const char *why = PQerrorMessage(db); /* may be several lines: the first says it */
        mw__log(&app->log, MW_LOG_ERROR, "database setup failed: %.*s", (int)strcspn(why, "\n"), why);
        app->setup_errors++;
    }
    PQclear(r);
    PQfinish(db);
    return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ? 0 : MW_EIO;
}

static int mw__pg_connect(mw_req *rq, mw__pg_slot *s) {
    if (mw__pg_open(rq, s)) return 1;
    mw__pg_fail(rq, 503, "database unavailable", PQerrorMessage(s->conn));
    mw__pg_drop(s);
    return 0;
}

static int mw__pg_pool_size(const mw_app *app) {
    long long n = app->limits.v[MW_LIMIT_PG_POOL_SIZE];
    if (n <= 0) n = app->nworkers > 0 ? app->nworkers : mw__thread_count(app);
    return n > MW__PG_MAX_POOL ? MW__PG_MAX_POOL : (int)n;
}

/* A free slot, a live connection's first, taken (the pool's lock held); NULL when every one is in use. */
static mw__pg_slot *mw__pg_take_free(mw__pg_pool *p) {
    mw__pg_slot *s = NULL;
    int i;
    for (i = 0; i < p->size && !s; i++)
        if (!p->slots[i].in_use && p->slots[i].conn) s = &p->slots[i];
    for (i = 0; i < p->size && !s; i++)
        if (!p->slots[i].in_use) s = &p->slots[i];
    if (s) s->in_use = 1;
    return s;
}

static void mw__pg_give_back(mw__pg_pool *p, mw__pg_slot *s) {
    s->fresh = 0;
    pthread_mutex_lock(&p->lock);
    s->in_use = 0;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

/* The latest a request waits for a connection (or its turn on a shared one). */
static void mw__pg_acquire_deadline(const mw_req *rq, struct timespec *until) {
    clock_gettime(CLOCK_REALTIME, until);
    until->tv_sec += (time_t)(rq->limits->v[MW_LIMIT_PG_ACQUIRE_TIMEOUT_MS] / 1000);
    until->tv_nsec += (long)(rq->limits->v[MW_LIMIT_PG_ACQUIRE_TIMEOUT_MS] % 1000) * 1000000L;
    if (until->tv_nsec >= 1000000000L) until->tv_sec++, until->tv_nsec -= 1000000000L;
}

/* Waits up to the acquire timeout for a free slot; connects it when needed. */
static mw__pg_slot *mw__pg_acquire(mw_req *rq) {
    mw__pg_pool *p = mw__pg_pool_of(rq->app);
    mw__pg_request *pr = mw__pg_request_of(rq);
    mw__pg_slot *s = NULL;
    struct timespec until;
    int waited, need_connect, backing_off;
    if (!p || !pr) return mw__pg_fail(rq, 500, "database not configured (mw_pg_configure)", NULL), (mw__pg_slot *)NULL;
    if (pr->slot) return pr->slot;
    pthread_mutex_lock(&p->lock);
    if (!p->size) p->size = mw__pg_pool_size(rq->app);
    for (waited = 0; !(s = mw__pg_take_free(p)); waited = 1) {
        if (!waited) mw__pg_acquire_deadline(rq, &until); /* read only when there is something to wait for */
        if (pthread_cond_timedwait(&p->freed, &p->lock, &until) != 0) break;
    }
    backing_off = p->retry_at && mw__now_ms() < p->retry_at;
    pthread_mutex_unlock(&p->lock);
    if (!s) return mw__pg_fail(rq, 503, "no database connection free", NULL), (mw__pg_slot *)NULL;
    pr->slot = s;
    need_connect = !s->conn || PQstatus(s->conn) != CONNECTION_OK;
    if (need_connect && backing_off)
        return mw__pg_fail(rq, 503, "database unavailable (retrying soon)", NULL), (mw__pg_slot *)NULL;
    if (need_connect && !mw__pg_connect(rq, s)) return NULL;
    return s;
}

/* "mw_<index>", the name a prepared statement has on its connection (by hand: snprintf
   cost as much as the rest of microweb's part of a statement) */
static void mw__pg_statement_name(char name[24], int prepared) {
    memcpy(name, "mw_", 3);
    name[3 + mw__format_u64(name + 3, (unsigned long long)prepared)] = '\0';
}

/* The prepared statement for sql on this connection, prepared on first use: its index
   in s->prepared, or -1 when it runs unprepared (switched off, or the table is full),
   or -2 with *failed the server's refusal. */
static int mw__pg_prepare(mw_req *rq, mw__pg_slot *s, const char *sql, int n, PGresult **failed) {
    size_t i;
    char name[24];
    PGresult *r;
    if (!rq->limits->v[MW_LIMIT_PG_PREPARE]) return -1;
    for (i = 0; i < s->nprepared && strcmp(s->prepared[i], sql) != 0; i++) {}
    if (i < s->nprepared) return (int)i;
    if (i == MW__PG_MAX_PREPARED) return -1;
    mw__pg_statement_name(name, (int)i);
    r = PQprepare(s->conn, name, sql, n, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) return *failed = r, -2;
    PQclear(r);
    if ((s->prepared[i] = mw__strndup(sql, strlen(sql))) == NULL) return -1;
    s->nprepared++;
    return (int)i;
}

/* Runs one statement, prepared once per connection unless that is switched off. */
static PGresult *mw__pg_exec(mw_req *rq, mw__pg_slot *s, const char *sql, int n, const char *const *params) {
    char name[24];
    PGresult *failed = NULL;
    int prepared = mw__pg_prepare(rq, s, sql, n, &failed);
    if (prepared == -2) return failed;
    if (prepared < 0) return PQexecParams(s->conn, sql, n, NULL, params, NULL, NULL, 0);
    mw__pg_statement_name(name, prepared);
    return PQexecPrepared(s->conn, name, n, params, NULL, NULL, 0);
}

/* The connection is gone, or the server is going. An error without a SQLSTATE was
   made by libpq itself, not by the server: after a crash stop libpq reports "server
   closed the connection unexpectedly" that way while PQstatus still says OK (other
   results without one, an empty query or a COPY, are the statement's). The server says
   it with the severity FATAL or PANIC (the session ends: an idle_session_timeout, say),
   class 08 (but 08P01, a protocol violation such as a wrong parameter count, on a
   working connection) or 57P01-57P03 (PostgreSQL Appendix A). */
static int mw__pg_conn_lost(PGconn *c, const PGresult *r) {
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *severity = r ? PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED) : NULL;
    if (PQstatus(c) == CONNECTION_BAD) return 1;
    if (!state) return PQresultStatus(r) == PGRES_FATAL_ERROR; /* NULL counts as one */
    return (severity && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0)) ||
           (strncmp(state, "08", 2) == 0 && strcmp(state, "08P01") != 0) || /* 08P01: e.g. a wrong parameter count */
           strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0;
}

/* Where the SQL's first word begins: past blanks and comments (-- to the line's end, and C style). */
static const char *mw__pg_first_word(const char *sql) {
    for (;;) {
        while (*sql == ' ' || (*sql >= '\t' && *sql <= '\r')) sql++;
        if (sql[0] == '-' && sql[1] == '-') {
            sql += strcspn(sql, "\n");
        } else if (sql[0] == '/' && sql[1] == '*') {
            const char *end = strstr(sql + 2, "*/");
            sql = end ? end + 2 : sql + strlen(sql);
        } else {
            return sql;
        }
    }
}

/* Whether sql's first word (any case) is one of words (lower case, NULL-terminated). */
static int mw__pg_first_word_is(const char *sql, const char *const *words) {
    size_t n;
    sql = mw__pg_first_word(sql);
    for (n = 0; mw__lower((unsigned char)sql[n]) >= 'a' && mw__lower((unsigned char)sql[n]) <= 'z'; n++) {}
    for (; *words; words++)
        if (mw__ieq(sql, n, *words)) return 1;
    return 0;
}

/* Whether statements can run again after a conflict undid them: each one reads or
   writes rows and nothing else (a CALL, a DO or a COMMIT may have committed part of
   its work before the conflict; a BEGIN or a SET outlives it). */
static int mw__pg_rerunnable(const mw_pg_stmt *stmts, int n) {
    static const char *const words[] = {"select", "insert", "update", "delete", "with",
                                        "values", "table",  "merge",  NULL};
    int i;
    for (i = 0; i < n; i++)
        if (!mw__pg_first_word_is(stmts[i].sql, words)) return 0;
    return 1;
}

/* A failure that undid its transaction and asks for it to be run again: a deadlock
   (40P01) or a serialization failure (40001). */
static int mw__pg_conflict(const PGresult *r) {
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return state && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0);
}

static int mw__pg_ok(const PGresult *r) {
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

static void mw__pg_keep(mw_req *rq, PGresult *r) {
    mw__pg_kept *k = (mw__pg_kept *)mw__arena_alloc(rq->arena, sizeof *k);
    if (!k) {
        PQclear(r); /* cannot happen after a warm arena; never leak */
        return;
    }
    k->res = r;
    k->next = mw__pg_request_of(rq)->results;
    mw__pg_request_of(rq)->results = k;
}

/* What a statement the server refused answers: 504 for the statement timeout, else 500. */
static void mw__pg_report_statement(mw_req *rq, const PGresult *failed, const char *message) {
    const char *state = failed ? PQresultErrorField(failed, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, "57014") == 0) /* query_canceled: the statement timeout */
        mw__pg_fail(rq, 504, "database statement timed out", message);
    else mw__pg_fail(rq, 500, "database error", message);
}

/* What a failed statement or batch answers: 503 when the connection is gone (it is
   dropped: the next request connects anew), else as the statement's refusal. */
static void mw__pg_report(mw_req *rq, mw__pg_slot *s, const PGresult *failed) {
    const char *message = failed ? PQresultErrorMessage(failed) : PQerrorMessage(s->conn);
    if (mw__pg_conn_lost(s->conn, failed)) {
        mw__pg_fail(rq, 503, "database unavailable", message);
        mw__pg_drop(s);
    } else {
        mw__pg_report_statement(rq, failed, message);
    }
}

/* One round of work on the connection: 1 when it succeeded; else 0 with *failed the
   result that failed (kept with the request's results), or NULL when libpq had none. */
typedef int (*mw__pg_work)(mw_req *rq, mw__pg_slot *s, void *arg, PGresult **failed);

/* Whether to run again statements a conflict undid: they were a transaction of their
   own that nothing outlives, they are rerunnable, and runs are left (`done` counts the
   runs again so far). */
static int mw__pg_run_again(mw_req *rq, const PGresult *failed, int own_transaction, const mw_pg_stmt *stmts, int n,
                            int *done) {
    if (!mw__pg_conflict(failed) || !own_transaction || *done >= rq->limits->v[MW_LIMIT_PG_CONFLICT_RETRIES] ||
        !mw__pg_rerunnable(stmts, n))
        return 0;
    ++*done;
    mw__log(&rq->app->log, MW_LOG_WARN, "database deadlock or serialization failure; running it again");
    return 1;
}

/* Runs work, the statements stmts[0..n-1], on the request's connection. A pooled
   connection the server dropped while idle (a restart) is replaced and the work run
   again, once: only for the request's first statement and never inside a transaction.
   Work that was its own transaction and that a conflict undid runs again
   (MW_PG_CONFLICT_RETRIES). 0, or MW_EIO with the answer the error. */
static int mw__pg_run(mw_req *rq, mw__pg_work work, void *arg, const mw_pg_stmt *stmts, int n) {
    mw__pg_slot *s;
    mw__pg_request *pr;
    int retried = 0, conflicts = 0;
    if (rq->fail_status || !(s = mw__pg_acquire(rq))) return MW_EIO;
    pr = mw__pg_request_of(rq);
    for (;;) {
        int first = pr->statements++ == 0;
        PGTransactionStatusType before = PQtransactionStatus(s->conn);
        PGresult *failed = NULL;
        if (work(rq, s, arg, &failed)) return 0;
        if (mw__pg_conn_lost(s->conn, failed) && first && !s->fresh && before == PQTRANS_IDLE && !retried) {
            mw__log(&rq->app->log, MW_LOG_WARN, "database connection lost while idle; reconnecting");
            retried = 1;
            pr->statements = 0;
            if (!mw__pg_connect(rq, s)) return MW_EIO;
            continue;
        }
        if (mw__pg_run_again(rq, failed, before == PQTRANS_IDLE && PQtransactionStatus(s->conn) == PQTRANS_IDLE, stmts,
                             n, &conflicts)) /* a connection lost or dropped has no status: not idle */
            continue;
        mw__pg_report(rq, s, failed);
        return MW_EIO;
    }
}

typedef struct mw__pg_one { /* mw_pg_query's work */
    const char *sql;
    int nparams;
    const char *const *params;
    PGresult *res;
} mw__pg_one;

static int mw__pg_query_work(mw_req *rq, mw__pg_slot *s, void *arg, PGresult **failed) {
    mw__pg_one *q = (mw__pg_one *)arg;
    PGresult *r = mw__pg_exec(rq, s, q->sql, q->nparams, q->params);
    if (r) mw__pg_keep(rq, r);
    if (mw__pg_ok(r)) return q->res = r, 1;
    return *failed = r, 0;
}

static int mw__pg_shares(mw_req *rq, const char *sql, int nparams);
static PGresult *mw__pg_shared_query(mw_req *rq, const char *sql, int nparams, const char *const *params);

PGresult *mw_pg_query(mw_req *rq, const char *sql, int nparams, const char *const *params) {
    mw__pg_one q;
    mw_pg_stmt one;
    if (!rq || !sql) return NULL;
    if (mw__pg_shares(rq, sql, nparams)) return mw__pg_shared_query(rq, sql, nparams, params);
    q.sql = sql, q.nparams = nparams, q.params = params, q.res = NULL;
    one.sql = sql, one.nparams = nparams, one.params = params;
    return mw__pg_run(rq, mw__pg_query_work, &q, &one, 1) == 0 ? q.res : NULL;
}

/* Queues one statement in the pipeline, by its prepared name unless prepared < 0; 0
   when libpq refused it. */
static int mw__pg_send(mw__pg_slot *s, const char *sql, int n, const char *const *params, int prepared) {
    char name[24];
    if (prepared < 0) return PQsendQueryParams(s->conn, sql, n, NULL, params, NULL, NULL, 0);
    mw__pg_statement_name(name, prepared);
    return PQsendQueryPrepared(s->conn, name, n, params, NULL, NULL, 0);
}

typedef struct mw__pg_batch { /* mw_pg_batch's work */
    const mw_pg_stmt *stmts;
    int n;
    PGresult **results;
    int *prepared; /* each statement's index in the connection's prepared texts, or -1 */
} mw__pg_batch;

/* Sends every statement, then the pipeline's sync; 0 when libpq refused one. */
static int mw__pg_batch_send(mw__pg_slot *s, const mw__pg_batch *b) {
    int i;
    for (i = 0; i < b->n; i++)
        if (!mw__pg_send(s, b->stmts[i].sql, b->stmts[i].nparams, b->stmts[i].params, b->prepared[i])) return 0;
    return PQpipelineSync(s->conn);
}

/* Reads statement i's result and the NULL that ends it; 0 when the stream of results
   is not what the pipeline promised (a lost connection). */
static int mw__pg_batch_receive(mw_req *rq, mw__pg_slot *s, mw__pg_batch *b, int i) {
    PGresult *r = PQgetResult(s->conn), *extra;
    if (!r) return 0;
    mw__pg_keep(rq, r);
    b->results[i] = r;
    if ((extra = PQgetResult(s->conn)) == NULL) return 1;
    PQclear(extra); /* a second result for one statement: the SQL held more than one */
    return 0;
}

static int mw__pg_batch_work(mw_req *rq, mw__pg_slot *s, void *arg, PGresult **failed) {
    mw__pg_batch *b = (mw__pg_batch *)arg;
    int i, in_order = 1;
    PGresult *sync;
    for (i = 0; i < b->n; i++) b->results[i] = NULL;
    for (i = 0; i < b->n; i++) { /* before the pipeline: a refusal stops the batch before anything runs */
        b->prepared[i] = mw__pg_prepare(rq, s, b->stmts[i].sql, b->stmts[i].nparams, failed);
        if (b->prepared[i] == -2) {
            if (*failed) mw__pg_keep(rq, *failed);
            return b->results[i] = *failed, 0;
        }
    }
    if (!PQenterPipelineMode(s->conn)) return 0;
    if (!mw__pg_batch_send(s, b)) in_order = 0;
    for (i = 0; i < b->n && in_order; i++) in_order = mw__pg_batch_receive(rq, s, b, i);
    sync = in_order ? PQgetResult(s->conn) : NULL;
    if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC || !PQexitPipelineMode(s->conn)) in_order = 0;
    PQclear(sync);
    for (i = 0; i < b->n && b->results[i] && mw__pg_ok(b->results[i]); i++) {}
    *failed = i < b->n ? b->results[i] : NULL;
    /* results that broke off leave the connection in an unknown state: it is not used
       again (without a failed result, the report drops it, with libpq's message) */
    if (!in_order && *failed) mw__pg_drop(s);
    return in_order && i == b->n;
}

int mw_pg_batch(mw_req *rq, const mw_pg_stmt *stmts, int n, PGresult **results) {
    mw__pg_batch b;
    int i;
    if (!rq || !stmts || n < 1 || !results) return MW_EINVAL;
    for (i = 0; i < n; i++)
        if (!stmts[i].sql) return MW_EINVAL;
    b.stmts = stmts, b.n = n, b.results = results;
    memset(results, 0, (size_t)n * sizeof *results);
    if (!(b.prepared = (int *)mw__arena_alloc(rq->arena, (size_t)n * sizeof(int)))) return MW_ENOMEM;
    return mw__pg_run(rq, mw__pg_batch_work, &b, stmts, n);
}

/* ---- shared connections (MW_PG_SHARED) ----
   A statement joins the queue of one shared connection. If no round trip is out there,
   its request becomes the reader: it takes the queue, sends every statement in it with
   a sync of its own (each is its own transaction), reads the results in order, wakes
   their requests, and hands the reading on to the first statement that came meanwhile.
   So statements gather while a round trip is out, and the next one carries them all. */

/* Whether sql needs a connection of the request's own: it begins a transaction (BEGIN,
   START TRANSACTION), which a sync does not end, or it is a COPY, whose data a
   pipeline cannot carry. */
static int mw__pg_needs_own_connection(const char *sql) {
    static const char *const words[] = {"begin", "start", "copy", NULL};
    return mw__pg_first_word_is(sql, words);
}

/* Whether the statement goes to a shared connection: they are on, and the request
   holds no connection of its own and needs none for this one. (A count of parameters
   libpq refuses to send goes the other way, to fail alone.) */
static int mw__pg_shares(mw_req *rq, const char *sql, int nparams) {
    mw__pg_request *pr;
    if (rq->limits->v[MW_LIMIT_PG_SHARED] <= 0 || !(pr = mw__pg_request_of(rq))) return 0;
    return !pr->slot && nparams >= 0 && nparams <= 65535 && !mw__pg_needs_own_connection(sql);
}

static mw__pg_shared *mw__pg_shared_next(mw_req *rq, mw__pg_pool *p) {
    long long n = rq->limits->v[MW_LIMIT_PG_SHARED];
    unsigned i = __atomic_fetch_add(&p->next_shared, 1u, __ATOMIC_RELAXED);
    return &p->shared[i % (unsigned)(n < MW__PG_MAX_SHARED ? n : MW__PG_MAX_SHARED)]; /* a default above it */
}

/* Connects the shared connection when it needs it: NULL, or what its statements answer
   (libpq's words stay on s->conn). */
static const char *mw__pg_shared_connect(mw_req *rq, mw__pg_slot *s) {
    mw__pg_pool *p = mw__pg_pool_of(rq->app);
    int backing_off;
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK) return NULL;
    pthread_mutex_lock(&p->lock);
    backing_off = p->retry_at && mw__now_ms() < p->retry_at;
    pthread_mutex_unlock(&p->lock);
    if (backing_off) return "database unavailable (retrying soon)";
    return mw__pg_open(rq, s) ? NULL : "database unavailable";
}

/* Whether a result the server sent for a statement stands: its rows, or a refusal of
   the statement, not the news that the connection is gone. */
static int mw__pg_settles(mw__pg_slot *s, const PGresult *r) { return mw__pg_ok(r) || !mw__pg_conn_lost(s->conn, r); }

/* Prepares the round's texts the connection has not prepared yet (libpq prepares only
   outside the pipeline); a text the server refuses settles its turn. 0 when the
   connection failed; *heard becomes 1 once the server answered. */
static int mw__pg_round_prepare(mw_req *rq, mw__pg_slot *s, mw__pg_turn *batch, int *heard) {
    mw__pg_turn *t;
    for (t = batch; t; t = t->next) {
        PGresult *failed = NULL;
        size_t before = s->nprepared;
        if (!t->settled) t->prepared = mw__pg_prepare(rq, s, t->sql, t->nparams, &failed);
        if (s->nprepared > before) *heard = 1;
        if (t->settled || t->prepared != -2) continue;
        t->res = failed;
        if (!failed || !mw__pg_settles(s, failed)) return 0;
        t->settled = *heard = 1;
    }
    return 1;
}

/* Sends the round's statements, each with its sync, and reads each one's result, the
   NULL that ends it and its sync. 0 when the connection failed or the results were out
   of step (the connection is not used again); *heard becomes 1 once a result came. */
static int mw__pg_round_trip(mw__pg_slot *s, mw__pg_turn *batch, int *heard) {
    mw__pg_turn *t;
    PGresult *r;
    if (!PQenterPipelineMode(s->conn)) return 0;
    for (t = batch; t; t = t->next)
        if (!t->settled && (!mw__pg_send(s, t->sql, t->nparams, t->params, t->prepared) || !PQpipelineSync(s->conn)))
            return 0;
    for (t = batch; t; t = t->next) {
        int synced;
        if (t->settled) continue;
        if ((t->res = PQgetResult(s->conn)) == NULL || !mw__pg_settles(s, t->res)) return 0;
        t->settled = *heard = 1;
        if ((r = PQgetResult(s->conn)) != NULL) return PQclear(r), 0;
        synced = PQresultStatus(r = PQgetResult(s->conn)) == PGRES_PIPELINE_SYNC;
        PQclear(r);
        if (!synced) return 0;
    }
    return PQexitPipelineMode(s->conn);
}

/* The connection failed: every turn not settled answers `why`, with libpq's words. */
static void mw__pg_round_lost(mw__pg_slot *s, mw__pg_turn *t, const char *why) {
    for (; t; t = t->next) {
        if (t->settled) continue;
        if (!t->res) t->res = PQmakeEmptyPGresult(s->conn, PGRES_FATAL_ERROR); /* with libpq's message */
        t->lost = why;
    }
}

/* One round trip for the batch, connecting first when needed. A connection the server
   dropped while idle (a restart: it fails before the server answers anything) is
   replaced and the round sent again, once, as a first statement is on the pool's. */
static void mw__pg_round(mw_req *rq, mw__pg_slot *s, mw__pg_turn *batch) {
    const char *why;
    int retried = 0;
    mw__pg_turn *t;
    while ((why = mw__pg_shared_connect(rq, s)) == NULL) {
        int heard = 0;
        if (mw__pg_round_prepare(rq, s, batch, &heard) && mw__pg_round_trip(s, batch, &heard)) {
            s->fresh = 0;
            return;
        }
        why = "database unavailable";
        if (retried || s->fresh || heard) break;
        mw__log(&rq->app->log, MW_LOG_WARN, "database connection lost while idle; reconnecting");
        retried = 1;
        for (t = batch; t; t = t->next)
            if (!t->settled) PQclear(t->res), t->res = NULL;
        mw__pg_drop(s);
    }
    mw__pg_round_lost(s, batch, why);
    mw__pg_drop(s);
}

/* The reader's part, with sh->lock held: takes the queue, runs its round trip without
   the lock, wakes every turn of it, and hands the reading on to the first turn that
   came meanwhile, or leaves the connection idle. */
static void mw__pg_lead(mw_req *rq, mw__pg_shared *sh) {
    mw__pg_turn *batch = sh->first, *t;
    for (t = batch; t; t = t->next) t->taken = 1;
    sh->first = sh->last = NULL;
    pthread_mutex_unlock(&sh->lock);
    mw__pg_round(rq, &sh->slot, batch);
    pthread_mutex_lock(&sh->lock);
    for (t = batch; t; t = t->next) { /* a woken turn returns only once the lock is let go */
        t->done = 1;
        pthread_cond_signal(&t->woken);
    }
    if (sh->first) {
        sh->first->leads = 1;
        pthread_cond_signal(&sh->first->woken);
    } else {
        sh->busy = 0;
    }
}

/* Takes a turn no reader has taken out of the queue (under sh->lock). */
static void mw__pg_unqueue(mw__pg_shared *sh, mw__pg_turn *me) {
    mw__pg_turn **at = &sh->first, *before = NULL;
    while (*at != me) before = *at, at = &(*at)->next;
    *at = me->next;
    if (sh->last == me) sh->last = before;
}

/* Waits for the turn's result, reading round trips when its turn comes to; 0 when
   MW_PG_ACQUIRE_TIMEOUT_MS passed before any reader took it (it leaves the queue). */
static int mw__pg_wait_turn(mw_req *rq, mw__pg_shared *sh, mw__pg_turn *me) {
    struct timespec until;
    int timed_out = 0;
    pthread_mutex_lock(&sh->lock);
    if (sh->last) sh->last->next = me;
    else sh->first = me;
    sh->last = me;
    if (!sh->busy) sh->busy = me->leads = 1;
    else mw__pg_acquire_deadline(rq, &until);
    while (!me->done) {
        if (me->leads) {
            mw__pg_lead(rq, sh);
        } else if (me->taken) {
            pthread_cond_wait(&me->woken, &sh->lock); /* on its way: the result comes */
        } else if (timed_out) {
            mw__pg_unqueue(sh, me);
            break;
        } else if (pthread_cond_timedwait(&me->woken, &sh->lock, &until) == ETIMEDOUT) {
            timed_out = 1;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    return me->done;
}

/* One turn of the statement on a shared connection: 1 when its round trip came, with
   me's result (if any) kept with the request's; 0 when it waited past the acquire timeout. */
static int mw__pg_shared_turn(mw_req *rq, mw__pg_turn *me, const char *sql, int nparams, const char *const *params) {
    mw__pg_shared *sh = mw__pg_shared_next(rq, mw__pg_pool_of(rq->app));
    int done;
    memset(me, 0, sizeof *me);
    me->sql = sql, me->nparams = nparams, me->params = params;
    pthread_cond_init(&me->woken, NULL);
    done = mw__pg_wait_turn(rq, sh, me);
    pthread_cond_destroy(&me->woken);
    if (done && me->res) mw__pg_keep(rq, me->res);
    return done;
}

/* mw_pg_query on a shared connection: the result, kept with the request's, or NULL
   with the answer the error. A statement a conflict undid runs again (each is its own
   transaction there). */
static PGresult *mw__pg_shared_query(mw_req *rq, const char *sql, int nparams, const char *const *params) {
    mw__pg_turn me;
    mw_pg_stmt one;
    int conflicts = 0;
    if (rq->fail_status) return NULL;
    one.sql = sql, one.nparams = nparams, one.params = params;
    do {
        if (!mw__pg_shared_turn(rq, &me, sql, nparams, params))
            return mw__pg_fail(rq, 503, "no database connection free", NULL), (PGresult *)NULL;
        if (me.res && mw__pg_ok(me.res)) return me.res;
    } while (!me.lost && mw__pg_run_again(rq, me.res, 1, &one, 1, &conflicts));
    if (me.lost) mw__pg_fail(rq, 503, me.lost, PQresultErrorMessage(me.res));
    else mw__pg_report_statement(rq, me.res, PQresultErrorMessage(me.res));
    return NULL;
}

PGconn *mw_pg_conn(mw_req *rq) {
    mw__pg_slot *s = rq && !rq->fail_status ? mw__pg_acquire(rq) : NULL;
    if (s) mw__pg_request_of(rq)->statements++; /* the caller's statements are its own: none is retried */
    return s ? s->conn : NULL;
}

/* Gives the connection back clean: an open or failed transaction is rolled back, and
   a connection in any doubtful state is dropped, before another request gets it. */
static void mw__pg_end_request(mw_req *rq, void *pool, void *request_state) {
    mw__pg_pool *p = (mw__pg_pool *)pool;
    mw__pg_request *pr = (mw__pg_request *)request_state;
    mw__pg_slot *s = pr->slot;
    mw__pg_kept *k;
    for (k = pr->results; k; k = k->next) PQclear(k->res);
    pr->results = NULL;
    if (!s) return;
    if (s->conn) {
        PGTransactionStatusType t = PQtransactionStatus(s->conn);
        if (t == PQTRANS_INTRANS || t == PQTRANS_INERROR) {
            PGresult *r = PQexec(s->conn, "ROLLBACK");
            if (PQresultStatus(r) != PGRES_COMMAND_OK) mw__pg_drop(s);
            PQclear(r);
            mw__log(&rq->app->log, MW_LOG_WARN, "a request left a transaction open; rolled back");
        } else if (t != PQTRANS_IDLE) {
            mw__pg_drop(s);
        }
    }
    pr->slot = NULL;
    mw__pg_give_back(p, s);
}

/* SELECT 1 answered within ms. A server gone quiet (a network that drops everything)
   is given up on at the deadline rather than waited for: a probe must answer. */
static int mw__pg_answers(PGconn *c, long long ms) {
    long long end = mw__now_ms() + ms;
    PGresult *r;
    int ok = PQsendQuery(c, "SELECT 1");
    while (ok && PQisBusy(c)) {
        struct pollfd p;
        long long left = end - mw__now_ms();
        p.fd = PQsocket(c);
        p.events = POLLIN;
        p.revents = 0;
        ok = left > 0 && poll(&p, 1, (int)(left < 60000 ? left : 60000)) >= 0 && PQconsumeInput(c);
    }
    while (ok && (r = PQgetResult(c)) != NULL) { /* a result, then NULL: the statement is over */
        ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
    }
    return ok;
}

/* Readiness with the database: a pooled connection answers SELECT 1 within the connect
   timeout. Every connection in use counts as ready (the database is answering them);
   within the pause after a failed connect it is not ready at once. Nothing is logged:
   probes come every few seconds, and the 503 says it. */
static const char *mw__pg_ready(mw_req *rq, void *pool) {
    mw__pg_pool *p = (mw__pg_pool *)pool;
    mw__pg_slot *s;
    const char *why = NULL;
    int backing_off;
    pthread_mutex_lock(&p->lock);
    if (!p->size) p->size = mw__pg_pool_size(rq->app);
    s = mw__pg_take_free(p);
    backing_off = p->retry_at && mw__now_ms() < p->retry_at;
    pthread_mutex_unlock(&p->lock);
    if (!s) return NULL;
    if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
        if (backing_off || !mw__pg_open(rq, s)) why = "database unavailable";
    } else if (!mw__pg_answers(s->conn, rq->limits->v[MW_LIMIT_PG_CONNECT_TIMEOUT_S] * 1000)) {
        why = "database unavailable";
    }
    if (why) mw__pg_drop(s); /* the next statement connects anew; a statement cut short leaves none usable */
    mw__pg_give_back(p, s);
    return why;
}

/* A number as PostgreSQL prints it, if JSON can hold it: NaN and infinities cannot. */
static int mw__is_json_number(const char *v, size_t n) {
    const char *problem;
    int integral;
    return n && mw__jnumber_end(v, v + n, &integral, &problem) == v + n;
}

/* One field by its column's type OID (pg_type.h): numbers and booleans as JSON
   values, json and jsonb embedded as they are, SQL NULL as null, the rest a string. */
static int mw__pg_write_field(mw_json *j, const PGresult *r, int row, int col) {
    const char *v = PQgetvalue(r, row, col);
    size_t n = (size_t)PQgetlength(r, row, col);
    if (PQgetisnull(r, row, col)) return mw_json_null(j);
    switch (PQftype(r, col)) {
    case 16: return mw_json_bool(j, v[0] == 't'); /* bool */
    case 20:
    case 21:
    case 23:
    case 26: return mw__json_scalar(j, v, n); /* int8, int2, int4, oid */
    case 700:
    case 701:
    case 1700: /* float4, float8, numeric */
        return mw__is_json_number(v, n) ? mw__json_scalar(j, v, n) : mw_json_null(j);
    case 114:
    case 3802: return mw__json_scalar(j, v, n); /* json, jsonb: validated by the server */
    default: return mw_json_stringn(j, v, n);
    }
}

int mw_pg_write_row(mw_json *j, const PGresult *res, int row) {
    int col, rc = mw_json_object(j);
    for (col = 0; !rc && col < PQnfields(res); col++) {
        rc = mw_json_key(j, PQfname(res, col));
        if (!rc) rc = mw__pg_write_field(j, res, row, col);
    }
    return rc ? rc : mw_json_close(j);
}

int mw_pg_write_rows(mw_json *j, const PGresult *res) {
    int row, rc = mw_json_array(j);
    for (row = 0; !rc && row < PQntuples(res); row++) rc = mw_pg_write_row(j, res, row);
    return rc ? rc : mw_json_close(j);
}

int mw_pg_json(mw_req *rq, mw_res *rs, const char *sql, int nparams, const char *const *params) {
    PGresult *r = mw_pg_query(rq, sql, nparams, params);
    mw_json *j;
    if (!r) return MW_EIO; /* the answer is already the error */
    j = mw_json_begin(rs, 200);
    mw_pg_write_rows(j, r);
    return mw_json_end(j);
}

int mw_pg_json_one(mw_req *rq, mw_res *rs, const char *sql, int nparams, const char *const *params) {
    PGresult *r = mw_pg_query(rq, sql, nparams, params);
    mw_json *j;
    if (!r) return MW_EIO;
    if (PQntuples(r) == 0) return mw_error(rs, 404, "not found");
    j = mw_json_begin(rs, 200);
    mw_pg_write_row(j, r, 0);
    return mw_json_end(j);
}

void mw_pg_healthz(mw_req *rq, mw_res *rs) {
    mw__pg_pool *p = mw__pg_pool_of(rq->app);
    if (p && PQping(p->conninfo) == PQPING_OK) {
        mw_send_json(rs, 200, "{\"status\":\"ok\",\"database\":\"up\"}");
        return;
    }
    mw_set_header(rs, "Retry-After", "1");
    mw_error(rs, 503, "database unreachable");
}
#endif /* MICROWEB_WITH_PG */

/* ---------------------------------------------------------------------------
   extras: the in-process test client. Requests go through the same parser, router,
   handlers and response framing as on a socket, in the calling thread.
   --------------------------------------------------------------------------- */
struct mw_test_res_internal {
    mw_test_res pub;
    char *raw;              /* every byte the server wrote */
    char *fields;           /* the head again, each line NUL-terminated, for mw_test_header */
    char *body;             /* a chunked body, decoded */
    struct mw_jv_doc *json; /* the body parsed, once asked for (mw_test_body_json) */
};

/* The test client's io: what the server writes lands in a buffer. */
static long mw__sink_send(mw__conn *c, const struct iovec *iov, int n, int flags) {
    mw__buf *sink = (mw__buf *)c->io_ctx;
    long total = 0;
    int i;
    (void)flags;
    for (i = 0; i < n; i++) {
        if (mw__buf_append(sink, iov[i].iov_base, iov[i].iov_len) != 0) {
            errno = ENOMEM;
            return -1;
        }
        total += (long)iov[i].iov_len;
    }
    return total;
}

static long mw__sink_send_file(mw__conn *c, int fd, unsigned long long *offset, size_t n) {
    char buf[16384];
    ssize_t got = pread(fd, buf, n < sizeof buf ? n : sizeof buf, (off_t)*offset);
    if (got <= 0) return (long)got;
    if (mw__buf_append((mw__buf *)c->io_ctx, buf, (size_t)got) != 0) {
        errno = ENOMEM;
        return -1;
    }
    *offset += (unsigned long long)got;
    return (long)got;
}

static int mw__sink_wait_writable(mw__conn *c, long long timeout_ms) {
    (void)c;
    (void)timeout_ms;
    return 1;
}

static const mw__io mw__sink_io = {mw__sink_send, mw__sink_send_file, mw__sink_wait_writable};

/* A push stream answers: its writers are other threads. Waits until the app closes
   it, or for the write timeout, after which it counts as a client that went away. */
static void mw__test_wait_stream(mw__conn *c, const mw__limits *lim) {
    mw_stream *s = c->src.stream;
    struct timespec until = mw__realtime_after(lim->v[MW_LIMIT_WRITE_TIMEOUT_MS]);
    pthread_mutex_lock(&s->lock);
    while (!s->ending && !s->gone) {
        if (s->every_pending) { /* a timer's tick (mw_stream_every): this thread is the stream's worker */
            pthread_mutex_unlock(&s->lock);
            mw__stream_tick(s);
            pthread_mutex_lock(&s->lock);
            until = mw__realtime_after(lim->v[MW_LIMIT_WRITE_TIMEOUT_MS]);
        } else if (pthread_cond_timedwait(&s->changed, &s->lock, &until) != 0) {
            s->gone = 1;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

/* Decodes a chunked body (the server's own, so well formed) into out; its length. */
static size_t mw__test_dechunk(const char *p, const char *end, char *out) {
    size_t len = 0;
    while (p < end) {
        char *next;
        unsigned long size = strtoul(p, &next, 16);
        const char *data = mw__find(next, (size_t)(end - next), "\r\n", 2);
        if (!data || !size) break;
        data += 2;
        if ((size_t)(end - data) < size) size = (unsigned long)(end - data);
        memcpy(out + len, data, size);
        len += size;
        p = data + size + 2;
    }
    return len;
}

/* Splits the first final (non-1xx) response out of the server's output. */
static void mw__test_parse(struct mw_test_res_internal *ri, const char *raw, size_t n) {
    mw_test_res *r = &ri->pub;
    const char *p = raw, *end = raw + n;
    char *line;
    for (;;) {
        const char *head_end = mw__find(p, (size_t)(end - p), "\r\n\r\n", 4), *cl;
        size_t avail, want;
        if (!head_end || end - p < 12) return;
        r->status = atoi(p + 9);
        if (r->status >= 100 && r->status < 200) {
            p = head_end + 4;
            continue;
        }
        r->head = p;
        r->head_len = (size_t)(head_end + 2 - p);
        memcpy(ri->fields, p, r->head_len); /* each line ends "\0\n" here: C strings for mw_test_header */
        ri->fields[r->head_len] = '\0';
        for (line = ri->fields; (line = strchr(line, '\r')) != NULL;) *line++ = '\0';
        r->body = head_end + 4;
        avail = (size_t)(end - r->body);
        if ((cl = mw__find(p, r->head_len, "\r\nContent-Length: ", 18)) != NULL) {
            want = (size_t)strtoul(cl + 18, NULL, 10);
            r->body_len = want < avail ? want : avail; /* a HEAD answer has the length, not the bytes */
        } else if (mw__find(p, r->head_len, "\r\nTransfer-Encoding: chunked", 28) &&
                   (ri->body = (char *)MW_MALLOC(avail + 1))) {
            r->body_len = mw__test_dechunk(r->body, end, ri->body);
            ri->body[r->body_len] = '\0';
            r->body = ri->body;
        } else {
            r->body_len = avail; /* the body runs to the close */
        }
        return;
    }
}

mw_test_res *mw_test_raw(mw_app *app, const void *bytes, size_t n) {
    struct mw_test_res_internal *r = (struct mw_test_res_internal *)MW_MALLOC(sizeof *r);
    mw__worker *w = (mw__worker *)MW_MALLOC(sizeof *w);
    mw__buf sink;
    mw__conn c;
    if (!r || !w || !app) {
        MW_FREE(r);
        MW_FREE(w);
        return NULL;
    }
    memset(r, 0, sizeof *r);
    memset(w, 0, sizeof *w);
    memset(&c, 0, sizeof c);
    memset(&sink, 0, sizeof sink);
    w->app = app;
    if (!app->serving) mw__read_env_settings(app);
    c.fd = -1;
    memcpy(c.peer.ip, mw__v4_prefix, 12); /* a handler sees the client as 127.0.0.1, port 0 */
    c.peer.ip[12] = 127;
    c.peer.ip[15] = 1;
    c.io = &mw__sink_io;
    c.io_ctx = &sink;
    c.proto = &mw__http1;
    c.src.fd = -1;
    if (n && (c.rbuf = (char *)MW_MALLOC(n)) != NULL) {
        memcpy(c.rbuf, bytes, n);
        c.rcap = c.rlen = n;
    }
    mw__conn_process(w, &c);
    for (;;) { /* the same path as a socket's, with a client that takes every byte at once */
        int out = mw__conn_advance(w, &c);
        if (out == MW__OUT_PARKED) mw__test_wait_stream(&c, &app->limits);
        else if (out != MW__OUT_BLOCKED) break;
    }
    mw__conn_send(w, &c, NULL, 0);
    if (c.src.kind != MW__SRC_MEMORY) mw__conn_end_source(w, &c, 0);
    if (mw__buf_append(&sink, "", 1) == 0) sink.len--; /* raw is a C string too */
    r->raw = sink.data;
    r->fields = (char *)MW_MALLOC(sink.len + 1);
    r->pub.head = r->pub.body = "";
    if (r->raw && r->fields) mw__test_parse(r, r->raw, sink.len);
    r->pub.raw = r->raw;
    r->pub.raw_len = sink.len;
    mw__conn_release_rbuf(w, &c);
    mw__buf_free(&c.outq);
    mw__worker_free(w);
    MW_FREE(w);
    return &r->pub;
}

enum { MW__TEST_HAS_HOST = 1, MW__TEST_HAS_TYPE = 2 };

/* Appends the caller's header lines, each ended by CRLF whether it was written with
   CRLF, a bare LF or (the last one) nothing; empty lines are skipped, since one would
   end the head. Returns which of Host and Content-Type the lines hold. */
static int mw__test_put_headers(mw__buf *req, const char *headers) {
    int has = 0;
    while (headers && *headers) {
        size_t n = strcspn(headers, "\n"), len = n;
        if (len && headers[len - 1] == '\r') len--;
        if (len) {
            if (len >= 5 && mw__ieq(headers, 5, "host:")) has |= MW__TEST_HAS_HOST;
            if (len >= 13 && mw__ieq(headers, 13, "content-type:")) has |= MW__TEST_HAS_TYPE;
            mw__buf_append(req, headers, len);
            MW__PUT_LIT(req, "\r\n");
        }
        headers += n + (headers[n] == '\n');
    }
    return has;
}

/* headers is one string of lines, or list a NULL-terminated array of such strings */
static mw_test_res *mw__test_send(mw_app *app, const char *method, const char *target, const char *headers,
                                  const char *const *list, const char *content_type, const void *body,
                                  size_t body_len) {
    mw__buf req;
    mw_test_res *r;
    char len[32];
    int has;
    memset(&req, 0, sizeof req);
    snprintf(len, sizeof len, "%lu", (unsigned long)body_len);
    mw__buf_puts(&req, method ? method : "GET");
    MW__PUT_LIT(&req, " ");
    mw__buf_puts(&req, target ? target : "/");
    MW__PUT_LIT(&req, " HTTP/1.1\r\n");
    has = mw__test_put_headers(&req, headers);
    while (list && *list) has |= mw__test_put_headers(&req, *list++);
    if (!(has & MW__TEST_HAS_HOST)) MW__PUT_LIT(&req, "Host: test\r\n");
    if (content_type && !(has & MW__TEST_HAS_TYPE)) {
        MW__PUT_LIT(&req, "Content-Type: ");
        mw__buf_puts(&req, content_type);
        MW__PUT_LIT(&req, "\r\n");
    }
    if (body_len) {
        MW__PUT_LIT(&req, "Content-Length: ");
        mw__buf_puts(&req, len);
        MW__PUT_LIT(&req, "\r\n");
    }
    MW__PUT_LIT(&req, "\r\n");
    mw__buf_append(&req, body, body_len);
    r = mw_test_raw(app, req.data, req.len);
    mw__buf_free(&req);
    return r;
}

mw_test_res *mw_test_request(mw_app *app, const char *method, const char *target, const char *headers, const void *body,
                             size_t body_len) {
    return mw__test_send(app, method, target, headers, NULL, NULL, body, body_len);
}

mw_test_res *mw_test_json(mw_app *app, const char *method, const char *target, const char *headers, const char *json) {
    return mw__test_send(app, method, target, headers, NULL, json ? "application/json" : NULL, json,
                         json ? strlen(json) : 0);
}

mw_test_res *mw_test_requestv(mw_app *app, const char *method, const char *target, const char *const *headers,
                              const void *body, size_t body_len) {
    return mw__test_send(app, method, target, NULL, headers, NULL, body, body_len);
}

mw_test_res *mw_test_jsonv(mw_app *app, const char *method, const char *target, const char *const *headers,
                           const char *json) {
    return mw__test_send(app, method, target, NULL, headers, json ? "application/json" : NULL, json,
                         json ? strlen(json) : 0);
}

const mw_jv *mw_test_body_json(mw_test_res *res) {
    struct mw_test_res_internal *r = (struct mw_test_res_internal *)res;
    if (!r) return NULL;
    if (!r->json) r->json = mw_jv_parse(r->pub.body, r->pub.body_len, NULL, NULL);
    return mw_jv_root(r->json);
}

const char *mw_test_header(const mw_test_res *res, const char *name) {
    const struct mw_test_res_internal *r = (const struct mw_test_res_internal *)res;
    const char *line, *end;
    size_t n = name ? strlen(name) : 0, k;
    if (!r || !r->fields || !n) return NULL;
    end = r->fields + r->pub.head_len;
    for (line = r->fields + strlen(r->fields) + 2; line < end; line += strlen(line) + 2) {
        for (k = 0; k < n && mw__lower((unsigned char)line[k]) == mw__lower((unsigned char)name[k]); k++) {}
        if (k == n && line[n] == ':' && line[n + 1] == ' ') return line + n + 2;
    }
    return NULL;
}

void mw_test_free(mw_test_res *res) {
    struct mw_test_res_internal *r = (struct mw_test_res_internal *)res;
    if (!r) return;
    MW_FREE(r->raw);
    MW_FREE(r->fields);
    MW_FREE(r->body);
    mw_jv_free(r->json);
    MW_FREE(r);
}

#endif /* MICROWEB_IMPLEMENTATION_ONCE */
#endif /* MICROWEB_IMPLEMENTATION */
