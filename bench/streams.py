#!/usr/bin/env python3
"""streams.py - part of `make bench` (also `make bench-streams`): microweb's bodies beyond a
buffer against peers measured in the same run, every server pinned to core 1 and every
client to core 0, as bench/run.py does.

    1. SSE fan-out: STREAMS clients on one event stream each, one event to all of them every
       100 ms; server CPU per delivered event and delivery latency. microweb
       (bench/streams_app.c, MW_THREADS=2, a broadcaster thread calling mw_sse_send) against
       Node.js `http` (bench/sse_node.js) and FastAPI's StreamingResponse under uvicorn
       (bench/sse_fastapi.py). The clients: bench/sse_client.c, one epoll process.
    2. GET / during the fan-out: a GET / every PROBE_MS ms on a keep-alive connection, with
       the streams open and with none.
    3. A large body to `curl -o /dev/null`: microweb's mw_send_pull (constant bytes) and
       mw_send_file against nginx serving the same file with sendfile.
    4. Memory per idle open stream: RSS with IDLE event streams open minus RSS with none.

    python3 bench/streams.py                 every row, 5 s per measured window
    python3 bench/streams.py --duration N    N seconds per window
    python3 bench/streams.py --rows transfer only row 3 (fanout: 1 and 2, transfer: 3, idle: 4)
    (--streams, --idle-streams, --transfer-mib, --transfers, --probe-ms: see --help)

Writes bench/results/streams.{md,json}. Uses bench/run.py's helpers (pinning, process
trees, /proc, installing peers from Debian when missing and running as root); a peer
that cannot be installed or started is reported as skipped, with the reason. Servers,
clients and the temporary file are removed on any exit.
"""
import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from run import (BACKLOG, BENCH_DIR, CLIENT_CORE, CLK_TCK, RESULTS_DIR, ROOT, SERVER_CORE, SYS_PYTHON, BenchError,
                 DrivenClient, build, check, command_output, ensure, fmt_ratio, fmt_us, free_port,
                 machine_info, microweb_version, nginx_binary, nginx_command, peer_env, pinned, process_tree,
                 python_probe, raise_nofile, running, status_kb, table, user_system_ticks, uvicorn_version,
                 which_probe)

MW_THREADS = 2
EVERY_MS = 100        # one broadcast to every stream this often
READY_TIMEOUT = 180   # seconds for every stream to get its head (10,000 on a slow peer)
CORES_NOTE = (f"servers on core {SERVER_CORE} (`taskset -c {SERVER_CORE}`), sse_client, curl and "
              f"this runner on core {CLIENT_CORE}")


@dataclasses.dataclass(frozen=True)
class Plan:
    duration: float      # seconds per measured window
    streams: int         # event streams in the fan-out rows
    idle_streams: int    # event streams in the memory row
    probe_ms: float      # GET / every this many ms in the probe rows
    transfer_mib: int    # size of the transferred body
    transfers: int       # timed transfers per server (after one untimed)
    rows: tuple          # which rows run: "fanout" (1 and 2), "transfer" (3), "idle" (4)
    settle: float        # seconds between opening the streams and a window, and between rows


# ---------------------------------------------------------------- the servers

@dataclasses.dataclass(frozen=True)
class Server:
    key: str
    label: str
    probe: object          # () -> None when usable, else the reason
    packages: tuple        # Debian packages that provide it
    command: object        # (port, workdir, settings) -> (argv, env); settings: BENCH_EVERY_MS, BENCH_FILE
    version: object        # () -> str
    note: str


def microweb_command(app):
    def command(port, workdir, settings):
        return pinned(app), peer_env(PORT=str(port), MW_THREADS=str(MW_THREADS), **settings)
    return command


def node_command(port, workdir, settings):
    return pinned("node", BENCH_DIR / "sse_node.js"), peer_env(PORT=str(port), **settings)


def fastapi_command(port, workdir, settings):
    return pinned(SYS_PYTHON, "-m", "uvicorn", "--app-dir", BENCH_DIR, "--host", "127.0.0.1", "--port", port,
                  "--backlog", BACKLOG, "--no-access-log", "--log-level", "warning",
                  "sse_fastapi:app"), peer_env(**settings)


