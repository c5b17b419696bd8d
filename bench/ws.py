#!/usr/bin/env python3
"""ws.py - part of `make bench` (also `make bench-ws`): microweb's WebSockets against the
Node.js `ws` package and Kore, every server on one core (`taskset -c 1`), the load from
bench/ws_client.c (one epoll process, masked frames, every message checked byte for byte)
on the other core, as bench/run.py does.

    echo       round trips per second and server CPU per message: each of 64 or 1,000
               connections keeps one binary message of 32 B or 16 KiB in flight
               (microweb: bench/ws_app.c `/ws/echo`, MW_THREADS=1; Node.js:
               bench/ws/server.js; Kore: bench/kore, one worker)
    broadcast  one connection of 1,000 sends a 32-byte message to all 1,000 (itself
               too), up to 8 broadcasts on their way at once; server CPU per delivered
               message (microweb: mw_ws_broadcast to a group; Node.js: a send per client;
               Kore: kore_websocket_broadcast)
    idle       10,000 idle WebSockets: the server's RSS per connection, and the kernel's
               memory for the sockets (both ends) from /proc/net/sockstat and /proc/meminfo

Each row runs ROUNDS times per server, the servers back to back within a round and in
turn first; a table shows the median round. Targets (issue 14), on the echo rows:
microweb at most 0.5x Node's CPU per message, and at least Kore's round trips per second;
broadcast is measured (CPU per delivered message) beside the peers.

    python3 bench/ws.py [--duration S] [--rounds N] [--rows echo,broadcast,idle]
                        [--servers microweb,node,kore] [--idle N]

Writes bench/results/ws.{md,json}. Installs what is missing when it runs as root: Kore
(Debian's `kore`, built with its `kodev`), Node.js (Debian's `nodejs`, `npm`) and the `ws`
package (`npm ci` in bench/ws). A peer that cannot be installed, built or started is
reported as skipped, with the reason. Linux only.
"""
import argparse
import contextlib
import dataclasses
import datetime
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402

SERVERS = ("microweb", "node", "kore")
ECHO_ROWS = {  # key: (connections, message bytes)
    "echo-64-32": (64, 32),
    "echo-64-16k": (64, 16384),
    "echo-1000-32": (1000, 32),
    "echo-1000-16k": (1000, 16384),
}
BROADCAST_ROWS = {"broadcast-1000-32": (1000, 32)}
CPU_TARGET, RATE_TARGET = 0.5, 1.0
WARMUP_S = 1.0
READY_TIMEOUT = 180  # seconds for every connection to open (10,000 on a slow peer)
NODE_DIR = bench.BENCH_DIR / "ws"
KORE_DIR = bench.BENCH_DIR / "kore"
CORES_NOTE = (f"servers on core {bench.SERVER_CORE} (`taskset -c {bench.SERVER_CORE}`), ws_client and this "
              f"runner on core {bench.CLIENT_CORE}")


# ---------------------------------------------------------------- the servers

@dataclasses.dataclass(frozen=True)
class Server:
    key: str
    label: str
    command: object  # (port) -> (argv, env, cwd)
    version: str
    note: str


def node_probe():
    if not shutil.which("node") or not shutil.which("npm"):
        return "node or npm not found"
    out = subprocess.run(["node", "-e", "require('ws'); require('bufferutil')"], cwd=NODE_DIR,
                         capture_output=True, text=True)
    return None if out.returncode == 0 else "bench/ws/node_modules has no ws (npm ci there)"


def ensure_node():
    """None when Node.js and bench/ws's packages are there (installing them if needed)."""
    reason = bench.ensure(bench.which_probe("npm"), ("nodejs", "npm"))
    if reason:
        return reason
    if node_probe() is None:
        return None
    print("ws: npm ci in bench/ws", file=sys.stderr)
    out = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True, text=True)
    if out.returncode != 0:
        return f"npm ci in bench/ws failed: {(out.stderr or out.stdout).strip()[-300:]}"
    return node_probe()


def build_kore(workdir):
    """bench/kore copied to WORKDIR/kore and built with `kodev build`; returns the folder.
    kodev takes the application's name from its folder and wants conf/<name>.conf."""
    reason = bench.ensure(bench.which_probe("kodev"), ("kore",))
    if reason:
        raise bench.BenchError(reason)
    app = Path(workdir) / "kore"
    shutil.copytree(KORE_DIR, app)
    out = subprocess.run(["kodev", "build"], cwd=app, capture_output=True, text=True)
    if out.returncode != 0 or not (app / "kore.so").exists():
        raise bench.BenchError(f"kodev build failed: {(out.stdout + out.stderr).strip()[-500:]}")
    return app


