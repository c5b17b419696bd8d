#!/usr/bin/env python3
"""Debug mode switched on from the environment, end to end: tests/testapp.c started with
MW_DEBUG=1 warns once when it starts, and its 500 for a JSON writer misuse names the
call and the route; started without it, it does neither (the production answer).

usage: python3 tests/debug_mode.py TESTAPP_BINARY

Prints "PASS name" / "FAIL name: detail" per check and "N passed, N failed" last.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import Server, check, check_clean_exit, command_for, exchange, short, summary, T  # noqa: E402

WARNING_RE = re.compile(r"^microweb: debug mode is on: error answers show internals; do not use in production$")
GENERIC_500 = {"status": 500, "error": "Internal Server Error", "detail": "the response could not be produced"}
EXPLAINED_500 = dict(GENERIC_500, detail="mw_json_string: a value where a key is due", route="GET /json-misuse")


def run(binary, prefix, env, want_body, want_warning):
    server = Server(command_for(binary), env)
    try:
        if not check(prefix + "_starts_and_reports_port", server.wait_ready(), server.stderr_text()):
            return
        resp = exchange(server.port, "GET", "/json-misuse")
        body = json.loads(resp.body) if resp.status == 500 else None
        check(prefix + "_json_misuse_answer", (resp.status, body) == (500, want_body), short(resp.body))
        server.terminate()
        check_clean_exit(prefix, server)
        server.wait_stderr_closed(T(5))
        warnings = [i for i, line in enumerate(server.lines) if WARNING_RE.match(line)]
        listening = [i for i, line in enumerate(server.lines) if "listening on" in line]
        check(prefix + ("_warns_once_after_listening" if want_warning else "_does_not_warn"),
              len(warnings) == int(want_warning) and all(i > listening[0] for i in warnings), server.stderr_text())
    finally:
        server.kill()


def main():
    binary = sys.argv[1]
    run(binary, "debug_env_on", {"MW_DEBUG": "1"}, EXPLAINED_500, True)
    run(binary, "debug_env_off", {"MW_DEBUG": ""}, GENERIC_500, False)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
