#!/usr/bin/env python3
"""static.py - part of `make bench` (also `make bench-static`): microweb's mw_static
(bench/static_app.c, MW_THREADS=1) against nginx (one worker, sendfile on), both serving
the same folder of random-byte files at /static/, pinned to core 1; the clients on core 0.

    get4k    GET a 4 KiB file, wrk -t1 -c64             req/s and server CPU per request
    get1m    GET a 1 MiB file, wrk -t1 -c16             the same
    304      GET the 4 KiB file with If-None-Match: <that server's ETag>, wrk -t1 -c64
    download a 100 MB file to `curl -o /dev/null`, one at a time: MB/s
    memory   1,000 slow downloads of the 100 MB file held open by one client (small
             receive buffers, a little read from each every 100 ms): the server's
             VmRSS before, during and after, and VmHWM
    syscalls strace -c of each server over a wrk run of get4k and 304: syscalls per request
    callgrind instructions per request on get4k (valgrind --tool=callgrind), both servers

The wrk rows alternate the servers round by round (the order reversed every round), so a
slow minute of the machine falls on both. Targets (the issue): microweb >= 0.9x nginx's
req/s and <= 1.1x its server CPU per request on get4k, get1m and 304; download MB/s
>= 0.9x nginx's; memory flat with the 1,000 slow downloads.

    python3 bench/static.py [--duration N] [--rounds N] [--rows get,download,...] [--quick]

Writes bench/results/static.{md,json} (--quick: static-quick.*). Linux only.
"""
import argparse
import contextlib
import datetime
import json
import os
import re
import resource
import select
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

SERVERS = ("microweb", "nginx")
FILES = {"small": 4096, "medium": 1 << 20, "large": 100_000_000}  # name.bin: bytes
WRK_ROWS = {  # key: (title, file, connections, conditional)
    "get4k": ("GET 4 KiB", "small", 64, False),
    "get1m": ("GET 1 MiB", "medium", 16, False),
    "304": ("GET 4 KiB, If-None-Match: its ETag -> 304", "small", 64, True),
}
ROWS = ("get", "download", "memory", "syscalls", "callgrind")
RPS_TARGET, CPU_TARGET, DOWNLOAD_TARGET = 0.9, 1.1, 0.9
CALLGRIND_COUNTS = (2000, 4000)
SLOW_RCVBUF = 4096       # bytes asked for each slow download's receive buffer
SLOW_READ = 4096         # bytes read from each slow download per tick
SLOW_TICK = 0.1          # seconds between ticks
SAMPLE_EVERY = 0.5       # seconds between samples of the server's RSS in the memory row
FLAT_CLIMB_KB = 1024     # "flat": RSS climbs at most this much while the downloads progress

NGINX_LOCATION = """\
        location /static/ {{
            alias {files}/;
            sendfile on;
            etag on;
            gzip off;
            default_type application/octet-stream;
        }}
"""


# ---------------------------------------------------------------- the files and the servers

def make_files(workdir):
    """The served folder: small.bin, medium.bin and large.bin of random bytes, written back
    to disk before any row (so the kernel does not write them during one)."""
    files = Path(workdir) / "files"
    files.mkdir()
    for name, size in FILES.items():
        with open(files / f"{name}.bin", "wb") as f:
            left = size
            while left:
                chunk = os.urandom(min(left, 1 << 20))
                f.write(chunk)
                left -= len(chunk)
            os.fsync(f.fileno())
        (files / f"{name}.bin").chmod(0o644)
    # nginx's worker runs as nobody when started by root: it must reach the files
    os.chmod(workdir, 0o711)
    files.chmod(0o755)
    return files


def server_command(key, binary, files, port, workdir):
    if key == "microweb":
        return bench.pinned(binary), bench.peer_env(PORT=str(port), MW_THREADS="1", MW_ACCESS_LOG="0",
                                                    STATIC_DIR=str(files))
    return bench.nginx_command(port, workdir, locations=NGINX_LOCATION.format(files=files))


@contextlib.contextmanager
def servers_running(binary, files, workdir, tag):
    """Both servers started, each on its own port: {key: (proc, port)}."""
    with contextlib.ExitStack() as stack:
        live = {}
        for key in SERVERS:
            port = bench.free_port()
            argv, env = server_command(key, binary, files, port, workdir)
            proc = stack.enter_context(bench.running(argv, env, port, Path(workdir) / f"{key}-{tag}.log"))
            live[key] = (proc, port)
        yield live


