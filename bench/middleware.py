#!/usr/bin/env python3
"""middleware.py - what hooks and sessions cost on the hello row (bench/middleware_app.c):

    none      GET / answered by the handler alone
    hooks     one before hook and one after hook that adds a header    target: <= 1.03x none
    session   hooks, and the handler reads the session and writes it   target: <= 1.10x none
              (a value flips on every request, so the cookie is signed again)

Two measures, both per request and as ratios to `none` measured in the same run:
  - server CPU under wrk -t1 -c64 (the server pinned to one core, MW_THREADS=1), the
    variants alternating round by round so a drift of the machine hits all of them; a
    target is read in the median, over the rounds, of the variant's CPU over none's in
    the same round;
  - instructions counted by valgrind's callgrind over keep-alive requests (the difference
    between two request counts, so start-up and exit cancel out): the same on every run,
    whatever else the machine does.

    python3 bench/middleware.py [--duration N] [--rounds N] [--quick]

Writes bench/results/middleware.{md,json} (--quick: middleware-quick.*). Linux only.
"""
import datetime
import json
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402

VARIANTS = ("none", "hooks", "session")
TARGETS = {"hooks": 1.03, "session": 1.10}
KEY = "bench-middleware-key-0123456789abcdef"
CALLGRIND_COUNTS = (2000, 4000)


def env_for(variant, port):
    return bench.peer_env(PORT=str(port), MW_THREADS="1", MW_BENCH_MIDDLEWARE=variant, MW_SECRET_KEY=KEY)


def get_cookie(port):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    m = re.search(rb"\r\nSet-Cookie: (session=[^;]+);", data)
    return m.group(1).decode() if m else None


def wrk_cpu_per_request(proc, port, cookie, duration, connections=64):
    """Server CPU µs per request and req/s for one wrk run."""
    pids = bench.process_tree(proc.pid)
    ticks = bench.cpu_ticks(pids)
    argv = ["taskset", "-c", str(bench.CLIENT_CORE), "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout",
            bench.WRK_TIMEOUT, "-s", str(bench.BENCH_DIR / "wrk.lua")]
    if cookie:
        argv += ["-H", f"Cookie: {cookie}"]
    argv += [f"http://127.0.0.1:{port}/"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, preexec_fn=bench.raise_nofile)
    summary = next((json.loads(line[6:]) for line in out.stdout.splitlines() if line.startswith("BENCH ")), None)
    if not summary or not summary["requests"]:
        raise bench.BenchError(f"wrk gave no summary: {(out.stderr or out.stdout)[-300:]}")
    bad = sum(summary[k] for k in ("connect", "read", "write", "timeout", "status"))
    if bad:
        raise bench.BenchError(f"wrk saw {bad} errors")
    ticks = bench.cpu_ticks(bench.process_tree(proc.pid)) - ticks
    seconds = summary["duration_us"] / 1e6
    return ticks / bench.CLK_TCK * 1e6 / summary["requests"], summary["requests"] / seconds


def start(binary, variant, workdir):
    port = bench.free_port()
    log = Path(workdir) / f"{variant}.log"
    proc = subprocess.Popen(bench.pinned(binary), env=env_for(variant, port), stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"), preexec_fn=bench.raise_nofile, start_new_session=True)
    bench.wait_ready(proc, port, log)
    return proc, port


def cpu_rows(binary, rounds, duration, workdir):
    """{variant: [(cpu µs/req, req/s) per round]}, the variants alternating."""
    servers = {v: start(binary, v, workdir) for v in VARIANTS}
    cookies = {v: get_cookie(port) if v == "session" else None for v, (_, port) in servers.items()}
    if not cookies["session"]:
        raise bench.BenchError("the session variant set no cookie")
    rows = {v: [] for v in VARIANTS}
    try:
        for v, (proc, port) in servers.items():  # warm-up
            wrk_cpu_per_request(proc, port, cookies[v], 1)
        for r in range(rounds):
            order = VARIANTS if r % 2 == 0 else tuple(reversed(VARIANTS))
            for v in order:
                proc, port = servers[v]
                rows[v].append(wrk_cpu_per_request(proc, port, cookies[v], duration))
                time.sleep(0.3)  # rest between rows: the kernel's backlog of closed sockets drains
    finally:
        for proc, _ in servers.values():
            bench.stop(proc)
    return rows


def callgrind_total(binary, variant, requests, workdir):
    """Instructions callgrind counts in a whole run that answers `requests` GET / on one
    keep-alive connection (the session variant with the cookie its first answer set)."""
    port = bench.free_port()
    out = Path(workdir) / f"cg.{variant}.{requests}"
    log = Path(workdir) / f"cg.{variant}.{requests}.log"
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(binary)],
                            env=env_for(variant, port), stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    try:
        bench.wait_ready(proc, port, log, timeout=60)
        cookie = get_cookie(port) if variant == "session" else None
        extra = f"Cookie: {cookie}\r\n".encode() if cookie else b""
        request = b"GET / HTTP/1.1\r\nHost: bench\r\n" + extra + b"\r\n"
        with socket.create_connection(("127.0.0.1", port)) as s:
            for _ in range(requests):
                s.sendall(request)
                data = b""
                while b"Hello, World!" not in data:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise bench.BenchError("the server closed the connection")
                    data += chunk
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    return callgrind_summary(out)