def make_servers(workdir, wanted):
    """{key: Server} of the wanted servers that could be set up, and {key: why not}."""
    servers, skipped = {}, {}
    if "microweb" in wanted:
        binary = bench.build("bench/ws_app.c", "ws_app")
        servers["microweb"] = Server(
            "microweb", "microweb",
            lambda port: (bench.pinned(binary), bench.peer_env(PORT=str(port), MW_THREADS="1", MW_ACCESS_LOG="0"),
                          None),
            bench.microweb_version(),
            "bench/ws_app.c, `MW_THREADS=1` (one worker thread, plus the idle control thread); connection cap "
            "20,000 and the per-address cap off (every client is 127.0.0.1); /ws/broadcast joins the group "
            "`all` and calls mw_ws_broadcast")
    if "node" in wanted:
        reason = ensure_node()
        if reason:
            skipped["node"] = reason
        else:
            versions = bench.command_output(["node", "-p", "process.version + ', ws ' + require('ws/package.json')"
                                             ".version + ', bufferutil ' + require('bufferutil/package.json')"
                                             ".version"], cwd=NODE_DIR)
            servers["node"] = Server(
                "node", "Node.js ws",
                lambda port: (bench.pinned("node", NODE_DIR / "server.js"), bench.peer_env(PORT=str(port)), None),
                f"Node.js {versions}",
                "bench/ws/server.js: node's `http` and the `ws` package's WebSocketServer (`noServer`, upgrades "
                "routed by path), one process; `bufferutil` installed, as ws recommends (native masking); no "
                "permessage-deflate; broadcast: `client.send` for each of the path's clients")
    if "kore" in wanted:
        try:
            app = build_kore(workdir)
            conf = (app / "conf" / "kore.conf").read_text()

            def kore_command(port, app=app, conf=conf):
                (app / "conf" / "kore.conf").write_text(conf.replace("{port}", str(port)))
                return bench.pinned(shutil.which("kore"), "-c", "conf/kore.conf", "-fnr"), bench.peer_env(), app

            servers["kore"] = Server(
                "kore", "Kore", kore_command, bench.command_output(["kore", "-v"]).strip().replace(" ", ", ", 1),
                "Debian's `kore` package, bench/kore/src/ws.c built by `kodev build` (-O2) into the module that "
                "bench/kore/conf/kore.conf loads: one worker (`workers 1`, `worker_set_affinity 0` so it stays on "
                "the server core), plain HTTP (`tls no`), 20,000 connections per worker; run as `kore -fnr` "
                "(foreground, no chroot, no privilege drop); the process tree (parent and worker) is measured")
        except bench.BenchError as e:
            skipped["kore"] = str(e)
    for key, why in skipped.items():
        print(f"ws: {key} skipped: {why}", file=sys.stderr)
    return servers, skipped


@contextlib.contextmanager
def running(server, workdir, tag):
    """The server started on a free port and answering GET /: (proc, port)."""
    port = bench.free_port()
    argv, env, cwd = server.command(port)
    log_path = Path(workdir) / f"{server.key}-{tag}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=bench.raise_nofile)
    try:
        bench.wait_ready(proc, port, log_path)
        yield proc, port
    finally:
        bench.stop(proc)


# ---------------------------------------------------------------- the client

class WsClient(bench.DrivenClient):
    """bench/ws_client.c on the client core: `connections` WebSockets to port/path."""

    def __init__(self, binary, port, path, connections, size, mode, log_path):
        super().__init__([binary, port, path, connections, size, mode], log_path, READY_TIMEOUT)