def nginx_file_command(port, workdir, settings):
    location = (f"        location = /file {{\n            alias {settings['BENCH_FILE']};\n"
                "            sendfile on;\n            default_type application/octet-stream;\n        }\n")
    return nginx_command(port, workdir, locations=location)


def make_servers(app):
    """microweb (app: the built bench/streams_app.c) and its peers."""
    return {p.key: p for p in (
        Server("microweb", "microweb", lambda: None, (), microweb_command(app), microweb_version,
               f"bench/streams_app.c, `MW_THREADS={MW_THREADS}` (two workers), a broadcaster thread of "
               "its own calling mw_sse_send for each open stream; connection cap 20,000, per-address "
               "cap off (every client is 127.0.0.1)"),
        Server("node", "Node.js", which_probe("node"), ("nodejs",), node_command,
               lambda: f"Node.js {command_output(['node', '--version'])}",
               "bench/sse_node.js: node's own `http`, one process; `setInterval` broadcasts "
               "with `res.write` to every open response"),
        Server("fastapi", "FastAPI", python_probe("fastapi", "uvicorn"), ("python3-fastapi", "uvicorn"),
               fastapi_command, uvicorn_version,
               "bench/sse_fastapi.py under uvicorn, one worker, `--no-access-log`: a `StreamingResponse` "
               "per client whose generator awaits its own `asyncio.Queue`; a broadcaster task puts "
               "each event in every queue"),
        Server("nginx", "nginx", which_probe("nginx", "/usr/sbin", "/sbin"), ("nginx-light",), nginx_file_command,
               lambda: command_output([nginx_binary(), "-v"]).replace("nginx version: ", ""),
               "bench/run.py's configuration (one worker, access_log off) plus `location = /file` "
               "with `alias` to the file and `sendfile on`"),
    )}


# ---------------------------------------------------------------- the client

class SseClient(DrivenClient):
    """bench/sse_client.c on the client core, holding `streams` event streams to port."""

    def __init__(self, binary, port, streams, log_path):
        super().__init__([binary, port, streams], log_path, READY_TIMEOUT)

    def measure(self, seconds, probe_ms=0.0):
        """One window: {events, lost, latency: {p50_us, ...}, probe: {...}, ...}."""
        return self.command(f"measure {seconds} {probe_ms}", seconds + 30)


# ---------------------------------------------------------------- rows

@dataclasses.dataclass
class Cpu:
    user_s: float
    system_s: float

    @property
    def total_s(self):
        return self.user_s + self.system_s


def cpu_window(proc, fn):
    """fn()'s result and the server tree's Cpu while it ran."""
    pids = process_tree(proc.pid)
    user, system = user_system_ticks(pids)
    result = fn()
    user_after, system_after = user_system_ticks(pids)
    if proc.poll() is not None:
        raise BenchError(f"server exited with status {proc.returncode} during the window")
    return result, Cpu((user_after - user) / CLK_TCK, (system_after - system) / CLK_TCK)


def fanout_row(w, cpu, rss_kb, streams):
    lat, events = w["latency"], w["events"]

    def per_event(seconds):
        return seconds * 1e6 / events if events else None

    return {
        "status": "ok", "streams": streams, "seconds": w["seconds"], "events": events,
        "events_per_s": events / w["seconds"], "lost": w["lost"], "misordered": w["misordered"],
        "closed": w["closed"], "silent": w["silent"], "cpu_s": cpu.total_s,
        "cpu_us_per_event": per_event(cpu.total_s), "user_us_per_event": per_event(cpu.user_s),
        "system_us_per_event": per_event(cpu.system_s),
        "server_cpu_pct": 100 * cpu.total_s / w["seconds"], "client_cpu_pct": 100 * w["client_cpu_s"] / w["seconds"],
        "p50_us": lat["p50_us"] if lat["count"] else None, "p99_us": lat["p99_us"] if lat["count"] else None,
        "max_us": lat["max_us"] if lat["count"] else None, "rss_kb": rss_kb,
    }


