#!/usr/bin/env python3
"""validate.py - what a declared body costs: POST /notes with a valid 1 KiB JSON note
(bench/validate_app.c, the body examples/notes.c declares), three servers:

    declared  microweb, the route declares its body: checked before the handler
    plain     microweb, the same handler without a declaration      target: declared <= 1.3x plain
    fastapi   FastAPI with the same body as a pydantic model (bench/fastapi_validate.py,
              uvicorn, one worker; Debian's python3-fastapi and uvicorn, installed when
              missing)              target: declared serves >= 20x its requests/s per core

Each server is pinned to one core (MW_THREADS=1, uvicorn one worker), wrk -t1 -c64 on the
other, the servers alternating round by round. Per request: server CPU (its process tree's
ticks over the requests wrk completed) and requests/s; and, for microweb, the instructions
valgrind's callgrind counts (the difference between two request counts, so start-up and
exit cancel out).

    python3 bench/validate.py [--duration N] [--rounds N] [--quick]

Writes bench/results/validate.{md,json} (--quick: validate-quick.*). Linux only.
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

SERVERS = ("declared", "plain", "fastapi")
NOTE_BYTES = 1024
CALLGRIND_COUNTS = (2000, 4000)


def note_body():
    """The note wrk.lua's note=1024 sends."""
    head = '{"title":"A note of the bench","tags":["bench","wrk"],"body":"'
    return (head + "x" * (NOTE_BYTES - len(head) - 2) + '"}').encode()


def note_request(body, close=False):
    return (b"POST /notes HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n"
            % (b"Connection: close\r\n" if close else b"", len(body))) + body


def start(server, binary, workdir):
    port = bench.free_port()
    log = Path(workdir) / f"{server}.log"
    if server == "fastapi":
        argv = bench.pinned(bench.SYS_PYTHON, "-m", "uvicorn", "--app-dir", bench.BENCH_DIR, "--host", "127.0.0.1",
                            "--port", port, "--backlog", bench.BACKLOG, "--no-access-log", "--log-level", "warning",
                            "fastapi_validate:app")
        env = bench.peer_env()
    else:
        argv = bench.pinned(binary)
        env = bench.peer_env(PORT=str(port), MW_THREADS="1", MW_BENCH_VALIDATE=server)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
                            preexec_fn=bench.raise_nofile, start_new_session=True)
    bench.wait_ready(proc, port, log)
    return proc, port


def check_answers(server, port):
    """A valid note is 201; an invalid one 422 where the body is declared: the server runs what its row says."""
    statuses = []
    for body in (note_body(), b'{"title":7}'):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(note_request(body, close=True))
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        statuses.append(int(data.split(b" ", 2)[1]) if data else 0)
    want = [201, 201 if server == "plain" else 422]
    if statuses != want:
        raise bench.BenchError(f"{server} answered {statuses} to a valid and an invalid note, want {want}")


def wrk_row(proc, port, duration):
    """Server CPU µs per request and req/s for one wrk run."""
    ticks = bench.cpu_ticks(bench.process_tree(proc.pid))
    argv = ["taskset", "-c", str(bench.CLIENT_CORE), "wrk", "-t1", "-c64", f"-d{duration}s", "--timeout",
            bench.WRK_TIMEOUT, "-s", str(bench.BENCH_DIR / "wrk.lua"), f"http://127.0.0.1:{port}/notes", "--",
            f"note={NOTE_BYTES}"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, preexec_fn=bench.raise_nofile)
    summary = next((json.loads(line[6:]) for line in out.stdout.splitlines() if line.startswith("BENCH ")), None)
    if not summary or not summary["requests"]:
        raise bench.BenchError(f"wrk gave no summary: {(out.stderr or out.stdout)[-300:]}")
    bad = sum(summary[k] for k in ("connect", "read", "write", "timeout", "status"))
    if bad:
        raise bench.BenchError(f"wrk saw {bad} errors (a status other than 2xx counts)")
    ticks = bench.cpu_ticks(bench.process_tree(proc.pid)) - ticks
    return ticks / bench.CLK_TCK * 1e6 / summary["requests"], summary["requests"] / (summary["duration_us"] / 1e6)


def cpu_rows(servers, binary, rounds, duration, workdir):
    """{server: [(cpu µs/req, req/s) per round]}, the servers alternating."""
    running = {s: start(s, binary, workdir) for s in servers}
    rows = {s: [] for s in servers}
    try:
        for s, (proc, port) in running.items():
            check_answers(s, port)
            wrk_row(proc, port, 1)  # warm-up
        for r in range(rounds):
            for s in (servers if r % 2 == 0 else tuple(reversed(servers))):
                proc, port = running[s]
                rows[s].append(wrk_row(proc, port, duration))
                time.sleep(0.3)  # the kernel's backlog of closed sockets drains
    finally:
        for proc, _ in running.values():
            bench.stop(proc)
    return rows


def callgrind_total(binary, variant, requests, workdir):
    """Instructions callgrind counts in a run that answers `requests` notes on one connection."""
    port = bench.free_port()
    out = Path(workdir) / f"cg.{variant}.{requests}"
    log = Path(workdir) / f"cg.{variant}.{requests}.log"
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(binary)],
                            env=bench.peer_env(PORT=str(port), MW_THREADS="1", MW_BENCH_VALIDATE=variant),
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    request = note_request(note_body())
    try:
        bench.wait_ready(proc, port, log, timeout=60)
        with socket.create_connection(("127.0.0.1", port)) as s:
            for _ in range(requests):
                s.sendall(request)
                data = b""
                while not data.endswith(b'"title":"A note of the bench"}'):
                    chunk = s.recv(65536)
                    if not chunk:
                        raise bench.BenchError("the server closed the connection")
                    data += chunk
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    text = out.read_text()
    m = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(r"^totals:\s+(\d+)", text, re.M)
    if not m:
        raise bench.BenchError("callgrind wrote no total")
    return int(m.group(1))


