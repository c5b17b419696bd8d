#!/usr/bin/env python3
"""templates.py - what a page from a template costs: a page of 100 rows in the fortunes
shape (an id and a message whose characters HTML escapes) per request, GET / of

    template  bench/templates_app.c: mw_render of bench/templates/fortunes.html
    printf    the same bytes written by hand with mw_printf and mw_html_escape
    flask     bench/flask_templates.py: Flask + Jinja2 (autoescape) under gunicorn -w 1

targets: server CPU per request, flask / template >= 20x and template / printf <= 1.5x.

Server CPU per request under wrk -t1 -c16 (the server pinned to one core, one worker
thread or process), the variants alternating round by round so a drift of the machine
hits all of them; and for the two microweb variants, instructions counted by valgrind's
callgrind over keep-alive requests (the difference between two request counts, so
start-up and exit cancel out).

    python3 bench/templates.py [--duration N] [--rounds N] [--quick]

Writes bench/results/templates.{md,json} (--quick: templates-quick.*). Linux only.
"""
import datetime
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import middleware  # noqa: E402
import run as bench  # noqa: E402

VARIANTS = ("template", "printf", "flask")
CALLGRIND_COUNTS = (500, 1500)
CONNECTIONS = 16


def command(binary, variant, port):
    if variant == "flask":
        return (bench.pinned("/usr/bin/gunicorn", "-w", "1", "-k", "sync", "-b", f"127.0.0.1:{port}", "--backlog",
                             bench.BACKLOG, "--chdir", bench.BENCH_DIR, "--log-level", "warning",
                             "flask_templates:app"), bench.peer_env())
    return bench.pinned(binary), bench.peer_env(PORT=str(port), MW_THREADS="1", MW_BENCH_PAGE=variant)


def start(binary, variant, workdir):
    port = bench.free_port()
    argv, env = command(binary, variant, port)
    log = Path(workdir) / f"{variant}.log"
    proc = subprocess.Popen(argv, env=env, cwd=bench.ROOT, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
                            preexec_fn=bench.raise_nofile, start_new_session=True)
    bench.wait_ready(proc, port, log)
    return proc, port