def probe_row(w, cpu, streams):
    p = w["probe"]
    return {
        "status": "ok", "streams": streams, "seconds": w["seconds"], "requests": p["count"],
        "errors": w["probe_errors"], "p50_us": p["p50_us"] if p["count"] else None,
        "p99_us": p["p99_us"] if p["count"] else None, "max_us": p["max_us"] if p["count"] else None,
        "server_cpu_pct": 100 * cpu.total_s / w["seconds"], "events": w["events"], "lost": w["lost"],
        "realtime": bool(w["probe_realtime"]),
    }


def open_streams(client, want):
    if client.ready["ready"] != want:
        raise BenchError(f"{client.ready['ready']} of {want} event streams opened")


def fanout(key, server, client_bin, plan, workdir):
    """Rows 1 and 2 on one server: the fan-out window, then GET / probed with the streams
    open, then with none. Returns (fan-out row, {"with": row, "without": row})."""
    port, log = free_port(), Path(workdir) / f"{key}-fanout.log"
    argv, env = server.command(port, workdir, {"BENCH_EVERY_MS": str(EVERY_MS)})
    with running(argv, env, port, log) as proc:
        with SseClient(client_bin, port, plan.streams, Path(workdir) / f"{key}-client.log") as client:
            open_streams(client, plan.streams)
            time.sleep(plan.settle)
            w, cpu = cpu_window(proc, lambda: client.measure(plan.duration))
            fan = fanout_row(w, cpu, status_kb(process_tree(proc.pid), "VmRSS"), plan.streams)
            print(f"streams: {key:9} fan-out x{plan.streams}: {describe_fanout(fan)}", file=sys.stderr)
            w, cpu = cpu_window(proc, lambda: client.measure(plan.duration, plan.probe_ms))
            probed = {"with": probe_row(w, cpu, plan.streams)}
        time.sleep(plan.settle)  # the server notices the streams are gone
        with SseClient(client_bin, port, 0, Path(workdir) / f"{key}-probe.log") as client:
            w, cpu = cpu_window(proc, lambda: client.measure(plan.duration, plan.probe_ms))
            probed["without"] = probe_row(w, cpu, 0)
    for which, row in probed.items():
        print(f"streams: {key:9} GET / {which} streams: {describe_probe(row)}", file=sys.stderr)
    return fan, probed


def idle_memory(key, server, client_bin, plan, workdir):
    """Row 4: RSS with plan.idle_streams event streams open (no events sent) minus before."""
    port, log = free_port(), Path(workdir) / f"{key}-idle.log"
    argv, env = server.command(port, workdir, {"BENCH_EVERY_MS": "0"})
    with running(argv, env, port, log) as proc:
        time.sleep(plan.settle)
        before = status_kb(process_tree(proc.pid), "VmRSS")
        with SseClient(client_bin, port, plan.idle_streams, Path(workdir) / f"{key}-idle-client.log") as client:
            opened = client.ready["ready"]
            time.sleep(plan.settle)
            after = status_kb(process_tree(proc.pid), "VmRSS")
            still = client.measure(0.2)["open"]
    row = {"status": "ok", "streams": plan.idle_streams, "opened": opened, "still_open": still,
           "open_seconds": client.ready["seconds"], "before_kb": before, "after_kb": after,
           "bytes_per_stream": (after - before) * 1024 / opened if opened else None}
    print(f"streams: {key:9} idle x{plan.idle_streams}: {opened} opened, "
          f"{row['bytes_per_stream'] or 0:,.0f} B/stream", file=sys.stderr)
    return row


def curl_get(url):
    """(status, bytes, seconds) of one GET to /dev/null by curl on the client core."""
    out = command_output(["taskset", "-c", str(CLIENT_CORE), "curl", "-s", "-o", "/dev/null", "-w",
                          "%{http_code} %{size_download} %{time_total}", url])
    try:
        status, size, seconds = out.split()
        return int(status), int(size), float(seconds)
    except ValueError:
        raise BenchError(f"curl: {out[-300:]}") from None


