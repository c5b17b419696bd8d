# microweb - build, run and test.   make | make run [APP=notes] | make test | make install | make clean
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wundef -Wconversion \
           -Wsign-conversion
PORT    ?= 8080
B       := build

.PHONY: all run run-stream run-site run-chat run-notes run-inspect install uninstall test clean format fuzz bench bench-quick bench-streams bench-static bench-ws bench-validate bench-templates bench-tfb bench-proxy run-pg

all: $(B)/hello $(B)/routes $(B)/forms $(B)/stream $(B)/site $(B)/chat $(B)/notes $(B)/inspect $(B)/notes_test $(B)/middleware $(B)/crypto $(B)/ownership $(B)/testapp $(B)/unit $(B)/restart $(B)/alloc $(B)/syscalls $(B)/toolkit $(B)/json_suite $(B)/json_memory \
     $(B)/json_locale $(B)/limits_table $(B)/schema $(B)/hello_test $(B)/streams $(B)/static $(B)/staticapp $(B)/websocket $(B)/wsapp \
     $(B)/ws_loadapp $(B)/docsapp $(B)/deployapp $(B)/deploy_unit $(B)/mustache $(B)/proxy $(B)/traceapp \
     $(B)/debug tests/json_check

$(B):
	mkdir -p $(B)

# The implementation is compiled once, into build/microweb.o. A program that uses only the
# public API links it: -DMICROWEB_IMPLEMENTATION_ONCE tells the header, which the program's
# own "#define MICROWEB_IMPLEMENTATION" would otherwise compile again, that it is compiled
# already. A test that calls the implementation's private mw__ functions or defines one of
# its MW_ settings compiles the implementation into itself: at -O0, where such a test runs
# in milliseconds either way and -O2 would take four times as long to build; the parser,
# JSON and crypto unit tests at $(CFLAGS), so the optimizer meets that code under test too.
$(B)/microweb.o: microweb.h | $(B)
	$(CC) $(CFLAGS) $(WARN) -pthread -x c -DMICROWEB_IMPLEMENTATION -c microweb.h -o $@