def load_row(proc, port, client_bin, path, connections, size, mode, duration, log_path):
    """One measured window on a fresh set of connections (after a warm-up window)."""
    with WsClient(client_bin, port, path, connections, size, mode, log_path) as client:
        if client.ready["ready"] != connections:
            raise bench.BenchError(f"{client.ready['ready']} of {connections} WebSockets opened")
        client.command(f"measure {WARMUP_S}", WARMUP_S + 30)
        pids = bench.process_tree(proc.pid)
        user, system = bench.user_system_ticks(pids)
        w = client.command(f"measure {duration}", duration + 30)
        user_after, system_after = bench.user_system_ticks(pids)
    if proc.poll() is not None:
        raise bench.BenchError(f"server exited with status {proc.returncode} during the window")
    if w["bad"] or w["closed"] or w["stuck"] or not w["messages"]:
        raise bench.BenchError(f"{w['messages']:,} messages, {w['bad']} wrong, {w['closed']} connections closed, "
                               f"{w['stuck']} messages never answered")
    n, ticks = w["messages"], bench.CLK_TCK

    def per_message(t):
        return t / ticks * 1e6 / n

    lat = w["latency"]
    return {"messages": n, "seconds": w["seconds"], "rate": n / w["seconds"],
            "mb_s": n * size / w["seconds"] / 1e6, "broadcasts": w["broadcasts"],
            "cpu_us": per_message(user_after - user + system_after - system), "user_us": per_message(user_after - user),
            "system_us": per_message(system_after - system),
            "server_pct": 100 * (user_after - user + system_after - system) / ticks / w["seconds"],
            "client_pct": 100 * w["client_cpu_s"] / w["seconds"], "p50_us": lat["p50_us"], "p99_us": lat["p99_us"],
            "fanout_p50_us": w["fanout"]["p50_us"] if w["fanout"]["count"] else None,
            "fanout_p99_us": w["fanout"]["p99_us"] if w["fanout"]["count"] else None}


def describe(r):
    return (f"{r['rate']:>10,.0f} msg/s {r['cpu_us']:6.2f} µs CPU/msg (server {r['server_pct']:.0f}%, "
            f"client {r['client_pct']:.0f}%) p50 {bench.fmt_us(r['p50_us'])} p99 {bench.fmt_us(r['p99_us'])}")


def load_rounds(servers, client_bin, plan, workdir):
    """{row: {server: [round results]}}; every server started once, the rows in turn."""
    rows = {}
    if "echo" in plan["rows"]:
        rows.update({k: ("/ws/echo", c, s, "echo") for k, (c, s) in ECHO_ROWS.items()})
    if "broadcast" in plan["rows"]:
        rows.update({k: ("/ws/broadcast", c, s, "broadcast") for k, (c, s) in BROADCAST_ROWS.items()})
    results = {row: {key: [] for key in servers} for row in rows}
    with contextlib.ExitStack() as stack:
        live = {key: stack.enter_context(running(server, workdir, "load")) for key, server in servers.items()}
        order = list(servers)
        for r in range(plan["rounds"]):
            for row, (path, conns, size, mode) in rows.items():
                first = r % len(order)
                for key in order[first:] + order[:first]:
                    proc, port = live[key]
                    log = Path(workdir) / f"client-{key}-{row}-{r}.log"
                    try:
                        result = load_row(proc, port, client_bin, path, conns, size, mode, plan["duration"], log)
                    except (bench.BenchError, OSError, ValueError) as e:
                        result = {"failed": str(e)}
                        print(f"ws: round {r + 1} {row:18} {key:9} failed: {e}", file=sys.stderr)
                    else:
                        print(f"ws: round {r + 1} {row:18} {key:9} {describe(result)}", file=sys.stderr)
                    results[row][key].append(result)
                    time.sleep(0.3)  # the closed connections leave the server and the kernel
    return results


# ---------------------------------------------------------------- memory with idle connections