def transfers(servers, plan, workdir):
    """Row 3: the same body from microweb's pull and file sources and from nginx's file,
    one transfer each untimed, then plan.transfers timed rounds, the servers back to back
    within a round and a different one first in each. Returns {case: row}."""
    size = plan.transfer_mib << 20
    path = Path(workdir) / "body.bin"
    with open(path, "wb") as f:
        block = b"x" * (1 << 20)
        for _ in range(plan.transfer_mib):
            f.write(block)
        os.fsync(f.fileno())  # written back now, not by the kernel during the timed transfers
    # nginx's worker runs as nobody when started by root: it must reach the file
    os.chmod(workdir, 0o711)
    path.chmod(0o644)
    cases = {"pull": ("microweb", "/pull?bytes=%d" % size), "file": ("microweb", "/file"),
             "nginx": ("nginx", "/file")}
    results = {case: [] for case in cases}
    with contextlib.ExitStack() as stack:
        live = {}
        for key in {k for k, _ in cases.values()}:
            port = free_port()
            argv, env = servers[key].command(port, workdir, {"BENCH_EVERY_MS": "0", "BENCH_FILE": str(path)})
            live[key] = (stack.enter_context(running(argv, env, port, Path(workdir) / f"{key}-transfer.log")), port)
        order = list(cases)
        for round_no in range(plan.transfers + 1):
            first = round_no % len(order)
            for case in order[first:] + order[:first]:  # each goes first in turn
                key, target = cases[case]
                proc, port = live[key]
                (status, got, seconds), cpu = cpu_window(proc, lambda: curl_get(f"http://127.0.0.1:{port}{target}"))
                if status != 200 or got != size:
                    raise BenchError(f"{case}: status {status}, {got:,} of {size:,} bytes")
                if round_no:  # the first round warms the page cache and the servers
                    results[case].append({"seconds": seconds, "mb_s": size / seconds / 1e6, "cpu_s": cpu.total_s})
    path.unlink()
    rows = {}
    for case, runs in results.items():
        mb_s = statistics.median(r["mb_s"] for r in runs)
        rows[case] = {"status": "ok", "bytes": size, "mb_s": mb_s, "runs_mb_s": [r["mb_s"] for r in runs],
                      "cpu_s_per_gib": statistics.median(r["cpu_s"] for r in runs) * (1 << 30) / size}
        print(f"streams: {case:9} {plan.transfer_mib} MiB: {mb_s:,.0f} MB/s (median of {len(runs)})",
              file=sys.stderr)
    return rows


def guarded(label, fn):
    """fn()'s row, or a failed row with the reason."""
    try:
        return fn()
    except (BenchError, OSError, ValueError) as e:
        print(f"streams: {label}: failed: {e}", file=sys.stderr)
        return {"status": "failed", "reason": str(e)}


# ---------------------------------------------------------------- the run

def prepare():
    """Builds the app and the client, finds the peers; returns (servers, client, {key: why skipped})."""
    cc = os.environ.get("CC", "cc")
    if ensure(which_probe(cc), ("gcc",)):
        raise BenchError(f"{cc} is needed to build bench/streams_app.c")
    if ensure(which_probe("curl"), ("curl",)):
        raise BenchError("curl is needed for the transfer rows")
    app = build("bench/streams_app.c", "streams_app")
    client = build("bench/sse_client.c", "sse_client")
    servers = make_servers(app)
    skipped = {}
    for key, server in servers.items():
        reason = ensure(server.probe, server.packages)
        if reason:
            skipped[key] = f"not installed: {reason}"
            print(f"streams: {key} skipped: {reason}", file=sys.stderr)
    return servers, client, skipped


def run(plan):
    started = time.monotonic()
    servers, client, skipped = prepare()
    machine = machine_info()
    machine["cores"] = CORES_NOTE
    results = {
        "plan": dataclasses.asdict(plan), "every_ms": EVERY_MS, "mw_threads": MW_THREADS,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine,
        "command": " ".join(["bench/streams.py", *sys.argv[1:]]),
        "curl": " ".join(command_output(["curl", "--version"]).split()[:2]),
        "peers": {k: {"label": p.label, "note": p.note, "version": "" if k in skipped else p.version(),
                      "skipped": skipped.get(k)} for k, p in servers.items()},
        "fanout": {}, "probe": {}, "transfer": {}, "idle": {},
    }
    sse_keys = [k for k in ("microweb", "node", "fastapi") if k not in skipped]
    with tempfile.TemporaryDirectory(prefix="microweb-streams-") as workdir:
        for key in sse_keys if "fanout" in plan.rows else ():
            rows = guarded(f"{key} fan-out", lambda: fanout(key, servers[key], client, plan, workdir))
            if isinstance(rows, tuple):
                results["fanout"][key], results["probe"][key] = rows
            else:
                results["fanout"][key] = rows
            time.sleep(plan.settle)
        if "transfer" in plan.rows and "nginx" not in skipped:
            results["transfer"] = guarded("transfers", lambda: transfers(servers, plan, workdir))
        for key in sse_keys if "idle" in plan.rows else ():
            results["idle"][key] = guarded(f"{key} idle", lambda: idle_memory(key, servers[key], client, plan, workdir))
    results["elapsed_s"] = round(time.monotonic() - started)
    return results