def callgrind_summary(out):
    """The instructions a callgrind output file counts in all."""
    text = Path(out).read_text()
    m = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(r"^totals:\s+(\d+)", text, re.M)
    if not m:
        raise bench.BenchError("callgrind wrote no total")
    return int(m.group(1))


def instructions_per_request(binary, workdir):
    small, large = CALLGRIND_COUNTS
    return {v: (callgrind_total(binary, v, large, workdir) - callgrind_total(binary, v, small, workdir)) /
            (large - small) for v in VARIANTS}


def paired_ratios(rows, v):
    """Variant v's CPU over none's in each round: the two were measured seconds apart,
    in the same state of this host."""
    return [c / n for (c, _), (n, _) in zip(rows[v], rows["none"])]


def report(rows, instr, plan):
    # the target is read in the median of the rounds' paired ratios: this host's noise
    # comes in spells of tens of seconds, which a round's variants share, and which
    # would decide a comparison of rounds taken apart (each variant's least disturbed
    # round is shown too: the noise only ever adds CPU)
    cpu = {v: min(c for c, _ in rows[v]) for v in VARIANTS}
    paired = {v: statistics.median(paired_ratios(rows, v)) for v in VARIANTS}
    rps = {v: statistics.median(r for _, r in rows[v]) for v in VARIANTS}
    lines = [
        "# Middleware on the hello row: hooks and sessions",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, `python3 bench/middleware.py"
        f"{' --quick' if plan['quick'] else ''}`: {plan['rounds']} rounds of {plan['duration']} s per variant, "
        f"alternating; wrk -t1 -c64 GET /; {bench.CORE_NOTE}; MW_THREADS=1.",
        "",
        "| variant | ratio to none (median of the rounds' ratios) | target | server CPU per request (best round) "
        "| ratio of best rounds | instructions per request (callgrind) | ratio to none | req/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    verdicts = {}
    for v in VARIANTS:
        ratio_ins = instr[v] / instr["none"]
        target = TARGETS.get(v)
        verdicts[v] = None if target is None else paired[v] <= target
        mark = "" if target is None else f"<= {target:.2f}x {'met' if verdicts[v] else 'MISSED'}"
        lines.append(f"| {v} | {paired[v]:.3f}x | {mark} | {cpu[v]:.2f} µs | {cpu[v] / cpu['none']:.3f}x "
                     f"| {instr[v]:,.0f} | {ratio_ins:.3f}x | {rps[v]:,.0f} |")
    lines += [
        "",
        "`hooks`: one before hook (reads the route's data) and one after hook (adds `X-Frame-Options`). `session`: "
        "the hooks, plus the handler reading a value from the signed session cookie and writing another back "
        "(HMAC-SHA256 to verify, HMAC-SHA256 to sign, the Set-Cookie line); the CSRF check that sessions turn on "
        "runs too (GET passes it at once). The targets are on server CPU per request: each round measures the "
        "three variants seconds apart, and the target is read in the median over the rounds of a variant's CPU "
        "over none's in the same round (this host's noise comes in spells that a round's variants share); each "
        "variant's least disturbed round and their ratio are shown beside it. The instruction counts are "
        f"(run of {CALLGRIND_COUNTS[1]} requests - run of {CALLGRIND_COUNTS[0]}) / {CALLGRIND_COUNTS[1] - CALLGRIND_COUNTS[0]}, "
        "all threads; valgrind does not offer the CPU's SHA extensions, so they count the portable SHA-256 "
        "(4 compressions of about 4,000 instructions each), which the CPU rows do not run on a machine that "
        "has the extensions. CPU rounds (µs per request): "
        + "; ".join(f"{v} " + ", ".join(f"{c:.2f}" for c, _ in rows[v]) for v in VARIANTS)
        + ". Ratios to none by round: "
        + "; ".join(f"{v} " + ", ".join(f"{r:.3f}" for r in paired_ratios(rows, v)) for v in VARIANTS[1:]) + ".",
    ]
    return "\n".join(lines) + "\n", {"cpu_us": cpu, "paired_ratio": paired, "rps": rps, "instructions": instr,
                                     "rounds": rows, "met": verdicts}


def main():
    # many short rounds: this host's quiet spells come and go within a minute, and the
    # median of the rounds' ratios wants many rounds
    plan = bench.focused_plan(15, 3)
    bench.raise_nofile()
    missing = bench.ensure(bench.which_probe("wrk"), ["wrk"])
    if missing:
        raise bench.BenchError(missing)
    binary = bench.build("bench/middleware_app.c", "middleware_app", bench.PER_ADDRESS_CAP_OFF)
    with tempfile.TemporaryDirectory() as workdir:
        instr = instructions_per_request(binary, workdir)
        rows = cpu_rows(binary, plan["rounds"], plan["duration"], workdir)
    text, data = report(rows, instr, plan)
    stem = "middleware-quick" if plan["quick"] else "middleware"
    bench.write_results(stem, text, data)
    print(text)
    return 0


if __name__ == "__main__":
    bench.run_main(main)
