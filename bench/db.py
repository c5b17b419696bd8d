#!/usr/bin/env python3
"""Database benchmark: TechEmpower's "single query" (one random row of a 10,000-row
table as JSON) through microweb (bench/db_app.c, a pool of 4 connections, 4 worker
threads) beside a raw libpq loop with the same 4 connections, in the same run, with
prepared and with unprepared statements. Writes bench/results/db.md.

usage: python3 bench/db.py [--duration SECONDS]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_DB = os.path.join(ROOT, "tests", "pg_db.sh")
BUILD = os.path.join(ROOT, "build", "bench")
POOL = 4


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


def start_app(conninfo, prepared):
    env = dict(os.environ, DATABASE_URL=conninfo, PORT="0", BENCH_POOL=str(POOL), BENCH_PREPARE=str(prepared))
    proc = subprocess.Popen([os.path.join(BUILD, "db_app")], env=env, stderr=subprocess.PIPE, text=True)
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


def raw_qps(conninfo, prepared, seconds):
    done = run([os.path.join(BUILD, "pg_loop"), conninfo, str(POOL), str(seconds), str(prepared)],
               timeout=seconds + 60)
    return float(done.stdout.strip() or 0)


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
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "db.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