# ---------------------------------------------------------------- the report

def fmt_x(x):
    """A ratio as bench/run.py writes it, with two significant digits below 0.1."""
    return f"{x:.2g}x" if x is not None and x < 0.1 else fmt_ratio(x)


def ok(rows, key):
    row = rows.get(key) if isinstance(rows, dict) else None
    return row if row and row.get("status") == "ok" else None


def ratio_of(a, b, metric):
    """a[metric] / b[metric], or None when either is missing."""
    if not a or not b or a.get(metric) is None or not b.get(metric):
        return None
    return a[metric] / b[metric]


def describe_fanout(r):
    return (f"{r['events']:,} events ({r['lost']} lost, {r['closed']} streams closed), "
            f"{r['cpu_us_per_event'] or 0:.2f} µs CPU/event, "
            f"p50 {fmt_us(r['p50_us'])}, p99 {fmt_us(r['p99_us'])}")


def describe_probe(r):
    return f"{r['requests']:,} requests, {r['errors']} errors, p50 {fmt_us(r['p50_us'])}, p99 {fmt_us(r['p99_us'])}"


def label(results, key):
    return results["peers"][key]["label"]


def failed_cells(row, width):
    reason = "not run" if row is None else f"{row['status']}: {row.get('reason', '')}"
    return [reason] + [""] * (width - 1)


def fanout_section(results, plan):
    headers = ["server", "events delivered", "events/s", "lost", "streams closed", "silent streams",
               "CPU µs/event", "user + kernel", "server CPU", "p50", "p99", "max", "client CPU", "RSS"]
    rows = []
    for key, r in results["fanout"].items():
        if r["status"] != "ok":
            rows.append([label(results, key)] + failed_cells(r, len(headers) - 1))
            continue
        rows.append([label(results, key), f"{r['events']:,}", f"{r['events_per_s']:,.0f}", f"{r['lost']:,}",
                     f"{r['closed']:,}", f"{r['silent']:,}", f"{r['cpu_us_per_event']:.2f}",
                     f"{r['user_us_per_event']:.2f} + {r['system_us_per_event']:.2f}",
                     f"{r['server_cpu_pct']:.0f}%", fmt_us(r["p50_us"]), fmt_us(r["p99_us"]), fmt_us(r["max_us"]),
                     f"{r['client_cpu_pct']:.0f}%", f"{r['rss_kb'] / 1024:.1f} MiB"])
    return (f"{plan.streams:,} event streams (`GET /events`, HTTP/1.1, chunked), one event "
            f"(`data: <seq> <ns>`, about 30 bytes) to every stream every {EVERY_MS} ms, measured over "
            f"{plan.duration:g} s after the streams were open for {plan.settle:g} s.\n\n"
            + table(headers, rows) + "\n")


def probe_section(results, plan):
    headers = ["server", "streams open", "requests", "errors", "p50", "p99", "max", "server CPU"]
    rows = []
    for key, pair in results["probe"].items():
        for which in ("without", "with"):
            r = pair[which]
            rows.append([label(results, key), f"{r['streams']:,}", f"{r['requests']:,}", f"{r['errors']:,}",
                         fmt_us(r["p50_us"]), fmt_us(r["p99_us"]), fmt_us(r["max_us"]),
                         f"{r['server_cpu_pct']:.0f}%"])
    return (f"`GET /` every {plan.probe_ms:g} ms on one keep-alive connection for {plan.duration:g} s "
            f"(a thread of sse_client), with the {plan.streams:,} streams of the fan-out open and an "
            f"event to each every {EVERY_MS} ms, then with no stream open. The latency of a request is "
            "counted from when it was due, so an answer that comes late also counts against the "
            "requests it held up.\n\n" + table(headers, rows) + "\n")


