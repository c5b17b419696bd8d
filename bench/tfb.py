#!/usr/bin/env python3
"""tfb.py - `make bench-tfb`: the six TechEmpower test types (bench/tfb/app.c) against
Kore, FastAPI + asyncpg, Flask + psycopg2 and, for plaintext and json, nginx; every
server on one core (`taskset -c 1`), wrk on the other, all on one throwaway PostgreSQL
(tests/pg_db.sh) loaded with bench/tfb/create.sql, every server with the same number
of database connections (POOL).

    python3 bench/tfb.py [--duration SECONDS] [--rounds N] [--servers microweb,kore,...]
    python3 bench/tfb.py --report bench/results/tfb.json   (the report of a saved run, again)

Rows: plaintext (256 connections, 16 requests pipelined on each, as TechEmpower sends
them; and once without pipelining, which every peer completes), json, db,
queries?queries=20, fortunes, updates?queries=20 (64 connections) and microweb's
updates-pipelined. microweb-shared is the same app with its single statements on
shared connections (MW_PG_SHARED, 32 workers), for db and fortunes: a peer in the
windows, its targets judged per round through microweb's windows beside it and beside
the peer. In a round, a row runs microweb before the first peer and again after every
peer (microweb, Kore, microweb, FastAPI, microweb, ...), the peers' order alternating
between rounds; then, on a database row, pgbench runs the row's statements with no
HTTP server (PostgreSQL alone, the row's reference). A row's figures are its window
with the median requests/s. Its ratios are the median over the rounds of a peer's
figure over microweb's in the windows on either side of it (the targets: microweb's
over the peer's); updates-pipelined is compared with microweb's updates window just
before it. This host's noise comes in spells of seconds: figures from windows apart
need not agree, a bracketed ratio holds. Each window also records PostgreSQL's CPU per
request and how busy the machine's cores were.
Writes bench/results/tfb.{md,json}. Installs what is missing when it runs as root
(Debian's kore, python3-fastapi, python3-asyncpg, uvicorn, python3-flask,
python3-psycopg2, gunicorn, nginx-light, wrk); a server it cannot set up is reported
as skipped, with the reason.
"""
import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import subprocess
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402

TFB_DIR = bench.BENCH_DIR / "tfb"
PG_DB = bench.ROOT / "tests" / "pg_db.sh"
POOL = 4
CONNS = 64
# (key, path, connections, pipeline depth)
ROWS = (("plaintext", "/plaintext", 256, 16), ("plaintext-unpipelined", "/plaintext", 256, 1), ("json", "/json", CONNS, 1), ("db", "/db", CONNS, 1),
        ("queries", "/queries?queries=20", CONNS, 1), ("fortunes", "/fortunes", CONNS, 1),
        ("updates", "/updates?queries=20", CONNS, 1),
        ("updates-pipelined", "/updates-pipelined?queries=20", CONNS, 1))
SERVERS = ("microweb", "microweb-shared", "kore", "fastapi", "flask", "nginx")
VARIANT_OF = {"updates-pipelined": "updates"}  # microweb-only rows, compared with the row they vary
SHARED_ROWS = ("db", "fortunes")  # microweb-shared's: single statements on shared connections
SHARED_THREADS = 32
DATABASE_ROWS = ("db", "queries", "fortunes", "updates", "updates-pipelined")
CORES = os.cpu_count() or 1
LABELS = {"microweb": "microweb", "microweb-shared": f"microweb, MW_PG_SHARED {POOL}, {SHARED_THREADS} workers",
          "kore": "Kore", "fastapi": "FastAPI + asyncpg", "flask": "Flask + psycopg2", "nginx": "nginx"}
NGINX_LOCATIONS = """\
        location = /plaintext {
            default_type text/plain;
            return 200 "Hello, World!";
        }
        location = /json {
            default_type application/json;
            return 200 '{"message":"Hello, World!"}';
        }
"""


def serves(key, row):
    if key == "nginx":
        return row in ("plaintext", "plaintext-unpipelined", "json")
    if key == "microweb-shared":
        return row in SHARED_ROWS
    return key == "microweb" or row != "updates-pipelined"


# ---------------------------------------------------------------- the servers