def http_get(port, path, headers=""):
    """(status, {lowercase header: value}, body) of one GET on a new connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n{headers}Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(1 << 20):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), fields, body


def curl_status(port, path, headers=()):
    argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"]
    for h in headers:
        argv += ["-H", h]
    return bench.command_output(argv + [f"http://127.0.0.1:{port}{path}"])


def check_server(key, port, files):
    """The server serves the folder's bytes, and answers its own ETag with 304 (checked
    with curl). Returns the ETag."""
    status, fields, body = http_get(port, "/static/small.bin")
    if status != 200 or body != (files / "small.bin").read_bytes():
        raise bench.BenchError(f"{key}: GET /static/small.bin gave {status} and not the file's bytes")
    etag = fields.get("etag")
    if not etag:
        raise bench.BenchError(f"{key}: no ETag on GET /static/small.bin")
    status, fields, body = http_get(port, "/static/medium.bin")
    if status != 200 or body != (files / "medium.bin").read_bytes():
        raise bench.BenchError(f"{key}: GET /static/medium.bin gave {status} and not the file's bytes")
    got = curl_status(port, "/static/small.bin", [f"If-None-Match: {etag}"])
    if got != "304":
        raise bench.BenchError(f"{key}: If-None-Match: {etag} answered {got!r}, not 304")
    return etag


# ---------------------------------------------------------------- rows under wrk

def wrk_argv(port, row, etag, duration):
    _, name, conns, conditional = WRK_ROWS[row]
    argv = ["taskset", "-c", str(bench.CLIENT_CORE), "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout",
            bench.WRK_TIMEOUT, "-s", str(bench.BENCH_DIR / "wrk.lua")]
    if conditional:
        argv += ["-H", f"If-None-Match: {etag}"]
    return argv + [f"http://127.0.0.1:{port}/static/{name}.bin"]


def run_wrk(argv, duration):
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, preexec_fn=bench.raise_nofile)
    summary = next((json.loads(line[6:]) for line in out.stdout.splitlines() if line.startswith("BENCH ")), None)
    if not summary or not summary["requests"]:
        raise bench.BenchError(f"wrk gave no summary: {(out.stderr or out.stdout)[-300:]}")
    bad = sum(summary[k] for k in ("connect", "read", "write", "timeout", "status"))
    if bad:
        raise bench.BenchError(f"wrk saw {bad} errors")
    return summary


def wrk_row(proc, port, row, etag, duration):
    """One wrk run: {rps, cpu_us, user_us, system_us, bytes_per_request}."""
    pids = bench.process_tree(proc.pid)
    user, system = bench.user_system_ticks(pids)
    summary = run_wrk(wrk_argv(port, row, etag, duration), duration)
    user_after, system_after = bench.user_system_ticks(pids)
    if proc.poll() is not None:
        raise bench.BenchError(f"server exited with status {proc.returncode} during {row}")
    n = summary["requests"]

    def per_request(ticks):
        return ticks / bench.CLK_TCK * 1e6 / n

    size = FILES[WRK_ROWS[row][1]]
    per_byte = summary["bytes"] / n
    if (WRK_ROWS[row][3] and per_byte >= 1024) or (not WRK_ROWS[row][3] and per_byte < size):
        raise bench.BenchError(f"{row}: {per_byte:,.0f} bytes per answer, not a {'304' if WRK_ROWS[row][3] else 'file'}")
    return {"rps": n / (summary["duration_us"] / 1e6), "cpu_us": per_request(user_after - user + system_after - system),
            "user_us": per_request(user_after - user), "system_us": per_request(system_after - system),
            "bytes_per_request": per_byte, "busy_pct": 100 * (user_after - user + system_after - system) /
            bench.CLK_TCK / (summary["duration_us"] / 1e6)}


def wrk_rounds(live, etags, plan):
    """{row: {server: [one wrk_row per round]}}, the servers alternating round by round."""
    rows = {row: {key: [] for key in SERVERS} for row in WRK_ROWS}
    for key, (proc, port) in live.items():  # warm-up
        for row in WRK_ROWS:
            wrk_row(proc, port, row, etags[key], 1)
    for r in range(plan["rounds"]):
        order = SERVERS if r % 2 == 0 else SERVERS[::-1]
        for row in WRK_ROWS:
            for key in order:
                proc, port = live[key]
                result = wrk_row(proc, port, row, etags[key], plan["duration"])
                rows[row][key].append(result)
                print(f"static: round {r + 1}/{plan['rounds']} {row:6} {key:9} {result['rps']:>9,.0f} req/s "
                      f"{result['cpu_us']:6.2f} µs CPU/request", file=sys.stderr)
                time.sleep(0.3)  # rest between rows: the kernel's backlog of closed sockets drains
    return rows


# ---------------------------------------------------------------- 100 MB downloads

def curl_download(port):
    """(status, bytes, seconds) of one GET of large.bin to /dev/null by curl on the client core."""
    out = bench.command_output(["taskset", "-c", str(bench.CLIENT_CORE), "curl", "-s", "-o", "/dev/null", "-w",
                                "%{http_code} %{size_download} %{time_total}",
                                f"http://127.0.0.1:{port}/static/large.bin"])
    try:
        status, size, seconds = out.split()
        return int(status), int(size), float(seconds)
    except ValueError:
        raise bench.BenchError(f"curl: {out[-300:]}") from None


def downloads(live, plan):
    """{server: [{mb_s, cpu_s} per timed download]}: one untimed download each, then
    plan["downloads"] rounds, the servers back to back, the other one first each round."""
    runs = {key: [] for key in SERVERS}
    size = FILES["large"]
    for r in range(plan["downloads"] + 1):
        for key in (SERVERS if r % 2 == 0 else SERVERS[::-1]):
            proc, port = live[key]
            pids = bench.process_tree(proc.pid)
            ticks = bench.cpu_ticks(pids)
            status, got, seconds = curl_download(port)
            ticks = bench.cpu_ticks(pids) - ticks
            if status != 200 or got != size:
                raise bench.BenchError(f"{key}: download gave status {status}, {got:,} of {size:,} bytes")
            if r:  # the first round warms the page cache and the servers
                runs[key].append({"mb_s": size / seconds / 1e6, "cpu_s": ticks / bench.CLK_TCK})
                print(f"static: download {r}/{plan['downloads']} {key:9} {size / seconds / 1e6:,.0f} MB/s",
                      file=sys.stderr)
    return runs


# ---------------------------------------------------------------- memory under slow downloads

def open_slow_downloads(port, count):
    """count connections with a small receive buffer, each sending GET large.bin; non-blocking."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)  # before connect: the window
            s.settimeout(10)
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /static/large.bin HTTP/1.1\r\nHost: bench\r\n\r\n")
            s.setblocking(False)
            socks.append(s)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def read_a_little(socks, heads, counts, closed):
    """One tick: at most SLOW_READ bytes from each socket still open."""
    for i, s in enumerate(socks):
        if closed[i]:
            continue
        try:
            data = s.recv(SLOW_READ)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        if not data:
            closed[i] = True
        if len(heads[i]) < 16:
            heads[i] += data[:16]
        counts[i] += len(data)