def transfer_section(results, plan):
    names = {"pull": "microweb, mw_send_pull (constant bytes, chunked)", "file": "microweb, mw_send_file",
             "nginx": "nginx, the file with sendfile"}
    rows = []
    for case, name in names.items():
        r = results["transfer"].get(case)
        if not r or r["status"] != "ok":
            rows.append([name] + failed_cells(r, 3))
            continue
        rows.append([name, f"{r['mb_s']:,.0f}", " / ".join(f"{x:,.0f}" for x in r["runs_mb_s"]),
                     f"{r['cpu_s_per_gib']:.2f} s"])
    if results["transfer"].get("status") == "failed":
        rows = [[results["transfer"]["reason"], "", "", ""]]
    return (f"{plan.transfer_mib:,} MiB by `curl -s -o /dev/null` (one connection), one untimed transfer "
            f"per server first, then {plan.transfers} timed round{'s' if plan.transfers > 1 else ''} with the "
            "servers back to back (a different one first in each round). MB/s = "
            "body bytes / curl's time_total (10^6 bytes); the table gives the median and every round. "
            "Server CPU per GiB: utime+stime of the server over the transfer.\n\n"
            + table(["source", "MB/s (median)", "each round", "server CPU per GiB"], rows) + "\n")


def idle_section(results, plan):
    rows = []
    for key, r in results["idle"].items():
        if r["status"] != "ok":
            rows.append([label(results, key)] + failed_cells(r, 5))
            continue
        rows.append([label(results, key), f"{r['before_kb'] / 1024:.1f} MiB", f"{r['after_kb'] / 1024:.1f} MiB",
                     f"{r['bytes_per_stream']:,.0f} B" if r["bytes_per_stream"] else "-",
                     f"{r['opened']:,} / {r['still_open']:,}", f"{r['open_seconds']:.1f} s"])
    return (f"{plan.idle_streams:,} event streams opened and left idle (the servers send no event: "
            f"`BENCH_EVERY_MS=0`); RSS (VmRSS) {plan.settle:g} s after the last stream got its head, "
            "minus RSS before the first connection, divided by the streams opened. Kernel socket "
            "buffers are not in RSS and not counted.\n\n"
            + table(["server", "RSS before", "RSS with the streams", "per stream", "opened / still open",
                     "time to open all"], rows) + "\n")


def ratio_section(results):
    mw_fan, mw_probe = ok(results["fanout"], "microweb"), results["probe"].get("microweb")
    rows = []
    for key in ("node", "fastapi"):
        peer = ok(results["fanout"], key)
        if peer:
            rows.append([f"SSE fan-out vs {label(results, key)}"] +
                        [fmt_x(ratio_of(mw_fan, peer, m)) for m in
                         ("cpu_us_per_event", "user_us_per_event", "system_us_per_event", "p50_us", "p99_us")])
    fan = (table(["row", "CPU/event", "user CPU/event", "kernel CPU/event", "latency p50", "latency p99"], rows)
           if rows else "No fan-out figures.")
    rows = []
    if mw_probe:
        rows.append(["microweb with the streams / microweb without",
                     fmt_x(ratio_of(mw_probe["with"], mw_probe["without"], "p50_us")),
                     fmt_x(ratio_of(mw_probe["with"], mw_probe["without"], "p99_us"))])
        for key in ("node", "fastapi"):
            if key in results["probe"]:
                theirs = results["probe"][key]["with"]
                rows.append([f"microweb / {label(results, key)}, both with the streams",
                             fmt_x(ratio_of(mw_probe["with"], theirs, "p50_us")),
                             fmt_x(ratio_of(mw_probe["with"], theirs, "p99_us"))])
    probe = table(["GET / latency", "p50", "p99"], rows) if rows else "No probe figures."
    t = results["transfer"]
    rows = [[f"microweb {name} / nginx sendfile", fmt_x(ratio_of(ok(t, case), ok(t, "nginx"), "mb_s")),
             fmt_x(ratio_of(ok(t, case), ok(t, "nginx"), "cpu_s_per_gib"))]
            for case, name in (("pull", "mw_send_pull"), ("file", "mw_send_file"))]
    transfer = table(["transfer", "MB/s", "server CPU per GiB"], rows)
    rows = [[f"microweb / {label(results, key)}",
             fmt_x(ratio_of(ok(results["idle"], "microweb"), ok(results["idle"], key), "bytes_per_stream"))]
            for key in ("node", "fastapi") if key in results["idle"]]
    idle = table(["memory per idle stream", "ratio"], rows) if rows else "No memory figures."
    return ("microweb's figure divided by the peer's, from this run: lower is better for CPU, "
            "latency and memory, higher for MB/s. `-`: no figure.\n\n"
            + "\n\n".join([fan, probe, transfer, idle]) + "\n")