def tfb_app():
    """bench/tfb/app.c, built (once per run)."""
    bench.BUILD_DIR.mkdir(parents=True, exist_ok=True)
    binary = bench.BUILD_DIR / "tfb_app"
    argv = [os.environ.get("CC", "cc"), "-O2", "-pthread", "-I.", "-DMICROWEB_WITH_PG",
            "-I" + bench.command_output(["pg_config", "--includedir"]), "bench/tfb/app.c", "-o", str(binary), "-lpq"]
    print("bench-tfb: " + " ".join(argv), file=sys.stderr)
    done = subprocess.run(argv, cwd=bench.ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise bench.BenchError(f"build of bench/tfb/app.c failed: {done.stderr.strip()[-500:]}")
    return binary


def microweb_server(workdir, conninfo):
    binary = tfb_app()

    def command(port):
        return bench.pinned(binary), bench.peer_env(PORT=str(port), BENCH_POOL=str(POOL), DATABASE_URL=conninfo), None
    return command, f"{bench.microweb_version()}; bench/tfb/app.c, {POOL} worker threads and a pool of {POOL}"


def microweb_shared_server(workdir, conninfo):
    binary = bench.BUILD_DIR / "tfb_app"
    if not binary.exists():
        binary = tfb_app()

    def command(port):
        return bench.pinned(binary), bench.peer_env(PORT=str(port), BENCH_POOL=str(POOL), DATABASE_URL=conninfo,
                                                    BENCH_SHARED=str(POOL), BENCH_THREADS=str(SHARED_THREADS)), None
    return command, (f"the same app with {SHARED_THREADS} worker threads whose single statements share "
                     f"{POOL} connections (MW_PG_SHARED {POOL}); rows {', '.join(SHARED_ROWS)}")


def kore_server(workdir, conninfo):
    reason = bench.ensure(bench.which_probe("kodev"), ("kore",))
    if reason:
        raise bench.BenchError(reason)
    app = Path(workdir) / "kore"  # kodev names the module after its folder: conf/kore.conf
    shutil.copytree(TFB_DIR / "kore", app)
    out = subprocess.run(["kodev", "build"], cwd=app, capture_output=True, text=True)
    if out.returncode != 0 or not (app / "kore.so").exists():
        raise bench.BenchError(f"kodev build failed: {(out.stdout + out.stderr).strip()[-500:]}")
    conf = (app / "conf" / "kore.conf").read_text()

    def command(port):
        (app / "conf" / "kore.conf").write_text(conf.replace("{port}", str(port)).replace("{pool}", str(POOL)))
        return bench.pinned(shutil.which("kore"), "-c", "conf/kore.conf", "-fnr"), \
            bench.peer_env(TFB_CONNINFO=conninfo), app
    return command, (f"{bench.command_output(['kore', '-v'])} (Debian), bench/tfb/kore built by kodev (-O2): "
                     f"one worker, Kore's asynchronous PostgreSQL (a state machine per request) on "
                     f"{POOL} connections (pgsql_conn_max)")


def fastapi_server(workdir, conninfo):
    reason = bench.ensure(bench.python_probe("fastapi", "uvicorn", "asyncpg"),
                          ("python3-fastapi", "uvicorn", "python3-asyncpg"))
    if reason:
        raise bench.BenchError(reason)

    def command(port):
        return bench.pinned(bench.SYS_PYTHON, "-m", "uvicorn", "--app-dir", TFB_DIR, "--host", "127.0.0.1",
                            "--port", port, "--backlog", bench.BACKLOG, "--no-access-log", "--log-level", "warning",
                            "fastapi_app:app"), bench.peer_env(TFB_CONNINFO=conninfo, TFB_POOL=str(POOL)), None
    return command, (f"{bench.uvicorn_version()}, asyncpg {bench.python_versions('asyncpg').split()[-1]}: "
                     f"one uvicorn worker, an asyncpg pool of {POOL}")


def flask_server(workdir, conninfo):
    reason = bench.ensure(bench.python_probe("flask", "psycopg2", files=("/usr/bin/gunicorn",)),
                          ("python3-flask", "python3-psycopg2", "gunicorn"))
    if reason:
        raise bench.BenchError(reason)

    def command(port):
        return bench.pinned("/usr/bin/gunicorn", "-w", "1", "-k", "gthread", "--threads", POOL, "-b",
                            f"127.0.0.1:{port}", "--backlog", bench.BACKLOG, "--chdir", TFB_DIR, "--log-level",
                            "warning", "flask_app:app"), bench.peer_env(TFB_CONNINFO=conninfo, TFB_POOL=str(POOL)), None
    return command, (f"{bench.python_versions('flask', 'gunicorn', 'psycopg2')}: gunicorn, one worker of {POOL} "
                     f"threads (`-k gthread`), a psycopg2 pool of {POOL}")


def nginx_server(workdir, conninfo):
    reason = bench.ensure(bench.which_probe("nginx", "/usr/sbin", "/sbin"), ("nginx-light",))
    if reason:
        raise bench.BenchError(reason)

    def command(port):
        argv, env = bench.nginx_command(port, workdir, NGINX_LOCATIONS)
        return argv, env, None
    return command, (f"{bench.command_output([bench.nginx_binary(), '-v']).replace('nginx version: ', '')}: one "
                     "worker, `return 200` of fixed bodies (the JSON is not serialised per request)")


MAKERS = {"microweb": microweb_server, "microweb-shared": microweb_shared_server, "kore": kore_server, "fastapi": fastapi_server, "flask": flask_server,
          "nginx": nginx_server}


def wait_ready(proc, port, log_path, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise bench.BenchError(f"exited with status {proc.returncode} at start: {bench.log_tail(log_path)}")
        with contextlib.suppress(OSError, bench.BenchError, ValueError, IndexError):
            if bench.get_status(port, "/plaintext") == 200:
                return
        time.sleep(0.05)
    raise bench.BenchError(f"not answering GET /plaintext after {timeout:.0f} s: {bench.log_tail(log_path)}")


@contextlib.contextmanager
def running(argv, env, cwd, port, log_path):
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=bench.raise_nofile)
    try:
        wait_ready(proc, port, log_path)
        yield proc
    finally:
        bench.stop(proc)


# ---------------------------------------------------------------- load

def run_wrk(port, path, conns, depth, duration):
    argv = ["taskset", "-c", str(bench.CLIENT_CORE), "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency",
            "--timeout", bench.WRK_TIMEOUT, "-s", str(TFB_DIR / "wrk.lua"), f"http://127.0.0.1:{port}{path}", "--",
            str(depth)]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120,
                             preexec_fn=bench.raise_nofile)
    except subprocess.TimeoutExpired:
        raise bench.BenchError("wrk did not finish") from None
    for line in out.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    raise bench.BenchError(f"wrk gave no summary (status {out.returncode}): {(out.stderr or out.stdout)[-300:]}")


