#!/usr/bin/env python3
"""Database benchmark: TechEmpower's "single query" (one random row of a 10,000-row
table as JSON) through microweb (bench/db_app.c, a pool of 4 connections, 4 worker
threads) beside a raw libpq loop with the same 4 connections, in the same run, with
prepared and with unprepared statements. Then the raw loop again with 1, 4 and 16
queries per round trip, each ending in its own sync as separate requests' statements
would in one pipeline: queries/s, and PostgreSQL's and the client's CPU per query.
Last, microweb's endpoint again with its statements on shared connections
(MW_PG_SHARED 4, 32 workers), which puts several requests' statements in one pipeline,
beside the pool: requests/s, and PostgreSQL's and the server's CPU per request.
Writes bench/results/db.md.

usage: python3 bench/db.py [--duration SECONDS]
"""
import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_DB = os.path.join(ROOT, "tests", "pg_db.sh")
BUILD = os.path.join(ROOT, "build", "bench")
POOL = 4
DEPTHS = (1, 4, 16)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def build():
    inc = run(["pg_config", "--includedir"]).stdout.strip()
    os.makedirs(BUILD, exist_ok=True)
    for src, out, extra in (("bench/db_app.c", "db_app", ["-I."]), ("bench/pg_loop.c", "pg_loop", [])):
        done = run(["cc", "-O2", "-I" + inc, *extra, "-pthread", os.path.join(ROOT, src), "-o",
                    os.path.join(BUILD, out), "-lpq"], cwd=ROOT)
        if done.returncode:
            sys.exit("build failed: " + done.stderr)


SHARED = {"BENCH_SHARED": str(POOL), "BENCH_THREADS": "32"}  # db_app.c with shared connections


def start_app(conninfo, prepared, settings=None, pinned=False):
    """build/bench/db_app on a free port with settings (environment variables); pinned:
    on core 1 alone (wrk runs on core 0)."""
    env = dict(os.environ, DATABASE_URL=conninfo, PORT="0", BENCH_POOL=str(POOL), BENCH_PREPARE=str(prepared),
               **(settings or {}))
    argv = (["taskset", "-c", "1"] if pinned else []) + [os.path.join(BUILD, "db_app")]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if m:
            return proc, int(m.group(1))
    sys.exit("db_app did not start")


def wrk(port, seconds):
    done = run(["taskset", "-c", "0", "wrk", "-t1", "-c64", "-d%ds" % seconds, "-s",
                os.path.join(ROOT, "bench", "db.lua"), "http://127.0.0.1:%d/" % port], timeout=seconds + 60)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    return rps, int(bad.group(1)) if bad else 0


def microweb_rps(conninfo, prepared, seconds):
    proc, port = start_app(conninfo, prepared)
    try:
        return wrk(port, seconds)
    finally:
        proc.terminate()
        proc.wait(10)


def server_costs(conninfo, settings, pinned, seconds):
    """(requests/s, non-2xx, PostgreSQL's CPU per request in µs, the server's) for the
    prepared endpoint of db_app with settings."""
    proc, port = start_app(conninfo, 1, settings, pinned)
    try:
        pg, server = bench.cpu_ticks(postgres_pids(conninfo)), bench.cpu_ticks([proc.pid])
        rps, bad = wrk(port, seconds)
        pg, server = bench.cpu_ticks(postgres_pids(conninfo)) - pg, bench.cpu_ticks([proc.pid]) - server
    finally:
        proc.terminate()
        proc.wait(10)
    requests = rps * seconds or 1
    return rps, bad, pg / bench.CLK_TCK * 1e6 / requests, server / bench.CLK_TCK * 1e6 / requests


def pg_loop(conninfo, seconds, prepared, depth=0):
    """pg_loop's queries/s; exits the bench when a connection failed or nothing was answered."""
    done = run([os.path.join(BUILD, "pg_loop"), conninfo, str(POOL), str(seconds), str(prepared), "0", str(depth)],
               timeout=seconds + 60)
    qps = float(done.stdout.strip() or 0)
    if done.returncode or not qps:
        sys.exit("pg_loop failed: " + (done.stderr.strip() or "no query answered"))
    return qps


def raw_qps(conninfo, prepared, seconds):
    return pg_loop(conninfo, seconds, prepared)


def postgres_pids(conninfo):
    """The server's processes: the postmaster (from its data directory) and its children."""
    data = conninfo.split()[0][len("host="):]
    with open(os.path.join(data, "data", "postmaster.pid")) as f:
        return bench.process_tree(int(f.readline()))


def children_cpu_s():
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def settled(conninfo, before, timeout=10.0):
    """Waits until the server's processes are those of before: the loop's backends have
    exited and been reaped, so their time is in the postmaster's children's."""
    deadline = time.monotonic() + timeout
    while set(postgres_pids(conninfo)) != before and time.monotonic() < deadline:
        time.sleep(0.01)