def targets(results):
    mw, node = ok(results["fanout"], "microweb"), ok(results["fanout"], "node")
    t = results["transfer"]
    return [
        check("SSE fan-out: CPU per delivered event, microweb / Node.js", ratio_of(mw, node, "cpu_us_per_event"),
              0.5, higher_is_better=False),
        check("mw_send_pull MB/s / nginx sendfile MB/s", ratio_of(ok(t, "pull"), ok(t, "nginx"), "mb_s"), 0.8),
    ]


def target_section(results):
    marks = {True: "met", False: "**NOT met**", None: "not measured"}
    return "\n".join(f"- {marks[met]} — {line}" for met, line in targets(results)) + "\n"


def anomalies(results, plan):
    """Lines on what looks wrong: lost or misordered events, streams closed or starved,
    probe errors, a client that may have been the limit."""
    out = []
    for key, r in results["fanout"].items():
        if r["status"] != "ok":
            continue
        for field, what in (("lost", "events lost"), ("misordered", "events out of order"),
                            ("closed", "streams closed by the server"), ("silent", "streams that got no event")):
            if r[field]:
                out.append(f"{label(results, key)} fan-out: {r[field]:,} {what} in the window.")
        if r["client_cpu_pct"] >= 90:
            out.append(f"{label(results, key)} fan-out: sse_client used {r['client_cpu_pct']:.0f}% of its core; "
                       "the latencies may be the client's.")
    for key, pair in results["probe"].items():
        for which, r in pair.items():
            if r["errors"]:
                out.append(f"{label(results, key)} GET / probe {which} the streams: {r['errors']:,} failed requests.")
            if not r["realtime"]:
                out.append(f"{label(results, key)} GET / probe {which} the streams ran without a real-time "
                           "priority (not root?): its latencies include waits behind the client's own stream loop.")
    for key, r in results["idle"].items():
        if r["status"] == "ok" and (r["opened"] < plan.idle_streams or r["still_open"] < r["opened"]):
            out.append(f"{label(results, key)} idle: {r['opened']:,} of {plan.idle_streams:,} streams opened, "
                       f"{r['still_open']:,} still open at the end.")
    return out


def settings_section(results, plan):
    peers = [f"- **{v['label']}**: {v['version'] or '-'}. {v['note']}."
             + (f" **Skipped**: {v['skipped']}" if v["skipped"] else "") for v in results["peers"].values()]
    return "\n".join([
        f"- Pinning: {results['machine']['cores']}. Descriptor limit raised for every process as bench/run.py does.",
        f"- Clients: bench/sse_client.c (one process, epoll, chunked decoding, one latency sample per "
        "event: arrival CLOCK_MONOTONIC minus the send time the event carries; every server stamps "
        "an event once per broadcast, before its first send, so the latency includes the fan-out's "
        "own duration; gaps in a stream's sequence numbers count as lost events); "
        f"`{results['curl']}` for the transfers.",
        "- CPU: utime+stime ticks (and reaped children's) of the server's process tree from "
        "/proc/PID/stat, read just before and after the window; CPU µs/event = those seconds over "
        "the events the client received in the window, split into user (utime) and kernel (stime); "
        "server CPU = the same over the window's wall time (100% = one core). Ticks are "
        f"1/{CLK_TCK} s, so a short window of a server that is mostly idle is coarse: "
        "1,000 streams for 5 s at 5 µs/event is 25 ticks. The kernel part is mostly TCP's send "
        "over loopback, one per event per stream, and about the same for every server: it bounds "
        "the ratio of the totals.",
        "- GET / probe: a thread of sse_client at a real-time priority (SCHED_FIFO 1, when allowed), "
        "so that its answers are read as they arrive and not after the stream loop, which shares its "
        "core, has handled a burst of events.",
        "- Percentiles: nearest rank over every sample of the window.",
        "",
        *peers,
    ]) + "\n"