def postgres_root(conninfo):
    """The postmaster's pid of the pg_db.sh server at conninfo ("host=DIR port=..."), or None."""
    directory = conninfo.split()[0].partition("=")[2]
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((Path(directory) / "data" / "postmaster.pid").read_text().split()[0])
    return None


def machine_ticks():
    """The machine's (busy, stolen, all) clock ticks so far, from /proc/stat: busy is the
    time its cores worked, stolen the time the host gave them to other guests."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq, steal, sum(fields)


def measure(proc, port, row, duration, pg_root=None):
    _, path, conns, depth = row
    pids = bench.process_tree(proc.pid)
    ticks = bench.cpu_ticks(pids)
    pg_ticks = bench.cpu_ticks(bench.process_tree(pg_root)) if pg_root else 0
    busy, stolen, everything = machine_ticks()
    w = run_wrk(port, path, conns, depth, duration)
    ticks = bench.cpu_ticks(bench.process_tree(proc.pid)) - ticks
    pg_ticks = bench.cpu_ticks(bench.process_tree(pg_root)) - pg_ticks if pg_root else None
    busy, stolen, everything = (a - b for a, b in zip(machine_ticks(), (busy, stolen, everything)))
    if proc.poll() is not None:
        raise bench.BenchError(f"server exited with status {proc.returncode} during the row")
    seconds, requests = w["duration_us"] / 1e6, w["requests"]
    if not requests:  # a failed row, not a row of figures the report cannot divide by
        raise bench.BenchError("no request was answered in the window")
    errors = {k: w[k] for k in ("connect", "read", "write", "timeout", "status") if w[k]}
    return {"status": "ok", "requests": requests, "rps": requests / seconds,
            "p99_us": w["p99_us"], "errors": sum(errors.values()), "error_kinds": errors,
            "cpu_us_per_req": ticks / bench.CLK_TCK * 1e6 / requests,
            "server_cpu_pct": 100 * ticks / bench.CLK_TCK / seconds,
            "pg_cpu_us_per_req": None if pg_ticks is None else pg_ticks / bench.CLK_TCK * 1e6 / requests,
            "machine_cpu_us_per_req": busy / bench.CLK_TCK * 1e6 / requests,
            "busy_pct": 100 * busy / max(everything, 1), "stolen_pct": 100 * stolen / max(everything, 1)}


# ---------------------------------------------------------------- PostgreSQL alone

def world_reads(n):
    """pgbench lines: n random ids, and one SELECT each, pipelined under one sync as
    mw_pg_batch sends them."""
    ids = "".join(f"\\set id{i} random(1, 10000)\n" for i in range(n))
    reads = "".join(f"SELECT id, randomnumber FROM world WHERE id = :id{i};\n" for i in range(n))
    return ids + "\\startpipeline\n" + reads + "\\endpipeline\n"


def world_update(n):
    """The app's UPDATE of the n rows read, each given a random number, locking them in id
    order as the app does."""
    ids, numbers = (",".join(f":{v}{i}" for i in range(n)) for v in ("id", "r"))
    numbered = "".join(f"\\set r{i} random(1, 10000)\n" for i in range(n))
    return numbered + (f"UPDATE world SET randomnumber = v.r FROM (SELECT * FROM unnest(ARRAY[{ids}]::int[], "
                       f"ARRAY[{numbers}]::int[]) AS u(id, r) ORDER BY id) AS v WHERE world.id = v.id;\n")


# A request's statements, as bench/tfb/app.c sends them, as one pgbench transaction.
PGBENCH_SCRIPTS = {"db": "\\set id random(1, 10000)\nSELECT id, randomnumber FROM world WHERE id = :id;\n",
                   "queries": world_reads(20), "fortunes": "SELECT id, message FROM fortune;\n",
                   "updates": world_reads(20) + world_update(20)}


def postgres_alone(conninfo, key, duration, workdir):
    """A row's reference on this machine: pgbench on the client core running one request's
    statements per transaction on POOL connections, with no HTTP server; per second."""
    if not shutil.which("pgbench"):
        raise bench.BenchError("pgbench is not installed (postgresql-client)")
    script = Path(workdir) / f"{key}.pgbench"
    script.write_text(PGBENCH_SCRIPTS[key])
    argv = ["taskset", "-c", str(bench.CLIENT_CORE), "pgbench", "-n", "-M", "prepared", "-c", str(POOL), "-j", "1",
            "-T", str(duration), "-f", str(script), conninfo]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    except subprocess.TimeoutExpired:
        raise bench.BenchError("pgbench did not finish") from None
    tps = [line.split()[2] for line in out.stdout.splitlines() if line.startswith("tps = ")]
    if out.returncode != 0 or not tps:
        raise bench.BenchError(f"pgbench failed (status {out.returncode}): {(out.stderr or out.stdout)[-300:]}")
    return float(tps[0])


def alone_window(conninfo, key, duration, workdir, microweb):
    """pgbench's window for a row in a round, with microweb's window just before it."""
    try:
        got = {"status": "ok", "tps": postgres_alone(conninfo, key, duration, workdir)}
    except bench.BenchError as e:
        got = {"status": "failed", "reason": str(e)}
    print(f"bench-tfb: pgbench   {key:18} {got.get('tps', 0):,.0f} per second" if got["status"] == "ok" else
          f"bench-tfb: pgbench   {key:18} {got['reason']}", file=sys.stderr)
    return dict(got, microweb=figures(microweb))


def median_alone(windows):
    """pgbench's median transactions/s over the rounds, and the median of microweb's
    requests/s over them in the same rounds; None when no window completed."""
    done = [w for w in windows if w["status"] == "ok"]
    if not done:
        return {"status": "failed", "reason": windows[0]["reason"]} if windows else None
    pairs = [w["microweb"]["rps"] / w["tps"] for w in done if w.get("microweb")]
    return {"status": "ok", "tps": statistics.median(w["tps"] for w in done),
            "microweb_over": statistics.median(pairs) if pairs else None}


FIGURES = ("rps", "cpu_us_per_req")


def figures(window):
    return {f: window[f] for f in FIGURES} if window and window["status"] == "ok" else None


def bracket(before, after):
    """microweb's figures for the peer's window between two of its own: their mean, or
    the one that completed."""
    done = [w for w in (figures(before), figures(after)) if w]
    return {f: sum(w[f] for w in done) / len(done) for f in FIGURES} if done else None


def windows_of(live, r):
    """A row's windows in round r: microweb before the first peer and after every one,
    the peers' order alternating between rounds."""
    peers = [k for k in live if k != "microweb"]
    peers = peers if r % 2 == 0 else peers[::-1]
    return [k for p in peers for k in ("microweb", p)] + ["microweb"] if "microweb" in live else peers