def sockstat_tcp_pages():
    """TCP's buffer memory, in pages, from /proc/net/sockstat ("TCP: ... mem N")."""
    match = re.search(r"^TCP:.* mem (\d+)", Path("/proc/net/sockstat").read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def meminfo_kb(field):
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def kernel_memory():
    return {"tcp_pages": sockstat_tcp_pages(), "slab_kb": meminfo_kb("Slab")}


def idle_memory(server, client_bin, plan, workdir):
    """A fresh server's RSS before and with plan["idle"] idle WebSockets open, and the
    kernel's socket memory (both ends of each connection are on this machine)."""
    n = plan["idle"]
    with running(server, workdir, "idle") as (proc, port):
        log = Path(workdir) / f"client-{server.key}-idle.log"
        with WsClient(client_bin, port, "/ws/echo", 1, 32, "echo", log) as warm:  # a first WebSocket's setup
            warm.command("measure 0.2", 30)
        time.sleep(0.5)
        pids = bench.process_tree(proc.pid)
        before, kernel_before = bench.status_kb(pids, "VmRSS"), kernel_memory()
        with WsClient(client_bin, port, "/ws/echo", n, 32, "idle", log) as client:
            opened = client.ready["ready"]
            time.sleep(1.0)
            after, kernel_after = bench.status_kb(pids, "VmRSS"), kernel_memory()
            still = client.command("count", 30)["open"]
    page = os.sysconf("SC_PAGE_SIZE")
    row = {"connections": n, "opened": opened, "still_open": still, "open_seconds": client.ready["seconds"],
           "before_kb": before, "after_kb": after,
           "rss_per_conn_b": (after - before) * 1024 / opened if opened else None,
           "tcp_buffer_per_conn_b": (kernel_after["tcp_pages"] - kernel_before["tcp_pages"]) * page / opened
           if opened else None,
           "slab_per_conn_b": (kernel_after["slab_kb"] - kernel_before["slab_kb"]) * 1024 / opened if opened else None}
    print(f"ws: idle {server.key:9} {opened:,} opened, {still:,} still open, {row['rss_per_conn_b'] or 0:,.0f} B RSS "
          f"per connection, kernel slab {row['slab_per_conn_b'] or 0:,.0f} B per connection (both ends)",
          file=sys.stderr)
    return row


# ---------------------------------------------------------------- the report

def ok_rounds(rounds):
    return [r for r in rounds if "failed" not in r]


def median_round(rounds):
    """The round with the median rate (all its figures from that run), or None."""
    good = sorted(ok_rounds(rounds), key=lambda r: r["rate"])
    return good[(len(good) - 1) // 2] if good else None


def paired_ratio(results, row, key, peer, metric):
    """Median over the rounds of key's metric / peer's in the same round."""
    pairs = [(a[metric], b[metric]) for a, b in zip(results[row].get(key, []), results[row].get(peer, []))
             if "failed" not in a and "failed" not in b and b[metric]]
    return statistics.median(a / b for a, b in pairs) if pairs else None


def row_title(row):
    if row in ECHO_ROWS:
        conns, size = ECHO_ROWS[row]
        return f"echo, {conns:,} connections, {size if size < 1024 else f'{size // 1024} KiB'}{' B' if size < 1024 else ''}"
    conns, size = BROADCAST_ROWS[row]
    return f"broadcast to {conns:,}, {size} B"


def load_table(results, labels):
    headers = ["row", "server", "messages/s", "MB/s each way", "CPU µs/message (user + kernel)", "server CPU",
               "client CPU", "p50", "p99", "rounds (messages/s)"]
    lines = []
    for row, per_server in results.items():
        for key, rounds in per_server.items():
            m = median_round(rounds)
            every = " / ".join("failed" if "failed" in r else f"{r['rate']:,.0f}" for r in rounds)
            if not m:
                reason = next((r["failed"] for r in rounds if "failed" in r), "not run")
                lines.append([row_title(row), labels[key], f"failed: {reason}", "", "", "", "", "", "", every])
                continue
            lines.append([row_title(row), labels[key], f"{m['rate']:,.0f}", f"{m['mb_s']:,.1f}",
                          f"{m['cpu_us']:.2f} ({m['user_us']:.2f} + {m['system_us']:.2f})", f"{m['server_pct']:.0f}%",
                          f"{m['client_pct']:.0f}%", bench.fmt_us(m["p50_us"]), bench.fmt_us(m["p99_us"]), every])
    return bench.table(headers, lines)


def ratio_table(results, labels):
    headers = ["row"]
    peers = [k for k in ("node", "kore") if any(k in per for per in results.values())]
    for peer in peers:
        headers += [f"messages/s / {labels[peer]}", f"CPU per message / {labels[peer]}", "user part", "kernel part"]
    lines = []
    for row in results:
        cells = [row_title(row)]
        for peer in peers:
            cells += [bench.fmt_ratio(paired_ratio(results, row, "microweb", peer, m))
                      for m in ("rate", "cpu_us", "user_us", "system_us")]
        lines.append(cells)
    return bench.table(headers, lines)


def idle_table(idle, labels):
    headers = ["server", "RSS before", "RSS with the connections", "RSS per connection", "opened / still open",
               "time to open all", "kernel TCP buffers per connection", "kernel slab per connection (both ends)"]
    lines = []
    for key, r in idle.items():
        if "failed" in r:
            lines.append([labels[key], f"failed: {r['failed']}"] + [""] * 6)
            continue
        lines.append([labels[key], f"{r['before_kb'] / 1024:.1f} MiB", f"{r['after_kb'] / 1024:.1f} MiB",
                      f"{r['rss_per_conn_b']:,.0f} B", f"{r['opened']:,} / {r['still_open']:,}",
                      f"{r['open_seconds']:.2f} s", f"{r['tcp_buffer_per_conn_b']:,.0f} B",
                      f"{r['slab_per_conn_b']:,.0f} B"])
    return bench.table(headers, lines)


def targets(results, idle):
    """[(met, line)]: CPU per message vs Node.js, and messages/s vs Kore, on the echo rows.
    Broadcast is measured, not targeted: one send per member, whose kernel part (about the
    same for every server) is most of its cost."""
    out = []
    for row in (r for r in results if r in ECHO_ROWS):
        out.append(bench.check(f"{row_title(row)}: CPU per message, microweb / Node.js ws",
                               paired_ratio(results, row, "microweb", "node", "cpu_us"), CPU_TARGET,
                               higher_is_better=False))
        out.append(bench.check(f"{row_title(row)}: round trips/s, microweb / Kore",
                               paired_ratio(results, row, "microweb", "kore", "rate"), RATE_TARGET))
    return out


def report(results, idle, servers, skipped, plan, command):
    m = bench.machine_info()
    labels = {"microweb": "microweb", "node": "Node.js ws", "kore": "Kore"}
    marks = {True: "met", False: "**NOT met**", None: "not measured"}
    lines = [
        "# WebSockets: microweb against Node.js ws and Kore", "",
        f"{results.get('date', '')}, `{command}`: {plan['rounds']} round{'s' if plan['rounds'] > 1 else ''} of "
        f"{plan['duration']:g} s per server and row (after a {WARMUP_S:g} s warm-up on the same connections), the "
        f"servers back to back within a round and in turn first; {CORES_NOTE}; {m['nproc']} CPUs ({m['cpu']}), "
        f"{m['kernel']}, {m['os']}, load average at start {' '.join(m['loadavg_at_start'])}.", "",
    ]
    if results["load"]:
        lines += ["## Targets", ""]
        lines += [f"- {marks[met]} — {line}" for met, line in targets(results["load"], idle)]
        lines += ["", "## Ratios (microweb / peer, the median of the rounds' ratios)", "",
                  ratio_table(results["load"], labels), "",
                  "messages/s: higher is better for microweb; CPU per message: lower is better. The user part "
                  "is the servers' own code (microweb's / the peer's utime per message), the kernel part their "
                  "system calls (stime): on loopback a send also pays for TCP's receive side of the client's "
                  "socket, so the kernel part is about the same for every server that makes one send per "
                  "message, and it bounds the ratio of the totals from below.", "",
                  "## Echo and broadcast", "", load_table(results["load"], labels), "",
                  "A row of the table is the server's median round (every figure from that run); the last column "
                  "lists every round. Echo: each connection sends a binary message (masked, a fresh key per frame) "
                  "when the echo of its last one is back, so messages/s is round trips per second; the latency is "
                  "one round trip. Broadcast: connection 0 sends, whenever fewer than 8 of its broadcasts are "
                  "still on their way, a message that every connection (itself too) must receive; messages/s "
                  "counts deliveries; the latency is from the send to one delivery. Every message carries its "
                  "sender and sequence number and a pattern that depends on them: ws_client checks every byte "
                  "and the order, and a row with one wrong, lost or unanswered message, or a connection closed, "
                  "fails. CPU per message: utime+stime ticks (1/100 s) of the server's process tree (Kore: "
                  "parent and worker) from /proc/PID/stat over the window (the warm-up excluded), divided by the "
                  "messages (echo: round trips; broadcast: deliveries). Server CPU: those ticks over the window "
                  "(100% = the one core); client CPU: ws_client's own (at about 100% the client was the limit and "
                  "messages/s is its figure; CPU per message stays the server's).", ""]
    starved = [f"{row_title(row)} {labels[key]} (server {m['server_pct']:.0f}%, client {m['client_pct']:.0f}%)"
               for row, per_server in results["load"].items() for key, rounds in per_server.items()
               if (m := median_round(rounds)) and m["server_pct"] < 90 and m["client_pct"] < 90]
    if starved:
        lines += ["Neither the server nor the client used its whole core in these median rounds: messages/s there "
                  "was held back by something other than the server's CPU (other work on the machine, or each side "
                  "waiting to be woken by the other), while CPU per message is still the server's own: "
                  + "; ".join(starved) + ".", ""]
    if idle:
        lines += [f"## Memory per idle WebSocket ({plan['idle']:,} connections)", "", idle_table(idle, labels), "",
                  f"Each server freshly started, one WebSocket echoed once and closed (the first connection's "
                  f"setup is not counted), then {plan['idle']:,} WebSockets opened to /ws/echo by one ws_client "
                  "and left idle for 1 s. RSS per connection = (VmRSS of the server's process tree with them - "
                  "VmRSS before) / connections. The kernel figures are the whole machine's: TCP buffers from "
                  "/proc/net/sockstat (`TCP: mem`, pages, for the queued bytes of both ends: idle sockets queue "
                  "none) and the change of `Slab` in /proc/meminfo (the socket, inode, file and epoll structures "
                  "of both ends: the client's and the server's socket per connection, so about half is the "
                  "server's). Other activity on the machine moves the slab figure a little.", ""]
    lines += ["## Servers", ""]
    for key, s in servers.items():
        lines.append(f"- **{labels[key]}**: {s.version}. {s.note}.")
    for key, why in skipped.items():
        lines.append(f"- **{labels[key]}**: skipped: {why}")
    lines += ["", "## Load generator", "",
              "bench/ws_client.c: one process, epoll, at most 256 handshakes under way at a time, masked frames "
              "(RFC 6455 §5.3, eight bytes at a time), a ping answered with a pong; every message checked for its "
              "length, its sender, its sequence number and all its bytes. Percentiles: nearest rank over every "
              "message of the window.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=5, help="seconds per measured window (default 5)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of every load row (default 3)")
    ap.add_argument("--rows", default="echo,broadcast,idle", help="rows to run, of echo, broadcast, idle")
    ap.add_argument("--servers", default=",".join(SERVERS), help="servers to run, of microweb, node, kore")
    ap.add_argument("--idle", type=int, default=10000, help="connections in the idle row (default 10000)")
    args = ap.parse_args()
    rows, wanted = tuple(args.rows.split(",")), tuple(args.servers.split(","))
    if not set(rows) <= {"echo", "broadcast", "idle"} or not set(wanted) <= set(SERVERS):
        ap.error("--rows takes echo, broadcast and idle; --servers microweb, node and kore")
    if args.duration <= 0 or args.rounds < 1 or args.idle < 1:
        ap.error("every figure must be positive")
    plan = {"duration": args.duration, "rounds": args.rounds, "rows": rows, "idle": args.idle}
    for sig in (signal.SIGTERM, signal.SIGHUP):  # unwind: servers stopped, temporary files removed
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    bench.raise_nofile()
    os.sched_setaffinity(0, {bench.CLIENT_CORE})
    command = " ".join(["python3 bench/ws.py", *sys.argv[1:]])
    started = time.monotonic()
    client_bin = bench.build("bench/ws_client.c", "ws_client")
    results = {"date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC", "plan": plan,
               "load": {}, "idle": {}}
    with tempfile.TemporaryDirectory(prefix="microweb-ws-") as workdir:
        servers, skipped = make_servers(workdir, wanted)
        if not servers:
            raise bench.BenchError("no server could be set up")
        if {"echo", "broadcast"} & set(rows):
            results["load"] = load_rounds(servers, client_bin, plan, workdir)
        if "idle" in rows:
            for key, server in servers.items():
                try:
                    results["idle"][key] = idle_memory(server, client_bin, plan, workdir)
                except (bench.BenchError, OSError, ValueError) as e:
                    results["idle"][key] = {"failed": str(e)}
                    print(f"ws: idle {key} failed: {e}", file=sys.stderr)
        results["servers"] = {k: {"version": s.version, "note": s.note} for k, s in servers.items()}
        results["skipped"] = skipped
        text = report(results, results["idle"], servers, skipped, plan, command)
    results["elapsed_s"] = round(time.monotonic() - started)
    bench.write_results("ws", text, results)
    print(text)
    print(f"ws: wrote bench/results/ws.md in {results['elapsed_s']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except bench.BenchError as e:
        print(f"ws: {e}", file=sys.stderr)
        sys.exit(1)