def render_report(results, plan):
    m = results["machine"]
    odd = anomalies(results, plan)
    skipped = [f"- {v['label']}: {v['skipped']}" for v in results["peers"].values() if v["skipped"]]
    parts = [
        "# microweb benchmark: streams, SSE and large bodies\n",
        f"Generated by `{results['command']}` on {results['date']} in {results['elapsed_s']} s.\n",
        "## Targets\n", target_section(results),
        "## Ratios (microweb / peer)\n", ratio_section(results),
        "## 1. SSE fan-out\n", fanout_section(results, plan),
        "## 2. GET / during the fan-out\n", probe_section(results, plan),
        "## 3. Large bodies\n", transfer_section(results, plan),
        "## 4. Memory per idle stream\n", idle_section(results, plan),
        "## Machine\n",
        f"- {m['nproc']} CPUs: {m['cpu']}; {m['memory']} memory",
        f"- {m['kernel']}, {m['os']}",
        f"- load average at start: {' '.join(m['loadavg_at_start'])}\n",
        "## Method and versions\n", settings_section(results, plan),
    ]
    if odd:
        parts.append("## Anomalies\n\n" + "\n".join(f"- {line}" for line in odd) + "\n")
    if skipped:
        parts.append("## Skipped\n\n" + "\n".join(skipped) + "\n")
    return "\n".join(parts)


def write_outputs(results, plan):
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "streams.json").write_text(json.dumps(results, indent=1) + "\n")
    report = RESULTS_DIR / "streams.md"
    report.write_text(render_report(results, plan))
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5, help="seconds per measured window (default 5)")
    parser.add_argument("--streams", type=int, default=1000, help="event streams in the fan-out (default 1000)")
    parser.add_argument("--idle-streams", type=int, default=10000, help="streams in the memory row (default 10000)")
    parser.add_argument("--probe-ms", type=float, default=1, help="ms between GET / probes (default 1)")
    parser.add_argument("--transfer-mib", type=int, default=1024, help="MiB per transfer (default 1024)")
    parser.add_argument("--transfers", type=int, default=3, help="timed transfers per source (default 3)")
    parser.add_argument("--rows", default="fanout,transfer,idle",
                        help="rows to run, of fanout (1 and 2), transfer (3), idle (4); default all")
    args = parser.parse_args()
    if args.duration <= 0 or args.streams < 1 or args.idle_streams < 1 or args.probe_ms <= 0 \
            or args.transfer_mib < 1 or args.transfers < 1:
        parser.error("every figure must be positive")
    rows = tuple(args.rows.split(","))
    if not set(rows) <= {"fanout", "transfer", "idle"}:
        parser.error("--rows takes fanout, transfer and idle, separated by commas")
    plan = Plan(duration=args.duration, streams=args.streams, idle_streams=args.idle_streams, probe_ms=args.probe_ms,
                transfer_mib=args.transfer_mib, transfers=args.transfers, rows=rows, settle=1.0)
    for sig in (signal.SIGTERM, signal.SIGHUP):  # unwind (stop servers, remove the temporary file)
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    raise_nofile()
    os.sched_setaffinity(0, {CLIENT_CORE})
    try:
        results = run(plan)
    except BenchError as e:
        sys.exit(f"streams: {e}")
    except KeyboardInterrupt:
        print("streams: interrupted; servers stopped, temporary files removed", file=sys.stderr)
        sys.exit(130)
    report = write_outputs(results, plan)
    print(f"streams: wrote {report.relative_to(ROOT)} in {results['elapsed_s']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