def median(rows):
    """The completed window with the median requests/s (a failed one when none completed),
    keeping every window's figures (a peer's with microweb's beside it) for the ratios."""
    done = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: r["rps"])
    kept = [dict(figures(r), microweb=r.get("microweb")) if figures(r) else None for r in rows]
    failed = len(rows) - len(done)
    return dict(done[(len(done) - 1) // 2] if done else rows[0], rounds=kept,
                **({"failed_windows": failed} if failed and done else {}))


# ---------------------------------------------------------------- report

def bracketed(row, figure):
    """Per round: (a peer's figure, microweb's in the windows beside it)."""
    if not row:
        return []
    return [(w[figure], w["microweb"][figure]) for w in row.get("rounds", [])
            if w and w.get("microweb") and w[figure] and w["microweb"][figure]]


def microweb_over(row, figure):
    """The median over the rounds of microweb's figure over the peer's; None without a pair."""
    pairs = bracketed(row, figure)
    return statistics.median(m / p for p, m in pairs) if pairs else None


def ratio(server, key, row, figure):
    if server == "microweb" and key not in VARIANT_OF:
        return "1.00"
    pairs = bracketed(row, figure)
    return f"{statistics.median(p / m for p, m in pairs):.2f}" if pairs else "-"


# the targets: microweb's requests/s over a peer's, at least this much
RATE_TARGETS = [("db", "kore", 1.3), ("queries", "kore", 2.0), ("fortunes", "kore", 1.3), ("updates", "kore", 2.0),
                ("plaintext", "nginx", 5.0)] + \
               [(row, peer, least) for row in ("db", "queries", "fortunes", "updates")
                for peer, least in (("fastapi", 10.0), ("flask", 15.0))]


def variant_over(variant, peer, figure):
    """The variant's figure over a peer's, per round through microweb's windows beside
    each ((variant / microweb) x (microweb / peer)), the median; None without a round
    where both have pairs."""
    got = []
    for v, p in zip(variant.get("rounds", []), peer.get("rounds", [])):
        if v and p and v.get("microweb") and p.get("microweb") and v[figure] and p[figure]:
            got.append(v[figure] / v["microweb"][figure] * p["microweb"][figure] / p[figure])
    return statistics.median(got) if got else None


def rounds_judged(row, figure):
    """' (k of n rounds)' when some rounds had no pair, else ''."""
    k, n = len(bracketed(row, figure)), len(row.get("rounds", []))
    return f" ({k} of {n} rounds)" if k < n else ""


def reach(results, postgres, row, peer, least):
    """For a rate target not met: the rate it asks for beside what this machine gave, from
    microweb's median window and pgbench's."""
    theirs, mine, alone = results[peer][row], results["microweb"][row], postgres.get(row)
    if theirs.get("status") != "ok" or mine.get("status") != "ok" or "busy_pct" not in mine:
        return ""
    asked = least * theirs["rps"]
    text = (f"; it asks about {asked:,.0f} req/s, {CORES * 1e6 / asked:,.0f} µs of the {CORES} cores "
            f"per request. In microweb's window the cores were {mine['busy_pct']:.0f}% busy "
            f"({mine['stolen_pct']:.0f}% stolen by the host) at {mine['machine_cpu_us_per_req']:,.0f} µs per request")
    if mine.get("pg_cpu_us_per_req") is not None:
        text += f", {mine['pg_cpu_us_per_req']:,.0f} of them PostgreSQL's"
    if alone and alone["status"] == "ok":
        text += f"; PostgreSQL alone ran {alone['tps']:,.0f} per second"
    return text


def targets(results, postgres=None):
    """One line per target, met, NOT met, or not judged (no round where both servers
    completed), from the rounds' pairs; a server that was skipped has no line."""
    def row_of(server, row):
        return results.get(server, {}).get(row)

    lines = []
    for row, peer, least in RATE_TARGETS:
        theirs = row_of(peer, row)
        if not row_of("microweb", row) or not theirs:
            continue
        got = microweb_over(theirs, "rps")
        what = f"{row}, requests/s over {LABELS[peer]}'s"
        lines.append(f"- not judged: {what}: no round where both completed" if got is None else
                     f"- {'met' if got >= least else '**NOT met**'}: {what}: {got:.2f}x{rounds_judged(theirs, 'rps')} "
                     f"(target at least {least:g}x)"
                     + ("" if got >= least else reach(results, postgres or {}, row, peer, least)))
    for row, peer, least in RATE_TARGETS:
        mine, theirs = row_of("microweb-shared", row), row_of(peer, row)
        if not mine or not theirs:
            continue
        got = variant_over(mine, theirs, "rps")
        what = f"{row}, requests/s over {LABELS[peer]}'s with MW_PG_SHARED"
        lines.append(f"- not judged: {what}" if got is None else
                     f"- {'met' if got >= least else '**NOT met**'}: {what}: {got:.2f}x "
                     f"(target at least {least:g}x; through microweb's windows beside each)")
    for row in SHARED_ROWS:
        mine = row_of("microweb-shared", row)
        peers = [s for s in results if s not in ("microweb", "microweb-shared") and row_of(s, row)]
        over = {s: variant_over(mine, row_of(s, row), "cpu_us_per_req") for s in peers} if mine else {}
        judged = {s: got for s, got in over.items() if got is not None}
        if judged:
            lower = [s for s, got in judged.items() if got > 1]
            lines.append(f"- {'**NOT met**' if lower else 'met'}: {row} with MW_PG_SHARED, the lowest server CPU per "
                         "request: " + ", ".join(f"{LABELS[s]}'s {got:.2f}x" for s, got in judged.items())
                         + (f"; lower: {', '.join(LABELS[s] for s in lower)}" if lower else ""))
    for row, *_ in ROWS:
        peers = [s for s in results if s not in ("microweb", "microweb-shared") and row_of(s, row)]
        if not row_of("microweb", row) or not peers:
            continue
        over = {s: microweb_over(row_of(s, row), "cpu_us_per_req") for s in peers}
        judged = {s: got for s, got in over.items() if got is not None}
        lower = [s for s, got in judged.items() if got > 1]
        unjudged = [LABELS[s] for s in peers if s not in judged]
        lines.append(f"- {'**NOT met**' if lower else 'met'}: {row}, the lowest server CPU per request: microweb's "
                     "over " + ", ".join(f"{LABELS[s]}'s {got:.2f}x{rounds_judged(row_of(s, row), 'cpu_us_per_req')}"
                                         for s, got in judged.items())
                     + (f"; lower: {', '.join(LABELS[s] for s in lower)}" if lower else "")
                     + (f"; not judged against {', '.join(unjudged)}: no round where both completed" if unjudged
                        else ""))
    return lines


def fmt_cpu(us):
    return "-" if us is None else f"{us:.1f} µs"


def alone_line(alone):
    """The row's PostgreSQL-alone figure, as a paragraph (none when it was not measured)."""
    if not alone:
        return []
    if alone["status"] != "ok":
        return [f"PostgreSQL alone: failed: {alone['reason']}", ""]
    over = alone.get("microweb_over")
    return [f"PostgreSQL alone (pgbench): {alone['tps']:,.0f} of these requests' statements per second"
            + (f"; microweb served {over:.2f}x that in the same rounds." if over else "."), ""]


def failed_note(row):
    n = row.get("failed_windows")
    return f" ({n} window{'s' if n > 1 else ''} failed)" if n else ""


def report(results, versions, skipped, run, postgres):
    lines = ["# TechEmpower test types: microweb against Kore, FastAPI, Flask and nginx", "",
             f"{run['date'][:16].replace('T', ' ')}; {run['machine']}; "
             f"{run['core_note']}; PostgreSQL {run['pg_version']} on the same machine, not pinned (it shares both "
             f"cores), fsync off. {run['rounds']} round(s) per row; in each, windows of {run['duration_s']} s: "
             "microweb before the first peer and after every peer, the peers' order alternating between rounds. "
             "A row's figures are its window with the median requests/s. This machine is a virtual one whose "
             "host runs other work in spells of seconds: figures from windows apart are noisy, read the ratios.",
             "",
             f"Every server has {POOL} database connections; the rules are TechEmpower's (random ids, one SELECT "
             "per row for queries and updates, a row added to the fortunes at request time, HTML escaping). "
             "plaintext: 256 connections, 16 requests pipelined on each (no p99: under pipelining wrk 4.1's "
             "latency percentiles above the median come out 0 µs whoever the server, with its mean and maximum "
             "set), and the same without pipelining; the other rows 64 connections. "
             "CPU/req: the server's processes' user+system time per request (PostgreSQL's not counted); "
             "PostgreSQL CPU/req: the database server's processes' time per request in the same window. "
             "Errors: socket errors, timeouts and non-2xx answers. Ratios: the median over the rounds of the "
             "peer's requests/s (CPU per request) over microweb's in the two windows beside it; the targets "
             "take microweb's over the peer's.", "",
             "PostgreSQL alone: after a database row's windows in every round, pgbench (on wrk's core, "
             f"{POOL} connections, prepared statements, no HTTP) runs one request's statements per transaction as "
             "bench/tfb/app.c sends them (queries pipelined under one sync, the update as one statement) for as long "
             "as a window: what PostgreSQL does on this machine with no web server in the way; the median over the "
             "rounds. A target not met says what the cores gave in microweb's window.", ""]
    for key, path, conns, depth in ROWS:
        database = key in DATABASE_ROWS
        lines += [f"## {key} (`GET {path}`, {conns} connections{', 16 requests pipelined on each' if depth > 1 else ''})",
                  ""] + ([f"Ratios: over microweb's {VARIANT_OF[key]} window just before it in the same round.", ""]
                         if key in VARIANT_OF else []) + [
                  "| server | req/s | CPU/req |" + (" PostgreSQL CPU/req |" if database else "")
                  + " p99 | errors | req/s ratio | CPU/req ratio |",
                  "|---|---|---|" + ("---|" if database else "") + "---|---|---|---|"]
        for server, rows in results.items():
            row = rows.get(key)
            if not row:
                continue
            if row["status"] != "ok":
                lines.append(f"| {LABELS[server]} | {row['status']}: {row['reason']} | |{' |' if database else ''}"
                             " | | | |")
                continue
            lines.append(f"| {LABELS[server]} | {row['rps']:,.0f} | {row['cpu_us_per_req']:.1f} µs | "
                         + (f"{fmt_cpu(row.get('pg_cpu_us_per_req'))} | " if database else "")
                         + f"{bench.fmt_us(row['p99_us']) if depth == 1 else '-'} | {row['errors']}{failed_note(row)} | "
                         f"{ratio(server, key, row, 'rps')} | {ratio(server, key, row, 'cpu_us_per_req')} |")
        lines += ["", *alone_line(postgres.get(key))]
    lines += ["## Targets", ""] + targets(results, postgres) + [""]
    lines += ["## Servers", ""] + [f"- {LABELS[k]}: {v}" for k, v in versions.items()]
    lines += [f"- {LABELS[k]}: skipped: {v}" for k, v in skipped.items()]
    lines += ["- nginx answers plaintext and json only (it has no database).", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5)  # the ratios' median wants rounds
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--report", metavar="JSON", help="write the report of a saved run again, measuring nothing")
    args = ap.parse_args()
    if args.report:
        return report_again(args.report)
    if args.rounds < 1 or args.duration < 1:
        ap.error("--rounds and --duration take a positive number")
    wanted = [s for s in args.servers.split(",") if s]
    if set(wanted) - set(SERVERS):
        ap.error("--servers takes " + ", ".join(SERVERS))
    for probe, packages in ((bench.which_probe("wrk"), ("wrk",)), (bench.which_probe("pg_config"), ("libpq-dev",))):
        reason = bench.ensure(probe, packages)
        if reason:
            sys.exit(f"bench-tfb: {reason}")
    if subprocess.run(["bash", str(PG_DB), "check"]).returncode != 0:
        sys.exit("bench-tfb: the PostgreSQL server is not installed (apt-get install postgresql)")
    bench.raise_nofile()
    conninfo = subprocess.run(["bash", str(PG_DB), "start"], capture_output=True, text=True).stdout.strip()
    if not conninfo:
        sys.exit("bench-tfb: the throwaway PostgreSQL server did not start")
    versions, skipped, results, postgres = {}, {}, {}, {}
    pg_root = postgres_root(conninfo)
    try:
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-f", str(TFB_DIR / "create.sql")],
                       check=True)
        pg_version = bench.command_output(["psql", "-X", "-At", "-d", conninfo, "-c", "SHOW server_version"])
        with tempfile.TemporaryDirectory(prefix="tfb-") as workdir, contextlib.ExitStack() as stack:
            live = {}
            for key in wanted:
                try:
                    command, versions[key] = MAKERS[key](workdir, conninfo)
                    port, log = bench.free_port(), Path(workdir) / f"{key}.log"
                    argv, env, cwd = command(port)
                    proc = stack.enter_context(running(argv, env, cwd, port, log))
                    run_wrk(port, "/db" if key != "nginx" else "/json", CONNS, 1, 2)  # warm-up
                    live[key] = (proc, port)
                except (bench.BenchError, subprocess.CalledProcessError) as e:
                    versions.pop(key, None)
                    skipped[key] = str(e)
                    print(f"bench-tfb: {key}: skipped: {e}", file=sys.stderr)
            rounds = {key: {row[0]: [] for row in ROWS if serves(key, row[0])} for key in live}
            alone = {row: [] for row in PGBENCH_SCRIPTS}
            last = {}  # each row's last window in this round, for the rows that vary it
            for r in range(args.rounds):
                for row in ROWS:
                    windows = []
                    for key in windows_of([k for k in live if serves(k, row[0])], r):
                        proc, port = live[key]
                        try:
                            got = measure(proc, port, row, args.duration, pg_root)
                        except bench.BenchError as e:
                            got = {"status": "failed", "reason": str(e)}
                        windows.append((key, got))
                        shown = (f"{got['rps']:,.0f} req/s, {got['cpu_us_per_req']:.1f} µs CPU/req, p99 "
                                 f"{bench.fmt_us(got['p99_us'])}, {got['errors']} errors" if got["status"] == "ok"
                                 else got["reason"])
                        print(f"bench-tfb: {key:9} {row[0]:18} round {r + 1}/{args.rounds} {shown}", file=sys.stderr)
                    for i, (key, got) in enumerate(windows):
                        if key != "microweb" and i and windows[i - 1][0] == "microweb":
                            got["microweb"] = bracket(windows[i - 1][1], windows[i + 1][1])
                        elif key == "microweb" and row[0] in VARIANT_OF:
                            got["microweb"] = figures(last.get(VARIANT_OF[row[0]]))
                        rounds[key][row[0]].append(got)
                    last[row[0]] = windows[-1][1] if windows and windows[-1][0] == "microweb" else None
                    if row[0] in PGBENCH_SCRIPTS:
                        alone[row[0]].append(alone_window(conninfo, row[0], args.duration, workdir, last[row[0]]))
            results = {key: {row: median(rs) for row, rs in per.items()} for key, per in rounds.items()}
            postgres = {row: median_alone(ws) for row, ws in alone.items()}
    finally:
        subprocess.run(["bash", str(PG_DB), "stop", conninfo], capture_output=True)
    run = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "duration_s": args.duration,
           "rounds": args.rounds, "pool": POOL, "pg_version": pg_version,
           "machine": f"{platform.machine()}, {os.cpu_count()} cores ({bench.machine_info()['cpu']})",
           "core_note": bench.CORE_NOTE}
    text = report(results, versions, skipped, run, postgres)
    bench.write_results("tfb", text, dict(run, servers=versions, skipped=skipped, results=results,
                                          postgres_alone=postgres))
    print(text)
    return 0


def report_again(path):
    """The report of a saved run (bench/results/tfb.json), written anew: for a change
    of the report's form without measuring again."""
    run = json.loads(Path(path).read_text())
    text = report(run["results"], run["servers"], run["skipped"], run, run.get("postgres_alone", {}))
    bench.write_results("tfb", text, run)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
