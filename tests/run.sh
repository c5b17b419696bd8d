#!/usr/bin/env bash
# run.sh - builds every variant and runs every suite; the last line is the total
# "N passed, N failed". Logs of each step are kept in build/logs/.
set -u
cd "$(dirname "$0")/.."
B=build
L=$B/logs
mkdir -p "$L"
total_pass=0
total_fail=0
failed_steps=()
step_started=0 # each step's duration is on its line, so a slow one is plain to see
W="-Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wundef -Wconversion -Wsign-conversion -Werror"

tally() { # name passed failed
    total_pass=$((total_pass + $2))
    total_fail=$((total_fail + $3))
    printf '%-36s %4s passed, %s failed %5s s\n' "$1:" "$2" "$3" $((SECONDS - step_started))
    [ "$3" -eq 0 ] || failed_steps+=("$1")
}

# A single check: passes when the command exits 0.
check() { # name command...
    local name=$1
    shift
    step_started=$SECONDS
    if "$@" >"$L/$name.log" 2>&1; then
        tally "$name" 1 0
    else
        tally "$name" 0 1
        sed 's/^/    /' "$L/$name.log" | tail -20
    fi
}

# A suite prints "PASS x"/"FAIL x" lines and ends with "N passed, N failed"; a suite
# that crashes or exits non-zero with no failure counted is one failure more.
suite() { # name command...
    local name=$1 rc line pass fail
    shift
    step_started=$SECONDS
    "$@" >"$L/$name.log" 2>&1
    rc=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$L/$name.log" | tail -1)
    pass=${line%% passed*}
    fail=${line#*passed, }
    fail=${fail%% failed*}
    [ -n "$line" ] || { pass=0; fail=0; }
    if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
        fail=1
        echo "    $name exited with status $rc; log tail:"
        tail -20 "$L/$name.log" | sed 's/^/    /'
    fi
    tally "$name" "$pass" "$fail"
    grep -E '^FAIL|check failed|case ' "$L/$name.log" | head -20 | sed 's/^/    /'
}

# Builds side by side, one per core (each compiles the whole header); fails when any fails.
builds() { # command...
    printf '%s\0' "$@" | xargs -0 -n1 -P "$(nproc)" sh -c
}

# A test that calls the implementation's private mw__ functions or defines one of its MW_
# settings compiles the implementation into itself; any other program links one compiled
# for its variant, as the Makefile does (MICROWEB_IMPLEMENTATION_ONCE in QUICK START).
own_implementation() { # source
    grep -qE 'mw__|^#define MW_' "$1"
}

# one program per source file, named after it: the variants of the suites. The
# implementation is compiled once into dir/microweb.o, beside the programs with their own.
build_each() { # compiler-and-flags output-dir source-or-source=name...
    local cc=$1 dir=$2 first=() linked=() arg src out libs="-lm ${BUILD_LIBS:-}"
    shift 2
    first+=("$cc -pthread -x c -DMICROWEB_IMPLEMENTATION -c microweb.h -o $dir/microweb.o")
    for arg in "$@"; do
        src=${arg%%=*}
        out=$dir/$(basename "${arg#*=}" .c)
        if own_implementation "$src"; then
            first+=("$cc -pthread -I. $src -o $out $libs")
        else
            linked+=("$cc -pthread -I. -DMICROWEB_IMPLEMENTATION_ONCE $src $dir/microweb.o -o $out $libs")
        fi
    done
    builds "${first[@]}" && { [ ${#linked[@]} -eq 0 ] || builds "${linked[@]}"; }
}

impl=$B/impl.c
printf '#define MICROWEB_IMPLEMENTATION\n#include "microweb.h"\nint main(void){return 0;}\n' >"$impl"

symbols_are_prefixed() {
    cc -std=c99 -c -I. -x c "$impl" -o "$B/impl.o" &&
        ! nm -g --defined-only "$B/impl.o" | awk '{print $3}' | grep -v -E '^(mw_|main$)'
}

echo "== formatting: every C file as .clang-format lays it out (make format applies it)"
# the project's own C files, not those npm brings with a package (bench/ws/node_modules
# after make bench-ws); the Makefile's format rule lists the same
c_sources() {
    find microweb.h examples tests bench -name node_modules -prune -o -name '*.[ch]' -print
}
c_sources_formatted() {
    c_sources | xargs clang-format --style=file --dry-run --Werror
}
# a C file planted in a node_modules folder is not the project's to format
c_sources_skip_npm_packages() {
    local probe rc
    probe=$(mktemp -d bench/format-probe.XXXXXX) && mkdir "$probe/node_modules" &&
        echo 'int  planted ;' >"$probe/node_modules/planted.c" || return 1
    c_sources | grep -q planted.c
    rc=$?
    rm -rf "$probe"
    [ "$rc" -ne 0 ]
}
check c_sources_skip_npm_packages c_sources_skip_npm_packages
if clang-format --version 2>/dev/null | grep -q 'version 14\.'; then
    check c_sources_formatted c_sources_formatted
else
    echo "SKIP formatting: the check wants clang-format 14, Debian 12's (apt-get install clang-format)"
fi

echo "== the header builds every way users build it"
check header_gcc_c99 gcc -std=c99 $W -pthread -I. "$impl" -o "$B/h1"
check header_gcc_c11 gcc -std=c11 $W -pthread -I. "$impl" -o "$B/h2"
check header_clang_c99 clang -std=c99 $W -pthread -I. "$impl" -o "$B/h3"
check header_clang_c11 clang -std=c11 $W -pthread -I. "$impl" -o "$B/h4"
check header_gxx_cxx17 g++ -x c++ -std=c++17 -Wall -Wextra -Wpedantic -Werror -pthread -I. "$impl" -o "$B/h5"
check header_poll_backend gcc -std=c99 $W -DMW_USE_POLL=1 -pthread -I. "$impl" -o "$B/h6"
check two_translation_units sh -c "gcc -std=c99 $W -pthread tests/tu_a.c tests/tu_b.c -o $B/tu && $B/tu"
late=$B/late.c
printf '#include <stdio.h>\n#define MICROWEB_IMPLEMENTATION\n#include "microweb.h"\nint main(void){return 0;}\n' >"$late"
check header_after_system_header gcc $W -pthread -I. "$late" -o "$B/h7"
check header_after_system_header_strict_with_posix gcc -std=c99 $W -D_POSIX_C_SOURCE=200809L -pthread -I. "$late" -o "$B/h7s"
strict_build_says_why() { # a strict -std=c99 after a system header: the first error is ours
    ! gcc -std=c99 -pthread -I. "$late" -o "$B/h7e" 2>"$B/h7e.err" &&
        grep -m1 'error' "$B/h7e.err" | grep -q 'POSIX is hidden; include microweb.h before system headers'
}
check header_after_system_header_strict_says_why strict_build_says_why
check hello_plain_cc_build cc -pthread -I. examples/hello.c -o "$B/hello_plain"
check examples_warning_free builds "gcc -std=c99 $W -pthread -I. examples/hello.c -o $B/hello_strict" \
    "clang -std=c11 $W -pthread -I. examples/hello_test.c -o $B/hello_test_strict" \
    "gcc -std=c99 $W -pthread -I. examples/stream.c -o $B/stream_strict" \
    "clang -std=c99 $W -pthread -I. examples/chat.c -o $B/chat_strict" \
    "gcc -std=c99 $W -pthread -I. examples/notes.c -o $B/notes_strict" \
    "clang -std=c99 $W -pthread -I. examples/routes.c -o $B/routes_strict" \
    "gcc -std=c11 $W -pthread -I. examples/forms.c -o $B/forms_strict" \
    "clang -std=c11 $W -pthread -I. examples/inspect.c -o $B/inspect_strict" \
    "clang -std=c11 $W -pthread -I. tests/streams.c -o $B/streams_strict" \
    "gcc -std=c99 $W -pthread -I. tests/docsapp.c -o $B/docsapp_strict"
check exported_symbols_prefixed symbols_are_prefixed
# a program built without MICROWEB_IMPLEMENTATION: the first undefined symbol the
# linker names is the one that says what to do
link_error_names_the_fix() { # compiler
    sed '/MICROWEB_IMPLEMENTATION/d' examples/hello.c >"$B/hello_no_impl.c" &&
        ! $1 -pthread -I. "$B/hello_no_impl.c" -o "$B/hello_no_impl" 2>"$B/hello_no_impl.err" &&
        grep -m1 'undefined reference' "$B/hello_no_impl.err" |
        grep -q 'mw_define_MICROWEB_IMPLEMENTATION_in_exactly_one_c_file'
}
check missing_implementation_link_error_gcc link_error_names_the_fix gcc
check missing_implementation_link_error_clang link_error_names_the_fix clang
# linked to an implementation compiled elsewhere, a file's own allocator would be ignored
allocator_with_implementation_elsewhere_refused() {
    printf '#define MW_MALLOC(n) malloc(n)\n#define MW_REALLOC(p, n) realloc(p, n)\n#define MW_FREE(p) free(p)\n' \
        >"$B/alloc_once.c" && cat examples/hello.c >>"$B/alloc_once.c" &&
        ! cc -pthread -I. -DMICROWEB_IMPLEMENTATION_ONCE -c "$B/alloc_once.c" -o "$B/alloc_once.o" \
            2>"$B/alloc_once.err" && grep -q 'MW_MALLOC, MW_REALLOC and MW_FREE act where' "$B/alloc_once.err" &&
        cc -pthread -I. -c "$B/alloc_once.c" -o "$B/alloc_once.o" # the same file with its own implementation
}
check allocator_with_implementation_elsewhere_refused allocator_with_implementation_elsewhere_refused

echo "== installed as a C library, and make run APP="
# make install into a prefix of its own; a program away from the source tree builds with
# pkg-config's flags alone; make uninstall leaves no file behind
mw_version=$(sed -n 's/^#define MW_VERSION "\(.*\)"$/\1/p' microweb.h)
install_with_pkg_config() {
    local dir prefix pc
    dir=$(mktemp -d "$PWD/$B/install.XXXXXX") && prefix=$dir/prefix || return 1
    pc="env PKG_CONFIG_PATH=$prefix/share/pkgconfig pkg-config"
    make --no-print-directory install PREFIX="$prefix" || return 1
    cp examples/hello.c "$dir/" &&
        ! (cd "$dir" && cc -pthread hello.c -o hello) &&
        (cd "$dir" && cc hello.c -o hello $($pc --cflags --libs microweb)) &&
        [ "$($pc --modversion microweb)" = "$mw_version" ] &&
        $pc --cflags microweb-pg | grep -q -- -DMICROWEB_WITH_PG || return 1
    if [ -f "$(pg_config --includedir 2>/dev/null)/libpq-fe.h" ]; then
        printf '%s\n' '#define MICROWEB_IMPLEMENTATION' '#include "microweb.h"' \
            'int main(void) { mw_app *app = mw_app_new(); int rc = mw_pg_configure(app, "dbname=x");' \
            '    mw_app_free(app); return rc; }' >"$dir/pg.c"
        (cd "$dir" && cc pg.c -o pg $($pc --cflags --libs microweb-pg)) || return 1
    fi
    make --no-print-directory uninstall PREFIX="$prefix" && [ -z "$(find "$prefix" -type f)" ] && rm -r "$dir"
}
check install_with_pkg_config install_with_pkg_config
# make run APP=notes starts examples/notes.c, which answers on the port it is given
make_run_app_serves_that_example() {
    local port pid served=1
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    HOST=127.0.0.1 setsid make --no-print-directory run APP=notes PORT="$port" &
    pid=$!
    for _ in $(seq 600); do
        curl -sf "http://127.0.0.1:$port/openapi.json" | grep -q '"title":"Notes"' && { served=0; break; }
        sleep 0.1
    done
    kill -TERM -- "-$pid"
    wait "$pid"
    return $served
}
check make_run_app_serves_that_example make_run_app_serves_that_example

# json_locale runs under de_DE.UTF-8, a locale whose decimal point is a comma, compiled
# here from the source in Debian's `locales` package (.ci/run installs it).
compile_comma_locale() {
    [ -f "$B/locale/de_DE.UTF-8/LC_NUMERIC" ] ||
        { mkdir -p "$B/locale" && localedef -i de_DE -f UTF-8 "$B/locale/de_DE.UTF-8"; }
}

echo "== unit and end-to-end suites"
suite unit "$B/unit"
suite restart "$B/restart"
suite alloc "$B/alloc"
suite syscalls "$B/syscalls"
suite toolkit "$B/toolkit"
suite json_suite "$B/json_suite"
suite schema "$B/schema"
suite notes_test "$B/notes_test"
suite json_memory "$B/json_memory"
check compile_comma_locale compile_comma_locale
LOCPATH=$B/locale suite json_locale "$B/json_locale"
suite hello_test "$B/hello_test"
suite streams "$B/streams"
suite middleware "$B/middleware"
suite proxy "$B/proxy"
suite crypto "$B/crypto"
suite websocket_unit "$B/websocket"
suite limits_table "$B/limits_table" microweb.h README.md
suite ownership "$B/ownership"
suite static_unit "$B/static"
suite mustache "$B/mustache"
suite debug "$B/debug"
suite static python3 tests/static.py "$B/staticapp"
check build_static_walk cc -O2 -DMW_USE_OPENAT2=0 -pthread -I. tests/staticapp.c -o "$B/staticapp_walk"
suite static_walk python3 tests/static.py "$B/staticapp_walk" --walk --quick
json_check_exit_codes() {
    v=tests/vectors/JSONTestSuite/test_parsing
    tests/json_check $v/y_object.json && { tests/json_check $v/n_array_extra_comma.json; [ $? -eq 1 ]; } &&
        { tests/json_check; [ $? -eq 2 ]; } && { tests/json_check /nonexistent; [ $? -eq 2 ]; }
}
check json_check_exit_codes json_check_exit_codes
suite e2e python3 tests/e2e.py "$B/hello" "$B/testapp"
suite stream_example python3 tests/streams.py "$B/stream"
suite site python3 tests/site.py "$B/site"
suite ws python3 tests/ws.py "$B/wsapp"
if command -v node >/dev/null && [ -d tests/browser/node_modules/ws ]; then
    suite ws_node node tests/browser/ws.mjs "$B/wsapp"
else
    echo "SKIP ws_node: needs node and tests/browser/node_modules/ws (npm ci there)"
fi
suite chat python3 tests/chat.py "$B/chat"
suite docs python3 tests/docs.py "$B/docsapp"
suite notes python3 tests/notes.py "$B/notes"
suite course python3 tests/course.py "$B/routes" "$B/forms"
suite inspect python3 tests/inspect_example.py "$B/inspect"
# several processes on one port, sockets handed over, liveness and readiness, the drain
# delay; then a restart under wrk (.ci/run installs it) that must fail no request
suite deploy_unit "$B/deploy_unit"
suite deploy python3 tests/deploy.py "$B/deployapp"
suite restart_zero python3 tests/restart_zero.py "$B/deployapp"
suite proxy_e2e python3 tests/proxy.py "$B/inspect"
suite trace_client "$B/traceapp" --client
suite trace python3 tests/trace.py "$B/traceapp"
suite debug_mode python3 tests/debug_mode.py "$B/testapp"
# the OpenAPI documents of the notes example and of testapp, checked by an independent
# OpenAPI 3.1 validator from npm (.ci/run installs it: npm ci in tests/openapi)
if command -v node >/dev/null && [ -d tests/openapi/node_modules/@seriousme/openapi-schema-validator ]; then
    suite openapi_valid node tests/openapi/validate.mjs "$B/notes" "$B/testapp"
else
    echo "SKIP openapi_valid: needs node and tests/openapi/node_modules (npm ci there)"
fi

suite conformance python3 tests/conformance.py "$B/testapp"
MW_THREADS=1 suite e2e_one_worker python3 tests/e2e.py "$B/hello" "$B/testapp"
suite load python3 tests/load.py "$B/testapp"
suite ws_load python3 tests/ws_load.py "$B/ws_loadapp"

echo "== poll() backend"
mkdir -p "$B/poll"
check build_poll_variant build_each "cc -O2 $W -DMW_USE_POLL=1" "$B/poll" examples/hello.c tests/testapp.c \
    tests/alloc.c tests/wsapp.c
suite alloc_poll "$B/poll/alloc"
suite e2e_poll python3 tests/e2e.py "$B/poll/hello" "$B/poll/testapp"
suite ws_poll python3 tests/ws.py "$B/poll/wsapp" --quick

echo "== kqueue backend, over tests/kqueue_shim (kqueue's calls emulated with epoll)"
# the header then builds as on a BSD: its kqueue branch and its accept() without accept4.
# OpenBSD's macro, because gcc's own <stddef.h> reaches for FreeBSD and NetBSD headers.
KQ="-U__linux__ -D__OpenBSD__ -Itests/kqueue_shim"
check header_kqueue_backend_c99 gcc -std=c99 $W $KQ -pthread -I. "$impl" -o "$B/h10"
check header_kqueue_backend_cxx17 g++ -x c++ -std=c++17 -Wall -Wextra -Wpedantic -Werror $KQ -pthread -I. "$impl" -o "$B/h11"

echo "== AddressSanitizer + UndefinedBehaviorSanitizer (leaks checked at exit)"
mkdir -p "$B/asan"
# -O0: as thorough as -O1, compiles six times faster, and the suites wait on sockets, not CPU
SAN="-O0 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
check build_asan build_each "clang $SAN" "$B/asan" tests/unit.c examples/hello.c tests/testapp.c \
    tests/restart.c tests/toolkit.c tests/json_suite.c tests/schema.c tests/notes_test.c examples/notes.c \
    tests/json_memory.c tests/json_locale.c tests/streams.c tests/middleware.c tests/crypto.c tests/websocket.c \
    examples/site.c examples/stream.c examples/chat.c tests/static.c tests/staticapp.c tests/wsapp.c \
    tests/docsapp.c tests/mustache.c examples/routes.c examples/forms.c examples/inspect.c tests/deploy_unit.c \
    tests/deployapp.c tests/proxy.c tests/traceapp.c tests/debug.c
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
suite unit_asan "$B/asan/unit"
suite restart_asan "$B/asan/restart"
suite toolkit_asan "$B/asan/toolkit"
suite json_suite_asan "$B/asan/json_suite"
suite schema_asan "$B/asan/schema"
suite notes_test_asan "$B/asan/notes_test"
E2E_TIMEOUT_SCALE=3 suite notes_asan python3 tests/notes.py "$B/asan/notes"
E2E_TIMEOUT_SCALE=3 suite course_asan python3 tests/course.py "$B/asan/routes" "$B/asan/forms"
E2E_TIMEOUT_SCALE=3 suite inspect_asan python3 tests/inspect_example.py "$B/asan/inspect"
suite deploy_unit_asan "$B/asan/deploy_unit"
E2E_TIMEOUT_SCALE=3 suite deploy_asan python3 tests/deploy.py "$B/asan/deployapp"
E2E_TIMEOUT_SCALE=3 suite proxy_e2e_asan python3 tests/proxy.py "$B/asan/inspect"
suite trace_client_asan "$B/asan/traceapp" --client
E2E_TIMEOUT_SCALE=3 suite trace_asan python3 tests/trace.py "$B/asan/traceapp"
suite json_memory_asan "$B/asan/json_memory"
LOCPATH=$B/locale suite json_locale_asan "$B/asan/json_locale"
E2E_TIMEOUT_SCALE=3 suite streams_asan "$B/asan/streams"
suite middleware_asan "$B/asan/middleware"
suite proxy_asan "$B/asan/proxy"
suite crypto_asan "$B/asan/crypto"
suite websocket_unit_asan "$B/asan/websocket"
suite static_unit_asan "$B/asan/static"
suite mustache_asan "$B/asan/mustache"
suite debug_asan "$B/asan/debug"
E2E_TIMEOUT_SCALE=3 suite static_asan python3 tests/static.py "$B/asan/staticapp" --quick
E2E_TIMEOUT_SCALE=3 suite site_asan python3 tests/site.py "$B/asan/site"
E2E_TIMEOUT_SCALE=3 suite stream_example_asan python3 tests/streams.py "$B/asan/stream" --quick
E2E_TIMEOUT_SCALE=3 suite chat_asan python3 tests/chat.py "$B/asan/chat" --quick
E2E_TIMEOUT_SCALE=3 suite docs_asan python3 tests/docs.py "$B/asan/docsapp"
E2E_TIMEOUT_SCALE=3 suite e2e_asan python3 tests/e2e.py "$B/asan/hello" "$B/asan/testapp"
E2E_TIMEOUT_SCALE=3 suite debug_mode_asan python3 tests/debug_mode.py "$B/asan/testapp"
E2E_TIMEOUT_SCALE=3 suite conformance_asan python3 tests/conformance.py "$B/asan/testapp"
E2E_TIMEOUT_SCALE=3 suite ws_asan python3 tests/ws.py "$B/asan/wsapp" --quick
mkdir -p "$B/kqueue"
build_kqueue_asan() { # and the shim is in: the kqueue branch was built
    build_each "clang $SAN $KQ" "$B/kqueue" examples/hello.c tests/testapp.c tests/staticapp.c &&
        nm "$B/kqueue/hello" | grep -q kq_shim_fds
}
check build_kqueue_asan build_kqueue_asan
MW_THREADS=4 E2E_TIMEOUT_SCALE=3 suite e2e_kqueue_asan python3 tests/e2e.py "$B/kqueue/hello" "$B/kqueue/testapp" --quick
# not Linux to the header: static files by the O_NOFOLLOW walk, sent by pread and send
check kqueue_static_without_sendfile sh -c "! nm $B/kqueue/staticapp | grep -q ' U sendfile'"
MW_THREADS=2 E2E_TIMEOUT_SCALE=3 suite static_kqueue_asan python3 tests/static.py "$B/kqueue/staticapp" --walk --quick
MW_THREADS=1 E2E_TIMEOUT_SCALE=3 \
    suite e2e_kqueue_one_worker_asan python3 tests/e2e.py "$B/kqueue/hello" "$B/kqueue/testapp" --quick

echo "== fuzz corpora and regressions replayed (no fuzzing) under ASan + UBSan"
fuzz_targets="request route percent json pipeline schema template forwarded"
build_fuzz_replays() {
    local cmds=() t
    for t in $fuzz_targets; do
        cmds+=("clang $SAN -Itests/fuzz tests/fuzz/fuzz_$t.c tests/fuzz/replay.c -o $B/asan/replay_$t -lm")
    done
    builds "${cmds[@]}"
}
check build_fuzz_replays build_fuzz_replays
for t in $fuzz_targets; do
    check "fuzz_replay_$t" "$B/asan/replay_$t" "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t"
done

echo "== PostgreSQL hooks against a throwaway server"
pg_include=$(pg_config --includedir 2>/dev/null || true)
if [ -n "$pg_include" ] && [ -f "$pg_include/libpq-fe.h" ]; then
    PG="-DMICROWEB_WITH_PG -I$pg_include"
    check header_with_pg_c99 gcc -std=c99 $W $PG -pthread -I. "$impl" -o "$B/h8" -lpq
    check header_with_pg_cxx g++ -x c++ -std=c++17 -Wall -Wextra -Wpedantic -Werror $PG -pthread -I. "$impl" -o "$B/h9" -lpq
    mkdir -p "$B/pg" "$B/asan/pg" "$B/tsan/pg"
    build_pg() {
        BUILD_LIBS=-lpq build_each "cc -O2 -g $PG $W" "$B/pg" tests/pgapp.c examples/todo_pg.c \
            bench/tfb/app.c=tfb_app tests/pg_batch.c tests/pg_shared.c &&
            BUILD_LIBS=-lpq build_each "clang $SAN $PG" "$B/asan/pg" tests/pgapp.c tests/pg_batch.c tests/pg_shared.c &&
            BUILD_LIBS=-lpq build_each "clang -O0 -g -fsanitize=thread $PG" "$B/tsan/pg" tests/pg_shared.c
    }
    check build_pgapp build_pg
    suite pg python3 tests/pg.py "$B/pg/pgapp"
    suite todo_pg python3 tests/todo_pg.py "$B/pg/todo_pg"
    suite readme_deployment python3 tests/readme_deployment.py "$B/pg/todo_pg" "$B/site"
    suite pg_batch bash tests/with_pg_db.sh "$B/pg/pg_batch"
    suite tfb python3 tests/tfb.py "$B/pg/tfb_app"
    E2E_TIMEOUT_SCALE=3 suite pg_asan python3 tests/pg.py "$B/asan/pg/pgapp"
    suite pg_batch_asan bash tests/with_pg_db.sh "$B/asan/pg/pg_batch"
    suite pg_shared bash tests/with_pg_db.sh "$B/pg/pg_shared"
    suite pg_shared_asan bash tests/with_pg_db.sh "$B/asan/pg/pg_shared"
    TSAN_OPTIONS="halt_on_error=1 exitcode=66" suite pg_shared_tsan bash tests/with_pg_db.sh "$B/tsan/pg/pg_shared"
else
    echo "SKIP pg: libpq-fe.h not found (apt-get install postgresql libpq-dev)"
fi

echo "== ThreadSanitizer (concurrency)"
mkdir -p "$B/tsan"
TSAN="-O0 -g -fsanitize=thread"
check build_tsan build_each "clang $TSAN" "$B/tsan" examples/hello.c tests/testapp.c tests/streams.c \
    examples/stream.c tests/ownership.c examples/site.c examples/chat.c tests/staticapp.c tests/wsapp.c tests/deployapp.c \
    tests/traceapp.c tests/syscalls.c
TSAN_OPTIONS="halt_on_error=1 exitcode=66" suite ownership_tsan "$B/tsan/ownership"
TSAN_OPTIONS="halt_on_error=1 exitcode=66" suite syscalls_tsan "$B/tsan/syscalls"
TSAN_OPTIONS="halt_on_error=1 exitcode=66" E2E_TIMEOUT_SCALE=5 suite trace_tsan python3 tests/trace.py "$B/tsan/traceapp"
TSAN_OPTIONS="halt_on_error=1 exitcode=66" E2E_TIMEOUT_SCALE=5 suite streams_tsan "$B/tsan/streams"
TSAN_OPTIONS="halt_on_error=1 exitcode=66" E2E_TIMEOUT_SCALE=5 \
    suite stream_example_tsan python3 tests/streams.py "$B/tsan/stream" --quick
# four workers whatever the machine: their connections are armed edge-triggered
MW_THREADS=4 TSAN_OPTIONS="halt_on_error=1 exitcode=66" E2E_TIMEOUT_SCALE=5 \
    suite e2e_tsan python3 tests/e2e.py "$B/tsan/hello" "$B/tsan/testapp" --quick
TSAN_OPTIONS="halt_on_error=1 exitcode=66" E2E_TIMEOUT_SCALE=5 suite site_tsan python3 tests/site.py "$B/tsan/site"
TSAN_OPTIONS="halt_on_error=1 exitcode=66" E2E_TIMEOUT_SCALE=5 suite chat_tsan python3 tests/chat.py "$B/tsan/chat" --quick
TSAN_OPTIONS="halt_on_error=1 exitcode=66" E2E_TIMEOUT_SCALE=5 \
    suite static_tsan python3 tests/static.py "$B/tsan/staticapp" --quick
# the broadcast thread, held handles and members that come and go, all under TSan
TSAN_OPTIONS="halt_on_error=1 exitcode=66" E2E_TIMEOUT_SCALE=5 suite ws_tsan python3 tests/ws.py "$B/tsan/wsapp" --quick
# the stop's accept counting and the drain delay's flags, with the restart under load
TSAN_OPTIONS="halt_on_error=1 exitcode=66" E2E_TIMEOUT_SCALE=5 suite deploy_tsan python3 tests/deploy.py "$B/tsan/deployapp"
TSAN_OPTIONS="halt_on_error=1 exitcode=66" suite restart_zero_tsan python3 tests/restart_zero.py "$B/tsan/deployapp"
mkdir -p "$B/tsan/kqueue"
check build_kqueue_tsan build_each "clang $TSAN $KQ" "$B/tsan/kqueue" examples/hello.c tests/testapp.c
MW_THREADS=4 TSAN_OPTIONS="halt_on_error=1 exitcode=66" E2E_TIMEOUT_SCALE=5 \
    suite e2e_kqueue_tsan python3 tests/e2e.py "$B/tsan/kqueue/hello" "$B/tsan/kqueue/testapp" --quick

echo "== a real browser: the stream, site and chat examples and the /docs page in Debian's chromium, driven by playwright-core"
if [ -x /usr/bin/chromium ] && [ -d tests/browser/node_modules/playwright-core ]; then
    suite browser_events node tests/browser/events.mjs "$B/stream" "$B/browser-events.png"
    suite browser_site node tests/browser/site.mjs "$B/site" "$B"
    suite browser_chat node tests/browser/chat.mjs "$B/chat" "$B"
    suite browser_docs node tests/browser/docs.mjs "$B/docsapp" "$B" "$B/notes"
else
    echo "SKIP browser: needs /usr/bin/chromium (apt-get install chromium) and tests/browser/node_modules (npm ci there)"
fi

echo "== valgrind (memory errors and leaks, whole end-to-end suite)"
E2E_WRAPPER="valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --error-exitcode=99" \
    E2E_TIMEOUT_SCALE=10 suite e2e_valgrind python3 tests/e2e.py "$B/hello" "$B/testapp" --quick
E2E_WRAPPER="valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --error-exitcode=99" \
    E2E_TIMEOUT_SCALE=10 suite stream_example_valgrind python3 tests/streams.py "$B/stream" --quick
E2E_WRAPPER="valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --error-exitcode=99" \
    E2E_TIMEOUT_SCALE=10 suite site_valgrind python3 tests/site.py "$B/site"
# valgrind does not know openat2 (ENOSYS): the server falls back to the walk at run time
E2E_WRAPPER="valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --error-exitcode=99" \
    E2E_TIMEOUT_SCALE=10 suite static_valgrind python3 tests/static.py "$B/staticapp" --walk --quick
E2E_WRAPPER="valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --error-exitcode=99" \
    E2E_TIMEOUT_SCALE=10 suite ws_valgrind python3 tests/ws.py "$B/wsapp" --quick
E2E_WRAPPER="valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --error-exitcode=99" \
    E2E_TIMEOUT_SCALE=10 suite docs_valgrind python3 tests/docs.py "$B/docsapp"
suite schema_valgrind valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all \
    --error-exitcode=99 "$B/schema"
suite middleware_valgrind valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all \
    --error-exitcode=99 "$B/middleware"
E2E_TIMEOUT_SCALE=10 suite streams_valgrind valgrind -q --leak-check=full --show-leak-kinds=all \
    --errors-for-leak-kinds=all --error-exitcode=99 "$B/streams"

# a CI log is often read from its tail: name what failed just above the total
for step in "${failed_steps[@]+"${failed_steps[@]}"}"; do
    echo "FAILED $step (build/logs/$step.log):"
    { grep -E '^FAIL|check failed|case ' "$L/$step.log" || tail -5 "$L/$step.log"; } | head -8 | sed 's/^/    /'
done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