def instructions_per_request(binary, workdir):
    small, large = CALLGRIND_COUNTS
    return {v: (callgrind_total(binary, v, large, workdir) - callgrind_total(binary, v, small, workdir)) /
            (large - small) for v in ("declared", "plain")}


def report(rows, instr, plan, fastapi_note):
    cpu = {s: min(c for c, _ in rows[s]) for s in rows}  # the least disturbed round: noise only adds CPU
    cpu_median = {s: statistics.median(c for c, _ in rows[s]) for s in rows}
    rps = {s: statistics.median(r for _, r in rows[s]) for s in rows}
    overhead = cpu["declared"] / cpu["plain"]
    lines = [
        "# Declared inputs: a valid 1 KiB note, checked before the handler",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, `python3 bench/validate.py"
        f"{' --quick' if plan['quick'] else ''}`: {plan['rounds']} rounds of {plan['duration']} s per server, "
        f"alternating; wrk -t1 -c64 POST /notes ({NOTE_BYTES} B of JSON); {bench.CORE_NOTE}; MW_THREADS=1.",
        "",
        "| server | server CPU per request (best round) | ratio to plain | median round | req/s (median) "
        "| instructions per request (callgrind) |",
        "|---|---|---|---|---|---|",
    ]
    for s in rows:
        ins = f"{instr[s]:,.0f} ({instr[s] / instr['plain']:.3f}x)" if s in instr else "-"
        lines.append(f"| {s} | {cpu[s]:.2f} µs | {cpu[s] / cpu['plain']:.3f}x | {cpu_median[s]:.2f} µs "
                     f"| {rps[s]:,.0f} | {ins} |")
    verdict = f"declared / plain server CPU: {overhead:.3f}x (target <= 1.3x: {'met' if overhead <= 1.3 else 'MISSED'})"
    lines += ["", verdict + "."]
    data = {"cpu_us": cpu, "cpu_us_median": cpu_median, "rps": rps, "instructions": instr, "rounds": rows,
            "declared_over_plain": overhead}
    if "fastapi" in rows:
        # per core: the requests one core serves in a second, 1 s / server CPU per request
        # (microweb's core is not saturated by one wrk thread, FastAPI's is: req/s alone would
        # measure wrk)
        per_core = cpu["fastapi"] / cpu["declared"]
        lines.append(f"Requests/s per core (1 s / server CPU per request): declared {1e6 / cpu['declared']:,.0f}, "
                     f"FastAPI {1e6 / cpu['fastapi']:,.0f}: {per_core:.1f}x (target >= 20x: "
                     f"{'met' if per_core >= 20 else 'MISSED'}); measured req/s {rps['declared']:,.0f} against "
                     f"{rps['fastapi']:,.0f} ({rps['declared'] / rps['fastapi']:.1f}x, microweb's core not saturated "
                     f"by wrk's one thread). FastAPI: {fastapi_note}.")
        data.update(declared_over_fastapi_per_core=per_core, declared_over_fastapi_rps=rps["declared"] / rps["fastapi"])
    else:
        lines.append(f"FastAPI not measured: {fastapi_note}.")
    lines += [
        "",
        "Both microweb rows run the same handler (the title from the parsed body, written back in a 201); "
        "`declared` checks the body against `{title: string(1..200), body: string, tags?: [string]}` first "
        "(the 1 KiB note is parsed once: the handler's mw_req_json reuses it). The instruction counts are "
        f"(run of {CALLGRIND_COUNTS[1]} requests - run of {CALLGRIND_COUNTS[0]}) / "
        f"{CALLGRIND_COUNTS[1] - CALLGRIND_COUNTS[0]}, all threads. CPU rounds: "
        + "; ".join(f"{s} " + ", ".join(f"{c:.2f}" for c, _ in rows[s]) for s in rows),
    ]
    return "\n".join(lines) + "\n", data


def main():
    plan = bench.focused_plan(5)
    bench.raise_nofile()
    missing = bench.ensure(bench.which_probe("wrk"), ["wrk"]) or bench.ensure(bench.which_probe("valgrind"),
                                                                              ["valgrind"])
    if missing:
        raise bench.BenchError(missing)
    fastapi_missing = bench.ensure(bench.python_probe("fastapi", "uvicorn"), ["python3-fastapi", "uvicorn"])
    servers = SERVERS if fastapi_missing is None else SERVERS[:2]
    fastapi_note = fastapi_missing or bench.uvicorn_version()
    binary = bench.build("bench/validate_app.c", "validate_app", bench.PER_ADDRESS_CAP_OFF)
    with tempfile.TemporaryDirectory() as workdir:
        instr = instructions_per_request(binary, workdir)
        rows = cpu_rows(servers, binary, plan["rounds"], plan["duration"], workdir)
    text, data = report(rows, instr, plan, fastapi_note)
    bench.write_results("validate-quick" if plan["quick"] else "validate", text, data)
    print(text)
    return 0


if __name__ == "__main__":
    bench.run_main(main)