LINK_IMPL := -DMICROWEB_IMPLEMENTATION_ONCE $(B)/microweb.o
OWN_IMPL := $(patsubst tests/%.c,$(B)/%,$(shell grep -lE 'mw__|^#define MW_' tests/*.c))
OPTIMIZED_UNITS := $(B)/unit $(B)/json_suite $(B)/crypto
DEPS := -MMD -MP # build/x.d: the files x includes, so a change to any of them rebuilds it

# an example: build/notes from examples/notes.c (todo_pg has a rule of its own)
$(B)/%: examples/%.c $(B)/microweb.o
	$(CC) $(CFLAGS) $(WARN) $(DEPS) -pthread -I. $< $(LINK_IMPL) -o $@

$(OWN_IMPL): $(B)/%: tests/%.c microweb.h | $(B)
	$(CC) $(CFLAGS) $(if $(filter $@,$(OPTIMIZED_UNITS)),,-O0) $(WARN) $(DEPS) -pthread -I. $< -o $@ -lm

# a test program: build/streams from tests/streams.c
$(B)/%: tests/%.c $(B)/microweb.o
	$(CC) $(CFLAGS) $(WARN) $(DEPS) -pthread -I. $< $(LINK_IMPL) -o $@ -lm

-include $(wildcard $(B)/*.d)

# the command-line checker: tests/json_check FILE exits 0 accepted, 1 rejected, 2 usage
tests/json_check: tests/json_check.c tests/json_common.h $(B)/microweb.o
	$(CC) $(CFLAGS) $(WARN) -pthread -I. $< $(LINK_IMPL) -o $@

# an example, named by its file in examples/ without .c (hello by default), with one
# access log line per request (MW_ACCESS_LOG=0 turns it off): make run APP=notes
APP ?= hello
# the examples that need more than to be started: site a secret key (one made for this
# run only), todo_pg a throwaway database (examples/run_todo_pg.sh)
start_site = MW_SECRET_KEY=$${MW_SECRET_KEY:-$$(head -c 32 /dev/urandom | base64)} ./$(B)/site
start_todo_pg = bash examples/run_todo_pg.sh $(B)/todo_pg
ifneq ($(filter run,$(MAKECMDGOALS)),)
$(if $(wildcard examples/$(APP).c),,$(error APP=$(APP): no examples/$(APP).c; APP names a file in examples/ without .c))
endif
run: $(B)/$(APP)
	PORT=$(PORT) MW_ACCESS_LOG=$${MW_ACCESS_LOG:-1} $(or $(start_$(APP)),./$(B)/$(APP))

# the streaming example: Server-Sent Events at /, /events and /export
run-stream:
	@$(MAKE) --no-print-directory run APP=stream

# the site example: login form, session, CSRF, CORS, static files
run-site:
	@$(MAKE) --no-print-directory run APP=site

# the WebSocket example: a chat page at /, the chat room at /ws/chat, an echo at /ws/echo
run-chat:
	@$(MAKE) --no-print-directory run APP=chat

# the notes API: declared inputs checked before each handler, its OpenAPI document at /openapi.json
run-notes:
	@$(MAKE) --no-print-directory run APP=notes

# Installs the header and two pkg-config files, so that a program anywhere builds with
#   cc app.c $(pkg-config --cflags --libs microweb)      (microweb-pg: with the PostgreSQL hooks)
# The .pc files go to share/pkgconfig, the place for files that are the same on every
# architecture (microweb has no library to link); Debian's pkg-config searches
# /usr/local/share/pkgconfig by default (pkg-config --variable pc_path pkg-config).
PREFIX ?= /usr/local
PKGCONFIGDIR ?= $(PREFIX)/share/pkgconfig
VERSION := $(shell sed -n 's/^.define MW_VERSION "\(.*\)"$$/\1/p' microweb.h)
# a pkg-config file: $(1) name, $(2) description, then its requirements and compiler flags
pc_file = printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$${prefix}/include' '' 'Name: $(1)' 'Description: $(2)' \
          'Version: $(VERSION)' $(3)
INSTALLED := $(DESTDIR)$(PREFIX)/include/microweb.h $(DESTDIR)$(PKGCONFIGDIR)/microweb.pc \
             $(DESTDIR)$(PKGCONFIGDIR)/microweb-pg.pc

install:
	@test -n "$(VERSION)" || { echo "install: no MW_VERSION in microweb.h" >&2; exit 1; }
	install -d "$(DESTDIR)$(PREFIX)/include" "$(DESTDIR)$(PKGCONFIGDIR)"
	install -m 644 microweb.h "$(DESTDIR)$(PREFIX)/include/microweb.h"
	$(call pc_file,microweb,a web framework for C in one header,'Cflags: -I$${includedir} -pthread' \
	    'Libs: -pthread') >"$(DESTDIR)$(PKGCONFIGDIR)/microweb.pc"
	$(call pc_file,microweb-pg,microweb with its PostgreSQL hooks,'Requires: microweb libpq' \
	    'Cflags: -DMICROWEB_WITH_PG') >"$(DESTDIR)$(PKGCONFIGDIR)/microweb-pg.pc"

# removes the three files install wrote, and nothing else
uninstall:
	rm -f $(foreach f,$(INSTALLED),"$(f)")

# answers any request with everything it carried: JSON, or an HTML page in a browser
run-inspect:
	@$(MAKE) --no-print-directory run APP=inspect

# the programs build side by side, one per core; tests/run.sh builds its variants the same way
test:
	@$(MAKE) --no-print-directory -j$$(nproc) all
	bash tests/run.sh

clean:
	rm -rf $(B) tests/json_check

# lays out every C file as .clang-format says (clang-format 14; not npm's packages); make test checks it
format:
	find microweb.h examples tests bench -name node_modules -prune -o -name '*.[ch]' -print | xargs clang-format --style=file -i

# libFuzzer targets (clang): FUZZ_SECONDS per target, default 600
fuzz:
	bash tests/fuzz/run.sh

# Benchmarks (bench/run.py): hello vs nginx, Flask and FastAPI with wrk, servers on core 1;
# report in bench/results/latest.md + sweep.svg (quick: quick.md, under a minute).
# bench/streams.py: SSE fan-out vs Node.js and FastAPI, large bodies vs nginx, memory per
# stream; report in bench/results/streams.md (bench-streams: that part alone, 5 s windows)
# bench/middleware.py: the hello row with hooks and with a session, as ratios to hello alone
# bench/static.py: mw_static against nginx serving one folder (4 KiB, 1 MiB, 304, 100 MB
# downloads, memory with 1,000 slow downloads); report in bench/results/static.md
# (bench-static: that part alone)
# bench/validate.py: a valid 1 KiB note POSTed to a declared route, against the same handler
# without the declaration and against FastAPI (pydantic); report in bench/results/validate.md
# (bench-validate: that part alone)
# bench/ws.py: WebSocket echo and broadcast vs Node.js ws and Kore (round trips/s, CPU per
# message), memory per idle WebSocket; report in bench/results/ws.md (bench-ws: that part alone)
# bench/templates.py: a page of 100 fortunes from a template vs by hand (mw_printf) and vs
# Flask + Jinja2 (CPU per request, callgrind); report in bench/results/templates.md
# bench/proxy.py: hello direct against three instances behind nginx (plain and TLS): the
# proxy hop's CPU per request and p99; report in bench/results/proxy.md (bench-proxy: that alone)
# bench/tfb.py: the six TechEmpower test types (bench/tfb/app.c) vs Kore, FastAPI + asyncpg,
# Flask + psycopg2 and (plaintext, json) nginx on one database; report in bench/results/tfb.md
BENCH_SECONDS ?= 8

bench:
	python3 bench/run.py --duration $(BENCH_SECONDS)
	python3 bench/db.py --duration $(BENCH_SECONDS)
	python3 bench/streams.py --duration $(BENCH_SECONDS)
	python3 bench/middleware.py
	python3 bench/static.py
	python3 bench/ws.py
	python3 bench/validate.py
	python3 bench/templates.py
	python3 bench/proxy.py
	python3 bench/tfb.py

bench-quick:
	python3 bench/run.py --quick

bench-streams:
	python3 bench/streams.py

bench-static:
	python3 bench/static.py

bench-ws:
	python3 bench/ws.py

bench-validate:
	python3 bench/validate.py

bench-templates:
	python3 bench/templates.py

bench-proxy:
	python3 bench/proxy.py

bench-tfb:
	python3 bench/tfb.py

# The PostgreSQL example (needs libpq: apt-get install libpq-dev; not part of `all`)
$(B)/todo_pg: examples/todo_pg.c microweb.h | $(B)
	$(CC) $(CFLAGS) $(WARN) -DMICROWEB_WITH_PG -I"$$(pg_config --includedir)" -pthread -I. examples/todo_pg.c -o $@ -lpq

# The TechEmpower benchmark app (bench/tfb/app.c; tables: bench/tfb/create.sql; not part of `all`)
$(B)/tfb_app: bench/tfb/app.c microweb.h | $(B)
	$(CC) $(CFLAGS) $(WARN) -DMICROWEB_WITH_PG -I"$$(pg_config --includedir)" -pthread -I. bench/tfb/app.c -o $@ -lpq

# The todo API on a throwaway database (tests/pg_db.sh) until Ctrl-C; the database is
# always stopped and deleted afterwards. Needs the PostgreSQL server: apt-get install postgresql
run-pg:
	@$(MAKE) --no-print-directory run APP=todo_pg