def pipelined(conninfo, depth, seconds):
    """(queries/s, PostgreSQL's CPU per query in µs, the client's) for libpq alone with
    depth queries per round trip."""
    before = set(postgres_pids(conninfo))
    pg, client = bench.cpu_ticks(before), children_cpu_s()
    qps = pg_loop(conninfo, seconds, 1, depth)
    settled(conninfo, before)
    pg, client = bench.cpu_ticks(postgres_pids(conninfo)) - pg, children_cpu_s() - client
    queries = qps * seconds
    return qps, pg / bench.CLK_TCK * 1e6 / queries, client * 1e6 / queries


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=8)
    args = ap.parse_args()
    if run([PG_DB, "check"]).returncode or not shutil.which("wrk") or not shutil.which("pg_config"):
        print("db bench: skipped (needs postgresql, libpq-dev and wrk)")
        return 0
    build()
    conninfo = run([PG_DB, "start"]).stdout.strip()
    try:
        run(["psql", "-X", "-q", "-d", conninfo, "-c",
             "CREATE TABLE world (id int PRIMARY KEY, randomnumber int NOT NULL); "
             "INSERT INTO world SELECT i, (random() * 10000)::int + 1 FROM generate_series(1, 10000) i; ANALYZE world"],
            check=True)
        rows = []
        for prepared in (1, 0):
            rps, bad = microweb_rps(conninfo, prepared, args.duration)
            qps = raw_qps(conninfo, prepared, args.duration)
            rows.append((prepared, rps, bad, qps))
            print("%s: microweb %.0f req/s (%d non-2xx), raw libpq %.0f queries/s, ratio %.2f"
                  % ("prepared" if prepared else "unprepared", rps, bad, qps, rps / qps if qps else 0), flush=True)
        depths = []
        for depth in DEPTHS:
            depths.append((depth,) + pipelined(conninfo, depth, args.duration))
            print("%d per round trip: %.0f queries/s, PostgreSQL %.1f µs and client %.1f µs of CPU per query"
                  % depths[-1], flush=True)
        shared = []
        for pinned in (True, False):
            for name, settings in (("pool", None), ("shared", SHARED)):
                shared.append((name, "core 1" if pinned else "both") + server_costs(conninfo, settings, pinned,
                                                                                   args.duration))
                print("%s on %s: %.0f req/s (%d non-2xx), PostgreSQL %.1f µs and the server %.1f µs of CPU per "
                      "request" % shared[-1], flush=True)
    finally:
        run([PG_DB, "stop", conninfo])
    (p, rps_p, _, qps_p), (_, rps_u, _, qps_u) = rows
    lines = ["# Database benchmark: single query", "",
             "%s; %d s per run; PostgreSQL %s on the same machine; pool of %d connections (microweb: %d worker "
             "threads; wrk -t1 -c64 on core 0 with random ids) against a libpq loop with %d connections."
             % (time.strftime("%Y-%m-%d %H:%M"), args.duration,
                run(["psql", "--version"]).stdout.split()[2], POOL, POOL, POOL), "",
             "| statements | microweb req/s | raw libpq queries/s | microweb / raw | non-2xx |",
             "|---|---|---|---|---|"]
    for prepared, rps, bad, qps in rows:
        lines.append("| %s | %.0f | %.0f | %.2f | %d |" % ("prepared" if prepared else "unprepared", rps, qps,
                                                        rps / qps if qps else 0, bad))
    lines += ["", "Prepared / unprepared: microweb %.2fx, raw libpq %.2fx." % (rps_p / rps_u if rps_u else 0,
                                                                             qps_p / qps_u if qps_u else 0)]
    lines += ["", "## Statements of several requests in one pipeline", "",
              "libpq alone, prepared, %d connections: queries sent together on each, each ending in its own sync "
              "as separate requests' statements would (an error stays inside its own sync). CPU: PostgreSQL's "
              "processes and the loop's, per query." % POOL, "",
              "| queries per round trip | queries/s | PostgreSQL CPU per query | client CPU per query |",
              "|---|---|---|---|"]
    lines += ["| %d | %.0f | %.1f µs | %.1f µs |" % row for row in depths]
    lines += ["", "## microweb with several requests' statements in one pipeline (MW_PG_SHARED)", "",
              "The prepared endpoint again: db_app.c with its pool (%d workers, each holding a connection for "
              "its request) and with shared connections (MW_PG_SHARED %d, 32 workers: statements that come "
              "while a connection's round trip is out go together in its next), the server on core 1 alone "
              "(wrk on core 0, as bench/tfb.py runs them) and on both cores. CPU: PostgreSQL's processes "
              "and the server's, per request." % (POOL, POOL), "",
              "| connections | cores | req/s | PostgreSQL CPU per request | server CPU per request | non-2xx |",
              "|---|---|---|---|---|---|"]
    lines += ["| %s | %s | %.0f | %.1f µs | %.1f µs | %d |" % (name, cores, rps, pg, server, bad)
              for name, cores, rps, bad, pg, server in shared]
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "db.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