def open_fds(pids):
    n = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            n += len(os.listdir(f"/proc/{pid}/fd"))
    return n


def wait_fds_back(pids, baseline, timeout=20.0):
    """Until the server has closed the downloads' sockets and files (its descriptor count is
    back to what it was before them), at most timeout seconds; returns the seconds it took."""
    started = time.monotonic()
    while open_fds(pids) > baseline + 2 and time.monotonic() - started < timeout:
        time.sleep(0.05)
    return time.monotonic() - started


def downloads_held(pids, baseline, n):
    """Downloads the server still holds: each is a socket and the open file."""
    return min(n, max(0, (open_fds(pids) - baseline) // 2))


def slow_memory(key, binary, files, workdir, plan):
    """One freshly started server's VmRSS before plan["slow"] slow downloads, every
    SAMPLE_EVERY seconds of plan["hold"] (with the downloads the server still holds),
    and after they are gone."""
    port = bench.free_port()
    argv, env = server_command(key, binary, files, port, workdir)
    n = plan["slow"]
    with bench.running(argv, env, port, Path(workdir) / f"{key}-memory.log") as proc:
        http_get(port, "/static/small.bin")  # whatever the first request sets up is in "before"
        pids = bench.process_tree(proc.pid)
        bench.reset_peak_rss(pids)
        fds = open_fds(pids)
        before = bench.status_kb(pids, "VmRSS")
        socks = open_slow_downloads(port, n)
        opened = time.monotonic()
        heads, counts, closed = [b""] * n, [0] * n, [False] * n
        samples = []
        try:
            # every download under way in the server before the first sample
            while downloads_held(pids, fds, n) < n and time.monotonic() - opened < 20:
                read_a_little(socks, heads, counts, closed)
                time.sleep(SLOW_TICK)
            started = next_sample = time.monotonic()
            while True:
                now = time.monotonic()
                if now >= next_sample:
                    samples.append({"t": round(now - opened, 1), "rss_kb": bench.status_kb(pids, "VmRSS"),
                                    "held": downloads_held(pids, fds, n)})
                    next_sample += SAMPLE_EVERY
                if now - started >= plan["hold"]:
                    break
                read_a_little(socks, heads, counts, closed)
                time.sleep(SLOW_TICK)
            peak = bench.status_kb(pids, "VmHWM")
        finally:
            for s in socks:
                s.close()
        settle = wait_fds_back(pids, fds)
        after = bench.status_kb(pids, "VmRSS")
    held = [x["rss_kb"] for x in samples if x["held"] == n] or [samples[0]["rss_kb"]]
    cut = next((x["t"] for x in samples if x["held"] < n), None)
    row = {"connections": n, "answered_200": sum(1 for h in heads if h.startswith(b"HTTP/1.1 200")),
           "eof_seen": sum(closed), "held_at_end": samples[-1]["held"], "first_cut_s": cut,
           "before_kb": before, "samples": samples, "during_max_kb": max(held), "after_kb": after, "peak_kb": peak,
           "after_settle_s": settle, "growth_per_connection_b": (max(held) - before) * 1024 / n,
           "climb_kb": held[-1] - held[0], "bytes_read_median": statistics.median(counts),
           "bytes_read_min": min(counts)}
    print(f"static: memory {key:9} {before / 1024:.1f} -> {max(held) / 1024:.1f} -> {after / 1024:.1f} MiB, "
          f"{row['growth_per_connection_b']:,.0f} B/connection, {row['answered_200']}/{n} answered 200, "
          f"{row['held_at_end']} held at the end" + (f", the first closed at {cut} s" if cut else ""), file=sys.stderr)
    return row


# ---------------------------------------------------------------- syscalls per request (strace -c)

def strace_counts(proc, port, row, etag, seconds, workdir):
    """{syscall: calls per request} of the server's processes over one wrk run of row."""
    pids = bench.process_tree(proc.pid)
    out = Path(workdir) / f"strace-{proc.pid}-{row}"
    argv = ["strace", "-c", "-f", "-o", str(out)]
    for pid in pids:
        argv += ["-p", str(pid)]
    tracer = subprocess.Popen(argv, stderr=subprocess.PIPE)
    try:
        said, deadline = b"", time.monotonic() + 10
        while said.count(b"attached") < len(pids):  # one "Process N attached" line per pid
            ready, _, _ = select.select([tracer.stderr], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(tracer.stderr.fileno(), 4096) if ready else b""
            if not chunk:
                raise bench.BenchError(f"strace did not attach to {pids}: {said.decode(errors='replace')[-300:]}")
            said += chunk
        summary = run_wrk(wrk_argv(port, row, etag, seconds), seconds)
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(30)
    counts = {}
    for line in out.read_text().splitlines():
        fields = line.split()
        if len(fields) in (5, 6) and fields[0][0].isdigit() and fields[-1] != "total":
            counts[fields[-1]] = int(fields[3]) / summary["requests"]
    return counts


def syscall_rows(live, etags, workdir):
    """{row: {server: {syscall: per request}}} for get4k and 304."""
    return {row: {key: strace_counts(live[key][0], live[key][1], row, etags[key], 2, workdir) for key in SERVERS}
            for row in ("get4k", "304")}


# ---------------------------------------------------------------- instructions (callgrind)

def callgrind_command(key, binary, files, port, workdir, out):
    """The server under callgrind, in one process (nginx: master_process off)."""
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    if key == "microweb":
        return valgrind + [str(binary)], bench.peer_env(PORT=str(port), MW_THREADS="1", MW_ACCESS_LOG="0",
                                                       STATIC_DIR=str(files))
    conf_dir = Path(tempfile.mkdtemp(prefix="nginx-cg-", dir=workdir))
    conf = bench.NGINX_CONF.format(nofile=bench.NOFILE, dir=conf_dir, port=port, backlog=bench.BACKLOG,
                                   locations=NGINX_LOCATION.format(files=files))
    (conf_dir / "nginx.conf").write_text(conf.replace("master_process on;", "master_process off;"))
    return valgrind + [bench.nginx_binary(), "-p", str(conf_dir), "-c", str(conf_dir / "nginx.conf"), "-e",
                       str(conf_dir / "error.log")], bench.peer_env()


def callgrind_total(key, binary, files, requests, workdir):
    """Instructions callgrind counts in a whole run that answers `requests` GETs of the
    4 KiB file on one keep-alive connection."""
    port = bench.free_port()
    out = Path(workdir) / f"cg.{key}.{requests}"
    log = Path(workdir) / f"cg.{key}.{requests}.log"
    argv, env = callgrind_command(key, binary, files, port, workdir, out)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
                            preexec_fn=bench.raise_nofile)
    try:
        bench.wait_ready(proc, port, log, timeout=60)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            for _ in range(requests):
                if bench.get_status(port, "/static/small.bin", keep_alive=True, sock=s) != 200:
                    raise bench.BenchError(f"{key} under callgrind: GET /static/small.bin was not 200")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    text = out.read_text()
    m = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(r"^totals:\s+(\d+)", text, re.M)
    if not m:
        raise bench.BenchError(f"callgrind wrote no total for {key}")
    return int(m.group(1))


def instructions_per_request(binary, files, workdir):
    small, large = CALLGRIND_COUNTS
    return {key: (callgrind_total(key, binary, files, large, workdir) -
                  callgrind_total(key, binary, files, small, workdir)) / (large - small) for key in SERVERS}


# ---------------------------------------------------------------- the report

def verdict(ok):
    return "PASS" if ok else "MISSED"


def paired_ratio(mine, theirs, metric):
    """The median over the rounds of microweb's figure / nginx's in the same round (the
    two ran back to back, so a drift of the machine cancels)."""
    return statistics.median(a[metric] / b[metric] for a, b in zip(mine, theirs))


def wrk_table(rows):
    lines = ["| row | microweb req/s | nginx req/s | req/s ratio | target | microweb CPU µs/req (user + kernel) "
             "| nginx CPU µs/req (user + kernel) | CPU ratio | target | CPU ratio, median rounds "
             "| server core busy, microweb / nginx |", "|" + "---|" * 11]
    verdicts = {}
    for row, (title, *_) in WRK_ROWS.items():
        mw, ng = rows[row]["microweb"], rows[row]["nginx"]
        rps = {k: statistics.median(r["rps"] for r in rows[row][k]) for k in SERVERS}
        best = {k: min(rows[row][k], key=lambda r: r["cpu_us"]) for k in SERVERS}
        cpu_median = {k: statistics.median(r["cpu_us"] for r in rows[row][k]) for k in SERVERS}
        busy = {k: statistics.median(r["busy_pct"] for r in rows[row][k]) for k in SERVERS}
        r_rps, r_cpu = paired_ratio(mw, ng, "rps"), best["microweb"]["cpu_us"] / best["nginx"]["cpu_us"]
        verdicts[row] = {"rps": r_rps >= RPS_TARGET, "cpu": r_cpu <= CPU_TARGET}

        def cpu_cell(k):
            b = best[k]
            return f"{b['cpu_us']:.2f} ({b['user_us']:.2f} + {b['system_us']:.2f})"

        lines.append(f"| {title} | {rps['microweb']:,.0f} | {rps['nginx']:,.0f} | {r_rps:.3f}x "
                     f"| ≥ {RPS_TARGET}x {verdict(verdicts[row]['rps'])} | {cpu_cell('microweb')} | {cpu_cell('nginx')} "
                     f"| {r_cpu:.3f}x | ≤ {CPU_TARGET}x {verdict(verdicts[row]['cpu'])} "
                     f"| {cpu_median['microweb'] / cpu_median['nginx']:.3f}x "
                     f"| {busy['microweb']:.0f}% / {busy['nginx']:.0f}% |")
    return "\n".join(lines), verdicts


def download_table(runs):
    mb_s = {k: statistics.median(r["mb_s"] for r in runs[k]) for k in SERVERS}
    cpu = {k: statistics.median(r["cpu_s"] for r in runs[k]) for k in SERVERS}
    ratio = paired_ratio(runs["microweb"], runs["nginx"], "mb_s")
    ok = ratio >= DOWNLOAD_TARGET
    lines = ["| server | MB/s (median) | each download | server CPU per download (median) |", "|---|---|---|---|"]
    for k in SERVERS:
        each = " / ".join(f"{r['mb_s']:,.0f}" for r in runs[k])
        lines.append(f"| {k} | {mb_s[k]:,.0f} | {each} | {cpu[k]:.3f} s |")
    cpu_ratio = f"{cpu['microweb'] / cpu['nginx']:.2f}x" if cpu["nginx"] else "-"
    lines.append(f"| microweb / nginx | {ratio:.3f}x (target ≥ {DOWNLOAD_TARGET}x: {verdict(ok)}) | | {cpu_ratio} |")
    return "\n".join(lines), ok


def memory_flat(m):
    """Flat: the server keeps no file data in its own memory, so its RSS does not climb
    while the downloads go on (over the samples taken while it held all of them)."""
    return m["climb_kb"] <= FLAT_CLIMB_KB and m["answered_200"] == m["connections"]


def memory_table(mem):
    lines = ["| server | VmRSS before | during (largest sample) | after | VmHWM | growth per connection "
             "| climb while all held | answered 200 | held at the end of the hold | first closed by the server "
             "| bytes read per download (median, min) | flat |", "|" + "---|" * 12]
    verdicts = {}
    for k in SERVERS:
        m = mem[k]
        verdicts[k] = {"flat": memory_flat(m), "kept": m["held_at_end"] == m["connections"]}
        cut = "-" if m["first_cut_s"] is None else f"{m['first_cut_s']:g} s after the first connect"
        lines.append(f"| {k} | {m['before_kb'] / 1024:.1f} MiB | {m['during_max_kb'] / 1024:.1f} MiB "
                     f"| {m['after_kb'] / 1024:.1f} MiB | {m['peak_kb'] / 1024:.1f} MiB "
                     f"| {m['growth_per_connection_b']:,.0f} B | {m['climb_kb']:,} kB | {m['answered_200']:,} "
                     f"| {m['held_at_end']:,} | {cut} | {m['bytes_read_median']:,.0f}, {m['bytes_read_min']:,} "
                     f"| {verdict(verdicts[k]['flat'])} |")
    return "\n".join(lines), verdicts


def samples_text(mem):
    """Each server's samples, runs of equal ones joined: "0.5-9.7 s 6.4 MiB/1000"."""
    parts = []
    for k in SERVERS:
        runs = []
        for x in mem[k]["samples"]:
            value = f"{x['rss_kb'] / 1024:.1f} MiB/{x['held']}"
            if runs and runs[-1][2] == value:
                runs[-1][1] = x["t"]
            else:
                runs.append([x["t"], x["t"], value])
        parts.append(f"{k}: " + ", ".join(f"{a:g}{'' if a == b else f'-{b:g}'} s {v}" for a, b, v in runs))
    return "; ".join(parts)


def syscall_table(sys_rows):
    lines = []
    for row, per_server in sys_rows.items():
        names = sorted(set().union(*per_server.values()),
                       key=lambda n: -max(per_server[k].get(n, 0) for k in SERVERS))
        names = [n for n in names if max(per_server[k].get(n, 0) for k in SERVERS) >= 0.005]
        lines += [f"**{WRK_ROWS[row][0]}** (calls per request)", "", "| syscall | microweb | nginx |", "|---|---|---|"]
        lines += [f"| {n} | {per_server['microweb'].get(n, 0):.3f} | {per_server['nginx'].get(n, 0):.3f} |"
                  for n in names]
        lines.append(f"| total | {sum(per_server['microweb'].values()):.2f} | {sum(per_server['nginx'].values()):.2f} |")
        lines.append("")
    return "\n".join(lines)


def rounds_text(rows):
    out = []
    for row in WRK_ROWS:
        for k in SERVERS:
            out.append(f"- {row} {k}: " + "; ".join(f"{r['rps']:,.0f} req/s {r['cpu_us']:.2f} µs {r['busy_pct']:.0f}%"
                                                     for r in rows[row][k]))
    return "\n".join(out)


def report(results, plan, command):
    m = bench.machine_info()
    nginx_version = bench.command_output([bench.nginx_binary(), "-v"]).replace("nginx version: ", "")
    lines = [
        "# Static files: mw_static against nginx",
        "",
        f"{results['date']}, `{command}`: {plan['rounds']} rounds of {plan['duration']} s per server and row, "
        f"alternating; {bench.CORE_NOTE}; {m['nproc']} CPUs ({m['cpu']}), {m['kernel']}, load average at start "
        f"{' '.join(m['loadavg_at_start'])}. {bench.microweb_version()} (bench/static_app.c, `MW_THREADS=1`, access "
        f"log off, per-address cap off); {nginx_version} (one worker, `sendfile on`, `etag on`, `gzip off`, "
        "access_log off, keepalive_requests 1000000, open_file_cache off as by default: both servers open, stat "
        "and close the file on every request). Files of random bytes: 4 KiB, 1 MiB, 100 MB (10^8 bytes).",
        "",
    ]
    verdicts = {}
    if "get" in results:
        text, verdicts["wrk"] = wrk_table(results["get"])
        lines += ["## Requests (wrk -t1; 4 KiB and 304: -c64, 1 MiB: -c16)", "", text, "",
                  "req/s: the median round of each server; the req/s ratio is the median over the rounds of "
                  "microweb's req/s / nginx's in the same round (they ran back to back). CPU: utime+stime ticks of "
                  "the server's process tree (nginx: master and worker) from /proc/PID/stat over the wrk run, "
                  "divided by the requests, in each server's least disturbed round (this host's noise only adds "
                  "CPU; the ratio of the median rounds beside it). "
                  "Each server was checked first: GET of each file returns its bytes, and a curl with "
                  "`If-None-Match: <that server's ETag>` gets 304; wrk's bytes per answer are checked too "
                  "(a file's size or more; under 1 KiB for 304). Server core busy: the server's CPU over the run's "
                  "wall time; under 100% the server waited for wrk (which shares core 0 with this runner and "
                  "whatever else the host runs), so req/s is then the client's figure and CPU per request the "
                  "server's.", ""]
    if "download" in results:
        text, verdicts["download"] = download_table(results["download"])
        lines += [f"## 100 MB download (`curl -s -o /dev/null`, {plan['downloads']} timed, one at a time)", "",
                  text, "", "MB/s = 10^8 bytes / curl's time_total; one untimed download per server first; the "
                  "servers back to back, the other first each round; the ratio is the median of the rounds' "
                  "ratios. Server CPU: utime+stime ticks (1/100 s) over the download.", ""]
    if "memory" in results:
        text, verdicts["memory"] = memory_table(results["memory"])
        lines += [f"## Memory with {plan['slow']:,} slow downloads of the 100 MB file", "", text, "",
                  f"One client process (this runner, core {bench.CLIENT_CORE}) opens {plan['slow']:,} connections "
                  f"(SO_RCVBUF {SLOW_RCVBUF} before connect), each sending GET /static/large.bin, then reads at most "
                  f"{SLOW_READ} bytes from each every {SLOW_TICK * 1000:.0f} ms; once the server holds all of them "
                  f"(a socket and the open file each, counted in /proc/PID/fd) VmRSS of its process tree is sampled "
                  f"every {SAMPLE_EVERY:g} s for {plan['hold']:g} s. Growth per connection = (largest sample while "
                  "the server held every download - before) / connections; VmHWM reset (`clear_refs` 5) before the "
                  "row; after = once the server's descriptor count is back to what it was before. Flat: RSS climbs "
                  f"at most {FLAT_CLIMB_KB} kB from the first to the last sample while the server held every "
                  "download (no file data kept in the server's memory) and every download got its 200. Each server "
                  "freshly started; kernel socket buffers are not in RSS. Samples (time since the first connect, "
                  "VmRSS/downloads held): " + samples_text(results["memory"]), ""]
    if "syscalls" in results:
        lines += ["## Syscalls per request (strace -c -f, a 2 s wrk run of the row)", "",
                  syscall_table(results["syscalls"]),
                  "Every thread of each server's processes; strace slows the servers, so the calls that batch "
                  "(epoll_wait) are fewer per request than they would be unobserved.", ""]
    if "callgrind" in results:
        ins = results["callgrind"]
        lines += ["## Instructions per request (callgrind, GET 4 KiB)", "",
                  "| microweb | nginx | ratio |", "|---|---|---|",
                  f"| {ins['microweb']:,.0f} | {ins['nginx']:,.0f} | {ins['microweb'] / ins['nginx']:.3f}x |", "",
                  f"(run of {CALLGRIND_COUNTS[1]} requests - run of {CALLGRIND_COUNTS[0]}) / "
                  f"{CALLGRIND_COUNTS[1] - CALLGRIND_COUNTS[0]}, one keep-alive connection, user space only (the "
                  "kernel's open, stat, sendfile and TCP are not counted); nginx in one process "
                  "(`master_process off`). Valgrind 3.19 does not know openat2, so microweb's count runs its "
                  "O_NOFOLLOW walk (one openat for a file at the top of the folder) instead.", ""]
    lines += ["## Targets", ""]
    if "wrk" in verdicts:
        for row, v in verdicts["wrk"].items():
            lines.append(f"- {WRK_ROWS[row][0]}: req/s ≥ {RPS_TARGET}x nginx **{verdict(v['rps'])}**, "
                         f"CPU per request ≤ {CPU_TARGET}x nginx **{verdict(v['cpu'])}**")
    if "download" in verdicts:
        lines.append(f"- 100 MB download MB/s ≥ {DOWNLOAD_TARGET}x nginx **{verdict(verdicts['download'])}**")
    if "memory" in verdicts:
        mem, v = results["memory"], verdicts["memory"]
        lines.append(f"- memory flat with {plan['slow']:,} slow downloads **{verdict(v['microweb']['flat'])}** "
                     f"(RSS growth per connection: microweb {mem['microweb']['growth_per_connection_b']:,.0f} B, "
                     f"nginx {mem['nginx']['growth_per_connection_b']:,.0f} B)")
        for k in SERVERS:
            if not v[k]["kept"]:
                lines.append(f"- note: {k} held {mem[k]['held_at_end']:,} of the {plan['slow']:,} slow downloads at "
                             f"the end of the {plan['hold']:g} s hold (the first closed "
                             f"{mem[k]['first_cut_s']:g} s after the first connect) although each was still reading")
    if "get" in results:
        lines += ["", "## Rounds (req/s, CPU µs per request, server core busy)", "", rounds_text(results["get"])]
    return "\n".join(lines) + "\n", verdicts


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=0, help="seconds per wrk run (default 4; quick 2)")
    ap.add_argument("--rounds", type=int, default=0, help="rounds of the wrk rows (default 5; quick 2)")
    ap.add_argument("--downloads", type=int, default=0, help="timed 100 MB downloads per server (default 5; quick 2)")
    ap.add_argument("--slow", type=int, default=1000, help="slow downloads in the memory row (default 1000)")
    ap.add_argument("--hold", type=float, default=0, help="seconds the slow downloads are held (default 10; quick 4)")
    ap.add_argument("--rows", default=",".join(ROWS), help=f"rows to run, of {', '.join(ROWS)}; default all")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rows = tuple(args.rows.split(","))
    if not set(rows) <= set(ROWS):
        ap.error(f"--rows takes {', '.join(ROWS)}, separated by commas")
    plan = {"quick": args.quick, "duration": args.duration or (2 if args.quick else 4),
            "rounds": args.rounds or (2 if args.quick else 5), "downloads": args.downloads or (2 if args.quick else 5),
            "slow": args.slow, "hold": args.hold or (4 if args.quick else 10), "rows": rows}
    for sig in (signal.SIGTERM, signal.SIGHUP):  # unwind: servers stopped, temporary files removed
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    bench.raise_nofile()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if "memory" in rows and soft < 2 * plan["slow"] + 256:
        raise bench.BenchError(f"the descriptor limit is {soft}: the memory row needs {2 * plan['slow'] + 256} "
                               "(raise `ulimit -Hn`)")
    os.sched_setaffinity(0, {bench.CLIENT_CORE})
    tools = [("wrk", ("wrk",)), ("curl", ("curl",)), ("nginx", ("nginx-light",))]
    tools += [("strace", ("strace",))] if "syscalls" in rows else []
    tools += [("valgrind", ("valgrind",))] if "callgrind" in rows else []
    for tool, packages in tools:
        missing = bench.ensure(bench.which_probe(tool, "/usr/sbin", "/sbin"), packages)
        if missing:
            raise bench.BenchError(missing)
    binary = bench.build("bench/static_app.c", "static_app")
    command = " ".join(["python3 bench/static.py", *sys.argv[1:]])
    results = {"date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", "plan": plan,
               "nofile": soft}
    with tempfile.TemporaryDirectory(prefix="microweb-static-") as workdir:
        files = make_files(workdir)
        if "callgrind" in rows:
            results["callgrind"] = instructions_per_request(binary, files, workdir)
            print(f"static: callgrind {results['callgrind']}", file=sys.stderr)
        with servers_running(binary, files, workdir, "rows") as live:
            etags = {key: check_server(key, port, files) for key, (_, port) in live.items()}
            results["etags"] = etags
            if "get" in rows:
                results["get"] = wrk_rounds(live, etags, plan)
            if "download" in rows:
                results["download"] = downloads(live, plan)
            if "syscalls" in rows:
                results["syscalls"] = syscall_rows(live, etags, workdir)
        if "memory" in rows:
            results["memory"] = {key: slow_memory(key, binary, files, workdir, plan) for key in SERVERS}
    text, verdicts = report(results, plan, command)
    results["verdicts"] = verdicts
    stem = "static-quick" if args.quick else "static"
    bench.write_results(stem, text, results)
    print(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except bench.BenchError as e:
        print(f"static: {e}", file=sys.stderr)
        sys.exit(1)