def page(port):
    """The body of GET / on a new connection."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[1]


def cpu_rows(binary, rounds, duration, workdir):
    """{variant: [(cpu µs/req, req/s) per round]}, the variants alternating; and the pages."""
    servers = {v: start(binary, v, workdir) for v in VARIANTS}
    rows = {v: [] for v in VARIANTS}
    try:
        pages = {v: page(port) for v, (_, port) in servers.items()}
        if pages["template"] != pages["printf"] or pages["flask"].count(b"<tr><td>") != 100:
            raise bench.BenchError("the variants do not answer the same page")
        for v, (proc, port) in servers.items():  # warm-up
            wrk_cpu(proc, port, 1)
        for r in range(rounds):
            for v in (VARIANTS if r % 2 == 0 else tuple(reversed(VARIANTS))):
                rows[v].append(wrk_cpu(*servers[v], duration))
    finally:
        for proc, _ in servers.values():
            bench.stop(proc)
    return rows, pages


def wrk_cpu(proc, port, duration):
    return middleware.wrk_cpu_per_request(proc, port, None, duration, connections=CONNECTIONS)


def callgrind_total(binary, variant, requests, workdir):
    """Instructions callgrind counts in a whole run answering `requests` GET / on one
    keep-alive connection."""
    port = bench.free_port()
    out = Path(workdir) / f"cg.{variant}.{requests}"
    log = Path(workdir) / f"cg.{variant}.{requests}.log"
    _, env = command(binary, variant, port)
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(binary)], env=env,
                            cwd=bench.ROOT, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    try:
        bench.wait_ready(proc, port, log, timeout=60)
        with socket.create_connection(("127.0.0.1", port)) as s:
            for _ in range(requests):
                s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
                if bench.read_response(s) != 200:
                    raise bench.BenchError("GET / did not answer 200 under callgrind")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    return middleware.callgrind_summary(out)


def instructions_per_request(binary, workdir):
    small, large = CALLGRIND_COUNTS
    return {v: (callgrind_total(binary, v, large, workdir) - callgrind_total(binary, v, small, workdir)) /
            (large - small) for v in ("template", "printf")}


def report(rows, instr, pages, plan):
    # the least disturbed round of each variant: this host's noise only ever adds CPU
    cpu = {v: min(c for c, _ in rows[v]) for v in VARIANTS}
    median = {v: statistics.median(c for c, _ in rows[v]) for v in VARIANTS}
    rps = {v: statistics.median(r for _, r in rows[v]) for v in VARIANTS}
    flask_ratio, printf_ratio = cpu["flask"] / cpu["template"], cpu["template"] / cpu["printf"]
    met = {"flask_over_template": flask_ratio >= 20, "template_over_printf": printf_ratio <= 1.5}
    lines = [
        "# Templates: a page of 100 fortunes",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, `python3 bench/templates.py"
        f"{' --quick' if plan['quick'] else ''}`: {plan['rounds']} rounds of {plan['duration']} s per variant, "
        f"alternating; wrk -t1 -c{CONNECTIONS} GET /; {bench.CORE_NOTE}; one worker thread (MW_THREADS=1) or "
        "process (gunicorn -w 1 -k sync).",
        "",
        "| variant | server CPU per request (best round) | median round | instructions per request (callgrind) "
        "| req/s | body bytes |",
        "|---|---|---|---|---|---|",
    ]
    for v in VARIANTS:
        ins = f"{instr[v]:,.0f}" if v in instr else "-"
        lines.append(f"| {v} | {cpu[v]:.2f} µs | {median[v]:.2f} µs | {ins} | {rps[v]:,.0f} | {len(pages[v]):,} |")
    lines += [
        "",
        f"- Flask + Jinja2 / template: **{flask_ratio:.1f}x** the CPU per request (target >= 20x: "
        f"{'met' if met['flask_over_template'] else 'MISSED'}).",
        f"- template / printf: **{printf_ratio:.2f}x** (target <= 1.5x: "
        f"{'met' if met['template_over_printf'] else 'MISSED'}); instructions "
        f"{instr['template'] / instr['printf']:.2f}x.",
        "",
        "The page: a table of 100 rows, each an id and a 60-byte message with `<`, `>`, `&`, `\"` and `'` "
        "(11.6 KB escaped). `template` renders it from a view parsed once at start (as a handler holding its "
        "data as `mw_jv`), `printf` writes the same bytes (checked equal) with mw_printf and mw_html_escape. "
        "Jinja2 escapes `\"` and `'` as `&#34;` and `&#39;`, so its page differs in a few bytes per row. "
        "gunicorn's sync worker closes each connection after its answer, so Flask's CPU includes a connection "
        "per request. Instructions: (run of "
        f"{CALLGRIND_COUNTS[1]} requests - run of {CALLGRIND_COUNTS[0]}) / {CALLGRIND_COUNTS[1] - CALLGRIND_COUNTS[0]}, "
        "all threads. CPU rounds: " + "; ".join(f"{v} " + ", ".join(f"{c:.1f}" for c, _ in rows[v]) for v in VARIANTS),
    ]
    return "\n".join(lines) + "\n", {"cpu_us": cpu, "cpu_us_median": median, "rps": rps, "instructions": instr,
                                     "rounds": rows, "met": met}


def main():
    plan = bench.focused_plan(5)
    bench.raise_nofile()
    missing = (bench.ensure(bench.which_probe("wrk"), ["wrk"]) or
               bench.ensure(bench.python_probe("flask", "jinja2", files=("/usr/bin/gunicorn",)),
                            ["python3-flask", "python3-jinja2", "gunicorn"]))
    if missing:
        raise bench.BenchError(missing)
    binary = bench.build("bench/templates_app.c", "templates_app", bench.PER_ADDRESS_CAP_OFF)
    with tempfile.TemporaryDirectory() as workdir:
        instr = instructions_per_request(binary, workdir)
        rows, pages = cpu_rows(binary, plan["rounds"], plan["duration"], workdir)
    text, data = report(rows, instr, pages, plan)
    bench.write_results("templates-quick" if plan["quick"] else "templates", text, data)
    print(text)
    return 0


if __name__ == "__main__":
    bench.run_main(main)
